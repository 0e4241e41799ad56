//! The TLS record layer (RFC 8446 §5, RFC 5246 §6.2): headers, the
//! protected record formats and their exact overhead per cipher suite.
//!
//! No cryptography runs. A protected record carries the plaintext where
//! the ciphertext would be (same length: AES-GCM and AES-CBC preserve it
//! up to padding) and a tag or MAC of the real size computed by a
//! deterministic keyless digest over the sequence number, content type
//! and plaintext, so a corrupted or replayed record fails like a real
//! `bad_record_mac` would.
//!
//! Formats (bytes after the 5-byte header):
//! * TLS 1.3 (RFC 8446 §5.2): plaintext ‖ inner content type (1) ‖ tag (16).
//! * TLS 1.2 AES-GCM (RFC 5288 §3): explicit nonce (8, the sequence number
//!   as OpenSSL sends it) ‖ plaintext ‖ tag (16).
//! * TLS 1.2 AES-CBC-HMAC-SHA256 with encrypt-then-MAC (RFC 7366, which
//!   OpenSSL negotiates by default): IV (16) ‖ plaintext ‖ padding (1..=16
//!   bytes, each the padding length − 1, RFC 5246 §6.2.3.2) ‖ MAC (32).
//!   The size equals MAC-then-encrypt's since the MAC is a whole number
//!   of blocks.

use super::{CipherSuite, TlsVersion};
use crate::sim::rng::splitmix64;

/// Record content types (RFC 8446 §5.1).
pub const CCS: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APP: u8 = 23;

/// Header bytes of every record.
pub const HEADER: usize = 5;
/// The largest plaintext fragment of one record (2^14, RFC 8446 §5.1).
pub const MAX_FRAGMENT: usize = 16_384;

/// Why a record could not be opened; the endpoint turns it into a
/// `LayerError` and an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Too short for its format, or the padding is inconsistent.
    Short,
    /// The tag / MAC does not match the content (RFC 8446 §5.2).
    BadMac,
    /// A TLS 1.3 inner plaintext with no content type byte.
    NoType,
}

/// The protection of one direction once keys are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub version: TlsVersion,
    pub suite: CipherSuite,
}

impl Protection {
    /// Body bytes of a protected record carrying `n` plaintext bytes.
    pub fn body_len(self, n: usize) -> usize {
        match (self.version, self.suite) {
            (TlsVersion::Tls13, _) => n + 1 + 16,
            (TlsVersion::Tls12, CipherSuite::Aes128CbcSha256) => 16 + n + pad_len(n) + 32,
            (TlsVersion::Tls12, _) => 8 + n + 16,
        }
    }

    /// The largest body a peer's protected record may have: 2^14 + 256
    /// in TLS 1.3 (RFC 8446 §5.2), 2^14 + 2048 in TLS 1.2 (RFC 5246 §6.2.3).
    pub fn max_body(self) -> usize {
        match self.version {
            TlsVersion::Tls13 => MAX_FRAGMENT + 256,
            TlsVersion::Tls12 => MAX_FRAGMENT + 2048,
        }
    }

    /// Append one protected record of content type `ctype` carrying
    /// `data` (at most [`MAX_FRAGMENT`] bytes) with sequence number `seq`;
    /// returns the offsets in `out` where `data` sits.
    pub fn seal(self, ctype: u8, seq: u64, data: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
        let outer = match self.version {
            TlsVersion::Tls13 => APP,
            TlsVersion::Tls12 => ctype,
        };
        header(outer, 0x0303, self.body_len(data.len()), out);
        let start;
        match (self.version, self.suite) {
            (TlsVersion::Tls13, _) => {
                start = out.len();
                out.extend_from_slice(data);
                out.push(ctype);
                // The tag covers the inner plaintext, content type included.
                let mut t = Vec::with_capacity(16);
                tag(seq, APP, &out[start..], 16, &mut t);
                out.extend(t);
            }
            (TlsVersion::Tls12, CipherSuite::Aes128CbcSha256) => {
                tag(seq, 0xff, data, 16, out); // a per-record IV
                start = out.len();
                out.extend_from_slice(data);
                let p = pad_len(data.len());
                out.extend(std::iter::repeat_n((p - 1) as u8, p));
                tag(seq, ctype, data, 32, out);
            }
            (TlsVersion::Tls12, _) => {
                out.extend_from_slice(&seq.to_be_bytes());
                start = out.len();
                out.extend_from_slice(data);
                tag(seq, ctype, data, 16, out);
            }
        }
        (start, start + data.len())
    }

    /// Open the body of a protected record whose header said `outer`:
    /// the content type and the plaintext's range in `body`.
    pub fn open(
        self,
        outer: u8,
        seq: u64,
        body: &[u8],
    ) -> Result<(u8, std::ops::Range<usize>), OpenError> {
        let mut want = Vec::new();
        let (ctype, range, mac_at, mac_len) = match (self.version, self.suite) {
            (TlsVersion::Tls13, _) => {
                let inner_end = body.len().checked_sub(16).ok_or(OpenError::Short)?;
                let inner = &body[..inner_end];
                tag(seq, APP, inner, 16, &mut want);
                if body[inner_end..] != want[..] {
                    return Err(OpenError::BadMac);
                }
                // RFC 8446 §5.4: the content type is the last non-zero byte.
                let t = inner
                    .iter()
                    .rposition(|&b| b != 0)
                    .ok_or(OpenError::NoType)?;
                return Ok((inner[t], 0..t));
            }
            (TlsVersion::Tls12, CipherSuite::Aes128CbcSha256) => {
                if body.len() < 16 + 16 + 32 || !(body.len() - 16 - 32).is_multiple_of(16) {
                    return Err(OpenError::Short);
                }
                let mac_at = body.len() - 32;
                let p = usize::from(body[mac_at - 1]) + 1;
                if p > 16
                    || body[mac_at - p..mac_at]
                        .iter()
                        .any(|&b| usize::from(b) != p - 1)
                {
                    return Err(OpenError::BadMac);
                }
                (outer, 16..mac_at - p, mac_at, 32)
            }
            (TlsVersion::Tls12, _) => {
                let mac_at = body.len().checked_sub(16).filter(|&m| m >= 8);
                let mac_at = mac_at.ok_or(OpenError::Short)?;
                (outer, 8..mac_at, mac_at, 16)
            }
        };
        tag(seq, ctype, &body[range.clone()], mac_len, &mut want);
        if body[mac_at..mac_at + mac_len] != want[..] {
            return Err(OpenError::BadMac);
        }
        Ok((ctype, range))
    }
}

/// CBC padding bytes (including the length byte) after `n` plaintext
/// bytes: 1..=16, to a whole number of 16-byte blocks.
fn pad_len(n: usize) -> usize {
    16 - n % 16
}

/// Append a record header.
pub fn header(ctype: u8, version: u16, len: usize, out: &mut Vec<u8>) {
    out.push(ctype);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
}

/// Append `n` bytes of a keyless digest of (`seq`, `ctype`, `data`):
/// FNV-1a over the data, expanded with SplitMix64.
fn tag(seq: u64, ctype: u8, data: &[u8], n: usize, out: &mut Vec<u8>) {
    let mut h = fnv(
        0xcbf2_9ce4_8422_2325 ^ seq.rotate_left(17) ^ u64::from(ctype),
        data,
    );
    let mut left = n;
    while left > 0 {
        let w = splitmix(&mut h).to_be_bytes();
        let k = left.min(8);
        out.extend_from_slice(&w[..k]);
        left -= k;
    }
}

/// FNV-1a (64-bit) of `data` from state `h`.
pub fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The next value of a SplitMix64 sequence from state `s` (the
/// simulator's finaliser iterated): the deterministic generator of every
/// random-looking byte the model sends.
pub fn splitmix(s: &mut u64) -> u64 {
    *s = splitmix64(*s);
    *s
}
