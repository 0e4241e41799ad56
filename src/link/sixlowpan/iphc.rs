//! IPHC header compression (RFC 6282 §3) and UDP next-header compression
//! (§4.3).
//!
//! The IPHC base is two bytes, `011 TF(2) NH HLIM(2)` and
//! `CID SAC SAM(2) M DAC DAM(2)`, followed inline, in this order, by the
//! CID byte, the traffic class and flow label, the next header, the hop
//! limit, the source address and the destination address — each only when
//! not elided — and then, with NH = 1, the UDP NHC header
//! `11110 C P(2)`, its ports and its checksum.
//!
//! [`compress`] always picks the shortest encoding RFC 6282 allows for the
//! header it is given (what Contiki and RIOT send): TF 11 when traffic
//! class and flow label are 0, HLIM 1/64/255 compressed, addresses elided
//! down to what the link address or context 0 does not already say, and
//! the UDP ports in 4 or 8 bits when they lie in 0xF0B0–0xF0BF or
//! 0xF000–0xF0FF. [`decompress`] accepts every encoding but the reserved
//! ones, an elided UDP checksum (C = 1: RFC 6282 §4.3.2 allows it only
//! when an upper layer authorises it, which none here does), the RFC 3306
//! multicast form (M = 1, DAC = 1, DAM = 00), contexts other than 0 and
//! NHC for extension headers; each is a [`LowpanError`].
//!
//! Elided lengths: the IPv6 payload length and the UDP length are
//! recomputed from what follows the compressed headers, or, in a FRAG1,
//! from the datagram_size ([`decompress_sized`]).

use super::{Context, LowpanError, Reader};
use crate::link::mac154::Address;
use crate::net::ip::PROTO_UDP;
use crate::net::ipv6::{self, Ipv6Repr, HEADER_LEN, LINK_LOCAL_PREFIX};
use crate::net::udp::HEADER_LEN as UDP_HEADER_LEN;
use std::net::Ipv6Addr;

/// The UDP header fields an NHC header carries (the length is elided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpNhc {
    pub src_port: u16,
    pub dst_port: u16,
    /// The checksum field, carried inline as is (C = 0).
    pub checksum: u16,
}

const DISPATCH_IPHC: u8 = 0b0110_0000;
const NHC_UDP: u8 = 0b1111_0000;
const NHC_UDP_MASK: u8 = 0b1111_1000;
const NHC_UDP_C: u8 = 0b100;

/// Interface identifier IPHC derives from a link-layer address (RFC 6282
/// §3.2.2).
fn link_iid(link: Address) -> [u8; 8] {
    match link {
        Address::Short(s) => ipv6::iid_from_short(s),
        Address::Extended(e) => ipv6::iid_from_ext(e),
    }
}

/// The prefix and interface identifier halves of an address.
fn halves(a: Ipv6Addr) -> ([u8; 8], [u8; 8]) {
    let o = a.octets();
    let mut p = [0u8; 8];
    let mut i = [0u8; 8];
    p.copy_from_slice(&o[..8]);
    i.copy_from_slice(&o[8..]);
    (p, i)
}

/// SAM/DAM for a unicast address: (context-based, mode, inline bytes).
fn unicast_mode(addr: Ipv6Addr, link: Address, ctx0: Option<Context>) -> (bool, u8, Inline) {
    let (prefix, iid) = halves(addr);
    let stateful = if prefix == LINK_LOCAL_PREFIX {
        false
    } else if ctx0 == Some(prefix) {
        true
    } else {
        return (false, 0b00, Inline::from(&addr.octets()[..]));
    };
    if iid == link_iid(link) {
        (stateful, 0b11, Inline::default())
    } else if iid[..6] == [0, 0, 0, 0xff, 0xfe, 0] {
        (stateful, 0b10, Inline::from(&iid[6..]))
    } else {
        (stateful, 0b01, Inline::from(&iid[..]))
    }
}

/// DAM for a multicast destination (M = 1, DAC = 0): mode and inline bytes.
fn multicast_mode(addr: Ipv6Addr) -> (u8, Inline) {
    let a = addr.octets();
    let zero = |r: std::ops::Range<usize>| a[r].iter().all(|&b| b == 0);
    if a[1] == 0x02 && zero(2..15) {
        (0b11, Inline::from(&a[15..]))
    } else if zero(2..13) {
        (0b10, Inline::from(&[a[1], a[13], a[14], a[15]][..]))
    } else if zero(2..11) {
        (
            0b01,
            Inline::from(&[a[1], a[11], a[12], a[13], a[14], a[15]][..]),
        )
    } else {
        (0b00, Inline::from(&a[..]))
    }
}

/// Inline bytes of one address (at most 16), so compression allocates
/// nothing but the output.
#[derive(Default)]
struct Inline {
    b: [u8; 16],
    n: usize,
}

impl Inline {
    fn from(s: &[u8]) -> Self {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s[..n]);
        Inline { b, n }
    }
    fn as_slice(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

/// Append the IPHC header of `ip` (and, when `udp` is given, the UDP NHC
/// header) to `out`, compressed against the link-layer addresses of the
/// frame that will carry it and context 0. Returns the number of bytes
/// appended; the payload (the UDP payload when `udp` is given, else
/// everything after the IPv6 header) is the caller's to append.
///
/// Fails, appending nothing, when `udp` is given but `ip.next_header` is
/// not UDP or when the flow label passes 20 bits. `ip.payload_len` is not
/// encoded (RFC 6282 elides it).
pub fn compress(
    ip: &Ipv6Repr,
    udp: Option<UdpNhc>,
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
    out: &mut Vec<u8>,
) -> Result<usize, LowpanError> {
    if udp.is_some() && ip.next_header != PROTO_UDP {
        return Err(LowpanError::BadInput(
            "UDP NHC requested for a header whose next header is not UDP",
        ));
    }
    if ip.flow_label > ipv6::MAX_FLOW_LABEL {
        return Err(LowpanError::BadInput("flow label wider than 20 bits"));
    }
    let start = out.len();
    let mut b0 = DISPATCH_IPHC;
    let mut b1 = 0u8;
    out.extend_from_slice(&[0, 0]);

    // Traffic class and flow label (§3.1.1 TF): the IPv6 traffic class is
    // DSCP(6) ECN(2); IPHC carries it rotated as ECN(2) DSCP(6).
    let tc = ip.traffic_class;
    let (ecn, dscp) = (tc & 0b11, tc >> 2);
    let fl = ip.flow_label;
    let fl_bytes = [((fl >> 16) & 0x0F) as u8, (fl >> 8) as u8, fl as u8];
    if tc == 0 && fl == 0 {
        b0 |= 0b11 << 3;
    } else if fl == 0 {
        b0 |= 0b10 << 3;
        out.push(ecn << 6 | dscp);
    } else if dscp == 0 {
        b0 |= 0b01 << 3;
        out.push(ecn << 6 | fl_bytes[0]);
        out.extend_from_slice(&fl_bytes[1..]);
    } else {
        out.push(ecn << 6 | dscp);
        out.extend_from_slice(&fl_bytes);
    }

    // Next header (§3.1.1 NH).
    if udp.is_some() {
        b0 |= 0b100;
    } else {
        out.push(ip.next_header);
    }

    // Hop limit (§3.1.1 HLIM).
    match ip.hop_limit {
        1 => b0 |= 0b01,
        64 => b0 |= 0b10,
        255 => b0 |= 0b11,
        h => out.push(h),
    }

    // Source address (§3.1.1 SAC/SAM); the unspecified address is SAC = 1,
    // SAM = 00.
    if ip.src.is_unspecified() {
        b1 |= 0b0100_0000;
    } else {
        let (sac, sam, inline) = unicast_mode(ip.src, link_src, ctx0);
        if sac {
            b1 |= 0b0100_0000;
        }
        b1 |= sam << 4;
        out.extend_from_slice(inline.as_slice());
    }

    // Destination address (§3.1.1 M/DAC/DAM).
    if ip.dst.is_multicast() {
        let (dam, inline) = multicast_mode(ip.dst);
        b1 |= 0b1000 | dam;
        out.extend_from_slice(inline.as_slice());
    } else {
        let (dac, dam, inline) = unicast_mode(ip.dst, link_dst, ctx0);
        if dac {
            b1 |= 0b0100;
        }
        b1 |= dam;
        out.extend_from_slice(inline.as_slice());
    }
    out[start] = b0;
    out[start + 1] = b1;

    // UDP NHC (§4.3.3): ports in 4, 8 or 16 bits, checksum inline.
    if let Some(u) = udp {
        let (s, d) = (u.src_port, u.dst_port);
        if s & 0xFFF0 == 0xF0B0 && d & 0xFFF0 == 0xF0B0 {
            out.push(NHC_UDP | 0b11);
            out.push(((s & 0xF) as u8) << 4 | (d & 0xF) as u8);
        } else if d & 0xFF00 == 0xF000 {
            out.push(NHC_UDP | 0b01);
            out.extend_from_slice(&s.to_be_bytes());
            out.push(d as u8);
        } else if s & 0xFF00 == 0xF000 {
            out.push(NHC_UDP | 0b10);
            out.push(s as u8);
            out.extend_from_slice(&d.to_be_bytes());
        } else {
            out.push(NHC_UDP);
            out.extend_from_slice(&s.to_be_bytes());
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(&u.checksum.to_be_bytes());
    }
    Ok(out.len() - start)
}

/// Compress a whole uncompressed IPv6 packet (as [`ipv6::build_ipv6_udp`]
/// makes) for a frame from `link_src` to `link_dst`, appending the
/// compressed header and the payload to `out`. UDP gets NHC when the
/// packet's UDP length equals the IPv6 payload length (the only case the
/// elided length can express); anything else keeps its next header inline.
/// Returns (compressed header length, uncompressed header length): the
/// bytes after those headers are the same in both forms, which is what
/// [`super::fragment`] needs.
pub fn compress_packet(
    packet: &[u8],
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), LowpanError> {
    let (ip, payload) = Ipv6Repr::parse(packet)?;
    let udp = match payload {
        [s0, s1, d0, d1, l0, l1, c0, c1, ..]
            if ip.next_header == PROTO_UDP
                && usize::from(u16::from_be_bytes([*l0, *l1])) == payload.len() =>
        {
            Some(UdpNhc {
                src_port: u16::from_be_bytes([*s0, *s1]),
                dst_port: u16::from_be_bytes([*d0, *d1]),
                checksum: u16::from_be_bytes([*c0, *c1]),
            })
        }
        _ => None,
    };
    let start = out.len();
    let n = compress(&ip, udp, link_src, link_dst, ctx0, out)?;
    let skip = if udp.is_some() { UDP_HEADER_LEN } else { 0 };
    out.extend_from_slice(&payload[skip..]);
    debug_assert_eq!(out.len() - start - n, payload.len() - skip);
    Ok((n, HEADER_LEN + skip))
}

/// Decode the address a SAM/DAM (unicast) encoding gives.
fn unicast_addr(
    r: &mut Reader<'_>,
    context: bool,
    mode: u8,
    link: Address,
    ctx0: Option<Context>,
    what: &'static str,
) -> Result<Ipv6Addr, LowpanError> {
    let prefix = if context {
        ctx0.ok_or(LowpanError::UnknownContext(0))?
    } else {
        LINK_LOCAL_PREFIX
    };
    Ok(match mode {
        0b00 => {
            let s = r.take(16, what)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            Ipv6Addr::from(a)
        }
        0b01 => {
            let mut iid = [0u8; 8];
            iid.copy_from_slice(r.take(8, what)?);
            ipv6::addr_from_parts(prefix, iid)
        }
        0b10 => ipv6::addr_from_parts(prefix, ipv6::iid_from_short(r.u16(what)?)),
        _ => ipv6::addr_from_parts(prefix, link_iid(link)),
    })
}

/// A decoded IPHC (and NHC) header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub ip: Ipv6Repr,
    /// The UDP header when NH = 1 (its length is `ip.payload_len`).
    pub udp: Option<UdpNhc>,
    /// Bytes of compressed header: the payload starts here.
    pub header_len: usize,
}

impl Decoded {
    /// Length of the headers once decompressed: 40, plus 8 with UDP NHC.
    pub fn uncompressed_header_len(&self) -> usize {
        HEADER_LEN
            + if self.udp.is_some() {
                UDP_HEADER_LEN
            } else {
                0
            }
    }
}

/// Decode an IPHC header at the start of `bytes` (a whole datagram: the
/// elided lengths count every byte after the compressed headers) carried
/// from `link_src` to `link_dst`.
pub fn decompress(
    bytes: &[u8],
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
) -> Result<Decoded, LowpanError> {
    decode(bytes, link_src, link_dst, ctx0, None)
}

/// [`decompress`] for the start of a fragmented datagram: the elided
/// lengths come from `datagram_size` (the uncompressed IPv6 size of the
/// FRAG1 header, RFC 4944 §5.3), not from the bytes at hand.
pub fn decompress_sized(
    bytes: &[u8],
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
    datagram_size: usize,
) -> Result<Decoded, LowpanError> {
    decode(bytes, link_src, link_dst, ctx0, Some(datagram_size))
}

fn decode(
    bytes: &[u8],
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
    datagram_size: Option<usize>,
) -> Result<Decoded, LowpanError> {
    let mut r = Reader::new(bytes);
    let b0 = r.u8("IPHC")?;
    if b0 & 0b1110_0000 != DISPATCH_IPHC {
        return Err(LowpanError::Dispatch {
            byte: b0,
            expected: "IPHC (011xxxxx)",
        });
    }
    let b1 = r.u8("IPHC")?;
    if b1 & 0x80 != 0 {
        // CID = 1: one byte of source and destination context indices.
        let cid = r.u8("IPHC context identifier")?;
        for ci in [cid >> 4, cid & 0x0F] {
            if ci != 0 {
                return Err(LowpanError::UnknownContext(ci));
            }
        }
    }
    let (traffic_class, flow_label) = match (b0 >> 3) & 0b11 {
        0b00 => {
            let s = r.take(4, "IPHC traffic class and flow label")?;
            let tc = s[0].rotate_left(2); // ECN|DSCP back to DSCP|ECN
            let fl = u32::from(s[1] & 0x0F) << 16 | u32::from(s[2]) << 8 | u32::from(s[3]);
            (tc, fl)
        }
        0b01 => {
            let s = r.take(3, "IPHC flow label")?;
            let fl = u32::from(s[0] & 0x0F) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]);
            (s[0] >> 6, fl)
        }
        0b10 => {
            let s = r.u8("IPHC traffic class")?;
            (s.rotate_left(2), 0)
        }
        _ => (0, 0),
    };
    let nhc = b0 & 0b100 != 0;
    let next_header = if nhc {
        PROTO_UDP
    } else {
        r.u8("IPHC next header")?
    };
    let hop_limit = match b0 & 0b11 {
        0b00 => r.u8("IPHC hop limit")?,
        0b01 => 1,
        0b10 => 64,
        _ => 255,
    };
    let sac = b1 & 0b0100_0000 != 0;
    let sam = (b1 >> 4) & 0b11;
    let src = if sac && sam == 0b00 {
        Ipv6Addr::UNSPECIFIED
    } else {
        unicast_addr(&mut r, sac, sam, link_src, ctx0, "IPHC source address")?
    };
    let m = b1 & 0b1000 != 0;
    let dac = b1 & 0b0100 != 0;
    let dam = b1 & 0b11;
    let what = "IPHC destination address";
    let dst = match (m, dac, dam) {
        (false, true, 0b00) => return Err(LowpanError::Reserved("M = 0, DAC = 1, DAM = 00")),
        (false, _, _) => unicast_addr(&mut r, dac, dam, link_dst, ctx0, what)?,
        (true, false, 0b00) => unicast_addr(&mut r, false, 0b00, link_dst, ctx0, what)?,
        (true, false, 0b01) => {
            let s = r.take(6, what)?;
            let mut a = [0u8; 16];
            a[0] = 0xff;
            a[1] = s[0];
            a[11..].copy_from_slice(&s[1..]);
            Ipv6Addr::from(a)
        }
        (true, false, 0b10) => {
            let s = r.take(4, what)?;
            let mut a = [0u8; 16];
            a[0] = 0xff;
            a[1] = s[0];
            a[13..].copy_from_slice(&s[1..]);
            Ipv6Addr::from(a)
        }
        (true, false, _) => {
            let mut a = [0u8; 16];
            a[0] = 0xff;
            a[1] = 0x02;
            a[15] = r.u8(what)?;
            Ipv6Addr::from(a)
        }
        (true, true, 0b00) => {
            return Err(LowpanError::Unsupported(
                "unicast-prefix-based multicast destination (M = 1, DAC = 1, DAM = 00)",
            ))
        }
        (true, true, _) => return Err(LowpanError::Reserved("M = 1, DAC = 1, DAM != 00")),
    };
    let udp = if nhc {
        let h = r.u8("UDP NHC")?;
        if h & NHC_UDP_MASK != NHC_UDP {
            return Err(LowpanError::Unsupported(
                "NHC other than UDP (extension header compression)",
            ));
        }
        if h & NHC_UDP_C != 0 {
            return Err(LowpanError::Unsupported("elided UDP checksum (C = 1)"));
        }
        let what = "UDP NHC ports";
        let (src_port, dst_port) = match h & 0b11 {
            0b00 => (r.u16(what)?, r.u16(what)?),
            0b01 => (r.u16(what)?, 0xF000 | u16::from(r.u8(what)?)),
            0b10 => (0xF000 | u16::from(r.u8(what)?), r.u16(what)?),
            _ => {
                let p = r.u8(what)?;
                (0xF0B0 | u16::from(p >> 4), 0xF0B0 | u16::from(p & 0x0F))
            }
        };
        let checksum = r.u16("UDP NHC checksum")?;
        Some(UdpNhc {
            src_port,
            dst_port,
            checksum,
        })
    } else {
        None
    };
    let header_len = r.at;
    let udp_len = if udp.is_some() { UDP_HEADER_LEN } else { 0 };
    let payload_len = match datagram_size {
        Some(size) => size
            .checked_sub(HEADER_LEN)
            .filter(|&p| p >= udp_len)
            .ok_or(LowpanError::Inconsistent {
                start: 0,
                end: HEADER_LEN + udp_len,
                size,
            })?,
        None => r.rest().len() + udp_len,
    };
    let payload_len = u16::try_from(payload_len).map_err(|_| LowpanError::DatagramTooLong {
        size: HEADER_LEN + payload_len,
    })?;
    Ok(Decoded {
        ip: Ipv6Repr {
            src,
            dst,
            next_header,
            hop_limit,
            traffic_class,
            flow_label,
            payload_len,
        },
        udp,
        header_len,
    })
}

/// Decompress a 6LoWPAN IPHC datagram (or, with `datagram_size`, the
/// start of one carried in a FRAG1) into the uncompressed IPv6 packet
/// bytes, appended to `out`: the IPv6 header, the UDP header when NHC was
/// used, then the rest of `bytes`. Returns what was decoded.
pub fn decompress_packet(
    bytes: &[u8],
    link_src: Address,
    link_dst: Address,
    ctx0: Option<Context>,
    datagram_size: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<Decoded, LowpanError> {
    let d = decode(bytes, link_src, link_dst, ctx0, datagram_size)?;
    d.ip.emit(out)?;
    if let Some(u) = d.udp {
        out.extend_from_slice(&u.src_port.to_be_bytes());
        out.extend_from_slice(&u.dst_port.to_be_bytes());
        out.extend_from_slice(&d.ip.payload_len.to_be_bytes());
        out.extend_from_slice(&u.checksum.to_be_bytes());
    }
    out.extend_from_slice(bytes.get(d.header_len..).unwrap_or(&[]));
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Address = Address::Short(0x0001);
    const B: Address = Address::Short(0x0002);

    fn ll(short: u16) -> Ipv6Addr {
        ipv6::link_local_from_short(short)
    }

    fn repr(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Repr {
        Ipv6Repr {
            src,
            dst,
            next_header: PROTO_UDP,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8 + 4,
        }
    }

    fn enc(ip: &Ipv6Repr, udp: Option<UdpNhc>, ctx0: Option<Context>) -> Vec<u8> {
        let mut out = Vec::new();
        compress(ip, udp, A, B, ctx0, &mut out).expect("compress");
        out
    }

    #[test]
    fn link_local_from_short_macs_is_two_bytes() {
        // TF = 11, NH = 0 (UDP inline), HLIM = 10; SAC = 0 SAM = 11,
        // M = 0 DAC = 0 DAM = 11.
        let mut ip = repr(ll(1), ll(2));
        ip.next_header = 58;
        assert_eq!(enc(&ip, None, None), [0b0111_1010, 0x33, 58]);
        ip.next_header = PROTO_UDP;
        let udp = UdpNhc {
            src_port: 0xF0B1,
            dst_port: 0xF0B2,
            checksum: 0xABCD,
        };
        assert_eq!(
            enc(&ip, Some(udp), None),
            [0b0111_1110, 0x33, 0xF3, 0x12, 0xAB, 0xCD]
        );
    }

    #[test]
    fn every_tf_mode() {
        let base = repr(ll(1), ll(2));
        let cases: [(u8, u32, &[u8]); 4] = [
            // DSCP 46 (EF) = 0b101110, ECN 01: TC 0xB9; IPHC byte ECN|DSCP = 0x6E.
            (0xB9, 0xABCDE, &[0x6E, 0x0A, 0xBC, 0xDE]),
            (0x01, 0xABCDE, &[0x4A, 0xBC, 0xDE]),
            (0xB9, 0, &[0x6E]),
            (0, 0, &[]),
        ];
        for (i, (tc, fl, inline)) in cases.into_iter().enumerate() {
            let ip = Ipv6Repr {
                traffic_class: tc,
                flow_label: fl,
                ..base
            };
            let b = enc(&ip, None, None);
            assert_eq!((b[0] >> 3) & 0b11, i as u8, "TF for {tc:#x}/{fl:#x}");
            assert_eq!(&b[2..2 + inline.len()], inline);
            let mut full = b.clone();
            full.extend_from_slice(&[0; 12]);
            let d = decompress(&full, A, B, None).expect("decode");
            assert_eq!((d.ip.traffic_class, d.ip.flow_label), (tc, fl));
        }
    }

    #[test]
    fn context_zero_elides_the_interface_identifier() {
        let ctx: Context = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];
        let g = |iid: [u8; 8]| ipv6::addr_from_parts(ctx, iid);
        let ip = repr(g(ipv6::iid_from_short(1)), g(ipv6::iid_from_short(2)));
        // SAC = 1 SAM = 11, DAC = 1 DAM = 11: no address byte inline.
        assert_eq!(enc(&ip, None, Some(ctx)), [0x7A, 0x77, 17]);
        // Without the context both addresses go inline.
        assert_eq!(enc(&ip, None, None).len(), 3 + 32);
        // A 16-bit IID form (SAM = 10) and a full IID (DAM = 01).
        let ip = repr(g(ipv6::iid_from_short(9)), g([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(
            enc(&ip, None, Some(ctx)),
            [0x7A, 0x65, 17, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let mut wire = enc(&ip, None, Some(ctx));
        assert_eq!(
            decompress(&wire, A, B, None),
            Err(LowpanError::UnknownContext(0))
        );
        wire.extend_from_slice(&[0; 12]);
        assert_eq!(decompress(&wire, A, B, Some(ctx)).expect("decode").ip, ip);
    }

    #[test]
    fn multicast_forms() {
        let cases: [(&str, u8, usize); 4] = [
            ("ff02::1", 0b11, 1),
            ("ff05::1:3", 0b10, 4),
            ("ff05::12:3456:789a", 0b01, 6),
            ("ff05::1:0:0:1:3", 0b00, 16),
        ];
        for (a, dam, n) in cases {
            let ip = repr(ll(1), a.parse().expect("addr"));
            let b = enc(&ip, None, None);
            assert_eq!(b[1] & 0b1111, 0b1000 | dam, "{a}");
            assert_eq!(b.len(), 3 + n, "{a}");
            let mut full = b;
            full.extend_from_slice(&[0; 12]);
            assert_eq!(decompress(&full, A, B, None).expect(a).ip, ip);
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        let ip = repr(
            "2001:db8::1".parse().expect("addr"),
            "2001:db8::2".parse().expect("addr"),
        );
        let udp = UdpNhc {
            src_port: 5683,
            dst_port: 5683,
            checksum: 1,
        };
        let b = enc(&ip, Some(udp), None);
        for n in 0..b.len() {
            assert!(
                matches!(
                    decompress(&b[..n], A, B, None),
                    Err(LowpanError::Truncated { .. })
                ),
                "{n} bytes"
            );
        }
        assert!(decompress(&b, A, B, None).is_ok());
        let mut v = b.clone();
        v[0] = 0x41;
        assert!(matches!(
            decompress(&v, A, B, None),
            Err(LowpanError::Dispatch { .. })
        ));
        // C = 1 and an extension-header NHC.
        let nhc_at = b.len() - 7;
        let mut v = b.clone();
        v[nhc_at] |= NHC_UDP_C;
        assert!(matches!(
            decompress(&v, A, B, None),
            Err(LowpanError::Unsupported(_))
        ));
        let mut v = b.clone();
        v[nhc_at] = 0xE0;
        assert!(matches!(
            decompress(&v, A, B, None),
            Err(LowpanError::Unsupported(_))
        ));
        // Reserved DAM forms, context 1.
        assert!(matches!(
            decompress(&[0x7B, 0x34, 17], A, B, None),
            Err(LowpanError::Reserved(_))
        ));
        assert!(matches!(
            decompress(&[0x7B, 0x3D, 17], A, B, None),
            Err(LowpanError::Reserved(_))
        ));
        assert_eq!(
            decompress(&[0x7B, 0xB3, 0x10, 17], A, B, None),
            Err(LowpanError::UnknownContext(1))
        );
        // A FRAG1 size smaller than the headers it carries.
        assert!(matches!(
            decompress_sized(&b, A, B, None, 44),
            Err(LowpanError::Inconsistent { .. })
        ));
        // Asking for UDP NHC on a non-UDP header.
        let mut icmp = ip;
        icmp.next_header = 58;
        assert!(compress(&icmp, Some(udp), A, B, None, &mut Vec::new()).is_err());
    }

    fn addr_strategy() -> impl Strategy<Value = Ipv6Addr> {
        let ctx = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];
        prop_oneof![
            any::<[u8; 16]>().prop_map(Ipv6Addr::from),
            any::<[u8; 8]>().prop_map(|i| ipv6::addr_from_parts(LINK_LOCAL_PREFIX, i)),
            any::<u16>().prop_map(ipv6::link_local_from_short),
            any::<u64>().prop_map(ipv6::link_local_from_ext),
            any::<u16>().prop_map(move |s| ipv6::addr_from_parts(ctx, ipv6::iid_from_short(s))),
            any::<[u8; 8]>().prop_map(move |i| ipv6::addr_from_parts(ctx, i)),
            Just(Ipv6Addr::UNSPECIFIED),
            (any::<u8>(), any::<u8>()).prop_map(|(s, g)| Ipv6Addr::from([
                0xff, s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g
            ])),
            (any::<u8>(), any::<[u8; 3]>()).prop_map(|(s, g)| Ipv6Addr::from([
                0xff, s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g[0], g[1], g[2]
            ])),
            (any::<u8>(), any::<[u8; 5]>()).prop_map(|(s, g)| Ipv6Addr::from([
                0xff, s, 0, 0, 0, 0, 0, 0, 0, 0, 0, g[0], g[1], g[2], g[3], g[4]
            ])),
            any::<u8>()
                .prop_map(|g| Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g])),
        ]
    }

    fn link_strategy() -> impl Strategy<Value = Address> {
        prop_oneof![
            any::<u16>().prop_map(Address::Short),
            any::<u64>().prop_map(Address::Extended),
            Just(Address::Short(1)),
        ]
    }

    fn port_strategy() -> impl Strategy<Value = u16> {
        prop_oneof![
            any::<u16>(),
            0xF0B0u16..=0xF0BF,
            0xF000u16..=0xF0FF,
            Just(5683)
        ]
    }

    proptest! {
        #[test]
        fn round_trip_every_mode(
            src in addr_strategy(), dst in addr_strategy(),
            ls in link_strategy(), ld in link_strategy(),
            with_ctx in any::<bool>(),
            tc in prop_oneof![Just(0u8), any::<u8>(), (0u8..4)],
            fl in prop_oneof![Just(0u32), 0..=ipv6::MAX_FLOW_LABEL],
            hl in prop_oneof![Just(1u8), Just(64), Just(255), any::<u8>()],
            nh in any::<u8>().prop_filter("UDP inline could turn into NHC on recompression", |n| *n != PROTO_UDP),
            udp in proptest::option::of((port_strategy(), port_strategy(), any::<u16>())),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let ctx0 = with_ctx.then_some([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
            let udp = udp.map(|(s, d, c)| UdpNhc { src_port: s, dst_port: d, checksum: c });
            let extra = if udp.is_some() { 8 } else { 0 };
            let ip = Ipv6Repr {
                src, dst,
                next_header: if udp.is_some() { PROTO_UDP } else { nh },
                hop_limit: hl, traffic_class: tc, flow_label: fl,
                payload_len: (payload.len() + extra) as u16,
            };
            let mut b = Vec::new();
            let n = compress(&ip, udp, ls, ld, ctx0, &mut b).expect("compress");
            prop_assert_eq!(n, b.len());
            prop_assert!(n <= 2 + 4 + 1 + 1 + 32 + 7);
            b.extend_from_slice(&payload);
            let d = decompress(&b, ls, ld, ctx0).expect("decompress");
            prop_assert_eq!(d.ip, ip);
            prop_assert_eq!(d.udp, udp);
            prop_assert_eq!(d.header_len, n);
            // The whole-packet forms agree with the uncompressed packet.
            let mut pkt = Vec::new();
            decompress_packet(&b, ls, ld, ctx0, None, &mut pkt).expect("packet");
            prop_assert_eq!(pkt.len(), ip.total_len());
            let mut again = Vec::new();
            let (hc, hu) = compress_packet(&pkt, ls, ld, ctx0, &mut again).expect("recompress");
            prop_assert_eq!(&again, &b);
            prop_assert_eq!((hc, hu), (n, 40 + extra));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                ls in link_strategy(), ld in link_strategy(), size in any::<u16>()) {
            let ctx0 = Some([0u8; 8]);
            let _ = decompress(&bytes, ls, ld, ctx0);
            let _ = decompress_sized(&bytes, ls, ld, None, usize::from(size));
            let mut out = Vec::new();
            if let Ok(d) = decompress_packet(&bytes, ls, ld, ctx0, None, &mut out) {
                prop_assert_eq!(out.len(), d.ip.total_len());
            }
        }
    }
}
