//! The sans-IO TCP connection: one [`Connection`] per connection, driven by
//! segments, timeouts and application calls; it never reads a clock.
//!
//! Read first: RFC 9293 (TCP, state diagram §3.3.2, event processing
//! §3.10), RFC 6298 (RTO), RFC 5681 (congestion control, delayed ACKs),
//! RFC 6582 (NewReno), RFC 6928 (IW), RFC 7323 (window scale, timestamps),
//! RFC 5961 §3–4 (RST and SYN in synchronized states).
//!
//! Sending model: the send buffer holds every byte from SND.UNA on; after a
//! retransmission timeout SND.NXT is pulled back to SND.UNA (go-back-N, as
//! smoltcp and Linux with cwnd = 1 do) and segments below SND.MAX are
//! retransmissions. Fast retransmit resends one segment at SND.UNA without
//! moving SND.NXT.

use crate::net::addr::{Addr, SockAddr};

use super::buffer::{RecvBuffer, SendBuffer};
use super::congestion::{seq_lt, Controller};
use super::profile::Config;
use super::rto::RttEstimator;
use super::sack::Scoreboard;
use super::segment::SegmentError;
use crate::sim::{SimDuration, SimTime, TimerSlots};

mod input;
mod output;
mod timers;

/// RFC 9293 §3.3.2 connection states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// True in the synchronized states (RFC 9293 §3.5.2).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

/// Why a connection was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The SYN (active open) or SYN-ACK (passive open) was retransmitted
    /// `syn_retries` / `synack_retries` times without answer.
    HandshakeTimeout,
    /// `retries` consecutive retransmission timeouts (tcp_retries2).
    RetransmitLimit,
    /// Data stayed unacknowledged for `user_timeout` (RFC 9293 §3.10.1).
    UserTimeout,
    /// `retries` zero-window probes went unanswered.
    ProbeLimit,
}

/// What the application learns, in the order `poll_event` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (ESTABLISHED).
    Connected,
    /// New in-order bytes can be read.
    DataReadable,
    /// The peer sent FIN: no more data will arrive.
    PeerClosed,
    /// The peer reset the connection (state is CLOSED).
    Reset,
    /// The connection was given up (state is CLOSED).
    ConnectionLost { reason: LostReason },
    /// Graceful close finished (after TIME_WAIT or LAST_ACK).
    Closed,
}

/// Pending-event bits, returned by `poll_event` lowest first.
const EV_CONNECTED: u8 = 1;
const EV_READABLE: u8 = 2;
const EV_PEER_CLOSED: u8 = 4;
const EV_RESET: u8 = 8;
const EV_LOST: u8 = 16;
const EV_CLOSED: u8 = 32;

/// The timers of one connection, fired in this order when due together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// RFC 6298 retransmission timer (SYN, SYN-ACK, data, FIN).
    Retransmit = 0,
    /// Zero-window probe (persist) timer, RFC 9293 §3.8.6.1.
    Persist = 1,
    /// Delayed ACK, RFC 5681 §4.2.
    DelayedAck = 2,
    /// TIME_WAIT (2·MSL), RFC 9293 §3.4.2.
    TimeWait = 3,
}
const TIMERS: [Timer; 4] = [
    Timer::Retransmit,
    Timer::Persist,
    Timer::DelayedAck,
    Timer::TimeWait,
];

/// Describes a segment written by [`Connection::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written to the buffer (TCP header, options, payload).
    pub len: usize,
    /// Control bits.
    pub flags: super::segment::TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 when ACK is not set).
    pub ack: u32,
    /// Payload bytes.
    pub payload_len: usize,
    /// True when the segment repeats sequence space sent before
    /// (timeouts, fast retransmit, SYN/SYN-ACK/FIN retransmission).
    pub is_retransmission: bool,
    /// Source address (the connection's local end).
    pub src: SockAddr,
    /// Destination address.
    pub dst: SockAddr,
}

/// A segment as the network layer hands it to TCP: its addresses and the
/// bytes (TCP header and payload). The checksum was verified by the network
/// layer, which knows the address family (checksum offload: the
/// connection neither checks nor writes checksums).
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: Addr,
    pub dst: Addr,
    pub bytes: &'a [u8],
}

impl<'a> Segment<'a> {
    pub fn new(src: impl Into<Addr>, dst: impl Into<Addr>, bytes: &'a [u8]) -> Self {
        Segment {
            src: src.into(),
            dst: dst.into(),
            bytes,
        }
    }
}

/// Why `handle_segment` ignored a segment (the driver may count these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The bytes are not a valid TCP segment.
    #[error(transparent)]
    Malformed(#[from] SegmentError),
    /// Addresses or ports do not belong to this connection.
    #[error("segment is not for this connection")]
    NotForUs,
    /// The connection is CLOSED.
    #[error("connection is closed")]
    Closed,
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Segments handed out by `poll_transmit`.
    pub segments_sent: u32,
    /// Of those, retransmissions.
    pub retransmissions: u32,
    /// Retransmission timer expirations.
    pub timeouts: u32,
    /// Fast retransmits (third duplicate ACK) and NewReno partial-ACK
    /// retransmissions.
    pub fast_retransmits: u32,
    /// Duplicate ACKs received.
    pub dupacks_received: u32,
    /// Pure ACKs sent.
    pub acks_sent: u32,
    /// Zero-window probes sent.
    pub window_probes: u32,
    /// Valid segments received.
    pub segments_received: u32,
    /// Payload bytes delivered in order.
    pub bytes_received: u64,
    /// New payload bytes sent (not counting retransmissions).
    pub bytes_sent: u64,
    /// Data segments received that repeated bytes already received in
    /// order (wholly or partly below RCV.NXT): the peer's retransmission
    /// was spurious, or the network duplicated the segment.
    pub dup_data_received: u32,
    /// Out-of-window segments without data left unanswered by the
    /// `Config::invalid_ack_ratelimit_ms` (Linux's TCPACKSkippedSeq).
    pub oow_acks_skipped: u32,
    /// Tail-loss probes sent (RFC 8985 §7; new data or a retransmission).
    pub loss_probes: u32,
    /// Segments RACK marked lost (RFC 8985 §6.2).
    pub rack_lost: u32,
}

/// What the retransmission timer slot currently means (Linux multiplexes
/// the same three on one timer: ICSK_TIME_RETRANS, _LOSS_PROBE,
/// _REO_TIMEOUT).
const RTX_RTO: u8 = 0;
const RTX_PTO: u8 = 1;
const RTX_REO: u8 = 2;

/// A TCP endpoint for one connection.
///
/// Driver shape (DESIGN.md convention 1). After every input — `connect`,
/// `write`, `read`, `close`, `handle_segment`, `handle_timeout` — the driver
/// polls, in this order:
/// 1. `poll_transmit(now, buf)` until `None`, sending each segment from
///    `Transmit::src` to `Transmit::dst` (buf needs room for a 60-byte
///    header plus the MSS; a smaller buffer gets smaller segments);
/// 2. `poll_event` until `None`;
/// 3. `poll_timeout`, and calls `handle_timeout(t)` once time reaches it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Shared by every connection a world opens with the same settings
    /// (issue 22: 136 bytes per connection otherwise).
    config: std::sync::Arc<Config>,
    local: SockAddr,
    remote: SockAddr,
    state: State,
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    /// End of the last sub-MSS segment sent (Linux `snd_sml`, for
    /// Minshall's Nagle).
    snd_sml: u32,
    snd_wnd: u32,
    snd_wl1: u32,
    snd_wl2: u32,
    /// Sequence number of the first byte in `sndbuf`.
    buf_seq: u32,
    irs: u32,
    rcv_nxt: u32,
    /// Right edge of the last advertised window.
    rcv_adv: u32,
    /// Sequence number of a FIN received out of order.
    peer_fin: Option<u32>,
    /// MSS we advertise (path MTU − 40).
    local_mss: u16,
    /// Payload bytes per segment we send (RFC 9293 §3.7.1, RFC 6691).
    smss: u16,
    /// Largest payload seen from the peer (delayed-ACK "full-sized").
    rcv_mss: u16,
    snd_wscale: u8,
    rcv_wscale: u8,
    ts_ok: bool,
    ws_ok: bool,
    sack_ok: bool,
    fin_queued: bool,
    ack_now: bool,
    /// Out-of-order arrivals not yet answered: one duplicate ACK each, even
    /// when several arrive before the driver polls (RFC 5681 §4.2).
    ooo_acks: u8,
    fast_rtx: bool,
    probe_now: bool,
    rst_now: bool,
    rst_seq: u32,
    /// The SYN or SYN-ACK was retransmitted (RFC 6298 §5.7).
    syn_rtx: bool,
    ts_recent: u32,
    /// When we last answered an out-of-window segment without data
    /// (`Config::invalid_ack_ratelimit_ms`), in ms + 1 on a 32-bit clock as
    /// Linux keeps it in jiffies (0 = never).
    last_oow_ack_ms: u32,
    rtt: RttEstimator,
    /// SACK scoreboard and RACK-TLP state, present once SACK was
    /// negotiated (boxed: one allocation per connection, 8 bytes here).
    sb: Option<Box<Scoreboard>>,
    /// Meaning of the `Timer::Retransmit` slot (`RTX_*`).
    rtx_kind: u8,
    /// A tail-loss probe is due at the next `poll_transmit`.
    tlp_now: bool,
    /// Linux interactive ("pingpong") mode: the application answered
    /// within the delayed-ACK timeout, so ACKs wait to ride on its data.
    pingpong: bool,
    /// Retransmitted data is outstanding: an ACK of it yields an RTT
    /// sample only from the timestamp echo (RFC 7323 §4).
    rtx_unacked: bool,
    /// Sequence number of the latest out-of-order arrival (its SACK block
    /// goes first, RFC 2018 §4).
    last_ooo: u32,
    /// Linux `ICSK_ACK_PUSHED` (1) / `ICSK_ACK_PUSHED2` (2): small
    /// segments received while an ACK is delayed; a read that drains the
    /// buffer then ACKs at once (`tcp_cleanup_rbuf`).
    pushed: u8,
    cc: Controller,
    rtt_seq: Option<u32>,
    rtt_time: SimTime,
    timers: TimerSlots<4>,
    retries: u32,
    probes: u32,
    persist_backoff: u32,
    progress_since: SimTime,
    ato: SimDuration,
    last_data: SimTime,
    quickack: u32,
    full_segs: u32,
    sndbuf: SendBuffer,
    rcvbuf: RecvBuffer,
    events: u8,
    lost: Option<LostReason>,
    stats: Stats,
}

/// Payload bytes a path MTU allows after 20-byte IPv4 and TCP headers.
pub fn mss_for_mtu(path_mtu: u16) -> u16 {
    path_mtu.saturating_sub(40).max(64)
}

impl Connection {
    fn new(
        config: std::sync::Arc<Config>,
        local: SockAddr,
        path_mtu: u16,
        iss: u32,
        state: State,
    ) -> Self {
        let mss = mss_for_mtu(path_mtu);
        let cfg = std::sync::Arc::clone(&config);
        let config = &*cfg;
        Connection {
            config: std::sync::Arc::clone(&cfg),
            local,
            remote: SockAddr::default(),
            state,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_sml: iss,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            buf_seq: iss.wrapping_add(1),
            irs: 0,
            rcv_nxt: 0,
            rcv_adv: 0,
            peer_fin: None,
            local_mss: mss,
            // RFC 9293 §3.7.1: 536 until the peer says otherwise.
            smss: mss.min(536),
            rcv_mss: 536.min(mss),
            snd_wscale: 0,
            rcv_wscale: 0,
            ts_ok: false,
            ws_ok: false,
            sack_ok: false,
            fin_queued: false,
            ack_now: false,
            ooo_acks: 0,
            fast_rtx: false,
            probe_now: false,
            rst_now: false,
            rst_seq: 0,
            syn_rtx: false,
            ts_recent: 0,
            last_oow_ack_ms: 0,
            rtt: RttEstimator::new(config),
            sb: None,
            rtx_kind: RTX_RTO,
            tlp_now: false,
            pingpong: false,
            rtx_unacked: false,
            last_ooo: 0,
            pushed: 0,
            cc: Controller::new(
                config.congestion,
                config.initial_cwnd(u32::from(mss)),
                u32::from(mss),
                iss,
            ),
            rtt_seq: None,
            rtt_time: SimTime::ZERO,
            timers: TimerSlots::NONE,
            retries: 0,
            probes: 0,
            persist_backoff: 0,
            progress_since: SimTime::ZERO,
            ato: config.delayed_ack_min,
            last_data: SimTime::ZERO,
            quickack: 0,
            full_segs: 0,
            sndbuf: SendBuffer::new(config.send_buffer),
            rcvbuf: RecvBuffer::new(config.recv_buffer),
            events: 0,
            lost: None,
            stats: Stats::default(),
        }
    }

    /// Active open (RFC 9293 §3.10.1 OPEN, active): SYN-SENT, the SYN is
    /// ready for `poll_transmit`. `path_mtu` sets the MSS option (MTU − 40);
    /// `iss` is the initial sequence number (drawn by the driver).
    pub fn connect(
        config: impl Into<std::sync::Arc<Config>>,
        local: impl Into<SockAddr>,
        remote: impl Into<SockAddr>,
        path_mtu: u16,
        iss: u32,
    ) -> Self {
        let mut c = Connection::new(config.into(), local.into(), path_mtu, iss, State::SynSent);
        c.remote = remote.into();
        c
    }

    /// Passive open (RFC 9293 §3.10.1 OPEN, passive): LISTEN on `local`,
    /// accepting the first valid SYN from any peer. A server with many
    /// clients uses [`super::Listener`] instead.
    pub fn listen(
        config: impl Into<std::sync::Arc<Config>>,
        local: impl Into<SockAddr>,
        path_mtu: u16,
        iss: u32,
    ) -> Self {
        Connection::new(config.into(), local.into(), path_mtu, iss, State::Listen)
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }
    /// Local address.
    pub fn local(&self) -> SockAddr {
        self.local
    }
    /// Remote address (unspecified while LISTEN).
    pub fn remote(&self) -> SockAddr {
        self.remote
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Parameters.
    /// Test-only mutation (tests/monitors.rs): a receiver that takes
    /// out-of-order data as the next bytes of the stream.
    #[doc(hidden)]
    pub fn mutant_deliver_out_of_order(&mut self) {
        self.rcvbuf.mutant_deliver_out_of_order();
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// RTT estimator (SRTT, RTTVAR, RTO).
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }
    /// Current retransmission timeout including backoff.
    pub fn current_rto(&self) -> SimDuration {
        self.rtt.timeout(&self.config)
    }
    /// Congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd
    }
    /// Slow-start threshold in bytes.
    pub fn ssthresh(&self) -> u32 {
        self.cc.ssthresh
    }
    /// Payload bytes per segment this end sends.
    pub fn smss(&self) -> u16 {
        self.smss
    }
    /// Peer's window in bytes (scaled).
    pub fn send_window(&self) -> u32 {
        self.snd_wnd
    }
    /// Bytes in the send buffer (unacknowledged or unsent).
    pub fn send_buffered(&self) -> u32 {
        self.sndbuf.len()
    }
    /// Bytes `write` would accept now.
    pub fn send_capacity(&self) -> u32 {
        if self.can_write() {
            self.sndbuf.free()
        } else {
            0
        }
    }
    /// Bytes ready for `read`.
    pub fn recv_available(&self) -> u32 {
        self.rcvbuf.readable()
    }
    /// Timestamps, window scaling and SACK-permitted as negotiated.
    pub fn negotiated(&self) -> (bool, Option<(u8, u8)>, bool) {
        let ws = self.ws_ok.then_some((self.snd_wscale, self.rcv_wscale));
        (self.ts_ok, ws, self.sack_ok)
    }
    /// The SACK scoreboard, when SACK was negotiated.
    pub fn scoreboard(&self) -> Option<&Scoreboard> {
        self.sb.as_deref()
    }
    /// True while the retransmission timer is armed as a tail-loss probe
    /// (RFC 8985 §7.2) rather than an RTO or RACK's reordering timer.
    pub fn probe_armed(&self) -> bool {
        self.rtx_kind == RTX_PTO && self.timers.is_armed(Timer::Retransmit as usize)
    }
    /// In interactive (pingpong) delayed-ACK mode.
    pub fn pingpong(&self) -> bool {
        self.pingpong
    }
    /// Deadline of one timer.
    pub fn timer(&self, t: Timer) -> Option<SimTime> {
        self.timers.get(t as usize)
    }
    /// True once CLOSED (gracefully, reset or lost): the driver may drop it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn can_write(&self) -> bool {
        !self.fin_queued
            && matches!(
                self.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            )
    }

    /// Queue bytes for sending (RFC 9293 §3.10.2 SEND); returns how many the
    /// bounded send buffer took (0 after `close` or when closed).
    pub fn write(&mut self, data: &[u8]) -> usize {
        if !self.can_write() {
            return 0;
        }
        self.sndbuf.write(data)
    }

    /// Read in-order bytes (RFC 9293 §3.10.3 RECEIVE). A window update is
    /// sent at once only when the peer's usable window had shrunk to at most
    /// half the buffer and the read at least doubles it, by at least
    /// min(RCV.BUFF/2, MSS) (§3.8.6.2.2 receiver SWS avoidance; Linux
    /// `tcp_cleanup_rbuf`). Otherwise the larger window rides on the next
    /// ACK, so an application that reads at once does not defeat delayed
    /// ACKs.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.rcvbuf.read(out);
        if n > 0 && self.state.is_synchronized() {
            let usable = self.rcv_adv.wrapping_sub(self.rcv_nxt);
            let window = self.rcvbuf.window();
            let right = self.rcv_nxt.wrapping_add(window);
            let grow = right.wrapping_sub(self.rcv_adv) as i32;
            let threshold = (self.rcvbuf.capacity() / 2).min(u32::from(self.local_mss));
            let was_small = usable.saturating_mul(2) <= self.rcvbuf.capacity();
            let doubles = window >= usable.saturating_mul(2);
            if grow >= 0 && grow as u32 >= threshold && was_small && doubles {
                self.ack_now = true;
            }
            // Linux `__tcp_cleanup_rbuf`: a delayed ACK for a small segment
            // goes out when the application drains the buffer, unless the
            // connection is interactive (then the answer carries it) and
            // only one small segment waits. So a one-way stream of small
            // messages (QoS 0 PUBLISHes) is ACKed at once, and Nagle at the
            // sender does not wait for a delayed ACK.
            if self.rcvbuf.readable() == 0
                && self.config.delayed_ack_min < self.config.delayed_ack_max
                && self.timers.is_armed(Timer::DelayedAck as usize)
                && (self.pushed >= 2 || (self.pushed == 1 && !self.pingpong))
            {
                self.ack_now = true;
            }
        }
        n
    }

    /// Graceful close (RFC 9293 §3.10.4 CLOSE): a FIN follows the buffered
    /// data. In SYN-SENT or LISTEN the connection just closes.
    pub fn close(&mut self) {
        match self.state {
            State::Listen | State::SynSent => {
                self.state = State::Closed;
                self.timers.clear();
                self.events |= EV_CLOSED;
            }
            // RFC 9293 §3.10.4: in SYN-RECEIVED the FIN waits for
            // ESTABLISHED (the handshake's ACK moves to FIN-WAIT-1).
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Abort (RFC 9293 §3.10.5 ABORT): send RST in a synchronized state,
    /// then CLOSED. No event is raised.
    pub fn abort(&mut self) {
        if self.state.is_synchronized() || self.state == State::SynReceived {
            self.rst_now = true;
            self.rst_seq = self.snd_nxt;
        }
        self.enter_closed();
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.timers.clear();
        self.ack_now = false;
        self.ooo_acks = 0;
        self.fast_rtx = false;
        self.probe_now = false;
        self.tlp_now = false;
        if let Some(sb) = self.sb.as_mut() {
            sb.clear();
        }
    }

    /// Give up: CLOSED with `ConnectionLost` (RFC 9293 §3.8.3 R2).
    fn lose(&mut self, reason: LostReason) {
        self.lost = Some(reason);
        self.events |= EV_LOST;
        self.enter_closed();
    }

    /// The earliest armed timer.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.earliest()
    }

    /// The next event, in the order listed on [`Event`].
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events == 0 {
            return None;
        }
        let bit = self.events & self.events.wrapping_neg();
        self.events &= !bit;
        Some(match bit {
            EV_CONNECTED => Event::Connected,
            EV_READABLE => Event::DataReadable,
            EV_PEER_CLOSED => Event::PeerClosed,
            EV_RESET => Event::Reset,
            EV_LOST => Event::ConnectionLost {
                reason: self.lost.unwrap_or(LostReason::RetransmitLimit),
            },
            _ => Event::Closed,
        })
    }

    fn set_timer(&mut self, t: Timer, at: Option<SimTime>) {
        self.timers.set(t as usize, at);
    }

    /// Data bytes in the buffer not yet sent (from SND.NXT).
    fn unsent(&self) -> u32 {
        let sent = self.snd_nxt.wrapping_sub(self.buf_seq);
        if (sent as i32) < 0 {
            return self.sndbuf.len();
        }
        self.sndbuf.len().saturating_sub(sent)
    }

    /// Sequence number of our FIN (valid when `fin_queued`).
    fn fin_seq(&self) -> u32 {
        self.buf_seq.wrapping_add(self.sndbuf.len())
    }

    fn fin_sent(&self) -> bool {
        self.fin_queued && seq_lt(self.fin_seq(), self.snd_max)
    }
}

impl crate::sansio::SansIo for Connection {
    type Input<'a> = Segment<'a>;
    type Transmit = Transmit;
    type Event = Event;
    /// A refused segment ([`InputError`]) changes nothing; drivers that
    /// count refusals call the inherent `handle_input`, which returns it.
    fn handle_input(&mut self, now: SimTime, seg: Segment<'_>) {
        let _ = Connection::handle_input(self, now, seg);
    }
    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<Transmit> {
        Connection::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<SimTime> {
        Connection::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: SimTime) {
        Connection::handle_timeout(self, now)
    }
}
