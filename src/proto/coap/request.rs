//! Client requests as the application states them, and their encoding
//! (RFC 7252 §5.8, §6.4).

use super::block::BlockOptions;
use super::code::{MessageType, Method};
use super::codec::{write_header, write_payload, CodecError, OptionWriter, Token};
use super::option::{encode_uint, OptionNumber};

/// Identifies one request made with
/// [`Endpoint::request`](super::Endpoint::request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestHandle(pub u64);

/// A request as the application states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// GET, POST, PUT or DELETE (§5.8).
    pub method: Method,
    /// CON (true) or NON (false) (§4.2, §4.3).
    pub confirmable: bool,
    /// Path like `building/xyz/room/120/temperature`; a leading `/` is
    /// dropped, each `/`-separated segment becomes one Uri-Path (§6.4).
    pub path: String,
    /// Uri-Host (§5.10.1), when the server needs it.
    pub host: Option<String>,
    /// Uri-Port (§5.10.1).
    pub port: Option<u16>,
    /// Each entry becomes one Uri-Query option.
    pub query: Vec<String>,
    /// Content-Format of the payload (§5.10.3), e.g. 0 = text/plain.
    pub content_format: Option<u16>,
    /// Request body (PUT/POST).
    pub payload: Vec<u8>,
    /// ETag (RFC 7252 §5.10.6.2: the validators a GET offers), 1–8 bytes;
    /// empty: none.
    pub etag: Vec<u8>,
    /// Observe (RFC 7641 §2): 0 registers, 1 deregisters.
    pub observe: Option<u32>,
    /// Proxy-Uri (RFC 7252 §5.10.2): the absolute URI a forward proxy is
    /// asked to request; `None`: not sent.
    pub proxy_uri: Option<String>,
    /// Proxy-Scheme (§5.10.2): with Uri-Host/Port/Path/Query, the URI a
    /// forward proxy is asked to request; `None`: not sent.
    pub proxy_scheme: Option<String>,
    /// Block1/Block2/Size1/Size2 (RFC 7959), set by a
    /// [`BlockTransfer`](super::block::BlockTransfer); none by default.
    pub block: BlockOptions,
}

impl Request {
    /// A confirmable request with no payload.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Request {
            method,
            confirmable: true,
            path: path.into(),
            host: None,
            port: None,
            query: Vec::new(),
            content_format: None,
            payload: Vec::new(),
            etag: Vec::new(),
            observe: None,
            proxy_uri: None,
            proxy_scheme: None,
            block: BlockOptions::NONE,
        }
    }
    /// Confirmable GET.
    pub fn get(path: impl Into<String>) -> Self {
        Request::new(Method::Get, path)
    }
    /// Confirmable PUT of `payload` (Content-Format 0, text/plain).
    pub fn put(path: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Request {
            payload: payload.into(),
            content_format: Some(0),
            ..Request::new(Method::Put, path)
        }
    }
    /// Builder: CON (`true`) or NON (`false`).
    pub fn confirmable(mut self, con: bool) -> Self {
        self.confirmable = con;
        self
    }
}

/// Encode a request with message ID 0 (patched when it is sent) into `out`
/// (cleared first; a recycled buffer avoids an allocation).
pub(crate) fn encode_request(
    req: &Request,
    token: Token,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, CodecError> {
    out.clear();
    out.reserve(16 + req.path.len() + req.payload.len());
    let ty = if req.confirmable {
        MessageType::Con
    } else {
        MessageType::Non
    };
    write_header(&mut out, ty, req.method.code(), 0, &token);
    let mut w = OptionWriter::new();
    let checked = |number: OptionNumber, v: &[u8]| -> Result<(), CodecError> {
        match number.spec() {
            Some((_, lo, hi)) if v.len() < lo || v.len() > hi => {
                Err(CodecError::OptionValueLength {
                    number: number.0,
                    len: v.len(),
                    min: lo,
                    max: hi,
                })
            }
            _ => Ok(()),
        }
    };
    let uint =
        |w: &mut OptionWriter, out: &mut Vec<u8>, number: OptionNumber, v: Option<u32>| match v {
            Some(v) => {
                let (b, n) = encode_uint(u64::from(v));
                w.push(out, number.0, &b[8 - n..])
            }
            None => Ok(()),
        };
    if let Some(h) = &req.host {
        checked(OptionNumber::URI_HOST, h.as_bytes())?;
        w.push(&mut out, OptionNumber::URI_HOST.0, h.as_bytes())?;
    }
    if !req.etag.is_empty() {
        checked(OptionNumber::ETAG, &req.etag)?;
        w.push(&mut out, OptionNumber::ETAG.0, &req.etag)?;
    }
    uint(
        &mut w,
        &mut out,
        OptionNumber::OBSERVE,
        req.observe.map(|v| v & 0xff_ffff),
    )?;
    if let Some(p) = req.port {
        let (b, n) = encode_uint(u64::from(p));
        w.push(&mut out, OptionNumber::URI_PORT.0, &b[8 - n..])?;
    }
    let path = req.path.strip_prefix('/').unwrap_or(&req.path);
    if !path.is_empty() {
        for seg in path.split('/') {
            checked(OptionNumber::URI_PATH, seg.as_bytes())?;
            w.push(&mut out, OptionNumber::URI_PATH.0, seg.as_bytes())?;
        }
    }
    if let Some(cf) = req.content_format {
        let (b, n) = encode_uint(u64::from(cf));
        w.push(&mut out, OptionNumber::CONTENT_FORMAT.0, &b[8 - n..])?;
    }
    for q in &req.query {
        checked(OptionNumber::URI_QUERY, q.as_bytes())?;
        w.push(&mut out, OptionNumber::URI_QUERY.0, q.as_bytes())?;
    }
    // Block2 23, Block1 27, Size2 28 | Proxy-Uri 35, Proxy-Scheme 39 | Size1 60
    req.block
        .write_range(&mut out, &mut w, 0, OptionNumber::PROXY_URI.0)?;
    for (number, v) in [
        (OptionNumber::PROXY_URI, &req.proxy_uri),
        (OptionNumber::PROXY_SCHEME, &req.proxy_scheme),
    ] {
        if let Some(v) = v {
            checked(number, v.as_bytes())?;
            w.push(&mut out, number.0, v.as_bytes())?;
        }
    }
    req.block
        .write_range(&mut out, &mut w, OptionNumber::PROXY_URI.0, u16::MAX)?;
    write_payload(&mut out, &req.payload);
    Ok(out)
}
