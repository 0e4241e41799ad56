//! What the endpoint reports: transmissions, application events, counters
//! and API errors.

use std::net::SocketAddrV4;

use thiserror::Error;

use super::code::{Code, MessageType, Method};
use super::codec::CodecError;
use super::request::RequestHandle;

/// What `poll_transmit` wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransmitInfo {
    pub to: SocketAddrV4,
    pub ty: MessageType,
    pub code: Code,
    pub message_id: u16,
    /// A retransmission of a CON, or a repeated reply to a duplicate.
    pub is_retransmission: bool,
    pub len: usize,
}

/// What the endpoint tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A response matched one of our requests (§5.3.2).
    ResponseReceived {
        handle: RequestHandle,
        from: SocketAddrV4,
        code: Code,
        content_format: Option<u16>,
        payload: Vec<u8>,
        /// How many times the request was sent (1 + retransmissions).
        transmissions: u32,
    },
    /// A new request reached the server side (once per exchange: duplicates
    /// are suppressed, §4.5). The server has already answered it.
    RequestReceived {
        from: SocketAddrV4,
        method: Method,
        path: String,
        content_format: Option<u16>,
        payload: Vec<u8>,
        confirmable: bool,
    },
    /// A CON request was never acknowledged: MAX_RETRANSMIT retransmissions
    /// and the last timeout passed (§4.2).
    GaveUp { handle: RequestHandle },
    /// A NON request got no response within `non_response_timeout`, or a
    /// separate response did not follow an Empty ACK within EXCHANGE_LIFETIME.
    NoResponse { handle: RequestHandle },
    /// The peer rejected our request with RST (§4.2, §4.3).
    ResetReceived { handle: RequestHandle },
}

/// Counters, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests_started: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub retransmissions: u64,
    pub give_ups: u64,
    pub no_responses: u64,
    pub responses_received: u64,
    pub requests_received: u64,
    pub duplicates_suppressed: u64,
    pub rst_sent: u64,
    pub rst_received: u64,
    pub malformed_dropped: u64,
    /// ACK/RST for unknown message IDs, NON responses with unknown tokens.
    pub ignored: u64,
    pub separate_responses_sent: u64,
    pub separate_give_ups: u64,
}

/// Errors from the application API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    #[error("request to {to}: {source}")]
    Encode {
        to: SocketAddrV4,
        #[source]
        source: CodecError,
    },
}
