//! The CoAP resource server is bounded (hardening issue, defect 4): one
//! client PUTting to ever new paths made the server store 65,536
//! resources (81 MB); a response larger than a UDP datagram made the
//! socket driver's `step` fail with EMSGSIZE and stop serving.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use qossim::proto::coap::socket::SocketDriver;
use qossim::proto::coap::{
    Code, Config, Endpoint, Event, Method, Request, ResourceServer, ResourceStore,
};
use qossim::sim::SimRng;

#[test]
fn puts_past_the_bounds_are_refused_and_counted() {
    // 3 resources, 200 bytes of paths and values, values up to 50 bytes
    let mut s = ResourceStore::new().with_limits(3, 200, 50);
    for p in ["a", "b", "c"] {
        assert_eq!(s.apply(Method::Put, p, None, b"v").code, Code::CREATED);
    }
    // a fourth resource: 5.03, nothing stored
    assert_eq!(
        s.apply(Method::Put, "d", None, b"v").code,
        Code::SERVICE_UNAVAILABLE
    );
    assert!(s.get("d").is_none());
    // an existing one may still change
    assert_eq!(s.apply(Method::Post, "a", None, b"w").code, Code::CHANGED);
    // a value over 50 bytes: 4.13, the old value kept
    assert_eq!(
        s.apply(Method::Put, "a", None, &[7; 51]).code,
        Code::REQUEST_ENTITY_TOO_LARGE
    );
    assert_eq!(s.get("a").map(|r| r.value.as_slice()), Some(&b"w"[..]));
    // the byte bound: 3 paths + 3 values = 6 bytes held; 50 + 50 + 50 fits
    // (153 + 3), a fourth 50 would not — and DELETE gives room back
    assert_eq!(s.bytes(), 6);
    for p in ["a", "b", "c"] {
        assert_eq!(s.apply(Method::Put, p, None, &[1; 50]).code, Code::CHANGED);
    }
    assert_eq!(s.bytes(), 153);
    assert_eq!(s.apply(Method::Delete, "c", None, &[]).code, Code::DELETED);
    assert_eq!(s.bytes(), 102);
    assert_eq!(
        s.apply(Method::Put, "d", None, &[2; 50]).code,
        Code::CREATED
    );
    assert_eq!(
        s.apply(Method::Put, "e", None, &[2; 50]).code,
        Code::REQUEST_ENTITY_TOO_LARGE,
        "153 + 51 bytes passes 200"
    );
    assert_eq!(s.refused(), 3);
    // the defaults: 100,000 resources, 64 MiB, 64,000-byte values
    let mut d = ResourceStore::new();
    assert_eq!(
        d.apply(Method::Put, "big", None, &vec![0; 64_001]).code,
        Code::REQUEST_ENTITY_TOO_LARGE
    );
    for i in 0..100_000 {
        assert_eq!(
            d.apply(Method::Put, &format!("r/{i}"), None, b"1").code,
            Code::CREATED
        );
    }
    assert_eq!(
        d.apply(Method::Put, "one/more", None, b"1").code,
        Code::SERVICE_UNAVAILABLE
    );
    assert_eq!(d.len(), 100_000);
}

/// Step both drivers until the client has an event for a request.
fn answer(server: &mut SocketDriver, client: &mut SocketDriver) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        server
            .step(Duration::from_millis(10))
            .expect("server keeps serving");
        client.step(Duration::from_millis(10)).expect("client step");
        if let Some(e) = client.poll_event() {
            return Some(e);
        }
    }
    None
}

#[test]
fn a_response_too_large_for_udp_is_dropped_and_the_server_keeps_serving() {
    let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    let mut app = ResourceServer::new();
    // seeded past the UDP maximum (seeding is not bounded): its GET
    // response cannot be sent
    app.resources_mut().insert("huge", None, vec![b'x'; 66_000]);
    app.resources_mut().insert("small", None, b"ok".to_vec());
    let ep = Endpoint::new(Config::default(), SimRng::stream(5, "bounds/server"), 1);
    let mut server = SocketDriver::bind(local, ep)
        .expect("bind server")
        .with_server(app);
    let to = server.local_addr();
    let ep = Endpoint::new(Config::default(), SimRng::stream(6, "bounds/client"), 2);
    let mut client = SocketDriver::bind(local, ep).expect("bind client");

    client
        .request(to, Request::get("huge").confirmable(false))
        .expect("request");
    // no answer comes (the client's NON exchange times out later); the
    // server's step did not fail
    assert!(answer(&mut server, &mut client)
        .is_none_or(|e| !matches!(e, Event::ResponseReceived { .. })));
    assert_eq!(server.oversized_dropped(), 1);
    let h = client.request(to, Request::get("small")).expect("request");
    let got = answer(&mut server, &mut client);
    assert!(
        matches!(&got, Some(Event::ResponseReceived { handle, code: Code::CONTENT, payload, .. })
            if *handle == h && payload == b"ok"),
        "{got:?}"
    );
}
