//! Every node's TCP: the driver of `transport::tcp::Connection` inside the
//! simulator, and the socket and listener tables applications use.
//!
//! Driver (DESIGN.md convention 1, polling order documented on
//! [`Connection`]): after every input — a segment, a timer, an application
//! write or close — [`World::tcp_drive`] moves backlogged application bytes
//! into the send buffer, sends every segment `poll_transmit` yields as an
//! IPv4 packet, hands every `poll_event` to the socket's application, and
//! arms the connection's timer for `poll_timeout`. Sockets live in a slab; a
//! timer event carries the slot and its generation, so a reused slot never
//! sees its predecessor's timers. Segments are demultiplexed by (node, local
//! port, remote address, remote port) in an ordered map; a SYN for a
//! listening port creates a connection through [`Listener::accept`] and
//! hands it to the listener's application; anything else for no connection
//! is answered by an RST (RFC 9293 §3.10.7.1).
//!
//! Initial sequence numbers come from a stream derived from the run seed and
//! (node, n-th connection of that node), so adding a node changes no other
//! node's draws. The MSS is taken from the smallest MTU on the routed path
//! at connect time (what path MTU discovery would find).
//!
//! Stream annotations: with each write an application may say which of the
//! bytes are application payload (the bytes-by-layer split) and what kind
//! of packet starts there (`packets.csv` names a data segment after the
//! packet its first byte belongs to, e.g. `mqtt_publish`); TCP itself knows
//! no application protocol. Annotations of wholly acknowledged bytes are
//! dropped as the peer acknowledges them.

use crate::metrics::connections::{ConnInfo, ConnOutcome, ConnRecord};
use crate::net::addr::{Addr, SockAddr};
use crate::net::l3::L3Hdr;
use crate::net::packet::PacketMeta;
use crate::sim::rng::derive_seed;
use crate::sim::{EventQueue, Opt64, SimTime, Wakeup};
use crate::transport::tcp::{
    checksum_ok, fill_checksum, reset_for, Connection, Event, Listener, Segment, State, Stats,
    TcpFlags, Transmit,
};
use crate::world::apps::AppId;
use crate::world::{Ev, World};
use std::collections::{BTreeMap, VecDeque};

/// Connection id value for packets outside any TCP connection.
pub(crate) const NO_CONN: u32 = u32::MAX;

/// First ephemeral port (RFC 6335 dynamic range 49152–65535).
const EPHEMERAL_FIRST: u16 = 49152;

/// A socket: its slab slot and the slot's generation (a reused slot gets a
/// new id, so a stale id never reaches its successor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockId(pub u64);

impl SockId {
    fn new(slot: u32, gen: u32) -> SockId {
        SockId((u64::from(gen) << 32) | u64::from(slot))
    }
    pub(crate) fn slot(self) -> u32 {
        (self.0 & 0xFFFF_FFFF) as u32
    }
    fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// What happened on a socket, as its application is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The handshake completed (active open).
    Connected,
    /// Bytes arrived, in order.
    Data(&'a [u8]),
    /// The peer sent FIN; the host closed our side too (after the data).
    PeerClosed,
    /// The connection ended: reset by the peer, given up, or closed
    /// gracefully.
    Ended(ConnOutcome),
    /// The socket is gone (its slot is free); the id is dead from now on.
    Released,
}

/// Where a socket is in its life, as applications may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Still in the handshake (SYN sent, or closed before connecting).
    Connecting,
    Established,
    /// Closing or closed.
    Closing,
}

/// Who is told about a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attach {
    /// Its application hears its events.
    App,
    /// The application let go (closed or aborted it); the socket finishes
    /// on its own and anything it still receives is discarded.
    Detached,
    /// Its application's device stopped dead (`client_crash`): the socket
    /// neither sends nor answers until it is removed.
    Frozen,
}

/// Options an application gives a socket at connect or listen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockOpts {
    /// Every byte of the stream is application payload (a raw `tcp` flow),
    /// so no write needs annotating.
    pub payload_only: bool,
    /// Call `StreamApp::on_writable` while the socket is driven (saturating
    /// sources).
    pub want_writable: bool,
    /// The security overlay between TCP and the application (issue 21).
    pub security: super::Security,
}

/// Bound of one socket's application backlog (bytes the application wrote
/// that the send buffer has not taken): a source writing faster than the
/// connection drains (lossy TCP at microsecond intervals once held 7.86
/// GB) has its writes refused past it, whole, as a full socket buffer
/// would (`EAGAIN`).
pub(crate) const MAX_BACKLOG: usize = 16 << 20;

/// One connection and its application state.
#[derive(Debug)]
pub(crate) struct TcpSock {
    pub(crate) conn: Connection,
    pub(crate) node: u32,
    /// Its queued timer events (generation = the slot's).
    pub(crate) wake: Wakeup,
    pub(crate) rec: u32,
    flow: u32,
    app: AppId,
    tag: u32,
    pub(crate) attach: Attach,
    opts: SockOpts,
    /// The queues of bytes on their way; `None` while all are empty.
    q: Option<Box<SockQueues>>,
    timeouts_seen: u32,
    /// Initial sequence number (from the SYN or SYN-ACK sent).
    iss: u32,
    /// Application bytes written so far (stream offset of the next one).
    written: u64,
    /// The application closed: FIN once the backlog is in the send buffer.
    close_pending: bool,
    /// The latest application packet of a named kind: the stream offset
    /// where it starts, its kind for `packets.csv` and the flow its bytes
    /// belong to (`NO_FLOW`: the socket's). Earlier ones wait in
    /// [`SockQueues::older_kinds`] until the peer acknowledges them; this
    /// one also labels later bytes written without a kind.
    kind: Option<Kind>,
    /// The flow of the last segment with data received (`NO_FLOW`: none
    /// yet). A connection can carry several flows (an aggregating MQTT-SN
    /// gateway's): what it sends without a flow of its own (pure ACKs,
    /// acknowledgements and other control packets written with `NO_FLOW`)
    /// answers that data and is charged to its flow, not always to the
    /// socket's.
    rx_flow: u32,
    /// The security overlay, when the socket runs one.
    pub(crate) sec: Option<Box<super::secure::Sec>>,
}

impl TcpSock {
    fn new(
        conn: Connection,
        node: u32,
        flow: u32,
        (app, tag): (AppId, u32),
        opts: SockOpts,
    ) -> Self {
        TcpSock {
            conn,
            node,
            wake: Wakeup::default(),
            rec: 0,
            flow,
            app,
            tag,
            attach: Attach::App,
            opts,
            q: None,
            timeouts_seen: 0,
            iss: 0,
            written: 0,
            close_pending: false,
            kind: None,
            rx_flow: crate::net::packet::NO_FLOW,
            sec: None,
        }
    }
}

/// Where an application packet of a named kind starts in the stream, its
/// kind and its flow.
type Kind = (u64, &'static str, u32);

/// What a socket holds only while bytes are on their way. Boxed and given
/// back once empty: a million idle connections kept three `VecDeque`s
/// inline (96 bytes) and one packet kind on the heap (48 bytes with the
/// allocator's header) each; now 8 and 32 bytes (issue 22).
#[derive(Debug, Default)]
struct SockQueues {
    /// Application bytes the send buffer has not taken yet.
    backlog: VecDeque<u8>,
    /// Stream ranges holding application payload inside protocol framing,
    /// for the bytes-by-layer split; first transmissions consume them in
    /// order.
    app_ranges: VecDeque<(u64, u64)>,
    /// Packet kinds before [`TcpSock::kind`], oldest first.
    older_kinds: VecDeque<Kind>,
}

impl SockQueues {
    fn is_empty(&self) -> bool {
        self.backlog.is_empty() && self.app_ranges.is_empty() && self.older_kinds.is_empty()
    }
}

impl TcpSock {
    fn backlog_len(&self) -> usize {
        self.q.as_ref().map_or(0, |q| q.backlog.len())
    }

    fn queues(&mut self) -> &mut SockQueues {
        self.q.get_or_insert_with(Default::default)
    }

    fn clear_backlog(&mut self) {
        if let Some(q) = self.q.as_mut() {
            q.backlog.clear();
        }
    }

    /// A packet of a named kind starts at the stream offset `k.0`.
    fn push_kind(&mut self, k: Kind) {
        if let Some(prev) = self.kind.replace(k) {
            self.queues().older_kinds.push_back(prev);
        }
    }

    /// The kind of the packet stream offset `at` belongs to: the last one
    /// starting at or before it (the first one for an offset before all).
    fn kind_at(&self, at: u64) -> Option<Kind> {
        let last = self.kind?;
        let older = match &self.q {
            Some(q) if last.0 > at && !q.older_kinds.is_empty() => &q.older_kinds,
            _ => return Some(last),
        };
        let i = older.partition_point(|&(o, _, _)| o <= at);
        Some(older[i.saturating_sub(1)])
    }

    /// Forget kinds of packets wholly acknowledged (below `una`), keeping
    /// the one `una` belongs to.
    fn prune_kinds(&mut self, una: u64) {
        let (Some(last), Some(q)) = (self.kind, self.q.as_mut()) else {
            return;
        };
        let k = &mut q.older_kinds;
        while !k.is_empty() && k.get(1).map_or(last.0, |e| e.0) <= una {
            k.pop_front();
        }
    }
}

/// A listening port: its application, the tag it gave, the options of the
/// sockets it accepts.
#[derive(Debug, Clone)]
struct Listening {
    listener: Listener,
    app: AppId,
    tag: u32,
    opts: SockOpts,
}

/// Per-flow TCP counters: the `tcp_*` columns of runs.csv, which the host
/// stack owns (every protocol over TCP adds to them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TcpFlowCounters {
    pub(crate) retransmissions: u64,
    pub(crate) rto_expiries: u64,
    pub(crate) connection_failures: u64,
    pub(crate) malformed: u64,
    /// Connections and DTLS associations a security overlay gave up
    /// (malformed input, refused handshake, no answer).
    pub(crate) security_failures: u64,
    /// TLS handshakes and DTLS associations the flow's clients completed.
    pub(crate) secure_handshakes: u64,
    /// Connections (and DTLS associations) the flow's clients opened that
    /// became ready for application data, and the sum of the time that
    /// took (`connect_ms_mean`).
    pub(crate) connects: u64,
    pub(crate) connect_ns: u64,
}

pub(crate) use crate::scenario::columns::TCP_COLUMNS;

/// Every node's TCP state.
#[derive(Debug, Default)]
pub(crate) struct TcpLayer {
    /// Writes refused because a backlog would pass [`MAX_BACKLOG`].
    pub(crate) backlog_refused: u64,
    pub(crate) socks: Vec<Option<TcpSock>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    /// (node, local port, remote address, remote port) → slot.
    demux: BTreeMap<u128, u32>,
    listeners: BTreeMap<(u32, u16), Listening>,
    next_port: BTreeMap<u32, u16>,
    opens: BTreeMap<u32, u32>,
    /// Every endpoint's row but its counters, by record index.
    pub(crate) records: Vec<ConnInfo>,
    /// Counters of the endpoints that ended, by record index (an open one's
    /// stay in its connection until the run ends).
    ended_stats: Vec<(u32, Stats)>,
    pub(crate) flow_counters: Vec<TcpFlowCounters>,
    iss_master: u64,
    /// `[protocols.tcp]`'s settings, shared by every connection.
    config: Option<std::sync::Arc<crate::transport::tcp::Config>>,
    read_buf: Vec<u8>,
    pub(crate) sec_scratch: super::secure::SecScratch,
    /// TLS sessions clients hold (issue 21): resumable on their next
    /// connection to the same server.
    pub(crate) tls_sessions: std::collections::BTreeSet<super::secure::SessionKey>,
}

fn key(node: u32, lport: u16, raddr: Addr, rport: u16) -> u128 {
    (u128::from(node) << 64)
        | (u128::from(lport) << 48)
        | (u128::from(raddr.to_bits()) << 16)
        | u128::from(rport)
}

fn seg_kind(tx: &Transmit) -> &'static str {
    let f = tx.flags;
    if f.rst() {
        "tcp_rst"
    } else if f.syn() && f.ack() {
        "tcp_synack"
    } else if f.syn() {
        "tcp_syn"
    } else if f.fin() {
        "tcp_fin"
    } else if tx.payload_len > 0 {
        "tcp_data"
    } else {
        "tcp_ack"
    }
}

/// Bytes of [`start`, `end`) inside `ranges` (stream ranges in order),
/// dropping the ranges the segment finishes: first transmissions move
/// forward through the stream.
fn take_overlap(ranges: &mut VecDeque<(u64, u64)>, start: u64, end: u64) -> u64 {
    let mut n = 0;
    while let Some(&(a, b)) = ranges.front() {
        if a >= end {
            break;
        }
        n += b.min(end).saturating_sub(a.max(start));
        if b <= end {
            ranges.pop_front();
        } else {
            break;
        }
    }
    n
}

impl TcpLayer {
    pub(crate) fn new(seed: u64, flows: usize) -> Self {
        TcpLayer {
            backlog_refused: 0,
            iss_master: derive_seed(seed, crate::sim::rng::stable_id("tcp/iss")),
            read_buf: vec![0; 4096],
            flow_counters: vec![TcpFlowCounters::default(); flows],
            ..Default::default()
        }
    }

    /// The live socket an id names.
    pub(crate) fn sock(&self, id: SockId) -> Option<&TcpSock> {
        let s = self.socks.get(id.slot() as usize)?.as_ref()?;
        (s.wake.gen() == id.gen()).then_some(s)
    }

    pub(crate) fn sock_mut(&mut self, id: SockId) -> Option<&mut TcpSock> {
        let s = self.socks.get_mut(id.slot() as usize)?.as_mut()?;
        (s.wake.gen() == id.gen()).then_some(s)
    }

    fn id_of(&self, slot: u32) -> SockId {
        SockId::new(slot, self.gens[slot as usize])
    }

    pub(crate) fn counters(&mut self, flow: u32) -> Option<&mut TcpFlowCounters> {
        self.flow_counters.get_mut(flow as usize)
    }

    /// A socket's security overlay gave up (counted in the measured
    /// window only, as the other `tcp_*` counters).
    pub(crate) fn sec_failure(&mut self, id: SockId, counted: bool) {
        if !counted {
            return;
        }
        if let Some(flow) = self.sock(id).map(|s| s.flow) {
            if let Some(c) = self.counters(flow) {
                c.security_failures += 1;
            }
        }
    }
}

impl World<'_> {
    /// Listen on `node:port`; accepted connections go to `app` with
    /// `listen_tag` (`StreamApp::on_accept`).
    pub(crate) fn tcp_listen(
        &mut self,
        node: usize,
        port: u16,
        app: AppId,
        tag: u32,
        opts: SockOpts,
    ) {
        let mtu = self.tcp_mtu(self.node_mtu(node));
        let local = SockAddr::new(self.net.node_addr(node), port);
        let listener = Listener::new(self.tcp_config(), local, mtu);
        self.tcp.listeners.insert(
            (node as u32, port),
            Listening {
                listener,
                app,
                tag,
                opts,
            },
        );
    }

    /// Largest MTU among a node's links and its radio (a listener's
    /// advertised MSS).
    fn node_mtu(&self, node: usize) -> u16 {
        self.routing
            .adjacency(node)
            .iter()
            .filter(|a| !self.radio.is_edge(a.link as usize))
            .map(|a| self.links[a.link as usize].mtu)
            .chain(self.radio_node_mtu(node))
            .max()
            .unwrap_or(1500)
            .min(u32::from(u16::MAX)) as u16
    }

    /// Smallest MTU along the current route from `src` to `dst`.
    pub(crate) fn path_mtu(&self, src: usize, dst: usize) -> u16 {
        let mut mtu = u32::from(u16::MAX);
        let mut at = src;
        let mut hops = 0;
        while at != dst && hops < self.nodes.len() {
            let Some(h) = self.routing.next_hop(at, dst) else {
                break;
            };
            if self.radio.is_edge(h.link as usize) {
                let (m, to) = self.radio_edge_hop(h.link as usize, h.dir as usize);
                mtu = mtu.min(m);
                at = to;
            } else {
                let l = &self.links[h.link as usize];
                mtu = mtu.min(l.mtu);
                at = l.dirs[h.dir as usize].to as usize;
            }
            hops += 1;
        }
        if mtu == u32::from(u16::MAX) {
            mtu = u32::from(self.node_mtu(src));
        }
        mtu as u16
    }

    fn next_iss(&mut self, node: u32) -> u32 {
        let n = self.tcp.opens.entry(node).or_insert(0);
        *n += 1;
        derive_seed(self.tcp.iss_master, (u64::from(node) << 32) | u64::from(*n)) as u32
    }

    fn ephemeral_port(&mut self, node: u32, raddr: Addr, rport: u16) -> u16 {
        let span = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        for _ in 0..span {
            let p = self.tcp.next_port.entry(node).or_insert(EPHEMERAL_FIRST);
            let port = *p;
            *p = if *p == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                *p + 1
            };
            if !self.tcp.demux.contains_key(&key(node, port, raddr, rport)) {
                return port;
            }
        }
        EPHEMERAL_FIRST
    }

    /// The run's TCP settings, one copy for every connection.
    fn tcp_config(&mut self) -> std::sync::Arc<crate::transport::tcp::Config> {
        let sc = self.sc;
        std::sync::Arc::clone(
            self.tcp
                .config
                .get_or_insert_with(|| std::sync::Arc::new(sc.protocols.tcp.config)),
        )
    }

    fn insert_sock(&mut self, sock: TcpSock) -> u32 {
        match self.tcp.free.pop() {
            Some(slot) => {
                self.tcp.socks[slot as usize] = Some(TcpSock {
                    wake: Wakeup::with_gen(self.tcp.gens[slot as usize]),
                    ..sock
                });
                slot
            }
            None => {
                crate::sim::shed::push_frugal(&mut self.tcp.socks, Some(sock));
                crate::sim::shed::push_frugal(&mut self.tcp.gens, 0);
                (self.tcp.socks.len() - 1) as u32
            }
        }
    }

    fn new_record(&mut self, now: SimTime, sock: &TcpSock, client: bool, peer: u32) -> u32 {
        let idx = self.tcp.records.len() as u32;
        crate::sim::shed::push_frugal(
            &mut self.tcp.records,
            ConnInfo {
                conn: idx,
                flow: sock.flow,
                client,
                node: sock.node,
                peer,
                local_port: sock.conn.local().port,
                remote_port: sock.conn.remote().port,
                opened: now,
                established: Opt64::NONE,
                ended: Opt64::NONE,
                outcome: ConnOutcome::Open,
                max_cwnd: 0,
                srtt_ns: Opt64::NONE,
                peer_rec: None,
                secured: Opt64::NONE,
            },
        );
        idx
    }

    /// Active open from `node` to `dst:port` for `flow`, owned by `app`
    /// with `tag`; `None` when the connection ended at once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tcp_connect(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        (dst, port): (usize, u16),
        flow: u32,
        owner: (AppId, u32),
        opts: SockOpts,
    ) -> Option<SockId> {
        let raddr = self.net.node_addr(dst);
        let lport = self.ephemeral_port(node as u32, raddr, port);
        let iss = self.next_iss(node as u32);
        let mtu = self.tcp_mtu(self.path_mtu(node, dst));
        let mut conn = Connection::connect(
            self.tcp_config(),
            SockAddr::new(self.net.node_addr(node), lport),
            SockAddr::new(raddr, port),
            mtu,
            iss,
        );
        if self.sc.protocols.tcp.mutant_deliver_out_of_order {
            conn.mutant_deliver_out_of_order();
        }
        let mut s = TcpSock::new(conn, node as u32, flow, owner, opts);
        let resumed = self.tls_resumes(node, (raddr, port));
        s.sec = self.new_sec(opts.security, (true, node, lport), (raddr, port), resumed);
        s.rec = self.new_record(now, &s, true, dst as u32);
        let slot = self.insert_sock(s);
        self.tcp
            .demux
            .insert(key(node as u32, lport, raddr, port), slot);
        let id = self.tcp.id_of(slot);
        self.tcp_drive_slot(now, queue, slot);
        self.tcp.sock(id).map(|_| id)
    }

    /// A TCP segment arrived at `node`.
    pub(crate) fn tcp_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        hdr: &L3Hdr,
        seg: &[u8],
        meta: PacketMeta,
    ) {
        if seg.len() < 4 {
            self.tcp_malformed(meta);
            return;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        // checksum offload: the network layer, which knows the address
        // family, verifies the transport checksum
        let sum_ok = checksum_ok(seg, hdr.pseudo);
        let segment = Segment::new(hdr.src, hdr.dst, seg);
        let k = key(node as u32, dport, hdr.src, sport);
        if let Some(&slot) = self.tcp.demux.get(&k) {
            let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
                return;
            };
            if s.attach == Attach::Frozen {
                return; // a dead device hears nothing
            }
            let doff = usize::from(seg.get(12).copied().unwrap_or(0) >> 4) * 4;
            if sum_ok && seg.len() > doff && meta.flow != crate::net::packet::NO_FLOW {
                s.rx_flow = meta.flow;
            }
            if !sum_ok || s.conn.handle_input(now, segment).is_err() {
                self.tcp_malformed(meta);
            }
            self.tcp_drive_slot(now, queue, slot);
            return;
        }
        if !sum_ok {
            self.tcp_malformed(meta);
            return;
        }
        if let Some(l) = self.tcp.listeners.get(&(node as u32, dport)).cloned() {
            let iss = self.next_iss(node as u32);
            match l.listener.accept(now, segment, iss) {
                Ok(conn) => {
                    self.tcp_accepted(now, queue, node, conn, l, meta.flow);
                    return;
                }
                Err(crate::transport::tcp::AcceptError::Malformed(_)) => {
                    self.tcp_malformed(meta);
                    return;
                }
                Err(_) => {}
            }
        }
        // No connection: RFC 9293 §3.10.7.1 (CLOSED), answer with an RST.
        let mut out = [0u8; 60];
        if let Some(n) = reset_for(seg, &mut out) {
            fill_checksum(&mut out[..n], self.net.pseudo(hdr.dst, hdr.src));
            let m = PacketMeta {
                flow: meta.flow,
                kind: "tcp_rst",
                counted: self.counted(now),
                created: now,
                l4_header: n as u8,
                conn: NO_CONN,
                ..Default::default()
            };
            self.send_tcp_packet(now, queue, node, hdr.src, &out[..n], m);
        } else if TcpFlags(seg.get(13).copied().unwrap_or(0)).rst() {
            // an RST for no connection is dropped silently
        } else {
            self.tcp_malformed(meta);
        }
    }

    fn tcp_malformed(&mut self, meta: PacketMeta) {
        if meta.counted {
            if let Some(c) = self.tcp.counters(meta.flow) {
                c.malformed += 1;
            }
        }
    }

    fn tcp_accepted(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        mut conn: Connection,
        listening: Listening,
        flow: u32,
    ) {
        if self.sc.protocols.tcp.mutant_deliver_out_of_order {
            conn.mutant_deliver_out_of_order();
        }
        let remote = conn.remote();
        let local_port = conn.local().port;
        let peer = self.net.addr_node(remote.addr).unwrap_or(usize::MAX) as u32;
        let mut s = TcpSock::new(
            conn,
            node as u32,
            flow,
            (listening.app, listening.tag),
            listening.opts,
        );
        // pair with the active opener's record when it is simulated
        let peer_key = key(peer, remote.port, self.net.node_addr(node), local_port);
        // a TLS server resumes when its client offers a session
        let resumed = self
            .tcp
            .demux
            .get(&peer_key)
            .and_then(|&ps| self.tcp.socks[ps as usize].as_ref())
            .and_then(|p| p.sec.as_ref())
            .is_some_and(|sec| sec.resumed());
        s.sec = self.new_sec(
            listening.opts.security,
            (false, node, remote.port),
            (remote.addr, remote.port),
            resumed,
        );
        s.rec = self.new_record(now, &s, false, peer);
        if let Some(&ps) = self.tcp.demux.get(&peer_key) {
            if let Some(p) = self.tcp.socks[ps as usize].as_ref() {
                let (me, them) = (s.rec, p.rec);
                self.tcp.records[me as usize].conn = them;
                self.tcp.records[me as usize].peer_rec = Some(them);
                self.tcp.records[them as usize].peer_rec = Some(me);
            }
        }
        let slot = self.insert_sock(s);
        self.tcp
            .demux
            .insert(key(node as u32, local_port, remote.addr, remote.port), slot);
        let id = self.tcp.id_of(slot);
        let tag = self.stream_accept(now, queue, listening.app, id, listening.tag);
        if let Some(s) = self.tcp.sock_mut(id) {
            s.tag = tag;
        }
        self.tcp_drive_slot(now, queue, slot);
    }

    /// The connection of record `rec` can carry application bytes now (TCP
    /// established, or its overlay's handshake done): a client's counts
    /// toward `connect_ms_mean` (and `secure_handshakes`) when it opened
    /// in the measured window.
    pub(crate) fn tcp_ready(&mut self, now: SimTime, rec: usize, secure: bool) {
        let r = &self.tcp.records[rec];
        if !r.client || !self.counted(r.opened) {
            return;
        }
        let (flow, took) = (r.flow, now - r.opened);
        if let Some(c) = self.tcp.counters(flow) {
            c.connects += 1;
            c.connect_ns += took.as_nanos();
            c.secure_handshakes += u64::from(secure);
        }
    }

    pub(crate) fn counted(&self, now: SimTime) -> bool {
        now >= SimTime::ZERO + self.sc.warmup
    }

    /// Wrap a TCP segment into IP and send it from `node`.
    fn send_tcp_packet(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        node: usize,
        dst: Addr,
        seg: &[u8],
        meta: PacketMeta,
    ) {
        let id = self.pool.alloc(meta);
        let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
        data.clear();
        data.resize(self.net.header_len(), 0);
        data.extend_from_slice(seg);
        let ok = self.emit_tcp_ip(node, dst, &mut data);
        self.pool.get_mut(id).data = data;
        if !ok {
            self.pool.free(id);
            return;
        }
        self.nodes[node].stats.ip_sent += 1;
        self.host_output(now, queue, node, id);
    }

    /// Write the IP header in front of the TCP segment that already fills
    /// `data[header_len..]`; false when the packet cannot be encoded.
    fn emit_tcp_ip(&mut self, node: usize, dst: Addr, data: &mut [u8]) -> bool {
        let opts = self.send_opts(node);
        let src = self.net.node_addr(node);
        self.net.emit_tcp_header(data, src, dst, opts).is_ok()
    }

    /// The MTU a TCP connection is given: IPv6's header is 20 bytes longer
    /// than the 20 bytes `mss_for_mtu` takes off for IPv4, so the MSS is
    /// 20 bytes smaller (RFC 8200 §5, RFC 9293 §3.7.1).
    fn tcp_mtu(&self, mtu: u16) -> u16 {
        mtu.saturating_sub((self.net.header_len() - crate::net::ip::HEADER_LEN) as u16)
    }

    /// Poll a socket in the documented order until it has nothing to say.
    pub(crate) fn tcp_drive(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, sock: SockId) {
        if self.tcp.sock(sock).is_some() {
            self.tcp_drive_slot(now, queue, sock.slot());
        }
    }

    fn tcp_drive_slot(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        if self.tcp.socks[slot as usize]
            .as_ref()
            .is_none_or(|s| s.attach == Attach::Frozen)
        {
            return;
        }
        loop {
            self.tcp_writable(now, queue, slot);
            self.tcp_flush_backlog(slot);
            self.tcp_transmit_all(now, queue, slot);
            let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
                return;
            };
            let Some(ev) = s.conn.poll_event() else {
                break;
            };
            self.tcp_event(now, queue, slot, ev);
        }
        self.tcp_after_poll(now, queue, slot);
    }

    /// A saturating source's turn to fill its send buffer.
    fn tcp_writable(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        let Some(s) = self.tcp.socks[slot as usize].as_ref() else {
            return;
        };
        if !s.opts.want_writable || s.attach != Attach::App || s.conn.state() != State::Established
        {
            return;
        }
        let (app, tag) = (s.app, s.tag);
        let id = self.tcp.id_of(slot);
        self.stream_writable(now, queue, app, id, tag);
    }

    fn tcp_flush_backlog(&mut self, slot: u32) {
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        if let Some(q) = s.q.as_mut() {
            while !q.backlog.is_empty() && s.conn.send_capacity() > 0 {
                let (a, _) = q.backlog.as_slices();
                let n = s.conn.write(a);
                if n == 0 {
                    break;
                }
                q.backlog.drain(..n);
            }
        }
        if s.close_pending && s.backlog_len() == 0 {
            s.close_pending = false;
            s.conn.close();
        }
    }

    fn tcp_transmit_all(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        let counted = self.counted(now);
        loop {
            let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
                return;
            };
            let node = s.node as usize;
            let flow = s.flow;
            let rec = s.rec;
            let id = self.pool.alloc(PacketMeta::default());
            let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
            data.clear();
            data.resize(self.net.header_len(), 0);
            let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
                return;
            };
            let Some(t) = s.conn.poll_transmit(now, &mut data) else {
                self.pool.get_mut(id).data = data;
                self.pool.free(id);
                break;
            };
            let cwnd = s.conn.cwnd();
            if t.flags.syn() {
                s.iss = t.seq;
            }
            // first transmissions move forward through the stream
            let first = !t.is_retransmission && t.payload_len > 0;
            let start = u64::from(t.seq.wrapping_sub(s.iss).wrapping_sub(1));
            let end = start + t.payload_len as u64;
            let app_bytes = if s.opts.payload_only {
                t.payload_len as u64
            } else if first {
                s.q.as_mut()
                    .map_or(0, |q| take_overlap(&mut q.app_ranges, start, end))
            } else {
                0
            };
            let sec_bytes = match s.sec.as_mut() {
                Some(sec) if first => take_overlap(&mut sec.ranges, start, end),
                _ => 0,
            };
            let mut kind = seg_kind(&t);
            let mut flow = flow;
            if t.payload_len == 0
                && !t.flags.syn()
                && !t.flags.fin()
                && !t.flags.rst()
                && s.rx_flow != crate::net::packet::NO_FLOW
            {
                flow = s.rx_flow; // a pure ACK answers the data last received
            }
            // the application packet the segment's first byte belongs to
            // (also when the segment carries the FIN: its bytes are that
            // packet's, as tshark labels it)
            let labelled = if t.payload_len > 0 && !t.flags.syn() && !t.flags.rst() {
                s.kind_at(start)
            } else {
                None
            };
            if let Some((_, k, f)) = labelled {
                kind = k;
                if f != crate::net::packet::NO_FLOW {
                    flow = f;
                }
            }
            let r = &mut self.tcp.records[rec as usize];
            r.max_cwnd = r.max_cwnd.max(cwnd);
            let dst = t.dst.addr;
            let hl = self.net.header_len();
            let pseudo = self.net.pseudo(self.net.node_addr(node), dst);
            fill_checksum(&mut data[hl..], pseudo);
            let ok = self.emit_tcp_ip(node, dst, &mut data);
            let meta = PacketMeta {
                flow,
                kind,
                counted,
                created: now,
                sec_bytes: sec_bytes as u16,
                proto_bytes: (t.payload_len as u64 - app_bytes - sec_bytes) as u16,
                app_bytes: app_bytes as u16,
                retx: t.is_retransmission,
                l4_header: (t.len - t.payload_len) as u8,
                conn: rec,
            };
            let p = self.pool.get_mut(id);
            p.data = data;
            p.meta = meta;
            if !ok {
                self.pool.free(id);
                continue;
            }
            if t.is_retransmission && counted {
                if let Some(fs) = self.flow_stats(flow) {
                    fs.retransmissions += 1;
                }
                if let Some(c) = self.tcp.counters(flow) {
                    c.retransmissions += 1;
                }
            }
            self.nodes[node].stats.ip_sent += 1;
            self.host_output(now, queue, node, id);
        }
    }

    /// One event of a socket, for the record and the application.
    fn tcp_event(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32, ev: Event) {
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        let rec = s.rec as usize;
        match ev {
            Event::Connected => {
                self.tcp.records[rec].established = now.into();
                if s.sec.is_none() {
                    self.tcp_ready(now, rec, false);
                }
                let Some(s) = self.tcp.socks[slot as usize].as_ref() else {
                    return;
                };
                if s.sec.is_some() {
                    // the application hears Connected once the overlay is ready
                    let id = self.tcp.id_of(slot);
                    self.sec_connected(now, queue, id);
                } else {
                    self.tcp_notify(now, queue, slot, StreamEvent::Connected);
                }
            }
            Event::DataReadable => self.tcp_read(now, queue, slot),
            Event::PeerClosed => {
                s.conn.close();
                self.tcp_notify(now, queue, slot, StreamEvent::PeerClosed);
            }
            Event::Reset => self.tcp_ended(now, queue, slot, ConnOutcome::Reset),
            Event::ConnectionLost { reason } => {
                self.tcp_ended(now, queue, slot, ConnOutcome::Lost(reason))
            }
            Event::Closed => self.tcp_ended(now, queue, slot, ConnOutcome::Closed),
        }
    }

    /// Tell the socket's application, if it still listens.
    fn tcp_notify(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        ev: StreamEvent<'_>,
    ) {
        let Some(s) = self.tcp.socks[slot as usize].as_ref() else {
            return;
        };
        if s.attach != Attach::App {
            return;
        }
        let (app, tag) = (s.app, s.tag);
        let id = self.tcp.id_of(slot);
        self.stream_event(now, queue, app, id, tag, ev);
    }

    /// As [`Self::tcp_notify`], for a socket id (a stale id is ignored).
    pub(crate) fn tcp_notify_id(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        id: SockId,
        ev: StreamEvent<'_>,
    ) {
        if self.tcp.sock(id).is_some() {
            self.tcp_notify(now, queue, id.slot(), ev);
        }
    }

    /// Read what arrived and hand it to the socket's application (through
    /// its security overlay, when it runs one).
    fn tcp_read(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        let mut buf = std::mem::take(&mut self.tcp.read_buf);
        buf.resize(4096, 0);
        while let Some(s) = self.tcp.socks[slot as usize].as_mut() {
            let n = s.conn.read(&mut buf);
            if n == 0 {
                break;
            }
            let secured = s.sec.is_some();
            let id = self.tcp.id_of(slot);
            if secured {
                self.sec_input(now, queue, id, &buf[..n]);
            } else {
                self.tcp_deliver(now, queue, id, &buf[..n]);
            }
        }
        self.tcp.read_buf = buf;
    }

    /// Application bytes arrived on a socket: to the monitors and the
    /// application.
    pub(crate) fn tcp_deliver(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        id: SockId,
        data: &[u8],
    ) {
        let Some(s) = self.tcp.sock(id) else {
            return;
        };
        if let Some(m) = self.monitors.as_mut() {
            let (rec, node, flow) = (s.rec, s.node, s.flow);
            if let Some(peer) = self.tcp.records[rec as usize].peer_rec {
                let flow = (flow != crate::net::packet::NO_FLOW).then_some(flow);
                m.tcp_read(now, node, peer, flow, data);
            }
        }
        // a detached or frozen socket's application is gone: discarded
        self.tcp_notify(now, queue, id.slot(), StreamEvent::Data(data));
    }

    /// Queue application bytes on a socket: into the send buffer at once as
    /// far as it has room, the rest in the application backlog (whose
    /// waiting counts in latency). `payload` is the range of `data` that is
    /// application payload (the bytes-by-layer split), `kind` names the
    /// packet the bytes are (`packets.csv`). The caller drives the socket
    /// afterwards.
    ///
    /// A write that would take the backlog past [`MAX_BACKLOG`] is refused
    /// whole (the stream's framing stays intact), counted in its flow's
    /// `drops_queue` (after warmup) and `false` is returned.
    pub(crate) fn tcp_write(
        &mut self,
        now: SimTime,
        sock: SockId,
        data: &[u8],
        payload: Option<(usize, usize)>,
        kind: Option<(&'static str, u32)>,
    ) -> bool {
        let Some(s) = self.tcp.sock(sock) else {
            return false;
        };
        let rec = s.rec;
        let ok = if s.sec.is_some() {
            self.sec_write(now, sock, data, payload, kind)
        } else {
            let payload = payload.filter(|(a, b)| b > a);
            self.tcp_put(now, sock, data, payload.as_slice(), &[], kind)
        };
        if ok {
            if let Some(m) = self.monitors.as_mut() {
                m.tcp_written(rec, data);
            }
        }
        ok
    }

    /// Put bytes into a socket's stream as [`Self::tcp_write`] says, with
    /// their annotations: `payload` and `overlay` are ranges of `data`
    /// holding application payload and security-overlay bytes.
    pub(crate) fn tcp_put(
        &mut self,
        now: SimTime,
        sock: SockId,
        data: &[u8],
        payload: &[(usize, usize)],
        overlay: &[(usize, usize)],
        kind: Option<(&'static str, u32)>,
    ) -> bool {
        let Some(s) = self.tcp.sock_mut(sock) else {
            return false;
        };
        let backlog = s.backlog_len();
        let direct = if backlog == 0 && s.attach != Attach::Frozen {
            (s.conn.send_capacity() as usize).min(data.len())
        } else {
            0
        };
        if backlog + (data.len() - direct) > MAX_BACKLOG {
            let flow = match kind {
                Some((_, f)) if f != crate::net::packet::NO_FLOW => f,
                _ => s.flow,
            };
            self.tcp.backlog_refused += 1;
            if now >= SimTime::ZERO + self.sc.warmup {
                if let Some(st) = self.flow_stats(flow) {
                    st.drops_queue += 1;
                }
            }
            return false;
        }
        let at = s.written;
        if let Some((k, flow)) = kind {
            let flow = if flow == crate::net::packet::NO_FLOW {
                s.rx_flow
            } else {
                flow
            };
            s.push_kind((at, k, flow));
        }
        if !payload.is_empty() {
            let q = s.queues();
            for &(a, b) in payload {
                q.app_ranges.push_back((at + a as u64, at + b as u64));
            }
        }
        if let Some(sec) = s.sec.as_mut() {
            for &(a, b) in overlay {
                sec.ranges.push_back((at + a as u64, at + b as u64));
            }
        }
        s.written += data.len() as u64;
        let n = if backlog == 0 && s.attach != Attach::Frozen {
            s.conn.write(data)
        } else {
            0
        };
        if n < data.len() {
            s.queues().backlog.extend(data[n..].iter().copied());
        }
        true
    }

    /// Bytes the socket would take into its send buffer now without waiting
    /// in the backlog.
    pub(crate) fn tcp_send_room(&self, sock: SockId) -> usize {
        self.tcp.sock(sock).map_or(0, |s| {
            if s.backlog_len() == 0 {
                s.conn.send_capacity() as usize
            } else {
                0
            }
        })
    }

    /// Where a socket is in its life (`None`: gone).
    pub(crate) fn tcp_state(&self, sock: SockId) -> Option<StreamState> {
        self.tcp.sock(sock).map(|s| match s.conn.state() {
            State::SynSent | State::Closed | State::Listen | State::SynReceived => {
                StreamState::Connecting
            }
            State::Established => StreamState::Established,
            _ => StreamState::Closing,
        })
    }

    /// The application closes its end gracefully (FIN after the data) and
    /// hears nothing more of the socket.
    pub(crate) fn tcp_close(&mut self, now: SimTime, sock: SockId) {
        if self.tcp.sock(sock).is_some_and(|s| s.sec.is_some()) {
            self.sec_close(now, sock);
        }
        if let Some(s) = self.tcp.sock_mut(sock) {
            s.attach = Attach::Detached;
            s.close_pending = true;
        }
    }

    /// The application aborts its connection (RST) and hears nothing more.
    pub(crate) fn tcp_abort(&mut self, sock: SockId) {
        if let Some(s) = self.tcp.sock_mut(sock) {
            s.attach = Attach::Detached;
            s.clear_backlog();
            s.conn.abort();
        }
    }

    /// The application lets go of a socket without closing it (its
    /// transport is gone or going).
    pub(crate) fn tcp_detach(&mut self, sock: SockId) {
        if let Some(s) = self.tcp.sock_mut(sock) {
            if s.attach == Attach::App {
                s.attach = Attach::Detached;
            }
        }
    }

    /// The device under this socket stopped dead: it sends nothing more and
    /// answers nothing until [`Self::tcp_remove`].
    pub(crate) fn tcp_freeze(&mut self, sock: SockId) {
        if let Some(s) = self.tcp.sock_mut(sock) {
            s.attach = Attach::Frozen;
            s.clear_backlog();
        }
    }

    /// Forget a socket without a word to the peer (after a crash).
    pub(crate) fn tcp_remove(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, sock: SockId) {
        if self.tcp.sock(sock).is_some() {
            self.tcp_release(now, queue, sock.slot(), ConnOutcome::NodeCrash);
        }
    }

    /// A connection ended: record it, forget the application bytes, tell
    /// the application.
    fn tcp_ended(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        outcome: ConnOutcome,
    ) {
        let counted = self.counted(now);
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        let flow = s.flow;
        let rec = s.rec as usize;
        s.clear_backlog();
        if self.tcp.records[rec].end(now, outcome) && outcome.is_failure() && counted {
            if let Some(c) = self.tcp.counters(flow) {
                c.connection_failures += 1;
            }
        }
        self.tcp_notify(now, queue, slot, StreamEvent::Ended(outcome));
    }

    /// Count new timeouts, re-arm the timer, release a closed socket.
    fn tcp_after_poll(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, slot: u32) {
        let counted = self.counted(now);
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        if s.q.is_some() {
            // forget kinds of packets wholly acknowledged
            let given = s.written - s.backlog_len() as u64;
            let una = given.saturating_sub(u64::from(s.conn.send_buffered()));
            s.prune_kinds(una);
            // an idle connection keeps no queue storage (issue 22)
            if s.q.as_ref().is_some_and(|q| q.is_empty()) {
                s.q = None;
            } else if let Some(q) = s.q.as_mut() {
                crate::sim::shed::shed_deque(&mut q.backlog);
                crate::sim::shed::shed_deque(&mut q.app_ranges);
                crate::sim::shed::shed_deque(&mut q.older_kinds);
            }
        }
        let t = s.conn.stats().timeouts;
        let new_timeouts = t - s.timeouts_seen;
        s.timeouts_seen = t;
        let flow = s.flow;
        if s.conn.is_closed() {
            self.tcp_release(now, queue, slot, ConnOutcome::Closed);
        } else if let Some(d) = s.conn.poll_timeout() {
            if let Some(gen) = s.wake.arm(d) {
                let _ = queue.push(d.max(now), Ev::TcpTimer { slot, gen });
            }
        }
        if new_timeouts > 0 && counted {
            if let Some(c) = self.tcp.counters(flow) {
                c.rto_expiries += u64::from(new_timeouts);
            }
        }
    }

    /// Drop a socket: final counters into its record (ended with `outcome`
    /// unless it already ended), demux entry removed, application told.
    fn tcp_release(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        outcome: ConnOutcome,
    ) {
        let id = self.tcp.id_of(slot);
        let Some(s) = self.tcp.socks[slot as usize].take() else {
            return;
        };
        self.tcp.gens[slot as usize] = self.tcp.gens[slot as usize].wrapping_add(1);
        self.tcp.free.push(slot);
        if let Some(m) = self.monitors.as_mut() {
            m.tcp_forget(s.rec);
            m.mqtt_forget(s.node, id.0);
        }
        let r = &mut self.tcp.records[s.rec as usize];
        r.srtt_ns = Opt64::new(s.conn.rtt().srtt().map(|d| d.as_nanos()));
        r.end(now, outcome);
        self.tcp.ended_stats.push((s.rec, *s.conn.stats()));
        let (l, rm) = (s.conn.local(), s.conn.remote());
        self.tcp
            .demux
            .remove(&key(s.node, l.port, rm.addr, rm.port));
        if s.attach == Attach::App {
            self.stream_event(now, queue, s.app, id, s.tag, StreamEvent::Released);
        }
    }

    /// A socket's timer event.
    pub(crate) fn on_tcp_timer(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        slot: u32,
        gen: u32,
    ) {
        let Some(s) = self
            .tcp
            .socks
            .get_mut(slot as usize)
            .and_then(|s| s.as_mut())
        else {
            return;
        };
        if !s.wake.fire(gen, now) {
            return; // stale: superseded by an earlier deadline or a new socket
        }
        if s.attach == Attach::Frozen {
            return;
        }
        if s.conn.poll_timeout().is_some_and(|d| d <= now) {
            s.conn.handle_timeout(now);
        }
        self.tcp_drive_slot(now, queue, slot);
    }

    /// A node crashed: its connections vanish without a word to the peers.
    pub(crate) fn tcp_crash(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, node: usize) {
        let lo = key(node as u32, 0, Addr::UNSPECIFIED, 0);
        let hi = key(node as u32, u16::MAX, Addr::BROADCAST, u16::MAX);
        let slots: Vec<u32> = self.tcp.demux.range(lo..=hi).map(|(_, &s)| s).collect();
        for slot in slots {
            self.tcp_release(now, queue, slot, ConnOutcome::NodeCrash);
        }
    }

    /// End of run: the rows of `connections.csv`, with the counters of
    /// connections still open. The sockets are freed before the rows are
    /// built, so the run's memory does not peak here.
    pub(crate) fn tcp_finish(&mut self) -> Vec<ConnRecord> {
        // The socket table shrinks as its counters are copied out (a large
        // table is one mapping: shrinking it gives the tail back at once),
        // so the copies never sit beside the whole table.
        const STEP: usize = 1 << 12;
        let mut socks = std::mem::take(&mut self.tcp.socks);
        let mut shrunk_at = socks.len();
        while let Some(slot) = socks.pop() {
            if let Some(s) = slot {
                self.tcp.records[s.rec as usize].srtt_ns =
                    Opt64::new(s.conn.rtt().srtt().map(|d| d.as_nanos()));
                self.tcp.ended_stats.push((s.rec, *s.conn.stats()));
            }
            if socks.len() + STEP <= shrunk_at {
                socks.shrink_to_fit();
                shrunk_at = socks.len();
            }
        }
        drop(socks);
        let mut stats = vec![Stats::default(); self.tcp.records.len()];
        for (rec, st) in std::mem::take(&mut self.tcp.ended_stats) {
            stats[rec as usize] = st;
        }
        std::mem::take(&mut self.tcp.records)
            .into_iter()
            .zip(stats)
            .map(|(info, stats)| ConnRecord { info, stats })
            .collect()
    }
}
