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
//! State per connection (dropped when its socket is released): the
//! partial packet being read, the identifiers in flight, and on the
//! broker's side the CONNECT's client id, clean-session flag and will and
//! whether DISCONNECT arrived; per broker, the wills owed by connections
//! that ended in the current step (settled by the end of that step), the
//! retained payloads (hashed) by topic, and per session the payloads
//! owed to it by its SUBSCRIBEs until sent.

use super::coap::fnv;
use super::{Monitors, Rule, Violation};
use crate::proto::mqtt::{decode, AclAction, Packet, TopicFilter};
use crate::sim::SimTime;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A will as the CONNECT carried it.
#[derive(Debug, Clone)]
struct Will {
    topic: String,
    /// Hash of the message (`None`: zero bytes).
    payload: Option<u64>,
    retain: bool,
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
    /// Its CONNECT's CleanSession flag.
    clean: bool,
    will: Option<Will>,
    disconnect: bool,
    /// Broken framing: nothing more is read on this connection.
    broken: bool,
}

#[derive(Debug, Default)]
pub(super) struct MqttState {
    /// By socket id; looked up only, never iterated.
    conns: HashMap<u64, Conn>,
    /// Broker-side connections whose socket was released before the
    /// broker reported their end (it does in the same step): socket id →
    /// (broker node, client id, will, DISCONNECT received, CleanSession).
    ended: BTreeMap<u64, (u32, String, Option<Will>, bool, bool)>,
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
    /// (broker node, client id) → the session's subscriptions (filter,
    /// requested QoS) as its SUBSCRIBE and UNSUBSCRIBE packets made them.
    subs: BTreeMap<(u32, String), Vec<(TopicFilter, u8)>>,
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
    let mut len = 0usize;
    for i in 0..4 {
        let x = *b.get(1 + i)?;
        len |= usize::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some(Ok((2 + i, len)));
        }
    }
    Some(Err(()))
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
    /// A retained PUBLISH the broker at `node` read: the topic's retained
    /// message from now on.
    fn retain(&mut self, node: u32, p: &crate::proto::mqtt::Publish) {
        let key = (node, p.topic.as_str().to_string());
        if p.qos_pid.qos() == crate::proto::mqtt::QoS::ExactlyOnce {
            self.retained.remove(&key);
            self.unjudged.insert(key);
        } else if p.payload.is_empty() {
            self.retained.remove(&key);
        } else {
            self.retained.insert(key, fnv(&p.payload));
        }
    }

    /// A QoS 1 PUBLISH the broker at `node` read on `conn`: the sessions
    /// it is routed to now (connected, a matching subscription at QoS ≥ 1
    /// — a QoS 0 one downgrades it, [MQTT-3.8.4-6]), held until the
    /// broker's PUBACK.
    fn route_qos1(&mut self, node: u32, conn: u64, p: &crate::proto::mqtt::Publish) {
        let (Some(pid), Some((flow, msg))) = (
            p.qos_pid.pid(),
            crate::app::workload::parse_payload(&p.payload),
        ) else {
            return;
        };
        let lo = (node, String::new());
        let to: Vec<String> = self
            .subs
            .range(lo..)
            .take_while(|(k, _)| k.0 == node)
            .filter(|(k, v)| {
                self.online.contains_key(*k)
                    && v.iter().any(|(f, q)| *q >= 1 && f.matches(&p.topic))
            })
            .map(|(k, _)| k.1.clone())
            .collect();
        if !to.is_empty() {
            self.unacked.insert((conn, pid.get()), (flow, msg, to));
        }
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
        while at < c.rx.len() {
            let (h, len) = match frame(&c.rx[at..]) {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(())) => {
                    c.broken = true;
                    break;
                }
            };
            if c.rx.len() - at < h + len {
                break;
            }
            let first = c.rx[at];
            let body = &c.rx[at + h..at + h + len];
            match first >> 4 {
                PUBACK | PUBCOMP => {
                    if let Some(pid) = u16_at(body, 0) {
                        let qos = if first >> 4 == PUBACK { 1 } else { 2 };
                        if c.out.get(&pid) == Some(&qos) {
                            c.out.remove(&pid);
                        }
                    }
                }
                DISCONNECT => c.disconnect = true,
                CONNECT | PUBLISH | SUBSCRIBE | UNSUBSCRIBE if broker.is_some() => {
                    // what the broker reads, decoded as it decodes it (a
                    // packet it cannot decode it does not act on)
                    if let Ok(Some((p, _))) = decode(&c.rx[at..at + h + len], usize::MAX) {
                        decoded.push(p);
                    }
                }
                _ => {}
            }
            at += h + len;
        }
        c.rx.drain(..at);
        if c.broken {
            c.rx = Vec::new();
        }
        let Some(node) = broker else {
            return;
        };
        for p in decoded {
            match p {
                Packet::Connect(k) => {
                    if k.clean_session {
                        let s = (node, k.client_id.clone());
                        st.subs.remove(&s);
                        st.disturbed.insert(s, now);
                        // a clean session owes nothing from an older one
                        let lo = (node, k.client_id.clone(), String::new());
                        let gone: Vec<_> = st
                            .owed_retained
                            .range(lo..)
                            .take_while(|(x, _)| x.0 == node && x.1 == k.client_id)
                            .map(|(x, _)| x.clone())
                            .collect();
                        for x in gone {
                            st.owed_retained.remove(&x);
                        }
                    }
                    let c = st.conns.entry(conn).or_default();
                    c.clean = k.clean_session;
                    c.client_id = Some(k.client_id);
                    c.username = k.username;
                    let will = k
                        .will
                        .filter(|w| st.acl_allows(node, conn, AclAction::Will, w.topic.as_str()));
                    let c = st.conns.entry(conn).or_default();
                    c.will = will.map(|w| Will {
                        topic: w.topic.as_str().to_string(),
                        payload: (!w.message.is_empty()).then(|| fnv(&w.message)),
                        retain: w.retain,
                    });
                }
                // a PUBLISH the ACL refuses is routed nowhere, stored nowhere
                Packet::Publish(p)
                    if !st.acl_allows(node, conn, AclAction::Publish, p.topic.as_str()) => {}
                Packet::Publish(p) if p.qos_pid.qos() == crate::proto::mqtt::QoS::AtLeastOnce => {
                    st.route_qos1(node, conn, &p);
                    if p.retain {
                        st.retain(node, &p);
                    }
                }
                Packet::Publish(p) if p.retain => st.retain(node, &p),
                Packet::Unsubscribe(u) => {
                    let Some(id) = st.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
                        continue;
                    };
                    if let Some(v) = st.subs.get_mut(&(node, id)) {
                        v.retain(|(f, _)| !u.filters.contains(f));
                    }
                }
                Packet::Publish(_) => {}
                Packet::Subscribe(mut sub) => {
                    let Some(id) = st.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
                        continue;
                    };
                    // filters the ACL refuses (SUBACK 0x80) subscribe to nothing
                    sub.filters.retain(|(f, _)| {
                        st.acl_allows(node, conn, AclAction::Subscribe, f.as_str())
                    });
                    let v = st.subs.entry((node, id.clone())).or_default();
                    for (f, q) in &sub.filters {
                        v.retain(|(g, _)| g != f);
                        v.push((f.clone(), q.as_u8()));
                    }
                    let lo = (node, String::new());
                    for ((_, topic), &hash) in
                        st.retained.range(lo..).take_while(|(k, _)| k.0 == node)
                    {
                        let Ok(name) = crate::proto::mqtt::TopicName::new(topic) else {
                            continue;
                        };
                        if sub.filters.iter().any(|(f, _)| f.matches(&name)) {
                            st.owed_retained
                                .entry((node, id.clone(), topic.clone()))
                                .or_default()
                                .push(hash);
                        }
                    }
                }
                _ => {}
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
        // RETAIN is bit 0 of a PUBLISH's first byte; DUP (bit 3) resends
        // are not judged again
        if packet
            .first()
            .is_none_or(|&b| b >> 4 != PUBLISH || b & 0x09 != 0x01)
        {
            return;
        }
        let Ok(Some((Packet::Publish(p), _))) = decode(packet, usize::MAX) else {
            return;
        };
        let topic = p.topic.as_str();
        if topic.starts_with('$') || self.mqtt.unjudged.contains(&(node, topic.to_string())) {
            // the broker's own $SYS topics are retained inside it
            return;
        }
        let Some(id) = self.mqtt.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
            return;
        };
        let key = (node, id.clone(), topic.to_string());
        let got = fnv(&p.payload);
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
                p.payload.len()
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
        let (will, disconnect, clean) = match self.mqtt.conns.get(&conn) {
            Some(c) if c.client_id.as_deref() == Some(client_id) => {
                (c.will.clone(), c.disconnect, c.clean)
            }
            Some(_) => return,
            None => match self.mqtt.ended.remove(&conn) {
                Some((_, id, will, disconnect, clean)) if id == client_id => {
                    (will, disconnect, clean)
                }
                _ => return,
            },
        };
        if clean {
            // a clean session ends with its connection
            self.mqtt.subs.remove(&key);
        }
        let owed = will.filter(|_| !disconnect);
        self.mqtt.verdict.insert(key, owed);
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
        let verdict = self.mqtt.verdict.remove(&key);
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
                    .insert(conn, (node, id, c.will, c.disconnect, c.clean));
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
