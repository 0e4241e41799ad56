//! The simulator proper: nodes, links, routing and applications driven by the
//! event queue. One `World` is one run of one scenario.
//!
//! Event handling order is fixed by the queue (time, then insertion order), and
//! every random draw comes from a stream named after its component, so a run
//! is a pure function of the scenario and its seed.

mod coap;
mod events;
mod ip;
pub mod mqtt;
pub mod radio;
pub mod series;
pub mod tcp;
mod udp;

use crate::app::workload::Publisher;
use crate::link::Link;
use crate::metrics::record::{FlowInfo, FlowStats, Recorder};
use crate::metrics::sink::{Capture, Sink};
use crate::metrics::timeseries::NodeStats;
use crate::net::frag::Reassembler;
use crate::net::packet::{PacketId, PacketPool};
use crate::net::routing::Routing;
use crate::scenario::model::{Protocol, Scenario};
use crate::sim::{run_until, EventQueue, Model, SimTime};
use std::io::{self, Write};
use std::sync::Arc;

/// Events of the simulation. Kept small (16 bytes, `ev_is_16_bytes`):
/// indices, not data.
#[derive(Debug, Clone, Copy)]
pub enum Ev {
    /// Publisher `p` sends its next message.
    Publish { p: u32 },
    /// Link direction finished serialising a packet.
    TxDone { link: u32, dir: u8 },
    /// A packet arrives at the far end of a link direction.
    Arrive { link: u32, dir: u8, pkt: PacketId },
    /// Scenario event number `idx` (index into `Scenario::events`).
    Scenario { idx: u32 },
    /// Check a node's IP reassembly timers.
    Reassembly { node: u32 },
    /// A node's CoAP endpoint timer (stale when `gen` is old).
    CoapTimer { node: u32, gen: u32 },
    /// A TCP socket's timer (stale when `gen` is not the slot's).
    TcpTimer { slot: u32, gen: u32 },
    /// An MQTT client's first connection.
    MqttStart { client: u32 },
    /// An MQTT client's timer (stale when `gen` is old).
    MqttClientTimer { client: u32, gen: u32 },
    /// The timer of the MQTT broker on `node`.
    MqttBrokerTimer { node: u32, gen: u32 },
    /// Poll the MQTT objects made pending at setup.
    MqttFlush,
    /// Sample the time series (every `timeseries_interval`).
    Sample,
    /// A packet a node sent to itself comes back up its stack.
    Loopback { node: u32, pkt: PacketId },
    /// An MQTT client's connection attempt on socket `slot` times out
    /// unless the TCP handshake has completed.
    MqttConnectTimeout { client: u32, slot: u32 },
    /// A shared-medium event of medium `m` (`world::radio`: MAC timer, end of
    /// a transmission, ACK start, interferer burst).
    Radio {
        m: u16,
        kind: u8,
        idx: u32,
        gen: u32,
    },
}

/// A datagram being reassembled: (node, source address, ident, protocol).
pub(crate) type FragKey = (u32, u32, u16, u8);
/// Who a datagram being reassembled belongs to: (flow, counted, first arrival).
pub(crate) type FragOwner = (u32, bool, SimTime);

/// Per-node state.
#[derive(Debug)]
pub struct Node {
    pub up: bool,
    pub forwards: bool,
    /// Next IPv4 identification value.
    pub ip_ident: u16,
    reassembler: Option<Box<Reassembler>>,
    pub stats: NodeStats,
}

/// Optional outputs of a run.
#[derive(Default)]
pub struct Outputs {
    pub messages: Option<Box<dyn Sink>>,
    pub packets: Option<Box<dyn Sink>>,
    /// One capture per link (index = link index), then one per radio
    /// medium, when pcaps are requested.
    pub pcaps: Vec<Box<dyn Capture>>,
}

/// What a finished run hands back.
pub struct RunOutcome {
    pub flows: Vec<(String, FlowStats)>,
    pub links: Vec<Link>,
    pub nodes: Vec<NodeStats>,
    pub events: u64,
    pub end: SimTime,
    pub messages: Option<Box<dyn Sink>>,
    pub packets: Option<Box<dyn Sink>>,
    pub pcaps: Vec<Box<dyn Capture>>,
    /// CoAP endpoint counters summed over every node (zero without CoAP).
    pub coap: crate::proto::coap::Stats,
    /// Every TCP connection endpoint of the run (`connections.csv`).
    pub connections: Vec<crate::metrics::connections::ConnRecord>,
    /// `mqtt.csv` rows (empty without MQTT).
    pub mqtt: Vec<mqtt::MqttRow>,
    /// Time series (None when `timeseries_interval` is zero).
    pub series: Option<crate::metrics::timeseries::SeriesOut>,
    /// Radio energy per node and medium counters (empty without media).
    pub radio: crate::metrics::energy::RadioReport,
}

/// One run of one scenario.
pub struct World<'s> {
    pub(crate) sc: &'s Scenario,
    pub(crate) run_id: u64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) names: Arc<[String]>,
    pub(crate) links: Vec<Link>,
    pub(crate) routing: Routing,
    pub(crate) pool: PacketPool,
    pub(crate) recorder: Recorder<Box<dyn Sink>>,
    pub(crate) publishers: Vec<Publisher>,
    pub(crate) packets_out: Option<Box<dyn Sink>>,
    pub(crate) pcaps: Vec<Box<dyn Capture>>,
    /// Links taken down by `partition` events, for `heal`.
    pub(crate) partitioned: Vec<usize>,
    pub(crate) io_error: Option<io::Error>,
    /// Datagrams being reassembled: (node, src, ident, protocol) → (flow,
    /// counted, first fragment's arrival), to attribute reassembly timeouts.
    pub(crate) frag_owner: std::collections::BTreeMap<FragKey, FragOwner>,
    // scratch buffers reused on the hot path
    pub(crate) payload: Vec<u8>,
    pub(crate) receivers: Vec<u32>,
    pub(crate) frag_scratch: Vec<u8>,
    pub(crate) frag_ids: Vec<PacketId>,
    pub(crate) payload_out: Vec<u8>,
    /// CoAP endpoint per node (None for nodes in no CoAP flow, or crashed).
    pub(crate) coap: Vec<Option<Box<coap::CoapNode>>>,
    /// Outstanding CoAP requests: (node, handle) → owner.
    pub(crate) coap_reqs: std::collections::BTreeMap<(u32, u64), coap::CoapReq>,
    /// Scratch request reused for every CoAP publish.
    pub(crate) coap_req: crate::proto::coap::Request,
    /// Every node's TCP connections and listeners.
    pub(crate) tcp: tcp::TcpLayer,
    /// MQTT brokers and clients.
    pub(crate) mqtt: mqtt::MqttLayer,
    /// Samples for the time series.
    pub(crate) series: series::SeriesState,
    /// Shared radio media and their MACs.
    pub(crate) radio: radio::Radio,
}

impl<'s> World<'s> {
    /// Build the world for `sc`. `outputs` are where streamed files go.
    pub fn new(sc: &'s Scenario, run_id: u64, outputs: Outputs) -> io::Result<Self> {
        let names: Arc<[String]> = sc.nodes.iter().map(|n| n.name.clone()).collect();
        let nodes = sc
            .nodes
            .iter()
            .map(|n| Node {
                up: true,
                forwards: n.role.forwards(),
                ip_ident: 0,
                reassembler: None,
                stats: NodeStats::default(),
            })
            .collect();
        let links: Vec<Link> = sc
            .links
            .iter()
            .map(|l| Link::new(l, sc.seed, &names))
            .collect();
        let mut radio = radio::Radio::new(sc);
        let mut route_links: Vec<_> = sc
            .links
            .iter()
            .map(|l| (l.a as u32, l.b as u32, l.delay.0))
            .collect();
        radio.routing_links(sc, &mut route_links);
        let routing = Routing::new(
            sc.nodes.iter().map(|n| n.role.forwards()).collect(),
            &route_links,
        );
        let mut publishers = Vec::new();
        let mut infos = Vec::new();
        for (fi, f) in sc.flows.iter().enumerate() {
            let first = publishers.len();
            for k in 0..f.publishers.len() {
                let node = f.publishers[k];
                publishers.push(Publisher::new(
                    sc.seed,
                    (fi, &f.name),
                    (node as u32, &sc.nodes[node].name),
                    k,
                    crate::scenario::flows::topic_for(f, &sc.nodes, k),
                    f.start,
                ));
            }
            infos.push(FlowInfo {
                name: f.name.clone(),
                pattern: f.pattern,
                receivers: f.receivers.iter().map(|&r| r as u32).collect(),
                topics: publishers[first..]
                    .iter()
                    .map(|p| p.topic.clone())
                    .collect(),
                payload_bytes: f.payload_bytes,
            });
        }
        let recorder = Recorder::new(
            run_id,
            sc.warmup,
            sc.drain,
            infos,
            names.clone(),
            outputs.messages,
        )?
        .with_series(sc.timeseries_interval);
        let mut packets_out = outputs.packets;
        if let Some(w) = packets_out.as_mut() {
            writeln!(w, "{}", PACKETS_HEADER)?;
        }
        let mut w = World {
            sc,
            run_id,
            nodes,
            names,
            links,
            routing,
            pool: PacketPool::new(),
            recorder,
            publishers,
            packets_out,
            pcaps: outputs.pcaps,
            partitioned: Vec::new(),
            io_error: None,
            frag_owner: Default::default(),
            payload: Vec::with_capacity(2048),
            receivers: Vec::new(),
            frag_scratch: Vec::with_capacity(2048),
            frag_ids: Vec::new(),
            payload_out: Vec::with_capacity(2048),
            coap: (0..sc.nodes.len()).map(|_| None).collect(),
            coap_reqs: Default::default(),
            coap_req: crate::proto::coap::Request::new(
                crate::proto::coap::Method::Put,
                String::new(),
            ),
            tcp: tcp::TcpLayer::new(sc.seed),
            mqtt: Default::default(),
            series: Default::default(),
            radio,
        };
        w.tcp_setup();
        w.mqtt_setup();
        Ok(w)
    }

    /// The time the run ends: `duration + drain`.
    pub fn end_time(&self) -> SimTime {
        SimTime::ZERO + self.sc.duration + self.sc.drain
    }

    /// Schedule the initial events: scenario events, then each publisher's first send.
    fn prime(&mut self, q: &mut EventQueue<Ev>) {
        for (i, e) in self.sc.events.iter().enumerate() {
            let _ = q.push(e.at, Ev::Scenario { idx: i as u32 });
        }
        for p in 0..self.publishers.len() {
            self.schedule_publish(q, p);
        }
        self.mqtt_prime(q);
        self.series_prime(q);
        self.radio_prime(q);
    }

    pub(crate) fn schedule_publish(&mut self, q: &mut EventQueue<Ev>, p: usize) {
        let flow = &self.sc.flows[self.publishers[p].flow as usize];
        let schedule = crate::app::workload::Schedule {
            timing: &flow.timing,
            count: flow.count,
            duration: self.sc.duration,
        };
        if let Some(t) = self.publishers[p].next_send(schedule) {
            let t = t.max(q.now());
            let _ = q.push(t, Ev::Publish { p: p as u32 });
        }
    }

    /// Run to the end and hand back the results.
    pub fn run(mut self) -> io::Result<RunOutcome> {
        let mut q: EventQueue<Ev> = EventQueue::with_capacity(1024);
        self.prime(&mut q);
        let end = self.end_time();
        let stats = run_until(&mut self, &mut q, end);
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        self.tcp_finish();
        let mqtt = self.mqtt_rows();
        let radio = self.radio_report(end);
        if self.series.interval_ns > 0 {
            self.on_sample(end, None);
        }
        let (flows, messages, sent) = self.recorder.finish(end)?;
        let series = (self.series.interval_ns > 0).then(|| crate::metrics::timeseries::SeriesOut {
            interval_ns: self.series.interval_ns,
            flows: std::mem::take(&mut self.series.flows),
            links: std::mem::take(&mut self.series.links),
            media: std::mem::take(&mut self.series.media),
            tcp: std::mem::take(&mut self.series.tcp),
            sent,
        });
        let mut coap = crate::proto::coap::Stats::default();
        for c in self.coap.iter().flatten() {
            coap.add(c.ep.stats());
        }
        let mut packets = self.packets_out;
        if let Some(p) = packets.as_mut() {
            p.flush()?;
        }
        Ok(RunOutcome {
            flows,
            links: self.links,
            nodes: self.nodes.iter().map(|n| n.stats).collect(),
            events: stats.events,
            end,
            messages,
            packets,
            pcaps: self.pcaps,
            coap,
            connections: self.tcp.records,
            mqtt,
            series,
            radio,
        })
    }

    fn on_publish(&mut self, now: SimTime, q: &mut EventQueue<Ev>, p: usize) {
        let node = self.publishers[p].node as usize;
        let fi = self.publishers[p].flow as usize;
        let flow = &self.sc.flows[fi];
        if flow.timing == crate::scenario::model::Timing::Bulk {
            // a saturating source: open its connection; TCP pulls messages
            if self.nodes[node].up {
                self.tcp_bulk_open(now, q, p);
            }
            return;
        }
        if self.nodes[node].up && self.mqtt_publisher_alive(p) {
            let mut receivers = std::mem::take(&mut self.receivers);
            let counted = self.compose(now, p, &mut receivers);
            match flow.protocol {
                Protocol::Udp => self.udp_publish(now, q, fi, node, &receivers, counted),
                Protocol::Coap => self.coap_publish(now, q, p, &receivers, counted),
                Protocol::Tcp => self.tcp_publish(now, q, p, &receivers),
                Protocol::Mqtt => self.mqtt_publish(now, p),
            }
            self.receivers = receivers;
        }
        // a crashed publisher skips its slot; it resumes after a restart
        self.publishers[p].sent += 1;
        self.schedule_publish(q, p);
        self.recorder.flush(now, false);
    }

    /// Make publisher `p`'s next message: its value, its intended receivers
    /// (into `receivers`), its record, and its payload in `self.payload`.
    /// Returns whether it is counted (sent after warmup).
    pub(crate) fn compose(&mut self, now: SimTime, p: usize, receivers: &mut Vec<u32>) -> bool {
        let node = self.publishers[p].node;
        let fi = self.publishers[p].flow as usize;
        let flow = &self.sc.flows[fi];
        let value = self.publishers[p].next_value(&flow.value);
        let index = self.publishers[p].index as usize;
        self.recorder.intended(fi, index, node, receivers);
        let (msg, counted) = self
            .recorder
            .on_send(now, fi, index, node, value, receivers);
        crate::app::workload::build_payload(
            &mut self.payload,
            fi as u32,
            msg,
            value,
            flow.payload_bytes as usize,
        );
        counted
    }

    pub(crate) fn io_result(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if self.io_error.is_none() {
                self.io_error = Some(e);
            }
        }
    }

    /// Counters of a flow (`None` for traffic outside flows).
    pub(crate) fn flow_stats(&mut self, flow: u32) -> Option<&mut FlowStats> {
        self.recorder.stats_mut(flow as usize)
    }
}

/// Header of `packets.csv`.
/// `connection` (added by the TCP model) is the `connections.csv` id of the
/// TCP connection the segment belongs to, empty for other packets.
pub const PACKETS_HEADER: &str =
    "time_ms,run_id,link,from,to,protocol,kind,bytes,outcome,connection";

impl Model for World<'_> {
    type Event = Ev;
    fn handle(&mut self, now: SimTime, ev: Ev, q: &mut EventQueue<Ev>) {
        match ev {
            Ev::Publish { p } => self.on_publish(now, q, p as usize),
            Ev::TxDone { link, dir } => self.on_tx_done(now, q, link as usize, dir as usize),
            Ev::Arrive { link, dir, pkt } => {
                self.on_arrive(now, q, link as usize, dir as usize, pkt)
            }
            Ev::Scenario { idx } => self.on_scenario_event(now, q, idx as usize),
            Ev::Reassembly { node } => self.on_reassembly_timer(now, node as usize),
            Ev::CoapTimer { node, gen } => self.on_coap_timer(now, q, node as usize, gen),
            Ev::TcpTimer { slot, gen } => self.on_tcp_timer(now, q, slot, gen),
            Ev::MqttStart { client } => self.on_mqtt_start(now, client),
            Ev::MqttClientTimer { client, gen } => self.on_mqtt_client_timer(now, client, gen),
            Ev::MqttBrokerTimer { node, gen } => self.on_mqtt_broker_timer(now, node, gen),
            Ev::MqttFlush => {}
            Ev::Sample => self.on_sample(now, Some(q)),
            Ev::Loopback { node, pkt } => self.on_loopback(now, q, node as usize, pkt),
            Ev::MqttConnectTimeout { client, slot } => {
                self.on_mqtt_connect_timeout(now, q, client, slot)
            }
            Ev::Radio { m, kind, idx, gen } => self.on_radio(now, q, m as usize, kind, idx, gen),
        }
        self.mqtt_flush(now, q);
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn ev_is_16_bytes() {
        assert!(std::mem::size_of::<super::Ev>() <= 16);
    }
}
