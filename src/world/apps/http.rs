//! `protocol = "http"` flows (docs/protocols.md "HTTP"): the HTTP/1.1
//! baseline. Every reading is one `POST /<topic>` per intended receiver
//! (`Host: <receiver>`, `Content-Type: application/octet-stream`, the
//! reading as a `Content-Length` body); every receiver runs a server on
//! `[protocols.http] port` that hands the body to its application and
//! answers `204 No Content`.
//!
//! With `persistent = true` (the default) a publisher keeps one connection
//! per receiver and sends one request at a time, the next after the
//! previous one's response (no pipelining, as common clients do); readings
//! published meanwhile wait in order, and that wait counts in latency. A
//! request whose connection fails before its response is not sent again
//! (POST is not idempotent, RFC 9110 §9.2.2): a reading the server took is
//! delivered, one it did not is lost; readings still waiting go on a new
//! connection. With `persistent = false` every reading opens its own
//! connection and asks `Connection: close`; the server closes after its
//! response.
//!
//! A request the server cannot parse (malformed, chunked, too long) gets
//! the matching 4xx/5xx with `Connection: close` and the connection
//! closes (RFC 9112 §2.2); a client that cannot parse a response aborts
//! the connection.

use super::tags::Tags;
use super::{Ctx, Message, Plugin};
use crate::proto::http::{ClientConn, ServerConn};
use crate::scenario::model::{Protocol, Scenario};
use crate::world::host::{SockId, SockOpts, StreamApp, StreamEvent};
use std::collections::{BTreeMap, VecDeque};

/// What one of the plug-in's sockets is.
#[derive(Debug)]
enum Conn {
    /// A publisher's connection to one receiver: (flow, publisher node,
    /// receiver node) and its HTTP state.
    Client {
        key: (u32, u32, u32),
        http: ClientConn,
    },
    /// A connection a server accepted.
    Server(ServerConn),
}

#[derive(Debug, Default)]
struct HttpFlows {
    /// Socket tag → what it is.
    conns: Tags<Conn>,
    /// (flow, publisher node, receiver node) → its persistent connection
    /// (socket, tag).
    clients: BTreeMap<(u32, u32, u32), (SockId, u32)>,
    /// Scratch buffer for encoding.
    buf: Vec<u8>,
}

pub(super) fn new(_: &Scenario) -> Box<dyn Plugin> {
    Box::<HttpFlows>::default()
}

/// Plain TCP, or TLS for HTTPS (`[protocols.http] tls`).
fn opts(sc: &Scenario) -> SockOpts {
    SockOpts {
        payload_only: false,
        want_writable: false,
        security: if sc.protocols.http.tls {
            crate::world::host::Security::Tls
        } else {
            crate::world::host::Security::None
        },
    }
}

impl HttpFlows {
    /// A new client connection for `key` holding `waiting`.
    fn open(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        key: (u32, u32, u32),
        waiting: VecDeque<Box<[u8]>>,
    ) -> Option<(SockId, u32)> {
        let sc = ctx.scenario();
        let port = sc.protocols.http.port;
        let close = !sc.protocols.http.persistent;
        let mut http = ClientConn::new(close);
        for b in waiting {
            http.push(b);
        }
        let tag = self.conns.add(Conn::Client { key, http });
        let (flow, node, r) = key;
        let o = opts(sc);
        match ctx.tcp_connect(node as usize, (r as usize, port), flow, tag, o) {
            Some(s) => {
                if !close {
                    self.clients.insert(key, (s, tag));
                }
                Some((s, tag))
            }
            None => {
                self.conns.remove(tag);
                None
            }
        }
    }

    /// Send the next waiting reading of client connection `tag` when no
    /// request is out.
    fn send_next(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32) {
        let Some(Conn::Client { key, http }) = self.conns.get_mut(tag) else {
            return;
        };
        let (flow, _, r) = *key;
        let sc = ctx.scenario();
        let topic = &sc.flows[flow as usize].topic;
        let target = format!("/{}", topic.trim_start_matches('/'));
        self.buf.clear();
        let Some(body) = http.next_request(ctx.node_name(r as usize), &target, &mut self.buf)
        else {
            return;
        };
        ctx.tcp_write(sock, &self.buf, Some(body), Some("http_request"));
        ctx.tcp_drive(sock);
    }

    /// Bytes arrived on client connection `tag`: responses.
    fn client_data(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, d: &[u8]) {
        let Some(Conn::Client { http, .. }) = self.conns.get_mut(tag) else {
            return;
        };
        match http.on_data(d) {
            Ok(r) if r.statuses.is_empty() || r.closing => {}
            Ok(_) => self.send_next(ctx, sock, tag),
            Err(_) => {
                // framing lost: the connection cannot continue
                if let Some(Conn::Client { key, mut http }) = self.conns.remove(tag) {
                    self.forget(key, sock);
                    ctx.tcp_abort(sock);
                    self.reopen(ctx, key, http.take_waiting());
                }
            }
        }
    }

    /// Bytes arrived on server connection `tag`: requests.
    fn server_data(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, d: &[u8]) {
        let node = ctx.tcp_node(sock).unwrap_or(u32::MAX);
        let Some(Conn::Server(server)) = self.conns.get_mut(tag) else {
            return;
        };
        if server.closing() {
            return;
        }
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        let close = server.on_data(d, &mut out, |m| ctx.deliver(node, &m.body));
        if !out.is_empty() {
            ctx.tcp_write(sock, &out, None, Some("http_response"));
        }
        self.buf = out;
        if close {
            ctx.tcp_close(sock);
        }
        ctx.tcp_drive(sock);
    }

    /// Drop `key`'s entry when it names `sock`.
    fn forget(&mut self, key: (u32, u32, u32), sock: SockId) {
        if self.clients.get(&key).is_some_and(|&(s, _)| s == sock) {
            self.clients.remove(&key);
        }
    }

    /// Readings still waiting when their connection ended go on a new one.
    fn reopen(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        key: (u32, u32, u32),
        waiting: VecDeque<Box<[u8]>>,
    ) {
        if waiting.is_empty() || !ctx.node_up(key.1 as usize) {
            return;
        }
        if let Some((s, t)) = self.open(ctx, key, waiting) {
            self.send_next(ctx, s, t);
        }
    }
}

impl Plugin for HttpFlows {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        let port = sc.protocols.http.port;
        let mut servers: Vec<usize> = sc
            .flows
            .iter()
            .filter(|f| f.protocol == Protocol::Http)
            .flat_map(|f| f.receivers.iter().copied())
            .collect();
        servers.sort_unstable();
        servers.dedup();
        for r in servers {
            ctx.tcp_listen(r, port, 0, opts(sc));
        }
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, msg: Message<'_>) {
        let persistent = ctx.scenario().protocols.http.persistent;
        for &r in msg.receivers {
            if r == msg.node {
                ctx.deliver(r, msg.payload);
                continue;
            }
            let key = (msg.flow as u32, msg.node, r);
            let body: Box<[u8]> = msg.payload.into();
            if persistent {
                if let Some(&(s, t)) = self.clients.get(&key) {
                    if let Some(Conn::Client { http, .. }) = self.conns.get_mut(t) {
                        http.push(body);
                    }
                    self.send_next(ctx, s, t);
                    continue;
                }
            }
            if let Some((s, t)) = self.open(ctx, key, VecDeque::from([body])) {
                self.send_next(ctx, s, t);
            }
        }
    }

    fn stream_app(&mut self) -> Option<&mut dyn StreamApp> {
        Some(self)
    }
}

impl StreamApp for HttpFlows {
    fn on_accept(&mut self, _ctx: &mut Ctx<'_, '_>, _sock: SockId, _listen_tag: u32) -> u32 {
        self.conns.add(Conn::Server(ServerConn::new()))
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_, '_>, sock: SockId, tag: u32, ev: StreamEvent<'_>) {
        match ev {
            StreamEvent::Data(d) => match self.conns.get(tag) {
                Some(Conn::Client { .. }) => self.client_data(ctx, sock, tag, d),
                Some(Conn::Server(_)) => self.server_data(ctx, sock, tag, d),
                _ => {}
            },
            StreamEvent::Ended(_) => {
                // the connection is over: its waiting readings move on
                if let Some(Conn::Client { .. }) = self.conns.get(tag) {
                    if let Some(Conn::Client { key, mut http }) = self.conns.remove(tag) {
                        self.forget(key, sock);
                        self.reopen(ctx, key, http.take_waiting());
                    }
                }
            }
            StreamEvent::Released => {
                if let Some(Conn::Client { key, .. }) = self.conns.remove(tag) {
                    self.forget(key, sock);
                }
            }
            StreamEvent::Connected | StreamEvent::PeerClosed => {}
        }
    }
}
