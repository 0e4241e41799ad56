//! Packet-level faults (`[[events]]` `drop_packet`, `duplicate_packet`,
//! `delay_packet`, `corrupt_packet`): applied where a packet's source host
//! hands it to its stack's send side (`World::host_output`), once per
//! packet, before fragmentation and before any hop.
//!
//! A scenario without packet faults has no fault state and `host_output`
//! only tests `faults.is_empty()`. With faults, each packet is compared with
//! every fault active at that instant (in event order); matching counts
//! packets only, so whether a fault hits the n-th packet does not depend on
//! what the other faults do. A random corrupt offset comes from the fault's
//! own stream `SimRng::stream(seed, "fault/<event index>")` (the index in
//! the scenario's events ordered by `at`), drawn only when the fault hits.

use super::ip::Outcome;
use super::{Ev, World};
use crate::net::checksum;
use crate::net::ip;
use crate::net::l3::NetPlan;
use crate::net::packet::{PacketHandle, NO_FLOW};
use crate::scenario::model::{Action, CorruptLayer, FaultEffect, PacketFault, Scenario, Select};
use crate::sim::{EventQueue, SimDuration, SimRng, SimTime};

/// Run-time state of one packet-fault event.
pub(crate) struct FaultState {
    /// Index into `Scenario::events`.
    ev: usize,
    at: SimTime,
    /// Packets that matched while the fault was active.
    matched: u64,
    /// Packets it acted on.
    hits: u64,
    /// Random corrupt offsets.
    rng: SimRng,
}

/// The fault state of every packet-fault event of `sc` (empty without).
pub(crate) fn states(sc: &Scenario) -> Vec<FaultState> {
    sc.events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.action, Action::PacketFault(_)))
        .map(|(i, e)| FaultState {
            ev: i,
            at: e.at,
            matched: 0,
            hits: 0,
            rng: SimRng::stream(sc.seed, &format!("fault/{i}")),
        })
        .collect()
}

impl FaultState {
    /// Whether `f` is active at `now` (window and count).
    fn active(&self, f: &PacketFault, now: SimTime) -> bool {
        now >= self.at
            && f.until.is_none_or(|u| now < u)
            && f.count.is_none_or(|c| self.hits < c)
            && match f.matcher.select {
                Select::Nth(n) => self.matched < n,
                Select::Every(_) => true,
            }
    }
}

impl World<'_> {
    /// Apply the active packet faults to `pkt`, sent by its source host
    /// `node`. `true`: the faults took the packet over (dropped it, delayed
    /// it or sent it and its duplicate); `false`: send it as usual (it may
    /// have been corrupted in place).
    pub(crate) fn apply_faults(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) -> bool {
        let (sc, net) = (self.sc, self.net);
        let (flow, kind, src, dst) = {
            let p = self.pool.get(pkt);
            (
                p.meta.flow,
                p.meta.kind,
                self.net.src_of(&p.data).and_then(|a| self.net.addr_node(a)),
                self.net.dst_of(&p.data).and_then(|a| self.net.addr_node(a)),
            )
        };
        let protocol = if flow == NO_FLOW {
            "ip"
        } else {
            sc.flows
                .get(flow as usize)
                .map_or("ip", |f| f.protocol.as_str())
        };
        let mut drop = false;
        let mut duplicate = false;
        let mut delay = SimDuration::ZERO;
        for i in 0..self.faults.len() {
            let Action::PacketFault(f) = &sc.events[self.faults[i].ev].action else {
                continue;
            };
            let st = &mut self.faults[i];
            if !st.active(f, now) {
                continue;
            }
            let m = &f.matcher;
            let fits = m.protocol.as_deref().is_none_or(|p| p == protocol)
                && m.kind.as_deref().is_none_or(|k| k == kind)
                && m.from.is_none_or(|n| src == Some(n))
                && m.to.is_none_or(|n| dst == Some(n))
                && m.flow.is_none_or(|fl| flow as usize == fl);
            if !fits {
                continue;
            }
            st.matched += 1;
            let hit = match m.select {
                Select::Nth(n) => st.matched == n,
                Select::Every(k) => st.matched.is_multiple_of(k),
            };
            if !hit {
                continue;
            }
            st.hits += 1;
            match f.effect {
                FaultEffect::Drop => drop = true,
                FaultEffect::Duplicate => duplicate = true,
                FaultEffect::Delay { by } => delay += by,
                FaultEffect::Corrupt { offset, layer } => {
                    let data = &mut self.pool.get_mut(pkt).data;
                    corrupt(data, net, offset, layer, &mut st.rng);
                }
            }
        }
        if drop {
            let hop = self.first_hop(node, dst);
            self.drop_packet(now, hop, pkt, Outcome::FaultDropped);
            return true;
        }
        if !duplicate && delay == SimDuration::ZERO {
            return false;
        }
        let copy = duplicate.then(|| {
            let p = self.pool.get(pkt);
            let (meta, data) = (p.meta, std::mem::take(&mut self.pool.get_mut(pkt).data));
            let c = self.pool.alloc_with(meta, &data);
            self.pool.get_mut(pkt).data = data;
            if let Some(t) = self.trace.as_mut() {
                t.copy(pkt, c);
            }
            c
        });
        for p in std::iter::once(pkt).chain(copy) {
            if delay == SimDuration::ZERO {
                self.host_send(now, queue, node, p);
            } else {
                let _ = queue.push(
                    now + delay,
                    Ev::FaultRelease {
                        node: node as u32,
                        pkt: p,
                    },
                );
            }
        }
        true
    }

    /// A packet a `delay_packet` held back goes on its way (lost when its
    /// node crashed meanwhile).
    pub(crate) fn on_fault_release(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        self.resume_if_up(now, queue, node, pkt, Self::host_send);
    }

    /// The wired link direction a packet from `node` to `dst` would take
    /// first (for the `packets.csv` row of a dropped one); `None` over a
    /// radio medium or without a route.
    fn first_hop(&self, node: usize, dst: Option<usize>) -> Option<(usize, usize)> {
        let h = self.routing.next_hop(node, dst?)?;
        (!self.radio.is_edge(h.link as usize)).then_some((h.link as usize, h.dir as usize))
    }
}

/// Flip (XOR 0xFF) one byte of the IP packet `data`: in its transport
/// segment (`wire`, checksums left stale) or its transport payload
/// (`payload`, the UDP/TCP checksum recomputed). An offset past the layer's
/// end, or an empty layer, leaves the packet as it is.
fn corrupt(
    data: &mut [u8],
    net: NetPlan,
    offset: Option<u32>,
    layer: CorruptLayer,
    rng: &mut SimRng,
) {
    let Ok((hdr, body)) = net.parse(data) else {
        return;
    };
    let (ihl, proto, pseudo) = (data.len() - body.len(), hdr.proto, hdr.pseudo);
    let thl = match (layer, proto) {
        (CorruptLayer::Wire, _) => 0,
        (CorruptLayer::Payload, ip::PROTO_UDP) => 8,
        (CorruptLayer::Payload, ip::PROTO_TCP) => match data.get(ihl + 12) {
            Some(b) => usize::from(b >> 4) * 4,
            None => return,
        },
        // other transports: no payload layer this model knows
        (CorruptLayer::Payload, _) => return,
    };
    let start = ihl + thl;
    let len = data.len().saturating_sub(start);
    if len == 0 {
        return;
    }
    let off = match offset {
        Some(o) => o as usize,
        None => rng.below(len as u64) as usize,
    };
    if off >= len {
        return;
    }
    data[start + off] ^= 0xFF;
    if layer == CorruptLayer::Payload {
        let seg = &mut data[ihl..];
        if proto == ip::PROTO_TCP {
            crate::transport::tcp::fill_checksum(seg, pseudo);
        } else if seg.len() >= 8 && seg[6..8] != [0, 0] {
            // RFC 768 / RFC 8200 §8.1: recompute over the pseudo-header; 0 is
            // sent as 0xFFFF
            seg[6..8].copy_from_slice(&[0, 0]);
            let len = u32::try_from(seg.len()).unwrap_or(u32::MAX);
            let acc = pseudo.sum(ip::PROTO_UDP, len);
            let c = match !checksum::fold(checksum::accumulate(acc, seg)) {
                0 => 0xFFFF,
                c => c,
            };
            seg[6..8].copy_from_slice(&c.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ip::Ipv4Repr;
    use crate::net::udp::{build_ipv4_udp, UdpRepr};
    use std::net::Ipv4Addr;

    fn udp_packet() -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let repr = Ipv4Repr {
            src: a,
            dst: b,
            protocol: ip::PROTO_UDP,
            ttl: 64,
            ident: 1,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 0,
        };
        let mut out = Vec::new();
        build_ipv4_udp(&mut out, &repr, 5683, 5683, &[1, 2, 3, 4]).expect("build");
        (out, a, b)
    }

    #[test]
    fn payload_corruption_keeps_the_udp_checksum_valid_and_wire_does_not() {
        let mut rng = SimRng::stream(1, "t");
        let (mut p, a, b) = udp_packet();
        corrupt(
            &mut p,
            NetPlan::V4,
            Some(1),
            CorruptLayer::Payload,
            &mut rng,
        );
        let (_, payload) = UdpRepr::parse(&p[20..], a, b).expect("checksum repaired");
        assert_eq!(payload, &[1, 0xFD, 3, 4]);
        let (mut w, a, b) = udp_packet();
        corrupt(&mut w, NetPlan::V4, Some(9), CorruptLayer::Wire, &mut rng);
        assert_eq!(w[29], 2 ^ 0xFF);
        assert!(UdpRepr::parse(&w[20..], a, b).is_err(), "stale checksum");
    }

    #[test]
    fn an_offset_past_the_layer_leaves_the_packet_alone() {
        let mut rng = SimRng::stream(1, "t");
        let (mut p, _, _) = udp_packet();
        let before = p.clone();
        corrupt(
            &mut p,
            NetPlan::V4,
            Some(4),
            CorruptLayer::Payload,
            &mut rng,
        );
        assert_eq!(p, before);
    }
}
