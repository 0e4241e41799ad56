//! `qossim broker` and `qossim coap-server` (the real binary) on a free
//! loopback port, for the tests that drive them (tests/broker_cli.rs,
//! tests/broker_cli_v5.rs, tests/coap_server_cli.rs,
//! tests/coap_server_abuse.rs).

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

/// A served command running on a free port; killed when dropped.
pub struct Served {
    pub child: Option<Child>,
    pub addr: SocketAddrV4,
    pub stdout: Receiver<(Instant, String)>,
    pub stderr: Receiver<(Instant, String)>,
    pub log: PathBuf,
}

/// What a stopped server said.
pub struct Stopped {
    pub status: ExitStatus,
    pub took: Duration,
    pub stdout: String,
    /// What it wrote on stderr after [`Served::start`] read its banner.
    pub stderr: String,
}

impl Stopped {
    /// The first line of the server's stderr that starts with `prefix` (its
    /// banner or summary); panics showing the whole stderr when none does.
    pub fn summary_line(&self, prefix: &str) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", self.stderr))
    }
}

impl Served {
    /// Start `qossim broker --listen 127.0.0.1:<free> --log <tmp> <extra>`
    /// and wait for its banner.
    pub fn start(tag: &str, extra: &[&str]) -> Served {
        let addr = SocketAddrV4::new(LOCALHOST, free_port());
        let served = Self::spawn("broker", tag, addr, extra);
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

    /// Start `qossim coap-server --listen 127.0.0.1:0 --log <tmp> <extra>`
    /// and read the address it bound from its banner (the first line on
    /// stderr).
    pub fn start_coap(tag: &str, extra: &[&str]) -> Served {
        let mut served = Self::spawn("coap-server", tag, SocketAddrV4::new(LOCALHOST, 0), extra);
        let (_, banner) = served
            .stderr
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let o = served.child.take().and_then(|c| c.wait_with_output().ok());
                panic!("no banner; {o:?}")
            });
        let addr = banner
            .strip_prefix("qossim coap-server: CoAP on udp ")
            .and_then(|r| r.split(';').next())
            .and_then(|a| a.parse::<SocketAddrV4>().ok())
            .unwrap_or_else(|| panic!("banner without the bound address: {banner}"));
        assert_ne!(addr.port(), 0, "{banner}");
        served.addr = addr;
        served
    }

    /// `qossim <sub> --listen <addr> --log <tmp>/<sub>.log <extra>`.
    fn spawn(sub: &str, tag: &str, addr: SocketAddrV4, extra: &[&str]) -> Served {
        let log = super::temp_dir(tag).join(format!("{sub}.log"));
        let mut child = Command::new(QOSSIM)
            .args([sub, "--listen", &addr.to_string(), "--log"])
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start qossim {sub}: {e}"));
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        Served {
            child: Some(child),
            addr,
            stdout,
            stderr,
            log,
        }
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
                panic!("server still running 10 s after signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        let collect = |rx: &Receiver<(Instant, String)>| {
            let mut text = String::new();
            while let Ok((_, l)) = rx.recv_timeout(Duration::from_secs(2)) {
                text.push_str(&l);
                text.push('\n');
            }
            text
        };
        Stopped {
            status,
            took,
            stdout: collect(&self.stdout),
            stderr: collect(&self.stderr),
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
