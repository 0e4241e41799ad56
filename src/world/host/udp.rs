//! Every node's UDP: a port table (which application listens on which port
//! of which node) and datagram send and receive. A datagram for a port no
//! application bound is discarded (an ICMP port unreachable is not
//! modelled).

use super::Received;
use crate::net::addr::{Addr, SockAddr};
use crate::net::l3::{L3Hdr, SendOpts};
use crate::net::packet::{PacketHandle, PacketMeta};
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

    pub(crate) fn app_of(&self, node: usize, port: u16) -> Option<AppId> {
        self.ports
            .get(node)?
            .iter()
            .find(|e| e.0 == port)
            .map(|e| e.1)
    }
}

impl World<'_> {
    /// Build an IP packet around a UDP datagram carrying `payload` from
    /// `src:sport` to `dst:dport` (a node's address or a group); `None` if
    /// it cannot be encoded (longer than an IP datagram can be — scenario
    /// limits keep payloads below that).
    pub(crate) fn new_udp_packet(
        &mut self,
        (src, sport): (usize, u16),
        (dst, dport): (Addr, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) -> Option<PacketHandle> {
        let opts = self.send_opts(src);
        let id = self.pool.alloc(meta);
        let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
        let from = (self.net.node_addr(src), sport);
        let built = self
            .net
            .build_udp(&mut data, from, (dst, dport), payload, opts);
        self.pool.get_mut(id).data = data;
        if built.is_err() {
            self.pool.free(id);
            return None;
        }
        self.nodes[src].stats.ip_sent += 1;
        Some(id)
    }

    /// The header fields a packet `node` sends now carries (the IPv4
    /// identification advances).
    pub(crate) fn send_opts(&mut self, node: usize) -> SendOpts {
        let ident = self.nodes[node].ip_ident;
        self.nodes[node].ip_ident = ident.wrapping_add(1);
        SendOpts {
            hops: self.sc.protocols.ip.ttl,
            ident,
            dont_fragment: self.sc.protocols.ip.dont_fragment,
        }
    }

    /// Send a datagram from `src:sport` to `dst:dport` (a node sending to
    /// itself gets it back as its own event; 255.255.255.255 reaches the
    /// sender's link neighbours). From a port that carries DTLS to a
    /// unicast peer it goes through the association (`host::dtls`).
    pub(crate) fn udp_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        from: (usize, u16),
        to: (Addr, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) {
        if self.dtls.is_secured(from.0, from.1) && !crate::net::l3::NetPlan::is_group(to.0) {
            return self.dtls_send(now, queue, from, to, payload, meta);
        }
        self.udp_send_plain(now, queue, from, to, payload, meta);
    }

    /// `udp_send` past the security overlay.
    pub(crate) fn udp_send_plain(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        from: (usize, u16),
        to: (Addr, u16),
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
        hdr: &L3Hdr,
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let Ok((udp, data)) =
            crate::net::udp::UdpRepr::parse_with(payload, hdr.pseudo, self.net.is_v6())
        else {
            return; // bad checksum or length: discarded (RFC 768, RFC 1122 §4.1.3.4, RFC 8200 §8.1)
        };
        let Some(app) = self.udp.app_of(node, udp.dst_port) else {
            return;
        };
        let from = SockAddr::new(hdr.src, udp.src_port);
        let group = crate::net::l3::NetPlan::is_group(hdr.dst);
        let rx = Received {
            node: node as u32,
            port: udp.dst_port,
            from,
            data,
            meta,
            group,
        };
        if !group && self.dtls.is_secured(node, udp.dst_port) {
            return self.dtls_input(now, queue, app, rx);
        }
        self.datagram(now, queue, app, rx);
    }
}
