//! The sans-IO MQTT-SN v1.2 gateway: one state machine serving many
//! MQTT-SN clients over UDP (keyed by their [`SockAddr`]) and reaching an
//! MQTT 3.1.1 broker through [`crate::proto::mqtt::Client`]s it owns.
//!
//! Modes (MQTT-SN 1.2 §4):
//! * [`GatewayMode::Transparent`] — one MQTT connection per MQTT-SN client,
//!   opened when the client CONNECTs (CONNACK waits for the broker's).
//! * [`GatewayMode::Aggregating`] — one MQTT connection for all clients;
//!   the gateway subscribes upstream on the union of its clients'
//!   subscriptions (reference-counted per filter) and fans messages out.
//! * [`GatewayMode::Integrated`] — the gateway is the broker (as RSMB):
//!   publishes are routed locally to its MQTT-SN subscribers (with retained
//!   messages); no MQTT connection at all. It routes with its own
//!   subscription table rather than an embedded `mqtt::Broker`, so no MQTT
//!   bytes are encoded and decoded inside one node (docs/mqttsn.md).
//!
//! Driver shape ([`SansIo`]). Input is a [`GatewayInput`]: a datagram from
//! a client (or a forwarder), or an event of upstream connection `k`
//! (bytes, connected, closed). After every input (and after `start`):
//! 1. `poll_transmit` until `None`: [`GatewayTransmit::Udp`] is a datagram
//!    (to a client, a forwarder or the broadcast address);
//!    [`GatewayTransmit::Mqtt`] is bytes for upstream connection `k`'s
//!    TCP stream (one MQTT packet);
//! 2. `poll_event` until `None`: [`GatewayEvent::OpenUpstream`] asks for a
//!    TCP connection to the broker, answered later with
//!    `StreamInput::Connected` (or `Closed` if it fails);
//!    [`GatewayEvent::CloseUpstream`] asks to close it after sending the
//!    bytes step 1 returned (do not report that close back);
//! 3. `poll_timeout`, and `handle_timeout` when due.
//!
//! The gateway is a store-and-forward hop: it answers PUBACK/PUBREC/PUBCOMP
//! to a client itself and publishes upstream with the same QoS (−1 → 0,
//! §6.8); its own MQTT clients carry the upstream guarantee. It publishes
//! wills itself in every mode (so WILLTOPICUPD/WILLMSGUPD, §6.4, take
//! effect): on a client's loss it publishes the will through that client's
//! upstream (transparent), the shared one (aggregating) or locally.

use crate::sansio::StreamInput;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::net::addr::SockAddr;
use crate::proto::mqtt::{
    self, ClientEvent as MqttEvent, PacketType, QoS as MqttQoS, SubAckReturn, TopicFilter,
    TopicName,
};
use crate::proto::{Datagram, SansIo};
use crate::sim::{SimDuration, SimRng, SimTime};

use super::codec::{self, Message};
use super::types::{MsgType, Qos, ReturnCode, SubTopic, TopicRef, TypeCounters, WillTopic};
use super::{broadcast, sockaddr_bytes, sockaddr_from_bytes, DEFAULT_PORT};

/// How the gateway reaches the MQTT world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GatewayMode {
    /// One MQTT connection per client.
    Transparent,
    /// One MQTT connection for all clients.
    #[default]
    Aggregating,
    /// The gateway is the broker.
    Integrated,
}

/// Gateway options.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// GwId in ADVERTISE and GWINFO.
    pub gw_id: u8,
    pub mode: GatewayMode,
    /// UDP port (broadcast destination). Default [`DEFAULT_PORT`].
    pub port: u16,
    /// T_ADV: ADVERTISE period, sent as its Duration; `None` turns
    /// advertising off. Default 15 min (§7.2: greater than 15 minutes).
    pub t_adv: Option<SimDuration>,
    /// Radius of ADVERTISE/GWINFO broadcasts (carried by forwarders).
    pub radius: u8,
    /// T_RETRY for messages to clients (REGISTER, PUBLISH QoS 1/2,
    /// PUBREL). Default 10 s (§7.2).
    pub t_retry: SimDuration,
    /// N_RETRY. Default 3.
    pub n_retry: u32,
    /// Clients served; a CONNECT beyond is refused with "congestion".
    /// Default 10 000.
    pub max_clients: usize,
    /// Topic ids per client; a REGISTER beyond is refused with
    /// "congestion". Default 64.
    pub max_topics_per_client: usize,
    /// Longest topic name or filter, in bytes, a client may REGISTER,
    /// SUBSCRIBE to or name as its will topic (MQTT-SN 1.2 sets no limit
    /// below the 65 535-byte message): longer ones are refused with "not
    /// supported" and counted (`GatewayStats::topics_too_long`); a
    /// broker's message on a longer topic is not registered to a client
    /// (dropped, counted). With `max_topics_per_client` it bounds a
    /// client's topic table. Default 256.
    pub max_topic_len: usize,
    /// Messages buffered for a sleeping (or disconnected persistent)
    /// client; more are dropped and counted. Default 20.
    pub max_buffered: usize,
    /// Messages queued for an active client behind its one outstanding
    /// QoS 1/2 exchange. Default 100.
    pub max_queued: usize,
    /// Subscriptions per client; beyond: SUBACK "congestion". Default 32.
    pub max_subscriptions_per_client: usize,
    /// Integrated mode: bytes (topic names and payloads) of the retained
    /// messages kept. A retained message that would pass this is not kept
    /// (the one it replaces is deleted all the same) and is counted
    /// (`GatewayStats::retained_dropped`); it is still delivered to the
    /// current subscribers. Without it every new topic published with
    /// RETAIN stayed for good. Default 16 MiB.
    pub max_retained_bytes: usize,
    /// Predefined topic ids (§6.7) as (id, name), shared by all clients.
    pub predefined: Vec<(u16, String)>,
    /// Template of the upstream MQTT clients (client id used by the
    /// aggregating connection; keep alive; timeouts). Its `reconnect` is
    /// honoured for the aggregating connection and ignored (off) for
    /// transparent ones; `will` is ignored (the gateway publishes wills).
    pub upstream: mqtt::ClientConfig,
    /// A client silent for this multiple of its keep-alive Duration (or of
    /// its sleep Duration) is lost. Default 1.5 (MQTT 3.1.1 §3.1.2.10's
    /// factor; MQTT-SN 1.2 §6.11 leaves it open).
    pub keep_alive_factor: f64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            gw_id: 1,
            mode: GatewayMode::Aggregating,
            port: DEFAULT_PORT,
            t_adv: Some(SimDuration::from_secs(15 * 60)),
            radius: 1,
            t_retry: SimDuration::from_secs(10),
            n_retry: 3,
            max_clients: 10_000,
            max_topics_per_client: 64,
            max_topic_len: 256,
            max_buffered: 20,
            max_queued: 100,
            max_subscriptions_per_client: 32,
            max_retained_bytes: 16 << 20,
            predefined: Vec::new(),
            upstream: mqtt::ClientConfig::new("mqttsn-gw"),
            keep_alive_factor: 1.5,
        }
    }
}

/// An upstream MQTT connection as the driver names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upstream(pub u32);

/// The gateway's input.
#[derive(Clone, Copy, Debug)]
pub enum GatewayInput<'a> {
    Datagram(Datagram<'a>),
    Upstream {
        conn: Upstream,
        event: StreamInput<'a>,
    },
}

/// What `poll_transmit` wrote into the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayTransmit {
    /// A datagram. `kind` is the MQTT-SN type (the inner type when
    /// `encapsulated`, i.e. sent to a forwarder).
    Udp {
        to: SockAddr,
        len: usize,
        kind: MsgType,
        encapsulated: bool,
        retransmission: bool,
    },
    /// One MQTT packet for upstream connection `conn`.
    Mqtt {
        conn: Upstream,
        len: usize,
        kind: PacketType,
    },
}

/// Why a client's session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientGone {
    /// DISCONNECT.
    Disconnect,
    /// Silent for `keep_alive_factor` × keep alive (§6.11).
    KeepAliveTimeout,
    /// Asleep past `keep_alive_factor` × its sleep Duration (§6.14).
    SleepTimeout,
    /// Its upstream MQTT connection failed or was refused.
    UpstreamLost,
    /// A CONNECT with its ClientId from another address.
    TakenOver,
}

impl ClientGone {
    fn publishes_will(self) -> bool {
        !matches!(self, ClientGone::Disconnect | ClientGone::TakenOver)
    }
}

/// What the gateway tells its driver and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayEvent {
    /// Driver: open a TCP connection to the broker for `conn`.
    OpenUpstream {
        conn: Upstream,
    },
    /// Driver: close `conn` after sending what `poll_transmit` returned.
    CloseUpstream {
        conn: Upstream,
    },
    ClientConnected {
        client: SockAddr,
        client_id: Arc<str>,
    },
    ClientDisconnected {
        client: SockAddr,
        client_id: Arc<str>,
        reason: ClientGone,
    },
    ClientAsleep {
        client: SockAddr,
    },
    ClientAwake {
        client: SockAddr,
    },
    /// A PUBLISH accepted from a client (QoS 2 DUPs excluded).
    Published {
        client: SockAddr,
        topic: TopicName,
        qos: Qos,
    },
    WillPublished {
        client_id: Arc<str>,
        topic: TopicName,
    },
    /// A message was buffered for a sleeping client or dropped (per-message
    /// accounting; [`GatewayStats`] counts the same in sum). `client` is
    /// the client it came from or was for.
    Fate {
        client: Option<SockAddr>,
        payload: Arc<[u8]>,
        fate: Fate,
    },
}

/// What became of a message at the gateway ([`GatewayEvent::Fate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Buffered for a sleeping client (`buffered_asleep`).
    BufferedAsleep,
    /// A sleeping client's buffer was full (`dropped_asleep`).
    DroppedAsleep,
    /// An active client's queue was full (`dropped_queue_full`).
    DroppedQueueFull,
    /// Abandoned after N_RETRY retransmissions to the client (`give_ups`).
    GaveUp,
    /// Dropped otherwise (`dropped`): unknown topic id, topic registry
    /// full, REGISTER refused, no upstream.
    Dropped,
}

/// Gateway counters. Gauges say "now".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Gauge: clients with a session (active, asleep, awake, or waiting
    /// for the broker).
    pub clients: u64,
    /// Gauge: clients asleep.
    pub clients_asleep: u64,
    pub connects: u64,
    pub connects_refused: u64,
    /// Topic ids assigned on a client's REGISTER.
    pub registrations: u64,
    /// Topic names or filters refused as longer than
    /// `GatewayConfig::max_topic_len` (REGISTER, SUBSCRIBE, will topic).
    pub topics_too_long: u64,
    /// Gauge (integrated mode): bytes of retained messages kept (topic
    /// names and payloads), at most `GatewayConfig::max_retained_bytes`.
    pub retained_bytes: u64,
    /// Integrated mode: retained messages not kept, the store being full.
    pub retained_dropped: u64,
    /// REGISTERs sent to clients (first transmissions).
    pub registers_sent: u64,
    pub publishes_received: u64,
    pub publishes_delivered: u64,
    pub duplicates_suppressed: u64,
    /// Messages buffered for sleeping clients.
    pub buffered_asleep: u64,
    /// Messages dropped because a sleeping client's buffer was full.
    pub dropped_asleep: u64,
    /// Messages dropped because an active client's queue was full.
    pub dropped_queue_full: u64,
    /// Messages dropped otherwise (unknown topic id, registry full, no
    /// upstream for QoS −1 in transparent mode).
    pub dropped: u64,
    /// Messages to clients abandoned after N_RETRY retransmissions.
    pub give_ups: u64,
    pub retransmissions: u64,
    pub upstream_opened: u64,
    /// Gauge: upstream connections held.
    pub upstream_open: u64,
    pub wills_published: u64,
    pub keep_alive_timeouts: u64,
    pub sleep_timeouts: u64,
    pub decode_errors: u64,
    /// Datagrams ignored (unknown client, unexpected message).
    pub ignored: u64,
    pub advertises_sent: u64,
    pub sent_by_type: TypeCounters,
    pub bytes_sent_by_type: TypeCounters,
    pub received_by_type: TypeCounters,
    pub bytes_received_by_type: TypeCounters,
    /// MQTT packets sent upstream, by `PacketType::index()`.
    pub mqtt_sent_by_type: [u64; 14],
    pub mqtt_bytes_sent: u64,
}

type Idx = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitWillTopic,
    AwaitWillMsg,
    /// Waiting for the upstream CONNACK (transparent, or aggregating before
    /// the shared connection is up).
    AwaitUpstream,
    Active,
    Asleep,
    Awake,
    /// A persistent (CleanSession = 0) session without a connection.
    Disconnected,
}

#[derive(Clone, Debug)]
struct SnWill {
    topic: TopicName,
    msg: Arc<[u8]>,
    qos: Qos,
    retain: bool,
}

#[derive(Clone, Debug)]
struct TopicEntry {
    id: u16,
    name: TopicName,
    /// The client knows the id (it registered it, got it in SUBACK, or
    /// acknowledged our REGISTER).
    known: bool,
}

#[derive(Clone, Debug)]
struct Down {
    topic: TopicName,
    payload: Arc<[u8]>,
    qos: Qos,
    retain: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DownStage {
    Register { topic_id: u16 },
    AwaitAck,
    AwaitRec,
    AwaitComp,
}

#[derive(Clone, Debug)]
struct DownTx {
    msg: Down,
    topic: TopicRef,
    msg_id: u16,
    stage: DownStage,
    retries: u32,
    deadline: SimTime,
}

/// One MQTT-SN client's state.
#[derive(Debug)]
struct Sn {
    addr: SockAddr,
    /// The forwarder it speaks through (§5.5).
    via: Option<SockAddr>,
    client_id: Arc<str>,
    phase: Phase,
    clean: bool,
    keep_alive: u16,
    sleep: u16,
    last_rx: SimTime,
    /// Boxed (as the pending will topic): most sessions have none, and a
    /// gateway holds thousands of sessions.
    will: Option<Box<SnWill>>,
    pending_will_topic: Option<Box<(TopicName, Qos, bool)>>,
    topics: Vec<TopicEntry>,
    /// What it has only while it subscribes or is sent to (see
    /// [`Downlink`]).
    dl: Option<Box<Downlink>>,
    upstream: Option<u32>,
    next_topic_id: u16,
    next_msg_id: u16,
}

/// A session's downlink and exactly-once state, boxed: most sessions of a
/// sensor fleet only publish (at QoS 0 or 1), and these fields would be
/// 88 bytes of each of thousands of sessions (mqttsn-10k: 10,000).
/// Allocated when first needed and kept.
#[derive(Debug, Default)]
struct Downlink {
    subs: Vec<(TopicFilter, Qos)>,
    /// QoS 2 PUBLISH msg ids received and not yet released (PUBREL).
    incoming_qos2: Vec<u16>,
    /// Messages for the client, waiting (or buffered while it sleeps).
    down: VecDeque<Down>,
    /// Boxed: only clients that subscribe ever have one.
    inflight: Option<Box<DownTx>>,
}

impl Sn {
    fn dl(&mut self) -> &mut Downlink {
        self.dl.get_or_insert_with(Default::default)
    }
    fn dl_ref(&self) -> Option<&Downlink> {
        self.dl.as_deref()
    }
    fn dl_mut(&mut self) -> Option<&mut Downlink> {
        self.dl.as_deref_mut()
    }
    fn subs(&self) -> &[(TopicFilter, Qos)] {
        self.dl_ref().map_or(&[], |d| &d.subs)
    }
    fn down_len(&self) -> usize {
        self.dl_ref().map_or(0, |d| d.down.len())
    }
    fn pop_down(&mut self) -> Option<Down> {
        self.dl_mut().and_then(|d| d.down.pop_front())
    }
    fn take_inflight(&mut self) -> Option<Box<DownTx>> {
        self.dl_mut().and_then(|d| d.inflight.take())
    }
    fn inflight(&self) -> Option<&DownTx> {
        self.dl_ref().and_then(|d| d.inflight.as_deref())
    }
    fn topic_by_id(&self, id: u16) -> Option<&TopicName> {
        self.topics.iter().find(|t| t.id == id).map(|t| &t.name)
    }
    fn alloc_msg_id(&mut self) -> u16 {
        self.next_msg_id = self.next_msg_id.wrapping_add(1).max(1);
        self.next_msg_id
    }
}

#[derive(Debug)]
struct Up {
    client: mqtt::Client,
    /// The MQTT-SN client it serves (transparent); `None` for the shared one.
    owner: Option<Idx>,
    armed: Option<SimTime>,
    closing: bool,
    /// Transparent, its client gone: DISCONNECT once the publishes it
    /// still carries are acknowledged, at the latest at this time.
    drain_until: Option<SimTime>,
    /// The departed client's address, for the fate of what is dropped.
    drained_for: Option<SockAddr>,
    /// What it carried is already counted as dropped (lost, then timed out).
    carried_dropped: bool,
}

#[derive(Debug, Clone)]
struct PendingSub {
    conn: u32,
    handle: mqtt::RequestHandle,
    client: Idx,
    msg_id: u16,
    topic_id: u16,
    qos: Qos,
}

#[derive(Debug, Clone)]
enum GwMsg {
    Advertise,
    GwInfo,
    ConnAck(ReturnCode),
    WillTopicReq,
    WillMsgReq,
    Register {
        topic_id: u16,
        msg_id: u16,
        name: TopicName,
    },
    RegAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    Publish {
        dup: bool,
        qos: Qos,
        retain: bool,
        topic: TopicRef,
        msg_id: u16,
        data: Arc<[u8]>,
    },
    PubAck {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    SubAck {
        qos: Qos,
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    UnsubAck(u16),
    PingResp,
    Disconnect,
    WillTopicResp(ReturnCode),
    WillMsgResp(ReturnCode),
}

#[derive(Debug, Clone)]
struct GwOut {
    to: SockAddr,
    via: Option<SockAddr>,
    msg: GwMsg,
    retransmission: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Supervise = 0,
    Retry = 1,
}

/// The gateway.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    /// The predefined table as shared topic names (no allocation per
    /// message); entries that are not valid topic names are left out.
    predefined: Vec<(u16, TopicName)>,
    rng: SimRng,
    clients: Vec<Option<Sn>>,
    free: Vec<Idx>,
    by_addr: BTreeMap<SockAddr, Idx>,
    by_id: BTreeMap<Arc<str>, Idx>,
    timers: BTreeSet<(SimTime, Idx, TimerKind)>,
    next_adv: Option<SimTime>,
    ups: BTreeMap<u32, Up>,
    up_timers: BTreeSet<(SimTime, u32)>,
    next_conn: u32,
    /// The aggregating connection.
    shared: Option<u32>,
    shared_ready: bool,
    /// Aggregating: upstream filter → (granted QoS asked, clients using it).
    agg_subs: BTreeMap<TopicFilter, (Qos, u32)>,
    /// Aggregating / integrated: local routing table.
    local_subs: BTreeMap<TopicFilter, Vec<(Idx, Qos)>>,
    retained: BTreeMap<TopicName, (Arc<[u8]>, Qos)>,
    pending_subs: Vec<PendingSub>,
    dirty: BTreeSet<u32>,
    outq: VecDeque<GwOut>,
    events: VecDeque<GatewayEvent>,
    scratch: Vec<(Idx, Qos)>,
    stats: GatewayStats,
}

/// Publishes an upstream MQTT client still has to deliver (in flight or
/// waiting for the window); packets merely queued go out before a
/// DISCONNECT anyway.
fn carries(c: &mqtt::Client) -> bool {
    c.inflight_len() > 0 || c.queued_len() > 0
}

fn factor(d: SimDuration, f: f64) -> SimDuration {
    SimDuration::from_nanos((d.as_nanos() as f64 * f.max(1.0)) as u64)
}

impl Gateway {
    /// A gateway; call [`Gateway::start`] to begin advertising. `rng` seeds
    /// the upstream MQTT clients' streams (their reconnect jitter).
    pub fn new(config: GatewayConfig, rng: SimRng) -> Self {
        let predefined = config
            .predefined
            .iter()
            .filter_map(|(id, n)| Some((*id, TopicName::new(n).ok()?)))
            .collect();
        Gateway {
            config,
            predefined,
            rng,
            clients: Vec::new(),
            free: Vec::new(),
            by_addr: BTreeMap::new(),
            by_id: BTreeMap::new(),
            timers: BTreeSet::new(),
            next_adv: None,
            ups: BTreeMap::new(),
            up_timers: BTreeSet::new(),
            next_conn: 0,
            shared: None,
            shared_ready: false,
            agg_subs: BTreeMap::new(),
            local_subs: BTreeMap::new(),
            retained: BTreeMap::new(),
            pending_subs: Vec::new(),
            dirty: BTreeSet::new(),
            outq: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
            stats: GatewayStats::default(),
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }
    /// Upstream connections held now.
    pub fn upstream_count(&self) -> usize {
        self.ups.len()
    }
    /// Clients with a session.
    pub fn client_count(&self) -> usize {
        self.by_addr.len()
    }
    /// The MQTT-SN client a transparent upstream connection serves
    /// (`None` for the aggregating one or an unknown connection).
    pub fn upstream_owner(&self, conn: Upstream) -> Option<SockAddr> {
        let i = self.ups.get(&conn.0)?.owner?;
        self.sn(i).map(|s| s.addr)
    }

    fn fate(&mut self, client: Option<SockAddr>, payload: Arc<[u8]>, fate: Fate) {
        match fate {
            Fate::BufferedAsleep => self.stats.buffered_asleep += 1,
            Fate::DroppedAsleep => self.stats.dropped_asleep += 1,
            Fate::DroppedQueueFull => self.stats.dropped_queue_full += 1,
            Fate::GaveUp => self.stats.give_ups += 1,
            Fate::Dropped => self.stats.dropped += 1,
        }
        self.events.push_back(GatewayEvent::Fate {
            client,
            payload,
            fate,
        });
    }

    /// The ClientId of the client at `addr`.
    pub fn client_id(&self, addr: SockAddr) -> Option<&str> {
        let i = *self.by_addr.get(&addr)?;
        self.sn(i).map(|s| &*s.client_id)
    }
    /// Messages buffered or queued for the client at `addr`.
    pub fn queued_for(&self, addr: SockAddr) -> Option<usize> {
        let i = *self.by_addr.get(&addr)?;
        self.sn(i).map(Sn::down_len)
    }
    /// True when the client at `addr` is asleep.
    pub fn is_asleep(&self, addr: SockAddr) -> bool {
        self.by_addr
            .get(&addr)
            .and_then(|&i| self.sn(i))
            .is_some_and(|s| s.phase == Phase::Asleep)
    }

    fn sn(&self, i: Idx) -> Option<&Sn> {
        self.clients.get(i as usize)?.as_ref()
    }
    fn sn_mut(&mut self, i: Idx) -> Option<&mut Sn> {
        self.clients.get_mut(i as usize)?.as_mut()
    }

    /// Start advertising (first ADVERTISE now, then every T_ADV, §6.1).
    pub fn start(&mut self, now: SimTime) {
        if self.config.t_adv.is_some() {
            self.next_adv = Some(now);
            self.handle_timeout_adv(now);
        }
    }

    /// The driver is stopping: every upstream MQTT connection is closed
    /// gracefully (MQTT DISCONNECT from `poll_transmit`, then
    /// [`GatewayEvent::CloseUpstream`]), the aggregating one is not
    /// reconnected, advertising stops. Clients keep their records; a later
    /// CONNECT opens upstream connections again.
    pub fn shutdown(&mut self, now: SimTime) {
        self.next_adv = None;
        self.shared = None;
        self.shared_ready = false;
        let ks: Vec<u32> = self.ups.keys().copied().collect();
        for k in ks {
            if let Some(i) = self.ups.get(&k).and_then(|u| u.owner) {
                if let Some(s) = self.sn_mut(i) {
                    s.upstream = None;
                }
            }
            self.close_up(now, k);
            // A connection waiting to reconnect has no transport to close.
            if self.ups.get(&k).is_some_and(|u| !u.closing) {
                self.ups.remove(&k);
                self.forget_up(k);
            }
        }
    }

    fn handle_timeout_adv(&mut self, now: SimTime) {
        if let (Some(t), Some(period)) = (self.next_adv, self.config.t_adv) {
            if t <= now {
                self.stats.advertises_sent += 1;
                self.outq.push_back(GwOut {
                    to: broadcast(self.config.port),
                    via: None,
                    msg: GwMsg::Advertise,
                    retransmission: false,
                });
                self.next_adv = Some(now + period.max(SimDuration::from_secs(1)));
            }
        }
    }

    fn send(&mut self, i: Idx, msg: GwMsg) {
        if let Some(s) = self.sn(i) {
            let (to, via) = (s.addr, s.via);
            self.outq.push_back(GwOut {
                to,
                via,
                msg,
                retransmission: false,
            });
        }
    }

    fn send_to(&mut self, to: SockAddr, via: Option<SockAddr>, msg: GwMsg) {
        self.outq.push_back(GwOut {
            to,
            via,
            msg,
            retransmission: false,
        });
    }

    fn arm_supervision(&mut self, now: SimTime, i: Idx) {
        if let Some(d) = self.deadline(i) {
            self.timers.insert((d.max(now), i, TimerKind::Supervise));
        }
    }

    /// When the client at `i` is lost if it stays silent.
    fn deadline(&self, i: Idx) -> Option<SimTime> {
        let s = self.sn(i)?;
        let f = self.config.keep_alive_factor;
        match s.phase {
            Phase::Asleep | Phase::Awake => {
                Some(s.last_rx + factor(SimDuration::from_secs(u64::from(s.sleep.max(1))), f))
            }
            Phase::Active if s.keep_alive > 0 => {
                Some(s.last_rx + factor(SimDuration::from_secs(u64::from(s.keep_alive)), f))
            }
            Phase::AwaitWillTopic | Phase::AwaitWillMsg => Some(
                s.last_rx
                    + self
                        .config
                        .t_retry
                        .saturating_mul(u64::from(self.config.n_retry) + 1),
            ),
            _ => None,
        }
    }

    fn on_datagram(&mut self, now: SimTime, from: SockAddr, data: &[u8]) {
        let m = match codec::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        self.count_rx(m.msg_type(), data.len());
        if let Message::Encapsulated { node_id, inner, .. } = m {
            // MQTT-SN 1.2 §5.5: a forwarder relays a client's message.
            let Some(client) = sockaddr_from_bytes(node_id) else {
                self.stats.ignored += 1;
                return;
            };
            match codec::decode(inner) {
                Ok(im) => {
                    self.count_rx(im.msg_type(), inner.len());
                    self.on_message(now, client, Some(from), im);
                }
                Err(_) => self.stats.decode_errors += 1,
            }
            return;
        }
        self.on_message(now, from, None, m);
    }

    fn count_rx(&mut self, ty: MsgType, len: usize) {
        let i = ty.index();
        if let Some(x) = self.stats.received_by_type.get_mut(i) {
            *x += 1;
        }
        if let Some(x) = self.stats.bytes_received_by_type.get_mut(i) {
            *x += len as u64;
        }
    }

    fn on_message(&mut self, now: SimTime, from: SockAddr, via: Option<SockAddr>, m: Message<'_>) {
        match m {
            Message::SearchGw { .. } => {
                // MQTT-SN 1.2 §6.1: answer with GWINFO (broadcast, or to the
                // node through its forwarder).
                let to = if via.is_some() {
                    from
                } else {
                    broadcast(self.config.port)
                };
                self.send_to(to, via, GwMsg::GwInfo);
                return;
            }
            Message::Advertise { .. } | Message::GwInfo { .. } => return,
            Message::Connect {
                will,
                clean_session,
                duration,
                client_id,
            } => {
                self.on_connect(now, from, via, will, clean_session, duration, client_id);
                return;
            }
            Message::Publish {
                qos: Qos::MinusOne,
                topic,
                data,
                retain,
                ..
            } => {
                // MQTT-SN 1.2 §6.8: QoS −1 needs no connection.
                let idx = self.by_addr.get(&from).copied();
                self.publish_minus_one(now, idx, from, topic, data, retain);
                return;
            }
            Message::PingReq {
                client_id: Some(cid),
            } => {
                if let Some(&i) = self.by_id.get(cid) {
                    if self.sn(i).is_some_and(|s| s.addr == from) {
                        self.touch(now, i);
                        self.wake(now, i);
                        return;
                    }
                }
                self.stats.ignored += 1;
                return;
            }
            _ => {}
        }
        let Some(&i) = self.by_addr.get(&from) else {
            self.stats.ignored += 1;
            return;
        };
        if let Some(s) = self.sn_mut(i) {
            if via.is_some() {
                s.via = via;
            }
        }
        self.touch(now, i);
        let phase = self.sn(i).map_or(Phase::Disconnected, |s| s.phase);
        match m {
            Message::WillTopic(w) if phase == Phase::AwaitWillTopic => match w {
                Some(w) => match self.topic_name(w.topic) {
                    Some(t) => {
                        if let Some(s) = self.sn_mut(i) {
                            s.pending_will_topic = Some(Box::new((t, w.qos, w.retain)));
                            s.phase = Phase::AwaitWillMsg;
                        }
                        self.send(i, GwMsg::WillMsgReq);
                    }
                    None => self.refuse(i, ReturnCode::NotSupported),
                },
                None => {
                    // MQTT-SN 1.2 §5.4.7: the empty WILLTOPIC: no will.
                    if let Some(s) = self.sn_mut(i) {
                        s.will = None;
                    }
                    self.accept(now, i);
                }
            },
            Message::WillTopic(_) if phase == Phase::AwaitWillMsg => {
                self.send(i, GwMsg::WillMsgReq); // our WILLMSGREQ was lost
            }
            Message::WillMsg { msg } if phase == Phase::AwaitWillMsg => {
                if let Some(s) = self.sn_mut(i) {
                    if let Some((topic, qos, retain)) = s.pending_will_topic.take().map(|b| *b) {
                        s.will = Some(Box::new(SnWill {
                            topic,
                            msg: Arc::from(msg),
                            qos,
                            retain,
                        }));
                    }
                }
                self.accept(now, i);
            }
            Message::WillMsg { .. } if phase == Phase::Active => {
                self.send(i, GwMsg::ConnAck(ReturnCode::Accepted)); // CONNACK lost
            }
            _ if matches!(
                phase,
                Phase::AwaitWillTopic | Phase::AwaitWillMsg | Phase::Disconnected
            ) =>
            {
                self.stats.ignored += 1
            }
            Message::Register {
                msg_id, topic_name, ..
            } => self.on_register(i, msg_id, topic_name),
            Message::RegAck {
                topic_id,
                msg_id,
                code,
            } => self.on_regack(now, i, topic_id, msg_id, code),
            Message::Publish {
                dup: _,
                qos,
                retain,
                topic,
                msg_id,
                data,
            } => self.on_publish(now, i, qos, retain, topic, msg_id, data),
            Message::PubRel { msg_id } => {
                if let Some(s) = self.sn_mut(i) {
                    if let Some(d) = s.dl_mut() {
                        d.incoming_qos2.retain(|&x| x != msg_id);
                    }
                }
                self.send(i, GwMsg::PubComp(msg_id));
            }
            Message::PubAck { msg_id, code, .. } => self.on_down_ack(now, i, msg_id, Some(code)),
            Message::PubRec { msg_id } => {
                let mut rel = false;
                let t_retry = self.config.t_retry;
                if let Some(tx) = self.sn_mut(i).and_then(|s| s.dl_mut()?.inflight.as_mut()) {
                    if tx.msg_id == msg_id
                        && matches!(tx.stage, DownStage::AwaitRec | DownStage::AwaitComp)
                    {
                        tx.stage = DownStage::AwaitComp;
                        tx.retries = 0;
                        tx.deadline = now + t_retry;
                        rel = true;
                    }
                }
                if rel {
                    self.send(i, GwMsg::PubRel(msg_id));
                    self.arm_retry(i);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Message::PubComp { msg_id } => self.on_down_ack(now, i, msg_id, None),
            Message::Subscribe {
                qos, msg_id, topic, ..
            } => self.on_subscribe(now, i, qos, msg_id, topic),
            Message::Unsubscribe { msg_id, topic } => self.on_unsubscribe(now, i, msg_id, topic),
            Message::PingReq { client_id: None } => self.send(i, GwMsg::PingResp),
            Message::Disconnect { duration } => self.on_disconnect(now, i, duration),
            Message::WillTopicUpd(w) => {
                // MQTT-SN 1.2 §6.4.
                let code = match w {
                    None => {
                        if let Some(s) = self.sn_mut(i) {
                            s.will = None;
                        }
                        ReturnCode::Accepted
                    }
                    Some(WillTopic { qos, retain, topic }) => match self.topic_name(topic) {
                        Some(t) => {
                            if let Some(s) = self.sn_mut(i) {
                                let msg = s
                                    .will
                                    .as_ref()
                                    .map_or_else(|| Arc::from(&[][..]), |w| w.msg.clone());
                                s.will = Some(Box::new(SnWill {
                                    topic: t,
                                    msg,
                                    qos,
                                    retain,
                                }));
                            }
                            ReturnCode::Accepted
                        }
                        None => ReturnCode::NotSupported,
                    },
                };
                self.send(i, GwMsg::WillTopicResp(code));
            }
            Message::WillMsgUpd { msg } => {
                let code = match self.sn_mut(i).and_then(|s| s.will.as_deref_mut()) {
                    Some(w) => {
                        w.msg = Arc::from(msg);
                        ReturnCode::Accepted
                    }
                    None => ReturnCode::NotSupported,
                };
                self.send(i, GwMsg::WillMsgResp(code));
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn touch(&mut self, now: SimTime, i: Idx) {
        if let Some(s) = self.sn_mut(i) {
            s.last_rx = now;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_connect(
        &mut self,
        now: SimTime,
        from: SockAddr,
        via: Option<SockAddr>,
        will: bool,
        clean: bool,
        duration: u16,
        client_id: &str,
    ) {
        // A ClientId now used from another address: the old session ends.
        if let Some(&old) = self.by_id.get(client_id) {
            if self.sn(old).is_some_and(|s| s.addr != from) {
                self.remove_client(now, old, ClientGone::TakenOver, true);
            }
        }
        let i = match self.by_addr.get(&from) {
            Some(&i) => {
                // Same client again (a retransmitted CONNECT, or a reconnect).
                if self.sn(i).is_some_and(|s| *s.client_id != *client_id) {
                    self.remove_client(now, i, ClientGone::TakenOver, true);
                    None
                } else {
                    Some(i)
                }
            }
            None => None,
        };
        let i = match i {
            Some(i) => i,
            None => {
                if self.by_addr.len() >= self.config.max_clients {
                    // MQTT-SN 1.2 §5.3.10: rejected, congestion.
                    self.stats.connects_refused += 1;
                    self.send_to(from, via, GwMsg::ConnAck(ReturnCode::Congestion));
                    return;
                }
                let sn = Sn {
                    addr: from,
                    via,
                    client_id: Arc::from(client_id),
                    phase: Phase::Active,
                    clean,
                    keep_alive: duration,
                    sleep: 0,
                    last_rx: now,
                    will: None,
                    pending_will_topic: None,
                    topics: Vec::new(),
                    dl: None,
                    upstream: None,
                    next_topic_id: 0,
                    next_msg_id: 0,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.clients.get_mut(i as usize) {
                            *slot = Some(sn);
                        }
                        i
                    }
                    None => {
                        self.clients.push(Some(sn));
                        (self.clients.len() - 1) as Idx
                    }
                };
                self.by_addr.insert(from, i);
                self.by_id.insert(Arc::from(client_id), i);
                self.stats.clients += 1;
                i
            }
        };
        let was_asleep = self.sn(i).is_some_and(|s| s.phase == Phase::Asleep);
        if was_asleep {
            self.stats.clients_asleep = self.stats.clients_asleep.saturating_sub(1);
        }
        if clean {
            // MQTT-SN 1.2 §6.3: CleanSession deletes subscriptions, topic
            // registrations and the will.
            self.drop_subscriptions(now, i);
            if let Some(s) = self.sn_mut(i) {
                s.topics.clear();
                if let Some(d) = s.dl_mut() {
                    d.incoming_qos2.clear();
                }
                s.will = None;
            }
        }
        if let Some(s) = self.sn_mut(i) {
            s.via = via;
            s.clean = clean;
            s.keep_alive = duration;
            s.last_rx = now;
            s.sleep = 0;
            if will {
                // §6.3: a new will is asked for whatever CleanSession says.
                s.will = None;
            }
        }
        if will {
            // MQTT-SN 1.2 §6.2: the will dialogue.
            if let Some(s) = self.sn_mut(i) {
                s.phase = Phase::AwaitWillTopic;
            }
            self.send(i, GwMsg::WillTopicReq);
            self.arm_supervision(now, i);
            return;
        }
        self.accept(now, i);
    }

    /// CONNECT (and will dialogue) done: CONNACK now, or once the broker
    /// accepted the upstream connection.
    fn accept(&mut self, now: SimTime, i: Idx) {
        match self.config.mode {
            GatewayMode::Integrated => self.connack(now, i),
            GatewayMode::Aggregating => {
                self.ensure_shared(now);
                if self.shared_ready {
                    self.connack(now, i);
                } else if let Some(s) = self.sn_mut(i) {
                    s.phase = Phase::AwaitUpstream;
                }
            }
            GatewayMode::Transparent => {
                let up = self.sn(i).and_then(|s| s.upstream);
                match up.and_then(|k| self.ups.get(&k)) {
                    Some(u) if u.client.is_connected() => self.connack(now, i),
                    Some(_) => {
                        if let Some(s) = self.sn_mut(i) {
                            s.phase = Phase::AwaitUpstream;
                        }
                    }
                    None => {
                        let Some(s) = self.sn(i) else { return };
                        let mut cfg = self.config.upstream.clone();
                        cfg.client_id = s.client_id.to_string();
                        cfg.clean_session = s.clean;
                        cfg.will = None;
                        cfg.reconnect = None;
                        let k = self.open_upstream(now, cfg, Some(i));
                        if let Some(s) = self.sn_mut(i) {
                            s.upstream = Some(k);
                            s.phase = Phase::AwaitUpstream;
                        }
                    }
                }
            }
        }
    }

    fn connack(&mut self, now: SimTime, i: Idx) {
        let Some(s) = self.sn_mut(i) else { return };
        s.phase = Phase::Active;
        let (addr, client_id) = (s.addr, s.client_id.clone());
        self.stats.connects += 1;
        self.send(i, GwMsg::ConnAck(ReturnCode::Accepted));
        self.events.push_back(GatewayEvent::ClientConnected {
            client: addr,
            client_id,
        });
        self.arm_supervision(now, i);
        self.pump_down(now, i);
    }

    fn refuse(&mut self, i: Idx, code: ReturnCode) {
        self.stats.connects_refused += 1;
        self.send(i, GwMsg::ConnAck(code));
        let Some(s) = self.clients.get_mut(i as usize).and_then(|s| s.take()) else {
            return;
        };
        self.by_addr.remove(&s.addr);
        self.by_id.remove(&s.client_id);
        self.free.push(i);
        self.stats.clients = self.stats.clients.saturating_sub(1);
    }

    fn open_upstream(&mut self, now: SimTime, cfg: mqtt::ClientConfig, owner: Option<Idx>) -> u32 {
        let k = self.next_conn;
        self.next_conn = self.next_conn.wrapping_add(1);
        let rng = SimRng::from_id(self.rng.next_u64(), u64::from(k));
        let mut client = mqtt::Client::new(cfg, rng);
        client.connect();
        self.ups.insert(
            k,
            Up {
                client,
                owner,
                armed: None,
                closing: false,
                drain_until: None,
                drained_for: None,
                carried_dropped: false,
            },
        );
        self.stats.upstream_opened += 1;
        self.stats.upstream_open = self.ups.len() as u64;
        self.drive_up(now, k);
        k
    }

    fn ensure_shared(&mut self, now: SimTime) {
        if self.shared.is_none() {
            let cfg = self.config.upstream.clone();
            let k = self.open_upstream(now, cfg, None);
            self.shared = Some(k);
        }
    }

    /// After any call into upstream client `k`: take its events, re-arm
    /// its timer, mark it for `poll_transmit`.
    fn drive_up(&mut self, now: SimTime, k: u32) {
        self.dirty.insert(k);
        while let Some(ev) = self.ups.get_mut(&k).and_then(|u| u.client.poll_event()) {
            self.on_up_event(now, k, ev);
        }
        let drained = self
            .ups
            .get(&k)
            .is_some_and(|u| u.drain_until.is_some() && !carries(&u.client));
        if drained {
            self.close_up(now, k);
        }
        self.rearm_up(k);
    }

    fn rearm_up(&mut self, k: u32) {
        let Some(u) = self.ups.get_mut(&k) else {
            return;
        };
        let t = match (u.client.poll_timeout(), u.drain_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if u.armed != t {
            if let Some(old) = u.armed {
                self.up_timers.remove(&(old, k));
            }
            if let Some(t) = t {
                self.up_timers.insert((t, k));
            }
            u.armed = t;
        }
    }

    fn on_up_event(&mut self, now: SimTime, k: u32, ev: MqttEvent) {
        let owner = self.ups.get(&k).and_then(|u| u.owner);
        if self.ups.get(&k).is_some_and(|u| u.drain_until.is_some()) {
            // A departed client's connection finishing its publishes:
            // nothing for clients any more; lost, it is forgotten.
            match ev {
                MqttEvent::CloseTransport => {
                    if let Some(u) = self.ups.get_mut(&k) {
                        u.closing = true;
                    }
                    self.events
                        .push_back(GatewayEvent::CloseUpstream { conn: Upstream(k) });
                }
                MqttEvent::ConnectionLost { .. } => {
                    self.drop_carried(k);
                    if self.ups.get(&k).is_some_and(|u| !u.closing) {
                        self.ups.remove(&k);
                        self.forget_up(k);
                    }
                }
                _ => {}
            }
            return;
        }
        match ev {
            MqttEvent::OpenTransport => self
                .events
                .push_back(GatewayEvent::OpenUpstream { conn: Upstream(k) }),
            MqttEvent::CloseTransport => {
                if let Some(u) = self.ups.get_mut(&k) {
                    u.closing = true;
                }
                self.events
                    .push_back(GatewayEvent::CloseUpstream { conn: Upstream(k) });
            }
            MqttEvent::Connected { session_present } => match owner {
                Some(i) => {
                    if self.sn(i).is_some_and(|s| s.phase == Phase::AwaitUpstream) {
                        self.connack(now, i);
                    }
                }
                None => {
                    self.shared_ready = true;
                    if !session_present {
                        let filters: Vec<(TopicFilter, MqttQoS)> = self
                            .agg_subs
                            .iter()
                            .map(|(f, (q, _))| (f.clone(), q.to_mqtt()))
                            .collect();
                        if !filters.is_empty() {
                            if let Some(u) = self.ups.get_mut(&k) {
                                let _ = u.client.subscribe(now, filters);
                            }
                        }
                    }
                    let waiting: Vec<Idx> = self
                        .by_addr
                        .values()
                        .copied()
                        .filter(|&i| self.sn(i).is_some_and(|s| s.phase == Phase::AwaitUpstream))
                        .collect();
                    for i in waiting {
                        self.connack(now, i);
                    }
                }
            },
            MqttEvent::ConnectRefused(_) => {
                if let Some(i) = owner {
                    if let Some(u) = self.ups.get_mut(&k) {
                        u.owner = None;
                    }
                    if let Some(s) = self.sn_mut(i) {
                        s.upstream = None;
                    }
                    self.refuse(i, ReturnCode::Congestion);
                    self.close_up(now, k);
                }
            }
            MqttEvent::ConnectionLost { reconnect_at, .. } => match owner {
                Some(i) => {
                    if let Some(u) = self.ups.get_mut(&k) {
                        u.owner = None;
                    }
                    if let Some(s) = self.sn_mut(i) {
                        s.upstream = None;
                    }
                    self.ups.remove(&k);
                    self.forget_up(k);
                    let phase = self.sn(i).map(|s| s.phase);
                    if phase == Some(Phase::AwaitUpstream) {
                        self.refuse(i, ReturnCode::Congestion);
                    } else {
                        self.send(i, GwMsg::Disconnect);
                        self.remove_client(now, i, ClientGone::UpstreamLost, false);
                    }
                }
                None => {
                    self.shared_ready = false;
                    match reconnect_at {
                        None => {
                            self.ups.remove(&k);
                            self.forget_up(k);
                            self.shared = None;
                        }
                        // It reconnects (OpenUpstream again, same id): the
                        // transport it asked to close (a CONNACK or PINGRESP
                        // timeout) goes, the connection stays.
                        Some(_) => {
                            if let Some(u) = self.ups.get_mut(&k) {
                                u.closing = false;
                            }
                        }
                    }
                }
            },
            MqttEvent::Message {
                topic,
                payload,
                qos,
                retain,
                ..
            } => {
                let qos = Qos::from_mqtt(qos);
                match owner {
                    Some(i) => self.enqueue_down(now, i, topic, payload, qos, retain),
                    None => self.route_local(now, &topic, &payload, qos, retain),
                }
            }
            MqttEvent::Subscribed { handle, codes } => {
                let granted = codes.first().copied();
                let mut j = 0;
                while j < self.pending_subs.len() {
                    let p = &self.pending_subs[j];
                    if p.conn == k && p.handle == handle {
                        let p = self.pending_subs.swap_remove(j);
                        let (qos, code) = match granted {
                            Some(SubAckReturn::Success(q)) => {
                                (p.qos.min(Qos::from_mqtt(q)), ReturnCode::Accepted)
                            }
                            _ => (p.qos, ReturnCode::NotSupported),
                        };
                        self.send(
                            p.client,
                            GwMsg::SubAck {
                                qos,
                                topic_id: p.topic_id,
                                msg_id: p.msg_id,
                                code,
                            },
                        );
                    } else {
                        j += 1;
                    }
                }
            }
            MqttEvent::PublishAcked { .. }
            | MqttEvent::Unsubscribed { .. }
            | MqttEvent::Disconnected => {}
            // raised by MQTT 5.0 clients only; the upstream clients speak 3.1.1
            MqttEvent::ConnectRefused5 { .. }
            | MqttEvent::Message5 { .. }
            | MqttEvent::PublishFailed { .. }
            | MqttEvent::PublishDropped { .. }
            | MqttEvent::Subscribed5 { .. }
            | MqttEvent::Unsubscribed5 { .. } => {}
        }
    }

    fn forget_up(&mut self, k: u32) {
        self.up_timers.retain(|(_, c)| *c != k);
        self.dirty.remove(&k);
        self.pending_subs.retain(|p| p.conn != k);
        self.stats.upstream_open = self.ups.len() as u64;
    }

    /// Close upstream `k` gracefully (DISCONNECT, then `CloseUpstream`).
    fn close_up(&mut self, now: SimTime, k: u32) {
        if let Some(u) = self.ups.get_mut(&k) {
            u.owner = None;
            u.drain_until = None;
            u.client.disconnect();
        }
        self.drive_up(now, k);
    }

    /// A client's own upstream (transparent) after its session ended: close
    /// it once the publishes it carries (the client's last ones, its will)
    /// are acknowledged by the broker, so a QoS 2 publish the gateway has
    /// already completed with PUBCOMP is not dropped with the connection;
    /// at most T_RETRY × (N_RETRY + 1) later.
    fn release_up(&mut self, now: SimTime, k: u32) {
        let limit = self
            .config
            .t_retry
            .saturating_mul(u64::from(self.config.n_retry) + 1);
        let from = self
            .ups
            .get(&k)
            .and_then(|u| u.owner)
            .and_then(|i| self.sn(i))
            .map(|s| s.addr);
        match self.ups.get_mut(&k) {
            Some(u) if u.client.is_connected() && carries(&u.client) => {
                u.owner = None;
                u.drain_until = Some(now + limit);
                u.drained_for = from;
                self.rearm_up(k);
            }
            _ => self.close_up(now, k),
        }
    }

    /// A draining connection failed or ran out of time: what it still
    /// carries is dropped, each with its fate.
    fn drop_carried(&mut self, k: u32) {
        let Some(u) = self.ups.get_mut(&k) else {
            return;
        };
        if std::mem::replace(&mut u.carried_dropped, true) {
            return;
        }
        let from = u.drained_for;
        let lost: Vec<Arc<[u8]>> = u.client.carried_payloads().cloned().collect();
        for payload in lost {
            self.fate(from, payload, Fate::Dropped);
        }
    }

    fn on_upstream(&mut self, now: SimTime, conn: Upstream, ev: StreamInput<'_>) {
        let k = conn.0;
        let Some(u) = self.ups.get_mut(&k) else {
            self.stats.ignored += 1;
            return;
        };
        match ev {
            StreamInput::Closed if u.closing => {
                self.ups.remove(&k);
                self.forget_up(k);
                return;
            }
            input => u.client.handle_input(now, input),
        }
        self.drive_up(now, k);
    }

    fn resolve_from(&self, i: Option<Idx>, t: TopicRef) -> Option<TopicName> {
        match t {
            TopicRef::Normal(id) => i.and_then(|i| self.sn(i)?.topic_by_id(id).cloned()),
            TopicRef::Predefined(id) => self
                .predefined
                .iter()
                .find(|(p, _)| *p == id)
                .map(|(_, n)| n.clone()),
            TopicRef::Short(s) => std::str::from_utf8(&s)
                .ok()
                .and_then(|s| TopicName::new(s).ok()),
        }
    }

    fn publish_minus_one(
        &mut self,
        now: SimTime,
        i: Option<Idx>,
        from: SockAddr,
        t: TopicRef,
        data: &[u8],
        retain: bool,
    ) {
        let Some(topic) = self.resolve_from(i, t) else {
            self.fate(Some(from), Arc::from(data), Fate::Dropped);
            return;
        };
        self.stats.publishes_received += 1;
        self.events.push_back(GatewayEvent::Published {
            client: from,
            topic: topic.clone(),
            qos: Qos::MinusOne,
        });
        // QoS −1 maps to QoS 0 upstream (MQTT-SN 1.2 §6.8).
        self.forward(now, i, topic, Arc::from(data), Qos::Zero, retain);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_publish(
        &mut self,
        now: SimTime,
        i: Idx,
        qos: Qos,
        retain: bool,
        t: TopicRef,
        msg_id: u16,
        data: &[u8],
    ) {
        let topic_id = u16::from_be_bytes(t.field());
        let Some(topic) = self.resolve_from(Some(i), t) else {
            // MQTT-SN 1.2 §6.8: unknown topic id: PUBACK "invalid topic ID".
            let from = self.sn(i).map(|s| s.addr);
            self.fate(from, Arc::from(data), Fate::Dropped);
            self.send(
                i,
                GwMsg::PubAck {
                    topic_id,
                    msg_id,
                    code: ReturnCode::InvalidTopicId,
                },
            );
            return;
        };
        match qos {
            Qos::One => self.send(
                i,
                GwMsg::PubAck {
                    topic_id,
                    msg_id,
                    code: ReturnCode::Accepted,
                },
            ),
            Qos::Two => {
                self.send(i, GwMsg::PubRec(msg_id));
                let Some(s) = self.sn_mut(i) else { return };
                if s.dl_ref()
                    .is_some_and(|d| d.incoming_qos2.contains(&msg_id))
                {
                    // Exactly once: a DUP of a message already forwarded.
                    self.stats.duplicates_suppressed += 1;
                    return;
                }
                let d = s.dl();
                if d.incoming_qos2.len() >= 16 {
                    d.incoming_qos2.remove(0);
                }
                d.incoming_qos2.push(msg_id);
            }
            _ => {}
        }
        self.stats.publishes_received += 1;
        let client = self.sn(i).map_or(SockAddr::default(), |s| s.addr);
        self.events.push_back(GatewayEvent::Published {
            client,
            topic: topic.clone(),
            qos,
        });
        self.forward(now, Some(i), topic, Arc::from(data), qos, retain);
    }

    /// Send a client's message on (upstream, or locally when integrated).
    fn forward(
        &mut self,
        now: SimTime,
        i: Option<Idx>,
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: Qos,
        retain: bool,
    ) {
        match self.config.mode {
            GatewayMode::Integrated => self.route_local(now, &topic, &payload, qos, retain),
            GatewayMode::Aggregating | GatewayMode::Transparent => {
                let from = i.and_then(|i| self.sn(i)).map(|s| s.addr);
                let k = if self.config.mode == GatewayMode::Aggregating {
                    self.ensure_shared(now);
                    self.shared
                } else {
                    i.and_then(|i| self.sn(i)?.upstream)
                };
                let Some(k) = k else {
                    return self.fate(from, payload, Fate::Dropped);
                };
                if let Some(u) = self.ups.get_mut(&k) {
                    let kept = payload.clone();
                    if u.client
                        .publish(now, topic, payload, qos.to_mqtt(), retain)
                        .is_err()
                    {
                        self.fate(from, kept, Fate::Dropped);
                    }
                }
                self.drive_up(now, k);
            }
        }
    }

    /// Aggregating / integrated: deliver to every local subscriber.
    fn route_local(
        &mut self,
        now: SimTime,
        topic: &TopicName,
        payload: &Arc<[u8]>,
        qos: Qos,
        retain: bool,
    ) {
        if self.config.mode == GatewayMode::Integrated && retain {
            if let Some((old, _)) = self.retained.remove(topic) {
                let freed = (topic.as_str().len() + old.len()) as u64;
                self.stats.retained_bytes = self.stats.retained_bytes.saturating_sub(freed);
            }
            if !payload.is_empty() {
                let size = (topic.as_str().len() + payload.len()) as u64;
                if self.stats.retained_bytes + size <= self.config.max_retained_bytes as u64 {
                    self.retained.insert(topic.clone(), (payload.clone(), qos));
                    self.stats.retained_bytes += size;
                } else {
                    self.stats.retained_dropped += 1;
                }
            }
        }
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        for (f, subs) in &self.local_subs {
            if mqtt::matches(f, topic) {
                out.extend_from_slice(subs);
            }
        }
        out.sort_unstable();
        // One copy per client, at the highest granted QoS.
        out.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 = a.1.max(b.1);
                true
            } else {
                false
            }
        });
        for &(i, granted) in &out {
            // MQTT 3.1.1 §3.8.4: at most the granted QoS; retain is only set
            // on deliveries of retained messages to new subscriptions.
            let q = qos.min(granted).max(Qos::Zero);
            self.enqueue_down(now, i, topic.clone(), payload.clone(), q, false);
        }
        self.scratch = out;
    }

    fn enqueue_down(
        &mut self,
        now: SimTime,
        i: Idx,
        topic: TopicName,
        payload: Arc<[u8]>,
        qos: Qos,
        retain: bool,
    ) {
        let (max_b, max_q) = (self.config.max_buffered, self.config.max_queued);
        let Some(s) = self.sn_mut(i) else { return };
        let asleep = matches!(s.phase, Phase::Asleep | Phase::Disconnected);
        let addr = Some(s.addr);
        if asleep {
            // MQTT-SN 1.2 §6.14: buffered until the client wakes.
            if s.down_len() >= max_b {
                return self.fate(addr, payload, Fate::DroppedAsleep);
            }
        } else if s.down_len() >= max_q {
            return self.fate(addr, payload, Fate::DroppedQueueFull);
        }
        s.dl().down.push_back(Down {
            topic,
            payload: payload.clone(),
            qos,
            retain,
        });
        if asleep {
            self.fate(addr, payload, Fate::BufferedAsleep);
        }
        self.pump_down(now, i);
    }

    fn predefined_id(&self, name: &str) -> Option<u16> {
        self.predefined
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
    }

    /// Send what the client may receive now: QoS 0 messages back to back,
    /// one QoS 1/2 exchange (or REGISTER) at a time.
    fn pump_down(&mut self, now: SimTime, i: Idx) {
        loop {
            let Some(s) = self.sn(i) else { return };
            if !matches!(s.phase, Phase::Active | Phase::Awake) || s.inflight().is_some() {
                return;
            }
            let Some(head) = s.dl_ref().and_then(|d| d.down.front()) else {
                if s.phase == Phase::Awake {
                    // MQTT-SN 1.2 §6.14: all buffered messages sent: PINGRESP
                    // ends the awake period.
                    self.send(i, GwMsg::PingResp);
                    if let Some(s) = self.sn_mut(i) {
                        s.phase = Phase::Asleep;
                    }
                    self.stats.clients_asleep += 1;
                }
                return;
            };
            let name = head.topic.clone();
            let t_retry = self.config.t_retry;
            let topic = if let Some(id) = self.predefined_id(name.as_str()) {
                TopicRef::Predefined(id)
            } else if let [a, b] = name.as_str().as_bytes() {
                TopicRef::Short([*a, *b])
            } else {
                let max = self.config.max_topics_per_client;
                // a broker's topic too long for the client's table
                let too_long = name.as_str().len() > self.config.max_topic_len;
                let Some(s) = self.sn_mut(i) else { return };
                match s.topics.iter().find(|t| t.name == name) {
                    Some(t) if t.known => TopicRef::Normal(t.id),
                    found => {
                        let id = match found {
                            Some(t) => t.id,
                            None => {
                                if s.topics.len() >= max || too_long {
                                    let addr = Some(s.addr);
                                    if let Some(d) = s.pop_down() {
                                        self.fate(addr, d.payload, Fate::Dropped);
                                    }
                                    continue;
                                }
                                s.next_topic_id = s.next_topic_id.wrapping_add(1).max(1);
                                let id = s.next_topic_id;
                                super::push1v(
                                    &mut s.topics,
                                    TopicEntry {
                                        id,
                                        name: name.clone(),
                                        known: false,
                                    },
                                );
                                id
                            }
                        };
                        // MQTT-SN 1.2 §6.10: REGISTER before the first
                        // PUBLISH on a topic the client has no id for.
                        let Some(msg) = s.pop_down() else {
                            return;
                        };
                        let msg_id = s.alloc_msg_id();
                        s.dl().inflight = Some(Box::new(DownTx {
                            msg,
                            topic: TopicRef::Normal(id),
                            msg_id,
                            stage: DownStage::Register { topic_id: id },
                            retries: 0,
                            deadline: now + t_retry,
                        }));
                        self.stats.registers_sent += 1;
                        self.send(
                            i,
                            GwMsg::Register {
                                topic_id: id,
                                msg_id,
                                name,
                            },
                        );
                        self.arm_retry(i);
                        return;
                    }
                }
            };
            let Some(s) = self.sn_mut(i) else { return };
            let Some(msg) = s.pop_down() else {
                return;
            };
            self.start_down_publish(now, i, msg, topic);
        }
    }

    fn start_down_publish(&mut self, now: SimTime, i: Idx, msg: Down, topic: TopicRef) {
        let t_retry = self.config.t_retry;
        self.stats.publishes_delivered += 1;
        let Some(s) = self.sn_mut(i) else { return };
        if msg.qos.acked() {
            let msg_id = s.alloc_msg_id();
            let out = GwMsg::Publish {
                dup: false,
                qos: msg.qos,
                retain: msg.retain,
                topic,
                msg_id,
                data: msg.payload.clone(),
            };
            let stage = if msg.qos == Qos::One {
                DownStage::AwaitAck
            } else {
                DownStage::AwaitRec
            };
            s.dl().inflight = Some(Box::new(DownTx {
                msg,
                topic,
                msg_id,
                stage,
                retries: 0,
                deadline: now + t_retry,
            }));
            self.send(i, out);
            self.arm_retry(i);
        } else {
            self.send(
                i,
                GwMsg::Publish {
                    dup: false,
                    qos: Qos::Zero,
                    retain: msg.retain,
                    topic,
                    msg_id: 0,
                    data: msg.payload,
                },
            );
        }
    }

    fn arm_retry(&mut self, i: Idx) {
        if let Some(d) = self.sn(i).and_then(Sn::inflight).map(|t| t.deadline) {
            self.timers.insert((d, i, TimerKind::Retry));
        }
    }

    fn on_regack(&mut self, now: SimTime, i: Idx, topic_id: u16, msg_id: u16, code: ReturnCode) {
        let Some(s) = self.sn_mut(i) else { return };
        let ok = matches!(
            s.inflight(),
            Some(DownTx { stage: DownStage::Register { topic_id: t }, msg_id: m, .. })
                if *m == msg_id && *t == topic_id
        );
        if !ok {
            self.stats.ignored += 1;
            return;
        }
        let Some(tx) = s.take_inflight() else { return };
        if code == ReturnCode::Accepted {
            if let Some(e) = s.topics.iter_mut().find(|e| e.id == topic_id) {
                e.known = true;
            }
            self.start_down_publish(now, i, tx.msg, tx.topic);
        } else {
            let addr = Some(s.addr);
            self.fate(addr, tx.msg.payload, Fate::Dropped);
        }
        self.pump_down(now, i);
    }

    fn on_down_ack(&mut self, now: SimTime, i: Idx, msg_id: u16, puback: Option<ReturnCode>) {
        let Some(s) = self.sn_mut(i) else { return };
        let done = match (s.inflight(), puback) {
            (Some(tx), Some(_)) => tx.msg_id == msg_id && tx.stage == DownStage::AwaitAck,
            (Some(tx), None) => tx.msg_id == msg_id && tx.stage == DownStage::AwaitComp,
            _ => false,
        };
        if !done {
            self.stats.ignored += 1;
            return;
        }
        let tx = s.take_inflight();
        if let (Some(ReturnCode::InvalidTopicId), Some(tx)) = (puback, tx) {
            // The client lost the id: register again (MQTT-SN 1.2 §6.10).
            if let TopicRef::Normal(id) = tx.topic {
                s.topics.retain(|e| e.id != id);
            }
            s.dl().down.push_front(tx.msg);
        }
        self.pump_down(now, i);
    }

    /// `name` as a topic name a client may use: valid, and no longer than
    /// `max_topic_len` (counted when it is).
    fn topic_name(&mut self, name: &str) -> Option<TopicName> {
        if name.len() > self.config.max_topic_len {
            self.stats.topics_too_long += 1;
            return None;
        }
        TopicName::new(name).ok()
    }

    fn on_register(&mut self, i: Idx, msg_id: u16, name: &str) {
        let max = self.config.max_topics_per_client;
        let Some(topic) = self.topic_name(name) else {
            self.send(
                i,
                GwMsg::RegAck {
                    topic_id: 0,
                    msg_id,
                    code: ReturnCode::NotSupported,
                },
            );
            return;
        };
        let Some(s) = self.sn_mut(i) else { return };
        let n = s.topics.len();
        let (id, code) = match s.topics.iter_mut().find(|t| t.name == topic) {
            Some(t) => {
                t.known = true;
                (t.id, ReturnCode::Accepted)
            }
            None if n >= max => (0, ReturnCode::Congestion),
            None => {
                s.next_topic_id = s.next_topic_id.wrapping_add(1).max(1);
                let id = s.next_topic_id;
                super::push1v(
                    &mut s.topics,
                    TopicEntry {
                        id,
                        name: topic,
                        known: true,
                    },
                );
                self.stats.registrations += 1;
                (id, ReturnCode::Accepted)
            }
        };
        // MQTT-SN 1.2 §6.5: REGACK with the assigned id.
        self.send(
            i,
            GwMsg::RegAck {
                topic_id: id,
                msg_id,
                code,
            },
        );
    }

    fn on_subscribe(&mut self, now: SimTime, i: Idx, qos: Qos, msg_id: u16, t: SubTopic<'_>) {
        let refuse = |code| GwMsg::SubAck {
            qos,
            topic_id: 0,
            msg_id,
            code,
        };
        let (name, topic_id_of): (String, Option<u16>) = match t {
            SubTopic::Name(n) if n.len() > self.config.max_topic_len => {
                self.stats.topics_too_long += 1;
                self.send(i, refuse(ReturnCode::NotSupported));
                return;
            }
            SubTopic::Name(n) => (n.to_string(), None),
            SubTopic::Predefined(id) => {
                match self.config.predefined.iter().find(|(p, _)| *p == id) {
                    Some((_, n)) => (n.clone(), Some(id)),
                    None => {
                        self.send(i, refuse(ReturnCode::InvalidTopicId));
                        return;
                    }
                }
            }
            SubTopic::Short(s) => match std::str::from_utf8(&s) {
                Ok(s) => (s.to_string(), Some(0)),
                Err(_) => {
                    self.send(i, refuse(ReturnCode::InvalidTopicId));
                    return;
                }
            },
        };
        let Ok(filter) = TopicFilter::new(&name) else {
            self.send(i, refuse(ReturnCode::NotSupported));
            return;
        };
        let max_subs = self.config.max_subscriptions_per_client;
        let max_topics = self.config.max_topics_per_client;
        let mode = self.config.mode;
        let Some(s) = self.sn_mut(i) else { return };
        let existing = s.subs().iter().position(|(f, _)| *f == filter);
        if existing.is_none() && s.subs().len() >= max_subs {
            self.send(i, refuse(ReturnCode::Congestion));
            return;
        }
        // MQTT-SN 1.2 §6.9: a topic name without wildcards gets its topic id
        // in SUBACK; wildcards get 0 and REGISTERs later.
        let topic_id = match topic_id_of {
            Some(id) => id,
            None if filter.has_wildcards() => 0,
            None => {
                let Ok(tn) = TopicName::new(&name) else {
                    return;
                };
                let n = s.topics.len();
                match s.topics.iter_mut().find(|t| t.name == tn) {
                    Some(t) => {
                        t.known = true;
                        t.id
                    }
                    None if n >= max_topics => {
                        self.send(i, refuse(ReturnCode::Congestion));
                        return;
                    }
                    None => {
                        s.next_topic_id = s.next_topic_id.wrapping_add(1).max(1);
                        let id = s.next_topic_id;
                        super::push1v(
                            &mut s.topics,
                            TopicEntry {
                                id,
                                name: tn,
                                known: true,
                            },
                        );
                        id
                    }
                }
            }
        };
        match existing {
            Some(j) => {
                if let Some(x) = s.dl().subs.get_mut(j) {
                    x.1 = qos;
                }
            }
            None => super::push1v(&mut s.dl().subs, (filter.clone(), qos)),
        }
        let ack = GwMsg::SubAck {
            qos,
            topic_id,
            msg_id,
            code: ReturnCode::Accepted,
        };
        let own_up = s.upstream;
        match mode {
            GatewayMode::Integrated => {
                self.add_local(i, &filter, qos);
                self.send(i, ack);
                // Retained messages for the new subscription.
                let matching: Vec<(TopicName, Arc<[u8]>, Qos)> = self
                    .retained
                    .iter()
                    .filter(|(t, _)| mqtt::matches(&filter, t))
                    .map(|(t, (p, q))| (t.clone(), p.clone(), *q))
                    .collect();
                for (t, p, q) in matching {
                    self.enqueue_down(now, i, t, p, q.min(qos), true);
                }
            }
            GatewayMode::Aggregating => {
                self.add_local(i, &filter, qos);
                let (need, ask) = match self.agg_subs.get_mut(&filter) {
                    Some(e) => {
                        if existing.is_none() {
                            e.1 += 1;
                        }
                        let need = qos > e.0;
                        e.0 = e.0.max(qos);
                        (need, e.0)
                    }
                    None => {
                        self.agg_subs.insert(filter.clone(), (qos, 1));
                        (true, qos)
                    }
                };
                self.ensure_shared(now);
                match (need, self.shared) {
                    (true, Some(k)) => {
                        let h = self.ups.get_mut(&k).and_then(|u| {
                            u.client.subscribe(now, vec![(filter, ask.to_mqtt())]).ok()
                        });
                        match h {
                            Some(handle) => self.pending_subs.push(PendingSub {
                                conn: k,
                                handle,
                                client: i,
                                msg_id,
                                topic_id,
                                qos,
                            }),
                            None => self.send(i, ack),
                        }
                        self.drive_up(now, k);
                    }
                    _ => self.send(i, ack),
                }
            }
            GatewayMode::Transparent => {
                let k = own_up;
                let h = k.and_then(|k| {
                    self.ups
                        .get_mut(&k)
                        .and_then(|u| u.client.subscribe(now, vec![(filter, qos.to_mqtt())]).ok())
                        .map(|h| (k, h))
                });
                match h {
                    Some((k, handle)) => {
                        self.pending_subs.push(PendingSub {
                            conn: k,
                            handle,
                            client: i,
                            msg_id,
                            topic_id,
                            qos,
                        });
                        self.drive_up(now, k);
                    }
                    None => self.send(i, refuse(ReturnCode::Congestion)),
                }
            }
        }
    }

    fn add_local(&mut self, i: Idx, f: &TopicFilter, qos: Qos) {
        let v = self.local_subs.entry(f.clone()).or_default();
        match v.iter_mut().find(|(c, _)| *c == i) {
            Some(e) => e.1 = qos,
            None => v.push((i, qos)),
        }
    }

    /// Remove one subscription of client `i` from the routing tables.
    fn remove_sub(&mut self, now: SimTime, i: Idx, f: &TopicFilter) {
        if let Some(v) = self.local_subs.get_mut(f) {
            v.retain(|(c, _)| *c != i);
            if v.is_empty() {
                self.local_subs.remove(f);
            }
        }
        match self.config.mode {
            GatewayMode::Aggregating => {
                let gone = match self.agg_subs.get_mut(f) {
                    Some(e) => {
                        e.1 = e.1.saturating_sub(1);
                        e.1 == 0
                    }
                    None => false,
                };
                if gone {
                    self.agg_subs.remove(f);
                    if let Some(k) = self.shared {
                        if let Some(u) = self.ups.get_mut(&k) {
                            let _ = u.client.unsubscribe(now, vec![f.clone()]);
                        }
                        self.drive_up(now, k);
                    }
                }
            }
            GatewayMode::Transparent => {
                if let Some(k) = self.sn(i).and_then(|s| s.upstream) {
                    if let Some(u) = self.ups.get_mut(&k) {
                        let _ = u.client.unsubscribe(now, vec![f.clone()]);
                    }
                    self.drive_up(now, k);
                }
            }
            GatewayMode::Integrated => {}
        }
    }

    fn drop_subscriptions(&mut self, now: SimTime, i: Idx) {
        let subs = match self.sn_mut(i) {
            Some(s) => s
                .dl_mut()
                .map(|d| std::mem::take(&mut d.subs))
                .unwrap_or_default(),
            None => return,
        };
        for (f, _) in &subs {
            self.remove_sub(now, i, f);
        }
    }

    fn on_unsubscribe(&mut self, now: SimTime, i: Idx, msg_id: u16, t: SubTopic<'_>) {
        let name = match t {
            SubTopic::Name(n) => Some(n.to_string()),
            SubTopic::Predefined(id) => self
                .config
                .predefined
                .iter()
                .find(|(p, _)| *p == id)
                .map(|(_, n)| n.clone()),
            SubTopic::Short(s) => std::str::from_utf8(&s).ok().map(str::to_string),
        };
        if let Some(f) = name.and_then(|n| TopicFilter::new(&n).ok()) {
            let had = self.sn_mut(i).and_then(Sn::dl_mut).is_some_and(|d| {
                let before = d.subs.len();
                d.subs.retain(|(x, _)| *x != f);
                d.subs.len() != before
            });
            if had {
                self.remove_sub(now, i, &f);
            }
        }
        self.send(i, GwMsg::UnsubAck(msg_id));
    }

    fn on_disconnect(&mut self, now: SimTime, i: Idx, duration: Option<u16>) {
        self.send(i, GwMsg::Disconnect);
        match duration {
            Some(d) => {
                // MQTT-SN 1.2 §6.14: asleep for `d` seconds.
                let Some(s) = self.sn_mut(i) else { return };
                let addr = s.addr;
                let was = s.phase;
                s.phase = Phase::Asleep;
                s.sleep = d;
                if was != Phase::Asleep {
                    self.stats.clients_asleep += 1;
                }
                self.events
                    .push_back(GatewayEvent::ClientAsleep { client: addr });
                self.arm_supervision(now, i);
            }
            None => self.remove_client(now, i, ClientGone::Disconnect, false),
        }
    }

    /// PINGREQ with ClientId (§6.14): the sleeping client is awake; send
    /// what was buffered, then PINGRESP.
    fn wake(&mut self, now: SimTime, i: Idx) {
        let Some(s) = self.sn_mut(i) else { return };
        match s.phase {
            Phase::Asleep => {
                s.phase = Phase::Awake;
                let addr = s.addr;
                self.stats.clients_asleep = self.stats.clients_asleep.saturating_sub(1);
                self.events
                    .push_back(GatewayEvent::ClientAwake { client: addr });
                self.pump_down(now, i);
            }
            Phase::Awake => {}
            _ => self.send(i, GwMsg::PingResp),
        }
    }

    /// End client `i`'s session: publish its will when `reason` calls for
    /// it; keep a persistent session's record (CleanSession = 0) unless
    /// `forget`.
    fn remove_client(&mut self, now: SimTime, i: Idx, reason: ClientGone, forget: bool) {
        let Some(s) = self.sn(i) else { return };
        let (addr, client_id, clean) = (s.addr, s.client_id.clone(), s.clean);
        if s.phase == Phase::Asleep {
            self.stats.clients_asleep = self.stats.clients_asleep.saturating_sub(1);
        }
        let will = if reason.publishes_will() {
            self.sn_mut(i).and_then(|s| s.will.take()).map(|b| *b)
        } else {
            None
        };
        let has_route = self.config.mode != GatewayMode::Transparent
            || self.sn(i).is_some_and(|s| s.upstream.is_some());
        if let (Some(w), false) = (&will, has_route) {
            // Transparent, its MQTT connection already gone: nowhere to go.
            let payload = w.msg.clone();
            self.fate(Some(addr), payload, Fate::Dropped);
        } else if let Some(w) = will {
            self.stats.wills_published += 1;
            self.events.push_back(GatewayEvent::WillPublished {
                client_id: client_id.clone(),
                topic: w.topic.clone(),
            });
            self.forward(now, Some(i), w.topic, w.msg, w.qos, w.retain);
        }
        if let Some(k) = self.sn_mut(i).and_then(|s| s.upstream.take()) {
            self.release_up(now, k);
        }
        self.pending_subs.retain(|p| p.client != i);
        self.events.push_back(GatewayEvent::ClientDisconnected {
            client: addr,
            client_id: client_id.clone(),
            reason,
        });
        if !clean && !forget {
            if let Some(s) = self.sn_mut(i) {
                s.phase = Phase::Disconnected;
                if let Some(d) = s.dl_mut() {
                    d.inflight = None;
                }
            }
            return;
        }
        self.drop_subscriptions(now, i);
        if let Some(s) = self.clients.get_mut(i as usize).and_then(|s| s.take()) {
            self.by_addr.remove(&s.addr);
            self.by_id.remove(&s.client_id);
        }
        self.free.push(i);
        self.stats.clients = self.stats.clients.saturating_sub(1);
    }

    fn fire_client_timer(&mut self, now: SimTime, i: Idx, kind: TimerKind) {
        match kind {
            TimerKind::Supervise => {
                let Some(d) = self.deadline(i) else { return };
                if d > now {
                    self.timers.insert((d, i, TimerKind::Supervise));
                    return;
                }
                let phase = self.sn(i).map(|s| s.phase);
                let reason = if matches!(phase, Some(Phase::Asleep | Phase::Awake)) {
                    self.stats.sleep_timeouts += 1;
                    ClientGone::SleepTimeout
                } else {
                    self.stats.keep_alive_timeouts += 1;
                    ClientGone::KeepAliveTimeout
                };
                self.remove_client(now, i, reason, false);
            }
            TimerKind::Retry => {
                let t_retry = self.config.t_retry;
                let n_retry = self.config.n_retry;
                let Some(s) = self.sn_mut(i) else { return };
                let Some(tx) = s.dl_mut().and_then(|d| d.inflight.as_mut()) else {
                    return;
                };
                if tx.deadline > now {
                    return; // stale entry
                }
                if tx.retries >= n_retry {
                    let addr = Some(s.addr);
                    if let Some(tx) = s.take_inflight() {
                        self.fate(addr, tx.msg.payload, Fate::GaveUp);
                    }
                    self.pump_down(now, i);
                    return;
                }
                tx.retries += 1;
                tx.deadline = now + t_retry;
                let msg = match tx.stage {
                    DownStage::Register { topic_id } => GwMsg::Register {
                        topic_id,
                        msg_id: tx.msg_id,
                        name: tx.msg.topic.clone(),
                    },
                    DownStage::AwaitAck | DownStage::AwaitRec => GwMsg::Publish {
                        dup: true,
                        qos: tx.msg.qos,
                        retain: tx.msg.retain,
                        topic: tx.topic,
                        msg_id: tx.msg_id,
                        data: tx.msg.payload.clone(),
                    },
                    DownStage::AwaitComp => GwMsg::PubRel(tx.msg_id),
                };
                let (to, via) = (s.addr, s.via);
                self.outq.push_back(GwOut {
                    to,
                    via,
                    msg,
                    retransmission: true,
                });
                self.arm_retry(i);
            }
        }
    }

    fn encode_out(&self, o: &GwOut, buf: &mut Vec<u8>) -> Option<(usize, MsgType)> {
        let c = &self.config;
        let m = match &o.msg {
            GwMsg::Advertise => Message::Advertise {
                gw_id: c.gw_id,
                duration: c.t_adv.map_or(0, |d| {
                    u16::try_from(d.as_nanos() / 1_000_000_000).unwrap_or(u16::MAX)
                }),
            },
            GwMsg::GwInfo => Message::GwInfo {
                gw_id: c.gw_id,
                gw_add: &[],
            },
            GwMsg::ConnAck(code) => Message::ConnAck { code: *code },
            GwMsg::WillTopicReq => Message::WillTopicReq,
            GwMsg::WillMsgReq => Message::WillMsgReq,
            GwMsg::Register {
                topic_id,
                msg_id,
                name,
            } => Message::Register {
                topic_id: *topic_id,
                msg_id: *msg_id,
                topic_name: name.as_str(),
            },
            GwMsg::RegAck {
                topic_id,
                msg_id,
                code,
            } => Message::RegAck {
                topic_id: *topic_id,
                msg_id: *msg_id,
                code: *code,
            },
            GwMsg::Publish {
                dup,
                qos,
                retain,
                topic,
                msg_id,
                data,
            } => Message::Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic: *topic,
                msg_id: *msg_id,
                data,
            },
            GwMsg::PubAck {
                topic_id,
                msg_id,
                code,
            } => Message::PubAck {
                topic_id: *topic_id,
                msg_id: *msg_id,
                code: *code,
            },
            GwMsg::PubRec(m) => Message::PubRec { msg_id: *m },
            GwMsg::PubRel(m) => Message::PubRel { msg_id: *m },
            GwMsg::PubComp(m) => Message::PubComp { msg_id: *m },
            GwMsg::SubAck {
                qos,
                topic_id,
                msg_id,
                code,
            } => Message::SubAck {
                qos: *qos,
                topic_id: *topic_id,
                msg_id: *msg_id,
                code: *code,
            },
            GwMsg::UnsubAck(m) => Message::UnsubAck { msg_id: *m },
            GwMsg::PingResp => Message::PingResp,
            GwMsg::Disconnect => Message::Disconnect { duration: None },
            GwMsg::WillTopicResp(code) => Message::WillTopicResp { code: *code },
            GwMsg::WillMsgResp(code) => Message::WillMsgResp { code: *code },
        };
        let start = buf.len();
        if o.via.is_some() {
            // MQTT-SN 1.2 §5.5: Length, 0xFE, Ctrl (Radius), Wireless Node
            // Id, then the message; written in place, no second buffer.
            let node = sockaddr_bytes(o.to);
            let radius = if o.to.addr.is_broadcast() {
                c.radius & 0x03
            } else {
                0
            };
            buf.extend_from_slice(&[(3 + node.len()) as u8, MsgType::Encapsulated as u8, radius]);
            buf.extend_from_slice(&node);
        }
        if m.encode(buf).is_err() {
            buf.truncate(start);
            return None;
        }
        Some((buf.len() - start, m.msg_type()))
    }
}

impl SansIo for Gateway {
    type Input<'a> = GatewayInput<'a>;
    type Transmit = GatewayTransmit;
    type Event = GatewayEvent;

    fn handle_input(&mut self, now: SimTime, input: GatewayInput<'_>) {
        match input {
            GatewayInput::Datagram(d) => self.on_datagram(now, d.from, d.data),
            GatewayInput::Upstream { conn, event } => self.on_upstream(now, conn, event),
        }
    }

    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<GatewayTransmit> {
        while let Some(o) = self.outq.pop_front() {
            let Some((len, kind)) = self.encode_out(&o, buf) else {
                continue;
            };
            let i = kind.index();
            if let Some(x) = self.stats.sent_by_type.get_mut(i) {
                *x += 1;
            }
            if let Some(x) = self.stats.bytes_sent_by_type.get_mut(i) {
                *x += len as u64;
            }
            if o.retransmission {
                self.stats.retransmissions += 1;
            }
            return Some(GatewayTransmit::Udp {
                to: o.via.unwrap_or(o.to),
                len,
                kind,
                encapsulated: o.via.is_some(),
                retransmission: o.retransmission,
            });
        }
        while let Some(&k) = self.dirty.first() {
            let t = self
                .ups
                .get_mut(&k)
                .and_then(|u| u.client.poll_transmit(now, buf));
            match t {
                Some(t) => {
                    if let Some(x) = self.stats.mqtt_sent_by_type.get_mut(t.kind.index()) {
                        *x += 1;
                    }
                    self.stats.mqtt_bytes_sent += t.len as u64;
                    self.rearm_up(k);
                    return Some(GatewayTransmit::Mqtt {
                        conn: Upstream(k),
                        len: t.len,
                        kind: t.kind,
                    });
                }
                None => {
                    self.dirty.remove(&k);
                    if self.ups.get(&k).is_some_and(|u| u.closing) {
                        // Its last bytes are out; the driver closes it.
                        self.ups.remove(&k);
                        self.forget_up(k);
                    }
                }
            }
        }
        None
    }

    fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<SimTime> {
        [
            self.next_adv,
            self.timers.first().map(|t| t.0),
            self.up_timers.first().map(|t| t.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires, in order: ADVERTISE, client timers (supervision, T_RETRY) in
    /// time order, upstream MQTT clients' timers.
    fn handle_timeout(&mut self, now: SimTime) {
        self.handle_timeout_adv(now);
        while let Some(&(t, i, kind)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            self.fire_client_timer(now, i, kind);
        }
        while let Some(&(t, k)) = self.up_timers.first() {
            if t > now {
                break;
            }
            self.up_timers.pop_first();
            let mut expired = false;
            if let Some(u) = self.ups.get_mut(&k) {
                u.armed = None;
                u.client.handle_timeout(now);
                expired = u.drain_until.is_some_and(|d| d <= now);
            }
            if expired {
                // The broker did not acknowledge in time: give the rest up.
                self.drop_carried(k);
                self.close_up(now, k);
            } else {
                self.drive_up(now, k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_state_is_compact() {
        // An idle connected client costs one `Sn` plus its ClientId and
        // map entries. 248 bytes before the downlink transaction (only
        // subscribers have one) was boxed, 192 before the rest of the
        // downlink state ([`Downlink`]) was; a gateway holds 1,000 of them
        // in mqttsn-10k.
        let sn = std::mem::size_of::<Sn>();
        eprintln!("size_of::<Sn>() = {sn}");
        assert!(sn <= 112, "Sn grew to {sn} bytes");
    }
}
