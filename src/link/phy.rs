//! Physical-layer error models: bit error rate from SNR for the modulations
//! qossim models, and packet error rate from BER. All outcome-deciding math
//! goes through `libm` so every machine computes the same values
//! (docs/channels.md cites the sources).

use super::model::Modulation;

/// dB → linear power ratio.
pub fn db_to_linear(db: f64) -> f64 {
    libm::pow(10.0, db / 10.0)
}

/// BPSK over AWGN: BER = Q(√(2·SNR)) = ½·erfc(√SNR).
pub fn ber_bpsk(snr: f64) -> f64 {
    0.5 * libm::erfc(libm::sqrt(snr.max(0.0)))
}

/// IEEE 802.15.4 2.4 GHz O-QPSK with DSSS (IEEE 802.15.4-2006 Annex E, the
/// form ns-3's LrWpanErrorModel uses):
/// BER = (8/15)·(1/16)·Σ_{k=2}^{16} (−1)^k·C(16,k)·exp(20·SINR·(1/k − 1)).
pub fn ber_oqpsk_802154(sinr: f64) -> f64 {
    let mut sum = 0.0;
    let mut binom = 16.0; // C(16, 1)
    for k in 2..=16u32 {
        binom = binom * f64::from(17 - k) / f64::from(k); // C(16, k)
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        sum += sign * binom * libm::exp(20.0 * sinr * (1.0 / f64::from(k) - 1.0));
    }
    (8.0 / 15.0 * (1.0 / 16.0) * sum).clamp(0.0, 0.5)
}

/// BER of `m` at linear SNR `snr`.
pub fn ber(m: Modulation, snr: f64) -> f64 {
    match m {
        Modulation::Bpsk => ber_bpsk(snr),
        Modulation::Oqpsk802154 => ber_oqpsk_802154(snr),
    }
}

/// PER = 1 − (1 − BER)^bits: a frame is lost if any bit is wrong.
pub fn per(ber: f64, bits: u64) -> f64 {
    if ber <= 0.0 || bits == 0 {
        return 0.0;
    }
    1.0 - libm::pow(1.0 - ber.min(1.0), bits as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpsk_matches_known_values() {
        // Q(√2) at SNR 0 dB = 0.078650; at 10 dB BER ≈ 3.87e-6
        assert!((ber_bpsk(1.0) - 0.0786496).abs() < 1e-6);
        assert!((ber_bpsk(10.0) - 3.8721e-6).abs() < 1e-9);
    }

    #[test]
    fn oqpsk_is_a_steep_waterfall() {
        // the 802.15.4 curve: about 1e-1 near -5 dB, negligible above 0 dB
        let at = |db: f64| ber_oqpsk_802154(db_to_linear(db));
        assert!(at(-10.0) > at(-5.0) && at(-5.0) > at(-2.0) && at(-2.0) > at(0.0));
        assert!(at(-10.0) > 0.1 && at(-10.0) <= 0.5);
        assert!(at(2.0) < 1e-6);
    }

    #[test]
    fn per_grows_with_bits() {
        assert_eq!(per(0.0, 1000), 0.0);
        assert!((per(1e-3, 1000) - (1.0 - 0.999f64.powi(1000))).abs() < 1e-12);
        assert!(per(1e-4, 2000) > per(1e-4, 1000));
    }
}
