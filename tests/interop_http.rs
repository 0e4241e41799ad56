//! Interop: the HTTP/1.1 connection code the simulator's `http` plug-in
//! runs (`proto::http::{ServerConn, ClientConn}`), over real TCP sockets on
//! 127.0.0.1: `curl` posts to our server (one keep-alive connection for two
//! requests, then `Connection: close`), and our client posts to Python's
//! `http.server` with a `do_POST` handler.
//!
//! Under `CI=true` a missing peer fails the test; otherwise it says why and
//! returns. Every wait is bounded (socket timeouts, killed children).

mod common;
use common::peers::{free_port, peer_binary, KillOnDrop, LOCALHOST};
use qossim::proto::http::{ClientConn, ServerConn};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What our server saw: connections accepted and request bodies.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    bodies: Vec<Vec<u8>>,
}

/// Serve `ServerConn` on `listener` until `expect` connections were served;
/// returns what it saw.
fn serve(listener: TcpListener, expect: usize) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        listener.set_nonblocking(false).expect("blocking");
        while seen.connections < expect {
            let Ok((mut s, _)) = listener.accept() else {
                break;
            };
            seen.connections += 1;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut conn = ServerConn::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut out = Vec::new();
                let close = conn.on_data(&buf[..n], &mut out, |m| seen.bodies.push(m.body.clone()));
                if s.write_all(&out).is_err() {
                    break;
                }
                if close {
                    let _ = s.shutdown(Shutdown::Write);
                    break;
                }
            }
        }
        seen
    })
}

#[test]
fn curl_posts_to_our_server() {
    let Some(curl) = peer_binary("curl", "install Debian package curl") else {
        return;
    };
    let port = free_port();
    let listener = TcpListener::bind((LOCALHOST, port)).expect("bind");
    let server = serve(listener, 2);
    let dir = common::temp_dir("http-curl");
    let body = dir.join("body.bin");
    std::fs::write(&body, [0u8, 1, 2, 250, 251, 252]).expect("write body");
    let url = format!("http://127.0.0.1:{port}/plant/temperature");
    // two URLs in one curl: one keep-alive connection, two POSTs
    let out = Command::new(&curl)
        .args([
            "-s",
            "-S",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{num_connects}\\n",
        ])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .args([&url, &url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text, "204 1\n204 0\n",
        "second request reused the connection"
    );
    // then one asking Connection: close
    let out = Command::new(&curl)
        .args([
            "-s",
            "-S",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-H", "Connection: close", "--data-binary", "x", &url])
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "204");
    let seen = server.join().expect("server thread");
    assert_eq!(seen.connections, 2);
    assert_eq!(
        seen.bodies,
        vec![
            vec![0, 1, 2, 250, 251, 252],
            vec![0, 1, 2, 250, 251, 252],
            b"x".to_vec()
        ]
    );
}

/// Python's http.server answering POST with 204 over HTTP/1.1 keep-alive,
/// printing each body as hex.
const PY_SERVER: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        print("POST", self.path, self.headers.get("Host"), self.headers.get("Content-Type"), body.hex(), flush=True)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"#;

#[test]
fn our_client_posts_to_python_http_server() {
    let Some(py) = peer_binary("python3", "install Debian package python3") else {
        return;
    };
    let port = free_port();
    let mut child = KillOnDrop(
        Command::new(py)
            .args(["-c", PY_SERVER, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("python server start");
    assert_eq!(first, "ready");
    let addr = SocketAddrV4::new(LOCALHOST, port);
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut c = ClientConn::new(false);
    let readings: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![0xff; 16], b"last".to_vec()];
    for r in &readings {
        c.push(r.clone().into());
    }
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while statuses.len() < readings.len() {
        assert!(Instant::now() < deadline, "responses: {statuses:?}");
        let mut out = Vec::new();
        if c.next_request("127.0.0.1", "/plant/temperature", &mut out)
            .is_some()
        {
            s.write_all(&out).expect("write");
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "server closed after {statuses:?}");
        let r = c.on_data(&buf[..n]).expect("a response our parser accepts");
        statuses.extend(r.statuses);
        assert!(!r.closing);
    }
    assert_eq!(statuses, vec![204, 204, 204]);
    for r in &readings {
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a POST line");
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            line,
            format!("POST /plant/temperature 127.0.0.1 application/octet-stream {hex}")
        );
    }
}
