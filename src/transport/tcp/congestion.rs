//! Congestion control: slow start and congestion avoidance (RFC 5681 §3.1),
//! fast retransmit and fast recovery (RFC 5681 §3.2) with the NewReno
//! modification for partial ACKs (RFC 6582 §3.2), initial window RFC 6928.
//!
//! The connection tells this module what happened (new ACK, duplicate ACK,
//! timeout) and asks it how much may be in flight; it decides nothing about
//! which bytes to send except "retransmit the first unacknowledged segment".

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

/// NewReno state of one connection. Sequence numbers are `u32` with
/// wrapping comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReno {
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
    /// Bytes acknowledged in congestion avoidance not yet turned into cwnd.
    ca_acc: u32,
}

/// `a < b` in sequence space (RFC 9293 §3.4).
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
/// `a <= b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl NewReno {
    /// Initial state: cwnd = IW, ssthresh "arbitrarily high" (RFC 5681
    /// §3.1), `recover` = ISS (RFC 6582 §3.2 step 1).
    pub fn new(initial_cwnd: u32, smss: u32, iss: u32) -> Self {
        NewReno {
            cwnd: initial_cwnd.max(smss),
            ssthresh: u32::MAX,
            smss: smss.max(1),
            dupacks: 0,
            recover: iss,
            in_recovery: false,
            partial_seen: false,
            ca_acc: 0,
        }
    }

    /// Sender MSS changed (negotiated in the handshake): rescale.
    pub fn set_smss(&mut self, smss: u32, initial_cwnd: u32) {
        self.smss = smss.max(1);
        self.cwnd = initial_cwnd.max(self.smss);
    }

    /// `ssthresh = max(FlightSize / 2, 2·SMSS)` (RFC 5681 eq. 4).
    fn halve(&mut self, flight: u32) {
        self.ssthresh = (flight / 2).max(2 * self.smss);
    }

    /// A new cumulative ACK covering `acked` bytes arrived; `ack` is its
    /// acknowledgment number, `flight` the bytes outstanding before it.
    pub fn on_ack(&mut self, ack: u32, acked: u32, flight: u32) -> AckAction {
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
            return AckAction::None;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 eq. 2: cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.smss));
        } else {
            // RFC 5681 §3.1 congestion avoidance, byte counting: one SMSS
            // per cwnd bytes acknowledged.
            self.ca_acc = self.ca_acc.saturating_add(acked);
            if self.ca_acc >= self.cwnd {
                self.ca_acc -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.smss);
            }
        }
        AckAction::None
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
            self.halve(flight);
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
            self.halve(flight);
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
        self.halve(flight);
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
        self.halve(flight.max(self.cwnd));
        self.cwnd = self.ssthresh;
        self.ca_acc = 0;
    }

    /// Bytes the window allows in flight.
    pub fn window(&self) -> u32 {
        self.cwnd
    }
}
