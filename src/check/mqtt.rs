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
//!
//! State per connection (dropped when its socket is released): the
//! partial packet being read, the identifiers in flight, and on the
//! broker's side the CONNECT's client id and will flag and whether
//! DISCONNECT arrived; per broker, the wills owed by connections that
//! ended in the current step (settled by the end of that step).

use super::{Monitors, Rule, Violation};
use crate::sim::SimTime;
use std::collections::{BTreeMap, HashMap};

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
    will: bool,
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
    /// (broker node, client id, will owed).
    ended: BTreeMap<u64, (u32, String, bool)>,
    /// (broker node, client id) → whether its will is owed, for the
    /// connections the broker reported ended in the current step.
    verdict: BTreeMap<(u32, String), bool>,
}

/// MQTT control packet types (§2.2.1) the rules read.
const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBCOMP: u8 = 7;
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

/// Client id and will flag of a CONNECT's variable header and payload.
fn connect_info(body: &[u8]) -> Option<(String, bool)> {
    let plen = usize::from(u16_at(body, 0)?);
    // protocol name, level, flags, keep alive
    let flags = *body.get(2 + plen + 1)?;
    let at = 2 + plen + 4;
    let clen = usize::from(u16_at(body, at)?);
    let id = body.get(at + 2..at + 2 + clen)?;
    Some((String::from_utf8_lossy(id).into_owned(), flags & 0x04 != 0))
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

    /// `data` was read from connection `conn` (its socket id).
    pub fn mqtt_received(&mut self, conn: u64, data: &[u8]) {
        let c = self.mqtt.conns.entry(conn).or_default();
        if c.broken {
            return;
        }
        c.rx.extend_from_slice(data);
        let mut at = 0;
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
                CONNECT => {
                    if let Some((id, will)) = connect_info(body) {
                        c.client_id = Some(id);
                        c.will = will;
                    }
                }
                DISCONNECT => c.disconnect = true,
                _ => {}
            }
            at += h + len;
        }
        c.rx.drain(..at);
        if c.broken {
            c.rx = Vec::new();
        }
    }

    /// The broker at `node` reports that the session of `client_id` on
    /// connection `conn` ended: its will is owed iff the CONNECT carried
    /// one and no DISCONNECT was received.
    pub fn mqtt_session_ended(&mut self, node: u32, conn: u64, client_id: &str) {
        let owed = match self.mqtt.conns.get(&conn) {
            Some(c) if c.client_id.as_deref() == Some(client_id) => c.will && !c.disconnect,
            Some(_) => return,
            None => match self.mqtt.ended.remove(&conn) {
                Some((_, id, owed)) if id == client_id => owed,
                _ => return,
            },
        };
        self.mqtt
            .verdict
            .insert((node, client_id.to_string()), owed);
    }

    /// The broker at `node` published the will of `client_id`.
    pub fn mqtt_will_published(
        &mut self,
        now: SimTime,
        node: u32,
        client_id: &str,
        flow: Option<u32>,
    ) {
        let key = (node, client_id.to_string());
        if self.mqtt.verdict.get(&key) != Some(&false) {
            // owed (now paid), or a connection not seen: not judged
            self.mqtt.verdict.remove(&key);
            return;
        }
        self.mqtt.verdict.remove(&key);
        self.record(Violation {
            t: now,
            node,
            rule: Rule::MqttWill,
            flow,
            detail: format!(
                "will of {client_id} published though the broker received DISCONNECT on its connection"
            ),
        });
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
            .map(|(k, &o)| (k.clone(), o))
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
                    .insert(conn, (node, id, c.will && !c.disconnect));
            }
        }
    }
}
