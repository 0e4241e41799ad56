//! Parameter sweeps (`qossim sweep`): expand a scenario's `[sweep]` grid into
//! runs, execute them in parallel, resume interrupted sweeps, split them into
//! shards for other machines, and combine the results.
//!
//! Layout of a sweep's results directory:
//! - `sweep.json` — what the directory belongs to (qossim version, scenario
//!   name, a hash of the resolved scenario text, the grid size, the shard);
//!   `--resume` and `merge` refuse a directory whose `sweep.json` differs;
//! - `runs/<run_id>/` — one fragment per run: `messages.csv`, optional
//!   `packets.csv` and `pcap/`, and last `rows.csv` (that run's `runs.csv`
//!   rows), committed atomically: a run is complete exactly when its
//!   `rows.csv` exists;
//! - `runs.csv`, `summary.csv`, `messages.csv`, `charts/` — combined from
//!   the fragments in run-index order, so they do not depend on scheduling,
//!   job count, resumption or sharding; `manifest.json` — wall time, host,
//!   jobs and the run grid with seeds (a shard's lists its own runs; a
//!   merge's joins them and names each shard's host and wall time).
//!
//! A directory with another scenario's sweep or a `qossim run`'s outputs is
//! refused unless `--force` ([`dir::claim`]); a sweep without `--resume`
//! then removes what an earlier sweep of its scenario left there (only the
//! names above), so the directory always holds the outputs of exactly one
//! scenario and command.
//!
//! Before anything runs, every point is loaded as its runs will load it
//! ([`invalid_points`]): invalid points are skipped with a warning (their
//! run ids listed in `sweep.json` as `skipped_runs`), an error only when no
//! point is valid. Runs failing at run time leave the others' tables,
//! charts and report written. Fragments are renamed into place but not
//! fsynced (they can be redone); an empty fragment file, what a machine crash
//! can leave, counts as not done.

mod combine;
pub mod dir;
mod exec;

pub use combine::{combine, merge};
pub use exec::{run_sweep, summary_text, SweepError, SweepOptions, SweepReport};

use crate::scenario::error::Warning;
use crate::scenario::model::Scenario;
use crate::scenario::ScenarioError;
use crate::sim::rng::{derive_seed, stable_id};
use rayon::prelude::*;
use std::path::Path;

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Position in the grid (points in order, replications innermost).
    pub run_id: u64,
    pub point: u64,
    pub replication: u64,
    /// (path, label) of every swept parameter, in axis order.
    pub params: Vec<(String, String)>,
    /// `--set` overrides that make this run (axis values, then the seed).
    pub overrides: Vec<String>,
    pub seed: u64,
}

/// Expand the grid of `sc` (one point, one replication when it has no
/// `[sweep]`). Seeds derive from (master seed, the point's parameter values,
/// the replication), never from positions, so adding an axis value leaves
/// the other runs' seeds alone.
pub fn expand(sc: &Scenario) -> Vec<RunSpec> {
    let (axes, factors, reps) = match &sc.sweep {
        Some(s) => (s.axes.as_slice(), s.factors(), s.replications),
        None => (&[][..], Vec::new(), 1),
    };
    // the value index of every axis at each point: the factors crossed,
    // the first outermost; the axes of one factor (a group, or every axis
    // in mode "zip") take their k-th values together
    let mut points: Vec<Vec<usize>> = vec![vec![0; axes.len()]];
    for f in &factors {
        let n = axes[f[0]].values.len();
        points = points
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let mut q = p.clone();
                    for &a in f {
                        q[a] = i;
                    }
                    q
                })
            })
            .collect();
    }
    let mut runs = Vec::new();
    for (pi, p) in points.iter().enumerate() {
        let params: Vec<(String, String)> = axes
            .iter()
            .zip(p)
            .map(|(a, &i)| (a.path.clone(), a.labels[i].clone()))
            .collect();
        let key: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for r in 0..reps {
            // 63 bits: a TOML integer (and so a scenario `seed`) is an i64
            let seed = derive_seed(
                sc.seed,
                stable_id(&format!("sweep/{}/rep/{r}", key.join(";"))),
            ) & (i64::MAX as u64);
            let mut overrides: Vec<String> = axes
                .iter()
                .zip(p)
                .map(|(a, &i)| format!("{}={}", a.path, a.values[i]))
                .collect();
            overrides.push(format!("seed={seed}"));
            runs.push(RunSpec {
                run_id: runs.len() as u64,
                point: pi as u64,
                replication: r,
                params: params.clone(),
                overrides,
                seed,
            });
        }
    }
    runs
}

/// `K/N` → (K, N) with 1 ≤ K ≤ N.
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard `{s}`: expected K/N, e.g. 1/4"))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard `{s}`: K is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard `{s}`: N is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard `{s}`: need 1 ≤ K ≤ N"));
    }
    Ok((k, n))
}

/// Whether run `run_id` belongs to shard `(k, n)`: round-robin by run index.
pub fn in_shard(run_id: u64, shard: Option<(u64, u64)>) -> bool {
    shard.is_none_or(|(k, n)| run_id % n == k - 1)
}

/// A point of the grid that does not load (e.g. a protocol crossed with a
/// reliability it does not offer): `check` reports it, `sweep` skips it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidPoint {
    pub point: u64,
    /// (path, label) of every swept parameter, as in [`RunSpec::params`].
    pub params: Vec<(String, String)>,
    pub error: ScenarioError,
}

impl InvalidPoint {
    /// `sweep point N (path=value, …) is invalid: field `f`: why`.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let field = match &self.error.field {
            Some(f) => format!("field `{f}`: "),
            None => String::new(),
        };
        format!(
            "sweep point {} ({}) is invalid: {field}{}",
            self.point,
            params.join(", "),
            self.error.message
        )
    }
}

/// Load every point of `runs` — the scenario `text` with the `user`
/// overrides, then the point's own (its first run's, seed included) —
/// exactly as the sweep's runs load it, and return the points that do not
/// load, in grid order.
pub fn invalid_points(
    text: &str,
    origin: &str,
    base_dir: &Path,
    user: &[String],
    runs: &[RunSpec],
) -> Vec<InvalidPoint> {
    // the first run of every point (points are contiguous in run order)
    let firsts: Vec<&RunSpec> = runs
        .iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || runs[i - 1].point != r.point)
        .map(|(_, r)| r)
        .collect();
    firsts
        .par_iter()
        .filter_map(|r| {
            let mut overrides = user.to_vec();
            overrides.extend(r.overrides.iter().cloned());
            crate::scenario::load_str(text, origin, base_dir, &overrides)
                .err()
                .map(|error| InvalidPoint {
                    point: r.point,
                    params: r.params.clone(),
                    error,
                })
        })
        .collect()
}

/// [`invalid_points`], screened as `check` and `sweep` both do: an error
/// when no point is valid, else the invalid points and one warning each,
/// located at the grid's `axes` and ending with `note`.
pub fn screen_points(
    text: &str,
    origin: &str,
    base_dir: &Path,
    user: &[String],
    runs: &[RunSpec],
    note: &str,
) -> Result<(Vec<InvalidPoint>, Vec<Warning>), SweepError> {
    let invalid = invalid_points(text, origin, base_dir, user, runs);
    let points = runs.last().map_or(0, |r| r.point as usize + 1);
    if !invalid.is_empty() && invalid.len() == points {
        let details: Vec<String> = invalid
            .iter()
            .map(|p| format!("  {}", p.describe()))
            .collect();
        return Err(SweepError::NoValidPoint {
            points,
            details: details.join("\n"),
        });
    }
    let warned = invalid
        .iter()
        .map(|p| {
            Warning::at(
                origin,
                text,
                Some("sweep.axes"),
                format!("{}{note}", p.describe()),
            )
        })
        .collect();
    Ok((invalid, warned))
}
