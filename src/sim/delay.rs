//! Random delays: a constant or a distribution over integer nanoseconds,
//! drawn from a `SimRng` the caller owns (processing times, `world::proc`).
//!
//! A constant draws nothing, so a node whose delays are all constant never
//! touches its stream; a zero constant is `Delay::ZERO` and callers treat it
//! as "no delay at all" (no event scheduled).

use super::rng::SimRng;
use super::time::SimDuration;

/// A delay: constant or random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Always this long.
    Constant(SimDuration),
    /// Exponential with this mean (rounded to the nearest nanosecond).
    Exponential { mean: SimDuration },
    /// Uniform in [min, max] nanoseconds (inclusive).
    Uniform { min: SimDuration, max: SimDuration },
}

impl Default for Delay {
    fn default() -> Self {
        Delay::ZERO
    }
}

impl Delay {
    /// No delay.
    pub const ZERO: Delay = Delay::Constant(SimDuration::ZERO);

    /// Whether the delay is always zero.
    pub fn is_zero(&self) -> bool {
        match *self {
            Delay::Constant(d) | Delay::Exponential { mean: d } => d == SimDuration::ZERO,
            Delay::Uniform { max, .. } => max == SimDuration::ZERO,
        }
    }

    /// The mean delay.
    pub fn mean(&self) -> SimDuration {
        match *self {
            Delay::Constant(d) | Delay::Exponential { mean: d } => d,
            Delay::Uniform { min, max } => {
                SimDuration::from_nanos(min.as_nanos() / 2 + max.as_nanos() / 2)
            }
        }
    }

    /// One draw (constants draw nothing from `rng`).
    pub fn sample(&self, rng: &mut SimRng) -> SimDuration {
        match *self {
            Delay::Constant(d) => d,
            Delay::Exponential { mean } => {
                let x = rng.exp(mean.as_nanos() as f64);
                // bounded: a draw beyond 64 means is treated as 64 means
                let cap = mean.as_nanos().saturating_mul(64) as f64;
                SimDuration::from_nanos(libm::round(x.min(cap)) as u64)
            }
            Delay::Uniform { min, max } => {
                SimDuration::from_nanos(rng.range_inclusive(min.as_nanos(), max.as_nanos()))
            }
        }
    }
}

impl std::fmt::Display for Delay {
    /// The scenario syntax: `1 ms`, `exp(1 ms)`, `uniform(0.5 ms, 1.5 ms)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delay::Constant(d) => write!(f, "{d}"),
            Delay::Exponential { mean } => write!(f, "exp({mean})"),
            Delay::Uniform { min, max } => write!(f, "uniform({min}, {max})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_draws_nothing_and_exponential_has_its_mean() {
        let mut a = SimRng::stream(1, "d");
        let mut b = SimRng::stream(1, "d");
        let c = Delay::Constant(SimDuration::from_micros(50));
        assert_eq!(c.sample(&mut a), SimDuration::from_micros(50));
        assert_eq!(a.next_u64(), b.next_u64(), "a constant must not draw");
        let e = Delay::Exponential {
            mean: SimDuration::from_millis(1),
        };
        let n = 200_000;
        let s: u64 = (0..n).map(|_| e.sample(&mut a).as_nanos()).sum();
        let m = s as f64 / n as f64;
        // s.e. of the mean = 1 ms / sqrt(n) ≈ 2.2 us
        assert!((m - 1e6).abs() < 1e4, "{m}");
        let u = Delay::Uniform {
            min: SimDuration::from_micros(10),
            max: SimDuration::from_micros(20),
        };
        for _ in 0..1000 {
            let d = u.sample(&mut a).as_nanos();
            assert!((10_000..=20_000).contains(&d));
        }
        assert!(Delay::ZERO.is_zero() && !c.is_zero());
    }
}
