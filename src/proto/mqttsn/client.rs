//! The sans-IO MQTT-SN v1.2 client.
//!
//! Driver shape ([`crate::proto::SansIo`]). Application commands:
//! [`Client::connect`], [`Client::publish`], [`Client::subscribe`],
//! [`Client::unsubscribe`], [`Client::sleep`], [`Client::disconnect`],
//! [`Client::add_gateway`]. Network input: [`SansIo::handle_input`] with a
//! [`Datagram`]; timers: [`SansIo::handle_timeout`]. After every input or
//! command the driver calls, in order: `poll_transmit` until `None` (each
//! transmit names its destination, possibly the broadcast address),
//! `poll_event` until `None`, then `poll_timeout`.
//!
//! Behaviour (MQTT-SN 1.2 section in brackets):
//! * Discovery (§6.1): ADVERTISE and GWINFO add gateways; with none known,
//!   SEARCHGW is broadcast after a random delay uniform in [0, T_SEARCHGW]
//!   (cancelled, as if sent, when another client's SEARCHGW is heard), and
//!   repeated with the wait doubling up to `search_backoff_max`. A client
//!   that knows a gateway answers another client's SEARCHGW with GWINFO
//!   (GwAdd = the gateway's address) after a random delay up to T_GWINFO,
//!   cancelled if any GWINFO is heard first. A gateway that advertised is
//!   lost after N_ADV × its Duration without ADVERTISE.
//! * One transaction awaiting a reply at a time (§6.5, §6.8, §6.9): CONNECT
//!   (and the will dialogue, §6.2), REGISTER, one QoS 1/2 PUBLISH,
//!   SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT. Each is supervised by
//!   T_RETRY; after N_RETRY retransmissions (PUBLISH and SUBSCRIBE with DUP)
//!   the gateway is lost (§6.13): the client forgets it, reports the
//!   pending message as given up (it is dropped, not resent), and connects
//!   to another known gateway or searches again.
//! * Publishes wait in a bounded FIFO (`max_queued`; overflow is an error
//!   and counted). Topic names are registered on first use (§6.5) unless
//!   `publish_topic_type` says predefined (§6.7) or short (§6.6). QoS −1 is
//!   sent at once to a known gateway without connection (§6.8).
//! * Congestion (ReturnCode 0x01) waits T_WAIT before the retry (§6.5,
//!   §6.8).
//! * Keep alive (§6.11): PINGREQ after `keep_alive` seconds without sending.
//! * Sleep (§6.14): DISCONNECT with Duration; asleep the client ignores its
//!   radio, wakes every Duration, sends PINGREQ with its ClientId, takes
//!   the buffered PUBLISHes, sends its own queued ones after PINGRESP, then
//!   sleeps again.
//!
//! Randomness (the SEARCHGW and GWINFO delays) comes from the [`SimRng`]
//! stream handed to [`Client::new`].

use std::collections::VecDeque;
use std::sync::Arc;

use thiserror::Error;

use crate::net::addr::SockAddr;
use crate::proto::{Datagram, SansIo};
use crate::sim::{SimDuration, SimRng, SimTime};

use super::codec::{self, Message};
use super::types::{MsgType, Qos, ReturnCode, SubTopic, TopicRef, TypeStats, WillTopic};
use super::{broadcast, sockaddr_bytes, sockaddr_from_bytes, DEFAULT_PORT};
use super::{pop1, push1, push1v};

/// How [`Client::publish`] names topics towards the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PublishTopicType {
    /// Topic ids obtained by REGISTER (§6.5); names found in the predefined
    /// table use their predefined id.
    #[default]
    Normal,
    /// Only predefined topic ids (§6.7); a name missing from the table is an
    /// error.
    Predefined,
    /// Only two-character short topic names (§6.6).
    Short,
}

/// A will (§6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub message: Vec<u8>,
    pub qos: Qos,
    pub retain: bool,
}

/// Client options; defaults inside the ranges §7.2 recommends.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// ClientId (1–23 characters, §5.3.1).
    pub client_id: String,
    /// Gateway UDP port for broadcasts. Default [`DEFAULT_PORT`].
    pub port: u16,
    /// T_ADV: assumed advertisement period of a gateway whose ADVERTISE says
    /// Duration 0. Default 15 min (§7.2: "greater than 15 minutes").
    pub t_adv: SimDuration,
    /// N_ADV: ADVERTISEs missed before a gateway is lost. Default 3 (§7.2:
    /// 2–5).
    pub n_adv: u32,
    /// T_SEARCHGW: upper bound of the random delay before SEARCHGW, and the
    /// first wait for GWINFO. Default 5 s (§7.2).
    pub t_searchgw: SimDuration,
    /// Cap of the doubling wait between SEARCHGWs. Default 15 min.
    pub search_backoff_max: SimDuration,
    /// T_GWINFO: upper bound of the random delay before answering another
    /// client's SEARCHGW. Default 5 s (§7.2).
    pub t_gwinfo: SimDuration,
    /// T_WAIT: wait after a congestion refusal. Default 5 min (§7.2: "greater
    /// than 5 minutes"; 5 min is the boundary).
    pub t_wait: SimDuration,
    /// T_RETRY. Default 10 s (§7.2: 10–15 s).
    pub t_retry: SimDuration,
    /// N_RETRY. Default 3 (§7.2: 3–5).
    pub n_retry: u32,
    /// Keep-alive Duration in seconds (§6.11); 0 turns PINGREQ off.
    /// Default 60.
    pub keep_alive: u16,
    /// CleanSession flag (§6.3). Default true.
    pub clean_session: bool,
    pub will: Option<Will>,
    /// Predefined topic ids (§6.7) as (id, name).
    pub predefined: Vec<(u16, String)>,
    /// Topic naming for publishes. Default `Normal`.
    pub publish_topic_type: PublishTopicType,
    /// Publishes waiting (behind the one outstanding transaction, or for
    /// a connection). Default 100.
    pub max_queued: usize,
    /// SEARCHGW Radius (§5.3.9). Default 1 (one hop).
    pub radius: u8,
    /// Answer other clients' SEARCHGW with GWINFO (§6.1). Default true.
    pub answer_searchgw: bool,
    /// After the gateway is lost, connect to another (or search). Default
    /// true.
    pub auto_reconnect: bool,
    /// Gateways remembered. Default 8.
    pub max_gateways: usize,
    /// Topic ids remembered per gateway connection. Default 256.
    pub max_topics: usize,
    /// Count messages and bytes by type in [`ClientStats::by_type`].
    /// Default true.
    pub type_stats: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: String::new(),
            port: DEFAULT_PORT,
            t_adv: SimDuration::from_secs(15 * 60),
            n_adv: 3,
            t_searchgw: SimDuration::from_secs(5),
            search_backoff_max: SimDuration::from_secs(15 * 60),
            t_gwinfo: SimDuration::from_secs(5),
            t_wait: SimDuration::from_secs(5 * 60),
            t_retry: SimDuration::from_secs(10),
            n_retry: 3,
            keep_alive: 60,
            clean_session: true,
            will: None,
            predefined: Vec::new(),
            publish_topic_type: PublishTopicType::Normal,
            max_queued: 100,
            radius: 1,
            answer_searchgw: true,
            auto_reconnect: true,
            max_gateways: 8,
            max_topics: 256,
            type_stats: true,
        }
    }
}

impl ClientConfig {
    /// Defaults with this client id.
    pub fn new(client_id: impl Into<String>) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            ..Self::default()
        }
    }
}

/// Names one [`Client::publish`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageHandle(pub u64);
/// Names one subscribe/unsubscribe/sleep/disconnect call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestHandle(pub u64);

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Not connected, not trying to.
    Idle,
    /// No gateway known: waiting to send SEARCHGW or for GWINFO.
    Searching,
    /// CONNECT (or the will dialogue) in progress.
    Connecting,
    Active,
    /// DISCONNECT sent, waiting for the gateway's DISCONNECT.
    Disconnecting,
    /// Sleeping (§6.14): radio off until the next wake-up.
    Asleep,
    /// Awake between sleeps.
    Awake,
}

/// Why the gateway was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// N_RETRY retransmissions without the expected reply (§6.13).
    Retries(MsgType),
    /// N_ADV advertisement periods without ADVERTISE (§6.1).
    AdvertiseTimeout,
    /// CONNACK refused the connection (not congestion).
    Refused(ReturnCode),
}

/// How a gateway became known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoundBy {
    Advertise,
    GwInfo,
    /// [`Client::add_gateway`].
    Config,
}

/// What the client tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    GatewayFound {
        gw_id: u8,
        addr: SockAddr,
        by: FoundBy,
    },
    GatewayLost {
        gw_id: u8,
        addr: SockAddr,
        reason: LostReason,
    },
    /// CONNACK accepted.
    Connected {
        gateway: SockAddr,
    },
    /// CONNACK refused (congestion is retried after T_WAIT, not reported).
    ConnectRefused {
        code: ReturnCode,
    },
    /// A topic id was learned: REGACK (`by_gateway` false) or the gateway's
    /// REGISTER (true).
    Registered {
        topic: Arc<str>,
        topic_id: u16,
        by_gateway: bool,
    },
    /// SUBACK (`code` Accepted or a refusal).
    Subscribed {
        handle: RequestHandle,
        topic_id: u16,
        qos: Qos,
        code: ReturnCode,
    },
    Unsubscribed {
        handle: RequestHandle,
    },
    /// An application message from the gateway (QoS 2: once).
    Message {
        topic: Arc<str>,
        topic_ref: TopicRef,
        payload: Arc<[u8]>,
        qos: Qos,
        retain: bool,
        dup: bool,
    },
    /// A QoS −1 or 0 publish left the client.
    PublishSent {
        handle: MessageHandle,
    },
    /// PUBACK for a QoS 1 publish.
    PublishAcked {
        handle: MessageHandle,
    },
    /// PUBCOMP for a QoS 2 publish.
    PublishCompleted {
        handle: MessageHandle,
    },
    /// The gateway refused the publish or its REGISTER (not congestion).
    PublishRejected {
        handle: MessageHandle,
        code: ReturnCode,
    },
    /// A publish or request dropped after N_RETRY retransmissions.
    GaveUp {
        message: Option<MessageHandle>,
        request: Option<RequestHandle>,
        kind: MsgType,
    },
    /// The gateway acknowledged DISCONNECT with Duration.
    Asleep,
    /// Woke up (PINGREQ with ClientId follows).
    Awake,
    /// Disconnected: after [`Client::disconnect`] (`by_gateway` false) or by
    /// an unsolicited DISCONNECT.
    Disconnected {
        by_gateway: bool,
    },
    /// WILLTOPICRESP / WILLMSGRESP.
    WillUpdated {
        kind: MsgType,
        code: ReturnCode,
    },
}

/// What `poll_transmit` wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTransmit {
    pub to: SockAddr,
    pub len: usize,
    pub kind: MsgType,
    /// The publish a PUBLISH or PUBREL belongs to.
    pub message: Option<MessageHandle>,
    pub retransmission: bool,
}

/// Client counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages and bytes by type; `None` when
    /// [`ClientConfig::type_stats`] is off (a simulator counting them per
    /// flow itself: 0.9 KB less per client).
    pub by_type: Option<Box<TypeStats>>,
    pub retransmissions: u64,
    /// Transactions abandoned after N_RETRY retransmissions.
    pub give_ups: u64,
    /// Publishes dropped with a give-up.
    pub publishes_given_up: u64,
    /// Topic ids learned by REGACK.
    pub registrations: u64,
    pub publishes_sent: u64,
    pub messages_received: u64,
    pub duplicates_suppressed: u64,
    /// `publish` calls refused because the queue was full.
    pub dropped_queue_full: u64,
    pub decode_errors: u64,
    /// Datagrams ignored (asleep, wrong sender, unexpected).
    pub ignored: u64,
    pub gateways_lost: u64,
    pub searches_sent: u64,
    pub gwinfo_sent: u64,
    pub connects: u64,
    /// Time from the first search to the first gateway found.
    pub discovery_time: Option<SimDuration>,
}

/// Errors from the client API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error("publish queue full ({limit} messages)")]
    QueueFull { limit: usize },
    #[error("topic {0:?} is not in the predefined table")]
    NotPredefined(String),
    #[error("short topic names are exactly two bytes, {0:?} is not")]
    NotShort(String),
    #[error("QoS −1 needs a predefined or short topic (§6.8)")]
    MinusOneNeedsFixedTopic,
    #[error("no gateway known for a QoS −1 publish")]
    NoGateway,
    #[error("invalid topic: {0}")]
    Topic(String),
    #[error("message too large: {0}")]
    TooLarge(usize),
}

#[derive(Clone, Copy, Debug)]
enum Timer {
    Search = 0,
    GwInfo = 1,
    Retry = 2,
    KeepAlive = 3,
    Wait = 4,
    Wake = 5,
    Adv = 6,
}
/// A client's queues. Between the driver's calls a client mostly has
/// nothing queued (a sensor publishes every few seconds and its datagrams
/// and events are taken at once), so they live in one box that exists only
/// while something is in them: 8 bytes per idle client instead of the four
/// `VecDeque`s' 128 (mqttsn-10k: 10,000 clients).
#[derive(Debug, Default)]
struct Work {
    requests: VecDeque<Request>,
    queue: VecDeque<Queued>,
    outq: VecDeque<Outgoing>,
    events: VecDeque<ClientEvent>,
}

impl Work {
    fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.queue.is_empty()
            && self.outq.is_empty()
            && self.events.is_empty()
    }
}

const TIMERS: usize = 7;
/// A timer that is not running.
const UNARMED: SimTime = SimTime(u64::MAX);

/// The topic of a queued publish.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PubTopic {
    Name(Arc<str>),
    Fixed(TopicRef),
}

#[derive(Clone, Debug)]
struct Queued {
    handle: MessageHandle,
    topic: PubTopic,
    payload: Arc<[u8]>,
    qos: Qos,
    retain: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    Ack,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    Rec,
    /// PUBREL sent, waiting for PUBCOMP.
    Comp,
}

#[derive(Clone, Debug)]
struct InFlight {
    q: Queued,
    topic: TopicRef,
    msg_id: u16,
    stage: Stage,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OwnedSub {
    Name(Arc<str>),
    Predefined(u16),
    Short([u8; 2]),
}

impl OwnedSub {
    fn view(&self) -> SubTopic<'_> {
        match self {
            OwnedSub::Name(n) => SubTopic::Name(n),
            OwnedSub::Predefined(id) => SubTopic::Predefined(*id),
            OwnedSub::Short(s) => SubTopic::Short(*s),
        }
    }
}

#[derive(Clone, Debug)]
enum Request {
    Subscribe {
        handle: RequestHandle,
        topic: OwnedSub,
        qos: Qos,
    },
    Unsubscribe {
        handle: RequestHandle,
        topic: OwnedSub,
    },
    /// DISCONNECT with Duration (§6.14).
    Sleep {
        duration: u16,
    },
    /// WILLTOPICUPD (`None`: delete the will), then WILLMSGUPD.
    WillTopicUpd,
    WillMsgUpd,
}

/// The one transaction awaiting a reply.
#[derive(Clone, Debug)]
enum Tx {
    Connect,
    WillTopic,
    WillMsg,
    Register { msg_id: u16, name: Arc<str> },
    Publish(InFlight),
    Request { msg_id: u16, req: Request },
    PingReq,
    Disconnect,
}

impl Tx {
    fn kind(&self) -> MsgType {
        match self {
            Tx::Connect => MsgType::Connect,
            Tx::WillTopic => MsgType::WillTopic,
            Tx::WillMsg => MsgType::WillMsg,
            Tx::Register { .. } => MsgType::Register,
            Tx::Publish(f) if f.stage == Stage::Comp => MsgType::PubRel,
            Tx::Publish(_) => MsgType::Publish,
            Tx::Request { req, .. } => match req {
                Request::Subscribe { .. } => MsgType::Subscribe,
                Request::Unsubscribe { .. } => MsgType::Unsubscribe,
                Request::Sleep { .. } => MsgType::Disconnect,
                Request::WillTopicUpd => MsgType::WillTopicUpd,
                Request::WillMsgUpd => MsgType::WillMsgUpd,
            },
            Tx::PingReq => MsgType::PingReq,
            Tx::Disconnect => MsgType::Disconnect,
        }
    }
}

/// A message waiting for `poll_transmit` (encoded only then).
#[derive(Clone, Debug)]
enum Out {
    SearchGw,
    GwInfo {
        gw_id: u8,
        gw_add: [u8; 6],
    },
    Connect,
    WillTopic,
    WillMsg,
    Register {
        msg_id: u16,
        name: Arc<str>,
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
    Subscribe {
        dup: bool,
        qos: Qos,
        msg_id: u16,
        topic: OwnedSub,
    },
    Unsubscribe {
        msg_id: u16,
        topic: OwnedSub,
    },
    PingReq {
        with_id: bool,
    },
    Disconnect {
        duration: Option<u16>,
    },
    WillTopicUpd,
    WillMsgUpd,
}

#[derive(Clone, Debug)]
struct Outgoing {
    to: SockAddr,
    out: Out,
    message: Option<MessageHandle>,
    retransmission: bool,
}

#[derive(Clone, Debug)]
struct KnownGw {
    gw_id: u8,
    addr: SockAddr,
    /// Deadline for the next ADVERTISE (N_ADV × Duration after the last).
    adv_deadline: Option<SimTime>,
}

#[derive(Clone, Debug)]
struct Pending {
    tx: Tx,
    to: SockAddr,
    retries: u32,
}

/// The client.
#[derive(Debug)]
pub struct Client {
    /// The parameters, shared by every client built from one scenario
    /// (its own id and will are the two fields below).
    config: Arc<ClientConfig>,
    /// ClientId (taken out of the config given to [`Client::new`]).
    id: Box<str>,
    /// The will it connects with (likewise).
    will: Option<Box<Will>>,
    rng: SimRng,
    state: ClientState,
    /// Deadline per timer; [`UNARMED`] when not running (8 bytes, not the
    /// 16 of an `Option`: thousands of clients).
    timers: [SimTime; TIMERS],
    /// The application wants a connection (connect called, no disconnect).
    want: bool,
    gateways: Vec<KnownGw>,
    /// The gateway connected to (or being connected to).
    gw: Option<SockAddr>,
    search_sent: bool,
    search_attempt: u32,
    search_started: Option<SimTime>,
    /// Boxed: a client has a transaction outstanding for a few round trips
    /// per message, and the transaction (80 bytes) would otherwise sit in
    /// each of thousands of clients all the time.
    pending: Option<Box<Pending>>,
    /// Waiting T_WAIT after congestion: retransmit the pending message then.
    congested: bool,
    /// Requests, publishes waiting their turn, datagrams to send and
    /// events to report: held only while one of them is non-empty (see
    /// [`Work`]).
    work: Option<Box<Work>>,
    /// Topic name ↔ id learned from REGACK, SUBACK and REGISTER (§6.5).
    topics: Vec<(u16, Arc<str>)>,
    /// QoS 2 MsgIds received and not yet released.
    incoming_qos2: Vec<u16>,
    /// Sleep Duration while asleep/awake (seconds).
    sleep_duration: Option<u16>,
    /// PINGRESP received in this awake period.
    awake_done: bool,
    /// Will to send by WILLTOPICUPD / WILLMSGUPD.
    will_update: Option<Box<Will>>,
    last_msg_id: u16,
    next_handle: u64,
    stats: ClientStats,
}

impl ClientStats {
    /// Messages of type `ty` sent (0 when type counts are off).
    pub fn sent_of(&self, ty: MsgType) -> u64 {
        self.by_type.as_ref().map_or(0, |t| t.sent[ty.index()])
    }
    /// Messages of type `ty` received (0 when type counts are off).
    pub fn received_of(&self, ty: MsgType) -> u64 {
        self.by_type.as_ref().map_or(0, |t| t.received[ty.index()])
    }
}

impl Client {
    /// A client in state `Idle`; `rng` is its own stream (SEARCHGW and
    /// GWINFO delays).
    pub fn new(mut config: ClientConfig, rng: SimRng) -> Self {
        let id = std::mem::take(&mut config.client_id);
        let will = config.will.take();
        Self::with_shared(Arc::new(config), &id, will, rng)
    }

    /// A client with parameters shared with other clients (a simulator
    /// with thousands of them keeps one copy): `config.client_id` and
    /// `config.will` are not read, `client_id` and `will` are this
    /// client's.
    pub fn with_shared(
        config: Arc<ClientConfig>,
        client_id: &str,
        will: Option<Will>,
        rng: SimRng,
    ) -> Self {
        let type_stats = config.type_stats;
        Client {
            config,
            id: client_id.into(),
            will: will.map(Box::new),
            rng,
            state: ClientState::Idle,
            timers: [UNARMED; TIMERS],
            want: false,
            gateways: Vec::new(),
            gw: None,
            search_sent: false,
            search_attempt: 0,
            search_started: None,
            pending: None,
            congested: false,
            work: None,
            topics: Vec::new(),
            incoming_qos2: Vec::new(),
            sleep_duration: None,
            awake_done: false,
            will_update: None,
            last_msg_id: 0,
            next_handle: 0,
            stats: ClientStats {
                by_type: type_stats.then(Box::default),
                ..ClientStats::default()
            },
        }
    }

    /// The parameters; its `client_id` and `will` may be another
    /// client's or empty (see [`Client::with_shared`]): ask
    /// [`Client::client_id`] and [`Client::will`].
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
    pub fn client_id(&self) -> &str {
        &self.id
    }
    /// The will it connects with (after [`Client::update_will`], the new one).
    pub fn will(&self) -> Option<&Will> {
        self.will.as_deref()
    }
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
    pub fn state(&self) -> ClientState {
        self.state
    }
    /// The gateway connected to (or being connected to).
    pub fn gateway(&self) -> Option<SockAddr> {
        self.gw
    }
    /// Known gateways as (GwId, address), in discovery order.
    pub fn gateways(&self) -> impl Iterator<Item = (u8, SockAddr)> + '_ {
        self.gateways.iter().map(|g| (g.gw_id, g.addr))
    }
    pub fn is_connected(&self) -> bool {
        matches!(self.state, ClientState::Active)
    }
    /// Publishes queued (not yet sent).
    pub fn queued_len(&self) -> usize {
        self.work.as_deref().map_or(0, |w| w.queue.len())
    }
    /// True when nothing is queued and no transaction is outstanding.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
            && self
                .work
                .as_deref()
                .is_none_or(|w| w.queue.is_empty() && w.requests.is_empty() && w.outq.is_empty())
    }
    /// The topic id registered for `name`, if any.
    pub fn topic_id(&self, name: &str) -> Option<u16> {
        self.topics
            .iter()
            .find(|(_, n)| &**n == name)
            .map(|(id, _)| *id)
    }

    fn set(&mut self, t: Timer, at: Option<SimTime>) {
        if let Some(x) = self.timers.get_mut(t as usize) {
            // a deadline at the end of time never fires: the same as none
            *x = at.unwrap_or(UNARMED);
        }
    }
    fn due(&self, t: Timer, now: SimTime) -> bool {
        self.timers
            .get(t as usize)
            .is_some_and(|&at| at != UNARMED && at <= now)
    }
    fn armed(&self, t: Timer) -> bool {
        self.timers.get(t as usize).is_some_and(|&at| at != UNARMED)
    }
    fn uniform(&mut self, max: SimDuration) -> SimDuration {
        SimDuration::from_nanos(self.rng.range_inclusive(0, max.as_nanos()))
    }
    fn next_msg_id(&mut self) -> u16 {
        self.last_msg_id = self.last_msg_id.wrapping_add(1);
        if self.last_msg_id == 0 {
            self.last_msg_id = 1;
        }
        self.last_msg_id
    }
    /// The queues, allocated on first use.
    fn work(&mut self) -> &mut Work {
        self.work.get_or_insert_with(Default::default)
    }
    /// Free the queues once all are empty (the driver has taken every
    /// datagram and event): an idle client holds 8 bytes for them.
    fn tidy(&mut self) {
        if self.work.as_deref().is_some_and(Work::is_empty) {
            self.work = None;
        }
    }
    /// The next publish waiting its turn, if any.
    fn pop_queued(&mut self) -> Option<Queued> {
        self.work.as_deref_mut().and_then(|w| pop1(&mut w.queue))
    }
    fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }
    fn push_out(&mut self, to: SockAddr, out: Out) {
        push1(
            &mut self.work().outq,
            Outgoing {
                to,
                out,
                message: None,
                retransmission: false,
            },
        );
    }
    fn predefined_id(&self, name: &str) -> Option<u16> {
        self.config
            .predefined
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| *id)
    }

    /// A statically configured gateway (as if found by GWINFO).
    pub fn add_gateway(&mut self, gw_id: u8, addr: SockAddr) {
        self.learn_gateway(gw_id, addr, None, FoundBy::Config, None);
    }

    /// A statically configured gateway, learned at `now`: as
    /// [`Client::add_gateway`], and a search under way ends with it (a
    /// device configured with its gateway's address tries it again after
    /// losing it rather than waiting for GWINFO; §6.1 allows both).
    pub fn configure_gateway(&mut self, now: SimTime, gw_id: u8, addr: SockAddr) {
        self.add_gateway(gw_id, addr);
        self.found_while_searching(now);
    }

    /// Start connecting: to the first known gateway, else search (§6.1).
    pub fn connect(&mut self, now: SimTime) {
        self.want = true;
        match self.state {
            ClientState::Idle | ClientState::Asleep | ClientState::Awake => {
                // §6.14: CONNECT also ends the sleeping state.
                self.sleep_duration = None;
                self.set(Timer::Wake, None);
                self.start_connect(now)
            }
            _ => {}
        }
    }

    fn start_connect(&mut self, now: SimTime) {
        self.pending = None;
        self.congested = false;
        self.set(Timer::Wait, None);
        self.set(Timer::Retry, None);
        let target = self
            .gw
            .filter(|a| self.gateways.iter().any(|g| g.addr == *a))
            .or_else(|| self.gateways.first().map(|g| g.addr));
        match target {
            Some(addr) => {
                self.gw = Some(addr);
                self.state = ClientState::Connecting;
                if self.config.clean_session {
                    // MQTT-SN 1.2 §6.3: a clean session starts without
                    // topic ids; a persistent one keeps them.
                    self.topics.clear();
                    self.incoming_qos2.clear();
                }
                self.start_tx(now, Tx::Connect, addr);
            }
            None => self.start_search(now),
        }
    }

    fn start_search(&mut self, now: SimTime) {
        self.state = ClientState::Searching;
        self.gw = None;
        self.search_sent = false;
        self.search_attempt = 0;
        self.search_started.get_or_insert(now);
        let d = self.uniform(self.config.t_searchgw);
        self.set(Timer::Search, Some(now + d));
    }

    fn search_wait(&self) -> SimDuration {
        let base = self.config.t_searchgw.max(SimDuration::from_millis(1));
        base.saturating_mul(1u64 << self.search_attempt.min(32))
            .min(self.config.search_backoff_max.max(base))
    }

    /// Publish `payload` on `topic` (a topic name; with
    /// `PublishTopicType::Short` the two-character short name). QoS −1 is
    /// sent at once to a known gateway; other levels are queued and sent
    /// when connected, one QoS 1/2 exchange at a time.
    pub fn publish(
        &mut self,
        now: SimTime,
        topic: &str,
        payload: impl Into<Arc<[u8]>>,
        qos: Qos,
        retain: bool,
    ) -> Result<MessageHandle, ClientError> {
        let payload = payload.into();
        if codec::total_len(5 + payload.len()) > codec::MAX_MESSAGE_LEN {
            return Err(ClientError::TooLarge(payload.len()));
        }
        let topic = match self.config.publish_topic_type {
            PublishTopicType::Short => match topic.as_bytes() {
                [a, b] => PubTopic::Fixed(TopicRef::Short([*a, *b])),
                _ => return Err(ClientError::NotShort(topic.to_string())),
            },
            PublishTopicType::Predefined => match self.predefined_id(topic) {
                Some(id) => PubTopic::Fixed(TopicRef::Predefined(id)),
                None => return Err(ClientError::NotPredefined(topic.to_string())),
            },
            PublishTopicType::Normal => match self.predefined_id(topic) {
                Some(id) => PubTopic::Fixed(TopicRef::Predefined(id)),
                None => {
                    if topic.is_empty() || topic.contains(['+', '#']) {
                        return Err(ClientError::Topic(topic.to_string()));
                    }
                    PubTopic::Name(Arc::from(topic))
                }
            },
        };
        let handle = MessageHandle(self.handle());
        if qos == Qos::MinusOne {
            // MQTT-SN 1.2 §6.8: no connection, predefined or short topic only.
            let PubTopic::Fixed(t) = topic else {
                return Err(ClientError::MinusOneNeedsFixedTopic);
            };
            let to = self
                .gw
                .or_else(|| self.gateways.first().map(|g| g.addr))
                .ok_or(ClientError::NoGateway)?;
            self.stats.publishes_sent += 1;
            push1(
                &mut self.work().outq,
                Outgoing {
                    to,
                    out: Out::Publish {
                        dup: false,
                        qos,
                        retain,
                        topic: t,
                        msg_id: 0,
                        data: payload,
                    },
                    message: Some(handle),
                    retransmission: false,
                },
            );
            push1(&mut self.work().events, ClientEvent::PublishSent { handle });
            return Ok(handle);
        }
        if self.queued_len() >= self.config.max_queued {
            self.stats.dropped_queue_full += 1;
            return Err(ClientError::QueueFull {
                limit: self.config.max_queued,
            });
        }
        push1(
            &mut self.work().queue,
            Queued {
                handle,
                topic,
                payload,
                qos,
                retain,
            },
        );
        self.pump(now);
        Ok(handle)
    }

    fn sub_topic(&self, topic: &str, id_type: super::TopicIdType) -> Result<OwnedSub, ClientError> {
        Ok(match id_type {
            super::TopicIdType::Normal => {
                if topic.is_empty() {
                    return Err(ClientError::Topic(topic.to_string()));
                }
                OwnedSub::Name(Arc::from(topic))
            }
            super::TopicIdType::Predefined => match self.predefined_id(topic) {
                Some(id) => OwnedSub::Predefined(id),
                None => return Err(ClientError::NotPredefined(topic.to_string())),
            },
            super::TopicIdType::Short => match topic.as_bytes() {
                [a, b] => OwnedSub::Short([*a, *b]),
                _ => return Err(ClientError::NotShort(topic.to_string())),
            },
        })
    }

    /// Subscribe to `topic` (a topic filter, wildcards allowed, with
    /// `TopicIdType::Normal`; a predefined topic's name; a short name).
    pub fn subscribe(
        &mut self,
        now: SimTime,
        topic: &str,
        id_type: super::TopicIdType,
        qos: Qos,
    ) -> Result<RequestHandle, ClientError> {
        let topic = self.sub_topic(topic, id_type)?;
        let qos = if qos == Qos::MinusOne { Qos::Zero } else { qos };
        let handle = RequestHandle(self.handle());
        self.work()
            .requests
            .push_back(Request::Subscribe { handle, topic, qos });
        self.pump(now);
        Ok(handle)
    }

    /// Unsubscribe from `topic` (as for [`Client::subscribe`]).
    pub fn unsubscribe(
        &mut self,
        now: SimTime,
        topic: &str,
        id_type: super::TopicIdType,
    ) -> Result<RequestHandle, ClientError> {
        let topic = self.sub_topic(topic, id_type)?;
        let handle = RequestHandle(self.handle());
        self.work()
            .requests
            .push_back(Request::Unsubscribe { handle, topic });
        self.pump(now);
        Ok(handle)
    }

    /// Replace (`Some`) or delete (`None`) the will stored at the gateway
    /// (§6.4: WILLTOPICUPD then WILLMSGUPD).
    pub fn update_will(&mut self, now: SimTime, will: Option<Will>) {
        let has = will.is_some();
        self.will = will.clone().map(Box::new);
        self.will_update = will.map(Box::new);
        self.work().requests.push_back(Request::WillTopicUpd);
        if has {
            self.work().requests.push_back(Request::WillMsgUpd);
        }
        self.pump(now);
    }

    /// Go to sleep for `duration` seconds (§6.14): DISCONNECT with
    /// Duration once the outstanding work is done.
    pub fn sleep(&mut self, now: SimTime, duration: u16) {
        self.work().requests.push_back(Request::Sleep {
            duration: duration.max(1),
        });
        self.pump(now);
    }

    /// Disconnect (§6.12): DISCONNECT, wait for the gateway's DISCONNECT.
    /// Queued publishes stay for the next `connect`.
    pub fn disconnect(&mut self, now: SimTime) {
        self.want = false;
        match self.state {
            ClientState::Active | ClientState::Awake | ClientState::Connecting => {
                self.pending = None;
                self.set(Timer::Retry, None);
                self.set(Timer::Wait, None);
                self.congested = false;
                if let Some(gw) = self.gw {
                    self.state = ClientState::Disconnecting;
                    self.start_tx(now, Tx::Disconnect, gw);
                }
            }
            ClientState::Asleep => {
                // Asleep the gateway keeps us until the deadline; say goodbye
                // now (one message, no reply awaited: the radio is off).
                if let Some(gw) = self.gw {
                    self.push_out(gw, Out::Disconnect { duration: None });
                }
                self.go_idle(false);
            }
            ClientState::Searching | ClientState::Disconnecting | ClientState::Idle => {
                self.go_idle(false)
            }
        }
    }

    fn go_idle(&mut self, by_gateway: bool) {
        let was = self.state;
        self.state = ClientState::Idle;
        self.pending = None;
        self.congested = false;
        self.sleep_duration = None;
        for t in [
            Timer::Search,
            Timer::Retry,
            Timer::KeepAlive,
            Timer::Wait,
            Timer::Wake,
        ] {
            self.set(t, None);
        }
        if was != ClientState::Idle {
            push1(
                &mut self.work().events,
                ClientEvent::Disconnected { by_gateway },
            );
        }
    }

    /// Send the first message of a transaction and supervise it (§6.13).
    fn start_tx(&mut self, now: SimTime, tx: Tx, to: SockAddr) {
        self.pending = Some(Box::new(Pending { tx, to, retries: 0 }));
        self.send_pending(now, false);
    }

    /// (Re)send the pending transaction's message and arm T_RETRY.
    fn send_pending(&mut self, now: SimTime, again: bool) {
        let Some(p) = &self.pending else { return };
        let to = p.to;
        let (out, message) = match &p.tx {
            Tx::Connect => (Out::Connect, None),
            Tx::WillTopic => (Out::WillTopic, None),
            Tx::WillMsg => (Out::WillMsg, None),
            Tx::Register { msg_id, name } => (
                Out::Register {
                    msg_id: *msg_id,
                    name: name.clone(),
                },
                None,
            ),
            Tx::Publish(f) => match f.stage {
                Stage::Comp => (Out::PubRel(f.msg_id), Some(f.q.handle)),
                _ => (
                    Out::Publish {
                        // MQTT-SN 1.2 §5.3.4: DUP set on retransmissions.
                        dup: again,
                        qos: f.q.qos,
                        retain: f.q.retain,
                        topic: f.topic,
                        msg_id: f.msg_id,
                        data: f.q.payload.clone(),
                    },
                    Some(f.q.handle),
                ),
            },
            Tx::Request { msg_id, req } => (
                match req {
                    Request::Subscribe { topic, qos, .. } => Out::Subscribe {
                        dup: again,
                        qos: *qos,
                        msg_id: *msg_id,
                        topic: topic.clone(),
                    },
                    Request::Unsubscribe { topic, .. } => Out::Unsubscribe {
                        msg_id: *msg_id,
                        topic: topic.clone(),
                    },
                    Request::Sleep { duration } => Out::Disconnect {
                        duration: Some(*duration),
                    },
                    Request::WillTopicUpd => Out::WillTopicUpd,
                    Request::WillMsgUpd => Out::WillMsgUpd,
                },
                None,
            ),
            Tx::PingReq => (
                Out::PingReq {
                    with_id: matches!(self.state, ClientState::Awake | ClientState::Asleep),
                },
                None,
            ),
            Tx::Disconnect => (Out::Disconnect { duration: None }, None),
        };
        push1(
            &mut self.work().outq,
            Outgoing {
                to,
                out,
                message,
                retransmission: again,
            },
        );
        self.set(Timer::Retry, Some(now + self.config.t_retry));
    }

    /// The expected reply arrived: the transaction is over.
    fn finish_tx(&mut self) {
        self.pending = None;
        self.set(Timer::Retry, None);
    }

    /// Start the next transaction when none is outstanding.
    fn pump(&mut self, now: SimTime) {
        loop {
            let can = matches!(self.state, ClientState::Active)
                || (self.state == ClientState::Awake && self.awake_done);
            if !can || self.pending.is_some() || self.congested {
                return;
            }
            let Some(gw) = self.gw else { return };
            if let Some(req) = self
                .work
                .as_deref_mut()
                .and_then(|w| w.requests.pop_front())
            {
                let msg_id = match req {
                    Request::Subscribe { .. } | Request::Unsubscribe { .. } => self.next_msg_id(),
                    _ => 0,
                };
                if let Request::Sleep { duration } = req {
                    self.sleep_duration = Some(duration);
                }
                self.start_tx(now, Tx::Request { msg_id, req }, gw);
                return;
            }
            let Some(head) = self.work.as_deref().and_then(|w| w.queue.front()) else {
                if self.state == ClientState::Awake {
                    self.fall_asleep(now);
                }
                return;
            };
            let topic = match &head.topic {
                PubTopic::Fixed(t) => *t,
                PubTopic::Name(n) => match self.topic_id(n) {
                    Some(id) => TopicRef::Normal(id),
                    None => {
                        // MQTT-SN 1.2 §6.5: register the name first.
                        let name = n.clone();
                        let msg_id = self.next_msg_id();
                        self.start_tx(now, Tx::Register { msg_id, name }, gw);
                        return;
                    }
                },
            };
            let Some(q) = self.pop_queued() else {
                return;
            };
            if q.qos.acked() {
                let msg_id = self.next_msg_id();
                let stage = if q.qos == Qos::One {
                    Stage::Ack
                } else {
                    Stage::Rec
                };
                self.stats.publishes_sent += 1;
                self.start_tx(
                    now,
                    Tx::Publish(InFlight {
                        q,
                        topic,
                        msg_id,
                        stage,
                    }),
                    gw,
                );
                return;
            }
            self.stats.publishes_sent += 1;
            let handle = q.handle;
            push1(
                &mut self.work().outq,
                Outgoing {
                    to: gw,
                    out: Out::Publish {
                        dup: false,
                        qos: q.qos,
                        retain: q.retain,
                        topic,
                        msg_id: 0,
                        data: q.payload,
                    },
                    message: Some(handle),
                    retransmission: false,
                },
            );
            push1(&mut self.work().events, ClientEvent::PublishSent { handle });
        }
    }

    fn fall_asleep(&mut self, now: SimTime) {
        let d = self.sleep_duration.unwrap_or(1);
        self.state = ClientState::Asleep;
        self.awake_done = false;
        self.set(Timer::KeepAlive, None);
        self.set(
            Timer::Wake,
            Some(now + SimDuration::from_secs(u64::from(d))),
        );
        push1(&mut self.work().events, ClientEvent::Asleep);
    }

    fn learn_gateway(
        &mut self,
        gw_id: u8,
        addr: SockAddr,
        adv: Option<u16>,
        by: FoundBy,
        now: Option<SimTime>,
    ) {
        let deadline = match (adv, now) {
            (Some(d), Some(now)) => {
                let period = if d == 0 {
                    self.config.t_adv
                } else {
                    SimDuration::from_secs(u64::from(d))
                };
                // MQTT-SN 1.2 §6.1: lost after N_ADV missed ADVERTISEs.
                Some(now + period.saturating_mul(u64::from(self.config.n_adv.max(1))))
            }
            _ => None,
        };
        if let Some(g) = self.gateways.iter_mut().find(|g| g.addr == addr) {
            g.gw_id = gw_id;
            if deadline.is_some() {
                g.adv_deadline = deadline;
            }
        } else {
            if self.gateways.len() >= self.config.max_gateways.max(1) {
                // Forget the oldest one we are not using.
                let cur = self.gw;
                if let Some(i) = self.gateways.iter().position(|g| Some(g.addr) != cur) {
                    self.gateways.remove(i);
                } else {
                    return;
                }
            }
            if self.gateways.capacity() == 0 {
                self.gateways.reserve_exact(1);
            }
            push1v(
                &mut self.gateways,
                KnownGw {
                    gw_id,
                    addr,
                    adv_deadline: deadline,
                },
            );
            push1(
                &mut self.work().events,
                ClientEvent::GatewayFound { gw_id, addr, by },
            );
            if let (Some(start), Some(now)) = (self.search_started, now) {
                if self.stats.discovery_time.is_none() {
                    self.stats.discovery_time = Some(now - start);
                }
            }
        }
        self.arm_adv();
    }

    fn arm_adv(&mut self) {
        let t = self.gateways.iter().filter_map(|g| g.adv_deadline).min();
        self.set(Timer::Adv, t);
    }

    /// The gateway is lost: forget it, drop the pending message, and
    /// connect elsewhere (§6.13: "try to connect to another gateway").
    fn gateway_lost(&mut self, now: SimTime, reason: LostReason) {
        let Some(addr) = self.gw.take() else {
            return;
        };
        self.stats.gateways_lost += 1;
        let gw_id = self
            .gateways
            .iter()
            .find(|g| g.addr == addr)
            .map_or(0, |g| g.gw_id);
        self.gateways.retain(|g| g.addr != addr);
        self.arm_adv();
        if let Some(p) = self.pending.take() {
            self.give_up(p.tx);
        }
        self.set(Timer::Retry, None);
        self.set(Timer::Wait, None);
        self.set(Timer::KeepAlive, None);
        self.set(Timer::Wake, None);
        self.congested = false;
        self.sleep_duration = None;
        self.topics.clear();
        push1(
            &mut self.work().events,
            ClientEvent::GatewayLost {
                gw_id,
                addr,
                reason,
            },
        );
        if self.want && self.config.auto_reconnect {
            self.start_connect(now);
        } else {
            self.state = ClientState::Idle;
        }
    }

    fn give_up(&mut self, tx: Tx) {
        let kind = tx.kind();
        let (message, request) = match tx {
            Tx::Publish(f) => {
                self.stats.publishes_given_up += 1;
                (Some(f.q.handle), None)
            }
            Tx::Request {
                req: Request::Subscribe { handle, .. } | Request::Unsubscribe { handle, .. },
                ..
            } => (None, Some(handle)),
            Tx::Register { .. } => {
                // The publish that needed the id is dropped with it.
                match self.pop_queued() {
                    Some(q) => {
                        self.stats.publishes_given_up += 1;
                        (Some(q.handle), None)
                    }
                    None => (None, None),
                }
            }
            _ => (None, None),
        };
        self.stats.give_ups += 1;
        push1(
            &mut self.work().events,
            ClientEvent::GaveUp {
                message,
                request,
                kind,
            },
        );
    }

    fn remember_topic(&mut self, id: u16, name: Arc<str>) {
        self.topics.retain(|(i, n)| *i != id && *n != name);
        if self.topics.len() >= self.config.max_topics.max(1) {
            self.topics.remove(0);
        }
        push1v(&mut self.topics, (id, name));
    }

    fn resolve(&self, t: TopicRef) -> Option<Arc<str>> {
        match t {
            TopicRef::Normal(id) => self
                .topics
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, n)| n.clone()),
            TopicRef::Predefined(id) => self
                .config
                .predefined
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, n)| Arc::from(n.as_str())),
            TopicRef::Short(s) => std::str::from_utf8(&s).ok().map(Arc::from),
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
        let ty = m.msg_type();
        if let Some(t) = self.stats.by_type.as_deref_mut() {
            t.count_received(ty, data.len());
        }
        if self.state == ClientState::Asleep {
            // MQTT-SN 1.2 §6.14: asleep, the radio is off.
            self.stats.ignored += 1;
            return;
        }
        match m {
            Message::Advertise { gw_id, duration } => {
                self.learn_gateway(gw_id, from, Some(duration), FoundBy::Advertise, Some(now));
                self.found_while_searching(now);
            }
            Message::SearchGw { .. } => self.heard_searchgw(now),
            Message::GwInfo { gw_id, gw_add } => {
                // MQTT-SN 1.2 §6.1: someone answered; ours is not needed.
                self.set(Timer::GwInfo, None);
                let addr = if gw_add.is_empty() {
                    Some(from)
                } else {
                    sockaddr_from_bytes(gw_add)
                };
                match addr {
                    Some(a) => {
                        self.learn_gateway(gw_id, a, None, FoundBy::GwInfo, Some(now));
                        self.found_while_searching(now);
                    }
                    None => self.stats.ignored += 1,
                }
            }
            _ if Some(from) != self.gw => self.stats.ignored += 1,
            other => self.on_gateway_message(now, from, other),
        }
    }

    fn found_while_searching(&mut self, now: SimTime) {
        if self.state == ClientState::Searching {
            self.set(Timer::Search, None);
            self.start_connect(now);
        }
    }

    fn heard_searchgw(&mut self, now: SimTime) {
        if self.state == ClientState::Searching && !self.search_sent {
            // MQTT-SN 1.2 §6.1: behave as if our own SEARCHGW had been sent.
            self.search_sent = true;
            let w = self.search_wait();
            self.set(Timer::Search, Some(now + w));
            return;
        }
        let knows = self.gw.is_some() || !self.gateways.is_empty();
        if self.config.answer_searchgw && knows && !self.armed(Timer::GwInfo) {
            // MQTT-SN 1.2 §6.1: answer after a random delay up to T_GWINFO.
            let d = self.uniform(self.config.t_gwinfo);
            self.set(Timer::GwInfo, Some(now + d));
        }
    }

    fn pending_tx(&self) -> Option<&Tx> {
        self.pending.as_ref().map(|p| &p.tx)
    }

    fn on_gateway_message(&mut self, now: SimTime, gw: SockAddr, m: Message<'_>) {
        match m {
            Message::WillTopicReq => {
                if matches!(self.pending_tx(), Some(Tx::Connect | Tx::WillTopic)) {
                    self.start_tx(now, Tx::WillTopic, gw);
                }
            }
            Message::WillMsgReq => {
                if matches!(self.pending_tx(), Some(Tx::WillTopic | Tx::WillMsg)) {
                    self.start_tx(now, Tx::WillMsg, gw);
                }
            }
            Message::ConnAck { code } => {
                if !matches!(
                    self.pending_tx(),
                    Some(Tx::Connect | Tx::WillTopic | Tx::WillMsg)
                ) {
                    self.stats.ignored += 1;
                    return;
                }
                match code {
                    ReturnCode::Accepted => {
                        self.finish_tx();
                        self.state = ClientState::Active;
                        self.stats.connects += 1;
                        self.search_started = None;
                        self.arm_keep_alive(now);
                        push1(
                            &mut self.work().events,
                            ClientEvent::Connected { gateway: gw },
                        );
                        self.pump(now);
                    }
                    ReturnCode::Congestion => self.congestion(now),
                    code => {
                        self.finish_tx();
                        push1(
                            &mut self.work().events,
                            ClientEvent::ConnectRefused { code },
                        );
                        self.gateway_lost(now, LostReason::Refused(code));
                    }
                }
            }
            Message::RegAck {
                topic_id,
                msg_id,
                code,
            } => {
                let Some(Tx::Register { msg_id: want, name }) = self.pending_tx() else {
                    self.stats.ignored += 1;
                    return;
                };
                if *want != msg_id {
                    self.stats.ignored += 1;
                    return;
                }
                let name = name.clone();
                match code {
                    ReturnCode::Accepted => {
                        self.finish_tx();
                        self.stats.registrations += 1;
                        self.remember_topic(topic_id, name.clone());
                        push1(
                            &mut self.work().events,
                            ClientEvent::Registered {
                                topic: name,
                                topic_id,
                                by_gateway: false,
                            },
                        );
                        self.pump(now);
                    }
                    // MQTT-SN 1.2 §6.5: congestion: REGISTER again after T_WAIT.
                    ReturnCode::Congestion => self.congestion(now),
                    code => {
                        self.finish_tx();
                        if let Some(q) = self.pop_queued() {
                            push1(
                                &mut self.work().events,
                                ClientEvent::PublishRejected {
                                    handle: q.handle,
                                    code,
                                },
                            );
                        }
                        self.pump(now);
                    }
                }
            }
            Message::PubAck { msg_id, code, .. } => self.on_puback(now, msg_id, code),
            Message::PubRec { msg_id } => {
                if let Some(Pending {
                    tx: Tx::Publish(f),
                    retries,
                    ..
                }) = self.pending.as_deref_mut()
                {
                    if f.msg_id == msg_id && f.q.qos == Qos::Two {
                        // PUBREL starts a new wait (its own T_RETRY/N_RETRY).
                        f.stage = Stage::Comp;
                        *retries = 0;
                        self.send_pending(now, false);
                        return;
                    }
                }
                self.stats.ignored += 1;
            }
            Message::PubComp { msg_id } => {
                if let Some(Tx::Publish(f)) = self.pending_tx() {
                    if f.msg_id == msg_id && f.stage == Stage::Comp {
                        let handle = f.q.handle;
                        self.finish_tx();
                        push1(
                            &mut self.work().events,
                            ClientEvent::PublishCompleted { handle },
                        );
                        self.pump(now);
                        return;
                    }
                }
                self.stats.ignored += 1;
            }
            Message::Register {
                topic_id,
                msg_id,
                topic_name,
            } => {
                // MQTT-SN 1.2 §6.10: the gateway tells us a topic id before
                // it publishes on it.
                let name: Arc<str> = Arc::from(topic_name);
                self.remember_topic(topic_id, name.clone());
                self.push_out(
                    gw,
                    Out::RegAck {
                        topic_id,
                        msg_id,
                        code: ReturnCode::Accepted,
                    },
                );
                push1(
                    &mut self.work().events,
                    ClientEvent::Registered {
                        topic: name,
                        topic_id,
                        by_gateway: true,
                    },
                );
            }
            Message::Publish {
                dup,
                qos,
                retain,
                topic,
                msg_id,
                data,
            } => self.on_publish(gw, dup, qos, retain, topic, msg_id, data),
            Message::PubRel { msg_id } => {
                self.incoming_qos2.retain(|&x| x != msg_id);
                self.push_out(gw, Out::PubComp(msg_id));
            }
            Message::SubAck {
                qos,
                topic_id,
                msg_id,
                code,
            } => {
                let Some(Tx::Request {
                    msg_id: want,
                    req: Request::Subscribe { handle, topic, .. },
                }) = self.pending_tx()
                else {
                    self.stats.ignored += 1;
                    return;
                };
                if *want != msg_id {
                    self.stats.ignored += 1;
                    return;
                }
                let (handle, topic) = (*handle, topic.clone());
                if code == ReturnCode::Congestion {
                    self.congestion(now);
                    return;
                }
                self.finish_tx();
                if code == ReturnCode::Accepted && topic_id != 0 {
                    if let OwnedSub::Name(n) = &topic {
                        if !n.contains(['+', '#']) {
                            self.remember_topic(topic_id, n.clone());
                        }
                    }
                }
                push1(
                    &mut self.work().events,
                    ClientEvent::Subscribed {
                        handle,
                        topic_id,
                        qos,
                        code,
                    },
                );
                self.pump(now);
            }
            Message::UnsubAck { msg_id } => {
                if let Some(Tx::Request {
                    msg_id: want,
                    req: Request::Unsubscribe { handle, .. },
                }) = self.pending_tx()
                {
                    if *want == msg_id {
                        let handle = *handle;
                        self.finish_tx();
                        push1(
                            &mut self.work().events,
                            ClientEvent::Unsubscribed { handle },
                        );
                        self.pump(now);
                        return;
                    }
                }
                self.stats.ignored += 1;
            }
            Message::PingResp => {
                if matches!(self.pending_tx(), Some(Tx::PingReq)) {
                    self.finish_tx();
                    if self.state == ClientState::Awake {
                        // MQTT-SN 1.2 §6.14: PINGRESP ends the awake period
                        // (after our own queued publishes).
                        self.awake_done = true;
                    }
                    self.pump(now);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Message::Disconnect { .. } => match self.pending_tx() {
                Some(Tx::Request {
                    req: Request::Sleep { .. },
                    ..
                }) => {
                    self.finish_tx();
                    self.awake_done = false;
                    self.fall_asleep(now);
                }
                Some(Tx::Disconnect) => {
                    self.finish_tx();
                    self.go_idle(false);
                }
                _ => {
                    // Unsolicited: the gateway dropped us (§6.12); reconnect
                    // to it if the application still wants a connection.
                    self.go_idle(true);
                    if self.want && self.config.auto_reconnect {
                        self.start_connect(now);
                    }
                }
            },
            Message::WillTopicResp { code } => {
                if let Some(Tx::Request {
                    req: Request::WillTopicUpd,
                    ..
                }) = self.pending_tx()
                {
                    self.finish_tx();
                    push1(
                        &mut self.work().events,
                        ClientEvent::WillUpdated {
                            kind: MsgType::WillTopicUpd,
                            code,
                        },
                    );
                    self.pump(now);
                }
            }
            Message::WillMsgResp { code } => {
                if let Some(Tx::Request {
                    req: Request::WillMsgUpd,
                    ..
                }) = self.pending_tx()
                {
                    self.finish_tx();
                    push1(
                        &mut self.work().events,
                        ClientEvent::WillUpdated {
                            kind: MsgType::WillMsgUpd,
                            code,
                        },
                    );
                    self.pump(now);
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// ReturnCode 0x01: wait T_WAIT, then send the pending message again.
    fn congestion(&mut self, now: SimTime) {
        self.congested = true;
        self.set(Timer::Retry, None);
        self.set(Timer::Wait, Some(now + self.config.t_wait));
    }

    fn on_puback(&mut self, now: SimTime, msg_id: u16, code: ReturnCode) {
        let Some(Tx::Publish(f)) = self.pending_tx() else {
            self.stats.ignored += 1;
            return;
        };
        if f.msg_id != msg_id {
            self.stats.ignored += 1;
            return;
        }
        let (handle, qos, topic) = (f.q.handle, f.q.qos, f.topic);
        match code {
            ReturnCode::Accepted if qos == Qos::One => {
                self.finish_tx();
                push1(
                    &mut self.work().events,
                    ClientEvent::PublishAcked { handle },
                );
            }
            ReturnCode::Accepted => {
                self.stats.ignored += 1;
                return;
            }
            // MQTT-SN 1.2 §6.8: congestion: wait T_WAIT, then resend.
            ReturnCode::Congestion => {
                self.congestion(now);
                return;
            }
            ReturnCode::InvalidTopicId => {
                // MQTT-SN 1.2 §6.8: the topic id is stale: register again
                // (once: the message goes back to the queue's head).
                let Some(Pending {
                    tx: Tx::Publish(f), ..
                }) = self.pending.take().map(|p| *p)
                else {
                    return;
                };
                self.set(Timer::Retry, None);
                if let TopicRef::Normal(id) = topic {
                    self.topics.retain(|(i, _)| *i != id);
                    if matches!(f.q.topic, PubTopic::Name(_)) {
                        self.work().queue.push_front(f.q);
                        self.pump(now);
                        return;
                    }
                }
                push1(
                    &mut self.work().events,
                    ClientEvent::PublishRejected { handle, code },
                );
            }
            code => {
                self.finish_tx();
                push1(
                    &mut self.work().events,
                    ClientEvent::PublishRejected { handle, code },
                );
            }
        }
        self.pump(now);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_publish(
        &mut self,
        gw: SockAddr,
        dup: bool,
        qos: Qos,
        retain: bool,
        topic: TopicRef,
        msg_id: u16,
        data: &[u8],
    ) {
        let topic_id = u16::from_be_bytes(topic.field());
        let Some(name) = self.resolve(topic) else {
            // MQTT-SN 1.2 §6.10: unknown topic id: PUBACK "invalid topic id".
            if qos.acked() {
                self.push_out(
                    gw,
                    Out::PubAck {
                        topic_id,
                        msg_id,
                        code: ReturnCode::InvalidTopicId,
                    },
                );
            }
            self.stats.ignored += 1;
            return;
        };
        match qos {
            Qos::One => self.push_out(
                gw,
                Out::PubAck {
                    topic_id,
                    msg_id,
                    code: ReturnCode::Accepted,
                },
            ),
            Qos::Two => {
                self.push_out(gw, Out::PubRec(msg_id));
                if self.incoming_qos2.contains(&msg_id) {
                    self.stats.duplicates_suppressed += 1;
                    return;
                }
                if self.incoming_qos2.len() >= 64 {
                    self.incoming_qos2.remove(0);
                }
                self.incoming_qos2.push(msg_id);
            }
            _ => {}
        }
        self.stats.messages_received += 1;
        push1(
            &mut self.work().events,
            ClientEvent::Message {
                topic: name,
                topic_ref: topic,
                payload: Arc::from(data),
                qos,
                retain,
                dup,
            },
        );
    }

    fn arm_keep_alive(&mut self, now: SimTime) {
        if self.config.keep_alive > 0 && self.state == ClientState::Active {
            let ka = SimDuration::from_secs(u64::from(self.config.keep_alive));
            self.set(Timer::KeepAlive, Some(now + ka));
        }
    }

    fn encode_out(&self, o: &Outgoing, buf: &mut Vec<u8>) -> Option<(usize, MsgType)> {
        let c = &self.config;
        fn will_topic(w: &Option<Box<Will>>) -> Option<WillTopic<'_>> {
            w.as_deref().map(|w| WillTopic {
                qos: w.qos,
                retain: w.retain,
                topic: &w.topic,
            })
        }
        let m = match &o.out {
            Out::SearchGw => Message::SearchGw { radius: c.radius },
            Out::GwInfo { gw_id, gw_add } => Message::GwInfo {
                gw_id: *gw_id,
                gw_add,
            },
            Out::Connect => Message::Connect {
                will: self.will.is_some(),
                clean_session: c.clean_session,
                duration: c.keep_alive,
                client_id: &self.id,
            },
            Out::WillTopic => Message::WillTopic(will_topic(&self.will)),
            Out::WillMsg => Message::WillMsg {
                msg: self.will.as_ref().map_or(&[][..], |w| &w.message),
            },
            Out::Register { msg_id, name } => Message::Register {
                topic_id: 0,
                msg_id: *msg_id,
                topic_name: name,
            },
            Out::RegAck {
                topic_id,
                msg_id,
                code,
            } => Message::RegAck {
                topic_id: *topic_id,
                msg_id: *msg_id,
                code: *code,
            },
            Out::Publish {
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
            Out::PubAck {
                topic_id,
                msg_id,
                code,
            } => Message::PubAck {
                topic_id: *topic_id,
                msg_id: *msg_id,
                code: *code,
            },
            Out::PubRec(m) => Message::PubRec { msg_id: *m },
            Out::PubRel(m) => Message::PubRel { msg_id: *m },
            Out::PubComp(m) => Message::PubComp { msg_id: *m },
            Out::Subscribe {
                dup,
                qos,
                msg_id,
                topic,
            } => Message::Subscribe {
                dup: *dup,
                qos: *qos,
                msg_id: *msg_id,
                topic: topic.view(),
            },
            Out::Unsubscribe { msg_id, topic } => Message::Unsubscribe {
                msg_id: *msg_id,
                topic: topic.view(),
            },
            Out::PingReq { with_id } => Message::PingReq {
                client_id: (*with_id && !self.id.is_empty()).then_some(&*self.id),
            },
            Out::Disconnect { duration } => Message::Disconnect {
                duration: *duration,
            },
            Out::WillTopicUpd => Message::WillTopicUpd(will_topic(&self.will_update)),
            Out::WillMsgUpd => Message::WillMsgUpd {
                msg: self.will_update.as_ref().map_or(&[][..], |w| &w.message),
            },
        };
        let start = buf.len();
        let len = m.encode(buf).ok();
        if len.is_none() {
            buf.truncate(start);
        }
        Some((len?, m.msg_type()))
    }
}

impl SansIo for Client {
    type Input<'a> = Datagram<'a>;
    type Transmit = ClientTransmit;
    type Event = ClientEvent;

    fn handle_input(&mut self, now: SimTime, input: Datagram<'_>) {
        self.on_datagram(now, input.from, input.data);
    }

    fn poll_transmit(&mut self, now: SimTime, buf: &mut Vec<u8>) -> Option<ClientTransmit> {
        loop {
            let Some(o) = self.work.as_deref_mut().and_then(|w| pop1(&mut w.outq)) else {
                self.tidy();
                return None;
            };
            let Some((len, kind)) = self.encode_out(&o, buf) else {
                continue; // sizes were checked when queued
            };
            if let Some(t) = self.stats.by_type.as_deref_mut() {
                t.count_sent(kind, len);
            }
            if o.retransmission {
                self.stats.retransmissions += 1;
            }
            if o.to.addr.is_broadcast() {
                // discovery traffic does not count towards keep alive
            } else {
                // MQTT-SN 1.2 §6.11: PINGREQ only after a silent period.
                self.arm_keep_alive(now);
            }
            return Some(ClientTransmit {
                to: o.to,
                len,
                kind,
                message: o.message,
                retransmission: o.retransmission,
            });
        }
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        let e = self.work.as_deref_mut().and_then(|w| pop1(&mut w.events));
        if e.is_none() {
            self.tidy();
        }
        e
    }

    fn poll_timeout(&self) -> Option<SimTime> {
        self.timers.iter().copied().filter(|&t| t != UNARMED).min()
    }

    /// Fires due timers in a fixed order: SEARCHGW, GWINFO answer, T_WAIT,
    /// T_RETRY, advertisement expiry, keep alive, wake-up.
    fn handle_timeout(&mut self, now: SimTime) {
        if self.due(Timer::Search, now) {
            self.set(Timer::Search, None);
            if self.state == ClientState::Searching {
                if self.search_sent {
                    // No GWINFO: try again after a fresh random delay.
                    self.search_attempt = self.search_attempt.saturating_add(1);
                    self.search_sent = false;
                    let d = self.uniform(self.config.t_searchgw);
                    self.set(Timer::Search, Some(now + d));
                } else {
                    self.stats.searches_sent += 1;
                    self.push_out(broadcast(self.config.port), Out::SearchGw);
                    self.search_sent = true;
                    let w = self.search_wait();
                    self.set(Timer::Search, Some(now + w));
                }
            }
        }
        if self.due(Timer::GwInfo, now) {
            self.set(Timer::GwInfo, None);
            let g = self
                .gw
                .and_then(|a| self.gateways.iter().find(|g| g.addr == a))
                .or(self.gateways.first())
                .map(|g| (g.gw_id, g.addr));
            if let Some((gw_id, addr)) = g {
                self.stats.gwinfo_sent += 1;
                self.push_out(
                    broadcast(self.config.port),
                    Out::GwInfo {
                        gw_id,
                        gw_add: sockaddr_bytes(addr),
                    },
                );
            }
        }
        if self.due(Timer::Wait, now) {
            self.set(Timer::Wait, None);
            if self.congested {
                self.congested = false;
                if let Some(p) = &mut self.pending {
                    p.retries = 0;
                    self.send_pending(now, true);
                } else {
                    self.pump(now);
                }
            }
        }
        if self.due(Timer::Retry, now) {
            self.set(Timer::Retry, None);
            if let Some(p) = &mut self.pending {
                if p.retries < self.config.n_retry {
                    // MQTT-SN 1.2 §6.13: retransmit after T_RETRY.
                    p.retries += 1;
                    self.send_pending(now, true);
                } else {
                    // MQTT-SN 1.2 §6.13: N_RETRY retransmissions: the gateway
                    // is lost.
                    let kind = p.tx.kind();
                    if matches!(p.tx, Tx::Disconnect) {
                        self.pending = None;
                        self.go_idle(false);
                    } else {
                        self.gateway_lost(now, LostReason::Retries(kind));
                    }
                }
            }
        }
        if self.due(Timer::Adv, now) {
            self.set(Timer::Adv, None);
            if matches!(self.state, ClientState::Asleep) {
                // Asleep we cannot hear ADVERTISE: do not count the misses.
                for g in &mut self.gateways {
                    if let Some(d) = &mut g.adv_deadline {
                        if *d <= now {
                            *d = now + self.config.t_adv;
                        }
                    }
                }
            } else {
                let expired: Vec<SockAddr> = self
                    .gateways
                    .iter()
                    .filter(|g| g.adv_deadline.is_some_and(|d| d <= now))
                    .map(|g| g.addr)
                    .collect();
                for a in expired {
                    if Some(a) == self.gw {
                        self.gateway_lost(now, LostReason::AdvertiseTimeout);
                    } else if let Some(i) = self.gateways.iter().position(|g| g.addr == a) {
                        let g = self.gateways.remove(i);
                        push1(
                            &mut self.work().events,
                            ClientEvent::GatewayLost {
                                gw_id: g.gw_id,
                                addr: g.addr,
                                reason: LostReason::AdvertiseTimeout,
                            },
                        );
                    }
                }
            }
            self.arm_adv();
        }
        if self.due(Timer::KeepAlive, now) {
            self.set(Timer::KeepAlive, None);
            if self.state == ClientState::Active {
                match (&self.pending, self.gw) {
                    (None, Some(gw)) if !self.congested => self.start_tx(now, Tx::PingReq, gw),
                    _ => self.arm_keep_alive(now),
                }
            }
        }
        if self.due(Timer::Wake, now) {
            self.set(Timer::Wake, None);
            if let (ClientState::Asleep, Some(gw)) = (self.state, self.gw) {
                // MQTT-SN 1.2 §6.14: wake, PINGREQ with ClientId.
                self.state = ClientState::Awake;
                self.awake_done = false;
                push1(&mut self.work().events, ClientEvent::Awake);
                self.start_tx(now, Tx::PingReq, gw);
            }
        }
    }
}
