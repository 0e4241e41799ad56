//! TCP segment wire format: golden bytes, sizes that match Linux captures,
//! round trips, no panics on arbitrary input, and tshark's reading of them.

mod common;
use common::tshark;
use proptest::prelude::*;
use qossim::net::ip::{Ipv4Repr, PROTO_TCP};
use qossim::report::pcap::PcapWriter;
use qossim::sim::SimTime;
use qossim::transport::tcp::segment::{Flags, Options, TcpRepr};
use std::net::Ipv4Addr;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// RFC 1071 checksum written out independently of `net::checksum`.
fn reference_checksum(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> u16 {
    let mut words: Vec<u32> = Vec::new();
    for o in [src.octets(), dst.octets()] {
        words.push(u32::from(o[0]) << 8 | u32::from(o[1]));
        words.push(u32::from(o[2]) << 8 | u32::from(o[3]));
    }
    words.push(6);
    words.push(seg.len() as u32);
    for c in seg.chunks(2) {
        words.push(u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)));
    }
    let mut sum: u32 = words.iter().sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn syn() -> TcpRepr {
    TcpRepr {
        src_port: 49152,
        dst_port: 1883,
        seq: 0x0102_0304,
        ack: 0,
        flags: Flags {
            syn: true,
            ..Flags::default()
        },
        window: 64240,
        urgent: 0,
        options: Options {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((100, 0)),
            sack: vec![],
        },
    }
}

#[test]
fn golden_syn_with_linux_options() {
    let mut out = Vec::new();
    syn().emit(&mut out, A, B, &[]).expect("emit");
    let mut want: Vec<u8> = vec![
        0xC0, 0x00, 0x07, 0x5B, // ports 49152 → 1883
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xA0, 0x02, // data offset 10 words (40 bytes), SYN
        0xFA, 0xF0, // window 64240
        0x00, 0x00, // checksum (filled below)
        0x00, 0x00, // urgent
        0x02, 0x04, 0x05, 0xB4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0A, 0, 0, 0, 100, 0, 0, 0, 0,    // timestamps 100, 0
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];
    let c = reference_checksum(A, B, &want);
    want[16..18].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out, want);
    // 40-byte header: 60 bytes with IPv4, 74 on Ethernet, as Linux sends SYNs
    assert_eq!(out.len() + 20 + 14, 74);
}

#[test]
fn pure_ack_with_timestamps_is_32_bytes() {
    let ack = TcpRepr {
        flags: Flags {
            ack: true,
            ..Flags::default()
        },
        options: Options {
            timestamps: Some((5, 6)),
            ..Options::default()
        },
        ..TcpRepr::default()
    };
    let mut out = Vec::new();
    ack.emit(&mut out, A, B, &[]).expect("emit");
    assert_eq!(out.len(), 32, "66-byte frames on Ethernet");
    let plain = TcpRepr {
        options: Options::default(),
        ..ack
    };
    out.clear();
    plain.emit(&mut out, A, B, &[]).expect("emit");
    assert_eq!(out.len(), 20);
}

#[test]
fn corrupt_segments_are_errors() {
    let mut out = Vec::new();
    syn().emit(&mut out, A, B, b"data").expect("emit");
    assert!(TcpRepr::parse(&out, A, B).is_ok());
    let mut bad = out.clone();
    bad[25] ^= 1;
    assert!(TcpRepr::parse(&bad, A, B).is_err(), "checksum");
    assert!(
        TcpRepr::parse(&out, A, Ipv4Addr::new(10, 0, 0, 3)).is_err(),
        "pseudo-header"
    );
    assert!(TcpRepr::parse(&out[..19], A, B).is_err());
    let mut off = out.clone();
    off[12] = 0x40; // data offset 4 words
    assert!(TcpRepr::parse(&off, A, B).is_err());
}

fn arb_repr() -> impl Strategy<Value = TcpRepr> {
    (
        any::<(u16, u16, u32, u32, u8, u16)>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..15),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..3),
    )
        .prop_map(
            |((sp, dp, seq, ack, fl, win), mss, ws, sp_ok, ts, sack)| TcpRepr {
                src_port: sp,
                dst_port: dp,
                seq,
                ack,
                flags: Flags {
                    fin: fl & 1 != 0,
                    syn: fl & 2 != 0,
                    rst: fl & 4 != 0,
                    psh: fl & 8 != 0,
                    ack: fl & 16 != 0,
                    urg: fl & 32 != 0,
                },
                window: win,
                urgent: 0,
                options: Options {
                    mss,
                    window_scale: ws,
                    sack_permitted: sp_ok,
                    timestamps: ts,
                    sack,
                },
            },
        )
}

proptest! {
    #[test]
    fn parse_emit_round_trip(r in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut out = Vec::new();
        r.emit(&mut out, A, B, &payload).expect("emit");
        prop_assert_eq!(out.len(), r.buffer_len(payload.len()));
        let (back, data) = TcpRepr::parse(&out, A, B).expect("parse");
        prop_assert_eq!(back, r);
        prop_assert_eq!(data, &payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = TcpRepr::parse(&bytes, A, B);
    }
}

#[test]
fn tshark_reads_our_segments() {
    if !tshark::available("tshark_reads_our_segments") {
        return;
    }
    let dir = common::temp_dir("tcp-pcap");
    let path = dir.join("tcp.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).expect("create")).expect("pcap");
    let data_seg = TcpRepr {
        seq: 0x0102_0305,
        ack: 7,
        flags: Flags {
            ack: true,
            psh: true,
            ..Flags::default()
        },
        options: Options {
            timestamps: Some((101, 50)),
            sack: vec![(10, 20)],
            ..Options::default()
        },
        ..syn()
    };
    for (i, (seg, payload)) in [(syn(), &b""[..]), (data_seg, &b"hello"[..])]
        .iter()
        .enumerate()
    {
        let mut tcp = Vec::new();
        seg.emit(&mut tcp, A, B, payload).expect("emit");
        let ip = Ipv4Repr {
            src: A,
            dst: B,
            protocol: PROTO_TCP,
            ttl: 64,
            ident: i as u16,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            payload_len: tcp.len() as u16,
        };
        let mut pkt = vec![0u8; 20];
        ip.emit(&mut pkt).expect("ip");
        pkt.extend_from_slice(&tcp);
        w.write_packet(SimTime(1_000_000 * (i as u64 + 1)), &pkt)
            .expect("write");
    }
    drop(w);
    let malformed = tshark::run(
        &path,
        &[
            "-Y",
            "_ws.malformed || tcp.checksum.status == 0",
            "-o",
            "tcp.check_checksum:TRUE",
        ],
    );
    assert!(tshark::lines(&malformed).is_empty(), "{malformed}");
    let fields = tshark::run(
        &path,
        &[
            "-T",
            "fields",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.options.mss_val",
            "-e",
            "tcp.options.wscale.shift",
            "-e",
            "tcp.options.sack_le",
        ],
    );
    let lines = tshark::lines(&fields);
    assert_eq!(lines.len(), 2, "{fields}");
    assert!(
        lines[0].contains("1460") && lines[0].contains('7'),
        "{}",
        lines[0]
    );
}
