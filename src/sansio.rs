//! The one driver shape of every protocol core and of the TCP model
//! (DESIGN.md convention 1): [`SansIo`], and the inputs datagram and
//! stream cores receive. It sits below `transport` and `proto`, which both
//! implement it, and above `sim` and `net::addr`, which it uses.
//!
//! After every input (`handle_input`, `handle_timeout`, or an application
//! command such as `publish`) a driver calls, in this order:
//! 1. `poll_transmit(now, buf)` until `None`, sending each transmission
//!    (it is appended to `buf`; the driver clears `buf` or reserves room
//!    for lower-layer headers first);
//! 2. `poll_event()` until `None`, handing each event to the application —
//!    if the application's reaction queues more (a CoAP server answering a
//!    request), back to 1;
//! 3. `poll_timeout()`, and `handle_timeout(t)` once time reaches it.

use crate::sim::SimTime;

/// What a byte-stream transport reports to a stream core (an MQTT client or
/// broker connection, an MQTT-SN gateway's upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamInput<'a> {
    /// The transport is up (TCP handshake done).
    Connected,
    /// Bytes arrived, in order.
    Bytes(&'a [u8]),
    /// The transport is gone (closed, reset or lost).
    Closed,
}

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
