//! The shipped wireless scenarios (determinism, routes, what they report),
//! the presets, and scenario errors for `[[media]]`.

mod common;
use common::sim::{num, read_csv, run_row, run_text};
use std::path::Path;

fn shipped(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn wireless_scenarios_are_byte_identical_across_runs() {
    for name in ["wireless-star.toml", "wireless-multihop.toml"] {
        let text = shipped(name);
        let a = run_text("det-a", &text, &[]);
        let b = run_text("det-b", &text, &[]);
        for f in ["runs.csv", "summary.csv", "messages.csv", "packets.csv"] {
            let (x, y) = (
                std::fs::read(a.join(f)).expect("a"),
                std::fs::read(b.join(f)).expect("b"),
            );
            assert!(!x.is_empty());
            assert!(x == y, "{name}: {f} differs between two runs");
        }
        // and another seed gives another run
        let c = run_text("det-c", &text, &["seed=2"]);
        assert_ne!(
            std::fs::read(a.join("packets.csv")).expect("a"),
            std::fs::read(c.join("packets.csv")).expect("c")
        );
    }
}

#[test]
fn the_star_reports_collisions_energy_and_high_delivery() {
    let dir = run_text("star", &shipped("wireless-star.toml"), &[]);
    let r = run_row(&dir, "readings");
    assert!(num(&r, "delivery_ratio") > 0.9, "{}", r["delivery_ratio"]);
    assert!(num(&r, "collisions") > 0.0);
    assert!(num(&r, "energy_mj") > 0.0);
    assert_eq!(num(&r, "drops_no_route"), 0.0);
    // every sensor reaches the border router directly (one radio hop)
    let rows = read_csv(&dir.join("packets.csv"));
    for row in rows
        .iter()
        .filter(|r| r["link"] == "wpan" && r["from"].starts_with("sensor-"))
    {
        assert_eq!(row["to"], "br", "{row:?}");
    }
    let alarms = run_row(&dir, "alarms");
    assert_eq!(num(&alarms, "delivery_ratio"), 1.0);
}

#[test]
fn the_multihop_line_routes_through_three_routers() {
    let dir = run_text("multihop", &shipped("wireless-multihop.toml"), &[]);
    let rows = read_csv(&dir.join("packets.csv"));
    let mut hops: Vec<(String, String)> = rows
        .iter()
        .filter(|r| {
            r["kind"] == "coap_non" && r["from"] != "collector" && !r["from"].starts_with('r')
        })
        .map(|r| (r["from"].clone(), r["to"].clone()))
        .collect();
    hops.sort();
    hops.dedup();
    assert!(
        hops.iter().all(|(_, to)| to == "r1"),
        "sensors send to r1: {hops:?}"
    );
    for (a, b) in [("r1", "r2"), ("r2", "r3"), ("r3", "collector")] {
        assert!(
            rows.iter()
                .any(|r| r["from"] == a && r["to"] == b && r["outcome"] == "delivered"),
            "{a} -> {b}"
        );
    }
    // a frame two hops apart is never a routing choice
    assert!(!rows.iter().any(|r| r["from"] == "r1" && r["to"] == "r3"));
    let r = run_row(&dir, "alarms");
    assert!(num(&r, "delivery_ratio") > 0.9);
    // the duty-cycled sensors sleep
    assert!(num(&r, "energy_mj_sleep") > 0.0);
}

#[test]
fn the_lora_like_preset_obeys_its_duty_cycle_limit() {
    // one sensor sends far more often than 1 % airtime allows: frames leave
    // at most once per airtime / 0.01, and the rest queue up and drop.
    let text = r#"
name = "lora"
duration = "600 s"
drain = "10 s"
[[nodes]]
name = "gw"
role = "server"
position = [0.0, 0.0]
[[nodes]]
name = "s"
role = "client"
position = [500.0, 0.0]
[[media]]
name = "lr"
preset = "lora-like"
members = ["gw", "s"]
[[flows]]
name = "f"
pattern = "point_to_point"
protocol = "udp"
publishers = ["s"]
receivers = ["gw"]
topic = "t"
payload_bytes = 20
interval = "1 s"
"#;
    let dir = run_text("lora", text, &[]);
    let rows: Vec<_> = read_csv(&dir.join("packets.csv"))
        .into_iter()
        .filter(|r| r["outcome"] != "lost_queue")
        .collect();
    // 48-byte IP packet + 11 MAC + 9 PHY = 68 bytes at 5470 bit/s ≈ 99.5 ms
    assert_eq!(rows[0]["bytes"], "68");
    let airtime_ms = 68.0 * 8.0 / 5470.0 * 1000.0;
    let t: Vec<f64> = rows
        .iter()
        .map(|r| r["time_ms"].parse().expect("t"))
        .collect();
    for w in t.windows(2) {
        assert!(
            w[1] - w[0] >= 100.0 * airtime_ms - 1e-3,
            "{} then {}",
            w[0],
            w[1]
        );
    }
    assert!(
        t.len() >= 55 && t.len() <= 62,
        "{} frames in 600 s",
        t.len()
    );
    let r = run_row(&dir, "f");
    assert!(num(&r, "drops_queue") > 400.0);
}

fn load_err(text: &str) -> String {
    qossim::scenario::load_str(text, "w.toml", Path::new("."), &[])
        .expect_err("bad scenario")
        .to_string()
}

const BASE: &str = r#"name = "bad"
duration = "10 s"
[[nodes]]
name = "a"
role = "client"
position = [0.0, 0.0]
[[nodes]]
name = "b"
role = "server"
position = [5.0, 0.0]
[[nodes]]
name = "c"
role = "server"
[[media]]
name = "wpan"
members = ["a", "b"]
"#;

#[test]
fn bad_media_are_reported_with_file_line_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("preset = \"wifi\"\n", "w.toml:17:", "field `media.wpan.preset`: unknown medium preset \"wifi\", known presets: ieee802154, lora-like"),
        ("min_be = 9\n", "w.toml:17:", "field `media.wpan.min_be`: 9 is out of range: must be in 0..=8"),
        ("frame_bytes = 60\n", "w.toml:17:", "field `media.wpan.frame_bytes`: 60 is out of range"),
        ("capture_db = nan\n", "w.toml:17:", "field `media.wpan.capture_db`: must be a finite number"),
        ("k = 3.0\n", "w.toml:17:", "field `media.wpan.k`: field `k` applies only to `fading = \"rician\"`"),
        ("fading = \"rician\"\n", "w.toml:17:", "field `media.wpan.k`: `fading = \"rician\"` needs `k`"),
        ("ack_wait = \"100 us\"\n", "w.toml:17:", "field `media.wpan.ack_wait`: ack_wait 100 us must be longer than turnaround + ACK airtime"),
        ("duty_cycle = { period = \"1 s\", wake = \"2 s\", nodes = [\"a\"] }\n", "w.toml:17:", "field `media.wpan.duty_cycle.wake`: wake 2 s is longer than period 1 s"),
        ("duty_cycle = { period = \"1 s\", wake = \"10 ms\", nodes = [\"c\"] }\n", "w.toml:17:", "is not a member of medium \"wpan\""),
        ("interferers = [{ position = [1.0, 1.0], power_dbm = 0.0, period = \"1 s\", burst = \"2 s\" }]\n", "w.toml:17:", "field `media.wpan.interferers[0].burst`"),
        ("tx_power = 3.0\n", "w.toml:17:", "unknown field `tx_power`"),
    ];
    for (extra, at, msg) in cases {
        let e = load_err(&format!("{BASE}{extra}"));
        assert!(e.starts_with(at), "{extra}: {e}");
        assert!(e.contains(msg), "{extra}: {e}");
    }
    // a member without a position
    let e = load_err(&BASE.replace("members = [\"a\", \"b\"]", "members = [\"a\", \"c\"]"));
    assert!(e.starts_with("w.toml:16:"), "{e}");
    assert!(e.contains("node \"c\" has no position"), "{e}");
    // coordinates that would make the neighbour grid meaningless
    let e = load_err(&BASE.replace("position = [5.0, 0.0]", "position = [1e300, -1e300]"));
    assert!(e.contains("too far out for a radio medium"), "{e}");
    // one radio per node
    let e = load_err(&format!(
        "{BASE}[[media]]\nname = \"other\"\nmembers = [\"b\"]\n"
    ));
    assert!(e.contains("already a member of medium \"wpan\""), "{e}");
    // an ACK wait that ends exactly with the ACK is refused too
    let e = load_err(&format!("{BASE}ack_wait = \"544 us\"\n"));
    assert!(
        e.contains("must be longer than turnaround + ACK airtime (544 us)"),
        "{e}"
    );
    // a glob that matches nothing
    let e = load_err(&BASE.replace("members = [\"a\", \"b\"]", "members = [\"x*\"]"));
    assert!(e.contains("glob \"x*\" matches no node"), "{e}");
}

#[test]
fn media_fields_can_be_set_from_the_command_line() {
    let text = shipped("wireless-star.toml");
    let sc = common::sim::load(
        &text,
        &["media.wpan.csma=false", "media.wpan.max_frame_retries=0"],
    );
    assert!(!sc.media[0].mac.csma);
    assert_eq!(sc.media[0].mac.max_frame_retries, 0);
    assert_eq!(sc.media[0].mtu(), 116);
    assert_eq!(sc.media[0].preset, "ieee802154");
    let sc = common::sim::load(&text, &["media.wpan.addressing=extended"]);
    assert_eq!(sc.media[0].mtu(), 104);
}

#[test]
fn a_medium_capture_holds_valid_802154_frames_around_the_ip_packets() {
    let dir = run_text("pcap154", &shipped("wireless-star.toml"), &["duration=20s"]);
    let b = std::fs::read(dir.join("pcap/wpan.pcap")).expect("wpan.pcap");
    assert_eq!(u32::from_le_bytes([b[20], b[21], b[22], b[23]]), 195);
    let (mut at, mut data, mut acks) = (24, 0, 0);
    while at + 16 <= b.len() {
        let len = u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) as usize;
        let rec = &b[at + 16..at + 16 + len];
        if len == 5 {
            acks += 1;
            assert_eq!(
                qossim::link::mac154::fcs(&rec[..3]).to_le_bytes(),
                [rec[3], rec[4]]
            );
        } else {
            let f = qossim::link::mac154::DataFrame::parse(rec).expect("valid frame and FCS");
            let (ip, _) = qossim::net::ip::Ipv4Repr::parse(f.payload).expect("IPv4 inside");
            assert_eq!(ip.protocol, qossim::net::ip::PROTO_UDP);
            assert_eq!(rec.len(), f.payload.len() + 11);
            data += 1;
        }
        at += 16 + len;
    }
    assert_eq!(at, b.len());
    assert!(data > 50 && acks > 50, "{data} frames, {acks} ACKs");
}

#[test]
fn the_1000_node_benchmark_has_15_neighbours_and_routes_for_everyone() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bench/wireless-1000.toml");
    let sc = qossim::scenario::load_file(&p, &[]).expect("bench scenario");
    assert_eq!(sc.nodes.len(), 1000);
    let spec = &sc.media[0];
    assert_eq!(spec.members.len(), 1000);
    let pos: Vec<(f64, f64)> = spec
        .members
        .iter()
        .map(|&n| sc.nodes[n].position.expect("position"))
        .collect();
    assert!(pos
        .iter()
        .all(|&(x, y)| (0.0..=300.0).contains(&x) && (0.0..=300.0).contains(&y)));
    let names: Vec<&str> = spec
        .members
        .iter()
        .map(|&n| sc.nodes[n].name.as_str())
        .collect();
    let m = qossim::link::medium::Medium::new(
        &spec.name,
        sc.seed,
        spec.phy,
        spec.propagation,
        spec.fading,
        &pos,
        &names,
        &[],
    );
    let in_range: usize = (0..1000u32)
        .map(|s| m.neighbours(s, spec.phy.sensitivity_dbm).count())
        .sum();
    let mean = in_range as f64 / 1000.0;
    let routable: usize = (0..1000u32)
        .map(|s| {
            m.neighbours(s, spec.phy.sensitivity_dbm + spec.route_margin_db)
                .count()
        })
        .sum();
    eprintln!(
        "{mean} neighbours in range, {} above the routing threshold, on average",
        routable as f64 / 1000.0
    );
    assert!(
        (12.0..=20.0).contains(&mean),
        "{mean} neighbours in range on average"
    );
    // one simulated minute: every sensor has a route, and most readings arrive
    let dir = run_text(
        "bench1000",
        &std::fs::read_to_string(&p).expect("text"),
        &["duration=70s", "drain=10s"],
    );
    let rows = read_csv(&dir.join("runs.csv"));
    assert_eq!(rows.len(), 10);
    let (mut delivered, mut intended) = (0.0, 0.0);
    for r in &rows {
        assert_eq!(num(r, "drops_no_route"), 0.0, "{}", r["flow"]);
        assert!(num(r, "collisions") > 0.0);
        delivered += num(r, "delivered");
        intended += num(r, "intended");
    }
    assert!(delivered / intended >= 0.5, "{}", delivered / intended);
}

#[test]
fn check_counts_the_radios() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/wireless-star.toml");
    let (code, out, err) = common::cli::run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 link, 1 radio medium (11 radios), 2 flows"),
        "{out}"
    );
}
