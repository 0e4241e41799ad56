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
pub mod mqtt;
pub mod mqttsn;

use crate::sim::SimTime;

/// A datagram as a datagram core receives it.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub from: crate::net::addr::SockAddr,
    pub data: &'a [u8],
}

/// The one driver shape of every protocol core (TCP `Connection`, MQTT
/// `Client` and `Broker`, CoAP `Endpoint`, MQTT-SN cores).
pub trait SansIo {
    /// What arrives: a [`Datagram`], a slice of a byte stream, a segment.
    type Input<'a>;
    /// What `poll_transmit` describes (the bytes are in `buf`).
    type Transmit;
    /// What the application is told.
    type Event;
    /// Something arrived at `now`.
    fn handle_input(&mut self, now: SimTime, input: Self::Input<'_>);
    /// The next transmission, written into `buf`; `None` when nothing is due.
    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<Self::Transmit>;
    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When `handle_timeout` wants to be called next.
    fn poll_timeout(&self) -> Option<SimTime>;
    /// Time reached `poll_timeout()`.
    fn handle_timeout(&mut self, now: SimTime);
}
