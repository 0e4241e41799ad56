//! The sans-IO MQTT-SN forwarder (MQTT-SN 1.2 §4, §5.5).
//!
//! A forwarder sits between clients (on its wireless side) and a gateway
//! (over UDP). It does not interpret client messages: every datagram from
//! a client is encapsulated — Length (3 + node id length), MsgType 0xFE,
//! Ctrl (Radius in bits 1–0), Wireless Node Id (the client's address as
//! [`super::sockaddr_bytes`], 6 octets), then the client's message — and
//! sent to the gateway. Encapsulated messages from the gateway are
//! decapsulated and the inner message sent to the client the Wireless Node
//! Id names. A node id naming the broadcast address asks for a broadcast
//! on the wireless side: the forwarder's hop consumes one unit of Radius,
//! so it is sent only when the Ctrl Radius is at least 1 (Radius 0 is
//! dropped and counted). Towards the gateway the Ctrl Radius is the
//! configured one.
//!
//! Driver shape ([`SansIo`]): `handle_input` with a [`Datagram`], then
//! `poll_transmit` until `None`; the forwarder has no events and no timers.
//! Transmit buffers are recycled: no allocation per datagram in steady
//! state.

use std::collections::VecDeque;

use crate::net::addr::SockAddr;
use crate::proto::{Datagram, SansIo};
use crate::sim::SimTime;

use super::codec::{self, Message};
use super::types::MsgType;
use super::{broadcast, sockaddr_bytes, sockaddr_from_bytes, DEFAULT_PORT};

/// Forwarder options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// The gateway the forwarder talks to.
    pub gateway: SockAddr,
    /// MQTT-SN port on the wireless side (broadcast destination).
    pub port: u16,
    /// Ctrl Radius written on encapsulated client messages (0–3). Default 1.
    pub radius: u8,
}

impl ForwarderConfig {
    pub fn new(gateway: SockAddr) -> Self {
        ForwarderConfig {
            gateway,
            port: DEFAULT_PORT,
            radius: 1,
        }
    }
}

/// What `poll_transmit` wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwarderTransmit {
    pub to: SockAddr,
    pub len: usize,
    /// 0xFE towards the gateway; the inner type towards a client.
    pub kind: MsgType,
    /// The encapsulated message's type.
    pub inner: MsgType,
}

/// Forwarder counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwarderStats {
    /// Client messages encapsulated towards the gateway.
    pub encapsulated: u64,
    /// Gateway messages decapsulated towards clients.
    pub decapsulated: u64,
    pub bytes_to_gateway: u64,
    pub bytes_to_clients: u64,
    /// Malformed datagrams (either side).
    pub decode_errors: u64,
    /// Broadcasts dropped because their Radius was 0.
    pub radius_exhausted: u64,
    /// Datagrams from the gateway that were not encapsulated, or node ids
    /// of an unknown format.
    pub ignored: u64,
}

#[derive(Debug)]
struct Out {
    to: SockAddr,
    bytes: Vec<u8>,
    kind: MsgType,
    inner: MsgType,
}

/// The forwarder.
#[derive(Debug)]
pub struct Forwarder {
    config: ForwarderConfig,
    outq: VecDeque<Out>,
    spare: Vec<Vec<u8>>,
    stats: ForwarderStats,
}

impl Forwarder {
    pub fn new(config: ForwarderConfig) -> Self {
        Forwarder {
            config,
            outq: VecDeque::new(),
            spare: Vec::new(),
            stats: ForwarderStats::default(),
        }
    }
    pub fn config(&self) -> &ForwarderConfig {
        &self.config
    }
    pub fn stats(&self) -> &ForwarderStats {
        &self.stats
    }

    fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b
    }

    fn on_client(&mut self, from: SockAddr, data: &[u8]) {
        // Only whole, valid messages are relayed (a malformed one would be
        // refused by the gateway anyway, §5.5 requires a whole message).
        let inner = match codec::decode(data) {
            Ok(Message::Encapsulated { .. }) => {
                self.stats.ignored += 1;
                return;
            }
            Ok(m) => m.msg_type(),
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        let node = sockaddr_bytes(from);
        let m = Message::Encapsulated {
            radius: self.config.radius & 0x03,
            node_id: &node,
            inner: data,
        };
        let mut b = self.buffer();
        if m.encode(&mut b).is_err() {
            self.stats.decode_errors += 1;
            self.spare.push(b);
            return;
        }
        self.stats.encapsulated += 1;
        self.stats.bytes_to_gateway += b.len() as u64;
        self.outq.push_back(Out {
            to: self.config.gateway,
            bytes: b,
            kind: MsgType::Encapsulated,
            inner,
        });
    }

    fn on_gateway(&mut self, data: &[u8]) {
        let (radius, node_id, inner) = match codec::decode(data) {
            Ok(Message::Encapsulated {
                radius,
                node_id,
                inner,
            }) => (radius, node_id, inner),
            Ok(_) => {
                self.stats.ignored += 1;
                return;
            }
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        let Some(to) = sockaddr_from_bytes(node_id) else {
            self.stats.ignored += 1;
            return;
        };
        let to = if to.addr.is_broadcast() {
            // MQTT-SN 1.2 §5.5: Radius is the broadcast radius.
            if radius == 0 {
                self.stats.radius_exhausted += 1;
                return;
            }
            broadcast(self.config.port)
        } else {
            to
        };
        let kind = codec::decode(inner).map_or(MsgType::Encapsulated, |m| m.msg_type());
        let mut b = self.buffer();
        b.extend_from_slice(inner);
        self.stats.decapsulated += 1;
        self.stats.bytes_to_clients += b.len() as u64;
        self.outq.push_back(Out {
            to,
            bytes: b,
            kind,
            inner: kind,
        });
    }
}

impl SansIo for Forwarder {
    type Input<'a> = Datagram<'a>;
    type Transmit = ForwarderTransmit;
    type Event = ();

    fn handle_input(&mut self, _now: SimTime, input: Datagram<'_>) {
        if input.from == self.config.gateway {
            self.on_gateway(input.data);
        } else {
            self.on_client(input.from, input.data);
        }
    }

    fn poll_transmit(&mut self, _now: SimTime, buf: &mut Vec<u8>) -> Option<ForwarderTransmit> {
        let o = self.outq.pop_front()?;
        buf.extend_from_slice(&o.bytes);
        let t = ForwarderTransmit {
            to: o.to,
            len: o.bytes.len(),
            kind: o.kind,
            inner: o.inner,
        };
        if self.spare.len() < 16 {
            self.spare.push(o.bytes);
        }
        Some(t)
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn poll_timeout(&self) -> Option<SimTime> {
        None
    }

    fn handle_timeout(&mut self, _now: SimTime) {}
}
