//! The [`Endpoint`] (and optionally a [`ResourceServer`] answering its
//! requests) over a real UDP socket: a [`Transport`] for the one
//! real-socket [`Driver`] (`proto::driver`), for interoperability tests
//! against other CoAP implementations (libcoap).
//!
//! Real socket addresses are turned into the endpoint's [`SockAddr`]s and
//! back by an [`AddrPlan`] (IPv4 maps to itself, IPv6 is interned). The
//! socket's read timeout is set from the earliest of the endpoint's and the
//! server's timers, so retransmissions happen on time; every blocking call
//! is bounded.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use thiserror::Error;

use crate::net::addr::{AddrPlan, SockAddr};
use crate::proto::driver::{Clock, Driver, Timeout, Transport};
use crate::proto::Datagram;
use crate::sim::SimTime;

use super::block::{BlockStep, BlockTransfer};
use super::endpoint::Endpoint;
use super::events::{EndpointError, Event, TransmitInfo};
use super::request::{Request, RequestHandle};
use super::server::{Reply, ResourceServer};

/// Errors of the socket driver.
#[derive(Debug, Error)]
pub enum SocketError {
    #[error("binding UDP socket to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sending {len} bytes to {to}: {source}")]
    Send {
        to: SocketAddr,
        len: usize,
        source: std::io::Error,
    },
    #[error("receiving on {local}: {source}")]
    Recv {
        local: SocketAddr,
        source: std::io::Error,
    },
    #[error("address {addr} has no socket address (not in this driver's plan)")]
    Unresolved { addr: SockAddr },
    #[error("address {addr} cannot be represented (IPv4 in 240.0.0.0/4)")]
    Unrepresentable { addr: SocketAddr },
    #[error(transparent)]
    Timeout(#[from] Timeout),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// Watches every datagram a [`SocketDriver`] receives and sends (what
/// `qossim coap-server --log` writes and counts). Called on the driver's
/// thread, in order; `now` is the driver's clock.
pub trait DatagramTap: Send + std::fmt::Debug {
    /// A datagram read from `from`, before the endpoint gets it.
    fn received(&mut self, now: SimTime, from: SocketAddr, data: &[u8]);
    /// A datagram the endpoint sends to `to` (`sent`: whether the socket
    /// took it; false when it was refused as too large).
    fn sent(&mut self, now: SimTime, to: SocketAddr, data: &[u8], sent: bool);
}

/// A UDP socket, its address plan, and the server application (if any).
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
    plan: AddrPlan,
    server: Option<ResourceServer>,
    rx: Vec<u8>,
    /// Datagrams the socket refused as too large (EMSGSIZE).
    oversized: u64,
    /// Told about every datagram in and out.
    tap: Option<Box<dyn DatagramTap>>,
}

impl Transport<Endpoint> for UdpTransport {
    type Error = SocketError;

    fn send(
        &mut self,
        _ep: &mut Endpoint,
        clock: &Clock,
        t: &TransmitInfo,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        let to = self
            .plan
            .resolve_sock(t.to)
            .ok_or(SocketError::Unresolved { addr: t.to })?;
        let r = self.socket.send_to(bytes, to);
        if let Some(tap) = self.tap.as_mut() {
            tap.sent(clock.now(), to, bytes, r.is_ok());
        }
        match r {
            Ok(_) => Ok(()),
            // a datagram larger than the network takes (EMSGSIZE): dropped
            // and counted, the server keeps serving (the store's value
            // bound keeps its own responses below the UDP maximum)
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                self.oversized += 1;
                Ok(())
            }
            Err(source) => Err(SocketError::Send {
                to,
                len: bytes.len(),
                source,
            }),
        }
    }

    /// The server (if any) answers requests; every event goes to the
    /// caller too.
    fn event(
        &mut self,
        ep: &mut Endpoint,
        clock: &Clock,
        ev: Event,
    ) -> Result<Option<Event>, SocketError> {
        if let Some(s) = self.server.as_mut() {
            s.handle_event(clock.now(), ep, &ev);
        }
        Ok(Some(ev))
    }

    fn receive(
        &mut self,
        ep: &mut Endpoint,
        clock: &Clock,
        wait: Duration,
    ) -> Result<bool, SocketError> {
        let local = self.local;
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|source| SocketError::Recv { local, source })?;
        match self.socket.recv_from(&mut self.rx) {
            Ok((n, peer)) => {
                let data = self.rx.get(..n).unwrap_or(&[]);
                if let Some(tap) = self.tap.as_mut() {
                    tap.received(clock.now(), peer, data);
                }
                // an address no plan can hold (IPv4 in 240/4) is dropped
                if let Some(from) = self.plan.intern_sock(peer) {
                    ep.handle_input(clock.now(), Datagram { from, data });
                }
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock
                        | ErrorKind::TimedOut
                        | ErrorKind::ConnectionRefused
                        // a signal (e.g. `qossim coap-server`'s SIGINT)
                        | ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(SocketError::Recv { local, source }),
        }
    }

    fn poll_timeout(&self) -> Option<SimTime> {
        self.server.as_ref().and_then(|s| s.poll_timeout())
    }

    fn handle_timeout(&mut self, ep: &mut Endpoint, clock: &Clock) {
        if let Some(s) = self.server.as_mut() {
            s.handle_timeout(clock.now(), ep);
        }
    }
}

/// An endpoint bound to a UDP socket.
pub type SocketDriver = Driver<Endpoint, UdpTransport>;

impl Driver<Endpoint, UdpTransport> {
    /// Bind `addr` (port 0 picks a free port) and drive `endpoint` there.
    pub fn bind(addr: impl Into<SocketAddr>, endpoint: Endpoint) -> Result<Self, SocketError> {
        let addr = addr.into();
        let socket = UdpSocket::bind(addr).map_err(|source| SocketError::Bind { addr, source })?;
        let local = socket
            .local_addr()
            .map_err(|source| SocketError::Bind { addr, source })?;
        Ok(Driver::new(
            endpoint,
            UdpTransport {
                socket,
                local,
                plan: AddrPlan::new(),
                server: None,
                rx: vec![0; 65536],
                oversized: 0,
                tap: None,
            },
        ))
    }

    /// Answer the endpoint's requests with `server` (every event is still
    /// collected for [`Driver::poll_event`] too).
    pub fn with_server(mut self, server: ResourceServer) -> Self {
        self.parts_mut().1.server = Some(server);
        self
    }

    /// Tell `tap` about every datagram received and sent from now on.
    pub fn set_tap(&mut self, tap: Box<dyn DatagramTap>) {
        self.parts_mut().1.tap = Some(tap);
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.transport().local
    }

    /// The driven endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.core()
    }

    /// The driven endpoint, mutably.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        self.core_mut()
    }

    /// The server application, if any.
    pub fn server(&self) -> Option<&ResourceServer> {
        self.transport().server.as_ref()
    }

    /// Datagrams dropped because the socket refused them as too large
    /// (EMSGSIZE) instead of ending the driver.
    pub fn oversized_dropped(&self) -> u64 {
        self.transport().oversized
    }

    /// The endpoint's address for the real socket address `to` (interned
    /// in this driver's plan), e.g. for a [`BlockTransfer`]'s peer.
    pub fn peer(&mut self, to: impl Into<SocketAddr>) -> Result<SockAddr, SocketError> {
        let to = to.into();
        self.parts_mut()
            .1
            .plan
            .intern_sock(to)
            .ok_or(SocketError::Unrepresentable { addr: to })
    }

    /// Queue a request and send what can be sent.
    pub fn request(
        &mut self,
        to: impl Into<SocketAddr>,
        req: Request,
    ) -> Result<RequestHandle, SocketError> {
        let addr = self.peer(to)?;
        let h = self.core_mut().request(addr, req)?;
        self.flush()?;
        Ok(h)
    }

    /// The server application changes resource `path` (as a local PUT):
    /// its observers are notified (RFC 7641 §4.2) and the notifications
    /// sent. `None` when the driver has no server.
    pub fn update_resource(
        &mut self,
        path: &str,
        content_format: Option<u16>,
        value: &[u8],
    ) -> Result<Option<Reply>, SocketError> {
        let (ep, io, clock) = self.parts_mut();
        let now = clock.now();
        let reply = io
            .server
            .as_mut()
            .map(|s| s.update(now, ep, path, content_format, value));
        self.flush()?;
        Ok(reply)
    }

    /// Run the block-wise transfer `t` (RFC 7959) to its end, waiting at
    /// most `within` in all; returns how it ended and the transfer (its
    /// body holds a GET's representation). A request that gave up, got no
    /// response or was reset ends it as `None`.
    pub fn transfer(
        &mut self,
        mut t: BlockTransfer,
        within: Duration,
    ) -> Result<(Option<BlockStep>, BlockTransfer), SocketError> {
        t.start(self.core_mut())?;
        self.flush()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            while let Some(e) = self.poll_event() {
                match e {
                    Event::ResponseReceived {
                        handle,
                        code,
                        payload,
                        block,
                        ..
                    } if handle == t.handle() => {
                        match t.on_response(self.core_mut(), code, &block, &payload) {
                            BlockStep::Next(_) => self.flush().map(|_| ())?,
                            end => return Ok((Some(end), t)),
                        }
                    }
                    Event::GaveUp { handle }
                    | Event::NoResponse { handle }
                    | Event::ResetReceived { handle }
                        if handle == t.handle() =>
                    {
                        return Ok((None, t));
                    }
                    _ => {}
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Timeout { limit: within }.into());
            }
            self.step(left.min(Duration::from_millis(50)))?;
        }
    }
}
