//! A run's pcaps against tshark: every link's capture decodes with zero
//! malformed packets and holds exactly the transmissions `packets.csv` lists
//! for that link, with the same CoAP message types.

mod common;
use common::sim::*;
use common::tshark;
use std::collections::BTreeMap;

#[test]
fn run_pcaps_decode_and_match_packets_csv() {
    if !tshark::available("run_pcaps_decode_and_match_packets_csv") {
        return;
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/coap-vs-udp.toml"
    ))
    .expect("scenario");
    // short, with a large-payload UDP flow so fragments appear too
    let dir = run_text(
        "pcap-run",
        &text,
        &[
            "duration=\"5 min\"",
            "flows.udp.payload_bytes=300",
            "groups.udp-sensor-{i}.count=2",
            "groups.non-sensor-{i}.count=2",
            "groups.con-sensor-{i}.count=2",
        ],
    );
    let packets = read_csv(&dir.join("packets.csv"));
    let mut expected: BTreeMap<String, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
    for p in &packets {
        if p["outcome"] == "delivered" || p["outcome"] == "lost_channel" {
            expected.entry(p["link"].clone()).or_default().push(p);
        }
    }
    assert!(packets.iter().any(|p| p["outcome"] == "lost_channel"));
    let mut pcaps = 0;
    for entry in std::fs::read_dir(dir.join("pcap")).expect("pcap dir") {
        let path = entry.expect("entry").path();
        let link = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let rows = expected.remove(&link).unwrap_or_default();
        let malformed = tshark::run(
            &path,
            &["-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number"],
        );
        assert!(
            tshark::lines(&malformed).is_empty(),
            "{link}: malformed frames {malformed}"
        );
        let frames = tshark::run(&path, &["-T", "fields", "-e", "frame.number"]);
        assert_eq!(
            tshark::lines(&frames).len(),
            rows.len(),
            "{link}: frames vs packets.csv"
        );
        // CoAP message types: tshark's coap.type (0 CON, 1 NON, 2 ACK, 3 RST) per frame
        let types = tshark::run(
            &path,
            &[
                "-d",
                "udp.port==5683,coap",
                "-T",
                "fields",
                "-e",
                "coap.type",
            ],
        );
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for t in types.lines() {
            let k = match t.trim() {
                "0" => "coap_con",
                "1" => "coap_non",
                "2" => "coap_ack",
                "3" => "coap_rst",
                _ => continue,
            };
            *seen.entry(k).or_default() += 1;
        }
        let mut want: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            if r["kind"].starts_with("coap_") {
                *want.entry(r["kind"].as_str()).or_default() += 1;
            }
        }
        assert_eq!(seen, want, "{link}: CoAP types per tshark vs packets.csv");
        pcaps += 1;
    }
    assert!(pcaps >= 7, "one pcap per link, got {pcaps}");
    assert!(
        expected.is_empty(),
        "links with transmissions but no pcap: {:?}",
        expected.keys()
    );
}
