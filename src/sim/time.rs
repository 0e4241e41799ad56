//! Simulated time: integer nanoseconds, never a float and never the wall clock.
//!
//! `SimTime` is an instant since the start of a run, `SimDuration` a span. Both
//! wrap a `u64` of nanoseconds (584 years of range); arithmetic saturates so an
//! overflow can never wrap around into the past. Scenario limits keep runs far
//! below the range (see `scenario`), so saturation is a safety net, not a
//! behaviour anything relies on.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

/// `N` optional deadlines in 8 bytes each (an `[Option<SimTime>; N]` takes
/// 16): the timer slots of a connection or client, of which a run keeps one
/// per client (issue 22). `u64::MAX` marks an empty slot, so a deadline of
/// `SimTime::MAX` (reachable only by saturation, 584 years in) is kept as
/// one nanosecond earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerSlots<const N: usize>([u64; N]);

impl<const N: usize> Default for TimerSlots<N> {
    fn default() -> Self {
        Self::NONE
    }
}

impl<const N: usize> TimerSlots<N> {
    /// Every slot empty.
    pub const NONE: Self = TimerSlots([u64::MAX; N]);

    /// Slot `i`'s deadline (`None` when empty or out of range).
    pub fn get(&self, i: usize) -> Option<SimTime> {
        match self.0.get(i) {
            Some(&t) if t != u64::MAX => Some(SimTime(t)),
            _ => None,
        }
    }

    /// Arm (`Some`) or clear (`None`) slot `i`; out of range does nothing.
    pub fn set(&mut self, i: usize, at: Option<SimTime>) {
        if let Some(x) = self.0.get_mut(i) {
            *x = at.map_or(u64::MAX, |t| t.0.min(u64::MAX - 1));
        }
    }

    /// Whether slot `i` is armed.
    pub fn is_armed(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// Empty every slot.
    pub fn clear(&mut self) {
        *self = Self::NONE;
    }

    /// The earliest armed deadline.
    pub fn earliest(&self) -> Option<SimTime> {
        let m = self.0.iter().copied().min().unwrap_or(u64::MAX);
        (m != u64::MAX).then_some(SimTime(m))
    }
}

/// An optional count of nanoseconds (an instant or a span) in 8 bytes
/// (`Option<u64>` takes 16), for records a run keeps one of per connection
/// (issue 22). `u64::MAX` stands for none, so a value of `u64::MAX`
/// (584 years, reachable only by saturation) is kept as one less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt64(u64);

impl Default for Opt64 {
    fn default() -> Self {
        Self::NONE
    }
}

impl Opt64 {
    pub const NONE: Self = Opt64(u64::MAX);

    pub fn new(v: Option<u64>) -> Self {
        Opt64(v.map_or(u64::MAX, |v| v.min(u64::MAX - 1)))
    }

    pub fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }

    /// The value as an instant.
    pub fn time(self) -> Option<SimTime> {
        self.get().map(SimTime)
    }
}

impl From<SimTime> for Opt64 {
    fn from(t: SimTime) -> Self {
        Opt64::new(Some(t.0))
    }
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Milliseconds as a float, for output only (never for decisions).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
    pub fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        self.0.checked_add(d.0).map(SimTime)
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us.saturating_mul(1_000))
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms.saturating_mul(1_000_000))
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s.saturating_mul(1_000_000_000))
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn saturating_mul(self, k: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(k))
    }
    /// Time to serialise `bytes` at `rate_bps` bits per second, rounded up to
    /// the next nanosecond (a 100-byte packet at 250 kbit/s takes exactly 3.2 ms).
    pub fn transmission(bytes: u64, rate_bps: u64) -> SimDuration {
        if rate_bps == 0 {
            return SimDuration::MAX;
        }
        let bits = (bytes as u128) * 8 * 1_000_000_000u128;
        let ns = bits.div_ceil(rate_bps as u128);
        SimDuration(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    /// Saturating: `a - b` is zero when `b` is later than `a`.
    fn sub(self, rhs: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(rhs.0))
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}
impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub for SimDuration {
    type Output = SimDuration;
    fn sub(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(d.0))
    }
}

fn fmt_ns(ns: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if ns == 0 {
        return write!(f, "0 s");
    }
    for (unit, name) in [(1_000_000_000u64, "s"), (1_000_000, "ms"), (1_000, "us")] {
        if ns >= unit {
            if ns.is_multiple_of(unit) {
                return write!(f, "{} {name}", ns / unit);
            }
            return write!(f, "{} {name}", ns as f64 / unit as f64);
        }
    }
    write!(f, "{ns} ns")
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ns(self.0, f)
    }
}
impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ns(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timer_slots_keep_eight_bytes_a_slot_and_order_deadlines() {
        use super::TimerSlots;
        assert_eq!(std::mem::size_of::<TimerSlots<4>>(), 32);
        let mut t = TimerSlots::<3>::NONE;
        assert_eq!(t.earliest(), None);
        t.set(1, Some(SimTime(70)));
        t.set(2, Some(SimTime(5)));
        t.set(7, Some(SimTime(1))); // out of range: ignored
        assert_eq!(t.get(1), Some(SimTime(70)));
        assert_eq!(t.get(0), None);
        assert!(t.is_armed(2) && !t.is_armed(0));
        assert_eq!(t.earliest(), Some(SimTime(5)));
        t.set(2, None);
        assert_eq!(t.earliest(), Some(SimTime(70)));
        t.set(0, Some(SimTime(0)));
        assert_eq!(t.earliest(), Some(SimTime::ZERO));
        t.set(0, Some(SimTime::MAX));
        assert_eq!(t.get(0), Some(SimTime(u64::MAX - 1)));
        t.clear();
        assert_eq!(t, TimerSlots::NONE);
    }

    use super::*;

    #[test]
    fn opt64_keeps_eight_bytes_and_every_value_but_the_marker() {
        assert_eq!(std::mem::size_of::<Opt64>(), 8);
        assert_eq!(Opt64::default(), Opt64::NONE);
        assert_eq!(Opt64::NONE.get(), None);
        assert_eq!(Opt64::new(Some(0)).get(), Some(0));
        assert_eq!(Opt64::new(Some(7)).time(), Some(SimTime(7)));
        assert_eq!(Opt64::from(SimTime(9)).get(), Some(9));
        assert_eq!(Opt64::new(None), Opt64::NONE);
        assert_eq!(Opt64::new(Some(u64::MAX)).get(), Some(u64::MAX - 1));
    }

    #[test]
    fn transmission_time_is_exact() {
        // 100 bytes at 250 kbit/s = 800 bits / 250000 = 3.2 ms
        assert_eq!(
            SimDuration::transmission(100, 250_000),
            SimDuration(3_200_000)
        );
        // rounds up
        assert_eq!(SimDuration::transmission(1, 3), SimDuration(2_666_666_667));
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(SimTime::MAX + SimDuration(5), SimTime::MAX);
        assert_eq!(SimTime(3) - SimTime(5), SimDuration::ZERO);
        assert_eq!(SimDuration::MAX.saturating_mul(2), SimDuration::MAX);
    }

    #[test]
    fn display_uses_human_units() {
        assert_eq!(SimDuration::from_millis(50).to_string(), "50 ms");
        assert_eq!(SimDuration::from_secs(600).to_string(), "600 s");
        assert_eq!(SimDuration(1_500_000).to_string(), "1.5 ms");
    }
}
