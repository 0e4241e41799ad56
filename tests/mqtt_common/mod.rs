//! A Pair-style harness for the MQTT broker and clients (DESIGN.md
//! convention 6): one `Broker`, several `Client`s, in-memory byte pipes with
//! a fixed one-way delay, time jumping to the next wake-up. Bytes of each
//! transmission can be split into small chunks to exercise partial reads.

#![allow(dead_code)]

use qossim::proto::mqtt::BrokerInput;
use qossim::proto::StreamInput;
use std::collections::BTreeMap;

use qossim::proto::mqtt::{
    Broker, BrokerConfig, BrokerEvent, Client, ClientConfig, ClientEvent, ConnId, PacketType, QoS,
    TopicFilter, TopicName,
};
use qossim::sim::{SimDuration, SimRng, SimTime};

#[derive(Debug)]
enum Arrival {
    /// A transport the client asked for is up on both sides.
    Open(usize, ConnId),
    ToBroker(ConnId, Vec<u8>),
    ToClient(usize, ConnId, Vec<u8>),
    /// The client closed (or lost) its transport: the broker learns it.
    ClosedByClient(ConnId),
    /// The broker closed the transport: the client learns it.
    ClosedByBroker(usize, ConnId),
}

/// One packet on the wire, as logged.
#[derive(Clone, Debug)]
pub struct Wire {
    pub at: SimTime,
    pub client: usize,
    pub to_broker: bool,
    pub kind: PacketType,
    pub len: usize,
    pub retransmission: bool,
}

pub type DropFn = Box<dyn FnMut(&Wire) -> bool>;

pub struct Net {
    pub now: SimTime,
    pub broker: Broker,
    pub clients: Vec<Client>,
    pub conn_of: Vec<Option<ConnId>>,
    conn_client: BTreeMap<ConnId, usize>,
    next_conn: u64,
    pub delay: SimDuration,
    /// Split every transmission into chunks of at most this many bytes.
    pub chunk: usize,
    pipe: Vec<(SimTime, u64, Arrival)>,
    seq: u64,
    /// Clients whose network is cut: their bytes vanish both ways.
    pub cut: Vec<bool>,
    /// Drop individual packets (after logging them).
    pub drop: Option<DropFn>,
    pub log: Vec<Wire>,
    pub events: Vec<Vec<(SimTime, ClientEvent)>>,
    pub broker_events: Vec<(SimTime, BrokerEvent)>,
    buf: Vec<u8>,
}

impl Net {
    pub fn new(config: BrokerConfig) -> Self {
        Net {
            now: SimTime::ZERO,
            broker: Broker::new(config, SimTime::ZERO),
            clients: Vec::new(),
            conn_of: Vec::new(),
            conn_client: BTreeMap::new(),
            next_conn: 0,
            delay: SimDuration::from_millis(10),
            chunk: usize::MAX,
            pipe: Vec::new(),
            seq: 0,
            cut: Vec::new(),
            drop: None,
            log: Vec::new(),
            events: Vec::new(),
            broker_events: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Add a client and start connecting it; returns its index.
    pub fn add(&mut self, config: ClientConfig) -> usize {
        let i = self.clients.len();
        let rng = SimRng::stream(7, &format!("mqtt/client/{i}"));
        self.clients.push(Client::new(config, rng));
        self.conn_of.push(None);
        self.cut.push(false);
        self.events.push(Vec::new());
        self.clients[i].connect();
        self.pump();
        i
    }

    fn schedule(&mut self, a: Arrival) {
        self.seq += 1;
        self.pipe.push((self.now + self.delay, self.seq, a));
    }

    /// Poll every endpoint until nothing more comes out at this instant.
    pub fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            while let Some(t) = {
                self.buf.clear();
                self.broker.poll_transmit(now, &mut self.buf)
            } {
                progress = true;
                let Some(&c) = self.conn_client.get(&t.conn) else {
                    continue;
                };
                let w = Wire {
                    at: now,
                    client: c,
                    to_broker: false,
                    kind: t.kind,
                    len: t.len,
                    retransmission: t.retransmission,
                };
                let dropped = self.cut[c] || self.drop.as_mut().is_some_and(|d| d(&w));
                self.log.push(w);
                if !dropped {
                    let bytes = self.buf.clone();
                    for ch in bytes.chunks(self.chunk.max(1)) {
                        self.schedule(Arrival::ToClient(c, t.conn, ch.to_vec()));
                    }
                }
            }
            while let Some(e) = self.broker.poll_event() {
                progress = true;
                if let BrokerEvent::Close(conn) = e {
                    if let Some(c) = self.conn_client.remove(&conn) {
                        self.schedule(Arrival::ClosedByBroker(c, conn));
                    }
                }
                self.broker_events.push((now, e));
            }
            for i in 0..self.clients.len() {
                while let Some(t) = {
                    self.buf.clear();
                    self.clients[i].poll_transmit(now, &mut self.buf)
                } {
                    progress = true;
                    let w = Wire {
                        at: now,
                        client: i,
                        to_broker: true,
                        kind: t.kind,
                        len: t.len,
                        retransmission: t.retransmission,
                    };
                    let dropped = self.cut[i] || self.drop.as_mut().is_some_and(|d| d(&w));
                    self.log.push(w);
                    if let (Some(conn), false) = (self.conn_of[i], dropped) {
                        let bytes = self.buf.clone();
                        for ch in bytes.chunks(self.chunk.max(1)) {
                            self.schedule(Arrival::ToBroker(conn, ch.to_vec()));
                        }
                    }
                }
                while let Some(e) = self.clients[i].poll_event() {
                    progress = true;
                    match &e {
                        ClientEvent::OpenTransport => {
                            self.next_conn += 1;
                            let conn = ConnId(self.next_conn);
                            self.conn_of[i] = Some(conn);
                            self.schedule(Arrival::Open(i, conn));
                        }
                        ClientEvent::CloseTransport => {
                            if let Some(conn) = self.conn_of[i].take() {
                                self.schedule(Arrival::ClosedByClient(conn));
                            }
                        }
                        _ => {}
                    }
                    self.events[i].push((now, e));
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn next_wake(&self) -> Option<SimTime> {
        let mut t = self.pipe.iter().map(|p| p.0).min();
        for w in self
            .clients
            .iter()
            .filter_map(|c| c.poll_timeout())
            .chain(self.broker.poll_timeout())
        {
            t = Some(t.map_or(w, |x: SimTime| x.min(w)));
        }
        t
    }

    /// Advance to the next wake-up (if not after `end`); false when idle.
    pub fn step(&mut self, end: SimTime) -> bool {
        let Some(t) = self.next_wake() else {
            return false;
        };
        if t > end {
            return false;
        }
        self.now = self.now.max(t);
        let now = self.now;
        self.pipe.sort_by_key(|p| (p.0, p.1));
        let due: Vec<_> = {
            let n = self.pipe.iter().take_while(|p| p.0 <= now).count();
            self.pipe.drain(..n).collect()
        };
        for (_, _, a) in due {
            match a {
                Arrival::Open(i, conn) => {
                    if self.conn_of[i] == Some(conn) {
                        self.conn_client.insert(conn, i);
                        self.broker.handle_input(now, BrokerInput::accepted(conn));
                        self.clients[i].handle_input(now, StreamInput::Connected);
                    }
                }
                Arrival::ToBroker(conn, b) => {
                    self.broker.handle_input(now, BrokerInput::bytes(conn, &b))
                }
                Arrival::ToClient(i, conn, b) => {
                    if self.conn_of[i] == Some(conn) {
                        self.clients[i].handle_input(now, StreamInput::Bytes(&b));
                    }
                }
                Arrival::ClosedByClient(conn) => {
                    self.conn_client.remove(&conn);
                    self.broker.handle_input(now, BrokerInput::closed(conn));
                }
                Arrival::ClosedByBroker(i, conn) => {
                    if self.conn_of[i] == Some(conn) {
                        self.conn_of[i] = None;
                        self.clients[i].handle_input(now, StreamInput::Closed);
                    }
                }
            }
            self.pump();
        }
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
        }
        for c in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        self.pump();
        true
    }

    /// Run for `d` of simulated time.
    pub fn run_for(&mut self, d: SimDuration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = self.now.max(end);
    }

    /// The client's transport dies without DISCONNECT: both sides learn it
    /// (the broker one delay later).
    pub fn kill_transport(&mut self, i: usize) {
        let now = self.now;
        if let Some(conn) = self.conn_of[i].take() {
            self.schedule(Arrival::ClosedByClient(conn));
            self.clients[i].handle_input(now, StreamInput::Closed);
            self.pump();
        }
    }

    pub fn publish(&mut self, i: usize, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let now = self.now;
        self.clients[i]
            .publish(
                now,
                TopicName::new(topic).expect("topic"),
                payload.to_vec(),
                qos,
                retain,
            )
            .expect("publish");
        self.pump();
    }

    pub fn subscribe(&mut self, i: usize, filter: &str, qos: QoS) {
        let now = self.now;
        self.clients[i]
            .subscribe(now, vec![(TopicFilter::new(filter).expect("filter"), qos)])
            .expect("subscribe");
        self.pump();
    }

    pub fn disconnect(&mut self, i: usize) {
        self.clients[i].disconnect();
        self.pump();
    }

    /// Messages client `i` received: (topic, payload, qos, retain).
    pub fn messages(&self, i: usize) -> Vec<(String, Vec<u8>, QoS, bool)> {
        self.events[i]
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Message {
                    topic,
                    payload,
                    qos,
                    retain,
                    ..
                } => Some((topic.to_string(), payload.to_vec(), *qos, *retain)),
                _ => None,
            })
            .collect()
    }

    /// Messages with their receive times.
    pub fn message_times(&self, i: usize) -> Vec<(SimTime, Vec<u8>)> {
        self.events[i]
            .iter()
            .filter_map(|(t, e)| match e {
                ClientEvent::Message { payload, .. } => Some((*t, payload.to_vec())),
                _ => None,
            })
            .collect()
    }

    pub fn connected(&self, i: usize) -> bool {
        self.clients[i].is_connected()
    }

    /// Clear the logs of received events.
    pub fn clear_events(&mut self) {
        for e in &mut self.events {
            e.clear();
        }
        self.broker_events.clear();
    }
}

pub fn cfg(id: &str) -> ClientConfig {
    ClientConfig::new(id)
}

pub fn persistent(id: &str) -> ClientConfig {
    ClientConfig {
        clean_session: false,
        ..ClientConfig::new(id)
    }
}
