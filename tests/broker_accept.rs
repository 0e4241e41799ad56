//! The real-socket broker survives `accept` failures (hardening issue,
//! defect 3): with the process out of file descriptors, a connection
//! waiting in the backlog makes `accept` fail with EMFILE. The broker
//! thread must count it, back off and keep serving, and take the
//! connection once descriptors are free again — before the fix the error
//! ended the broker thread.
//!
//! Its own test binary: it lowers this process's descriptor limit, which
//! would disturb tests running beside it.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

use qossim::proto::mqtt::socket::BrokerDriver;
use qossim::proto::mqtt::{Broker, BrokerConfig};
use qossim::sim::SimTime;

/// MQTT 3.1.1 CONNECT, client id "a", keep-alive 60 s, clean session.
const CONNECT: [u8; 15] = [
    0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, b'a',
];
const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    assert_eq!(rc, 0, "getrlimit");
    r
}

fn set_nofile(r: &libc::rlimit) {
    // SAFETY: setrlimit reads the struct it is given.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, r) };
    assert_eq!(rc, 0, "setrlimit");
}

/// Open /dev/null until the process has no descriptor left.
fn exhaust_descriptors() -> Vec<File> {
    let mut hoard = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => hoard.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return hoard;
            }
        }
        assert!(hoard.len() < 100_000, "the lowered limit did not apply");
    }
}

#[test]
fn broker_survives_running_out_of_descriptors() {
    let broker = Broker::new(BrokerConfig::default(), SimTime::ZERO);
    let driver =
        BrokerDriver::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), broker).expect("bind broker");
    let addr = driver.local_addr();
    let thread = driver.spawn();

    let saved = nofile();
    set_nofile(&libc::rlimit {
        rlim_cur: 256.min(saved.rlim_max),
        rlim_max: saved.rlim_max,
    });
    let mut hoard = exhaust_descriptors();
    // one descriptor for our end of the connection: the broker's accept
    // then finds none for its end
    drop(hoard.pop());
    let mut client = TcpStream::connect(addr).expect("connect (backlog)");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.write_all(&CONNECT).expect("send CONNECT");
    // several failed accepts (each followed by the back-off) while the
    // process stays out of descriptors
    std::thread::sleep(Duration::from_millis(300));
    let mut probe = [0u8; 4];
    client
        .set_nonblocking(true)
        .expect("nonblocking for the probe");
    match client.read(&mut probe) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("no CONNACK can come before the broker accepts: {other:?}"),
    }
    client.set_nonblocking(false).expect("blocking again");

    drop(hoard);
    set_nofile(&saved);
    let mut connack = [0u8; 4];
    client
        .read_exact(&mut connack)
        .expect("CONNACK once descriptors are free: the broker kept running");
    assert_eq!(connack, CONNACK_OK);

    let driver = thread.stop().expect("broker thread ended cleanly");
    assert!(
        driver.accept_errors() >= 1,
        "the EMFILE accept was counted ({})",
        driver.accept_errors()
    );
}
