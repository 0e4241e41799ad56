//! The client's receive path: decoding the broker's bytes and reacting to
//! each packet (§3, §4.3, §4.4).

use crate::sim::SimTime;

use super::super::codec;
use super::super::events::{ClientEvent, LostReason, ProtocolViolation};
use super::super::packet::{Ack, ConnectReturnCode, Packet, PacketType, Publish, QosPid};
use super::super::session::OutState;
use super::{Client, ClientState, Timer};

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
        let mut buf = std::mem::take(&mut self.inbuf);
        buf.extend_from_slice(data);
        let mut off = 0;
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
        self.inbuf = buf;
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
                self.incoming_qos2.retain(|&x| x != a.pid);
                self.push(Packet::PubComp(a), None, false);
            }
            Packet::SubAck(s) => match self.requests.iter().position(|r| r.0 == s.pid) {
                Some(i) => {
                    let (_, handle, _) = self.requests.remove(i);
                    self.events.push_back(ClientEvent::Subscribed {
                        handle,
                        codes: s.codes,
                    });
                }
                None => self.stats.unknown_acks += 1,
            },
            Packet::UnsubAck(a) => match self.requests.iter().position(|r| r.0 == a.pid) {
                Some(i) => {
                    let (_, handle, _) = self.requests.remove(i);
                    self.events.push_back(ClientEvent::Unsubscribed { handle });
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
            self.outq.clear();
            self.reset_connection();
            self.events.push_back(ClientEvent::ConnectRefused(code));
            self.events.push_back(ClientEvent::CloseTransport);
            if code == ConnectReturnCode::ServerUnavailable {
                self.schedule_reconnect(now);
            } else {
                self.state = ClientState::Idle;
            }
            return;
        }
        self.state = ClientState::Connected;
        self.attempt = 0;
        self.stats.connects += 1;
        if !session_present {
            // The broker has no session: ids it held are forgotten.
            self.incoming_qos2.clear();
        }
        self.events
            .push_back(ClientEvent::Connected { session_present });
        // §4.4 [MQTT-4.4.0-1]: resend in order with original ids.
        let mut resend = Vec::with_capacity(self.inflight.len());
        for o in self.inflight.iter_mut() {
            o.sent_at = now;
            resend.push(match o.state {
                OutState::AwaitAck | OutState::AwaitRec => {
                    let mut p = o.publish.clone();
                    p.dup = true; // [MQTT-3.3.1-1]
                    (Packet::Publish(p), o.handle)
                }
                OutState::AwaitComp => (Packet::PubRel(Ack { pid: o.pid }), o.handle),
            });
        }
        for (p, h) in resend {
            self.push(p, Some(h), true);
        }
        if !self.inflight.is_empty() {
            self.arm_retry(now);
        }
        let reqs: Vec<Packet> = self.requests.iter().map(|r| r.2.clone()).collect();
        for p in reqs {
            self.push(p, None, false);
        }
        self.drain(now);
    }

    fn handle_publish(&mut self, p: Publish) {
        let qos = p.qos_pid.qos();
        match p.qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) => self.push(Packet::PubAck(Ack { pid }), None, false),
            QosPid::ExactlyOnce(pid) => {
                // Method B (figure 4.3): deliver once, hold the id until
                // PUBREL so a resent PUBLISH is not delivered again.
                self.push(Packet::PubRec(Ack { pid }), None, false);
                if self.incoming_qos2.contains(&pid) {
                    self.stats.duplicates_suppressed += 1;
                    return;
                }
                self.incoming_qos2.push(pid);
            }
        }
        self.stats.messages_received += 1;
        self.events.push_back(ClientEvent::Message {
            topic: p.topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            dup: p.dup,
        });
    }

    fn handle_ack(&mut self, now: SimTime, a: Ack, ty: PacketType) {
        let Some(i) = self.inflight.iter().position(|o| o.pid == a.pid) else {
            self.stats.unknown_acks += 1;
            return;
        };
        let Some(o) = self.inflight.get_mut(i) else {
            return;
        };
        match (ty, o.state) {
            (PacketType::PubAck, OutState::AwaitAck)
            | (PacketType::PubComp, OutState::AwaitComp) => {
                let o = self.inflight.remove(i);
                self.events
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
