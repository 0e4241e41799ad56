//! MQTT over WebSocket (`qossim::transport::websocket`, issue 21 item 2):
//! SHA-1, base64 and the accept key against the RFCs' vectors; a client
//! and a server endpoint against each other (upgrade, byte stream through
//! any split, frame header sizes at the length boundaries, fragmentation,
//! ping, close, every protocol error with its close status); tshark
//! dissecting a capture of the layer's bytes as http → websocket → mqtt;
//! and real peers: paho-mqtt's WebSocket transport against our server,
//! our client through websockify to mosquitto.

mod common;

use common::peers::{
    free_port, lines, paho_available, peer_binary, start_mosquitto, KillOnDrop, LOCALHOST,
};
use proptest::prelude::*;
use qossim::proto::mqtt::codec::{decode, MAX_PACKET_SIZE};
use qossim::proto::mqtt::{
    ConnAck, Connect, ConnectReturnCode, Packet, PacketId, ProtocolLevel, Publish, QosPid,
    TopicName,
};
use qossim::transport::layer::{LayerError, StreamLayer};
use qossim::transport::websocket::digest::{accept_key, base64_decode, base64_encode, sha1};
use qossim::transport::websocket::frame::{apply_mask, parse_header};
use qossim::transport::websocket::{WsConfig, WsEndpoint, CLOSED};
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// SHA-1, base64, accept ----------------------------------------------------

/// RFC 3174 §7.3's four tests, the empty message, and messages around the
/// 55/56/64-byte padding boundaries (values from FIPS 180 SHA-1, e.g.
/// Python's hashlib).
#[test]
fn sha1_matches_rfc3174_vectors() {
    let cases: [(Vec<u8>, &str); 6] = [
        (b"abc".to_vec(), "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
        ),
        (
            vec![b'a'; 1_000_000],
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
        ),
        (
            b"0123456701234567012345670123456701234567012345670123456701234567".repeat(10),
            "dea356a2cddd90c7a7ecedc5ebb563934f460452",
        ),
        (Vec::new(), "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (vec![b'a'; 64], "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
    ];
    for (msg, want) in &cases {
        assert_eq!(hex(&sha1(msg)), *want, "SHA-1 of {} bytes", msg.len());
    }
    for (n, want) in [
        (55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
        (63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
    ] {
        assert_eq!(hex(&sha1(&vec![b'a'; n])), want, "SHA-1 of {n} × 'a'");
    }
}

/// RFC 4648 §10's vectors both ways; non-canonical or broken input is
/// refused.
#[test]
fn base64_matches_rfc4648_vectors() {
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(plain.as_bytes()), enc);
        assert_eq!(
            base64_decode(enc).as_deref(),
            Some(plain.as_bytes()),
            "{enc}"
        );
    }
    for bad in ["Zg=", "Zh==", "Z===", "Zm9v!A==", "Zg==Zg==", "Zm=v"] {
        assert_eq!(base64_decode(bad), None, "{bad:?} must not decode");
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
}

/// RFC 6455 §1.3's example key and accept value.
#[test]
fn accept_key_matches_rfc6455_example() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

// Endpoint pair ------------------------------------------------------------

/// A client and a server after the upgrade, with the request and answer
/// that passed between them.
struct Pair {
    c: WsEndpoint,
    s: WsEndpoint,
    request: Vec<u8>,
    response: Vec<u8>,
}

fn pair_with(cfg: WsConfig, seed: u64) -> Pair {
    let mut c = WsEndpoint::client(cfg.clone(), seed);
    let mut s = WsEndpoint::server(cfg);
    let (mut request, mut response, mut app) = (Vec::new(), Vec::new(), Vec::new());
    assert!(!c.ready() && !c.established());
    c.connected(&mut request);
    let mut nothing = Vec::new();
    s.connected(&mut nothing);
    assert!(nothing.is_empty(), "a server sends nothing first");
    s.input(&request, &mut response, &mut app)
        .expect("server accepts");
    assert!(s.ready() && s.established());
    let mut back = Vec::new();
    c.input(&response, &mut back, &mut app)
        .expect("client accepts");
    assert!(c.ready() && c.established());
    assert!(back.is_empty() && app.is_empty());
    Pair {
        c,
        s,
        request,
        response,
    }
}

fn pair() -> Pair {
    pair_with(WsConfig::default(), 7)
}

fn seal(e: &mut WsEndpoint, data: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    e.seal(data, &mut out, &mut spans);
    (out, spans)
}

/// Feed `wire` to `e` in one call: (result, out, app).
fn feed(e: &mut WsEndpoint, wire: &[u8]) -> (Result<(), LayerError>, Vec<u8>, Vec<u8>) {
    let (mut out, mut app) = (Vec::new(), Vec::new());
    let r = e.input(wire, &mut out, &mut app);
    (r, out, app)
}

/// The upgrade request is paho-mqtt's, byte for byte but the key; the
/// answer is websockify's minimal 101 with the right accept value.
#[test]
fn upgrade_request_and_answer_are_paho_and_websockify_shaped() {
    let p = pair();
    let req = String::from_utf8(p.request.clone()).expect("text");
    let key = p.c.key().to_string();
    assert_eq!(base64_decode(&key).map(|k| k.len()), Some(16));
    assert_eq!(
        req,
        format!(
            "GET /mqtt HTTP/1.1\r\nHost: 10.0.0.2\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nOrigin: http://10.0.0.2\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-Websocket-Version: 13\r\n\
             Sec-Websocket-Protocol: mqtt\r\n\r\n"
        )
    );
    assert_eq!(p.request.len(), 206);
    assert_eq!(
        String::from_utf8(p.response.clone()).expect("text"),
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\r\n",
            accept_key(&key)
        )
    );
    assert_eq!(p.response.len(), 159);
    // The key is the seed's: same seed, same key; another seed, another.
    assert_eq!(pair_with(WsConfig::default(), 7).c.key(), key);
    assert_ne!(pair_with(WsConfig::default(), 8).c.key(), key);
    // wss, extra headers both ways.
    let cfg = WsConfig {
        host: "broker.example".into(),
        secure: true,
        request_headers: vec![("User-Agent".into(), "probe".into())],
        response_headers: vec![("Server".into(), "qossim".into())],
        ..WsConfig::default()
    };
    let p = pair_with(cfg, 1);
    let req = String::from_utf8(p.request).expect("text");
    assert!(
        req.contains("\r\nOrigin: https://broker.example\r\n"),
        "{req}"
    );
    assert!(req.ends_with("mqtt\r\nUser-Agent: probe\r\n\r\n"), "{req}");
    let resp = String::from_utf8(p.response).expect("text");
    assert!(resp.ends_with("mqtt\r\nServer: qossim\r\n\r\n"), "{resp}");
}

/// Header sizes at the length boundaries, both directions, and the bytes
/// of the header: FIN binary, the mask bit, the length code; the client's
/// payload is masked with the key in its header (RFC 6455 §5.3) and the
/// span covers exactly the payload.
#[test]
fn frame_headers_are_2_4_10_plus_mask_at_the_boundaries() {
    let mut p = pair();
    for (len, ext, code) in [
        (0usize, 0usize, None),
        (1, 0, None),
        (125, 0, None),
        (126, 2, Some(126u8)),
        (65_535, 2, Some(126)),
        (65_536, 8, Some(127)),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        for (client, e) in [(true, &mut p.c), (false, &mut p.s)] {
            let (out, spans) = seal(e, &data);
            let hdr = 2 + ext + if client { 4 } else { 0 };
            assert_eq!(out.len(), hdr + len, "client={client} len={len}");
            if len > 0 {
                assert_eq!(spans, vec![(hdr, hdr + len)]);
            } else {
                assert!(spans.is_empty());
            }
            assert_eq!(out[0], 0x82, "FIN + binary");
            assert_eq!(out[1] & 0x80 != 0, client, "mask bit");
            assert_eq!(out[1] & 0x7F, code.unwrap_or(len as u8));
            let h = parse_header(&out).expect("valid").expect("complete");
            assert_eq!((h.header_len, h.payload_len), (hdr, len as u64));
            let mut payload = out[hdr..].to_vec();
            if client {
                let key = h.mask.expect("client masks");
                if len > 4 {
                    assert_ne!(payload, data, "masked payload differs");
                }
                apply_mask(&mut payload, key, 0);
            }
            assert_eq!(payload, data);
        }
    }
}

/// Each client frame gets a fresh masking key.
#[test]
fn masking_keys_change_per_frame() {
    let mut p = pair();
    let keys: Vec<_> = (0..8)
        .map(|_| {
            parse_header(&seal(&mut p.c, b"x").0)
                .expect("ok")
                .expect("full")
                .mask
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        assert!(k.is_some());
        assert!(!keys[i + 1..].contains(k), "key {k:?} repeated");
    }
}

fn chunked(
    e: &mut WsEndpoint,
    wire: &[u8],
    cuts: &[usize],
) -> Result<(Vec<u8>, Vec<u8>), LayerError> {
    let (mut out, mut app) = (Vec::new(), Vec::new());
    let mut rest = wire;
    let mut k = 0;
    while !rest.is_empty() {
        let n = cuts[k % cuts.len()].clamp(1, rest.len());
        k += 1;
        let (a, b) = rest.split_at(n);
        e.input(a, &mut out, &mut app)?;
        rest = b;
    }
    Ok((out, app))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Writes of any size sealed at either end arrive as the same byte
    /// stream at the other, through any split of the wire.
    #[test]
    fn byte_stream_survives_any_split(
        writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..12),
        big in prop::option::of(126usize..70_000),
        cuts in prop::collection::vec(1usize..300, 1..20),
        seed in any::<u64>(),
    ) {
        let mut p = pair_with(WsConfig::default(), seed);
        let mut writes = writes;
        if let Some(n) = big {
            writes.push(vec![0xA5; n]);
        }
        let want: Vec<u8> = writes.concat();
        for to_server in [true, false] {
            let (from, to) = if to_server { (&mut p.c, &mut p.s) } else { (&mut p.s, &mut p.c) };
            let mut wire = Vec::new();
            for w in &writes {
                let mut spans = Vec::new();
                from.seal(w, &mut wire, &mut spans);
            }
            let (out, app) = chunked(to, &wire, &cuts).expect("valid stream");
            prop_assert!(out.is_empty());
            prop_assert_eq!(&app, &want);
        }
    }

    /// Any bytes, before or after the upgrade, at either end: an error or
    /// not, never a panic; after an error the endpoint stays closed.
    #[test]
    fn garbage_never_panics(
        junk in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut fresh_server = WsEndpoint::server(WsConfig::default());
        let mut fresh_client = WsEndpoint::client(WsConfig::default(), 3);
        let mut out = Vec::new();
        fresh_client.connected(&mut out);
        let p = pair();
        for mut e in [fresh_server.clone(), fresh_client.clone(), p.c, p.s] {
            if chunked(&mut e, &junk, &cuts).is_err() {
                let (r, _, app) = feed(&mut e, b"\x82\x00");
                prop_assert_eq!(r, Err(LayerError::Refused(CLOSED)));
                prop_assert!(app.is_empty());
                prop_assert!(!e.ready());
            }
        }
        let mut with_head = b"GET /mqtt HTTP/1.1\r\n".to_vec();
        with_head.extend_from_slice(&junk);
        with_head.extend_from_slice(b"\r\n\r\n");
        let _ = feed(&mut fresh_server, &with_head);
        let mut answer = b"HTTP/1.1 101 x\r\n".to_vec();
        answer.extend_from_slice(&junk);
        answer.extend_from_slice(b"\r\n\r\n");
        let _ = feed(&mut fresh_client, &answer);
    }
}

/// The upgrade survives a byte-by-byte split, and frames that arrive in
/// the same input as the 101 are delivered.
#[test]
fn upgrade_byte_by_byte_and_frames_behind_the_answer() {
    let mut c = WsEndpoint::client(WsConfig::default(), 11);
    let mut s = WsEndpoint::server(WsConfig::default());
    let mut req = Vec::new();
    c.connected(&mut req);
    let (mut resp, mut app) = (Vec::new(), Vec::new());
    for b in &req {
        s.input(std::slice::from_ref(b), &mut resp, &mut app)
            .expect("byte");
    }
    assert!(s.established() && app.is_empty());
    let (frame, _) = seal(&mut s, b"\x20\x02\x00\x00");
    resp.extend_from_slice(&frame);
    let (r, out, app) = feed(&mut c, &resp);
    r.expect("answer and frame");
    assert!(out.is_empty());
    assert_eq!(app, b"\x20\x02\x00\x00");
}

/// A client frame as a test builds it: FIN flag, opcode, masked with a
/// fixed key.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut v = Vec::new();
    qossim::transport::websocket::frame::write_header(
        &mut v,
        fin,
        opcode,
        payload.len(),
        Some(key),
    );
    let start = v.len();
    v.extend_from_slice(payload);
    apply_mask(&mut v[start..], key, 0);
    v
}

fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    qossim::transport::websocket::frame::write_header(&mut v, fin, opcode, payload.len(), None);
    v.extend_from_slice(payload);
    v
}

/// One frame parsed from `out`, unmasked: (opcode, payload).
fn read_frame(out: &[u8]) -> (u8, Vec<u8>) {
    let h = parse_header(out).expect("valid").expect("complete");
    let mut payload = out[h.header_len..].to_vec();
    assert_eq!(payload.len() as u64, h.payload_len, "exactly one frame");
    if let Some(k) = h.mask {
        apply_mask(&mut payload, k, 0);
    }
    assert!(h.fin);
    (h.opcode, payload)
}

fn close_status(out: &[u8]) -> u16 {
    let (op, p) = read_frame(out);
    assert_eq!(op, 0x8, "a close frame");
    u16::from_be_bytes([p[0], p[1]])
}

/// A message fragmented over frames, with a ping between the fragments
/// (RFC 6455 §5.4 allows it), is delivered whole, and the ping is
/// answered with a pong carrying its payload — unmasked from the server,
/// masked from the client.
#[test]
fn fragments_reassemble_and_pings_get_pongs() {
    let mut p = pair();
    let mut wire = client_frame(false, 0x2, b"\x30\x05\x00\x01");
    wire.extend(client_frame(true, 0x9, b"hb"));
    wire.extend(client_frame(false, 0x0, b"tab"));
    wire.extend(client_frame(true, 0x0, b"\x30\x03\x00\x01u"));
    let (out, app) = chunked(&mut p.s, &wire, &[3, 1, 7]).expect("valid");
    assert_eq!(app, b"\x30\x05\x00\x01tab\x30\x03\x00\x01u");
    assert_eq!(out[1] & 0x80, 0, "server pong is unmasked");
    assert_eq!(read_frame(&out), (0xA, b"hb".to_vec()));
    let (r, out, app) = feed(&mut p.c, &server_frame(true, 0x9, b"ping!"));
    r.expect("ping");
    assert!(app.is_empty());
    assert_ne!(out[1] & 0x80, 0, "client pong is masked");
    assert_eq!(read_frame(&out), (0xA, b"ping!".to_vec()));
    // A pong is ignored.
    let (r, out, _) = feed(&mut p.c, &server_frame(true, 0xA, b""));
    assert!(r.is_ok() && out.is_empty());
}

/// close() sends status 1000; the peer answers with a close echoing it
/// and ends with Refused(CLOSED); the closing side ends the same way on
/// the answer, sending nothing more.
#[test]
fn close_handshake_both_ways() {
    let mut p = pair();
    let mut out = Vec::new();
    p.c.close(&mut out);
    assert!(!p.c.ready() && p.c.established());
    assert_eq!(close_status(&out), 1000);
    assert_ne!(out[1] & 0x80, 0, "client close is masked");
    let mut again = Vec::new();
    p.c.close(&mut again);
    assert!(again.is_empty(), "one close frame only");
    // Data the server sent before seeing the close still arrives.
    let (data, _) = seal(&mut p.s, b"late");
    let (r, _, app) = feed(&mut p.c, &data);
    assert!(r.is_ok());
    assert_eq!(app, b"late");
    let (r, reply, _) = feed(&mut p.s, &out);
    assert_eq!(r, Err(LayerError::Refused(CLOSED)));
    assert_eq!(close_status(&reply), 1000);
    let (r, nothing, _) = feed(&mut p.c, &reply);
    assert_eq!(r, Err(LayerError::Refused(CLOSED)));
    assert!(nothing.is_empty());
    // A close with no status is answered with one with no status.
    let mut p = pair();
    let (r, reply, _) = feed(&mut p.c, &server_frame(true, 0x8, b""));
    assert_eq!(r, Err(LayerError::Refused(CLOSED)));
    assert_eq!(read_frame(&reply), (0x8, Vec::new()));
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Malformed,
    Refused,
}

fn kind(r: &Result<(), LayerError>, what: &str) -> Kind {
    match r {
        Err(LayerError::Malformed(_)) => Kind::Malformed,
        Err(LayerError::Refused(_)) => Kind::Refused,
        Ok(()) => panic!("{what}: accepted"),
    }
}

/// Every protocol error gets its close status in `out` and a LayerError:
/// at the server (frames from a client) and at the client (from a
/// server). The endpoint is closed afterwards.
#[test]
fn protocol_errors_close_with_their_status() {
    let mut frag_then_binary = client_frame(false, 0x2, b"ab");
    frag_then_binary.extend(client_frame(true, 0x2, b"cd"));
    let mut big_ping = vec![0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4];
    big_ping.extend(vec![0; 126]);
    let at_server: Vec<(&str, Vec<u8>, u16, Kind)> = vec![
        (
            "unmasked frame",
            server_frame(true, 0x2, b"x"),
            1002,
            Kind::Malformed,
        ),
        (
            "RSV1 set",
            {
                let mut f = client_frame(true, 0x2, b"x");
                f[0] |= 0x40;
                f
            },
            1002,
            Kind::Malformed,
        ),
        (
            "opcode 0x3",
            client_frame(true, 0x3, b"x"),
            1002,
            Kind::Malformed,
        ),
        (
            "opcode 0xB",
            client_frame(true, 0xB, b"x"),
            1002,
            Kind::Malformed,
        ),
        (
            "fragmented ping",
            client_frame(false, 0x9, b"x"),
            1002,
            Kind::Malformed,
        ),
        ("ping over 125 bytes", big_ping, 1002, Kind::Malformed),
        (
            "lonely continuation",
            client_frame(true, 0x0, b"x"),
            1002,
            Kind::Malformed,
        ),
        (
            "message inside a message",
            frag_then_binary,
            1002,
            Kind::Malformed,
        ),
        (
            "text frame",
            client_frame(true, 0x1, b"x"),
            1003,
            Kind::Refused,
        ),
        (
            "16-bit length under 126",
            vec![0x82, 0x80 | 126, 0, 5, 0, 0, 0, 0],
            1002,
            Kind::Malformed,
        ),
        (
            "64-bit length, top bit",
            vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9],
            1002,
            Kind::Malformed,
        ),
        (
            "64-bit length under 65536",
            vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 1, 0, 9, 9, 9, 9],
            1002,
            Kind::Malformed,
        ),
        (
            "one-byte close",
            client_frame(true, 0x8, b"\x03"),
            1002,
            Kind::Malformed,
        ),
        (
            "close status 1005",
            client_frame(true, 0x8, &1005u16.to_be_bytes()),
            1002,
            Kind::Malformed,
        ),
        (
            "close status 999",
            client_frame(true, 0x8, &999u16.to_be_bytes()),
            1002,
            Kind::Malformed,
        ),
        (
            "close reason not UTF-8",
            client_frame(true, 0x8, b"\x03\xe8\xff\xfe"),
            1007,
            Kind::Malformed,
        ),
    ];
    assert_errors_close(false, at_server);
    let at_client: Vec<(&str, Vec<u8>, u16, Kind)> = vec![
        (
            "masked frame",
            client_frame(true, 0x2, b"x"),
            1002,
            Kind::Malformed,
        ),
        (
            "text frame",
            server_frame(true, 0x1, b"x"),
            1003,
            Kind::Refused,
        ),
        (
            "opcode 0x7",
            server_frame(true, 0x7, b""),
            1002,
            Kind::Malformed,
        ),
    ];
    assert_errors_close(true, at_client);
}

/// Each case fed to a fresh pair's client (`at_client`) or server: the
/// error kind, one close frame with the status (masked from a client,
/// not from a server) in `out`, and the endpoint closed afterwards.
fn assert_errors_close(at_client: bool, cases: Vec<(&str, Vec<u8>, u16, Kind)>) {
    for (what, wire, status, k) in cases {
        let mut p = pair();
        let e = if at_client { &mut p.c } else { &mut p.s };
        let (r, out, _) = feed(e, &wire);
        assert_eq!(kind(&r, what), k, "{what}: {r:?}");
        assert_eq!(out[1] & 0x80 != 0, at_client, "{what}: close masking");
        assert_eq!(close_status(&out), status, "{what}");
        assert!(!e.ready(), "{what}");
        let (r, out, app) = feed(e, b"\x82\x00");
        assert_eq!(r, Err(LayerError::Refused(CLOSED)), "{what}: stays closed");
        assert!(out.is_empty() && app.is_empty());
    }
}

/// Bad upgrades: the server answers 400/404/426 and gives an error; the
/// client refuses any answer but a correct 101.
#[test]
fn bad_upgrades_are_refused() {
    let mut c = WsEndpoint::client(WsConfig::default(), 5);
    let mut good = Vec::new();
    c.connected(&mut good);
    let good = String::from_utf8(good).expect("text");
    let cases: Vec<(&str, String, &str, Kind)> = vec![
        (
            "no mqtt offered",
            good.replace("Protocol: mqtt", "Protocol: binary"),
            "400",
            Kind::Refused,
        ),
        (
            "version 8",
            good.replace("Version: 13", "Version: 8"),
            "426",
            Kind::Refused,
        ),
        (
            "other path",
            good.replace("GET /mqtt", "GET /ws"),
            "404",
            Kind::Refused,
        ),
        ("POST", good.replace("GET", "POST"), "400", Kind::Malformed),
        (
            "no upgrade",
            good.replace("Upgrade: websocket", "Upgrade: h2c"),
            "400",
            Kind::Refused,
        ),
        (
            "short key",
            good.replace(c.key(), "c2hvcnQ="),
            "400",
            Kind::Malformed,
        ),
        (
            "not a header",
            good.replace("Upgrade: websocket\r\n", "Upgrade websocket\r\n"),
            "400",
            Kind::Malformed,
        ),
        (
            "binary junk",
            "\u{1}\u{2}\r\n\r\n".into(),
            "400",
            Kind::Malformed,
        ),
    ];
    for (what, req, status, k) in cases {
        let mut s = WsEndpoint::server(WsConfig::default());
        let (r, out, _) = feed(&mut s, req.as_bytes());
        assert_eq!(kind(&r, what), k, "{what}: {r:?}");
        let out = String::from_utf8(out).expect("text");
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {out}"
        );
        if status == "426" {
            assert!(out.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{out}");
        }
        assert!(!s.ready() && !s.established(), "{what}");
    }
    // An endless head.
    let mut s = WsEndpoint::server(WsConfig::default());
    let (r, _, _) = feed(&mut s, &vec![b'a'; 9000]);
    assert_eq!(kind(&r, "junk"), Kind::Malformed);

    let mut s = WsEndpoint::server(WsConfig::default());
    let (r, ok, _) = feed(&mut s, good.as_bytes());
    r.expect("good request");
    let ok = String::from_utf8(ok).expect("text");
    let answers: Vec<(&str, String)> = vec![
        (
            "400",
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".into(),
        ),
        (
            "wrong accept",
            ok.replace(
                &accept_key(c.key()),
                &accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            ),
        ),
        (
            "no protocol",
            ok.replace("Sec-WebSocket-Protocol: mqtt\r\n", ""),
        ),
        (
            "other protocol",
            ok.replace("Protocol: mqtt", "Protocol: binary"),
        ),
        ("no upgrade", ok.replace("Upgrade: websocket\r\n", "")),
    ];
    for (what, answer) in answers {
        let mut c = c.clone();
        let (r, out, _) = feed(&mut c, answer.as_bytes());
        assert_eq!(kind(&r, what), Kind::Refused, "{what}: {r:?}");
        assert!(out.is_empty() && !c.ready() && !c.established(), "{what}");
    }
    let mut c2 = c.clone();
    let (r, _, _) = feed(&mut c2, b"SSH-2.0-OpenSSH\r\n\r\n");
    assert_eq!(kind(&r, "junk"), Kind::Malformed);
}

// tshark -------------------------------------------------------------------

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn mqtt(p: &Packet) -> Vec<u8> {
    let mut v = Vec::new();
    p.encode(&mut v).expect("encode");
    v
}

fn publish(qos_pid: QosPid, topic: &str, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic: TopicName::new(topic).expect("topic"),
        payload: Arc::from(payload),
    })
}

fn connect() -> Packet {
    Packet::Connect(Connect {
        protocol: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 60,
        client_id: "ws-probe".into(),
        will: None,
        username: None,
        password: None,
    })
}

/// Wireshark 4.0 registers MQTT for no WebSocket subprotocol: the shipped
/// `scripts/wireshark/mqtt-ws.lua` hands frames of the `mqtt` subprotocol
/// to its MQTT dissector.
fn mqtt_over_ws_lua(_dir: &std::path::Path) -> String {
    let f = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/wireshark/mqtt-ws.lua");
    format!("lua_script:{}", f.display())
}

/// A TCP capture (port 80) of our upgrade, MQTT CONNECT/CONNACK, PUBLISH
/// with 7-, 16- and 64-bit frame lengths and PUBACK in our frames, and
/// the close handshake: tshark reads http → websocket → mqtt, client
/// frames masked and server frames not, the header lengths we claim, the
/// MQTT packets we sent, nothing malformed.
#[test]
fn tshark_dissects_http_websocket_mqtt() {
    let test = "tshark_dissects_http_websocket_mqtt";
    if !common::tshark::available(test) {
        return;
    }
    let mut p = pair();
    let packets: Vec<(bool, Packet)> = vec![
        (true, connect()),
        (
            false,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            }),
        ),
        (true, publish(QosPid::AtLeastOnce(pid(1)), "s/t", b"21.5")),
        (
            false,
            Packet::PubAck(qossim::proto::mqtt::Ack { pid: pid(1) }),
        ),
        (true, publish(QosPid::AtMostOnce, "s/big", &[b'y'; 200])),
        (true, publish(QosPid::AtMostOnce, "s/huge", &[b'z'; 70_000])),
    ];
    let mut writes = vec![(true, p.request.clone()), (false, p.response.clone())];
    let mut want_headers = Vec::new();
    for (from_client, pkt) in &packets {
        let bytes = mqtt(pkt);
        let e = if *from_client { &mut p.c } else { &mut p.s };
        let (frame, spans) = seal(e, &bytes);
        want_headers.push((u8::from(*from_client).to_string(), spans[0].0));
        writes.push((*from_client, frame));
    }
    let mut close = Vec::new();
    p.c.close(&mut close);
    let (r, reply, _) = feed(&mut p.s, &close);
    assert_eq!(r, Err(LayerError::Refused(CLOSED)));
    writes.push((true, close));
    writes.push((false, reply));
    let file = common::tshark::tcp_capture("ws-tshark", 80, &writes);
    let lua = mqtt_over_ws_lua(file.parent().expect("dir"));
    let opts = ["-X", lua.as_str()];
    common::tshark::assert_clean(&file, &opts, None);
    let http = common::tshark::field_rows(
        &file,
        &[&opts[..], &["-Y", "http"]].concat(),
        &["http.request.method", "http.response.code", "http.upgrade"],
    );
    assert_eq!(
        http,
        vec![
            vec!["GET".to_string(), String::new(), "websocket".into()],
            vec![String::new(), "101".into(), "websocket".into()],
        ]
    );
    let ws = common::tshark::field_rows(
        &file,
        &[&opts[..], &["-Y", "websocket"]].concat(),
        &[
            "websocket.mask",
            "websocket.opcode",
            "mqtt.msgtype",
            "frame.len",
            "tcp.len",
        ],
    );
    let rows: Vec<(String, String, String)> = ws
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    let t = |m: &str, o: &str, q: &str| (m.to_string(), o.to_string(), q.to_string());
    assert_eq!(
        rows,
        vec![
            t("1", "2", "1"),
            t("0", "2", "2"),
            t("1", "2", "3"),
            t("0", "2", "4"),
            t("1", "2", "3"),
            t("1", "2", "3"),
            t("1", "8", ""),
            t("0", "8", ""),
        ],
        "mask, opcode, MQTT type per WebSocket frame"
    );
    // Frames that fit one segment: the segment is header + MQTT packet.
    for (i, (_, pkt)) in packets.iter().take(5).enumerate() {
        let tcp_len: usize = ws[i][4].parse().expect("tcp.len");
        assert_eq!(tcp_len, want_headers[i].1 + mqtt(pkt).len(), "frame {i}");
    }
    assert_eq!(
        want_headers.iter().map(|h| h.1).collect::<Vec<_>>(),
        [6, 2, 6, 2, 8, 14]
    );
}

// Real peers ---------------------------------------------------------------

fn read_some(s: &mut TcpStream, buf: &mut [u8], what: &str) -> usize {
    match s.read(buf) {
        Ok(0) => panic!("{what}: peer closed the connection"),
        Ok(n) => n,
        Err(e) => panic!("{what}: read: {e}"),
    }
}

/// Drive `e` over `s` until `done(app)` or the peer's close; returns the
/// application bytes and every byte the peer sent.
fn pump(
    s: &mut TcpStream,
    e: &mut WsEndpoint,
    app: &mut Vec<u8>,
    raw: &mut Vec<u8>,
    what: &str,
    done: impl Fn(&WsEndpoint, &[u8]) -> bool,
) -> Result<(), LayerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 1 << 16];
    while !done(e, app) {
        assert!(Instant::now() < deadline, "{what}: nothing in 10 s");
        let n = read_some(s, &mut buf, what);
        raw.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let r = e.input(&buf[..n], &mut out, app);
        s.write_all(&out).expect("write");
        r?;
    }
    Ok(())
}

/// The headers of the whole frames in `raw`, a byte stream of frames.
fn frame_headers(raw: &[u8]) -> Vec<qossim::transport::websocket::frame::FrameHeader> {
    let mut v = Vec::new();
    let mut rest = raw;
    while let Ok(Some(h)) = parse_header(rest) {
        let end = h.header_len + h.payload_len as usize;
        if end > rest.len() {
            break;
        }
        v.push(h);
        rest = &rest[end..];
    }
    v
}

/// MQTT packets in `bytes`, decoded with the crate's codec.
fn packets(bytes: &[u8]) -> Vec<Packet> {
    let mut v = Vec::new();
    let mut rest = bytes;
    while let Some((p, n)) = decode(rest, MAX_PACKET_SIZE).expect("valid MQTT") {
        v.push(p);
        rest = &rest[n..];
    }
    v
}

/// paho-mqtt 2.x with `transport="websockets"` connects to our server
/// endpoint over a real socket: our server accepts paho's upgrade, paho
/// accepts our 101 (its accept check passes), the crate's MQTT codec reads
/// CONNECT, PUBLISH and DISCONNECT from paho's masked frames, and paho
/// sees our CONNACK. Paho's request is byte for byte what our client sends
/// for the same Host, but the key.
#[test]
fn paho_websocket_client_against_our_server() {
    if !paho_available() {
        return;
    }
    let listener = TcpListener::bind((LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/paho_ws_probe.py");
    let mut child = KillOnDrop(
        Command::new("python3")
            .arg(&script)
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let rx = lines(child.0.stdout.take().expect("stdout"));
    let (mut s, _) = listener.accept().expect("paho connects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut server = WsEndpoint::server(WsConfig::default());
    let (mut app, mut raw) = (Vec::new(), Vec::new());
    pump(
        &mut s,
        &mut server,
        &mut app,
        &mut raw,
        "upgrade",
        |e, _| e.established(),
    )
    .expect("paho's upgrade request is accepted");
    let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let paho_request = String::from_utf8(raw[..head_len].to_vec()).expect("text");
    // Our client's request for the same Host, with paho's key.
    let cfg = WsConfig {
        host: format!("127.0.0.1:{port}"),
        ..WsConfig::default()
    };
    let mut ours = WsEndpoint::client(cfg, 1);
    let mut req = Vec::new();
    ours.connected(&mut req);
    let paho_key = paho_request
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("paho key")
        .to_string();
    let ours_as_paho = String::from_utf8(req)
        .expect("text")
        .replace(ours.key(), &paho_key);
    assert_eq!(paho_request, ours_as_paho, "request bytes");
    eprintln!("paho upgrade request: {} bytes", paho_request.len());

    let got = |_: &WsEndpoint, a: &[u8]| !packets(a).is_empty();
    raw.clear();
    pump(&mut s, &mut server, &mut app, &mut raw, "CONNECT", got).expect("CONNECT");
    let connect_raw = std::mem::take(&mut raw);
    assert!(matches!(packets(&app)[..], [Packet::Connect(_)]), "{app:?}");
    let connect_len = app.len();
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    server.seal(
        &mqtt(&Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        })),
        &mut out,
        &mut spans,
    );
    s.write_all(&out).expect("CONNACK");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => break l,
            Err(_) => assert!(Instant::now() < deadline, "paho printed nothing"),
        }
    };
    assert!(line.starts_with("CONNECTED rc=Success"), "{line}");
    // paho masks its frames: 2 + 4 header bytes for a short CONNECT.
    let hs = frame_headers(&connect_raw);
    assert_eq!(hs.len(), 1, "{hs:?}");
    assert!(hs[0].mask.is_some() && hs[0].header_len == 6, "{hs:?}");
    assert_eq!(hs[0].payload_len, connect_len as u64);
    let r = pump(
        &mut s,
        &mut server,
        &mut app,
        &mut raw,
        "PUBLISH",
        |_, a| packets(a).len() >= 3,
    );
    r.expect("PUBLISH and DISCONNECT");
    let ps = packets(&app);
    assert!(
        matches!(&ps[..], [Packet::Connect(_), Packet::Publish(p), Packet::Disconnect] if &p.payload[..] == b"hello"),
        "{ps:?}"
    );
    let st = child.0.wait().expect("wait");
    assert!(st.success(), "paho script failed");
}

/// The interpreter websockify's console script runs under (its `#!`
/// line): Debian's websockify is a module of the system python3.
fn websockify_python(bin: &std::path::Path) -> String {
    let text = std::fs::read_to_string(bin).expect("read websockify");
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("#!")
        .map(|s| s.trim().split(' ').next().unwrap_or("python3").to_string())
        .unwrap_or_else(|| "python3".into())
}

/// Our client endpoint through websockify (a real RFC 6455 server) to
/// mosquitto over real sockets: websockify accepts our upgrade and its 101
/// is byte for byte what our server sends but the accept value;
/// mosquitto answers our CONNECT and a QoS 1 PUBLISH carried in our
/// masked frames; our close gets websockify's close back.
#[test]
fn our_client_through_websockify_to_mosquitto() {
    let Some(mosq) = peer_binary("mosquitto", "install Debian package mosquitto") else {
        return;
    };
    let Some(wsf) = peer_binary("websockify", "install Debian package websockify") else {
        return;
    };
    let broker = start_mosquitto(&mosq);
    let port = free_port();
    let shim =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/websockify_mqtt.py");
    let _proxy = KillOnDrop(
        Command::new(websockify_python(&wsf))
            .arg(&shim)
            .args([port.to_string(), broker.addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn websockify"),
    );
    let addr = SocketAddrV4::new(LOCALHOST, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::peers::listening(addr) {
        assert!(
            Instant::now() < deadline,
            "websockify did not listen in 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let cfg = WsConfig {
        host: format!("127.0.0.1:{port}"),
        ..WsConfig::default()
    };
    let mut c = WsEndpoint::client(cfg.clone(), 42);
    let mut req = Vec::new();
    c.connected(&mut req);
    s.write_all(&req).expect("request");
    let (mut app, mut raw) = (Vec::new(), Vec::new());
    pump(&mut s, &mut c, &mut app, &mut raw, "101", |e, _| {
        e.established()
    })
    .expect("websockify accepts our upgrade");
    // Our server's answer to the same request.
    let mut ours = WsEndpoint::server(cfg);
    let (r, answer, _) = feed(&mut ours, &req);
    r.expect("our server accepts our request");
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert_eq!(
        String::from_utf8_lossy(&raw[..head]),
        String::from_utf8_lossy(&answer),
        "websockify's 101 vs ours"
    );
    eprintln!("websockify 101: {head} bytes");
    let mut send = |c: &mut WsEndpoint, p: &Packet| {
        let (mut out, mut spans) = (Vec::new(), Vec::new());
        c.seal(&mqtt(p), &mut out, &mut spans);
        s.write_all(&out).expect("write");
    };
    send(&mut c, &connect());
    send(&mut c, &publish(QosPid::AtLeastOnce(pid(7)), "ws/t", b"hi"));
    raw.clear();
    pump(
        &mut s,
        &mut c,
        &mut app,
        &mut raw,
        "CONNACK+PUBACK",
        |_, a| packets(a).len() >= 2,
    )
    .expect("mosquitto answers");
    let ps = packets(&app);
    assert!(
        matches!(
            &ps[..],
            [
                Packet::ConnAck(ConnAck {
                    code: ConnectReturnCode::Accepted,
                    ..
                }),
                Packet::PubAck(a)
            ] if a.pid == pid(7)
        ),
        "{ps:?}"
    );
    // websockify's frames are unmasked with 2-byte headers.
    let hs = frame_headers(&raw);
    assert!(
        hs.iter().all(|h| h.mask.is_none() && h.header_len == 2),
        "{hs:?}"
    );
    eprintln!("websockify frames for CONNACK + PUBACK: {}", hs.len());
    let mut close = Vec::new();
    c.close(&mut close);
    s.write_all(&close).expect("close");
    let r = pump(&mut s, &mut c, &mut app, &mut raw, "close", |_, _| false);
    assert_eq!(r, Err(LayerError::Refused(CLOSED)));
}
