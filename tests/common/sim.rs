//! Helpers shared by integration tests: run a scenario text through the same
//! loader and run path the CLI uses, and read the CSVs back.
use super::temp_dir;
use qossim::run::{run_scenario, RunOptions};
use qossim::scenario::{self, model::Scenario};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Role tables that set the calibrated processing defaults of brokers,
/// servers and gateways (`ProcessingSpec::builtin`) to `"0 s"`: appended to
/// a scenario whose test checks link or protocol timing alone.
pub const NO_PROCESSING: &str = r#"
[processing.broker]
stack_tx = "0 s"
stack_rx = "0 s"
service = "0 s"
[processing.server]
stack_tx = "0 s"
stack_rx = "0 s"
service = "0 s"
[processing.gateway]
stack_tx = "0 s"
stack_rx = "0 s"
service = "0 s"
"#;

pub fn load(text: &str, overrides: &[&str]) -> Scenario {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    scenario::load_str(text, "test.toml", Path::new("."), &o)
        .unwrap_or_else(|e| panic!("scenario: {e}"))
}

/// Run `text` into a temp dir (packets and pcap on) and return the dir.
pub fn run_text(tag: &str, text: &str, overrides: &[&str]) -> PathBuf {
    run_text_with(tag, text, overrides, false)
}

/// [`run_text`] with the spec-oracle monitors on (violations.csv).
pub fn run_text_checked(tag: &str, text: &str) -> PathBuf {
    run_text_with(tag, text, &[], true)
}

fn run_text_with(tag: &str, text: &str, overrides: &[&str], check: bool) -> PathBuf {
    let sc = load(text, overrides);
    let dir = temp_dir(tag);
    run_scenario(
        &sc,
        &RunOptions {
            check,
            out_dir: dir.clone(),
            packets: true,
            pcap: true,
            fsync: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("run: {e}"));
    dir
}

/// Rows of a CSV file as maps column → value.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The runs.csv row of `flow`.
pub fn run_row(dir: &Path, flow: &str) -> BTreeMap<String, String> {
    read_csv(&dir.join("runs.csv"))
        .into_iter()
        .find(|r| r["flow"] == flow)
        .unwrap_or_else(|| panic!("no runs.csv row for flow {flow}"))
}

pub fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .parse()
        .unwrap_or_else(|_| panic!("column {col} = {:?} is not a number", row[col]))
}

/// The layers of `bytes_on_wire` in runs.csv, which sum to it
/// (docs/metrics.md, "Bytes by layer").
pub const BYTE_LAYERS: [&str; 7] = [
    "bytes_payload",
    "bytes_protocol",
    "bytes_security",
    "bytes_transport_ip",
    "bytes_link",
    "bytes_adaptation",
    "bytes_retransmissions",
];

/// Assert a runs.csv row's byte layers add up to its `bytes_on_wire`.
pub fn assert_layers_sum(row: &BTreeMap<String, String>) {
    let sum: f64 = BYTE_LAYERS.iter().map(|c| num(row, c)).sum();
    assert_eq!(
        sum,
        num(row, "bytes_on_wire"),
        "layers of flow {} do not add up: {row:?}",
        row["flow"]
    );
}

/// Assert |measured − expected| ≤ k standard errors of a proportion over n trials.
pub fn assert_proportion(measured: f64, expected: f64, n: f64, k: f64, what: &str) {
    let se = (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (measured - expected).abs() <= k * se,
        "{what}: measured {measured:.5}, expected {expected:.5} ± {k}·{se:.5} (n = {n})"
    );
}

/// The text of a shipped scenario file (`scenarios/<name>`).
pub fn scenario_file(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `base` with `[[events]]` appended: (at, action, target key, target).
pub fn with_events(base: &str, events: &[(&str, &str, &str, &str)]) -> String {
    let mut t = base.to_string();
    for (at, action, key, target) in events {
        t.push_str(&format!(
            "\n[[events]]\nat = \"{at}\"\naction = \"{action}\"\n{key} = \"{target}\"\n"
        ));
    }
    t
}

/// Two nodes on one 802.15.4 medium, A sending UDP to B 10 m away:
/// −70 dBm over a −100 dBm noise floor with no fading and no shadowing, so
/// SINR delivers every frame (PER ≈ 10⁻¹⁰⁰) and only what `mac` adds (a
/// medium `loss`, MAC settings) loses any. `head` holds the top-level
/// fields (name, seed, duration, drain), `mac` extra `[[media]]` fields,
/// `flow` the flow's `payload_bytes`, `interval` and any other field,
/// `tail` tables appended at the end.
pub fn radio_pair(head: &str, mac: &str, flow: &str, tail: &str) -> String {
    format!(
        r#"{head}
[[nodes]]
name = "A"
role = "client"
position = [0.0, 0.0]

[[nodes]]
name = "B"
role = "server"
position = [10.0, 0.0]

[[media]]
name = "wpan"
members = ["A", "B"]
fading = "none"
shadowing_db = 0.0
{mac}

[[flows]]
name = "f"
pattern = "point_to_point"
protocol = "udp"
publishers = ["A"]
receivers = ["B"]
topic = "t"
{flow}
{tail}"#
    )
}
