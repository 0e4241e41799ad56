//! MQTT 3.1.1 flows over the simulated TCP: brokers and clients of
//! `proto::mqtt` driven through the host stack (docs/protocols.md,
//! docs/mqtt.md).
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
//! Driving: stream events only feed the protocol objects and mark them
//! pending; `flush`, run after every simulator event, polls each pending
//! client and broker in the documented order (transmit, events, timeout),
//! writes their packets into the TCP sockets (annotated with the MQTT packet
//! type and where the PUBLISH payload lies) and drives those. So no
//! protocol object is re-entered from inside another one's polling.

use super::{ClientAction, Ctx, Message, Plugin, PluginOutput, RunEnd, Table};
use crate::metrics::summary::Value;
use crate::proto::mqtt::topic::template_filter;
use crate::proto::mqtt::BrokerInput;
use crate::proto::mqtt::{
    Broker, BrokerConfig, BrokerEvent, Client, ClientConfig, ClientEvent, ConnId, LastWill,
    PacketType, QoS, Reconnect, TopicFilter, TopicName,
};
use crate::proto::StreamInput;
use crate::scenario::model::{
    FlowSpec, MqttParams, MqttSession, Pattern, Protocol, Reliability, Scenario,
};
use crate::sim::{SimDuration, SimRng, SimTime, Wakeup};
use crate::world::host::{SockId, SockOpts, StreamApp, StreamEvent, StreamState};
use std::collections::BTreeMap;

pub(super) use crate::scenario::columns::MQTT_COLUMNS;

/// Timer keys: the kind in the top bits, the client or broker node below.
const KEY_CLIENT_TIMER: u32 = 0;
const KEY_BROKER_TIMER: u32 = 1 << 28;
const KEY_CLIENT_START: u32 = 2 << 28;
const KEY_CONNECT_TIMEOUT: u32 = 3 << 28;
const KEY_BROKERS_START: u32 = 4 << 28;
const KEY_KIND: u32 = 0xF << 28;

/// Socket tags: a broker's accepted connections carry this bit and the
/// broker's node; a client's connection carries the client's index.
const BROKER_SOCK: u32 = 1 << 31;

/// The broker on one node.
#[derive(Debug)]
struct BrokerNode {
    broker: Broker,
    wake: Wakeup,
}

/// One MQTT client (one node in one flow).
#[derive(Debug)]
struct ClientNode {
    /// Its configuration is the client's own (`Client::config`): a crashed
    /// device restarts from it.
    client: Client,
    node: u32,
    flow: u32,
    broker: u32,
    sock: Option<SockId>,
    wake: Wakeup,
    /// What few clients have (subscriptions, a crash); `None` for the
    /// rest, so a million publishers do not carry it inline.
    rare: Option<Box<Rare>>,
    per_message: bool,
    /// A SUBACK for `subs` arrived in this session: a CONNACK with
    /// session present may then keep them. Without it (the first
    /// connection was lost before its CONNACK, say) the broker's session
    /// has no subscriptions and the client subscribes again, as paho does.
    subscribed: bool,
    /// False after `client_disconnect` / `client_crash` until
    /// `client_connect`.
    online: bool,
    crashed: bool,
    connects: u32,
    restarts: u32,
}

/// The parts of a [`ClientNode`] most clients never use.
#[derive(Debug, Default)]
struct Rare {
    /// Sockets of a crashed device, removed when it comes back.
    frozen: Vec<SockId>,
    subs: Vec<(TopicFilter, QoS)>,
    /// When the device last crashed.
    crashed_at: Option<SimTime>,
}

impl ClientNode {
    fn subs(&self) -> &[(TopicFilter, QoS)] {
        self.rare.as_ref().map_or(&[], |r| &r.subs)
    }
    fn crashed_at(&self) -> Option<SimTime> {
        self.rare.as_ref().and_then(|r| r.crashed_at)
    }
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }
}

/// Bytes of the MQTT plug-in's per-client record (for `world::footprint`).
pub(crate) const CLIENT_NODE_BYTES: usize = std::mem::size_of::<ClientNode>();

/// Counters of a flow's MQTT clients, for `mqtt.csv`.
#[derive(Debug, Default, Clone)]
struct MqttFlowCounters {
    sent_by_type: [u64; 14],
    bytes_sent_by_type: [u64; 14],
    connects: u64,
    connection_losses: u64,
}

/// Per-flow values of the MQTT columns of runs.csv: unexpected connection
/// losses, reconnections, wills the broker published for the flow's
/// clients, the delay from each crash to its will (ns), and messages
/// dropped (broker queue full or QoS 0 offline, client queue full), and
/// what the broker's ACL refused the flow's clients (PUBLISHes, SUBSCRIBE
/// filters, wills).
#[derive(Debug, Default, Clone)]
struct MqttColumns {
    connection_losses: u64,
    reconnects: u64,
    wills: u64,
    will_delay_ns: Vec<u64>,
    dropped: u64,
    denied: u64,
}

/// Clients by Client Identifier: their indices sorted by id, built once
/// every client exists. The id itself lives only in the client (a map of
/// owned strings cost about 80 bytes per client).
#[derive(Debug, Default)]
struct ById(Vec<u32>);

impl ById {
    fn build(clients: &[ClientNode]) -> Self {
        let id = |c: u32| clients[c as usize].client.client_id();
        let mut v: Vec<u32> = (0..clients.len() as u32).collect();
        v.sort_unstable_by(|&a, &b| id(a).cmp(id(b)));
        ById(v)
    }
    fn get(&self, clients: &[ClientNode], id: &str) -> Option<u32> {
        let i = self
            .0
            .binary_search_by(|&c| clients[c as usize].client.client_id().cmp(id))
            .ok()?;
        Some(self.0[i])
    }
    /// Every client, in id order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

/// Every MQTT object of a run.
#[derive(Debug, Default)]
struct Mqtt {
    brokers: BTreeMap<u32, BrokerNode>,
    clients: Vec<ClientNode>,
    by_node_flow: BTreeMap<(u32, u32), u32>,
    by_id: ById,
    /// Topic of every publisher (index = publisher), MQTT flows only.
    topics: Vec<Option<TopicName>>,
    pending_clients: Vec<u32>,
    pending_brokers: Vec<u32>,
    buf: Vec<u8>,
    touched: Vec<SockId>,
    flow_counters: Vec<MqttFlowCounters>,
    columns: Vec<MqttColumns>,
    /// The clients' options (every one comes from `[protocols.mqtt]`), one
    /// copy for all; each client keeps its own identifier and will.
    shared: Option<std::sync::Arc<ClientConfig>>,
    /// The same for per-message clients (clean session, no reconnection).
    shared_per_message: Option<std::sync::Arc<ClientConfig>>,
}

pub(super) fn new(_: &Scenario) -> Box<dyn Plugin> {
    Box::<Mqtt>::default()
}

/// `QoS` of a flow's reliability class.
pub(crate) fn qos_of(reliability: Reliability) -> QoS {
    match reliability {
        Reliability::Confirmed | Reliability::Qos1 | Reliability::Con => QoS::AtLeastOnce,
        Reliability::ExactlyOnce | Reliability::Qos2 => QoS::ExactlyOnce,
        Reliability::BestEffort | Reliability::Qos0 | Reliability::Non | Reliability::QosMinus1 => {
            QoS::AtMostOnce
        }
    }
}

/// Where the application payload starts in an encoded PUBLISH (fixed
/// header, topic, packet identifier and, on an MQTT 5.0 connection, the
/// property block), or `None` for other bytes.
fn publish_payload_offset(packet: &[u8], v5: bool) -> Option<usize> {
    use crate::proto::mqtt::codec::{parse_fixed_header, read_varint};
    let (first, _, hlen) = parse_fixed_header(packet).ok()??;
    if first >> 4 != 3 {
        return None;
    }
    let qos = (first >> 1) & 3;
    let tlen = usize::from(u16::from_be_bytes([
        *packet.get(hlen)?,
        *packet.get(hlen + 1)?,
    ]));
    let mut off = hlen + 2 + tlen + if qos > 0 { 2 } else { 0 };
    if v5 {
        // property length: a variable byte integer, then the properties
        let (len, n) = read_varint(packet.get(off..)?).ok()??;
        off += n + len;
    }
    (off <= packet.len()).then_some(off)
}

/// Queue one encoded MQTT packet on a socket, marking what it is
/// (`packets.csv`) and, for a PUBLISH, where its application payload lies
/// and which flow's message it carries (a broker's connection, or an
/// MQTT-SN gateway's aggregated one, carries several flows).
pub(super) fn write_packet(
    ctx: &mut Ctx<'_, '_>,
    sock: SockId,
    packet: &[u8],
    kind: PacketType,
    v5: bool,
) {
    let name = kind.kind();
    // A refused write (the socket's backlog full, counted by the world as
    // a queue drop) loses the whole packet and keeps the stream's framing.
    if kind == PacketType::Publish {
        if let Some(o) = publish_payload_offset(packet, v5) {
            let flows = ctx.scenario().flows.len();
            let msg = crate::app::workload::parse_payload(&packet[o..]);
            if ctx.monitors().is_some() {
                let flow = msg.map(|(f, _)| f).filter(|&f| (f as usize) < flows);
                let (now, node) = (ctx.now(), ctx.tcp_node(sock).unwrap_or(u32::MAX));
                if let Some(m) = ctx.monitors() {
                    m.mqtt_sent(now, node, sock.0, packet, flow);
                }
            }
            match msg {
                Some((flow, _)) if (flow as usize) < flows => {
                    ctx.tcp_write_flow(sock, packet, Some((o, packet.len())), name, flow);
                }
                _ => {
                    ctx.tcp_write(sock, packet, Some((o, packet.len())), Some(name));
                }
            }
            return;
        }
    }
    ctx.tcp_write(sock, packet, None, Some(name));
}

/// Drive every socket a poll wrote to, once each, in slot order; empties
/// `touched`.
pub(super) fn drive_sockets(ctx: &mut Ctx<'_, '_>, touched: &mut Vec<SockId>) {
    touched.sort_unstable_by_key(|s| s.slot());
    touched.dedup();
    for &sock in touched.iter() {
        ctx.tcp_drive(sock);
    }
    touched.clear();
}

pub(super) fn take_sorted(pending: &mut Vec<u32>) -> Vec<u32> {
    let mut t = std::mem::take(pending);
    t.sort_unstable();
    t.dedup();
    t
}

/// The options every MQTT client of a run shares (`[protocols.mqtt]`); the
/// identifier and will are each client's own (`Client::with_shared`). An
/// MQTT-SN gateway's upstream client starts from these too.
pub(super) fn client_config(m: &crate::scenario::model::MqttParams) -> ClientConfig {
    ClientConfig {
        clean_session: m.session != MqttSession::Persistent,
        keep_alive: (m.keep_alive.as_nanos() / 1_000_000_000) as u16,
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
        version: m.version,
        // a persistent 5.0 session lives `session_expiry` after its
        // connection ends; a clean one ends with it
        session_expiry_interval: if m.session == MqttSession::Persistent {
            m.session_expiry
        } else {
            0
        },
        receive_maximum: m.receive_maximum,
        topic_alias_maximum: m.topic_aliases,
        topic_aliases_out: m.topic_aliases,
        ..ClientConfig::default()
    }
}

impl Mqtt {
    fn client_of(&self, node: u32, flow: u32) -> Option<u32> {
        self.by_node_flow.get(&(node, flow)).copied()
    }

    fn client_for(
        &mut self,
        ctx: &Ctx<'_, '_>,
        (node, flow): (u32, u32),
        broker: u32,
        flows_here: u32,
    ) -> u32 {
        if let Some(c) = self.client_of(node, flow) {
            return c;
        }
        let sc = ctx.scenario();
        let m = &sc.protocols.mqtt;
        let name = ctx.node_name(node as usize);
        let id = if flows_here > 1 {
            format!("{name}-{}", sc.flows[flow as usize].name)
        } else {
            name.to_string()
        };
        let will = m.will_topic.as_ref().and_then(|t| {
            Some(LastWill {
                topic: TopicName::new(&t.replace("{name}", name)).ok()?,
                message: m.will_message.as_bytes().into(),
                qos: QoS::from_u8(m.will_qos).unwrap_or(QoS::AtMostOnce),
                retain: m.will_retain,
            })
        });
        let shared = self
            .shared
            .get_or_insert_with(|| std::sync::Arc::new(client_config(m)))
            .clone();
        let rng = client_rng(sc.seed, &id, 0);
        let cn = ClientNode {
            client: Client::with_shared(shared, id.as_str().into(), will, rng),
            node,
            flow,
            broker,
            sock: None,
            wake: Wakeup::default(),
            rare: None,
            subscribed: false,
            per_message: false,
            online: true,
            crashed: false,
            connects: 0,
            restarts: 0,
        };
        let idx = self.clients.len() as u32;
        crate::sim::shed::push_frugal(&mut self.clients, cn);
        self.by_node_flow.insert((node, flow), idx);
        idx
    }

    /// Queue one encoded MQTT packet on a socket, marking where its
    /// application payload lies (PUBLISH) and what it is (`packets.csv`).
    fn write(ctx: &mut Ctx<'_, '_>, sock: SockId, packet: &[u8], kind: PacketType, v5: bool) {
        write_packet(ctx, sock, packet, kind, v5);
    }

    /// Drive every socket a poll wrote to, once each (in slot order), and
    /// hand the scratch buffers back.
    fn drive_touched(&mut self, ctx: &mut Ctx<'_, '_>, mut touched: Vec<SockId>, buf: Vec<u8>) {
        drive_sockets(ctx, &mut touched);
        self.touched = touched;
        self.buf = buf;
    }

    fn client_drive(&mut self, ctx: &mut Ctx<'_, '_>, client: u32) {
        let now = ctx.now();
        let counted = ctx.counted();
        let mut buf = std::mem::take(&mut self.buf);
        let mut touched = std::mem::take(&mut self.touched);
        loop {
            let mut progressed = false;
            loop {
                let cn = &mut self.clients[client as usize];
                buf.clear();
                let Some(t) = cn.client.poll_transmit(now, &mut buf) else {
                    break;
                };
                let fc = &mut self.flow_counters[cn.flow as usize];
                fc.sent_by_type[t.kind.index()] += 1;
                fc.bytes_sent_by_type[t.kind.index()] += t.len as u64;
                if let Some(sock) = cn.sock {
                    let v5 = cn.client.config().version == crate::proto::mqtt::MqttVersion::V5;
                    Self::write(ctx, sock, &buf[..t.len], t.kind, v5);
                    touched.push(sock);
                }
            }
            loop {
                let cn = &mut self.clients[client as usize];
                let Some(ev) = cn.client.poll_event() else {
                    break;
                };
                progressed = true;
                let (node, flow) = (cn.node as usize, cn.flow as usize);
                match ev {
                    ClientEvent::OpenTransport => {
                        if !(ctx.node_up(node) && cn.online) {
                            cn.client.handle_input(now, StreamInput::Closed);
                            continue;
                        }
                        let (broker, port) =
                            (cn.broker as usize, ctx.scenario().protocols.mqtt.port);
                        let opts = broker_opts(ctx.scenario());
                        let sock = ctx.tcp_connect(node, (broker, port), flow as u32, client, opts);
                        let cn = &mut self.clients[client as usize];
                        match sock {
                            Some(sock) => {
                                cn.sock = Some(sock);
                                let at = now + ctx.scenario().protocols.mqtt.connect_timeout;
                                ctx.schedule(at, KEY_CONNECT_TIMEOUT | client, sock.slot());
                            }
                            None => cn.client.handle_input(now, StreamInput::Closed),
                        }
                    }
                    ClientEvent::CloseTransport => {
                        // the client already counts the connection as gone
                        if let Some(sock) = cn.sock.take() {
                            ctx.tcp_close(sock);
                            touched.push(sock);
                        }
                    }
                    ClientEvent::Connected { session_present } => {
                        cn.connects += 1;
                        let again = cn.connects > 1;
                        if !session_present {
                            cn.subscribed = false;
                            ctx.session_start(node as u32);
                        }
                        if !cn.subs().is_empty() && !cn.subscribed {
                            let subs = cn.subs().to_vec();
                            let _ = cn.client.subscribe(now, subs);
                        }
                        self.flow_counters[flow].connects += 1;
                        if again && counted && !self.clients[client as usize].per_message {
                            self.columns[flow].reconnects += 1;
                        }
                    }
                    ClientEvent::Message { payload, .. }
                    | ClientEvent::Message5 { payload, .. } => ctx.deliver(node as u32, &payload),
                    ClientEvent::ConnectionLost { .. } => {
                        if let Some(sock) = cn.sock.take() {
                            ctx.tcp_abort(sock);
                            touched.push(sock);
                        }
                        self.flow_counters[flow].connection_losses += 1;
                        if counted {
                            self.columns[flow].connection_losses += 1;
                        }
                    }
                    ClientEvent::Subscribed { .. } | ClientEvent::Subscribed5 { .. } => {
                        cn.subscribed = true
                    }
                    ClientEvent::ConnectRefused(_)
                    | ClientEvent::ConnectRefused5 { .. }
                    | ClientEvent::PublishFailed { .. }
                    | ClientEvent::PublishDropped { .. }
                    | ClientEvent::Unsubscribed5 { .. }
                    | ClientEvent::PublishAcked { .. }
                    | ClientEvent::Unsubscribed { .. }
                    | ClientEvent::Disconnected => {}
                }
            }
            let cn = &mut self.clients[client as usize];
            if cn.per_message && cn.client.is_connected() && cn.client.is_idle() {
                cn.client.disconnect();
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.drive_touched(ctx, touched, buf);
        let cn = &mut self.clients[client as usize];
        if let Some(d) = cn.client.poll_timeout() {
            if let Some(gen) = cn.wake.arm(d) {
                ctx.schedule(d, KEY_CLIENT_TIMER | client, gen);
            }
        }
    }

    fn broker_drive(&mut self, ctx: &mut Ctx<'_, '_>, node: u32) {
        let now = ctx.now();
        let counted = ctx.counted();
        let mut buf = std::mem::take(&mut self.buf);
        let mut touched = std::mem::take(&mut self.touched);
        let mut copies = 0u32;
        while let Some(t) = {
            buf.clear();
            self.brokers
                .get_mut(&node)
                .and_then(|b| b.broker.poll_transmit(now, &mut buf))
        } {
            let sock = SockId(t.conn.0);
            let v5 = self
                .brokers
                .get(&node)
                .is_some_and(|b| b.broker.speaks_v5(t.conn));
            if ctx.tcp_state(sock).is_some() {
                if t.kind == PacketType::Publish {
                    copies += 1;
                    if let Some(m) = ctx.monitors() {
                        let p = &buf[..t.len];
                        let flow = publish_payload_offset(p, v5)
                            .and_then(|o| crate::app::workload::parse_payload(&p[o..]))
                            .map(|(f, _)| f)
                            .filter(|&f| (f as usize) < self.columns.len());
                        m.mqtt_broker_sent(now, node, sock.0, p, flow);
                    }
                }
                if t.kind == PacketType::PubAck {
                    if let Some(m) = ctx.monitors() {
                        let (by_id, clients) = (&self.by_id, &self.clients);
                        m.mqtt_broker_acked(now, node, sock.0, &buf[..t.len], |id| {
                            by_id.get(clients, id).map(|c| clients[c as usize].node)
                        });
                    }
                }
                Self::write(ctx, sock, &buf[..t.len], t.kind, v5);
                touched.push(sock);
            }
        }
        // the broker's per-copy time (before the sockets send: the copies
        // leave when the work is done)
        ctx.charge(node as usize, 0, copies);
        while let Some(ev) = self
            .brokers
            .get_mut(&node)
            .and_then(|b| b.broker.poll_event())
        {
            if let Some(m) = ctx.monitors() {
                match &ev {
                    BrokerEvent::ClientDisconnected {
                        conn, client_id, ..
                    } => m.mqtt_session_ended(now, node, conn.0, client_id),
                    BrokerEvent::ClientConnected {
                        conn, client_id, ..
                    } => m.mqtt_client_connected(node, conn.0, client_id),
                    BrokerEvent::Dropped { client_id, .. } => m.mqtt_dropped(now, node, client_id),
                    BrokerEvent::WillPublished { client_id, topic } => {
                        let flow = self
                            .by_id
                            .get(&self.clients, client_id)
                            .map(|c| self.clients[c as usize].flow);
                        m.mqtt_will_published(now, node, client_id, topic.as_str(), flow);
                    }
                    _ => {}
                }
            }
            match ev {
                BrokerEvent::Close(conn) => {
                    let sock = SockId(conn.0);
                    if ctx.tcp_state(sock).is_some() {
                        ctx.tcp_close(sock);
                        touched.push(sock);
                    }
                }
                BrokerEvent::WillPublished { client_id, .. } => {
                    if let Some(c) = self.by_id.get(&self.clients, &client_id) {
                        let cn = &self.clients[c as usize];
                        let (flow, crashed_at) = (cn.flow as usize, cn.crashed_at());
                        if counted {
                            let col = &mut self.columns[flow];
                            col.wills += 1;
                            if let Some(t) = crashed_at {
                                col.will_delay_ns.push(now.saturating_since(t).as_nanos());
                            }
                        }
                    }
                }
                BrokerEvent::Dropped { client_id, .. } => {
                    if let Some(c) = self.by_id.get(&self.clients, &client_id) {
                        let flow = self.clients[c as usize].flow as usize;
                        if counted {
                            self.columns[flow].dropped += 1;
                        }
                    }
                }
                BrokerEvent::Denied { client_id, .. } => {
                    if let Some(c) = self.by_id.get(&self.clients, &client_id) {
                        let flow = self.clients[c as usize].flow as usize;
                        if counted {
                            self.columns[flow].denied += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(m) = ctx.monitors() {
            let (by_id, clients) = (&self.by_id, &self.clients);
            m.mqtt_wills_settled(now, node, |id| {
                by_id.get(clients, id).map(|c| clients[c as usize].flow)
            });
        }
        self.drive_touched(ctx, touched, buf);
        if let Some(b) = self.brokers.get_mut(&node) {
            if let Some(d) = b.broker.poll_timeout() {
                if let Some(gen) = b.wake.arm(d) {
                    ctx.schedule(d, KEY_BROKER_TIMER | node, gen);
                }
            }
        }
    }

    fn clients_on(&self, node: usize) -> Vec<u32> {
        let lo = (node as u32, 0);
        let hi = (node as u32, u32::MAX);
        self.by_node_flow.range(lo..=hi).map(|(_, &c)| c).collect()
    }

    /// Start a client afresh: a crash loses everything it held.
    fn reset_client(&mut self, now: SimTime, seed: u64, client: u32) {
        let cn = &mut self.clients[client as usize];
        cn.restarts += 1;
        cn.client = cn.client.restarted(cn.client_rng(seed));
        cn.sock = None;
        cn.wake.reset();
        cn.rare().crashed_at = Some(now);
    }

    fn on_connect_timeout(&mut self, ctx: &mut Ctx<'_, '_>, client: u32, slot: u32) {
        let cn = &mut self.clients[client as usize];
        let Some(sock) = cn.sock.filter(|s| s.slot() == slot) else {
            return;
        };
        if ctx.tcp_state(sock) != Some(StreamState::Connecting) {
            return;
        }
        cn.sock = None;
        ctx.tcp_abort(sock);
        ctx.tcp_drive(sock);
        self.clients[client as usize]
            .client
            .handle_input(ctx.now(), StreamInput::Closed);
        self.pending_clients.push(client);
        ctx.mark_pending();
    }
}

impl ClientNode {
    /// The client's own stream (reconnect jitter); a restarted client draws
    /// from a new one.
    fn client_rng(&self, seed: u64) -> SimRng {
        client_rng(seed, self.client.client_id(), self.restarts)
    }
}

/// The reconnect-jitter stream of client `id` after `restarts` restarts.
fn client_rng(seed: u64, id: &str, restarts: u32) -> SimRng {
    SimRng::stream(seed, &format!("mqtt/client/{id}/{restarts}"))
}

/// Whether flow `f` has MQTT clients or needs a broker: MQTT flows, and
/// MQTT-SN flows whose gateways reach a broker or whose receivers subscribe
/// with MQTT.
fn uses_mqtt(f: &FlowSpec) -> bool {
    f.protocol == Protocol::Mqtt || (f.protocol == Protocol::Mqttsn && f.broker.is_some())
}

/// The publishers of `f` that are MQTT clients.
fn mqtt_publishers(f: &FlowSpec) -> &[usize] {
    if f.protocol == Protocol::Mqtt {
        &f.publishers
    } else {
        &[]
    }
}

/// The receivers of `f` that are MQTT clients.
fn mqtt_receivers(f: &FlowSpec) -> &[usize] {
    if f.subscribe_with == Protocol::Mqtt {
        &f.receivers
    } else {
        &[]
    }
}

impl Plugin for Mqtt {
    /// Build brokers and clients for the MQTT flows (no traffic yet).
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let m = &sc.protocols.mqtt;
        self.flow_counters = vec![MqttFlowCounters::default(); sc.flows.len()];
        self.columns = vec![MqttColumns::default(); sc.flows.len()];
        self.topics = vec![None; ctx.publishers()];
        let mut flows_of_node: BTreeMap<u32, u32> = BTreeMap::new();
        for f in sc.flows.iter().filter(|f| uses_mqtt(f)) {
            let mut nodes: Vec<usize> = mqtt_publishers(f)
                .iter()
                .chain(mqtt_receivers(f))
                .copied()
                .collect();
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
            if !uses_mqtt(f) {
                continue;
            }
            let Some(broker) = f.broker else { continue };
            let broker = broker as u32;
            if let std::collections::btree_map::Entry::Vacant(e) = self.brokers.entry(broker) {
                let cfg = broker_config(m);
                if let Some(mon) = ctx.monitors() {
                    mon.mqtt_broker_acl(broker, &cfg.acl);
                }
                e.insert(BrokerNode {
                    broker: Broker::new(cfg, SimTime::ZERO),
                    wake: Wakeup::default(),
                });
                ctx.tcp_listen(
                    broker as usize,
                    m.port,
                    BROKER_SOCK | broker,
                    broker_opts(ctx.scenario()),
                );
                self.pending_brokers.push(broker);
                ctx.mark_pending();
            }
            let qos = qos_of(f.reliability);
            for (k, &p) in mqtt_publishers(f).iter().enumerate() {
                self.client_for(
                    ctx,
                    (p as u32, fi as u32),
                    broker,
                    flows_of_node[&(p as u32)],
                );
                let pi = first_pub[fi] + k;
                self.topics[pi] = TopicName::from_shared(ctx.publisher(pi).topic.clone()).ok();
            }
            let filter = TopicFilter::new(&template_filter(&f.topic)).ok();
            for (k, &r) in f.receivers.iter().enumerate() {
                if f.subscribe_with != Protocol::Mqtt {
                    continue; // MQTT-SN clients through a gateway (apps/mqttsn.rs)
                }
                let c = self.client_for(
                    ctx,
                    (r as u32, fi as u32),
                    broker,
                    flows_of_node[&(r as u32)],
                );
                let flt = match f.pattern {
                    Pattern::PointToPoint => f.publishers.get(k).and_then(|_| {
                        TopicFilter::new(&ctx.publisher(first_pub[fi] + k).topic).ok()
                    }),
                    Pattern::Broadcast | Pattern::FanIn => filter.clone(),
                };
                if let Some(flt) = flt {
                    let subs = &mut self.clients[c as usize].rare().subs;
                    if !subs.iter().any(|(x, _)| *x == flt) {
                        subs.push((flt, qos));
                    }
                }
            }
        }
        for c in &mut self.clients {
            // a client that only publishes may connect per message
            c.per_message = m.session == MqttSession::PerMessage && c.subs().is_empty();
            if c.per_message {
                let shared = self
                    .shared_per_message
                    .get_or_insert_with(|| {
                        let mut config = c.client.config().clone();
                        config.clean_session = true;
                        config.reconnect = None;
                        std::sync::Arc::new(config)
                    })
                    .clone();
                c.client = Client::with_shared(
                    shared,
                    c.client.client_id().into(),
                    c.client.will().cloned(),
                    c.client_rng(sc.seed),
                );
            }
        }
        self.by_id = ById::build(&self.clients);
    }

    /// Schedule every long-lived client's first connection, and the
    /// brokers' start (their first poll).
    fn prime(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let spread = sc.protocols.mqtt.connect_spread;
        for c in 0..self.clients.len() {
            let cn = &self.clients[c];
            if cn.per_message {
                continue;
            }
            let mut rng =
                SimRng::stream(sc.seed, &format!("mqtt/connect/{}", cn.client.client_id()));
            let at = SimTime::ZERO + SimDuration(rng.below(spread.as_nanos().max(1)));
            ctx.schedule(at, KEY_CLIENT_START | c as u32, 0);
        }
        if !self.brokers.is_empty() {
            ctx.schedule(SimTime::ZERO, KEY_BROKERS_START, 0);
        }
    }

    /// Whether publisher `p`'s MQTT client can take a message (a crashed
    /// device produces nothing).
    fn publisher_alive(&self, _p: usize, node: u32, flow: u32) -> bool {
        self.client_of(node, flow)
            .is_none_or(|c| !self.clients[c as usize].crashed)
    }

    /// Publish one message of an MQTT flow.
    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>) {
        let Some(c) = self.client_of(msg.node, msg.flow as u32) else {
            return;
        };
        let Some(topic) = self.topics[msg.publisher].clone() else {
            return;
        };
        let now = ctx.now();
        let flow = &ctx.scenario().flows[msg.flow];
        let qos = qos_of(flow.reliability);
        let retain = flow.retain;
        let cn = &mut self.clients[c as usize];
        let payload: std::sync::Arc<[u8]> = msg.payload.into();
        if cn.client.publish(now, topic, payload, qos, retain).is_err() {
            self.columns[msg.flow].dropped += 1;
        }
        let cn = &mut self.clients[c as usize];
        if cn.per_message && cn.online {
            cn.client.connect();
        }
        self.pending_clients.push(c);
        ctx.mark_pending();
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, '_>, key: u32, arg: u32) {
        let now = ctx.now();
        let i = key & !KEY_KIND;
        match key & KEY_KIND {
            KEY_CLIENT_TIMER => {
                let cn = &mut self.clients[i as usize];
                if !cn.wake.fire(arg, now) {
                    return;
                }
                if cn.client.poll_timeout().is_some_and(|d| d <= now) {
                    cn.client.handle_timeout(now);
                }
                self.pending_clients.push(i);
            }
            KEY_BROKER_TIMER => {
                let Some(b) = self.brokers.get_mut(&i) else {
                    return;
                };
                if !b.wake.fire(arg, now) {
                    return;
                }
                if b.broker.poll_timeout().is_some_and(|d| d <= now) {
                    b.broker.handle_timeout(now);
                }
                self.pending_brokers.push(i);
            }
            KEY_CLIENT_START => {
                let cn = &mut self.clients[i as usize];
                if cn.online && ctx.node_up(cn.node as usize) {
                    cn.client.connect();
                    self.pending_clients.push(i);
                }
            }
            KEY_CONNECT_TIMEOUT => return self.on_connect_timeout(ctx, i, arg),
            // the brokers were made pending at setup: their first poll
            _ => {}
        }
        ctx.mark_pending();
    }

    /// Poll every pending client and broker until nothing is pending.
    fn flush(&mut self, ctx: &mut Ctx<'_, '_>) {
        while !self.pending_clients.is_empty() || !self.pending_brokers.is_empty() {
            for c in take_sorted(&mut self.pending_clients) {
                self.client_drive(ctx, c);
            }
            for b in take_sorted(&mut self.pending_brokers) {
                self.broker_drive(ctx, b);
            }
        }
    }

    /// A node crashed (its sockets are already gone): brokers crash, clients
    /// lose their state.
    fn node_crash(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let now = ctx.now();
        if let Some(b) = self.brokers.get_mut(&(node as u32)) {
            b.broker.crash();
            b.wake.reset();
            let durable = ctx.scenario().protocols.mqtt.persistence
                == crate::proto::mqtt::Persistence::Durable;
            if let Some(m) = ctx.monitors() {
                m.mqtt_broker_crash(now, node as u32, durable);
            }
        }
        for c in self.clients_on(node) {
            self.reset_client(now, ctx.seed(), c);
            self.clients[c as usize].crashed = true;
        }
    }

    fn node_restart(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let now = ctx.now();
        if let Some(b) = self.brokers.get_mut(&(node as u32)) {
            b.broker.restart(now);
            self.pending_brokers.push(node as u32);
            ctx.mark_pending();
        }
        for c in self.clients_on(node) {
            let cn = &mut self.clients[c as usize];
            cn.crashed = false;
            if cn.online && !cn.per_message {
                cn.client.connect();
            }
            self.pending_clients.push(c);
            ctx.mark_pending();
        }
    }

    fn client_action(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, action: ClientAction) {
        let now = ctx.now();
        for c in self.clients_on(node) {
            match action {
                ClientAction::Disconnect => {
                    let cn = &mut self.clients[c as usize];
                    cn.online = false;
                    cn.client.disconnect();
                }
                ClientAction::Crash => {
                    if let Some(sock) = self.clients[c as usize].sock {
                        ctx.tcp_freeze(sock);
                        self.clients[c as usize].rare().frozen.push(sock);
                    }
                    self.reset_client(now, ctx.seed(), c);
                    let cn = &mut self.clients[c as usize];
                    cn.online = false;
                    cn.crashed = true;
                }
                // MQTT clients do not sleep
                ClientAction::Sleep { .. } | ClientAction::Wake => continue,
                ClientAction::Connect => {
                    let frozen = self.clients[c as usize]
                        .rare
                        .as_mut()
                        .map(|r| std::mem::take(&mut r.frozen));
                    for sock in frozen.into_iter().flatten() {
                        ctx.tcp_remove(sock);
                    }
                    let cn = &mut self.clients[c as usize];
                    cn.online = true;
                    cn.crashed = false;
                    if !cn.per_message && ctx.node_up(node) {
                        cn.client.connect();
                    }
                }
            }
            self.pending_clients.push(c);
            ctx.mark_pending();
        }
    }

    fn stream_app(&mut self) -> Option<&mut dyn StreamApp> {
        Some(self)
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> PluginOutput {
        let sc = end.scenario;
        let columns = self
            .columns
            .iter()
            .map(|c| {
                vec![
                    Value::Int(c.connection_losses),
                    Value::Int(c.reconnects),
                    Value::Int(c.wills),
                    if c.will_delay_ns.is_empty() {
                        Value::Empty
                    } else {
                        let sum: u128 = c.will_delay_ns.iter().map(|&x| x as u128).sum();
                        Value::Float(sum as f64 / c.will_delay_ns.len() as f64 / 1e6)
                    },
                    Value::Int(c.dropped),
                    Value::Int(c.denied),
                ]
            })
            .collect();
        let rows = self.rows(sc);
        let tables = if rows.is_empty() {
            Vec::new()
        } else {
            let mut csv = Vec::new();
            let _ = write_mqtt_rows(&mut csv, end.run_id, &rows);
            vec![Table {
                file: "mqtt.csv",
                csv: String::from_utf8(csv).unwrap_or_default(),
            }]
        };
        PluginOutput {
            columns,
            tables,
            counters: Vec::new(),
        }
    }
}

impl StreamApp for Mqtt {
    fn on_accept(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, listen_tag: u32) -> u32 {
        let node = listen_tag & !BROKER_SOCK;
        if let Some(b) = self.brokers.get_mut(&node) {
            b.broker
                .handle_input(ctx.now(), BrokerInput::accepted(ConnId(sock.0)));
            self.pending_brokers.push(node);
            ctx.mark_pending();
        }
        listen_tag
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, ev: StreamEvent<'_>) {
        let now = ctx.now();
        if tag & BROKER_SOCK != 0 {
            let node = tag & !BROKER_SOCK;
            let Some(b) = self.brokers.get_mut(&node) else {
                return;
            };
            match ev {
                StreamEvent::Data(d) => {
                    if let Some(m) = ctx.monitors() {
                        m.mqtt_received(now, sock.0, d, Some(node));
                    }
                    // the broker's service time: per PUBLISH received
                    let before = b.broker.stats().publishes_received;
                    b.broker
                        .handle_input(now, BrokerInput::bytes(ConnId(sock.0), d));
                    let n = b.broker.stats().publishes_received - before;
                    ctx.charge(node as usize, n as u32, 0);
                }
                StreamEvent::PeerClosed | StreamEvent::Ended(_) => {
                    ctx.tcp_detach(sock);
                    b.broker
                        .handle_input(now, BrokerInput::closed(ConnId(sock.0)));
                }
                StreamEvent::Connected | StreamEvent::Released => return,
            }
            self.pending_brokers.push(node);
        } else {
            let c = tag;
            let Some(cn) = self.clients.get_mut(c as usize) else {
                return;
            };
            match ev {
                StreamEvent::Connected => cn.client.handle_input(now, StreamInput::Connected),
                StreamEvent::Data(d) => {
                    if let Some(m) = ctx.monitors() {
                        m.mqtt_received(now, sock.0, d, None);
                    }
                    cn.client.handle_input(now, StreamInput::Bytes(d))
                }
                StreamEvent::PeerClosed | StreamEvent::Ended(_) => {
                    // the transport under the client ended or is ending
                    ctx.tcp_detach(sock);
                    if cn.sock != Some(sock) {
                        return;
                    }
                    cn.sock = None;
                    cn.client.handle_input(now, StreamInput::Closed);
                }
                StreamEvent::Released => return,
            }
            self.pending_clients.push(c);
        }
        ctx.mark_pending();
    }
}

/// One row of `mqtt.csv` (long format: one observation per row; also the
/// rows of `mqttsn.csv` and `coap.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttRow {
    /// `broker` (name = the broker's node) or `flow` (name = the flow's
    /// clients, summed); `gateway`/`forwarder` in mqttsn.csv, `proxy` in
    /// coap.csv.
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

impl Mqtt {
    /// The rows of `mqtt.csv` at the end of the run.
    fn rows(&self, sc: &Scenario) -> Vec<MqttRow> {
        let mut rows = Vec::new();
        let mut push = |scope, name: &str, metric: String, value: String| {
            rows.push(MqttRow {
                scope,
                name: name.to_string(),
                metric,
                value,
            })
        };
        for (&node, b) in &self.brokers {
            let name = &sc.nodes[node as usize].name;
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
            for c in self.by_id.iter() {
                let cn = &self.clients[c as usize];
                if cn.broker != node {
                    continue;
                }
                let id = cn.client.client_id();
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
            if sc.protocols.mqtt.version == crate::proto::mqtt::MqttVersion::V5 {
                // MQTT 5.0 scenarios only, so 3.1.1 outputs keep their rows
                for (metric, v) in [
                    ("sessions_expired", st.sessions_expired),
                    ("messages_expired", st.messages_expired),
                    ("dropped_too_large", st.dropped_too_large),
                    ("disconnects_sent", st.disconnects_sent),
                ] {
                    push("broker", name, metric.to_string(), v.to_string());
                }
            }
            if !b.broker.config().acl.is_empty() {
                for (metric, v) in [
                    ("denied_publishes", st.denied_publishes),
                    ("denied_subscriptions", st.denied_subscriptions),
                ] {
                    push("broker", name, metric.to_string(), v.to_string());
                }
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
        for (fi, f) in sc.flows.iter().enumerate() {
            if !self.clients.iter().any(|c| c.flow == fi as u32) {
                continue;
            }
            let fc = &self.flow_counters[fi];
            let (mut rtx, mut dups) = (0, 0);
            for c in self.clients.iter().filter(|c| c.flow == fi as u32) {
                rtx += c.client.stats().retransmissions;
                dups += c.client.stats().duplicates_suppressed;
            }
            for (metric, v) in [
                (
                    "clients",
                    self.clients.iter().filter(|c| c.flow == fi as u32).count() as u64,
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
    out: &mut impl std::io::Write,
    run_id: u64,
    rows: &[MqttRow],
) -> std::io::Result<()> {
    use crate::metrics::record::csv_field;
    writeln!(out, "{MQTT_HEADER}")?;
    for r in rows {
        writeln!(
            out,
            "{run_id},{},{},{},{}",
            r.scope,
            csv_field(&r.name),
            csv_field(&r.metric),
            csv_field(&r.value)
        )?;
    }
    Ok(())
}

/// The broker a scenario's `[protocols.mqtt]` describes (also what
/// `qossim broker --scenario` serves): the table's broker fields over
/// [`BrokerConfig::default`]; no delivery events.
pub fn broker_config(m: &MqttParams) -> BrokerConfig {
    BrokerConfig {
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
        acl: m.acl.clone(),
        acl_deny_publish: m.acl_deny_publish,
        mutant_forget_qos2: m.mutant_forget_qos2,
        mutant_skip_qos1: m.mutant_skip_qos1,
        v5: crate::proto::mqtt::BrokerV5Config {
            topic_alias_maximum: m.broker_topic_alias_max,
            receive_maximum: m.broker_receive_maximum,
            ..Default::default()
        },
        ..BrokerConfig::default()
    }
}

/// The socket options of a connection to or from an MQTT broker: the
/// scenario's transport (`[protocols.mqtt] transport`) picks the security
/// overlay.
pub(super) fn broker_opts(sc: &Scenario) -> SockOpts {
    use crate::scenario::model::MqttTransport;
    use crate::world::host::Security;
    SockOpts {
        security: match sc.protocols.mqtt.transport {
            MqttTransport::Tcp => Security::None,
            MqttTransport::Tls => Security::Tls,
            MqttTransport::WebSocket => Security::WebSocket,
            MqttTransport::Wss => Security::Wss,
        },
        ..SockOpts::default()
    }
}
