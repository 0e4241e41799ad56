//! Hash maps with a fixed hasher, for state that is looked up by key and
//! never iterated into output.
//!
//! `std`'s default hasher draws a random key per process; a map that is
//! only probed by key would not leak that into results, but a fixed hasher
//! makes the point moot and is faster on the small integer keys the
//! protocol layers use. A hash map keeps its table when entries are
//! removed (a removal leaves a tombstone; a full table is rehashed in
//! place while it is at most half live), so a map whose population slides
//! over a window allocates nothing once it has reached its peak size —
//! unlike a B-tree, which frees and allocates nodes as the window slides.
//!
//! Iterating one of these maps visits entries in an order that depends on
//! the hash and the history of the table: never let that order reach an
//! output.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher (FxHash's step and constant): each word is
/// rotated in and multiplied. Deterministic across processes.
#[derive(Default, Clone, Copy, Debug)]
pub struct FixedHasher(u64);

impl Hasher for FixedHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// The `BuildHasher` of [`FixedHasher`].
pub type FixedState = BuildHasherDefault<FixedHasher>;

/// A `HashMap` with the fixed hasher (create with `FixedMap::default()`).
pub type FixedMap<K, V> = HashMap<K, V, FixedState>;

/// A `HashSet` with the fixed hasher (create with `FixedSet::default()`).
pub type FixedSet<T> = HashSet<T, FixedState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(v: T) -> u64 {
        FixedState::default().hash_one(v)
    }

    #[test]
    fn hashes_are_fixed_and_tell_nearby_keys_apart() {
        // the same in every process: a pinned value
        assert_eq!(hash_of(1u64), 0x517c_c1b7_2722_0a95);
        assert_eq!(hash_of(7u32), hash_of(7u64));
        assert_ne!(hash_of(1u64), hash_of(2u64));
        // byte slices of different lengths with the same prefix differ
        assert_ne!(hash_of([1u8, 0]), hash_of([1u8]));
        assert_ne!(hash_of(&b"abcdefgh1"[..]), hash_of(&b"abcdefgh"[..]));
    }

    #[test]
    fn a_sliding_window_stops_allocating_after_its_peak() {
        // keys enter at the back and leave at the front, 500 live at once:
        // the table keeps its size (capacity) however long it runs
        let mut m: FixedMap<u64, u64> = FixedMap::default();
        for k in 0..500u64 {
            m.insert(k, k);
        }
        let mut cap = 0;
        for k in 500..200_000u64 {
            m.insert(k, k);
            m.remove(&(k - 500));
            if k == 5_000 {
                cap = m.capacity();
            }
        }
        assert_eq!(m.len(), 500);
        assert_eq!(m.capacity(), cap, "the table was reallocated");
    }
}
