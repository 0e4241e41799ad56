//! IPv4 header (RFC 791 §3.1), without options.
//!
//! Read first: RFC 791 §3.1 (header format), §3.2 (fragmentation), RFC 1071 and
//! RFC 1624 (header checksum and its incremental update), RFC 1812 §5.3.1 (TTL).
//!
//! Two layers, as in smoltcp's `wire`: [`Ipv4Packet`], a checked view over
//! bytes, and [`Ipv4Repr`], the parsed header with `parse` / `buffer_len` /
//! `emit`. No-panic rule: any byte slice may be parsed; short or garbled input
//! gives a [`WireError`], never a panic or an out-of-bounds index. Options
//! (IHL > 5) are rejected: nothing in the simulator sends them.
//!
//! Simulated nodes are numbered from 0 and addressed from 10.0.0.1 upward
//! ([`node_addr`], [`addr_node`]).

use super::checksum;
use super::wire::{Layer, WireError};
use std::net::Ipv4Addr;

/// IP protocol number of TCP (RFC 793).
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP (RFC 768).
pub const PROTO_UDP: u8 = 17;
/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest total length the 16-bit field can express.
pub const MAX_TOTAL_LEN: usize = 65535;
/// Largest fragment offset in bytes (13-bit field of 8-byte units).
pub const MAX_FRAG_OFFSET: u16 = 0x1FFF * 8;

const FLAG_RESERVED: u8 = 0x80;
const FLAG_DF: u8 = 0x40;
const FLAG_MF: u8 = 0x20;

/// First address of the simulated network: node `i` is `BASE + i + 1`.
const BASE: u32 = u32::from_be_bytes([10, 0, 0, 0]);
/// Nodes fit in 10.0.0.0/8 minus network and broadcast addresses.
const MAX_NODES: usize = (1 << 24) - 2;

/// Address of node `index`: node 0 is 10.0.0.1, node 1 is 10.0.0.2, …
/// Indices beyond the /8 (16,777,214 nodes) saturate at 10.255.255.254;
/// scenario limits keep node counts far below that.
pub fn node_addr(index: usize) -> Ipv4Addr {
    let i = index.min(MAX_NODES - 1) as u32;
    Ipv4Addr::from(BASE + i + 1)
}

/// Whether an IPv4 packet (or fragment) carries TCP.
pub fn carries_tcp(packet: &[u8]) -> bool {
    packet.len() > 9 && packet[0] >> 4 == 4 && packet[9] == PROTO_TCP
}

/// Inverse of [`node_addr`]: `None` for addresses outside 10.0.0.1–10.255.255.254.
pub fn addr_node(addr: Ipv4Addr) -> Option<usize> {
    let a = u32::from(addr);
    let off = a.checked_sub(BASE)?;
    if off == 0 || off as usize > MAX_NODES {
        return None;
    }
    Some(off as usize - 1)
}

/// Read-only view of an IPv4 packet whose header and total length were checked.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap `buf` after checking it holds a 20-byte header with version 4,
    /// IHL 5 and a total length in `[20, buf.len()]`. Bytes after the total
    /// length (link padding) are ignored by [`payload`](Self::payload).
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                layer: Layer::Ipv4,
                need: HEADER_LEN,
                len: b.len(),
            });
        }
        let version = b[0] >> 4;
        if version != 4 {
            return Err(WireError::BadVersion(version));
        }
        let ihl = b[0] & 0x0F;
        if ihl != 5 {
            return Err(WireError::UnsupportedHeaderLen(ihl));
        }
        let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if total < HEADER_LEN || total > b.len() {
            return Err(WireError::BadLength {
                layer: Layer::Ipv4,
                field: total,
                len: b.len(),
                header: HEADER_LEN,
            });
        }
        Ok(Ipv4Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    fn be16(&self, at: usize) -> u16 {
        let b = self.b();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    /// Type of service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.b()[1]
    }
    /// Total length field: header plus payload.
    pub fn total_len(&self) -> u16 {
        self.be16(2)
    }
    /// Identification field.
    pub fn ident(&self) -> u16 {
        self.be16(4)
    }
    /// The reserved flag bit (must be zero, RFC 791 §3.1).
    pub fn reserved_flag(&self) -> bool {
        self.b()[6] & FLAG_RESERVED != 0
    }
    /// Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.b()[6] & FLAG_DF != 0
    }
    /// More Fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.b()[6] & FLAG_MF != 0
    }
    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.be16(6) & 0x1FFF) * 8
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[8]
    }
    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        self.b()[9]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(10)
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// True when the header checksum verifies (RFC 791 §3.1, RFC 1071).
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.b()[..HEADER_LEN]) == 0
    }
    /// The payload: bytes from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..usize::from(self.total_len())]
    }
    /// The packet bytes up to the total length (trailing padding dropped).
    pub fn packet(&self) -> &[u8] {
        &self.b()[..usize::from(self.total_len())]
    }
}

/// A parsed IPv4 header (no options, DSCP/ECN 0 on emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Payload protocol, e.g. [`PROTO_UDP`].
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Offset of this fragment's payload in the original datagram, in bytes;
    /// a multiple of 8, at most [`MAX_FRAG_OFFSET`].
    pub frag_offset: u16,
    /// Payload bytes following the header.
    pub payload_len: u16,
}

impl Ipv4Repr {
    /// Header length (options are not supported).
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Parse a packet: checks version 4, IHL 5, total length against the
    /// buffer, the reserved flag and the header checksum. Returns the header
    /// and the payload (up to the total length; trailing padding is ignored).
    pub fn parse(buf: &[u8]) -> Result<(Ipv4Repr, &[u8]), WireError> {
        let p = Ipv4Packet::new_checked(buf)?;
        // RFC 791 §3.1: the checksum field is computed over the header with
        // the field itself counted; a valid header sums to 0xFFFF.
        if !p.verify_checksum() {
            return Err(WireError::BadChecksum {
                layer: Layer::Ipv4,
                sum: checksum::fold(checksum::accumulate(0, &buf[..HEADER_LEN])),
            });
        }
        // RFC 791 §3.1: "Bit 0: reserved, must be zero".
        if p.reserved_flag() {
            return Err(WireError::ReservedFlag);
        }
        let total = p.total_len();
        let repr = Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_fragment: p.dont_fragment(),
            more_fragments: p.more_fragments(),
            frag_offset: p.frag_offset(),
            payload_len: total - HEADER_LEN as u16,
        };
        Ok((repr, &buf[HEADER_LEN..usize::from(total)]))
    }

    /// Bytes `emit` writes: the header only.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload, as in the total length field.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len)
    }

    /// True when this header describes a fragment (MF set or offset > 0).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// Write the 20-byte header into `buf[..20]` with a correct checksum.
    /// The payload is the caller's to write after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let total = self.total_len();
        if total > MAX_TOTAL_LEN {
            return Err(WireError::TooLong {
                layer: Layer::Ipv4,
                len: total,
            });
        }
        // RFC 791 §3.1: the offset field counts 8-octet units in 13 bits.
        if !self.frag_offset.is_multiple_of(8) || self.frag_offset > MAX_FRAG_OFFSET {
            return Err(WireError::BadFragOffset(self.frag_offset));
        }
        let Some(h) = buf.get_mut(..HEADER_LEN) else {
            return Err(WireError::BufferTooSmall {
                layer: Layer::Ipv4,
                need: HEADER_LEN,
                len: buf.len(),
            });
        };
        let mut flags_off = self.frag_offset / 8;
        if self.dont_fragment {
            flags_off |= u16::from(FLAG_DF) << 8;
        }
        if self.more_fragments {
            flags_off |= u16::from(FLAG_MF) << 8;
        }
        h[0] = 0x45; // version 4, IHL 5
        h[1] = 0; // DSCP 0, ECN 0
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6..8].copy_from_slice(&flags_off.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}

/// Destination address of a raw packet, without verifying anything but the
/// length (forwarding hot path). `None` when shorter than a header.
pub fn dst_of(packet: &[u8]) -> Option<Ipv4Addr> {
    let d = packet.get(16..20)?;
    Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

/// Source address of a raw packet; `None` when shorter than a header.
pub fn src_of(packet: &[u8]) -> Option<Ipv4Addr> {
    let s = packet.get(12..16)?;
    Some(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
}

/// Total length field of a raw packet; `None` when shorter than 4 bytes.
pub fn total_len_of(packet: &[u8]) -> Option<u16> {
    let t = packet.get(2..4)?;
    Some(u16::from_be_bytes([t[0], t[1]]))
}

/// Decrement the TTL of a raw packet in place and patch the header checksum
/// incrementally (RFC 1624 §3; RFC 1812 §5.3.1 for the decrement itself).
/// Returns the new TTL; the caller discards the packet when it is 0
/// (RFC 1812 §5.3.1: a router must not forward a packet whose TTL reaches 0).
/// Fails if the packet is shorter than a header or its TTL is already 0.
pub fn decrement_ttl(packet: &mut [u8]) -> Result<u8, WireError> {
    let len = packet.len();
    let Some(h) = packet.get_mut(..HEADER_LEN) else {
        return Err(WireError::Truncated {
            layer: Layer::Ipv4,
            need: HEADER_LEN,
            len,
        });
    };
    let ttl = h[8];
    if ttl == 0 {
        return Err(WireError::TtlExpired);
    }
    let old_word = u16::from_be_bytes([h[8], h[9]]);
    h[8] = ttl - 1;
    let new_word = u16::from_be_bytes([h[8], h[9]]);
    let hc = u16::from_be_bytes([h[10], h[11]]);
    let c = checksum::update16(hc, old_word, new_word);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(ttl - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: PROTO_UDP,
            ttl: 64,
            ident: 0x1234,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 12,
        }
    }

    #[test]
    fn node_addresses_start_at_10_0_0_1() {
        assert_eq!(node_addr(0), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(node_addr(255), Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(addr_node(Ipv4Addr::new(10, 0, 1, 0)), Some(255));
        assert_eq!(addr_node(Ipv4Addr::new(10, 0, 0, 0)), None);
        assert_eq!(addr_node(Ipv4Addr::new(10, 255, 255, 255)), None);
        assert_eq!(addr_node(Ipv4Addr::new(9, 255, 255, 255)), None);
        assert_eq!(addr_node(Ipv4Addr::new(11, 0, 0, 1)), None);
        for i in [0usize, 1, 253, 254, 65_535, MAX_NODES - 1] {
            assert_eq!(addr_node(node_addr(i)), Some(i));
        }
    }

    #[test]
    fn parse_rejects_each_malformation() {
        let mut b = [0u8; 32];
        sample().emit(&mut b).expect("emit");
        assert!(Ipv4Repr::parse(&b).is_ok());
        let mut v = b;
        v[0] = 0x65;
        assert_eq!(Ipv4Repr::parse(&v), Err(WireError::BadVersion(6)));
        let mut v = b;
        v[0] = 0x46;
        assert_eq!(Ipv4Repr::parse(&v), Err(WireError::UnsupportedHeaderLen(6)));
        let mut v = b;
        v[3] = 33;
        assert!(matches!(
            Ipv4Repr::parse(&v),
            Err(WireError::BadLength { field: 33, .. })
        ));
        let mut v = b;
        v[3] = 19;
        assert!(matches!(
            Ipv4Repr::parse(&v),
            Err(WireError::BadLength { field: 19, .. })
        ));
        let mut v = b;
        v[8] = 63;
        assert!(matches!(
            Ipv4Repr::parse(&v),
            Err(WireError::BadChecksum { .. })
        ));
        assert!(matches!(
            Ipv4Repr::parse(&b[..19]),
            Err(WireError::Truncated { len: 19, .. })
        ));
        // Reserved flag set with a valid checksum.
        let mut v = b;
        v[6] |= 0x80;
        v[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&v[..20]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&v), Err(WireError::ReservedFlag));
    }

    #[test]
    fn trailing_padding_is_not_payload() {
        let mut b = [0xEEu8; 40];
        sample().emit(&mut b).expect("emit");
        let (_, payload) = Ipv4Repr::parse(&b).expect("parse");
        assert_eq!(payload.len(), 12);
    }

    #[test]
    fn emit_rejects_bad_fields() {
        let mut b = [0u8; 20];
        let mut r = sample();
        r.frag_offset = 12;
        assert_eq!(r.emit(&mut b), Err(WireError::BadFragOffset(12)));
        let mut r = sample();
        r.payload_len = 65516;
        assert!(matches!(
            r.emit(&mut b),
            Err(WireError::TooLong { len: 65536, .. })
        ));
        assert!(matches!(
            sample().emit(&mut b[..19]),
            Err(WireError::BufferTooSmall {
                need: 20,
                len: 19,
                ..
            })
        ));
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut b = [0u8; 32];
        let mut r = sample();
        r.ttl = 2;
        r.emit(&mut b).expect("emit");
        assert_eq!(decrement_ttl(&mut b), Ok(1));
        assert_eq!(Ipv4Repr::parse(&b).map(|(r, _)| r.ttl), Ok(1));
        assert_eq!(decrement_ttl(&mut b), Ok(0));
        assert_eq!(Ipv4Repr::parse(&b).map(|(r, _)| r.ttl), Ok(0));
        assert_eq!(decrement_ttl(&mut b), Err(WireError::TtlExpired));
        assert!(matches!(
            decrement_ttl(&mut b[..10]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(dst_of(&b), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(src_of(&b), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(total_len_of(&b), Some(32));
        assert_eq!(dst_of(&b[..19]), None);
    }
}
