//! The opening handshake (RFC 6455 §4): the client's HTTP/1.1 GET with the
//! upgrade headers, the server's `101 Switching Protocols`, and a small
//! parser for either head (start line and header fields, RFC 9112 §2–5).
//! Header names compare case-insensitively (RFC 9110 §5.1); list-valued
//! fields (`Connection`, `Upgrade`, `Sec-WebSocket-Protocol`) are split on
//! commas (RFC 9110 §5.6.1).

/// Longest request or response head accepted; a peer that sends more
/// without the blank line is malformed.
pub const MAX_HEAD: usize = 8192;

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The start line, without its CRLF.
    pub start: String,
    /// Header fields in order, names as sent.
    pub fields: Vec<(String, String)>,
}

impl Head {
    /// The values of field `name` (any case), joined with ", " when it
    /// appears more than once.
    pub fn get(&self, name: &str) -> Option<String> {
        let v: Vec<&str> = self
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join(", "))
    }

    /// Whether list field `name` contains `token` (any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Where the head in `buf` ends (just past the blank line), if it is
/// complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parse a complete head (`buf` up to and including the blank line).
pub fn parse_head(buf: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(buf).map_err(|_| "websocket: HTTP head is not text")?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let mut fields = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or("websocket: HTTP header line without a colon")?;
        if name.is_empty() || name.bytes().any(|c| c <= b' ' || c >= 0x7F) {
            return Err("websocket: bad HTTP header name");
        }
        fields.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Head { start, fields })
}

/// Append a head: start line, `fields`, then the configured `extra`
/// fields, blank line.
pub fn write_head(
    out: &mut Vec<u8>,
    start: &str,
    fields: &[(&str, &str)],
    extra: &[(String, String)],
) {
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    let extra = extra.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    for (n, v) in fields.iter().copied().chain(extra) {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
