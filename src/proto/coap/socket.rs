//! A blocking driver that runs an [`Endpoint`] over a real UDP socket, for
//! interoperability tests against other CoAP implementations (libcoap).
//!
//! Wall time is mapped to [`SimTime`] as the time elapsed since the driver
//! was created; the socket's read timeout is set from
//! [`Endpoint::poll_timeout`], so retransmissions happen on time. Every
//! blocking call is bounded by a caller-given limit: nothing here can hang.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sim::SimTime;

use super::endpoint::Endpoint;
use super::events::{EndpointError, Event};
use super::request::{Request, RequestHandle};

/// Errors of the socket driver.
#[derive(Debug, Error)]
pub enum SocketError {
    #[error("binding UDP socket to {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        source: std::io::Error,
    },
    #[error("UDP socket bound to a non-IPv4 address {addr}")]
    NotIpv4 { addr: SocketAddr },
    #[error("sending {len} bytes to {to}: {source}")]
    Send {
        to: SocketAddrV4,
        len: usize,
        source: std::io::Error,
    },
    #[error("receiving on {local}: {source}")]
    Recv {
        local: SocketAddrV4,
        source: std::io::Error,
    },
    #[error("no matching event within {limit:?}")]
    Timeout { limit: Duration },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// An endpoint bound to a UDP socket.
#[derive(Debug)]
pub struct SocketDriver {
    socket: UdpSocket,
    local: SocketAddrV4,
    endpoint: Endpoint,
    start: Instant,
    tx: Vec<u8>,
    rx: Vec<u8>,
    events: VecDeque<Event>,
}

impl SocketDriver {
    /// Bind `addr` (port 0 picks a free port) and drive `endpoint` there.
    pub fn bind(addr: SocketAddrV4, endpoint: Endpoint) -> Result<Self, SocketError> {
        let socket = UdpSocket::bind(addr).map_err(|source| SocketError::Bind { addr, source })?;
        let local = match socket
            .local_addr()
            .map_err(|source| SocketError::Bind { addr, source })?
        {
            SocketAddr::V4(a) => a,
            other => return Err(SocketError::NotIpv4 { addr: other }),
        };
        Ok(SocketDriver {
            socket,
            local,
            endpoint,
            start: Instant::now(),
            tx: Vec::with_capacity(1500),
            rx: vec![0; 65536],
            events: VecDeque::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddrV4 {
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

    /// Queue a request and send what can be sent.
    pub fn request(
        &mut self,
        to: SocketAddrV4,
        req: Request,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self.endpoint.request(now, to, req)?;
        self.flush()?;
        Ok(h)
    }

    /// Send every queued datagram and collect events.
    fn flush(&mut self) -> Result<(), SocketError> {
        let now = self.now();
        while let Some(t) = self.endpoint.poll_transmit(now, &mut self.tx) {
            self.socket
                .send_to(&self.tx, t.to)
                .map_err(|source| SocketError::Send {
                    to: t.to,
                    len: self.tx.len(),
                    source,
                })?;
        }
        while let Some(e) = self.endpoint.poll_event() {
            self.events.push_back(e);
        }
        Ok(())
    }

    /// One round: send, wait up to `max_wait` (less if a timer is due) for
    /// one datagram, feed it and any due timers to the endpoint, send again.
    pub fn step(&mut self, max_wait: Duration) -> Result<(), SocketError> {
        self.flush()?;
        let now = self.now();
        let mut wait = max_wait;
        if let Some(t) = self.endpoint.poll_timeout() {
            wait = wait.min(Duration::from_nanos((t - now).as_nanos()));
        }
        // A zero read timeout is rejected by the OS API; 1 ms is the floor.
        let wait = wait.max(Duration::from_millis(1));
        let local = self.local;
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|source| SocketError::Recv { local, source })?;
        match self.socket.recv_from(&mut self.rx) {
            Ok((n, SocketAddr::V4(from))) => {
                let now = self.now();
                let data = self.rx.get(..n).unwrap_or(&[]);
                self.endpoint.handle_datagram(now, from, data);
            }
            Ok((_, SocketAddr::V6(_))) => {}
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
