//! 6LoWPAN: IPv6 over IEEE 802.15.4 — the dispatch byte (RFC 4944 §5.1),
//! IPHC header compression with UDP next-header compression (RFC 6282,
//! [`iphc`]) and link fragmentation and reassembly (RFC 4944 §5.3,
//! [`frag`]).
//!
//! Read first: RFC 4944 §5 (dispatch values, FRAG1/FRAGN), RFC 6282 §3
//! (IPHC), §4.3 (UDP NHC); `docs/sixlowpan.md` for what is modelled.
//!
//! Pure codecs; the world's media use them in IPv6 runs
//! (`world::radio::lowpan`). No-panic rule as in
//! [`crate::net::wire`]: any byte slice may be decoded; bad input gives a
//! [`LowpanError`].

pub mod frag;
pub mod iphc;

pub use frag::{fragment, FragHeader, Reassembler};
pub use iphc::{compress, compress_packet, decompress, decompress_packet, UdpNhc};

use crate::net::wire::WireError;

/// A 64-bit prefix configured as 6LoWPAN context 0 (RFC 6282 §3.1.2: the
/// only context this codec knows; CID extensions naming others are refused).
pub type Context = [u8; 8];

/// The dispatch classes of the first byte of an 802.15.4 payload
/// (RFC 4944 §5.1, with RFC 6282 §3.1's IPHC range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// `00xxxxxx`: Not a LoWPAN frame (another protocol shares the medium,
    /// e.g. raw MQTT-SN).
    Nalp,
    /// `01000001`: an uncompressed IPv6 header follows.
    Ipv6,
    /// `011xxxxx`: an IPHC compressed header (RFC 6282).
    Iphc,
    /// `10xxxxxx`: a mesh addressing header (not modelled: routing is at IP).
    Mesh,
    /// `11000xxx`: first fragment header.
    Frag1,
    /// `11100xxx`: subsequent fragment header.
    FragN,
    /// Any other value (HC1, BC0, ESC, reserved).
    Other,
}

/// Classify the first byte of an 802.15.4 payload (RFC 4944 §5.1).
pub fn classify(first: u8) -> Dispatch {
    match first {
        0x00..=0x3F => Dispatch::Nalp,
        0x41 => Dispatch::Ipv6,
        0x60..=0x7F => Dispatch::Iphc,
        0x80..=0xBF => Dispatch::Mesh,
        0xC0..=0xC7 => Dispatch::Frag1,
        0xE0..=0xE7 => Dispatch::FragN,
        _ => Dispatch::Other,
    }
}

/// A 6LoWPAN payload that cannot be decoded, compressed or fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LowpanError {
    /// The bytes end inside a field.
    #[error("6LoWPAN: {what} needs {need} more bytes, {left} left")]
    Truncated {
        what: &'static str,
        need: usize,
        left: usize,
    },
    /// The dispatch byte is not what the decoder handles here.
    #[error("6LoWPAN: dispatch byte {byte:#04x} is not {expected}")]
    Dispatch { byte: u8, expected: &'static str },
    /// A context other than 0, or context 0 when none is configured.
    #[error("6LoWPAN: context {0} is used but not configured")]
    UnknownContext(u8),
    /// A reserved IPHC encoding (RFC 6282 §3.1.1).
    #[error("6LoWPAN: reserved encoding: {0}")]
    Reserved(&'static str),
    /// A valid encoding this codec does not implement.
    #[error("6LoWPAN: not supported: {0}")]
    Unsupported(&'static str),
    /// The header to compress contradicts itself.
    #[error("6LoWPAN: cannot compress: {0}")]
    BadInput(&'static str),
    /// An uncompressed header inside is malformed.
    #[error("6LoWPAN: {0}")]
    Wire(#[from] WireError),
    /// The datagram does not fit the 11-bit datagram_size (2047 bytes).
    #[error("6LoWPAN: {size}-byte datagram exceeds the 2047 bytes fragments can describe")]
    DatagramTooLong { size: usize },
    /// Frames too small to carry the compressed header and 8 bytes.
    #[error("6LoWPAN: a {max}-byte frame payload cannot carry a fragment (needs {need})")]
    FrameTooSmall { max: usize, need: usize },
    /// A fragment's data disagrees with its datagram_size (or a FRAG1 with
    /// a size smaller than its own headers).
    #[error("6LoWPAN: fragment data [{start}, {end}) does not fit datagram_size {size}")]
    Inconsistent {
        start: usize,
        end: usize,
        size: usize,
    },
    /// Reassembly memory or datagram count bound reached; fragment dropped.
    #[error("6LoWPAN: reassembly bound reached ({pending} datagrams, {held} bytes held; a new one needs {need})")]
    OverBudget {
        pending: usize,
        held: usize,
        need: usize,
    },
}

/// A bounded reader over a byte slice for the decoders.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b, at: 0 }
    }
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LowpanError> {
        let left = self.b.len().saturating_sub(self.at);
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or(LowpanError::Truncated {
                what,
                need: n,
                left,
            })?;
        self.at += n;
        Ok(s)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, LowpanError> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, LowpanError> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_ranges_of_rfc4944() {
        assert_eq!(classify(0x00), Dispatch::Nalp);
        assert_eq!(classify(0x3F), Dispatch::Nalp);
        assert_eq!(classify(0x40), Dispatch::Other); // ESC-adjacent reserved
        assert_eq!(classify(0x41), Dispatch::Ipv6);
        assert_eq!(classify(0x42), Dispatch::Other); // LOWPAN_HC1
        assert_eq!(classify(0x50), Dispatch::Other); // LOWPAN_BC0
        assert_eq!(classify(0x5F), Dispatch::Other);
        assert_eq!(classify(0x60), Dispatch::Iphc);
        assert_eq!(classify(0x7F), Dispatch::Iphc);
        assert_eq!(classify(0x80), Dispatch::Mesh);
        assert_eq!(classify(0xBF), Dispatch::Mesh);
        assert_eq!(classify(0xC0), Dispatch::Frag1);
        assert_eq!(classify(0xC7), Dispatch::Frag1);
        assert_eq!(classify(0xC8), Dispatch::Other);
        assert_eq!(classify(0xE0), Dispatch::FragN);
        assert_eq!(classify(0xE7), Dispatch::FragN);
        assert_eq!(classify(0xE8), Dispatch::Other);
        assert_eq!(classify(0xFF), Dispatch::Other);
    }
}

/// How a frame payload's bytes sit in the IPv6 datagram it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// Bytes of 6LoWPAN headers at the start: fragment header, IPHC and
    /// UDP NHC (the adaptation layer's own bytes and the compressed form of
    /// the IPv6 and UDP headers).
    pub header: usize,
    /// Offset in the uncompressed datagram of the first byte after them.
    pub datagram_offset: usize,
}

/// Where the bytes of a 6LoWPAN frame payload (unfragmented IPHC, FRAG1 or
/// FRAGN) belong; `None` for anything else or undecodable input. Addresses
/// do not change header lengths, so none are needed.
pub fn frame_layout(payload: &[u8], ctx0: Option<Context>) -> Option<FrameLayout> {
    use crate::link::mac154::Address;
    let any = Address::Short(0);
    match classify(*payload.first()?) {
        Dispatch::Iphc => {
            let d = iphc::decompress(payload, any, any, ctx0).ok()?;
            Some(FrameLayout {
                header: d.header_len,
                datagram_offset: d.uncompressed_header_len(),
            })
        }
        Dispatch::Frag1 => {
            let (h, rest) = FragHeader::parse(payload).ok()?;
            let d = iphc::decompress_sized(rest, any, any, ctx0, usize::from(h.size)).ok()?;
            Some(FrameLayout {
                header: h.len() + d.header_len,
                datagram_offset: d.uncompressed_header_len(),
            })
        }
        Dispatch::FragN => {
            let (h, _) = FragHeader::parse(payload).ok()?;
            Some(FrameLayout {
                header: h.len(),
                datagram_offset: usize::from(h.offset?),
            })
        }
        _ => None,
    }
}
