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
use super::session::{Conn, ConnState, Msg, Session};
use super::subtree::{SessionIdx, SubscriptionTree};
use super::topic::TopicName;

mod handle;
mod route;

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
    },
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
}

/// The broker.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    down: bool,
    started_at: SimTime,
    conns: BTreeMap<ConnId, Conn>,
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
            conns: BTreeMap::new(),
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
                .subs
                .iter()
                .map(|(f, q)| (f.as_str().to_string(), *q))
                .collect(),
            inflight: s.inflight.len(),
            queued: s.queue.len(),
            incoming_qos2: s.incoming.len(),
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
        if awaiting && matches!(e, DecodeError::UnsupportedProtocolLevel(_)) {
            // [MQTT-3.1.2-2]: CONNACK 0x01, then close.
            self.refuse(now, conn, ConnectReturnCode::UnacceptableProtocolVersion);
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
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if reason == DisconnectReason::Lost {
            self.outq.retain(|(id, _)| *id != conn);
        }
        if let ConnState::Connected(idx) = c.state {
            let mut client_id = None;
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
                }
            }
            if reason.publishes_will() {
                if let Some(w) = c.will {
                    let id = client_id.clone().unwrap_or_else(|| Arc::from(""));
                    if self.acl_allows(
                        conn,
                        &id,
                        c.username.as_deref(),
                        AclAction::Will,
                        w.topic.as_str(),
                    ) {
                        self.publish_will(now, client_id, w);
                    }
                }
            }
        }
        if reason != DisconnectReason::Lost {
            self.events.push_back(BrokerEvent::Close(conn));
        }
    }

    fn publish_will(&mut self, now: SimTime, client_id: Option<Arc<str>>, w: LastWill) {
        self.stats.wills_published += 1;
        self.events.push_back(BrokerEvent::WillPublished {
            client_id: client_id.unwrap_or_else(|| Arc::from("")),
            topic: w.topic.clone(),
        });
        let msg = Arc::new(Msg {
            topic: w.topic,
            payload: w.message,
            qos: w.qos,
        });
        self.route(now, msg, w.retain);
    }

    /// Discard a session and its subscriptions.
    fn remove_session(&mut self, idx: SessionIdx) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.take()) else {
            return;
        };
        for (f, _) in &s.subs {
            self.tree.remove(f, idx);
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
                self.close_conn(now, conn, reason);
            } else {
                self.conn_timers.insert((deadline, conn));
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
                } => {
                    if encode_publish(buf, dup, qos_pid, retain, &msg.topic, &msg.payload).is_err()
                    {
                        buf.truncate(start);
                        continue;
                    }
                    let d = (!dup).then_some((msg, qos_pid.qos(), retain));
                    (PacketType::Publish, dup, d)
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
