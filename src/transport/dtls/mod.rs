//! DTLS 1.2 as a sans-IO datagram layer (issue 21 item 3): the security
//! overlay between UDP and CoAP (port 5684) or MQTT-SN. Read first:
//! RFC 6347 (DTLS 1.2: §4.1 record layer, §4.2 handshake, flights and
//! timer), RFC 7925 (IoT profile: PSK, TLS_PSK_WITH_AES_128_CCM_8, §11
//! timer), RFC 4279 (PSK key exchange, identity hint), RFC 5489 (ECDHE_PSK).
//!
//! One [`DtlsEndpoint`] is one side of one association. It never touches a
//! clock or a socket. After every input (`start`, `handle_datagram`,
//! `handle_timeout`, `seal`, `close`) the driver calls, in this order:
//! 1. `poll_transmit(now, buf)` until `None`, sending each datagram;
//! 2. `poll_timeout()`, and `handle_timeout(t)` once time reaches it.
//!
//! No real cryptography runs. What costs bytes and time is exact: record
//! and handshake headers, the explicit nonce and tag of the suite, the
//! flights and their retransmission. A "ciphertext" is the plaintext
//! XORed with a keystream both sides derive, followed by a keyed checksum
//! the size of the suite's tag, so the peer recovers the bytes and a
//! damaged record fails its check as a real AEAD would; Finished carries a checksum of the handshake transcript, so
//! two sides that saw different handshakes do not complete.
//!
//! Bad input never panics: records that do not parse, fail their tag,
//! replay a seen sequence number or belong to an epoch not yet readable
//! are dropped silently and counted ([`DtlsStats`]), as RFC 6347 §4.1.2.7
//! says; a fatal alert from the peer, a wrong PSK identity or a Finished
//! that does not verify ends the association with an error.

pub mod record;

use std::collections::VecDeque;

use crate::sim::rng::splitmix64;
use crate::sim::{SimDuration, SimRng, SimTime};
use crate::transport::layer::LayerError;
use record::{content, hs, Fragment, Reader, Record};

/// Cipher suites the model carries. The record overhead of each is
/// [`DtlsSuite::overhead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsSuite {
    /// TLS_PSK_WITH_AES_128_CCM_8 (0xC0A8): RFC 7925 §4.2's mandatory
    /// suite for PSK. 8-byte explicit nonce, 8-byte tag.
    #[default]
    Psk128Ccm8,
    /// TLS_PSK_WITH_AES_128_GCM_SHA256 (0x00A8, RFC 5487). 8-byte explicit
    /// nonce, 16-byte tag.
    Psk128Gcm,
    /// TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 (0xCCAC, RFC 7905):
    /// what libcoap's OpenSSL build negotiates between its own client and
    /// server (seen in a loopback capture). No explicit nonce, 16-byte
    /// tag; the key exchange adds an X25519 share to ServerKeyExchange and
    /// ClientKeyExchange.
    EcdhePskChacha20,
}

impl DtlsSuite {
    /// The IANA code point.
    pub fn code(self) -> u16 {
        match self {
            DtlsSuite::Psk128Ccm8 => 0xc0a8,
            DtlsSuite::Psk128Gcm => 0x00a8,
            DtlsSuite::EcdhePskChacha20 => 0xccac,
        }
    }
    /// Explicit nonce bytes at the start of a protected record body.
    pub fn explicit_nonce(self) -> usize {
        match self {
            DtlsSuite::Psk128Ccm8 | DtlsSuite::Psk128Gcm => 8,
            DtlsSuite::EcdhePskChacha20 => 0,
        }
    }
    /// Authentication tag bytes at the end of a protected record body.
    pub fn tag(self) -> usize {
        match self {
            DtlsSuite::Psk128Ccm8 => 8,
            DtlsSuite::Psk128Gcm | DtlsSuite::EcdhePskChacha20 => 16,
        }
    }
    /// Bytes a protected record adds to its plaintext: 13-byte header +
    /// explicit nonce + tag (29 for CCM-8, 37 for GCM, 29 for ChaCha20).
    pub fn overhead(self) -> usize {
        record::RECORD_HEADER_LEN + self.explicit_nonce() + self.tag()
    }
    fn ecdhe(self) -> bool {
        self == DtlsSuite::EcdhePskChacha20
    }
}

/// X25519 public key length (RFC 7748).
const X25519_LEN: usize = 32;
/// Named group x25519 (RFC 8422 §5.1.1).
const GROUP_X25519: u16 = 0x001d;
/// Cookie length of the HelloVerifyRequest: OpenSSL's and libcoap's 32.
const COOKIE_LEN: usize = 32;
/// Finished verify_data length (RFC 5246 §7.4.9).
const VERIFY_LEN: usize = 12;
/// Largest handshake message the endpoint reassembles; the messages of a
/// PSK handshake are far smaller, anything larger is malformed here.
const MAX_MESSAGE: usize = 1 << 14;

/// Alert descriptions (RFC 5246 §7.2, RFC 4279 §2).
mod alert {
    pub(super) const CLOSE_NOTIFY: u8 = 0;
    pub(super) const UNEXPECTED_MESSAGE: u8 = 10;
    pub(super) const HANDSHAKE_FAILURE: u8 = 40;
    pub(super) const DECRYPT_ERROR: u8 = 51;
    pub(super) const UNKNOWN_PSK_IDENTITY: u8 = 115;
}

/// How the two ends shape their hellos and last flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsProfile {
    /// An RFC 7925 client: a ClientHello offering the one configured suite
    /// (and, for ECDHE, the two extensions it needs); a ServerHello with a
    /// 32-byte session ID; no session ticket.
    #[default]
    Rfc7925,
    /// OpenSSL 3 at both ends with libcoap's settings (its OpenSSL build):
    /// the client offers OpenSSL's 48 PSK suites and SCSV, the server
    /// name ([`DtlsConfig::server_name`]), point formats, five groups, an
    /// empty session ticket, encrypt-then-MAC, extended master secret and
    /// 20 signature algorithms; the server answers with no session ID and
    /// renegotiation_info, session_ticket and extended_master_secret, and
    /// puts a NewSessionTicket (RFC 5077) before its ChangeCipherSpec.
    /// Measured against `coap-client-openssl` / `coap-server-openssl`
    /// (docs/security.md, "Calibration").
    OpenSsl,
}

/// PSK cipher suites OpenSSL 3's DTLS client offers with libcoap's `PSK`
/// cipher list, in order (capture of `coap-client-openssl` 4.3.1), before
/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV.
const OPENSSL_PSK_SUITES: [u16; 48] = [
    0x00ad, 0x00ab, 0xccae, 0xccad, 0xccac, 0xc0ab, 0xc0a7, 0xc06f, 0xc06d, 0x00a9, 0xccab, 0xc0a9,
    0xc0a5, 0xc06b, 0x00ac, 0x00aa, 0xc0aa, 0xc0a6, 0xc06e, 0xc06c, 0x00a8, 0xc0a8, 0xc0a4, 0xc06a,
    0xc038, 0xc036, 0x00b7, 0x00b3, 0x0095, 0x0091, 0xc09b, 0xc099, 0xc097, 0x00af, 0x008d, 0xc095,
    0xc037, 0xc035, 0x00b6, 0x00b2, 0x0094, 0x0090, 0xc09a, 0xc098, 0xc096, 0x00ae, 0x008c, 0xc094,
];
/// OpenSSL 3's default signature algorithms, in order.
const OPENSSL_SIGALGS: [u16; 20] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
];
/// Groups OpenSSL offers below TLS 1.3: x25519, P-256, x448, P-521, P-384.
const OPENSSL_GROUPS: [u16; 5] = [0x001d, 0x0017, 0x001e, 0x0019, 0x0018];
/// Bytes of OpenSSL's DER session in a DTLS ticket, without the PSK
/// identity: `coap-server-openssl` issued 176-byte tickets for 1- to
/// 13-byte identities, 192 for 14 to 16 bytes and 208 for 40 (a session of
/// 98 bytes plus the identity, padded).
const OPENSSL_SESSION_BASE: usize = 98;

/// What one association is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct DtlsConfig {
    /// The shape of the hellos and of the server's last flight.
    pub profile: DtlsProfile,
    /// Server name the [`DtlsProfile::OpenSsl`] client sends (RFC 6066;
    /// libcoap sends its URI's host, an address included); none if `None`.
    pub server_name: Option<String>,
    /// The one suite the client offers and the server accepts.
    pub suite: DtlsSuite,
    /// PSK identity the client sends in ClientKeyExchange and the server
    /// accepts (the key itself never reaches the wire). Default
    /// `Client_identity` (15 bytes), the identity OpenSSL's `s_client`
    /// uses and the one our libcoap capture was made with.
    pub psk_identity: Vec<u8>,
    /// PSK identity hint the server sends in ServerKeyExchange; empty
    /// means no ServerKeyExchange for the plain PSK suites (RFC 4279 §2).
    /// Default `CoAP`, libcoap's `coap-server -h` default.
    pub psk_hint: Vec<u8>,
    /// The server answers a cookie-less ClientHello with a
    /// HelloVerifyRequest (RFC 6347 §4.2.1), as libcoap and OpenSSL do.
    pub cookie: bool,
    /// First retransmission timeout of a flight: 1 s (RFC 6347 §4.2.4.1,
    /// OpenSSL); RFC 7925 §11 recommends 9 s for constrained networks.
    pub initial_timer: SimDuration,
    /// The timer doubles on each expiry up to this: 60 s (RFC 6347
    /// §4.2.4.1, OpenSSL's cap).
    pub max_timer: SimDuration,
    /// Retransmissions of one flight before the endpoint gives up, on the
    /// next expiry: 12, OpenSSL's `DTLS1_TMO_ALERT_COUNT` (it fails the
    /// handshake on the 13th timeout of a flight).
    pub max_retransmissions: u32,
    /// Largest datagram (UDP payload) a flight is packed into; a message
    /// that does not fit is fragmented (RFC 6347 §4.2.3). Default 1232:
    /// IPv6's minimum MTU 1280 less 40 (IPv6) and 8 (UDP).
    pub mtu: usize,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        DtlsConfig {
            profile: DtlsProfile::Rfc7925,
            server_name: None,
            suite: DtlsSuite::default(),
            psk_identity: b"Client_identity".to_vec(),
            psk_hint: b"CoAP".to_vec(),
            cookie: true,
            initial_timer: SimDuration::from_secs(1),
            max_timer: SimDuration::from_secs(60),
            max_retransmissions: 12,
            mtu: 1232,
        }
    }
}

impl DtlsConfig {
    /// libcoap 4.3.1's OpenSSL build at both ends, as
    /// `coap-client-openssl -u <identity> -k <key> coaps://127.0.0.1/` and
    /// `coap-server-openssl -k <key>` run it: [`DtlsProfile::OpenSsl`], the
    /// suite they negotiate (ECDHE-PSK with ChaCha20-Poly1305), the URI's
    /// host as server name; identity and hint as in `Default`.
    pub fn openssl() -> Self {
        DtlsConfig {
            profile: DtlsProfile::OpenSsl,
            server_name: Some("127.0.0.1".into()),
            suite: DtlsSuite::EcdhePskChacha20,
            ..DtlsConfig::default()
        }
    }

    /// Bytes of the session ticket an OpenSSL server issues (16-byte key
    /// name, 16-byte IV, the session encrypted with AES-CBC and padded,
    /// 32-byte HMAC).
    pub fn ticket_len(&self) -> usize {
        let session = OPENSSL_SESSION_BASE + self.psk_identity.len();
        64 + (session / 16 + 1) * 16
    }
}

/// Where an association stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsState {
    /// A client before `start`, a server before the first valid
    /// ClientHello.
    Idle,
    Handshaking,
    /// Both Finished messages exchanged (as far as this side knows).
    Established,
    /// close_notify sent or received.
    Closed,
    /// The association ended with this error (fatal alert either way, a
    /// Finished that did not verify, or no answer after the last
    /// retransmission).
    Failed(LayerError),
}

/// Counters of what the endpoint did with its input and timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtlsStats {
    /// Records (or the rest of a datagram) that did not parse.
    pub malformed: u64,
    /// Protected records whose tag did not verify.
    pub bad_tag: u64,
    /// Records whose sequence number was already seen (RFC 6347 §4.1.2.6).
    pub replayed: u64,
    /// Records of an epoch not readable now (epoch 1 before the peer's
    /// ChangeCipherSpec, application data in epoch 0, unknown epochs).
    pub wrong_epoch: u64,
    /// Handshake messages or ChangeCipherSpecs that arrived before the
    /// ones they must follow, or do not belong in the current state.
    pub out_of_order: u64,
    /// Whole-flight retransmissions on timer expiry.
    pub timer_retransmissions: u64,
    /// Whole-flight retransmissions because the peer repeated its previous
    /// flight (RFC 6347 §4.2.4).
    pub triggered_retransmissions: u64,
    /// Datagrams produced (handshake, alerts; not `seal`'s).
    pub datagrams_sent: u64,
    /// What the last malformed input was.
    pub last_malformed: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

/// A message of the last flight, kept for retransmission.
#[derive(Debug, Clone)]
enum Outgoing {
    Handshake {
        epoch: u16,
        msg_type: u8,
        seq: u16,
        body: Vec<u8>,
    },
    ChangeCipherSpec,
}

/// A handshake message being reassembled from fragments.
#[derive(Debug, Clone)]
struct Partial {
    msg_type: u8,
    seq: u16,
    body: Vec<u8>,
    have: Vec<bool>,
}

/// What the handshake waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Server: a ClientHello.
    ClientHello,
    /// Client: HelloVerifyRequest or ServerHello.
    ServerHello,
    /// Client: ServerKeyExchange or ServerHelloDone.
    ServerKeyExchangeOrDone,
    /// Client: ServerHelloDone.
    ServerHelloDone,
    /// Server: ClientKeyExchange.
    ClientKeyExchange,
    /// Either side: the peer's ChangeCipherSpec, then Finished.
    ChangeCipherSpec,
    Finished,
    /// Nothing more: established.
    Nothing,
}

/// Sliding anti-replay window over 48-bit sequence numbers (RFC 6347
/// §4.1.2.6, the 64-entry bitmap of RFC 4303 §3.4.3).
#[derive(Debug, Clone, Copy, Default)]
struct ReplayWindow {
    top: Option<u64>,
    bits: u64,
}

impl ReplayWindow {
    fn fresh(&self, seq: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if seq > top => true,
            Some(top) => {
                let back = top - seq;
                back < 64 && self.bits & (1 << back) == 0
            }
        }
    }
    fn mark(&mut self, seq: u64) {
        match self.top {
            None => {
                self.top = Some(seq);
                self.bits = 1;
            }
            Some(top) if seq > top => {
                let shift = seq - top;
                self.bits = if shift >= 64 { 0 } else { self.bits << shift };
                self.bits |= 1;
                self.top = Some(seq);
            }
            Some(top) => {
                let back = top - seq;
                if back < 64 {
                    self.bits |= 1 << back;
                }
            }
        }
    }
}

/// A keyed 64-bit mixing checksum (FNV-1a then SplitMix64's finaliser):
/// the stand-in for key derivation, tags and verify_data. Not
/// cryptography; it only has to make both sides agree and a damaged
/// record fail.
fn mix(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for p in parts {
        for &b in *p {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h = splitmix64(h ^ p.len() as u64);
    }
    h
}

/// `n` bytes expanded from `seed`, appended to `out`.
fn expand(seed: u64, n: usize, out: &mut Vec<u8>) {
    let mut s = seed;
    let mut left = n;
    while left > 0 {
        s = splitmix64(s);
        let take = left.min(8);
        out.extend_from_slice(&s.to_be_bytes()[..take]);
        left -= take;
    }
}

/// One side of one DTLS 1.2 association.
#[derive(Debug, Clone)]
pub struct DtlsEndpoint {
    cfg: DtlsConfig,
    role: Role,
    rng: SimRng,
    state: DtlsState,
    expect: Expect,
    stats: DtlsStats,
    // Record layer.
    write_epoch: u16,
    read_epoch: u16,
    write_seq: [u64; 2],
    windows: [ReplayWindow; 2],
    /// Sequence number of the record being processed.
    record_seq: u64,
    /// Epoch-1 key stand-in, once both randoms and the identity are known.
    key: Option<u64>,
    // Handshake.
    client_random: [u8; 32],
    server_random: [u8; 32],
    cookie: Vec<u8>,
    /// Server: secret of its stateless cookies.
    cookie_secret: u64,
    next_send_seq: u16,
    next_recv_seq: u16,
    transcript: u64,
    partial: Option<Partial>,
    last_flight: Vec<Outgoing>,
    // Output and timer.
    queue: VecDeque<Vec<u8>>,
    timer: Option<SimTime>,
    timeout: SimDuration,
    retransmissions: u32,
}

impl DtlsEndpoint {
    /// The client side; `seed` feeds its randoms (same seed, same bytes).
    pub fn client(cfg: DtlsConfig, seed: u64) -> Self {
        Self::new(cfg, seed, Role::Client)
    }

    /// The server side of one association.
    pub fn server(cfg: DtlsConfig, seed: u64) -> Self {
        Self::new(cfg, seed, Role::Server)
    }

    fn new(cfg: DtlsConfig, seed: u64, role: Role) -> Self {
        let mut rng = SimRng::stream(
            seed,
            match role {
                Role::Client => "dtls-client",
                Role::Server => "dtls-server",
            },
        );
        let cookie_secret = rng.next_u64();
        let timeout = cfg.initial_timer;
        DtlsEndpoint {
            cfg,
            role,
            rng,
            state: DtlsState::Idle,
            expect: match role {
                Role::Client => Expect::ServerHello,
                Role::Server => Expect::ClientHello,
            },
            stats: DtlsStats::default(),
            write_epoch: 0,
            read_epoch: 0,
            write_seq: [0; 2],
            windows: [ReplayWindow::default(); 2],
            record_seq: 0,
            key: None,
            client_random: [0; 32],
            server_random: [0; 32],
            cookie: Vec::new(),
            cookie_secret,
            next_send_seq: 0,
            next_recv_seq: 0,
            transcript: 0,
            partial: None,
            last_flight: Vec::new(),
            queue: VecDeque::new(),
            timer: None,
            timeout,
            retransmissions: 0,
        }
    }

    pub fn config(&self) -> &DtlsConfig {
        &self.cfg
    }
    pub fn state(&self) -> &DtlsState {
        &self.state
    }
    pub fn stats(&self) -> DtlsStats {
        self.stats
    }
    pub fn is_established(&self) -> bool {
        self.state == DtlsState::Established
    }

    /// Client: send the first ClientHello (flight 1). A server, or a
    /// client already started, ignores it.
    pub fn start(&mut self, now: SimTime) {
        if self.role != Role::Client || self.state != DtlsState::Idle {
            return;
        }
        self.state = DtlsState::Handshaking;
        self.client_random = self.random();
        let body = self.client_hello_body();
        let hello = self.handshake(hs::CLIENT_HELLO, body);
        self.send_flight(now, vec![hello]);
    }

    /// The next datagram to send, appended to `buf`; its length, or `None`
    /// when nothing is queued.
    pub fn poll_transmit(&mut self, _now: SimTime, buf: &mut Vec<u8>) -> Option<usize> {
        let d = self.queue.pop_front()?;
        buf.extend_from_slice(&d);
        Some(d.len())
    }

    /// When the retransmission timer expires.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.timer
    }

    /// Time reached `poll_timeout()`: retransmit the whole last flight and
    /// double the timer (up to `max_timer`), or give up after
    /// `max_retransmissions` (RFC 6347 §4.2.4, OpenSSL's count).
    pub fn handle_timeout(&mut self, now: SimTime) {
        let Some(t) = self.timer else { return };
        if now < t {
            return;
        }
        if self.retransmissions >= self.cfg.max_retransmissions {
            self.timer = None;
            self.state = DtlsState::Failed(LayerError::Refused(
                "no answer after the last retransmission",
            ));
            return;
        }
        self.retransmissions += 1;
        self.stats.timer_retransmissions += 1;
        self.timeout = SimDuration::from_nanos(
            self.timeout
                .as_nanos()
                .saturating_mul(2)
                .min(self.cfg.max_timer.as_nanos()),
        );
        self.timer = Some(now + self.timeout);
        self.pack_last_flight();
    }

    /// A datagram from the peer. Handshake records drive the handshake;
    /// the plaintext of application-data records (epoch 1, after the
    /// handshake) is appended to `app`, in record order. Bad records are
    /// dropped and counted; `Err` means the association is over (the
    /// fatal alert it sends, if any, is queued for `poll_transmit`).
    pub fn handle_datagram(
        &mut self,
        now: SimTime,
        datagram: &[u8],
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        match &self.state {
            DtlsState::Failed(e) => return Err(e.clone()),
            DtlsState::Closed => return Ok(()),
            _ => {}
        }
        let mut rest = datagram;
        let mut resent = false;
        while !rest.is_empty() {
            let (rec, next) = match Record::parse(rest) {
                Ok(x) => x,
                Err(w) => {
                    // RFC 6347 §4.1.2.7: drop what cannot be parsed; the
                    // rest of the datagram has no findable boundary.
                    self.malformed(w);
                    break;
                }
            };
            rest = next;
            self.record(now, &rec, app, &mut resent)?;
            if self.state == DtlsState::Closed {
                break;
            }
        }
        Ok(())
    }

    /// Seal one application write into one record appended to `out` (one
    /// datagram). Returns the (start, end) offsets in `out` of the
    /// bytes that carry the application's (its "ciphertext", as long);
    /// the rest of the appended bytes are overhead
    /// ([`DtlsSuite::overhead`]).
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), LayerError> {
        if !self.is_established() {
            return Err(LayerError::Refused("DTLS handshake not complete"));
        }
        if data.len() > 1 << 14 {
            return Err(LayerError::Refused(
                "application write over 2^14 bytes, one record's plaintext limit",
            ));
        }
        if self.write_seq[1] > record::MAX_SEQ {
            return Err(LayerError::Refused("record sequence numbers exhausted"));
        }
        Ok(self.protect(out, content::APPLICATION_DATA, data))
    }

    /// A graceful close: append a close_notify alert (one datagram) when
    /// established; the endpoint is closed afterwards either way.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.is_established() && self.write_seq[1] <= record::MAX_SEQ {
            self.protect(out, content::ALERT, &[1, alert::CLOSE_NOTIFY]);
        }
        self.timer = None;
        self.state = DtlsState::Closed;
    }

    fn malformed(&mut self, what: &'static str) {
        self.stats.malformed += 1;
        self.stats.last_malformed = Some(what);
    }

    // ---- record layer -------------------------------------------------

    fn record(
        &mut self,
        now: SimTime,
        rec: &Record<'_>,
        app: &mut Vec<u8>,
        resent: &mut bool,
    ) -> Result<(), LayerError> {
        let opened: Vec<u8>;
        let plain: &[u8] = match rec.epoch {
            0 => rec.body,
            1 if self.read_epoch == 1 => {
                let n = self.cfg.suite.explicit_nonce();
                let t = self.cfg.suite.tag();
                if rec.body.len() < n + t {
                    self.malformed("protected record shorter than nonce and tag");
                    return Ok(());
                }
                let mut pt = rec.body[n..rec.body.len() - t].to_vec();
                self.cipher(rec, &mut pt);
                if rec.body[rec.body.len() - t..] != self.tag_bytes(rec, &pt)[..] {
                    self.stats.bad_tag += 1;
                    return Ok(());
                }
                opened = pt;
                &opened
            }
            _ => {
                self.stats.wrong_epoch += 1;
                return Ok(());
            }
        };
        let w = usize::from(rec.epoch);
        if !self.windows[w].fresh(rec.seq) {
            self.stats.replayed += 1;
            return Ok(());
        }
        self.record_seq = rec.seq;
        // The window learns a sequence number only from a record that
        // authenticated (epoch 1) and was accepted (RFC 6347 §4.1.2.6), so
        // a forged or stray epoch-0 record cannot push real ones out of it.
        let counts = |s: &DtlsStats| (s.malformed, s.out_of_order, s.wrong_epoch);
        let before = counts(&self.stats);
        let r = self.record_content(now, rec, plain, app, resent);
        // epoch 0 carries no MAC: only a handshake message the handshake
        // took counts there (an unauthenticated alert or CCS with a far
        // sequence number must not move the window)
        let learns = rec.epoch == 1 || rec.content_type == content::HANDSHAKE;
        if learns && counts(&self.stats) == before {
            self.windows[w].mark(rec.seq);
        }
        r
    }

    fn record_content(
        &mut self,
        now: SimTime,
        rec: &Record<'_>,
        plain: &[u8],
        app: &mut Vec<u8>,
        resent: &mut bool,
    ) -> Result<(), LayerError> {
        match rec.content_type {
            content::HANDSHAKE => self.handshake_record(now, rec.epoch, plain, resent),
            content::CHANGE_CIPHER_SPEC => {
                if plain != [1] {
                    self.malformed("ChangeCipherSpec body is not [1]");
                } else if self.expect == Expect::ChangeCipherSpec && self.key.is_some() {
                    self.read_epoch = 1;
                    self.expect = Expect::Finished;
                } else if self.read_epoch == 1 {
                    // A retransmitted flight's ChangeCipherSpec: its
                    // handshake messages trigger the resend.
                } else {
                    self.stats.out_of_order += 1;
                }
                Ok(())
            }
            content::ALERT => {
                if plain.len() != 2 || !matches!(plain[0], 1 | 2) {
                    // AlertLevel is warning (1) or fatal (2) (RFC 5246 §7.2)
                    self.malformed("alert is not two bytes of level 1 or 2");
                    return Ok(());
                }
                if plain[1] == alert::CLOSE_NOTIFY {
                    self.timer = None;
                    self.state = DtlsState::Closed;
                    Ok(())
                } else if plain[0] == 2 {
                    let e = LayerError::Refused("fatal alert from the peer");
                    self.timer = None;
                    self.state = DtlsState::Failed(e.clone());
                    Err(e)
                } else {
                    Ok(())
                }
            }
            _ => {
                if rec.epoch == 1 && self.is_established() {
                    app.extend_from_slice(plain);
                } else {
                    self.stats.wrong_epoch += 1;
                }
                Ok(())
            }
        }
    }

    /// The tag of a protected record: a checksum keyed with the epoch key
    /// over epoch, sequence number, type and plaintext.
    fn tag_bytes(&self, rec: &Record<'_>, plain: &[u8]) -> Vec<u8> {
        let mut hdr = [0u8; 9];
        hdr[0] = rec.content_type;
        hdr[1..3].copy_from_slice(&rec.epoch.to_be_bytes());
        hdr[3..9].copy_from_slice(&rec.seq.to_be_bytes()[2..]);
        let mut t = Vec::with_capacity(16);
        expand(
            mix(self.key.unwrap_or(0), &[&hdr, plain]),
            self.cfg.suite.tag(),
            &mut t,
        );
        t
    }

    /// The stand-in cipher: XOR with a keystream drawn from the epoch key,
    /// epoch, sequence number and type (size-preserving, as the AEAD
    /// suites' counter mode is). It makes the record body look random, so
    /// tshark reads a protected Finished as "Encrypted Handshake Message"
    /// rather than parsing the plaintext.
    fn cipher(&self, rec: &Record<'_>, data: &mut [u8]) {
        let mut hdr = [0u8; 9];
        hdr[0] = rec.content_type;
        hdr[1..3].copy_from_slice(&rec.epoch.to_be_bytes());
        hdr[3..9].copy_from_slice(&rec.seq.to_be_bytes()[2..]);
        let mut ks = Vec::with_capacity(data.len());
        expand(
            mix(self.key.unwrap_or(0) ^ 0x6b73, &[&hdr]),
            data.len(),
            &mut ks,
        );
        for (d, k) in data.iter_mut().zip(ks) {
            *d ^= k;
        }
    }

    /// Append a record of the current write epoch: plaintext in epoch 0,
    /// nonce + ciphertext + tag in epoch 1. Returns the span of the
    /// plaintext's (or its ciphertext's) bytes.
    fn protect(&mut self, out: &mut Vec<u8>, ctype: u8, plain: &[u8]) -> (usize, usize) {
        let epoch = self.write_epoch;
        let seq = self.write_seq[usize::from(epoch)];
        self.write_seq[usize::from(epoch)] += 1;
        if epoch == 0 {
            record::emit_record_header(out, ctype, record::DTLS_1_2, 0, seq, plain.len());
            let start = out.len();
            out.extend_from_slice(plain);
            return (start, out.len());
        }
        let s = self.cfg.suite;
        record::emit_record_header(
            out,
            ctype,
            record::DTLS_1_2,
            epoch,
            seq,
            s.explicit_nonce() + plain.len() + s.tag(),
        );
        // The explicit nonce as OpenSSL fills it: epoch and sequence number.
        let mut nonce = epoch.to_be_bytes().to_vec();
        nonce.extend_from_slice(&seq.to_be_bytes()[2..]);
        out.extend_from_slice(&nonce[..s.explicit_nonce()]);
        let rec = Record {
            content_type: ctype,
            version: record::DTLS_1_2,
            epoch,
            seq,
            body: &[],
        };
        let start = out.len();
        out.extend_from_slice(plain);
        let end = out.len();
        self.cipher(&rec, &mut out[start..end]);
        let tag = self.tag_bytes(&rec, plain);
        out.extend_from_slice(&tag);
        (start, end)
    }

    // ---- handshake ----------------------------------------------------

    fn handshake_record(
        &mut self,
        now: SimTime,
        epoch: u16,
        mut body: &[u8],
        resent: &mut bool,
    ) -> Result<(), LayerError> {
        if body.is_empty() {
            self.malformed("handshake record without a message");
        }
        while !body.is_empty() {
            let (f, rest) = match Fragment::parse(body) {
                Ok(x) => x,
                Err(w) => {
                    self.malformed(w);
                    return Ok(());
                }
            };
            body = rest;
            // Finished is the only message of epoch 1 and must be.
            if (epoch == 1) != (f.msg_type == hs::FINISHED) {
                self.stats.out_of_order += 1;
                continue;
            }
            let stateless_hello = self.role == Role::Server
                && self.expect == Expect::ClientHello
                && f.msg_type == hs::CLIENT_HELLO;
            if f.message_seq < self.next_recv_seq && !stateless_hello {
                // The peer repeated its previous flight: ours was lost.
                // Resend it once per datagram (RFC 6347 §4.2.4).
                if !*resent && !self.last_flight.is_empty() {
                    *resent = true;
                    self.stats.triggered_retransmissions += 1;
                    self.pack_last_flight();
                } else if self.last_flight.is_empty() {
                    self.stats.out_of_order += 1;
                }
                continue;
            }
            if f.message_seq > self.next_recv_seq && !stateless_hello {
                // A later message before the one it follows: dropped; a
                // retransmission brings both again.
                self.stats.out_of_order += 1;
                continue;
            }
            let Some(msg) = self.reassemble(&f) else {
                continue;
            };
            self.message(now, msg.msg_type, msg.seq, &msg.body)?;
        }
        Ok(())
    }

    /// Add a fragment to the message being reassembled; the message once
    /// every byte is there.
    fn reassemble(&mut self, f: &Fragment<'_>) -> Option<Partial> {
        let len = f.length as usize;
        if len > MAX_MESSAGE {
            self.malformed("handshake message over 2^14 bytes");
            return None;
        }
        let fresh = match &self.partial {
            Some(p) => p.seq != f.message_seq,
            None => true,
        };
        if fresh {
            self.partial = Some(Partial {
                msg_type: f.msg_type,
                seq: f.message_seq,
                body: vec![0; len],
                have: vec![false; len],
            });
        }
        let p = self.partial.as_mut()?;
        if p.msg_type != f.msg_type || p.body.len() != len {
            self.stats.malformed += 1;
            self.stats.last_malformed = Some("fragments of one message disagree");
            return None;
        }
        let off = f.offset as usize;
        p.body[off..off + f.data.len()].copy_from_slice(f.data);
        p.have[off..off + f.data.len()].fill(true);
        if p.have.iter().all(|&b| b) {
            self.partial.take()
        } else {
            None
        }
    }

    fn message(
        &mut self,
        now: SimTime,
        msg_type: u8,
        seq: u16,
        body: &[u8],
    ) -> Result<(), LayerError> {
        let r = match (self.role, self.expect, msg_type) {
            (Role::Server, Expect::ClientHello, hs::CLIENT_HELLO) => {
                self.on_client_hello(now, seq, body)
            }
            (Role::Client, Expect::ServerHello, hs::HELLO_VERIFY_REQUEST) => {
                self.on_hello_verify(now, body)
            }
            (Role::Client, Expect::ServerHello, hs::SERVER_HELLO) => self.on_server_hello(body),
            (Role::Client, Expect::ServerKeyExchangeOrDone, hs::SERVER_KEY_EXCHANGE) => {
                self.on_server_key_exchange(body)
            }
            (
                Role::Client,
                Expect::ServerKeyExchangeOrDone | Expect::ServerHelloDone,
                hs::SERVER_HELLO_DONE,
            ) => self.on_server_hello_done(now, body),
            (Role::Server, Expect::ClientKeyExchange, hs::CLIENT_KEY_EXCHANGE) => {
                self.on_client_key_exchange(body)
            }
            (Role::Client, Expect::ChangeCipherSpec, hs::NEW_SESSION_TICKET)
                if self.cfg.profile == DtlsProfile::OpenSsl =>
            {
                self.on_new_session_ticket(body)
            }
            (_, Expect::Finished, hs::FINISHED) => self.on_finished(now, body),
            _ => {
                self.stats.out_of_order += 1;
                return Ok(());
            }
        };
        match r {
            Ok(Step::Next) => {
                self.next_recv_seq = seq.wrapping_add(1);
                Ok(())
            }
            Ok(Step::Stay) => Ok(()),
            Err(Bad::Malformed(w)) => {
                self.malformed(w);
                Ok(())
            }
            Err(Bad::Fatal(desc, why)) => Err(self.fail(desc, why)),
        }
    }

    /// End the association with a fatal alert (queued) and `why`.
    fn fail(&mut self, desc: u8, why: &'static str) -> LayerError {
        let mut d = Vec::new();
        if self.write_epoch == 0 || self.write_seq[1] <= record::MAX_SEQ {
            self.protect(&mut d, content::ALERT, &[2, desc]);
            self.queue.push_back(d);
            self.stats.datagrams_sent += 1;
        }
        let e = LayerError::Refused(why);
        self.timer = None;
        self.state = DtlsState::Failed(e.clone());
        e
    }

    fn on_client_hello(&mut self, now: SimTime, seq: u16, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        let version = r.u16("ClientHello version")?;
        let random = r.take(32, "ClientHello random")?;
        r.vec8("ClientHello session_id")?;
        let cookie = r.vec8("ClientHello cookie")?.to_vec();
        let suites = r.vec16("ClientHello cipher_suites")?;
        r.vec8("ClientHello compression_methods")?;
        if !r.0.is_empty() {
            r.vec16("ClientHello extensions")?;
        }
        if version != record::DTLS_1_2 {
            return Err(Bad::Fatal(
                alert::HANDSHAKE_FAILURE,
                "client offers no DTLS 1.2",
            ));
        }
        let offered = suites
            .chunks_exact(2)
            .any(|c| u16::from_be_bytes([c[0], c[1]]) == self.cfg.suite.code());
        if !offered {
            return Err(Bad::Fatal(
                alert::HANDSHAKE_FAILURE,
                "client offers no configured cipher suite",
            ));
        }
        let mut client_random = [0u8; 32];
        client_random.copy_from_slice(random);
        if self.cfg.cookie {
            let want = self.cookie_for(&client_random);
            if cookie != want {
                // RFC 6347 §4.2.1: answer statelessly with a cookie; same
                // message_seq and record sequence number as the hello.
                self.hello_verify(seq, want);
                return Ok(Step::Stay);
            }
        }
        self.state = DtlsState::Handshaking;
        // Our record sequence numbers go on from the hello's, so the
        // ServerHello never repeats the HelloVerifyRequest's (which echoed
        // the first hello's) in the client's replay window.
        self.write_seq[0] = self.write_seq[0].max(self.record_seq + 1);
        self.client_random = client_random;
        self.server_random = self.random();
        self.transcript = mix(0, &[&[hs::CLIENT_HELLO], body]);
        self.next_send_seq = seq;
        let mut flight = Vec::new();
        let sh = self.server_hello_body();
        flight.push(self.handshake(hs::SERVER_HELLO, sh));
        if !self.cfg.psk_hint.is_empty() || self.cfg.suite.ecdhe() {
            let mut ske = Vec::new();
            put_vec16(&mut ske, &self.cfg.psk_hint);
            if self.cfg.suite.ecdhe() {
                ske.push(3); // named_curve
                ske.extend_from_slice(&GROUP_X25519.to_be_bytes());
                let share = self.share();
                ske.push(X25519_LEN as u8);
                ske.extend_from_slice(&share);
            }
            flight.push(self.handshake(hs::SERVER_KEY_EXCHANGE, ske));
        }
        flight.push(self.handshake(hs::SERVER_HELLO_DONE, Vec::new()));
        self.expect = Expect::ClientKeyExchange;
        self.send_flight(now, flight);
        Ok(Step::Next)
    }

    fn hello_verify(&mut self, seq: u16, cookie: Vec<u8>) {
        let mut body = record::DTLS_1_0.to_be_bytes().to_vec();
        body.push(cookie.len() as u8);
        body.extend_from_slice(&cookie);
        let mut d = Vec::new();
        // The record sequence number echoes the hello's (RFC 6347 §4.2.1);
        // the window's newest is that record.
        let rseq = self.record_seq;
        record::emit_record_header(
            &mut d,
            content::HANDSHAKE,
            record::DTLS_1_2,
            0,
            rseq,
            record::HANDSHAKE_HEADER_LEN + body.len(),
        );
        record::emit_handshake_header(
            &mut d,
            hs::HELLO_VERIFY_REQUEST,
            body.len(),
            seq,
            0,
            body.len(),
        );
        d.extend_from_slice(&body);
        self.queue.push_back(d);
        self.stats.datagrams_sent += 1;
    }

    fn on_hello_verify(&mut self, now: SimTime, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        r.u16("HelloVerifyRequest version")?;
        let cookie = r.vec8("HelloVerifyRequest cookie")?;
        if cookie.is_empty() || !self.cookie.is_empty() {
            return Err(Bad::Malformed("second or empty cookie"));
        }
        self.cookie = cookie.to_vec();
        self.transcript = 0;
        // RFC 6347 §4.2.1: the second ClientHello has the same random and
        // the next message_seq; the first hello and the HelloVerifyRequest
        // stay out of the Finished transcript (§4.2.6).
        let ch = self.client_hello_body();
        self.stop_timer();
        let hello = self.handshake(hs::CLIENT_HELLO, ch);
        self.send_flight(now, vec![hello]);
        Ok(Step::Next)
    }

    fn on_server_hello(&mut self, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        let version = r.u16("ServerHello version")?;
        let random = r.take(32, "ServerHello random")?;
        r.vec8("ServerHello session_id")?;
        let suite = r.u16("ServerHello cipher_suite")?;
        r.u8("ServerHello compression_method")?;
        if !r.0.is_empty() {
            r.vec16("ServerHello extensions")?;
        }
        if version != record::DTLS_1_2 || suite != self.cfg.suite.code() {
            return Err(Bad::Fatal(
                alert::HANDSHAKE_FAILURE,
                "server chose another version or suite",
            ));
        }
        self.server_random.copy_from_slice(random);
        self.absorb(hs::SERVER_HELLO, body);
        self.expect = Expect::ServerKeyExchangeOrDone;
        Ok(Step::Next)
    }

    fn on_server_key_exchange(&mut self, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        r.vec16("ServerKeyExchange psk_identity_hint")?;
        if self.cfg.suite.ecdhe() {
            r.u8("ServerKeyExchange curve_type")?;
            r.u16("ServerKeyExchange named_curve")?;
            r.vec8("ServerKeyExchange public")?;
        }
        self.absorb(hs::SERVER_KEY_EXCHANGE, body);
        self.expect = Expect::ServerHelloDone;
        Ok(Step::Next)
    }

    fn on_server_hello_done(&mut self, now: SimTime, body: &[u8]) -> Result<Step, Bad> {
        if !body.is_empty() {
            return Err(Bad::Malformed("ServerHelloDone has a body"));
        }
        if self.cfg.suite.ecdhe() && self.expect == Expect::ServerKeyExchangeOrDone {
            return Err(Bad::Fatal(
                alert::UNEXPECTED_MESSAGE,
                "ECDHE_PSK without ServerKeyExchange",
            ));
        }
        self.absorb(hs::SERVER_HELLO_DONE, body);
        // Flight 5: ClientKeyExchange, ChangeCipherSpec, Finished.
        let mut cke = Vec::new();
        put_vec16(&mut cke, &self.cfg.psk_identity);
        if self.cfg.suite.ecdhe() {
            let share = self.share();
            cke.push(X25519_LEN as u8);
            cke.extend_from_slice(&share);
        }
        let mut flight = vec![self.handshake(hs::CLIENT_KEY_EXCHANGE, cke)];
        self.derive_key();
        flight.push(Outgoing::ChangeCipherSpec);
        let fin = self.verify_data(Role::Client);
        flight.push(self.handshake_in(1, hs::FINISHED, fin));
        self.expect = Expect::ChangeCipherSpec;
        self.stop_timer();
        self.send_flight(now, flight);
        Ok(Step::Next)
    }

    fn on_client_key_exchange(&mut self, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        let identity = r.vec16("ClientKeyExchange psk_identity")?;
        if self.cfg.suite.ecdhe() {
            r.vec8("ClientKeyExchange public")?;
        }
        if identity != self.cfg.psk_identity.as_slice() {
            return Err(Bad::Fatal(
                alert::UNKNOWN_PSK_IDENTITY,
                "unknown PSK identity",
            ));
        }
        self.absorb(hs::CLIENT_KEY_EXCHANGE, body);
        self.derive_key();
        self.expect = Expect::ChangeCipherSpec;
        Ok(Step::Next)
    }

    /// Client, OpenSSL profile: the ticket before the server's
    /// ChangeCipherSpec (RFC 5077 §3.3); it joins the transcript.
    fn on_new_session_ticket(&mut self, body: &[u8]) -> Result<Step, Bad> {
        let mut r = Reader(body);
        r.take(4, "NewSessionTicket lifetime")?;
        r.vec16("NewSessionTicket ticket")?;
        if !r.0.is_empty() {
            return Err(Bad::Malformed("NewSessionTicket longer than its ticket"));
        }
        self.absorb(hs::NEW_SESSION_TICKET, body);
        Ok(Step::Next)
    }

    fn on_finished(&mut self, now: SimTime, body: &[u8]) -> Result<Step, Bad> {
        let peer = match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        if body != self.verify_data(peer).as_slice() {
            return Err(Bad::Fatal(alert::DECRYPT_ERROR, "Finished does not verify"));
        }
        self.absorb(hs::FINISHED, body);
        self.stop_timer();
        if self.role == Role::Server {
            // Flight 6; kept to answer a repeated flight 5, no timer
            // (RFC 6347 §4.2.4: the last flight is resent on demand).
            let mut flight = Vec::new();
            if self.cfg.profile == DtlsProfile::OpenSsl {
                // lifetime hint 7200 s, then the ticket
                let mut nst = 7200u32.to_be_bytes().to_vec();
                let mut ticket = Vec::new();
                expand(self.rng.next_u64(), self.cfg.ticket_len(), &mut ticket);
                put_vec16(&mut nst, &ticket);
                flight.push(self.handshake(hs::NEW_SESSION_TICKET, nst));
            }
            flight.push(Outgoing::ChangeCipherSpec);
            let fin = self.verify_data(Role::Server);
            flight.push(self.handshake_in(1, hs::FINISHED, fin));
            self.send_flight(now, flight);
            self.timer = None;
        } else {
            self.last_flight.clear();
        }
        self.expect = Expect::Nothing;
        self.state = DtlsState::Established;
        Ok(Step::Next)
    }

    // ---- flights ------------------------------------------------------

    fn handshake(&mut self, msg_type: u8, body: Vec<u8>) -> Outgoing {
        self.handshake_in(0, msg_type, body)
    }

    /// A message of ours: takes the next message_seq and, but for the
    /// HelloVerifyRequest exchange, joins the transcript.
    fn handshake_in(&mut self, epoch: u16, msg_type: u8, body: Vec<u8>) -> Outgoing {
        let seq = self.next_send_seq;
        self.next_send_seq = self.next_send_seq.wrapping_add(1);
        self.absorb(msg_type, &body);
        Outgoing::Handshake {
            epoch,
            msg_type,
            seq,
            body,
        }
    }

    fn absorb(&mut self, msg_type: u8, body: &[u8]) {
        self.transcript = mix(self.transcript, &[&[msg_type], body]);
    }

    fn send_flight(&mut self, now: SimTime, flight: Vec<Outgoing>) {
        self.last_flight = flight;
        self.retransmissions = 0;
        self.timeout = self.cfg.initial_timer;
        self.timer = Some(now + self.timeout);
        self.pack_last_flight();
    }

    fn stop_timer(&mut self) {
        self.timer = None;
        self.retransmissions = 0;
        self.timeout = self.cfg.initial_timer;
    }

    /// Queue the last flight as datagrams: records packed while they fit
    /// `mtu`, a message fragmented when it alone does not (RFC 6347
    /// §4.2.3). Every record gets a fresh sequence number; the write epoch
    /// is 0 until the ChangeCipherSpec and 1 after it.
    fn pack_last_flight(&mut self) {
        let flight = std::mem::take(&mut self.last_flight);
        let mtu = self.cfg.mtu.max(record::RECORD_HEADER_LEN + 64);
        let mut dgram: Vec<u8> = Vec::new();
        self.write_epoch = 0;
        for m in &flight {
            match m {
                Outgoing::ChangeCipherSpec => {
                    if dgram.len() + record::RECORD_HEADER_LEN + 1 > mtu {
                        self.flush(&mut dgram);
                    }
                    self.protect(&mut dgram, content::CHANGE_CIPHER_SPEC, &[1]);
                    self.write_epoch = 1;
                }
                Outgoing::Handshake {
                    epoch,
                    msg_type,
                    seq,
                    body,
                } => {
                    let extra = if *epoch == 1 {
                        self.cfg.suite.explicit_nonce() + self.cfg.suite.tag()
                    } else {
                        0
                    };
                    let over = record::RECORD_HEADER_LEN + extra + record::HANDSHAKE_HEADER_LEN;
                    let mut off = 0;
                    loop {
                        if dgram.len() + over + (body.len() - off) > mtu && !dgram.is_empty() {
                            self.flush(&mut dgram);
                        }
                        let room = mtu.saturating_sub(dgram.len() + over).max(1);
                        let n = room.min(body.len() - off);
                        let mut plain = Vec::with_capacity(record::HANDSHAKE_HEADER_LEN + n);
                        record::emit_handshake_header(
                            &mut plain,
                            *msg_type,
                            body.len(),
                            *seq,
                            off,
                            n,
                        );
                        plain.extend_from_slice(&body[off..off + n]);
                        self.protect(&mut dgram, content::HANDSHAKE, &plain);
                        off += n;
                        if off >= body.len() {
                            break;
                        }
                    }
                }
            }
        }
        self.flush(&mut dgram);
        self.last_flight = flight;
    }

    fn flush(&mut self, dgram: &mut Vec<u8>) {
        if !dgram.is_empty() {
            self.queue.push_back(std::mem::take(dgram));
            self.stats.datagrams_sent += 1;
        }
    }

    // ---- message bodies -----------------------------------------------

    fn client_hello_body(&self) -> Vec<u8> {
        let mut b = record::DTLS_1_2.to_be_bytes().to_vec();
        b.extend_from_slice(&self.client_random);
        b.push(0); // session_id: none (no resumption in the model)
        b.push(self.cookie.len() as u8);
        b.extend_from_slice(&self.cookie);
        if self.cfg.profile == DtlsProfile::OpenSsl {
            self.openssl_client_hello_tail(&mut b);
            return b;
        }
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&self.cfg.suite.code().to_be_bytes());
        b.extend_from_slice(&[1, 0]); // compression: null
        if self.cfg.suite.ecdhe() {
            // supported_groups {x25519}, ec_point_formats {uncompressed}
            // (RFC 8422 §5.1).
            let ext: [u8; 14] = [0, 10, 0, 4, 0, 2, 0, 0x1d, 0, 11, 0, 2, 1, 0];
            b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            b.extend_from_slice(&ext);
        }
        b
    }

    /// Suites, compression and extensions of OpenSSL's ClientHello.
    fn openssl_client_hello_tail(&self, b: &mut Vec<u8>) {
        let list16 = |vals: &[u16]| -> Vec<u8> {
            let mut v = ((vals.len() * 2) as u16).to_be_bytes().to_vec();
            for x in vals {
                v.extend_from_slice(&x.to_be_bytes());
            }
            v
        };
        let mut suites = OPENSSL_PSK_SUITES.to_vec();
        if !suites.contains(&self.cfg.suite.code()) {
            suites.push(self.cfg.suite.code());
        }
        suites.push(0x00ff);
        b.extend_from_slice(&list16(&suites));
        b.extend_from_slice(&[1, 0]);
        let mut e = Vec::new();
        let mut ext = |typ: u16, body: &[u8]| {
            e.extend_from_slice(&typ.to_be_bytes());
            put_vec16(&mut e, body);
        };
        if let Some(name) = &self.cfg.server_name {
            let mut sn = ((name.len() + 3) as u16).to_be_bytes().to_vec();
            sn.push(0);
            put_vec16(&mut sn, name.as_bytes());
            ext(0x0000, &sn);
        }
        ext(0x000b, &[3, 0, 1, 2]);
        ext(0x000a, &list16(&OPENSSL_GROUPS));
        ext(0x0023, &[]);
        ext(0x0016, &[]);
        ext(0x0017, &[]);
        ext(0x000d, &list16(&OPENSSL_SIGALGS));
        put_vec16(b, &e);
    }

    fn server_hello_body(&mut self) -> Vec<u8> {
        let mut b = record::DTLS_1_2.to_be_bytes().to_vec();
        b.extend_from_slice(&self.server_random);
        if self.cfg.profile == DtlsProfile::OpenSsl {
            // A ticket is coming: no session ID (RFC 5077 §3.4, as
            // OpenSSL does); renegotiation_info, session_ticket,
            // extended_master_secret.
            b.push(0);
            b.extend_from_slice(&self.cfg.suite.code().to_be_bytes());
            b.push(0);
            let ext: [u8; 13] = [0xff, 1, 0, 1, 0, 0, 0x23, 0, 0, 0, 0x17, 0, 0];
            put_vec16(&mut b, &ext);
            return b;
        }
        // A 32-byte session_id, as OpenSSL's server assigns one when no
        // session ticket is in play (resumption itself is not modelled).
        let session_id = self.random();
        b.push(session_id.len() as u8);
        b.extend_from_slice(&session_id);
        b.extend_from_slice(&self.cfg.suite.code().to_be_bytes());
        b.push(0);
        if self.cfg.suite.ecdhe() {
            let ext: [u8; 6] = [0, 11, 0, 2, 1, 0];
            b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            b.extend_from_slice(&ext);
        }
        b
    }

    fn cookie_for(&self, client_random: &[u8; 32]) -> Vec<u8> {
        let mut c = Vec::with_capacity(COOKIE_LEN);
        expand(
            mix(self.cookie_secret, &[client_random]),
            COOKIE_LEN,
            &mut c,
        );
        c
    }

    fn derive_key(&mut self) {
        self.key = Some(mix(
            0x6b6579,
            &[
                &self.client_random,
                &self.server_random,
                &self.cfg.psk_identity,
            ],
        ));
    }

    fn verify_data(&self, sender: Role) -> Vec<u8> {
        let label: &[u8] = match sender {
            Role::Client => b"client finished",
            Role::Server => b"server finished",
        };
        let mut v = Vec::with_capacity(VERIFY_LEN);
        expand(
            mix(
                self.key.unwrap_or(0),
                &[label, &self.transcript.to_be_bytes()],
            ),
            VERIFY_LEN,
            &mut v,
        );
        v
    }

    fn random(&mut self) -> [u8; 32] {
        let mut r = [0u8; 32];
        for c in r.chunks_exact_mut(8) {
            c.copy_from_slice(&self.rng.next_u64().to_be_bytes());
        }
        r
    }

    fn share(&mut self) -> [u8; X25519_LEN] {
        self.random()
    }
}

/// Outcome of a handshake message handler.
enum Step {
    /// Consumed: the next message_seq is expected.
    Next,
    /// Answered without state (HelloVerifyRequest).
    Stay,
}

/// Why a handshake message was not accepted.
enum Bad {
    /// Does not parse: dropped and counted.
    Malformed(&'static str),
    /// Ends the association with this alert.
    Fatal(u8, &'static str),
}

impl From<&'static str> for Bad {
    fn from(w: &'static str) -> Self {
        Bad::Malformed(w)
    }
}

fn put_vec16(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(&(v.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&v[..v.len().min(usize::from(u16::MAX))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_drops_seen_and_old() {
        let mut w = ReplayWindow::default();
        for s in [5, 3, 70] {
            assert!(w.fresh(s));
            w.mark(s);
        }
        assert!(!w.fresh(70));
        assert!(!w.fresh(5), "70 - 5 = 65 is outside the 64-entry window");
        assert!(w.fresh(69));
        assert!(!w.fresh(3));
    }

    #[test]
    fn expand_gives_exact_lengths() {
        for n in [0, 1, 8, 12, 16, 32] {
            let mut v = Vec::new();
            expand(7, n, &mut v);
            assert_eq!(v.len(), n);
        }
    }
}
