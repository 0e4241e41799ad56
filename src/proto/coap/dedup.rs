//! Message-ID deduplication (RFC 7252 §4.5): which `(source, message ID)`
//! pairs were seen recently, and the reply to repeat for a duplicate CON.
//!
//! Entries live EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON) and are
//! purged in expiry order whenever the endpoint handles an input, so they
//! never need a timer of their own. Within one class every entry lives
//! equally long and time never goes back, so each class's expiry list is a
//! FIFO already in order: O(1) per entry, no heap.
//!
//! Lookups go through a hash map keyed by the packed `(address, port,
//! message ID)`; it is only ever probed by key, never iterated, so its order
//! cannot reach any output, and its hasher is fixed (no per-process random
//! state), so runs stay deterministic.
//!
//! Storage is reused: the expiry rings and the map keep their capacity, so
//! once the store has held NON_LIFETIME's (or EXCHANGE_LIFETIME's) worth of
//! IDs it allocates nothing more while the traffic stays the same. It may
//! grow with the traffic; an ID is forgotten before its lifetime only when
//! the configured bounds (`max_dedup_entries`, `max_dedup_bytes`; unbounded
//! by default) demand it, and that is counted.

use crate::net::addr::SockAddr;
use crate::sim::FixedMap;
use crate::sim::SimTime;
use std::collections::hash_map::Entry;
use std::collections::VecDeque;

/// A remembered message ID and the reply to repeat for duplicates.
#[derive(Debug, Clone)]
pub(crate) struct DedupEntry {
    pub expires: SimTime,
    /// For a CON: the ACK (piggybacked or Empty) sent in reply, resent
    /// verbatim when a duplicate arrives.
    pub reply: Option<Box<[u8]>>,
}

/// `(peer, message ID)` packed into one integer (an [`Addr`] is 4 bytes
/// whatever its family).
///
/// [`Addr`]: crate::net::addr::Addr
pub(crate) fn key(peer: SockAddr, mid: u16) -> u64 {
    (u64::from(peer.addr.to_bits()) << 32) | (u64::from(peer.port) << 16) | u64::from(mid)
}

/// The deduplication store of one endpoint (allocates nothing until used).
#[derive(Debug)]
pub(crate) struct DedupCache {
    entries: FixedMap<u64, DedupEntry>,
    /// Per lifetime class (0: CON, 1: NON): (expiry, key) in insertion order.
    expiry: [VecDeque<(SimTime, u64)>; 2],
    /// Bytes of the cached replies held.
    reply_bytes: usize,
    /// Most entries and reply bytes held (`usize::MAX`: unbounded).
    max_entries: usize,
    max_bytes: usize,
    /// Live entries forgotten before their lifetime ended, to stay within
    /// the bounds.
    evicted: u64,
}

impl Default for DedupCache {
    fn default() -> Self {
        DedupCache::bounded(usize::MAX, usize::MAX)
    }
}

impl DedupCache {
    /// A store holding at most `max_entries` message IDs (at least 1) and
    /// `max_bytes` bytes of cached replies.
    pub(crate) fn bounded(max_entries: usize, max_bytes: usize) -> Self {
        DedupCache {
            entries: FixedMap::default(),
            expiry: [VecDeque::new(), VecDeque::new()],
            reply_bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
            evicted: 0,
        }
    }

    /// Live entries forgotten early to stay within the bounds.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Remove the entry `k` if its expiry is `t` (else the record is a
    /// stale one of a replaced entry); whether it did.
    fn remove_if(&mut self, k: u64, t: SimTime) -> bool {
        if self.entries.get(&k).is_none_or(|e| e.expires != t) {
            return false;
        }
        if let Some(e) = self.entries.remove(&k) {
            self.reply_bytes -= e.reply.as_ref().map_or(0, |r| r.len());
        }
        true
    }

    /// Forget the entries closest to expiry until both bounds hold.
    fn shed(&mut self) {
        while self.entries.len() > self.max_entries || self.reply_bytes > self.max_bytes {
            let class = match (self.expiry[0].front(), self.expiry[1].front()) {
                (Some(a), Some(b)) => usize::from(b.0 < a.0),
                (Some(_), None) => 0,
                (None, Some(_)) => 1,
                (None, None) => return,
            };
            if let Some((t, k)) = self.expiry[class].pop_front() {
                if self.remove_if(k, t) {
                    self.evicted += 1;
                }
            }
        }
    }

    /// Drop every entry whose lifetime ended at or before `now`.
    pub(crate) fn expire(&mut self, now: SimTime) {
        for q in &mut self.expiry {
            while let Some(&(t, k)) = q.front() {
                if t > now {
                    break;
                }
                q.pop_front();
                // one probe: a replaced entry (newer expiry) stays
                if let Entry::Occupied(e) = self.entries.entry(k) {
                    if e.get().expires == t {
                        let n = e.get().reply.as_ref().map_or(0, |r| r.len());
                        e.remove();
                        self.reply_bytes -= n;
                    }
                }
            }
        }
    }

    /// Remember `(peer, mid)` until `expires`, replacing an older entry (whose
    /// stale expiry record is skipped when it comes due). `class` is 0 for
    /// CON and 1 for NON entries: within a class, `expires` must not decrease.
    pub(crate) fn insert(
        &mut self,
        peer: SockAddr,
        mid: u16,
        class: usize,
        expires: SimTime,
        reply: Option<Box<[u8]>>,
    ) {
        let k = key(peer, mid);
        self.reply_bytes += reply.as_ref().map_or(0, |r| r.len());
        if let Some(old) = self.entries.insert(k, DedupEntry { expires, reply }) {
            self.reply_bytes -= old.reply.as_ref().map_or(0, |r| r.len());
        }
        self.expiry[class.min(1)].push_back((expires, k));
        self.shed();
    }

    /// The live entry for `(peer, mid)` at `now`.
    pub(crate) fn lookup(&self, now: SimTime, peer: SockAddr, mid: u16) -> Option<&DedupEntry> {
        self.entries
            .get(&key(peer, mid))
            .filter(|e| e.expires > now)
    }

    /// Attach the reply to repeat for duplicates of `(peer, mid)`, keeping
    /// the entry's lifetime; `Err` gives `reply` back when no entry exists.
    pub(crate) fn set_reply(
        &mut self,
        peer: SockAddr,
        mid: u16,
        reply: Box<[u8]>,
    ) -> Result<(), Box<[u8]>> {
        match self.entries.get_mut(&key(peer, mid)) {
            Some(e) => {
                self.reply_bytes += reply.len();
                if let Some(old) = e.reply.replace(reply) {
                    self.reply_bytes -= old.len();
                }
                self.shed();
                Ok(())
            }
            None => Err(reply),
        }
    }

    /// The cached reply bytes for `(peer, mid)`.
    pub(crate) fn reply(&self, peer: SockAddr, mid: u16) -> Option<&[u8]> {
        self.entries
            .get(&key(peer, mid))
            .and_then(|e| e.reply.as_deref())
    }

    /// Number of remembered IDs.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn entries_expire_in_time_order_and_replacements_keep_the_newest() {
        let a = SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5683));
        let b = SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5683));
        let mut d = DedupCache::default();
        d.insert(a, 1, 0, SimTime(100), None);
        d.insert(b, 1, 1, SimTime(50), Some(vec![1, 2].into()));
        d.insert(a, 1, 0, SimTime(200), None); // replaced: lives to 200
        assert_eq!(d.len(), 2);
        assert_eq!(d.reply(a, 1), None);
        assert_eq!(d.set_reply(a, 1, vec![9].into()), Ok(()));
        assert_eq!(d.reply(a, 1), Some(&[9u8][..]));
        assert!(
            d.set_reply(a, 2, vec![9].into()).is_err(),
            "no entry, no reply"
        );
        assert_eq!(d.reply(b, 1), Some(&[1u8, 2][..]));
        d.expire(SimTime(50));
        assert!(d.lookup(SimTime(50), b, 1).is_none());
        d.expire(SimTime(150));
        assert!(
            d.lookup(SimTime(150), a, 1).is_some(),
            "the replacement outlives the first record"
        );
        d.expire(SimTime(200));
        assert_eq!(d.len(), 0);
        assert_eq!(d.reply_bytes, 0);
        assert_ne!(key(a, 1), key(b, 1));
        assert_ne!(key(a, 1), key(a, 2));
    }

    #[test]
    fn bounds_forget_the_entries_closest_to_expiry_first() {
        let p = |n: u8| SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 5683));
        // at most 3 entries
        let mut d = DedupCache::bounded(3, usize::MAX);
        for (i, t) in [(1u8, 100u64), (2, 110), (3, 120)] {
            d.insert(p(i), 1, 0, SimTime(t), None);
        }
        // a NON entry expiring sooner than every CON one goes first
        d.insert(p(4), 1, 1, SimTime(50), None);
        assert_eq!((d.len(), d.evicted()), (3, 1));
        assert!(d.lookup(SimTime(0), p(4), 1).is_none());
        d.insert(p(5), 1, 0, SimTime(130), None);
        assert_eq!((d.len(), d.evicted()), (3, 2));
        assert!(d.lookup(SimTime(0), p(1), 1).is_none(), "the oldest CON");
        assert!(d.lookup(SimTime(0), p(2), 1).is_some());
        // a replaced entry's stale record is not an eviction
        d.insert(p(2), 1, 0, SimTime(140), None);
        d.insert(p(6), 1, 0, SimTime(150), None);
        assert_eq!(d.evicted(), 3);
        assert!(d.lookup(SimTime(0), p(2), 1).is_some(), "renewed to 140");
        assert!(d.lookup(SimTime(0), p(3), 1).is_none());
        // at most 10 bytes of replies: a 6-byte reply pushes out an older one
        let mut d = DedupCache::bounded(usize::MAX, 10);
        d.insert(p(1), 1, 0, SimTime(100), Some(vec![0; 6].into()));
        d.insert(p(2), 1, 0, SimTime(110), None);
        assert_eq!(d.set_reply(p(2), 1, vec![0; 6].into()), Ok(()));
        assert_eq!((d.len(), d.evicted(), d.reply_bytes), (1, 1, 6));
        assert_eq!(d.reply(p(2), 1), Some(&[0u8; 6][..]));
        d.expire(SimTime(110));
        assert_eq!((d.len(), d.reply_bytes), (0, 0));
    }
}
