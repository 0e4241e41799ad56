//! CoCoA, the CoAP Simple Congestion Control/Advanced RTO estimator
//! (draft-ietf-core-cocoa-03, §4 "Advanced CoAP Congestion Control: RTO
//! Estimation", pseudocode in its Appendix B), per destination endpoint.
//!
//! All arithmetic is in integer nanoseconds (truncating), so runs are
//! deterministic. Every constant below is the draft's:
//!
//! - blind (initial) RTO 2 s, also the initial value of both estimators
//!   (§4.1, §4.2.1);
//! - two RFC 6298 estimators (α = 1/8, β = 1/4; first sample: SRTT = R,
//!   RTTVAR = R/2): the *strong* one fed by exchanges that completed
//!   without retransmission, K = 4, and the *weak* one fed by exchanges
//!   that needed 1 or 2 retransmissions, RTT measured from the first
//!   transmission, K = 1 (§4.2, §4.2.1); later answers feed nothing;
//! - overall RTO := 0.5·E_strong + 0.5·RTO after a strong sample,
//!   RTO := 0.25·E_weak + 0.75·RTO after a weak one (§4.2);
//! - variable back-off factor per retransmission: ×3 while the RTO is
//!   below 1 s, ×1.5 above 3 s, else ×2; back-off truncated at 32 s
//!   (§4.2.1, Appendix B.3);
//! - aging (§4.3, Appendix B.2): an RTO below 1 s left without update for
//!   16·RTO is doubled; one above 3 s left for 4·RTO becomes 1 s + RTO/2;
//!   applied cumulatively when the estimate is next used, as §4.3 allows.
//!
//! qossim's choices where the draft is silent: G (RFC 6298's clock
//! granularity) is the simulator's 1 ns; the overall RTO is capped at 60 s
//! (RFC 6298 §2.5 allows a cap of at least 60 s).

use crate::sim::{SimDuration, SimTime};

const SEC: u64 = 1_000_000_000;
/// §4.1: the blind RTO, and the initial value of both estimators.
pub const INITIAL_RTO: SimDuration = SimDuration::from_secs(2);
/// RFC 6298 §2.5: a cap of at least 60 s is allowed.
pub const MAX_RTO: SimDuration = SimDuration::from_secs(60);
/// §4.2.1: "The binary exponential backoff is truncated at 32 seconds."
pub const BACKOFF_LIMIT: SimDuration = SimDuration::from_secs(32);
/// RFC 6298's clock granularity G: the simulator's clock tick.
const G: u64 = 1;

/// One RFC 6298 estimator (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rfc6298 {
    srtt: u64,
    rttvar: u64,
}

impl Rfc6298 {
    /// RFC 6298 §2.2 (first sample) and §2.3 (later ones; RTTVAR first,
    /// with the old SRTT); returns E = SRTT + max(G, K·RTTVAR).
    fn update(slot: &mut Option<Rfc6298>, r: u64, k: u64) -> u64 {
        let e = match *slot {
            None => Rfc6298 {
                srtt: r,
                rttvar: r / 2,
            },
            Some(e) => Rfc6298 {
                rttvar: (3 * e.rttvar + e.srtt.abs_diff(r)) / 4,
                srtt: (7 * e.srtt + r) / 8,
            },
        };
        *slot = Some(e);
        e.srtt.saturating_add(G.max(k.saturating_mul(e.rttvar)))
    }
}

/// The CoCoA state for one destination endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cocoa {
    strong: Option<Rfc6298>,
    weak: Option<Rfc6298>,
    /// The overall RTO estimate (ns).
    rto: u64,
    /// When `rto` was last updated by a sample or by aging.
    updated: SimTime,
}

impl Default for Cocoa {
    fn default() -> Self {
        Cocoa {
            strong: None,
            weak: None,
            rto: INITIAL_RTO.as_nanos(),
            updated: SimTime::ZERO,
        }
    }
}

/// What an RTT sample fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// The strong estimator (no retransmission).
    Strong,
    /// The weak estimator (1 or 2 retransmissions).
    Weak,
    /// Nothing (3 or more retransmissions, §4.2).
    Unused,
}

impl Cocoa {
    /// No RTT sample yet: only the blind estimate is available (§4.1).
    pub fn is_blind(&self) -> bool {
        self.strong.is_none() && self.weak.is_none()
    }

    /// The overall RTO at `now`, aged (§4.3), without changing the state.
    pub fn rto(&self, now: SimTime) -> SimDuration {
        SimDuration::from_nanos(self.aged(now).0)
    }

    /// The RTO for a new exchange at `now` (aging applied and kept). Blind,
    /// it is 2 s times `parallel`, the exchanges running with this one
    /// counted (§4.1: "if two exchanges are already running, the initial RTO
    /// estimate for an additional exchange is 6 seconds").
    pub fn rto_for_exchange(&mut self, now: SimTime, parallel: u32) -> SimDuration {
        self.age(now);
        if self.is_blind() {
            return INITIAL_RTO.saturating_mul(u64::from(parallel.max(1)));
        }
        SimDuration::from_nanos(self.rto)
    }

    /// An exchange answered `rtt` after its first transmission, after
    /// `retransmissions` retransmissions (§4.2, Appendix B.1).
    pub fn sample(&mut self, now: SimTime, rtt: SimDuration, retransmissions: u32) -> Sample {
        let r = rtt.as_nanos();
        self.age(now);
        let kind = match retransmissions {
            0 => {
                let e = Rfc6298::update(&mut self.strong, r, 4);
                // (2): RTO := 0.5·E_strong + 0.5·RTO
                self.rto = e / 2 + self.rto / 2;
                Sample::Strong
            }
            1 | 2 => {
                let e = Rfc6298::update(&mut self.weak, r, 1);
                // (1): RTO := 0.25·E_weak + 0.75·RTO
                self.rto = e / 4 + self.rto - self.rto / 4;
                Sample::Weak
            }
            _ => return Sample::Unused,
        };
        self.rto = self.rto.clamp(G, MAX_RTO.as_nanos());
        self.updated = now;
        kind
    }

    fn age(&mut self, now: SimTime) {
        (self.rto, self.updated) = self.aged(now);
    }

    /// Appendix B.2's checkAging, run as often as it would have fired
    /// between `updated` and `now`.
    fn aged(&self, now: SimTime) -> (u64, SimTime) {
        let (mut rto, mut at) = (self.rto.max(G), self.updated);
        loop {
            let idle = (now - at).as_nanos();
            if rto < SEC && idle > 16 * rto {
                at += SimDuration::from_nanos(16 * rto);
                rto *= 2;
            } else if rto > 3 * SEC && idle > 4 * rto {
                at += SimDuration::from_nanos(4 * rto);
                rto = SEC + rto / 2;
            } else {
                return (rto, at);
            }
        }
    }
}

/// The variable back-off factor (§4.2.1, Appendix B.3): the next RTO of an
/// exchange whose current (undithered) RTO is `rto`, truncated at 32 s (a
/// larger RTO is not reduced).
pub fn back_off(rto: SimDuration) -> SimDuration {
    let r = rto.as_nanos();
    let next = if r < SEC {
        r.saturating_mul(3)
    } else if r > 3 * SEC {
        r.saturating_add(r / 2)
    } else {
        r.saturating_mul(2)
    };
    SimDuration::from_nanos(next.min(r.max(BACKOFF_LIMIT.as_nanos())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn t(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * MS)
    }

    #[test]
    fn first_strong_sample_follows_rfc_6298_and_weight_half() {
        let mut c = Cocoa::default();
        assert!(c.is_blind());
        assert_eq!(
            c.sample(t(500), SimDuration::from_millis(500), 0),
            Sample::Strong
        );
        // SRTT 0.5, RTTVAR 0.25, E = 0.5 + 4·0.25 = 1.5; RTO = 0.75 + 1 = 1.75 s
        assert_eq!(c.rto(t(500)), SimDuration::from_millis(1750));
    }

    #[test]
    fn weak_sample_uses_k1_and_weight_quarter_and_late_answers_feed_nothing() {
        let mut c = Cocoa::default();
        assert_eq!(c.sample(t(0), SimDuration::from_secs(4), 1), Sample::Weak);
        // SRTT 4, RTTVAR 2, E = 4 + 1·2 = 6; RTO = 1.5 + 1.5 = 3 s
        assert_eq!(c.rto(t(0)), SimDuration::from_secs(3));
        assert_eq!(
            c.sample(t(0), SimDuration::from_secs(40), 3),
            Sample::Unused
        );
        assert_eq!(c.rto(t(0)), SimDuration::from_secs(3));
    }

    #[test]
    fn blind_rto_scales_with_parallel_exchanges() {
        let mut c = Cocoa::default();
        assert_eq!(c.rto_for_exchange(t(0), 3), SimDuration::from_secs(6));
        assert_eq!(c.rto_for_exchange(t(0), 0), SimDuration::from_secs(2));
    }

    #[test]
    fn variable_backoff_factor_and_truncation() {
        // Appendix A, example B: 0.3 s → 0.9 s → 2.7 s → 5.4 s
        let r = back_off(SimDuration::from_millis(300));
        assert_eq!(r, SimDuration::from_millis(900));
        let r = back_off(r);
        assert_eq!(r, SimDuration::from_millis(2700));
        assert_eq!(back_off(r), SimDuration::from_millis(5400));
        assert_eq!(
            back_off(SimDuration::from_secs(4)),
            SimDuration::from_secs(6)
        );
        assert_eq!(
            back_off(SimDuration::from_secs(30)),
            SimDuration::from_secs(32)
        );
        assert_eq!(
            back_off(SimDuration::from_secs(50)),
            SimDuration::from_secs(50)
        );
    }

    #[test]
    fn aging_towards_the_default() {
        // small RTO: doubled after 16·RTO without update
        let mut c = Cocoa {
            rto: 300 * MS,
            ..Cocoa::default()
        };
        c.strong = Some(Rfc6298 { srtt: 0, rttvar: 0 });
        assert_eq!(c.rto(t(4800)), SimDuration::from_millis(300));
        assert_eq!(c.rto(t(4801)), SimDuration::from_millis(600));
        // cumulative: then 1.2 s after a further 16·0.6 = 9.6 s
        assert_eq!(c.rto(t(14_401)), SimDuration::from_millis(1200));
        // Appendix A, example A.2: 4 s becomes 3 s after 16 s
        let c = Cocoa {
            rto: 4 * SEC,
            ..Cocoa::default()
        };
        assert_eq!(c.rto(t(16_000)), SimDuration::from_secs(4));
        assert_eq!(c.rto(t(16_001)), SimDuration::from_secs(3));
        assert_eq!(c.rto(t(1_000_000)), SimDuration::from_secs(3));
    }
}
