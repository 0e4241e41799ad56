//! The sans-IO MQTT 3.1.1 broker: one state machine serving every
//! connection, each named by a driver-chosen [`ConnId`].
//!
//! Driver shape ([`crate::sansio::SansIo`], DESIGN.md convention 1). Inputs:
//! [`Broker::handle_input`] with a [`BrokerInput`] per connection (accepted,
//! bytes — any split of the TCP byte stream: partial and multiple packets
//! are fine —, gone), [`Broker::handle_timeout`], [`Broker::crash`] /
//! [`Broker::restart`].
//! After every input the driver polls, in this order:
//! 1. [`Broker::poll_transmit`] until `None`: one whole packet per call,
//!    written to the caller's buffer, for the named connection;
//! 2. [`Broker::poll_event`] until `None` (`BrokerEvent::Close(conn)`: close
//!    that transport now — its last packets were returned in step 1);
//! 3. [`Broker::poll_timeout`], calling `handle_timeout(t)` when time
//!    reaches it (early calls are harmless).
//!
//! Timers are lazy: each connection has one entry in an ordered set
//! (connect timeout, then keep-alive), re-armed only when it fires, so a
//! received packet costs no timer update.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::sim::{SimDuration, SimTime};

use super::acl::AclAction;
use super::codec::{self, encode_ack, encode_publish, DecodeError};
use super::config::{BrokerConfig, Persistence};
use super::events::{
    BrokerEvent, BrokerStats, BrokerTransmit, ConnId, DisconnectReason, ProtocolViolation,
};
use super::packet::{
    ConnAck, ConnectReturnCode, LastWill, Packet, PacketId, PacketType, QoS, QosPid, SubAck,
};
use super::session::{Conn, ConnState, ConnTable, Msg, MsgProps, Session, SubIds};
use super::subtree::{SessionIdx, SubscriptionTree};
use super::topic::{TopicFilter, TopicName};
use super::v5::{ConnAck5, Packet5, ReasonCode, SubAck5};

mod handle;
mod route;
mod v5;

/// A packet waiting for `poll_transmit`; encoded only then.
#[derive(Debug)]
enum Out {
    ConnAck(ConnAck),
    Ack {
        ty: PacketType,
        pid: PacketId,
        retransmission: bool,
    },
    SubAck(SubAck),
    PingResp,
    Publish {
        msg: Arc<Msg>,
        qos_pid: QosPid,
        retain: bool,
        dup: bool,
        sub_ids: SubIds,
    },
    /// MQTT 5.0 only: CONNACK with properties.
    ConnAck5(Box<ConnAck5>),
    /// MQTT 5.0 only: an ack with a reason code other than Success.
    Ack5 {
        ty: PacketType,
        pid: PacketId,
        reason: ReasonCode,
    },
    /// MQTT 5.0 only: SUBACK (`unsub` false) or UNSUBACK (true).
    SubAck5 {
        ack: Box<SubAck5>,
        unsub: bool,
    },
    /// MQTT 5.0 only: a server-sent DISCONNECT (§3.14).
    Disconnect5(ReasonCode),
}

/// A shared subscription's members (§4.8.2), in subscription order. Each
/// message goes to one member, round robin, skipping members whose
/// session is offline (unless all are: then the next in turn queues it).
#[derive(Debug, Default)]
struct SharedGroup {
    members: Vec<(SessionIdx, QoS)>,
    next: usize,
}

/// A will waiting out its Will Delay Interval (§3.1.3.2).
#[derive(Debug)]
struct PendingWill {
    client_id: Arc<str>,
    will: LastWill,
    props: Option<Box<MsgProps>>,
    expiry: Option<u32>,
}

/// What a test or a driver can see of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub connected: bool,
    pub clean: bool,
    pub subscriptions: Vec<(String, QoS)>,
    pub inflight: usize,
    pub queued: usize,
    pub incoming_qos2: usize,
    /// The session holds its box of subscriptions and queues (given back
    /// when all are empty: a publishing-only client's session holds none).
    pub queues_held: bool,
}

/// The broker.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    down: bool,
    started_at: SimTime,
    conns: ConnTable,
    sessions: Vec<Option<Session>>,
    free: Vec<SessionIdx>,
    by_client: BTreeMap<Arc<str>, SessionIdx>,
    tree: SubscriptionTree,
    retained: BTreeMap<TopicName, Arc<Msg>>,
    outq: VecDeque<(ConnId, Out)>,
    events: VecDeque<BrokerEvent>,
    conn_timers: BTreeSet<(SimTime, ConnId)>,
    retry_timers: BTreeSet<(SimTime, SessionIdx)>,
    next_sys: Option<SimTime>,
    /// `packets_sent` at the last (re)start, for `$SYS/broker/messages/sent`.
    sent_at_start: u64,
    stats: BrokerStats,
    scratch: Vec<(SessionIdx, QoS)>,
    next_auto_id: u64,
    /// Shared subscriptions by (filter, share name).
    shared: BTreeMap<(TopicFilter, Arc<str>), SharedGroup>,
    /// Offline 5.0 sessions to discard: (time, session).
    expiry_timers: BTreeSet<(SimTime, SessionIdx)>,
    /// Delayed wills: (time, id) and the wills by id.
    will_timers: BTreeSet<(SimTime, u64)>,
    pending_wills: BTreeMap<u64, PendingWill>,
    next_will_id: u64,
}

fn keep_alive_limit(keep_alive: u16) -> SimDuration {
    // 1.5 × keep alive [MQTT-3.1.2-24].
    SimDuration::from_millis(u64::from(keep_alive) * 1500)
}

impl Broker {
    /// A broker started at `now`.
    pub fn new(config: BrokerConfig, now: SimTime) -> Self {
        let next_sys = config.sys_interval.map(|i| now + i);
        Broker {
            config,
            down: false,
            started_at: now,
            conns: ConnTable::default(),
            sessions: Vec::new(),
            free: Vec::new(),
            by_client: BTreeMap::new(),
            tree: SubscriptionTree::new(),
            retained: BTreeMap::new(),
            outq: VecDeque::new(),
            events: VecDeque::new(),
            conn_timers: BTreeSet::new(),
            retry_timers: BTreeSet::new(),
            next_sys,
            sent_at_start: 0,
            stats: BrokerStats::default(),
            scratch: Vec::new(),
            next_auto_id: 0,
            shared: BTreeMap::new(),
            expiry_timers: BTreeSet::new(),
            will_timers: BTreeSet::new(),
            pending_wills: BTreeMap::new(),
            next_will_id: 0,
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }
    pub fn stats(&self) -> &BrokerStats {
        &self.stats
    }
    /// True between `crash` and `restart`.
    pub fn is_down(&self) -> bool {
        self.down
    }
    /// Open connections (connected or awaiting CONNECT).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
    /// Sessions held (connected clients and offline persistent sessions).
    pub fn session_count(&self) -> usize {
        self.by_client.len()
    }
    /// Subscriptions in the tree.
    pub fn subscription_count(&self) -> usize {
        self.tree.len()
    }
    /// The retained message on `topic`: (payload, QoS).
    pub fn retained(&self, topic: &str) -> Option<(&[u8], QoS)> {
        self.retained.get(topic).map(|m| (&m.payload[..], m.qos))
    }
    /// A session by client id.
    pub fn session_info(&self, client_id: &str) -> Option<SessionInfo> {
        let s = self.session(*self.by_client.get(client_id)?)?;
        Some(SessionInfo {
            connected: s.conn.is_some(),
            clean: s.clean,
            subscriptions: s
                .q()
                .subs
                .iter()
                .map(|(f, q)| (f.as_str().to_string(), *q))
                .collect(),
            inflight: s.q().inflight.len(),
            queued: s.q().queue.len(),
            incoming_qos2: s.q().incoming.len(),
            queues_held: s.holds_queues(),
        })
    }
    /// The client id bound to `conn`, once CONNECTed.
    pub fn client_id(&self, conn: ConnId) -> Option<&str> {
        match self.conns.get(&conn)?.state {
            ConnState::Connected(idx) => self.session(idx).map(|s| &*s.client_id),
            ConnState::AwaitConnect => None,
        }
    }

    fn session(&self, idx: SessionIdx) -> Option<&Session> {
        self.sessions.get(idx as usize)?.as_ref()
    }
    fn session_mut(&mut self, idx: SessionIdx) -> Option<&mut Session> {
        self.sessions.get_mut(idx as usize)?.as_mut()
    }

    /// Connection `conn`'s transport reported something: accepted, bytes,
    /// or gone.
    pub fn handle_input(&mut self, now: SimTime, input: BrokerInput<'_>) {
        match input.input {
            crate::proto::StreamInput::Connected => self.accept(now, input.conn),
            crate::proto::StreamInput::Bytes(b) => self.receive(now, input.conn, b),
            crate::proto::StreamInput::Closed => self.connection_lost(now, input.conn),
        }
    }

    /// A transport connection was accepted.
    fn accept(&mut self, now: SimTime, conn: ConnId) {
        if self.down || self.conns.contains_key(&conn) {
            self.stats.ignored_inputs += 1;
            return;
        }
        self.stats.connections_accepted += 1;
        self.conns.insert(
            conn,
            Conn {
                state: ConnState::AwaitConnect,
                buf: Vec::new(),
                accepted_at: now,
                last_rx: now,
                keep_alive: 0,
                will: None,
                v5: None,
                username: None,
            },
        );
        self.conn_timers
            .insert((now + self.config.connect_timeout, conn));
    }

    /// Bytes arrived on `conn` (any split of the stream).
    fn receive(&mut self, now: SimTime, conn: ConnId, data: &[u8]) {
        if self.down {
            self.stats.ignored_inputs += 1;
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            self.stats.ignored_inputs += 1;
            return;
        };
        self.stats.bytes_received += data.len() as u64;
        let mut buf = std::mem::take(&mut c.buf);
        // Decode straight from `data` when nothing is buffered (the common
        // case): only an incomplete tail is copied.
        let from_data = buf.is_empty();
        if !from_data {
            buf.extend_from_slice(data);
        }
        let input: &[u8] = if from_data { data } else { &buf };
        // before CONNECT the peer is unknown: a smaller bound (looked up
        // again only while the connection still awaits its CONNECT)
        let mut awaiting = c.state == ConnState::AwaitConnect;
        let mut off = 0;
        let mut result = Ok(());
        let mut result5 = Ok(());
        while let Some(rest) = input.get(off..) {
            if awaiting {
                awaiting = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| c.state == ConnState::AwaitConnect);
            }
            let max = if awaiting {
                self.config
                    .max_connect_packet_size
                    .min(self.config.max_packet_size)
            } else {
                self.config.max_packet_size
            };
            if self.conn_is_v5(conn, awaiting, rest) {
                match super::v5::decode(rest, max) {
                    Ok(Some((packet, n))) => {
                        off += n;
                        self.stats.packets_received += 1;
                        let i = usize::from(packet.type_number()).saturating_sub(1);
                        if let Some(x) = self.stats.received_by_type.get_mut(i) {
                            *x += 1;
                        }
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.last_rx = now;
                        }
                        self.handle_packet5(now, conn, packet);
                        if !self.conns.contains_key(&conn) {
                            return; // closed by that packet
                        }
                        continue;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        result5 = Err(e);
                        break;
                    }
                }
            }
            match codec::decode(rest, max) {
                Ok(Some((packet, n))) => {
                    off += n;
                    self.stats.packets_received += 1;
                    if let Some(x) = self
                        .stats
                        .received_by_type
                        .get_mut(packet.packet_type().index())
                    {
                        *x += 1;
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.last_rx = now;
                    }
                    self.handle_packet(now, conn, packet);
                    if !self.conns.contains_key(&conn) {
                        return; // closed by that packet
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            self.decode_failed(now, conn, e);
            return;
        }
        if let Err(e) = result5 {
            self.decode_failed5(now, conn, e);
            return;
        }
        if from_data {
            buf.extend_from_slice(data.get(off..).unwrap_or(&[]));
        } else {
            buf.drain(..off.min(buf.len()));
        }
        if buf.is_empty() && buf.capacity() > 4096 {
            buf = Vec::new();
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.buf = buf;
        }
    }

    fn decode_failed(&mut self, now: SimTime, conn: ConnId, e: DecodeError) {
        let awaiting = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.state == ConnState::AwaitConnect);
        if let (true, DecodeError::UnsupportedProtocolLevel(level)) = (awaiting, &e) {
            if *level > 5 {
                // A level after 5.0: answered in the 5.0 form, reason 0x84
                // Unsupported Protocol Version (5.0 [MQTT-3.1.2-2]).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.v5 = Some(Box::default());
                }
                self.refuse5(now, conn, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
            } else {
                // [MQTT-3.1.2-2]: CONNACK 0x01, then close.
                self.refuse(now, conn, ConnectReturnCode::UnacceptableProtocolVersion);
            }
            return;
        }
        self.protocol_error(now, conn, ProtocolViolation::Decode(e));
    }

    fn protocol_error(&mut self, now: SimTime, conn: ConnId, error: ProtocolViolation) {
        self.stats.protocol_errors += 1;
        self.events
            .push_back(BrokerEvent::ProtocolError { conn, error });
        self.close_conn(now, conn, DisconnectReason::ProtocolError);
    }

    fn refuse(&mut self, now: SimTime, conn: ConnId, code: ConnectReturnCode) {
        self.stats.connects_refused += 1;
        self.outq.push_back((
            conn,
            Out::ConnAck(ConnAck {
                session_present: false, // [MQTT-3.2.2-4]
                code,
            }),
        ));
        self.events
            .push_back(BrokerEvent::ConnectRefused { conn, code });
        self.close_conn(now, conn, DisconnectReason::Refused);
    }

    /// The transport of `conn` failed or the peer closed it without
    /// DISCONNECT: the will is published. Unknown connections are ignored.
    fn connection_lost(&mut self, now: SimTime, conn: ConnId) {
        if self.down {
            return;
        }
        self.close_conn(now, conn, DisconnectReason::Lost);
    }

    /// End `conn`: detach (or, for a clean session, discard) its session,
    /// publish its will when `reason` calls for it, and raise `Close` unless
    /// the driver reported the loss.
    fn close_conn(&mut self, now: SimTime, conn: ConnId, reason: DisconnectReason) {
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        if reason == DisconnectReason::Lost {
            self.outq.retain(|(id, _)| *id != conn);
        }
        if let ConnState::Connected(idx) = c.state {
            let mut client_id = None;
            // how long the session outlives the connection (s)
            let mut lifetime = 0u32;
            if let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) {
                s.conn = None;
                let clean = s.clean;
                client_id = Some(s.client_id.clone());
                self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
                self.events.push_back(BrokerEvent::ClientDisconnected {
                    conn,
                    client_id: s.client_id.clone(),
                    reason,
                });
                if clean {
                    self.remove_session(idx);
                } else {
                    self.stats.clients_disconnected += 1;
                    lifetime = u32::MAX;
                    if let Some(v) = s.v5.as_mut() {
                        // 5.0 Session Expiry Interval [MQTT-3.1.2-23]
                        lifetime = v.expiry_interval;
                        if lifetime != u32::MAX {
                            let at = now + SimDuration::from_secs(u64::from(lifetime));
                            v.expires_at = Some(at);
                            self.expiry_timers.insert((at, idx));
                        }
                    }
                }
            }
            if reason.publishes_will() {
                if let Some(w) = c.will.map(|w| *w) {
                    let (delay, props, expiry) = c.v5.as_mut().map_or((0, None, None), |v| {
                        (v.will_delay, v.will_props.take(), v.will_expiry)
                    });
                    // published when the Will Delay Interval passes or the
                    // session ends, whichever is first (§3.1.3.2)
                    let delay = delay.min(lifetime);
                    let client_id = client_id.unwrap_or_else(|| Arc::from(""));
                    let allowed = self.acl_allows(
                        conn,
                        &client_id,
                        c.username.as_deref(),
                        AclAction::Will,
                        w.topic.as_str(),
                    );
                    if !allowed {
                        // refused by the ACL: never published
                    } else if delay == 0 {
                        self.publish_will(now, client_id, w, props, expiry);
                    } else {
                        self.next_will_id += 1;
                        let id = self.next_will_id;
                        let at = now + SimDuration::from_secs(u64::from(delay));
                        self.will_timers.insert((at, id));
                        self.pending_wills.insert(
                            id,
                            PendingWill {
                                client_id,
                                will: w,
                                props,
                                expiry,
                            },
                        );
                    }
                }
            }
        }
        if reason != DisconnectReason::Lost {
            self.events.push_back(BrokerEvent::Close(conn));
        }
    }

    fn publish_will(
        &mut self,
        now: SimTime,
        client_id: Arc<str>,
        w: LastWill,
        mut props: Option<Box<MsgProps>>,
        expiry: Option<u32>,
    ) {
        if let Some(e) = expiry {
            // the will's Message Expiry Interval runs from publication
            props.get_or_insert_with(Default::default).expires_at =
                Some(now + SimDuration::from_secs(u64::from(e)));
        }
        self.stats.wills_published += 1;
        self.events.push_back(BrokerEvent::WillPublished {
            client_id,
            topic: w.topic.clone(),
        });
        let msg = Arc::new(Msg {
            topic: w.topic,
            payload: w.message,
            qos: w.qos,
            props,
        });
        self.route(now, msg, w.retain, None);
    }

    /// A client id connected again: its delayed will is not published
    /// (§3.1.3.2).
    fn cancel_will(&mut self, client_id: &str) {
        let ids: Vec<u64> = self
            .pending_wills
            .iter()
            .filter(|(_, w)| &*w.client_id == client_id)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.pending_wills.remove(&id);
        }
    }

    /// Discard a session and its subscriptions.
    fn remove_session(&mut self, idx: SessionIdx) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.take()) else {
            return;
        };
        for (f, _) in &s.q().subs {
            if !self.remove_shared(f, idx) {
                self.tree.remove(f, idx);
            }
        }
        self.by_client.remove(&s.client_id);
        if s.conn.is_none() && !s.clean {
            self.stats.clients_disconnected = self.stats.clients_disconnected.saturating_sub(1);
        }
        self.free.push(idx);
    }

    /// The earliest time `handle_timeout` is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        if self.down {
            return None;
        }
        [
            self.conn_timers.first().map(|t| t.0),
            self.retry_timers.first().map(|t| t.0),
            self.expiry_timers.first().map(|t| t.0),
            self.will_timers.first().map(|t| t.0),
            self.next_sys,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fire due timers, in this order: connection timers (CONNECT timeout,
    /// keep-alive), `legacy_retry` resends, `$SYS` publication.
    pub fn handle_timeout(&mut self, now: SimTime) {
        if self.down {
            return;
        }
        while let Some(&(t, conn)) = self.conn_timers.first() {
            if t > now {
                break;
            }
            self.conn_timers.pop_first();
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let (deadline, reason) = match c.state {
                ConnState::AwaitConnect => (
                    c.accepted_at + self.config.connect_timeout,
                    DisconnectReason::ConnectTimeout,
                ),
                ConnState::Connected(_) if c.keep_alive == 0 => continue,
                ConnState::Connected(_) => (
                    c.last_rx + keep_alive_limit(c.keep_alive),
                    DisconnectReason::KeepAliveTimeout,
                ),
            };
            if deadline <= now {
                match reason {
                    DisconnectReason::ConnectTimeout => self.stats.connect_timeouts += 1,
                    _ => self.stats.keep_alive_timeouts += 1,
                }
                if reason == DisconnectReason::KeepAliveTimeout {
                    self.send_disconnect5(conn, ReasonCode::KEEP_ALIVE_TIMEOUT);
                }
                self.close_conn(now, conn, reason);
            } else {
                self.conn_timers.insert((deadline, conn));
            }
        }
        while let Some(&(t, idx)) = self.expiry_timers.first() {
            if t > now {
                break;
            }
            self.expiry_timers.pop_first();
            let due = self.session(idx).is_some_and(|s| {
                s.conn.is_none() && s.v5.as_ref().is_some_and(|v| v.expires_at == Some(t))
            });
            if due {
                self.stats.sessions_expired += 1;
                self.remove_session(idx);
            }
        }
        while let Some(&(t, id)) = self.will_timers.first() {
            if t > now {
                break;
            }
            self.will_timers.pop_first();
            if let Some(w) = self.pending_wills.remove(&id) {
                self.publish_will(now, w.client_id, w.will, w.props, w.expiry);
            }
        }
        while let Some(&(t, idx)) = self.retry_timers.first() {
            if t > now {
                break;
            }
            self.retry_timers.pop_first();
            self.legacy_resend(now, idx);
        }
        if self.next_sys.is_some_and(|t| t <= now) {
            self.publish_sys(now);
            self.next_sys = self.config.sys_interval.map(|i| now + i);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// Append the next packet to `buf`; a PUBLISH that
    /// leaves for a subscriber is reported (`delivery_events`) as sent at
    /// `now`.
    pub fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<BrokerTransmit> {
        loop {
            let (conn, out) = self.outq.pop_front()?;
            let start = buf.len();
            let (kind, retransmission, delivered) = match out {
                Out::ConnAck(c) => {
                    if Packet::ConnAck(c).encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    (PacketType::ConnAck, false, None)
                }
                Out::Ack {
                    ty,
                    pid,
                    retransmission,
                } => {
                    encode_ack(buf, ty, pid);
                    (ty, retransmission, None)
                }
                Out::SubAck(s) => {
                    if Packet::SubAck(s).encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    (PacketType::SubAck, false, None)
                }
                Out::PingResp => {
                    if Packet::PingResp.encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    (PacketType::PingResp, false, None)
                }
                Out::Publish {
                    msg,
                    qos_pid,
                    retain,
                    dup,
                    sub_ids,
                } => {
                    if self.conns.get(&conn).is_some_and(|c| c.v5.is_some()) {
                        if !self
                            .encode_publish5(now, conn, buf, &msg, qos_pid, retain, dup, sub_ids)
                        {
                            buf.truncate(start);
                            continue;
                        }
                    } else if encode_publish(buf, dup, qos_pid, retain, &msg.topic, &msg.payload)
                        .is_err()
                    {
                        buf.truncate(start);
                        continue;
                    }
                    let d = (!dup).then_some((msg, qos_pid.qos(), retain));
                    (PacketType::Publish, dup, d)
                }
                Out::ConnAck5(c) => {
                    if Packet5::ConnAck(*c).encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    (PacketType::ConnAck, false, None)
                }
                Out::Ack5 { ty, pid, reason } => {
                    super::v5::codec::encode_ack5(buf, ty as u8, pid, reason);
                    (ty, false, None)
                }
                Out::SubAck5 { ack, unsub } => {
                    let (p, ty) = if unsub {
                        (Packet5::UnsubAck(*ack), PacketType::UnsubAck)
                    } else {
                        (Packet5::SubAck(*ack), PacketType::SubAck)
                    };
                    if p.encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    (ty, false, None)
                }
                Out::Disconnect5(reason) => {
                    let d = super::v5::ReasonOnly {
                        reason,
                        props: Default::default(),
                    };
                    if Packet5::Disconnect(d).encode(buf).is_err() {
                        buf.truncate(start);
                        continue;
                    }
                    self.stats.disconnects_sent += 1;
                    (PacketType::Disconnect, false, None)
                }
            };
            let len = buf.len() - start;
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len as u64;
            let i = kind.index();
            if let Some(x) = self.stats.sent_by_type.get_mut(i) {
                *x += 1;
            }
            if let Some(x) = self.stats.bytes_sent_by_type.get_mut(i) {
                *x += len as u64;
            }
            if retransmission {
                self.stats.retransmissions += 1;
            }
            if let Some((msg, qos, retain)) = delivered {
                self.stats.publishes_sent += 1;
                if self.config.delivery_events {
                    self.events.push_back(BrokerEvent::Delivered {
                        at: now,
                        conn,
                        topic: msg.topic.clone(),
                        qos,
                        retain,
                        payload: msg.payload.clone(),
                    });
                }
            }
            return Some(BrokerTransmit {
                conn,
                kind,
                len,
                retransmission,
            });
        }
    }

    /// The broker process dies: every connection is gone (a `Close` event
    /// for each, so the driver can reset the transports), nothing is sent,
    /// wills are not published, and inputs are ignored until `restart`.
    /// With `Persistence::Durable` persistent sessions and retained messages
    /// survive; with `None` all state is lost.
    pub fn crash(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        self.outq.clear();
        self.events.clear();
        self.conn_timers.clear();
        self.retry_timers.clear();
        self.will_timers.clear();
        self.pending_wills.clear();
        self.next_sys = None;
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        self.conns.clear();
        for conn in conns {
            self.events.push_back(BrokerEvent::Close(conn));
        }
        match self.config.persistence {
            Persistence::None => {
                self.sessions.clear();
                self.free.clear();
                self.by_client.clear();
                self.tree = SubscriptionTree::new();
                self.shared.clear();
                self.expiry_timers.clear();
                self.retained.clear();
            }
            Persistence::Durable => {
                let idxs: Vec<SessionIdx> = self.by_client.values().copied().collect();
                for idx in idxs {
                    let clean = self.session(idx).is_some_and(|s| s.clean);
                    if clean {
                        self.remove_session(idx);
                    } else if let Some(s) = self.session_mut(idx) {
                        s.conn = None;
                    }
                }
            }
        }
        self.stats.clients_connected = 0;
        self.stats.clients_disconnected = self.by_client.len() as u64;
        self.stats.retained_messages = self.retained.len() as u64;
    }

    /// The broker process starts again at `now` (uptime restarts).
    pub fn restart(&mut self, now: SimTime) {
        if !self.down {
            return;
        }
        self.down = false;
        self.started_at = now;
        self.sent_at_start = self.stats.packets_sent;
        self.next_sys = self.config.sys_interval.map(|i| now + i);
    }
}

/// What a broker connection's transport reports (`Broker::handle_input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerInput<'a> {
    pub conn: ConnId,
    pub input: crate::proto::StreamInput<'a>,
}

impl<'a> BrokerInput<'a> {
    /// `conn` was accepted.
    pub fn accepted(conn: ConnId) -> Self {
        BrokerInput {
            conn,
            input: crate::proto::StreamInput::Connected,
        }
    }
    /// Bytes arrived on `conn`.
    pub fn bytes(conn: ConnId, data: &'a [u8]) -> Self {
        BrokerInput {
            conn,
            input: crate::proto::StreamInput::Bytes(data),
        }
    }
    /// `conn`'s transport is gone.
    pub fn closed(conn: ConnId) -> Self {
        BrokerInput {
            conn,
            input: crate::proto::StreamInput::Closed,
        }
    }
}

impl crate::proto::SansIo for Broker {
    type Input<'a> = BrokerInput<'a>;
    type Transmit = BrokerTransmit;
    type Event = BrokerEvent;
    fn handle_input(&mut self, now: SimTime, input: BrokerInput<'_>) {
        Broker::handle_input(self, now, input)
    }
    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<BrokerTransmit> {
        Broker::poll_transmit(self, now, buf)
    }
    fn poll_event(&mut self) -> Option<BrokerEvent> {
        Broker::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<SimTime> {
        Broker::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: SimTime) {
        Broker::handle_timeout(self, now)
    }
}
