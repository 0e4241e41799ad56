//! MQTT 3.1.1 (OASIS Standard, 29 October 2014) as sans-IO state machines:
//! one [`Broker`] serving many connections and one [`Client`] per
//! connection, plus the codec they share and a real-socket driver.
//!
//! Read first: MQTT 3.1.1 §1.5 (data representation), §2 (fixed header,
//! packet identifiers), §3 (the 14 control packets), §4.1 (session state),
//! §4.3 (QoS 0/1/2 flows), §4.4 (message delivery retry), §4.6 (ordering),
//! §4.7 (topic names, filters, wildcards), §4.8 (handling errors).
//! Rules enforced are cited as `[MQTT-x.y.z-n]` where they are checked;
//! docs/mqtt.md lists them and the options.
//!
//! * [`packet`] — packet types ([`Packet`], [`Publish`], [`QoS`], …).
//! * [`codec`] — streaming [`decode`], [`Packet::encode`], exact lengths.
//! * [`topic`] — validated [`TopicName`] / [`TopicFilter`], [`matches()`].
//! * [`subtree`] — the broker's subscription trie.
//! * [`acl`] — access control: [`Acl`] rules on publish and subscribe.
//! * [`config`] — [`BrokerConfig`], [`ClientConfig`] with defaults.
//! * [`events`] — transmits, events, counters, errors.
//! * [`broker`], [`session`] — the broker and its per-client state.
//! * [`client`] — the client.
//! * [`socket`] — drivers over real TCP sockets (interop tests).

pub mod acl;
pub mod broker;
pub mod client;
pub mod codec;
pub mod config;
pub mod events;
pub mod packet;
pub mod session;
#[cfg(feature = "native")]
pub mod socket;
pub mod subtree;
pub mod topic;
pub mod v5;

pub use acl::{Acl, AclAction, AclRule, DenyPublish, Refusal};
pub use broker::{Broker, BrokerInput, SessionInfo};
pub use client::{Client, ClientState, ServerLimits};
pub use codec::{decode, encode_publish, publish_len, DecodeError, EncodeError};
pub use config::{
    BrokerConfig, BrokerV5Config, ClientConfig, MqttVersion, Persistence, Qos2Forward, Reconnect,
};
pub use events::{
    BrokerEvent, BrokerStats, BrokerTransmit, ClientError, ClientEvent, ClientStats,
    ClientTransmit, ConnId, DisconnectReason, DropReason, LostReason, MessageHandle,
    ProtocolViolation, RequestHandle,
};
pub use packet::{
    Ack, ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PacketId, PacketType,
    ProtocolLevel, Publish, QoS, QosPid, SubAck, SubAckReturn, Subscribe, Unsubscribe,
};
pub use topic::{matches, TopicError, TopicFilter, TopicName};
