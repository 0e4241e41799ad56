//! IPv6 source fragmentation and reassembly (`net::frag6`, RFC 8200 §4.5):
//! the fragment layout for many sizes and MTUs, round trips in every
//! arrival order, timeout and memory bound, and tshark reading the
//! fragments of a datagram (link type 229, raw IPv6) as one good UDP
//! datagram.

mod common;

use common::tshark;
use proptest::prelude::*;
use qossim::net::frag6::{
    fragment_v6, Frag6Error, Reassembler6, MIN_FRAG_MTU_V6, REASSEMBLY_TIMEOUT_V6,
};
use qossim::net::ip::PROTO_UDP;
use qossim::net::ipv6::{build_ipv6_udp, Ipv6FragRepr, Ipv6Repr};
use qossim::net::reassembly::Refused;
use qossim::report::pcap::{PcapWriter, LINKTYPE_IPV6};
use qossim::sim::{SimDuration, SimTime};
use std::net::Ipv6Addr;

fn addr(s: &str) -> Ipv6Addr {
    s.parse().expect("address")
}

/// An IPv6/UDP packet from `src` whose fragmentable part (UDP header and
/// data) is `len` bytes (at least 8).
fn packet_from(src: Ipv6Addr, len: usize, ports: (u16, u16)) -> Vec<u8> {
    let ip = Ipv6Repr {
        src,
        dst: addr("2001:db8::2"),
        next_header: PROTO_UDP,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x5_4321,
        payload_len: 0,
    };
    let data: Vec<u8> = (0..len - 8).map(|i| (i * 31 % 253) as u8).collect();
    let mut out = Vec::new();
    build_ipv6_udp(&mut out, &ip, ports.0, ports.1, &data).expect("packet");
    out
}

fn packet(len: usize) -> Vec<u8> {
    packet_from(addr("2001:db8::1"), len, (61616, 61617))
}

/// Data bytes a non-final fragment carries at `mtu`.
fn chunk(mtu: usize) -> usize {
    (mtu - 48) / 8 * 8
}

/// Fragment `pkt` at `mtu` and check the layout of RFC 8200 §4.5 on every
/// fragment: at most `mtu` bytes; the original header but for Next Header
/// 44 and the payload length; a Fragment header with the original Next
/// Header, `ident`, offsets that follow each other and M on all but the
/// last; a multiple of 8 data bytes in all but the last; and the data
/// together is the fragmentable part.
fn fragments(pkt: &[u8], mtu: usize, ident: u32) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut scratch = Vec::with_capacity(mtu);
    let n = fragment_v6(pkt, mtu, ident, &mut scratch, |f| v.push(f.to_vec())).expect("fragment");
    assert_eq!(n, v.len());
    if pkt.len() <= mtu {
        assert_eq!(v, vec![pkt.to_vec()]);
        return v;
    }
    let (orig, part) = Ipv6Repr::parse(pkt).expect("packet");
    assert_eq!(n, part.len().div_ceil(chunk(mtu)), "fragment count");
    let mut joined = Vec::new();
    for (i, f) in v.iter().enumerate() {
        assert!(f.len() <= mtu, "fragment {i} has {} bytes > {mtu}", f.len());
        let (ip, rest) = Ipv6Repr::parse(f).expect("fragment parses");
        assert_eq!(ip.next_header, 44);
        assert_eq!(
            Ipv6Repr {
                next_header: orig.next_header,
                payload_len: orig.payload_len,
                ..ip
            },
            orig
        );
        let (fh, data) = Ipv6FragRepr::parse(rest).expect("Fragment header");
        assert_eq!((fh.next_header, fh.ident), (PROTO_UDP, ident));
        assert_eq!(
            usize::from(fh.offset),
            joined.len(),
            "offset of fragment {i}"
        );
        let last = i + 1 == n;
        assert_eq!(fh.more, !last);
        if !last {
            assert_eq!(data.len(), chunk(mtu), "fragment {i} is not full");
            assert_eq!(data.len() % 8, 0);
        }
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, part);
    v
}

/// Push `frags` in `order`; the datagrams completed, in completion order.
fn push_all(r: &mut Reassembler6, frags: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in frags {
        if let Some(d) = r.push(SimTime::ZERO, f).expect("own fragment") {
            out.push(d);
        }
    }
    out
}

#[test]
fn round_trips_across_chunk_boundaries_in_every_order() {
    let mut cases = 0;
    for mtu in [56, 100, 576, 1280, 1500] {
        let c = chunk(mtu);
        for k in 1..4 {
            for len in [k * c - 1, k * c, k * c + 1, k * c + 8] {
                if len < 8 {
                    continue;
                }
                let pkt = packet(len);
                let v = fragments(&pkt, mtu, len as u32);
                let refs: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
                let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
                assert_eq!(push_all(&mut r, &refs), vec![pkt.clone()], "in order");
                let rev: Vec<&[u8]> = refs.iter().rev().copied().collect();
                assert_eq!(push_all(&mut r, &rev), vec![pkt.clone()], "reversed");
                // Each fragment twice (the last once): duplicates are dropped.
                let mut dup = Vec::new();
                for (i, f) in refs.iter().enumerate() {
                    dup.push(*f);
                    if i + 1 < refs.len() {
                        dup.push(*f);
                    }
                }
                assert_eq!(push_all(&mut r, &dup), vec![pkt.clone()], "duplicated");
                assert_eq!((r.pending(), r.held_bytes()), (0, 0), "mtu {mtu} len {len}");
                cases += 1;
            }
        }
    }
    // 5 MTUs × 3 multiples × 4 sizes, less 7 bytes at MTU 56 (under 8).
    assert_eq!(cases, 59);
}

#[test]
fn interleaved_datagrams_are_kept_apart() {
    // Same addresses and two identifications, and the same identification
    // from another source: three datagrams, fragments interleaved.
    let a = packet(3000);
    let b = packet(2500);
    let c = packet_from(addr("2001:db8::3"), 2000, (61616, 61617));
    let fa = fragments(&a, 1280, 7);
    let fb = fragments(&b, 1280, 8);
    let fc = fragments(&c, 1280, 7);
    let mut order: Vec<&[u8]> = Vec::new();
    for i in 0..3 {
        for f in [&fa, &fb, &fc] {
            if let Some(x) = f.get(i) {
                order.push(x);
            }
        }
    }
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    let got = push_all(&mut r, &order);
    // c (2 fragments) completes first, then a and b on their third.
    assert_eq!(got, vec![c, a, b]);
    assert_eq!(r.pending(), 0);
}

#[test]
fn a_late_duplicate_starts_a_datagram_that_expires() {
    let pkt = packet(3000);
    let v = fragments(&pkt, 1280, 1);
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    let t0 = SimTime::ZERO + SimDuration::from_secs(1);
    for f in &v {
        let _ = r.push(t0, f).expect("push");
    }
    assert_eq!(r.push(t0, &v[0]), Ok(None));
    assert_eq!(r.pending(), 1);
    assert_eq!(r.expire(t0 + REASSEMBLY_TIMEOUT_V6), 1);
}

#[test]
fn timeout_drops_a_half_datagram() {
    assert_eq!(REASSEMBLY_TIMEOUT_V6, SimDuration::from_secs(60));
    let pkt = packet(3000);
    let v = fragments(&pkt, 1280, 2);
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    let t0 = SimTime::ZERO + SimDuration::from_secs(5);
    assert_eq!(r.push(t0, &v[0]), Ok(None));
    // The deadline runs from the first fragment, not the latest.
    let t1 = t0 + SimDuration::from_secs(59);
    assert_eq!(r.push(t1, &v[1]), Ok(None));
    assert_eq!(r.next_expiry(), Some(t0 + REASSEMBLY_TIMEOUT_V6));
    assert_eq!(r.expire(t0 + SimDuration::from_secs(59)), 0);
    assert_eq!(
        r.expire(t0 + REASSEMBLY_TIMEOUT_V6),
        1,
        "half datagram dropped"
    );
    assert_eq!((r.pending(), r.held_bytes(), r.next_expiry()), (0, 0, None));
    // The last fragment alone cannot complete it now.
    let t2 = t0 + SimDuration::from_secs(61);
    assert_eq!(r.push(t2, &v[2]), Ok(None));
    // Without expire(): a fragment after the deadline starts afresh, so
    // fragments 0 and 1 are needed again.
    let t3 = t2 + REASSEMBLY_TIMEOUT_V6;
    assert_eq!(r.push(t3, &v[0]), Ok(None));
    assert_eq!(r.push(t3, &v[1]), Ok(None));
    assert_eq!(r.push(t3, &v[2]), Ok(Some(pkt)));
}

#[test]
fn memory_bound_refuses_past_the_budget() {
    let a = packet(3000);
    let b = packet_from(addr("2001:db8::9"), 3000, (1, 2));
    let fa = fragments(&a, 1280, 1);
    let fb = fragments(&b, 1280, 1);
    // Room for one 3048-byte datagram (plus its bookkeeping), not two.
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6).with_max_bytes(4000);
    assert_eq!(r.push(SimTime::ZERO, &fa[0]), Ok(None));
    assert_eq!(r.push(SimTime::ZERO, &fa[1]), Ok(None));
    let held = r.held_bytes();
    assert!(held > 40 + 2464 && held <= 4000, "{held}");
    let refused = r.push(SimTime::ZERO, &fb[1]);
    assert!(
        matches!(
            refused,
            Err(Frag6Error::Reassembly(Refused::OverBudget {
                max: 4000,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(
        (r.dropped_over_budget(), r.held_bytes(), r.pending()),
        (1, held, 1)
    );
    // Completing a gives the memory back; b then fits.
    let done = r
        .push(SimTime::ZERO, &fa[2])
        .expect("push")
        .expect("a done");
    assert_eq!(done, a);
    r.recycle(done);
    assert_eq!(r.held_bytes(), 0);
    let refs: Vec<&[u8]> = fb.iter().map(Vec::as_slice).collect();
    assert_eq!(push_all(&mut r, &refs), vec![b]);
}

#[test]
fn inconsistent_lengths_discard_the_datagram() {
    let pkt = packet(3000);
    let v = fragments(&pkt, 1280, 3);
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    assert_eq!(r.push(SimTime::ZERO, &v[2]), Ok(None));
    // A second last fragment ending elsewhere: the last of a shorter
    // datagram with the same identification.
    let short = fragments(&packet(2000), 1280, 3);
    assert_eq!(
        r.push(SimTime::ZERO, &short[1]),
        Err(Frag6Error::Reassembly(Refused::Inconsistent {
            start: 1232,
            end: 2000,
            total: 3000
        }))
    );
    assert_eq!((r.pending(), r.held_bytes()), (0, 0));
}

#[test]
fn a_source_never_refragments() {
    let v = fragments(&packet(3000), 1280, 4);
    let mut s = Vec::new();
    assert_eq!(
        fragment_v6(&v[0], 600, 5, &mut s, |_| {}),
        Err(Frag6Error::AlreadyFragmented {
            len: 1280,
            mtu: 600
        })
    );
    assert_eq!(
        fragment_v6(&packet(3000), MIN_FRAG_MTU_V6 - 1, 5, &mut s, |_| {}),
        Err(Frag6Error::MtuTooSmall { mtu: 55 })
    );
    let e = fragment_v6(&v[0], 600, 5, &mut s, |_| {}).expect_err("refused");
    assert!(e.to_string().contains("only the source fragments"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_size_mtu_and_order_round_trips(len in 8usize..6000, mtu in 56usize..1600,
                                          keys in proptest::collection::vec(any::<u64>(), 128)) {
        let pkt = packet(len);
        let v = fragments(&pkt, mtu, 99);
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by_key(|&i| keys[i % keys.len()] ^ i as u64);
        let order: Vec<&[u8]> = idx.iter().map(|&i| v[i].as_slice()).collect();
        let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
        prop_assert_eq!(push_all(&mut r, &order), vec![pkt]);
        prop_assert_eq!(r.pending(), 0);
    }
}

/// tshark's IPv6 reassembly of our fragments: a 3000-byte CoAP message in
/// UDP (3008 bytes) at MTU 1280 is three fragments; tshark reassembles them
/// in the third frame into a UDP datagram of 3008 bytes with a good
/// checksum carrying CoAP, and finds nothing malformed.
#[test]
fn tshark_reassembles_our_fragments() {
    if !tshark::available("tshark_reassembles_our_fragments") {
        return;
    }
    // CoAP NON POST, message ID 7, no token, payload marker, 2995 bytes.
    let mut coap = vec![0x50, 0x02, 0x00, 0x07, 0xFF];
    coap.extend((0..2995).map(|i| b'a' + (i % 26) as u8));
    let ip = Ipv6Repr {
        src: addr("2001:db8::1"),
        dst: addr("2001:db8::2"),
        next_header: PROTO_UDP,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: 0,
    };
    let mut pkt = Vec::new();
    build_ipv6_udp(&mut pkt, &ip, 5683, 5683, &coap).expect("packet");
    let v = fragments(&pkt, 1280, 0x1234_5678);
    assert_eq!(v.len(), 3);
    let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
    let refs: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
    assert_eq!(push_all(&mut r, &refs), vec![pkt.clone()], "own reassembly");

    let file = common::temp_dir("ipv6-frag").join("frag.pcap");
    let f = std::fs::File::create(&file).expect("create capture");
    let mut w =
        PcapWriter::with_linktype(std::io::BufWriter::new(f), LINKTYPE_IPV6).expect("pcap header");
    for (i, frag) in v.iter().enumerate() {
        let t = SimTime::ZERO + SimDuration::from_millis(i as u64);
        w.write_packet(t, frag).expect("write");
    }
    w.flush().expect("flush");
    drop(w);

    let base = ["-o", "udp.check_checksum:TRUE"];
    tshark::assert_clean(&file, &base, None);
    let fields = [
        "frame.protocols",
        "ipv6.fragment.count",
        "ipv6.reassembled.length",
        "udp.length",
        "udp.checksum.status",
        "_ws.malformed",
    ];
    let rows = tshark::field_rows(&file, &base, &fields);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        let line = row.join("|");
        let f: Vec<&str> = row.iter().map(String::as_str).collect();
        assert!(f[5].is_empty(), "malformed: {line}");
        if i < 2 {
            assert!(
                f[1].is_empty() && f[3].is_empty(),
                "frame {i} reassembled: {line}"
            );
            continue;
        }
        assert!(
            f[0].starts_with("ipv6:ipv6.fraghdr:udp:coap"),
            "layers: {line}"
        );
        assert_eq!(f[1], "3", "fragment count: {line}");
        assert_eq!(f[2], "3008", "reassembled length: {line}");
        assert_eq!(f[3], "3008", "UDP length: {line}");
        assert_eq!(f[4], "1", "UDP checksum not good: {line}");
    }
}
