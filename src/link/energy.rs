//! Radio energy accounting (issue #4 item 5): a radio is in one of four
//! states — transmitting, receiving, listening (idle, receiver on) or
//! asleep — and energy is Σ time in state × current × supply voltage.
//!
//! Defaults are the CC2420 datasheet's (Chipcon/TI CC2420, rev. 1.4,
//! "Electrical Specifications"): 3.0 V supply; TX 17.4 mA at 0 dBm; RX
//! 18.8 mA; idle 0.426 mA; power-down 20 µA. A duty-cycled listener sleeps
//! except for a wake window at the start of every period. Integer
//! nanoseconds are accumulated per state; the conversion to millijoules is
//! the only floating-point step.

use crate::sim::{SimDuration, SimTime};

/// Radio states, in `EnergyMeter::time_in` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadioState {
    Tx = 0,
    Rx = 1,
    Listen = 2,
    Sleep = 3,
}

/// Supply voltage and per-state currents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadioParams {
    pub voltage_v: f64,
    pub tx_ma: f64,
    pub rx_ma: f64,
    pub listen_ma: f64,
    pub sleep_ma: f64,
}

impl RadioParams {
    /// CC2420 at 3.0 V (TX at 0 dBm).
    pub const CC2420: RadioParams = RadioParams {
        voltage_v: 3.0,
        tx_ma: 17.4,
        rx_ma: 18.8,
        listen_ma: 0.426,
        sleep_ma: 0.020,
    };

    /// Energy (mJ) of one frame of `airtime_ns` on the air: its sender in
    /// `Tx` and each of `receivers` radios in `Rx` for the frame's length
    /// (the same product the meters integrate).
    pub fn frame_mj(&self, airtime_ns: u64, receivers: usize) -> f64 {
        airtime_ns as f64 * 1e-9 * (self.tx_ma + self.rx_ma * receivers as f64) * self.voltage_v
    }

    fn current_ma(&self, s: RadioState) -> f64 {
        match s {
            RadioState::Tx => self.tx_ma,
            RadioState::Rx => self.rx_ma,
            RadioState::Listen => self.listen_ma,
            RadioState::Sleep => self.sleep_ma,
        }
    }
}

/// Periodic listening: awake for `wake` at the start of every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    pub period: SimDuration,
    pub wake: SimDuration,
}

impl DutyCycle {
    /// Nanoseconds awake within [from, to).
    pub fn awake_ns(&self, from: SimTime, to: SimTime) -> u64 {
        let p = self.period.as_nanos().max(1);
        let w = self.wake.as_nanos().min(p);
        // awake time in [0, t) for t ≥ 0
        let upto = |t: u64| (t / p) * w + (t % p).min(w);
        upto(to.as_nanos()).saturating_sub(upto(from.as_nanos()))
    }
}

/// Time per state of one radio, advanced by state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergyMeter {
    state: RadioState,
    since: SimTime,
    /// The state the radio falls back to when it is not sending or
    /// receiving: `Listen`, or `Sleep` with periodic wake windows.
    duty: Option<DutyCycle>,
    ns: [u64; 4],
}

impl EnergyMeter {
    /// A radio that idles listening (or duty-cycled when `duty` is set),
    /// starting at time 0.
    pub fn new(duty: Option<DutyCycle>) -> Self {
        EnergyMeter {
            state: RadioState::Listen,
            since: SimTime::ZERO,
            duty,
            ns: [0; 4],
        }
    }

    fn account(&mut self, now: SimTime) {
        let d = now.saturating_since(self.since).as_nanos();
        match (self.state, self.duty) {
            (RadioState::Listen, Some(dc)) => {
                let awake = dc.awake_ns(self.since, now);
                self.ns[RadioState::Listen as usize] += awake;
                self.ns[RadioState::Sleep as usize] += d - awake;
            }
            (s, _) => self.ns[s as usize] += d,
        }
        self.since = self.since.max(now);
    }

    /// Enter `state` at `now` (use `Listen` to return to idle, which is
    /// duty-cycled when the meter has a duty cycle).
    pub fn set(&mut self, now: SimTime, state: RadioState) {
        self.account(now);
        self.state = state;
    }

    /// Nanoseconds spent in each state up to `now` (Tx, Rx, Listen, Sleep).
    pub fn time_in(&mut self, now: SimTime) -> [u64; 4] {
        self.account(now);
        self.ns
    }

    /// Millijoules per state up to `now`: ns · mA · V · 1e-9 (mJ = mA·V·s).
    pub fn energy_mj(&mut self, now: SimTime, p: &RadioParams) -> [f64; 4] {
        let t = self.time_in(now);
        let states = [
            RadioState::Tx,
            RadioState::Rx,
            RadioState::Listen,
            RadioState::Sleep,
        ];
        let mut e = [0.0; 4];
        for (i, s) in states.iter().enumerate() {
            e[i] = t[i] as f64 * 1e-9 * p.current_ma(*s) * p.voltage_v;
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> SimTime {
        SimTime(v * 1_000_000)
    }

    #[test]
    fn a_hand_built_schedule() {
        // listen 0–100 ms, tx 100–104.256 ms (a 133-byte PHY frame), listen,
        // rx 200–201 ms, listen to 1 s
        let mut m = EnergyMeter::new(None);
        m.set(ms(100), RadioState::Tx);
        m.set(SimTime(104_256_000), RadioState::Listen);
        m.set(ms(200), RadioState::Rx);
        m.set(ms(201), RadioState::Listen);
        let t = m.time_in(ms(1000));
        assert_eq!(t, [4_256_000, 1_000_000, 994_744_000, 0]);
        let p = RadioParams::CC2420;
        let e = m.energy_mj(ms(1000), &p);
        let want = [
            0.004256 * 17.4 * 3.0,
            0.001 * 18.8 * 3.0,
            0.994744 * 0.426 * 3.0,
            0.0,
        ];
        for i in 0..4 {
            assert!(
                (e[i] - want[i]).abs() < 1e-12,
                "{i}: {} vs {}",
                e[i],
                want[i]
            );
        }
    }

    #[test]
    fn duty_cycling_sleeps_outside_wake_windows() {
        // 10 ms awake every 100 ms over 1 s, one 5 ms transmission at 500 ms
        let dc = DutyCycle {
            period: SimDuration::from_millis(100),
            wake: SimDuration::from_millis(10),
        };
        let mut m = EnergyMeter::new(Some(dc));
        m.set(ms(500), RadioState::Tx);
        m.set(ms(505), RadioState::Listen);
        let t = m.time_in(ms(1000));
        // awake windows: 10 ms × 10, minus the 5 ms of the 500 ms window spent sending
        assert_eq!(t, [5_000_000, 0, 95_000_000, 900_000_000]);
        let p = RadioParams::CC2420;
        let duty: f64 = m.energy_mj(ms(1000), &p).iter().sum();
        let mut always = EnergyMeter::new(None);
        always.set(ms(500), RadioState::Tx);
        always.set(ms(505), RadioState::Listen);
        let full: f64 = always.energy_mj(ms(1000), &p).iter().sum();
        assert!(duty < full, "{duty} < {full}");
        assert_eq!(dc.awake_ns(ms(95), ms(215)), 20_000_000);
    }
}
