//! Application protocols as sans-IO state machines (DESIGN.md: "the one
//! pattern that matters"). Each endpoint is driven by `handle_*` calls and
//! polled for transmissions, timeouts and events; it never touches a clock, a
//! socket or a random source by itself.

pub mod coap;
pub mod mqtt;
