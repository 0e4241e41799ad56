//! The IPv6 and 6LoWPAN codecs (`net::ipv6`, `link::sixlowpan`) against
//! RFC 6282's encodings worked out by hand, and against tshark's
//! dissectors: 802.15.4 frames (link type 195, FCS) carrying the
//! compressed datagrams must decode as wpan → 6lowpan → ipv6 → udp (→ coap)
//! with the addresses, ports and good UDP checksums the uncompressed packet
//! has, and a fragmented datagram must reassemble to its full length.

mod common;

use common::tshark;
use qossim::link::mac154::{Address, Addresses, FrameVersion, MacFrame};
use qossim::link::sixlowpan::frag::{self, FragHeader, Reassembler};
use qossim::link::sixlowpan::iphc;
use qossim::link::sixlowpan::Context;
use qossim::net::ipv6::{self, build_ipv6_udp, Ipv6Repr};
use qossim::report::pcap::{PcapWriter, LINKTYPE_IEEE802_15_4_WITHFCS};
use qossim::sim::{SimDuration, SimTime};
use std::net::Ipv6Addr;

const PAN: u16 = 0xABCD;
/// Context 0: 2001:db8::/64.
const CTX: Context = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];
const A: Address = Address::Short(0x0001);
const B: Address = Address::Short(0x0002);
/// Largest frame payload with short addresses and PAN ID compression:
/// 127 − 11 bytes of MAC header and FCS.
const MAX_PAYLOAD: usize = 116;

/// A CoAP NON GET /temp (RFC 7252 §3): 4-byte header, Uri-Path "temp".
const COAP_GET: [u8; 9] = [0x50, 0x01, 0x00, 0x07, 0xB4, b't', b'e', b'm', b'p'];

fn global(iid: [u8; 8]) -> Ipv6Addr {
    ipv6::addr_from_parts(CTX, iid)
}

/// An uncompressed IPv6/UDP packet, hop limit 64, TC and flow label 0.
fn packet(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = Ipv6Repr {
        src,
        dst,
        next_header: 17,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: 0,
    };
    let mut out = Vec::new();
    build_ipv6_udp(&mut out, &ip, sport, dport, payload).expect("IPv6/UDP packet");
    out
}

struct Compressed {
    bytes: Vec<u8>,
    header: usize,
    uncompressed_header: usize,
}

fn compress(pkt: &[u8], src: Address, dst: Address, ctx: Option<Context>) -> Compressed {
    let mut bytes = Vec::new();
    let (header, uncompressed_header) =
        iphc::compress_packet(pkt, src, dst, ctx, &mut bytes).expect("compress");
    Compressed {
        bytes,
        header,
        uncompressed_header,
    }
}

/// A packet between the link-local addresses of short MACs 1 and 2.
fn ll_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ll = ipv6::link_local_from_short;
    packet(ll(1), ll(2), sport, dport, payload)
}

/// Compress `pkt` for a frame A → B, check the compressed headers are
/// `want` followed by the packet's UDP checksum (always inline), and that
/// the frame payload decompresses to the original packet.
fn golden(pkt: &[u8], ctx: Option<Context>, want: &[u8]) {
    let c = compress(pkt, A, B, ctx);
    let want = [want, &pkt[46..48]].concat();
    assert_eq!(&c.bytes[..c.header], want, "compressed headers");
    assert_eq!(c.uncompressed_header, 48);
    assert_eq!(&c.bytes[c.header..], &pkt[48..], "payload follows as is");
    let mut r = Reassembler::new(frag::DEFAULT_TIMEOUT);
    let back = r
        .push(SimTime::ZERO, A, B, &c.bytes, ctx)
        .expect("decompress");
    assert_eq!(back.as_deref(), Some(pkt), "decompressed packet");
}

#[test]
fn link_local_short_macs_and_f0bx_ports_take_six_bytes() {
    // IPHC 011 TF=11 NH=1 HLIM=10 | CID=0 SAC=0 SAM=11 M=0 DAC=0 DAM=11,
    // then UDP NHC 11110 C=0 P=11, ports 1 and 2 in 4 bits each, checksum.
    let pkt = ll_packet(0xF0B1, 0xF0B2, b"21.5");
    golden(&pkt, None, &[0x7E, 0x33, 0xF3, 0x12]);
}

#[test]
fn coap_port_inline_takes_nine_bytes() {
    // NHC P=00: both ports inline (0x1633 = 5683).
    let pkt = ll_packet(5683, 5683, &COAP_GET);
    golden(&pkt, None, &[0x7E, 0x33, 0xF0, 0x16, 0x33, 0x16, 0x33]);
    // One port in 0xF0xx: P=01 (destination in 8 bits), P=10 (source).
    let pkt = ll_packet(5683, 0xF005, &COAP_GET);
    golden(&pkt, None, &[0x7E, 0x33, 0xF1, 0x16, 0x33, 0x05]);
    let pkt = ll_packet(0xF0C0, 5683, &COAP_GET);
    golden(&pkt, None, &[0x7E, 0x33, 0xF2, 0xC0, 0x16, 0x33]);
}

#[test]
fn global_addresses_with_context_zero_elide_the_iid() {
    // SAC=1 SAM=11, DAC=1 DAM=11: prefix from context 0, IID from the MAC.
    let short_iid = ipv6::iid_from_short;
    let pkt = packet(
        global(short_iid(1)),
        global(short_iid(2)),
        5683,
        5683,
        &COAP_GET,
    );
    golden(&pkt, Some(CTX), &[0x7E, 0x77, 0xF0, 0x16, 0x33, 0x16, 0x33]);
    // An IID the MAC does not give: SAM=01 carries it, the prefix is elided.
    let iid = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    let pkt = packet(global(iid), global(short_iid(2)), 0xF0B0, 0xF0BF, b"");
    golden(
        &pkt,
        Some(CTX),
        &[[0x7E, 0x57].as_slice(), &iid, &[0xF3, 0x0F]].concat(),
    );
    // Without context 0 the same addresses travel in full.
    let c = compress(&pkt, A, B, None);
    assert_eq!(c.header, 2 + 32 + 4);
}

/// One 802.15.4 data frame (2006, PAN ID compression, no ACK request).
fn frame(seq: u8, src: Address, dst: Address, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MacFrame {
        version: FrameVersion::Ieee2006,
        seq,
        frame_pending: false,
        ack_request: false,
        addresses: Addresses::IntraPan { pan: PAN, dst, src },
        payload,
    }
    .emit(&mut out)
    .expect("frame fits");
    out
}

/// The datagrams tshark must decode: (link src, link dst, context,
/// uncompressed packet).
fn datagrams() -> Vec<(Address, Address, Option<Context>, Vec<u8>)> {
    let ext = 0x0012_4B00_0102_0304u64;
    let mut coap_post = vec![0x50, 0x02, 0x00, 0x08, 0xB4, b't', b'e', b'm', b'p', 0xFF];
    coap_post.extend((0..282u32).map(|i| (i * 7) as u8));
    vec![
        (A, B, None, ll_packet(0xF0B1, 0xF0B2, b"21.5")),
        (A, B, None, ll_packet(5683, 5683, &COAP_GET)),
        (A, B, None, ll_packet(5683, 0xF005, &COAP_GET)),
        (
            A,
            B,
            Some(CTX),
            packet(
                global(ipv6::iid_from_short(1)),
                global(ipv6::iid_from_short(2)),
                5683,
                5683,
                &COAP_GET,
            ),
        ),
        (
            Address::Extended(ext),
            Address::Short(0xFFFF),
            None,
            packet(
                ipv6::link_local_from_ext(ext),
                "ff02::1".parse().expect("addr"),
                5683,
                5683,
                &COAP_GET,
            ),
        ),
        // ~300 bytes: fragmented over three frames.
        (A, B, None, ll_packet(5683, 5683, &coap_post)),
    ]
}

#[test]
fn tshark_decodes_every_layer_and_reassembles() {
    if !tshark::available("tshark_decodes_every_layer_and_reassembles") {
        return;
    }
    let file = common::temp_dir("sixlowpan").join("wpan.pcap");
    let f = std::fs::File::create(&file).expect("create capture");
    let mut w =
        PcapWriter::with_linktype(std::io::BufWriter::new(f), LINKTYPE_IEEE802_15_4_WITHFCS)
            .expect("pcap header");
    // Per pcap frame: the packet tshark should show there (None: a
    // fragment that does not complete its datagram).
    let mut expect: Vec<Option<&[u8]>> = Vec::new();
    let all = datagrams();
    let mut t = SimTime::ZERO;
    let mut seq = 0u8;
    let mut fragmented = 0;
    for (tag, (src, dst, ctx, pkt)) in all.iter().enumerate() {
        let c = compress(pkt, *src, *dst, *ctx);
        let frames = frag::fragment(
            &c.bytes,
            c.header,
            c.uncompressed_header,
            MAX_PAYLOAD,
            tag as u16,
        )
        .expect("fragment");
        if frames.len() > 1 {
            fragmented += 1;
            assert_eq!(frames.len(), 3, "300 bytes in 116-byte frames");
        }
        let mut r = Reassembler::new(frag::DEFAULT_TIMEOUT);
        for (i, payload) in frames.iter().enumerate() {
            let last = i + 1 == frames.len();
            let fr = frame(seq, *src, *dst, payload);
            assert!(fr.len() <= 127);
            w.write_packet(t, &fr).expect("write");
            t += SimDuration::from_millis(10);
            seq = seq.wrapping_add(1);
            let ours = r.push(t, *src, *dst, payload, *ctx).expect("own decode");
            assert_eq!(ours.is_some(), last);
            if let Some(d) = ours {
                assert_eq!(&d, pkt, "own reassembly");
            }
            expect.push(last.then_some(&pkt[..]));
        }
    }
    assert_eq!(fragmented, 1);
    w.flush().expect("flush");
    drop(w);

    let ctx_opt = "6lowpan.context0:2001:db8::/64";
    let base = ["-o", ctx_opt, "-o", "udp.check_checksum:TRUE"];
    tshark::assert_clean(&file, &base, None);
    let fields = [
        "frame.protocols",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.plen",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
        "udp.checksum.status",
        "6lowpan.reassembled.length",
    ];
    let rows = tshark::field_rows(&file, &base, &fields);
    assert_eq!(rows.len(), expect.len(), "{rows:?}");
    for (row, want) in rows.iter().zip(&expect) {
        let line = row.join("|");
        let f: Vec<&str> = row.iter().map(String::as_str).collect();
        let Some(pkt) = want else {
            assert!(f[0].contains("6lowpan"), "{line}");
            assert!(
                f[1].is_empty(),
                "a non-final fragment decoded as IPv6: {line}"
            );
            continue;
        };
        let (ip, udp) = Ipv6Repr::parse(pkt).expect("own packet");
        assert!(f[0].starts_with("wpan:6lowpan:ipv6:udp"), "layers: {line}");
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        if sport == 5683 || dport == 5683 {
            assert!(f[0].contains(":udp:coap"), "CoAP not dissected: {line}");
        }
        let got_src: Ipv6Addr = f[1].parse().expect("ipv6.src");
        let got_dst: Ipv6Addr = f[2].parse().expect("ipv6.dst");
        assert_eq!((got_src, got_dst), (ip.src, ip.dst), "{line}");
        assert_eq!(f[3], ip.payload_len.to_string(), "{line}");
        assert_eq!(
            (f[4], f[5], f[6]),
            (
                sport.to_string().as_str(),
                dport.to_string().as_str(),
                ip.payload_len.to_string().as_str()
            ),
            "{line}"
        );
        assert_eq!(f[7], "1", "UDP checksum not good: {line}");
        if pkt.len() > 200 {
            assert_eq!(f[8], pkt.len().to_string(), "reassembled length: {line}");
        }
    }
}

#[test]
fn fragment_headers_count_uncompressed_bytes() {
    let all = datagrams();
    let (src, dst, ctx, pkt) = all.last().expect("the big one");
    assert_eq!(pkt.len(), 40 + 8 + 292);
    let c = compress(pkt, *src, *dst, *ctx);
    let frames = frag::fragment(&c.bytes, c.header, c.uncompressed_header, MAX_PAYLOAD, 0x77)
        .expect("fragment");
    let (h1, rest1) = FragHeader::parse(&frames[0]).expect("FRAG1");
    assert_eq!(
        &frames[0][..4],
        &[0xC1, 0x54, 0x00, 0x77],
        "FRAG1 with size 340"
    );
    assert_eq!((h1.len(), h1.offset), (4, None));
    // FRAG1: 4 + 9 compressed header bytes + 96 payload bytes, covering
    // 48 + 96 = 144 uncompressed bytes (18 units).
    assert_eq!(rest1.len(), 9 + 96);
    let (h2, rest2) = FragHeader::parse(&frames[1]).expect("FRAGN");
    assert_eq!(&frames[1][..5], &[0xE1, 0x54, 0x00, 0x77, 18]);
    assert_eq!((h2.len(), rest2.len()), (5, 104));
    let (h3, rest3) = FragHeader::parse(&frames[2]).expect("FRAGN");
    assert_eq!(h3.offset, Some(248));
    assert_eq!(rest3.len(), 340 - 248);
    // A lost fragment: the datagram is never delivered, and the timeout
    // drops the half datagram and counts it.
    let mut r = Reassembler::new(SimDuration::from_secs(60));
    for f in [&frames[0], &frames[2]] {
        assert_eq!(r.push(SimTime::ZERO, *src, *dst, f, *ctx), Ok(None));
    }
    assert_eq!(r.pending(), 1);
    assert_eq!(r.expire(SimTime::from_nanos(60_000_000_000)), 1);
    assert_eq!(r.dropped_timeout(), 1);
    assert_eq!(
        r.push(
            SimTime::from_nanos(61_000_000_000),
            *src,
            *dst,
            &frames[1],
            *ctx
        ),
        Ok(None)
    );
}
