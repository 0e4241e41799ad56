//! Statistics helpers used by the summaries: nearest-rank percentiles, the
//! mean, and Student-t 95 % confidence half-widths.
//!
//! The t quantile is computed, not looked up: the two-sided 95 % quantile
//! t satisfies P(|T| > t) = 0.05, i.e. I_x(ν/2, 1/2) = 0.05 with
//! x = ν/(ν + t²), where I is the regularised incomplete beta function
//! (Abramowitz & Stegun 26.7.1). `x` is found by bisection; I is evaluated
//! with its continued fraction (A&S 26.5.8, modified Lentz). All
//! transcendental functions come from `libm`, so the value is identical on
//! every platform.

/// Nearest-rank percentile of an ascending slice: the value at 1-based rank
/// ⌈q/100 · n⌉. `None` when `sorted` is empty or `q` is outside (0, 100].
///
/// `q·n/100` is snapped to the nearest integer when within a relative 1e-12
/// of it (far above the few-ulp rounding error, far below any fraction a
/// realistic `q` produces), so a decimal percentile like 64.4 of 250 values
/// gives rank 161, not 162 through binary rounding.
pub(crate) fn percentile_nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    nearest_rank(sorted.len(), q).and_then(|r| sorted.get(r - 1).copied())
}

/// The 1-based nearest rank of percentile `q` among `n` sorted values (see
/// [`percentile_nearest_rank`]); `None` when `n` is 0 or `q` is outside
/// (0, 100].
pub(crate) fn nearest_rank(n: usize, q: f64) -> Option<usize> {
    if n == 0 || q.is_nan() || q <= 0.0 || q > 100.0 {
        return None;
    }
    let exact = q * n as f64 / 100.0;
    let nearest = libm::round(exact);
    let rank = if (exact - nearest).abs() <= 1e-12 * nearest.max(1.0) {
        nearest
    } else {
        libm::ceil(exact)
    };
    // q > 0 makes the rank ≥ 1 except when a tiny q snaps to 0; q ≤ 100
    // bounds it by n. The clamp covers both.
    Some((rank as usize).clamp(1, n))
}

/// Arithmetic mean; `None` for an empty slice.
pub(crate) fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom
/// (the 0.975 quantile): 12.7062 for 1, 1.9840 for 100, → 1.95996 as df → ∞.
/// `df = 0` has no finite quantile and returns +∞.
pub(crate) fn student_t_975(df: u64) -> f64 {
    // a summary asks for the same few df once per metric and row: remember
    // the small ones (the value is a pure function of df)
    const CACHED: usize = 128;
    static CACHE: [std::sync::OnceLock<f64>; CACHED] =
        [const { std::sync::OnceLock::new() }; CACHED];
    match CACHE.get(df as usize) {
        Some(slot) => *slot.get_or_init(|| student_t_975_uncached(df)),
        None => student_t_975_uncached(df),
    }
}

fn student_t_975_uncached(df: u64) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    if df > 1_000_000 {
        return t_975_cornish_fisher(df as f64);
    }
    let nu = df as f64;
    let a = nu / 2.0;
    // I_x(a, 1/2) rises from 0 at x = 0 to 1 at x = 1; find where it is 0.05.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if reg_inc_beta(a, 0.5, mid) < 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let x = 0.5 * (lo + hi);
    libm::sqrt(nu * (1.0 - x) / x)
}

/// Cornish-Fisher expansion of the t quantile in powers of 1/ν around the
/// normal quantile (A&S 26.7.5); for ν > 10⁶ the omitted terms are < 1e-18.
fn t_975_cornish_fisher(nu: f64) -> f64 {
    const Z: f64 = 1.959_963_984_540_054; // Φ⁻¹(0.975)
    let z2 = Z * Z;
    let g1 = (z2 + 1.0) * Z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * Z / 96.0;
    Z + g1 / nu + g2 / (nu * nu)
}

/// Regularised incomplete beta I_x(a, b) for a, b > 0, x ∈ [0, 1].
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b)
        + a * libm::log(x)
        + b * libm::log1p(-x);
    let front = libm::exp(ln_front);
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use the
    // symmetry I_x(a,b) = 1 − I_{1−x}(b,a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction for the incomplete beta (A&S 26.5.8), evaluated with
/// the modified Lentz method.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=100_000u32 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        // Even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Half-width of the Student-t 95 % confidence interval of the mean,
/// t₀.₉₇₅(n−1) · s / √n with s the sample standard deviation (n−1 divisor).
/// `None` when fewer than two values are given.
pub(crate) fn ci95_half_width(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    let s = libm::sqrt(ss / (n - 1) as f64);
    Some(student_t_975(n as u64 - 1) * s / libm::sqrt(n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Values from standard t tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
        for (df, t) in [
            (1, 12.7062),
            (2, 4.3027),
            (5, 2.5706),
            (10, 2.2281),
            (30, 2.0423),
            (100, 1.9840),
        ] {
            let got = student_t_975(df);
            assert!((got - t).abs() < 5e-5, "df {df}: {got} vs {t}");
        }
        // More digits where closed forms exist: ν = 1 (Cauchy) gives
        // tan(π(p − 1/2)), ν = 2 gives (2p − 1)/√(2p(1 − p)), with p = 0.975.
        let tan = libm::tan(0.475 * std::f64::consts::PI);
        assert!((student_t_975(1) - tan).abs() < 1e-9);
        let p = 0.975f64;
        let t2 = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert!((student_t_975(2) - t2).abs() < 1e-9);
    }

    #[test]
    fn t_quantile_tends_to_normal_and_is_monotone() {
        assert!((student_t_975(1_000_000) - 1.959_966).abs() < 1e-5);
        assert!((student_t_975(10_000_000) - 1.959_964_2).abs() < 1e-6);
        // Both methods agree where they meet.
        let a = student_t_975(1_000_000);
        let b = t_975_cornish_fisher(1_000_000.0);
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        let mut prev = f64::INFINITY;
        for df in [1, 2, 3, 4, 7, 20, 50, 1000, 100_000, 2_000_000] {
            let t = student_t_975(df);
            assert!(t < prev && t > 1.959_96, "df {df}: {t}");
            prev = t;
        }
        assert_eq!(student_t_975(0), f64::INFINITY);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(percentile_nearest_rank(&v, 50.0), Some(50)); // rank 5
        assert_eq!(percentile_nearest_rank(&v, 51.0), Some(60)); // rank ⌈5.1⌉ = 6
        assert_eq!(percentile_nearest_rank(&v, 95.0), Some(100)); // rank ⌈9.5⌉ = 10
        assert_eq!(percentile_nearest_rank(&v, 100.0), Some(100));
        assert_eq!(percentile_nearest_rank(&v, 0.1), Some(10)); // rank 1
        assert_eq!(percentile_nearest_rank(&v, 0.0), None);
        assert_eq!(percentile_nearest_rank(&v, 100.5), None);
        assert_eq!(percentile_nearest_rank(&v, f64::NAN), None);
        assert_eq!(percentile_nearest_rank(&[], 50.0), None);
        // Decimal q against binary rounding: 64.4 % of 250 is exactly rank
        // 161, but 64.4·250/100 evaluates to 161.00000000000003 in f64.
        let w: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile_nearest_rank(&w[..250], 64.4), Some(161));
        assert_eq!(percentile_nearest_rank(&w[..375], 8.8), Some(33));
        assert_eq!(percentile_nearest_rank(&w, 99.9), Some(999));
        assert_eq!(percentile_nearest_rank(&w, 99.91), Some(1000));
        // Wikipedia's nearest-rank example: {15, 20, 35, 40, 50}.
        let e = [15, 20, 35, 40, 50];
        assert_eq!(percentile_nearest_rank(&e, 5.0), Some(15));
        assert_eq!(percentile_nearest_rank(&e, 30.0), Some(20));
        assert_eq!(percentile_nearest_rank(&e, 40.0), Some(20));
        assert_eq!(percentile_nearest_rank(&e, 50.0), Some(35));
    }

    #[test]
    fn mean_and_ci_by_hand() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(ci95_half_width(&[]), None);
        assert_eq!(ci95_half_width(&[4.0]), None);
        // {2, 4, 4, 4, 5, 5, 7, 9}: mean 5, Σ(x−m)² = 32, s² = 32/7,
        // half-width = t(7)·√(32/7)/√8 = 2.3646243·0.7559289 = 1.7874879.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let hw = ci95_half_width(&xs).unwrap_or(f64::NAN);
        assert!((hw - 1.787_488).abs() < 2e-6, "{hw}");
        // Two values {1, 3}: s = √2, t(1)·√2/√2 = 12.7062.
        let hw = ci95_half_width(&[1.0, 3.0]).unwrap_or(f64::NAN);
        assert!((hw - 12.706_2).abs() < 1e-4, "{hw}");
        // No spread, no width.
        assert_eq!(ci95_half_width(&[3.0, 3.0, 3.0]), Some(0.0));
    }

    #[test]
    fn incomplete_beta_known_values() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1/2, 1/2) = (2/π)·asin(√x).
        assert!((reg_inc_beta(1.0, 1.0, 0.3) - 0.3).abs() < 1e-14);
        assert!((reg_inc_beta(3.0, 1.0, 0.6) - 0.216).abs() < 1e-14);
        let x = 0.2f64;
        let arcsine = 2.0 / std::f64::consts::PI * x.sqrt().asin();
        assert!((reg_inc_beta(0.5, 0.5, x) - arcsine).abs() < 1e-13);
        assert_eq!(reg_inc_beta(2.0, 3.0, 0.0), 0.0);
        assert_eq!(reg_inc_beta(2.0, 3.0, 1.0), 1.0);
    }
}
