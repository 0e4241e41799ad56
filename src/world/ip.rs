//! The IP layer of every node and the link pipeline: routing, fragmentation,
//! queueing, transmission, loss, propagation, forwarding and reassembly.

use super::{Ev, World};
use crate::net::frag::{self, Reassembler};
use crate::net::frag6::{self, Reassembler6};
use crate::net::l3::{self, NetPlan};
use crate::net::packet::PacketHandle;
use crate::sim::{EventQueue, SimTime};
use std::io::Write;

/// Outcome of a packet at a hop, as written to `packets.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    LostChannel,
    LostQueue,
    LostLinkDown,
    LostMtu,
    NoRoute,
    /// Dropped by a node's full processing queue (`world::proc`).
    LostProcessing,
    /// Dropped at its source by a `drop_packet` fault (`world::faults`).
    FaultDropped,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::LostChannel => "lost_channel",
            Outcome::LostQueue => "lost_queue",
            Outcome::LostLinkDown => "lost_link_down",
            Outcome::LostMtu => "lost_mtu",
            Outcome::NoRoute => "no_route",
            Outcome::LostProcessing => "lost_processing",
            Outcome::FaultDropped => "fault_dropped",
        }
    }
}

/// A node's IP reassembly (boxed in its `Node`: most nodes never
/// reassemble): IPv4's (RFC 791) or IPv6's (RFC 8200 §4.5).
#[derive(Debug)]
pub(crate) enum NodeReassembly {
    V4(Reassembler),
    V6(Reassembler6),
}

impl NodeReassembly {
    fn new(v6: bool, timeout: crate::sim::SimDuration) -> Self {
        if v6 {
            NodeReassembly::V6(Reassembler6::new(timeout))
        } else {
            NodeReassembly::V4(Reassembler::new(timeout))
        }
    }

    /// The fragment `pkt` at `now`: the whole datagram once complete.
    fn push(&mut self, now: SimTime, pkt: &[u8]) -> Option<Vec<u8>> {
        match self {
            NodeReassembly::V4(r) => r.push(now, pkt).ok().flatten(),
            NodeReassembly::V6(r) => r.push(now, pkt).ok().flatten(),
        }
    }

    pub(crate) fn expire(&mut self, now: SimTime) {
        match self {
            NodeReassembly::V4(r) => {
                r.expire(now);
            }
            NodeReassembly::V6(r) => {
                r.expire(now);
            }
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        match self {
            NodeReassembly::V4(r) => r.recycle(buf),
            NodeReassembly::V6(r) => r.recycle(buf),
        }
    }
}

impl World<'_> {
    /// Write one `packets.csv` row (when requested) about packet `pkt`.
    fn packet_row(
        &mut self,
        now: SimTime,
        link: Option<(usize, usize)>,
        pkt: PacketHandle,
        outcome: Outcome,
    ) {
        if let Some(t) = self.trace.as_mut() {
            let names = &self.names;
            let ends = link.map(|(l, d)| {
                let dir = &self.links[l].dirs[d];
                (dir.from as usize, dir.to as usize)
            });
            let r = t.hop(
                now,
                (self.sc, names),
                ends,
                pkt,
                self.pool.get(pkt),
                outcome.as_str(),
            );
            self.io_result(r);
        }
        if self.packets_out.is_none() {
            return;
        }
        let p = self.pool.get(pkt);
        let protocol = if p.meta.flow == crate::net::packet::NO_FLOW {
            "ip"
        } else {
            self.sc.flows[p.meta.flow as usize].protocol.as_str()
        };
        let (lname, from, to) = match link {
            Some((l, d)) => {
                let dir = &self.links[l].dirs[d];
                (
                    self.sc.links[l].name.as_str(),
                    self.names[dir.from as usize].as_str(),
                    self.names[dir.to as usize].as_str(),
                )
            }
            None => ("", "", ""),
        };
        let conn = self.tcp.records.get(p.meta.conn as usize).map(|r| r.conn);
        let r = match self.packets_out.as_mut() {
            Some(w) => writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{}",
                crate::metrics::record::fmt_ms(now.0),
                self.run_id,
                lname,
                from,
                to,
                protocol,
                p.meta.kind,
                p.data.len(),
                outcome.as_str(),
                crate::metrics::record::OptU32(conn)
            ),
            None => Ok(()),
        };
        self.io_result(r);
    }

    /// Count a drop against the packet's flow and free it.
    pub(crate) fn drop_packet(
        &mut self,
        now: SimTime,
        link: Option<(usize, usize)>,
        pkt: PacketHandle,
        outcome: Outcome,
    ) {
        self.packet_row(now, link, pkt, outcome);
        let meta = self.pool.get(pkt).meta;
        if meta.counted {
            if let Some(s) = self.flow_stats(meta.flow) {
                match outcome {
                    Outcome::LostChannel => s.drops_channel += 1,
                    Outcome::LostQueue | Outcome::LostProcessing => s.drops_queue += 1,
                    Outcome::LostLinkDown => s.drops_link_down += 1,
                    Outcome::LostMtu => s.drops_mtu += 1,
                    Outcome::NoRoute => s.drops_no_route += 1,
                    Outcome::FaultDropped => s.drops_fault += 1,
                    Outcome::Delivered => {}
                }
            }
        }
        self.pool.free(pkt);
    }

    /// Send an IP packet held in `pkt` from `node` (its source or a router).
    pub(crate) fn ip_output(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let addr = self.net.dst_of(&self.pool.get(pkt).data);
        if addr.is_some_and(NetPlan::is_group) {
            if self.radio_broadcast(now, queue, node, pkt) {
                return; // IP multicast / broadcast: one link-layer broadcast on the node's medium
            }
            if addr.is_some_and(|a| a.is_broadcast()) {
                return self.wired_broadcast(now, queue, node, pkt);
            }
        }
        let dst = addr.and_then(|a| self.net.addr_node(a));
        // every IPv6 path carries 1280 bytes (RFC 8200 §5, checked when
        // loading): only a longer packet needs its path walked
        let long = self.pool.get(pkt).data.len() > crate::net::ipv6::MIN_MTU;
        if let Some(d) = dst.filter(|&d| long && d != node && self.net.is_v6()) {
            // RFC 8200 §4.5: only the source fragments, to the path MTU
            // (routers drop what does not fit; Packet Too Big is not modelled)
            if self.net.src_of(&self.pool.get(pkt).data) == Some(self.net.node_addr(node)) {
                let pmtu = usize::from(self.path_mtu(node, d));
                if self.pool.get(pkt).data.len() > pmtu {
                    return self.source_fragment_v6(now, queue, node, pkt, pmtu);
                }
            }
        }
        if dst == Some(node) {
            // loopback (e.g. a subscriber on the broker's own node): handed
            // back up at the same instant, as its own event, so no protocol
            // object is re-entered while it is sending
            let _ = queue.push(
                now,
                Ev::Loopback {
                    node: node as u32,
                    pkt,
                },
            );
            return;
        }
        let hop = dst.and_then(|d| self.routing.next_hop(node, d));
        match hop {
            Some(h) if self.radio.is_edge(h.link as usize) => {
                self.radio_hop(now, queue, h.link as usize, h.dir as usize, pkt)
            }
            Some(h) => self.link_output(now, queue, h.link as usize, h.dir as usize, pkt),
            None => self.drop_packet(now, None, pkt, Outcome::NoRoute),
        }
    }

    /// The limited broadcast from a node without a radio medium: one copy on
    /// each of its wired links (RFC 919: every host of the attached network;
    /// a point-to-point link's network is its other end). Routers do not
    /// forward it (`ip_input`). With no link at all it has nowhere to go.
    fn wired_broadcast(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let mut sent = false;
        for i in 0..self.routing.adjacency(node).len() {
            let a = self.routing.adjacency(node)[i];
            if self.radio.is_edge(a.link as usize) {
                continue;
            }
            let p = self.pool.get(pkt);
            let (meta, data) = (p.meta, std::mem::take(&mut self.pool.get_mut(pkt).data));
            let copy = self.pool.alloc_with(meta, &data);
            self.pool.get_mut(pkt).data = data;
            if let Some(t) = self.trace.as_mut() {
                t.copy(pkt, copy);
            }
            self.link_output(now, queue, a.link as usize, a.dir as usize, copy);
            sent = true;
        }
        if sent {
            self.pool.free(pkt);
        } else {
            self.drop_packet(now, None, pkt, Outcome::NoRoute);
        }
    }

    /// Hops on the current route from `from` to `to`.
    pub(crate) fn route_hops(&self, from: usize, to: usize) -> Option<u32> {
        self.routing.hops(from, to)
    }

    /// Hand a packet to a link direction, fragmenting it to the link's MTU.
    fn link_output(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
        pkt: PacketHandle,
    ) {
        let mtu = self.links[link].mtu as usize;
        if self.pool.get(pkt).data.len() <= mtu {
            return self.offer(now, queue, link, dir, pkt);
        }
        match self.fragment_packet(pkt, mtu) {
            Ok(ids) => {
                for &f in &ids {
                    self.offer(now, queue, link, dir, f);
                }
                self.frag_ids = ids;
            }
            Err(ids) => {
                self.frag_ids = ids;
                self.drop_packet(now, Some((link, dir)), pkt, Outcome::LostMtu);
            }
        }
    }

    /// RFC 791 §3.2: fragment `pkt` to `mtu`. `Ok`: the fragments (in
    /// `frag_ids`' buffer, which the caller hands back), `pkt` freed; `Err`:
    /// DF forbids it, `pkt` untouched (the caller drops it).
    pub(crate) fn fragment_packet(
        &mut self,
        pkt: PacketHandle,
        mtu: usize,
    ) -> Result<Vec<PacketHandle>, Vec<PacketHandle>> {
        let meta = self.pool.get(pkt).meta;
        let mut ids = std::mem::take(&mut self.frag_ids);
        let mut scratch = std::mem::take(&mut self.frag_scratch);
        ids.clear();
        let data = std::mem::take(&mut self.pool.get_mut(pkt).data);
        let pool = &mut self.pool;
        let r = frag::fragment(&data, mtu, &mut scratch, |f| {
            ids.push(pool.alloc_with(meta, f));
        });
        self.pool.get_mut(pkt).data = data;
        self.frag_scratch = scratch;
        if let Some(t) = self.trace.as_mut() {
            for &f in &ids {
                t.copy(pkt, f);
            }
        }
        match r {
            Ok(_) => {
                self.pool.free(pkt);
                Ok(ids)
            }
            Err(_) => {
                for &f in &ids {
                    self.pool.free(f);
                }
                ids.clear();
                Err(ids)
            }
        }
    }

    /// RFC 8200 §4.5: the source cuts an IPv6 packet longer than the path
    /// MTU into fragments (Fragment header, identification from the node's
    /// counter, which advances per packet sent) and routes each.
    fn source_fragment_v6(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
        pmtu: usize,
    ) {
        let meta = self.pool.get(pkt).meta;
        let ident = u32::from(self.nodes[node].ip_ident);
        let mut ids = std::mem::take(&mut self.frag_ids);
        let mut scratch = std::mem::take(&mut self.frag_scratch);
        ids.clear();
        let data = std::mem::take(&mut self.pool.get_mut(pkt).data);
        let pool = &mut self.pool;
        let r = frag6::fragment_v6(&data, pmtu, ident, &mut scratch, |f| {
            ids.push(pool.alloc_with(meta, f));
        });
        self.pool.get_mut(pkt).data = data;
        self.frag_scratch = scratch;
        if r.is_err() {
            for &f in &ids {
                self.pool.free(f);
            }
            self.frag_ids = ids;
            return self.drop_packet(now, None, pkt, Outcome::LostMtu);
        }
        if let Some(t) = self.trace.as_mut() {
            for &f in &ids {
                t.copy(pkt, f);
            }
        }
        self.pool.free(pkt);
        for &f in &ids {
            self.ip_output(now, queue, node, f);
        }
        ids.clear();
        self.frag_ids = ids;
    }

    /// Drop a packet that DF keeps from being fragmented onto a medium.
    pub(crate) fn drop_packet_mtu(&mut self, now: SimTime, pkt: PacketHandle) {
        self.drop_packet(now, None, pkt, Outcome::LostMtu);
    }

    /// The queue rule, then start transmitting if the transmitter is idle.
    fn offer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
        pkt: PacketHandle,
    ) {
        if !self.links[link].up {
            return self.drop_packet(now, Some((link, dir)), pkt, Outcome::LostLinkDown);
        }
        match self.links[link].offer(dir, pkt) {
            crate::link::Offer::StartNow => self.start_tx(now, queue, link, dir, pkt),
            crate::link::Offer::Queued => {}
            crate::link::Offer::Dropped => {
                self.drop_packet(now, Some((link, dir)), pkt, Outcome::LostQueue)
            }
        }
    }

    /// Start serialising `pkt`: the loss rule decides its fate now; the pcap and
    /// `packets.csv` see it at this instant (sender side).
    fn start_tx(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
        pkt: PacketHandle,
    ) {
        let len = self.pool.get(pkt).data.len();
        let l = &mut self.links[link];
        let tx = l.tx_time(len);
        let delay = l.delay;
        let direction = &mut l.dirs[dir];
        let lost = direction
            .channel
            .is_lost_sized(now, len, &mut direction.rng);
        direction.stats.tx_packets += 1;
        direction.stats.tx_bytes += len as u64;
        direction.stats.busy_ns += tx.0;
        let meta = self.pool.get(pkt).meta;
        if meta.counted {
            let data = &self.pool.get(pkt).data;
            let l = crate::net::packet::layer_split(data, &meta);
            let tcp = l3::carries_tcp(data);
            if let Some(s) = self.flow_stats(meta.flow) {
                s.bytes_on_wire += len as u64;
                if tcp {
                    s.bytes_on_wire_tcp += len as u64;
                }
                if meta.retx {
                    s.bytes_retransmissions += len as u64;
                } else {
                    s.add_layers(&l);
                }
            }
        }
        if let Some(w) = self.pcaps.get_mut(link) {
            let r = w.write_packet(now, &self.pool.get(pkt).data);
            self.io_result(r);
        }
        let _ = queue.push(
            now + tx,
            Ev::TxDone {
                link: link as u32,
                dir: dir as u8,
            },
        );
        if lost {
            self.links[link].dirs[dir].stats.lost_channel += 1;
            self.drop_packet(now, Some((link, dir)), pkt, Outcome::LostChannel);
        } else {
            self.packet_row(now, Some((link, dir)), pkt, Outcome::Delivered);
            self.links[link].dirs[dir].stats.delivered += 1;
            let _ = queue.push(
                now + tx + delay,
                Ev::Arrive {
                    link: link as u32,
                    dir: dir as u8,
                    pkt,
                },
            );
        }
    }

    pub(crate) fn on_tx_done(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
    ) {
        let direction = &mut self.links[link].dirs[dir];
        match direction.queue.pop_front() {
            Some(next) => self.start_tx(now, queue, link, dir, next),
            None => direction.busy = false,
        }
    }

    /// Drop everything waiting in a link direction's queue.
    pub(crate) fn flush_queue(&mut self, now: SimTime, link: usize, dir: usize) {
        while let Some(p) = self.links[link].dirs[dir].queue.pop_front() {
            self.links[link].dirs[dir].stats.lost_link_down += 1;
            self.drop_packet(now, Some((link, dir)), p, Outcome::LostLinkDown);
        }
    }

    pub(crate) fn on_arrive(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
        pkt: PacketHandle,
    ) {
        let node = self.links[link].dirs[dir].to as usize;
        if !self.nodes[node].up {
            return self.drop_node_down(now, node, pkt);
        }
        self.ip_input(now, queue, node, pkt);
    }

    /// A looped-back packet reaches its own node's transport layer.
    pub(crate) fn on_loopback(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        if !self.nodes[node].up {
            self.pool.free(pkt);
            return;
        }
        self.ip_input(now, queue, node, pkt);
    }

    /// A packet reached `node`: deliver it locally or forward it.
    pub(crate) fn ip_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let data = &self.pool.get(pkt).data;
        let Ok((hdr, _)) = self.net.parse(data) else {
            self.pool.free(pkt); // corrupt header: silently discarded (RFC 1122 §3.2.1.2)
            return;
        };
        // multicast and broadcast are taken locally and never forwarded (link scope)
        if self.net.addr_node(hdr.dst) != Some(node) && !NetPlan::is_group(hdr.dst) {
            if !self.nodes[node].forwards {
                self.pool.free(pkt);
                return;
            }
            // RFC 791 / RFC 8200 §3: decrement TTL or hop limit; discard at zero
            match l3::decrement_hops(&mut self.pool.get_mut(pkt).data) {
                Ok(ttl) if ttl > 0 => {
                    self.nodes[node].stats.ip_forwarded += 1;
                    self.ip_output(now, queue, node, pkt);
                }
                _ => self.drop_packet(now, None, pkt, Outcome::NoRoute),
            }
            return;
        }
        if self.nodes[node].proc.is_some() {
            return self.proc_input(now, queue, node, pkt);
        }
        self.ip_deliver_parsed(now, queue, node, pkt, hdr.frag.is_some());
    }

    /// A packet addressed to `node` goes up its stack: reassembly, then
    /// the transport layer.
    pub(crate) fn ip_deliver(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let Ok((hdr, _)) = self.net.parse(&self.pool.get(pkt).data) else {
            self.pool.free(pkt);
            return;
        };
        self.ip_deliver_parsed(now, queue, node, pkt, hdr.frag.is_some());
    }

    fn ip_deliver_parsed(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
        fragment: bool,
    ) {
        self.nodes[node].stats.ip_received += 1;
        if fragment {
            self.reassemble(now, queue, node, pkt);
        } else {
            let meta = self.pool.get(pkt).meta;
            let data = std::mem::take(&mut self.pool.get_mut(pkt).data);
            if let Some(t) = self.trace.as_mut() {
                let r = t.recv(now, (self.sc, &self.names), node, pkt, &data, &meta);
                self.io_result(r);
            }
            self.transport_input(now, queue, node, &data, meta);
            self.pool.get_mut(pkt).data = data;
            self.pool.free(pkt);
        }
    }

    fn reassemble(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let timeout = self.sc.protocols.ip.reassembly_timeout;
        let meta = self.pool.get(pkt).meta;
        let key = match self.net.parse(&self.pool.get(pkt).data) {
            Ok((h, _)) => (
                node as u32,
                h.src.to_bits(),
                h.frag.map_or(0, |f| f.ident),
                h.proto,
            ),
            Err(_) => return self.pool.free(pkt),
        };
        if let std::collections::btree_map::Entry::Vacant(e) = self.frag_owner.entry(key) {
            // first fragment of this datagram here: its timer starts now
            e.insert((meta.flow, meta.counted, now));
            let _ = queue.push(now + timeout, Ev::Reassembly { node: node as u32 });
        }
        let v6 = self.net.is_v6();
        let r = self.nodes[node]
            .reassembler
            .get_or_insert_with(|| Box::new(NodeReassembly::new(v6, timeout)));
        let res = r.push(now, &self.pool.get(pkt).data);
        self.pool.free(pkt);
        if let Some(whole) = res {
            self.frag_owner.remove(&key);
            if let Some(t) = self.trace.as_mut() {
                let r = t.recv(now, (self.sc, &self.names), node, pkt, &whole, &meta);
                self.io_result(r);
            }
            self.transport_input(now, queue, node, &whole, meta);
            if let Some(r) = self.nodes[node].reassembler.as_mut() {
                r.recycle(whole);
            }
        }
    }

    /// RFC 791 §3.2: a datagram whose timer ran out is discarded; the loss is
    /// counted against its flow as `drops_reassembly`.
    pub(crate) fn on_reassembly_timer(&mut self, now: SimTime, node: usize) {
        let timeout = self.sc.protocols.ip.reassembly_timeout;
        if let Some(r) = self.nodes[node].reassembler.as_mut() {
            r.expire(now);
        }
        self.lowpan_expire(now, node);
        let lo = (node as u32, 0, 0, 0);
        let hi = (node as u32, u32::MAX, u32::MAX, u8::MAX);
        let expired: Vec<_> = self
            .frag_owner
            .range(lo..=hi)
            .filter(|(_, &(_, _, first))| first + timeout <= now)
            .map(|(k, &v)| (*k, v))
            .collect();
        for (k, (flow, counted, _)) in expired {
            self.frag_owner.remove(&k);
            if counted {
                if let Some(s) = self.flow_stats(flow) {
                    s.drops_reassembly += 1;
                }
            }
        }
    }

    /// Deliver a whole IP datagram to the transport layer of `node`.
    fn transport_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        data: &[u8],
        meta: crate::net::packet::PacketMeta,
    ) {
        let Ok((hdr, payload)) = self.net.parse(data) else {
            return;
        };
        if hdr.proto == crate::net::ip::PROTO_UDP {
            self.udp_input(now, queue, node, &hdr, payload, meta);
        } else if hdr.proto == crate::net::ip::PROTO_TCP {
            self.tcp_input(now, queue, node, &hdr, payload, meta);
        }
    }
}
