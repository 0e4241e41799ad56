//! The `udp` protocol: the no-reliability baseline. Each message is one UDP
//! datagram from the publisher to each intended receiver (broadcast as N
//! unicasts); the receiving application reads the message identity from the
//! payload's application header.

use super::{Ev, World};
use crate::net::ip::{self, Ipv4Repr};
use crate::net::packet::{PacketId, PacketMeta};
use crate::net::udp::{build_ipv4_udp, UdpRepr};
use crate::sim::{EventQueue, SimTime};

/// Source port of flow `fi` (ephemeral range, RFC 6335).
pub fn flow_src_port(fi: usize) -> u16 {
    49152 + (fi % 16384) as u16
}

impl World<'_> {
    /// Build an IPv4 packet around a UDP datagram (payload in `self.payload`)
    /// from `src` to `dst`; `None` if it cannot be encoded (longer than an
    /// IPv4 datagram can be — scenario limits keep payloads below that).
    pub(crate) fn new_udp_packet(
        &mut self,
        src: usize,
        dst: usize,
        sport: u16,
        dport: u16,
        meta: PacketMeta,
    ) -> Option<PacketId> {
        let ident = self.nodes[src].ip_ident;
        self.nodes[src].ip_ident = ident.wrapping_add(1);
        let repr = Ipv4Repr {
            src: ip::node_addr(src),
            dst: ip::node_addr(dst),
            protocol: ip::PROTO_UDP,
            ttl: self.sc.protocols.ip.ttl,
            ident,
            dont_fragment: self.sc.protocols.ip.dont_fragment,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 0,
        };
        let id = self.pool.alloc(meta);
        let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
        let built = build_ipv4_udp(&mut data, &repr, sport, dport, &self.payload);
        self.pool.get_mut(id).data = data;
        if built.is_err() {
            self.pool.free(id);
            return None;
        }
        self.nodes[src].stats.ip_sent += 1;
        Some(id)
    }

    pub(crate) fn udp_publish(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        fi: usize,
        node: usize,
        receivers: &[u32],
        counted: bool,
    ) {
        let port = self.sc.protocols.udp.port;
        let meta = PacketMeta {
            flow: fi as u32,
            kind: "udp",
            counted,
            created: now,
            app_bytes: self.payload.len() as u16,
            ..Default::default()
        };
        for &r in receivers {
            let Some(pkt) = self.new_udp_packet(node, r as usize, flow_src_port(fi), port, meta)
            else {
                continue;
            };
            if r as usize == node {
                // loopback: delivered without touching a link
                self.recorder
                    .on_receive(now, fi, self.recorder_msg_of(pkt), r);
                self.pool.free(pkt);
            } else {
                self.ip_output(now, q, node, pkt);
            }
        }
    }

    fn recorder_msg_of(&self, pkt: PacketId) -> u32 {
        let d = &self.pool.get(pkt).data;
        d.get(Ipv4Repr::HEADER_LEN + UdpRepr::HEADER_LEN..)
            .and_then(crate::app::workload::parse_payload)
            .map_or(u32::MAX, |(_, m)| m)
    }

    /// A UDP datagram arrived at `node`.
    pub(crate) fn udp_input(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        hdr: &Ipv4Repr,
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let Ok((udp, data)) = UdpRepr::parse(payload, hdr.src, hdr.dst) else {
            return; // bad checksum or length: discarded (RFC 768, RFC 1122 §4.1.3.4)
        };
        if udp.dst_port == self.sc.protocols.coap.port {
            let from = std::net::SocketAddrV4::new(hdr.src, udp.src_port);
            self.coap_input(now, q, node, from, data, meta);
        } else if udp.dst_port == self.sc.protocols.udp.port {
            if let Some((flow, msg)) = crate::app::workload::parse_payload(data) {
                self.recorder
                    .on_receive(now, flow as usize, msg, node as u32);
            }
        }
    }
}
