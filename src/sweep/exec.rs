//! Executing a sweep: runs in parallel (rayon), fragments committed
//! atomically, resumable, shardable.

use super::combine::{fragment_dir, is_complete, Combiner};
use super::{expand, in_shard, RunSpec};
use crate::metrics::summary::write_runs;
use crate::report::atomic::{write_atomic, write_atomic_unsynced};
use crate::report::charts::ChartOptions;
use crate::run::{execute, RunOptions};
use crate::scenario::error::Warning;
use crate::scenario::{self, model::Scenario, ScenarioError};
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a sweep directory belongs to (`sweep.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepIdentity {
    pub version: String,
    pub scenario: String,
    /// FNV-1a of the resolved scenario text (after `--set`), hex.
    pub scenario_hash: String,
    pub runs: u64,
    /// `K/N` for a shard, absent for a whole sweep.
    #[serde(default)]
    pub shard: Option<String>,
    /// Runs with the spec-oracle monitors (`--check`); absent when off, so
    /// a sweep without them writes the sweep.json it always wrote.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
    /// Runs of the grid's invalid points, which no shard runs and `merge`
    /// does not expect; absent when every point is valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_runs: Vec<u64>,
}

impl SweepIdentity {
    pub fn without_shard(&self) -> SweepIdentity {
        SweepIdentity {
            shard: None,
            ..self.clone()
        }
    }
}

/// Errors of a sweep. `exit_code`: 2 for bad input, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}: corrupt run fragment: {1}")]
    Corrupt(PathBuf, String),
    #[error("{0} is not a sweep results directory (no sweep.json)")]
    NotASweep(PathBuf),
    #[error("cannot combine: {0}")]
    Mismatch(String),
    #[error("--resume refused: {0}")]
    ResumeRefused(String),
    #[error("nothing to merge")]
    NothingToMerge,
    #[error("run {0} is in none of the shard directories")]
    MissingRun(u64),
    #[error("{0}")]
    BadOption(String),
    /// `--deny-warnings` and the sweep warned (exit 2).
    #[error("{0} warning(s) and --deny-warnings")]
    DeniedWarnings(usize),
    #[error("{failed} of {total} runs failed{written}:\n{details}")]
    RunsFailed {
        failed: usize,
        total: usize,
        /// Where the other runs' results are, or empty.
        written: String,
        details: String,
    },
    /// Every point of the grid is invalid (`check` lists why).
    #[error("no point of the sweep is valid ({points} points):\n{details}")]
    NoValidPoint { points: usize, details: String },
    /// The results directory holds another command's or scenario's outputs.
    #[error("{0}")]
    DirInUse(String),
}

impl SweepError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SweepError::Scenario(_)
            | SweepError::ResumeRefused(_)
            | SweepError::Mismatch(_)
            | SweepError::NotASweep(_)
            | SweepError::NothingToMerge
            | SweepError::MissingRun(_)
            | SweepError::NoValidPoint { .. }
            | SweepError::DirInUse(_)
            | SweepError::DeniedWarnings(_)
            | SweepError::BadOption(_) => 2,
            // README.md "Exit codes": points that failed at run time
            SweepError::RunsFailed { .. } => 1,
            // the results directory could not be read or written
            SweepError::Io(..) | SweepError::Corrupt(..) => 3,
        }
    }
}

/// "shard K/N", or "whole grid" for a sweep that is not a shard.
fn shard_text(shard: &Option<String>) -> String {
    shard
        .as_ref()
        .map_or_else(|| "whole grid".to_string(), |s| format!("shard {s}"))
}

/// Options of `qossim sweep`.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    pub out_dir: PathBuf,
    /// Worker threads (0 = one per core).
    pub jobs: usize,
    pub resume: bool,
    pub shard: Option<(u64, u64)>,
    pub quiet: bool,
    /// Run ids that also write pcaps (and packets.csv).
    pub pcap_runs: Vec<u64>,
    /// Run the spec-oracle monitors in every run (`--check`): the
    /// `violations` column and a combined `violations.csv`.
    pub check: bool,
    /// Remove another command's or scenario's outputs from `out_dir`
    /// instead of refusing it (`--force`, [`super::dir::claim`]).
    pub force: bool,
    /// Exit 2 when the sweep warns (skipped points; `--deny-warnings`).
    pub deny_warnings: bool,
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepReport {
    pub total_runs: usize,
    pub executed: usize,
    /// Runs already complete (`--resume`).
    pub skipped: usize,
    /// The grid's invalid points, skipped (warned about on stderr).
    pub invalid: Vec<super::InvalidPoint>,
    /// Runs of the invalid points.
    pub invalid_runs: usize,
    /// Runs that failed at run time: (run id, what went wrong with the
    /// point's parameters); the tables and charts hold the others.
    pub failed: Vec<(u64, String)>,
    pub combined: bool,
    /// The combined rows (`runs.csv`), when combined.
    pub rows: Vec<crate::metrics::summary::RunRow>,
    pub wall_s: f64,
}

impl SweepReport {
    /// [`SweepError::RunsFailed`] when runs failed at run time.
    pub fn failure(&self, out: &Path, ran: usize) -> Option<SweepError> {
        if self.failed.is_empty() {
            return None;
        }
        let details: Vec<String> = self.failed.iter().map(|(_, m)| m.clone()).collect();
        Some(SweepError::RunsFailed {
            failed: self.failed.len(),
            total: ran,
            written: if self.combined {
                format!(" (the results of the others are in {}/)", out.display())
            } else {
                String::new()
            },
            details: details.join("\n"),
        })
    }
}

pub(crate) fn read_identity(dir: &Path) -> Result<Option<SweepIdentity>, SweepError> {
    let p = dir.join("sweep.json");
    match fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| SweepError::Corrupt(p, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SweepError::Io(p, e)),
    }
}

pub(crate) fn write_identity(dir: &Path, id: &SweepIdentity) -> Result<(), SweepError> {
    let text = serde_json::to_string_pretty(id).unwrap_or_default();
    write_atomic(&dir.join("sweep.json"), text.as_bytes())
        .map_err(|e| SweepError::Io(dir.to_path_buf(), e))
}

fn identity(
    sc: &Scenario,
    runs: u64,
    shard: Option<(u64, u64)>,
    check: bool,
    skipped_runs: Vec<u64>,
) -> SweepIdentity {
    SweepIdentity {
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: sc.name.clone(),
        scenario_hash: format!("{:016x}", crate::sim::rng::stable_id(&sc.resolved_toml)),
        runs,
        shard: shard.map(|(k, n)| format!("{k}/{n}")),
        check,
        skipped_runs,
    }
}

/// One run: load its point, simulate, write its fragment; the fragment's
/// `rows.csv` is written last, so a killed run leaves no `rows.csv`.
fn run_one(
    text: &str,
    origin: &str,
    base_dir: &Path,
    user: &[String],
    spec: &RunSpec,
    sweep: &SweepOptions,
) -> Result<(), String> {
    if fail_run(spec.run_id) {
        return Err("failed by the test hook QOSSIM_TEST_FAIL_RUNS".into());
    }
    let mut overrides = user.to_vec();
    overrides.extend(spec.overrides.iter().cloned());
    let sc = scenario::load_str(text, origin, base_dir, &overrides).map_err(|e| e.to_string())?;
    let dir = fragment_dir(&sweep.out_dir, spec.run_id);
    let pcap = sweep.pcap_runs.contains(&spec.run_id);
    let opts = RunOptions {
        check: sweep.check,
        out_dir: dir.clone(),
        packets: pcap,
        pcap,
        fsync: false,
        registry: None,
        trace: None,
    };
    let ex = execute(&sc, spec.run_id, spec.replication, &spec.params, &opts)
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    write_runs(&ex.rows, &mut buf).map_err(|e| e.to_string())?;
    write_atomic_unsynced(&dir.join("rows.csv"), &buf).map_err(|e| e.to_string())
}

/// `qossim sweep`: run the grid of the scenario `path` into `opts.out_dir`.
///
/// Every point is loaded first as its runs will load it; the invalid ones
/// are skipped with a warning on stderr (an error when no point is valid).
/// Runs that fail at run time are listed in [`SweepReport::failed`]; the
/// tables, charts and report of a whole sweep are written from the others.
pub fn run_sweep(
    path: &Path,
    user_overrides: &[String],
    opts: &SweepOptions,
) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    let origin = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|e| {
        ScenarioError::file_only(&origin, format!("cannot read scenario file: {e}"))
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let base = scenario::load_str(&text, &origin, &base_dir, user_overrides)?;
    let runs = expand(&base);
    if let Some(bad) = opts.pcap_runs.iter().find(|&&id| id >= runs.len() as u64) {
        return Err(SweepError::BadOption(format!(
            "--pcap-runs {bad}: no such run, the grid has runs 0 to {}",
            runs.len().saturating_sub(1)
        )));
    }
    // the points that do not load are skipped, never run
    let (invalid, mut warned) = super::screen_points(
        &text,
        &origin,
        &base_dir,
        user_overrides,
        &runs,
        "; skipped",
    )?;
    let is_invalid = |r: &RunSpec| invalid.binary_search_by_key(&r.point, |p| p.point).is_ok();
    let skipped_runs: Vec<u64> = runs
        .iter()
        .filter(|r| is_invalid(r))
        .map(|r| r.run_id)
        .collect();
    for id in &opts.pcap_runs {
        if skipped_runs.binary_search(id).is_ok() {
            warned.push(Warning::at(
                &origin,
                &text,
                None,
                format!("--pcap-runs {id}: that run's point is invalid, so it does not run"),
            ));
        }
    }
    for w in &warned {
        eprintln!("{w}");
    }
    if opts.deny_warnings && !warned.is_empty() {
        return Err(SweepError::DeniedWarnings(warned.len()));
    }
    let valid: Vec<RunSpec> = runs.iter().filter(|r| !is_invalid(r)).cloned().collect();
    let out = &opts.out_dir;
    let io = |e: std::io::Error| SweepError::Io(out.clone(), e);
    super::dir::claim(out, super::dir::Command::Sweep, &base.name, opts.force)?;
    let id = identity(
        &base,
        runs.len() as u64,
        opts.shard,
        opts.check,
        skipped_runs.clone(),
    );
    fs::create_dir_all(out).map_err(io)?;
    match read_identity(out)? {
        Some(old) if opts.resume && old != id => {
            return Err(SweepError::ResumeRefused(format!(
                "{} holds a sweep of scenario `{}` (hash {}, {} runs, {}, check {}, qossim {}), not this one (`{}`, hash {}, {} runs, {}, check {}, qossim {})",
                out.display(), old.scenario, old.scenario_hash, old.runs, shard_text(&old.shard), old.check, old.version,
                id.scenario, id.scenario_hash, id.runs, shard_text(&id.shard), id.check, id.version
            )))
        }
        Some(_) if opts.resume => {}
        _ => {
            // a fresh sweep: nothing of an earlier one may leak in
            clear_outputs(out)?;
        }
    }
    // temporary files of an interrupted combine
    remove_tmp_files(out)?;
    write_identity(out, &id)?;
    fs::create_dir_all(out.join("runs")).map_err(io)?;
    let mine: Vec<&RunSpec> = valid
        .iter()
        .filter(|r| in_shard(r.run_id, opts.shard))
        .collect();
    let mut pending = Vec::new();
    for r in &mine {
        if is_complete(out, r.run_id) {
            continue;
        }
        // a partial fragment (killed mid-run) is redone from scratch
        let d = fragment_dir(out, r.run_id);
        if d.exists() {
            fs::remove_dir_all(&d).map_err(|e| SweepError::Io(d.clone(), e))?;
        }
        pending.push(*r);
    }
    let skipped = mine.len() - pending.len();
    let bar = if opts.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(pending.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} runs finished, {msg}, ETA {eta}",
        ) {
            b.set_style(style);
        }
        b.set_message("0 failed");
        b
    };
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| SweepError::BadOption(format!("cannot start {jobs} worker threads: {e}")))?;
    // the position of every run in `valid` (the combined order), by run id
    let mut position = vec![usize::MAX; runs.len()];
    for (i, r) in valid.iter().enumerate() {
        position[r.run_id as usize] = i;
    }
    // which valid runs have a complete fragment (by position); a whole
    // sweep combines them in order while later runs still execute
    let mut is_pending = vec![false; valid.len()];
    for r in &pending {
        if let Some(p) = is_pending.get_mut(position[r.run_id as usize]) {
            *p = true;
        }
    }
    let done: Vec<AtomicBool> = is_pending.iter().map(|p| AtomicBool::new(!p)).collect();
    let combiner = match opts.shard {
        None => Some(Mutex::new(Combiner::new(out)?)),
        Some(_) => None,
    };
    let stream_error: Mutex<Option<SweepError>> = Mutex::new(None);
    let pause = pause_after_run();
    // workers take runs in index order, so runs finish roughly in order and
    // the combiner keeps up
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(spec) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
            match run_one(&text, &origin, &base_dir, user_overrides, spec, opts) {
                Ok(()) => {
                    if let Some(d) = done.get(position[spec.run_id as usize]) {
                        d.store(true, Ordering::Release);
                    }
                    // never wait for the combiner: whoever holds it appends
                    // this run too if it can, `finish` does the rest
                    if let Some(Ok(mut c)) = combiner.as_ref().map(Mutex::try_lock) {
                        if let Err(e) = c.advance(&valid, &done) {
                            if let Ok(mut slot) = stream_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
                Err(m) => {
                    if let Ok(mut f) = failures.lock() {
                        f.push((spec.run_id, m));
                        bar.set_message(format!("{} failed", f.len()));
                    }
                }
            }
            if let Some(d) = pause {
                std::thread::sleep(d);
            }
            bar.inc(1);
        }
    };
    pool.scope(|s| {
        for _ in 0..jobs {
            s.spawn(|_| work());
        }
    });
    bar.finish_and_clear();
    if let Some(e) = stream_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut failed = failures.into_inner().unwrap_or_default();
    failed.sort();
    // the runs whose results there are: every valid run but the failed
    // ones (the combiner has appended only complete runs, a prefix of these)
    let succeeded: Vec<RunSpec> = valid
        .iter()
        .filter(|r| failed.binary_search_by_key(&r.run_id, |f| f.0).is_err())
        .cloned()
        .collect();
    let complete = opts.shard.is_none() && !succeeded.is_empty();
    let mut rows = Vec::new();
    if complete {
        if let Some(c) = combiner.and_then(|c| c.into_inner().ok()) {
            // the rest of the combine (and the charts) on the --jobs threads
            rows = pool.install(|| c.finish(&succeeded, &ChartOptions::of(&base)))?;
        }
    }
    // a shard's manifest lists its own runs; `merge` joins them
    let listed: Vec<&RunSpec> = mine
        .iter()
        .copied()
        .filter(|r| failed.binary_search_by_key(&r.run_id, |f| f.0).is_err())
        .collect();
    if failed.is_empty() || complete {
        let manifest = sweep_manifest(
            &base,
            &listed,
            started.elapsed().as_secs_f64(),
            jobs,
            id.shard.as_deref(),
        );
        write_atomic(&out.join("manifest.json"), manifest.as_bytes()).map_err(io)?;
    }
    if complete {
        crate::report::html::write_report(out)
            .map_err(|e| SweepError::Io(out.join("report.html"), e))?;
    }
    let failed: Vec<(u64, String)> = failed
        .into_iter()
        .map(|(id, m)| {
            let r = &runs[id as usize];
            let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (
                id,
                format!(
                    "  run {id} (point {}: {}; replication {}): {m}",
                    r.point,
                    params.join(", "),
                    r.replication
                ),
            )
        })
        .collect();
    Ok(SweepReport {
        total_runs: runs.len(),
        executed: pending.len(),
        skipped,
        invalid_runs: skipped_runs.len(),
        invalid,
        failed,
        combined: complete,
        rows,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Test hook: `QOSSIM_TEST_PAUSE_AFTER_RUN_MS=<ms>` makes every worker wait
/// that long after each run, so the test suite can kill a sweep at a point
/// where no run is in progress ("between runs"). Unset, it costs nothing.
fn pause_after_run() -> Option<std::time::Duration> {
    std::env::var("QOSSIM_TEST_PAUSE_AFTER_RUN_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
}

/// Test hook: `QOSSIM_TEST_FAIL_RUNS=<id>,<id>…` makes those runs fail as
/// a run fails at run time (a write error, say), so the test suite can
/// check what a sweep does then. Unset, no run fails.
fn fail_run(run_id: u64) -> bool {
    std::env::var("QOSSIM_TEST_FAIL_RUNS").is_ok_and(|v| {
        v.split(',')
            .any(|x| x.trim().parse::<u64>().ok() == Some(run_id))
    })
}

/// The files a sweep writes at the top of its directory (`sweep.json` is
/// rewritten, not removed).
const OUTPUTS: [&str; 8] = [
    "runs.csv",
    "summary.csv",
    "messages.csv",
    "manifest.json",
    "charts",
    "runs",
    "report.html",
    "violations.csv",
];

/// Remove what an earlier sweep (or run) left in `out`: only the names a
/// sweep writes, never anything else the user keeps there.
fn clear_outputs(out: &Path) -> Result<(), SweepError> {
    for name in OUTPUTS {
        let p = out.join(name);
        let r = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else if p.exists() {
            fs::remove_file(&p)
        } else {
            Ok(())
        };
        r.map_err(|e| SweepError::Io(p.clone(), e))?;
    }
    remove_tmp_files(out)
}

/// Remove `<name>.tmp` files of `out` (a killed combine's): fragments clean
/// up their own when they are redone.
fn remove_tmp_files(out: &Path) -> Result<(), SweepError> {
    let entries = fs::read_dir(out).map_err(|e| SweepError::Io(out.to_path_buf(), e))?;
    for e in entries {
        let p = e.map_err(|e| SweepError::Io(out.to_path_buf(), e))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "tmp") {
            fs::remove_file(&p).map_err(|e| SweepError::Io(p.clone(), e))?;
        }
    }
    Ok(())
}

fn sweep_manifest(
    sc: &Scenario,
    runs: &[&RunSpec],
    wall_s: f64,
    jobs: usize,
    shard: Option<&str>,
) -> String {
    let grid: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let params: serde_json::Map<String, serde_json::Value> = r
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::json!({ "run_id": r.run_id, "point": r.point, "replication": r.replication, "seed": r.seed, "params": params })
        })
        .collect();
    let mut v: serde_json::Value = serde_json::from_str(&crate::report::manifest::manifest(
        sc,
        wall_s,
        0,
        crate::sim::SimTime::ZERO,
    ))
    .unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("runs".into(), serde_json::Value::Array(grid));
        o.insert("jobs".into(), serde_json::json!(jobs));
        if let Some(k) = shard {
            o.insert("shard".into(), serde_json::json!(k));
        }
        o.remove("events");
        o.remove("simulated_s");
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// The table a sweep prints at its end: one line per parameter point and
/// flow (the rows of `summary.csv`, in its order) with the number of runs,
/// the mean delivery ratio ± its 95 % half-width and the mean p50, p99 and
/// bytes on the wire per delivered message; at most `limit` lines, then how
/// many more `summary.csv` holds.
pub fn summary_text(rows: &[crate::metrics::summary::RunRow], limit: usize) -> String {
    use crate::metrics::stats::{ci95_half_width, mean};
    use std::collections::HashMap;
    use std::fmt::Write;
    let Some(first) = rows.first() else {
        return String::new();
    };
    let col = |name: &str| first.columns.iter().position(|c| c == name);
    let cols = [
        col("delivery_ratio"),
        col("latency_ms_p50"),
        col("latency_ms_p99"),
        col("bytes_on_wire_per_delivered"),
    ];
    // (params, flow) → rows, in order of first appearance
    type Key<'a> = (&'a [(String, String)], &'a str);
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut groups: Vec<Vec<&crate::metrics::summary::RunRow>> = Vec::new();
    for r in rows {
        let k = (r.params.as_slice(), r.flow.as_str());
        let i = *index.entry(k).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(r);
    }
    let fmt = |x: Option<f64>, prec: usize| match x {
        Some(x) if x.is_finite() => format!("{x:.prec$}"),
        _ => "-".to_string(),
    };
    let mut lines: Vec<Vec<String>> = Vec::new();
    for g in groups.iter().take(limit) {
        let r0 = g[0];
        let values = |c: Option<usize>| -> Vec<f64> {
            c.map(|c| {
                g.iter()
                    .filter_map(|r| r.metrics.get(c).and_then(|v| v.as_f64()))
                    .collect()
            })
            .unwrap_or_default()
        };
        let ratio = values(cols[0]);
        let ratio = match (mean(&ratio), ci95_half_width(&ratio)) {
            (Some(m), Some(h)) => format!("{m:.4} ± {h:.4}"),
            (Some(m), None) => format!("{m:.4}"),
            _ => "-".to_string(),
        };
        let mut line: Vec<String> = r0.params.iter().map(|(_, v)| v.clone()).collect();
        line.extend([
            r0.flow.clone(),
            r0.protocol.clone(),
            r0.reliability.clone(),
            g.len().to_string(),
            ratio,
            fmt(mean(&values(cols[1])), 1),
            fmt(mean(&values(cols[2])), 1),
            fmt(mean(&values(cols[3])), 1),
        ]);
        lines.push(line);
    }
    let mut header: Vec<String> = first.params.iter().map(|(k, _)| k.clone()).collect();
    header.extend(
        [
            "flow",
            "protocol",
            "reliability",
            "runs",
            "delivery ratio",
            "p50 ms",
            "p99 ms",
            "B/delivered",
        ]
        .map(String::from),
    );
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // text columns left-aligned, numbers right-aligned
    let text_cols = first.params.len() + 3;
    let mut s = String::new();
    for l in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let pad = w.saturating_sub(c.chars().count());
                if i < text_cols {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(s, "{}", cells.join("  ").trim_end());
    }
    if groups.len() > limit {
        let _ = writeln!(
            s,
            "… and {} more lines in summary.csv",
            groups.len() - limit
        );
    }
    s
}
