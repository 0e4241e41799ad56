//! IPv6 and 6LoWPAN in the simulated world (`[protocols.ip] version = 6`):
//! wired IPv6 paths against IPv4 on the same topology and seed, the 802.15.4
//! medium carrying IPHC-compressed and RFC 4944-fragmented datagrams that
//! tshark decodes layer by layer, and the loss of a fragmented datagram
//! against its closed form.
//!
//! Whole scenarios run through the loader and run path the CLI uses
//! (`common::sim`). Statistical checks use a fixed seed and 3 standard
//! errors of a proportion. Run in release:
//! `cargo test --release --test ipv6_world`.

mod common;
use common::sim::{load, num, read_csv, run_row, run_text, NO_PROCESSING};
use common::tshark;
use std::collections::BTreeMap;
use std::path::Path;

/// A client and a broker two wired hops apart, both hops losing 3 % of
/// packets: MQTT QoS 1 readings of 40 bytes, far under the MSS.
fn wired_mqtt() -> String {
    format!(
        r#"name = "v6-wired"
seed = 5
duration = "120 s"
drain = "30 s"

[[nodes]]
name = "dev"
role = "client"
[[nodes]]
name = "r"
role = "router"
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "app"
role = "client"

[[links]]
a = "dev"
b = "r"
rate = "1 Mbit/s"
delay = "10 ms"
loss = {{ model = "bernoulli", p = 0.03 }}
[[links]]
a = "r"
b = "broker"
rate = "1 Mbit/s"
delay = "10 ms"
loss = {{ model = "bernoulli", p = 0.03 }}
[[links]]
a = "app"
b = "broker"

[[flows]]
name = "readings"
pattern = "point_to_point"
protocol = "mqtt"
reliability = "qos1"
publishers = ["dev"]
receivers = ["app"]
topic = "plant/t"
payload_bytes = 40
interval = "200 ms"
{NO_PROCESSING}"#
    )
}

/// A `packets.csv` row's kind, outcome and bytes.
type Row = (String, String, f64);

fn packets(dir: &Path) -> Vec<BTreeMap<String, String>> {
    read_csv(&dir.join("packets.csv"))
}

#[test]
fn mqtt_over_ipv6_delivers_as_over_ipv4_with_every_packet_20_bytes_longer() {
    let text = wired_mqtt();
    let d4 = run_text("v6-wired-4", &text, &[]);
    let d6 = run_text("v6-wired-6", &text, &["protocols.ip.version=6"]);
    let (r4, r6) = (run_row(&d4, "readings"), run_row(&d6, "readings"));
    for col in [
        "sent",
        "delivered",
        "duplicates",
        "drops_channel",
        "tcp_retransmissions",
    ] {
        assert_eq!(num(&r4, col), num(&r6, col), "{col}");
    }
    assert!(num(&r4, "delivered") > 500.0);
    assert!(
        num(&r4, "drops_channel") > 10.0,
        "the links must lose packets"
    );
    // per link direction, the same packets in the same order, each 20
    // bytes longer (directions interleave differently: longer packets take
    // longer to send)
    let by_dir = |d: &Path| {
        let mut m: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
        for r in packets(d) {
            m.entry((r["link"].clone(), r["from"].clone()))
                .or_default()
                .push((r["kind"].clone(), r["outcome"].clone(), num(&r, "bytes")));
        }
        m
    };
    let (p4, p6) = (by_dir(&d4), by_dir(&d6));
    assert_eq!(p4.keys().collect::<Vec<_>>(), p6.keys().collect::<Vec<_>>());
    let mut n = 0.0;
    for (dir, a) in &p4 {
        let b = &p6[dir];
        assert_eq!(a.len(), b.len(), "{dir:?}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!((&x.0, &x.1, x.2 + 20.0), (&y.0, &y.1, y.2), "{dir:?}");
        }
        n += a.len() as f64;
    }
    // the header cost is exactly that: 20 bytes more per packet on the wire
    let extra = num(&r6, "bytes_on_wire") - num(&r4, "bytes_on_wire");
    assert!(extra > 0.0 && extra <= 20.0 * n, "{extra} over {n} rows");
    // tshark reads IPv6 with good TCP checksums and MQTT inside
    if tshark::available("mqtt_over_ipv6") {
        let f = d6.join("pcap/dev--r.pcap");
        let out = tshark::run(
            &f,
            &[
                "-o",
                "tcp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "ipv6.src",
                "-e",
                "tcp.checksum.status",
                "-e",
                "_ws.col.Protocol",
            ],
        );
        let rows = tshark::lines(&out);
        assert!(rows.len() > 500);
        for r in &rows {
            let f: Vec<&str> = r.split('\t').collect();
            assert!(
                f[0] == "2001:db8::ff:fe00:1" || f[0] == "2001:db8::ff:fe00:3",
                "{r}"
            );
            assert_eq!(f[1], "1", "TCP checksum good: {r}");
        }
        assert!(rows.iter().any(|r| r.ends_with("MQTT")));
        tshark::assert_no_errors(&f, &[]);
    }
}

/// Sensors on one 802.15.4 medium with a border router, which forwards to
/// a wired backbone with a CoAP server and an MQTT broker, and an MQTT-SN
/// gateway (on the medium too, wired to the broker): each protocol's
/// readings cross the radio hop and the border.
fn radio_three() -> String {
    r#"name = "v6-radio"
seed = 3
duration = "60 s"
drain = "30 s"

[[nodes]]
name = "br"
role = "router"
position = [0.0, 0.0]
[[nodes]]
name = "server"
role = "server"
[[nodes]]
name = "gw"
role = "gateway"
position = [0.0, 4.0]
[[nodes]]
name = "broker"
role = "broker"
[[nodes]]
name = "app"
role = "client"

[[groups]]
name = "s-{i}"
count = 3
role = "client"
placement = { kind = "line", origin = [5.0, 0.0], spacing = 3.0 }

[[media]]
name = "wpan"
preset = "ieee802154"
members = ["br", "gw", "s-*"]
fading = "none"
shadowing_db = 0.0

[[links]]
name = "bb-server"
a = "br"
b = "server"
[[links]]
name = "gw-broker"
a = "gw"
b = "broker"
[[links]]
a = "br"
b = "broker"
[[links]]
a = "app"
b = "broker"

[[flows]]
name = "coap"
pattern = "fan_in"
protocol = "coap"
reliability = "con"
publishers = ["s-1"]
receivers = ["server"]
topic = "r/{i}"
payload_bytes = 20
interval = "2 s"
jitter = "500 ms"

[[flows]]
name = "sn"
pattern = "fan_in"
protocol = "mqttsn"
reliability = "qos1"
subscribe_with = "mqtt"
publishers = ["s-2"]
receivers = ["app"]
topic = "sn/{i}"
payload_bytes = 20
interval = "2 s"
jitter = "500 ms"

[[flows]]
name = "mqtt"
pattern = "fan_in"
protocol = "mqtt"
reliability = "qos1"
publishers = ["s-3"]
receivers = ["app"]
topic = "mq/{i}"
payload_bytes = 20
interval = "2 s"
jitter = "500 ms"

[protocols.ip]
version = 6
"#
    .to_string()
}

#[test]
fn ipv6_over_the_medium_delivers_coap_mqttsn_and_mqtt_and_tshark_decodes_every_layer() {
    let text = radio_three();
    let d6 = run_text("v6-radio", &text, &[]);
    for flow in ["coap", "sn", "mqtt"] {
        let r = run_row(&d6, flow);
        assert!(num(&r, "sent") >= 25.0, "{flow}");
        assert_eq!(num(&r, "delivery_ratio"), 1.0, "{flow}: {r:?}");
    }
    // On the medium, per frame, IPv4 + UDP (28 bytes) become IPHC (2) +
    // UDP NHC with both ports inline (7): MQTT-SN to the gateway on the
    // medium, whose address the link destination gives, is 19 bytes
    // shorter; CoAP to the server behind the border router carries the
    // destination's 16 bits (RFC 6282 DAM = 10): 17 shorter. TCP is not
    // compressed: IPv4's 20 bytes become IPHC (2) + next header (1) + the
    // destination's 16 bits (2): 15 shorter.
    let d4 = run_text("v4-radio", &text, &["protocols.ip.version=4"]);
    let sizes = |d: &Path, kind: &str| -> Vec<u32> {
        let mut v: Vec<u32> = packets(d)
            .iter()
            .filter(|r| r["link"] == "wpan" && r["kind"] == kind)
            .map(|r| num(r, "bytes") as u32)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for (kind, saved) in [
        ("mqttsn_publish", 19),
        ("coap_con", 17),
        ("mqtt_publish", 15),
    ] {
        let (a, b) = (sizes(&d4, kind), sizes(&d6, kind));
        assert!(!a.is_empty(), "{kind}");
        assert_eq!(b, a.iter().map(|x| x - saved).collect::<Vec<_>>(), "{kind}");
    }

    if !tshark::available("ipv6_over_the_medium") {
        return;
    }
    let wpan = d6.join("pcap/wpan.pcap");
    let ctx = ["-o", "6lowpan.context0:2001:db8::/64"];
    let sn = ["-d", "udp.port==1883,mqttsn"];
    let mut args: Vec<&str> = ctx.to_vec();
    args.extend(sn);
    args.extend([
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-T",
        "fields",
        "-e",
        "frame.protocols",
        "-e",
        "ipv6.src",
        "-e",
        "udp.checksum.status",
        "-e",
        "tcp.checksum.status",
    ]);
    let out = tshark::run(&wpan, &args);
    let mut stacks = BTreeMap::new();
    for r in tshark::lines(&out) {
        let f: Vec<&str> = r.split('\t').collect();
        let protos = f[0];
        if protos == "wpan" {
            continue; // link-layer ACKs
        }
        assert!(
            protos.starts_with("wpan:6lowpan:ipv6:"),
            "every data frame is 6LoWPAN: {r}"
        );
        assert!(
            f[1].starts_with("2001:db8::ff:fe00:"),
            "context 0 address: {r}"
        );
        for status in &f[2..] {
            assert!(status.is_empty() || *status == "1", "checksum good: {r}");
        }
        *stacks.entry(protos.to_string()).or_insert(0u32) += 1;
    }
    for want in [
        "wpan:6lowpan:ipv6:udp:coap",
        "wpan:6lowpan:ipv6:udp:mqttsn",
        "wpan:6lowpan:ipv6:tcp:mqtt",
    ] {
        assert!(
            stacks.keys().any(|k| k.starts_with(want)),
            "no {want} frame in {stacks:?}"
        );
    }
    let mut both: Vec<&str> = ctx.to_vec();
    both.extend(sn);
    tshark::assert_no_errors(&wpan, &both);
    for l in ["bb-server", "gw-broker"] {
        let f = d6.join(format!("pcap/{l}.pcap"));
        let out = tshark::run(&f, &["-T", "fields", "-e", "frame.protocols"]);
        assert!(tshark::lines(&out).iter().all(|p| p.starts_with("ipv6:")));
        tshark::assert_no_errors(&f, &sn);
    }
}

/// A sends N UDP datagrams of `payload` bytes to B 10 m away over one
/// medium with per-frame Bernoulli loss `p`: no fading or shadowing (SINR
/// delivers every frame), no MAC retries, one sender, so each frame
/// survives independently with probability 1 − p.
fn fragmented(p: f64, n: u32) -> String {
    common::sim::radio_pair(
        &format!(
            "name = \"v6-frag\"\nseed = 21\nduration = \"{} s\"\ndrain = \"5 s\"",
            n / 20 + 1
        ),
        &format!("ack = false\nloss = {{ model = \"bernoulli\", p = {p:?} }}"),
        &format!("payload_bytes = 300\ninterval = \"50 ms\"\ncount = {n}"),
        "[protocols.ip]\nversion = 6\nreassembly_timeout = \"1 s\"\n",
    )
}

#[test]
fn a_fragmented_datagram_arrives_only_if_every_fragment_does() {
    const N: u32 = 10_000;
    let p = 0.1;
    let d = run_text("v6-frag", &fragmented(p, N), &[]);
    // the datagram's fragments: count them on the air, first attempts only
    let rows = packets(&d);
    let frames = rows.iter().filter(|r| r["link"] == "wpan").count() as f64;
    let k = (frames / f64::from(N)).round();
    assert!(
        k >= 2.0,
        "the 300-byte reading must be fragmented ({frames} frames)"
    );
    assert_eq!(frames, k * f64::from(N), "every datagram in k frames");
    let r = run_row(&d, "f");
    let n = f64::from(N);
    let delivered = num(&r, "delivered") / n;
    let survive = (1.0 - p).powf(k);
    common::sim::assert_proportion(delivered, survive, n, 3.0, "delivery = (1 - p)^k");
    // a datagram that lost some but not all fragments waits out the
    // reassembly timer and is counted as a reassembly drop
    let half = 1.0 - survive - p.powf(k);
    let reasm = num(&r, "drops_reassembly") / n;
    common::sim::assert_proportion(reasm, half, n, 3.0, "drops_reassembly");
    eprintln!(
        "k = {k}, delivered {delivered:.4} vs {survive:.4}, reassembly drops {reasm:.4} vs {half:.4}"
    );
}

/// links.csv rows of `dir` by (link, from): (bytes_link, bytes_adaptation).
fn link_layer_totals(dir: &Path) -> BTreeMap<(String, String), (f64, f64)> {
    read_csv(&dir.join("links.csv"))
        .iter()
        .map(|r| {
            (
                (r["link"].clone(), r["from"].clone()),
                (num(r, "bytes_link"), num(r, "bytes_adaptation")),
            )
        })
        .collect()
}

/// The byte layers add up to bytes_on_wire with the radio hop's link and
/// 6LoWPAN bytes in their own columns: on the medium in an IPv4 run (link
/// bytes, no adaptation), in an IPv6 run (both), and on wired links only
/// (neither). links.csv totals the same layers per medium, every attempt
/// and every flow, so they bound the flows' first-attempt sums.
#[test]
fn link_and_adaptation_bytes_are_layers_of_their_own() {
    let d6 = run_text("layers-v6-radio", &radio_three(), &[]);
    let d4 = run_text(
        "layers-v4-radio",
        &radio_three(),
        &["protocols.ip.version=4"],
    );
    for (dir, v6) in [(&d4, false), (&d6, true)] {
        let (mut link, mut adapt) = (0.0, 0.0);
        for flow in ["coap", "sn", "mqtt"] {
            let r = run_row(dir, flow);
            common::sim::assert_layers_sum(&r);
            assert!(num(&r, "delivered") > 0.0, "{flow} v6={v6}: {r:?}");
            assert!(num(&r, "bytes_link") > 0.0, "{flow} v6={v6}: {r:?}");
            if v6 {
                assert!(num(&r, "bytes_adaptation") > 0.0, "{flow}: {r:?}");
            } else {
                assert_eq!(num(&r, "bytes_adaptation"), 0.0, "{flow}: {r:?}");
            }
            link += num(&r, "bytes_link");
            adapt += num(&r, "bytes_adaptation");
        }
        let totals = link_layer_totals(dir);
        let (ml, ma) = totals[&("wpan".to_string(), "*".to_string())];
        assert!(
            ml >= link && link > 0.0,
            "v6={v6}: medium {ml} < flows {link}"
        );
        assert!(ma >= adapt, "v6={v6}: medium {ma} < flows {adapt}");
        assert_eq!(ma > 0.0, v6, "v6={v6}: medium adaptation bytes {ma}");
        for ((l, from), (bl, ba)) in &totals {
            if l != "wpan" {
                assert_eq!((*bl, *ba), (0.0, 0.0), "wired {l} from {from}");
            }
        }
    }
    // wired only, IPv4 and IPv6, with loss (retransmissions): no link or
    // 6LoWPAN bytes anywhere
    for set in ["protocols.ip.version=4", "protocols.ip.version=6"] {
        let d = run_text("layers-wired", &wired_mqtt(), &[set]);
        let r = run_row(&d, "readings");
        common::sim::assert_layers_sum(&r);
        assert!(num(&r, "bytes_retransmissions") > 0.0, "{set}: {r:?}");
        assert_eq!(num(&r, "bytes_link"), 0.0, "{set}");
        assert_eq!(num(&r, "bytes_adaptation"), 0.0, "{set}");
        assert!(link_layer_totals(&d)
            .values()
            .all(|&(bl, ba)| bl == 0.0 && ba == 0.0));
    }
}

/// Exact link and 6LoWPAN bytes of unfragmented CoAP NON readings over
/// one 802.15.4 hop, no loss, no MAC ACKs: each reading is one frame and
/// the server's NON 2.04 answer another, both of the flow.
#[test]
fn one_hop_coap_non_frames_have_exact_link_and_adaptation_bytes() {
    let d = run_text(
        "layers-exact",
        &fragmented(0.0, 100),
        &[
            "flows.f.protocol=coap",
            "flows.f.reliability=non",
            "flows.f.payload_bytes=20",
        ],
    );
    let r = run_row(&d, "f");
    let sent = num(&r, "sent");
    assert_eq!(sent, 100.0);
    assert_eq!(num(&r, "delivered"), sent);
    let frames: Vec<f64> = packets(&d)
        .iter()
        .filter(|p| p["link"] == "wpan")
        .map(|p| num(p, "bytes"))
        .collect();
    assert_eq!(frames.len() as f64, 2.0 * sent, "a reading and its answer");
    let n = frames.len() as f64;
    // link, per frame: PHY 4 preamble + 1 SFD + 1 PHR = 6; MAC header with
    // short addresses and PAN ID compression: FCF 2 + sequence number 1 +
    // destination PAN 2 + destination 2 + source 2 = 9; FCS 2 → 17
    assert_eq!(num(&r, "bytes_link"), 17.0 * n);
    // 6LoWPAN, per frame: IPHC 2 (traffic class and flow label elided, hop
    // limit 64 coded, both addresses derived from the short MAC addresses
    // under context 0, so none inline) + UDP NHC 1 + both ports inline 4
    // (5683 is outside 0xF0B0..0xF0BF) + checksum 2 → 9
    assert_eq!(num(&r, "bytes_adaptation"), 9.0 * n);
    // UDP's header travels compressed, so no transport header is inline
    assert_eq!(num(&r, "bytes_transport_ip"), 0.0);
    assert_eq!(num(&r, "bytes_retransmissions"), 0.0);
    assert_eq!(num(&r, "bytes_payload"), 20.0 * sent);
    common::sim::assert_layers_sum(&r);
    assert_eq!(num(&r, "bytes_on_wire"), frames.iter().sum::<f64>());
    // the medium's links.csv row counts the same frames
    let totals = link_layer_totals(&d);
    assert_eq!(
        totals[&("wpan".to_string(), "*".to_string())],
        (17.0 * n, 9.0 * n)
    );
    // with MAC ACKs on, each frame is acknowledged by a 5-byte ACK frame
    // (FCF 2, sequence number 1, FCS 2) behind the 6-byte PHY header: 11
    // more link bytes per frame, nothing else changes
    let d = run_text(
        "layers-exact-ack",
        &fragmented(0.0, 100).replace("ack = false", "ack = true"),
        &[
            "flows.f.protocol=coap",
            "flows.f.reliability=non",
            "flows.f.payload_bytes=20",
        ],
    );
    let a = run_row(&d, "f");
    assert_eq!(num(&a, "delivered"), sent);
    assert_eq!(num(&a, "bytes_link"), (17.0 + 11.0) * n);
    for c in [
        "bytes_adaptation",
        "bytes_transport_ip",
        "bytes_protocol",
        "bytes_payload",
    ] {
        assert_eq!(num(&a, c), num(&r, c), "{c}");
    }
    common::sim::assert_layers_sum(&a);
}

#[test]
fn ipv6_needs_1280_byte_links_and_says_which_link_does_not() {
    let text = wired_mqtt().replace(
        "[[links]]\na = \"app\"",
        "[[links]]\nmtu = 576\na = \"app\"",
    );
    let e = qossim::scenario::load_str(
        &text,
        "t.toml",
        Path::new("."),
        &["protocols.ip.version=6".to_string()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("app--broker") && e.contains("1280"), "{e}");
    // IPv4 keeps accepting it, and a bad version or prefix says why
    let _ = load(&text, &[]);
    for (set, want) in [
        ("protocols.ip.version=5", "expected 4 or 6"),
        ("protocols.ip.prefix=\"2001:db8::/48\"", "/64"),
    ] {
        let e = qossim::scenario::load_str(&text, "t.toml", Path::new("."), &[set.to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{set}: {e}");
    }
}

#[test]
fn an_ipv6_source_fragments_to_the_path_mtu_and_routers_never_do() {
    let text = r#"name = "v6-pmtu"
seed = 2
duration = "10 s"
drain = "2 s"

[[nodes]]
name = "A"
role = "client"
[[nodes]]
name = "r"
role = "router"
[[nodes]]
name = "B"
role = "server"

[[links]]
a = "A"
b = "r"
mtu = 1500
[[links]]
a = "r"
b = "B"
mtu = 1280

[[flows]]
name = "big"
pattern = "point_to_point"
protocol = "udp"
publishers = ["A"]
receivers = ["B"]
topic = "t"
payload_bytes = 3000
interval = "1 s"

[protocols.ip]
version = 6
"#;
    let d = run_text("v6-pmtu", text, &[]);
    let r = run_row(&d, "big");
    let sent = num(&r, "sent");
    assert!(sent >= 9.0);
    assert_eq!(num(&r, "delivered"), sent);
    assert_eq!(num(&r, "drops_mtu"), 0.0);
    // the source cut each datagram for the 1280-byte hop, so even the
    // 1500-byte first link carries fragments of at most 1280 bytes, and the
    // router forwards them as they are
    for link in ["A--r", "r--B"] {
        let rows: Vec<_> = packets(&d)
            .into_iter()
            .filter(|p| p["link"] == link)
            .collect();
        assert_eq!(
            rows.len() as f64,
            3.0 * sent,
            "{link}: 3 fragments a datagram"
        );
        let mut sizes: Vec<u32> = rows.iter().map(|p| num(p, "bytes") as u32).collect();
        sizes.sort_unstable();
        sizes.dedup();
        // 3000 + 8 (UDP) + 16 (app header) bytes: two 1232-byte chunks and the rest,
        // each behind 40 + 8 bytes of IPv6 and Fragment headers
        assert_eq!(*sizes.last().unwrap(), 1280, "{link}: {sizes:?}");
        assert_eq!(sizes.len(), 2, "{link}: {sizes:?}");
    }
    // and a wired hop below IPv6's minimum MTU is refused when loading
    let e = qossim::scenario::load_str(
        &text.replace("mtu = 1280", "mtu = 1279"),
        "t.toml",
        Path::new("."),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("r--B"), "{e}");
    if tshark::available("ipv6_source_fragments") {
        let f = d.join("pcap/r--B.pcap");
        let out = tshark::run(
            &f,
            &[
                "-o",
                "udp.check_checksum:TRUE",
                "-Y",
                "udp",
                "-T",
                "fields",
                "-e",
                "ipv6.fragment.count",
                "-e",
                "udp.length",
                "-e",
                "udp.checksum.status",
            ],
        );
        let rows = tshark::lines(&out);
        assert_eq!(rows.len() as f64, sent, "one reassembled datagram each");
        for r in rows {
            let f: Vec<&str> = r.split('\t').collect();
            assert_eq!((f[0], f[2]), ("3", "1"), "{r}");
            assert!(f[1].parse::<u32>().unwrap() > 3000, "{r}");
        }
        tshark::assert_clean(&f, &[], None);
    }
}

/// Every shipped scenario with an 802.15.4 medium (benchmarks aside) runs
/// over 6LoWPAN with `version = 6`: no flow's delivery ratio falls more
/// than 0.05 below its IPv4 run's (shorter frames meet fewer bit errors;
/// different timing moves collisions either way), and every frame of the
/// medium's capture is 6LoWPAN with nothing malformed.
#[test]
fn the_shipped_radio_scenarios_run_over_6lowpan() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = Vec::new();
    for sub in ["", "teaching"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml")
                && std::fs::read_to_string(&p).unwrap().contains("\n[[media]]")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let base = f.parent().unwrap();
        let load = |v: &str| {
            qossim::scenario::load_str(&text, &name, base, &[format!("protocols.ip.version={v}")])
                .unwrap_or_else(|e| panic!("{name} v{v}: {e}"))
        };
        let (s4, s6) = (load("4"), load("6"));
        let run = |sc: &qossim::scenario::model::Scenario, tag: &str| {
            let d = common::temp_dir(tag);
            qossim::run::run_scenario(
                sc,
                &qossim::run::RunOptions {
                    out_dir: d.clone(),
                    pcap: true,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            d
        };
        let (d4, d6) = (run(&s4, "radio4"), run(&s6, "radio6"));
        let rows = |d: &Path| read_csv(&d.join("summary.csv"));
        for (a, b) in rows(&d4).iter().zip(rows(&d6)) {
            let (r4, r6) = (num(a, "delivery_ratio"), num(&b, "delivery_ratio"));
            eprintln!("{name} {}: IPv4 {r4:.4}, IPv6 {r6:.4}", a["flow"]);
            assert!(r6 >= r4 - 0.05, "{name} {}: {r6} against {r4}", a["flow"]);
        }
        if tshark::available("shipped_radio_scenarios") {
            for m in &s6.media {
                let f = d6.join(format!("pcap/{}.pcap", m.name));
                // without "Decode As", tshark's heuristics may take a
                // first fragment for ZigBee (seen on coap-blockwise-frag)
                let lowpan = ["-d", "wpan.panid==0x1234,6lowpan"];
                let mut args = lowpan.to_vec();
                args.extend(["-T", "fields", "-e", "frame.protocols"]);
                let out = tshark::run(&f, &args);
                assert!(
                    tshark::lines(&out)
                        .iter()
                        .all(|p| *p == "wpan" || p.starts_with("wpan:6lowpan:")),
                    "{name}: {out}"
                );
                tshark::assert_no_errors(&f, &lowpan);
            }
        }
    }
}
