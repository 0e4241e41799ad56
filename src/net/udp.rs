//! UDP header (RFC 768) and the IPv4 pseudo-header checksum.
//!
//! Read first: RFC 768 (format, pseudo-header, "an all zero transmitted
//! checksum value means that the transmitter generated no checksum"),
//! RFC 1071 (the sum).
//!
//! Two layers, as in smoltcp's `wire`: [`UdpPacket`], a checked view over
//! bytes, and [`UdpRepr`] with `parse` / `buffer_len` / `emit`. No-panic rule:
//! any byte slice may be parsed; short or garbled input gives a [`WireError`],
//! never a panic or an out-of-bounds index.

use super::checksum;
use super::ip::{self, Ipv4Repr, PROTO_UDP};
use super::wire::{Layer, WireError};
use std::net::Ipv4Addr;

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Largest UDP length (header plus payload) the 16-bit field can express.
pub const MAX_LEN: usize = 65535;

/// Read-only view of a UDP datagram whose length field was checked.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap `buf` after checking it holds an 8-byte header and a length field
    /// in `[8, buf.len()]`; bytes past the length field are ignored.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                layer: Layer::Udp,
                need: HEADER_LEN,
                len: b.len(),
            });
        }
        let field = usize::from(u16::from_be_bytes([b[4], b[5]]));
        // RFC 768: "Length is the length in octets of this user datagram
        // including this header and the data. (This means the minimum value
        // of the length is eight.)"
        if field < HEADER_LEN || field > b.len() {
            return Err(WireError::BadLength {
                layer: Layer::Udp,
                field,
                len: b.len(),
                header: HEADER_LEN,
            });
        }
        Ok(UdpPacket { buf })
    }

    fn be16(&self, at: usize) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.be16(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(2)
    }
    /// Length field: header plus payload.
    pub fn length(&self) -> u16 {
        self.be16(4)
    }
    /// Checksum field (0 means the sender computed none).
    pub fn checksum(&self) -> u16 {
        self.be16(6)
    }
    /// The datagram up to its length field.
    pub fn datagram(&self) -> &[u8] {
        &self.buf.as_ref()[..usize::from(self.length())]
    }
    /// The payload up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[HEADER_LEN..]
    }
    /// True when the checksum field is 0 or the pseudo-header sum verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || sum(src, dst, self.datagram()) == 0xFFFF
    }
}

/// One's complement sum of pseudo-header and datagram (RFC 768), folded.
fn sum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    // The datagram length fits in u16: callers pass at most MAX_LEN bytes.
    let len = datagram.len().min(MAX_LEN) as u16;
    let acc = checksum::pseudo_header_sum(src, dst, PROTO_UDP, len);
    checksum::fold(checksum::accumulate(acc, datagram))
}

/// A parsed UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    /// Payload bytes after the 8-byte header.
    pub payload_len: u16,
}

impl UdpRepr {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Parse a datagram carried from `src` to `dst`: checks the length field
    /// and, unless it is 0, the checksum. Returns the header and the payload.
    pub fn parse(buf: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(UdpRepr, &[u8]), WireError> {
        Self::parse_with(buf, checksum::PseudoAddrs::v4(src, dst), false)
    }

    /// [`UdpRepr::parse`] for either family: `pseudo` from the network
    /// layer; `required` refuses a zero checksum field (IPv6, RFC 8200 §8.1)
    /// where IPv4 takes it as "no checksum" (RFC 768).
    pub fn parse_with(
        buf: &[u8],
        pseudo: checksum::PseudoAddrs,
        required: bool,
    ) -> Result<(UdpRepr, &[u8]), WireError> {
        let p = UdpPacket::new_checked(buf)?;
        if p.checksum() == 0 && required {
            return Err(WireError::ZeroUdpChecksumV6);
        }
        let dg = p.datagram();
        let len = u32::try_from(dg.len()).unwrap_or(u32::MAX);
        let s = checksum::fold(checksum::accumulate(pseudo.sum(PROTO_UDP, len), dg));
        if p.checksum() != 0 && s != 0xFFFF {
            return Err(WireError::BadChecksum {
                layer: Layer::Udp,
                sum: s,
            });
        }
        let len = usize::from(p.length());
        let repr = UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.length() - HEADER_LEN as u16,
        };
        Ok((repr, &buf[HEADER_LEN..len]))
    }

    /// Bytes `emit` writes: header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len)
    }

    /// Write header and `payload` into `buf[..buffer_len()]` with the RFC 768
    /// checksum over the pseudo-header for `src` → `dst`. A computed checksum
    /// of 0 is transmitted as 0xFFFF (RFC 768: "If the computed checksum is
    /// zero, it is transmitted as all ones").
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<(), WireError> {
        if payload.len() != usize::from(self.payload_len) {
            return Err(WireError::PayloadMismatch {
                layer: Layer::Udp,
                declared: usize::from(self.payload_len),
                actual: payload.len(),
            });
        }
        let len = self.buffer_len();
        if len > MAX_LEN {
            return Err(WireError::TooLong {
                layer: Layer::Udp,
                len,
            });
        }
        let buf_len = buf.len();
        let Some(d) = buf.get_mut(..len) else {
            return Err(WireError::BufferTooSmall {
                layer: Layer::Udp,
                need: len,
                len: buf_len,
            });
        };
        d[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        d[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        d[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        d[6..8].copy_from_slice(&[0, 0]);
        d[HEADER_LEN..].copy_from_slice(payload);
        let c = match !sum(src, dst, d) {
            0 => 0xFFFF,
            c => c,
        };
        d[6..8].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}

/// Clear `out` and fill it with a complete IPv4 + UDP packet carrying
/// `payload` from `udp_src` to `udp_dst`. The IPv4 header is `ip` with
/// `protocol` set to UDP and `payload_len` set to 8 + `payload.len()`.
/// Reuses `out`'s allocation: nothing is allocated when its capacity is
/// enough. On error `out` is left empty.
pub fn build_ipv4_udp(
    out: &mut Vec<u8>,
    ip: &Ipv4Repr,
    udp_src: u16,
    udp_dst: u16,
    payload: &[u8],
) -> Result<(), WireError> {
    out.clear();
    let udp_len = HEADER_LEN + payload.len();
    let total = ip::HEADER_LEN + udp_len;
    if total > ip::MAX_TOTAL_LEN {
        return Err(WireError::TooLong {
            layer: Layer::Ipv4,
            len: total,
        });
    }
    let ip_repr = Ipv4Repr {
        protocol: PROTO_UDP,
        payload_len: udp_len as u16,
        ..*ip
    };
    let udp = UdpRepr {
        src_port: udp_src,
        dst_port: udp_dst,
        payload_len: payload.len() as u16,
    };
    out.resize(total, 0);
    let result = ip_repr.emit(out).and_then(|()| {
        udp.emit(
            &mut out[ip::HEADER_LEN..],
            ip_repr.src,
            ip_repr.dst,
            payload,
        )
    });
    if result.is_err() {
        out.clear();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn zero_checksum_is_accepted_unverified() {
        let d = [0xC0, 0x00, 0x00, 0x09, 0x00, 0x0A, 0x00, 0x00, 0xAB, 0xCD];
        let (r, p) = UdpRepr::parse(&d, A, B).expect("no checksum");
        assert_eq!((r.src_port, r.dst_port, r.payload_len), (49152, 9, 2));
        assert_eq!(p, &[0xAB, 0xCD]);
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Find a payload whose checksum computes to 0: choose the last 16-bit
        // word so that the sum folds to 0xFFFF.
        let r = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 2,
        };
        let mut buf = [0u8; 10];
        r.emit(&mut buf, A, B, &[0, 0]).expect("emit");
        let c = u16::from_be_bytes([buf[6], buf[7]]);
        // Put the would-be checksum into the payload instead: the sum is then 0xFFFF.
        let payload = c.to_be_bytes();
        r.emit(&mut buf, A, B, &payload).expect("emit");
        assert_eq!(&buf[6..8], &[0xFF, 0xFF]);
        assert!(UdpRepr::parse(&buf, A, B).is_ok());
    }

    #[test]
    fn parse_rejects_bad_length_and_checksum() {
        let r = UdpRepr {
            src_port: 5683,
            dst_port: 5683,
            payload_len: 3,
        };
        let mut buf = [0u8; 11];
        r.emit(&mut buf, A, B, b"abc").expect("emit");
        assert!(UdpRepr::parse(&buf, A, B).is_ok());
        // Wrong pseudo-header (other destination) fails the checksum.
        assert!(matches!(
            UdpRepr::parse(&buf, A, Ipv4Addr::new(10, 0, 0, 3)),
            Err(WireError::BadChecksum { .. })
        ));
        let mut v = buf;
        v[5] = 7;
        assert!(matches!(
            UdpRepr::parse(&v, A, B),
            Err(WireError::BadLength { field: 7, .. })
        ));
        let mut v = buf;
        v[5] = 12;
        assert!(matches!(
            UdpRepr::parse(&v, A, B),
            Err(WireError::BadLength { field: 12, .. })
        ));
        assert!(matches!(
            UdpRepr::parse(&buf[..7], A, B),
            Err(WireError::Truncated { .. })
        ));
        let mut v = buf;
        v[10] ^= 1;
        assert!(matches!(
            UdpRepr::parse(&v, A, B),
            Err(WireError::BadChecksum { .. })
        ));
    }

    #[test]
    fn emit_checks_payload_and_buffer() {
        let r = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 4,
        };
        let mut buf = [0u8; 11];
        assert!(matches!(
            r.emit(&mut buf, A, B, b"abc"),
            Err(WireError::PayloadMismatch {
                declared: 4,
                actual: 3,
                ..
            })
        ));
        assert!(matches!(
            r.emit(&mut buf, A, B, b"abcd"),
            Err(WireError::BufferTooSmall {
                need: 12,
                len: 11,
                ..
            })
        ));
    }

    #[test]
    fn build_reuses_the_buffer() {
        let ip = Ipv4Repr {
            src: A,
            dst: B,
            protocol: 0,
            ttl: 64,
            ident: 7,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 0,
        };
        let mut out = Vec::with_capacity(128);
        let cap_ptr = out.as_ptr();
        build_ipv4_udp(&mut out, &ip, 49152, 9, b"hello").expect("build");
        assert_eq!(out.len(), 20 + 8 + 5);
        assert_eq!(out.as_ptr(), cap_ptr, "no reallocation");
        let (iph, udp_bytes) = Ipv4Repr::parse(&out).expect("ip");
        assert_eq!(iph.protocol, PROTO_UDP);
        assert_eq!(iph.payload_len, 13);
        let (u, p) = UdpRepr::parse(udp_bytes, A, B).expect("udp");
        assert_eq!((u.src_port, u.dst_port, p), (49152, 9, &b"hello"[..]));
        let big = vec![0u8; 65_508];
        assert!(matches!(
            build_ipv4_udp(&mut out, &ip, 1, 2, &big),
            Err(WireError::TooLong { len: 65_536, .. })
        ));
        assert!(out.is_empty());
    }
}
