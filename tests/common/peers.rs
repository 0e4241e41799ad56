//! Real peers of the interop tests (mosquitto, libcoap, pip console
//! scripts): finding them, ports for them to listen on, and child
//! processes that die with the test.
//!
//! Under `CI=true` a missing peer fails the test (`skip_or_fail` panics);
//! otherwise the test says why and returns.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Panic with `msg` under `CI=true`; otherwise print it as the reason the
/// test is skipped.
pub fn skip_or_fail(msg: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
}

/// Whether python3 imports paho-mqtt 2.x (the interop tests' MQTT peer);
/// when not, [`skip_or_fail`] says how to install it.
pub fn paho_available() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt; assert paho.mqtt.__version__.startswith('2.')",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_or_fail("python3 module paho.mqtt 2.x not importable (pip install 'paho-mqtt>=2,<3')");
    }
    ok
}

/// `name` on PATH, in /usr/sbin (Debian's mosquitto) or in python3's
/// scripts directory (pip's console scripts).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/sbin"));
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|f| f.is_file())
}

/// [`find_binary`], or `None` after [`skip_or_fail`] naming how to install
/// it (`how`, e.g. "install Debian package libcoap3-bin").
pub fn peer_binary(name: &str, how: &str) -> Option<PathBuf> {
    let found = find_binary(name);
    if found.is_none() {
        skip_or_fail(&format!(
            "{name} not found on PATH, in /usr/sbin or python3's scripts ({how})"
        ));
    }
    found
}

/// Lines of a child's output, read on a thread so waits can be bounded.
pub fn lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills the child process when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port for a peer to listen on, free for TCP and UDP now, outside
/// Linux's ephemeral range (32768–60999), so no other test's outgoing
/// connection can take it as its source port between this check and the
/// peer's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() % 1000) as u16 * 10;
    for _ in 0..1000 {
        let port = 20_000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if TcpListener::bind((LOCALHOST, port)).is_ok()
            && UdpSocket::bind((LOCALHOST, port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

/// True when something listens at `addr` (a connection that is not the
/// socket talking to itself: Linux lets a connect to a free loopback port
/// pick that same port as its source and "succeed").
pub fn listening(addr: SocketAddrV4) -> bool {
    TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200))
        .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
}

/// A private mosquitto on a free loopback port ($SYS every second, its log
/// in a file), killed when dropped.
pub struct Mosquitto {
    _child: KillOnDrop,
    pub addr: SocketAddrV4,
    log: PathBuf,
}

impl Mosquitto {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Start mosquitto (`bin`) with a minimal configuration; waits (≤ 5 s)
/// until it accepts TCP connections.
pub fn start_mosquitto(bin: &Path) -> Mosquitto {
    let port = free_port();
    let dir = super::temp_dir("mosquitto");
    let conf = dir.join("mosquitto.conf");
    // Started as root, mosquitto writes its log as user `mosquitto`.
    let log = dir.join("mosquitto.log");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&log, "").expect("create log");
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        let _ = std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666));
    }
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nsys_interval 1\nlog_dest file {}\n",
            log.display()
        ),
    )
    .expect("write config");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto");
    let guard = KillOnDrop(child);
    let addr = SocketAddrV4::new(LOCALHOST, port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !listening(addr) {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Mosquitto {
        _child: guard,
        addr,
        log,
    }
}
