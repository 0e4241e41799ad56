//! The host stack of every node: a UDP port table and a TCP socket and
//! listener table that hand datagrams and byte streams to applications (the
//! protocol plug-ins of `world::apps`) through two small traits,
//! [`DatagramApp`] and [`StreamApp`] — the simulator's interface/socket split
//! (smoltcp's, in spirit). The host knows no application protocol: it
//! demultiplexes by port and connection, drives `transport::tcp::Connection`
//! in the documented poll order, and keeps the stream annotations an
//! application gave with its writes (which bytes are application payload,
//! what packet starts where) to label segments in `packets.csv` and split
//! bytes by layer.
//!
//! Calls into applications are synchronous: a datagram or stream event
//! reaches its application while the packet that caused it is being
//! handled, so everything the application sends in reply is ordered exactly
//! after it. An application never re-enters itself: the host delivers
//! nothing to an application while that application's own call is running
//! (its own writes, closes and aborts produce no stream events; the rare
//! event that would is queued and delivered when the call returns).

pub(crate) mod dtls;
pub(crate) mod secure;
pub(crate) mod tcp;
pub(crate) mod udp;

use crate::net::addr::SockAddr;
use crate::net::packet::PacketMeta;

pub use secure::Security;
pub use tcp::{SockId, SockOpts, StreamEvent, StreamState};

/// A datagram delivered to an application.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The node it arrived at.
    pub node: u32,
    /// The local port it was addressed to.
    pub port: u16,
    /// Its sender.
    pub from: SockAddr,
    /// The UDP payload.
    pub data: &'a [u8],
    /// The attribution the packet carried (flow, counted, kind).
    pub meta: PacketMeta,
    /// It was addressed to a group (IP multicast or the limited
    /// broadcast), not to this node's own address.
    pub group: bool,
}

/// An application that receives datagrams on the ports it bound
/// (`Ctx::udp_bind`).
pub trait DatagramApp {
    /// A datagram for one of this application's ports arrived.
    fn on_datagram(&mut self, ctx: &mut super::apps::Ctx<'_, '_>, rx: Received<'_>);
}

/// An application on TCP connections: the ones it opened
/// (`Ctx::tcp_connect`) and the ones its listeners accepted
/// (`Ctx::tcp_listen`). Each socket carries the application's `tag`.
pub trait StreamApp {
    /// A listener with `listen_tag` accepted connection `sock`; the returned
    /// tag names it in later calls.
    fn on_accept(
        &mut self,
        ctx: &mut super::apps::Ctx<'_, '_>,
        sock: SockId,
        listen_tag: u32,
    ) -> u32;
    /// Something happened on `sock` (bytes arrived, connected, closed, …).
    fn on_stream(
        &mut self,
        ctx: &mut super::apps::Ctx<'_, '_>,
        sock: SockId,
        tag: u32,
        ev: StreamEvent<'_>,
    );
    /// `sock` is established and its send buffer has room (called while the
    /// host drives it, only for sockets marked with
    /// `Ctx::tcp_want_writable`): write into it now, without driving.
    fn on_writable(&mut self, _ctx: &mut super::apps::Ctx<'_, '_>, _sock: SockId, _tag: u32) {}
}
