//! The TCP receive buffer reassembles any segmentation, reordering and
//! duplication of a stream into the original bytes, exactly once, in order.

use proptest::prelude::*;
use qossim::transport::tcp::recv_buffer::RecvBuffer;

proptest! {
    #[test]
    fn reordered_duplicated_segments_reassemble(
        data in proptest::collection::vec(any::<u8>(), 1..2000),
        cuts in proptest::collection::vec(1usize..200, 1..40),
        order in proptest::collection::vec(any::<u16>(), 0..120),
        cap in 64usize..1024,
    ) {
        // segments of the stream (absolute offsets), cut at the given sizes
        let mut segs = Vec::new();
        let mut at = 0;
        let mut k = 0;
        while at < data.len() {
            let n = cuts[k % cuts.len()].min(data.len() - at);
            segs.push((at, n));
            at += n;
            k += 1;
        }
        let mut r = RecvBuffer::new(cap);
        let mut rcv_nxt = 0usize; // absolute offset of RCV.NXT
        let mut got = Vec::new();
        let mut buf = vec![0u8; 97];
        // deliver in a scrambled order with repeats, then in order (like
        // retransmissions) until everything arrived
        let scrambled: Vec<usize> = order.iter().map(|&o| o as usize % segs.len()).collect();
        // retransmission rounds until everything was acknowledged
        let rounds = std::iter::once(scrambled).chain(std::iter::repeat_with(|| (0..segs.len()).collect::<Vec<_>>()));
        for i in rounds.take(10_000).flatten() {
            if rcv_nxt == data.len() {
                break;
            }
            let (s, n) = segs[i];
            if s + n <= rcv_nxt {
                continue; // entirely old: a duplicate
            }
            let skip = rcv_nxt.saturating_sub(s);
            rcv_nxt += r.write_at(s + skip - rcv_nxt, &data[s + skip..s + n]);
            // the application reads part of what is there
            let m = r.read(&mut buf);
            got.extend_from_slice(&buf[..m]);
        }
        prop_assert_eq!(rcv_nxt, data.len(), "every byte was acknowledged");
        loop {
            let m = r.read(&mut buf);
            if m == 0 { break; }
            got.extend_from_slice(&buf[..m]);
        }
        prop_assert_eq!(got, data);
    }
}
