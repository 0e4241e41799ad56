//! 6LoWPAN link fragmentation and reassembly (RFC 4944 §5.3).
//!
//! FRAG1 is `11000 datagram_size(11) datagram_tag(16)` (4 bytes) and
//! FRAGN `11100 datagram_size(11) datagram_tag(16) datagram_offset(8)`
//! (5 bytes). datagram_size and offsets count bytes of the **uncompressed**
//! IPv6 datagram (RFC 4944 §5.3, RFC 6282 §2), offsets in 8-byte units, so
//! every fragment but the last covers a multiple of 8 uncompressed bytes.
//! The first fragment carries all compressed headers (RFC 6282 §2).
//!
//! Reassembly keys fragments by (link source, link destination,
//! datagram_size, datagram_tag) as RFC 4944 §5.3 says, in a `BTreeMap`
//! (deterministic expiry). It places each fragment's bytes at their
//! uncompressed offset: a FRAG1's IPHC header is decompressed on arrival,
//! its elided lengths taken from datagram_size. Overlap policy and memory
//! bound as in IPv4 reassembly (`net::frag`): first data wins; data past
//! datagram_size discards the datagram; a datagram_size below the 40-byte
//! IPv6 header or a FRAGN at offset 0 is refused (only FRAG1 starts a
//! datagram); a new datagram that would pass the
//! bound on pending datagrams or bytes is refused and counted. A datagram
//! is discarded `timeout` after its first fragment (RFC 4944 §5.3: at most
//! 60 s), counted; so a datagram with a lost fragment is never delivered.

use super::iphc;
use super::{classify, Context, Dispatch, LowpanError, Reader};
use crate::link::mac154::Address;
use crate::net::frag::fill_holes;
use crate::net::ipv6::{Ipv6Repr, HEADER_LEN};
use crate::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// FRAG1 header length.
pub const FRAG1_LEN: usize = 4;
/// FRAGN header length.
pub const FRAGN_LEN: usize = 5;
/// Largest datagram_size (11 bits).
pub const MAX_DATAGRAM_SIZE: usize = 0x7FF;
/// RFC 4944 §5.3's upper bound of the reassembly timeout.
pub const DEFAULT_TIMEOUT: SimDuration = SimDuration::from_secs(60);
/// Default bound of datagrams being reassembled at once.
pub const DEFAULT_MAX_PENDING: usize = 16;
/// Default bound of bytes held by them (each costs its datagram_size
/// plus [`PARTIAL_COST`]).
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024;
/// What a pending datagram costs besides its buffer (entry and intervals),
/// so a flood of tiny first fragments is bounded too.
pub const PARTIAL_COST: usize = 64;

/// A FRAG1 (`offset` `None`) or FRAGN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragHeader {
    /// Uncompressed IPv6 datagram size in bytes (11 bits).
    pub size: u16,
    pub tag: u16,
    /// FRAGN offset in bytes (a multiple of 8, at most 2040); `None` for FRAG1.
    pub offset: Option<u16>,
}

impl FragHeader {
    /// Header length: 4 or 5.
    pub fn len(&self) -> usize {
        if self.offset.is_some() {
            FRAGN_LEN
        } else {
            FRAG1_LEN
        }
    }

    /// Never empty (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parse a FRAG1 or FRAGN header; returns it and the bytes after it.
    pub fn parse(b: &[u8]) -> Result<(FragHeader, &[u8]), LowpanError> {
        let mut r = Reader::new(b);
        let w = r.u16("fragment header")?;
        let dispatch = (w >> 8) as u8;
        let size = w & 0x07FF;
        let tag = r.u16("fragment header")?;
        let offset = match classify(dispatch) {
            Dispatch::Frag1 => None,
            Dispatch::FragN => Some(u16::from(r.u8("FRAGN offset")?) * 8),
            _ => {
                return Err(LowpanError::Dispatch {
                    byte: dispatch,
                    expected: "FRAG1 (11000xxx) or FRAGN (11100xxx)",
                })
            }
        };
        Ok((FragHeader { size, tag, offset }, r.rest()))
    }

    /// Append the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), LowpanError> {
        if usize::from(self.size) > MAX_DATAGRAM_SIZE {
            return Err(LowpanError::DatagramTooLong {
                size: usize::from(self.size),
            });
        }
        let dispatch: u16 = if self.offset.is_some() {
            0xE000
        } else {
            0xC000
        };
        let units = match self.offset {
            Some(o) if !o.is_multiple_of(8) || o > 255 * 8 => {
                return Err(LowpanError::BadInput(
                    "FRAGN offset not a multiple of 8 below 2048",
                ))
            }
            Some(o) => Some((o / 8) as u8),
            None => None,
        };
        out.extend_from_slice(&(dispatch | self.size).to_be_bytes());
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.extend(units);
        Ok(())
    }
}

/// Split a compressed datagram into link-frame payloads of at most
/// `max_frame_payload` bytes (RFC 4944 §5.3). `compressed` is the IPHC
/// datagram: `compressed_header_len` bytes of compressed headers (all of
/// which go in the first fragment) then the payload, which is the same as
/// the uncompressed datagram's after its `uncompressed_header_len` bytes of
/// headers (as [`iphc::compress_packet`] returns them).
///
/// A datagram that fits one frame is returned as it is, without fragment
/// header. Otherwise the first fragment is FRAG1 + the compressed headers +
/// payload up to the largest multiple of 8 uncompressed bytes that fits,
/// and each FRAGN carries the largest multiple of 8 that fits, the last the
/// remainder.
pub fn fragment(
    compressed: &[u8],
    compressed_header_len: usize,
    uncompressed_header_len: usize,
    max_frame_payload: usize,
    tag: u16,
) -> Result<Vec<Vec<u8>>, LowpanError> {
    if compressed.len() <= max_frame_payload {
        return Ok(vec![compressed.to_vec()]);
    }
    let (head, payload) = compressed
        .split_at_checked(compressed_header_len)
        .ok_or(LowpanError::BadInput("header length beyond the datagram"))?;
    let size = uncompressed_header_len + payload.len();
    if size > MAX_DATAGRAM_SIZE {
        return Err(LowpanError::DatagramTooLong { size });
    }
    // First fragment: uncompressed bytes covered must be a multiple of 8.
    let room1 = max_frame_payload.saturating_sub(FRAG1_LEN + compressed_header_len);
    let covered1 = (uncompressed_header_len + room1) / 8 * 8;
    let roomn = max_frame_payload.saturating_sub(FRAGN_LEN) / 8 * 8;
    if covered1 <= uncompressed_header_len || roomn == 0 {
        return Err(LowpanError::FrameTooSmall {
            max: max_frame_payload,
            need: (FRAG1_LEN + compressed_header_len + 8).max(FRAGN_LEN + 8),
        });
    }
    let size16 = size as u16; // <= 2047
    let first = covered1 - uncompressed_header_len;
    let mut frames = Vec::new();
    let mut f = Vec::with_capacity(max_frame_payload);
    FragHeader {
        size: size16,
        tag,
        offset: None,
    }
    .emit(&mut f)?;
    f.extend_from_slice(head);
    f.extend_from_slice(&payload[..first]);
    frames.push(f);
    let mut off = first;
    while off < payload.len() {
        let n = roomn.min(payload.len() - off);
        let mut f = Vec::with_capacity(FRAGN_LEN + n);
        FragHeader {
            size: size16,
            tag,
            offset: Some((uncompressed_header_len + off) as u16),
        }
        .emit(&mut f)?;
        f.extend_from_slice(&payload[off..off + n]);
        frames.push(f);
        off += n;
    }
    Ok(frames)
}

/// Datagram identity (RFC 4944 §5.3); addresses as (mode, value) so the
/// key orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    src: (u8, u64),
    dst: (u8, u64),
    size: u16,
    tag: u16,
}

/// When a datagram whose first fragment came at `first` is discarded.
fn deadline(first: SimTime, timeout: SimDuration) -> SimTime {
    first.checked_add(timeout).unwrap_or(SimTime::MAX)
}

fn addr_key(a: Address) -> (u8, u64) {
    match a {
        Address::Short(s) => (2, u64::from(s)),
        Address::Extended(e) => (3, e),
    }
}

#[derive(Debug)]
struct Partial {
    first_arrival: SimTime,
    /// The uncompressed datagram, `size` bytes.
    buf: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and not touching
    /// (`net::frag::fill_holes` keeps them so).
    have: Vec<(usize, usize)>,
}

/// Reassembles 6LoWPAN datagrams from link-frame payloads (RFC 4944 §5.3),
/// deterministically, within bounds.
#[derive(Debug)]
pub struct Reassembler {
    timeout: SimDuration,
    max_pending: usize,
    max_bytes: usize,
    held: usize,
    partial: BTreeMap<Key, Partial>,
    dropped_timeout: u64,
    dropped_over_budget: u64,
    dropped_inconsistent: u64,
}

impl Reassembler {
    /// A reassembler discarding a datagram `timeout` after its first
    /// fragment, with the default bounds.
    pub fn new(timeout: SimDuration) -> Self {
        Reassembler {
            timeout,
            max_pending: DEFAULT_MAX_PENDING,
            max_bytes: DEFAULT_MAX_BYTES,
            held: 0,
            partial: BTreeMap::new(),
            dropped_timeout: 0,
            dropped_over_budget: 0,
            dropped_inconsistent: 0,
        }
    }

    /// Set the bounds: datagrams pending at once and bytes they hold.
    pub fn with_bounds(mut self, max_pending: usize, max_bytes: usize) -> Self {
        self.max_pending = max_pending;
        self.max_bytes = max_bytes;
        self
    }

    /// Datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
    /// Bytes charged to them.
    pub fn held_bytes(&self) -> usize {
        self.held
    }
    /// Incomplete datagrams discarded by the timeout.
    pub fn dropped_timeout(&self) -> u64 {
        self.dropped_timeout
    }
    /// Fragments refused because a bound was reached.
    pub fn dropped_over_budget(&self) -> u64 {
        self.dropped_over_budget
    }
    /// Datagrams discarded because a fragment did not fit their size.
    pub fn dropped_inconsistent(&self) -> u64 {
        self.dropped_inconsistent
    }
    /// Earliest deadline of a pending datagram.
    pub fn next_expiry(&self) -> Option<SimTime> {
        self.partial
            .values()
            .map(|p| deadline(p.first_arrival, self.timeout))
            .min()
    }

    /// Discard every datagram whose deadline is at or before `now`;
    /// returns how many (also counted in [`dropped_timeout`](Self::dropped_timeout)).
    pub fn expire(&mut self, now: SimTime) -> usize {
        let timeout = self.timeout;
        let before = self.partial.len();
        let mut freed = 0;
        self.partial.retain(|_, p| {
            let keep = now < deadline(p.first_arrival, timeout);
            if !keep {
                freed += p.buf.len() + PARTIAL_COST;
            }
            keep
        });
        self.held -= freed;
        let n = before - self.partial.len();
        self.dropped_timeout += n as u64;
        n
    }

    /// Accept one 802.15.4 frame payload from `link_src` to `link_dst` at
    /// `now`. An unfragmented IPHC datagram (or an uncompressed one,
    /// dispatch 0x41) is returned at once, decompressed; a fragment is
    /// stored, and the one that completes its datagram returns the whole
    /// uncompressed IPv6 datagram. Any other dispatch (NALP, mesh, …) is an
    /// error for the caller to route elsewhere.
    pub fn push(
        &mut self,
        now: SimTime,
        link_src: Address,
        link_dst: Address,
        payload: &[u8],
        ctx0: Option<Context>,
    ) -> Result<Option<Vec<u8>>, LowpanError> {
        let Some(&first) = payload.first() else {
            return Err(LowpanError::Truncated {
                what: "dispatch",
                need: 1,
                left: 0,
            });
        };
        match classify(first) {
            Dispatch::Iphc => {
                let mut out = Vec::new();
                iphc::decompress_packet(payload, link_src, link_dst, ctx0, None, &mut out)?;
                return Ok(Some(out));
            }
            Dispatch::Ipv6 => {
                let (ip, _) = Ipv6Repr::parse(&payload[1..])?;
                return Ok(Some(payload[1..1 + ip.total_len()].to_vec()));
            }
            Dispatch::Frag1 | Dispatch::FragN => {}
            _ => {
                return Err(LowpanError::Dispatch {
                    byte: first,
                    expected: "IPHC, IPv6 or a fragment header",
                })
            }
        }
        let (h, rest) = FragHeader::parse(payload)?;
        let size = usize::from(h.size);
        // A datagram holds at least an IPv6 header, and only FRAG1 starts
        // it: so a completed datagram always begins with the header FRAG1
        // decompressed (a FRAGN's data starts at byte 8 or later).
        if size < HEADER_LEN || h.offset == Some(0) {
            return Err(LowpanError::Inconsistent {
                start: h.offset.map_or(0, usize::from),
                end: HEADER_LEN,
                size,
            });
        }
        let (start, data): (usize, std::borrow::Cow<'_, [u8]>) = match h.offset {
            None => {
                let mut out = Vec::new();
                match classify(rest.first().copied().unwrap_or(0)) {
                    Dispatch::Ipv6 => out.extend_from_slice(&rest[1..]),
                    _ => {
                        iphc::decompress_packet(
                            rest,
                            link_src,
                            link_dst,
                            ctx0,
                            Some(size),
                            &mut out,
                        )?;
                    }
                }
                (0, out.into())
            }
            Some(o) => (usize::from(o), rest.into()),
        };
        let key = Key {
            src: addr_key(link_src),
            dst: addr_key(link_dst),
            size: h.size,
            tag: h.tag,
        };
        // A datagram past its deadline is gone: this fragment starts anew.
        if self
            .partial
            .get(&key)
            .is_some_and(|p| now >= deadline(p.first_arrival, self.timeout))
        {
            self.remove(&key);
            self.dropped_timeout += 1;
        }
        if !self.partial.contains_key(&key) {
            let need = size + PARTIAL_COST;
            if self.partial.len() >= self.max_pending || self.held + need > self.max_bytes {
                self.dropped_over_budget += 1;
                return Err(LowpanError::OverBudget {
                    pending: self.partial.len(),
                    held: self.held,
                    need,
                });
            }
            self.held += need;
            self.partial.insert(
                key,
                Partial {
                    first_arrival: now,
                    buf: vec![0; size],
                    have: Vec::new(),
                },
            );
        }
        let end = start + data.len();
        if end > size {
            self.remove(&key);
            self.dropped_inconsistent += 1;
            return Err(LowpanError::Inconsistent { start, end, size });
        }
        let done = match self.partial.get_mut(&key) {
            Some(p) => {
                if !data.is_empty() {
                    // end <= size = buf.len(), checked above.
                    fill_holes(&mut p.buf, &mut p.have, start, &data);
                }
                p.have == [(0, size)]
            }
            None => false,
        };
        if done {
            return Ok(self.remove(&key).map(|p| p.buf));
        }
        Ok(None)
    }

    fn remove(&mut self, key: &Key) -> Option<Partial> {
        let p = self.partial.remove(key)?;
        self.held -= p.buf.len() + PARTIAL_COST;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ipv6::{build_ipv6_udp, link_local_from_short};

    fn secs(s: u64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    const A: Address = Address::Short(1);
    const B: Address = Address::Short(2);

    /// A 300-byte-payload UDP datagram, compressed for A → B.
    fn datagram(len: usize) -> (Vec<u8>, Vec<u8>, usize, usize) {
        let ip = Ipv6Repr {
            src: link_local_from_short(1),
            dst: link_local_from_short(2),
            next_header: 17,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 0,
        };
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut pkt = Vec::new();
        build_ipv6_udp(&mut pkt, &ip, 5683, 5683, &payload).expect("build");
        let mut c = Vec::new();
        let (hc, hu) = iphc::compress_packet(&pkt, A, B, None, &mut c).expect("compress");
        (pkt, c, hc, hu)
    }

    #[test]
    fn header_bytes() {
        let mut b = Vec::new();
        FragHeader {
            size: 348,
            tag: 0xBEEF,
            offset: None,
        }
        .emit(&mut b)
        .expect("emit");
        // 11000 + 348 (0b001_0101_1100) = 0xC15C.
        assert_eq!(b, [0xC1, 0x5C, 0xBE, 0xEF]);
        let mut n = Vec::new();
        let h = FragHeader {
            size: 348,
            tag: 0xBEEF,
            offset: Some(104),
        };
        h.emit(&mut n).expect("emit");
        assert_eq!(n, [0xE1, 0x5C, 0xBE, 0xEF, 13]);
        assert_eq!(FragHeader::parse(&n), Ok((h, &[][..])));
        assert!(FragHeader::parse(&n[..4]).is_err());
        assert!(FragHeader::parse(&[0x7A, 0x33, 0, 0]).is_err());
        assert!(FragHeader {
            offset: Some(12),
            ..h
        }
        .emit(&mut Vec::new())
        .is_err());
    }

    #[test]
    fn fragments_cover_multiples_of_eight_and_reassemble_in_any_order() {
        let (pkt, c, hc, hu) = datagram(300);
        assert_eq!((hc, hu), (9, 48));
        let frames = fragment(&c, hc, hu, 116, 7).expect("fragment");
        assert!(frames.len() >= 3);
        let mut covered = 0;
        for (i, f) in frames.iter().enumerate() {
            assert!(f.len() <= 116);
            let (h, rest) = FragHeader::parse(f).expect("header");
            assert_eq!((usize::from(h.size), h.tag), (pkt.len(), 7));
            let n = if i == 0 {
                assert_eq!(h.offset, None);
                hu + rest.len() - hc
            } else {
                assert_eq!(h.offset, Some(covered as u16));
                rest.len()
            };
            covered += n;
            if i + 1 < frames.len() {
                assert_eq!(covered % 8, 0, "fragment {i} covers {n} bytes");
            }
        }
        assert_eq!(covered, pkt.len());
        assert_eq!(frames.len(), 3);
        let orders = [
            [0, 1, 2],
            [2, 1, 0],
            [1, 0, 2],
            [2, 0, 1],
            [1, 2, 0],
            [0, 2, 1],
        ];
        for idx in orders {
            let mut r = Reassembler::new(DEFAULT_TIMEOUT);
            let mut got = None;
            for (k, &i) in idx.iter().enumerate() {
                let d = r.push(SimTime::ZERO, A, B, &frames[i], None).expect("push");
                assert_eq!(d.is_some(), k == 2, "order {idx:?}");
                got = got.or(d);
            }
            assert_eq!(got.as_deref(), Some(&pkt[..]), "order {idx:?}");
            assert_eq!((r.pending(), r.held_bytes()), (0, 0));
        }
    }

    #[test]
    fn a_lost_fragment_times_out_and_is_counted() {
        let (_, c, hc, hu) = datagram(300);
        let frames = fragment(&c, hc, hu, 116, 9).expect("fragment");
        let mut r = Reassembler::new(SimDuration::from_secs(5));
        for f in frames.iter().skip(1) {
            assert_eq!(r.push(SimTime::ZERO, A, B, f, None), Ok(None));
        }
        assert_eq!(r.pending(), 1);
        assert_eq!(r.next_expiry(), Some(secs(5)));
        assert_eq!(r.expire(secs(4)), 0);
        assert_eq!(r.expire(secs(5)), 1);
        assert_eq!(
            (r.dropped_timeout(), r.pending(), r.held_bytes()),
            (1, 0, 0)
        );
        // The missing first fragment arriving late does not complete it.
        assert_eq!(r.push(secs(6), A, B, &frames[0], None), Ok(None));
        // Late fragments for an expired (not yet swept) datagram start anew.
        let mut r = Reassembler::new(SimDuration::from_secs(5));
        assert_eq!(r.push(SimTime::ZERO, A, B, &frames[1], None), Ok(None));
        assert_eq!(r.push(secs(5), A, B, &frames[0], None), Ok(None));
        assert_eq!(r.dropped_timeout(), 1);
    }

    #[test]
    fn bounds_and_inconsistency() {
        let (_, c, hc, hu) = datagram(300);
        let frames = fragment(&c, hc, hu, 116, 5).expect("fragment");
        let mut r = Reassembler::new(DEFAULT_TIMEOUT).with_bounds(2, 10_000);
        for tag in 0..2u16 {
            let f = fragment(&c, hc, hu, 116, tag).expect("fragment");
            assert_eq!(r.push(SimTime::ZERO, A, B, &f[0], None), Ok(None));
        }
        assert!(matches!(
            r.push(SimTime::ZERO, A, B, &frames[1], None),
            Err(LowpanError::OverBudget { pending: 2, .. })
        ));
        assert_eq!(r.dropped_over_budget(), 1);
        let mut r = Reassembler::new(DEFAULT_TIMEOUT).with_bounds(10, 500);
        assert_eq!(r.push(SimTime::ZERO, A, B, &frames[0], None), Ok(None));
        assert!(r.held_bytes() <= 500);
        assert!(r.push(SimTime::ZERO, B, A, &frames[0], None).is_err());
        // Data past datagram_size discards the datagram.
        let mut r = Reassembler::new(DEFAULT_TIMEOUT);
        let mut bad = frames[1].clone();
        bad[4] = 250;
        assert!(matches!(
            r.push(SimTime::ZERO, A, B, &bad, None),
            Err(LowpanError::Inconsistent { .. })
        ));
        assert_eq!((r.dropped_inconsistent(), r.pending()), (1, 0));
        // A datagram smaller than an IPv6 header, and a FRAGN at offset 0.
        let tiny = [0xE0, 0x01, 0x7E, 0x01, 0x00, 0x12];
        assert!(matches!(
            r.push(SimTime::ZERO, A, B, &tiny, None),
            Err(LowpanError::Inconsistent { size: 1, .. })
        ));
        let mut at0 = frames[1].clone();
        at0[4] = 0;
        assert!(matches!(
            r.push(SimTime::ZERO, A, B, &at0, None),
            Err(LowpanError::Inconsistent { start: 0, .. })
        ));
        assert_eq!(r.pending(), 0);
        // Not 6LoWPAN at all.
        assert!(r.push(SimTime::ZERO, A, B, &[0x04, 1, 2], None).is_err());
        assert!(r.push(SimTime::ZERO, A, B, &[], None).is_err());
    }

    #[test]
    fn small_datagrams_and_tiny_frames() {
        let (pkt, c, hc, hu) = datagram(20);
        let frames = fragment(&c, hc, hu, 116, 0).expect("fits");
        assert_eq!((frames.len(), &frames[0]), (1, &c));
        let mut r = Reassembler::new(DEFAULT_TIMEOUT);
        assert_eq!(r.push(SimTime::ZERO, A, B, &c, None), Ok(Some(pkt)));
        assert!(matches!(
            fragment(&c, hc, hu, 12, 0),
            Err(LowpanError::FrameTooSmall { .. })
        ));
        let (_, big, hc, hu) = datagram(2000);
        assert!(matches!(
            fragment(&big, hc, hu, 100, 0),
            Err(LowpanError::DatagramTooLong { size: 2048 })
        ));
    }
}
