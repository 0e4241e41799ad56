//! Headless Chromium for the browser tests: finding it, and driving a page
//! over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in a NUL byte, commands on fd 3, replies and events on
//! fd 4), for pages that work after their load event (a Web Worker), which
//! `--dump-dom` would read too early.
//!
//! Every console message and uncaught exception of the page, and every
//! error the browser logs for it (a resource that failed to load), is kept
//! in [`Page::console`].

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Chromium, or None outside CI when it is not installed (under CI=true
/// a missing chromium fails the test).
pub fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium not found (CI=true): apt-get install chromium");
    }
    eprintln!("chromium not found: browser checks skipped (scripts/test.sh installs it)");
    None
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, owned from here.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// One headless Chromium with one page, driven over the DevTools pipe.
pub struct Page {
    child: Child,
    tx: std::fs::File,
    rx: Receiver<Value>,
    next: u64,
    session: String,
    /// Console messages, exceptions and browser-logged errors so far.
    pub console: Vec<String>,
    _profile: PathBuf,
}

impl Page {
    /// Start chromium with a fresh profile and an empty page of
    /// `width`×`height` CSS pixels.
    pub fn open(chromium: &Path, width: u32, height: u32) -> Page {
        use std::os::fd::AsRawFd;
        let profile = super::temp_dir("chromium-profile");
        let (cmd_r, cmd_w) = pipe();
        let (ev_r, ev_w) = pipe();
        let (cr, ew) = (cmd_r.as_raw_fd(), ev_w.as_raw_fd());
        let mut c = Command::new(chromium);
        c.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            &format!("--user-data-dir={}", profile.display()),
            "about:blank",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Move both above 4 first: either may already be fd 3 or 4,
                // and dup2 onto itself would leave it close-on-exec.
                let (a, b) = (
                    libc::fcntl(cr, libc::F_DUPFD, 10),
                    libc::fcntl(ew, libc::F_DUPFD, 10),
                );
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        let child = c.spawn().expect("start chromium");
        drop((cmd_r, ev_w));
        let (send, rx) = channel();
        let mut reader = std::fs::File::from(ev_r);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(i) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=i).collect();
                    if let Ok(v) = serde_json::from_slice(&msg[..i]) {
                        if send.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut page = Page {
            child,
            tx: std::fs::File::from(cmd_w),
            rx,
            next: 0,
            session: String::new(),
            console: Vec::new(),
            _profile: profile,
        };
        let target = page.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("targetId").to_string();
        let s = page.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        page.session = s["sessionId"].as_str().expect("sessionId").to_string();
        for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(m, json!({}));
        }
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        page
    }

    /// Send one command (to the page's session once attached) and wait for
    /// its reply, noting the events that arrive meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.tx.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = match self.rx.recv_timeout(left) {
                Ok(v) => v,
                Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {method}"),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}"),
            };
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.note(&v);
        }
    }

    fn note(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].to_string())
                    .collect();
                self.console
                    .push(format!("console.{}: {}", p["type"], args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => self
                .console
                .push(format!("exception: {}", p["exceptionDetails"])),
            Some("Log.entryAdded") => self.console.push(format!(
                "log {}: {} {}",
                p["entry"]["level"], p["entry"]["text"], p["entry"]["url"]
            )),
            _ => {}
        }
    }

    /// Load `url` and wait for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.eval("document.readyState") != json!("complete") {
            assert!(Instant::now() < deadline, "{url} did not load");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Poll `expr` until it is one of `want`, for at most `limit`.
    pub fn wait_for(&mut self, expr: &str, want: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(expr);
            if let Some(s) = v.as_str().filter(|s| want.contains(s)) {
                return s.to_string();
            }
            assert!(Instant::now() < deadline, "{expr} stayed {v} for {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        qossim::transport::websocket::digest::base64_decode(r["data"].as_str().expect("data"))
            .expect("base64 PNG")
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
