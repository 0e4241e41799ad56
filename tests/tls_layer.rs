//! The TLS overlay (`qossim::transport::tls`, issue 21): handshakes of
//! every mode between a client and a server endpoint, round trips before
//! the first application byte, record overhead read back by tshark,
//! flights tshark dissects cleanly, flight sizes against OpenSSL 3
//! captures, and malformed input.

mod common;

use common::tls_pair::{feed, handshake, Lcg};
use proptest::prelude::*;
use qossim::transport::layer::{LayerError, StreamLayer};
use qossim::transport::tls::{
    CipherSuite, KeyType, Resumption, TlsConfig, TlsEndpoint, TlsVersion,
};

/// Every valid (version, resumption, mutual, key, suite) configuration.
fn all_modes() -> Vec<TlsConfig> {
    let mut v = Vec::new();
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        for resumption in [Resumption::None, Resumption::Resume, Resumption::ZeroRtt] {
            for mutual in [false, true] {
                for key in [KeyType::EcdsaP256, KeyType::Rsa2048] {
                    for suite in [
                        CipherSuite::Aes128Gcm,
                        CipherSuite::Aes256Gcm,
                        CipherSuite::Aes128CbcSha256,
                    ] {
                        let cfg = TlsConfig {
                            version,
                            suite,
                            resumption,
                            mutual,
                            key,
                            server_chain: chain(key, true),
                            client_chain: chain(key, false),
                            ..TlsConfig::default()
                        };
                        if cfg.validate().is_ok() {
                            v.push(cfg);
                        }
                    }
                }
            }
        }
    }
    v
}

/// The fixtures' own sizes (leaf, intermediate).
fn chain(key: KeyType, server: bool) -> Vec<usize> {
    match (key, server) {
        (KeyType::EcdsaP256, true) => vec![476, 431],
        (KeyType::EcdsaP256, false) => vec![475, 431],
        (KeyType::Rsa2048, _) => vec![873, 830],
    }
}

fn expected_round_trips(cfg: &TlsConfig) -> usize {
    match (cfg.version, cfg.resumption) {
        (TlsVersion::Tls12, Resumption::None) => 2,
        (_, Resumption::ZeroRtt) => 0,
        _ => 1,
    }
}

/// Seal `writes` on `from` and deliver the bytes to `to` in random
/// pieces; returns the bytes on the wire.
fn send(
    from: &mut TlsEndpoint,
    to: &mut TlsEndpoint,
    writes: &[Vec<u8>],
    rng: &mut Lcg,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for w in writes {
        from.seal(w, &mut out, &mut spans);
    }
    let carried: Vec<u8> = spans
        .iter()
        .flat_map(|&(a, b)| out[a..b].to_vec())
        .collect();
    assert_eq!(carried, writes.concat(), "spans point at the plaintext");
    let (back, app) = feed(to, &out, rng).expect("data input");
    assert!(back.is_empty());
    assert_eq!(app, writes.concat(), "application bytes arrive unchanged");
    out
}

#[test]
fn every_mode_completes_with_its_round_trips_and_carries_data() {
    let modes = all_modes();
    // TLS 1.2: 2 resumptions × 2 × 2 keys × 3 suites; TLS 1.3: 3 × 2 × 2 × 2.
    assert_eq!(modes.len(), 48, "modes enumerated");
    for (i, cfg) in modes.iter().enumerate() {
        let mut run = handshake(cfg, i as u64 + 7);
        assert!(run.client.established(), "{cfg:?}: client established");
        assert!(run.server.established(), "{cfg:?}: server established");
        assert!(run.client.handshake_done() && run.server.handshake_done());
        assert_eq!(
            run.round_trips,
            expected_round_trips(cfg),
            "{cfg:?}: round trips before the first application byte"
        );
        let flights = run.wire.len();
        let expect_flights = match (cfg.version, cfg.resumption) {
            (TlsVersion::Tls12, Resumption::None) => 4,
            (TlsVersion::Tls12, _) => 3,
            (TlsVersion::Tls13, _) => 4,
        };
        assert_eq!(flights, expect_flights, "{cfg:?}: flights {:?}", run.wire);
        let sent: usize = run.wire.iter().filter(|w| w.0).map(|w| w.1.len()).sum();
        assert_eq!(run.client.handshake_bytes(), sent);
        let mut rng = Lcg(i as u64);
        let writes = vec![
            vec![0x30, 0x02, 0, 0],
            (0..1000).map(|x| x as u8).collect(),
            vec![7; 40_000],
        ];
        send(&mut run.client, &mut run.server, &writes, &mut rng);
        send(&mut run.server, &mut run.client, &writes, &mut rng);
        // close_notify reaches the peer as a graceful close.
        let mut bye = Vec::new();
        run.client.close(&mut bye);
        let r = run.server.input(&bye, &mut Vec::new(), &mut Vec::new());
        assert_eq!(r, Err(LayerError::Refused("close_notify")));
        assert!(run.server.peer_closed());
    }
}

/// 0-RTT: the client writes before the server's first flight, and the
/// server hands those bytes up on reading the client's first flight.
#[test]
fn zero_rtt_early_data_reaches_the_server_before_the_handshake_ends() {
    let cfg = TlsConfig {
        resumption: Resumption::ZeroRtt,
        ..TlsConfig::default()
    };
    let mut c = TlsEndpoint::client(cfg.clone()).unwrap();
    let mut s = TlsEndpoint::server(cfg).unwrap();
    let mut first = Vec::new();
    assert!(!c.ready(), "nothing may be sealed before the ClientHello");
    c.connected(&mut first);
    assert!(c.ready() && !c.established());
    let mut spans = Vec::new();
    c.seal(b"CONNECT", &mut first, &mut spans);
    let (mut back, mut app) = (Vec::new(), Vec::new());
    s.input(&first, &mut back, &mut app).unwrap();
    assert_eq!(app, b"CONNECT");
    assert!(!s.established());
    let mut fin = Vec::new();
    c.input(&back, &mut fin, &mut Vec::new()).unwrap();
    assert!(c.established());
    let mut tickets = Vec::new();
    s.input(&fin, &mut tickets, &mut Vec::new()).unwrap();
    assert!(s.established());
    // A server not configured for 0-RTT refuses the same early record.
    let plain = TlsConfig::default();
    let mut c0 = TlsEndpoint::client(TlsConfig {
        resumption: Resumption::ZeroRtt,
        ..plain.clone()
    })
    .unwrap();
    c0.connected(&mut Vec::new());
    let mut early = Vec::new();
    c0.seal(b"early", &mut early, &mut Vec::new());
    let mut c2 = TlsEndpoint::client(plain.clone()).unwrap();
    let mut s2 = TlsEndpoint::server(plain).unwrap();
    let mut o = Vec::new();
    c2.connected(&mut o);
    let mut queued = Vec::new();
    c2.seal(b"early", &mut queued, &mut Vec::new());
    assert!(
        queued.is_empty(),
        "a write before ready() is queued, not sent"
    );
    s2.input(&o, &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(
        s2.input(&early, &mut Vec::new(), &mut Vec::new()),
        Err(LayerError::Refused("application data before the handshake"))
    );
}

/// A write queued before the handshake completes goes out right after the
/// client's Finished.
#[test]
fn a_write_before_ready_is_sent_when_the_handshake_completes() {
    let cfg = TlsConfig {
        version: TlsVersion::Tls12,
        ..TlsConfig::default()
    };
    let mut c = TlsEndpoint::client(cfg.clone()).unwrap();
    let mut s = TlsEndpoint::server(cfg).unwrap();
    let mut o = Vec::new();
    c.connected(&mut o);
    c.seal(b"queued", &mut Vec::new(), &mut Vec::new());
    let mut rng = Lcg(3);
    let (b, _) = feed(&mut s, &o, &mut rng).unwrap();
    let (b, _) = feed(&mut c, &b, &mut rng).unwrap();
    let (b, _) = feed(&mut s, &b, &mut rng).unwrap();
    let (b, app) = feed(&mut c, &b, &mut rng).unwrap();
    assert!(app.is_empty() && c.ready());
    let (_, app) = feed(&mut s, &b, &mut rng).unwrap();
    assert_eq!(app, b"queued");
}

/// Bytes of each flight, alternately client and server.
fn flight_sizes(cfg: &TlsConfig) -> Vec<usize> {
    handshake(cfg, 1).wire.iter().map(|w| w.1.len()).collect()
}

/// Flight sizes equal those paho-mqtt 2.2 (Python 3.11 `ssl`, OpenSSL
/// 3.0.19) and mosquitto 2.0.11 exchanged on loopback
/// (`scripts/security-calibrate.py --quick`, docs/security.md
/// "Calibration") with the script's chains: ECDSA server leaf 540 bytes,
/// RSA leaf 744, ECDSA client leaf 495, intermediate 488, and the server
/// name `broker.calib.test`. `tests/security_calibration.rs` checks the
/// same against a fresh capture when the peers are installed; this keeps
/// the numbers without them. ECDSA signatures are 70 to 72 bytes (the
/// model sends 71): where the capture's was 72 or 70 its flight was one
/// byte longer or shorter (noted).
#[test]
fn flights_match_paho_and_mosquitto_captures() {
    let sni = Some("broker.calib.test".to_string());
    let ec = |version, resumption, mutual| TlsConfig {
        version,
        resumption,
        mutual,
        key: KeyType::EcdsaP256,
        server_chain: vec![540, 488],
        client_chain: vec![495, 488],
        sni: sni.clone(),
        ..TlsConfig::default()
    };
    let rsa = |version| TlsConfig {
        version,
        key: KeyType::Rsa2048,
        server_chain: vec![744, 488],
        sni: sni.clone(),
        ..TlsConfig::default()
    };
    use Resumption::{None as Full, Resume};
    use TlsVersion::{Tls12, Tls13};
    let cbc = TlsConfig {
        suite: CipherSuite::Aes128CbcSha256,
        ..ec(Tls12, Full, false)
    };
    let cases: Vec<(TlsConfig, Vec<usize>)> = vec![
        (ec(Tls13, Full, false), vec![251, 1405 - 1, 80, 542]),
        (ec(Tls13, Resume, false), vec![538, 241, 80, 271]),
        (ec(Tls13, Full, true), vec![251, 1472 - 1, 1204, 1534]),
        (ec(Tls12, Full, false), vec![188, 1245, 93, 242]),
        (ec(Tls12, Resume, false), vec![517, 141, 51]),
        (ec(Tls12, Full, true), vec![188, 1301 + 1, 1178, 754]),
        (cbc, vec![162, 1248 + 1, 133, 282]),
        (rsa(Tls13), vec![251, 1793, 80, 542]),
        (rsa(Tls12), vec![188, 1634, 93, 242]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(cfg, want)| {
            let got = flight_sizes(cfg);
            (got != *want).then(|| format!("{cfg:?}: model {got:?}, capture {want:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// OpenSSL pads a ClientHello whose message would be 256 to 511 bytes to
/// 512 (RFC 7685; Python's `ssl` turns it on): the padding extension is
/// 512 − length − 4 bytes, at least 1. A TLS 1.3 ClientHello without SNI is
/// a 220-byte message; a server name adds 9 + its length, so 26 characters
/// leave it at 255 (no padding) and 27 push it to 256 (padded: a 517-byte
/// record). Resumption hellos count the pre_shared_key that follows the
/// padding.
#[test]
fn client_hello_padding_follows_rfc_7685() {
    use qossim::transport::tls::client_hello_padding;
    assert_eq!(client_hello_padding(255), None);
    assert_eq!(client_hello_padding(256), Some(252));
    assert_eq!(client_hello_padding(391), Some(117));
    assert_eq!(client_hello_padding(508), Some(1));
    assert_eq!(client_hello_padding(511), Some(1));
    assert_eq!(client_hello_padding(512), None);
    let hello = |sni: Option<&str>, version, resumption| {
        flight_sizes(&TlsConfig {
            version,
            resumption,
            sni: sni.map(String::from),
            ..TlsConfig::default()
        })[0]
    };
    use TlsVersion::{Tls12, Tls13};
    assert_eq!(hello(None, Tls13, Resumption::None), 225);
    assert_eq!(hello(Some(&"a".repeat(26)), Tls13, Resumption::None), 260);
    assert_eq!(hello(Some(&"a".repeat(27)), Tls13, Resumption::None), 517);
    assert_eq!(hello(Some(&"a".repeat(200)), Tls13, Resumption::None), 517);
    assert_eq!(hello(Some(&"a".repeat(253)), Tls13, Resumption::None), 517);
    // TLS 1.2: 162 without SNI; 32-byte session ID and the ticket take it
    // over 256.
    assert_eq!(hello(None, Tls12, Resumption::None), 162);
    assert_eq!(hello(None, Tls12, Resumption::Resume), 517);
    // TLS 1.3 resumption: 220 + 15 + 224 (ticket) + 48 (binder) = 507,
    // padded; with the calibration's server name (+26) it is 533, not
    // padded (538-byte record, flights_match_paho_and_mosquitto_captures).
    assert_eq!(hello(None, Tls13, Resumption::Resume), 517);
}

/// Record overhead read back by tshark (`tls.record.length`) from a
/// capture of the records: 22 for TLS 1.3 AES-GCM, 29 for TLS 1.2 AES-GCM,
/// 16 (IV) + 32 (MAC) + padding to a 16-byte block for AES-CBC-SHA256.
#[test]
fn record_overhead_measured_by_tshark() {
    if !common::tshark::available("record_overhead_measured_by_tshark") {
        return;
    }
    // AEAD suites: a fixed overhead `o` per record.
    let aead = |v, s, o: usize| (v, s, [1 + o, 100 + o, 1000 + o]);
    let cases = [
        aead(TlsVersion::Tls13, CipherSuite::Aes128Gcm, 22),
        aead(TlsVersion::Tls13, CipherSuite::Aes256Gcm, 22),
        aead(TlsVersion::Tls12, CipherSuite::Aes128Gcm, 29),
        aead(TlsVersion::Tls12, CipherSuite::Aes256Gcm, 29),
        // 5 + 16 + n + 32 + padding: 1+32 → 15 bytes of padding, 100+32 →
        // 12, 1000+32 → 8.
        (
            TlsVersion::Tls12,
            CipherSuite::Aes128CbcSha256,
            [69, 165, 1061],
        ),
    ];
    for (version, suite, want) in cases {
        let cfg = TlsConfig {
            version,
            suite,
            ..TlsConfig::default()
        };
        let mut run = handshake(&cfg, 5);
        let mut wire = run.wire.clone();
        for (k, n) in [1usize, 100, 1000].into_iter().enumerate() {
            let mut out = Vec::new();
            let mut spans = Vec::new();
            run.client.seal(&vec![0x42; n], &mut out, &mut spans);
            assert_eq!(out.len(), want[k], "{cfg:?}: {n}-byte write");
            assert_eq!(cfg.record_len(n), want[k]);
            assert_eq!(spans.len(), 1);
            assert_eq!(spans[0].1 - spans[0].0, n);
            wire.push((true, out));
        }
        let file = common::tshark::tcp_capture("tls-overhead", 8883, &wire);
        let opts = ["-d", "tcp.port==8883,tls"];
        common::tshark::assert_clean(&file, &opts, None);
        let rows = common::tshark::field_rows(&file, &opts, &["tls.record.length"]);
        let last: Vec<usize> = rows[rows.len() - 3..]
            .iter()
            .map(|r| r[0].parse().expect("one record per write"))
            .collect();
        let want_len: Vec<usize> = want.iter().map(|w| w - 5).collect();
        assert_eq!(last, want_len, "{cfg:?}: tls.record.length");
    }
}

/// Every flight of every mode, data both ways and close_notify both ways,
/// dissected by tshark as TLS with no malformed packet or warning; TLS 1.2
/// Certificate messages list the configured certificates, resized ones
/// included.
#[test]
fn every_flight_dissects_cleanly_and_shows_the_chain() {
    if !common::tshark::available("every_flight_dissects_cleanly_and_shows_the_chain") {
        return;
    }
    let mut modes = all_modes();
    // Resized certificates: longer, shorter, and a three-certificate chain.
    for key in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
            modes.push(TlsConfig {
                version,
                key,
                mutual: true,
                server_chain: vec![1500, 200_usize.max(chain(key, true)[1] - 30), 3000],
                client_chain: vec![chain(key, false)[0] + 1, 2222],
                sni: Some("broker.example.org".into()),
                ..TlsConfig::default()
            });
        }
    }
    // An RSA leaf under an ECDSA intermediate (the calibration's chain):
    // smaller than the RSA fixtures reach, built from the ECDSA ones.
    modes.push(TlsConfig {
        version: TlsVersion::Tls12,
        key: KeyType::Rsa2048,
        server_chain: vec![744, 488],
        ..TlsConfig::default()
    });
    let opts = ["-d", "tcp.port==8883,tls"];
    for (i, cfg) in modes.iter().enumerate() {
        let mut run = handshake(cfg, i as u64);
        let mut wire = run.wire.clone();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        run.client.seal(
            b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c",
            &mut a,
            &mut Vec::new(),
        );
        run.server
            .seal(b"\x20\x02\x00\x00", &mut b, &mut Vec::new());
        wire.push((true, a));
        wire.push((false, b));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        run.client.close(&mut a);
        run.server.close(&mut b);
        wire.push((true, a));
        wire.push((false, b));
        let file = common::tshark::tcp_capture("tls-flights", 8883, &wire);
        // a segment with data is TLS, or part of a TLS record tshark
        // reassembles in a later segment (writes go in 1460-byte segments)
        // (two passes: tshark fills `tcp.reassembled_in` in the second)
        let two_pass = [opts[0], opts[1], "-2"];
        common::tshark::assert_clean(
            &file,
            &two_pass,
            Some("!tls && tcp.len > 0 && !tcp.reassembled_in"),
        );
        let rows = common::tshark::field_rows(
            &file,
            &["-d", "tcp.port==8883,tls", "-Y", "tls.handshake.type == 11"],
            &["tls.handshake.certificate_length"],
        );
        if cfg.version == TlsVersion::Tls12 && cfg.resumption == Resumption::None {
            let mut want = vec![join(&cfg.server_chain)];
            if cfg.mutual {
                want.push(join(&cfg.client_chain));
            }
            let got: Vec<String> = rows.into_iter().map(|r| r[0].clone()).collect();
            assert_eq!(got, want, "{cfg:?}: certificate lengths");
        } else {
            assert!(rows.is_empty(), "{cfg:?}: no Certificate in the clear");
        }
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Configurations that cannot run are refused with a reason.
#[test]
fn invalid_configurations_are_refused() {
    let bad = [
        TlsConfig {
            version: TlsVersion::Tls12,
            resumption: Resumption::ZeroRtt,
            ..TlsConfig::default()
        },
        TlsConfig {
            suite: CipherSuite::Aes128CbcSha256,
            ..TlsConfig::default()
        },
        TlsConfig {
            server_chain: vec![],
            ..TlsConfig::default()
        },
        TlsConfig {
            server_chain: vec![100],
            ..TlsConfig::default()
        },
        TlsConfig {
            server_chain: vec![1_000_000],
            ..TlsConfig::default()
        },
        TlsConfig {
            mutual: true,
            client_chain: vec![],
            ..TlsConfig::default()
        },
        TlsConfig {
            sni: Some(String::new()),
            ..TlsConfig::default()
        },
    ];
    for cfg in bad {
        assert!(cfg.validate().is_err(), "{cfg:?}");
        assert!(TlsEndpoint::client(cfg.clone()).is_err());
        assert!(TlsEndpoint::server(cfg).is_err());
    }
    assert!(TlsConfig::default().validate().is_ok());
}

/// Bad records give a `LayerError` and a fatal alert; an incomplete one
/// waits for the rest; nothing after a failure is accepted.
#[test]
fn malformed_input_is_refused_with_an_alert() {
    let server = || TlsEndpoint::server(TlsConfig::default()).unwrap();
    let cases: [(&[u8], LayerError); 6] = [
        (
            &[24, 3, 3, 0, 1, 0],
            LayerError::Malformed("record content type"),
        ),
        (
            &[22, 2, 0, 0, 1, 0],
            LayerError::Malformed("record version"),
        ),
        (
            &[22, 3, 1, 0x40, 1],
            LayerError::Malformed("record longer than allowed"),
        ),
        (&[22, 3, 1, 0, 0], LayerError::Malformed("empty record")),
        // A ServerHello sent to a server.
        (
            &[22, 3, 3, 0, 4, 2, 0, 0, 0],
            LayerError::Refused("unexpected handshake message"),
        ),
        (
            &[
                23, 3, 3, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            LayerError::Malformed("bad record MAC"),
        ),
    ];
    for (bytes, want) in cases {
        let mut s = server();
        let (mut out, mut app) = (Vec::new(), Vec::new());
        assert_eq!(
            s.input(bytes, &mut out, &mut app),
            Err(want.clone()),
            "{bytes:?}"
        );
        assert!(
            out.len() >= 7 && out[0] == 21,
            "{want:?}: an alert record goes back"
        );
        assert!(app.is_empty());
        assert!(
            s.input(&[22], &mut Vec::new(), &mut Vec::new()).is_err(),
            "stays failed"
        );
    }
    // Truncated: a partial record is kept until the rest arrives.
    let cfg = TlsConfig::default();
    let mut c = TlsEndpoint::client(cfg.clone()).unwrap();
    let mut s = server();
    let mut hello = Vec::new();
    c.connected(&mut hello);
    let (mut out, mut app) = (Vec::new(), Vec::new());
    s.input(&hello[..hello.len() - 1], &mut out, &mut app)
        .unwrap();
    assert!(out.is_empty());
    s.input(&hello[hello.len() - 1..], &mut out, &mut app)
        .unwrap();
    assert!(!out.is_empty(), "the whole ClientHello is answered");
    // A tampered or replayed application record fails its MAC.
    let mut run = handshake(&cfg, 9);
    let mut rec = Vec::new();
    run.client.seal(b"publish", &mut rec, &mut Vec::new());
    let mut bad = rec.clone();
    bad[7] ^= 1;
    let mut s2 = handshake(&cfg, 9).server;
    assert_eq!(
        s2.input(&bad, &mut Vec::new(), &mut Vec::new()),
        Err(LayerError::Malformed("bad record MAC"))
    );
    run.server
        .input(&rec, &mut Vec::new(), &mut Vec::new())
        .unwrap();
    assert_eq!(
        run.server.input(&rec, &mut Vec::new(), &mut Vec::new()),
        Err(LayerError::Malformed("bad record MAC")),
        "a replayed record"
    );
    // A Finished that does not match the transcript.
    let cfg12 = TlsConfig {
        version: TlsVersion::Tls12,
        resumption: Resumption::Resume,
        ..TlsConfig::default()
    };
    let mut c = TlsEndpoint::client(cfg12.clone()).unwrap();
    let mut s = TlsEndpoint::server(cfg12.clone()).unwrap();
    let mut other = TlsEndpoint::client(TlsConfig { seed: 1, ..cfg12 }).unwrap();
    let (mut h1, mut h2) = (Vec::new(), Vec::new());
    c.connected(&mut h1);
    other.connected(&mut h2);
    let mut back = Vec::new();
    s.input(&h2, &mut back, &mut Vec::new()).unwrap();
    assert_eq!(
        c.input(&back, &mut Vec::new(), &mut Vec::new()),
        Err(LayerError::Refused(
            "Finished does not match the transcript"
        ))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random bytes, alone or after a valid handshake prefix, split anyhow,
    /// never panic; whatever is refused is refused with an error.
    #[test]
    fn garbage_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..4000,
        seed in any::<u64>(),
        v13 in any::<bool>(),
    ) {
        let cfg = TlsConfig {
            version: if v13 { TlsVersion::Tls13 } else { TlsVersion::Tls12 },
            ..TlsConfig::default()
        };
        let run = handshake(&cfg, seed);
        let server_flight = &run.wire[1].1;
        let mut rng = Lcg(seed);
        for prefix in [&[][..], &server_flight[..cut.min(server_flight.len())]] {
            let mut c = TlsEndpoint::client(cfg.clone()).unwrap();
            c.connected(&mut Vec::new());
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&junk);
            let _ = feed(&mut c, &bytes, &mut rng);
            let mut s = TlsEndpoint::server(cfg.clone()).unwrap();
            let _ = feed(&mut s, &bytes, &mut rng);
        }
        // Corrupting one byte of a valid flight is never accepted silently
        // as a complete handshake with a different transcript.
        let mut c = TlsEndpoint::client(cfg.clone()).unwrap();
        c.connected(&mut Vec::new());
        let mut flight = server_flight.clone();
        let i = cut % flight.len();
        flight[i] ^= 1 + (seed as u8 & 0x7f);
        let r = feed(&mut c, &flight, &mut rng);
        prop_assert!(r.is_err() || !c.established() || flight == *server_flight);
    }
}

/// A certificate chain larger than one record: the Certificate message is
/// split over records of at most 2^14 bytes and reassembled by the peer.
#[test]
fn a_handshake_message_over_2_14_bytes_spans_records() {
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let cfg = TlsConfig {
            version,
            mutual: true,
            server_chain: vec![30_000, 20_000],
            client_chain: vec![17_000],
            ..TlsConfig::default()
        };
        let run = handshake(&cfg, 11);
        assert!(
            run.client.established() && run.server.established(),
            "{cfg:?}"
        );
        for (_, flight) in &run.wire {
            let mut at = 0;
            while at < flight.len() {
                let len = usize::from(u16::from_be_bytes([flight[at + 3], flight[at + 4]]));
                assert!(len <= 16_384 + 256, "{cfg:?}: record of {len} bytes");
                at += 5 + len;
            }
            assert_eq!(at, flight.len(), "flights are whole records");
        }
        let big = run.wire[1].1.len();
        assert!(
            big > 50_000,
            "{cfg:?}: server flight {big} bytes holds the chain"
        );
    }
}
