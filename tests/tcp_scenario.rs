//! `[protocols.tcp]` in scenario files: profile defaults, explicit
//! overrides, range errors naming the field and line, `--set` paths.

use qossim::scenario::load_str;
use qossim::sim::SimDuration;
use qossim::transport::tcp::{Config, CongestionAlgorithm, InitialWindow, Profile, RtoFormula};
use std::path::Path;

const BASE: &str = r#"
name = "tcp"
duration = "10 s"

[[nodes]]
name = "a"
role = "client"
"#;

fn load(
    extra: &str,
    set: &[&str],
) -> Result<qossim::scenario::model::Scenario, qossim::scenario::ScenarioError> {
    let text = format!("{BASE}{extra}");
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    load_str(&text, "t.toml", Path::new("."), &set)
}

#[test]
fn default_is_linux_like() {
    let s = load("", &[]).unwrap();
    assert_eq!(s.protocols.tcp.config, Config::linux_like());
}

#[test]
fn profile_rfc_with_overrides() {
    let s = load(
        r#"
[protocols.tcp]
profile = "rfc"
min_rto = "200 ms"
syn_retries = 3
timestamps = true
window_scale = 5
initial_window = 4
user_timeout = "30 s"
delayed_ack_max = "100 ms"
delayed_ack_min = "40 ms"
nagle = false
"#,
        &[],
    )
    .unwrap();
    let c = s.protocols.tcp.config;
    assert_eq!(c.profile, Profile::Rfc);
    assert_eq!(c.rto_formula, RtoFormula::Rfc6298);
    assert_eq!(c.initial_rto, SimDuration::from_secs(1));
    assert_eq!(c.min_rto, SimDuration::from_millis(200));
    assert_eq!(c.syn_retries, 3);
    assert!(c.timestamps && !c.nagle);
    assert_eq!(c.window_scale, Some(5));
    assert_eq!(c.initial_window, InitialWindow::Segments(4));
    assert_eq!(c.user_timeout, Some(SimDuration::from_secs(30)));
    assert_eq!(c.delayed_ack_max, SimDuration::from_millis(100));
    // Untouched fields keep the rfc profile's values.
    assert_eq!(c.max_rto, SimDuration::from_secs(60));
    assert_eq!(c.retries, 8);
}

#[test]
fn set_overrides_tcp_fields() {
    let s = load(
        "",
        &["protocols.tcp.profile=rfc", "protocols.tcp.retries=3"],
    )
    .unwrap();
    assert_eq!(s.protocols.tcp.config.profile, Profile::Rfc);
    assert_eq!(s.protocols.tcp.config.retries, 3);
}

#[test]
fn errors_name_field_and_line() {
    let e = load("\n[protocols.tcp]\nprofile = \"bsd\"\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.profile"));
    assert_eq!(e.line, Some(10));
    assert!(e.message.contains("linux-like"), "{}", e.message);
    let e = load("\n[protocols.tcp]\nwindow_scale = 15\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.window_scale"));
    let e = load("\n[protocols.tcp]\ndelayed_ack_max = \"600 ms\"\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.delayed_ack_max"));
    let e = load("\n[protocols.tcp]\nmin_rto = \"200 s\"\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.min_rto"));
    let e = load(
        "\n[protocols.tcp]\nwindow_scaling = false\nwindow_scale = 3\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.window_scale"));
    let e = load("\n[protocols.tcp]\nsyn_retry = 3\n", &[]).unwrap_err();
    assert!(e.message.contains("syn_retry"), "{}", e.message);
}

#[test]
fn congestion_overrides_the_profile() {
    // Profiles: linux-like CUBIC, rfc NewReno.
    let s = load("", &[]).unwrap();
    assert_eq!(
        s.protocols.tcp.config.congestion,
        CongestionAlgorithm::Cubic
    );
    let s = load("\n[protocols.tcp]\nprofile = \"rfc\"\n", &[]).unwrap();
    assert_eq!(
        s.protocols.tcp.config.congestion,
        CongestionAlgorithm::NewReno
    );
    // Explicit field either way; everything else stays the profile's.
    let s = load("\n[protocols.tcp]\ncongestion = \"newreno\"\n", &[]).unwrap();
    let c = s.protocols.tcp.config;
    assert_eq!(c.congestion, CongestionAlgorithm::NewReno);
    assert_eq!(
        Config {
            congestion: CongestionAlgorithm::Cubic,
            ..c
        },
        Config::linux_like()
    );
    let s = load(
        "\n[protocols.tcp]\nprofile = \"rfc\"\ncongestion = \"cubic\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.protocols.tcp.config.profile, Profile::Rfc);
    assert_eq!(
        s.protocols.tcp.config.congestion,
        CongestionAlgorithm::Cubic
    );
    let s = load("", &["protocols.tcp.congestion=newreno"]).unwrap();
    assert_eq!(
        s.protocols.tcp.config.congestion,
        CongestionAlgorithm::NewReno
    );
    // Anything else names the field, the line and the choices.
    let e = load("\n[protocols.tcp]\ncongestion = \"bbr\"\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.congestion"));
    assert_eq!(e.line, Some(10));
    assert!(
        e.message.contains("\"bbr\"") && e.message.contains("cubic, newreno"),
        "{}",
        e.message
    );
    let e = load("\n[protocols.tcp]\ncongestion = \"Cubic\"\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.congestion"));
    let e = load("\n[protocols.tcp]\ncongestion = 1\n", &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("protocols.tcp.congestion"));
    assert_eq!(e.line, Some(10));
}
