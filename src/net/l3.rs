//! The network layer a run uses, IPv4 or IPv6 (`[protocols.ip] version`),
//! behind one interface: how node indices become addresses, how a packet's
//! network header is read, how UDP datagrams and TCP segments are wrapped.
//! Hosts, routers and links ask a [`NetPlan`] and never look at a version
//! themselves.
//!
//! Address scheme (docs/sixlowpan.md "Address scheme"):
//! - IPv4: node `i` is `10.0.0.0 + i + 1` ([`super::ip::node_addr`]).
//! - IPv6: node `i`'s global address is the scenario's /64 prefix
//!   (`[protocols.ip] prefix`, default 2001:db8::/64) followed by the
//!   interface identifier of the 16-bit short 802.15.4 address `i + 1`,
//!   `0000:00ff:fe00:XXXX` (RFC 6282 §3.2.2), so a radio node's address
//!   compresses away entirely under 6LoWPAN context 0. Nodes past 0xFFFD
//!   (no short address left) get the identifier `i + 1` as a 64-bit number.
//!   Inside the simulator node `i`'s address is the [`Addr`] handle `i`.
//! - Groups keep one name in both families: [`Addr::BROADCAST`] is the
//!   IPv4 limited broadcast or ff02::1 (all nodes), and 224.0.1.187 is the
//!   IPv4 "All CoAP Nodes" group or ff02::fd (RFC 7252 §12.8).
//!
//! Neighbour Discovery (RFC 4861, RFC 6775) and RPL are not modelled: routes
//! are static and link-layer addresses known, so the bytes of NS/NA/RS/RA,
//! DAD and RPL's DIO/DAO are absent from every count.

use super::addr::Addr;
use super::checksum::PseudoAddrs;
use super::ip::{self, Ipv4Repr};
use super::ipv6::{self, Ipv6FragRepr, Ipv6Repr};
use super::udp::build_ipv4_udp;
use super::wire::{Layer, WireError};
use std::net::{Ipv4Addr, Ipv6Addr};

/// 2001:db8::/64 (RFC 3849's documentation prefix).
pub const DEFAULT_PREFIX: [u8; 8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0];
/// ff02::1, the link-local all-nodes group.
pub const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::fd, "All CoAP Nodes" with link-local scope (RFC 7252 §12.8).
pub const ALL_COAP_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfd);
/// 224.0.1.187, "All CoAP Nodes" (RFC 7252 §12.8): also the simulator's
/// name of that group in an IPv6 run.
pub const ALL_COAP_NODES_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 187);
/// Largest 16-bit short address a node can have (0xFFFE means "no short
/// address" and 0xFFFF is the broadcast, IEEE 802.15.4 §7.2.1.1).
const MAX_SHORT: usize = 0xFFFD;

/// Parse a `/64` prefix such as `"2001:db8::/64"` into its first 8 bytes.
pub fn parse_prefix(s: &str) -> Result<[u8; 8], String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("\"{s}\" is not a prefix, expected e.g. \"2001:db8::/64\""))?;
    if len != "64" {
        return Err(format!(
            "prefix length /{len} is not supported, expected /64 (the prefix becomes 6LoWPAN context 0 and node addresses append a 64-bit interface identifier)"
        ));
    }
    let a: Ipv6Addr = addr.parse().map_err(|_| {
        format!("\"{addr}\" is not an IPv6 address, expected e.g. \"2001:db8::/64\"")
    })?;
    let o = a.octets();
    if o[8..].iter().any(|&b| b != 0) {
        return Err(format!("\"{s}\" has bits set after the first 64"));
    }
    if a.is_multicast() || o[..8] == ipv6::LINK_LOCAL_PREFIX {
        return Err(format!(
            "\"{s}\" is not a global unicast prefix (multicast and fe80::/64 are refused)"
        ));
    }
    let mut p = [0u8; 8];
    p.copy_from_slice(&o[..8]);
    Ok(p)
}

/// Fields of a packet a host sends that the scenario sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOpts {
    /// IPv4 TTL or IPv6 hop limit.
    pub hops: u8,
    /// IPv4 identification (IPv6 carries one only in a Fragment header).
    pub ident: u16,
    /// IPv4 Don't Fragment (IPv6 routers never fragment).
    pub dont_fragment: bool,
}

/// A packet's network header as the world reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3Hdr {
    /// Addresses (an IPv6 address outside the run's scheme reads as
    /// [`Addr::UNSPECIFIED`]: no node has it).
    pub src: Addr,
    pub dst: Addr,
    /// Upper-layer protocol (after an IPv6 Fragment header, the one it names).
    pub proto: u8,
    /// Fragment information: IPv4 MF/offset/ident, or an IPv6 Fragment header.
    pub frag: Option<L3Frag>,
    /// The transport checksum's pseudo-header addresses.
    pub pseudo: PseudoAddrs,
}

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3Frag {
    /// Offset of the data in the fragmentable part, in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

/// The network layer of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetPlan {
    /// The IPv6 /64 prefix, or `None` for IPv4.
    v6: Option<[u8; 8]>,
}

impl NetPlan {
    /// IPv4.
    pub const V4: NetPlan = NetPlan { v6: None };

    /// IPv6 with global addresses in `prefix`.
    pub const fn v6(prefix: [u8; 8]) -> NetPlan {
        NetPlan { v6: Some(prefix) }
    }

    /// The plan for IP version `version` (6, or else 4) and `prefix`.
    pub const fn new(version: u8, prefix: [u8; 8]) -> NetPlan {
        if version == 6 {
            NetPlan::v6(prefix)
        } else {
            NetPlan::V4
        }
    }

    pub const fn is_v6(self) -> bool {
        self.v6.is_some()
    }

    /// The IPv6 prefix (6LoWPAN context 0), `None` for IPv4.
    pub const fn prefix(self) -> Option<[u8; 8]> {
        self.v6
    }

    /// Bytes of the network header of an unfragmented packet: 20 or 40.
    pub const fn header_len(self) -> usize {
        if self.v6.is_some() {
            ipv6::HEADER_LEN
        } else {
            ip::HEADER_LEN
        }
    }

    /// Node `node`'s address.
    pub fn node_addr(self, node: usize) -> Addr {
        match self.v6 {
            None => Addr::from(ip::node_addr(node)),
            Some(_) => Addr::v6_handle(node as u32).unwrap_or(Addr::UNSPECIFIED),
        }
    }

    /// The node whose address `a` is.
    pub fn addr_node(self, a: Addr) -> Option<usize> {
        match self.v6 {
            None => a.v4().and_then(ip::addr_node),
            Some(_) => a.v6_index().map(|i| i as usize),
        }
    }

    /// Whether `a` names a group every link neighbour takes (multicast or
    /// broadcast), in either family.
    pub fn is_group(a: Addr) -> bool {
        a.v4().is_some_and(|v| v.is_multicast() || v.is_broadcast())
    }

    /// The 16-bit short 802.15.4 address of node `node` in an IPv6 run
    /// (`node + 1`), when it has one.
    pub fn short_addr(node: usize) -> Option<u16> {
        (node < MAX_SHORT).then(|| (node + 1) as u16)
    }

    /// The interface identifier of node `node` (see the module doc).
    pub fn node_iid(node: usize) -> [u8; 8] {
        match Self::short_addr(node) {
            Some(s) => ipv6::iid_from_short(s),
            None => (node as u64 + 1).to_be_bytes(),
        }
    }

    /// The IPv6 wire address of `a` (`None` in an IPv4 run, or for an
    /// address with no IPv6 form).
    pub fn wire6(self, a: Addr) -> Option<Ipv6Addr> {
        let prefix = self.v6?;
        if a.is_broadcast() {
            return Some(ALL_NODES_V6);
        }
        if a.v4() == Some(ALL_COAP_NODES_V4) {
            return Some(ALL_COAP_NODES_V6);
        }
        let i = a.v6_index()?;
        Some(ipv6::addr_from_parts(prefix, Self::node_iid(i as usize)))
    }

    /// The simulator's name of IPv6 wire address `w` (see the module doc).
    pub fn from_wire6(self, w: Ipv6Addr) -> Option<Addr> {
        let prefix = self.v6?;
        if w == ALL_NODES_V6 {
            return Some(Addr::BROADCAST);
        }
        if w == ALL_COAP_NODES_V6 {
            return Some(Addr::from(ALL_COAP_NODES_V4));
        }
        let o = w.octets();
        if o[..8] != prefix {
            return None;
        }
        let mut iid = [0u8; 8];
        iid.copy_from_slice(&o[8..]);
        let node = if iid[..6] == [0, 0, 0, 0xff, 0xfe, 0] {
            usize::from(u16::from_be_bytes([iid[6], iid[7]])).checked_sub(1)?
        } else {
            (u64::from_be_bytes(iid) as usize).checked_sub(1)?
        };
        (Self::node_iid(node) == iid)
            .then(|| Addr::v6_handle(node as u32))
            .flatten()
    }

    fn name6(self, w: Ipv6Addr) -> Addr {
        self.from_wire6(w).unwrap_or(Addr::UNSPECIFIED)
    }

    /// Read the network header of `pkt`: the header and the bytes after it
    /// (after an IPv6 Fragment header too).
    pub fn parse(self, pkt: &[u8]) -> Result<(L3Hdr, &[u8]), WireError> {
        if self.v6.is_none() {
            let (h, body) = Ipv4Repr::parse(pkt)?;
            let frag = h.is_fragment().then_some(L3Frag {
                offset: h.frag_offset,
                more: h.more_fragments,
                ident: u32::from(h.ident),
            });
            let hdr = L3Hdr {
                src: Addr::from(h.src),
                dst: Addr::from(h.dst),
                proto: h.protocol,
                frag,
                pseudo: PseudoAddrs::v4(h.src, h.dst),
            };
            return Ok((hdr, body));
        }
        let (h, body) = Ipv6Repr::parse(pkt)?;
        let mut hdr = L3Hdr {
            src: self.name6(h.src),
            dst: self.name6(h.dst),
            proto: h.next_header,
            frag: None,
            pseudo: PseudoAddrs::v6(h.src, h.dst),
        };
        if h.next_header != ipv6::NEXT_HEADER_FRAGMENT {
            return Ok((hdr, body));
        }
        let (f, data) = Ipv6FragRepr::parse(body)?;
        hdr.proto = f.next_header;
        hdr.frag = Some(L3Frag {
            offset: f.offset,
            more: f.more,
            ident: f.ident,
        });
        Ok((hdr, data))
    }

    /// Destination of `pkt`, read cheaply.
    pub fn dst_of(self, pkt: &[u8]) -> Option<Addr> {
        match self.v6 {
            None => ip::dst_of(pkt).map(Addr::from),
            Some(_) => Some(self.name6(addr_at(pkt, 24)?)),
        }
    }

    /// Source of `pkt`, read cheaply.
    pub fn src_of(self, pkt: &[u8]) -> Option<Addr> {
        match self.v6 {
            None => ip::src_of(pkt).map(Addr::from),
            Some(_) => Some(self.name6(addr_at(pkt, 8)?)),
        }
    }

    /// Clear `out` and fill it with a whole packet carrying a UDP datagram
    /// from `src:sport` to `dst:dport`.
    pub fn build_udp(
        self,
        out: &mut Vec<u8>,
        (src, sport): (Addr, u16),
        (dst, dport): (Addr, u16),
        payload: &[u8],
        opts: SendOpts,
    ) -> Result<(), WireError> {
        if self.v6.is_none() {
            let repr = v4_header(src, dst, ip::PROTO_UDP, opts, 0);
            return build_ipv4_udp(out, &repr, sport, dport, payload);
        }
        let repr = self.v6_header(src, dst, ip::PROTO_UDP, opts.hops, 0)?;
        ipv6::build_ipv6_udp(out, &repr, sport, dport, payload)
    }

    fn v6_header(
        self,
        src: Addr,
        dst: Addr,
        next_header: u8,
        hops: u8,
        payload_len: u16,
    ) -> Result<Ipv6Repr, WireError> {
        let (Some(s), Some(d)) = (self.wire6(src), self.wire6(dst)) else {
            return Err(WireError::NoIpv6Form);
        };
        Ok(Ipv6Repr {
            src: s,
            dst: d,
            next_header,
            hop_limit: hops,
            traffic_class: 0,
            flow_label: 0,
            payload_len,
        })
    }

    /// The pseudo-header addresses of a segment from `src` to `dst`.
    pub fn pseudo(self, src: Addr, dst: Addr) -> PseudoAddrs {
        match (self.wire6(src), self.wire6(dst)) {
            (Some(s), Some(d)) => PseudoAddrs::v6(s, d),
            _ => PseudoAddrs::v4(
                src.v4().unwrap_or(Ipv4Addr::UNSPECIFIED),
                dst.v4().unwrap_or(Ipv4Addr::UNSPECIFIED),
            ),
        }
    }

    /// Write the network header in front of the TCP segment that fills
    /// `data[header_len()..]`.
    pub fn emit_tcp_header(
        self,
        data: &mut [u8],
        src: Addr,
        dst: Addr,
        opts: SendOpts,
    ) -> Result<(), WireError> {
        let hl = self.header_len();
        let seg = data.len().saturating_sub(hl);
        if self.v6.is_none() {
            if data.len() > ip::MAX_TOTAL_LEN {
                return Err(WireError::TooLong {
                    layer: Layer::Ipv4,
                    len: data.len(),
                });
            }
            return v4_header(src, dst, ip::PROTO_TCP, opts, seg as u16).emit(data);
        }
        let len = u16::try_from(seg).map_err(|_| WireError::TooLong {
            layer: Layer::Ipv6,
            len: data.len(),
        })?;
        let repr = self.v6_header(src, dst, ip::PROTO_TCP, opts.hops, len)?;
        let Some(head) = data.get_mut(..hl) else {
            return Err(WireError::BufferTooSmall {
                layer: Layer::Ipv6,
                need: hl,
                len: data.len(),
            });
        };
        head.copy_from_slice(&repr.header_bytes()?);
        Ok(())
    }
}

fn v4_header(src: Addr, dst: Addr, protocol: u8, opts: SendOpts, payload_len: u16) -> Ipv4Repr {
    Ipv4Repr {
        src: src.v4().unwrap_or(Ipv4Addr::UNSPECIFIED),
        dst: dst.v4().unwrap_or(Ipv4Addr::UNSPECIFIED),
        protocol,
        ttl: opts.hops,
        ident: opts.ident,
        dont_fragment: opts.dont_fragment,
        more_fragments: false,
        frag_offset: 0,
        payload_len,
    }
}

fn addr_at(pkt: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = pkt.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

/// The IP version of a packet (its first nibble).
pub fn version_of(pkt: &[u8]) -> Option<u8> {
    pkt.first().map(|b| b >> 4)
}

/// Whether a packet (or fragment) of either family carries TCP.
pub fn carries_tcp(pkt: &[u8]) -> bool {
    match version_of(pkt) {
        Some(6) => match pkt.get(6) {
            Some(&ipv6::NEXT_HEADER_FRAGMENT) => pkt.get(40) == Some(&ip::PROTO_TCP),
            Some(&n) => n == ip::PROTO_TCP,
            None => false,
        },
        _ => ip::carries_tcp(pkt),
    }
}

/// Decrement the TTL (IPv4, checksum patched) or hop limit (IPv6) of a
/// packet in place; returns the new value.
pub fn decrement_hops(pkt: &mut [u8]) -> Result<u8, WireError> {
    if version_of(pkt) != Some(6) {
        return ip::decrement_ttl(pkt);
    }
    let len = pkt.len();
    let Some(h) = pkt.get_mut(7).filter(|_| len >= ipv6::HEADER_LEN) else {
        return Err(WireError::Truncated {
            layer: Layer::Ipv6,
            need: ipv6::HEADER_LEN,
            len,
        });
    };
    if *h == 0 {
        return Err(WireError::TtlExpired);
    }
    *h -= 1;
    Ok(*h)
}

/// A packet's place in its datagram, for either family, fragments
/// included: the offset of its data in the datagram's transport part, the
/// upper-layer protocol and the data.
pub fn datagram_part(pkt: &[u8]) -> Option<(usize, u8, &[u8])> {
    if version_of(pkt) == Some(6) {
        let (h, body) = Ipv6Repr::parse(pkt).ok()?;
        if h.next_header != ipv6::NEXT_HEADER_FRAGMENT {
            return Some((0, h.next_header, body));
        }
        let (f, data) = Ipv6FragRepr::parse(body).ok()?;
        return Some((usize::from(f.offset), f.next_header, data));
    }
    let (h, data) = Ipv4Repr::parse(pkt).ok()?;
    Some((usize::from(h.frag_offset), h.protocol, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P6: NetPlan = NetPlan::v6(DEFAULT_PREFIX);

    #[test]
    fn node_addresses_round_trip_in_both_families() {
        for n in [0usize, 1, 41, 0xFFFC, 0xFFFD, 70_000] {
            assert_eq!(NetPlan::V4.addr_node(NetPlan::V4.node_addr(n)), Some(n));
            let a = P6.node_addr(n);
            assert_eq!(P6.addr_node(a), Some(n));
            let w = P6.wire6(a).unwrap();
            assert_eq!(P6.from_wire6(w), Some(a), "{w}");
        }
        assert_eq!(
            P6.wire6(P6.node_addr(0)).unwrap(),
            "2001:db8::ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            P6.wire6(P6.node_addr(0xFFFD)).unwrap(),
            "2001:db8::fffe".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(P6.wire6(Addr::BROADCAST), Some(ALL_NODES_V6));
        assert_eq!(
            P6.from_wire6(ALL_COAP_NODES_V6),
            Some(Addr::from(ALL_COAP_NODES_V4))
        );
        // outside the prefix, or an identifier the scheme never gives
        assert_eq!(P6.from_wire6("2001:db9::ff:fe00:1".parse().unwrap()), None);
        assert_eq!(
            P6.from_wire6("2001:db8::1:0:ff:fe00:1".parse().unwrap()),
            None
        );
        assert_eq!(P6.from_wire6("2001:db8::".parse().unwrap()), None);
    }

    #[test]
    fn prefixes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_prefix("2001:db8::/64"), Ok(DEFAULT_PREFIX));
        assert_eq!(
            parse_prefix("fd00:1:2:3::/64"),
            Ok([0xfd, 0, 0, 1, 0, 2, 0, 3])
        );
        assert!(parse_prefix("2001:db8::/48").unwrap_err().contains("/64"));
        assert!(parse_prefix("2001:db8::")
            .unwrap_err()
            .contains("not a prefix"));
        assert!(parse_prefix("2001:db8::1/64")
            .unwrap_err()
            .contains("after the first 64"));
        assert!(parse_prefix("fe80::/64").unwrap_err().contains("global"));
        assert!(parse_prefix("zz::/64").unwrap_err().contains("not an IPv6"));
    }

    #[test]
    fn udp_packets_parse_back_with_their_names_and_checksums() {
        let opts = SendOpts {
            hops: 64,
            ident: 7,
            dont_fragment: false,
        };
        for plan in [NetPlan::V4, P6] {
            let (a, b) = (plan.node_addr(3), plan.node_addr(9));
            let mut out = Vec::new();
            plan.build_udp(&mut out, (a, 1000), (b, 2000), b"hello", opts)
                .unwrap();
            assert_eq!(out.len(), plan.header_len() + 8 + 5);
            let (h, body) = plan.parse(&out).unwrap();
            assert_eq!((h.src, h.dst, h.proto, h.frag), (a, b, ip::PROTO_UDP, None));
            assert_eq!(plan.dst_of(&out), Some(b));
            assert_eq!(plan.src_of(&out), Some(a));
            assert_eq!(h.pseudo, plan.pseudo(a, b));
            assert_eq!(datagram_part(&out), Some((0, ip::PROTO_UDP, body)));
            assert!(!carries_tcp(&out));
            assert_eq!(decrement_hops(&mut out), Ok(63));
            assert!(
                plan.parse(&out).is_ok(),
                "checksum still right after the decrement"
            );
        }
        // a v6 run cannot name an IPv4 address on the wire
        let mut out = Vec::new();
        let v4 = Addr::from(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            P6.build_udp(&mut out, (v4, 1), (P6.node_addr(1), 2), b"x", opts),
            Err(WireError::NoIpv6Form)
        );
    }

    #[test]
    fn tcp_headers_in_both_families() {
        let opts = SendOpts {
            hops: 3,
            ident: 1,
            dont_fragment: true,
        };
        for plan in [NetPlan::V4, P6] {
            let mut data = vec![0u8; plan.header_len()];
            data.extend_from_slice(&[0u8; 20]);
            let (a, b) = (plan.node_addr(0), plan.node_addr(1));
            plan.emit_tcp_header(&mut data, a, b, opts).unwrap();
            let (h, seg) = plan.parse(&data).unwrap();
            assert_eq!((h.src, h.dst, h.proto), (a, b, ip::PROTO_TCP));
            assert_eq!(seg.len(), 20);
            assert!(carries_tcp(&data));
        }
        let mut short = vec![0u8; 10];
        assert!(decrement_hops(&mut short).is_err());
    }
}
