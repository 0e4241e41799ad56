//! Real DER certificates of any configured size for the TLS 1.2
//! Certificate message, which travels in the clear: tshark dissects every
//! certificate in it, so the bytes must be X.509, not filler.
//!
//! The fixtures under `assets/tls/` (made once with OpenSSL, see the README
//! there) are ECDSA P-256 and RSA-2048 server and client leaves and their
//! intermediates. A size other than a fixture's is reached by resizing two
//! fields whose length no dissector constrains — the subject key
//! identifier (RFC 5280 §4.2.1.2: any octet string) and the serial number
//! (a positive INTEGER; truncating keeps it minimally encoded) — and
//! rewriting every enclosing DER length. The signature no longer verifies,
//! which does not matter: nothing here is verified.

use super::KeyType;

const EC_SERVER: &[u8] = include_bytes!("../../../assets/tls/ec-server.der");
const EC_CLIENT: &[u8] = include_bytes!("../../../assets/tls/ec-client.der");
const EC_INT: &[u8] = include_bytes!("../../../assets/tls/ec-int.der");
const RSA_SERVER: &[u8] = include_bytes!("../../../assets/tls/rsa-server.der");
const RSA_CLIENT: &[u8] = include_bytes!("../../../assets/tls/rsa-client.der");
const RSA_INT: &[u8] = include_bytes!("../../../assets/tls/rsa-int.der");

/// The largest certificate the model builds (a DER length of three bytes
/// covers it; TLS allows 2^24 − 1 but no real chain comes near).
pub const MAX_CERT: usize = 65_535;

/// The fixture a chain position starts from: the leaf for position 0, the
/// intermediate for every later one.
pub fn fixture(key: KeyType, server: bool, index: usize) -> &'static [u8] {
    match (key, server, index) {
        (KeyType::EcdsaP256, true, 0) => EC_SERVER,
        (KeyType::EcdsaP256, false, 0) => EC_CLIENT,
        (KeyType::EcdsaP256, _, _) => EC_INT,
        (KeyType::Rsa2048, true, 0) => RSA_SERVER,
        (KeyType::Rsa2048, false, 0) => RSA_CLIENT,
        (KeyType::Rsa2048, _, _) => RSA_INT,
    }
}

/// The smallest size [`certificate`] reaches from a fixture (one-byte key
/// identifier and serial number).
pub fn min_size(key: KeyType, server: bool, index: usize) -> usize {
    let base = fixture(key, server, index);
    match build(base, 1, 1) {
        Ok(b) => b.len(),
        Err(_) => base.len(),
    }
}

/// A certificate of exactly `size` DER bytes for chain position `index`
/// of the server's (`server`) or client's chain. `Err` names why the size
/// cannot be reached (below [`min_size`], above [`MAX_CERT`]).
pub fn certificate(
    key: KeyType,
    server: bool,
    index: usize,
    size: usize,
) -> Result<Vec<u8>, String> {
    let own = fixture(key, server, index);
    // A certificate's size depends on its issuer's signature too: an RSA
    // leaf under an ECDSA intermediate (744 bytes in the calibration) is
    // smaller than the RSA fixture, which an RSA CA signed, can shrink to.
    // Below that fixture's reach, start from the other key type's (smaller)
    // fixture: the size is right, its public key is of the other type.
    let other = match key {
        KeyType::EcdsaP256 => KeyType::Rsa2048,
        KeyType::Rsa2048 => KeyType::EcdsaP256,
    };
    let own_min = min_size(key, server, index);
    if size == own.len() || size >= own_min {
        return resize(own, size, own_min);
    }
    let alt = fixture(other, server, index);
    let alt_min = min_size(other, server, index);
    if size == alt.len() || size >= alt_min {
        return resize(alt, size, alt_min);
    }
    resize(own, size, own_min.min(alt_min))
}

/// `base` resized to `size` bytes; `min` is the smallest it reaches.
fn resize(base: &[u8], size: usize, min: usize) -> Result<Vec<u8>, String> {
    if size == base.len() {
        return Ok(base.to_vec());
    }
    if size > MAX_CERT {
        return Err(format!(
            "certificate size {size} is over the model's limit of {MAX_CERT} bytes"
        ));
    }
    if size < min {
        return Err(format!(
            "certificate size {size} is below {min}, the smallest the fixtures reach"
        ));
    }
    let ski0 = 20usize;
    // Each step of the key identifier adds one byte, plus at most one per
    // enclosing length that changes form: start a little low and walk up.
    let mut ski = (ski0 + size).saturating_sub(base.len() + 12).max(1);
    loop {
        let full = build(base, ski, 20)?;
        if full.len() >= size {
            let cut = full.len() - size;
            if cut > 19 {
                return Err(format!("certificate size {size} cannot be reached"));
            }
            let c = build(base, ski, 20 - cut)?;
            return if c.len() == size {
                Ok(c)
            } else {
                Err(format!("certificate size {size} cannot be reached"))
            };
        }
        ski += (size - full.len()).max(1);
    }
}

/// One DER element: a primitive (tag, content) or a constructed element
/// with its children.
enum Der {
    Prim(u8, Vec<u8>),
    Cons(u8, Vec<Der>),
}

/// Parse a run of DER elements (single-byte tags, definite lengths).
fn parse(mut b: &[u8]) -> Result<Vec<Der>, String> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let (tag, content, rest) = tlv(b)?;
        v.push(if tag & 0x20 != 0 {
            Der::Cons(tag, parse(content)?)
        } else {
            Der::Prim(tag, content.to_vec())
        });
        b = rest;
    }
    Ok(v)
}

/// Split one element off `b`: tag, content, the rest.
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "fixture certificate is not DER".to_string();
    let (&tag, b) = b.split_first().ok_or_else(bad)?;
    let (&l0, mut b) = b.split_first().ok_or_else(bad)?;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 3 || b.len() < n {
            return Err(bad());
        }
        let mut len = 0usize;
        for &x in &b[..n] {
            len = len << 8 | usize::from(x);
        }
        b = &b[n..];
        len
    };
    if b.len() < len {
        return Err(bad());
    }
    Ok((tag, &b[..len], &b[len..]))
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend([0x81, n as u8]),
        0x100..=0xffff => out.extend([0x82, (n >> 8) as u8, n as u8]),
        _ => out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
}

fn encode(d: &Der, out: &mut Vec<u8>) {
    match d {
        Der::Prim(t, c) => {
            out.push(*t);
            put_len(out, c.len());
            out.extend_from_slice(c);
        }
        Der::Cons(t, kids) => {
            let mut inner = Vec::new();
            for k in kids {
                encode(k, &mut inner);
            }
            out.push(*t);
            put_len(out, inner.len());
            out.extend_from_slice(&inner);
        }
    }
}

/// `base` with a subject key identifier of `ski` bytes and the serial
/// number cut to its first `serial` bytes.
fn build(base: &[u8], ski: usize, serial: usize) -> Result<Vec<u8>, String> {
    let bad = |w: &str| format!("fixture certificate: {w}");
    let mut top = parse(base)?;
    let Some(Der::Cons(0x30, cert)) = top.first_mut() else {
        return Err(bad("no Certificate SEQUENCE"));
    };
    let Some(Der::Cons(0x30, tbs)) = cert.first_mut() else {
        return Err(bad("no TBSCertificate"));
    };
    // TBSCertificate: [0] version, serialNumber, ...
    match tbs.get_mut(1) {
        Some(Der::Prim(0x02, s)) if s.len() >= serial && serial > 0 => s.truncate(serial),
        _ => return Err(bad("serial number")),
    }
    let mut done = false;
    for part in tbs.iter_mut() {
        let Der::Cons(0xa3, exts) = part else {
            continue;
        };
        let Some(Der::Cons(0x30, list)) = exts.first_mut() else {
            return Err(bad("extensions"));
        };
        for e in list.iter_mut() {
            let Der::Cons(0x30, fields) = e else {
                continue;
            };
            let is_ski =
                matches!(fields.first(), Some(Der::Prim(0x06, oid)) if oid == &[0x55, 0x1d, 0x0e]);
            if let (true, Some(Der::Prim(0x04, value))) = (is_ski, fields.last_mut()) {
                let fill: Vec<u8> = (0..ski)
                    .map(|i| (i as u8).wrapping_mul(37) ^ 0x5a)
                    .collect();
                value.clear();
                encode(&Der::Prim(0x04, fill), value);
                done = true;
            }
        }
    }
    if !done {
        return Err(bad("no subject key identifier"));
    }
    let mut out = Vec::with_capacity(base.len() + ski);
    encode(&top[0], &mut out);
    Ok(out)
}
