//! `qossim broker`: the simulator's sans-IO MQTT broker
//! ([`crate::proto::mqtt::Broker`]) served to real clients on a TCP port,
//! until SIGINT or SIGTERM.
//!
//! Every resource a peer can make the broker hold is bounded, with the
//! defaults below (stated in `--help` and docs/mqtt.md "`qossim broker`"):
//! connections ([`DEFAULT_MAX_CONNECTIONS`]; one more is accepted and
//! closed at once), the partial packet buffered per connection (at most
//! `--max-packet-size`, 64 KiB before CONNECT: a larger fixed header
//! closes the connection at once), the bytes waiting to be written to one
//! connection (`--max-backlog`; a client that does not read is closed),
//! and the time a connection may stay silent before CONNECT
//! (`--connect-timeout`). Malformed input closes that connection only.
//!
//! `--log` decodes each connection's packets with the 3.1.1 codec, or with
//! the 5.0 codec when its CONNECT has protocol level 5.

use super::CliError;
use crate::proto::mqtt::codec;
use crate::proto::mqtt::events::{BrokerTransmit, ConnId};
use crate::proto::mqtt::packet::{Packet, SubAckReturn};
use crate::proto::mqtt::socket::{BrokerDriver, BrokerTap, ServerStats, SocketError};
use crate::proto::mqtt::v5::{self, Packet5};
use crate::proto::mqtt::{Broker, BrokerConfig, BrokerStats};
use crate::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `--connect-timeout` (as [`BrokerConfig::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: &str = "10s";
/// Smallest `--max-packet-size`: a CONNECT with a one-character client id
/// and no will is 15 bytes; below 64 no useful client fits.
pub const MIN_PACKET_SIZE: usize = 64;

/// Errors of `qossim broker` that are not bad arguments.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listener (bind) or the serving loop failed (exit 3).
    #[error("{0}")]
    Socket(#[from] SocketError),
    /// The `--log` file cannot be created (exit 3).
    #[error("--log {path}: cannot create it: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Arguments of `qossim broker`.
#[derive(Debug, Clone)]
pub struct BrokerRequest {
    /// TCP address served (`HOST:PORT`, IPv4).
    pub listen: String,
    /// Take the broker's options from this scenario's `[protocols.mqtt]`.
    pub scenario: Option<PathBuf>,
    /// `--set PATH=VALUE` overrides applied to the scenario.
    pub overrides: Vec<String>,
    pub max_connections: usize,
    /// Largest packet accepted, bytes (`None`: the scenario's, i.e.
    /// [`BrokerConfig`]'s default, 1 MiB).
    pub max_packet_size: Option<usize>,
    /// `None`: 10 s.
    pub connect_timeout: Option<String>,
    /// Bytes that may wait to be written to one connection.
    pub max_backlog: usize,
    /// `-` for stdout, else a file (created or truncated).
    pub log: Option<String>,
}

impl Default for BrokerRequest {
    fn default() -> Self {
        BrokerRequest {
            listen: "127.0.0.1:1883".into(),
            scenario: None,
            overrides: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_packet_size: None,
            connect_timeout: None,
            max_backlog: crate::proto::mqtt::socket::DEFAULT_MAX_OUT_BYTES,
            log: None,
        }
    }
}

/// What `qossim broker` serves: the address and the broker configuration
/// (the scenario's `[protocols.mqtt]`, then the flags).
#[derive(Debug, Clone)]
pub struct BrokerPlan {
    pub listen: SocketAddrV4,
    pub config: BrokerConfig,
    pub max_connections: usize,
    pub max_backlog: usize,
}

/// Check `req` and build the broker's configuration: bad values are
/// [`CliError::BadArgument`] (exit 2) naming the option and what it takes;
/// a scenario that does not load is [`CliError::Scenario`] (file, line,
/// field).
pub fn broker_plan(req: &BrokerRequest) -> Result<BrokerPlan, CliError> {
    let listen = super::listen_v4(&req.listen, "qossim broker", "127.0.0.1:1883")?;
    let mut config = match &req.scenario {
        Some(path) => {
            let sc = crate::scenario::load_file(path, &req.overrides)?;
            crate::world::apps::broker_config(&sc.protocols.mqtt)
        }
        None if !req.overrides.is_empty() => {
            return Err(CliError::BadArgument(
                "--set needs --scenario (it overrides a scenario field)".into(),
            ))
        }
        None => BrokerConfig {
            delivery_events: false,
            ..BrokerConfig::default()
        },
    };
    if req.max_connections == 0 {
        return Err(CliError::BadArgument(
            "--max-connections must be at least 1".into(),
        ));
    }
    if let Some(n) = req.max_packet_size {
        if !(MIN_PACKET_SIZE..=codec::MAX_PACKET_SIZE).contains(&n) {
            return Err(CliError::BadArgument(format!(
                "--max-packet-size {n}: expected bytes in {MIN_PACKET_SIZE}..={} (the MQTT maximum)",
                codec::MAX_PACKET_SIZE
            )));
        }
        config.max_packet_size = n;
    }
    let timeout = req
        .connect_timeout
        .as_deref()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let t = crate::scenario::units::parse_duration(timeout)
        .map_err(|e| CliError::BadArgument(format!("--connect-timeout: {e}")))?;
    if t == SimDuration::ZERO {
        return Err(CliError::BadArgument(format!(
            "--connect-timeout {timeout:?}: must be more than 0 (a client needs time to send CONNECT)"
        )));
    }
    config.connect_timeout = t;
    if req.max_backlog < MIN_PACKET_SIZE {
        return Err(CliError::BadArgument(format!(
            "--max-backlog {}: expected at least {MIN_PACKET_SIZE} bytes",
            req.max_backlog
        )));
    }
    Ok(BrokerPlan {
        listen,
        config,
        max_connections: req.max_connections,
        max_backlog: req.max_backlog,
    })
}

/// `qossim broker`: serve until SIGINT or SIGTERM, then close every
/// connection and print the counters.
pub fn broker(req: &BrokerRequest) -> Result<(), CliError> {
    let plan = broker_plan(req)?;
    let tap = match req.log.as_deref() {
        None => None,
        Some(target) => Some(PacketLog::open(target, plan.config.max_packet_size)?),
    };
    super::install_stop_signals().map_err(|e| BrokerError::Socket(SocketError::Io(e)))?;
    let broker = Broker::new(plan.config.clone(), SimTime::ZERO);
    let mut d = BrokerDriver::bind(plan.listen, broker).map_err(BrokerError::from)?;
    d.set_max_connections(plan.max_connections);
    d.set_max_out_bytes(plan.max_backlog);
    if let Some(tap) = tap {
        d.set_tap(Box::new(tap));
    }
    println!(
        "qossim broker: MQTT 3.1.1 and 5.0 on tcp {}; at most {} connections, packets up to {} B, \
         CONNECT within {}, write backlog up to {} B per connection; Ctrl-C stops",
        d.local_addr(),
        plan.max_connections,
        plan.config.max_packet_size,
        plan.config.connect_timeout,
        plan.max_backlog
    );
    let started = Instant::now();
    while !super::STOP.load(std::sync::atomic::Ordering::SeqCst) {
        d.step(Duration::from_millis(20))
            .map_err(BrokerError::from)?;
        // nobody reads the events here: drop them as they come
        while d.poll_event().is_some() {}
    }
    // what the broker still has to say goes out before the sockets close
    let _ = d.flush();
    let (stats, io) = (d.core().stats().clone(), d.server_stats());
    d.drop_connections();
    print!("{}", broker_summary(&stats, &io, started.elapsed()));
    Ok(())
}

/// The counters `qossim broker` prints when it stops.
pub fn broker_summary(b: &BrokerStats, io: &ServerStats, elapsed: Duration) -> String {
    format!(
        "qossim broker: stopped after {:.1} s\n\
         connections: {} accepted, {} refused over --max-connections, {} at most at once; \
         {} CONNECTs accepted, {} refused; {} closed for protocol errors, {} connect timeouts, \
         {} keep-alive timeouts, {} slow consumers closed, {} accept errors\n\
         packets: {} in, {} out; {} publishes received, {} sent, {} dropped\n\
         bytes: {} in, {} out\n",
        elapsed.as_secs_f64(),
        io.accepted,
        io.refused_over_limit,
        io.peak_connections,
        b.connects_accepted,
        b.connects_refused,
        b.protocol_errors,
        b.connect_timeouts,
        b.keep_alive_timeouts,
        io.slow_closed,
        io.accept_errors,
        b.packets_received,
        b.packets_sent,
        b.publishes_received,
        b.publishes_sent,
        b.dropped_queue_full + b.dropped_qos0_offline,
        io.bytes_read,
        io.bytes_written,
    )
}

/// Which codec decodes a connection's packets: chosen from its CONNECT's
/// protocol level ([`v5::connect_protocol_level`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// The CONNECT's level is not readable yet.
    Unknown,
    V311,
    V5,
}

/// Bytes after which a connection whose first packet still shows no
/// protocol level is decoded as 3.1.1 (whose decoder then names what is
/// wrong): a CONNECT's level byte comes within its first 12 bytes ("MQTT"),
/// 14 for MQTT 3.1's "MQIsdp".
const LEVEL_BY: usize = 16;

/// A decoded packet of either version.
enum Decoded {
    V311(Packet),
    /// Boxed: a 5.0 packet with its property blocks is large.
    V5(Box<Packet5>),
}

/// Decode the first packet of `buf` with the codec of `level` (3.1.1 when
/// unknown).
fn decode_as(level: Level, buf: &[u8], max: usize) -> Result<Option<(Decoded, usize)>, String> {
    if level == Level::V5 {
        v5::decode(buf, max)
            .map(|o| o.map(|(p, n)| (Decoded::V5(Box::new(p)), n)))
            .map_err(|e| e.to_string())
    } else {
        codec::decode(buf, max)
            .map(|o| o.map(|(p, n)| (Decoded::V311(p), n)))
            .map_err(|e| e.to_string())
    }
}

/// One connection as the packet log knows it.
#[derive(Debug)]
struct LogConn {
    peer: SocketAddr,
    level: Level,
    /// Bytes read but not yet a whole packet (at most one packet: the
    /// broker closes a connection whose header announces more than
    /// `max_packet`).
    buf: Vec<u8>,
    /// Input that did not decode: nothing more is logged as packets for
    /// this connection (the broker closes it).
    broken: bool,
}

/// `--log`: one line per packet in and out, and per connection opened,
/// refused and closed (docs/mqtt.md "`qossim broker`" gives the format).
pub struct PacketLog {
    out: Box<dyn Write + Send>,
    conns: BTreeMap<ConnId, LogConn>,
    max_packet: usize,
    /// A write failed: logging stopped (said once on stderr).
    failed: bool,
    line: String,
}

impl std::fmt::Debug for PacketLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketLog")
            .field("conns", &self.conns.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl PacketLog {
    /// Log to `target` (`-`: stdout; else a file, created or truncated).
    /// Lines are written whole as they come.
    pub fn open(target: &str, max_packet: usize) -> Result<Self, BrokerError> {
        let out = super::open_log(target).map_err(|source| BrokerError::Log {
            path: target.into(),
            source,
        })?;
        Ok(Self::to_writer(out, max_packet))
    }

    /// Log to `out` (tests use a buffer).
    pub fn to_writer(out: Box<dyn Write + Send>, max_packet: usize) -> Self {
        PacketLog {
            out,
            conns: BTreeMap::new(),
            max_packet,
            failed: false,
            line: String::new(),
        }
    }

    fn start(&mut self, now: SimTime, conn: Option<ConnId>, peer: Option<SocketAddr>) {
        self.line.clear();
        let _ = write!(self.line, "{:.6}", now.as_secs_f64());
        match conn {
            Some(c) => {
                let _ = write!(self.line, " conn={}", c.0);
            }
            None => self.line.push_str(" conn=-"),
        }
        match peer {
            Some(p) => {
                let _ = write!(self.line, " peer={p}");
            }
            None => self.line.push_str(" peer=-"),
        }
    }

    fn emit(&mut self) {
        if self.failed {
            return;
        }
        self.line.push('\n');
        if let Err(e) = self.out.write_all(self.line.as_bytes()) {
            self.failed = true;
            eprintln!("warning: --log: write failed ({e}); packet logging stops");
        }
    }

    fn peer(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.peer)
    }

    /// One decoded packet: `dir`, type, length and its key fields.
    fn packet(&mut self, now: SimTime, conn: ConnId, dir: &str, p: &Decoded, len: usize) {
        let peer = self.peer(conn);
        self.start(now, Some(conn), peer);
        match p {
            Decoded::V311(p) => {
                let _ = write!(self.line, " {dir} {} len={len}", p.packet_type().name());
                packet_fields(&mut self.line, p);
            }
            Decoded::V5(p) => {
                let _ = write!(self.line, " {dir} {} len={len}", p.name());
                packet5_fields(&mut self.line, p);
            }
        }
        self.emit();
    }

    fn undecodable(&mut self, now: SimTime, conn: ConnId, dir: &str, len: usize, why: &str) {
        let peer = self.peer(conn);
        self.start(now, Some(conn), peer);
        let _ = write!(self.line, " {dir} MALFORMED len={len} error={why:?}");
        self.emit();
    }
}

/// ` key=value` pairs of `p`: client id, topic, QoS, packet id, return
/// codes.
fn packet_fields(line: &mut String, p: &Packet) {
    match p {
        Packet::Connect(c) => {
            let _ = write!(
                line,
                " client_id={:?} protocol=4 clean_session={} keep_alive={}",
                c.client_id,
                u8::from(c.clean_session),
                c.keep_alive
            );
            if let Some(w) = &c.will {
                let _ = write!(line, " will_topic={:?}", w.topic.as_str());
            }
            if let Some(u) = &c.username {
                let _ = write!(line, " username={u:?}");
            }
        }
        Packet::ConnAck(a) => {
            let _ = write!(
                line,
                " session_present={} rc={}",
                u8::from(a.session_present),
                a.code as u8
            );
        }
        Packet::Publish(p) => {
            let _ = write!(
                line,
                " topic={:?} qos={}",
                p.topic.as_str(),
                p.qos_pid.qos().as_u8()
            );
            if let Some(pid) = p.qos_pid.pid() {
                let _ = write!(line, " pid={pid}");
            }
            let _ = write!(
                line,
                " retain={} dup={} payload={}",
                u8::from(p.retain),
                u8::from(p.dup),
                p.payload.len()
            );
        }
        Packet::PubAck(a)
        | Packet::PubRec(a)
        | Packet::PubRel(a)
        | Packet::PubComp(a)
        | Packet::UnsubAck(a) => {
            let _ = write!(line, " pid={}", a.pid);
        }
        Packet::Subscribe(s) => {
            let _ = write!(line, " pid={}", s.pid);
            for (f, q) in &s.filters {
                let _ = write!(line, " filter={:?} qos={}", f.as_str(), q.as_u8());
            }
        }
        Packet::SubAck(s) => {
            let _ = write!(line, " pid={}", s.pid);
            for c in &s.codes {
                let _ = match c {
                    SubAckReturn::Failure => write!(line, " rc=0x80"),
                    SubAckReturn::Success(q) => write!(line, " rc={}", q.as_u8()),
                };
            }
        }
        Packet::Unsubscribe(u) => {
            let _ = write!(line, " pid={}", u.pid);
            for f in &u.filters {
                let _ = write!(line, " filter={:?}", f.as_str());
            }
        }
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
    }
}

/// ` key=value` pairs of an MQTT 5.0 packet: as [`packet_fields`], with
/// reason codes (`reason=0x..`) and a topic alias when the topic is empty.
fn packet5_fields(line: &mut String, p: &Packet5) {
    let reasons = |line: &mut String, rs: &[v5::ReasonCode]| {
        for r in rs {
            let _ = write!(line, " reason=0x{:02x}", r.0);
        }
    };
    match p {
        Packet5::Connect(c) => {
            let _ = write!(
                line,
                " client_id={:?} protocol=5 clean_start={} keep_alive={}",
                c.client_id,
                u8::from(c.clean_start),
                c.keep_alive
            );
            if let Some(e) = c.props.session_expiry_interval {
                let _ = write!(line, " session_expiry={e}");
            }
            if let Some(w) = &c.will {
                let _ = write!(line, " will_topic={:?}", w.topic.as_str());
            }
            if let Some(u) = &c.username {
                let _ = write!(line, " username={u:?}");
            }
        }
        Packet5::ConnAck(a) => {
            let _ = write!(line, " session_present={}", u8::from(a.session_present));
            reasons(line, &[a.reason]);
        }
        Packet5::Publish(p) => {
            match &p.topic {
                Some(t) => {
                    let _ = write!(line, " topic={:?}", t.as_str());
                }
                None => line.push_str(" topic=\"\""),
            }
            if let Some(a) = p.props.topic_alias {
                let _ = write!(line, " topic_alias={a}");
            }
            let _ = write!(line, " qos={}", p.qos_pid.qos().as_u8());
            if let Some(pid) = p.qos_pid.pid() {
                let _ = write!(line, " pid={pid}");
            }
            let _ = write!(
                line,
                " retain={} dup={} payload={}",
                u8::from(p.retain),
                u8::from(p.dup),
                p.payload.len()
            );
        }
        Packet5::PubAck(a) | Packet5::PubRec(a) | Packet5::PubRel(a) | Packet5::PubComp(a) => {
            let _ = write!(line, " pid={}", a.pid);
            reasons(line, &[a.reason]);
        }
        Packet5::Subscribe(s) => {
            let _ = write!(line, " pid={}", s.pid);
            for (f, o) in &s.filters {
                let _ = write!(line, " filter={:?} qos={}", f.as_str(), o.qos.as_u8());
            }
        }
        Packet5::SubAck(s) | Packet5::UnsubAck(s) => {
            let _ = write!(line, " pid={}", s.pid);
            reasons(line, &s.reasons);
        }
        Packet5::Unsubscribe(u) => {
            let _ = write!(line, " pid={}", u.pid);
            for f in &u.filters {
                let _ = write!(line, " filter={:?}", f.as_str());
            }
        }
        Packet5::Disconnect(r) | Packet5::Auth(r) => reasons(line, &[r.reason]),
        Packet5::PingReq | Packet5::PingResp => {}
    }
}

impl BrokerTap for PacketLog {
    fn accepted(&mut self, now: SimTime, conn: ConnId, peer: SocketAddr) {
        self.conns.insert(
            conn,
            LogConn {
                peer,
                level: Level::Unknown,
                buf: Vec::new(),
                broken: false,
            },
        );
        self.start(now, Some(conn), Some(peer));
        self.line.push_str(" open");
        self.emit();
    }

    fn refused(&mut self, now: SimTime, peer: SocketAddr) {
        self.start(now, None, Some(peer));
        self.line
            .push_str(" refused reason=\"over --max-connections\"");
        self.emit();
    }

    fn received(&mut self, now: SimTime, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.broken {
            return;
        }
        let mut buf = std::mem::take(&mut c.buf);
        buf.extend_from_slice(data);
        if c.level == Level::Unknown {
            c.level = match v5::connect_protocol_level(&buf) {
                Some(5) => Level::V5,
                Some(_) => Level::V311,
                None if buf.len() >= LEVEL_BY || buf.first().is_some_and(|b| b >> 4 != 1) => {
                    Level::V311
                }
                None => {
                    c.buf = buf;
                    return;
                }
            };
        }
        let level = c.level;
        let mut off = 0;
        let mut broken = false;
        while let Some(rest) = buf.get(off..).filter(|r| !r.is_empty()) {
            match decode_as(level, rest, self.max_packet) {
                Ok(Some((p, n))) => {
                    off += n;
                    self.packet(now, conn, "in", &p, n);
                }
                Ok(None) => break,
                Err(e) => {
                    self.undecodable(now, conn, "in", rest.len(), &e);
                    broken = true;
                    break;
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.broken = broken;
            if broken {
                buf = Vec::new();
            } else {
                buf.drain(..off.min(buf.len()));
            }
            c.buf = buf;
        }
    }

    /// Decoded with the connection's codec; when that fails, with the
    /// other (a 3.1.1 broker refuses a 5.0 CONNECT with a 3.1.1 CONNACK).
    fn sent(&mut self, now: SimTime, conn: ConnId, _t: &BrokerTransmit, packet: &[u8]) {
        let level = self.conns.get(&conn).map_or(Level::V311, |c| c.level);
        let other = if level == Level::V5 {
            Level::V311
        } else {
            Level::V5
        };
        let decoded = match decode_as(level, packet, usize::MAX) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err("incomplete packet".to_string()),
            Err(e) => match decode_as(other, packet, usize::MAX) {
                Ok(Some(d)) => Ok(d),
                _ => Err(e),
            },
        };
        match decoded {
            Ok((p, n)) => self.packet(now, conn, "out", &p, n),
            Err(e) => self.undecodable(now, conn, "out", packet.len(), &e),
        }
    }

    fn closed(&mut self, now: SimTime, conn: ConnId, why: &str) {
        let peer = self.conns.remove(&conn).map(|c| c.peer);
        self.start(now, Some(conn), peer);
        let _ = write!(self.line, " close reason={why:?}");
        self.emit();
    }
}
