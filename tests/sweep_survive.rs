//! Sweeps that survive (issue 17 item 3): invalid points are listed by
//! `check` and skipped by `sweep`, which still writes tables and charts for
//! the others; a run failing at run time leaves the others' results; axis
//! groups; a results directory of another command or scenario is refused
//! (or cleaned with `--force`); the summary table at the end.

mod common;
use common::cli::{run, sweep_fixture};
use common::temp_dir;
use qossim::scenario::load_str;
use qossim::sweep::expand;
use std::path::{Path, PathBuf};
use std::process::Command;

fn protocols_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-protocols.toml")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// The protocols fixture with its `[sweep]` table replaced by `sweep`,
/// written into `dir`.
fn protocols_with(dir: &Path, sweep: &str) -> PathBuf {
    let text = std::fs::read_to_string(protocols_fixture()).expect("fixture");
    let base = &text[..text.find("[sweep]").expect("[sweep]")];
    let p = dir.join("scenario.toml");
    std::fs::write(&p, format!("{base}{sweep}\n")).expect("write");
    p
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The invalid (protocol, reliability) pairs of the fixture's grid.
const INVALID: [(&str, &str); 3] = [("udp", "confirmed"), ("udp", "qos2"), ("coap", "qos2")];

#[test]
fn a_protocol_reliability_loss_sweep_skips_invalid_points_and_charts_the_rest() {
    let out = temp_dir("survive-protocols");
    let f = protocols_fixture();
    let (code, stdout, stderr) = run(&["sweep", s(&f), "--out", s(&out), "--jobs", "2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // one warning per invalid point (3 pairs × 2 losses), naming its
    // parameters, located at the grid's `axes` (line 61, column 8)
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": warning: sweep point "))
        .collect();
    assert_eq!(warnings.len(), 6, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:61:8: warning: sweep point 10 (flows.t.protocol=coap, flows.t.reliability=qos2, links.backhaul.loss.p=0.0) is invalid: field `flows.t.reliability`: reliability \"qos2\" is not available with protocol \"coap\"",
            f.display()
        )),
        "{stderr}"
    );
    for (p, r) in INVALID {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("flows.t.protocol={p}, flows.t.reliability={r},"))),
            "{p}/{r}: {stderr}"
        );
    }
    // tables of the 12 valid points (one replication, one flow)
    let runs = common::sim::read_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 12);
    let summary = common::sim::read_csv(&out.join("summary.csv"));
    assert_eq!(summary.len(), 12);
    for r in &summary {
        let pair = (
            r["flows.t.protocol"].as_str(),
            r["flows.t.reliability"].as_str(),
        );
        assert!(!INVALID.contains(&pair), "{pair:?}");
        assert_eq!(r["protocol"], pair.0, "the swept protocol ran");
    }
    // run ids keep their grid positions: the skipped ones are missing
    let mut ids: Vec<u64> = runs
        .iter()
        .map(|r| r["run_id"].parse().expect("run_id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17]);
    let id: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).expect("sweep.json"))
            .expect("json");
    assert_eq!(id["skipped_runs"], serde_json::json!([2, 3, 4, 5, 10, 11]));
    // charts and the report of the valid points
    let charts = listing(&out.join("charts"));
    assert!(
        charts.contains(&"delivery_ratio_vs_links.backhaul.loss.p.svg".to_string()),
        "{charts:?}"
    );
    assert!(out.join("report.html").is_file());
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(m["runs"].as_array().map(Vec::len), Some(12));
    // the end: counts, then the summary table, one line per point and flow
    assert!(
        stdout.contains("sweep: 18 runs in the grid, 12 run now, 0 already done; 6 invalid points (6 runs) skipped"),
        "{stdout}"
    );
    let header = stdout
        .lines()
        .position(|l| l.starts_with("flows.t.protocol") && l.contains("delivery ratio"))
        .unwrap_or_else(|| panic!("no summary table: {stdout}"));
    let table: Vec<&str> = stdout.lines().skip(header + 1).take(12).collect();
    assert!(table[0].starts_with("udp "), "{stdout}");
    assert!(
        table[0].contains("1.0000"),
        "loss 0: all delivered: {stdout}"
    );
    assert!(table[11].starts_with("mqtt "), "{stdout}");
    assert!(stdout
        .lines()
        .nth(header + 13)
        .is_some_and(|l| l.starts_with("results: ")));
    // --quiet: no table, still the warnings
    let quiet = temp_dir("survive-protocols-quiet");
    let (code, stdout, stderr) = run(&[
        "sweep",
        s(&f),
        "--out",
        s(&quiet),
        "--quiet",
        "--pcap-runs",
        "3,6",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.matches(": warning: sweep point ").count(), 6);
    assert!(
        stderr.contains("warning: --pcap-runs 3: that run's point is invalid, so it does not run"),
        "{stderr}"
    );
    assert!(!stderr.contains("--pcap-runs 6"), "{stderr}");
    assert!(quiet.join("runs/6/pcap").is_dir());
    for t in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(out.join(t)).ok() == std::fs::read(quiet.join(t)).ok(),
            "{t} depends on --jobs or --quiet"
        );
    }
}

#[test]
fn check_lists_the_invalid_points_and_an_all_invalid_grid_is_exit_2() {
    let f = protocols_fixture();
    let (code, stdout, stderr) = run(&["check", s(&f)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("sweep: 18 points × 1 replication, 6 points invalid"),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches(": warning: sweep point ").count(),
        6,
        "{stderr}"
    );
    assert!(
        stderr.contains("sweep point 2 (flows.t.protocol=udp, flows.t.reliability=confirmed, links.backhaul.loss.p=0.0) is invalid: field `flows.t.reliability`: reliability \"confirmed\" is not available with protocol \"udp\""),
        "{stderr}"
    );
    // a valid grid: no warning, the grid's size
    let (code, stdout, stderr) = run(&["check", s(&sweep_fixture())]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("sweep point"), "{stderr}");
    assert!(
        stdout.contains("sweep: 3 points × 2 replications\n"),
        "{stdout}"
    );
    // no valid point: check and sweep both refuse it (bad input), nothing runs
    let dir = temp_dir("survive-none");
    let bad = protocols_with(
        &dir,
        r#"[sweep]
axes = [
  { path = "flows.t.protocol", values = ["udp"] },
  { path = "flows.t.reliability", values = ["confirmed", "qos2"] },
]"#,
    );
    let (code, stdout, stderr) = run(&["check", s(&bad)]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("no point of the sweep is valid (2 points)"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("sweep point 1 (flows.t.protocol=udp, flows.t.reliability=qos2) is invalid"),
        "{stderr}"
    );
    let out = dir.join("out");
    let (code, _, stderr) = run(&["sweep", s(&bad), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no point of the sweep is valid (2 points)"),
        "{stderr}"
    );
    assert!(!out.join("runs").exists(), "nothing ran");
}

#[test]
fn axis_groups_step_together_and_cross_the_other_axes() {
    let dir = temp_dir("survive-groups");
    let f = protocols_with(
        &dir,
        r#"[sweep]
replications = 2
axes = [
  { path = "flows.t.protocol", values = ["udp", "coap", "mqtt"], group = "proto" },
  { path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.2] },
  { path = "flows.t.reliability", values = ["best_effort", "con", "qos1"], group = "proto" },
]"#,
    );
    let sc = qossim::scenario::load_file(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
    let runs = expand(&sc);
    assert_eq!(runs.len(), 3 * 3 * 2, "3 pairs × 3 losses × 2 replications");
    let points: Vec<Vec<String>> = runs
        .iter()
        .filter(|r| r.replication == 0)
        .map(|r| r.params.iter().map(|(_, v)| v.clone()).collect())
        .collect();
    // params in axis order; the group (its first axis) is outermost
    let want: Vec<Vec<String>> = [
        ["udp", "0.0", "best_effort"],
        ["udp", "0.1", "best_effort"],
        ["udp", "0.2", "best_effort"],
        ["coap", "0.0", "con"],
        ["coap", "0.1", "con"],
        ["coap", "0.2", "con"],
        ["mqtt", "0.0", "qos1"],
        ["mqtt", "0.1", "qos1"],
        ["mqtt", "0.2", "qos1"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(points, want);
    assert_eq!(runs[0].params[0].0, "flows.t.protocol");
    assert_eq!(runs[0].params[2].0, "flows.t.reliability");
    // the same point has the same seed as in the full cross grid: seeds
    // come from the parameters, not from how the grid is built
    let cross = protocols_with(
        &dir,
        r#"[sweep]
replications = 2
axes = [
  { path = "flows.t.protocol", values = ["udp", "coap", "mqtt"] },
  { path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.2] },
  { path = "flows.t.reliability", values = ["best_effort", "con", "qos1"] },
]"#,
    );
    let cross = expand(&qossim::scenario::load_file(&cross, &[]).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(cross.len(), 27 * 2);
    for r in &runs {
        let twin = cross
            .iter()
            .find(|c| c.params == r.params && c.replication == r.replication)
            .expect("in the cross grid");
        assert_eq!(twin.seed, r.seed);
    }
    // `check` counts the grouped grid's points
    let grouped = protocols_with(
        &dir,
        r#"[sweep]
axes = [
  { path = "flows.t.protocol", values = ["udp", "mqtt"], group = "proto" },
  { path = "flows.t.reliability", values = ["best_effort", "qos2"], group = "proto" },
  { path = "links.backhaul.loss.p", values = [0.0, 0.2] },
]"#,
    );
    let (code, stdout, stderr) = run(&["check", s(&grouped)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("sweep: 4 points × 1 replication\n"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("sweep point"),
        "every pair is valid: {stderr}"
    );
}

#[test]
fn bad_groups_are_errors_at_the_axis() {
    let dir = temp_dir("survive-bad-groups");
    let cases = [
        (
            r#"[sweep]
axes = [
  { path = "flows.t.protocol", values = ["udp", "coap", "mqtt"], group = "proto" },
  { path = "flows.t.reliability", values = ["best_effort", "con"], group = "proto" },
]"#,
            "group \"proto\" steps its axes together, so they need equal lengths: `flows.t.reliability` has 2 values, `flows.t.protocol` 3",
        ),
        (
            r#"[sweep]
mode = "zip"
axes = [
  { path = "flows.t.protocol", values = ["udp", "coap"], group = "proto" },
  { path = "flows.t.reliability", values = ["best_effort", "con"] },
]"#,
            "mode \"zip\" already steps every axis together",
        ),
        (
            r#"[sweep]
axes = [{ path = "flows.t.protocol", values = ["udp"], group = " " }]"#,
            "a group needs a name",
        ),
    ];
    for (sweep, want) in cases {
        let f = protocols_with(&dir, sweep);
        let (code, _, stderr) = run(&["check", s(&f)]);
        assert_eq!(code, 2, "{sweep}: {stderr}");
        assert!(stderr.contains(want), "{sweep}: {stderr}");
        assert!(stderr.contains("field `sweep.axes["), "{stderr}");
    }
}

#[test]
fn grids_without_groups_keep_their_order_and_seeds() {
    // the seeds of tests/fixtures/sweep-small.toml's grid as qossim gave
    // them before axis groups existed (manifest.json of a sweep)
    let sc = qossim::scenario::load_file(&sweep_fixture(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let seeds: Vec<u64> = expand(&sc).iter().map(|r| r.seed).collect();
    assert_eq!(
        seeds,
        [
            1598848112725944775,
            4993893368101930874,
            6195399915922076912,
            6813778375569403258,
            5313813680546553018,
            3966773918897599455
        ]
    );
    // cross and zip of two axes: first axis outermost, seeds from the
    // point's parameters and the replication
    let text = std::fs::read_to_string(protocols_fixture()).expect("fixture");
    let base = &text[..text.find("[sweep]").expect("[sweep]")];
    for (mode, want) in [
        (
            "cross",
            vec![
                ("udp", "0.0"),
                ("udp", "0.3"),
                ("coap", "0.0"),
                ("coap", "0.3"),
            ],
        ),
        ("zip", vec![("udp", "0.0"), ("coap", "0.3")]),
    ] {
        let sc = load_str(
            &format!(
                "{base}[sweep]\nmode = \"{mode}\"\nreplications = 2\naxes = [\n  {{ path = \"flows.t.protocol\", values = [\"udp\", \"coap\"] }},\n  {{ path = \"links.backhaul.loss.p\", values = [0.0, 0.3] }},\n]\n"
            ),
            "test",
            Path::new("."),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let runs = expand(&sc);
        assert_eq!(runs.len(), want.len() * 2, "{mode}");
        for (i, r) in runs.iter().enumerate() {
            let (p, l) = want[i / 2];
            assert_eq!((r.params[0].1.as_str(), r.params[1].1.as_str()), (p, l));
            assert_eq!(r.replication, (i % 2) as u64);
            let key = format!("flows.t.protocol={p};links.backhaul.loss.p={l}");
            let seed = qossim::sim::rng::derive_seed(
                sc.seed,
                qossim::sim::rng::stable_id(&format!("sweep/{key}/rep/{}", r.replication)),
            ) & (i64::MAX as u64);
            assert_eq!(r.seed, seed, "{mode} run {i}");
        }
    }
}

#[test]
fn a_run_failing_at_run_time_is_exit_1_and_the_others_are_written() {
    let out = temp_dir("survive-runtime");
    let f = sweep_fixture();
    let o = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .args(["sweep", s(&f), "--out", s(&out), "--jobs", "2"])
        .env("QOSSIM_TEST_FAIL_RUNS", "1")
        .output()
        .expect("run qossim");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "1 of 6 runs failed (the results of the others are in {}/)",
            out.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "run 1 (point 0: links.backhaul.loss.p=0.0; replication 1): failed by the test hook"
        ),
        "{stderr}"
    );
    // the other five runs' tables, charts and report (2 flows each)
    let runs = common::sim::read_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 5 * 2);
    assert!(runs.iter().all(|r| r["run_id"] != "1"));
    let summary = common::sim::read_csv(&out.join("summary.csv"));
    assert_eq!(summary.len(), 3 * 2, "every point still has a run");
    assert!(out
        .join("charts/delivery_ratio_vs_links.backhaul.loss.p.svg")
        .is_file());
    assert!(out.join("report.html").is_file());
    assert!(stdout.contains("6 run now, 1 failed"), "{stdout}");
    assert!(stdout.contains("delivery ratio"), "the summary: {stdout}");
    // --resume runs the failed one: the same files as an unbroken sweep
    let (code, stdout, stderr) = run(&["sweep", s(&f), "--out", s(&out), "--resume"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 run now, 5 already done"), "{stdout}");
    let clean = temp_dir("survive-runtime-clean");
    common::cli::sweep_ok(&f, &clean, &[]);
    for t in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(out.join(t)).ok() == std::fs::read(clean.join(t)).ok(),
            "{t}"
        );
    }
}

#[test]
fn shards_of_a_grid_with_invalid_points_merge() {
    let f = protocols_fixture();
    let whole = temp_dir("survive-merge-whole");
    let (s1, s2) = (temp_dir("survive-s1"), temp_dir("survive-s2"));
    let merged = temp_dir("survive-merged");
    common::cli::sweep_ok(&f, &whole, &[]);
    common::cli::sweep_ok(&f, &s1, &["--shard", "1/2"]);
    common::cli::sweep_ok(&f, &s2, &["--shard", "2/2"]);
    let (code, out, err) = run(&["merge", s(&s1), s(&s2), "--out", s(&merged)]);
    assert_eq!(code, 0, "{out}{err}");
    for t in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(whole.join(t)).ok() == std::fs::read(merged.join(t)).ok(),
            "{t}"
        );
    }
}

/// Run-only outputs a `qossim run` of the sweep fixture leaves.
const RUN_FILES: [&str; 4] = ["nodes.csv", "links.csv", "events.csv", "timeseries.csv"];

#[test]
fn a_sweep_refuses_a_run_directory_and_force_cleans_it() {
    let f = sweep_fixture();
    let out = temp_dir("survive-stale");
    let (code, _, err) = run(&["run", s(&f), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for n in RUN_FILES {
        assert!(out.join(n).is_file(), "{n}");
    }
    let (code, _, err) = run(&["sweep", s(&f), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{} holds the outputs of `qossim run` of scenario `sweep-small` (",
            out.display()
        )),
        "{err}"
    );
    assert!(err.contains("nodes.csv"), "{err}");
    assert!(err.contains("add --force"), "{err}");
    assert!(out.join("nodes.csv").is_file(), "refused: nothing removed");
    assert!(!out.join("sweep.json").exists());
    // --resume is no way around it
    let (code, _, err) = run(&["sweep", s(&f), "--out", s(&out), "--quiet", "--resume"]);
    assert_eq!(code, 2, "{err}");
    // --force: exactly what a sweep into a clean directory writes
    std::fs::write(out.join("notes.txt"), "mine").expect("write");
    common::cli::sweep_ok(&f, &out, &["--force"]);
    let clean = temp_dir("survive-stale-clean");
    common::cli::sweep_ok(&f, &clean, &[]);
    let mut want = listing(&clean);
    want.push("notes.txt".into());
    want.sort();
    assert_eq!(
        listing(&out),
        want,
        "the user's file stays, no run file does"
    );
    assert_eq!(listing(&out.join("charts")), listing(&clean.join("charts")));
    for t in ["runs.csv", "summary.csv", "messages.csv", "report.html"] {
        assert!(
            std::fs::read(out.join(t)).ok() == std::fs::read(clean.join(t)).ok(),
            "{t}"
        );
    }
    // the same scenario again, and --resume, are still fine
    common::cli::sweep_ok(&f, &out, &[]);
    common::cli::sweep_ok(&f, &out, &["--resume"]);
}

#[test]
fn a_run_refuses_a_sweep_directory_and_force_cleans_it() {
    let f = sweep_fixture();
    let out = temp_dir("survive-run-into-sweep");
    common::cli::sweep_ok(&f, &out, &[]);
    let (code, _, err) = run(&["run", s(&f), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a sweep of scenario `sweep-small` ("),
        "{err}"
    );
    assert!(err.contains("sweep.json"), "{err}");
    assert!(out.join("runs").is_dir(), "refused: nothing removed");
    let (code, _, err) = run(&["run", s(&f), "--out", s(&out), "--quiet", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("sweep.json").exists());
    assert!(!out.join("runs").exists());
    assert!(out.join("nodes.csv").is_file());
    // a run of the same scenario again is fine; of another one, refused
    let (code, _, err) = run(&["run", s(&f), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let other = protocols_fixture();
    let (code, _, err) = run(&["run", s(&other), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds the outputs of `qossim run` of scenario `sweep-small`"),
        "{err}"
    );
}

#[test]
fn a_sweep_refuses_another_scenarios_sweep_and_force_replaces_it() {
    let out = temp_dir("survive-other-sweep");
    common::cli::sweep_ok(&sweep_fixture(), &out, &[]);
    let f = protocols_fixture();
    let (code, _, err) = run(&["sweep", s(&f), "--out", s(&out), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a sweep of scenario `sweep-small` (")
            && err.contains("a sweep of scenario `sweep-protocols` would mix"),
        "{err}"
    );
    let (code, _, err) = run(&["sweep", s(&f), "--out", s(&out), "--quiet", "--force"]);
    assert_eq!(code, 0, "{err}");
    let id = std::fs::read_to_string(out.join("sweep.json")).expect("sweep.json");
    assert!(id.contains("\"sweep-protocols\""), "{id}");
    assert_eq!(common::sim::read_csv(&out.join("runs.csv")).len(), 12);
    // --force and --resume contradict each other
    let (code, _, err) = run(&["sweep", s(&f), "--out", s(&out), "--force", "--resume"]);
    assert_eq!(code, 2, "{err}");
}

/// `--deny-warnings`: skipped points are warnings, so the sweep (and
/// `check`) refuse the grid with exit 2 and run nothing.
#[test]
fn deny_warnings_refuses_a_grid_with_invalid_points() {
    let out = temp_dir("survive-deny");
    let f = protocols_fixture();
    let (code, _, stderr) = run(&["check", s(&f), "--deny-warnings"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: 6 warning(s) and --deny-warnings"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "sweep",
        s(&f),
        "--out",
        s(&out),
        "--quiet",
        "--deny-warnings",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: 6 warning(s) and --deny-warnings"),
        "{stderr}"
    );
    assert!(!out.join("runs.csv").exists());
}
