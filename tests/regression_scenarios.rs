//! `scenarios/regression/`: every scenario's expectations hold as shipped
//! (through the library's `cli::test` and the `qossim test` binary), the
//! files cover every protocol, each contains the loss or event its
//! expectations depend on, and the override named in its
//! `# fails-with: PATH=VALUE` header makes at least one expectation fail
//! (exit 1).

mod common;
use common::temp_dir;
use qossim::scenario::model::{LossSpec, Protocol, Reliability};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios/regression"))
        .expect("scenarios/regression/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// The `# fails-with: PATH=VALUE` line of a file's header.
fn fails_with(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# fails-with: "))
        .unwrap_or_else(|| {
            panic!(
                "{}: no `# fails-with: PATH=VALUE` header line",
                path.display()
            )
        })
        .trim()
        .to_string()
}

fn qossim_test(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .current_dir(root())
        .arg("test")
        .args(args)
        .output()
        .expect("run qossim");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn all_hold_as_shipped_through_the_cli() {
    let out = temp_dir("regression-cli");
    let junit = out.join("junit.xml");
    let (code, text) = qossim_test(&[
        "scenarios/regression/",
        "--out",
        out.join("r").to_str().expect("utf-8"),
        "--junit",
        junit.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    let n = files().len();
    assert!(n >= 8, "only {n} regression scenarios");
    assert!(text.contains(&format!("in {n} scenarios")), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert_eq!(xml.matches("<testsuite ").count(), n, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn all_hold_as_shipped_through_the_library() {
    let out = temp_dir("regression-lib");
    let req = qossim::cli::TestRequest {
        paths: vec![root().join("scenarios/regression")],
        out: Some(out),
        quiet: true,
        ..Default::default()
    };
    if let Err(e) = qossim::cli::test(&req) {
        panic!("exit {}: {e}", e.exit_code());
    }
}

#[test]
fn every_protocol_is_covered_and_every_file_has_its_fault() {
    let mut seen: Vec<(Protocol, Reliability, bool)> = Vec::new();
    for f in files() {
        let sc = qossim::scenario::load_file(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !sc.expectations.is_empty(),
            "{}: no [[expect]]",
            f.display()
        );
        let lossy = sc.links.iter().any(|l| l.loss != LossSpec::None);
        assert!(
            lossy || !sc.events.is_empty(),
            "{}: neither a lossy link nor an event",
            f.display()
        );
        fails_with(&f);
        for fl in &sc.flows {
            seen.push((
                fl.protocol,
                fl.reliability,
                fl.coap_mode == qossim::scenario::model::CoapMode::Get,
            ));
        }
    }
    let has = |p: Protocol, r: Option<Reliability>, get: bool| {
        seen.iter()
            .any(|(sp, sr, sg)| *sp == p && r.is_none_or(|r| r == *sr) && (!get || *sg))
    };
    assert!(has(Protocol::Udp, None, false), "udp");
    assert!(
        has(Protocol::Coap, Some(Reliability::Con), false),
        "coap CON"
    );
    assert!(
        has(Protocol::Coap, Some(Reliability::Non), false),
        "coap NON"
    );
    assert!(has(Protocol::Coap, None, true), "coap GET");
    assert!(has(Protocol::Tcp, None, false), "tcp");
    assert!(
        has(Protocol::Mqtt, Some(Reliability::Qos0), false),
        "mqtt QoS 0"
    );
    assert!(
        has(Protocol::Mqtt, Some(Reliability::Qos1), false),
        "mqtt QoS 1"
    );
    assert!(
        has(Protocol::Mqtt, Some(Reliability::Qos2), false),
        "mqtt QoS 2"
    );
    assert!(has(Protocol::Mqttsn, None, false), "mqtt-sn");
}

#[test]
fn each_fails_with_override_fails_an_expectation() {
    let out = temp_dir("regression-fails");
    for f in files() {
        let set = fails_with(&f);
        let rel = f.strip_prefix(root()).expect("under root");
        let (code, text) = qossim_test(&[
            rel.to_str().expect("utf-8"),
            "--set",
            &set,
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 1, "{} with --set {set}: {text}", rel.display());
        assert!(
            text.contains("FAIL"),
            "{} with --set {set}: {text}",
            rel.display()
        );
    }
}

/// A mutated variant of the protocol code (a hidden knob on the loaded
/// scenario, unreachable from scenario files) turns `qossim test
/// scenarios/regression/` red: the same loading and running `qossim test`
/// does, with the knob set on every scenario, fails a `violations`
/// expectation whose scenario's violations.csv names `rule`.
fn assert_mutant_turns_the_suite_red(
    tag: &str,
    mutate: fn(&mut qossim::scenario::model::Scenario),
    rule: &str,
) {
    use qossim::cli::testcmd::{collect_files, load_scenarios, run_all, table};
    let files = collect_files(&[root().join("scenarios/regression")]).expect("files");
    let mut scenarios = load_scenarios(&files, &[]).expect("load");
    for (_, sc) in &mut scenarios {
        mutate(sc);
    }
    let out = temp_dir(&format!("regression-mutant-{tag}"));
    let results = run_all(&scenarios, &out, false).expect("run");
    let text = table(&results);
    let failing: Vec<_> = results
        .iter()
        .filter(|r| {
            r.evaluation
                .verdicts()
                .iter()
                .any(|v| !v.pass && v.label.contains("violation"))
        })
        .collect();
    assert!(!failing.is_empty(), "{tag}: the suite stayed green\n{text}");
    // the failing expectation names its measured count, and the monitors'
    // file of that scenario names the rule
    let mut named = false;
    for r in &failing {
        // the results directory `qossim test` chose: the path's last
        // component names it
        let stem = r.path.file_stem().expect("stem").to_string_lossy();
        let dir = std::fs::read_dir(&out)
            .expect("results")
            .map(|e| e.expect("entry").path())
            .find(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&format!("__{stem}")))
            })
            .unwrap_or_else(|| panic!("{tag}: no results directory for {stem}"));
        let v = std::fs::read_to_string(dir.join("violations.csv"))
            .unwrap_or_else(|e| panic!("{tag}: {stem}: {e}"));
        named |= v.lines().skip(1).any(|l| l.contains(&format!(",{rule},")));
    }
    assert!(named, "{tag}: no violations.csv row names {rule}\n{text}");
    for r in &failing {
        for v in r
            .evaluation
            .verdicts()
            .iter()
            .filter(|v| !v.pass && v.label.contains("violation"))
        {
            assert!(
                v.measured.parse::<f64>().is_ok_and(|m| m > 0.0),
                "{tag}: {}: measured {:?}",
                v.label,
                v.measured
            );
        }
    }
}

#[test]
fn a_broker_forgetting_qos2_ids_turns_the_suite_red() {
    assert_mutant_turns_the_suite_red(
        "mqtt",
        |sc| sc.protocols.mqtt.mutant_forget_qos2 = true,
        "mqtt-qos2-exactly-once",
    );
}

#[test]
fn a_coap_server_without_dedup_turns_the_suite_red() {
    assert_mutant_turns_the_suite_red(
        "coap",
        |sc| sc.protocols.coap.mutant_no_dedup = true,
        "coap-con-dedup",
    );
}

#[test]
fn a_tcp_receiver_delivering_out_of_order_turns_the_suite_red() {
    assert_mutant_turns_the_suite_red(
        "tcp",
        |sc| sc.protocols.tcp.mutant_deliver_out_of_order = true,
        "tcp-stream-order",
    );
}

/// `qossim test --check` runs the monitors in a scenario whose
/// expectations do not read `violations`: its results gain violations.csv
/// and a filled runs.csv column; without `--check` neither.
#[test]
fn test_check_runs_the_monitors_everywhere() {
    for (check, tag) in [
        (true, "regression-check-on"),
        (false, "regression-check-off"),
    ] {
        let out = temp_dir(tag);
        let mut args = vec![
            "scenarios/regression/tcp-link-down.toml",
            "--out",
            out.to_str().expect("utf-8"),
        ];
        if check {
            args.push("--check");
        }
        let (code, text) = qossim_test(&args);
        assert_eq!(code, 0, "{text}");
        let dir = out.join("scenarios__regression__tcp-link-down");
        assert_eq!(
            dir.join("violations.csv").exists(),
            check,
            "{}",
            dir.display()
        );
        let runs = std::fs::read_to_string(dir.join("runs.csv")).expect("runs.csv");
        let mut lines = runs.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        assert_eq!(header.last(), Some(&"violations"));
        let row: Vec<&str> = lines.next().expect("row").split(',').collect();
        assert_eq!(*row.last().expect("cell"), if check { "0" } else { "" });
    }
}

#[test]
fn a_broker_skipping_qos1_subscribers_turns_the_suite_red() {
    assert_mutant_turns_the_suite_red(
        "mqtt-qos1",
        |sc| sc.protocols.mqtt.mutant_skip_qos1 = true,
        "mqtt-qos1-at-least-once",
    );
}

/// Every `# fails-with:` line of a file's header, one variant each: its
/// words are `PATH=VALUE` overrides or `mutant:<name>` (a hidden knob of
/// the loaded scenario, see `apply_mutant`).
fn variants(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# fails-with: "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Set the mutant knob `name` (the test-only broken variants of
/// docs/checks.md).
fn apply_mutant(sc: &mut qossim::scenario::model::Scenario, name: &str) {
    match name {
        "mqtt-forget-qos2" => sc.protocols.mqtt.mutant_forget_qos2 = true,
        "mqtt-skip-qos1" => sc.protocols.mqtt.mutant_skip_qos1 = true,
        "coap-no-dedup" => sc.protocols.coap.mutant_no_dedup = true,
        "tcp-out-of-order" => sc.protocols.tcp.mutant_deliver_out_of_order = true,
        other => panic!("unknown mutant {other:?}"),
    }
}

/// Each expectation of every regression scenario fails under at least one
/// of the variants its file's header names (an override or a mutant): no
/// expectation there that nothing could make false.
#[test]
fn every_expectation_fails_under_a_header_variant() {
    use qossim::cli::testcmd::{load_scenarios, run_all};
    let out = temp_dir("regression-variants");
    let mut missing = Vec::new();
    for (k, f) in files().into_iter().enumerate() {
        let sc = qossim::scenario::load_file(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
        let all: Vec<String> = sc.expectations.iter().map(|e| e.label()).collect();
        let mut failed: std::collections::BTreeSet<String> = Default::default();
        for (i, v) in variants(&f).iter().enumerate() {
            let overrides: Vec<String> = v
                .iter()
                .filter(|w| !w.starts_with("mutant:"))
                .cloned()
                .collect();
            let mut scs = load_scenarios(std::slice::from_ref(&f), &overrides)
                .unwrap_or_else(|e| panic!("{}: {v:?}: {e}", f.display()));
            for w in v.iter().filter_map(|w| w.strip_prefix("mutant:")) {
                for (_, sc) in &mut scs {
                    apply_mutant(sc, w);
                }
            }
            let r = run_all(&scs, &out.join(format!("{k}-{i}")), false).expect("run");
            for verdict in r.iter().flat_map(|r| r.evaluation.verdicts()) {
                if !verdict.pass {
                    failed.insert(verdict.label);
                }
            }
        }
        for l in all {
            if !failed.contains(&l) {
                missing.push(format!("{}: {l}", f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "expectations no header variant makes fail:\n{}",
        missing.join("\n")
    );
}
