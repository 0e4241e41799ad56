//! `manifest.json`: everything about a run that must not appear in the CSVs
//! (wall time, host, paths) plus what is needed to reproduce it (version,
//! crate versions, the resolved scenario, seeds).

use crate::scenario::model::Scenario;
use crate::sim::SimTime;

/// Crate versions from Cargo.lock, embedded at build time by build.rs.
pub(crate) const CRATE_VERSIONS: &str = env!("QOSSIM_CRATE_VERSIONS");
/// `git rev-parse HEAD` at build time, or "unknown".
pub(crate) const GIT_HASH: &str = env!("QOSSIM_GIT_HASH");

/// The machine's host name (manifest only, never a CSV).
pub(crate) fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The manifest of a single run as pretty JSON.
pub(crate) fn manifest(sc: &Scenario, wall_s: f64, events: u64, end: SimTime) -> String {
    let crates: serde_json::Map<String, serde_json::Value> = CRATE_VERSIONS
        .split(';')
        .filter_map(|kv| kv.split_once(' '))
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let v = serde_json::json!({
        "qossim_version": env!("CARGO_PKG_VERSION"),
        "git_hash": GIT_HASH,
        "crate_versions": crates,
        "scenario": sc.name,
        "scenario_file": sc.source.as_ref().map(|p| p.display().to_string()),
        "overrides": sc.overrides,
        "master_seed": sc.seed,
        "runs": [{ "run_id": 0, "replication": 0, "seed": sc.seed, "params": {} }],
        "simulated_s": end.as_secs_f64(),
        "events": events,
        "wall_time_s": wall_s,
        "host": host(),
        "resolved_scenario": sc.resolved_toml,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
