//! Whose outputs a results directory holds, so that `run` and `sweep`
//! never mix their files with another command's or another scenario's.
//!
//! A directory with `sweep.json` holds a sweep (or a merge) of the scenario
//! it names; without it, any file only `qossim run` writes (`nodes.csv`,
//! `mqtt.csv`, `timeseries.csv`, …) or a `manifest.json` marks the outputs of
//! a run, of the scenario its manifest names. [`claim`] refuses a directory
//! that holds another command's outputs, or another scenario's, unless
//! `force`, which removes them first (only the names qossim writes, never
//! anything else kept there).

use super::exec::SweepError;
use std::fs;
use std::path::Path;

/// The command that is about to write into a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    Sweep,
}

/// Written by a sweep (and a merge) only.
const SWEEP_ONLY: [&str; 2] = ["sweep.json", "runs"];
/// Written by both.
const SHARED: [&str; 7] = [
    "runs.csv",
    "summary.csv",
    "messages.csv",
    "manifest.json",
    "charts",
    "report.html",
    "violations.csv",
];
/// Written by `qossim run` only (besides the plug-ins' tables and
/// `diagram-*` files, see [`is_run_only`]).
const RUN_ONLY: [&str; 11] = [
    "links.csv",
    "nodes.csv",
    "events.csv",
    "timeseries.csv",
    "timeseries_links.csv",
    "timeseries_tcp.csv",
    "connections.csv",
    "packets.csv",
    "trace.csv",
    "expectations.csv",
    "pcap",
];

/// Whether `name` (a file or directory at the top of a results directory)
/// is one only `qossim run` writes; `tables` are the plug-ins' tables.
fn is_run_only(name: &str, tables: &[&str]) -> bool {
    RUN_ONLY.contains(&name)
        || tables.contains(&name)
        || (name.starts_with("diagram-") && (name.ends_with(".mmd") || name.ends_with(".svg")))
}

/// What a directory holds.
#[derive(Debug, Default)]
struct Found {
    /// `sweep.json`'s scenario, when there is one.
    sweep: Option<String>,
    /// `manifest.json`'s scenario.
    manifest_scenario: Option<String>,
    /// Top-level names written only by `run`, sorted.
    run_files: Vec<String>,
    /// Every top-level name either command writes: the ones that say whose
    /// the directory is first (a sweep's, then a run's), then the shared.
    outputs: Vec<String>,
}

fn inspect(dir: &Path) -> Result<Found, SweepError> {
    let io = |e| SweepError::Io(dir.to_path_buf(), e);
    let mut f = Found::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(f),
        Err(e) => return Err(io(e)),
    };
    let registry = crate::world::apps::Registry::builtin();
    let tables: Vec<&str> = registry
        .entries()
        .iter()
        .flat_map(|e| e.tables.iter().copied())
        .collect();
    for e in entries {
        let name = e.map_err(io)?.file_name().to_string_lossy().into_owned();
        if is_run_only(&name, &tables) {
            f.run_files.push(name.clone());
            f.outputs.push(name);
        } else if SWEEP_ONLY.contains(&name.as_str()) || SHARED.contains(&name.as_str()) {
            f.outputs.push(name);
        }
    }
    f.run_files.sort();
    let rank = |n: &String| {
        if SWEEP_ONLY.contains(&n.as_str()) {
            0
        } else if is_run_only(n, &tables) {
            1
        } else {
            2
        }
    };
    f.outputs
        .sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    let scenario_of = |file: &str| -> Option<String> {
        let t = fs::read_to_string(dir.join(file)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&t).ok()?;
        v.get("scenario")?.as_str().map(str::to_string)
    };
    if f.outputs.iter().any(|n| n == "sweep.json") {
        // an unreadable sweep.json still marks a sweep (of no known scenario)
        f.sweep = Some(scenario_of("sweep.json").unwrap_or_default());
    }
    f.manifest_scenario = scenario_of("manifest.json");
    Ok(f)
}

/// At most six names, then how many more.
fn some_names(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(6)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 6 {
        s.push_str(&format!(", and {} more", names.len() - 6));
    }
    s
}

/// Make `dir` ready for `cmd` on scenario `scenario`: refuse (exit 2) a
/// directory that holds the outputs of the other command, or of another
/// scenario — a sweep also refuses a run's outputs of the same scenario,
/// which it would otherwise leave beside its own — unless `force`, which
/// removes every output of either command first. A directory of the same
/// command and scenario is left to the command (a sweep clears or resumes
/// it, a run replaces its files).
pub fn claim(dir: &Path, cmd: Command, scenario: &str, force: bool) -> Result<(), SweepError> {
    let f = inspect(dir)?;
    let of = |s: &Option<String>| match s.as_deref() {
        Some(s) if !s.is_empty() => format!(" of scenario `{s}`"),
        _ => String::new(),
    };
    let found = match (cmd, &f.sweep) {
        (Command::Sweep, Some(s)) if s != scenario => Some(format!(
            "a sweep{} ({})",
            of(&f.sweep),
            some_names(&f.outputs)
        )),
        (Command::Sweep, Some(_)) if !f.run_files.is_empty() => Some(format!(
            "files of `qossim run` ({}) beside this scenario's sweep",
            some_names(&f.run_files)
        )),
        (Command::Sweep, Some(_)) => None,
        (Command::Sweep, None) if !f.run_files.is_empty() || f.manifest_scenario.is_some() => {
            Some(format!(
                "the outputs of `qossim run`{} ({})",
                of(&f.manifest_scenario),
                some_names(&f.outputs)
            ))
        }
        (Command::Sweep, None) => None,
        (Command::Run, Some(_)) => Some(format!(
            "a sweep{} ({})",
            of(&f.sweep),
            some_names(&f.outputs)
        )),
        (Command::Run, None) => match &f.manifest_scenario {
            Some(s) if s != scenario => Some(format!(
                "the outputs of `qossim run`{} ({})",
                of(&f.manifest_scenario),
                some_names(&f.outputs)
            )),
            _ => None,
        },
    };
    let Some(found) = found else {
        return Ok(());
    };
    if !force {
        let what = match cmd {
            Command::Run => format!("`qossim run` of scenario `{scenario}`"),
            Command::Sweep => format!("a sweep of scenario `{scenario}`"),
        };
        return Err(SweepError::DirInUse(format!(
            "{} holds {found}; {what} would mix its results with them. Choose another --out, or add --force to remove them first",
            dir.display()
        )));
    }
    for name in &f.outputs {
        let p = dir.join(name);
        let r = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SweepError::Io(p, e)),
            _ => {}
        }
    }
    Ok(())
}
