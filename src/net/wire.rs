//! The error shared by the wire-format parsers and emitters (`ip`, `udp`,
//! `ipv6`).
//!
//! No-panic rule for every wire module: any byte slice may be handed to a
//! parser or checked view; short, garbled or inconsistent input gives a
//! `WireError`, never a panic or an out-of-bounds index. Emitters check the
//! output buffer and the `Repr` fields and return a `WireError` instead of
//! writing a malformed packet.

use std::fmt;

/// Which header a `WireError` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Ipv4,
    Udp,
    Ipv6,
    /// The IPv6 Fragment extension header (RFC 8200 §4.5).
    Ipv6Fragment,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ipv4 => "IPv4",
            Layer::Udp => "UDP",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Fragment => "IPv6 Fragment header",
        })
    }
}

/// A malformed packet, or a packet that cannot be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the fixed header.
    #[error("{layer}: {len}-byte buffer is shorter than the {need}-byte header")]
    Truncated {
        layer: Layer,
        need: usize,
        len: usize,
    },
    /// IPv4 version field is not 4.
    #[error("IPv4: version field is {0}, expected 4")]
    BadVersion(u8),
    /// IPv4 IHL other than 5: below 5 is invalid, above 5 means options,
    /// which this simulator does not support.
    #[error("IPv4: header length {0} words unsupported (options are not supported, expected 5)")]
    UnsupportedHeaderLen(u8),
    /// The reserved flag bit is set (RFC 791 §3.1: must be zero).
    #[error("IPv4: reserved flag bit is set")]
    ReservedFlag,
    /// A length field is smaller than the header or larger than the buffer.
    #[error(
        "{layer}: length field {field} does not fit a {len}-byte buffer (header {header} bytes)"
    )]
    BadLength {
        layer: Layer,
        field: usize,
        len: usize,
        header: usize,
    },
    /// The checksum does not verify.
    #[error("{layer}: checksum mismatch (sum {sum:#06x}, expected 0xffff)")]
    BadChecksum { layer: Layer, sum: u16 },
    /// The output buffer given to `emit` is too small.
    #[error("{layer}: output buffer of {len} bytes is too small, need {need}")]
    BufferTooSmall {
        layer: Layer,
        need: usize,
        len: usize,
    },
    /// The packet would be longer than its 16-bit length field allows.
    #[error("{layer}: packet of {len} bytes exceeds the 65535-byte maximum")]
    TooLong { layer: Layer, len: usize },
    /// A `Repr`'s declared payload length differs from the payload given.
    #[error("{layer}: declared payload length {declared} differs from the {actual}-byte payload")]
    PayloadMismatch {
        layer: Layer,
        declared: usize,
        actual: usize,
    },
    /// Fragment offset not a multiple of 8 or beyond the 13-bit field.
    #[error("IPv4: fragment offset {0} bytes must be a multiple of 8 no greater than 65528")]
    BadFragOffset(u16),
    /// IPv6 version field is not 6.
    #[error("IPv6: version field is {0}, expected 6")]
    BadIpv6Version(u8),
    /// IPv6 Fragment header offset not a multiple of 8 or beyond 13 bits.
    #[error("IPv6: fragment offset {0} bytes must be a multiple of 8 no greater than 65528")]
    BadIpv6FragOffset(u16),
    /// IPv6 flow label wider than its 20 bits.
    #[error("IPv6: flow label {0:#x} does not fit 20 bits")]
    BadFlowLabel(u32),
    /// A UDP checksum of zero over IPv6 (RFC 8200 §8.1: receivers discard it).
    #[error("UDP over IPv6: zero checksum field (RFC 8200 §8.1 makes the checksum mandatory)")]
    ZeroUdpChecksumV6,
    /// An address with no IPv6 form in the run's scheme (`net::l3`).
    #[error("IPv6: the address has no IPv6 form in this run's address scheme")]
    NoIpv6Form,
    /// TTL already 0: the packet must not be forwarded (RFC 1812 §5.3.1).
    #[error("IPv4: TTL is already 0")]
    TtlExpired,
}
