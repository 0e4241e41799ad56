//! Handshake set-up time under SYN loss: with SYN loss probability p the
//! connection is set up after k lost SYNs at (2^k − 1)·RTO₀ + RTT (each
//! backoff step capped at the maximum RTO), with
//! probability p^k·(1 − p); after syn_retries + 1 losses it is lost.
//! 10,000 connections, fixed seed. Run in release:
//! `cargo test --release --test tcp_handshake_stats`.

mod tcp_common;
use tcp_common::*;

use qossim::sim::{SimDuration, SimRng, SimTime};
use qossim::transport::tcp::{Config, Event, LostReason};

fn histogram(cfg: Config, p_loss: f64, n: u64, seed: u64) -> Vec<u64> {
    let retries = cfg.syn_retries as usize;
    // Buckets 0..=retries: k SYNs lost then success; bucket retries+1: lost.
    let mut hist = vec![0u64; retries + 2];
    for i in 0..n {
        let mut pair = Pair::new(cfg, ms(10));
        let mut rng = SimRng::from_id(seed, i);
        pair.set_fate(move |d, t, _| {
            if d == Dir::ToServer && t.flags.syn() && rng.bernoulli(p_loss) {
                vec![]
            } else {
                vec![SimDuration::ZERO]
            }
        });
        pair.run_until(SimTime::ZERO + SimDuration::from_secs(1000), |p| {
            p.has_client_event(Event::Connected) || p.client.is_closed()
        });
        if let Some(&(t, _)) = pair.client_events.iter().find(|e| e.1 == Event::Connected) {
            // Set-up time must sit exactly on the backoff schedule.
            // After k losses: Σ_{i<k} min(2^i·RTO₀, max RTO), plus the RTT.
            let rtt = ms(20);
            let at = |k: usize| {
                (0..k).fold(SimTime::ZERO + rtt, |acc, i| {
                    acc + cfg.initial_rto.saturating_mul(1 << i).min(cfg.max_rto)
                })
            };
            let k = (0..=retries).find(|&k| t == at(k));
            let Some(k) = k else {
                panic!("set-up time {t} is not on the schedule 1 s, 3 s, 7 s, …");
            };
            hist[k] += 1;
        } else {
            assert_eq!(
                pair.client_events.last().map(|e| e.1),
                Some(Event::ConnectionLost {
                    reason: LostReason::HandshakeTimeout
                })
            );
            hist[retries + 1] += 1;
        }
    }
    hist
}

fn check(hist: &[u64], p: f64, n: u64) {
    let retries = hist.len() - 2;
    let mut chi2 = 0.0;
    for (k, &obs) in hist.iter().enumerate() {
        let prob = if k <= retries {
            libm::pow(p, k as f64) * (1.0 - p)
        } else {
            libm::pow(p, (retries + 1) as f64)
        };
        let exp = prob * n as f64;
        let sd = libm::sqrt(exp * (1.0 - prob));
        eprintln!("k={k}: observed {obs}, expected {exp:.1} (sd {sd:.1})");
        // Each bucket within 4 standard deviations (+1 for tiny buckets).
        assert!(
            (obs as f64 - exp).abs() <= 4.0 * sd + 1.0,
            "bucket {k}: observed {obs}, expected {exp:.1}"
        );
        if exp >= 5.0 {
            chi2 += (obs as f64 - exp) * (obs as f64 - exp) / exp;
        }
    }
    // At most 9 cells (rfc: syn_retries 7 + success-at-0 + lost), so at
    // most 8 degrees of freedom; the 0.999 quantile of χ²(8) is 26.1.
    eprintln!("chi2 = {chi2:.2}");
    assert!(chi2 < 26.1, "chi-square {chi2:.2}");
}

#[test]
fn syn_loss_setup_times_follow_backoff_and_geometric_weights() {
    let n = 10_000;
    for (cfg, p, seed) in [(Config::linux_like(), 0.3, 11), (Config::rfc(), 0.5, 12)] {
        let hist = histogram(cfg, p, n, seed);
        assert_eq!(hist.iter().sum::<u64>(), n);
        check(&hist, p, n);
    }
}
