//! Traces (`qossim run --trace`, trace.csv) and sequence diagrams
//! (`qossim diagram`), driven through the real binary (docs/traces.md).

mod common;

use common::cli::run;
use common::temp_dir;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// `qossim run <scenario> --quiet --out <dir> <extra…>`, which must succeed.
fn run_ok(scenario: &Path, dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        scenario.to_str().expect("utf-8"),
        "--quiet",
        "--out",
        dir.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
}

/// trace.csv's rows as maps column → value (names hold no commas here).
fn rows(dir: &Path, file: &str) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(dir.join(file)).expect(file);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), head.len(), "{file}: {l}");
            head.iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace() {
    let sc = root().join("scenarios/regression/mqtt-qos2-drop-first-pubrel.toml");
    let (a, b, c) = (
        temp_dir("trace-a"),
        temp_dir("trace-b"),
        temp_dir("trace-c"),
    );
    run_ok(&sc, &a, &["--trace"]);
    run_ok(&sc, &b, &["--trace"]);
    run_ok(&sc, &c, &["--trace", "--seed", "2"]);
    let ta = fs::read(a.join("trace.csv")).expect("trace a");
    assert!(
        ta.iter().filter(|&&b| b == b'\n').count() > 500,
        "a real trace"
    );
    assert_eq!(ta, fs::read(b.join("trace.csv")).expect("trace b"));
    assert_ne!(
        ta,
        fs::read(c.join("trace.csv")).expect("trace c"),
        "seed matters"
    );
    assert!(!a.join("trace.csv.tmp").exists(), "written atomically");
    // the report embeds a diagram and stays the same for the same seed
    let report = fs::read(a.join("report.html")).expect("report a");
    assert!(String::from_utf8_lossy(&report).contains("First retransmitted message"));
    assert_eq!(report, fs::read(b.join("report.html")).expect("report b"));
}

#[test]
fn tracing_changes_no_other_output_and_is_removed_without_trace() {
    let sc = fixture("trace-qos2-pubrel.toml");
    let (on, off) = (temp_dir("trace-on"), temp_dir("trace-off"));
    run_ok(&sc, &on, &["--trace", "--packets"]);
    run_ok(&sc, &off, &["--packets"]);
    for f in ["messages.csv", "packets.csv", "runs.csv", "connections.csv"] {
        assert_eq!(
            fs::read(on.join(f)).expect(f),
            fs::read(off.join(f)).expect(f),
            "{f}"
        );
    }
    assert!(!off.join("trace.csv").exists());
    // a later run without --trace in the same directory removes the stale one
    run_ok(&sc, &on, &[]);
    assert!(!on.join("trace.csv").exists());
}

#[test]
fn every_packets_csv_row_is_a_trace_row_per_kind_and_outcome() {
    // wired (MQTT over TCP with a fault drop) and radio (wireless star)
    let cases = [
        (
            root().join("scenarios/regression/mqtt-qos2-drop-first-pubrel.toml"),
            vec![],
        ),
        (
            root().join("scenarios/wireless-star.toml"),
            vec!["--set", "duration=20s"],
        ),
        (
            root().join("scenarios/regression/coap-con-loss.toml"),
            vec![],
        ),
        (
            root().join("scenarios/regression/mqtt-broker-restart.toml"),
            vec![],
        ),
    ];
    for (sc, extra) in cases {
        let dir = temp_dir("trace-count");
        let mut args = vec!["--trace", "--packets"];
        args.extend(extra);
        run_ok(&sc, &dir, &args);
        let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in rows(&dir, "packets.csv") {
            *want
                .entry((r["kind"].clone(), r["outcome"].clone()))
                .or_default() += 1;
        }
        let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
        let trace = rows(&dir, "trace.csv");
        for r in &trace {
            // lost_node_down: a loss packets.csv has no row for
            if (r["event"] == "hop" || r["event"] == "lost") && r["outcome"] != "lost_node_down" {
                *got.entry((r["kind"].clone(), r["outcome"].clone()))
                    .or_default() += 1;
            }
        }
        assert!(!want.is_empty(), "{}", sc.display());
        if sc.ends_with("mqtt-broker-restart.toml") {
            assert!(
                trace.iter().any(|r| r["outcome"] == "lost_node_down"),
                "packets reaching the crashed broker are traced as lost"
            );
        }
        assert_eq!(got, want, "{}", sc.display());
        // every packet a host sent has a serial shared by its other rows
        let sent: std::collections::BTreeSet<&str> = trace
            .iter()
            .filter(|r| r["event"] == "send")
            .map(|r| r["pkt"].as_str())
            .collect();
        for r in trace
            .iter()
            .filter(|r| r["layer"] == "link" || r["event"] == "recv")
        {
            assert!(sent.contains(r["pkt"].as_str()), "{r:?}");
        }
    }
}

#[test]
fn node_and_flow_filters_keep_only_what_they_name() {
    let sc = root().join("scenarios/three-protocols.toml");
    let all = temp_dir("trace-all");
    run_ok(&sc, &all, &["--trace", "--set", "duration=40s"]);
    let everything = rows(&all, "trace.csv");
    let dir = temp_dir("trace-filter");
    run_ok(
        &sc,
        &dir,
        &[
            "--trace",
            "--trace-nodes",
            "collector,con-1",
            "--trace-flows",
            "coap-con",
            "--set",
            "duration=40s",
        ],
    );
    let kept = rows(&dir, "trace.csv");
    assert!(kept.len() > 20, "{} rows", kept.len());
    assert!(kept.len() < everything.len() / 4);
    for r in &kept {
        assert!(
            r["node"] == "collector" || r["node"] == "con-1",
            "node filter: {r:?}"
        );
        assert!(
            r["kind"].starts_with("coap") || r["kind"] == "mac_ack",
            "flow filter: {r:?}"
        );
        assert!(
            r["msg"].is_empty() || r["msg"].starts_with("coap-con:"),
            "{r:?}"
        );
    }
    // both ends of the filter are there: the publisher's sends and the
    // collector's deliveries
    assert!(kept
        .iter()
        .any(|r| r["node"] == "con-1" && r["event"] == "publish"));
    assert!(kept
        .iter()
        .any(|r| r["node"] == "collector" && r["event"] == "deliver"));
    // an unknown name is a clear error (exit 2) naming it
    for (flag, name) in [("--trace-nodes", "nowhere"), ("--trace-flows", "nothing")] {
        let (code, out, err) = run(&[
            "run",
            sc.to_str().expect("utf-8"),
            "--quiet",
            "--out",
            dir.to_str().expect("utf-8"),
            "--trace",
            flag,
            name,
        ]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(flag) && err.contains(&format!("\"{name}\"")),
            "{err}"
        );
    }
}

/// Run `fixture` with --trace into a fresh directory and draw `message`.
fn draw(fixture_name: &str, message: &str) -> (PathBuf, String, String) {
    let dir = temp_dir("trace-diagram");
    run_ok(&fixture(fixture_name), &dir, &["--trace"]);
    let (code, out, err) = run(&[
        "diagram",
        dir.to_str().expect("utf-8"),
        "--message",
        message,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let stem = format!("diagram-{}", message.replace(':', "-"));
    let mmd = fs::read_to_string(dir.join(format!("{stem}.mmd"))).expect("mmd");
    let svg = fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("svg");
    assert!(out.contains(&format!("{stem}.mmd")), "{out}");
    (dir, mmd, svg)
}

/// The SVG parses as XML and has a lifeline per participant and the
/// crosses of its lost packets.
fn check_svg(svg: &str, participants: usize, lost: usize) {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let dashed = root
        .descendants()
        .filter(|n| n.has_tag_name("line") && n.attribute("stroke-dasharray").is_some())
        .count();
    assert_eq!(dashed, participants, "lifelines");
    let crosses = root
        .descendants()
        .filter(|n| n.has_tag_name("path"))
        .count();
    // one path is the arrowhead marker
    assert_eq!(crosses, lost + 1, "crosses");
}

#[test]
fn qos2_with_a_dropped_pubrel_matches_the_mermaid_snapshot() {
    let (dir, mmd, svg) = draw("trace-qos2-pubrel.toml", "alarm:sensor:0");
    let snap = root().join("tests/snapshots/trace-qos2-pubrel.mmd");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::write(&snap, &mmd).expect("write snapshot");
    }
    let want = fs::read_to_string(&snap).expect("snapshot (UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(mmd, want, "Mermaid differs from {}", snap.display());
    // what the snapshot must show, whatever regenerated it
    assert!(mmd.starts_with("sequenceDiagram\n"));
    for part in [
        "PUBLISH pid=1 qos=2",
        "PUBREC pid=1",
        "-xP2: PUBREL pid=1 (fault_dropped)",
        "PUBREL pid=1 retx 1",
        "PUBCOMP pid=1",
        "delivered",
    ] {
        assert!(mmd.contains(part), "{part}:\n{mmd}");
    }
    assert_eq!(mmd.matches("delivered").count(), 1, "exactly once");
    check_svg(&svg, 3, 1);
    // report.html embeds the first message that needed a retransmission
    let html = fs::read_to_string(dir.join("report.html")).expect("report");
    assert!(html.contains("First retransmitted message"));
    assert!(
        html.contains("<title>message alarm:sensor:0</title>"),
        "diagram embedded"
    );
}

#[test]
fn a_coap_con_sent_three_times_shows_two_retransmissions() {
    let (_, mmd, svg) = draw("trace-coap-retx.toml", "readings:sensor:0");
    let cons: Vec<&str> = mmd.lines().filter(|l| l.contains(": CON mid=")).collect();
    assert_eq!(cons.len(), 3, "{mmd}");
    assert!(cons[0].contains("-x") && !cons[0].contains("retx"), "{mmd}");
    assert!(
        cons[1].contains("-x") && cons[1].contains("retx 1"),
        "{mmd}"
    );
    assert!(
        cons[2].contains("->>") && cons[2].contains("retx 2"),
        "{mmd}"
    );
    assert!(mmd.contains(": ACK mid="), "{mmd}");
    check_svg(&svg, 2, 2);
    assert!(svg.contains("retx 2"));
}

#[test]
fn first_retransmitted_finds_the_message_and_diagram_needs_a_trace() {
    let dir = temp_dir("trace-first");
    run_ok(&fixture("trace-coap-retx.toml"), &dir, &["--trace"]);
    let (code, out, err) = run(&[
        "diagram",
        dir.to_str().expect("utf-8"),
        "--first-retransmitted",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("diagram-readings-sensor-0.svg"), "{out}");
    // an unknown message, a malformed tag, a run without --trace: exit 2
    for (msg, says) in [
        ("readings:sensor:7", "does not appear"),
        ("readings-sensor-0", "FLOW:PUBLISHER:SEQ"),
    ] {
        let (code, out, err) = run(&["diagram", dir.to_str().expect("utf-8"), "--message", msg]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(says), "{err}");
    }
    // a new run into the directory removes the diagrams of the old trace
    run_ok(&fixture("trace-coap-retx.toml"), &dir, &[]);
    assert!(!dir.join("diagram-readings-sensor-0.svg").exists());
    assert!(!dir.join("diagram-readings-sensor-0.mmd").exists());
    let plain = temp_dir("trace-none");
    run_ok(&fixture("trace-coap-retx.toml"), &plain, &[]);
    let (code, _, err) = run(&[
        "diagram",
        plain.to_str().expect("utf-8"),
        "--message",
        "readings:sensor:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--trace"), "{err}");
    let html = fs::read_to_string(plain.join("report.html")).expect("report");
    assert!(!html.contains("First retransmitted message"));
}

#[test]
fn an_mqtt_publish_resent_after_a_break_is_labelled_dup() {
    // QoS 1 across a link that goes down: TCP's retransmissions are lost
    // (no route), the client reconnects and sends the PUBLISH again, DUP set
    let dir = temp_dir("trace-dup");
    run_ok(
        &root().join("scenarios/regression/mqtt-qos1-link-down.toml"),
        &dir,
        &["--trace"],
    );
    let trace = rows(&dir, "trace.csv");
    let dup = trace
        .iter()
        .find(|r| r["event"] == "send" && r["ids"].contains("dup=1"))
        .expect("a PUBLISH resent with DUP");
    let msg = dup["msg"].clone();
    assert!(!msg.is_empty(), "{dup:?}");
    let (code, out, err) = run(&["diagram", dir.to_str().expect("utf-8"), "--message", &msg]);
    assert_eq!(code, 0, "{out}{err}");
    let mmd = fs::read_to_string(dir.join(format!("diagram-{}.mmd", msg.replace(':', "-"))))
        .expect("mmd");
    let lines: Vec<&str> = mmd.lines().collect();
    let first_dup = lines
        .iter()
        .position(|l| l.contains(": PUBLISH") && l.contains(" DUP"))
        .expect("a DUP label");
    assert!(lines[first_dup].contains("->>"), "{mmd}");
    assert!(
        lines[..first_dup]
            .iter()
            .any(|l| l.contains("-xP1: PUBLISH") && l.contains("retx")),
        "lost retransmissions before the DUP:\n{mmd}"
    );
    assert!(mmd.contains("PUBACK"), "{mmd}");
}
