//! The receive path of [`Endpoint`]: datagram dispatch by message type
//! (RFC 7252 §4.2, §4.3), deduplication (§4.5), response matching (§5.2,
//! §5.3.2) and the server side (§5.2.1–§5.2.3, §5.8).

use std::net::SocketAddrV4;

use crate::sim::SimTime;

use super::super::code::{Code, MessageType};
use super::super::codec::{write_header, CodecError, Header, MessageRef, Token};
use super::super::events::Event;
use super::super::exchange::{ExState, Exchange, Outgoing};
use super::super::request::RequestHandle;
use super::super::server::{encode_response, serve, Served};
use super::Endpoint;

impl Endpoint {
    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: SimTime, from: SocketAddrV4, bytes: &[u8]) {
        self.dedup.expire(now);
        let m = match MessageRef::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed_dropped += 1;
                // RFC 7252 §3: unknown versions are silently ignored. §4.2: a
                // CON with a format error is rejected with RST; §4.3: anything
                // else malformed is silently ignored.
                if !matches!(e, CodecError::UnknownVersion { .. }) {
                    if let Ok(h) = Header::peek(bytes) {
                        if h.ty == MessageType::Con {
                            self.send_rst(from, h.message_id);
                        }
                    }
                }
                return;
            }
        };
        match m.ty {
            MessageType::Ack | MessageType::Rst => self.on_ack_or_rst(now, from, &m),
            MessageType::Con | MessageType::Non => {
                let con = m.ty == MessageType::Con;
                if m.code.is_empty() {
                    if con {
                        // RFC 7252 §4.3: an Empty CON ("CoAP ping") gets RST.
                        self.send_rst(from, m.message_id);
                    } else {
                        // §4.3: a NON must not be Empty — format error.
                        self.stats.malformed_dropped += 1;
                    }
                    return;
                }
                if self.is_duplicate(now, from, &m) {
                    return;
                }
                if m.code.class() == 0 {
                    self.on_request(now, from, &m);
                } else if m.code.is_response() {
                    self.on_response(now, from, &m);
                } else if con {
                    // Reserved classes 1, 6, 7 (§12.1): cannot process → RST (§4.2).
                    self.send_rst(from, m.message_id);
                } else {
                    self.stats.ignored += 1;
                }
            }
        }
    }

    /// RFC 7252 §4.5: a CON or NON already seen from this source with this
    /// message ID is a duplicate: a CON gets the same reply again, the
    /// application does not see it again.
    fn is_duplicate(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) -> bool {
        let Some(entry) = self.dedup.lookup(now, from, m.message_id) else {
            return false;
        };
        self.stats.duplicates_suppressed += 1;
        if m.ty == MessageType::Con && entry.reply.is_some() {
            self.outq.push_back(Outgoing::Cached {
                peer: from,
                mid: m.message_id,
                repeat: true,
            });
        }
        true
    }

    fn on_ack_or_rst(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        // RFC 7252 §4.2: an ACK or RST matching no CON we sent is ignored.
        let Some(&id) = self.by_mid.get(&(from, m.message_id)) else {
            self.stats.ignored += 1;
            return;
        };
        let Some(ex) = self.exchanges.get_mut(&id) else {
            self.stats.ignored += 1;
            return;
        };
        if m.ty == MessageType::Ack && ex.state != ExState::AwaitingAck {
            // §4.2: only a CON is acknowledged; an ACK for our NON is ignored.
            self.stats.ignored += 1;
            return;
        }
        if m.ty == MessageType::Rst {
            self.stats.rst_received += 1;
            if ex.client {
                self.events.push_back(Event::ResetReceived {
                    handle: RequestHandle(id),
                });
            }
            self.finish(now, id);
            return;
        }
        // The ACK ends retransmission.
        self.by_mid.remove(&(from, m.message_id));
        if !ex.client {
            self.finish(now, id); // our separate response was acknowledged
            return;
        }
        let transmissions = ex.retransmissions + 1;
        if m.code.is_response() && m.token == ex.token {
            // §5.2.1 piggybacked response.
            self.stats.responses_received += 1;
            self.events.push_back(Event::ResponseReceived {
                handle: RequestHandle(id),
                from,
                code: m.code,
                content_format: m.content_format(),
                payload: m.payload.to_vec(),
                transmissions,
            });
            self.finish(now, id);
            return;
        }
        // §5.2.2: Empty ACK — a separate response follows. The interaction is
        // no longer outstanding for NSTART (§4.7).
        self.timers.remove(&(ex.deadline, id));
        ex.state = ExState::AwaitingResponse;
        ex.deadline = now + self.config.exchange_lifetime();
        self.timers.insert((ex.deadline, id));
        let peer = ex.peer;
        if std::mem::replace(&mut ex.holds_slot, false) {
            self.release_slot(now, peer);
        }
    }

    fn on_response(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        let found = self.by_token.get(&(from, m.token)).copied().filter(|id| {
            self.exchanges
                .get(id)
                .is_some_and(|e| e.state != ExState::Waiting)
        });
        let Some(id) = found else {
            // §5.3.2 / §4.2: a CON response we cannot match is rejected.
            if con {
                self.send_rst(from, m.message_id);
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        if con {
            // §5.2.2: the client ACKs a separate CON response; the ACK is
            // remembered so a retransmitted response gets it again (§4.5).
            let mut ack = Vec::with_capacity(4);
            write_header(
                &mut ack,
                MessageType::Ack,
                Code::EMPTY,
                m.message_id,
                &Token::EMPTY,
            );
            self.remember(now, from, m.message_id, true, Some(ack.into_boxed_slice()));
            self.outq.push_back(Outgoing::Cached {
                peer: from,
                mid: m.message_id,
                repeat: false,
            });
        } else {
            self.remember(now, from, m.message_id, false, None);
        }
        let transmissions = self.exchanges.get(&id).map_or(1, |e| e.retransmissions + 1);
        self.stats.responses_received += 1;
        self.events.push_back(Event::ResponseReceived {
            handle: RequestHandle(id),
            from,
            code: m.code,
            content_format: m.content_format(),
            payload: m.payload.to_vec(),
            transmissions,
        });
        self.finish(now, id);
    }

    fn on_request(&mut self, now: SimTime, from: SocketAddrV4, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        let path_buf = self.spare_strings.pop().unwrap_or_default();
        let reply = match serve(&mut self.store, m, path_buf) {
            Served::Rejected(_) if !con => {
                // §5.4.1: a NON with an unrecognised critical option is
                // rejected (§4.3: with a matching RST).
                self.remember(now, from, m.message_id, false, None);
                self.send_rst(from, m.message_id);
                return;
            }
            Served::Rejected(reply) => reply,
            Served::Applied {
                reply,
                method,
                path,
                content_format,
            } => {
                self.stats.requests_received += 1;
                let mut payload = self.spare.pop().unwrap_or_default();
                payload.clear();
                payload.extend_from_slice(m.payload);
                self.events.push_back(Event::RequestReceived {
                    from,
                    method,
                    path,
                    content_format,
                    payload,
                    confirmable: con,
                });
                reply
            }
        };
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        if !con {
            // §5.2.3: a NON request gets a NON response with a new ID.
            let mid = self.fresh_mid();
            encode_response(&mut bytes, MessageType::Non, mid, m.token, &reply);
            self.remember(now, from, m.message_id, false, None);
            self.outq.push_back(Outgoing::Owned { to: from, bytes });
            return;
        }
        match self.config.separate_response_delay {
            None => {
                // §5.2.1: piggybacked response in the ACK.
                encode_response(&mut bytes, MessageType::Ack, m.message_id, m.token, &reply);
            }
            Some(delay) => {
                // §5.2.2: Empty ACK now, the response later as its own CON.
                write_header(
                    &mut bytes,
                    MessageType::Ack,
                    Code::EMPTY,
                    m.message_id,
                    &Token::EMPTY,
                );
                let mut resp = Vec::new();
                encode_response(&mut resp, MessageType::Con, 0, m.token, &reply);
                let id = self.alloc_id();
                let deadline = now + delay;
                self.exchanges.insert(
                    id,
                    Exchange {
                        peer: from,
                        token: m.token,
                        message_id: 0,
                        confirmable: true,
                        client: false,
                        state: ExState::Scheduled,
                        holds_slot: false,
                        bytes: resp,
                        retransmissions: 0,
                        timeout: delay,
                        deadline,
                    },
                );
                self.timers.insert((deadline, id));
            }
        }
        self.remember(
            now,
            from,
            m.message_id,
            true,
            Some(bytes.into_boxed_slice()),
        );
        self.outq.push_back(Outgoing::Cached {
            peer: from,
            mid: m.message_id,
            repeat: false,
        });
    }
}
