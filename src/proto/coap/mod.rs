//! CoAP, the Constrained Application Protocol (RFC 7252), as two sans-IO
//! layers — the message layer (§4) and the request/response layer (§5) —
//! plus a small resource server application.
//!
//! Read first: RFC 7252 §3 (message format), §4 (message layer: CON/NON,
//! retransmission, deduplication, RST), §4.8 (transmission parameters),
//! §5.2 (piggybacked, separate and NON responses), §5.3 (tokens), §5.4
//! (options), §5.8–5.10 (methods, response codes, option table).
//!
//! * [`codec`] — wire format: borrowed [`MessageRef`] and owned [`Message`].
//! * [`option`] — option numbers and typed values.
//! * [`block`] — block-wise transfer (RFC 7959): Block1/Block2 values and
//!   the client side of a transfer.
//! * [`code`] — message types, codes, methods.
//! * [`config`] — §4.8 parameters and derived times.
//! * [`message`] — the message layer (§4): message IDs, CON
//!   retransmission, ACK/RST matching, deduplication, NSTART, PROBING_RATE.
//! * [`cocoa`] — the optional CoCoA RTO estimator (draft-ietf-core-cocoa-03).
//! * [`endpoint`] — the request/response layer (§5) on top: the sans-IO
//!   [`Endpoint`] (client and server in one; the application answers
//!   requests).
//! * [`request`] — client requests and their encoding.
//! * [`events`] — transmit info, events, ids, counters, errors.
//! * [`observe`] — RFC 7641: the client's freshness rule and the server's
//!   observers.
//! * [`link`] — CoRE Link Format (RFC 6690): codec and query filter of
//!   `/.well-known/core`.
//! * [`server`] — [`Reply`], and the [`ResourceServer`] application (a
//!   resource store answering requests).
//! * [`proxy`] — the caching [`Proxy`] application (RFC 7252 §5.7:
//!   forward and reverse, Max-Age and ETag revalidation, Observe
//!   aggregation).
//! * [`socket`] — a blocking driver over a real UDP socket (interop tests).

pub mod block;
pub mod cocoa;
pub mod code;
pub mod codec;
pub mod config;
mod dedup;
pub mod endpoint;
pub mod events;
pub mod link;
pub mod message;
pub mod observe;
pub mod option;
pub mod proxy;
pub mod request;
pub mod server;
#[cfg(feature = "native")]
pub mod socket;
pub mod uri;

pub use block::{BlockOptions, BlockStep, BlockTransfer, BlockValue};
pub use code::{Code, MessageType, Method};
pub use codec::{CodecError, Header, Message, MessageRef, RawOption, Token};
pub use config::{Config, Congestion};
pub use endpoint::{Endpoint, Responded};
pub use events::{
    CacheInfo, ETag, EndpointError, Event, IncomingId, ResponseId, Stats, TransmitInfo,
};
pub use link::{Filter, Link, LinkAttrs};
pub use message::{Delivery, Inbound, MessageEvent, MessageKey, MessageLayer, MessageStats};
pub use observe::{ObserveConfig, ObserveStats, Observers};
pub use option::{CoapOption, OptionNumber};
pub use proxy::{Proxy, ProxyConfig, ProxyStats};
pub use request::{Request, RequestHandle};
pub use server::{MulticastServerStats, Reply, ResourceServer, ResourceStore};
