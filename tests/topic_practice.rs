//! Topic-practice warnings (issue 18 item 5, `scenario::topic_practice`):
//! each fires on a scenario built for it, at the line of the field it is
//! about, with the better form built from the actual names; none fires on
//! a shipped scenario unless it says it demonstrates bad practice;
//! `--deny-warnings` makes them exit 2.

mod common;

use common::cli::run;
use common::temp_dir;
use std::path::{Path, PathBuf};

/// Two sensors publishing to a collector through a broker; `FLOW` is
/// replaced by the flow's extra lines, `TOPIC` by its topic.
const BASE: &str = r#"name = "topics"
seed = 1
duration = "10 s"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "hvac719"
role = "client"
[[nodes]]
name = "hvac720"
role = "client"
[[nodes]]
name = "collector"
role = "client"
[[links]]
a = "hvac719"
b = "broker"
[[links]]
a = "hvac720"
b = "broker"
[[links]]
a = "collector"
b = "broker"
[[flows]]
name = "readings"
protocol = "mqtt"
publishers = ["hvac719", "hvac720"]
receivers = ["collector"]
payload_bytes = 20
interval = "1 s"
PATTERN
topic = "TOPIC"
"#;

fn scenario(tag: &str, pattern: &str, topic: &str, extra: &str) -> (PathBuf, usize) {
    let text = BASE
        .replace("PATTERN", &format!("pattern = \"{pattern}\""))
        .replace("TOPIC", topic)
        + extra;
    let line = text
        .lines()
        .position(|l| l.starts_with("topic = "))
        .expect("topic line")
        + 1;
    let dir = temp_dir(tag);
    let p = dir.join("s.toml");
    std::fs::write(&p, text).expect("write");
    (p, line)
}

fn check(p: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", p.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let (code, _, err) = run(&args);
    (code, err)
}

/// The topic-practice warning lines of `qossim check`.
fn practice(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("warning: topic practice"))
        .collect()
}

/// `topic`, as flow `readings` of pattern `pattern`, draws exactly one
/// topic-practice warning, of kind `kind`, located at the topic line, and
/// containing `better`.
fn fires(kind: &str, pattern: &str, topic: &str, better: &str) {
    let (p, line) = scenario(kind, pattern, topic, "");
    let (code, err) = check(&p, &[]);
    assert_eq!(code, 0, "a warning is not an error: {err}");
    let w = practice(&err);
    assert_eq!(w.len(), 1, "{kind}: {err}");
    let loc = format!("{}:{line}:", p.display());
    assert!(w[0].starts_with(&loc), "{kind}: want {loc}: {}", w[0]);
    assert!(w[0].contains(&format!("({kind})")), "{}", w[0]);
    assert!(w[0].contains(better), "{kind}: want {better}: {}", w[0]);
}

#[test]
fn each_warning_fires_at_its_line_with_the_better_form() {
    fires(
        "leading-slash",
        "fan_in",
        "/hv100/bld1518/basement/{name}",
        "better \"hv100/bld1518/basement/hvac719\"",
    );
    fires(
        "empty-level",
        "fan_in",
        "hv100//basement/{name}",
        "better \"hv100/basement/hvac719\"",
    );
    fires(
        "space-or-non-ascii",
        "fan_in",
        "hv100/bld1518/bäsement floor/{name}",
        "better \"hv100/bld1518/bsement-floor/hvac719\"",
    );
    fires(
        "upper-case",
        "fan_in",
        "HV100/bld1518/Basement/{name}",
        "better \"hv100/bld1518/basement/hvac719\"",
    );
    fires(
        "subscribe-all",
        "fan_in",
        "{name}",
        "e.g. \"readings/hvac719\" (filter \"readings/+\")",
    );
    fires(
        "indistinguishable",
        "fan_in",
        "hv100/bld1518/basement",
        "e.g. \"hv100/bld1518/basement/hvac719\"",
    );
}

/// `client-id`: one device (hvac719) whose topic names neither its
/// client id nor anything of its own; a point-to-point topic may name the
/// receiver instead; broadcast flows are not checked.
#[test]
fn client_id_missing_from_a_device_topic_fires_at_its_line() {
    let one = |tag: &str, pattern: &str, topic: &str| {
        let (p, line) = scenario(tag, pattern, topic, "");
        let text = std::fs::read_to_string(&p)
            .expect("read")
            .replace("[\"hvac719\", \"hvac720\"]", "[\"hvac719\"]");
        std::fs::write(&p, text).expect("write");
        let (code, err) = check(&p, &[]);
        assert_eq!(code, 0, "{err}");
        (p, line, err)
    };
    let (p, line, err) = one("cid", "fan_in", "hv100/bld1518/basement/temperature");
    let w = practice(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(
        w[0].starts_with(&format!("{}:{line}:", p.display())),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("(client-id)") && w[0].contains("`hvac719`"),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("better \"hv100/bld1518/basement/hvac719/temperature\""),
        "{}",
        w[0]
    );
    // a command topic without the receiver's name fires too
    let (_, _, err) = one("cid-p2p", "point_to_point", "hv100/setpoint");
    assert!(
        practice(&err).iter().any(|w| w.contains("(client-id)")),
        "{err}"
    );
    for (tag, pattern, topic) in [
        // the client id as a level, or a per-publisher placeholder
        (
            "cid-ok",
            "fan_in",
            "hv100/bld1518/basement/hvac719/temperature",
        ),
        (
            "cid-i",
            "fan_in",
            "hv100/bld1518/basement/sensor{i}/temperature",
        ),
        // a command naming the device it is for
        ("cid-rx", "point_to_point", "hv100/collector/setpoint"),
        // addressed to many: named for what it addresses
        ("cid-bc", "broadcast", "hv100/alarm"),
    ] {
        let (_, _, err) = one(tag, pattern, topic);
        assert!(practice(&err).is_empty(), "{tag}: {err}");
    }
}

/// A good topic draws nothing; an ACL letting devices subscribe to `#`
/// is warned about at the `acl` line.
#[test]
fn good_topics_are_quiet_and_acl_subscribe_all_is_not() {
    let (p, _) = scenario("good", "fan_in", "hv100/bld1518/basement/{name}", "");
    let (code, err) = check(&p, &["--deny-warnings"]);
    assert_eq!(code, 0, "{err}");
    assert!(practice(&err).is_empty(), "{err}");
    let acl = "[protocols.mqtt]\nacl = [\n  { clients = \"hvac*\", publish = [\"hv100/#\"] },\n  { clients = \"collector\", subscribe = [\"#\"] },\n]\n";
    let (p, _) = scenario("acl-all", "fan_in", "hv100/bld1518/basement/{name}", acl);
    let text = std::fs::read_to_string(&p).expect("read");
    let line = text
        .lines()
        .position(|l| l.starts_with("acl = "))
        .expect("acl")
        + 1;
    let (_, err) = check(&p, &[]);
    let w = practice(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(
        w[0].starts_with(&format!("{}:{line}:", p.display())),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("(subscribe-all)") && w[0].contains("collector"),
        "{}",
        w[0]
    );
}

#[test]
fn deny_warnings_exits_2_and_demonstrates_silences() {
    let (p, _) = scenario("deny", "fan_in", "/Bad Topic/{name}", "");
    let (code, err) = check(&p, &["--deny-warnings"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(practice(&err).len(), 3, "{err}");
    // `run` stops before running, too
    let out = temp_dir("deny-run");
    let (code, _, err) = run(&[
        "run",
        p.to_str().expect("utf-8"),
        "--deny-warnings",
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!practice(&err).is_empty(), "{err}");
    let (p, _) = scenario(
        "demo",
        "fan_in",
        "/Bad Topic/{name}",
        "[report]\ndemonstrates = [\"topic-practice\"]\n",
    );
    let (code, err) = check(&p, &["--deny-warnings"]);
    assert_eq!(code, 0, "{err}");
    assert!(practice(&err).is_empty(), "{err}");
    // `allow` silences the named kind only
    let (p, _) = scenario(
        "allow",
        "fan_in",
        "/Bad Topic/{name}",
        "[report]\nallow = [\"leading-slash\"]\n",
    );
    let (_, err) = check(&p, &[]);
    let w = practice(&err);
    assert_eq!(w.len(), 2, "{err}");
    assert!(w.iter().all(|w| !w.contains("(leading-slash)")), "{err}");
    let (p, _) = scenario(
        "allow-bad",
        "fan_in",
        "a/{name}",
        "[report]\nallow = [\"client-id\", \"no-such\"]\n",
    );
    let (code, err) = check(&p, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("report.allow[1]") && err.contains("no-such"),
        "{err}"
    );
    // an unknown practice is a located error
    let (p, _) = scenario(
        "demo-bad",
        "fan_in",
        "a/{name}",
        "[report]\ndemonstrates = [\"nothing\"]\n",
    );
    let (code, err) = check(&p, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("report.demonstrates[0]"), "{err}");
}

/// No shipped scenario draws a topic-practice warning unless it says it
/// demonstrates bad practice.
#[test]
fn shipped_scenarios_are_quiet_unless_they_demonstrate() {
    let files = common::shipped_scenarios();
    assert!(files.len() > 30, "{files:?}");
    let mut demonstrating = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let (_, err) = check(f, &[]);
        if text.contains("demonstrates = [\"topic-practice\"]") {
            demonstrating += 1;
            continue;
        }
        assert!(
            practice(&err).is_empty(),
            "{}: {}",
            f.display(),
            practice(&err).join("\n")
        );
    }
    // the topics lesson shows bad practice on purpose, and says so; without
    // that line it would be warned about
    assert_eq!(demonstrating, 1);
    let topics = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/teaching/topics.toml"),
    )
    .expect("read");
    let dir = temp_dir("topics-undeclared");
    let p = dir.join("topics.toml");
    std::fs::write(
        &p,
        topics.replace("demonstrates = [\"topic-practice\"]", "demonstrates = []"),
    )
    .expect("write");
    let (_, err) = check(&p, &[]);
    assert!(
        practice(&err).iter().any(|w| w.contains("(leading-slash)")),
        "{err}"
    );
}
