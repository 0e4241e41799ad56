//! A socket abuse harness for servers under test (`qossim broker` in
//! tests/broker_cli.rs, the library's `BrokerDriver` in
//! tests/broker_driver_abuse.rs, `qossim coap-server` in
//! tests/coap_server_abuse.rs; reusable for any TCP or UDP server): raw
//! MQTT 3.1.1 clients built byte by byte, connections that must be closed
//! within a bound, a flood of random bytes over many TCP connections or
//! UDP source ports, QoS 2 publishes never released, a one-byte-at-a-time
//! trickle, a steady QoS 1 publisher and its subscriber (the well-behaved
//! pair that must be served throughout), raw CoAP requests and a steady
//! CoAP GET client, and the (peak) memory of a process.
//!
//! Every wait is bounded; nothing here can hang a test.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// The library's stoppable thread (what `BrokerThread` and `GatewayThread`
// run on): stopped and joined when dropped.
use qossim::proto::driver::Worker;

/// MQTT's variable-length integer (§2.2.3).
pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            return;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A 3.1.1 CONNECT: clean session, keep alive `keep_alive` s.
pub fn connect_packet(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    string(client_id, &mut body);
    let mut p = vec![0x10];
    varint(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

/// A PUBLISH (`pid` ignored for QoS 0).
pub fn publish_packet(topic: &str, payload: &[u8], qos: u8, pid: u16, retain: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    string(topic, &mut body);
    if qos > 0 {
        body.extend_from_slice(&pid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let mut p = vec![0x30 | (qos << 1) | u8::from(retain)];
    varint(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

/// A SUBSCRIBE of one filter.
pub fn subscribe_packet(pid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    string(filter, &mut body);
    body.push(qos);
    let mut p = vec![0x82];
    varint(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

/// Read one whole packet (fixed header and body) from `s`.
pub fn read_packet(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut p = vec![0u8; 1];
    s.read_exact(&mut p)?;
    let mut len = 0usize;
    let mut mult = 1usize;
    for _ in 0..4 {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        p.push(b[0]);
        len += usize::from(b[0] & 0x7f) * mult;
        mult *= 128;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let start = p.len();
    p.resize(start + len, 0);
    s.read_exact(&mut p[start..])?;
    Ok(p)
}

/// A TCP connection to `addr` that has sent CONNECT and read CONNACK 0
/// (reads time out after 10 s).
pub fn mqtt_connect(addr: SocketAddrV4, client_id: &str) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(&connect_packet(client_id, 0)).expect("CONNECT");
    let connack = read_packet(&mut s).expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK for {client_id}");
    s
}

/// [`mqtt_connect`] and SUBSCRIBE `filter` at `qos`, SUBACK checked.
pub fn mqtt_subscriber(addr: SocketAddrV4, client_id: &str, filter: &str, qos: u8) -> TcpStream {
    let mut s = mqtt_connect(addr, client_id);
    s.write_all(&subscribe_packet(1, filter, qos))
        .expect("SUBSCRIBE");
    let suback = read_packet(&mut s).expect("SUBACK");
    assert_eq!(
        suback,
        [0x90, 0x03, 0x00, 0x01, qos],
        "SUBACK for {client_id}"
    );
    s
}

/// How the peer ended a connection we only read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// EOF or reset after this long (bytes read meanwhile are discarded).
    Closed(Duration),
    /// Still open when the limit passed.
    StillOpen,
}

/// Read (and discard) from `s` until the peer closes it, for at most
/// `limit`.
pub fn wait_closed(s: &mut TcpStream, limit: Duration) -> Ending {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ending::StillOpen;
        }
        let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        match s.read(&mut buf) {
            Ok(0) => return Ending::Closed(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ending::Closed(start.elapsed()),
        }
    }
}

/// A small deterministic generator (xorshift64*) for the flood's bytes.
pub struct Junk(u64);

impl Junk {
    pub fn new(seed: u64) -> Self {
        Junk(seed | 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// What [`random_flood`] did.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    /// Bytes the sockets took (`write` returned them).
    pub bytes: u64,
    /// Connections opened.
    pub connections: u64,
    /// Connection attempts that failed (refused, timed out).
    pub connect_failures: u64,
    pub elapsed: Duration,
}

/// Send `total` random bytes to `addr` from `threads` threads, each
/// opening connection after connection and writing up to `per_conn` bytes
/// (in chunks of at most 64 KiB) on each, until the server closes it (a
/// server that validates input closes each one soon) or `per_conn` is
/// reached. Stops at `total` bytes or after `limit`.
pub fn random_flood(
    addr: SocketAddrV4,
    total: u64,
    per_conn: u64,
    threads: usize,
    limit: Duration,
) -> FloodReport {
    let sent = Arc::new(AtomicU64::new(0));
    let conns = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..threads)
        .map(|t| {
            let (sent, conns, failures) = (sent.clone(), conns.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut junk = Junk::new(0x9e37_79b9_7f4a_7c15 ^ t as u64);
                let mut chunk = vec![0u8; 64 * 1024];
                while sent.load(Ordering::Relaxed) < total && start.elapsed() < limit {
                    let Ok(mut s) =
                        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))
                    else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    conns.fetch_add(1, Ordering::Relaxed);
                    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                    let mut this = 0u64;
                    while this < per_conn
                        && sent.load(Ordering::Relaxed) < total
                        && start.elapsed() < limit
                    {
                        junk.fill(&mut chunk);
                        let n = chunk.len().min((per_conn - this) as usize);
                        match s.write(&chunk[..n]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                this += n as u64;
                                sent.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("flood thread");
    }
    FloodReport {
        bytes: sent.load(Ordering::Relaxed),
        connections: conns.load(Ordering::Relaxed),
        connect_failures: failures.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// A raw QoS 1 publisher on its own thread: one PUBLISH to `topic` every
/// `interval` (payload "N", N counting from 0), each PUBACK awaited (at
/// most 5 s), until stopped.
pub struct SteadyPublisher {
    worker: Worker<Result<u64, String>>,
}

impl SteadyPublisher {
    pub fn start(addr: SocketAddrV4, client_id: &str, topic: &str, interval: Duration) -> Self {
        let (client_id, topic) = (client_id.to_string(), topic.to_string());
        let worker = Worker::spawn(move |flag| {
            let mut s = mqtt_connect(addr, &client_id);
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            let mut n: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let pid = (n % 65_535) as u16 + 1;
                s.write_all(&publish_packet(
                    &topic,
                    n.to_string().as_bytes(),
                    1,
                    pid,
                    false,
                ))
                .map_err(|e| format!("PUBLISH {n}: {e}"))?;
                let ack = read_packet(&mut s).map_err(|e| format!("PUBACK {n}: {e}"))?;
                let [hi, lo] = pid.to_be_bytes();
                if ack != [0x40, 0x02, hi, lo] {
                    return Err(format!("PUBACK {n}: got {ack:02x?}"));
                }
                n += 1;
                std::thread::sleep(interval);
            }
            Ok(n)
        });
        SteadyPublisher { worker }
    }

    /// Stop; the number of messages published and acknowledged, or what
    /// went wrong.
    pub fn stop(self) -> Result<u64, String> {
        self.worker
            .stop()
            .unwrap_or_else(|| Err("publisher panicked".into()))
    }
}

/// Peak resident memory (VmHWM) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    vm_kib(pid, "VmHWM")
}

/// A memory field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …), in KiB.
pub fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Send at least `total` bytes of random datagrams (`min_len..=max_len`
/// bytes each) to `addr` from `ports` UDP sockets, each on its own source
/// port, opened one after another by `threads` threads, every socket
/// sending its share (`total / ports`, rounded up), at most `rate` bytes a
/// second in all (so the server reads them rather than the kernel dropping
/// them). Stops early only after `limit`. `connections` in the report
/// counts the sockets used, `connect_failures` the sends that failed.
pub fn udp_flood(
    addr: SocketAddrV4,
    total: u64,
    ports: usize,
    threads: usize,
    (min_len, max_len): (usize, usize),
    rate: u64,
    limit: Duration,
) -> FloodReport {
    let sent = Arc::new(AtomicU64::new(0));
    let socks = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let per_port = total.div_ceil(ports.max(1) as u64);
    let per_thread_rate = (rate / threads.max(1) as u64).max(1);
    let handles: Vec<JoinHandle<()>> = (0..threads)
        .map(|t| {
            let (sent, socks, failures) = (sent.clone(), socks.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut junk = Junk::new(0x51_7cc1_b727_220a ^ t as u64);
                let mut buf = vec![0u8; max_len];
                let mut len_pick = [0u8; 8];
                let mut mine = 0u64;
                for _ in (t..ports).step_by(threads) {
                    if start.elapsed() >= limit {
                        break;
                    }
                    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    socks.fetch_add(1, Ordering::Relaxed);
                    let mut this = 0u64;
                    while this < per_port && start.elapsed() < limit {
                        let due = start.elapsed().as_secs_f64() * per_thread_rate as f64;
                        if mine as f64 > due {
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        junk.fill(&mut len_pick);
                        let span = (max_len - min_len + 1) as u64;
                        let n = min_len + (u64::from_le_bytes(len_pick) % span) as usize;
                        junk.fill(&mut buf[..n]);
                        match s.send_to(&buf[..n], addr) {
                            Ok(n) => {
                                this += n as u64;
                                mine += n as u64;
                                sent.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("flood thread");
    }
    FloodReport {
        bytes: sent.load(Ordering::Relaxed),
        connections: socks.load(Ordering::Relaxed),
        connect_failures: failures.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// One option nibble and its extended bytes (RFC 7252 §3.1).
fn coap_nibble(v: usize, ext: &mut Vec<u8>) -> u8 {
    match v {
        0..=12 => v as u8,
        13..=268 => {
            ext.push((v - 13) as u8);
            13
        }
        _ => {
            ext.extend_from_slice(&((v - 269) as u16).to_be_bytes());
            14
        }
    }
}

/// A CoAP request built byte by byte (RFC 7252 §3): CON or NON, `code`
/// (1 GET, 2 POST, 3 PUT, 4 DELETE), `options` as (number, value) in
/// ascending order, the Uri-Path segments of `path` added in place.
pub fn coap_request(
    con: bool,
    code: u8,
    mid: u16,
    token: &[u8],
    path: &str,
    options: &[(u16, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    let ty = if con { 0 } else { 1 };
    let mut m = vec![0x40 | (ty << 4) | token.len() as u8, code];
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(token);
    let mut opts: Vec<(u16, &[u8])> = options.to_vec();
    opts.extend(
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(|s| (11, s.as_bytes())),
    );
    opts.sort_by_key(|o| o.0);
    let mut prev = 0;
    for (n, v) in opts {
        let mut ext = Vec::new();
        let d = coap_nibble(usize::from(n - prev), &mut ext);
        let l = coap_nibble(v.len(), &mut ext);
        m.push((d << 4) | l);
        m.extend_from_slice(&ext);
        m.extend_from_slice(v);
        prev = n;
    }
    if !payload.is_empty() {
        m.push(0xff);
        m.extend_from_slice(payload);
    }
    m
}

/// The (type, code, message ID) of a CoAP datagram, when it has a header.
pub fn coap_header(d: &[u8]) -> Option<(u8, u8, u16)> {
    let h = d.get(..4)?;
    Some(((h[0] >> 4) & 3, h[1], u16::from_be_bytes([h[2], h[3]])))
}

/// The payload of a CoAP datagram (after the 0xFF marker; options are
/// skipped by their lengths), empty when it has none.
pub fn coap_payload(d: &[u8]) -> &[u8] {
    let mut i = 4 + usize::from(d.first().map_or(0, |b| b & 0x0f));
    while let Some(&b) = d.get(i) {
        if b == 0xff {
            return d.get(i + 1..).unwrap_or(&[]);
        }
        let mut j = i + 1;
        let mut ext = |nib: u8| match nib {
            13 => {
                let v = usize::from(*d.get(j).unwrap_or(&0)) + 13;
                j += 1;
                v
            }
            14 => {
                let v = usize::from(u16::from_be_bytes([
                    *d.get(j).unwrap_or(&0),
                    *d.get(j + 1).unwrap_or(&0),
                ])) + 269;
                j += 2;
                v
            }
            n => usize::from(n),
        };
        ext(b >> 4);
        let len = ext(b & 0x0f);
        i = j + len;
    }
    &[]
}

/// A CoAP client on its own thread: a CON GET of `path` every `interval`
/// (a new message ID each), each awaiting its piggybacked answer (at most
/// `patience`; a GET left unanswered counts as lost), until stopped.
pub struct SteadyCoapClient {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<CoapClientReport, String>>>,
}

/// What a [`SteadyCoapClient`] saw.
#[derive(Debug, Clone)]
pub struct CoapClientReport {
    pub sent: u64,
    /// GETs answered 2.05 with the expected payload.
    pub answered: u64,
    /// Longest time between two answers (from the start to the first,
    /// and from the last to the stop, included).
    pub longest_gap: Duration,
}

impl SteadyCoapClient {
    pub fn start(
        addr: SocketAddrV4,
        path: &str,
        expect: &[u8],
        interval: Duration,
        patience: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (path, expect) = (path.to_string(), expect.to_vec());
        let handle = std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let mut r = CoapClientReport {
                sent: 0,
                answered: 0,
                longest_gap: Duration::ZERO,
            };
            let mut last = Instant::now();
            let mut buf = vec![0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let mid = (r.sent % 65_536) as u16;
                let req = coap_request(true, 1, mid, &mid.to_be_bytes(), &path, &[], &[]);
                s.send_to(&req, addr).map_err(|e| format!("send: {e}"))?;
                r.sent += 1;
                let asked = Instant::now();
                while asked.elapsed() < patience {
                    let left = patience.saturating_sub(asked.elapsed());
                    let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
                    let Ok((n, _)) = s.recv_from(&mut buf) else {
                        continue;
                    };
                    let d = &buf[..n];
                    if coap_header(d) == Some((2, 0x45, mid)) && coap_payload(d) == expect {
                        let now = Instant::now();
                        r.longest_gap = r.longest_gap.max(now - last);
                        last = now;
                        r.answered += 1;
                        break;
                    }
                }
                std::thread::sleep(interval);
            }
            r.longest_gap = r.longest_gap.max(last.elapsed());
            Ok(r)
        });
        SteadyCoapClient {
            stop,
            handle: Some(handle),
        }
    }

    /// Stop; what it saw, or what went wrong.
    pub fn stop(mut self) -> Result<CoapClientReport, String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| Err("client panicked".into())),
            None => Err("already stopped".into()),
        }
    }
}

impl Drop for SteadyCoapClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Reset this process's peak resident memory (VmHWM) to its current
/// resident memory (`/proc/self/clear_refs`, value 5; Linux ≥ 4.0), so a
/// test binary running several abuse cases one after another measures
/// the peak of each. The resident memory then (KiB).
pub fn reset_peak_rss() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (/proc/self/clear_refs)");
    vm_kib(std::process::id(), "VmRSS").expect("VmRSS")
}

/// Set `s`'s kernel receive buffer (SO_RCVBUF; the kernel doubles it and
/// stops tuning it), so a peer that stops reading fills it after a known
/// few bytes. The size the kernel reports back.
pub fn set_recv_buffer(s: &TcpStream, bytes: usize) -> usize {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).expect("buffer size");
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let mut got: libc::c_int = 0;
    let mut got_len = len;
    // SAFETY: setsockopt/getsockopt on a socket `s` owns, with pointers to
    // live `c_int`s and their true length.
    let (rc, rc2) = unsafe {
        let rc = libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            len,
        );
        let rc2 = libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut got_len,
        );
        (rc, rc2)
    };
    assert!(rc == 0 && rc2 == 0, "SO_RCVBUF");
    usize::try_from(got).unwrap_or(0)
}

/// The most a loopback TCP connection's sender may hold in its kernel send
/// buffer (`net.ipv4.tcp_wmem`'s maximum), bytes.
pub fn tcp_wmem_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// One whole MQTT packet at the start of `buf`: the packet and its
/// length, or `None` while it is incomplete.
pub fn split_packet(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut len = 0usize;
    let mut mult = 1usize;
    for i in 1..5 {
        let b = *buf.get(i)?;
        len += usize::from(b & 0x7f) * mult;
        mult *= 128;
        if b & 0x80 == 0 {
            let end = i + 1 + len;
            return buf.get(..end).map(|p| (p.to_vec(), end));
        }
    }
    None
}

/// The number a [`SteadyPublisher`] message carries (a QoS 0 PUBLISH
/// whose payload is "N").
fn steady_counter(p: &[u8]) -> Result<u64, String> {
    let bad = || format!("not a steady message: {p:02x?}");
    if p.first().map(|b| b & 0xf6) != Some(0x30) {
        return Err(bad());
    }
    let mut i = 1;
    while p.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
    }
    let tlen = usize::from(u16::from_be_bytes([
        *p.get(i + 1).ok_or_else(bad)?,
        *p.get(i + 2).ok_or_else(bad)?,
    ]));
    let payload = p.get(i + 3 + tlen..).ok_or_else(bad)?;
    std::str::from_utf8(payload)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(bad)
}

/// A raw QoS 0 subscriber on its own thread that records when each
/// message of a [`SteadyPublisher`] (payload "N") arrives, until stopped.
pub struct SteadySubscriber {
    count: Arc<AtomicU64>,
    worker: Worker<Result<Vec<(Instant, u64)>, String>>,
}

impl SteadySubscriber {
    /// Connected and subscribed (SUBACK read) before this returns.
    pub fn start(addr: SocketAddrV4, client_id: &str, topic: &str) -> Self {
        let mut s = mqtt_subscriber(addr, client_id, topic, 0);
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let worker = Worker::spawn(move |flag| {
            let mut got = Vec::new();
            let mut buf: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                match s.read(&mut chunk) {
                    Ok(0) => return Err(format!("closed after {} messages", got.len())),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Err(format!("after {} messages: {e}", got.len())),
                }
                while let Some((p, used)) = split_packet(&buf) {
                    got.push((Instant::now(), steady_counter(&p)?));
                    counter.fetch_add(1, Ordering::Relaxed);
                    buf.drain(..used);
                }
            }
            Ok(got)
        });
        SteadySubscriber { count, worker }
    }

    /// Stop once `expected` messages came (waiting at most 5 s for them);
    /// when each came, and its number.
    pub fn stop(self, expected: u64) -> Result<Vec<(Instant, u64)>, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.worker
            .stop()
            .unwrap_or_else(|| Err("subscriber panicked".into()))
    }
}

/// The longest wait between `from`, the instants in `times` that fall
/// between `from` and `to`, and `to`: how long a client went without a
/// message while the server was abused.
pub fn longest_gap(
    times: impl IntoIterator<Item = Instant>,
    from: Instant,
    to: Instant,
) -> Duration {
    let mut edges = vec![from];
    edges.extend(times.into_iter().filter(|t| *t >= from && *t <= to));
    edges.push(to);
    edges
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// A well-behaved pair served throughout an abuse case: a
/// [`SteadyPublisher`] (QoS 1, every 20 ms) and a [`SteadySubscriber`] of
/// its topic.
pub struct SteadyPair {
    publisher: SteadyPublisher,
    subscriber: SteadySubscriber,
}

/// What the pair saw.
#[derive(Debug)]
pub struct PairReport {
    /// Messages published and acknowledged.
    pub published: u64,
    /// Each delivered exactly once, in order.
    pub in_order: bool,
    /// The longest the subscriber went without a message between `from`
    /// and `to` (see [`SteadyPair::finish`]).
    pub longest_gap: Duration,
}

impl SteadyPair {
    /// Subscriber `<tag>-steady-sub` and publisher `<tag>-steady-pub` on
    /// topic `<tag>/steady`.
    pub fn start(addr: SocketAddrV4, tag: &str) -> Self {
        let topic = format!("{tag}/steady");
        let subscriber = SteadySubscriber::start(addr, &format!("{tag}-steady-sub"), &topic);
        let publisher = SteadyPublisher::start(
            addr,
            &format!("{tag}-steady-pub"),
            &topic,
            Duration::from_millis(20),
        );
        SteadyPair {
            publisher,
            subscriber,
        }
    }

    /// Stop both; panics if either failed (a PUBACK not within 5 s, the
    /// subscriber's connection lost). The gap is measured from `from` to
    /// `to` (the abuse's start and end).
    pub fn finish(self, from: Instant, to: Instant) -> PairReport {
        let published = self
            .publisher
            .stop()
            .expect("the steady publisher was served");
        let got = self
            .subscriber
            .stop(published)
            .expect("the steady subscriber was served");
        let numbers: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
        PairReport {
            published,
            in_order: numbers == (0..published).collect::<Vec<_>>(),
            longest_gap: longest_gap(got.iter().map(|(t, _)| *t), from, to),
        }
    }
}

/// What [`qos2_unreleased`] saw.
#[derive(Debug)]
pub struct Qos2Flood {
    /// PUBRECs read.
    pub pubrecs: u64,
    /// The server closed the connection.
    pub closed: bool,
    /// The connection, kept open so the server keeps holding the messages.
    pub stream: TcpStream,
}

/// Connect as `client_id` and send `n` (≤ 65 535) QoS 2 PUBLISHes to
/// `topic` (packet ids 1..=n, `payload` bytes each) without ever sending
/// PUBREL; read the PUBRECs (until `n`, the server closes, or 5 s pass
/// without one).
pub fn qos2_unreleased(
    addr: SocketAddrV4,
    client_id: &str,
    topic: &str,
    n: u16,
    payload: usize,
) -> Qos2Flood {
    let mut s = mqtt_connect(addr, client_id);
    let body = vec![0xa5; payload];
    let mut batch = Vec::new();
    for pid in 1..=n {
        batch.extend_from_slice(&publish_packet(topic, &body, 2, pid, false));
        if batch.len() > 64 * 1024 || pid == n {
            if s.write_all(&batch).is_err() {
                break;
            }
            batch.clear();
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut pubrecs = 0u64;
    let mut closed = false;
    while pubrecs < u64::from(n) {
        match read_packet(&mut s) {
            Ok(p) if p.first() == Some(&0x50) => pubrecs += 1,
            Ok(p) => panic!("{client_id}: expected PUBREC, got {p:02x?}"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    Qos2Flood {
        pubrecs,
        closed,
        stream: s,
    }
}

/// How a [`trickle`] connection ended.
#[derive(Debug)]
pub struct TrickleReport {
    /// Bytes written (one per interval) before the end.
    pub written: usize,
    /// What the server sent back.
    pub reply: Vec<u8>,
    /// Closed by the server after this long, or still open at the limit.
    pub ending: Ending,
}

/// Open a connection to `addr`, write `prefix` at once, then `bytes` one
/// at a time, one every `interval` (reading whatever the server sends
/// meanwhile), then keep reading until the server closes it or `limit`
/// (from the start) passes. Runs on its own thread; join the handle for
/// the report.
pub fn trickle(
    addr: SocketAddrV4,
    prefix: Vec<u8>,
    bytes: Vec<u8>,
    interval: Duration,
    limit: Duration,
) -> JoinHandle<TrickleReport> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut s =
            TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.write_all(&prefix).expect("prefix");
        let mut report = TrickleReport {
            written: 0,
            reply: Vec::new(),
            ending: Ending::StillOpen,
        };
        let mut next = start;
        let mut buf = [0u8; 1024];
        loop {
            if report.written < bytes.len() && Instant::now() >= next {
                if s.write_all(&bytes[report.written..=report.written])
                    .is_err()
                {
                    report.ending = Ending::Closed(start.elapsed());
                    return report;
                }
                report.written += 1;
                next += interval;
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return report;
            }
            let wait = if report.written < bytes.len() {
                next.saturating_duration_since(Instant::now())
            } else {
                left
            };
            let _ = s.set_read_timeout(Some(wait.clamp(Duration::from_millis(1), left)));
            match s.read(&mut buf) {
                Ok(0) => {
                    report.ending = Ending::Closed(start.elapsed());
                    return report;
                }
                Ok(n) => report.reply.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    report.ending = Ending::Closed(start.elapsed());
                    return report;
                }
            }
        }
    })
}
