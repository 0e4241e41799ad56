//! Unit tests of the caching proxy: a client, the proxy and an origin
//! over an instant lossless network.
use super::*;
use crate::proto::coap::{Config, ResourceServer};
use crate::proto::Datagram;
use crate::sim::SimRng;

fn sa(last: u8) -> SockAddr {
    SockAddr::new(Addr::from(Ipv4Addr::new(10, 0, 0, last)), COAP_PORT)
}

/// Client (1), proxy (2), origin (3) over a lossless instant network.
struct Net {
    now: SimTime,
    eps: [Endpoint; 3],
    proxy: Proxy,
    origin: ResourceServer,
    /// Datagrams proxy → origin and origin → proxy, with their codes.
    upstream: Vec<(bool, Code, usize)>,
    got: Vec<Event>,
}

impl Net {
    fn new(config: ProxyConfig) -> Net {
        let ep = |i: u64| {
            Endpoint::new(
                Config::default(),
                SimRng::stream(i, "proxy-test"),
                (i * 1000) as u16,
            )
        };
        let mut eps = [ep(1), ep(2), ep(3)];
        let proxy = Proxy::new(config);
        proxy.register_options(&mut eps[1]);
        let mut origin = ResourceServer::new().with_validators(true);
        origin
            .resources_mut()
            .insert("temp", Some(0), b"21.5".to_vec());
        Net {
            now: SimTime::ZERO,
            eps,
            proxy,
            origin,
            upstream: Vec::new(),
            got: Vec::new(),
        }
    }

    fn run(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut moved = false;
            for i in 0..3 {
                while let Some(t) = {
                    buf.clear();
                    self.eps[i].poll_transmit(self.now, &mut buf)
                } {
                    moved = true;
                    let to = usize::from(t.to.addr.v4().unwrap().octets()[3]) - 1;
                    if (i == 1 && to == 2) || (i == 2 && to == 1) {
                        let payload = MessageRef::parse(&buf).unwrap().payload.len();
                        self.upstream.push((i == 1, t.code, payload));
                    }
                    let from = sa(i as u8 + 1);
                    self.eps[to].handle_input(self.now, Datagram { from, data: &buf });
                }
                while let Some(ev) = self.eps[i].poll_event() {
                    moved = true;
                    match i {
                        0 => self.got.push(ev),
                        1 => {
                            self.proxy.handle_event(self.now, &mut self.eps[1], &ev);
                        }
                        _ => {
                            self.origin.handle_event(self.now, &mut self.eps[2], &ev);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn get(&mut self, req: Request) -> Code {
        self.got.clear();
        self.eps[0].request(sa(2), req).unwrap();
        self.run();
        self.got
            .iter()
            .find_map(|e| match e {
                Event::ResponseReceived { code, .. } => Some(*code),
                _ => None,
            })
            .unwrap()
    }

    fn advance(&mut self, secs: u64) {
        self.now += SimDuration::from_secs(secs);
    }
}

fn reverse() -> ProxyConfig {
    ProxyConfig {
        routes: vec![("origin".into(), sa(3))],
        ..ProxyConfig::default()
    }
}

#[test]
fn test_fresh_entry_answers_without_upstream() {
    let mut n = Net::new(reverse());
    assert_eq!(n.get(Request::get("origin/temp")), Code::CONTENT);
    let up = n.upstream.len();
    assert_eq!(up, 2, "one GET up, one 2.05 back: {:?}", n.upstream);
    n.advance(10);
    assert_eq!(n.get(Request::get("origin/temp")), Code::CONTENT);
    assert_eq!(n.upstream.len(), up);
    assert_eq!(n.proxy.stats().cache_hits, 1);
    assert_eq!(n.proxy.stats().cache_misses, 1);
}

#[test]
fn test_stale_entry_revalidates_with_etag() {
    let mut n = Net::new(reverse());
    n.get(Request::get("origin/temp"));
    n.advance(61);
    n.upstream.clear();
    assert_eq!(n.get(Request::get("origin/temp")), Code::CONTENT);
    // the GET went up, 2.03 came back without a body
    assert_eq!(n.upstream.len(), 2);
    assert_eq!(n.upstream[1], (false, Code::VALID, 0));
    assert_eq!(n.proxy.stats().revalidated, 1);
    // the client still got the body
    assert!(n.got.iter().any(|e| matches!(e,
        Event::ResponseReceived { payload, .. } if payload == b"21.5")));
}

#[test]
fn test_changed_resource_revalidation_gets_new_body() {
    let mut n = Net::new(reverse());
    n.get(Request::get("origin/temp"));
    n.origin
        .resources_mut()
        .insert("temp", Some(0), b"22.0".to_vec());
    n.advance(61);
    n.upstream.clear();
    n.get(Request::get("origin/temp"));
    assert_eq!(n.upstream[1], (false, Code::CONTENT, 4));
    assert_eq!(n.proxy.stats().revalidated, 0);
}

#[test]
fn test_unknown_route_is_not_the_proxys() {
    let mut n = Net::new(reverse());
    n.eps[0].request(sa(2), Request::get("elsewhere")).unwrap();
    n.run();
    // nobody answered: the request is unanswered at the proxy's endpoint
    assert_eq!(n.eps[1].pending_requests(), 1);
}

#[test]
fn test_forward_proxy_uri_and_errors() {
    let mut cfg = ProxyConfig {
        forward: true,
        hosts: vec![("origin".into(), sa(3))],
        ..ProxyConfig::default()
    };
    cfg.routes.clear();
    let mut n = Net::new(cfg);
    let mut req = Request::get("");
    req.proxy_uri = Some("coap://origin/temp".into());
    assert_eq!(n.get(req.clone()), Code::CONTENT);
    // an IPv4 literal resolves itself
    req.proxy_uri = Some("coap://10.0.0.3/temp".into());
    assert_eq!(n.get(req.clone()), Code::CONTENT);
    req.proxy_uri = Some("coap://nowhere/temp".into());
    assert_eq!(n.get(req.clone()), Code::BAD_GATEWAY);
    req.proxy_uri = Some("coaps://origin/temp".into());
    assert_eq!(n.get(req.clone()), Code::PROXYING_NOT_SUPPORTED);
    req.proxy_uri = Some("http://origin/temp".into());
    assert_eq!(n.get(req.clone()), Code::BAD_REQUEST);
    // Proxy-Scheme with Uri-Host and Uri-Path
    let mut req = Request::get("temp");
    req.host = Some("origin".into());
    req.proxy_scheme = Some("coap".into());
    assert_eq!(n.get(req), Code::CONTENT);
}

#[test]
fn test_observers_share_one_upstream_registration() {
    let mut n = Net::new(reverse());
    let mut reg = Request::get("origin/temp");
    reg.observe = Some(0);
    // three registrations from one client endpoint with distinct
    // tokens count as one observer (RFC 7641 §4.1) — use the proxy's
    // counters for the upstream side
    for _ in 0..3 {
        n.get(reg.clone());
    }
    assert_eq!(n.proxy.stats().upstream_registrations, 1);
    assert_eq!(n.origin.observers().len(), 1);
    n.got.clear();
    n.origin
        .update(n.now, &mut n.eps[2], "temp", Some(0), b"23.0");
    n.run();
    assert_eq!(n.proxy.stats().notifications_in, 1);
    assert!(n.got.iter().any(|e| matches!(e,
        Event::Notification { payload, .. } if payload == b"23.0")));
    // deregistering the last observer cancels upstream
    let mut dereg = Request::get("origin/temp");
    dereg.observe = Some(1);
    n.get(dereg);
    assert_eq!(n.proxy.stats().upstream_deregistrations, 1);
    assert_eq!(n.origin.observers().len(), 0);
}

#[test]
fn test_forwarded_put_invalidates() {
    let mut n = Net::new(reverse());
    n.get(Request::get("origin/temp"));
    assert_eq!(
        n.get(Request::put("origin/temp", &b"30"[..])),
        Code::CHANGED
    );
    n.upstream.clear();
    assert_eq!(n.get(Request::get("origin/temp")), Code::CONTENT);
    // stale after the PUT: fetched again, with a new body
    assert_eq!(n.upstream[1], (false, Code::CONTENT, 2));
}

#[test]
fn test_cache_key_includes_query_not_etag() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    let t = |q: &str| Target {
        origin: sa(3),
        path: vec!["temp".into()],
        query: if q.is_empty() { vec![] } else { vec![q.into()] },
    };
    let bytes = |etag: &[u8]| {
        let mut m = super::super::codec::Message::new(
            super::super::code::MessageType::Con,
            Code::GET,
            1,
            Token::EMPTY,
        );
        if !etag.is_empty() {
            m.add_option(super::super::option::CoapOption::ETag(etag.to_vec()));
        }
        m.to_bytes().unwrap()
    };
    let (x, y) = (bytes(b""), bytes(b"\x01"));
    build_key(&mut a, Method::Get, &t(""), &MessageRef::parse(&x).unwrap());
    build_key(&mut b, Method::Get, &t(""), &MessageRef::parse(&y).unwrap());
    assert_eq!(a, b);
    build_key(
        &mut b,
        Method::Get,
        &t("u=1"),
        &MessageRef::parse(&x).unwrap(),
    );
    assert_ne!(a, b);
    build_key(&mut b, Method::Put, &t(""), &MessageRef::parse(&x).unwrap());
    assert_ne!(a, b);
}
