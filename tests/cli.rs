//! The `qossim` binary as users run it: exit codes, error messages for bad
//! scenarios, the built-in quickstart, and the shared contract example.

mod common;
use common::cli::run as qossim;
use std::path::Path;
use std::process::Command;

#[test]
fn contract_example_checks_and_runs_over_udp() {
    for c in common::contracts() {
        contract_checks_and_runs(&c);
    }
}

fn contract_checks_and_runs(c: &Path) {
    let c = c.to_str().expect("utf-8 path");
    let (code, out, err) = qossim(&["check", c]);
    assert_eq!(code, 0, "check failed: {out}{err}");
    let dir = common::temp_dir("contract");
    let (code, out, err) = qossim(&[
        "run",
        c,
        "--set",
        "flows.telemetry.protocol=udp",
        "--set",
        "flows.telemetry.reliability=best_effort",
        "--out",
        dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 0, "run failed: {out}{err}");
    let r = common::sim::run_row(&dir, "telemetry");
    assert_eq!(r["protocol"], "udp");
    assert!(common::sim::num(&r, "sent") > 100.0);
}

/// `check` refuses a workload no run can finish, naming the interval and
/// the numbers, and warns when a publisher alone offers more than its only
/// link carries (hardening issue, defect 6).
#[test]
fn check_estimates_the_workload() {
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let q = q.to_str().expect("utf-8");
    let (code, out, err) = qossim(&[
        "check",
        q,
        "--set",
        "flows.telemetry.interval=1ns",
        "--set",
        "flows.telemetry.jitter=0s",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("field `flows.telemetry.interval`"), "{err}");
    assert!(err.contains("3.000e12 messages"), "{err}");
    let (code, out, err) = qossim(&[
        "check",
        q,
        "--set",
        "flows.telemetry.interval=1ms",
        "--set",
        "flows.telemetry.jitter=0s",
        "--set",
        "flows.telemetry.payload_bytes=60000",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("offers 480000000 bit/s of payload alone, more than its link"),
        "{err}"
    );
    // the shipped scenario itself: no warning
    let (code, _, err) = qossim(&["check", q]);
    assert_eq!(code, 0);
    assert!(!err.contains("warning"), "{err}");
}

/// `qossim check` refuses a trace file outside the scenario's directory
/// (naming the field and the flag) and accepts it with `--allow-outside`,
/// which every subcommand takes.
#[test]
fn trace_files_outside_need_allow_outside() {
    let dir = common::temp_dir("allow-outside");
    std::fs::create_dir_all(dir.join("scn")).expect("dir");
    std::fs::create_dir_all(dir.join("traces")).expect("dir");
    std::fs::write(dir.join("traces/t.bits"), "0110").expect("trace");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/trace-links.toml"),
    )
    .expect("fixture")
    .replace("file = \"loss.bits\"", "file = \"../traces/t.bits\"");
    let scn = dir.join("scn/s.toml");
    std::fs::write(&scn, text).expect("write");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/states.intervals"),
        dir.join("scn/states.intervals"),
    )
    .expect("copy");
    let scn = scn.to_str().expect("utf-8");
    let (code, out, err) = qossim(&["check", scn]);
    let out = format!("{out}{err}");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("outside the scenario's directory"), "{out}");
    assert!(out.contains("loss.file"), "{out}");
    let (code, _, err) = qossim(&["check", scn, "--allow-outside"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = qossim(&["--allow-outside", "check", scn]);
    assert_eq!(code, 0, "{err}");
}

/// A scenario named ".." writes into `results/_.`, not into the current
/// directory (hardening issue, defect 6).
#[test]
fn a_dotted_scenario_name_stays_inside_results() {
    let dir = common::temp_dir("dotdot-name");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml"),
    )
    .expect("read scenario");
    let text = text.replacen(
        &text
            .lines()
            .find(|l| l.starts_with("name ="))
            .expect("a name line")
            .to_string(),
        "name = \"..\"",
        1,
    );
    std::fs::create_dir_all(dir.join("cwd")).expect("cwd");
    std::fs::write(dir.join("cwd/s.toml"), text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .args(["run", "s.toml", "--quiet"])
        .current_dir(dir.join("cwd"))
        .output()
        .expect("run qossim");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("cwd/results/_./runs.csv").is_file());
    assert!(!dir.join("cwd/runs.csv").exists(), "written into the cwd");
    assert!(!dir.join("runs.csv").exists(), "written into the parent");
}

#[test]
fn no_arguments_runs_the_builtin_quickstart_into_results() {
    let dir = common::temp_dir("quickstart-cwd");
    let out = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .current_dir(&dir)
        .output()
        .expect("run qossim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("telemetry"), "{stdout}");
    assert!(stdout.contains("results/quickstart/"), "{stdout}");
    for f in ["runs.csv", "summary.csv", "messages.csv", "manifest.json"] {
        assert!(
            dir.join("results/quickstart").join(f).is_file(),
            "{f} missing"
        );
    }
    let manifest =
        std::fs::read_to_string(dir.join("results/quickstart/manifest.json")).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&manifest).expect("manifest is JSON");
    assert_eq!(v["scenario"], "quickstart");
    assert!(v["crate_versions"]["rand"].is_string());
    // nothing half-written remains
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("results/quickstart"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Each bad scenario: (file text, expected line, field fragment, message fragment).
const BAD: &[(&str, &str, usize, &str, &str)] = &[
    ("syntax", "name = \"x\"\nduration = \"1 s\n", 2, "", ""),
    ("wrong-type", "name = \"x\"\nduration = 5\n", 2, "duration", ""),
    ("unknown-field", "name = \"x\"\nduration = \"1 s\"\ncolour = 3\n", 3, "colour", "unknown field"),
    ("missing-field", "name = \"x\"\n", 1, "duration", "missing"),
    (
        "out-of-range",
        "name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"a\"\nrole = \"client\"\n[[nodes]]\nname = \"b\"\nrole = \"client\"\n[[links]]\na = \"a\"\nb = \"b\"\nloss = { model = \"bernoulli\", p = 1.5 }\n",
        12,
        "p",
        "",
    ),
    (
        "nan",
        "name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"a\"\nrole = \"client\"\n[[nodes]]\nname = \"b\"\nrole = \"client\"\n[[links]]\na = \"a\"\nb = \"b\"\nloss = { model = \"bernoulli\", p = nan }\n",
        12,
        "p",
        "",
    ),
    ("oversized-duration", "name = \"x\"\nduration = \"400 days\"\n", 2, "duration", ""),
    (
        "oversized-count",
        "name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"r\"\nrole = \"router\"\n[[groups]]\nname = \"s-{i}\"\ncount = 99999999\nrole = \"client\"\nlink = { to = \"r\" }\n",
        8,
        "count",
        "",
    ),
    (
        "unknown-node",
        "name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"a\"\nrole = \"client\"\n[[links]]\na = \"a\"\nb = \"nowhere\"\n",
        8,
        "b",
        "nowhere",
    ),
    (
        "unknown-link",
        "name = \"x\"\nduration = \"1 s\"\n[[events]]\nat = \"1 s\"\naction = \"link_down\"\nlink = \"ghost\"\n",
        6,
        "link",
        "ghost",
    ),
    (
        "unknown-group-node",
        "name = \"x\"\nduration = \"1 s\"\n[[groups]]\nname = \"s-{i}\"\ncount = 2\nrole = \"client\"\nlink = { to = \"nobody\" }\n",
        7,
        "to",
        "nobody",
    ),
];

#[test]
fn bad_scenarios_exit_2_naming_file_line_and_field() {
    let dir = common::temp_dir("bad");
    for (name, text, line, field, msg) in BAD {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write");
        let (code, out, err) = qossim(&["check", path.to_str().expect("utf-8")]);
        assert_eq!(code, 2, "{name}: exit code {code}\n{out}{err}");
        let want_loc = format!("{name}.toml:{line}");
        assert!(
            err.contains(&want_loc),
            "{name}: expected `{want_loc}` in: {err}"
        );
        assert!(
            err.contains(field),
            "{name}: expected field `{field}` in: {err}"
        );
        assert!(err.contains(msg), "{name}: expected `{msg}` in: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        // `run` reports the same and exits 2 too
        let (code, _, err2) = qossim(&[
            "run",
            path.to_str().expect("utf-8"),
            "--out",
            dir.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 2, "{name} (run): {err2}");
    }
}

#[test]
fn missing_file_and_bad_override_are_bad_input() {
    let (code, _, err) = qossim(&["check", "/nonexistent/x.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let (code, _, err) = qossim(&[
        "check",
        q.to_str().expect("utf-8"),
        "--set",
        "flows.nosuch.protocol=udp",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, err) = qossim(&["run", "--bogus-flag"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn every_shipped_scenario_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "toml") {
            let (code, out, err) = qossim(&["check", p.to_str().expect("utf-8")]);
            assert_eq!(code, 0, "{}: {out}{err}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn short_drain_with_coap_con_is_warned_about() {
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let q = q.to_str().expect("utf-8");
    let (code, _, err) = qossim(&["check", q, "--set", "drain=10s"]);
    assert_eq!(code, 0);
    assert!(err.contains("MAX_TRANSMIT_WAIT 93 s"), "{err}");
    let (code, _, err) = qossim(&["check", q]);
    assert_eq!(code, 0);
    assert!(!err.contains("warning"), "{err}");
}

/// Roles mean something (issue 17 item 2): a flow whose hosts reach each
/// other only through a `gateway` node — a host, not a router — is a
/// `check` (and `run`) error at the flow, naming both hosts, the node in
/// the way and the fix; with the node a router, no warning and everything
/// delivered; with the router's uplink down for the whole run, `run` warns
/// that the flow delivered nothing and found no route.
#[test]
fn a_path_through_a_host_is_an_error_naming_flow_and_node() {
    let text = |role: &str, events: &str| {
        format!(
            r#"
name = "gw-path"
seed = 1
duration = "1 min"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "gateway"
role = "{role}"
[[groups]]
name = "sensor-{{i}}"
count = 2
role = "client"
link = {{ to = "gateway", rate = "250 kbit/s", delay = "5 ms" }}
[[links]]
a = "gateway"
b = "broker"
rate = "10 Mbit/s"
delay = "1 ms"
[[flows]]
name = "t"
pattern = "fan_in"
protocol = "mqtt"
reliability = "qos1"
publishers = ["sensor-*"]
receivers = ["broker"]
topic = "a/{{i}}"
payload_bytes = 16
interval = "5 s"
{events}
"#
        )
    };
    let dir = common::temp_dir("gw-path");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text("gateway", "")).expect("write");
    let bad_out = dir.join("bad");
    let bad_out = bad_out.to_str().expect("utf-8");
    for args in [vec!["check"], vec!["run", "--quiet", "--out", bad_out]] {
        let cmd = args[0];
        let mut args = args.clone();
        args.insert(1, bad.to_str().expect("utf-8"));
        let (code, _, err) = qossim(&args);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(
            err.contains("bad.toml:22:8: field `flows.t`: flow `t`: `sensor-1` reaches `broker` only through `gateway` (role gateway), which does not forward IP packets"),
            "{cmd}: {err}"
        );
        assert!(err.contains("Make that node a router"), "{err}");
    }
    let down = dir.join("down.toml");
    let event = "[[events]]\nat = \"0 s\"\naction = \"link_down\"\nlink = \"gateway--broker\"\n";
    std::fs::write(&down, text("router", event)).expect("write");
    let (code, _, err) = qossim(&[
        "run",
        down.to_str().expect("utf-8"),
        "--out",
        dir.join("down").to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("flow `t` delivered nothing"), "{err}");
    assert!(err.contains("found no route (drops_no_route)"), "{err}");
    let good = dir.join("good.toml");
    std::fs::write(&good, text("router", "")).expect("write");
    let (code, _, err) = qossim(&[
        "run",
        good.to_str().expect("utf-8"),
        "--out",
        dir.join("good").to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning: flow"), "{err}");
}

/// `qossim list` (issue 17 item 7): every shipped scenario, once, with the
/// first sentence of its header (a question for the top-level and
/// teaching scenarios).
#[test]
fn list_names_every_shipped_scenario_with_its_question() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("scenarios");
    let (code, out, err) = qossim(&["list", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    assert_eq!(lines.len(), 2 * files.len(), "{out}");
    for f in &files {
        let shown = f.display().to_string();
        let at = lines
            .iter()
            .position(|l| *l == shown)
            .unwrap_or_else(|| panic!("{shown} not listed"));
        let what = lines[at + 1].trim();
        assert!(!what.is_empty() && what != "(no description)", "{shown}");
        let top =
            f.parent() == Some(dir.as_path()) || f.parent() == Some(dir.join("teaching").as_path());
        if top {
            assert!(what.ends_with('?'), "{shown}: {what}");
        }
    }
    let (code, _, err) = qossim(&["list", "/no/such/dir"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/no/such/dir"), "{err}");
}

/// README.md "Warnings" (issue 17 item 8): every warning has one form,
/// `file:line:col: warning: …`, located at the field it is about, and
/// `--deny-warnings` (accepted by every command) turns it into exit 2 —
/// before a run starts for `check`/`run`, and after it for warnings that
/// only the run can tell (a flow that delivered nothing).
#[test]
fn warnings_have_one_located_form_and_can_be_denied() {
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let q = q.to_str().expect("utf-8");
    // `drain` is on line 17, its value at column 9
    let (code, _, err) = qossim(&["check", q, "--set", "drain=10s"]);
    assert_eq!(code, 0, "{err}");
    let want = format!("{q}:17:9: warning: drain 10 s is shorter than CoAP MAX_TRANSMIT_WAIT");
    assert!(err.lines().any(|l| l.starts_with(&want)), "{err}");
    for cmd in [vec!["check", q], vec!["run", q, "--quiet"]] {
        let mut args = cmd.clone();
        args.extend(["--set", "drain=10s", "--deny-warnings"]);
        let dir = common::temp_dir("deny");
        let d = dir.join("out");
        if cmd[0] == "run" {
            args.extend(["--out", d.to_str().expect("utf-8")]);
        }
        let (code, _, err) = qossim(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("error: 1 warning(s) and --deny-warnings"),
            "{err}"
        );
        // refused before running: nothing written
        assert!(!d.join("runs.csv").exists());
    }
    // a warning only the run can tell: the uplink is down for the whole run
    let dir = common::temp_dir("deny-run");
    let text = std::fs::read_to_string(q).expect("quickstart")
        + "\n[[events]]\nat = \"0 s\"\naction = \"link_down\"\nlink = \"backhaul\"\n";
    let s = dir.join("down.toml");
    std::fs::write(&s, text).expect("write");
    let s = s.to_str().expect("utf-8");
    let out = dir.join("out");
    let out = out.to_str().expect("utf-8");
    let (code, _, err) = qossim(&["run", s, "--quiet", "--out", out]);
    assert_eq!(code, 0, "{err}");
    let flow_line = std::fs::read_to_string(s)
        .expect("read")
        .lines()
        .position(|l| l.starts_with("name = \"telemetry\""))
        .expect("flow")
        + 1;
    assert!(
        err.contains(&format!(
            "{s}:{flow_line}:8: warning: flow `telemetry` delivered nothing"
        )),
        "{err}"
    );
    let (code, _, err) = qossim(&["run", s, "--quiet", "--out", out, "--deny-warnings"]);
    assert_eq!(code, 2, "{err}");
    // the results are still written: the warning is about them
    assert!(Path::new(out).join("runs.csv").exists());
}

/// README.md "Exit codes": 2 bad input, 3 the environment failed (a
/// results directory that cannot be created), 1 a check the user asked
/// for failed (`--strict`, in tests/expectations.rs).
#[test]
fn exit_codes_follow_the_table() {
    let (code, _, err) = qossim(&["check", "/nonexistent/x.toml"]);
    assert_eq!(code, 2, "{err}");
    let dir = common::temp_dir("exit3");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = file.join("sub");
    let (code, _, err) = qossim(&["run", "--quiet", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("a-file/sub") && err.contains("Not a directory"),
        "{err}"
    );
    // the same for a sweep's results directory
    let s = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-small.toml");
    let (code, _, err) = qossim(&[
        "sweep",
        s.to_str().expect("utf-8"),
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 3, "{err}");
}
