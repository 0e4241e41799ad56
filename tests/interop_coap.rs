//! Interop: the sans-IO CoAP endpoint over a real UDP socket against libcoap
//! (Debian `libcoap3-bin`: `coap-server-notls`, `coap-client-notls`).
//!
//! Under `CI=true` a missing libcoap binary fails the test; otherwise the
//! test prints why and returns. Every wait is bounded (child processes are
//! killed by a Drop guard, clients get `-B` and our loops a deadline).

use std::net::{SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qossim::proto::coap::socket::SocketDriver;
use qossim::proto::coap::{
    BlockStep, BlockTransfer, Code, Config, Endpoint, Event, Method, Request, RequestHandle,
    ResourceServer,
};
use qossim::sim::{SimDuration, SimRng};

mod common;
use common::peers::{KillOnDrop, LOCALHOST};

/// `name` as [`common::peers::peer_binary`] finds it (Debian package
/// libcoap3-bin).
fn peer_binary(name: &str) -> Option<PathBuf> {
    common::peers::peer_binary(name, "install Debian package libcoap3-bin")
}

/// A free loopback port for a peer to listen on (outside the ephemeral
/// range, see [`common::peers::free_port`]).
fn free_udp_port() -> u16 {
    common::peers::free_port()
}

fn client_driver(seed: u64) -> SocketDriver {
    let ep = Endpoint::new(Config::default(), SimRng::stream(seed, "interop/client"), 1);
    SocketDriver::bind(SocketAddrV4::new(LOCALHOST, 0), ep).expect("bind client")
}

/// Start `coap-server-notls` on a free loopback port and wait until it
/// answers a CoAP ping (Empty CON) with RST (RFC 7252 §4.3).
fn start_libcoap_server(bin: &PathBuf) -> (KillOnDrop, SocketAddrV4) {
    let port = free_udp_port();
    let child = Command::new(bin)
        .args(["-A", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coap-server-notls");
    let guard = KillOnDrop(child);
    let addr = SocketAddrV4::new(LOCALHOST, port);
    let probe = UdpSocket::bind((LOCALHOST, 0)).expect("bind probe");
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 64];
    loop {
        assert!(
            Instant::now() < deadline,
            "coap-server-notls did not answer a ping within 5 s"
        );
        probe
            .send_to(&[0x40, 0x00, 0xBE, 0xEF], addr)
            .expect("send ping");
        if let Ok((n, _)) = probe.recv_from(&mut buf) {
            assert_eq!(
                &buf[..n],
                &[0x70, 0x00, 0xBE, 0xEF],
                "ping answered by RST with the same MID"
            );
            return (guard, addr);
        }
    }
}

/// Send one request and wait (≤ 10 s) for its response.
fn exchange(d: &mut SocketDriver, to: SocketAddrV4, req: Request) -> (Code, Vec<u8>) {
    let h: RequestHandle = d.request(to, req).expect("request");
    d.run_until(Duration::from_secs(10), |e| match e {
        Event::ResponseReceived {
            handle,
            code,
            payload,
            ..
        } if *handle == h => Some((*code, payload.clone())),
        Event::GaveUp { handle }
        | Event::NoResponse { handle }
        | Event::ResetReceived { handle }
            if *handle == h =>
        {
            Some((Code::EMPTY, Vec::new()))
        }
        _ => None,
    })
    .expect("response within 10 s")
}

#[test]
fn our_client_against_libcoap_server() {
    let Some(bin) = peer_binary("coap-server-notls") else {
        return;
    };
    let (_server, addr) = start_libcoap_server(&bin);
    let mut d = client_driver(1);

    // GET /time (CON): 2.05 with the server's clock as text.
    let (code, payload) = exchange(&mut d, addr, Request::get("time"));
    assert_eq!(code, Code::CONTENT);
    assert!(!payload.is_empty(), "/time has a representation");

    for con in [true, false] {
        let value = if con { "qossim-con" } else { "qossim-non" };
        let (code, _) = exchange(
            &mut d,
            addr,
            Request::put("example_data", value.as_bytes()).confirmable(con),
        );
        // libcoap's example server answers 2.01 when /example_data had no
        // value yet and 2.04 afterwards (RFC 7252 §5.8.3), as ours does.
        let want = if con { Code::CREATED } else { Code::CHANGED };
        assert_eq!(code, want, "PUT /example_data (con={con})");
        let (code, payload) = exchange(&mut d, addr, Request::get("example_data").confirmable(con));
        assert_eq!(code, Code::CONTENT, "GET /example_data (con={con})");
        assert_eq!(payload, value.as_bytes());
    }

    let (code, _) = exchange(&mut d, addr, Request::get("no/such/resource"));
    assert_eq!(code, Code::NOT_FOUND);
    let st = d.endpoint().stats();
    assert_eq!(st.give_ups + st.no_responses, 0);
}

/// Run our server until `coap-client-notls` with `args` exits (≤ 15 s);
/// return its stdout and stderr.
fn run_libcoap_client(bin: &PathBuf, server: &mut SocketDriver, args: &[&str]) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["-B", "5"]).args(args);
    run_peer(cmd, server, |_, _| false)
}

/// Run our server while the client `cmd` runs: until it exits (≤ 15 s)
/// or `tick`, run after every server step with the time since the start,
/// says it has seen enough (then the client is killed: an observing
/// client never exits on its own). Returns stdout and stderr.
fn run_peer(
    mut cmd: Command,
    server: &mut SocketDriver,
    mut tick: impl FnMut(&mut SocketDriver, Duration) -> bool,
) -> (String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut guard = KillOnDrop(child);
    let start = Instant::now();
    loop {
        server.step(Duration::from_millis(20)).expect("server step");
        let enough = tick(server, start.elapsed());
        if guard.0.try_wait().expect("try_wait").is_some() {
            break;
        }
        if enough {
            let _ = guard.0.kill();
            let _ = guard.0.wait();
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{cmd:?} did not finish within 15 s"
        );
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = guard.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    if let Some(mut e) = guard.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (out, err)
}

/// The events the server collected, without `ResponseAcked` (counted into
/// `acked`).
fn requests(server: &mut SocketDriver, acked: &mut usize) -> Vec<Event> {
    std::iter::from_fn(|| server.poll_event())
        .filter(|e| {
            let ack = matches!(e, Event::ResponseAcked { .. });
            *acked += usize::from(ack);
            !ack
        })
        .collect()
}

fn libcoap_client_against_our_server(separate: Option<SimDuration>) {
    let Some(bin) = peer_binary("coap-client-notls") else {
        return;
    };
    let ep = Endpoint::new(Config::default(), SimRng::stream(2, "interop/server"), 1000);
    let app = ResourceServer::new().with_separate_response_delay(separate);
    let mut server = SocketDriver::bind(SocketAddrV4::new(LOCALHOST, 0), ep)
        .expect("bind server")
        .with_server(app);
    let base = format!("coap://127.0.0.1:{}", server.local_addr().port());
    let path = "building/xyz/room/120/temperature";
    let uri = format!("{base}/{path}");

    // What the server application saw: the requests, and (separate mode, CON
    // requests) libcoap's ACKs of our separate CON responses, counted apart.
    let mut acked = 0;
    for (flags, value) in [(&[][..], "22.5"), (&["-N"][..], "23.5")] {
        let mut args = flags.to_vec();
        args.extend(["-m", "put", "-e", value, &uri]);
        let (_out, err) = run_libcoap_client(&bin, &mut server, &args);
        let stored = server
            .server()
            .and_then(|s| s.resources().get(path))
            .map(|r| r.value.clone());
        assert_eq!(
            stored.as_deref(),
            Some(value.as_bytes()),
            "PUT {flags:?} stored; client stderr: {err}"
        );
        let evs = requests(&mut server, &mut acked);
        assert_eq!(evs.len(), 1, "application saw the request once: {evs:?}");
        let ev = evs.first();
        assert!(
            matches!(ev, Some(Event::RequestReceived { method: Method::Put, path: p, payload, confirmable, .. })
                if p == path && payload == value.as_bytes() && *confirmable == flags.is_empty()),
            "{ev:?}"
        );
        let mut args = flags.to_vec();
        args.extend(["-m", "get", &uri]);
        let (out, err) = run_libcoap_client(&bin, &mut server, &args);
        assert_eq!(
            out.trim(),
            value,
            "GET {flags:?} printed the stored value; stderr: {err}"
        );
        let evs = requests(&mut server, &mut acked);
        assert!(
            matches!(
                evs.as_slice(),
                [Event::RequestReceived {
                    method: Method::Get,
                    ..
                }]
            ),
            "one GET seen: {evs:?}"
        );
    }
    // resource discovery (RFC 6690): libcoap reads our link format (NON,
    // so no separate response needs an ACK)
    let (out, err) = run_libcoap_client(
        &bin,
        &mut server,
        &["-N", "-m", "get", &format!("{base}/.well-known/core")],
    );
    assert_eq!(
        out.trim(),
        format!("</{path}>"),
        "libcoap printed our /.well-known/core; stderr: {err}"
    );
    let _ = requests(&mut server, &mut acked);
    let (out, err) = run_libcoap_client(
        &bin,
        &mut server,
        &["-m", "get", &format!("{base}/missing")],
    );
    assert!(
        format!("{out}{err}").contains("4.04"),
        "libcoap reports 4.04: {out} {err}"
    );
    // libcoap may exit right after sending its last ACK: let it arrive
    let want_acks = if separate.is_some() { 3 } else { 0 };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let _ = requests(&mut server, &mut acked);
        if acked >= want_acks || Instant::now() >= deadline {
            break;
        }
        server.step(Duration::from_millis(20)).expect("server step");
    }
    let st = server.endpoint().stats();
    assert_eq!(st.malformed_dropped, 0);
    if separate.is_some() {
        assert!(st.separate_responses_sent >= 3, "{st:?}");
        // the CON PUT, the CON GET and the CON GET of /missing
        assert_eq!(acked, 3, "libcoap ACKed each separate CON response");
    } else {
        assert_eq!(acked, 0, "piggybacked responses need no ACK");
    }
}

#[test]
fn libcoap_client_against_our_server_piggybacked() {
    libcoap_client_against_our_server(None);
}

#[test]
fn libcoap_client_against_our_server_separate() {
    libcoap_client_against_our_server(Some(SimDuration::from_millis(200)));
}

/// The socket driver is family-neutral: our client and our server over IPv6
/// loopback (addresses interned by the driver's `AddrPlan`). Skipped when
/// the host has no `::1`, unless `CI=true`.
#[test]
fn our_client_against_our_server_over_ipv6() {
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    if let Err(e) = UdpSocket::bind(v6) {
        let msg = format!("no IPv6 loopback: {e}");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
        return;
    }
    let ep = Endpoint::new(Config::default(), SimRng::stream(3, "interop/v6"), 7);
    let mut server = SocketDriver::bind(v6, ep)
        .expect("bind [::1]")
        .with_server(ResourceServer::new());
    let to = server.local_addr();
    let ep = Endpoint::new(Config::default(), SimRng::stream(4, "interop/v6c"), 9);
    let mut client = SocketDriver::bind(v6, ep).expect("bind [::1]");
    let h = client
        .request(to, Request::put("v6/x", &b"1"[..]))
        .expect("request");
    // both drivers in one thread: step them in turn (each step ≤ 20 ms)
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        assert!(Instant::now() < deadline, "no response within 10 s");
        server.step(Duration::from_millis(20)).expect("server step");
        client.step(Duration::from_millis(20)).expect("client step");
        if let Some(e) = client.poll_event() {
            break e;
        }
    };
    assert!(
        matches!(got, Event::ResponseReceived { handle, code: Code::CREATED, .. } if handle == h),
        "{got:?}"
    );
    assert_eq!(
        server
            .server()
            .and_then(|s| s.resources().get("v6/x"))
            .map(|r| r.value.as_slice()),
        Some(&b"1"[..])
    );
}

/// Block-wise (RFC 7959) against libcoap: `coap-client-notls -b 64` PUTs a
/// 1,000-byte body to our block-wise server (Block1, 64-byte blocks, 2.31
/// Continue each) and GETs it back in the smallest blocks (`-b 16`,
/// Block2 SZX 0); both directions intact. Then a
/// plain GET without `-b`: our server (block size 128) answers in Block2
/// slices on its own and libcoap reassembles them.
#[test]
fn libcoap_client_block_wise_against_our_server() {
    let Some(bin) = peer_binary("coap-client-notls") else {
        return;
    };
    let mut ep = Endpoint::new(Config::default(), SimRng::stream(4, "interop/block"), 1000);
    let app = ResourceServer::new().with_block_szx(Some(3));
    app.register_options(&mut ep);
    let mut server = SocketDriver::bind(SocketAddrV4::new(LOCALHOST, 0), ep)
        .expect("bind server")
        .with_server(app);
    let uri = format!("coap://127.0.0.1:{}/big", server.local_addr().port());
    let body: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let file = common::temp_dir("interop-block").join("body.txt");
    std::fs::write(&file, &body).expect("write body");
    let f = file.to_str().expect("utf-8");
    let (_out, err) =
        run_libcoap_client(&bin, &mut server, &["-m", "put", "-b", "64", "-f", f, &uri]);
    let stored = server
        .server()
        .and_then(|s| s.resources().get("big"))
        .map(|r| r.value.clone());
    assert_eq!(
        stored.as_deref(),
        Some(body.as_bytes()),
        "Block1 PUT stored whole; client stderr: {err}"
    );
    let st = server.server().expect("server").block_stats();
    assert_eq!(st.bodies_completed, 1, "{st:?}");
    assert!(st.block1_received >= 16, "{st:?}");
    for args in [&["-b", "16"][..], &[][..]] {
        let mut a = args.to_vec();
        a.extend(["-m", "get", &uri]);
        let (out, err) = run_libcoap_client(&bin, &mut server, &a);
        assert_eq!(
            out.trim(),
            body,
            "GET {args:?} in Block2 slices; stderr: {err}"
        );
    }
    let st = server.server().expect("server").block_stats();
    // 1000 bytes: 63 blocks of 16 (the smallest, forced by `-b 16`), then
    // 8 of 128
    assert!(st.block2_sent >= 71, "{st:?}");
    assert_eq!(st.malformed + st.incomplete + st.too_large, 0, "{st:?}");
}

/// RFC 7641 against libcoap: our client observes `coap-server-notls`'s
/// `/time` (which changes every second): the registration is answered with
/// an Observe value, then fresh notifications with increasing sequence
/// numbers arrive; an active deregistration (GET with Observe 1) is
/// answered, and the endpoint no longer observes.
#[test]
fn our_client_observes_libcoap_time() {
    let Some(bin) = peer_binary("coap-server-notls") else {
        return;
    };
    let (_server, addr) = start_libcoap_server(&bin);
    let mut d = client_driver(7);
    let mut req = Request::get("time");
    req.observe = Some(0);
    let h = d.request(addr, req).expect("request");
    let mut registered = None;
    let mut seqs = Vec::new();
    let got = d.run_until(Duration::from_secs(10), |e| {
        match e {
            Event::ResponseReceived {
                handle,
                code,
                observe,
                ..
            } if *handle == h => registered = Some((*code, *observe)),
            Event::Notification {
                handle,
                code,
                observe,
                payload,
                ..
            } if *handle == h => {
                assert_eq!(*code, Code::CONTENT);
                assert!(!payload.is_empty());
                seqs.push(observe.expect("a notification carries Observe"));
            }
            _ => {}
        }
        (seqs.len() >= 3).then_some(())
    });
    assert!(got.is_ok(), "3 notifications within 10 s, got {seqs:?}");
    let (code, observe) = registered.expect("registration answered");
    assert_eq!(code, Code::CONTENT);
    let first = observe.expect("the registration's answer carries Observe");
    assert!(
        seqs.iter().all(|&s| s > first) && seqs.windows(2).all(|w| w[0] < w[1]),
        "{first} then {seqs:?}"
    );
    assert_eq!(d.endpoint().stats().notifications_stale, 0);

    let dereg = d
        .endpoint_mut()
        .cancel_observation(h, Some(&Request::get("time")))
        .expect("observing")
        .expect("deregistration sent");
    let answered = d.run_until(Duration::from_secs(10), |e| match e {
        Event::ResponseReceived { handle, code, .. } if *handle == dereg => Some(*code),
        _ => None,
    });
    assert_eq!(answered.ok(), Some(Code::CONTENT));
    assert!(!d.endpoint().is_observing(h));
}

/// A tick for [`run_peer`]: once our server has an observer, the
/// application changes resource `path` every 250 ms: "n=1;", "n=2;", …
/// (the ";" separates values in libcoap's output, which writes payloads
/// back to back); enough after `max` values and 500 ms more.
/// `observers` records the most observers seen.
fn changing<'a>(
    path: &'static str,
    max: u32,
    observers: &'a mut usize,
) -> impl FnMut(&mut SocketDriver, Duration) -> bool + 'a {
    let mut from = None;
    let mut updates = 0;
    move |server, elapsed| {
        let now = server.server().map_or(0, |a| a.observers().len());
        *observers = (*observers).max(now);
        let Some(from) = *from.get_or_insert_with(|| (now > 0).then_some(elapsed)) else {
            from = None;
            return false;
        };
        let step = Duration::from_millis(250);
        if updates == max {
            return elapsed >= from + step * max + Duration::from_millis(500);
        }
        if elapsed >= from + step * updates {
            updates += 1;
            let n = updates;
            let reply = server
                .update_resource(path, Some(0), format!("n={n};").as_bytes())
                .expect("notify")
                .expect("a server");
            assert!(reply.code.is_success(), "{reply:?}");
        }
        false
    }
}

/// The `n=<k>` values in `out`, in order.
fn observed_values(out: &str) -> Vec<u32> {
    out.split(|c: char| c == ';' || c.is_whitespace())
        .filter_map(|s| s.trim().strip_prefix("n=")?.parse().ok())
        .collect()
}

/// A server with observable resource `path` holding "n=0;".
fn observable_server(seed: u64, path: &str) -> SocketDriver {
    let ep = Endpoint::new(
        Config::default(),
        SimRng::stream(seed, "interop/observe"),
        1000,
    );
    let mut server = SocketDriver::bind(SocketAddrV4::new(LOCALHOST, 0), ep)
        .expect("bind server")
        .with_server(ResourceServer::new());
    server
        .update_resource(path, Some(0), b"n=0;")
        .expect("store")
        .expect("a server");
    server
}

/// RFC 7641 from our server to libcoap: `coap-client-notls -s 3` observes
/// a resource our application changes every 250 ms; libcoap prints the
/// registration's answer and then every notification, in order, with no
/// value twice (each one a fresh notification for libcoap's freshness
/// check), and our server counted it as one observer.
#[test]
fn libcoap_client_observes_our_server() {
    let Some(bin) = peer_binary("coap-client-notls") else {
        return;
    };
    let path = "building/xyz/room/120/temperature";
    let mut server = observable_server(5, path);
    let uri = format!("coap://127.0.0.1:{}/{path}", server.local_addr().port());
    let mut observers = 0;
    let mut cmd = Command::new(&bin);
    cmd.args(["-B", "6", "-s", "4", "-m", "get", &uri]);
    let (out, err) = run_peer(cmd, &mut server, changing(path, 8, &mut observers));
    let seen = observed_values(&out);
    assert_eq!(observers, 1, "one registration; libcoap: {out} {err}");
    assert_eq!(
        seen,
        (0..=8).collect::<Vec<_>>(),
        "the registration's answer, then 8 notifications in order, none twice; stderr: {err}"
    );
    let st = server.endpoint().stats();
    assert_eq!(st.malformed_dropped, 0);
}

/// `aiocoap-client` (PyPI aiocoap) against our server: PUT then GET of a
/// value, an observation of a resource that changes every 250 ms (the
/// client is stopped after six), and a block-wise PUT (Block1 in 32-byte
/// blocks, `--payload-initial-szx 1`) and GET (our server answers in
/// 64-byte Block2 slices) of a 1,000-byte body.
#[test]
fn aiocoap_client_against_our_server() {
    let Some(bin) = common::peers::peer_binary("aiocoap-client", "pip install aiocoap") else {
        return;
    };
    let mut ep = Endpoint::new(
        Config::default(),
        SimRng::stream(6, "interop/aiocoap"),
        1000,
    );
    let app = ResourceServer::new().with_block_szx(Some(2));
    app.register_options(&mut ep);
    let mut server = SocketDriver::bind(SocketAddrV4::new(LOCALHOST, 0), ep)
        .expect("bind server")
        .with_server(app);
    let base = format!("coap://127.0.0.1:{}", server.local_addr().port());
    let aiocoap = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.env("PYTHONUNBUFFERED", "1").args(args);
        cmd
    };

    let uri = format!("{base}/sensor/temp");
    let (out, err) = run_peer(
        aiocoap(&["-m", "PUT", "--payload", "22.5", &uri]),
        &mut server,
        |_, _| false,
    );
    let stored = server
        .server()
        .and_then(|s| s.resources().get("sensor/temp"))
        .map(|r| r.value.clone());
    assert_eq!(
        stored.as_deref(),
        Some(&b"22.5"[..]),
        "PUT stored: {out} {err}"
    );
    let (out, err) = run_peer(aiocoap(&[&uri]), &mut server, |_, _| false);
    assert_eq!(out.trim(), "22.5", "GET printed the value; stderr: {err}");

    let path = "sensor/observed";
    server
        .update_resource(path, Some(0), b"n=0;")
        .expect("store")
        .expect("a server");
    let mut observers = 0;
    let (out, err) = run_peer(
        aiocoap(&["--observe", &format!("{base}/{path}")]),
        &mut server,
        changing(path, 6, &mut observers),
    );
    // aiocoap-client prints the first response on stdout, then "---" there
    // and each notification's payload on stderr
    let seen = observed_values(&format!("{out}\n{err}"));
    assert_eq!(observers, 1, "one registration: {out} {err}");
    assert_eq!(
        seen,
        (0..=6).collect::<Vec<_>>(),
        "the registration's answer, then 6 notifications in order; stderr: {err}"
    );

    let body: String = (0..1000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let file = common::temp_dir("interop-aiocoap").join("body.txt");
    std::fs::write(&file, &body).expect("write body");
    let big = format!("{base}/big");
    let payload = format!("@{}", file.to_str().expect("utf-8"));
    let (out, err) = run_peer(
        aiocoap(&[
            "-m",
            "PUT",
            "--payload",
            &payload,
            "--payload-initial-szx",
            "1",
            &big,
        ]),
        &mut server,
        |_, _| false,
    );
    let stored = server
        .server()
        .and_then(|s| s.resources().get("big"))
        .map(|r| r.value.clone());
    assert_eq!(
        stored.as_deref(),
        Some(body.as_bytes()),
        "Block1 PUT stored whole: {out} {err}"
    );
    let st = server.server().expect("server").block_stats();
    assert_eq!(st.bodies_completed, 1, "{st:?}");
    assert!(st.block1_received >= 16, "32-byte blocks at most: {st:?}");
    let (out, err) = run_peer(aiocoap(&[&big]), &mut server, |_, _| false);
    assert_eq!(out.trim(), body, "GET in Block2 slices; stderr: {err}");
    let st = server.server().expect("server").block_stats();
    assert!(st.block2_sent >= 16, "64-byte Block2 slices: {st:?}");
    assert_eq!(st.malformed + st.incomplete + st.too_large, 0, "{st:?}");
    assert_eq!(server.endpoint().stats().malformed_dropped, 0);
}

/// Our block-wise client (RFC 7959) against `coap-server-notls`, in the
/// smallest blocks (16 bytes, SZX 0): a 1,000-byte body PUT to
/// /example_data in Block1 blocks, then fetched back with Block2 asked for
/// in the first request (early negotiation), intact both ways.
#[test]
fn our_block_wise_client_against_libcoap_server() {
    let Some(bin) = peer_binary("coap-server-notls") else {
        return;
    };
    let (_server, addr) = start_libcoap_server(&bin);
    let mut d = client_driver(8);
    let peer = d.peer(addr).expect("interned");
    let body: Vec<u8> = (0..1000).map(|i| b'A' + (i % 26) as u8).collect();
    let put = BlockTransfer::upload(peer, Request::put("example_data", body.clone()), 0);
    let (end, t) = d
        .transfer(put, Duration::from_secs(20))
        .expect("PUT within 20 s");
    assert!(
        matches!(end, Some(BlockStep::Done(c)) if c.is_success()),
        "{end:?}"
    );
    // 1000 / 16 = 62.5: 63 blocks
    assert_eq!(t.counters().requests, 63, "{:?}", t.counters());
    let get = BlockTransfer::download(peer, Request::get("example_data"), Some(0));
    let (end, t) = d
        .transfer(get, Duration::from_secs(20))
        .expect("GET within 20 s");
    assert_eq!(end, Some(BlockStep::Done(Code::CONTENT)));
    assert_eq!(t.body(), &body[..], "Block2 body intact");
    assert_eq!(t.counters().requests, 63, "{:?}", t.counters());
    let st = d.endpoint().stats();
    assert_eq!(st.give_ups + st.no_responses + st.malformed_dropped, 0);
}
