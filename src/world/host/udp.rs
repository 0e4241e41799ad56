//! Every node's UDP: a port table (which application listens on which port
//! of which node) and datagram send and receive. A datagram for a port no
//! application bound is discarded (an ICMP port unreachable is not
//! modelled).

use super::Received;
use crate::net::addr::SockAddr;
use crate::net::ip::{self, Ipv4Repr};
use crate::net::packet::{PacketHandle, PacketMeta};
use crate::net::udp::{build_ipv4_udp, UdpRepr};
use crate::sim::{EventQueue, SimTime};
use crate::world::apps::AppId;
use crate::world::{Ev, World};

/// The port is bound already (by the named application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("UDP port {port} of node {node} is bound already")]
pub struct PortInUse {
    pub node: u32,
    pub port: u16,
}

/// Every node's bound UDP ports.
#[derive(Debug, Default)]
pub(crate) struct UdpLayer {
    /// Per node: (port, application), few entries each.
    ports: Vec<Vec<(u16, AppId)>>,
}

impl UdpLayer {
    pub(crate) fn new(nodes: usize) -> Self {
        UdpLayer {
            ports: vec![Vec::new(); nodes],
        }
    }

    /// Bind `node:port` to `app`; binding the same port to the same
    /// application again is a no-op.
    pub(crate) fn bind(&mut self, node: u32, port: u16, app: AppId) -> Result<(), PortInUse> {
        let p = &mut self.ports[node as usize];
        match p.iter().find(|e| e.0 == port) {
            Some(&(_, a)) if a == app => Ok(()),
            Some(_) => Err(PortInUse { node, port }),
            None => {
                p.push((port, app));
                Ok(())
            }
        }
    }

    fn app_of(&self, node: usize, port: u16) -> Option<AppId> {
        self.ports
            .get(node)?
            .iter()
            .find(|e| e.0 == port)
            .map(|e| e.1)
    }
}

impl World<'_> {
    /// Build an IPv4 packet around a UDP datagram carrying `payload` from
    /// `src:sport` to `dst:dport` (a node's address or the limited
    /// broadcast); `None` if it cannot be encoded (longer than an IPv4
    /// datagram can be — scenario limits keep payloads below that).
    pub(crate) fn new_udp_packet(
        &mut self,
        (src, sport): (usize, u16),
        (dst, dport): (std::net::Ipv4Addr, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) -> Option<PacketHandle> {
        let ident = self.nodes[src].ip_ident;
        self.nodes[src].ip_ident = ident.wrapping_add(1);
        let repr = Ipv4Repr {
            src: ip::node_addr(src),
            dst,
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
        let built = build_ipv4_udp(&mut data, &repr, sport, dport, payload);
        self.pool.get_mut(id).data = data;
        if built.is_err() {
            self.pool.free(id);
            return None;
        }
        self.nodes[src].stats.ip_sent += 1;
        Some(id)
    }

    /// Send a datagram from `src:sport` to `dst:dport` (a node sending to
    /// itself gets it back as its own event; 255.255.255.255 reaches the
    /// sender's link neighbours).
    pub(crate) fn udp_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        from: (usize, u16),
        to: (std::net::Ipv4Addr, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) {
        if let Some(pkt) = self.new_udp_packet(from, to, payload, meta) {
            self.host_output(now, queue, from.0, pkt);
        }
    }

    /// A UDP datagram arrived at `node`: to the application bound to its
    /// port.
    pub(crate) fn udp_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        hdr: &Ipv4Repr,
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let Ok((udp, data)) = UdpRepr::parse(payload, hdr.src, hdr.dst) else {
            return; // bad checksum or length: discarded (RFC 768, RFC 1122 §4.1.3.4)
        };
        let Some(app) = self.udp.app_of(node, udp.dst_port) else {
            return;
        };
        let from = SockAddr::from(std::net::SocketAddrV4::new(hdr.src, udp.src_port));
        self.datagram(
            now,
            queue,
            app,
            Received {
                node: node as u32,
                port: udp.dst_port,
                from,
                data,
                meta,
                group: crate::world::radio::is_group_addr(hdr.dst),
            },
        );
    }
}
