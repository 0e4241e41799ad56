//! CoAP message codec (RFC 7252 §3).
//!
//! Two layers, after smoltcp's `wire` (DESIGN.md convention 4):
//!
//! * [`MessageRef`] is a checked, borrowed view: [`MessageRef::parse`]
//!   validates the whole datagram once (header, token length, every option
//!   header, payload marker) and then hands out the token, an option iterator
//!   and the payload as slices of the input, without allocating. The endpoint
//!   uses only this form on the receive path.
//! * [`Message`] is the owned form for building and for tests: typed options
//!   ([`CoapOption`]) kept sorted by number (stable for repeated options),
//!   with [`Message::parse`], [`Message::buffer_len`] and [`Message::emit`].
//!   `parse(emit(m)) == m` for every message `emit` accepts.
//!
//! No-panic rule: nothing in this module indexes or slices input-derived data
//! without a prior length check, and no arithmetic on input-derived values can
//! overflow; every malformed datagram yields a [`CodecError`] naming what is
//! wrong and at which byte offset. The fuzz-style property test in
//! `tests/coap_codec.rs` feeds arbitrary bytes to both parsers.

use thiserror::Error;

use super::code::{Code, MessageType};
use super::option::CoapOption;

/// The only protocol version RFC 7252 defines (§3).
pub const VERSION: u8 = 1;
/// The payload marker (§3).
pub const PAYLOAD_MARKER: u8 = 0xFF;
/// Largest option value length the extended-length forms can express
/// (14: 2 bytes + 269, §3.1).
pub const MAX_OPTION_LEN: usize = 65535 + 269;

/// A decode or encode error. Offsets are byte positions in the datagram.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("datagram of {len} bytes is shorter than the 4-byte CoAP header (RFC 7252 §3)")]
    TooShort { len: usize },
    /// Messages with an unknown version are silently ignored (§3).
    #[error("unknown CoAP version {version} (RFC 7252 §3 defines 1)")]
    UnknownVersion { version: u8 },
    #[error("token length {tkl} is reserved (RFC 7252 §3: 9–15 are a message format error)")]
    TokenLength { tkl: u8 },
    #[error("token of {tkl} bytes runs past the end of a {len}-byte datagram")]
    TruncatedToken { tkl: u8, len: usize },
    #[error("option at byte {at}: reserved nibble 15 in the {field} field (RFC 7252 §3.1)")]
    ReservedNibble { at: usize, field: &'static str },
    #[error("option at byte {at}: extended {field} runs past the end of the datagram")]
    TruncatedOptionHeader { at: usize, field: &'static str },
    #[error("option at byte {at}: value of {len} bytes runs past the end of the datagram")]
    TruncatedOptionValue { at: usize, len: usize },
    #[error("option at byte {at}: option number exceeds 65535")]
    OptionNumberOverflow { at: usize },
    #[error("payload marker at byte {at} followed by an empty payload (RFC 7252 §3)")]
    EmptyPayload { at: usize },
    #[error("Empty message (code 0.00) with {len} bytes after the header (RFC 7252 §4.1)")]
    EmptyMessageWithContent { len: usize },
    #[error("option {number}: value of {len} bytes is outside the allowed {min}..={max} (RFC 7252 §5.10)")]
    OptionValueLength {
        number: u16,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("token of {len} bytes is longer than 8 (RFC 7252 §3)")]
    TokenTooLong { len: usize },
}

/// A token of 0–8 bytes (RFC 7252 §5.3.1), stored inline (`Copy`, no heap).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    /// The empty token.
    pub const EMPTY: Token = Token {
        len: 0,
        bytes: [0; 8],
    };

    /// A token from up to 8 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > 8 {
            return Err(CodecError::TokenTooLong { len: bytes.len() });
        }
        let mut t = Token {
            len: bytes.len() as u8,
            bytes: [0; 8],
        };
        t.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(t)
    }
    /// The token bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(8)]
    }
    /// Length in bytes (TKL).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// True for the zero-length token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The fixed 4-byte header (RFC 7252 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: MessageType,
    pub tkl: u8,
    pub code: Code,
    pub message_id: u16,
}

impl Header {
    /// Read only the 4-byte header, e.g. to decide how to reject a message
    /// whose remainder is malformed (RFC 7252 §4.2).
    pub fn peek(bytes: &[u8]) -> Result<Header, CodecError> {
        let [b0, code, m0, m1, ..] = *bytes else {
            return Err(CodecError::TooShort { len: bytes.len() });
        };
        let version = b0 >> 6;
        if version != VERSION {
            return Err(CodecError::UnknownVersion { version });
        }
        Ok(Header {
            ty: MessageType::from_bits(b0 >> 4),
            tkl: b0 & 0x0f,
            code: Code(code),
            message_id: u16::from_be_bytes([m0, m1]),
        })
    }
}

/// One option as it appears on the wire: number and value bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawOption<'a> {
    pub number: u16,
    pub value: &'a [u8],
}

/// Read an option's delta or length given its nibble; returns (value, bytes
/// consumed after the option's first byte).
fn read_ext(
    nibble: u8,
    rest: &[u8],
    at: usize,
    field: &'static str,
) -> Result<(usize, usize), CodecError> {
    match nibble {
        0..=12 => Ok((usize::from(nibble), 0)),
        13 => match rest.first() {
            Some(b) => Ok((usize::from(*b) + 13, 1)),
            None => Err(CodecError::TruncatedOptionHeader { at, field }),
        },
        14 => match rest {
            [a, b, ..] => Ok((usize::from(u16::from_be_bytes([*a, *b])) + 269, 2)),
            _ => Err(CodecError::TruncatedOptionHeader { at, field }),
        },
        _ => Err(CodecError::ReservedNibble { at, field }),
    }
}

/// Decode one option starting at `data[pos]` (which is not the payload
/// marker). Returns the option and the position after it.
fn decode_option(
    data: &[u8],
    pos: usize,
    prev: u16,
    base: usize,
) -> Result<(RawOption<'_>, usize), CodecError> {
    let at = base + pos;
    let rest = data.get(pos..).unwrap_or(&[]);
    let Some((&first, mut tail)) = rest.split_first() else {
        return Err(CodecError::TruncatedOptionHeader {
            at,
            field: "header",
        });
    };
    let (delta, used) = read_ext(first >> 4, tail, at, "delta")?;
    tail = tail.get(used..).unwrap_or(&[]);
    let (len, used2) = read_ext(first & 0x0f, tail, at, "length")?;
    tail = tail.get(used2..).unwrap_or(&[]);
    let number = usize::from(prev) + delta;
    let number = u16::try_from(number).map_err(|_| CodecError::OptionNumberOverflow { at })?;
    let value = tail
        .get(..len)
        .ok_or(CodecError::TruncatedOptionValue { at, len })?;
    Ok((RawOption { number, value }, pos + 1 + used + used2 + len))
}

/// Length of the payload of a well-formed encoded message (after the
/// payload marker), found by skipping the option headers without decoding
/// them; 0 when there is none or the bytes are malformed. For drivers that
/// label what they send.
pub fn payload_len(bytes: &[u8]) -> usize {
    let Some(&b0) = bytes.first() else {
        return 0;
    };
    let mut pos = 4 + usize::from(b0 & 0x0f);
    while let Some(&b) = bytes.get(pos) {
        if b == PAYLOAD_MARKER {
            return bytes.len() - pos - 1;
        }
        let ext = |n: u8| match n {
            13 => Some(1),
            14 => Some(2),
            15 => None,
            _ => Some(0),
        };
        let (Some(de), Some(le)) = (ext(b >> 4), ext(b & 0x0f)) else {
            return 0;
        };
        let at = pos + 1 + de;
        let len = match b & 0x0f {
            13 => bytes.get(at).map(|&x| usize::from(x) + 13),
            14 => bytes
                .get(at..at + 2)
                .map(|x| usize::from(u16::from_be_bytes([x[0], x[1]])) + 269),
            n => Some(usize::from(n)),
        };
        let Some(len) = len else {
            return 0;
        };
        pos = at + le + len;
    }
    0
}

/// Iterator over the options of a parsed [`MessageRef`], in wire order (which
/// RFC 7252 §3.1 makes ascending by number).
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    prev: u16,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = RawOption<'a>;
    fn next(&mut self) -> Option<RawOption<'a>> {
        if self.pos >= self.data.len() {
            return None;
        }
        // Already validated by `MessageRef::parse`; an error here ends the walk.
        let (opt, next) = decode_option(self.data, self.pos, self.prev, 0).ok()?;
        self.pos = next;
        self.prev = opt.number;
        Some(opt)
    }
}

/// A checked, borrowed view of one CoAP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef<'a> {
    pub ty: MessageType,
    pub code: Code,
    pub message_id: u16,
    pub token: Token,
    /// The validated option bytes (between token and payload marker).
    options: &'a [u8],
    /// The payload (empty when there is no payload marker).
    pub payload: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// Validate a whole datagram (RFC 7252 §3) and return a view of it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let h = Header::peek(bytes)?;
        if h.tkl > 8 {
            return Err(CodecError::TokenLength { tkl: h.tkl });
        }
        let tkl = usize::from(h.tkl);
        let token_bytes = bytes.get(4..4 + tkl).ok_or(CodecError::TruncatedToken {
            tkl: h.tkl,
            len: bytes.len(),
        })?;
        let token = Token::new(token_bytes)?;
        let start = 4 + tkl;
        let rest = bytes.get(start..).unwrap_or(&[]);
        // RFC 7252 §4.1: an Empty message has TKL 0 and nothing after the ID.
        if h.code.is_empty() && (tkl != 0 || !rest.is_empty()) {
            return Err(CodecError::EmptyMessageWithContent {
                len: bytes.len() - 4,
            });
        }
        let mut pos = 0;
        let mut prev = 0u16;
        let mut payload: &[u8] = &[];
        let mut options_end = rest.len();
        while let Some(&b) = rest.get(pos) {
            if b == PAYLOAD_MARKER {
                payload = rest.get(pos + 1..).unwrap_or(&[]);
                if payload.is_empty() {
                    // RFC 7252 §3: marker followed by a zero-length payload.
                    return Err(CodecError::EmptyPayload { at: start + pos });
                }
                options_end = pos;
                break;
            }
            let (opt, next) = decode_option(rest, pos, prev, start)?;
            prev = opt.number;
            pos = next;
        }
        Ok(MessageRef {
            ty: h.ty,
            code: h.code,
            message_id: h.message_id,
            token,
            options: rest.get(..options_end).unwrap_or(&[]),
            payload,
        })
    }

    /// The options, ascending by number.
    pub fn options(&self) -> OptionIter<'a> {
        OptionIter {
            data: self.options,
            pos: 0,
            prev: 0,
        }
    }

    /// The first option with this number.
    pub fn option(&self, number: u16) -> Option<&'a [u8]> {
        self.options().find(|o| o.number == number).map(|o| o.value)
    }

    /// Content-Format (§5.10.3) if present and well-formed.
    pub fn content_format(&self) -> Option<u16> {
        self.option(12)
            .filter(|v| v.len() <= 2)
            .and_then(super::option::decode_uint)
            .and_then(|v| u16::try_from(v).ok())
    }

    /// Append the Uri-Path segments joined by `/` to `out` (§6.5 step 8;
    /// segments are not percent-encoded here).
    pub fn write_path(&self, out: &mut String) {
        let mut first = true;
        for o in self.options().filter(|o| o.number == 11) {
            if !first {
                out.push('/');
            }
            first = false;
            out.push_str(&String::from_utf8_lossy(o.value));
        }
    }

    /// The owned form.
    pub fn to_message(&self) -> Message {
        Message {
            ty: self.ty,
            code: self.code,
            message_id: self.message_id,
            token: self.token,
            options: self
                .options()
                .map(|o| CoapOption::from_raw(o.number, o.value))
                .collect(),
            payload: self.payload.to_vec(),
        }
    }
}

/// Writes options in ascending order, computing deltas (RFC 7252 §3.1).
/// Callers must push numbers in non-decreasing order; a smaller number is
/// written with delta 0 (the caller's bug, never a panic).
#[derive(Debug, Default)]
pub struct OptionWriter {
    prev: u16,
}

fn nibble(v: usize) -> (u8, [u8; 2], usize) {
    if v < 13 {
        (v as u8, [0, 0], 0)
    } else if v < 269 {
        (13, [(v - 13) as u8, 0], 1)
    } else {
        let e = ((v - 269).min(65535) as u16).to_be_bytes();
        (14, e, 2)
    }
}

/// Encoded size of one option header plus value.
pub fn option_len(delta: usize, len: usize) -> usize {
    1 + nibble(delta).2 + nibble(len).2 + len
}

impl OptionWriter {
    /// A writer starting at option number 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Append option `number` with `value` to `out`.
    pub fn push(&mut self, out: &mut Vec<u8>, number: u16, value: &[u8]) -> Result<(), CodecError> {
        if value.len() > MAX_OPTION_LEN {
            return Err(CodecError::OptionValueLength {
                number,
                len: value.len(),
                min: 0,
                max: MAX_OPTION_LEN,
            });
        }
        let delta = usize::from(number.saturating_sub(self.prev));
        let (dn, de, dl) = nibble(delta);
        let (ln, le, ll) = nibble(value.len());
        out.push((dn << 4) | ln);
        out.extend_from_slice(&de[..dl]);
        out.extend_from_slice(&le[..ll]);
        out.extend_from_slice(value);
        self.prev = self.prev.max(number);
        Ok(())
    }
}

/// Append the 4-byte header and the token (RFC 7252 §3).
pub fn write_header(
    out: &mut Vec<u8>,
    ty: MessageType,
    code: Code,
    message_id: u16,
    token: &Token,
) {
    out.push((VERSION << 6) | (ty.bits() << 4) | token.len() as u8);
    out.push(code.0);
    out.extend_from_slice(&message_id.to_be_bytes());
    out.extend_from_slice(token.as_slice());
}

/// Append the payload marker and payload, if the payload is non-empty (§3).
pub fn write_payload(out: &mut Vec<u8>, payload: &[u8]) {
    if !payload.is_empty() {
        out.push(PAYLOAD_MARKER);
        out.extend_from_slice(payload);
    }
}

/// An owned CoAP message for building and inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub ty: MessageType,
    pub code: Code,
    pub message_id: u16,
    pub token: Token,
    /// Sorted by number, stable for repeated options (private to keep it so).
    options: Vec<CoapOption>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A message without options or payload.
    pub fn new(ty: MessageType, code: Code, message_id: u16, token: Token) -> Self {
        Message {
            ty,
            code,
            message_id,
            token,
            options: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// An Empty message (ACK, RST or CoAP ping) with this ID (§4.1).
    pub fn empty(ty: MessageType, message_id: u16) -> Self {
        Message::new(ty, Code::EMPTY, message_id, Token::EMPTY)
    }

    /// Insert an option after any options with a number ≤ its own, so the
    /// list stays sorted and repeated options keep their order (§5.4.5).
    /// `Other` options holding a value a known option accepts are re-typed.
    pub fn add_option(&mut self, opt: CoapOption) -> &mut Self {
        let opt = opt.canonical();
        let n = opt.number();
        let at = self.options.partition_point(|o| o.number() <= n);
        self.options.insert(at, opt);
        self
    }

    /// Builder form of [`Message::add_option`].
    pub fn with_option(mut self, opt: CoapOption) -> Self {
        self.add_option(opt);
        self
    }

    /// Builder: set the payload.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }

    /// The options, sorted by number.
    pub fn options(&self) -> &[CoapOption] {
        &self.options
    }

    /// Parse a datagram into the owned form.
    pub fn parse(bytes: &[u8]) -> Result<Message, CodecError> {
        MessageRef::parse(bytes).map(|m| m.to_message())
    }

    /// Exact encoded size in bytes.
    pub fn buffer_len(&self) -> usize {
        let mut len = 4 + self.token.len();
        let mut prev = 0u16;
        for o in &self.options {
            let n = o.number().0;
            len += o.with_value(|v| option_len(usize::from(n.saturating_sub(prev)), v.len()));
            prev = n;
        }
        if !self.payload.is_empty() {
            len += 1 + self.payload.len();
        }
        len
    }

    /// Append the encoded message to `out` (which is not cleared). Fails,
    /// leaving `out` as it was, for values `parse` would not give back:
    /// typed option values outside their §5.10 length range, and an Empty
    /// message carrying a token, options or payload (§4.1).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if self.code.is_empty()
            && (!self.token.is_empty() || !self.options.is_empty() || !self.payload.is_empty())
        {
            return Err(CodecError::EmptyMessageWithContent {
                len: self.buffer_len() - 4,
            });
        }
        for o in &self.options {
            if matches!(o, CoapOption::Other { .. }) {
                continue;
            }
            if let Some((_, min, max)) = o.number().spec() {
                let len = o.with_value(<[u8]>::len);
                if len < min || len > max {
                    return Err(CodecError::OptionValueLength {
                        number: o.number().0,
                        len,
                        min,
                        max,
                    });
                }
            }
        }
        let start = out.len();
        out.reserve(self.buffer_len());
        write_header(out, self.ty, self.code, self.message_id, &self.token);
        let mut w = OptionWriter::new();
        for o in &self.options {
            if let Err(e) = o.with_value(|v| w.push(out, o.number().0, v)) {
                out.truncate(start);
                return Err(e);
            }
        }
        write_payload(out, &self.payload);
        Ok(())
    }

    /// Encode into a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v)?;
        Ok(v)
    }
}
