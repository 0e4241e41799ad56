//! Socket abuse of the library's real-socket broker (`BrokerDriver` on its
//! own thread, `BrokerThread`), on loopback, bounded (issue 19): 1,000
//! connections, CONNECT and PUBLISH headers announcing 256 MB, 10⁴ QoS 2
//! publishes never released, a subscriber that stops reading under a QoS
//! 0 flood, a one-byte-per-second trickle. In every case a well-behaved
//! publisher/subscriber pair (tests/common/abuse.rs `SteadyPair`) keeps
//! being served, and this process's peak memory above the start of the
//! case stays under the case's stated bound (VmHWM from /proc/self/status,
//! reset at the start of each case through /proc/self/clear_refs).
//!
//! Also the non-blocking close (defect 4): a connection the broker closes
//! while megabytes of its output are still unwritten (its peer stopped
//! reading) does not freeze the other clients while those last bytes wait.
//!
//! Each memory case runs in a child process of this test binary (its own
//! memory, nothing left over from another case in the allocator), one
//! case at a time.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use qossim::proto::mqtt::socket::{BrokerDriver, BrokerThread};
use qossim::proto::mqtt::{Broker, BrokerConfig};
use qossim::sim::{SimDuration, SimTime};

mod common;

use common::abuse::{
    connect_packet, mqtt_connect, mqtt_subscriber, publish_packet, qos2_unreleased, read_packet,
    reset_peak_rss, set_recv_buffer, tcp_wmem_max, trickle, varint, vm_kib, wait_closed, Ending,
    Junk, SteadyPair,
};
use common::peers::LOCALHOST;

/// One case at a time (each measures time and memory).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set in the child process that runs one case.
const CASE_ENV: &str = "QOSSIM_BROKER_ABUSE_CASE";

/// Run `case` (the test named `name`) in a child process of this test
/// binary, so the memory it measures is its own; fail when it fails.
fn isolated(name: &str, case: fn()) {
    if std::env::var(CASE_ENV).as_deref() == Ok(name) {
        return case();
    }
    let _serial = serial();
    let exe = std::env::current_exe().expect("this test binary");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CASE_ENV, name)
        .output()
        .expect("run the case's child process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Vec<&str> = text.lines().filter(|l| l.contains("VmHWM")).collect();
    eprintln!("{}", report.join("\n"));
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "case {name} failed:\n{text}"
    );
}

const PINGREQ: [u8; 2] = [0xc0, 0x00];
const PINGRESP: [u8; 2] = [0xd0, 0x00];

/// A broker on its own thread with the well-behaved pair running.
struct Case {
    name: &'static str,
    broker: BrokerThread,
    addr: SocketAddrV4,
    pair: SteadyPair,
    rss0: u64,
    from: Instant,
}

fn start(name: &'static str, config: BrokerConfig, tune: impl FnOnce(&mut BrokerDriver)) -> Case {
    let mut d = BrokerDriver::bind(
        SocketAddrV4::new(LOCALHOST, 0),
        Broker::new(config, SimTime::ZERO),
    )
    .expect("bind broker");
    tune(&mut d);
    let broker = d.spawn();
    let addr = broker.local_addr();
    let pair = SteadyPair::start(addr, name);
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = reset_peak_rss();
    Case {
        name,
        broker,
        addr,
        pair,
        rss0,
        from: Instant::now(),
    }
}

impl Case {
    /// The abuse is over: the pair was served throughout (every message
    /// delivered in order, no wait over 2 s), and the peak memory since the
    /// start stayed under `bound_mib` above the resident memory then. The
    /// broker, stopped.
    fn finish(self, bound_mib: u64) -> BrokerDriver {
        let to = Instant::now();
        let peak = vm_kib(std::process::id(), "VmHWM").expect("VmHWM");
        let report = self.pair.finish(self.from, to);
        let grew = peak.saturating_sub(self.rss0);
        eprintln!(
            "{}: {:.1} s; pair {} messages, longest gap {:?}; VmRSS at start {} KiB, \
             VmHWM {} KiB (+{} KiB; bound +{} MiB)",
            self.name,
            to.duration_since(self.from).as_secs_f64(),
            report.published,
            report.longest_gap,
            self.rss0,
            peak,
            grew,
            bound_mib
        );
        assert!(report.in_order, "{}: {report:?}", self.name);
        assert!(report.published >= 5, "{}: {report:?}", self.name);
        assert!(
            report.longest_gap < Duration::from_secs(2),
            "{}: {report:?}",
            self.name
        );
        assert!(
            grew < bound_mib * 1024,
            "{}: peak memory grew by {grew} KiB, bound {bound_mib} MiB",
            self.name
        );
        self.broker
            .stop()
            .expect("the broker thread ran to the end")
    }
}

/// Per connection the broker holds a socket, a small `ConnIo`, a session
/// and its client id (under 1 KiB; the kernel's socket buffers are not
/// the process's); the test holds the other end. 1,000 of them: 0.7 MiB
/// measured.
const CONNECTIONS_BOUND_MIB: u64 = 8;

#[test]
fn a_thousand_connections_are_all_served() {
    isolated(
        "a_thousand_connections_are_all_served",
        a_thousand_connections_are_all_served_case,
    );
}

fn a_thousand_connections_are_all_served_case() {
    let c = start("conns", BrokerConfig::default(), |_| {});
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|i| mqtt_connect(c.addr, &format!("many-{i}")))
        .collect();
    // every one of them is served: a PINGREQ on each, then the answers
    for s in &mut conns {
        s.write_all(&PINGREQ).expect("PINGREQ");
    }
    for s in &mut conns {
        assert_eq!(read_packet(s).expect("PINGRESP"), PINGRESP);
    }
    let d = c.finish(CONNECTIONS_BOUND_MIB);
    let st = d.server_stats();
    assert!(st.peak_connections >= 1002, "{st:?}");
    assert_eq!(d.core().stats().connects_accepted, 1002);
}

/// Nothing of an announced 256 MB packet is buffered (the header closes
/// the connection): the bound is the read buffers of the connections.
const ANNOUNCED_BOUND_MIB: u64 = 8;

/// The largest Remaining Length MQTT can say: 268,435,455 (256 MB).
const MAX_REMAINING: usize = 268_435_455;

#[test]
fn headers_announcing_256_mb_close_only_their_connection() {
    isolated(
        "headers_announcing_256_mb_close_only_their_connection",
        headers_announcing_256_mb_close_only_their_connection_case,
    );
}

fn headers_announcing_256_mb_close_only_their_connection_case() {
    let c = start("huge", BrokerConfig::default(), |_| {});
    let mut junk = Junk::new(256);
    let mut body = vec![0u8; 256 * 1024];
    let mut doomed = Vec::new();
    // 20 CONNECTs announcing 256 MB, and 20 PUBLISHes on connected clients
    for i in 0..40 {
        let (mut s, kind) = if i % 2 == 0 {
            (
                TcpStream::connect(c.addr).expect("connect"),
                0x10, // CONNECT
            )
        } else {
            (mqtt_connect(c.addr, &format!("huge-{i}")), 0x30) // PUBLISH
        };
        let mut header = vec![kind];
        varint(MAX_REMAINING, &mut header);
        s.write_all(&header).expect("header");
        // then the body starts coming; the broker may close at any point
        s.set_write_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        junk.fill(&mut body);
        let _ = s.write_all(&body);
        doomed.push(s);
    }
    for s in &mut doomed {
        match wait_closed(s, Duration::from_secs(5)) {
            Ending::Closed(t) => assert!(t < Duration::from_secs(2), "closed after {t:?}"),
            Ending::StillOpen => panic!("a 256 MB header did not close its connection"),
        }
    }
    let d = c.finish(ANNOUNCED_BOUND_MIB);
    assert_eq!(d.core().stats().protocol_errors, 40);
}

/// 10⁴ held QoS 2 messages of 1 KiB: about 10 MiB of payload plus the
/// broker's record of each (12.6 MiB measured); the refused client's
/// 1,001st is never held.
const QOS2_BOUND_MIB: u64 = 32;

#[test]
fn ten_thousand_unreleased_qos2_publishes_are_held_and_bounded() {
    isolated(
        "ten_thousand_unreleased_qos2_publishes_are_held_and_bounded",
        ten_thousand_unreleased_qos2_publishes_are_held_and_bounded_case,
    );
}

fn ten_thousand_unreleased_qos2_publishes_are_held_and_bounded_case() {
    let c = start("qos2", BrokerConfig::default(), |_| {});
    let max = BrokerConfig::default().max_incoming_qos2;
    assert_eq!(max, 1000, "the case counts on the default bound");
    // 10 clients hold 1,000 each: 10⁴ unreleased
    let held: Vec<_> = (0..10)
        .map(|i| qos2_unreleased(c.addr, &format!("q2-{i}"), "q2/held", 1000, 1024))
        .collect();
    for (i, h) in held.iter().enumerate() {
        assert_eq!((h.pubrecs, h.closed), (1000, false), "client {i}");
    }
    // one more past the bound is closed after its 1,000th PUBREC
    let over = qos2_unreleased(c.addr, "q2-over", "q2/held", 1001, 1024);
    assert_eq!((over.pubrecs, over.closed), (1000, true));
    let d = c.finish(QOS2_BOUND_MIB);
    let held_now: usize = (0..10)
        .map(|i| {
            d.core()
                .session_info(&format!("q2-{i}"))
                .expect("session")
                .incoming_qos2
        })
        .sum();
    assert_eq!(held_now, 10_000);
    assert_eq!(d.core().stats().protocol_errors, 1);
    drop(held);
}

/// The subscriber that stops reading costs at most the per-connection
/// write bound (`DEFAULT_MAX_OUT_BYTES`, 4 MiB; 4.1 MiB measured) before
/// it is closed; the flood (100 MiB) passes through.
const STALLED_BOUND_MIB: u64 = 16;

const FLOOD_PAYLOAD: usize = 16 * 1024;
/// 100 MiB of 16 KiB QoS 0 publishes.
const FLOOD_MESSAGES: usize = 6400;

#[test]
fn a_subscriber_that_stops_reading_under_a_qos0_flood_is_cut_off() {
    isolated(
        "a_subscriber_that_stops_reading_under_a_qos0_flood_is_cut_off",
        a_subscriber_that_stops_reading_under_a_qos0_flood_is_cut_off_case,
    );
}

fn a_subscriber_that_stops_reading_under_a_qos0_flood_is_cut_off_case() {
    let c = start("stall", BrokerConfig::default(), |_| {});
    let mut stalled = mqtt_subscriber(c.addr, "stall-victim", "stall/flood", 0);
    // from here on it reads nothing
    let mut publ = mqtt_connect(c.addr, "stall-flooder");
    let publish = publish_packet("stall/flood", &[0x5a; FLOOD_PAYLOAD], 0, 0, false);
    for _ in 0..FLOOD_MESSAGES {
        publ.write_all(&publish).expect("the broker keeps reading");
    }
    publ.write_all(&PINGREQ).expect("PINGREQ");
    assert_eq!(read_packet(&mut publ).expect("PINGRESP"), PINGRESP);
    match wait_closed(&mut stalled, Duration::from_secs(30)) {
        Ending::Closed(_) => {}
        Ending::StillOpen => panic!("the subscriber that stopped reading is still connected"),
    }
    let d = c.finish(STALLED_BOUND_MIB);
    assert_eq!(d.slow_consumers_closed(), 1);
}

/// A subscriber that reads everything of a 100 MiB flood: what the broker
/// keeps is its connections' buffers (0.4 to 1 MiB measured). A served broker
/// that kept its events (each `Delivered` holding its payload) grew by the
/// whole flood.
const READER_BOUND_MIB: u64 = 16;

#[test]
fn a_reading_subscriber_under_a_qos0_flood_costs_no_memory() {
    isolated(
        "a_reading_subscriber_under_a_qos0_flood_costs_no_memory",
        a_reading_subscriber_under_a_qos0_flood_costs_no_memory_case,
    );
}

fn a_reading_subscriber_under_a_qos0_flood_costs_no_memory_case() {
    let c = start("reader", BrokerConfig::default(), |_| {});
    let mut reader = mqtt_subscriber(c.addr, "reader-drain", "reader/flood", 0);
    let done = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let (flag, count) = (done.clone(), read.clone());
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        reader
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        while !flag.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return false,
            }
        }
        true
    });
    let mut publ = mqtt_connect(c.addr, "reader-flooder");
    let publish = publish_packet("reader/flood", &[0x5a; FLOOD_PAYLOAD], 0, 0, false);
    for i in 0..FLOOD_MESSAGES {
        publ.write_all(&publish).expect("the broker keeps reading");
        // a round trip every 1 MiB: the reader keeps up with the broker
        if i % 64 == 63 {
            publ.write_all(&PINGREQ).expect("PINGREQ");
            assert_eq!(read_packet(&mut publ).expect("PINGRESP"), PINGRESP);
        }
    }
    let want = (FLOOD_MESSAGES * publish.len()) as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while read.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    assert!(
        drain.join().expect("reader thread"),
        "the reading subscriber lost its connection"
    );
    assert_eq!(read.load(Ordering::Relaxed), want, "bytes delivered");
    let d = c.finish(READER_BOUND_MIB);
    assert_eq!(d.slow_consumers_closed(), 0);
    assert!(d.core().stats().publishes_received >= FLOOD_MESSAGES as u64);
}

/// Trickling connections hold a partial packet each: bytes.
const TRICKLE_BOUND_MIB: u64 = 8;

#[test]
fn one_byte_per_second_trickles_do_not_hold_up_others() {
    isolated(
        "one_byte_per_second_trickles_do_not_hold_up_others",
        one_byte_per_second_trickles_do_not_hold_up_others_case,
    );
}

fn one_byte_per_second_trickles_do_not_hold_up_others_case() {
    let config = BrokerConfig {
        connect_timeout: SimDuration::from_secs(2),
        ..BrokerConfig::default()
    };
    let c = start("trickle", config, |_| {});
    let second = Duration::from_secs(1);
    let limit = Duration::from_secs(5);
    // 20 connections trickle a CONNECT: closed by the connect timeout
    let slow_connects: Vec<_> = (0..20)
        .map(|i| {
            trickle(
                c.addr,
                Vec::new(),
                connect_packet(&format!("trickle-{i}"), 0),
                second,
                limit,
            )
        })
        .collect();
    // 5 connected clients trickle a PINGREQ: answered once it is whole
    let slow_pings: Vec<_> = (0..5)
        .map(|i| {
            trickle(
                c.addr,
                connect_packet(&format!("trickle-ping-{i}"), 0),
                PINGREQ.to_vec(),
                second,
                Duration::from_secs(3),
            )
        })
        .collect();
    for t in slow_connects {
        let r = t.join().expect("trickle thread");
        match r.ending {
            Ending::Closed(t) => assert!(
                t > Duration::from_millis(1900) && t < Duration::from_millis(4500),
                "closed after {t:?}; the connect timeout is 2 s: {r:?}"
            ),
            Ending::StillOpen => panic!("a trickled CONNECT outlived the connect timeout: {r:?}"),
        }
        assert!(r.written < 6 && r.reply.is_empty(), "{r:?}");
    }
    for t in slow_pings {
        let r = t.join().expect("trickle thread");
        assert_eq!(r.written, 2, "{r:?}");
        assert_eq!(r.reply, [0x20, 0x02, 0x00, 0x00, 0xd0, 0x00], "{r:?}");
        assert!(matches!(r.ending, Ending::StillOpen), "{r:?}");
    }
    let d = c.finish(TRICKLE_BOUND_MIB);
    assert_eq!(d.core().stats().connect_timeouts, 20);
}

// ---- non-blocking close (defect 4) --------------------------------------

/// How the broker comes to close the stalled connection.
#[derive(Debug, Clone, Copy)]
enum CloseBy {
    /// It sends a packet type no client may send.
    ProtocolViolation,
    /// Another connection CONNECTs with its client id.
    Takeover,
}

/// The other client's round trips stay under this while the close is
/// pending. A close that wrote the last bytes blocking (with the old 2 s
/// write timeout) held every client for 2 s.
const CLOSE_RTT_BOUND: Duration = Duration::from_millis(500);

/// MiB of QoS 0 publishes queued for the stalled subscriber before its
/// close; far more than its socket's and the broker's kernel buffers take.
const STALLED_BACKLOG_MIB: usize = 24;

fn closing_with_unwritten_output_does_not_block_others(by: CloseBy) {
    let _serial = serial();
    let mut d = BrokerDriver::bind(
        SocketAddrV4::new(LOCALHOST, 0),
        Broker::new(BrokerConfig::default(), SimTime::ZERO),
    )
    .expect("bind broker");
    // the backlog must stay below the slow-consumer bound: the connection
    // is to be closed by `by`, not cut off as a slow consumer
    d.set_max_out_bytes((4 * STALLED_BACKLOG_MIB) << 20);
    let broker = d.spawn();
    let addr = broker.local_addr();

    let mut stalled = mqtt_subscriber(addr, "victim", "close/flood", 0);
    let rcvbuf = set_recv_buffer(&stalled, 64 * 1024);
    // from here on the victim reads nothing until after the close
    let mut publ = mqtt_connect(addr, "flooder");
    let publish = publish_packet("close/flood", &[0x5a; 16 * 1024], 0, 0, false);
    for _ in 0..STALLED_BACKLOG_MIB * 64 {
        publ.write_all(&publish).expect("the broker keeps reading");
    }
    publ.write_all(&PINGREQ).expect("PINGREQ");
    assert_eq!(read_packet(&mut publ).expect("PINGRESP"), PINGRESP);
    // the broker has handled the flood: most of it waits in its own
    // buffer for the victim's full socket

    let mut pinger = mqtt_connect(addr, "pinger");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let pings = std::thread::spawn(move || {
        let mut rtts = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            let t = Instant::now();
            pinger.write_all(&PINGREQ).expect("PINGREQ");
            assert_eq!(read_packet(&mut pinger).expect("PINGRESP"), PINGRESP);
            rtts.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        rtts
    });
    std::thread::sleep(Duration::from_millis(100));
    let closed_at = Instant::now();
    let _taker = match by {
        CloseBy::ProtocolViolation => {
            // packet type 0 is reserved: a protocol error, the broker closes
            stalled.write_all(&[0x00, 0x00]).expect("bad packet");
            None
        }
        CloseBy::Takeover => Some(mqtt_connect(addr, "victim")),
    };
    // the broker keeps the victim's last bytes for up to 2 s; look at the
    // other client during the first 1.2 s of that
    std::thread::sleep(Duration::from_millis(1200));
    stop.store(true, Ordering::Relaxed);
    let rtts = pings.join().expect("pinger");
    let worst = rtts.iter().max().copied().unwrap_or_default();

    // now the victim reads: what the broker still held comes, then the end
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    loop {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(
            closed_at.elapsed() < Duration::from_secs(20),
            "never closed"
        );
    }
    let kernel = rcvbuf + tcp_wmem_max();
    eprintln!(
        "close by {by:?}: {} pings during the close, worst round trip {worst:?}; \
         the victim read {got} B after the close (its kernel buffers hold at most {kernel} B)",
        rtts.len()
    );
    assert!(
        worst < CLOSE_RTT_BOUND,
        "another client waited {worst:?} while a connection was being closed"
    );
    assert!(rtts.len() >= 20, "{rtts:?}");
    // the close really was pending with output the kernel had not taken
    assert!(
        got > kernel,
        "the victim read {got} B: the broker held no unwritten output when it closed"
    );
    let d = broker.stop().expect("the broker thread ran to the end");
    let st = d.core().stats();
    match by {
        CloseBy::ProtocolViolation => assert_eq!(st.protocol_errors, 1),
        CloseBy::Takeover => assert_eq!(st.takeovers, 1),
    }
    assert_eq!(d.slow_consumers_closed(), 0);
}

#[test]
fn closing_a_protocol_violator_with_unwritten_output_does_not_block_others() {
    closing_with_unwritten_output_does_not_block_others(CloseBy::ProtocolViolation);
}

#[test]
fn a_takeover_of_a_stalled_connection_does_not_block_others() {
    closing_with_unwritten_output_does_not_block_others(CloseBy::Takeover);
}
