//! The reassembly table shared by IPv4 ([`super::frag`], RFC 791 §3.2) and
//! IPv6 ([`super::frag6`], RFC 8200 §4.5): per datagram one buffer and a
//! sorted set of received byte intervals (RFC 815's hole list, inverted),
//! the timeout, the memory bound and the buffer pools. What differs between
//! the versions — how a packet is read, which fields key a datagram, the
//! header written on the result, what an overlap means — is a [`Family`].
//!
//! No-panic rule: any byte slice may be given to [`Reassembly::push`];
//! malformed input gives the family's error, never a panic or an
//! out-of-bounds index. Datagrams are kept in a `BTreeMap`, so expiry is
//! deterministic.
//!
//! **Timeout:** a datagram is discarded once `timeout` has elapsed since its
//! first fragment arrived (`now >= first + timeout`), whether or not more
//! fragments came. A fragment arriving for a datagram already past its
//! deadline starts a fresh one, so results do not depend on when
//! [`Reassembly::expire`] is called.
//!
//! **Consistency:** the last fragment (M clear) fixes the payload length;
//! a second last fragment giving another length, or data past the known
//! end, discards the whole datagram ([`Refused::Inconsistent`]). A non-final
//! fragment whose length is not a multiple of 8 ([`Refused::Misaligned`]) and
//! one ending past the largest payload ([`Refused::TooLong`]) are refused.

use crate::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Default bound of the memory held by datagrams being reassembled: Linux's
/// `ipfrag_high_thresh` (4 MiB). A fragment that would pass it is dropped.
pub const DEFAULT_MAX_REASSEMBLY_BYTES: usize = 4 << 20;
/// Finished buffers kept for reuse by [`Reassembly::recycle`].
const POOL_MAX: usize = 64;
/// What one pending datagram costs besides its buffer (its entry, interval
/// list and map node), so a flood of tiny first fragments is bounded too.
const PARTIAL_COST: usize = 128;

/// One IP version's reading of its packets, for [`Reassembly`].
pub trait Family {
    /// The fields that name one datagram's fragments.
    type Key: Ord + Copy + Debug;
    /// The header kept from the fragment at offset 0.
    type Header: Copy + Debug;
    /// What [`Reassembly::push`] returns on failure.
    type Error: From<Refused>;
    /// Length of the header a reassembled datagram starts with.
    const HEADER_LEN: usize;
    /// Largest payload (bytes after that header) of a datagram.
    const MAX_PAYLOAD: usize;
    /// What reaches 65,535 bytes at [`MAX_PAYLOAD`](Self::MAX_PAYLOAD), for
    /// [`Refused::TooLong`]: IPv4's "datagram" (its total length counts the
    /// header), IPv6's "payload".
    const LIMITED: &'static str;

    /// Read a packet as a whole datagram or as one fragment.
    fn parse(packet: &[u8]) -> Result<Parsed<'_, Self>, Self::Error>;

    /// Write the header of a datagram built from `header` with a payload of
    /// `payload_len` bytes into `buf` (exactly [`HEADER_LEN`](Self::HEADER_LEN)
    /// bytes).
    fn write_header(
        header: &Self::Header,
        payload_len: usize,
        buf: &mut [u8],
    ) -> Result<(), Self::Error>;

    /// The error for a fragment `[start, end)` overlapping payload bytes
    /// already received, which then discards the datagram; `None` when an
    /// overlap only fills holes (first data wins). Exact duplicates are not
    /// overlaps when this is `Some`: they are dropped silently.
    fn overlap(start: usize, end: usize) -> Option<Self::Error>;
}

/// A packet as [`Family::parse`] read it.
#[derive(Debug)]
pub enum Parsed<'a, F: Family + ?Sized> {
    /// Not a fragment: these bytes are the datagram, returned as they are.
    Whole(&'a [u8]),
    /// A fragment that is the whole datagram by itself (IPv6's atomic
    /// fragment, RFC 6946): rebuilt at once from `header` and `payload`,
    /// never mixed with other fragments of the same key.
    Unfragmented {
        header: F::Header,
        payload: &'a [u8],
    },
    /// One fragment: `data` belongs at payload offset `start`; `more` is the
    /// More Fragments flag.
    Fragment {
        key: F::Key,
        header: F::Header,
        start: usize,
        data: &'a [u8],
        more: bool,
    },
}

/// Why the shared reassembly machinery refused a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A fragment that is not the last has a length not a multiple of 8.
    #[error(
        "reassembly: non-final fragment at offset {offset} has {len} bytes, not a multiple of 8"
    )]
    Misaligned { offset: usize, len: usize },
    /// The reassembled datagram would pass the 16-bit length field (IPv4's
    /// total length, IPv6's payload length: `what`).
    #[error(
        "reassembly: fragment ending at payload byte {end} makes the {what} exceed 65535 bytes"
    )]
    TooLong { end: usize, what: &'static str },
    /// Buffering the fragment would pass the memory bound; it is dropped.
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

/// One datagram being reassembled.
#[derive(Debug)]
struct Partial<H> {
    first_arrival: SimTime,
    /// Header (written on completion) then payload at its offsets.
    buf: Vec<u8>,
    /// Received payload byte ranges `[start, end)`, sorted, disjoint and not
    /// touching (adjacent ranges are merged).
    have: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (M clear) arrived.
    total: Option<usize>,
    /// Header of the fragment at offset 0, used for the result.
    header: Option<H>,
}

/// Copy `data`, which belongs at offset `start`, into the holes of `buf`
/// (first data wins: bytes of ranges already in `have` are kept) and merge
/// `[start, start + data.len())` into `have`, the sorted, disjoint, not
/// touching list of received ranges. `buf` must reach the end of `data`.
/// Shared by IP and 6LoWPAN reassembly.
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

impl<H> Partial<H> {
    /// Copy `data` at payload offset `start` into the holes it covers
    /// (first data wins) and record the range. The payload starts at
    /// `header_len` in `buf`.
    fn insert(&mut self, header_len: usize, start: usize, data: &[u8]) {
        if data.is_empty() {
            return; // an empty range adds nothing and must not enter `have`
        }
        let end = start + data.len();
        if self.buf.len() < header_len + end {
            self.buf.resize(header_len + end, 0);
        }
        fill_holes(&mut self.buf[header_len..], &mut self.have, start, data);
    }

    fn complete(&self) -> bool {
        matches!((self.total, self.have.as_slice()), (Some(t), [(0, e)]) if *e == t)
    }

    /// Whether `[start, start + data.len())` meets a received range.
    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.have.iter().any(|&(a, b)| a < end && start < b)
    }

    /// Whether a fragment is an exact copy of bytes already received: its
    /// range lies inside one received range with the same bytes, and it
    /// agrees on the end when it is the last fragment.
    fn duplicate(&self, header_len: usize, start: usize, data: &[u8], more: bool) -> bool {
        let end = start + data.len();
        let inside = self.have.iter().any(|&(a, b)| a <= start && end <= b);
        let ends_right = more || self.total == Some(end);
        inside && ends_right && self.buf.get(header_len + start..header_len + end) == Some(data)
    }
}

/// Reassembles fragmented datagrams of one IP version, deterministically:
/// `frag::Reassembler` for IPv4, `frag6::Reassembler6` for IPv6.
#[derive(Debug)]
pub struct Reassembly<F: Family> {
    timeout: SimDuration,
    /// Bound of `held`.
    max_bytes: usize,
    /// Memory charged to pending datagrams: each one's buffer length (header
    /// plus payload up to its furthest fragment: a lone fragment at offset
    /// 65,000 costs 65 KB) plus [`PARTIAL_COST`].
    held: usize,
    /// Fragments dropped because of `max_bytes`.
    over_budget: u64,
    pending: BTreeMap<F::Key, Partial<F::Header>>,
    pool: Vec<Vec<u8>>,
    ranges_pool: Vec<Vec<(usize, usize)>>,
}

impl<F: Family> Reassembly<F> {
    /// A reassembler that discards a datagram `timeout` after its first
    /// fragment arrived.
    pub fn new(timeout: SimDuration) -> Self {
        Reassembly {
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

    /// Drop the datagram `key`, if pending, and return its memory.
    fn discard(&mut self, key: &F::Key) {
        if let Some(mut p) = self.pending.remove(key) {
            self.held = self.held.saturating_sub(p.buf.len() + PARTIAL_COST);
            give_back(&mut self.pool, &mut self.ranges_pool, &mut p);
        }
    }

    /// Accept a packet at `now`. A packet that is not a fragment (and an
    /// IPv6 atomic fragment) is returned whole at once. A fragment is
    /// stored; when it fills the last hole the reassembled datagram is
    /// returned: the header of the fragment at offset 0, rewritten by the
    /// family for the whole payload, then the payload. Give returned buffers
    /// back with [`recycle`](Self::recycle) to avoid allocation.
    pub fn push(&mut self, now: SimTime, packet: &[u8]) -> Result<Option<Vec<u8>>, F::Error> {
        let (key, header, start, data, more) = match F::parse(packet)? {
            Parsed::Whole(bytes) => {
                let mut out = self.take_buf();
                out.extend_from_slice(bytes);
                return Ok(Some(out));
            }
            Parsed::Unfragmented { header, payload } => {
                let mut out = self.take_buf();
                out.resize(F::HEADER_LEN, 0);
                if let Err(e) = F::write_header(&header, payload.len(), &mut out) {
                    self.recycle(out);
                    return Err(e);
                }
                out.extend_from_slice(payload);
                return Ok(Some(out));
            }
            Parsed::Fragment {
                key,
                header,
                start,
                data,
                more,
            } => (key, header, start, data, more),
        };
        let end = start + data.len();
        // RFC 791 §3.2, RFC 8200 §4.5: every fragment but the last carries a
        // multiple of 8 bytes.
        if more && data.len() % 8 != 0 {
            return Err(Refused::Misaligned {
                offset: start,
                len: data.len(),
            }
            .into());
        }
        if end > F::MAX_PAYLOAD {
            return Err(Refused::TooLong {
                end,
                what: F::LIMITED,
            }
            .into());
        }
        // A datagram past its deadline is gone even if expire() was not called.
        if self
            .pending
            .get(&key)
            .is_some_and(|p| now >= p.first_arrival + self.timeout)
        {
            self.discard(&key);
        }
        // Memory bound: what this fragment adds (a new entry, the buffer
        // grown to its end); past the bound it is dropped.
        let grow = match self.pending.get(&key) {
            Some(p) => (F::HEADER_LEN + end).saturating_sub(p.buf.len()),
            None => F::HEADER_LEN + end + PARTIAL_COST,
        };
        if self.held + grow > self.max_bytes {
            self.over_budget += 1;
            return Err(Refused::OverBudget {
                held: self.held,
                need: grow,
                max: self.max_bytes,
            }
            .into());
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
        let conflict = match (p.total, more) {
            (Some(t), true) => end > t,
            (Some(t), false) => end != t,
            (None, false) => known_end > end,
            (None, true) => false,
        };
        if conflict {
            let total = p.total.unwrap_or(end);
            self.discard(&key);
            return Err(Refused::Inconsistent { start, end, total }.into());
        }
        if p.overlaps(start, end) {
            if let Some(err) = F::overlap(start, end) {
                if p.duplicate(F::HEADER_LEN, start, data, more) {
                    return Ok(None);
                }
                self.discard(&key);
                return Err(err);
            }
        }
        if !more {
            p.total = Some(end);
        }
        if start == 0 && p.header.is_none() {
            p.header = Some(header);
        }
        let before = p.buf.len();
        p.insert(F::HEADER_LEN, start, data);
        self.held += p.buf.len() - before;
        if !p.complete() {
            return Ok(None);
        }
        let Some(mut done) = self.pending.remove(&key) else {
            return Ok(None);
        };
        self.held = self.held.saturating_sub(done.buf.len() + PARTIAL_COST);
        let (Some(header), Some(total)) = (done.header, done.total) else {
            // complete() implies offset 0 arrived and total is known.
            give_back(&mut self.pool, &mut self.ranges_pool, &mut done);
            return Ok(None);
        };
        let mut buf = std::mem::take(&mut done.buf);
        give_back(&mut self.pool, &mut self.ranges_pool, &mut done); // the interval set
        buf.truncate(F::HEADER_LEN + total);
        if let Err(e) = F::write_header(&header, total, &mut buf[..F::HEADER_LEN]) {
            self.recycle(buf);
            return Err(e);
        }
        Ok(Some(buf))
    }

    /// Drop every datagram whose deadline (first fragment + timeout) is at or
    /// before `now` (RFC 791 §3.2, RFC 8200 §4.5: when the timer runs out,
    /// all reassembly resources for the datagram are released). Returns how
    /// many.
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
fn give_back<H>(
    pool: &mut Vec<Vec<u8>>,
    ranges_pool: &mut Vec<Vec<(usize, usize)>>,
    p: &mut Partial<H>,
) {
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
