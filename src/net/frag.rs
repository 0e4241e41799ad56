//! IPv4 fragmentation and reassembly.
//!
//! Read first: RFC 791 §3.2 ("Fragmentation and reassembly" procedures),
//! RFC 815 (hole descriptors), RFC 1812 §5.2.6 and §5.3.1.
//!
//! No-panic rule: any byte slice may be given to [`fragment`] or
//! [`Reassembler::push`]; malformed input gives a [`FragError`], never a panic
//! or an out-of-bounds index.
//!
//! Reassembly keeps, per datagram, one buffer and a sorted set of received
//! byte intervals (equivalent to RFC 815's hole list, inverted). Datagrams are
//! keyed by (source, destination, protocol, identification) as RFC 791 §3.2
//! says, in a `BTreeMap` so iteration (expiry) is deterministic.
//!
//! **Overlap policy: first data wins.** Bytes already received are never
//! overwritten; an overlapping or duplicate fragment only fills holes. In the
//! simulator overlapping fragments carry identical bytes (duplicates, or
//! re-fragmentation of the same datagram on different paths), so the policy
//! only matters for hand-crafted input, where it is deterministic.
//! Inconsistent fragments — a second last fragment giving a different length,
//! or data past the known end — discard the whole datagram (in the spirit of
//! RFC 5722) and return [`FragError::Inconsistent`].
//!
//! **Timeout:** a datagram is discarded once `timeout` has elapsed since its
//! first fragment arrived (`now >= first + timeout`), whether or not more
//! fragments came (Linux's fixed `ipfrag_time`, rather than RFC 791's
//! per-fragment TTL-driven timer). A fragment arriving for a datagram already
//! past its deadline starts a fresh one, so results do not depend on when
//! [`Reassembler::expire`] is called.

use super::ip::{self, Ipv4Repr, HEADER_LEN, MAX_TOTAL_LEN};
use super::wire::WireError;
use crate::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Smallest MTU that can carry a fragment: 20-byte header plus 8 data bytes
/// (RFC 791 §3.2: fragments other than the last carry multiples of 8 bytes).
pub const MIN_FRAG_MTU: usize = HEADER_LEN + 8;
/// Finished buffers kept for reuse by [`Reassembler::recycle`].
const POOL_MAX: usize = 64;
/// Default bound of the memory held by datagrams being reassembled: Linux's
/// `ipfrag_high_thresh` (4 MiB). A fragment that would pass it is dropped.
pub const DEFAULT_MAX_REASSEMBLY_BYTES: usize = 4 << 20;
/// What one pending datagram costs besides its buffer (its entry, interval
/// list and map node), so a flood of tiny first fragments is bounded too.
const PARTIAL_COST: usize = 128;

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
    /// A fragment that is not the last has a length not a multiple of 8.
    #[error(
        "reassembly: non-final fragment at offset {offset} has {len} bytes, not a multiple of 8"
    )]
    Misaligned { offset: u16, len: usize },
    /// The reassembled datagram would exceed 65535 bytes.
    #[error(
        "reassembly: fragment ending at payload byte {end} makes the datagram exceed 65535 bytes"
    )]
    TooLong { end: usize },
    /// Buffering the fragment would pass the reassembler's memory bound
    /// ([`DEFAULT_MAX_REASSEMBLY_BYTES`]); the fragment is dropped (as
    /// Linux drops fragments above `ipfrag_high_thresh`).
    #[error(
        "reassembly: {held} bytes held, a fragment needing {need} more passes the {max}-byte bound"
    )]
    OverBudget {
        held: usize,
        need: usize,
        max: usize,
    },
    /// Fragments disagree on the datagram's length; the datagram is dropped.
    #[error(
        "reassembly: fragment [{start}, {end}) conflicts with datagram payload length {total}"
    )]
    Inconsistent {
        start: usize,
        end: usize,
        total: usize,
    },
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
    let mut count = 0;
    for (i, data) in payload.chunks(chunk).enumerate() {
        let is_last = (i + 1) * chunk >= payload.len();
        let frag = Ipv4Repr {
            // Both fit: checked against MAX_FRAG_OFFSET above; data.len() <= chunk < mtu.
            frag_offset: (base + i * chunk) as u16,
            more_fragments: !is_last || repr.more_fragments,
            payload_len: data.len() as u16,
            ..repr
        };
        scratch.clear();
        scratch.resize(HEADER_LEN + data.len(), 0);
        frag.emit(scratch)?;
        scratch[HEADER_LEN..].copy_from_slice(data);
        emit(scratch);
        count += 1;
    }
    Ok(count)
}

/// RFC 791 §3.2: fragments of one datagram share source, destination,
/// protocol and identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ident: u16,
}

/// One datagram being reassembled.
#[derive(Debug)]
struct Partial {
    first_arrival: SimTime,
    /// Header (written on completion) then payload at its offsets.
    buf: Vec<u8>,
    /// Received payload byte ranges `[start, end)`, sorted, disjoint and not
    /// touching (adjacent ranges are merged).
    have: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// Header of the first fragment (offset 0), used for the result
    /// (RFC 791 §3.2: the first fragment's header is the datagram's).
    header: Option<Ipv4Repr>,
}

/// Copy `data`, which belongs at offset `start`, into the holes of `buf`
/// (first data wins: bytes of ranges already in `have` are kept) and merge
/// `[start, start + data.len())` into `have`, the sorted, disjoint, not
/// touching list of received ranges. `buf` must reach the end of `data`.
/// Shared by IPv4 and 6LoWPAN reassembly.
pub(crate) fn fill_holes(
    buf: &mut [u8],
    have: &mut Vec<(usize, usize)>,
    start: usize,
    data: &[u8],
) {
    let end = start + data.len();
    let mut cursor = start;
    for &(a, b) in have.iter() {
        if b <= cursor {
            continue;
        }
        if a >= end {
            break;
        }
        if a > cursor {
            buf[cursor..a].copy_from_slice(&data[cursor - start..a - start]);
        }
        cursor = cursor.max(b);
    }
    if cursor < end {
        buf[cursor..end].copy_from_slice(&data[cursor - start..]);
    }
    // Merge [start, end) with every range it overlaps or touches.
    let (mut lo, mut hi) = (start, end);
    have.retain(|&(a, b)| {
        if b < start || a > end {
            true
        } else {
            lo = lo.min(a);
            hi = hi.max(b);
            false
        }
    });
    let at = have.partition_point(|&(a, _)| a < lo);
    have.insert(at, (lo, hi));
}

impl Partial {
    /// Copy `data` at payload offset `start` into the holes it covers
    /// (first data wins) and record the range.
    fn insert(&mut self, start: usize, data: &[u8]) {
        if data.is_empty() {
            return; // an empty range adds nothing and must not enter `have`
        }
        let end = start + data.len();
        if self.buf.len() < HEADER_LEN + end {
            self.buf.resize(HEADER_LEN + end, 0);
        }
        fill_holes(&mut self.buf[HEADER_LEN..], &mut self.have, start, data);
    }

    fn complete(&self) -> bool {
        matches!((self.total, self.have.as_slice()), (Some(t), [(0, e)]) if *e == t)
    }
}

/// Reassembles fragmented IPv4 datagrams (RFC 791 §3.2), deterministically.
#[derive(Debug)]
pub struct Reassembler {
    timeout: SimDuration,
    /// Bound of `held`.
    max_bytes: usize,
    /// Memory charged to pending datagrams: each one's buffer length (header
    /// plus payload up to its furthest fragment: a lone fragment at offset
    /// 65,000 costs 65 KB) plus [`PARTIAL_COST`].
    held: usize,
    /// Fragments dropped because of `max_bytes`.
    over_budget: u64,
    pending: BTreeMap<Key, Partial>,
    pool: Vec<Vec<u8>>,
    ranges_pool: Vec<Vec<(usize, usize)>>,
}

impl Reassembler {
    /// A reassembler that discards a datagram `timeout` after its first
    /// fragment arrived (Linux's default is 30 s; RFC 791 suggests 15 s).
    pub fn new(timeout: SimDuration) -> Self {
        Reassembler {
            timeout,
            max_bytes: DEFAULT_MAX_REASSEMBLY_BYTES,
            held: 0,
            over_budget: 0,
            pending: BTreeMap::new(),
            pool: Vec::new(),
            ranges_pool: Vec::new(),
        }
    }

    fn take_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    /// Set the memory bound (see [`DEFAULT_MAX_REASSEMBLY_BYTES`]).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Memory charged to the datagrams being reassembled.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Fragments dropped because they would have passed the memory bound.
    pub fn dropped_over_budget(&self) -> u64 {
        self.over_budget
    }

    fn release(&mut self, mut p: Partial) {
        self.held = self.held.saturating_sub(p.buf.len() + PARTIAL_COST);
        give_back(&mut self.pool, &mut self.ranges_pool, &mut p);
    }

    /// Accept a packet at `now`. A packet that is not a fragment is returned
    /// whole at once. A fragment is stored; when it fills the last hole the
    /// reassembled datagram is returned — the first fragment's header with
    /// MF clear, offset 0, total length and checksum fixed. Give returned
    /// buffers back with [`recycle`](Self::recycle) to avoid allocation.
    pub fn push(&mut self, now: SimTime, fragment: &[u8]) -> Result<Option<Vec<u8>>, FragError> {
        let (repr, data) = Ipv4Repr::parse(fragment)?;
        if !repr.is_fragment() {
            let mut out = self.take_buf();
            out.extend_from_slice(&fragment[..repr.total_len()]);
            return Ok(Some(out));
        }
        let start = usize::from(repr.frag_offset);
        let end = start + data.len();
        // RFC 791 §3.2: every fragment but the last carries a multiple of 8.
        if repr.more_fragments && data.len() % 8 != 0 {
            return Err(FragError::Misaligned {
                offset: repr.frag_offset,
                len: data.len(),
            });
        }
        if HEADER_LEN + end > MAX_TOTAL_LEN {
            return Err(FragError::TooLong { end });
        }
        let key = Key {
            src: repr.src,
            dst: repr.dst,
            protocol: repr.protocol,
            ident: repr.ident,
        };
        // A datagram past its deadline is gone even if expire() was not called.
        let timeout = self.timeout;
        if let Some(p) = self.pending.get(&key) {
            if now >= p.first_arrival + timeout {
                if let Some(old) = self.pending.remove(&key) {
                    self.release(old);
                }
            }
        }
        // Memory bound: what this fragment adds (a new entry, the buffer
        // grown to its end); past the bound it is dropped.
        let grow = match self.pending.get(&key) {
            Some(p) => (HEADER_LEN + end).saturating_sub(p.buf.len()),
            None => HEADER_LEN + end + PARTIAL_COST,
        };
        if self.held + grow > self.max_bytes {
            self.over_budget += 1;
            return Err(FragError::OverBudget {
                held: self.held,
                need: grow,
                max: self.max_bytes,
            });
        }
        if !self.pending.contains_key(&key) {
            self.held += PARTIAL_COST;
            let buf = self.take_buf();
            let have = self.ranges_pool.pop().unwrap_or_default();
            self.pending.insert(
                key,
                Partial {
                    first_arrival: now,
                    buf,
                    have,
                    total: None,
                    header: None,
                },
            );
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return Ok(None);
        };
        // Consistency: the last fragment fixes the length; nothing may pass it.
        let known_end = p.have.last().map_or(0, |&(_, b)| b);
        let conflict = match (p.total, repr.more_fragments) {
            (Some(t), true) => end > t,
            (Some(t), false) => end != t,
            (None, false) => known_end > end,
            (None, true) => false,
        };
        if conflict {
            let total = p.total.unwrap_or(end);
            if let Some(old) = self.pending.remove(&key) {
                self.release(old);
            }
            return Err(FragError::Inconsistent { start, end, total });
        }
        if !repr.more_fragments {
            p.total = Some(end);
        }
        if start == 0 && p.header.is_none() {
            p.header = Some(repr);
        }
        let before = p.buf.len();
        p.insert(start, data);
        self.held += p.buf.len() - before;
        if !p.complete() {
            return Ok(None);
        }
        let Some(mut done) = self.pending.remove(&key) else {
            return Ok(None);
        };
        let (Some(header), Some(total)) = (done.header, done.total) else {
            // complete() implies offset 0 arrived and total is known.
            self.release(done);
            return Ok(None);
        };
        let whole = Ipv4Repr {
            more_fragments: false,
            frag_offset: 0,
            payload_len: total as u16, // checked against MAX_TOTAL_LEN above
            ..header
        };
        self.held = self.held.saturating_sub(done.buf.len() + PARTIAL_COST);
        let mut buf = std::mem::take(&mut done.buf);
        give_back(&mut self.pool, &mut self.ranges_pool, &mut done); // the interval set
        buf.truncate(HEADER_LEN + total);
        whole.emit(&mut buf)?;
        Ok(Some(buf))
    }

    /// Drop every datagram whose deadline (first fragment + timeout) is at or
    /// before `now` (RFC 791 §3.2: when the timer runs out, all reassembly
    /// resources for the datagram are released). Returns how many.
    pub fn expire(&mut self, now: SimTime) -> usize {
        let timeout = self.timeout;
        let (pool, ranges_pool, held) = (&mut self.pool, &mut self.ranges_pool, &mut self.held);
        let before = self.pending.len();
        self.pending.retain(|_, p| {
            if now >= p.first_arrival + timeout {
                *held = held.saturating_sub(p.buf.len() + PARTIAL_COST);
                give_back(pool, ranges_pool, p);
                false
            } else {
                true
            }
        });
        before - self.pending.len()
    }

    /// Earliest deadline of a pending datagram, for scheduling [`expire`](Self::expire).
    pub fn next_expiry(&self) -> Option<SimTime> {
        self.pending
            .values()
            .map(|p| p.first_arrival + self.timeout)
            .min()
    }

    /// Number of datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Give a finished buffer back for reuse (a bounded pool is kept).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX && buf.capacity() > 0 {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

/// Move a dropped datagram's buffers into the bounded pools.
fn give_back(pool: &mut Vec<Vec<u8>>, ranges_pool: &mut Vec<Vec<(usize, usize)>>, p: &mut Partial) {
    if pool.len() < POOL_MAX && p.buf.capacity() > 0 {
        let mut buf = std::mem::take(&mut p.buf);
        buf.clear();
        pool.push(buf);
    }
    if ranges_pool.len() < POOL_MAX {
        let mut have = std::mem::take(&mut p.have);
        have.clear();
        ranges_pool.push(have);
    }
}
