//! Stream integrity under generated loss (up to 50 %), reordering (depth
//! ≥ 3) and duplication: the reader gets exactly the bytes written, in
//! order, once — or the connection reports failure and the reader got a
//! prefix. Run in release: `cargo test --release --test tcp_stream`.

mod tcp_common;
use tcp_common::*;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed, TestRunner};
use qossim::sim::{SimDuration, SimRng, SimTime};
use qossim::transport::tcp::{Config, Event};
use std::cell::Cell;

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    loss: f64,
    /// Probability that a segment is held back.
    reorder: f64,
    /// Longest hold-back in ms.
    depth: u64,
    dup: f64,
    len: usize,
    linux: bool,
    nagle: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        0.0..=0.5f64,
        0.0..=0.5f64,
        3u64..=8,
        0.0..=0.2f64,
        1usize..40_000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(seed, loss, reorder, depth, dup, len, linux, nagle)| Case {
                seed,
                loss,
                reorder,
                depth,
                dup,
                len,
                linux,
                nagle,
            },
        )
}

/// Run one case; returns (retransmitted at least once, failed).
fn run_case(c: &Case) -> Result<(bool, bool), TestCaseError> {
    let mut cfg = if c.linux {
        Config::linux_like()
    } else {
        Config::rfc()
    };
    cfg.nagle = c.nagle;
    let mut p = Pair::new(cfg, ms(10));
    let mut rng = SimRng::stream(c.seed, "tcp-stream-pipe");
    let (loss, reorder, depth, dup) = (c.loss, c.reorder, c.depth, c.dup);
    p.set_fate(move |_, _, _| {
        if rng.bernoulli(loss) {
            return vec![];
        }
        // A held-back copy is overtaken by everything sent up to `depth` ms
        // later (a whole burst sent at one instant, at least 3 segments).
        let one = |rng: &mut SimRng| {
            if rng.bernoulli(reorder) {
                ms(1 + rng.below(depth))
            } else {
                SimDuration::ZERO
            }
        };
        let first = one(&mut rng);
        if rng.bernoulli(dup) {
            let second = one(&mut rng);
            vec![first, second]
        } else {
            vec![first]
        }
    });
    let mut data_rng = SimRng::stream(c.seed, "tcp-stream-data");
    p.to_write = (0..c.len).map(|_| data_rng.below(256) as u8).collect();
    p.close_after_write = true;
    let limit = SimTime::ZERO + SimDuration::from_secs(6 * 3600);
    let lost = |p: &Pair| {
        p.client_events
            .iter()
            .chain(p.server_events.iter())
            .any(|e| matches!(e.1, Event::ConnectionLost { .. } | Event::Reset))
    };
    p.run_until(limit, |p| lost(p) || p.has_server_event(Event::PeerClosed));
    let failed = lost(&p);
    prop_assert!(
        p.to_write.starts_with(&p.received),
        "delivered bytes differ from the written ones"
    );
    if !failed {
        prop_assert!(
            p.has_server_event(Event::PeerClosed),
            "neither finished nor failed by {limit}"
        );
        prop_assert_eq!(p.received.len(), p.to_write.len());
    }
    let rtx = p.client.stats().retransmissions + p.server.stats().retransmissions > 0;
    Ok((rtx, failed))
}

#[test]
fn stream_integrity_under_loss_reordering_duplication() {
    // A fixed seed, so every run checks the same 96 cases (the default
    // seed is random: a rare failing case came and went between runs).
    // QOSSIM_STREAM_CASES / QOSSIM_STREAM_SEED widen the search by hand.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = env("QOSSIM_STREAM_CASES").unwrap_or(96) as u32;
    let mut runner = TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(env("QOSSIM_STREAM_SEED").unwrap_or(0x5eed_0096)),
        ..PtConfig::default()
    });
    let retransmitted = Cell::new(0u32);
    let failed = Cell::new(0u32);
    let total = Cell::new(0u32);
    let result = runner.run(&case(), |c| {
        let (rtx, fail) = run_case(&c)?;
        total.set(total.get() + 1);
        retransmitted.set(retransmitted.get() + u32::from(rtx));
        failed.set(failed.get() + u32::from(fail));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "stream integrity: {} cases, {} retransmitted, {} reported failure",
        total.get(),
        retransmitted.get(),
        failed.get()
    );
    // The generator must actually exercise recovery.
    assert!(2 * retransmitted.get() >= total.get());
}

/// Found by the generated cases with a random seed: after RACK's
/// reordering timer had been the last use of the retransmission slot and
/// everything was acknowledged, the slot kept that kind while disarmed, so
/// sending the last byte with the FIN armed nothing; the FIN was lost and
/// the connection waited forever ("neither finished nor failed").
#[test]
fn lost_fin_after_a_reordering_timer_is_retransmitted() {
    let c = Case {
        seed: 11640991853310572042,
        loss: 0.40548667715397146,
        reorder: 0.1868356049337789,
        depth: 3,
        dup: 0.09346955841613416,
        len: 22177,
        linux: true,
        nagle: false,
    };
    let (_, failed) = run_case(&c).expect("the stream completes");
    assert!(!failed);
}
