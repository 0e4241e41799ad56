//! Raw MQTT-SN in IEEE 802.15.4 frame payloads (no IP), beside 6LoWPAN.
//!
//! * `nalp_form` (`proto::mqttsn::codec`): every message it returns starts
//!   with a byte in RFC 4944 §5.1's NALP range 0x00–0x3F and decodes to the
//!   message it was given; short messages and the forwarder's encapsulations
//!   pass through untouched; malformed input comes back unchanged.
//! * `scripts/wireshark/mqttsn-wpan.lua`: a capture of raw MQTT-SN frames
//!   (made with the crate's MAC, codec and pcap writer) plus one 6LoWPAN
//!   frame decodes, with the shim, as MQTT-SN and 6LoWPAN respectively, with
//!   nothing malformed; without the shim the MQTT-SN frames are not MQTT-SN.

mod common;

use common::tshark;
use qossim::link::mac154::{Address, Addressing, DataFrame, BROADCAST};
use qossim::link::sixlowpan::iphc;
use qossim::net::addr::{Addr, SockAddr};
use qossim::net::ipv6::{self, build_ipv6_udp, Ipv6Repr};
use qossim::proto::mqttsn::codec::{decode, nalp_form, Message, NALP_MAX_SHORT};
use qossim::proto::mqttsn::{
    sockaddr_bytes, Forwarder, ForwarderConfig, MsgType, Qos, ReturnCode, TopicRef,
};
use qossim::proto::{Datagram, SansIo};
use qossim::report::pcap::{PcapWriter, LINKTYPE_IEEE802_15_4_WITHFCS};
use qossim::sim::{SimDuration, SimTime};
use std::path::{Path, PathBuf};

/// Largest first byte a raw MQTT-SN payload may have (RFC 4944 §5.1).
const NALP_MAX: u8 = 0x3F;

fn enc(m: &Message<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut b).expect("encode");
    b
}

fn publish(msg_id: u16, data: &[u8]) -> Message<'_> {
    Message::Publish {
        dup: false,
        qos: Qos::One,
        retain: false,
        topic: TopicRef::Normal(1),
        msg_id,
        data,
    }
}

/// Check one encoded message `e` through `nalp_form`: NALP-safe, decodes
/// to the same message, and in the form its length calls for.
fn check_nalp(e: &[u8], out: &mut Vec<u8>) {
    let want = decode(e).expect("own encoding decodes");
    let r = nalp_form(e, out);
    assert!(r[0] <= NALP_MAX, "first byte {:#04x} of {e:02x?}", r[0]);
    assert_eq!(decode(r), Ok(want), "{} octets", e.len());
    if e.len() <= NALP_MAX_SHORT || e[0] == 0x01 {
        assert!(
            std::ptr::eq(r, e),
            "{} octets: must come back as is",
            e.len()
        );
    } else {
        assert_eq!(r.len(), e.len() + 2, "3-octet form");
        assert_eq!(r[0], 0x01);
        assert_eq!(usize::from(u16::from_be_bytes([r[1], r[2]])), r.len());
        assert_eq!(&r[3..], &e[1..], "MsgType and body unchanged");
    }
}

#[test]
fn every_length_2_to_300_becomes_nalp_safe_and_decodes_the_same() {
    let body = [0x5Au8; 300];
    let mut out = Vec::new();
    let mut seen = [false; 301];
    // WILLMSG: a body of any size, so every total the encoder writes
    // (2..=255 in the 1-octet form, 258.. in the 3-octet form).
    for n in 0..=296 {
        let e = enc(&Message::WillMsg { msg: &body[..n] });
        check_nalp(&e, &mut out);
        seen[e.len()] = true;
    }
    // 256 and 257 octets exist only in the 3-octet form the encoder does
    // not choose for them; written by hand (§5.2.1 allows it).
    for total in [256usize, 257] {
        let mut e = vec![0x01];
        e.extend_from_slice(&(total as u16).to_be_bytes());
        e.push(MsgType::WillMsg as u8);
        e.extend_from_slice(&body[..total - 4]);
        check_nalp(&e, &mut out);
        seen[total] = true;
    }
    assert!(seen[2..].iter().all(|&s| s), "lengths 2..=300 covered");
    // PUBLISH, the message that grows past 63 octets in practice.
    for n in 0..=293 {
        check_nalp(&enc(&publish(7, &body[..n])), &mut out);
    }
}

#[test]
fn lengths_up_to_63_are_unchanged_and_64_is_the_first_rewritten() {
    let data = [1u8; 100];
    let mut out = Vec::new();
    // PUBLISH is 7 octets plus data.
    let e63 = enc(&publish(1, &data[..56]));
    assert_eq!(e63.len(), 63);
    assert!(std::ptr::eq(nalp_form(&e63, &mut out), &e63[..]));
    let e64 = enc(&publish(1, &data[..57]));
    assert_eq!(e64[..2], [64, MsgType::Publish as u8]);
    assert_eq!(nalp_form(&e64, &mut out)[..4], [0x01, 0, 66, 0x0C]);
}

#[test]
fn a_reused_buffer_stops_allocating() {
    let body = [3u8; 253];
    let mut out = Vec::with_capacity(257);
    let (ptr, cap) = (out.as_ptr(), out.capacity());
    for n in 62..=253 {
        let e = enc(&Message::WillMsg { msg: &body[..n] });
        let len = nalp_form(&e, &mut out).len();
        assert_eq!(len, e.len() + 2);
        assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap), "n={n}");
    }
}

#[test]
fn malformed_input_comes_back_unchanged_without_panicking() {
    let mut out = Vec::new();
    for b in [&[][..], &[0x50], &[0x50, 0x0C], &[0xFF, 0x0C, 0, 0]] {
        assert!(std::ptr::eq(nalp_form(b, &mut out), b), "{b:02x?}");
    }
    // A Length octet that disagrees with the slice, either way.
    let e = enc(&publish(1, &[9; 80]));
    for cut in [&e[..e.len() - 1], &[&e[..], &[0][..]].concat()[..]] {
        assert!(std::ptr::eq(nalp_form(cut, &mut out), cut));
    }
    // An encapsulation header (§5.5) with no message after it: its Length
    // then equals the slice length, but it is no 1-octet Length to widen.
    let mut hdr = vec![64u8, MsgType::Encapsulated as u8, 1];
    hdr.extend_from_slice(&[7; 61]);
    assert!(decode(&hdr).is_err());
    assert!(std::ptr::eq(nalp_form(&hdr, &mut out), &hdr[..]));
    // Every first byte with every length: either as given, or the 3-octet
    // form of a 1-octet Length that matched.
    let mut buf = vec![0x0Cu8; 300];
    for first in 0..=255u8 {
        for len in 0..=300 {
            buf[0] = first;
            let input = &buf[..len];
            let r = nalp_form(input, &mut out);
            if !std::ptr::eq(r, input) {
                assert_eq!(usize::from(first), len);
                assert!(len > NALP_MAX_SHORT);
                assert_eq!((r[0], r.len()), (0x01, len + 2));
            }
        }
    }
}

/// The forwarder's encapsulation (§5.5) starts with its header length,
/// 3 + 6 = 9: already NALP-safe, so it passes through unchanged, whatever
/// the inner message's length form.
#[test]
fn forwarder_encapsulations_pass_unchanged_and_decode() {
    let gw = SockAddr::new(Addr::from(std::net::Ipv4Addr::new(10, 0, 0, 1)), 1883);
    let client = SockAddr::new(Addr::from(std::net::Ipv4Addr::new(10, 0, 0, 2)), 1883);
    let mut fwd = Forwarder::new(ForwarderConfig::new(gw));
    let data = [b'x'; 80];
    let long = enc(&publish(3, &data));
    let mut scratch = Vec::new();
    let long_nalp = nalp_form(&long, &mut scratch).to_vec();
    assert_eq!(long_nalp[0], 0x01);
    let short = enc(&publish(2, b"21.5"));
    let mut out = Vec::new();
    for (inner, want) in [
        (&short, publish(2, b"21.5")),
        (&long, publish(3, &data)),
        (&long_nalp, publish(3, &data)),
    ] {
        fwd.handle_input(
            SimTime::ZERO,
            Datagram {
                from: client,
                data: inner,
            },
        );
        let mut e = Vec::new();
        let t = fwd
            .poll_transmit(SimTime::ZERO, &mut e)
            .expect("encapsulated");
        assert_eq!(t.kind, MsgType::Encapsulated);
        assert_eq!(e[0], 3 + 6, "Length = header up to the node id");
        let r = nalp_form(&e, &mut out);
        assert!(std::ptr::eq(r, &e[..]), "encapsulation must pass as is");
        match decode(r) {
            Ok(Message::Encapsulated {
                node_id, inner: i, ..
            }) => {
                assert_eq!(node_id, sockaddr_bytes(client));
                assert_eq!(i, &inner[..]);
                assert_eq!(decode(i), Ok(want));
            }
            other => panic!("not an encapsulation: {other:?}"),
        }
    }
    // A node id of 61+ octets makes the header 64+: §5.5 has no longer
    // form, so it stays as it is (not NALP-safe; the caller must check).
    let node = [7u8; 252];
    for n in 61..=252 {
        let e = enc(&Message::Encapsulated {
            radius: 1,
            node_id: &node[..n],
            inner: &short,
        });
        assert_eq!(usize::from(e[0]), 3 + n);
        assert!(std::ptr::eq(nalp_form(&e, &mut out), &e[..]), "node id {n}");
        assert!(decode(&e).is_ok());
    }
}

// ---- tshark and the Lua shim ----

/// The PAN of qossim's radio captures (and the shim's default).
const PAN: u16 = 0x1234;
const GW: u16 = 0x0001;
const CLIENT: u16 = 0x0002;

/// tshark's `-X` argument loading the shim.
fn shim() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/wireshark/mqttsn-wpan.lua");
    format!("lua_script:{}", path.display())
}

/// An 802.15.4 data frame as the simulator's radio captures it (short
/// addresses, PAN ID compression, ACK request on unicast, FCS).
fn frame(seq: u8, src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let f = DataFrame {
        seq,
        pan: PAN,
        addressing: Addressing::Short,
        dst: u64::from(dst),
        src: u64::from(src),
        ack_request: true,
        payload,
    };
    let mut out = Vec::new();
    f.emit(&mut out).expect("frame fits");
    assert!(out.len() <= 127);
    out
}

/// Write `frames` (PSDUs with FCS) 10 ms apart to a fresh capture.
fn capture(tag: &str, frames: &[Vec<u8>]) -> PathBuf {
    let file = common::temp_dir(tag).join("wpan.pcap");
    let f = std::fs::File::create(&file).expect("create capture");
    let mut w =
        PcapWriter::with_linktype(std::io::BufWriter::new(f), LINKTYPE_IEEE802_15_4_WITHFCS)
            .expect("pcap header");
    let mut t = SimTime::ZERO;
    for fr in frames {
        w.write_packet(t, fr).expect("write");
        t += SimDuration::from_millis(10);
    }
    w.flush().expect("flush");
    file
}

/// A CoAP NON GET /temp (RFC 7252 §3) in IPv6/UDP between the link-local
/// addresses of CLIENT and GW, 6LoWPAN-compressed for that frame.
fn lowpan_coap() -> Vec<u8> {
    let coap = [0x50, 0x01, 0x00, 0x07, 0xB4, b't', b'e', b'm', b'p'];
    let ip = Ipv6Repr {
        src: ipv6::link_local_from_short(CLIENT),
        dst: ipv6::link_local_from_short(GW),
        next_header: 17,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: 0,
    };
    let mut pkt = Vec::new();
    build_ipv6_udp(&mut pkt, &ip, 5683, 5683, &coap).expect("IPv6/UDP");
    let mut out = Vec::new();
    iphc::compress_packet(
        &pkt,
        Address::Short(CLIENT),
        Address::Short(GW),
        None,
        &mut out,
    )
    .expect("compress");
    out
}

/// One MQTT-SN frame of the capture and what tshark must read in it.
struct Expect {
    ty: MsgType,
    len: usize,
    data: Option<&'static [u8]>,
}

const TEN: &[u8] = b"21.5 degC!";
const EIGHTY: &[u8] =
    b"room=1;temp=21.5;rh=40.2;co2=612;lux=300;batt=3.01;rssi=-71;seq=000042;ok=1;pad=";

/// The capture: a discovery, connect, register and publish exchange in raw
/// frames (each message through `nalp_form`, as the transport sends it),
/// then one 6LoWPAN frame. Returns the file and the MQTT-SN expectations
/// (the 6LoWPAN frame is last).
fn raw_capture() -> (PathBuf, Vec<Expect>) {
    assert_eq!((TEN.len(), EIGHTY.len()), (10, 80));
    let msgs: [(u16, u16, Message<'_>); 9] = [
        (
            GW,
            BROADCAST,
            Message::Advertise {
                gw_id: 1,
                duration: 900,
            },
        ),
        (CLIENT, BROADCAST, Message::SearchGw { radius: 1 }),
        (
            GW,
            BROADCAST,
            Message::GwInfo {
                gw_id: 1,
                gw_add: &[],
            },
        ),
        (
            CLIENT,
            GW,
            Message::Connect {
                will: false,
                clean_session: true,
                duration: 60,
                client_id: "sensor-1",
            },
        ),
        (
            GW,
            CLIENT,
            Message::ConnAck {
                code: ReturnCode::Accepted,
            },
        ),
        (
            CLIENT,
            GW,
            Message::Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: "building/1/room/1/temperature",
            },
        ),
        (CLIENT, GW, publish(2, TEN)),
        (CLIENT, GW, publish(3, EIGHTY)),
        (
            GW,
            CLIENT,
            Message::PubAck {
                topic_id: 1,
                msg_id: 3,
                code: ReturnCode::Accepted,
            },
        ),
    ];
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    let mut out = Vec::new();
    for (seq, (src, dst, m)) in msgs.iter().enumerate() {
        let e = enc(m);
        let r = nalp_form(&e, &mut out);
        assert!(r[0] <= NALP_MAX);
        let data = match m {
            Message::Publish { data, .. } if *data == TEN => Some(TEN),
            Message::Publish { .. } => {
                assert_eq!(r[0], 0x01, "80-byte PUBLISH in the 3-octet form");
                Some(EIGHTY)
            }
            _ => None,
        };
        expect.push(Expect {
            ty: m.msg_type(),
            len: r.len(),
            data,
        });
        frames.push(frame(seq as u8, *src, *dst, r));
    }
    frames.push(frame(msgs.len() as u8, CLIENT, GW, &lowpan_coap()));
    (capture("mqttsn-raw", &frames), expect)
}

const FIELDS: [&str; 6] = [
    "frame.protocols",
    "mqttsn.msg.type",
    "mqttsn.msg.len",
    "mqttsn.pub.msg",
    "udp.dstport",
    "_ws.expert.message",
];

/// tshark's fields (FIELDS) per frame, with `pre` options first.
fn read(file: &Path, pre: &[&str]) -> Vec<Vec<String>> {
    let mut args = pre.to_vec();
    args.extend(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]);
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let out = tshark::run(file, &args);
    tshark::lines(&out)
        .into_iter()
        .map(|l| {
            let f: Vec<String> = l.split('|').map(str::to_owned).collect();
            assert_eq!(f.len(), FIELDS.len(), "{l}");
            f
        })
        .collect()
}

/// The command line the shim's header documents.
fn with_shim(lua: &str) -> [&str; 4] {
    ["-X", lua, "-d", "udp.port==1883,mqttsn"]
}

#[test]
fn tshark_with_the_shim_decodes_raw_mqttsn_beside_6lowpan() {
    if !tshark::available("tshark_with_the_shim_decodes_raw_mqttsn_beside_6lowpan") {
        return;
    }
    let (file, expect) = raw_capture();
    let lua = shim();
    let args = with_shim(&lua);

    let bad = tshark::flagged(&file, &args);
    assert!(bad.is_empty(), "malformed frames or warnings: {bad:?}");

    let rows = read(&file, &args);
    assert_eq!(rows.len(), expect.len() + 1, "{rows:?}");
    for (row, want) in rows.iter().zip(&expect) {
        assert_eq!(row[0], "wpan:mqttsn_wpan:mqttsn", "{row:?}");
        assert_eq!(row[1], format!("{:#04x}", want.ty as u8), "{row:?}");
        assert_eq!(row[2], want.len.to_string(), "{row:?}");
        let data = want
            .data
            .map_or("", |d| std::str::from_utf8(d).expect("ascii"));
        assert_eq!(row[3], data, "{row:?}");
    }
    let long = &rows[7];
    assert_eq!((long[2].as_str(), long[3].len()), ("89", 80), "{long:?}");
    let lowpan = rows.last().expect("6LoWPAN row");
    assert!(
        lowpan[0].starts_with("wpan:6lowpan:ipv6:udp:coap"),
        "{lowpan:?}"
    );
    assert_eq!(lowpan[4], "5683", "{lowpan:?}");
}

#[test]
fn tshark_without_the_shim_does_not_see_mqttsn() {
    if !tshark::available("tshark_without_the_shim_does_not_see_mqttsn") {
        return;
    }
    let (file, expect) = raw_capture();
    let rows = read(&file, &["-d", "udp.port==1883,mqttsn"]);
    assert_eq!(rows.len(), expect.len() + 1);
    for row in &rows[..expect.len()] {
        assert!(!row[0].contains("mqttsn"), "{row:?}");
        assert!(row[1].is_empty(), "{row:?}");
    }
    assert!(rows[expect.len()][0].starts_with("wpan:6lowpan:ipv6:udp:coap"));
}

/// The shim without `-d udp.port==1883,mqttsn` (tshark 4.0 names no
/// "mqttsn" dissector) says so on every MQTT-SN frame rather than
/// silently showing nothing.
#[test]
fn tshark_shim_without_decode_as_reports_an_error() {
    if !tshark::available("tshark_shim_without_decode_as_reports_an_error") {
        return;
    }
    let (file, expect) = raw_capture();
    let lua = shim();
    let rows = read(&file, &["-X", &lua]);
    assert_eq!(rows.len(), expect.len() + 1);
    for row in &rows[..expect.len()] {
        assert_eq!(row[0], "wpan:mqttsn_wpan", "{row:?}");
        assert!(row[5].starts_with("MQTT-SN dissector not found"), "{row:?}");
    }
    assert!(rows[expect.len()][0].starts_with("wpan:6lowpan:ipv6:udp:coap"));
}

/// Why the NALP form matters: the same 80-byte PUBLISH with its 1-octet
/// Length (0x57) is outside 0x00–0x3F, so even with the shim it is not
/// read as MQTT-SN.
#[test]
fn tshark_with_the_shim_ignores_a_long_message_in_the_short_form() {
    if !tshark::available("tshark_with_the_shim_ignores_a_long_message_in_the_short_form") {
        return;
    }
    let e = enc(&publish(3, EIGHTY));
    assert_eq!(e[0], 87);
    let file = capture("mqttsn-raw-short", &[frame(0, CLIENT, GW, &e)]);
    let lua = shim();
    let rows = read(&file, &with_shim(&lua));
    assert_eq!(rows.len(), 1);
    assert!(!rows[0][0].contains("mqttsn"), "{:?}", rows[0]);
}
