//! IPv4 fragmentation and reassembly.
//!
//! Read first: RFC 791 §3.2 ("Fragmentation and reassembly" procedures),
//! RFC 815 (hole descriptors), RFC 1812 §5.2.6 and §5.3.1.
//!
//! No-panic rule: any byte slice may be given to [`fragment`] or
//! [`Reassembler::push`]; malformed input gives a [`FragError`], never a panic
//! or an out-of-bounds index.
//!
//! Reassembly is the shared table of [`super::reassembly`] (one buffer and
//! a sorted set of received byte intervals per datagram, equivalent to RFC
//! 815's hole list, inverted); [`V4`] tells it how to read IPv4. Datagrams
//! are keyed by (source, destination, protocol, identification) as RFC 791
//! §3.2 says.
//!
//! **Overlap policy: first data wins.** Bytes already received are never
//! overwritten; an overlapping or duplicate fragment only fills holes. In the
//! simulator overlapping fragments carry identical bytes (duplicates, or
//! re-fragmentation of the same datagram on different paths), so the policy
//! only matters for hand-crafted input, where it is deterministic.
//! Inconsistent fragments — a second last fragment giving a different length,
//! or data past the known end — discard the whole datagram (in the spirit of
//! RFC 5722) and return [`Refused::Inconsistent`].
//!
//! **Timeout:** a datagram is discarded once `timeout` has elapsed since its
//! first fragment arrived (`now >= first + timeout`), whether or not more
//! fragments came (Linux's fixed `ipfrag_time`, rather than RFC 791's
//! per-fragment TTL-driven timer). A fragment arriving for a datagram already
//! past its deadline starts a fresh one, so results do not depend on when
//! [`Reassembler::expire`](super::reassembly::Reassembly::expire) is called.

use super::ip::{self, Ipv4Repr, HEADER_LEN, MAX_TOTAL_LEN};
pub use super::reassembly::Refused;
use super::reassembly::{Family, Parsed, Reassembly};
use super::wire::WireError;
use std::net::Ipv4Addr;

pub(crate) use super::reassembly::fill_holes;
pub use super::reassembly::DEFAULT_MAX_REASSEMBLY_BYTES;

/// Smallest MTU that can carry a fragment: 20-byte header plus 8 data bytes
/// (RFC 791 §3.2: fragments other than the last carry multiples of 8 bytes).
pub const MIN_FRAG_MTU: usize = HEADER_LEN + 8;

/// Why a packet could not be fragmented or a fragment not reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragError {
    /// The packet is not a valid IPv4 packet.
    #[error("fragmentation: {0}")]
    Wire(#[from] WireError),
    /// The packet exceeds the MTU and has DF set (RFC 791 §3.2; a router
    /// drops it and would send ICMP "fragmentation needed").
    #[error("fragmentation: {len}-byte packet exceeds MTU {mtu} and has Don't Fragment set")]
    DontFragment { len: usize, mtu: usize },
    /// The MTU cannot carry a header plus 8 payload bytes.
    #[error("fragmentation: MTU {mtu} is below the {MIN_FRAG_MTU}-byte minimum for fragments")]
    MtuTooSmall { mtu: usize },
    /// A fragment's offset would pass the 13-bit offset field.
    #[error("fragmentation: fragment offset {offset} bytes exceeds the 65528-byte maximum")]
    OffsetOverflow { offset: usize },
    /// Reassembly refused a fragment (misaligned, too long, over the
    /// memory bound, or inconsistent with the datagram).
    #[error(transparent)]
    Reassembly(#[from] Refused),
}

/// Split `packet` into fragments of at most `mtu` bytes, calling `emit` with
/// each in order (RFC 791 §3.2, "An Example Fragmentation Procedure").
///
/// A packet that fits is emitted unchanged (trailing padding dropped) as one
/// fragment. Otherwise every fragment's payload is the largest multiple of 8
/// that fits, except the last; offsets are relative to the original datagram
/// and MF is set on all but the last — and on the last too if the input was
/// itself a non-final fragment, so a router may re-fragment a fragment.
/// Each header is re-emitted with a fresh checksum. `scratch` holds the
/// fragment being built; nothing is allocated once it has capacity `mtu`.
/// Returns the number of fragments.
pub fn fragment(
    packet: &[u8],
    mtu: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, FragError> {
    let (repr, payload) = Ipv4Repr::parse(packet)?;
    let total = repr.total_len();
    if total <= mtu {
        emit(&packet[..total]);
        return Ok(1);
    }
    // RFC 791 §3.2: "If the Don't Fragment flag (DF) bit is set, then internet
    // fragmentation of this datagram is NOT permitted".
    if repr.dont_fragment {
        return Err(FragError::DontFragment { len: total, mtu });
    }
    if mtu < MIN_FRAG_MTU {
        return Err(FragError::MtuTooSmall { mtu });
    }
    // RFC 791 §3.2: NFB = (MTU - IHL*4) / 8, the data of each non-final
    // fragment is NFB*8 bytes.
    let chunk = (mtu - HEADER_LEN) / 8 * 8;
    let base = usize::from(repr.frag_offset);
    // Highest offset written is that of the last chunk (payload is at least
    // 9 bytes here: total > mtu >= 28).
    let last_off = base + payload.len().saturating_sub(1) / chunk * chunk;
    if last_off > usize::from(ip::MAX_FRAG_OFFSET) {
        return Err(FragError::OffsetOverflow { offset: last_off });
    }
    emit_chunks(payload, chunk, scratch, emit, |buf, offset, len, last| {
        let frag = Ipv4Repr {
            // Both fit: checked against MAX_FRAG_OFFSET above; len <= chunk < mtu.
            frag_offset: (base + offset) as u16,
            more_fragments: !last || repr.more_fragments,
            payload_len: len as u16,
            ..repr
        };
        buf.resize(HEADER_LEN, 0);
        frag.emit(buf)?;
        Ok(())
    })
}

/// Cut `payload` into chunks of `chunk` bytes (the last may be shorter) and
/// pass each to `emit` as a fragment built in `scratch`: the headers
/// `head(scratch, offset, len, last)` appends for the chunk at payload
/// `offset` of `len` bytes, then the chunk. Shared by IPv4 and IPv6
/// fragmentation; allocates nothing once `scratch` holds a fragment.
/// Returns the number of fragments.
pub(crate) fn emit_chunks<E>(
    payload: &[u8],
    chunk: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
    mut head: impl FnMut(&mut Vec<u8>, usize, usize, bool) -> Result<(), E>,
) -> Result<usize, E> {
    let mut count = 0;
    for (i, data) in payload.chunks(chunk).enumerate() {
        let offset = i * chunk;
        scratch.clear();
        head(
            scratch,
            offset,
            data.len(),
            offset + data.len() >= payload.len(),
        )?;
        scratch.extend_from_slice(data);
        emit(scratch);
        count += 1;
    }
    Ok(count)
}

/// How [`Reassembly`] reads IPv4 (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4;

impl Family for V4 {
    /// RFC 791 §3.2: fragments of one datagram share source, destination,
    /// protocol and identification.
    type Key = (Ipv4Addr, Ipv4Addr, u8, u16);
    type Header = Ipv4Repr;
    type Error = FragError;
    const HEADER_LEN: usize = HEADER_LEN;
    const MAX_PAYLOAD: usize = MAX_TOTAL_LEN - HEADER_LEN;
    const LIMITED: &'static str = "datagram";

    fn parse(packet: &[u8]) -> Result<Parsed<'_, Self>, FragError> {
        let (repr, data) = Ipv4Repr::parse(packet)?;
        if !repr.is_fragment() {
            return Ok(Parsed::Whole(&packet[..repr.total_len()]));
        }
        Ok(Parsed::Fragment {
            key: (repr.src, repr.dst, repr.protocol, repr.ident),
            header: repr,
            start: usize::from(repr.frag_offset),
            data,
            more: repr.more_fragments,
        })
    }

    /// RFC 791 §3.2: the first fragment's header with MF clear, offset 0,
    /// the total length and the checksum fixed.
    fn write_header(
        header: &Ipv4Repr,
        payload_len: usize,
        buf: &mut [u8],
    ) -> Result<(), FragError> {
        let whole = Ipv4Repr {
            more_fragments: false,
            frag_offset: 0,
            // At most MAX_PAYLOAD, checked by Reassembly::push.
            payload_len: u16::try_from(payload_len).unwrap_or(u16::MAX),
            ..*header
        };
        whole.emit(buf)?;
        Ok(())
    }

    /// First data wins: an overlap only fills holes.
    fn overlap(_start: usize, _end: usize) -> Option<FragError> {
        None
    }
}

/// Reassembles fragmented IPv4 datagrams (RFC 791 §3.2), deterministically.
/// `new(timeout)`: Linux's default is 30 s; RFC 791 suggests 15 s. A packet
/// that is not a fragment is returned whole by `push`.
pub type Reassembler = Reassembly<V4>;
