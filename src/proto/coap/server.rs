//! A resource server application (RFC 7252 §5.8) on an endpoint's server
//! side: the [`Endpoint`] reports requests, the [`ResourceServer`] answers
//! them from its [`ResourceStore`].
//!
//! Resources are keyed by their path (Uri-Path segments joined by `/`) in a
//! `BTreeMap`, so any listing is in a stable order. The map allocates nothing
//! until the first resource is stored.

use std::collections::{BTreeMap, VecDeque};

use crate::net::addr::SockAddr;
use crate::sim::{SimDuration, SimRng, SimTime};

use super::block::{block_of, size_of_szx, BlockOptions, BlockValue, MAX_SZX};
use super::code::{Code, MessageType, Method};
use super::codec::{write_header, write_payload, OptionWriter, Token};
use super::endpoint::Endpoint;
use super::events::{Event, IncomingId};
use super::link::{write_link, Filter, LinkAttrs};
use super::observe::{ObserveConfig, Observers};
use super::option::{encode_uint, OptionNumber};

/// The path of resource discovery (RFC 6690 §4), as requests name paths.
pub const WELL_KNOWN_CORE: &str = ".well-known/core";
/// Content-Format `application/link-format` (RFC 6690 §7.2).
pub const LINK_FORMAT: u16 = 40;
/// Largest `/.well-known/core` listing built (whole links only; the rest
/// is left out): a listing must still fit one UDP datagram when block-wise
/// is off. With block-wise on, any listing longer than a block is served
/// in Block2 slices (RFC 7959 §2.4), so a client gets all of it.
pub const MAX_LINK_FORMAT: usize = DEFAULT_MAX_VALUE_BYTES;

/// A stored representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Content-Format of the stored value, if the request carried one.
    pub content_format: Option<u16>,
    /// The last value PUT or POSTed.
    pub value: Vec<u8>,
    /// The store's change count when this value was stored (unique per
    /// representation of a path: its ETag, [`Resource::etag`]).
    pub version: u64,
}

impl Resource {
    /// The ETag of this representation (RFC 7252 §5.10.6): its version,
    /// big-endian, minimal (1–8 bytes; versions start at 1).
    pub fn etag(&self) -> super::events::ETag {
        let b = self.version.max(1).to_be_bytes();
        let skip = (self.version.max(1).leading_zeros() / 8) as usize;
        super::events::ETag::new(&b[skip..]).unwrap_or_default()
    }
}

/// A response as the application states it (code, options, payload); the
/// endpoint adds type, message ID and token. Options left `None` (an empty
/// `etag`) are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub content_format: Option<u16>,
    pub payload: Vec<u8>,
    /// ETag (RFC 7252 §5.10.6), 1–8 bytes; empty: none.
    pub etag: Vec<u8>,
    /// Observe (RFC 7641 §2): the notification's 24-bit sequence number.
    pub observe: Option<u32>,
    /// Max-Age in seconds (RFC 7252 §5.10.5); absent means 60.
    pub max_age: Option<u32>,
    /// Block1/Block2/Size1/Size2 (RFC 7959); none for a plain response.
    pub block: BlockOptions,
}

impl Reply {
    /// A reply with `code` and no payload.
    pub fn bare(code: Code) -> Self {
        Reply::new(code, None, Vec::new())
    }

    /// A reply with `code`, Content-Format and payload, no other option.
    pub fn new(code: Code, content_format: Option<u16>, payload: Vec<u8>) -> Self {
        Reply {
            code,
            content_format,
            payload,
            etag: Vec::new(),
            observe: None,
            max_age: None,
            block: BlockOptions::NONE,
        }
    }
}

/// Default bound of the resources a store creates by PUT/POST.
pub const DEFAULT_MAX_RESOURCES: usize = 100_000;
/// Default bound of the bytes (paths and values) a store holds.
pub const DEFAULT_MAX_STORE_BYTES: usize = 64 << 20;
/// Default largest value stored: a GET's response (header, token, options,
/// payload marker) must still fit one UDP datagram (65,507 bytes over
/// IPv4), or the server could not answer it.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64_000;

/// Path → resource, bounded: a PUT/POST that would create more than
/// `max_resources` resources is answered 5.03 Service Unavailable, one
/// whose value is larger than `max_value` or would take the store past
/// `max_bytes` 4.13 Request Entity Too Large (RFC 7252 §5.9.2.9); each
/// refusal is counted ([`ResourceStore::refused`]).
#[derive(Debug, Clone)]
pub struct ResourceStore {
    resources: BTreeMap<String, Resource>,
    max_resources: usize,
    max_bytes: usize,
    max_value: usize,
    /// Bytes held: paths plus values.
    bytes: usize,
    refused: u64,
    /// Link attributes (RFC 6690 §3) advertised for paths, whether or not
    /// a value is stored there yet; allocated at the first (most stores
    /// have none, and a store stays small).
    attrs: Option<Box<LinkTable>>,
    /// Changes so far (the last [`Resource::version`] given).
    changes: u64,
}

/// Link attributes by path (boxed in the store: most stores have none).
#[derive(Debug, Clone, Default)]
struct LinkTable(BTreeMap<String, LinkAttrs>);

impl Default for ResourceStore {
    fn default() -> Self {
        ResourceStore {
            resources: BTreeMap::new(),
            max_resources: DEFAULT_MAX_RESOURCES,
            max_bytes: DEFAULT_MAX_STORE_BYTES,
            max_value: DEFAULT_MAX_VALUE_BYTES,
            bytes: 0,
            refused: 0,
            attrs: None,
            changes: 0,
        }
    }
}

impl ResourceStore {
    /// An empty store with the default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the bounds (resources created, bytes held, largest value).
    pub fn with_limits(mut self, max_resources: usize, max_bytes: usize, max_value: usize) -> Self {
        self.max_resources = max_resources;
        self.max_bytes = max_bytes;
        self.max_value = max_value;
        self
    }

    /// The largest value a PUT/POST may store.
    pub fn max_value(&self) -> usize {
        self.max_value
    }

    /// PUT/POST requests refused by the bounds.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Bytes held (paths and values).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The resource at `path`.
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(path)
    }

    /// Store `value` at `path` (for seeding a server).
    /// Seeding is not bounded, but counts in [`ResourceStore::bytes`].
    pub fn insert(&mut self, path: impl Into<String>, content_format: Option<u16>, value: Vec<u8>) {
        let path = path.into();
        let plen = path.len();
        self.bytes += plen + value.len();
        self.changes += 1;
        if let Some(old) = self.resources.insert(
            path,
            Resource {
                content_format,
                value,
                version: self.changes,
            },
        ) {
            self.bytes = self.bytes.saturating_sub(plen + old.value.len());
        }
    }

    /// All resources, ordered by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Resource)> {
        self.resources.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Advertise `attrs` (`rt`, `if`, `obs`, `sz`) in the link of `path`
    /// (RFC 6690 §3); they are listed while a resource is stored there.
    pub fn set_link_attrs(&mut self, path: impl Into<String>, attrs: LinkAttrs) {
        self.attrs
            .get_or_insert_with(Box::default)
            .0
            .insert(path.into(), attrs);
    }

    /// The link attributes advertised for `path`.
    pub fn link_attrs(&self, path: &str) -> Option<&LinkAttrs> {
        self.attrs.as_ref()?.0.get(path)
    }

    /// The CoRE Link Format (RFC 6690) listing of every stored resource,
    /// in path order (see [`ResourceStore::link_format_filtered`]).
    pub fn link_format(&self) -> Vec<u8> {
        self.link_format_filtered(&Filter::default())
    }

    /// The listing of the stored resources `filter` (RFC 6690 §4.1)
    /// passes, in path order: `</path>` with `rt`, `if`, `ct` (when a
    /// Content-Format was stored), `sz`, `obs`, comma-separated. Every
    /// matching link is listed up to [`MAX_LINK_FORMAT`] bytes (whole links).
    pub fn link_format_filtered(&self, filter: &Filter) -> Vec<u8> {
        let mut out = String::new();
        let mut link = String::new();
        for (path, r) in &self.resources {
            let attrs = self.link_attrs(path);
            if !filter.matches(path, r.content_format, attrs) {
                continue;
            }
            link.clear();
            write_link(&mut link, path, r.content_format, attrs);
            let sep = usize::from(!out.is_empty());
            if out.len() + sep + link.len() > MAX_LINK_FORMAT {
                break;
            }
            if sep == 1 {
                out.push(',');
            }
            out.push_str(&link);
        }
        out.into_bytes()
    }

    /// The answer to a GET of `/.well-known/core` with `filter` (RFC 6690
    /// §4, §4.1): 2.05 with the matching links; none matching: 2.05 with
    /// an empty payload (a unicast request; a server answering a multicast
    /// request stays silent instead, RFC 7252 §8.2.1 — the
    /// [`ResourceServer`]'s job).
    pub fn discovery(&self, filter: &Filter) -> Reply {
        Reply::new(
            Code::CONTENT,
            Some(LINK_FORMAT),
            self.link_format_filtered(filter),
        )
    }

    /// Apply one request and return the response:
    /// GET → 2.05 Content with the stored value or 4.04 Not Found (§5.8.1);
    /// PUT/POST → store, 2.01 Created if the path was new, else 2.04 Changed
    /// (§5.8.2, §5.8.3); DELETE → remove, 2.02 Deleted (§5.8.4, idempotent).
    pub fn apply(
        &mut self,
        method: Method,
        path: &str,
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Reply {
        match method {
            // RFC 6690 §4: resource discovery, unless a resource was stored
            // at that path
            Method::Get if path == WELL_KNOWN_CORE && !self.resources.contains_key(path) => {
                self.discovery(&Filter::default())
            }
            Method::Get => match self.resources.get(path) {
                Some(r) => Reply::new(Code::CONTENT, r.content_format, r.value.clone()),
                None => Reply::bare(Code::NOT_FOUND),
            },
            // an existing resource is updated in place (no allocation)
            Method::Put | Method::Post => {
                let old = self.resources.get(path).map(|r| r.value.len());
                let after = self.bytes - old.unwrap_or(0)
                    + payload.len()
                    + if old.is_none() { path.len() } else { 0 };
                if payload.len() > self.max_value || after > self.max_bytes {
                    self.refused += 1;
                    return Reply::bare(Code::REQUEST_ENTITY_TOO_LARGE);
                }
                if old.is_none() && self.resources.len() >= self.max_resources {
                    self.refused += 1;
                    return Reply::bare(Code::SERVICE_UNAVAILABLE);
                }
                self.bytes = after;
                self.changes += 1;
                match self.resources.get_mut(path) {
                    Some(r) => {
                        r.version = self.changes;
                        r.content_format = content_format;
                        r.value.clear();
                        r.value.extend_from_slice(payload);
                        Reply::bare(Code::CHANGED)
                    }
                    None => {
                        let res = Resource {
                            content_format,
                            value: payload.to_vec(),
                            version: self.changes,
                        };
                        self.resources.insert(path.to_owned(), res);
                        Reply::bare(Code::CREATED)
                    }
                }
            }
            Method::Delete => {
                if let Some(old) = self.resources.remove(path) {
                    self.bytes = self.bytes.saturating_sub(path.len() + old.value.len());
                }
                Reply::bare(Code::DELETED)
            }
        }
    }
}

/// A resource server application over an [`Endpoint`]: a [`ResourceStore`]
/// plus the glue that answers each [`Event::RequestReceived`] with
/// [`ResourceServer::serve`]'s reply — piggybacked at once, or, with a
/// separate-response delay, deferred (Empty ACK at once) and answered that
/// much later as a separate CON response (§5.2.2). NON requests are always
/// answered at once (a NON response, §5.2.3).
///
/// Driving: hand it every endpoint event ([`ResourceServer::handle_event`]),
/// then poll the endpoint again (its answer is queued there); with a delay,
/// also call [`ResourceServer::handle_timeout`] when
/// [`ResourceServer::poll_timeout`] is reached.
///
/// It serves Observe (RFC 7641, `super::observe`): a GET with Observe 0
/// answered 2.05 registers the client, and every change of a resource —
/// a PUT/POST/DELETE it answers, or [`ResourceServer::update`] by the
/// application — notifies the resource's observers through the endpoint.
#[derive(Debug, Clone, Default)]
pub struct ResourceServer {
    store: ResourceStore,
    separate_response_delay: Option<SimDuration>,
    /// Deferred answers, due in order (one constant delay).
    deferred: VecDeque<(SimTime, IncomingId, Reply)>,
    observe: ObserveConfig,
    /// Allocated at the first registration (most servers have none).
    observers: Option<Box<Observers>>,
    /// Scratch list of observer ids.
    ids: Vec<u64>,
    /// Block-wise (RFC 7959) with this largest SZX; `None`: off (Block1 and
    /// Block2 are then not recognised and the endpoint answers 4.02).
    block_szx: Option<u8>,
    /// Block-wise state, allocated when block-wise is on.
    block: Option<Box<BlockState>>,
    /// Answers to multicast requests (RFC 7252 §8.2), allocated by
    /// [`ResourceServer::with_leisure`].
    leisure: Option<Box<Leisure>>,
    /// Cache validators (RFC 7252 §5.10.5, §5.10.6): 2.05 answers and
    /// notifications carry the representation's ETag and Max-Age, and a
    /// GET offering the current ETag is answered 2.03 Valid. Off by
    /// default (nothing changes on the wire).
    validators: bool,
    /// Most observers registered at once (`None`: no bound, the
    /// simulator's default); a registration past it is answered without
    /// Observe (RFC 7641 §4.1: the client is not added to the list) and
    /// counted in [`ObserveStats::refused_full`](super::ObserveStats).
    max_observers: Option<std::num::NonZeroU32>,
}

/// A [`ResourceServer`]'s multicast side: each answer waits a delay drawn
/// uniformly in [0, Leisure] from its own stream (RFC 7252 §8.2).
#[derive(Debug, Clone)]
struct Leisure {
    window: SimDuration,
    rng: SimRng,
    /// Answers due, by (time, arrival order).
    due: BTreeMap<(SimTime, u64), (IncomingId, Reply)>,
    seq: u64,
    stats: MulticastServerStats,
}

/// Counters of a [`ResourceServer`]'s multicast side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticastServerStats {
    /// Multicast requests answered (after their leisure delay).
    pub answered: u64,
    /// Multicast requests left unanswered: nothing useful to say (an
    /// error, or no link matching a discovery filter; §8.2.1).
    pub silent: u64,
}

/// A [`ResourceServer`]'s block-wise state.
#[derive(Debug, Clone, Default)]
struct BlockState {
    /// Block1 bodies being reassembled (few at a time: a linear search
    /// needs no key allocation).
    assemblies: Vec<Assembly>,
    /// The reply being built for a block-wise request (buffers reused).
    scratch: Option<Reply>,
    stats: BlockServerStats,
}

/// One Block1 body being received from `peer` for `path` (RFC 7959 §2.5).
#[derive(Debug, Clone)]
struct Assembly {
    peer: SockAddr,
    path: String,
    content_format: Option<u16>,
    body: Vec<u8>,
    /// Last block received: stale assemblies are dropped EXCHANGE_LIFETIME
    /// later.
    touched: SimTime,
}

/// Counters of a [`ResourceServer`]'s block-wise side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockServerStats {
    /// Block2 responses (slices of a representation) sent.
    pub block2_sent: u64,
    /// Block1 blocks accepted.
    pub block1_received: u64,
    /// Block1 bodies completed and applied.
    pub bodies_completed: u64,
    /// 4.08 Request Entity Incomplete: a block out of sequence (§2.9.2).
    pub incomplete: u64,
    /// 4.13 Request Entity Too Large for a block-wise body (§2.9.3).
    pub too_large: u64,
    /// Malformed block options: SZX 7 or a short non-final block (4.00),
    /// a Block2 past the end (4.02); over-long Size1/Size2 (ignored).
    pub malformed: u64,
}

/// What [`ResourceServer::serve_event`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Not a `RequestReceived`: not the server's.
    NotARequest,
    /// An ordinary request, answered (whatever the code).
    Answered,
    /// A Block1 block stored, 2.31 Continue sent: the body is not complete.
    BlockContinue,
    /// The last Block1 block: the whole body was applied (2.01/2.04) and
    /// is the value stored at the request's path.
    BodyComplete,
    /// A block-wise request refused (4.00, 4.02, 4.08, 4.13, or the final
    /// apply failed).
    BlockRefused,
    /// The fate of an Observe notification (ACK, RST, given up, expired):
    /// its observer was updated.
    Notification,
}

impl ResourceServer {
    /// An empty store, answering piggybacked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer CON requests `Some(d)` later as separate responses (§5.2.2)
    /// instead of piggybacked (`None`, the default).
    pub fn with_separate_response_delay(mut self, delay: Option<SimDuration>) -> Self {
        self.separate_response_delay = delay;
        self
    }

    /// Answer requests that arrived via multicast (RFC 7252 §8.2) after a
    /// delay uniform in [0, `leisure`] drawn from `rng` (one draw per
    /// answer; give the server a stream of its own). Without this, such
    /// answers leave at once.
    pub fn with_leisure(mut self, leisure: SimDuration, rng: SimRng) -> Self {
        self.leisure = Some(Box::new(Leisure {
            window: leisure,
            rng,
            due: BTreeMap::new(),
            seq: 0,
            stats: MulticastServerStats::default(),
        }));
        self
    }

    /// Whether an answer to a multicast request is due at `now`.
    pub fn multicast_due(&self, now: SimTime) -> bool {
        self.leisure
            .as_ref()
            .and_then(|l| l.due.keys().next())
            .is_some_and(|k| k.0 <= now)
    }

    /// Multicast counters (zero without [`ResourceServer::with_leisure`]).
    pub fn multicast_stats(&self) -> MulticastServerStats {
        self.leisure.as_ref().map(|l| l.stats).unwrap_or_default()
    }

    /// Observe settings (RFC 7641; the defaults otherwise).
    pub fn with_observe(mut self, config: ObserveConfig) -> Self {
        self.observe = config;
        if let Some(o) = self.observers.as_mut() {
            **o = Observers::new(config);
        }
        self
    }

    /// Give 2.05 answers and notifications the representation's ETag and
    /// the Max-Age of [`ObserveConfig::max_age`] (when not 60), and answer
    /// a GET offering the current ETag with 2.03 Valid (RFC 7252
    /// §5.10.6.2) — what an origin behind a caching proxy does. Off by
    /// default.
    pub fn with_validators(mut self, on: bool) -> Self {
        self.validators = on;
        self
    }

    /// Register at most `max` observers at once: a GET with Observe 0 from
    /// a client not yet on the list is then answered as a plain GET,
    /// without Observe (RFC 7641 §4.1), and counted
    /// ([`ResourceServer::refused_observers`]). No bound by default, nor
    /// with `max` 0.
    pub fn with_max_observers(mut self, max: usize) -> Self {
        self.max_observers = std::num::NonZeroU32::new(u32::try_from(max).unwrap_or(u32::MAX));
        self
    }

    /// Registrations refused by [`ResourceServer::with_max_observers`].
    pub fn refused_observers(&self) -> u64 {
        self.observers().stats().refused_full
    }

    /// The registered observers.
    pub fn observers(&self) -> &Observers {
        static EMPTY: Observers = Observers::EMPTY;
        self.observers.as_deref().unwrap_or(&EMPTY)
    }

    /// The application changes a resource (as a PUT would, RFC 7252
    /// §5.8.3) and its observers are notified through `ep`. Returns the
    /// store's reply (2.01/2.04, or the refusal).
    pub fn update(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        path: &str,
        content_format: Option<u16>,
        value: &[u8],
    ) -> Reply {
        let reply = self.store.apply(Method::Put, path, content_format, value);
        if reply.code.is_success() {
            self.changed(now, ep, path);
        }
        reply
    }

    /// Resource `path` changed: notify its observers (RFC 7641 §4.2) with
    /// its new state and the next sequence number; if it is gone (deleted),
    /// they get 4.04 and are removed (§3.2).
    fn changed(&mut self, now: SimTime, ep: &mut Endpoint, path: &str) {
        let Some(observers) = self.observers.as_deref_mut() else {
            return;
        };
        if observers.is_empty() {
            return;
        }
        let mut ids = std::mem::take(&mut self.ids);
        observers.of_path(path, &mut ids);
        if !ids.is_empty() {
            let seq = observers.next_sequence();
            let reply = self.notification(path, seq);
            for &id in &ids {
                self.send_notification(now, ep, id, &reply);
            }
            if !reply.code.is_success() {
                let obs = self.obs();
                for &id in &ids {
                    if let Some(o) = obs.get(id) {
                        let (peer, path) = (o.peer, o.path.clone());
                        obs.deregister(peer, &path);
                    }
                }
            }
        }
        self.ids = ids;
    }

    /// Whether a registration of `peer` on `path` is over the bound: the
    /// list is full and it would not just update an entry.
    fn observer_refused(&self, peer: SockAddr, path: &str) -> bool {
        let Some(max) = self.max_observers else {
            return false;
        };
        let obs = self.observers();
        obs.len() >= max.get() as usize
            && !obs.iter().any(|(_, o)| o.peer == peer && &*o.path == path)
    }

    /// The notification carrying `path`'s current state with `seq`.
    fn notification(&mut self, path: &str, seq: u32) -> Reply {
        let mut reply = self.store.apply(Method::Get, path, None, &[]);
        if reply.code.is_success() {
            reply.observe = Some(seq);
            let age = self.observe.max_age;
            reply.max_age = (age != 60).then_some(age);
            self.add_etag(path, &mut reply);
        }
        reply
    }

    /// With validators on, the ETag of `path`'s representation on a 2.05
    /// `reply`.
    fn add_etag(&self, path: &str, reply: &mut Reply) {
        if !self.validators || reply.code != Code::CONTENT {
            return;
        }
        if let Some(r) = self.store.get(path) {
            reply.etag.clear();
            reply.etag.extend_from_slice(r.etag().as_slice());
        }
    }

    /// With validators on, the 2.05 answer to GET request `id` of `path`
    /// gets its ETag and Max-Age, or becomes 2.03 Valid (ETag, Max-Age, no
    /// payload) when the request offered that ETag (§5.10.6.2).
    fn validate(&self, ep: &Endpoint, id: IncomingId, path: &str, reply: &mut Reply) {
        if !self.validators || reply.code != Code::CONTENT || !reply.block.is_empty() {
            return;
        }
        let Some(r) = self.store.get(path) else {
            return;
        };
        let etag = r.etag();
        let age = self.observe.max_age;
        reply.max_age = (age != 60).then_some(age);
        reply.etag.clear();
        reply.etag.extend_from_slice(etag.as_slice());
        let offered = ep.request_message(id).is_some_and(|m| {
            m.options()
                .any(|o| o.number == OptionNumber::ETAG.0 && o.value == etag.as_slice())
        });
        if offered {
            reply.code = Code::VALID;
            reply.payload.clear();
            reply.content_format = None;
        }
    }

    /// Send `reply` to observer `id` ([`Observers::notify`]).
    fn send_notification(&mut self, now: SimTime, ep: &mut Endpoint, id: u64, reply: &Reply) {
        self.obs().notify(now, ep, id, reply);
    }

    /// The observers, allocated on first use.
    fn obs(&mut self) -> &mut Observers {
        let config = self.observe;
        self.observers
            .get_or_insert_with(|| Box::new(Observers::new(config)))
    }

    /// The resources.
    pub fn resources(&self) -> &ResourceStore {
        &self.store
    }

    /// The resources, e.g. to seed values.
    pub fn resources_mut(&mut self) -> &mut ResourceStore {
        &mut self.store
    }

    /// The reply to one request: [`ResourceStore::apply`] (§5.8).
    pub fn serve(
        &mut self,
        method: Method,
        path: &str,
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Reply {
        self.store.apply(method, path, content_format, payload)
    }

    /// Handle one endpoint event: a `RequestReceived` is served and
    /// answered through `ep`, and the fate of a notification updates its
    /// observer (returns true); other events are not the server's (false).
    pub fn handle_event(&mut self, now: SimTime, ep: &mut Endpoint, ev: &Event) -> bool {
        self.serve_event(now, ep, ev) != Served::NotARequest
    }

    /// [`ResourceServer::handle_event`], saying what happened (block-wise:
    /// whether a Block1 body is complete; Observe: a notification's fate).
    pub fn serve_event(&mut self, now: SimTime, ep: &mut Endpoint, ev: &Event) -> Served {
        let (id, method, path, content_format, payload, confirmable, from, token) = match ev {
            Event::RequestReceived {
                id,
                method,
                path,
                content_format,
                payload,
                confirmable,
                from,
                token,
            } => (
                id,
                method,
                path,
                content_format,
                payload,
                confirmable,
                from,
                token,
            ),
            Event::ResponseAcked { .. }
            | Event::ResponseGaveUp { .. }
            | Event::ResponseReset { .. }
            | Event::ResponseExpired { .. } => {
                if let Some(o) = self.observers.as_deref_mut() {
                    o.on_fate(now, ev);
                }
                return Served::Notification;
            }
            _ => return Served::NotARequest,
        };
        let block = match self.block_szx {
            Some(_) => ep
                .request_message(*id)
                .map(|m| BlockOptions::of(&m))
                .unwrap_or_default(),
            None => BlockOptions::NONE,
        };
        // RFC 6690 §4.1: `/.well-known/core` filtered by the Uri-Query
        let filter =
            (*method == Method::Get && path == WELL_KNOWN_CORE && self.store.get(path).is_none())
                .then(|| {
                    ep.request_message(*id)
                        .map(|m| {
                            Filter::from_queries(
                                m.options()
                                    .filter(|o| o.number == OptionNumber::URI_QUERY.0)
                                    .filter_map(|o| std::str::from_utf8(o.value).ok()),
                            )
                        })
                        .unwrap_or_default()
                });
        let multicast = ep.is_multicast(*id);
        let (served, mut reply) = if block.is_empty() {
            let reply = match &filter {
                Some(f) => self.store.discovery(f),
                None => self.serve(*method, path, *content_format, payload),
            };
            // a plain GET of a large representation is answered in blocks
            match (self.block_szx, *method) {
                (Some(szx), Method::Get)
                    if reply.code == Code::CONTENT && reply.payload.len() > size_of_szx(szx) =>
                {
                    self.bs().stats.block2_sent += 1;
                    (Served::Answered, slice_reply(reply, 0, szx, true))
                }
                _ => (Served::Answered, reply),
            }
        } else {
            let life = ep.config().exchange_lifetime();
            let req = BlockRequest {
                now,
                life,
                from: *from,
                method: *method,
                path,
                content_format: *content_format,
                payload,
                block: &block,
                filter: filter.as_ref(),
            };
            self.serve_blockwise(&req)
        };
        if *method == Method::Get {
            self.validate(ep, *id, path, &mut reply);
        }
        if multicast {
            let changed = *method != Method::Get
                && reply.code.is_success()
                && matches!(served, Served::Answered | Served::BodyComplete);
            let r = self.answer_multicast(now, ep, *id, reply, filter.is_some(), served);
            if changed {
                self.changed(now, ep, path);
            }
            return r;
        }
        if *method == Method::Get && reply.code.is_success() {
            // RFC 7641 §2: Observe 0 registers, 1 deregisters
            let observe = ep
                .request_message(*id)
                .and_then(|m| super::endpoint::observe_value(&m));
            match observe {
                Some(0) if self.observer_refused(*from, path) => self.obs().refuse(),
                Some(0) => {
                    let obs = self.obs();
                    obs.register(now, *from, *token, path, *confirmable);
                    reply.observe = Some(obs.sequence());
                    let age = self.observe.max_age;
                    reply.max_age = (age != 60).then_some(age);
                }
                Some(1) => {
                    if let Some(o) = self.observers.as_deref_mut() {
                        o.deregister(*from, path);
                    }
                }
                _ => {}
            }
        }
        // a resource changed: a PUT/POST/DELETE applied (a Block1 body only
        // once complete)
        let changed = *method != Method::Get
            && reply.code.is_success()
            && matches!(served, Served::Answered | Served::BodyComplete);
        match self.separate_response_delay {
            Some(d) if *confirmable => {
                // the request is pending, so neither call can fail
                let _ = ep.defer(*id);
                self.deferred.push_back((now + d, *id, reply));
            }
            _ => {
                let _ = ep.respond(*id, &reply);
                self.recycle(reply);
            }
        }
        // the answer leaves first, then the notifications of the change
        if changed {
            self.changed(now, ep, path);
        }
        served
    }

    /// A request that arrived via multicast (RFC 7252 §8.2): nothing useful
    /// to say — an error, or a discovery listing with no matching link —
    /// and the server stays silent (§8.2.1, RFC 6690 §4.1); otherwise the
    /// answer waits a leisure delay. (Multicast requests are NON: no
    /// Observe registration, no separate response.)
    fn answer_multicast(
        &mut self,
        now: SimTime,
        ep: &mut Endpoint,
        id: IncomingId,
        reply: Reply,
        discovery: bool,
        served: Served,
    ) -> Served {
        let useless = !reply.code.is_success() || (discovery && reply.payload.is_empty());
        let Some(l) = self.leisure.as_deref_mut() else {
            if useless {
                let _ = ep.ignore(id);
            } else {
                let _ = ep.respond(id, &reply);
            }
            return served;
        };
        if useless {
            l.stats.silent += 1;
            let _ = ep.ignore(id);
            return served;
        }
        let delay = l.rng.below(l.window.0.saturating_add(1));
        l.seq += 1;
        l.due.insert((now + SimDuration(delay), l.seq), (id, reply));
        served
    }

    /// Serve block-wise (RFC 7959): Block2 GETs and Block1 PUT/POSTs.
    pub fn with_block_szx(mut self, szx: Option<u8>) -> Self {
        self.block_szx = szx.map(|s| s.min(MAX_SZX));
        self.block = self.block_szx.map(|_| Box::default());
        self
    }

    /// The block size exponent served, if block-wise is on.
    pub fn block_szx(&self) -> Option<u8> {
        self.block_szx
    }

    /// Tell `ep` that this server handles Block1 (27) and Block2 (23), so
    /// requests carrying them reach it instead of a 4.02 (RFC 7252 §5.4.1);
    /// nothing when block-wise is off.
    pub fn register_options(&self, ep: &mut Endpoint) {
        if self.block_szx.is_some() {
            ep.recognise_option(OptionNumber::BLOCK2.0);
            ep.recognise_option(OptionNumber::BLOCK1.0);
        }
    }

    /// Block-wise counters.
    pub fn block_stats(&self) -> BlockServerStats {
        self.block.as_ref().map(|b| b.stats).unwrap_or_default()
    }

    /// Block1 bodies being received.
    pub fn assemblies(&self) -> usize {
        self.block.as_ref().map_or(0, |b| b.assemblies.len())
    }

    fn bs(&mut self) -> &mut BlockState {
        self.block.get_or_insert_with(Box::default)
    }

    fn take_scratch(&mut self) -> Reply {
        let mut r = self
            .bs()
            .scratch
            .take()
            .unwrap_or_else(|| Reply::bare(Code::CONTENT));
        r.payload.clear();
        r.content_format = None;
        r.block = BlockOptions::NONE;
        r
    }

    fn recycle(&mut self, reply: Reply) {
        if let Some(b) = self.block.as_mut() {
            if b.scratch.is_none() {
                b.scratch = Some(reply);
            }
        }
    }

    fn serve_blockwise(&mut self, q: &BlockRequest<'_>) -> (Served, Reply) {
        let szx = self.block_szx.unwrap_or(MAX_SZX);
        let mut out = self.take_scratch();
        if q.block.malformed {
            // an over-long Size1/Size2 (elective): ignored (RFC 7252 §5.4.1)
            self.bs().stats.malformed += 1;
        }
        match q.method {
            Method::Get => {
                let b2 = match q.block.block2() {
                    Some(Err(_)) => return self.refuse(out, Code::BAD_REQUEST),
                    Some(Ok(v)) => Some(v),
                    None => None,
                };
                let (value, cf) = match self.store.get(q.path) {
                    Some(r) => (&r.value[..], r.content_format),
                    None => {
                        // 4.04, or discovery: sliced from the owned listing
                        let r = match q.filter {
                            Some(f) => self.store.discovery(f),
                            None => self.store.apply(Method::Get, q.path, None, b""),
                        };
                        if r.code != Code::CONTENT {
                            self.recycle(out);
                            return (Served::Answered, r);
                        }
                        return self.slice_owned(out, &r.payload, r.content_format, b2, szx, q);
                    }
                };
                let filled = fill_block2(&mut out, value, cf, b2, szx, q.block.size2.is_some());
                self.block2_done(out, filled)
            }
            Method::Put | Method::Post => match q.block.block1() {
                None => {
                    self.recycle(out);
                    let r = self.serve(q.method, q.path, q.content_format, q.payload);
                    (Served::Answered, r)
                }
                Some(Err(_)) => self.refuse(out, Code::BAD_REQUEST),
                Some(Ok(v)) => self.block1(out, v, szx, q),
            },
            Method::Delete => {
                self.recycle(out);
                let r = self.serve(q.method, q.path, q.content_format, q.payload);
                (Served::Answered, r)
            }
        }
    }

    /// Block2 of a representation the store computed (discovery).
    fn slice_owned(
        &mut self,
        mut out: Reply,
        whole: &[u8],
        cf: Option<u16>,
        b2: Option<BlockValue>,
        szx: u8,
        q: &BlockRequest<'_>,
    ) -> (Served, Reply) {
        let filled = fill_block2(&mut out, whole, cf, b2, szx, q.block.size2.is_some());
        self.block2_done(out, filled)
    }

    /// The answer [`fill_block2`] built: a slice is counted, a block past
    /// the end refused (RFC 7959 §2.4: 4.02).
    fn block2_done(&mut self, out: Reply, filled: Option<bool>) -> (Served, Reply) {
        match filled {
            None => self.refuse(out, Code::BAD_OPTION),
            Some(sliced) => {
                if sliced {
                    self.bs().stats.block2_sent += 1;
                }
                (Served::Answered, out)
            }
        }
    }

    fn refuse(&mut self, mut out: Reply, code: Code) -> (Served, Reply) {
        match code {
            Code::REQUEST_ENTITY_INCOMPLETE => self.bs().stats.incomplete += 1,
            Code::REQUEST_ENTITY_TOO_LARGE => {
                self.bs().stats.too_large += 1;
                // §2.9.3 / §4: Size1 says how large a body may be
                out.block.size1 = Some(self.store.max_value.min(u32::MAX as usize) as u32);
            }
            _ => self.bs().stats.malformed += 1,
        }
        out.code = code;
        out.payload.clear();
        out.content_format = None;
        (Served::BlockRefused, out)
    }

    /// One Block1 block (RFC 7959 §2.5).
    fn block1(
        &mut self,
        out: Reply,
        v: BlockValue,
        szx: u8,
        q: &BlockRequest<'_>,
    ) -> (Served, Reply) {
        let max = self.store.max_value;
        // stale bodies (their client gave up long ago) are dropped
        let (now, life) = (q.now, q.life);
        let bs = self.bs();
        bs.assemblies.retain(|a| a.touched + life > now);
        let at = bs
            .assemblies
            .iter()
            .position(|a| a.peer == q.from && a.path == q.path);
        let drop_at = |s: &mut Self, at: Option<usize>| {
            if let Some(i) = at {
                s.bs().assemblies.swap_remove(i);
            }
        };
        if q.block.size1.is_some_and(|s| s as usize > max) {
            drop_at(self, at);
            return self.refuse(out, Code::REQUEST_ENTITY_TOO_LARGE);
        }
        // §2.3: a block with more to follow carries exactly its size
        if v.more && q.payload.len() != v.size() {
            drop_at(self, at);
            return self.refuse(out, Code::BAD_REQUEST);
        }
        let offset = v.offset();
        let i = match at {
            _ if offset == 0 => {
                // a (new) body starts
                let i = at.unwrap_or_else(|| {
                    self.bs().assemblies.push(Assembly {
                        peer: q.from,
                        path: q.path.to_owned(),
                        content_format: None,
                        body: Vec::new(),
                        touched: now,
                    });
                    self.bs().assemblies.len() - 1
                });
                let a = &mut self.bs().assemblies[i];
                a.body.clear();
                a.content_format = q.content_format;
                i
            }
            // a block after the one we expect, or with no start: §2.9.2
            None => return self.refuse(out, Code::REQUEST_ENTITY_INCOMPLETE),
            Some(i) if offset > self.bs().assemblies[i].body.len() => {
                self.bs().assemblies.swap_remove(i);
                return self.refuse(out, Code::REQUEST_ENTITY_INCOMPLETE);
            }
            // an earlier block again (the client restarted it): overwrite
            Some(i) => {
                self.bs().assemblies[i].body.truncate(offset);
                i
            }
        };
        if self.bs().assemblies[i].body.len() + q.payload.len() > max {
            self.bs().assemblies.swap_remove(i);
            return self.refuse(out, Code::REQUEST_ENTITY_TOO_LARGE);
        }
        self.bs().stats.block1_received += 1;
        let a = &mut self.bs().assemblies[i];
        a.body.extend_from_slice(q.payload);
        a.touched = now;
        let mut out = out;
        if v.more {
            // §2.5: 2.31 Continue acknowledges the block; a smaller SZX asks
            // the client for smaller blocks (late negotiation)
            let eff = v.szx.min(szx);
            out.code = Code::CONTINUE;
            out.block.block1 = Some(
                BlockValue {
                    num: (offset / size_of_szx(eff)) as u32,
                    more: true,
                    szx: eff,
                }
                .to_uint(),
            );
            return (Served::BlockContinue, out);
        }
        let a = self.bs().assemblies.swap_remove(i);
        let r = self
            .store
            .apply(q.method, q.path, a.content_format, &a.body);
        out.code = r.code;
        out.block.block1 = Some(BlockValue { more: false, ..v }.to_uint());
        if r.code.class() == 2 {
            self.bs().stats.bodies_completed += 1;
            (Served::BodyComplete, out)
        } else {
            (Served::BlockRefused, out)
        }
    }

    /// When the next deferred answer, multicast answer or paced
    /// notification is due.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let d = self.deferred.front().map(|d| d.0);
        let m = self
            .leisure
            .as_ref()
            .and_then(|l| l.due.keys().next().map(|k| k.0));
        let a = match (d, m) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (a, self.observers.as_ref().and_then(|o| o.poll_timeout())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Send the deferred answers due at `now` through `ep` (a request that
    /// expired meanwhile is skipped), then the paced NON notifications due
    /// (each with its resource's current state).
    pub fn handle_timeout(&mut self, now: SimTime, ep: &mut Endpoint) {
        while self.deferred.front().is_some_and(|d| d.0 <= now) {
            if let Some((_, id, reply)) = self.deferred.pop_front() {
                let _ = ep.respond(id, &reply);
            }
        }
        if let Some(l) = self.leisure.as_deref_mut() {
            while l.due.first_key_value().is_some_and(|(k, _)| k.0 <= now) {
                if let Some((_, (id, reply))) = l.due.pop_first() {
                    // a NON response (§8.2: unicast, from this server)
                    if ep.respond(id, &reply).is_ok() {
                        l.stats.answered += 1;
                    }
                }
            }
        }
        while let Some(id) = self.observers.as_deref_mut().and_then(|o| o.due(now)) {
            let obs = self.obs();
            let Some(path) = obs.get(id).map(|o| o.path.clone()) else {
                continue;
            };
            let seq = obs.sequence();
            let reply = self.notification(&path, seq);
            self.send_notification(now, ep, id, &reply);
        }
    }
}

/// A block-wise request as the server reads it.
struct BlockRequest<'a> {
    now: SimTime,
    life: SimDuration,
    from: SockAddr,
    method: Method,
    path: &'a str,
    content_format: Option<u16>,
    payload: &'a [u8],
    block: &'a BlockOptions,
    /// The discovery filter of a GET of `/.well-known/core`.
    filter: Option<&'a Filter>,
}

/// Fill `out` as the 2.05 answer to a GET of `whole` (Content-Format `cf`):
/// whole when it fits one block of `szx` and no Block2 was asked for,
/// else the asked block (`b2`, at the smaller of its and our SZX) with
/// Block2, and Size2 on block 0 or when asked. `Some(sliced)`, or `None`
/// for a block past the end.
fn fill_block2(
    out: &mut Reply,
    whole: &[u8],
    cf: Option<u16>,
    b2: Option<BlockValue>,
    szx: u8,
    size2_asked: bool,
) -> Option<bool> {
    out.code = Code::CONTENT;
    out.content_format = cf;
    out.payload.clear();
    if b2.is_none() && whole.len() <= size_of_szx(szx) {
        out.payload.extend_from_slice(whole);
        return Some(false);
    }
    let eff = b2.map_or(szx, |v| v.szx.min(szx));
    let num = (b2.map_or(0, |v| v.offset()) / size_of_szx(eff)) as u32;
    let (slice, more) = block_of(whole, num, eff)?;
    out.payload.extend_from_slice(slice);
    out.block.block2 = Some(
        BlockValue {
            num,
            more,
            szx: eff,
        }
        .to_uint(),
    );
    if num == 0 || size2_asked {
        out.block.size2 = Some(whole.len() as u32);
    }
    Some(true)
}

/// Block `num` (of 2^(szx+4) bytes) of a 2.05 `reply`'s payload, with
/// Block2 and (`size2`) Size2.
fn slice_reply(mut reply: Reply, num: u32, szx: u8, size2: bool) -> Reply {
    let len = reply.payload.len();
    let start = (num as usize).saturating_mul(size_of_szx(szx)).min(len);
    let end = (start + size_of_szx(szx)).min(len);
    reply.payload.truncate(end);
    reply.payload.drain(..start);
    reply.block.block2 = Some(
        BlockValue {
            num,
            more: end < len,
            szx,
        }
        .to_uint(),
    );
    if size2 {
        reply.block.size2 = Some(len as u32);
    }
    reply
}

/// Encode a response message (§5.2): header, the reply's options in
/// number order, payload.
pub(crate) fn encode_response(
    out: &mut Vec<u8>,
    ty: MessageType,
    mid: u16,
    token: Token,
    reply: &Reply,
) {
    write_header(out, ty, reply.code, mid, &token);
    let mut w = OptionWriter::new();
    // every value is ≤ 8 bytes, so no push can exceed a length limit
    if !reply.etag.is_empty() {
        let _ = w.push(
            out,
            OptionNumber::ETAG.0,
            &reply.etag[..reply.etag.len().min(8)],
        );
    }
    let uints = [
        (OptionNumber::OBSERVE, reply.observe.map(|v| v & 0xff_ffff)),
        (
            OptionNumber::CONTENT_FORMAT,
            reply.content_format.map(u32::from),
        ),
        (OptionNumber::MAX_AGE, reply.max_age),
    ];
    for (number, v) in uints {
        if let Some(v) = v {
            let (b, n) = encode_uint(u64::from(v));
            let _ = w.push(out, number.0, &b[8 - n..]);
        }
    }
    // uints of ≤ 4 bytes, numbers above Content-Format: cannot fail
    let _ = reply.block.write(out, &mut w);
    write_payload(out, &reply.payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_cycle() {
        let mut s = ResourceStore::new();
        assert_eq!(s.apply(Method::Get, "a/b", None, b"").code, Code::NOT_FOUND);
        assert_eq!(
            s.apply(Method::Put, "a/b", Some(0), b"21.5").code,
            Code::CREATED
        );
        assert_eq!(
            s.apply(Method::Post, "a/b", Some(0), b"22.0").code,
            Code::CHANGED
        );
        let wk = s.apply(Method::Get, WELL_KNOWN_CORE, None, b"");
        assert_eq!(wk.code, Code::CONTENT);
        assert_eq!(wk.content_format, Some(LINK_FORMAT));
        assert_eq!(wk.payload, b"</a/b>;ct=0");
        let r = s.apply(Method::Get, "a/b", None, b"");
        assert_eq!(
            (r.code, r.content_format, r.payload.as_slice()),
            (Code::CONTENT, Some(0), &b"22.0"[..])
        );
        assert_eq!(
            s.apply(Method::Delete, "a/b", None, b"").code,
            Code::DELETED
        );
        assert!(s.is_empty());
    }
}
