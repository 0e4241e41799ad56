//! What the endpoint reports: transmissions, application events, counters
//! and API errors.

use thiserror::Error;

use crate::net::addr::SockAddr;

use super::block::BlockOptions;
use super::code::{Code, MessageType, Method};
use super::codec::{CodecError, Token};
use super::request::RequestHandle;

/// Identifies one request the server side received and reported with
/// [`Event::RequestReceived`]; the application answers it with
/// [`Endpoint::respond`](super::Endpoint::respond) (after an optional
/// [`Endpoint::defer`](super::Endpoint::defer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncomingId(pub u64);

/// Identifies a response (or notification) we sent as its own CON message
/// (a separate response, §5.2.2, or
/// [`Endpoint::send_response`](super::Endpoint::send_response)); its fate is
/// reported as [`Event::ResponseAcked`], [`Event::ResponseReset`] or
/// [`Event::ResponseGaveUp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResponseId(pub u64);

/// An ETag value (RFC 7252 §5.10.6): 1–8 opaque bytes, kept inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ETag {
    len: u8,
    bytes: [u8; 8],
}

impl ETag {
    /// `b` as an ETag; `None` unless 1–8 bytes long.
    pub fn new(b: &[u8]) -> Option<ETag> {
        if b.is_empty() || b.len() > 8 {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes[..b.len()].copy_from_slice(b);
        Some(ETag {
            len: b.len() as u8,
            bytes,
        })
    }
    /// The value.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A response's caching options (RFC 7252 §5.10.5, §5.10.6): what a cache
/// (a proxy, `super::proxy`) needs besides code and payload. `Copy`, so
/// carrying it allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheInfo {
    /// Max-Age in seconds; `None`: absent (60 s, §5.10.5).
    pub max_age: Option<u32>,
    /// ETag (the first, if a malformed response carried several).
    pub etag: Option<ETag>,
}

impl CacheInfo {
    /// The caching options of a received message (a Max-Age longer than 4
    /// bytes or an ETag longer than 8 is ignored: the codec keeps such
    /// options raw, §5.4.3).
    pub fn of(m: &super::codec::MessageRef<'_>) -> CacheInfo {
        let mut c = CacheInfo::default();
        for o in m.options() {
            if o.number == super::option::OptionNumber::MAX_AGE.0 && o.value.len() <= 4 {
                c.max_age = super::option::decode_uint(o.value).map(|v| v as u32);
            } else if o.number == super::option::OptionNumber::ETAG.0 && c.etag.is_none() {
                c.etag = ETag::new(o.value);
            }
        }
        c
    }
    /// Max-Age with the default applied (§5.10.5: 60 s when absent).
    pub fn max_age_or_default(&self) -> u32 {
        self.max_age.unwrap_or(60)
    }
}

/// What `poll_transmit` appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransmitInfo {
    /// Destination.
    pub to: SockAddr,
    /// Message type from the header.
    pub ty: MessageType,
    /// Code from the header.
    pub code: Code,
    /// Message ID from the header.
    pub message_id: u16,
    /// A retransmission of a CON, or a repeated reply to a duplicate.
    pub is_retransmission: bool,
    /// Bytes appended to the buffer (CoAP only; no UDP/IP headers).
    pub len: usize,
    /// The request this datagram carries when it is one of ours (first
    /// transmission or retransmission), so a driver can attribute it.
    pub request: Option<RequestHandle>,
    /// The tracked response (a separate CON response or an Observe
    /// notification) this datagram carries, likewise.
    pub response: Option<ResponseId>,
}

/// What the endpoint tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A response matched one of our requests (§5.3.2).
    ResponseReceived {
        handle: RequestHandle,
        from: SockAddr,
        code: Code,
        content_format: Option<u16>,
        payload: Vec<u8>,
        /// How many times the request was sent (1 + retransmissions).
        transmissions: u32,
        /// The response's Observe value (RFC 7641): with a 2.xx code, the
        /// registration succeeded and notifications follow as
        /// `Event::Notification` with this `handle`.
        observe: Option<u32>,
        /// The response's Block1/Block2/Size1/Size2 (RFC 7959).
        block: BlockOptions,
        /// Its Max-Age and ETag (RFC 7252 §5.10.5, §5.10.6).
        cache: CacheInfo,
    },
    /// A fresh notification (RFC 7641 §3.2, §3.4) of the observation
    /// registered by request `handle`. With a code other than 2.xx or no
    /// Observe value, the server ended the observation (§3.2) and the
    /// endpoint has forgotten it.
    Notification {
        handle: RequestHandle,
        from: SockAddr,
        code: Code,
        observe: Option<u32>,
        content_format: Option<u16>,
        payload: Vec<u8>,
        /// Its Max-Age and ETag (RFC 7252 §5.10.5, §5.10.6).
        cache: CacheInfo,
    },
    /// A notification of observation `handle` older than the last one
    /// accepted (RFC 7641 §3.4): dropped (its content is not reported).
    StaleNotification { handle: RequestHandle },
    /// A new request reached the server side (once per exchange: duplicates
    /// are suppressed, §4.5). Nothing has been sent for it yet: the
    /// application answers with `Endpoint::respond(id, ..)`, or first
    /// `Endpoint::defer(id)` (Empty ACK now, response later). The full
    /// message (every option) is `Endpoint::request_message(id)` until then.
    RequestReceived {
        id: IncomingId,
        from: SockAddr,
        token: Token,
        method: Method,
        path: String,
        content_format: Option<u16>,
        payload: Vec<u8>,
        confirmable: bool,
    },
    /// A received request was never answered and is forgotten: its
    /// deduplication lifetime (EXCHANGE_LIFETIME for a CON, NON_LIFETIME
    /// for a NON, from its arrival) ended. `respond(id, ..)` now fails.
    RequestExpired { id: IncomingId },
    /// A CON request was never acknowledged: MAX_RETRANSMIT retransmissions
    /// and the last timeout passed (§4.2).
    GaveUp { handle: RequestHandle },
    /// A NON request got no response within `non_response_timeout`, or a
    /// separate response did not follow an Empty ACK within EXCHANGE_LIFETIME.
    NoResponse { handle: RequestHandle },
    /// The peer rejected our request with RST (§4.2, §4.3).
    ResetReceived { handle: RequestHandle },
    /// Our multicast request `handle` (RFC 7252 §8.1) stopped collecting
    /// responses: its window passed; `responses` were reported.
    MulticastEnded {
        handle: RequestHandle,
        responses: u32,
    },
    /// The peer acknowledged our CON response (§5.2.2), sent
    /// `transmissions` times (1 + retransmissions; a sample for an RTT
    /// estimate when 1, RFC 7641 §4.5.1).
    ResponseAcked {
        response: ResponseId,
        transmissions: u32,
    },
    /// A NON notification of ours got no RST within the NON response
    /// timeout: it is no longer matched (nothing is wrong).
    ResponseExpired { response: ResponseId },
    /// The peer rejected our CON response with RST (§4.2).
    ResponseReset { response: ResponseId },
    /// Our CON response was never acknowledged (§4.2).
    ResponseGaveUp { response: ResponseId },
}

/// Counters, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client requests sent for the first time (past NSTART).
    pub requests_started: u64,
    /// Datagrams handed out by `poll_transmit`.
    pub datagrams_sent: u64,
    /// Their CoAP bytes.
    pub bytes_sent: u64,
    /// CON retransmissions (requests and separate responses).
    pub retransmissions: u64,
    /// Client CON requests given up (`Event::GaveUp`).
    pub give_ups: u64,
    /// `Event::NoResponse` count.
    pub no_responses: u64,
    /// Responses matched to our requests.
    pub responses_received: u64,
    /// New requests reported to the application (`Event::RequestReceived`).
    pub requests_received: u64,
    /// Duplicate CON/NON messages suppressed (§4.5).
    pub duplicates_suppressed: u64,
    /// RST messages sent (§4.2, §4.3).
    pub rst_sent: u64,
    /// RST messages matching one of our exchanges.
    pub rst_received: u64,
    /// Datagrams that failed to decode or were otherwise malformed.
    pub malformed_dropped: u64,
    /// ACK/RST for unknown message IDs, NON responses with unknown tokens.
    pub ignored: u64,
    /// Separate responses sent (§5.2.2): `respond` after the ACK was sent.
    pub separate_responses_sent: u64,
    /// Our CON responses never acknowledged.
    pub separate_give_ups: u64,
    /// Empty ACKs the endpoint sent itself for a CON request the
    /// application had neither answered nor deferred within
    /// PROCESSING_DELAY.
    pub unanswered_acks: u64,
    /// Requests the application never answered (`Event::RequestExpired`).
    pub requests_expired: u64,
    /// Fresh notifications reported (`Event::Notification`).
    pub notifications_accepted: u64,
    /// Notifications dropped as stale (RFC 7641 §3.4).
    pub notifications_stale: u64,
    /// Multicast requests received (RFC 7252 §8), NON ones reported.
    pub multicast_requests_received: u64,
    /// Responses matched to our multicast requests (part of
    /// `responses_received`).
    pub multicast_responses: u64,
    /// Message IDs forgotten before their lifetime ended to keep the
    /// deduplication store within `Config::max_dedup_entries` /
    /// `max_dedup_bytes` (0 in the simulator, where it is unbounded).
    pub dedup_evicted: u64,
}

impl Stats {
    /// Add another endpoint's counters (totals over a run).
    pub fn add(&mut self, o: &Stats) {
        self.requests_started += o.requests_started;
        self.datagrams_sent += o.datagrams_sent;
        self.bytes_sent += o.bytes_sent;
        self.retransmissions += o.retransmissions;
        self.give_ups += o.give_ups;
        self.no_responses += o.no_responses;
        self.responses_received += o.responses_received;
        self.requests_received += o.requests_received;
        self.duplicates_suppressed += o.duplicates_suppressed;
        self.rst_sent += o.rst_sent;
        self.rst_received += o.rst_received;
        self.malformed_dropped += o.malformed_dropped;
        self.ignored += o.ignored;
        self.separate_responses_sent += o.separate_responses_sent;
        self.separate_give_ups += o.separate_give_ups;
        self.unanswered_acks += o.unanswered_acks;
        self.requests_expired += o.requests_expired;
        self.notifications_accepted += o.notifications_accepted;
        self.notifications_stale += o.notifications_stale;
        self.multicast_requests_received += o.multicast_requests_received;
        self.multicast_responses += o.multicast_responses;
        self.dedup_evicted += o.dedup_evicted;
    }
}

/// Errors from the application API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    /// The request could not be encoded (e.g. a path segment > 255 bytes).
    #[error("request to {to}: {source}")]
    Encode {
        to: SockAddr,
        #[source]
        source: CodecError,
    },
    /// No received request with this id awaits an answer: it was answered
    /// already, expired (`Event::RequestExpired`), or never existed.
    #[error("no pending request {id:?}")]
    UnknownRequest { id: IncomingId },
    /// A CON request to a multicast address (RFC 7252 §8.1: multicast
    /// requests MUST be Non-confirmable).
    #[error("request to {to}: a multicast request must be NON (RFC 7252 §8.1)")]
    ConfirmableMulticast { to: SockAddr },
    /// `request_multicast` to an address that is not a multicast group.
    #[error("{to} is not a multicast address")]
    NotMulticast { to: SockAddr },
    /// No observation was registered by this request, or it ended.
    #[error("no observation {handle:?}")]
    UnknownObservation { handle: RequestHandle },
}
