//! Internal per-exchange state of the endpoint (not public API).

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::sim::{SimDuration, SimTime};

use super::codec::Token;

/// Where an exchange is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExState {
    /// Client request held back by NSTART (§4.7); not yet sent.
    Waiting,
    /// Server separate response scheduled for `deadline`; not yet sent.
    Scheduled,
    /// CON sent, retransmitting until ACK/RST or give-up (§4.2).
    AwaitingAck,
    /// Client: NON request sent or Empty ACK received; waiting for the
    /// response until `deadline` (§5.2.2, §5.2.3).
    AwaitingResponse,
}

/// One outstanding message exchange: a client request, or a server's
/// separate CON response (§5.2.2).
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub peer: SocketAddrV4,
    pub token: Token,
    pub message_id: u16,
    pub confirmable: bool,
    /// True for our requests, false for a server's separate response.
    pub client: bool,
    pub state: ExState,
    /// Counts against the peer's NSTART budget (§4.7).
    pub holds_slot: bool,
    /// The encoded message; bytes 2..4 hold the message ID once assigned.
    pub bytes: Vec<u8>,
    pub retransmissions: u32,
    /// The current retransmission timeout (doubles each retransmission).
    pub timeout: SimDuration,
    /// When the timer fires; `SimTime::MAX` when none is armed.
    pub deadline: SimTime,
}

impl Exchange {
    /// Write the message ID into the encoded header (RFC 7252 §3).
    pub fn set_message_id(&mut self, mid: u16) {
        self.message_id = mid;
        if let Some(slot) = self.bytes.get_mut(2..4) {
            slot.copy_from_slice(&mid.to_be_bytes());
        }
    }
}

/// NSTART bookkeeping for one peer (§4.7).
#[derive(Debug, Default, Clone)]
pub(crate) struct PeerSlots {
    pub outstanding: u32,
    pub waiting: VecDeque<u64>,
}

/// A queued datagram. Bytes are copied out at `poll_transmit` time, so
/// retransmissions and repeated replies cost no allocation.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// The current bytes of an exchange (skipped if it ended meanwhile).
    Exchange { id: u64, retransmission: bool },
    /// The cached reply for `(peer, message ID)`.
    Cached {
        peer: SocketAddrV4,
        mid: u16,
        repeat: bool,
    },
    /// An Empty ACK or RST (§4.1).
    Empty {
        to: SocketAddrV4,
        rst: bool,
        mid: u16,
    },
    /// A one-off message (NON response, error response to a NON).
    Owned { to: SocketAddrV4, bytes: Vec<u8> },
}
