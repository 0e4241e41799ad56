//! IPv6 fragmentation by the source and reassembly by the destination.
//!
//! Read first: RFC 8200 §4.5 (the Fragment header, "Fragmentation Process"
//! and "Reassembly Process"), RFC 6946 (atomic fragments), RFC 5722
//! (overlapping fragments, now part of RFC 8200 §4.5).
//!
//! Only the source fragments in IPv6; routers never do (RFC 8200 §5). The
//! unfragmentable part is the 40-byte fixed header — no other extension
//! header is modelled — and the fragmentable part everything after it.
//!
//! No-panic rule: any byte slice may be given to [`fragment_v6`] or
//! [`Reassembler6::push`](super::reassembly::Reassembly::push); malformed
//! input gives a [`Frag6Error`], never a panic or an out-of-bounds index.
//!
//! Reassembly is the table shared with IPv4 ([`super::reassembly`]), read
//! through [`V6`]. Differences from IPv4:
//!
//! - Datagrams are keyed by (source, destination, identification) (§4.5).
//! - `push` takes every arriving packet: one without a Fragment header is
//!   returned unchanged at once; an atomic fragment (offset 0, M clear,
//!   RFC 6946) is returned at once without its Fragment header and never
//!   mixed with other fragments of the same identification.
//! - **Overlaps discard the datagram** (§4.5: "If any of the fragments being
//!   reassembled overlap with any other fragments being reassembled for the
//!   same packet, reassembly of that packet must be abandoned"), except an
//!   exact duplicate of bytes already received, which §4.5 lets a
//!   receiver drop while keeping the rest ([`Frag6Error::Overlap`]).
//! - The reassembled payload may not pass 65,535 bytes (§4.5, no jumbograms).
//!   The check that the first fragment carries the whole upper-layer header
//!   (§4.5, RFC 7112) is not made.
//! - Timeout 60 s ([`REASSEMBLY_TIMEOUT_V6`]), measured from the first
//!   fragment, as for IPv4; the memory bound is the same.
//!
//! The result is the original datagram: the header of the fragment at
//! offset 0 with Next Header taken from its Fragment header and the payload
//! length of the whole, then the fragmentable part.

use super::frag::emit_chunks;
use super::ipv6::{
    Ipv6FragRepr, Ipv6Repr, FRAG_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD_LEN, NEXT_HEADER_FRAGMENT,
};
use super::reassembly::{Family, Parsed, Reassembly, Refused};
use super::wire::WireError;
use crate::sim::SimDuration;
use std::net::Ipv6Addr;

/// Smallest MTU that can carry a fragment: the 40-byte header, the 8-byte
/// Fragment header and 8 data bytes (every fragment but the last carries a
/// multiple of 8).
pub const MIN_FRAG_MTU_V6: usize = HEADER_LEN + FRAG_HEADER_LEN + 8;
/// Time a destination waits for the rest of a datagram after its first
/// fragment arrived (RFC 8200 §4.5: 60 seconds).
pub const REASSEMBLY_TIMEOUT_V6: SimDuration = SimDuration::from_secs(60);

/// Why a packet could not be fragmented or a fragment not reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Frag6Error {
    /// The packet is not a valid IPv6 packet, or its Fragment header is cut.
    #[error("IPv6 fragmentation: {0}")]
    Wire(#[from] WireError),
    /// The MTU cannot carry the headers plus 8 data bytes.
    #[error(
        "IPv6 fragmentation: MTU {mtu} is below the {MIN_FRAG_MTU_V6}-byte minimum \
         (40-byte header, 8-byte Fragment header, 8 data bytes)"
    )]
    MtuTooSmall { mtu: usize },
    /// The packet exceeds the MTU and is itself a fragment: only the source
    /// fragments, once (RFC 8200 §4.5, §5).
    #[error(
        "IPv6 fragmentation: {len}-byte packet exceeds MTU {mtu} and already carries a \
         Fragment header; only the source fragments a datagram (RFC 8200 §4.5)"
    )]
    AlreadyFragmented { len: usize, mtu: usize },
    /// A fragment overlaps bytes already received (and is not an exact
    /// duplicate of them); the datagram is discarded (RFC 8200 §4.5).
    #[error(
        "IPv6 reassembly: fragment [{start}, {end}) overlaps bytes already received; \
         the datagram is discarded (RFC 8200 §4.5)"
    )]
    Overlap { start: usize, end: usize },
    /// The shared reassembly rules refused the fragment.
    #[error("IPv6 {0}")]
    Reassembly(#[from] Refused),
}

/// Split `packet` into fragments of at most `mtu` bytes, calling `emit` with
/// each in order (RFC 8200 §4.5, "Fragmentation Process").
///
/// A packet that fits is emitted unchanged (trailing padding dropped) as one
/// fragment — a fragment that fits included. Otherwise each fragment is the
/// 40-byte header (Next Header 44, payload length fixed), a Fragment header
/// (the original Next Header, the offset in bytes, M set on all but the
/// last, identification `ident`) and the next chunk of the payload; every
/// chunk but the last is the largest multiple of 8 that fits. `scratch`
/// holds the fragment being built; nothing is allocated once it has
/// capacity `mtu`. Returns the number of fragments.
pub fn fragment_v6(
    packet: &[u8],
    mtu: usize,
    ident: u32,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, Frag6Error> {
    let (repr, payload) = Ipv6Repr::parse(packet)?;
    if repr.total_len() <= mtu {
        emit(&packet[..repr.total_len()]);
        return Ok(1);
    }
    // RFC 8200 §4.5, §5: only the source fragments, and only once.
    if repr.next_header == NEXT_HEADER_FRAGMENT {
        let len = repr.total_len();
        return Err(Frag6Error::AlreadyFragmented { len, mtu });
    }
    // Every fragment but the last carries the largest multiple of 8 that
    // fits after the two headers.
    let chunk = match mtu.checked_sub(HEADER_LEN + FRAG_HEADER_LEN) {
        Some(room) if room >= 8 => room / 8 * 8,
        _ => return Err(Frag6Error::MtuTooSmall { mtu }),
    };
    emit_chunks(
        payload,
        chunk,
        scratch,
        &mut emit,
        |buf, offset, len, last| {
            // len <= chunk < mtu, and the payload is at most 65,535 bytes, so
            // the last offset is at most 65,528: both fit 16 bits.
            let head = Ipv6Repr {
                next_header: NEXT_HEADER_FRAGMENT,
                payload_len: (FRAG_HEADER_LEN + len) as u16,
                ..repr
            };
            head.emit(buf)?;
            let frag = Ipv6FragRepr {
                next_header: repr.next_header,
                offset: offset as u16,
                more: !last,
                ident,
            };
            frag.emit(buf)?;
            Ok(())
        },
    )
}

/// How [`Reassembly`] reads IPv6 (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V6;

impl Family for V6 {
    /// RFC 8200 §4.5: fragments of one packet share source, destination
    /// and identification.
    type Key = (Ipv6Addr, Ipv6Addr, u32);
    /// The fixed header with Next Header taken from the Fragment header.
    type Header = Ipv6Repr;
    type Error = Frag6Error;
    const HEADER_LEN: usize = HEADER_LEN;
    const MAX_PAYLOAD: usize = MAX_PAYLOAD_LEN;
    const LIMITED: &'static str = "payload";

    fn parse(packet: &[u8]) -> Result<Parsed<'_, Self>, Frag6Error> {
        let (repr, payload) = Ipv6Repr::parse(packet)?;
        if repr.next_header != NEXT_HEADER_FRAGMENT {
            return Ok(Parsed::Whole(&packet[..repr.total_len()]));
        }
        let (frag, data) = Ipv6FragRepr::parse(payload)?;
        let header = Ipv6Repr {
            next_header: frag.next_header,
            ..repr
        };
        // RFC 6946 §4: an atomic fragment is processed in isolation.
        if frag.offset == 0 && !frag.more {
            return Ok(Parsed::Unfragmented {
                header,
                payload: data,
            });
        }
        Ok(Parsed::Fragment {
            key: (repr.src, repr.dst, frag.ident),
            header,
            start: usize::from(frag.offset),
            data,
            more: frag.more,
        })
    }

    fn write_header(
        header: &Ipv6Repr,
        payload_len: usize,
        buf: &mut [u8],
    ) -> Result<(), Frag6Error> {
        let whole = Ipv6Repr {
            // At most MAX_PAYLOAD, checked by Reassembly::push.
            payload_len: u16::try_from(payload_len).unwrap_or(u16::MAX),
            ..*header
        };
        let bytes = whole.header_bytes()?;
        match buf.get_mut(..HEADER_LEN) {
            Some(h) => h.copy_from_slice(&bytes),
            None => {
                return Err(Frag6Error::Wire(WireError::BufferTooSmall {
                    layer: super::wire::Layer::Ipv6,
                    need: HEADER_LEN,
                    len: buf.len(),
                }))
            }
        }
        Ok(())
    }

    fn overlap(start: usize, end: usize) -> Option<Frag6Error> {
        Some(Frag6Error::Overlap { start, end })
    }
}

/// Reassembles fragmented IPv6 datagrams (RFC 8200 §4.5), deterministically;
/// see the module documentation. `new(REASSEMBLY_TIMEOUT_V6)` is the RFC's
/// timeout.
pub type Reassembler6 = Reassembly<V6>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ip::PROTO_UDP;
    use crate::net::ipv6::build_ipv6_udp;
    use crate::sim::SimTime;
    use proptest::prelude::*;

    fn udp_packet(payload_len: usize) -> Vec<u8> {
        let ip = Ipv6Repr {
            src: "2001:db8::1".parse().expect("addr"),
            dst: "2001:db8::2".parse().expect("addr"),
            next_header: PROTO_UDP,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 7,
            payload_len: 0,
        };
        let data: Vec<u8> = (0..payload_len).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        build_ipv6_udp(&mut out, &ip, 5683, 61616, &data).expect("packet");
        out
    }

    fn frags(pkt: &[u8], mtu: usize, ident: u32) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let n = fragment_v6(pkt, mtu, ident, &mut Vec::new(), |f| v.push(f.to_vec()))
            .expect("fragment");
        assert_eq!(n, v.len());
        v
    }

    #[test]
    fn fragment_layout_follows_rfc8200() {
        let pkt = udp_packet(3000); // 40 + 3008 bytes
        let v = frags(&pkt, 1280, 0xABCD_0001);
        // 1280 - 48 = 1232 bytes a fragment (a multiple of 8): 1232 + 1232 + 544.
        assert_eq!(v.len(), 3);
        for (i, f) in v.iter().enumerate() {
            assert!(f.len() <= 1280);
            let (ip, rest) = Ipv6Repr::parse(f).expect("fragment parses");
            assert_eq!(ip.next_header, 44);
            let (fh, data) = Ipv6FragRepr::parse(rest).expect("fragment header");
            assert_eq!(fh.next_header, PROTO_UDP);
            assert_eq!(fh.ident, 0xABCD_0001);
            assert_eq!(usize::from(fh.offset), i * 1232);
            assert_eq!(fh.more, i < 2);
            assert_eq!(
                data,
                &pkt[40 + i * 1232..(40 + (i + 1) * 1232).min(pkt.len())]
            );
        }
        // Bytes of the first fragment: payload length 8 + 1232 = 0x04D8,
        // then Fragment header 17, 0, offset 0 | M, ident.
        assert_eq!(&v[0][4..7], &[0x04, 0xD8, 44]);
        assert_eq!(&v[0][40..48], &[17, 0, 0, 1, 0xAB, 0xCD, 0, 1]);
        // Second: offset 1232 = 154 units << 3 = 0x04D0, M set.
        assert_eq!(&v[1][42..44], &[0x04, 0xD1]);
    }

    #[test]
    fn a_packet_that_fits_passes_unchanged() {
        let pkt = udp_packet(100);
        let mut padded = pkt.clone();
        padded.extend_from_slice(&[0xEE; 3]);
        assert_eq!(frags(&padded, pkt.len(), 1), vec![pkt]);
    }

    #[test]
    fn errors_for_short_mtu_invalid_and_fragmented_input() {
        let pkt = udp_packet(100);
        let mut s = Vec::new();
        assert_eq!(
            fragment_v6(&pkt, 55, 1, &mut s, |_| {}),
            Err(Frag6Error::MtuTooSmall { mtu: 55 })
        );
        assert!(fragment_v6(&pkt, 56, 1, &mut s, |_| {}).is_ok());
        assert!(matches!(
            fragment_v6(&pkt[..30], 1280, 1, &mut s, |_| {}),
            Err(Frag6Error::Wire(WireError::Truncated { .. }))
        ));
        let mut v4ish = pkt.clone();
        v4ish[0] = 0x45;
        assert_eq!(
            fragment_v6(&v4ish, 100, 1, &mut s, |_| {}),
            Err(Frag6Error::Wire(WireError::BadIpv6Version(4)))
        );
        let first = frags(&pkt, 96, 9).remove(0);
        assert_eq!(
            fragment_v6(&first, 64, 1, &mut s, |_| {}),
            Err(Frag6Error::AlreadyFragmented {
                len: first.len(),
                mtu: 64
            })
        );
        // A fragment that fits is passed on as it is.
        assert_eq!(frags(&first, 96, 1), vec![first.clone()]);
    }

    #[test]
    fn no_allocation_once_scratch_has_capacity() {
        let pkt = udp_packet(2000);
        let mut s = Vec::with_capacity(300);
        let ptr = s.as_ptr();
        let n = fragment_v6(&pkt, 300, 5, &mut s, |f| assert!(f.len() <= 300)).expect("ok");
        assert_eq!(n, 2048usize.div_ceil(248));
        assert_eq!((s.as_ptr(), s.capacity()), (ptr, 300));
    }

    #[test]
    fn atomic_fragment_is_whole_and_isolated() {
        let pkt = udp_packet(40);
        // Two fragments of datagram 3, then an atomic fragment with ident 3.
        let v = frags(&udp_packet(200), 120, 3);
        let mut atomic = Vec::new();
        let (ip, _) = Ipv6Repr::parse(&pkt).expect("ip");
        Ipv6Repr {
            next_header: 44,
            payload_len: ip.payload_len + 8,
            ..ip
        }
        .emit(&mut atomic)
        .expect("emit");
        Ipv6FragRepr {
            next_header: PROTO_UDP,
            offset: 0,
            more: false,
            ident: 3,
        }
        .emit(&mut atomic)
        .expect("emit");
        atomic.extend_from_slice(&pkt[40..]);
        let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
        assert_eq!(r.push(SimTime::ZERO, &v[0]), Ok(None));
        assert_eq!(r.push(SimTime::ZERO, &atomic), Ok(Some(pkt.clone())));
        assert_eq!(r.pending(), 1, "the atomic fragment left datagram 3 alone");
        // A packet without a Fragment header comes back unchanged.
        assert_eq!(r.push(SimTime::ZERO, &pkt), Ok(Some(pkt.clone())));
        let mut got = None;
        for f in &v[1..] {
            got = r.push(SimTime::ZERO, f).expect("push");
        }
        assert_eq!(got, Some(udp_packet(200)));
    }

    #[test]
    fn overlap_discards_but_exact_duplicates_do_not() {
        let pkt = udp_packet(300);
        let v = frags(&pkt, 120, 4); // 72-byte chunks
        let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
        assert_eq!(r.push(SimTime::ZERO, &v[1]), Ok(None));
        assert_eq!(
            r.push(SimTime::ZERO, &v[1]),
            Ok(None),
            "a duplicate is dropped"
        );
        assert_eq!(r.pending(), 1);
        // A fragment at 64 overlapping [72, 144) by 8 bytes: abandon.
        let mut bad = Vec::new();
        let (ip, _) = Ipv6Repr::parse(&v[1]).expect("ip");
        Ipv6Repr {
            payload_len: 8 + 16,
            ..ip
        }
        .emit(&mut bad)
        .expect("emit");
        Ipv6FragRepr {
            next_header: PROTO_UDP,
            offset: 64,
            more: true,
            ident: 4,
        }
        .emit(&mut bad)
        .expect("emit");
        bad.extend_from_slice(&pkt[40 + 64..40 + 80]);
        assert_eq!(
            r.push(SimTime::ZERO, &bad),
            Err(Frag6Error::Overlap { start: 64, end: 80 })
        );
        assert_eq!((r.pending(), r.held_bytes()), (0, 0));
        // A copy of a received range with other bytes is an overlap too.
        let mut changed = v[1].clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(r.push(SimTime::ZERO, &v[1]), Ok(None));
        assert!(matches!(
            r.push(SimTime::ZERO, &changed),
            Err(Frag6Error::Overlap { .. })
        ));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn misaligned_and_too_long_fragments_are_refused() {
        let pkt = udp_packet(300);
        let v = frags(&pkt, 120, 4);
        let mut r = Reassembler6::new(REASSEMBLY_TIMEOUT_V6);
        // Cut 3 bytes from a non-final fragment.
        let mut short = v[0].clone();
        short.truncate(short.len() - 3);
        let plen = (short.len() - 40) as u16;
        short[4..6].copy_from_slice(&plen.to_be_bytes());
        assert_eq!(
            r.push(SimTime::ZERO, &short),
            Err(Frag6Error::Reassembly(Refused::Misaligned {
                offset: 0,
                len: 69
            }))
        );
        // A last fragment at offset 65528 with 16 bytes ends past 65535.
        let mut far = v[2].clone();
        far[42..44].copy_from_slice(&65528u16.to_be_bytes());
        far.truncate(48 + 16);
        far[4..6].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(
            r.push(SimTime::ZERO, &far),
            Err(Frag6Error::Reassembly(Refused::TooLong {
                end: 65544,
                what: "payload"
            }))
        );
        // A truncated Fragment header.
        let mut cut = v[0][..44].to_vec();
        cut[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert!(matches!(
            r.push(SimTime::ZERO, &cut),
            Err(Frag6Error::Wire(WireError::Truncated { .. }))
        ));
        assert_eq!(r.pending(), 0);
        let msg = Frag6Error::Reassembly(Refused::TooLong {
            end: 65544,
            what: "payload",
        })
        .to_string();
        assert_eq!(
            msg,
            "IPv6 reassembly: fragment ending at payload byte 65544 makes the payload exceed 65535 bytes"
        );
    }

    proptest! {
        #[test]
        fn push_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200),
                             frag in any::<bool>()) {
            let mut bytes = data;
            if frag && bytes.len() >= 48 {
                // Make it look like IPv6 carrying a Fragment header so the
                // deeper paths are reached.
                bytes[0] = 0x60 | (bytes[0] & 0x0F);
                bytes[6] = 44;
                let plen = (bytes.len() - 40) as u16;
                bytes[4..6].copy_from_slice(&plen.to_be_bytes());
            }
            let mut r = Reassembler6::new(SimDuration::from_millis(5)).with_max_bytes(2048);
            let _ = r.push(SimTime::ZERO, &bytes);
            let _ = r.push(SimTime::ZERO + SimDuration::from_millis(1), &bytes);
            prop_assert!(r.held_bytes() <= 2048);
            r.expire(SimTime::ZERO + SimDuration::from_millis(10));
            prop_assert_eq!(r.pending(), 0);
        }
    }
}
