//! Loss channel models against their closed forms and exact trace replay.
//!
//! Statistical cases use ≥ 10⁶ packets and fixed seeds; tolerances are stated
//! per test (3 standard errors, or ±2 % for mean loss-run lengths). Run with
//! `cargo test --release --test channels`.

use qossim::link::channel::{mean_loss_run, simple_gilbert, stationary_loss, Channel};
use qossim::scenario::model::{LossSpec, TraceSpec};
use qossim::sim::{SimDuration, SimRng, SimTime};
use std::sync::Arc;

const SEED: u64 = 20_240_601;

/// Fates of `n` packets sent 1 ms apart from time 0.
fn fates(spec: &LossSpec, n: usize, stream: &str) -> Vec<bool> {
    let mut ch = Channel::new(spec);
    let mut rng = SimRng::stream(SEED, stream);
    (0..n)
        .map(|k| ch.is_lost(SimTime(k as u64 * 1_000_000), &mut rng))
        .collect()
}

fn loss_rate(fates: &[bool]) -> f64 {
    fates.iter().filter(|&&l| l).count() as f64 / fates.len() as f64
}

/// Total losses / number of maximal runs of consecutive losses.
fn mean_run(fates: &[bool]) -> f64 {
    let mut losses = 0u64;
    let mut runs = 0u64;
    let mut prev = false;
    for &l in fates {
        if l {
            losses += 1;
            if !prev {
                runs += 1;
            }
        }
        prev = l;
    }
    losses as f64 / runs as f64
}

fn ge(p_gb: f64, p_bg: f64, loss_good: f64, loss_bad: f64) -> LossSpec {
    LossSpec::GilbertElliott {
        p_gb,
        p_bg,
        loss_good,
        loss_bad,
    }
}

#[test]
fn bernoulli_loss_rate_within_three_standard_errors() {
    let n = 2_000_000;
    for p in [0.01, 0.1, 0.5] {
        let f = fates(&LossSpec::Bernoulli { p }, n, &format!("bern/{p}"));
        let rate = loss_rate(&f);
        let se = (p * (1.0 - p) / n as f64).sqrt();
        eprintln!(
            "bernoulli p={p}: rate {rate:.6}, se {se:.2e}, z {:.2}",
            (rate - p) / se
        );
        assert!((rate - p).abs() < 3.0 * se, "p={p}: rate {rate}, se {se}");
    }
}

#[test]
fn gilbert_elliott_stationary_loss_by_batch_means() {
    let spec = ge(0.01, 0.1, 0.001, 0.5);
    let expected = stationary_loss(&spec).unwrap_or(f64::NAN);
    let (batches, per_batch) = (100usize, 20_000usize);
    let f = fates(&spec, batches * per_batch, "ge/stationary");
    let means: Vec<f64> = f.chunks(per_batch).map(loss_rate).collect();
    let grand = means.iter().sum::<f64>() / batches as f64;
    let var = means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (batches - 1) as f64;
    let se = (var / batches as f64).sqrt();
    eprintln!(
        "gilbert-elliott: loss {grand:.6} vs {expected:.6}, batch-means se {se:.2e}, z {:.2}",
        (grand - expected) / se
    );
    // Correlation inflates the error above the i.i.d. value; a channel that
    // ignored its state would lose at a Bernoulli-like rate instead.
    let iid_se = (expected * (1.0 - expected) / f.len() as f64).sqrt();
    assert!(se > iid_se, "batch se {se} should exceed iid se {iid_se}");
    assert!((grand - expected).abs() < 3.0 * se);
}

#[test]
fn simple_gilbert_mean_loss_run_is_burst_length() {
    let (rho, burst) = (0.05, 4.0);
    let r = 1.0 / burst;
    let spec = ge(r * rho / (1.0 - rho), r, 0.0, 1.0);
    assert_eq!(simple_gilbert(rho, burst), Ok(spec.clone()));
    assert_eq!(mean_loss_run(&spec).map(|m| (m * 1e9).round()), Some(4e9));
    let f = fates(&spec, 2_000_000, "gilbert/run");
    let run = mean_run(&f);
    let rate = loss_rate(&f);
    eprintln!("simple gilbert rho={rho} L={burst}: mean run {run:.4}, loss {rate:.5}");
    assert!((run - burst).abs() < 0.02 * burst, "mean run {run}");
    // Runs of length 4 on average with ρ = 5 %: a loose check of the rate too.
    assert!((rate - rho).abs() < 0.05 * rho, "loss rate {rate}");
}

#[test]
fn bernoulli_mean_loss_run_is_geometric() {
    for p in [0.5, 0.1] {
        let spec = LossSpec::Bernoulli { p };
        let expected = 1.0 / (1.0 - p);
        let closed = mean_loss_run(&spec).unwrap_or(f64::NAN);
        assert!((closed - expected).abs() < 1e-12);
        let run = mean_run(&fates(&spec, 1_000_000, &format!("bern-run/{p}")));
        eprintln!("bernoulli p={p}: mean run {run:.5} vs {expected:.5}");
        assert!((run - expected).abs() < 0.02 * expected, "p={p}: {run}");
    }
}

#[test]
fn gilbert_elliott_moves_before_losing() {
    // Always moves to bad and stays: the very first packet is already lost.
    let f = fates(&ge(1.0, 0.0, 0.0, 1.0), 5, "order");
    assert_eq!(f, vec![true; 5]);
    // Alternating chain starting good: bad, good, bad, …
    let f = fates(&ge(1.0, 1.0, 0.0, 1.0), 6, "order2");
    assert_eq!(f, vec![true, false, true, false, true, false]);
}

fn bits_spec(pattern: &[bool], repeat: bool) -> LossSpec {
    LossSpec::Trace(TraceSpec::Bits {
        bits: Arc::from(pattern.to_vec()),
        repeat,
        file: "test.bits".into(),
    })
}

#[test]
fn bits_trace_replays_exactly() {
    let pattern = [true, true, false, false, true, false, true];
    let n = 1_000_000;
    let mut rng = SimRng::stream(SEED, "bits");
    let untouched = SimRng::stream(SEED, "bits").next_u64();

    let mut ch = Channel::new(&bits_spec(&pattern, true));
    for k in 0..n {
        assert_eq!(
            ch.is_lost(SimTime(k as u64), &mut rng),
            pattern[k % 7],
            "k={k}"
        );
    }
    let mut ch = Channel::new(&bits_spec(&pattern, false));
    for k in 0..n {
        let expected = k < pattern.len() && pattern[k];
        assert_eq!(ch.is_lost(SimTime(k as u64), &mut rng), expected, "k={k}");
    }
    // Traces draw nothing.
    assert_eq!(rng.next_u64(), untouched);
    // An empty trace never loses.
    let mut ch = Channel::new(&bits_spec(&[], true));
    assert!(!ch.is_lost(SimTime::ZERO, &mut rng));
}

fn intervals_spec(loss_good: f64, loss_bad: f64, period: Option<SimDuration>) -> LossSpec {
    // good [0, 1 s), bad [1 s, 1.5 s), good [1.5 s, 1.7 s), bad [1.7 s, …)
    let ms = |m: u64| SimTime(m * 1_000_000);
    LossSpec::Trace(TraceSpec::Intervals {
        intervals: Arc::from(vec![
            (ms(0), false),
            (ms(1000), true),
            (ms(1500), false),
            (ms(1700), true),
        ]),
        loss_good,
        loss_bad,
        period,
        file: "test.intervals".into(),
    })
}

/// Bad at trace time `t_ms` for the intervals above (with period 2 s if set).
fn bad_at(t_ms: u64, period: bool) -> bool {
    let t = if period { t_ms % 2000 } else { t_ms };
    (1000..1500).contains(&t) || t >= 1700
}

#[test]
fn intervals_trace_loses_exactly_in_bad_intervals() {
    let n = 1_000_000u64;
    let mut rng = SimRng::stream(SEED, "intervals");
    let untouched = SimRng::stream(SEED, "intervals").next_u64();
    for period in [Some(SimDuration::from_secs(2)), None] {
        let mut ch = Channel::new(&intervals_spec(0.0, 1.0, period));
        // Packets every 0.37 ms: some land exactly on boundaries (t = 0).
        for k in 0..n {
            let t_ns = k * 370_000;
            let lost = ch.is_lost(SimTime(t_ns), &mut rng);
            assert_eq!(lost, bad_at(t_ns / 1_000_000, period.is_some()), "k={k}");
        }
    }
    // A 0/1 trace replays without drawing.
    assert_eq!(rng.next_u64(), untouched);

    // Exact boundaries: the interval starting at t includes t.
    let mut ch = Channel::new(&intervals_spec(0.0, 1.0, None));
    assert!(!ch.is_lost(SimTime(999_999_999), &mut rng));
    assert!(ch.is_lost(SimTime(1_000_000_000), &mut rng));
    assert!(!ch.is_lost(SimTime(1_500_000_000), &mut rng));
}

#[test]
fn intervals_trace_draws_with_state_loss_probability() {
    let spec = intervals_spec(0.0, 0.3, Some(SimDuration::from_secs(2)));
    let mut ch = Channel::new(&spec);
    let mut rng = SimRng::stream(SEED, "intervals/p");
    let (mut bad_sent, mut bad_lost) = (0u64, 0u64);
    for k in 0..1_000_000u64 {
        let t_ns = k * 1_100_000;
        let lost = ch.is_lost(SimTime(t_ns), &mut rng);
        if bad_at(t_ns / 1_000_000, true) {
            bad_sent += 1;
            bad_lost += u64::from(lost);
        } else {
            assert!(!lost, "lost in a good interval at {t_ns} ns");
        }
    }
    let rate = bad_lost as f64 / bad_sent as f64;
    let se = (0.3 * 0.7 / bad_sent as f64).sqrt();
    eprintln!("intervals bad-state loss {rate:.5} over {bad_sent} packets, se {se:.2e}");
    assert!((rate - 0.3).abs() < 3.0 * se);
}

#[test]
fn set_spec_switches_behaviour() {
    let mut rng = SimRng::stream(SEED, "switch");
    let mut ch = Channel::new(&LossSpec::None);
    assert!((0..1000).all(|k| !ch.is_lost(SimTime(k), &mut rng)));
    ch.set_spec(&LossSpec::Bernoulli { p: 1.0 }, SimTime(1000));
    assert!((1000..2000).all(|k| ch.is_lost(SimTime(k), &mut rng)));
    ch.set_spec(&LossSpec::Bernoulli { p: 0.0 }, SimTime(2000));
    assert!((2000..3000).all(|k| !ch.is_lost(SimTime(k), &mut rng)));

    // Gilbert-Elliott restarts in the good state: the alternating chain is in
    // the bad state after one packet; after set_spec the next packet moves
    // good→bad again and is lost (without the restart it would move to good).
    let alt = ge(1.0, 1.0, 0.0, 1.0);
    let mut ch = Channel::new(&alt);
    assert!(ch.is_lost(SimTime(0), &mut rng));
    ch.set_spec(&alt, SimTime(1));
    assert!(ch.is_lost(SimTime(2), &mut rng));
    assert!(!ch.is_lost(SimTime(3), &mut rng));

    // A bits trace restarts at its first bit.
    let trace = bits_spec(&[true, false, false], false);
    let mut ch = Channel::new(&trace);
    assert_eq!(
        (0..4)
            .map(|k| ch.is_lost(SimTime(k), &mut rng))
            .collect::<Vec<_>>(),
        vec![true, false, false, false]
    );
    ch.set_spec(&trace, SimTime(4));
    assert!(ch.is_lost(SimTime(5), &mut rng));

    // An intervals trace restarts with trace time 0 at the set_loss time:
    // installed at 5 s, packets at 6.2 s (trace 1.2 s, bad) and 6.6 s (good).
    let mut ch = Channel::new(&LossSpec::None);
    ch.set_spec(&intervals_spec(0.0, 1.0, None), SimTime(5_000_000_000));
    assert!(!ch.is_lost(SimTime(5_500_000_000), &mut rng));
    assert!(ch.is_lost(SimTime(6_200_000_000), &mut rng));
    assert!(!ch.is_lost(SimTime(6_600_000_000), &mut rng));
}

#[test]
fn same_seed_same_fates() {
    let spec = ge(0.01, 0.1, 0.001, 0.5);
    let a = fates(&spec, 100_000, "repro");
    let b = fates(&spec, 100_000, "repro");
    let c = fates(&spec, 100_000, "repro/other");
    assert_eq!(a, b);
    assert_ne!(a, c);
}
