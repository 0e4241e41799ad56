//! Drivers that run the sans-IO [`Client`] and [`Broker`] over real
//! `std::net` TCP sockets on the loopback interface, for interoperability
//! tests against mosquitto and paho-mqtt.
//!
//! Wall time is mapped to [`SimTime`] as the time since the driver was
//! created. Every wait is bounded: connects and writes have timeouts, reads
//! wait at most until the endpoint's next timer or the caller's limit, and
//! the broker's socket loop polls nonblocking sockets with short sleeps.
//! Nothing here can hang.

use super::BrokerInput;
use crate::proto::StreamInput;
use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sim::SimTime;

use super::broker::Broker;
use super::client::Client;
use super::events::{BrokerEvent, ClientError, ClientEvent, ConnId, MessageHandle, RequestHandle};
use super::packet::QoS;
use super::topic::{TopicFilter, TopicName};

/// How long a TCP connect or a blocking write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Most events a driver keeps for the caller (older ones are dropped).
const MAX_EVENTS: usize = 100_000;

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
    #[error("no matching event within {limit:?}")]
    Timeout { limit: Duration },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("broker thread panicked")]
    ThreadPanicked,
}

fn elapsed(start: Instant) -> SimTime {
    SimTime::from_nanos(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
}

fn wait_until(now: SimTime, t: Option<SimTime>, max: Duration) -> Duration {
    let mut w = max;
    if let Some(t) = t {
        w = w.min(Duration::from_nanos((t - now).as_nanos()));
    }
    w.max(Duration::from_millis(1))
}

/// A [`Client`] connected to a broker over TCP.
#[derive(Debug)]
pub struct ClientDriver {
    client: Client,
    broker: SocketAddrV4,
    stream: Option<TcpStream>,
    start: Instant,
    tx: Vec<u8>,
    rx: Vec<u8>,
    events: VecDeque<ClientEvent>,
}

impl ClientDriver {
    /// Drive `client` against the broker at `broker`; call
    /// [`ClientDriver::connect`] to start.
    pub fn new(client: Client, broker: SocketAddrV4) -> Self {
        ClientDriver {
            client,
            broker,
            stream: None,
            start: Instant::now(),
            tx: Vec::with_capacity(1024),
            rx: vec![0; 16 * 1024],
            events: VecDeque::new(),
        }
    }

    pub fn now(&self) -> SimTime {
        elapsed(self.start)
    }
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Start connecting (the TCP connect happens at once, bounded by 2 s).
    pub fn connect(&mut self) -> Result<(), SocketError> {
        self.client.connect();
        self.flush()
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
            .client
            .publish(now, topic, payload.to_vec(), qos, retain)?;
        self.flush()?;
        Ok(h)
    }

    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, QoS)>,
    ) -> Result<RequestHandle, SocketError> {
        let now = self.now();
        let h = self.client.subscribe(now, filters)?;
        self.flush()?;
        Ok(h)
    }

    /// Send DISCONNECT and close the socket.
    pub fn disconnect(&mut self) -> Result<(), SocketError> {
        self.client.disconnect();
        self.flush()
    }

    /// Close the socket abruptly (no DISCONNECT) and tell the client.
    pub fn drop_transport(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
            let now = self.now();
            self.client.handle_input(now, StreamInput::Closed);
        }
    }

    fn lost(&mut self) {
        self.stream = None;
        let now = self.now();
        self.client.handle_input(now, StreamInput::Closed);
    }

    /// Send what the client queued and act on its transport requests.
    fn flush(&mut self) -> Result<(), SocketError> {
        loop {
            let now = self.now();
            while {
                self.tx.clear();
                self.client.poll_transmit(now, &mut self.tx).is_some()
            } {
                let ok = match self.stream.as_mut() {
                    Some(s) => s.write_all(&self.tx).is_ok(),
                    None => true, // nowhere to send: the client resends on reconnect
                };
                if !ok {
                    self.lost();
                }
            }
            let mut again = false;
            while let Some(e) = self.client.poll_event() {
                match e {
                    ClientEvent::OpenTransport => {
                        let addr = SocketAddr::V4(self.broker);
                        let now = self.now();
                        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                            Ok(s) => {
                                s.set_nodelay(true)?;
                                s.set_write_timeout(Some(IO_TIMEOUT))?;
                                self.stream = Some(s);
                                self.client.handle_input(now, StreamInput::Connected);
                            }
                            Err(_) => self.client.handle_input(now, StreamInput::Closed),
                        }
                        again = true;
                    }
                    ClientEvent::CloseTransport => {
                        if let Some(s) = self.stream.take() {
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    }
                    other => {
                        if self.events.len() >= MAX_EVENTS {
                            self.events.pop_front();
                        }
                        self.events.push_back(other);
                    }
                }
            }
            if !again {
                return Ok(());
            }
        }
    }

    /// One round: flush, wait up to `max_wait` (less when a timer is due)
    /// for bytes, feed them and due timers to the client, flush again.
    pub fn step(&mut self, max_wait: Duration) -> Result<(), SocketError> {
        self.flush()?;
        let now = self.now();
        let wait = wait_until(now, self.client.poll_timeout(), max_wait);
        match self.stream.as_mut() {
            Some(s) => {
                s.set_read_timeout(Some(wait))?;
                match s.read(&mut self.rx) {
                    Ok(0) => self.lost(),
                    Ok(n) => {
                        let now = self.now();
                        let data = self.rx.get(..n).unwrap_or(&[]);
                        self.client.handle_input(now, StreamInput::Bytes(data));
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => self.lost(),
                }
            }
            None => std::thread::sleep(wait),
        }
        let now = self.now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.flush()
    }

    /// The next event collected so far.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Step until `f` maps an event to `Some`, for at most `limit`. Events
    /// `f` rejects are dropped.
    pub fn run_until<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&ClientEvent) -> Option<T>,
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

#[derive(Debug)]
struct ConnIo {
    stream: TcpStream,
    out: Vec<u8>,
}

/// A [`Broker`] listening on a TCP port.
#[derive(Debug)]
pub struct BrokerDriver {
    broker: Broker,
    listener: TcpListener,
    local: SocketAddrV4,
    conns: BTreeMap<ConnId, ConnIo>,
    next_conn: u64,
    start: Instant,
    buf: Vec<u8>,
    rx: Vec<u8>,
    events: VecDeque<BrokerEvent>,
}

impl BrokerDriver {
    /// Listen on `addr` (port 0 picks a free port). The broker's clock
    /// starts now.
    pub fn bind(addr: SocketAddrV4, broker: Broker) -> Result<Self, SocketError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| SocketError::Bind { addr, source })?;
        listener.set_nonblocking(true)?;
        let local = match listener.local_addr()? {
            SocketAddr::V4(a) => a,
            other => return Err(SocketError::NotIpv4 { addr: other }),
        };
        Ok(BrokerDriver {
            broker,
            listener,
            local,
            conns: BTreeMap::new(),
            next_conn: 0,
            start: Instant::now(),
            buf: Vec::with_capacity(1024),
            rx: vec![0; 16 * 1024],
            events: VecDeque::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }
    pub fn now(&self) -> SimTime {
        elapsed(self.start)
    }
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
    pub fn broker_mut(&mut self) -> &mut Broker {
        &mut self.broker
    }
    /// The next broker event collected so far.
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// Close every connection abruptly, as a network failure would, and
    /// tell the broker (wills are published).
    pub fn drop_connections(&mut self) {
        let now = self.now();
        for (id, c) in std::mem::take(&mut self.conns) {
            let _ = c.stream.shutdown(Shutdown::Both);
            self.broker.handle_input(now, BrokerInput::closed(id));
        }
    }

    /// One round: accept, read every socket, fire timers, write. Sleeps (at
    /// most `max_wait`, at most until the next timer) only when idle.
    /// Returns whether anything happened.
    pub fn step(&mut self, max_wait: Duration) -> Result<bool, SocketError> {
        let mut busy = false;
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true)?;
                    s.set_nodelay(true)?;
                    self.next_conn += 1;
                    let id = ConnId(self.next_conn);
                    self.conns.insert(
                        id,
                        ConnIo {
                            stream: s,
                            out: Vec::new(),
                        },
                    );
                    let now = self.now();
                    self.broker.handle_input(now, BrokerInput::accepted(id));
                    busy = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            while let Some(c) = self.conns.get_mut(&id) {
                match c.stream.read(&mut self.rx) {
                    Ok(0) => {
                        self.conns.remove(&id);
                        let now = self.now();
                        self.broker.handle_input(now, BrokerInput::closed(id));
                        busy = true;
                        break;
                    }
                    Ok(n) => {
                        let now = self.now();
                        let data = self.rx.get(..n).unwrap_or(&[]);
                        self.broker.handle_input(now, BrokerInput::bytes(id, data));
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.conns.remove(&id);
                        let now = self.now();
                        self.broker.handle_input(now, BrokerInput::closed(id));
                        busy = true;
                        break;
                    }
                }
            }
        }
        let now = self.now();
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
            busy = true;
        }
        busy |= self.flush();
        if !busy {
            let now = self.now();
            let wait = wait_until(now, self.broker.poll_timeout(), max_wait);
            std::thread::sleep(wait.min(Duration::from_millis(2)));
        }
        Ok(busy)
    }

    /// Move transmits into per-connection buffers, write what the sockets
    /// take, and carry out `Close` events.
    fn flush(&mut self) -> bool {
        let mut busy = false;
        let now = self.now();
        while let Some(t) = {
            self.buf.clear();
            self.broker.poll_transmit(now, &mut self.buf)
        } {
            busy = true;
            if let Some(c) = self.conns.get_mut(&t.conn) {
                c.out.extend_from_slice(&self.buf);
            }
        }
        let mut failed = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            while !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(0) => {
                        failed.push(*id);
                        break;
                    }
                    Ok(n) => {
                        c.out.drain(..n.min(c.out.len()));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        failed.push(*id);
                        break;
                    }
                }
            }
        }
        for id in failed {
            self.conns.remove(&id);
            let now = self.now();
            self.broker.handle_input(now, BrokerInput::closed(id));
        }
        while let Some(e) = self.broker.poll_event() {
            busy = true;
            if let BrokerEvent::Close(id) = e {
                if let Some(mut c) = self.conns.remove(&id) {
                    // Last bytes (e.g. a refusing CONNACK) go out first,
                    // with a bounded blocking write.
                    let _ = c.stream.set_nonblocking(false);
                    let _ = c.stream.set_write_timeout(Some(IO_TIMEOUT));
                    let _ = c.stream.write_all(&c.out);
                    c.out.clear();
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
            }
            if self.events.len() >= MAX_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
        busy
    }

    /// Run the broker on its own thread until [`BrokerThread::stop`].
    pub fn spawn(self) -> BrokerThread {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let addr = self.local;
        let flag = stop.clone();
        let handle = std::thread::spawn(move || run_thread(self, &flag, &rx));
        BrokerThread {
            addr,
            stop,
            commands: tx,
            handle: Some(handle),
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
    stop: Arc<AtomicBool>,
    commands: Sender<Command>,
    handle: Option<JoinHandle<Result<BrokerDriver, SocketError>>>,
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
    pub fn stop(mut self) -> Result<BrokerDriver, SocketError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| SocketError::ThreadPanicked)?,
            None => Err(SocketError::ThreadPanicked),
        }
    }
}

impl Drop for BrokerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
