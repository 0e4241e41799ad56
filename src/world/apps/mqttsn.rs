//! MQTT-SN 1.2 flows: the clients, gateways and forwarders of
//! `proto::mqttsn` on the host stack's UDP, the gateways' MQTT side over its
//! TCP to the broker (docs/mqttsn.md, docs/protocols.md).
//!
//! Mapping:
//! - every node that publishes in an `mqttsn` flow, or receives in a flow
//!   whose receivers subscribe with MQTT-SN (`subscribe_with = "mqttsn"`,
//!   the default for `mqttsn` flows), runs one MQTT-SN client (client id
//!   = the node name, or `qossim-<index>` when the name is longer than the
//!   23 characters MQTT-SN 1.2 §5.3.1 allows) on `[protocols.mqttsn] port`,
//!   for all its flows;
//! - every node with `role = "gateway"` runs a gateway (GwId 1, 2, … in
//!   node order), bound to the same port; unless the gateways are
//!   `integrated` (the broker themselves), they reach the flows' broker
//!   over TCP on `[protocols.mqtt] port` — one connection per client
//!   (`transparent`) or one for all (`aggregating`);
//! - every node with `role = "forwarder"` runs a forwarder (§5.5) that
//!   relays to the gateway fewest hops away.
//!
//! Discovery: with `discovery = "advertise"` the gateways broadcast
//! ADVERTISE from the start and clients search (SEARCHGW) when they know
//! none; broadcasts go to 255.255.255.255 and reach link neighbours only
//! (further hops need forwarders). With `discovery = "static"` each client
//! is configured with the gateway or forwarder fewest hops away (a
//! gateway wins a tie, then the lower node index) and goes back to it
//! after losing it. A client that only publishes at QoS −1 never connects
//! (§6.8) and is always configured that way.
//!
//! A message is a PUBLISH of the payload to the publisher's rendered topic
//! at the flow's QoS (`qos_minus1` → −1, `best_effort`/`qos0` → 0,
//! `confirmed`/`qos1` → 1, `exactly_once`/`qos2` → 2), with the
//! `topic_id_type` the section says. Receivers subscribe at that QoS (−1 →
//! 0) to their publisher's topic (`point_to_point`) or the template with
//! placeholder levels turned into `+` (`broadcast`, `fan_in`), by
//! predefined id when the exact topic has one, by short name when it is
//! two characters and the flows use short names, else by name.
//!
//! Clients connect at a uniform time in [0, `connect_spread`); a client of
//! a `[[protocols.mqttsn.sleep]]` schedule goes to sleep (§6.14) once it
//! has connected and subscribed, and cycles asleep/awake from then on: its
//! publishes wait for the next wake-up and the gateway buffers messages
//! for it meanwhile.
//!
//! Attribution: a PUBLISH (either side, either hop) counts for the flow
//! whose message it carries; a client's other messages for its first flow;
//! a gateway's broadcasts and its aggregated connection's other packets for
//! the first flow that uses MQTT-SN.

use super::mqtt::{take_sorted, write_mqtt_rows, write_packet, MqttRow};
use super::{ClientAction, Ctx, Message, Plugin, PluginOutput, RunEnd, Table};
use crate::metrics::summary::Value;
use crate::net::addr::SockAddr;
use crate::net::packet::PacketMeta;
use crate::proto::mqtt::topic::template_filter;
use crate::proto::mqttsn::{
    self, Client, ClientConfig, ClientError, ClientEvent, ClientState, Fate, Forwarder,
    ForwarderConfig, Gateway, GatewayConfig, GatewayEvent, GatewayInput, GatewayMode,
    GatewayTransmit, MsgType, PublishTopicType, Qos, TopicIdType, Upstream, Will,
};
use crate::proto::{Datagram, SansIo, StreamInput};
use crate::scenario::model::{
    FlowSpec, MqttsnDiscovery, MqttsnGatewayMode, MqttsnParams, MqttsnTopicType, Pattern, Protocol,
    Reliability, Role, Scenario,
};
use crate::sim::{SimDuration, SimRng, SimTime, Wakeup};
use crate::world::host::{DatagramApp, Received, SockId, StreamApp, StreamEvent, StreamState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub(super) use crate::scenario::columns::MQTTSN_COLUMNS;

/// Timer keys: the kind in the top bits, the client, gateway or upstream
/// socket below.
const KEY_CLIENT_TIMER: u32 = 0;
const KEY_GW_TIMER: u32 = 1 << 28;
const KEY_CLIENT_START: u32 = 2 << 28;
const KEY_GWS_START: u32 = 3 << 28;
const KEY_UP_TIMEOUT: u32 = 4 << 28;
const KEY_KIND: u32 = 0xF << 28;

/// What runs on a node (`at_node`): the kind in the top bits, its index.
const AT_NONE: u32 = u32::MAX;
const AT_CLIENT: u32 = 0;
const AT_GATEWAY: u32 = 1 << 30;
const AT_FORWARDER: u32 = 2 << 30;
const AT_KIND: u32 = 3 << 30;

/// MQTT-SN QoS of a flow's reliability class.
pub(crate) fn sn_qos(reliability: Reliability) -> Qos {
    match reliability {
        Reliability::QosMinus1 => Qos::MinusOne,
        Reliability::Confirmed | Reliability::Qos1 | Reliability::Con => Qos::One,
        Reliability::ExactlyOnce | Reliability::Qos2 => Qos::Two,
        Reliability::BestEffort | Reliability::Qos0 | Reliability::Non => Qos::Zero,
    }
}

/// Whether flow `f` has MQTT-SN clients.
pub(crate) fn uses_mqttsn(f: &FlowSpec) -> bool {
    f.protocol == Protocol::Mqttsn || f.subscribe_with == Protocol::Mqttsn
}

/// What only some clients have, boxed: a fleet's sensors publish in one
/// flow and subscribe to nothing, and these two collections were 48 of
/// each client's bytes (mqttsn-10k: 10,000 clients). Made on first use.
#[derive(Debug, Default)]
struct SnExtra {
    /// Subscriptions: filter, how it is named, QoS.
    subs: Vec<(Arc<str>, TopicIdType, Qos)>,
    /// Publishes outstanding by handle → flow (clients in several flows).
    handles: BTreeMap<u64, u32>,
}

impl SnClient {
    fn subs(&self) -> &[(Arc<str>, TopicIdType, Qos)] {
        self.extra.as_deref().map_or(&[], |e| &e.subs)
    }
    fn extra(&mut self) -> &mut SnExtra {
        self.extra.get_or_insert_with(Default::default)
    }
    /// The flow of publish `handle`, forgotten (clients in several flows).
    fn take_handle(&mut self, handle: u64) -> Option<u32> {
        self.extra.as_deref_mut()?.handles.remove(&handle)
    }
}

/// One MQTT-SN client (one node, all its flows).
#[derive(Debug)]
struct SnClient {
    client: Client,
    node: u32,
    /// Its flows, file order; the first takes its control traffic.
    flows: Box<[u32]>,
    wake: Wakeup,
    /// Subscriptions and handles of clients in several flows: most
    /// sensors have neither (see [`SnExtra`]).
    extra: Option<Box<SnExtra>>,
    /// Sleep duration (s) while a schedule or `client_sleep` says so.
    sleep: Option<u16>,
    /// It keeps a connection (false: it only publishes at QoS −1).
    connects: bool,
    /// The gateway (GwId, address) it is configured with, if any.
    configured: Option<(u8, SockAddr)>,
    /// False after `client_disconnect` / `client_crash` until
    /// `client_connect`.
    online: bool,
    crashed: bool,
    restarts: u32,
    /// Flow of the QoS 2 publish whose PUBREL it may send.
    publish_flow: u32,
    /// Its radio is off because it sleeps (§6.14).
    dozing: bool,
}

/// A gateway on a node.
#[derive(Debug)]
struct GwNode {
    gateway: Gateway,
    config: GatewayConfig,
    node: u32,
    wake: Wakeup,
    /// Flows whose clients connected to it (or publish to it at QoS −1).
    served: BTreeSet<u32>,
    /// Aggregated connections opened (each serves every flow it serves).
    shared_opened: u64,
    restarts: u32,
}

/// A gateway's upstream MQTT connection.
#[derive(Debug, Clone, Copy)]
struct UpSock {
    gw: u32,
    conn: Upstream,
    sock: Option<SockId>,
}

/// Per-flow values of the MQTT-SN columns.
#[derive(Debug, Default, Clone)]
struct SnColumns {
    registration_bytes: u64,
    buffered_asleep: u64,
    gateway_drops: u64,
    client_drops: u64,
    /// Transparent connections opened for the flow's clients.
    transparent_opened: u64,
    /// MQTT-SN messages (and bytes) the flow's clients sent, by type,
    /// charged to the flow as their bytes on the wire are.
    sent: mqttsn::TypeStats,
}

/// Every MQTT-SN object of a run.
#[derive(Debug, Default)]
struct MqttSn {
    params: MqttsnParams,
    port: u16,
    /// MQTT-SN rides in 802.15.4 frames without IP (`transport = "raw"`).
    raw: bool,
    /// The broker the gateways reach (`None`: integrated).
    broker: Option<u32>,
    home_flow: u32,
    at_node: Vec<u32>,
    clients: Vec<SnClient>,
    /// The configuration all clients share.
    shared: Arc<ClientConfig>,
    gateways: Vec<GwNode>,
    forwarders: Vec<(u32, Forwarder)>,
    ups: Vec<Option<UpSock>>,
    free_ups: Vec<u32>,
    up_of: BTreeMap<(u32, u32), u32>,
    pending_clients: Vec<u32>,
    pending_gws: Vec<u32>,
    pending_fwds: Vec<u32>,
    buf: Vec<u8>,
    touched: Vec<SockId>,
    columns: Vec<SnColumns>,
    flow_qos: Vec<Qos>,
    flow_retain: Vec<bool>,
    /// (publishing node, receiving node, MsgId) → the flow of that PUBLISH,
    /// so its PUBACK, PUBREC, PUBREL and PUBCOMP are charged to its flow
    /// even between nodes that carry several flows (a collector subscribed
    /// to many). Kept only with several flows; looked up, never iterated.
    msg_flow: std::collections::HashMap<(u32, u32, u16), u32>,
}

pub(super) fn new(_: &Scenario) -> Box<dyn Plugin> {
    Box::<MqttSn>::default()
}

/// The MQTT-SN message a datagram carries (inside an encapsulation), and
/// its PUBLISH data if it is one; `None` if it does not decode.
fn inspect(datagram: &[u8]) -> Option<(mqttsn::Message<'_>, Option<&[u8]>)> {
    let mut m = mqttsn::decode(datagram).ok()?;
    if let mqttsn::Message::Encapsulated { inner, .. } = m {
        m = mqttsn::decode(inner).ok()?;
    }
    let data = match &m {
        mqttsn::Message::Publish { data, .. } => Some(*data),
        _ => None,
    };
    Some((m, data))
}

/// What the spec-oracle monitors read from one MQTT-SN datagram a client
/// or gateway at `node` sent to or received from `other`: a PUBLISH,
/// PUBACK or PUBCOMP (encapsulated ones unwrapped, then judged between the
/// gateway and the client they are for), or a CONNECT sent.
fn monitor_datagram(
    ctx: &mut Ctx<'_, '_>,
    node: u32,
    other: SockAddr,
    datagram: &[u8],
    sent: Option<u32>,
) {
    use mqttsn::Message as M;
    let Ok(mut m) = mqttsn::decode(datagram) else {
        return;
    };
    let mut peer = ctx.node_of(other);
    if let M::Encapsulated { node_id, inner, .. } = m {
        peer = mqttsn::sockaddr_from_bytes(node_id).and_then(|a| ctx.node_of(a));
        let Ok(i) = mqttsn::decode(inner) else {
            return;
        };
        m = i;
    }
    let Some(peer) = peer.map(|p| p as u32) else {
        return;
    };
    let now = ctx.now();
    let Some(mon) = ctx.monitors() else {
        return;
    };
    let qos = |q: Qos| match q {
        Qos::One => 1,
        Qos::Two => 2,
        _ => 0,
    };
    match (m, sent) {
        (
            M::Publish {
                dup,
                qos: q,
                msg_id,
                ..
            },
            Some(flow),
        ) => {
            let flow = (flow != crate::net::packet::NO_FLOW).then_some(flow);
            mon.mqttsn_publish_sent(now, node, peer, msg_id, qos(q), dup, flow);
        }
        (M::Connect { .. }, Some(_)) => mon.mqttsn_connect_sent(node),
        (M::PubAck { msg_id, .. }, None) => mon.mqttsn_ack_received(node, peer, msg_id, 1),
        (M::PubComp { msg_id }, None) => mon.mqttsn_ack_received(node, peer, msg_id, 2),
        _ => {}
    }
}

/// The flow whose message `payload` is, if it is one.
fn flow_of_payload(payload: &[u8], flows: usize) -> Option<u32> {
    crate::app::workload::parse_payload(payload)
        .map(|(f, _)| f)
        .filter(|&f| (f as usize) < flows)
}

fn seconds(d: SimDuration) -> u16 {
    (d.as_nanos() / 1_000_000_000).min(u64::from(u16::MAX)) as u16
}

/// The client id of node `node` named `name` (MQTT-SN 1.2 §5.3.1: 1–23
/// characters).
fn client_id(name: &str, node: u32) -> String {
    if (1..=23).contains(&name.len()) {
        name.to_string()
    } else {
        format!("qossim-{node}")
    }
}

/// A client's ClientId and will (the rest of its configuration is
/// [`shared_config`]).
fn client_identity(sc: &Scenario, node: u32) -> (String, Option<Will>) {
    let sn = &sc.protocols.mqttsn;
    let name = &sc.nodes[node as usize].name;
    let will = sn.will_topic.as_ref().map(|t| Will {
        topic: t.replace("{name}", name),
        message: sn.will_message.as_bytes().to_vec(),
        qos: match sn.will_qos {
            0 => Qos::Zero,
            1 => Qos::One,
            _ => Qos::Two,
        },
        retain: sn.will_retain,
    });
    (client_id(name, node), will)
}

/// The configuration every MQTT-SN client of the scenario shares (one
/// copy, not one per client), without id and will.
fn shared_config(sc: &Scenario) -> ClientConfig {
    let sn = &sc.protocols.mqttsn;
    ClientConfig {
        port: sn.port,
        t_adv: sn.t_adv,
        n_adv: sn.n_adv,
        t_searchgw: sn.t_searchgw,
        t_gwinfo: sn.t_gwinfo,
        t_wait: sn.t_wait,
        t_retry: sn.t_retry,
        n_retry: sn.n_retry,
        keep_alive: seconds(sn.keep_alive),
        clean_session: sn.clean_session,
        predefined: sn
            .predefined
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect(),
        publish_topic_type: match sn.topic_id_type {
            MqttsnTopicType::Normal => PublishTopicType::Normal,
            MqttsnTopicType::Predefined => PublishTopicType::Predefined,
            MqttsnTopicType::Short => PublishTopicType::Short,
        },
        max_queued: sn.max_queued as usize,
        radius: sn.radius,
        // counted per flow by the plug-in (SnColumns::sent): 0.9 KB less a client
        type_stats: false,
        ..ClientConfig::default()
    }
}

fn client_rng(seed: u64, id: &str, restarts: u32) -> SimRng {
    SimRng::stream(seed, &format!("mqttsn/client/{id}/{restarts}"))
}

fn gateway_config(sc: &Scenario, gw_id: u8, node: u32) -> GatewayConfig {
    let sn = &sc.protocols.mqttsn;
    let m = &sc.protocols.mqtt;
    // the MQTT clients' options, but always 3.1.1 upstream: none of the
    // 5.0 ones (version, session expiry, receive maximum, topic aliases)
    let plain = crate::proto::mqtt::ClientConfig::default();
    let upstream = crate::proto::mqtt::ClientConfig {
        client_id: client_id(&sc.nodes[node as usize].name, node),
        version: plain.version,
        session_expiry_interval: plain.session_expiry_interval,
        receive_maximum: plain.receive_maximum,
        topic_alias_maximum: plain.topic_alias_maximum,
        topic_aliases_out: plain.topic_aliases_out,
        ..super::mqtt::client_config(m)
    };
    GatewayConfig {
        gw_id,
        mode: match sn.gateway_mode {
            MqttsnGatewayMode::Transparent => GatewayMode::Transparent,
            MqttsnGatewayMode::Aggregating => GatewayMode::Aggregating,
            MqttsnGatewayMode::Integrated => GatewayMode::Integrated,
        },
        port: sn.port,
        t_adv: Some(sn.t_adv),
        radius: sn.radius,
        t_retry: sn.t_retry,
        n_retry: sn.n_retry,
        max_clients: sn.gateway_max_clients as usize,
        max_buffered: sn.gateway_buffer as usize,
        predefined: sn
            .predefined
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect(),
        upstream,
        ..GatewayConfig::default()
    }
}

fn gateway_rng(seed: u64, node: u32, restarts: u32) -> SimRng {
    SimRng::stream(seed, &format!("mqttsn/gateway/{node}/{restarts}"))
}

impl MqttSn {
    fn client_at(&self, node: usize) -> Option<u32> {
        let a = *self.at_node.get(node)?;
        (a != AT_NONE && a & AT_KIND == AT_CLIENT).then_some(a & !AT_KIND)
    }

    fn flows_len(&self) -> usize {
        self.columns.len()
    }

    /// The client at `addr`'s first flow, else the gateways' home flow.
    fn flow_of_addr(&self, ctx: &Ctx<'_, '_>, addr: SockAddr) -> u32 {
        ctx.node_of(addr)
            .and_then(|n| self.client_at(n))
            .map_or(self.home_flow, |c| self.clients[c as usize].flows[0])
    }

    /// Send one MQTT-SN datagram from `node`, attributed and labelled;
    /// `origin`: sent by the client or gateway that made it (not relayed by
    /// a forwarder), so it counts as registration or retransmission.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        node: u32,
        to: SockAddr,
        datagram: &[u8],
        retx: bool,
        control_flow: u32,
        origin: bool,
    ) -> u32 {
        let flows = self.flows_len();
        let peer = ctx.node_of(to).map(|n| n as u32).filter(|_| flows > 1);
        let (kind, flow, app, dup) = match inspect(datagram) {
            Some((m, data)) => {
                let ty = m.msg_type();
                let dup = matches!(m, mqttsn::Message::Publish { dup: true, .. });
                let mut flow = data.and_then(|d| flow_of_payload(d, flows));
                if let Some(peer) = peer {
                    use mqttsn::Message as M;
                    match m {
                        M::Publish { msg_id, .. } if msg_id != 0 => {
                            if let Some(f) = flow {
                                self.msg_flow.insert((node, peer, msg_id), f);
                            }
                        }
                        M::PubAck { msg_id, .. } | M::PubComp { msg_id } => {
                            flow = flow.or(self.msg_flow.remove(&(peer, node, msg_id)));
                        }
                        M::PubRec { msg_id } => {
                            flow = flow.or(self.msg_flow.get(&(peer, node, msg_id)).copied());
                        }
                        M::PubRel { msg_id } => {
                            flow = flow.or(self.msg_flow.get(&(node, peer, msg_id)).copied());
                        }
                        _ => {}
                    }
                }
                let flow = flow.unwrap_or(control_flow);
                (ty, flow, data.map_or(0, <[u8]>::len), dup)
            }
            None => (MsgType::Encapsulated, control_flow, 0, false),
        };
        let counted = ctx.counted();
        if origin && ctx.monitors().is_some() {
            monitor_datagram(ctx, node, to, datagram, Some(flow));
        }
        if origin {
            // registration happens at connection time: counted over the
            // whole run, warmup included
            if matches!(kind, MsgType::Register | MsgType::RegAck) {
                if let Some(c) = self.columns.get_mut(flow as usize) {
                    c.registration_bytes += datagram.len() as u64;
                }
            }
            if retx && counted {
                if let Some(s) = ctx.flow_stats(flow) {
                    s.retransmissions += 1;
                }
            }
        }
        let meta = PacketMeta {
            flow,
            kind: kind.label(),
            counted,
            created: ctx.now(),
            proto_bytes: (datagram.len() - app) as u16,
            app_bytes: app as u16,
            retx: retx || dup,
            l4_header: if self.raw { 0 } else { 8 },
            ..Default::default()
        };
        if self.raw {
            let _ = ctx.link_send_to(node as usize, to, datagram, meta);
        } else {
            let _ = ctx.udp_send_to((node as usize, self.port), to, datagram, meta);
        }
        flow
    }

    /// A sleeping client's radio is off (it hears nothing, draws sleep
    /// current); it is on in every other state, before the client sends.
    fn sync_radio(&mut self, ctx: &mut Ctx<'_, '_>, c: u32) {
        let cn = &mut self.clients[c as usize];
        let asleep = cn.client.state() == ClientState::Asleep;
        if asleep != cn.dozing {
            cn.dozing = asleep;
            ctx.radio_doze(cn.node as usize, asleep);
        }
    }

    fn client_drive(&mut self, ctx: &mut Ctx<'_, '_>, c: u32) {
        let now = ctx.now();
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let mut progressed = false;
            self.sync_radio(ctx, c);
            loop {
                buf.clear();
                let cn = &mut self.clients[c as usize];
                let Some(t) = cn.client.poll_transmit(now, &mut buf) else {
                    break;
                };
                let node = cn.node;
                let mut control = cn.flows[0];
                if t.kind == MsgType::Publish {
                    if let Some(f) = inspect(&buf[..t.len])
                        .and_then(|(_, d)| d)
                        .and_then(|d| flow_of_payload(d, self.columns.len()))
                    {
                        self.clients[c as usize].publish_flow = f;
                    }
                } else if t.kind == MsgType::PubRel {
                    control = self.clients[c as usize].publish_flow;
                }
                let flow = self.send(
                    ctx,
                    node,
                    t.to,
                    &buf[..t.len],
                    t.retransmission,
                    control,
                    true,
                );
                if let Some(col) = self.columns.get_mut(flow as usize) {
                    col.sent.count_sent(t.kind, t.len);
                }
            }
            loop {
                let cn = &mut self.clients[c as usize];
                let Some(ev) = cn.client.poll_event() else {
                    break;
                };
                progressed = true;
                self.client_event(ctx, c, ev);
            }
            if !progressed {
                break;
            }
        }
        self.buf = buf;
        self.sync_radio(ctx, c);
        let cn = &mut self.clients[c as usize];
        if let Some(d) = cn.client.poll_timeout() {
            if let Some(gen) = cn.wake.arm(d) {
                ctx.schedule(d, KEY_CLIENT_TIMER | c, gen);
            }
        }
    }

    fn client_event(&mut self, ctx: &mut Ctx<'_, '_>, c: u32, ev: ClientEvent) {
        let now = ctx.now();
        let counted = ctx.counted();
        let cn = &mut self.clients[c as usize];
        match ev {
            ClientEvent::Connected { .. } => {
                // CONNACK says nothing of a kept session (MQTT-SN 1.2
                // §5.4.5): every connection starts one for the
                // exactly-once rules
                ctx.session_start(cn.node);
                for (topic, ty, qos) in cn.subs().to_vec() {
                    // checked at load: the names fit their forms
                    let _ = cn.client.subscribe(now, &topic, ty, qos);
                }
                if let Some(d) = cn.sleep {
                    cn.client.sleep(now, d);
                }
            }
            ClientEvent::GatewayLost { .. } => {
                if let Some((id, addr)) = cn.configured {
                    if cn.client.gateways().next().is_none() {
                        cn.client.configure_gateway(now, id, addr);
                    }
                }
            }
            ClientEvent::Message { payload, .. } => ctx.deliver(cn.node, &payload),
            ClientEvent::GaveUp {
                message: Some(h), ..
            }
            | ClientEvent::PublishRejected { handle: h, .. } => {
                let flow = cn.take_handle(h.0).unwrap_or(cn.flows[0]);
                if counted {
                    if let Some(s) = ctx.flow_stats(flow) {
                        s.give_ups += 1;
                    }
                }
            }
            ClientEvent::PublishSent { handle }
            | ClientEvent::PublishAcked { handle }
            | ClientEvent::PublishCompleted { handle } => {
                cn.take_handle(handle.0);
            }
            ClientEvent::Disconnected { .. }
            | ClientEvent::GatewayFound { .. }
            | ClientEvent::ConnectRefused { .. }
            | ClientEvent::Registered { .. }
            | ClientEvent::Subscribed { .. }
            | ClientEvent::Unsubscribed { .. }
            | ClientEvent::GaveUp { .. }
            | ClientEvent::Asleep
            | ClientEvent::Awake
            | ClientEvent::WillUpdated { .. } => {}
        }
    }

    fn gateway_drive(&mut self, ctx: &mut Ctx<'_, '_>, g: u32) {
        let now = ctx.now();
        let mut buf = std::mem::take(&mut self.buf);
        let mut touched = std::mem::take(&mut self.touched);
        loop {
            let mut progressed = false;
            loop {
                buf.clear();
                let gn = &mut self.gateways[g as usize];
                let Some(t) = gn.gateway.poll_transmit(now, &mut buf) else {
                    break;
                };
                let node = gn.node;
                match t {
                    GatewayTransmit::Udp {
                        to,
                        len,
                        encapsulated,
                        retransmission,
                        ..
                    } => {
                        let client = if encapsulated {
                            match mqttsn::decode(&buf[..len]) {
                                Ok(mqttsn::Message::Encapsulated { node_id, .. }) => {
                                    mqttsn::sockaddr_from_bytes(node_id)
                                }
                                _ => None,
                            }
                        } else {
                            Some(to)
                        };
                        let control = client
                            .filter(|a| !a.addr.is_broadcast())
                            .map_or(self.home_flow, |a| self.flow_of_addr(ctx, a));
                        self.send(ctx, node, to, &buf[..len], retransmission, control, true);
                    }
                    GatewayTransmit::Mqtt { conn, len, kind } => {
                        if let Some(sock) = self
                            .up_of
                            .get(&(g, conn.0))
                            .and_then(|&u| self.ups[u as usize])
                            .and_then(|u| u.sock)
                        {
                            if ctx.tcp_state(sock).is_some() {
                                write_packet(ctx, sock, &buf[..len], kind, false);
                                touched.push(sock);
                            }
                        }
                    }
                }
            }
            while let Some(ev) = self.gateways[g as usize].gateway.poll_event() {
                progressed = true;
                self.gateway_event(ctx, g, ev, &mut touched);
            }
            if !progressed {
                break;
            }
        }
        self.buf = buf;
        super::mqtt::drive_sockets(ctx, &mut touched);
        self.touched = touched;
        let gn = &mut self.gateways[g as usize];
        if let Some(d) = gn.gateway.poll_timeout() {
            if let Some(gen) = gn.wake.arm(d) {
                ctx.schedule(d, KEY_GW_TIMER | g, gen);
            }
        }
    }

    fn gateway_event(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        g: u32,
        ev: GatewayEvent,
        touched: &mut Vec<SockId>,
    ) {
        match ev {
            GatewayEvent::OpenUpstream { conn } => self.open_upstream(ctx, g, conn),
            GatewayEvent::CloseUpstream { conn } => {
                if let Some(u) = self.up_of.remove(&(g, conn.0)) {
                    if let Some(sock) = self.ups[u as usize].take().and_then(|x| x.sock) {
                        if ctx.tcp_state(sock).is_some() {
                            ctx.tcp_close(sock);
                            touched.push(sock);
                        }
                    }
                    self.free_ups.push(u);
                }
            }
            GatewayEvent::ClientConnected { client, .. } => {
                if let Some(c) = ctx.node_of(client).and_then(|n| self.client_at(n)) {
                    let flows = self.clients[c as usize].flows.clone();
                    self.gateways[g as usize].served.extend(flows);
                }
            }
            GatewayEvent::Fate {
                client,
                payload,
                fate,
            } => {
                if !ctx.counted() {
                    return;
                }
                let flow = flow_of_payload(&payload, self.flows_len())
                    .or_else(|| client.map(|a| self.flow_of_addr(ctx, a)))
                    .unwrap_or(self.home_flow);
                if let Some(col) = self.columns.get_mut(flow as usize) {
                    match fate {
                        Fate::BufferedAsleep => col.buffered_asleep += 1,
                        Fate::DroppedAsleep
                        | Fate::DroppedQueueFull
                        | Fate::GaveUp
                        | Fate::Dropped => col.gateway_drops += 1,
                    }
                }
            }
            GatewayEvent::ClientDisconnected { .. }
            | GatewayEvent::ClientAsleep { .. }
            | GatewayEvent::ClientAwake { .. }
            | GatewayEvent::Published { .. }
            | GatewayEvent::WillPublished { .. } => {}
        }
    }

    /// The gateway asks for a TCP connection to the broker.
    fn open_upstream(&mut self, ctx: &mut Ctx<'_, '_>, g: u32, conn: Upstream) {
        let now = ctx.now();
        let gn = &self.gateways[g as usize];
        let node = gn.node as usize;
        let Some(broker) = self.broker.filter(|_| ctx.node_up(node)) else {
            let gn = &mut self.gateways[g as usize];
            gn.gateway.handle_input(
                now,
                GatewayInput::Upstream {
                    conn,
                    event: StreamInput::Closed,
                },
            );
            return;
        };
        let owner = gn.gateway.upstream_owner(conn);
        let flow = match owner {
            Some(a) => {
                let f = self.flow_of_addr(ctx, a);
                if let Some(c) = ctx.node_of(a).and_then(|n| self.client_at(n)) {
                    for &f in &self.clients[c as usize].flows {
                        self.columns[f as usize].transparent_opened += 1;
                    }
                }
                f
            }
            None => {
                self.gateways[g as usize].shared_opened += 1;
                self.home_flow
            }
        };
        let u = match self.up_of.get(&(g, conn.0)) {
            Some(&u) => u,
            None => {
                let u = self.free_ups.pop().unwrap_or_else(|| {
                    self.ups.push(None);
                    (self.ups.len() - 1) as u32
                });
                self.up_of.insert((g, conn.0), u);
                u
            }
        };
        let port = ctx.scenario().protocols.mqtt.port;
        let opts = super::mqtt::broker_opts(ctx.scenario());
        let sock = ctx.tcp_connect(node, (broker as usize, port), flow, u, opts);
        self.ups[u as usize] = Some(UpSock { gw: g, conn, sock });
        match sock {
            Some(sock) => {
                let at = now + ctx.scenario().protocols.mqtt.connect_timeout;
                ctx.schedule(at, KEY_UP_TIMEOUT | u, sock.slot());
            }
            None => self.gateways[g as usize].gateway.handle_input(
                now,
                GatewayInput::Upstream {
                    conn,
                    event: StreamInput::Closed,
                },
            ),
        }
    }

    fn on_up_timeout(&mut self, ctx: &mut Ctx<'_, '_>, u: u32, slot: u32) {
        let Some(Some(up)) = self.ups.get(u as usize).copied() else {
            return;
        };
        let Some(sock) = up.sock.filter(|s| s.slot() == slot) else {
            return;
        };
        if ctx.tcp_state(sock) != Some(StreamState::Connecting) {
            return;
        }
        if let Some(Some(x)) = self.ups.get_mut(u as usize) {
            x.sock = None;
        }
        ctx.tcp_abort(sock);
        ctx.tcp_drive(sock);
        self.gateways[up.gw as usize].gateway.handle_input(
            ctx.now(),
            GatewayInput::Upstream {
                conn: up.conn,
                event: StreamInput::Closed,
            },
        );
        self.pending_gws.push(up.gw);
        ctx.mark_pending();
    }

    fn forwarder_drive(&mut self, ctx: &mut Ctx<'_, '_>, f: u32) {
        let now = ctx.now();
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            buf.clear();
            let (node, fwd) = &mut self.forwarders[f as usize];
            let node = *node;
            let Some(t) = fwd.poll_transmit(now, &mut buf) else {
                break;
            };
            let to_gateway = t.kind == MsgType::Encapsulated;
            let client = if to_gateway {
                None
            } else {
                Some(t.to).filter(|a| !a.addr.is_broadcast())
            };
            let control = match client {
                Some(a) => self.flow_of_addr(ctx, a),
                None => match mqttsn::decode(&buf[..t.len]) {
                    Ok(mqttsn::Message::Encapsulated { node_id, .. }) => {
                        mqttsn::sockaddr_from_bytes(node_id)
                            .map_or(self.home_flow, |a| self.flow_of_addr(ctx, a))
                    }
                    _ => self.home_flow,
                },
            };
            self.send(ctx, node, t.to, &buf[..t.len], false, control, false);
        }
        self.buf = buf;
    }

    /// Start a client afresh: a crash loses everything it held.
    fn reset_client(&mut self, ctx: &Ctx<'_, '_>, c: u32) {
        let sc = ctx.scenario();
        let cn = &mut self.clients[c as usize];
        cn.restarts += 1;
        let (id, will) = client_identity(sc, cn.node);
        let rng = client_rng(sc.seed, &id, cn.restarts);
        cn.client = Client::with_shared(Arc::clone(&self.shared), &id, will, rng);
        if let Some((id, addr)) = cn.configured {
            cn.client.add_gateway(id, addr);
        }
        cn.wake.reset();
        if let Some(e) = cn.extra.as_deref_mut() {
            e.handles.clear();
        }
    }

    fn start_client(&mut self, ctx: &mut Ctx<'_, '_>, c: u32) {
        let cn = &mut self.clients[c as usize];
        if cn.connects && cn.online && !cn.crashed && ctx.node_up(cn.node as usize) {
            cn.client.connect(ctx.now());
        }
        self.pending_clients.push(c);
        ctx.mark_pending();
    }

    /// The gateway or forwarder fewest hops from `node` (a gateway wins a
    /// tie, then the lower node index), as (GwId, address).
    fn nearest_gateway(
        &self,
        ctx: &Ctx<'_, '_>,
        node: usize,
        forwarders: bool,
    ) -> Option<(u8, SockAddr)> {
        let mut best: Option<(u32, u8, usize, u8)> = None;
        let mut offer = |hops: u32, kind: u8, at: usize, gw_id: u8| {
            if best.is_none_or(|(h, k, n, _)| (hops, kind, at) < (h, k, n)) {
                best = Some((hops, kind, at, gw_id));
            }
        };
        for g in &self.gateways {
            if let Some(h) = ctx.route_hops(node, g.node as usize) {
                offer(h, 0, g.node as usize, g.config.gw_id);
            }
        }
        if forwarders {
            for (n, f) in &self.forwarders {
                let gw_id = ctx
                    .node_of(f.config().gateway)
                    .and_then(|gn| self.gateways.iter().find(|g| g.node as usize == gn))
                    .map_or(1, |g| g.config.gw_id);
                if let Some(h) = ctx.route_hops(node, *n as usize) {
                    offer(h, 1, *n as usize, gw_id);
                }
            }
        }
        best.map(|(_, _, at, id)| (id, ctx.sock_addr(at, self.port)))
    }
}

/// The subscriptions of receiver `k` of flow `f` over MQTT-SN.
fn subscription(
    ctx: &Ctx<'_, '_>,
    f: &FlowSpec,
    first_pub: usize,
    k: usize,
    sn: &MqttsnParams,
) -> Option<(Arc<str>, TopicIdType)> {
    let filter = match f.pattern {
        Pattern::PointToPoint => {
            if k >= f.publishers.len() {
                return None;
            }
            ctx.publisher(first_pub + k).topic.to_string()
        }
        Pattern::Broadcast | Pattern::FanIn => template_filter(&f.topic),
    };
    let exact = !filter.contains(['+', '#']);
    let ty = if exact && sn.predefined_id(&filter).is_some() {
        TopicIdType::Predefined
    } else if exact && sn.topic_id_type == MqttsnTopicType::Short && filter.len() == 2 {
        TopicIdType::Short
    } else {
        TopicIdType::Normal
    };
    Some((Arc::from(filter.as_str()), ty))
}

impl Plugin for MqttSn {
    /// Build clients, gateways and forwarders (no traffic yet).
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        if !sc.flows.iter().any(uses_mqttsn) {
            return;
        }
        let sn = &sc.protocols.mqttsn;
        self.params = sn.clone();
        self.port = sn.port;
        self.raw = sn.transport == crate::scenario::model::MqttsnTransport::Raw;
        self.columns = vec![SnColumns::default(); sc.flows.len()];
        self.flow_qos = sc.flows.iter().map(|f| sn_qos(f.reliability)).collect();
        self.flow_retain = sc.flows.iter().map(|f| f.retain).collect();
        self.home_flow = sc.flows.iter().position(uses_mqttsn).unwrap_or(0) as u32;
        self.broker = if sn.gateway_mode == MqttsnGatewayMode::Integrated {
            None
        } else {
            sc.flows
                .iter()
                .filter(|f| uses_mqttsn(f))
                .find_map(|f| f.broker)
                .map(|b| b as u32)
        };
        self.at_node = vec![AT_NONE; sc.nodes.len()];
        // gateways and forwarders, node order
        for (i, n) in sc.nodes.iter().enumerate() {
            match n.role {
                Role::Gateway => {
                    let g = self.gateways.len() as u32;
                    let gw_id = (g % 255 + 1) as u8;
                    let config = gateway_config(sc, gw_id, i as u32);
                    self.gateways.push(GwNode {
                        gateway: Gateway::new(config.clone(), gateway_rng(sc.seed, i as u32, 0)),
                        config,
                        node: i as u32,
                        wake: Wakeup::default(),
                        served: BTreeSet::new(),
                        shared_opened: 0,
                        restarts: 0,
                    });
                    self.at_node[i] = AT_GATEWAY | g;
                    let _ = ctx.udp_bind_with(i, sn.port, sn.security);
                }
                Role::Forwarder => {
                    self.at_node[i] = AT_FORWARDER | self.forwarders.len() as u32;
                    // its gateway is set below, once every gateway exists
                    let placeholder = ForwarderConfig::new(ctx.sock_addr(i, sn.port));
                    self.forwarders
                        .push((i as u32, Forwarder::new(placeholder)));
                    let _ = ctx.udp_bind_with(i, sn.port, sn.security);
                }
                _ => {}
            }
        }
        for k in 0..self.forwarders.len() {
            let node = self.forwarders[k].0 as usize;
            let gw = self
                .nearest_gateway(ctx, node, false)
                .map_or_else(|| ctx.sock_addr(node, sn.port), |(_, a)| a);
            self.forwarders[k].1 = Forwarder::new(ForwarderConfig {
                gateway: gw,
                port: sn.port,
                radius: sn.radius,
            });
        }
        // clients: publishers of mqttsn flows, MQTT-SN receivers
        let mut first_pub = Vec::with_capacity(sc.flows.len());
        let mut n = 0;
        for f in &sc.flows {
            first_pub.push(n);
            n += f.publishers.len();
        }
        // one client per node: reserve them all at once (a client is ~1 KB;
        // growing the vector by doubling held both copies at its peak)
        let mut client_nodes: Vec<usize> = Vec::new();
        for f in sc.flows.iter().filter(|f| uses_mqttsn(f)) {
            if f.protocol == Protocol::Mqttsn {
                client_nodes.extend_from_slice(&f.publishers);
            }
            if f.subscribe_with == Protocol::Mqttsn {
                client_nodes.extend_from_slice(&f.receivers);
            }
        }
        client_nodes.sort_unstable();
        client_nodes.dedup();
        self.clients.reserve_exact(client_nodes.len());
        self.shared = Arc::new(shared_config(sc));
        drop(client_nodes);
        for (fi, f) in sc.flows.iter().enumerate() {
            if !uses_mqttsn(f) {
                continue;
            }
            let qos = sn_qos(f.reliability);
            let publishers: &[usize] = if f.protocol == Protocol::Mqttsn {
                &f.publishers
            } else {
                &[]
            };
            let receivers: &[usize] = if f.subscribe_with == Protocol::Mqttsn {
                &f.receivers
            } else {
                &[]
            };
            for &p in publishers {
                let c = self.client_for(ctx, p as u32, fi as u32);
                if qos != Qos::MinusOne {
                    self.clients[c as usize].connects = true;
                }
            }
            for (k, &r) in receivers.iter().enumerate() {
                let c = self.client_for(ctx, r as u32, fi as u32);
                let cn = &mut self.clients[c as usize];
                cn.connects = true;
                if let Some((topic, ty)) = subscription(ctx, f, first_pub[fi], k, sn) {
                    let sub_qos = if qos == Qos::MinusOne { Qos::Zero } else { qos };
                    let cn = &mut self.clients[c as usize];
                    if !cn.subs().iter().any(|(t, _, _)| *t == topic) {
                        cn.extra().subs.push((topic, ty, sub_qos));
                    }
                }
            }
        }
        // configured gateways: every client with static discovery, and
        // those that only publish at QoS −1
        for c in 0..self.clients.len() {
            let (node, connects) = (self.clients[c].node as usize, self.clients[c].connects);
            if sn.discovery == MqttsnDiscovery::Static || !connects {
                if let Some((id, addr)) = self.nearest_gateway(ctx, node, true) {
                    let cn = &mut self.clients[c];
                    cn.configured = Some((id, addr));
                    cn.client.add_gateway(id, addr);
                    if !connects {
                        let via = ctx.node_of(addr);
                        let flows = cn.flows.clone();
                        if let Some(g) = self
                            .gateways
                            .iter_mut()
                            .find(|g| Some(g.node as usize) == via)
                        {
                            g.served.extend(flows);
                        }
                    }
                }
            }
        }
    }

    /// Schedule the gateways' start and every connecting client's first
    /// connection.
    fn prime(&mut self, ctx: &mut Ctx<'_, '_>) {
        if !self.gateways.is_empty() {
            ctx.schedule(SimTime::ZERO, KEY_GWS_START, 0);
        }
        let sc = ctx.scenario();
        let spread = self.params.connect_spread;
        for c in 0..self.clients.len() {
            let cn = &self.clients[c];
            if !cn.connects {
                continue;
            }
            let id = cn.client.client_id();
            let mut rng = SimRng::stream(sc.seed, &format!("mqttsn/connect/{id}"));
            let at = SimTime::ZERO + SimDuration(rng.below(spread.as_nanos().max(1)));
            ctx.schedule(at, KEY_CLIENT_START | c as u32, 0);
        }
    }

    fn publisher_alive(&self, _p: usize, node: u32, _flow: u32) -> bool {
        self.client_at(node as usize)
            .is_none_or(|c| !self.clients[c as usize].crashed)
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>) {
        let Some(c) = self.client_at(msg.node as usize) else {
            return;
        };
        let now = ctx.now();
        let (qos, retain) = (self.flow_qos[msg.flow], self.flow_retain[msg.flow]);
        let cn = &mut self.clients[c as usize];
        match cn.client.publish(now, msg.topic, msg.payload, qos, retain) {
            Ok(h) => {
                if cn.flows.len() > 1 {
                    cn.extra().handles.insert(h.0, msg.flow as u32);
                }
            }
            Err(e) => {
                if msg.counted {
                    self.columns[msg.flow].client_drops += 1;
                }
                debug_assert!(
                    matches!(
                        e,
                        ClientError::QueueFull { .. }
                            | ClientError::NoGateway
                            | ClientError::TooLarge(_)
                    ),
                    "loader-checked topic refused: {e:?}"
                );
            }
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
            KEY_GW_TIMER => {
                let gn = &mut self.gateways[i as usize];
                if !gn.wake.fire(arg, now) {
                    return;
                }
                if gn.gateway.poll_timeout().is_some_and(|d| d <= now) {
                    gn.gateway.handle_timeout(now);
                }
                self.pending_gws.push(i);
            }
            KEY_CLIENT_START => return self.start_client(ctx, i),
            KEY_GWS_START => {
                for g in 0..self.gateways.len() {
                    let gn = &mut self.gateways[g];
                    if ctx.node_up(gn.node as usize) {
                        gn.gateway.start(now);
                    }
                    self.pending_gws.push(g as u32);
                }
            }
            KEY_UP_TIMEOUT => return self.on_up_timeout(ctx, i, arg),
            _ => return,
        }
        ctx.mark_pending();
    }

    /// Poll every pending client, gateway and forwarder until nothing is
    /// pending.
    fn flush(&mut self, ctx: &mut Ctx<'_, '_>) {
        while !(self.pending_clients.is_empty()
            && self.pending_gws.is_empty()
            && self.pending_fwds.is_empty())
        {
            for c in take_sorted(&mut self.pending_clients) {
                self.client_drive(ctx, c);
            }
            for g in take_sorted(&mut self.pending_gws) {
                self.gateway_drive(ctx, g);
            }
            for f in take_sorted(&mut self.pending_fwds) {
                self.forwarder_drive(ctx, f);
            }
        }
    }

    /// A node crashed (its sockets are already gone): a gateway loses every
    /// session, a client everything it held.
    fn node_crash(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let Some(&at) = self.at_node.get(node) else {
            return;
        };
        if at == AT_NONE {
            return;
        }
        if let Some(m) = ctx.monitors() {
            m.mqttsn_node_reset(node as u32);
        }
        let i = at & !AT_KIND;
        match at & AT_KIND {
            AT_GATEWAY => {
                let sc = ctx.scenario();
                let gn = &mut self.gateways[i as usize];
                gn.restarts += 1;
                gn.gateway = Gateway::new(
                    gn.config.clone(),
                    gateway_rng(sc.seed, gn.node, gn.restarts),
                );
                gn.wake.reset();
                let gone: Vec<(u32, u32)> = self
                    .up_of
                    .range((i, 0)..=(i, u32::MAX))
                    .map(|(&k, _)| k)
                    .collect();
                for k in gone {
                    if let Some(u) = self.up_of.remove(&k) {
                        self.ups[u as usize] = None;
                        self.free_ups.push(u);
                    }
                }
            }
            AT_CLIENT => {
                self.reset_client(ctx, i);
                self.clients[i as usize].crashed = true;
            }
            _ => {} // a forwarder holds no state
        }
    }

    fn node_restart(&mut self, ctx: &mut Ctx<'_, '_>, node: usize) {
        let Some(&at) = self.at_node.get(node) else {
            return;
        };
        if at == AT_NONE {
            return;
        }
        let i = at & !AT_KIND;
        match at & AT_KIND {
            AT_GATEWAY => {
                // what the gateway forwarded before may be forwarded again
                // as new (its QoS 2 state is gone): a new session for the
                // exactly-once rules
                let now = ctx.now();
                if let Some(m) = ctx.monitors() {
                    m.session_start_all(now);
                }
                self.gateways[i as usize].gateway.start(ctx.now());
                self.pending_gws.push(i);
                ctx.mark_pending();
            }
            AT_CLIENT => {
                self.clients[i as usize].crashed = false;
                self.start_client(ctx, i);
            }
            _ => {}
        }
    }

    fn client_action(&mut self, ctx: &mut Ctx<'_, '_>, node: usize, action: ClientAction) {
        let Some(c) = self.client_at(node) else {
            return;
        };
        let now = ctx.now();
        match action {
            ClientAction::Disconnect => {
                let cn = &mut self.clients[c as usize];
                cn.online = false;
                cn.client.disconnect(now);
            }
            ClientAction::Crash => {
                self.reset_client(ctx, c);
                let cn = &mut self.clients[c as usize];
                cn.online = false;
                cn.crashed = true;
            }
            ClientAction::Connect => {
                let cn = &mut self.clients[c as usize];
                cn.online = true;
                cn.crashed = false;
                return self.start_client(ctx, c);
            }
            ClientAction::Sleep { duration } => {
                let cn = &mut self.clients[c as usize];
                let d = seconds(duration).max(1);
                cn.sleep = Some(d);
                if cn.client.is_connected() {
                    cn.client.sleep(now, d);
                }
            }
            ClientAction::Wake => {
                let cn = &mut self.clients[c as usize];
                cn.sleep = None;
                if cn.online && !cn.crashed {
                    cn.client.connect(now);
                }
            }
        }
        self.pending_clients.push(c);
        ctx.mark_pending();
    }

    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        Some(self)
    }

    fn stream_app(&mut self) -> Option<&mut dyn StreamApp> {
        Some(self)
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> PluginOutput {
        let sc = end.scenario;
        let mut columns = Vec::with_capacity(sc.flows.len());
        for (fi, f) in sc.flows.iter().enumerate() {
            let zero = || Value::Int(0);
            if !uses_mqttsn(f) || self.columns.is_empty() {
                columns.push(vec![
                    zero(),
                    Value::Empty,
                    zero(),
                    zero(),
                    zero(),
                    zero(),
                    zero(),
                    zero(),
                ]);
                continue;
            }
            let col = &self.columns[fi];
            let disc: Vec<u64> = self
                .clients
                .iter()
                .filter(|c| c.flows.contains(&(fi as u32)))
                .filter_map(|c| c.client.stats().discovery_time)
                .map(|d| d.as_nanos())
                .collect();
            let discovery = if disc.is_empty() {
                Value::Empty
            } else {
                let sum: u128 = disc.iter().map(|&x| u128::from(x)).sum();
                Value::Float(sum as f64 / disc.len() as f64 / 1e6)
            };
            let st = &end.flows[fi].1;
            let shared: u64 = self
                .gateways
                .iter()
                .filter(|g| g.served.contains(&(fi as u32)))
                .map(|g| g.shared_opened)
                .sum();
            columns.push(vec![
                Value::Int(col.registration_bytes),
                discovery,
                Value::Int(col.buffered_asleep),
                Value::Int(col.gateway_drops),
                Value::Int(col.client_drops),
                Value::Int(st.bytes_on_wire - st.bytes_on_wire_tcp),
                Value::Int(st.bytes_on_wire_tcp),
                Value::Int(col.transparent_opened + shared),
            ]);
        }
        let rows = self.rows(sc);
        let tables = if rows.is_empty() {
            Vec::new()
        } else {
            let mut csv = Vec::new();
            let _ = write_mqtt_rows(&mut csv, end.run_id, &rows);
            vec![Table {
                file: "mqttsn.csv",
                csv: String::from_utf8(csv).unwrap_or_default(),
            }]
        };
        let counters = vec![
            ("mqttsn_clients", self.clients.len() as u64),
            (
                "mqttsn_gateway_sessions",
                self.gateways
                    .iter()
                    .map(|g| g.gateway.client_count() as u64)
                    .sum(),
            ),
        ];
        PluginOutput {
            columns,
            tables,
            counters,
        }
    }
}

impl MqttSn {
    /// The client of `node`, made on first use; `flow` added to its flows.
    fn client_for(&mut self, ctx: &mut Ctx<'_, '_>, node: u32, flow: u32) -> u32 {
        if let Some(c) = self.client_at(node as usize) {
            let cn = &mut self.clients[c as usize];
            if !cn.flows.contains(&flow) {
                // setup only: a client joins each of its flows once
                let mut v = std::mem::take(&mut cn.flows).into_vec();
                v.push(flow);
                cn.flows = v.into_boxed_slice();
            }
            return c;
        }
        let sc = ctx.scenario();
        let (id, will) = client_identity(sc, node);
        let rng = client_rng(sc.seed, &id, 0);
        let sleep = self
            .params
            .sleep_of(node as usize)
            .map(|d| seconds(d).max(1));
        let c = self.clients.len() as u32;
        self.clients.push(SnClient {
            client: Client::with_shared(Arc::clone(&self.shared), &id, will, rng),
            node,
            flows: Box::new([flow]),
            wake: Wakeup::default(),
            extra: None,
            sleep,
            connects: false,
            configured: None,
            online: true,
            crashed: false,
            restarts: 0,
            publish_flow: flow,
            dozing: false,
        });
        self.at_node[node as usize] = AT_CLIENT | c;
        // the loader keeps MQTT-SN clients off gateway and forwarder nodes
        // and ports of different protocols apart
        let _ = ctx.udp_bind_with(
            node as usize,
            self.port,
            ctx.scenario().protocols.mqttsn.security,
        );
        c
    }

    /// The rows of `mqttsn.csv` (same long format as `mqtt.csv`).
    fn rows(&self, sc: &Scenario) -> Vec<MqttRow> {
        let mut rows = Vec::new();
        let mut push = |scope: &'static str, name: &str, metric: String, value: u64| {
            rows.push(MqttRow {
                scope,
                name: name.to_string(),
                metric,
                value: value.to_string(),
            })
        };
        let by_type = |push: &mut dyn FnMut(&'static str, &str, String, u64),
                       scope: &'static str,
                       name: &str,
                       sent: &[u64],
                       bytes: &[u64]| {
            for t in MsgType::ALL {
                let i = t.index();
                if sent[i] > 0 {
                    let label = &t.label()["mqttsn_".len()..];
                    push(scope, name, format!("packets_sent_{label}"), sent[i]);
                    push(scope, name, format!("bytes_sent_{label}"), bytes[i]);
                }
            }
        };
        for g in &self.gateways {
            let name = &sc.nodes[g.node as usize].name;
            let st = g.gateway.stats();
            for (metric, v) in [
                ("gw_id", u64::from(g.config.gw_id)),
                ("sessions", st.clients),
                ("sessions_asleep", st.clients_asleep),
                ("connects", st.connects),
                ("connects_refused", st.connects_refused),
                ("registrations", st.registrations),
                ("registers_sent", st.registers_sent),
                ("publishes_received", st.publishes_received),
                ("publishes_delivered", st.publishes_delivered),
                ("duplicates_suppressed", st.duplicates_suppressed),
                ("buffered_asleep", st.buffered_asleep),
                ("dropped_asleep", st.dropped_asleep),
                ("dropped_queue_full", st.dropped_queue_full),
                ("dropped", st.dropped),
                ("give_ups", st.give_ups),
                ("retransmissions", st.retransmissions),
                ("upstream_opened", st.upstream_opened),
                ("upstream_open", st.upstream_open),
                ("wills_published", st.wills_published),
                ("keep_alive_timeouts", st.keep_alive_timeouts),
                ("sleep_timeouts", st.sleep_timeouts),
                ("decode_errors", st.decode_errors),
                ("ignored", st.ignored),
                ("advertises_sent", st.advertises_sent),
                ("mqtt_bytes_sent", st.mqtt_bytes_sent),
                ("restarts", u64::from(g.restarts)),
            ] {
                push("gateway", name, metric.to_string(), v);
            }
            by_type(
                &mut push,
                "gateway",
                name,
                &st.sent_by_type,
                &st.bytes_sent_by_type,
            );
        }
        for (node, f) in &self.forwarders {
            let name = &sc.nodes[*node as usize].name;
            let st = f.stats();
            for (metric, v) in [
                ("encapsulated", st.encapsulated),
                ("decapsulated", st.decapsulated),
                ("bytes_to_gateway", st.bytes_to_gateway),
                ("bytes_to_clients", st.bytes_to_clients),
                ("decode_errors", st.decode_errors),
                ("radius_exhausted", st.radius_exhausted),
                ("ignored", st.ignored),
            ] {
                push("forwarder", name, metric.to_string(), v);
            }
        }
        for (fi, f) in sc.flows.iter().enumerate() {
            if !uses_mqttsn(f) {
                continue;
            }
            let mut sum = mqttsn::ClientStats::default();
            let mut n = 0u64;
            for c in self
                .clients
                .iter()
                .filter(|c| c.flows.contains(&(fi as u32)))
            {
                n += 1;
                let s = c.client.stats();
                sum.retransmissions += s.retransmissions;
                sum.give_ups += s.give_ups;
                sum.publishes_given_up += s.publishes_given_up;
                sum.registrations += s.registrations;
                sum.publishes_sent += s.publishes_sent;
                sum.messages_received += s.messages_received;
                sum.duplicates_suppressed += s.duplicates_suppressed;
                sum.dropped_queue_full += s.dropped_queue_full;
                sum.decode_errors += s.decode_errors;
                sum.ignored += s.ignored;
                sum.gateways_lost += s.gateways_lost;
                sum.searches_sent += s.searches_sent;
                sum.gwinfo_sent += s.gwinfo_sent;
                sum.connects += s.connects;
            }
            for (metric, v) in [
                ("clients", n),
                ("connects", sum.connects),
                ("retransmissions", sum.retransmissions),
                ("give_ups", sum.give_ups),
                ("publishes_given_up", sum.publishes_given_up),
                ("registrations", sum.registrations),
                ("publishes_sent", sum.publishes_sent),
                ("messages_received", sum.messages_received),
                ("duplicates_suppressed", sum.duplicates_suppressed),
                ("dropped_queue_full", sum.dropped_queue_full),
                ("decode_errors", sum.decode_errors),
                ("ignored", sum.ignored),
                ("gateways_lost", sum.gateways_lost),
                ("searches_sent", sum.searches_sent),
                ("gwinfo_sent", sum.gwinfo_sent),
            ] {
                push("flow", &f.name, metric.to_string(), v);
            }
            by_type(
                &mut push,
                "flow",
                &f.name,
                &self.columns[fi].sent.sent,
                &self.columns[fi].sent.bytes_sent,
            );
        }
        rows
    }
}

impl DatagramApp for MqttSn {
    fn on_datagram(&mut self, ctx: &mut Ctx<'_, '_>, rx: Received<'_>) {
        let Some(&at) = self.at_node.get(rx.node as usize) else {
            return;
        };
        if at == AT_NONE {
            return;
        }
        let now = ctx.now();
        let i = at & !AT_KIND;
        if at & AT_KIND != AT_FORWARDER && ctx.monitors().is_some() {
            monitor_datagram(ctx, rx.node, rx.from, rx.data, None);
        }
        let input = Datagram {
            from: rx.from,
            data: rx.data,
        };
        match at & AT_KIND {
            AT_CLIENT => {
                self.clients[i as usize].client.handle_input(now, input);
                self.pending_clients.push(i);
            }
            AT_GATEWAY => {
                self.gateways[i as usize]
                    .gateway
                    .handle_input(now, GatewayInput::Datagram(input));
                self.pending_gws.push(i);
                // the gateway's service time per MQTT-SN message received
                // (one per datagram): its answers and what it forwards
                // leave when the work is done (world::proc)
                ctx.charge(rx.node as usize, 1, 0);
            }
            _ => {
                self.forwarders[i as usize].1.handle_input(now, input);
                self.pending_fwds.push(i);
            }
        }
        ctx.mark_pending();
    }
}

impl StreamApp for MqttSn {
    fn on_accept(&mut self, _ctx: &mut Ctx<'_, '_>, _sock: SockId, listen_tag: u32) -> u32 {
        listen_tag // MQTT-SN listens on no TCP port
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, ev: StreamEvent<'_>) {
        let Some(Some(up)) = self.ups.get(tag as usize).copied() else {
            ctx.tcp_detach(sock);
            return;
        };
        let now = ctx.now();
        let event = match ev {
            StreamEvent::Connected => StreamInput::Connected,
            StreamEvent::Data(d) => {
                if let Some(m) = ctx.monitors() {
                    m.mqtt_received(now, sock.0, d, None);
                }
                StreamInput::Bytes(d)
            }
            StreamEvent::PeerClosed | StreamEvent::Ended(_) => {
                ctx.tcp_detach(sock);
                if up.sock != Some(sock) {
                    return;
                }
                if let Some(Some(x)) = self.ups.get_mut(tag as usize) {
                    x.sock = None;
                }
                StreamInput::Closed
            }
            StreamEvent::Released => return,
        };
        if up.sock != Some(sock) {
            return;
        }
        self.gateways[up.gw as usize].gateway.handle_input(
            now,
            GatewayInput::Upstream {
                conn: up.conn,
                event,
            },
        );
        self.pending_gws.push(up.gw);
        ctx.mark_pending();
    }
}

#[cfg(test)]
mod size_tests {
    /// Thousands of clients per run (10,000 in mqttsn-10k): the per-client
    /// struct is the plug-in's memory per sensor. Before the memory work:
    /// 736 bytes (its `Client` 592); 656 (512) before the client's queues
    /// ([`crate::proto::mqttsn::client`]'s `Work`) and the rarely used
    /// subscriptions and handles ([`super::SnExtra`]) were boxed.
    #[test]
    fn per_client_state_stays_small() {
        let sn = std::mem::size_of::<super::SnClient>();
        let client = std::mem::size_of::<crate::proto::mqttsn::Client>();
        eprintln!("SnClient {sn} B, Client {client} B");
        assert!(client <= 400, "mqttsn::Client is {client} bytes");
        assert!(sn <= 496, "SnClient is {sn} bytes");
    }
}
