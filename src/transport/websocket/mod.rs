//! MQTT over WebSocket (issue 21): RFC 6455 framing and the HTTP/1.1
//! upgrade as a [`StreamLayer`] between TCP (or TLS, for `wss`) and MQTT.
//!
//! Read first: RFC 6455 (§1.3 and §4 the opening handshake, §5 framing,
//! §5.3 masking, §5.5 control frames, §7 closing); MQTT 3.1.1 §6 and
//! MQTT 5.0 §6 (binary frames only [MQTT-6.0.0-1], the byte stream may be
//! split across frames or several packets share one [MQTT-6.0.0-2], the
//! `mqtt` subprotocol [MQTT-6.0.0-3/4]); `docs/security.md`, "WebSocket
//! model".
//!
//! * Client: [`StreamLayer::connected`] writes the GET upgrade request as
//!   paho-mqtt 2.x's Python client sends it (same header names, spelling
//!   and order: Host, Upgrade, Connection, Origin, Sec-WebSocket-Key,
//!   Sec-Websocket-Version, Sec-Websocket-Protocol), then any
//!   [`WsConfig::request_headers`]. The key is 16 bytes from a seeded
//!   stream, so a run is reproducible. The `101` answer is checked: status,
//!   `Upgrade`, `Connection`, `Sec-WebSocket-Accept` and the `mqtt`
//!   subprotocol; anything else is [`LayerError::Refused`].
//! * Server: checks the request (method, path, Host, Upgrade, Connection,
//!   version 13, a 16-byte key, `mqtt` offered) and answers `101` with the
//!   minimal header set websockify and libwebsockets send (159 bytes for
//!   the `mqtt` subprotocol), or `400`/`404`/`426` and an error.
//! * Data: every [`StreamLayer::seal`] is one FIN binary frame. Client
//!   frames are masked with a fresh key from the seeded stream (header
//!   2 + 4, 4 + 4 or 10 + 4 bytes); server frames are not (2, 4 or 10).
//! * Input: an incremental parser across any split; data frames (binary,
//!   and continuations of a fragmented message) are unmasked and their
//!   payload handed up as it arrives, so the layer delivers MQTT's byte
//!   stream whatever the frame boundaries. Pings are answered with a pong
//!   carrying the same payload; pongs are ignored.
//! * Closing: a close frame from the peer is answered with a close frame
//!   echoing its status (unless this side already sent one) and ends the
//!   connection with `LayerError::Refused(CLOSED)` — the trait has no other
//!   way to tell the host the stream is over; the host treats
//!   [`CLOSED`] as a clean end, not a failure. [`StreamLayer::close`]
//!   sends status 1000.
//! * Errors: a frame this side may not accept — unmasked from a client,
//!   masked from a server (§5.1), reserved bits or opcode (§5.2), a
//!   fragmented or over-long control frame (§5.5), a continuation with no
//!   message open or a new message inside one (§5.4), a non-minimal length
//!   or a bad close code (§7.4) — gets a close frame with status 1002 in
//!   `out` and [`LayerError::Malformed`]; a text frame gets 1003 and
//!   [`LayerError::Refused`] ([MQTT-6.0.0-1]); a close reason that is not
//!   UTF-8 gets 1007. Nothing panics on any input.

pub mod digest;
pub mod frame;
pub mod handshake;

use crate::sim::rng::{stable_id, SimRng};
use crate::transport::layer::{LayerError, StreamLayer};
use frame::FrameHeader;
use handshake::Head;

/// The reason string of `LayerError::Refused` when the WebSocket closing
/// handshake ended the connection (the peer's close frame arrived): a
/// clean end, not a failure.
pub const CLOSED: &str = "websocket: closed";

/// The WebSocket overlay's settings. Defaults are what paho-mqtt's Python
/// client sends through a plain-TCP (`ws://`) listener on port 80.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// The `Host` field: the server's host, with `:port` unless the port
    /// is the scheme's default (80 for ws, 443 for wss), as paho writes
    /// it. Default `10.0.0.2`.
    pub host: String,
    /// Request path; the server accepts only this one. Default `/mqtt`
    /// (paho-mqtt's and mosquitto's).
    pub path: String,
    /// The subprotocol offered and required: `mqtt` ([MQTT-6.0.0-3/4]).
    pub subprotocol: String,
    /// Send `Origin: http(s)://<host>` as paho does. Default true.
    pub origin: bool,
    /// The connection runs over TLS (`wss`): the Origin scheme is https.
    pub secure: bool,
    /// Request header fields appended after paho's (e.g. `User-Agent`,
    /// `Authorization`). Default none, as paho.
    pub request_headers: Vec<(String, String)>,
    /// Response header fields the server appends to its `101` (e.g.
    /// `Server`, `Date`). Default none, as websockify and libwebsockets.
    pub response_headers: Vec<(String, String)>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            host: "10.0.0.2".into(),
            path: "/mqtt".into(),
            subprotocol: "mqtt".into(),
            origin: true,
            secure: false,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (client: the 101; server: the request).
    Handshake,
    /// Upgraded: frames flow.
    Open,
    /// The closing handshake finished or an error ended the connection.
    Closed,
}

/// One end of a WebSocket connection. See the module doc.
#[derive(Debug, Clone)]
pub struct WsEndpoint {
    cfg: WsConfig,
    /// Client only: the stream for the key and the masks.
    rng: Option<SimRng>,
    /// Client only: the key sent and the accept value it implies.
    key: String,
    accept: String,
    state: State,
    request_sent: bool,
    upgraded: bool,
    close_sent: bool,
    /// The handshake head received so far.
    head: Vec<u8>,
    /// Header bytes of the next frame received so far.
    hdr: Vec<u8>,
    /// The frame whose payload is being read, and how much of it was.
    cur: Option<FrameHeader>,
    pos: u64,
    /// A control frame's payload.
    ctrl: Vec<u8>,
    /// A fragmented data message is open (its first frame had FIN clear).
    in_message: bool,
}

impl WsEndpoint {
    /// The client side; `seed` names the stream of its key and masking
    /// keys (the host derives it from the run's master seed and the
    /// connection).
    pub fn client(cfg: WsConfig, seed: u64) -> Self {
        let mut rng = SimRng::from_id(seed, stable_id("transport/websocket/client"));
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        k[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
        let key = digest::base64_encode(&k);
        let accept = digest::accept_key(&key);
        WsEndpoint {
            rng: Some(rng),
            key,
            accept,
            ..Self::server(cfg)
        }
    }

    /// The server side (it never masks, so it draws nothing).
    pub fn server(cfg: WsConfig) -> Self {
        WsEndpoint {
            cfg,
            rng: None,
            key: String::new(),
            accept: String::new(),
            state: State::Handshake,
            request_sent: false,
            upgraded: false,
            close_sent: false,
            head: Vec::new(),
            hdr: Vec::new(),
            cur: None,
            pos: 0,
            ctrl: Vec::new(),
            in_message: false,
        }
    }

    fn is_client(&self) -> bool {
        self.rng.is_some()
    }

    /// The client's `Sec-WebSocket-Key` (empty at a server).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Append one frame; masked at a client. Returns where the payload
    /// went in `out`.
    fn write_frame(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8]) -> (usize, usize) {
        let mask = self.rng.as_mut().map(|r| {
            let m = r.next_u64() as u32;
            m.to_be_bytes()
        });
        frame::write_header(out, true, opcode, payload.len(), mask);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(k) = mask {
            frame::apply_mask(&mut out[start..], k, 0);
        }
        (start, out.len())
    }

    fn write_close(&mut self, out: &mut Vec<u8>, status: Option<u16>) {
        if self.close_sent || !self.upgraded {
            return;
        }
        let payload = status.map(u16::to_be_bytes);
        self.write_frame(
            out,
            frame::OP_CLOSE,
            payload.as_ref().map_or(&[], |p| &p[..]),
        );
        self.close_sent = true;
    }

    /// End the connection: a close frame with `status` (once upgraded),
    /// then `err`.
    fn fail(&mut self, out: &mut Vec<u8>, status: u16, err: LayerError) -> Result<(), LayerError> {
        self.write_close(out, Some(status));
        self.state = State::Closed;
        Err(err)
    }

    /// An HTTP error answer to a bad upgrade request (RFC 6455 §4.2.1,
    /// §4.4), then `err`.
    fn refuse_request(
        &mut self,
        out: &mut Vec<u8>,
        status: &str,
        err: LayerError,
    ) -> Result<(), LayerError> {
        let mut fields = vec![("Content-Length", "0")];
        if status.starts_with("426") {
            fields.insert(0, ("Sec-WebSocket-Version", "13"));
        }
        handshake::write_head(out, &format!("HTTP/1.1 {status}"), &fields, &[]);
        self.state = State::Closed;
        Err(err)
    }

    /// The server's check of the request and its answer.
    fn answer_request(&mut self, head: &Head, out: &mut Vec<u8>) -> Result<(), LayerError> {
        let parts: Vec<&str> = head.start.split(' ').collect();
        let [method, path, version] = parts[..] else {
            return self.refuse_request(
                out,
                "400 Bad Request",
                LayerError::Malformed("websocket: bad HTTP request line"),
            );
        };
        if method != "GET" || version != "HTTP/1.1" {
            // RFC 6455 §4.1 item 2: a GET, HTTP/1.1 or later.
            return self.refuse_request(
                out,
                "400 Bad Request",
                LayerError::Malformed("websocket: upgrade request is not GET … HTTP/1.1"),
            );
        }
        if path != self.cfg.path {
            return self.refuse_request(
                out,
                "404 Not Found",
                LayerError::Refused("websocket: unknown request path"),
            );
        }
        if head.get("Host").is_none()
            || !head.has_token("Upgrade", "websocket")
            || !head.has_token("Connection", "Upgrade")
        {
            // RFC 6455 §4.2.1 items 2–4.
            return self.refuse_request(
                out,
                "400 Bad Request",
                LayerError::Refused("websocket: request lacks Host, Upgrade or Connection"),
            );
        }
        if head.get("Sec-WebSocket-Version").as_deref() != Some("13") {
            // RFC 6455 §4.4.
            return self.refuse_request(
                out,
                "426 Upgrade Required",
                LayerError::Refused("websocket: unsupported Sec-WebSocket-Version"),
            );
        }
        let key = head.get("Sec-WebSocket-Key").unwrap_or_default();
        if digest::base64_decode(&key).is_none_or(|k| k.len() != 16) {
            // RFC 6455 §4.2.1 item 5: base64 of 16 bytes.
            return self.refuse_request(
                out,
                "400 Bad Request",
                LayerError::Malformed("websocket: Sec-WebSocket-Key is not 16 bytes in base64"),
            );
        }
        if !head.has_token("Sec-WebSocket-Protocol", &self.cfg.subprotocol) {
            // [MQTT-6.0.0-3]: the client must offer "mqtt".
            return self.refuse_request(
                out,
                "400 Bad Request",
                LayerError::Refused("websocket: client did not offer the mqtt subprotocol"),
            );
        }
        let accept = digest::accept_key(&key);
        let fields = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", &accept),
            // [MQTT-6.0.0-4]
            ("Sec-WebSocket-Protocol", &self.cfg.subprotocol),
        ];
        handshake::write_head(
            out,
            "HTTP/1.1 101 Switching Protocols",
            &fields,
            &self.cfg.response_headers,
        );
        Ok(())
    }

    /// The client's check of the server's answer (RFC 6455 §4.1, the
    /// client's requirements after sending the handshake).
    fn check_response(&mut self, head: &Head) -> Result<(), LayerError> {
        let mut parts = head.start.splitn(3, ' ');
        let (version, status) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let refused = |what| Err::<(), _>(LayerError::Refused(what));
        if !version.starts_with("HTTP/") {
            self.state = State::Closed;
            return Err(LayerError::Malformed("websocket: answer is not HTTP"));
        }
        let r = if status != "101" {
            refused("websocket: upgrade refused (status not 101)")
        } else if !head.has_token("Upgrade", "websocket")
            || !head.has_token("Connection", "Upgrade")
        {
            refused("websocket: 101 without Upgrade: websocket and Connection: Upgrade")
        } else if head.get("Sec-WebSocket-Accept").as_deref() != Some(self.accept.as_str()) {
            refused("websocket: wrong Sec-WebSocket-Accept")
        } else if head.get("Sec-WebSocket-Protocol").as_deref() != Some(&self.cfg.subprotocol) {
            // [MQTT-6.0.0-4]: the server must select "mqtt".
            refused("websocket: server did not select the mqtt subprotocol")
        } else {
            Ok(())
        };
        if r.is_err() {
            self.state = State::Closed;
        }
        r
    }

    /// Parse frames from `data`.
    fn frames(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        loop {
            if self.cur.is_none() {
                if data.is_empty() {
                    return Ok(());
                }
                let old = self.hdr.len();
                let take = (frame::MAX_HEADER_LEN - old).min(data.len());
                self.hdr.extend_from_slice(&data[..take]);
                match frame::parse_header(&self.hdr) {
                    Err(e) => {
                        return self.fail(
                            out,
                            frame::CLOSE_PROTOCOL_ERROR,
                            LayerError::Malformed(e.what()),
                        )
                    }
                    Ok(None) => {
                        data = &data[take..];
                        continue;
                    }
                    Ok(Some(h)) => {
                        data = &data[h.header_len - old..];
                        self.hdr.clear();
                        self.start_frame(h, out)?;
                    }
                }
            }
            let Some(h) = self.cur else { continue };
            let left = h.payload_len - self.pos;
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
            let (chunk, rest) = data.split_at(n);
            data = rest;
            let sink = if h.opcode & 0x08 != 0 {
                &mut self.ctrl
            } else {
                &mut *app
            };
            let start = sink.len();
            sink.extend_from_slice(chunk);
            if let Some(k) = h.mask {
                frame::apply_mask(&mut sink[start..], k, self.pos);
            }
            self.pos += n as u64;
            if self.pos == h.payload_len {
                self.cur = None;
                self.end_frame(h, out)?;
            } else {
                return Ok(());
            }
        }
    }

    /// Checks on a frame header that depend on the connection.
    fn start_frame(&mut self, h: FrameHeader, out: &mut Vec<u8>) -> Result<(), LayerError> {
        if self.is_client() && h.mask.is_some() {
            // RFC 6455 §5.1: a server must not mask.
            return self.fail(
                out,
                frame::CLOSE_PROTOCOL_ERROR,
                LayerError::Malformed("websocket: masked frame from the server"),
            );
        }
        if !self.is_client() && h.mask.is_none() {
            // RFC 6455 §5.1: a client must mask every frame.
            return self.fail(
                out,
                frame::CLOSE_PROTOCOL_ERROR,
                LayerError::Malformed("websocket: unmasked frame from the client"),
            );
        }
        match h.opcode {
            frame::OP_TEXT => {
                // [MQTT-6.0.0-1]: MQTT travels in binary frames only.
                return self.fail(
                    out,
                    frame::CLOSE_UNSUPPORTED_DATA,
                    LayerError::Refused("websocket: text frame (MQTT needs binary frames)"),
                );
            }
            frame::OP_BINARY if self.in_message => {
                // RFC 6455 §5.4: no new message inside a fragmented one.
                return self.fail(
                    out,
                    frame::CLOSE_PROTOCOL_ERROR,
                    LayerError::Malformed("websocket: new message inside a fragmented one"),
                );
            }
            frame::OP_CONTINUATION if !self.in_message => {
                return self.fail(
                    out,
                    frame::CLOSE_PROTOCOL_ERROR,
                    LayerError::Malformed("websocket: continuation frame with no message open"),
                );
            }
            frame::OP_BINARY | frame::OP_CONTINUATION => self.in_message = !h.fin,
            _ => self.ctrl.clear(),
        }
        self.cur = Some(h);
        self.pos = 0;
        Ok(())
    }

    /// A frame's payload is complete: act on control frames.
    fn end_frame(&mut self, h: FrameHeader, out: &mut Vec<u8>) -> Result<(), LayerError> {
        match h.opcode {
            frame::OP_PING => {
                // RFC 6455 §5.5.2–3: a pong with the ping's payload.
                let payload = std::mem::take(&mut self.ctrl);
                if !self.close_sent {
                    self.write_frame(out, frame::OP_PONG, &payload);
                }
                Ok(())
            }
            frame::OP_CLOSE => self.peer_close(out),
            _ => Ok(()),
        }
    }

    /// The peer's close frame (RFC 6455 §5.5.1, §7.1.5, §7.4).
    fn peer_close(&mut self, out: &mut Vec<u8>) -> Result<(), LayerError> {
        let p = std::mem::take(&mut self.ctrl);
        let status = match p.len() {
            0 => None,
            1 => {
                return self.fail(
                    out,
                    frame::CLOSE_PROTOCOL_ERROR,
                    LayerError::Malformed("websocket: one-byte close payload"),
                )
            }
            _ => Some(u16::from_be_bytes([p[0], p[1]])),
        };
        if let Some(s) = status {
            // §7.4.1–2 and the IANA registry: 1004–1006 and 1015 are never
            // sent; below 1000 and 1016–2999 are unassigned.
            if !matches!(s, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return self.fail(
                    out,
                    frame::CLOSE_PROTOCOL_ERROR,
                    LayerError::Malformed("websocket: invalid close status code"),
                );
            }
            if std::str::from_utf8(&p[2..]).is_err() {
                return self.fail(
                    out,
                    frame::CLOSE_INVALID_PAYLOAD,
                    LayerError::Malformed("websocket: close reason is not UTF-8"),
                );
            }
        }
        self.write_close(out, status);
        self.state = State::Closed;
        Err(LayerError::Refused(CLOSED))
    }
}

impl StreamLayer for WsEndpoint {
    fn connected(&mut self, out: &mut Vec<u8>) {
        if !self.is_client() || self.request_sent {
            return;
        }
        self.request_sent = true;
        let scheme = if self.cfg.secure { "https" } else { "http" };
        let origin = format!("{scheme}://{}", self.cfg.host);
        let mut fields: Vec<(&str, &str)> = vec![
            ("Host", &self.cfg.host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
        ];
        if self.cfg.origin {
            fields.push(("Origin", &origin));
        }
        // Header names spelled as paho-mqtt spells them (case does not
        // matter to a server, RFC 9110 §5.1; the bytes are paho's).
        fields.extend([
            ("Sec-WebSocket-Key", self.key.as_str()),
            ("Sec-Websocket-Version", "13"),
            ("Sec-Websocket-Protocol", &self.cfg.subprotocol),
        ]);
        handshake::write_head(
            out,
            &format!("GET {} HTTP/1.1", self.cfg.path),
            &fields,
            &self.cfg.request_headers,
        );
    }

    fn input(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        match self.state {
            State::Closed => Err(LayerError::Refused(CLOSED)),
            State::Open => self.frames(data, out, app),
            State::Handshake => {
                let seen = self.head.len();
                self.head.extend_from_slice(data);
                // Search from just before the new bytes: the blank line
                // may straddle two inputs.
                let from = seen.saturating_sub(3);
                let Some(end) = handshake::head_end(&self.head[from..]).map(|e| e + from) else {
                    if self.head.len() > handshake::MAX_HEAD {
                        self.state = State::Closed;
                        return Err(LayerError::Malformed("websocket: HTTP head too long"));
                    }
                    return Ok(());
                };
                if end > handshake::MAX_HEAD {
                    self.state = State::Closed;
                    return Err(LayerError::Malformed("websocket: HTTP head too long"));
                }
                let rest = self.head.split_off(end);
                let head = std::mem::take(&mut self.head);
                let parsed = match handshake::parse_head(&head) {
                    Ok(h) => h,
                    Err(what) => {
                        let err = LayerError::Malformed(what);
                        if self.is_client() {
                            self.state = State::Closed;
                            return Err(err);
                        }
                        return self.refuse_request(out, "400 Bad Request", err);
                    }
                };
                if self.is_client() {
                    self.check_response(&parsed)?;
                } else {
                    self.answer_request(&parsed, out)?;
                }
                self.state = State::Open;
                self.upgraded = true;
                self.frames(&rest, out, app)
            }
        }
    }

    fn ready(&self) -> bool {
        self.state == State::Open && !self.close_sent
    }

    fn established(&self) -> bool {
        self.upgraded
    }

    /// One FIN binary frame per write ([MQTT-6.0.0-1]). At a client the
    /// payload is masked (RFC 6455 §5.3), so the bytes in the span are the
    /// application's bytes XORed with the masking key: they are still the
    /// application's share of the wire for the byte split, the header and
    /// key are the layer's.
    fn seal(&mut self, data: &[u8], out: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) {
        let span = self.write_frame(out, frame::OP_BINARY, data);
        if span.0 < span.1 {
            spans.push(span);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.state == State::Open {
            self.write_close(out, Some(frame::CLOSE_NORMAL));
        }
    }
}
