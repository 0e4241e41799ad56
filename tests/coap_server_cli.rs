//! `qossim coap-server`: the REAL binary served on a free loopback UDP port
//! (`--listen 127.0.0.1:0`, the bound address read from its banner),
//! driven by libcoap's `coap-client-notls`, `aiocoap-client` and raw
//! datagrams (tests/common/abuse.rs).
//!
//! Peers: `coap-client-notls` (Debian `libcoap3-bin`) and `aiocoap-client`
//! (PyPI aiocoap); scripts/test.sh installs them. Without them a test says
//! why and returns, except under `CI=true`, where it fails.

mod common;

use common::cli::run;

use common::abuse::{coap_header, coap_payload, coap_request};
use common::peers::{peer_binary, LOCALHOST};
use common::served::Served;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn coap_client() -> Option<PathBuf> {
    peer_binary("coap-client-notls", "install Debian package libcoap3-bin")
}

/// `coap-client-notls <args>` against `s` (URIs are relative to it):
/// stdout, stderr; it must exit 0 within 20 s.
fn client(bin: &PathBuf, s: &Served, args: &[&str]) -> (String, String) {
    let base = format!("coap://{}", s.addr);
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(p) => format!("{base}/{p}"),
            None => a.to_string(),
        })
        .collect();
    let out = Command::new(bin)
        .args(["-B", "20"])
        .args(&args)
        .output()
        .expect("run coap-client-notls");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "coap-client {args:?}: {o} {e}");
    (o, e)
}

/// One `--log` line, as docs/coap.md "`qossim coap-server`" gives it.
#[derive(Debug)]
struct LogLine {
    time: f64,
    dir: String,
    ty: String,
    code: String,
    mid: u16,
    token: String,
    opts: String,
    payload: usize,
    len: usize,
}

/// Parse a log line: `TIME peer=IP:PORT DIR TYPE CODE mid=N token=HEX|-
/// opts=LIST|- payload=N len=N`; `None` for a MALFORMED line.
fn parse_line(l: &str) -> Option<LogLine> {
    let w: Vec<&str> = l.split(' ').collect();
    if w.get(2).is_some_and(|d| *d == "in") && w.get(3) == Some(&"MALFORMED") {
        return None;
    }
    assert_eq!(w.len(), 10, "fields of {l:?}");
    let field = |i: usize, k: &str| -> String {
        w[i].strip_prefix(k)
            .and_then(|v| v.strip_prefix('='))
            .unwrap_or_else(|| panic!("{k}= in {l:?}"))
            .to_string()
    };
    let peer = field(1, "peer");
    assert!(
        peer.parse::<std::net::SocketAddr>().is_ok(),
        "peer in {l:?}"
    );
    let line = LogLine {
        time: w[0].parse().unwrap_or_else(|_| panic!("time in {l:?}")),
        dir: w[2].to_string(),
        ty: w[3].to_string(),
        code: w[4].to_string(),
        mid: field(5, "mid").parse().expect("mid"),
        token: field(6, "token"),
        opts: field(7, "opts"),
        payload: field(8, "payload").parse().expect("payload"),
        len: field(9, "len").parse().expect("len"),
    };
    assert!(matches!(line.dir.as_str(), "in" | "out"), "{l:?}");
    assert!(
        matches!(line.ty.as_str(), "CON" | "NON" | "ACK" | "RST"),
        "{l:?}"
    );
    Some(line)
}

/// Every line of the server's log, parsed (each must parse), once it has
/// at least `n` lines (an answer's line is written just after the answer
/// is sent, so a client may be done before it is there; at most 10 s).
fn log_lines(s: &Served, n: usize) -> Vec<LogLine> {
    let start = Instant::now();
    while s.log_text().lines().count() < n && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.log_text().lines().filter_map(parse_line).collect()
}

/// GET, PUT then GET, POST, DELETE, `/.well-known/core` with libcoap, each
/// answered as RFC 7252 §5.8 says; one log line per datagram in and out,
/// every one parsing, in time order, with the request's MID and token on
/// its answer.
#[test]
fn libcoap_get_put_post_delete_and_discovery() {
    let Some(bin) = coap_client() else { return };
    let s = Served::start_coap("methods", &["--resource", "sensors/temp=21.5"]);
    let (out, _) = client(&bin, &s, &["-m", "get", "/sensors/temp"]);
    assert_eq!(out.trim(), "21.5");
    client(&bin, &s, &["-m", "put", "-e", "on", "/actuators/led"]);
    let (out, _) = client(&bin, &s, &["-m", "get", "/actuators/led"]);
    assert_eq!(out.trim(), "on");
    client(&bin, &s, &["-m", "post", "-e", "42", "/counters/a"]);
    let (out, _) = client(&bin, &s, &["-m", "get", "/counters/a"]);
    assert_eq!(out.trim(), "42");
    client(&bin, &s, &["-m", "delete", "/counters/a"]);
    let (out, err) = client(&bin, &s, &["-m", "get", "/counters/a"]);
    assert!(
        format!("{out}{err}").contains("4.04"),
        "after DELETE: {out} {err}"
    );
    let (out, _) = client(&bin, &s, &["-m", "get", "/.well-known/core"]);
    assert_eq!(out.trim(), "</actuators/led>,</sensors/temp>");

    // 8 exchanges, each a CON request and its piggybacked ACK
    let lines = log_lines(&s, 16);
    assert_eq!(lines.len(), 16, "{}", s.log_text());
    let codes: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l.dir.as_str(), l.ty.as_str(), l.code.as_str()))
        .collect();
    let expect = [
        ("GET", "2.05"),
        ("PUT", "2.01"),
        ("GET", "2.05"),
        ("POST", "2.01"),
        ("GET", "2.05"),
        ("DELETE", "2.02"),
        ("GET", "4.04"),
        ("GET", "2.05"),
    ];
    for (i, (req, resp)) in expect.iter().enumerate() {
        assert_eq!(codes[2 * i], ("in", "CON", *req), "{}", s.log_text());
        assert_eq!(codes[2 * i + 1], ("out", "ACK", *resp), "{}", s.log_text());
        let (q, a) = (&lines[2 * i], &lines[2 * i + 1]);
        assert_eq!((q.mid, &q.token), (a.mid, &a.token), "{q:?} {a:?}");
    }
    assert!(lines.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(lines[0]
        .opts
        .contains("Uri-Path=\"sensors\",Uri-Path=\"temp\""));
    assert_eq!((lines[1].payload, lines[1].len), (4, 10), "{:?}", lines[1]);
    assert_eq!(lines[15].opts, "Content-Format=40", "{:?}", lines[15]);

    let stopped = s.stop_with(libc::SIGINT);
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert!(
        stopped
            .summary_line("requests:")
            .starts_with("requests: 8 served; responses 2.xx 7, 4.xx 1, 5.xx 0;"),
        "{}",
        stopped.stderr
    );
    assert!(stopped
        .summary_line("store:")
        .starts_with("store: 2 resources,"));
}

/// A representation larger than a block: without block-wise (the default)
/// it is answered whole; with `--scenario` and `protocols.coap.block_size
/// = 64` it is served in 64-byte Block2 slices (RFC 7959) that
/// `coap-client -b 64` reassembles — the scenario's option visibly in
/// force.
#[test]
fn scenario_block_size_serves_block_wise() {
    let Some(bin) = coap_client() else { return };
    let value: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let resource = format!("big={value}");
    let plain = Served::start_coap("plain", &["--resource", &resource]);
    let (out, _) = client(&bin, &plain, &["-m", "get", "/big"]);
    assert_eq!(out.trim(), value);
    let lines = log_lines(&plain, 2);
    assert_eq!(lines.len(), 2, "{}", plain.log_text());
    assert_eq!((lines[1].payload, lines[1].opts.as_str()), (300, "-"));

    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quickstart.toml");
    let blocks = Served::start_coap(
        "blocks",
        &[
            "--resource",
            &resource,
            "--scenario",
            scenario,
            "--set",
            "protocols.coap.block_size=64",
        ],
    );
    let (out, _) = client(&bin, &blocks, &["-b", "64", "-m", "get", "/big"]);
    assert_eq!(out.trim(), value);
    let lines = log_lines(&blocks, 10);
    let slices: Vec<&LogLine> = lines.iter().filter(|l| l.dir == "out").collect();
    // 300 bytes in 64-byte blocks: 4 full and one of 44
    assert_eq!(slices.len(), 5, "{}", blocks.log_text());
    for (i, l) in slices.iter().enumerate() {
        let more = u8::from(i < 4);
        assert!(l.opts.contains(&format!("Block2={i}/{more}/64")), "{l:?}");
        assert_eq!(l.payload, if i < 4 { 64 } else { 44 }, "{l:?}");
    }
    assert!(blocks
        .stop_with(libc::SIGTERM)
        .stderr
        .contains("block-wise 5 Block2 sent"));
}

/// `coap-client -s` observes a resource (RFC 7641); another client's PUT
/// reaches it as a notification with the new value.
#[test]
fn observe_sees_another_clients_put() {
    let Some(bin) = coap_client() else { return };
    let s = Served::start_coap("observe", &["--resource", "room/temp=20"]);
    let out_file = common::temp_dir("observe-out").join("observer.txt");
    let _observer = common::peers::KillOnDrop(
        Command::new(&bin)
            .args(["-s", "6", "-m", "get"])
            .arg(format!("coap://{}/room/temp", s.addr))
            .stdout(std::fs::File::create(&out_file).expect("out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("coap-client -s"),
    );
    s.wait_log(&["in CON GET", "Observe=0", "Uri-Path=\"room\""]);
    s.wait_log(&["out ACK 2.05", "Observe="]);
    client(&bin, &s, &["-m", "put", "-e", "23.5", "/room/temp"]);
    // the notification: a CON 2.05 with the next Observe number
    s.wait_log(&["out CON 2.05", "Observe=1", "payload=4"]);
    let start = Instant::now();
    while !std::fs::read_to_string(&out_file)
        .unwrap_or_default()
        .contains("23.5")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "observer never printed 23.5: {:?}\n{}",
            std::fs::read_to_string(&out_file),
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = s.stop_with(libc::SIGTERM);
    assert!(
        stopped.summary_line("observe:").contains("1 registrations"),
        "{}",
        stopped.stderr
    );
}

/// aiocoap-client GETs a preloaded resource and PUTs a new one.
#[test]
fn aiocoap_get_and_put() {
    let Some(bin) = peer_binary("aiocoap-client", "pip install aiocoap") else {
        return;
    };
    let s = Served::start_coap("aiocoap", &["--resource", "sensors/hum=55"]);
    let run = |args: &[&str]| {
        let o = Command::new(&bin)
            .env("PYTHONUNBUFFERED", "1")
            .args(args)
            .output()
            .expect("aiocoap-client");
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(run(&[&format!("coap://{}/sensors/hum", s.addr)]), "55");
    run(&[
        "-m",
        "PUT",
        "--payload",
        "7",
        &format!("coap://{}/x", s.addr),
    ]);
    assert_eq!(run(&[&format!("coap://{}/x", s.addr)]), "7");
    // 3 exchanges
    let lines = log_lines(&s, 6);
    assert!(lines.iter().any(|l| l.code == "PUT"), "{}", s.log_text());
}

/// `--separate-delay 300ms`: a CON GET gets an Empty ACK at once and its
/// answer 300 ms later as a CON 2.05 with the request's token (RFC 7252
/// §5.2.2), which the client ACKs; libcoap prints the value.
#[test]
fn separate_delay_answers_after_an_empty_ack() {
    let Some(bin) = coap_client() else { return };
    let s = Served::start_coap(
        "separate",
        &["--resource", "slow=1", "--separate-delay", "300ms"],
    );
    let (out, _) = client(&bin, &s, &["-m", "get", "/slow"]);
    assert_eq!(out.trim(), "1");
    s.wait_log(&["in ACK EMPTY"]);
    let l = log_lines(&s, 4);
    let seq: Vec<(&str, &str, &str)> = l
        .iter()
        .map(|x| (x.dir.as_str(), x.ty.as_str(), x.code.as_str()))
        .collect();
    assert_eq!(
        seq,
        [
            ("in", "CON", "GET"),
            ("out", "ACK", "EMPTY"),
            ("out", "CON", "2.05"),
            ("in", "ACK", "EMPTY"),
        ],
        "{}",
        s.log_text()
    );
    assert_eq!(l[2].token, l[0].token);
    let gap = l[2].time - l[1].time;
    assert!((0.29..5.0).contains(&gap), "separate after {gap} s");
    let stopped = s.stop_with(libc::SIGINT);
    assert!(stopped
        .summary_line("requests:")
        .contains("1 separate, 1 empty ACKs"));
}

/// SIGINT and SIGTERM: exit 0 within 2 s, the summary on stderr counting
/// what was served (one raw GET, one malformed datagram).
fn stops_on(signal: libc::c_int) {
    let s = Served::start_coap("signal", &["--resource", "a=1"]);
    let c = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.send_to(&[0xff, 0, 0], s.addr).expect("send junk");
    c.send_to(&coap_request(true, 1, 7, b"t", "a", &[], &[]), s.addr)
        .expect("send GET");
    let mut buf = [0u8; 512];
    let (n, _) = c.recv_from(&mut buf).expect("answer");
    assert_eq!(coap_header(&buf[..n]), Some((2, 0x45, 7)));
    assert_eq!(coap_payload(&buf[..n]), b"1");
    let stopped = s.stop_with(signal);
    assert!(stopped.status.success(), "{signal}: {:?}", stopped.status);
    assert!(stopped.took < Duration::from_secs(2), "{:?}", stopped.took);
    assert!(
        stopped
            .stderr
            .starts_with("qossim coap-server: stopped after "),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped
            .summary_line("datagrams:")
            .starts_with("datagrams: 2 in (")
            && stopped
                .summary_line("datagrams:")
                .contains("1 malformed (not CoAP: 1)"),
        "{}",
        stopped.stderr
    );
    assert!(stopped
        .summary_line("requests:")
        .starts_with("requests: 1 served; responses 2.xx 1,"));
}

#[test]
fn sigint_exits_0_with_summary() {
    stops_on(libc::SIGINT);
}

#[test]
fn sigterm_exits_0_with_summary() {
    stops_on(libc::SIGTERM);
}

/// A request code the server has no method for (0.05 FETCH, RFC 8132) is
/// answered 4.05 Method Not Allowed by the endpoint (RFC 7252 §5.8), and
/// the server keeps serving.
#[test]
fn an_unknown_method_is_answered_4_05() {
    let s = Served::start_coap("method", &["--resource", "a=1"]);
    let c = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    c.send_to(&coap_request(true, 5, 3, b"f", "a", &[], &[]), s.addr)
        .expect("send FETCH");
    let (n, _) = c.recv_from(&mut buf).expect("answer");
    assert_eq!(coap_header(&buf[..n]), Some((2, 0x85, 3)), "ACK 4.05");
    c.send_to(&coap_request(true, 1, 4, b"g", "a", &[], &[]), s.addr)
        .expect("send GET");
    let (n, _) = c.recv_from(&mut buf).expect("answer");
    assert_eq!(coap_header(&buf[..n]), Some((2, 0x45, 4)), "ACK 2.05");
    let l = log_lines(&s, 4);
    assert_eq!((l[0].code.as_str(), l[1].code.as_str()), ("0.05", "4.05"));
}

/// Bad arguments exit 2 naming the option; an address in use or an
/// unwritable --log exit 3 (README.md "Exit codes", as `qossim broker`).
#[test]
fn address_in_use_exits_3_bad_arguments_exit_2() {
    let taken = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, _, err) = run(&["coap-server", "--listen", &addr]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&addr) && err.contains("binding UDP socket"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "coap-server",
        "--listen",
        "127.0.0.1:0",
        "--log",
        "/nonexistent-dir/x.log",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("--log /nonexistent-dir/x.log: cannot create it"),
        "{err}"
    );

    let l = ["coap-server", "--listen", "127.0.0.1:0"];
    for (extra, says) in [
        (&["--resource", "novalue"][..], "expected PATH=VALUE"),
        (&["--resource", "/=1"], "the path is empty"),
        (&["--resource", "a//b=1"], "segment is empty"),
        (
            &["--resource", "a=1", "--resource", "/a=2"],
            "a is given twice",
        ),
        (
            &["--max-value", "10", "--resource", "a=12345678901"],
            "more than --max-value 10",
        ),
        (
            &["--max-resources", "0"],
            "--max-resources must be at least 1",
        ),
        (
            &["--max-observers", "0"],
            "--max-observers must be at least 1",
        ),
        (
            &["--max-value", "100", "--max-bytes", "10"],
            "more than --max-bytes",
        ),
        (
            &["--separate-delay", "soon"],
            "--separate-delay: invalid duration",
        ),
        (&["--scenario", "/nonexistent.toml"], "nonexistent.toml"),
        (&["--set", "x=1"], "--scenario"),
    ] {
        let mut args = l.to_vec();
        args.extend_from_slice(extra);
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    for (listen, says) in [
        ("[::1]:5683", "is IPv6; qossim coap-server serves IPv4 only"),
        ("nonsense", "not an address (HOST:PORT)"),
    ] {
        let (code, _, err) = run(&["coap-server", "--listen", listen]);
        assert_eq!(code, 2, "{listen}: {err}");
        assert!(err.contains(says), "{listen}: {err}");
    }
    let (code, _, err) = run(&[
        "coap-server",
        "--listen",
        "127.0.0.1:0",
        "--scenario",
        concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quickstart.toml"),
        "--set",
        "protocols.coap.block_size=100",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("block_size"), "{err}");
}
