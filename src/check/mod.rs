//! Spec-oracle monitors (issue 15 item 4; docs/checks.md): observers of
//! every node's protocol events that record each violation of a rule of
//! the MQTT, MQTT-SN, CoAP or TCP specification as (time, node, rule,
//! clause, detail). Off unless the run asks for them (`qossim run
//! --check`, or an `[[expect]]` on `violations`): the world then holds no
//! `Monitors` and every hook is one `Option` test.
//!
//! Memory: only what is in flight. The exactly-once rules need no state of
//! their own (the recorder already keeps each message until its deadline
//! and says when a receipt is a repeat); the TCP rule holds the bytes a
//! sender wrote that its peer has not read yet, dropped when the
//! connection's socket is freed; the MQTT wire rules (`mqtt`), the CoAP
//! message-layer rules (`coap`) and the MQTT-SN MsgId rule (`mqttsn`) say
//! what they hold in their modules.

use crate::sim::SimTime;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Write};

mod coap;
mod mqtt;
mod mqttsn;

pub use coap::CoapParams;

/// The rules, in the order of docs/checks.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A QoS 2 message reaches a subscriber's application at most once per
    /// session.
    MqttQos2Once,
    /// A duplicate CON request reaches the server's application once.
    CoapConOnce,
    /// A TCP receiver's application reads exactly the bytes its peer wrote,
    /// in order, without gaps or duplicates.
    TcpStream,
    /// First deliveries of one MQTT publisher's QoS ≥ 1 messages on its
    /// topic reach a subscriber in the order published.
    MqttTopicOrder,
    /// A QoS 1 message the broker acknowledged reaches every matching
    /// subscriber whose session survived.
    MqttQos1AtLeastOnce,
    /// No new QoS > 0 PUBLISH with a packet identifier still in flight.
    MqttPacketIdInUse,
    /// The will is published iff the connection ended without DISCONNECT.
    MqttWill,
    /// A retained PUBLISH for a new subscription carries the last retained
    /// message on its topic.
    MqttRetainedLast,
    /// A CoAP CON ends acknowledged, reset, or given up after exactly
    /// MAX_RETRANSMIT retransmissions.
    CoapConOutcome,
    /// No CoAP Message ID reused towards one endpoint within its lifetime.
    CoapMidReuse,
    /// No MQTT-SN MsgId reused while its PUBLISH is in flight.
    MqttsnMsgIdInUse,
    /// A message of an MQTT-SN QoS 2 flow reaches a subscriber at most
    /// once per session.
    MqttsnQos2Once,
}

impl Rule {
    /// Every rule, in the order of docs/checks.md.
    pub const ALL: [Rule; 12] = [
        Rule::MqttQos2Once,
        Rule::CoapConOnce,
        Rule::TcpStream,
        Rule::MqttTopicOrder,
        Rule::MqttQos1AtLeastOnce,
        Rule::MqttPacketIdInUse,
        Rule::MqttWill,
        Rule::MqttRetainedLast,
        Rule::CoapConOutcome,
        Rule::CoapMidReuse,
        Rule::MqttsnMsgIdInUse,
        Rule::MqttsnQos2Once,
    ];

    /// The rule's id in `violations.csv`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::MqttQos2Once => "mqtt-qos2-exactly-once",
            Rule::CoapConOnce => "coap-con-dedup",
            Rule::TcpStream => "tcp-stream-order",
            Rule::MqttTopicOrder => "mqtt-topic-order",
            Rule::MqttQos1AtLeastOnce => "mqtt-qos1-at-least-once",
            Rule::MqttPacketIdInUse => "mqtt-packet-id-in-use",
            Rule::MqttWill => "mqtt-will",
            Rule::MqttRetainedLast => "mqtt-retained-last",
            Rule::CoapConOutcome => "coap-con-outcome",
            Rule::CoapMidReuse => "coap-mid-reuse",
            Rule::MqttsnMsgIdInUse => "mqttsn-msgid-in-use",
            Rule::MqttsnQos2Once => "mqttsn-qos2-exactly-once",
        }
    }

    /// The clause of the specification it checks.
    pub fn clause(self) -> &'static str {
        match self {
            Rule::MqttQos2Once => "MQTT-4.3.3",
            Rule::CoapConOnce => "RFC 7252 §4.5",
            Rule::TcpStream => "RFC 9293 §3.10.7.4",
            Rule::MqttTopicOrder => "MQTT-4.6.0-6",
            Rule::MqttQos1AtLeastOnce => "MQTT-4.3.2",
            Rule::MqttPacketIdInUse => "MQTT-2.3.1-2",
            Rule::MqttWill => "MQTT-3.1.2-8, MQTT-3.1.2-10",
            Rule::MqttRetainedLast => "MQTT-3.3.1-6",
            Rule::CoapConOutcome => "RFC 7252 §4.2",
            Rule::CoapMidReuse => "RFC 7252 §4.4",
            Rule::MqttsnMsgIdInUse => "MQTT-SN 1.2 §5.3.7 (MQTT-2.3.1-2)",
            Rule::MqttsnQos2Once => "MQTT-SN 1.2 §6.6, §6.10 (MQTT-4.3.3)",
        }
    }
}

/// One recorded violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub t: SimTime,
    pub node: u32,
    pub rule: Rule,
    /// The flow it is attributed to (`None`: traffic outside flows).
    pub flow: Option<u32>,
    pub detail: String,
}

/// The sender's side of one TCP byte stream: what it wrote that the peer
/// has not read yet.
#[derive(Debug, Default)]
struct Stream {
    pending: VecDeque<u8>,
    /// Bytes the receiver read so far (the offset in a violation's detail).
    read: u64,
    /// A violation was recorded: the stream is out of step, checking stops.
    broken: bool,
}

/// The monitors of one run.
#[derive(Debug)]
pub struct Monitors {
    /// Per flow: the exactly-once rule its deliveries obey, if any.
    once: Vec<Option<Rule>>,
    /// Per node: when its current session began (a node restart, an MQTT
    /// connection without a present session); a repeat whose first
    /// delivery came earlier belongs to an older session.
    session_start: Vec<SimTime>,
    /// Byte streams by the sending socket's connection record
    /// (`connections.csv` id); looked up only, never iterated.
    streams: HashMap<u32, Stream>,
    /// Per flow: whether its first deliveries must keep each publisher's
    /// order.
    ordered: Vec<bool>,
    /// (flow, publisher node, receiver node) → the latest message id first
    /// delivered there (one entry per pair, not per message).
    last_first: BTreeMap<(u32, u32, u32), u32>,
    /// The MQTT wire rules' per-connection state.
    mqtt: mqtt::MqttState,
    /// The CoAP message-layer rules' state.
    coap: coap::CoapState,
    /// The MQTT-SN MsgId rule's state.
    sn: mqttsn::SnState,
    violations: Vec<Violation>,
    per_flow: Vec<u64>,
}

impl Monitors {
    /// Monitors for a run with `nodes` nodes and flows whose deliveries obey
    /// `once[flow]`.
    pub fn new(once: Vec<Option<Rule>>, nodes: usize) -> Self {
        let flows = once.len();
        Monitors {
            once,
            session_start: vec![SimTime::ZERO; nodes],
            streams: HashMap::new(),
            ordered: vec![false; flows],
            last_first: BTreeMap::new(),
            mqtt: Default::default(),
            coap: Default::default(),
            sn: Default::default(),
            violations: Vec::new(),
            per_flow: vec![0; flows],
        }
    }

    /// First deliveries of the flows where `ordered[flow]` keep each
    /// publisher's order (the MQTT QoS ≥ 1 flows).
    pub fn with_order(mut self, ordered: Vec<bool>) -> Self {
        self.ordered = ordered;
        self
    }

    /// Message `msg` of `flow`, published at node `publisher`, reached the
    /// application at `node` for the first time.
    pub fn first_delivery(&mut self, now: SimTime, flow: u32, msg: u32, publisher: u32, node: u32) {
        if !self.ordered.get(flow as usize).copied().unwrap_or(false) {
            return;
        }
        let last = self
            .last_first
            .entry((flow, publisher, node))
            .or_insert(msg);
        if msg >= *last {
            *last = msg;
            return;
        }
        let last = *last;
        self.record(Violation {
            t: now,
            node,
            rule: Rule::MqttTopicOrder,
            flow: Some(flow),
            detail: format!(
                "message {msg} first delivered after message {last} of the same publisher and topic"
            ),
        });
    }

    fn record(&mut self, v: Violation) {
        if let Some(c) = v.flow.and_then(|f| self.per_flow.get_mut(f as usize)) {
            *c += 1;
        }
        self.violations.push(v);
    }

    /// A new session began at `node` (state of older sessions is gone, so
    /// a message may legitimately reach the application again).
    pub fn session_start(&mut self, now: SimTime, node: u32) {
        if let Some(s) = self.session_start.get_mut(node as usize) {
            *s = now;
        }
    }

    /// State every receiver's deliveries pass through was lost (an MQTT-SN
    /// gateway restarted: a message it had forwarded may be forwarded
    /// again as new): a new session everywhere.
    pub fn session_start_all(&mut self, now: SimTime) {
        for s in &mut self.session_start {
            *s = now;
        }
    }

    /// Message `msg` of `flow` reached the application at `node` again;
    /// its first delivery there was at `first`.
    pub fn repeat_delivery(
        &mut self,
        now: SimTime,
        flow: u32,
        msg: u32,
        node: u32,
        first: SimTime,
    ) {
        let Some(rule) = self.once.get(flow as usize).copied().flatten() else {
            return;
        };
        let since = self
            .session_start
            .get(node as usize)
            .copied()
            .unwrap_or(SimTime::ZERO);
        if first < since {
            return;
        }
        self.record(Violation {
            t: now,
            node,
            rule,
            flow: Some(flow),
            detail: format!(
                "message {msg} delivered again (first delivery at {} ms, same session)",
                crate::metrics::record::fmt_ms(first.0)
            ),
        });
    }

    /// The socket of connection `conn` accepted `data` into its byte stream.
    pub fn tcp_written(&mut self, conn: u32, data: &[u8]) {
        let s = self.streams.entry(conn).or_default();
        if !s.broken {
            s.pending.extend(data.iter().copied());
        }
    }

    /// The application at `node` read `data` from the stream its peer's
    /// connection `sender` writes, attributed to `flow`.
    pub fn tcp_read(
        &mut self,
        now: SimTime,
        node: u32,
        sender: u32,
        flow: Option<u32>,
        data: &[u8],
    ) {
        // a stream nothing was written to (or whose sender is gone) is not
        // judged
        let Some(s) = self.streams.get_mut(&sender) else {
            return;
        };
        if s.broken {
            return;
        }
        let at = s.read;
        s.read += data.len() as u64;
        let mut bad = None;
        for (i, &b) in data.iter().enumerate() {
            match s.pending.pop_front() {
                Some(w) if w == b => {}
                Some(w) => {
                    bad = Some(format!(
                        "byte {} of connection {sender}'s stream is 0x{b:02x}, the sender wrote 0x{w:02x} there",
                        at + i as u64
                    ));
                    break;
                }
                None => {
                    bad = Some(format!(
                        "byte {} of connection {sender}'s stream was never written (the sender wrote {} bytes)",
                        at + i as u64,
                        at + i as u64
                    ));
                    break;
                }
            }
        }
        if let Some(detail) = bad {
            s.broken = true;
            s.pending = VecDeque::new();
            self.record(Violation {
                t: now,
                node,
                rule: Rule::TcpStream,
                flow,
                detail,
            });
        }
    }

    /// Connection `conn`'s socket is gone: its stream's state is dropped.
    pub fn tcp_forget(&mut self, conn: u32) {
        self.streams.remove(&conn);
    }

    /// What the monitors found, in the order found (then the QoS 1
    /// messages still owed at the end, in (flow, message, node) order).
    pub fn finish(mut self) -> Report {
        self.judge_qos1();
        Report {
            violations: self.violations,
            per_flow: self.per_flow,
        }
    }
}

/// The monitors' findings at the end of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Violations attributed to each flow (`runs.csv` `violations`).
    pub per_flow: Vec<u64>,
}

/// Header of `violations.csv`.
pub const VIOLATIONS_HEADER: &str = "run_id,t_ms,node,rule,clause,detail";

impl Report {
    /// Write `violations.csv` (header and one row per violation, in the
    /// order found: simulated time, then event order).
    pub fn write_csv(&self, w: &mut impl Write, run_id: u64, names: &[String]) -> io::Result<()> {
        writeln!(w, "{VIOLATIONS_HEADER}")?;
        for v in &self.violations {
            let node = names.get(v.node as usize).map_or("?", String::as_str);
            writeln!(
                w,
                "{run_id},{},{},{},{},{}",
                crate::metrics::record::fmt_ms(v.t.0),
                csv_field(node),
                v.rule.id(),
                csv_field(v.rule.clause()),
                csv_field(&v.detail)
            )?;
        }
        Ok(())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
