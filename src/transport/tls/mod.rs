//! TLS 1.2 and 1.3 as a byte- and round-trip-accurate [`StreamLayer`]
//! (issue 21; `docs/security.md`, "TLS model"). No cryptography runs: the
//! handshake flights, records, tags and padding are produced with the
//! sizes and the structure OpenSSL 3 gives them, and protected records
//! carry the plaintext so the peer endpoint hands it up.
//!
//! Read first: RFC 8446 (TLS 1.3: §4 handshake, §5 records, §4.6.1
//! tickets, §4.2.10 early data, appendix D.4 middlebox compatibility),
//! RFC 5246 (TLS 1.2), RFC 5077 (session tickets), RFC 5288 (AES-GCM),
//! RFC 7366 (encrypt-then-MAC).
//!
//! * [`TlsConfig`]: version, suite, resumption, mutual authentication,
//!   certificate chains; `Default` is OpenSSL 3 with mosquitto's defaults.
//! * [`TlsEndpoint`]: one side of a connection. The handshake is a script
//!   of messages fixed by the configuration (both sides compute the same
//!   one); each side sends its runs of the script and checks the peer's
//!   messages against it, in order.
//! * `record`: the record layer and the per-suite overhead.
//! * `cert`: real DER certificates of any configured size.
//!
//! Records as OpenSSL writes them: one handshake message per record (split
//! only above 2^14 bytes), one record per application write (a write of
//! more than 2^14 bytes gives several), never coalescing two writes.

pub mod cert;
pub mod record;

use crate::transport::layer::{LayerError, StreamLayer};
use record::{fnv, splitmix, OpenError, Protection, ALERT, APP, CCS, HANDSHAKE, MAX_FRAGMENT};

/// Protocol version of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The negotiated cipher suite (the certificate's key type picks the
/// ECDSA or RSA variant in TLS 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    /// TLS_AES_128_GCM_SHA256; TLS 1.2 ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256.
    Aes128Gcm,
    /// TLS_AES_256_GCM_SHA384; TLS 1.2 ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384:
    /// what OpenSSL 3 negotiates by default (its first preference in both
    /// versions). Same record overhead as AES-128-GCM; SHA-384 makes the
    /// TLS 1.3 Finished and PSK binder 48 bytes instead of 32.
    Aes256Gcm,
    /// TLS 1.2 only: ECDHE-{ECDSA,RSA}-AES128-SHA256 (CBC, HMAC-SHA256,
    /// encrypt-then-MAC).
    Aes128CbcSha256,
}

/// How the connection is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumption {
    /// A full handshake.
    None,
    /// Resuming an earlier session: TLS 1.2 with a session ticket (RFC
    /// 5077, OpenSSL's default) in an abbreviated handshake; TLS 1.3 with
    /// a PSK from a NewSessionTicket (psk_dhe_ke).
    Resume,
    /// TLS 1.3 only: PSK resumption with early data (0-RTT).
    ZeroRtt,
}

/// The key type of both chains' certificates: it sizes signatures
/// (ECDSA P-256: 71-byte DER signature, the mean of 70..72; RSA-2048: 256
/// bytes, RSA-PSS as OpenSSL 3 signs) and picks the fixture certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa2048,
}

/// One TLS connection's parameters, shared by both endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub version: TlsVersion,
    pub suite: CipherSuite,
    pub resumption: Resumption,
    /// Client authentication: the server sends CertificateRequest, the
    /// client Certificate and CertificateVerify.
    pub mutual: bool,
    pub key: KeyType,
    /// DER sizes of the server's certificates as sent, leaf first.
    pub server_chain: Vec<usize>,
    /// DER sizes of the client's certificates (used when `mutual`).
    pub client_chain: Vec<usize>,
    /// Server name sent in the ClientHello (RFC 6066 §3). OpenSSL sends
    /// none when the client connects to an IP address.
    pub sni: Option<String>,
    /// Seed of the random-looking bytes (randoms, keys, tickets).
    pub seed: u64,
}

impl Default for TlsConfig {
    /// OpenSSL 3 (3.0.19 measured) on both ends, as mosquitto 2.0 and
    /// paho-mqtt 2 (Python's `ssl`) use it with no cipher options:
    /// * TLS 1.3 and TLS_AES_256_GCM_SHA384, OpenSSL's first 1.3 suite.
    ///   The ClientHello is paho's with the TLS version pinned (Python's
    ///   `minimum_version` 1.3; `maximum_version` 1.2 for a TLS 1.2
    ///   client), measured against mosquitto by
    ///   `scripts/security-calibrate.py` (docs/security.md, "Calibration").
    /// * A full handshake, no client certificate (mosquitto's
    ///   `require_certificate false`).
    /// * RSA-2048 keys, as mosquitto-tls(7) makes them (`openssl genrsa
    ///   2048`), in a two-certificate chain (leaf + intermediate) whose
    ///   DER sizes, 873 and 830 bytes, are `assets/tls/rsa-*.der`.
    /// * No SNI (the client connects to an address).
    fn default() -> Self {
        TlsConfig {
            version: TlsVersion::Tls13,
            suite: CipherSuite::Aes256Gcm,
            resumption: Resumption::None,
            mutual: false,
            key: KeyType::Rsa2048,
            server_chain: vec![873, 830],
            client_chain: vec![873, 830],
            sni: None,
            seed: 0,
        }
    }
}

impl TlsConfig {
    /// Why the configuration cannot run, if it cannot: 0-RTT without TLS
    /// 1.3, CBC with TLS 1.3, an empty chain, a certificate size the
    /// fixtures cannot reach, a bad server name.
    pub fn validate(&self) -> Result<(), String> {
        if self.resumption == Resumption::ZeroRtt && self.version != TlsVersion::Tls13 {
            return Err("0-RTT (early data) needs TLS 1.3".into());
        }
        if self.suite == CipherSuite::Aes128CbcSha256 && self.version != TlsVersion::Tls12 {
            return Err("AES-128-CBC-SHA256 is a TLS 1.2 suite".into());
        }
        let mut chains = vec![("server", true, &self.server_chain)];
        if self.mutual {
            chains.push(("client", false, &self.client_chain));
        }
        for (who, server, chain) in chains {
            if chain.is_empty() {
                return Err(format!("the {who} certificate chain is empty"));
            }
            if chain.len() > 10 {
                return Err(format!(
                    "the {who} certificate chain has over 10 certificates"
                ));
            }
            for (i, &size) in chain.iter().enumerate() {
                cert::certificate(self.key, server, i, size)
                    .map_err(|e| format!("{who} certificate {i}: {e}"))?;
            }
        }
        if let Some(n) = &self.sni {
            if n.is_empty() || n.len() > 253 || !n.is_ascii() {
                return Err(format!("server name {n:?}: 1 to 253 ASCII characters"));
            }
        }
        Ok(())
    }

    /// Bytes on the wire of one record carrying `n` (≤ 2^14) application
    /// bytes with this configuration's suite.
    pub fn record_len(&self, n: usize) -> usize {
        record::HEADER + self.protection().body_len(n)
    }

    fn protection(&self) -> Protection {
        Protection {
            version: self.version,
            suite: self.suite,
        }
    }

    /// Hash length of the suite's PRF / HKDF: the size of a TLS 1.3
    /// Finished and PSK binder.
    fn hash_len(&self) -> usize {
        match self.suite {
            CipherSuite::Aes256Gcm => 48,
            _ => 32,
        }
    }

    fn suite_code(&self) -> u16 {
        let ec = self.key == KeyType::EcdsaP256;
        match (self.version, self.suite, ec) {
            (TlsVersion::Tls13, CipherSuite::Aes256Gcm, _) => 0x1302,
            (TlsVersion::Tls13, _, _) => 0x1301,
            (TlsVersion::Tls12, CipherSuite::Aes128Gcm, true) => 0xc02b,
            (TlsVersion::Tls12, CipherSuite::Aes128Gcm, false) => 0xc02f,
            (TlsVersion::Tls12, CipherSuite::Aes256Gcm, true) => 0xc02c,
            (TlsVersion::Tls12, CipherSuite::Aes256Gcm, false) => 0xc030,
            (TlsVersion::Tls12, CipherSuite::Aes128CbcSha256, true) => 0xc023,
            (TlsVersion::Tls12, CipherSuite::Aes128CbcSha256, false) => 0xc027,
        }
    }

    /// Session ticket size as OpenSSL 3 issues them: 16-byte key name, 16
    /// IV, the AES-CBC-encrypted DER session (PKCS#7 padding: 1 to 16
    /// bytes) and a 32-byte HMAC. The session is [`SESSION_BASE_TLS13`] or
    /// [`SESSION_BASE_TLS12`] bytes plus the server's session ID context
    /// (mosquitto's, [`SESSION_ID_CONTEXT`]), plus the client's leaf
    /// certificate and 6 bytes after client authentication. Measured
    /// (docs/security.md, "Session tickets"): mosquitto 2.0.11 issues 224 /
    /// 176 bytes without a client certificate, 720 / 688 with an ECDSA
    /// client leaf of 495 bytes.
    pub fn ticket_len(&self) -> usize {
        let base = match self.version {
            TlsVersion::Tls13 => SESSION_BASE_TLS13,
            TlsVersion::Tls12 => SESSION_BASE_TLS12,
        };
        let peer = match (self.mutual, self.client_chain.first()) {
            (true, Some(&leaf)) => leaf + 6,
            _ => 0,
        };
        let session = base + SESSION_ID_CONTEXT + peer;
        64 + (session / 16 + 1) * 16
    }
}

/// Bytes of OpenSSL 3's DER session (`i2d_SSL_SESSION`) in a TLS 1.2
/// ticket, without the session ID context and the peer certificate: from
/// `openssl s_server -context` with 1 to 32-byte contexts, the ticket grows
/// by 16 bytes at a 3- and a 19-byte context (a session of 93 + context
/// bytes, padded).
pub const SESSION_BASE_TLS12: usize = 93;
/// The same for TLS 1.3: in one series the ticket grew at a 14- and at a
/// 31-byte context, 17 bytes apart, so one byte of the session varies
/// between connections (we take it to be the random ticket_age_add, a DER
/// INTEGER of 4 or 5 bytes); 130 (5 bytes) fits mosquitto's tickets.
pub const SESSION_BASE_TLS13: usize = 130;
/// The session ID context mosquitto sets (`SSL_CTX_set_session_id_context`
/// with `mosquitto-<port>`): 14 bytes for port 8883 (15 for a five-digit
/// port, the same ticket sizes). Python's `ssl` servers set `Python` (6),
/// `openssl s_server` 4 bytes.
pub const SESSION_ID_CONTEXT: usize = 14;

/// Handshake message types (RFC 8446 §4, RFC 5246 §7.4), and the
/// ChangeCipherSpec record the script also orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClientHello = 1,
    ServerHello = 2,
    NewSessionTicket = 4,
    EndOfEarlyData = 5,
    EncryptedExtensions = 8,
    Certificate = 11,
    ServerKeyExchange = 12,
    CertificateRequest = 13,
    ServerHelloDone = 14,
    CertificateVerify = 15,
    ClientKeyExchange = 16,
    Finished = 20,
    ChangeCipherSpec = 0,
}

/// One message of the handshake script: who sends it, and whether it
/// travels in a protected record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    client: bool,
    kind: Kind,
    protected: bool,
}

/// The messages of the handshake, in order, as OpenSSL 3 sends them.
fn script(cfg: &TlsConfig) -> Vec<Step> {
    use Kind::*;
    let c = |kind, protected| Step {
        client: true,
        kind,
        protected,
    };
    let s = |kind, protected| Step {
        client: false,
        kind,
        protected,
    };
    let m = cfg.mutual;
    let mut v = Vec::new();
    match (cfg.version, cfg.resumption) {
        (TlsVersion::Tls13, Resumption::None) => {
            v.extend([c(ClientHello, false), s(ServerHello, false)]);
            v.extend([s(ChangeCipherSpec, false), s(EncryptedExtensions, true)]);
            v.extend(m.then(|| s(CertificateRequest, true)));
            v.extend([s(Certificate, true), s(CertificateVerify, true)]);
            v.extend([s(Finished, true), c(ChangeCipherSpec, false)]);
            if m {
                v.extend([c(Certificate, true), c(CertificateVerify, true)]);
            }
            v.push(c(Finished, true));
            // OpenSSL's default num_tickets is 2 (SSL_CTX_set_num_tickets).
            v.extend([s(NewSessionTicket, true), s(NewSessionTicket, true)]);
        }
        (TlsVersion::Tls13, Resumption::Resume) => {
            v.extend([c(ClientHello, false), s(ServerHello, false)]);
            v.extend([s(ChangeCipherSpec, false), s(EncryptedExtensions, true)]);
            v.extend([s(Finished, true), c(ChangeCipherSpec, false)]);
            // A resumed session gets one new ticket.
            v.extend([c(Finished, true), s(NewSessionTicket, true)]);
        }
        (TlsVersion::Tls13, Resumption::ZeroRtt) => {
            // RFC 8446 D.4: a client sending early data sends its CCS
            // right after the ClientHello.
            v.extend([c(ClientHello, false), c(ChangeCipherSpec, false)]);
            v.extend([s(ServerHello, false), s(ChangeCipherSpec, false)]);
            v.extend([s(EncryptedExtensions, true), s(Finished, true)]);
            v.extend([c(EndOfEarlyData, true), c(Finished, true)]);
            v.push(s(NewSessionTicket, true));
        }
        (TlsVersion::Tls12, Resumption::Resume) => {
            v.extend([c(ClientHello, false), s(ServerHello, false)]);
            v.extend([s(ChangeCipherSpec, false), s(Finished, true)]);
            v.extend([c(ChangeCipherSpec, false), c(Finished, true)]);
        }
        (TlsVersion::Tls12, _) => {
            v.extend([c(ClientHello, false), s(ServerHello, false)]);
            v.extend([s(Certificate, false), s(ServerKeyExchange, false)]);
            v.extend(m.then(|| s(CertificateRequest, false)));
            v.push(s(ServerHelloDone, false));
            v.extend(m.then(|| c(Certificate, false)));
            v.push(c(ClientKeyExchange, false));
            v.extend(m.then(|| c(CertificateVerify, false)));
            v.extend([c(ChangeCipherSpec, false), c(Finished, true)]);
            v.extend([s(NewSessionTicket, false), s(ChangeCipherSpec, false)]);
            v.push(s(Finished, true));
        }
    }
    v
}

/// Cipher suites a Python `ssl` client (paho-mqtt's TLS) offers for TLS
/// 1.2, in order: Python's default cipher string (ECDHE and DHE with
/// AES-GCM, ChaCha20, AES-CBC-SHA2; no SHA-1, no CCM) on OpenSSL 3; then
/// [`SCSV`] (calibration capture).
const TLS12_SUITES: [u16; 14] = [
    0xc02c, 0xc030, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc024, 0xc028, 0xc023, 0xc027, 0x009f, 0x009e,
    0x006b, 0x0067,
];
/// TLS 1.3 suites OpenSSL 3 offers, in order.
const TLS13_SUITES: [u16; 3] = [0x1302, 0x1303, 0x1301];
/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746), last in OpenSSL's list.
const SCSV: u16 = 0x00ff;
/// OpenSSL 3's default signature algorithms (ClientHello, TLS 1.2
/// CertificateRequest); a client that offers only TLS 1.3 leaves out the
/// last six (SHA-1 and SHA-224, TLS 1.2 only), and TLS 1.3's
/// CertificateRequest sends the first 14 and the two SHA-224 ones.
const SIGALGS: [u16; 20] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
];
/// Groups offered: x25519, P-256, x448, P-521, P-384, then (TLS 1.3
/// only) the five FFDHE groups.
const GROUPS: [u16; 10] = [
    0x001d, 0x0017, 0x001e, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104,
];

fn put16(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u16).to_be_bytes());
}

fn put24(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u32).to_be_bytes()[1..]);
}

/// OpenSSL's ClientHello padding (RFC 7685, `SSL_OP_TLSEXT_PADDING`, on
/// in `SSL_OP_ALL`, which Python's `ssl` sets): a hello whose handshake
/// message would be 256 to 511 bytes long (the pre_shared_key extension
/// that follows counted) is padded to 512 with a padding extension of at
/// least one byte.
const PAD_ABOVE: usize = 255;
const PAD_TO: usize = 512;

/// The padding extension's body length for a ClientHello of `hlen` bytes
/// (message header included) so far, or `None` when it gets none.
pub fn client_hello_padding(hlen: usize) -> Option<usize> {
    (PAD_ABOVE < hlen && hlen < PAD_TO).then(|| (PAD_TO - hlen).saturating_sub(4).max(1))
}

/// Append extension `typ` with `body`.
fn ext(v: &mut Vec<u8>, typ: u16, body: &[u8]) {
    put16(v, usize::from(typ));
    put16(v, body.len());
    v.extend_from_slice(body);
}

/// A 16-bit-length-prefixed list of 16-bit values.
fn list16(vals: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    put16(&mut v, vals.len() * 2);
    for &x in vals {
        put16(&mut v, usize::from(x));
    }
    v
}

/// Why a connection failed, and the alert (RFC 8446 §6.2) to send.
struct Fail(LayerError, Option<u8>);

const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const DECODE_ERROR: u8 = 50;
const DECRYPT_ERROR: u8 = 51;

fn malformed(what: &'static str) -> Fail {
    Fail(LayerError::Malformed(what), Some(DECODE_ERROR))
}

fn unexpected(what: &'static str) -> Fail {
    Fail(LayerError::Refused(what), Some(UNEXPECTED_MESSAGE))
}

/// One side of a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsEndpoint {
    cfg: TlsConfig,
    client: bool,
    script: Vec<Step>,
    /// Index in `script` of the next message to send or receive.
    pos: usize,
    /// Undecoded bytes from the peer (at most one partial record).
    rx: Vec<u8>,
    /// A handshake message spanning records, and whether its records
    /// were protected.
    hs: Vec<u8>,
    hs_protected: bool,
    /// The peer's TLS 1.2 ChangeCipherSpec was seen: its records are
    /// protected from here on.
    rx_protected: bool,
    /// This side has sent a protected record (its alerts are protected).
    tx_protected: bool,
    tx_seq: u64,
    rx_seq: u64,
    /// Running digest of the handshake messages (the transcript hash):
    /// the Finished messages carry it, so both sides check they saw the
    /// same handshake.
    transcript: u64,
    sent_finished: bool,
    got_finished: bool,
    /// The server saw the client's EndOfEarlyData (0-RTT).
    early_over: bool,
    /// The client's legacy session ID, echoed by the server.
    peer_session_id: Vec<u8>,
    rng: u64,
    connected: bool,
    /// Writes sealed before `ready()`, sent when it becomes true.
    pending: Vec<Vec<u8>>,
    /// Bytes of each handshake flight this side sent.
    flights: Vec<usize>,
    peer_closed: bool,
    failed: bool,
}

impl TlsEndpoint {
    /// The client side of a connection with `cfg`.
    pub fn client(cfg: TlsConfig) -> Result<Self, String> {
        Self::new(cfg, true)
    }

    /// The server side of a connection with `cfg`.
    pub fn server(cfg: TlsConfig) -> Result<Self, String> {
        Self::new(cfg, false)
    }

    fn new(cfg: TlsConfig, client: bool) -> Result<Self, String> {
        cfg.validate()?;
        let rng = cfg.seed
            ^ if client {
                0x636c_6965_6e74
            } else {
                0x7365_7276_6572
            };
        Ok(TlsEndpoint {
            script: script(&cfg),
            cfg,
            client,
            pos: 0,
            rx: Vec::new(),
            hs: Vec::new(),
            hs_protected: false,
            rx_protected: false,
            tx_protected: false,
            tx_seq: 0,
            rx_seq: 0,
            transcript: 0xcbf2_9ce4_8422_2325,
            sent_finished: false,
            got_finished: false,
            early_over: false,
            peer_session_id: Vec::new(),
            rng,
            connected: false,
            pending: Vec::new(),
            flights: Vec::new(),
            peer_closed: false,
            failed: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TlsConfig {
        &self.cfg
    }

    /// Bytes (record headers included) of each handshake flight this side
    /// has sent, in order; NewSessionTickets count as a server flight.
    pub fn flights(&self) -> &[usize] {
        &self.flights
    }

    /// Bytes this side has sent in handshake flights.
    pub fn handshake_bytes(&self) -> usize {
        self.flights.iter().sum()
    }

    /// The peer sent close_notify (the `Refused("close_notify")` that
    /// `input` returned was a graceful close, not a failure).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The peer has sent everything the handshake script gives it (for
    /// the client, the NewSessionTickets too).
    pub fn handshake_done(&self) -> bool {
        self.pos == self.script.len()
    }

    fn random(&mut self, n: usize, v: &mut Vec<u8>) {
        let mut left = n;
        while left > 0 {
            let w = splitmix(&mut self.rng).to_be_bytes();
            let k = left.min(8);
            v.extend_from_slice(&w[..k]);
            left -= k;
        }
    }

    /// A DER ECDSA signature (SEQUENCE of two INTEGERs, 71 bytes) or an
    /// RSA one (256 bytes), with sigalg and length prefix.
    fn signature(&mut self, v: &mut Vec<u8>) {
        match self.cfg.key {
            KeyType::EcdsaP256 => {
                put16(v, 0x0403);
                put16(v, 71);
                v.extend([0x30, 0x45, 0x02, 0x21, 0x00]);
                let r = v.len();
                self.random(32, v);
                v[r] |= 0x80;
                v.extend([0x02, 0x20]);
                let s = v.len();
                self.random(32, v);
                v[s] = v[s] & 0x7f | 0x01;
            }
            KeyType::Rsa2048 => {
                put16(v, 0x0804);
                put16(v, 256);
                self.random(256, v);
            }
        }
    }

    /// The body of handshake message `kind` as this side sends it.
    fn body(&mut self, kind: Kind) -> Vec<u8> {
        let cfg = self.cfg.clone();
        let tls13 = cfg.version == TlsVersion::Tls13;
        let resume = cfg.resumption != Resumption::None;
        let mut b = Vec::new();
        match kind {
            Kind::ClientHello => {
                put16(&mut b, 0x0303);
                self.random(32, &mut b);
                // TLS 1.3 sends a random legacy session ID (middlebox
                // compatibility, RFC 8446 D.4); TLS 1.2 one only with a
                // ticket, to recognise the resumption (RFC 5077 §3.4).
                let sid = if tls13 || resume { 32 } else { 0 };
                b.push(sid as u8);
                self.random(sid, &mut b);
                // The client offers only its version (a TLS 1.3 client
                // with Python's minimum_version 1.3, a TLS 1.2 one with
                // maximum_version 1.2) and, for a suite other than
                // OpenSSL's first choice, only that suite: mosquitto
                // chooses by its own preference
                // (SSL_OP_CIPHER_SERVER_PREFERENCE), so a client that
                // ends with another suite offered nothing better.
                let code = cfg.suite_code();
                let mut suites: Vec<u16> = match (tls13, cfg.suite) {
                    (true, CipherSuite::Aes256Gcm) => TLS13_SUITES.to_vec(),
                    (false, CipherSuite::Aes256Gcm) => TLS12_SUITES.to_vec(),
                    _ => vec![code],
                };
                suites.push(SCSV);
                b.extend(list16(&suites));
                b.extend([1, 0]);
                let mut e = Vec::new();
                if let Some(name) = &cfg.sni {
                    let mut sn = Vec::new();
                    put16(&mut sn, name.len() + 3);
                    sn.push(0);
                    put16(&mut sn, name.len());
                    sn.extend_from_slice(name.as_bytes());
                    ext(&mut e, 0x0000, &sn);
                }
                ext(&mut e, 0x000b, &[3, 0, 1, 2]);
                let groups = if tls13 { &GROUPS[..] } else { &GROUPS[..5] };
                ext(&mut e, 0x000a, &list16(groups));
                let mut ticket = Vec::new();
                if !tls13 && resume {
                    self.random(cfg.ticket_len(), &mut ticket);
                }
                ext(&mut e, 0x0023, &ticket);
                ext(&mut e, 0x0016, &[]);
                ext(&mut e, 0x0017, &[]);
                let sigalgs = if tls13 { &SIGALGS[..14] } else { &SIGALGS[..] };
                ext(&mut e, 0x000d, &list16(sigalgs));
                if tls13 {
                    ext(&mut e, 0x002b, &[2, 3, 4]);
                    ext(&mut e, 0x002d, &[1, 1]);
                    let mut ks = vec![0, 0x24, 0, 0x1d, 0, 0x20];
                    self.random(32, &mut ks);
                    ext(&mut e, 0x0033, &ks);
                    if cfg.resumption == Resumption::ZeroRtt {
                        ext(&mut e, 0x002a, &[]);
                    }
                }
                // pre_shared_key, written after the padding, counts:
                // type, length, identities (length, identity length,
                // ticket, age), binders (length, binder length, binder).
                let psk = if tls13 && resume {
                    15 + cfg.ticket_len() + cfg.hash_len()
                } else {
                    0
                };
                if let Some(n) = client_hello_padding(4 + b.len() + 2 + e.len() + psk) {
                    ext(&mut e, 0x0015, &vec![0; n]);
                }
                if psk > 0 {
                    // pre_shared_key, last (RFC 8446 §4.2.11): one
                    // identity (the ticket, its obfuscated age) and its
                    // binder.
                    let t = cfg.ticket_len();
                    let mut p = Vec::new();
                    put16(&mut p, 2 + t + 4);
                    put16(&mut p, t);
                    self.random(t + 4, &mut p);
                    put16(&mut p, 1 + cfg.hash_len());
                    p.push(cfg.hash_len() as u8);
                    self.random(cfg.hash_len(), &mut p);
                    debug_assert_eq!(4 + p.len(), psk);
                    ext(&mut e, 0x0029, &p);
                }
                put16(&mut b, e.len());
                b.extend(e);
            }
            Kind::ServerHello => {
                put16(&mut b, 0x0303);
                self.random(32, &mut b);
                // TLS 1.3 echoes the client's session ID; TLS 1.2 echoes it
                // when resuming and sends none with a new ticket.
                let sid = if tls13 || resume {
                    self.peer_session_id.clone()
                } else {
                    Vec::new()
                };
                b.push(sid.len() as u8);
                b.extend(sid);
                put16(&mut b, usize::from(cfg.suite_code()));
                b.push(0);
                let mut e = Vec::new();
                if tls13 {
                    ext(&mut e, 0x002b, &[3, 4]);
                    let mut ks = vec![0, 0x1d, 0, 0x20];
                    self.random(32, &mut ks);
                    ext(&mut e, 0x0033, &ks);
                    if resume {
                        ext(&mut e, 0x0029, &[0, 0]);
                    }
                } else {
                    ext(&mut e, 0xff01, &[0]);
                    if !resume {
                        ext(&mut e, 0x000b, &[3, 0, 1, 2]);
                        ext(&mut e, 0x0023, &[]);
                    }
                    if cfg.suite == CipherSuite::Aes128CbcSha256 {
                        ext(&mut e, 0x0016, &[]);
                    }
                    ext(&mut e, 0x0017, &[]);
                }
                put16(&mut b, e.len());
                b.extend(e);
            }
            Kind::EncryptedExtensions => {
                if cfg.resumption == Resumption::ZeroRtt {
                    b.extend([0, 4, 0, 0x2a, 0, 0]);
                } else {
                    b.extend([0, 0]);
                }
            }
            Kind::CertificateRequest => {
                // No certificate_authorities: mosquitto loads its CA file
                // for verification only (openssl s_server adds the CA's
                // name, 34 to 40 bytes more).
                if tls13 {
                    let algs = list16(&SIGALGS[..16]);
                    let mut e = Vec::new();
                    ext(&mut e, 0x000d, &algs);
                    b.push(0);
                    put16(&mut b, e.len());
                    b.extend(e);
                } else {
                    b.extend([3, 1, 2, 0x40]);
                    b.extend(list16(&SIGALGS));
                    b.extend([0, 0]);
                }
            }
            Kind::Certificate => {
                let server = !self.client;
                let chain = if server {
                    &cfg.server_chain
                } else {
                    &cfg.client_chain
                };
                let mut list = Vec::new();
                for (i, &size) in chain.iter().enumerate() {
                    // validate() built each of these already.
                    let der = cert::certificate(cfg.key, server, i, size).unwrap_or_default();
                    put24(&mut list, der.len());
                    list.extend(der);
                    if tls13 {
                        list.extend([0, 0]);
                    }
                }
                if tls13 {
                    b.push(0);
                }
                put24(&mut b, list.len());
                b.extend(list);
            }
            Kind::ServerKeyExchange => {
                // ECDHE over x25519 (RFC 8422 §5.4), then the signature.
                b.extend([3, 0, 0x1d, 32]);
                self.random(32, &mut b);
                self.signature(&mut b);
            }
            Kind::CertificateVerify => self.signature(&mut b),
            Kind::ClientKeyExchange => {
                b.push(32);
                self.random(32, &mut b);
            }
            Kind::ServerHelloDone | Kind::EndOfEarlyData | Kind::ChangeCipherSpec => {}
            Kind::Finished => {
                let n = self.verify_len();
                let mut h = self.transcript ^ u64::from(self.client);
                for _ in 0..n.div_ceil(8) {
                    b.extend(splitmix(&mut h).to_be_bytes());
                }
                b.truncate(n);
            }
            Kind::NewSessionTicket => {
                let t = cfg.ticket_len();
                b.extend(7200u32.to_be_bytes()); // lifetime (hint), s
                if tls13 {
                    self.random(4, &mut b); // ticket_age_add
                    b.push(8);
                    self.random(8, &mut b); // nonce
                    put16(&mut b, t);
                    self.random(t, &mut b);
                    if cfg.resumption == Resumption::ZeroRtt {
                        // early_data with max_early_data_size 16384.
                        b.extend([0, 8, 0, 0x2a, 0, 4, 0, 0, 0x40, 0]);
                    } else {
                        b.extend([0, 0]);
                    }
                } else {
                    put16(&mut b, t);
                    self.random(t, &mut b);
                }
            }
        }
        b
    }

    /// verify_data length: 12 in TLS 1.2 (RFC 5246 §7.4.9), the hash
    /// length in TLS 1.3.
    fn verify_len(&self) -> usize {
        match self.cfg.version {
            TlsVersion::Tls12 => 12,
            TlsVersion::Tls13 => self.cfg.hash_len(),
        }
    }

    /// Append `data` of content type `ctype` as records: protected ones,
    /// or plaintext with record version `version`; fragments of at most
    /// 2^14 bytes.
    fn write(&mut self, ctype: u8, protected: bool, version: u16, data: &[u8], out: &mut Vec<u8>) {
        for chunk in data.chunks(MAX_FRAGMENT) {
            if protected {
                self.cfg.protection().seal(ctype, self.tx_seq, chunk, out);
                self.tx_seq += 1;
                self.tx_protected = true;
            } else {
                record::header(ctype, version, chunk.len(), out);
                out.extend_from_slice(chunk);
            }
        }
    }

    /// Send this side's messages from `pos` up to the peer's next one: one
    /// flight.
    fn send_flight(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        while let Some(&step) = self.script.get(self.pos) {
            if step.client != self.client {
                break;
            }
            self.pos += 1;
            if step.kind == Kind::ChangeCipherSpec {
                self.write(CCS, false, 0x0303, &[1], out);
                continue;
            }
            let body = self.body(step.kind);
            let mut msg = vec![step.kind as u8];
            put24(&mut msg, body.len());
            msg.extend(body);
            self.transcript = fnv(self.transcript, &msg);
            // The first ClientHello's record says TLS 1.0 (RFC 8446 §5.1).
            let version = if step.kind == Kind::ClientHello {
                0x0301
            } else {
                0x0303
            };
            self.write(HANDSHAKE, step.protected, version, &msg, out);
            if step.kind == Kind::Finished {
                self.sent_finished = true;
            }
        }
        if out.len() > start {
            self.flights.push(out.len() - start);
        }
        self.flush_pending(out);
    }

    /// Seal the writes queued before `ready()`.
    fn flush_pending(&mut self, out: &mut Vec<u8>) {
        if self.ready() {
            for data in std::mem::take(&mut self.pending) {
                let mut spans = Vec::new();
                self.seal(&data, out, &mut spans);
            }
        }
    }

    /// Take complete records off `rx` and handle them.
    fn records(&mut self, out: &mut Vec<u8>, app: &mut Vec<u8>) -> Result<(), Fail> {
        let mut at = 0;
        let result = loop {
            let rest = &self.rx[at..];
            if rest.len() < record::HEADER {
                break Ok(());
            }
            let ctype = rest[0];
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            if !(CCS..=APP).contains(&ctype) {
                break Err(malformed("record content type"));
            }
            if rest[1] != 3 || !(1..=3).contains(&rest[2]) {
                break Err(malformed("record version"));
            }
            let protected = self.is_protected(ctype);
            let max = if protected {
                self.cfg.protection().max_body()
            } else {
                MAX_FRAGMENT
            };
            if len > max {
                break Err(Fail(
                    LayerError::Malformed("record longer than allowed"),
                    Some(RECORD_OVERFLOW),
                ));
            }
            if len == 0 && ctype != APP {
                break Err(malformed("empty record"));
            }
            if rest.len() < record::HEADER + len {
                break Ok(());
            }
            let body = rest[record::HEADER..record::HEADER + len].to_vec();
            at += record::HEADER + len;
            if let Err(f) = self.record(ctype, protected, &body, out, app) {
                break Err(f);
            }
        };
        self.rx.drain(..at);
        result
    }

    /// Whether a record of outer type `ctype` from the peer is protected.
    fn is_protected(&self, ctype: u8) -> bool {
        match self.cfg.version {
            TlsVersion::Tls13 => ctype == APP,
            TlsVersion::Tls12 => self.rx_protected,
        }
    }

    fn record(
        &mut self,
        outer: u8,
        protected: bool,
        body: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), Fail> {
        let (ctype, data) = if protected {
            let seq = self.rx_seq;
            self.rx_seq += 1;
            match self.cfg.protection().open(outer, seq, body) {
                Ok((t, r)) => (t, &body[r]),
                Err(OpenError::BadMac) => {
                    return Err(Fail(
                        LayerError::Malformed("bad record MAC"),
                        Some(BAD_RECORD_MAC),
                    ))
                }
                Err(OpenError::Short) => return Err(malformed("protected record too short")),
                Err(OpenError::NoType) => return Err(malformed("no inner content type")),
            }
        } else {
            (outer, body)
        };
        match ctype {
            CCS => {
                if protected || data != [1] {
                    return Err(malformed("ChangeCipherSpec"));
                }
                self.expect(Kind::ChangeCipherSpec, false)?;
                if self.cfg.version == TlsVersion::Tls12 {
                    self.rx_protected = true;
                }
                self.after_message(out);
                Ok(())
            }
            ALERT => {
                if data.len() != 2 {
                    return Err(malformed("alert length"));
                }
                if data[1] == 0 {
                    self.peer_closed = true;
                    return Err(Fail(LayerError::Refused("close_notify"), None));
                }
                Err(Fail(LayerError::Refused("alert from the peer"), None))
            }
            HANDSHAKE => {
                if data.is_empty() {
                    return Err(malformed("empty handshake record"));
                }
                if !self.hs.is_empty() && self.hs_protected != protected {
                    return Err(unexpected("handshake message across a key change"));
                }
                self.hs_protected = protected;
                self.hs.extend_from_slice(data);
                while self.hs.len() >= 4 {
                    let len = usize::from(self.hs[1]) << 16
                        | usize::from(self.hs[2]) << 8
                        | usize::from(self.hs[3]);
                    if len > MAX_HANDSHAKE {
                        return Err(malformed("handshake message too long"));
                    }
                    if self.hs.len() < 4 + len {
                        break;
                    }
                    let msg: Vec<u8> = self.hs.drain(..4 + len).collect();
                    self.message(&msg, protected)?;
                    self.after_message(out);
                }
                Ok(())
            }
            _ => {
                let early = !self.client
                    && self.cfg.resumption == Resumption::ZeroRtt
                    && self.pos > 0
                    && !self.early_over;
                if !protected {
                    return Err(unexpected("unprotected application data"));
                }
                if !(self.established() || early) {
                    return Err(unexpected("application data before the handshake"));
                }
                app.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Check that the peer's next scripted message is `kind` with the
    /// given protection, and move past it.
    fn expect(&mut self, kind: Kind, protected: bool) -> Result<Step, Fail> {
        let step = match self.script.get(self.pos) {
            Some(&s) if s.client != self.client => s,
            _ => return Err(unexpected("message out of turn")),
        };
        if step.kind != kind {
            return Err(unexpected("unexpected handshake message"));
        }
        if step.protected != protected {
            return Err(unexpected("handshake message under the wrong keys"));
        }
        self.pos += 1;
        Ok(step)
    }

    /// One complete handshake message from the peer.
    fn message(&mut self, msg: &[u8], protected: bool) -> Result<(), Fail> {
        let kind = KINDS
            .iter()
            .copied()
            .find(|&k| k as u8 == msg[0] && k != Kind::ChangeCipherSpec)
            .ok_or_else(|| unexpected("unknown handshake message type"))?;
        self.expect(kind, protected)?;
        let body = &msg[4..];
        match kind {
            Kind::ClientHello => {
                // legacy_version, random, legacy_session_id.
                if body.len() < 35 || body[..2] != [3, 3] {
                    return Err(malformed("ClientHello"));
                }
                let n = usize::from(body[34]);
                if n > 32 || body.len() < 35 + n {
                    return Err(malformed("ClientHello session ID"));
                }
                self.peer_session_id = body[35..35 + n].to_vec();
            }
            Kind::ServerHello if body.len() < 38 || body[..2] != [3, 3] => {
                return Err(malformed("ServerHello"));
            }
            Kind::ServerHelloDone | Kind::EndOfEarlyData if !body.is_empty() => {
                return Err(malformed("non-empty ServerHelloDone / EndOfEarlyData"));
            }
            Kind::Finished => {
                let mut h = self.transcript ^ u64::from(!self.client);
                let mut want = Vec::new();
                for _ in 0..self.verify_len().div_ceil(8) {
                    want.extend(splitmix(&mut h).to_be_bytes());
                }
                want.truncate(self.verify_len());
                if body != want {
                    return Err(Fail(
                        LayerError::Refused("Finished does not match the transcript"),
                        Some(DECRYPT_ERROR),
                    ));
                }
                self.got_finished = true;
            }
            _ => {}
        }
        if kind == Kind::EndOfEarlyData {
            self.early_over = true;
        }
        self.transcript = fnv(self.transcript, msg);
        Ok(())
    }

    /// After a peer message: send this side's next flight if it is due.
    fn after_message(&mut self, out: &mut Vec<u8>) {
        if matches!(self.script.get(self.pos), Some(s) if s.client == self.client) {
            self.send_flight(out);
        } else {
            self.flush_pending(out);
        }
    }

    /// Append a fatal (or, for close, warning) alert.
    fn alert(&mut self, level: u8, desc: u8, out: &mut Vec<u8>) {
        let protected = self.tx_protected || self.established();
        self.write(ALERT, protected, 0x0303, &[level, desc], out);
    }
}

/// The largest handshake message accepted: a certificate chain of ten
/// certificates of the model's largest size, with headroom.
const MAX_HANDSHAKE: usize = 11 * (cert::MAX_CERT + 8);

const KINDS: [Kind; 12] = [
    Kind::ClientHello,
    Kind::ServerHello,
    Kind::NewSessionTicket,
    Kind::EndOfEarlyData,
    Kind::EncryptedExtensions,
    Kind::Certificate,
    Kind::ServerKeyExchange,
    Kind::CertificateRequest,
    Kind::ServerHelloDone,
    Kind::CertificateVerify,
    Kind::ClientKeyExchange,
    Kind::Finished,
];

impl StreamLayer for TlsEndpoint {
    fn connected(&mut self, out: &mut Vec<u8>) {
        if self.connected {
            return;
        }
        self.connected = true;
        if self.client {
            self.send_flight(out);
        }
    }

    fn input(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        if self.failed {
            return Err(LayerError::Refused("connection already failed"));
        }
        self.rx.extend_from_slice(data);
        match self.records(out, app) {
            Ok(()) => Ok(()),
            Err(Fail(e, alert)) => {
                self.failed = true;
                if let Some(desc) = alert {
                    self.alert(2, desc, out);
                }
                Err(e)
            }
        }
    }

    fn ready(&self) -> bool {
        self.established()
            || self.client && self.connected && self.cfg.resumption == Resumption::ZeroRtt
    }

    fn established(&self) -> bool {
        self.sent_finished && self.got_finished
    }

    fn seal(&mut self, data: &[u8], out: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) {
        if data.is_empty() || self.failed {
            return;
        }
        if !self.ready() {
            self.pending.push(data.to_vec());
            return;
        }
        let p = self.cfg.protection();
        for chunk in data.chunks(MAX_FRAGMENT) {
            spans.push(p.seal(APP, self.tx_seq, chunk, out));
            self.tx_seq += 1;
        }
        self.tx_protected = true;
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !self.failed {
            self.alert(1, 0, out);
        }
    }
}
