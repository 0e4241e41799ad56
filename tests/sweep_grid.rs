//! The grid of a `[sweep]`: order of runs, cross and zip, seeds that depend
//! on the parameter point and replication (not on positions), shards that
//! partition the runs.

use qossim::scenario::load_str;
use qossim::sweep::{expand, in_shard, parse_shard};
use std::path::Path;

fn fixture() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-small.toml"),
    )
    .expect("fixture")
}

/// The fixture with its `[sweep]` table replaced by `sweep`.
fn with_sweep(sweep: &str) -> qossim::scenario::model::Scenario {
    let text = fixture();
    let base = &text[..text.find("[sweep]").expect("[sweep] in the fixture")];
    load_str(&format!("{base}{sweep}\n"), "test", Path::new("."), &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn cross_grid_order_first_axis_outermost_replications_innermost() {
    let sc = with_sweep(
        r#"[sweep]
replications = 2
axes = [
  { path = "links.backhaul.loss.p", values = [0.0, 0.2, 0.4] },
  { path = "flows.udp.protocol", values = ["udp", "coap"] },
]"#,
    );
    let runs = expand(&sc);
    assert_eq!(runs.len(), 3 * 2 * 2);
    let got: Vec<(u64, u64, String, String)> = runs
        .iter()
        .map(|r| {
            (
                r.point,
                r.replication,
                r.params[0].1.clone(),
                r.params[1].1.clone(),
            )
        })
        .collect();
    assert_eq!(got[0], (0, 0, "0.0".into(), "udp".into()));
    assert_eq!(got[1], (0, 1, "0.0".into(), "udp".into()));
    assert_eq!(got[2], (1, 0, "0.0".into(), "coap".into()));
    assert_eq!(got[4], (2, 0, "0.2".into(), "udp".into()));
    assert_eq!(got[11], (5, 1, "0.4".into(), "coap".into()));
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.run_id, i as u64);
        assert_eq!(r.params[0].0, "links.backhaul.loss.p");
        // the overrides make the point, then the seed
        assert_eq!(r.overrides.last(), Some(&format!("seed={}", r.seed)));
    }
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds.len(), runs.len(), "every run has its own seed");
    assert!(runs.iter().all(|r| r.seed <= i64::MAX as u64));
}

#[test]
fn zip_grid_pairs_the_axes() {
    let sc = with_sweep(
        r#"[sweep]
mode = "zip"
axes = [
  { path = "links.backhaul.loss.p", values = [0.0, 0.2, 0.4] },
  { path = "flows.con.reliability", values = ["con", "non", "con"] },
]"#,
    );
    let runs = expand(&sc);
    let pairs: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r.params[0].1.clone(), r.params[1].1.clone()))
        .collect();
    assert_eq!(
        pairs,
        [("0.0", "con"), ("0.2", "non"), ("0.4", "con")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn seeds_depend_on_the_point_not_its_position() {
    let small = expand(&with_sweep(
        r#"[sweep]
replications = 3
axes = [{ path = "links.backhaul.loss.p", values = [0.1, 0.3] }]"#,
    ));
    // a value added in front shifts every position but changes no seed
    let big = expand(&with_sweep(
        r#"[sweep]
replications = 3
axes = [{ path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.2, 0.3] }]"#,
    ));
    for r in &small {
        let twin = big
            .iter()
            .find(|b| b.params == r.params && b.replication == r.replication)
            .expect("same point in the bigger grid");
        assert_eq!(twin.seed, r.seed, "{:?} rep {}", r.params, r.replication);
        assert_ne!(twin.run_id, r.run_id);
    }
    // and the master seed changes them all
    let other = expand(
        &load_str(&fixture(), "test", Path::new("."), &["seed=4".into()])
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let this = expand(&with_sweep(
        r#"[sweep]
replications = 2
axes = [{ path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.3] }]"#,
    ));
    assert_eq!(other.len(), this.len());
    for (a, b) in other.iter().zip(&this) {
        assert_eq!(a.params, b.params);
        assert_ne!(a.seed, b.seed);
    }
}

#[test]
fn no_sweep_table_is_one_run_without_parameters() {
    let text = fixture();
    let base = &text[..text.find("[sweep]").expect("[sweep]")];
    let sc = load_str(base, "test", Path::new("."), &[]).unwrap_or_else(|e| panic!("{e}"));
    let runs = expand(&sc);
    assert_eq!(runs.len(), 1);
    assert!(runs[0].params.is_empty());
}

#[test]
fn shards_partition_the_runs() {
    for n in 1..=5u64 {
        for run in 0..23u64 {
            let owners = (1..=n).filter(|&k| in_shard(run, Some((k, n)))).count();
            assert_eq!(owners, 1, "run {run} with {n} shards");
        }
    }
    assert!(in_shard(7, None));
    assert_eq!(parse_shard("2/4"), Ok((2, 4)));
    for bad in ["0/4", "5/4", "1/0", "x/2", "2", "1/y"] {
        assert!(parse_shard(bad).is_err(), "{bad}");
    }
}

#[test]
fn shipped_sweep_scenarios_have_the_promised_grids() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = |p: &str| {
        qossim::scenario::load_file(&root.join(p), &[]).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    // compare-loss: udp, coap Observe NON and CON, http, mqtt QoS 0/1/2,
    // mqttsn QoS 0/1/2 over loss 0–40% in 8 steps, 3 replications
    let sc = load("scenarios/compare-loss.toml");
    let kinds: Vec<(&str, &str)> = sc
        .flows
        .iter()
        .map(|f| (f.protocol.as_str(), f.reliability.as_str()))
        .collect();
    assert_eq!(kinds.len(), 10, "{kinds:?}");
    assert_eq!(kinds[0].0, "udp");
    assert!(kinds[1..3].iter().all(|k| k.0 == "coap"));
    assert_ne!(kinds[1].1, kinds[2].1, "NON and CON");
    assert!(
        sc.flows[1..3]
            .iter()
            .all(|f| f.coap_mode == qossim::scenario::model::CoapMode::Observe),
        "CoAP telemetry is observed"
    );
    assert_eq!(kinds[3].0, "http");
    assert_eq!(
        kinds[4..],
        [
            ("mqtt", "qos0"),
            ("mqtt", "qos1"),
            ("mqtt", "qos2"),
            ("mqttsn", "qos0"),
            ("mqttsn", "qos1"),
            ("mqttsn", "qos2")
        ]
    );
    assert!(sc.flows.iter().all(|f| f.pattern.as_str() == "fan_in"));
    let runs = expand(&sc);
    assert_eq!(runs.len(), 9 * 3);
    let losses: Vec<f64> = runs
        .iter()
        .filter(|r| r.replication == 0)
        .map(|r| r.params[0].1.parse().expect("number"))
        .collect();
    assert_eq!(losses.len(), 9);
    assert_eq!(losses.first(), Some(&0.0));
    assert_eq!(losses.last(), Some(&0.4));
    // sweep-200: at least 200 runs of a 50-node scenario
    let sc = load("scenarios/bench/sweep-200.toml");
    assert_eq!(sc.nodes.len(), 50);
    assert!(expand(&sc).len() >= 200);
}
