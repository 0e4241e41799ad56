//! Evaluating a scenario's `[[expect]]` tables after a run: the extra runs
//! of `seeds = N`, one measured value per selected row, the pass/FAIL lines
//! `qossim run` prints and `expectations.csv` (scenarios/README.md
//! "Expectations", docs/metrics.md "expectations.csv").

use super::{run_rows, RunError};
use crate::metrics::summary::RunRow;
use crate::scenario::expect::{Expectation, Source};
use crate::scenario::model::Scenario;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// One checked value: an expectation on one flow of one run (`Source::Runs`)
/// or on one flow over all its runs (`Source::Summary`, no seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Index into `Evaluation::expectations`.
    pub expectation: usize,
    pub flow: String,
    /// The run's seed (`None` for summary.csv columns).
    pub seed: Option<u64>,
    /// `None`: the cell is empty (undefined), which fails.
    pub measured: Option<f64>,
    pub pass: bool,
}

/// A scenario's expectations and what was measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The scenario's name.
    pub scenario: String,
    pub expectations: Vec<Expectation>,
    /// Expectation order, then seed, then flow order.
    pub checked: Vec<Checked>,
}

/// One line's worth of an expectation: its label, flows, the value shown
/// and whether every row of it passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub label: String,
    /// The flows of its rows, comma-separated, in flow order.
    pub flows: String,
    /// One value; for several rows the first failing one (with its flow and
    /// seed), or `min..max (n rows)` when all pass.
    pub measured: String,
    pub pass: bool,
    /// The first failing row's value, for failure messages.
    pub failing: Option<Checked>,
}

impl Evaluation {
    /// Whether every checked row passed.
    pub fn all_pass(&self) -> bool {
        self.checked.iter().all(|c| c.pass)
    }

    /// How many expectations failed (at least one row failed).
    pub fn failed(&self) -> usize {
        self.verdicts().iter().filter(|v| !v.pass).count()
    }

    /// One verdict per expectation, in file order.
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.expectations
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let rows: Vec<&Checked> =
                    self.checked.iter().filter(|c| c.expectation == i).collect();
                let mut flows: Vec<&str> = Vec::new();
                for c in &rows {
                    if !flows.contains(&c.flow.as_str()) {
                        flows.push(&c.flow);
                    }
                }
                let failing = rows.iter().find(|c| !c.pass).map(|c| (*c).clone());
                let measured = match (&failing, rows.as_slice()) {
                    (_, [one]) => fmt_value(one.measured),
                    (Some(c), _) => {
                        let mut s = format!("{} (flow {}", fmt_value(c.measured), c.flow);
                        if let Some(seed) = c.seed {
                            s.push_str(&format!(", seed {seed}"));
                        }
                        s.push(')');
                        s
                    }
                    (None, _) => {
                        let xs: Vec<f64> = rows.iter().filter_map(|c| c.measured).collect();
                        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        if lo == hi {
                            format!("{} ({} rows)", fmt_value(Some(lo)), rows.len())
                        } else {
                            format!(
                                "{}..{} ({} rows)",
                                fmt_value(Some(lo)),
                                fmt_value(Some(hi)),
                                rows.len()
                            )
                        }
                    }
                };
                Verdict {
                    label: e.label(),
                    flows: flows.join(","),
                    measured,
                    pass: failing.is_none(),
                    failing,
                }
            })
            .collect()
    }

    /// The lines `qossim run` prints:
    /// `expect <label> [<flows>]: measured X → pass|FAIL`.
    pub fn lines(&self) -> Vec<String> {
        self.verdicts()
            .iter()
            .map(|v| {
                format!(
                    "expect {} [{}]: measured {} → {}",
                    v.label,
                    v.flows,
                    v.measured,
                    if v.pass { "pass" } else { "FAIL" }
                )
            })
            .collect()
    }

    /// `expectations.csv`: one row per checked value.
    pub fn csv(&self) -> String {
        use crate::metrics::record::csv_field;
        let mut s =
            String::from("scenario,expectation,flow,seed,measured,op,value,tolerance,pass\n");
        for c in &self.checked {
            let e = &self.expectations[c.expectation];
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                csv_field(&self.scenario),
                csv_field(&e.label()),
                csv_field(&c.flow),
                c.seed.map(|x| x.to_string()).unwrap_or_default(),
                c.measured.map(|m| fmt_value(Some(m))).unwrap_or_default(),
                e.op.as_str(),
                fmt_value(Some(e.value)),
                fmt_value(Some(e.tolerance)),
                u8::from(c.pass)
            ));
        }
        s
    }

    /// Write `expectations.csv` into `dir`, atomically.
    pub fn write(&self, dir: &Path, fsync: bool) -> io::Result<()> {
        let path = dir.join("expectations.csv");
        if fsync {
            crate::report::atomic::write_atomic(&path, self.csv().as_bytes())
        } else {
            crate::report::atomic::write_atomic_unsynced(&path, self.csv().as_bytes())
        }
    }
}

/// A measured value as printed and written: integers without decimals,
/// others with at most six (trailing zeros cut); `empty` when undefined.
pub fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "empty".into(),
        Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.is_finite() => {
            let s = format!("{x:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".into()
            } else {
                s.to_string()
            }
        }
        Some(x) => x.to_string(),
    }
}

/// The value of `metric` in a runs.csv row.
fn cell(row: &RunRow, metric: &str) -> Option<f64> {
    match metric {
        "run_id" => Some(row.run_id as f64),
        "seed" => Some(row.seed as f64),
        "replication" => Some(row.replication as f64),
        _ => row
            .columns
            .iter()
            .position(|c| c == metric)
            .and_then(|i| row.metrics.get(i))
            .and_then(|v| v.as_f64()),
    }
}

/// Simulate `sc` with seed `seed` in memory (no file written), as
/// `qossim run --seed <seed>` would: the scenario is loaded again with
/// `seed=<seed>`, so everything drawn at load time (random placement)
/// follows the seed too.
fn rows_for_seed(
    sc: &Scenario,
    seed: u64,
    replication: u64,
    registry: Option<&std::sync::Arc<crate::world::apps::Registry>>,
) -> Result<Vec<RunRow>, RunError> {
    let origin = sc
        .source
        .as_ref()
        .map_or_else(|| sc.name.clone(), |p| p.display().to_string());
    let base = sc
        .source
        .as_ref()
        .and_then(|p| p.parent())
        .map_or_else(|| Path::new("scenarios").to_path_buf(), Path::to_path_buf);
    let table = registry.map(|r| r.protocol_table()).unwrap_or_default();
    let err = |m: String| RunError::Io {
        dir: base.clone(),
        source: io::Error::other(m),
    };
    let mut reseeded = crate::scenario::load_str_with(
        &sc.resolved_toml,
        &origin,
        &base,
        &[format!("seed={seed}")],
        &table,
    )
    .map_err(|e| err(format!("reloading the scenario with seed {seed}: {e}")))?;
    reseeded.source = sc.source.clone();
    let outputs = crate::world::Outputs::default();
    let world = match registry {
        Some(r) => crate::world::World::with_registry(&reseeded, 0, outputs, r),
        None => crate::world::World::new(&reseeded, 0, outputs),
    }
    .map_err(|e| err(e.to_string()))?;
    let out = world.run().map_err(|e| err(e.to_string()))?;
    Ok(run_rows(&reseeded, 0, replication, &[], &out))
}

/// Evaluate `sc`'s expectations: those without `seeds` on `rows` (the run
/// just made, seed `sc.seed`), those with `seeds = N` on the runs with
/// seeds `sc.seed ..= sc.seed + N − 1` (the first is `rows`; the others
/// are simulated here, in parallel, without writing files).
pub fn evaluate(
    sc: &Scenario,
    rows: &[RunRow],
    registry: Option<&std::sync::Arc<crate::world::apps::Registry>>,
) -> Result<Evaluation, RunError> {
    let most = sc
        .expectations
        .iter()
        .filter_map(|e| e.seeds)
        .max()
        .unwrap_or(1);
    let extra: Vec<u64> = (1..most).collect();
    let runs: Vec<(u64, Vec<RunRow>)> = extra
        .par_iter()
        .map(|&k| {
            let seed = sc.seed.wrapping_add(k);
            rows_for_seed(sc, seed, k, registry).map(|r| (seed, r))
        })
        .collect::<Result<_, _>>()?;
    let mut by_offset: BTreeMap<u64, (u64, &[RunRow])> = BTreeMap::new();
    by_offset.insert(0, (sc.seed, rows));
    for (k, (seed, r)) in runs.iter().enumerate() {
        by_offset.insert(k as u64 + 1, (*seed, r.as_slice()));
    }
    let mut checked = Vec::new();
    for (i, e) in sc.expectations.iter().enumerate() {
        let n = e.seeds.unwrap_or(1);
        let these: Vec<(u64, &[RunRow])> = by_offset.range(..n).map(|(_, v)| *v).collect();
        let flow_rows = |flow: usize, rs: &[RunRow]| -> Option<RunRow> {
            let name = &sc.flows[flow].name;
            rs.iter().find(|r| &r.flow == name).cloned()
        };
        match e.source {
            Source::Runs => {
                for (seed, rs) in &these {
                    for &f in &e.flows {
                        let measured = flow_rows(f, rs).and_then(|r| cell(&r, &e.metric));
                        checked.push(Checked {
                            expectation: i,
                            flow: sc.flows[f].name.clone(),
                            seed: Some(*seed),
                            measured,
                            pass: e.holds(measured),
                        });
                    }
                }
            }
            Source::Summary => {
                for &f in &e.flows {
                    let members: Vec<RunRow> = these
                        .iter()
                        .filter_map(|(_, rs)| flow_rows(f, rs))
                        .collect();
                    let measured = if e.metric == "runs" {
                        Some(members.len() as f64)
                    } else {
                        let base = e.metric.trim_end_matches("_ci95");
                        let xs: Vec<f64> = members.iter().filter_map(|r| cell(r, base)).collect();
                        // as summary.csv: empty unless every run has a value
                        if xs.len() == members.len() {
                            crate::metrics::stats::ci95_half_width(&xs)
                        } else {
                            None
                        }
                    };
                    checked.push(Checked {
                        expectation: i,
                        flow: sc.flows[f].name.clone(),
                        seed: None,
                        measured,
                        pass: e.holds(measured),
                    });
                }
            }
        }
    }
    Ok(Evaluation {
        scenario: sc.name.clone(),
        expectations: sc.expectations.clone(),
        checked,
    })
}

#[cfg(test)]
mod tests {
    use super::fmt_value;

    #[test]
    fn values_print_short() {
        assert_eq!(fmt_value(Some(3.0)), "3");
        assert_eq!(fmt_value(Some(0.25)), "0.25");
        assert_eq!(fmt_value(Some(1.0 / 3.0)), "0.333333");
        assert_eq!(fmt_value(None), "empty");
    }
}
