//! Fuzz targets: one function per decoder, each taking arbitrary bytes and
//! asserting the decoder's invariants (issue 19, "Fuzz targets"; issue 16,
//! "every new decoder gets a fuzz target").
//!
//! Every target calls the product's own decoder (nothing is re-implemented
//! here) and panics only when an invariant breaks:
//!
//! * the decoder returns an error on malformed input and never panics;
//! * what decodes re-encodes, and the re-encoding decodes to the same value
//!   (where the codec has an encoder);
//! * every accessor of a decoded value can be called on it.
//!
//! Two drivers use these functions: the cargo-fuzz crate in `fuzz/` (one
//! `fuzz_targets/<name>.rs` per entry of [`TARGETS`], libFuzzer-guided, run
//! by hand) and the deterministic bounded mutation fuzzer of the normal
//! suite, `tests/fuzz_bounded.rs`, seeded from `fuzz/corpus/<name>/`.
//!
//! Some targets read a few leading bytes as parameters (an MTU, a flag
//! asking the target to fix up a checksum so that mutations reach the code
//! behind it); each function's doc says how its input is laid out.

use std::net::Ipv4Addr;
use std::path::Path;

pub mod broker;
pub mod coap_endpoint;
pub mod tcp_pair;

use crate::link::mac154::{Address, DataFrame, MacFrame};
use crate::link::sixlowpan::{self, iphc, FragHeader};
use crate::net::checksum;
use crate::net::frag::{self, Reassembler};
use crate::net::frag6::{self, Reassembler6, REASSEMBLY_TIMEOUT_V6};
use crate::net::ip::{Ipv4Packet, Ipv4Repr};
use crate::net::ipv6::{Ipv6FragRepr, Ipv6Repr};
use crate::net::udp::{UdpPacket, UdpRepr};
use crate::proto::coap::endpoint::observe_value;
use crate::proto::coap::events::{CacheInfo, ETag};
use crate::proto::coap::option::OptionNumber;
use crate::proto::coap::uri::Uri;
use crate::proto::coap::{link, BlockOptions, BlockValue, CoapOption, Filter, Message, MessageRef};
use crate::proto::http;
use crate::proto::mqtt;
use crate::proto::mqttsn;
use crate::sim::{SimDuration, SimTime};
use crate::transport::tcp::segment::{fill_checksum, TcpPacket, TcpRepr};

/// A fuzz target: arbitrary bytes in, a panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and
/// `fuzz/corpus/*/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("coap_message", coap_message),
    ("coap_link", coap_link),
    ("coap_uri", coap_uri),
    ("http_request", http_request),
    ("http_response", http_response),
    ("mqtt", mqtt_packet),
    ("mqtt5", mqtt5_packet),
    ("mqttsn", mqttsn_message),
    ("ipv4", ipv4),
    ("ip_reassembly", ip_reassembly),
    ("udp", udp),
    ("ipv6", ipv6),
    ("sixlowpan", sixlowpan),
    ("tcp_segment", tcp_segment),
    ("mac154", mac154),
    ("scenario", scenario),
    ("broker", broker),
    ("coap_endpoint", coap_endpoint),
    ("tcp_pair", tcp_pair),
];

/// Stateful target: an action script against the MQTT broker with four
/// model clients (3.1.1 and 5.0); see [`broker::run`].
pub fn broker(data: &[u8]) {
    broker::run(data, broker::BrokerFaults::default());
}

/// Stateful target: datagrams from several peers and client requests
/// against a CoAP endpoint serving resources; see [`coap_endpoint::run`].
pub fn coap_endpoint(data: &[u8]) {
    coap_endpoint::run(data, coap_endpoint::CoapFaults::default());
}

/// Stateful target: two TCP connections over a lossy, reordering,
/// duplicating channel; see [`tcp_pair::run`].
pub fn tcp_pair(data: &[u8]) {
    tcp_pair::run(data, tcp_pair::TcpFaults::default());
}

/// An action script: the stateful targets read their input one byte at a
/// time; past the end every byte reads as 0 (so any input is a complete
/// script).
pub(crate) struct Script<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Script<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Script { data, pos: 0 }
    }
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub(crate) fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    /// Up to `n` bytes (fewer at the end).
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// CoAP message (RFC 7252 §3) and the option accessors built on it: the
/// whole input is one datagram. A datagram that parses: every option is
/// walked, the typed accessors (Content-Format, Uri-Path, Observe, Block1/2,
/// Size1/2, ETag, Max-Age, Proxy-Uri) are read, the owned form encodes, and
/// the encoding parses back to the same owned message and re-encodes to the
/// same bytes.
pub fn coap_message(data: &[u8]) {
    let Ok(m) = MessageRef::parse(data) else {
        return;
    };
    let mut prev = 0u16;
    let mut count = 0usize;
    for o in m.options() {
        assert!(o.number >= prev, "options out of order");
        prev = o.number;
        count += 1;
        assert!(m.option(o.number).is_some());
        let typed = CoapOption::from_raw(o.number, o.value);
        assert_eq!(typed.number().0, o.number);
        typed.with_value(|v| {
            // a typed value is the raw one or its minimal uint form
            assert!(v.len() <= o.value.len());
        });
    }
    let _ = m.content_format();
    let mut path = String::new();
    m.write_path(&mut path);
    let observe = observe_value(&m);
    if let Some(v) = observe {
        assert!(v < 1 << 24, "Observe value wider than 3 bytes");
    }
    let blocks = BlockOptions::of(&m);
    let decoded = [blocks.block1(), blocks.block2()];
    for v in decoded.into_iter().flatten().flatten() {
        assert_eq!(BlockValue::from_uint(v.to_uint()), Ok(v));
        let (buf, n) = v.encode();
        assert_eq!(BlockValue::from_bytes(&buf[8 - n..]), Ok(v));
        let _ = (v.size(), v.offset());
    }
    let _ = (blocks.size1, blocks.size2, blocks.is_empty());
    let cache = CacheInfo::of(&m);
    let _ = cache.max_age_or_default();
    if let Some(e) = cache.etag {
        assert_eq!(ETag::new(e.as_slice()), Some(e));
    }
    if let Some(p) = m.option(OptionNumber::PROXY_URI.0) {
        if let Ok(s) = std::str::from_utf8(p) {
            coap_uri(s.as_bytes());
        }
    }

    let owned = m.to_message();
    assert_eq!(owned.options().len(), count);
    let bytes = owned
        .to_bytes()
        .unwrap_or_else(|e| panic!("a parsed message does not encode: {e} ({owned:?})"));
    assert_eq!(bytes.len(), owned.buffer_len());
    let again = Message::parse(&bytes)
        .unwrap_or_else(|e| panic!("the re-encoding does not parse: {e} ({owned:?})"));
    assert_eq!(again, owned, "parse(emit(m)) != m");
    assert_eq!(
        again.to_bytes().ok().as_ref(),
        Some(&bytes),
        "encoding not stable"
    );
    let again_ref = MessageRef::parse(&bytes).ok();
    assert_eq!(again_ref.and_then(|r| observe_value(&r)), observe);

    // the option-value decoders on their own, fed the same bytes
    let _ = BlockValue::from_bytes(data);
    if data.len() >= 4 {
        let v = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if let Ok(b) = BlockValue::from_uint(v) {
            assert_eq!(b.to_uint(), v);
        }
    }
}

/// CoRE link format (RFC 6690) and its query filter: the input up to the
/// first newline is a query string (`&`-separated, e.g. `rt=temp&if=sensor`),
/// the rest the link document. A document that parses is filtered, every
/// link and parameter read, and written back; the written form parses to
/// the same links.
pub fn coap_link(data: &[u8]) {
    let (query, doc) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let query = String::from_utf8_lossy(query);
    let filter = Filter::from_queries(query.split('&').filter(|q| !q.is_empty()));
    let _ = filter.is_empty();
    let Ok(links) = link::parse(doc) else {
        return;
    };
    let mut written = String::new();
    for (i, l) in links.iter().enumerate() {
        let _ = filter.matches_link(l);
        for (name, _) in &l.params {
            assert!(l.has(name));
            let _ = l.param(name);
        }
        if i > 0 {
            written.push(',');
        }
        l.write(&mut written);
    }
    let again = link::parse(written.as_bytes())
        .unwrap_or_else(|e| panic!("written links do not parse: {e}: {written:?}"));
    assert_eq!(again, links, "parse(write(links)) != links: {written:?}");
}

/// CoAP URI (RFC 7252 §6): the input as text. A URI that parses composes
/// (Display) to a URI that parses to the same value, and its request
/// options compose back to it (§6.4 → §6.5).
pub fn coap_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(u) = Uri::parse(s) else {
        return;
    };
    let text = u.to_string();
    let again =
        Uri::parse(&text).unwrap_or_else(|e| panic!("composed URI {text:?} does not parse: {e}"));
    assert_eq!(again, u, "parse(compose(u)) != u for {s:?} → {text:?}");
    let opts = u.options(None, 0);
    let from = Uri::from_options(u.secure, "", 0, &opts);
    assert_eq!(from, u, "from_options(options(u)) != u");
}

/// Shared by the two HTTP/1.1 targets: the message at the start parses the
/// same whole, from its own bytes only, and fed to the incremental parser
/// in pieces.
fn http(side: http::Side, data: &[u8]) {
    let Ok(Some(m)) = http::parse(side, data) else {
        // the incremental parser agrees on "nothing yet" / "error"
        return;
    };
    assert!(m.wire_len <= data.len(), "wire_len past the input");
    assert!(m.body.len() <= m.wire_len);
    let _ = (m.keep_alive(), m.header("content-length"), m.header("host"));
    for (n, v) in &m.headers {
        assert!(m.header(n).is_some());
        let _ = v;
    }
    let _ = http::error_status(&http::ParseError::HeadTooLong);
    let alone = http::parse(side, &data[..m.wire_len]);
    assert_eq!(
        alone,
        Ok(Some(m.clone())),
        "message depends on bytes after it"
    );
    let mut p = http::Parser::new(side);
    let step = 1 + data.first().map_or(0, |&b| usize::from(b % 7));
    let mut got = None;
    for chunk in data[..m.wire_len].chunks(step) {
        p.feed(chunk);
        if let Ok(Some(x)) = p.next_message() {
            got = Some(x);
            break;
        }
    }
    assert_eq!(got.as_ref(), Some(&m), "incremental parse differs");
}

/// HTTP/1.1 requests (a server's parser, RFC 9112): the input is a stream.
pub fn http_request(data: &[u8]) {
    http(http::Side::Requests, data);
}

/// HTTP/1.1 responses (a client's parser, RFC 9112): the input is a stream.
pub fn http_response(data: &[u8]) {
    http(http::Side::Responses, data);
}

/// MQTT 3.1.1 packet (the input is a stream; the first packet is decoded).
/// A packet that decodes encodes to bytes that decode to the same packet.
pub fn mqtt_packet(data: &[u8]) {
    let Ok(Some((p, n))) = mqtt::codec::decode(data, mqtt::codec::MAX_PACKET_SIZE) else {
        return;
    };
    assert!(n <= data.len());
    let mut buf = Vec::new();
    let written = p
        .encode(&mut buf)
        .unwrap_or_else(|e| panic!("a decoded packet does not encode: {e} ({p:?})"));
    assert_eq!(written, buf.len());
    assert_eq!(p.encoded_len().ok(), Some(buf.len()));
    let again = mqtt::codec::decode(&buf, mqtt::codec::MAX_PACKET_SIZE);
    assert_eq!(again, Ok(Some((p, buf.len()))), "decode(encode(p)) != p");
}

/// MQTT 5.0 byte stream (`proto::mqtt::v5::decode`): what decodes
/// re-encodes, `encoded_len` is exact, and the encoding decodes to the same
/// packet; a refusal carries one of the decoder's reason codes (0x81
/// Malformed Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol
/// Version, 0x90 Topic Name invalid, 0x94 Topic Alias invalid, 0x95 Packet
/// too large) and a message; the CONNECT level probe
/// and `properties_len` run on every input.
pub fn mqtt5_packet(data: &[u8]) {
    use mqtt::v5::{self, Packet5};
    let _ = v5::connect_protocol_level(data);
    let (p, n) = match v5::decode(data, mqtt::codec::MAX_PACKET_SIZE) {
        Ok(Some(ok)) => ok,
        Ok(None) => return,
        Err(e) => {
            let r = e.reason().0;
            assert!(
                matches!(r, 0x81 | 0x82 | 0x84 | 0x90 | 0x94 | 0x95),
                "decode error with reason {r:#04x}: {e}"
            );
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(n > 0 && n <= data.len());
    let mut buf = Vec::new();
    let written = p
        .encode(&mut buf)
        .unwrap_or_else(|e| panic!("a decoded packet does not encode: {e} ({p:?})"));
    assert_eq!(written, buf.len());
    assert_eq!(p.encoded_len().ok(), Some(buf.len()));
    let props = match &p {
        Packet5::Connect(c) => Some(&c.props),
        Packet5::ConnAck(c) => Some(&c.props),
        Packet5::Publish(x) => Some(&x.props),
        Packet5::PubAck(a) | Packet5::PubRec(a) | Packet5::PubRel(a) | Packet5::PubComp(a) => {
            Some(&a.props)
        }
        Packet5::Subscribe(s) => Some(&s.props),
        Packet5::SubAck(s) | Packet5::UnsubAck(s) => Some(&s.props),
        Packet5::Unsubscribe(u) => Some(&u.props),
        Packet5::Disconnect(r) | Packet5::Auth(r) => Some(&r.props),
        Packet5::PingReq | Packet5::PingResp => None,
    };
    if let Some(props) = props {
        assert!(v5::properties_len(props) < buf.len());
    }
    let again = v5::decode(&buf, mqtt::codec::MAX_PACKET_SIZE)
        .unwrap_or_else(|e| panic!("the re-encoding does not decode: {e} ({p:?})"));
    assert_eq!(again, Some((p, buf.len())), "decode(encode(p)) != p");
}

/// MQTT-SN 1.2 datagram, the forwarder encapsulation (§5.5) included: what
/// decodes encodes to bytes that decode to the same message; an
/// encapsulated message's inner message decodes and is not encapsulated.
pub fn mqttsn_message(data: &[u8]) {
    let Ok(m) = mqttsn::codec::decode(data) else {
        return;
    };
    let _ = (m.msg_type(), m.encoded_len());
    if let mqttsn::codec::Message::Encapsulated { inner, .. } = m {
        let i = mqttsn::codec::decode(inner)
            .unwrap_or_else(|e| panic!("encapsulated message does not decode: {e:?}"));
        assert!(
            !matches!(i, mqttsn::codec::Message::Encapsulated { .. }),
            "nested encapsulation accepted"
        );
    }
    let mut buf = Vec::new();
    let n = mqttsn::codec::encode_into(&m, &mut buf)
        .unwrap_or_else(|e| panic!("a decoded message does not encode: {e:?} ({m:?})"));
    assert_eq!(n, buf.len());
    assert_eq!(m.encoded_len(), buf.len());
    let again = mqttsn::codec::decode(&buf);
    assert_eq!(again, Ok(m), "decode(encode(m)) != m");
}

/// Recompute an IPv4 header checksum in place (a coverage aid: lets
/// mutations of other header fields reach the code behind the check).
fn fix_ipv4_checksum(p: &mut [u8]) {
    if p.len() >= Ipv4Repr::HEADER_LEN {
        p[10] = 0;
        p[11] = 0;
        let c = checksum::checksum(&p[..Ipv4Repr::HEADER_LEN]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// IPv4 header (RFC 791) and fragmentation. Input: byte 0 = flags (bit 0:
/// fix the header checksum first), byte 1 = MTU / 4, the rest one packet. A
/// packet that parses: every accessor is read, the header re-emits to a
/// packet that parses the same, and fragmenting it at the MTU gives
/// fragments that parse and reassemble to the original payload.
pub fn ipv4(data: &[u8]) {
    let [flags, mtu, rest @ ..] = data else {
        return;
    };
    let mut pkt = rest.to_vec();
    if flags & 1 != 0 {
        fix_ipv4_checksum(&mut pkt);
    }
    if let Ok(p) = Ipv4Packet::new_checked(&pkt[..]) {
        let _ = (p.tos(), p.total_len(), p.ident(), p.reserved_flag());
        let _ = (p.dont_fragment(), p.more_fragments(), p.frag_offset());
        let _ = (p.ttl(), p.protocol(), p.checksum(), p.src(), p.dst());
        let _ = (p.verify_checksum(), p.payload().len(), p.packet().len());
    }
    let _ = (
        crate::net::ip::dst_of(&pkt),
        crate::net::ip::src_of(&pkt),
        crate::net::ip::total_len_of(&pkt),
        crate::net::ip::carries_tcp(&pkt),
    );
    let Ok((repr, payload)) = Ipv4Repr::parse(&pkt) else {
        return;
    };
    assert_eq!(payload.len(), usize::from(repr.payload_len));
    let mut out = vec![0u8; repr.total_len()];
    repr.emit(&mut out)
        .unwrap_or_else(|e| panic!("a parsed header does not emit: {e} ({repr:?})"));
    out[Ipv4Repr::HEADER_LEN..].copy_from_slice(payload);
    let (again, again_payload) = Ipv4Repr::parse(&out)
        .unwrap_or_else(|e| panic!("the re-emitted packet does not parse: {e}"));
    assert_eq!(again, repr);
    assert_eq!(again_payload, payload);

    let mtu = usize::from(*mtu) * 4;
    let mut scratch = Vec::new();
    let mut frags: Vec<Vec<u8>> = Vec::new();
    let Ok(n) = frag::fragment(&pkt, mtu, &mut scratch, |f| frags.push(f.to_vec())) else {
        return;
    };
    assert_eq!(n, frags.len());
    if repr.is_fragment() {
        for f in &frags {
            assert!(Ipv4Repr::parse(f).is_ok(), "a fragment does not parse");
        }
        return;
    }
    let mut r = Reassembler::new(SimDuration::from_secs(30));
    let mut whole = None;
    for f in frags.iter().rev() {
        assert!(f.len() <= mtu.max(repr.total_len().min(mtu)) || n == 1);
        if let Ok(Some(d)) = r.push(SimTime::ZERO, f) {
            whole = Some(d);
        }
    }
    let whole = whole.expect("fragments did not reassemble");
    let (w, wp) = Ipv4Repr::parse(&whole).expect("reassembled datagram parses");
    assert_eq!(wp, payload, "reassembly changed the payload");
    assert_eq!(
        (w.src, w.dst, w.protocol, w.ident),
        (repr.src, repr.dst, repr.protocol, repr.ident)
    );
}

/// IPv4 reassembly (RFC 791 §3.2) fed arbitrary fragments. Input: byte 0 =
/// flags (bit 0: fix each record's header checksum), then records
/// `[len_hi, len_lo, packet…]`, each pushed one millisecond after the last
/// into a reassembler with a 4 KiB budget and a 10 ms timeout. Every
/// datagram it returns parses and is not a fragment; memory stays within
/// the budget; expiry empties it.
pub fn ip_reassembly(data: &[u8]) {
    let Some((flags, mut rest)) = data.split_first() else {
        return;
    };
    const BUDGET: usize = 4096;
    let mut r = Reassembler::new(SimDuration::from_millis(10)).with_max_bytes(BUDGET);
    let mut now = SimTime::ZERO;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let tail: &[u8] = tail;
        let mut rec = tail[..len].to_vec();
        rest = &tail[len..];
        if flags & 1 != 0 {
            fix_ipv4_checksum(&mut rec);
        }
        now += SimDuration::from_millis(1);
        r.expire(now);
        if let Ok(Some(d)) = r.push(now, &rec) {
            let (repr, _) = Ipv4Repr::parse(&d).expect("a reassembled datagram parses");
            assert!(!repr.is_fragment(), "reassembly returned a fragment");
            r.recycle(d);
        }
        assert!(r.held_bytes() <= BUDGET, "reassembler over its budget");
        let _ = (r.pending(), r.next_expiry(), r.dropped_over_budget());
    }
    r.expire(now + SimDuration::from_secs(1));
    assert_eq!(r.pending(), 0, "expiry left datagrams behind");
}

/// IPv6 header (RFC 8200), UDP over it, its 6LoWPAN compression, and the
/// Fragment header. The whole input is one packet. A packet that parses
/// re-emits to one that parses the same; a UDP datagram in it whose
/// checksum verifies and that fills the payload is rebuilt byte for byte by `build_ipv6_udp`; IPHC
/// compression for a frame between two short addresses, with context 0
/// 2001:db8::/64, decompresses to exactly the packet. Input that parses as
/// a Fragment header re-emits to one that parses the same. The input pushed
/// into an IPv6 reassembler gives a value or an error; a packet without a
/// Fragment header, fragmented by its source at MTU 56 + its length mod 200,
/// reassembles (last fragment first) to exactly the packet.
pub fn ipv6(data: &[u8]) {
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    let _ = r.push(SimTime::ZERO, data);
    if let Ok((f, rest)) = Ipv6FragRepr::parse(data) {
        let mut out = Vec::new();
        f.emit(&mut out)
            .unwrap_or_else(|e| panic!("a parsed Fragment header does not emit: {e}"));
        out.extend_from_slice(rest);
        assert_eq!(Ipv6FragRepr::parse(&out), Ok((f, rest)));
    }
    let Ok((repr, payload)) = Ipv6Repr::parse(data) else {
        return;
    };
    assert_eq!(payload.len(), usize::from(repr.payload_len));
    let mut out = Vec::new();
    repr.emit(&mut out)
        .unwrap_or_else(|e| panic!("a parsed header does not emit: {e} ({repr:?})"));
    out.extend_from_slice(payload);
    assert_eq!(&out[..], &data[..repr.total_len()], "emit(parse(b)) != b");
    if repr.next_header != crate::net::ipv6::NEXT_HEADER_FRAGMENT {
        let mtu = frag6::MIN_FRAG_MTU_V6 + out.len() % 200;
        let mut frags: Vec<Vec<u8>> = Vec::new();
        frag6::fragment_v6(&out, mtu, 1, &mut Vec::new(), |f| frags.push(f.to_vec()))
            .unwrap_or_else(|e| panic!("a valid IPv6 packet does not fragment: {e}"));
        let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
        let mut whole = None;
        for f in frags.iter().rev() {
            assert!(f.len() <= mtu, "a fragment exceeds the MTU");
            whole = r.push(SimTime::ZERO, f).expect("own fragment refused");
        }
        assert_eq!(whole.as_ref(), Some(&out), "reassembly(fragment(p)) != p");
    }
    if repr.next_header == crate::net::ip::PROTO_UDP {
        let udp = crate::net::ipv6::parse_udp(payload, repr.src, repr.dst).ok();
        if let Some((u, _, p)) = udp.filter(|(u, _, _)| u.buffer_len() == payload.len()) {
            let mut again = Vec::new();
            crate::net::ipv6::build_ipv6_udp(&mut again, &repr, u.src_port, u.dst_port, p)
                .unwrap_or_else(|e| panic!("a parsed datagram does not rebuild: {e}"));
            assert_eq!(&again[..], &out[..again.len()], "UDP rebuild differs");
        }
    }
    let (ls, ld) = (Address::Short(1), Address::Short(2));
    let ctx0 = Some(FUZZ_CONTEXT);
    let mut c = Vec::new();
    iphc::compress_packet(&out, ls, ld, ctx0, &mut c)
        .unwrap_or_else(|e| panic!("a valid IPv6 packet does not compress: {e}"));
    let mut back = Vec::new();
    iphc::decompress_packet(&c, ls, ld, ctx0, None, &mut back)
        .unwrap_or_else(|e| panic!("a compressed packet does not decompress: {e}"));
    assert_eq!(back, out, "decompress(compress(p)) != p");
}

/// Context 0 of the 6LoWPAN targets: 2001:db8::/64.
const FUZZ_CONTEXT: sixlowpan::Context = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];

/// 6LoWPAN (RFC 4944, RFC 6282) frame payload. Input: byte 0 = flags
/// (bit 0: context 0 configured; bit 1: extended link source; bit 2:
/// broadcast link destination; bits 3–7: frame payload size − 60 for
/// fragmentation), the rest one 802.15.4 frame payload. An IPHC payload
/// that decompresses: its packet recompresses to at most as many bytes
/// and decompresses back to the same packet, and fragmenting that
/// reassembles (last fragment first) to it. A fragment header re-emits to
/// the same bytes. A bounded reassembler fed the payload stays in bounds
/// and empties on expiry.
pub fn sixlowpan(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let ctx0 = (flags & 1 != 0).then_some(FUZZ_CONTEXT);
    let ls = if flags & 2 != 0 {
        Address::Extended(0x0012_4B00_0102_0304)
    } else {
        Address::Short(1)
    };
    let ld = Address::Short(if flags & 4 != 0 { 0xFFFF } else { 2 });
    let _ = rest.first().map(|&b| sixlowpan::classify(b));
    if let Ok((h, _)) = FragHeader::parse(rest) {
        let mut out = Vec::new();
        h.emit(&mut out)
            .unwrap_or_else(|e| panic!("a parsed fragment header does not emit: {e}"));
        assert_eq!(&out[..], &rest[..h.len()], "FRAG emit(parse(b)) != b");
    }
    const BOUND: usize = 4096;
    let mut r = sixlowpan::Reassembler::new(SimDuration::from_millis(10)).with_bounds(4, BOUND);
    if let Ok(Some(p)) = r.push(SimTime::ZERO, ls, ld, rest, ctx0) {
        assert!(
            Ipv6Repr::parse(&p).is_ok(),
            "reassembly returned a bad packet"
        );
    }
    assert!(r.held_bytes() <= BOUND, "reassembler over its bound");
    r.expire(SimTime::ZERO + SimDuration::from_millis(10));
    assert_eq!((r.pending(), r.held_bytes()), (0, 0), "expiry left data");

    let mut pkt = Vec::new();
    let Ok(d) = iphc::decompress_packet(rest, ls, ld, ctx0, None, &mut pkt) else {
        return;
    };
    assert_eq!(pkt.len(), d.ip.total_len());
    let mut c = Vec::new();
    let (hc, hu) = iphc::compress_packet(&pkt, ls, ld, ctx0, &mut c)
        .unwrap_or_else(|e| panic!("a decompressed packet does not compress: {e}"));
    assert!(
        c.len() <= rest.len(),
        "recompression is longer than the input"
    );
    let mut back = Vec::new();
    iphc::decompress_packet(&c, ls, ld, ctx0, None, &mut back)
        .unwrap_or_else(|e| panic!("a recompressed packet does not decompress: {e}"));
    assert_eq!(back, pkt, "decompress(compress(p)) != p");
    let max = 60 + usize::from(flags >> 3);
    let Ok(frames) = sixlowpan::fragment(&c, hc, hu, max, 0x1234) else {
        return;
    };
    let mut r = sixlowpan::Reassembler::new(SimDuration::from_secs(60)).with_bounds(
        1,
        sixlowpan::frag::MAX_DATAGRAM_SIZE + sixlowpan::frag::PARTIAL_COST,
    );
    let mut whole = None;
    for f in frames.iter().rev() {
        assert!(f.len() <= max, "a fragment exceeds the frame");
        if let Some(p) = r
            .push(SimTime::ZERO, ls, ld, f, ctx0)
            .unwrap_or_else(|e| panic!("a fragment is refused: {e}"))
        {
            whole = Some(p);
        }
    }
    assert_eq!(
        whole.as_deref(),
        Some(&pkt[..]),
        "fragments did not reassemble"
    );
}

/// The addresses a transport target's pseudo-header uses: the first eight
/// input bytes when there are that many.
fn addrs(data: &[u8]) -> (Ipv4Addr, Ipv4Addr, &[u8]) {
    match data {
        [a, b, c, d, e, f, g, h, rest @ ..] => (
            Ipv4Addr::new(*a, *b, *c, *d),
            Ipv4Addr::new(*e, *f, *g, *h),
            rest,
        ),
        _ => (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &[]),
    }
}

/// UDP (RFC 768). Input: byte 0 = flags (bit 0: fill in a correct
/// checksum), bytes 1–8 = source and destination address, the rest the
/// datagram. A datagram that parses re-emits to one that parses the same.
pub fn udp(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let (src, dst, dgram) = addrs(rest);
    let mut d = dgram.to_vec();
    if flags & 1 != 0 && d.len() >= UdpRepr::HEADER_LEN {
        let len = u16::from_be_bytes([d[4], d[5]]);
        let len_ok = usize::from(len) >= UdpRepr::HEADER_LEN;
        if let Some(body) = d.get_mut(..usize::from(len)).filter(|_| len_ok) {
            body[6] = 0;
            body[7] = 0;
            let acc = checksum::pseudo_header_sum(src, dst, 17, len);
            let c = match !checksum::fold(checksum::accumulate(acc, body)) {
                0 => 0xFFFF,
                c => c,
            };
            body[6..8].copy_from_slice(&c.to_be_bytes());
        }
    }
    if let Ok(p) = UdpPacket::new_checked(&d[..]) {
        let _ = (p.src_port(), p.dst_port(), p.length(), p.checksum());
        let _ = (
            p.datagram().len(),
            p.payload().len(),
            p.verify_checksum(src, dst),
        );
    }
    let Ok((repr, payload)) = UdpRepr::parse(&d, src, dst) else {
        return;
    };
    assert_eq!(payload.len(), usize::from(repr.payload_len));
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out, src, dst, payload)
        .unwrap_or_else(|e| panic!("a parsed datagram does not emit: {e}"));
    let (again, again_payload) =
        UdpRepr::parse(&out, src, dst).unwrap_or_else(|e| panic!("re-emitted: {e}"));
    assert_eq!((again, again_payload), (repr, payload));
}

/// TCP segment (RFC 9293 §3.1, options of RFC 7323 / RFC 2018). Input:
/// byte 0 = flags (bit 0: fill in a correct checksum), bytes 1–8 =
/// source and destination address, the rest the segment. A segment that
/// parses re-emits to one that parses the same (SACK blocks cut to what
/// fits beside the other options, as `emit` documents).
pub fn tcp_segment(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let (src, dst, seg) = addrs(rest);
    let mut s = seg.to_vec();
    if flags & 1 != 0 && s.len() >= 20 && s.len() <= usize::from(u16::MAX) {
        fill_checksum(&mut s, checksum::PseudoAddrs::v4(src, dst));
    }
    if let Ok(p) = TcpPacket::new_checked(&s[..]) {
        let f = p.flags();
        let _ = (f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.has(0x20));
        let _ = (p.src_port(), p.dst_port(), p.seq(), p.ack(), p.header_len());
        let _ = (p.window(), p.checksum(), p.urgent(), p.options().len());
        let _ = (p.payload().len(), p.verify_checksum(src, dst));
    }
    let Ok((repr, payload)) = TcpRepr::parse(&s, src, dst) else {
        return;
    };
    assert_eq!(payload.len(), usize::from(repr.payload_len));
    let _ = (repr.segment_len(), repr.options_len(), repr.sack.as_slice());
    let mut out = vec![0u8; repr.buffer_len()];
    let n = repr
        .emit(&mut out, src, dst, payload)
        .unwrap_or_else(|e| panic!("a parsed segment does not emit: {e} ({repr:?})"));
    assert_eq!(n, out.len());
    let (again, again_payload) = TcpRepr::parse(&out, src, dst)
        .unwrap_or_else(|e| panic!("the re-emitted segment does not parse: {e} ({repr:?})"));
    assert_eq!(again_payload, payload);
    let mut expect = repr;
    expect.sack.truncate(again.sack.len());
    assert!(again.sack.len() <= repr.sack.len());
    assert_eq!(again, expect, "parse(emit(r)) != r");
}

/// IEEE 802.15.4 data frame (PSDU with FCS). A frame that parses emits
/// back to exactly the input (the codec's documented contract), for
/// `MacFrame` and, when it applies, `DataFrame`.
pub fn mac154(data: &[u8]) {
    if let Ok(f) = MacFrame::parse(data) {
        let _ = (f.addresses.dst(), f.addresses.src(), f.buffer_len());
        let mut out = Vec::new();
        f.emit(&mut out)
            .unwrap_or_else(|e| panic!("a parsed frame does not emit: {e} ({f:?})"));
        assert_eq!(out, data, "emit(parse(b)) != b");
        assert_eq!(f.buffer_len(), data.len());
    }
    if let Ok(d) = DataFrame::parse(data) {
        let mut out = Vec::new();
        d.emit(&mut out)
            .unwrap_or_else(|e| panic!("a parsed data frame does not emit: {e} ({d:?})"));
        assert_eq!(out, data, "DataFrame: emit(parse(b)) != b");
        assert_eq!(d.buffer_len(), data.len());
    }
}

/// The scenario loader (TOML text, validation): any text loads or is
/// refused with an error, never a panic. Relative trace paths resolve in a
/// directory that does not exist, so nothing on disk is read.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/nonexistent/qossim-fuzz");
    if let Ok(s) = crate::scenario::load_str(text, "fuzz.toml", base, &[]) {
        let _ = s.name.len();
    }
}
