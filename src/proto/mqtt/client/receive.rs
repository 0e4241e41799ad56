//! The client's receive path: decoding the broker's bytes and reacting to
//! each packet (§3, §4.3, §4.4; on 5.0 connections the 5.0 packets, with
//! their reason codes and properties).

use crate::sim::{SimDuration, SimTime};

use super::super::codec;
use super::super::events::{ClientEvent, LostReason, ProtocolViolation};
use super::super::packet::{Ack, ConnectReturnCode, Packet, PacketType, Publish, QosPid};
use super::super::session::OutState;
use super::super::v5::{self, Ack5, ConnAck5, Packet5, Publish5, ReasonCode, ReasonOnly};
use super::{qm, qr, Client, ClientState, ServerLimits, Timer, Wire};

impl Client {
    /// Bytes from the broker.
    pub(super) fn receive(&mut self, now: SimTime, data: &[u8]) {
        if !matches!(
            self.state,
            ClientState::AwaitConnAck | ClientState::Connected
        ) {
            return;
        }
        self.stats.bytes_received += data.len() as u64;
        let mut buf = self
            .q
            .as_mut()
            .map(|q| std::mem::take(&mut q.inbuf))
            .unwrap_or_default();
        buf.extend_from_slice(data);
        let mut off = 0;
        if self.is_v5() {
            while let Some(rest) = buf.get(off..) {
                match v5::decode(rest, self.config.max_packet_size) {
                    Ok(Some((p, n))) => {
                        off += n;
                        self.stats.packets_received += 1;
                        self.handle_packet5(now, p);
                        if !matches!(
                            self.state,
                            ClientState::AwaitConnAck | ClientState::Connected
                        ) {
                            return; // connection ended by that packet
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return self.violation5(now, e.reason(), e.to_string()),
                }
            }
            buf.drain(..off.min(buf.len()));
            self.keep_inbuf(buf);
            return;
        }
        while let Some(rest) = buf.get(off..) {
            match codec::decode(rest, self.config.max_packet_size) {
                Ok(Some((p, n))) => {
                    off += n;
                    self.stats.packets_received += 1;
                    self.handle_packet(now, p);
                    if !matches!(
                        self.state,
                        ClientState::AwaitConnAck | ClientState::Connected
                    ) {
                        return; // connection ended by that packet
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.protocol_error(now, ProtocolViolation::Decode(e));
                    return;
                }
            }
        }
        buf.drain(..off.min(buf.len()));
        self.keep_inbuf(buf);
    }

    fn protocol_error(&mut self, now: SimTime, v: ProtocolViolation) {
        self.stats.protocol_errors += 1;
        self.lose(now, LostReason::ProtocolError(v), true);
    }

    fn handle_packet(&mut self, now: SimTime, p: Packet) {
        if self.state == ClientState::AwaitConnAck {
            match p {
                Packet::ConnAck(ca) => self.handle_connack(now, ca.session_present, ca.code),
                // [MQTT-3.2.0-1]: the first packet from the server is CONNACK.
                other => self
                    .protocol_error(now, ProtocolViolation::FirstNotConnect(other.packet_type())),
            }
            return;
        }
        match p {
            Packet::Publish(p) => self.handle_publish(p),
            Packet::PubAck(a) => self.handle_ack(now, a, PacketType::PubAck),
            Packet::PubRec(a) => self.handle_ack(now, a, PacketType::PubRec),
            Packet::PubComp(a) => self.handle_ack(now, a, PacketType::PubComp),
            Packet::PubRel(a) => {
                // [MQTT-4.3.3-2]: release the id, answer PUBCOMP.
                qm(&mut self.q).incoming_qos2.retain(|&x| x != a.pid);
                self.push(Packet::PubComp(a), None, false);
            }
            Packet::SubAck(s) => match qr(&self.q).requests.iter().position(|r| r.0 == s.pid) {
                Some(i) => {
                    let (_, handle, _) = qm(&mut self.q).requests.remove(i);
                    qm(&mut self.q).events.push_back(ClientEvent::Subscribed {
                        handle,
                        codes: s.codes,
                    });
                }
                None => self.stats.unknown_acks += 1,
            },
            Packet::UnsubAck(a) => match qr(&self.q).requests.iter().position(|r| r.0 == a.pid) {
                Some(i) => {
                    let (_, handle, _) = qm(&mut self.q).requests.remove(i);
                    qm(&mut self.q)
                        .events
                        .push_back(ClientEvent::Unsubscribed { handle });
                }
                None => self.stats.unknown_acks += 1,
            },
            Packet::PingResp => {
                self.ping_outstanding = false;
                self.set(Timer::PingResp, None);
            }
            Packet::ConnAck(_) => self.protocol_error(now, ProtocolViolation::UnexpectedConnAck),
            p @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect) => {
                self.protocol_error(now, ProtocolViolation::ClientOnlyPacket(p.packet_type()))
            }
        }
    }

    fn handle_connack(&mut self, now: SimTime, session_present: bool, code: ConnectReturnCode) {
        self.set(Timer::ConnAck, None);
        if code != ConnectReturnCode::Accepted {
            // [MQTT-3.2.2-5]: the server closes; we do too. Only "server
            // unavailable" is worth retrying.
            qm(&mut self.q).outq.clear();
            self.reset_connection();
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::ConnectRefused(code));
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::CloseTransport);
            if code == ConnectReturnCode::ServerUnavailable {
                self.schedule_reconnect(now);
            } else {
                self.state = ClientState::Idle;
            }
            return;
        }
        self.connected(now, session_present);
    }

    /// CONNACK accepted (either version).
    fn connected(&mut self, now: SimTime, session_present: bool) {
        self.state = ClientState::Connected;
        self.attempt = 0;
        self.stats.connects += 1;
        if !session_present {
            // The broker has no session: ids it held are forgotten.
            qm(&mut self.q).incoming_qos2.clear();
        }
        qm(&mut self.q)
            .events
            .push_back(ClientEvent::Connected { session_present });
        // §4.4 [MQTT-4.4.0-1]: resend in order with original ids.
        let mut resend = Vec::with_capacity(qr(&self.q).inflight.len());
        for o in qm(&mut self.q).inflight.iter_mut() {
            o.sent_at = now;
            resend.push(o.resend());
        }
        self.push_resends(resend);
        if !qr(&self.q).inflight.is_empty() {
            self.arm_retry(now);
        }
        let reqs: Vec<Wire> = qr(&self.q).requests.iter().map(|r| r.2.clone()).collect();
        for p in reqs {
            self.push_wire(p, None, false);
        }
        self.drain(now);
    }

    fn handle_publish(&mut self, p: Publish) {
        let qos = p.qos_pid.qos();
        if !self.acknowledge(p.qos_pid) {
            return;
        }
        self.stats.messages_received += 1;
        qm(&mut self.q).events.push_back(ClientEvent::Message {
            topic: p.topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            dup: p.dup,
        });
    }

    fn handle_ack(&mut self, now: SimTime, a: Ack, ty: PacketType) {
        let Some(i) = qr(&self.q).inflight.iter().position(|o| o.pid == a.pid) else {
            self.stats.unknown_acks += 1;
            return;
        };
        let Some(o) = qm(&mut self.q).inflight.get_mut(i) else {
            return;
        };
        match (ty, o.state) {
            (PacketType::PubAck, OutState::AwaitAck)
            | (PacketType::PubComp, OutState::AwaitComp) => {
                let o = qm(&mut self.q).inflight.remove(i);
                qm(&mut self.q)
                    .events
                    .push_back(ClientEvent::PublishAcked { handle: o.handle });
                self.drain(now);
            }
            (PacketType::PubRec, OutState::AwaitRec | OutState::AwaitComp) => {
                o.state = OutState::AwaitComp;
                o.sent_at = now;
                let h = o.handle;
                self.push(Packet::PubRel(a), Some(h), false);
            }
            _ => self.stats.unknown_acks += 1,
        }
    }
}

impl Client {
    /// 5.0: the server broke a rule: send DISCONNECT with `reason`, close,
    /// and reconnect as after any loss (§4.13).
    fn violation5(&mut self, now: SimTime, reason: ReasonCode, detail: String) {
        self.stats.protocol_errors += 1;
        let d = Wire::v5(Packet5::Disconnect(ReasonOnly {
            reason,
            props: Default::default(),
        }));
        self.lose_sending(
            now,
            LostReason::ClientDisconnect { reason, detail },
            true,
            Some(d),
        );
    }

    fn handle_packet5(&mut self, now: SimTime, p: Packet5) {
        if self.state == ClientState::AwaitConnAck {
            match p {
                Packet5::ConnAck(ca) => self.handle_connack5(now, ca),
                other => self.violation5(
                    now,
                    ReasonCode::PROTOCOL_ERROR,
                    format!(
                        "first packet from the server is {}, not CONNACK [MQTT-3.2.0-1]",
                        other.name()
                    ),
                ),
            }
            return;
        }
        match p {
            Packet5::Publish(p) => self.handle_publish5(now, p),
            Packet5::PubAck(a) => self.handle_ack5(now, a, PacketType::PubAck),
            Packet5::PubRec(a) => self.handle_ack5(now, a, PacketType::PubRec),
            Packet5::PubComp(a) => self.handle_ack5(now, a, PacketType::PubComp),
            Packet5::PubRel(a) => {
                // [MQTT-4.3.3-11]: answer PUBCOMP; 0x92 when the id is not
                // held (whatever reason the PUBREL carries).
                let held = qr(&self.q).incoming_qos2.contains(&a.pid);
                qm(&mut self.q).incoming_qos2.retain(|&x| x != a.pid);
                let mut comp = Ack5::ok(a.pid);
                if !held {
                    comp.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.push_wire(Wire::v5(Packet5::PubComp(comp)), None, false);
            }
            Packet5::SubAck(s) => match qr(&self.q).requests.iter().position(|r| r.0 == s.pid) {
                Some(i) => {
                    let (_, handle, _) = qm(&mut self.q).requests.remove(i);
                    qm(&mut self.q).events.push_back(ClientEvent::Subscribed5 {
                        handle,
                        reasons: s.reasons,
                    });
                }
                None => self.stats.unknown_acks += 1,
            },
            Packet5::UnsubAck(s) => match qr(&self.q).requests.iter().position(|r| r.0 == s.pid) {
                Some(i) => {
                    let (_, handle, _) = qm(&mut self.q).requests.remove(i);
                    qm(&mut self.q)
                        .events
                        .push_back(ClientEvent::Unsubscribed5 {
                            handle,
                            reasons: s.reasons,
                        });
                }
                None => self.stats.unknown_acks += 1,
            },
            Packet5::PingResp => {
                self.ping_outstanding = false;
                self.set(Timer::PingResp, None);
            }
            Packet5::Disconnect(d) => {
                // §3.14: the server closes after it; so do we, then
                // reconnect as after any loss.
                self.lose(
                    now,
                    LostReason::ServerDisconnect {
                        reason: d.reason,
                        props: Box::new(d.props),
                    },
                    true,
                );
            }
            Packet5::ConnAck(_) => self.violation5(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "second CONNACK on one connection [MQTT-3.2.0-2]".into(),
            ),
            Packet5::Auth(_) => self.violation5(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-6]".into(),
            ),
            p @ (Packet5::Connect(_)
            | Packet5::Subscribe(_)
            | Packet5::Unsubscribe(_)
            | Packet5::PingReq) => self.violation5(
                now,
                ReasonCode::PROTOCOL_ERROR,
                format!("{} is never sent by a server", p.name()),
            ),
        }
    }

    fn handle_connack5(&mut self, now: SimTime, ca: ConnAck5) {
        self.set(Timer::ConnAck, None);
        if ca.reason.is_failure() {
            // [MQTT-3.2.2-7]: the server closes; we do too. Only reasons
            // that may pass are worth retrying.
            qm(&mut self.q).outq.clear();
            self.reset_connection();
            let retry = matches!(
                ca.reason,
                ReasonCode::SERVER_UNAVAILABLE
                    | ReasonCode::SERVER_BUSY
                    | ReasonCode::CONNECTION_RATE_EXCEEDED
            );
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::ConnectRefused5 {
                    reason: ca.reason,
                    props: ca.props,
                });
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::CloseTransport);
            if retry {
                self.schedule_reconnect(now);
            } else {
                self.state = ClientState::Idle;
            }
            return;
        }
        let aliases_in = usize::from(self.config.topic_alias_maximum);
        let v5 = self.v5_state();
        v5.server = ServerLimits::from_connack(&ca.props);
        if let Some(id) = &v5.server.assigned_client_identifier {
            v5.assigned_id = Some(id.clone());
        }
        // [MQTT-3.3.2-7]: aliases do not outlive a connection.
        v5.alias_out.clear();
        v5.alias_in = vec![None; aliases_in];
        if let Some(ka) = v5.server.server_keep_alive {
            // §3.2.2.3.14: the server's value replaces ours, from now on.
            self.keep_alive = ka;
            let at = (ka > 0).then(|| now + SimDuration::from_secs(u64::from(ka)));
            self.set(Timer::KeepAlive, at);
        }
        self.connected(now, ca.session_present);
    }

    fn handle_publish5(&mut self, now: SimTime, p: Publish5) {
        let max = self.config.topic_alias_maximum;
        let topic = match (p.topic, p.props.topic_alias) {
            (_, Some(a)) if a == 0 || a > max => {
                return self.violation5(
                    now,
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    format!(
                        "Topic Alias {a} outside 1..={max} (our Topic Alias Maximum) [MQTT-3.3.2-10]"
                    ),
                );
            }
            (Some(t), Some(a)) => {
                if let Some(slot) = self.v5_state().alias_in.get_mut(usize::from(a - 1)) {
                    *slot = Some(t.clone());
                }
                t
            }
            (None, Some(a)) => match self
                .v5
                .as_deref()
                .and_then(|v| v.alias_in.get(usize::from(a - 1)).cloned().flatten())
            {
                Some(t) => t,
                None => {
                    return self.violation5(
                        now,
                        ReasonCode::TOPIC_ALIAS_INVALID,
                        format!("empty Topic Name with Topic Alias {a}, which has no mapping on this connection"),
                    )
                }
            },
            (Some(t), None) => t,
            (None, None) => {
                return self.violation5(
                    now,
                    ReasonCode::PROTOCOL_ERROR,
                    "PUBLISH with an empty Topic Name and no Topic Alias [MQTT-3.3.2-1]".into(),
                )
            }
        };
        let qos = p.qos_pid.qos();
        if let QosPid::ExactlyOnce(pid) = p.qos_pid {
            let held = qr(&self.q).incoming_qos2.contains(&pid);
            let limit = usize::from(self.config.receive_maximum.max(1));
            if !held && qr(&self.q).incoming_qos2.len() >= limit {
                return self.violation5(
                    now,
                    ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                    format!("more than {limit} QoS 2 PUBLISHes unacknowledged (our Receive Maximum) [MQTT-3.3.4-9]"),
                );
            }
        }
        if !self.acknowledge(p.qos_pid) {
            return;
        }
        let mut props = p.props;
        props.topic_alias = None;
        self.stats.messages_received += 1;
        qm(&mut self.q).events.push_back(ClientEvent::Message5 {
            topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            dup: p.dup,
            props,
        });
    }

    /// Answer a received PUBLISH (PUBACK, or PUBREC holding the id until
    /// PUBREL); false for a QoS 2 duplicate that is not delivered again.
    fn acknowledge(&mut self, qos_pid: QosPid) -> bool {
        match qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) => self.push(Packet::PubAck(Ack { pid }), None, false),
            QosPid::ExactlyOnce(pid) => {
                // Method B (figure 4.3): deliver once, hold the id until
                // PUBREL so a resent PUBLISH is not delivered again.
                self.push(Packet::PubRec(Ack { pid }), None, false);
                if qr(&self.q).incoming_qos2.contains(&pid) {
                    self.stats.duplicates_suppressed += 1;
                    return false;
                }
                qm(&mut self.q).incoming_qos2.push(pid);
            }
        }
        true
    }

    fn handle_ack5(&mut self, now: SimTime, a: Ack5, ty: PacketType) {
        if a.reason.is_failure() && matches!(ty, PacketType::PubAck | PacketType::PubRec) {
            let want = if ty == PacketType::PubAck {
                OutState::AwaitAck
            } else {
                OutState::AwaitRec
            };
            let Some(i) = qr(&self.q)
                .inflight
                .iter()
                .position(|o| o.pid == a.pid && o.state == want)
            else {
                self.stats.unknown_acks += 1;
                return;
            };
            // [MQTT-4.3.3]: no PUBREL after a failed PUBREC; the flow ends.
            let o = qm(&mut self.q).inflight.remove(i);
            self.stats.publishes_failed += 1;
            qm(&mut self.q)
                .events
                .push_back(ClientEvent::PublishFailed {
                    handle: o.handle,
                    reason: a.reason,
                });
            self.drain(now);
            return;
        }
        self.handle_ack(now, Ack { pid: a.pid }, ty);
    }
}
