//! Congestion control: slow start and congestion avoidance (RFC 5681 §3.1),
//! fast retransmit and fast recovery (RFC 5681 §3.2) with the NewReno
//! modification for partial ACKs (RFC 6582 §3.2), initial window RFC 6928,
//! and CUBIC (RFC 9438) as the alternative window growth and reduction.
//!
//! The connection tells this module what happened (new ACK, duplicate ACK,
//! timeout) and asks it how much may be in flight; it decides nothing about
//! which bytes to send except "retransmit the first unacknowledged segment".
//!
//! One recovery state machine serves both algorithms: duplicate-ACK
//! counting, fast retransmit, NewReno's inflation, partial and full ACKs and
//! the `recover` point are RFC 5681/6582 for both. What [`CongestionAlgorithm`]
//! changes is only
//! * the reduction on a congestion event (fast-retransmit entry, RTO):
//!   NewReno `ssthresh = max(FlightSize/2, 2·SMSS)`; CUBIC `ssthresh =
//!   max(β·cwnd, 2·SMSS)` with β = 0.7 and W_max remembered (§4.6, §4.7);
//! * the growth in congestion avoidance: NewReno one SMSS per cwnd of bytes
//!   acknowledged; CUBIC the cubic function with its Reno-friendly region
//!   (§4.2–§4.4).
//!
//! Slow start is RFC 5681's for both (CUBIC's HyStart++, RFC 9406, is not
//! modelled: slow start ends only at ssthresh or on a loss). Neither CUBIC's
//! undo of spurious reductions (§4.9) nor ECN is modelled.

/// What the connection must do after an ACK was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAction {
    /// Nothing beyond normal sending.
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or
    /// a NewReno partial ACK).
    Retransmit {
        /// RFC 6582 §3.2 step 5: reset the retransmission timer (first
        /// partial ACK and fast retransmit only).
        restart_timer: bool,
    },
}

use crate::sim::{SimDuration, SimTime};

/// Window growth and reduction rule (`[protocols.tcp] congestion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CongestionAlgorithm {
    /// RFC 5681 / RFC 6582 (the `rfc` profile's).
    NewReno,
    /// RFC 9438 (the `linux-like` profile's, as Linux's default).
    Cubic,
}

impl CongestionAlgorithm {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "newreno",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }
}

/// RFC 9438 §4.6: multiplicative decrease factor β_cubic = 0.7, applied in
/// integer arithmetic as `7/10`.
pub const CUBIC_BETA: f64 = 0.7;
/// RFC 9438 §4.2: C = 0.4 (segments / s³).
pub const CUBIC_C: f64 = 0.4;
/// RFC 9438 §4.3: α_cubic = 3·(1 − β)/(1 + β) = 9/17 ≈ 0.53, the additive
/// increase (segments per RTT) that gives Reno's average rate with β = 0.7.
pub const CUBIC_ALPHA: f64 = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);

/// RTT assumed by CUBIC's look-ahead `W_cubic(t + RTT)` before the first
/// RTT sample: none (the target is `W_cubic(t)`, so the window grows one
/// RTT later than it would — conservative). Congestion avoidance without a
/// sample needs a timeout before any ACK, so this is rare.
pub const CUBIC_RTT_FALLBACK: SimDuration = SimDuration::ZERO;

/// CUBIC's memory (RFC 9438 §4.1 variables). Windows in bytes like the
/// rest of the controller (segments = bytes / SMSS); 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubicState {
    /// W_cubic(t) = C·(t − K)³ + W_max is evaluated as C·(now − origin)³ +
    /// W_max: `origin` = epoch start + K, in ns since time zero (negative
    /// when K < 0, i.e. the epoch began above W_max).
    origin: i64,
    /// W_est, segments (§4.3), since the epoch start.
    w_est: f64,
    /// W_max, bytes: cwnd just before the last reduction, lowered by fast
    /// convergence (§4.7).
    w_max: u32,
    /// cwnd_prior, bytes: cwnd just before the last reduction (§4.6); W_est
    /// reaching it switches α_cubic to 1 (§4.3).
    cwnd_prior: u32,
    /// A congestion-avoidance epoch is running (`origin`, `w_est` valid).
    epoch: bool,
    /// The last reduction was a timeout: the next epoch starts with K = 0
    /// and W_max = cwnd (§4.8).
    after_timeout: bool,
}

impl CubicState {
    fn new() -> Self {
        CubicState {
            origin: 0,
            w_est: 0.0,
            w_max: 0,
            cwnd_prior: 0,
            epoch: false,
            after_timeout: false,
        }
    }
    /// W_max in bytes.
    pub fn w_max(&self) -> u32 {
        self.w_max
    }
    /// cwnd before the last reduction, bytes.
    pub fn cwnd_prior(&self) -> u32 {
        self.cwnd_prior
    }
    /// W_est in segments, while an epoch runs.
    pub fn w_est(&self) -> Option<f64> {
        self.epoch.then_some(self.w_est)
    }
    /// When W_cubic reaches W_max (epoch start + K, ns), while an epoch runs.
    pub fn origin_ns(&self) -> Option<i64> {
        self.epoch.then_some(self.origin)
    }
}

/// Algorithm-specific state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Algo {
    NewReno,
    Cubic(CubicState),
}

/// Congestion state of one connection: the NewReno recovery state machine
/// with NewReno or CUBIC growth and reduction. Sequence numbers are `u32`
/// with wrapping comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controller {
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Slow-start threshold, bytes.
    pub ssthresh: u32,
    /// Sender maximum segment size.
    smss: u32,
    /// Consecutive duplicate ACKs.
    pub dupacks: u32,
    /// RFC 6582 `recover`: highest sequence sent when recovery began.
    recover: u32,
    /// In fast recovery.
    pub in_recovery: bool,
    /// A partial ACK already reset the timer in this recovery.
    partial_seen: bool,
    /// Congestion avoidance, bytes acknowledged not yet turned into cwnd
    /// (NewReno), or the remainder of CUBIC's `acked·(target − cwnd)/cwnd`
    /// division (numerator below cwnd).
    ca_acc: u32,
    algo: Algo,
}

/// The controller's former name (it was NewReno only).
pub type NewReno = Controller;

/// `a < b` in sequence space (RFC 9293 §3.4).
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
/// `a <= b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl Controller {
    /// Initial state: cwnd = IW, ssthresh "arbitrarily high" (RFC 5681
    /// §3.1), `recover` = ISS (RFC 6582 §3.2 step 1).
    pub fn new(algorithm: CongestionAlgorithm, initial_cwnd: u32, smss: u32, iss: u32) -> Self {
        Controller {
            cwnd: initial_cwnd.max(smss),
            ssthresh: u32::MAX,
            smss: smss.max(1),
            dupacks: 0,
            recover: iss,
            in_recovery: false,
            partial_seen: false,
            ca_acc: 0,
            algo: match algorithm {
                CongestionAlgorithm::NewReno => Algo::NewReno,
                CongestionAlgorithm::Cubic => Algo::Cubic(CubicState::new()),
            },
        }
    }

    /// Which algorithm grows and reduces the window.
    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self.algo {
            Algo::NewReno => CongestionAlgorithm::NewReno,
            Algo::Cubic(_) => CongestionAlgorithm::Cubic,
        }
    }

    /// CUBIC's state (`None` under NewReno).
    pub fn cubic(&self) -> Option<&CubicState> {
        match &self.algo {
            Algo::NewReno => None,
            Algo::Cubic(c) => Some(c),
        }
    }

    /// Sender MSS changed (negotiated in the handshake): rescale.
    pub fn set_smss(&mut self, smss: u32, initial_cwnd: u32) {
        self.smss = smss.max(1);
        self.cwnd = initial_cwnd.max(self.smss);
    }

    /// A congestion event (fast-retransmit entry, first RTO of a segment)
    /// with `flight` bytes outstanding: set ssthresh.
    fn reduce(&mut self, flight: u32) {
        let min = 2 * self.smss;
        match &mut self.algo {
            // RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2·SMSS).
            Algo::NewReno => self.ssthresh = (flight / 2).max(min),
            Algo::Cubic(c) => {
                let cwnd = self.cwnd;
                c.cwnd_prior = cwnd;
                // RFC 9438 §4.7 fast convergence: a window that stopped
                // below the last W_max releases bandwidth — W_max =
                // cwnd·(1 + β)/2.
                c.w_max = if cwnd < c.w_max {
                    (u64::from(cwnd) * 17 / 20) as u32
                } else {
                    cwnd
                };
                // §4.6 with cwnd rather than FlightSize, as Linux
                // (bictcp_recalc_ssthresh): ssthresh = max(β·cwnd, 2·SMSS).
                self.ssthresh = ((u64::from(cwnd) * 7 / 10) as u32).max(min);
                c.epoch = false;
                c.after_timeout = false;
            }
        }
    }

    /// A new cumulative ACK covering `acked` bytes arrived at `now`; `ack`
    /// is its acknowledgment number, `flight` the bytes outstanding before
    /// it, `srtt` the smoothed RTT (CUBIC's look-ahead; `None` before the
    /// first sample, see [`CUBIC_RTT_FALLBACK`]).
    pub fn on_ack(
        &mut self,
        now: SimTime,
        srtt: Option<SimDuration>,
        ack: u32,
        acked: u32,
        flight: u32,
    ) -> AckAction {
        self.dupacks = 0;
        if self.in_recovery {
            if seq_lt(self.recover, ack) {
                // RFC 6582 §3.2 step 3, full ACK: deflate to
                // min(ssthresh, max(FlightSize, SMSS) + SMSS).
                let left = flight.saturating_sub(acked);
                self.cwnd = self.ssthresh.min(left.max(self.smss) + self.smss);
                self.in_recovery = false;
                return AckAction::None;
            }
            // Step 5, partial ACK: retransmit the first unacknowledged
            // segment, deflate by the amount acknowledged, add back SMSS
            // if that was at least SMSS.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.smss {
                self.cwnd += self.smss;
            }
            self.cwnd = self.cwnd.max(self.smss);
            let restart = !self.partial_seen;
            self.partial_seen = true;
            return AckAction::Retransmit {
                restart_timer: restart,
            };
        }
        // RFC 7661 §4 / Linux tcp_is_cwnd_limited: the window grows only
        // while it limits the sender — in slow start while the flight was
        // more than half of cwnd, in congestion avoidance while it was
        // (within one segment of) full. An application- or receiver-limited
        // sender would otherwise inflate cwnd without bound.
        let limited = if self.cwnd < self.ssthresh {
            flight.saturating_mul(2) > self.cwnd
        } else {
            flight.saturating_add(self.smss) >= self.cwnd
        };
        if !limited {
            // CUBIC: an application-limited sender ends the epoch; the next
            // cwnd-limited ACK starts a new one from the current cwnd (same
            // W_max, K recomputed). Linux instead shifts the epoch start by
            // the idle time when sending resumes (cubictcp_cwnd_event); a
            // reset never lets W_cubic run ahead while the window was not
            // used, which is the point of both (RFC 9438 §5.8).
            if let Algo::Cubic(c) = &mut self.algo {
                c.epoch = false;
            }
            return AckAction::None;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 eq. 2: cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.smss));
            return AckAction::None;
        }
        match self.algo {
            Algo::NewReno => {
                // RFC 5681 §3.1 congestion avoidance, byte counting: one
                // SMSS per cwnd bytes acknowledged.
                self.ca_acc = self.ca_acc.saturating_add(acked);
                if self.ca_acc >= self.cwnd {
                    self.ca_acc -= self.cwnd;
                    self.cwnd = self.cwnd.saturating_add(self.smss);
                }
            }
            Algo::Cubic(_) => self.cubic_avoidance(now, srtt.unwrap_or(CUBIC_RTT_FALLBACK), acked),
        }
        AckAction::None
    }

    /// RFC 9438 §4.2–§4.5: one ACK of `acked` bytes in congestion avoidance.
    fn cubic_avoidance(&mut self, now: SimTime, rtt: SimDuration, acked: u32) {
        let Algo::Cubic(c) = &mut self.algo else {
            return;
        };
        let smss = f64::from(self.smss);
        let cwnd_seg = f64::from(self.cwnd) / smss;
        let now_ns = now.as_nanos().min(i64::MAX as u64) as i64;
        if !c.epoch {
            // Epoch start (§4.2): cwnd_epoch = cwnd, W_est = cwnd_epoch,
            // K = cbrt((W_max − cwnd_epoch)/C) (K = cbrt(W_max·(1 − β)/C)
            // right after a reduction). After a timeout (§4.8): K = 0 and
            // W_max = cwnd_epoch.
            c.epoch = true;
            c.w_est = cwnd_seg;
            self.ca_acc = 0;
            let k = if c.after_timeout {
                c.after_timeout = false;
                c.w_max = self.cwnd;
                0.0
            } else {
                libm::cbrt((f64::from(c.w_max) / smss - cwnd_seg) / CUBIC_C)
            };
            c.origin = now_ns.saturating_add((k * 1e9) as i64);
        }
        let w_max = f64::from(c.w_max) / smss;
        let w_cubic = |t: f64| CUBIC_C * t * t * t + w_max;
        // t − K in seconds, now and one RTT ahead.
        let t = now_ns.saturating_sub(c.origin) as f64 / 1e9;
        let ahead = t + rtt.as_nanos() as f64 / 1e9;
        // §4.3 Reno-friendly region: W_est grows α_cubic segments per
        // cwnd of segments acknowledged, α_cubic = 1 once W_est reached
        // cwnd_prior.
        let alpha = if c.w_est * smss >= f64::from(c.cwnd_prior) {
            1.0
        } else {
            CUBIC_ALPHA
        };
        c.w_est += alpha * (f64::from(acked) / smss) / cwnd_seg;
        if w_cubic(t) < c.w_est {
            // cwnd = W_est (never lowered: cwnd may be above W_est when it
            // followed W_cubic(t + RTT) until now).
            let est = (c.w_est * smss) as u32;
            if est > self.cwnd {
                self.cwnd = est;
                self.ca_acc = 0;
            }
            return;
        }
        // §4.4/§4.5 concave and convex regions: target = W_cubic(t + RTT)
        // clamped to [cwnd, 1.5·cwnd]; cwnd += (target − cwnd)/cwnd
        // segments per segment acknowledged, i.e. acked·(target − cwnd)/cwnd
        // bytes, the division's remainder kept in `ca_acc`.
        let cwnd = u64::from(self.cwnd);
        let target = ((w_cubic(ahead) * smss) as u64).clamp(cwnd, cwnd + cwnd / 2);
        let num = u64::from(self.ca_acc) + u64::from(acked) * (target - cwnd);
        self.cwnd = (cwnd + num / cwnd).min(u64::from(u32::MAX)) as u32;
        self.ca_acc = (num % cwnd) as u32;
    }

    /// A duplicate ACK (RFC 5681 §2 definition) arrived for `ack` with
    /// `flight` bytes outstanding; `threshold` is the dupack threshold.
    pub fn on_dupack(&mut self, ack: u32, flight: u32, snd_max: u32, threshold: u32) -> AckAction {
        self.dupacks = self.dupacks.saturating_add(1);
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: inflate by SMSS per additional dup ACK.
            self.cwnd = self.cwnd.saturating_add(self.smss);
            return AckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter only if the ACK covers more than
        // `recover` (avoids a second reduction after a timeout).
        if self.dupacks == threshold && seq_lt(self.recover, ack) {
            self.reduce(flight);
            self.recover = snd_max.wrapping_sub(1);
            // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3·SMSS.
            self.cwnd = self.ssthresh.saturating_add(threshold * self.smss);
            self.in_recovery = true;
            self.partial_seen = false;
            return AckAction::Retransmit {
                restart_timer: true,
            };
        }
        AckAction::None
    }

    /// The retransmission timer expired (RFC 5681 §3.1 eq. 4 and LW = 1
    /// segment; RFC 6582 §4: `recover` = highest sequence sent).
    pub fn on_timeout(&mut self, flight: u32, snd_max: u32, first: bool) {
        // RFC 5681 §3.1: ssthresh is not reduced again on repeated timeouts
        // of the same segment ("... MUST be set to no more than ...": use
        // the flight size at the first expiry).
        if first {
            // RFC 9438 §4.8: CUBIC sets ssthresh as in §4.6. A timeout
            // during fast recovery does not reduce again under CUBIC: that
            // loss episode was already answered and cwnd is inflated (Linux
            // tcp_enter_loss keeps ssthresh in Recovery likewise).
            let cubic = matches!(self.algo, Algo::Cubic(_));
            if !(cubic && self.in_recovery) {
                self.reduce(flight);
            }
        }
        if let Algo::Cubic(c) = &mut self.algo {
            c.epoch = false;
            c.after_timeout = true;
        }
        self.cwnd = self.smss;
        self.ca_acc = 0;
        self.dupacks = 0;
        self.in_recovery = false;
        self.recover = snd_max.wrapping_sub(1);
    }

    /// SACK-based loss recovery begins (RFC 6675 §5 step 4): ssthresh as
    /// for fast retransmit, cwnd = ssthresh (sending is then limited by
    /// the scoreboard's pipe, not by window inflation), `recover` = highest
    /// sequence sent.
    pub fn enter_sack_recovery(&mut self, flight: u32, snd_max: u32) {
        self.reduce(flight);
        self.cwnd = self.ssthresh;
        self.recover = snd_max.wrapping_sub(1);
        self.in_recovery = true;
        self.partial_seen = false;
        self.dupacks = 0;
    }

    /// A cumulative ACK during SACK-based recovery: recovery ends when it
    /// passes `recover` (RFC 6675 §5 step 2); cwnd stays at ssthresh.
    pub fn on_sack_recovery_ack(&mut self, ack: u32) {
        if seq_lt(self.recover, ack) {
            self.in_recovery = false;
            self.cwnd = self.ssthresh.max(self.smss);
            self.ca_acc = 0;
        }
    }

    /// A loss repaired outside recovery (a tail-loss probe's
    /// retransmission, RFC 8985 §7.4.2): reduce once, as Linux's CWR.
    pub fn reduce_once(&mut self, flight: u32) {
        self.reduce(flight);
        self.cwnd = self.ssthresh;
        self.ca_acc = 0;
    }

    /// Bytes the window allows in flight.
    pub fn window(&self) -> u32 {
        self.cwnd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn at(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    /// A controller in congestion avoidance-ready state with `cwnd_seg`
    /// segments; `recover` = 0.
    fn with_cwnd(algo: CongestionAlgorithm, cwnd_seg: u32) -> Controller {
        let mut c = Controller::new(algo, 10 * MSS, MSS, 0);
        c.cwnd = cwnd_seg * MSS;
        c
    }

    /// Three duplicate ACKs for `ack` with `flight` outstanding, SND.MAX =
    /// `snd_max`: enters fast recovery.
    fn loss(c: &mut Controller, ack: u32, flight: u32, snd_max: u32) {
        for _ in 0..2 {
            assert_eq!(c.on_dupack(ack, flight, snd_max, 3), AckAction::None);
        }
        assert!(matches!(
            c.on_dupack(ack, flight, snd_max, 3),
            AckAction::Retransmit { .. }
        ));
        assert!(c.in_recovery);
    }

    /// Full ACK of everything up to `snd_max` with `left` bytes still out.
    fn full_ack(c: &mut Controller, now: SimTime, ack: u32, left: u32) {
        let acked = 1000;
        c.on_ack(now, None, ack, acked, left + acked);
        assert!(!c.in_recovery);
    }

    fn k_secs(w_max_seg: f64, cwnd_epoch_seg: f64) -> f64 {
        ((w_max_seg - cwnd_epoch_seg) / CUBIC_C).powf(1.0 / 3.0)
    }

    #[test]
    fn newreno_halves_the_flight() {
        let mut c = with_cwnd(CongestionAlgorithm::NewReno, 100);
        loss(&mut c, 1, 60 * MSS, 200_000);
        assert_eq!(c.ssthresh, 30 * MSS);
        assert_eq!(c.cwnd, 33 * MSS);
        assert!(c.cubic().is_none());
    }

    #[test]
    fn cubic_ssthresh_is_beta_cwnd_with_two_segment_floor() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        // The flight does not matter (Linux and RFC 9438 §4.6 "cwnd").
        loss(&mut c, 1, 60 * MSS, 200_000);
        assert_eq!(c.ssthresh, 70 * MSS);
        assert_eq!(c.cwnd, 73 * MSS, "NewReno recovery: ssthresh + 3·SMSS");
        let s = c.cubic().unwrap();
        assert_eq!(s.w_max(), 100 * MSS);
        assert_eq!(s.cwnd_prior(), 100 * MSS);
        // 0.7 · 2 segments = 1.4 < 2·SMSS.
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 2);
        loss(&mut c, 1, 2 * MSS, 200_000);
        assert_eq!(c.ssthresh, 2 * MSS);
        // Odd byte counts round down: 0.7 · 14_481 = 10_136.7.
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 1);
        c.cwnd = 14_481;
        loss(&mut c, 1, 1, 200_000);
        assert_eq!(c.ssthresh, 10_136);
    }

    #[test]
    fn cubic_fast_convergence_lowers_w_max() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        assert_eq!(c.cubic().unwrap().w_max(), 100 * MSS);
        full_ack(&mut c, at(1000), 100_001, 60 * MSS);
        // The next loss comes at 80 segments < W_max = 100 (§4.7):
        // W_max = 80·(1 + 0.7)/2 = 68, ssthresh = 0.7·80 = 56.
        c.cwnd = 80 * MSS;
        loss(&mut c, 100_002, 80 * MSS, 200_001);
        let s = c.cubic().unwrap();
        assert_eq!(s.w_max(), 68 * MSS);
        assert_eq!(s.cwnd_prior(), 80 * MSS);
        assert_eq!(c.ssthresh, 56 * MSS);
        full_ack(&mut c, at(2000), 200_001, 50 * MSS);
        // A loss above the (lowered) W_max: W_max = cwnd.
        c.cwnd = 90 * MSS;
        loss(&mut c, 200_002, 90 * MSS, 300_001);
        assert_eq!(c.cubic().unwrap().w_max(), 90 * MSS);
        assert_eq!(c.ssthresh, 63 * MSS);
    }

    #[test]
    fn cubic_k_and_window_follow_w_cubic_t_plus_rtt() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        full_ack(&mut c, at(10_000), 100_001, 80 * MSS);
        assert_eq!(c.cwnd, 70 * MSS, "deflated to ssthresh");
        let rtt = SimDuration::from_millis(100);
        // The first ACK in congestion avoidance starts the epoch:
        // K = cbrt(W_max·(1 − β)/C) = cbrt(75) = 4.2172 s.
        let t0 = at(10_050);
        c.on_ack(t0, Some(rtt), 102_001, 2 * MSS, 70 * MSS);
        let k = k_secs(100.0, 70.0);
        assert!((k - 4.217_163).abs() < 1e-6, "{k}");
        let origin = c.cubic().unwrap().origin_ns().unwrap();
        let want = t0.as_nanos() as f64 + k * 1e9;
        assert!((origin as f64 - want).abs() < 1.0, "{origin} vs {want}");
        let w = |t: f64| CUBIC_C * (t - k).powi(3) + 100.0;
        // An ACK for a whole window closes the gap to the target in one
        // step: cwnd = W_cubic(t + RTT). Concave region first (t = 2 s),
        // then convex (t = 6 s).
        for (t_ms, region) in [(2000u64, "concave"), (6000, "convex")] {
            let now = SimTime::from_nanos(t0.as_nanos() + t_ms * 1_000_000);
            let cwnd = c.cwnd;
            c.on_ack(now, Some(rtt), 0, cwnd, cwnd);
            let want = w(t_ms as f64 / 1000.0 + 0.1);
            let got = f64::from(c.cwnd) / f64::from(MSS);
            assert!((got - want).abs() < 0.01, "{region}: {got} vs {want}");
            assert_eq!(got < 100.0, region == "concave");
        }
    }

    #[test]
    fn cubic_target_is_clamped_to_one_and_a_half_cwnd() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        full_ack(&mut c, at(0), 100_001, 80 * MSS);
        c.on_ack(at(10), None, 0, MSS, 70 * MSS);
        // 60 s later W_cubic is far above 1.5·cwnd: a whole window's ACK
        // takes cwnd to 1.5·cwnd exactly.
        let before = c.cwnd;
        c.on_ack(at(60_000), None, 0, before, before);
        assert_eq!(c.cwnd, before + before / 2);
    }

    #[test]
    fn cubic_reno_friendly_region_uses_w_est() {
        // Small W_max (10 segments, K = cbrt(7.5) = 1.96 s) and one ACK per
        // segment every 1 ms: W_est gains α_cubic = 0.53 segment per
        // window (≈ 7 ms) and soon exceeds W_cubic, which stays near 7.
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 10);
        loss(&mut c, 1, 10 * MSS, 10_001);
        full_ack(&mut c, at(0), 10_001, 8 * MSS);
        assert_eq!(c.cwnd, 7 * MSS);
        let k = k_secs(10.0, 7.0);
        let rtt = Some(SimDuration::from_millis(7));
        // Independent W_est recurrence (§4.3), α = 1 from W_est ≥ 10.
        let mut w_est = 7.0f64;
        let mut switched = false;
        for i in 1..=400u64 {
            let cwnd_seg = f64::from(c.cwnd) / f64::from(MSS);
            let alpha = if w_est >= 10.0 {
                switched = true;
                1.0
            } else {
                CUBIC_ALPHA
            };
            w_est += alpha / cwnd_seg;
            let cwnd = c.cwnd;
            c.on_ack(at(i), rtt, 0, MSS, cwnd);
            let t = i as f64 / 1000.0 - 0.001;
            let w_cubic = CUBIC_C * (t - k).powi(3) + 10.0;
            assert!(
                w_cubic < w_est,
                "ACK {i}: W_cubic {w_cubic} ≥ W_est {w_est}"
            );
            assert_eq!(c.cwnd, (w_est * f64::from(MSS)) as u32, "ACK {i}");
        }
        assert!(switched, "W_est passed cwnd_prior: α_cubic = 1");
        // 400 ACKs of one segment took cwnd from 7 to 28 segments (Reno
        // would have reached about 30); W_cubic(0.4 s) is 8.5.
        assert!(c.cwnd > 25 * MSS, "{}", c.cwnd);

        // The same ACKs after a loss at 100 segments: W_cubic (K = 4.2 s)
        // climbs faster than W_est, cwnd follows W_cubic(t + RTT) instead.
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        full_ack(&mut c, at(0), 100_001, 80 * MSS);
        let mut w_est = 70.0f64;
        for i in 1..=400u64 {
            w_est += CUBIC_ALPHA / (f64::from(c.cwnd) / f64::from(MSS));
            let cwnd = c.cwnd;
            c.on_ack(at(i), rtt, 0, MSS, cwnd);
        }
        let got = f64::from(c.cwnd) / f64::from(MSS);
        assert!(got > w_est + 1.0, "cubic {got} vs W_est {w_est}");
        let k = k_secs(100.0, 70.0);
        let ahead = CUBIC_C * (0.399 + 0.007 - k).powi(3) + 100.0;
        assert!(got <= ahead, "{got} ≤ W_cubic(t + RTT) = {ahead}");
    }

    #[test]
    fn cubic_after_timeout_starts_with_k_zero() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        c.on_timeout(100 * MSS, 100_001, true);
        assert_eq!(c.ssthresh, 70 * MSS);
        assert_eq!(c.cwnd, MSS);
        assert_eq!(c.cubic().unwrap().w_max(), 100 * MSS);
        // A second expiry of the same segment reduces nothing.
        c.on_timeout(MSS, 100_001, false);
        assert_eq!(c.ssthresh, 70 * MSS);
        // Slow start back to ssthresh, then the epoch: §4.8 K = 0,
        // W_max = cwnd at the epoch start.
        c.cwnd = 70 * MSS;
        c.on_ack(at(5000), None, 100_002, MSS, 70 * MSS);
        let s = c.cubic().unwrap();
        assert_eq!(s.origin_ns(), Some(at(5000).as_nanos() as i64));
        assert_eq!(s.w_max(), 70 * MSS);
    }

    #[test]
    fn cubic_timeout_in_recovery_keeps_the_reduction() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        for _ in 0..50 {
            c.on_dupack(1, 100 * MSS, 100_001, 3);
        }
        assert_eq!(c.cwnd, 123 * MSS, "inflated");
        c.on_timeout(100 * MSS, 100_001, true);
        assert_eq!(c.ssthresh, 70 * MSS);
        assert_eq!(c.cubic().unwrap().w_max(), 100 * MSS);
        // NewReno halves the flight again, as before.
        let mut c = with_cwnd(CongestionAlgorithm::NewReno, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        c.on_timeout(90 * MSS, 100_001, true);
        assert_eq!(c.ssthresh, 45 * MSS);
    }

    #[test]
    fn cubic_application_limited_ack_restarts_the_epoch() {
        let mut c = with_cwnd(CongestionAlgorithm::Cubic, 100);
        loss(&mut c, 1, 100 * MSS, 100_001);
        full_ack(&mut c, at(0), 100_001, 80 * MSS);
        c.on_ack(at(10), None, 0, MSS, 70 * MSS);
        assert!(c.cubic().unwrap().origin_ns().is_some());
        let cwnd = c.cwnd;
        // Flight far below cwnd: no growth, epoch over.
        c.on_ack(at(20), None, 0, MSS, 10 * MSS);
        assert_eq!(c.cwnd, cwnd);
        assert_eq!(c.cubic().unwrap().origin_ns(), None);
        // The next cwnd-limited ACK starts a new epoch from cwnd.
        c.on_ack(at(3000), None, 0, MSS, cwnd);
        let k = k_secs(100.0, f64::from(cwnd) / f64::from(MSS));
        let origin = c.cubic().unwrap().origin_ns().unwrap() as f64;
        assert!((origin - (3e9 + k * 1e9)).abs() < 1.0);
    }
}
