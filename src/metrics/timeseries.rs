//! Per-interval and per-element tables of a run (docs/metrics.md):
//! `timeseries.csv` (per interval and flow), `timeseries_links.csv` (per
//! interval and link direction), `timeseries_tcp.csv` (per interval and TCP
//! endpoint), `events.csv` (the scenario's events, the charts' markers),
//! `links.csv` (per link direction, whole run) and `nodes.csv` (per node).

use crate::link::model::LinkSpec;
use crate::link::Link;
use crate::metrics::connections::ConnRecord;
use crate::metrics::energy::RadioReport;
use crate::metrics::record::{csv_field, fmt_ms};
use crate::scenario::model::{Action, Scenario};
use std::io::{self, Write};

/// Most links whose directions get a per-interval series.
pub const MAX_SERIES_LINKS: usize = 64;
/// Connection endpoints (`connections.csv` rows) that get a TCP series.
pub const MAX_SERIES_CONNECTIONS: u32 = 64;

/// Cumulative counters of one link direction at a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkSample {
    pub packets: u64,
    pub bytes: u64,
    pub drops_channel: u64,
    pub drops_queue: u64,
    pub drops_link_down: u64,
    pub busy_ns: u64,
    /// Largest queue length since the previous sample (not cumulative).
    pub queue_peak: u32,
}

/// One TCP endpoint in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSample {
    /// Interval index.
    pub k: u32,
    /// `connections.csv` record.
    pub rec: u32,
    pub cwnd: u32,
    pub srtt_ns: Option<u64>,
    pub rto_ns: u64,
    /// Retransmissions during the interval.
    pub retransmissions: u32,
}

/// Per-node counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeStats {
    pub ip_sent: u64,
    pub ip_received: u64,
    pub ip_forwarded: u64,
}

/// Counters of one node's application server (`world::proc`; `nodes.csv`
/// `proc_*`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// Inputs served that cost work (the messages the server processed).
    pub jobs: u64,
    /// Σ over those inputs of the time they waited for the server, ns.
    pub wait_ns: u64,
    /// Inputs dropped because the queue was full.
    pub dropped: u64,
    /// Time the server was busy, ns.
    pub busy_ns: u64,
    /// Longest the input queue was.
    pub queue_max: u64,
}

impl ProcStats {
    /// Mean wait of the jobs, ms (None without jobs).
    pub fn wait_ms_mean(&self) -> Option<f64> {
        (self.jobs > 0).then(|| self.wait_ns as f64 / self.jobs as f64 / 1e6)
    }
}

/// Columns `nodes.csv` gains in runs where a node has processing times.
pub const NODES_PROC_COLUMNS: &str =
    "proc_jobs,proc_wait_ms_mean,proc_busy_ms,proc_dropped,proc_queue_max";

/// Everything `timeseries*.csv` need, handed out with the run's outcome.
#[derive(Debug, Default)]
pub struct SeriesOut {
    pub interval_ns: u64,
    pub flows: Vec<Vec<(u64, u64)>>,
    pub links: Vec<Vec<LinkSample>>,
    /// `[k][medium]`: cumulative transmissions, airtime and collisions.
    pub media: Vec<Vec<crate::link::medium::MediumStats>>,
    pub tcp: Vec<TcpSample>,
    /// Per flow: the messages sent in each interval.
    pub sent: Vec<Vec<crate::metrics::record::SentBucket>>,
}

pub const TIMESERIES_HEADER: &str = "run_id,flow,t_ms,interval_ms,sent,delivered,delivery_ratio,latency_ms_p50,latency_ms_p99,bytes_on_wire,retransmissions,intended";
pub const LINK_SERIES_HEADER: &str = "run_id,link,from,to,t_ms,interval_ms,packets,bytes,drops_channel,drops_queue,drops_link_down,collisions,queue_max,utilisation";
pub const TCP_SERIES_HEADER: &str =
    "run_id,connection,side,node,t_ms,interval_ms,cwnd_bytes,srtt_ms,rto_ms,retransmissions";
pub const EVENTS_HEADER: &str = "run_id,t_ms,action,target";
pub const LINKS_HEADER: &str = "run_id,link,from,to,packets,bytes,delivered,drops_channel,drops_queue,drops_link_down,collisions,utilisation,bytes_link,bytes_adaptation";
pub const NODES_HEADER: &str = "run_id,node,role,ip_sent,ip_received,ip_forwarded,energy_mj";

/// Start and width of interval `k` of a run ending at `end_ns`.
fn interval(s: &SeriesOut, k: usize, end_ns: u64) -> (u64, u64) {
    let t = k as u64 * s.interval_ns;
    (t, (t + s.interval_ns).min(end_ns).saturating_sub(t))
}

fn ms_or_empty(v: Option<u64>) -> String {
    v.map(fmt_ms).unwrap_or_default()
}

fn ratio(n: u64, d: u64) -> String {
    if d == 0 {
        String::new()
    } else {
        format!("{:.6}", n as f64 / d as f64)
    }
}

/// `timeseries.csv`.
pub fn write_flow_series(
    w: &mut impl Write,
    run_id: u64,
    sc: &Scenario,
    s: &SeriesOut,
    end_ns: u64,
) -> io::Result<()> {
    writeln!(w, "{TIMESERIES_HEADER}")?;
    let empty = crate::metrics::record::SentBucket::default();
    for k in 0..s.flows.len() {
        let (t, width) = interval(s, k, end_ns);
        for (fi, f) in sc.flows.iter().enumerate() {
            let (b, r) = s.flows[k][fi];
            let (b0, r0) = if k == 0 { (0, 0) } else { s.flows[k - 1][fi] };
            let sent = s.sent.get(fi).and_then(|v| v.get(k)).unwrap_or(&empty);
            writeln!(
                w,
                "{run_id},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&f.name),
                fmt_ms(t),
                fmt_ms(width),
                sent.sent,
                sent.delivered,
                ratio(sent.delivered, sent.intended),
                ms_or_empty(sent.p50),
                ms_or_empty(sent.p99),
                b - b0,
                r - r0,
                sent.intended,
            )?;
        }
    }
    Ok(())
}

fn dir_ends<'a>(l: &'a Link, d: usize, names: &'a [String]) -> (&'a str, &'a str) {
    let dir = &l.dirs[d];
    (
        names[dir.from as usize].as_str(),
        names[dir.to as usize].as_str(),
    )
}

/// `timeseries_links.csv`: link directions (when sampled), then radio
/// media (`from` and `to` are `*`; packets = transmissions started,
/// collisions, utilisation = airtime share; bytes and drops are per link
/// direction only).
pub fn write_link_series(
    w: &mut impl Write,
    run_id: u64,
    (links, specs): (&[Link], &[LinkSpec]),
    names: &[String],
    media: &[String],
    s: &SeriesOut,
    end_ns: u64,
) -> io::Result<()> {
    writeln!(w, "{LINK_SERIES_HEADER}")?;
    for k in 0..s.media.len() {
        let (t, width) = interval(s, k, end_ns);
        for (mi, name) in media.iter().enumerate() {
            let (Some(cur), prev) = (
                s.media[k].get(mi),
                k.checked_sub(1).and_then(|p| s.media[p].get(mi)),
            ) else {
                continue;
            };
            let prev = prev.copied().unwrap_or_default();
            writeln!(
                w,
                "{run_id},{},*,*,{},{},{},,,,,{},,{}",
                csv_field(name),
                fmt_ms(t),
                fmt_ms(width),
                cur.transmissions - prev.transmissions,
                cur.collisions - prev.collisions,
                ratio(cur.airtime_ns - prev.airtime_ns, width),
            )?;
        }
    }
    for k in 0..s.links.len() {
        let (t, width) = interval(s, k, end_ns);
        for (li, l) in links.iter().enumerate() {
            for d in 0..2 {
                let i = li * 2 + d;
                let cur = s.links[k][i];
                let prev = if k == 0 {
                    Default::default()
                } else {
                    s.links[k - 1][i]
                };
                let (from, to) = dir_ends(l, d, names);
                writeln!(
                    w,
                    "{run_id},{},{},{},{},{},{},{},{},{},{},0,{},{}",
                    csv_field(&specs[li].name),
                    csv_field(from),
                    csv_field(to),
                    fmt_ms(t),
                    fmt_ms(width),
                    cur.packets - prev.packets,
                    cur.bytes - prev.bytes,
                    cur.drops_channel - prev.drops_channel,
                    cur.drops_queue - prev.drops_queue,
                    cur.drops_link_down - prev.drops_link_down,
                    cur.queue_peak,
                    ratio(cur.busy_ns - prev.busy_ns, width),
                )?;
            }
        }
    }
    Ok(())
}

/// `timeseries_tcp.csv`: rows by connection endpoint, then time.
pub fn write_tcp_series(
    w: &mut impl Write,
    run_id: u64,
    records: &[ConnRecord],
    names: &[String],
    s: &SeriesOut,
    end_ns: u64,
) -> io::Result<()> {
    writeln!(w, "{TCP_SERIES_HEADER}")?;
    let mut rows = s.tcp.clone();
    rows.sort_by_key(|r| (r.rec, r.k));
    for r in rows {
        let Some(rec) = records.get(r.rec as usize).map(|c| &c.info) else {
            continue;
        };
        let (t, width) = interval(s, r.k as usize, end_ns);
        writeln!(
            w,
            "{run_id},{},{},{},{},{},{},{},{},{}",
            rec.conn,
            if rec.client { "client" } else { "server" },
            csv_field(names.get(rec.node as usize).map_or("", String::as_str)),
            fmt_ms(t),
            fmt_ms(width),
            r.cwnd,
            ms_or_empty(r.srtt_ns),
            fmt_ms(r.rto_ns),
            r.retransmissions,
        )?;
    }
    Ok(())
}

/// The name and target of a scenario event.
pub fn event_label(sc: &Scenario, a: &Action) -> (&'static str, String) {
    let link = |l: &usize| sc.links[*l].name.clone();
    let node = |n: &usize| sc.nodes[*n].name.clone();
    match a {
        Action::LinkDown { link: l } => ("link_down", link(l)),
        Action::LinkUp { link: l } => ("link_up", link(l)),
        Action::SetLoss { link: l, .. } => ("set_loss", link(l)),
        Action::NodeCrash { node: n } => ("node_crash", node(n)),
        Action::NodeRestart { node: n } => ("node_restart", node(n)),
        Action::Partition { nodes } => (
            "partition",
            nodes
                .iter()
                .map(|n| sc.nodes[*n].name.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Action::Heal => ("heal", String::new()),
        Action::ClientDisconnect { node: n } => ("client_disconnect", node(n)),
        Action::ClientCrash { node: n } => ("client_crash", node(n)),
        Action::ClientConnect { node: n } => ("client_connect", node(n)),
        Action::ClientSleep { node: n, .. } => ("client_sleep", node(n)),
        Action::ClientWake { node: n } => ("client_wake", node(n)),
        Action::PacketFault(f) => {
            let m = &f.matcher;
            let mut parts = Vec::new();
            if let Some(p) = &m.protocol {
                parts.push(format!("protocol={p}"));
            }
            if let Some(k) = &m.kind {
                parts.push(format!("kind={k}"));
            }
            if let Some(n) = &m.from {
                parts.push(format!("from={}", node(n)));
            }
            if let Some(n) = &m.to {
                parts.push(format!("to={}", node(n)));
            }
            if let Some(fl) = m.flow {
                parts.push(format!("flow={}", sc.flows[fl].name));
            }
            parts.push(match m.select {
                crate::scenario::model::Select::Nth(n) => format!("nth={n}"),
                crate::scenario::model::Select::Every(k) => format!("every={k}"),
            });
            (f.effect.action(), parts.join(" "))
        }
    }
}

/// `events.csv`.
pub fn write_events(w: &mut impl Write, run_id: u64, sc: &Scenario) -> io::Result<()> {
    writeln!(w, "{EVENTS_HEADER}")?;
    for e in &sc.events {
        let (name, target) = event_label(sc, &e.action);
        writeln!(
            w,
            "{run_id},{},{name},{}",
            fmt_ms(e.at.0),
            csv_field(&target)
        )?;
    }
    Ok(())
}

/// `links.csv`: per link direction over the whole run, then one row per
/// radio medium (`from` and `to` are `*`: a broadcast domain): its
/// transmissions, collisions and airtime share. `bytes_link` and
/// `bytes_adaptation` (issue 20) are 0 on wired links, which model no link
/// header; on a medium they total every frame's link-layer and 6LoWPAN
/// bytes.
pub fn write_links(
    w: &mut impl Write,
    run_id: u64,
    links: &[Link],
    specs: &[LinkSpec],
    names: &[String],
    end_ns: u64,
    radio: &RadioReport,
) -> io::Result<()> {
    writeln!(w, "{LINKS_HEADER}")?;
    for (l, spec) in links.iter().zip(specs) {
        for d in 0..2 {
            let st = &l.dirs[d].stats;
            let (from, to) = dir_ends(l, d, names);
            writeln!(
                w,
                "{run_id},{},{},{},{},{},{},{},{},{},0,{},0,0",
                csv_field(&spec.name),
                csv_field(from),
                csv_field(to),
                st.tx_packets,
                st.tx_bytes,
                st.delivered,
                st.lost_channel,
                st.lost_queue,
                st.lost_link_down,
                ratio(st.busy_ns, end_ns),
            )?;
        }
    }
    for (name, m) in &radio.media {
        writeln!(
            w,
            "{run_id},{},*,*,{},,,,,,{},{},{},{}",
            csv_field(name),
            m.transmissions,
            m.collisions,
            ratio(m.airtime_ns, end_ns),
            m.link_bytes,
            m.adaptation_bytes,
        )?;
    }
    Ok(())
}

/// `nodes.csv`: per node; `energy_mj` (all radio states) only for nodes
/// with a radio.
pub fn write_nodes(
    w: &mut impl Write,
    run_id: u64,
    sc: &Scenario,
    nodes: &[NodeStats],
    radio: &RadioReport,
    processing: &[Option<ProcStats>],
) -> io::Result<()> {
    // the proc_* columns only in runs with processing times, so runs
    // without keep their bytes (golden digests)
    let with_proc = !sc.processing.is_empty();
    if with_proc {
        writeln!(w, "{NODES_HEADER},{NODES_PROC_COLUMNS}")?;
    } else {
        writeln!(w, "{NODES_HEADER}")?;
    }
    let energy: std::collections::BTreeMap<&str, f64> = radio
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.mj.iter().sum()))
        .collect();
    for (i, (spec, st)) in sc.nodes.iter().zip(nodes).enumerate() {
        write!(
            w,
            "{run_id},{},{},{},{},{},{}",
            csv_field(&spec.name),
            spec.role.as_str(),
            st.ip_sent,
            st.ip_received,
            st.ip_forwarded,
            energy
                .get(spec.name.as_str())
                .map(|e| format!("{e:.6}"))
                .unwrap_or_default(),
        )?;
        if with_proc {
            match processing.get(i).copied().flatten() {
                Some(p) => write!(
                    w,
                    ",{},{},{},{},{}",
                    p.jobs,
                    p.wait_ms_mean()
                        .map(|m| format!("{m:.6}"))
                        .unwrap_or_default(),
                    crate::metrics::record::fmt_ms(p.busy_ns),
                    p.dropped,
                    p.queue_max
                )?,
                None => write!(w, ",,,,,")?,
            }
        }
        writeln!(w)?;
    }
    Ok(())
}
