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
/// fragments of `runs`, in run-index order.
pub fn combine(out: &Path, runs: &[RunSpec]) -> Result<Vec<RunRow>, SweepError> {
    let io = |e: std::io::Error| SweepError::Io(out.to_path_buf(), e);
    // the small rows.csv files in parallel, kept in run order
    let parts: Vec<Result<Vec<RunRow>, SweepError>> = runs
        .par_iter()
        .map(|r| {
            let p = fragment_dir(out, r.run_id).join("rows.csv");
            let f = fs::File::open(&p).map_err(|e| SweepError::Io(p.clone(), e))?;
            read_runs(f).map_err(|m| SweepError::Corrupt(p, m))
        })
        .collect();
    let mut rows = Vec::new();
    for p in parts {
        rows.append(&mut p?);
    }
    let mut messages = AtomicFile::create(&out.join("messages.csv")).map_err(io)?;
    let mut header_done = false;
    for r in runs {
        let dir = fragment_dir(out, r.run_id);
        let path = dir.join("messages.csv");
        let mut m = fs::File::open(&path).map_err(|e| SweepError::Io(path.clone(), e))?;
        // the header once, then every fragment's rows as bytes
        let mut header = String::new();
        BufReader::new(&m)
            .read_line(&mut header)
            .map_err(|e| SweepError::Io(path.clone(), e))?;
        if !header.ends_with('\n') {
            return Err(SweepError::Corrupt(path, "no header line".into()));
        }
        if !header_done {
            messages.write_all(header.as_bytes()).map_err(io)?;
            header_done = true;
        }
        m.seek(SeekFrom::Start(header.len() as u64))
            .and_then(|_| messages.append_from(&mut m))
            .map_err(|e| SweepError::Io(path, e))?;
    }
    messages.commit().map_err(io)?;
    write_tables(out, &rows).map_err(io)?;
    crate::report::charts::write_charts(out)
        .map_err(|e| SweepError::Io(out.join("charts"), std::io::Error::other(e.to_string())))?;
    Ok(rows)
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
    let rows = combine(out, &runs)?;
    let manifest = merged_manifest(dirs, &rows, started.elapsed().as_secs_f64())?;
    write_atomic(&out.join("manifest.json"), manifest.as_bytes())
        .map_err(|e| SweepError::Io(out.join("manifest.json"), e))?;
    Ok((identity, runs.len()))
}

/// `manifest.json` of a merge: the first shard's (version, scenario, seeds),
/// the run grid joined from every shard's manifest in run-index order (from
/// the fragments' rows for a shard without one), and per shard its host and
/// wall time.
fn merged_manifest(dirs: &[PathBuf], rows: &[RunRow], wall_s: f64) -> Result<String, SweepError> {
    use serde_json::{json, Map, Value};
    let mut base: Option<Map<String, Value>> = None;
    let mut grid: Vec<(u64, Value)> = Vec::new();
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
                    if !grid.iter().any(|(g, _)| *g == id) {
                        grid.push((id, r.clone()));
                    }
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
        if !grid.iter().any(|(g, _)| *g == r.run_id) {
            let params: Map<String, Value> = r
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            grid.push((
                r.run_id,
                json!({ "run_id": r.run_id, "replication": r.replication, "seed": r.seed, "params": params }),
            ));
        }
    }
    grid.sort_by_key(|(id, _)| *id);
    let mut m = base.unwrap_or_default();
    for k in ["shard", "jobs"] {
        m.remove(k);
    }
    m.insert(
        "runs".into(),
        Value::Array(grid.into_iter().map(|(_, v)| v).collect()),
    );
    m.insert("merged_from".into(), Value::Array(shards));
    m.insert("host".into(), json!(crate::report::manifest::host()));
    m.insert("wall_time_s".into(), json!(wall_s));
    Ok(serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default())
}
