//! CoAP codec tests: golden bytes derived by hand from RFC 7252 §3, error
//! cases from §3/§4.1, and property tests (round trip, arbitrary input).

use proptest::prelude::*;
use qossim::proto::coap::{CoapOption, Code, CodecError, Message, MessageRef, MessageType, Token};

fn token(b: &[u8]) -> Token {
    Token::new(b).expect("≤ 8 bytes")
}

/// (a) CON GET, token 0xABCD, MID 0x1234, Uri-Path building/xyz/room/120/temperature.
///
/// Byte 0: Ver=01, T=CON=00, TKL=0010 → 0b0100_0010 = 0x42.
/// Byte 1: Code 0.01 GET = 0b000_00001 = 0x01. Bytes 2–3: MID 0x12 0x34.
/// Token: 0xAB 0xCD.
/// Options (§3.1, Uri-Path = 11, one option per segment):
///   "building"    delta 11, len 8  → 0xB8 + 8 bytes
///   "xyz"         delta 0,  len 3  → 0x03 + 3 bytes
///   "room"        delta 0,  len 4  → 0x04 + 4 bytes
///   "120"         delta 0,  len 3  → 0x03 + 3 bytes
///   "temperature" delta 0,  len 11 → 0x0B + 11 bytes
/// No payload, so no marker.
fn golden_get() -> Vec<u8> {
    let mut v = vec![0x42, 0x01, 0x12, 0x34, 0xAB, 0xCD, 0xB8];
    v.extend_from_slice(b"building");
    v.push(0x03);
    v.extend_from_slice(b"xyz");
    v.push(0x04);
    v.extend_from_slice(b"room");
    v.push(0x03);
    v.extend_from_slice(b"120");
    v.push(0x0B);
    v.extend_from_slice(b"temperature");
    v
}

#[test]
fn golden_con_get_with_uri_path() {
    let mut m = Message::new(MessageType::Con, Code::GET, 0x1234, token(&[0xAB, 0xCD]));
    for seg in ["building", "xyz", "room", "120", "temperature"] {
        m.add_option(CoapOption::UriPath(seg.into()));
    }
    let bytes = m.to_bytes().expect("emit");
    assert_eq!(bytes, golden_get());
    assert_eq!(m.buffer_len(), bytes.len());
    assert_eq!(Message::parse(&bytes).expect("parse"), m);
    let r = MessageRef::parse(&bytes).expect("parse");
    let mut path = String::new();
    r.write_path(&mut path);
    assert_eq!(path, "building/xyz/room/120/temperature");
    assert_eq!(r.token.as_slice(), &[0xAB, 0xCD]);
}

/// (b) Empty ACK, MID 0x1234: Ver=01, T=ACK=10, TKL=0 → 0b0110_0000 = 0x60;
/// Code 0.00 = 0x00; MID 0x12 0x34; nothing else (§4.1).
#[test]
fn golden_empty_ack() {
    let m = Message::empty(MessageType::Ack, 0x1234);
    assert_eq!(m.to_bytes().expect("emit"), vec![0x60, 0x00, 0x12, 0x34]);
    let p = Message::parse(&[0x60, 0x00, 0x12, 0x34]).expect("parse");
    assert_eq!(p, m);
}

/// (c) Piggybacked 2.05 Content, token 0xABCD, MID 0x1234, Content-Format 50
/// (application/json), payload `{"t":22.5}`.
/// Byte 0: Ver=01, T=ACK=10, TKL=0010 → 0x62. Code 2.05 = 0b010_00101 = 0x45.
/// Content-Format = 12: delta 12, len 1 → 0xC1, value 50 = 0x32 (minimal uint).
/// Payload marker 0xFF, then the 10 payload bytes.
#[test]
fn golden_piggybacked_content() {
    let m = Message::new(
        MessageType::Ack,
        Code::CONTENT,
        0x1234,
        token(&[0xAB, 0xCD]),
    )
    .with_option(CoapOption::ContentFormat(50))
    .with_payload(&b"{\"t\":22.5}"[..]);
    let mut want = vec![0x62, 0x45, 0x12, 0x34, 0xAB, 0xCD, 0xC1, 0x32, 0xFF];
    want.extend_from_slice(b"{\"t\":22.5}");
    assert_eq!(m.to_bytes().expect("emit"), want);
    let r = MessageRef::parse(&want).expect("parse");
    assert_eq!(r.content_format(), Some(50));
    assert_eq!(r.payload, b"{\"t\":22.5}");
    assert_eq!(Message::parse(&want).expect("parse"), m);
}

/// (d) Extended delta and length forms (§3.1), NON POST, TKL 0, MID 0x0001:
/// Header 0x50 (Ver 01, T=NON=01, TKL 0), 0x02 (POST), 0x00 0x01.
/// * Uri-Path (11), 20-byte segment: delta 11 (nibble), len 20 ≥ 13 →
///   nibble 13 + byte 20−13 = 7 → 0xBD 0x07, 20 bytes.
/// * Size1 (60) = 1000: delta 49 ≥ 13 → nibble 13 + byte 49−13 = 36 = 0x24;
///   len 2 → 0xD2 0x24 0x03 0xE8.
/// * Unknown option 300, 300 bytes of 0xAA: delta 240 → nibble 13 + byte
///   227 = 0xE3; len 300 ≥ 269 → nibble 14 + 2 bytes 300−269 = 31 →
///   0xDE 0xE3 0x00 0x1F, 300 bytes.
/// * Unknown option 2000, empty: delta 1700 ≥ 269 → nibble 14 + 2 bytes
///   1700−269 = 1431 = 0x0597; len 0 → 0xE0 0x05 0x97.
/// * Payload "x": 0xFF 0x78.
#[test]
fn golden_extended_delta_and_length() {
    let seg = "abcdefghijklmnopqrst";
    let m = Message::new(MessageType::Non, Code::POST, 1, Token::EMPTY)
        .with_option(CoapOption::Other {
            number: 2000,
            value: vec![],
        })
        .with_option(CoapOption::Other {
            number: 300,
            value: vec![0xAA; 300],
        })
        .with_option(CoapOption::Size1(1000))
        .with_option(CoapOption::UriPath(seg.into()))
        .with_payload(&b"x"[..]);
    let mut want = vec![0x50, 0x02, 0x00, 0x01, 0xBD, 0x07];
    want.extend_from_slice(seg.as_bytes());
    want.extend_from_slice(&[0xD2, 0x24, 0x03, 0xE8]);
    want.extend_from_slice(&[0xDE, 0xE3, 0x00, 0x1F]);
    want.extend_from_slice(&[0xAA; 300]);
    want.extend_from_slice(&[0xE0, 0x05, 0x97, 0xFF, 0x78]);
    let got = m.to_bytes().expect("emit");
    assert_eq!(got, want);
    assert_eq!(m.buffer_len(), want.len());
    // Options come back sorted by number regardless of insertion order.
    let back = Message::parse(&want).expect("parse");
    let numbers: Vec<u16> = back.options().iter().map(|o| o.number().0).collect();
    assert_eq!(numbers, vec![11, 60, 300, 2000]);
    assert_eq!(back, m);
}

#[test]
fn repeated_options_keep_insertion_order() {
    let m = Message::new(MessageType::Con, Code::GET, 7, Token::EMPTY)
        .with_option(CoapOption::UriQuery("b=2".into()))
        .with_option(CoapOption::UriPath("x".into()))
        .with_option(CoapOption::UriQuery("a=1".into()))
        .with_option(CoapOption::UriPath("y".into()));
    let got: Vec<&CoapOption> = m.options().iter().collect();
    assert_eq!(
        got,
        vec![
            &CoapOption::UriPath("x".into()),
            &CoapOption::UriPath("y".into()),
            &CoapOption::UriQuery("b=2".into()),
            &CoapOption::UriQuery("a=1".into()),
        ]
    );
}

#[test]
fn non_minimal_uint_is_accepted() {
    // Content-Format encoded as two bytes 0x00 0x00 (§3.2: leading zeros OK).
    let bytes = [0x40, 0x01, 0, 1, 0xC2, 0x00, 0x00];
    let m = Message::parse(&bytes).expect("parse");
    assert_eq!(m.options(), &[CoapOption::ContentFormat(0)]);
}

#[test]
fn format_errors_are_reported_not_panicked() {
    use CodecError::*;
    let cases: &[(&[u8], CodecError)] = &[
        (&[0x40, 0x01, 0x00], TooShort { len: 3 }),
        (&[0x80, 0x01, 0, 1], UnknownVersion { version: 2 }),
        (&[0x49, 0x01, 0, 1], TokenLength { tkl: 9 }),
        (&[0x4F, 0x01, 0, 1], TokenLength { tkl: 15 }),
        (&[0x42, 0x01, 0, 1, 0xAA], TruncatedToken { tkl: 2, len: 5 }),
        // Delta nibble 15 without being the payload marker (§3.1).
        (
            &[0x40, 0x01, 0, 1, 0xF0],
            ReservedNibble {
                at: 4,
                field: "delta",
            },
        ),
        // Length nibble 15 (§3.1).
        (
            &[0x40, 0x01, 0, 1, 0xBF],
            ReservedNibble {
                at: 4,
                field: "length",
            },
        ),
        // Marker followed by nothing (§3).
        (&[0x40, 0x01, 0, 1, 0xFF], EmptyPayload { at: 4 }),
        // Extended delta byte missing.
        (
            &[0x40, 0x01, 0, 1, 0xD0],
            TruncatedOptionHeader {
                at: 4,
                field: "delta",
            },
        ),
        // Value longer than the rest of the datagram.
        (
            &[0x40, 0x01, 0, 1, 0xB5, b'a'],
            TruncatedOptionValue { at: 4, len: 5 },
        ),
        // Empty message (0.00) with a token (§4.1).
        (
            &[0x61, 0x00, 0, 1, 0x01],
            EmptyMessageWithContent { len: 1 },
        ),
        // Option number beyond 65535: one delta of 65535 + 269 (§3.1 14-form).
        (
            &[0x40, 0x01, 0, 1, 0xE0, 0xFF, 0xFF],
            OptionNumberOverflow { at: 4 },
        ),
        // Option 65535 (delta 65266 + 269) is fine; one more (delta 1) overflows.
        (
            &[0x40, 0x01, 0, 1, 0xE0, 0xFE, 0xF2, 0x10],
            OptionNumberOverflow { at: 7 },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            MessageRef::parse(bytes).err().as_ref(),
            Some(want),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn emit_rejects_what_parse_would_not_return() {
    let m = Message::new(MessageType::Con, Code::EMPTY, 1, token(&[1]));
    assert!(matches!(
        m.to_bytes(),
        Err(CodecError::EmptyMessageWithContent { .. })
    ));
    let m = Message::new(MessageType::Con, Code::GET, 1, Token::EMPTY)
        .with_option(CoapOption::UriHost(String::new()));
    assert!(matches!(
        m.to_bytes(),
        Err(CodecError::OptionValueLength { number: 3, .. })
    ));
    assert!(matches!(
        Token::new(&[0; 9]),
        Err(CodecError::TokenTooLong { len: 9 })
    ));
}

/// (e) The options of Observe (RFC 7641), block-wise (RFC 7959), caching
/// and proxying (RFC 7252 §5.10), by hand, both ways.
///
/// Request: CON PUT (0x41 0x03), MID 0x0007, token 0x5A;
/// * Block1 (27) NUM 1, M 1, SZX 6 = 1<<4 | 8 | 6 = 0x1E: delta 27 ≥ 13 →
///   nibble 13 + byte 14; len 1 → 0xD1 0x0E 0x1E.
/// * Proxy-Uri (35) "coap://s/t": delta 8, len 10 → 0x8A + 10 bytes.
/// * Size1 (60) = 2048: delta 25 → nibble 13 + byte 12, len 2 →
///   0xD2 0x0C 0x08 0x00. Payload "x".
///
/// Response: ACK 2.05 (0x61 0x45), MID 0x0007, token 0x5A;
/// * ETag (4) 0xABCD: 0x42 0xAB 0xCD.
/// * Observe (6) = 1: delta 2, len 1 → 0x21 0x01.
/// * Max-Age (14) = 60: delta 8 → 0x81 0x3C.
/// * Block2 (23) NUM 2, M 1, SZX 2 = 0x2A: delta 9 → 0x91 0x2A.
/// * Size2 (28) = 300: delta 5, len 2 → 0x52 0x01 0x2C. Payload "22.5".
#[test]
fn golden_observe_block_cache_and_proxy_options() {
    let req = Message::new(MessageType::Con, Code::PUT, 7, token(&[0x5A]))
        .with_option(CoapOption::Block1(0x1E))
        .with_option(CoapOption::ProxyUri("coap://s/t".into()))
        .with_option(CoapOption::Size1(2048))
        .with_payload(&b"x"[..]);
    let mut want = vec![0x41, 0x03, 0x00, 0x07, 0x5A, 0xD1, 0x0E, 0x1E, 0x8A];
    want.extend_from_slice(b"coap://s/t");
    want.extend_from_slice(&[0xD2, 0x0C, 0x08, 0x00, 0xFF, b'x']);
    assert_eq!(req.to_bytes().expect("emit"), want);
    assert_eq!(Message::parse(&want).expect("parse"), req);

    let resp = Message::new(MessageType::Ack, Code::CONTENT, 7, token(&[0x5A]))
        .with_option(CoapOption::ETag(vec![0xAB, 0xCD]))
        .with_option(CoapOption::Observe(1))
        .with_option(CoapOption::MaxAge(60))
        .with_option(CoapOption::Block2(0x2A))
        .with_option(CoapOption::Size2(300))
        .with_payload(&b"22.5"[..]);
    let mut want = vec![
        0x61, 0x45, 0x00, 0x07, 0x5A, 0x42, 0xAB, 0xCD, 0x21, 0x01, 0x81, 0x3C, 0x91, 0x2A, 0x52,
        0x01, 0x2C, 0xFF,
    ];
    want.extend_from_slice(b"22.5");
    assert_eq!(resp.to_bytes().expect("emit"), want);
    let back = Message::parse(&want).expect("parse");
    assert_eq!(back, resp);
    let b2 = qossim::proto::coap::block::BlockValue::from_uint(0x2A).expect("valid");
    assert_eq!((b2.num, b2.more, b2.size()), (2, true, 64));
}

// ---- property tests --------------------------------------------------------

const KNOWN: [u16; 19] = [
    1, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 17, 20, 23, 27, 28, 35, 39, 60,
];

fn s(lo: usize, hi: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::char::range('a', 'z'), lo..=hi)
        .prop_map(|v| v.into_iter().collect())
}

fn arb_option() -> impl Strategy<Value = CoapOption> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=8).prop_map(CoapOption::IfMatch),
        s(1, 20).prop_map(CoapOption::UriHost),
        proptest::collection::vec(any::<u8>(), 1..=8).prop_map(CoapOption::ETag),
        Just(CoapOption::IfNoneMatch),
        any::<u16>().prop_map(CoapOption::UriPort),
        s(0, 20).prop_map(CoapOption::LocationPath),
        s(0, 300).prop_map(|p| CoapOption::UriPath(p.chars().take(255).collect())),
        any::<u16>().prop_map(CoapOption::ContentFormat),
        any::<u32>().prop_map(CoapOption::MaxAge),
        s(0, 20).prop_map(CoapOption::UriQuery),
        any::<u16>().prop_map(CoapOption::Accept),
        s(0, 20).prop_map(CoapOption::LocationQuery),
        s(1, 40).prop_map(CoapOption::ProxyUri),
        s(1, 10).prop_map(CoapOption::ProxyScheme),
        any::<u32>().prop_map(CoapOption::Size1),
        (0u32..1 << 24).prop_map(CoapOption::Observe),
        (0u32..1 << 24).prop_map(CoapOption::Block1),
        (0u32..1 << 24).prop_map(CoapOption::Block2),
        any::<u32>().prop_map(CoapOption::Size2),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..400))
            .prop_filter("unknown numbers only", |(n, _)| !KNOWN.contains(n))
            .prop_map(|(number, value)| CoapOption::Other { number, value }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let ty = prop_oneof![
        Just(MessageType::Con),
        Just(MessageType::Non),
        Just(MessageType::Ack),
        Just(MessageType::Rst)
    ];
    (
        ty,
        1u8..=255,
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..=8),
        proptest::collection::vec(arb_option(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(ty, code, mid, tok, opts, payload, empty)| {
            if empty {
                return Message::empty(ty, mid);
            }
            let mut m = Message::new(
                ty,
                Code(code),
                mid,
                Token::new(&tok).unwrap_or(Token::EMPTY),
            )
            .with_payload(payload);
            for o in opts {
                m.add_option(o);
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_emit_round_trip(m in arb_message()) {
        let bytes = m.to_bytes().expect("generated messages are encodable");
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let back = Message::parse(&bytes).expect("parse what we emitted");
        prop_assert_eq!(&back, &m);
        // And the bytes are stable: emit(parse(b)) == b.
        // the drivers' quick payload length agrees with a full parse
        prop_assert_eq!(qossim::proto::coap::codec::payload_len(&bytes), m.payload.len());
        prop_assert_eq!(back.to_bytes().expect("re-emit"), bytes);
    }

    /// The borrowed view of an emitted message shows its header, token,
    /// options (in order, as wire bytes) and payload.
    #[test]
    fn view_round_trip(m in arb_message()) {
        let bytes = m.to_bytes().expect("generated messages are encodable");
        let v = MessageRef::parse(&bytes).expect("parse what we emitted");
        prop_assert_eq!((v.ty, v.code, v.message_id, v.token), (m.ty, m.code, m.message_id, m.token));
        prop_assert_eq!(v.payload, &m.payload[..]);
        let got: Vec<(u16, Vec<u8>)> = v.options().map(|o| (o.number, o.value.to_vec())).collect();
        let want: Vec<(u16, Vec<u8>)> = m
            .options()
            .iter()
            .map(|o| (o.number().0, o.with_value(<[u8]>::to_vec)))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(r) = MessageRef::parse(&bytes) {
            // Everything a successful parse exposes is walkable and re-encodable.
            let n = r.options().count();
            let m = r.to_message();
            prop_assert_eq!(m.options().len(), n);
            let re = m.to_bytes();
            prop_assert!(re.is_ok() || m.code.is_empty());
        }
        let _ = Message::parse(&bytes);
        let _ = qossim::proto::coap::codec::payload_len(&bytes);
    }

    #[test]
    fn header_prefixed_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..64), tkl in 0u8..16) {
        // Valid version so the decoder gets past the header and into options.
        let mut bytes = vec![0x40 | tkl, 0x01, 0x00, 0x01];
        bytes.extend_from_slice(&tail);
        let _ = MessageRef::parse(&bytes).map(|r| r.options().count());
    }
}
