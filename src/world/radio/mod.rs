//! Shared radio media in the world (issue #4): the IEEE 802.15.4 MAC of
//! every member (unslotted CSMA-CA, link-layer ACKs and retries, half-duplex
//! turnaround, duty-cycled listening, transmit duty-cycle limits), driving
//! the PHY in `link::medium` and the energy meters of `link::energy`.
//!
//! Read first: IEEE 802.15.4-2006 §7.5.1.4 (unslotted CSMA-CA: NB = 0,
//! BE = macMinBE; wait random(2^BE − 1) unit backoff periods; CCA; busy →
//! NB += 1, BE = min(BE + 1, macMaxBE), give up after macMaxCSMABackoffs;
//! idle → transmit), §7.5.6.4 (ACK sent aTurnaroundTime after the frame, no
//! CSMA; the sender waits macAckWaitDuration and retries up to
//! macMaxFrameRetries times, each retry a new CSMA-CA).
//!
//! A medium hop is chosen by routing like a link (`Routing` sees one edge per
//! pair in range, see `Radio::routing_links`); the IP packet is fragmented to
//! the medium's MTU (frame size − MAC header − FCS), and each fragment is one
//! MAC frame in the sender's queue. A frame that reaches its receiver is
//! copied into a new packet and handed to that node's IP input at the end of
//! the frame (propagation over a few hundred metres, < 1 µs, is neglected).
//!
//! `packets.csv` on a medium: one row per transmission attempt and receiver
//! concerned (`to` = the unicast destination, or each in-range receiver of a
//! broadcast), written when its outcome is known, with `time_ms` = the start
//! of the attempt and `bytes` = the whole frame on air (PHY header, MAC
//! header, IP packet, FCS); ACK frames are rows of kind `mac_ack`; a frame
//! the MAC gives up on gets one more row (`cca_fail`, `no_ack`). Outcomes:
//! `delivered`, `lost_channel` (bit errors, too weak, or the medium's
//! `loss` on top of SINR), `collision`,
//! `rx_off` (receiver transmitting, asleep or down), `lost_queue`,
//! `cca_fail`, `no_ack`, `lost_node_down`.

use super::{Ev, World};
use crate::link::energy::{EnergyMeter, RadioState};
use crate::link::mac154;
use crate::link::medium::{InterfererPos, Medium, RxOutcome, RxResult, TxId};
use crate::metrics::energy::{NodeEnergy, RadioReport};
use crate::net::packet::{PacketHandle, PacketMeta, NO_FLOW};
use crate::scenario::model::{LossSpec, Scenario};
use crate::scenario::radio::MediumSpec;
use crate::sim::{EventQueue, SimDuration, SimRng, SimTime};
use std::collections::VecDeque;
use std::io::Write;

mod exchange;
pub(crate) mod lowpan;
mod mac;

/// `Ev::Radio` kinds.
pub(crate) const K_MAC: u8 = 0;
pub(crate) const K_TX_END: u8 = 1;
pub(crate) const K_ACK: u8 = 2;
pub(crate) const K_INTERF: u8 = 3;

const BCAST: u32 = u32::MAX;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacState {
    Idle,
    /// Waiting for a wake window of the receiver or the duty-cycle limit.
    Deferred,
    Backoff,
    Cca,
    /// RX→TX turnaround before the frame.
    Turnaround,
    Tx,
    WaitAck,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    pkt: PacketHandle,
    /// Member index, or `BCAST`.
    dst: u32,
    seq: u8,
    attempts: u8,
    /// Some attempt reached the receiver (a `no_ack` is then not a loss).
    reached: bool,
    /// Start of the current attempt.
    start: SimTime,
}

#[derive(Debug)]
struct MacNode {
    node: u32,
    queue: VecDeque<Frame>,
    state: MacState,
    nb: u8,
    be: u8,
    seq: u8,
    gen: u32,
    rng: SimRng,
    meter: EnergyMeter,
    metered: RadioState,
    duty: bool,
    up: bool,
    /// The application put the radio to sleep (an MQTT-SN client asleep,
    /// §6.14): it hears no new frame and draws sleep current while idle,
    /// but still sends what it queues and hears the ACKs of its own frames.
    dozing: bool,
    tx: Option<TxId>,
    ack_tx: Option<TxId>,
    ack_pending: Option<(u32, u8, u32, bool)>,
    ack_gen: u32,
    /// Earliest start of the next frame (transmit duty-cycle limit).
    next_tx: SimTime,
    /// Last (sender, sequence number) received per slot, for duplicate
    /// rejection of retransmitted frames whose ACK was lost.
    recent: [(u32, u8); 4],
    recent_pos: u8,
    /// 6LoWPAN reassembly of what this member receives (IPv6 runs).
    lowpan: Option<Box<crate::link::sixlowpan::Reassembler>>,
    /// Next 6LoWPAN datagram tag.
    lowpan_tag: u16,
}

impl MacNode {
    /// Sending an ACK, or turning around to send one.
    fn acking(&self) -> bool {
        self.ack_tx.is_some() || self.ack_pending.is_some()
    }
}

#[derive(Debug, Clone, Copy)]
enum TxTag {
    Data {
        n: u32,
    },
    Ack {
        n: u32,
        to: u32,
        seq: u8,
        flow: u32,
        counted: bool,
    },
    Interferer,
}

/// Run-time state of one medium.
#[derive(Debug)]
pub(crate) struct RadioMedium {
    spec: usize,
    pub(crate) medium: Medium,
    mac: Vec<MacNode>,
    tags: Vec<TxTag>,
    any_duty: bool,
}

/// Every medium of a run, and how routing edges map onto them.
#[derive(Debug, Default)]
pub(crate) struct Radio {
    pub(crate) media: Vec<RadioMedium>,
    /// (medium, member) of each node, `NONE` when it has no radio.
    of_node: Vec<(u32, u32)>,
    /// Routing edge `e` is link index `nlinks + e`: (medium, member a, member b).
    edges: Vec<(u32, u32, u32)>,
    nlinks: usize,
    results: Vec<RxResult>,
    locks: Vec<u32>,
    deliver: Vec<u32>,
}

impl Radio {
    pub(crate) fn new(sc: &Scenario) -> Radio {
        let mut of_node = vec![(NONE, NONE); sc.nodes.len()];
        let mut media = Vec::with_capacity(sc.media.len());
        for (mi, spec) in sc.media.iter().enumerate() {
            let pos: Vec<(f64, f64)> = spec
                .members
                .iter()
                .map(|&n| sc.nodes[n].position.unwrap_or((0.0, 0.0)))
                .collect();
            let names: Vec<&str> = spec
                .members
                .iter()
                .map(|&n| sc.nodes[n].name.as_str())
                .collect();
            let interferers: Vec<InterfererPos> = spec
                .interferers
                .iter()
                .map(|i| InterfererPos {
                    position: i.position,
                    power_dbm: i.power_dbm,
                })
                .collect();
            let mut medium = Medium::new(
                &spec.name,
                sc.seed,
                spec.phy,
                spec.propagation,
                spec.fading,
                &pos,
                &names,
                &interferers,
            );
            if let LossSpec::Bernoulli { p } = spec.loss {
                medium = medium.with_frame_loss(p, sc.seed, &spec.name, &names);
            }
            let mac = spec
                .members
                .iter()
                .enumerate()
                .map(|(k, &n)| {
                    of_node[n] = (mi as u32, k as u32);
                    let duty = spec.duty.is_some() && spec.duty_nodes.contains(&n);
                    MacNode {
                        node: n as u32,
                        queue: VecDeque::new(),
                        state: MacState::Idle,
                        nb: 0,
                        be: 0,
                        seq: 0,
                        gen: 0,
                        rng: SimRng::stream(
                            sc.seed,
                            &format!("medium/{}/{}/mac", spec.name, sc.nodes[n].name),
                        ),
                        meter: EnergyMeter::new(if duty { spec.duty } else { None }),
                        metered: RadioState::Listen,
                        duty,
                        up: true,
                        dozing: false,
                        tx: None,
                        ack_tx: None,
                        ack_pending: None,
                        ack_gen: 0,
                        next_tx: SimTime::ZERO,
                        recent: [(NONE, 0); 4],
                        recent_pos: 0,
                        lowpan: None,
                        lowpan_tag: 0,
                    }
                })
                .collect();
            media.push(RadioMedium {
                spec: mi,
                medium,
                mac,
                tags: Vec::new(),
                any_duty: !spec.duty_nodes.is_empty() && spec.duty.is_some(),
            });
        }
        Radio {
            media,
            of_node,
            edges: Vec::new(),
            nlinks: sc.links.len(),
            results: Vec::new(),
            locks: Vec::new(),
            deliver: Vec::new(),
        }
    }

    /// Append the routing edges of every medium to `links` (a, b, tie-break):
    /// one per pair of members whose mean received power (path loss and
    /// shadowing, no fading) is at least sensitivity + `route_margin_db`.
    /// Routing minimises hops first; among equal hop counts the smaller total
    /// path loss (in µdB, passed where links pass their delay) wins.
    pub(crate) fn routing_links(&mut self, sc: &Scenario, links: &mut Vec<(u32, u32, u64)>) {
        self.edges.clear();
        for (mi, rm) in self.media.iter().enumerate() {
            let spec = &sc.media[rm.spec];
            let min = spec.phy.sensitivity_dbm + spec.route_margin_db;
            for a in 0..rm.mac.len() as u32 {
                for (b, dbm) in rm.medium.neighbours(a, min) {
                    if b > a {
                        let loss_udb = ((spec.phy.tx_power_dbm - dbm).max(0.0) * 1e6) as u64;
                        links.push((rm.mac[a as usize].node, rm.mac[b as usize].node, loss_udb));
                        self.edges.push((mi as u32, a, b));
                    }
                }
            }
        }
    }

    /// (medium, member) of `node`, when it has a radio.
    pub(crate) fn member_of(&self, node: usize) -> Option<(usize, u32)> {
        let (m, k) = *self.of_node.get(node)?;
        (m != NONE).then_some((m as usize, k))
    }

    /// Whether routing link index `l` is a medium edge.
    pub(crate) fn is_edge(&self, link: usize) -> bool {
        link >= self.nlinks
    }
}

fn outcome_str(outcome: RxOutcome) -> &'static str {
    match outcome {
        RxOutcome::Delivered => "delivered",
        RxOutcome::LostChannel => "lost_channel",
        RxOutcome::Collision => "collision",
        RxOutcome::Deaf => "rx_off",
        RxOutcome::Overheard => "overheard",
    }
}

/// Why the MAC dropped a frame without a receiver's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacDrop {
    Queue,
    CcaFail,
    NoAck,
    /// Unicast without ACKs that did not arrive.
    Lost,
    NodeDown,
}

impl World<'_> {
    fn spec(&self, medium: usize) -> &MediumSpec {
        &self.sc.media[self.radio.media[medium].spec]
    }

    /// Schedule every interferer's first burst.
    pub(crate) fn radio_prime(&mut self, queue: &mut EventQueue<Ev>) {
        for m in 0..self.radio.media.len() {
            for (i, it) in self.spec(m).interferers.iter().enumerate() {
                let _ = queue.push(
                    SimTime::ZERO + it.start,
                    Ev::Radio {
                        m: m as u16,
                        kind: K_INTERF,
                        idx: i as u32,
                        gen: 0,
                    },
                );
            }
        }
    }

    /// The MTU and the far node of routing edge `l` (a medium edge) in
    /// direction `d`.
    pub(crate) fn radio_edge_hop(&self, link: usize, dir: usize) -> (u32, usize) {
        let (m, a, b) = self.radio.edges[link - self.radio.nlinks];
        let to = if dir == 0 { b } else { a };
        let node = self.radio.media[m as usize].mac[to as usize].node as usize;
        (self.radio_ip_mtu(m as usize), node)
    }

    /// The largest IP packet a medium carries: one frame's payload for IPv4,
    /// 1280 bytes over 6LoWPAN.
    fn radio_ip_mtu(&self, medium: usize) -> u32 {
        if self.net.is_v6() {
            lowpan::LOWPAN_MTU
        } else {
            self.spec(medium).mtu()
        }
    }

    /// The MTU of the medium `node` is on, if it has a radio.
    pub(crate) fn radio_node_mtu(&self, node: usize) -> Option<u32> {
        let (m, _) = self.radio.of_node[node];
        (m != NONE).then(|| self.radio_ip_mtu(m as usize))
    }

    /// Send `pkt` over routing edge `l` (a medium edge) in direction `d`.
    pub(crate) fn radio_hop(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        link: usize,
        dir: usize,
        pkt: PacketHandle,
    ) {
        let (m, a, b) = self.radio.edges[link - self.radio.nlinks];
        let (from, to) = if dir == 0 { (a, b) } else { (b, a) };
        self.radio_send(now, queue, m as usize, from, to, pkt);
    }

    /// Send `pkt` (IP multicast or broadcast) from `node` as a link-layer
    /// broadcast on its medium; `false` when the node has no radio.
    pub(crate) fn radio_broadcast(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) -> bool {
        let (m, k) = self.radio.of_node[node];
        if m == NONE {
            return false;
        }
        self.radio_send(now, queue, m as usize, k, BCAST, pkt);
        true
    }

    fn radio_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        medium: usize,
        from: u32,
        to: u32,
        pkt: PacketHandle,
    ) {
        if self.net.is_v6() {
            return self.lowpan_send(now, queue, medium, from, to, pkt);
        }
        let mtu = self.spec(medium).mtu() as usize;
        if self.pool.get(pkt).data.len() <= mtu {
            return self.mac_enqueue(now, queue, medium, from, to, pkt);
        }
        match self.fragment_packet(pkt, mtu) {
            Ok(ids) => {
                for &f in &ids {
                    self.mac_enqueue(now, queue, medium, from, to, f);
                }
                self.frag_ids = ids;
            }
            Err(ids) => {
                self.frag_ids = ids;
                self.drop_packet_mtu(now, pkt);
            }
        }
    }

    /// Bytes of `pkt`'s frame on air (PHY header + MAC header + IP + FCS).
    fn frame_bytes(&self, medium: usize, pkt: PacketHandle, bcast: bool) -> (u32, u32) {
        let spec = self.spec(medium);
        let a = spec.mac.addressing;
        let dst = if bcast { mac154::Addressing::Short } else { a };
        let psdu = self.pool.get(pkt).data.len() as u32 + mac154::data_overhead(dst, a);
        (psdu, psdu + spec.phy.phy_header_bytes)
    }

    /// Bring member `n`'s energy meter to the state its flags say.
    fn refresh(&mut self, now: SimTime, medium: usize, member: u32) {
        let rm = &mut self.radio.media[medium];
        let receiving = rm.medium.receiving(member);
        let mn = &mut rm.mac[member as usize];
        let s = if !mn.up {
            RadioState::Sleep
        } else if mn.tx.is_some() || mn.ack_tx.is_some() {
            RadioState::Tx
        } else if receiving || matches!(mn.state, MacState::Cca | MacState::WaitAck) {
            RadioState::Rx
        } else if mn.dozing && !mn.acking() {
            RadioState::Sleep
        } else {
            RadioState::Listen
        };
        if s != mn.metered {
            mn.meter.set(now, s);
            mn.metered = s;
        }
    }

    fn refresh_locks(&mut self, now: SimTime, medium: usize) {
        let locks = std::mem::take(&mut self.radio.locks);
        for &r in &locks {
            self.refresh(now, medium, r);
        }
        self.radio.locks = locks;
        self.radio.locks.clear();
    }

    /// Write a data frame to the medium's pcap (when captures are on): the
    /// 802.15.4 frame with short addresses = member index + 1 (broadcast
    /// 0xFFFF), PAN 0x1234, the IPv4 packet as payload, FCS.
    fn capture_data(&mut self, now: SimTime, medium: usize, member: u32, frame: Frame) {
        let idx = self.radio.nlinks + medium;
        if self.pcaps.len() <= idx {
            return;
        }
        let spec = self.spec(medium);
        let ack = spec.mac.ack && frame.dst != BCAST;
        let addressing = spec.mac.addressing;
        let frame = mac154::DataFrame {
            seq: frame.seq,
            pan: 0x1234,
            addressing,
            dst: self.capture_addr(medium, frame.dst),
            src: self.capture_addr(medium, member),
            ack_request: ack,
            payload: &self.pool.get(frame.pkt).data,
        };
        let mut buf = std::mem::take(&mut self.frag_scratch);
        buf.clear();
        let r = match frame.emit(&mut buf) {
            Ok(()) => self.pcaps[idx].write_packet(now, &buf),
            Err(_) => Ok(()),
        };
        self.frag_scratch = buf;
        self.io_result(r);
    }

    /// Write an ACK frame (FCF, sequence number, FCS) to the medium's pcap.
    fn capture_ack(&mut self, now: SimTime, medium: usize, seq: u8) {
        let idx = self.radio.nlinks + medium;
        if let Some(w) = self.pcaps.get_mut(idx) {
            let mut b = [0x02, 0x00, seq, 0, 0];
            let c = mac154::fcs(&b[..3]).to_le_bytes();
            b[3..].copy_from_slice(&c);
            let r = w.write_packet(now, &b);
            self.io_result(r);
        }
    }

    /// bytes_on_wire and its layers for one data frame of `pkt` on
    /// `medium`; the medium's link and adaptation byte totals (links.csv)
    /// count every frame, measured or not.
    fn count_frame_bytes(&mut self, medium: usize, pkt: PacketHandle, ppdu: u32, retry: bool) {
        let meta = self.pool.get(pkt).meta;
        let len = self.pool.get(pkt).data.len() as u64;
        let data = &self.pool.get(pkt).data;
        let layers = self.frame_split(data, &meta);
        let tcp = crate::net::l3::carries_tcp(data);
        // PHY header (sync, PHR), MAC header and FCS: the PPDU around the payload
        let link_hdr = u64::from(ppdu).saturating_sub(len);
        let stats = &mut self.radio.media[medium].medium.stats;
        stats.link_bytes += link_hdr;
        stats.adaptation_bytes += layers.adaptation;
        if !meta.counted {
            return;
        }
        self.charge_air(medium, meta.flow, ppdu);
        if let Some(s) = self.flow_stats(meta.flow) {
            s.bytes_on_wire += u64::from(ppdu);
            if tcp {
                s.bytes_on_wire_tcp += u64::from(ppdu);
            }
            if retry || meta.retx {
                s.bytes_retransmissions += u64::from(ppdu);
            } else {
                s.bytes_link += link_hdr;
                s.add_layers(&layers);
            }
        }
    }

    /// The air columns of `flow` for one of its frames (`ppdu` bytes) just
    /// put on `medium`: a frame, its bytes, its airtime and the energy of
    /// its sender and of the radios that locked on it (`radio.locks`, set
    /// by `begin_tx`).
    pub(super) fn charge_air(&mut self, medium: usize, flow: u32, ppdu: u32) {
        let spec = self.spec(medium);
        let air = mac154::airtime(ppdu, spec.phy.rate_bps).as_nanos();
        let mj = spec.energy.frame_mj(air, self.radio.locks.len());
        if let Some(s) = self.flow_stats(flow) {
            s.frames_air += 1;
            s.bytes_air += u64::from(ppdu);
            s.airtime_air_ns += air;
            s.energy_air_mj += mj;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn radio_row(
        &mut self,
        at: SimTime,
        medium: usize,
        from: u32,
        to: u32,
        meta: PacketMeta,
        kind: &str,
        bytes: u32,
        outcome: &str,
    ) {
        if let Some(t) = self.trace.as_mut() {
            let mac = &self.radio.media[medium].mac;
            let peer = (to != BCAST).then(|| mac[to as usize].node as usize);
            let r = t.radio_hop(
                at,
                &self.names,
                mac[from as usize].node as usize,
                peer,
                &meta,
                kind,
                bytes,
                outcome,
            );
            self.io_result(r);
        }
        if self.packets_out.is_none() {
            return;
        }
        let rm = &self.radio.media[medium];
        let spec = &self.sc.media[rm.spec];
        let protocol = if meta.flow == NO_FLOW {
            "ip"
        } else {
            self.sc.flows[meta.flow as usize].protocol.as_str()
        };
        let from = self.names[rm.mac[from as usize].node as usize].as_str();
        let to = if to == BCAST {
            "*"
        } else {
            self.names[rm.mac[to as usize].node as usize].as_str()
        };
        let conn = self.tcp.records.get(meta.conn as usize).map(|r| r.conn);
        let r = match self.packets_out.as_mut() {
            Some(w) => writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{}",
                crate::metrics::record::fmt_ms(at.0),
                self.run_id,
                spec.name,
                from,
                to,
                protocol,
                kind,
                bytes,
                outcome,
                crate::metrics::record::OptU32(conn)
            ),
            None => Ok(()),
        };
        self.io_result(r);
    }

    /// Drop a frame the MAC cannot deliver: row, counters, free.
    #[allow(clippy::too_many_arguments)]
    fn mac_drop(
        &mut self,
        now: SimTime,
        medium: usize,
        member: u32,
        dst: u32,
        pkt: PacketHandle,
        why: MacDrop,
        reached: bool,
    ) {
        let meta = self.pool.get(pkt).meta;
        let (_, ppdu) = self.frame_bytes(medium, pkt, dst == BCAST);
        let label = match why {
            MacDrop::Queue => Some("lost_queue"),
            MacDrop::CcaFail => Some("cca_fail"),
            MacDrop::NoAck => Some("no_ack"),
            MacDrop::NodeDown => Some("lost_node_down"),
            MacDrop::Lost => None, // its attempt row already says why
        };
        if let Some(l) = label {
            self.radio_row(now, medium, member, dst, meta, meta.kind, ppdu, l);
        }
        if meta.counted && dst != BCAST && !reached {
            if let Some(s) = self.flow_stats(meta.flow) {
                match why {
                    MacDrop::Queue => s.drops_queue += 1,
                    MacDrop::NodeDown => s.drops_node_down += 1,
                    MacDrop::CcaFail | MacDrop::NoAck | MacDrop::Lost => s.drops_channel += 1,
                }
            }
        }
        self.pool.free(pkt);
    }

    /// `node` crashed: its radio goes off, queued frames are lost, a frame on
    /// air is cut (lost at every receiver).
    pub(crate) fn radio_crash(&mut self, now: SimTime, node: usize) {
        let (m, n) = self.radio.of_node[node];
        if m == NONE {
            return;
        }
        let (m, n) = (m as usize, n);
        let rm = &mut self.radio.media[m];
        let mn = &mut rm.mac[n as usize];
        mn.up = false;
        mn.gen = mn.gen.wrapping_add(1);
        mn.ack_gen = mn.ack_gen.wrapping_add(1);
        mn.ack_pending = None;
        mn.tx = None;
        mn.ack_tx = None;
        mn.state = MacState::Idle;
        let frames: Vec<Frame> = mn.queue.drain(..).collect();
        rm.medium.set_deaf(n);
        for f in frames {
            self.mac_drop(now, m, n, f.dst, f.pkt, MacDrop::NodeDown, f.reached);
        }
        self.refresh(now, m, n);
        self.refresh_locks(now, m);
    }

    /// The application at `node` puts its radio to sleep (`true`) or wakes
    /// it (`false`); a node without a radio ignores it.
    pub(crate) fn radio_doze(&mut self, now: SimTime, node: usize, on: bool) {
        let (m, n) = self.radio.of_node[node];
        if m == NONE {
            return;
        }
        let mn = &mut self.radio.media[m as usize].mac[n as usize];
        if mn.dozing != on {
            mn.dozing = on;
            self.refresh(now, m as usize, n);
        }
    }

    /// `node` restarted: its radio listens again.
    pub(crate) fn radio_restart(&mut self, now: SimTime, node: usize) {
        let (m, n) = self.radio.of_node[node];
        if m == NONE {
            return;
        }
        let rm = &mut self.radio.media[m as usize];
        rm.mac[n as usize].up = true;
        rm.medium.set_hearing(n, now);
        self.refresh(now, m as usize, n);
    }

    /// Energy and medium counters at `end`.
    pub(crate) fn radio_report(&mut self, end: SimTime) -> RadioReport {
        let mut rep = RadioReport::default();
        for rm in &mut self.radio.media {
            let spec = &self.sc.media[rm.spec];
            for mn in &mut rm.mac {
                rep.nodes.push(NodeEnergy {
                    node: self.names[mn.node as usize].clone(),
                    medium: spec.name.clone(),
                    duty_cycled: mn.duty,
                    mj: mn.meter.energy_mj(end, &spec.energy),
                });
            }
            rep.media.push((spec.name.clone(), rm.medium.stats));
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ip::{self, Ipv4Repr};
    use crate::net::udp::build_ipv4_udp;
    use crate::world::Outputs;

    const TEXT: &str = r#"
name = "mcast"
duration = "1 s"
drain = "1 s"
[[nodes]]
name = "a"
role = "client"
position = [0.0, 0.0]
[[nodes]]
name = "b"
role = "client"
position = [10.0, 0.0]
[[nodes]]
name = "c"
role = "router"
position = [0.0, 10.0]
[[nodes]]
name = "far"
role = "client"
position = [500.0, 0.0]
[[media]]
name = "wpan"
members = ["a", "b", "c", "far"]
fading = "none"
shadowing_db = 0.0
"#;

    /// One IP multicast datagram (CoAP's All-CoAP-Nodes 224.0.1.187) from
    /// `a` leaves as one link-layer broadcast frame and reaches every node
    /// in range once (`far` is out of range); nobody forwards it, not even
    /// the router.
    #[test]
    fn ip_multicast_is_one_link_broadcast_to_every_neighbour() {
        let sc = crate::scenario::load_str(TEXT, "t.toml", std::path::Path::new("."), &[])
            .expect("scenario");
        let mut w = World::new(&sc, 0, Outputs::default()).expect("world");
        let repr = Ipv4Repr {
            src: ip::node_addr(0),
            dst: std::net::Ipv4Addr::new(224, 0, 1, 187),
            protocol: ip::PROTO_UDP,
            ttl: 1,
            ident: 1,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 0,
        };
        let id = w.pool.alloc(PacketMeta::default());
        let mut data = Vec::new();
        build_ipv4_udp(&mut data, &repr, 5683, 5683, b"hello").expect("packet");
        w.pool.get_mut(id).data = data;
        let mut q = EventQueue::new();
        w.ip_output(SimTime::ZERO, &mut q, 0, id);
        crate::sim::run_until(&mut w, &mut q, SimTime(1_000_000_000));
        let got: Vec<u64> = w.nodes.iter().map(|n| n.stats.ip_received).collect();
        assert_eq!(got, [0, 1, 1, 0]);
        assert_eq!(w.nodes[2].stats.ip_forwarded, 0);
        assert_eq!(
            w.radio.media[0].medium.stats.transmissions, 1,
            "no ACK for a broadcast"
        );
        assert_eq!(w.pool.live(), 0, "every copy freed");
    }
}
