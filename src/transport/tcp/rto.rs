//! Retransmission timer (RFC 6298) with Karn's rule and exponential backoff.
//!
//! Integer nanosecond arithmetic throughout (α = 1/8, β = 1/4 as shifts), so
//! results are identical on every machine and no floating point is involved.

use super::profile::{Config, RtoFormula};
use crate::sim::SimDuration;

/// SRTT / RTTVAR / RTO state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    /// Smoothed RTT in ns; 0 until the first sample.
    srtt: u64,
    /// RTT variance in ns.
    rttvar: u64,
    /// Current RTO before backoff, ns.
    rto: u64,
    /// Number of consecutive backoffs applied (RFC 6298 §5.5).
    backoff: u32,
    has_sample: bool,
}

impl RttEstimator {
    /// A fresh estimator with `config.initial_rto` (RFC 6298 §2.1).
    pub fn new(config: &Config) -> Self {
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            rto: config.initial_rto.as_nanos(),
            backoff: 0,
            has_sample: false,
        }
    }

    /// Feed one RTT measurement `r` (RFC 6298 §2.2, §2.3). Callers apply
    /// Karn's rule: never a sample from a retransmitted segment (§3).
    pub fn sample(&mut self, config: &Config, r: SimDuration) {
        let r = r.as_nanos();
        if self.has_sample {
            // RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
            // SRTT <- (1 - alpha) * SRTT + alpha * R'   (in this order, §2.3)
            let err = self.srtt.abs_diff(r);
            self.rttvar = self.rttvar - self.rttvar / 4 + err / 4;
            self.srtt = self.srtt - self.srtt / 8 + r / 8;
        } else {
            // §2.2: SRTT <- R, RTTVAR <- R/2.
            self.srtt = r;
            self.rttvar = r / 2;
            self.has_sample = true;
        }
        self.rto = Self::compute(config, self.srtt, self.rttvar);
        // §5.7 (last paragraph) / §5.5: a new sample ends the backoff.
        self.backoff = 0;
    }

    /// RTO from SRTT and RTTVAR, clamped to `[min_rto, max_rto]`.
    pub fn compute(config: &Config, srtt: u64, rttvar: u64) -> u64 {
        let min = config.min_rto.as_nanos();
        let raw = match config.rto_formula {
            // RFC 6298 §2.3 and §2.4 (RTO below min_rto is rounded up).
            RtoFormula::Rfc6298 => srtt
                .saturating_add(config.clock_granularity.as_nanos().max(4 * rttvar))
                .max(min),
            // Linux tcp_rtt_estimator/__tcp_set_rto: the deviation term is
            // floored at rto_min.
            RtoFormula::Linux => srtt.saturating_add((4 * rttvar).max(min)),
        };
        raw.clamp(min, config.max_rto.as_nanos().max(min))
    }

    /// The timeout to arm now: RTO doubled once per backoff, capped at
    /// `max_rto` (RFC 6298 §5.5, §2.5).
    pub fn timeout(&self, config: &Config) -> SimDuration {
        let max = config.max_rto.as_nanos();
        let shifted = if self.backoff >= 63 {
            u64::MAX
        } else {
            self.rto.saturating_mul(1u64 << self.backoff)
        };
        SimDuration::from_nanos(shifted.min(max))
    }

    /// The timer expired: back off (RFC 6298 §5.5).
    pub fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Forget the backoff (new data acknowledged without a sample).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// RFC 6298 §5.7: the SYN timed out and there is no sample; data
    /// transmission starts with RTO = `fallback_rto` (3 s).
    pub fn fallback(&mut self, config: &Config) {
        if !self.has_sample {
            self.rto = self.rto.max(config.fallback_rto.as_nanos());
        }
        self.backoff = 0;
    }

    /// Smoothed RTT, if a sample was taken.
    pub fn srtt(&self) -> Option<SimDuration> {
        self.has_sample
            .then_some(SimDuration::from_nanos(self.srtt))
    }
    /// RTT variance.
    pub fn rttvar(&self) -> SimDuration {
        SimDuration::from_nanos(self.rttvar)
    }
    /// RTO without backoff.
    pub fn rto(&self) -> SimDuration {
        SimDuration::from_nanos(self.rto)
    }
    /// Consecutive backoffs.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_srtt_and_half_var() {
        let c = Config::rfc();
        let mut e = RttEstimator::new(&c);
        e.sample(&c, SimDuration::from_millis(100));
        assert_eq!(e.srtt(), Some(SimDuration::from_millis(100)));
        assert_eq!(e.rttvar(), SimDuration::from_millis(50));
        // 100 + 4·50 = 300 ms < min 1 s.
        assert_eq!(e.rto(), SimDuration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_to_max() {
        let c = Config::rfc();
        let mut e = RttEstimator::new(&c);
        let mut seen = vec![];
        for _ in 0..9 {
            seen.push(e.timeout(&c).as_nanos() / 1_000_000_000);
            e.on_timeout();
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
