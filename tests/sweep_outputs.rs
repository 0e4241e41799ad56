//! What a sweep directory holds: exactly the outputs of its own scenario
//! (nothing left from an earlier sweep), manifests with the run grid for a
//! whole sweep, a shard and a merge, and `qossim run` on a sweep file.

mod common;
use common::cli::{qossim, sweep_fixture as fixture, sweep_ok as sweep};
use common::temp_dir;
use std::path::Path;

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn manifest(dir: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&t).expect("json")
}

#[test]
fn a_fresh_sweep_leaves_nothing_of_an_earlier_one() {
    // the same network swept over payload size (4 runs) instead of loss (6)
    let dir = temp_dir("sweep-stale");
    let text = std::fs::read_to_string(fixture())
        .expect("fixture")
        .replace(
            r#"axes = [{ path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.3] }]"#,
            r#"axes = [{ path = "flows.udp.payload_bytes", values = [16, 64] }]"#,
        );
    assert!(text.contains("flows.udp.payload_bytes"));
    let other = dir.join("payload.toml");
    std::fs::write(&other, text).expect("write");
    let reused = dir.join("reused");
    let clean = dir.join("clean");
    sweep(&fixture(), &reused, &[]);
    std::fs::write(reused.join("runs.csv.tmp"), "half a file").expect("tmp");
    sweep(&other, &reused, &[]);
    sweep(&other, &clean, &[]);
    assert_eq!(listing(&reused), listing(&clean));
    assert_eq!(listing(&reused.join("runs")), ["0", "1", "2", "3"]);
    let charts = listing(&reused.join("charts"));
    assert_eq!(charts, listing(&clean.join("charts")));
    assert!(
        charts.iter().all(|c| !c.contains("loss")),
        "stale charts: {charts:?}"
    );
    for f in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(reused.join(f)).ok() == std::fs::read(clean.join(f)).ok(),
            "{f}"
        );
    }
}

#[test]
fn manifests_list_the_run_grid_for_sweeps_shards_and_merges() {
    let whole = temp_dir("manifest-whole");
    let s1 = temp_dir("manifest-s1");
    let s2 = temp_dir("manifest-s2");
    let merged = temp_dir("manifest-merged");
    sweep(&fixture(), &whole, &[]);
    sweep(&fixture(), &s1, &["--shard", "1/2"]);
    sweep(&fixture(), &s2, &["--shard", "2/2"]);
    let (code, text) = qossim(&[
        "merge",
        s1.to_str().expect("utf-8"),
        s2.to_str().expect("utf-8"),
        "--out",
        merged.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");

    let m = manifest(&whole);
    let grid = m["runs"].as_array().expect("runs").clone();
    assert_eq!(grid.len(), 6);
    // the grid's seeds are the seeds in runs.csv
    let runs = common::sim::read_csv(&whole.join("runs.csv"));
    for r in &runs {
        let id: usize = r["run_id"].parse().expect("run_id");
        assert_eq!(grid[id]["seed"].to_string(), r["seed"]);
        assert_eq!(grid[id]["replication"].to_string(), r["replication"]);
        assert_eq!(
            grid[id]["params"]["links.backhaul.loss.p"],
            r["links.backhaul.loss.p"].as_str()
        );
    }
    assert!(m["host"].is_string() && m["wall_time_s"].is_number());
    assert_eq!(m["scenario"], "sweep-small");

    let shard = manifest(&s2);
    assert_eq!(shard["shard"], "2/2");
    let ids: Vec<u64> = shard["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["run_id"].as_u64())
        .collect();
    assert_eq!(ids, [1, 3, 5]);

    let mm = manifest(&merged);
    assert_eq!(mm["runs"], m["runs"], "merged grid = single-machine grid");
    assert_eq!(mm["merged_from"].as_array().map(Vec::len), Some(2));
    assert_eq!(mm["merged_from"][1]["shard"], "2/2");
    assert!(mm.get("shard").is_none());
    assert_eq!(mm["resolved_scenario"], m["resolved_scenario"]);
}

#[test]
fn run_on_a_sweep_file_runs_the_base_point_only() {
    let out = temp_dir("run-base-point");
    let f = fixture();
    let (code, text) = qossim(&[
        "run",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{text}");
    let runs = common::sim::read_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 2, "one run, two flows");
    for r in &runs {
        assert_eq!(r["seed"], "3", "the file's own seed");
        assert_eq!(r["run_id"], "0");
        assert!(!r.contains_key("links.backhaul.loss.p"), "no swept columns");
    }
    // the base point has no loss on the backhaul
    let udp = runs.iter().find(|r| r["flow"] == "udp").expect("udp row");
    assert_eq!(udp["delivery_ratio"], "1.000000");
}

#[test]
fn resume_redoes_fragments_a_machine_crash_left_empty() {
    // fragments are renamed into place without fsync: after a crash a
    // renamed file can be empty, and such a run must be redone, not trusted
    let reference = temp_dir("crash-ref");
    let out = temp_dir("crash");
    sweep(&fixture(), &reference, &[]);
    sweep(&fixture(), &out, &[]);
    std::fs::write(out.join("runs/2/messages.csv"), "").expect("truncate");
    std::fs::write(out.join("runs/4/rows.csv"), "").expect("truncate");
    std::fs::remove_file(out.join("runs.csv")).expect("rm");
    let (code, text) = qossim(&[
        "sweep",
        fixture().to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--resume",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 run now, 4 already done"), "{text}");
    for f in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(reference.join(f)).ok() == std::fs::read(out.join(f)).ok(),
            "{f}"
        );
    }
}

#[test]
fn pcap_runs_outside_the_grid_are_bad_input() {
    let out = temp_dir("pcap-runs-bad");
    let (code, text) = qossim(&[
        "sweep",
        fixture().to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
        "--pcap-runs",
        "2,6",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--pcap-runs 6"), "{text}");
    assert!(text.contains("runs 0 to 5"), "{text}");
    assert!(!out.join("runs").exists(), "nothing ran");
}
