//! Retransmission timeout estimation (RFC 6298) and the Linux variant.
//!
//! `rfc` profile (RFC 6298 §2): the first sample R sets SRTT = R,
//! RTTVAR = R/2; later samples RTTVAR = ¾·RTTVAR + ¼·|SRTT − R|,
//! SRTT = ⅞·SRTT + ⅛·R (RTTVAR first, with the old SRTT); RTO =
//! SRTT + max(G, 4·RTTVAR), clamped to [min RTO, max RTO] (1 s and 60 s by
//! default); before any sample RTO is the initial RTO (1 s, §2.1).
//! `linux-like`: the same smoothing, but RTO = SRTT + max(4·RTTVAR, 200 ms)
//! (Linux's rto_min folded into the variance term), clamped to
//! [200 ms, 120 s]. Back-off doubles RTO on each expiry up to the max
//! (§5.5); a new sample after a back-off recomputes it (§5.7). Karn's rule —
//! no samples from retransmitted segments — is the caller's duty
//! (`on_sample` takes only clean samples). Integer nanoseconds throughout.

use crate::sim::SimDuration;

/// Which RTO formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtoProfile {
    Rfc,
    LinuxLike,
}

/// RTO parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoConfig {
    pub profile: RtoProfile,
    pub initial: SimDuration,
    pub min: SimDuration,
    pub max: SimDuration,
    /// Clock granularity G (RFC 6298 §2.3).
    pub granularity: SimDuration,
}

impl RtoConfig {
    /// RFC 6298 defaults.
    pub fn rfc() -> Self {
        RtoConfig {
            profile: RtoProfile::Rfc,
            initial: SimDuration::from_secs(1),
            min: SimDuration::from_secs(1),
            max: SimDuration::from_secs(60),
            granularity: SimDuration::from_millis(1),
        }
    }
    /// Linux defaults (tcp_rto_min 200 ms, TCP_RTO_MAX 120 s, initial 1 s).
    pub fn linux_like() -> Self {
        RtoConfig {
            profile: RtoProfile::LinuxLike,
            initial: SimDuration::from_secs(1),
            min: SimDuration::from_millis(200),
            max: SimDuration::from_secs(120),
            granularity: SimDuration::from_millis(1),
        }
    }
}

/// SRTT/RTTVAR state and the current RTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    cfg: RtoConfig,
    srtt: Option<u64>,
    rttvar: u64,
    rto: u64,
}

impl RttEstimator {
    pub fn new(cfg: RtoConfig) -> Self {
        RttEstimator {
            cfg,
            srtt: None,
            rttvar: 0,
            rto: cfg.initial.as_nanos(),
        }
    }
    pub fn srtt(&self) -> Option<SimDuration> {
        self.srtt.map(SimDuration)
    }
    pub fn rttvar(&self) -> SimDuration {
        SimDuration(self.rttvar)
    }
    /// The current retransmission timeout.
    pub fn rto(&self) -> SimDuration {
        SimDuration(self.rto)
    }

    fn clamp(&self, v: u64) -> u64 {
        v.clamp(self.cfg.min.as_nanos(), self.cfg.max.as_nanos())
    }

    /// A round-trip sample from a segment that was not retransmitted.
    pub fn on_sample(&mut self, rtt: SimDuration) {
        let r = rtt.as_nanos();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                self.rttvar = (3 * self.rttvar + s.abs_diff(r)) / 4;
                self.srtt = Some((7 * s + r) / 8);
            }
        }
        let s = self.srtt.unwrap_or(r);
        let var = match self.cfg.profile {
            RtoProfile::Rfc => (4 * self.rttvar).max(self.cfg.granularity.as_nanos()),
            RtoProfile::LinuxLike => {
                (4 * self.rttvar).max(SimDuration::from_millis(200).as_nanos())
            }
        };
        self.rto = self.clamp(s.saturating_add(var));
    }

    /// The timer expired: double the RTO, up to the max (RFC 6298 §5.5).
    pub fn backoff(&mut self) {
        self.rto = self.clamp(self.rto.saturating_mul(2));
    }

    /// RFC 6298 §5.7: after a SYN timeout, once the connection is
    /// established without an RTT sample, RTO goes back to 3 s.
    pub fn reset_after_syn_timeout(&mut self) {
        if self.srtt.is_none() {
            self.rto = self.clamp(SimDuration::from_secs(3).as_nanos());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> SimDuration {
        SimDuration::from_millis(v)
    }

    #[test]
    fn rfc_6298_by_hand() {
        let mut e = RttEstimator::new(RtoConfig::rfc());
        assert_eq!(e.rto(), ms(1000));
        // R = 100 ms: SRTT 100, RTTVAR 50, RTO = 100 + 200 = 300 → clamped to 1 s
        e.on_sample(ms(100));
        assert_eq!(
            (e.srtt(), e.rttvar(), e.rto()),
            (Some(ms(100)), ms(50), ms(1000))
        );
        // R = 1200: RTTVAR = (3·50 + 1100)/4 = 312.5; SRTT = (700 + 1200)/8 = 237.5
        // RTO = 237.5 + 1250 = 1487.5 ms
        e.on_sample(ms(1200));
        assert_eq!(e.rttvar(), SimDuration(312_500_000));
        assert_eq!(e.srtt(), Some(SimDuration(237_500_000)));
        assert_eq!(e.rto(), SimDuration(1_487_500_000));
        e.backoff();
        assert_eq!(e.rto(), SimDuration(2_975_000_000));
        for _ in 0..10 {
            e.backoff();
        }
        assert_eq!(e.rto(), ms(60_000), "backoff stops at the max");
    }

    #[test]
    fn linux_like_by_hand() {
        let mut e = RttEstimator::new(RtoConfig::linux_like());
        // R = 4 ms on a short path: SRTT 4, RTTVAR 2 → RTO = 4 + max(8, 200) = 204 ms
        e.on_sample(ms(4));
        assert_eq!(e.rto(), ms(204));
        // steady 4 ms samples shrink RTTVAR; RTO stays SRTT + 200 ms
        for _ in 0..20 {
            e.on_sample(ms(4));
        }
        assert_eq!(e.rto(), ms(204));
        // the measured Linux doubling: 204 → 408 → 816 ms
        e.backoff();
        assert_eq!(e.rto(), ms(408));
        e.backoff();
        assert_eq!(e.rto(), ms(816));
        // a large variance dominates the 200 ms floor: R = 400 after SRTT 4
        let mut e = RttEstimator::new(RtoConfig::linux_like());
        e.on_sample(ms(4));
        e.on_sample(ms(400)); // RTTVAR = (3·2 + 396)/4 = 100.5; SRTT = (28 + 400)/8 = 53.5
        assert_eq!(e.rto(), SimDuration(53_500_000 + 402_000_000));
    }

    #[test]
    fn syn_timeout_reset_to_three_seconds() {
        let mut e = RttEstimator::new(RtoConfig::rfc());
        e.backoff();
        assert_eq!(e.rto(), ms(2000));
        e.reset_after_syn_timeout();
        assert_eq!(e.rto(), ms(3000));
        // with a sample the reset does not apply
        e.on_sample(ms(10));
        let r = e.rto();
        e.reset_after_syn_timeout();
        assert_eq!(e.rto(), r);
    }
}
