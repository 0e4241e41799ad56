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

use crate::net::addr::SockAddr;
use crate::sim::SimTime;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// A remembered message ID and the reply to repeat for duplicates.
#[derive(Debug, Clone)]
pub(crate) struct DedupEntry {
    pub expires: SimTime,
    /// For a CON: the ACK (piggybacked or Empty) sent in reply, resent
    /// verbatim when a duplicate arrives.
    pub reply: Option<Box<[u8]>>,
}

/// A multiplicative hasher for the packed `u64` keys (FxHash's constant).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// `(peer, message ID)` packed into one integer (an [`Addr`] is 4 bytes
/// whatever its family).
///
/// [`Addr`]: crate::net::addr::Addr
pub(crate) fn key(peer: SockAddr, mid: u16) -> u64 {
    (u64::from(peer.addr.to_bits()) << 32) | (u64::from(peer.port) << 16) | u64::from(mid)
}

/// The deduplication store of one endpoint (allocates nothing until used).
#[derive(Debug, Default)]
pub(crate) struct DedupCache {
    entries: HashMap<u64, DedupEntry, BuildHasherDefault<KeyHasher>>,
    /// Per lifetime class (0: CON, 1: NON): (expiry, key) in insertion order.
    expiry: [VecDeque<(SimTime, u64)>; 2],
}

impl DedupCache {
    /// Drop every entry whose lifetime ended at or before `now`.
    pub(crate) fn expire(&mut self, now: SimTime) {
        for q in &mut self.expiry {
            while let Some(&(t, k)) = q.front() {
                if t > now {
                    break;
                }
                q.pop_front();
                if self.entries.get(&k).is_some_and(|e| e.expires == t) {
                    self.entries.remove(&k);
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
        self.entries.insert(k, DedupEntry { expires, reply });
        self.expiry[class.min(1)].push_back((expires, k));
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
                e.reply = Some(reply);
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
        assert_ne!(key(a, 1), key(b, 1));
        assert_ne!(key(a, 1), key(a, 2));
    }
}
