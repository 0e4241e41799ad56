//! The caching CoAP proxy (RFC 7252 §5.7, §5.6, §5.10.2; RFC 7641 §5):
//! message by message between real `Endpoint`s driven by the product
//! `Proxy` and `ResourceServer` (the types the simulator plug-in runs),
//! then through the simulator and the scenario checks the CLI uses.
//! Run in release: `cargo test --release --test coap_proxy`.

mod common;
use common::sim::*;

use qossim::net::addr::{Addr, SockAddr};
use qossim::proto::coap::codec::MessageRef;
use qossim::proto::coap::{
    Code, Config, Endpoint, Event, MessageType, Proxy, ProxyConfig, Request, ResourceServer,
};
use qossim::proto::Datagram;
use qossim::sim::{SimDuration, SimRng, SimTime};
use std::net::Ipv4Addr;

const ORIGIN: usize = 0;
const PROXY: usize = 1;

fn sa(i: usize) -> SockAddr {
    SockAddr::new(Addr::from(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), 5683)
}

/// One datagram between the proxy and the origin.
#[derive(Debug, Clone, PartialEq)]
struct Up {
    to_origin: bool,
    ty: MessageType,
    code: Code,
    etag: Option<Vec<u8>>,
    payload: usize,
}

/// Node 0 the origin (a `ResourceServer` with validators, or none),
/// node 1 the proxy (or a plain server), nodes 2.. clients; lossless,
/// instantaneous.
struct Net {
    now: SimTime,
    eps: Vec<Endpoint>,
    proxy: Option<Proxy>,
    origin: ResourceServer,
    /// The node-1 server when it is no proxy.
    plain: ResourceServer,
    upstream: Vec<Up>,
    /// Events of each client, by node.
    got: Vec<Vec<Event>>,
}

impl Net {
    fn new(clients: usize, proxy: Option<ProxyConfig>) -> Net {
        let mut eps: Vec<Endpoint> = (0..clients + 2)
            .map(|i| {
                let rng = SimRng::stream(7, &format!("n{i}"));
                Endpoint::new(Config::default(), rng, (i * 4096) as u16)
            })
            .collect();
        let proxy = proxy.map(Proxy::new);
        if let Some(p) = &proxy {
            p.register_options(&mut eps[PROXY]);
        }
        let mut origin = ResourceServer::new().with_validators(true);
        origin
            .resources_mut()
            .insert("room/120/temp", Some(0), b"21.5".to_vec());
        Net {
            now: SimTime::ZERO,
            eps,
            proxy,
            origin,
            plain: ResourceServer::new(),
            upstream: Vec::new(),
            got: vec![Vec::new(); clients + 2],
        }
    }

    /// Deliver everything until nothing moves (timers not run).
    fn run(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut moved = false;
            for i in 0..self.eps.len() {
                loop {
                    buf.clear();
                    let Some(t) = self.eps[i].poll_transmit(self.now, &mut buf) else {
                        break;
                    };
                    moved = true;
                    let to = usize::from(t.to.addr.v4().unwrap().octets()[3]) - 1;
                    if (i == PROXY && to == ORIGIN) || (i == ORIGIN && to == PROXY) {
                        let m = MessageRef::parse(&buf).unwrap();
                        self.upstream.push(Up {
                            to_origin: i == PROXY,
                            ty: m.ty,
                            code: m.code,
                            etag: m.option(4).map(<[u8]>::to_vec),
                            payload: m.payload.len(),
                        });
                    }
                    self.eps[to].handle_input(
                        self.now,
                        Datagram {
                            from: sa(i),
                            data: &buf,
                        },
                    );
                }
                while let Some(ev) = self.eps[i].poll_event() {
                    moved = true;
                    let ep = &mut self.eps[i];
                    match i {
                        ORIGIN => {
                            self.origin.handle_event(self.now, ep, &ev);
                        }
                        PROXY => match self.proxy.as_mut() {
                            Some(p) => {
                                p.handle_event(self.now, ep, &ev);
                            }
                            None => {
                                self.plain.handle_event(self.now, ep, &ev);
                            }
                        },
                        _ => self.got[i].push(ev),
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Client `c` sends `req` to the proxy node; the code of its answer.
    fn ask(&mut self, c: usize, req: Request) -> Code {
        self.got[c].clear();
        let h = self.eps[c].request(sa(PROXY), req).unwrap();
        self.run();
        self.got[c]
            .iter()
            .find_map(|e| match e {
                Event::ResponseReceived { handle, code, .. } if *handle == h => Some(*code),
                _ => None,
            })
            .expect("an answer")
    }

    fn payload(&self, c: usize) -> Vec<u8> {
        self.got[c]
            .iter()
            .find_map(|e| match e {
                Event::ResponseReceived { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn advance(&mut self, secs: u64) {
        self.now += SimDuration::from_secs(secs);
    }

    fn stats(&self) -> qossim::proto::coap::ProxyStats {
        *self.proxy.as_ref().unwrap().stats()
    }
}

fn reverse() -> ProxyConfig {
    ProxyConfig {
        routes: vec![("sensor".into(), sa(ORIGIN))],
        ..ProxyConfig::default()
    }
}

fn forward() -> ProxyConfig {
    ProxyConfig {
        forward: true,
        hosts: vec![("sensor".into(), sa(ORIGIN))],
        ..ProxyConfig::default()
    }
}

fn via_uri(uri: &str) -> Request {
    let mut r = Request::get("");
    r.proxy_uri = Some(uri.into());
    r
}

/// Client 2's GET goes upstream (one CON GET, one piggybacked 2.05 with
/// ETag); client 3's GET 30 s later, while the entry is fresh (Max-Age
/// 60 s), is answered by the proxy with the same body and no upstream
/// datagram at all.
#[test]
fn second_client_is_served_from_cache_while_fresh() {
    let mut n = Net::new(2, Some(reverse()));
    assert_eq!(
        n.ask(2, Request::get("sensor/room/120/temp")),
        Code::CONTENT
    );
    assert_eq!(n.payload(2), b"21.5");
    assert_eq!(n.upstream.len(), 2, "{:?}", n.upstream);
    assert_eq!(
        (
            n.upstream[0].to_origin,
            n.upstream[0].code,
            n.upstream[0].etag.is_none()
        ),
        (true, Code::GET, true)
    );
    assert_eq!(
        (n.upstream[1].code, n.upstream[1].payload),
        (Code::CONTENT, 4)
    );
    assert!(n.upstream[1].etag.is_some(), "the origin gives an ETag");
    n.advance(30);
    assert_eq!(
        n.ask(3, Request::get("sensor/room/120/temp")),
        Code::CONTENT
    );
    assert_eq!(n.payload(3), b"21.5");
    assert_eq!(n.upstream.len(), 2, "no second upstream exchange");
    assert_eq!((n.stats().cache_hits, n.stats().cache_misses), (1, 1));
}

/// Concurrent identical GETs from three clients share one upstream GET.
#[test]
fn concurrent_gets_are_coalesced() {
    let mut n = Net::new(3, Some(reverse()));
    let hs: Vec<_> = (2..5)
        .map(|c| {
            n.eps[c]
                .request(sa(PROXY), Request::get("sensor/room/120/temp"))
                .unwrap()
        })
        .collect();
    n.run();
    let gets = n.upstream.iter().filter(|u| u.code == Code::GET).count();
    assert_eq!(gets, 1);
    for (c, h) in (2..5).zip(hs) {
        assert!(n.got[c].iter().any(|e| matches!(e,
            Event::ResponseReceived { handle, code: Code::CONTENT, payload, .. }
                if *handle == h && payload == b"21.5")));
    }
    assert_eq!(n.stats().coalesced, 2);
}

/// After Max-Age (60 s, the origin sends none) the entry is stale: the next
/// GET makes the proxy send the upstream GET with the entry's ETag; the
/// unchanged origin answers 2.03 Valid carrying the ETag and no payload,
/// and the client gets the cached 2.05 with the body. Then the resource
/// changes: the next revalidation gets a 2.05 with the new body and ETag.
#[test]
fn stale_entry_is_revalidated_with_etag_and_2_03() {
    let mut n = Net::new(2, Some(reverse()));
    n.ask(2, Request::get("sensor/room/120/temp"));
    let etag = n.upstream[1].etag.clone().unwrap();
    n.advance(61);
    n.upstream.clear();
    assert_eq!(
        n.ask(2, Request::get("sensor/room/120/temp")),
        Code::CONTENT
    );
    assert_eq!(n.payload(2), b"21.5");
    assert_eq!(n.upstream.len(), 2, "{:?}", n.upstream);
    assert_eq!(n.upstream[0].code, Code::GET);
    assert_eq!(
        n.upstream[0].etag.as_ref(),
        Some(&etag),
        "the GET offers the ETag"
    );
    assert_eq!(n.upstream[1].code, Code::VALID);
    assert_eq!(n.upstream[1].payload, 0, "no body upstream → proxy");
    assert_eq!(n.upstream[1].etag.as_ref(), Some(&etag));
    assert_eq!((n.stats().revalidations, n.stats().revalidated), (1, 1));
    // the 2.03 refreshed the entry: fresh for another 60 s
    n.advance(30);
    n.upstream.clear();
    n.ask(2, Request::get("sensor/room/120/temp"));
    assert!(n.upstream.is_empty());
    // a change: the next revalidation fetches the new representation
    let ep = &mut n.eps[ORIGIN];
    n.origin
        .update(n.now, ep, "room/120/temp", Some(0), b"22.25");
    n.advance(31);
    n.upstream.clear();
    n.ask(2, Request::get("sensor/room/120/temp"));
    assert_eq!(n.upstream[1].code, Code::CONTENT);
    assert_eq!(n.upstream[1].payload, 5);
    assert_ne!(n.upstream[1].etag.as_ref(), Some(&etag));
    assert_eq!(n.payload(2), b"22.25");
    assert_eq!(n.stats().revalidated, 1);
}

/// Ten clients observe the resource through the proxy: one upstream
/// registration (one GET with Observe up, the origin has one observer);
/// each of five changes crosses the upstream hop once and every one of
/// the ten observers gets every notification. The last deregistration
/// cancels the upstream observation.
#[test]
fn ten_observers_cost_one_upstream_registration() {
    let mut n = Net::new(10, Some(reverse()));
    let mut reg = Request::get("sensor/room/120/temp");
    reg.observe = Some(0);
    let handles: Vec<_> = (2..12)
        .map(|c| {
            let h = n.eps[c].request(sa(PROXY), reg.clone()).unwrap();
            n.run();
            h
        })
        .collect();
    let ups = n.upstream.iter().filter(|u| u.code == Code::GET).count();
    assert_eq!(ups, 1, "{:?}", n.upstream);
    assert_eq!(n.stats().upstream_registrations, 1);
    assert_eq!(n.origin.observers().len(), 1);
    assert_eq!(n.proxy.as_ref().unwrap().observers().len(), 10);
    for (c, h) in (2..12).zip(&handles) {
        assert!(n.eps[c].is_observing(*h), "client {c} observes");
    }
    n.upstream.clear();
    for k in 0..5u8 {
        n.advance(1);
        let v = [b'2', b'0' + k];
        let ep = &mut n.eps[ORIGIN];
        n.origin.update(n.now, ep, "room/120/temp", Some(0), &v);
        n.run();
    }
    let down = n
        .upstream
        .iter()
        .filter(|u| !u.to_origin && u.code == Code::CONTENT)
        .count();
    assert_eq!(down, 5, "each notification crosses upstream once");
    for c in 2..12 {
        let got: Vec<Vec<u8>> = n.got[c]
            .iter()
            .filter_map(|e| match e {
                Event::Notification { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect();
        let want: Vec<Vec<u8>> = (0..5u8).map(|k| vec![b'2', b'0' + k]).collect();
        assert_eq!(got, want, "client {c}");
    }
    // deregistration (Observe 1) of all ten: only the last cancels upstream
    let mut dereg = Request::get("sensor/room/120/temp");
    dereg.observe = Some(1);
    for (i, (c, h)) in (2..12).zip(&handles).enumerate() {
        n.eps[c].cancel_observation(*h, Some(&dereg)).unwrap();
        n.run();
        let left = n.origin.observers().len();
        assert_eq!(left, usize::from(i < 9), "after {} deregistrations", i + 1);
    }
    assert_eq!(n.stats().upstream_deregistrations, 1);
}

/// A forward proxy serves Proxy-Uri (and Proxy-Scheme + Uri-Host); a node
/// that is no proxy (a plain resource server) answers Proxy-Uri with 5.05
/// Proxying Not Supported, as does a reverse-only proxy.
#[test]
fn forward_proxy_uri_and_non_proxy_505() {
    let mut n = Net::new(1, Some(forward()));
    assert_eq!(
        n.ask(2, via_uri("coap://sensor/room/120/temp")),
        Code::CONTENT
    );
    assert_eq!(n.payload(2), b"21.5");
    assert_eq!(n.upstream[0].code, Code::GET);
    let mut by_scheme = Request::get("room/120/temp");
    by_scheme.host = Some("sensor".into());
    by_scheme.proxy_scheme = Some("coap".into());
    assert_eq!(n.ask(2, by_scheme), Code::CONTENT);
    assert_eq!(n.ask(2, via_uri("coap://unknown/x")), Code::BAD_GATEWAY);

    let mut plain = Net::new(1, None);
    assert_eq!(
        plain.ask(2, via_uri("coap://sensor/room/120/temp")),
        Code::PROXYING_NOT_SUPPORTED
    );
    assert!(plain.upstream.is_empty());
    let mut rev = Net::new(1, Some(reverse()));
    assert_eq!(
        rev.ask(2, via_uri("coap://sensor/room/120/temp")),
        Code::PROXYING_NOT_SUPPORTED
    );
}

/// A reverse proxy maps `sensor/<path>` to the origin's `<path>`; a path
/// no route claims is not the proxy's (a co-located server may answer).
#[test]
fn reverse_proxy_maps_path_to_origin() {
    let mut n = Net::new(1, Some(reverse()));
    assert_eq!(
        n.ask(2, Request::get("sensor/room/120/temp")),
        Code::CONTENT
    );
    assert_eq!(n.payload(2), b"21.5");
    assert_eq!(n.ask(2, Request::get("sensor/room/999")), Code::NOT_FOUND);
    n.eps[2]
        .request(sa(PROXY), Request::get("other/x"))
        .unwrap();
    n.run();
    assert_eq!(n.eps[PROXY].pending_requests(), 1);
}

/// An origin that is unreachable: the waiting client gets 5.04 Gateway
/// Timeout after the upstream CON gives up (timers run).
#[test]
fn unreachable_origin_is_gateway_timeout() {
    let mut n = Net::new(1, Some(forward()));
    let h = n.eps[2]
        .request(sa(PROXY), via_uri("coap://10.0.0.99/x"))
        .unwrap();
    // drive with timers: datagrams to 10.0.0.99 vanish
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        for i in (0..n.eps.len()).chain(0..n.eps.len()) {
            loop {
                buf.clear();
                let Some(t) = n.eps[i].poll_transmit(n.now, &mut buf) else {
                    break;
                };
                let to = usize::from(t.to.addr.v4().unwrap().octets()[3]) - 1;
                if to < n.eps.len() {
                    n.eps[to].handle_input(
                        n.now,
                        Datagram {
                            from: sa(i),
                            data: &buf,
                        },
                    );
                }
            }
            while let Some(ev) = n.eps[i].poll_event() {
                match i {
                    PROXY => {
                        let ep = &mut n.eps[PROXY];
                        n.proxy.as_mut().unwrap().handle_event(n.now, ep, &ev);
                    }
                    ORIGIN => {}
                    _ => n.got[i].push(ev),
                }
            }
        }
        if n.got[2]
            .iter()
            .any(|e| matches!(e, Event::ResponseReceived { .. }))
        {
            break;
        }
        let next = n.eps.iter().filter_map(|e| e.poll_timeout()).min();
        let Some(t) = next else { break };
        n.now = t.max(n.now);
        for e in n.eps.iter_mut() {
            if e.poll_timeout().is_some_and(|x| x <= n.now) {
                e.handle_timeout(n.now);
            }
        }
    }
    assert!(n.got[2].iter().any(|e| matches!(e,
        Event::ResponseReceived { handle, code: Code::GATEWAY_TIMEOUT, .. } if *handle == h)));
}

// ---- through the simulator ----------------------------------------------

/// `scenarios/coap-proxy.toml` as shipped: every reading of both flows
/// reaches all four clients; the observe flow costs one upstream
/// registration at the proxy (not four), the poll flow mostly cache hits
/// and 2.03 revalidations.
#[test]
fn shipped_scenario_through_the_proxy() {
    let sc = load(&scenario_file("coap-proxy.toml"), &[]);
    let out = qossim::world::World::new(&sc, 0, Default::default())
        .expect("world")
        .run()
        .expect("run");
    let c = |name: &str| {
        out.counter("coap", name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(c("proxy_upstream_registrations"), 1);
    assert!(
        c("proxy_notifications_in") >= 55,
        "{}",
        c("proxy_notifications_in")
    );
    let (hits, misses) = (c("proxy_cache_hits"), c("proxy_cache_misses"));
    assert!(hits > 3 * misses, "hits {hits} misses {misses}");
    assert!(c("proxy_revalidated") > 0);
    assert!(c("proxy_revalidated") <= c("proxy_revalidations"));
    let dir = run_text("coap-proxy", &scenario_file("coap-proxy.toml"), &[]);
    let watch = run_row(&dir, "watch");
    assert_eq!(num(&watch, "delivery_ratio"), 1.0);
    let poll = run_row(&dir, "poll");
    assert_eq!(num(&poll, "delivery_ratio"), 1.0);
    // coap.csv: the proxy node's counters, the same as the library's
    let text = std::fs::read_to_string(dir.join("coap.csv")).expect("coap.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("run_id,scope,name,metric,value"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 11, "{text}");
    for r in &rows {
        assert_eq!(r[..3], ["0", "proxy", "proxy"], "{text}");
        let v: u64 = r[4].parse().expect("count");
        assert_eq!(
            Some(v),
            out.counter("coap", &format!("proxy_{}", r[3])),
            "{}",
            r[3]
        );
    }
}

/// Without `proxy` the run has no proxy (no proxy counters) and each of
/// the four clients holds its own observation. The node in the middle
/// must then forward (a router): as a `server` it would cut the clients
/// off from the sensor, which the loader refuses (scenarios/README.md
/// "Roles").
#[test]
fn without_proxy_there_is_no_proxy() {
    let unproxied = scenario_file("coap-proxy.toml")
        .replace("proxy = \"proxy\"\nproxy_mode = \"reverse\"\n", "")
        .replace("proxy = \"proxy\"\nproxy_mode = \"forward\"\n", "");
    let e = qossim::scenario::load_str(&unproxied, "p.toml", std::path::Path::new("."), &[])
        .expect_err("the clients reach the sensor only through a server");
    assert!(
        e.to_string().contains("only through `proxy` (role server)"),
        "{e}"
    );
    let text = unproxied.replace(
        "name = \"proxy\"\nrole = \"server\"",
        "name = \"proxy\"\nrole = \"router\"",
    );
    assert_ne!(text, unproxied);
    let sc = load(&text, &[]);
    let out = qossim::world::World::new(&sc, 0, Default::default())
        .expect("world")
        .run()
        .expect("run");
    assert_eq!(out.counter("coap", "proxy_upstream_registrations"), None);
    assert_eq!(out.counter("coap", "observations"), Some(4));
    let dir = run_text("coap-no-proxy", &text, &[]);
    assert!(dir.join("runs.csv").is_file());
    assert!(!dir.join("coap.csv").exists(), "no proxy, no coap.csv");
}

/// `qossim check` rejects nonsense with the file, line and field.
#[test]
fn check_rejects_bad_proxy_fields() {
    let base = scenario_file("coap-proxy.toml");
    let err = |text: String| {
        qossim::scenario::load_str(&text, "p.toml", std::path::Path::new("."), &[])
            .err()
            .map(|e| e.to_string())
            .expect("an error")
    };
    let put = base.replacen("coap_mode = \"observe\"", "coap_mode = \"put\"", 1);
    let e = err(put);
    assert!(
        e.contains("flows.watch.proxy") && e.contains("p.toml:"),
        "{e}"
    );
    let unknown = base.replacen("proxy = \"proxy\"", "proxy = \"nowhere\"", 1);
    let e = err(unknown);
    assert!(e.contains("unknown node \"nowhere\""), "{e}");
    let itself = base.replacen("proxy = \"proxy\"", "proxy = \"sensor\"", 1);
    let e = err(itself);
    assert!(e.contains("publisher or receiver"), "{e}");
    let mode = base.replacen("proxy_mode = \"forward\"", "proxy_mode = \"sideways\"", 1);
    let e = err(mode);
    assert!(e.contains("flows.poll.proxy_mode"), "{e}");
    let lone = base.replacen("proxy = \"proxy\"\n", "", 1);
    let e = err(lone);
    assert!(e.contains("`proxy_mode` needs"), "{e}");
    let block = base.replace(
        "\n[protocols.coap]\n",
        "\n[protocols.coap]\nblock_size = 64\n",
    );
    let e = err(block);
    assert!(e.contains("block-wise"), "{e}");
}
