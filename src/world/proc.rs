//! Processing time (docs/metrics.md "Processing time"): per node, a stack
//! delay per packet sent and received and one application server.
//!
//! - **Stack** (`stack_tx`, `stack_rx`): each direction is a FIFO server
//!   with no queue limit — a packet leaves at `max(now, free) + draw`, so
//!   packets never overtake each other (TCP sees no reordering). Only the
//!   time the server is free again is kept; the packet waits as its own
//!   event (`Ev::StackTx`, `Ev::StackRx`).
//! - **Application server** (`service`, `per_copy`): one FIFO server per
//!   node, as mosquitto's single thread. Every packet addressed to the node
//!   enters it; when it is idle the packet goes up the stack at once and the
//!   applications *charge* work for what it carried (`Ctx::charge`: one
//!   `service` draw per protocol message in, one `per_copy` draw per PUBLISH
//!   copy out). Everything the node sends during that event is held, and
//!   released when the work is done (`Ev::ProcDone` at now + work); packets
//!   arriving meanwhile wait in the queue (at most `queue`; beyond, dropped
//!   and counted), and are served one by one in arrival order. Inputs that
//!   cost no work (TCP ACKs, CONNECT) pass through at once when nothing
//!   waits, and wait their turn otherwise. While the server is busy,
//!   packets the node sends for other reasons (timers) are held too, so
//!   nothing leaves out of order.
//!
//! A node whose delays are all zero has no state here (`Node::proc` is
//! `None`) and nothing schedules an event: `"0 s"` is the simulator without
//! processing, byte for byte. State lives only on nodes with processing (a
//! boxed side record); nothing allocates per packet once the queues have
//! reached their peak length. Random draws come from the node's own stream
//! `SimRng::stream(seed, "node/<name>/processing")`, shared with no other
//! process.

use super::ip::Outcome;
use super::{Ev, World};
use crate::net::packet::PacketHandle;
use crate::scenario::model::ProcessingSpec;
use crate::sim::{EventQueue, SimDuration, SimRng, SimTime};
use std::collections::VecDeque;

use crate::metrics::timeseries::ProcStats;

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
    /// Packets waiting for the server, with their arrival time.
    inputs: VecDeque<(PacketHandle, SimTime)>,
    /// Packets the node sent while serving, released when it is done.
    held: VecDeque<PacketHandle>,
    stats: ProcStats,
}

/// Processing state of one node (present only when a delay is non-zero).
#[derive(Debug)]
pub(crate) struct NodeProc {
    spec: ProcessingSpec,
    rng: SimRng,
    /// When the stack's send / receive side is next free.
    tx_free: SimTime,
    rx_free: SimTime,
    server: Option<Server>,
}

impl NodeProc {
    pub(crate) fn new(spec: &ProcessingSpec, seed: u64, name: &str) -> Box<Self> {
        Box::new(NodeProc {
            spec: *spec,
            rng: SimRng::stream(seed, &format!("node/{name}/processing")),
            tx_free: SimTime::ZERO,
            rx_free: SimTime::ZERO,
            server: spec.has_server().then(|| Server {
                busy: false,
                touched: false,
                work: 0,
                cur_wait: None,
                inputs: VecDeque::new(),
                held: VecDeque::new(),
                stats: ProcStats::default(),
            }),
        })
    }

    /// The server's counters (None without a server).
    pub(crate) fn stats(&self) -> Option<ProcStats> {
        self.server.as_ref().map(|s| s.stats)
    }
}

/// When a FIFO stack side frees after one more packet.
fn stack_departure(free: &mut SimTime, now: SimTime, d: SimDuration) -> SimTime {
    let t = (*free).max(now) + d;
    *free = t;
    t
}

impl World<'_> {
    /// The application server of `node`, if it has one.
    fn server_mut(&mut self, node: usize) -> Option<&mut Server> {
        self.nodes[node]
            .proc
            .as_deref_mut()
            .and_then(|p| p.server.as_mut())
    }

    /// A packet `node` originated (UDP, TCP): through the application
    /// server's hold and the stack's send side, then `ip_output`.
    pub(crate) fn host_output(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let Some(p) = self.nodes[node].proc.as_deref_mut() else {
            return self.ip_output(now, queue, node, pkt);
        };
        if let Some(s) = p.server.as_mut() {
            s.held.push_back(pkt);
            if !s.touched {
                s.touched = true;
                self.proc_touched.push(node as u32);
            }
            return;
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
            Some(p) if !p.spec.stack_tx.is_zero() => {
                let d = p.spec.stack_tx.sample(&mut p.rng);
                let t = stack_departure(&mut p.tx_free, now, d);
                let _ = queue.push(
                    t,
                    Ev::StackTx {
                        node: node as u32,
                        pkt,
                    },
                );
            }
            _ => self.ip_output(now, queue, node, pkt),
        }
    }

    /// A packet leaves the stack's send side.
    pub(crate) fn on_stack_tx(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        if !self.nodes[node].up {
            return self.drop_node_down(pkt);
        }
        self.ip_output(now, queue, node, pkt);
    }

    /// A packet addressed to `node` (which has processing): through the
    /// stack's receive side and the application server, then up the stack.
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
            return self.server_input(now, queue, node, pkt);
        }
        let d = p.spec.stack_rx.sample(&mut p.rng);
        let t = stack_departure(&mut p.rx_free, now, d);
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
        if !self.nodes[node].up {
            return self.drop_node_down(pkt);
        }
        self.server_input(now, queue, node, pkt);
    }

    fn server_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        pkt: PacketHandle,
    ) {
        let Some(s) = self.server_mut(node) else {
            return self.ip_deliver(now, queue, node, pkt);
        };
        if !s.busy && s.work == 0 && s.inputs.is_empty() {
            // idle: served now
            if s.cur_wait.is_none() {
                s.cur_wait = Some(0);
            }
            if !s.touched {
                s.touched = true;
                self.proc_touched.push(node as u32);
            }
            return self.ip_deliver(now, queue, node, pkt);
        }
        let limit = self.nodes[node].proc.as_ref().map_or(0, |p| p.spec.queue) as usize;
        let Some(s) = self.server_mut(node) else {
            return;
        };
        if s.inputs.len() >= limit {
            s.stats.dropped += 1;
            return self.drop_packet(now, None, pkt, Outcome::LostProcessing);
        }
        s.inputs.push_back((pkt, now));
        s.stats.queue_max = s.stats.queue_max.max(s.inputs.len() as u64);
        if !s.touched {
            s.touched = true;
            self.proc_touched.push(node as u32);
        }
    }

    /// An application on `node` did work: `messages` protocol messages in
    /// (one `service` draw each) and `copies` PUBLISH copies out (one
    /// `per_copy` draw each). Nothing without an application server.
    pub(crate) fn proc_charge(&mut self, node: usize, messages: u32, copies: u32) {
        let Some(p) = self.nodes.get_mut(node).and_then(|n| n.proc.as_deref_mut()) else {
            return;
        };
        let Some(s) = p.server.as_mut() else { return };
        let mut w = 0u64;
        for _ in 0..messages {
            w = w.saturating_add(p.spec.service.sample(&mut p.rng).as_nanos());
        }
        for _ in 0..copies {
            w = w.saturating_add(p.spec.per_copy.sample(&mut p.rng).as_nanos());
        }
        s.work = s.work.saturating_add(w);
        if !s.touched {
            s.touched = true;
            self.proc_touched.push(node as u32);
        }
    }

    /// After an event (and the plug-ins' flush): start the work charged on
    /// every touched server, or release what it held and serve the next
    /// input.
    pub(crate) fn proc_settle(&mut self, now: SimTime, queue: &mut EventQueue<Ev>) {
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
                let Some((pkt, t0)) = s.inputs.pop_front() else {
                    break;
                };
                s.cur_wait = Some(now.saturating_since(t0).as_nanos());
                self.ip_deliver(now, queue, node, pkt);
                self.flush_apps(now, queue);
            }
        }
    }

    /// The server of `node` finished its work: what it held leaves.
    pub(crate) fn on_proc_done(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, node: usize) {
        let Some(s) = self.server_mut(node) else {
            return;
        };
        s.busy = false;
        if !s.touched {
            s.touched = true;
            self.proc_touched.push(node as u32);
        }
        self.proc_release(now, queue, node);
    }

    /// Send everything `node`'s server held, in order.
    fn proc_release(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, node: usize) {
        while let Some(pkt) = self.server_mut(node).and_then(|s| s.held.pop_front()) {
            if self.nodes[node].up {
                self.stack_tx(now, queue, node, pkt);
            } else {
                self.drop_node_down(pkt);
            }
        }
    }

    /// `node` crashed: what waits in its server is lost.
    pub(crate) fn proc_crash(&mut self, node: usize) {
        let Some(s) = self.server_mut(node) else {
            return;
        };
        let mut lost: Vec<PacketHandle> = s.inputs.drain(..).map(|(p, _)| p).collect();
        lost.extend(s.held.drain(..));
        s.work = 0;
        s.cur_wait = None;
        for pkt in lost {
            self.drop_node_down(pkt);
        }
    }

    fn drop_node_down(&mut self, pkt: PacketHandle) {
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
