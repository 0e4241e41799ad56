//! `qossim sweep`, `--resume`, `--shard` + `merge`: results never depend on
//! scheduling, interruption or splitting.

mod common;
use common::cli::{qossim, sweep_fixture as fixture};
use common::temp_dir;
use std::path::Path;
use std::process::{Command, Stdio};

fn sweep(out: &Path, extra: &[&str]) {
    common::cli::sweep_ok(&fixture(), out, extra);
}

const TABLES: [&str; 3] = ["runs.csv", "summary.csv", "messages.csv"];

fn assert_same(a: &Path, b: &Path) {
    let mut charts: Vec<String> = std::fs::read_dir(a.join("charts"))
        .expect("charts dir")
        .map(|e| format!("charts/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    charts.sort();
    assert!(charts.len() >= 10, "{charts:?}");
    for f in TABLES.iter().map(|s| s.to_string()).chain(charts) {
        let f = f.as_str();
        let x = std::fs::read(a.join(f)).unwrap_or_else(|e| panic!("{}: {e}", a.join(f).display()));
        let y = std::fs::read(b.join(f)).unwrap_or_else(|e| panic!("{}: {e}", b.join(f).display()));
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn no_tmp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            no_tmp_files(&p);
        } else {
            assert!(
                !p.to_string_lossy().ends_with(".tmp"),
                "temp file left: {}",
                p.display()
            );
        }
    }
}

#[test]
fn jobs_1_and_jobs_2_give_identical_files() {
    let a = temp_dir("sweep-j1");
    let b = temp_dir("sweep-j2");
    sweep(&a, &["--jobs", "1"]);
    sweep(&b, &["--jobs", "2"]);
    assert_same(&a, &b);
    let runs = common::sim::read_csv(&a.join("runs.csv"));
    assert_eq!(runs.len(), 3 * 2 * 2, "3 points × 2 replications × 2 flows");
    let summary = common::sim::read_csv(&a.join("summary.csv"));
    assert_eq!(summary.len(), 3 * 2, "3 points × 2 flows");
    assert!(summary
        .iter()
        .all(|r| r["runs"] == "2" && !r["delivery_ratio_ci95"].is_empty()));
    // seeds differ between replications and points
    let mut seeds: Vec<&String> = runs.iter().map(|r| &r["seed"]).collect();
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), 6);
    // the loss axis is a column and drives delivery
    let udp = |p: &str| {
        summary
            .iter()
            .find(|r| r["flow"] == "udp" && r["links.backhaul.loss.p"] == p)
            .map(|r| r["delivery_ratio"].parse::<f64>().unwrap_or(f64::NAN))
            .unwrap_or(f64::NAN)
    };
    assert_eq!(udp("0.0"), 1.0);
    assert!(udp("0.3") < 0.8 && udp("0.3") > 0.6, "{}", udp("0.3"));
    no_tmp_files(&a);
}

#[test]
fn two_shards_merged_equal_the_whole_sweep() {
    let whole = temp_dir("sweep-whole");
    let s1 = temp_dir("sweep-s1");
    let s2 = temp_dir("sweep-s2");
    let merged = temp_dir("sweep-merged");
    sweep(&whole, &[]);
    sweep(&s1, &["--shard", "1/2"]);
    sweep(&s2, &["--shard", "2/2"]);
    assert!(
        !s1.join("runs.csv").exists(),
        "a shard alone writes no combined tables"
    );
    let (code, text) = qossim(&[
        "merge",
        s1.to_str().expect("utf-8"),
        s2.to_str().expect("utf-8"),
        "--out",
        merged.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_same(&whole, &merged);
    // one shard is not enough
    let lone = temp_dir("sweep-lone");
    let (code, text) = qossim(&[
        "merge",
        s1.to_str().expect("utf-8"),
        "--out",
        lone.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("in none of the shard directories"), "{text}");
}

#[test]
fn shards_of_different_scenarios_are_refused() {
    let s1 = temp_dir("sweep-m1");
    let s2 = temp_dir("sweep-m2");
    sweep(&s1, &["--shard", "1/2"]);
    sweep(&s2, &["--shard", "2/2", "--set", "duration=\"1 min\""]);
    let out = temp_dir("sweep-m-out");
    let (code, text) = qossim(&[
        "merge",
        s1.to_str().expect("utf-8"),
        s2.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot combine"), "{text}");
}

/// Where the sweep is when the test kills it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum KillAt {
    /// Run `done` is being simulated: its fragment exists without `rows.csv`.
    MidRun,
    /// `done` runs have committed and the next one has not started (the
    /// sweep waits after each run through its test hook).
    BetweenRuns,
}

fn complete_runs(out: &Path) -> usize {
    (0..6)
        .filter(|i| out.join(format!("runs/{i}/rows.csv")).exists())
        .count()
}

/// Start a sweep with one job, SIGKILL it at `at` after `done` runs have
/// committed, check the state it left, resume it with two jobs and compare
/// with an uninterrupted sweep.
fn kill_and_resume(tag: &str, done: usize, at: KillAt) {
    // three simulated hours per run (~0.1 s of wall time) leave room to kill
    let long = "duration=\"3 h\"";
    let reference = temp_dir(&format!("{tag}-ref"));
    sweep(&reference, &["--jobs", "1", "--set", long]);
    let out = temp_dir(tag);
    let f = fixture();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qossim"));
    cmd.args([
        "sweep",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
        "--jobs",
        "1",
        "--set",
        long,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if at == KillAt::BetweenRuns {
        cmd.env("QOSSIM_TEST_PAUSE_AFTER_RUN_MS", "5000");
    }
    let mut child = cmd.spawn().expect("spawn");
    let partial = out.join(format!("runs/{done}"));
    let ready = || match at {
        KillAt::MidRun => complete_runs(&out) == done && partial.is_dir(),
        KillAt::BetweenRuns => complete_runs(&out) == done,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "the sweep finished before it could be interrupted"
    );
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert_eq!(complete_runs(&out), done, "runs complete at the kill");
    match at {
        // a partial fragment: the run was cut short
        KillAt::MidRun => assert!(
            partial.is_dir() && !partial.join("rows.csv").exists(),
            "killed mid-run"
        ),
        // nothing of the next run yet
        KillAt::BetweenRuns => assert!(!partial.exists(), "killed between runs"),
    }
    assert!(!out.join("runs.csv").exists(), "killed before combining");
    sweep(&out, &["--resume", "--jobs", "2", "--set", long]);
    assert_same(&reference, &out);
    no_tmp_files(&out);
}

#[test]
fn killed_during_the_first_run_then_resumed_is_identical() {
    kill_and_resume("sweep-kill0", 0, KillAt::MidRun);
}

#[test]
fn killed_during_a_later_run_then_resumed_is_identical() {
    kill_and_resume("sweep-kill4", 4, KillAt::MidRun);
}

#[test]
fn killed_between_runs_then_resumed_is_identical() {
    kill_and_resume("sweep-kill-between", 2, KillAt::BetweenRuns);
}

#[test]
fn resume_refuses_a_directory_of_another_scenario() {
    let out = temp_dir("sweep-refuse");
    sweep(&out, &[]);
    let f = fixture();
    let (code, text) = qossim(&[
        "sweep",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--resume",
        "--quiet",
        "--set",
        "seed=9",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--resume refused"), "{text}");
}

#[test]
fn ci95_is_the_student_t_half_width() {
    // hand-made runs.csv: one point, three replications with delivery 0.8, 0.9, 1.0
    let header = format!(
        "run_id,scenario,seed,replication,protocol,reliability,flow,pattern,{}",
        qossim::metrics::summary::METRIC_COLUMNS.join(",")
    );
    let mut text = header + "\n";
    for (i, ratio) in ["0.800000", "0.900000", "1.000000"].iter().enumerate() {
        let mut cells = vec!["0"; qossim::metrics::summary::METRIC_COLUMNS.len()];
        cells[4] = ratio;
        text += &format!(
            "{i},s,{i},{i},udp,best_effort,f,fan_in,{}\n",
            cells.join(",")
        );
    }
    let rows = qossim::metrics::summary::read_runs(text.as_bytes()).expect("parse");
    let mut out = Vec::new();
    qossim::metrics::summary::write_summary(&rows, &mut out).expect("summary");
    let out = String::from_utf8(out).expect("utf-8");
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("row").split(',').collect();
    let col = |n: &str| row[head.iter().position(|h| *h == n).expect(n)];
    // mean 0.9, s = 0.1, t(0.975, 2) = 4.302653, half-width = 4.302653 · 0.1 / √3
    let expected = 4.302_652_729_749_464 * 0.1 / 3f64.sqrt();
    let got: f64 = col("delivery_ratio_ci95").parse().expect("number");
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    assert_eq!(col("delivery_ratio"), "0.900000");
    assert_eq!(col("runs"), "3");
}

#[test]
fn pcap_runs_writes_captures_for_the_chosen_runs_only() {
    let out = temp_dir("sweep-pcap");
    sweep(&out, &["--pcap-runs", "0,3"]);
    for (id, want) in [(0, true), (1, false), (3, true), (5, false)] {
        let dir = out.join(format!("runs/{id}/pcap"));
        assert_eq!(dir.is_dir(), want, "run {id}");
        assert_eq!(
            out.join(format!("runs/{id}/packets.csv")).is_file(),
            want,
            "run {id}"
        );
        if want {
            let n = std::fs::read_dir(&dir).expect("pcap dir").count();
            assert_eq!(n, 7, "one pcap per link");
        }
    }
    // the tables do not depend on which runs captured packets
    let plain = temp_dir("sweep-nopcap");
    sweep(&plain, &[]);
    assert_same(&out, &plain);
}

#[test]
fn an_invalid_point_is_skipped_with_a_warning_and_the_others_still_run() {
    let f = fixture();
    let text = std::fs::read_to_string(&f)
        .expect("fixture")
        .replace("values = [0.0, 0.1, 0.3]", "values = [0.0, 1.5, 0.3]");
    let dir = temp_dir("sweep-fail");
    let scenario = dir.join("bad-point.toml");
    std::fs::write(&scenario, text).expect("write");
    let out = dir.join("out");
    let (code, msg) = qossim(&[
        "sweep",
        scenario.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{msg}");
    assert!(
        msg.contains("warning: sweep point 1 (links.backhaul.loss.p=1.5) is invalid"),
        "{msg}"
    );
    // the other points' runs completed and were combined
    let done: Vec<u64> = (0..6)
        .filter(|i| out.join(format!("runs/{i}/rows.csv")).exists())
        .collect();
    assert_eq!(done, [0, 1, 4, 5]);
    let runs = common::sim::read_csv(&out.join("runs.csv"));
    assert_eq!(runs.len(), 4 * 2);
}

/// `sweep --check` runs the spec-oracle monitors in every run: each
/// runs.csv row has a `violations` count (empty without the flag), the
/// fragments' violations.csv files are combined into one (shards merged
/// the same as a whole sweep), and resuming without the flag is refused.
#[test]
fn check_fills_violations_and_combines_violations_csv() {
    let whole = temp_dir("sweep-check");
    sweep(&whole, &["--check"]);
    let runs = std::fs::read_to_string(whole.join("runs.csv")).expect("runs.csv");
    let mut lines = runs.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = header
        .iter()
        .position(|c| *c == "violations")
        .expect("violations column");
    let mut n = 0;
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        assert!(cells[at].parse::<u64>().is_ok(), "{l}");
        n += 1;
    }
    assert!(n >= 2, "{runs}");
    let v = std::fs::read_to_string(whole.join("violations.csv")).expect("violations.csv");
    assert!(
        v.starts_with("run_id,t_ms,node,rule,clause,detail\n"),
        "{v}"
    );
    assert_eq!(v.matches("run_id,").count(), 1, "one header: {v}");
    // shards merged give the same files
    let s1 = temp_dir("sweep-check-s1");
    let s2 = temp_dir("sweep-check-s2");
    let merged = temp_dir("sweep-check-merged");
    sweep(&s1, &["--check", "--shard", "1/2"]);
    sweep(&s2, &["--check", "--shard", "2/2"]);
    let (code, text) = qossim(&[
        "merge",
        s1.to_str().expect("utf-8"),
        s2.to_str().expect("utf-8"),
        "--out",
        merged.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_same(&whole, &merged);
    assert_eq!(
        std::fs::read(merged.join("violations.csv")).expect("merged violations.csv"),
        v.as_bytes()
    );
    // without the flag: empty cells, no file; a resume across the flag is
    // refused
    let (code, text) = qossim(&[
        "sweep",
        fixture().to_str().expect("utf-8"),
        "--out",
        whole.to_str().expect("utf-8"),
        "--resume",
        "--quiet",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--resume refused"), "{text}");
    let off = temp_dir("sweep-check-off");
    sweep(&off, &[]);
    assert!(!off.join("violations.csv").exists());
    let runs = std::fs::read_to_string(off.join("runs.csv")).expect("runs.csv");
    for l in runs.lines().skip(1) {
        assert_eq!(l.split(',').nth(at), Some(""), "{l}");
    }
}
