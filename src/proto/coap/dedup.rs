//! Message-ID deduplication (RFC 7252 §4.5): which `(source, message ID)`
//! pairs were seen recently, and the reply to repeat for a duplicate CON.
//!
//! Entries live EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON) and are
//! purged in expiry order (an ordered set, no scan) whenever the endpoint
//! handles an input, so they never need a timer of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddrV4;

use crate::sim::SimTime;

/// A remembered message ID and the reply to repeat for duplicates.
#[derive(Debug, Clone)]
pub(crate) struct DedupEntry {
    pub expires: SimTime,
    /// For a CON: the ACK (piggybacked or Empty) sent in reply, resent
    /// verbatim when a duplicate arrives.
    pub reply: Option<Box<[u8]>>,
}

/// The deduplication store of one endpoint (allocates nothing until used).
#[derive(Debug, Default)]
pub(crate) struct DedupCache {
    entries: BTreeMap<(SocketAddrV4, u16), DedupEntry>,
    expiry: BTreeSet<(SimTime, SocketAddrV4, u16)>,
}

impl DedupCache {
    /// Drop every entry whose lifetime ended at or before `now`.
    pub fn expire(&mut self, now: SimTime) {
        while let Some(&(t, peer, mid)) = self.expiry.first() {
            if t > now {
                break;
            }
            self.expiry.remove(&(t, peer, mid));
            if self
                .entries
                .get(&(peer, mid))
                .is_some_and(|e| e.expires == t)
            {
                self.entries.remove(&(peer, mid));
            }
        }
    }

    /// Remember `(peer, mid)` until `expires`, replacing an older entry.
    pub fn insert(
        &mut self,
        peer: SocketAddrV4,
        mid: u16,
        expires: SimTime,
        reply: Option<Box<[u8]>>,
    ) {
        if let Some(old) = self
            .entries
            .insert((peer, mid), DedupEntry { expires, reply })
        {
            self.expiry.remove(&(old.expires, peer, mid));
        }
        self.expiry.insert((expires, peer, mid));
    }

    /// The live entry for `(peer, mid)` at `now`.
    pub fn lookup(&self, now: SimTime, peer: SocketAddrV4, mid: u16) -> Option<&DedupEntry> {
        self.entries.get(&(peer, mid)).filter(|e| e.expires > now)
    }

    /// The cached reply bytes for `(peer, mid)`.
    pub fn reply(&self, peer: SocketAddrV4, mid: u16) -> Option<&[u8]> {
        self.entries
            .get(&(peer, mid))
            .and_then(|e| e.reply.as_deref())
    }

    /// Number of remembered IDs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
