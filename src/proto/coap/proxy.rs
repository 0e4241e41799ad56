//! A caching CoAP proxy (RFC 7252 §5.7), an application over an
//! [`Endpoint`] as [`super::ResourceServer`] is: the endpoint's server side
//! takes the clients' requests, its client side makes the upstream ones.
//!
//! Read first: RFC 7252 §5.6 (caching: freshness by Max-Age, validation
//! by ETag, the cache key), §5.7 (forward and reverse proxies, §5.7.1
//! unsafe options → 5.02), §5.10.2 (Proxy-Uri, Proxy-Scheme), §5.10.5
//! (Max-Age, 60 s when absent), §5.10.6 (ETag, 2.03 Valid), §5.9.2.5
//! (5.02 Bad Gateway, 5.04 Gateway Timeout); RFC 7641 §5 (Observe through
//! proxies: the proxy observes the origin once and is an RFC 7641 server
//! to its own observers).
//!
//! * **Forward** (`ProxyConfig::forward`): a request carrying Proxy-Uri,
//!   or Proxy-Scheme with Uri-Host/Port/Path/Query, names the origin; its
//!   host is one of `ProxyConfig::hosts` or an IPv4 literal (else 5.02 Bad
//!   Gateway); `coaps` is 5.05 Proxying Not Supported (the proxy has no
//!   DTLS). A node that is no forward proxy keeps the endpoint's 5.05.
//! * **Reverse** (`ProxyConfig::routes`): an ordinary request whose first
//!   Uri-Path segment is a route's prefix goes to that route's origin with
//!   the rest of the path (a route with an empty prefix takes every path
//!   whole). A request neither form claims is not the proxy's
//!   ([`Proxy::handle_event`] returns false: a co-located server may
//!   answer it).
//! * **Cache** (GET only): one entry per cache key — method, origin, and
//!   every request option except those the proxy interprets (ETag,
//!   Observe, the URI options, which the origin and path replace) and the
//!   NoCacheKey ones (§5.4.6, §5.6) — encoded into one byte string, looked
//!   up without allocating. A 2.05 is fresh for its Max-Age (60 s when
//!   absent) and served from the entry, with Max-Age = the time left
//!   (§5.6.1); concurrent identical requests wait for one upstream exchange
//!   (coalescing); a stale entry with an ETag is revalidated: the upstream
//!   GET offers the ETag, 2.03 Valid refreshes the entry (new Max-Age) and
//!   the waiting clients get the stored 2.05 with its body. A client GET
//!   offering the entry's ETag while fresh gets 2.03 itself. PUT/POST/DELETE
//!   are forwarded uncached; a 2.xx answer makes the GET entry of the same
//!   key stale (§5.6: unsafe methods invalidate).
//! * **Observe aggregation**: the first downstream registration of an
//!   entry registers upstream once; later ones are answered from the entry
//!   while the upstream observation lives and its state is fresh. Each
//!   upstream notification refreshes the entry and is fanned out to every
//!   downstream observer through [`Observers`] (CON/NON choice, §4.5.1
//!   pacing, §4.5.2 replacement in flight, removal on RST or timeout, as
//!   for an origin). When the last downstream observer of an entry is gone
//!   (Observe 1, RST, a CON notification given up), the proxy deregisters
//!   upstream (GET with Observe 1, RFC 7641 §3.6). A registration arriving
//!   when the entry is stale (the origin fell silent for Max-Age)
//!   re-registers upstream (§3.3.1).
//!
//! Not built: Block1/Block2 through the proxy (the options are not
//! recognised: 4.02), forwarding elective safe-to-forward options other
//! than Uri-Path/Uri-Query/ETag/Observe (they count in the cache key but
//! are not sent upstream), caching of error responses, Uri-Host towards
//! the origin (the origin is addressed by IP, as the simulator's clients
//! do).
//!
//! Driving: like the resource server — hand every endpoint event to
//! [`Proxy::handle_event`], then poll the endpoint again; call
//! [`Proxy::handle_timeout`] when [`Proxy::poll_timeout`] is reached.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::net::addr::{Addr, SockAddr};
use crate::sim::{SimDuration, SimTime};

use super::code::{Code, Method};
use super::codec::{MessageRef, Token};
use super::endpoint::{observe_value, Endpoint};
use super::events::{CacheInfo, ETag, Event, IncomingId};
use super::observe::{ObserveConfig, Observers};
use super::option::OptionNumber;
use super::request::Request;
use super::server::Reply;
use super::uri::{Uri, COAP_PORT};

/// How a proxy node serves.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// Accept Proxy-Uri / Proxy-Scheme requests (a forward proxy).
    pub forward: bool,
    /// Host names a forward proxy resolves (IPv4 literals resolve
    /// themselves); lowercase, as URIs are decomposed.
    pub hosts: Vec<(String, SockAddr)>,
    /// Reverse-proxy routes: first Uri-Path segment → origin (the segment
    /// is dropped); an empty prefix takes every path whole.
    pub routes: Vec<(String, SockAddr)>,
    /// Largest number of cache entries (an idle one is evicted for a new
    /// one; when none is idle the request is answered 5.03).
    pub max_entries: usize,
    /// The proxy's Observe settings towards its own observers.
    pub observe: ObserveConfig,
}

impl ProxyConfig {
    /// Default bound of cache entries.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
}

/// Counters of a proxy's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// GETs answered from a fresh entry (no upstream exchange).
    pub cache_hits: u64,
    /// GETs that started an upstream exchange (no entry, or a stale one).
    pub cache_misses: u64,
    /// GETs that joined an upstream exchange already in flight.
    pub coalesced: u64,
    /// Upstream GETs offering a stale entry's ETag (§5.6.2).
    pub revalidations: u64,
    /// Of which answered 2.03 Valid (no body came upstream).
    pub revalidated: u64,
    /// Upstream requests sent (GETs, registrations, forwarded PUT/POST/…).
    pub upstream_requests: u64,
    /// Upstream Observe registrations (first ones and re-registrations).
    pub upstream_registrations: u64,
    /// Upstream deregistrations (the last downstream observer left).
    pub upstream_deregistrations: u64,
    /// Upstream notifications received and fanned out.
    pub notifications_in: u64,
    /// Requests answered with 5.02/5.04/5.05 or 4.00 by the proxy itself.
    pub errors: u64,
    /// Cache entries evicted for new ones.
    pub evictions: u64,
}

impl ProxyStats {
    /// The metric names of [`ProxyStats::values`], in order (`coap.csv`).
    pub const NAMES: [&'static str; 11] = [
        "cache_hits",
        "cache_misses",
        "coalesced",
        "revalidations",
        "revalidated",
        "upstream_requests",
        "upstream_registrations",
        "upstream_deregistrations",
        "notifications_in",
        "errors",
        "evictions",
    ];

    /// Every counter, in the order of [`ProxyStats::NAMES`].
    pub fn values(&self) -> [u64; 11] {
        [
            self.cache_hits,
            self.cache_misses,
            self.coalesced,
            self.revalidations,
            self.revalidated,
            self.upstream_requests,
            self.upstream_registrations,
            self.upstream_deregistrations,
            self.notifications_in,
            self.errors,
            self.evictions,
        ]
    }
}

/// What an upstream request of ours is for.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    /// A GET for entry `0` (revalidating when it offered an ETag).
    Fetch(u64),
    /// A registration for entry `0`, observation handle `1`.
    Register(u64, u64),
    /// A deregistration (its answer is not needed).
    Deregister,
    /// A forwarded PUT/POST/DELETE for a client; `2`: the GET key's entry
    /// to invalidate, if any.
    Forward(Waiter, Option<u64>),
}

/// A client request waiting for an upstream answer.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    id: IncomingId,
    from: SockAddr,
    token: Token,
    con: bool,
    /// A GET with Observe 0: answered by a registration only.
    register: bool,
}

/// A stored response (a 2.05).
#[derive(Debug, Clone)]
struct Stored {
    content_format: Option<u16>,
    payload: Vec<u8>,
    etag: Option<ETag>,
    fresh_until: SimTime,
}

impl Stored {
    /// Store a 2.05's representation in `slot` (reusing its buffer),
    /// fresh for the response's Max-Age from `now`.
    fn put(
        slot: &mut Option<Stored>,
        now: SimTime,
        cf: Option<u16>,
        payload: &[u8],
        cache: &CacheInfo,
    ) {
        let fresh_until = now + SimDuration::from_secs(u64::from(cache.max_age_or_default()));
        let r = slot.get_or_insert_with(|| Stored {
            content_format: None,
            payload: Vec::new(),
            etag: None,
            fresh_until,
        });
        r.content_format = cf;
        r.payload.clear();
        r.payload.extend_from_slice(payload);
        r.etag = cache.etag;
        r.fresh_until = fresh_until;
    }
}

/// One cache entry (one cache key).
#[derive(Debug)]
struct Entry {
    /// Its name among the proxy's observers (the entry id in decimal).
    name: Box<str>,
    key: Box<[u8]>,
    origin: SockAddr,
    /// The upstream GET (path and query).
    req: Request,
    resp: Option<Stored>,
    /// The upstream GET in flight.
    fetch: Option<u64>,
    /// The upstream registration in flight.
    register: Option<u64>,
    /// The upstream observation (its registering request's handle).
    obs: Option<u64>,
    waiters: Vec<Waiter>,
}

impl Entry {
    fn fresh(&self, now: SimTime) -> bool {
        self.resp.as_ref().is_some_and(|r| now < r.fresh_until)
    }
    fn idle(&self) -> bool {
        self.fetch.is_none() && self.register.is_none() && self.obs.is_none()
    }
}

/// Where a request goes, as the proxy resolved it.
#[derive(Debug)]
struct Target {
    origin: SockAddr,
    path: Vec<String>,
    query: Vec<String>,
}

/// The caching proxy application.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    /// Cache key → entry id.
    index: BTreeMap<Box<[u8]>, u64>,
    entries: BTreeMap<u64, Entry>,
    next_entry: u64,
    /// Our upstream requests (their handles) → purpose.
    upstream: BTreeMap<u64, Purpose>,
    /// Upstream observation handle → entry.
    observing: BTreeMap<u64, u64>,
    observers: Observers,
    stats: ProxyStats,
    /// Scratch: the key being looked up, observer ids, the reply.
    key: Vec<u8>,
    ids: Vec<u64>,
    reply: Reply,
}

impl Proxy {
    /// A proxy with an empty cache.
    pub fn new(mut config: ProxyConfig) -> Self {
        if config.max_entries == 0 {
            config.max_entries = ProxyConfig::DEFAULT_MAX_ENTRIES;
        }
        let observers = Observers::new(config.observe);
        Proxy {
            config,
            index: BTreeMap::new(),
            entries: BTreeMap::new(),
            next_entry: 0,
            upstream: BTreeMap::new(),
            observing: BTreeMap::new(),
            observers,
            stats: ProxyStats::default(),
            key: Vec::new(),
            ids: Vec::new(),
            reply: Reply::bare(Code::CONTENT),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }
    /// Counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }
    /// Its downstream observers.
    pub fn observers(&self) -> &Observers {
        &self.observers
    }
    /// Cache entries held.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }
    /// Upstream observations alive.
    pub fn upstream_observations(&self) -> usize {
        self.observing.len()
    }
    /// Whether `response` is one of this proxy's notifications in flight.
    pub fn owns_notification(&self, response: super::events::ResponseId) -> bool {
        self.observers.owns(response)
    }

    /// The cache entry (its id) whose state notification `response`
    /// carries, while it is in flight.
    pub fn notification_entry(&self, response: super::events::ResponseId) -> Option<u64> {
        self.observers
            .by_response(response)
            .and_then(|o| o.path.parse().ok())
    }

    /// Tell `ep` that Proxy-Uri and Proxy-Scheme are handled here (a
    /// forward proxy), so they reach the proxy instead of a 5.05.
    pub fn register_options(&self, ep: &mut Endpoint) {
        if self.config.forward {
            ep.recognise_option(OptionNumber::PROXY_URI.0);
            ep.recognise_option(OptionNumber::PROXY_SCHEME.0);
        }
    }

    /// Handle one endpoint event; false if it is not the proxy's (a
    /// request for no proxied origin, a response to someone else's
    /// request).
    pub fn handle_event(&mut self, now: SimTime, ep: &mut Endpoint, ev: &Event) -> bool {
        match ev {
            Event::RequestReceived {
                id,
                from,
                token,
                method,
                payload,
                content_format,
                confirmable,
                ..
            } => {
                let w = Waiter {
                    id: *id,
                    from: *from,
                    token: *token,
                    con: *confirmable,
                    register: false,
                };
                self.on_request(now, ep, w, *method, *content_format, payload)
            }
            Event::RequestExpired { id } => {
                let mut mine = false;
                for e in self.entries.values_mut() {
                    let n = e.waiters.len();
                    e.waiters.retain(|w| w.id != *id);
                    mine |= e.waiters.len() != n;
                }
                mine
            }
            Event::ResponseReceived {
                handle,
                code,
                content_format,
                payload,
                observe,
                cache,
                ..
            } => {
                let Some(p) = self.upstream.remove(&handle.0) else {
                    return false;
                };
                self.on_upstream(now, ep, p, *code, *content_format, payload, *observe, cache);
                true
            }
            Event::Notification {
                handle,
                code,
                observe,
                content_format,
                payload,
                cache,
                ..
            } => {
                let Some(&e) = self.observing.get(&handle.0) else {
                    return false;
                };
                self.on_notification(now, ep, e, *code, *observe, *content_format, payload, cache);
                true
            }
            Event::StaleNotification { handle } => self.observing.contains_key(&handle.0),
            // the proxy sends no multicast requests
            Event::MulticastEnded { .. } => false,
            Event::GaveUp { handle } | Event::NoResponse { handle } => {
                let Some(p) = self.upstream.remove(&handle.0) else {
                    return false;
                };
                self.upstream_failed(ep, p, Code::GATEWAY_TIMEOUT);
                true
            }
            Event::ResetReceived { handle } => {
                let Some(p) = self.upstream.remove(&handle.0) else {
                    return false;
                };
                self.upstream_failed(ep, p, Code::BAD_GATEWAY);
                true
            }
            Event::ResponseAcked { response, .. }
            | Event::ResponseReset { response }
            | Event::ResponseGaveUp { response }
            | Event::ResponseExpired { response } => {
                let entry = self
                    .observers
                    .by_response(*response)
                    .and_then(|o| o.path.parse::<u64>().ok());
                if !self.observers.on_fate(now, ev) {
                    return false;
                }
                // only an RST or a CON given up removes an observer (an
                // ACK or an expired NON does not: no scan of the observers
                // per ACK)
                let removed = matches!(
                    ev,
                    Event::ResponseReset { .. } | Event::ResponseGaveUp { .. }
                );
                if let Some(e) = entry.filter(|_| removed) {
                    self.maybe_release(ep, e);
                }
                true
            }
        }
    }

    /// When the next paced notification is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.observers.poll_timeout()
    }

    /// Send the paced NON notifications due at `now` (each with its
    /// entry's current state).
    pub fn handle_timeout(&mut self, now: SimTime, ep: &mut Endpoint) {
        while let Some(id) = self.observers.due(now) {
            let Some(e) = self
                .observers
                .get(id)
                .and_then(|o| o.path.parse::<u64>().ok())
            else {
                continue;
            };
            let seq = self.observers.sequence();
            if self.fill_reply(now, e, Some(seq)) {
                let reply = std::mem::replace(&mut self.reply, Reply::bare(Code::CONTENT));
                self.observers.notify(now, ep, id, &reply);
                self.reply = reply;
            }
        }
    }

    // ---- requests -------------------------------------------------------

    fn on_request(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        mut w: Waiter,
        method: Method,
        content_format: Option<u16>,
        payload: &[u8],
    ) -> bool {
        let Some(m) = ep.request_message(w.id) else {
            return false;
        };
        let observe = if method == Method::Get {
            observe_value(&m)
        } else {
            None
        };
        let offered = m
            .options()
            .find(|o| o.number == OptionNumber::ETAG.0)
            .and_then(|o| ETag::new(o.value));
        let target = match self.resolve(&m) {
            None => return false,
            Some(Ok(t)) => t,
            Some(Err(code)) => {
                self.stats.errors += 1;
                let _ = ep.respond(w.id, &Reply::bare(code));
                return true;
            }
        };
        build_key(&mut self.key, method, &target, &m);

        if method != Method::Get {
            self.forward(ep, w, method, content_format, payload, target);
            return true;
        }
        let e = match self.index.get(&self.key[..]) {
            Some(&e) => e,
            None => match self.insert(target) {
                Some(e) => e,
                None => {
                    self.stats.errors += 1;
                    let _ = ep.respond(w.id, &Reply::bare(Code::SERVICE_UNAVAILABLE));
                    return true;
                }
            },
        };
        match observe {
            Some(0) => {
                w.register = true;
                let observed = self.entries[&e]
                    .obs
                    .is_some_and(|h| ep.is_observing(super::RequestHandle(h)));
                if observed && self.entries[&e].fresh(now) {
                    self.stats.cache_hits += 1;
                    self.answer(now, ep, e, w, offered);
                } else {
                    self.wait_registration(ep, e, w);
                }
            }
            other => {
                if other == Some(1) {
                    // RFC 7641 §3.6: the client deregisters; it still gets
                    // the representation
                    let name = self.entries[&e].name.clone();
                    self.observers.deregister(w.from, &name);
                    self.maybe_release(ep, e);
                }
                if self.entries[&e].fresh(now) {
                    self.stats.cache_hits += 1;
                    self.answer(now, ep, e, w, offered);
                } else {
                    self.wait_fetch(ep, e, w);
                }
            }
        }
        true
    }

    /// The origin and path of request `m`: `None` if it is not for the
    /// proxy; `Some(Err(code))` for a request the proxy refuses.
    fn resolve(&self, m: &MessageRef<'_>) -> Option<Result<Target, Code>> {
        // §5.7.1: an unrecognised elective unsafe-to-forward option → 5.02
        let unsafe_unknown = m.options().any(|o| {
            let n = OptionNumber(o.number);
            o.number & 2 != 0 && !n.is_critical() && !is_interpreted(o.number)
        });
        let proxy_uri = m.option(OptionNumber::PROXY_URI.0);
        let proxy_scheme = m.option(OptionNumber::PROXY_SCHEME.0);
        let segments = |number: u16| -> Vec<String> {
            m.options()
                .filter(|o| o.number == number)
                .map(|o| String::from_utf8_lossy(o.value).into_owned())
                .collect()
        };
        if self.config.forward && (proxy_uri.is_some() || proxy_scheme.is_some()) {
            if unsafe_unknown {
                return Some(Err(Code::BAD_GATEWAY));
            }
            let (secure, host, port, path, query) = match proxy_uri {
                // §5.10.2: Proxy-Uri takes precedence over Uri-* options
                Some(v) => {
                    let Ok(s) = std::str::from_utf8(v) else {
                        return Some(Err(Code::BAD_REQUEST));
                    };
                    let Ok(u) = Uri::parse(s) else {
                        return Some(Err(Code::BAD_REQUEST));
                    };
                    (u.secure, u.host, u.port, u.path, u.query)
                }
                None => {
                    let scheme = proxy_scheme.unwrap_or_default();
                    let secure = match scheme {
                        b"coap" => false,
                        b"coaps" => true,
                        _ => return Some(Err(Code::PROXYING_NOT_SUPPORTED)),
                    };
                    let Some(host) = m.option(OptionNumber::URI_HOST.0) else {
                        return Some(Err(Code::BAD_REQUEST));
                    };
                    let port = m
                        .option(OptionNumber::URI_PORT.0)
                        .and_then(super::option::decode_uint)
                        .map_or(COAP_PORT, |p| p as u16);
                    (
                        secure,
                        String::from_utf8_lossy(host).to_ascii_lowercase(),
                        port,
                        segments(OptionNumber::URI_PATH.0),
                        segments(OptionNumber::URI_QUERY.0),
                    )
                }
            };
            if secure {
                return Some(Err(Code::PROXYING_NOT_SUPPORTED));
            }
            let origin = match self.config.hosts.iter().find(|(h, _)| *h == host) {
                Some((_, a)) => SockAddr::new(a.addr, port),
                None => match host.parse::<Ipv4Addr>() {
                    Ok(ip) => SockAddr::new(Addr::from(ip), port),
                    // §5.9.2.3: the proxy cannot reach the origin
                    Err(_) => return Some(Err(Code::BAD_GATEWAY)),
                },
            };
            return Some(Ok(Target {
                origin,
                path,
                query,
            }));
        }
        let mut path = segments(OptionNumber::URI_PATH.0);
        let first = path.first().map_or("", String::as_str);
        let (prefix, origin) = self
            .config
            .routes
            .iter()
            .find(|(p, _)| !p.is_empty() && p == first)
            .or_else(|| self.config.routes.iter().find(|(p, _)| p.is_empty()))?;
        if unsafe_unknown {
            return Some(Err(Code::BAD_GATEWAY));
        }
        if !prefix.is_empty() {
            path.remove(0);
        }
        Some(Ok(Target {
            origin: *origin,
            path,
            query: segments(OptionNumber::URI_QUERY.0),
        }))
    }

    /// A new entry for the key in `self.key`; an idle entry is evicted
    /// when the cache is full (`None` when none is).
    fn insert(&mut self, t: Target) -> Option<u64> {
        if self.entries.len() >= self.config.max_entries {
            let victim = self
                .entries
                .iter()
                .filter(|(_, e)| e.idle() && e.waiters.is_empty())
                .min_by_key(|(id, e)| (e.resp.as_ref().map(|r| r.fresh_until), **id))
                .map(|(id, _)| *id)?;
            if let Some(old) = self.entries.remove(&victim) {
                self.index.remove(&old.key);
                self.stats.evictions += 1;
            }
        }
        let id = self.next_entry;
        self.next_entry += 1;
        let mut req = Request::get(t.path.join("/"));
        req.query = t.query;
        let key: Box<[u8]> = self.key.as_slice().into();
        self.index.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                name: id.to_string().into(),
                key,
                origin: t.origin,
                req,
                resp: None,
                fetch: None,
                register: None,
                obs: None,
                waiters: Vec::new(),
            },
        );
        Some(id)
    }

    /// `w` waits for a GET of entry `e`: one is sent unless a GET or a
    /// registration is in flight (then `w` joins it).
    fn wait_fetch(&mut self, ep: &mut Endpoint, e: u64, w: Waiter) {
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        en.waiters.push(w);
        if en.fetch.is_some() || en.register.is_some() {
            self.stats.coalesced += 1;
            return;
        }
        self.stats.cache_misses += 1;
        let mut req = en.req.clone();
        req.confirmable = w.con;
        // §5.6.2: validate a stale representation by its ETag
        req.etag.clear();
        if let Some(tag) = en.resp.as_ref().and_then(|r| r.etag) {
            req.etag.extend_from_slice(tag.as_slice());
            self.stats.revalidations += 1;
        }
        match ep.request(en.origin, &req) {
            Ok(h) => {
                en.fetch = Some(h.0);
                self.upstream.insert(h.0, Purpose::Fetch(e));
                self.stats.upstream_requests += 1;
            }
            Err(_) => self.upstream_failed(ep, Purpose::Fetch(e), Code::BAD_GATEWAY),
        }
    }

    /// `w` (a registration) waits for entry `e`'s upstream registration,
    /// sent unless one is in flight.
    fn wait_registration(&mut self, ep: &mut Endpoint, e: u64, w: Waiter) {
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        en.waiters.push(w);
        if en.register.is_some() {
            self.stats.coalesced += 1;
            return;
        }
        self.stats.cache_misses += 1;
        let mut req = en.req.clone();
        req.confirmable = w.con;
        req.observe = Some(0);
        let alive = en.obs.filter(|h| ep.is_observing(super::RequestHandle(*h)));
        let sent = match alive {
            Some(h) => ep.reregister(super::RequestHandle(h), &req),
            None => ep.request(en.origin, &req),
        };
        match sent {
            Ok(h) => {
                let obs = alive.unwrap_or(h.0);
                if en.obs.is_some_and(|o| o != obs) {
                    if let Some(old) = en.obs.take() {
                        self.observing.remove(&old);
                    }
                }
                en.register = Some(h.0);
                self.upstream.insert(h.0, Purpose::Register(e, obs));
                self.stats.upstream_requests += 1;
                self.stats.upstream_registrations += 1;
            }
            Err(_) => self.upstream_failed(ep, Purpose::Register(e, 0), Code::BAD_GATEWAY),
        }
    }

    /// Forward a PUT/POST/DELETE (uncached).
    fn forward(
        &mut self,
        ep: &mut Endpoint,
        w: Waiter,
        method: Method,
        content_format: Option<u16>,
        payload: &[u8],
        t: Target,
    ) {
        // the GET entry of the same resource (no other option), made
        // stale by a 2.xx
        target_key(&mut self.key, Method::Get, &t);
        let get = self.index.get(&self.key[..]).copied();
        let mut req = Request::new(method, t.path.join("/")).confirmable(w.con);
        req.query = t.query;
        req.content_format = content_format;
        req.payload.extend_from_slice(payload);
        match ep.request(t.origin, &req) {
            Ok(h) => {
                self.upstream.insert(h.0, Purpose::Forward(w, get));
                self.stats.upstream_requests += 1;
            }
            Err(_) => {
                self.stats.errors += 1;
                let _ = ep.respond(w.id, &Reply::bare(Code::BAD_GATEWAY));
            }
        }
    }

    // ---- upstream answers -----------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn on_upstream(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        p: Purpose,
        code: Code,
        content_format: Option<u16>,
        payload: &[u8],
        observe: Option<u32>,
        cache: &CacheInfo,
    ) {
        let (e, registration) = match p {
            Purpose::Deregister => return,
            Purpose::Forward(w, get) => {
                let reply = Reply::new(code, content_format, payload.to_vec());
                let _ = ep.respond(w.id, &reply);
                if code.is_success() {
                    if let Some(r) = get
                        .and_then(|g| self.entries.get_mut(&g))
                        .and_then(|en| en.resp.as_mut())
                    {
                        r.fresh_until = now;
                    }
                }
                return;
            }
            Purpose::Fetch(e) => (e, None),
            Purpose::Register(e, obs) => (e, Some(obs)),
        };
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        match registration {
            Some(_) => en.register = None,
            None => en.fetch = None,
        }
        let fresh_until = now + SimDuration::from_secs(u64::from(cache.max_age_or_default()));
        let stored = match code {
            Code::CONTENT => {
                Stored::put(&mut en.resp, now, content_format, payload, cache);
                true
            }
            // §5.9.1.3: the stored representation is still valid
            Code::VALID => match en.resp.as_mut() {
                Some(r) => {
                    self.stats.revalidated += 1;
                    r.fresh_until = fresh_until;
                    if cache.etag.is_some() {
                        r.etag = cache.etag;
                    }
                    true
                }
                None => false,
            },
            _ => false,
        };
        if let Some(obs) = registration {
            if stored && observe.is_some() {
                en.obs = Some(obs);
                self.observing.insert(obs, e);
            } else if en.obs == Some(obs) && !ep.is_observing(super::RequestHandle(obs)) {
                en.obs = None;
                self.observing.remove(&obs);
            }
        }
        // a GET answers the plain waiters, a registration every waiter
        let mut waiters = std::mem::take(&mut en.waiters);
        let mut keep = Vec::new();
        for w in waiters.drain(..) {
            if w.register && registration.is_none() {
                keep.push(w);
                continue;
            }
            if stored {
                self.answer(now, ep, e, w, None);
            } else {
                let code = if code == Code::VALID {
                    Code::BAD_GATEWAY
                } else {
                    code
                };
                let _ = ep.respond(w.id, &Reply::new(code, content_format, payload.to_vec()));
            }
        }
        if let Some(en) = self.entries.get_mut(&e) {
            keep.append(&mut en.waiters);
            en.waiters = keep;
            if en.waiters.is_empty() {
                en.waiters = waiters;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_notification(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        e: u64,
        code: Code,
        observe: Option<u32>,
        content_format: Option<u16>,
        payload: &[u8],
        cache: &CacheInfo,
    ) {
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        self.stats.notifications_in += 1;
        self.observers.of_path(&en.name, &mut self.ids);
        let ids = std::mem::take(&mut self.ids);
        if code == Code::CONTENT && observe.is_some() {
            Stored::put(&mut en.resp, now, content_format, payload, cache);
            if !ids.is_empty() {
                let seq = self.observers.next_sequence();
                self.fill_reply(now, e, Some(seq));
                let reply = std::mem::replace(&mut self.reply, Reply::bare(Code::CONTENT));
                for &id in &ids {
                    self.observers.notify(now, ep, id, &reply);
                }
                self.reply = reply;
            }
        } else {
            // the origin ended the observation (RFC 7641 §3.2): so does
            // the proxy, towards each of its observers
            if let Some(obs) = en.obs.take() {
                self.observing.remove(&obs);
            }
            en.resp = None;
            let name = en.name.clone();
            let reply = Reply::new(code, content_format, payload.to_vec());
            for &id in &ids {
                self.observers.notify(now, ep, id, &reply);
                if let Some(peer) = self.observers.get(id).map(|o| o.peer) {
                    self.observers.deregister(peer, &name);
                }
            }
        }
        self.ids = ids;
    }

    /// Upstream request `p` failed: its clients get `code` (5.04 Gateway
    /// Timeout, or 5.02 Bad Gateway for an RST).
    fn upstream_failed(&mut self, ep: &mut Endpoint, p: Purpose, code: Code) {
        let (e, registration) = match p {
            Purpose::Deregister => return,
            Purpose::Forward(w, _) => {
                self.stats.errors += 1;
                let _ = ep.respond(w.id, &Reply::bare(code));
                return;
            }
            Purpose::Fetch(e) => (e, false),
            Purpose::Register(e, _) => (e, true),
        };
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        if registration {
            en.register = None;
            if let Some(obs) = en
                .obs
                .filter(|h| !ep.is_observing(super::RequestHandle(*h)))
            {
                en.obs = None;
                self.observing.remove(&obs);
            }
        } else {
            en.fetch = None;
        }
        let mut keep = Vec::new();
        for w in std::mem::take(&mut en.waiters) {
            if w.register != registration && !registration {
                keep.push(w);
                continue;
            }
            self.stats.errors += 1;
            let _ = ep.respond(w.id, &Reply::bare(code));
        }
        en.waiters = keep;
    }

    // ---- answers --------------------------------------------------------

    /// Answer client `w` from entry `e` (fresh): 2.05 with the body, or
    /// 2.03 when it offered the entry's ETag; a registration is added to
    /// the observers and answered with Observe.
    fn answer(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        e: u64,
        w: Waiter,
        offered: Option<ETag>,
    ) {
        let Some(en) = self.entries.get(&e) else {
            return;
        };
        let seq = if w.register && en.obs.is_some() {
            self.observers
                .register(now, w.from, w.token, &en.name, w.con);
            Some(self.observers.sequence())
        } else {
            None
        };
        if !self.fill_reply(now, e, seq) {
            return;
        }
        let valid = offered.is_some_and(|t| self.reply.etag == t.as_slice());
        if valid {
            self.reply.code = Code::VALID;
            self.reply.payload.clear();
            self.reply.content_format = None;
        }
        let _ = ep.respond(w.id, &self.reply);
    }

    /// Fill the scratch reply with entry `e`'s 2.05 (Max-Age: the
    /// freshness left, §5.6.1; its ETag; `observe`); false if it has none.
    fn fill_reply(&mut self, now: SimTime, e: u64, observe: Option<u32>) -> bool {
        let Some(r) = self.entries.get(&e).and_then(|en| en.resp.as_ref()) else {
            return false;
        };
        let out = &mut self.reply;
        out.code = Code::CONTENT;
        out.content_format = r.content_format;
        out.payload.clear();
        out.payload.extend_from_slice(&r.payload);
        out.etag.clear();
        if let Some(t) = r.etag {
            out.etag.extend_from_slice(t.as_slice());
        }
        let left =
            (r.fresh_until.saturating_since(now).0 / 1_000_000_000).min(u64::from(u32::MAX)) as u32;
        out.max_age = (left != 60).then_some(left);
        out.observe = observe;
        true
    }

    /// Entry `e` lost an observer: when none is left, cancel the upstream
    /// observation (RFC 7641 §3.6, GET with Observe 1).
    fn maybe_release(&mut self, ep: &mut Endpoint, e: u64) {
        let Some(en) = self.entries.get_mut(&e) else {
            return;
        };
        if en.register.is_some() || en.waiters.iter().any(|w| w.register) {
            return;
        }
        if self.observers.count_of(&en.name) > 0 {
            return;
        }
        let Some(obs) = en.obs.take() else {
            return;
        };
        self.observing.remove(&obs);
        let mut req = en.req.clone();
        req.confirmable = true;
        if let Ok(Some(h)) = ep.cancel_observation(super::RequestHandle(obs), Some(&req)) {
            self.upstream.insert(h.0, Purpose::Deregister);
            self.stats.upstream_requests += 1;
        }
        self.stats.upstream_deregistrations += 1;
        // the representation stays cached until its Max-Age ends
    }
}

/// Options the proxy interprets itself (not part of the cache key beyond
/// the origin and path they resolve to, §5.6): Uri-Host, ETag, Observe,
/// Uri-Port, Uri-Path, Uri-Query, Proxy-Uri, Proxy-Scheme.
fn is_interpreted(number: u16) -> bool {
    matches!(number, 3 | 4 | 6 | 7 | 11 | 15 | 35 | 39)
}

/// The cache key (§5.6) of a request into `out`: method, origin, then
/// (number, length, value) of each path segment, query argument and every
/// other option that is neither interpreted by the proxy nor NoCacheKey
/// (§5.4.6: `number & 0x1e == 0x1c`).
fn build_key(out: &mut Vec<u8>, method: Method, t: &Target, m: &MessageRef<'_>) {
    target_key(out, method, t);
    for o in m.options() {
        if !is_interpreted(o.number) && o.number & 0x1e != 0x1c {
            key_item(out, o.number, o.value);
        }
    }
}

/// One (number, length, value) item of a cache key.
fn key_item(out: &mut Vec<u8>, number: u16, v: &[u8]) {
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// The part of a cache key the method and target make (no other option).
fn target_key(out: &mut Vec<u8>, method: Method, t: &Target) {
    out.clear();
    out.push(method.code().0);
    out.extend_from_slice(&t.origin.addr.to_bits().to_be_bytes());
    out.extend_from_slice(&t.origin.port.to_be_bytes());
    for s in &t.path {
        key_item(out, OptionNumber::URI_PATH.0, s.as_bytes());
    }
    for q in &t.query {
        key_item(out, OptionNumber::URI_QUERY.0, q.as_bytes());
    }
}

#[cfg(test)]
mod tests;
