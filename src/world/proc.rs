//! Processing time (docs/metrics.md "Processing time"): per node, a stack
//! delay per packet sent and received and one application server.
//!
//! - **Stack** (`stack_tx`, `stack_rx`): each direction is a FIFO server
//!   — a packet leaves at `max(now, free) + draw`, so packets never
//!   overtake each other (TCP sees no reordering). Only the time the server
//!   is free again and the number of packets waiting are kept; the packet
//!   waits as its own event (`Ev::StackTx`, `Ev::StackRx`). A packet that
//!   finds `stack_queue` packets waiting on its side is dropped (Linux's
//!   `netdev_max_backlog` on receive, a full `txqueuelen` on send): without
//!   a bound a saturated broker's stack held every packet offered to it, 22
//!   GB within four simulated minutes at a million fan-in clients.
//! - **Application server** (`service`, `per_copy`): one FIFO server per
//!   node, as mosquitto's single thread, between the host stack and the
//!   applications. The kernel part stays immediate: TCP takes segments and
//!   ACKs them at once. What the host hands an application (a datagram, a
//!   stream's data or close) goes to it at once when the server is idle,
//!   and the application *charges* work for it (`Ctx::charge`: one
//!   `service` draw per protocol message in, one `per_copy` draw per
//!   PUBLISH copy out); every packet carrying data that the node sends in
//!   that event is held and released when the work is done (`Ev::ProcDone`
//!   at now + work). What arrives meanwhile waits in the server's queue (its
//!   bytes in one ring, no allocation per item) and is handed over one item
//!   at a time, in order. The queue bound acts where Linux drops: a UDP
//!   datagram or TCP data segment reaching a node whose queue holds `queue`
//!   items is dropped before the transport sees it (socket buffer full),
//!   counted, and TCP repairs it. Pure TCP control segments (ACK, SYN, FIN
//!   without data) are never queued nor held: the kernel handles them.
//!
//! A node whose delays are all zero has no state here (`Node::proc` is
//! `None`) and nothing schedules an event: `"0 s"` is the simulator without
//! processing, byte for byte. State lives only on nodes with processing (a
//! boxed side record); nothing allocates per packet once the queues have
//! reached their peak length. Random draws come from the node's own stream
//! `SimRng::stream(seed, "node/<name>/processing")`, shared with no other
//! process.

use super::apps::AppId;
use super::host::tcp::SockId;
use super::host::{Received, StreamEvent};
use super::ip::Outcome;
use super::{Ev, World};
use crate::metrics::connections::ConnOutcome;
use crate::net::addr::SockAddr;
use crate::net::packet::PacketHandle;
use crate::net::packet::PacketMeta;
use crate::scenario::model::ProcessingSpec;
use crate::sim::{EventQueue, SimDuration, SimRng, SimTime};
use std::collections::VecDeque;

use crate::metrics::timeseries::ProcStats;

/// What an item of the server's queue hands the application.
#[derive(Debug, Clone, Copy)]
enum ItemKind {
    Datagram {
        port: u16,
        from: SockAddr,
        meta: PacketMeta,
        group: bool,
    },
    Stream {
        sock: SockId,
        tag: u32,
        ev: StreamKind,
    },
}

/// A stream event without its bytes (those wait in `Server::bytes`).
#[derive(Debug, Clone, Copy)]
enum StreamKind {
    Connected,
    Data,
    PeerClosed,
    Ended(ConnOutcome),
    Released,
}

/// One waiting input: its application, arrival, kind and byte count.
#[derive(Debug, Clone, Copy)]
struct Item {
    app: AppId,
    at: SimTime,
    len: u32,
    kind: ItemKind,
}

/// The application server of a node.
#[derive(Debug)]
struct Server {
    /// A `ProcDone` is scheduled: the work charged so far is under way.
    busy: bool,
    /// Listed in `World::proc_touched`.
    touched: bool,
    /// Work charged in the current event and not yet started, ns.
    work: u64,
    /// Wait of the input delivered in the current event, if any.
    cur_wait: Option<u64>,
    /// Inputs waiting for the server, in arrival order; their bytes, back
    /// to back, in `bytes`.
    items: VecDeque<Item>,
    bytes: VecDeque<u8>,
    /// Packets the node sent while serving, released when it is done.
    held: VecDeque<PacketHandle>,
    stats: ProcStats,
}

/// Processing state of one node (present only when a delay is non-zero).
#[derive(Debug)]
pub(crate) struct NodeProc {
    spec: ProcessingSpec,
    rng: SimRng,
    /// The stack's send and receive sides.
    tx: StackSide,
    rx: StackSide,
    /// Packets dropped at a full stack side.
    stack_dropped: u64,
    /// Boxed: a client with stack delays only carries no queue state.
    server: Option<Box<Server>>,
}

impl NodeProc {
    pub(crate) fn new(spec: &ProcessingSpec, seed: u64, name: &str) -> Box<Self> {
        Box::new(NodeProc {
            spec: *spec,
            rng: SimRng::stream(seed, &format!("node/{name}/processing")),
            tx: StackSide::default(),
            rx: StackSide::default(),
            stack_dropped: 0,
            server: spec.has_server().then(|| {
                Box::new(Server {
                    busy: false,
                    touched: false,
                    work: 0,
                    cur_wait: None,
                    items: VecDeque::new(),
                    bytes: VecDeque::new(),
                    held: VecDeque::new(),
                    stats: ProcStats::default(),
                })
            }),
        })
    }

    /// The server's counters (None without a server); `dropped` includes
    /// the packets a full stack side dropped.
    pub(crate) fn stats(&self) -> Option<ProcStats> {
        self.server.as_ref().map(|s| ProcStats {
            dropped: s.stats.dropped + self.stack_dropped,
            ..s.stats
        })
    }

    /// A packet enters the stack's receive (`rx`) or send side at `now`:
    /// when it leaves (FIFO: the side's previous departure or now, plus
    /// its delay), or `None` when the side already holds `stack_queue`
    /// packets (counted as dropped).
    fn stack_enter(&mut self, rx: bool, now: SimTime) -> Option<SimTime> {
        let (side, delay) = if rx {
            (&mut self.rx, self.spec.stack_rx)
        } else {
            (&mut self.tx, self.spec.stack_tx)
        };
        if side.waiting >= self.spec.stack_queue {
            self.stack_dropped += 1;
            return None;
        }
        side.waiting += 1;
        side.free = side.free.max(now) + delay.sample(&mut self.rng);
        Some(side.free)
    }

    /// A packet leaves the stack's receive (`rx`) or send side.
    fn stack_leave(&mut self, rx: bool) {
        let side = if rx { &mut self.rx } else { &mut self.tx };
        side.waiting = side.waiting.saturating_sub(1);
    }
}

/// One side of a node's stack, a FIFO server: when it is next free and how
/// many packets wait on it (the one in service included).
#[derive(Debug, Default)]
struct StackSide {
    free: SimTime,
    waiting: u32,
}

/// Whether an IPv4 packet carries transport payload (a UDP datagram, a TCP
/// segment with data, any fragment but a first one's header is taken as
/// data); pure TCP control segments (ACK, SYN, FIN, RST without data) do
/// not.
fn carries_data(ip: &[u8]) -> bool {
    if crate::net::l3::version_of(ip) == Some(6) {
        if !crate::net::l3::carries_tcp(ip) {
            return true;
        }
        return match crate::net::l3::datagram_part(ip) {
            Some((0, _, seg)) if seg.len() >= 13 => seg.len() > usize::from(seg[12] >> 4) * 4,
            _ => true,
        };
    }
    if ip.len() < 20 || ip[9] != crate::net::ip::PROTO_TCP {
        return true;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if frag != 0 || ip.len() < ihl + 13 {
        return true;
    }
    let doff = usize::from(ip[ihl + 12] >> 4) * 4;
    total > ihl + doff
}

impl World<'_> {
    /// The application server of `node`, if it has one.
    fn server_mut(&mut self, node: usize) -> Option<&mut Server> {
        self.nodes[node]
            .proc
            .as_deref_mut()
            .and_then(|p| p.server.as_deref_mut())
    }

    /// List `node` for `proc_settle` after this event.
    fn touch(&mut self, node: usize) {
        if let Some(s) = self.server_mut(node) {
            if !s.touched {
                s.touched = true;
                self.proc_touched.push(node as u32);
            }
        }
    }

    /// A packet `node` originated (UDP, TCP): the scenario's packet faults
    /// (`world::faults`, nothing to do without any), then `host_send`.
    pub(crate) fn host_output(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        if let Some(t) = self.trace.as_mut() {
            let r = t.send(now, (self.sc, &self.names), node, pkt, self.pool.get(pkt));
            self.io_result(r);
        }
        if !self.faults.is_empty() && self.apply_faults(now, queue, node, pkt) {
            return;
        }
        self.host_send(now, queue, node, pkt);
    }

    /// A packet `node` originated, past the faults: a packet with data is
    /// held by the application server until the work of this event is done;
    /// then the stack's send side, then `ip_output`.
    pub(crate) fn host_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let Some(p) = self.nodes[node].proc.as_deref_mut() else {
            return self.ip_output(now, queue, node, pkt);
        };
        if let Some(s) = p.server.as_deref_mut() {
            if carries_data(&self.pool.get(pkt).data) {
                s.held.push_back(pkt);
                self.touch(node);
                return;
            }
        }
        self.stack_tx(now, queue, node, pkt);
    }

    fn stack_tx(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let p = self.nodes[node].proc.as_deref_mut();
        match p {
            Some(p) if !p.spec.stack_tx.is_zero() => match p.stack_enter(false, now) {
                Some(t) => {
                    let _ = queue.push(
                        t,
                        Ev::StackTx {
                            node: node as u32,
                            pkt,
                        },
                    );
                }
                None => self.drop_packet(now, None, pkt, Outcome::LostProcessing),
            },
            _ => self.ip_output(now, queue, node, pkt),
        }
    }

    /// A packet `node` held back (a stack side, its application server, a
    /// `delay_packet` fault) goes on to `next`, or is lost when the node
    /// crashed meanwhile: the one place that rule lives.
    pub(crate) fn resume_if_up(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
        next: fn(&mut Self, SimTime, &mut EventQueue<Ev>, usize, PacketHandle),
    ) {
        if !self.nodes[node].up {
            return self.drop_node_down(now, node, pkt);
        }
        next(self, now, queue, node, pkt);
    }

    /// A packet leaves the stack's send side.
    pub(crate) fn on_stack_tx(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        if let Some(p) = self.nodes[node].proc.as_deref_mut() {
            p.stack_leave(false);
        }
        self.resume_if_up(now, queue, node, pkt, Self::ip_output);
    }

    /// A packet addressed to `node` (which has processing): through the
    /// stack's receive side and the server's admission, then up the stack.
    pub(crate) fn proc_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let Some(p) = self.nodes[node].proc.as_deref_mut() else {
            return self.ip_deliver(now, queue, node, pkt);
        };
        if p.spec.stack_rx.is_zero() {
            return self.proc_admit(now, queue, node, pkt);
        }
        let Some(t) = p.stack_enter(true, now) else {
            return self.drop_packet(now, None, pkt, Outcome::LostProcessing);
        };
        let _ = queue.push(
            t,
            Ev::StackRx {
                node: node as u32,
                pkt,
            },
        );
    }

    /// A packet leaves the stack's receive side.
    pub(crate) fn on_stack_rx(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        if let Some(p) = self.nodes[node].proc.as_deref_mut() {
            p.stack_leave(true);
        }
        self.resume_if_up(now, queue, node, pkt, Self::proc_admit);
    }

    /// Drop a packet with data when the application server's queue is full
    /// (the socket buffer overflows); anything else goes up the stack.
    fn proc_admit(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let limit = self.nodes[node].proc.as_ref().map_or(0, |p| p.spec.queue) as usize;
        let full = self.nodes[node]
            .proc
            .as_ref()
            .and_then(|p| p.server.as_deref())
            .is_some_and(|s| s.items.len() >= limit);
        if full && carries_data(&self.pool.get(pkt).data) {
            if let Some(s) = self.server_mut(node) {
                s.stats.dropped += 1;
            }
            return self.drop_packet(now, None, pkt, Outcome::LostProcessing);
        }
        self.ip_deliver(now, queue, node, pkt);
    }

    /// Whether `node`'s server takes an input now (idle, nothing charged,
    /// nothing waiting: it starts now) or queues it. `None`: no server.
    fn server_idle(&mut self, node: usize) -> Option<bool> {
        let s = self.server_mut(node)?;
        let idle = !s.busy && s.work == 0 && s.items.is_empty();
        if idle && s.cur_wait.is_none() {
            s.cur_wait = Some(0);
        }
        self.touch(node);
        Some(idle)
    }

    fn enqueue(&mut self, now: SimTime, node: usize, app: AppId, data: &[u8], kind: ItemKind) {
        let Some(s) = self.server_mut(node) else {
            return;
        };
        s.bytes.extend(data);
        // Bytes of one stream read in several pieces at one instant (a
        // segment that filled a hole releases what was held behind it) are
        // one input, as one read of the socket: the queue bound counts
        // what the admitted segments brought, not the reader's chunking.
        if let (
            Some(last),
            ItemKind::Stream {
                sock,
                tag,
                ev: StreamKind::Data,
            },
        ) = (s.items.back_mut(), kind)
        {
            if let ItemKind::Stream {
                sock: ls,
                tag: lt,
                ev: StreamKind::Data,
            } = last.kind
            {
                if ls == sock && lt == tag && last.app == app && last.at == now {
                    last.len += data.len() as u32;
                    return;
                }
            }
        }
        s.items.push_back(Item {
            app,
            at: now,
            len: data.len() as u32,
            kind,
        });
        s.stats.queue_max = s.stats.queue_max.max(s.items.len() as u64);
    }

    /// A datagram for an application on a node with an application server:
    /// `true` when it was queued (the caller hands it over otherwise).
    pub(crate) fn proc_take_datagram(
        &mut self,
        now: SimTime,
        app: AppId,
        rx: &Received<'_>,
    ) -> bool {
        let node = rx.node as usize;
        if self.nodes[node].proc.is_none() || self.server_idle(node) != Some(false) {
            return false;
        }
        let kind = ItemKind::Datagram {
            port: rx.port,
            from: rx.from,
            meta: rx.meta,
            group: rx.group,
        };
        self.enqueue(now, node, app, rx.data, kind);
        true
    }

    /// A stream event for an application (see `proc_take_datagram`).
    pub(crate) fn proc_take_stream(
        &mut self,
        now: SimTime,
        app: AppId,
        sock: SockId,
        tag: u32,
        ev: &StreamEvent<'_>,
    ) -> bool {
        let Some(node) = self.tcp.sock(sock).map(|s| s.node as usize) else {
            return false;
        };
        if self.nodes[node].proc.is_none() || self.server_idle(node) != Some(false) {
            return false;
        }
        let (kind, data): (StreamKind, &[u8]) = match *ev {
            StreamEvent::Connected => (StreamKind::Connected, &[]),
            StreamEvent::Data(d) => (StreamKind::Data, d),
            StreamEvent::PeerClosed => (StreamKind::PeerClosed, &[]),
            StreamEvent::Ended(o) => (StreamKind::Ended(o), &[]),
            StreamEvent::Released => (StreamKind::Released, &[]),
        };
        self.enqueue(
            now,
            node,
            app,
            data,
            ItemKind::Stream {
                sock,
                tag,
                ev: kind,
            },
        );
        true
    }

    /// An application on `node` did work: `messages` protocol messages in
    /// (one `service` draw each) and `copies` PUBLISH copies out (one
    /// `per_copy` draw each). Nothing without an application server.
    pub(crate) fn proc_charge(&mut self, node: usize, messages: u32, copies: u32) {
        let Some(p) = self.nodes.get_mut(node).and_then(|n| n.proc.as_deref_mut()) else {
            return;
        };
        let Some(s) = p.server.as_deref_mut() else {
            return;
        };
        let mut w = 0u64;
        for _ in 0..messages {
            w = w.saturating_add(p.spec.service.sample(&mut p.rng).as_nanos());
        }
        for _ in 0..copies {
            w = w.saturating_add(p.spec.per_copy.sample(&mut p.rng).as_nanos());
        }
        s.work = s.work.saturating_add(w);
        self.touch(node);
    }

    /// After an event (and the plug-ins' flush): start the work charged on
    /// every touched server, or release what it held and hand over the next
    /// input.
    pub(crate) fn proc_settle(&mut self, now: SimTime, queue: &mut EventQueue<Ev>) {
        let mut scratch = std::mem::take(&mut self.proc_scratch);
        while let Some(n) = self.proc_touched.pop() {
            let node = n as usize;
            while let Some(s) = self.server_mut(node) {
                s.touched = false;
                if s.busy {
                    break;
                }
                let w = std::mem::take(&mut s.work);
                if w > 0 {
                    if let Some(wait) = s.cur_wait.take() {
                        s.stats.jobs += 1;
                        s.stats.wait_ns += wait;
                    }
                    s.stats.busy_ns += w;
                    s.busy = true;
                    let _ = queue.push(now + SimDuration::from_nanos(w), Ev::ProcDone { node: n });
                    break;
                }
                s.cur_wait = None;
                self.proc_release(now, queue, node);
                let Some(s) = self.server_mut(node) else {
                    break;
                };
                let Some(item) = s.items.pop_front() else {
                    break;
                };
                s.cur_wait = Some(now.saturating_since(item.at).as_nanos());
                scratch.clear();
                scratch.extend(s.bytes.drain(..item.len as usize));
                self.proc_hand_over(now, queue, node, item, &scratch);
                self.flush_apps(now, queue);
            }
        }
        self.proc_scratch = scratch;
    }

    /// Hand a queued input to its application.
    fn proc_hand_over(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        item: Item,
        data: &[u8],
    ) {
        match item.kind {
            ItemKind::Datagram {
                port,
                from,
                meta,
                group,
            } => self.datagram_now(
                now,
                queue,
                item.app,
                Received {
                    node: node as u32,
                    port,
                    from,
                    data,
                    meta,
                    group,
                },
            ),
            ItemKind::Stream { sock, tag, ev } => {
                let ev = match ev {
                    StreamKind::Connected => StreamEvent::Connected,
                    StreamKind::Data => StreamEvent::Data(data),
                    StreamKind::PeerClosed => StreamEvent::PeerClosed,
                    StreamKind::Ended(o) => StreamEvent::Ended(o),
                    StreamKind::Released => StreamEvent::Released,
                };
                self.stream_event_now(now, queue, item.app, sock, tag, ev);
            }
        }
    }

    /// The server of `node` finished its work: what it held leaves.
    pub(crate) fn on_proc_done(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, node: usize) {
        let Some(s) = self.server_mut(node) else {
            return;
        };
        s.busy = false;
        self.touch(node);
        self.proc_release(now, queue, node);
    }

    /// Send everything `node`'s server held, in order.
    fn proc_release(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, node: usize) {
        while let Some(pkt) = self.server_mut(node).and_then(|s| s.held.pop_front()) {
            self.resume_if_up(now, queue, node, pkt, Self::stack_tx);
        }
    }

    /// `node` crashed: what waits in its server is lost.
    pub(crate) fn proc_crash(&mut self, now: SimTime, node: usize) {
        let Some(s) = self.server_mut(node) else {
            return;
        };
        s.items.clear();
        s.bytes.clear();
        s.work = 0;
        s.cur_wait = None;
        let lost: Vec<PacketHandle> = s.held.drain(..).collect();
        for pkt in lost {
            self.drop_node_down(now, node, pkt);
        }
    }

    /// A packet at `node`, which is down, is lost: counted against its flow
    /// (`drops_node_down`; no packets.csv row), traced, freed.
    pub(crate) fn drop_node_down(&mut self, now: SimTime, node: usize, pkt: PacketHandle) {
        if let Some(t) = self.trace.as_mut() {
            let r = t.lost_at(
                now,
                (self.sc, &self.names),
                node,
                pkt,
                self.pool.get(pkt),
                "lost_node_down",
            );
            self.io_result(r);
        }
        let meta = self.pool.get(pkt).meta;
        if meta.counted {
            if let Some(s) = self.flow_stats(meta.flow) {
                s.drops_node_down += 1;
            }
        }
        self.pool.free(pkt);
    }

    /// Every node's server counters (nodes without a server: None).
    pub(crate) fn proc_stats(&self) -> Vec<Option<ProcStats>> {
        self.nodes
            .iter()
            .map(|n| n.proc.as_ref().and_then(|p| p.stats()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pure_tcp_acks_carry_no_data() {
        // IPv4 (ihl 5, total 40) + TCP (doff 5): a pure ACK
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&40u16.to_be_bytes());
        p[9] = crate::net::ip::PROTO_TCP;
        p[32] = 0x50;
        assert!(!super::carries_data(&p));
        p[2..4].copy_from_slice(&41u16.to_be_bytes());
        p.push(b'x');
        assert!(super::carries_data(&p));
        p[9] = 17;
        assert!(super::carries_data(&p));
    }
}
