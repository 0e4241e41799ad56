//! TCP wire format: golden bytes, round trips, no-panic parsing.

use proptest::prelude::*;
use qossim::transport::tcp::{SackBlocks, Segment, SegmentError, TcpFlags, TcpRepr};
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// SYN 10.0.0.1:40000 → 10.0.0.2:1883, seq 0x01020304, window 64240, MSS
/// 1460, SACK-permitted, TSval 100 / TSecr 0, window scale 7. Laid out by
/// hand; the checksum computed by hand as the one's complement of the
/// 16-bit sum: pseudo-header 0a00+0001+0a00+0002+0006+0028 = 0x1431, header
/// and options words = 0x25ac5, total 0x26ef6 → folded 0x6ef8 → 0x9107.
const GOLDEN_SYN: [u8; 40] = [
    0x9c, 0x40, 0x07, 0x5b, // ports 40000, 1883
    0x01, 0x02, 0x03, 0x04, // seq
    0x00, 0x00, 0x00, 0x00, // ack
    0xa0, 0x02, 0xfa, 0xf0, // offset 10 words, SYN, window 64240
    0x91, 0x07, 0x00, 0x00, // checksum, urgent
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
    0x04, 0x02, 0x08, 0x0a, // SACK-permitted, TS kind/len
    0x00, 0x00, 0x00, 0x64, // TSval 100
    0x00, 0x00, 0x00, 0x00, // TSecr 0
    0x01, 0x03, 0x03, 0x07, // NOP, window scale 7
];

fn golden_repr() -> TcpRepr {
    TcpRepr {
        src_port: 40000,
        dst_port: 1883,
        seq: 0x0102_0304,
        ack: 0,
        flags: TcpFlags(TcpFlags::SYN),
        window: 64240,
        urgent: 0,
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((100, 0)),
        sack: SackBlocks::default(),
        payload_len: 0,
    }
}

/// An ACK with timestamps and three SACK blocks, laid out as Linux sends
/// it: NOP NOP TS (12 bytes), NOP NOP SACK (2 + 24): a 60-byte header, the
/// largest TCP allows; a fourth block does not fit and is left out.
#[test]
fn sack_blocks_with_timestamps_fill_the_header() {
    let mut sack = SackBlocks::default();
    for (l, r) in [(3000, 4000), (1000, 2000), (5000, 6000), (7000, 8000)] {
        assert!(sack.push(l, r));
    }
    assert!(!sack.push(9000, 9001));
    let r = TcpRepr {
        src_port: 1883,
        dst_port: 40000,
        seq: 1,
        ack: 500,
        flags: TcpFlags(TcpFlags::ACK),
        window: 1000,
        timestamps: Some((7, 9)),
        sack,
        ..TcpRepr::default()
    };
    assert_eq!(r.header_len(), 60);
    let mut buf = vec![0u8; 60];
    assert_eq!(r.emit(&mut buf, SRC, DST, &[]), Ok(60));
    assert_eq!(&buf[32..38], &[1, 1, 5, 26, 0, 0]);
    let (back, _) = TcpRepr::parse(&buf, SRC, DST).unwrap();
    assert_eq!(
        back.sack.as_slice(),
        &[(3000, 4000), (1000, 2000), (5000, 6000)]
    );
    // Without timestamps all four fit (4 + 32 = 36 bytes of options).
    let r4 = TcpRepr {
        timestamps: None,
        ..r
    };
    assert_eq!(r4.header_len(), 56);
    // A SACK option whose length is not 2 + 8n is malformed.
    let mut bad = buf.clone();
    bad[35] = 25;
    fix_checksum(&mut bad);
    assert_eq!(
        TcpRepr::parse(&bad, SRC, DST).map(|_| ()),
        Err(SegmentError::BadOption { kind: 5 })
    );
}

#[test]
fn golden_syn_emit() {
    let r = golden_repr();
    assert_eq!(r.buffer_len(), 40);
    let mut buf = [0u8; 40];
    assert_eq!(r.emit(&mut buf, SRC, DST, &[]), Ok(40));
    assert_eq!(buf, GOLDEN_SYN);
}

#[test]
fn golden_syn_parse() {
    let (r, payload) = TcpRepr::parse(&GOLDEN_SYN, SRC, DST).unwrap();
    assert_eq!(r, golden_repr());
    assert!(payload.is_empty());
    // One flipped bit breaks the checksum.
    let mut bad = GOLDEN_SYN;
    bad[7] ^= 1;
    assert!(matches!(
        TcpRepr::parse(&bad, SRC, DST),
        Err(SegmentError::BadChecksum { .. })
    ));
    // The pseudo-header covers the addresses.
    assert!(
        TcpRepr::parse(&GOLDEN_SYN, DST, SRC).is_ok(),
        "sum is symmetric in src/dst"
    );
    assert!(TcpRepr::parse(&GOLDEN_SYN, SRC, Ipv4Addr::new(10, 0, 0, 3)).is_err());
}

#[test]
fn pure_ack_with_timestamps_is_32_bytes() {
    let r = TcpRepr {
        flags: TcpFlags(TcpFlags::ACK),
        timestamps: Some((1, 2)),
        ..TcpRepr::default()
    };
    assert_eq!(r.header_len(), 32);
    let mut buf = [0u8; 32];
    r.emit(&mut buf, SRC, DST, &[]).unwrap();
    assert_eq!(&buf[20..24], &[1, 1, 8, 10], "NOP NOP TS");
}

#[test]
fn malformed_inputs_are_errors() {
    assert_eq!(
        TcpRepr::parse(&[0; 19], SRC, DST),
        Err(SegmentError::Truncated { len: 19 })
    );
    let mut b = GOLDEN_SYN;
    b[12] = 0xf0; // 60-byte header in a 40-byte buffer
    assert!(matches!(
        TcpRepr::parse(&b, SRC, DST),
        Err(SegmentError::BadDataOffset { .. })
    ));
    let mut b = GOLDEN_SYN;
    b[21] = 3; // MSS option with length 3
    fix_checksum(&mut b);
    assert_eq!(
        TcpRepr::parse(&b, SRC, DST),
        Err(SegmentError::BadOption { kind: 2 })
    );
    let mut b = GOLDEN_SYN;
    b[38] = 40; // window scale length running past the header
    fix_checksum(&mut b);
    assert_eq!(
        TcpRepr::parse(&b, SRC, DST),
        Err(SegmentError::BadOption { kind: 3 })
    );
    let r = golden_repr();
    let mut small = [0u8; 39];
    assert_eq!(
        r.emit(&mut small, SRC, DST, &[]),
        Err(SegmentError::BufferTooSmall { need: 40, len: 39 })
    );
    let bad_ws = TcpRepr {
        window_scale: Some(15),
        ..r
    };
    assert_eq!(
        bad_ws.emit(&mut [0u8; 40], SRC, DST, &[]),
        Err(SegmentError::BadWindowScale(15))
    );
}

fn arb_repr() -> impl Strategy<Value = (TcpRepr, Vec<u8>)> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            0u8..64,
        ),
        (any::<u16>(), any::<u16>()),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
        ),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=3),
    )
        .prop_map(
            |((sp, dp, seq, ack, fl), (win, urg), (mss, ws, sack, ts), payload, blocks)| {
                // Blocks only where all of them fit beside the other
                // options (emit leaves out what does not).
                let mut sb = SackBlocks::default();
                if mss.is_none() && ws.is_none() {
                    for (l, r) in blocks {
                        sb.push(l, r);
                    }
                }
                (
                    TcpRepr {
                        src_port: sp,
                        dst_port: dp,
                        seq,
                        ack,
                        flags: TcpFlags(fl),
                        window: win,
                        urgent: urg,
                        mss,
                        window_scale: ws,
                        sack_permitted: sack,
                        timestamps: ts,
                        sack: sb,
                        payload_len: payload.len() as u16,
                    },
                    payload,
                )
            },
        )
}

proptest! {
    #[test]
    fn repr_round_trips((r, payload) in arb_repr()) {
        let mut buf = vec![0u8; r.buffer_len()];
        prop_assert_eq!(r.emit(&mut buf, SRC, DST, &payload), Ok(buf.len()));
        prop_assert_eq!(buf.len() % 4, payload.len() % 4);
        let (back, p) = TcpRepr::parse(&buf, SRC, DST).unwrap();
        prop_assert_eq!(back, r);
        prop_assert_eq!(p, &payload[..]);
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = TcpRepr::parse(&bytes, SRC, DST);
        let mut out = [0u8; 64];
        let _ = qossim::transport::tcp::reset_for(&bytes, &mut out);
    }

    #[test]
    fn parse_never_panics_with_valid_checksum(mut bytes in proptest::collection::vec(any::<u8>(), 20..120)) {
        // Fix up the checksum so the option parser is reached.
        fix_checksum(&mut bytes);
        let _ = TcpRepr::parse(&bytes, SRC, DST);
    }
}

fn fix_checksum(bytes: &mut [u8]) {
    bytes[16] = 0;
    bytes[17] = 0;
    let acc = qossim::net::checksum::pseudo_header_sum(SRC, DST, 6, bytes.len() as u16);
    let c = !qossim::net::checksum::fold(qossim::net::checksum::accumulate(acc, bytes));
    bytes[16..18].copy_from_slice(&c.to_be_bytes());
}

proptest! {
    /// Arbitrary segments (valid checksum, right ports, random header,
    /// options and payload) never make a connection panic, in any state
    /// reached along the way.
    #[test]
    fn connection_survives_arbitrary_segments(
        segs in proptest::collection::vec((any::<u32>(), any::<u32>(), 0u8..64, any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)), 1..40),
        listen in any::<bool>(),
    ) {
        use qossim::sim::{SimDuration, SimTime};
        use qossim::transport::tcp::{Config, Connection};
        use std::net::SocketAddrV4;
        let local = SocketAddrV4::new(DST, 1883);
        let remote = SocketAddrV4::new(SRC, 40000);
        let mut c = if listen {
            Connection::listen(Config::linux_like(), local, 1500, 5)
        } else {
            Connection::connect(Config::rfc(), local, remote, 1500, 5)
        };
        let mut now = SimTime::ZERO;
        let mut out = Vec::new();
        for (seq, ack, flags, window, payload) in segs {
            let r = TcpRepr {
                src_port: 40000,
                dst_port: 1883,
                seq,
                ack,
                flags: TcpFlags(flags),
                window,
                payload_len: payload.len() as u16,
                ..TcpRepr::default()
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b, SRC, DST, &payload).unwrap();
            let _ = c.handle_input(now, Segment::new(SRC, DST, &b));
            c.write(&payload);
            let mut sink = [0u8; 128];
            c.read(&mut sink);
            while c.poll_transmit(now, &mut out).is_some() {
                out.clear();
            }
            while c.poll_event().is_some() {}
            if let Some(t) = c.poll_timeout() {
                now = now.max(t);
                c.handle_timeout(now);
            }
            now += SimDuration::from_millis(1);
        }
    }
}
