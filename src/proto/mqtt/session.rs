//! Broker-side per-client state (§4.1): the session that outlives a
//! connection when CleanSession = 0, and the per-connection state.
//!
//! Kept compact for 10 000-client runs: empty `Vec`/`VecDeque` members do
//! not allocate, messages are shared `Arc<Msg>`s, topics shared `Arc<str>`s.
//! An idle connected client costs one `Session` (~130 bytes) plus one
//! `Conn` (~100 bytes) and its subscription entries in the tree.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sim::SimTime;

use super::events::ConnId;
use super::packet::{LastWill, PacketId, QoS};
use super::subtree::SessionIdx;
use super::topic::{TopicFilter, TopicName};

/// An application message as the broker holds it: shared by every
/// subscriber's queue and by the retained store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub topic: TopicName,
    pub payload: Arc<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// What an MQTT 5.0 publisher attached (None for 3.1.1 publishers and
    /// for 5.0 ones that attached nothing): passed on to 5.0 subscribers.
    pub props: Option<Box<MsgProps>>,
}

/// The MQTT 5.0 properties of an application message that the broker
/// passes on unchanged (§3.3.2.3: Payload Format Indicator, Content Type,
/// Response Topic, Correlation Data, User Properties in order) and its
/// expiry: the Message Expiry Interval becomes an absolute time, and each
/// copy sent carries what is left of it, in whole seconds rounded up
/// ([MQTT-3.3.2-6]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsgProps {
    pub payload_format_indicator: Option<u8>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    pub user_properties: Vec<(String, String)>,
    pub expires_at: Option<SimTime>,
}

impl Msg {
    /// A message without 5.0 properties.
    pub fn plain(topic: TopicName, payload: Arc<[u8]>, qos: QoS) -> Msg {
        Msg {
            topic,
            payload,
            qos,
            props: None,
        }
    }
    /// True once its Message Expiry Interval has passed at `now`.
    pub fn expired(&self, now: SimTime) -> bool {
        self.props
            .as_ref()
            .and_then(|p| p.expires_at)
            .is_some_and(|t| t <= now)
    }
}

/// Where an outgoing QoS > 0 message is in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// PUBLISH sent (QoS 1), waiting for PUBACK.
    AwaitAck,
    /// PUBLISH sent (QoS 2), waiting for PUBREC.
    AwaitRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}

/// An outgoing QoS 1/2 message in flight.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub pid: PacketId,
    pub msg: Arc<Msg>,
    pub qos: QoS,
    pub retain: bool,
    pub state: OutState,
    /// Last (re)transmission, for `legacy_retry`.
    pub sent_at: SimTime,
    /// Subscription Identifiers of the matching subscriptions (5.0).
    pub sub_ids: SubIds,
}

/// A message waiting for the in-flight window or for the client to return.
#[derive(Debug, Clone)]
pub struct Pending {
    pub msg: Arc<Msg>,
    pub qos: QoS,
    pub retain: bool,
    /// Subscription Identifiers of the matching subscriptions (5.0).
    pub sub_ids: SubIds,
}

/// A received QoS 2 message whose PUBREL has not arrived yet.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub pid: PacketId,
    /// The message while it waits for PUBREL (`Qos2Forward::OnPubrel`);
    /// `None` once forwarded.
    pub msg: Option<(Arc<Msg>, bool)>,
}

/// One client's session (§4.1).
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    pub clean: bool,
    pub conn: Option<ConnId>,
    /// Subscriptions and messages on their way; `None` while all are
    /// empty, as a publishing-only client's session always is (read with
    /// [`Session::q`], change with [`Session::qm`]).
    q: Option<Box<SessionQueues>>,
    pub last_pid: u16,
    /// Present once an MQTT 5.0 client has used the session.
    pub v5: Option<Box<SessionV5>>,
}

/// What a session holds beside its identity: boxed, and given back when
/// all of it is empty ([`Session::shed`]), so a million publishing clients'
/// sessions carry 8 bytes for it instead of 104.
#[derive(Debug, Default)]
pub struct SessionQueues {
    /// The session's subscriptions, sorted by filter (mirrors the tree).
    pub subs: Vec<(TopicFilter, QoS)>,
    /// In flight, in first-transmission order (resent in this order,
    /// [MQTT-4.6.0-1]).
    pub inflight: Vec<Outbound>,
    pub queue: VecDeque<Pending>,
    pub incoming: Vec<Incoming>,
}

impl SessionQueues {
    fn is_empty(&self) -> bool {
        self.subs.is_empty()
            && self.inflight.is_empty()
            && self.queue.is_empty()
            && self.incoming.is_empty()
    }
}

/// What an empty session reads.
static NO_QUEUES: SessionQueues = SessionQueues {
    subs: Vec::new(),
    inflight: Vec::new(),
    queue: VecDeque::new(),
    incoming: Vec::new(),
};

/// Subscription Identifiers sent with one copy of a message: none (every
/// 3.1.1 delivery), or those of the session's matching subscriptions.
pub type SubIds = Option<Arc<[u32]>>;

/// What MQTT 5.0 adds to a session (§4.1, §3.8.3.1).
#[derive(Debug, Default)]
pub struct SessionV5 {
    /// Session Expiry Interval in seconds (0xFFFF_FFFF: never).
    pub expiry_interval: u32,
    /// When an offline session is discarded (set when its connection ends).
    pub expires_at: Option<SimTime>,
    /// The client's Receive Maximum: caps the broker's in-flight window
    /// towards it ([MQTT-3.3.4-9]).
    pub receive_maximum: u16,
    /// Subscriptions with options other than QoS, or an identifier, in
    /// filter order (plain ones live only in `Session::subs`). Shared
    /// subscriptions are kept under their whole `$share/g/f` filter.
    pub opts: Vec<SubEntry>,
}

/// One 5.0 subscription's options and identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubEntry {
    pub filter: TopicFilter,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 = none.
    pub id: u32,
}

impl Session {
    pub fn new(client_id: Arc<str>, clean: bool) -> Self {
        Session {
            client_id,
            clean,
            conn: None,
            q: None,
            last_pid: 0,
            v5: None,
        }
    }

    /// Subscriptions and queues (empty ones when none are held).
    pub fn q(&self) -> &SessionQueues {
        self.q.as_deref().unwrap_or(&NO_QUEUES)
    }

    /// Subscriptions and queues to change (allocated on first use).
    pub fn qm(&mut self) -> &mut SessionQueues {
        self.q.get_or_insert_with(Box::default)
    }

    /// The queues to change when the session holds any (never allocates:
    /// for removals and walks, where an empty session has nothing to do).
    pub fn held(&mut self) -> Option<&mut SessionQueues> {
        self.q.as_deref_mut()
    }

    /// Give the queues back once all are empty.
    pub fn shed(&mut self) {
        if self.q.as_deref().is_some_and(SessionQueues::is_empty) {
            self.q = None;
        }
    }

    /// True while the session holds its queues' box (for tests).
    pub fn holds_queues(&self) -> bool {
        self.q.is_some()
    }

    /// A packet identifier not in use by an in-flight message.
    pub fn alloc_pid(&mut self) -> PacketId {
        loop {
            self.last_pid = self.last_pid.wrapping_add(1);
            if let Some(p) = PacketId::new(self.last_pid) {
                if !self.q().inflight.iter().any(|o| o.pid == p) {
                    return p;
                }
            }
        }
    }

    pub fn set_sub(&mut self, filter: &TopicFilter, qos: QoS) {
        let subs = &mut self.qm().subs;
        match subs.binary_search_by(|(f, _)| f.cmp(filter)) {
            Ok(i) => {
                if let Some(s) = subs.get_mut(i) {
                    s.1 = qos;
                }
            }
            Err(i) => subs.insert(i, (filter.clone(), qos)),
        }
    }

    pub fn remove_sub(&mut self, filter: &TopicFilter) -> bool {
        match self.q().subs.binary_search_by(|(f, _)| f.cmp(filter)) {
            Ok(i) => {
                self.qm().subs.remove(i);
                self.shed();
                true
            }
            Err(_) => false,
        }
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted, no CONNECT yet.
    AwaitConnect,
    /// CONNECT accepted; the session it is bound to.
    Connected(SessionIdx),
}

/// Per-connection state.
#[derive(Debug)]
pub struct Conn {
    pub state: ConnState,
    /// Bytes of an incomplete packet.
    pub buf: Vec<u8>,
    pub accepted_at: SimTime,
    /// When the last complete packet arrived.
    pub last_rx: SimTime,
    /// Seconds; 0 = no keep-alive.
    pub keep_alive: u16,
    /// Boxed: few connections carry a will, every one carried its room.
    pub will: Option<Box<LastWill>>,
    /// The CONNECT's user name, kept only when an ACL is configured (its
    /// rules may match on it).
    pub username: Option<Arc<str>>,
    /// The MQTT 5.0 state of this connection; `None` on 3.1.1.
    pub v5: Option<Box<ConnV5>>,
}

/// A broker's connections by id: the records in a slab, the ids in an
/// ordered index. (A `BTreeMap` of whole records was half empty: ids
/// arrive in increasing order, which leaves B-tree leaves half full, so
/// each 88-byte record cost 181 bytes at a million clients.)
#[derive(Debug, Default)]
pub struct ConnTable {
    index: std::collections::BTreeMap<ConnId, u32>,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
}

impl ConnTable {
    pub fn get(&self, id: &ConnId) -> Option<&Conn> {
        let &i = self.index.get(id)?;
        self.slots[i as usize].as_ref()
    }
    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        let &i = self.index.get(id)?;
        self.slots[i as usize].as_mut()
    }
    pub fn contains_key(&self, id: &ConnId) -> bool {
        self.index.contains_key(id)
    }
    /// Add or replace `id`'s record; the record replaced, if any.
    pub fn insert(&mut self, id: ConnId, c: Conn) -> Option<Conn> {
        if let Some(&i) = self.index.get(&id) {
            return self.slots[i as usize].replace(c);
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(c);
                i
            }
            None => {
                crate::sim::shed::push_frugal(&mut self.slots, Some(c));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(id, i);
        None
    }
    pub fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        let i = self.index.remove(id)?;
        self.free.push(i);
        self.slots[i as usize].take()
    }
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// The ids, in increasing order.
    pub fn keys(&self) -> impl Iterator<Item = &ConnId> + '_ {
        self.index.keys()
    }
    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }
}

/// Per-connection MQTT 5.0 state (§3.1.2.11, §3.3.2.3.4).
#[derive(Debug, Default)]
pub struct ConnV5 {
    /// The client's Maximum Packet Size (0 = none given: the protocol
    /// maximum); larger PUBLISHes are not sent to it ([MQTT-3.1.2-25]).
    pub max_packet_size: u32,
    /// The client's Topic Alias Maximum: aliases the broker may use
    /// towards it.
    pub alias_max_out: u16,
    /// Topic → alias the broker assigned on this connection (first come,
    /// first served; never replaced).
    pub aliases_out: std::collections::BTreeMap<TopicName, u16>,
    /// Alias → topic the client set on this connection (index alias − 1).
    pub aliases_in: Vec<Option<TopicName>>,
    /// Will Delay Interval of the will (seconds).
    pub will_delay: u32,
    /// 5.0 properties of the will message (its expiry apart).
    pub will_props: Option<Box<MsgProps>>,
    /// The will's Message Expiry Interval (seconds from publication).
    pub will_expiry: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(keep_alive: u16) -> Conn {
        Conn {
            state: ConnState::AwaitConnect,
            buf: Vec::new(),
            accepted_at: SimTime::ZERO,
            last_rx: SimTime::ZERO,
            keep_alive,
            will: None,
            username: None,
            v5: None,
        }
    }

    #[test]
    fn conn_table_keeps_ids_in_order_and_reuses_slots() {
        let mut t = ConnTable::default();
        for id in [7u64, 3, 9] {
            assert!(t.insert(ConnId(id), conn(id as u16)).is_none());
        }
        assert_eq!(t.len(), 3);
        let replaced = t.insert(ConnId(3), conn(30)).expect("3 was there");
        assert_eq!(replaced.keep_alive, 3);
        assert_eq!(t.get(&ConnId(3)).map(|c| c.keep_alive), Some(30));
        assert_eq!(t.remove(&ConnId(7)).map(|c| c.keep_alive), Some(7));
        assert!(t.remove(&ConnId(7)).is_none() && !t.contains_key(&ConnId(7)));
        // the freed slot is reused, not grown
        t.insert(ConnId(1), conn(1));
        assert_eq!(t.slots.len(), 3);
        if let Some(c) = t.get_mut(&ConnId(9)) {
            c.keep_alive = 90;
        }
        let ids: Vec<(u64, u16)> = t
            .keys()
            .map(|k| (k.0, t.get(k).map_or(0, |c| c.keep_alive)))
            .collect();
        assert_eq!(ids, [(1, 1), (3, 30), (9, 90)]);
        t.clear();
        assert!(t.is_empty() && t.get(&ConnId(1)).is_none());
    }
}
