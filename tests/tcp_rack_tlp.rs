//! Linux-like loss recovery (fidelity issue, item 2): RTT samples from
//! timestamp echoes of retransmitted data (RFC 7323 §4), SACK with RACK
//! loss detection (RFC 2018, RFC 6675, RFC 8985 §6), the tail-loss probe
//! (RFC 8985 §7), interactive ("pingpong") delayed ACKs, and the sender's
//! `bytes_sent`. Drives the real `Connection` through the pair harness.

mod tcp_common;
use tcp_common::*;

use qossim::sim::{SimDuration, SimTime};
use qossim::transport::tcp::Config;
use std::cell::RefCell;
use std::rc::Rc;

/// Client ISS in the harness is 1_000_000, so data starts at 1_000_001.
const DATA: u32 = 1_000_001;

fn us(x: u64) -> SimDuration {
    SimDuration::from_micros(x)
}

/// `n` exchanges of `len` bytes, each waiting for its ACK.
fn warm_up(p: &mut Pair, n: usize, len: usize) {
    for _ in 0..n {
        let before = p.received.len();
        p.client.write(&vec![7; len]);
        let ok = p.run_until(p.now + SimDuration::from_secs(5), |p| {
            p.received.len() == before + len && p.client.send_buffered() == 0
        });
        assert!(ok, "warm-up exchange did not complete");
    }
}

/// Times at which the client sent payload starting at `seq`.
fn sends_of(p: &Pair, seq: u32) -> Vec<SimTime> {
    p.log
        .iter()
        .filter(|s| s.dir == Dir::ToServer && s.info.seq == seq && s.info.payload_len > 0)
        .map(|s| s.at)
        .collect()
}

fn gaps_ms(t: &[SimTime]) -> Vec<f64> {
    t.windows(2)
        .map(|w| w[1].saturating_since(w[0]).as_nanos() as f64 / 1e6)
        .collect()
}

/// Drop the first `k` transmissions of the client segment starting at
/// `seq`; `counter` counts them.
fn drop_first_k(p: &mut Pair, seq: u32, k: usize) -> Rc<RefCell<usize>> {
    let seen = Rc::new(RefCell::new(0usize));
    let s2 = seen.clone();
    p.set_fate(move |d, t, _| {
        if d == Dir::ToServer && t.seq == seq && t.payload_len > 0 {
            let mut n = s2.borrow_mut();
            *n += 1;
            if *n <= k {
                return vec![];
            }
        }
        vec![SimDuration::ZERO]
    });
    seen
}

/// After a loss episode that backs the RTO off to 1.6 s, the ACK of the
/// retransmission carries the echo of its timestamp, which is a valid RTT
/// sample (RFC 7323 §4): the backoff ends and the RTO is ≈ 200 ms again,
/// so the next, separate loss is repaired after ≈ 200 ms — not after the
/// 3.2 s that keeping the backoff (Karn's rule alone) would give.
#[test]
fn timestamp_sample_ends_the_backoff_of_a_loss_episode() {
    let mut p = Pair::new(Config::linux_like(), us(50));
    p.establish();
    warm_up(&mut p, 5, 100);
    let base = p.client.current_rto();
    assert!(
        (200..=201).contains(&(base.as_nanos() / 1_000_000)),
        "{base:?}"
    );
    let seq = DATA + p.client.stats().bytes_sent as u32;
    // Lose the original, the probe and two RTO retransmissions; the third
    // RTO retransmission (sent with the RTO backed off to 1.6 s) arrives.
    drop_first_k(&mut p, seq, 4);
    p.client.write(&[1; 100]);
    let mut rto_at_send = vec![];
    let mut sent = 0;
    p.run_until(p.now + SimDuration::from_secs(20), |p| {
        let n = sends_of(p, seq).len();
        if n > sent {
            sent = n;
            rto_at_send.push(p.client.current_rto().as_nanos() / 1_000_000);
        }
        p.client.send_buffered() == 0
    });
    let gaps = gaps_ms(&sends_of(&p, seq));
    assert_eq!(gaps.len(), 4, "{gaps:?}");
    // Probe at the RTO's time, RTO from the probe, then 400 and 800 ms.
    for (g, want) in gaps.iter().zip([200.0, 200.0, 400.0, 800.0]) {
        assert!((g - want).abs() < 2.0, "gaps {gaps:?}");
    }
    assert_eq!(rto_at_send.last(), Some(&1600), "RTO armed {rto_at_send:?}");
    assert_eq!(p.client.stats().timeouts, 3);
    // The first clean sample — from the timestamp echo — ends the episode.
    assert_eq!(p.client.rtt().backoff(), 0);
    let rto = p.client.current_rto().as_nanos() / 1_000_000;
    assert!((200..=202).contains(&rto), "RTO after the episode {rto} ms");
    // A second, separate loss: repaired by the probe ≈ 200 ms later.
    let seq2 = DATA + p.client.stats().bytes_sent as u32;
    drop_first_k(&mut p, seq2, 1);
    p.client.write(&[2; 100]);
    p.run_until(p.now + SimDuration::from_secs(20), |p| {
        p.client.send_buffered() == 0
    });
    let g2 = gaps_ms(&sends_of(&p, seq2));
    assert_eq!(g2.len(), 1);
    assert!((g2[0] - 200.0).abs() < 2.0, "second episode {g2:?}");

    // Without timestamps, Karn's rule forbids the sample: the backoff
    // outlives the episode.
    let cfg = Config {
        timestamps: false,
        ..linux_no_sack()
    };
    let mut q = Pair::new(cfg, us(50));
    q.establish();
    warm_up(&mut q, 5, 100);
    let seq = DATA + q.client.stats().bytes_sent as u32;
    drop_first_k(&mut q, seq, 3);
    q.client.write(&[1; 100]);
    q.run_until(q.now + SimDuration::from_secs(20), |q| {
        q.client.send_buffered() == 0
    });
    assert_eq!(q.client.rtt().backoff(), 3);
    assert_eq!(q.client.current_rto().as_nanos() / 1_000_000, 1600);
}

/// Two full segments in flight, the last one lost (a tail loss: nothing
/// after it can be SACKed). The probe re-sends it max(2·SRTT, 10 ms) after
/// the last send (RFC 8985 §7.2), before the receiver's delayed ACK of the
/// first segment and long before the RTO; no timeout, one probe.
#[test]
fn tail_loss_probe_repairs_the_last_segment_before_the_rto() {
    let mut p = Pair::new(Config::linux_like(), ms(1));
    p.establish();
    let mss = usize::from(p.client.smss());
    // 2-segment exchanges: the second full segment is ACKed at once, so
    // SRTT is the path's 2 ms; 20 segments use up quick-ACK mode, so a
    // lone segment is then ACKed only after the delayed-ACK timeout.
    warm_up(&mut p, 10, 2 * mss);
    let srtt = p.client.rtt().srtt().unwrap();
    assert!(srtt < ms(3), "SRTT {srtt:?}");
    let pto = (2 * srtt.as_nanos()).max(10_000_000);
    let first = DATA + p.client.stats().bytes_sent as u32;
    let last = first + mss as u32;
    drop_first_k(&mut p, last, 1);
    p.client.write(&vec![3; 2 * mss]);
    p.run_until(p.now + SimDuration::from_secs(5), |p| {
        p.client.send_buffered() == 0
    });
    let t = sends_of(&p, last);
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[1].saturating_since(t[0]).as_nanos(), pto);
    assert!(t[1].saturating_since(t[0]) < p.client.current_rto());
    let s = p.client.stats();
    assert_eq!((s.timeouts, s.loss_probes, s.retransmissions), (0, 1, 1));
    assert_eq!(p.received.len(), 22 * mss);
}

/// With one segment in flight the probe also allows for the receiver's
/// delayed ACK: PTO = 2·SRTT + 200 ms (RFC 8985 §7.2, Linux
/// `TCP_RTO_MIN`). Visible only when the RTO is later than that (here a
/// 1 s minimum RTO); with Linux's 200 ms minimum the probe is capped at the
/// RTO (`rto_single_loss_fires_at_computed_rto`).
#[test]
fn single_segment_probe_waits_for_the_delayed_ack() {
    let cfg = Config {
        min_rto: SimDuration::from_secs(1),
        ..Config::linux_like()
    };
    let mut p = Pair::new(cfg, ms(10));
    p.establish();
    warm_up(&mut p, 4, 100);
    let srtt = p.client.rtt().srtt().unwrap();
    let seq = DATA + p.client.stats().bytes_sent as u32;
    drop_first_k(&mut p, seq, 1);
    p.client.write(&[4; 100]);
    p.run_until(p.now + SimDuration::from_secs(5), |p| {
        p.client.send_buffered() == 0
    });
    let t = sends_of(&p, seq);
    assert_eq!(t.len(), 2);
    assert_eq!(
        t[1].saturating_since(t[0]),
        srtt + srtt + SimDuration::from_millis(200)
    );
    assert_eq!(p.client.stats().loss_probes, 1);
    assert_eq!(p.client.stats().timeouts, 0);
}

/// Three segments lost in one window: the receiver's SACK blocks let RACK
/// mark exactly those three lost; each is resent once (no go-back-N: the
/// receiver gets no byte twice), without a timeout, and the window is
/// reduced once (ssthresh = half the flight at the first loss).
#[test]
fn sack_recovery_resends_only_the_lost_segments() {
    let mut p = Pair::new(Config::linux_like(), ms(10));
    p.establish();
    warm_up(&mut p, 2, 100);
    let mss = p.client.smss() as u32;
    let start = DATA + p.client.stats().bytes_sent as u32;
    let lost = [2u32, 5, 7];
    p.set_fate(move |d, t, _| {
        let lost_seq = lost.iter().any(|k| t.seq == start + k * mss);
        if d == Dir::ToServer && t.payload_len > 0 && !t.is_retransmission && lost_seq {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    let total = 10 * mss as usize;
    let before = p.received.len();
    p.client.write(&vec![5; total]);
    let mut at_first_rtx = None;
    p.run_until(p.now + SimDuration::from_secs(10), |p| {
        if at_first_rtx.is_none() && p.client.stats().retransmissions > 0 {
            at_first_rtx = Some(p.client.ssthresh());
        }
        p.client.send_buffered() == 0
    });
    assert_eq!(p.received.len(), before + total);
    let s = *p.client.stats();
    assert_eq!(s.timeouts, 0);
    assert_eq!(s.retransmissions, 3, "{s:?}");
    assert_eq!(s.fast_retransmits, 3);
    assert_eq!(s.rack_lost, 3);
    assert_eq!(p.server.stats().dup_data_received, 0);
    // One reduction, when recovery began; none for the second and third
    // loss of the same window.
    assert!(
        at_first_rtx.is_some_and(|s| s < 10 * mss),
        "{at_first_rtx:?}"
    );
    assert_eq!(Some(p.client.ssthresh()), at_first_rtx);
    let rtx: Vec<u32> = p
        .log
        .iter()
        .filter(|x| x.dir == Dir::ToServer && x.info.is_retransmission)
        .map(|x| (x.info.seq - start) / mss)
        .collect();
    assert_eq!(rtx, vec![2, 5, 7]);
}

/// Linux's interactive mode: once the server answered a request within
/// the delayed-ACK timeout, it no longer ACKs a request at once; the ACK
/// rides on the answer (as a broker's PUBACK carries it), so each later
/// exchange costs the server one segment, not two.
#[test]
fn answer_carries_the_ack_in_interactive_mode() {
    let mut p = Pair::new(Config::linux_like(), ms(5));
    p.establish();
    let mut server_pure_acks = vec![];
    for i in 0..5 {
        let before = p.received.len();
        let log_from = p.log.len();
        p.client.write(&[9; 30]);
        assert!(p.run_until(p.now + SimDuration::from_secs(1), |p| {
            p.received.len() == before + 30
        }));
        // The application answers at once.
        p.server_to_write.extend_from_slice(&[4; 4]);
        let want = p.client_received.len() + 4;
        assert!(p.run_until(p.now + SimDuration::from_secs(1), |p| {
            p.client_received.len() == want
        }));
        let pure = p.log[log_from..]
            .iter()
            .filter(|x| x.dir == Dir::ToClient && x.info.payload_len == 0)
            .count();
        server_pure_acks.push(pure);
        if i == 0 {
            assert!(p.server.pingpong());
        }
    }
    // Quick-ACK mode answers the first request with a pure ACK; after
    // that, none.
    assert_eq!(server_pure_acks, vec![1, 0, 0, 0, 0]);
}

/// `bytes_sent` counts every new payload byte once, also bytes that join
/// an earlier segment's retransmission (Nagle holds them while the first
/// is unacknowledged; the go-back-N retransmission carries both): the
/// sender's count equals what the receiver got, in every profile.
#[test]
fn bytes_sent_counts_bytes_joining_a_retransmission() {
    for cfg in [Config::rfc(), linux_no_sack(), Config::linux_like()] {
        let mut p = Pair::new(cfg, ms(5));
        p.establish();
        warm_up(&mut p, 2, 100);
        let seq = DATA + p.client.stats().bytes_sent as u32;
        drop_first_k(&mut p, seq, 1);
        p.client.write(&[1; 10]);
        p.run_until(p.now + ms(1), |_| false);
        p.client.write(&[2; 10]);
        p.run_until(p.now + SimDuration::from_secs(10), |p| {
            p.client.send_buffered() == 0
        });
        assert_eq!(
            p.client.stats().bytes_sent,
            p.server.stats().bytes_received,
            "{:?}",
            cfg.profile
        );
        assert_eq!(p.server.stats().bytes_received, 220);
    }
}

/// Linux `__tcp_cleanup_rbuf`: on a one-way stream of small messages (QoS 0
/// PUBLISHes every 100 ms) the receiver's delayed ACK goes out as soon as
/// the application has read the message, also after quick-ACK mode is used
/// up; so Nagle at the sender never holds the next message for a delayed
/// ACK. A receiver that does not read keeps the ACK for the timer.
#[test]
fn small_segments_are_acked_when_the_reader_drains_them() {
    for reads in [true, false] {
        let mut p = Pair::new(Config::linux_like(), ms(1));
        p.establish();
        p.server_reads = reads;
        let mut ack_delays = vec![];
        for _ in 0..30 {
            let from = p.log.len();
            p.client.write(&[6; 40]);
            p.run_until(p.now + ms(100), |_| false);
            let data = p.log[from..]
                .iter()
                .find(|x| x.dir == Dir::ToServer && x.info.payload_len > 0)
                .map(|x| x.at)
                .unwrap();
            let ack = p.log[from..]
                .iter()
                .find(|x| x.dir == Dir::ToClient)
                .map(|x| x.at)
                .unwrap();
            ack_delays.push(ack.saturating_since(data).as_nanos() / 1_000_000);
        }
        if reads {
            // the one-way delay only, for every message
            assert!(ack_delays.iter().all(|&d| d == 1), "{ack_delays:?}");
        } else {
            // past quick-ACK mode the timer (≥ 40 ms) sends them
            assert!(ack_delays[20..].iter().all(|&d| d >= 41), "{ack_delays:?}");
        }
    }
}

/// The data arrives but its ACK is lost, again and again: every
/// retransmission reaches the receiver as a duplicate. Linux still records
/// the duplicate's TSval (`tcp_sequence` accepts a segment ending at
/// `rcv_wup`; `tcp_replace_ts_recent`), so the duplicate ACK that finally
/// gets through echoes the last retransmission's timestamp: a sample of
/// one round trip, not of the whole episode, and the RTO is ≈ 200 ms
/// again. Echoing the original send's timestamp instead would sample the
/// ≈ 800 ms episode and leave SRTT and the RTO inflated for the next loss.
#[test]
fn lost_acks_give_a_sample_of_the_last_retransmission() {
    let mut p = Pair::new(Config::linux_like(), us(50));
    p.establish();
    warm_up(&mut p, 5, 100);
    let srtt_before = p.client.rtt().srtt().unwrap();
    let seq = DATA + p.client.stats().bytes_sent as u32;
    let end = seq + 100;
    let lost = Rc::new(RefCell::new(0usize));
    let l2 = lost.clone();
    p.set_fate(move |d, t, _| {
        if d == Dir::ToClient && t.ack == end && t.payload_len == 0 {
            let mut n = l2.borrow_mut();
            *n += 1;
            if *n <= 3 {
                return vec![];
            }
        }
        vec![SimDuration::ZERO]
    });
    p.client.write(&[1; 100]);
    p.run_until(p.now + SimDuration::from_secs(20), |p| {
        p.client.send_buffered() == 0
    });
    let gaps = gaps_ms(&sends_of(&p, seq));
    assert_eq!(
        *lost.borrow(),
        4,
        "three ACKs lost, the fourth arrived {gaps:?}"
    );
    assert_eq!(
        gaps.len(),
        3,
        "original, probe, two RTO retransmissions {gaps:?}"
    );
    assert_eq!(p.received.len() % 100, 0);
    let srtt = p.client.rtt().srtt().unwrap();
    assert!(
        srtt < srtt_before + us(200),
        "SRTT {srtt:?} (before {srtt_before:?}): the sample spans the episode"
    );
    assert_eq!(p.client.rtt().backoff(), 0);
    let rto = p.client.current_rto().as_nanos() / 1_000_000;
    assert!((200..=202).contains(&rto), "RTO after the episode {rto} ms");
}
