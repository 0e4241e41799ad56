//! WebSocket frame headers (RFC 6455 §5.2): building them, and checking a
//! received one. The payload is not touched here; [`apply_mask`] XORs it
//! with the masking key (§5.3). No-panic rule: [`parse_header`] reads any
//! byte slice, asking for more when the header is incomplete.

/// Opcodes (RFC 6455 §5.2, §11.8).
pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Close status codes (RFC 6455 §7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;

/// Longest header: 2 + 8 extended length + 4 masking key.
pub const MAX_HEADER_LEN: usize = 14;
/// Longest control frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header took.
    pub header_len: usize,
}

/// Why a header is not acceptable; each maps to a close status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// RSV1–3 set with no extension negotiated (§5.2).
    Reserved,
    /// Opcode 0x3–0x7 or 0xB–0xF (§5.2).
    Opcode,
    /// Control frame fragmented or longer than 125 bytes (§5.5).
    Control,
    /// 64-bit length with the top bit set, or a length not in the minimal
    /// number of bytes (§5.2).
    Length,
}

impl HeaderError {
    /// What went wrong, for [`crate::transport::layer::LayerError`].
    pub fn what(self) -> &'static str {
        match self {
            HeaderError::Reserved => "websocket: reserved bits set",
            HeaderError::Opcode => "websocket: reserved opcode",
            HeaderError::Control => "websocket: control frame fragmented or over 125 bytes",
            HeaderError::Length => "websocket: bad payload length encoding",
        }
    }
}

/// Header length for a `len`-byte payload: 2, 4 or 10 bytes, plus 4 for
/// the masking key when `masked` (§5.2).
pub fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    base + if masked { 4 } else { 0 }
}

/// Append a header for a `len`-byte payload.
pub fn write_header(out: &mut Vec<u8>, fin: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(m | len as u8),
        126..=65_535 => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}

/// XOR `data` with `key`, `offset` bytes into the payload (§5.3): the
/// same call masks and unmasks.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) % 4) as usize];
    }
}

/// Parse the header at the start of `b`: `Ok(None)` when more bytes are
/// needed, an error for a header no payload can make valid.
pub fn parse_header(b: &[u8]) -> Result<Option<FrameHeader>, HeaderError> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(HeaderError::Reserved);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    let control = opcode & 0x08 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(HeaderError::Opcode),
    }
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if control && (!fin || len7 > 125) {
        return Err(HeaderError::Control);
    }
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext + if masked { 4 } else { 0 };
    let Some(h) = b.get(..header_len) else {
        return Ok(None);
    };
    let payload_len = match ext {
        2 => {
            let n = u64::from(u16::from_be_bytes([h[2], h[3]]));
            if n < 126 {
                return Err(HeaderError::Length);
            }
            n
        }
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[2..10]);
            let n = u64::from_be_bytes(a);
            if n >> 63 != 0 || n <= 65_535 {
                return Err(HeaderError::Length);
            }
            n
        }
        _ => u64::from(len7),
    };
    let mask = masked.then(|| {
        let k = &h[header_len - 4..header_len];
        [k[0], k[1], k[2], k[3]]
    });
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
        header_len,
    }))
}
