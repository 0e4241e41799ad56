//! Scenario loader: every error kind names the file, line and field; the
//! contract example and the DESIGN.md `--set` examples load; groups, presets,
//! Gilbert conversion, traces and units resolve to the documented values.

use qossim::scenario::flows::topic_for;
use qossim::scenario::model::{
    Action, LossSpec, Pattern, Protocol, Reliability, Role, Scenario, Timing, TraceSpec, ValueGen,
};
use qossim::scenario::{apply_overrides, load_file, load_str, ScenarioError};
use qossim::sim::{SimDuration, SimTime};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios")
}

mod common;
use common::contracts;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Lines: 1 name, 2 duration, 4-6 node collector, 8-10 node router,
/// 12-15 link backhaul; `extra` starts at line 17.
const BASE: &str = r#"name = "t"
duration = "60 s"

[[nodes]]
name = "collector"
role = "server"

[[nodes]]
name = "router"
role = "router"

[[links]]
name = "backhaul"
a = "router"
b = "collector"
"#;

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    load_str(text, "t.toml", &fixtures(), &[])
}

fn load_ok(text: &str) -> Scenario {
    match load(text) {
        Ok(s) => s,
        Err(e) => panic!("expected the scenario to load, got: {e}"),
    }
}

/// Load `text`, expect an error at `line` in `field` whose message contains
/// `needle`; returns the error for further checks.
fn expect_err(text: &str, line: usize, field: &str, needle: &str) -> ScenarioError {
    let e = match load(text) {
        Ok(_) => panic!("expected an error containing {needle:?}"),
        Err(e) => e,
    };
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("t.toml:{line}:")),
        "wrong file/line: {shown}"
    );
    assert!(
        shown.contains(&format!("field `{field}`")),
        "wrong field: {shown}"
    );
    assert!(shown.contains(needle), "message lacks {needle:?}: {shown}");
    e
}

// ---------- errors ----------

#[test]
fn toml_syntax_error_has_line() {
    let e = load("name = \"t\"\nduration = \"60 s\n").expect_err("syntax");
    let shown = e.to_string();
    assert!(shown.starts_with("t.toml:2:"), "{shown}");
}

#[test]
fn wrong_type_names_field() {
    expect_err(
        "name = \"t\"\nduration = 60\n",
        2,
        "duration",
        "invalid type",
    );
}

#[test]
fn unknown_field_lists_expected() {
    let text = BASE.replace("role = \"server\"", "role = \"server\"\ncolour = \"red\"");
    expect_err(&text, 7, "nodes.collector.colour", "unknown field `colour`");
}

#[test]
fn missing_field_is_named() {
    let text = with("[[links]]\nname = \"spur\"\na = \"router\"\n");
    let e = load(&text).expect_err("missing b");
    let shown = e.to_string();
    assert!(shown.contains("missing field `b`"), "{shown}");
    assert!(shown.contains("field `links.spur.b`"), "{shown}");
    assert!(e.line.is_some_and(|l| (17..=19).contains(&l)), "{shown}");
}

#[test]
fn missing_top_level_field() {
    let e = load(&BASE.replace("name = \"t\"\n", "")).expect_err("no name");
    assert_eq!(e.field.as_deref(), Some("name"), "{e}");
    assert!(e.to_string().starts_with("t.toml:1:"), "{e}");
    assert!(e.message.contains("missing field `name`"), "{e}");
}

#[test]
fn out_of_range_mtu() {
    let text = BASE.replace("b = \"collector\"", "b = \"collector\"\nmtu = 40");
    expect_err(&text, 16, "links.backhaul.mtu", "must be in 68..=65535");
}

#[test]
fn nan_and_inf_rejected() {
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"bernoulli\", p = nan }",
    );
    expect_err(&text, 16, "links.backhaul.loss.p", "finite");
    let text = BASE.replace(
        "role = \"router\"",
        "role = \"router\"\nposition = [inf, 0.0]",
    );
    expect_err(&text, 11, "nodes.router.position", "finite");
}

#[test]
fn oversized_duration_and_counts() {
    expect_err(
        &BASE.replace("\"60 s\"", "\"721 h\""),
        2,
        "duration",
        "(30 days)",
    );
    let g = with("[[groups]]\nname = \"s-{i}\"\ncount = 1000001\nrole = \"client\"\n");
    expect_err(&g, 19, "groups.s-{i}.count", "1..=1000000");
    let f = with(
        "[[flows]]\nname = \"f\"\npattern = \"fan_in\"\nprotocol = \"udp\"\npublishers = [\"router\"]\nreceivers = [\"collector\"]\ntopic = \"t\"\npayload_bytes = 8\ninterval = \"1 s\"\ncount = 2000000000\n",
    );
    expect_err(&f, 26, "flows.f.count", "1..=1000000000");
}

#[test]
fn infeasible_gilbert_states_bounds() {
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"gilbert_elliott\", mean_loss = 0.9, burst = 2.0 }",
    );
    let e = expect_err(&text, 16, "links.backhaul.loss.mean_loss", "infeasible");
    assert!(e.message.contains("≤ 0.6667"), "{e}");
    assert!(e.message.contains("≥ 9.0000"), "{e}");
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"gilbert_elliott\", mean_loss = 1.0, burst = 2.0 }",
    );
    expect_err(&text, 16, "links.backhaul.loss.mean_loss", "[0, 1)");
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"gilbert_elliott\", mean_loss = 0.1, burst = 0.5 }",
    );
    expect_err(&text, 16, "links.backhaul.loss.burst", "at least 1");
}

#[test]
fn key_foreign_to_loss_model() {
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"gilbert_elliott\", p = 0.1 }",
    );
    expect_err(
        &text,
        16,
        "links.backhaul.loss.p",
        "field `p` does not apply to model `gilbert_elliott`",
    );
}

#[test]
fn unknown_node_in_link() {
    let text = BASE.replace("b = \"collector\"", "b = \"colector\"");
    let e = expect_err(&text, 15, "links.backhaul.b", "unknown node \"colector\"");
    assert!(e.message.contains("collector, router"), "{e}");
}

#[test]
fn unknown_node_in_group_link() {
    let g = with(
        "[[groups]]\nname = \"s-{i}\"\ncount = 2\nrole = \"client\"\nlink = { to = \"gw\" }\n",
    );
    expect_err(&g, 21, "groups.s-{i}.link.to", "unknown node \"gw\"");
}

#[test]
fn unknown_link_in_event() {
    let e = with("[[events]]\nat = \"5 s\"\naction = \"link_down\"\nlink = \"backhual\"\n");
    let err = expect_err(&e, 20, "events[0].link", "unknown link \"backhual\"");
    assert!(err.message.contains("backhaul"), "{err}");
}

#[test]
fn event_target_fields_checked() {
    let e = with("[[events]]\nat = \"5 s\"\naction = \"heal\"\nnode = \"router\"\n");
    expect_err(&e, 20, "events[0].node", "does not apply to action `heal`");
    let e = with("[[events]]\nat = \"5 s\"\naction = \"node_crash\"\n");
    expect_err(&e, 17, "events[0].node", "action `node_crash` needs `node`");
    let e = with("[[events]]\nat = \"61 min\"\naction = \"heal\"\n");
    expect_err(&e, 18, "events[0].at", "after the end of the run");
}

fn flow(
    pattern: &str,
    protocol: &str,
    reliability: &str,
    publishers: &str,
    receivers: &str,
    topic: &str,
) -> String {
    with(&format!(
        "[[flows]]\nname = \"f\"\npattern = \"{pattern}\"\nprotocol = \"{protocol}\"\nreliability = \"{reliability}\"\npublishers = {publishers}\nreceivers = {receivers}\ntopic = \"{topic}\"\npayload_bytes = 8\ninterval = \"1 s\"\n"
    ))
}

#[test]
fn glob_matching_nothing() {
    let t = flow(
        "fan_in",
        "udp",
        "best_effort",
        "[\"sensor-*\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(
        &t,
        22,
        "flows.f.publishers",
        "glob \"sensor-*\" matches no node",
    );
}

#[test]
fn bad_topic_placeholder() {
    let t = flow(
        "fan_in",
        "udp",
        "best_effort",
        "[\"router\"]",
        "[\"collector\"]",
        "room/{room}/t",
    );
    let e = expect_err(&t, 24, "flows.f.topic", "unknown placeholder {room}");
    assert!(e.message.contains("{i}, {name}, {flow}"), "{e}");
}

#[test]
fn fan_in_needs_one_receiver() {
    let t = flow(
        "fan_in",
        "udp",
        "best_effort",
        "[\"router\"]",
        "[\"collector\", \"router\"]",
        "x",
    );
    expect_err(&t, 23, "flows.f.receivers", "exactly one receiver, got 2");
}

#[test]
fn udp_cannot_be_confirmed() {
    let t = flow(
        "fan_in",
        "udp",
        "confirmed",
        "[\"router\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(
        &t,
        21,
        "flows.f.reliability",
        "udp accepts only best_effort",
    );
    let t = flow(
        "fan_in",
        "coap",
        "exactly_once",
        "[\"router\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(&t, 21, "flows.f.reliability", "CoAP has no exactly-once");
    let t = flow(
        "fan_in",
        "mqtt",
        "best_effort",
        "[\"router\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(&t, 20, "flows.f.broker", "an mqtt flow needs a broker");
    let t = flow(
        "fan_in",
        "mqttsn",
        "best_effort",
        "[\"router\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(&t, 20, "flows.f.broker", "an mqttsn flow needs a broker");
    let t = flow(
        "fan_in",
        "mqtt",
        "con",
        "[\"router\"]",
        "[\"collector\"]",
        "x",
    );
    expect_err(&t, 21, "flows.f.reliability", "MQTT has QoS levels");
}

#[test]
fn publisher_is_never_its_own_receiver() {
    let t = flow(
        "point_to_point",
        "udp",
        "best_effort",
        "[\"router\"]",
        "[\"router\"]",
        "x",
    );
    expect_err(&t, 23, "flows.f.receivers", "publish to itself");
}

#[test]
fn trace_file_errors_name_the_trace_file_and_line() {
    let text = BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"trace\", file = \"bad-order.intervals\", format = \"intervals\" }",
    );
    let e = load(&text).expect_err("bad trace");
    let shown = e.to_string();
    assert!(shown.contains("bad-order.intervals:3:"), "{shown}");
    assert!(
        shown.contains("field `links.backhaul.loss.file`"),
        "{shown}"
    );
}

/// A trace `file` outside the scenario's directory is refused unless
/// `--allow-outside` (`allow_files_outside(true)`); with it, a device, a
/// FIFO or a directory is still refused by name before anything is read
/// (/dev/zero would be read until memory runs out, a FIFO would block
/// `check`) — hardening issue, defect 6. One test: the setting is
/// process-wide.
#[test]
fn trace_files_must_be_inside_and_regular_files() {
    let dir = std::env::temp_dir().join(format!("qossim-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("trace.fifo");
    let _ = std::fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let dir_path = dir.to_str().expect("utf-8").to_string();
    let fifo_path = fifo.to_str().expect("utf-8").to_string();
    let trace_at = |path: &str| {
        BASE.replace(
            "b = \"collector\"",
            &format!("b = \"collector\"\nloss = {{ model = \"trace\", file = \"{path}\" }}"),
        )
    };
    // outside the fixtures directory: refused, by absolute path or by ..
    let outside = dir.join("ok.bits");
    std::fs::write(&outside, "0101").expect("write trace");
    let rel = format!("../../../../../../../../../..{}", outside.display());
    for path in [outside.to_str().expect("utf-8"), rel.as_str(), "/dev/zero"] {
        let e = load(&trace_at(path)).expect_err(path);
        assert!(
            e.message.contains("outside the scenario's directory"),
            "{path}: {e}"
        );
        assert!(e.message.contains("--allow-outside"), "{e}");
    }
    // inside (the fixtures' own traces) is fine without the flag
    load_ok(&trace_at("loss.bits"));
    qossim::scenario::allow_files_outside(true);
    load_ok(&trace_at(outside.to_str().expect("utf-8")));
    for path in ["/dev/zero", dir_path.as_str(), fifo_path.as_str()] {
        let text = BASE.replace(
            "b = \"collector\"",
            &format!("b = \"collector\"\nloss = {{ model = \"trace\", file = \"{path}\" }}"),
        );
        let e = load(&text).expect_err(path);
        assert_eq!(e.field.as_deref(), Some("links.backhaul.loss.file"), "{e}");
        assert!(e.message.contains("not a regular file"), "{path}: {e}");
        assert_eq!(e.line, Some(16), "{path}: {e}");
    }
    qossim::scenario::allow_files_outside(false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn override_errors() {
    for c in contracts() {
        override_errors_of(&c);
    }
}

fn override_errors_of(contract: &Path) {
    let ovs = strings(&["flows.nope.protocol=udp"]);
    let e = load_file(contract, &ovs).expect_err("unknown flow");
    assert_eq!(e.field.as_deref(), Some("flows.nope"));
    assert!(e.message.contains("known: telemetry"), "{e}");
    assert!(e.file.ends_with("contract-example.toml"), "{e}");
    let e = load_file(contract, &strings(&["seed"])).expect_err("malformed");
    assert!(e.message.contains("malformed override `seed`"), "{e}");
}

// ---------- contract and --set ----------

#[test]
fn contract_example_loads() {
    for c in contracts() {
        contract_example_loads_from(&c);
    }
}

fn contract_example_loads_from(contract: &Path) {
    let s = load_file(contract, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "quickstart");
    assert_eq!(
        (s.seed, s.duration, s.warmup, s.drain),
        (
            1,
            SimDuration::from_secs(600),
            SimDuration::from_secs(10),
            SimDuration::from_secs(100)
        )
    );
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "collector",
            "router",
            "sensor-1",
            "sensor-2",
            "sensor-3",
            "sensor-4",
            "sensor-5"
        ]
    );
    assert_eq!(s.links.len(), 6);
    assert_eq!(s.links[0].name, "backhaul");
    assert_eq!(s.links[0].rate_bps, 10_000_000);
    assert_eq!(s.links[1].name, "sensor-1--router");
    assert_eq!(
        (s.links[1].rate_bps, s.links[1].mtu, s.links[1].queue),
        (250_000, 127, 32)
    );
    assert_eq!(s.links[1].loss, LossSpec::Bernoulli { p: 0.1 });
    let f = &s.flows[0];
    assert_eq!(
        (f.pattern, f.protocol, f.reliability),
        (Pattern::FanIn, Protocol::Coap, Reliability::Confirmed)
    );
    assert_eq!(f.publishers, vec![2, 3, 4, 5, 6]);
    assert_eq!(f.receivers, vec![0]);
    assert_eq!(
        f.timing,
        Timing::Periodic {
            interval: SimDuration::from_secs(10),
            jitter: SimDuration::from_secs(1)
        }
    );
    assert_eq!(
        f.value,
        ValueGen::Temperature {
            mean: 21.0,
            sd: 0.5
        }
    );
    assert_eq!(topic_for(f, &s.nodes, 2), "building/xyz/room/3/temperature");
    assert_eq!(s.events[0].at, SimTime::from_nanos(300_000_000_000));
    assert_eq!(s.events[0].action, Action::LinkDown { link: 0 });
    assert_eq!(s.protocols.coap.max_retransmit, 4);
    assert_eq!(s.source.as_deref(), Some(contract));
}

#[test]
fn design_set_examples() {
    for c in contracts() {
        design_set_examples_on(&c);
    }
}

fn design_set_examples_on(contract: &Path) {
    let load_with = |ovs: &[&str]| load_file(contract, &strings(ovs));
    // the contract has no broker: the error says how to name one
    let e = load_with(&["flows.telemetry.protocol=mqtt"]).expect_err("no broker");
    assert!(e.to_string().contains("contract-example.toml:33:"), "{e}");
    assert!(e.message.contains("needs a broker"), "{e}");
    let s = load_with(&[
        "flows.telemetry.protocol=mqtt",
        "nodes.collector.role=broker",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.flows[0].protocol, Protocol::Mqtt);
    assert_eq!(s.flows[0].broker, Some(0));

    let s = load_with(&[
        "flows.telemetry.protocol=udp",
        "flows.telemetry.reliability=best_effort",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.flows[0].protocol, s.flows[0].reliability),
        (Protocol::Udp, Reliability::BestEffort)
    );
    assert_eq!(
        s.overrides,
        strings(&[
            "flows.telemetry.protocol=udp",
            "flows.telemetry.reliability=best_effort"
        ])
    );
    assert!(s.resolved_toml.contains("protocol = \"udp\""));

    // `p` alone does not fit the Gilbert-Elliott backhaul …
    let e = load_with(&["links.backhaul.loss.p=0.2"]).expect_err("p on GE");
    assert!(
        e.message
            .contains("does not apply to model `gilbert_elliott`"),
        "{e}"
    );
    // … but switching the model alongside is valid.
    let s = load_with(&[
        "links.backhaul.loss.model=bernoulli",
        "links.backhaul.loss.p=0.2",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.links[0].loss, LossSpec::Bernoulli { p: 0.2 });

    let s = load_with(&["groups.sensor-{i}.link.loss.p=0.3"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.links[1..]
        .iter()
        .all(|l| l.loss == LossSpec::Bernoulli { p: 0.3 }));
    assert_eq!(s.links[1..].len(), 5);

    // 60 s + the 100 s drain ends the run before the 5 min link_down event.
    let e = load_with(&["duration=60s"]).expect_err("event after the run");
    assert_eq!(
        (e.field.as_deref(), e.line),
        (Some("events[0].at"), Some(44))
    );
    assert!(
        e.message
            .contains("after the end of the run (duration + drain = 160 s)"),
        "{e}"
    );
    let s = load_with(&[
        "protocols.coap.max_retransmit=2",
        "seed=7",
        "duration=60s",
        "drain=300 s",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.protocols.coap.max_retransmit, s.seed, s.duration),
        (2, 7, SimDuration::from_secs(60))
    );
    assert_eq!(s.protocols.coap.ack_timeout, SimDuration::from_secs(2));

    // A missing [protocols.udp] table is created.
    let s = load_with(&["protocols.udp.port=5000", "links.router--collector.mtu=576"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.protocols.udp.port, s.links[0].mtu), (5000, 576));
    // Whole inline tables as values.
    let s = load_with(&["links.backhaul.loss={ model = \"bernoulli\", p = 0.05 }"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.links[0].loss, LossSpec::Bernoulli { p: 0.05 });
}

#[test]
fn overrides_keep_line_numbers() {
    for c in contracts() {
        overrides_keep_line_numbers_in(&c);
    }
}

fn overrides_keep_line_numbers_in(contract: &Path) {
    let text = match std::fs::read_to_string(contract) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let out = apply_overrides(&text, &strings(&["seed=7", "links.backhaul.loss.p=0.2"]))
        .unwrap_or_default();
    assert_eq!(out.lines().count(), text.lines().count());
    assert!(out.contains("seed = 7\n"), "{out}");
    assert!(
        out.contains("# Question: how much does CoAP CON buy"),
        "comments kept"
    );
}

// ---------- positive resolution ----------

#[test]
fn group_expansion_names_links_and_positions() {
    let s = load_ok(&with(
        "[[groups]]\nname = \"s-{i}\"\ncount = 5\nstart_index = 0\nrole = \"client\"\nplacement = { kind = \"grid\", columns = 2, spacing = 5.0, origin = [1.0, 2.0] }\nlink = { to = \"router\" }\n\n[[groups]]\nname = \"l{i}\"\ncount = 3\nrole = \"client\"\nplacement = { kind = \"line\" }\nlink = { to = \"s-0\", preset = \"slow-lossy\" }\n",
    ));
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "collector",
            "router",
            "s-0",
            "s-1",
            "s-2",
            "s-3",
            "s-4",
            "l1",
            "l2",
            "l3"
        ]
    );
    let pos: Vec<(f64, f64)> = s.nodes[2..7].iter().filter_map(|n| n.position).collect();
    assert_eq!(
        pos,
        [(1.0, 2.0), (6.0, 2.0), (1.0, 7.0), (6.0, 7.0), (1.0, 12.0)]
    );
    let line: Vec<(f64, f64)> = s.nodes[7..].iter().filter_map(|n| n.position).collect();
    assert_eq!(line, [(0.0, 0.0), (10.0, 0.0), (20.0, 0.0)]);
    assert_eq!(
        (s.nodes[3].group, s.nodes[3].index_in_group, s.nodes[3].role),
        (Some(0), Some(1), Role::Client)
    );
    assert_eq!(
        (s.nodes[9].group, s.nodes[9].index_in_group),
        (Some(1), Some(3))
    );
    let links: Vec<&str> = s.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        links,
        [
            "backhaul",
            "s-0--router",
            "s-1--router",
            "s-2--router",
            "s-3--router",
            "s-4--router",
            "l1--s-0",
            "l2--s-0",
            "l3--s-0"
        ]
    );
    assert_eq!((s.links[6].a, s.links[6].b), (7, 2));
}

#[test]
fn random_placement_is_reproducible() {
    let text = with("[[groups]]\nname = \"r-{i}\"\ncount = 50\nrole = \"client\"\nplacement = { kind = \"random\", area = [100.0, 20.0], origin = [5.0, 0.0] }\n");
    let a = load_ok(&text);
    let b = load_ok(&text);
    let pa: Vec<(f64, f64)> = a.nodes.iter().filter_map(|n| n.position).collect();
    let pb: Vec<(f64, f64)> = b.nodes.iter().filter_map(|n| n.position).collect();
    assert_eq!(pa.len(), 50);
    assert_eq!(pa, pb);
    assert!(pa
        .iter()
        .all(|&(x, y)| (5.0..105.0).contains(&x) && (0.0..20.0).contains(&y)));
    // Not all on one spot, and spread over the area.
    let mean_x = pa.iter().map(|p| p.0).sum::<f64>() / 50.0;
    assert!((35.0..75.0).contains(&mean_x), "mean x {mean_x}");
    let c = load_str(&text, "t.toml", &fixtures(), &strings(&["seed=2"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let pc: Vec<(f64, f64)> = c.nodes.iter().filter_map(|n| n.position).collect();
    assert_ne!(pa, pc, "another seed moves the nodes");
}

#[test]
fn presets_and_their_overrides() {
    let s = load_ok(&with(
        "[[links]]\na = \"collector\"\nb = \"router\"\npreset = \"slow-lossy\"\n\n[[links]]\nname = \"x\"\na = \"collector\"\nb = \"router\"\npreset = \"slow-lossy\"\ndelay = \"1.5 s\"\nrate = \"250 kbit/s\"\nloss = { model = \"none\" }\nqueue = 7\n",
    ));
    let wired = &s.links[0];
    assert_eq!(
        (
            wired.rate_bps,
            wired.delay,
            wired.mtu,
            wired.queue,
            &wired.loss
        ),
        (
            100_000_000,
            SimDuration::from_millis(1),
            1500,
            100,
            &LossSpec::None
        )
    );
    let slow = &s.links[1];
    assert_eq!(slow.name, "collector--router");
    assert_eq!(
        (slow.rate_bps, slow.delay, slow.mtu, slow.queue, &slow.loss),
        (
            250_000,
            SimDuration::from_millis(50),
            1500,
            32,
            &LossSpec::Bernoulli { p: 0.1 }
        )
    );
    let x = &s.links[2];
    assert_eq!(x.delay.as_nanos(), 1_500_000_000);
    assert_eq!(x.rate_bps, 250_000);
    assert_eq!((x.queue, &x.loss), (7, &LossSpec::None));
    let bad = BASE.replace("b = \"collector\"", "b = \"collector\"\npreset = \"fibre\"");
    let e = expect_err(
        &bad,
        16,
        "links.backhaul.preset",
        "unknown preset \"fibre\"",
    );
    assert!(e.message.contains("wired, slow-lossy"), "{e}");
}

#[test]
fn gilbert_conversion_values() {
    let s = load_ok(&BASE.replace(
        "b = \"collector\"",
        "b = \"collector\"\nloss = { model = \"gilbert_elliott\", mean_loss = 0.2, burst = 4.0 }",
    ));
    // r = 1/4, p = r·ρ/(1−ρ) = 0.25·0.2/0.8 = 0.0625.
    match s.links[0].loss {
        LossSpec::GilbertElliott {
            p_gb,
            p_bg,
            loss_good,
            loss_bad,
        } => {
            assert!((p_gb - 0.0625).abs() < 1e-15, "{p_gb}");
            assert_eq!((p_bg, loss_good, loss_bad), (0.25, 0.0, 1.0));
            // Stationary bad-state probability equals the requested mean loss.
            assert!((p_gb / (p_gb + p_bg) - 0.2).abs() < 1e-12);
        }
        ref other => panic!("{other:?}"),
    }
    let s = load_ok(&BASE.replace("b = \"collector\"", "b = \"collector\"\nloss = { model = \"gilbert_elliott\", p_gb = 0.01, p_bg = 0.5, loss_bad = 0.8 }"));
    assert_eq!(
        s.links[0].loss,
        LossSpec::GilbertElliott {
            p_gb: 0.01,
            p_bg: 0.5,
            loss_good: 0.0,
            loss_bad: 0.8
        }
    );
}

#[test]
fn trace_files_of_both_formats() {
    let s = load_file(&fixtures().join("trace-links.toml"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let bits: Vec<bool> = "0001100001".chars().map(|c| c == '1').collect();
    assert_eq!(
        s.links[0].loss,
        LossSpec::Trace(TraceSpec::Bits {
            bits: bits.into(),
            repeat: false,
            file: PathBuf::from("loss.bits")
        })
    );
    assert_eq!(
        s.links[1].loss,
        LossSpec::Trace(TraceSpec::Intervals {
            intervals: vec![
                (SimTime::ZERO, false),
                (SimTime::from_nanos(12_500_000_000), true),
                (SimTime::from_nanos(15_000_000_000), false)
            ]
            .into(),
            loss_good: 0.01,
            loss_bad: 1.0,
            period: Some(SimDuration::from_secs(20)),
            file: PathBuf::from("states.intervals"),
        })
    );
}

#[test]
fn flows_events_and_protocols_resolve() {
    let s = load_ok(&with(
        r#"[[groups]]
name = "s-{i}"
count = 3
role = "client"
link = { to = "router" }

[[flows]]
name = "p2p"
pattern = "point_to_point"
protocol = "coap"
reliability = "non"
publishers = ["s-?", "s-1"]
receivers = ["collector", "router", "s-1"]
topic = "{flow}/{name}/{i}"
payload_bytes = 6
timing = "poisson"
interval = "250 ms"
start = "2 s"
count = 10
value = { kind = "uniform", min = 1.0, max = 2.0 }

[[events]]
at = "30 s"
action = "heal"

[[events]]
at = "10 s"
action = "partition"
nodes = ["s-*"]

[[events]]
at = "10 s"
action = "set_loss"
link = "s-2--router"
loss = { model = "bernoulli", p = 0.5 }

[protocols.ip]
ttl = 8
dont_fragment = true

[protocols.coap]
ack_random_factor = 2.0
nstart = 2
"#,
    ));
    let f = &s.flows[0];
    // Globs resolve in node order, deduplicated; paired in order.
    assert_eq!(f.publishers, vec![2, 3, 4]);
    assert_eq!(f.receivers, vec![0, 1, 2]);
    assert!(
        matches!(f.timing, Timing::Poisson { mean_interval } if mean_interval == SimDuration::from_millis(250))
    );
    assert_eq!(
        (f.payload_bytes, f.start, f.count),
        (6, SimDuration::from_secs(2), Some(10))
    );
    assert_eq!(f.value, ValueGen::Uniform { min: 1.0, max: 2.0 });
    assert_eq!(topic_for(f, &s.nodes, 1), "p2p/s-2/2");
    let at: Vec<u64> = s
        .events
        .iter()
        .map(|e| e.at.as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(at, [10, 10, 30]);
    assert_eq!(
        s.events[0].action,
        Action::Partition {
            nodes: vec![2, 3, 4]
        }
    );
    assert_eq!(
        s.events[1].action,
        Action::SetLoss {
            link: 2,
            loss: LossSpec::Bernoulli { p: 0.5 }
        }
    );
    assert_eq!(s.events[2].action, Action::Heal);
    assert_eq!(
        (s.protocols.ip.ttl, s.protocols.ip.dont_fragment),
        (8, true)
    );
    assert_eq!(
        (s.protocols.coap.ack_random_factor, s.protocols.coap.nstart),
        (2.0, 2)
    );
}

#[test]
fn topic_index_for_explicit_publishers_is_their_position() {
    let t = flow(
        "broadcast",
        "udp",
        "best_effort",
        "[\"router\", \"collector\"]",
        "[\"collector\"]",
        "n/{i}/{name}",
    );
    let s = load_ok(&t);
    // Node order: collector (0) then router (1).
    assert_eq!(s.flows[0].publishers, vec![0, 1]);
    assert_eq!(topic_for(&s.flows[0], &s.nodes, 0), "n/1/collector");
    assert_eq!(topic_for(&s.flows[0], &s.nodes, 1), "n/2/router");
}

/// "did you mean" (issue 17 item 7): an unknown field, choice or node
/// name one or two edits from a known one names it.
#[test]
fn misspelt_names_get_a_suggestion() {
    let err = |text: &str| {
        qossim::scenario::load_str(text, "t.toml", std::path::Path::new("."), &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("name = \"x\"\ndurration = \"1 s\"\n");
    assert!(
        e.contains("t.toml:2") && e.ends_with("did you mean `duration`?"),
        "{e}"
    );
    let e = err("name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"a\"\nrole = \"clinet\"\n");
    assert!(
        e.contains("nodes.a.role") && e.ends_with("did you mean `client`?"),
        "{e}"
    );
    let e = err("name = \"x\"\nduration = \"1 s\"\n[[nodes]]\nname = \"router\"\nrole = \"router\"\n[[nodes]]\nname = \"b\"\nrole = \"client\"\n[[links]]\na = \"b\"\nb = \"ruoter\"\n");
    assert!(
        e.contains("unknown node \"ruoter\"") && e.ends_with("did you mean `router`?"),
        "{e}"
    );
}

/// `--set links.<member>--<to>.…` (issue 17 item 6) changes one group
/// member's link and leaves the others' as the template says; the same
/// through `link.members` in the file; a `members` entry that names no
/// member is an error at that entry.
#[test]
fn one_group_members_link_can_be_set() {
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let base = load_file(&q, &[]).expect("quickstart");
    let sc = load_file(
        &q,
        &strings(&[
            "links.sensor-2--router.loss.p=0.3",
            "links.sensor-2--router.delay=40ms",
        ]),
    )
    .expect("override");
    assert_eq!(sc.links.len(), base.links.len());
    for (a, b) in base.links.iter().zip(&sc.links) {
        assert_eq!(a.name, b.name);
        if b.name == "sensor-2--router" {
            assert_eq!(b.loss, qossim::link::model::LossSpec::Bernoulli { p: 0.3 });
            assert_eq!(b.delay, SimDuration::from_millis(40));
            assert_eq!(b.rate_bps, a.rate_bps, "the template's rate stays");
        } else {
            assert_eq!(
                (&a.loss, a.delay, a.rate_bps),
                (&b.loss, b.delay, b.rate_bps),
                "{}",
                a.name
            );
        }
    }
    let text = std::fs::read_to_string(&q).expect("read");
    let bad = text.replace(
        "link = {",
        "link = { members = { sensor-9 = { delay = \"1 ms\" } },",
    );
    assert_ne!(bad, text, "quickstart's group has an inline link");
    let e = load_str(&bad, "q.toml", Path::new("scenarios"), &[]).expect_err("no such member");
    let msg = e.to_string();
    assert!(msg.contains("no member named \"sensor-9\""), "{msg}");
    assert_eq!(
        e.field.as_deref(),
        Some("groups.sensor-{i}.link.members.sensor-9"),
        "{msg}"
    );
}
