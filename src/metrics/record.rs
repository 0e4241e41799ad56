//! Recording what happened to every message: the per-flow counters behind
//! `runs.csv` and the streamed rows of `messages.csv`.
//!
//! Definitions (docs/metrics.md): a message is *sent* when the publishing
//! application calls send; its *intended* receivers are fixed by the flow's
//! pattern. It is *delivered* at a receiver on the first application-level
//! receipt no later than `drain` after the send (every message has at least
//! that long, since the run lasts `duration + drain` and sends stop at
//! `duration`); later copies count as `duplicates`, and a first receipt after
//! that deadline as `late_deliveries`. Messages sent before `warmup` are not
//! counted anywhere.
//!
//! Memory: a message's record is kept only until its deadline; then its rows
//! are written to `messages.csv` and the record is dropped, so memory holds a
//! window of `drain` worth of messages, never the whole run — plus 8 bytes
//! per (message, receiver) still undelivered at its deadline, so that a
//! first receipt after that (a persistent session's queue emptied long
//! after, a retransmission that finally got through) still counts as a
//! late delivery, once, and a copy of a message delivered in time does not.

use crate::app::workload::Pattern;
use crate::sim::{SimDuration, SimTime};
use std::collections::VecDeque;
use std::io::Write;

pub use super::latencies::Latencies;

/// What one receipt was (`Recorder::on_receive`), for the monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The first delivery of the message at that receiver; `publisher` is
    /// the publishing node.
    First { publisher: u32 },
    /// A repeat of a delivered message; `first` is when it was delivered.
    Repeat { first: SimTime },
}

/// Counters of one flow in one run.
#[derive(Debug, Default, Clone)]
pub struct FlowStats {
    pub sent: u64,
    pub intended: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub late_deliveries: u64,
    /// Latency of every delivered (message, receiver), ns (compact: a
    /// value below 4.29 s in 4 bytes).
    pub latencies: Latencies,
    pub bytes_on_wire: u64,
    /// `bytes_on_wire` by layer: application payload, protocol headers,
    /// transport and IP headers, and whole retransmitted packets.
    pub bytes_payload: u64,
    pub bytes_protocol: u64,
    pub bytes_transport_ip: u64,
    pub bytes_retransmissions: u64,
    /// The radio hop's share (issue 20): PHY and MAC headers, FCS and
    /// 802.15.4 ACK frames; 6LoWPAN headers (fragment headers, IPHC, NHC).
    pub bytes_link: u64,
    pub bytes_adaptation: u64,
    /// The security overlays' share (issue 21): TLS/DTLS record headers,
    /// tags, padding and handshakes, WebSocket upgrade and framing.
    pub bytes_security: u64,
    /// The flow's frames on 802.15.4 media (every attempt of a data frame
    /// and every link ACK), their whole PPDUs, their airtime (ns) and the
    /// energy of sending them and of every radio that received them (mJ).
    pub frames_air: u64,
    pub bytes_air: u64,
    pub airtime_air_ns: u64,
    pub energy_air_mj: f64,
    /// The part of `bytes_on_wire` in packets carrying TCP (an MQTT-SN
    /// flow's backhaul; the rest of its bytes are its UDP hops).
    pub bytes_on_wire_tcp: u64,
    pub retransmissions: u64,
    pub drops_channel: u64,
    pub drops_queue: u64,
    pub drops_mtu: u64,
    pub drops_no_route: u64,
    pub drops_link_down: u64,
    pub drops_node_down: u64,
    pub drops_reassembly: u64,
    /// Packets dropped at their source by `drop_packet` faults.
    pub drops_fault: u64,
    pub collisions: u64,
    pub give_ups: u64,
    pub resets: u64,
    pub duplicates_suppressed: u64,
    /// TCP segments retransmitted, retransmission timer expirations,
    /// connections that failed (lost or reset), segments that did not parse.
    pub tcp_retransmissions: u64,
    pub tcp_rto_expiries: u64,
    pub tcp_connection_failures: u64,
    pub tcp_malformed: u64,
    /// MQTT clients' unexpected connection losses, reconnections, wills
    /// the broker published for them, the delay from each crash to its will
    /// (ns), and messages dropped (broker queue full or QoS 0 offline,
    /// client queue full).
    pub mqtt_connection_losses: u64,
    pub mqtt_reconnects: u64,
    pub mqtt_wills: u64,
    pub mqtt_will_delay_ns: Vec<u64>,
    pub mqtt_dropped: u64,
}

impl FlowStats {
    /// Add a first transmission's bytes by layer (`bytes_on_wire` and the
    /// link layer are the caller's).
    pub fn add_layers(&mut self, l: &crate::net::packet::Layers) {
        self.bytes_adaptation += l.adaptation;
        self.bytes_transport_ip += l.transport_ip;
        self.bytes_security += l.security;
        self.bytes_protocol += l.protocol;
        self.bytes_payload += l.payload;
    }
}

#[derive(Debug, Clone, Copy)]
struct MsgRec {
    publisher: u32,
    pub_index: u32,
    sent_at: SimTime,
    value: f64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    receiver: u32,
    first: u64,
    copies: u32,
}

const NONE: u32 = u32::MAX;
const NOT_DELIVERED: u64 = u64::MAX;
/// `Slot::first` of a message whose first receipt there came after its
/// deadline (counted in `late_deliveries` once, not delivered).
const LATE: u64 = u64::MAX - 1;

/// Tracking state of one flow.
#[derive(Debug)]
struct FlowTrack {
    name: String,
    pattern: Pattern,
    receivers: Vec<u32>,
    topics: Vec<std::sync::Arc<str>>,
    payload_bytes: u32,
    stride: usize,
    /// Message id of `msgs[0]`.
    base: u32,
    next_id: u32,
    msgs: VecDeque<MsgRec>,
    slots: VecDeque<Slot>,
    /// (message id, receiver) of the deliveries still owed when their
    /// record was retired at the deadline, in message order: a first
    /// receipt after that is a late delivery (a receipt of a message
    /// delivered in time is not). A receiver's entry becomes [`NONE`] at
    /// its late receipt. 8 bytes per undelivered (message, receiver).
    overdue: Vec<(u32, u32)>,
    stats: FlowStats,
}

/// The recorder of one run.
pub struct Recorder<W: Write> {
    run_id: u64,
    warmup: SimTime,
    drain: SimDuration,
    flows: Vec<FlowTrack>,
    names: std::sync::Arc<[String]>,
    out: Option<W>,
    line: String,
    io_error: Option<std::io::Error>,
    /// `timeseries.csv` interval in ns (0: off) and, per flow, the messages
    /// sent in each interval.
    series_ns: u64,
    series: Vec<Vec<SentBucket>>,
}

/// What became of the counted messages sent in one interval.
#[derive(Debug, Clone, Default)]
pub struct SentBucket {
    pub sent: u64,
    pub intended: u64,
    pub delivered: u64,
    /// Latency of each delivery, ns, while the interval is open (messages
    /// are finished in send order, so it closes when a later interval's
    /// first message is finished).
    latencies: Vec<u64>,
    /// Nearest-rank latency percentiles once closed (ns).
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    closed: bool,
}

impl SentBucket {
    /// Compute the percentiles and free the latencies.
    fn close(&mut self) {
        self.closed = true;
        if self.latencies.is_empty() {
            return;
        }
        self.latencies.sort_unstable();
        self.p50 = crate::metrics::stats::percentile_nearest_rank(&self.latencies, 50.0);
        self.p99 = crate::metrics::stats::percentile_nearest_rank(&self.latencies, 99.0);
        self.latencies = Vec::new();
    }
}

/// Header of `messages.csv`.
pub const MESSAGES_HEADER: &str = "run_id,flow,msg_id,publisher,receiver,topic,value,payload_bytes,sent_at_ms,delivered_at_ms,latency_ms,copies";

/// Nanoseconds as milliseconds with 6 decimals, exactly (integer arithmetic).
pub fn fmt_ms(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000, ns % 1_000_000)
}

/// A CSV cell that is a number or empty.
pub struct OptU32(pub Option<u32>);

impl std::fmt::Display for OptU32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => Ok(()),
        }
    }
}

/// Quote a CSV field if needed (RFC 4180).
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// What the recorder needs to know about a flow.
pub struct FlowInfo {
    pub name: String,
    pub pattern: Pattern,
    pub receivers: Vec<u32>,
    pub topics: Vec<std::sync::Arc<str>>,
    pub payload_bytes: u32,
}

impl<W: Write> Recorder<W> {
    /// `out`: where `messages.csv` rows stream (header written here).
    pub fn new(
        run_id: u64,
        warmup: SimDuration,
        drain: SimDuration,
        flows: Vec<FlowInfo>,
        names: std::sync::Arc<[String]>,
        mut out: Option<W>,
    ) -> std::io::Result<Self> {
        if let Some(w) = out.as_mut() {
            writeln!(w, "{MESSAGES_HEADER}")?;
        }
        let flows = flows
            .into_iter()
            .map(|f| {
                let stride = match f.pattern {
                    Pattern::Broadcast => f.receivers.len().max(1),
                    _ => 1,
                };
                FlowTrack {
                    name: f.name,
                    pattern: f.pattern,
                    receivers: f.receivers,
                    topics: f.topics,
                    payload_bytes: f.payload_bytes,
                    stride,
                    base: 0,
                    next_id: 0,
                    msgs: VecDeque::new(),
                    slots: VecDeque::new(),
                    overdue: Vec::new(),
                    stats: FlowStats::default(),
                }
            })
            .collect();
        Ok(Recorder {
            run_id,
            warmup: SimTime::ZERO + warmup,
            drain,
            flows,
            names,
            out,
            line: String::new(),
            io_error: None,
            series_ns: 0,
            series: Vec::new(),
        })
    }

    /// Keep per-interval outcomes of the messages sent in each `interval`
    /// (for `timeseries.csv`); zero turns it off.
    pub fn with_series(mut self, interval: SimDuration) -> Self {
        self.series_ns = interval.as_nanos();
        self.series = vec![Vec::new(); self.flows.len()];
        self
    }

    /// Count a finished message in its send interval.
    fn bucket(&mut self, fi: usize, rec: &MsgRec) {
        if self.series_ns == 0 {
            return;
        }
        let k = (rec.sent_at.0 / self.series_ns) as usize;
        let f = &self.flows[fi];
        let series = &mut self.series[fi];
        if series.len() <= k {
            // earlier intervals are complete: keep only their percentiles
            for b in series.iter_mut().rev().take_while(|b| !b.closed) {
                b.close();
            }
            series.resize(k + 1, SentBucket::default());
        }
        let b = &mut series[k];
        b.sent += 1;
        for s in 0..f.stride {
            let slot = f.slots[s];
            if slot.receiver == NONE {
                continue;
            }
            b.intended += 1;
            if slot.first < LATE {
                b.delivered += 1;
                b.latencies.push(slot.first - rec.sent_at.0);
            }
        }
    }

    /// The intended receivers of a message of `flow` from publisher number
    /// `pub_index` (node `publisher`), appended to `out`.
    pub fn intended(&self, flow: usize, pub_index: usize, publisher: u32, out: &mut Vec<u32>) {
        out.clear();
        let f = &self.flows[flow];
        match f.pattern {
            Pattern::PointToPoint => out.extend(f.receivers.get(pub_index).copied()),
            Pattern::FanIn => out.extend(f.receivers.first().copied()),
            Pattern::Broadcast => {
                out.extend(f.receivers.iter().copied().filter(|&r| r != publisher))
            }
        }
    }

    /// Record a send; returns the message id and whether it is counted.
    pub fn on_send(
        &mut self,
        now: SimTime,
        flow: usize,
        pub_index: usize,
        publisher: u32,
        value: f64,
        receivers: &[u32],
    ) -> (u32, bool) {
        let counted = now >= self.warmup;
        let f = &mut self.flows[flow];
        let id = f.next_id;
        f.next_id = f.next_id.wrapping_add(1);
        if !counted {
            f.base = f.next_id;
            return (id, false);
        }
        f.stats.sent += 1;
        f.stats.intended += receivers.len() as u64;
        f.msgs.push_back(MsgRec {
            publisher,
            pub_index: pub_index as u32,
            sent_at: now,
            value,
        });
        for k in 0..f.stride {
            f.slots.push_back(Slot {
                receiver: receivers.get(k).copied().unwrap_or(NONE),
                first: NOT_DELIVERED,
                copies: 0,
            });
        }
        (id, true)
    }

    /// An application at `receiver` received message `msg` of `flow`.
    /// Says whether this receipt was its first delivery there (with the
    /// publisher's node) or a repeat of a delivered message (with the first
    /// delivery's time) — what the monitors judge.
    pub fn on_receive(
        &mut self,
        now: SimTime,
        flow: usize,
        msg: u32,
        receiver: u32,
    ) -> Option<Receipt> {
        let drain = self.drain;
        let f = self.flows.get_mut(flow)?;
        let Some(k) = msg.checked_sub(f.base) else {
            // retired at its deadline: late, if it was still owed here
            let i = f.overdue.partition_point(|&(m, _)| m < msg);
            if let Some(e) = f.overdue[i..]
                .iter_mut()
                .take_while(|e| e.0 == msg)
                .find(|e| e.1 == receiver)
            {
                e.1 = NONE;
                f.stats.late_deliveries += 1;
            }
            return None;
        };
        let k = k as usize;
        let rec = f.msgs.get(k)?;
        let deadline = rec.sent_at + drain;
        let sent_at = rec.sent_at;
        let publisher = rec.publisher;
        let stride = f.stride;
        for s in 0..stride {
            let slot = &mut f.slots[k * stride + s];
            if slot.receiver != receiver {
                continue;
            }
            slot.copies += 1;
            if slot.first == LATE {
                return None;
            }
            if slot.first == NOT_DELIVERED {
                if now > deadline {
                    slot.first = LATE;
                    f.stats.late_deliveries += 1;
                    return None;
                }
                slot.first = now.0;
                f.stats.delivered += 1;
                f.stats.latencies.push((now - sent_at).0);
                return Some(Receipt::First { publisher });
            }
            f.stats.duplicates += 1;
            return Some(Receipt::Repeat {
                first: SimTime(slot.first),
            });
        }
        None
    }

    pub fn stats_mut(&mut self, flow: usize) -> Option<&mut FlowStats> {
        self.flows.get_mut(flow).map(|f| &mut f.stats)
    }

    /// Write and forget every message whose deadline has passed (`force`: all).
    pub fn flush(&mut self, now: SimTime, force: bool) {
        for fi in 0..self.flows.len() {
            loop {
                let f = &self.flows[fi];
                let Some(rec) = f.msgs.front().copied() else {
                    break;
                };
                if !force && rec.sent_at + self.drain >= now {
                    break;
                }
                self.write_rows(fi, &rec);
                self.bucket(fi, &rec);
                let f = &mut self.flows[fi];
                if !force {
                    let base = f.base;
                    let owed = f.slots.iter().take(f.stride);
                    let owed = owed.filter(|s| s.receiver != NONE && s.first == NOT_DELIVERED);
                    f.overdue.extend(owed.map(|s| (base, s.receiver)));
                }
                f.msgs.pop_front();
                for _ in 0..f.stride {
                    f.slots.pop_front();
                }
                f.base = f.base.wrapping_add(1);
            }
        }
    }

    fn write_rows(&mut self, fi: usize, rec: &MsgRec) {
        if self.out.is_none() || self.io_error.is_some() {
            return;
        }
        let f = &self.flows[fi];
        let msg_id = f.base;
        for s in 0..f.stride {
            let slot = f.slots[s];
            if slot.receiver == NONE {
                continue;
            }
            self.line.clear();
            let (deliv, lat) = if slot.first >= LATE {
                (String::new(), String::new())
            } else {
                (fmt_ms(slot.first), fmt_ms(slot.first - rec.sent_at.0))
            };
            use std::fmt::Write as _;
            let _ = writeln!(
                self.line,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                self.run_id,
                csv_field(&f.name),
                msg_id,
                csv_field(&self.names[rec.publisher as usize]),
                csv_field(&self.names[slot.receiver as usize]),
                csv_field(&f.topics[rec.pub_index as usize]),
                crate::app::workload::format_value(rec.value),
                f.payload_bytes,
                fmt_ms(rec.sent_at.0),
                deliv,
                lat,
                slot.copies
            );
            if let Some(w) = self.out.as_mut() {
                if let Err(e) = w.write_all(self.line.as_bytes()) {
                    self.io_error = Some(e);
                    return;
                }
            }
        }
    }

    /// Flush everything and hand back the per-flow stats (and any I/O error
    /// that happened while streaming).
    /// The per-flow stats and the `messages.csv` writer (flushed) are handed back.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        mut self,
        now: SimTime,
    ) -> std::io::Result<(Vec<(String, FlowStats)>, Option<W>, Vec<Vec<SentBucket>>)> {
        self.flush(now, true);
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        let mut out = self.out.take();
        if let Some(w) = out.as_mut() {
            w.flush()?;
        }
        let mut series = std::mem::take(&mut self.series);
        for b in series.iter_mut().flatten() {
            b.close();
        }
        Ok((
            self.flows.into_iter().map(|f| (f.name, f.stats)).collect(),
            out,
            series,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder<Vec<u8>> {
        let flows = vec![FlowInfo {
            name: "f".into(),
            pattern: Pattern::FanIn,
            receivers: vec![1],
            topics: vec!["t".into()],
            payload_bytes: 8,
        }];
        let names: std::sync::Arc<[String]> = vec!["p".to_string(), "r".to_string()].into();
        Recorder::new(
            0,
            SimDuration::ZERO,
            SimDuration::from_secs(10),
            flows,
            names,
            None,
        )
        .expect("recorder")
    }

    fn secs(s: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(s)
    }

    #[test]
    fn a_first_receipt_after_the_record_retired_is_a_late_delivery() {
        let mut r = recorder();
        let (m0, _) = r.on_send(secs(0), 0, 0, 0, 1.0, &[1]);
        let (m1, _) = r.on_send(secs(1), 0, 0, 0, 2.0, &[1]);
        let (m2, _) = r.on_send(secs(2), 0, 0, 0, 3.0, &[1]);
        assert!(r.on_receive(secs(2), 0, m1, 1).is_some(), "in time");
        // past the deadline, record still held: late
        assert!(r
            .on_receive(secs(12) + SimDuration::from_nanos(1), 0, m2, 1)
            .is_none());
        assert_eq!(r.stats_mut(0).expect("flow").late_deliveries, 1);
        // all three retired
        r.flush(secs(20), false);
        // m0 was owed: its first receipt now is late, a second is not
        // counted again; m1 was delivered in time and m2 already late;
        // receiver 0 was never owed m0
        assert!(r.on_receive(secs(25), 0, m0, 1).is_none());
        assert!(r.on_receive(secs(26), 0, m0, 1).is_none());
        assert!(r.on_receive(secs(26), 0, m1, 1).is_none());
        assert!(r.on_receive(secs(26), 0, m2, 1).is_none());
        assert!(r.on_receive(secs(26), 0, m0, 0).is_none());
        let s = r.stats_mut(0).expect("flow");
        assert_eq!((s.delivered, s.late_deliveries), (1, 2));
    }
}
