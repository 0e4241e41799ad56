//! Segment arrival (RFC 9293 §3.10.7).

use super::super::congestion::{seq_le, seq_lt, AckAction};
use super::super::sack::Scoreboard;
use super::super::segment::TcpRepr;
use super::{
    Connection, InputError, Segment, State, Timer, EV_CLOSED, EV_CONNECTED, EV_PEER_CLOSED,
    EV_READABLE, EV_RESET, RTX_PTO, RTX_REO, RTX_RTO,
};
use crate::net::addr::{Addr, SockAddr};
use crate::sim::{SimDuration, SimTime};

impl Connection {
    /// A segment (TCP header and payload, no IP header; its checksum
    /// verified by the network layer) arrived. Malformed segments, segments
    /// for another connection, and segments to a CLOSED connection are
    /// refused with an [`InputError`] and change nothing.
    pub fn handle_input(&mut self, now: SimTime, seg: Segment<'_>) -> Result<(), InputError> {
        if self.state == State::Closed {
            return Err(InputError::Closed);
        }
        let (r, payload) = TcpRepr::parse_unchecked(seg.bytes)?;
        if seg.dst != self.local.addr && self.local.addr != Addr::UNSPECIFIED
            || r.dst_port != self.local.port
        {
            return Err(InputError::NotForUs);
        }
        if self.state == State::Listen {
            self.on_listen(now, SockAddr::new(seg.src, r.src_port), &r);
            return Ok(());
        }
        if seg.src != self.remote.addr || r.src_port != self.remote.port {
            return Err(InputError::NotForUs);
        }
        self.stats.segments_received += 1;
        if self.state == State::SynSent {
            self.on_syn_sent(now, &r);
        } else {
            self.on_synchronized(now, &r, payload);
        }
        self.update_persist(now);
        Ok(())
    }

    /// Options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2, §3.2,
    /// RFC 2018 §2): each is used only when both sides offered it.
    pub(super) fn take_syn_options(&mut self, r: &TcpRepr) {
        // RFC 9293 §3.7.1: without the option assume 536.
        let peer_mss = r.mss.unwrap_or(536).max(64);
        self.ts_ok = self.config.timestamps && r.timestamps.is_some();
        self.sack_ok = self.config.sack_permitted && r.sack_permitted;
        self.sb = self.sack_ok.then(Box::default);
        match (self.config.window_scale, r.window_scale) {
            (Some(ours), Some(theirs)) => {
                self.ws_ok = true;
                self.rcv_wscale = ours.min(14);
                self.snd_wscale = theirs.min(14);
            }
            _ => {
                self.ws_ok = false;
                self.rcv_wscale = 0;
                self.snd_wscale = 0;
            }
        }
        if let Some((val, _)) = r.timestamps {
            self.ts_recent = val;
        }
        // RFC 6691: the MSS excludes options; Linux sends MSS − 12 with
        // timestamps.
        let opt = if self.ts_ok { 12 } else { 0 };
        self.smss = peer_mss.min(self.local_mss).saturating_sub(opt).max(32);
        self.rcv_mss = self.local_mss.saturating_sub(opt).max(32);
        let iw = self.config.initial_cwnd(u32::from(self.smss));
        self.cc.set_smss(u32::from(self.smss), iw);
        // Linux tcp_incr_quickack: min(rcv_wnd / (2·rcv_mss), 16).
        let by_wnd = self.config.recv_buffer / (2 * u32::from(self.rcv_mss).max(1));
        self.quickack = self.config.quickack_segments.min(by_wnd.max(1));
        if self.config.quickack_segments == 0 {
            self.quickack = 0;
        }
    }

    /// LISTEN (RFC 9293 §3.10.7.2).
    fn on_listen(&mut self, now: SimTime, from: SockAddr, r: &TcpRepr) {
        if r.flags.rst() {
            return;
        }
        if r.flags.ack() {
            // <SEQ=SEG.ACK><CTL=RST> — sent by the driver via `reset_for`;
            // this connection has no peer yet, so it stays in LISTEN.
            return;
        }
        if !r.flags.syn() {
            return;
        }
        self.remote = from;
        self.stats.segments_received += 1;
        self.accept_syn(now, r);
    }

    /// SYN accepted (LISTEN or simultaneous open): SYN-RECEIVED.
    pub(super) fn accept_syn(&mut self, now: SimTime, r: &TcpRepr) {
        self.irs = r.seq;
        self.rcv_nxt = r.seq.wrapping_add(1);
        self.rcv_adv = self.rcv_nxt;
        self.snd_wnd = u32::from(r.window);
        self.snd_wl1 = r.seq;
        self.snd_wl2 = r.ack;
        self.take_syn_options(r);
        self.state = State::SynReceived;
        self.progress_since = now;
        self.last_data = now;
    }

    /// SYN-SENT (RFC 9293 §3.10.7.3).
    fn on_syn_sent(&mut self, now: SimTime, r: &TcpRepr) {
        let ack_ok = r.flags.ack() && seq_lt(self.iss, r.ack) && seq_le(r.ack, self.snd_max);
        if r.flags.ack() && !ack_ok {
            if !r.flags.rst() {
                self.send_rst(r.ack, None);
            }
            return;
        }
        if r.flags.rst() {
            // "If the ACK was acceptable, signal 'connection reset'".
            if ack_ok {
                self.events |= EV_RESET;
                self.enter_closed();
            }
            return;
        }
        if !r.flags.syn() {
            return;
        }
        if ack_ok {
            self.irs = r.seq;
            self.rcv_nxt = r.seq.wrapping_add(1);
            self.rcv_adv = self.rcv_nxt;
            self.take_syn_options(r);
            self.snd_wnd = u32::from(r.window); // never scaled in a SYN
            self.snd_wl1 = r.seq;
            self.snd_wl2 = r.ack;
            self.snd_una = r.ack;
            if seq_lt(self.snd_nxt, r.ack) {
                self.snd_nxt = r.ack;
            }
            self.establish(now);
            self.ack_now = true;
        } else {
            // Simultaneous open: SYN-RECEIVED, resend our SYN as SYN-ACK.
            self.accept_syn(now, r);
            self.snd_nxt = self.iss;
        }
    }

    /// The handshake completed.
    fn establish(&mut self, now: SimTime) {
        self.state = State::Established;
        self.events |= EV_CONNECTED;
        self.retries = 0;
        self.progress_since = now;
        if let Some(s) = self.rtt_seq.take() {
            if seq_le(s, self.snd_una) {
                self.rtt
                    .sample(&self.config, now.saturating_since(self.rtt_time));
            }
        }
        if self.syn_rtx {
            // RFC 6298 §5.7: SYN timed out, start data with RTO = 3 s.
            self.rtt.fallback(&self.config);
        } else {
            self.rtt.reset_backoff();
        }
        self.set_timer(Timer::Retransmit, None);
    }

    /// Segment-acceptability test (RFC 9293 §3.10.7.4, first check).
    fn acceptable(&self, r: &TcpRepr) -> bool {
        let len = r.segment_len();
        let wnd = self
            .rcv_adv
            .wrapping_sub(self.rcv_nxt)
            .max(self.rcvbuf.window());
        let in_wnd = |s: u32| seq_le(self.rcv_nxt, s) && seq_lt(s, self.rcv_nxt.wrapping_add(wnd));
        match (len, wnd) {
            (0, 0) => r.seq == self.rcv_nxt,
            (0, _) => in_wnd(r.seq),
            (_, 0) => false,
            _ => in_wnd(r.seq) || in_wnd(r.seq.wrapping_add(len - 1)),
        }
    }

    /// Linux `__tcp_oow_rate_limited`: an out-of-window segment without
    /// data is answered at most once per `Config::invalid_ack_ratelimit_ms` (data
    /// segments are not part of an ACK loop and are always answered).
    fn oow_rate_limited(&mut self, now: SimTime) -> bool {
        let gap = self.config.invalid_ack_ratelimit_ms();
        if gap == 0 {
            return false;
        }
        let now_ms = ((now.as_nanos() / 1_000_000) as u32).wrapping_add(1);
        if self.last_oow_ack_ms != 0 && now_ms.wrapping_sub(self.last_oow_ack_ms) < gap {
            self.stats.oow_acks_skipped += 1;
            return true;
        }
        self.last_oow_ack_ms = now_ms;
        false
    }

    /// A retransmission of data already received and acknowledged (its
    /// end is `rcv_nxt`): Linux's `tcp_sequence` still accepts it (its end
    /// is not before `rcv_wup`, the last ACK sent) and
    /// `tcp_replace_ts_recent` records its TSval, so the duplicate ACK it
    /// triggers echoes the retransmission's timestamp — a valid RTT sample
    /// that ends the sender's backoff after a lost ACK. RFC 7323 §5.3 (R2
    /// before R3) rejects the segment first, so the `rfc` profile echoes the
    /// original send's timestamp, and the sender's RTT sample spans every
    /// retransmission timeout.
    fn dup_ts_recent(&mut self, r: &TcpRepr, len: usize) {
        if self.config.profile != super::super::profile::Profile::LinuxLike || !self.ts_ok {
            return;
        }
        if let Some((val, _)) = r.timestamps {
            if r.seq.wrapping_add(len as u32) == self.rcv_nxt
                && (val.wrapping_sub(self.ts_recent) as i32) >= 0
            {
                self.ts_recent = val;
            }
        }
    }

    /// Every state after SYN-SENT (RFC 9293 §3.10.7.4).
    fn on_synchronized(&mut self, now: SimTime, r: &TcpRepr, payload: &[u8]) {
        if self.state == State::SynReceived && r.flags.syn() && !r.flags.ack() && r.seq == self.irs
        {
            // The peer retransmitted its SYN: our SYN-ACK was lost.
            self.snd_nxt = self.iss;
            return;
        }
        if !self.acceptable(r) {
            // "If an incoming segment is not acceptable, an acknowledgment
            // should be sent in reply (unless the RST bit is set)".
            if !r.flags.rst() {
                if payload.is_empty() && !r.flags.syn() && self.oow_rate_limited(now) {
                    return;
                }
                self.ack_now = true;
                if !payload.is_empty() && seq_lt(r.seq, self.rcv_nxt) {
                    self.stats.dup_data_received += 1;
                    self.dup_ts_recent(r, payload.len());
                }
            }
            return;
        }
        if r.flags.rst() {
            // RFC 5961 §3.2: reset only on an exact match, else challenge.
            if r.seq == self.rcv_nxt {
                self.events |= EV_RESET;
                self.enter_closed();
            } else {
                self.ack_now = true;
            }
            return;
        }
        if r.flags.syn() {
            // RFC 5961 §4.2: challenge ACK, drop.
            self.ack_now = true;
            return;
        }
        if !r.flags.ack() {
            return;
        }
        if let Some((val, _)) = r.timestamps {
            // RFC 7323 §4.3: remember the newest TSval of in-order segments.
            if self.ts_ok && seq_le(r.seq, self.rcv_nxt) {
                self.ts_recent = val;
            }
        }
        if self.state == State::SynReceived {
            if seq_lt(self.snd_una, r.ack) && seq_le(r.ack, self.snd_max) {
                self.snd_una = r.ack;
                // A retransmitted SYN pulled SND.NXT back to ISS to resend
                // the SYN-ACK; this ACK covers it, so SND.NXT moves on
                // (left behind, data written meanwhile waited for an ACK
                // that never comes, with no timer armed: the tcp_pair fuzz
                // target's liveness check found it).
                if seq_lt(self.snd_nxt, r.ack) {
                    self.snd_nxt = r.ack;
                }
                self.snd_wnd = u32::from(r.window) << self.snd_wscale;
                self.snd_wl1 = r.seq;
                self.snd_wl2 = r.ack;
                self.establish(now);
                if self.fin_queued {
                    self.state = State::FinWait1;
                }
            } else {
                self.send_rst(r.ack, None);
                return;
            }
        } else if !self.on_ack(now, r, payload.is_empty()) {
            return;
        }
        self.on_data(now, r, payload);
    }

    /// ACK field processing; false when the segment must be dropped.
    fn on_ack(&mut self, now: SimTime, r: &TcpRepr, no_data: bool) -> bool {
        if seq_lt(self.snd_max, r.ack) {
            // Acknowledges something not yet sent: ACK and drop.
            self.ack_now = true;
            return false;
        }
        let wnd = u32::from(r.window) << self.snd_wscale;
        let flight = self.snd_max.wrapping_sub(self.snd_una);
        let tsecr = r.timestamps.map_or(0, |t| t.1);
        if self.sb.is_some() {
            self.on_ack_sack(now, r, flight, no_data && wnd == self.snd_wnd);
        } else if seq_lt(self.snd_una, r.ack) {
            self.on_new_ack(now, r.ack, flight, tsecr);
        } else if r.ack == self.snd_una
            && no_data
            && !r.flags.fin()
            && wnd == self.snd_wnd
            && flight > 0
        {
            // RFC 5681 §2 duplicate ACK.
            self.stats.dupacks_received += 1;
            let act = self
                .cc
                .on_dupack(r.ack, flight, self.snd_max, self.config.dupack_threshold);
            self.do_ack_action(now, act);
        }
        // RFC 9293 §3.10.7.4: update the send window.
        if seq_lt(self.snd_wl1, r.seq) || (self.snd_wl1 == r.seq && seq_le(self.snd_wl2, r.ack)) {
            if wnd > 0 && self.snd_wnd == 0 {
                self.probes = 0;
            }
            self.snd_wnd = wnd;
            self.snd_wl1 = r.seq;
            self.snd_wl2 = r.ack;
        }
        if r.ack == self.snd_una {
            // Any answer to a probe counts as an answer.
            self.probes = 0;
        }
        self.on_fin_acked();
        self.state != State::Closed
    }

    fn do_ack_action(&mut self, now: SimTime, act: AckAction) {
        if let AckAction::Retransmit { restart_timer } = act {
            self.fast_rtx = true;
            if restart_timer {
                self.arm_rto(now);
            }
        }
    }

    /// Free acknowledged bytes and move SND.UNA to `ack`; returns the
    /// bytes newly acknowledged.
    fn advance_una(&mut self, ack: u32) -> u32 {
        let acked = ack.wrapping_sub(self.snd_una);
        let into_buf = ack.wrapping_sub(self.buf_seq);
        if (into_buf as i32) > 0 {
            let n = into_buf.min(self.sndbuf.len());
            self.sndbuf.consume(n);
            self.buf_seq = self.buf_seq.wrapping_add(n);
        }
        self.snd_una = ack;
        if seq_lt(self.snd_nxt, ack) {
            self.snd_nxt = ack;
        }
        if self.snd_una == self.snd_max {
            self.rtx_unacked = false;
        }
        acked
    }

    /// RFC 7323 §4 (Linux `tcp_rtt_tsopt_us`): an RTT sample from the
    /// timestamp echo, used when the acknowledged data was retransmitted
    /// (Karn's rule forbids timing it by the send time, the echo does not:
    /// it names the copy that arrived). Millisecond clock, at least 1 ms.
    fn ts_sample(&mut self, now: SimTime, tsecr: u32) {
        if !self.ts_ok || tsecr == 0 {
            return;
        }
        let now_ms = (now.as_nanos() / 1_000_000) as u32;
        let d = now_ms.wrapping_sub(tsecr);
        if (d as i32) < 0 {
            return;
        }
        self.rtt
            .sample(&self.config, SimDuration::from_millis(u64::from(d.max(1))));
    }

    /// SND.UNA advances to `ack` (RFC 6298 §5.2–5.3, RFC 5681, RFC 6582).
    fn on_new_ack(&mut self, now: SimTime, ack: u32, flight: u32, tsecr: u32) {
        let rtx_acked = self.rtx_unacked;
        let acked = self.advance_una(ack);
        let mut sampled = false;
        if let Some(s) = self.rtt_seq {
            if seq_le(s, ack) {
                self.rtt_seq = None;
                sampled = true;
                self.rtt
                    .sample(&self.config, now.saturating_since(self.rtt_time));
            }
        }
        if !sampled && rtx_acked {
            self.ts_sample(now, tsecr);
        }
        self.retries = 0;
        self.probes = 0;
        self.progress_since = now;
        let act = self.cc.on_ack(now, self.rtt.srtt(), ack, acked, flight);
        if self.snd_una == self.snd_max {
            self.set_timer(Timer::Retransmit, None);
        } else {
            self.arm_rto(now);
        }
        self.do_ack_action(now, act);
    }

    /// ACK processing with SACK (RFC 6675, RFC 8985): the scoreboard takes
    /// the cumulative ACK and the SACK blocks, RACK marks losses by time,
    /// recovery starts on the first loss marked, and the retransmission
    /// slot is re-armed as RTO, reordering timer or tail-loss probe.
    fn on_ack_sack(&mut self, now: SimTime, r: &TcpRepr, flight: u32, dup_candidate: bool) {
        let Some(mut sb) = self.sb.take() else {
            return;
        };
        let new = seq_lt(self.snd_una, r.ack);
        let d = sb.on_ack(now, r.ack, r.sack.as_slice());
        if new {
            let rtx_acked = self.rtx_unacked;
            let acked = self.advance_una(r.ack);
            match d.rtt_ns {
                Some(ns) => self.rtt.sample(&self.config, SimDuration::from_nanos(ns)),
                None if rtx_acked || d.acked_retransmitted => {
                    self.ts_sample(now, r.timestamps.map_or(0, |t| t.1))
                }
                None => {}
            }
            self.retries = 0;
            self.probes = 0;
            self.progress_since = now;
            if let Some(point) = sb.loss_point {
                // Linux leaves CA_Loss once everything sent before the
                // timeout is acknowledged.
                if seq_lt(point, r.ack) {
                    sb.loss_point = None;
                }
            }
            if self.cc.in_recovery {
                self.cc.on_sack_recovery_ack(r.ack);
            } else {
                self.cc.on_ack(now, self.rtt.srtt(), r.ack, acked, flight);
            }
            if let Some(end) = sb.tlp_end {
                if seq_le(end, r.ack) {
                    // RFC 8985 §7.4: the probe repaired a loss (no D-SACK
                    // says otherwise): respond as to a loss, once.
                    if sb.tlp_retrans && !self.cc.in_recovery && sb.loss_point.is_none() {
                        self.cc.reduce_once(flight);
                    }
                    sb.tlp_end = None;
                }
            }
        } else if r.ack == self.snd_una && dup_candidate && !r.flags.fin() && flight > 0 {
            self.stats.dupacks_received += 1;
        }
        let reo = self.rack_mark_lost(&mut sb, now, flight);
        self.sb = Some(sb);
        self.rearm_sack(now, new, reo);
    }

    /// RACK's loss marking (RFC 8985 §6.2 step 5), after an ACK or when the
    /// reordering timer fires: the first loss outside recovery starts it
    /// (RFC 6675 §5 step 4, Linux `tcp_enter_recovery`) with `flight` bytes
    /// outstanding. Returns when the reordering timer is due.
    pub(super) fn rack_mark_lost(
        &mut self,
        sb: &mut Scoreboard,
        now: SimTime,
        flight: u32,
    ) -> Option<SimTime> {
        let srtt = self.rtt.srtt().map_or(0, |d| d.as_nanos());
        let recovering = self.cc.in_recovery || sb.loss_point.is_some();
        let (lost, reo) = sb.detect_loss(now, srtt, recovering);
        self.stats.rack_lost += lost;
        if lost > 0 && !recovering {
            self.cc.enter_sack_recovery(flight, self.snd_max);
            self.fast_rtx = true;
            sb.tlp_end = None;
        }
        reo
    }

    /// Arm the retransmission slot after a SACK-mode ACK: nothing when
    /// all is acknowledged; RACK's reordering timer when a segment awaits
    /// its deadline; a tail-loss probe when allowed; else the RTO
    /// (restarted when the ACK acknowledged new data, RFC 6298 §5.3).
    pub(super) fn rearm_sack(&mut self, now: SimTime, restart: bool, reo: Option<SimTime>) {
        if self.snd_una == self.snd_max {
            self.set_timer(Timer::Retransmit, None);
            self.rtx_kind = RTX_RTO;
            return;
        }
        if let Some(at) = reo {
            self.rtx_kind = RTX_REO;
            self.set_timer(Timer::Retransmit, Some(at));
            return;
        }
        if self.schedule_tlp(now) {
            return;
        }
        if restart || self.timer(Timer::Retransmit).is_none() || self.rtx_kind != RTX_RTO {
            self.arm_rto(now);
        }
    }

    /// RFC 8985 §7.2: arm the probe timeout when no loss recovery and no
    /// probe is under way: PTO = max(2·SRTT, 10 ms), or 2·SRTT plus the
    /// worst-case delayed ACK with one segment in flight; never later than
    /// the RTO would fire (Linux `tcp_schedule_loss_probe`).
    pub(super) fn schedule_tlp(&mut self, now: SimTime) -> bool {
        let Some(sb) = self.sb.as_deref() else {
            return false;
        };
        let Some(srtt) = self.rtt.srtt() else {
            return false;
        };
        if self.cc.in_recovery
            || sb.loss_point.is_some()
            || sb.tlp_end.is_some()
            || sb.outstanding() == 0
            || !matches!(
                self.state,
                State::Established | State::CloseWait | State::FinWait1 | State::LastAck
            )
        {
            return false;
        }
        let two = srtt.as_nanos().saturating_mul(2);
        let pto = if sb.outstanding() == 1 {
            two.saturating_add(self.config.delayed_ack_max.as_nanos())
        } else {
            two.max(10_000_000)
        };
        let mut at = now + SimDuration::from_nanos(pto);
        if let Some(head) = sb.head_xmit() {
            let rto_at = head + self.rtt.timeout(&self.config);
            if rto_at > now {
                at = at.min(rto_at);
            }
        }
        self.rtx_kind = RTX_PTO;
        self.set_timer(Timer::Retransmit, Some(at));
        true
    }

    /// Our FIN was acknowledged: FIN-WAIT-1 → FIN-WAIT-2, CLOSING →
    /// TIME-WAIT, LAST-ACK → CLOSED.
    fn on_fin_acked(&mut self) {
        if !self.fin_queued || self.snd_una != self.fin_seq().wrapping_add(1) {
            return;
        }
        match self.state {
            State::FinWait1 => self.state = State::FinWait2,
            State::Closing => self.enter_time_wait_pending(),
            State::LastAck => {
                self.enter_closed();
                self.events |= EV_CLOSED;
            }
            _ => {}
        }
    }

    /// Marks TIME-WAIT; the timer is armed in `on_data` where `now` is known.
    fn enter_time_wait_pending(&mut self) {
        self.state = State::TimeWait;
        self.set_timer(Timer::Retransmit, None);
    }

    /// Segment text and FIN (RFC 9293 §3.10.7.4, seventh and eighth checks).
    fn on_data(&mut self, now: SimTime, r: &TcpRepr, payload: &[u8]) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        );
        if !payload.is_empty() && receiving {
            self.on_payload(now, r.seq, payload);
        } else if !payload.is_empty() {
            self.ack_now = true;
        }
        if r.flags.fin() && receiving {
            let fin = r.seq.wrapping_add(u32::from(r.payload_len));
            if seq_le(self.rcv_nxt, fin) {
                self.peer_fin = Some(fin);
            }
        }
        if let Some(fin) = self.peer_fin {
            if fin == self.rcv_nxt && receiving {
                self.peer_fin = None;
                self.on_peer_fin(now);
            }
        }
        if r.flags.fin() && self.state == State::TimeWait {
            // A retransmitted FIN: ACK it and restart 2·MSL.
            self.ack_now = true;
            self.set_timer(Timer::TimeWait, Some(now + self.config.time_wait));
        } else if r.flags.fin()
            && matches!(
                self.state,
                State::CloseWait | State::Closing | State::LastAck
            )
        {
            self.ack_now = true;
        }
        if self.state == State::TimeWait && self.timer(Timer::TimeWait).is_none() {
            self.set_timer(Timer::TimeWait, Some(now + self.config.time_wait));
        }
    }

    fn on_peer_fin(&mut self, now: SimTime) {
        self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt);
        self.ack_now = true;
        self.events |= EV_PEER_CLOSED;
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_sent() && self.snd_una == self.fin_seq().wrapping_add(1) {
                    self.state = State::TimeWait;
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.state = State::TimeWait,
            _ => {}
        }
        if self.state == State::TimeWait {
            self.set_timer(Timer::Retransmit, None);
            self.set_timer(Timer::TimeWait, Some(now + self.config.time_wait));
        }
    }

    /// In-window payload: store, deliver what is in order, decide the ACK
    /// (RFC 5681 §4.2, RFC 1122 §4.2.3.2).
    fn on_payload(&mut self, now: SimTime, seq: u32, payload: &[u8]) {
        let off = seq.wrapping_sub(self.rcv_nxt) as i32;
        let (off, data) = if off < 0 {
            self.stats.dup_data_received += 1;
            let skip = off.unsigned_abs() as usize;
            if skip >= payload.len() {
                self.ack_now = true;
                return;
            }
            (0u32, &payload[skip..])
        } else {
            (off as u32, payload)
        };
        let had_holes = !self.rcvbuf.assembler().is_empty();
        let Some(adv) = self.rcvbuf.insert(off, data) else {
            self.ack_now = true;
            return;
        };
        if off > 0 {
            // Out of order: a duplicate ACK at once (RFC 5681 §4.2).
            self.ooo_acks = self.ooo_acks.saturating_add(1);
            self.last_ooo = seq;
        } else if had_holes {
            // Filling a hole: ACK at once.
            self.ack_now = true;
        }
        if adv == 0 {
            return;
        }
        self.rcv_nxt = self.rcv_nxt.wrapping_add(adv);
        if seq_lt(self.rcv_adv, self.rcv_nxt) {
            self.rcv_adv = self.rcv_nxt;
        }
        self.stats.bytes_received += u64::from(adv);
        self.events |= EV_READABLE;
        let len = data.len().min(usize::from(u16::MAX)) as u16;
        self.rcv_mss = self.rcv_mss.max(len);
        self.delayed_ack_rule(now, len);
    }

    fn delayed_ack_rule(&mut self, now: SimTime, len: u16) {
        let c = &self.config;
        if c.delayed_ack_max.as_nanos() == 0 {
            self.ack_now = true;
            return;
        }
        if c.delayed_ack_min < c.delayed_ack_max {
            // Linux tcp_event_data_recv: adapt ato to the arrival gap.
            let m = now.saturating_since(self.last_data);
            let min = c.delayed_ack_min;
            if m.as_nanos() <= min.as_nanos() / 2 {
                self.ato = crate::sim::SimDuration::from_nanos(
                    self.ato.as_nanos() / 2 + min.as_nanos() / 2,
                );
            } else if m < self.ato {
                self.ato = crate::sim::SimDuration::from_nanos(self.ato.as_nanos() / 2) + m;
            } else if m > self.rtt.rto() && c.quickack_segments > 0 {
                // Long silence: back to quick-ACK mode.
                self.quickack = self.quickack.max(2);
            }
            self.ato = self.ato.max(min).min(c.delayed_ack_max);
        }
        self.last_data = now;
        if self.quickack > 0 && !self.pingpong {
            self.quickack -= 1;
            self.ack_now = true;
            return;
        }
        if len >= self.rcv_mss {
            self.full_segs += 1;
        }
        if len < self.rcv_mss {
            // tcp_measure_rcv_mss: a segment below the MSS was pushed.
            self.pushed = if self.pushed > 0 { 2 } else { 1 };
        }
        if self.full_segs >= self.config.ack_every {
            self.ack_now = true;
        } else if self.timer(Timer::DelayedAck).is_none() {
            self.set_timer(Timer::DelayedAck, Some(now + self.ato));
        }
    }
}
