//! Application protocols as sans-IO state machines (DESIGN.md: "the one
//! pattern that matters"). Each endpoint is driven by inputs and polled for
//! transmissions, timeouts and events; it never touches a clock, a socket or
//! a random source by itself.
//!
//! Every core has the one shape of [`SansIo`]; a driver (the simulator's
//! host stack, or a real-socket driver in an interop test) calls, after
//! every input (`handle_input`, `handle_timeout`, or an application command
//! such as `publish`), in this order:
//! 1. `poll_transmit(now, buf)` until `None`, sending each transmission;
//! 2. `poll_event()` until `None`, handing each event to the application;
//! 3. `poll_timeout()`, and `handle_timeout(t)` once time reaches it.

pub mod coap;
pub mod driver;
pub mod http;
pub mod mqtt;
pub mod mqttsn;

pub use crate::sansio::{Datagram, SansIo, StreamInput};
