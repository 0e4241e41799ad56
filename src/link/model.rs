//! The link model as the scenario resolves it (a link's rate, delay, MTU,
//! queue and loss model; channel, fading and trace descriptions): plain data
//! the scenario loader converts into and `link/` consumes.

use crate::sim::{SimDuration, SimTime};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct LinkSpec {
    pub name: String,
    /// Node indices.
    pub a: usize,
    pub b: usize,
    pub rate_bps: u64,
    pub delay: SimDuration,
    /// Largest IP packet (bytes) the link carries.
    pub mtu: u32,
    /// Drop-tail queue capacity in packets (per direction), excluding the one
    /// in transmission.
    pub queue: u32,
    /// Loss model, the same for both directions (each direction has its own
    /// state and random stream).
    pub loss: LossSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LossSpec {
    None,
    Bernoulli {
        p: f64,
    },
    /// Packet-level two-state Markov chain (state changes once per packet).
    GilbertElliott {
        p_gb: f64,
        p_bg: f64,
        loss_good: f64,
        loss_bad: f64,
    },
    Trace(TraceSpec),
    /// Block fading over a mean SNR: the power gain is drawn once per
    /// coherence time (Rayleigh or Rician), and each packet is lost with the
    /// PER of its size at the faded SNR.
    Fading(FadingSpec),
}

/// Small-scale fading distribution of the power gain (mean 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fading {
    /// Exponential power gain (no line of sight).
    Rayleigh,
    /// Rician with K-factor `k` (line-of-sight to scattered power, linear).
    Rician { k: f64 },
}

/// Modulation whose BER curve turns SNR into bit errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modulation {
    /// IEEE 802.15.4 2.4 GHz O-QPSK/DSSS (Annex E).
    Oqpsk802154,
    Bpsk,
}

/// `loss = { model = "fading", … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct FadingSpec {
    pub fading: Fading,
    /// Mean SNR in dB (before fading).
    pub mean_snr_db: f64,
    /// Block length: the gain stays constant this long.
    pub coherence: SimDuration,
    pub modulation: Modulation,
    /// Link/PHY bytes added to the IP packet when counting bits.
    pub phy_overhead_bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TraceSpec {
    /// One entry per packet on the direction: `true` = lost. Shared (`Arc`)
    /// so every link direction replaying the trace points at one copy.
    Bits {
        bits: Arc<[bool]>,
        repeat: bool,
        file: PathBuf,
    },
    /// Channel state over time: (start time, bad?) sorted by time, the first at
    /// 0; packets are lost with `loss_good`/`loss_bad` in each state. Shared
    /// (`Arc`) so every link direction replaying the trace points at one copy.
    Intervals {
        intervals: Arc<[(SimTime, bool)]>,
        loss_good: f64,
        loss_bad: f64,
        /// Period after which the pattern repeats (None: last state holds).
        period: Option<SimDuration>,
        file: PathBuf,
    },
}
