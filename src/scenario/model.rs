//! The resolved scenario: what `scenario::load` produces after parsing,
//! applying `--set` overrides, expanding groups and validating every field.
//! Everything here is plain data with indices instead of names; the simulator
//! (`world`) consumes only these types.

use crate::sim::{SimDuration, SimTime};
use std::path::PathBuf;

pub use crate::app::workload::{Pattern, Timing, ValueGen};
pub use crate::link::model::{Fading, FadingSpec, LinkSpec, LossSpec, Modulation, TraceSpec};

/// A fully validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// File the scenario came from (`None` for the built-in quickstart).
    pub source: Option<PathBuf>,
    /// How errors and warnings name the scenario (the path as given, or
    /// `<built-in quickstart>`).
    pub origin: String,
    /// The scenario text as read, before overrides: warnings are located
    /// in it ([`crate::scenario::error::Warning::at`]).
    pub text: std::sync::Arc<str>,
    pub seed: u64,
    /// Publishing window: flows send in [0, duration).
    pub duration: SimDuration,
    /// Messages sent before `warmup` are not counted.
    pub warmup: SimDuration,
    /// The run continues this long after `duration`.
    pub drain: SimDuration,
    /// Width of a `timeseries.csv` interval (zero: no time series).
    pub timeseries_interval: SimDuration,
    /// Explicit nodes first (file order), then each group's members in order.
    pub nodes: Vec<NodeSpec>,
    /// Explicit links (file order), then each group's member links in order.
    pub links: Vec<LinkSpec>,
    pub flows: Vec<FlowSpec>,
    /// Sorted by `at` (stable: file order among equal times).
    pub events: Vec<EventSpec>,
    /// Shared radio media (`[[media]]`), file order.
    pub media: Vec<crate::scenario::radio::MediumSpec>,
    pub protocols: ProtocolParams,
    /// Processing times by node index (`processing` tables and
    /// `[processing.<role>]`); only nodes with a non-zero delay are present.
    pub processing: std::collections::BTreeMap<usize, ProcessingSpec>,
    /// The scenario as TOML after overrides (for manifest.json).
    pub resolved_toml: String,
    /// `--set` overrides applied, as given (`path=value`), in order.
    pub overrides: Vec<String>,
    /// The `[sweep]` grid, if the file declares one (used by `qossim sweep`;
    /// `qossim run` runs the base point only).
    pub sweep: Option<SweepSpec>,
    /// `[[expect]]` tables, file order (`qossim run` evaluates them at the
    /// end, `qossim test` checks them; scenarios/README.md "Expectations").
    pub expectations: Vec<crate::scenario::expect::Expectation>,
    /// `[report]`: how charts name things (scenarios/README.md "Report").
    pub report: crate::scenario::report::ReportSpec,
}

/// How a sweep's axes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMode {
    /// Every combination of the axes' values.
    Cross,
    /// The k-th values of every axis together (axes of equal length).
    Zip,
}

/// One swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// A `--set` path, e.g. `links.backhaul.loss.p`.
    pub path: String,
    /// Each value as TOML text for `--set` (`0.1`, `"udp"`).
    pub values: Vec<String>,
    /// Each value as it appears in CSV columns (`0.1`, `udp`).
    pub labels: Vec<String>,
    /// `group = "…"`: the axes of one group vary together (their k-th
    /// values make one step); mode "cross" only.
    pub group: Option<String>,
}

/// The `[sweep]` table, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub mode: SweepMode,
    pub replications: u64,
    pub axes: Vec<SweepAxis>,
}

impl SweepSpec {
    /// The grid's factors: lists of axis indices that step together, in
    /// order of their first axis. Mode "zip" is one factor of every axis;
    /// mode "cross" makes each group one factor and every ungrouped axis
    /// its own, so a grid without groups crosses its axes one by one.
    pub fn factors(&self) -> Vec<Vec<usize>> {
        if self.axes.is_empty() {
            return Vec::new();
        }
        if self.mode == SweepMode::Zip {
            return vec![(0..self.axes.len()).collect()];
        }
        let mut factors: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
        for (i, a) in self.axes.iter().enumerate() {
            match a.group.as_deref() {
                Some(g) => match factors.iter_mut().find(|(k, _)| *k == Some(g)) {
                    Some((_, v)) => v.push(i),
                    None => factors.push((Some(g), vec![i])),
                },
                None => factors.push((None, vec![i])),
            }
        }
        factors.into_iter().map(|(_, v)| v).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Router,
    Server,
    Broker,
    Gateway,
    Forwarder,
    Client,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Router => "router",
            Role::Server => "server",
            Role::Broker => "broker",
            Role::Gateway => "gateway",
            Role::Forwarder => "forwarder",
            Role::Client => "client",
        }
    }
    /// Routers forward packets between links; other roles are end hosts.
    pub fn forwards(self) -> bool {
        matches!(self, Role::Router)
    }
}

/// A node's processing times (docs/metrics.md "Processing time"): a FIFO
/// stack delay per packet sent (`stack_tx`) and received (`stack_rx`), and
/// one application server (FIFO, `queue` inputs long) whose work is
/// `service` per protocol message in and `per_copy` per PUBLISH copy out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingSpec {
    pub stack_tx: crate::sim::Delay,
    pub stack_rx: crate::sim::Delay,
    pub service: crate::sim::Delay,
    pub per_copy: crate::sim::Delay,
    /// Packets waiting for the application server (beyond: dropped).
    pub queue: u32,
    /// Packets waiting for each stack side, the one in service included
    /// (beyond: dropped, as Linux's `netdev_max_backlog` on receive and a
    /// full `txqueuelen` on send do).
    pub stack_queue: u32,
}

/// Default length of a node's processing queue.
pub const DEFAULT_PROC_QUEUE: u32 = 100_000;

/// Default length of each side of a node's stack: Linux's default
/// `net.core.netdev_max_backlog` and `txqueuelen`, both 1000 packets.
pub const DEFAULT_STACK_QUEUE: u32 = 1000;

impl Default for ProcessingSpec {
    fn default() -> Self {
        ProcessingSpec {
            stack_tx: crate::sim::Delay::ZERO,
            stack_rx: crate::sim::Delay::ZERO,
            service: crate::sim::Delay::ZERO,
            per_copy: crate::sim::Delay::ZERO,
            queue: DEFAULT_PROC_QUEUE,
            stack_queue: DEFAULT_STACK_QUEUE,
        }
    }
}

impl ProcessingSpec {
    /// The built-in defaults of a role, before `[processing.<role>]` and a
    /// node's own table (docs/fidelity.md "Calibration" measured them on a
    /// veth pair: mosquitto 2.0.11, libcoap 4.3.1's coap-server, Linux 6.x):
    /// the kernel's 11 µs per packet each way at brokers, servers and
    /// gateways; mosquitto's 35 µs per PUBLISH (`service`) at a broker;
    /// coap-server's 85 µs per request at a server; a gateway takes the
    /// broker's figures (no real MQTT-SN gateway was measured). Clients
    /// (radio sensor nodes included), routers and forwarders default to no
    /// processing time.
    pub fn builtin(role: Role) -> ProcessingSpec {
        use crate::sim::{Delay, SimDuration};
        let us = |n| Delay::Constant(SimDuration::from_micros(n));
        let (stack, service) = match role {
            Role::Broker | Role::Gateway => (us(11), us(35)),
            Role::Server => (us(11), us(85)),
            Role::Client | Role::Router | Role::Forwarder => return ProcessingSpec::default(),
        };
        ProcessingSpec {
            stack_tx: stack,
            stack_rx: stack,
            service,
            ..ProcessingSpec::default()
        }
    }
    /// Every delay zero: the node behaves as if it had no processing.
    pub fn is_zero(&self) -> bool {
        self.stack_tx.is_zero() && self.stack_rx.is_zero() && !self.has_server()
    }
    /// Whether the node runs an application server (service or per-copy
    /// time non-zero).
    pub fn has_server(&self) -> bool {
        !(self.service.is_zero() && self.per_copy.is_zero())
    }
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    /// Metres, from explicit `position` or group placement.
    pub position: Option<(f64, f64)>,
    /// Index into the scenario's group list and the member's `{i}` if the node
    /// came from a group.
    pub group: Option<usize>,
    pub index_in_group: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Coap,
    /// Raw TCP: one connection per (publisher, receiver), messages framed
    /// back to back in the byte stream (docs/protocols.md).
    Tcp,
    /// MQTT 3.1.1 over TCP through a broker.
    Mqtt,
    /// MQTT-SN 1.2 over UDP through gateways (docs/mqttsn.md).
    Mqttsn,
    /// HTTP/1.1 over TCP: one POST per reading and receiver
    /// (docs/protocols.md).
    Http,
    /// A protocol plug-in registered beside the built-in ones (its name, as
    /// flows write it; see [`ExtProtocol`]).
    Ext(&'static str),
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Coap => "coap",
            Protocol::Tcp => "tcp",
            Protocol::Mqtt => "mqtt",
            Protocol::Mqttsn => "mqttsn",
            Protocol::Http => "http",
            Protocol::Ext(name) => name,
        }
    }
}

/// What the scenario loader knows of a protocol plug-in registered beside
/// the built-in ones: its name, the reliabilities a flow may ask of it, and
/// how to validate its `[protocols.<name>]` section.
#[derive(Debug, Clone, Copy)]
pub struct ExtProtocol {
    pub name: &'static str,
    /// Accepted `reliability` values; the first is the default.
    pub reliabilities: &'static [Reliability],
    /// Validate the section (the message names what is wrong).
    pub check_section: fn(&toml::Value) -> Result<(), String>,
}

/// The protocol plug-ins a scenario may use beyond the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct ProtocolTable {
    pub ext: Vec<ExtProtocol>,
}

impl ProtocolTable {
    pub fn get(&self, name: &str) -> Option<&ExtProtocol> {
        self.ext.iter().find(|e| e.name == name)
    }
}

/// Reliability as written in the scenario, validated against the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    BestEffort,
    Confirmed,
    ExactlyOnce,
    /// CoAP non-confirmable.
    Non,
    /// CoAP confirmable.
    Con,
    /// MQTT QoS 0, 1, 2.
    Qos0,
    Qos1,
    Qos2,
    /// MQTT-SN QoS −1: publish without a connection (predefined or short
    /// topics only).
    QosMinus1,
}

impl Reliability {
    pub fn as_str(self) -> &'static str {
        match self {
            Reliability::BestEffort => "best_effort",
            Reliability::Confirmed => "confirmed",
            Reliability::ExactlyOnce => "exactly_once",
            Reliability::Non => "non",
            Reliability::Con => "con",
            Reliability::Qos0 => "qos0",
            Reliability::Qos1 => "qos1",
            Reliability::Qos2 => "qos2",
            Reliability::QosMinus1 => "qos_minus1",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub name: String,
    pub pattern: Pattern,
    pub protocol: Protocol,
    pub reliability: Reliability,
    /// Node indices, in the order the globs matched (file order of nodes).
    pub publishers: Vec<usize>,
    pub receivers: Vec<usize>,
    /// Topic / URI path template; placeholders `{i}`, `{name}`, `{flow}`.
    pub topic: String,
    /// Application payload per message in bytes (≥ 6, see docs/metrics.md).
    pub payload_bytes: u32,
    pub timing: Timing,
    /// First send no earlier than this (default 0).
    pub start: SimDuration,
    /// Messages per publisher (None: until `duration`).
    pub count: Option<u64>,
    pub value: ValueGen,
    /// The broker node (MQTT flows only).
    pub broker: Option<usize>,
    /// Publish with the RETAIN flag (MQTT only): the broker keeps the last
    /// message per topic for subscribers that come later.
    pub retain: bool,
    /// How receivers subscribe: `Mqtt` (an MQTT 3.1.1 client at the broker)
    /// or `Mqttsn` (an MQTT-SN client through a gateway). The flow's
    /// protocol unless the flow says `subscribe_with`.
    pub subscribe_with: Protocol,
    /// How a CoAP flow carries its readings (`Put` for every other
    /// protocol).
    pub coap_mode: CoapMode,
    /// `CoapMode::Get`: how often each receiver polls each publisher (the
    /// flow's `poll_interval`, by default its `interval`); `None` otherwise.
    pub poll_interval: Option<SimDuration>,
    /// `CoapMode::Discover`: the Uri-Query options of each discovery GET
    /// (RFC 6690 §4.1 filter terms, e.g. `rt=temperature*`); empty: no
    /// filter.
    pub query: Vec<String>,
    /// CoAP `get`/`observe` only: the caching proxy node receivers go
    /// through, and how they address it.
    pub proxy: Option<(usize, ProxyMode)>,
}

/// How a flow's receivers address its proxy (the flow field
/// `proxy_mode`; docs/protocols.md, "CoAP through a caching proxy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Requests to the proxy carry Proxy-Uri `coap://<publisher>/<topic>`.
    #[default]
    Forward,
    /// Requests to the proxy carry Uri-Path `<publisher>/<topic>`; the
    /// proxy maps the first segment to the publisher.
    Reverse,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Forward => "forward",
            ProxyMode::Reverse => "reverse",
        }
    }
}

/// How a CoAP flow carries readings (the flow field `coap_mode`; the CoAP
/// issue adds `observe` and `pubsub` here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoapMode {
    /// The publisher PUTs each reading to every receiver's server.
    #[default]
    Put,
    /// The publisher's server holds its latest reading; each receiver polls
    /// it with GET every `poll_interval`.
    Get,
    /// The publisher's server holds its latest reading; each receiver
    /// observes it (RFC 7641) and gets every change as a notification.
    Observe,
    /// Publishers PUT each reading to a topic-data resource on the flow's
    /// broker node; receivers observe those resources there
    /// (draft-ietf-core-coap-pubsub).
    Pubsub,
    /// Each message is one multicast GET of `/.well-known/core` (RFC 7252
    /// §8, RFC 6690) from the publisher to All-CoAP-Nodes; a receiver is
    /// reached when its response comes back to the publisher.
    Discover,
}

impl CoapMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CoapMode::Put => "put",
            CoapMode::Get => "get",
            CoapMode::Observe => "observe",
            CoapMode::Pubsub => "pubsub",
            CoapMode::Discover => "discover",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventSpec {
    pub at: SimTime,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    LinkDown {
        link: usize,
    },
    LinkUp {
        link: usize,
    },
    SetLoss {
        link: usize,
        loss: LossSpec,
    },
    NodeCrash {
        node: usize,
    },
    NodeRestart {
        node: usize,
    },
    /// Take down every link with one end in `nodes` and the other outside.
    Partition {
        nodes: Vec<usize>,
    },
    /// Bring back every link taken down by a partition.
    Heal,
    /// The node's MQTT clients send DISCONNECT and close their connections
    /// (no will); they stay offline until `client_connect`.
    ClientDisconnect {
        node: usize,
    },
    /// The node's MQTT clients stop dead (power loss, hang): no DISCONNECT,
    /// no FIN, nothing answered; the broker finds out by keep-alive. They
    /// start afresh at `client_connect`.
    ClientCrash {
        node: usize,
    },
    /// The node's MQTT clients connect again.
    ClientConnect {
        node: usize,
    },
    /// The node's MQTT-SN clients go to sleep (DISCONNECT with this
    /// duration, MQTT-SN 1.2 §6.14), waking every `duration` for their
    /// buffered messages until `client_wake`.
    ClientSleep {
        node: usize,
        duration: SimDuration,
    },
    /// The node's MQTT-SN clients wake up for good (CONNECT).
    ClientWake {
        node: usize,
    },
    /// A packet-level fault (`drop_packet`, `duplicate_packet`,
    /// `delay_packet`, `corrupt_packet`): acts on the packets its match
    /// selects where their source host sends them (`world::faults`).
    PacketFault(Box<PacketFault>),
}

/// One packet-level fault: what it does to which packets, from the event's
/// `at` until `until` or until it has acted on `count` packets.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketFault {
    pub effect: FaultEffect,
    pub matcher: PacketMatch,
    /// End of the active window (exclusive); `None`: the end of the run.
    pub until: Option<SimTime>,
    /// Packets it acts on at most (`every` only); `None`: no limit.
    pub count: Option<u64>,
}

/// What a packet fault does to a selected packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEffect {
    /// Discard it at its source (`drops_fault`, packets.csv `fault_dropped`).
    Drop,
    /// Send it twice, back to back.
    Duplicate,
    /// Hand it to the network `by` later.
    Delay { by: SimDuration },
    /// Flip (XOR 0xFF) one byte: at `offset` of the layer's bytes, or at a
    /// uniformly drawn one when `None`.
    Corrupt {
        offset: Option<u32>,
        layer: CorruptLayer,
    },
}

impl FaultEffect {
    /// The `[[events]]` action that makes this effect.
    pub fn action(&self) -> &'static str {
        match self {
            FaultEffect::Drop => "drop_packet",
            FaultEffect::Duplicate => "duplicate_packet",
            FaultEffect::Delay { .. } => "delay_packet",
            FaultEffect::Corrupt { .. } => "corrupt_packet",
        }
    }
}

/// Which bytes `corrupt_packet` flips and whether checksums are repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptLayer {
    /// The transport segment (UDP/TCP header and payload), checksums left
    /// stale: the receiving transport discards it.
    Wire,
    /// The transport payload, UDP/TCP checksum recomputed: the application
    /// decoder sees the bad byte.
    Payload,
}

/// Which packets a fault selects: every given field must equal the
/// packet's; then the n-th (`Nth`) or every k-th (`Every`) such packet.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketMatch {
    /// packets.csv `protocol`: the flow's protocol, `ip` for no flow.
    pub protocol: Option<String>,
    /// packets.csv `kind` (`mqtt_pubrel`, `coap_ack`, `tcp_syn`, …).
    pub kind: Option<String>,
    /// Source host (node index).
    pub from: Option<usize>,
    /// Destination host (node index).
    pub to: Option<usize>,
    /// Flow index.
    pub flow: Option<usize>,
    pub select: Select,
}

/// `nth` or `every` of a match (both ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Nth(u64),
    Every(u64),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProtocolParams {
    pub ip: IpParams,
    pub udp: UdpParams,
    pub coap: CoapParams,
    pub tcp: TcpParams,
    pub mqtt: MqttParams,
    pub mqttsn: MqttsnParams,
    pub http: HttpParams,
    /// `[protocols.tls]`: the TLS overlay of MQTT's `tls` and `wss`
    /// transports (docs/security.md).
    pub tls: crate::transport::tls::TlsConfig,
    /// `[protocols.dtls]`: the DTLS overlay of CoAP's and MQTT-SN's
    /// `security = "dtls"` (docs/security.md).
    pub dtls: DtlsParams,
    /// `[protocols.<name>]` sections of protocol plug-ins, validated by
    /// their `ExtProtocol::check_section`, by name.
    pub ext: std::collections::BTreeMap<String, toml::Value>,
}

/// Whether a datagram protocol's port carries DTLS (`[protocols.coap]
/// security`, `[protocols.mqttsn] security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatagramSecurity {
    /// Plain UDP.
    #[default]
    None,
    /// DTLS 1.2 between every pair of endpoints that exchange unicast
    /// datagrams on the port (`[protocols.dtls]`).
    Dtls,
}

/// How long a DTLS client keeps its association (`[protocols.dtls]
/// session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsSession {
    /// One association per (client, server) pair for the whole run.
    #[default]
    Persistent,
    /// A CoAP client closes the association (close_notify) once it has
    /// no request outstanding, so every reading pays a full handshake:
    /// the counterpart of MQTT's `session = "per_message"`.
    PerMessage,
}

/// `[protocols.dtls]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DtlsParams {
    pub config: crate::transport::dtls::DtlsConfig,
    pub session: DtlsSession,
}

/// How MQTT clients keep their sessions (`[protocols.mqtt] session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttSession {
    /// One long-lived connection, CleanSession = 0: the broker keeps
    /// subscriptions and queued QoS 1/2 messages while the client is away.
    Persistent,
    /// One long-lived connection, CleanSession = 1.
    Clean,
    /// Connect, publish, disconnect for every message (battery devices);
    /// CleanSession = 1.
    PerMessage,
}

pub use crate::proto::mqtt::{Persistence as MqttPersistence, Qos2Forward};

/// What carries MQTT between clients and brokers (issue 21; docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttTransport {
    /// Plain TCP (port 1883).
    #[default]
    Tcp,
    /// TLS over TCP (port 8883), as `[protocols.tls]` says.
    Tls,
    /// WebSocket (RFC 6455) over TCP (port 80).
    WebSocket,
    /// WebSocket over TLS (port 443).
    Wss,
}

impl MqttTransport {
    /// The IANA port of each transport, used when `port` is not given.
    pub fn default_port(self) -> u16 {
        match self {
            MqttTransport::Tcp => 1883,
            MqttTransport::Tls => 8883,
            MqttTransport::WebSocket => 80,
            MqttTransport::Wss => 443,
        }
    }
}

/// `[protocols.mqtt]` (docs/mqtt.md).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttParams {
    /// The broker's port (default: the transport's).
    pub port: u16,
    pub transport: MqttTransport,
    pub keep_alive: SimDuration,
    pub session: MqttSession,
    pub qos2_forward: Qos2Forward,
    pub persistence: MqttPersistence,
    /// Unacknowledged QoS 1/2 messages per client and direction.
    pub max_inflight: u32,
    /// Messages queued per client beyond the in-flight window (offline or
    /// waiting); further ones are dropped and counted.
    pub max_queued: u32,
    /// `$SYS` publication period (zero: off).
    pub sys_interval: SimDuration,
    /// Non-spec timer-based resend while connected (None: off, the spec).
    pub legacy_retry: Option<SimDuration>,
    pub reconnect_min: SimDuration,
    pub reconnect_max: SimDuration,
    /// A client gives up a connection attempt (TCP handshake, then CONNACK)
    /// after this long and backs off (paho-mqtt's `connect_timeout`, 5 s).
    pub connect_timeout: SimDuration,
    /// Clients make their first connection at a uniform time in
    /// [0, connect_spread).
    pub connect_spread: SimDuration,
    pub allow_anonymous: bool,
    /// The broker's password table.
    pub users: Vec<(String, String)>,
    /// Credentials every client presents.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Every client's will: topic template (`{name}` = the node name),
    /// message, QoS, retain. No will when `will_topic` is None.
    pub will_topic: Option<String>,
    pub will_message: String,
    pub will_qos: u8,
    pub will_retain: bool,
    /// The broker's access control (docs/mqtt.md "Access control"); empty:
    /// everything allowed.
    pub acl: crate::proto::mqtt::Acl,
    /// A refused PUBLISH is acknowledged and dropped, or closes the
    /// connection.
    pub acl_deny_publish: crate::proto::mqtt::DenyPublish,
    /// Test-only mutation knob (tests/monitors.rs): not reachable from
    /// scenario files; always off in real runs.
    #[doc(hidden)]
    /// `proto::mqtt::BrokerConfig::mutant_forget_qos2`.
    pub mutant_forget_qos2: bool,
    /// Test-only mutation knob, as above:
    /// `proto::mqtt::BrokerConfig::mutant_skip_qos1`.
    #[doc(hidden)]
    pub mutant_skip_qos1: bool,
    /// `version`: the MQTT version every client speaks ("3.1.1" default,
    /// "5.0"); the broker serves both.
    pub version: crate::proto::mqtt::MqttVersion,
    /// 5.0 `session_expiry` (s) of persistent sessions; `u32::MAX`
    /// ("never", the default) is what a 3.1.1 persistent session does.
    pub session_expiry: u32,
    /// 5.0 `topic_aliases`: aliases each client uses when publishing and
    /// accepts from the broker. Default 0 (none).
    pub topic_aliases: u16,
    /// 5.0 `receive_maximum` each client announces. Default 65535.
    pub receive_maximum: u16,
    /// 5.0 `broker_topic_alias_max`: the broker's Topic Alias Maximum.
    /// Default 10 (mosquitto).
    pub broker_topic_alias_max: u16,
    /// 5.0 `broker_receive_maximum`. Default 65535.
    pub broker_receive_maximum: u16,
}

impl Default for MqttParams {
    fn default() -> Self {
        MqttParams {
            version: crate::proto::mqtt::MqttVersion::V311,
            session_expiry: u32::MAX,
            topic_aliases: 0,
            receive_maximum: u16::MAX,
            broker_topic_alias_max: 10,
            broker_receive_maximum: u16::MAX,
            port: 1883,
            transport: MqttTransport::Tcp,
            keep_alive: SimDuration::from_secs(60),
            session: MqttSession::Persistent,
            qos2_forward: Qos2Forward::OnPubrel,
            persistence: MqttPersistence::None,
            max_inflight: 20,
            max_queued: 1000,
            sys_interval: SimDuration::from_secs(10),
            legacy_retry: None,
            reconnect_min: SimDuration::from_secs(1),
            reconnect_max: SimDuration::from_secs(60),
            connect_timeout: SimDuration::from_secs(5),
            connect_spread: SimDuration::from_secs(1),
            allow_anonymous: true,
            users: Vec::new(),
            username: None,
            password: None,
            will_topic: None,
            will_message: "offline".to_string(),
            will_qos: 1,
            will_retain: false,
            acl: crate::proto::mqtt::Acl::default(),
            acl_deny_publish: crate::proto::mqtt::DenyPublish::Drop,
            mutant_forget_qos2: false,
            mutant_skip_qos1: false,
        }
    }
}

/// How an MQTT-SN gateway talks to the broker (docs/mqttsn.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttsnGatewayMode {
    /// One MQTT connection per MQTT-SN client.
    Transparent,
    /// One MQTT connection for all the gateway's clients.
    Aggregating,
    /// The gateway is the broker for its clients (as RSMB).
    Integrated,
}

/// What carries MQTT-SN messages on the constrained side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttsnTransport {
    /// UDP datagrams over IP (IPv4, or IPv6 with 6LoWPAN on a medium).
    Udp,
    /// The payload of IEEE 802.15.4 frames, no IP (MQTT-SN 1.2 §1: any
    /// datagram service); clients, forwarders and their gateway share a
    /// medium.
    Raw,
}

/// How MQTT-SN clients find their gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttsnDiscovery {
    /// ADVERTISE, SEARCHGW and GWINFO broadcasts (MQTT-SN 1.2 §6.1), which
    /// reach link neighbours only.
    Advertise,
    /// Each client is configured with the gateway fewest hops away.
    Static,
}

/// Which topic form MQTT-SN publishers use (MQTT-SN 1.2 §6.5–§6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttsnTopicType {
    /// Topic names, registered (REGISTER/REGACK) for an id.
    Normal,
    /// Predefined ids from `[protocols.mqttsn] predefined`.
    Predefined,
    /// Two-character short topic names, no registration.
    Short,
}

/// `[protocols.mqttsn]` (MQTT-SN 1.2 §7.2 timers and counts; docs/mqttsn.md).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttsnParams {
    /// UDP port of gateways and clients (the spec assigns none).
    pub port: u16,
    pub gateway_mode: MqttsnGatewayMode,
    pub discovery: MqttsnDiscovery,
    /// What carries MQTT-SN between clients, forwarders and gateways.
    pub transport: MqttsnTransport,
    pub t_adv: SimDuration,
    pub n_adv: u32,
    pub t_searchgw: SimDuration,
    pub t_gwinfo: SimDuration,
    pub t_wait: SimDuration,
    pub t_retry: SimDuration,
    pub n_retry: u32,
    /// Keep-alive duration (whole seconds; zero: off).
    pub keep_alive: SimDuration,
    pub clean_session: bool,
    pub topic_id_type: MqttsnTopicType,
    /// Predefined topics: (topic name, id in 1..=0xFFFE), file order.
    pub predefined: Vec<(String, u16)>,
    /// Publishes a client queues (beyond: dropped, counted).
    pub max_queued: u32,
    /// Messages a gateway buffers for one sleeping client.
    pub gateway_buffer: u32,
    pub gateway_max_clients: u32,
    /// Broadcast radius (§5.3.9).
    pub radius: u8,
    /// Sleep schedules: (nodes, duration) — those nodes' clients sleep with
    /// this duration whenever they are idle (§6.14).
    pub sleep: Vec<(Vec<usize>, SimDuration)>,
    /// Clients make their first connection at a uniform time in
    /// [0, connect_spread).
    pub connect_spread: SimDuration,
    pub will_topic: Option<String>,
    pub will_message: String,
    pub will_qos: u8,
    pub will_retain: bool,
    /// `security = "dtls"`: MQTT-SN over DTLS on its UDP port (no port
    /// change: the specification assigns none).
    pub security: DatagramSecurity,
}

impl Default for MqttsnParams {
    fn default() -> Self {
        MqttsnParams {
            port: 1883,
            gateway_mode: MqttsnGatewayMode::Aggregating,
            discovery: MqttsnDiscovery::Advertise,
            transport: MqttsnTransport::Udp,
            t_adv: SimDuration::from_secs(15 * 60),
            n_adv: 3,
            t_searchgw: SimDuration::from_secs(5),
            t_gwinfo: SimDuration::from_secs(5),
            t_wait: SimDuration::from_secs(5 * 60),
            t_retry: SimDuration::from_secs(10),
            n_retry: 3,
            keep_alive: SimDuration::from_secs(60),
            clean_session: true,
            topic_id_type: MqttsnTopicType::Normal,
            predefined: Vec::new(),
            max_queued: 100,
            gateway_buffer: 20,
            gateway_max_clients: 10_000,
            radius: 1,
            sleep: Vec::new(),
            connect_spread: SimDuration::from_secs(1),
            will_topic: None,
            will_message: "offline".to_string(),
            will_qos: 1,
            will_retain: false,
            security: DatagramSecurity::None,
        }
    }
}

impl MqttsnParams {
    /// The predefined id of `topic`, if it has one.
    pub fn predefined_id(&self, topic: &str) -> Option<u16> {
        self.predefined
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, id)| *id)
    }
    /// The sleep duration of `node`'s clients, if a schedule names it.
    pub fn sleep_of(&self, node: usize) -> Option<SimDuration> {
        self.sleep
            .iter()
            .find(|(nodes, _)| nodes.contains(&node))
            .map(|(_, d)| *d)
    }
}

/// `[protocols.tcp]`: the resolved TCP parameters (profile defaults with
/// explicit fields applied). Default: the `linux-like` profile.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpParams {
    pub config: crate::transport::tcp::Config,
    /// Server port of `protocol = "tcp"` flows (default 5001, iperf's).
    pub port: u16,
    /// Test-only mutation knob (tests/monitors.rs): not reachable from
    /// scenario files; always off in real runs.
    #[doc(hidden)]
    /// Every connection's receiver takes out-of-order data as the next
    /// bytes (`Connection::mutant_deliver_out_of_order`).
    pub mutant_deliver_out_of_order: bool,
}

/// `[protocols.http]`: the HTTP/1.1 baseline (docs/protocols.md).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpParams {
    /// The servers' TCP port (default 80).
    pub port: u16,
    /// Keep one connection per (publisher, receiver) open across readings
    /// (default); `false`: `Connection: close` on every request, one
    /// connection per reading.
    pub persistent: bool,
    /// HTTPS: HTTP over the TLS of `[protocols.tls]` (default port 443).
    pub tls: bool,
}

impl Default for HttpParams {
    fn default() -> Self {
        HttpParams {
            port: 80,
            persistent: true,
            tls: false,
        }
    }
}

impl Default for TcpParams {
    fn default() -> Self {
        TcpParams {
            config: Default::default(),
            port: 5001,
            mutant_deliver_out_of_order: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IpParams {
    /// Initial TTL of every packet.
    pub ttl: u8,
    /// Set DF on every packet: oversize packets are dropped (`drops_mtu`)
    /// instead of fragmented.
    pub dont_fragment: bool,
    /// Reassembly timer (Linux ipfrag_time default 30 s).
    pub reassembly_timeout: SimDuration,
    /// IP version of every node: 4 (default) or 6 (RFC 8200; 6LoWPAN on
    /// 802.15.4 media, docs/sixlowpan.md).
    pub version: u8,
    /// The /64 prefix of every node's global IPv6 address (and 6LoWPAN
    /// context 0), as its first 8 bytes; default 2001:db8::/64.
    pub prefix: [u8; 8],
}

#[derive(Debug, Clone, PartialEq)]
pub struct UdpParams {
    /// Destination port of `udp` flows.
    pub port: u16,
}

/// RFC 7252 §4.8 transmission parameters (defaults as the RFC).
#[derive(Debug, Clone, PartialEq)]
pub struct CoapParams {
    pub port: u16,
    pub ack_timeout: SimDuration,
    pub ack_random_factor: f64,
    pub max_retransmit: u32,
    pub nstart: u32,
    pub default_leisure: SimDuration,
    /// RFC 7252 §8.2 Leisure: servers answer a multicast request after a
    /// delay uniform in [0, leisure]; `None`: `default_leisure`.
    pub leisure: Option<SimDuration>,
    /// Bytes per second.
    pub probing_rate: f64,
    /// CON retransmission timeouts: RFC 7252's or CoCoA's.
    pub congestion: crate::proto::coap::Congestion,
    /// MAX_LATENCY (RFC 7252 §4.8.2), used in derived lifetimes.
    pub max_latency: SimDuration,
    /// PROCESSING_DELAY (RFC 7252 §4.8.2).
    pub processing_delay: SimDuration,
    /// How long a NON request waits for its response before it counts as
    /// failed (`Config::non_response_timeout`); `None`:
    /// ACK_TIMEOUT·ACK_RANDOM_FACTOR (3 s with the defaults).
    pub non_timeout: Option<SimDuration>,
    /// Shortest request token in bytes (`Config::token_length`).
    pub token_length: u8,
    /// RFC 7641 (`coap_mode = "observe"`/`"pubsub"`): Max-Age of
    /// notifications in seconds (60 is the default and is not sent).
    pub observe_max_age: u32,
    /// A receiver re-registers when it has heard nothing for Max-Age plus
    /// this, and retries a failed registration after this.
    pub observe_margin: SimDuration,
    /// A NON observer gets a CON notification at least this often (§4.5).
    pub observe_con_interval: SimDuration,
    /// Test-only mutation knob (tests/monitors.rs): not reachable from
    /// scenario files; always off in real runs.
    #[doc(hidden)]
    /// `proto::coap::Config::mutant_no_dedup`.
    pub mutant_no_dedup: bool,
    /// Block-wise transfer (RFC 7959): the block size in bytes (16, 32, …,
    /// 1024). A `put` flow whose body exceeds it sends Block1 requests,
    /// and servers answer block-wise; `None` (default): off, a large body
    /// relies on IP fragmentation.
    pub block_size: Option<u16>,
    /// `security = "dtls"`: CoAP over DTLS ("coaps", RFC 7252 §9.1; the
    /// default port becomes 5684).
    pub security: DatagramSecurity,
}

impl IpParams {
    /// The network layer these parameters ask for.
    pub fn plan(&self) -> crate::net::l3::NetPlan {
        crate::net::l3::NetPlan::new(self.version, self.prefix)
    }
}

impl Default for IpParams {
    fn default() -> Self {
        IpParams {
            ttl: 64,
            dont_fragment: false,
            reassembly_timeout: SimDuration::from_secs(30),
            version: 4,
            prefix: crate::net::l3::DEFAULT_PREFIX,
        }
    }
}
impl Default for UdpParams {
    fn default() -> Self {
        UdpParams { port: 9 }
    }
}
impl Default for CoapParams {
    fn default() -> Self {
        CoapParams {
            port: 5683,
            ack_timeout: SimDuration::from_secs(2),
            ack_random_factor: 1.5,
            max_retransmit: 4,
            nstart: 1,
            default_leisure: SimDuration::from_secs(5),
            leisure: None,
            probing_rate: 1.0,
            congestion: crate::proto::coap::Congestion::Default,
            max_latency: SimDuration::from_secs(100),
            processing_delay: SimDuration::from_secs(2),
            non_timeout: None,
            token_length: 2,
            observe_max_age: 60,
            observe_margin: SimDuration::from_secs(5),
            observe_con_interval: SimDuration::from_secs(24 * 3600),
            mutant_no_dedup: false,
            block_size: None,
            security: DatagramSecurity::None,
        }
    }
}

impl CoapParams {
    /// The Leisure servers wait at most before answering a multicast
    /// request (RFC 7252 §8.2): `leisure`, else DEFAULT_LEISURE.
    pub fn leisure(&self) -> SimDuration {
        self.leisure.unwrap_or(self.default_leisure)
    }
}

impl From<&CoapParams> for crate::proto::coap::Config {
    fn from(p: &CoapParams) -> Self {
        let mut c = crate::proto::coap::Config {
            ack_timeout: p.ack_timeout,
            ack_random_factor: p.ack_random_factor,
            max_retransmit: p.max_retransmit,
            nstart: p.nstart,
            default_leisure: p.default_leisure,
            probing_rate: p.probing_rate,
            congestion: p.congestion,
            max_latency: p.max_latency,
            processing_delay: p.processing_delay,
            token_length: p.token_length,
            mutant_no_dedup: p.mutant_no_dedup,
            ..Default::default()
        };
        c.non_response_timeout = p.non_timeout.unwrap_or_else(|| c.max_initial_timeout());
        c
    }
}
