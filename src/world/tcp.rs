//! The TCP layer of every node: the driver of `transport::tcp::Connection`
//! inside the simulator, and the `protocol = "tcp"` flows that use it.
//!
//! Driver (DESIGN.md convention 1, polling order documented on
//! [`Connection`]): after every input — a segment, a timer, an application
//! write or close — [`World::tcp_drive`] moves buffered application bytes
//! into the send buffer, sends every segment `poll_transmit` yields as an
//! IPv4 packet, hands every `poll_event` to the socket's application, and
//! arms the connection's timer for `poll_timeout`. Sockets live in a slab;
//! a timer event carries the slot and its generation, so a reused slot never
//! sees its predecessor's timers. Segments are demultiplexed by
//! (node, local port, remote address, remote port) in an ordered map; a SYN
//! for a listening port creates a connection through [`Listener::accept`];
//! anything else for no connection is answered by an RST (RFC 9293 §3.10.7.1).
//!
//! Initial sequence numbers come from a stream derived from the run seed and
//! (node, n-th connection of that node), so adding a node changes no other
//! node's draws. The MSS is taken from the smallest MTU on the routed path
//! at connect time (what path MTU discovery would find).
//!
//! `protocol = "tcp"` flows (docs/protocols.md): each publisher keeps one
//! connection per intended receiver to `[protocols.tcp] port`, opened at its
//! first message and reopened at the next message after a failure. Messages
//! are written back to back into the stream (each is the application payload
//! with its 6-byte header, whose flow index gives the message length); bytes
//! the send buffer cannot take yet wait in an application backlog, and that
//! waiting counts in latency. A message counts as delivered when the
//! receiver's application has read all of its bytes; messages still buffered
//! when a connection fails are lost with it.

use super::{Ev, World};
use crate::metrics::connections::{ConnOutcome, ConnRecord};
use crate::net::ip::{self, Ipv4Repr};
use crate::net::packet::PacketMeta;
use crate::scenario::model::Protocol;
use crate::sim::rng::derive_seed;
use crate::sim::{EventQueue, SimTime, Wakeup};
use crate::transport::tcp::{reset_for, Connection, Event, Listener, Stats, TcpFlags, Transmit};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Connection id value for packets outside any TCP connection.
pub const NO_CONN: u32 = u32::MAX;

/// First ephemeral port (RFC 6335 dynamic range 49152–65535).
const EPHEMERAL_FIRST: u16 = 49152;

/// What the application on a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SockApp {
    /// Publisher `publisher` of a `tcp` flow, towards node `receiver`.
    FlowSender { receiver: u32, publisher: u32 },
    /// Receiver end of `tcp` flows (accepted on `[protocols.tcp] port`).
    FlowReceiver,
    /// The transport of MQTT client `client` (index in the MQTT layer).
    MqttClient { client: u32 },
    /// A connection accepted by the MQTT broker on node `node`.
    MqttBroker { node: u32 },
    /// The application let go (closed it); the socket finishes on its own
    /// and anything it still receives is discarded.
    Detached,
    /// Its application's device stopped dead (`client_crash`): the socket
    /// neither sends nor answers until it is removed.
    Frozen,
}

/// What a listening port hands its accepted connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenApp {
    FlowReceiver,
    MqttBroker,
}

/// One connection and its application state.
#[derive(Debug)]
pub(crate) struct TcpSock {
    pub(crate) conn: Connection,
    node: u32,
    /// Its queued timer events (generation = the slot's).
    wake: Wakeup,
    rec: u32,
    flow: u32,
    app: SockApp,
    /// Application bytes the send buffer has not taken yet.
    backlog: VecDeque<u8>,
    /// Received bytes of a message not yet complete.
    rx: Vec<u8>,
    timeouts_seen: u32,
    /// Initial sequence number (from the SYN or SYN-ACK sent).
    iss: u32,
    /// Application bytes written so far (stream offset of the next one).
    written: u64,
    /// Stream ranges holding application payload inside protocol framing
    /// (MQTT PUBLISH payloads), for the bytes-by-layer split; first
    /// transmissions consume them in order.
    app_ranges: VecDeque<(u64, u64)>,
    /// The application closed: FIN once the backlog is in the send buffer.
    close_pending: bool,
    /// Stream offsets where application packets of a named kind start
    /// (MQTT), for `packets.csv`; pruned as the peer acknowledges.
    kinds: VecDeque<(u64, &'static str)>,
}

impl TcpSock {
    /// Its `connections.csv` record.
    pub(crate) fn rec(&self) -> u32 {
        self.rec
    }
    fn new(conn: Connection, node: u32, flow: u32, app: SockApp) -> Self {
        TcpSock {
            conn,
            node,
            wake: Wakeup::default(),
            rec: 0,
            flow,
            app,
            backlog: VecDeque::new(),
            rx: Vec::new(),
            timeouts_seen: 0,
            iss: 0,
            written: 0,
            app_ranges: VecDeque::new(),
            close_pending: false,
            kinds: VecDeque::new(),
        }
    }
    /// Raw `tcp` flows carry nothing but application payload.
    fn all_app(&self) -> bool {
        matches!(self.app, SockApp::FlowSender { .. } | SockApp::FlowReceiver)
    }
}

/// Every node's TCP state.
#[derive(Debug, Default)]
pub(crate) struct TcpLayer {
    pub(crate) socks: Vec<Option<TcpSock>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    /// (node, local port, remote address, remote port) → slot.
    demux: BTreeMap<u128, u32>,
    listeners: BTreeMap<(u32, u16), (Listener, ListenApp)>,
    /// (flow, publisher node, receiver node) → slot of its sender socket.
    senders: BTreeMap<(u32, u32, u32), u32>,
    next_port: BTreeMap<u32, u16>,
    opens: BTreeMap<u32, u32>,
    pub(crate) records: Vec<ConnRecord>,
    iss_master: u64,
    read_buf: Vec<u8>,
}

fn key(node: u32, lport: u16, raddr: Ipv4Addr, rport: u16) -> u128 {
    (u128::from(node) << 64)
        | (u128::from(lport) << 48)
        | (u128::from(u32::from(raddr)) << 16)
        | u128::from(rport)
}

fn seg_kind(t: &Transmit) -> &'static str {
    let f = t.flags;
    if f.rst() {
        "tcp_rst"
    } else if f.syn() && f.ack() {
        "tcp_synack"
    } else if f.syn() {
        "tcp_syn"
    } else if f.fin() {
        "tcp_fin"
    } else if t.payload_len > 0 {
        "tcp_data"
    } else {
        "tcp_ack"
    }
}

impl TcpLayer {
    pub(crate) fn new(seed: u64) -> Self {
        TcpLayer {
            iss_master: derive_seed(seed, crate::sim::rng::stable_id("tcp/iss")),
            read_buf: vec![0; 4096],
            ..Default::default()
        }
    }
}

impl World<'_> {
    /// Listen for `tcp` flows on every receiver of one (called at start).
    pub(crate) fn tcp_setup(&mut self) {
        let port = self.sc.protocols.tcp.port;
        for f in self.sc.flows.iter().filter(|f| f.protocol == Protocol::Tcp) {
            for &r in &f.receivers {
                self.tcp_listen(r, port, ListenApp::FlowReceiver);
            }
        }
    }

    pub(crate) fn tcp_listen(&mut self, node: usize, port: u16, app: ListenApp) {
        let mtu = self.node_mtu(node);
        let local = SocketAddrV4::new(ip::node_addr(node), port);
        let l = Listener::new(self.sc.protocols.tcp.config, local, mtu);
        self.tcp.listeners.insert((node as u32, port), (l, app));
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
    fn path_mtu(&self, src: usize, dst: usize) -> u16 {
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

    fn ephemeral_port(&mut self, node: u32, raddr: Ipv4Addr, rport: u16) -> u16 {
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

    fn insert_sock(&mut self, s: TcpSock) -> u32 {
        match self.tcp.free.pop() {
            Some(slot) => {
                self.tcp.socks[slot as usize] = Some(TcpSock {
                    wake: Wakeup::with_gen(self.tcp.gens[slot as usize]),
                    ..s
                });
                slot
            }
            None => {
                self.tcp.socks.push(Some(s));
                self.tcp.gens.push(0);
                (self.tcp.socks.len() - 1) as u32
            }
        }
    }

    fn new_record(&mut self, now: SimTime, s: &TcpSock, client: bool, peer: u32) -> u32 {
        let idx = self.tcp.records.len() as u32;
        self.tcp.records.push(ConnRecord {
            conn: idx,
            flow: s.flow,
            client,
            node: s.node,
            peer,
            local_port: s.conn.local().port(),
            remote_port: s.conn.remote().port(),
            opened: now,
            established: None,
            ended: None,
            outcome: ConnOutcome::Open,
            stats: Stats::default(),
            max_cwnd: 0,
            srtt_ns: None,
            peer_rec: None,
        });
        idx
    }

    /// Active open from `node` to `dst:port`; returns the slot.
    pub(crate) fn tcp_connect(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        (dst, port): (usize, u16),
        flow: u32,
        app: SockApp,
    ) -> u32 {
        let raddr = ip::node_addr(dst);
        let lport = self.ephemeral_port(node as u32, raddr, port);
        let iss = self.next_iss(node as u32);
        let mtu = self.path_mtu(node, dst);
        let conn = Connection::connect(
            self.sc.protocols.tcp.config,
            SocketAddrV4::new(ip::node_addr(node), lport),
            SocketAddrV4::new(raddr, port),
            mtu,
            iss,
        );
        let mut s = TcpSock::new(conn, node as u32, flow, app);
        s.rec = self.new_record(now, &s, true, dst as u32);
        let slot = self.insert_sock(s);
        self.tcp
            .demux
            .insert(key(node as u32, lport, raddr, port), slot);
        self.tcp_drive(now, q, slot);
        slot
    }

    /// A TCP segment arrived at `node`.
    pub(crate) fn tcp_input(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        hdr: &Ipv4Repr,
        seg: &[u8],
        meta: PacketMeta,
    ) {
        if seg.len() < 4 {
            self.tcp_malformed(meta);
            return;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let k = key(node as u32, dport, hdr.src, sport);
        if let Some(&slot) = self.tcp.demux.get(&k) {
            let s = self.tcp.socks[slot as usize].as_mut().expect("demux slot");
            if s.app == SockApp::Frozen {
                return; // a dead device hears nothing
            }
            if s.conn.handle_segment(now, hdr.src, hdr.dst, seg).is_err() {
                self.tcp_malformed(meta);
            }
            self.tcp_drive(now, q, slot);
            return;
        }
        if let Some(&(listener, app)) = self.tcp.listeners.get(&(node as u32, dport)) {
            let iss = self.next_iss(node as u32);
            match listener.accept(now, hdr.src, hdr.dst, seg, iss) {
                Ok(conn) => {
                    self.tcp_accepted(now, q, node, conn, app, meta.flow);
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
        if let Some(n) = reset_for(seg, hdr.src, hdr.dst, &mut out) {
            let m = PacketMeta {
                kind: "tcp_rst",
                counted: self.counted(now),
                created: now,
                l4_header: n as u8,
                conn: NO_CONN,
                ..PacketMeta {
                    flow: meta.flow,
                    ..Default::default()
                }
            };
            self.send_tcp_packet(now, q, node, hdr.src, &out[..n], m);
        } else if TcpFlags(seg.get(13).copied().unwrap_or(0)).rst() {
            // an RST for no connection is dropped silently
        } else {
            self.tcp_malformed(meta);
        }
    }

    fn tcp_malformed(&mut self, meta: PacketMeta) {
        if meta.counted {
            if let Some(s) = self.flow_stats(meta.flow) {
                s.tcp_malformed += 1;
            }
        }
    }

    fn tcp_accepted(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        conn: Connection,
        app: ListenApp,
        flow: u32,
    ) {
        let remote = conn.remote();
        let local_port = conn.local().port();
        let peer = ip::addr_node(*remote.ip()).unwrap_or(usize::MAX) as u32;
        let app = match app {
            ListenApp::FlowReceiver => SockApp::FlowReceiver,
            ListenApp::MqttBroker => SockApp::MqttBroker { node: node as u32 },
        };
        let mut s = TcpSock::new(conn, node as u32, flow, app);
        s.rec = self.new_record(now, &s, false, peer);
        // pair with the active opener's record when it is simulated
        let peer_key = key(peer, remote.port(), ip::node_addr(node), local_port);
        if let Some(&ps) = self.tcp.demux.get(&peer_key) {
            if let Some(p) = self.tcp.socks[ps as usize].as_ref() {
                let (me, them) = (s.rec, p.rec);
                self.tcp.records[me as usize].conn = them;
                self.tcp.records[me as usize].peer_rec = Some(them);
                self.tcp.records[them as usize].peer_rec = Some(me);
            }
        }
        let slot = self.insert_sock(s);
        self.tcp.demux.insert(
            key(node as u32, local_port, *remote.ip(), remote.port()),
            slot,
        );
        if let SockApp::MqttBroker { node } = app {
            let conn = self.tcp_conn_id(slot);
            self.mqtt_broker_accept(now, node, conn);
        }
        self.tcp_drive(now, q, slot);
    }

    pub(crate) fn counted(&self, now: SimTime) -> bool {
        now >= SimTime::ZERO + self.sc.warmup
    }

    /// Wrap a TCP segment into IPv4 and send it from `node`.
    fn send_tcp_packet(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        node: usize,
        dst: Ipv4Addr,
        seg: &[u8],
        meta: PacketMeta,
    ) {
        let id = self.pool.alloc(meta);
        let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
        data.clear();
        data.resize(ip::HEADER_LEN, 0);
        data.extend_from_slice(seg);
        let ok = self.emit_tcp_ip(node, dst, &mut data);
        self.pool.get_mut(id).data = data;
        if !ok {
            self.pool.free(id);
            return;
        }
        self.nodes[node].stats.ip_sent += 1;
        self.ip_output(now, q, node, id);
    }

    /// Write the IPv4 header in front of the TCP segment that already fills
    /// `data[20..]`; false when the packet cannot be encoded.
    fn emit_tcp_ip(&mut self, node: usize, dst: Ipv4Addr, data: &mut [u8]) -> bool {
        let ident = self.nodes[node].ip_ident;
        self.nodes[node].ip_ident = ident.wrapping_add(1);
        let repr = Ipv4Repr {
            src: ip::node_addr(node),
            dst,
            protocol: ip::PROTO_TCP,
            ttl: self.sc.protocols.ip.ttl,
            ident,
            dont_fragment: self.sc.protocols.ip.dont_fragment,
            more_fragments: false,
            frag_offset: 0,
            payload_len: data
                .len()
                .saturating_sub(ip::HEADER_LEN)
                .min(usize::from(u16::MAX)) as u16,
        };
        data.len() <= ip::MAX_TOTAL_LEN && repr.emit(data).is_ok()
    }

    /// Poll a socket in the documented order until it has nothing to say.
    pub(crate) fn tcp_drive(&mut self, now: SimTime, q: &mut EventQueue<Ev>, slot: u32) {
        if self.tcp.socks[slot as usize]
            .as_ref()
            .is_none_or(|s| s.app == SockApp::Frozen)
        {
            return;
        }
        loop {
            self.tcp_bulk_fill(now, slot);
            self.tcp_flush_backlog(slot);
            self.tcp_transmit_all(now, q, slot);
            let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
                return;
            };
            let Some(ev) = s.conn.poll_event() else {
                break;
            };
            self.tcp_event(now, slot, ev);
        }
        self.tcp_after_poll(now, q, slot);
    }

    fn tcp_flush_backlog(&mut self, slot: u32) {
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        while !s.backlog.is_empty() && s.conn.send_capacity() > 0 {
            let (a, _) = s.backlog.as_slices();
            let n = s.conn.write(a);
            if n == 0 {
                break;
            }
            s.backlog.drain(..n);
        }
        if s.close_pending && s.backlog.is_empty() {
            s.close_pending = false;
            s.conn.close();
        }
    }

    fn tcp_transmit_all(&mut self, now: SimTime, q: &mut EventQueue<Ev>, slot: u32) {
        let counted = self.counted(now);
        loop {
            let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
            let node = s.node as usize;
            let flow = s.flow;
            let rec = s.rec;
            let mss = usize::from(s.conn.smss());
            let id = self.pool.alloc(PacketMeta::default());
            let mut data = std::mem::take(&mut self.pool.get_mut(id).data);
            data.clear();
            data.resize(ip::HEADER_LEN + 60 + mss, 0);
            let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
            let Some(t) = s.conn.poll_transmit(now, &mut data[ip::HEADER_LEN..]) else {
                self.pool.get_mut(id).data = data;
                self.pool.free(id);
                break;
            };
            let cwnd = s.conn.cwnd();
            if t.flags.syn() {
                s.iss = t.seq;
            }
            let app_bytes = if s.all_app() {
                t.payload_len as u64
            } else if t.is_retransmission || t.payload_len == 0 {
                0
            } else {
                // first transmissions move forward through the stream
                let start = u64::from(t.seq.wrapping_sub(s.iss).wrapping_sub(1));
                let end = start + t.payload_len as u64;
                let mut app = 0;
                while let Some(&(a, b)) = s.app_ranges.front() {
                    if a >= end {
                        break;
                    }
                    app += b.min(end).saturating_sub(a.max(start));
                    if b <= end {
                        s.app_ranges.pop_front();
                    } else {
                        break;
                    }
                }
                app
            };
            let mut kind = seg_kind(&t);
            if kind == "tcp_data" && !s.kinds.is_empty() {
                // the application packet the segment's first byte belongs to
                let start = u64::from(t.seq.wrapping_sub(s.iss).wrapping_sub(1));
                let i = s.kinds.partition_point(|&(o, _)| o <= start);
                kind = s.kinds[i.saturating_sub(1)].1;
            }
            let r = &mut self.tcp.records[rec as usize];
            r.max_cwnd = r.max_cwnd.max(cwnd);
            data.truncate(ip::HEADER_LEN + t.len);
            let ok = self.emit_tcp_ip(node, *t.dst.ip(), &mut data);
            let meta = PacketMeta {
                flow,
                kind,
                counted,
                created: now,
                proto_bytes: (t.payload_len as u64 - app_bytes) as u16,
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
                    fs.tcp_retransmissions += 1;
                }
            }
            self.nodes[node].stats.ip_sent += 1;
            self.ip_output(now, q, node, id);
        }
    }

    /// One application event of a socket.
    fn tcp_event(&mut self, now: SimTime, slot: u32, ev: Event) {
        let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
        let rec = s.rec as usize;
        let app = s.app;
        match ev {
            Event::Connected => {
                self.tcp.records[rec].established = Some(now);
                if let SockApp::MqttClient { client } = app {
                    self.mqtt_transport_up(now, client);
                }
            }
            Event::DataReadable => self.tcp_read(now, slot),
            Event::PeerClosed => {
                s.conn.close();
                self.tcp_app_gone(now, slot);
            }
            Event::Reset => {
                self.tcp_ended(now, slot, ConnOutcome::Reset);
                self.tcp_app_gone(now, slot);
            }
            Event::ConnectionLost { reason } => {
                self.tcp_ended(now, slot, ConnOutcome::Lost(reason));
                self.tcp_app_gone(now, slot);
            }
            Event::Closed => {
                self.tcp_ended(now, slot, ConnOutcome::Closed);
                self.tcp_app_gone(now, slot);
            }
        }
    }

    /// The transport under an MQTT application ended or is ending: tell it
    /// once and detach it.
    fn tcp_app_gone(&mut self, now: SimTime, slot: u32) {
        let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
        let app = s.app;
        match app {
            SockApp::MqttClient { client } => {
                s.app = SockApp::Detached;
                self.mqtt_transport_down(now, client, slot);
            }
            SockApp::MqttBroker { node } => {
                s.app = SockApp::Detached;
                let conn = self.tcp_conn_id(slot);
                self.mqtt_broker_conn_lost(now, node, conn);
            }
            _ => {}
        }
    }

    /// Read what arrived and hand it to the socket's application.
    fn tcp_read(&mut self, now: SimTime, slot: u32) {
        let mut buf = std::mem::take(&mut self.tcp.read_buf);
        buf.resize(4096, 0);
        loop {
            let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
            let n = s.conn.read(&mut buf);
            if n == 0 {
                break;
            }
            match s.app {
                SockApp::FlowReceiver => s.rx.extend_from_slice(&buf[..n]),
                SockApp::MqttClient { client } => self.mqtt_client_bytes(now, client, &buf[..n]),
                SockApp::MqttBroker { node } => {
                    let conn = self.tcp_conn_id(slot);
                    self.mqtt_broker_bytes(now, node, conn, &buf[..n]);
                }
                // the sender side of a flow expects no data; a detached
                // socket's application is gone
                SockApp::FlowSender { .. } | SockApp::Detached | SockApp::Frozen => {}
            }
        }
        self.tcp.read_buf = buf;
        let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
        if s.app != SockApp::FlowReceiver {
            return;
        }
        let node = s.node;
        let mut rx = std::mem::take(&mut s.rx);
        let mut at = 0;
        let mut bad = false;
        while let Some((flow, msg)) = crate::app::workload::parse_payload(&rx[at..]) {
            let len = match self.sc.flows.get(flow as usize) {
                Some(f) if f.protocol == Protocol::Tcp => {
                    (f.payload_bytes as usize).max(crate::app::workload::APP_HEADER_LEN)
                }
                _ => {
                    bad = true;
                    break;
                }
            };
            if rx.len() - at < len {
                break;
            }
            self.recorder.on_receive(now, flow as usize, msg, node);
            at += len;
        }
        rx.drain(..at);
        let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
        s.rx = rx;
        if bad {
            // framing lost: the stream cannot be resynchronised
            s.conn.abort();
            s.rx.clear();
        }
    }

    /// The broker-side name of an accepted connection: slot and generation.
    pub(crate) fn tcp_conn_id(&self, slot: u32) -> crate::proto::mqtt::ConnId {
        crate::proto::mqtt::ConnId(
            (u64::from(self.tcp.gens[slot as usize]) << 32) | u64::from(slot),
        )
    }

    /// The live socket a connection id names.
    pub(crate) fn tcp_slot_of(&self, conn: crate::proto::mqtt::ConnId) -> Option<u32> {
        let slot = (conn.0 & 0xFFFF_FFFF) as u32;
        let gen = (conn.0 >> 32) as u32;
        let live = self.tcp.socks.get(slot as usize)?.as_ref()?;
        (live.wake.gen() == gen).then_some(slot)
    }

    /// Queue application bytes on a socket; `app` is the range of `data`
    /// that is application payload (for the bytes-by-layer split), `kind`
    /// names the packet they are (`packets.csv`). The caller drives the
    /// socket afterwards.
    pub(crate) fn tcp_app_write(
        &mut self,
        slot: u32,
        data: &[u8],
        app: Option<(usize, usize)>,
        kind: Option<&'static str>,
    ) {
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        if let Some(k) = kind {
            s.kinds.push_back((s.written, k));
        }
        if let Some((a, b)) = app {
            if b > a {
                s.app_ranges
                    .push_back((s.written + a as u64, s.written + b as u64));
            }
        }
        s.written += data.len() as u64;
        s.backlog.extend(data.iter().copied());
    }

    /// The application closes its end gracefully (FIN after the data).
    pub(crate) fn tcp_close(&mut self, slot: u32) {
        if let Some(s) = self.tcp.socks[slot as usize].as_mut() {
            s.app = SockApp::Detached;
            s.close_pending = true;
        }
    }

    /// The application aborts its connection (RST).
    pub(crate) fn tcp_abort(&mut self, slot: u32) {
        if let Some(s) = self.tcp.socks[slot as usize].as_mut() {
            s.app = SockApp::Detached;
            s.backlog.clear();
            s.conn.abort();
        }
    }

    /// The device under this socket stopped dead: it sends nothing more and
    /// answers nothing until [`Self::tcp_remove`].
    pub(crate) fn tcp_freeze(&mut self, slot: u32) {
        if let Some(s) = self.tcp.socks[slot as usize].as_mut() {
            s.app = SockApp::Frozen;
            s.backlog.clear();
        }
    }

    /// Forget a socket without a word to the peer (after a crash).
    pub(crate) fn tcp_remove(&mut self, now: SimTime, slot: u32) {
        self.tcp_release(now, slot, ConnOutcome::NodeCrash);
    }

    /// A connection ended: record it and forget the application state.
    fn tcp_ended(&mut self, now: SimTime, slot: u32, outcome: ConnOutcome) {
        let counted = self.counted(now);
        let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
        let flow = s.flow;
        let rec = s.rec as usize;
        s.backlog.clear();
        s.rx.clear();
        if self.tcp.records[rec].end(now, outcome) && outcome.is_failure() && counted {
            if let Some(fs) = self.flow_stats(flow) {
                fs.tcp_connection_failures += 1;
            }
        }
    }

    /// Count new timeouts, re-arm the timer, release a closed socket.
    fn tcp_after_poll(&mut self, now: SimTime, q: &mut EventQueue<Ev>, slot: u32) {
        let counted = self.counted(now);
        let Some(s) = self.tcp.socks[slot as usize].as_mut() else {
            return;
        };
        if s.kinds.len() > 1 {
            // forget kinds of packets wholly acknowledged
            let given = s.written - s.backlog.len() as u64;
            let una = given.saturating_sub(u64::from(s.conn.send_buffered()));
            while s.kinds.len() > 1 && s.kinds[1].0 <= una {
                s.kinds.pop_front();
            }
        }
        let t = s.conn.stats().timeouts;
        let new_timeouts = t - s.timeouts_seen;
        s.timeouts_seen = t;
        let flow = s.flow;
        if s.conn.is_closed() {
            self.tcp_release(now, slot, ConnOutcome::Closed);
        } else if let Some(d) = s.conn.poll_timeout() {
            if let Some(gen) = s.wake.arm(d) {
                let _ = q.push(d.max(now), Ev::TcpTimer { slot, gen });
            }
        }
        if new_timeouts > 0 && counted {
            if let Some(fs) = self.flow_stats(flow) {
                fs.tcp_rto_expiries += u64::from(new_timeouts);
            }
        }
    }

    /// Drop a socket: final counters into its record (ended with `outcome`
    /// unless it already ended), demux entry removed.
    fn tcp_release(&mut self, now: SimTime, slot: u32, outcome: ConnOutcome) {
        let Some(s) = self.tcp.socks[slot as usize].take() else {
            return;
        };
        self.tcp.gens[slot as usize] = self.tcp.gens[slot as usize].wrapping_add(1);
        self.tcp.free.push(slot);
        let r = &mut self.tcp.records[s.rec as usize];
        r.stats = *s.conn.stats();
        r.srtt_ns = s.conn.rtt().srtt().map(|d| d.as_nanos());
        r.end(now, outcome);
        let (l, rm) = (s.conn.local(), s.conn.remote());
        self.tcp
            .demux
            .remove(&key(s.node, l.port(), *rm.ip(), rm.port()));
        if let SockApp::FlowSender { receiver, .. } = s.app {
            let k = (s.flow, s.node, receiver);
            if self.tcp.senders.get(&k) == Some(&slot) {
                self.tcp.senders.remove(&k);
            }
        }
    }

    /// A socket's timer event.
    pub(crate) fn on_tcp_timer(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
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
        if s.app == SockApp::Frozen {
            return;
        }
        if s.conn.poll_timeout().is_some_and(|d| d <= now) {
            s.conn.handle_timeout(now);
        }
        self.tcp_drive(now, q, slot);
    }

    /// A node crashed: its connections vanish without a word to the peers.
    pub(crate) fn tcp_crash(&mut self, now: SimTime, node: usize) {
        let lo = key(node as u32, 0, Ipv4Addr::UNSPECIFIED, 0);
        let hi = key(node as u32, u16::MAX, Ipv4Addr::BROADCAST, u16::MAX);
        let slots: Vec<u32> = self.tcp.demux.range(lo..=hi).map(|(_, &s)| s).collect();
        for slot in slots {
            self.tcp_remove(now, slot);
        }
    }

    /// Publish one message of a `tcp` flow: append it to the stream towards
    /// each intended receiver, connecting first when needed.
    pub(crate) fn tcp_publish(
        &mut self,
        now: SimTime,
        q: &mut EventQueue<Ev>,
        p: usize,
        receivers: &[u32],
    ) {
        let port = self.sc.protocols.tcp.port;
        let fi = self.publishers[p].flow as usize;
        let node = self.publishers[p].node as usize;
        for &r in receivers {
            if r as usize == node {
                if let Some((_, msg)) = crate::app::workload::parse_payload(&self.payload) {
                    self.recorder.on_receive(now, fi, msg, r);
                }
                continue;
            }
            let k = (fi as u32, node as u32, r);
            let slot = match self.tcp.senders.get(&k) {
                Some(&s) => s,
                None => {
                    let s = self.tcp_connect(
                        now,
                        q,
                        node,
                        (r as usize, port),
                        fi as u32,
                        SockApp::FlowSender {
                            receiver: r,
                            publisher: p as u32,
                        },
                    );
                    if self.tcp.socks[s as usize].is_none() {
                        continue; // could not even start (closed at once)
                    }
                    self.tcp.senders.insert(k, s);
                    s
                }
            };
            let payload = std::mem::take(&mut self.payload);
            if let Some(s) = self.tcp.socks[slot as usize].as_mut() {
                s.backlog.extend(payload.iter().copied());
            }
            self.payload = payload;
            self.tcp_drive(now, q, slot);
        }
    }

    /// Start a bulk publisher: connect to its receiver; messages follow as
    /// the connection takes them ([`Self::tcp_bulk_fill`]). A bulk source
    /// stops when its connection fails (as iperf does).
    pub(crate) fn tcp_bulk_open(&mut self, now: SimTime, q: &mut EventQueue<Ev>, p: usize) {
        let fi = self.publishers[p].flow;
        let node = self.publishers[p].node;
        let mut receivers = std::mem::take(&mut self.receivers);
        self.recorder.intended(
            fi as usize,
            self.publishers[p].index as usize,
            node,
            &mut receivers,
        );
        let r = receivers.first().copied();
        self.receivers = receivers;
        let Some(r) = r else {
            return;
        };
        if r == node || self.tcp.senders.contains_key(&(fi, node, r)) {
            return;
        }
        let port = self.sc.protocols.tcp.port;
        let app = SockApp::FlowSender {
            receiver: r,
            publisher: p as u32,
        };
        let s = self.tcp_connect(now, q, node as usize, (r as usize, port), fi, app);
        if self.tcp.socks[s as usize].is_some() {
            self.tcp.senders.insert((fi, node, r), s);
        }
    }

    /// A bulk publisher's socket: write whole new messages while the send
    /// buffer has room, until the publishing window (or `count`) ends.
    fn tcp_bulk_fill(&mut self, now: SimTime, slot: u32) {
        let Some(s) = self.tcp.socks[slot as usize].as_ref() else {
            return;
        };
        let SockApp::FlowSender { publisher: p, .. } = s.app else {
            return;
        };
        let p = p as usize;
        let flow = &self.sc.flows[s.flow as usize];
        if flow.timing != crate::scenario::model::Timing::Bulk
            || s.conn.state() != crate::transport::tcp::State::Established
        {
            return;
        }
        let len = (flow.payload_bytes as usize).max(crate::app::workload::APP_HEADER_LEN);
        let end = SimTime::ZERO + self.sc.duration;
        let mut wrote = false;
        loop {
            let s = self.tcp.socks[slot as usize].as_ref().expect("live slot");
            if !s.backlog.is_empty()
                || (s.conn.send_capacity() as usize) < len
                || now >= end
                || flow.count.is_some_and(|c| self.publishers[p].sent >= c)
            {
                break;
            }
            let mut receivers = std::mem::take(&mut self.receivers);
            self.compose(now, p, &mut receivers);
            self.receivers = receivers;
            self.publishers[p].sent += 1;
            let s = self.tcp.socks[slot as usize].as_mut().expect("live slot");
            let n = s.conn.write(&self.payload);
            s.backlog.extend(self.payload[n..].iter().copied());
            wrote = true;
        }
        if wrote {
            self.recorder.flush(now, false);
        }
    }

    /// End of run: snapshot the counters of connections still open.
    pub(crate) fn tcp_finish(&mut self) {
        for s in self.tcp.socks.iter().flatten() {
            let r = &mut self.tcp.records[s.rec as usize];
            r.stats = *s.conn.stats();
            r.srtt_ns = s.conn.rtt().srtt().map(|d| d.as_nanos());
        }
    }
}
