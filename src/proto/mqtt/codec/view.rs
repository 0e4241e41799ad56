//! Borrowed views of decoded MQTT 3.1.1 packets: what [`super::decode_view`]
//! returns. A view holds slices of the receive buffer, so decoding one
//! allocates nothing; every field was validated when the view was made
//! (fields are private so no view holds unchecked text), and
//! [`PacketView::to_packet`] builds the owned [`Packet`] without checking
//! again. [`super::decode`] is `decode_view` followed by `to_packet`: one
//! parser.

use std::sync::Arc;

use super::super::packet::{
    Ack, ConnAck, Connect, LastWill, Packet, PacketId, PacketType, ProtocolLevel, Publish, QoS,
    QosPid, SubAck, SubAckReturn, Subscribe, Unsubscribe,
};
use super::super::topic::{TopicFilter, TopicName};
use super::Reader;

/// A will message in a [`ConnectView`] (§3.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastWillView<'a> {
    pub(super) topic: &'a str,
    pub(super) message: &'a [u8],
    pub(super) qos: QoS,
    pub(super) retain: bool,
}

impl<'a> LastWillView<'a> {
    /// The will topic, a valid topic name.
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    pub fn message(&self) -> &'a [u8] {
        self.message
    }
    pub fn qos(&self) -> QoS {
        self.qos
    }
    pub fn retain(&self) -> bool {
        self.retain
    }
    /// The owned form.
    pub fn to_last_will(&self) -> LastWill {
        LastWill {
            topic: TopicName::from_checked(self.topic),
            message: Arc::from(self.message),
            qos: self.qos,
            retain: self.retain,
        }
    }
}

/// CONNECT (§3.1), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectView<'a> {
    pub(super) protocol: ProtocolLevel,
    pub(super) clean_session: bool,
    pub(super) keep_alive: u16,
    pub(super) client_id: &'a str,
    pub(super) will: Option<LastWillView<'a>>,
    pub(super) username: Option<&'a str>,
    pub(super) password: Option<&'a [u8]>,
}

impl<'a> ConnectView<'a> {
    pub fn protocol(&self) -> ProtocolLevel {
        self.protocol
    }
    pub fn clean_session(&self) -> bool {
        self.clean_session
    }
    /// Seconds; 0 turns the mechanism off (§3.1.2.10).
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }
    pub fn will(&self) -> Option<LastWillView<'a>> {
        self.will
    }
    pub fn username(&self) -> Option<&'a str> {
        self.username
    }
    pub fn password(&self) -> Option<&'a [u8]> {
        self.password
    }
    /// The owned form.
    pub fn to_connect(&self) -> Connect {
        Connect {
            protocol: self.protocol,
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            client_id: self.client_id.to_string(),
            will: self.will.map(|w| w.to_last_will()),
            username: self.username.map(str::to_string),
            password: self.password.map(<[u8]>::to_vec),
        }
    }
}

/// PUBLISH (§3.3), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishView<'a> {
    pub(super) dup: bool,
    pub(super) qos_pid: QosPid,
    pub(super) retain: bool,
    pub(super) topic: &'a str,
    pub(super) payload: &'a [u8],
}

impl<'a> PublishView<'a> {
    pub fn dup(&self) -> bool {
        self.dup
    }
    pub fn qos_pid(&self) -> QosPid {
        self.qos_pid
    }
    pub fn retain(&self) -> bool {
        self.retain
    }
    /// The topic, a valid topic name (no wildcards, not empty).
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// The owned form.
    pub fn to_publish(&self) -> Publish {
        Publish {
            dup: self.dup,
            qos_pid: self.qos_pid,
            retain: self.retain,
            topic: TopicName::from_checked(self.topic),
            payload: Arc::from(self.payload),
        }
    }
}

/// SUBSCRIBE (§3.8), borrowed: the validated payload, read again by
/// [`SubscribeView::filters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscribeView<'a> {
    pub(super) pid: PacketId,
    pub(super) payload: &'a [u8],
}

impl<'a> SubscribeView<'a> {
    pub fn pid(&self) -> PacketId {
        self.pid
    }
    /// The (filter, requested QoS) pairs in packet order; at least one.
    pub fn filters(&self) -> impl Iterator<Item = (&'a str, QoS)> + 'a {
        let mut r = Reader::new(self.payload, "SUBSCRIBE");
        // Validated by `decode_view`; a failed read (impossible) ends the walk.
        std::iter::from_fn(move || {
            if r.remaining() == 0 {
                return None;
            }
            let f = r.str("topic filter").ok()?;
            let q = QoS::from_u8(r.u8("requested QoS").ok()?)?;
            Some((f, q))
        })
    }
    /// The owned form.
    pub fn to_subscribe(&self) -> Subscribe {
        Subscribe {
            pid: self.pid,
            filters: self
                .filters()
                .map(|(f, q)| (TopicFilter::from_checked(f), q))
                .collect(),
        }
    }
}

/// SUBACK (§3.9), borrowed: the validated return codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAckView<'a> {
    pub(super) pid: PacketId,
    pub(super) codes: &'a [u8],
}

impl<'a> SubAckView<'a> {
    pub fn pid(&self) -> PacketId {
        self.pid
    }
    /// The return codes in packet order.
    pub fn codes(&self) -> impl Iterator<Item = SubAckReturn> + 'a {
        self.codes.iter().filter_map(|&c| SubAckReturn::from_u8(c))
    }
    /// The owned form.
    pub fn to_suback(&self) -> SubAck {
        SubAck {
            pid: self.pid,
            codes: self.codes().collect(),
        }
    }
}

/// UNSUBSCRIBE (§3.10), borrowed: the validated payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsubscribeView<'a> {
    pub(super) pid: PacketId,
    pub(super) payload: &'a [u8],
}

impl<'a> UnsubscribeView<'a> {
    pub fn pid(&self) -> PacketId {
        self.pid
    }
    /// The topic filters in packet order; at least one.
    pub fn filters(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.payload, "UNSUBSCRIBE");
        std::iter::from_fn(move || {
            if r.remaining() == 0 {
                return None;
            }
            r.str("topic filter").ok()
        })
    }
    /// The owned form.
    pub fn to_unsubscribe(&self) -> Unsubscribe {
        Unsubscribe {
            pid: self.pid,
            filters: self.filters().map(TopicFilter::from_checked).collect(),
        }
    }
}

/// Any MQTT 3.1.1 control packet, borrowed from the bytes it was decoded
/// from. The packets without variable-length fields are the owned types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketView<'a> {
    Connect(ConnectView<'a>),
    ConnAck(ConnAck),
    Publish(PublishView<'a>),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(SubscribeView<'a>),
    SubAck(SubAckView<'a>),
    Unsubscribe(UnsubscribeView<'a>),
    UnsubAck(Ack),
    PingReq,
    PingResp,
    Disconnect,
}

impl PacketView<'_> {
    /// The control packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            PacketView::Connect(_) => PacketType::Connect,
            PacketView::ConnAck(_) => PacketType::ConnAck,
            PacketView::Publish(_) => PacketType::Publish,
            PacketView::PubAck(_) => PacketType::PubAck,
            PacketView::PubRec(_) => PacketType::PubRec,
            PacketView::PubRel(_) => PacketType::PubRel,
            PacketView::PubComp(_) => PacketType::PubComp,
            PacketView::Subscribe(_) => PacketType::Subscribe,
            PacketView::SubAck(_) => PacketType::SubAck,
            PacketView::Unsubscribe(_) => PacketType::Unsubscribe,
            PacketView::UnsubAck(_) => PacketType::UnsubAck,
            PacketView::PingReq => PacketType::PingReq,
            PacketView::PingResp => PacketType::PingResp,
            PacketView::Disconnect => PacketType::Disconnect,
        }
    }

    /// The owned packet (allocates for strings, payloads and lists).
    #[inline]
    pub fn to_packet(&self) -> Packet {
        match *self {
            PacketView::Connect(c) => Packet::Connect(c.to_connect()),
            PacketView::ConnAck(c) => Packet::ConnAck(c),
            PacketView::Publish(p) => Packet::Publish(p.to_publish()),
            PacketView::PubAck(a) => Packet::PubAck(a),
            PacketView::PubRec(a) => Packet::PubRec(a),
            PacketView::PubRel(a) => Packet::PubRel(a),
            PacketView::PubComp(a) => Packet::PubComp(a),
            PacketView::Subscribe(s) => Packet::Subscribe(s.to_subscribe()),
            PacketView::SubAck(s) => Packet::SubAck(s.to_suback()),
            PacketView::Unsubscribe(u) => Packet::Unsubscribe(u.to_unsubscribe()),
            PacketView::UnsubAck(a) => Packet::UnsubAck(a),
            PacketView::PingReq => Packet::PingReq,
            PacketView::PingResp => Packet::PingResp,
            PacketView::Disconnect => Packet::Disconnect,
        }
    }
}
