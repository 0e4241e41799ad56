//! The receive side of a TCP connection's byte stream: a fixed-capacity ring
//! buffer with out-of-order reassembly (RFC 9293 §3.10.7.4: segments beyond
//! RCV.NXT are kept and delivered when the gap fills), allocation-free after
//! construction.
//!
//! Offsets are relative to RCV.NXT (the next byte the application has not
//! yet received in order). The buffer holds the unread in-order bytes
//! followed by a window of out-of-order data; `ranges` lists which bytes past
//! the in-order data are present (sorted, disjoint, at most `MAX_RANGES`; a
//! segment that would need more is dropped, as a real stack with a bounded
//! out-of-order queue would, and the sender retransmits it).

/// Out-of-order ranges kept at once.
pub const MAX_RANGES: usize = 8;

/// Receive buffer.
#[derive(Debug, Clone)]
pub struct RecvBuffer {
    buf: Vec<u8>,
    /// Ring index of the first unread byte.
    head: usize,
    /// Unread in-order bytes.
    len: usize,
    /// Out-of-order data as (start, end) offsets after the in-order bytes.
    ranges: [(usize, usize); MAX_RANGES],
    n_ranges: usize,
}

impl RecvBuffer {
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            buf: vec![0; capacity.max(1)],
            head: 0,
            len: 0,
            ranges: [(0, 0); MAX_RANGES],
            n_ranges: 0,
        }
    }
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
    /// In-order bytes ready for the application.
    pub fn readable(&self) -> usize {
        self.len
    }
    /// The receive window to advertise: free space after the in-order bytes.
    pub fn window(&self) -> usize {
        self.buf.len() - self.len
    }
    /// Whether out-of-order data is held (so a duplicate ACK is due).
    pub fn has_gaps(&self) -> bool {
        self.n_ranges > 0
    }

    fn copy_in(&mut self, at: usize, data: &[u8]) {
        let cap = self.buf.len();
        let mut i = (self.head + self.len + at) % cap;
        for &b in data {
            self.buf[i] = b;
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Accept `data` whose first byte is `offset` bytes after RCV.NXT.
    /// Returns how many bytes RCV.NXT advanced (0 for out-of-order data, or
    /// for data entirely duplicate / outside the window).
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let win = self.window();
        if offset >= win || data.is_empty() {
            return 0;
        }
        let data = &data[..data.len().min(win - offset)];
        let (s, e) = (offset, offset + data.len());
        // merge [s, e) into the ranges (sorted, disjoint, touching merged)
        let mut merged = (s, e);
        let mut out = [(0usize, 0usize); MAX_RANGES];
        let mut n = 0;
        let mut placed = false;
        for &(a, b) in &self.ranges[..self.n_ranges] {
            if b < merged.0 {
                out[n] = (a, b);
                n += 1;
            } else if a > merged.1 {
                if !placed {
                    if n == MAX_RANGES {
                        return 0;
                    }
                    out[n] = merged;
                    n += 1;
                    placed = true;
                }
                if n == MAX_RANGES {
                    return 0;
                }
                out[n] = (a, b);
                n += 1;
            } else {
                merged = (merged.0.min(a), merged.1.max(b));
            }
        }
        if !placed {
            if n == MAX_RANGES {
                return 0; // too fragmented: drop, the peer retransmits
            }
            out[n] = merged;
            n += 1;
        }
        self.copy_in(s, data);
        self.ranges = out;
        self.n_ranges = n;
        // a range starting at 0 is now in order
        if self.n_ranges > 0 && self.ranges[0].0 == 0 {
            let adv = self.ranges[0].1;
            self.len += adv;
            for i in 1..self.n_ranges {
                let (a, b) = self.ranges[i];
                self.ranges[i - 1] = (a - adv, b - adv);
            }
            self.n_ranges -= 1;
            return adv;
        }
        0
    }

    /// Copy in-order bytes to `out`; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        let cap = self.buf.len();
        for (k, o) in out.iter_mut().enumerate().take(n) {
            *o = self.buf[(self.head + k) % cap];
        }
        self.head = (self.head + n) % cap;
        self.len -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_then_fill() {
        let mut r = RecvBuffer::new(16);
        assert_eq!(r.write_at(4, b"efgh"), 0);
        assert!(r.has_gaps());
        assert_eq!(
            r.write_at(0, b"abcd"),
            8,
            "the gap fills: both segments in order"
        );
        let mut out = [0u8; 16];
        assert_eq!(r.read(&mut out), 8);
        assert_eq!(&out[..8], b"abcdefgh");
        assert_eq!(r.window(), 16);
    }

    #[test]
    fn window_limits_and_duplicates() {
        let mut r = RecvBuffer::new(8);
        assert_eq!(r.write_at(0, b"0123456789"), 8, "trimmed to the window");
        assert_eq!(r.window(), 0);
        assert_eq!(r.write_at(0, b"x"), 0, "zero window: nothing accepted");
        let mut out = [0u8; 3];
        r.read(&mut out);
        assert_eq!(&out, b"012");
        assert_eq!(r.window(), 3);
        // wraps around the ring
        assert_eq!(r.write_at(0, b"abc"), 3);
        let mut all = [0u8; 8];
        assert_eq!(r.read(&mut all), 8);
        assert_eq!(&all, b"34567abc");
    }
}
