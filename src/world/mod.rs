//! The simulator proper: nodes, links, routing and applications driven by the
//! event queue. One `World` is one run of one scenario.
//!
//! Event handling order is fixed by the queue (time, then insertion order), and
//! every random draw comes from a stream named after its component, so a run
//! is a pure function of the scenario and its seed.

pub mod apps;
mod events;
mod faults;
pub mod host;
mod ip;
pub(crate) mod proc;
pub(crate) mod radio;
pub(crate) mod series;
pub mod trace;

use crate::app::workload::Publisher;
use crate::link::Link;
use crate::metrics::record::{FlowInfo, FlowStats, Recorder};
use crate::metrics::sink::{Capture, Sink};
use crate::metrics::summary::Value;
use crate::metrics::timeseries::NodeStats;
use crate::net::packet::{PacketHandle, PacketPool};
use crate::net::routing::Routing;
use crate::scenario::model::Scenario;
use crate::sim::{run_until, EventQueue, Model, SimTime};
use apps::{AppId, Deferred, Message, Plugin, PluginOutput, Registry, RunEnd, Table};
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
    Arrive {
        link: u32,
        dir: u8,
        pkt: PacketHandle,
    },
    /// Scenario event number `idx` (index into `Scenario::events`).
    Scenario { idx: u32 },
    /// Check a node's IP reassembly timers.
    Reassembly { node: u32 },
    /// A TCP socket's timer (stale when `gen` is not the slot's).
    TcpTimer { slot: u32, gen: u32 },
    /// A DTLS association's retransmission timer (`world::host::dtls`).
    DtlsTimer { slot: u32, gen: u32 },
    /// An event of protocol plug-in `app` (its timers): `Plugin::on_timer`.
    App { app: u8, key: u32, arg: u32 },
    /// Sample the time series (every `timeseries_interval`).
    Sample,
    /// A packet a node sent to itself comes back up its stack.
    Loopback { node: u32, pkt: PacketHandle },
    /// A packet leaves node `node`'s stack send side (`world::proc`).
    StackTx { node: u32, pkt: PacketHandle },
    /// A packet leaves node `node`'s stack receive side.
    StackRx { node: u32, pkt: PacketHandle },
    /// Node `node`'s application server finished its work.
    ProcDone { node: u32 },
    /// A packet a `delay_packet` fault held back leaves its source host
    /// `node` (`world::faults`).
    FaultRelease { node: u32, pkt: PacketHandle },
    /// A shared-medium event of medium `m` (`world::radio`: MAC timer, end of
    /// a transmission, ACK start, interferer burst).
    Radio {
        m: u16,
        kind: u8,
        idx: u32,
        gen: u32,
    },
}

/// A datagram being reassembled: (node, source address, ident, protocol)
/// (IPv4's 16-bit or IPv6's 32-bit identification).
pub(crate) type FragKey = (u32, u32, u32, u8);
/// Who a datagram being reassembled belongs to: (flow, counted, first arrival).
pub(crate) type FragOwner = (u32, bool, SimTime);

/// Per-node state.
#[derive(Debug)]
pub struct Node {
    pub up: bool,
    pub forwards: bool,
    /// Next IPv4 identification value.
    pub ip_ident: u16,
    reassembler: Option<Box<ip::NodeReassembly>>,
    /// Processing times (only nodes with a non-zero one: `world::proc`).
    pub(crate) proc: Option<Box<proc::NodeProc>>,
    pub stats: NodeStats,
}

/// A run stopped at its `Outputs::event_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run passed its limit of {0} events")]
pub struct EventLimit(pub u64);

/// Optional outputs of a run.
#[derive(Default)]
pub struct Outputs {
    pub messages: Option<Box<dyn Sink>>,
    pub packets: Option<Box<dyn Sink>>,
    /// One capture per link (index = link index), then one per radio
    /// medium, when pcaps are requested.
    pub pcaps: Vec<Box<dyn Capture>>,
    /// Run the spec-oracle monitors (`qossim run --check`); they also run
    /// when the scenario expects `violations`.
    pub check: bool,
    /// Where `trace.csv` streams and which rows it keeps (`--trace`).
    pub trace: Option<(Box<dyn Sink>, trace::TraceFilter)>,
    /// Stop with an error once this many events have run (the browser
    /// build's bound, `run::run_in_memory`); `None`: no bound.
    pub event_limit: Option<u64>,
}

/// What a finished run hands back.
pub struct RunOutcome {
    pub flows: Vec<(String, FlowStats)>,
    /// The metric columns of runs.csv (`Registry::metric_columns`).
    pub columns: Vec<&'static str>,
    /// Per flow, one value per column.
    pub metrics: Vec<Vec<Value>>,
    pub links: Vec<Link>,
    pub nodes: Vec<NodeStats>,
    pub events: u64,
    pub end: SimTime,
    pub messages: Option<Box<dyn Sink>>,
    pub packets: Option<Box<dyn Sink>>,
    /// `trace.csv` (flushed), when traced.
    pub trace: Option<Box<dyn Sink>>,
    pub pcaps: Vec<Box<dyn Capture>>,
    /// Every TCP connection endpoint of the run (`connections.csv`).
    pub connections: Vec<crate::metrics::connections::ConnRecord>,
    /// Extra tables the plug-ins wrote (`mqtt.csv`, …).
    pub tables: Vec<Table>,
    /// Extra tables a plug-in may write but did not this run (a stale copy
    /// from an earlier run in the same directory is removed).
    pub absent_tables: Vec<&'static str>,
    /// Each plug-in's name and end-of-run output (its counters for callers).
    pub plugins: Vec<(&'static str, PluginOutput)>,
    /// Time series (None when `timeseries_interval` is zero).
    pub series: Option<crate::metrics::timeseries::SeriesOut>,
    /// Radio energy per node and medium counters (empty without media).
    pub radio: crate::metrics::energy::RadioReport,
    /// Per node, its application server's counters (`nodes.csv` `proc_*`);
    /// empty when no node of the scenario has processing times.
    pub processing: Vec<Option<crate::metrics::timeseries::ProcStats>>,
    /// The spec-oracle monitors' findings (`None`: monitors were off).
    pub violations: Option<crate::check::Report>,
}

impl RunOutcome {
    /// Counter `name` of plug-in `plugin` (`PluginOutput::counters`).
    pub fn counter(&self, plugin: &str, name: &str) -> Option<u64> {
        let (_, out) = self.plugins.iter().find(|(p, _)| *p == plugin)?;
        out.counters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// One run of one scenario.
pub struct World<'s> {
    pub(crate) sc: &'s Scenario,
    /// The network layer: IPv4 or IPv6 (`[protocols.ip] version`).
    pub(crate) net: crate::net::l3::NetPlan,
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
    /// `Outputs::event_limit`.
    event_limit: Option<u64>,
    /// Datagrams being reassembled: (node, src, ident, protocol) → (flow,
    /// counted, first fragment's arrival), to attribute reassembly timeouts.
    pub(crate) frag_owner: std::collections::BTreeMap<FragKey, FragOwner>,
    // scratch buffers reused on the hot path
    pub(crate) payload: Vec<u8>,
    pub(crate) receivers: Vec<u32>,
    pub(crate) frag_scratch: Vec<u8>,
    pub(crate) frag_ids: Vec<PacketHandle>,
    /// Every node's bound UDP ports.
    pub(crate) udp: host::udp::UdpLayer,
    /// Every node's TCP connections and listeners.
    pub(crate) tcp: host::tcp::TcpLayer,
    pub(crate) dtls: host::dtls::DtlsLayer,
    /// The protocol plug-ins, in registry order (a slot is empty while its
    /// plug-in's own call runs).
    pub(crate) apps: Vec<Option<Box<dyn Plugin>>>,
    /// The plug-in of every flow.
    app_of_flow: Vec<AppId>,
    /// Plug-ins that asked for `Plugin::flush`: bit `i` for `AppId(i)`
    /// (at most `registry::MAX_PLUGINS`).
    pub(crate) pending: u64,
    /// Deliveries that waited for a plug-in's own call to return.
    pub(crate) deferred: Vec<Deferred>,
    registry: Registry,
    /// Samples for the time series.
    pub(crate) series: series::SeriesState,
    /// Shared radio media and their MACs.
    pub(crate) radio: radio::Radio,
    /// Nodes whose application server has something to settle after the
    /// current event (`world::proc`).
    pub(crate) proc_touched: Vec<u32>,
    /// Some node has an application server (else no stream event looks).
    pub(crate) has_servers: bool,
    /// Scratch for the bytes of a queued input being handed over.
    pub(crate) proc_scratch: Vec<u8>,
    /// Packet-fault events' state (`world::faults`); empty without any.
    pub(crate) faults: Vec<faults::FaultState>,
    /// The spec-oracle monitors (`None`: off, every hook one test).
    pub(crate) monitors: Option<Box<crate::check::Monitors>>,
    /// The trace writer (`None`: off, every hook one test).
    pub(crate) trace: Option<Box<trace::Tracer>>,
}

impl<'s> World<'s> {
    /// Build the world for `sc` with the built-in protocols. `outputs` are
    /// where streamed files go.
    pub fn new(sc: &'s Scenario, run_id: u64, outputs: Outputs) -> io::Result<Self> {
        Self::with_registry(sc, run_id, outputs, &Registry::builtin())
    }

    /// Build the world for `sc` with the protocol plug-ins of `registry`
    /// (every flow's protocol must be one of them).
    pub fn with_registry(
        sc: &'s Scenario,
        run_id: u64,
        outputs: Outputs,
        registry: &Registry,
    ) -> io::Result<Self> {
        let mut app_of_flow = Vec::with_capacity(sc.flows.len());
        for f in &sc.flows {
            match registry.index_of(f.protocol.as_str()) {
                Some(a) => app_of_flow.push(a),
                None => {
                    return Err(io::Error::other(format!(
                        "flow \"{}\": no protocol plug-in named \"{}\" is registered",
                        f.name,
                        f.protocol.as_str()
                    )))
                }
            }
        }
        let apps: Vec<Option<Box<dyn Plugin>>> = registry
            .entries()
            .iter()
            .map(|e| Some((e.new)(sc)))
            .collect();
        let names: Arc<[String]> = sc.nodes.iter().map(|n| n.name.clone()).collect();
        let nodes = sc
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Node {
                up: true,
                forwards: n.role.forwards(),
                ip_ident: 0,
                reassembler: None,
                proc: sc
                    .processing
                    .get(&i)
                    .map(|p| proc::NodeProc::new(p, sc.seed, &n.name)),
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
        // exact: 10,000 publishers grown by doubling would hold 6,384 more
        let mut publishers = Vec::with_capacity(sc.flows.iter().map(|f| f.publishers.len()).sum());
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
        let trace = match outputs.trace {
            Some((out, filter)) => Some(Box::new(trace::Tracer::new(
                out,
                filter,
                run_id,
                sc.flows.len(),
                sc.protocols.ip.plan(),
            )?)),
            None => None,
        };
        let w = World {
            trace,
            sc,
            net: sc.protocols.ip.plan(),
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
            event_limit: outputs.event_limit,
            partitioned: Vec::new(),
            io_error: None,
            frag_owner: Default::default(),
            payload: Vec::with_capacity(2048),
            receivers: Vec::new(),
            frag_scratch: Vec::with_capacity(2048),
            frag_ids: Vec::new(),
            udp: host::udp::UdpLayer::new(sc.nodes.len()),
            tcp: host::tcp::TcpLayer::new(sc.seed, sc.flows.len()),
            dtls: host::dtls::DtlsLayer::new(sc.protocols.dtls.clone(), sc.seed),
            pending: 0,
            apps,
            app_of_flow,
            deferred: Vec::new(),
            registry: registry.clone(),
            series: Default::default(),
            radio,
            proc_touched: Vec::new(),
            faults: faults::states(sc),
            has_servers: sc.processing.values().any(|p| p.has_server()),
            proc_scratch: Vec::new(),
            monitors: (outputs.check || expects_violations(sc)).then(|| {
                let coap = crate::proto::coap::Config::from(&sc.protocols.coap);
                Box::new(
                    crate::check::Monitors::new(once_rules(sc), sc.nodes.len())
                        .with_order(ordered_flows(sc))
                        .with_coap(crate::check::CoapParams {
                            max_retransmit: coap.max_retransmit,
                            exchange_lifetime: coap.exchange_lifetime(),
                            non_lifetime: coap.non_lifetime(),
                        }),
                )
            }),
        };
        Ok(w)
    }

    /// The time the run ends: `duration + drain`.
    pub fn end_time(&self) -> SimTime {
        SimTime::ZERO + self.sc.duration + self.sc.drain
    }

    /// Set up the plug-ins (ports, listeners, endpoints) and schedule the
    /// initial events: scenario events, each publisher's first send, the
    /// plug-ins' first timers, samples, radio.
    fn prime(&mut self, queue: &mut EventQueue<Ev>) {
        self.each_app(SimTime::ZERO, queue, |p, ctx| p.setup(ctx));
        for (i, e) in self.sc.events.iter().enumerate() {
            let _ = queue.push(e.at, Ev::Scenario { idx: i as u32 });
        }
        for p in 0..self.publishers.len() {
            self.schedule_publish(queue, p);
        }
        self.each_app(SimTime::ZERO, queue, |p, ctx| p.prime(ctx));
        self.series_prime(queue);
        self.radio_prime(queue);
    }

    pub(crate) fn schedule_publish(&mut self, queue: &mut EventQueue<Ev>, publisher: usize) {
        let flow = &self.sc.flows[self.publishers[publisher].flow as usize];
        let schedule = crate::app::workload::Schedule {
            timing: &flow.timing,
            count: flow.count,
            duration: self.sc.duration,
        };
        if let Some(t) = self.publishers[publisher].next_send(schedule) {
            let t = t.max(queue.now());
            let _ = queue.push(
                t,
                Ev::Publish {
                    p: publisher as u32,
                },
            );
        }
    }

    /// Run to the end and hand back the results.
    pub fn run(mut self) -> io::Result<RunOutcome> {
        let mut q: EventQueue<Ev> = EventQueue::with_capacity(1024);
        self.prime(&mut q);
        let end = self.end_time();
        let stats = match self.event_limit {
            None => run_until(&mut self, &mut q, end),
            Some(max) => {
                let (stats, done) = crate::sim::run_until_at_most(&mut self, &mut q, end, max);
                if !done {
                    return Err(io::Error::other(EventLimit(max)));
                }
                stats
            }
        };
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        // the events still queued past the end are not needed: their memory
        // goes back before the outputs are built
        drop(q);
        let processing = if self.sc.processing.is_empty() {
            Vec::new()
        } else {
            self.proc_stats()
        };
        let radio = self.radio_report(end);
        if self.series.interval_ns > 0 {
            self.on_sample(end, None);
        }
        // after the last sample, which reads the sockets this frees
        let connections = self.tcp_finish();
        let (mut flows, messages, sent) = self.recorder.finish(end)?;
        // sorted once here (percentiles need it), not copied per consumer
        for (_, st) in &mut flows {
            st.latencies.sort();
        }
        let series = (self.series.interval_ns > 0).then(|| crate::metrics::timeseries::SeriesOut {
            interval_ns: self.series.interval_ns,
            flows: std::mem::take(&mut self.series.flows),
            links: std::mem::take(&mut self.series.links),
            media: std::mem::take(&mut self.series.media),
            tcp: std::mem::take(&mut self.series.tcp),
            sent,
        });
        let run_end = RunEnd {
            scenario: self.sc,
            run_id: self.run_id,
            flows: &flows,
        };
        let mut plugins = Vec::with_capacity(self.apps.len());
        for (e, p) in self.registry.entries().iter().zip(&mut self.apps) {
            let out = p.as_mut().map(|p| p.finish(&run_end)).unwrap_or_default();
            plugins.push((e.name, out));
        }
        let columns = self.registry.metric_columns();
        let violations = self.monitors.take().map(|m| m.finish());
        let energy = radio.total_mj();
        let metrics = flows
            .iter()
            .enumerate()
            .map(|(fi, (_, st))| {
                let mut row = metric_row(
                    &self.registry,
                    self.tcp.flow_counters[fi],
                    st,
                    energy,
                    &plugins,
                    fi,
                );
                // the last column: empty when the monitors were off (no
                // run measured it), never a made-up 0
                row.push(match &violations {
                    Some(r) => Value::Int(r.per_flow.get(fi).copied().unwrap_or(0)),
                    None => Value::Empty,
                });
                row
            })
            .collect();
        let mut tables = Vec::new();
        let mut absent_tables = Vec::new();
        for (e, (_, out)) in self.registry.entries().iter().zip(&plugins) {
            tables.extend(out.tables.iter().cloned());
            for f in e.tables {
                if !out.tables.iter().any(|t| t.file == *f) {
                    absent_tables.push(*f);
                }
            }
        }
        let mut packets = self.packets_out;
        if let Some(p) = packets.as_mut() {
            p.flush()?;
        }
        let trace = match self.trace.take() {
            Some(t) => Some(t.finish()?),
            None => None,
        };
        Ok(RunOutcome {
            flows,
            columns,
            metrics,
            links: self.links,
            nodes: self.nodes.iter().map(|n| n.stats).collect(),
            events: stats.events,
            end,
            messages,
            packets,
            trace,
            pcaps: self.pcaps,
            connections,
            tables,
            absent_tables,
            plugins,
            series,
            radio,
            processing,
            violations,
        })
    }

    fn on_publish(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, publisher: usize) {
        let node = self.publishers[publisher].node;
        let fi = self.publishers[publisher].flow as usize;
        let app = self.app_of_flow[fi];
        let flow = &self.sc.flows[fi];
        if flow.timing == crate::scenario::model::Timing::Bulk {
            // a saturating source: its plug-in pulls messages
            if self.nodes[node as usize].up {
                self.with_app(now, queue, app, |pl, ctx| pl.start_source(ctx, publisher));
            }
            return;
        }
        let alive = self.apps[app.0 as usize]
            .as_ref()
            .is_some_and(|pl| pl.publisher_alive(publisher, node, fi as u32));
        if self.nodes[node as usize].up && alive {
            let mut receivers = std::mem::take(&mut self.receivers);
            let counted = self.compose(now, publisher, &mut receivers);
            let payload = std::mem::take(&mut self.payload);
            let topic = Arc::clone(&self.publishers[publisher].topic);
            self.with_app(now, queue, app, |pl, ctx| {
                pl.publish(
                    ctx,
                    Message {
                        publisher,
                        flow: fi,
                        node,
                        topic: &topic,
                        receivers: &receivers,
                        counted,
                        payload: &payload,
                    },
                )
            });
            self.payload = payload;
            self.receivers = receivers;
        }
        // a crashed publisher skips its slot; it resumes after a restart
        self.publishers[publisher].sent += 1;
        self.schedule_publish(queue, publisher);
        self.recorder.flush(now, false);
    }

    /// Make publisher `p`'s next message: its value, its intended receivers
    /// (into `receivers`), its record, and its payload in `self.payload`.
    /// Returns whether it is counted (sent after warmup).
    pub(crate) fn compose(
        &mut self,
        now: SimTime,
        publisher: usize,
        receivers: &mut Vec<u32>,
    ) -> bool {
        let node = self.publishers[publisher].node;
        let fi = self.publishers[publisher].flow as usize;
        let flow = &self.sc.flows[fi];
        let value = self.publishers[publisher].next_value(&flow.value);
        let index = self.publishers[publisher].index as usize;
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
        if let Some(t) = self.trace.as_mut() {
            let r = t.publish(
                now,
                (self.sc, &self.names),
                fi,
                msg,
                node,
                self.payload.len(),
            );
            self.io_result(r);
        }
        counted
    }

    pub(crate) fn io_result(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
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

/// One flow's metric values, every column of the registry's layout.
fn metric_row(
    registry: &Registry,
    tcp: host::tcp::TcpFlowCounters,
    st: &FlowStats,
    energy: Option<[f64; 4]>,
    plugins: &[(&'static str, PluginOutput)],
    fi: usize,
) -> Vec<Value> {
    use crate::metrics::summary::{core_values, energy_values};
    let mut row = core_values(st, energy.map(|e| e.iter().sum::<f64>()));
    for (owner, cols) in registry.column_groups() {
        match owner {
            apps::ColumnOwner::HostTcp => row.extend([
                Value::Int(tcp.retransmissions),
                Value::Int(tcp.rto_expiries),
                Value::Int(tcp.connection_failures),
                Value::Int(tcp.malformed),
                Value::Int(tcp.security_failures),
                Value::Int(tcp.secure_handshakes),
                match tcp.connects {
                    0 => Value::Empty,
                    n => Value::Float(tcp.connect_ns as f64 / n as f64 / 1e6),
                },
            ]),
            apps::ColumnOwner::Energy => row.extend(energy_values(energy, st)),
            apps::ColumnOwner::Plugin(a) => {
                let vals = plugins
                    .get(a.0 as usize)
                    .and_then(|(_, o)| o.columns.get(fi));
                for k in 0..cols.len() {
                    row.push(vals.and_then(|v| v.get(k)).copied().unwrap_or(Value::Empty));
                }
            }
        }
    }
    row
}

/// Whether an `[[expect]]` of `sc` reads `violations` (the monitors then
/// run without `--check`).
fn expects_violations(sc: &Scenario) -> bool {
    sc.expectations
        .iter()
        .any(|e| e.metric == crate::scenario::expect::VIOLATIONS)
}

/// Per flow, the exactly-once rule its deliveries obey (docs/checks.md):
/// MQTT QoS 2 to MQTT subscribers, MQTT-SN QoS 2 (to MQTT-SN or MQTT
/// subscribers), and CoAP CON PUTs (a GET-polled reading may legitimately
/// arrive in several responses).
fn once_rules(sc: &Scenario) -> Vec<Option<crate::check::Rule>> {
    use crate::check::Rule;
    use crate::scenario::model::{CoapMode, Protocol, Reliability};
    sc.flows
        .iter()
        .map(|f| match (f.protocol, f.reliability) {
            (Protocol::Mqtt, Reliability::Qos2 | Reliability::ExactlyOnce)
                if f.subscribe_with == Protocol::Mqtt =>
            {
                Some(Rule::MqttQos2Once)
            }
            (Protocol::Mqttsn, Reliability::Qos2 | Reliability::ExactlyOnce) => {
                Some(Rule::MqttsnQos2Once)
            }
            (Protocol::Coap, Reliability::Con | Reliability::Confirmed)
                if f.coap_mode == CoapMode::Put =>
            {
                Some(Rule::CoapConOnce)
            }
            _ => None,
        })
        .collect()
}

/// Per flow, whether its first deliveries keep each publisher's order
/// ([MQTT-4.6.0-6]): MQTT at QoS 1 or 2 to MQTT subscribers.
fn ordered_flows(sc: &Scenario) -> Vec<bool> {
    use crate::scenario::model::{Protocol, Reliability};
    sc.flows
        .iter()
        .map(|f| {
            f.protocol == Protocol::Mqtt
                && f.subscribe_with == Protocol::Mqtt
                && matches!(
                    f.reliability,
                    Reliability::Qos1
                        | Reliability::Qos2
                        | Reliability::Confirmed
                        | Reliability::ExactlyOnce
                )
        })
        .collect()
}

/// Header of `packets.csv`.
/// `connection` (added by the TCP model) is the `connections.csv` id of the
/// TCP connection the segment belongs to, empty for other packets.
pub const PACKETS_HEADER: &str =
    "time_ms,run_id,link,from,to,protocol,kind,bytes,outcome,connection";

impl Model for World<'_> {
    type Event = Ev;
    fn handle(&mut self, now: SimTime, ev: Ev, queue: &mut EventQueue<Ev>) {
        match ev {
            Ev::Publish { p } => self.on_publish(now, queue, p as usize),
            Ev::TxDone { link, dir } => self.on_tx_done(now, queue, link as usize, dir as usize),
            Ev::Arrive { link, dir, pkt } => {
                self.on_arrive(now, queue, link as usize, dir as usize, pkt)
            }
            Ev::Scenario { idx } => self.on_scenario_event(now, queue, idx as usize),
            Ev::Reassembly { node } => self.on_reassembly_timer(now, node as usize),
            Ev::TcpTimer { slot, gen } => self.on_tcp_timer(now, queue, slot, gen),
            Ev::DtlsTimer { slot, gen } => self.on_dtls_timer(now, queue, slot, gen),
            Ev::App { app, key, arg } => self.on_app_timer(now, queue, app, key, arg),
            Ev::Sample => self.on_sample(now, Some(queue)),
            Ev::Loopback { node, pkt } => self.on_loopback(now, queue, node as usize, pkt),
            Ev::Radio { m, kind, idx, gen } => {
                self.on_radio(now, queue, m as usize, kind, idx, gen)
            }
            Ev::StackTx { node, pkt } => self.on_stack_tx(now, queue, node as usize, pkt),
            Ev::StackRx { node, pkt } => self.on_stack_rx(now, queue, node as usize, pkt),
            Ev::ProcDone { node } => self.on_proc_done(now, queue, node as usize),
            Ev::FaultRelease { node, pkt } => self.on_fault_release(now, queue, node as usize, pkt),
        }
        self.flush_apps(now, queue);
        if !self.proc_touched.is_empty() {
            self.proc_settle(now, queue);
        }
    }
}

/// Bytes of the fixed part of each per-client structure of a run (heap
/// buffers they point to not included), for the memory budget of issue 22
/// (BENCHMARKS.md "A million MQTT clients") and `tests/memory.rs`.
pub fn footprint() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        ("world::Node", size_of::<Node>()),
        ("link::Link", size_of::<crate::link::Link>()),
        (
            "tcp socket (world)",
            size_of::<Option<host::tcp::TcpSock>>(),
        ),
        (
            "tcp::Connection",
            size_of::<crate::transport::tcp::Connection>(),
        ),
        (
            "tcp connection record",
            size_of::<crate::metrics::connections::ConnInfo>(),
        ),
        ("mqtt client (world)", apps::CLIENT_NODE_BYTES),
        (
            "mqtt::Client",
            size_of::<crate::proto::mqtt::client::Client>(),
        ),
        (
            "mqtt::ClientConfig",
            size_of::<crate::proto::mqtt::config::ClientConfig>(),
        ),
        (
            "mqtt broker session",
            size_of::<Option<crate::proto::mqtt::session::Session>>(),
        ),
        (
            "mqtt broker connection",
            size_of::<crate::proto::mqtt::session::Conn>(),
        ),
        (
            "app::Publisher",
            size_of::<crate::app::workload::Publisher>(),
        ),
        (
            "scenario::NodeSpec",
            size_of::<crate::scenario::model::NodeSpec>(),
        ),
        (
            "scenario::LinkSpec",
            size_of::<crate::link::model::LinkSpec>(),
        ),
    ]
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn ev_is_16_bytes() {
        assert!(std::mem::size_of::<super::Ev>() <= 16);
    }
}
