//! The MQTT 5.0 edge of the broker: a connection whose CONNECT has
//! protocol level 5 is decoded with the 5.0 codec, and each packet is
//! checked against what 5.0 adds (topic aliases, Maximum QoS, Retain
//! Available, Receive Maximum, subscription options, shared subscriptions,
//! session expiry) before the version-neutral core of `handle.rs` and
//! `route.rs` acts on it. Outgoing packets to such a connection are encoded
//! in the 5.0 form (`poll_transmit`), with reason codes, properties and
//! topic aliases.

use std::sync::Arc;

use crate::sim::{SimDuration, SimTime};

use super::super::acl::AclAction;
use super::super::events::{BrokerEvent, ConnId, DisconnectReason, ProtocolViolation};
use super::super::packet::{
    Connect, ConnectReturnCode, LastWill, PacketId, PacketType, ProtocolLevel, Publish, QoS, QosPid,
};
use super::super::session::{ConnState, Msg, MsgProps, SubEntry, SubIds};
use super::super::subtree::SessionIdx;
use super::super::topic::{TopicFilter, TopicName};
use super::super::v5::{
    connect_protocol_level, ConnAck5, Connect5, Decode5Error, Packet5, Properties, Publish5,
    ReasonCode, RetainHandling, SubAck5, Subscribe5, Unsubscribe5,
};
use super::route::{is_shared, share_filter};
use super::{Broker, Out};

/// What a 5.0 CONNECT adds to the version-neutral [`Connect`].
#[derive(Debug, Default)]
pub(in super::super) struct V5Connect {
    pub session_expiry: u32,
    pub receive_maximum: u16,
    pub max_packet_size: u32,
    pub topic_alias_maximum: u16,
    pub will_delay: u32,
    pub will_props: Option<Box<MsgProps>>,
    pub will_expiry: Option<u32>,
    pub auth_method: bool,
}

/// PUBACK/PUBREC reason: 0x10 No matching subscribers when nothing
/// matched (§3.4.2.1; mosquitto answers so).
pub(super) fn no_match(matched: bool) -> ReasonCode {
    if matched {
        ReasonCode::SUCCESS
    } else {
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    }
}

/// The 3.1.1 return code an event reports for a 5.0 refusal.
fn v311_code(reason: ReasonCode) -> ConnectReturnCode {
    match reason {
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => ConnectReturnCode::UnacceptableProtocolVersion,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => ConnectReturnCode::IdentifierRejected,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD => ConnectReturnCode::BadUserNameOrPassword,
        ReasonCode::NOT_AUTHORIZED | ReasonCode::BAD_AUTHENTICATION_METHOD => {
            ConnectReturnCode::NotAuthorized
        }
        _ => ConnectReturnCode::ServerUnavailable,
    }
}

fn v5_reason(code: ConnectReturnCode) -> ReasonCode {
    match code {
        ConnectReturnCode::Accepted => ReasonCode::SUCCESS,
        ConnectReturnCode::UnacceptableProtocolVersion => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        ConnectReturnCode::IdentifierRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
        ConnectReturnCode::ServerUnavailable => ReasonCode::SERVER_UNAVAILABLE,
        ConnectReturnCode::BadUserNameOrPassword => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ConnectReturnCode::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
    }
}

/// Split `$share/{group}/{filter}` (§4.8.2): the group must be non-empty
/// and free of wildcards, the filter a valid filter.
fn parse_shared(f: &TopicFilter) -> Option<(Arc<str>, TopicFilter)> {
    let rest = f.as_str().strip_prefix("$share/")?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || group.contains(['+', '#']) {
        return None;
    }
    Some((Arc::from(group), TopicFilter::new(inner).ok()?))
}

/// The properties an application message carries on, from a 5.0 PUBLISH
/// or will; `None` when there are none.
fn msg_props(p: &Properties, now: SimTime) -> Option<Box<MsgProps>> {
    let m = MsgProps {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        expires_at: p
            .message_expiry_interval
            .map(|s| now + SimDuration::from_secs(u64::from(s))),
    };
    (m != MsgProps::default()).then(|| Box::new(m))
}

impl Broker {
    /// Whether `conn` speaks 5.0; a connection still waiting for its
    /// CONNECT becomes 5.0 when the CONNECT in `rest` says level 5.
    pub(super) fn conn_is_v5(&mut self, conn: ConnId, awaiting: bool, rest: &[u8]) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.v5.is_some() {
            return true;
        }
        if awaiting && connect_protocol_level(rest) == Some(5) {
            c.v5 = Some(Box::default());
            return true;
        }
        false
    }

    fn is_v5(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.v5.is_some())
    }

    /// Whether connection `conn` speaks MQTT 5.0 (its CONNECT had protocol
    /// level 5); false for 3.1.1 and unknown connections.
    pub fn speaks_v5(&self, conn: ConnId) -> bool {
        self.is_v5(conn)
    }

    /// Undecodable bytes on a 5.0 connection: CONNACK (before CONNECT was
    /// accepted) or DISCONNECT with the error's reason code, then close
    /// (§4.13).
    pub(super) fn decode_failed5(&mut self, now: SimTime, conn: ConnId, e: Decode5Error) {
        let awaiting = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.state == ConnState::AwaitConnect);
        let reason = e.reason();
        if awaiting {
            self.stats.protocol_errors += 1;
            self.events.push_back(BrokerEvent::ProtocolError {
                conn,
                error: ProtocolViolation::V5(e.to_string()),
            });
            self.refuse5(now, conn, reason);
        } else {
            self.violation5(now, conn, reason, e.to_string());
        }
    }

    /// A 5.0 rule broken: DISCONNECT with `reason`, counted as a protocol
    /// error, connection closed.
    fn violation5(&mut self, now: SimTime, conn: ConnId, reason: ReasonCode, what: String) {
        self.send_disconnect5(conn, reason);
        self.protocol_error(
            now,
            conn,
            ProtocolViolation::V5(format!("{what}: {reason}")),
        );
    }

    /// Refuse a 5.0 CONNECT with `reason` (CONNACK, then close).
    pub(super) fn refuse5(&mut self, now: SimTime, conn: ConnId, reason: ReasonCode) {
        self.stats.connects_refused += 1;
        self.outq.push_back((
            conn,
            Out::ConnAck5(Box::new(ConnAck5 {
                session_present: false,
                reason,
                props: Properties::default(),
            })),
        ));
        self.events.push_back(BrokerEvent::ConnectRefused {
            conn,
            code: v311_code(reason),
        });
        self.close_conn(now, conn, DisconnectReason::Refused);
    }

    /// Refuse a CONNECT in its connection's version.
    pub(super) fn refuse_either(&mut self, now: SimTime, conn: ConnId, code: ConnectReturnCode) {
        if self.is_v5(conn) {
            self.refuse5(now, conn, v5_reason(code));
        } else {
            self.refuse(now, conn, code);
        }
    }

    /// Queue a server DISCONNECT with `reason` if `conn` speaks 5.0 (3.1.1
    /// has no server DISCONNECT: the connection is just closed).
    pub(super) fn send_disconnect5(&mut self, conn: ConnId, reason: ReasonCode) {
        if self.is_v5(conn) {
            self.outq.push_back((conn, Out::Disconnect5(reason)));
        }
    }

    /// An ack: the 2-byte form on success (the same bytes in both
    /// versions), else the 5.0 form with its reason code.
    pub(super) fn push_ack5(
        &mut self,
        conn: ConnId,
        ty: PacketType,
        pid: PacketId,
        reason: ReasonCode,
    ) {
        let out = if reason == ReasonCode::SUCCESS || !self.is_v5(conn) {
            Out::Ack {
                ty,
                pid,
                retransmission: false,
            }
        } else {
            Out::Ack5 { ty, pid, reason }
        };
        self.outq.push_back((conn, out));
    }

    /// The CONNACK of an accepted 5.0 CONNECT, announcing what differs
    /// from the specification's defaults (§3.2.2.3).
    pub(super) fn connack5(
        &self,
        session_present: bool,
        assigned: Option<String>,
        expiry: Option<u32>,
        keep_alive: Option<u16>,
    ) -> ConnAck5 {
        let v = &self.config.v5;
        let max_packet = u32::try_from(self.config.max_packet_size).unwrap_or(u32::MAX);
        let props = Properties {
            session_expiry_interval: expiry,
            assigned_client_identifier: assigned,
            server_keep_alive: keep_alive,
            receive_maximum: (v.receive_maximum != u16::MAX).then_some(v.receive_maximum),
            topic_alias_maximum: (v.topic_alias_maximum > 0).then_some(v.topic_alias_maximum),
            maximum_qos: (self.config.max_qos != QoS::ExactlyOnce)
                .then_some(self.config.max_qos.as_u8()),
            retain_available: (!v.retain_available).then_some(0),
            maximum_packet_size: (max_packet < super::super::v5::codec::MAX_VARINT + 5)
                .then_some(max_packet),
            wildcard_subscription_available: (!v.wildcard_subscriptions).then_some(0),
            subscription_identifier_available: (!v.subscription_identifiers).then_some(0),
            shared_subscription_available: (!v.shared_subscriptions).then_some(0),
            ..Properties::default()
        };
        ConnAck5 {
            session_present,
            reason: ReasonCode::SUCCESS,
            props,
        }
    }

    /// Encode a PUBLISH for a 5.0 connection: properties passed on, what
    /// is left of the Message Expiry Interval, Subscription Identifiers,
    /// and a topic alias when the client allows one. Returns false (and
    /// counts it) when the packet exceeds the client's Maximum Packet
    /// Size: it is then not sent, and a QoS 1/2 copy is treated as
    /// delivered ([MQTT-3.1.2-25]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encode_publish5(
        &mut self,
        now: SimTime,
        conn: ConnId,
        buf: &mut Vec<u8>,
        msg: &Msg,
        qos_pid: QosPid,
        retain: bool,
        dup: bool,
        sub_ids: SubIds,
    ) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let state = c.state;
        let Some(v) = c.v5.as_mut() else {
            return false;
        };
        let mut props = Properties::default();
        if let Some(m) = &msg.props {
            props.payload_format_indicator = m.payload_format_indicator;
            props.content_type = m.content_type.clone();
            props.response_topic = m.response_topic.clone();
            props.correlation_data = m.correlation_data.clone();
            props.user_properties = m.user_properties.clone();
            props.message_expiry_interval = m.expires_at.map(|at| {
                let left = at.as_nanos().saturating_sub(now.as_nanos());
                u32::try_from(left.div_ceil(1_000_000_000)).unwrap_or(u32::MAX)
            });
        }
        if let Some(ids) = sub_ids {
            props.subscription_identifiers = ids.to_vec();
        }
        let mut new_alias = None;
        let topic = match v.aliases_out.get(&msg.topic) {
            Some(&a) => {
                props.topic_alias = Some(a);
                None
            }
            None => {
                let used = u16::try_from(v.aliases_out.len()).unwrap_or(u16::MAX);
                if used < v.alias_max_out {
                    new_alias = Some(used + 1);
                    props.topic_alias = new_alias;
                }
                Some(msg.topic.clone())
            }
        };
        let p = Packet5::Publish(Publish5 {
            dup,
            qos_pid,
            retain,
            topic,
            props,
            payload: msg.payload.clone(),
        });
        let start = buf.len();
        let Ok(len) = p.encode(buf) else {
            return false;
        };
        let limit = if v.max_packet_size == 0 {
            usize::MAX
        } else {
            v.max_packet_size as usize
        };
        if len > limit {
            buf.truncate(start);
            self.stats.dropped_too_large += 1;
            if let (Some(pid), ConnState::Connected(idx)) = (qos_pid.pid(), state) {
                if let Some(s) = self.session_mut(idx) {
                    if let Some(q) = s.held() {
                        q.inflight.retain(|o| o.pid != pid);
                    }
                    s.shed();
                }
                self.drain(now, idx);
            }
            return false;
        }
        if let Some(a) = new_alias {
            v.aliases_out.insert(msg.topic.clone(), a);
        }
        true
    }

    /// A decoded 5.0 packet on `conn`.
    pub(super) fn handle_packet5(&mut self, now: SimTime, conn: ConnId, packet: Packet5) {
        let Some(state) = self.conns.get(&conn).map(|c| c.state) else {
            return;
        };
        let idx = match state {
            ConnState::AwaitConnect => {
                match packet {
                    Packet5::Connect(c) => self.handle_connect5(now, conn, c),
                    p => self.violation5(
                        now,
                        conn,
                        ReasonCode::PROTOCOL_ERROR,
                        format!("first packet is {}, not CONNECT [MQTT-3.1.0-1]", p.name()),
                    ),
                }
                return;
            }
            ConnState::Connected(idx) => idx,
        };
        match packet {
            Packet5::Connect(_) => self.violation5(
                now,
                conn,
                ReasonCode::PROTOCOL_ERROR,
                "second CONNECT [MQTT-3.1.0-2]".into(),
            ),
            Packet5::Publish(p) => self.handle_publish5(now, conn, idx, p),
            Packet5::PubAck(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubAck),
            Packet5::PubRec(a) if a.reason.is_failure() => {
                // §4.3.3: a failed PUBREC ends the flow; no PUBREL
                let gone = self.session_mut(idx).is_some_and(|s| {
                    let before = s.q().inflight.len();
                    if let Some(q) = s.held() {
                        q.inflight.retain(|o| o.pid != a.pid);
                    }
                    let gone = s.q().inflight.len() != before;
                    s.shed();
                    gone
                });
                if gone {
                    self.drain(now, idx);
                } else {
                    self.stats.unknown_acks += 1;
                }
            }
            Packet5::PubRec(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubRec),
            Packet5::PubComp(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubComp),
            Packet5::PubRel(a) => self.handle_pubrel(now, conn, idx, a.pid),
            Packet5::Subscribe(s) => self.handle_subscribe5(now, conn, idx, s),
            Packet5::Unsubscribe(u) => self.handle_unsubscribe5(conn, idx, u),
            Packet5::PingReq => self.outq.push_back((conn, Out::PingResp)),
            Packet5::Disconnect(d) => {
                if let Some(e) = d.props.session_expiry_interval {
                    let was_zero = self
                        .session(idx)
                        .and_then(|s| s.v5.as_ref())
                        .is_some_and(|v| v.expiry_interval == 0);
                    if was_zero && e != 0 {
                        // [MQTT-3.14.2-2]
                        self.violation5(
                            now,
                            conn,
                            ReasonCode::PROTOCOL_ERROR,
                            "DISCONNECT sets a Session Expiry Interval after CONNECT set 0".into(),
                        );
                        return;
                    }
                    let max = self.config.v5.max_session_expiry.unwrap_or(u32::MAX);
                    if let Some(s) = self.session_mut(idx) {
                        s.clean = e == 0;
                        if let Some(v) = s.v5.as_mut() {
                            v.expiry_interval = e.min(max);
                        }
                    }
                }
                if d.reason == ReasonCode::DISCONNECT_WITH_WILL {
                    self.close_conn(now, conn, DisconnectReason::DisconnectWithWill);
                } else {
                    // [MQTT-3.14.4-3]: the will is discarded
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.will = None;
                    }
                    self.close_conn(now, conn, DisconnectReason::Disconnect);
                }
            }
            Packet5::Auth(_) => self.violation5(
                now,
                conn,
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-1]".into(),
            ),
            p @ (Packet5::ConnAck(_)
            | Packet5::SubAck(_)
            | Packet5::UnsubAck(_)
            | Packet5::PingResp) => self.violation5(
                now,
                conn,
                ReasonCode::PROTOCOL_ERROR,
                format!("{} is never sent by a client", p.name()),
            ),
        }
    }

    fn handle_connect5(&mut self, now: SimTime, conn: ConnId, c: Connect5) {
        let (will, will_delay, will_props, will_expiry) = match c.will {
            Some(w) => (
                Some(LastWill {
                    topic: w.topic,
                    message: w.message,
                    qos: w.qos,
                    retain: w.retain,
                }),
                w.props.will_delay_interval.unwrap_or(0),
                msg_props(
                    &Properties {
                        message_expiry_interval: None,
                        ..w.props.clone()
                    },
                    now,
                ),
                w.props.message_expiry_interval,
            ),
            None => (None, 0, None, None),
        };
        let v5 = V5Connect {
            session_expiry: c.props.session_expiry_interval.unwrap_or(0),
            receive_maximum: c.props.receive_maximum.unwrap_or(u16::MAX),
            max_packet_size: c.props.maximum_packet_size.unwrap_or(0),
            topic_alias_maximum: c.props.topic_alias_maximum.unwrap_or(0),
            will_delay,
            will_props,
            will_expiry,
            auth_method: c.props.authentication_method.is_some(),
        };
        let connect = Connect {
            protocol: ProtocolLevel::V311,
            clean_session: c.clean_start,
            keep_alive: c.keep_alive,
            client_id: c.client_id,
            will,
            username: c.username,
            password: c.password,
        };
        self.handle_connect(now, conn, connect, Some(v5));
    }

    fn handle_publish5(&mut self, now: SimTime, conn: ConnId, idx: SessionIdx, p: Publish5) {
        let alias_max = self.config.v5.topic_alias_maximum;
        if !p.props.subscription_identifiers.is_empty() {
            let what = "a client's PUBLISH carries a Subscription Identifier [MQTT-3.3.4-6]";
            self.violation5(now, conn, ReasonCode::PROTOCOL_ERROR, what.into());
            return;
        }
        if p.qos_pid.qos() > self.config.max_qos {
            let what = "PUBLISH above the Maximum QoS [MQTT-3.2.2-11]";
            self.violation5(now, conn, ReasonCode::QOS_NOT_SUPPORTED, what.into());
            return;
        }
        if p.retain && !self.config.v5.retain_available {
            let what = "retained PUBLISH while Retain Available is 0 [MQTT-3.2.2-14]";
            self.violation5(now, conn, ReasonCode::RETAIN_NOT_SUPPORTED, what.into());
            return;
        }
        // §3.3.2.3.4: topic aliases
        let topic: Option<TopicName> = match (p.topic, p.props.topic_alias) {
            (t, Some(a)) if a > alias_max => {
                let _ = t;
                let what = format!("Topic Alias {a} above our Topic Alias Maximum {alias_max}");
                self.violation5(now, conn, ReasonCode::TOPIC_ALIAS_INVALID, what);
                return;
            }
            (Some(t), Some(a)) => {
                if let Some(v) = self.conns.get_mut(&conn).and_then(|c| c.v5.as_mut()) {
                    let i = usize::from(a) - 1;
                    if v.aliases_in.len() <= i {
                        v.aliases_in.resize(i + 1, None);
                    }
                    if let Some(slot) = v.aliases_in.get_mut(i) {
                        *slot = Some(t.clone());
                    }
                }
                Some(t)
            }
            (Some(t), None) => Some(t),
            (None, Some(a)) => self
                .conns
                .get(&conn)
                .and_then(|c| c.v5.as_ref())
                .and_then(|v| v.aliases_in.get(usize::from(a) - 1).cloned().flatten()),
            (None, None) => None,
        };
        let Some(topic) = topic else {
            let what = "zero-length Topic Name with an unknown Topic Alias";
            self.violation5(now, conn, ReasonCode::PROTOCOL_ERROR, what.into());
            return;
        };
        let props = msg_props(&p.props, now);
        let publish = Publish {
            dup: p.dup,
            qos_pid: p.qos_pid,
            retain: p.retain,
            topic,
            payload: p.payload,
        };
        self.handle_publish(now, conn, idx, publish, props);
    }

    fn handle_subscribe5(&mut self, now: SimTime, conn: ConnId, idx: SessionIdx, sub: Subscribe5) {
        let cfg = self.config.v5.clone();
        let sub_id = sub
            .props
            .subscription_identifiers
            .first()
            .copied()
            .unwrap_or(0);
        if sub_id != 0 && !cfg.subscription_identifiers {
            let what = "Subscription Identifier while not available [MQTT-3.8.2-...]";
            self.violation5(
                now,
                conn,
                ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                what.into(),
            );
            return;
        }
        let mut reasons = Vec::with_capacity(sub.filters.len());
        // (filter, granted, send retained) for the retained pass below
        let mut retained_for: Vec<(TopicFilter, QoS)> = Vec::new();
        for (filter, opts) in &sub.filters {
            let shared = if is_shared(filter) {
                match parse_shared(filter) {
                    Some(g) => Some(g),
                    None => {
                        reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                        continue;
                    }
                }
            } else {
                None
            };
            let inner = shared.as_ref().map_or(filter, |(_, f)| f);
            if shared.is_some() && !cfg.shared_subscriptions {
                reasons.push(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
                continue;
            }
            if inner.has_wildcards() && !cfg.wildcard_subscriptions {
                reasons.push(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
                continue;
            }
            let inner_str = inner.as_str().to_string();
            if let Some(r) = self.subscribe_refusal(conn, idx, &inner_str, inner.level_count()) {
                reasons.push(r.reason_code(AclAction::Subscribe));
                continue;
            }
            let granted = opts.qos.min(self.config.max_qos);
            let existed = self
                .session(idx)
                .is_some_and(|s| s.q().subs.binary_search_by(|(f, _)| f.cmp(filter)).is_ok());
            match &shared {
                Some((group, inner)) => {
                    let g = self
                        .shared
                        .entry((inner.clone(), group.clone()))
                        .or_default();
                    match g.members.iter_mut().find(|(i, _)| *i == idx) {
                        Some(m) => m.1 = granted,
                        None => g.members.push((idx, granted)),
                    }
                }
                None => {
                    self.tree.insert(filter, idx, granted);
                }
            }
            if let Some(s) = self.session_mut(idx) {
                s.set_sub(filter, granted);
                let v = s.v5.get_or_insert_with(Default::default);
                let pos = v.opts.binary_search_by(|e| e.filter.cmp(filter));
                let wants = opts.no_local || opts.retain_as_published || sub_id != 0;
                match (pos, wants) {
                    (Ok(i), true) => {
                        if let Some(e) = v.opts.get_mut(i) {
                            e.no_local = opts.no_local;
                            e.retain_as_published = opts.retain_as_published;
                            e.id = sub_id;
                        }
                    }
                    (Err(i), true) => v.opts.insert(
                        i,
                        SubEntry {
                            filter: filter.clone(),
                            no_local: opts.no_local,
                            retain_as_published: opts.retain_as_published,
                            id: sub_id,
                        },
                    ),
                    (Ok(i), false) => {
                        v.opts.remove(i);
                    }
                    (Err(_), false) => {}
                }
            }
            reasons.push(ReasonCode::granted(granted));
            // §3.3.1.3: retained messages are not sent for a shared
            // subscription; Retain Handling decides for the others
            let send = shared.is_none()
                && match opts.retain_handling {
                    RetainHandling::SendOnSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send {
                retained_for.push((filter.clone(), granted));
            }
        }
        self.outq.push_back((
            conn,
            Out::SubAck5 {
                ack: Box::new(SubAck5 {
                    pid: sub.pid,
                    props: Properties::default(),
                    reasons,
                }),
                unsub: false,
            },
        ));
        let ids: SubIds = (sub_id != 0).then(|| Arc::from([sub_id]));
        for (filter, granted) in retained_for {
            for msg in self.retained_matching(&filter) {
                let qos = msg.qos.min(granted);
                self.deliver(now, idx, &msg, qos, true, ids.clone());
            }
        }
    }

    fn handle_unsubscribe5(&mut self, conn: ConnId, idx: SessionIdx, u: Unsubscribe5) {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            let existed = self.session_mut(idx).is_some_and(|s| {
                if let Some(v) = s.v5.as_mut() {
                    if let Ok(i) = v.opts.binary_search_by(|e| e.filter.cmp(f)) {
                        v.opts.remove(i);
                    }
                }
                s.remove_sub(f)
            });
            if !self.remove_shared(f, idx) {
                self.tree.remove(f, idx);
            }
            reasons.push(if existed {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
        }
        self.outq.push_back((
            conn,
            Out::SubAck5 {
                ack: Box::new(SubAck5 {
                    pid: u.pid,
                    props: Properties::default(),
                    reasons,
                }),
                unsub: true,
            },
        ));
    }

    /// Remove session `idx` from the shared group of `f` if `f` is a
    /// shared filter (true), else do nothing (false).
    pub(super) fn remove_shared(&mut self, f: &TopicFilter, idx: SessionIdx) -> bool {
        let Some((group, inner)) = parse_shared(f) else {
            return false;
        };
        let key = (inner, group);
        if let Some(g) = self.shared.get_mut(&key) {
            g.members.retain(|(i, _)| *i != idx);
            if g.members.is_empty() {
                self.shared.remove(&key);
            }
        }
        true
    }

    /// The `$share/{group}/{filter}` filters and their member counts, in
    /// filter order (for tests and `SessionInfo`-like inspection).
    pub fn shared_groups(&self) -> Vec<(String, usize)> {
        self.shared
            .iter()
            .map(|((f, g), m)| (share_filter(g, f).as_str().to_string(), m.members.len()))
            .collect()
    }
}
