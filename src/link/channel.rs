//! Per-direction packet loss models (the "loss" rule of a link direction).
//!
//! Every direction of every link owns one [`Channel`] and one random stream
//! (`SimRng`), both held by the caller; the channel decides, packet by packet,
//! whether the packet that starts crossing the direction at `now` is lost.
//!
//! Per-packet meaning of each model (details and sources in `docs/channels.md`):
//!
//! - `None`: never lost, no draw.
//! - `Bernoulli { p }`: lost with probability `p`, independently; one draw per
//!   packet when `0 < p < 1`, none otherwise.
//! - `GilbertElliott { p_gb, p_bg, loss_good, loss_bad }`: a two-state Markov
//!   chain that starts in the good state. For each packet, **first** the state
//!   moves (good→bad with `p_gb`, bad→good with `p_bg`), **then** the packet is
//!   lost with the new state's loss probability. The closed forms below use the
//!   same order.
//! - `Trace(Bits)`: packet k of the direction (k = 0, 1, … since the channel
//!   was created or last given a spec) is lost iff bit k is set; with `repeat`
//!   bit `k mod len`, without it no packet after the end is lost. No draws.
//! - `Trace(Intervals)`: the state at `now` (measured from the time the trace
//!   was installed, modulo `period` when it repeats) decides the loss
//!   probability `loss_good` or `loss_bad`; a draw is made only when that
//!   probability lies strictly between 0 and 1, so a 0/1 trace replays exactly.
//!
//! `is_lost` never allocates; trace data is shared through `Arc` with the
//! scenario, so a channel is a few machine words (see the `channel_is_compact`
//! test) and 10⁵ links fit easily.

use super::model::{LossSpec, TraceSpec};
use crate::sim::{SimRng, SimTime};
use std::sync::Arc;
use thiserror::Error;

/// The loss model state of one link direction.
#[derive(Debug, Clone)]
pub struct Channel {
    model: Model,
}

#[derive(Debug, Clone)]
enum Model {
    None,
    Bernoulli { p: f64 },
    // The stateful models are boxed: a link direction holds a `Channel`
    // and most are `None` or `Bernoulli`, so the enum stays 16 bytes
    // (10,000-link topologies) and only these pay one indirection.
    GilbertElliott(Box<GeState>),
    Bits(Box<BitsState>),
    Intervals(Box<IntervalsState>),
    Fading(Box<FadingState>),
}

/// Block-fading state (boxed: rarer than the other models, and it keeps
/// `Channel` small).
#[derive(Debug, Clone)]
struct GeState {
    p_gb: f64,
    p_bg: f64,
    loss_good: f64,
    loss_bad: f64,
    bad: bool,
}

#[derive(Debug, Clone)]
struct BitsState {
    bits: Arc<[bool]>,
    repeat: bool,
    next: usize,
}

#[derive(Debug, Clone)]
struct IntervalsState {
    intervals: Arc<[(SimTime, bool)]>,
    loss_good: f64,
    loss_bad: f64,
    period_ns: u64,
    origin: SimTime,
    hint: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct FadingState {
    spec: super::model::FadingSpec,
    mean_snr: f64,
    block: BlockFading,
}

/// One block-fading process: a unit-mean power gain that stays constant for
/// a coherence time and is redrawn when a packet falls in a new block
/// (`⌊t / coherence⌋`). Used by the point-to-point `fading` channel and by
/// every (sender, receiver) pair of a shared medium (`link::medium`).
#[derive(Debug, Clone, Copy)]
pub struct BlockFading {
    /// Block index of `gain` (u64::MAX: none drawn yet).
    block: u64,
    gain: f64,
}

impl Default for BlockFading {
    fn default() -> Self {
        BlockFading {
            block: u64::MAX,
            gain: 1.0,
        }
    }
}

impl BlockFading {
    /// The power gain of the block containing `now` (a fresh draw from `rng`
    /// when a new block starts; blocks without packets draw nothing).
    pub fn gain(
        &mut self,
        now: SimTime,
        coherence: crate::sim::SimDuration,
        fading: super::model::Fading,
        rng: &mut SimRng,
    ) -> f64 {
        let block = now.as_nanos() / coherence.as_nanos().max(1);
        if block != self.block {
            self.block = block;
            self.gain = draw_gain(fading, rng);
        }
        self.gain
    }
}

/// One draw of a unit-mean power gain: Rayleigh = Exp(1); Rician with
/// K-factor k = |√(k/(k+1)) + σ·(x + iy)|² with σ² = 1/(2(k+1)).
pub fn draw_gain(f: super::model::Fading, rng: &mut SimRng) -> f64 {
    use super::model::Fading;
    match f {
        Fading::Rayleigh => rng.exp(1.0),
        Fading::Rician { k } => {
            let los = libm::sqrt(k / (k + 1.0));
            let sigma = libm::sqrt(1.0 / (2.0 * (k + 1.0)));
            let x = los + sigma * rng.normal(0.0, 1.0);
            let y = sigma * rng.normal(0.0, 1.0);
            x * x + y * y
        }
    }
}

impl Model {
    fn from_spec(spec: &LossSpec, origin: SimTime) -> Model {
        match spec {
            LossSpec::None => Model::None,
            LossSpec::Bernoulli { p } => Model::Bernoulli { p: *p },
            LossSpec::GilbertElliott {
                p_gb,
                p_bg,
                loss_good,
                loss_bad,
            } => Model::GilbertElliott(Box::new(GeState {
                p_gb: *p_gb,
                p_bg: *p_bg,
                loss_good: *loss_good,
                loss_bad: *loss_bad,
                bad: false,
            })),
            LossSpec::Trace(TraceSpec::Bits { bits, repeat, .. }) => {
                Model::Bits(Box::new(BitsState {
                    bits: Arc::clone(bits),
                    repeat: *repeat,
                    next: 0,
                }))
            }
            LossSpec::Trace(TraceSpec::Intervals {
                intervals,
                loss_good,
                loss_bad,
                period,
                ..
            }) => Model::Intervals(Box::new(IntervalsState {
                intervals: Arc::clone(intervals),
                loss_good: *loss_good,
                loss_bad: *loss_bad,
                period_ns: period.map_or(0, |d| d.as_nanos()),
                origin,
                hint: 0,
            })),
            LossSpec::Fading(f) => Model::Fading(Box::new(FadingState {
                spec: f.clone(),
                mean_snr: crate::link::phy::db_to_linear(f.mean_snr_db),
                block: BlockFading::default(),
            })),
        }
    }
}

impl Channel {
    /// A channel in its initial state: Gilbert-Elliott in the good state,
    /// traces at their beginning (trace time 0 = simulation time 0).
    pub fn new(spec: &LossSpec) -> Channel {
        Channel {
            model: Model::from_spec(spec, SimTime::ZERO),
        }
    }

    /// Replace the model (a `set_loss` event at `now`): Gilbert-Elliott
    /// restarts in the good state, a bits trace restarts at its first bit and
    /// an intervals trace restarts at its beginning, with trace time 0 = `now`.
    pub fn set_spec(&mut self, spec: &LossSpec, now: SimTime) {
        self.model = Model::from_spec(spec, now);
    }

    /// Decide the fate of one packet that starts crossing the channel at
    /// `now`: `true` = lost. Draws from `rng` as described in the module doc.
    /// Size-aware models (fading) see a 0-byte packet, which is never lost:
    /// links call [`is_lost_sized`](Self::is_lost_sized).
    pub fn is_lost(&mut self, now: SimTime, rng: &mut SimRng) -> bool {
        self.is_lost_sized(now, 0, rng)
    }

    /// `is_lost` for a packet of `bytes` bytes (IP packet length); only the
    /// fading model depends on the size: PER = 1 − (1 − BER(SNR·gain))^bits
    /// with bits = 8·(bytes + phy_overhead_bytes).
    pub fn is_lost_sized(&mut self, now: SimTime, bytes: usize, rng: &mut SimRng) -> bool {
        match &mut self.model {
            Model::Fading(f) => {
                let gain = f.block.gain(now, f.spec.coherence, f.spec.fading, rng);
                let bits = 8 * (bytes as u64 + u64::from(f.spec.phy_overhead_bytes));
                let ber = crate::link::phy::ber(f.spec.modulation, f.mean_snr * gain);
                rng.bernoulli(crate::link::phy::per(ber, bits))
            }
            Model::None => false,
            Model::Bernoulli { p } => rng.bernoulli(*p),
            Model::GilbertElliott(g) => {
                let GeState {
                    p_gb,
                    p_bg,
                    loss_good,
                    loss_bad,
                    bad,
                } = &mut **g;
                // Move first, then lose with the new state's probability.
                *bad = if *bad {
                    !rng.bernoulli(*p_bg)
                } else {
                    rng.bernoulli(*p_gb)
                };
                rng.bernoulli(if *bad { *loss_bad } else { *loss_good })
            }
            Model::Bits(b) => {
                let BitsState { bits, repeat, next } = &mut **b;
                let len = bits.len();
                if *next >= len {
                    return false;
                }
                let lost = bits[*next];
                *next += 1;
                if *repeat && *next == len {
                    *next = 0;
                }
                lost
            }
            Model::Intervals(iv) => {
                let IntervalsState {
                    intervals,
                    loss_good,
                    loss_bad,
                    period_ns,
                    origin,
                    hint,
                } = &mut **iv;
                let mut t = now.saturating_since(*origin).as_nanos();
                if *period_ns > 0 {
                    t %= *period_ns;
                }
                let bad = state_at(intervals, SimTime(t), hint);
                rng.bernoulli(if bad { *loss_bad } else { *loss_good })
            }
        }
    }
}

/// The state (`true` = bad) of an intervals trace at trace time `t`: the state
/// of the last interval starting at or before `t`, good before the first.
/// Tries the hinted interval and its successor first (packets mostly arrive in
/// time order), then binary search.
fn state_at(intervals: &[(SimTime, bool)], t: SimTime, hint: &mut u32) -> bool {
    let contains = |i: usize| -> bool {
        intervals.get(i).is_some_and(|&(start, _)| start <= t)
            && intervals.get(i + 1).is_none_or(|&(next, _)| t < next)
    };
    let h = *hint as usize;
    let idx = if contains(h) {
        Some(h)
    } else if contains(h + 1) {
        Some(h + 1)
    } else {
        intervals
            .partition_point(|&(start, _)| start <= t)
            .checked_sub(1)
    };
    match idx {
        Some(i) => {
            *hint = u32::try_from(i).unwrap_or(0);
            intervals[i].1
        }
        None => false,
    }
}

/// Parameters that admit no simple Gilbert channel.
#[derive(Debug, Error, PartialEq)]
pub enum SimpleGilbertError {
    #[error("mean_loss must be in [0, 1), got {0}")]
    MeanLoss(f64),
    #[error("burst must be a finite number ≥ 1 (packets), got {0}")]
    Burst(f64),
    #[error("mean_loss {mean_loss} with burst {burst} needs p_gb = {p_gb} > 1: burst must be ≥ mean_loss/(1 − mean_loss)")]
    Infeasible {
        mean_loss: f64,
        burst: f64,
        p_gb: f64,
    },
}

/// The simple Gilbert channel (loss_good 0, loss_bad 1) with stationary loss
/// `mean_loss` = ρ and mean loss-run length `burst` = L:
/// p_bg = 1/L, p_gb = p_bg·ρ/(1 − ρ). This is what a scenario's
/// `{ model = "gilbert_elliott", mean_loss, burst }` resolves to.
pub fn simple_gilbert(mean_loss: f64, burst: f64) -> Result<LossSpec, SimpleGilbertError> {
    if !(0.0..1.0).contains(&mean_loss) {
        return Err(SimpleGilbertError::MeanLoss(mean_loss));
    }
    if !(burst.is_finite() && burst >= 1.0) {
        return Err(SimpleGilbertError::Burst(burst));
    }
    let p_bg = 1.0 / burst;
    let p_gb = p_bg * mean_loss / (1.0 - mean_loss);
    if p_gb > 1.0 {
        return Err(SimpleGilbertError::Infeasible {
            mean_loss,
            burst,
            p_gb,
        });
    }
    Ok(LossSpec::GilbertElliott {
        p_gb,
        p_bg,
        loss_good: 0.0,
        loss_bad: 1.0,
    })
}

/// Clamp a probability the way `SimRng::bernoulli` reads it: ≤ 0 (or NaN)
/// never, ≥ 1 always.
fn prob(p: f64) -> f64 {
    if p.is_nan() || p <= 0.0 {
        0.0
    } else if p >= 1.0 {
        1.0
    } else {
        p
    }
}

/// Stationary probability of the bad state, π_B = p_gb / (p_gb + p_bg)
/// (Gilbert 1960). When both transition probabilities are 0 the chain never
/// leaves its initial good state, so π_B = 0.
fn pi_bad(p_gb: f64, p_bg: f64) -> f64 {
    let (a, b) = (prob(p_gb), prob(p_bg));
    if a + b > 0.0 {
        a / (a + b)
    } else {
        0.0
    }
}

/// Long-run (stationary) probability that a packet is lost; `None` for traces,
/// whose loss depends on the trace content and on packet timing.
///
/// Bernoulli: `p`. Gilbert-Elliott: π_G·loss_good + π_B·loss_bad with
/// π_B = p_gb/(p_gb+p_bg), π_G = 1 − π_B.
pub fn stationary_loss(spec: &LossSpec) -> Option<f64> {
    match spec {
        LossSpec::None => Some(0.0),
        LossSpec::Bernoulli { p } => Some(prob(*p)),
        LossSpec::GilbertElliott {
            p_gb,
            p_bg,
            loss_good,
            loss_bad,
        } => {
            let pb = pi_bad(*p_gb, *p_bg);
            Some((1.0 - pb) * prob(*loss_good) + pb * prob(*loss_bad))
        }
        // size-dependent: see `link::phy` and tests/fading.rs
        LossSpec::Trace(_) | LossSpec::Fading(_) => None,
    }
}

/// Mean length of a run of consecutive lost packets in the stationary regime
/// (total losses / number of loss runs), where a closed form exists: `None`
/// for traces, for channels that never lose, and for channels that lose every
/// packet (a single endless run).
///
/// The mean is P(L) / (P(L) − P(L,L)), P(L,L) being the probability that two
/// consecutive packets are both lost: a run starts exactly where a loss
/// follows a delivery. Bernoulli gives 1/(1−p); Gilbert-Elliott gives
/// P(L,L) = Σ_s π_s·l_s·Σ_s' P(s→s')·l_s', which reduces to 1/p_bg for the
/// simple Gilbert model (loss_good 0, loss_bad 1).
pub fn mean_loss_run(spec: &LossSpec) -> Option<f64> {
    let (p_l, p_ll) = match spec {
        LossSpec::None | LossSpec::Trace(_) | LossSpec::Fading(_) => return None,
        LossSpec::Bernoulli { p } => {
            let p = prob(*p);
            (p, p * p)
        }
        LossSpec::GilbertElliott {
            p_gb,
            p_bg,
            loss_good,
            loss_bad,
        } => {
            let (a, b) = (prob(*p_gb), prob(*p_bg));
            let (lg, lb) = (prob(*loss_good), prob(*loss_bad));
            let pb = pi_bad(a, b);
            let pg = 1.0 - pb;
            // Loss probability of the next packet given the current state.
            let next_from_good = (1.0 - a) * lg + a * lb;
            let next_from_bad = b * lg + (1.0 - b) * lb;
            (
                pg * lg + pb * lb,
                pg * lg * next_from_good + pb * lb * next_from_bad,
            )
        }
    };
    let run_starts = p_l - p_ll;
    if p_l > 0.0 && run_starts > 0.0 {
        Some(p_l / run_starts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ge(p_gb: f64, p_bg: f64, loss_good: f64, loss_bad: f64) -> LossSpec {
        LossSpec::GilbertElliott {
            p_gb,
            p_bg,
            loss_good,
            loss_bad,
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn stationary_loss_hand_values() {
        assert!(close(stationary_loss(&LossSpec::None), 0.0));
        assert!(close(stationary_loss(&LossSpec::Bernoulli { p: 0.1 }), 0.1));
        // π_B = 0.01/0.11 = 1/11: (10/11)·0.001 + (1/11)·0.5 = 0.51/11.
        assert!(close(
            stationary_loss(&ge(0.01, 0.1, 0.001, 0.5)),
            0.51 / 11.0
        ));
        // Simple Gilbert, ρ = 0.05, L = 4: p_bg = 0.25, p_gb = 0.25·0.05/0.95.
        let p_gb = 0.25 * 0.05 / 0.95;
        assert!(close(stationary_loss(&ge(p_gb, 0.25, 0.0, 1.0)), 0.05));
        // A chain that never moves stays good.
        assert!(close(stationary_loss(&ge(0.0, 0.0, 0.2, 0.9)), 0.2));
        let bits = LossSpec::Trace(TraceSpec::Bits {
            bits: Arc::from(vec![true, false]),
            repeat: true,
            file: "t.bits".into(),
        });
        assert_eq!(stationary_loss(&bits), None);
    }

    #[test]
    fn mean_loss_run_hand_values() {
        assert!(close(mean_loss_run(&LossSpec::Bernoulli { p: 0.5 }), 2.0));
        assert!(close(
            mean_loss_run(&LossSpec::Bernoulli { p: 0.1 }),
            1.0 / 0.9
        ));
        assert_eq!(mean_loss_run(&LossSpec::Bernoulli { p: 0.0 }), None);
        assert_eq!(mean_loss_run(&LossSpec::Bernoulli { p: 1.0 }), None);
        assert_eq!(mean_loss_run(&LossSpec::None), None);
        // Simple Gilbert: 1/p_bg.
        assert!(close(mean_loss_run(&ge(0.3 / 19.0, 0.25, 0.0, 1.0)), 4.0));
        // loss_good 0: runs are geometric with continuation (1 − p_bg)·loss_bad.
        // p_bg 0.1, loss_bad 0.5 → 1/(1 − 0.45) = 1/0.55.
        assert!(close(mean_loss_run(&ge(0.01, 0.1, 0.0, 0.5)), 1.0 / 0.55));
        // Equal loss in both states is Bernoulli whatever the chain does.
        assert!(close(mean_loss_run(&ge(0.2, 0.3, 0.5, 0.5)), 2.0));
    }

    #[test]
    fn simple_gilbert_parameters() {
        let spec = simple_gilbert(0.05, 4.0);
        assert_eq!(spec, Ok(ge(0.25 * 0.05 / 0.95, 0.25, 0.0, 1.0)));
        let spec = spec.unwrap_or(LossSpec::None);
        assert!(close(stationary_loss(&spec), 0.05));
        assert!(close(mean_loss_run(&spec), 4.0));
        assert_eq!(simple_gilbert(0.0, 1.0), Ok(ge(0.0, 1.0, 0.0, 1.0)));
        assert_eq!(
            simple_gilbert(1.0, 4.0),
            Err(SimpleGilbertError::MeanLoss(1.0))
        );
        assert_eq!(
            simple_gilbert(0.1, 0.5),
            Err(SimpleGilbertError::Burst(0.5))
        );
        assert!(matches!(
            simple_gilbert(0.9, 2.0),
            Err(SimpleGilbertError::Infeasible { .. })
        ));
    }

    #[test]
    fn channel_is_compact() {
        // Two per link, 10⁵ links: two words (the stateful models are
        // boxed, `None` and `Bernoulli` are inline).
        assert!(std::mem::size_of::<Channel>() <= 16);
    }

    #[test]
    fn state_at_handles_hints_and_gaps() {
        let iv = [
            (SimTime(0), false),
            (SimTime(10), true),
            (SimTime(20), false),
        ];
        let mut hint = 0;
        assert!(!state_at(&iv, SimTime(5), &mut hint));
        assert!(state_at(&iv, SimTime(10), &mut hint));
        assert_eq!(hint, 1);
        assert!(!state_at(&iv, SimTime(1000), &mut hint));
        // Going back in time falls back to the search.
        assert!(state_at(&iv, SimTime(19), &mut hint));
        assert!(!state_at(&iv, SimTime(0), &mut hint));
        // Before a first interval that starts late: good.
        let late = [(SimTime(10), true)];
        let mut h = 0;
        assert!(!state_at(&late, SimTime(3), &mut h));
        assert!(state_at(&late, SimTime(10), &mut h));
    }
}
