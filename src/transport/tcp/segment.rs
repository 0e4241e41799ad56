//! TCP segments (RFC 9293 §3.1) as a `Repr` with `parse` / `buffer_len` /
//! `emit`, options included: MSS (RFC 9293 §3.2), window scale and timestamps
//! (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
//!
//! No-panic rule: `parse` accepts any byte slice; short, garbled or
//! inconsistent input (data offset, option lengths, checksum) is an `Err`,
//! never a panic or an out-of-bounds index.
//!
//! Option layout on emit follows Linux, so sizes match real captures: a SYN
//! carries MSS, SACK-permitted, timestamps, NOP, window scale (20 bytes: a
//! 40-byte header, 60 bytes with IPv4, 74 on Ethernet); other segments carry
//! NOP, NOP, timestamps (12 bytes: a 32-byte header, 52 with IPv4, 66 on
//! Ethernet) when timestamps are on; SACK blocks follow as NOP, NOP, SACK.

use crate::net::checksum;
use crate::net::ip::PROTO_TCP;
use std::net::Ipv4Addr;

/// Errors parsing or emitting a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment of {0} bytes is shorter than a TCP header")]
    Truncated(usize),
    #[error("data offset {0} words is below 5 or beyond the segment")]
    BadDataOffset(u8),
    #[error("option {kind} at byte {at}: bad length")]
    BadOption { kind: u8, at: usize },
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("buffer of {have} bytes, segment needs {need}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("options need {0} bytes, more than the 40 a header can carry")]
    OptionsTooLong(usize),
}

/// Control bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub fin: bool,
    pub syn: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
    pub urg: bool,
}

impl Flags {
    fn bits(self) -> u8 {
        (self.fin as u8)
            | (self.syn as u8) << 1
            | (self.rst as u8) << 2
            | (self.psh as u8) << 3
            | (self.ack as u8) << 4
            | (self.urg as u8) << 5
    }
    fn from_bits(b: u8) -> Self {
        Flags {
            fin: b & 1 != 0,
            syn: b & 2 != 0,
            rst: b & 4 != 0,
            psh: b & 8 != 0,
            ack: b & 16 != 0,
            urg: b & 32 != 0,
        }
    }
}

/// Options a segment carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// Up to 3 SACK blocks (left, right) — 4 without timestamps.
    pub sack: Vec<(u32, u32)>,
}

impl Options {
    /// Encoded length, padded to a multiple of 4 (mirrors `emit`).
    pub fn len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        match (self.sack_permitted, self.timestamps.is_some()) {
            (true, true) => n += 2 + 10,
            (true, false) => n += 4,
            (false, true) => n += 12,
            (false, false) => {}
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        if !self.sack.is_empty() {
            n += 4 + 8 * self.sack.len();
        }
        n.div_ceil(4) * 4
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if let Some(m) = self.mss {
            out.extend_from_slice(&[2, 4]);
            out.extend_from_slice(&m.to_be_bytes());
        }
        if self.sack_permitted && self.timestamps.is_some() {
            // Linux SYN: SACK-permitted then timestamps, no padding between
            out.extend_from_slice(&[4, 2]);
        } else if self.sack_permitted {
            out.extend_from_slice(&[1, 1, 4, 2]);
        }
        if let Some((v, e)) = self.timestamps {
            if !self.sack_permitted {
                out.extend_from_slice(&[1, 1]);
            }
            out.extend_from_slice(&[8, 10]);
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&e.to_be_bytes());
        }
        if let Some(ws) = self.window_scale {
            out.extend_from_slice(&[1, 3, 3, ws]);
        }
        if !self.sack.is_empty() {
            out.extend_from_slice(&[1, 1, 5, (2 + 8 * self.sack.len()) as u8]);
            for (l, r) in &self.sack {
                out.extend_from_slice(&l.to_be_bytes());
                out.extend_from_slice(&r.to_be_bytes());
            }
        }
        while !(out.len() - start).is_multiple_of(4) {
            out.push(0); // EOL padding
        }
    }

    fn parse(bytes: &[u8]) -> Result<Options, SegmentError> {
        let mut o = Options::default();
        let mut i = 0;
        while i < bytes.len() {
            let kind = bytes[i];
            match kind {
                0 => break, // end of option list
                1 => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = *bytes
                .get(i + 1)
                .ok_or(SegmentError::BadOption { kind, at: i })? as usize;
            if len < 2 || i + len > bytes.len() {
                return Err(SegmentError::BadOption { kind, at: i });
            }
            let v = &bytes[i + 2..i + len];
            match (kind, len) {
                (2, 4) => o.mss = Some(u16::from_be_bytes([v[0], v[1]])),
                (3, 3) => o.window_scale = Some(v[0]),
                (4, 2) => o.sack_permitted = true,
                (8, 10) => {
                    o.timestamps = Some((
                        u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                        u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                    ))
                }
                (5, l) if l >= 10 && (l - 2) % 8 == 0 => {
                    o.sack = v
                        .chunks_exact(8)
                        .map(|c| {
                            (
                                u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                                u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                            )
                        })
                        .collect();
                }
                (2 | 3 | 4 | 5 | 8, _) => return Err(SegmentError::BadOption { kind, at: i }),
                _ => {} // unknown option: skipped by its length (RFC 9293 §3.2)
            }
            i += len;
        }
        Ok(o)
    }
}

/// A TCP segment's header fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Acknowledgment number (meaningful when `flags.ack`).
    pub ack: u32,
    pub flags: Flags,
    pub window: u16,
    pub urgent: u16,
    pub options: Options,
}

/// Fixed header length.
pub const HEADER_LEN: usize = 20;

impl TcpRepr {
    /// Header length with options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }
    /// Whole segment length for `payload_len` bytes of data.
    pub fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Append the segment (header, options, `payload`) to `out`, with the
    /// checksum over the IPv4 pseudo-header of `src` → `dst`.
    pub fn emit(
        &self,
        out: &mut Vec<u8>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<(), SegmentError> {
        let opt = self.options.len();
        if opt > 40 {
            return Err(SegmentError::OptionsTooLong(opt));
        }
        let start = out.len();
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ack.to_be_bytes());
        out.push((((HEADER_LEN + opt) / 4) as u8) << 4);
        out.push(self.flags.bits());
        out.extend_from_slice(&self.window.to_be_bytes());
        out.extend_from_slice(&[0, 0]); // checksum, below
        out.extend_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(out);
        out.extend_from_slice(payload);
        let seg_len = out.len() - start;
        let len16 = u16::try_from(seg_len).map_err(|_| SegmentError::BufferTooSmall {
            need: seg_len,
            have: 65535,
        })?;
        let acc = checksum::accumulate(
            checksum::pseudo_header_sum(src, dst, PROTO_TCP, len16),
            &out[start..],
        );
        let sum = checksum::fold(acc);
        out[start + 16..start + 18].copy_from_slice(&(!sum).to_be_bytes());
        Ok(())
    }

    /// Parse a segment received from `src` to `dst`; returns the header and
    /// the payload. The checksum is verified (RFC 9293 §3.1).
    pub fn parse(
        seg: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(TcpRepr, &[u8]), SegmentError> {
        if seg.len() < HEADER_LEN {
            return Err(SegmentError::Truncated(seg.len()));
        }
        let off = seg[12] >> 4;
        let hl = usize::from(off) * 4;
        if off < 5 || hl > seg.len() {
            return Err(SegmentError::BadDataOffset(off));
        }
        let len16 = u16::try_from(seg.len()).map_err(|_| SegmentError::Truncated(seg.len()))?;
        let acc =
            checksum::accumulate(checksum::pseudo_header_sum(src, dst, PROTO_TCP, len16), seg);
        if checksum::fold(acc) != 0xFFFF {
            return Err(SegmentError::BadChecksum);
        }
        let be16 = |i: usize| u16::from_be_bytes([seg[i], seg[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([seg[i], seg[i + 1], seg[i + 2], seg[i + 3]]);
        let repr = TcpRepr {
            src_port: be16(0),
            dst_port: be16(2),
            seq: be32(4),
            ack: be32(8),
            flags: Flags::from_bits(seg[13]),
            window: be16(14),
            urgent: be16(18),
            options: Options::parse(&seg[HEADER_LEN..hl])?,
        };
        Ok((repr, &seg[hl..]))
    }
}
