//! Scheduled scenario events (`[[events]]`): links and nodes going down and
//! coming back, loss changes, partitions.

use super::apps::ClientAction;
use super::{Ev, World};
use crate::scenario::model::Action;
use crate::sim::{EventQueue, SimTime};

impl World<'_> {
    fn set_link(&mut self, now: SimTime, link: usize, up: bool) {
        if self.links[link].up == up {
            return;
        }
        self.links[link].up = up;
        if !up {
            self.flush_queue(now, link, 0);
            self.flush_queue(now, link, 1);
        }
        self.routing.set_link_up(link, up);
    }

    pub(crate) fn on_scenario_event(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        idx: usize,
    ) {
        let sc = self.sc;
        match &sc.events[idx].action {
            Action::LinkDown { link } => self.set_link(now, *link, false),
            Action::LinkUp { link } => self.set_link(now, *link, true),
            Action::SetLoss { link, loss } => {
                for d in &mut self.links[*link].dirs {
                    d.channel.set_spec(loss, now);
                }
            }
            Action::NodeCrash { node } => {
                self.nodes[*node].up = false;
                // its interfaces stop: what waits in its output queues is lost
                for a in self.routing.adjacency(*node).to_vec() {
                    if !self.radio.is_edge(a.link as usize) {
                        self.flush_queue(now, a.link as usize, a.dir as usize);
                    }
                }
                self.radio_crash(now, *node);
                self.nodes[*node].clear_volatile();
                let n = *node as u32;
                self.frag_owner.retain(|k, _| k.0 != n);
                self.tcp_crash(now, queue, *node);
                self.dtls_crash(*node);
                let n = *node;
                self.each_app(now, queue, |p, ctx| p.node_crash(ctx, n));
                self.proc_crash(now, n);
            }
            Action::NodeRestart { node } => {
                self.nodes[*node].up = true;
                if let Some(m) = self.monitors.as_mut() {
                    m.session_start(now, *node as u32);
                }
                self.radio_restart(now, *node);
                let n = *node;
                self.each_app(now, queue, |p, ctx| p.node_restart(ctx, n));
            }
            Action::ClientDisconnect { node } => {
                self.client_action(now, queue, *node, ClientAction::Disconnect)
            }
            Action::ClientCrash { node } => {
                self.client_action(now, queue, *node, ClientAction::Crash)
            }
            Action::ClientConnect { node } => {
                self.client_action(now, queue, *node, ClientAction::Connect)
            }
            Action::ClientSleep { node, duration } => self.client_action(
                now,
                queue,
                *node,
                ClientAction::Sleep {
                    duration: *duration,
                },
            ),
            Action::ClientWake { node } => {
                self.client_action(now, queue, *node, ClientAction::Wake)
            }
            Action::Partition { nodes } => {
                let mut inside = vec![false; self.nodes.len()];
                for &n in nodes {
                    inside[n] = true;
                }
                for (l, spec) in sc.links.iter().enumerate() {
                    if inside[spec.a] != inside[spec.b] && self.links[l].up {
                        self.set_link(now, l, false);
                        self.partitioned.push(l);
                    }
                }
            }
            // acts on packets as they are sent (`world::faults`)
            Action::PacketFault(_) => {}
            Action::Heal => {
                for l in std::mem::take(&mut self.partitioned) {
                    self.set_link(now, l, true);
                }
            }
        }
    }
}

impl World<'_> {
    /// A client fault action for every plug-in's clients on `node`.
    fn client_action(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        action: ClientAction,
    ) {
        self.each_app(now, queue, |p, ctx| p.client_action(ctx, node, action));
    }
}

impl super::Node {
    /// Forget state a crash loses (reassembly buffers).
    pub(crate) fn clear_volatile(&mut self) {
        self.reassembler = None;
    }
}
