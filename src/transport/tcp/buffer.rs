//! Send and receive byte rings.
//!
//! Both start empty (no heap) and grow on demand up to their capacity, so a
//! connection that only ever carries small MQTT packets holds a small buffer,
//! and both give their storage back whenever they hold nothing: a million
//! mostly idle connections hold no buffer at all (issue 22). A busy
//! connection keeps its storage while data is outstanding. The receive ring
//! also stores out-of-order data at its offset from RCV.NXT, with the holes
//! tracked by [`Assembler`] (a fixed array of ranges, as smoltcp's, boxed
//! only while out-of-order data is held).

/// Smallest physical size a ring grows to.
const MIN_GROW: usize = 256;

/// A ring of bytes with a capacity limit; physical storage grows lazily.
#[derive(Debug, Clone, Default)]
struct Ring {
    /// Exactly the physical size (a boxed slice: no spare capacity word).
    data: Box<[u8]>,
    /// Within `data`; a buffer's capacity is a `u32`.
    head: u32,
}

impl Ring {
    fn phys(&self) -> usize {
        self.data.len()
    }
    /// Make room for `need` bytes from `head` (keeping `keep` bytes in
    /// order), never beyond `cap`.
    fn ensure(&mut self, need: usize, keep: usize, cap: usize) {
        let need = need.min(cap);
        if need <= self.phys() {
            return;
        }
        let new_len = need.max(self.phys() * 2).max(MIN_GROW).min(cap);
        let mut v = vec![0u8; new_len].into_boxed_slice();
        let keep = keep.min(self.phys());
        self.copy_out(0, &mut v[..keep]);
        self.data = v;
        self.head = 0;
    }
    /// Copy `out.len()` bytes starting `off` bytes after `head`.
    fn copy_out(&self, off: usize, out: &mut [u8]) {
        let n = self.phys();
        if n == 0 || out.is_empty() {
            return;
        }
        let start = (self.head as usize + off) % n;
        let first = out.len().min(n - start);
        out[..first].copy_from_slice(&self.data[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.data[..rest]);
    }
    /// Copy `src` to `off` bytes after `head` (caller ensured the room).
    fn copy_in(&mut self, off: usize, src: &[u8]) {
        let n = self.phys();
        if n == 0 || src.is_empty() {
            return;
        }
        let start = (self.head as usize + off) % n;
        let first = src.len().min(n - start);
        self.data[start..start + first].copy_from_slice(&src[..first]);
        let rest = src.len() - first;
        self.data[..rest].copy_from_slice(&src[first..]);
    }
    fn advance(&mut self, n: usize) {
        if self.phys() > 0 {
            self.head = ((self.head as usize + n) % self.phys()) as u32;
        }
    }
    /// Free the storage (the ring holds nothing).
    fn release(&mut self) {
        if self.phys() > 0 {
            self.data = Box::default();
            self.head = 0;
        }
    }
}

/// Data written by the application and not yet acknowledged.
#[derive(Debug, Clone, Default)]
pub struct SendBuffer {
    ring: Ring,
    len: u32,
    cap: u32,
}

impl SendBuffer {
    /// An empty buffer accepting up to `cap` bytes.
    pub fn new(cap: u32) -> Self {
        SendBuffer {
            ring: Ring::default(),
            len: 0,
            cap,
        }
    }
    /// Bytes held (sent-unacknowledged plus unsent).
    pub fn len(&self) -> u32 {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes `write` would still accept.
    pub fn free(&self) -> u32 {
        self.cap - self.len
    }
    /// Append as much of `data` as fits; returns the count.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free() as usize);
        let len = self.len as usize;
        self.ring.ensure(len + n, len, self.cap as usize);
        self.ring.copy_in(len, &data[..n]);
        self.len += n as u32;
        n
    }
    /// Copy up to `out.len()` bytes starting `off` bytes into the buffer;
    /// returns the count.
    pub fn peek(&self, off: u32, out: &mut [u8]) -> usize {
        let avail = self.len.saturating_sub(off) as usize;
        let n = out.len().min(avail);
        self.ring.copy_out(off as usize, &mut out[..n]);
        n
    }
    /// Drop `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: u32) {
        let n = n.min(self.len);
        self.ring.advance(n as usize);
        self.len -= n;
        if self.len == 0 {
            self.ring.release();
        }
    }
}

/// Most out-of-order ranges remembered; a segment that would need more is
/// dropped (the sender retransmits it).
pub const MAX_RANGES: usize = 4;

/// Out-of-order ranges `[start, end)` as offsets from RCV.NXT, sorted and
/// disjoint, not touching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assembler {
    ranges: [(u32, u32); MAX_RANGES],
    count: u8,
}

/// What a receive buffer without out-of-order data reports.
const NO_RANGES: Assembler = Assembler {
    ranges: [(0, 0); MAX_RANGES],
    count: 0,
};

impl Assembler {
    /// Number of ranges held.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }
    /// True when no out-of-order data is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The ranges held.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges[..self.len()]
    }
    /// Add `[start, end)`, merging with overlapping or adjacent ranges.
    /// Returns false (and changes nothing) when more than [`MAX_RANGES`]
    /// ranges would be needed.
    pub fn add(&mut self, start: u32, end: u32) -> bool {
        if start >= end {
            return true;
        }
        let mut out = [(0u32, 0u32); MAX_RANGES + 1];
        let mut n = 0;
        let (mut s, mut e) = (start, end);
        let mut placed = false;
        for &(a, b) in self.ranges() {
            if b < s {
                out[n] = (a, b);
                n += 1;
            } else if a > e {
                if !placed {
                    out[n] = (s, e);
                    n += 1;
                    placed = true;
                }
                out[n] = (a, b);
                n += 1;
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        if !placed {
            out[n] = (s, e);
            n += 1;
        }
        if n > MAX_RANGES {
            return false;
        }
        self.ranges[..n].copy_from_slice(&out[..n]);
        self.count = n as u8;
        true
    }
    /// If a range starts at 0, remove it and return its end; shift the rest.
    pub fn pop_front(&mut self) -> u32 {
        if self.count == 0 || self.ranges[0].0 != 0 {
            return 0;
        }
        let adv = self.ranges[0].1;
        let n = self.len();
        for i in 1..n {
            let (a, b) = self.ranges[i];
            self.ranges[i - 1] = (a - adv, b - adv);
        }
        self.count -= 1;
        adv
    }
}

/// Received data: in-order bytes the application has not read, then
/// out-of-order bytes at their offsets.
#[derive(Debug, Clone, Default)]
pub struct RecvBuffer {
    ring: Ring,
    readable: u32,
    cap: u32,
    /// Out-of-order ranges; `None` while there are none (almost always),
    /// so a connection does not carry the array inline.
    asm: Option<Box<Assembler>>,
    /// The test-only broken receiver (`mutant_deliver_out_of_order`).
    mutant_ooo: bool,
}

impl RecvBuffer {
    /// An empty buffer of capacity `cap`.
    pub fn new(cap: u32) -> Self {
        RecvBuffer {
            ring: Ring::default(),
            readable: 0,
            cap,
            asm: None,
            mutant_ooo: false,
        }
    }
    /// In-order bytes waiting for `read`.
    pub fn readable(&self) -> u32 {
        self.readable
    }
    /// Room after the readable bytes: the receive window.
    pub fn window(&self) -> u32 {
        self.cap - self.readable
    }
    /// Capacity.
    pub fn capacity(&self) -> u32 {
        self.cap
    }
    /// Out-of-order ranges held.
    pub fn assembler(&self) -> &Assembler {
        self.asm.as_deref().unwrap_or(&NO_RANGES)
    }
    /// Store `data` at `off` bytes past RCV.NXT (trimmed to the window).
    /// Returns how many bytes became in-order (RCV.NXT advances by that),
    /// or `None` when out-of-order data could not be stored.
    pub fn insert(&mut self, off: u32, data: &[u8]) -> Option<u32> {
        // the test-only broken receiver takes out-of-order bytes as the next
        let off = if off > 0 && self.mutant_ooo { 0 } else { off };
        let win = self.window();
        if off >= win {
            return if data.is_empty() { Some(0) } else { None };
        }
        let n = (data.len() as u64).min(u64::from(win - off)) as u32;
        if n == 0 {
            return Some(0);
        }
        if off > 0 || self.asm.is_some() {
            let asm = self.asm.get_or_insert_with(Box::default);
            if !asm.add(off, off + n) {
                if asm.is_empty() {
                    self.asm = None;
                }
                return None;
            }
        }
        let r = self.readable as usize;
        self.ring.ensure(
            r + (off + n) as usize,
            r + self.max_end().max((off + n) as usize),
            self.cap as usize,
        );
        self.ring.copy_in(r + off as usize, &data[..n as usize]);
        // in order with nothing held: all of it is readable
        let adv = match self.asm.as_deref_mut() {
            None => n,
            Some(asm) => {
                let adv = asm.pop_front();
                if asm.is_empty() {
                    self.asm = None;
                }
                adv
            }
        };
        self.readable += adv;
        Some(adv)
    }
    fn max_end(&self) -> usize {
        self.assembler().ranges().last().map_or(0, |r| r.1 as usize)
    }
    /// Test-only mutation (tests/monitors.rs): from now on, out-of-order
    /// data is taken as the next in-order bytes (RFC 9293 §3.10.7.4 broken).
    #[doc(hidden)]
    pub fn mutant_deliver_out_of_order(&mut self) {
        self.mutant_ooo = true;
    }
    /// Copy readable bytes into `out` and consume them.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable as usize);
        self.ring.copy_out(0, &mut out[..n]);
        self.ring.advance(n);
        self.readable -= n as u32;
        if self.readable == 0 && self.asm.is_none() {
            self.ring.release();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_ring_wraps() {
        let mut b = SendBuffer::new(300);
        let chunk: Vec<u8> = (0..200u8).collect();
        assert_eq!(b.write(&chunk), 200);
        b.consume(150);
        assert_eq!(b.write(&chunk), 200);
        assert_eq!(b.write(&chunk), 50);
        let mut out = vec![0; 300];
        assert_eq!(b.peek(0, &mut out), 300);
        assert_eq!(&out[..50], &chunk[150..]);
        assert_eq!(&out[50..250], &chunk[..]);
    }

    #[test]
    fn recv_reassembles_out_of_order() {
        let mut b = RecvBuffer::new(1000);
        assert_eq!(b.insert(10, &[2; 10]), Some(0));
        assert_eq!(b.insert(30, &[4; 10]), Some(0));
        assert_eq!(b.insert(0, &[1; 10]), Some(20));
        assert_eq!(b.insert(0, &[3; 10]), Some(20));
        let mut out = [0u8; 40];
        assert_eq!(b.read(&mut out), 40);
        assert_eq!(&out[..10], &[1; 10]);
        assert_eq!(&out[30..], &[4; 10]);
    }

    #[test]
    fn assembler_refuses_fifth_hole() {
        let mut a = Assembler::default();
        for i in 0..4 {
            assert!(a.add(10 + 10 * i, 15 + 10 * i));
        }
        assert!(!a.add(100, 101));
        assert!(a.add(15, 20));
        assert_eq!(a.len(), 3);
    }
}
