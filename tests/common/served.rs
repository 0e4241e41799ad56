//! `qossim broker` (the real binary) on a free loopback port, for the
//! tests that drive it (tests/broker_cli.rs, tests/broker_cli_v5.rs).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::peers::{free_port, LOCALHOST};

/// The `qossim` binary cargo built for this test crate.
pub const QOSSIM: &str = env!("CARGO_BIN_EXE_qossim");

/// Lines of a child's output as they come, each with when it came.
pub fn line_reader(r: impl Read + Send + 'static) -> Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// `qossim broker` running on a free port; killed when dropped.
pub struct Served {
    pub child: Option<Child>,
    pub addr: SocketAddrV4,
    pub stdout: Receiver<(Instant, String)>,
    pub stderr: Receiver<(Instant, String)>,
    pub log: PathBuf,
}

/// What a stopped broker said.
pub struct Stopped {
    pub status: ExitStatus,
    pub took: Duration,
    pub stdout: String,
}

impl Served {
    /// Start `qossim broker --listen 127.0.0.1:<free> --log <tmp> <extra>`
    /// and wait for its banner.
    pub fn start(tag: &str, extra: &[&str]) -> Served {
        let port = free_port();
        let addr = SocketAddrV4::new(LOCALHOST, port);
        let log = super::temp_dir(tag).join("broker.log");
        let mut child = Command::new(QOSSIM)
            .args(["broker", "--listen", &addr.to_string(), "--log"])
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qossim broker");
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        let served = Served {
            child: Some(child),
            addr,
            stdout,
            stderr,
            log,
        };
        let (_, banner) = served
            .stdout
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no banner; stderr: {}", served.stderr_now()));
        assert!(
            banner.starts_with(&format!("qossim broker: MQTT 3.1.1 and 5.0 on tcp {addr};")),
            "{banner}"
        );
        served
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn stderr_now(&self) -> String {
        self.stderr
            .try_iter()
            .map(|(_, l)| l + "\n")
            .collect::<String>()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (at most 10 s) until the log has a line containing every one
    /// of `parts`.
    pub fn wait_log(&self, parts: &[&str]) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self
                .log_text()
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line with {parts:?}:\n{}", self.log_text());
    }

    /// Send `signal`, wait (at most 10 s) for the exit.
    pub fn stop_with(mut self, signal: libc::c_int) -> Stopped {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid, which we have not waited
        // for yet (so it cannot have been reused).
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("qossim broker still running 10 s after signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        let mut stdout = String::new();
        while let Ok((_, l)) = self.stdout.recv_timeout(Duration::from_secs(2)) {
            stdout.push_str(&l);
            stdout.push('\n');
        }
        Stopped {
            status,
            took,
            stdout,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Served {
    /// The port it listens on, as text (for client command lines).
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }
}
