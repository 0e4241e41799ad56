//! `runs.csv` and `summary.csv`: one row per (run, flow), and one row per
//! (parameter point, flow) with the mean of every metric and its Student-t
//! 95% half-width (`<metric>_ci95`, n−1 degrees of freedom, empty when fewer
//! than two runs). Column order is part of the output contract (DESIGN.md
//! "Outputs"); columns added later go at the end.

use super::record::{csv_field, FlowStats};
use super::stats;
use std::io::{self, Write};

// The column names live in `scenario::columns` (expectations in scenario
// files name them, and the scenario layer is below this one).
pub use crate::scenario::columns::{CORE_COLUMNS, METRIC_COLUMNS, RUN_KEY_COLUMNS};

/// A cell: integer, float, or empty (not applicable / undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Empty,
}

impl Value {
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            Value::Empty => None,
        }
    }
    fn write(self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:.6}");
            }
            _ => {}
        }
    }
}

/// One row of `runs.csv`.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run_id: u64,
    pub scenario: String,
    pub seed: u64,
    pub replication: u64,
    pub protocol: String,
    pub reliability: String,
    pub flow: String,
    pub pattern: String,
    /// Swept parameters (path, value), same paths in every row of a file.
    pub params: Vec<(String, String)>,
    /// The metric columns (`METRIC_COLUMNS` with the built-in protocols;
    /// every row of a file has the same).
    pub columns: std::sync::Arc<[String]>,
    /// One value per column.
    pub metrics: Vec<Value>,
}

/// The metric columns of `rows` (the built-in layout when there are none).
fn columns_of(rows: &[RunRow]) -> Vec<&str> {
    match rows.first() {
        Some(r) => r.columns.iter().map(String::as_str).collect(),
        None => METRIC_COLUMNS.to_vec(),
    }
}

fn ms(ns: u64) -> Value {
    Value::Float(ns as f64 / 1e6)
}

/// The core metric cells of one flow's stats (`CORE_COLUMNS`).
/// `energy_mj` is the run's radio energy over every radio, `None` when no
/// node of the run has a radio model (the energy columns are then empty).
pub fn core_values(s: &FlowStats, energy_mj: Option<f64>) -> Vec<Value> {
    // sorted by the caller normally; a sorted copy is ranked otherwise
    let lat = &s.latencies;
    let pct = |q: f64| lat.percentile(q).map_or(Value::Empty, ms);
    let mean = if lat.is_empty() {
        Value::Empty
    } else {
        let sum: u128 = lat.iter().map(|x| x as u128).sum();
        Value::Float(sum as f64 / lat.len() as f64 / 1e6)
    };
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            Value::Empty
        } else {
            Value::Float(num as f64 / den as f64)
        }
    };
    vec![
        Value::Int(s.sent),
        Value::Int(s.intended),
        Value::Int(s.delivered),
        Value::Int(s.duplicates),
        ratio(s.delivered, s.intended),
        mean,
        pct(50.0),
        pct(95.0),
        pct(99.0),
        lat.max().map_or(Value::Empty, ms),
        Value::Int(s.bytes_on_wire),
        ratio(s.bytes_on_wire, s.delivered),
        Value::Int(s.retransmissions),
        Value::Int(s.drops_channel),
        Value::Int(s.drops_queue),
        Value::Int(s.drops_mtu),
        Value::Int(s.collisions),
        energy_mj.map_or(Value::Empty, Value::Float),
        Value::Int(s.drops_no_route),
        Value::Int(s.drops_link_down),
        Value::Int(s.drops_node_down),
        Value::Int(s.drops_reassembly),
        Value::Int(s.late_deliveries),
        Value::Int(s.give_ups),
        Value::Int(s.resets),
        Value::Int(s.duplicates_suppressed),
        Value::Int(s.bytes_payload),
        Value::Int(s.bytes_protocol),
        Value::Int(s.bytes_transport_ip),
        Value::Int(s.bytes_retransmissions),
        Value::Int(s.drops_fault),
        Value::Int(s.bytes_link),
        Value::Int(s.bytes_adaptation),
        Value::Int(s.bytes_security),
    ]
}

/// The radio energy columns of a flow: energy per state (tx, rx, listen,
/// sleep) over every radio of the run and per delivered message, then the
/// flow's own frames on the air (count, bytes, airtime, energy); all empty
/// without radio media.
pub fn energy_values(energy_mj: Option<[f64; 4]>, s: &FlowStats) -> [Value; 9] {
    let Some(e) = energy_mj else {
        return [Value::Empty; 9];
    };
    let total = e.iter().sum::<f64>();
    [
        Value::Float(e[0]),
        Value::Float(e[1]),
        Value::Float(e[2]),
        Value::Float(e[3]),
        if s.delivered > 0 {
            Value::Float(total / s.delivered as f64)
        } else {
            Value::Empty
        },
        Value::Int(s.frames_air),
        Value::Int(s.bytes_air),
        Value::Float(s.airtime_air_ns as f64 / 1e6),
        Value::Float(s.energy_air_mj),
    ]
}

fn param_names(rows: &[RunRow]) -> Vec<String> {
    rows.first()
        .map(|r| r.params.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

/// Write `runs.csv`.
pub fn write_runs(rows: &[RunRow], w: &mut impl Write) -> io::Result<()> {
    let params = param_names(rows);
    let mut line = String::new();
    let header: Vec<&str> = RUN_KEY_COLUMNS
        .iter()
        .copied()
        .chain(params.iter().map(String::as_str))
        .chain(columns_of(rows))
        .collect();
    writeln!(w, "{}", header.join(","))?;
    for r in rows {
        line.clear();
        line.push_str(&format!(
            "{},{},{},{},{},{},{},{}",
            r.run_id,
            csv_field(&r.scenario),
            r.seed,
            r.replication,
            r.protocol,
            r.reliability,
            csv_field(&r.flow),
            r.pattern
        ));
        for (_, v) in &r.params {
            line.push(',');
            line.push_str(&csv_field(v));
        }
        for v in &r.metrics {
            line.push(',');
            v.write(&mut line);
        }
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// Group key of a summary row: everything but run_id, seed and replication.
fn key(
    r: &RunRow,
) -> (
    String,
    String,
    String,
    String,
    String,
    Vec<(String, String)>,
) {
    (
        r.scenario.clone(),
        r.protocol.clone(),
        r.reliability.clone(),
        r.flow.clone(),
        r.pattern.clone(),
        r.params.clone(),
    )
}

/// Write `summary.csv`: rows grouped by parameter point and flow, in order of
/// first appearance in `rows` (which are in run-index order).
pub fn write_summary(rows: &[RunRow], w: &mut impl Write) -> io::Result<()> {
    let params = param_names(rows);
    let mut groups: Vec<(_, Vec<&RunRow>)> = Vec::new();
    for r in rows {
        let k = key(r);
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, v)) => v.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    let mut header: Vec<String> = ["scenario", "protocol", "reliability", "flow", "pattern"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(params.iter().cloned());
    header.push("runs".into());
    let columns = columns_of(rows);
    for m in &columns {
        header.push(m.to_string());
        header.push(format!("{m}_ci95"));
    }
    writeln!(w, "{}", header.join(","))?;
    let mut line = String::new();
    for ((scenario, protocol, reliability, flow, pattern, ps), members) in &groups {
        line.clear();
        line.push_str(&format!(
            "{},{},{},{},{}",
            csv_field(scenario),
            protocol,
            reliability,
            csv_field(flow),
            pattern
        ));
        for (_, v) in ps {
            line.push(',');
            line.push_str(&csv_field(v));
        }
        line.push_str(&format!(",{}", members.len()));
        for m in 0..columns.len() {
            let xs: Vec<f64> = members
                .iter()
                .filter_map(|r| r.metrics.get(m).and_then(|v| v.as_f64()))
                .collect();
            line.push(',');
            if let Some(mean) = stats::mean(&xs) {
                Value::Float(mean).write(&mut line);
            }
            line.push(',');
            if xs.len() == members.len() {
                if let Some(h) = stats::ci95_half_width(&xs) {
                    Value::Float(h).write(&mut line);
                }
            }
        }
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// Read `runs.csv` rows back (as written by `write_runs`): key columns,
/// parameter columns (everything between `pattern` and `sent`), metrics.
/// Cells are parsed as integers when they have no decimal point, so writing
/// the rows again gives the same bytes.
pub fn read_runs(r: impl io::Read) -> Result<Vec<RunRow>, String> {
    let mut rd = csv::Reader::from_reader(r);
    let headers = rd.headers().map_err(|e| e.to_string())?.clone();
    let h: Vec<&str> = headers.iter().collect();
    if h.len() < RUN_KEY_COLUMNS.len() || h[..RUN_KEY_COLUMNS.len()] != RUN_KEY_COLUMNS {
        return Err("not a runs.csv: unexpected key columns".into());
    }
    let first_metric = h
        .iter()
        .position(|c| *c == CORE_COLUMNS[0])
        .ok_or("not a runs.csv: no `sent` column")?;
    let params: Vec<String> = h[RUN_KEY_COLUMNS.len()..first_metric]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // every column from `sent` on is a metric (extension columns included)
    let columns: std::sync::Arc<[String]> =
        h[first_metric..].iter().map(|s| s.to_string()).collect();
    let idx: Vec<Option<usize>> = (first_metric..h.len()).map(Some).collect();
    let mut rows = Vec::new();
    for (n, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", n + 2))?;
        let get = |i: usize| rec.get(i).unwrap_or("").to_string();
        let num = |i: usize| -> Result<u64, String> {
            get(i)
                .parse()
                .map_err(|_| format!("row {}: column {} is not an integer", n + 2, h[i]))
        };
        let metrics = idx
            .iter()
            .map(|i| {
                let cell = i.map(get).unwrap_or_default();
                if cell.is_empty() {
                    Ok(Value::Empty)
                } else if cell.contains('.') {
                    cell.parse()
                        .map(Value::Float)
                        .map_err(|_| format!("row {}: bad number {cell}", n + 2))
                } else {
                    cell.parse()
                        .map(Value::Int)
                        .map_err(|_| format!("row {}: bad number {cell}", n + 2))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(RunRow {
            run_id: num(0)?,
            scenario: get(1),
            seed: num(2)?,
            replication: num(3)?,
            protocol: get(4),
            reliability: get(5),
            flow: get(6),
            pattern: get(7),
            params: params
                .iter()
                .enumerate()
                .map(|(k, p)| (p.clone(), get(RUN_KEY_COLUMNS.len() + k)))
                .collect(),
            columns: columns.clone(),
            metrics,
        });
    }
    Ok(rows)
}
