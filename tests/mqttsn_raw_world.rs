//! MQTT-SN over raw 802.15.4 frames in the simulated world
//! (`[protocols.mqttsn] transport = "raw"`): each message is the whole
//! frame payload, no IP; broadcasts (ADVERTISE, SEARCHGW, GWINFO) are
//! link-layer broadcasts; on a medium that also carries 6LoWPAN, messages
//! of 64 bytes or more use the 3-byte length form so the first byte stays
//! in the NALP range, and the shipped Wireshark shim decodes both kinds of
//! frame. Scenarios run through the loader and run path the CLI uses.
//! Run in release: `cargo test --release --test mqttsn_raw_world`.

mod common;
use common::sim::{num, read_csv, run_row, run_text, scenario_file};
use common::tshark;
use std::collections::BTreeMap;
use std::path::Path;

/// Sizes of the frames of `kind` on the medium `wpan`, sorted, distinct.
fn frame_sizes(dir: &Path, kind: &str) -> Vec<u32> {
    let mut v: Vec<u32> = read_csv(&dir.join("packets.csv"))
        .iter()
        .filter(|r| r["link"] == "wpan" && r["kind"] == kind)
        .map(|r| num(r, "bytes") as u32)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn raw_frames_carry_the_mqttsn_message_alone_and_deliver_through_a_forwarder() {
    // sensors reach the gateway through a forwarder (scenarios/mqttsn-multihop.toml)
    let text = scenario_file("mqttsn-multihop.toml");
    let udp = run_text("sn-udp", &text, &[]);
    let raw = run_text("sn-raw", &text, &["protocols.mqttsn.transport=\"raw\""]);
    let (u, r) = (run_row(&udp, "readings"), run_row(&raw, "readings"));
    assert_eq!(num(&r, "delivered"), num(&r, "sent"), "{r:?}");
    assert!(num(&r, "sent") > 500.0);
    // every MQTT-SN frame loses IPv4 + UDP, 28 bytes, and nothing else
    for kind in ["mqttsn_publish", "mqttsn_puback", "mqttsn_advertise"] {
        let (a, b) = (frame_sizes(&udp, kind), frame_sizes(&raw, kind));
        assert!(!a.is_empty(), "{kind}");
        assert_eq!(b, a.iter().map(|x| x - 28).collect::<Vec<_>>(), "{kind}");
    }
    assert!(num(&r, "mqttsn_bytes_constrained") < num(&u, "mqttsn_bytes_constrained"));
    // the layers still add up to the bytes on the wire, a raw frame having
    // no 6LoWPAN bytes (IPv4 run) and the medium its link bytes
    common::sim::assert_layers_sum(&r);
    assert_eq!(num(&r, "bytes_adaptation"), 0.0);
    assert!(num(&r, "bytes_link") > 0.0);
}

/// A CoAP sensor and an MQTT-SN sensor share one medium with a border
/// router (CoAP over 6LoWPAN to a wired server) and an MQTT-SN gateway
/// (raw frames); the MQTT-SN readings are 70 bytes, so every PUBLISH is
/// longer than 63 bytes.
const MIXED: &str = r#"name = "raw-mixed"
seed = 4
duration = "60 s"
drain = "20 s"

[[nodes]]
name = "br"
role = "router"
position = [0.0, 0.0]
[[nodes]]
name = "gw"
role = "gateway"
position = [0.0, 5.0]
[[nodes]]
name = "server"
role = "server"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "app"
role = "client"
[[nodes]]
name = "coap-s"
role = "client"
position = [5.0, 0.0]
[[nodes]]
name = "sn-s"
role = "client"
position = [5.0, 5.0]

[[media]]
name = "wpan"
preset = "ieee802154"
members = ["br", "gw", "coap-s", "sn-s"]
fading = "none"
shadowing_db = 0.0

[[links]]
a = "br"
b = "server"
[[links]]
a = "gw"
b = "broker"
[[links]]
a = "app"
b = "broker"

[[flows]]
name = "coap"
pattern = "point_to_point"
protocol = "coap"
reliability = "con"
publishers = ["coap-s"]
receivers = ["server"]
topic = "c"
payload_bytes = 20
interval = "2 s"

[[flows]]
name = "sn"
pattern = "point_to_point"
protocol = "mqttsn"
reliability = "qos1"
subscribe_with = "mqtt"
publishers = ["sn-s"]
receivers = ["app"]
topic = "s"
payload_bytes = 70
interval = "2 s"

[protocols.ip]
version = 6

[protocols.mqttsn]
transport = "raw"
t_searchgw = "1 s"
"#;

#[test]
fn raw_mqttsn_beside_6lowpan_keeps_to_the_nalp_range_and_tshark_decodes_both() {
    let d = run_text("sn-mixed", MIXED, &[]);
    for flow in ["coap", "sn"] {
        let r = run_row(&d, flow);
        common::sim::assert_layers_sum(&r);
        assert!(num(&r, "sent") >= 25.0, "{flow}");
        assert_eq!(num(&r, "delivery_ratio"), 1.0, "{flow}: {r:?}");
    }
    if !tshark::available("raw_mqttsn_beside_6lowpan") {
        return;
    }
    let lua = format!(
        "lua_script:{}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/wireshark/mqttsn-wpan.lua")
            .display()
    );
    let wpan = d.join("pcap/wpan.pcap");
    let opts = [
        "-X",
        lua.as_str(),
        "-d",
        "udp.port==1883,mqttsn",
        "-o",
        "6lowpan.context0:2001:db8::/64",
    ];
    let mut args = opts.to_vec();
    args.extend([
        "-T",
        "fields",
        "-e",
        "frame.protocols",
        "-e",
        "mqttsn.msg.type",
        "-e",
        "data.data",
        "-e",
        "frame.len",
    ]);
    let out = tshark::run(&wpan, &args);
    let mut stacks: BTreeMap<String, u32> = BTreeMap::new();
    let mut long_publish = 0;
    for row in tshark::lines(&out) {
        let f: Vec<&str> = row.split('\t').collect();
        *stacks.entry(f[0].to_string()).or_default() += 1;
        // a PUBLISH (0x0c) of 70 bytes of data is 77 + 2 bytes: the frame
        // is PHY-less 11 + 79 = 90 bytes in the capture
        if f[0] == "wpan:mqttsn_wpan:mqttsn" && f[1] == "0x0c" {
            assert_eq!(f[3], "90", "{row}");
            long_publish += 1;
        }
    }
    assert!(long_publish >= 25, "{stacks:?}");
    assert!(
        stacks
            .keys()
            .any(|k| k.starts_with("wpan:6lowpan:ipv6:udp:coap")),
        "{stacks:?}"
    );
    for k in stacks.keys() {
        assert!(
            k == "wpan" || k == "wpan:mqttsn_wpan:mqttsn" || k.starts_with("wpan:6lowpan:ipv6:"),
            "a frame neither 6LoWPAN nor MQTT-SN: {k} in {stacks:?}"
        );
    }
    tshark::assert_no_errors(&wpan, &opts);
}

#[test]
fn raw_transport_needs_every_mqttsn_node_on_a_medium() {
    // the gateway moves off the medium: named in the error
    let text = MIXED.replace(
        r#"members = ["br", "gw", "coap-s", "sn-s"]"#,
        r#"members = ["br", "coap-s", "sn-s"]"#,
    );
    let e = qossim::scenario::load_str(&text, "t.toml", Path::new("."), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("protocols.mqttsn.transport") && e.contains("\"gw\"") && e.contains("gateway"),
        "{e}"
    );
    // over UDP the same topology loads (the gateway is reached by IP)
    let udp = text.replace("transport = \"raw\"", "transport = \"udp\"");
    qossim::scenario::load_str(&udp, "t.toml", Path::new("."), &[]).expect("udp loads");
}
