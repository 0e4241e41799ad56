//! TCP header (RFC 9293 §3.1) with the options this model speaks: MSS
//! (RFC 9293 §3.2), window scale and timestamps (RFC 7323 §2, §3) and
//! SACK-permitted and SACK blocks (RFC 2018 §2, §3).
//!
//! Two layers, as in smoltcp's `wire` and `crate::net::udp`: [`TcpPacket`],
//! a checked view over bytes, and [`TcpRepr`] with `parse` / `header_len` /
//! `buffer_len` / `emit`. No-panic rule: any byte slice may be parsed; short,
//! garbled or inconsistent input gives a [`SegmentError`], never a panic or
//! an out-of-bounds index. Unknown options are skipped by their length byte.

use crate::net::checksum::{self, PseudoAddrs};
use crate::net::ip::PROTO_TCP;
use std::net::Ipv4Addr;

/// Length of the TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Longest TCP header (data offset 15 words).
pub const MAX_HEADER_LEN: usize = 60;

/// Option kinds (IANA "TCP Option Kind Numbers").
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WS: u8 = 3;
const OPT_SACK_PERM: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TS: u8 = 8;

/// A malformed segment, or one that cannot be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// Shorter than the fixed 20-byte header.
    #[error("TCP: {len}-byte buffer is shorter than the 20-byte header")]
    Truncated { len: usize },
    /// Data offset below 5 words or beyond the buffer.
    #[error("TCP: data offset {offset} bytes does not fit a {len}-byte segment")]
    BadDataOffset { offset: usize, len: usize },
    /// An option's length byte is invalid or runs past the header.
    #[error("TCP: malformed option of kind {kind}")]
    BadOption { kind: u8 },
    /// The checksum over the pseudo-header does not verify.
    #[error("TCP: checksum mismatch (sum {sum:#06x}, expected 0xffff)")]
    BadChecksum { sum: u16 },
    /// The output buffer is too small.
    #[error("TCP: output buffer of {len} bytes is too small, need {need}")]
    BufferTooSmall { need: usize, len: usize },
    /// The segment would exceed 65535 bytes, or the options 40 bytes.
    #[error("TCP: segment of {len} bytes is too long")]
    TooLong { len: usize },
    /// Declared payload length differs from the payload given.
    #[error("TCP: declared payload length {declared} differs from the {actual}-byte payload")]
    PayloadMismatch { declared: usize, actual: usize },
    /// Window scale shift above 14 (RFC 7323 §2.3 caps it at 14).
    #[error("TCP: window scale shift {0} exceeds 14")]
    BadWindowScale(u8),
}

/// The control bits of a segment (RFC 9293 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    /// True when every bit of `mask` is set.
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
    /// FIN set.
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// SYN set.
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    /// PSH set.
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
    /// ACK set.
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
}

/// Read-only view of a TCP segment whose data offset was checked.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap `buf` after checking it holds a 20-byte header and a data offset
    /// in `[20, buf.len()]`.
    pub fn new_checked(buf: T) -> Result<Self, SegmentError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(SegmentError::Truncated { len: b.len() });
        }
        let offset = usize::from(b[12] >> 4) * 4;
        if offset < HEADER_LEN || offset > b.len() {
            return Err(SegmentError::BadDataOffset {
                offset,
                len: b.len(),
            });
        }
        Ok(TcpPacket { buf })
    }
    fn be16(&self, at: usize) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    fn be32(&self, at: usize) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.be16(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(2)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.be32(4)
    }
    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        self.be32(8)
    }
    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[12] >> 4) * 4
    }
    /// Control bits (the low six of byte 13; the ECN bits are ignored).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buf.as_ref()[13] & 0x3F)
    }
    /// Window field (unscaled).
    pub fn window(&self) -> u16 {
        self.be16(14)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(16)
    }
    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        self.be16(18)
    }
    /// The option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }
    /// True when the RFC 9293 §3.1 checksum over the pseudo-header verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        sum(src, dst, self.buf.as_ref()) == 0xFFFF
    }
}

/// One's complement sum of the pseudo-header and the segment, folded.
fn sum(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> u16 {
    sum_with(PseudoAddrs::v4(src, dst), seg)
}

fn sum_with(pseudo: PseudoAddrs, seg: &[u8]) -> u16 {
    let len = u32::try_from(seg.len()).unwrap_or(u32::MAX);
    checksum::fold(checksum::accumulate(pseudo.sum(PROTO_TCP, len), seg))
}

/// True when `seg`'s checksum verifies over the pseudo-header of `pseudo`
/// (the network layer's part of checksum offload).
pub fn checksum_ok(seg: &[u8], pseudo: PseudoAddrs) -> bool {
    sum_with(pseudo, seg) == 0xFFFF
}

/// Write `seg`'s checksum for the pseudo-header of `pseudo` (segments from
/// [`crate::transport::tcp::Connection::poll_transmit`] leave it zero for
/// the network layer, which knows the address family, to fill).
pub fn fill_checksum(seg: &mut [u8], pseudo: PseudoAddrs) {
    if seg.len() < HEADER_LEN {
        return;
    }
    seg[16..18].copy_from_slice(&[0, 0]);
    let c = !sum_with(pseudo, seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Up to four SACK blocks `[left, right)` (RFC 2018 §3), first = the most
/// recently changed (§4). Three fit beside the timestamps option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [(u32, u32); 4],
    len: u8,
}

impl SackBlocks {
    /// Append a block; false when four are held.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        let n = usize::from(self.len);
        if n >= 4 {
            return false;
        }
        self.blocks[n] = (left, right);
        self.len += 1;
        true
    }
    /// The blocks, first = most recent.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }
    /// Number of blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// No block.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Keep the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
    /// Bytes of the option with its two leading NOPs (0 when empty).
    pub fn option_len(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            4 + 8 * usize::from(self.len)
        }
    }
}

/// A parsed TCP header with the options this model understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Window field as on the wire (the receiver applies the scale).
    pub window: u16,
    pub urgent: u16,
    /// MSS option (RFC 9293 §3.7.1), only meaningful on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift (RFC 7323 §2.2), only on SYNs, at most 14.
    pub window_scale: Option<u8>,
    /// SACK-permitted option (RFC 2018 §2), only on SYNs.
    pub sack_permitted: bool,
    /// Timestamps option `(TSval, TSecr)` (RFC 7323 §3.2).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (RFC 2018 §3), never on SYNs. `emit` writes as many as
    /// fit in the 40 bytes of options.
    pub sack: SackBlocks,
    /// Payload bytes after the header.
    pub payload_len: u16,
}

impl TcpRepr {
    /// Parse a segment carried from `src` to `dst`: checks the header, the
    /// options' lengths and the checksum. Returns the header and the payload.
    pub fn parse(
        buf: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(TcpRepr, &[u8]), SegmentError> {
        let p = TcpPacket::new_checked(buf)?;
        if !p.verify_checksum(src, dst) {
            return Err(SegmentError::BadChecksum {
                sum: sum(src, dst, buf),
            });
        }
        Self::parse_unchecked(buf)
    }

    /// Parse a segment whose checksum the network layer verified (or that
    /// never crossed a wire): header and options' lengths only.
    pub fn parse_unchecked(buf: &[u8]) -> Result<(TcpRepr, &[u8]), SegmentError> {
        let p = TcpPacket::new_checked(buf)?;
        let payload = &buf[p.header_len()..];
        let mut r = TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq(),
            ack: p.ack(),
            flags: p.flags(),
            window: p.window(),
            urgent: p.urgent(),
            payload_len: u16::try_from(payload.len())
                .map_err(|_| SegmentError::TooLong { len: buf.len() })?,
            ..TcpRepr::default()
        };
        parse_options(p.options(), &mut r)?;
        Ok((r, payload))
    }

    /// Bytes of options `emit` writes (a multiple of 4). Layout as Linux:
    /// MSS, SACK-permitted + timestamps (or NOP NOP + either), NOP + window
    /// scale, NOP NOP + SACK blocks (as many as fit in 40 bytes).
    pub fn options_len(&self) -> usize {
        let n = self.fixed_options_len();
        n + self.sack_fit(n).option_len()
    }

    /// The SACK blocks that fit after `fixed` bytes of other options.
    fn sack_fit(&self, fixed: usize) -> SackBlocks {
        let mut s = self.sack;
        let room = 40usize.saturating_sub(fixed);
        let fit = room.saturating_sub(4) / 8;
        s.truncate(fit.min(4));
        s
    }

    fn fixed_options_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        n += match (self.sack_permitted, self.timestamps.is_some()) {
            (true, true) => 12,
            (false, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            n += 4;
        }
        n
    }

    /// Header length including options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// Bytes `emit` writes: header, options and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + usize::from(self.payload_len)
    }

    /// Sequence space the segment occupies: payload plus one for SYN and
    /// one for FIN (RFC 9293 §3.4).
    pub fn segment_len(&self) -> u32 {
        u32::from(self.payload_len) + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// Write the segment into `buf[..buffer_len()]` with the checksum over
    /// the pseudo-header for `src` → `dst`.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize, SegmentError> {
        if payload.len() != usize::from(self.payload_len) {
            return Err(SegmentError::PayloadMismatch {
                declared: usize::from(self.payload_len),
                actual: payload.len(),
            });
        }
        let len = self.buffer_len();
        let buf_len = buf.len();
        let Some(d) = buf.get_mut(..len) else {
            return Err(SegmentError::BufferTooSmall {
                need: len,
                len: buf_len,
            });
        };
        d[self.header_len()..].copy_from_slice(payload);
        self.emit_header(d, src, dst)
    }

    /// Like [`TcpRepr::emit`] with the payload already in place at
    /// `buf[header_len()..buffer_len()]` (the connection copies it there
    /// from its send ring, so nothing is allocated).
    pub fn emit_header(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<usize, SegmentError> {
        let len = self.emit_header_unchecked(buf)?;
        fill_checksum(&mut buf[..len], PseudoAddrs::v4(src, dst));
        Ok(len)
    }

    /// Like [`TcpRepr::emit_header`] with the checksum left zero for the
    /// network layer to fill ([`fill_checksum`]).
    pub fn emit_header_unchecked(&self, buf: &mut [u8]) -> Result<usize, SegmentError> {
        if let Some(ws) = self.window_scale {
            if ws > 14 {
                return Err(SegmentError::BadWindowScale(ws));
            }
        }
        let hl = self.header_len();
        let len = self.buffer_len();
        if len > usize::from(u16::MAX) {
            return Err(SegmentError::TooLong { len });
        }
        let buf_len = buf.len();
        let Some(d) = buf.get_mut(..len) else {
            return Err(SegmentError::BufferTooSmall {
                need: len,
                len: buf_len,
            });
        };
        d[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        d[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        d[4..8].copy_from_slice(&self.seq.to_be_bytes());
        d[8..12].copy_from_slice(&self.ack.to_be_bytes());
        // hl ≤ 20 + 40 = 60, so hl / 4 fits the 4-bit field.
        d[12] = ((hl / 4) as u8) << 4;
        d[13] = self.flags.0 & 0x3F;
        d[14..16].copy_from_slice(&self.window.to_be_bytes());
        d[16..18].copy_from_slice(&[0, 0]);
        d[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        let o = &mut d[HEADER_LEN..hl];
        let mut i = 0;
        if let Some(mss) = self.mss {
            o[i..i + 4].copy_from_slice(&[OPT_MSS, 4, (mss >> 8) as u8, mss as u8]);
            i += 4;
        }
        match (self.sack_permitted, self.timestamps) {
            (sack, Some((val, ecr))) => {
                let head = if sack {
                    [OPT_SACK_PERM, 2]
                } else {
                    [OPT_NOP, OPT_NOP]
                };
                o[i..i + 2].copy_from_slice(&head);
                o[i + 2] = OPT_TS;
                o[i + 3] = 10;
                o[i + 4..i + 8].copy_from_slice(&val.to_be_bytes());
                o[i + 8..i + 12].copy_from_slice(&ecr.to_be_bytes());
                i += 12;
            }
            (true, None) => {
                o[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2]);
                i += 4;
            }
            (false, None) => {}
        }
        if let Some(ws) = self.window_scale {
            o[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_WS, 3, ws]);
            i += 4;
        }
        let sack = self.sack_fit(i);
        if !sack.is_empty() {
            o[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK, sack.option_len() as u8 - 2]);
            i += 4;
            for &(l, r) in sack.as_slice() {
                o[i..i + 4].copy_from_slice(&l.to_be_bytes());
                o[i + 4..i + 8].copy_from_slice(&r.to_be_bytes());
                i += 8;
            }
        }
        Ok(len)
    }
}

/// Walk the option list (RFC 9293 §3.2): END stops, NOP is one byte, every
/// other kind carries a length ≥ 2 that must fit. Known options with a wrong
/// length are errors; a window scale above 14 is clamped to 14 as RFC 7323
/// §2.3 asks of the receiver.
fn parse_options(mut o: &[u8], r: &mut TcpRepr) -> Result<(), SegmentError> {
    while let Some(&kind) = o.first() {
        match kind {
            OPT_END => break,
            OPT_NOP => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else {
            return Err(SegmentError::BadOption { kind });
        };
        let len = usize::from(len);
        if len < 2 || len > o.len() {
            return Err(SegmentError::BadOption { kind });
        }
        let body = &o[2..len];
        match (kind, body) {
            (OPT_MSS, [a, b]) => r.mss = Some(u16::from_be_bytes([*a, *b])),
            (OPT_WS, [s]) => r.window_scale = Some((*s).min(14)),
            (OPT_SACK_PERM, []) => r.sack_permitted = true,
            (OPT_TS, [a, b, c, d, e, f, g, h]) => {
                r.timestamps = Some((
                    u32::from_be_bytes([*a, *b, *c, *d]),
                    u32::from_be_bytes([*e, *f, *g, *h]),
                ))
            }
            (OPT_SACK, b) if !b.is_empty() && b.len() % 8 == 0 && b.len() <= 32 => {
                for c in b.chunks_exact(8) {
                    r.sack.push(
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    );
                }
            }
            (OPT_MSS | OPT_WS | OPT_SACK_PERM | OPT_TS | OPT_SACK, _) => {
                return Err(SegmentError::BadOption { kind })
            }
            _ => {}
        }
        o = &o[len..];
    }
    Ok(())
}

/// Fill `out` with the RST that answers `seg` arriving at a port with no
/// connection (RFC 9293 §3.10.7.1, CLOSED state): if the segment has ACK,
/// `<SEQ=SEG.ACK><CTL=RST>`; otherwise `<SEQ=0><ACK=SEG.SEQ+SEG.LEN>
/// <CTL=RST,ACK>`. An incoming RST is never answered (returns `None`), nor is
/// a segment that does not parse. `seg`'s checksum was verified by the
/// network layer, which also fills the reply's ([`fill_checksum`]). Returns
/// the reply length.
pub fn reset_for(seg: &[u8], out: &mut [u8]) -> Option<usize> {
    let (r, _) = TcpRepr::parse_unchecked(seg).ok()?;
    if r.flags.rst() {
        return None;
    }
    let reply = if r.flags.ack() {
        TcpRepr {
            src_port: r.dst_port,
            dst_port: r.src_port,
            seq: r.ack,
            flags: TcpFlags(TcpFlags::RST),
            ..TcpRepr::default()
        }
    } else {
        TcpRepr {
            src_port: r.dst_port,
            dst_port: r.src_port,
            ack: r.seq.wrapping_add(r.segment_len()),
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            ..TcpRepr::default()
        }
    };
    reply.emit_header_unchecked(out).ok()
}
