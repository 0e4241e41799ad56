//! CoAP, the Constrained Application Protocol (RFC 7252), as a sans-IO
//! message layer plus a small resource server.
//!
//! Read first: RFC 7252 §3 (message format), §4 (message layer: CON/NON,
//! retransmission, deduplication, RST), §4.8 (transmission parameters),
//! §5.2 (piggybacked, separate and NON responses), §5.3 (tokens), §5.4
//! (options), §5.8–5.10 (methods, response codes, option table).
//!
//! * [`codec`] — wire format: borrowed [`MessageRef`] and owned [`Message`].
//! * [`option`] — option numbers and typed values.
//! * [`code`] — message types, codes, methods.
//! * [`config`] — §4.8 parameters and derived times.
//! * [`endpoint`] — the sans-IO endpoint (client and server in one).
//! * [`request`] — client requests and their encoding.
//! * [`events`] — transmit info, events, counters, errors.
//! * [`server`] — the resource store the endpoint's server side answers from.
//! * [`socket`] — a blocking driver over a real UDP socket (interop tests).

pub mod code;
pub mod codec;
pub mod config;
mod dedup;
pub mod endpoint;
pub mod events;
mod exchange;
pub mod option;
pub mod request;
pub mod server;
pub mod socket;

pub use code::{Code, MessageType, Method};
pub use codec::{CodecError, Header, Message, MessageRef, RawOption, Token};
pub use config::Config;
pub use endpoint::Endpoint;
pub use events::{EndpointError, Event, Stats, TransmitInfo};
pub use option::{CoapOption, OptionNumber};
pub use request::{Request, RequestHandle};
