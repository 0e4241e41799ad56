//! 6LoWPAN on a medium (RFC 4944, RFC 6282) in an IPv6 run: what a real
//! Thread/6LoWPAN node puts in its frames instead of a whole IP packet.
//!
//! Sending: the IPv6 packet routing hands to a medium hop is compressed
//! (IPHC with context 0 = the run's prefix, UDP NHC) for the hop's link
//! addresses; when it does not fit a frame it is cut into FRAG1/FRAGN
//! fragments (datagram tag from the sender's counter). Each frame payload is
//! one packet in the MAC's queue, so CSMA-CA, retries, loss and the byte
//! counts see exactly the bytes on air.
//!
//! Receiving: an unfragmented frame is decompressed at once; fragments go
//! to the receiver's reassembler (keyed by link source, size and tag, RFC
//! 4944 §5.3). The whole IPv6 packet then enters the node's IP input, so a
//! border router forwards it onto its wired IPv6 links unchanged: the
//! translation between the medium and the backbone is this compression and
//! its inverse. A datagram is lost if any fragment is: the reassembly timer
//! (`[protocols.ip] reassembly_timeout`) discards the half datagram and
//! counts it in its flow's `drops_reassembly`.
//!
//! Raw frames: with MQTT-SN's `transport = "raw"` a message is the whole
//! frame payload, no IP (`raw_send`). Its first byte is in RFC 4944's NALP
//! range (`00xxxxxx`, "not a LoWPAN frame": MQTT-SN's length, or 0x01 for
//! the 3-byte length form every message of 64 bytes or more is sent in), so
//! a receiver tells it from 6LoWPAN (and from IPv4, whose first byte is
//! 0x45) by that byte, as a real node sharing the medium would, and hands
//! it to the application bound to the MQTT-SN port. Raw frames skip the IP
//! stack's per-packet processing time (there is no IP stack); the
//! application's service time still applies.
//!
//! Link addresses: a member's 16-bit short address is its node index + 1,
//! the same number its IPv6 interface identifier carries (`net::l3`), so
//! IPHC elides the addresses; with extended addressing its EUI-64 is the
//! interface identifier with the U/L bit inverted (RFC 4944 §6), for the
//! same reason.

use super::{World, BCAST};
use crate::link::mac154::{self, Address, Addressing};
use crate::link::sixlowpan::{self, Reassembler as LowpanReassembler};
use crate::net::l3::NetPlan;
use crate::net::packet::{Layers, PacketHandle, PacketMeta};
use crate::sim::{EventQueue, SimTime};
use crate::world::Ev;

/// `FragKey` protocol value marking a 6LoWPAN datagram (IPv6 never routes
/// protocol 0, Hop-by-Hop, here).
const LOWPAN_KEY: u8 = 0;
/// `FragKey` source bit marking a link-layer (6LoWPAN) sender.
const LINK_SRC: u32 = 1 << 31;

/// The IPv6 MTU of a 6LoWPAN medium: fragmentation below IP makes every
/// link carry 1280-byte packets (RFC 4944 §4, RFC 8200 §5).
pub(crate) const LOWPAN_MTU: u32 = crate::net::ipv6::MIN_MTU as u32;

/// The link address of node `node` on a medium with `addressing`.
pub(crate) fn link_addr(addressing: Addressing, node: usize) -> Address {
    match (addressing, NetPlan::short_addr(node)) {
        (Addressing::Short, Some(s)) => Address::Short(s),
        _ => Address::Extended(u64::from_be_bytes(NetPlan::node_iid(node)) ^ (0x02 << 56)),
    }
}

impl World<'_> {
    fn member_link_addr(&self, medium: usize, member: u32) -> Address {
        if member == BCAST {
            return Address::Short(mac154::BROADCAST);
        }
        let node = self.radio.media[medium].mac[member as usize].node as usize;
        link_addr(self.spec(medium).mac.addressing, node)
    }

    /// The 802.15.4 address field values of `member` in captures: 6LoWPAN's
    /// link address in an IPv6 run, else member index + 1.
    pub(super) fn capture_addr(&self, medium: usize, member: u32) -> u64 {
        if member == BCAST {
            return u64::from(mac154::BROADCAST);
        }
        if !self.net.is_v6() {
            return u64::from(member) + 1;
        }
        match self.member_link_addr(medium, member) {
            Address::Short(s) => u64::from(s),
            Address::Extended(e) => e,
        }
    }

    /// Compress (and fragment) the IPv6 packet `pkt` for the hop `from` →
    /// `to` and queue its frames.
    pub(super) fn lowpan_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        from: u32,
        to: u32,
        pkt: PacketHandle,
    ) {
        let (src, dst) = (
            self.member_link_addr(medium, from),
            self.member_link_addr(medium, to),
        );
        let max = self.spec(medium).mtu() as usize;
        let meta = self.pool.get(pkt).meta;
        let mut out = std::mem::take(&mut self.frag_scratch);
        out.clear();
        let comp = sixlowpan::compress_packet(
            &self.pool.get(pkt).data,
            src,
            dst,
            self.net.prefix(),
            &mut out,
        );
        if comp.is_ok() && out.len() <= max {
            // one frame (the common case): no fragment list to build
            let id = self.pool.alloc_with(meta, &out);
            self.frag_scratch = out;
            if let Some(t) = self.trace.as_mut() {
                t.copy(pkt, id);
            }
            self.pool.free(pkt);
            return self.mac_enqueue(now, queue, medium, from, to, id);
        }
        let mn = &mut self.radio.media[medium].mac[from as usize];
        let tag = mn.lowpan_tag;
        mn.lowpan_tag = tag.wrapping_add(1);
        let frames = comp.and_then(|(chl, uhl)| sixlowpan::fragment(&out, chl, uhl, max, tag));
        self.frag_scratch = out;
        let Ok(frames) = frames else {
            return self.drop_packet_mtu(now, pkt);
        };
        for f in &frames {
            let id = self.pool.alloc_with(meta, f);
            if let Some(t) = self.trace.as_mut() {
                t.copy(pkt, id);
            }
            self.mac_enqueue(now, queue, medium, from, to, id);
        }
        self.pool.free(pkt);
    }

    /// A frame payload `c` from member `from` reached member `rx` (addressed
    /// to `to`, a member or `BCAST`): into the node's IP input, through
    /// 6LoWPAN in an IPv6 run.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn radio_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        (from, to): (u32, u32),
        rx: u32,
        c: PacketHandle,
    ) {
        let node = self.radio.media[medium].mac[rx as usize].node as usize;
        let first = self.pool.get(c).data.first().copied().unwrap_or(0xFF);
        if sixlowpan::classify(first) == sixlowpan::Dispatch::Nalp {
            return self.raw_input(now, queue, medium, (from, to), node, c);
        }
        if !self.net.is_v6() {
            return self.ip_input(now, queue, node, c);
        }
        let (src, dst) = (
            self.member_link_addr(medium, from),
            self.member_link_addr(medium, to),
        );
        let meta = self.pool.get(c).meta;
        let data = std::mem::take(&mut self.pool.get_mut(c).data);
        let first = data.first().copied().unwrap_or(0);
        let fragment = matches!(
            sixlowpan::classify(first),
            sixlowpan::Dispatch::Frag1 | sixlowpan::Dispatch::FragN
        );
        let prefix = self.net.prefix();
        if sixlowpan::classify(first) == sixlowpan::Dispatch::Iphc {
            // unfragmented (the common case): decompressed into the scratch
            // buffer, which becomes the packet's, the frame's buffer the
            // next scratch: nothing allocated
            let mut out = std::mem::take(&mut self.frag_scratch);
            out.clear();
            let ok = sixlowpan::decompress_packet(&data, src, dst, prefix, None, &mut out).is_ok();
            self.frag_scratch = data;
            self.pool.get_mut(c).data = out;
            if ok {
                return self.ip_input(now, queue, node, c);
            }
            return self.pool.free(c); // undecodable: dropped (RFC 6282)
        }
        if fragment {
            self.lowpan_track(now, queue, node, from, &data, meta);
        }
        let timeout = self.sc.protocols.ip.reassembly_timeout;
        let r = self.radio.media[medium].mac[rx as usize]
            .lowpan
            .get_or_insert_with(|| Box::new(LowpanReassembler::new(timeout)));
        let res = r.push(now, src, dst, &data, prefix);
        match res {
            Ok(Some(whole)) => {
                if fragment {
                    if let Ok((h, _)) = sixlowpan::FragHeader::parse(&data) {
                        self.frag_owner.remove(&lowpan_key(node, from, h));
                    }
                }
                self.pool.get_mut(c).data = whole;
                self.ip_input(now, queue, node, c);
            }
            Ok(None) => {
                self.pool.get_mut(c).data = data;
                self.pool.free(c);
            }
            Err(_) => {
                // RFC 4944 §5.3 / RFC 6282: what cannot be decoded is
                // dropped (the reassembler counts inconsistent fragments)
                self.pool.get_mut(c).data = data;
                self.pool.free(c);
            }
        }
    }

    /// Send `payload` from `node` to `to` (a node on the same medium, or
    /// the broadcast) as one frame payload without IP; `false` when `node`
    /// has no radio, `to` is not on its medium or the message is too long
    /// for a frame.
    pub(crate) fn raw_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        to: crate::net::addr::Addr,
        payload: &[u8],
        mut meta: PacketMeta,
    ) -> bool {
        let Some((m, from)) = self.radio.member_of(node) else {
            return false;
        };
        let dst = if to.is_broadcast() {
            BCAST
        } else {
            match self.net.addr_node(to).and_then(|n| self.radio.member_of(n)) {
                Some((tm, k)) if tm == m => k,
                _ => return false,
            }
        };
        let mut out = std::mem::take(&mut self.frag_scratch);
        let bytes = crate::proto::mqttsn::codec::nalp_form(payload, &mut out);
        let ok = bytes.len() <= self.spec(m).mtu() as usize
            && sixlowpan::classify(bytes.first().copied().unwrap_or(0xFF))
                == sixlowpan::Dispatch::Nalp;
        if ok {
            // the 3-byte length form's extra bytes are protocol bytes
            meta.proto_bytes += (bytes.len() - payload.len()) as u16;
            meta.l4_header = 0;
            let pkt = self.pool.alloc_with(meta, bytes);
            self.mac_enqueue(now, queue, m, from, dst, pkt);
        }
        self.frag_scratch = out;
        ok
    }

    /// A raw frame (first byte in the NALP range) reached `node`: to the
    /// application bound to the MQTT-SN port there, from the sender's
    /// address; dropped when none is (a node that does not speak it).
    fn raw_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        (from, to): (u32, u32),
        node: usize,
        c: PacketHandle,
    ) {
        let port = self.sc.protocols.mqttsn.port;
        let sender = self.radio.media[medium].mac[from as usize].node as usize;
        let Some(app) = self.udp.app_of(node, port) else {
            return self.pool.free(c);
        };
        let meta = self.pool.get(c).meta;
        let data = std::mem::take(&mut self.pool.get_mut(c).data);
        self.datagram(
            now,
            queue,
            app,
            crate::world::host::Received {
                node: node as u32,
                port,
                from: crate::net::addr::SockAddr::new(self.net.node_addr(sender), port),
                data: &data,
                meta,
                group: to == BCAST,
            },
        );
        self.pool.get_mut(c).data = data;
        self.pool.free(c);
    }

    /// The split of a frame payload's bytes (6LoWPAN headers, transport
    /// and IP headers, …): a raw frame is all protocol and application,
    /// an IPv4 packet has no 6LoWPAN bytes.
    pub(super) fn frame_split(&self, data: &[u8], meta: &PacketMeta) -> Layers {
        if sixlowpan::classify(data.first().copied().unwrap_or(0xFF)) == sixlowpan::Dispatch::Nalp {
            return crate::net::packet::part_split(0, data.len(), meta);
        }
        if self.net.is_v6() {
            self.lowpan_split(data, meta)
        } else {
            crate::net::packet::layer_split(data, meta)
        }
    }

    /// The first fragment of a datagram at `node` starts its reassembly
    /// timer and names its flow, so a timeout is counted against it.
    fn lowpan_track(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        from: u32,
        data: &[u8],
        meta: PacketMeta,
    ) {
        let Ok((h, _)) = sixlowpan::FragHeader::parse(data) else {
            return;
        };
        let key = lowpan_key(node, from, h);
        if let std::collections::btree_map::Entry::Vacant(e) = self.frag_owner.entry(key) {
            e.insert((meta.flow, meta.counted, now));
            let timeout = self.sc.protocols.ip.reassembly_timeout;
            let _ = queue.push(now + timeout, Ev::Reassembly { node: node as u32 });
        }
    }

    /// Expire `node`'s 6LoWPAN reassembly (with its IP reassembly timer).
    pub(crate) fn lowpan_expire(&mut self, now: SimTime, node: usize) {
        if let Some((m, k)) = self.radio.member_of(node) {
            if let Some(r) = self.radio.media[m].mac[k as usize].lowpan.as_mut() {
                r.expire(now);
            }
        }
    }

    /// (6LoWPAN, transport header, protocol, application) bytes of the
    /// 6LoWPAN frame payload `data`, whose datagram is laid out as `meta`
    /// says. The first part is the adaptation layer's (fragment header,
    /// IPHC and UDP NHC: the compressed IPv6 and UDP headers); the second
    /// is a transport header carried inline (TCP's), or the whole payload
    /// when it is no 6LoWPAN frame this can lay out.
    pub(super) fn lowpan_split(&self, data: &[u8], meta: &PacketMeta) -> Layers {
        let whole = Layers {
            transport_ip: data.len() as u64,
            ..Layers::default()
        };
        let Some(l) = sixlowpan::frame_layout(data, self.net.prefix()) else {
            return whole;
        };
        let ip = crate::net::ipv6::HEADER_LEN;
        if l.datagram_offset < ip || l.header > data.len() {
            return whole;
        }
        let rest = data.len() - l.header;
        let mut parts = crate::net::packet::part_split(l.datagram_offset - ip, rest, meta);
        parts.adaptation = l.header as u64;
        parts
    }
}

fn lowpan_key(node: usize, from: u32, h: sixlowpan::FragHeader) -> crate::world::FragKey {
    (
        node as u32,
        LINK_SRC | from,
        (u32::from(h.size) << 16) | u32::from(h.tag),
        LOWPAN_KEY,
    )
}
