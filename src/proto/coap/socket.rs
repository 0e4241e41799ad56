//! A blocking driver that runs an [`Endpoint`] (and optionally a
//! [`ResourceServer`] answering its requests) over a real UDP socket, for
//! interoperability tests against other CoAP implementations (libcoap).
//!
//! Wall time is mapped to [`SimTime`] as the time elapsed since the driver
//! was created; the socket's read timeout is set from the earliest of
//! [`Endpoint::poll_timeout`] and the server's, so retransmissions happen on
//! time. Real socket addresses are turned into the endpoint's [`SockAddr`]s
//! and back by an [`AddrPlan`] (IPv4 maps to itself, IPv6 is interned).
//! Every blocking call is bounded by a caller-given limit: nothing here can
//! hang.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::net::addr::{AddrPlan, SockAddr};
use crate::proto::Datagram;
use crate::sim::SimTime;

use super::endpoint::Endpoint;
use super::events::{EndpointError, Event};
use super::request::{Request, RequestHandle};
use super::server::ResourceServer;

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
    #[error("no matching event within {limit:?}")]
    Timeout { limit: Duration },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// An endpoint bound to a UDP socket.
#[derive(Debug)]
pub struct SocketDriver {
    socket: UdpSocket,
    local: SocketAddr,
    plan: AddrPlan,
    endpoint: Endpoint,
    server: Option<ResourceServer>,
    start: Instant,
    tx: Vec<u8>,
    rx: Vec<u8>,
    events: VecDeque<Event>,
}

impl SocketDriver {
    /// Bind `addr` (port 0 picks a free port) and drive `endpoint` there.
    pub fn bind(addr: impl Into<SocketAddr>, endpoint: Endpoint) -> Result<Self, SocketError> {
        let addr = addr.into();
        let socket = UdpSocket::bind(addr).map_err(|source| SocketError::Bind { addr, source })?;
        let local = socket
            .local_addr()
            .map_err(|source| SocketError::Bind { addr, source })?;
        Ok(SocketDriver {
            socket,
            local,
            plan: AddrPlan::new(),
            endpoint,
            server: None,
            start: Instant::now(),
            tx: Vec::with_capacity(1500),
            rx: vec![0; 65536],
            events: VecDeque::new(),
        })
    }

    /// Answer the endpoint's requests with `server` (every event is still
    /// collected for [`SocketDriver::poll_event`] too).
    pub fn with_server(mut self, server: ResourceServer) -> Self {
        self.server = Some(server);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Wall time since creation as simulated time.
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The driven endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The driven endpoint, mutably.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The server application, if any.
    pub fn server(&self) -> Option<&ResourceServer> {
        self.server.as_ref()
    }

    /// Queue a request and send what can be sent.
    pub fn request(
        &mut self,
        to: impl Into<SocketAddr>,
        req: Request,
    ) -> Result<RequestHandle, SocketError> {
        let to = to.into();
        let addr = self
            .plan
            .intern_sock(to)
            .ok_or(SocketError::Unrepresentable { addr: to })?;
        let h = self.endpoint.request(addr, req)?;
        self.flush()?;
        Ok(h)
    }

    /// Send every queued datagram and collect events (the server answering
    /// requests among them), until nothing more happens.
    fn flush(&mut self) -> Result<(), SocketError> {
        let now = self.now();
        loop {
            let mut busy = false;
            self.tx.clear();
            while let Some(t) = self.endpoint.poll_transmit(now, &mut self.tx) {
                busy = true;
                let to = self
                    .plan
                    .resolve_sock(t.to)
                    .ok_or(SocketError::Unresolved { addr: t.to })?;
                self.socket
                    .send_to(&self.tx, to)
                    .map_err(|source| SocketError::Send {
                        to,
                        len: self.tx.len(),
                        source,
                    })?;
                self.tx.clear();
            }
            while let Some(e) = self.endpoint.poll_event() {
                busy = true;
                if let Some(s) = self.server.as_mut() {
                    s.handle_event(now, &mut self.endpoint, &e);
                }
                self.events.push_back(e);
            }
            if !busy {
                return Ok(());
            }
        }
    }

    /// The earliest timer of the endpoint and the server.
    fn next_timeout(&self) -> Option<SimTime> {
        let s = self.server.as_ref().and_then(|s| s.poll_timeout());
        match (self.endpoint.poll_timeout(), s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One round: send, wait up to `max_wait` (less if a timer is due) for
    /// one datagram, feed it and any due timers to the endpoint, send again.
    pub fn step(&mut self, max_wait: Duration) -> Result<(), SocketError> {
        self.flush()?;
        let now = self.now();
        let mut wait = max_wait;
        if let Some(t) = self.next_timeout() {
            wait = wait.min(Duration::from_nanos((t - now).as_nanos()));
        }
        // A zero read timeout is rejected by the OS API; 1 ms is the floor.
        let wait = wait.max(Duration::from_millis(1));
        let local = self.local;
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|source| SocketError::Recv { local, source })?;
        match self.socket.recv_from(&mut self.rx) {
            Ok((n, from)) => {
                let now = self.now();
                // an address no plan can hold (IPv4 in 240/4) is dropped
                if let Some(from) = self.plan.intern_sock(from) {
                    let data = self.rx.get(..n).unwrap_or(&[]);
                    self.endpoint.handle_input(now, Datagram { from, data });
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::ConnectionRefused
                ) => {}
            Err(source) => return Err(SocketError::Recv { local, source }),
        }
        let now = self.now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        if let Some(s) = self.server.as_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now, &mut self.endpoint);
            }
        }
        self.flush()
    }

    /// The next event collected so far.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Step until `f` maps an event to `Some`, for at most `limit` of wall
    /// time. Events `f` rejects are dropped.
    pub fn run_until<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, SocketError> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(e) = self.events.pop_front() {
                if let Some(t) = f(&e) {
                    return Ok(t);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SocketError::Timeout { limit });
            }
            self.step(left.min(Duration::from_millis(50)))?;
        }
    }
}
