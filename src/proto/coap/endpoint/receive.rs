//! The receive path of [`Endpoint`]: what the message layer hands up is
//! dispatched by code class (RFC 7252 §5.2, §12.1): responses are matched to
//! our requests by token (§5.3.2), requests are checked (§5.4.1, §5.8) and
//! reported to the application.

use crate::net::addr::SockAddr;
use crate::sim::SimTime;

use super::super::block::BlockOptions;
use super::super::code::{Code, MessageType, Method};
use super::super::codec::{MessageRef, Token};
use super::super::events::{CacheInfo, Event, IncomingId};
use super::super::message::{Inbound, MessageKey};
use super::super::option::OptionNumber;
use super::super::request::RequestHandle;
use super::super::server::{encode_response, Reply};
use super::{Endpoint, ExchangeKey, Incoming, Timer};

/// Critical options the endpoint understands by itself; any other critical
/// option in a request is answered 4.02 Bad Option (§5.4.1) unless the
/// application recognised it ([`Endpoint::recognise_option`]).
const RECOGNISED: [OptionNumber; 7] = [
    OptionNumber::URI_HOST,
    OptionNumber::URI_PORT,
    OptionNumber::URI_PATH,
    OptionNumber::CONTENT_FORMAT,
    OptionNumber::URI_QUERY,
    OptionNumber::ACCEPT,
    OptionNumber::SIZE1,
];

/// The Observe option's value (RFC 7641 §2), if present and well formed.
pub fn observe_value(m: &MessageRef<'_>) -> Option<u32> {
    m.options()
        .find(|o| o.number == OptionNumber::OBSERVE.0 && o.value.len() <= 3)
        .and_then(|o| crate::proto::coap::option::decode_uint(o.value))
        .map(|v| v as u32)
}

/// Check a request's method and critical options: unknown method → 4.05
/// (§5.8); an unrecognised or malformed critical option → 4.02 (§5.4.1,
/// §5.4.3), Proxy-Uri/Proxy-Scheme → 5.05 (§5.10.2).
fn check_request(m: &MessageRef<'_>, extra: &[u16]) -> Result<Method, Code> {
    let Some(method) = Method::from_code(m.code) else {
        return Err(Code::METHOD_NOT_ALLOWED);
    };
    let bad = m.options().find(|o| {
        let n = OptionNumber(o.number);
        let known = RECOGNISED.contains(&n) || extra.contains(&o.number);
        let ok_len = n
            .spec()
            .is_none_or(|(_, lo, hi)| (lo..=hi).contains(&o.value.len()));
        n.is_critical() && !(known && ok_len)
    });
    if let Some(o) = bad {
        let proxy =
            o.number == OptionNumber::PROXY_URI.0 || o.number == OptionNumber::PROXY_SCHEME.0;
        return Err(if proxy {
            Code::PROXYING_NOT_SUPPORTED
        } else {
            Code::BAD_OPTION
        });
    }
    Ok(method)
}

impl Endpoint {
    /// A datagram arrived from `from`.
    pub(super) fn on_datagram(&mut self, now: SimTime, from: SockAddr, data: &[u8]) {
        match self.msg.receive(now, from, data) {
            Inbound::Handled => {}
            Inbound::Ack {
                key,
                token,
                transmissions,
                ack,
            } => self.on_ack(now, from, key, token, transmissions, &ack),
            Inbound::Reset { key, token } => {
                if self.responses.remove(&key.0) {
                    self.events.push_back(Event::ResponseReset {
                        response: super::ResponseId(key.0),
                    });
                } else if let Some(ex) = self.forget_client(from, token, key) {
                    self.failed_registration(from, token, &ex);
                    self.events.push_back(Event::ResetReceived {
                        handle: RequestHandle(key.0),
                    });
                }
            }
            Inbound::Message(m) => {
                if m.code.class() == 0 {
                    self.on_request(now, from, &m, data);
                } else if m.code.is_response() {
                    self.on_response(now, from, &m);
                } else if m.ty == MessageType::Con {
                    // Reserved classes 1, 3, 6, 7 (§12.1): cannot process →
                    // RST (§4.2).
                    self.msg.reject(from, m.message_id);
                } else {
                    self.stats.ignored += 1;
                }
            }
        }
    }

    /// The ACK of one of our CONs, `key` with `token` (the message layer is
    /// done with it).
    fn on_ack(
        &mut self,
        now: SimTime,
        from: SockAddr,
        key: MessageKey,
        token: Token,
        transmissions: u32,
        m: &MessageRef<'_>,
    ) {
        if self.responses.remove(&key.0) {
            // our separate response (or notification) was acknowledged
            self.events.push_back(Event::ResponseAcked {
                response: super::ResponseId(key.0),
                transmissions,
            });
            return;
        }
        let life = self.msg.config().exchange_lifetime();
        let Some(ex) = self
            .requests
            .get_mut(&ExchangeKey(from, token))
            .filter(|ex| ex.key == key.0)
        else {
            return;
        };
        if m.code.is_response() && m.token == token {
            // §5.2.1 piggybacked response.
            let observe = ex.observe;
            self.response_received(now, from, key, m, transmissions, observe);
            self.forget_client(from, token, key);
            return;
        }
        // §5.2.2: Empty ACK — a separate response follows within
        // EXCHANGE_LIFETIME. The message layer has released the NSTART slot
        // (§4.7: the interaction is no longer outstanding).
        ex.awaiting_separate = true;
        ex.transmissions = transmissions;
        ex.deadline = now + life;
        self.timers.insert((ex.deadline, Timer::Client, key.0));
        self.separate.insert(key.0, (from, token));
    }

    fn on_response(&mut self, now: SimTime, from: SockAddr, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        // matched: a request of ours that was sent (not waiting for
        // NSTART): still with the message layer, or awaiting a separate
        // response; `transmissions` = 1 + retransmissions
        // RFC 7641 §3.3.1: while a CON re-registration awaits its ACK
        // (which carries its response), a separate response with the
        // observation's token is a notification
        let renotify = self
            .requests
            .get(&ExchangeKey(from, m.token))
            .is_some_and(|e| {
                e.observe
                    && e.confirmable
                    && !e.awaiting_separate
                    && self
                        .observations
                        .get(&(from, m.token))
                        .is_some_and(|o| o.last.is_some())
            });
        if renotify {
            self.on_notification(now, from, m);
            return;
        }
        let found = self
            .requests
            .get(&ExchangeKey(from, m.token))
            .and_then(|e| {
                let sent = self.msg.transmissions(MessageKey(e.key));
                match sent {
                    Some(0) => None,
                    Some(n) => Some((e.key, n)),
                    None => e.awaiting_separate.then_some((e.key, e.transmissions)),
                }
            });
        let Some((key, transmissions)) = found else {
            if self.multicast.contains_key(&m.token) {
                self.multicast_response(now, from, m);
                return;
            }
            if self.observations.contains_key(&(from, m.token)) {
                self.on_notification(now, from, m);
                return;
            }
            // §5.3.2 / §4.2: a CON response we cannot match is rejected;
            // so is a NON notification nobody observes (RFC 7641 §3.6),
            // which ends the server's observation.
            if con || observe_value(m).is_some() {
                self.msg.reject(from, m.message_id);
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        // Remembered for deduplication (§4.5); a separate CON response is
        // acknowledged (§5.2.2) and its ACK repeated for a retransmission.
        self.msg.accept(now, from, m.message_id, con);
        if con {
            self.msg.acknowledge_empty(from, m.message_id);
        }
        let key = MessageKey(key);
        let observe = self
            .requests
            .get(&ExchangeKey(from, m.token))
            .is_some_and(|e| e.observe);
        self.response_received(now, from, key, m, transmissions, observe);
        // A response before the ACK (or to a NON) ends the message too.
        self.msg.cancel(key);
        self.forget_client(from, m.token, key);
    }

    /// Report the response `m` to our request `key`; for a registration
    /// (`observe`), a 2.xx with an Observe value starts (or refreshes) the
    /// observation, anything else ends it (RFC 7641 §3.1, §3.2).
    fn response_received(
        &mut self,
        now: SimTime,
        from: SockAddr,
        key: MessageKey,
        m: &MessageRef<'_>,
        transmissions: u32,
        registration: bool,
    ) {
        let observe = observe_value(m);
        if registration {
            let ok = m.code.is_success() && observe.is_some();
            if let std::collections::btree_map::Entry::Occupied(mut o) =
                self.observations.entry((from, m.token))
            {
                match observe {
                    Some(v) if ok => o.get_mut().last = Some((v, now)),
                    _ => {
                        o.remove();
                    }
                }
            }
        }
        self.stats.responses_received += 1;
        self.events.push_back(Event::ResponseReceived {
            handle: RequestHandle(key.0),
            from,
            code: m.code,
            content_format: m.content_format(),
            payload: m.payload.to_vec(),
            transmissions,
            observe,
            block: BlockOptions::of(m),
            cache: CacheInfo::of(m),
        });
    }

    /// A response with the token of one of our observations and no request
    /// outstanding: a notification (RFC 7641 §3.2). It is acknowledged (a
    /// CON) and remembered for deduplication whatever its freshness; a
    /// stale one (§3.4) is not reported.
    fn on_notification(&mut self, now: SimTime, from: SockAddr, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        self.msg.accept(now, from, m.message_id, con);
        if con {
            self.msg.acknowledge_empty(from, m.message_id);
        }
        let Some(o) = self.observations.get_mut(&(from, m.token)) else {
            return;
        };
        let handle = RequestHandle(o.handle);
        let observe = observe_value(m);
        match observe {
            Some(v) if m.code.is_success() => {
                let fresh = o
                    .last
                    .is_none_or(|(v1, t1)| super::super::observe::is_fresh(v1, t1, v, now));
                if !fresh {
                    self.stats.notifications_stale += 1;
                    self.events.push_back(Event::StaleNotification { handle });
                    return;
                }
                o.last = Some((v, now));
            }
            // §3.2: a non-2.xx notification, or one without Observe, ends
            // the observation
            _ => {
                self.observations.remove(&(from, m.token));
            }
        }
        self.stats.notifications_accepted += 1;
        self.events.push_back(Event::Notification {
            handle,
            from,
            code: m.code,
            observe,
            content_format: m.content_format(),
            payload: m.payload.to_vec(),
            cache: CacheInfo::of(m),
        });
    }

    /// A response to our multicast request with `m.token` (RFC 7252
    /// §8.2): one of possibly many, from any server; a CON one is
    /// acknowledged (servers should answer NON, but may not).
    fn multicast_response(&mut self, now: SimTime, from: SockAddr, m: &MessageRef<'_>) {
        let con = m.ty == MessageType::Con;
        self.msg.accept(now, from, m.message_id, con);
        if con {
            self.msg.acknowledge_empty(from, m.message_id);
        }
        let Some(mc) = self.multicast.get_mut(&m.token) else {
            return;
        };
        mc.responses += 1;
        let handle = RequestHandle(mc.handle);
        self.stats.responses_received += 1;
        self.stats.multicast_responses += 1;
        self.events.push_back(Event::ResponseReceived {
            handle,
            from,
            code: m.code,
            content_format: m.content_format(),
            payload: m.payload.to_vec(),
            transmissions: 1,
            observe: observe_value(m),
            block: BlockOptions::of(m),
            cache: CacheInfo::of(m),
        });
    }

    fn on_request(&mut self, now: SimTime, from: SockAddr, m: &MessageRef<'_>, raw: &[u8]) {
        let con = m.ty == MessageType::Con;
        let multicast = self.rx_multicast;
        if multicast && con {
            // §8.1: multicast requests MUST be NON; a CON is not processed
            // (nothing acknowledges a multicast)
            self.stats.ignored += 1;
            return;
        }
        self.msg.accept(now, from, m.message_id, con);
        let method = match check_request(m, &self.recognised) {
            Ok(method) => method,
            // §8.1: no RST to a NON that arrived via multicast
            Err(_) if multicast => {
                self.stats.ignored += 1;
                return;
            }
            Err(_) if !con => {
                // §5.4.1: a NON with an unrecognised critical option is
                // rejected (§4.3: with a matching RST).
                self.msg.reject(from, m.message_id);
                return;
            }
            Err(code) => {
                let reply = Reply::bare(code);
                let mut bytes = self.msg.take_buffer();
                encode_response(&mut bytes, MessageType::Ack, m.message_id, m.token, &reply);
                self.msg.acknowledge(from, m.message_id, bytes);
                return;
            }
        };
        self.stats.requests_received += 1;
        if multicast {
            self.stats.multicast_requests_received += 1;
        }
        let id = self.next_incoming;
        self.next_incoming += 1;
        let config = self.msg.config();
        let deadline = if con {
            now + config.processing_delay
        } else {
            now + config.non_lifetime()
        };
        let mut stored = self.msg.take_buffer();
        stored.extend_from_slice(raw);
        self.incoming.insert(
            id,
            Incoming {
                peer: from,
                token: m.token,
                message_id: m.message_id,
                confirmable: con,
                acked: false,
                arrived: now,
                deadline,
                raw: stored,
                multicast,
            },
        );
        self.arrivals[usize::from(!con)].push_back((deadline, id));
        let mut path = self.spare_strings.pop().unwrap_or_default();
        path.clear();
        m.write_path(&mut path);
        let mut payload = self.msg.take_buffer();
        payload.extend_from_slice(m.payload);
        self.events.push_back(Event::RequestReceived {
            id: IncomingId(id),
            from,
            token: m.token,
            method,
            path,
            content_format: m.content_format(),
            payload,
            confirmable: con,
        });
    }
}
