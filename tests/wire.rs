//! IPv4/UDP wire formats, fragmentation and reassembly: golden bytes,
//! round trips, no-panic fuzzing, and exact fragment layouts.

use proptest::prelude::*;
use qossim::net::checksum;
use qossim::net::frag::{fragment, FragError, Reassembler, Refused};
use qossim::net::ip::{self, Ipv4Packet, Ipv4Repr, PROTO_UDP};
use qossim::net::udp::{build_ipv4_udp, UdpRepr};
use qossim::sim::{SimDuration, SimTime};
use std::net::Ipv4Addr;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn ip_repr(ident: u16) -> Ipv4Repr {
    Ipv4Repr {
        src: A,
        dst: B,
        protocol: PROTO_UDP,
        ttl: 64,
        ident,
        dont_fragment: false,
        more_fragments: false,
        frag_offset: 0,
        payload_len: 0,
    }
}

/// A full IPv4+UDP packet with a recognisable payload of `len` bytes.
fn udp_packet(ident: u16, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut out = Vec::new();
    build_ipv4_udp(&mut out, &ip_repr(ident), 49152, 9, &payload).expect("build");
    out
}

fn frags(packet: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let n = fragment(packet, mtu, &mut scratch, |f| out.push(f.to_vec())).expect("fragment");
    assert_eq!(n, out.len());
    out
}

/// (total length, offset in bytes, MF) of each fragment, checking each parses.
fn layout(fs: &[Vec<u8>]) -> Vec<(usize, u16, bool)> {
    fs.iter()
        .map(|f| {
            let (r, _) = Ipv4Repr::parse(f).expect("fragment parses");
            (r.total_len(), r.frag_offset, r.more_fragments)
        })
        .collect()
}

#[test]
fn golden_ipv4_header() {
    // 45 00 0020 1234 0000 40 11 cksum 0a00 0001 0a00 0002
    // Sum of the 16-bit words, checksum field as 0 (RFC 1071):
    //   4500 + 0020 = 4520;  + 1234 = 5754;  + 0000 = 5754;  + 4011 = 9765
    //   + 0a00 = a165;  + 0001 = a166;  + 0a00 = ab66;  + 0002 = ab68 (no carry)
    //   checksum = ~ab68 = 5497
    let r = Ipv4Repr {
        payload_len: 12,
        ..ip_repr(0x1234)
    };
    let mut buf = [0u8; 32];
    r.emit(&mut buf).expect("emit");
    assert_eq!(
        buf[..20],
        [
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x54, 0x97, 10, 0, 0, 1,
            10, 0, 0, 2
        ]
    );
    let (parsed, payload) = Ipv4Repr::parse(&buf).expect("parse");
    assert_eq!(parsed, r);
    assert_eq!(payload.len(), 12);
}

#[test]
fn golden_udp_datagram() {
    // 10.0.0.1:49152 -> 10.0.0.2:9, payload "ping" (70 69 6e 67), UDP length 12.
    // Pseudo-header: 0a00 + 0001 + 0a00 + 0002 + 0011 + 000c = 1420
    // Header: + c000 = d420; + 0009 = d429; + 000c = d435; + 0000 (checksum)
    // Payload: + 7069 = 1449e; + 6e67 = 1b305
    // Fold: b305 + 1 = b306; checksum = ~b306 = 4cf9
    let mut pkt = Vec::new();
    build_ipv4_udp(&mut pkt, &ip_repr(0x1234), 49152, 9, b"ping").expect("build");
    assert_eq!(
        pkt,
        [
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x54, 0x97, 10, 0, 0, 1,
            10, 0, 0, 2, // IPv4 header (see golden_ipv4_header)
            0xc0, 0x00, 0x00, 0x09, 0x00, 0x0c, 0x4c, 0xf9, // UDP header
            b'p', b'i', b'n', b'g',
        ]
    );
    let (u, p) = UdpRepr::parse(&pkt[20..], A, B).expect("udp parse");
    assert_eq!(
        u,
        UdpRepr {
            src_port: 49152,
            dst_port: 9,
            payload_len: 4
        }
    );
    assert_eq!(p, b"ping");
}

#[test]
fn rfc1071_example() {
    // RFC 1071 §3: 0001 + f203 + f4f5 + f6f7 = 2ddf0, folded ddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(checksum::fold(checksum::accumulate(0, &data)), 0xddf2);
    assert_eq!(checksum::checksum(&data), 0x220d);
}

fn arb_ipv4() -> impl Strategy<Value = Ipv4Repr> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        0u16..=0x1FFF,
        prop_oneof![0u16..2000, 0u16..=65515],
    )
        .prop_map(
            |(s, d, protocol, ttl, ident, df, mf, off, payload_len)| Ipv4Repr {
                src: Ipv4Addr::from(s),
                dst: Ipv4Addr::from(d),
                protocol,
                ttl,
                ident,
                dont_fragment: df,
                more_fragments: mf,
                frag_offset: off * 8,
                payload_len,
            },
        )
}

proptest! {
    #[test]
    fn ipv4_round_trip(r in arb_ipv4()) {
        let mut buf = vec![0u8; r.total_len()];
        r.emit(&mut buf).expect("emit");
        let (parsed, payload) = Ipv4Repr::parse(&buf).expect("parse");
        prop_assert_eq!(parsed, r);
        prop_assert_eq!(payload.len(), usize::from(r.payload_len));
    }

    #[test]
    fn decrement_ttl_equals_re_emit(r in arb_ipv4()) {
        prop_assume!(r.ttl > 0);
        let mut buf = vec![0u8; r.total_len()];
        r.emit(&mut buf).expect("emit");
        let ttl = ip::decrement_ttl(&mut buf).expect("ttl > 0");
        let mut expect = vec![0u8; 20];
        Ipv4Repr { ttl: r.ttl - 1, ..r }.emit(&mut expect).expect("emit");
        prop_assert_eq!(ttl, r.ttl - 1);
        prop_assert_eq!(&buf[..20], &expect[..]);
    }

    #[test]
    fn udp_round_trip(s in any::<[u8; 4]>(), d in any::<[u8; 4]>(), sp in any::<u16>(),
                      dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let (src, dst) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
        let r = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() as u16 };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, src, dst, &payload).expect("emit");
        prop_assert_ne!(&buf[6..8], &[0, 0], "a computed checksum is never sent as 0");
        let (parsed, p) = UdpRepr::parse(&buf, src, dst).expect("parse");
        prop_assert_eq!(parsed, r);
        prop_assert_eq!(p, &payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                   mtu in 0usize..300) {
        let _ = Ipv4Repr::parse(&bytes);
        let _ = Ipv4Packet::new_checked(&bytes[..]);
        let _ = UdpRepr::parse(&bytes, A, B);
        let _ = ip::dst_of(&bytes);
        let mut m = bytes.clone();
        let _ = ip::decrement_ttl(&mut m);
        let mut scratch = Vec::new();
        let _ = fragment(&bytes, mtu, &mut scratch, |_| {});
        let mut re = Reassembler::new(SimDuration::from_secs(30));
        let _ = re.push(SimTime::ZERO, &bytes);
    }

    /// Garbled headers with a *valid* checksum reach the reassembler's logic.
    #[test]
    fn garbled_valid_fragments_never_panic(
        pkts in proptest::collection::vec(
            (any::<[u8; 20]>(), proptest::collection::vec(any::<u8>(), 0..64)), 1..12),
        mtu in 0usize..200,
    ) {
        let mut re = Reassembler::new(SimDuration::from_secs(1));
        let mut scratch = Vec::new();
        for (i, (mut h, payload)) in pkts.into_iter().enumerate() {
            h[0] = 0x45;
            h[6] &= 0x7F; // reserved flag clear
            h[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            h[4] = 0; // few idents, so fragments meet
            h[5] &= 1;
            let total = (20 + payload.len()) as u16;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let mut pkt = h.to_vec();
            pkt.extend_from_slice(&payload);
            let now = SimTime::from_nanos(i as u64 * 300_000_000);
            if let Ok(Some(done)) = re.push(now, &pkt) {
                prop_assert!(Ipv4Repr::parse(&done).is_ok(), "output is a valid packet");
            }
            let mut lens = Vec::new();
            if let Ok(n) = fragment(&pkt, mtu, &mut scratch, |f| lens.push(f.len())) {
                prop_assert_eq!(n, lens.len());
                prop_assert!(lens.iter().all(|&l| l <= mtu), "fragments fit the MTU");
            }
            re.expire(now);
        }
    }
}

#[test]
fn fragment_1000_bytes_over_mtu_576() {
    // UDP datagram: 8 + 1000 = 1008 bytes. RFC 791 §3.2: NFB = (576 - 20) / 8 = 69
    // blocks = 552 bytes per fragment; 1008 = 552 + 456.
    let pkt = udp_packet(1, 1000);
    let fs = frags(&pkt, 576);
    assert_eq!(layout(&fs), vec![(572, 0, true), (476, 552, false)]);
}

#[test]
fn fragment_1000_bytes_over_mtu_127() {
    // NFB = (127 - 20) / 8 = 13 blocks = 104 bytes; 1008 = 9 * 104 + 72.
    let pkt = udp_packet(2, 1000);
    let fs = frags(&pkt, 127);
    let mut expect: Vec<(usize, u16, bool)> = (0..9).map(|i| (124, i * 104, true)).collect();
    expect.push((92, 936, false));
    assert_eq!(layout(&fs), expect);
    for f in &fs {
        assert!(f.len() <= 127);
        let (r, _) = Ipv4Repr::parse(f).expect("parse");
        assert_eq!(
            (r.src, r.dst, r.ident, r.ttl, r.protocol),
            (A, B, 2, 64, PROTO_UDP)
        );
    }
}

#[test]
fn fragment_reuses_scratch_and_passes_small_packets() {
    let pkt = udp_packet(3, 1000);
    let mut scratch = Vec::with_capacity(127);
    let base = scratch.as_ptr();
    let mut ptrs = Vec::new();
    let n = fragment(&pkt, 127, &mut scratch, |f| ptrs.push(f.as_ptr())).expect("frag");
    assert_eq!(n, 10);
    assert!(
        ptrs.iter().all(|&p| p == base),
        "every fragment built in scratch"
    );

    let small = udp_packet(4, 10);
    let mut seen = Vec::new();
    let n = fragment(&small, 127, &mut scratch, |f| seen.push(f.to_vec())).expect("fits");
    assert_eq!((n, seen), (1, vec![small]));
}

#[test]
fn fragment_errors() {
    let mut scratch = Vec::new();
    let mut df = Vec::new();
    let r = Ipv4Repr {
        dont_fragment: true,
        ..ip_repr(5)
    };
    build_ipv4_udp(&mut df, &r, 1, 2, &[0u8; 100]).expect("build");
    assert_eq!(
        fragment(&df, 100, &mut scratch, |_| {}),
        Err(FragError::DontFragment { len: 128, mtu: 100 })
    );
    // DF does not matter when the packet fits.
    assert_eq!(fragment(&df, 128, &mut scratch, |_| {}), Ok(1));
    let pkt = udp_packet(6, 100);
    assert_eq!(
        fragment(&pkt, 27, &mut scratch, |_| {}),
        Err(FragError::MtuTooSmall { mtu: 27 })
    );
    assert_eq!(fragment(&pkt, 28, &mut scratch, |_| {}), Ok(14)); // 108 / 8 = 13.5
    assert!(matches!(
        fragment(&pkt[..30], 28, &mut scratch, |_| {}),
        Err(FragError::Wire(_))
    ));
}

#[test]
fn refragmenting_a_fragment_keeps_offsets_and_mf() {
    let pkt = udp_packet(7, 1000);
    let fs = frags(&pkt, 576);
    // First fragment (offset 0, MF) over MTU 127: all MF, 552 = 5 * 104 + 32.
    let first = layout(&frags(&fs[0], 127));
    let mut expect: Vec<(usize, u16, bool)> = (0..5).map(|i| (124, i * 104, true)).collect();
    expect.push((52, 520, true));
    assert_eq!(first, expect);
    // Last fragment (offset 552, no MF): offsets continue from 552; 456 = 4 * 104 + 40.
    let last = layout(&frags(&fs[1], 127));
    let mut expect: Vec<(usize, u16, bool)> = (0..4).map(|i| (124, 552 + i * 104, true)).collect();
    expect.push((60, 968, false));
    assert_eq!(last, expect);
}

/// All permutations of `0..n` (Heap's algorithm).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, a, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

#[test]
fn reassembly_in_every_order() {
    // 1008-byte datagram over MTU 300: 280 + 280 + 280 + 168 = four fragments.
    let pkt = udp_packet(8, 1000);
    let fs = frags(&pkt, 300);
    assert_eq!(fs.len(), 4);
    let orders = permutations(4);
    assert_eq!(orders.len(), 24);
    for order in orders {
        let mut re = Reassembler::new(SimDuration::from_secs(30));
        for (k, &i) in order.iter().enumerate() {
            let out = re
                .push(SimTime::from_nanos(k as u64), &fs[i])
                .expect("push");
            if k + 1 < order.len() {
                assert_eq!(
                    out, None,
                    "order {order:?}: no datagram before the last hole"
                );
                assert_eq!(re.pending(), 1);
            } else {
                assert_eq!(out.as_deref(), Some(&pkt[..]), "order {order:?}");
            }
        }
        assert_eq!(re.pending(), 0);
        assert_eq!(re.next_expiry(), None);
    }
}

#[test]
fn reassembled_header_comes_from_first_fragment() {
    let pkt = udp_packet(9, 300);
    let mut fs = frags(&pkt, 100);
    // Routers decremented the TTL of the later fragments differently.
    for f in fs.iter_mut().skip(1) {
        ip::decrement_ttl(f).expect("ttl");
    }
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    let mut out = None;
    for f in fs.iter().rev() {
        out = re.push(SimTime::ZERO, f).expect("push");
    }
    let out = out.expect("complete");
    let (r, _) = Ipv4Repr::parse(&out).expect("valid header");
    assert_eq!(
        (r.ttl, r.more_fragments, r.frag_offset, r.total_len()),
        (64, false, 0, 328)
    );
    assert_eq!(out, pkt);
}

#[test]
fn missing_fragment_expires_after_timeout() {
    let pkt = udp_packet(10, 1000);
    let fs = frags(&pkt, 576);
    let timeout = SimDuration::from_secs(30);
    let mut re = Reassembler::new(timeout);
    let t0 = SimTime::from_nanos(5_000);
    assert_eq!(re.push(t0, &fs[1]), Ok(None));
    assert_eq!(re.pending(), 1);
    assert_eq!(re.next_expiry(), Some(t0 + timeout));
    assert_eq!(
        re.expire(SimTime::from_nanos(t0.as_nanos() + timeout.as_nanos() - 1)),
        0
    );
    assert_eq!(re.pending(), 1);
    assert_eq!(re.expire(t0 + timeout), 1);
    assert_eq!((re.pending(), re.next_expiry()), (0, None));
    // The late first fragment now starts a new datagram rather than completing.
    assert_eq!(re.push(t0 + timeout, &fs[0]), Ok(None));
    assert_eq!(re.pending(), 1);
}

#[test]
fn stale_datagram_is_replaced_even_without_expire() {
    let pkt = udp_packet(11, 1000);
    let fs = frags(&pkt, 576);
    let timeout = SimDuration::from_secs(1);
    let mut re = Reassembler::new(timeout);
    assert_eq!(re.push(SimTime::ZERO, &fs[0]), Ok(None));
    // Past the deadline: the old first fragment must not be combined.
    let late = SimTime::ZERO + timeout;
    assert_eq!(re.push(late, &fs[1]), Ok(None));
    assert_eq!(re.next_expiry(), Some(late + timeout));
    assert_eq!(
        re.push(late, &fs[0]).expect("push").as_deref(),
        Some(&pkt[..])
    );
}

#[test]
fn non_fragment_passes_through_and_buffers_are_recycled() {
    let pkt = udp_packet(12, 50);
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    let out = re
        .push(SimTime::ZERO, &pkt)
        .expect("push")
        .expect("whole packet");
    assert_eq!(out, pkt);
    assert_eq!(re.pending(), 0);
    // Steady state: a recycled buffer carries the next datagram.
    let big = udp_packet(13, 1000);
    let fs = frags(&big, 576);
    let mut first = re.push(SimTime::ZERO, &fs[0]).expect("push");
    first = first.or(re.push(SimTime::ZERO, &fs[1]).expect("push"));
    let done = first.expect("complete");
    let ptr = done.as_ptr();
    re.recycle(done);
    let again = udp_packet(14, 1000);
    let fs = frags(&again, 576);
    assert_eq!(re.push(SimTime::ZERO, &fs[0]), Ok(None));
    let done = re
        .push(SimTime::ZERO, &fs[1])
        .expect("push")
        .expect("complete");
    assert_eq!(done, again);
    assert_eq!(done.as_ptr(), ptr, "recycled allocation reused");
}

#[test]
fn overlap_first_data_wins() {
    let pkt = udp_packet(15, 100); // 108-byte UDP datagram
    let fs = frags(&pkt, 60); // 40 + 40 + 28
    assert_eq!(fs.len(), 3);
    // A forged fragment at offset 32 (overlapping both first fragments) with other bytes.
    let forged_payload = [0xEEu8; 16];
    let mut forged = vec![0u8; 36];
    Ipv4Repr {
        more_fragments: true,
        frag_offset: 32,
        payload_len: 16,
        ..ip_repr(15)
    }
    .emit(&mut forged)
    .expect("emit");
    forged[20..].copy_from_slice(&forged_payload);
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    assert_eq!(re.push(SimTime::ZERO, &fs[0]), Ok(None));
    assert_eq!(re.push(SimTime::ZERO, &forged), Ok(None));
    assert_eq!(re.push(SimTime::ZERO, &fs[2]), Ok(None));
    let out = re
        .push(SimTime::ZERO, &fs[1])
        .expect("push")
        .expect("complete");
    let mut expect = pkt.clone();
    // Bytes 32..40 kept from fs[0]; 40..48 came first from the forged fragment.
    expect[20 + 40..20 + 48].copy_from_slice(&forged_payload[8..]);
    assert_eq!(out, expect);
}

#[test]
fn inconsistent_lengths_drop_the_datagram() {
    let pkt = udp_packet(16, 100);
    let fs = frags(&pkt, 60);
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    assert_eq!(re.push(SimTime::ZERO, &fs[2]), Ok(None)); // last: payload ends at 108
    let mut other_last = vec![0u8; 28];
    Ipv4Repr {
        frag_offset: 96,
        payload_len: 8,
        ..ip_repr(16)
    }
    .emit(&mut other_last)
    .expect("emit");
    assert_eq!(
        re.push(SimTime::ZERO, &other_last),
        Err(FragError::Reassembly(Refused::Inconsistent {
            start: 96,
            end: 104,
            total: 108
        }))
    );
    assert_eq!(re.pending(), 0);
    // A non-final fragment whose length is not a multiple of 8 is refused.
    let mut odd = vec![0u8; 30];
    Ipv4Repr {
        more_fragments: true,
        payload_len: 10,
        ..ip_repr(17)
    }
    .emit(&mut odd)
    .expect("emit");
    assert_eq!(
        re.push(SimTime::ZERO, &odd),
        Err(FragError::Reassembly(Refused::Misaligned {
            offset: 0,
            len: 10
        }))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// Any arrival order, with duplicates and some fragments re-fragmented on a
    /// smaller MTU, reassembles to the original bytes.
    #[test]
    fn reassembly_survives_reordering_duplicates_and_refragmentation(
        len in 1usize..3000,
        mtu in 68usize..1500,
        small_mtu in 28usize..68,
        refrag in proptest::collection::vec(any::<bool>(), 64),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        seed in any::<u64>(),
    ) {
        let pkt = udp_packet(20, len);
        let mut pieces = Vec::new();
        for (i, f) in frags(&pkt, mtu).into_iter().enumerate() {
            if refrag[i % refrag.len()] {
                pieces.extend(frags(&f, small_mtu));
            } else {
                pieces.push(f);
            }
        }
        let base = pieces.len();
        for d in &dups {
            let f = pieces[d.index(base)].clone();
            pieces.push(f);
        }
        // Deterministic Fisher-Yates from the seed (SplitMix64 steps).
        let mut s = seed;
        for i in (1..pieces.len()).rev() {
            s = qossim::sim::rng::splitmix64(s);
            pieces.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut re = Reassembler::new(SimDuration::from_secs(30));
        let mut completions = 0;
        for f in &pieces {
            if let Some(out) = re.push(SimTime::ZERO, f).expect("valid fragments") {
                prop_assert_eq!(&out, &pkt);
                completions += 1;
            }
        }
        prop_assert!(completions >= 1, "the datagram completes");
    }
}

#[test]
fn empty_fragment_does_not_disturb_reassembly() {
    let pkt = udp_packet(21, 100);
    let fs = frags(&pkt, 60);
    let mut empty = vec![0u8; 20];
    Ipv4Repr {
        more_fragments: true,
        frag_offset: 48,
        payload_len: 0,
        ..ip_repr(21)
    }
    .emit(&mut empty)
    .expect("emit");
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    assert_eq!(re.push(SimTime::ZERO, &empty), Ok(None));
    assert_eq!(re.push(SimTime::ZERO, &fs[2]), Ok(None));
    assert_eq!(re.push(SimTime::ZERO, &fs[0]), Ok(None));
    let out = re.push(SimTime::ZERO, &fs[1]).expect("push");
    assert_eq!(out.as_deref(), Some(&pkt[..]));
    assert_eq!(re.pending(), 0);
}

/// A raw IPv4 fragment (UDP) with identification `ident`, byte offset
/// `offset` (multiple of 8), MF flag and `len` payload bytes.
fn raw_fragment(ident: u16, offset: usize, more: bool, len: usize) -> Vec<u8> {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    let flags_off = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
    h[6..8].copy_from_slice(&flags_off.to_be_bytes());
    h[8] = 64;
    h[9] = PROTO_UDP;
    h[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = h.to_vec();
    p.resize(20 + len, 0xab);
    p
}

/// The reassembler's memory is bounded (hardening issue, defect 4): lone
/// 28-byte fragments at the largest offset each made it allocate 64 KB
/// (20,000 of them, 560 KB on the wire, held 1.28 GB). Now each is charged
/// what it holds, and past 4 MiB (Linux's ipfrag_high_thresh) fragments
/// are dropped and counted; the memory comes back on expiry, and ordinary
/// datagrams reassemble again.
#[test]
fn reassembly_memory_is_bounded() {
    let mut re = Reassembler::new(SimDuration::from_secs(30));
    let mut dropped = 0;
    for ident in 0..20_000u16 {
        match re.push(SimTime::ZERO, &raw_fragment(ident, 65_440, true, 8)) {
            Ok(None) => {}
            Err(FragError::Reassembly(Refused::OverBudget { .. })) => dropped += 1,
            other => panic!("{other:?}"),
        }
        assert!(re.held_bytes() <= 4 << 20, "{}", re.held_bytes());
    }
    let pending = re.pending();
    assert!((40..=64).contains(&pending), "{pending} datagrams held");
    assert_eq!(dropped, 20_000 - pending as u64);
    assert_eq!(re.dropped_over_budget(), dropped);
    // the bound blocks another far fragment until the held ones expire
    assert!(matches!(
        re.push(SimTime::ZERO, &raw_fragment(60_000, 65_440, true, 8)),
        Err(FragError::Reassembly(Refused::OverBudget { .. }))
    ));
    let first = raw_fragment(60_001, 0, true, 16);
    let last = raw_fragment(60_001, 16, false, 8);
    assert_eq!(
        re.expire(SimTime::ZERO + SimDuration::from_secs(30)),
        pending
    );
    assert_eq!(re.held_bytes(), 0, "expiry gives the memory back");
    let t = SimTime::ZERO + SimDuration::from_secs(31);
    assert_eq!(re.push(t, &first).expect("first"), None);
    let whole = re.push(t, &last).expect("last").expect("reassembled");
    assert_eq!(whole.len(), 20 + 24);
    assert_eq!(re.held_bytes(), 0, "a completed datagram gives it back");
}
