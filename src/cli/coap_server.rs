//! `qossim coap-server`: the simulator's sans-IO CoAP endpoint and
//! resource server ([`crate::proto::coap::ResourceServer`], built by
//! [`crate::world::apps::resource_server`] as every simulated node builds
//! its own) served to real clients on a UDP port, until SIGINT or SIGTERM.
//!
//! What a peer can make the server hold is bounded, with the defaults below
//! (stated in `--help` and docs/coap.md "`qossim coap-server`"): the
//! resources a PUT/POST creates, the bytes of paths and values stored, the
//! largest value (all [`crate::proto::coap::ResourceStore::with_limits`]: past them a PUT/POST
//! is answered 5.03 or 4.13 and counted), and the observers registered
//! (`--max-observers`: past it a registration is answered without Observe,
//! RFC 7641 §4.1), and the message IDs and cached replies kept for
//! deduplication (`--max-dedup`, `--max-dedup-bytes`: past them the ones
//! closest to expiry are forgotten first, counted). Malformed datagrams are handled by the endpoint as RFC
//! 7252 §4.2–4.3 says (ignored, or a Reset) and counted.
//!
//! `--log` writes one line per datagram in and out (docs/coap.md gives the
//! format).

use super::CliError;
use crate::proto::coap::block::BlockValue;
use crate::proto::coap::server::{
    DEFAULT_MAX_RESOURCES, DEFAULT_MAX_STORE_BYTES, DEFAULT_MAX_VALUE_BYTES,
};
use crate::proto::coap::socket::{DatagramTap, SocketDriver, SocketError};
use crate::proto::coap::{Config, Endpoint, MessageRef, OptionNumber};
use crate::scenario::model::CoapParams;
use crate::sim::{SimDuration, SimRng, SimTime};
use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default `--listen` (the CoAP port, RFC 7252 §6.1).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5683";
/// Default `--max-observers`.
pub const DEFAULT_MAX_OBSERVERS: usize = 1024;
/// Default `--max-dedup`: message IDs remembered (RFC 7252 §4.5) at once,
/// about 100 B each.
pub const DEFAULT_MAX_DEDUP: usize = 100_000;
/// Default `--max-dedup-bytes`: bytes of cached replies (ACKs with their
/// piggybacked responses) kept for duplicates at once.
pub const DEFAULT_MAX_DEDUP_BYTES: usize = 16 << 20;
/// The seed of the endpoint's random stream (initial message ID, tokens,
/// retransmission jitter) when no `--scenario` gives one.
const DEFAULT_SEED: u64 = 1;

/// Errors of `qossim coap-server` that are not bad arguments (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum CoapServerError {
    /// The socket (bind) or the serving loop failed.
    #[error("{0}")]
    Socket(#[from] SocketError),
    /// SIGINT/SIGTERM handlers cannot be installed.
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    /// The `--log` file cannot be created.
    #[error("--log {path}: cannot create it: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `qossim coap-server` holds at most (`--max-*`): past each, the
/// answer docs/coap.md lists (5.03, 4.13, a plain GET answer, the oldest
/// deduplication entries dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoapServerLimits {
    /// Resources stored (`--max-resources`).
    pub resources: usize,
    /// Bytes stored over all resources (`--max-bytes`).
    pub bytes: usize,
    /// Bytes of one value (`--max-value`).
    pub value: usize,
    /// Observers over all resources (`--max-observers`).
    pub observers: usize,
    /// Deduplication entries (`--max-dedup`).
    pub dedup: usize,
    /// Bytes of deduplicated responses kept (`--max-dedup-bytes`).
    pub dedup_bytes: usize,
}

impl Default for CoapServerLimits {
    fn default() -> Self {
        CoapServerLimits {
            resources: DEFAULT_MAX_RESOURCES,
            bytes: DEFAULT_MAX_STORE_BYTES,
            value: DEFAULT_MAX_VALUE_BYTES,
            observers: DEFAULT_MAX_OBSERVERS,
            dedup: DEFAULT_MAX_DEDUP,
            dedup_bytes: DEFAULT_MAX_DEDUP_BYTES,
        }
    }
}

/// Arguments of `qossim coap-server`.
#[derive(Debug, Clone)]
pub struct CoapServerRequest {
    /// UDP address served (`HOST:PORT`, IPv4; port 0 picks a free one).
    pub listen: String,
    /// Take the endpoint's and server's options from this scenario's
    /// `[protocols.coap]`.
    pub scenario: Option<PathBuf>,
    /// `--set PATH=VALUE` overrides applied to the scenario.
    pub overrides: Vec<String>,
    /// `PATH=VALUE` resources stored before serving.
    pub resources: Vec<String>,
    pub limits: CoapServerLimits,
    /// Answer CON requests this much later as separate responses
    /// (RFC 7252 §5.2.2) instead of piggybacked.
    pub separate_delay: Option<String>,
    /// Cache validators: ETag and Max-Age on 2.05, 2.03 Valid.
    pub validators: bool,
    /// `-` for stdout, else a file (created or truncated).
    pub log: Option<String>,
}

impl Default for CoapServerRequest {
    fn default() -> Self {
        CoapServerRequest {
            listen: DEFAULT_LISTEN.into(),
            scenario: None,
            overrides: Vec::new(),
            resources: Vec::new(),
            limits: CoapServerLimits::default(),
            separate_delay: None,
            validators: false,
            log: None,
        }
    }
}

/// What `qossim coap-server` serves: the address, the scenario's
/// `[protocols.coap]` (its defaults without `--scenario`), the seed of the
/// endpoint's stream, and the flags.
#[derive(Debug, Clone)]
pub struct CoapServerPlan {
    pub listen: SocketAddrV4,
    pub params: CoapParams,
    pub seed: u64,
    /// Preloaded resources: (path, value).
    pub resources: Vec<(String, Vec<u8>)>,
    pub limits: CoapServerLimits,
    pub separate_delay: Option<SimDuration>,
    pub validators: bool,
}

/// A resource path as requests name it (Uri-Path segments joined by `/`):
/// `p` without leading `/`; every segment 1–255 bytes (RFC 7252 §5.10.1;
/// an empty segment cannot be told apart from none by this server's
/// joined paths).
fn resource_path(item: &str, p: &str) -> Result<String, CliError> {
    let bad = |why: &str| CliError::BadArgument(format!("--resource {item:?}: {why}"));
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        return Err(bad(
            "the path is empty (expected PATH=VALUE, e.g. sensors/temp=21.5)",
        ));
    }
    if p.split('/').any(|s| s.is_empty() || s.len() > 255) {
        return Err(bad("a path segment is empty or longer than 255 bytes"));
    }
    Ok(p.to_string())
}

/// Check `req` and build what is served: bad values are
/// [`CliError::BadArgument`] (exit 2) naming the option; a scenario that
/// does not load is [`CliError::Scenario`] (file, line, field).
pub fn coap_server_plan(req: &CoapServerRequest) -> Result<CoapServerPlan, CliError> {
    let listen = super::listen_v4(&req.listen, "qossim coap-server", DEFAULT_LISTEN)?;
    let (params, seed) = match &req.scenario {
        Some(path) => {
            let sc = crate::scenario::load_file(path, &req.overrides)?;
            (sc.protocols.coap.clone(), sc.seed)
        }
        None if !req.overrides.is_empty() => {
            return Err(CliError::BadArgument(
                "--set needs --scenario (it overrides a scenario field)".into(),
            ))
        }
        None => (CoapParams::default(), DEFAULT_SEED),
    };
    let limits = req.limits;
    for (name, v) in [
        ("--max-resources", limits.resources),
        ("--max-bytes", limits.bytes),
        ("--max-value", limits.value),
        ("--max-observers", limits.observers),
        ("--max-dedup", limits.dedup),
        ("--max-dedup-bytes", limits.dedup_bytes),
    ] {
        if v == 0 {
            return Err(CliError::BadArgument(format!("{name} must be at least 1")));
        }
    }
    if limits.value > limits.bytes {
        return Err(CliError::BadArgument(format!(
            "--max-value {} is more than --max-bytes {} (no such value could be stored)",
            limits.value, limits.bytes
        )));
    }
    let mut resources: Vec<(String, Vec<u8>)> = Vec::new();
    for item in &req.resources {
        let (p, v) = item.split_once('=').ok_or_else(|| {
            CliError::BadArgument(format!(
                "--resource {item:?}: expected PATH=VALUE (e.g. sensors/temp=21.5)"
            ))
        })?;
        let path = resource_path(item, p)?;
        if v.len() > limits.value {
            return Err(CliError::BadArgument(format!(
                "--resource {item:?}: the value is {} bytes, more than --max-value {}",
                v.len(),
                limits.value
            )));
        }
        if resources.iter().any(|(q, _)| *q == path) {
            return Err(CliError::BadArgument(format!(
                "--resource {item:?}: {path} is given twice"
            )));
        }
        resources.push((path, v.as_bytes().to_vec()));
    }
    let separate_delay = match &req.separate_delay {
        None => None,
        Some(s) => {
            let d = crate::scenario::units::parse_duration(s)
                .map_err(|e| CliError::BadArgument(format!("--separate-delay: {e}")))?;
            Some(d)
        }
    };
    Ok(CoapServerPlan {
        listen,
        params,
        seed,
        resources,
        limits,
        separate_delay,
        validators: req.validators,
    })
}

impl CoapServerPlan {
    /// The endpoint and its server, configured as planned (not yet bound).
    pub fn endpoint_and_server(&self) -> (Endpoint, crate::proto::coap::ResourceServer) {
        let mut rng = SimRng::stream(self.seed, "coap-server");
        // RFC 7252 §4.4: the initial message ID should be randomised
        let first_mid = rng.below(1 << 16) as u16;
        let config = Config {
            max_dedup_entries: self.limits.dedup,
            max_dedup_bytes: self.limits.dedup_bytes,
            ..Config::from(&self.params)
        };
        let mut ep = Endpoint::new(config, rng, first_mid);
        let mut server = crate::world::apps::resource_server(&self.params, self.validators)
            .with_separate_response_delay(self.separate_delay)
            .with_max_observers(self.limits.observers);
        let store = std::mem::take(server.resources_mut()).with_limits(
            self.limits.resources,
            self.limits.bytes,
            self.limits.value,
        );
        *server.resources_mut() = store;
        for (path, value) in &self.resources {
            server
                .resources_mut()
                .insert(path.clone(), None, value.clone());
        }
        server.register_options(&mut ep);
        (ep, server)
    }
}

/// Counters of the datagrams a served endpoint read and sent (what the
/// `--log` tap sees, kept whether or not it writes lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Datagrams read that are not a CoAP message (RFC 7252 §3).
    pub undecodable_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Datagrams the socket refused to send (too large).
    pub refused_out: u64,
    /// Responses sent (piggybacked, separate, NON, notifications) by class:
    /// 2.xx, 4.xx, 5.xx.
    pub responses: [u64; 3],
    /// Empty ACKs sent (a deferred answer, or an ACK of a response).
    pub empty_acks_out: u64,
}

/// `--log` and the [`Traffic`] counters: one line per datagram in and out.
pub struct DatagramLog {
    out: Option<Box<dyn Write + Send>>,
    traffic: Arc<Mutex<Traffic>>,
    /// A write failed: logging stopped (said once on stderr).
    failed: bool,
    line: String,
}

impl std::fmt::Debug for DatagramLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramLog")
            .field("logging", &self.out.is_some())
            .field("failed", &self.failed)
            .finish()
    }
}

impl DatagramLog {
    /// Count, and write lines to `out` when given (tests use a buffer).
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        DatagramLog {
            out,
            traffic: Arc::default(),
            failed: false,
            line: String::new(),
        }
    }

    /// The counters, shared with this tap.
    pub fn traffic(&self) -> Arc<Mutex<Traffic>> {
        self.traffic.clone()
    }

    fn count(&self, f: impl FnOnce(&mut Traffic)) {
        if let Ok(mut t) = self.traffic.lock() {
            f(&mut t);
        }
    }

    /// Write the line for one datagram; returns the decoded message.
    fn line<'a>(
        &mut self,
        now: SimTime,
        peer: SocketAddr,
        dir: &str,
        data: &'a [u8],
    ) -> Option<MessageRef<'a>> {
        let m = MessageRef::parse(data);
        if self.out.is_none() || self.failed {
            return m.ok();
        }
        self.line.clear();
        let _ = write!(self.line, "{:.6} peer={peer} {dir}", now.as_secs_f64());
        match &m {
            Ok(m) => describe(&mut self.line, m, data.len()),
            Err(e) => {
                let _ = write!(
                    self.line,
                    " MALFORMED len={} error={:?}",
                    data.len(),
                    e.to_string()
                );
            }
        }
        self.line.push('\n');
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.write_all(self.line.as_bytes()) {
                self.failed = true;
                eprintln!("warning: --log: write failed ({e}); datagram logging stops");
            }
        }
        m.ok()
    }
}

/// The name of option `n` (RFC 7252 §5.10, RFC 7641, RFC 7959), or its
/// number.
fn option_name(n: u16) -> Option<&'static str> {
    Some(match n {
        1 => "If-Match",
        3 => "Uri-Host",
        4 => "ETag",
        5 => "If-None-Match",
        6 => "Observe",
        7 => "Uri-Port",
        8 => "Location-Path",
        11 => "Uri-Path",
        12 => "Content-Format",
        14 => "Max-Age",
        15 => "Uri-Query",
        17 => "Accept",
        20 => "Location-Query",
        23 => "Block2",
        27 => "Block1",
        28 => "Size2",
        35 => "Proxy-Uri",
        39 => "Proxy-Scheme",
        60 => "Size1",
        _ => return None,
    })
}

/// ` TYPE CODE mid=N token=HEX opts=... payload=N len=N` of a decoded
/// datagram. Options: `Name=value` joined by `,` — strings quoted, uints
/// as numbers, Block1/Block2 as `NUM/M/SIZE`, anything else hex.
fn describe(line: &mut String, m: &MessageRef<'_>, len: usize) {
    use crate::proto::coap::option::{decode_uint, OptionFormat};
    let _ = write!(line, " {} {}", m.ty, code_name(m.code));
    let _ = write!(line, " mid={} token=", m.message_id);
    if m.token.is_empty() {
        line.push('-');
    }
    for b in m.token.as_slice() {
        let _ = write!(line, "{b:02x}");
    }
    line.push_str(" opts=");
    let mut first = true;
    for o in m.options() {
        if !first {
            line.push(',');
        }
        first = false;
        match option_name(o.number) {
            Some(n) => line.push_str(n),
            None => {
                let _ = write!(line, "{}", o.number);
            }
        }
        line.push('=');
        let num = OptionNumber(o.number);
        let block = num == OptionNumber::BLOCK1 || num == OptionNumber::BLOCK2;
        match (num.spec().map(|s| s.0), BlockValue::from_bytes(o.value)) {
            (_, Ok(b)) if block => {
                let _ = write!(line, "{}/{}/{}", b.num, u8::from(b.more), b.size());
            }
            (Some(OptionFormat::String), _) => {
                let _ = write!(line, "{:?}", String::from_utf8_lossy(o.value));
            }
            (Some(OptionFormat::Uint), _) if decode_uint(o.value).is_some() => {
                let _ = write!(line, "{}", decode_uint(o.value).unwrap_or(0));
            }
            _ => {
                for b in o.value {
                    let _ = write!(line, "{b:02x}");
                }
            }
        }
    }
    if first {
        line.push('-');
    }
    let _ = write!(line, " payload={} len={len}", m.payload.len());
}

/// A code as logged: the method name of a request, `EMPTY`, else `c.dd`.
fn code_name(c: crate::proto::coap::Code) -> String {
    match crate::proto::coap::Method::from_code(c) {
        Some(m) => m.to_string(),
        None if c.is_empty() => "EMPTY".into(),
        None => c.to_string(),
    }
}

impl DatagramTap for DatagramLog {
    fn received(&mut self, now: SimTime, from: SocketAddr, data: &[u8]) {
        let ok = self.line(now, from, "in", data).is_some();
        self.count(|t| {
            t.datagrams_in += 1;
            t.bytes_in += data.len() as u64;
            t.undecodable_in += u64::from(!ok);
        });
    }

    fn sent(&mut self, now: SimTime, to: SocketAddr, data: &[u8], sent: bool) {
        let m = self.line(now, to, if sent { "out" } else { "out-refused" }, data);
        let (code, ty) = match m {
            Some(m) => (m.code, m.ty),
            None => (
                crate::proto::coap::Code::EMPTY,
                crate::proto::coap::MessageType::Rst,
            ),
        };
        self.count(|t| {
            if !sent {
                t.refused_out += 1;
                return;
            }
            t.datagrams_out += 1;
            t.bytes_out += data.len() as u64;
            match code.class() {
                2 => t.responses[0] += 1,
                4 => t.responses[1] += 1,
                5 => t.responses[2] += 1,
                _ if code.is_empty() && ty == crate::proto::coap::MessageType::Ack => {
                    t.empty_acks_out += 1
                }
                _ => {}
            }
        });
    }
}

/// `qossim coap-server`: serve until SIGINT or SIGTERM, then print the
/// counters on stderr.
pub fn coap_server(req: &CoapServerRequest) -> Result<(), CliError> {
    let plan = coap_server_plan(req)?;
    let out = match req.log.as_deref() {
        None => None,
        Some(target) => Some(
            super::open_log(target).map_err(|source| CoapServerError::Log {
                path: target.into(),
                source,
            })?,
        ),
    };
    super::install_stop_signals().map_err(CoapServerError::Signals)?;
    let (ep, server) = plan.endpoint_and_server();
    let mut d = SocketDriver::bind(plan.listen, ep)
        .map_err(CoapServerError::from)?
        .with_server(server);
    let tap = DatagramLog::new(out);
    let traffic = tap.traffic();
    d.set_tap(Box::new(tap));
    eprintln!("{}", banner(&plan, d.local_addr()));
    let started = Instant::now();
    let mut send_errors = 0u64;
    while !super::STOP.load(std::sync::atomic::Ordering::SeqCst) {
        match d.step(Duration::from_millis(50)) {
            Ok(_) => {}
            // one peer's unreachable address must not stop the others'
            // service: the datagram is lost, as on any network
            Err(SocketError::Send { .. }) => send_errors += 1,
            Err(e) => return Err(CoapServerError::from(e).into()),
        }
        // nobody reads the events here (the server has had them)
        while d.poll_event().is_some() {}
    }
    let traffic = traffic.lock().map(|t| *t).unwrap_or_default();
    eprint!(
        "{}",
        coap_server_summary(&d, &traffic, send_errors, started.elapsed())
    );
    Ok(())
}

/// The first line on stderr: the bound address (tests read it) and the
/// options in force.
fn banner(plan: &CoapServerPlan, local: SocketAddr) -> String {
    let p = &plan.params;
    let block = match p.block_size {
        Some(b) => format!("block-wise {b} B"),
        None => "block-wise off".into(),
    };
    let separate = match plan.separate_delay {
        Some(d) => format!("separate responses after {d}"),
        None => "piggybacked responses".into(),
    };
    format!(
        "qossim coap-server: CoAP on udp {local}; {} resources preloaded; {block}; {separate}; \
         validators {}; at most {} resources, {} B stored, {} B per value, {} observers; \
         Ctrl-C stops",
        plan.resources.len(),
        if plan.validators { "on" } else { "off" },
        plan.limits.resources,
        plan.limits.bytes,
        plan.limits.value,
        plan.limits.observers,
    )
}

/// The counters `qossim coap-server` prints when it stops.
pub fn coap_server_summary(
    d: &SocketDriver,
    t: &Traffic,
    send_errors: u64,
    elapsed: Duration,
) -> String {
    let s = d.endpoint().stats();
    let (store, obs, block) = match d.server() {
        Some(srv) => (
            (
                srv.resources().len(),
                srv.resources().bytes(),
                srv.resources().refused(),
            ),
            (
                srv.observers().len(),
                *srv.observers().stats(),
                srv.refused_observers(),
            ),
            srv.block_stats(),
        ),
        None => Default::default(),
    };
    format!(
        "qossim coap-server: stopped after {:.1} s\n\
         datagrams: {} in ({} B), {} out ({} B); {} malformed (not CoAP: {}), {} duplicates \
         suppressed ({} message IDs forgotten early over --max-dedup/--max-dedup-bytes), {} ignored, \
         {} too large to send, {} send errors\n\
         requests: {} served; responses 2.xx {}, 4.xx {}, 5.xx {}; {} separate, {} empty ACKs; \
         {} retransmissions; resets {} sent, {} received\n\
         store: {} resources, {} B; {} stores refused (5.03/4.13); block-wise {} Block2 sent, \
         {} Block1 received\n\
         observe: {} observers now, {} registrations, {} refused over --max-observers, \
         {} notifications sent\n",
        elapsed.as_secs_f64(),
        t.datagrams_in,
        t.bytes_in,
        t.datagrams_out,
        t.bytes_out,
        s.malformed_dropped,
        t.undecodable_in,
        s.duplicates_suppressed,
        s.dedup_evicted,
        s.ignored,
        d.oversized_dropped(),
        send_errors,
        s.requests_received,
        t.responses[0],
        t.responses[1],
        t.responses[2],
        s.separate_responses_sent,
        t.empty_acks_out,
        s.retransmissions,
        s.rst_sent,
        s.rst_received,
        store.0,
        store.1,
        store.2,
        block.block2_sent,
        block.block1_received,
        obs.0,
        obs.1.registrations,
        obs.2,
        obs.1.notifications_sent,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// RFC 7252 Appendix A-style bytes: a CON GET of /sensors/temp with a
    /// 1-byte token and Block2 0/0/64, its piggybacked 2.05, an Empty ACK,
    /// a 4.04, a 5.03 and three bytes that are no CoAP message.
    #[test]
    fn one_line_per_datagram_and_responses_counted_by_class() {
        let buf = Shared::default();
        let mut log = DatagramLog::new(Some(Box::new(buf.clone())));
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let t = SimTime::from_nanos(1_500_000_000);
        let get = [
            0x41, 0x01, 0x12, 0x34, 0xab, 0xb7, b's', b'e', b'n', b's', b'o', b'r', b's', 0x04,
            b't', b'e', b'm', b'p', 0xc1, 0x02,
        ];
        log.received(t, peer, &get);
        let answer = [0x61, 0x45, 0x12, 0x34, 0xab, 0xc1, 0x00, 0xff, b'2', b'1'];
        log.sent(t, peer, &answer, true);
        log.sent(t, peer, &[0x60, 0x00, 0x00, 0x07], true);
        log.sent(t, peer, &[0x60, 0x84, 0x00, 0x08], true);
        log.sent(t, peer, &[0x60, 0xa3, 0x00, 0x09], false);
        log.received(t, peer, &[0xff, 0, 0]);
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "1.500000 peer=127.0.0.1:40000 in CON GET mid=4660 token=ab \
                 opts=Uri-Path=\"sensors\",Uri-Path=\"temp\",Block2=0/0/64 payload=0 len=20",
                "1.500000 peer=127.0.0.1:40000 out ACK 2.05 mid=4660 token=ab \
                 opts=Content-Format=0 payload=2 len=10",
                "1.500000 peer=127.0.0.1:40000 out ACK EMPTY mid=7 token=- opts=- payload=0 len=4",
                "1.500000 peer=127.0.0.1:40000 out ACK 4.04 mid=8 token=- opts=- payload=0 len=4",
                "1.500000 peer=127.0.0.1:40000 out-refused ACK 5.03 mid=9 token=- opts=- payload=0 len=4",
                "1.500000 peer=127.0.0.1:40000 in MALFORMED len=3 error=\"datagram of 3 bytes is \
                 shorter than the 4-byte CoAP header (RFC 7252 §3)\"",
            ]
        );
        let t = *log.traffic().lock().expect("lock");
        assert_eq!(
            t,
            Traffic {
                datagrams_in: 2,
                bytes_in: 23,
                undecodable_in: 1,
                datagrams_out: 3,
                bytes_out: 18,
                refused_out: 1,
                responses: [1, 1, 0],
                empty_acks_out: 1,
            }
        );
    }

    /// Without `--log` nothing is written but everything is counted.
    #[test]
    fn counts_without_a_log() {
        let mut log = DatagramLog::new(None);
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        log.sent(SimTime::ZERO, peer, &[0x60, 0xa3, 0x00, 0x09], true);
        log.received(SimTime::ZERO, peer, &[1]);
        let t = *log.traffic().lock().expect("lock");
        assert_eq!((t.responses, t.undecodable_in), ([0, 0, 1], 1));
    }

    /// The plan: `--resource` paths lose their leading `/`; limits reach
    /// the store; without `--scenario` the `[protocols.coap]` defaults.
    #[test]
    fn plan_builds_the_store_as_asked() {
        let req = CoapServerRequest {
            listen: "127.0.0.1:0".into(),
            resources: vec!["/a/b=1".into(), "c=".into()],
            limits: CoapServerLimits {
                resources: 3,
                bytes: 100,
                value: 10,
                dedup: 7,
                dedup_bytes: 700,
                ..CoapServerLimits::default()
            },
            ..CoapServerRequest::default()
        };
        let plan = coap_server_plan(&req).expect("plan");
        assert_eq!(plan.params.block_size, None);
        let (ep, mut server) = plan.endpoint_and_server();
        assert_eq!(
            (ep.config().max_dedup_entries, ep.config().max_dedup_bytes),
            (7, 700)
        );
        let store = server.resources_mut();
        assert_eq!(
            store.get("a/b").map(|r| r.value.as_slice()),
            Some(&b"1"[..])
        );
        assert_eq!(store.get("c").map(|r| r.value.len()), Some(0));
        use crate::proto::coap::{Code, Method};
        assert_eq!(
            store.apply(Method::Put, "d", None, b"x").code,
            Code::CREATED
        );
        assert_eq!(
            store.apply(Method::Put, "e", None, b"x").code,
            Code::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            store.apply(Method::Put, "d", None, &[0; 11]).code,
            Code::REQUEST_ENTITY_TOO_LARGE
        );
    }
}
