//! The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
//! complement sum of the data taken as big-endian 16-bit words.
//!
//! Read first: RFC 1071 (computation, incremental update, byte-order
//! independence), RFC 1624 (incremental update `HC' = ~(~HC + ~m + m')`),
//! RFC 768 (UDP pseudo-header).
//!
//! The sum is accumulated in a `u64` four bytes at a time (RFC 1071 §2 (B):
//! adding wider words and folding the carries later gives the same one's
//! complement sum, because 2^16 ≡ 1 mod 2^16−1), then folded to 16 bits.
//! Nothing here indexes out of bounds; every input length is accepted.

use std::net::Ipv4Addr;

/// Add `data` to a running one's complement sum `acc` (not yet folded).
///
/// `data` is taken as big-endian 16-bit words; an odd trailing byte is padded
/// with a zero byte (RFC 1071 §4.1). Because of that padding, only the *last*
/// piece of a message may have odd length: pieces before it must be even.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Fold a running sum to 16 bits with end-around carries (RFC 1071 §4.1).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    // The loop leaves acc <= 0xFFFF, so the cast is exact.
    acc as u16
}

/// The Internet checksum of `data`: `!fold(sum)`.
///
/// Verifying: the checksum of a header or datagram that includes a correct
/// checksum field is 0 (its one's complement sum is 0xFFFF).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// Running sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768,
/// RFC 793 §3.1): source, destination, zero, protocol, transport length.
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u64 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(length)
}

/// The address part of a transport checksum's pseudo-header (RFC 768,
/// RFC 9293 §3.1 for IPv4; RFC 8200 §8.1 for IPv6: the same one's
/// complement sum of address words, with the protocol and the transport
/// length added): what the network layer hands the transport so that
/// transport code never looks at an address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PseudoAddrs(u64);

impl PseudoAddrs {
    /// IPv4 source and destination.
    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        PseudoAddrs(accumulate(accumulate(0, &src.octets()), &dst.octets()))
    }
    /// IPv6 source and destination.
    pub fn v6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) -> Self {
        PseudoAddrs(accumulate(accumulate(0, &src.octets()), &dst.octets()))
    }
    /// The pseudo-header's running sum for `protocol` and a transport
    /// segment of `length` bytes.
    pub fn sum(self, protocol: u8, length: u32) -> u64 {
        self.0 + u64::from(protocol) + u64::from(length >> 16) + u64::from(length & 0xFFFF)
    }
}

/// Incrementally update checksum `hc` after a 16-bit word changed from `old`
/// to `new`: `HC' = ~(~HC + ~m + m')` (RFC 1624 §3, eqn. 3), which, unlike
/// eqn. 2 of RFC 1141, never produces the 0x0000 / 0xFFFF ambiguity wrongly.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Straightforward RFC 1071 §4.1 reference: 16-bit words, fold at the end.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            sum = (sum & 0xFFFF) + (sum >> 16);
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3 example: bytes 00 01 f2 03 f4 f5 f6 f7.
        // 0001 + f203 + f4f5 + f6f7 = 0x2ddf0; fold: ddf0 + 2 = ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        // 0x0102 + 0x0300 = 0x0402
        assert_eq!(fold(accumulate(0, &[1, 2, 3])), 0x0402);
        assert_eq!(checksum(&[]), 0xFFFF);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        // Word 0x4011 (TTL 64, proto 17) becomes 0x3f11 (TTL 63).
        let mut hdr = [
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let updated = update16(c, 0x4011, 0x3f11);
        hdr[8] = 0x3f;
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(updated, checksum(&hdr));
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn update16_matches_recompute(mut words in proptest::collection::vec(any::<u16>(), 1..20),
                                      idx in any::<prop::sample::Index>(), new in any::<u16>()) {
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let hc = checksum(&bytes(&words));
            let i = idx.index(words.len());
            let old = words[i];
            words[i] = new;
            let full = checksum(&bytes(&words));
            let inc = update16(hc, old, new);
            if words.iter().all(|&w| w == 0) {
                // All-zero data: recomputing gives !0 = 0xFFFF, eqn. 3 gives the
                // other zero, 0x0000 (RFC 1624 §3); both verify the same data.
                prop_assert_eq!((inc, full), (0x0000, 0xFFFF));
            } else {
                prop_assert_eq!(inc, full);
            }
        }
    }
}
