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
}

/// A message waiting for the in-flight window or for the client to return.
#[derive(Debug, Clone)]
pub struct Pending {
    pub msg: Arc<Msg>,
    pub qos: QoS,
    pub retain: bool,
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
    /// The session's subscriptions, sorted by filter (mirrors the tree).
    pub subs: Vec<(TopicFilter, QoS)>,
    /// In flight, in first-transmission order (resent in this order,
    /// [MQTT-4.6.0-1]).
    pub inflight: Vec<Outbound>,
    pub queue: VecDeque<Pending>,
    pub incoming: Vec<Incoming>,
    pub last_pid: u16,
}

impl Session {
    pub fn new(client_id: Arc<str>, clean: bool) -> Self {
        Session {
            client_id,
            clean,
            conn: None,
            subs: Vec::new(),
            inflight: Vec::new(),
            queue: VecDeque::new(),
            incoming: Vec::new(),
            last_pid: 0,
        }
    }

    /// A packet identifier not in use by an in-flight message.
    pub fn alloc_pid(&mut self) -> PacketId {
        loop {
            self.last_pid = self.last_pid.wrapping_add(1);
            if let Some(p) = PacketId::new(self.last_pid) {
                if !self.inflight.iter().any(|o| o.pid == p) {
                    return p;
                }
            }
        }
    }

    pub fn set_sub(&mut self, filter: &TopicFilter, qos: QoS) {
        match self.subs.binary_search_by(|(f, _)| f.cmp(filter)) {
            Ok(i) => {
                if let Some(s) = self.subs.get_mut(i) {
                    s.1 = qos;
                }
            }
            Err(i) => self.subs.insert(i, (filter.clone(), qos)),
        }
    }

    pub fn remove_sub(&mut self, filter: &TopicFilter) -> bool {
        match self.subs.binary_search_by(|(f, _)| f.cmp(filter)) {
            Ok(i) => {
                self.subs.remove(i);
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
    pub will: Option<LastWill>,
    /// The CONNECT's user name, kept only when an ACL is configured (its
    /// rules may match on it).
    pub username: Option<Arc<str>>,
}
