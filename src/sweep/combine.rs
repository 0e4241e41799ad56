//! Combining run fragments into a sweep's tables, and merging shards.

use super::exec::{read_identity, write_identity, SweepError, SweepIdentity};
use super::RunSpec;
use crate::metrics::summary::{read_runs, RunRow};
use crate::report::atomic::AtomicFile;
use crate::run::write_tables;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub(crate) fn fragment_dir(out: &Path, run_id: u64) -> PathBuf {
    out.join("runs").join(run_id.to_string())
}

/// A run's fragment is complete when its `rows.csv` exists.
pub(crate) fn is_complete(out: &Path, run_id: u64) -> bool {
    fragment_dir(out, run_id).join("rows.csv").is_file()
}

/// Write `runs.csv`, `summary.csv` and `messages.csv` of `out` from the
/// fragments of `runs`, in run-index order.
pub fn combine(out: &Path, runs: &[RunSpec]) -> Result<Vec<RunRow>, SweepError> {
    let io = |e: std::io::Error| SweepError::Io(out.to_path_buf(), e);
    let mut rows = Vec::new();
    let mut messages = AtomicFile::create(&out.join("messages.csv")).map_err(io)?;
    let mut header_done = false;
    for r in runs {
        let dir = fragment_dir(out, r.run_id);
        let f = fs::File::open(dir.join("rows.csv"))
            .map_err(|e| SweepError::Io(dir.join("rows.csv"), e))?;
        let mut part = read_runs(f).map_err(|m| SweepError::Corrupt(dir.join("rows.csv"), m))?;
        rows.append(&mut part);
        let m = fs::File::open(dir.join("messages.csv"))
            .map_err(|e| SweepError::Io(dir.join("messages.csv"), e))?;
        for (i, line) in BufReader::new(m).lines().enumerate() {
            let line = line.map_err(io)?;
            if i == 0 {
                if header_done {
                    continue;
                }
                header_done = true;
            }
            messages.write_all(line.as_bytes()).map_err(io)?;
            messages.write_all(b"\n").map_err(io)?;
        }
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
    combine(out, &runs)?;
    Ok((identity, runs.len()))
}
