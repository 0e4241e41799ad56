//! The MQTT-SN [`Gateway`] and [`Client`] over real `std::net` sockets: two
//! [`Transport`]s for the one real-socket [`Driver`] (`proto::driver`), so
//! the cores the simulator drives serve real MQTT-SN clients and reach a
//! real MQTT broker (`qossim gateway`, `tests/interop_mqttsn.rs`).
//!
//! * [`UdpTcpTransport`] (gateway): one UDP socket for every MQTT-SN client
//!   (real [`SocketAddr`]s ↔ the core's [`SockAddr`]s through an
//!   [`AddrPlan`]) and one non-blocking TCP connection to the broker per
//!   [`GatewayEvent::OpenUpstream`]. [`GatewayDriver`] binds it,
//!   [`GatewayDriver::spawn`] runs it on a thread ([`GatewayThread`]).
//! * [`UdpClient`] (client): one UDP socket; [`ClientDriver`].
//!
//! Bounds. Every wait is bounded: the broker connect by
//! [`GatewayIoConfig::connect_timeout`], a read by the core's next timer or
//! the caller's limit (2 ms while broker connections are open, which are
//! polled: `std` has no readiness API), the last bytes of a closing
//! connection by [`GatewayIoConfig::close_timeout`]. Memory is bounded: the
//! core bounds clients, topics, queues and buffers (`GatewayConfig`); here
//! each broker connection's unwritten backlog is capped
//! ([`GatewayIoConfig::max_upstream_backlog`]: a broker that does not read
//! loses its connection, counted, instead of growing memory), connections
//! are capped ([`GatewayIoConfig::max_upstreams`]), the IPv6 address table
//! is capped ([`GatewayIoConfig::max_ipv6_peers`]), buffers are fixed. A
//! malformed datagram is counted and dropped by the core; no input panics.
//!
//! Broadcast. The gateway's ADVERTISE and GWINFO go to `Addr::BROADCAST`:
//! sent to the limited broadcast 255.255.255.255 (at the core's port) by an
//! IPv4 socket bound to a non-loopback address, dropped and counted on
//! loopback and IPv6 sockets (no broadcast there), unless
//! [`GatewayIoConfig::broadcast`] says otherwise. Clients of a loopback
//! gateway are given its address instead of searching for it.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::net::addr::{AddrPlan, SockAddr};
use crate::proto::driver::{Clock, Driver, Timeout, Transport, Worker};
use crate::proto::{Datagram, SansIo, StreamInput};
use crate::sim::SimRng;

use super::client::{
    Client, ClientError, ClientEvent, ClientTransmit, MessageHandle, RequestHandle,
};
use super::gateway::{
    Gateway, GatewayConfig, GatewayEvent, GatewayInput, GatewayStats, GatewayTransmit, Upstream,
};
use super::types::{Qos, TopicIdType};

/// Largest UDP payload (IPv4: 65 535 − 8 − 20).
const MAX_DATAGRAM: usize = 65_507;
/// Longest a read waits while broker connections are open (they are polled).
const POLL_SLICE: Duration = Duration::from_millis(2);
/// Reads per broker connection in one receive (fairness between them).
const READS_PER_CONN: usize = 4;

/// Errors of the MQTT-SN socket drivers.
#[derive(Debug, Error)]
pub enum SocketError {
    #[error("binding UDP socket to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("address {addr} cannot be represented (IPv4 in 240.0.0.0/4)")]
    Unrepresentable { addr: SocketAddr },
    #[error(transparent)]
    Timeout(#[from] Timeout),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("gateway thread panicked")]
    ThreadPanicked,
}

/// Where the gateway's broadcasts (ADVERTISE, GWINFO) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Broadcast {
    /// 255.255.255.255 from an IPv4 socket bound to a non-loopback address;
    /// dropped (counted) on loopback and IPv6 sockets.
    #[default]
    Auto,
    /// Always dropped (counted).
    Off,
    /// To this IPv4 address (a subnet's broadcast address), at the core's
    /// port.
    To(Ipv4Addr),
}

/// Limits of [`UdpTcpTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIoConfig {
    /// Longest a TCP connect to the broker may take; the loop waits for it.
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// Bytes a broker connection may hold unwritten; a connection whose
    /// backlog would pass this is closed (`upstream_overflows`) and reported
    /// to the gateway as closed. Default 128 KiB (twice the largest MQTT-SN
    /// message).
    pub max_upstream_backlog: usize,
    /// Broker connections at once; beyond, `OpenUpstream` is answered
    /// `Closed` at once (`upstream_refused`). Default 1024.
    pub max_upstreams: usize,
    /// IPv6 client addresses remembered by the address plan; datagrams from
    /// further ones are dropped (`sources_dropped`). Default 65 536.
    pub max_ipv6_peers: usize,
    /// Datagrams read in one receive before the core is polled. Default 64.
    pub recv_batch: usize,
    /// Longest a closing connection may take to write its last bytes.
    /// Default 2 s.
    pub close_timeout: Duration,
    pub broadcast: Broadcast,
}

impl Default for GatewayIoConfig {
    fn default() -> Self {
        GatewayIoConfig {
            connect_timeout: Duration::from_secs(2),
            max_upstream_backlog: 128 * 1024,
            max_upstreams: 1024,
            max_ipv6_peers: 65_536,
            recv_batch: 64,
            close_timeout: Duration::from_secs(2),
            broadcast: Broadcast::Auto,
        }
    }
}

/// Counters of [`UdpTcpTransport`]. Gauges say "now".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayIoStats {
    pub datagrams_received: u64,
    pub bytes_received: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    /// Datagrams not sent: send error, full socket buffer, unknown address.
    pub send_errors: u64,
    pub broadcasts_sent: u64,
    /// Datagrams to the broadcast address dropped (no broadcast here).
    pub broadcasts_dropped: u64,
    /// Datagrams from sources the address plan cannot hold (IPv4 in
    /// 240.0.0.0/4, IPv6 beyond `max_ipv6_peers`).
    pub sources_dropped: u64,
    pub recv_errors: u64,
    pub upstream_connects: u64,
    pub upstream_connect_failures: u64,
    /// `OpenUpstream` refused: `max_upstreams` held.
    pub upstream_refused: u64,
    /// Closed by the broker (end of stream) or failed (read/write error).
    pub upstream_lost: u64,
    /// Closed because the backlog would have passed `max_upstream_backlog`.
    pub upstream_overflows: u64,
    /// Closes the gateway asked for (`CloseUpstream`).
    pub upstream_closes: u64,
    /// Closing connections whose last bytes did not go out in
    /// `close_timeout` (or were still waiting at shutdown).
    pub upstream_close_timeouts: u64,
    pub upstream_bytes_sent: u64,
    pub upstream_bytes_received: u64,
    /// Bytes for a connection that was no longer open (dropped).
    pub upstream_bytes_dropped: u64,
    /// Gauge: broker connections held (closing ones included).
    pub upstream_open: u64,
    /// Gauge: bytes waiting to be written, all connections.
    pub upstream_backlog: u64,
    /// Highest `upstream_backlog` seen.
    pub upstream_backlog_peak: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Lost,
    Overflow,
}

/// One TCP connection to the broker.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Bytes the socket did not take yet.
    out: Vec<u8>,
    /// After `CloseUpstream`: write `out`, then close, by this time.
    closing: Option<Instant>,
    /// To be closed (and reported, unless closing).
    failed: Option<Failure>,
}

/// Close a stream: FIN after the data already written, then drop.
fn close_stream(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Both);
}

/// Write as much of `bytes` as the non-blocking socket takes.
fn write_some(s: &mut TcpStream, bytes: &[u8]) -> Result<usize, ()> {
    let mut n = 0;
    while n < bytes.len() {
        match s.write(bytes.get(n..).unwrap_or(&[])) {
            Ok(0) => return Err(()),
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(n)
}

/// The gateway's sockets: UDP for MQTT-SN, TCP to the broker.
#[derive(Debug)]
pub struct UdpTcpTransport {
    socket: UdpSocket,
    local: SocketAddr,
    broker: SocketAddr,
    broadcast: Option<Ipv4Addr>,
    plan: AddrPlan,
    v6_peers: usize,
    conns: BTreeMap<Upstream, Conn>,
    cfg: GatewayIoConfig,
    rx: Vec<u8>,
    tcp_rx: Vec<u8>,
    /// The UDP socket's mode as last set (`None`: non-blocking).
    mode: Option<Option<Duration>>,
    stats: GatewayIoStats,
}

impl UdpTcpTransport {
    /// Bind the UDP socket at `listen` (port 0 picks one); broker
    /// connections go to `broker`.
    pub fn bind(
        listen: SocketAddr,
        broker: SocketAddr,
        cfg: GatewayIoConfig,
    ) -> Result<Self, SocketError> {
        let socket = UdpSocket::bind(listen).map_err(|source| SocketError::Bind {
            addr: listen,
            source,
        })?;
        let local = socket.local_addr()?;
        let broadcast = match (cfg.broadcast, local.ip()) {
            (Broadcast::Off, _) | (_, IpAddr::V6(_)) => None,
            (Broadcast::To(ip), _) => Some(ip),
            (Broadcast::Auto, IpAddr::V4(ip)) => (!ip.is_loopback()).then_some(Ipv4Addr::BROADCAST),
        };
        if broadcast.is_some() {
            socket.set_broadcast(true)?;
        }
        Ok(UdpTcpTransport {
            socket,
            local,
            broker,
            broadcast,
            plan: AddrPlan::new(),
            v6_peers: 0,
            conns: BTreeMap::new(),
            cfg,
            rx: vec![0; MAX_DATAGRAM],
            tcp_rx: vec![0; 16 * 1024],
            mode: None,
            stats: GatewayIoStats::default(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
    pub fn broker(&self) -> SocketAddr {
        self.broker
    }
    pub fn config(&self) -> &GatewayIoConfig {
        &self.cfg
    }
    /// Where broadcasts go (`None`: dropped).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        self.broadcast
    }
    pub fn stats(&self) -> &GatewayIoStats {
        &self.stats
    }

    /// An IPv4 destination on an IPv6 socket is written as `::ffff:a.b.c.d`.
    fn to_wire(&self, a: SocketAddr) -> SocketAddr {
        match (a.ip(), self.local) {
            (IpAddr::V4(v4), SocketAddr::V6(_)) => {
                SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port())
            }
            _ => a,
        }
    }

    fn send_udp(&mut self, to: SockAddr, bytes: &[u8]) {
        let dest = if to.addr.is_broadcast() {
            match self.broadcast {
                Some(ip) => {
                    self.stats.broadcasts_sent += 1;
                    SocketAddr::new(IpAddr::V4(ip), to.port)
                }
                None => {
                    self.stats.broadcasts_dropped += 1;
                    return;
                }
            }
        } else {
            match self.plan.resolve_sock(to) {
                Some(a) => self.to_wire(a),
                None => {
                    self.stats.send_errors += 1;
                    return;
                }
            }
        };
        match self.socket.send_to(bytes, dest) {
            Ok(_) => {
                self.stats.datagrams_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
            }
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// Queue MQTT bytes on connection `conn` (written at once when nothing
    /// waits before them).
    fn send_mqtt(&mut self, conn: Upstream, bytes: &[u8]) {
        let cap = self.cfg.max_upstream_backlog;
        let Some(c) = self
            .conns
            .get_mut(&conn)
            .filter(|c| c.failed.is_none() && c.closing.is_none())
        else {
            self.stats.upstream_bytes_dropped += bytes.len() as u64;
            return;
        };
        let mut rest = bytes;
        if c.out.is_empty() {
            match write_some(&mut c.stream, rest) {
                Ok(n) => {
                    self.stats.upstream_bytes_sent += n as u64;
                    rest = rest.get(n..).unwrap_or(&[]);
                }
                Err(()) => {
                    c.failed = Some(Failure::Lost);
                    self.stats.upstream_bytes_dropped += rest.len() as u64;
                    return;
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        if c.out.len() + rest.len() > cap {
            // A broker that does not read: close rather than grow.
            c.failed = Some(Failure::Overflow);
            self.stats.upstream_bytes_dropped += rest.len() as u64;
            return;
        }
        c.out.extend_from_slice(rest);
        self.stats.upstream_backlog += rest.len() as u64;
        self.stats.upstream_backlog_peak = self
            .stats
            .upstream_backlog_peak
            .max(self.stats.upstream_backlog);
    }

    /// `OpenUpstream`: connect (bounded), then non-blocking; the gateway
    /// hears `Connected` or `Closed` at once.
    fn open(&mut self, gw: &mut Gateway, clock: &Clock, conn: Upstream) {
        if let Some(old) = self.conns.remove(&conn) {
            // The same id again before its old transport finished closing.
            self.forget(&old);
            close_stream(&old.stream);
        }
        if self.conns.len() >= self.cfg.max_upstreams {
            self.stats.upstream_refused += 1;
            gw.handle_input(
                clock.now(),
                GatewayInput::Upstream {
                    conn,
                    event: StreamInput::Closed,
                },
            );
            return;
        }
        let stream =
            TcpStream::connect_timeout(&self.broker, self.cfg.connect_timeout).and_then(|s| {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                Ok(s)
            });
        let event = match stream {
            Ok(stream) => {
                self.stats.upstream_connects += 1;
                self.conns.insert(
                    conn,
                    Conn {
                        stream,
                        out: Vec::new(),
                        closing: None,
                        failed: None,
                    },
                );
                StreamInput::Connected
            }
            Err(_) => {
                self.stats.upstream_connect_failures += 1;
                StreamInput::Closed
            }
        };
        self.stats.upstream_open = self.conns.len() as u64;
        gw.handle_input(clock.now(), GatewayInput::Upstream { conn, event });
    }

    /// `CloseUpstream`: the bytes already queued go first, then FIN.
    fn close(&mut self, conn: Upstream) {
        self.stats.upstream_closes += 1;
        let deadline = Instant::now() + self.cfg.close_timeout;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = Some(deadline);
        }
        self.write_backlogs();
        self.finish_closing(false);
    }

    /// A connection leaves the table: its backlog leaves the gauge.
    fn forget(&mut self, c: &Conn) {
        self.stats.upstream_backlog = self
            .stats
            .upstream_backlog
            .saturating_sub(c.out.len() as u64);
        self.stats.upstream_open = self.conns.len() as u64;
    }

    /// Write what waits, on every connection that has something.
    fn write_backlogs(&mut self) {
        for c in self.conns.values_mut() {
            if c.out.is_empty() || c.failed.is_some() {
                continue;
            }
            match write_some(&mut c.stream, &c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                    self.stats.upstream_bytes_sent += n as u64;
                    self.stats.upstream_backlog =
                        self.stats.upstream_backlog.saturating_sub(n as u64);
                }
                Err(()) => c.failed = Some(Failure::Lost),
            }
        }
    }

    /// Close the closing connections whose backlog is out (or whose time is
    /// up, or all of them when `force`).
    fn finish_closing(&mut self, force: bool) {
        let now = Instant::now();
        let done: Vec<Upstream> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.closing.is_some_and(|d| force || now >= d)
                    || (c.closing.is_some() && (c.out.is_empty() || c.failed.is_some()))
            })
            .map(|(k, _)| *k)
            .collect();
        for k in done {
            if let Some(c) = self.conns.remove(&k) {
                if !c.out.is_empty() && c.failed.is_none() {
                    self.stats.upstream_close_timeouts += 1;
                }
                self.forget(&c);
                close_stream(&c.stream);
            }
        }
    }

    /// Close failed connections and tell the gateway (unless it asked for
    /// the close itself). Whether any was closed.
    fn reap(&mut self, gw: &mut Gateway, clock: &Clock) -> bool {
        let failed: Vec<(Upstream, Failure)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| c.failed.map(|f| (*k, f)))
            .collect();
        let busy = !failed.is_empty();
        for (k, f) in failed {
            let Some(c) = self.conns.remove(&k) else {
                continue;
            };
            self.forget(&c);
            close_stream(&c.stream);
            match f {
                Failure::Lost => self.stats.upstream_lost += 1,
                Failure::Overflow => self.stats.upstream_overflows += 1,
            }
            if c.closing.is_none() {
                gw.handle_input(
                    clock.now(),
                    GatewayInput::Upstream {
                        conn: k,
                        event: StreamInput::Closed,
                    },
                );
            }
        }
        busy
    }

    /// Read what the broker connections have (non-blocking, a few reads
    /// each). Whether anything arrived or failed.
    fn read_upstreams(&mut self, gw: &mut Gateway, clock: &Clock) -> bool {
        if self.conns.is_empty() {
            return false;
        }
        let mut busy = false;
        let ids: Vec<Upstream> = self.conns.keys().copied().collect();
        for k in ids {
            for _ in 0..READS_PER_CONN {
                let Some(c) = self.conns.get_mut(&k) else {
                    break;
                };
                if c.failed.is_some() || c.closing.is_some() {
                    break;
                }
                match c.stream.read(&mut self.tcp_rx) {
                    Ok(0) => {
                        c.failed = Some(Failure::Lost);
                        busy = true;
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        self.stats.upstream_bytes_received += n as u64;
                        let data = self.tcp_rx.get(..n).unwrap_or(&[]);
                        gw.handle_input(
                            clock.now(),
                            GatewayInput::Upstream {
                                conn: k,
                                event: StreamInput::Bytes(data),
                            },
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.failed = Some(Failure::Lost);
                        busy = true;
                        break;
                    }
                }
            }
        }
        busy
    }

    /// Put the UDP socket in the mode wanted: `None` non-blocking, `Some(d)`
    /// blocking for at most `d`.
    fn set_mode(&mut self, wait: Option<Duration>) -> std::io::Result<()> {
        if self.mode == Some(wait) {
            return Ok(());
        }
        match wait {
            None => self.socket.set_nonblocking(true)?,
            Some(d) => {
                if self.mode.is_none() || self.mode == Some(None) {
                    self.socket.set_nonblocking(false)?;
                }
                self.socket
                    .set_read_timeout(Some(d.max(Duration::from_millis(1))))?;
            }
        }
        self.mode = Some(wait);
        Ok(())
    }

    /// Read up to `recv_batch` datagrams, the first waiting at most `first`
    /// (`None`: not at all). How many arrived.
    fn read_datagrams(
        &mut self,
        gw: &mut Gateway,
        clock: &Clock,
        first: Option<Duration>,
    ) -> usize {
        let mut got = 0;
        let mut wait = first;
        for _ in 0..self.cfg.recv_batch.max(1) {
            if self.set_mode(wait).is_err() {
                self.stats.recv_errors += 1;
                break;
            }
            match self.socket.recv_from(&mut self.rx) {
                Ok((n, from)) => {
                    got += 1;
                    wait = None;
                    self.stats.datagrams_received += 1;
                    self.stats.bytes_received += n as u64;
                    let Some(from) = self.intern(from) else {
                        self.stats.sources_dropped += 1;
                        continue;
                    };
                    let data = self.rx.get(..n).unwrap_or(&[]);
                    gw.handle_input(clock.now(), GatewayInput::Datagram(Datagram { from, data }));
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // An ICMP error of an earlier send, reported here: not ours.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                    ) =>
                {
                    wait = None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => break,
                Err(_) => {
                    self.stats.recv_errors += 1;
                    break;
                }
            }
        }
        got
    }

    /// A source address in the plan's terms; `None` when it cannot be held.
    fn intern(&mut self, from: SocketAddr) -> Option<SockAddr> {
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if ip.is_ipv6() && self.plan.lookup(ip).is_none() {
            if self.v6_peers >= self.cfg.max_ipv6_peers {
                return None;
            }
            self.v6_peers += 1;
        }
        Some(SockAddr::new(self.plan.intern(ip)?, from.port()))
    }

    /// Close every connection at once (after `shutdown`'s grace time).
    fn close_all(&mut self) {
        for (_, c) in std::mem::take(&mut self.conns) {
            if !c.out.is_empty() {
                self.stats.upstream_close_timeouts += 1;
            }
            close_stream(&c.stream);
        }
        self.stats.upstream_backlog = 0;
        self.stats.upstream_open = 0;
    }
}

impl Transport<Gateway> for UdpTcpTransport {
    type Error = SocketError;

    fn send(
        &mut self,
        _gw: &mut Gateway,
        _clock: &Clock,
        t: &GatewayTransmit,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        match *t {
            GatewayTransmit::Udp { to, .. } => self.send_udp(to, bytes),
            GatewayTransmit::Mqtt { conn, .. } => self.send_mqtt(conn, bytes),
        }
        Ok(())
    }

    /// Write backlogs, finish closes, report failed connections.
    fn after_flush(&mut self, gw: &mut Gateway, clock: &Clock) -> Result<bool, SocketError> {
        if self.conns.is_empty() {
            return Ok(false);
        }
        self.write_backlogs();
        self.finish_closing(false);
        Ok(self.reap(gw, clock))
    }

    /// Open and close broker connections; every other event goes to the
    /// caller.
    fn event(
        &mut self,
        gw: &mut Gateway,
        clock: &Clock,
        ev: GatewayEvent,
    ) -> Result<Option<GatewayEvent>, SocketError> {
        match ev {
            GatewayEvent::OpenUpstream { conn } => {
                self.open(gw, clock, conn);
                Ok(None)
            }
            GatewayEvent::CloseUpstream { conn } => {
                self.close(conn);
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    /// Broker connections first (non-blocking), then datagrams: wait for
    /// the first only when nothing else came, at most `wait` (2 ms while
    /// connections are open, which are polled).
    fn receive(
        &mut self,
        gw: &mut Gateway,
        clock: &Clock,
        wait: Duration,
    ) -> Result<bool, SocketError> {
        let mut busy = self.read_upstreams(gw, clock);
        busy |= self.reap(gw, clock);
        let first = if busy {
            None
        } else if self.conns.is_empty() {
            Some(wait)
        } else {
            Some(wait.min(POLL_SLICE))
        };
        busy |= self.read_datagrams(gw, clock, first) > 0;
        Ok(busy)
    }
}

/// Everything a running gateway counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewaySnapshot {
    pub gateway: GatewayStats,
    pub io: GatewayIoStats,
    /// Clients with a session now.
    pub clients: usize,
    /// Upstream MQTT connections the gateway holds now.
    pub upstreams: usize,
}

/// The gateway over a UDP socket and broker connections.
pub type GatewayDriver = Driver<Gateway, UdpTcpTransport>;

impl Driver<Gateway, UdpTcpTransport> {
    /// Serve MQTT-SN on `listen` (UDP; port 0 picks one) and reach the
    /// broker at `broker` (TCP), with the default [`GatewayIoConfig`]. The
    /// gateway starts (advertising, when `config.t_adv` is set) now.
    pub fn bind(
        listen: SocketAddr,
        broker: SocketAddr,
        config: GatewayConfig,
    ) -> Result<Self, SocketError> {
        Self::bind_with(listen, broker, config, GatewayIoConfig::default())
    }

    /// [`GatewayDriver::bind`] with these transport limits.
    pub fn bind_with(
        listen: SocketAddr,
        broker: SocketAddr,
        config: GatewayConfig,
        io: GatewayIoConfig,
    ) -> Result<Self, SocketError> {
        let transport = UdpTcpTransport::bind(listen, broker, io)?;
        // Real time is not reproducible anyway: a seed per process keeps
        // two gateways' reconnect jitter apart.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let mut d = Driver::new(
            Gateway::new(config, SimRng::stream(seed, "mqttsn-gateway")),
            transport,
        );
        let now = d.now();
        d.core_mut().start(now);
        d.flush()?;
        Ok(d)
    }

    /// The UDP address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.transport().local
    }

    pub fn gateway(&self) -> &Gateway {
        self.core()
    }

    pub fn io_stats(&self) -> &GatewayIoStats {
        &self.transport().stats
    }

    /// The counters now.
    pub fn snapshot(&self) -> GatewaySnapshot {
        GatewaySnapshot {
            gateway: self.core().stats().clone(),
            io: self.transport().stats.clone(),
            clients: self.core().client_count(),
            upstreams: self.core().upstream_count(),
        }
    }

    /// Close every broker connection: MQTT DISCONNECT on each, written
    /// within `limit`, then the sockets are closed. The UDP socket stays
    /// bound until the driver is dropped.
    pub fn shutdown(&mut self, limit: Duration) -> Result<(), SocketError> {
        let now = self.now();
        self.core_mut().shutdown(now);
        self.flush()?;
        let deadline = Instant::now() + limit;
        loop {
            let (gw, io, clock) = self.parts_mut();
            io.write_backlogs();
            io.finish_closing(false);
            io.reap(gw, clock);
            if io.conns.is_empty() || Instant::now() >= deadline {
                io.close_all();
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.flush()?;
        Ok(())
    }

    /// Run the gateway on its own thread until [`GatewayThread::stop`].
    /// Events are not kept there (memory stays bounded); counters are
    /// ([`GatewayThread::snapshot`]).
    pub fn spawn(self) -> GatewayThread {
        let shared = Arc::new(Mutex::new(self.snapshot()));
        let addr = self.local_addr();
        let snap = shared.clone();
        let worker = Worker::spawn(move |flag| run_gateway(self, flag, &snap));
        GatewayThread {
            addr,
            shared,
            worker,
        }
    }
}

/// How often a running gateway's thread publishes its counters.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(2);

fn run_gateway(
    mut d: GatewayDriver,
    stop: &AtomicBool,
    shared: &Mutex<GatewaySnapshot>,
) -> Result<GatewayDriver, SocketError> {
    let publish = |d: &GatewayDriver| {
        *shared.lock().unwrap_or_else(PoisonError::into_inner) = d.snapshot();
    };
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        d.step(Duration::from_millis(10))?;
        while d.poll_event().is_some() {}
        if last.elapsed() >= SNAPSHOT_EVERY {
            publish(&d);
            last = Instant::now();
        }
    }
    let r = d.shutdown(Duration::from_secs(2));
    publish(&d);
    r.map(|()| d)
}

/// A gateway serving on a background thread; stopped (its broker
/// connections closed) when dropped.
#[derive(Debug)]
pub struct GatewayThread {
    addr: SocketAddr,
    shared: Arc<Mutex<GatewaySnapshot>>,
    worker: Worker<Result<GatewayDriver, SocketError>>,
}

impl GatewayThread {
    /// The UDP address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters, at most a few milliseconds old.
    pub fn snapshot(&self) -> GatewaySnapshot {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Wait (at most `limit`) until `f` holds for the counters; those
    /// counters, or `None` when the time ran out (or the thread ended).
    pub fn wait_for(
        &self,
        limit: Duration,
        f: impl Fn(&GatewaySnapshot) -> bool,
    ) -> Option<GatewaySnapshot> {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.snapshot();
            if f(&s) {
                return Some(s);
            }
            if Instant::now() >= deadline || self.is_finished() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The thread ended (stopped, or failed: [`GatewayThread::stop`] says
    /// why).
    pub fn is_finished(&self) -> bool {
        self.worker.is_finished()
    }

    /// Stop serving: broker connections are closed (MQTT DISCONNECT first,
    /// at most 2 s); hands back the driver (final counters).
    pub fn stop(self) -> Result<GatewayDriver, SocketError> {
        self.worker
            .stop()
            .unwrap_or(Err(SocketError::ThreadPanicked))
    }
}

/// Counters of [`UdpClient`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIoStats {
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    pub send_errors: u64,
    /// SEARCHGW / GWINFO to the broadcast address, dropped (a client over
    /// this transport is given its gateway's address).
    pub broadcasts_dropped: u64,
    /// Datagrams from addresses the plan cannot hold.
    pub sources_dropped: u64,
}

/// A client's UDP socket.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    local: SocketAddr,
    plan: AddrPlan,
    rx: Vec<u8>,
    stats: ClientIoStats,
}

impl Transport<Client> for UdpClient {
    type Error = SocketError;

    fn send(
        &mut self,
        _client: &mut Client,
        _clock: &Clock,
        t: &ClientTransmit,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        if t.to.addr.is_broadcast() {
            self.stats.broadcasts_dropped += 1;
            return Ok(());
        }
        let sent = self
            .plan
            .resolve_sock(t.to)
            .is_some_and(|to| self.socket.send_to(bytes, to).is_ok());
        if sent {
            self.stats.datagrams_sent += 1;
        } else {
            self.stats.send_errors += 1;
        }
        Ok(())
    }

    fn event(
        &mut self,
        _client: &mut Client,
        _clock: &Clock,
        ev: ClientEvent,
    ) -> Result<Option<ClientEvent>, SocketError> {
        Ok(Some(ev))
    }

    fn receive(
        &mut self,
        client: &mut Client,
        clock: &Clock,
        wait: Duration,
    ) -> Result<bool, SocketError> {
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match self.socket.recv_from(&mut self.rx) {
            Ok((n, from)) => {
                self.stats.datagrams_received += 1;
                match self.plan.intern_sock(from) {
                    Some(from) => {
                        let data = self.rx.get(..n).unwrap_or(&[]);
                        client.handle_input(clock.now(), Datagram { from, data });
                    }
                    None => self.stats.sources_dropped += 1,
                }
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock
                        | ErrorKind::TimedOut
                        | ErrorKind::Interrupted
                        | ErrorKind::ConnectionRefused
                        | ErrorKind::ConnectionReset
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// An MQTT-SN client on a UDP socket.
pub type ClientDriver = Driver<Client, UdpClient>;

impl Driver<Client, UdpClient> {
    /// Bind `local` (port 0 picks one) and drive `client` there; tell it
    /// its gateway with [`ClientDriver::add_gateway`], then
    /// [`ClientDriver::connect`].
    pub fn bind(local: SocketAddr, client: Client) -> Result<Self, SocketError> {
        let socket = UdpSocket::bind(local).map_err(|source| SocketError::Bind {
            addr: local,
            source,
        })?;
        let local = socket.local_addr()?;
        Ok(Driver::new(
            client,
            UdpClient {
                socket,
                local,
                plan: AddrPlan::new(),
                rx: vec![0; MAX_DATAGRAM],
                stats: ClientIoStats::default(),
            },
        ))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.transport().local
    }

    pub fn io_stats(&self) -> &ClientIoStats {
        &self.transport().stats
    }

    /// The gateway `gw_id` is at `addr` (as if found by GWINFO).
    pub fn add_gateway(&mut self, gw_id: u8, addr: SocketAddr) -> Result<(), SocketError> {
        let (client, io, _) = self.parts_mut();
        let a = io
            .plan
            .intern_sock(addr)
            .ok_or(SocketError::Unrepresentable { addr })?;
        client.add_gateway(gw_id, a);
        self.flush().map(|_| ())
    }

    /// Start connecting (CONNECT to the first known gateway).
    pub fn connect(&mut self) -> Result<(), SocketError> {
        let now = self.now();
        self.core_mut().connect(now);
        self.flush().map(|_| ())
    }

    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: Qos,
        retain: bool,
    ) -> Result<MessageHandle, SocketError> {
        let now = self.now();
        let h = self
            .core_mut()
            .publish(now, topic, payload.to_vec(), qos, retain)?;
        self.flush()?;
        Ok(h)
    }

    pub fn subscribe(
        &mut self,
        topic: &str,
        id_type: TopicIdType,
        qos: Qos,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self.core_mut().subscribe(now, topic, id_type, qos)?;
        self.flush()?;
        Ok(h)
    }

    pub fn unsubscribe(
        &mut self,
        topic: &str,
        id_type: TopicIdType,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self.core_mut().unsubscribe(now, topic, id_type)?;
        self.flush()?;
        Ok(h)
    }

    /// DISCONNECT (the gateway answers DISCONNECT).
    pub fn disconnect(&mut self) -> Result<(), SocketError> {
        let now = self.now();
        self.core_mut().disconnect(now);
        self.flush().map(|_| ())
    }
}
