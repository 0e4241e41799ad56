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
//! A sweep without `--resume` first removes what an earlier sweep left in
//! the directory (only the names above), so the directory always holds the
//! outputs of exactly one scenario. Fragments are renamed into place but not
//! fsynced (they can be redone); an empty fragment file, what a machine crash
//! can leave, counts as not done.

mod combine;
mod exec;

pub use combine::{combine, merge};
pub use exec::{run_sweep, SweepError, SweepOptions, SweepReport};

use crate::scenario::model::{Scenario, SweepMode};
use crate::sim::rng::{derive_seed, stable_id};

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
    let (axes, mode, reps) = match &sc.sweep {
        Some(s) => (s.axes.as_slice(), s.mode, s.replications),
        None => (&[][..], SweepMode::Cross, 1),
    };
    // the value index of every axis at each point
    let mut points: Vec<Vec<usize>> = vec![Vec::new()];
    match mode {
        SweepMode::Cross => {
            for a in axes {
                points = points
                    .into_iter()
                    .flat_map(|p| {
                        (0..a.values.len()).map(move |i| {
                            let mut q = p.clone();
                            q.push(i);
                            q
                        })
                    })
                    .collect();
            }
        }
        SweepMode::Zip => {
            let n = axes.first().map_or(1, |a| a.values.len());
            points = (0..n).map(|i| vec![i; axes.len()]).collect();
        }
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
