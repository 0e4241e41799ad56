//! HTTP/1.1 (RFC 9112) message framing, the part a telemetry baseline
//! needs: a client POSTs each reading as one request with a
//! `Content-Length` body, a server answers each with a status line. Real
//! bytes, so overhead comparisons with CoAP and MQTT are byte-accurate and
//! tshark dissects every message.
//!
//! What is built: encoding a POST request (request line, Host,
//! Content-Type, Content-Length, optionally `Connection: close`) and a
//! response (status line, Content-Length or none for 204/304/1xx,
//! optionally `Connection: close`); [`Parser`], an incremental parser of a
//! byte stream into requests or responses, bodies framed by
//! `Content-Length` (RFC 9112 §6.3). Not built: chunked transfer coding
//! (a `Transfer-Encoding` header is a [`ParseError::Unsupported`], answered
//! 501 by a server), pipelining beyond parsing back-to-back messages,
//! trailers, obsolete line folding (an error, §5.2).

use std::fmt;

pub mod conn;
pub use conn::{ClientConn, Responses, ServerConn, CONTENT_TYPE};

/// Longest head (start line and header fields) accepted: 8 KiB, the
/// common server default.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest body accepted (16 MiB).
pub const MAX_BODY: usize = 16 << 20;

/// Why a byte stream is not HTTP/1.1 this model accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("malformed start line: {0}")]
    StartLine(String),
    #[error("malformed header field: {0}")]
    Header(String),
    #[error("bad Content-Length: {0}")]
    ContentLength(String),
    #[error("body of {0} bytes is larger than {MAX_BODY}")]
    BodyTooLarge(usize),
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// What a parser expects on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Requests (a server's parser).
    Requests,
    /// Responses (a client's parser).
    Responses,
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request: method, target; response: status code, reason.
    pub start: Start,
    pub version: Version,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes the message took on the stream (head and body).
    pub wire_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Request { method: String, target: String },
    Response { status: u16, reason: String },
}

/// HTTP/1.0 or HTTP/1.1 (the only versions with this framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

impl Message {
    /// The first header field named `name` (case-insensitive, §5.1).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after this message (§9.3):
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let tokens = |want: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(want))
        };
        match self.version {
            Version::Http11 => !tokens("close"),
            Version::Http10 => tokens("keep-alive"),
        }
    }
}

/// Append a POST request for `target` on `host` carrying `body` to `out`.
/// `close`: ask the server to close the connection after its response.
pub fn encode_post(
    out: &mut Vec<u8>,
    host: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) {
    use std::io::Write;
    let _ = write!(
        out,
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Append a response with `status` and `body` to `out`. 1xx, 204 and 304
/// carry neither a body nor Content-Length (RFC 9110 §8.6, §15.3.5).
pub fn encode_response(out: &mut Vec<u8>, status: u16, body: &[u8], close: bool) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if has_body(status) {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if has_body(status) {
        out.extend_from_slice(body);
    }
}

/// Whether a response with `status` has a body (and so Content-Length).
fn has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// The reason phrase this model sends for `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

/// The status a server answers a request that failed to parse with.
pub fn error_status(e: &ParseError) -> u16 {
    match e {
        ParseError::HeadTooLong => 431,
        ParseError::BodyTooLarge(_) => 413,
        ParseError::Unsupported(_) => 501,
        _ => 400,
    }
}

/// An incremental parser of one direction of a connection: feed bytes as
/// they arrive, take whole messages out. After an error the stream cannot
/// be resynchronised (the connection must close).
#[derive(Debug)]
pub struct Parser {
    side: Side,
    buf: Vec<u8>,
    failed: bool,
}

impl Parser {
    pub fn new(side: Side) -> Self {
        Parser {
            side,
            buf: Vec::new(),
            failed: false,
        }
    }

    /// Append received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held that are not a whole message yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ParseError> {
        if self.failed {
            return Ok(None);
        }
        match parse(self.side, &self.buf) {
            Ok(Some(m)) => {
                self.buf.drain(..m.wire_len);
                Ok(Some(m))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = true;
                self.buf = Vec::new();
                Err(e)
            }
        }
    }
}

/// Parse one message at the start of `buf`: `Ok(None)` when it is not
/// complete yet.
pub fn parse(side: Side, buf: &[u8]) -> Result<Option<Message>, ParseError> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(ParseError::HeadTooLong);
        }
        return Ok(None);
    };
    if head_end + 4 > MAX_HEAD {
        return Err(ParseError::HeadTooLong);
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ParseError::Header("not ASCII/UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let (start, version) = parse_start(side, first)?;
    let mut headers = Vec::new();
    for l in lines {
        if l.starts_with([' ', '\t']) {
            return Err(ParseError::Header(format!("obsolete line folding: {l:?}")));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(ParseError::Header(format!("no colon: {l:?}")));
        };
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(ParseError::Header(format!("bad field name {name:?}")));
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(ParseError::Unsupported("Transfer-Encoding".into()));
    }
    let mut length: Option<usize> = None;
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case("content-length") {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 12 {
                return Err(ParseError::ContentLength(v.clone()));
            }
            let l: usize = v
                .parse()
                .map_err(|_| ParseError::ContentLength(v.clone()))?;
            if length.is_some_and(|x| x != l) {
                return Err(ParseError::ContentLength("differing values".into()));
            }
            length = Some(l);
        }
    }
    let body_len = match &start {
        Start::Response { status, .. } if !has_body(*status) => 0,
        // a response without Content-Length runs to the close: not
        // supported on a persistent connection
        Start::Response { .. } if length.is_none() => {
            return Err(ParseError::Unsupported(
                "response without Content-Length".into(),
            ))
        }
        _ => length.unwrap_or(0),
    };
    if body_len > MAX_BODY {
        return Err(ParseError::BodyTooLarge(body_len));
    }
    let total = head_end + 4 + body_len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Message {
        start,
        version,
        headers,
        body: buf[head_end + 4..total].to_vec(),
        wire_len: total,
    }))
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_version(v: &str) -> Option<Version> {
    match v {
        "HTTP/1.1" => Some(Version::Http11),
        "HTTP/1.0" => Some(Version::Http10),
        _ => None,
    }
}

fn parse_start(side: Side, line: &str) -> Result<(Start, Version), ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(80).collect());
    match side {
        Side::Requests => {
            let mut it = line.split(' ');
            let (Some(m), Some(t), Some(v), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            if m.is_empty() || !m.bytes().all(is_tchar) || t.is_empty() {
                return Err(bad());
            }
            let version = parse_version(v).ok_or_else(bad)?;
            Ok((
                Start::Request {
                    method: m.to_string(),
                    target: t.to_string(),
                },
                version,
            ))
        }
        Side::Responses => {
            let (v, rest) = line.split_once(' ').ok_or_else(bad)?;
            let version = parse_version(v).ok_or_else(bad)?;
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let status: u16 = code.parse().map_err(|_| bad())?;
            if !(100..600).contains(&status) {
                return Err(bad());
            }
            Ok((
                Start::Response {
                    status,
                    reason: reason.to_string(),
                },
                version,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_round_trips_byte_for_byte() {
        let mut b = Vec::new();
        encode_post(
            &mut b,
            "collector",
            "/plant/t",
            "application/octet-stream",
            b"\x01\x02abc",
            false,
        );
        assert_eq!(
            b,
            b"POST /plant/t HTTP/1.1\r\nHost: collector\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n\x01\x02abc"
        );
        let m = parse(Side::Requests, &b).unwrap().unwrap();
        assert_eq!(
            m.start,
            Start::Request {
                method: "POST".into(),
                target: "/plant/t".into()
            }
        );
        assert_eq!(m.body, b"\x01\x02abc");
        assert_eq!(m.wire_len, b.len());
        assert!(m.keep_alive());
        assert_eq!(m.header("content-length"), Some("5"));
    }

    #[test]
    fn responses_frame_as_rfc_9110_says() {
        let mut b = Vec::new();
        encode_response(&mut b, 204, b"", false);
        assert_eq!(b, b"HTTP/1.1 204 No Content\r\n\r\n");
        let mut c = Vec::new();
        encode_response(&mut c, 400, b"no", true);
        assert_eq!(
            c,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
        );
        let mut p = Parser::new(Side::Responses);
        b.extend_from_slice(&c);
        // byte by byte: nothing before each message is whole
        let mut got = Vec::new();
        for x in &b {
            p.feed(std::slice::from_ref(x));
            while let Some(m) = p.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(got[0].keep_alive());
        assert!(!got[1].keep_alive());
        assert_eq!(got[1].body, b"no");
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let cases: [&[u8]; 9] = [
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/2\r\n\r\n",
            b"POST  HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        ];
        for c in cases {
            assert!(
                parse(Side::Requests, c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        assert!(parse(Side::Responses, b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse(Side::Responses, b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        let long = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse(Side::Requests, &long), Err(ParseError::HeadTooLong));
        // a failed parser stays failed and holds nothing
        let mut p = Parser::new(Side::Requests);
        p.feed(b"GARBAGE\r\n\r\nPOST / HTTP/1.1\r\n\r\n");
        assert!(p.next_message().is_err());
        assert_eq!(p.next_message(), Ok(None));
        assert_eq!(error_status(&ParseError::Unsupported("x".into())), 501);
    }

    #[test]
    fn http_1_0_closes_unless_keep_alive() {
        let m = parse(Side::Requests, b"POST / HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!m.keep_alive());
        let m = parse(
            Side::Requests,
            b"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(m.keep_alive());
    }
}
