//! MQTT-SN v1.2 (Stanford-Clark & Truong, IBM, 14 November 2013) as sans-IO
//! state machines: a [`Client`], a [`Gateway`] (transparent, aggregating or
//! integrated) and a [`Forwarder`], plus the codec they share.
//!
//! Read first: MQTT-SN 1.2 §4 (architecture: transparent and aggregating
//! gateways, forwarders), §5.2 (message header: Length, MsgType), §5.3
//! (fields: Flags, TopicIdType, ReturnCode), §5.4 (the messages), §5.5
//! (forwarder encapsulation), §6.1 (gateway advertisement and discovery),
//! §6.2–§6.4 (connection set-up, clean session, will updates), §6.5–§6.7
//! (topic registration, short and predefined topics), §6.8 (publish,
//! QoS −1), §6.9–§6.10 (subscribe, gateway's publish), §6.11 (keep alive),
//! §6.12 (disconnect), §6.13 (retransmission: T_RETRY, N_RETRY), §6.14
//! (sleeping clients), §7 (implementation notes: timer values). Rules are
//! cited as `// MQTT-SN 1.2 §x.y` where they are enforced; docs/mqttsn.md
//! lists them with the defaults.
//!
//! * [`types`] — message types, QoS (with −1), topic id types, return codes.
//! * [`codec`] — [`decode`] into borrowed [`Message`] views, [`Message::encode`].
//! * [`client`] — the client: discovery, connect and will, registration,
//!   publish and subscribe, keep alive, failover, sleep.
//! * [`gateway`] — the gateway: UDP side for many clients, MQTT side
//!   through [`crate::proto::mqtt::Client`]s (or none when integrated).
//! * [`forwarder`] — the forwarder encapsulation (§5.5).
//!
//! Every state machine implements [`crate::proto::SansIo`].

pub mod client;
pub mod codec;
pub mod forwarder;
pub mod gateway;
pub mod socket;
pub mod types;

pub use client::{
    Client, ClientConfig, ClientError, ClientEvent, ClientState, ClientStats, ClientTransmit,
    FoundBy, LostReason, MessageHandle, PublishTopicType, RequestHandle, Will,
};
pub use codec::{
    decode, nalp_form, DecodeError, EncodeError, Message, MAX_MESSAGE_LEN, NALP_MAX_SHORT,
    PROTOCOL_ID,
};
pub use forwarder::{Forwarder, ForwarderConfig, ForwarderStats, ForwarderTransmit};
pub use gateway::{
    Fate, Gateway, GatewayConfig, GatewayEvent, GatewayInput, GatewayMode, GatewayStats,
    GatewayTransmit, Upstream,
};
pub use types::{
    MsgType, Qos, ReturnCode, SubTopic, TopicIdType, TopicRef, TypeCounters, TypeStats, WillTopic,
    MSG_TYPES,
};

use crate::net::addr::{Addr, SockAddr};

/// Default MQTT-SN UDP port (the spec assigns none; DESIGN.md: 1883, so
/// `tshark -d udp.port==1883,mqttsn` decodes it).
pub const DEFAULT_PORT: u16 = 1883;

/// The broadcast destination on `port`.
pub fn broadcast(port: u16) -> SockAddr {
    SockAddr::new(Addr::BROADCAST, port)
}

/// GwAdd / Wireless Node Id encoding of a [`SockAddr`] used by these cores:
/// the 4 address bytes (IPv4 address, or the plan's IPv6 handle) then the
/// port, big-endian (6 octets). The spec leaves the format to the network
/// (§5.3.5, §5.5).
pub fn sockaddr_bytes(a: SockAddr) -> [u8; 6] {
    let b = a.addr.to_bits().to_be_bytes();
    let p = a.port.to_be_bytes();
    [b[0], b[1], b[2], b[3], p[0], p[1]]
}

/// Inverse of [`sockaddr_bytes`]; `None` unless exactly 6 octets.
pub fn sockaddr_from_bytes(b: &[u8]) -> Option<SockAddr> {
    match b {
        [a, b2, c, d, p0, p1] => Some(SockAddr::new(
            Addr::from_bits(u32::from_be_bytes([*a, *b2, *c, *d])),
            u16::from_be_bytes([*p0, *p1]),
        )),
        _ => None,
    }
}

/// Push onto a queue that is mostly empty or holds one item: start it at
/// one slot, not the four a first push reserves (thousands of clients and
/// gateway sessions each keep their queues' capacity for the whole run).
pub(crate) fn push1<T>(q: &mut std::collections::VecDeque<T>, x: T) {
    if q.capacity() == 0 {
        q.reserve_exact(1);
    }
    q.push_back(x);
}

/// Pop from a queue that is empty between messages (a client's outgoing
/// messages, events, publishes waiting for their turn) and free its buffer
/// once it is empty, so thousands of idle clients hold no queue memory; the
/// next [`push1`] allocates one slot again.
pub(crate) fn pop1<T>(q: &mut std::collections::VecDeque<T>) -> Option<T> {
    let x = q.pop_front();
    if q.is_empty() && q.capacity() > 0 {
        *q = std::collections::VecDeque::new();
    }
    x
}

/// [`push1`] for a `Vec` (topic tables that mostly hold one entry).
pub(crate) fn push1v<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(x);
}
