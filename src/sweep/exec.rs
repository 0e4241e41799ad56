//! Executing a sweep: runs in parallel (rayon), fragments committed
//! atomically, resumable, shardable.

use super::combine::{fragment_dir, is_complete, Combiner};
use super::{expand, in_shard, RunSpec};
use crate::metrics::summary::write_runs;
use crate::report::atomic::{write_atomic, write_atomic_unsynced};
use crate::run::{execute, RunOptions};
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
    #[error("{failed} of {total} runs failed:\n{details}")]
    RunsFailed {
        failed: usize,
        total: usize,
        details: String,
    },
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
            | SweepError::BadOption(_) => 2,
            _ => 1,
        }
    }
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
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepReport {
    pub total_runs: usize,
    pub executed: usize,
    pub skipped: usize,
    pub combined: bool,
    pub wall_s: f64,
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

fn identity(sc: &Scenario, runs: u64, shard: Option<(u64, u64)>, check: bool) -> SweepIdentity {
    SweepIdentity {
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: sc.name.clone(),
        scenario_hash: format!("{:016x}", crate::sim::rng::stable_id(&sc.resolved_toml)),
        runs,
        shard: shard.map(|(k, n)| format!("{k}/{n}")),
        check,
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
    let out = &opts.out_dir;
    let io = |e: std::io::Error| SweepError::Io(out.clone(), e);
    let id = identity(&base, runs.len() as u64, opts.shard, opts.check);
    fs::create_dir_all(out).map_err(io)?;
    match read_identity(out)? {
        Some(old) if opts.resume && old != id => {
            return Err(SweepError::ResumeRefused(format!(
                "{} holds a sweep of scenario `{}` (hash {}, {} runs, shard {:?}, check {}, qossim {}), not this one (`{}`, hash {}, {} runs, shard {:?}, check {}, qossim {})",
                out.display(), old.scenario, old.scenario_hash, old.runs, old.shard, old.check, old.version,
                id.scenario, id.scenario_hash, id.runs, id.shard, id.check, id.version
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
    let mine: Vec<&RunSpec> = runs
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
    // which runs have a complete fragment (by run index); a whole sweep
    // combines them in order while later runs still execute
    let mut is_pending = vec![false; runs.len()];
    for r in &pending {
        if let Some(p) = is_pending.get_mut(r.run_id as usize) {
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
                    if let Some(d) = done.get(spec.run_id as usize) {
                        d.store(true, Ordering::Release);
                    }
                    // never wait for the combiner: whoever holds it appends
                    // this run too if it can, `finish` does the rest
                    if let Some(Ok(mut c)) = combiner.as_ref().map(Mutex::try_lock) {
                        if let Err(e) = c.advance(&runs, &done) {
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
    let complete = opts.shard.is_none() && failed.is_empty();
    if complete {
        if let Some(c) = combiner.and_then(|c| c.into_inner().ok()) {
            // the rest of the combine (and the charts) on the --jobs threads
            pool.install(|| c.finish(&runs))?;
        }
    }
    if failed.is_empty() {
        // a shard's manifest lists its own runs; `merge` joins them
        let manifest = sweep_manifest(
            &base,
            &mine,
            started.elapsed().as_secs_f64(),
            jobs,
            id.shard.as_deref(),
        );
        write_atomic(&out.join("manifest.json"), manifest.as_bytes()).map_err(io)?;
        if complete {
            crate::report::html::write_report(out)
                .map_err(|e| SweepError::Io(out.join("report.html"), e))?;
        }
    }
    if !failed.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .map(|(id, m)| {
                let params: Vec<String> = runs[*id as usize]
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "  run {id} ({}; replication {}): {m}",
                    params.join(", "),
                    runs[*id as usize].replication
                )
            })
            .collect();
        return Err(SweepError::RunsFailed {
            failed: failed.len(),
            total: mine.len(),
            details: details.join("\n"),
        });
    }
    Ok(SweepReport {
        total_runs: runs.len(),
        executed: pending.len(),
        skipped,
        combined: complete,
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

/// The files a sweep writes at the top of its directory (`sweep.json` is
/// rewritten, not removed).
const OUTPUTS: [&str; 6] = [
    "runs.csv",
    "summary.csv",
    "messages.csv",
    "manifest.json",
    "charts",
    "runs",
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
