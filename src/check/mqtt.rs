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
use crate::proto::mqtt::{decode, Packet};
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
    /// (broker node, client id, will, DISCONNECT received).
    ended: BTreeMap<u64, (u32, String, Option<Will>, bool)>,
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
}

/// MQTT control packet types (§2.2.1) the rules read.
const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
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

impl Monitors {
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
    pub fn mqtt_received(&mut self, conn: u64, data: &[u8], broker: Option<u32>) {
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
                CONNECT | PUBLISH | SUBSCRIBE if broker.is_some() => {
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
                    c.will = k.will.map(|w| Will {
                        topic: w.topic.as_str().to_string(),
                        payload: (!w.message.is_empty()).then(|| fnv(&w.message)),
                        retain: w.retain,
                    });
                    c.client_id = Some(k.client_id);
                }
                Packet::Publish(p) if p.retain => {
                    let key = (node, p.topic.as_str().to_string());
                    if p.qos_pid.pid().is_some()
                        && p.qos_pid.qos() == crate::proto::mqtt::QoS::ExactlyOnce
                    {
                        st.retained.remove(&key);
                        st.unjudged.insert(key);
                    } else if p.payload.is_empty() {
                        st.retained.remove(&key);
                    } else {
                        st.retained.insert(key, fnv(&p.payload));
                    }
                }
                Packet::Subscribe(sub) => {
                    let Some(id) = st.conns.get(&conn).and_then(|c| c.client_id.clone()) else {
                        continue;
                    };
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
    pub fn mqtt_broker_crash(&mut self, node: u32, durable: bool) {
        let st = &mut self.mqtt;
        st.verdict.retain(|k, _| k.0 != node);
        if !durable {
            st.retained.retain(|k, _| k.0 != node);
            st.unjudged.retain(|k| k.0 != node);
            st.owed_retained.retain(|k, _| k.0 != node);
        }
    }

    /// The broker at `node` reports that the session of `client_id` on
    /// connection `conn` ended: its will is owed iff the CONNECT carried
    /// one and no DISCONNECT was received.
    pub fn mqtt_session_ended(&mut self, node: u32, conn: u64, client_id: &str) {
        let owed = match self.mqtt.conns.get(&conn) {
            Some(c) if c.client_id.as_deref() == Some(client_id) => {
                c.will.clone().filter(|_| !c.disconnect)
            }
            Some(_) => return,
            None => match self.mqtt.ended.remove(&conn) {
                Some((_, id, will, disconnect)) if id == client_id => will.filter(|_| !disconnect),
                _ => return,
            },
        };
        self.mqtt
            .verdict
            .insert((node, client_id.to_string()), owed);
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
                    .insert(conn, (node, id, c.will, c.disconnect));
            }
        }
    }
}
