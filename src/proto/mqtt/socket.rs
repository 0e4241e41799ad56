//! The [`Client`] and [`Broker`] over real `std::net` TCP sockets: two
//! [`Transport`]s for the one real-socket [`Driver`]
//! (`proto::driver`), for interoperability tests against mosquitto and
//! paho-mqtt.
//!
//! Every wait is bounded: connects and writes have timeouts, reads wait at
//! most until the core's next timer or the caller's limit, and the broker's
//! socket loop polls non-blocking sockets with short sleeps. Nothing here
//! can hang.

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
    /// Write what the socket takes of `out` without blocking: `Ok(())`
    /// when all of it went or the socket is full (WouldBlock), `Err(())`
    /// when the connection failed (an error, or a write of 0 bytes).
    fn flush_out(&mut self) -> Result<(), ()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(()),
                Ok(n) => {
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

/// A broker's listening socket and its accepted connections.
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    local: SocketAddrV4,
    conns: BTreeMap<ConnId, ConnIo>,
    next_conn: u64,
    rx: Vec<u8>,
    /// `accept` failures (EMFILE, ENFILE, ENOBUFS, ECONNABORTED, …) and
    /// accepted sockets that could not be set up; each is survived.
    accept_errors: u64,
    /// After an `accept` failure, no new `accept` before this instant (the
    /// connections already open keep being served meanwhile).
    accept_paused_until: Option<Instant>,
    /// Bytes a connection may have waiting for its socket; past this it is
    /// a slow consumer and is closed ([`DEFAULT_MAX_OUT_BYTES`]).
    max_out: usize,
    /// Connections over `max_out`, closed at the end of this flush.
    slow: Vec<ConnId>,
    /// Slow consumers closed so far.
    slow_closed: u64,
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
            accept_errors: 0,
            accept_paused_until: None,
            max_out: DEFAULT_MAX_OUT_BYTES,
            slow: Vec::new(),
            slow_closed: 0,
            closing: Vec::new(),
        })
    }

    /// Write what the closing connections' sockets take; drop those that
    /// are done, failed or past their deadline. Whether one was dropped.
    fn drain_closing(&mut self) -> bool {
        let before = self.closing.len();
        let now = Instant::now();
        self.closing.retain_mut(|(c, deadline)| {
            // kept while bytes wait for a full socket, until the deadline
            let open = c.flush_out().is_ok() && !c.out.is_empty() && now < *deadline;
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
                Ok((s, _)) => {
                    if s.set_nonblocking(true).is_err() || s.set_nodelay(true).is_err() {
                        self.accept_errors += 1;
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
                    broker.handle_input(clock.now(), BrokerInput::accepted(id));
                    busy = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.accept_errors += 1;
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    break;
                }
            }
        }
        busy
    }

    fn close(&mut self, broker: &mut Broker, clock: &Clock, id: ConnId) {
        if self.conns.remove(&id).is_some() {
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
        _clock: &Clock,
        t: &BrokerTransmit,
        bytes: &[u8],
    ) -> Result<(), SocketError> {
        if let Some(c) = self.conns.get_mut(&t.conn) {
            // straight to the socket when nothing waits before it: only what
            // the kernel does not take is buffered (and counts against the
            // bound)
            let mut bytes = bytes;
            while c.out.is_empty() && !bytes.is_empty() {
                match c.stream.write(bytes) {
                    Ok(0) => break,
                    Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
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
            if c.flush_out().is_err() {
                failed.push(*id);
            }
        }
        let mut busy = !failed.is_empty() || !self.slow.is_empty();
        for id in failed {
            self.close(broker, clock, id);
        }
        for id in std::mem::take(&mut self.slow) {
            if let Some(c) = self.conns.get(&id) {
                let _ = c.stream.shutdown(Shutdown::Both);
                self.slow_closed += 1;
            }
            self.close(broker, clock, id);
        }
        busy |= self.drain_closing();
        Ok(busy)
    }

    /// Carry out `Close` (last bytes first, bounded); every event goes to
    /// the caller too.
    fn event(
        &mut self,
        _broker: &mut Broker,
        _clock: &Clock,
        ev: BrokerEvent,
    ) -> Result<Option<BrokerEvent>, SocketError> {
        if let BrokerEvent::Close(id) = ev {
            if let Some(c) = self.conns.remove(&id) {
                // Last bytes (e.g. a refusing CONNACK) go out first, written
                // without blocking the other connections, for at most
                // IO_TIMEOUT.
                self.closing.push((c, Instant::now() + IO_TIMEOUT));
                self.drain_closing();
            }
        }
        Ok(Some(ev))
    }

    /// Accept, read every socket; sleep (at most `wait`, at most 2 ms) only
    /// when idle.
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
                        self.close(broker, clock, id);
                        busy = true;
                        break;
                    }
                    Ok(n) => {
                        let data = self.rx.get(..n).unwrap_or(&[]);
                        broker.handle_input(clock.now(), BrokerInput::bytes(id, data));
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.close(broker, clock, id);
                        busy = true;
                        break;
                    }
                }
            }
        }
        if !busy {
            std::thread::sleep(wait.min(Duration::from_millis(2)));
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
        self.transport().accept_errors
    }

    /// Connections closed because more than the bound of bytes waited to
    /// be written to them (see [`DEFAULT_MAX_OUT_BYTES`]).
    pub fn slow_consumers_closed(&self) -> u64 {
        self.transport().slow_closed
    }

    /// Set the bound of bytes waiting per connection.
    pub fn set_max_out_bytes(&mut self, bytes: usize) {
        let (_, io, _) = self.parts_mut();
        io.max_out = bytes.max(1);
    }

    /// Close every connection abruptly, as a network failure would, and
    /// tell the broker (wills are published).
    pub fn drop_connections(&mut self) {
        let (broker, io, clock) = self.parts_mut();
        for (id, c) in std::mem::take(&mut io.conns) {
            let _ = c.stream.shutdown(Shutdown::Both);
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
    }
    Ok(d)
}

/// A broker serving on a background thread; stopped when dropped.
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
