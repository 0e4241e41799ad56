//! Hardening defect 1: when both ends time out while the other already
//! holds their data, their pure ACKs must stay acceptable to the peer
//! (RFC 9293 §3.10.7.4), or neither side processes an ACK field again and
//! they trade old-sequence ACKs forever. 4.4BSD's `tcp_output` stamps a
//! segment without data, SYN or FIN with `snd_max`; Linux never pulls
//! `snd_nxt` back on a timeout. Both tests failed before the fix (10⁶ ACKs
//! at one instant with no delay; an ACK storm until `retries` ran out
//! with one).
//! Run in release: `cargo test --release --test tcp_ack_livelock`.

mod tcp_common;
use tcp_common::*;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed, TestRunner};
use qossim::sim::{SimDuration, SimRng};
use qossim::transport::tcp::{Config, Event, Segment, Transmit};

/// A segment with no data, SYN or FIN: a pure ACK.
fn pure_ack(t: &Transmit) -> bool {
    t.payload_len == 0 && !t.flags.syn() && !t.flags.fin() && !t.flags.rst()
}

fn lost(p: &Pair) -> bool {
    p.client_events
        .iter()
        .chain(p.server_events.iter())
        .any(|e| matches!(e.1, Event::ConnectionLost { .. } | Event::Reset))
}

/// Both ends write 2,000 bytes at once over an MTU-576 path; every pure ACK
/// of the data phase's first 100 ms is lost, so both RTOs fire while each
/// end already holds the other's data. Classic Nagle holds each end's
/// runt tail behind its unacknowledged segments, which is what leaves both
/// ends waiting for their timers; Minshall's variant (linux-like's
/// default) would send the tails at once, so it is off here.
fn both_time_out(mut cfg: Config, delay: SimDuration) -> Pair {
    cfg.nagle_minshall = false;
    let mut p = Pair::with_mtu(cfg, cfg, delay, 576);
    p.establish();
    let t0 = p.now;
    let start = p.log.len();
    let drop_until = t0 + ms(100);
    let clock = std::rc::Rc::new(std::cell::Cell::new(t0));
    let c = clock.clone();
    p.set_fate(move |_, t, _| {
        if pure_ack(t) && c.get() < drop_until {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    p.to_write = (0..2000u32).map(|i| (i % 251) as u8).collect();
    p.server_to_write = (0..2000u32).map(|i| (i % 241) as u8).collect();
    let limit = t0 + SimDuration::from_secs(3600);
    p.run_until(limit, |p| {
        clock.set(p.now);
        lost(p)
            || p.log.len() - start > 100_000
            || (p.received.len() == 2000 && p.client_received.len() == 2000)
    });
    let sent = p.log.len() - start;
    assert!(
        !lost(&p),
        "connection lost (ACK storm until the retry limit), {sent} segments"
    );
    assert!(
        sent < 100,
        "{sent} segments for 2 × 2,000 bytes: an ACK loop"
    );
    assert_eq!(p.received, p.to_write);
    assert_eq!(p.client_received, p.server_to_write);
    // both RTOs fired (the case under test), and the repair took one RTO
    // or two, not the retry limit
    // (with SACK the tail-loss probe fires first, at the RTO's time here:
    // the same retransmission, not counted as a timeout)
    let fired = |s: &qossim::transport::tcp::Stats| s.timeouts + s.loss_probes >= 1;
    assert!(fired(p.client.stats()) && fired(p.server.stats()));
    assert!(
        p.now.saturating_since(t0) < SimDuration::from_secs(2),
        "finished after {:?}",
        p.now.saturating_since(t0)
    );
    p
}

#[test]
fn both_rtos_with_the_data_already_delivered_no_delay_linux_like() {
    both_time_out(Config::linux_like(), SimDuration::ZERO);
    let p = both_time_out(linux_no_sack(), SimDuration::ZERO);
    assert!(p.client.stats().timeouts >= 1 && p.server.stats().timeouts >= 1);
}

#[test]
fn both_rtos_with_the_data_already_delivered_with_delay_linux_like() {
    both_time_out(Config::linux_like(), ms(20));
    let p = both_time_out(linux_no_sack(), ms(20));
    assert!(p.client.stats().timeouts >= 1 && p.server.stats().timeouts >= 1);
}

#[test]
fn both_rtos_with_the_data_already_delivered_rfc() {
    both_time_out(Config::rfc(), SimDuration::ZERO);
    both_time_out(Config::rfc(), ms(20));
}

#[test]
fn pure_acks_carry_the_highest_sequence_sent() {
    for cfg in [Config::linux_like(), linux_no_sack(), Config::rfc()] {
        let p = both_time_out(cfg, ms(20));
        for dir in [Dir::ToServer, Dir::ToClient] {
            // SND.MAX: the end of everything this side sent so far
            let mut max: Option<u32> = None;
            let mut checked = 0;
            for s in p.log.iter().filter(|s| s.dir == dir) {
                let t = &s.info;
                if pure_ack(t) {
                    assert_eq!(Some(t.seq), max, "pure ACK {} at {:?}", t.seq, s.at);
                    checked += 1;
                }
                let end = t
                    .seq
                    .wrapping_add(t.payload_len as u32)
                    .wrapping_add(u32::from(t.flags.syn() || t.flags.fin()));
                if max.is_none_or(|m| (end.wrapping_sub(m) as i32) > 0) {
                    max = Some(end);
                }
            }
            assert!(checked > 0);
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    /// Loss of pure ACKs.
    ack_loss: f64,
    /// Loss of every other segment.
    data_loss: f64,
    up: usize,
    down: usize,
    linux: bool,
    mtu: u16,
    delay_ms: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        0.0..=0.6f64,
        0.0..=0.2f64,
        1usize..12_000,
        1usize..12_000,
        any::<bool>(),
        prop_oneof![Just(576u16), Just(1280), Just(1500)],
        prop_oneof![Just(0u64), Just(1), Just(20)],
    )
        .prop_map(
            |(seed, ack_loss, data_loss, up, down, linux, mtu, delay_ms)| Case {
                seed,
                ack_loss,
                data_loss,
                up,
                down,
                linux,
                mtu,
                delay_ms,
            },
        )
}

/// Bidirectional stream integrity under pure-ACK and data loss: both
/// streams arrive whole and in order, within a bounded number of segments
/// and without losing the connection (the retry limit is raised to 30 so
/// that loss alone cannot reach it: a round fails with probability
/// ≤ 1 − 0.8·0.4 = 0.68, and 0.68^31 < 7·10⁻⁶).
fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let mut cfg = if c.linux {
        Config::linux_like()
    } else {
        Config::rfc()
    };
    cfg.retries = 30;
    let mut p = Pair::with_mtu(cfg, cfg, ms(c.delay_ms), c.mtu);
    p.establish();
    let mut rng = SimRng::stream(c.seed, "tcp-livelock-pipe");
    let (ack_loss, data_loss) = (c.ack_loss, c.data_loss);
    p.set_fate(move |_, t, _| {
        let lose = if pure_ack(t) { ack_loss } else { data_loss };
        if rng.bernoulli(lose) {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    let mut data = SimRng::stream(c.seed, "tcp-livelock-data");
    p.to_write = (0..c.up).map(|_| data.below(256) as u8).collect();
    p.server_to_write = (0..c.down).map(|_| data.below(256) as u8).collect();
    let limit = p.now + SimDuration::from_secs(24 * 3600);
    let start = p.log.len();
    let budget = 200 + 40 * (c.up + c.down) / 500;
    p.run_until(limit, |p| {
        lost(p)
            || p.log.len() - start > budget * 20
            || (p.received.len() == p.to_write.len()
                && p.client_received.len() == p.server_to_write.len())
    });
    prop_assert!(p.to_write.starts_with(&p.received), "upstream corrupted");
    prop_assert!(
        p.server_to_write.starts_with(&p.client_received),
        "downstream corrupted"
    );
    prop_assert!(!lost(&p), "connection lost");
    prop_assert_eq!(p.received.len(), p.to_write.len());
    prop_assert_eq!(p.client_received.len(), p.server_to_write.len());
    let sent = p.log.len() - start;
    prop_assert!(sent <= budget * 20, "{} segments: an ACK loop", sent);
    Ok(())
}

#[test]
fn bidirectional_stream_integrity_under_ack_loss() {
    let mut runner = TestRunner::new(PtConfig {
        cases: 400,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x71c0_ac4e),
        ..PtConfig::default()
    });
    let r = runner.run(&case(), |c| run_case(&c));
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// Out-of-window segments without data, sent by the server to the client
/// `gaps_ms` apart: how many ACKs the client answers with.
fn answers_to_old_acks(cfg: Config, gaps_ms: &[u64]) -> usize {
    use qossim::transport::tcp::{TcpFlags, TcpRepr};
    let mut p = Pair::new(cfg, ms(5));
    p.establish();
    // one below the client's RCV.NXT: an old, out-of-window sequence number
    let old = 3_000_000_000u32;
    let mut answered = 0;
    let mut buf = [0u8; 64];
    let mut out = Vec::new();
    for &g in gaps_ms {
        p.now += ms(g);
        let r = TcpRepr {
            src_port: SERVER.port(),
            dst_port: CLIENT.port(),
            seq: old,
            ack: 1_000_001,
            flags: TcpFlags(TcpFlags::ACK),
            window: 1000,
            ..TcpRepr::default()
        };
        let n = r.emit(&mut buf, *SERVER.ip(), *CLIENT.ip(), &[]).unwrap();
        let _ = p
            .client
            .handle_input(p.now, Segment::new(*SERVER.ip(), *CLIENT.ip(), &buf[..n]));
        out.clear();
        while let Some(t) = p.client.poll_transmit(p.now, &mut out) {
            assert!(pure_ack(&t));
            answered += 1;
        }
    }
    answered
}

#[test]
fn out_of_window_acks_are_answered_once_per_500_ms_linux_like_every_time_rfc() {
    // at 0, 100, 200, 499 ms after the first, then 500 ms after it, then
    // twice more 300 ms apart: Linux answers at 0, 500 and 1,100
    let gaps = [0, 100, 100, 299, 1, 300, 300];
    assert_eq!(answers_to_old_acks(Config::linux_like(), &gaps), 3);
    assert_eq!(answers_to_old_acks(Config::rfc(), &gaps), gaps.len());
}
