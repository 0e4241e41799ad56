//! Interop: the MQTT-SN gateway core served over real UDP/TCP sockets
//! (`proto::mqttsn::socket`, and the built `qossim gateway` binary) against
//! mosquitto 2.x (Debian `mosquitto`, `mosquitto-clients`) and the MQTT-SN
//! client of PyPI `mqtt-sn-12` 1.0.9 (`mqtt_sn_pub`, `mqtt_sn_sub`), and our
//! MQTT-SN client core over UDP. Everything runs on 127.0.0.1, on free
//! ports; the whole file takes about 5 s.
//!
//! Under `CI=true` a missing peer fails the test; otherwise the test prints
//! why and returns. Every wait is bounded: child processes are killed by a
//! Drop guard, mosquitto_sub gets `-W`, our loops have deadlines.
//!
//! mqtt-sn-12 1.0.9 as found in its source: `mqtt_sn_pub` connects (QoS ≥ 0),
//! REGISTERs a topic name longer than 2 characters, publishes (QoS 2:
//! PUBREC/PUBREL/PUBCOMP), then DISCONNECTs; with `-q -1` it sends only the
//! PUBLISH, so it needs `-T <predefined id>` or a 2-character short topic.
//! `mqtt_sn_sub` subscribes at QoS 0 or 1 (`-1`: exit after one message)
//! and prints payloads; it never PUBACKs a QoS 1 PUBLISH (it compares the
//! QoS number with the flag bits), and has no QoS 2 receive path, so QoS 2
//! towards an MQTT-SN subscriber is checked with our client core.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qossim::proto::mqtt::socket::{BrokerDriver, BrokerThread};
use qossim::proto::mqtt::{Broker, BrokerConfig, Reconnect};
use qossim::proto::mqttsn::socket::{
    ClientDriver, GatewayDriver, GatewayIoConfig, GatewaySnapshot, GatewayThread,
};
use qossim::proto::mqttsn::{
    decode, Client, ClientConfig, ClientEvent, GatewayConfig, GatewayMode, Message, MsgType, Qos,
    ReturnCode, SubTopic, TopicIdType, TopicRef, WillTopic,
};
use qossim::sim::{SimDuration, SimRng, SimTime};

mod common;

use common::peers::{
    find_binary, free_port, lines, skip_or_fail, start_mosquitto, KillOnDrop, LOCALHOST,
};

/// The peers the interop tests talk to.
struct Peers {
    mosquitto: PathBuf,
    sub: PathBuf,
    publ: PathBuf,
    sn_pub: PathBuf,
    sn_sub: PathBuf,
}

fn peers() -> Option<Peers> {
    let want = [
        ("mosquitto", "Debian package mosquitto"),
        ("mosquitto_sub", "Debian package mosquitto-clients"),
        ("mosquitto_pub", "Debian package mosquitto-clients"),
        ("mqtt_sn_pub", "pip install 'mqtt-sn-12==1.0.9'"),
        ("mqtt_sn_sub", "pip install 'mqtt-sn-12==1.0.9'"),
    ];
    let mut found = Vec::new();
    for (name, how) in want {
        match find_binary(name) {
            Some(p) => found.push(p),
            None => {
                skip_or_fail(&format!(
                    "{name} not found on PATH, in /usr/sbin or python3's scripts ({how})"
                ));
                return None;
            }
        }
    }
    // What this file relies on (no PUBACK from mqtt_sn_sub, no QoS 2
    // receive path, the log lines it prints) is 1.0.9's behaviour.
    let version = Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('mqtt-sn-12'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if version != "1.0.9" {
        skip_or_fail(&format!(
            "python3 has mqtt-sn-12 {version:?}, these checks are for 1.0.9 \
             (pip install 'mqtt-sn-12==1.0.9')"
        ));
        return None;
    }
    let mut it = found.into_iter();
    Some(Peers {
        mosquitto: it.next()?,
        sub: it.next()?,
        publ: it.next()?,
        sn_pub: it.next()?,
        sn_sub: it.next()?,
    })
}

/// Wait (≤ `limit`) for a child to exit; kill it if it does not.
fn wait_exit(child: &mut KillOnDrop, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.0.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn next_line(rx: &Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{what}: no line within 10 s ({e})"))
}

/// Read lines until one satisfies `f` (≤ `limit`); the lines seen.
fn line_until(
    rx: &Receiver<String>,
    limit: Duration,
    what: &str,
    f: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if f(&l) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("{what}: not seen within {limit:?}; lines: {seen:#?}"),
        }
    }
}

/// Run a short-lived client (mosquitto_pub, mqtt_sn_pub) to completion
/// (≤ 10 s); it must succeed.
fn run_ok(bin: &Path, args: &[&str]) {
    let mut child = KillOnDrop(
        Command::new(bin)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display())),
    );
    let st = wait_exit(
        &mut child,
        Duration::from_secs(10),
        &format!("{bin:?} {args:?}"),
    );
    let mut out = String::new();
    if let Some(mut o) = child.0.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut out);
    }
    assert!(st.success(), "{bin:?} {args:?} failed ({st}):\n{out}");
}

/// A mosquitto_sub at QoS 2 printing "QOS TOPIC PAYLOAD", known to be
/// subscribed: a retained "ready" message on `ready` has reached it.
struct Watch {
    _child: KillOnDrop,
    rx: Receiver<String>,
}

fn watch(p: &Peers, broker: SocketAddrV4, topics: &[&str], ready: &str) -> Watch {
    let port = broker.port().to_string();
    run_ok(
        &p.publ,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            ready,
            "-m",
            "ready",
            "-r",
            "-q",
            "1",
        ],
    );
    let mut cmd = Command::new(&p.sub);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-q",
        "2",
        "-F",
        "%q %t %p",
        "-W",
        "30",
    ])
    .args(["-t", ready]);
    for t in topics {
        cmd.args(["-t", t]);
    }
    let mut child = KillOnDrop(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto_sub"),
    );
    let rx = lines(child.0.stdout.take().expect("stdout"));
    assert_eq!(next_line(&rx, "ready"), format!("1 {ready} ready"));
    Watch { _child: child, rx }
}

impl Watch {
    /// The next `n` lines, sorted.
    fn take(&self, n: usize, what: &str) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for _ in 0..n {
            match self.rx.recv_timeout(Duration::from_secs(10)) {
                Ok(l) => v.push(l),
                Err(e) => panic!("{what}: {} of {n} lines within 10 s ({e}): {v:#?}", v.len()),
            }
        }
        v.sort();
        v
    }
}

/// mosquitto's own count of connected clients ($SYS, every second) reaches
/// `want` (the reader itself included) within 10 s.
fn broker_sees_connected(p: &Peers, broker: SocketAddrV4, want: u64) {
    let mut child = KillOnDrop(
        Command::new(&p.sub)
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(["-t", "$SYS/broker/clients/connected", "-W", "12"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto_sub"),
    );
    let rx = lines(child.0.stdout.take().expect("stdout"));
    line_until(
        &rx,
        Duration::from_secs(10),
        &format!("$SYS/broker/clients/connected = {want}"),
        |l| l.trim() == want.to_string(),
    );
}

fn gateway_config(mode: GatewayMode, predefined: &[(u16, &str)]) -> GatewayConfig {
    let mut upstream = qossim::proto::mqtt::ClientConfig::new("qossim-sn-gw");
    upstream.reconnect = Some(Reconnect {
        initial_delay: SimDuration::from_millis(100),
        max_delay: SimDuration::from_millis(500),
        jitter: 0.0,
    });
    GatewayConfig {
        mode,
        t_adv: None,
        predefined: predefined
            .iter()
            .map(|(i, t)| (*i, t.to_string()))
            .collect(),
        upstream,
        ..GatewayConfig::default()
    }
}

fn start_gateway(broker: SocketAddrV4, config: GatewayConfig) -> GatewayThread {
    GatewayDriver::bind(
        SocketAddr::from((LOCALHOST, 0)),
        SocketAddr::V4(broker),
        config,
    )
    .expect("bind gateway")
    .spawn()
}

fn wait_gw(
    gw: &GatewayThread,
    what: &str,
    f: impl Fn(&GatewaySnapshot) -> bool,
) -> GatewaySnapshot {
    gw.wait_for(Duration::from_secs(10), f)
        .unwrap_or_else(|| panic!("{what} within 10 s; gateway: {:#?}", gw.snapshot()))
}

/// mqtt_sn_pub against our gateway at `port`.
fn sn_pub(p: &Peers, port: u16, args: &[&str]) {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port, "--timeout", "10"];
    all.extend_from_slice(args);
    run_ok(&p.sn_pub, &all);
}

/// `qossim gateway` (the built binary) as a child process on a free port.
/// Every wait is bounded; the Drop guard kills it if a check fails first.
struct GatewayProc {
    child: KillOnDrop,
    out: Receiver<String>,
    err: Receiver<String>,
    port: u16,
}

/// Start `qossim gateway --mode <mode>` towards `broker` (predefined topic
/// 7 = qossim/sn/pre); waits (≤ 10 s) for its start line.
fn start_qossim_gateway(broker: SocketAddrV4, mode: &str, client_id: &str) -> GatewayProc {
    start_qossim_gateway_with(broker, mode, client_id, &[])
}

/// [`start_qossim_gateway`] with `extra` options.
fn start_qossim_gateway_with(
    broker: SocketAddrV4,
    mode: &str,
    client_id: &str,
    extra: &[&str],
) -> GatewayProc {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_qossim"))
            .args([
                "gateway",
                "--listen",
                &listen,
                "--broker",
                &broker.to_string(),
            ])
            .args(["--mode", mode, "--predefined", "7=qossim/sn/pre"])
            .args(["--client-id", client_id, "--keep-alive", "30"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qossim gateway"),
    );
    let out = lines(child.0.stdout.take().expect("stdout"));
    let err = lines(child.0.stderr.take().expect("stderr"));
    let first = match out.recv_timeout(Duration::from_secs(10)) {
        Ok(l) => l,
        Err(e) => {
            let _ = child.0.kill();
            let rest = drain(&err, Duration::from_secs(2));
            panic!("qossim gateway: no start line within 10 s ({e}); stderr {rest:#?}");
        }
    };
    assert!(
        first.contains(&format!("MQTT-SN on udp {listen}")) && first.contains(mode),
        "{first}"
    );
    GatewayProc {
        child,
        out,
        err,
        port,
    }
}

/// The lines a reader still has, until its child's pipe closes (≤ `limit`
/// in all).
fn drain(rx: &Receiver<String>, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut v = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => v.push(l),
            Err(mpsc::RecvTimeoutError::Disconnected) => return v,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("output not closed within {limit:?}; so far {v:#?}")
            }
        }
    }
}

impl GatewayProc {
    /// SIGINT, exit (≤ 5 s), then the rest of stdout and all of stderr
    /// (≤ 5 s each): exit code and that text.
    fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.0.id().to_string();
        let st = Command::new("kill")
            .args(["-s", "INT", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s INT {pid}");
        let st = wait_exit(
            &mut self.child,
            Duration::from_secs(5),
            "qossim gateway after SIGINT",
        );
        let mut text = drain(&self.out, Duration::from_secs(5));
        text.extend(drain(&self.err, Duration::from_secs(5)));
        (st.code(), text.join("\n"))
    }
}

/// The counters of `qossim gateway`'s closing summary, keyed "section
/// label" ("mqtt-sn malformed", "clients connects", "upstream connections
/// opened", …).
fn summary_counters(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((section, body)) = line.split_once(": ") else {
            continue;
        };
        for piece in body.split([',', ';']) {
            let Some((n, label)) = piece.trim().split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            let label = label.split(" (").next().unwrap_or(label).trim();
            m.insert(format!("{section} {label}"), n);
        }
    }
    m
}

/// Malformed datagrams for `qossim gateway`: every kind of [`junk`], and
/// the Length field's edge cases: 1-byte Length 0 and 1, the 3-byte form
/// cut short or with a Length that contradicts the datagram (shorter,
/// longer, below its own header), and jumbo datagrams up to the largest
/// UDP payload (65 507 B) whose Length does not match. Each is checked to
/// fail `decode`.
fn malformed_set() -> Vec<Vec<u8>> {
    let mut rng = SimRng::stream(7, "junk-cli");
    let mut v: Vec<Vec<u8>> = (0..40).map(|k| junk(&mut rng, k)).collect();
    let mut jumbo = vec![0x5a; 65_507];
    jumbo[..4].copy_from_slice(&[0x01, 0xff, 0xff, 0x0c]);
    let mut jumbo_short = vec![0xa5; 40_000];
    jumbo_short[..4].copy_from_slice(&[0x01, 0x9c, 0x3f, 0x0c]);
    let mut one_byte_big = vec![0x11; 9_000];
    one_byte_big[..2].copy_from_slice(&[0xff, 0x0c]);
    v.extend([
        vec![0x00, 0x16],                            // 1-byte Length 0
        vec![0x00],                                  // Length 0, nothing else
        vec![0x01],                                  // the 3-byte marker alone
        vec![0x01, 0x00],                            // 3-byte form cut short
        vec![0x01, 0x00, 0x02],                      // 3-byte Length 2 < header
        vec![0x01, 0x00, 0x03, 0x16],                // 3-byte Length 3, 4 bytes
        vec![0x01, 0x00, 0x10, 0x0c, 0, 0, 1, 0, 0], // 3-byte Length 16, 9 bytes
        vec![0x01, 0x00, 0x04],                      // Length 4, no MsgType
        vec![0x05, 0x16],                            // 1-byte Length 5, 2 bytes
        vec![0x02, 0x16, 0x00],                      // 1-byte Length 2, 3 bytes
        jumbo,
        jumbo_short,
        one_byte_big,
    ]);
    for (k, b) in v.iter().enumerate() {
        assert!(decode(b).is_err(), "malformed #{k} decodes: {b:02x?}");
    }
    v
}

/// mqtt-sn-12 1.0.9 through `qossim gateway` (the binary) to a private
/// mosquitto:
/// - first the gateway is sent every kind of malformed datagram; a CONNECT
///   from the same socket is then answered (it read them all and serves);
/// - MQTT-SN → MQTT: `mqtt_sn_pub` at QoS −1 (aggregating, predefined id
///   and short topic; transparent has no connection for it: dropped), 0,
///   1 and 2; `mosquitto_sub` sees each once at its QoS (−1 as 0);
/// - MQTT → MQTT-SN: `mosquitto_pub` at QoS 0 and 1 reaches an
///   `mqtt_sn_sub` subscribed at that QoS;
/// - SIGINT: exit 0; its summary counts every malformed datagram, the
///   sessions, publishes and broker connections; mosquitto logged MQTT
///   DISCONNECTs (not dropped sockets) from the gateway's connections.
fn mqtt_sn_12_through_qossim_gateway(mode: GatewayMode) {
    let Some(p) = peers() else { return };
    let m = start_mosquitto(&p.mosquitto);
    let (mode_arg, gw_id) = match mode {
        GatewayMode::Aggregating => ("aggregating", "qossim-gw-agg"),
        _ => ("transparent", "qossim-gw-tra"),
    };
    let t0 = Instant::now();
    let gw = start_qossim_gateway(m.addr, mode_arg, gw_id);
    let port = gw.port;
    let to = SocketAddr::from((LOCALHOST, port));

    // Malformed datagrams, paced so that the jumbo ones do not overrun the
    // gateway's receive buffer; then a CONNECT and DISCONNECT from the same
    // socket (datagrams from one socket are read in order).
    let junk_sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind junk socket");
    let bad = malformed_set();
    for (k, b) in bad.iter().enumerate() {
        junk_sock.send_to(b, to).expect("send malformed");
        if k % 8 == 7 || b.len() > 1000 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let ack = ask(&junk_sock, to, &connect_msg("after-junk", 60)).expect("CONNACK after junk");
    assert!(
        matches!(
            decode(&ack),
            Ok(Message::ConnAck {
                code: ReturnCode::Accepted
            })
        ),
        "{ack:02x?}"
    );
    let bye = ask(&junk_sock, to, &sn(&Message::Disconnect { duration: None }))
        .expect("DISCONNECT answered");
    assert!(matches!(decode(&bye), Ok(Message::Disconnect { .. })));
    let mut sessions = 1;

    let w = watch(&p, m.addr, &["qossim/sn/#", "zq"], "ready/sn");
    let mut want = Vec::new();
    if mode == GatewayMode::Aggregating {
        sn_pub(
            &p,
            port,
            &["-q", "-1", "-T", "7", "-m", "minus-one-predefined"],
        );
        sn_pub(&p, port, &["-q", "-1", "-t", "zq", "-m", "minus-one-short"]);
        want.push("0 qossim/sn/pre minus-one-predefined".to_string());
        want.push("0 zq minus-one-short".to_string());
    } else {
        // Transparent: no connection carries QoS −1; dropped and counted.
        sn_pub(&p, port, &["-q", "-1", "-T", "7", "-m", "nowhere"]);
    }
    for q in 0..=2 {
        let (qs, id) = (q.to_string(), format!("sn12-pub-q{q}"));
        let (topic, msg) = (format!("qossim/sn/q{q}"), format!("sn-q{q}"));
        sn_pub(&p, port, &["-i", &id, "-q", &qs, "-t", &topic, "-m", &msg]);
        want.push(format!("{q} {topic} {msg}"));
        sessions += 1;
    }
    want.sort();
    assert_eq!(w.take(want.len(), "publish via mqtt-sn-12"), want);

    // Towards mqtt-sn-12: mosquitto_pub → mosquitto → gateway → mqtt_sn_sub.
    for q in 0..=1 {
        let qs = q.to_string();
        let topic = format!("qossim/sn/down{q}");
        let mut sub = KillOnDrop(
            Command::new(&p.sn_sub)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "--timeout",
                    "10",
                ])
                .args([
                    "-i",
                    &format!("sn12-sub-q{q}"),
                    "-q",
                    &qs,
                    "-t",
                    &topic,
                    "-1",
                    "-d",
                ])
                .env("PYTHONUNBUFFERED", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn mqtt_sn_sub"),
        );
        sessions += 1;
        let out = lines(sub.0.stdout.take().expect("stdout"));
        let err = lines(sub.0.stderr.take().expect("stderr"));
        line_until(&err, Duration::from_secs(10), "mqtt_sn_sub SUBACK", |l| {
            l.contains("SUBACK return code: 0")
        });
        let payload = format!("down-q{q}");
        run_ok(
            &p.publ,
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &m.addr.port().to_string(),
                "-t",
                &topic,
                "-m",
                &payload,
                "-q",
                &qs,
            ],
        );
        assert_eq!(next_line(&out, "mqtt_sn_sub message"), payload);
        let got = line_until(
            &err,
            Duration::from_secs(10),
            "mqtt_sn_sub message log",
            |l| l.contains("MqttSnMessage: "),
        );
        assert!(
            got.contains(&format!("qos={q}")) && got.contains(&format!("topic_name='{topic}'")),
            "QoS {q} delivery as logged by mqtt_sn_sub: {got}"
        );
        let st = wait_exit(&mut sub, Duration::from_secs(10), "mqtt_sn_sub");
        assert!(st.success(), "mqtt_sn_sub exit {st}");
    }
    drop(w);

    let (code, text) = gw.stop();
    let elapsed = t0.elapsed();
    assert_eq!(code, Some(0), "qossim gateway exit; output:\n{text}");
    assert!(text.contains("qossim gateway: stopped after"), "{text}");
    let c = summary_counters(&text);
    let get = |k: &str| {
        *c.get(k)
            .unwrap_or_else(|| panic!("{k:?} not in the summary:\n{text}"))
    };
    eprintln!("mqtt-sn-12 through qossim gateway ({mode_arg}), {elapsed:.1?}:\n{text}");
    assert_eq!(get("mqtt-sn malformed"), bad.len() as u64, "{text}");
    assert_eq!(get("mqtt-sn send errors"), 0, "{text}");
    assert_eq!(get("clients connects"), sessions, "{text}");
    assert_eq!(get("clients refused"), 0, "{text}");
    assert_eq!(get("clients with a session"), 0, "{text}");
    // QoS −1 is received in both modes (then dropped when transparent).
    let minus_one = if mode == GatewayMode::Aggregating {
        2
    } else {
        1
    };
    assert_eq!(get("clients publishes received"), minus_one + 3, "{text}");
    assert_eq!(get("clients delivered"), 2, "{text}");
    assert_eq!(get("upstream lost"), 0, "{text}");
    assert_eq!(get("upstream connect failures"), 0, "{text}");
    let upstreams = if mode == GatewayMode::Aggregating {
        1
    } else {
        sessions
    };
    assert_eq!(get("upstream connections opened"), upstreams, "{text}");
    assert_eq!(get("upstream closed by the gateway"), upstreams, "{text}");
    // mosquitto saw MQTT DISCONNECTs, not dropped sockets: the aggregating
    // connection at SIGINT; transparent ones when their client left (the
    // QoS 2 publisher's after its PUBREL/PUBCOMP with mosquitto).
    let ids: Vec<&str> = if mode == GatewayMode::Aggregating {
        vec![gw_id]
    } else {
        vec![
            "after-junk",
            "sn12-pub-q0",
            "sn12-pub-q1",
            "sn12-pub-q2",
            "sn12-sub-q0",
            "sn12-sub-q1",
        ]
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = m.log();
        if ids
            .iter()
            .all(|id| log.contains(&format!("Client {id} disconnected.")))
        {
            for id in &ids {
                let lost = format!("Client {id} closed its connection");
                assert!(!log.contains(&lost), "{lost}; mosquitto log:\n{log}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "{ids:?}; mosquitto log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mqtt_sn_12_through_qossim_gateway_aggregating() {
    mqtt_sn_12_through_qossim_gateway(GatewayMode::Aggregating);
}

#[test]
fn mqtt_sn_12_through_qossim_gateway_transparent() {
    mqtt_sn_12_through_qossim_gateway(GatewayMode::Transparent);
}

/// Our MQTT-SN client core on a UDP socket, told the gateway's address.
fn our_client(gw: SocketAddr, id: &str, predefined: &[(u16, &str)]) -> ClientDriver {
    let cfg = ClientConfig {
        predefined: predefined
            .iter()
            .map(|(i, t)| (*i, t.to_string()))
            .collect(),
        t_retry: SimDuration::from_secs(2),
        ..ClientConfig::new(id)
    };
    let mut d = ClientDriver::bind(
        SocketAddr::from((LOCALHOST, 0)),
        Client::new(cfg, SimRng::stream(7, id)),
    )
    .expect("bind client");
    d.add_gateway(1, gw).expect("add gateway");
    d
}

/// Step every client (round robin, short waits) until `done` holds for the
/// events collected so far (≤ `limit`).
fn pump(
    clients: &mut [ClientDriver],
    logs: &mut [Vec<ClientEvent>],
    limit: Duration,
    what: &str,
    done: impl Fn(&[Vec<ClientEvent>]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        for (c, log) in clients.iter_mut().zip(logs.iter_mut()) {
            c.step(Duration::from_millis(1)).expect("step client");
            while let Some(e) = c.poll_event() {
                log.push(e);
            }
        }
        if done(logs) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}: {logs:#?}"
        );
    }
}

fn count(log: &[ClientEvent], f: impl Fn(&ClientEvent) -> bool) -> usize {
    log.iter().filter(|e| f(e)).count()
}

/// Our client core ↔ our gateway ↔ mosquitto: 4 clients connect; the broker
/// holds one connection for them (aggregating) or one each (transparent);
/// publishes at QoS −1 (aggregating), 0, 1, 2 reach mosquitto_sub and a
/// wildcard MQTT-SN subscriber; mosquitto_pub at QoS 2 reaches the MQTT-SN
/// subscriber once, at QoS 2.
fn our_client_core_through_our_gateway(mode: GatewayMode) {
    let Some(p) = peers() else { return };
    let m = start_mosquitto(&p.mosquitto);
    let pre = [(3, "qossim/core/pre")];
    let gw = start_gateway(m.addr, gateway_config(mode, &pre));
    let n = 4;
    let mut cs: Vec<ClientDriver> = (0..n)
        .map(|i| our_client(gw.local_addr(), &format!("core-{i}"), &pre))
        .collect();
    let mut logs = vec![Vec::new(); n];
    for c in cs.iter_mut() {
        c.connect().expect("connect");
    }
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(10),
        "4 CONNACKs",
        |l| {
            l.iter()
                .all(|l| l.iter().any(|e| matches!(e, ClientEvent::Connected { .. })))
        },
    );
    let upstreams = if mode == GatewayMode::Aggregating {
        1
    } else {
        n as u64
    };
    let s = wait_gw(&gw, "upstream connections up", |s| {
        s.io.upstream_open == upstreams
    });
    assert_eq!(s.io.upstream_connects, upstreams, "{s:#?}");
    // The broker's own view: the gateway's connections and the $SYS reader.
    broker_sees_connected(&p, m.addr, upstreams + 1);

    // Client 0 subscribes with a wildcard at QoS 2 (the gateway REGISTERs
    // each topic to it before the first PUBLISH).
    cs[0]
        .subscribe("qossim/core/#", TopicIdType::Normal, Qos::Two)
        .expect("subscribe");
    pump(&mut cs, &mut logs, Duration::from_secs(10), "SUBACK", |l| {
        l[0].iter().any(
            |e| matches!(e, ClientEvent::Subscribed { code, .. } if *code == ReturnCode::Accepted),
        )
    });
    let w = watch(&p, m.addr, &["qossim/core/#"], "ready/core");
    let mut want = Vec::new();
    let mut levels = vec![Qos::Zero, Qos::One, Qos::Two];
    if mode == GatewayMode::Aggregating {
        levels.insert(0, Qos::MinusOne);
    }
    for q in &levels {
        let (topic, payload) = match q {
            Qos::MinusOne => ("qossim/core/pre".to_string(), "core-minus-one".to_string()),
            q => (
                format!("qossim/core/q{}", q.level()),
                format!("core-q{}", q.level()),
            ),
        };
        cs[1]
            .publish(&topic, payload.as_bytes(), *q, false)
            .expect("publish");
        want.push(format!("{} {topic} {payload}", q.level().max(0)));
    }
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(10),
        "publishes done",
        |l| {
            count(&l[1], |e| {
                matches!(
                    e,
                    ClientEvent::PublishSent { .. }
                        | ClientEvent::PublishAcked { .. }
                        | ClientEvent::PublishCompleted { .. }
                )
            }) == levels.len()
                && count(&l[0], |e| matches!(e, ClientEvent::Message { .. })) == levels.len()
        },
    );
    want.sort();
    assert_eq!(w.take(want.len(), "publish via our client core"), want);
    let mut got: Vec<(String, Qos)> = logs[0]
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message { topic, qos, .. } => Some((topic.to_string(), *qos)),
            _ => None,
        })
        .collect();
    got.sort();
    let mut expect: Vec<(String, Qos)> = levels
        .iter()
        .map(|q| match q {
            Qos::MinusOne => ("qossim/core/pre".to_string(), Qos::Zero),
            q => (format!("qossim/core/q{}", q.level()), *q),
        })
        .collect();
    expect.sort();
    assert_eq!(got, expect, "the MQTT-SN subscriber, each once at its QoS");

    // mosquitto_pub QoS 2 → the MQTT-SN subscriber: once, at QoS 2.
    logs[0].clear();
    run_ok(
        &p.publ,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &m.addr.port().to_string(),
            "-t",
            "qossim/core/down",
            "-m",
            "down-q2",
            "-q",
            "2",
        ],
    );
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(10),
        "QoS 2 down",
        |l| {
            l[0].iter()
                .any(|e| matches!(e, ClientEvent::Message { .. }))
        },
    );
    // Both QoS 2 deliveries to client 0 end with its PUBCOMP; a
    // duplicate would show meanwhile.
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(5),
        "PUBCOMPs at the gateway",
        |_| gw.snapshot().gateway.received_by_type[MsgType::PubComp.index()] >= 2,
    );
    let msgs: Vec<_> = logs[0]
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message {
                topic,
                payload,
                qos,
                ..
            } => Some((topic.to_string(), payload.to_vec(), *qos)),
            _ => None,
        })
        .collect();
    assert_eq!(
        msgs,
        vec![(
            "qossim/core/down".to_string(),
            b"down-q2".to_vec(),
            Qos::Two
        )]
    );
    let s = gw.snapshot();
    let g = &s.gateway;
    assert_eq!(g.decode_errors, 0, "{s:#?}");
    assert!(g.received_by_type[MsgType::PubRec.index()] >= 2, "{s:#?}");
    assert!(g.sent_by_type[MsgType::PubRel.index()] >= 2, "{s:#?}");
    assert_eq!(g.give_ups, 0, "{s:#?}");

    for c in cs.iter_mut() {
        c.disconnect().expect("disconnect");
    }
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(10),
        "DISCONNECTs",
        |l| {
            l.iter().all(|l| {
                l.iter()
                    .any(|e| matches!(e, ClientEvent::Disconnected { by_gateway: false }))
            })
        },
    );
    wait_gw(&gw, "sessions ended", |s| s.clients == 0);
    drop(w);
    let d = gw.stop().expect("stop");
    assert_eq!(d.io_stats().upstream_open, 0);
    assert_eq!(d.io_stats().upstream_lost, 0, "{:#?}", d.io_stats());
}

#[test]
fn our_client_core_through_our_gateway_aggregating() {
    our_client_core_through_our_gateway(GatewayMode::Aggregating);
}

#[test]
fn our_client_core_through_our_gateway_transparent() {
    our_client_core_through_our_gateway(GatewayMode::Transparent);
}

/// Integrated mode: the gateway is the broker; no TCP connection at all.
#[test]
fn integrated_gateway_over_real_sockets() {
    // Nothing listens there: any connection attempt would fail and count.
    let nowhere = SocketAddrV4::new(LOCALHOST, 9);
    let gw = start_gateway(nowhere, gateway_config(GatewayMode::Integrated, &[]));
    let mut cs: Vec<ClientDriver> = (0..2)
        .map(|i| our_client(gw.local_addr(), &format!("int-{i}"), &[]))
        .collect();
    let mut logs = vec![Vec::new(); 2];
    for c in cs.iter_mut() {
        c.connect().expect("connect");
    }
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(5),
        "CONNACKs",
        |l| {
            l.iter()
                .all(|l| l.iter().any(|e| matches!(e, ClientEvent::Connected { .. })))
        },
    );
    cs[0]
        .subscribe("int/#", TopicIdType::Normal, Qos::Two)
        .expect("subscribe");
    pump(&mut cs, &mut logs, Duration::from_secs(5), "SUBACK", |l| {
        l[0].iter()
            .any(|e| matches!(e, ClientEvent::Subscribed { .. }))
    });
    for q in [Qos::Zero, Qos::One, Qos::Two] {
        cs[1]
            .publish(&format!("int/q{}", q.level()), b"x", q, false)
            .expect("publish");
    }
    pump(
        &mut cs,
        &mut logs,
        Duration::from_secs(5),
        "3 messages",
        |l| count(&l[0], |e| matches!(e, ClientEvent::Message { .. })) == 3,
    );
    let mut qos: Vec<Qos> = logs[0]
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message { qos, .. } => Some(*qos),
            _ => None,
        })
        .collect();
    qos.sort();
    assert_eq!(qos, vec![Qos::Zero, Qos::One, Qos::Two]);
    let d = gw.stop().expect("stop");
    let io = d.io_stats();
    assert_eq!(io.upstream_connects + io.upstream_connect_failures, 0);
    assert_eq!(d.gateway().stats().publishes_delivered, 3);
}

/// Integrated mode keeps retained messages up to
/// `GatewayConfig::max_retained_bytes`: one client registering topic after
/// topic (64 ids, a clean CONNECT, 64 more…) and publishing a retained
/// 10 kB message to each fills the store to its bound and no further (the
/// rest counted); deleting one (an empty retained message) makes room for
/// another; a new subscriber gets exactly what was kept. Before the bound
/// every new retained topic stayed for good.
#[test]
fn integrated_retained_store_is_bounded() {
    let nowhere = SocketAddrV4::new(LOCALHOST, 9);
    let mut cfg = gateway_config(GatewayMode::Integrated, &[]);
    assert_eq!(cfg.max_retained_bytes, 16 << 20);
    let bound = 256 * 1024;
    cfg.max_retained_bytes = bound;
    let gw = start_gateway(nowhere, cfg);
    let to = gw.local_addr();
    let s = UdpSocket::bind((LOCALHOST, 0)).expect("bind client");
    let payload = vec![0x52; 10_000];
    let mut msg_id = 0u16;
    let mut publish = |topic_id: u16, data: &[u8]| {
        msg_id += 1;
        let r = ask(
            &s,
            to,
            &sn(&Message::Publish {
                dup: false,
                qos: Qos::One,
                retain: true,
                topic: TopicRef::Normal(topic_id),
                msg_id,
                data,
            }),
        )
        .expect("PUBACK");
        assert!(
            matches!(
                decode(&r),
                Ok(Message::PubAck {
                    code: ReturnCode::Accepted,
                    ..
                })
            ),
            "{r:02x?}"
        );
    };
    let mut ids = Vec::new();
    for round in 0..3 {
        // a clean CONNECT forgets the topic ids, not the retained messages
        let ack = ask(&s, to, &connect_msg("retainer", 60)).expect("CONNACK");
        assert!(matches!(
            decode(&ack),
            Ok(Message::ConnAck {
                code: ReturnCode::Accepted
            })
        ));
        ids.clear();
        for k in 0..64u16 {
            let r = ask(
                &s,
                to,
                &sn(&Message::Register {
                    topic_id: 0,
                    msg_id: k + 1,
                    topic_name: &format!("ret/{round}/{k:02}"),
                }),
            )
            .expect("REGACK");
            let Ok(Message::RegAck {
                topic_id,
                code: ReturnCode::Accepted,
                ..
            }) = decode(&r)
            else {
                panic!("REGISTER answered {r:02x?}");
            };
            ids.push(topic_id);
            publish(topic_id, &payload);
        }
    }
    let size = ("ret/0/00".len() + payload.len()) as u64;
    let kept = bound as u64 / size;
    let snap = wait_gw(&gw, "the store full", |s| {
        s.gateway.retained_dropped >= 3 * 64 - kept
    });
    assert_eq!(snap.gateway.retained_bytes, kept * size, "{snap:#?}");
    assert_eq!(snap.gateway.retained_dropped, 3 * 64 - kept, "{snap:#?}");
    // an empty retained message deletes one (ret/0/00, kept first): room
    // for one more (ret/2/63, dropped before)
    let ack = ask(&s, to, &connect_msg("retainer", 60)).expect("CONNACK");
    assert!(matches!(
        decode(&ack),
        Ok(Message::ConnAck {
            code: ReturnCode::Accepted
        })
    ));
    for (k, name) in ["ret/0/00", "ret/2/63"].into_iter().enumerate() {
        let r = ask(
            &s,
            to,
            &sn(&Message::Register {
                topic_id: 0,
                msg_id: 100 + k as u16,
                topic_name: name,
            }),
        )
        .expect("REGACK");
        let Ok(Message::RegAck { topic_id, .. }) = decode(&r) else {
            panic!("REGISTER answered {r:02x?}");
        };
        publish(topic_id, if k == 0 { &[] } else { &payload });
    }
    let snap = wait_gw(&gw, "the store refilled", |s| {
        s.gateway.retained_dropped == 3 * 64 - kept && s.gateway.retained_bytes == kept * size
    });
    // a new subscriber gets what was kept: ret/2/63 but not ret/0/00
    let mut sub = our_client(to, "ret-sub", &[]);
    sub.connect().expect("connect");
    sub.run_until(Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Connected { .. }).then_some(())
    })
    .expect("subscriber connects");
    sub.subscribe("ret/#", TopicIdType::Normal, Qos::Zero)
        .expect("subscribe");
    let mut topics = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (topics.len() as u64) < kept && Instant::now() < deadline {
        sub.step(Duration::from_millis(5)).expect("step");
        while let Some(e) = sub.poll_event() {
            if let ClientEvent::Message { topic, .. } = e {
                topics.push(topic.to_string());
            }
        }
    }
    assert_eq!(topics.len() as u64, kept, "{snap:#?}");
    assert!(topics.iter().any(|t| t == "ret/2/63"), "{topics:?}");
    assert!(!topics.iter().any(|t| t == "ret/0/00"), "{topics:?}");
    gw.stop().expect("stop");
}

/// `qossim args…` (≤ 10 s): exit code, stdout and stderr.
fn qossim(args: &[&str]) -> (i32, String) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_qossim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qossim"),
    );
    let out = lines(child.0.stdout.take().expect("stdout"));
    let err = lines(child.0.stderr.take().expect("stderr"));
    let st = wait_exit(
        &mut child,
        Duration::from_secs(10),
        &format!("qossim {args:?}"),
    );
    let mut text: Vec<String> = Vec::new();
    for rx in [out, err] {
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
            text.push(l);
        }
    }
    (st.code().unwrap_or(-1), text.join("\n"))
}

/// Bad arguments exit 2 naming the option; an address in use exits 1
/// naming the address.
#[test]
fn qossim_gateway_command_errors() {
    let (code, text) = qossim(&["gateway", "--mode", "sideways"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--mode"), "{text}");
    for (args, needle) in [
        (vec!["--predefined", "seven=a/b"], "--predefined"),
        (vec!["--predefined", "0=a/b"], "reserved"),
        (vec!["--predefined", "7=a/#"], "not a topic name"),
        (vec!["--predefined", "7=a", "--predefined", "7=b"], "twice"),
        (vec!["--listen", "not-an-address"], "--listen"),
        (vec!["--broker", "127.0.0.1"], "--broker"),
        (vec!["--client-id", ""], "--client-id"),
    ] {
        let mut all = vec!["gateway", "--listen", "127.0.0.1:0"];
        all.extend(args.iter().copied());
        let (code, text) = qossim(&all);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains(needle),
            "{args:?}: {needle:?} missing from {text}"
        );
    }
    let taken = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, text) = qossim(&["gateway", "--listen", &addr, "--broker", "127.0.0.1:1"]);
    // README.md "Exit codes": the environment failed
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&addr) && text.to_lowercase().contains("in use"),
        "{text}"
    );
}

/// A TCP "broker" that accepts connections and answers CONNECT with
/// CONNACK (or, `answer` false, never), then never reads again.
struct FakeBroker {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl FakeBroker {
    fn start(answer: bool) -> Self {
        let l = TcpListener::bind((LOCALHOST, 0)).expect("bind fake broker");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = match l.local_addr().expect("addr") {
            SocketAddr::V4(a) => a,
            a => panic!("{a}"),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut b = [0u8; 256];
                        if answer && s.read(&mut b).is_ok_and(|n| n > 0) {
                            use std::io::Write;
                            let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]);
                        }
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FakeBroker {
            addr,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One MQTT-SN message as bytes.
fn sn(m: &Message<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut b).expect("encode");
    b
}

/// Send `req` from `s` and wait (≤ 5 s) for a datagram back.
fn ask(s: &UdpSocket, to: SocketAddr, req: &[u8]) -> Option<Vec<u8>> {
    s.send_to(req, to).expect("send");
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut b = vec![0u8; 2048];
    s.recv(&mut b).ok().map(|n| b[..n].to_vec())
}

fn connect_msg(id: &str, keep_alive: u16) -> Vec<u8> {
    sn(&Message::Connect {
        will: false,
        clean_session: true,
        duration: keep_alive,
        client_id: id,
    })
}

fn ping() -> Vec<u8> {
    sn(&Message::PingReq { client_id: None })
}

/// A broker connection that stops reading is closed once its backlog would
/// pass the cap, and counted; the gateway keeps serving and reconnects.
#[test]
fn slow_broker_connection_is_closed_at_its_backlog_cap() {
    let fake = FakeBroker::start(true);
    let cap = 64 * 1024;
    let gw = GatewayDriver::bind_with(
        SocketAddr::from((LOCALHOST, 0)),
        SocketAddr::V4(fake.addr),
        gateway_config(GatewayMode::Aggregating, &[(5, "qossim/slow")]),
        GatewayIoConfig {
            max_upstream_backlog: cap,
            ..GatewayIoConfig::default()
        },
    )
    .expect("bind")
    .spawn();
    let to = gw.local_addr();
    let s = UdpSocket::bind((LOCALHOST, 0)).expect("bind client");
    let ack = ask(&s, to, &connect_msg("slow-1", 60)).expect("CONNACK");
    assert!(matches!(
        decode(&ack),
        Ok(Message::ConnAck {
            code: ReturnCode::Accepted
        })
    ));
    let payload = vec![0x5a; 8000];
    let publish = sn(&Message::Publish {
        dup: false,
        qos: Qos::Zero,
        retain: false,
        topic: TopicRef::Predefined(5),
        msg_id: 0,
        data: &payload,
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sent = 0u64;
    while gw.snapshot().io.upstream_overflows == 0 {
        assert!(
            Instant::now() < deadline && sent < 20_000,
            "no overflow after {sent} publishes: {:#?}",
            gw.snapshot()
        );
        for _ in 0..4 {
            s.send_to(&publish, to).expect("send");
            sent += 1;
        }
        // PINGRESP: the gateway has read everything before it.
        let r = ask(&s, to, &ping()).expect("PINGRESP while the broker is slow");
        assert!(matches!(decode(&r), Ok(Message::PingResp)));
    }
    let snap = wait_gw(&gw, "the aggregating connection reopened", |s| {
        s.io.upstream_connects >= 2
    });
    assert!(snap.io.upstream_backlog_peak <= cap as u64, "{snap:#?}");
    let r = ask(&s, to, &ping()).expect("PINGRESP after the overflow");
    assert!(matches!(decode(&r), Ok(Message::PingResp)));
    eprintln!(
        "slow broker: overflow after {sent} publishes of 8000 B; backlog peak {} B (cap {cap})",
        snap.io.upstream_backlog_peak
    );
    gw.stop().expect("stop");
}

/// A broker that accepts TCP but never answers CONNECT: the aggregating
/// connection times out (CONNACK timeout closes it) and is opened again,
/// again and again, instead of being forgotten.
#[test]
fn aggregating_connection_is_retried_after_a_connack_timeout() {
    let fake = FakeBroker::start(false);
    let mut cfg = gateway_config(GatewayMode::Aggregating, &[]);
    cfg.upstream.connect_timeout = SimDuration::from_millis(200);
    let gw = start_gateway(fake.addr, cfg);
    let s = UdpSocket::bind((LOCALHOST, 0)).expect("bind client");
    s.send_to(&connect_msg("waits", 60), gw.local_addr())
        .expect("send");
    let snap = wait_gw(&gw, "three connection attempts", |s| {
        s.io.upstream_connects >= 3
    });
    assert!(snap.io.upstream_closes >= 2, "{snap:#?}");
    gw.stop().expect("stop");
}

/// `VmRSS` / `VmHWM` of this process, bytes.
fn vm(field: &str) -> u64 {
    common::abuse::vm_kib(std::process::id(), field)
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// Datagrams in flight at once towards the gateway (stays far below the
/// default UDP receive buffer, so loopback drops nothing).
const WINDOW: usize = 50;

/// Each socket sends its datagram; then each waits (≤ 5 s) for one reply.
/// The replies (`None`: lost).
fn exchange(
    socks: &[UdpSocket],
    to: SocketAddr,
    mut msg: impl FnMut(usize) -> Vec<u8>,
) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(socks.len());
    let mut b = vec![0u8; 2048];
    for (w, chunk) in socks.chunks(WINDOW).enumerate() {
        for (i, s) in chunk.iter().enumerate() {
            s.send_to(&msg(w * WINDOW + i), to).expect("send");
        }
        for s in chunk {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            out.push(s.recv(&mut b).ok().map(|n| b[..n].to_vec()));
        }
    }
    out
}

/// Malformed datagrams of every kind; each is checked to fail `decode`.
fn junk(rng: &mut SimRng, k: usize) -> Vec<u8> {
    let r = |rng: &mut SimRng, n: u64| rng.below(n) as usize;
    let mut b: Vec<u8> = match k % 10 {
        // random bytes; the Length octet contradicts the datagram
        0 => {
            let n = r(rng, 300);
            let mut v: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
            if let Some(f) = v.first_mut() {
                if *f as usize == n || *f == 1 {
                    *f = if n == 2 { 3 } else { 2 };
                }
            }
            v
        }
        // reserved MsgType
        1 => vec![4, [0x03, 0x11, 0x19, 0x1e, 0x80, 0xff][r(rng, 6)], 0, 0],
        // long form with a wrong length
        2 => vec![0x01, 0x00, 0x0a, 0x0c, 0, 0, 1, 0, 0],
        // PUBLISH shorter than its header
        3 => vec![5, 0x0c, 0, 0, 1],
        // CONNECT with protocol id 2
        4 => vec![8, 0x04, 0x04, 0x02, 0, 60, b'x', b'y'],
        // SUBSCRIBE with the reserved TopicIdType
        5 => vec![7, 0x12, 0x03, 0, 1, 0, 9],
        // encapsulation around garbage
        6 => vec![9, 0xfe, 0x01, 127, 0, 0, 1, 0x07, 0x5b, 0xff, 0xee],
        // encapsulation in encapsulation
        7 => {
            let inner = vec![9, 0xfe, 0x01, 127, 0, 0, 1, 0x07, 0x5b, 2, 0x16];
            let mut v = vec![9, 0xfe, 0x01, 127, 0, 0, 1, 0x07, 0x5b];
            v.extend_from_slice(&inner);
            v
        }
        // REGISTER whose topic name is not UTF-8
        8 => vec![9, 0x0a, 0, 0, 0, 1, 0xff, 0xfe, 0xfd],
        // empty datagram
        _ => Vec::new(),
    };
    if k % 1000 == 999 {
        // now and then a jumbo one with a contradicting long Length
        b = vec![0xab; 30_000];
        b[0] = 0x01;
    }
    assert!(decode(&b).is_err(), "junk kind {k} decodes: {b:02x?}");
    b
}

/// What the well-behaved client saw while the gateway was abused.
#[derive(Debug, Default)]
struct GoodReport {
    sent: u64,
    acked: u64,
    received: u64,
    max_round_trip: Duration,
    trouble: Vec<ClientEvent>,
}

/// A client that publishes QoS 1 to a topic it subscribes to, one message
/// at a time, until `stop`; round trips go through the broker.
fn good_client(gw: SocketAddr, stop: Arc<AtomicBool>, ready: mpsc::Sender<()>) -> GoodReport {
    let mut d = our_client(gw, "good", &[]);
    let mut r = GoodReport::default();
    d.connect().expect("connect");
    d.run_until(Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Connected { .. }).then_some(())
    })
    .expect("good client connects");
    d.subscribe("qossim/good", TopicIdType::Normal, Qos::One)
        .expect("subscribe");
    d.run_until(Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Subscribed { .. }).then_some(())
    })
    .expect("good client subscribes");
    let _ = ready.send(());
    let mut sent_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut outstanding = false;
    while !stop.load(Ordering::Relaxed) {
        if !outstanding {
            r.sent += 1;
            sent_at.insert(r.sent, Instant::now());
            d.publish(
                "qossim/good",
                r.sent.to_string().as_bytes(),
                Qos::One,
                false,
            )
            .expect("publish");
            outstanding = true;
        }
        d.step(Duration::from_millis(5)).expect("step");
        while let Some(e) = d.poll_event() {
            match e {
                ClientEvent::PublishAcked { .. } => r.acked += 1,
                ClientEvent::Message { payload, .. } => {
                    r.received += 1;
                    let n: u64 = std::str::from_utf8(&payload)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if let Some(t) = sent_at.remove(&n) {
                        r.max_round_trip = r.max_round_trip.max(t.elapsed());
                    }
                    outstanding = false;
                }
                ClientEvent::GatewayLost { .. }
                | ClientEvent::GaveUp { .. }
                | ClientEvent::Disconnected { .. }
                | ClientEvent::PublishRejected { .. } => r.trouble.push(e),
                _ => {}
            }
        }
    }
    r
}

/// Our broker (`BrokerDriver`) on its own thread, on a free loopback port.
fn our_broker() -> BrokerThread {
    BrokerDriver::bind(
        SocketAddrV4::new(LOCALHOST, 0),
        Broker::new(BrokerConfig::default(), SimTime::ZERO),
    )
    .expect("bind broker")
    .spawn()
}

/// [`good_client`] on its own thread, connected and subscribed: the flag
/// that stops it and its report.
fn start_good_client(to: SocketAddr) -> (Arc<AtomicBool>, std::thread::JoinHandle<GoodReport>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, ready) = mpsc::channel();
    let flag = stop.clone();
    let good = std::thread::spawn(move || good_client(to, flag, tx));
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("good client ready");
    (stop, good)
}

/// How many replies carried each return code, `code` picking it out of
/// the expected message; a lost reply or any other message fails `what`.
fn codes(
    replies: &[Option<Vec<u8>>],
    what: &str,
    code: impl Fn(&Message<'_>) -> Option<ReturnCode>,
) -> BTreeMap<ReturnCode, u64> {
    let mut m = BTreeMap::new();
    for r in replies {
        let c = match r.as_deref().map(decode) {
            Some(Ok(msg)) => code(&msg),
            _ => None,
        };
        let c = c.unwrap_or_else(|| panic!("{what} answered {r:02x?}"));
        *m.entry(c).or_insert(0) += 1;
    }
    m
}

fn connack_code(m: &Message<'_>) -> Option<ReturnCode> {
    match m {
        Message::ConnAck { code } => Some(*code),
        _ => None,
    }
}

fn regack_code(m: &Message<'_>) -> Option<ReturnCode> {
    match m {
        Message::RegAck { code, .. } => Some(*code),
        _ => None,
    }
}

/// The count of `c` in [`codes`]' result.
fn n(m: &BTreeMap<ReturnCode, u64>, c: ReturnCode) -> u64 {
    m.get(&c).copied().unwrap_or(0)
}

/// Abuse on loopback, bounded: 10⁴ source addresses CONNECT (half refused
/// at `max_clients`), 10⁵ REGISTERs (capped per client), 10⁴ malformed
/// datagrams (each counted); a well-behaved client is served throughout,
/// memory stays bounded, nothing panics.
#[test]
fn abuse_is_bounded_and_a_good_client_is_served() {
    let t0 = Instant::now();
    let broker = our_broker();
    let max_clients = 5_000;
    let mut cfg = gateway_config(GatewayMode::Aggregating, &[]);
    cfg.max_clients = max_clients;
    let gw = start_gateway(broker.local_addr(), cfg);
    let to = gw.local_addr();
    let rss0 = vm("VmRSS");
    let (stop, good) = start_good_client(to);

    // 10⁴ source addresses: 40 loopback addresses × 250 sockets, 250 open
    // at a time; the first 100 stay open for what follows.
    let (mut accepted, mut refused) = (0, 0);
    let mut kept: Vec<UdpSocket> = Vec::new();
    for a in 0..40u8 {
        let ip = Ipv4Addr::new(127, 1, 0, a + 1);
        let socks: Vec<UdpSocket> = (0..250)
            .map(|_| UdpSocket::bind((ip, 0)).expect("bind abuse socket"))
            .collect();
        let replies = exchange(&socks, to, |i| connect_msg(&format!("abuse-{a}-{i}"), 600));
        let c = codes(&replies, "CONNECT", connack_code);
        accepted += n(&c, ReturnCode::Accepted);
        refused += n(&c, ReturnCode::Congestion);
        if a == 0 {
            kept.extend(socks.into_iter().take(100));
        }
    }
    // max_clients counts the good client too.
    let max_clients = max_clients as u64;
    assert_eq!(
        (accepted, refused),
        (max_clients - 1, 10_000 - (max_clients - 1))
    );
    let t_connect = t0.elapsed();

    // 10⁵ REGISTERs: 1000 from each kept client; 64 topic ids each, the
    // rest refused with congestion.
    let (mut reg_ok, mut reg_full) = (0u64, 0u64);
    for round in 0..1000 {
        let replies = exchange(&kept, to, |i| {
            sn(&Message::Register {
                topic_id: 0,
                msg_id: (round + 1) as u16,
                topic_name: &format!("abuse/{i}/{round}"),
            })
        });
        let c = codes(&replies, "REGISTER", regack_code);
        assert_eq!(
            c.values().sum::<u64>(),
            n(&c, ReturnCode::Accepted) + n(&c, ReturnCode::Congestion),
            "{c:?}"
        );
        reg_ok += n(&c, ReturnCode::Accepted);
        reg_full += n(&c, ReturnCode::Congestion);
    }
    assert_eq!((reg_ok, reg_full), (100 * 64, 100 * (1000 - 64)));
    let t_register = t0.elapsed();

    // 10⁴ malformed datagrams from 10 clients, each window closed by a
    // PINGREQ whose PINGRESP says the gateway read all before it.
    let mut rng = SimRng::stream(99, "junk");
    let before = gw.snapshot().gateway.decode_errors;
    let mut sent_junk = 0u64;
    let pinger = &kept[..10];
    while sent_junk < 10_000 {
        for s in pinger {
            for _ in 0..4 {
                let b = junk(&mut rng, sent_junk as usize);
                s.send_to(&b, to).expect("send junk");
                sent_junk += 1;
            }
        }
        let replies = exchange(pinger, to, |_| ping());
        assert!(
            replies.iter().all(|r| r
                .as_deref()
                .map(decode)
                .is_some_and(|m| matches!(m, Ok(Message::PingResp)))),
            "PINGRESPs after junk: {replies:?}"
        );
    }
    // Every junk datagram was read before its window's PINGRESP; the
    // counters are published every few milliseconds.
    let snap = wait_gw(&gw, "every malformed datagram counted", |s| {
        s.gateway.decode_errors - before >= sent_junk
    });
    assert_eq!(snap.gateway.decode_errors - before, sent_junk, "{snap:#?}");
    let t_junk = t0.elapsed();

    stop.store(true, Ordering::Relaxed);
    let report = good.join().expect("good client thread");
    let hwm = vm("VmHWM");
    let rss = vm("VmRSS");
    assert!(!gw.is_finished(), "the gateway thread ended");
    let d = gw.stop().expect("stop gateway");
    let st = d.gateway().stats();
    let io = d.io_stats();
    eprintln!(
        "abuse: CONNECTs {t_connect:.1?}, REGISTERs done {t_register:.1?}, junk done {t_junk:.1?}; \
         {} datagrams in, {} out; clients {}; registrations {}; decode errors {}; \
         RSS {} MiB at start, {} MiB at end, peak {} MiB; good client: {} sent, {} acked, {} received, \
         max round trip {:?}",
        io.datagrams_received,
        io.datagrams_sent,
        st.clients,
        st.registrations,
        st.decode_errors,
        rss0 >> 20,
        rss >> 20,
        hwm >> 20,
        report.sent,
        report.acked,
        report.received,
        report.max_round_trip
    );
    assert_eq!(st.registrations, 100 * 64);
    assert_eq!(st.connects_refused, 10_000 - (max_clients - 1));
    assert_eq!(io.sources_dropped, 0);
    // The good client: never lost its gateway, never gave up, round trips
    // all along.
    assert!(report.trouble.is_empty(), "{:#?}", report.trouble);
    assert!(report.received >= 20, "{report:#?}");
    assert!(
        report.max_round_trip < Duration::from_secs(2),
        "{report:#?}"
    );
    // Memory: 5 000 sessions and 6 400 topic ids cost a few MiB; the bound
    // leaves room for the other tests of this binary running alongside.
    const BOUND: u64 = 32 << 20;
    assert!(
        hwm.saturating_sub(rss0) < BOUND,
        "peak RSS {} MiB, {} MiB above the start (bound {} MiB)",
        hwm >> 20,
        (hwm - rss0) >> 20,
        BOUND >> 20
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    drop(broker);
}

/// `GatewayConfig::max_topic_len` (default 256 bytes): a longer topic name
/// in a REGISTER, a SUBSCRIBE or a will topic is refused with "not
/// supported" and counted; one of exactly 256 bytes is served. Before the
/// bound every accepted REGISTER kept its name, up to 64 of ~65 KB per
/// client: 4 MiB a client, 20 GB for 5,000.
#[test]
fn topic_names_longer_than_the_bound_are_refused_and_counted() {
    let broker = our_broker();
    let cfg = gateway_config(GatewayMode::Aggregating, &[]);
    assert_eq!(cfg.max_topic_len, 256);
    let gw = start_gateway(broker.local_addr(), cfg);
    let to = gw.local_addr();
    let s = UdpSocket::bind((LOCALHOST, 0)).expect("bind client");
    let ack = ask(&s, to, &connect_msg("long-names", 60)).expect("CONNACK");
    assert!(matches!(
        decode(&ack),
        Ok(Message::ConnAck {
            code: ReturnCode::Accepted
        })
    ));
    let fits = format!("t/{}", "a".repeat(254));
    let over = format!("t/{}", "b".repeat(255));
    let huge = format!("t/{}", "c".repeat(60_000));
    let register = |name: &str, msg_id: u16| {
        let r = ask(
            &s,
            to,
            &sn(&Message::Register {
                topic_id: 0,
                msg_id,
                topic_name: name,
            }),
        )
        .expect("REGACK");
        match decode(&r) {
            Ok(Message::RegAck {
                code, msg_id: m, ..
            }) if m == msg_id => code,
            other => panic!("REGISTER answered {other:?}"),
        }
    };
    assert_eq!(register(&fits, 1), ReturnCode::Accepted);
    assert_eq!(register(&over, 2), ReturnCode::NotSupported);
    assert_eq!(register(&huge, 3), ReturnCode::NotSupported);
    let subscribe = |name: &str, msg_id: u16| {
        let r = ask(
            &s,
            to,
            &sn(&Message::Subscribe {
                dup: false,
                qos: Qos::Zero,
                msg_id,
                topic: SubTopic::Name(name),
            }),
        )
        .expect("SUBACK");
        match decode(&r) {
            Ok(Message::SubAck {
                code, msg_id: m, ..
            }) if m == msg_id => code,
            other => panic!("SUBSCRIBE answered {other:?}"),
        }
    };
    assert_eq!(subscribe(&over, 4), ReturnCode::NotSupported);
    assert_eq!(subscribe(&fits, 5), ReturnCode::Accepted);
    // a will topic past the bound refuses the CONNECT
    let w = UdpSocket::bind((LOCALHOST, 0)).expect("bind client");
    let req = ask(
        &w,
        to,
        &sn(&Message::Connect {
            will: true,
            clean_session: true,
            duration: 60,
            client_id: "long-will",
        }),
    )
    .expect("WILLTOPICREQ");
    assert!(matches!(decode(&req), Ok(Message::WillTopicReq)), "{req:?}");
    let r = ask(
        &w,
        to,
        &sn(&Message::WillTopic(Some(WillTopic {
            qos: Qos::Zero,
            retain: false,
            topic: &over,
        }))),
    )
    .expect("CONNACK");
    assert!(
        matches!(
            decode(&r),
            Ok(Message::ConnAck {
                code: ReturnCode::NotSupported
            })
        ),
        "{r:?}"
    );
    let snap = wait_gw(&gw, "the refusals counted", |s| {
        s.gateway.topics_too_long >= 4
    });
    assert_eq!(snap.gateway.topics_too_long, 4, "{snap:#?}");
    assert_eq!(snap.gateway.registrations, 1, "{snap:#?}");
    gw.stop().expect("stop gateway");
    drop(broker);
}

/// Peak RSS bound of `qossim gateway` under the abuse below: the process
/// (about 4 MiB resident idle), 5,000 sessions with their timers, 100
/// clients' 64 topic ids (names of at most 256 bytes), a 64 KiB datagram
/// buffer, the aggregating connection's bounded queue. The flood alone is
/// 100 MB: a gateway that kept any part of what it read would pass this.
const GATEWAY_RSS_BOUND_KIB: u64 = 32 * 1024;

/// `qossim gateway` (the binary, aggregating, in front of our broker),
/// abused on loopback while our client core's QoS 1 round trips through it
/// continue:
/// - CONNECTs from 10,000 distinct source ports (all open at once): those
///   past `--max-clients 5000` are refused with "congestion" and counted;
/// - REGISTER floods from 100 of them: 1,000 each, names of 200 bytes (64
///   topic ids each, the rest "congestion") and, one in ten, of over
///   1,000 bytes (past `--max-topic-len`: "not supported", counted);
/// - 10 clients send 1,000 QoS 2 PUBLISHes each and never release them
///   (each gets its PUBREC);
/// - ≥ 100 MB of random datagrams from 1,000 source ports, paced by
///   PINGREQs so the socket buffer does not overflow (each is read and
///   counted malformed);
/// - VmHWM of the gateway process under [`GATEWAY_RSS_BOUND_KIB`]; after
///   SIGINT it exits 0 and its summary counts all of it.
#[test]
fn qossim_gateway_abuse_is_bounded_and_a_good_client_is_served() {
    let t0 = Instant::now();
    let broker = our_broker();
    let gw = start_qossim_gateway_with(
        broker.local_addr(),
        "aggregating",
        "abuse-gw",
        &["--max-clients", "5000"],
    );
    let to = SocketAddr::from((LOCALHOST, gw.port));
    let pid = gw.child.0.id();
    let hwm = || common::abuse::peak_rss_kib(pid).expect("VmHWM of qossim gateway");
    let idle = hwm();
    let (stop, good) = start_good_client(to);

    // 10,000 distinct source ports, all open until every CONNECT is
    // answered (a closed port could come back as a later socket's)
    let socks: Vec<UdpSocket> = (0..10_000)
        .map(|_| UdpSocket::bind((LOCALHOST, 0)).expect("bind abuse socket"))
        .collect();
    let replies = exchange(&socks, to, |i| connect_msg(&format!("cli-{i}"), 600));
    let c = codes(&replies, "CONNECT", connack_code);
    // --max-clients counts the good client too
    assert_eq!(
        (n(&c, ReturnCode::Accepted), n(&c, ReturnCode::Congestion)),
        (4_999, 5_001)
    );
    let kept: Vec<UdpSocket> = socks.into_iter().take(100).collect();
    let t_connect = t0.elapsed();

    // REGISTER floods: 1,000 from each of 100 clients
    let mut regacks = BTreeMap::new();
    // (1,000 bytes: a window of 50 such datagrams stays well inside the
    // gateway's socket buffer)
    let long_tail = "L".repeat(1000);
    for round in 0..1000u16 {
        let replies = exchange(&kept, to, |i| {
            let name = if round % 10 == 9 {
                format!("abuse/{i}/{round}/{long_tail}")
            } else {
                format!("abuse/{i}/{round}/{:0>180}", 0)
            };
            sn(&Message::Register {
                topic_id: 0,
                msg_id: round + 1,
                topic_name: &name,
            })
        });
        for (code, k) in codes(&replies, "REGISTER", regack_code) {
            *regacks.entry(code).or_insert(0) += k;
        }
    }
    assert_eq!(
        regacks,
        BTreeMap::from([
            (ReturnCode::Accepted, 100 * 64),
            (ReturnCode::Congestion, 100 * (900 - 64)),
            (ReturnCode::NotSupported, 100 * 100),
        ])
    );
    let t_register = t0.elapsed();

    // QoS 2 never released: 1,000 PUBLISHes from each of 10 clients on a
    // topic id each registered above
    let payload = [0x42u8; 100];
    let mut pubrecs = 0u64;
    for round in 0..1000u16 {
        let replies = exchange(&kept[..10], to, |_| {
            sn(&Message::Publish {
                dup: false,
                qos: Qos::Two,
                retain: false,
                topic: TopicRef::Normal(1),
                msg_id: round + 1,
                data: &payload,
            })
        });
        for r in replies {
            match r.as_deref().map(decode) {
                Some(Ok(Message::PubRec { msg_id })) if msg_id == round + 1 => pubrecs += 1,
                other => panic!("QoS 2 PUBLISH answered {other:?}"),
            }
        }
    }
    assert_eq!(pubrecs, 10_000);
    let t_qos2 = t0.elapsed();

    // ≥ 100 MB of random datagrams (1 to 16 KiB, now and then 64 KiB) from
    // 1,000 source ports; after every 8 a PINGREQ round trip
    let junk_socks: Vec<UdpSocket> = (0..1000)
        .map(|_| UdpSocket::bind((LOCALHOST, 0)).expect("bind junk socket"))
        .collect();
    let mut rng = SimRng::stream(19, "gateway-flood");
    let mut junk = common::abuse::Junk::new(19);
    let mut buf = vec![0u8; 65_507];
    let (mut junk_bytes, mut junk_sent) = (0u64, 0u64);
    let pacer = &kept[10..11];
    while junk_bytes < 100_000_000 {
        for _ in 0..8 {
            let len = if junk_sent % 50 == 49 {
                65_507
            } else {
                1024 + rng.below(15 * 1024 + 1) as usize
            };
            junk.fill(&mut buf[..len]);
            // random bytes behind a 3-byte Length of 0 (below any header):
            // never a message, whatever the bytes
            buf[0] = 0x01;
            buf[1] = 0x00;
            buf[2] = 0x00;
            let s = &junk_socks[(junk_sent % 1000) as usize];
            s.send_to(&buf[..len], to).expect("send junk");
            junk_sent += 1;
            junk_bytes += len as u64;
        }
        let r = exchange(pacer, to, |_| ping());
        assert!(
            matches!(r[0].as_deref().map(decode), Some(Ok(Message::PingResp))),
            "PINGRESP after junk: {r:?}"
        );
    }
    let t_junk = t0.elapsed();

    stop.store(true, Ordering::Relaxed);
    let report = good.join().expect("good client thread");
    let peak = hwm();
    let (code, text) = gw.stop();
    let c = summary_counters(&text);
    eprintln!(
        "qossim gateway abuse: CONNECTs {t_connect:.1?}, REGISTERs {t_register:.1?}, \
         QoS 2 {t_qos2:.1?}, junk {t_junk:.1?} ({junk_sent} datagrams, {junk_bytes} B); \
         VmHWM {idle} KiB idle, {peak} KiB at the end (bound {GATEWAY_RSS_BOUND_KIB} KiB); \
         good client: {} sent, {} acked, {} received, max round trip {:?}\n{text}",
        report.sent, report.acked, report.received, report.max_round_trip
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(c.get("clients refused"), Some(&5_001), "{c:#?}");
    assert_eq!(c.get("clients registrations"), Some(&(100 * 64)), "{c:#?}");
    assert_eq!(
        c.get("clients topics too long"),
        Some(&(100 * 100)),
        "{c:#?}"
    );
    assert!(
        c.get("mqtt-sn malformed").copied().unwrap_or(0) >= junk_sent,
        "{c:#?}"
    );
    assert!(report.trouble.is_empty(), "{:#?}", report.trouble);
    assert!(report.received >= 20, "{report:#?}");
    assert!(
        report.max_round_trip < Duration::from_secs(2),
        "{report:#?}"
    );
    assert!(
        peak < GATEWAY_RSS_BOUND_KIB,
        "qossim gateway peak RSS {peak} KiB, bound {GATEWAY_RSS_BOUND_KIB} KiB"
    );
    drop(kept);
    drop(broker);
}
