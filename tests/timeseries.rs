//! Per-interval and per-element tables: `timeseries.csv` sums to the run's
//! totals, `events.csv` and the charts' markers sit at the events' times,
//! `links.csv` agrees with `packets.csv`, `nodes.csv` counts forwarding.

mod common;
use common::sim::*;
use std::collections::BTreeMap;

fn sum(rows: &[BTreeMap<String, String>], flow: &str, col: &str) -> f64 {
    rows.iter()
        .filter(|r| r["flow"] == flow)
        .map(|r| r[col].parse::<f64>().unwrap_or(0.0))
        .sum()
}

#[test]
fn timeseries_sums_equal_run_totals() {
    for (tag, file) in [
        ("ts-mqtt", "teaching/qos-levels.toml"),
        ("ts-coap", "coap-vs-udp.toml"),
        ("ts-tcp", "tcp-lossy-telemetry.toml"),
    ] {
        let dir = run_text(tag, &scenario_file(file), &[]);
        let ts = read_csv(&dir.join("timeseries.csv"));
        let runs = read_csv(&dir.join("runs.csv"));
        assert!(!runs.is_empty());
        for r in &runs {
            let flow = r["flow"].as_str();
            for (ts_col, run_col) in [
                ("sent", "sent"),
                ("intended", "intended"),
                ("delivered", "delivered"),
                ("bytes_on_wire", "bytes_on_wire"),
                ("retransmissions", "retransmissions"),
            ] {
                assert_eq!(
                    sum(&ts, flow, ts_col),
                    num(r, run_col),
                    "{tag} {flow} {ts_col}"
                );
            }
        }
        // intervals tile the run: 1 s each, the last one up to the end
        let flows = runs.len();
        let first_flow = &runs[0]["flow"];
        let widths: f64 = ts
            .iter()
            .filter(|r| &r["flow"] == first_flow)
            .map(|r| num(r, "interval_ms"))
            .sum();
        let sc = load(&scenario_file(file), &[]);
        let end_ms = (sc.duration + sc.drain).as_nanos() as f64 / 1e6;
        assert!(
            (widths - end_ms).abs() < 1e-6,
            "{tag}: {widths} vs {end_ms}"
        );
        assert_eq!(ts.len() % flows, 0);
    }
}

#[test]
fn interval_is_configurable_and_zero_turns_series_off() {
    let text = scenario_file("tcp-lossy-telemetry.toml");
    let dir = run_text("ts-10s", &text, &["timeseries_interval=10s"]);
    let ts = read_csv(&dir.join("timeseries.csv"));
    assert_eq!(ts.len(), 36, "360 s in 10 s intervals");
    assert_eq!(ts[1]["t_ms"], "10000.000000");
    let dir = run_text("ts-off", &text, &["timeseries_interval=0s"]);
    assert!(!dir.join("timeseries.csv").exists());
    assert!(!dir
        .join("charts")
        .join("timeseries_delivery_ratio.svg")
        .exists());
}

#[test]
fn event_markers_at_the_events_times() {
    let dir = run_text("ts-events", &scenario_file("tcp-lossy-telemetry.toml"), &[]);
    let ev = read_csv(&dir.join("events.csv"));
    let got: Vec<(&str, &str, &str)> = ev
        .iter()
        .map(|e| {
            (
                e["t_ms"].as_str(),
                e["action"].as_str(),
                e["target"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("120000.000000", "link_down", "radio"),
            ("180000.000000", "link_up", "radio")
        ]
    );
    // the link's series shows the outage: nothing delivered on it meanwhile
    let links = read_csv(&dir.join("timeseries_links.csv"));
    let during: f64 = links
        .iter()
        .filter(|r| (121_000.0..179_000.0).contains(&num(r, "t_ms")))
        .map(|r| num(r, "packets"))
        .sum();
    assert_eq!(during, 0.0, "no transmissions while the link is down");
    for m in ["delivery_ratio", "latency_ms_p99", "bytes_on_wire"] {
        let svg = std::fs::read_to_string(dir.join("charts").join(format!("timeseries_{m}.svg")))
            .expect("chart");
        assert!(
            svg.contains("link_down radio") && svg.contains("link_up radio"),
            "{m}"
        );
    }
    // TCP series: the connection's RTO backs off during the outage
    let tcp = read_csv(&dir.join("timeseries_tcp.csv"));
    let rto = |t: f64| {
        tcp.iter()
            .find(|r| r["side"] == "client" && num(r, "t_ms") == t)
            .map(|r| num(r, "rto_ms"))
            .unwrap()
    };
    assert!(
        rto(130_000.0) > 4.0 * rto(100_000.0),
        "RTO backs off in the outage"
    );
}

#[test]
fn links_csv_agrees_with_packets_csv() {
    let dir = run_text("ts-links", &scenario_file("line-3hop.toml"), &[]);
    let packets = read_csv(&dir.join("packets.csv"));
    let links = read_csv(&dir.join("links.csv"));
    assert_eq!(links.len(), 8, "4 links × 2 directions");
    for l in &links {
        let count = |outcomes: &[&str]| {
            packets
                .iter()
                .filter(|p| p["link"] == l["link"] && p["from"] == l["from"])
                .filter(|p| outcomes.contains(&p["outcome"].as_str()))
                .count() as f64
        };
        assert_eq!(
            num(l, "packets"),
            count(&["delivered", "lost_channel"]),
            "{l:?}"
        );
        assert_eq!(num(l, "delivered"), count(&["delivered"]));
        assert_eq!(num(l, "drops_channel"), count(&["lost_channel"]));
        assert_eq!(num(l, "drops_queue"), count(&["lost_queue"]));
        assert_eq!(num(l, "drops_link_down"), count(&["lost_link_down"]));
        let bytes: f64 = packets
            .iter()
            .filter(|p| p["link"] == l["link"] && p["from"] == l["from"])
            .filter(|p| p["outcome"] == "delivered" || p["outcome"] == "lost_channel")
            .map(|p| num(p, "bytes"))
            .sum();
        assert_eq!(num(l, "bytes"), bytes);
        let u = num(l, "utilisation");
        assert!((0.0..=1.0).contains(&u));
    }
    let nodes = read_csv(&dir.join("nodes.csv"));
    for n in &nodes {
        let routes = n["role"] == "router";
        assert_eq!(num(n, "ip_forwarded") > 0.0, routes, "{n:?}");
    }
}

/// A radio medium's series: per-interval collisions and transmissions sum
/// to its links.csv totals.
#[test]
fn medium_series_sums_to_its_totals() {
    let dir = run_text(
        "ts-medium",
        &scenario_file("wireless-star.toml"),
        &["duration=2min"],
    );
    let total = read_csv(&dir.join("links.csv"))
        .into_iter()
        .find(|l| l["link"] == "wpan")
        .expect("medium row");
    let series = read_csv(&dir.join("timeseries_links.csv"));
    let rows: Vec<_> = series.iter().filter(|r| r["link"] == "wpan").collect();
    assert!(!rows.is_empty());
    for col in ["collisions", "packets"] {
        let s: f64 = rows.iter().map(|r| num(r, col)).sum();
        assert_eq!(s, num(&total, col), "{col}");
    }
    assert!(num(&total, "collisions") > 0.0);
}
