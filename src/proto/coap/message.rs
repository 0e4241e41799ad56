//! The CoAP message layer (RFC 7252 §4), below the request/response layer
//! of [`Endpoint`](super::Endpoint).
//!
//! It knows messages, not requests: message IDs (§4.4), CON retransmission
//! and give-up (§4.2, §4.8), ACK/RST matching by `(peer, message ID)`
//! (§4.2, §4.3), Empty ACK and RST sending, deduplication of received CON
//! and NON messages with the reply cached for duplicate CONs (§4.5), NSTART
//! per peer (§4.7), PROBING_RATE towards peers that do not respond (§4.7)
//! and the handling of malformed datagrams (§3, §4.2, §4.3). CON timeouts
//! follow RFC 7252 §4.2 or, with [`Congestion::Cocoa`], the per-peer CoCoA
//! estimator of [`super::cocoa`].
//! What a message means (request, response, token) is the caller's business:
//! a new CON or NON comes back from [`MessageLayer::receive`] as
//! [`Inbound::Message`] and the caller decides whether to accept, acknowledge
//! or reject it.
//!
//! Driving: in the order of every core's driver (`crate::proto::SansIo`;
//! the layer does not implement the trait because [`MessageLayer::receive`]
//! hands what it found straight back to its caller), after every call the
//! owner drains [`MessageLayer::poll_transmit`], then
//! [`MessageLayer::poll_event`], then reads [`MessageLayer::poll_timeout`]
//! and calls [`MessageLayer::handle_timeout`] when time reaches it. A tracked
//! message's timer (retransmission, or a NON's hold time) starts when it is
//! first transmitted, i.e. at the `now` of the `poll_transmit` that hands it
//! out; later deadlines are computed from the previous deadline, so
//! intervals stay exact even if a driver calls late.
//!
//! State is lazily allocated: an idle layer holds empty maps and queues (no
//! heap). Deduplication entries expire lazily at the next `receive` or
//! `handle_timeout` after their lifetime; they never wake the driver.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::net::addr::SockAddr;
use crate::sim::{DeadlineSet, FixedMap, SimDuration, SimRng, SimTime};

use super::cocoa::{self, Cocoa};
use super::code::{Code, MessageType};
use super::codec::{write_header, CodecError, Header, MessageRef, Token};
use super::config::{Config, Congestion};
use super::dedup::{key as mid_key, DedupCache};

/// Identifies a message the layer tracks (a CON until its ACK, RST or
/// give-up; a NON sent with [`Delivery::NonConfirmable`] until its release,
/// RST or expiry). Keys are never reused by one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageKey(pub u64);

/// How [`MessageLayer::send`] delivers a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// CON (§4.2): retransmitted with a randomised initial timeout that
    /// doubles each time, until an ACK or RST with its message ID arrives;
    /// given up ([`MessageEvent::GaveUp`]) when MAX_RETRANSMIT
    /// retransmissions and the last timeout have passed.
    Confirmable,
    /// NON (§4.3), sent once; its message ID is matched against RST until
    /// the caller [`MessageLayer::cancel`]s it, an RST arrives, or
    /// [`Config::non_response_timeout`] after it was sent
    /// ([`MessageEvent::Expired`]).
    NonConfirmable,
}

/// What [`MessageLayer::receive`] found in a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A new (not duplicate), non-Empty CON or NON message for the layer
    /// above. The caller must [`MessageLayer::accept`] it (remember its ID
    /// for deduplication, §4.5) unless it rejects it outright.
    Message(MessageRef<'a>),
    /// An ACK for our CON `key` (it may carry a piggybacked response,
    /// §5.2.1). The CON is finished: no more retransmissions, its NSTART
    /// slot released. `token` is our CON's token, `transmissions` = 1 +
    /// retransmissions.
    Ack {
        key: MessageKey,
        token: Token,
        transmissions: u32,
        ack: MessageRef<'a>,
    },
    /// An RST matching our CON or tracked NON `key` (token `token`) (§4.2,
    /// §4.3); it is finished.
    Reset { key: MessageKey, token: Token },
    /// Fully handled here: a duplicate (its cached reply resent, §4.5), a
    /// malformed datagram (RST for a CON, §4.2), an Empty CON ("ping", RST,
    /// §4.3), or an ACK/RST matching nothing of ours (ignored, §4.2).
    Handled,
}

/// What the layer reports on its own (from [`MessageLayer::handle_timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageEvent {
    /// A CON to `peer` with `token` was never acknowledged: MAX_RETRANSMIT
    /// retransmissions and the last timeout passed (§4.2). Finished; its
    /// NSTART slot released.
    GaveUp {
        key: MessageKey,
        peer: SockAddr,
        token: Token,
        transmissions: u32,
    },
    /// A tracked NON's `non_response_timeout` passed without cancel or RST.
    /// Finished; its NSTART slot released.
    Expired {
        key: MessageKey,
        peer: SockAddr,
        token: Token,
    },
}

/// What [`MessageLayer::poll_transmit`] appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageTransmit {
    /// Destination.
    pub to: SockAddr,
    /// Message type from the header.
    pub ty: MessageType,
    /// Code from the header.
    pub code: Code,
    /// Message ID from the header.
    pub message_id: u16,
    /// A CON retransmission, or a cached reply repeated for a duplicate.
    pub is_retransmission: bool,
    /// Bytes appended to the buffer (CoAP only; no UDP/IP headers).
    pub len: usize,
    /// The tracked message this datagram carries, if it is one.
    pub key: Option<MessageKey>,
}

/// Message-layer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Messages sent for the first time that counted against NSTART.
    pub interactions_started: u64,
    /// Datagrams handed out by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Their CoAP bytes.
    pub bytes_sent: u64,
    /// CON retransmissions.
    pub retransmissions: u64,
    /// CONs given up.
    pub give_ups: u64,
    /// Tracked NONs expired.
    pub expired: u64,
    /// Duplicate CON/NON messages suppressed (§4.5).
    pub duplicates_suppressed: u64,
    /// RST messages sent.
    pub rst_sent: u64,
    /// RST messages matching one of our messages.
    pub rst_received: u64,
    /// Datagrams that failed to decode, and Empty NONs (§4.3).
    pub malformed_dropped: u64,
    /// NON messages held back by PROBING_RATE (§4.7) for a peer that does
    /// not respond.
    pub probing_held: u64,
    /// ACK/RST matching nothing of ours, and ACKs for a NON (§4.2).
    pub ignored: u64,
}

/// Where a tracked message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Held back by NSTART (§4.7); no message ID yet.
    Waiting,
    /// CON sent (or queued for its first transmission), retransmitting.
    AwaitingAck,
    /// NON sent (or queued); matched against RST until it ends.
    Sent,
}

/// A message we send and track.
#[derive(Debug)]
struct Tracked {
    peer: SockAddr,
    message_id: u16,
    confirmable: bool,
    /// Counts against the peer's NSTART budget once started (§4.7).
    interaction: bool,
    holds_slot: bool,
    state: State,
    /// The encoded message; bytes 2..4 hold the message ID once assigned.
    bytes: Vec<u8>,
    retransmissions: u32,
    /// The current timeout (a CON's doubles at each retransmission, or
    /// grows by CoCoA's variable back-off factor).
    timeout: SimDuration,
    /// CoCoA: the undithered RTO behind `timeout` (its back-off factor
    /// depends on it); zero with the RFC 7252 default.
    rto: SimDuration,
    /// The first transmission; `SimTime::MAX` until then.
    first_sent: SimTime,
    /// When the timer fires; `SimTime::MAX` until the first transmission
    /// arms it (or a PROBING_RATE hold, for a NON request: it expires
    /// unsent if still held `non_response_timeout` later).
    deadline: SimTime,
    /// `bytes` were replaced ([`MessageLayer::replace`]) and not sent yet:
    /// their next transmission is their first.
    replaced: bool,
}

/// Per-peer state: NSTART bookkeeping and PROBING_RATE (§4.7), CoCoA.
#[derive(Debug, Default)]
struct PeerSlots {
    outstanding: u32,
    waiting: VecDeque<u64>,
    /// PROBING_RATE: the first transmission of a tracked message (a CON, or
    /// a NON request) to the peer since the last datagram from it; `None`
    /// once the peer sent anything.
    quiet_since: Option<SimTime>,
    /// CoAP bytes sent to the peer since it counts as not responding
    /// (`quiet_since` + the probing window).
    quiet_bytes: u64,
    /// NON messages held back by PROBING_RATE, in FIFO order.
    held: VecDeque<Queued>,
    /// When `held`'s front is looked at again (its entry in `pacing`).
    release_at: Option<SimTime>,
    /// CoCoA's RTO state (only with [`Congestion::Cocoa`]).
    cocoa: Option<Cocoa>,
}

impl PeerSlots {
    /// Nothing worth keeping for an idle peer.
    fn forgettable(&self) -> bool {
        self.outstanding == 0
            && self.waiting.is_empty()
            && self.quiet_since.is_none()
            && self.held.is_empty()
            && self.cocoa.is_none_or(|c| c.is_blind())
    }

    /// When the peer started to count as not responding (RFC 7252 §4.7): a
    /// tracked message to it was first sent `window` (EXCHANGE_LIFETIME)
    /// before, and nothing came from it since. `None` while it responds.
    fn silent_from(&self, now: SimTime, window: SimDuration) -> Option<SimTime> {
        let from = self.quiet_since? + window;
        (now >= from).then_some(from)
    }

    /// PROBING_RATE (RFC 7252 §4.7): `None` if a NON of `len` bytes may go
    /// to this peer at `now`, else when it may: while the peer does not
    /// respond, the bytes sent to it since it stopped responding, this one
    /// included, must not exceed `rate`·(time since then).
    fn probing_wait(
        &self,
        now: SimTime,
        len: usize,
        window: SimDuration,
        rate: f64,
    ) -> Option<SimTime> {
        let since = self.silent_from(now, window)?;
        let bytes = self.quiet_bytes.saturating_add(len as u64);
        // `as` saturates; the rate is finite and > 0 (`Config::probing_rate`)
        let ns = libm::ceil(bytes as f64 * 1e9 / rate) as u64;
        let at = since + SimDuration::from_nanos(ns);
        (at > now).then_some(at)
    }
}

/// A queued datagram. Bytes are copied out at `poll_transmit` time, so
/// retransmissions and repeated replies cost no allocation.
#[derive(Debug)]
enum Queued {
    /// A tracked message's current bytes (skipped if it ended meanwhile).
    Tracked { key: u64, retransmission: bool },
    /// The cached reply for `(peer, message ID)`.
    Cached {
        peer: SockAddr,
        mid: u16,
        repeat: bool,
    },
    /// An RST (§4.1: Empty).
    Rst { to: SockAddr, mid: u16 },
    /// A one-off message (an untracked NON, an uncached ACK).
    Owned { to: SockAddr, bytes: Vec<u8> },
}

/// How many buffers the layer keeps for reuse.
const SPARE_BUFFERS: usize = 4;

/// The RFC 7252 §4 message layer of one endpoint.
#[derive(Debug)]
pub struct MessageLayer {
    config: Config,
    rng: SimRng,
    next_mid: u16,
    next_key: u64,
    /// Looked up, never iterated (so a hash map keeps runs deterministic).
    tracked: FixedMap<u64, Tracked>,
    /// `dedup::key(peer, message ID)` → tracked key; looked up, never
    /// iterated.
    by_mid: FixedMap<u64, u64>,
    /// Retransmission and expiry deadlines, `(when, key)`.
    timers: DeadlineSet<(SimTime, u64)>,
    peers: BTreeMap<SockAddr, PeerSlots>,
    /// PROBING_RATE releases: (when, peer) of every peer with held NONs.
    pacing: BTreeSet<(SimTime, SockAddr)>,
    /// Peers whose `quiet_since` is set (receive skips the peer lookup at 0).
    quiet_peers: usize,
    /// EXCHANGE_LIFETIME: how long a peer may stay silent before it counts
    /// as not responding (§4.7, §4.8.2: until then an answer may still come).
    probing_window: SimDuration,
    dedup: DedupCache,
    outq: VecDeque<Queued>,
    events: VecDeque<MessageEvent>,
    stats: MessageStats,
    /// Recycled message buffers (at most `SPARE_BUFFERS`, or as many as
    /// messages were ever tracked at once, whichever is more).
    spare: Vec<Vec<u8>>,
    /// Most messages tracked at once so far.
    peak_tracked: usize,
}

impl MessageLayer {
    /// A fresh layer; its first message ID is `first_message_id` (§4.4: IDs
    /// are then sequential; the caller should randomise the first one).
    pub fn new(config: Config, rng: SimRng, first_message_id: u16) -> Self {
        let dedup = DedupCache::bounded(config.max_dedup_entries, config.max_dedup_bytes);
        MessageLayer {
            probing_window: config.exchange_lifetime(),
            config,
            rng,
            next_mid: first_message_id,
            next_key: 0,
            tracked: FixedMap::default(),
            by_mid: FixedMap::default(),
            timers: DeadlineSet::new(),
            peers: BTreeMap::new(),
            pacing: BTreeSet::new(),
            quiet_peers: 0,
            dedup,
            outq: VecDeque::new(),
            events: VecDeque::new(),
            stats: MessageStats::default(),
            spare: Vec::new(),
            peak_tracked: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Counters.
    pub fn stats(&self) -> &MessageStats {
        &self.stats
    }
    /// Message IDs currently remembered for deduplication (§4.5).
    pub fn dedup_entries(&self) -> usize {
        self.dedup.len()
    }
    /// Live message IDs forgotten early to stay within the configured
    /// bounds of the deduplication store.
    pub fn dedup_evicted(&self) -> u64 {
        self.dedup.evicted()
    }
    /// Whether `key` is tracked and has left the NSTART queue (has its
    /// message ID).
    pub fn started(&self, key: MessageKey) -> bool {
        self.tracked
            .get(&key.0)
            .is_some_and(|m| m.state != State::Waiting)
    }
    /// 1 + retransmissions of tracked message `key` (0 while it waits for
    /// NSTART); `None` once it is finished.
    pub fn transmissions(&self, key: MessageKey) -> Option<u32> {
        let m = self.tracked.get(&key.0)?;
        Some(if m.state == State::Waiting {
            0
        } else {
            m.retransmissions + 1
        })
    }

    /// The current timeout of tracked message `key` once it has been
    /// transmitted (the initial one until its first retransmission); `None`
    /// before its first transmission and once it is finished.
    pub fn timeout(&self, key: MessageKey) -> Option<SimDuration> {
        let m = self.tracked.get(&key.0)?;
        (m.first_sent != SimTime::MAX).then_some(m.timeout)
    }

    /// The retransmission timeout a new CON to `peer` would start from at
    /// `now`, before dithering: with [`Congestion::Cocoa`] the peer's
    /// overall RTO estimate, aged to `now` (2 s for a peer never measured);
    /// with the RFC 7252 default ACK_TIMEOUT (the initial timeout is drawn
    /// from [ACK_TIMEOUT, ACK_TIMEOUT·ACK_RANDOM_FACTOR]).
    pub fn rto_estimate(&self, peer: SockAddr, now: SimTime) -> SimDuration {
        match self.config.congestion {
            Congestion::Default => self.config.ack_timeout,
            Congestion::Cocoa => self
                .peers
                .get(&peer)
                .and_then(|p| p.cocoa.as_ref())
                .map_or(cocoa::INITIAL_RTO, |c| c.rto(now)),
        }
    }

    /// NON messages to `peer` held back by PROBING_RATE now.
    pub fn probing_held(&self, peer: SockAddr) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.held.len())
    }

    // ---- sending --------------------------------------------------------

    /// Send `bytes` (one encoded message; its type bits and message ID are
    /// set when it is first sent) to `to`, tracked as `delivery` says.
    /// With `interaction` it is an interaction for NSTART (§4.7): while
    /// NSTART of `to`'s interactions are outstanding it waits, in FIFO
    /// order, and it holds its slot until it is finished (ACK, RST,
    /// give-up, cancel, expiry).
    pub fn send(
        &mut self,
        to: SockAddr,
        bytes: Vec<u8>,
        delivery: Delivery,
        interaction: bool,
    ) -> MessageKey {
        let key = self.next_key;
        self.next_key += 1;
        self.tracked.insert(
            key,
            Tracked {
                peer: to,
                message_id: 0,
                confirmable: delivery == Delivery::Confirmable,
                interaction,
                holds_slot: false,
                state: State::Waiting,
                bytes,
                retransmissions: 0,
                timeout: SimDuration::ZERO,
                rto: SimDuration::ZERO,
                first_sent: SimTime::MAX,
                deadline: SimTime::MAX,
                replaced: false,
            },
        );
        self.peak_tracked = self.peak_tracked.max(self.tracked.len());
        if !interaction {
            self.start(key);
            return MessageKey(key);
        }
        let nstart = self.config.nstart();
        let slots = self.peers.entry(to).or_default();
        if slots.outstanding < nstart {
            slots.outstanding += 1;
            self.start(key);
        } else {
            slots.waiting.push_back(key);
        }
        MessageKey(key)
    }

    /// Send a NON once without tracking it (e.g. a NON response, §5.2.3):
    /// it gets the next message ID now (returned), and an RST for it will
    /// match nothing.
    pub fn send_untracked(&mut self, to: SockAddr, mut bytes: Vec<u8>) -> u16 {
        let mid = self.fresh_mid();
        patch_header(&mut bytes, MessageType::Non, mid);
        self.outq.push_back(Queued::Owned { to, bytes });
        mid
    }

    /// Stop tracking `key` (the layer above got what it waited for, e.g. the
    /// response to a NON request or a separate response before the ACK):
    /// no more retransmissions, its NSTART slot is released (a waiting
    /// message may start). Returns its transmissions so far (as
    /// [`MessageLayer::transmissions`]), `None` if it was already finished.
    pub fn cancel(&mut self, key: MessageKey) -> Option<u32> {
        let m = self.tracked.get(&key.0)?;
        if m.state == State::Waiting {
            let peer = m.peer;
            if let Some(slots) = self.peers.get_mut(&peer) {
                slots.waiting.retain(|&k| k != key.0);
            }
            self.finish(key.0);
            return Some(0);
        }
        let n = m.retransmissions + 1;
        self.finish(key.0);
        Some(n)
    }

    /// Replace the content of CON `key` still awaiting its ACK with `bytes`
    /// (an encoded message; type and message ID are set here), keeping its
    /// retransmission counter and timer — RFC 7641 §4.5.2: a newer
    /// notification takes the place of one still being retransmitted. Once
    /// sent, it gets a new message ID (the peer must not take it for a
    /// duplicate of the old one) and leaves when the old one's next
    /// retransmission would have; an ACK for the old ID then matches
    /// nothing. Returns false (and drops `bytes`) if `key` is not a CON
    /// awaiting its ACK.
    pub fn replace(&mut self, key: MessageKey, mut bytes: Vec<u8>) -> bool {
        let sent = match self.tracked.get(&key.0) {
            Some(m) if m.state == State::AwaitingAck => m.deadline != SimTime::MAX,
            _ => {
                self.give_back(bytes);
                return false;
            }
        };
        let mid = if sent { self.fresh_mid() } else { 0 };
        let Some(m) = self.tracked.get_mut(&key.0) else {
            return false;
        };
        let (peer, old_mid) = (m.peer, m.message_id);
        let mid = if sent { mid } else { old_mid };
        patch_header(&mut bytes, MessageType::Con, mid);
        let old = std::mem::replace(&mut m.bytes, bytes);
        if sent {
            m.message_id = mid;
            m.replaced = true;
            self.by_mid.remove(&mid_key(peer, old_mid));
            self.by_mid.insert(mid_key(peer, mid), key.0);
        }
        self.give_back(old);
        true
    }

    // ---- receiving ------------------------------------------------------

    /// A datagram arrived from `from`. See [`Inbound`] for what comes back.
    pub fn receive<'a>(&mut self, now: SimTime, from: SockAddr, data: &'a [u8]) -> Inbound<'a> {
        self.dedup.expire(now);
        if self.quiet_peers > 0 {
            self.heard_from(from, now);
        }
        let m = match MessageRef::parse(data) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed_dropped += 1;
                // RFC 7252 §3: unknown versions are silently ignored. §4.2: a
                // CON with a format error is rejected with RST; §4.3: anything
                // else malformed is silently ignored.
                if !matches!(e, CodecError::UnknownVersion { .. }) {
                    if let Ok(h) = Header::peek(data) {
                        if h.ty == MessageType::Con {
                            self.reject(from, h.message_id);
                        }
                    }
                }
                return Inbound::Handled;
            }
        };
        match m.ty {
            MessageType::Ack | MessageType::Rst => self.on_ack_or_rst(now, from, m),
            MessageType::Con | MessageType::Non => {
                if m.code.is_empty() {
                    if m.ty == MessageType::Con {
                        // RFC 7252 §4.3: an Empty CON ("CoAP ping") gets RST.
                        self.reject(from, m.message_id);
                    } else {
                        // §4.3: a NON must not be Empty — format error.
                        self.stats.malformed_dropped += 1;
                    }
                    return Inbound::Handled;
                }
                if self.is_duplicate(now, from, &m) {
                    return Inbound::Handled;
                }
                Inbound::Message(m)
            }
        }
    }

    /// Remember a received CON or NON `(from, mid)` for deduplication
    /// (§4.5) for EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON): duplicates
    /// are then suppressed, and a duplicate CON gets the reply given to
    /// [`MessageLayer::acknowledge`] (nothing until then).
    pub fn accept(&mut self, now: SimTime, from: SockAddr, mid: u16, confirmable: bool) {
        let life = if confirmable {
            self.config.exchange_lifetime()
        } else {
            self.config.non_lifetime()
        };
        self.dedup
            .insert(from, mid, usize::from(!confirmable), now + life, None);
    }

    /// Send `ack` (an encoded ACK, Empty or carrying a piggybacked response,
    /// for the CON `(to, mid)`) and cache it for duplicates of that CON
    /// (§4.5) if the CON was [`MessageLayer::accept`]ed and is remembered.
    pub fn acknowledge(&mut self, to: SockAddr, mid: u16, ack: Vec<u8>) {
        match self.dedup.set_reply(to, mid, ack.into_boxed_slice()) {
            Ok(()) => self.outq.push_back(Queued::Cached {
                peer: to,
                mid,
                repeat: false,
            }),
            // not remembered (never accepted, or expired): send it uncached
            Err(ack) => self.outq.push_back(Queued::Owned {
                to,
                bytes: Vec::from(ack),
            }),
        }
    }

    /// Send an Empty ACK for the CON `(to, mid)` (§4.2), cached like
    /// [`MessageLayer::acknowledge`].
    pub fn acknowledge_empty(&mut self, to: SockAddr, mid: u16) {
        let mut ack = self.take_buffer();
        write_header(&mut ack, MessageType::Ack, Code::EMPTY, mid, &Token::EMPTY);
        self.acknowledge(to, mid, ack);
    }

    /// Reject the message `(to, mid)` with RST (§4.2, §4.3).
    pub fn reject(&mut self, to: SockAddr, mid: u16) {
        self.stats.rst_sent += 1;
        self.outq.push_back(Queued::Rst { to, mid });
    }

    /// RFC 7252 §4.5: a CON or NON already seen from this source with this
    /// message ID is a duplicate: a CON gets the same reply again, the layer
    /// above does not see it again.
    fn is_duplicate(&mut self, now: SimTime, from: SockAddr, m: &MessageRef<'_>) -> bool {
        if self.config.mutant_no_dedup {
            return false;
        }
        let Some(entry) = self.dedup.lookup(now, from, m.message_id) else {
            return false;
        };
        self.stats.duplicates_suppressed += 1;
        if m.ty == MessageType::Con && entry.reply.is_some() {
            self.outq.push_back(Queued::Cached {
                peer: from,
                mid: m.message_id,
                repeat: true,
            });
        }
        true
    }

    /// Anything from `peer` shows it responds (§4.7): PROBING_RATE no longer
    /// applies to it, and its held NONs go at once.
    fn heard_from(&mut self, peer: SockAddr, now: SimTime) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.quiet_since.take().is_none() {
            return;
        }
        self.quiet_peers -= 1;
        p.quiet_bytes = 0;
        if !p.held.is_empty() {
            if let Some(at) = p.release_at.replace(now) {
                self.pacing.remove(&(at, peer));
            }
            self.pacing.insert((now, peer));
        }
    }

    fn on_ack_or_rst<'a>(
        &mut self,
        now: SimTime,
        from: SockAddr,
        m: MessageRef<'a>,
    ) -> Inbound<'a> {
        // RFC 7252 §4.2: an ACK or RST matching no message we sent is ignored.
        let Some(&key) = self.by_mid.get(&mid_key(from, m.message_id)) else {
            self.stats.ignored += 1;
            return Inbound::Handled;
        };
        let Some(t) = self.tracked.get(&key) else {
            self.stats.ignored += 1;
            return Inbound::Handled;
        };
        if m.ty == MessageType::Ack && t.state != State::AwaitingAck {
            // §4.2: only a CON is acknowledged; an ACK for our NON is ignored.
            self.stats.ignored += 1;
            return Inbound::Handled;
        }
        let transmissions = t.retransmissions + 1;
        let token = token_of(&t.bytes);
        if self.config.congestion == Congestion::Cocoa
            && m.ty == MessageType::Ack
            && t.first_sent != SimTime::MAX
        {
            // draft-ietf-core-cocoa-03 §4.2: the RTT from the first
            // transmission feeds the strong or the weak estimator
            let (rtt, retransmissions) = (now - t.first_sent, t.retransmissions);
            if let Some(c) = self.peers.get_mut(&from).and_then(|p| p.cocoa.as_mut()) {
                c.sample(now, rtt, retransmissions);
            }
        }
        self.finish(key);
        if m.ty == MessageType::Rst {
            self.stats.rst_received += 1;
            return Inbound::Reset {
                key: MessageKey(key),
                token,
            };
        }
        Inbound::Ack {
            key: MessageKey(key),
            token,
            transmissions,
            ack: m,
        }
    }

    // ---- driving --------------------------------------------------------

    /// Append the next datagram to `buf` and describe it (`len` = bytes
    /// appended); `None` when nothing is queued. A tracked message's timer
    /// starts at its first transmission, at `now`.
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<MessageTransmit> {
        // NONs held back by PROBING_RATE whose time has come go first
        while let Some(&(at, peer)) = self.pacing.first() {
            if at > now {
                break;
            }
            self.pacing.remove(&(at, peer));
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            p.release_at = None;
            let Some(q) = p.held.pop_front() else {
                continue;
            };
            let len = queued_len(&self.tracked, &q);
            let (window, rate) = (self.probing_window, self.config.probing_rate());
            // CON bytes sent meanwhile may have pushed its time later
            let next = match p.probing_wait(now, len, window, rate) {
                Some(later) => {
                    p.held.push_front(q);
                    Some(later)
                }
                None => {
                    if let Some(t) = self.emit(now, q, buf) {
                        self.schedule_release(peer, now);
                        return Some(t);
                    }
                    Some(now)
                }
            };
            if let Some(when) = next {
                self.schedule_release(peer, when);
            }
        }
        while let Some(q) = self.outq.pop_front() {
            let probing = self.quiet_peers > 0 || !self.pacing.is_empty();
            if let Some(peer) = probing
                .then(|| non_destination(&self.tracked, &q))
                .flatten()
            {
                if let Some(p) = self.peers.get_mut(&peer) {
                    let len = queued_len(&self.tracked, &q);
                    let wait = if p.held.is_empty() {
                        p.probing_wait(now, len, self.probing_window, self.config.probing_rate())
                    } else {
                        // behind the NONs already held: FIFO per peer
                        Some(SimTime::MAX)
                    };
                    if let Some(at) = wait {
                        self.stats.probing_held += 1;
                        if let Queued::Tracked { key, .. } = &q {
                            // a held NON request expires unsent if it is
                            // still held when its response would be overdue
                            if let Some(t) = self.tracked.get_mut(key) {
                                if t.deadline == SimTime::MAX {
                                    t.deadline = now + t.timeout;
                                    self.timers.insert((t.deadline, *key));
                                }
                            }
                        }
                        p.held.push_back(q);
                        if at != SimTime::MAX {
                            self.schedule_release(peer, at);
                        }
                        continue;
                    }
                }
            }
            if let Some(t) = self.emit(now, q, buf) {
                return Some(t);
            }
        }
        None
    }

    /// (Re)arm `peer`'s PROBING_RATE release at `at` if it holds NONs.
    fn schedule_release(&mut self, peer: SockAddr, at: SimTime) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(old) = p.release_at.take() {
            self.pacing.remove(&(old, peer));
        }
        if !p.held.is_empty() {
            p.release_at = Some(at);
            self.pacing.insert((at, peer));
        }
    }

    /// Append one queued datagram to `buf` and describe it; `None` if it has
    /// nothing to send any more (its message ended, its reply expired).
    fn emit(&mut self, now: SimTime, q: Queued, buf: &mut Vec<u8>) -> Option<MessageTransmit> {
        let start = buf.len();
        let mut key = None;
        let (to, repeat) = match q {
            Queued::Tracked {
                key: k,
                retransmission,
            } => {
                let t = self.tracked.get_mut(&k)?;
                buf.extend_from_slice(&t.bytes);
                if t.first_sent == SimTime::MAX {
                    // first transmission: the timer starts now (a held NON
                    // request's hold timer is replaced)
                    if t.deadline != SimTime::MAX {
                        self.timers.remove(&(t.deadline, k));
                    }
                    let p = self.peers.entry(t.peer).or_default();
                    if t.confirmable && self.config.congestion == Congestion::Cocoa {
                        // draft-ietf-core-cocoa-03 §4.1, §4.2.1: the peer's
                        // RTO (blind: 2 s per parallel exchange), dithered
                        // in [RTO, RTO·ACK_RANDOM_FACTOR]
                        let parallel = if t.interaction {
                            p.outstanding
                        } else {
                            p.outstanding + 1
                        };
                        let rto = p
                            .cocoa
                            .get_or_insert_with(Cocoa::default)
                            .rto_for_exchange(now, parallel);
                        let hi = libm::floor(rto.as_nanos() as f64 * self.config.random_factor());
                        let hi = (hi as u64).max(rto.as_nanos());
                        t.rto = rto;
                        t.timeout =
                            SimDuration::from_nanos(self.rng.range_inclusive(rto.as_nanos(), hi));
                    }
                    // RFC 7252 §4.7: a message that calls for an answer
                    // (a CON, or a request) starts the peer's silence clock
                    // (PROBING_RATE); a NON Observe notification calls
                    // for none (RFC 7641 §4.5.1 paces those)
                    if p.quiet_since.is_none() && (t.confirmable || t.interaction) {
                        p.quiet_since = Some(now);
                        p.quiet_bytes = 0;
                        self.quiet_peers += 1;
                    }
                    t.first_sent = now;
                    t.deadline = now + t.timeout;
                    self.timers.insert((t.deadline, k));
                }
                key = Some(MessageKey(k));
                (t.peer, retransmission)
            }
            Queued::Cached { peer, mid, repeat } => {
                buf.extend_from_slice(self.dedup.reply(peer, mid)?);
                (peer, repeat)
            }
            Queued::Rst { to, mid } => {
                write_header(buf, MessageType::Rst, Code::EMPTY, mid, &Token::EMPTY);
                (to, false)
            }
            Queued::Owned { to, bytes } => {
                buf.extend_from_slice(&bytes);
                self.give_back(bytes);
                (to, false)
            }
        };
        let Ok(h) = Header::peek(buf.get(start..).unwrap_or(&[])) else {
            buf.truncate(start);
            return None;
        };
        let len = buf.len() - start;
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += len as u64;
        if self.quiet_peers > 0 {
            if let Some(p) = self.peers.get_mut(&to) {
                if p.silent_from(now, self.probing_window).is_some() {
                    p.quiet_bytes = p.quiet_bytes.saturating_add(len as u64);
                }
            }
        }
        Some(MessageTransmit {
            to,
            ty: h.ty,
            code: h.code,
            message_id: h.message_id,
            is_retransmission: repeat,
            len,
            key,
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MessageEvent> {
        self.events.pop_front()
    }

    /// The earliest time `handle_timeout` must be called, if any (a
    /// PROBING_RATE release is due then too: drain `poll_transmit` after
    /// `handle_timeout`, as always).
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let timer = self.timers.first().map(|(t, _)| *t);
        let release = self.pacing.first().map(|(t, _)| *t);
        match (timer, release) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Timers due at `now`, in deadline order (ties in key order): a CON is
    /// retransmitted or given up, a tracked NON expires.
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.dedup.expire(now);
        while let Some(&(t, key)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, key));
            let Some(m) = self.tracked.get_mut(&key) else {
                continue;
            };
            match m.state {
                State::AwaitingAck if m.retransmissions < self.config.max_retransmit => {
                    // RFC 7252 §4.2: retransmit, double the timeout, counted.
                    m.retransmissions += 1;
                    m.timeout = match self.config.congestion {
                        Congestion::Default => m.timeout.saturating_mul(2),
                        Congestion::Cocoa => {
                            // draft-ietf-core-cocoa-03 §4.2.1: the variable
                            // back-off factor of the undithered RTO, the
                            // dithering kept
                            let next = cocoa::back_off(m.rto);
                            let scaled = u128::from(m.timeout.as_nanos())
                                * u128::from(next.as_nanos())
                                / u128::from(m.rto.as_nanos().max(1));
                            m.rto = next;
                            SimDuration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
                        }
                    };
                    m.deadline = t + m.timeout;
                    self.timers.insert((m.deadline, key));
                    // new content (`replace`) is not a resend of anything
                    let retransmission = !std::mem::take(&mut m.replaced);
                    if retransmission {
                        self.stats.retransmissions += 1;
                    }
                    self.outq.push_back(Queued::Tracked {
                        key,
                        retransmission,
                    });
                }
                State::AwaitingAck => {
                    // RFC 7252 §4.2: MAX_RETRANSMIT reached and the last
                    // timeout expired: give up.
                    self.stats.give_ups += 1;
                    self.events.push_back(MessageEvent::GaveUp {
                        key: MessageKey(key),
                        peer: m.peer,
                        token: token_of(&m.bytes),
                        transmissions: m.retransmissions + 1,
                    });
                    self.finish(key);
                }
                State::Sent => {
                    self.stats.expired += 1;
                    self.events.push_back(MessageEvent::Expired {
                        key: MessageKey(key),
                        peer: m.peer,
                        token: token_of(&m.bytes),
                    });
                    self.finish(key);
                }
                State::Waiting => {}
            }
        }
    }

    // ---- buffers --------------------------------------------------------

    /// An empty buffer, recycled when one is available.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Keep a finished buffer for reuse: a few, or as many as messages
    /// were ever tracked at once (each tracked message holds a buffer, so
    /// a window of outstanding requests that rises again to its peak finds
    /// its buffers here instead of allocating them).
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS.max(self.peak_tracked) && buf.capacity() > 0 {
            self.spare.push(buf);
        }
    }

    // ---- internals ------------------------------------------------------

    /// §4.4: message IDs are sequential per endpoint.
    fn fresh_mid(&mut self) -> u16 {
        let m = self.next_mid;
        self.next_mid = self.next_mid.wrapping_add(1);
        m
    }

    /// Give a message its ID and queue its first transmission; a CON draws
    /// its initial timeout now (§4.2), the timer starts when it is sent.
    fn start(&mut self, key: u64) {
        let mid = self.fresh_mid();
        let lo = self.config.ack_timeout.as_nanos();
        let hi = self.config.max_initial_timeout().as_nanos();
        let non_wait = self.config.non_response_timeout;
        let rfc7252 = self.config.congestion == Congestion::Default;
        let Some(m) = self.tracked.get_mut(&key) else {
            return;
        };
        m.message_id = mid;
        let ty = if m.confirmable {
            MessageType::Con
        } else {
            MessageType::Non
        };
        patch_header(&mut m.bytes, ty, mid);
        if m.interaction {
            m.holds_slot = true;
            self.stats.interactions_started += 1;
        }
        if m.confirmable {
            // RFC 7252 §4.2: initial timeout uniform in
            // [ACK_TIMEOUT, ACK_TIMEOUT·ACK_RANDOM_FACTOR], drawn once.
            // (CoCoA draws it from the peer's RTO at the first transmission.)
            if rfc7252 {
                m.timeout = SimDuration::from_nanos(self.rng.range_inclusive(lo, hi));
            }
            m.state = State::AwaitingAck;
        } else {
            m.timeout = non_wait;
            m.state = State::Sent;
        }
        // Indexed by MID so a matching ACK (CON) or RST (CON or NON, §4.3)
        // finds it.
        self.by_mid.insert(mid_key(m.peer, mid), key);
        self.outq.push_back(Queued::Tracked {
            key,
            retransmission: false,
        });
    }

    /// Forget a tracked message and release its NSTART slot.
    fn finish(&mut self, key: u64) {
        let Some(m) = self.tracked.remove(&key) else {
            return;
        };
        if m.deadline != SimTime::MAX {
            self.timers.remove(&(m.deadline, key));
        }
        if m.state != State::Waiting
            && self.by_mid.get(&mid_key(m.peer, m.message_id)) == Some(&key)
        {
            self.by_mid.remove(&mid_key(m.peer, m.message_id));
        }
        if m.holds_slot {
            self.release_slot(m.peer);
        }
        self.give_back(m.bytes);
    }

    /// One outstanding interaction with `peer` ended (§4.7): start waiters.
    fn release_slot(&mut self, peer: SockAddr) {
        let nstart = self.config.nstart();
        let mut to_start = Vec::new();
        if let Some(slots) = self.peers.get_mut(&peer) {
            slots.outstanding = slots.outstanding.saturating_sub(1);
            while slots.outstanding < nstart {
                let Some(next) = slots.waiting.pop_front() else {
                    break;
                };
                slots.outstanding += 1;
                to_start.push(next);
            }
            // an idle peer's entry stays (no remove and re-insert for each
            // exchange) while the table is small
            if slots.forgettable() && self.peers.len() > IDLE_PEERS {
                self.peers.remove(&peer);
            }
        }
        for key in to_start {
            self.start(key);
        }
    }
}

/// Idle peers whose NSTART entry is kept.
const IDLE_PEERS: usize = 64;

/// The token of an encoded message (RFC 7252 §3: TKL in the first byte,
/// the token after the 4-byte header); empty if the bytes are malformed.
fn token_of(bytes: &[u8]) -> Token {
    let tkl = usize::from(bytes.first().map_or(0, |b| b & 0x0F));
    bytes
        .get(4..4 + tkl)
        .and_then(|t| Token::new(t).ok())
        .unwrap_or(Token::EMPTY)
}

/// Set the type bits and message ID of an encoded message (RFC 7252 §3).
fn patch_header(bytes: &mut [u8], ty: MessageType, mid: u16) {
    if let Some(b0) = bytes.first_mut() {
        *b0 = (*b0 & 0xCF) | (ty.bits() << 4);
    }
    if let Some(slot) = bytes.get_mut(2..4) {
        slot.copy_from_slice(&mid.to_be_bytes());
    }
}

/// The destination of a queued NON message PROBING_RATE applies to (a
/// tracked NON's only transmission, or a one-off NON), if `q` is one.
fn non_destination(tracked: &FixedMap<u64, Tracked>, q: &Queued) -> Option<SockAddr> {
    match q {
        Queued::Tracked {
            key,
            retransmission: false,
        } => tracked
            .get(key)
            .filter(|t| !t.confirmable && t.first_sent == SimTime::MAX)
            .map(|t| t.peer),
        Queued::Owned { to, bytes } => Header::peek(bytes)
            .ok()
            .filter(|h| h.ty == MessageType::Non)
            .map(|_| *to),
        _ => None,
    }
}

/// The bytes a queued datagram will take (0 if it has nothing to send).
fn queued_len(tracked: &FixedMap<u64, Tracked>, q: &Queued) -> usize {
    match q {
        Queued::Tracked { key, .. } => tracked.get(key).map_or(0, |t| t.bytes.len()),
        Queued::Owned { bytes, .. } => bytes.len(),
        Queued::Cached { .. } => 0,
        Queued::Rst { .. } => 4,
    }
}
