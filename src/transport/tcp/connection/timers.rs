//! Timer expiry: retransmission (RFC 6298 §5), persist (RFC 9293
//! §3.8.6.1), delayed ACK and TIME-WAIT.

use super::{Connection, LostReason, State, Timer, EV_CLOSED, RTX_PTO, RTX_REO, RTX_RTO, TIMERS};
use crate::sim::{SimDuration, SimTime};

impl Connection {
    /// Fire every timer due at `now`, in the [`Timer`] order.
    pub fn handle_timeout(&mut self, now: SimTime) {
        for t in TIMERS {
            match self.timers.get(t as usize) {
                Some(at) if at <= now => {
                    self.timers.set(t as usize, None);
                    match t {
                        Timer::Retransmit => match self.rtx_kind {
                            RTX_PTO => self.on_pto(now),
                            RTX_REO => self.on_reorder_timeout(now),
                            _ => self.on_rto(now),
                        },
                        Timer::Persist => self.on_persist(now),
                        Timer::DelayedAck => self.on_delack_timer(),
                        Timer::TimeWait => {
                            self.enter_closed();
                            self.events |= EV_CLOSED;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// RFC 6298 §5.4–5.6 retransmission timeout.
    pub(super) fn on_rto(&mut self, now: SimTime) {
        let limit = match self.state {
            State::SynSent => self.config.syn_retries,
            State::SynReceived => self.config.synack_retries,
            State::Closed | State::Listen | State::TimeWait => return,
            _ => self.config.retries,
        };
        if self.retries >= limit {
            let reason = match self.state {
                State::SynSent | State::SynReceived => LostReason::HandshakeTimeout,
                _ => LostReason::RetransmitLimit,
            };
            self.lose(reason);
            return;
        }
        if self.user_timed_out(now) {
            self.lose(LostReason::UserTimeout);
            return;
        }
        self.retries += 1;
        self.stats.timeouts += 1;
        let flight = self.snd_max.wrapping_sub(self.snd_una);
        self.cc.on_timeout(flight, self.snd_max, self.retries == 1);
        self.rtt.on_timeout();
        // Karn's rule (RFC 6298 §3): no sample from retransmitted data.
        self.rtt_seq = None;
        self.fast_rtx = false;
        self.tlp_now = false;
        let synchronized = self.state.is_synchronized();
        if let Some(sb) = self.sb.as_deref_mut().filter(|_| synchronized) {
            // SACK: every segment not SACKed is lost and is resent in
            // order as the window opens (Linux tcp_enter_loss); SACKed
            // ones are kept. SND.NXT stays at SND.MAX.
            sb.mark_all_lost();
            sb.loss_point = Some(self.snd_max.wrapping_sub(1));
        } else if matches!(self.state, State::SynSent | State::SynReceived) {
            self.syn_rtx = true;
            self.snd_nxt = self.iss;
        } else {
            self.snd_nxt = self.snd_una;
        }
        // §5.4/§5.6: retransmit (next poll_transmit) and restart the timer
        // with the backed-off RTO.
        self.arm_rto(now);
    }

    pub(super) fn user_timed_out(&self, now: SimTime) -> bool {
        match self.config.user_timeout {
            Some(ut) => now.saturating_since(self.progress_since) >= ut,
            None => false,
        }
    }

    /// The tail-loss probe timer fired (RFC 8985 §7.3): the next
    /// `poll_transmit` sends one probe (new data if the peer's window
    /// allows, else the last segment again); not a timeout, so neither the
    /// backoff nor the retry count moves.
    fn on_pto(&mut self, now: SimTime) {
        if !self.state.is_synchronized() || self.snd_una == self.snd_max {
            return;
        }
        self.tlp_now = true;
        // Re-armed as the RTO once the probe is out; until then keep it.
        self.arm_rto(now);
    }

    /// RACK's reordering timer fired (RFC 8985 §6.3): mark what is now
    /// overdue as lost and start recovery.
    fn on_reorder_timeout(&mut self, now: SimTime) {
        let Some(mut sb) = self.sb.take() else {
            return;
        };
        let flight = self.snd_max.wrapping_sub(self.snd_una);
        let reo = self.rack_mark_lost(&mut sb, now, flight);
        self.sb = Some(sb);
        self.rearm_sack(now, true, reo);
    }

    /// Delayed-ACK timer (Linux `tcp_delack_timer_handler`): send the ACK;
    /// with the adaptive timer, leave interactive mode (ato back to its
    /// minimum) or, outside it, double ato up to the RTO.
    fn on_delack_timer(&mut self) {
        self.ack_now = true;
        let c = &self.config;
        if c.delayed_ack_min < c.delayed_ack_max {
            if self.pingpong {
                self.pingpong = false;
                self.ato = c.delayed_ack_min;
            } else {
                let d = self.ato.as_nanos().saturating_mul(2);
                let cap = self.rtt.rto().as_nanos().min(c.delayed_ack_max.as_nanos());
                self.ato = SimDuration::from_nanos(d.min(cap).max(c.delayed_ack_min.as_nanos()));
            }
        }
    }

    /// After a tail-loss probe went out: the RTO counts from the oldest
    /// outstanding segment's latest transmission (Linux `tcp_rearm_rto`
    /// while a probe was pending), or from now when that is already past.
    pub(super) fn arm_rto_after_probe(&mut self, now: SimTime) {
        let head = self.sb.as_deref().and_then(|sb| sb.head_xmit());
        self.arm_rto(now);
        if let Some(h) = head {
            let at = h + self.rtt.timeout(&self.config);
            if at > now {
                self.set_timer(Timer::Retransmit, Some(at));
            }
        }
    }

    /// Arm the retransmission timer at now + RTO, not beyond the user
    /// timeout.
    pub(super) fn arm_rto(&mut self, now: SimTime) {
        self.rtx_kind = RTX_RTO;
        let mut at = now + self.rtt.timeout(&self.config);
        if let Some(ut) = self.config.user_timeout {
            if self.state.is_synchronized() {
                at = at.min(self.progress_since + ut).max(now);
            }
        }
        self.set_timer(Timer::Retransmit, Some(at));
    }

    /// Persist timer fired: send a window probe (RFC 9293 §3.8.6.1).
    pub(super) fn on_persist(&mut self, now: SimTime) {
        if self.snd_wnd != 0 || !self.state.is_synchronized() {
            return;
        }
        if self.probes >= self.config.retries {
            self.lose(LostReason::ProbeLimit);
            return;
        }
        self.probes += 1;
        self.probe_now = true;
        self.persist_backoff = self.persist_backoff.saturating_add(1);
        self.arm_persist(now);
    }

    pub(super) fn arm_persist(&mut self, now: SimTime) {
        let base = self
            .rtt
            .rto()
            .as_nanos()
            .max(self.config.min_rto.as_nanos());
        let shift = self.persist_backoff.min(32);
        let d = base
            .saturating_mul(1u64 << shift)
            .min(self.config.max_rto.as_nanos());
        self.set_timer(Timer::Persist, Some(now + SimDuration::from_nanos(d)));
    }

    /// Arm or disarm the persist timer: armed while the peer's window is
    /// zero, data waits, and nothing is in flight.
    pub(super) fn update_persist(&mut self, now: SimTime) {
        let waiting = self.unsent() > 0 || (self.fin_queued && !self.fin_sent());
        let idle = self.snd_una == self.snd_max;
        if self.snd_wnd == 0 && waiting && idle && self.state.is_synchronized() {
            if self.timer(Timer::Persist).is_none() {
                self.persist_backoff = 0;
                self.arm_persist(now);
            }
        } else {
            self.set_timer(Timer::Persist, None);
            self.persist_backoff = 0;
        }
    }
}
