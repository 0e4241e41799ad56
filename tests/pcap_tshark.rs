//! The pcap writer and the IPv4/UDP encoder, as Wireshark sees them: no
//! malformed frames, good UDP checksums, and fragments reassembled.

mod common;

use common::tshark;
use qossim::net::frag::fragment;
use qossim::net::ip::{Ipv4Repr, PROTO_UDP};
use qossim::net::udp::build_ipv4_udp;
use qossim::report::pcap::PcapWriter;
use qossim::sim::SimTime;
use std::io::BufWriter;
use std::net::Ipv4Addr;

fn ip(ident: u16, src: u8, dst: u8) -> Ipv4Repr {
    Ipv4Repr {
        src: Ipv4Addr::new(10, 0, 0, src),
        dst: Ipv4Addr::new(10, 0, 0, dst),
        protocol: PROTO_UDP,
        ttl: 64,
        ident,
        dont_fragment: false,
        more_fragments: false,
        frag_offset: 0,
        payload_len: 0,
    }
}

#[test]
fn tshark_reads_udp_and_reassembles_fragments() {
    if !tshark::available("tshark_reads_udp_and_reassembles_fragments") {
        return;
    }
    let dir = common::temp_dir("pcap-tshark");
    let path = dir.join("udp.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let mut w = PcapWriter::new(BufWriter::new(file)).expect("pcap header");
    let mut t = SimTime::from_nanos(1_000_000_123);
    let mut step = || {
        t = SimTime::from_nanos(t.as_nanos() + 1_500_001);
        t
    };
    let mut pkt = Vec::new();
    // Three normal datagrams to the discard port (9), one with an odd length.
    for (i, payload) in [&b"hello"[..], b"temperature=21.5", b"x"]
        .into_iter()
        .enumerate()
    {
        build_ipv4_udp(&mut pkt, &ip(100 + i as u16, 1, 2), 49152, 9, payload).expect("build");
        w.write_packet(step(), &pkt).expect("write");
    }
    // A 1000-byte datagram over MTU 576: two fragments.
    let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    build_ipv4_udp(&mut pkt, &ip(200, 3, 2), 49153, 9, &big).expect("build");
    let mut frags = Vec::new();
    let mut scratch = Vec::new();
    let n = fragment(&pkt, 576, &mut scratch, |f| frags.push(f.to_vec())).expect("fragment");
    assert_eq!(n, 2);
    for f in &frags {
        w.write_packet(step(), f).expect("write");
    }
    w.flush().expect("flush");
    drop(w);

    let malformed = tshark::run(
        &path,
        &["-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number"],
    );
    assert_eq!(
        tshark::lines(&malformed),
        Vec::<&str>::new(),
        "malformed frames"
    );

    let frames = tshark::run(&path, &["-T", "fields", "-e", "frame.number"]);
    assert_eq!(tshark::lines(&frames), ["1", "2", "3", "4", "5"]);

    // Timestamps: nanosecond resolution survives (first frame at 1.000000123 + 0.001500001 = 1.001500124 s).
    let times = tshark::run(
        &path,
        &["-T", "fields", "-e", "frame.time_epoch", "-c", "1"],
    );
    assert_eq!(tshark::lines(&times), ["1.001500124"]);

    // UDP checksums verified good on the three small datagrams and the
    // reassembled one (frame 5); the first fragment carries no UDP layer.
    // udp.checksum.status values: 0 = Bad, 1 = Good, 2 = Unverified.
    let sums = tshark::run(
        &path,
        &[
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "udp",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "udp.dstport",
            "-e",
            "udp.checksum.status",
        ],
    );
    assert_eq!(
        tshark::lines(&sums),
        ["1\t9\t1", "2\t9\t1", "3\t9\t1", "5\t9\t1"]
    );

    // Fragment 1 is reassembled in frame 5, which carries 1008 UDP bytes.
    let reasm = tshark::run(
        &path,
        &[
            "-2",
            "-Y",
            "ip.reassembled_in",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "ip.reassembled_in",
        ],
    );
    assert_eq!(tshark::lines(&reasm), ["4\t5"]);
    let len = tshark::run(
        &path,
        &[
            "-Y",
            "frame.number == 5",
            "-T",
            "fields",
            "-e",
            "udp.length",
        ],
    );
    assert_eq!(tshark::lines(&len), ["1008"]);

    let _ = std::fs::remove_dir_all(&dir);
}
