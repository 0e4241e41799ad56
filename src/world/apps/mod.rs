//! Protocol plug-ins: each protocol's glue between the simulator and its
//! sans-IO core (`udp`, `tcp_flow`, `coap`, `mqtt`, …) implements one trait,
//! [`Plugin`], and is registered in one table ([`Registry`]). Adding a
//! protocol is one plug-in file, its `[protocols.<name>]` section and one
//! registry line; the network layer, the TCP driver and the UDP demux do not
//! change (docs/architecture.md walks through an example).
//!
//! A plug-in talks to the simulator only through a [`Ctx`]: it binds UDP
//! ports and listens on TCP ports at setup, sends datagrams, opens, writes,
//! closes and drives TCP sockets, records what its receivers received, and
//! schedules its timers; the host stack calls it back through the
//! [`DatagramApp`] and [`StreamApp`] traits.
//!
//! One driving discipline serves every plug-in:
//! - inputs (a datagram, stream bytes, a stream event) reach the plug-in at
//!   once; it may answer at once (CoAP's ACK) or only update its cores and
//!   call [`Ctx::mark_pending`];
//! - after every simulator event the world calls [`Plugin::flush`] on every
//!   pending plug-in, in registry order, until none is pending: that is
//!   where a plug-in polls its cores in the documented order (transmits,
//!   events, timeout) — so no core is re-entered from inside another's poll;
//! - timers are one event kind for all plug-ins (`Ev::App { app, key, arg }`
//!   through [`Ctx::schedule`]), deduplicated by each core's
//!   [`Wakeup`](crate::sim::Wakeup): a deadline is queued only when it is
//!   earlier than the one already queued, and stale events are ignored.

mod coap;
mod http;
mod mqtt;
pub(crate) use mqtt::CLIENT_NODE_BYTES;
mod mqttsn;
mod registry;
mod tags;
mod tcp_flow;
mod udp;

pub use coap::{block_szx, resource_server};
pub use mqtt::{broker_config, write_mqtt_rows, MqttRow, MQTT_HEADER};
pub use registry::{ColumnOwner, PluginEntry, Registry, RegistryError, MAX_PLUGINS};

use super::host::{DatagramApp, Received, SockId, SockOpts, StreamApp, StreamEvent, StreamState};
use super::{Ev, World};
use crate::metrics::record::FlowStats;
use crate::metrics::summary::Value;
use crate::net::packet::PacketMeta;
use crate::scenario::model::Scenario;
use crate::sim::{EventQueue, SimTime};

/// A plug-in's index in the registry (and in the run's plug-in table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub u8);

/// One message of a flow, composed by the world (value, intended
/// receivers, payload with its application header) for a plug-in to carry.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Index of the publisher (`Ctx::publisher`).
    pub publisher: usize,
    pub flow: usize,
    /// The publishing node.
    pub node: u32,
    /// The publisher's rendered topic / URI path.
    pub topic: &'a str,
    /// Intended receivers (nodes), fixed by the flow's pattern.
    pub receivers: &'a [u32],
    /// Sent after warmup: its traffic counts.
    pub counted: bool,
    /// The application payload (`app::workload::build_payload`).
    pub payload: &'a [u8],
}

/// `client_disconnect`, `client_crash`, `client_connect`, `client_sleep`,
/// `client_wake` (scenario events addressed to a node's protocol clients;
/// a protocol without the notion ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    Disconnect,
    Crash,
    Connect,
    /// Sleep (MQTT-SN 1.2 §6.14), waking every `duration`.
    Sleep {
        duration: crate::sim::SimDuration,
    },
    /// Wake for good.
    Wake,
}

/// An extra table a plug-in writes beside the standard outputs (e.g.
/// `mqtt.csv`): its file name and CSV text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub file: &'static str,
    pub csv: String,
}

/// What a plug-in hands back at the end of a run.
#[derive(Debug, Default, Clone)]
pub struct PluginOutput {
    /// Per flow (every flow of the scenario, in order), the values of the
    /// plug-in's extension columns (`PluginEntry::columns`, in order).
    pub columns: Vec<Vec<Value>>,
    /// Extra tables (`PluginEntry::tables` names every file it may write;
    /// one not written this run is removed if an earlier run left it).
    pub tables: Vec<Table>,
    /// Named counters for callers of the library (benchmarks, tests); not
    /// written to any file.
    pub counters: Vec<(&'static str, u64)>,
}

/// What a plug-in may read when the run ends.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub scenario: &'a Scenario,
    pub run_id: u64,
    /// Every flow's name and shared counters, in flow order (latencies
    /// sorted).
    pub flows: &'a [(String, FlowStats)],
}

/// A protocol's glue in the simulator. Every method but `publish` has a
/// default that does nothing.
pub trait Plugin {
    /// Build per-node state from the resolved scenario: bind UDP ports,
    /// listen on TCP ports, create endpoints; may `mark_pending`.
    fn setup(&mut self, _ctx: &mut Ctx<'_, '_>) {}
    /// Schedule the first timers (after every plug-in's setup).
    fn prime(&mut self, _ctx: &mut Ctx<'_, '_>) {}
    /// Whether publisher `publisher` (on `node`, of `flow`) can produce a
    /// message now (a crashed device produces nothing; its slot is skipped).
    fn publisher_alive(&self, _publisher: usize, _node: u32, _flow: u32) -> bool {
        true
    }
    /// Carry one message of a flow of this protocol.
    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>);
    /// A saturating source (`timing = "bulk"`) starts at its first send
    /// time; it composes its messages itself (`Ctx::compose`) as its
    /// transport takes them.
    fn start_source(&mut self, _ctx: &mut Ctx<'_, '_>, _publisher: usize) {}
    /// One of the plug-in's `Ctx::schedule` events fired.
    fn on_timer(&mut self, _ctx: &mut Ctx<'_, '_>, _key: u32, _arg: u32) {}
    /// Poll what `mark_pending` said needs polling.
    fn flush(&mut self, _ctx: &mut Ctx<'_, '_>) {}
    /// `node_crash`: the node's volatile state is lost (its sockets are
    /// already gone).
    fn node_crash(&mut self, _ctx: &mut Ctx<'_, '_>, _node: usize) {}
    /// `node_restart`.
    fn node_restart(&mut self, _ctx: &mut Ctx<'_, '_>, _node: usize) {}
    /// `client_disconnect` / `client_crash` / `client_connect` on `node`.
    fn client_action(&mut self, _ctx: &mut Ctx<'_, '_>, _node: usize, _action: ClientAction) {}
    /// Its datagram side, when it binds UDP ports.
    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        None
    }
    /// Its stream side, when it uses TCP.
    fn stream_app(&mut self) -> Option<&mut dyn StreamApp> {
        None
    }
    /// The end of the run: extension column values and extra tables.
    fn finish(&mut self, _end: &RunEnd<'_>) -> PluginOutput {
        PluginOutput::default()
    }
}

/// What a plug-in may do to the simulator, for the duration of one call.
pub struct Ctx<'a, 'w> {
    pub(crate) w: &'a mut World<'w>,
    pub(crate) q: &'a mut EventQueue<Ev>,
    pub(crate) now: SimTime,
    pub(crate) app: AppId,
}

impl<'a, 'w> Ctx<'a, 'w> {
    /// Simulated time now.
    pub fn now(&self) -> SimTime {
        self.now
    }
    /// The resolved scenario.
    pub fn scenario(&self) -> &'w Scenario {
        self.w.sc
    }
    /// This plug-in's id.
    pub fn app(&self) -> AppId {
        self.app
    }
    /// Name of node `node`.
    pub fn node_name(&self, node: usize) -> &str {
        &self.w.names[node]
    }
    /// Whether node `node` is up (not crashed).
    pub fn node_up(&self, node: usize) -> bool {
        self.w.nodes[node].up
    }
    /// Put `node`'s radio to sleep or wake it (no-op without a radio): an
    /// application that sleeps (an MQTT-SN client, §6.14) turns it off.
    pub fn radio_doze(&mut self, node: usize, on: bool) {
        let now = self.now;
        self.w.radio_doze(now, node, on);
    }
    /// Charge work to `node`'s application server (docs/metrics.md
    /// "Processing time"): `messages` protocol messages processed (one
    /// `service` draw each) and `copies` PUBLISH copies sent (one
    /// `per_copy` draw each). Free (nothing happens) on nodes without
    /// processing times; the work holds what the node sends in this event
    /// until it is done.
    pub fn charge(&mut self, node: usize, messages: u32, copies: u32) {
        if messages | copies != 0 {
            self.w.proc_charge(node, messages, copies);
        }
    }
    /// Whether traffic now counts (after warmup).
    pub fn counted(&self) -> bool {
        self.w.counted(self.now)
    }
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.w.sc.seed
    }

    // ----- workload and metrics -----

    /// Publisher number `p` (index over every flow's publishers).
    pub fn publisher(&self, publisher: usize) -> &crate::app::workload::Publisher {
        &self.w.publishers[publisher]
    }
    /// How many publishers the run has.
    pub fn publishers(&self) -> usize {
        self.w.publishers.len()
    }
    /// Compose publisher `p`'s next message (value, record, intended
    /// receivers, payload) and count it as sent; returns whether it is
    /// counted. Its payload is then [`Ctx::payload`], its receivers
    /// [`Ctx::receivers`]. For saturating sources; periodic and Poisson
    /// publishers get composed messages in `Plugin::publish`.
    pub fn compose(&mut self, publisher: usize) -> bool {
        let mut receivers = std::mem::take(&mut self.w.receivers);
        let counted = self.w.compose(self.now, publisher, &mut receivers);
        self.w.receivers = receivers;
        self.w.publishers[publisher].sent += 1;
        counted
    }
    /// The payload of the message last composed.
    pub fn payload(&self) -> &[u8] {
        &self.w.payload
    }
    /// The intended receivers of the message last composed.
    pub fn receivers(&self) -> &[u32] {
        &self.w.receivers
    }
    /// The intended receivers of publisher `p`'s messages.
    pub fn intended(&self, publisher: usize, out: &mut Vec<u32>) {
        let pb = &self.w.publishers[publisher];
        self.w
            .recorder
            .intended(pb.flow as usize, pb.index as usize, pb.node, out);
    }
    /// The application at `node` received a payload: recorded as a
    /// delivery (or duplicate) of the message its header names.
    pub fn deliver(&mut self, node: u32, payload: &[u8]) {
        if let Some((flow, msg)) = crate::app::workload::parse_payload(payload) {
            self.deliver_message(flow as usize, msg, node);
        }
    }
    /// Message `msg` of `flow` reached the application at `node`.
    pub fn deliver_message(&mut self, flow: usize, msg: u32, node: u32) {
        use crate::metrics::record::Receipt;
        let receipt = self.w.recorder.on_receive(self.now, flow, msg, node);
        if let Some(t) = self.w.trace.as_mut() {
            let event = match &receipt {
                Some(Receipt::First { .. }) => "deliver",
                Some(Receipt::Repeat { .. }) => "deliver_repeat",
                None => "deliver_unrecorded",
            };
            let r = t.deliver(self.now, (self.w.sc, &self.w.names), flow, msg, node, event);
            self.w.io_result(r);
        }
        if let Some(m) = self.w.monitors.as_mut() {
            // every receipt, also those the recorder no longer judges (late,
            // or at a node that was not an intended receiver)
            m.delivered(flow as u32, msg, node);
            match receipt {
                Some(Receipt::Repeat { first }) => {
                    m.repeat_delivery(self.now, flow as u32, msg, node, first)
                }
                Some(Receipt::First { publisher }) => {
                    m.first_delivery(self.now, flow as u32, msg, publisher, node)
                }
                None => {}
            }
        }
    }
    /// A new session began at `node`: what older sessions delivered may
    /// legitimately be delivered again (the monitors' exactly-once rules;
    /// an MQTT client connected without a present session).
    pub fn session_start(&mut self, node: u32) {
        if let Some(m) = self.w.monitors.as_mut() {
            m.session_start(self.now, node);
        }
    }
    /// The spec-oracle monitors, when they run (docs/checks.md; `None`:
    /// off, and a hook costs this one test).
    pub fn monitors(&mut self) -> Option<&mut crate::check::Monitors> {
        self.w.monitors.as_deref_mut()
    }
    /// The shared counters of `flow` (`None` for traffic outside flows).
    pub fn flow_stats(&mut self, flow: u32) -> Option<&mut FlowStats> {
        self.w.flow_stats(flow)
    }
    /// Write out finished `messages.csv` rows (after a batch of sends).
    pub fn flush_records(&mut self) {
        self.w.recorder.flush(self.now, false);
    }

    // ----- driving -----

    /// Ask for `Plugin::flush` after the current event.
    pub fn mark_pending(&mut self) {
        self.w.pending |= 1u64 << self.app.0;
    }
    /// Queue this plug-in's event at `at` (no earlier than now):
    /// `Plugin::on_timer(key, arg)` then. Deduplicate with a
    /// [`Wakeup`](crate::sim::Wakeup) and pass its generation as `arg`.
    pub fn schedule(&mut self, at: SimTime, key: u32, arg: u32) {
        let _ = self.q.push(
            at.max(self.now),
            Ev::App {
                app: self.app.0,
                key,
                arg,
            },
        );
    }

    // ----- UDP -----

    /// Receive datagrams for `node:port` (`DatagramApp::on_datagram`).
    pub fn udp_bind(&mut self, node: usize, port: u16) -> Result<(), super::host::udp::PortInUse> {
        self.w.udp.bind(node as u32, port, self.app)
    }
    /// `udp_bind`, and with `DatagramSecurity::Dtls` the port carries DTLS
    /// (`world::host::dtls`): the plug-in still sends and receives
    /// plaintext.
    pub fn udp_bind_with(
        &mut self,
        node: usize,
        port: u16,
        security: crate::scenario::model::DatagramSecurity,
    ) -> Result<(), super::host::udp::PortInUse> {
        self.udp_bind(node, port)?;
        if security == crate::scenario::model::DatagramSecurity::Dtls {
            self.w.dtls.secure(node as u32, port);
        }
        Ok(())
    }
    /// Close the DTLS associations `node:port` opened as a client and no
    /// longer needs (close_notify to each peer); the next datagram to a
    /// peer starts a new handshake. Nothing without DTLS on the port.
    pub fn dtls_end_sessions(&mut self, node: usize, port: u16) {
        self.w
            .dtls_end_client_sessions(self.now, self.q, node, port);
    }
    /// Send `payload` from `node:sport` to `dst:dport`; `meta` attributes
    /// the packet (flow, kind, counted, layer split). A datagram to the
    /// node itself comes back as its own event.
    pub fn udp_send(
        &mut self,
        (node, sport): (usize, u16),
        (dst, dport): (usize, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let to = (self.w.net.node_addr(dst), dport);
        self.w
            .udp_send(self.now, self.q, (node, sport), to, payload, meta);
    }
    /// Send `payload` from `node:sport` to `to`: a node's address, or the
    /// limited broadcast 255.255.255.255, which reaches every link
    /// neighbour of `node` (one frame on its radio medium, else one copy
    /// on each of its wired links) and is never forwarded, or an IPv4
    /// multicast group (e.g. CoAP's All-CoAP-Nodes 224.0.1.187), modelled
    /// as link-local: one link-layer broadcast on `node`'s radio medium,
    /// taken by every neighbour, never forwarded (no IGMP, no multicast
    /// routing; from a node without a radio it is dropped as unroutable).
    /// `false` when `to` is none of these (no node has that address).
    pub fn udp_send_to(
        &mut self,
        (node, sport): (usize, u16),
        to: crate::net::addr::SockAddr,
        payload: &[u8],
        meta: PacketMeta,
    ) -> bool {
        if !crate::net::l3::NetPlan::is_group(to.addr) && self.w.net.addr_node(to.addr).is_none() {
            return false;
        }
        self.w.udp_send(
            self.now,
            self.q,
            (node, sport),
            (to.addr, to.port),
            payload,
            meta,
        );
        true
    }
    /// Send `payload` from `node` to `to` (a node on the same 802.15.4
    /// medium, or the broadcast) as the payload of a MAC frame, without IP
    /// (MQTT-SN's `transport = "raw"`). A message longer than 63 bytes goes
    /// in MQTT-SN's 3-byte length form, so its first byte stays in RFC
    /// 4944's NALP range on a medium that also carries 6LoWPAN. `false`
    /// when `node` has no radio or `to` is not on its medium.
    pub fn link_send_to(
        &mut self,
        node: usize,
        to: crate::net::addr::SockAddr,
        payload: &[u8],
        meta: PacketMeta,
    ) -> bool {
        self.w
            .raw_send(self.now, self.q, node, to.addr, payload, meta)
    }
    /// The address of `node:port` as its datagrams carry it.
    pub fn sock_addr(&self, node: usize, port: u16) -> crate::net::addr::SockAddr {
        crate::net::addr::SockAddr::new(self.w.net.node_addr(node), port)
    }
    /// The node whose address `addr` is (`None` for the broadcast or an
    /// address no node has).
    pub fn node_of(&self, addr: crate::net::addr::SockAddr) -> Option<usize> {
        self.w.net.addr_node(addr.addr)
    }
    /// Hops on the current route from `from` to `to` (`Some(0)` for the
    /// node itself, `None` when there is no route).
    pub fn route_hops(&self, from: usize, to: usize) -> Option<u32> {
        self.w.route_hops(from, to)
    }

    // ----- TCP -----

    /// Accept connections on `node:port` (`StreamApp::on_accept` with
    /// `tag`).
    pub fn tcp_listen(&mut self, node: usize, port: u16, tag: u32, opts: SockOpts) {
        self.w.tcp_listen(node, port, self.app, tag, opts);
    }
    /// Open a connection from `node` to `dst:port` for `flow`; its events
    /// come with `tag`. `None` when it ended at once.
    pub fn tcp_connect(
        &mut self,
        node: usize,
        (dst, port): (usize, u16),
        flow: u32,
        tag: u32,
        opts: SockOpts,
    ) -> Option<SockId> {
        self.w.tcp_connect(
            self.now,
            self.q,
            node,
            (dst, port),
            flow,
            (self.app, tag),
            opts,
        )
    }
    /// Append bytes to a socket's stream (see `World::tcp_write`): `payload`
    /// is the range of application payload in `data`, `kind` what packet
    /// the bytes are. Drive the socket afterwards. `false`: refused whole,
    /// the socket's backlog would pass `host::tcp::MAX_BACKLOG` (counted as
    /// a queue drop of the flow).
    pub fn tcp_write(
        &mut self,
        sock: SockId,
        data: &[u8],
        payload: Option<(usize, usize)>,
        kind: Option<&'static str>,
    ) -> bool {
        let kind = kind.map(|k| (k, crate::net::packet::NO_FLOW));
        self.w.tcp_write(self.now, sock, data, payload, kind)
    }
    /// As [`Ctx::tcp_write`], the bytes belonging to `flow` rather than the
    /// socket's flow (a connection shared by several flows, e.g. an MQTT-SN
    /// gateway's aggregated upstream): segments starting in them are
    /// attributed to `flow`.
    pub fn tcp_write_flow(
        &mut self,
        sock: SockId,
        data: &[u8],
        payload: Option<(usize, usize)>,
        kind: &'static str,
        flow: u32,
    ) -> bool {
        self.w
            .tcp_write(self.now, sock, data, payload, Some((kind, flow)))
    }
    /// Write the payload of the message last composed (`Ctx::compose`).
    pub fn tcp_write_payload(&mut self, sock: SockId) -> bool {
        let payload = std::mem::take(&mut self.w.payload);
        let ok = self.w.tcp_write(self.now, sock, &payload, None, None);
        self.w.payload = payload;
        ok
    }
    /// The node a socket belongs to.
    pub fn tcp_node(&self, sock: SockId) -> Option<u32> {
        self.w.tcp.sock(sock).map(|s| s.node)
    }
    /// Bytes a write would hand the send buffer at once.
    pub fn tcp_send_room(&self, sock: SockId) -> usize {
        self.w.tcp_send_room(sock)
    }
    /// Poll a socket: segments out, events to its application, timer.
    pub fn tcp_drive(&mut self, sock: SockId) {
        self.w.tcp_drive(self.now, self.q, sock);
    }
    /// Close gracefully (FIN after the data); no more events.
    pub fn tcp_close(&mut self, sock: SockId) {
        self.w.tcp_close(self.now, sock);
    }
    /// Abort (RST); no more events.
    pub fn tcp_abort(&mut self, sock: SockId) {
        self.w.tcp_abort(sock);
    }
    /// Hear no more events of a socket that is ending on its own.
    pub fn tcp_detach(&mut self, sock: SockId) {
        self.w.tcp_detach(sock);
    }
    /// The device stopped dead: the socket neither sends nor answers.
    pub fn tcp_freeze(&mut self, sock: SockId) {
        self.w.tcp_freeze(sock);
    }
    /// Forget a socket without a word to the peer.
    pub fn tcp_remove(&mut self, sock: SockId) {
        self.w.tcp_remove(self.now, self.q, sock);
    }
    /// Where a socket is in its life (`None`: gone).
    pub fn tcp_state(&self, sock: SockId) -> Option<StreamState> {
        self.w.tcp_state(sock)
    }
}

/// A stream event or datagram that reached a plug-in while its own call was
/// running, delivered when that call returns.
#[derive(Debug)]
pub(crate) enum Deferred {
    Datagram {
        app: AppId,
        node: u32,
        port: u16,
        from: crate::net::addr::SockAddr,
        data: Vec<u8>,
        meta: PacketMeta,
        group: bool,
    },
    Stream {
        app: AppId,
        sock: SockId,
        tag: u32,
        ev: OwnedStreamEvent,
    },
    Writable {
        app: AppId,
        sock: SockId,
        tag: u32,
    },
}

#[derive(Debug)]
pub(crate) enum OwnedStreamEvent {
    Connected,
    Data(Vec<u8>),
    PeerClosed,
    Ended(crate::metrics::connections::ConnOutcome),
    Released,
}

impl OwnedStreamEvent {
    fn of(ev: StreamEvent<'_>) -> Self {
        match ev {
            StreamEvent::Connected => OwnedStreamEvent::Connected,
            StreamEvent::Data(d) => OwnedStreamEvent::Data(d.to_vec()),
            StreamEvent::PeerClosed => OwnedStreamEvent::PeerClosed,
            StreamEvent::Ended(o) => OwnedStreamEvent::Ended(o),
            StreamEvent::Released => OwnedStreamEvent::Released,
        }
    }
    fn borrow(&self) -> StreamEvent<'_> {
        match self {
            OwnedStreamEvent::Connected => StreamEvent::Connected,
            OwnedStreamEvent::Data(d) => StreamEvent::Data(d),
            OwnedStreamEvent::PeerClosed => StreamEvent::PeerClosed,
            OwnedStreamEvent::Ended(o) => StreamEvent::Ended(*o),
            OwnedStreamEvent::Released => StreamEvent::Released,
        }
    }
}

impl<'s> World<'s> {
    /// Call plug-in `app` with a context; `None` while that plug-in's own
    /// call is running (it is taken out of its slot meanwhile).
    pub(crate) fn with_app<R>(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        call: impl FnOnce(&mut dyn Plugin, &mut Ctx<'_, 's>) -> R,
    ) -> Option<R> {
        let mut p = self.apps.get_mut(app.0 as usize)?.take()?;
        let r = {
            let mut ctx = Ctx {
                w: self,
                q: queue,
                now,
                app,
            };
            call(&mut *p, &mut ctx)
        };
        self.apps[app.0 as usize] = Some(p);
        if !self.deferred.is_empty() {
            self.run_deferred(now, queue);
        }
        Some(r)
    }

    fn busy(&self, app: AppId) -> bool {
        self.apps
            .get(app.0 as usize)
            .is_some_and(|slot| slot.is_none())
    }

    /// Deliver what waited for a plug-in to return.
    fn run_deferred(&mut self, now: SimTime, queue: &mut EventQueue<Ev>) {
        let mut i = 0;
        while i < self.deferred.len() {
            let app = match &self.deferred[i] {
                Deferred::Datagram { app, .. }
                | Deferred::Stream { app, .. }
                | Deferred::Writable { app, .. } => *app,
            };
            if self.busy(app) {
                i += 1;
                continue;
            }
            let d = self.deferred.remove(i);
            match d {
                Deferred::Datagram {
                    app,
                    node,
                    port,
                    from,
                    data,
                    meta,
                    group,
                } => self.datagram(
                    now,
                    queue,
                    app,
                    Received {
                        node,
                        port,
                        from,
                        data: &data,
                        meta,
                        group,
                    },
                ),
                Deferred::Stream { app, sock, tag, ev } => {
                    self.stream_event(now, queue, app, sock, tag, ev.borrow())
                }
                Deferred::Writable { app, sock, tag } => {
                    self.stream_writable(now, queue, app, sock, tag)
                }
            }
        }
    }

    /// Hand a datagram to plug-in `app`.
    pub(crate) fn datagram(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        rx: Received<'_>,
    ) {
        // a node's application server queues what arrives while it works
        if self.nodes[rx.node as usize].proc.is_some() && self.proc_take_datagram(now, app, &rx) {
            return;
        }
        self.datagram_now(now, queue, app, rx);
    }

    /// `datagram`, past the application server.
    pub(crate) fn datagram_now(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        rx: Received<'_>,
    ) {
        if self.busy(app) {
            self.deferred.push(Deferred::Datagram {
                app,
                node: rx.node,
                port: rx.port,
                from: rx.from,
                data: rx.data.to_vec(),
                meta: rx.meta,
                group: rx.group,
            });
            return;
        }
        self.with_app(now, queue, app, |p, ctx| {
            if let Some(d) = p.datagram_app() {
                d.on_datagram(ctx, rx);
            }
        });
    }

    /// Hand a stream event to plug-in `app`.
    pub(crate) fn stream_event(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        sock: SockId,
        tag: u32,
        ev: StreamEvent<'_>,
    ) {
        // a node's application server queues what arrives while it works
        if self.has_servers && self.proc_take_stream(now, app, sock, tag, &ev) {
            return;
        }
        self.stream_event_now(now, queue, app, sock, tag, ev);
    }

    /// `stream_event`, past the application server.
    pub(crate) fn stream_event_now(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        sock: SockId,
        tag: u32,
        ev: StreamEvent<'_>,
    ) {
        if self.busy(app) {
            self.deferred.push(Deferred::Stream {
                app,
                sock,
                tag,
                ev: OwnedStreamEvent::of(ev),
            });
            return;
        }
        self.with_app(now, queue, app, |p, ctx| {
            if let Some(s) = p.stream_app() {
                s.on_stream(ctx, sock, tag, ev);
            }
        });
    }

    /// A listener of plug-in `app` accepted `sock`: the tag it names it by.
    pub(crate) fn stream_accept(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        sock: SockId,
        listen_tag: u32,
    ) -> u32 {
        self.with_app(now, queue, app, |p, ctx| {
            p.stream_app()
                .map_or(listen_tag, |s| s.on_accept(ctx, sock, listen_tag))
        })
        .unwrap_or(listen_tag)
    }

    /// A saturating source's socket has room.
    pub(crate) fn stream_writable(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        sock: SockId,
        tag: u32,
    ) {
        if self.busy(app) {
            self.deferred.push(Deferred::Writable { app, sock, tag });
            return;
        }
        self.with_app(now, queue, app, |p, ctx| {
            if let Some(s) = p.stream_app() {
                s.on_writable(ctx, sock, tag);
            }
        });
    }

    /// Flush every pending plug-in, in registry order, until none is
    /// pending.
    pub(crate) fn flush_apps(&mut self, now: SimTime, queue: &mut EventQueue<Ev>) {
        while self.pending != 0 {
            let i = self.pending.trailing_zeros();
            self.pending &= !(1u64 << i);
            self.with_app(now, queue, AppId(i as u8), |p, ctx| p.flush(ctx));
        }
    }

    /// Plug-in `app`'s event.
    pub(crate) fn on_app_timer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: u8,
        key: u32,
        arg: u32,
    ) {
        self.with_app(now, queue, AppId(app), |p, ctx| p.on_timer(ctx, key, arg));
    }

    /// Call every plug-in in registry order.
    pub(crate) fn each_app(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        mut call: impl FnMut(&mut dyn Plugin, &mut Ctx<'_, 's>),
    ) {
        for i in 0..self.apps.len() {
            self.with_app(now, queue, AppId(i as u8), &mut call);
        }
    }
}
