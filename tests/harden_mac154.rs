//! IEEE 802.15.4 data frames survive parse → emit → parse (audit defect
//! 5): destination and source addressing modes are independent, and every
//! header field (PAN ID compression, frame version, frame pending, ACK
//! request — on broadcast too) is kept. Before, a frame with an extended
//! destination and a short source came back with a 16-bit destination, a
//! full-size short-destination/extended-source frame could not be emitted
//! again (TooLong), and the ACK request bit of a broadcast frame was lost.

use proptest::prelude::*;
use qossim::link::mac154::{
    fcs, Address, Addresses, DataFrame, FrameError, FrameVersion, MacFrame, BROADCAST,
    MAX_PSDU_BYTES,
};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn emit(f: &MacFrame) -> Vec<u8> {
    let mut out = Vec::new();
    f.emit(&mut out).expect("fits");
    out
}

/// Mixed modes: extended destination 0x1122334455667788, short source 2.
const MIXED: &str = "419c00341288776655443322110200a17f";
/// Broadcast with the ACK request bit set.
const BCAST_ACK: &str = "6198003412ffff0200a4a4";

#[test]
fn mixed_address_modes_round_trip_byte_exactly() {
    let b = hex(MIXED);
    let f = MacFrame::parse(&b).expect("valid frame");
    assert_eq!(
        f,
        MacFrame {
            version: FrameVersion::Ieee2006,
            seq: 0,
            frame_pending: false,
            ack_request: false,
            addresses: Addresses::IntraPan {
                pan: 0x1234,
                dst: Address::Extended(0x1122_3344_5566_7788),
                src: Address::Short(2),
            },
            payload: &[],
        }
    );
    assert_eq!(emit(&f), b);
}

#[test]
fn broadcast_ack_request_round_trips_byte_exactly() {
    let b = hex(BCAST_ACK);
    let f = MacFrame::parse(&b).expect("valid frame");
    assert!(f.ack_request, "the ACK request bit is kept on broadcast");
    assert_eq!(f.addresses.dst(), Some(Address::Short(BROADCAST)));
    assert_eq!(f.addresses.src(), Some(Address::Short(2)));
    assert_eq!(emit(&f), b);
}

#[test]
fn full_size_short_dst_extended_src_frame_round_trips() {
    let payload = vec![0xA5; 127 - 17];
    let f = MacFrame {
        version: FrameVersion::Ieee2006,
        seq: 9,
        frame_pending: false,
        ack_request: true,
        addresses: Addresses::IntraPan {
            pan: 0x1234,
            dst: Address::Short(0x0001),
            src: Address::Extended(0x0011_2233_4455_6677),
        },
        payload: &payload,
    };
    let b = emit(&f);
    assert_eq!(b.len(), 127);
    let g = MacFrame::parse(&b).expect("valid frame");
    assert_eq!(g, f);
    assert_eq!(emit(&g), b, "no TooLong: the destination stays short");
}

/// The simulator's `DataFrame` cannot describe these frames: its parse
/// must refuse them rather than return something that emits other bytes.
#[test]
fn data_frame_parse_is_exact_or_refuses() {
    let payload = vec![0xA5; 127 - 17];
    let full = emit(&MacFrame {
        version: FrameVersion::Ieee2006,
        seq: 9,
        frame_pending: false,
        ack_request: true,
        addresses: Addresses::IntraPan {
            pan: 0x1234,
            dst: Address::Short(0x0001),
            src: Address::Extended(0x0011_2233_4455_6677),
        },
        payload: &payload,
    });
    for b in [hex(MIXED), hex(BCAST_ACK), full] {
        if let Ok(d) = DataFrame::parse(&b) {
            let mut out = Vec::new();
            let r = d.emit(&mut out);
            assert_eq!(
                (r, out.as_slice()),
                (Ok(()), b.as_slice()),
                "DataFrame::parse gave {d:?}"
            );
        }
    }
    // What the simulator writes still parses as a DataFrame.
    let sim = DataFrame {
        seq: 3,
        pan: 0x1234,
        addressing: qossim::link::mac154::Addressing::Extended,
        dst: u64::from(BROADCAST),
        src: 7,
        ack_request: false,
        payload: b"ip",
    };
    let mut out = Vec::new();
    sim.emit(&mut out).expect("fits");
    assert_eq!(DataFrame::parse(&out), Ok(sim));
}

#[test]
fn invalid_combinations_are_refused() {
    // FCF, seq 0, then enough bytes for any header; the FCS fixed up.
    let frame = |fcf: u16| {
        let mut b = fcf.to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 24]);
        let c = fcs(&b);
        b.extend_from_slice(&c.to_le_bytes());
        b
    };
    let data_2006 = 0x0001 | (1 << 12);
    for (fcf, why) in [
        (data_2006, "no address"),
        (
            data_2006 | (0b10 << 10) | (1 << 6),
            "PAN ID compression, destination only",
        ),
        (
            data_2006 | (0b10 << 14) | (1 << 6),
            "PAN ID compression, source only",
        ),
        (
            data_2006 | (0b01 << 10) | (0b10 << 14),
            "reserved destination mode",
        ),
        (
            data_2006 | (0b10 << 10) | (0b01 << 14),
            "reserved source mode",
        ),
        (
            0x0001 | (2 << 12) | (0b10 << 10) | (0b10 << 14),
            "frame version 2015",
        ),
        (
            0x0001 | (3 << 12) | (0b10 << 10) | (0b10 << 14),
            "reserved frame version",
        ),
        (
            data_2006 | (0b10 << 10) | (0b10 << 14) | (1 << 3),
            "security",
        ),
        (
            data_2006 | (0b10 << 10) | (0b10 << 14) | (1 << 8),
            "reserved bit",
        ),
        (
            (1 << 12) | 0x0002 | (0b10 << 10) | (0b10 << 14),
            "ACK frame type",
        ),
    ] {
        assert_eq!(
            MacFrame::parse(&frame(fcf)),
            Err(FrameError::Unsupported),
            "{why}"
        );
    }
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        any::<u16>().prop_map(Address::Short),
        any::<u64>().prop_map(Address::Extended),
        // The special values.
        Just(Address::Short(BROADCAST)),
        Just(Address::Short(0xFFFE)),
    ]
}

fn addresses() -> impl Strategy<Value = Addresses> {
    prop_oneof![
        (any::<u16>(), address()).prop_map(|(pan, dst)| Addresses::Dst { pan, dst }),
        (any::<u16>(), address()).prop_map(|(pan, src)| Addresses::Src { pan, src }),
        (any::<u16>(), address(), address()).prop_map(|(pan, dst, src)| Addresses::IntraPan {
            pan,
            dst,
            src
        }),
        (any::<u16>(), address(), any::<u16>(), address()).prop_map(
            |(dst_pan, dst, src_pan, src)| Addresses::InterPan {
                dst_pan,
                dst,
                src_pan,
                src
            }
        ),
    ]
}

/// A frame's header fields, and a payload that fits (up to the 127-byte
/// limit, the limit itself often).
#[derive(Debug, Clone)]
struct Parts {
    version: FrameVersion,
    seq: u8,
    frame_pending: bool,
    ack_request: bool,
    addresses: Addresses,
    payload: Vec<u8>,
}

impl Parts {
    fn frame(&self) -> MacFrame<'_> {
        MacFrame {
            version: self.version,
            seq: self.seq,
            frame_pending: self.frame_pending,
            ack_request: self.ack_request,
            addresses: self.addresses,
            payload: &self.payload,
        }
    }
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        prop::sample::select(vec![FrameVersion::Ieee2003, FrameVersion::Ieee2006]),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        addresses(),
    )
        .prop_flat_map(|(version, seq, frame_pending, ack_request, addresses)| {
            let header = MacFrame {
                version,
                seq,
                frame_pending,
                ack_request,
                addresses,
                payload: &[],
            }
            .buffer_len();
            let room = MAX_PSDU_BYTES as usize - header;
            let len = prop_oneof![0..=room, Just(room)];
            len.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
                .prop_map(move |payload| Parts {
                    version,
                    seq,
                    frame_pending,
                    ack_request,
                    addresses,
                    payload,
                })
        })
}

/// Replace the last two bytes by the FCS of the rest.
fn fix_fcs(b: &mut [u8]) {
    if b.len() >= 2 {
        let n = b.len() - 2;
        let c = fcs(&b[..n]).to_le_bytes();
        b[n..].copy_from_slice(&c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_frames_round_trip(p in parts()) {
        let f = p.frame();
        let b = emit(&f);
        prop_assert_eq!(b.len(), f.buffer_len());
        prop_assert!(b.len() <= 127);
        let g = MacFrame::parse(&b);
        prop_assert_eq!(g, Ok(f));
        prop_assert_eq!(&emit(&f), &b);
        // One more payload byte than fits: refused, nothing written.
        let mut big = p.payload.clone();
        big.resize(p.payload.len() + 128 - b.len(), 0);
        let over = MacFrame { payload: &big, ..f };
        let mut out = vec![1, 2];
        prop_assert_eq!(over.emit(&mut out), Err(FrameError::TooLong));
        prop_assert_eq!(out, vec![1, 2]);
    }

    /// Any byte string that parses is emitted back unchanged: flipped
    /// header bits (reaching every FCF combination) with the FCS repaired.
    #[test]
    fn mutated_frames_parse_exactly_or_not_at_all(
        p in parts(),
        flips in prop::collection::vec((0usize..24, 0u8..8), 1..4),
        cut in 0usize..4,
    ) {
        let mut b = emit(&p.frame());
        for (i, bit) in flips {
            let i = i % b.len();
            b[i] ^= 1 << bit;
        }
        b.truncate(b.len().saturating_sub(cut));
        fix_fcs(&mut b);
        if let Ok(f) = MacFrame::parse(&b) {
            prop_assert_eq!(emit(&f), b.clone());
        }
        if let Ok(d) = DataFrame::parse(&b) {
            let mut out = Vec::new();
            prop_assert_eq!(d.emit(&mut out), Ok(()));
            prop_assert_eq!(out, b);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        mut b in prop::collection::vec(any::<u8>(), 0..200),
        repair in any::<bool>(),
    ) {
        if repair {
            fix_fcs(&mut b);
        }
        match MacFrame::parse(&b) {
            Ok(f) => prop_assert_eq!(emit(&f), b.clone()),
            Err(FrameError::TooLong) => prop_assert!(b.len() > 127),
            Err(_) => {}
        }
        let _ = DataFrame::parse(&b);
    }
}
