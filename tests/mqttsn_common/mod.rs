//! A Pair-style harness for the MQTT-SN cores (DESIGN.md convention 6):
//! MQTT-SN clients, gateways and forwarders exchange datagrams through a
//! pipe with a fixed one-way delay and a per-datagram fate function (drop
//! or deliver); gateways' MQTT sides and MQTT subscribers reach one real
//! `mqtt::Broker` through in-memory byte streams (lossless, same delay).
//! Time jumps to the next arrival or wake-up.
//!
//! Addresses: client i is 10.0.0.(10+i):1883, gateway g 10.0.1.(1+g):1883,
//! forwarder f 10.0.2.(1+f):1883. Broadcasts reach every endpoint that
//! `reach(from, to)` allows (default: all).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::Ipv4Addr;

use qossim::net::addr::{Addr, SockAddr};
use qossim::proto::mqtt::BrokerInput;
use qossim::proto::mqtt::{self, Broker, BrokerConfig, BrokerEvent, ConnId, QoS, TopicFilter};
use qossim::proto::mqttsn::gateway::{GatewayEvent, GatewayInput, GatewayTransmit, Upstream};
use qossim::proto::mqttsn::{
    Client, ClientConfig, ClientEvent, Forwarder, ForwarderConfig, Gateway, GatewayConfig, MsgType,
};
use qossim::proto::{Datagram, SansIo, StreamInput};
use qossim::sim::{SimDuration, SimRng, SimTime};

pub const PORT: u16 = 1883;

pub fn client_addr(i: usize) -> SockAddr {
    SockAddr::new(Addr::from(Ipv4Addr::new(10, 0, 0, 10 + i as u8)), PORT)
}
pub fn gw_addr(g: usize) -> SockAddr {
    SockAddr::new(Addr::from(Ipv4Addr::new(10, 0, 1, 1 + g as u8)), PORT)
}
pub fn fwd_addr(f: usize) -> SockAddr {
    SockAddr::new(Addr::from(Ipv4Addr::new(10, 0, 2, 1 + f as u8)), PORT)
}

/// One datagram as the pipe saw it.
#[derive(Clone, Debug)]
pub struct Wire {
    pub at: SimTime,
    pub from: SockAddr,
    /// The receiving endpoint (a broadcast is logged once per receiver).
    pub to: SockAddr,
    pub broadcast: bool,
    pub kind: MsgType,
    pub len: usize,
    pub retransmission: bool,
    /// For PUBLISH: the DUP flag.
    pub dup: bool,
    pub dropped: bool,
}

/// Drop decision for one datagram (true = lost).
pub type LossFn = Box<dyn FnMut(&Wire) -> bool>;
/// Whether `from` can reach `to` over the radio.
pub type ReachFn = Box<dyn Fn(SockAddr, SockAddr) -> bool>;

#[derive(Debug)]
enum Flight {
    Dgram {
        from: SockAddr,
        to: SockAddr,
        bytes: Vec<u8>,
    },
    ToBroker(ConnId, Vec<u8>),
    BrokerLost(ConnId),
    ToGw(usize, Upstream, GwUp),
    ToSub(usize, SubUp),
}

#[derive(Debug)]
enum GwUp {
    Connected,
    Bytes(Vec<u8>),
    Closed,
}

#[derive(Debug)]
enum SubUp {
    Connected,
    Bytes(Vec<u8>),
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Gw(usize, Upstream),
    Sub(usize),
}

/// An MQTT 3.1.1 subscriber on the broker, recording what it receives.
pub struct Sub {
    pub client: mqtt::Client,
    pub filters: Vec<(TopicFilter, QoS)>,
    pub conn: Option<ConnId>,
    pub received: Vec<(SimTime, String, Vec<u8>, QoS)>,
}

pub struct Net {
    pub now: SimTime,
    pub delay: SimDuration,
    pub clients: Vec<Client>,
    pub gateways: Vec<Gateway>,
    pub forwarders: Vec<Forwarder>,
    pub broker: Broker,
    pub subs: Vec<Sub>,
    /// Clients switched off (no input, no polling of timers).
    pub off: Vec<bool>,
    pub loss: Option<LossFn>,
    pub reach: Option<ReachFn>,
    pub logging: bool,
    pub log: Vec<Wire>,
    pub client_events: Vec<Vec<(SimTime, ClientEvent)>>,
    pub gw_events: Vec<Vec<(SimTime, GatewayEvent)>>,
    pub broker_events: Vec<(SimTime, BrokerEvent)>,
    /// Upstream connections the gateways asked for, in order.
    pub upstream_opened: Vec<(usize, Upstream)>,
    pipe: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    flights: BTreeMap<usize, Flight>,
    next_flight: usize,
    seq: u64,
    conns: BTreeMap<ConnId, Owner>,
    gw_conn: BTreeMap<(usize, Upstream), ConnId>,
    next_conn: u64,
    buf: Vec<u8>,
    seed: u64,
}

impl Net {
    pub fn new(delay: SimDuration) -> Net {
        let bc = BrokerConfig {
            sys_interval: None,
            ..BrokerConfig::default()
        };
        Net {
            now: SimTime::ZERO,
            delay,
            clients: Vec::new(),
            gateways: Vec::new(),
            forwarders: Vec::new(),
            broker: Broker::new(bc, SimTime::ZERO),
            subs: Vec::new(),
            off: Vec::new(),
            loss: None,
            reach: None,
            logging: true,
            log: Vec::new(),
            client_events: Vec::new(),
            gw_events: Vec::new(),
            broker_events: Vec::new(),
            upstream_opened: Vec::new(),
            pipe: BinaryHeap::new(),
            flights: BTreeMap::new(),
            next_flight: 0,
            seq: 0,
            conns: BTreeMap::new(),
            gw_conn: BTreeMap::new(),
            next_conn: 0,
            buf: Vec::with_capacity(70_000),
            seed: 1,
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Net {
        self.seed = seed;
        self
    }

    pub fn add_gateway(&mut self, config: GatewayConfig) -> usize {
        let g = self.gateways.len();
        let rng = SimRng::stream(self.seed, &format!("mqttsn/gw/{g}"));
        let mut gw = Gateway::new(config, rng);
        gw.start(self.now);
        self.gateways.push(gw);
        self.gw_events.push(Vec::new());
        g
    }

    pub fn add_client(&mut self, config: ClientConfig) -> usize {
        let i = self.clients.len();
        let rng = SimRng::stream(self.seed, &format!("mqttsn/client/{i}"));
        self.clients.push(Client::new(config, rng));
        self.client_events.push(Vec::new());
        self.off.push(false);
        i
    }

    pub fn add_forwarder(&mut self, gw: usize) -> usize {
        let f = self.forwarders.len();
        self.forwarders
            .push(Forwarder::new(ForwarderConfig::new(gw_addr(gw))));
        f
    }

    /// An MQTT subscriber that connects now and subscribes to `filter`.
    pub fn add_subscriber(&mut self, filter: &str, qos: QoS) -> usize {
        let s = self.subs.len();
        let mut cfg = mqtt::ClientConfig::new(format!("sub{s}"));
        cfg.keep_alive = 0;
        let mut client = mqtt::Client::new(cfg, SimRng::stream(self.seed, &format!("sub/{s}")));
        client.connect();
        self.subs.push(Sub {
            client,
            filters: vec![(TopicFilter::new(filter).expect("filter"), qos)],
            conn: None,
            received: Vec::new(),
        });
        s
    }

    pub fn set_loss(&mut self, f: impl FnMut(&Wire) -> bool + 'static) {
        self.loss = Some(Box::new(f));
    }
    pub fn set_reach(&mut self, f: impl Fn(SockAddr, SockAddr) -> bool + 'static) {
        self.reach = Some(Box::new(f));
    }

    /// Endpoints a datagram from `from` can land on.
    fn endpoints(&self) -> Vec<SockAddr> {
        let mut v: Vec<SockAddr> = (0..self.clients.len()).map(client_addr).collect();
        v.extend((0..self.gateways.len()).map(gw_addr));
        v.extend((0..self.forwarders.len()).map(fwd_addr));
        v
    }

    fn schedule(&mut self, at: SimTime, f: Flight) {
        let id = self.next_flight;
        self.next_flight += 1;
        self.seq += 1;
        self.flights.insert(id, f);
        self.pipe.push(Reverse((at, self.seq, id)));
    }

    fn send_dgram(&mut self, from: SockAddr, to: SockAddr, len: usize, retransmission: bool) {
        let bytes = self.buf[..len].to_vec();
        let kind =
            qossim::proto::mqttsn::decode(&bytes).map_or(MsgType::Encapsulated, |m| m.msg_type());
        let dup = matches!(
            qossim::proto::mqttsn::decode(&bytes),
            Ok(qossim::proto::mqttsn::Message::Publish { dup: true, .. })
        );
        let broadcast = to.addr.is_broadcast();
        let targets: Vec<SockAddr> = if broadcast {
            self.endpoints()
                .into_iter()
                .filter(|&a| a != from)
                .collect()
        } else {
            vec![to]
        };
        for t in targets {
            if let Some(r) = &self.reach {
                if !r(from, t) {
                    continue;
                }
            }
            let mut w = Wire {
                at: self.now,
                from,
                to: t,
                broadcast,
                kind,
                len,
                retransmission,
                dup,
                dropped: false,
            };
            if let Some(l) = &mut self.loss {
                w.dropped = l(&w);
            }
            if !w.dropped {
                self.schedule(
                    self.now + self.delay,
                    Flight::Dgram {
                        from,
                        to: t,
                        bytes: bytes.clone(),
                    },
                );
            }
            if self.logging {
                self.log.push(w);
            }
        }
    }

    /// Poll every endpoint until nothing moves.
    pub fn poll(&mut self) {
        loop {
            let mut progress = false;
            let now = self.now;
            for i in 0..self.clients.len() {
                while let Some(t) = {
                    self.buf.clear();
                    self.clients[i].poll_transmit(now, &mut self.buf)
                } {
                    progress = true;
                    self.send_dgram(client_addr(i), t.to, t.len, t.retransmission);
                }
                while let Some(e) = self.clients[i].poll_event() {
                    progress = true;
                    self.client_events[i].push((now, e));
                }
            }
            for f in 0..self.forwarders.len() {
                while let Some(t) = {
                    self.buf.clear();
                    self.forwarders[f].poll_transmit(now, &mut self.buf)
                } {
                    progress = true;
                    self.send_dgram(fwd_addr(f), t.to, t.len, false);
                }
            }
            for g in 0..self.gateways.len() {
                while let Some(t) = {
                    self.buf.clear();
                    self.gateways[g].poll_transmit(now, &mut self.buf)
                } {
                    progress = true;
                    match t {
                        GatewayTransmit::Udp {
                            to,
                            len,
                            retransmission,
                            ..
                        } => self.send_dgram(gw_addr(g), to, len, retransmission),
                        GatewayTransmit::Mqtt { conn, len, .. } => {
                            if let Some(&id) = self.gw_conn.get(&(g, conn)) {
                                let b = self.buf[..len].to_vec();
                                self.schedule(now + self.delay, Flight::ToBroker(id, b));
                            }
                        }
                    }
                }
                while let Some(e) = self.gateways[g].poll_event() {
                    progress = true;
                    match &e {
                        GatewayEvent::OpenUpstream { conn } => {
                            self.next_conn += 1;
                            let id = ConnId(self.next_conn);
                            self.conns.insert(id, Owner::Gw(g, *conn));
                            self.gw_conn.insert((g, *conn), id);
                            self.upstream_opened.push((g, *conn));
                            self.broker.handle_input(now, BrokerInput::accepted(id));
                            self.schedule(
                                now + self.delay,
                                Flight::ToGw(g, *conn, GwUp::Connected),
                            );
                        }
                        GatewayEvent::CloseUpstream { conn } => {
                            if let Some(id) = self.gw_conn.remove(&(g, *conn)) {
                                self.schedule(now + self.delay, Flight::BrokerLost(id));
                            }
                        }
                        _ => {}
                    }
                    self.gw_events[g].push((now, e));
                }
            }
            for s in 0..self.subs.len() {
                while let Some(t) = {
                    self.buf.clear();
                    self.subs[s].client.poll_transmit(now, &mut self.buf)
                } {
                    progress = true;
                    if let Some(id) = self.subs[s].conn {
                        let b = self.buf[..t.len].to_vec();
                        self.schedule(now + self.delay, Flight::ToBroker(id, b));
                    }
                }
                while let Some(e) = self.subs[s].client.poll_event() {
                    progress = true;
                    match e {
                        mqtt::ClientEvent::OpenTransport => {
                            self.next_conn += 1;
                            let id = ConnId(self.next_conn);
                            self.conns.insert(id, Owner::Sub(s));
                            self.subs[s].conn = Some(id);
                            self.broker.handle_input(now, BrokerInput::accepted(id));
                            self.schedule(now + self.delay, Flight::ToSub(s, SubUp::Connected));
                        }
                        mqtt::ClientEvent::Connected { .. } => {
                            let f = self.subs[s].filters.clone();
                            let _ = self.subs[s].client.subscribe(now, f);
                        }
                        mqtt::ClientEvent::Message {
                            topic,
                            payload,
                            qos,
                            ..
                        } => self.subs[s].received.push((
                            now,
                            topic.as_str().to_string(),
                            payload.to_vec(),
                            qos,
                        )),
                        _ => {}
                    }
                }
            }
            while let Some(t) = {
                self.buf.clear();
                self.broker.poll_transmit(now, &mut self.buf)
            } {
                progress = true;
                let b = self.buf[..t.len].to_vec();
                match self.conns.get(&t.conn) {
                    Some(Owner::Gw(g, k)) => {
                        let (g, k) = (*g, *k);
                        self.schedule(now + self.delay, Flight::ToGw(g, k, GwUp::Bytes(b)));
                    }
                    Some(Owner::Sub(s)) => {
                        let s = *s;
                        self.schedule(now + self.delay, Flight::ToSub(s, SubUp::Bytes(b)));
                    }
                    None => {}
                }
            }
            while let Some(e) = self.broker.poll_event() {
                progress = true;
                if let BrokerEvent::Close(id) = e {
                    match self.conns.remove(&id) {
                        Some(Owner::Gw(g, k)) if self.gw_conn.remove(&(g, k)).is_some() => {
                            self.schedule(now + self.delay, Flight::ToGw(g, k, GwUp::Closed));
                        }
                        Some(Owner::Sub(s)) => {
                            self.schedule(now + self.delay, Flight::ToSub(s, SubUp::Closed))
                        }
                        _ => {}
                    }
                }
                self.broker_events.push((now, e));
            }
            if !progress {
                break;
            }
        }
    }

    fn next_wakeup(&self) -> Option<SimTime> {
        let mut t = self.pipe.peek().map(|Reverse((t, _, _))| *t);
        let mut take = |x: Option<SimTime>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: SimTime| t.min(x)));
            }
        };
        for (i, c) in self.clients.iter().enumerate() {
            if !self.off[i] {
                take(c.poll_timeout());
            }
        }
        for g in &self.gateways {
            take(g.poll_timeout());
        }
        for s in &self.subs {
            take(s.client.poll_timeout());
        }
        take(self.broker.poll_timeout());
        t
    }

    fn deliver(&mut self, f: Flight) {
        let now = self.now;
        match f {
            Flight::Dgram { from, to, bytes } => {
                let d = Datagram { from, data: &bytes };
                if let Some(i) = (0..self.clients.len()).find(|&i| client_addr(i) == to) {
                    if !self.off[i] {
                        self.clients[i].handle_input(now, d);
                    }
                } else if let Some(g) = (0..self.gateways.len()).find(|&g| gw_addr(g) == to) {
                    self.gateways[g].handle_input(now, GatewayInput::Datagram(d));
                } else if let Some(f) = (0..self.forwarders.len()).find(|&f| fwd_addr(f) == to) {
                    self.forwarders[f].handle_input(now, d);
                }
            }
            Flight::ToBroker(id, b) => self.broker.handle_input(now, BrokerInput::bytes(id, &b)),
            Flight::BrokerLost(id) => {
                self.conns.remove(&id);
                self.broker.handle_input(now, BrokerInput::closed(id));
            }
            Flight::ToGw(g, k, ev) => {
                let event = match &ev {
                    GwUp::Connected => StreamInput::Connected,
                    GwUp::Bytes(b) => StreamInput::Bytes(b),
                    GwUp::Closed => StreamInput::Closed,
                };
                self.gateways[g].handle_input(now, GatewayInput::Upstream { conn: k, event });
            }
            Flight::ToSub(s, ev) => match ev {
                SubUp::Connected => self.subs[s]
                    .client
                    .handle_input(now, StreamInput::Connected),
                SubUp::Bytes(b) => self.subs[s]
                    .client
                    .handle_input(now, StreamInput::Bytes(&b)),
                SubUp::Closed => self.subs[s].client.handle_input(now, StreamInput::Closed),
            },
        }
    }

    /// Advance to the next arrival or wake-up if it is at or before `end`;
    /// false when nothing is due by then.
    pub fn step(&mut self, end: SimTime) -> bool {
        self.poll();
        let Some(t) = self.next_wakeup() else {
            return false;
        };
        if t > end {
            return false;
        }
        self.now = self.now.max(t);
        let now = self.now;
        while let Some(Reverse((at, _, id))) = self.pipe.peek().copied() {
            if at > now {
                break;
            }
            self.pipe.pop();
            if let Some(f) = self.flights.remove(&id) {
                self.deliver(f);
            }
        }
        for i in 0..self.clients.len() {
            if !self.off[i] && self.clients[i].poll_timeout().is_some_and(|t| t <= now) {
                self.clients[i].handle_timeout(now);
            }
        }
        for g in 0..self.gateways.len() {
            if self.gateways[g].poll_timeout().is_some_and(|t| t <= now) {
                self.gateways[g].handle_timeout(now);
            }
        }
        for s in 0..self.subs.len() {
            if self.subs[s].client.poll_timeout().is_some_and(|t| t <= now) {
                self.subs[s].client.handle_timeout(now);
            }
        }
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
        }
        self.poll();
        true
    }

    /// Run until `end` (time then stands at `end`).
    pub fn run_until(&mut self, end: SimTime) {
        while self.step(end) {}
        self.now = self.now.max(end);
        self.poll();
    }

    pub fn run_for(&mut self, d: SimDuration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Run until `pred` holds (checked after each step) or `limit` passes;
    /// returns whether it held.
    pub fn run_until_pred(
        &mut self,
        limit: SimDuration,
        mut pred: impl FnMut(&Net) -> bool,
    ) -> bool {
        let end = self.now + limit;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(end) {
                self.now = self.now.max(end);
                self.poll();
                return pred(self);
            }
        }
    }

    /// Client `i`'s events so far, taken.
    pub fn take_events(&mut self, i: usize) -> Vec<(SimTime, ClientEvent)> {
        std::mem::take(&mut self.client_events[i])
    }

    /// Has client `i` reported an event matching `f`?
    pub fn client_saw(&self, i: usize, f: impl Fn(&ClientEvent) -> bool) -> bool {
        self.client_events[i].iter().any(|(_, e)| f(e))
    }

    pub fn gw_saw(&self, g: usize, f: impl Fn(&GatewayEvent) -> bool) -> bool {
        self.gw_events[g].iter().any(|(_, e)| f(e))
    }

    /// Datagrams logged of `kind` from `from`.
    pub fn sent(&self, from: SockAddr, kind: MsgType) -> Vec<&Wire> {
        self.log
            .iter()
            .filter(|w| w.from == from && w.kind == kind)
            .collect()
    }
}

pub fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}
pub fn ms(s: u64) -> SimDuration {
    SimDuration::from_millis(s)
}

impl Net {
    /// Put raw bytes on the wire from `from` to `to` (malformed-input tests).
    pub fn inject(&mut self, from: SockAddr, to: SockAddr, bytes: &[u8]) {
        self.schedule(
            self.now + self.delay,
            Flight::Dgram {
                from,
                to,
                bytes: bytes.to_vec(),
            },
        );
    }
}
