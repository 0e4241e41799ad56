//! MQTT 3.1.1 flows over the simulated TCP: brokers and clients of
//! `proto::mqtt` driven by the world (docs/protocols.md, docs/mqtt.md).
//!
//! Mapping: every node that publishes or receives in an MQTT flow runs one
//! `Client` for that flow (client id = the node name, or `<node>-<flow>`
//! when the node is in several MQTT flows), connected over TCP to the
//! flow's broker on `[protocols.mqtt] port`. A message is a PUBLISH of the
//! payload to the publisher's rendered topic at the flow's QoS
//! (`best_effort`/`qos0` → 0, `confirmed`/`qos1` → 1, `exactly_once`/`qos2`
//! → 2). Receivers subscribe at that QoS: to their publisher's exact topic
//! for `point_to_point`, to the topic template with every level holding a
//! placeholder turned into `+` for `broadcast` and `fan_in`
//! (`robotics/building1234/{i}` → `robotics/building1234/+`). A message is
//! delivered when a receiver's client hands it to the application (a QoS 1
//! resend is a duplicate; QoS 2 suppresses them).
//!
//! Driving: TCP events only feed the protocol objects and mark them
//! pending; `mqtt_flush`, run after every simulator event, polls each
//! pending client and broker in the documented order (transmit, events,
//! timeout), writes their packets into the TCP sockets and drives those.
//! So no protocol object is re-entered from inside another one's polling.

use super::tcp::SockApp;
use super::{Ev, World};
use crate::proto::mqtt::topic::template_filter;
use crate::proto::mqtt::{
    Broker, BrokerConfig, BrokerEvent, Client, ClientConfig, ClientEvent, ConnId, LastWill,
    PacketType, QoS, Reconnect, TopicFilter, TopicName,
};
use crate::scenario::model::{MqttSession, Pattern, Protocol, Reliability};
use crate::sim::{EventQueue, SimDuration, SimRng, SimTime, Wakeup};
use std::collections::BTreeMap;

/// The broker on one node.
#[derive(Debug)]
pub(crate) struct BrokerNode {
    pub(crate) broker: Broker,
    wake: Wakeup,
}

/// One MQTT client (one node in one flow).
#[derive(Debug)]
pub(crate) struct ClientNode {
    pub(crate) client: Client,
    config: ClientConfig,
    pub(crate) node: u32,
    pub(crate) flow: u32,
    broker: u32,
    sock: Option<u32>,
    /// Sockets of a crashed device, removed when it comes back.
    frozen: Vec<u32>,
    wake: Wakeup,
    subs: Vec<(TopicFilter, QoS)>,
    per_message: bool,
    /// False after `client_disconnect` / `client_crash` until
    /// `client_connect`.
    online: bool,
    crashed: bool,
    crashed_at: Option<SimTime>,
    connects: u32,
    restarts: u32,
}

/// Counters of a flow's MQTT clients, for `mqtt.csv`.
#[derive(Debug, Default, Clone)]
pub struct MqttFlowCounters {
    pub sent_by_type: [u64; 14],
    pub bytes_sent_by_type: [u64; 14],
    pub connects: u64,
    pub connection_losses: u64,
    pub retransmissions: u64,
    pub duplicates_suppressed: u64,
}

/// Every MQTT object of a run.
#[derive(Debug, Default)]
pub(crate) struct MqttLayer {
    pub(crate) brokers: BTreeMap<u32, BrokerNode>,
    pub(crate) clients: Vec<ClientNode>,
    by_node_flow: BTreeMap<(u32, u32), u32>,
    by_id: BTreeMap<String, u32>,
    /// Topic of every publisher (index = publisher), MQTT flows only.
    topics: Vec<Option<TopicName>>,
    pending_clients: Vec<u32>,
    pending_brokers: Vec<u32>,
    buf: Vec<u8>,
    touched: Vec<u32>,
    pub(crate) flow_counters: Vec<MqttFlowCounters>,
}

/// `packets.csv` kind of a TCP segment whose first byte belongs to an MQTT
/// packet of type `t`.
pub fn kind_name(t: PacketType) -> &'static str {
    const KINDS: [&str; 14] = [
        "mqtt_connect",
        "mqtt_connack",
        "mqtt_publish",
        "mqtt_puback",
        "mqtt_pubrec",
        "mqtt_pubrel",
        "mqtt_pubcomp",
        "mqtt_subscribe",
        "mqtt_suback",
        "mqtt_unsubscribe",
        "mqtt_unsuback",
        "mqtt_pingreq",
        "mqtt_pingresp",
        "mqtt_disconnect",
    ];
    KINDS[t.index()]
}

/// `QoS` of a flow's reliability class.
pub fn qos_of(r: Reliability) -> QoS {
    match r {
        Reliability::Confirmed | Reliability::Qos1 | Reliability::Con => QoS::AtLeastOnce,
        Reliability::ExactlyOnce | Reliability::Qos2 => QoS::ExactlyOnce,
        Reliability::BestEffort | Reliability::Qos0 | Reliability::Non => QoS::AtMostOnce,
    }
}

/// Where the application payload starts in an encoded PUBLISH (fixed
/// header, topic, packet identifier), or `None` for other bytes.
pub fn publish_payload_offset(p: &[u8]) -> Option<usize> {
    if p.first()? >> 4 != 3 {
        return None;
    }
    let qos = (p[0] >> 1) & 3;
    let mut i = 1;
    loop {
        let b = *p.get(i)?;
        i += 1;
        if b & 0x80 == 0 || i > 4 {
            break;
        }
    }
    let tlen = usize::from(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]));
    let off = i + 2 + tlen + if qos > 0 { 2 } else { 0 };
    (off <= p.len()).then_some(off)
}

impl MqttLayer {
    fn client_of(&self, node: u32, flow: u32) -> Option<u32> {
        self.by_node_flow.get(&(node, flow)).copied()
    }
}

impl World<'_> {
    /// Build brokers and clients for the MQTT flows (no traffic yet).
    pub(crate) fn mqtt_setup(&mut self) {
        let sc = self.sc;
        let m = &sc.protocols.mqtt;
        self.mqtt.flow_counters = vec![MqttFlowCounters::default(); sc.flows.len()];
        self.mqtt.topics = vec![None; self.publishers.len()];
        let mut flows_of_node: BTreeMap<u32, u32> = BTreeMap::new();
        for f in sc.flows.iter().filter(|f| f.protocol == Protocol::Mqtt) {
            let mut nodes: Vec<usize> = f.publishers.iter().chain(&f.receivers).copied().collect();
            nodes.sort_unstable();
            nodes.dedup();
            for n in nodes {
                *flows_of_node.entry(n as u32).or_insert(0) += 1;
            }
        }
        // publishers are laid out flow by flow, in each flow's order
        let mut first_pub = Vec::with_capacity(sc.flows.len());
        let mut n = 0;
        for f in &sc.flows {
            first_pub.push(n);
            n += f.publishers.len();
        }
        for (fi, f) in sc.flows.iter().enumerate() {
            if f.protocol != Protocol::Mqtt {
                continue;
            }
            let Some(broker) = f.broker else { continue };
            let broker = broker as u32;
            if let std::collections::btree_map::Entry::Vacant(e) = self.mqtt.brokers.entry(broker) {
                let cfg = BrokerConfig {
                    max_inflight: m.max_inflight as usize,
                    max_queued: m.max_queued as usize,
                    qos2_forward: m.qos2_forward,
                    legacy_retry: m.legacy_retry,
                    sys_interval: (m.sys_interval > SimDuration::ZERO).then_some(m.sys_interval),
                    allow_anonymous: m.allow_anonymous,
                    users: m
                        .users
                        .iter()
                        .map(|(u, p)| (u.clone(), p.as_bytes().to_vec()))
                        .collect(),
                    delivery_events: false,
                    persistence: m.persistence,
                    ..BrokerConfig::default()
                };
                e.insert(BrokerNode {
                    broker: Broker::new(cfg, SimTime::ZERO),
                    wake: Wakeup::default(),
                });
                self.tcp_listen(broker as usize, m.port, super::tcp::ListenApp::MqttBroker);
                self.mqtt.pending_brokers.push(broker);
            }
            let qos = qos_of(f.reliability);
            let ensure = |w: &mut Self, node: usize| -> u32 {
                w.mqtt_client_for(
                    node as u32,
                    fi as u32,
                    broker,
                    flows_of_node[&(node as u32)],
                )
            };
            for (k, &p) in f.publishers.iter().enumerate() {
                ensure(self, p);
                let pi = first_pub[fi] + k;
                self.mqtt.topics[pi] = TopicName::new(&self.publishers[pi].topic).ok();
            }
            let filter = TopicFilter::new(&template_filter(&f.topic)).ok();
            for (k, &r) in f.receivers.iter().enumerate() {
                let c = ensure(self, r);
                let flt = match f.pattern {
                    Pattern::PointToPoint => f.publishers.get(k).and_then(|_| {
                        TopicFilter::new(&self.publishers[first_pub[fi] + k].topic).ok()
                    }),
                    Pattern::Broadcast | Pattern::FanIn => filter.clone(),
                };
                if let Some(flt) = flt {
                    let subs = &mut self.mqtt.clients[c as usize].subs;
                    if !subs.iter().any(|(x, _)| *x == flt) {
                        subs.push((flt, qos));
                    }
                }
            }
        }
        for c in &mut self.mqtt.clients {
            // a client that only publishes may connect per message
            c.per_message = m.session == MqttSession::PerMessage && c.subs.is_empty();
            if c.per_message {
                c.config.clean_session = true;
                c.config.reconnect = None;
                c.client = Client::new(c.config.clone(), c.client_rng(self.sc.seed));
            }
        }
    }

    fn mqtt_client_for(&mut self, node: u32, flow: u32, broker: u32, flows_here: u32) -> u32 {
        if let Some(c) = self.mqtt.client_of(node, flow) {
            return c;
        }
        let m = &self.sc.protocols.mqtt;
        let name = &self.names[node as usize];
        let id = if flows_here > 1 {
            format!("{name}-{}", self.sc.flows[flow as usize].name)
        } else {
            name.clone()
        };
        let will = m.will_topic.as_ref().and_then(|t| {
            Some(LastWill {
                topic: TopicName::new(&t.replace("{name}", name)).ok()?,
                message: m.will_message.as_bytes().into(),
                qos: QoS::from_u8(m.will_qos).unwrap_or(QoS::AtMostOnce),
                retain: m.will_retain,
            })
        });
        let config = ClientConfig {
            client_id: id.clone(),
            clean_session: m.session != MqttSession::Persistent,
            keep_alive: (m.keep_alive.as_nanos() / 1_000_000_000) as u16,
            will,
            username: m.username.clone(),
            password: m.password.as_ref().map(|p| p.as_bytes().to_vec()),
            reconnect: Some(Reconnect {
                initial_delay: m.reconnect_min,
                max_delay: m.reconnect_max,
                jitter: 0.5,
            }),
            max_inflight: m.max_inflight as usize,
            legacy_retry: m.legacy_retry,
            connect_timeout: m.connect_timeout,
            ..ClientConfig::default()
        };
        let mut cn = ClientNode {
            client: Client::new(config.clone(), SimRng::from_id(0, 0)),
            config,
            node,
            flow,
            broker,
            sock: None,
            frozen: Vec::new(),
            wake: Wakeup::default(),
            subs: Vec::new(),
            per_message: false,
            online: true,
            crashed: false,
            crashed_at: None,
            connects: 0,
            restarts: 0,
        };
        cn.client = Client::new(cn.config.clone(), cn.client_rng(self.sc.seed));
        let idx = self.mqtt.clients.len() as u32;
        self.mqtt.clients.push(cn);
        self.mqtt.by_node_flow.insert((node, flow), idx);
        self.mqtt.by_id.insert(id, idx);
        idx
    }

    /// Schedule every long-lived client's first connection.
    pub(crate) fn mqtt_prime(&mut self, q: &mut EventQueue<Ev>) {
        let spread = self.sc.protocols.mqtt.connect_spread;
        for c in 0..self.mqtt.clients.len() {
            let cn = &self.mqtt.clients[c];
            if cn.per_message {
                continue;
            }
            let mut rng = SimRng::stream(
                self.sc.seed,
                &format!("mqtt/connect/{}", cn.config.client_id),
            );
            let at = SimTime::ZERO + SimDuration(rng.below(spread.as_nanos().max(1)));
            let _ = q.push(at, Ev::MqttStart { client: c as u32 });
        }
        let _ = q.push(SimTime::ZERO, Ev::MqttFlush);
    }

    /// Whether publisher `p`'s MQTT client can take a message (a crashed
    /// device produces nothing).
    pub(crate) fn mqtt_publisher_alive(&self, p: usize) -> bool {
        let pb = &self.publishers[p];
        self.mqtt
            .client_of(pb.node, pb.flow)
            .is_none_or(|c| !self.mqtt.clients[c as usize].crashed)
    }

    /// Publish one message of an MQTT flow (payload in `self.payload`).
    pub(crate) fn mqtt_publish(&mut self, now: SimTime, p: usize) {
        let pb = &self.publishers[p];
        let Some(c) = self.mqtt.client_of(pb.node, pb.flow) else {
            return;
        };
        let Some(topic) = self.mqtt.topics[p].clone() else {
            return;
        };
        let fi = pb.flow as usize;
        let qos = qos_of(self.sc.flows[fi].reliability);
        let retain = self.sc.flows[fi].retain;
        let cn = &mut self.mqtt.clients[c as usize];
        let payload: std::sync::Arc<[u8]> = self.payload.as_slice().into();
        if cn.client.publish(now, topic, payload, qos, retain).is_err() {
            if let Some(s) = self.recorder.stats_mut(fi) {
                s.mqtt_dropped += 1;
            }
        }
        if cn.per_message && cn.online {
            cn.client.connect(now);
        }
        self.mqtt.pending_clients.push(c);
    }

    /// Poll every pending client and broker until nothing is pending.
    pub(crate) fn mqtt_flush(&mut self, now: SimTime, q: &mut EventQueue<Ev>) {
        fn take_sorted(v: &mut Vec<u32>) -> Vec<u32> {
            let mut t = std::mem::take(v);
            t.sort_unstable();
            t.dedup();
            t
        }
        while !self.mqtt.pending_clients.is_empty() || !self.mqtt.pending_brokers.is_empty() {
            for c in take_sorted(&mut self.mqtt.pending_clients) {
                self.mqtt_client_drive(now, q, c);
            }
            for b in take_sorted(&mut self.mqtt.pending_brokers) {
                self.mqtt_broker_drive(now, q, b);
            }
        }
    }

    /// Queue one encoded MQTT packet on a socket, marking where its
    /// application payload lies (PUBLISH) and what it is (`packets.csv`).
    fn mqtt_write(&mut self, slot: u32, packet: &[u8], kind: PacketType) {
        let app = if kind == PacketType::Publish {
            publish_payload_offset(packet).map(|o| (o, packet.len()))
        } else {
            None
        };
        self.tcp_app_write(slot, packet, app, Some(kind_name(kind)));
    }

    /// Drive every socket a poll wrote to, once each, and hand the scratch
    /// buffers back.
    fn mqtt_drive_touched(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        mut touched: Vec<u32>,
        buf: Vec<u8>,
    ) {
        touched.sort_unstable();
        touched.dedup();
        for &slot in &touched {
            self.tcp_drive(now, q, slot);
        }
        touched.clear();
        self.mqtt.touched = touched;
        self.mqtt.buf = buf;
    }

    fn mqtt_client_drive(&mut self, now: SimTime, q: &mut EventQueue<Ev>, c: u32) {
        let counted = self.counted(now);
        let mut buf = std::mem::take(&mut self.mqtt.buf);
        let mut touched = std::mem::take(&mut self.mqtt.touched);
        loop {
            let mut progressed = false;
            loop {
                let cn = &mut self.mqtt.clients[c as usize];
                let Some(t) = cn.client.poll_transmit(now, &mut buf) else {
                    break;
                };
                let fc = &mut self.mqtt.flow_counters[cn.flow as usize];
                fc.sent_by_type[t.kind.index()] += 1;
                fc.bytes_sent_by_type[t.kind.index()] += t.len as u64;
                if let Some(slot) = cn.sock {
                    self.mqtt_write(slot, &buf[..t.len], t.kind);
                    touched.push(slot);
                }
            }
            loop {
                let cn = &mut self.mqtt.clients[c as usize];
                let Some(ev) = cn.client.poll_event() else {
                    break;
                };
                progressed = true;
                let (node, flow) = (cn.node as usize, cn.flow as usize);
                match ev {
                    ClientEvent::OpenTransport => {
                        if !(self.nodes[node].up && cn.online) {
                            cn.client.transport_closed(now);
                            continue;
                        }
                        let (broker, port) = (cn.broker as usize, self.sc.protocols.mqtt.port);
                        let app = SockApp::MqttClient { client: c };
                        let slot = self.tcp_connect(now, q, node, (broker, port), flow as u32, app);
                        let cn = &mut self.mqtt.clients[c as usize];
                        if self.tcp.socks[slot as usize].is_some() {
                            cn.sock = Some(slot);
                            let at = now + self.sc.protocols.mqtt.connect_timeout;
                            let _ = q.push(at, Ev::MqttConnectTimeout { client: c, slot });
                        } else {
                            cn.client.transport_closed(now);
                        }
                    }
                    ClientEvent::CloseTransport => {
                        // the client already counts the connection as gone
                        if let Some(slot) = cn.sock.take() {
                            self.tcp_close(slot);
                            touched.push(slot);
                        }
                    }
                    ClientEvent::Connected { session_present } => {
                        cn.connects += 1;
                        let again = cn.connects > 1;
                        if !cn.subs.is_empty() && !session_present {
                            let subs = cn.subs.clone();
                            let _ = cn.client.subscribe(now, subs);
                        }
                        self.mqtt.flow_counters[flow].connects += 1;
                        if again && counted && !self.mqtt.clients[c as usize].per_message {
                            if let Some(s) = self.recorder.stats_mut(flow) {
                                s.mqtt_reconnects += 1;
                            }
                        }
                    }
                    ClientEvent::Message { payload, .. } => {
                        if let Some((f, msg)) = crate::app::workload::parse_payload(&payload) {
                            self.recorder.on_receive(now, f as usize, msg, node as u32);
                        }
                    }
                    ClientEvent::ConnectionLost { .. } => {
                        if let Some(slot) = cn.sock.take() {
                            self.tcp_abort(slot);
                            touched.push(slot);
                        }
                        self.mqtt.flow_counters[flow].connection_losses += 1;
                        if counted {
                            if let Some(s) = self.recorder.stats_mut(flow) {
                                s.mqtt_connection_losses += 1;
                            }
                        }
                    }
                    ClientEvent::ConnectRefused(_)
                    | ClientEvent::PublishAcked { .. }
                    | ClientEvent::Subscribed { .. }
                    | ClientEvent::Unsubscribed { .. }
                    | ClientEvent::Disconnected => {}
                }
            }
            let cn = &mut self.mqtt.clients[c as usize];
            if cn.per_message && cn.client.is_connected() && cn.client.is_idle() {
                cn.client.disconnect(now);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.mqtt_drive_touched(now, q, touched, buf);
        let cn = &mut self.mqtt.clients[c as usize];
        if let Some(d) = cn.client.poll_timeout() {
            if let Some(gen) = cn.wake.arm(d) {
                let _ = q.push(d.max(now), Ev::MqttClientTimer { client: c, gen });
            }
        }
    }

    fn mqtt_broker_drive(&mut self, now: SimTime, q: &mut EventQueue<Ev>, node: u32) {
        let counted = self.counted(now);
        let mut buf = std::mem::take(&mut self.mqtt.buf);
        let mut touched = std::mem::take(&mut self.mqtt.touched);
        while let Some(t) = self
            .mqtt
            .brokers
            .get_mut(&node)
            .and_then(|b| b.broker.poll_transmit(&mut buf))
        {
            if let Some(slot) = self.tcp_slot_of(t.conn) {
                self.mqtt_write(slot, &buf[..t.len], t.kind);
                touched.push(slot);
            }
        }
        while let Some(ev) = self
            .mqtt
            .brokers
            .get_mut(&node)
            .and_then(|b| b.broker.poll_event())
        {
            match ev {
                BrokerEvent::Close(conn) => {
                    if let Some(slot) = self.tcp_slot_of(conn) {
                        self.tcp_close(slot);
                        touched.push(slot);
                    }
                }
                BrokerEvent::WillPublished { client_id, .. } => {
                    if let Some(&c) = self.mqtt.by_id.get(&*client_id) {
                        let cn = &self.mqtt.clients[c as usize];
                        let (flow, crashed_at) = (cn.flow as usize, cn.crashed_at);
                        if counted {
                            if let Some(s) = self.recorder.stats_mut(flow) {
                                s.mqtt_wills += 1;
                                if let Some(t) = crashed_at {
                                    s.mqtt_will_delay_ns
                                        .push(now.saturating_since(t).as_nanos());
                                }
                            }
                        }
                    }
                }
                BrokerEvent::Dropped { client_id, .. } => {
                    if let Some(&c) = self.mqtt.by_id.get(&*client_id) {
                        let flow = self.mqtt.clients[c as usize].flow as usize;
                        if counted {
                            if let Some(s) = self.recorder.stats_mut(flow) {
                                s.mqtt_dropped += 1;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.mqtt_drive_touched(now, q, touched, buf);
        if let Some(b) = self.mqtt.brokers.get_mut(&node) {
            if let Some(d) = b.broker.poll_timeout() {
                if let Some(gen) = b.wake.arm(d) {
                    let _ = q.push(d.max(now), Ev::MqttBrokerTimer { node, gen });
                }
            }
        }
    }

    pub(crate) fn on_mqtt_client_timer(&mut self, now: SimTime, c: u32, gen: u32) {
        let cn = &mut self.mqtt.clients[c as usize];
        if !cn.wake.fire(gen, now) {
            return;
        }
        if cn.client.poll_timeout().is_some_and(|d| d <= now) {
            cn.client.handle_timeout(now);
        }
        self.mqtt.pending_clients.push(c);
    }

    pub(crate) fn on_mqtt_broker_timer(&mut self, now: SimTime, node: u32, gen: u32) {
        let Some(b) = self.mqtt.brokers.get_mut(&node) else {
            return;
        };
        if !b.wake.fire(gen, now) {
            return;
        }
        if b.broker.poll_timeout().is_some_and(|d| d <= now) {
            b.broker.handle_timeout(now);
        }
        self.mqtt.pending_brokers.push(node);
    }

    /// A connection attempt still in its TCP handshake is abandoned (as
    /// paho-mqtt's connect timeout does) and the client backs off.
    pub(crate) fn on_mqtt_connect_timeout(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        c: u32,
        slot: u32,
    ) {
        let cn = &mut self.mqtt.clients[c as usize];
        if cn.sock != Some(slot) {
            return;
        }
        let handshaking = self.tcp.socks[slot as usize].as_ref().is_some_and(|s| {
            matches!(
                s.conn.state(),
                crate::transport::tcp::State::SynSent | crate::transport::tcp::State::Closed
            )
        });
        if !handshaking {
            return;
        }
        cn.sock = None;
        self.tcp_abort(slot);
        self.tcp_drive(now, q, slot);
        self.mqtt.clients[c as usize].client.transport_closed(now);
        self.mqtt.pending_clients.push(c);
    }

    pub(crate) fn on_mqtt_start(&mut self, now: SimTime, c: u32) {
        let cn = &mut self.mqtt.clients[c as usize];
        if cn.online && self.nodes[cn.node as usize].up {
            cn.client.connect(now);
            self.mqtt.pending_clients.push(c);
        }
    }

    // ----- from the TCP layer -----

    pub(crate) fn mqtt_transport_up(&mut self, now: SimTime, c: u32) {
        self.mqtt.clients[c as usize]
            .client
            .transport_connected(now);
        self.mqtt.pending_clients.push(c);
    }

    pub(crate) fn mqtt_transport_down(&mut self, now: SimTime, c: u32, slot: u32) {
        let cn = &mut self.mqtt.clients[c as usize];
        if cn.sock == Some(slot) {
            cn.sock = None;
            cn.client.transport_closed(now);
            self.mqtt.pending_clients.push(c);
        }
    }

    pub(crate) fn mqtt_client_bytes(&mut self, now: SimTime, c: u32, data: &[u8]) {
        self.mqtt.clients[c as usize].client.handle_bytes(now, data);
        self.mqtt.pending_clients.push(c);
    }

    pub(crate) fn mqtt_broker_accept(&mut self, now: SimTime, node: u32, conn: ConnId) {
        if let Some(b) = self.mqtt.brokers.get_mut(&node) {
            b.broker.accept(now, conn);
            self.mqtt.pending_brokers.push(node);
        }
    }

    pub(crate) fn mqtt_broker_bytes(&mut self, now: SimTime, node: u32, conn: ConnId, d: &[u8]) {
        if let Some(b) = self.mqtt.brokers.get_mut(&node) {
            b.broker.handle_bytes(now, conn, d);
            self.mqtt.pending_brokers.push(node);
        }
    }

    pub(crate) fn mqtt_broker_conn_lost(&mut self, now: SimTime, node: u32, conn: ConnId) {
        if let Some(b) = self.mqtt.brokers.get_mut(&node) {
            b.broker.connection_lost(now, conn);
            self.mqtt.pending_brokers.push(node);
        }
    }

    // ----- scenario events -----

    fn clients_on(&self, node: usize) -> Vec<u32> {
        let lo = (node as u32, 0);
        let hi = (node as u32, u32::MAX);
        self.mqtt
            .by_node_flow
            .range(lo..=hi)
            .map(|(_, &c)| c)
            .collect()
    }

    /// Start a client afresh: a crash loses everything it held.
    fn mqtt_reset_client(&mut self, now: SimTime, c: u32) {
        let seed = self.sc.seed;
        let cn = &mut self.mqtt.clients[c as usize];
        cn.restarts += 1;
        cn.client = Client::new(cn.config.clone(), cn.client_rng(seed));
        cn.sock = None;
        cn.wake.reset();
        cn.crashed_at = Some(now);
    }

    /// A node crashed (its sockets are already gone): brokers crash, clients
    /// lose their state.
    pub(crate) fn mqtt_node_crash(&mut self, now: SimTime, node: usize) {
        if let Some(b) = self.mqtt.brokers.get_mut(&(node as u32)) {
            b.broker.crash(now);
            b.wake.reset();
        }
        for c in self.clients_on(node) {
            self.mqtt_reset_client(now, c);
            self.mqtt.clients[c as usize].crashed = true;
        }
    }

    pub(crate) fn mqtt_node_restart(&mut self, now: SimTime, node: usize) {
        if let Some(b) = self.mqtt.brokers.get_mut(&(node as u32)) {
            b.broker.restart(now);
            self.mqtt.pending_brokers.push(node as u32);
        }
        for c in self.clients_on(node) {
            let cn = &mut self.mqtt.clients[c as usize];
            cn.crashed = false;
            if cn.online && !cn.per_message {
                cn.client.connect(now);
            }
            self.mqtt.pending_clients.push(c);
        }
    }

    pub(crate) fn mqtt_client_action(&mut self, now: SimTime, node: usize, action: ClientAction) {
        for c in self.clients_on(node) {
            match action {
                ClientAction::Disconnect => {
                    let cn = &mut self.mqtt.clients[c as usize];
                    cn.online = false;
                    cn.client.disconnect(now);
                }
                ClientAction::Crash => {
                    if let Some(slot) = self.mqtt.clients[c as usize].sock {
                        self.tcp_freeze(slot);
                        self.mqtt.clients[c as usize].frozen.push(slot);
                    }
                    self.mqtt_reset_client(now, c);
                    let cn = &mut self.mqtt.clients[c as usize];
                    cn.online = false;
                    cn.crashed = true;
                }
                ClientAction::Connect => {
                    for slot in std::mem::take(&mut self.mqtt.clients[c as usize].frozen) {
                        self.tcp_remove(now, slot);
                    }
                    let cn = &mut self.mqtt.clients[c as usize];
                    cn.online = true;
                    cn.crashed = false;
                    if !cn.per_message && self.nodes[node].up {
                        cn.client.connect(now);
                    }
                }
            }
            self.mqtt.pending_clients.push(c);
        }
    }
}

/// `client_disconnect`, `client_crash`, `client_connect`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClientAction {
    Disconnect,
    Crash,
    Connect,
}

impl ClientNode {
    /// The client's own stream (reconnect jitter); a restarted client draws
    /// from a new one.
    fn client_rng(&self, seed: u64) -> SimRng {
        SimRng::stream(
            seed,
            &format!("mqtt/client/{}/{}", self.config.client_id, self.restarts),
        )
    }
}

/// One row of `mqtt.csv` (long format: one observation per row).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttRow {
    /// `broker` (name = the broker's node) or `flow` (name = the flow's
    /// clients, summed).
    pub scope: &'static str,
    pub name: String,
    pub metric: String,
    pub value: String,
}

/// `$SYS` topics read back at the end of a run.
const SYS_TOPICS: [(&str, &str); 5] = [
    ("$SYS/broker/clients/connected", "sys_clients_connected"),
    (
        "$SYS/broker/clients/disconnected",
        "sys_clients_disconnected",
    ),
    ("$SYS/broker/clients/total", "sys_clients_total"),
    ("$SYS/broker/messages/sent", "sys_messages_sent"),
    ("$SYS/broker/uptime", "sys_uptime"),
];

impl World<'_> {
    /// The rows of `mqtt.csv` at the end of the run.
    pub(crate) fn mqtt_rows(&self) -> Vec<MqttRow> {
        let mut rows = Vec::new();
        let mut push = |scope, name: &str, metric: String, value: String| {
            rows.push(MqttRow {
                scope,
                name: name.to_string(),
                metric,
                value,
            })
        };
        for (&node, b) in &self.mqtt.brokers {
            let name = &self.names[node as usize];
            let st = b.broker.stats();
            for (topic, metric) in SYS_TOPICS {
                let v = b
                    .broker
                    .retained(topic)
                    .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                push("broker", name, metric.to_string(), v);
            }
            let (mut queued, mut inflight, mut sessions) = (0, 0, 0);
            for (id, &c) in &self.mqtt.by_id {
                if self.mqtt.clients[c as usize].broker != node {
                    continue;
                }
                if let Some(s) = b.broker.session_info(id) {
                    queued += s.queued;
                    inflight += s.inflight;
                    sessions += 1;
                }
            }
            for (metric, v) in [
                ("sessions", sessions as u64),
                ("queued_messages", queued as u64),
                ("inflight_messages", inflight as u64),
                ("retained_messages", st.retained_messages),
                ("connects_accepted", st.connects_accepted),
                ("connects_refused", st.connects_refused),
                ("publishes_received", st.publishes_received),
                ("publishes_sent", st.publishes_sent),
                ("retransmissions", st.retransmissions),
                ("dropped_queue_full", st.dropped_queue_full),
                ("dropped_qos0_offline", st.dropped_qos0_offline),
                ("keep_alive_timeouts", st.keep_alive_timeouts),
                ("takeovers", st.takeovers),
                ("wills_published", st.wills_published),
                ("protocol_errors", st.protocol_errors),
            ] {
                push("broker", name, metric.to_string(), v.to_string());
            }
            for t in PacketType::ALL {
                let i = t.index();
                if st.sent_by_type[i] > 0 {
                    push(
                        "broker",
                        name,
                        format!("packets_sent_{}", t.name()),
                        st.sent_by_type[i].to_string(),
                    );
                    push(
                        "broker",
                        name,
                        format!("bytes_sent_{}", t.name()),
                        st.bytes_sent_by_type[i].to_string(),
                    );
                }
            }
        }
        for (fi, f) in self.sc.flows.iter().enumerate() {
            if f.protocol != Protocol::Mqtt {
                continue;
            }
            let fc = &self.mqtt.flow_counters[fi];
            let (mut rtx, mut dups) = (0, 0);
            for c in self.mqtt.clients.iter().filter(|c| c.flow == fi as u32) {
                rtx += c.client.stats().retransmissions;
                dups += c.client.stats().duplicates_suppressed;
            }
            for (metric, v) in [
                (
                    "clients",
                    self.mqtt
                        .clients
                        .iter()
                        .filter(|c| c.flow == fi as u32)
                        .count() as u64,
                ),
                ("connects", fc.connects),
                ("connection_losses", fc.connection_losses),
                ("retransmissions", rtx),
                ("duplicates_suppressed", dups),
            ] {
                push("flow", &f.name, metric.to_string(), v.to_string());
            }
            for t in PacketType::ALL {
                let i = t.index();
                if fc.sent_by_type[i] > 0 {
                    push(
                        "flow",
                        &f.name,
                        format!("packets_sent_{}", t.name()),
                        fc.sent_by_type[i].to_string(),
                    );
                    push(
                        "flow",
                        &f.name,
                        format!("bytes_sent_{}", t.name()),
                        fc.bytes_sent_by_type[i].to_string(),
                    );
                }
            }
        }
        rows
    }
}

/// Header of `mqtt.csv`.
pub const MQTT_HEADER: &str = "run_id,scope,name,metric,value";

/// Write `mqtt.csv`.
pub fn write_mqtt_rows(
    w: &mut impl std::io::Write,
    run_id: u64,
    rows: &[MqttRow],
) -> std::io::Result<()> {
    use crate::metrics::record::csv_field;
    writeln!(w, "{MQTT_HEADER}")?;
    for r in rows {
        writeln!(
            w,
            "{run_id},{},{},{},{}",
            r.scope,
            csv_field(&r.name),
            csv_field(&r.metric),
            csv_field(&r.value)
        )?;
    }
    Ok(())
}
