//! Segment generation: `poll_transmit` (RFC 9293 §3.10.2 SEND, §3.8.6
//! window management, §3.7.4 Nagle; RFC 5681 §3.2 fast retransmit).

use super::super::congestion::{seq_le, seq_lt};
use super::super::segment::{SackBlocks, TcpFlags, TcpRepr};
use super::{Connection, State, Timer, Transmit};
use crate::sim::SimTime;

impl Connection {
    /// Queue an RST `<SEQ=seq><CTL=RST>` (RFC 9293 §3.10.7.3/§3.10.7.4 for
    /// unacceptable ACKs in SYN-SENT and SYN-RECEIVED).
    pub(super) fn send_rst(&mut self, seq: u32, _ack: Option<u32>) {
        self.rst_now = true;
        self.rst_seq = seq;
    }

    /// The next segment to send, appended to `buf` (TCP header, options,
    /// payload; the checksum left zero for the network layer to fill, see
    /// [`crate::transport::tcp::segment::fill_checksum`]); `None` when
    /// nothing is due. A segment carries at most the SMSS. See the polling
    /// order on [`Connection`].
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<Transmit> {
        let start = buf.len();
        buf.resize(start + 60 + usize::from(self.smss), 0);
        let t = self.transmit_into(now, &mut buf[start..]);
        buf.truncate(start + t.map_or(0, |t| t.len));
        t
    }

    /// [`Connection::poll_transmit`] into a buffer whose length bounds the
    /// segment (a smaller one gets smaller segments).
    fn transmit_into(&mut self, now: SimTime, buf: &mut [u8]) -> Option<Transmit> {
        if self.rst_now {
            self.rst_now = false;
            let r = TcpRepr {
                seq: self.rst_seq,
                flags: TcpFlags(TcpFlags::RST),
                ..self.base()
            };
            return self.finish(now, r, buf, false);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return self.send_syn(now, buf)
            }
            State::SynSent => return None,
            _ => {}
        }
        if self.state.is_synchronized() && self.sb.is_some() {
            if let Some(t) = self.send_sack_mode(now, buf) {
                return Some(t);
            }
        } else if self.state.is_synchronized() {
            if self.fast_rtx {
                self.fast_rtx = false;
                if let Some(t) = self.send_fast_rtx(now, buf) {
                    return Some(t);
                }
            }
            if let Some(t) = self.send_data(now, buf, None) {
                return Some(t);
            }
        }
        if self.state.is_synchronized() && self.probe_now {
            self.probe_now = false;
            self.stats.window_probes += 1;
            // Linux tcp_xmit_probe_skb: an old sequence number makes the
            // receiver answer with its current window.
            let r = TcpRepr {
                seq: self.snd_una.wrapping_sub(1),
                flags: TcpFlags(TcpFlags::ACK),
                ..self.base()
            };
            return self.finish(now, r, buf, false);
        }
        if self.ack_now || self.ooo_acks > 0 {
            self.stats.acks_sent += 1;
            // A segment without data, SYN or FIN carries the highest
            // sequence number sent (4.4BSD tcp_output: snd_max; Linux never
            // pulls snd_nxt back), not SND.NXT pulled back to SND.UNA by a
            // timeout: a peer that already holds our data finds SND.NXT
            // below its RCV.NXT, rejects the ACK unprocessed and answers
            // with its own — an ACK loop when both ends timed out.
            let r = TcpRepr {
                seq: self.snd_max,
                flags: TcpFlags(TcpFlags::ACK),
                ..self.base()
            };
            return self.finish(now, r, buf, false);
        }
        None
    }

    /// Ports, and the SACK blocks when out-of-order data is held (the
    /// timestamps option is added by `finish`).
    fn base(&self) -> TcpRepr {
        TcpRepr {
            src_port: self.local.port,
            dst_port: self.remote.port,
            sack: self.sack_blocks(),
            ..TcpRepr::default()
        }
    }

    /// RFC 2018 §4: one block per out-of-order range held, the one holding
    /// the latest arrival first, then the others from the highest down
    /// (as many as fit: three beside timestamps).
    fn sack_blocks(&self) -> SackBlocks {
        let mut s = SackBlocks::default();
        if !self.sack_ok || !self.state.is_synchronized() {
            return s;
        }
        let ranges = self.rcvbuf.assembler().ranges();
        let abs = |r: &(u32, u32)| {
            (
                self.rcv_nxt.wrapping_add(r.0),
                self.rcv_nxt.wrapping_add(r.1),
            )
        };
        let recent = ranges.iter().position(|r| {
            let (a, b) = abs(r);
            seq_le(a, self.last_ooo) && seq_lt(self.last_ooo, b)
        });
        if let Some(i) = recent {
            let (a, b) = abs(&ranges[i]);
            s.push(a, b);
        }
        for (i, r) in ranges.iter().enumerate().rev() {
            if Some(i) != recent {
                let (a, b) = abs(r);
                s.push(a, b);
            }
        }
        s
    }

    /// The window field (RFC 7323 §2.3: scaled except in SYNs; never
    /// shrinking the right edge, RFC 9293 §3.8.6.2.2, rounding up to the
    /// scale unit as Linux tcp_select_window does).
    fn advertise(&mut self, syn: bool) -> u16 {
        let free = self.rcvbuf.window();
        if syn {
            let w = free.min(65_535);
            self.rcv_adv = self.rcv_nxt.wrapping_add(w);
            return w as u16;
        }
        let s = u32::from(self.rcv_wscale);
        let promised = self.rcv_adv.wrapping_sub(self.rcv_nxt);
        let promised = if (promised as i32) < 0 { 0 } else { promised };
        let wnd = u64::from(free.max(promised));
        let unit = 1u64 << s;
        let field = wnd.div_ceil(unit).min(65_535);
        let right = self.rcv_nxt.wrapping_add((field << s) as u32);
        if seq_lt(self.rcv_adv, right) {
            self.rcv_adv = right;
        }
        field as u16
    }

    /// Fill ACK, window and timestamps, emit, and do the bookkeeping every
    /// outgoing segment shares.
    fn finish(
        &mut self,
        now: SimTime,
        mut r: TcpRepr,
        buf: &mut [u8],
        rtx: bool,
    ) -> Option<Transmit> {
        let syn = r.flags.syn();
        if r.flags.ack() {
            r.ack = self.rcv_nxt;
        }
        if !r.flags.rst() {
            r.window = self.advertise(syn);
        }
        if self.ts_ok || (syn && self.state == State::SynSent && self.config.timestamps) {
            let ecr = if r.flags.ack() { self.ts_recent } else { 0 };
            r.timestamps = Some(((now.as_nanos() / 1_000_000) as u32, ecr));
        }
        let len = r.emit_header_unchecked(buf).ok()?;
        if rtx {
            self.rtx_unacked = true;
        }
        if r.flags.ack() {
            self.ack_now = false;
            self.ooo_acks = self.ooo_acks.saturating_sub(1);
            self.full_segs = 0;
            self.pushed = 0;
            self.set_timer(Timer::DelayedAck, None);
        }
        self.stats.segments_sent += 1;
        if rtx {
            self.stats.retransmissions += 1;
        }
        Some(Transmit {
            len,
            flags: r.flags,
            seq: r.seq,
            ack: r.ack,
            payload_len: usize::from(r.payload_len),
            is_retransmission: rtx,
            src: self.local,
            dst: self.remote,
        })
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with our options.
    fn send_syn(&mut self, now: SimTime, buf: &mut [u8]) -> Option<Transmit> {
        let active = self.state == State::SynSent;
        let mut r = TcpRepr {
            seq: self.iss,
            flags: TcpFlags(if active {
                TcpFlags::SYN
            } else {
                TcpFlags::SYN | TcpFlags::ACK
            }),
            mss: Some(self.local_mss),
            ..self.base()
        };
        if active {
            r.window_scale = self.config.window_scale;
            r.sack_permitted = self.config.sack_permitted;
        } else {
            // RFC 7323 §2.2, RFC 2018 §2: only answer options offered.
            r.window_scale = self.ws_ok.then_some(self.rcv_wscale);
            r.sack_permitted = self.sack_ok;
        }
        let rtx = self.syn_rtx || seq_lt(self.iss, self.snd_max);
        let t = self.finish(now, r, buf, rtx)?;
        self.snd_nxt = self.iss.wrapping_add(1);
        if seq_lt(self.snd_max, self.snd_nxt) {
            self.snd_max = self.snd_nxt;
        }
        if rtx {
            self.rtt_seq = None;
        } else {
            self.rtt_seq = Some(self.snd_nxt);
            self.rtt_time = now;
        }
        if self.timer(Timer::Retransmit).is_none() {
            self.arm_rto(now);
        }
        Some(t)
    }

    /// Data bytes held from `seq` on.
    fn avail_from(&self, seq: u32) -> u32 {
        let off = seq.wrapping_sub(self.buf_seq);
        if (off as i32) < 0 {
            return 0;
        }
        self.sndbuf.len().saturating_sub(off)
    }

    /// Copy `len` bytes at `seq` into `buf` after a `hl`-byte header.
    fn place_payload(&self, seq: u32, len: u32, hl: usize, buf: &mut [u8]) {
        let off = seq.wrapping_sub(self.buf_seq);
        if let Some(dst) = buf.get_mut(hl..hl + len as usize) {
            self.sndbuf.peek(off, dst);
        }
    }

    /// Payload room in `buf` after the header, and within the SMSS once
    /// SACK blocks take header room (Linux `tcp_current_mss`: the MSS
    /// shrinks by the SACK option so the packet still fits the path MTU).
    fn buf_room(&self, buf: &[u8]) -> u32 {
        let sack = self.base().options_len() as u32;
        let hl = 20 + if self.ts_ok { 12 } else { 0 } + sack as usize;
        let mtu_room = u32::from(self.smss).saturating_sub(sack).max(1);
        u32::try_from(buf.len().saturating_sub(hl))
            .unwrap_or(u32::MAX)
            .min(mtu_room)
    }

    /// Fast retransmit / NewReno partial ACK: one segment at SND.UNA
    /// (RFC 5681 §3.2 step 2, RFC 6582 §3.2 step 5).
    fn send_fast_rtx(&mut self, now: SimTime, buf: &mut [u8]) -> Option<Transmit> {
        let seq = self.snd_una;
        let len = self
            .avail_from(seq)
            .min(u32::from(self.smss))
            .min(self.buf_room(buf));
        let fin = self.fin_sent() && seq.wrapping_add(len) == self.fin_seq();
        if len == 0 && !fin {
            return None;
        }
        let t = self.send_segment(now, seq, len, fin, true, buf)?;
        self.stats.fast_retransmits += 1;
        // Karn's rule: the timed segment may be the one resent.
        self.rtt_seq = None;
        let end = seq.wrapping_add(len + u32::from(fin));
        if seq_lt(self.snd_nxt, end) {
            self.snd_nxt = end;
        }
        Some(t)
    }

    /// New data (or go-back-N retransmission after a timeout) within
    /// min(cwnd, SND.WND), with Nagle and sender SWS avoidance, and the FIN.
    /// `cwnd_room`: in SACK mode, the bytes cwnd − pipe allows (the peer's
    /// window still applies); `u32::MAX` for a tail-loss probe, which
    /// ignores cwnd and Nagle (Linux `tcp_send_loss_probe`).
    fn send_data(
        &mut self,
        now: SimTime,
        buf: &mut [u8],
        cwnd_room: Option<u32>,
    ) -> Option<Transmit> {
        let unsent = self.avail_from(self.snd_nxt);
        let fin_pending = self.fin_queued && seq_le(self.snd_nxt, self.fin_seq());
        if unsent == 0 && !fin_pending {
            return None;
        }
        let probe = cwnd_room == Some(u32::MAX);
        let wnd = match cwnd_room {
            Some(_) => self.snd_wnd,
            None => self.cc.window().min(self.snd_wnd),
        };
        let limit = self.snd_una.wrapping_add(wnd);
        let room = limit.wrapping_sub(self.snd_nxt);
        let room = if (room as i32) < 0 { 0 } else { room };
        let room = room.min(cwnd_room.unwrap_or(u32::MAX));
        let len = unsent
            .min(u32::from(self.smss))
            .min(room)
            .min(self.buf_room(buf));
        let rtx = seq_lt(self.snd_nxt, self.snd_max);
        let outstanding = self.snd_una != self.snd_nxt;
        if unsent > 0 {
            if len == 0 {
                return None;
            }
            if !rtx && len < u32::from(self.smss) && outstanding {
                // RFC 9293 §3.7.4 Nagle: hold a runt while data is
                // unacknowledged (a pending FIN pushes it out); with
                // Minshall's variant (Linux `tcp_minshall_check`) only while
                // an earlier runt is unacknowledged, so a write's tail after
                // full segments goes out with them.
                let runt_out = !self.config.nagle_minshall || seq_lt(self.snd_una, self.snd_sml);
                if self.config.nagle && runt_out && !self.fin_queued && len == unsent && !probe {
                    return None;
                }
                // §3.8.6.2.1 sender SWS avoidance: no window-limited runts.
                if len < unsent {
                    return None;
                }
            }
        }
        let fin = fin_pending && self.snd_nxt.wrapping_add(len) == self.fin_seq();
        if len == 0 && !fin {
            return None;
        }
        let seq = self.snd_nxt;
        let was_idle = self.snd_una == self.snd_max;
        let t = self.send_segment(now, seq, len, fin, rtx, buf)?;
        if len > 0 && len < u32::from(self.smss) {
            self.snd_sml = seq.wrapping_add(len);
        }
        self.snd_nxt = seq.wrapping_add(len + u32::from(fin));
        if seq_lt(self.snd_max, self.snd_nxt) {
            // New payload bytes, also those a go-back-N retransmission
            // carries past SND.MAX (Nagle lets it grow beyond the segment
            // first sent).
            let data_end = seq.wrapping_add(len);
            if seq_lt(self.snd_max, data_end) {
                self.stats.bytes_sent += u64::from(data_end.wrapping_sub(self.snd_max));
            }
            if !rtx && self.rtt_seq.is_none() {
                self.rtt_seq = Some(self.snd_nxt);
                self.rtt_time = now;
            }
            let old_max = self.snd_max;
            self.snd_max = self.snd_nxt;
            if let Some(sb) = self.sb.as_deref_mut() {
                sb.on_send(old_max, self.snd_max, now);
            }
        }
        if len > 0 {
            self.note_data_sent(now);
        }
        if was_idle {
            self.progress_since = now;
        }
        if self.sb.is_some() && !probe {
            // A pending reordering timer stays; otherwise a probe, or the
            // RTO if none is armed (a disarmed slot may still carry the
            // kind it last had).
            let armed = self.timer(Timer::Retransmit).is_some();
            if (!armed || self.rtx_kind != super::RTX_REO)
                && !self.schedule_tlp(now)
                && (!armed || self.rtx_kind != super::RTX_RTO)
            {
                self.arm_rto(now);
            }
        } else if self.timer(Timer::Retransmit).is_none() {
            self.arm_rto(now);
        }
        Some(t)
    }

    /// Linux `tcp_event_data_sent`: data sent within the delayed-ACK
    /// timeout of the last data received puts the connection in
    /// interactive mode, where ACKs wait to ride on the answer.
    fn note_data_sent(&mut self, now: SimTime) {
        let c = &self.config;
        if c.delayed_ack_min < c.delayed_ack_max
            && self.rcv_nxt != self.irs.wrapping_add(1)
            && now.saturating_since(self.last_data) < self.ato
        {
            self.pingpong = true;
        }
    }

    /// Sending with SACK (RFC 6675 §5, RFC 8985): a due tail-loss probe
    /// first, then segments marked lost (the first at once on entering
    /// recovery, the rest while pipe + segment ≤ cwnd), then new data
    /// within cwnd − pipe.
    fn send_sack_mode(&mut self, now: SimTime, buf: &mut [u8]) -> Option<Transmit> {
        if self.tlp_now {
            self.tlp_now = false;
            let before = self.snd_max;
            let mut t = self.send_data(now, buf, Some(u32::MAX));
            let mut retrans = false;
            if t.is_none() {
                let last = self.sb.as_deref().and_then(|sb| sb.last_unsacked());
                if let Some((i, s, e)) = last {
                    t = self.resend(now, i, s, e, buf);
                    retrans = true;
                }
            }
            if t.is_some() {
                self.stats.loss_probes += 1;
                if let Some(sb) = self.sb.as_deref_mut() {
                    sb.tlp_end = Some(self.snd_max);
                    sb.tlp_retrans = retrans && self.snd_max == before;
                }
                self.arm_rto_after_probe(now);
                return t;
            }
        }
        let (pipe, lost) = match self.sb.as_deref() {
            Some(sb) => (sb.pipe(), sb.next_lost()),
            None => return None,
        };
        let cwnd = self.cc.window();
        if let Some((i, s, e)) = lost {
            if self.fast_rtx || pipe.saturating_add(e.wrapping_sub(s)) <= cwnd {
                let first = self.fast_rtx;
                self.fast_rtx = false;
                if let Some(t) = self.resend(now, i, s, e, buf) {
                    if self.cc.in_recovery {
                        self.stats.fast_retransmits += 1;
                    }
                    if first || self.timer(Timer::Retransmit).is_none() {
                        self.arm_rto(now);
                    }
                    return Some(t);
                }
            }
            return None;
        }
        self.fast_rtx = false;
        self.send_data(now, buf, Some(cwnd.saturating_sub(pipe)))
    }

    /// Retransmit scoreboard segment `i` = `[s, e)` with its boundaries
    /// (a FIN when it ends at our FIN). SACK blocks that would push the
    /// packet past the MSS are left out of it.
    fn resend(
        &mut self,
        now: SimTime,
        i: usize,
        s: u32,
        e: u32,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let fin = self.fin_queued && e == self.fin_seq().wrapping_add(1);
        let len = e.wrapping_sub(s).saturating_sub(u32::from(fin));
        let t = self.send_segment(now, s, len, fin, true, buf)?;
        if let Some(sb) = self.sb.as_deref_mut() {
            sb.on_retransmit(i, now);
        }
        Some(t)
    }

    fn send_segment(
        &mut self,
        now: SimTime,
        seq: u32,
        len: u32,
        fin: bool,
        rtx: bool,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && seq.wrapping_add(len) == self.buf_seq.wrapping_add(self.sndbuf.len()) {
            flags |= TcpFlags::PSH;
        }
        // The timestamps `finish` adds are counted in the header length
        // here already: they leave room for fewer SACK blocks (3, not 4),
        // and a payload placed after a header computed without them sat
        // 8 bytes too far, zeros in front and its tail cut off (found by
        // the tcp_pair fuzz target's stream integrity check).
        let mut r = TcpRepr {
            seq,
            flags: TcpFlags(flags),
            payload_len: len as u16,
            timestamps: self.ts_ok.then_some((0, 0)),
            ..self.base()
        };
        let ts = if self.ts_ok { 12 } else { 0 };
        // Keep the packet within the path MTU: drop SACK blocks a
        // retransmitted full-sized segment has no room for.
        let max = usize::from(self.smss) + 20 + ts;
        while !r.sack.is_empty() && r.header_len() + len as usize > max {
            r.sack.truncate(r.sack.len() - 1);
        }
        let hl = r.header_len();
        if buf.len() < hl + len as usize {
            return None;
        }
        self.place_payload(seq, len, hl, buf);
        self.finish(now, r, buf, rtx)
    }
}
