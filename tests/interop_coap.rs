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
    Code, Config, Endpoint, Event, Method, Request, RequestHandle, ResourceServer,
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
    let child = Command::new(bin)
        .args(["-B", "5"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coap-client-notls");
    let mut guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        server.step(Duration::from_millis(20)).expect("server step");
        if guard.0.try_wait().expect("try_wait").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "coap-client-notls did not finish within 15 s"
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
/// Continue each) and GETs it back (Block2); both directions intact. Then a
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
    for args in [&["-b", "64"][..], &[][..]] {
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
    // 1000 bytes: 16 blocks of 64, then 8 of 128
    assert!(st.block2_sent >= 24, "{st:?}");
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
