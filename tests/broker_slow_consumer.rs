//! The real-socket broker bounds what it buffers for a subscriber that
//! stops reading (hardening issue, defect 4): under a QoS 0 flood the
//! subscriber is disconnected once more than the bound waits for it, the
//! publisher keeps being served, and the process's peak memory stays far
//! below the flood's size. Before the bound the broker buffered the whole
//! flood (266 MB in the audit).
//!
//! Its own test binary: it reads the process's peak RSS.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use qossim::proto::mqtt::socket::{BrokerDriver, DEFAULT_MAX_OUT_BYTES};
use qossim::proto::mqtt::{Broker, BrokerConfig};
use qossim::sim::SimTime;

const PAYLOAD: usize = 16 * 1024;
/// 96 MiB of QoS 0 publishes to the subscriber that does not read.
const FLOOD: usize = 6 * 1024;

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            return;
        }
    }
}

fn connect(addr: SocketAddrV4, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut p = vec![0x10];
    let body_len = 10 + 2 + id.len();
    varint(body_len, &mut p);
    p.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00]);
    p.extend_from_slice(&(id.len() as u16).to_be_bytes());
    p.extend_from_slice(id.as_bytes());
    s.write_all(&p).expect("CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    s
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_not_buffered_for() {
    let broker = Broker::new(BrokerConfig::default(), SimTime::ZERO);
    let driver =
        BrokerDriver::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), broker).expect("bind broker");
    let addr = driver.local_addr();
    let thread = driver.spawn();

    let mut sub = connect(addr, "s");
    sub.write_all(&[
        0x82, 0x0a, 0x00, 0x01, 0x00, 0x05, b'f', b'l', b'o', b'o', b'd', 0x00,
    ])
    .expect("SUBSCRIBE");
    let mut suback = [0u8; 5];
    sub.read_exact(&mut suback).expect("SUBACK");
    assert_eq!(suback, [0x90, 0x03, 0x00, 0x01, 0x00]);
    // from here on the subscriber reads nothing

    let mut publisher = connect(addr, "p");
    let mut publish = vec![0x30];
    varint(2 + 5 + PAYLOAD, &mut publish);
    publish.extend_from_slice(&[0x00, 0x05, b'f', b'l', b'o', b'o', b'd']);
    publish.resize(publish.len() + PAYLOAD, 0x5a);
    for _ in 0..FLOOD {
        publisher
            .write_all(&publish)
            .expect("the broker keeps reading");
    }
    // the publisher is still served
    publisher.write_all(&[0xc0, 0x00]).expect("PINGREQ");
    let mut pingresp = [0u8; 2];
    publisher.read_exact(&mut pingresp).expect("PINGRESP");
    assert_eq!(pingresp, [0xd0, 0x00]);

    // the subscriber's connection was closed: what the kernel held comes
    // out, then the end of the stream
    let start = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match sub.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("subscriber not disconnected after {got} bytes: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "still open");
    }
    let flood_bytes = FLOOD * publish.len();
    assert!(
        got < flood_bytes / 2,
        "the subscriber got {got} of {flood_bytes} bytes: it was not cut off"
    );

    let driver = thread.stop().expect("broker thread ended cleanly");
    assert_eq!(driver.slow_consumers_closed(), 1);
    let peak_mb = peak_rss_kb() / 1024;
    // the test's own buffers are a few MB; the bound is 4 MiB per
    // connection plus kernel buffers; the flood is 96 MiB
    assert!(
        peak_mb < 48,
        "peak RSS {peak_mb} MB (bound {} MiB per connection)",
        DEFAULT_MAX_OUT_BYTES >> 20
    );
}
