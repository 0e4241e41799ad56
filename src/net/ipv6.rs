//! IPv6 header (RFC 8200 §3), the Fragment extension header (§4.5), the
//! transport checksum over the IPv6 pseudo-header (§8.1) and the link-local
//! address scheme of the 802.15.4 medium (RFC 4944 §6, RFC 6282 §3.2.2).
//!
//! Read first: RFC 8200 §3 (header format), §4.5 (Fragment header), §8.1
//! (upper-layer checksums: the pseudo-header, and "IPv6 receivers must
//! discard UDP packets containing a zero checksum"); RFC 4291 §2.5.1 and
//! Appendix A (interface identifiers from EUI-64, the U/L bit).
//!
//! Same conventions as [`super::ip`]: `Ipv6Repr::parse` accepts any byte
//! slice and returns a [`WireError`] for short or garbled input, never a
//! panic; bytes past the payload length (link padding) are ignored. No other
//! extension header than the Fragment header is modelled.
//!
//! The codec is not yet used by the simulated world, which still carries
//! IPv4 on every link (see `docs/sixlowpan.md`).

use super::checksum::{self, PseudoAddrs};
use super::ip::PROTO_UDP;
use super::udp::{UdpRepr, HEADER_LEN as UDP_HEADER_LEN};
use super::wire::{Layer, WireError};
use std::net::Ipv6Addr;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Length of the Fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;
/// Next Header value of the Fragment header (RFC 8200 §4.5).
pub const NEXT_HEADER_FRAGMENT: u8 = 44;
/// Largest payload length the 16-bit field expresses (jumbograms are not
/// modelled).
pub const MAX_PAYLOAD_LEN: usize = 65535;
/// Minimum link MTU of IPv6 (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Largest flow label (20 bits).
pub const MAX_FLOW_LABEL: u32 = 0xF_FFFF;

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// Type of the header after this one, e.g. [`PROTO_UDP`] or
    /// [`NEXT_HEADER_FRAGMENT`].
    pub next_header: u8,
    pub hop_limit: u8,
    /// DSCP (high 6 bits) and ECN (low 2 bits), as on the wire.
    pub traffic_class: u8,
    /// 20-bit flow label.
    pub flow_label: u32,
    /// Bytes after the fixed header (extension headers included).
    pub payload_len: u16,
}

impl Ipv6Repr {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Parse a packet: checks the version and the payload length against
    /// the buffer. Returns the header and the payload (up to the payload
    /// length; trailing padding is ignored).
    pub fn parse(buf: &[u8]) -> Result<(Ipv6Repr, &[u8]), WireError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(WireError::Truncated {
                layer: Layer::Ipv6,
                need: HEADER_LEN,
                len: buf.len(),
            });
        };
        let version = h[0] >> 4;
        if version != 6 {
            return Err(WireError::BadIpv6Version(version));
        }
        let payload_len = u16::from_be_bytes([h[4], h[5]]);
        let end = HEADER_LEN + usize::from(payload_len);
        let Some(payload) = buf.get(HEADER_LEN..end) else {
            return Err(WireError::BadLength {
                layer: Layer::Ipv6,
                field: usize::from(payload_len),
                len: buf.len(),
                header: HEADER_LEN,
            });
        };
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[8..24]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[24..40]);
        let repr = Ipv6Repr {
            src: Ipv6Addr::from(a),
            dst: Ipv6Addr::from(b),
            next_header: h[6],
            hop_limit: h[7],
            traffic_class: ((word >> 20) & 0xFF) as u8,
            flow_label: word & MAX_FLOW_LABEL,
            payload_len,
        };
        Ok((repr, payload))
    }

    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len)
    }

    /// Append the 40-byte header to `buf` (the payload is the caller's to
    /// append). Fails, appending nothing, when the flow label passes 20 bits.
    pub fn emit(&self, buf: &mut Vec<u8>) -> Result<(), WireError> {
        buf.extend_from_slice(&self.header_bytes()?);
        Ok(())
    }

    /// The 40-byte header, for writing in place without a `Vec`. Fails when
    /// the flow label passes 20 bits.
    pub fn header_bytes(&self) -> Result<[u8; HEADER_LEN], WireError> {
        if self.flow_label > MAX_FLOW_LABEL {
            return Err(WireError::BadFlowLabel(self.flow_label));
        }
        let word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&word.to_be_bytes());
        h[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        h[6] = self.next_header;
        h[7] = self.hop_limit;
        h[8..24].copy_from_slice(&self.src.octets());
        h[24..40].copy_from_slice(&self.dst.octets());
        Ok(h)
    }
}

/// The Fragment extension header (RFC 8200 §4.5):
/// `Next Header(1) Reserved(1) Offset(13 bits) Res(2) M(1) Identification(4)`.
/// The reserved fields are sent as zero and ignored on receipt, as the RFC
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragRepr {
    /// Type of the header of the fragmentable part.
    pub next_header: u8,
    /// Offset of this fragment's data in the fragmentable part, in bytes (a
    /// multiple of 8, at most 65528; the field counts 8-byte units).
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    pub ident: u32,
}

impl Ipv6FragRepr {
    /// Length of the header.
    pub const HEADER_LEN: usize = FRAG_HEADER_LEN;

    /// Parse a Fragment header; returns it and the fragment data after it.
    pub fn parse(buf: &[u8]) -> Result<(Ipv6FragRepr, &[u8]), WireError> {
        let Some(h) = buf.get(..FRAG_HEADER_LEN) else {
            return Err(WireError::Truncated {
                layer: Layer::Ipv6Fragment,
                need: FRAG_HEADER_LEN,
                len: buf.len(),
            });
        };
        let off_m = u16::from_be_bytes([h[2], h[3]]);
        let repr = Ipv6FragRepr {
            next_header: h[0],
            offset: off_m & !0b111,
            more: off_m & 1 != 0,
            ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        };
        Ok((repr, &buf[FRAG_HEADER_LEN..]))
    }

    /// Append the 8-byte header to `buf`; fails, appending nothing, when
    /// the offset is not a multiple of 8.
    pub fn emit(&self, buf: &mut Vec<u8>) -> Result<(), WireError> {
        if !self.offset.is_multiple_of(8) {
            return Err(WireError::BadIpv6FragOffset(self.offset));
        }
        // The offset's 13-bit unit count sits in the high bits; the two
        // reserved bits stay 0.
        let off_m = self.offset | u16::from(self.more);
        buf.push(self.next_header);
        buf.push(0);
        buf.extend_from_slice(&off_m.to_be_bytes());
        buf.extend_from_slice(&self.ident.to_be_bytes());
        Ok(())
    }
}

/// The Internet checksum of a transport segment (`segment` with its
/// checksum field zeroed, or with it filled in to verify) over the IPv6
/// pseudo-header of RFC 8200 §8.1: source, destination, 32-bit
/// upper-layer length, three zero bytes and the next header value.
pub fn transport_checksum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, segment: &[u8]) -> u16 {
    // A segment passed the 32-bit length only on a 4 GiB slice; saturate.
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let acc = PseudoAddrs::v6(src, dst).sum(next_header, len);
    !checksum::fold(checksum::accumulate(acc, segment))
}

/// Parse a UDP datagram carried over IPv6 from `src` to `dst`: checks the
/// length field and the checksum, which IPv6 makes mandatory (a zero field
/// is an error, RFC 8200 §8.1). Returns the header, the checksum field and
/// the payload.
pub fn parse_udp(
    buf: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Result<(UdpRepr, u16, &[u8]), WireError> {
    let (repr, payload) = UdpRepr::parse_with(buf, PseudoAddrs::v6(src, dst), true)?;
    Ok((repr, u16::from_be_bytes([buf[6], buf[7]]), payload))
}

/// Append a UDP header with its IPv6 checksum and `payload` to `out`. A
/// computed checksum of 0 is sent as 0xFFFF (RFC 8200 §8.1). Returns the
/// checksum field.
pub fn emit_udp(
    out: &mut Vec<u8>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Result<u16, WireError> {
    let len = UDP_HEADER_LEN + payload.len();
    if len > super::udp::MAX_LEN {
        return Err(WireError::TooLong {
            layer: Layer::Udp,
            len,
        });
    }
    let start = out.len();
    out.extend_from_slice(&src_port.to_be_bytes());
    out.extend_from_slice(&dst_port.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let c = match transport_checksum(src, dst, PROTO_UDP, &out[start..]) {
        0 => 0xFFFF,
        c => c,
    };
    out[start + 6..start + 8].copy_from_slice(&c.to_be_bytes());
    Ok(c)
}

/// Clear `out` and fill it with a complete IPv6 + UDP packet carrying
/// `payload` from `udp_src` to `udp_dst` (the IPv6 counterpart of
/// [`super::udp::build_ipv4_udp`]). The header is `ip` with `next_header`
/// set to UDP and `payload_len` to 8 + `payload.len()`. On error `out` is
/// left empty.
pub fn build_ipv6_udp(
    out: &mut Vec<u8>,
    ip: &Ipv6Repr,
    udp_src: u16,
    udp_dst: u16,
    payload: &[u8],
) -> Result<(), WireError> {
    out.clear();
    let udp_len = UDP_HEADER_LEN + payload.len();
    if udp_len > MAX_PAYLOAD_LEN {
        return Err(WireError::TooLong {
            layer: Layer::Ipv6,
            len: HEADER_LEN + udp_len,
        });
    }
    let repr = Ipv6Repr {
        next_header: PROTO_UDP,
        payload_len: udp_len as u16,
        ..*ip
    };
    let result = repr
        .emit(out)
        .and_then(|()| emit_udp(out, repr.src, repr.dst, udp_src, udp_dst, payload).map(|_| ()));
    if result.is_err() {
        out.clear();
    }
    result
}

/// The link-local prefix fe80::/64 as its first 8 bytes.
pub const LINK_LOCAL_PREFIX: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];

/// Interface identifier of a 16-bit short 802.15.4 address:
/// `0000:00ff:fe00:XXXX` (RFC 6282 §3.2.2; RFC 4944 §6 builds the same
/// 48-bit pseudo-address with the PAN ID or zeros in the first 16 bits —
/// zeros are what IPHC derives, so only this form compresses away).
pub fn iid_from_short(short: u16) -> [u8; 8] {
    let s = short.to_be_bytes();
    [0, 0, 0, 0xff, 0xfe, 0, s[0], s[1]]
}

/// Interface identifier of a 64-bit extended address (EUI-64, written
/// most significant byte first): the EUI-64 with the U/L bit (0x02 of the
/// first byte) inverted (RFC 4944 §6, RFC 4291 Appendix A).
pub fn iid_from_ext(eui64: u64) -> [u8; 8] {
    (eui64 ^ (0x02 << 56)).to_be_bytes()
}

/// The address of `prefix` (its first 64 bits) and interface identifier `iid`.
pub fn addr_from_parts(prefix: [u8; 8], iid: [u8; 8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&prefix);
    a[8..].copy_from_slice(&iid);
    Ipv6Addr::from(a)
}

/// Link-local address of a node with 16-bit short address `short`:
/// `fe80::ff:fe00:XXXX` (see [`iid_from_short`]). This is the address
/// scheme of the medium: a node's link-local address is derived from its
/// MAC address so 6LoWPAN can elide it entirely.
pub fn link_local_from_short(short: u16) -> Ipv6Addr {
    addr_from_parts(LINK_LOCAL_PREFIX, iid_from_short(short))
}

/// Link-local address of a node with extended address `eui64`:
/// fe80::/64 and the EUI-64 with the U/L bit inverted (see [`iid_from_ext`]).
pub fn link_local_from_ext(eui64: u64) -> Ipv6Addr {
    addr_from_parts(LINK_LOCAL_PREFIX, iid_from_ext(eui64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Ipv6Repr {
        Ipv6Repr {
            src: link_local_from_short(1),
            dst: "2001:db8::2".parse().expect("addr"),
            next_header: PROTO_UDP,
            hop_limit: 64,
            traffic_class: 0xB8,
            flow_label: 0x12345,
            payload_len: 4,
        }
    }

    #[test]
    fn header_bytes_follow_rfc8200() {
        let mut b = Vec::new();
        sample().emit(&mut b).expect("emit");
        // 6 | B8 | 12345: 0110 1011 1000 0001 0010 0011 0100 0101
        assert_eq!(&b[..8], &[0x6B, 0x81, 0x23, 0x45, 0, 4, 17, 64]);
        assert_eq!(
            &b[8..24],
            &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 1]
        );
        b.extend_from_slice(&[1, 2, 3, 4, 0xEE]); // one byte of padding
        let (r, p) = Ipv6Repr::parse(&b).expect("parse");
        assert_eq!(r, sample());
        assert_eq!(p, &[1, 2, 3, 4]);
    }

    #[test]
    fn parse_rejects_each_malformation() {
        let mut b = Vec::new();
        sample().emit(&mut b).expect("emit");
        b.extend_from_slice(&[0; 4]);
        let mut v = b.clone();
        v[0] = 0x4B;
        assert_eq!(Ipv6Repr::parse(&v), Err(WireError::BadIpv6Version(4)));
        let mut v = b.clone();
        v[5] = 5;
        assert!(matches!(
            Ipv6Repr::parse(&v),
            Err(WireError::BadLength { field: 5, .. })
        ));
        assert!(matches!(
            Ipv6Repr::parse(&b[..39]),
            Err(WireError::Truncated { len: 39, .. })
        ));
        let mut r = sample();
        r.flow_label = 0x10_0000;
        let mut out = Vec::new();
        assert!(r.emit(&mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn fragment_header_layout() {
        let f = Ipv6FragRepr {
            next_header: PROTO_UDP,
            offset: 1232,
            more: true,
            ident: 0xDEAD_BEEF,
        };
        let mut b = Vec::new();
        f.emit(&mut b).expect("emit");
        // 1232 / 8 = 154 = 0x9A, shifted left 3 = 0x04D0, M = 1.
        assert_eq!(b, [17, 0, 0x04, 0xD1, 0xDE, 0xAD, 0xBE, 0xEF]);
        b.push(9);
        assert_eq!(Ipv6FragRepr::parse(&b), Ok((f, &[9u8][..])));
        // Reserved bits are ignored on receipt.
        let mut v = b.clone();
        v[1] = 0xFF;
        v[3] |= 0b110;
        assert_eq!(Ipv6FragRepr::parse(&v).map(|(r, _)| r), Ok(f));
        let bad = Ipv6FragRepr { offset: 12, ..f };
        assert_eq!(
            bad.emit(&mut Vec::new()),
            Err(WireError::BadIpv6FragOffset(12))
        );
        assert!(matches!(
            Ipv6FragRepr::parse(&b[..7]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn udp_checksum_over_the_pseudo_header() {
        let ip = sample();
        let mut pkt = Vec::new();
        build_ipv6_udp(&mut pkt, &ip, 5683, 61616, b"hello").expect("build");
        assert_eq!(pkt.len(), 40 + 8 + 5);
        let (r, payload) = Ipv6Repr::parse(&pkt).expect("ip");
        assert_eq!((r.next_header, r.payload_len), (17, 13));
        let (u, c, p) = parse_udp(payload, r.src, r.dst).expect("udp");
        assert_eq!((u.src_port, u.dst_port, p), (5683, 61616, &b"hello"[..]));
        // Independent sum: pseudo-header words, then the datagram.
        let mut words = Vec::new();
        words.extend_from_slice(&r.src.octets());
        words.extend_from_slice(&r.dst.octets());
        words.extend_from_slice(&13u32.to_be_bytes());
        words.extend_from_slice(&[0, 0, 0, 17]);
        let mut d = payload.to_vec();
        d[6] = 0;
        d[7] = 0;
        words.extend_from_slice(&d);
        assert_eq!(c, checksum::checksum(&words));
        // Another destination fails; a zero checksum is refused.
        assert!(matches!(
            parse_udp(payload, r.src, r.src),
            Err(WireError::BadChecksum { .. })
        ));
        let mut z = payload.to_vec();
        z[6] = 0;
        z[7] = 0;
        assert_eq!(
            parse_udp(&z, r.src, r.dst),
            Err(WireError::ZeroUdpChecksumV6)
        );
    }

    #[test]
    fn address_scheme() {
        assert_eq!(
            link_local_from_short(0x1234),
            "fe80::ff:fe00:1234".parse::<Ipv6Addr>().expect("addr")
        );
        // RFC 4291 Appendix A: EUI-64 00-12-4B-00-01-02-03-04 gives the
        // IID 0212:4b00:0102:0304 (U/L bit inverted).
        assert_eq!(
            link_local_from_ext(0x0012_4B00_0102_0304),
            "fe80::212:4b00:102:304".parse::<Ipv6Addr>().expect("addr")
        );
    }

    proptest! {
        #[test]
        fn header_round_trips(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
                              nh in any::<u8>(), hl in any::<u8>(), tc in any::<u8>(),
                              fl in 0..=MAX_FLOW_LABEL, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = Ipv6Repr {
                src: src.into(), dst: dst.into(), next_header: nh, hop_limit: hl,
                traffic_class: tc, flow_label: fl, payload_len: payload.len() as u16,
            };
            let mut b = Vec::new();
            r.emit(&mut b).expect("emit");
            b.extend_from_slice(&payload);
            let (back, p) = Ipv6Repr::parse(&b).expect("parse");
            prop_assert_eq!(back, r);
            prop_assert_eq!(p, &payload[..]);
        }

        #[test]
        fn fragment_header_round_trips(nh in any::<u8>(), units in 0u16..0x2000, more in any::<bool>(), ident in any::<u32>()) {
            let f = Ipv6FragRepr { next_header: nh, offset: units * 8, more, ident };
            let mut b = Vec::new();
            f.emit(&mut b).expect("emit");
            prop_assert_eq!(Ipv6FragRepr::parse(&b), Ok((f, &[][..])));
        }
    }
}
