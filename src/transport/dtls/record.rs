//! DTLS 1.2 wire format (RFC 6347 §4.1 record layer, §4.2.2 handshake
//! message header). A checked parse of the bytes a datagram carries and the
//! matching emitters; nothing here panics on input: every length is checked
//! before it is used and a short or inconsistent buffer is an `Err` naming
//! the field.

/// Record header: type 1, version 2, epoch 2, sequence number 6, length 2.
pub const RECORD_HEADER_LEN: usize = 13;
/// Handshake message header: type 1, length 3, message_seq 2,
/// fragment_offset 3, fragment_length 3.
pub const HANDSHAKE_HEADER_LEN: usize = 12;
/// `ProtocolVersion` of DTLS 1.2 on the wire (RFC 6347 §4.1: {254, 253}).
pub const DTLS_1_2: u16 = 0xfefd;
/// DTLS 1.0 ({254, 255}): the version a HelloVerifyRequest carries
/// (RFC 6347 §4.2.1).
pub const DTLS_1_0: u16 = 0xfeff;
/// Largest record body a peer may send: 2^14 + 2048 (RFC 6347 §4.1 via
/// RFC 5246 §6.2.3).
pub const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// Largest sequence number: the field has 48 bits.
pub const MAX_SEQ: u64 = (1 << 48) - 1;

/// Record content types (RFC 5246 §6.2.1).
pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

/// Handshake message types (RFC 5246 §7.4, RFC 6347 §4.2.1).
pub mod hs {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const NEW_SESSION_TICKET: u8 = 4;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
}

/// One record as it stands in a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    pub version: u16,
    pub epoch: u16,
    /// 48-bit sequence number.
    pub seq: u64,
    /// The record body (`length` bytes): plaintext in epoch 0, explicit
    /// nonce + ciphertext + tag afterwards.
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// The first record of `buf` and what follows it. The content type
    /// must be one of RFC 5246's four and the version DTLS 1.0 or 1.2.
    pub fn parse(buf: &'a [u8]) -> Result<(Record<'a>, &'a [u8]), &'static str> {
        if buf.len() < RECORD_HEADER_LEN {
            return Err("record header truncated");
        }
        let content_type = buf[0];
        if !(content::CHANGE_CIPHER_SPEC..=content::APPLICATION_DATA).contains(&content_type) {
            return Err("record content type unknown");
        }
        let version = u16::from_be_bytes([buf[1], buf[2]]);
        if version != DTLS_1_2 && version != DTLS_1_0 {
            return Err("record version is not DTLS 1.0 or 1.2");
        }
        let epoch = u16::from_be_bytes([buf[3], buf[4]]);
        let seq = be48(&buf[5..11]);
        let len = usize::from(u16::from_be_bytes([buf[11], buf[12]]));
        if len > MAX_RECORD_BODY {
            return Err("record length over 2^14 + 2048");
        }
        let rest = &buf[RECORD_HEADER_LEN..];
        if rest.len() < len {
            return Err("record body truncated");
        }
        let (body, rest) = rest.split_at(len);
        Ok((
            Record {
                content_type,
                version,
                epoch,
                seq,
                body,
            },
            rest,
        ))
    }
}

/// Append a record header (the body of `len` bytes follows).
pub fn emit_record_header(
    out: &mut Vec<u8>,
    content_type: u8,
    version: u16,
    epoch: u16,
    seq: u64,
    len: usize,
) {
    out.push(content_type);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&(seq & MAX_SEQ).to_be_bytes()[2..]);
    out.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

/// One handshake message fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub msg_type: u8,
    /// Length of the whole message body.
    pub length: u32,
    pub message_seq: u16,
    pub offset: u32,
    /// `fragment_length` bytes of the body starting at `offset`.
    pub data: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// The first fragment of a handshake record body and what follows it
    /// (a record may carry several). The fragment must lie inside the
    /// message: offset + fragment_length ≤ length.
    pub fn parse(buf: &'a [u8]) -> Result<(Fragment<'a>, &'a [u8]), &'static str> {
        if buf.len() < HANDSHAKE_HEADER_LEN {
            return Err("handshake header truncated");
        }
        let length = be24(&buf[1..4]);
        let message_seq = u16::from_be_bytes([buf[4], buf[5]]);
        let offset = be24(&buf[6..9]);
        let frag_len = be24(&buf[9..12]);
        if u64::from(offset) + u64::from(frag_len) > u64::from(length) {
            return Err("handshake fragment past the end of its message");
        }
        let rest = &buf[HANDSHAKE_HEADER_LEN..];
        let frag_len = frag_len as usize;
        if rest.len() < frag_len {
            return Err("handshake fragment truncated");
        }
        let (data, rest) = rest.split_at(frag_len);
        Ok((
            Fragment {
                msg_type: buf[0],
                length,
                message_seq,
                offset,
                data,
            },
            rest,
        ))
    }
}

/// Append a handshake header for a fragment of `frag_len` bytes at
/// `offset` of a `length`-byte message.
pub fn emit_handshake_header(
    out: &mut Vec<u8>,
    msg_type: u8,
    length: usize,
    message_seq: u16,
    offset: usize,
    frag_len: usize,
) {
    out.push(msg_type);
    put24(out, length);
    out.extend_from_slice(&message_seq.to_be_bytes());
    put24(out, offset);
    put24(out, frag_len);
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be48(b: &[u8]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

fn put24(out: &mut Vec<u8>, v: usize) {
    let v = v.min(0xff_ffff) as u32;
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

/// A cursor over a handshake message body: each read checks the length
/// and names the field when the body is too short.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err(what);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, &'static str> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, &'static str> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one-byte length prefix.
    pub(crate) fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }
    /// A vector with a two-byte length prefix.
    pub(crate) fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trips() {
        let mut b = Vec::new();
        emit_record_header(&mut b, content::HANDSHAKE, DTLS_1_2, 1, 0x0102_0304_0506, 3);
        b.extend_from_slice(&[7, 8, 9]);
        b.push(0xaa);
        let (r, rest) = Record::parse(&b).expect("parse");
        assert_eq!(
            (r.content_type, r.version, r.epoch, r.seq, r.body),
            (22, DTLS_1_2, 1, 0x0102_0304_0506, &[7u8, 8, 9][..])
        );
        assert_eq!(rest, &[0xaa]);
        assert!(Record::parse(&b[..15]).is_err());
    }

    #[test]
    fn fragment_past_end_is_an_error() {
        let mut b = Vec::new();
        emit_handshake_header(&mut b, hs::FINISHED, 12, 3, 10, 4);
        b.extend_from_slice(&[0; 4]);
        assert!(Fragment::parse(&b).is_err());
        let mut b = Vec::new();
        emit_handshake_header(&mut b, hs::FINISHED, 12, 3, 8, 4);
        b.extend_from_slice(&[0; 4]);
        let (f, rest) = Fragment::parse(&b).expect("parse");
        assert_eq!(
            (f.length, f.message_seq, f.offset, f.data.len()),
            (12, 3, 8, 4)
        );
        assert!(rest.is_empty());
    }
}
