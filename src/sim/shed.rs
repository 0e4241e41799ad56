//! Give back the storage of a queue once it is empty.
//!
//! A run holds one of each queue per client: with a million mostly idle
//! clients, each keeping the largest queue it ever held costs gigabytes
//! (issue 22, BENCHMARKS.md "A million MQTT clients"). The price is one
//! small allocation when a queue next fills, which the allocator serves
//! from its thread cache.

use std::collections::VecDeque;

/// Free `q`'s storage when it holds nothing.
#[inline]
pub fn shed_deque<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 0 {
        *q = VecDeque::new();
    }
}

/// Free `v`'s storage when it holds nothing.
#[inline]
pub fn shed_vec<T>(v: &mut Vec<T>) {
    if v.is_empty() && v.capacity() > 0 {
        *v = Vec::new();
    }
}

/// Push onto a vector holding one entry per client or connection, growing
/// it by an eighth instead of doubling: at a million clients a doubled
/// vector of sockets could hold half a gigabyte it never uses. Still
/// amortised O(1); large blocks are grown in place by the allocator.
#[inline]
pub fn push_frugal<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.capacity() / 8).max(16));
    }
    v.push(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frees_only_empty_storage() {
        let mut q: VecDeque<u8> = VecDeque::from(vec![1, 2]);
        shed_deque(&mut q);
        assert_eq!(q.len(), 2);
        q.clear();
        shed_deque(&mut q);
        assert_eq!(q.capacity(), 0);
        let mut v = vec![1u8];
        shed_vec(&mut v);
        assert!(v.capacity() > 0);
        v.pop();
        shed_vec(&mut v);
        assert_eq!(v.capacity(), 0);
    }

    #[test]
    fn frugal_growth_keeps_little_slack() {
        let mut v = Vec::new();
        for i in 0..100_000u32 {
            push_frugal(&mut v, i);
            assert!(v.capacity() <= v.len() + (v.len() / 8).max(16));
        }
        assert_eq!(v.len(), 100_000);
        assert_eq!(v[99_999], 99_999);
    }
}
