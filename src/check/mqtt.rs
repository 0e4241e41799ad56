//! The MQTT wire rules, judged on the encoded packets: each packet a node
//! writes into a connection (whole, as the glue hands it to TCP) and the
//! bytes it reads from one (framed here: fixed header, Remaining Length).
//!
//! * `mqtt-packet-id-in-use` [MQTT-2.3.1-2]: a new (DUP = 0) QoS > 0
//!   PUBLISH must not carry a Packet Identifier the same sender still has
//!   in flight on that connection (sent, and no PUBACK — QoS 1 — or
//!   PUBCOMP — QoS 2 — received for it yet).
//! * `mqtt-will` [MQTT-3.1.2-8], [MQTT-3.1.2-10]: when a connection the
//!   broker accepted ends, the will its CONNECT carried is published iff
//!   the broker did not receive DISCONNECT on it.
//! * `mqtt-retained-last` [MQTT-3.3.1-6]: a PUBLISH the broker sends with
//!   RETAIN = 1 (a retained message for a new subscription,
//!   [MQTT-3.3.1-8]) carries the payload of the last retained message
//!   the broker held on its topic when the subscription was made: the
//!   last retained PUBLISH it received there ([MQTT-3.3.1-5]; a zero-byte
//!   one clears it, [MQTT-3.3.1-10]) or a retained will published there.
//! * `mqtt-qos1-at-least-once` [MQTT-4.3.2]: a QoS 1 message the broker
//!   acknowledged to its publisher (PUBACK sent) reaches the application
//!   of every subscriber whose session matched it at QoS ≥ 1 when the
//!   broker took it, was connected then, and survived until the end of
//!   the run (see `judge_qos1` for what excuses a miss).
//!
//! Both versions are judged: a connection is MQTT 5.0 from a CONNECT with
//! protocol level 5 on, and its packets are then read with the 5.0 codec —
//! topic aliases resolved both ways, Clean Start with the Session Expiry
//! Interval (a session whose interval ran out before the client came back
//! is a new one), DISCONNECT with reason 0x04 still owing the will, a will
//! with a Will Delay Interval owed later (judged if published, not if
//! missing: a reconnect within the delay cancels it), subscription options
//! (No Local, Retain As Published, Retain Handling). What the wire alone
//! cannot settle is not judged: a QoS 1 message with a Message Expiry
//! Interval (the broker may discard it), copies through shared
//! subscriptions (`$share/…`: one member of the group gets it), retained
//! PUBLISHes to a subscription with Retain As Published, a QoS 1 message
//! refused with a PUBACK reason code ≥ 0x80.
//!
//! State per connection (dropped when its socket is released): the
//! partial packet being read, the identifiers in flight, and on the
//! broker's side the CONNECT's client id, clean-session flag and will and
//! whether DISCONNECT arrived; per broker, the wills owed by connections
//! that ended in the current step (settled by the end of that step), the
//! retained payloads (hashed) by topic, and per session the payloads
//! owed to it by its SUBSCRIBEs until sent.

use super::coap::fnv;
use super::{Monitors, Rule, Violation};
use crate::proto::mqtt::v5::{self, Packet5, RetainHandling};
use crate::proto::mqtt::{decode, AclAction, Packet, QoS, TopicFilter, TopicName};
use crate::sim::{SimDuration, SimTime};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A will as the CONNECT carried it.
#[derive(Debug, Clone)]
struct Will {
    topic: String,
    /// Hash of the message (`None`: zero bytes).
    payload: Option<u64>,
    retain: bool,
    /// Will Delay Interval, seconds (5.0; 0 in 3.1.1).
    delay: u32,
}

/// Session Expiry Interval meaning "never" (5.0 §3.1.2.11.2; a 3.1.1
/// session with CleanSession = 0).
const NEVER: u32 = u32::MAX;

/// One subscription of a session as its SUBSCRIBE made it.
#[derive(Debug, Clone)]
struct Sub {
    filter: TopicFilter,
    /// Requested QoS.
    qos: u8,
    /// 5.0 No Local: not sent the session's own PUBLISHes.
    no_local: bool,
    /// 5.0 Retain As Published: forwarded messages keep their RETAIN.
    rap: bool,
    retain_handling: RetainHandling,
}

/// What the broker read, in the terms the rules use, from a packet of
/// either version.
enum Read {
    Connect {
        client_id: String,
        username: Option<String>,
        clean_start: bool,
        /// Session Expiry Interval, seconds ([`NEVER`]; 3.1.1: 0 for a
        /// clean session, else never).
        expiry: u32,
        will: Option<(TopicName, Arc<[u8]>, bool, u32)>,
    },
    Publish {
        topic: TopicName,
        qos: QoS,
        pid: Option<u16>,
        retain: bool,
        payload: Arc<[u8]>,
        /// It carries a Message Expiry Interval (5.0).
        expires: bool,
    },
    Subscribe(Vec<Sub>),
    Unsubscribe(Vec<TopicFilter>),
    Disconnect {
        /// 3.1.1 DISCONNECT or 5.0 reason other than 0x04: the will is
        /// discarded.
        discards_will: bool,
        /// 5.0: a new Session Expiry Interval.
        expiry: Option<u32>,
    },
}

/// One connection end (a socket) as the monitors see it.
#[derive(Debug, Default)]
struct Conn {
    /// Bytes of a packet not complete yet.
    rx: Vec<u8>,
    /// Packet identifier → QoS of the PUBLISHes this end sent and has not
    /// seen completed.
    out: BTreeMap<u16, u8>,
    /// Client id of the CONNECT received here (the broker's end).
    client_id: Option<String>,
    /// Its user name (what an ACL rule may match on).
    username: Option<String>,
    will: Option<Will>,
    disconnect: bool,
    /// Broken framing: nothing more is read on this connection.
    broken: bool,
    /// MQTT 5.0 (its CONNECT had protocol level 5).
    v5: bool,
    /// Session Expiry Interval in force, seconds ([`NEVER`]).
    expiry: u32,
    /// 5.0 topic aliases of the PUBLISHes read here (client → broker).
    alias_in: BTreeMap<u16, TopicName>,
    /// 5.0 topic aliases of the PUBLISHes the broker sent here.
    alias_out: BTreeMap<u16, TopicName>,
}

#[derive(Debug, Default)]
pub(super) struct MqttState {
    /// By socket id; looked up only, never iterated.
    conns: HashMap<u64, Conn>,
    /// Broker-side connections whose socket was released before the
    /// broker reported their end (it does in the same step): socket id →
    /// (broker node, client id, will, DISCONNECT received, Session Expiry
    /// Interval).
    ended: BTreeMap<u64, (u32, String, Option<Will>, bool, u32)>,
    /// (broker node, client id) → when its last connection ended and the
    /// Session Expiry Interval then in force: a 5.0 CONNECT without Clean
    /// Start after that interval finds no session.
    session_end: BTreeMap<(u32, String), (SimTime, u32)>,
    /// (broker node, client id) → the delayed will (Will Delay Interval
    /// above 0) owed (`Some`) or not (`None`) since its connection ended;
    /// a publication is judged against it, a missing one is not.
    delayed: BTreeMap<(u32, String), Option<Will>>,
    /// (broker node, client id) → the will owed (`Some`) or not (`None`),
    /// for the connections the broker reported ended in the current step.
    verdict: BTreeMap<(u32, String), Option<Will>>,
    /// (broker node, topic) → hash of the retained payload.
    retained: BTreeMap<(u32, String), u64>,
    /// (broker node, topic): a QoS 2 retained PUBLISH arrived there — when
    /// the broker stores it (at PUBLISH or PUBREL) and whether a DUP is
    /// new depend on its session's held identifiers, not on the wire
    /// alone, so the topic is no longer judged.
    unjudged: BTreeSet<(u32, String)>,
    /// (broker node, client id, topic) → the retained payloads (hashed)
    /// its SUBSCRIBEs matching the topic owe it, in order, until sent.
    owed_retained: BTreeMap<(u32, String, String), Vec<u64>>,
    /// (broker node, client id) → the session's subscriptions as its
    /// SUBSCRIBE and UNSUBSCRIBE packets made them.
    subs: BTreeMap<(u32, String), Vec<Sub>>,
    /// (broker node, client id) → the socket of its connection, while the
    /// broker counts it connected.
    online: BTreeMap<(u32, String), u64>,
    /// (broker node, client id) → the last time its session was disturbed:
    /// its connection ended, a clean CONNECT, a message dropped for it.
    disturbed: BTreeMap<(u32, String), SimTime>,
    /// Broker node → its last crash.
    broker_crash: BTreeMap<u32, SimTime>,
    /// Broker node → its access control, when it has rules: what it
    /// refuses (a PUBLISH, a SUBSCRIBE filter, a will) owes nobody
    /// anything.
    acl: BTreeMap<u32, crate::proto::mqtt::Acl>,
    /// (publisher's socket, packet id) → the QoS 1 message the broker took
    /// and has not acknowledged yet: (flow, message, the sessions it was
    /// routed to).
    unacked: BTreeMap<(u64, u16), (u32, u32, Vec<String>)>,
    /// (flow, message, subscriber node) → (broker node, client id, when
    /// the broker acknowledged it to its publisher), until delivered.
    owed: BTreeMap<(u32, u32, u32), (u32, String, SimTime)>,
}

/// MQTT control packet types (§2.2.1) the rules read.
const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const UNSUBSCRIBE: u8 = 10;
const DISCONNECT: u8 = 14;

/// (fixed-header length, remaining length) of the packet starting at
/// `b[0]`; `None` while incomplete, `Some(Err)` for a malformed length.
fn frame(b: &[u8]) -> Option<Result<(usize, usize), ()>> {
    match crate::proto::mqtt::codec::parse_fixed_header(b) {
        Ok(None) => None,
        Ok(Some((_, len, h))) => Some(Ok((h, len))),
        Err(_) => Some(Err(())),
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// QoS and packet identifier of a PUBLISH's variable header `body`
/// (`first`: its first byte); `None` for QoS 0.
fn publish_pid(first: u8, body: &[u8]) -> Option<(u8, u16)> {
    let qos = (first >> 1) & 3;
    if qos == 0 {
        return None;
    }
    let tlen = usize::from(u16_at(body, 0)?);
    Some((qos, u16_at(body, 2 + tlen)?))
}

impl MqttState {
    /// A retained PUBLISH (`qos`, `payload`) on `topic` the broker at
    /// `node` read: the topic's retained message from now on.
    fn retain(&mut self, node: u32, topic: &TopicName, qos: QoS, payload: &[u8]) {
        let key = (node, topic.as_str().to_string());
        if qos == QoS::ExactlyOnce {
            self.retained.remove(&key);
            self.unjudged.insert(key);
        } else if payload.is_empty() {
            self.retained.remove(&key);
        } else {
            self.retained.insert(key, fnv(payload));
        }
    }

    /// A QoS 1 PUBLISH (`pid`, `payload`) on `topic` the broker at `node`
    /// read on `conn`: the sessions it is routed to now (connected, a
    /// matching subscription at QoS ≥ 1 — a QoS 0 one downgrades it,
    /// [MQTT-3.8.4-6] — and not the publisher's own under No Local), held
    /// until the broker's PUBACK.
    fn route_qos1(&mut self, node: u32, conn: u64, topic: &TopicName, pid: u16, payload: &[u8]) {
        let Some((flow, msg)) = crate::app::workload::parse_payload(payload) else {
            return;
        };
        let own = self.conns.get(&conn).and_then(|c| c.client_id.as_deref());
        let lo = (node, String::new());
        let to: Vec<String> = self
            .subs
            .range(lo..)
            .take_while(|(k, _)| k.0 == node)
            .filter(|(k, v)| {
                let mine = own == Some(k.1.as_str());
                self.online.contains_key(*k)
                    && v.iter()
                        .any(|s| s.qos >= 1 && !(s.no_local && mine) && s.filter.matches(topic))
            })
            .map(|(k, _)| k.1.clone())
            .collect();
        if !to.is_empty() {
            self.unacked.insert((conn, pid), (flow, msg, to));
        }
    }
}

/// The [`Read`] of one whole packet `b` read on `c` (a CONNECT decides
/// the connection's version), resolving 5.0 topic aliases; `None` for a
/// packet the broker cannot decode (it does not act on it) or that the
/// rules do not read.
fn read_packet(c: &mut Conn, b: &[u8]) -> Option<Read> {
    if b.first().map(|x| x >> 4) == Some(CONNECT) {
        c.v5 = v5::connect_protocol_level(b) == Some(5);
    }
    if !c.v5 {
        return match decode(b, usize::MAX).ok()??.0 {
            Packet::Connect(k) => Some(Read::Connect {
                expiry: if k.clean_session { 0 } else { NEVER },
                clean_start: k.clean_session,
                client_id: k.client_id,
                username: k.username,
                will: k.will.map(|w| (w.topic, w.message, w.retain, 0)),
            }),
            Packet::Publish(p) => Some(Read::Publish {
                qos: p.qos_pid.qos(),
                pid: p.qos_pid.pid().map(|x| x.get()),
                topic: p.topic,
                retain: p.retain,
                payload: p.payload,
                expires: false,
            }),
            Packet::Subscribe(sub) => Some(Read::Subscribe(
                sub.filters
                    .into_iter()
                    .map(|(filter, q)| Sub {
                        filter,
                        qos: q.as_u8(),
                        no_local: false,
                        rap: false,
                        retain_handling: RetainHandling::SendOnSubscribe,
                    })
                    .collect(),
            )),
            Packet::Unsubscribe(u) => Some(Read::Unsubscribe(u.filters)),
            Packet::Disconnect => Some(Read::Disconnect {
                discards_will: true,
                expiry: None,
            }),
            _ => None,
        };
    }
    match v5::decode(b, usize::MAX).ok()??.0 {
        Packet5::Connect(k) => Some(Read::Connect {
            expiry: k.props.session_expiry_interval.unwrap_or(0),
            clean_start: k.clean_start,
            client_id: k.client_id,
            username: k.username,
            will: k.will.map(|w| {
                let delay = w.props.will_delay_interval.unwrap_or(0);
                (w.topic, w.message, w.retain, delay)
            }),
        }),
        Packet5::Publish(p) => {
            let alias = p.props.topic_alias;
            let topic = match (p.topic, alias) {
                (Some(t), Some(a)) => {
                    c.alias_in.insert(a, t.clone());
                    t
                }
                (Some(t), None) => t,
                (None, Some(a)) => c.alias_in.get(&a)?.clone(),
                (None, None) => return None,
            };
            Some(Read::Publish {
                qos: p.qos_pid.qos(),
                pid: p.qos_pid.pid().map(|x| x.get()),
                topic,
                retain: p.retain,
                payload: p.payload,
                expires: p.props.message_expiry_interval.is_some(),
            })
        }
        Packet5::Subscribe(sub) => Some(Read::Subscribe(
            sub.filters
                .into_iter()
                .map(|(filter, o)| Sub {
                    filter,
                    qos: o.qos.as_u8(),
                    no_local: o.no_local,
                    rap: o.retain_as_published,
                    retain_handling: o.retain_handling,
                })
                .collect(),
        )),
        Packet5::Unsubscribe(u) => Some(Read::Unsubscribe(u.filters)),
        Packet5::Disconnect(d) => Some(Read::Disconnect {
            discards_will: d.reason.0 != 0x04,
            expiry: d.props.session_expiry_interval,
        }),
        _ => None,
    }
}

impl MqttState {
    /// Does the broker at `node` allow `action` on `topic` to the client
    /// connected on `conn` (the same rules it applies)?
    fn acl_allows(
        &self,
        node: u32,
        conn: u64,
        action: crate::proto::mqtt::AclAction,
        topic: &str,
    ) -> bool {
        let Some(acl) = self.acl.get(&node) else {
            return true;
        };
        let c = self.conns.get(&conn);
        let id = c.and_then(|c| c.client_id.as_deref()).unwrap_or("");
        let user = c.and_then(|c| c.username.as_deref());
        acl.allows(action, id, user, topic)
    }
}

impl Monitors {
    /// The broker at `node` applies `acl` (an empty one: allows all).
    pub fn mqtt_broker_acl(&mut self, node: u32, acl: &crate::proto::mqtt::Acl) {
        if !acl.is_empty() {
            self.mqtt.acl.insert(node, acl.clone());
        }
    }

    /// The broker at `node` counts `client_id` connected on `conn`.
    pub fn mqtt_client_connected(&mut self, node: u32, conn: u64, client_id: &str) {
        self.mqtt.online.insert((node, client_id.to_string()), conn);
    }

    /// The broker at `node` dropped a message for `client_id` (its queue
    /// full, or QoS 0 while offline).
    pub fn mqtt_dropped(&mut self, now: SimTime, node: u32, client_id: &str) {
        self.mqtt
            .disturbed
            .insert((node, client_id.to_string()), now);
    }

    /// The broker at `node` wrote PUBACK `packet` into `conn`: the QoS 1
    /// message it acknowledges is owed to the sessions it was routed to
    /// (`node_of`: a client id's node, `None` for one whose deliveries
    /// are not seen, e.g. an MQTT-SN gateway's).
    pub fn mqtt_broker_acked(
        &mut self,
        now: SimTime,
        node: u32,
        conn: u64,
        packet: &[u8],
        node_of: impl Fn(&str) -> Option<u32>,
    ) {
        if self.mqtt.unacked.is_empty() || packet.first().is_none_or(|&b| b >> 4 != PUBACK) {
            return;
        }
        let Some(pid) = u16_at(packet, 2) else {
            return;
        };
        let Some((flow, msg, to)) = self.mqtt.unacked.remove(&(conn, pid)) else {
            return;
        };
        // a 5.0 PUBACK with a reason code ≥ 0x80: the message was not
        // accepted, nobody is owed it
        if packet.get(1).is_some_and(|&len| len >= 3) && packet.get(4).is_some_and(|&r| r >= 0x80) {
            return;
        }
        for id in to {
            if let Some(n) = node_of(&id) {
                self.mqtt.owed.insert((flow, msg, n), (node, id, now));
            }
        }
    }

    /// Message `msg` of `flow` reached the application at `node` (any
    /// receipt: first, repeated or late).
    pub fn delivered(&mut self, flow: u32, msg: u32, node: u32) {
        if !self.mqtt.owed.is_empty() {
            self.mqtt.owed.remove(&(flow, msg, node));
        }
    }

    /// At the end of the run: each QoS 1 message still owed is a violation
    /// unless excused. Excused: the subscriber's session was disturbed
    /// after the acknowledgement (its connection ended — a crash, a
    /// keep-alive timeout, a clean reconnect — or the broker dropped a
    /// message for it), its node restarted or connected without a present
    /// session, the broker crashed, or the broker still has PUBLISHes in
    /// flight to it at the end (its in-flight window may hold this one
    /// back, or the PUBLISH is still on the way). What is left is a
    /// session connected throughout with nothing in flight: the broker
    /// never sent the message, or the subscriber acknowledged it without
    /// handing it to the application.
    pub(super) fn judge_qos1(&mut self) {
        let owed = std::mem::take(&mut self.mqtt.owed);
        for ((flow, msg, node), (broker, id, acked)) in owed {
            let st = &self.mqtt;
            let key = (broker, id);
            let after = |t: Option<&SimTime>| t.is_some_and(|&t| t >= acked);
            let in_flight = st
                .online
                .get(&key)
                .and_then(|c| st.conns.get(c))
                .is_none_or(|c| !c.out.is_empty());
            if after(st.disturbed.get(&key))
                || after(st.broker_crash.get(&broker))
                || after(self.session_start.get(node as usize))
                || in_flight
            {
                continue;
            }
            self.record(Violation {
                t: acked,
                node,
                rule: Rule::MqttQos1AtLeastOnce,
                flow: Some(flow),
                detail: format!(
                    "QoS 1 message {msg} acknowledged to its publisher at {} ms never reached {} (connected throughout, nothing in flight to it at the end)",
                    crate::metrics::record::fmt_ms(acked.0),
                    key.1
                ),
            });
        }
    }

    /// `node` wrote the whole MQTT packet `packet` into connection `conn`
    /// (its socket id); `flow`: its attribution.
    pub fn mqtt_sent(
        &mut self,
        now: SimTime,
        node: u32,
        conn: u64,
        packet: &[u8],
        flow: Option<u32>,
    ) {
        let Some(&first) = packet.first() else {
            return;
        };
        if first >> 4 != PUBLISH {
            return;
        }
        let Some(Ok((h, _))) = frame(packet) else {
            return;
        };
        let Some((qos, pid)) = publish_pid(first, &packet[h..]) else {
            return;
        };
        let dup = first & 0x08 != 0;
        let c = self.mqtt.conns.entry(conn).or_default();
        let in_use = c.out.insert(pid, qos).is_some();
        if in_use && !dup {
            self.record(Violation {
                t: now,
                node,
                rule: Rule::MqttPacketIdInUse,
                flow,
                detail: format!(
                    "new QoS {qos} PUBLISH with packet identifier {pid}, still in flight on connection {conn:#x}"
                ),
            });
        }
    }

    /// `data` was read from connection `conn` (its socket id);
    /// `broker`: the node of the broker reading it, if a broker does.
    pub fn mqtt_received(&mut self, now: SimTime, conn: u64, data: &[u8], broker: Option<u32>) {
        let st = &mut self.mqtt;
        let c = st.conns.entry(conn).or_default();
        if c.broken {
            return;
        }
        c.rx.extend_from_slice(data);
        let mut at = 0;
        let mut decoded = Vec::new();
        let mut rx = std::mem::take(&mut c.rx);
        while at < rx.len() {
            let (h, len) = match frame(&rx[at..]) {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(())) => {
                    c.broken = true;
                    break;
                }
            };
            if rx.len() - at < h + len {
                break;
            }
            let first = rx[at];
            let body = &rx[at + h..at + h + len];
            match first >> 4 {
                PUBACK | PUBCOMP => {
                    if let Some(pid) = u16_at(body, 0) {
                        let qos = if first >> 4 == PUBACK { 1 } else { 2 };
                        if c.out.get(&pid) == Some(&qos) {
                            c.out.remove(&pid);
                        }
                    }
                }
                DISCONNECT if broker.is_none() => c.disconnect = true,
                CONNECT | PUBLISH | SUBSCRIBE | UNSUBSCRIBE | DISCONNECT if broker.is_some() => {
                    // what the broker reads, decoded as it decodes it (a
                    // packet it cannot decode it does not act on)
                    if let Some(r) = read_packet(c, &rx[at..at + h + len]) {
                        decoded.push(r);
                    }
                }
                _ => {}
            }
            at += h + len;
        }
        rx.drain(..at);
        c.rx = if c.broken { Vec::new() } else { rx };
        let Some(node) = broker else {
            return;
        };
        for p in decoded {
            match p {
                Read::Connect {
                    client_id,
                    username,
                    clean_start,
                    expiry,
                    will,
                } => {
                    let s = (node, client_id.clone());
                    // a reconnect within the Will Delay Interval cancels
                    // the delayed will
                    st.delayed.remove(&s);
                    // a session whose expiry interval ran out is gone;
                    // within a second of it, the broker's timer and this
                    // CONNECT may come in either order: counted gone too
                    let expired = st.session_end.get(&s).is_some_and(|&(t, e)| {
                        e != NEVER
                            && now
                                .0
                                .saturating_sub(t.0)
                                .saturating_add(SimDuration::from_secs(1).0)
                                >= SimDuration::from_secs(u64::from(e)).0
                    });
                    if clean_start || expired {
                        st.subs.remove(&s);
                        st.disturbed.insert(s, now);
                        // a new session owes nothing from an older one
                        let lo = (node, client_id.clone(), String::new());
                        let gone: Vec<_> = st
                            .owed_retained
                            .range(lo..)
                            .take_while(|(x, _)| x.0 == node && x.1 == client_id)
                            .map(|(x, _)| x.clone())
                            .collect();
                        for x in gone {
                            st.owed_retained.remove(&x);
                        }
                    }
                    let c = st.conns.entry(conn).or_default();
                    c.expiry = expiry;
                    c.client_id = Some(client_id);
                    c.username = username;
                    let will =
                        will.filter(|w| st.acl_allows(node, conn, AclAction::Will, w.0.as_str()));
                    let c = st.conns.entry(conn).or_default();
                    c.will = will.map(|(topic, message, retain, delay)| Will {
                        topic: topic.as_str().to_string(),
                        payload: (!message.is_empty()).then(|| fnv(&message)),
                        retain,
                        delay,
                    });
                }
                Read::Disconnect {
                    discards_will,
                    expiry,
                } => {
                    let c = st.conns.entry(conn).or_default();
                    c.disconnect = discards_will;
                    if let Some(e) = expiry {
                        c.expiry = e;
                    }
                }
                // a PUBLISH the ACL refuses is routed nowhere, stored nowhere
                Read::Publish { topic, .. }
                    if !st.acl_allows(node, conn, AclAction::Publish, topic.as_str()) => {}
                Read::Publish {
                    topic,
                    qos,
                    pid,
                    retain,
                    payload,
                    expires,
                } => {
                    if let (QoS::AtLeastOnce, Some(pid), false) = (qos, pid, expires) {
                        st.route_qos1(node, conn, &topic, pid, &payload);
                    }
                    if retain {
                        st.retain(node, &topic, qos, &payload);
                    }
                }
                Read::Unsubscribe(filters) => {
                    let Some(id) = st.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
                        continue;
                    };
                    if let Some(v) = st.subs.get_mut(&(node, id)) {
                        v.retain(|s| !filters.contains(&s.filter));
                    }
                }
                Read::Subscribe(mut filters) => {
                    let Some(id) = st.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
                        continue;
                    };
                    // filters the ACL refuses (SUBACK 0x80) subscribe to nothing
                    filters.retain(|s| {
                        st.acl_allows(node, conn, AclAction::Subscribe, s.filter.as_str())
                    });
                    let v = st.subs.entry((node, id.clone())).or_default();
                    // the filters whose retained messages are sent now
                    // (Retain Handling 0, or 1 for a new subscription)
                    let mut sends = Vec::with_capacity(filters.len());
                    for f in filters {
                        let existed = v.iter().any(|g| g.filter == f.filter);
                        v.retain(|g| g.filter != f.filter);
                        if match f.retain_handling {
                            RetainHandling::SendOnSubscribe => true,
                            RetainHandling::SendIfNew => !existed,
                            RetainHandling::DoNotSend => false,
                        } {
                            sends.push(f.filter.clone());
                        }
                        v.push(f);
                    }
                    let lo = (node, String::new());
                    for ((_, topic), &hash) in
                        st.retained.range(lo..).take_while(|(k, _)| k.0 == node)
                    {
                        let Ok(name) = TopicName::new(topic) else {
                            continue;
                        };
                        if sends.iter().any(|f| f.matches(&name)) {
                            st.owed_retained
                                .entry((node, id.clone(), topic.clone()))
                                .or_default()
                                .push(hash);
                        }
                    }
                }
            }
        }
    }

    /// The broker at `node` wrote `packet` into connection `conn`: a
    /// PUBLISH with RETAIN = 1 must carry the retained message its
    /// subscription was owed.
    pub fn mqtt_broker_sent(
        &mut self,
        now: SimTime,
        node: u32,
        conn: u64,
        packet: &[u8],
        flow: Option<u32>,
    ) {
        let Some(&first) = packet.first() else {
            return;
        };
        if first >> 4 != PUBLISH {
            return;
        }
        let v5 = self.mqtt.conns.get(&conn).is_some_and(|c| c.v5);
        // RETAIN is bit 0 of a PUBLISH's first byte; DUP (bit 3) resends
        // are not judged again (a 5.0 one is still read for its alias)
        let judged = first & 0x09 == 0x01;
        if !judged && !v5 {
            return;
        }
        let (topic, payload) = if v5 {
            let Ok(Some((Packet5::Publish(p), _))) = v5::decode(packet, usize::MAX) else {
                return;
            };
            let Some(c) = self.mqtt.conns.get_mut(&conn) else {
                return;
            };
            let topic = match (p.topic, p.props.topic_alias) {
                (Some(t), Some(a)) => {
                    c.alias_out.insert(a, t.clone());
                    t
                }
                (Some(t), None) => t,
                (None, Some(a)) => match c.alias_out.get(&a) {
                    Some(t) => t.clone(),
                    None => return,
                },
                (None, None) => return,
            };
            (topic, p.payload)
        } else {
            let Ok(Some((Packet::Publish(p), _))) = decode(packet, usize::MAX) else {
                return;
            };
            (p.topic, p.payload)
        };
        if !judged {
            return;
        }
        // a PUBLISH is judged only as a retained message for a new
        // subscription: with Retain As Published (5.0) on a matching
        // subscription, a forwarded one may carry RETAIN = 1 too
        let id = self.mqtt.conns.get(&conn).and_then(|c| c.client_id.clone());
        if let Some(id) = &id {
            let rap = self
                .mqtt
                .subs
                .get(&(node, id.clone()))
                .is_some_and(|v| v.iter().any(|s| s.rap && s.filter.matches(&topic)));
            if rap {
                return;
            }
        }
        let topic = topic.as_str();
        if topic.starts_with('$') || self.mqtt.unjudged.contains(&(node, topic.to_string())) {
            // the broker's own $SYS topics are retained inside it
            return;
        }
        let Some(id) = id else {
            return;
        };
        let key = (node, id.clone(), topic.to_string());
        let got = fnv(&payload);
        let expected = self.mqtt.owed_retained.get_mut(&key).map(|v| {
            let hit = v.iter().position(|&h| h == got).map(|i| v.remove(i));
            (hit.is_some(), v.is_empty())
        });
        match expected {
            Some((true, empty)) => {
                if empty {
                    self.mqtt.owed_retained.remove(&key);
                }
                return;
            }
            Some((false, _)) => {}
            None => {}
        }
        let expected = expected.map(|_| ());
        let detail = match expected {
            Some(_) => format!(
                "retained PUBLISH on {topic} to {id} carries {} bytes that are not the last retained message there when it subscribed",
                payload.len()
            ),
            None => format!(
                "retained PUBLISH on {topic} to {id} though no retained message was held there when it subscribed"
            ),
        };
        self.record(Violation {
            t: now,
            node,
            rule: Rule::MqttRetainedLast,
            flow,
            detail,
        });
    }

    /// The broker at `node` crashed: without persistence (`durable`
    /// false) its retained messages and sessions are gone.
    pub fn mqtt_broker_crash(&mut self, now: SimTime, node: u32, durable: bool) {
        let st = &mut self.mqtt;
        st.verdict.retain(|k, _| k.0 != node);
        st.broker_crash.insert(node, now);
        st.online.retain(|k, _| k.0 != node);
        if !durable {
            st.subs.retain(|k, _| k.0 != node);
        }
        if !durable {
            st.retained.retain(|k, _| k.0 != node);
            st.unjudged.retain(|k| k.0 != node);
            st.owed_retained.retain(|k, _| k.0 != node);
        }
    }

    /// The broker at `node` reports that the session of `client_id` on
    /// connection `conn` ended: its will is owed iff the CONNECT carried
    /// one and no DISCONNECT was received.
    pub fn mqtt_session_ended(&mut self, now: SimTime, node: u32, conn: u64, client_id: &str) {
        let key = (node, client_id.to_string());
        if self.mqtt.online.get(&key) == Some(&conn) {
            self.mqtt.online.remove(&key);
        }
        self.mqtt.disturbed.insert(key.clone(), now);
        let (will, disconnect, expiry) = match self.mqtt.conns.get(&conn) {
            Some(c) if c.client_id.as_deref() == Some(client_id) => {
                (c.will.clone(), c.disconnect, c.expiry)
            }
            Some(_) => return,
            None => match self.mqtt.ended.remove(&conn) {
                Some((_, id, will, disconnect, expiry)) if id == client_id => {
                    (will, disconnect, expiry)
                }
                _ => return,
            },
        };
        if expiry == 0 {
            // a clean session (expiry interval 0) ends with its connection
            self.mqtt.subs.remove(&key);
        }
        self.mqtt.session_end.insert(key.clone(), (now, expiry));
        let delayed = will.as_ref().is_some_and(|w| w.delay > 0);
        let owed = will.filter(|_| !disconnect);
        if delayed {
            self.mqtt.delayed.insert(key, owed);
        } else {
            self.mqtt.verdict.insert(key, owed);
        }
    }

    /// The broker at `node` published the will of `client_id` on `topic`.
    pub fn mqtt_will_published(
        &mut self,
        now: SimTime,
        node: u32,
        client_id: &str,
        topic: &str,
        flow: Option<u32>,
    ) {
        let key = (node, client_id.to_string());
        let verdict = match self.mqtt.verdict.remove(&key) {
            Some(v) => Some(v),
            None => self.mqtt.delayed.remove(&key),
        };
        if !matches!(verdict, Some(Some(_))) {
            // what it did to the topic's retained message is unknown
            let k = (node, topic.to_string());
            self.mqtt.retained.remove(&k);
            self.mqtt.unjudged.insert(k);
        }
        match verdict {
            // owed, now paid; a retained will is the topic's retained
            // message from now on
            Some(Some(w)) if w.retain => {
                let k = (node, w.topic);
                match w.payload {
                    Some(h) => self.mqtt.retained.insert(k, h),
                    None => self.mqtt.retained.remove(&k),
                };
            }
            Some(Some(_)) => {}
            Some(None) => self.record(Violation {
                t: now,
                node,
                rule: Rule::MqttWill,
                flow,
                detail: format!(
                    "will of {client_id} published though the broker received DISCONNECT on its connection (or its CONNECT carried no will)"
                ),
            }),
            // a connection not seen: not judged
            None => {}
        }
    }

    /// The broker at `node` finished handling what happened now: a will
    /// still owed was not published. `flow_of` attributes a client id.
    pub fn mqtt_wills_settled(
        &mut self,
        now: SimTime,
        node: u32,
        flow_of: impl Fn(&str) -> Option<u32>,
    ) {
        if !self.mqtt.ended.is_empty() {
            self.mqtt.ended.retain(|_, e| e.0 != node);
        }
        if self.mqtt.verdict.is_empty() {
            return;
        }
        let lo = (node, String::new());
        let keys: Vec<((u32, String), bool)> = self
            .mqtt
            .verdict
            .range(lo..)
            .take_while(|(k, _)| k.0 == node)
            .map(|(k, o)| (k.clone(), o.is_some()))
            .collect();
        for (k, owed) in keys {
            self.mqtt.verdict.remove(&k);
            if !owed {
                continue;
            }
            let flow = flow_of(&k.1);
            self.record(Violation {
                t: now,
                node,
                rule: Rule::MqttWill,
                flow,
                detail: format!(
                    "connection of {} ended without DISCONNECT, its will was not published",
                    k.1
                ),
            });
        }
    }

    /// Connection `conn`'s socket at `node` is gone (what the broker says
    /// about its end next is still judged).
    pub fn mqtt_forget(&mut self, node: u32, conn: u64) {
        if let Some(c) = self.mqtt.conns.remove(&conn) {
            if let Some(id) = c.client_id {
                self.mqtt
                    .ended
                    .insert(conn, (node, id, c.will, c.disconnect, c.expiry));
            }
        }
        if !self.mqtt.unacked.is_empty() {
            let gone: Vec<_> = self
                .mqtt
                .unacked
                .range((conn, 0)..=(conn, u16::MAX))
                .map(|(k, _)| *k)
                .collect();
            for k in gone {
                self.mqtt.unacked.remove(&k);
            }
        }
    }
}
