//! DTLS on the UDP ports that carry it (issue 21; docs/security.md, "In the
//! simulated world"): CoAP's and MQTT-SN's `security = "dtls"`.
//!
//! The overlay sits in the host, between UDP and the application, so a
//! protocol plug-in sends and receives plaintext datagrams as before. A
//! datagram an application sends from a secured port to a unicast peer
//! goes through the association of (node, port, peer): sealed into one
//! record when the association is established, held while its handshake
//! runs, and the first one to a new peer starts the handshake (the sender
//! is the DTLS client). A datagram arriving at a secured port goes through
//! the association of its sender (a ClientHello from a new peer opens a
//! server association); the plaintext of its records reaches the
//! application. Handshake flights are retransmitted on the endpoint's own
//! timer (RFC 6347 §4.2.4), an event of the world's queue.
//!
//! Group traffic (IP multicast, the limited broadcast: CoAP discovery,
//! MQTT-SN ADVERTISE/SEARCHGW) bypasses DTLS both ways: DTLS protects
//! unicast associations only (RFC 7252 §9.1 secures no multicast).
//!
//! Bytes: handshake and alert datagrams count whole as `bytes_security`;
//! a sealed datagram's record header, explicit nonce and tag too
//! (`PacketMeta::sec_bytes`), its plaintext as the application said.

use std::collections::BTreeMap;

use crate::net::addr::{Addr, SockAddr};
use crate::net::packet::PacketMeta;
use crate::scenario::model::DtlsParams;
use crate::sim::rng::{derive_seed, stable_id};
use crate::sim::{EventQueue, SimTime};
use crate::transport::dtls::{DtlsEndpoint, DtlsState};
use crate::world::apps::AppId;
use crate::world::{Ev, World};

/// `packets.csv` kind of handshake datagrams (flights and their
/// retransmissions).
pub(crate) const KIND_HANDSHAKE: &str = "dtls_handshake";
/// `packets.csv` kind of alert datagrams (close_notify, fatal alerts).
pub(crate) const KIND_ALERT: &str = "dtls_alert";

/// A datagram an application sent while its association's handshake ran.
#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    meta: PacketMeta,
}

/// One side of one association.
#[derive(Debug)]
struct Assoc {
    node: u32,
    port: u16,
    peer: SockAddr,
    ep: DtlsEndpoint,
    client: bool,
    /// The flow its handshake bytes belong to: the first datagram's.
    flow: u32,
    opened: SimTime,
    /// The handshake's end was recorded.
    done: bool,
    held: Vec<Held>,
    /// The time of the timer event in the queue for it, if any.
    armed: Option<SimTime>,
    /// Flight retransmissions (timer and triggered) already sent.
    resent: u64,
}

/// Every node's DTLS associations.
#[derive(Debug, Default)]
pub(crate) struct DtlsLayer {
    params: DtlsParams,
    /// (node, port) of every port that carries DTLS, sorted.
    secured: Vec<(u32, u16)>,
    slots: Vec<Option<Assoc>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    by_key: BTreeMap<(u32, u16, SockAddr), u32>,
    seed: u64,
    /// Associations opened so far (each endpoint's randoms derive from it).
    opened: u64,
    out: Vec<u8>,
    plain: Vec<u8>,
}

/// Smallest datagram a flight is packed into, whatever the path: room for
/// the record and handshake headers and some of a message.
const MIN_FLIGHT_DATAGRAM: usize = 64;

/// The first record of `d` is an epoch-0 ClientHello (a client starting
/// over, RFC 6347 §4.2.8).
fn is_client_hello(d: &[u8]) -> bool {
    d.len() > 13 && d[0] == 22 && d[3] == 0 && d[4] == 0 && d[13] == 1
}

impl DtlsLayer {
    pub(crate) fn new(params: DtlsParams, seed: u64) -> Self {
        DtlsLayer {
            params,
            seed: derive_seed(seed, stable_id("dtls/assoc")),
            ..DtlsLayer::default()
        }
    }

    /// `node:port` carries DTLS from now on.
    pub(crate) fn secure(&mut self, node: u32, port: u16) {
        if let Err(i) = self.secured.binary_search(&(node, port)) {
            self.secured.insert(i, (node, port));
        }
    }

    pub(crate) fn is_secured(&self, node: usize, port: u16) -> bool {
        !self.secured.is_empty() && self.secured.binary_search(&(node as u32, port)).is_ok()
    }

    /// A new association; `path` is the largest UDP payload that crosses
    /// the path to the peer unfragmented.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        node: u32,
        port: u16,
        peer: SockAddr,
        client: bool,
        flow: u32,
        now: SimTime,
        path: usize,
    ) -> u32 {
        let seed = derive_seed(self.seed, self.opened);
        self.opened += 1;
        let mut cfg = self.params.config.clone();
        // OpenSSL sizes flights to the path MTU it queries from the socket
        // (BIO_CTRL_DGRAM_QUERY_MTU), never above the configured cap
        cfg.mtu = cfg.mtu.min(path.max(MIN_FLIGHT_DATAGRAM));
        let ep = if client {
            DtlsEndpoint::client(cfg, seed)
        } else {
            DtlsEndpoint::server(cfg, seed)
        };
        let a = Assoc {
            node,
            port,
            peer,
            ep,
            client,
            flow,
            opened: now,
            done: false,
            held: Vec::new(),
            armed: None,
            resent: 0,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(a);
                s
            }
            None => {
                self.slots.push(Some(a));
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_key.insert((node, port, peer), slot);
        slot
    }

    fn remove(&mut self, slot: u32) {
        if let Some(a) = self.slots[slot as usize].take() {
            self.by_key.remove(&(a.node, a.port, a.peer));
            self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1);
            self.free.push(slot);
        }
    }

    fn get(&mut self, slot: u32) -> Option<&mut Assoc> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }
}

impl World<'_> {
    /// The largest UDP payload from `node` to `peer` without IP
    /// fragmentation (path MTU less the IP and UDP headers).
    fn dtls_path(&self, node: usize, peer: SockAddr) -> usize {
        let ip = if self.net.is_v6() { 40 } else { 20 };
        match self.net.addr_node(peer.addr) {
            Some(dst) => usize::from(self.path_mtu(node, dst)).saturating_sub(ip + 8),
            None => usize::MAX,
        }
    }

    /// An application on a secured port sends `payload` to the unicast
    /// peer `to`: through the association, started if new.
    pub(crate) fn dtls_send(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        (node, sport): (usize, u16),
        to: (Addr, u16),
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let peer = SockAddr::new(to.0, to.1);
        let key = (node as u32, sport, peer);
        let slot = match self.dtls.by_key.get(&key) {
            Some(&s) => s,
            None => {
                let path = self.dtls_path(node, peer);
                let s = self
                    .dtls
                    .open(node as u32, sport, peer, true, meta.flow, now, path);
                if let Some(a) = self.dtls.get(s) {
                    a.ep.start(now);
                }
                s
            }
        };
        let Some(a) = self.dtls.get(slot) else { return };
        if !a.ep.is_established() {
            a.held.push(Held {
                data: payload.to_vec(),
                meta,
            });
            self.dtls_flush(now, queue, slot);
            return;
        }
        self.dtls_seal(now, queue, slot, payload, meta);
    }

    /// Seal one application datagram on an established association and
    /// send it.
    fn dtls_seal(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        payload: &[u8],
        meta: PacketMeta,
    ) {
        let mut out = std::mem::take(&mut self.dtls.out);
        out.clear();
        let Some(a) = self.dtls.get(slot) else {
            self.dtls.out = out;
            return;
        };
        let (node, port, peer) = (a.node as usize, a.port, a.peer);
        match a.ep.seal(payload, &mut out) {
            Ok(_) => {
                let meta = PacketMeta {
                    sec_bytes: (out.len() - payload.len()) as u16,
                    ..meta
                };
                self.udp_send_plain(now, queue, (node, port), (peer.addr, peer.port), &out, meta);
            }
            Err(_) => {
                // a write over a record's limit: dropped, as a real stack
                // refuses it
                self.dtls_failure(now, meta.flow);
            }
        }
        self.dtls.out = out;
    }

    /// A datagram `rx` arrived at a secured port, for application `app`.
    pub(crate) fn dtls_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        app: AppId,
        rx: super::Received<'_>,
    ) {
        let (node, port, from, data, meta) = (rx.node as usize, rx.port, rx.from, rx.data, rx.meta);
        let key = (node as u32, port, from);
        let existing = self.dtls.by_key.get(&key).copied();
        // a server association whose client starts over is replaced
        let restart = existing.is_some_and(|s| {
            self.dtls.get(s).is_some_and(|a| {
                !a.client && !matches!(a.ep.state(), DtlsState::Idle | DtlsState::Handshaking)
            }) && is_client_hello(data)
        });
        let slot = match existing {
            Some(s) if !restart => s,
            // a record for no association: dropped (RFC 6347 §4.1.2.7)
            None if !is_client_hello(data) => return,
            _ => {
                if let Some(s) = existing {
                    self.dtls.remove(s);
                }
                // the path is walked only when an association opens
                let path = self.dtls_path(node, from);
                self.dtls
                    .open(node as u32, port, from, false, meta.flow, now, path)
            }
        };
        let mut plain = std::mem::take(&mut self.dtls.plain);
        plain.clear();
        let res = match self.dtls.get(slot) {
            Some(a) => a.ep.handle_datagram(now, data, &mut plain),
            None => Ok(()),
        };
        if res.is_err() {
            self.dtls_flush(now, queue, slot);
            self.dtls.plain = plain;
            return;
        }
        self.dtls_flush(now, queue, slot);
        if !plain.is_empty() {
            self.datagram(
                now,
                queue,
                app,
                super::Received {
                    node: node as u32,
                    port,
                    from,
                    data: &plain,
                    meta,
                    group: false,
                },
            );
        }
        if self.dtls.plain.capacity() < plain.capacity() {
            self.dtls.plain = plain;
        }
    }

    /// After an association moved: its datagrams out, its held
    /// plaintext sealed once established, its timer re-armed; a failed or
    /// closed association removed.
    fn dtls_flush(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        let mut out = std::mem::take(&mut self.dtls.out);
        let counted = self.counted(now);
        // what the endpoint sends after it resent a flight is that flight:
        // its bytes count as retransmissions
        let retx = match self.dtls.get(slot) {
            Some(a) => {
                let st = a.ep.stats();
                let n = st.timer_retransmissions + st.triggered_retransmissions;
                let more = n > a.resent;
                a.resent = n;
                more
            }
            None => false,
        };
        loop {
            out.clear();
            let Some(a) = self.dtls.get(slot) else { break };
            if a.ep.poll_transmit(now, &mut out).is_none() {
                break;
            }
            let (node, port, peer, flow) = (a.node as usize, a.port, a.peer, a.flow);
            let meta = PacketMeta {
                flow,
                // content type 21: an alert (RFC 6347 §4.1)
                kind: if out.first() == Some(&21) {
                    KIND_ALERT
                } else {
                    KIND_HANDSHAKE
                },
                counted,
                created: now,
                sec_bytes: out.len() as u16,
                retx,
                ..Default::default()
            };
            self.udp_send_plain(now, queue, (node, port), (peer.addr, peer.port), &out, meta);
        }
        self.dtls.out = out;
        let Some(a) = self.dtls.get(slot) else { return };
        let state = a.ep.state().clone();
        match state {
            DtlsState::Established => {
                if !a.done {
                    a.done = true;
                    let (client, flow, took) = (a.client, a.flow, now - a.opened);
                    if client && counted {
                        if let Some(c) = self.tcp.counters(flow) {
                            c.secure_handshakes += 1;
                            c.connects += 1;
                            c.connect_ns += took.as_nanos();
                        }
                    }
                }
                let Some(a) = self.dtls.get(slot) else { return };
                let held = std::mem::take(&mut a.held);
                for h in held {
                    self.dtls_seal(now, queue, slot, &h.data, h.meta);
                }
            }
            DtlsState::Failed(_) => {
                let (client, flow) = (a.client, a.flow);
                if client {
                    self.dtls_failure(now, flow);
                }
                self.dtls.remove(slot);
                return;
            }
            DtlsState::Closed => {
                self.dtls.remove(slot);
                return;
            }
            DtlsState::Idle | DtlsState::Handshaking => {}
        }
        let gen = self.dtls.gens[slot as usize];
        let Some(a) = self.dtls.get(slot) else { return };
        let want = a.ep.poll_timeout();
        if want.is_some() && a.armed != want {
            a.armed = want;
            if let Some(t) = want {
                let _ = queue.push(t.max(now), Ev::DtlsTimer { slot, gen });
            }
        }
    }

    /// An association's timer event.
    pub(crate) fn on_dtls_timer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        gen: u32,
    ) {
        if self.dtls.gens.get(slot as usize) != Some(&gen) {
            return;
        }
        let Some(a) = self.dtls.get(slot) else { return };
        if a.armed != Some(now) {
            return; // superseded by a later arming
        }
        a.armed = None;
        a.ep.handle_timeout(now);
        self.dtls_flush(now, queue, slot);
    }

    /// A client's handshake gave up or a write was refused: counted in the
    /// measured window, as `security_failures` of its flow.
    fn dtls_failure(&mut self, now: SimTime, flow: u32) {
        if self.counted(now) {
            if let Some(c) = self.tcp.counters(flow) {
                c.security_failures += 1;
            }
        }
    }

    /// Close every established client association of `node:port` that has
    /// nothing held (close_notify sent): `[protocols.dtls] session =
    /// "per_message"`.
    pub(crate) fn dtls_end_client_sessions(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        port: u16,
    ) {
        let lo = (node as u32, port, SockAddr::default());
        let slots: Vec<u32> = self
            .dtls
            .by_key
            .range(lo..)
            .take_while(|(k, _)| k.0 == node as u32 && k.1 == port)
            .map(|(_, &s)| s)
            .collect();
        let counted = self.counted(now);
        let mut out = std::mem::take(&mut self.dtls.out);
        for slot in slots {
            let Some(a) = self.dtls.get(slot) else {
                continue;
            };
            if !a.client || !a.ep.is_established() || !a.held.is_empty() {
                continue;
            }
            out.clear();
            a.ep.close(&mut out);
            let (peer, flow) = (a.peer, a.flow);
            if !out.is_empty() {
                let meta = PacketMeta {
                    flow,
                    kind: KIND_ALERT,
                    counted,
                    created: now,
                    sec_bytes: out.len() as u16,
                    ..Default::default()
                };
                self.udp_send_plain(now, queue, (node, port), (peer.addr, peer.port), &out, meta);
            }
            self.dtls.remove(slot);
        }
        self.dtls.out = out;
    }

    /// A crash loses the node's associations (volatile state); its peers
    /// notice when it starts over with a new ClientHello.
    pub(crate) fn dtls_crash(&mut self, node: usize) {
        let slots: Vec<u32> = self
            .dtls
            .by_key
            .iter()
            .filter(|(k, _)| k.0 == node as u32)
            .map(|(_, &s)| s)
            .collect();
        for s in slots {
            self.dtls.remove(s);
        }
    }
}
