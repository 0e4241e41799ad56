//! The broker's reaction to each decoded packet (§3).

use std::sync::Arc;

use crate::sim::SimTime;

use super::super::acl::{AclAction, DenyPublish, Refusal};
use super::super::codec::DecodeError;
use super::super::config::Qos2Forward;
use super::super::events::{BrokerEvent, ConnId, DisconnectReason, ProtocolViolation};
use super::super::packet::QoS;
use super::super::packet::{
    ConnAck, Connect, ConnectReturnCode, Packet, PacketId, PacketType, Publish, QosPid, SubAck,
    SubAckReturn, Subscribe, Unsubscribe,
};
use super::super::session::MsgProps;
use super::super::session::{ConnState, Incoming, Msg, OutState, Session};
use super::super::subtree::SessionIdx;
use super::super::topic::TopicError;
use super::super::v5::ReasonCode;
use super::v5::{no_match, V5Connect};
use super::{keep_alive_limit, Broker, Out};

impl Broker {
    /// Whether the ACL allows `action` on `topic` to this client; a
    /// refusal is counted and reported (`BrokerEvent::Denied`).
    pub(super) fn acl_allows(
        &mut self,
        conn: ConnId,
        client_id: &Arc<str>,
        username: Option<&str>,
        action: AclAction,
        topic: &str,
    ) -> bool {
        if self.config.acl.allows(action, client_id, username, topic) {
            return true;
        }
        match action {
            AclAction::Subscribe => self.stats.denied_subscriptions += 1,
            AclAction::Publish | AclAction::Will => self.stats.denied_publishes += 1,
        }
        self.events.push_back(BrokerEvent::Denied {
            conn,
            client_id: client_id.clone(),
            action,
            topic: Arc::from(topic),
        });
        false
    }

    /// Why a SUBSCRIBE filter from session `idx` on `conn` is refused
    /// (`None`: granted). A refusal by the ACL is counted and reported;
    /// each version's edge turns the answer into its code (3.1.1: Failure
    /// 0x80; 5.0: `Refusal::reason_code`).
    pub(crate) fn subscribe_refusal(
        &mut self,
        conn: ConnId,
        idx: SessionIdx,
        filter: &str,
        levels: usize,
    ) -> Option<Refusal> {
        if levels > self.config.max_topic_levels {
            return Some(Refusal::TooManyLevels);
        }
        self.acl_refusal(conn, idx, AclAction::Subscribe, filter)
    }

    /// The ACL's verdict on `action` (a PUBLISH or SUBSCRIBE) for session
    /// `idx` on `conn`: `Some(NotAuthorized)` (counted and reported) or
    /// `None`.
    pub(crate) fn acl_refusal(
        &mut self,
        conn: ConnId,
        idx: SessionIdx,
        action: AclAction,
        topic: &str,
    ) -> Option<Refusal> {
        if self.config.acl.is_empty() {
            return None;
        }
        let client_id = self.session(idx)?.client_id.clone();
        let username = self.conns.get(&conn).and_then(|c| c.username.clone());
        (!self.acl_allows(conn, &client_id, username.as_deref(), action, topic))
            .then_some(Refusal::NotAuthorized)
    }

    pub(super) fn handle_packet(&mut self, now: SimTime, conn: ConnId, packet: Packet) {
        let Some(state) = self.conns.get(&conn).map(|c| c.state) else {
            return;
        };
        let idx = match state {
            ConnState::AwaitConnect => {
                match packet {
                    Packet::Connect(c) => self.handle_connect(now, conn, c, None),
                    // [MQTT-3.1.0-1]
                    p => self.protocol_error(
                        now,
                        conn,
                        ProtocolViolation::FirstNotConnect(p.packet_type()),
                    ),
                }
                return;
            }
            ConnState::Connected(idx) => idx,
        };
        match packet {
            Packet::Connect(_) => {
                self.protocol_error(now, conn, ProtocolViolation::SecondConnect)
                // [MQTT-3.1.0-2]
            }
            Packet::Publish(p) => self.handle_publish(now, conn, idx, p, None),
            Packet::PubAck(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubAck),
            Packet::PubRec(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubRec),
            Packet::PubComp(a) => self.handle_outbound_ack(now, idx, a.pid, PacketType::PubComp),
            Packet::PubRel(a) => self.handle_pubrel(now, conn, idx, a.pid),
            Packet::Subscribe(s) => self.handle_subscribe(now, conn, idx, s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(conn, idx, u),
            Packet::PingReq => self.outq.push_back((conn, Out::PingResp)), // [MQTT-3.12.4-1]
            Packet::Disconnect => {
                // [MQTT-3.14.4-3]: discard the will; then close.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.will = None;
                }
                self.close_conn(now, conn, DisconnectReason::Disconnect);
            }
            p @ (Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp) => self.protocol_error(
                now,
                conn,
                ProtocolViolation::ServerOnlyPacket(p.packet_type()),
            ),
        }
    }

    /// CONNECT of either version: `v5` carries what a 5.0 CONNECT adds
    /// (`c.clean_session` is then its Clean Start).
    pub(super) fn handle_connect(
        &mut self,
        now: SimTime,
        conn: ConnId,
        c: Connect,
        v5: Option<V5Connect>,
    ) {
        // [MQTT-3.1.3-8]: a zero-length client id needs CleanSession = 1
        // (5.0 assigns one whatever Clean Start says, §3.1.3.1).
        if c.client_id.is_empty() && !c.clean_session && v5.is_none() {
            self.refuse(now, conn, ConnectReturnCode::IdentifierRejected);
            return;
        }
        if v5.as_ref().is_some_and(|v| v.auth_method) {
            // enhanced authentication (§4.12) is not offered
            self.refuse5(now, conn, ReasonCode::BAD_AUTHENTICATION_METHOD);
            return;
        }
        // §3.1.3.4, §3.1.3.5, §5.4.1: authentication.
        match &c.username {
            None if !self.config.allow_anonymous => {
                self.refuse_either(now, conn, ConnectReturnCode::NotAuthorized);
                return;
            }
            Some(u) if !self.config.users.is_empty() => {
                let ok = self
                    .config
                    .users
                    .get(u)
                    .is_some_and(|pw| c.password.as_deref() == Some(pw.as_slice()));
                if !ok {
                    self.refuse_either(now, conn, ConnectReturnCode::BadUserNameOrPassword);
                    return;
                }
            }
            _ => {}
        }
        let assigned = c.client_id.is_empty();
        let client_id: Arc<str> = if assigned {
            // [MQTT-3.1.3-6]: the server assigns a unique id.
            self.next_auto_id += 1;
            Arc::from(format!("auto-{}", self.next_auto_id))
        } else {
            Arc::from(c.client_id.as_str())
        };
        self.cancel_will(&client_id);
        // [MQTT-3.1.4-2]: a second connection with this id takes over; the
        // first is closed (its will published: it did not DISCONNECT).
        if let Some(old) = self
            .by_client
            .get(&client_id)
            .and_then(|&i| self.session(i))
            .and_then(|s| s.conn)
        {
            self.stats.takeovers += 1;
            self.send_disconnect5(old, ReasonCode::SESSION_TAKEN_OVER);
            self.close_conn(now, old, DisconnectReason::TakenOver);
        }
        let existing = self.by_client.get(&client_id).copied();
        let (idx, session_present) = match existing {
            // [MQTT-3.1.2-4], [MQTT-3.2.2-2]: resume.
            Some(idx) if !c.clean_session => (idx, true),
            other => {
                // [MQTT-3.1.2-6]: discard any previous session.
                if let Some(idx) = other {
                    self.remove_session(idx);
                }
                let s = Session::new(client_id.clone(), c.clean_session);
                let idx = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.sessions.get_mut(i as usize) {
                            *slot = Some(s);
                        }
                        i
                    }
                    None => {
                        crate::sim::shed::push_frugal(&mut self.sessions, Some(s));
                        (self.sessions.len() - 1) as SessionIdx
                    }
                };
                self.by_client.insert(client_id.clone(), idx);
                (idx, false)
            }
        };
        if session_present {
            self.stats.clients_disconnected = self.stats.clients_disconnected.saturating_sub(1);
        }
        let max_expiry = self.config.v5.max_session_expiry.unwrap_or(u32::MAX);
        let expiry = v5.as_ref().map(|v| v.session_expiry.min(max_expiry));
        if let Some(s) = self.session_mut(idx) {
            s.conn = Some(conn);
            match (&v5, expiry) {
                (Some(v), Some(expiry)) => {
                    // 5.0: the session ends with the connection when its
                    // expiry interval is 0 [MQTT-3.1.2-23]
                    s.clean = expiry == 0;
                    let sv = s.v5.get_or_insert_with(Default::default);
                    sv.expiry_interval = expiry;
                    sv.expires_at = None;
                    sv.receive_maximum = v.receive_maximum;
                }
                _ => {
                    s.clean = c.clean_session;
                    s.v5 = None;
                }
            }
        }
        self.stats.clients_connected += 1;
        self.stats.connects_accepted += 1;
        let keep_alive = match (&v5, self.config.v5.server_keep_alive) {
            (Some(_), Some(k)) => k,
            _ => c.keep_alive,
        };
        if let Some(cn) = self.conns.get_mut(&conn) {
            cn.state = ConnState::Connected(idx);
            cn.keep_alive = keep_alive;
            cn.will = c.will.map(Box::new);
            if !self.config.acl.is_empty() {
                cn.username = c.username.as_deref().map(Arc::from);
            }
            if let (Some(v), Some(cv)) = (v5.as_ref(), cn.v5.as_mut()) {
                cv.max_packet_size = v.max_packet_size;
                cv.alias_max_out = v.topic_alias_maximum;
                cv.will_delay = v.will_delay;
                cv.will_props = v.will_props.clone();
                cv.will_expiry = v.will_expiry;
            }
            if keep_alive > 0 {
                self.conn_timers
                    .insert((now + keep_alive_limit(keep_alive), conn));
            }
        }
        match &v5 {
            None => self.outq.push_back((
                conn,
                Out::ConnAck(ConnAck {
                    session_present,
                    code: ConnectReturnCode::Accepted,
                }),
            )),
            Some(v) => {
                let ack = self.connack5(
                    session_present,
                    assigned.then(|| client_id.to_string()),
                    (expiry != Some(v.session_expiry))
                        .then_some(expiry)
                        .flatten(),
                    (keep_alive != c.keep_alive).then_some(keep_alive),
                );
                self.outq.push_back((conn, Out::ConnAck5(Box::new(ack))));
            }
        }
        self.events.push_back(BrokerEvent::ClientConnected {
            conn,
            client_id,
            clean_session: c.clean_session,
            session_present,
        });
        if session_present {
            // §4.4: resend unacknowledged PUBLISH (DUP) and PUBREL
            // [MQTT-4.4.0-1], then what queued up while offline.
            self.resume(now, idx, conn);
        }
    }

    /// PUBLISH of either version (`props`: what a 5.0 publisher attached).
    pub(super) fn handle_publish(
        &mut self,
        now: SimTime,
        conn: ConnId,
        idx: SessionIdx,
        p: Publish,
        props: Option<Box<MsgProps>>,
    ) {
        let is_v5 = self.conns.get(&conn).is_some_and(|c| c.v5.is_some());
        let (levels, max) = (p.topic.level_count(), self.config.max_topic_levels);
        if levels > max {
            // Deeper than this broker accepts: a protocol error, the
            // connection is closed (§4.8); nothing is acknowledged or routed.
            let source = TopicError::TooManyLevels { levels, max };
            let error = DecodeError::Topic {
                packet: "PUBLISH",
                source,
            };
            self.send_disconnect5(conn, ReasonCode::TOPIC_NAME_INVALID);
            self.protocol_error(now, conn, ProtocolViolation::Decode(error));
            return;
        }
        // Access control: a refused PUBLISH closes the connection
        // unacknowledged, or is acknowledged as usual and forwarded to
        // nobody ([MQTT-3.3.5-2]); a DUP of a refused QoS 2 message still
        // held is not counted again.
        let dup_held = matches!(p.qos_pid, QosPid::ExactlyOnce(pid)
            if self.session(idx).is_some_and(|s| s.q().incoming.binary_search_by_key(&pid, |i| i.pid).is_ok()));
        let allowed = dup_held
            || self
                .acl_refusal(conn, idx, AclAction::Publish, p.topic.as_str())
                .is_none();
        // 5.0 answers a refused QoS 1/2 PUBLISH with reason 0x87 in its
        // PUBACK/PUBREC, whatever the deny mode (§3.4.2.1)
        let answered5 = is_v5 && p.qos_pid.qos() > QoS::AtMostOnce;
        if !allowed && self.config.acl_deny_publish == DenyPublish::Disconnect && !answered5 {
            self.send_disconnect5(conn, ReasonCode::NOT_AUTHORIZED);
            self.close_conn(now, conn, DisconnectReason::NotAuthorized);
            return;
        }
        if !allowed && answered5 {
            let ty = if p.qos_pid.qos() == QoS::AtLeastOnce {
                PacketType::PubAck
            } else {
                PacketType::PubRec
            };
            if let Some(pid) = p.qos_pid.pid() {
                self.push_ack5(conn, ty, pid, ReasonCode::NOT_AUTHORIZED);
            }
            return;
        }
        let msg = Arc::new(Msg {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos_pid.qos(),
            props,
        });
        let received = BrokerEvent::Received {
            conn,
            topic: msg.topic.clone(),
            qos: msg.qos,
            retain: p.retain,
        };
        match p.qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) if is_v5 => {
                // 5.0: PUBACK after routing, 0x10 when nobody subscribed
                // (as mosquitto answers)
                self.stats.publishes_received += 1;
                self.events.push_back(received);
                let copies = self.route(now, msg, p.retain, Some(idx));
                self.push_ack5(conn, PacketType::PubAck, pid, no_match(copies > 0));
                return;
            }
            QosPid::AtLeastOnce(pid) => {
                // [MQTT-4.3.2-2]
                self.outq.push_back((
                    conn,
                    Out::Ack {
                        ty: PacketType::PubAck,
                        pid,
                        retransmission: false,
                    },
                ));
            }
            QosPid::ExactlyOnce(pid) if self.config.mutant_forget_qos2 => {
                // the test-only broken broker: PUBREC, forward, hold nothing
                self.outq.push_back((
                    conn,
                    Out::Ack {
                        ty: PacketType::PubRec,
                        pid,
                        retransmission: false,
                    },
                ));
            }
            QosPid::ExactlyOnce(pid) => {
                let on_publish = self.config.qos2_forward == Qos2Forward::OnPublish;
                let cap = self.config.max_incoming_qos2.max(1);
                let receive_max = usize::from(self.config.v5.receive_maximum);
                let reason = if is_v5 {
                    no_match(self.has_subscribers(&msg.topic))
                } else {
                    ReasonCode::SUCCESS
                };
                // held ids sorted: a binary search per PUBLISH and PUBREL
                let Some(s) = self.session_mut(idx) else {
                    return;
                };
                let slot = match s.q().incoming.binary_search_by_key(&pid, |i| i.pid) {
                    Ok(_) => None,
                    Err(_) if is_v5 && s.q().incoming.len() >= receive_max => {
                        // [MQTT-3.3.4-8]: more than our Receive Maximum
                        self.send_disconnect5(conn, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
                        self.protocol_error(now, conn, ProtocolViolation::ReceiveMaximum);
                        return;
                    }
                    Err(_) if s.q().incoming.len() >= cap => {
                        self.send_disconnect5(conn, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
                        self.protocol_error(now, conn, ProtocolViolation::TooManyUnreleased(cap));
                        return;
                    }
                    Err(at) => Some(at),
                };
                // [MQTT-4.3.3-2]: PUBREC; a PUBLISH whose id is still held
                // is a resend and is not forwarded again.
                self.push_ack5(conn, PacketType::PubRec, pid, reason);
                let (Some(at), Some(s)) = (slot, self.session_mut(idx)) else {
                    return;
                };
                s.qm().incoming.insert(
                    at,
                    Incoming {
                        pid,
                        msg: (allowed && !on_publish).then(|| (msg.clone(), p.retain)),
                    },
                );
                if !allowed {
                    return; // held (so PUBREL gets its PUBCOMP), never routed
                }
                self.stats.publishes_received += 1;
                self.events.push_back(received);
                if on_publish {
                    self.route(now, msg, p.retain, Some(idx));
                }
                return;
            }
        }
        if !allowed {
            return; // acknowledged above, forwarded to nobody
        }
        self.stats.publishes_received += 1;
        self.events.push_back(received);
        self.route(now, msg, p.retain, Some(idx));
    }

    pub(super) fn handle_pubrel(
        &mut self,
        now: SimTime,
        conn: ConnId,
        idx: SessionIdx,
        pid: PacketId,
    ) {
        let held = self.session_mut(idx).and_then(|s| {
            let q = s.held()?;
            let i = q.incoming.binary_search_by_key(&pid, |x| x.pid).ok()?;
            let held = q.incoming.remove(i);
            s.shed();
            Some(held)
        });
        // [MQTT-4.3.3-2]: PUBCOMP, also for an id no longer held (5.0
        // says so with reason 0x92 Packet Identifier not found).
        let reason = if held.is_some() {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.push_ack5(conn, PacketType::PubComp, pid, reason);
        if let Some((msg, retain)) = held.and_then(|h| h.msg) {
            self.route(now, msg, retain, Some(idx));
        }
    }

    /// PUBACK, PUBREC or PUBCOMP from a subscriber for one of our sends.
    pub(super) fn handle_outbound_ack(
        &mut self,
        now: SimTime,
        idx: SessionIdx,
        pid: PacketId,
        ty: PacketType,
    ) {
        let Some(s) = self.sessions.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        let Some(pos) = s.q().inflight.iter().position(|o| o.pid == pid) else {
            self.stats.unknown_acks += 1;
            return;
        };
        let Some(o) = s.held().and_then(|q| q.inflight.get_mut(pos)) else {
            return;
        };
        match (ty, o.state) {
            (PacketType::PubAck, OutState::AwaitAck)
            | (PacketType::PubComp, OutState::AwaitComp) => {
                if let Some(q) = s.held() {
                    q.inflight.remove(pos);
                }
                s.shed();
                self.drain(now, idx);
            }
            (PacketType::PubRec, OutState::AwaitRec | OutState::AwaitComp) => {
                // [MQTT-4.3.3-1]: answer PUBREC with PUBREL (again for a
                // repeated PUBREC).
                o.state = OutState::AwaitComp;
                o.sent_at = now;
                if let Some(conn) = s.conn {
                    self.outq.push_back((
                        conn,
                        Out::Ack {
                            ty: PacketType::PubRel,
                            pid,
                            retransmission: false,
                        },
                    ));
                }
            }
            _ => self.stats.unknown_acks += 1,
        }
    }

    fn handle_subscribe(&mut self, now: SimTime, conn: ConnId, idx: SessionIdx, sub: Subscribe) {
        let mut codes = Vec::with_capacity(sub.filters.len());
        for (filter, requested) in &sub.filters {
            let refusal = self.subscribe_refusal(conn, idx, filter.as_str(), filter.level_count());
            if refusal.is_some() {
                // Refused (too deep, or by the ACL): Failure 0x80 (§3.9.3,
                // [MQTT-3.8.4-5]); the other filters of the packet stand.
                codes.push(SubAckReturn::Failure);
                continue;
            }
            let granted = (*requested).min(self.config.max_qos);
            self.tree.insert(filter, idx, granted);
            if let Some(s) = self.session_mut(idx) {
                s.set_sub(filter, granted);
            }
            codes.push(SubAckReturn::Success(granted));
        }
        let refused: Vec<bool> = codes.iter().map(|c| *c == SubAckReturn::Failure).collect();
        // [MQTT-3.8.4-1], [MQTT-3.8.4-5]: one SUBACK, a code per filter.
        self.outq.push_back((
            conn,
            Out::SubAck(SubAck {
                pid: sub.pid,
                codes,
            }),
        ));
        // [MQTT-3.3.1-6], [MQTT-3.8.4-3]: retained messages matching each
        // (new or replaced) subscription, with RETAIN set [MQTT-3.3.1-8].
        for ((filter, requested), refused) in sub.filters.iter().zip(refused) {
            if refused {
                continue; // refused above
            }
            let granted = (*requested).min(self.config.max_qos);
            for msg in self.retained_matching(filter) {
                let qos = msg.qos.min(granted);
                self.deliver(now, idx, &msg, qos, true, None);
            }
        }
    }

    fn handle_unsubscribe(&mut self, conn: ConnId, idx: SessionIdx, u: Unsubscribe) {
        for f in &u.filters {
            self.tree.remove(f, idx);
            if let Some(s) = self.session_mut(idx) {
                s.remove_sub(f);
            }
        }
        // [MQTT-3.10.4-4], [MQTT-3.10.4-5]: UNSUBACK even if nothing matched.
        self.outq.push_back((
            conn,
            Out::Ack {
                ty: PacketType::UnsubAck,
                pid: u.pid,
                retransmission: false,
            },
        ));
    }
}
