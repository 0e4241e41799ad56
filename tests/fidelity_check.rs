//! scripts/fidelity_check.py, the reduced fidelity harness's verdict in
//! scripts/test.sh: a bound fails the stage when it missed in every run
//! given, and only then; a p90 miss of at most 0.5 ms (host time) holds.

mod common;
use common::temp_dir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn checks(dir: &Path, name: &str, p90_ok: bool, bytes_ok: bool) -> PathBuf {
    let p = dir.join(name);
    let body = format!(
        r#"{{"coap-con:10": {{"checks": [["bytes", {bytes_ok}, "all sizes equal"], ["p90", {p90_ok}, "1.2 in [0.4, 1.0]"]]}},
"coap-con:0": {{"checks": [["p50", true, "0.11 vs 0.12"]]}}}}"#
    );
    std::fs::write(&p, body).unwrap();
    p
}

/// Run `python3 scripts/<script> args…`: (exit code, stdout, stderr).
fn script(script: &str, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(script),
        )
        .args(args)
        .output()
        .expect("python3");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// scripts/fidelity_check.py over `files`: (exit code, stdout).
fn run(files: &[&Path]) -> (i32, String) {
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let (code, out, _) = script("fidelity_check.py", &args);
    (code, out)
}

#[test]
fn a_bound_fails_only_when_it_missed_in_every_run() {
    let d = temp_dir("fidcheck");
    let good = checks(&d, "good.json", true, true);
    let p90_miss = checks(&d, "p90.json", false, true);
    let bytes_miss = checks(&d, "bytes.json", true, false);

    let (code, out) = run(&[&good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 of 3 bounds hold"), "{out}");

    let (code, out) = run(&[&p90_miss]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("coap-con:10") && out.contains("FAIL"), "{out}");

    // a chance miss, not repeated in the second run
    let (code, out) = run(&[&p90_miss, &good]);
    assert_eq!(code, 0, "{out}");

    // the same bound missing in both runs fails
    let (code, _) = run(&[&p90_miss, &p90_miss]);
    assert_eq!(code, 1);
    // different bounds missing in each run: each held once
    let (code, _) = run(&[&p90_miss, &bytes_miss]);
    assert_eq!(code, 0);

    // the third run of scripts/test.sh: a bound missed twice and held
    // once holds; missed three times it fails
    let (code, _) = run(&[&p90_miss, &p90_miss, &good]);
    assert_eq!(code, 0);
    let (code, _) = run(&[&p90_miss, &p90_miss, &p90_miss]);
    assert_eq!(code, 1);

    // unreadable input is a usage error, not a pass
    let (code, _) = run(&[&d.join("absent.json")]);
    assert_eq!(code, 2);
    std::fs::write(d.join("empty.json"), "{}").unwrap();
    let (code, _) = run(&[&d.join("empty.json")]);
    assert_eq!(code, 1);
}

/// The p90 bound's 0.5 ms slack: host-time p90s a fraction of a ms outside
/// the simulated range hold; a TCP loss tail far outside does not.
#[test]
fn p90_misses_within_half_a_millisecond_hold() {
    let d = temp_dir("fidcheck-slack");
    let write = |name: &str, real: f64, lo: f64, hi: f64| {
        let p = d.join(name);
        std::fs::write(
            &p,
            format!(
                r#"{{"coap-non:10": {{"checks": [["p90", false, "x", {{"real": {real}, "lo": {lo}, "hi": {hi}}}]]}}}}"#
            ),
        )
        .unwrap();
        p
    };
    let host = write("host.json", 0.22, 0.15, 0.15);
    let (code, out) = run(&[&host]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("slack"), "{out}");
    let below = write("below.json", 0.0, 0.6, 0.7);
    assert_eq!(run(&[&below]).0, 1);
    let tail = write("tail.json", 1042.7, 124.3, 608.1);
    assert_eq!(run(&[&tail]).0, 1);
    // a bound other than p90 gets no slack
    let p = d.join("p50.json");
    std::fs::write(
        &p,
        r#"{"mqtt-qos0:0": {"checks": [["p50", false, "x", {"real": 0.2, "lo": 0.1, "hi": 0.1}]]}}"#,
    )
    .unwrap();
    assert_eq!(run(&[&p]).0, 1);
}

/// A documented known gap (MQTT's p90 at 10 %, docs/fidelity.md) is
/// printed as such and does not fail; the same miss in a CoAP cell does.
#[test]
fn known_gaps_are_reported_not_failing() {
    let d = temp_dir("fidcheck-gap");
    let p = d.join("gap.json");
    std::fs::write(
        &p,
        r#"{"mqtt-qos0:10": {"checks": [["bytes", true, ""], ["p90", false, "4133.3 in [122.5, 1317.8]", {"real": 4133.3, "lo": 122.5, "hi": 1317.8}]]}}"#,
    )
    .unwrap();
    let (code, out) = run(&[&p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("GAP") && out.contains("known gap"), "{out}");
    let q = d.join("coap.json");
    std::fs::write(
        &q,
        r#"{"coap-con:10": {"checks": [["p90", false, "x", {"real": 4133.3, "lo": 122.5, "hi": 1317.8}]]}}"#,
    )
    .unwrap();
    assert_eq!(run(&[&q]).0, 1);
}

/// scripts/fidelity_twin_times.py: (exit code, stdout, stderr).
fn twin_times(args: &[&str]) -> (i32, String, String) {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    script("fidelity_twin_times.py", &args)
}

/// A calibration as scripts/calibrate-processing.sh --json writes it, for
/// a host slower than the one that measured the twins' shipped times.
fn slow_host(dir: &Path) -> PathBuf {
    let p = dir.join("calibration.json");
    let m = |n: u32, p50: f64, p90: f64| {
        format!(r#"{{"name": "x", "n": {n}, "p50": {p50}, "p90": {p90}}}"#)
    };
    std::fs::write(
        &p,
        format!(
            r#"{{"samples": 100, "period_s": 0.1, "measurements": {{"ping": {}, "syn": {}, "broker_puback": {}, "broker_copy": {}, "paho_tx": {}, "paho_rx": {}, "paho_e2e": {}, "coap_server": {}}}}}"#,
            m(100, 0.1, 0.12),
            m(100, 0.04, 0.048),
            m(100, 0.12, 0.15),
            m(100, 0.1, 0.132),
            m(100, 0.5, 0.58),
            m(100, 0.45, 0.45),
            m(100, 1.2, 1.4),
            m(100, 0.2, 0.24),
        ),
    )
    .unwrap();
    p
}

/// The fidelity harness calibrates the twins to the host that runs the
/// real cells (docs/fidelity.md "In CI"): the per-stage times become
/// `--set` assignments with the measured median and p90, and the twin run
/// with them takes the sum of those stages as its latency at 0 % loss.
#[test]
fn a_calibration_sets_the_twins_processing_times() {
    let d = temp_dir("fidcal");
    let cal = slow_host(&d);
    let cal_s = cal.to_str().unwrap();
    let (code, mqtt, err) = twin_times(&[cal_s, "mqtt"]);
    assert_eq!(code, 0, "{err}");
    // kernel = SYN → SYN-ACK / 2: median 20 µs, p90 24 µs → d = 5 µs;
    // mosquitto's service = copy − 2 × 20 µs: median 60 µs, p90 92 µs;
    // paho's rx has p90 = median: a constant
    assert_eq!(
        mqtt.lines().collect::<Vec<_>>(),
        [
            "processing.broker.stack_tx=uniform(15000 ns, 25000 ns)",
            "processing.broker.stack_rx=uniform(15000 ns, 25000 ns)",
            "processing.broker.service=uniform(20000 ns, 100000 ns)",
            "processing.client.stack_tx=uniform(400000 ns, 600000 ns)",
            "processing.client.stack_rx=450000 ns",
        ]
    );
    let (code, coap, _) = twin_times(&[cal_s, "coap"]);
    assert_eq!(code, 0);
    assert!(
        coap.contains("processing.server.service=uniform(110000 ns, 210000 ns)")
            && coap.contains("processing.client.stack_tx=uniform(15000 ns, 25000 ns)"),
        "{coap}"
    );
    let (code, line, _) = twin_times(&[cal_s, "--describe"]);
    assert_eq!(code, 0);
    assert!(
        line.contains("uniform(400.0–600.0 µs)") && line.contains("100 samples every 100 ms"),
        "{line}"
    );

    // the twin accepts them, and they are what its latency is made of:
    // 500 + 20 + 60 + 20 + 450 µs plus TCP and link time ≈ 1.05 ms, where
    // the shipped (calibration machine's) times give about 0.44 ms
    let p50 = |extra: &[String]| {
        let out = d.join(format!("run{}", extra.len()));
        let mut args: Vec<String> = [
            "run",
            "scenarios/fidelity/mqtt-qos0.toml",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "flows.fid.count=50",
            "--set",
            "duration=10 s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for s in extra {
            args.push("--set".into());
            args.push(s.clone());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = common::cli::run(&argv);
        assert_eq!(code, 0, "{err}");
        let rows = common::sim::read_csv(&out.join("runs.csv"));
        rows[0]["latency_ms_p50"].parse::<f64>().unwrap()
    };
    let sets: Vec<String> = mqtt.lines().map(str::to_string).collect();
    let shipped = p50(&[]);
    let calibrated = p50(&sets);
    assert!((0.35..0.55).contains(&shipped), "shipped {shipped}");
    assert!((0.95..1.2).contains(&calibrated), "calibrated {calibrated}");
}

/// A calibration missing a measurement is an error naming it, never a
/// silent fallback to the shipped times.
#[test]
fn a_calibration_without_a_measurement_is_an_error() {
    let d = temp_dir("fidcal-missing");
    let cal = slow_host(&d);
    let text = std::fs::read_to_string(&cal).unwrap().replace(
        r#""paho_tx": {"name": "x", "n": 100"#,
        r#""paho_tx": {"name": "x", "n": 0"#,
    );
    std::fs::write(&cal, text).unwrap();
    let (code, out, err) = twin_times(&[cal.to_str().unwrap(), "mqtt"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("paho_tx"), "{err}");
    // the CoAP twin needs no paho measurement
    assert_eq!(twin_times(&[cal.to_str().unwrap(), "coap"]).0, 0);
    let (code, _, err) = twin_times(&[d.join("absent.json").to_str().unwrap(), "mqtt"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

/// A miss names the loss its real run achieved per direction (`loss_real`
/// of checks.json), so a CI log tells a loss draw from a model difference;
/// a bound that holds does not print it, and files without it still work.
#[test]
fn a_miss_prints_the_real_runs_achieved_loss() {
    let d = temp_dir("fidcheck-loss");
    let p = d.join("loss.json");
    std::fs::write(
        &p,
        r#"{"coap-con:10": {"checks": [["bytes", true, ""], ["con-retx", false, "18 in [4, 17]"]],
"loss_real": [0.1406, 0.0912]},
"coap-non:10": {"checks": [["bytes", true, ""]], "loss_real": [0.1, 0.02]}}"#,
    )
    .unwrap();
    let (code, out) = run(&[&p]);
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains("con-retx")).unwrap();
    assert!(line.contains("(real loss 14.1/9.1 %)"), "{out}");
    assert!(!out.contains("10.0/2.0"), "{out}");
}
