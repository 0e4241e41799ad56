//! Block fading on point-to-point links (issue #4 items 1–2): the gain
//! distributions against the Rayleigh and Rician CDFs, and the packet loss of
//! the `fading` channel against E_g[PER(BER(SNR·g), bits)] computed here from
//! the formulas.

mod common;
use qossim::link::channel::{draw_gain, Channel};
use qossim::link::phy::{ber_bpsk, db_to_linear, per};
use qossim::scenario::model::{Fading, FadingSpec, LossSpec, Modulation};
use qossim::sim::{SimDuration, SimRng, SimTime};

const N: usize = 200_000;

fn fraction_below(f: Fading, t: f64, seed: u64) -> f64 {
    let mut rng = SimRng::stream(seed, "fading-test");
    (0..N).filter(|_| draw_gain(f, &mut rng) < t).count() as f64 / N as f64
}

fn within_3se(measured: f64, expected: f64, what: &str) {
    let se = (expected * (1.0 - expected) / N as f64).sqrt();
    assert!(
        (measured - expected).abs() <= 3.0 * se,
        "{what}: {measured:.5} vs {expected:.5} ± 3·{se:.5}"
    );
}

#[test]
fn rayleigh_gain_follows_the_exponential_cdf() {
    for t in [0.05, 0.3, 1.0, 2.5] {
        within_3se(
            fraction_below(Fading::Rayleigh, t, 11),
            1.0 - (-t).exp(),
            &format!("Rayleigh P(g < {t})"),
        );
    }
}

/// Modified Bessel function I0 by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for m in 1..200 {
        term *= (x / 2.0) * (x / 2.0) / (m as f64 * m as f64);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// Rician CDF of the unit-mean power gain by Simpson integration of its pdf
/// f(g) = (K+1)·e^{−K}·e^{−(K+1)g}·I0(2√(K(K+1)g)).
fn rician_cdf(k: f64, t: f64) -> f64 {
    let pdf = |g: f64| {
        (k + 1.0)
            * (-k).exp()
            * (-(k + 1.0) * g).exp()
            * bessel_i0(2.0 * (k * (k + 1.0) * g).sqrt())
    };
    let n = 20_000;
    let h = t / n as f64;
    let mut s = pdf(0.0) + pdf(t);
    for i in 1..n {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * pdf(i as f64 * h);
    }
    s * h / 3.0
}

#[test]
fn rician_gain_follows_its_cdf() {
    for k in [1.0, 5.0] {
        for t in [0.2, 0.6, 1.0, 1.6] {
            let expected = rician_cdf(k, t);
            within_3se(
                fraction_below(Fading::Rician { k }, t, 12),
                expected,
                &format!("Rician K={k} P(g < {t})"),
            );
        }
    }
    // K = 0 is Rayleigh
    within_3se(
        fraction_below(Fading::Rician { k: 0.0 }, 1.0, 13),
        1.0 - (-1.0f64).exp(),
        "Rician K=0",
    );
}

/// E over Rayleigh gains of the BPSK PER of `bits` at mean SNR `snr_db`.
fn expected_loss(snr_db: f64, bits: u64) -> f64 {
    let snr = db_to_linear(snr_db);
    let (n, top) = (200_000, 40.0);
    let h = top / n as f64;
    (0..n)
        .map(|i| {
            let g = (i as f64 + 0.5) * h;
            (-g).exp() * per(ber_bpsk(snr * g), bits) * h
        })
        .sum()
}

fn channel_loss(snr_db: f64, bytes: usize) -> f64 {
    let mut ch = Channel::new(&LossSpec::Fading(FadingSpec {
        fading: Fading::Rayleigh,
        mean_snr_db: snr_db,
        coherence: SimDuration::from_nanos(1),
        modulation: Modulation::Bpsk,
        phy_overhead_bytes: 0,
    }));
    let mut rng = SimRng::stream(7, "fading-per");
    // one packet per microsecond: a fresh block (gain) for each
    (0..N)
        .filter(|&i| ch.is_lost_sized(SimTime(i as u64 * 1000), bytes, &mut rng))
        .count() as f64
        / N as f64
}

#[test]
fn packet_loss_matches_the_per_formula_under_rayleigh_fading() {
    for snr_db in [5.0, 10.0, 20.0] {
        let expected = expected_loss(snr_db, 100 * 8);
        within_3se(
            channel_loss(snr_db, 100),
            expected,
            &format!("100-byte PER at {snr_db} dB"),
        );
    }
    // bigger frames lose more, higher SNR loses less
    assert!(channel_loss(10.0, 400) > channel_loss(10.0, 50));
    assert!(channel_loss(20.0, 100) < channel_loss(10.0, 100));
}

/// (loss rate, P(two consecutive packets lost)) with packets 10 ms apart.
fn runs(coherence: SimDuration) -> (f64, f64) {
    let mut ch = Channel::new(&LossSpec::Fading(FadingSpec {
        fading: Fading::Rayleigh,
        mean_snr_db: 15.0,
        coherence,
        modulation: Modulation::Bpsk,
        phy_overhead_bytes: 0,
    }));
    let mut rng = SimRng::stream(9, "fading-blocks");
    let lost: Vec<bool> = (0..50_000u64)
        .map(|i| ch.is_lost_sized(SimTime(i * 10_000_000), 1000, &mut rng))
        .collect();
    let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
    let both = lost.windows(2).filter(|w| w[0] && w[1]).count() as f64 / (lost.len() - 1) as f64;
    (rate, both)
}

#[test]
fn a_block_keeps_its_gain_for_the_coherence_time() {
    // 1 s blocks hold 100 packets: losses cluster (P(LL) well above P(L)²);
    // 1 ns blocks give every packet its own gain: P(LL) ≈ P(L)²
    let (rate, both) = runs(SimDuration::from_secs(1));
    assert!(rate > 0.05 && rate < 0.6, "{rate}");
    assert!(
        both > 2.0 * rate * rate,
        "correlated: P(LL) {both} vs P(L)² {}",
        rate * rate
    );
    let (rate, both) = runs(SimDuration::from_nanos(1));
    assert!(
        (both - rate * rate).abs() < 0.1 * rate * rate + 0.005,
        "independent: P(LL) {both} vs P(L)² {}",
        rate * rate
    );
}

#[test]
fn a_fading_link_runs_in_a_scenario() {
    let text = r#"
name = "fading-link"
duration = "200 s"
drain = "5 s"
[[nodes]]
name = "a"
role = "client"
[[nodes]]
name = "b"
role = "server"
[[links]]
a = "a"
b = "b"
rate = "250 kbit/s"
loss = { model = "fading", fading = "rician", k = 3.0, mean_snr_db = 6.0, coherence = "50 ms", modulation = "bpsk", phy_overhead_bytes = 17 }
[[flows]]
name = "f"
pattern = "point_to_point"
protocol = "udp"
publishers = ["a"]
receivers = ["b"]
topic = "t"
payload_bytes = 80
interval = "100 ms"
"#;
    let dir = common::sim::run_text("fading", text, &[]);
    let r = common::sim::run_row(&dir, "f");
    let ratio = common::sim::num(&r, "delivery_ratio");
    assert!(ratio > 0.2 && ratio < 0.99, "{ratio}");
    // a key of another model is refused
    let bad = text.replace("k = 3.0, ", "k = 3.0, p = 0.1, ");
    let e = qossim::scenario::load_str(&bad, "t.toml", std::path::Path::new("."), &[])
        .expect_err("p on fading");
    assert!(
        e.to_string().contains("does not apply to model `fading`"),
        "{e}"
    );
}
