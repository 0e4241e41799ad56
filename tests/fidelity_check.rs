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

fn run(files: &[&Path]) -> (i32, String) {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fidelity_check.py"))
        .args(files)
        .output()
        .expect("python3");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
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
