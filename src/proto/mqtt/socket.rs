//! The [`Client`] and [`Broker`] over real `std::net` TCP sockets: two
//! [`Transport`]s for the one real-socket [`Driver`]
//! (`proto::driver`), for interoperability tests against mosquitto and
//! paho-mqtt.
//!
//! Every wait is bounded: connects and writes have timeouts, reads wait at
//! most until the core's next timer or the caller's limit, and the broker's
//! socket loop reads non-blocking sockets and, when a round finds nothing
//! to do, waits in poll(2) for any of them (at most until the next timer or
//! the caller's limit). Nothing here can hang.

use super::BrokerInput;
use crate::proto::driver::{Clock, Driver, Timeout, Transport, Worker};
use crate::proto::StreamInput;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::broker::Broker;
use super::client::Client;
use super::events::{
    BrokerEvent, BrokerTransmit, ClientError, ClientEvent, ClientTransmit, ConnId, MessageHandle,
    RequestHandle,
};
use super::packet::QoS;
use super::topic::{TopicFilter, TopicName};
use super::v5::{Properties, SubOptions};
use crate::sim::SimTime;

/// How long a TCP connect or a blocking write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the socket drivers.
#[derive(Debug, Error)]
pub enum SocketError {
    #[error("binding TCP listener to {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        source: std::io::Error,
    },
    #[error("listener bound to a non-IPv4 address {addr}")]
    NotIpv4 { addr: SocketAddr },
    #[error("socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Timeout(#[from] Timeout),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("broker thread panicked")]
    ThreadPanicked,
}

/// A client's TCP connection to a broker.
#[derive(Debug)]
pub struct TcpClient {
    broker: SocketAddrV4,
    stream: Option<TcpStream>,
    rx: Vec<u8>,
}

impl TcpClient {
    /// Connections go to `broker` when the client asks for one.
    pub fn new(broker: SocketAddrV4) -> Self {
        TcpClient {
            broker,
            stream: None,
            rx: vec![0; 16 * 1024],
        }
    }

    fn lost(&mut self, client: &mut Client, clock: &Clock) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        client.handle_input(clock.now(), StreamInput::Closed);
    }
}

impl Transport<Client> for TcpClient {
    type Error = SocketError;

    fn send(
        &mut self,
        client: &mut Client,
        clock: &Clock,
        _t: &ClientTransmit,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        let ok = match self.stream.as_mut() {
            Some(s) => s.write_all(bytes).is_ok(),
            None => true, // nowhere to send: the client resends on reconnect
        };
        if !ok {
            self.lost(client, clock);
        }
        Ok(())
    }

    fn event(
        &mut self,
        client: &mut Client,
        clock: &Clock,
        ev: ClientEvent,
    ) -> Result<Option<ClientEvent>, SocketError> {
        match ev {
            ClientEvent::OpenTransport => {
                let addr = SocketAddr::V4(self.broker);
                match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        s.set_write_timeout(Some(IO_TIMEOUT))?;
                        self.stream = Some(s);
                        client.handle_input(clock.now(), StreamInput::Connected);
                    }
                    Err(_) => client.handle_input(clock.now(), StreamInput::Closed),
                }
                Ok(None)
            }
            ClientEvent::CloseTransport => {
                if let Some(s) = self.stream.take() {
                    let _ = s.shutdown(Shutdown::Both);
                }
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    fn receive(
        &mut self,
        client: &mut Client,
        clock: &Clock,
        wait: Duration,
    ) -> Result<bool, SocketError> {
        let Some(s) = self.stream.as_mut() else {
            std::thread::sleep(wait);
            return Ok(false);
        };
        s.set_read_timeout(Some(wait))?;
        match s.read(&mut self.rx) {
            Ok(0) => self.lost(client, clock),
            Ok(n) => {
                let data = self.rx.get(..n).unwrap_or(&[]);
                client.handle_input(clock.now(), StreamInput::Bytes(data));
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false)
            }
            Err(_) => self.lost(client, clock),
        }
        Ok(true)
    }
}

/// A [`Client`] connected to a broker over TCP.
pub type ClientDriver = Driver<Client, TcpClient>;

impl Driver<Client, TcpClient> {
    /// Drive `client` against the broker at `broker`; call
    /// [`ClientDriver::connect`] to start.
    pub fn tcp(client: Client, broker: SocketAddrV4) -> Self {
        Driver::new(client, TcpClient::new(broker))
    }

    /// Start connecting (the TCP connect happens at once, bounded by 2 s).
    pub fn connect(&mut self) -> Result<(), SocketError> {
        self.core_mut().connect();
        self.flush().map(|_| ())
    }

    pub fn publish(
        &mut self,
        topic: TopicName,
        payload: &[u8],
        qos: QoS,
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
        filters: Vec<(TopicFilter, QoS)>,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self.core_mut().subscribe(now, filters)?;
        self.flush()?;
        Ok(h)
    }

    /// Send DISCONNECT and close the socket.
    pub fn disconnect(&mut self) -> Result<(), SocketError> {
        self.core_mut().disconnect();
        self.flush().map(|_| ())
    }

    /// MQTT 5.0 publish with message properties ([`Client::publish5`]).
    pub fn publish5(
        &mut self,
        topic: TopicName,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        props: Properties,
    ) -> Result<MessageHandle, SocketError> {
        let now = self.now();
        let h = self
            .core_mut()
            .publish5(now, topic, payload.to_vec(), qos, retain, props)?;
        self.flush()?;
        Ok(h)
    }

    /// MQTT 5.0 SUBSCRIBE with options and an optional subscription
    /// identifier ([`Client::subscribe5`]).
    pub fn subscribe5(
        &mut self,
        filters: Vec<(TopicFilter, SubOptions)>,
        subscription_identifier: Option<u32>,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self
            .core_mut()
            .subscribe5(now, filters, subscription_identifier, Vec::new())?;
        self.flush()?;
        Ok(h)
    }

    /// MQTT 5.0 DISCONNECT setting the session expiry
    /// ([`Client::disconnect5`]), then close the socket.
    pub fn disconnect5(&mut self, session_expiry: Option<u32>) -> Result<(), SocketError> {
        self.core_mut().disconnect5(session_expiry)?;
        self.flush().map(|_| ())
    }

    /// Close the socket abruptly (no DISCONNECT) and tell the client.
    pub fn drop_transport(&mut self) {
        let (client, io, clock) = self.parts_mut();
        io.lost(client, clock);
    }
}

#[derive(Debug)]
struct ConnIo {
    stream: TcpStream,
    out: Vec<u8>,
}

impl ConnIo {
    /// Write what the socket takes of `out` without blocking, adding the
    /// bytes written to `written`: `Ok(())` when all of it went or the
    /// socket is full (WouldBlock), `Err(())` when the connection failed
    /// (an error, or a write of 0 bytes).
    fn flush_out(&mut self, written: &mut u64) -> Result<(), ()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    *written += n as u64;
                    self.out.drain(..n.min(self.out.len()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }
}

/// Watches a served broker's connections and the bytes they carry (what
/// `qossim broker --log` writes). Called on the broker's thread, in order;
/// `now` is the driver's clock.
pub trait BrokerTap: Send + std::fmt::Debug {
    /// A connection was accepted and handed to the broker as `conn`.
    fn accepted(&mut self, now: SimTime, conn: ConnId, peer: SocketAddr);
    /// A connection beyond the connection limit was accepted and closed at
    /// once (the broker never saw it).
    fn refused(&mut self, now: SimTime, peer: SocketAddr);
    /// Bytes read from `conn`, as read (any split of the stream), before
    /// the broker gets them.
    fn received(&mut self, now: SimTime, conn: ConnId, data: &[u8]);
    /// One whole packet the broker sends on `conn`.
    fn sent(&mut self, now: SimTime, conn: ConnId, t: &BrokerTransmit, packet: &[u8]);
    /// `conn` was closed (by the peer, by the broker, or as a slow
    /// consumer); `why` says which.
    fn closed(&mut self, now: SimTime, conn: ConnId, why: &str);
}

/// Counters of a [`TcpServer`]'s sockets (the broker's own are
/// [`super::BrokerStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and handed to the broker.
    pub accepted: u64,
    /// Connections accepted beyond the connection limit and closed at once.
    pub refused_over_limit: u64,
    /// `accept` failures (see [`ACCEPT_BACKOFF`]).
    pub accept_errors: u64,
    /// Connections closed as slow consumers ([`DEFAULT_MAX_OUT_BYTES`]).
    pub slow_closed: u64,
    /// Bytes read from, and written to, client sockets.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Gauge: the most connections open at once.
    pub peak_connections: u64,
}

/// A broker's listening socket and its accepted connections.
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    local: SocketAddrV4,
    conns: BTreeMap<ConnId, ConnIo>,
    next_conn: u64,
    rx: Vec<u8>,
    /// Counters; `accept_errors` counts `accept` failures (EMFILE, ENFILE,
    /// ENOBUFS, ECONNABORTED, …) and accepted sockets that could not be set
    /// up; each is survived.
    stats: ServerStats,
    /// Connections served at once; one more is accepted and closed at once.
    max_conns: usize,
    /// Told about every connection and packet (`qossim broker --log`).
    tap: Option<Box<dyn BrokerTap>>,
    /// After an `accept` failure, no new `accept` before this instant (the
    /// connections already open keep being served meanwhile).
    accept_paused_until: Option<Instant>,
    /// Bytes a connection may have waiting for its socket; past this it is
    /// a slow consumer and is closed ([`DEFAULT_MAX_OUT_BYTES`]).
    max_out: usize,
    /// Connections over `max_out`, closed at the end of this flush.
    slow: Vec<ConnId>,
    /// Connections the broker closed whose last bytes (a refusing CONNACK)
    /// are still being written, without blocking, until the deadline.
    closing: Vec<(ConnIo, Instant)>,
}

/// Default bound of the bytes waiting to be written to one connection
/// (beyond what its kernel socket buffer holds): a subscriber that stops
/// reading under a flood is disconnected, not buffered for without limit.
pub const DEFAULT_MAX_OUT_BYTES: usize = 4 << 20;

/// How long the listener rests after an `accept` failure: running out of
/// descriptors (EMFILE) does not clear by retrying at once, and a tight
/// retry loop would starve the connections being served.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Reads (of up to 16 KiB) from one connection per receive round.
const READS_PER_ROUND: usize = 4;

/// Longest single wait of an idle broker in poll(2): the driver's own limit
/// is usually shorter; this bounds the wait if it is not.
const MAX_IDLE_WAIT: Duration = Duration::from_millis(100);

impl TcpServer {
    /// Listen on `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddrV4) -> Result<Self, SocketError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| SocketError::Bind { addr, source })?;
        listener.set_nonblocking(true)?;
        let local = match listener.local_addr()? {
            SocketAddr::V4(a) => a,
            other => return Err(SocketError::NotIpv4 { addr: other }),
        };
        Ok(TcpServer {
            listener,
            local,
            conns: BTreeMap::new(),
            next_conn: 0,
            rx: vec![0; 16 * 1024],
            stats: ServerStats::default(),
            max_conns: usize::MAX,
            tap: None,
            accept_paused_until: None,
            max_out: DEFAULT_MAX_OUT_BYTES,
            slow: Vec::new(),
            closing: Vec::new(),
        })
    }

    /// Write what the closing connections' sockets take; drop those that
    /// are done, failed or past their deadline. Whether one was dropped.
    fn drain_closing(&mut self) -> bool {
        let before = self.closing.len();
        let now = Instant::now();
        let written = &mut self.stats.bytes_written;
        self.closing.retain_mut(|(c, deadline)| {
            // kept while bytes wait for a full socket, until the deadline
            let open = c.flush_out(written).is_ok() && !c.out.is_empty() && now < *deadline;
            if !open {
                let _ = c.stream.shutdown(Shutdown::Both);
            }
            open
        });
        self.closing.len() != before
    }

    /// Take the connections waiting in the backlog. An `accept` error (out
    /// of descriptors, a connection reset before it was taken) is counted
    /// and pauses accepting for [`ACCEPT_BACKOFF`]; it never ends the
    /// server.
    fn accept_all(&mut self, broker: &mut Broker, clock: &Clock) -> bool {
        if let Some(t) = self.accept_paused_until {
            if Instant::now() < t {
                return false;
            }
            self.accept_paused_until = None;
        }
        let mut busy = false;
        loop {
            match self.listener.accept() {
                Ok((s, peer)) => {
                    busy = true;
                    if self.conns.len() >= self.max_conns {
                        // over the limit: accepted (so the peer is not left
                        // waiting in the backlog) and closed at once
                        let _ = s.shutdown(Shutdown::Both);
                        self.stats.refused_over_limit += 1;
                        if let Some(tap) = self.tap.as_mut() {
                            tap.refused(clock.now(), peer);
                        }
                        continue;
                    }
                    if s.set_nonblocking(true).is_err() || s.set_nodelay(true).is_err() {
                        self.stats.accept_errors += 1;
                        continue;
                    }
                    self.next_conn += 1;
                    let id = ConnId(self.next_conn);
                    self.conns.insert(
                        id,
                        ConnIo {
                            stream: s,
                            out: Vec::new(),
                        },
                    );
                    self.stats.accepted += 1;
                    self.stats.peak_connections =
                        self.stats.peak_connections.max(self.conns.len() as u64);
                    if let Some(tap) = self.tap.as_mut() {
                        tap.accepted(clock.now(), id, peer);
                    }
                    broker.handle_input(clock.now(), BrokerInput::accepted(id));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.accept_errors += 1;
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    break;
                }
            }
        }
        busy
    }

    /// Wait until a socket is ready (the listener has a connection, a
    /// connection has bytes or room for its waiting output, a closing one
    /// room for its last bytes), a signal arrives, or `wait` passes.
    fn wait_ready(&self, wait: Duration) {
        use std::os::fd::AsRawFd;
        let mut wait = wait.min(MAX_IDLE_WAIT);
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        let pollfd = |fd: &dyn AsRawFd, out: bool| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN | if out { libc::POLLOUT } else { 0 },
            revents: 0,
        };
        match self.accept_paused_until {
            // while accepting rests, wake when it may resume
            Some(t) => wait = wait.min(t.saturating_duration_since(Instant::now())),
            None => fds.push(pollfd(&self.listener, false)),
        }
        for c in self.conns.values() {
            fds.push(pollfd(&c.stream, !c.out.is_empty()));
        }
        for (c, deadline) in &self.closing {
            fds.push(pollfd(&c.stream, true));
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        // rounded up: a timer due in 0.3 ms is not polled for with 0 ms
        let ms = wait.as_micros().div_ceil(1000);
        let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a live, initialised array of `fds.len()`
        // pollfd structs that poll(2) reads and writes (revents) for the
        // duration of the call only; its descriptors belong to sockets
        // this server owns. The result is not needed: the next round
        // reads whatever is ready (an error or EINTR only ends the wait).
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
    }

    fn close(&mut self, broker: &mut Broker, clock: &Clock, id: ConnId, why: &str) {
        if self.conns.remove(&id).is_some() {
            if let Some(tap) = self.tap.as_mut() {
                tap.closed(clock.now(), id, why);
            }
            broker.handle_input(clock.now(), BrokerInput::closed(id));
        }
    }
}

impl Transport<Broker> for TcpServer {
    type Error = SocketError;

    /// Queue the packet on its connection (written by `after_flush`).
    fn send(
        &mut self,
        _broker: &mut Broker,
        clock: &Clock,
        t: &BrokerTransmit,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        if let Some(c) = self.conns.get_mut(&t.conn) {
            if let Some(tap) = self.tap.as_mut() {
                tap.sent(clock.now(), t.conn, t, bytes);
            }
            // straight to the socket when nothing waits before it: only what
            // the kernel does not take is buffered (and counts against the
            // bound)
            let mut bytes = bytes;
            while c.out.is_empty() && !bytes.is_empty() {
                match c.stream.write(bytes) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.stats.bytes_written += n as u64;
                        bytes = bytes.get(n..).unwrap_or(&[]);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // WouldBlock: buffer it; another error: the write in
                    // after_flush meets it again and closes the connection
                    Err(_) => break,
                }
            }
            if bytes.is_empty() {
                return Ok(());
            }
            if c.out.len() + bytes.len() > self.max_out {
                // a slow consumer: closed at the end of this flush
                if !self.slow.contains(&t.conn) {
                    self.slow.push(t.conn);
                }
            } else {
                c.out.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// Write what the sockets take.
    fn after_flush(&mut self, broker: &mut Broker, clock: &Clock) -> Result<bool, SocketError> {
        let mut failed = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if c.flush_out(&mut self.stats.bytes_written).is_err() {
                failed.push(*id);
            }
        }
        let mut busy = !failed.is_empty() || !self.slow.is_empty();
        for id in failed {
            self.close(broker, clock, id, "write failed");
        }
        for id in std::mem::take(&mut self.slow) {
            if let Some(c) = self.conns.get(&id) {
                let _ = c.stream.shutdown(Shutdown::Both);
                self.stats.slow_closed += 1;
            }
            self.close(
                broker,
                clock,
                id,
                "slow consumer: write backlog over its bound",
            );
        }
        busy |= self.drain_closing();
        Ok(busy)
    }

    /// Carry out `Close` (last bytes first, bounded); every event goes to
    /// the caller too.
    fn event(
        &mut self,
        _broker: &mut Broker,
        clock: &Clock,
        ev: BrokerEvent,
    ) -> Result<Option<BrokerEvent>, SocketError> {
        if let BrokerEvent::Close(id) = ev {
            if let Some(c) = self.conns.remove(&id) {
                if let Some(tap) = self.tap.as_mut() {
                    tap.closed(clock.now(), id, "closed by the broker");
                }
                // Last bytes (e.g. a refusing CONNACK) go out first, written
                // without blocking the other connections, for at most
                // IO_TIMEOUT.
                self.closing.push((c, Instant::now() + IO_TIMEOUT));
                self.drain_closing();
            }
        }
        Ok(Some(ev))
    }

    /// Accept, read every socket; when nothing was there, wait (at most
    /// `wait`) in poll(2) until a socket is ready.
    fn receive(
        &mut self,
        broker: &mut Broker,
        clock: &Clock,
        wait: Duration,
    ) -> Result<bool, SocketError> {
        let mut busy = self.accept_all(broker, clock);
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            // At most READS_PER_ROUND reads per connection before the broker's
            // output is flushed: a publisher writing without pause would
            // otherwise be read to its end first, its copies piling up in
            // the broker, and starve the other connections.
            let mut reads = 0;
            while let Some(c) = self.conns.get_mut(&id) {
                if reads == READS_PER_ROUND {
                    break;
                }
                reads += 1;
                match c.stream.read(&mut self.rx) {
                    Ok(0) => {
                        self.close(broker, clock, id, "closed by the peer");
                        busy = true;
                        break;
                    }
                    Ok(n) => {
                        let data = self.rx.get(..n).unwrap_or(&[]);
                        self.stats.bytes_read += n as u64;
                        if let Some(tap) = self.tap.as_mut() {
                            tap.received(clock.now(), id, data);
                        }
                        broker.handle_input(clock.now(), BrokerInput::bytes(id, data));
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.close(broker, clock, id, "read failed");
                        busy = true;
                        break;
                    }
                }
            }
        }
        if !busy {
            self.wait_ready(wait);
        }
        Ok(busy)
    }
}

/// A [`Broker`] listening on a TCP port.
pub type BrokerDriver = Driver<Broker, TcpServer>;

impl Driver<Broker, TcpServer> {
    /// Listen on `addr` (port 0 picks a free port). The broker's clock
    /// starts now.
    pub fn bind(addr: SocketAddrV4, broker: Broker) -> Result<Self, SocketError> {
        Ok(Driver::new(broker, TcpServer::bind(addr)?))
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.transport().local
    }

    /// `accept` failures survived so far (see [`ACCEPT_BACKOFF`]).
    pub fn accept_errors(&self) -> u64 {
        self.transport().stats.accept_errors
    }

    /// Connections closed because more than the bound of bytes waited to
    /// be written to them (see [`DEFAULT_MAX_OUT_BYTES`]).
    pub fn slow_consumers_closed(&self) -> u64 {
        self.transport().stats.slow_closed
    }

    /// The socket counters.
    pub fn server_stats(&self) -> ServerStats {
        self.transport().stats
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.transport().conns.len()
    }

    /// Set the bound of bytes waiting per connection.
    pub fn set_max_out_bytes(&mut self, bytes: usize) {
        let (_, io, _) = self.parts_mut();
        io.max_out = bytes.max(1);
    }

    /// Serve at most `n` connections at once (at least 1): one more is
    /// accepted and closed at once, and counted
    /// ([`ServerStats::refused_over_limit`]). Default: no limit.
    pub fn set_max_connections(&mut self, n: usize) {
        let (_, io, _) = self.parts_mut();
        io.max_conns = n.max(1);
    }

    /// Tell `tap` about every connection and packet from now on.
    pub fn set_tap(&mut self, tap: Box<dyn BrokerTap>) {
        let (_, io, _) = self.parts_mut();
        io.tap = Some(tap);
    }

    /// Close every connection abruptly, as a network failure would, and
    /// tell the broker (wills are published).
    pub fn drop_connections(&mut self) {
        let (broker, io, clock) = self.parts_mut();
        for (id, c) in std::mem::take(&mut io.conns) {
            let _ = c.stream.shutdown(Shutdown::Both);
            if let Some(tap) = io.tap.as_mut() {
                tap.closed(clock.now(), id, "broker stopping");
            }
            broker.handle_input(clock.now(), BrokerInput::closed(id));
        }
    }

    /// Run the broker on its own thread until [`BrokerThread::stop`].
    pub fn spawn(self) -> BrokerThread {
        let (tx, rx) = mpsc::channel();
        let addr = self.local_addr();
        let worker = Worker::spawn(move |flag| run_thread(self, flag, &rx));
        BrokerThread {
            addr,
            commands: tx,
            worker,
        }
    }
}

/// Commands for a broker running on its own thread.
#[derive(Debug, Clone, Copy)]
enum Command {
    DropConnections,
}

fn run_thread(
    mut d: BrokerDriver,
    stop: &AtomicBool,
    commands: &Receiver<Command>,
) -> Result<BrokerDriver, SocketError> {
    while !stop.load(Ordering::Relaxed) {
        while let Ok(c) = commands.try_recv() {
            match c {
                Command::DropConnections => d.drop_connections(),
            }
        }
        d.step(Duration::from_millis(2))?;
        // Nobody reads a served broker's events: kept, they would pile up
        // to the driver's bound of 100 000, each `Delivered` holding its
        // payload (a QoS 0 flood of 16 KiB messages: 1.6 GB). Its counters
        // (`Broker::stats`, `server_stats`) say what happened.
        while d.poll_event().is_some() {}
    }
    Ok(d)
}

/// A broker serving on a background thread; stopped when dropped. Its
/// events are dropped as they come (the counters remain: `stop` hands
/// back the driver).
#[derive(Debug)]
pub struct BrokerThread {
    addr: SocketAddrV4,
    commands: Sender<Command>,
    worker: Worker<Result<BrokerDriver, SocketError>>,
}

impl BrokerThread {
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Abruptly close every current connection (a network failure).
    pub fn drop_connections(&self) {
        let _ = self.commands.send(Command::DropConnections);
    }

    /// Stop the thread and hand back the driver (broker state, events).
    pub fn stop(self) -> Result<BrokerDriver, SocketError> {
        self.worker
            .stop()
            .unwrap_or(Err(SocketError::ThreadPanicked))
    }
}
