//! Combining run fragments into a sweep's tables, and merging shards.

use super::exec::{read_identity, write_identity, SweepError, SweepIdentity};
use super::RunSpec;
use crate::metrics::summary::{read_runs, RunRow};
use crate::report::atomic::{write_atomic, AtomicFile};
use crate::run::write_tables;
use rayon::prelude::*;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) fn fragment_dir(out: &Path, run_id: u64) -> PathBuf {
    out.join("runs").join(run_id.to_string())
}

/// A run's fragment is complete when its `rows.csv` (written last) exists.
/// Fragments are not fsynced, so after a machine crash a renamed file may
/// be empty: an empty `rows.csv` or `messages.csv` marks the run as to be
/// redone (each holds at least its header line when written).
pub(crate) fn is_complete(out: &Path, run_id: u64) -> bool {
    let d = fragment_dir(out, run_id);
    let non_empty =
        |name: &str| fs::metadata(d.join(name)).is_ok_and(|m| m.is_file() && m.len() > 0);
    non_empty("rows.csv") && non_empty("messages.csv")
}

/// Write `runs.csv`, `summary.csv` and `messages.csv` of `out` from the
/// fragments of `runs`, in run-index order, then the charts.
/// The charts follow `opts` (the scenario's `[report]` table).
pub fn combine(
    out: &Path,
    runs: &[RunSpec],
    opts: &crate::report::charts::ChartOptions,
) -> Result<Vec<RunRow>, SweepError> {
    Combiner::new(out)?.finish(runs, opts)
}

/// Combines fragments in run-index order. A sweep feeds it while runs are
/// still executing (`advance` after each finished run), so by the time the
/// last run ends most of `messages.csv` is already written; `finish` appends
/// the rest. The output does not depend on when each fragment was appended.
pub(crate) struct Combiner {
    out: PathBuf,
    messages: AtomicFile,
    header_done: bool,
    /// `violations.csv`, begun at the first fragment that has one (runs
    /// with the spec-oracle monitors).
    violations: Option<AtomicFile>,
    rows: Vec<RunRow>,
    /// Index (in the run list) of the next fragment to append.
    next: usize,
}

impl Combiner {
    /// Start `out/messages.csv` (a temporary file until `finish`).
    pub(crate) fn new(out: &Path) -> Result<Combiner, SweepError> {
        let p = out.join("messages.csv");
        Ok(Combiner {
            out: out.to_path_buf(),
            messages: AtomicFile::create(&p).map_err(|e| SweepError::Io(p, e))?,
            header_done: false,
            violations: None,
            rows: Vec::new(),
            next: 0,
        })
    }

    /// Append the fragments of `runs[next..]` for as long as `done` says
    /// they are complete.
    pub(crate) fn advance(
        &mut self,
        runs: &[RunSpec],
        done: &[AtomicBool],
    ) -> Result<(), SweepError> {
        while let (Some(r), Some(d)) = (runs.get(self.next), done.get(self.next)) {
            if !d.load(Ordering::Acquire) {
                break;
            }
            let mut rows = read_fragment_rows(&self.out, r.run_id)?;
            self.append_messages(r.run_id)?;
            self.append_violations(r.run_id)?;
            self.rows.append(&mut rows);
            self.next += 1;
        }
        Ok(())
    }

    /// The header once, then the fragment's rows as bytes.
    fn append_messages(&mut self, run_id: u64) -> Result<(), SweepError> {
        let path = fragment_dir(&self.out, run_id).join("messages.csv");
        let mut m = fs::File::open(&path).map_err(|e| SweepError::Io(path.clone(), e))?;
        append_rows(&mut self.messages, !self.header_done, &path, &mut m)?;
        self.header_done = true;
        Ok(())
    }

    /// The fragment's `violations.csv` rows, when it has one (its header
    /// too when it is the first).
    fn append_violations(&mut self, run_id: u64) -> Result<(), SweepError> {
        let path = fragment_dir(&self.out, run_id).join("violations.csv");
        let mut v = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SweepError::Io(path, e)),
        };
        let first = self.violations.is_none();
        if first {
            let p = self.out.join("violations.csv");
            self.violations = Some(AtomicFile::create(&p).map_err(|e| SweepError::Io(p, e))?);
        }
        if let Some(w) = self.violations.as_mut() {
            append_rows(w, first, &path, &mut v)?;
        }
        Ok(())
    }

    /// Append every fragment not appended yet, commit `messages.csv`, write
    /// `runs.csv`, `summary.csv` and the charts.
    pub(crate) fn finish(
        mut self,
        runs: &[RunSpec],
        opts: &crate::report::charts::ChartOptions,
    ) -> Result<Vec<RunRow>, SweepError> {
        let rest = runs.get(self.next..).unwrap_or_default();
        // the small rows.csv files in parallel, kept in run order
        let parts: Vec<Result<Vec<RunRow>, SweepError>> = rest
            .par_iter()
            .map(|r| read_fragment_rows(&self.out, r.run_id))
            .collect();
        for (r, part) in rest.iter().zip(parts) {
            let mut part = part?;
            self.append_messages(r.run_id)?;
            self.append_violations(r.run_id)?;
            self.rows.append(&mut part);
        }
        let out = self.out;
        let io = |e: std::io::Error| SweepError::Io(out.clone(), e);
        match self.violations {
            Some(v) => v.commit().map_err(io)?,
            None => match fs::remove_file(out.join("violations.csv")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            },
        }
        // messages.csv is large: its fsync waits on another thread while the
        // tables and charts are written
        let written = self.messages.commit_sync_later().map_err(io)?;
        let rows = self.rows;
        std::thread::scope(|s| {
            let sync = s.spawn(move || written.sync_all());
            write_tables(&out, &rows).map_err(io)?;
            crate::report::charts::write_charts_with(&out, opts).map_err(|e| {
                SweepError::Io(out.join("charts"), std::io::Error::other(e.to_string()))
            })?;
            sync.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))
                .map_err(|e| SweepError::Io(out.join("messages.csv"), e))
        })?;
        Ok(rows)
    }
}

/// Append the CSV file `src` (at `path`) to `w`: its header line only when
/// `header`, then the rest as bytes.
fn append_rows(
    w: &mut AtomicFile,
    header: bool,
    path: &Path,
    src: &mut fs::File,
) -> Result<(), SweepError> {
    let io = |e| SweepError::Io(path.to_path_buf(), e);
    let mut line = String::new();
    BufReader::new(&*src).read_line(&mut line).map_err(io)?;
    if !line.ends_with('\n') {
        return Err(SweepError::Corrupt(
            path.to_path_buf(),
            "no header line".into(),
        ));
    }
    if header {
        w.write_all(line.as_bytes()).map_err(io)?;
    }
    src.seek(SeekFrom::Start(line.len() as u64))
        .and_then(|_| w.append_from(src))
        .map_err(io)?;
    Ok(())
}

fn read_fragment_rows(out: &Path, run_id: u64) -> Result<Vec<RunRow>, SweepError> {
    let p = fragment_dir(out, run_id).join("rows.csv");
    let f = fs::File::open(&p).map_err(|e| SweepError::Io(p.clone(), e))?;
    read_runs(f).map_err(|m| SweepError::Corrupt(p, m))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    let mut entries: Vec<_> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let target = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &target)?;
        } else {
            fs::copy(&p, &target)?;
        }
    }
    Ok(())
}

/// Merge the shard directories `dirs` into `out`: check they belong to the
/// same sweep, gather every run's fragment, then combine as a single-machine
/// sweep would. Returns the identity and the number of runs.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(SweepIdentity, usize), SweepError> {
    let started = std::time::Instant::now();
    let mut identity: Option<SweepIdentity> = None;
    for d in dirs {
        let id = read_identity(d)?.ok_or_else(|| SweepError::NotASweep(d.clone()))?;
        match &identity {
            None => identity = Some(id.without_shard()),
            Some(first) if *first != id.without_shard() => {
                return Err(SweepError::Mismatch(format!(
                    "{} holds scenario `{}` (hash {}, {} runs, qossim {}); the first shard holds `{}` (hash {}, {} runs, qossim {})",
                    d.display(),
                    id.scenario,
                    id.scenario_hash,
                    id.runs,
                    id.version,
                    first.scenario,
                    first.scenario_hash,
                    first.runs,
                    first.version
                )))
            }
            Some(_) => {}
        }
    }
    let identity = identity.ok_or(SweepError::NothingToMerge)?;
    fs::create_dir_all(out.join("runs")).map_err(|e| SweepError::Io(out.to_path_buf(), e))?;
    let mut runs = Vec::new();
    for run_id in 0..identity.runs {
        // a run of an invalid point: no shard ran it
        if identity.skipped_runs.binary_search(&run_id).is_ok() {
            continue;
        }
        let src = dirs
            .iter()
            .find(|d| is_complete(d, run_id))
            .ok_or(SweepError::MissingRun(run_id))?;
        let target = fragment_dir(out, run_id);
        if fragment_dir(src, run_id) != target {
            let _ = fs::remove_dir_all(&target);
            copy_dir(&fragment_dir(src, run_id), &target)
                .map_err(|e| SweepError::Io(target.clone(), e))?;
        }
        runs.push(RunSpec {
            run_id,
            point: 0,
            replication: 0,
            params: Vec::new(),
            overrides: Vec::new(),
            seed: 0,
        });
    }
    write_identity(out, &identity)?;
    // every shard ran the same scenario: the first one's `[report]` table
    let opts = crate::report::charts::ChartOptions::from_dir(&dirs[0]);
    let rows = combine(out, &runs, &opts)?;
    let manifest = merged_manifest(dirs, &rows, started.elapsed().as_secs_f64())?;
    write_atomic(&out.join("manifest.json"), manifest.as_bytes())
        .map_err(|e| SweepError::Io(out.join("manifest.json"), e))?;
    crate::report::html::write_report(out)
        .map_err(|e| SweepError::Io(out.join("report.html"), e))?;
    Ok((identity, runs.len()))
}

/// `manifest.json` of a merge: the first shard's (version, scenario, seeds),
/// the run grid joined from every shard's manifest in run-index order (from
/// the fragments' rows for a shard without one), and per shard its host and
/// wall time.
fn merged_manifest(dirs: &[PathBuf], rows: &[RunRow], wall_s: f64) -> Result<String, SweepError> {
    use serde_json::{json, Map, Value};
    let mut base: Option<Map<String, Value>> = None;
    // by run id (a grid can hold a million runs)
    let mut grid: std::collections::BTreeMap<u64, Value> = Default::default();
    let mut shards = Vec::new();
    for d in dirs {
        let p = d.join("manifest.json");
        let m: Map<String, Value> = match fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| SweepError::Corrupt(p, e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SweepError::Io(p, e)),
        };
        if let Some(Value::Array(runs)) = m.get("runs") {
            for r in runs {
                if let Some(id) = r.get("run_id").and_then(Value::as_u64) {
                    grid.entry(id).or_insert_with(|| r.clone());
                }
            }
        }
        let field = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
        shards.push(json!({
            "dir": d.display().to_string(),
            "shard": field("shard"),
            "host": field("host"),
            "wall_time_s": field("wall_time_s"),
            "jobs": field("jobs"),
        }));
        if base.is_none() {
            base = Some(m);
        }
    }
    for r in rows {
        grid.entry(r.run_id).or_insert_with(|| {
            let params: Map<String, Value> = r
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({ "run_id": r.run_id, "replication": r.replication, "seed": r.seed, "params": params })
        });
    }
    let mut m = base.unwrap_or_default();
    for k in ["shard", "jobs"] {
        m.remove(k);
    }
    m.insert("runs".into(), Value::Array(grid.into_values().collect()));
    m.insert("merged_from".into(), Value::Array(shards));
    m.insert("host".into(), json!(crate::report::manifest::host()));
    m.insert("wall_time_s".into(), json!(wall_s));
    Ok(serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default())
}
