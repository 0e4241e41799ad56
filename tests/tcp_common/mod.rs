//! Pair-style harness for the TCP tests (quinn-proto `tests/util.rs`
//! shape): a client and a server `Connection` stepped through a pipe with a
//! fixed one-way delay, a per-segment fate function (drop, duplicate,
//! delay), and time jumping to the next wake-up.
#![allow(dead_code)]

use qossim::sim::{SimDuration, SimTime};
use qossim::transport::tcp::{Config, Connection, Event, Segment, Transmit};
use std::net::{Ipv4Addr, SocketAddrV4};

pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000);
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 1883);

/// Direction of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// One transmitted segment as seen by the pipe.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: SimTime,
    pub dir: Dir,
    pub info: Transmit,
    /// Copies delivered (0 = dropped).
    pub copies: usize,
    /// Index among segments of this direction.
    pub index: usize,
}

/// Decides a segment's fate: the extra delays of each delivered copy
/// (empty = dropped, `[0]` = delivered normally, `[0, 0]` = duplicated).
pub type Fate = Box<dyn FnMut(Dir, &Transmit, usize) -> Vec<SimDuration>>;

struct Flight {
    at: SimTime,
    order: u64,
    dir: Dir,
    bytes: Vec<u8>,
}

pub struct Pair {
    pub now: SimTime,
    pub client: Connection,
    pub server: Connection,
    pub delay: SimDuration,
    pub fate: Fate,
    pub log: Vec<Sent>,
    pub client_events: Vec<(SimTime, Event)>,
    pub server_events: Vec<(SimTime, Event)>,
    /// Bytes the client application still has to write.
    pub to_write: Vec<u8>,
    written: usize,
    /// Bytes the server application has read.
    pub received: Vec<u8>,
    /// Bytes the server application still has to write (bidirectional
    /// tests); the client reads them into `client_received`.
    pub server_to_write: Vec<u8>,
    server_written: usize,
    pub client_received: Vec<u8>,
    /// When false the server application does not read.
    pub server_reads: bool,
    /// Close the client once all of `to_write` is in its send buffer.
    pub close_after_write: bool,
    /// Link rate in bit/s, both directions: each segment (its `len` bytes)
    /// is serialised after the ones before it (an unbounded FIFO) before
    /// the fixed delay. `None` (the default): infinitely fast.
    pub rate_bps: Option<u64>,
    /// When each direction's link is free again.
    busy: [SimTime; 2],
    closed: bool,
    flights: Vec<Flight>,
    order: u64,
    counts: [usize; 2],
    buf: Vec<u8>,
}

impl Pair {
    /// Client connecting to a listening server, both with `config`, path
    /// MTU 1500, fixed one-way `delay`, everything delivered.
    pub fn new(config: Config, delay: SimDuration) -> Pair {
        Pair::with(config, config, delay)
    }

    pub fn with(client: Config, server: Config, delay: SimDuration) -> Pair {
        Pair::with_mtu(client, server, delay, 1500)
    }

    /// As [`Pair::with`] over a path of MTU `mtu`.
    pub fn with_mtu(client: Config, server: Config, delay: SimDuration, mtu: u16) -> Pair {
        Pair {
            now: SimTime::ZERO,
            client: Connection::connect(client, CLIENT, SERVER, mtu, 1_000_000),
            server: Connection::listen(server, SERVER, mtu, 3_000_000_000),
            delay,
            fate: Box::new(|_, _, _| vec![SimDuration::ZERO]),
            log: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_write: Vec::new(),
            written: 0,
            received: Vec::new(),
            server_to_write: Vec::new(),
            server_written: 0,
            client_received: Vec::new(),
            server_reads: true,
            close_after_write: false,
            rate_bps: None,
            busy: [SimTime::ZERO; 2],
            closed: false,
            flights: Vec::new(),
            order: 0,
            counts: [0, 0],
            buf: vec![0; 2048],
        }
    }

    pub fn set_fate(&mut self, f: impl FnMut(Dir, &Transmit, usize) -> Vec<SimDuration> + 'static) {
        self.fate = Box::new(f);
    }

    /// Poll both ends: application I/O, transmissions, events.
    fn poll(&mut self) {
        loop {
            let mut progress = false;
            if self.written < self.to_write.len() {
                let n = self.client.write(&self.to_write[self.written..]);
                self.written += n;
                progress |= n > 0;
            }
            // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the connection,
            // so the application closes only once connected.
            if self.close_after_write
                && !self.closed
                && self.written == self.to_write.len()
                && self.client.state().is_synchronized()
            {
                self.closed = true;
                self.client.close();
                progress = true;
            }
            if self.server_written < self.server_to_write.len()
                && self.server.state().is_synchronized()
            {
                let n = self
                    .server
                    .write(&self.server_to_write[self.server_written..]);
                self.server_written += n;
                progress |= n > 0;
            }
            let mut tmp = [0u8; 4096];
            if self.server_reads {
                loop {
                    let n = self.server.read(&mut tmp);
                    if n == 0 {
                        break;
                    }
                    self.received.extend_from_slice(&tmp[..n]);
                }
            }
            loop {
                let n = self.client.read(&mut tmp);
                if n == 0 {
                    break;
                }
                self.client_received.extend_from_slice(&tmp[..n]);
            }
            for dir in [Dir::ToServer, Dir::ToClient] {
                loop {
                    let conn = match dir {
                        Dir::ToServer => &mut self.client,
                        Dir::ToClient => &mut self.server,
                    };
                    self.buf.clear();
                    let Some(info) = conn.poll_transmit(self.now, &mut self.buf) else {
                        break;
                    };
                    progress = true;
                    let idx = self.counts[dir as usize];
                    self.counts[dir as usize] += 1;
                    let delays = (self.fate)(dir, &info, idx);
                    // A dropped segment still occupied the link.
                    let sent = match self.rate_bps {
                        None => self.now,
                        Some(r) => {
                            let b = &mut self.busy[dir as usize];
                            *b = (*b).max(self.now) + SimDuration::transmission(info.len as u64, r);
                            *b
                        }
                    };
                    for d in &delays {
                        self.order += 1;
                        self.flights.push(Flight {
                            at: sent + self.delay + *d,
                            order: self.order,
                            dir,
                            bytes: self.buf[..info.len].to_vec(),
                        });
                    }
                    self.log.push(Sent {
                        at: self.now,
                        dir,
                        info,
                        copies: delays.len(),
                        index: idx,
                    });
                }
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push((self.now, e));
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push((self.now, e));
            }
            if !progress {
                break;
            }
        }
    }

    /// Advance to the next wake-up and handle it; false when nothing is
    /// left to happen.
    pub fn step(&mut self) -> bool {
        self.poll();
        let next_flight = self.flights.iter().map(|f| f.at).min();
        let next = [
            next_flight,
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next else { return false };
        self.now = self.now.max(t);
        // Deliver due segments in (time, order).
        loop {
            let due = self
                .flights
                .iter()
                .enumerate()
                .filter(|(_, f)| f.at <= self.now)
                .min_by_key(|(_, f)| (f.at, f.order))
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let f = self.flights.swap_remove(i);
            let (conn, src, dst) = match f.dir {
                Dir::ToServer => (&mut self.server, *CLIENT.ip(), *SERVER.ip()),
                Dir::ToClient => (&mut self.client, *SERVER.ip(), *CLIENT.ip()),
            };
            let _ = conn.handle_input(self.now, Segment::new(src, dst, &f.bytes));
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.poll();
        true
    }

    /// Step until `until` returns true or `limit` is passed; returns
    /// whether the condition held.
    pub fn run_until(&mut self, limit: SimTime, mut until: impl FnMut(&Pair) -> bool) -> bool {
        loop {
            if until(self) {
                return true;
            }
            if self.now > limit || !self.step() {
                return until(self);
            }
        }
    }

    /// Step until nothing is scheduled or `limit`.
    pub fn run(&mut self, limit: SimTime) {
        while self.now <= limit && self.step() {}
    }

    /// Complete the handshake; panics (test failure) if it does not.
    pub fn establish(&mut self) {
        let ok = self.run_until(SimTime::ZERO + SimDuration::from_secs(600), |p| {
            p.client_events.iter().any(|e| e.1 == Event::Connected)
                && p.server_events.iter().any(|e| e.1 == Event::Connected)
        });
        assert!(ok, "handshake did not complete");
    }

    /// Segments sent in `dir` carrying payload.
    pub fn data_segments(&self, dir: Dir) -> Vec<&Sent> {
        self.log
            .iter()
            .filter(|s| s.dir == dir && s.info.payload_len > 0)
            .collect()
    }

    pub fn has_client_event(&self, e: Event) -> bool {
        self.client_events.iter().any(|x| x.1 == e)
    }
    pub fn has_server_event(&self, e: Event) -> bool {
        self.server_events.iter().any(|x| x.1 == e)
    }
}

/// `linux-like` without SACK (and so without RACK-TLP): the RFC 6298
/// timer and go-back-N alone, as a peer that does not offer SACK gets it.
pub fn linux_no_sack() -> Config {
    Config {
        sack_permitted: false,
        ..Config::linux_like()
    }
}

pub fn ms(x: u64) -> SimDuration {
    SimDuration::from_millis(x)
}
pub fn at_ms(x: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_millis(x)
}
