//! Radio energy driven by the world (issue #4 item 5): per-state times of a
//! hand-built exchange against Σ t·I·V, duty cycling against always
//! listening, and the runs.csv energy columns.

mod common;
use common::sim::{load, num, read_csv, run_row, run_text};
use qossim::link::energy::RadioParams;
use qossim::metrics::energy::NodeEnergy;
use qossim::world::World;

fn two_nodes(mac: &str, flow_extra: &str) -> String {
    common::sim::radio_pair(
        "name = \"energy\"\nseed = 5\nduration = \"10 s\"\ndrain = \"2 s\"",
        mac,
        &format!("payload_bytes = 88\ninterval = \"5 s\"\n{flow_extra}"),
        "",
    )
}

fn energies(text: &str) -> Vec<NodeEnergy> {
    let sc = load(text, &[]);
    let out = World::new(&sc, 0, Default::default())
        .expect("world")
        .run()
        .expect("run");
    out.radio.nodes
}

fn close(got: [f64; 4], want: [f64; 4], who: &str) {
    for i in 0..4 {
        assert!(
            (got[i] - want[i]).abs() <= 1e-9 * want[i].abs().max(1.0),
            "{who} state {i}: {} vs {}",
            got[i],
            want[i]
        );
    }
}

#[test]
fn energy_of_an_acked_frame_is_state_time_times_current_times_voltage() {
    // One 133-byte PPDU (4.256 ms) with CSMA off, then the 11-byte ACK
    // (0.352 ms) one turnaround (0.192 ms) later. The run lasts 12 s.
    //   A: tx 4.256 ms, rx (waiting for and receiving the ACK) 0.544 ms,
    //      listen the rest (its RX→TX turnaround included);
    //   B: rx 4.256 ms, tx 0.352 ms, listen the rest.
    let e = energies(&two_nodes("csma = false", "count = 1"));
    let p = RadioParams::CC2420;
    let t = 12.0;
    let mj = |s: f64, ma: f64| s * ma * p.voltage_v;
    let a = [
        mj(0.004256, p.tx_ma),
        mj(0.000544, p.rx_ma),
        mj(t - 0.004256 - 0.000544, p.listen_ma),
        0.0,
    ];
    let b = [
        mj(0.000352, p.tx_ma),
        mj(0.004256, p.rx_ma),
        mj(t - 0.004256 - 0.000352, p.listen_ma),
        0.0,
    ];
    assert_eq!(e[0].node, "A");
    close(e[0].mj, a, "A");
    close(e[1].mj, b, "B");
}

#[test]
fn csma_and_configured_currents_are_accounted() {
    // CSMA on: the CCA (128 µs) is receiver-on time; currents from the
    // scenario replace the CC2420 defaults.
    let mac = "ack = false\nenergy = { voltage = 2.0, tx_ma = 10.0, rx_ma = 20.0, listen_ma = 1.0, sleep_ma = 0.5 }";
    let e = energies(&two_nodes(mac, "count = 1"));
    let mj = |s: f64, ma: f64| s * ma * 2.0;
    let a = [
        mj(0.004256, 10.0),
        mj(0.000128, 20.0),
        mj(12.0 - 0.004256 - 0.000128, 1.0),
        0.0,
    ];
    close(e[0].mj, a, "A");
}

#[test]
fn a_duty_cycled_node_spends_less_than_an_always_listening_one() {
    // two identical senders; only s1 duty-cycles its receiver (10 ms awake
    // every 200 ms). Both send the same readings to an always-on sink.
    let text = r#"
name = "duty"
duration = "60 s"
drain = "5 s"
[[nodes]]
name = "sink"
role = "server"
position = [0.0, 0.0]
[[nodes]]
name = "s1"
role = "client"
position = [10.0, 0.0]
[[nodes]]
name = "s2"
role = "client"
position = [0.0, 10.0]
[[media]]
name = "wpan"
members = ["sink", "s1", "s2"]
duty_cycle = { period = "200 ms", wake = "10 ms", nodes = ["s1"] }
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
reliability = "con"
publishers = ["s1", "s2"]
receivers = ["sink"]
topic = "r/{i}"
payload_bytes = 20
interval = "5 s"
jitter = "1 s"
"#;
    let e = energies(text);
    let (s1, s2) = (&e[1], &e[2]);
    assert!(s1.duty_cycled && !s2.duty_cycled);
    let total = |n: &NodeEnergy| n.mj.iter().sum::<f64>();
    assert!(s1.mj[3] > 0.0 && s2.mj[3] == 0.0, "{:?} {:?}", s1.mj, s2.mj);
    assert!(
        total(s1) < 0.2 * total(s2),
        "duty {} vs always {}",
        total(s1),
        total(s2)
    );
    // and the duty-cycled sensor still gets its CON ACKs (in its wake windows)
    let dir = run_text("duty", text, &[]);
    let r = run_row(&dir, "f");
    assert_eq!(num(&r, "delivery_ratio"), 1.0);
    let msgs = read_csv(&dir.join("messages.csv"));
    assert!(msgs.iter().all(|m| !m["delivered_at_ms"].is_empty()));
}

#[test]
fn runs_csv_energy_columns_add_up() {
    let dir = run_text("energy-cols", &two_nodes("", "jitter = \"1 s\""), &[]);
    let r = run_row(&dir, "f");
    let parts: f64 = [
        "energy_mj_tx",
        "energy_mj_rx",
        "energy_mj_listen",
        "energy_mj_sleep",
    ]
    .iter()
    .map(|c| num(&r, c))
    .sum();
    let total = num(&r, "energy_mj");
    assert!((parts - total).abs() < 1e-5, "{parts} vs {total}");
    // two radios listening 12 s at 0.426 mA, 3 V, plus a little tx/rx
    assert!(
        total > 2.0 * 12.0 * 0.426 * 3.0 && total < 2.0 * 12.0 * 0.5 * 3.0,
        "{total}"
    );
    let per = num(&r, "energy_mj_per_delivered");
    assert!((per - total / num(&r, "delivered")).abs() < 1e-5);
    // the flow's own frames: each datagram one 133-byte PPDU (4.256 ms)
    // and its 11-byte link ACK (0.352 ms), each sent by one radio and
    // received by the other
    let n = num(&r, "sent");
    assert!(n >= 2.0 && num(&r, "delivered") == n, "{n}");
    assert_eq!(num(&r, "frames_air"), 2.0 * n);
    assert_eq!(num(&r, "bytes_air"), 144.0 * n);
    let air = num(&r, "airtime_ms_air");
    assert!((air - 4.608 * n).abs() < 1e-6, "airtime {air}");
    let mj = 4.608e-3 * n * 3.0 * (17.4 + 18.8);
    let got = num(&r, "energy_mj_air");
    assert!((got - mj).abs() < 1e-6, "{got} vs {mj} (6 decimals)");
    // a part of the state totals: no listening, no CCA, no ACK wait
    assert!(got < num(&r, "energy_mj_tx") + num(&r, "energy_mj_rx"));
    // without a medium the energy columns are empty
    let wired = r#"
name = "wired"
duration = "10 s"
[[nodes]]
name = "a"
role = "client"
[[nodes]]
name = "b"
role = "server"
[[links]]
a = "a"
b = "b"
[[flows]]
name = "f"
pattern = "point_to_point"
protocol = "udp"
publishers = ["a"]
receivers = ["b"]
topic = "t"
payload_bytes = 10
interval = "1 s"
"#;
    let dir = run_text("energy-wired", wired, &[]);
    let r = run_row(&dir, "f");
    for c in [
        "energy_mj",
        "energy_mj_tx",
        "energy_mj_per_delivered",
        "frames_air",
        "bytes_air",
        "airtime_ms_air",
        "energy_mj_air",
    ] {
        assert_eq!(r[c], "", "{c}");
    }
}
