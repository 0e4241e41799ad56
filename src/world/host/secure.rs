//! The host's security overlays (issue 21): a [`StreamLayer`] (TLS,
//! WebSocket, or WebSocket over TLS) between a TCP socket and its
//! application. The application writes and reads plain bytes as before;
//! the host seals its writes into records or frames, feeds what TCP
//! delivers through the layer, sends the layer's handshake flights, and
//! tells the application the connection is up only once the layer is
//! ready. Every byte the layer adds is marked as overlay bytes in the
//! stream, so segments carry them in `PacketMeta::sec_bytes` and flows in
//! `bytes_security`.

use super::tcp::SockId;
use crate::sim::{EventQueue, SimTime};
use crate::transport::layer::StreamLayer;
use crate::world::{Ev, World};
use std::collections::VecDeque;

/// Which overlay a socket runs (chosen by the application at connect or
/// listen; the configuration comes from the scenario).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP.
    #[default]
    None,
    /// TLS (`[protocols.tls]`).
    Tls,
    /// WebSocket (RFC 6455) carrying the application's bytes.
    WebSocket,
    /// WebSocket over TLS.
    Wss,
}

impl Security {
    /// The `packets.csv` kind of segments that carry only overlay bytes
    /// (handshake flights, alerts, closing frames).
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Security::None => "tcp_data",
            Security::Tls | Security::Wss => "tls_handshake",
            Security::WebSocket => "websocket_upgrade",
        }
    }
}

/// An application write made before the layer was ready, sealed when it is.
#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    payload: Option<(usize, usize)>,
    kind: Option<(&'static str, u32)>,
}

/// One socket's overlay state.
pub(crate) struct Sec {
    layer: Box<dyn StreamLayer>,
    security: Security,
    /// Stream ranges of overlay bytes; first transmissions consume them in
    /// order (as `app_ranges`).
    pub(crate) ranges: VecDeque<(u64, u64)>,
    /// The application has been told the connection is up.
    told: bool,
    /// The handshake completed (its time is recorded).
    done: bool,
    /// The layer failed; nothing more goes through it.
    failed: bool,
    pending: Vec<Pending>,
    /// The TLS handshake resumes a session.
    resumed: bool,
    /// A client's (node, server) key: once its handshake completes the
    /// node holds a session it may resume.
    session: Option<SessionKey>,
}

/// (client node, server address, server port) of a TLS session.
pub(crate) type SessionKey = (u32, u128, u16);

fn session_key(node: usize, (addr, port): (crate::net::addr::Addr, u16)) -> SessionKey {
    (node as u32, u128::from(addr.to_bits()), port)
}

impl std::fmt::Debug for Sec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sec")
            .field("security", &self.security)
            .field("told", &self.told)
            .field("done", &self.done)
            .field("failed", &self.failed)
            .field("resumed", &self.resumed)
            .finish()
    }
}

impl Sec {
    /// Whether the TLS handshake resumes a session (a server follows its
    /// client's choice).
    pub(crate) fn resumed(&self) -> bool {
        self.resumed
    }

    pub(crate) fn new(layer: Box<dyn StreamLayer>, security: Security) -> Box<Sec> {
        Box::new(Sec {
            layer,
            security,
            ranges: VecDeque::new(),
            told: false,
            done: false,
            failed: false,
            pending: Vec::new(),
            resumed: false,
            session: None,
        })
    }
}

/// Scratch buffers of the overlays (kept between calls: no allocation per
/// record in steady state).
#[derive(Debug, Default)]
pub(crate) struct SecScratch {
    out: Vec<u8>,
    app: Vec<u8>,
    spans: Vec<(usize, usize)>,
    payload: Vec<(usize, usize)>,
    overlay: Vec<(usize, usize)>,
}

/// Map `payload` (a range of the sealed write) through `spans` (where the
/// write's bytes sit in `out_len` bytes of output) into output ranges, and
/// the complement of `spans` into `overlay` ranges.
fn map_ranges(
    spans: &[(usize, usize)],
    payload: Option<(usize, usize)>,
    out_len: usize,
    app: &mut Vec<(usize, usize)>,
    overlay: &mut Vec<(usize, usize)>,
) {
    app.clear();
    overlay.clear();
    crate::transport::layer::compose_spans(payload.as_slice(), spans, app);
    let mut prev = 0; // end of the previous span in the output
    for &(s, e) in spans {
        if s > prev {
            overlay.push((prev, s));
        }
        prev = e;
    }
    if out_len > prev {
        overlay.push((prev, out_len));
    }
}

impl World<'_> {
    /// The overlay of a new socket on `node` whose peer is `peer` (the
    /// server's address and port for a client; the client's for a server);
    /// `salt` (the client's port) seeds its random-looking bytes;
    /// `resumed`: the TLS handshake resumes a session (the client has one
    /// with this server; a server follows its client).
    pub(crate) fn new_sec(
        &self,
        security: Security,
        (client, node, salt): (bool, usize, u16),
        peer: (crate::net::addr::Addr, u16),
        resumed: bool,
    ) -> Option<Box<Sec>> {
        let seed = crate::sim::rng::derive_seed(
            self.sc.seed,
            ((node as u64) << 17) | (u64::from(salt) << 1) | u64::from(client),
        );
        let layer = self.make_layer(security, client, seed, peer, resumed)?;
        let mut sec = Sec::new(layer, security);
        sec.resumed = resumed;
        if client {
            sec.session = Some(session_key(node, peer));
        }
        Some(sec)
    }

    /// Whether `node` holds a TLS session with the server at `peer` that
    /// the scenario lets it resume.
    pub(crate) fn tls_resumes(&self, node: usize, peer: (crate::net::addr::Addr, u16)) -> bool {
        use crate::transport::tls::Resumption;
        self.sc.protocols.tls.resumption != Resumption::None
            && self.tcp.tls_sessions.contains(&session_key(node, peer))
    }

    fn make_layer(
        &self,
        security: Security,
        client: bool,
        seed: u64,
        (addr, port): (crate::net::addr::Addr, u16),
        resumed: bool,
    ) -> Option<Box<dyn StreamLayer>> {
        use crate::transport::layer::Stack;
        use crate::transport::tls::{Resumption, TlsEndpoint};
        use crate::transport::websocket::{WsConfig, WsEndpoint};
        let ws = |secure: bool| {
            let a = addr.to_string();
            let a = if a.contains(':') { format!("[{a}]") } else { a };
            let default = if secure { 443 } else { 80 };
            let cfg = WsConfig {
                host: if port == default {
                    a
                } else {
                    format!("{a}:{port}")
                },
                secure,
                ..WsConfig::default()
            };
            if client {
                WsEndpoint::client(cfg, seed)
            } else {
                WsEndpoint::server(cfg)
            }
        };
        // the scenario's configuration was validated when it loaded, and a
        // full handshake (no resumption) is valid whenever it is
        let tls = || {
            let mut cfg = self.sc.protocols.tls.clone();
            cfg.seed = seed;
            if !resumed {
                cfg.resumption = Resumption::None;
            }
            if client {
                TlsEndpoint::client(cfg)
            } else {
                TlsEndpoint::server(cfg)
            }
            .ok()
        };
        Some(match security {
            Security::None => return None,
            Security::WebSocket => Box::new(ws(false)),
            Security::Tls => Box::new(tls()?),
            Security::Wss => Box::new(Stack::new(ws(true), tls()?)),
        })
    }

    /// TCP came up on a socket with an overlay: the client's first flight.
    pub(crate) fn sec_connected(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, id: SockId) {
        let mut sc = std::mem::take(&mut self.tcp.sec_scratch);
        sc.out.clear();
        let security = match self.tcp.sock_mut(id).and_then(|s| s.sec.as_mut()) {
            Some(sec) => {
                sec.layer.connected(&mut sc.out);
                sec.security
            }
            None => return self.tcp.sec_scratch = sc,
        };
        self.sec_put_overlay(now, id, &sc.out, security);
        self.tcp.sec_scratch = sc;
        self.sec_progress(now, queue, id);
    }

    /// Bytes TCP delivered on a socket with an overlay: through the layer,
    /// replies out, application bytes up.
    pub(crate) fn sec_input(
        &mut self,
        now: SimTime,
        queue: &mut EventQueue<Ev>,
        id: SockId,
        data: &[u8],
    ) {
        let mut sc = std::mem::take(&mut self.tcp.sec_scratch);
        sc.out.clear();
        sc.app.clear();
        let (res, security) = match self.tcp.sock_mut(id).and_then(|s| s.sec.as_mut()) {
            Some(sec) if !sec.failed => {
                let r = sec.layer.input(data, &mut sc.out, &mut sc.app);
                if r.is_err() {
                    sec.failed = true;
                }
                (r, sec.security)
            }
            _ => return self.tcp.sec_scratch = sc,
        };
        if !sc.out.is_empty() {
            self.sec_put_overlay(now, id, &sc.out, security);
        }
        if let Err(e) = res {
            // a WebSocket close handshake ends the stream normally
            if e != crate::transport::layer::LayerError::Refused(
                crate::transport::websocket::CLOSED,
            ) {
                let counted = self.counted(now);
                self.tcp.sec_failure(id, counted);
            }
            if let Some(s) = self.tcp.sock_mut(id) {
                s.conn.close();
            }
            self.tcp.sec_scratch = sc;
            return;
        }
        let app = std::mem::take(&mut sc.app);
        self.tcp.sec_scratch = sc;
        self.sec_progress(now, queue, id);
        if !app.is_empty() {
            self.tcp_deliver(now, queue, id, &app);
        }
        if self.tcp.sec_scratch.app.capacity() < app.capacity() {
            let mut app = app;
            app.clear();
            self.tcp.sec_scratch.app = app;
        }
    }

    /// After the layer moved: tell the application the connection is up
    /// once it is ready, seal what it wrote meanwhile, and record the
    /// handshake's end.
    fn sec_progress(&mut self, now: SimTime, queue: &mut EventQueue<Ev>, id: SockId) {
        let Some(s) = self.tcp.sock_mut(id) else {
            return;
        };
        let rec = s.rec as usize;
        let Some(sec) = s.sec.as_mut() else {
            return;
        };
        if sec.layer.established() && !sec.done {
            sec.done = true;
            if let Some(k) = sec.session {
                self.tcp.tls_sessions.insert(k);
            }
            self.tcp.records[rec].secured = now.into();
        }
        let Some(sec) = self.tcp.sock_mut(id).and_then(|s| s.sec.as_mut()) else {
            return;
        };
        if sec.told || !sec.layer.ready() {
            return;
        }
        sec.told = true;
        let pending = std::mem::take(&mut sec.pending);
        self.tcp_ready(now, rec, true);
        for p in &pending {
            self.sec_write(now, id, &p.data, p.payload, p.kind);
        }
        self.tcp_notify_id(now, queue, id, super::StreamEvent::Connected);
    }

    /// An application write on a socket with an overlay: sealed now, or
    /// kept until the layer is ready.
    pub(crate) fn sec_write(
        &mut self,
        now: SimTime,
        id: SockId,
        data: &[u8],
        payload: Option<(usize, usize)>,
        kind: Option<(&'static str, u32)>,
    ) -> bool {
        let mut sc = std::mem::take(&mut self.tcp.sec_scratch);
        let Some(sec) = self.tcp.sock_mut(id).and_then(|s| s.sec.as_mut()) else {
            self.tcp.sec_scratch = sc;
            return false;
        };
        if sec.failed || !sec.layer.ready() {
            let ok = !sec.failed;
            if ok {
                sec.pending.push(Pending {
                    data: data.to_vec(),
                    payload,
                    kind,
                });
            }
            self.tcp.sec_scratch = sc;
            return ok;
        }
        sc.out.clear();
        sc.spans.clear();
        sec.layer.seal(data, &mut sc.out, &mut sc.spans);
        map_ranges(
            &sc.spans,
            payload,
            sc.out.len(),
            &mut sc.payload,
            &mut sc.overlay,
        );
        let ok = self.tcp_put(now, id, &sc.out, &sc.payload, &sc.overlay, kind);
        self.tcp.sec_scratch = sc;
        ok
    }

    /// The application closes a socket with an overlay: its closing
    /// message (close_notify, a close frame) goes before the FIN.
    pub(crate) fn sec_close(&mut self, now: SimTime, id: SockId) {
        let mut sc = std::mem::take(&mut self.tcp.sec_scratch);
        sc.out.clear();
        let security = match self.tcp.sock_mut(id).and_then(|s| s.sec.as_mut()) {
            Some(sec) if sec.told && !sec.failed => {
                sec.layer.close(&mut sc.out);
                sec.security
            }
            _ => return self.tcp.sec_scratch = sc,
        };
        if !sc.out.is_empty() {
            self.sec_put_overlay(now, id, &sc.out, security);
        }
        self.tcp.sec_scratch = sc;
    }

    /// Write bytes that are all overlay (handshake flights, alerts).
    fn sec_put_overlay(&mut self, now: SimTime, id: SockId, bytes: &[u8], security: Security) {
        let whole = [(0, bytes.len())];
        let kind = Some((security.kind(), crate::net::packet::NO_FLOW));
        self.tcp_put(now, id, bytes, &[], &whole, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::map_ranges;

    #[test]
    fn payload_maps_through_spans_and_the_rest_is_overlay() {
        // two records: 5-byte header, 10 data bytes, 16-byte tag; 5, 4, 16
        let spans = [(5, 15), (36, 40)];
        let (mut app, mut ov) = (Vec::new(), Vec::new());
        map_ranges(&spans, Some((8, 13)), 56, &mut app, &mut ov);
        assert_eq!(app, vec![(13, 15), (36, 39)]);
        assert_eq!(ov, vec![(0, 5), (15, 36), (40, 56)]);
        map_ranges(&spans, None, 56, &mut app, &mut ov);
        assert!(app.is_empty());
        let overlay: usize = ov.iter().map(|(a, b)| b - a).sum();
        assert_eq!(overlay, 56 - 14);
    }
}
