//! A shared radio medium (issue #4 item 3): one broadcast domain in which a
//! transmission reaches every member in range, each receiver with its own
//! mean received power (log-distance path loss + log-normal shadowing) and
//! its own block-fading draw, and reception is decided by SINR over the
//! frame.
//!
//! This is the physical layer only: who hears what, how strongly, and
//! whether a frame survives. The 802.15.4 MAC (CSMA-CA, ACKs, retries) that
//! decides *when* to transmit is driven by the world (`world::radio`), which
//! calls [`Medium::begin_tx`] / [`Medium::end_tx`] and the CCA pair.
//!
//! Per-receiver rules, applied when a transmission starts (`begin_tx`):
//!
//! 1. The received power is `P_mean(s, r) · g(s, r, t)`, where `P_mean` is
//!    fixed at setup (path loss and shadowing) and `g` is the pair's block
//!    fading gain (`channel::BlockFading`, on the pair's own stream
//!    `medium/<name>/<s>-><r>/fading`).
//! 2. Every transmission adds its power to the receiver's energy (used by
//!    CCA and as interference), whatever else happens.
//! 3. A receiver that cannot receive (node down, asleep, transmitting or in
//!    its RX/TX turnaround: half duplex) does not lock on the frame: fate
//!    `Deaf`.
//! 4. Below the sensitivity: `Weak` (energy only, never received).
//! 5. An idle receiver locks on the frame. A receiver already locked on a
//!    frame switches to the new one only if it is stronger by the capture
//!    threshold (the old frame is then lost there as a collision); otherwise
//!    the new frame is lost there as a collision and adds interference.
//!
//! When a transmission ends (`end_tx`), each receiver locked on it decides:
//! SINR = P / (noise + the largest interference seen during the frame); with
//! interference present and SINR below the capture threshold the frame is a
//! collision; otherwise it is lost with PER = 1 − (1 − BER(SINR))^bits
//! (`link::phy`, bits = the whole PPDU) — `LostChannel` — or delivered.
//! With a frame loss set ([`Medium::with_frame_loss`], the medium's
//! `loss = { model = "bernoulli", p }`), a frame the PER draw delivered is
//! still lost with probability p — `LostChannel` too — drawn independently
//! per (transmission, receiver) on the receiver's own stream
//! `medium/<name>/<member>/frame_loss`.
//!
//! Neighbour lists are precomputed (a spatial grid at setup, then compressed
//! rows), so a frame touches only the members whose mean power is above the
//! medium's `cutoff_dbm`; pairs further than the distance at which the mean
//! power plus 4 shadowing standard deviations falls below the cutoff are not
//! considered. Nothing allocates per frame: transmission records and their
//! receiver lists live in a slab and are reused.

mod grid;

use super::channel::BlockFading;
use super::model::{Fading, Modulation};
use super::phy;
use crate::sim::{SimDuration, SimRng, SimTime};
use grid::Grid;

/// Physical-layer parameters of a medium.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhyParams {
    pub rate_bps: u64,
    /// Largest PSDU (MAC frame) in bytes.
    pub max_frame_bytes: u32,
    /// Synchronisation + PHY header bytes sent before every frame.
    pub phy_header_bytes: u32,
    pub tx_power_dbm: f64,
    /// Noise floor (thermal noise + receiver noise figure).
    pub noise_dbm: f64,
    /// Weakest frame a receiver locks on.
    pub sensitivity_dbm: f64,
    /// Energy above which CCA reports the channel busy.
    pub cca_threshold_dbm: f64,
    /// Capture threshold: SINR (and power ratio for a late frame to take over
    /// a locked receiver) in dB.
    pub capture_db: f64,
    pub modulation: Modulation,
    /// RX↔TX turnaround (aTurnaroundTime, 12 symbols = 192 µs).
    pub turnaround: SimDuration,
    /// Signals whose mean power is below this are ignored altogether.
    pub cutoff_dbm: f64,
}

/// Log-distance path loss with log-normal shadowing:
/// PL(d) = ref_loss_db + 10·exponent·log10(max(d, ref_distance)/ref_distance) + X,
/// X ~ N(0, shadowing_db²) drawn once per unordered pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propagation {
    pub exponent: f64,
    pub ref_loss_db: f64,
    pub ref_distance_m: f64,
    pub shadowing_db: f64,
}

impl PhyParams {
    /// IEEE 802.15.4-2006 2.4 GHz O-QPSK with a CC2420 at 0 dBm (the
    /// `ieee802154` preset; numbers and sources in docs/channels.md).
    pub const IEEE802154: PhyParams = PhyParams {
        rate_bps: 250_000,
        max_frame_bytes: crate::link::mac154::MAX_PSDU_BYTES,
        phy_header_bytes: crate::link::mac154::PHY_HEADER_BYTES,
        tx_power_dbm: 0.0,
        noise_dbm: -100.0,
        sensitivity_dbm: -95.0,
        cca_threshold_dbm: -77.0,
        capture_db: 4.0,
        modulation: Modulation::Oqpsk802154,
        turnaround: SimDuration::from_micros(192),
        cutoff_dbm: -105.0,
    };
}

impl Propagation {
    /// Log-distance indoors at 2.4 GHz: exponent 3, 40 dB at 1 m, 4 dB of
    /// shadowing (the `ieee802154` preset).
    pub const INDOOR_2_4_GHZ: Propagation = Propagation {
        exponent: 3.0,
        ref_loss_db: 40.0,
        ref_distance_m: 1.0,
        shadowing_db: 4.0,
    };

    /// Mean path loss at distance `d` metres, without shadowing.
    pub fn path_loss_db(&self, d: f64) -> f64 {
        let r = d.max(self.ref_distance_m) / self.ref_distance_m;
        self.ref_loss_db + 10.0 * self.exponent * libm::log10(r)
    }
    /// Largest distance whose loss is ≤ `budget_db`.
    pub fn range_m(&self, budget_db: f64) -> f64 {
        let x = (budget_db - self.ref_loss_db) / (10.0 * self.exponent);
        self.ref_distance_m * libm::pow(10.0, x.min(300.0))
    }
}

/// Block fading of every pair (`None` in `Medium::new`: no fading).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FadingParams {
    pub fading: Fading,
    pub coherence: SimDuration,
}

/// A transmitter that is not a member: a duty-cycled interferer (its power
/// counts as interference and CCA energy; it is never received).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterfererPos {
    pub position: (f64, f64),
    pub power_dbm: f64,
}

/// What happened to a transmission at one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    Delivered,
    /// Lost to bit errors (PER at the frame's SINR), or too weak.
    LostChannel,
    /// Lost to an overlapping transmission.
    Collision,
    /// The receiver could not listen (down, asleep, transmitting).
    Deaf,
    /// Received clear of collisions by a receiver the caller did not ask to
    /// decide (not the frame's destination): no PER draw is made for it.
    Overheard,
}

/// One receiver's result of a finished transmission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RxResult {
    /// Member index of the receiver.
    pub rx: u32,
    pub outcome: RxOutcome,
    /// The pair's mean power is above the sensitivity (the receiver is "in
    /// range" of the sender).
    pub in_range: bool,
}

/// Index of a transmission in the slab.
pub type TxId = u32;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Locked,
    Weak,
    Deaf,
    Collided,
}

#[derive(Debug, Clone, Copy)]
struct Reach {
    rx: u32,
    power_mw: f64,
    fate: Fate,
    in_range: bool,
}

#[derive(Debug, Default)]
struct Tx {
    bits: u64,
    reach: Vec<Reach>,
    live: bool,
}

#[derive(Debug, Clone)]
struct Nbr {
    rx: u32,
    mean_mw: f64,
    fade: BlockFading,
    rng: SimRng,
}

/// Per-receiver state.
#[derive(Debug, Clone, Copy)]
struct RxState {
    /// Total power of every transmission currently reaching it.
    energy_mw: f64,
    active: u32,
    /// Transmission it is locked on, and that frame's entry in its reach list.
    lock: TxId,
    lock_entry: u32,
    lock_mw: f64,
    lock_max_interf_mw: f64,
    /// Cannot receive (transmitting or turning around) until `deaf_until`.
    deaf: bool,
    deaf_until: SimTime,
    cca_pending: bool,
    cca_busy: bool,
}

/// Counters of a medium.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediumStats {
    /// Transmissions started (data, ACK and interferer bursts).
    pub transmissions: u64,
    /// Nanoseconds during which at least one member transmission was on air,
    /// summed per transmission (overlaps count twice).
    pub airtime_ns: u64,
    /// (transmission, receiver) pairs lost to collisions, among receivers in range.
    pub collisions: u64,
    /// Bytes of the link layer in every member frame (PHY header, MAC
    /// header, FCS; ACK frames whole) and of 6LoWPAN headers in data
    /// frames, every attempt; the world counts them as it sends.
    pub link_bytes: u64,
    pub adaptation_bytes: u64,
}

/// The physical state of one shared medium.
#[derive(Debug)]
pub struct Medium {
    pub phy: PhyParams,
    noise_mw: f64,
    sens_mw: f64,
    cca_mw: f64,
    capture: f64,
    fading: Option<FadingParams>,
    /// Neighbours of sender `s` (members, then interferers) are
    /// `nbrs[start[s]..start[s + 1]]`.
    start: Vec<u32>,
    nbrs: Vec<Nbr>,
    rx: Vec<RxState>,
    /// PER draws, one stream per receiver.
    rx_rng: Vec<SimRng>,
    /// Extra independent loss of a frame SINR delivered, if set.
    frame_loss: Option<FrameLoss>,
    txs: Vec<Tx>,
    free: Vec<TxId>,
    members: u32,
    pub stats: MediumStats,
}

/// Bernoulli loss of each (transmission, receiver) on top of SINR: its
/// probability and one stream per receiver.
#[derive(Debug)]
struct FrameLoss {
    p: f64,
    rng: Vec<SimRng>,
}

fn dbm_to_mw(dbm: f64) -> f64 {
    phy::db_to_linear(dbm)
}

impl Medium {
    /// Build a medium for members at `positions` (named `names`, for the
    /// random streams), plus `interferers`; `seed` is the run's master seed
    /// and `name` the medium's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        seed: u64,
        phy: PhyParams,
        prop: Propagation,
        fading: Option<FadingParams>,
        positions: &[(f64, f64)],
        names: &[&str],
        interferers: &[InterfererPos],
    ) -> Medium {
        let n = positions.len();
        // 4σ of shadowing beyond the cutoff budget bounds the search radius
        let budget = |p_dbm: f64| p_dbm - phy.cutoff_dbm + 4.0 * prop.shadowing_db;
        let max_tx = interferers
            .iter()
            .map(|i| i.power_dbm)
            .fold(phy.tx_power_dbm, f64::max);
        let radius = prop.range_m(budget(max_tx)).max(1e-9);
        let grid = Grid::new(positions, radius);
        let mut start = Vec::with_capacity(n + interferers.len() + 1);
        let mut nbrs = Vec::new();
        let mut cand = Vec::new();
        let senders = positions
            .iter()
            .map(|&p| (p, phy.tx_power_dbm))
            .chain(interferers.iter().map(|i| (i.position, i.power_dbm)));
        for (s, (ps, p_dbm)) in senders.enumerate() {
            start.push(nbrs.len() as u32);
            cand.clear();
            grid.near(ps, &mut cand);
            cand.sort_unstable();
            for &r in &cand {
                let r = r as usize;
                if r == s {
                    continue;
                }
                let pr = positions[r];
                let d = libm::hypot(ps.0 - pr.0, ps.1 - pr.1);
                if d > radius {
                    continue;
                }
                let mut loss = prop.path_loss_db(d);
                if prop.shadowing_db > 0.0 && s < n {
                    // symmetric: one draw per unordered member pair
                    let (a, b) = if s < r { (s, r) } else { (r, s) };
                    let mut g = SimRng::stream(
                        seed,
                        &format!("medium/{name}/{}~{}/shadowing", names[a], names[b]),
                    );
                    loss += g.normal(0.0, prop.shadowing_db);
                }
                let rx_dbm = p_dbm - loss;
                if rx_dbm < phy.cutoff_dbm {
                    continue;
                }
                let sname = if s < n { names[s] } else { "interferer" };
                nbrs.push(Nbr {
                    rx: r as u32,
                    mean_mw: dbm_to_mw(rx_dbm),
                    fade: BlockFading::default(),
                    rng: SimRng::stream(
                        seed,
                        &format!("medium/{name}/{sname}#{s}->{}/fading", names[r]),
                    ),
                });
            }
        }
        start.push(nbrs.len() as u32);
        Medium {
            noise_mw: dbm_to_mw(phy.noise_dbm),
            sens_mw: dbm_to_mw(phy.sensitivity_dbm),
            cca_mw: dbm_to_mw(phy.cca_threshold_dbm),
            capture: phy::db_to_linear(phy.capture_db),
            phy,
            fading,
            start,
            nbrs,
            rx: vec![
                RxState {
                    energy_mw: 0.0,
                    active: 0,
                    lock: NONE,
                    lock_entry: 0,
                    lock_mw: 0.0,
                    lock_max_interf_mw: 0.0,
                    deaf: false,
                    deaf_until: SimTime::ZERO,
                    cca_pending: false,
                    cca_busy: false,
                };
                n
            ],
            rx_rng: names
                .iter()
                .map(|m| SimRng::stream(seed, &format!("medium/{name}/{m}/rx")))
                .collect(),
            frame_loss: None,
            txs: Vec::new(),
            free: Vec::new(),
            members: n as u32,
            stats: MediumStats::default(),
        }
    }

    /// Lose each frame that SINR delivered to a receiver with probability
    /// `p` (clamped to [0, 1]), independently per transmission and receiver,
    /// drawn from the receiver's stream `medium/<name>/<member>/frame_loss`
    /// under `seed` (`name`, `names`: as given to [`Medium::new`]). Without
    /// it (or with p = 0) no such draw is made and nothing else changes.
    pub fn with_frame_loss(mut self, p: f64, seed: u64, name: &str, names: &[&str]) -> Medium {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.frame_loss = (p > 0.0).then(|| FrameLoss {
            p,
            rng: names
                .iter()
                .map(|m| SimRng::stream(seed, &format!("medium/{name}/{m}/frame_loss")))
                .collect(),
        });
        self
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.members as usize
    }

    /// Sender index of interferer `i`.
    pub fn interferer_sender(&self, i: usize) -> u32 {
        self.members + i as u32
    }

    /// Members whose mean power from `s` (member or interferer sender index)
    /// is at least `min_dbm`, with that power in dBm, in member order.
    pub fn neighbours(&self, s: u32, min_dbm: f64) -> impl Iterator<Item = (u32, f64)> + '_ {
        let (a, b) = (self.start[s as usize], self.start[s as usize + 1]);
        let min_mw = dbm_to_mw(min_dbm);
        self.nbrs[a as usize..b as usize]
            .iter()
            .filter(move |n| n.mean_mw >= min_mw)
            .map(|n| (n.rx, 10.0 * libm::log10(n.mean_mw)))
    }

    /// Mean received power (dBm) of `s` at `r`, if above the cutoff.
    pub fn mean_dbm(&self, s: u32, r: u32) -> Option<f64> {
        self.neighbours(s, f64::NEG_INFINITY)
            .find(|&(x, _)| x == r)
            .map(|(_, p)| p)
    }

    /// Airtime of a PSDU of `psdu_bytes` (PHY header added).
    pub fn airtime(&self, psdu_bytes: u32) -> SimDuration {
        super::mac154::airtime(psdu_bytes + self.phy.phy_header_bytes, self.phy.rate_bps)
    }

    /// Member `r` stops receiving (it starts its RX→TX turnaround): a frame it
    /// was locked on is lost there (a collision with its own transmission).
    pub fn set_deaf(&mut self, r: u32) {
        let st = &mut self.rx[r as usize];
        st.deaf = true;
        if st.lock != NONE {
            let (t, e) = (st.lock as usize, st.lock_entry as usize);
            st.lock = NONE;
            self.txs[t].reach[e].fate = Fate::Collided;
        }
    }

    /// Member `r` listens again from `at` (after its TX→RX turnaround).
    pub fn set_hearing(&mut self, r: u32, at: SimTime) {
        let st = &mut self.rx[r as usize];
        st.deaf = false;
        st.deaf_until = at;
    }

    /// Whether member `r` is locked on a frame.
    pub fn receiving(&self, r: u32) -> bool {
        self.rx[r as usize].lock != NONE
    }

    /// Start a clear channel assessment at `r` (energy detection).
    pub fn start_cca(&mut self, r: u32) {
        let cca = self.cca_mw;
        let st = &mut self.rx[r as usize];
        st.cca_pending = true;
        st.cca_busy = st.energy_mw >= cca;
    }

    /// End the CCA at `r`: busy if the energy was at or above the threshold
    /// at its start or rose to it during the assessment.
    pub fn end_cca(&mut self, r: u32) -> bool {
        let st = &mut self.rx[r as usize];
        st.cca_pending = false;
        st.cca_busy || st.energy_mw >= self.cca_mw
    }

    /// Start a transmission of `psdu_bytes` from sender `s` (member or
    /// interferer). `can_hear(r)` says whether member `r` is up and awake;
    /// half duplex is handled here. `locks` gets every member whose lock
    /// changed (for energy accounting).
    pub fn begin_tx(
        &mut self,
        now: SimTime,
        s: u32,
        psdu_bytes: u32,
        mut can_hear: impl FnMut(u32) -> bool,
        locks: &mut Vec<u32>,
    ) -> TxId {
        let id = match self.free.pop() {
            Some(i) => i,
            None => {
                self.txs.push(Tx::default());
                (self.txs.len() - 1) as TxId
            }
        };
        let is_member = s < self.members;
        self.stats.transmissions += 1;
        if is_member {
            self.stats.airtime_ns += self.airtime(psdu_bytes).as_nanos();
        }
        let mut reach = std::mem::take(&mut self.txs[id as usize].reach);
        reach.clear();
        let (a, b) = (self.start[s as usize], self.start[s as usize + 1]);
        for k in a..b {
            let nb = &mut self.nbrs[k as usize];
            let r = nb.rx;
            let mut p = nb.mean_mw;
            let in_range = p >= self.sens_mw;
            if let (Some(f), true) = (self.fading, is_member) {
                p *= nb.fade.gain(now, f.coherence, f.fading, &mut nb.rng);
            }
            let st = &mut self.rx[r as usize];
            st.energy_mw += p;
            st.active += 1;
            if st.cca_pending && st.energy_mw >= self.cca_mw {
                st.cca_busy = true;
            }
            let entry = reach.len() as u32;
            let fate = if !is_member {
                Fate::Weak
            } else if st.deaf || now < st.deaf_until || !can_hear(r) {
                Fate::Deaf
            } else if p < self.sens_mw {
                Fate::Weak
            } else if st.lock == NONE {
                st.lock = id;
                st.lock_entry = entry;
                st.lock_mw = p;
                st.lock_max_interf_mw = (st.energy_mw - p).max(0.0);
                locks.push(r);
                Fate::Locked
            } else if p >= st.lock_mw * self.capture {
                // the late, stronger frame captures the receiver
                let (t, e) = (st.lock as usize, st.lock_entry as usize);
                if t == id as usize {
                    reach[e].fate = Fate::Collided;
                } else {
                    self.txs[t].reach[e].fate = Fate::Collided;
                }
                st.lock = id;
                st.lock_entry = entry;
                st.lock_mw = p;
                st.lock_max_interf_mw = (st.energy_mw - p).max(0.0);
                Fate::Locked
            } else {
                Fate::Collided
            };
            if st.lock != NONE && fate != Fate::Locked {
                let interf = (st.energy_mw - st.lock_mw).max(0.0);
                st.lock_max_interf_mw = st.lock_max_interf_mw.max(interf);
            }
            reach.push(Reach {
                rx: r,
                power_mw: p,
                fate,
                in_range,
            });
        }
        let tx = &mut self.txs[id as usize];
        tx.reach = reach;
        tx.bits = 8 * u64::from(psdu_bytes + self.phy.phy_header_bytes);
        tx.live = true;
        id
    }

    /// End transmission `id`: remove its energy and decide every receiver
    /// that was locked on it. `out` gets one result per reached member;
    /// `locks` every member whose lock ended. The PER draw (the costly part:
    /// BER from SINR) is made only for receivers `decide(r)` selects — the
    /// destination of a unicast frame, every receiver of a broadcast; the
    /// others get `Overheard` when no collision took the frame.
    pub fn end_tx(
        &mut self,
        id: TxId,
        mut decide: impl FnMut(u32) -> bool,
        out: &mut Vec<RxResult>,
        locks: &mut Vec<u32>,
    ) {
        out.clear();
        let Some(tx) = self.txs.get_mut(id as usize) else {
            return;
        };
        if !tx.live {
            return;
        }
        tx.live = false;
        let reach = std::mem::take(&mut tx.reach);
        let bits = tx.bits;
        for e in &reach {
            let st = &mut self.rx[e.rx as usize];
            st.energy_mw -= e.power_mw;
            st.active = st.active.saturating_sub(1);
            // exact zero when nothing is on air, so float drift cannot build up
            st.energy_mw = if st.active == 0 {
                0.0
            } else {
                st.energy_mw.max(0.0)
            };
            let outcome = match e.fate {
                Fate::Locked if st.lock == id => {
                    st.lock = NONE;
                    locks.push(e.rx);
                    let interf = st.lock_max_interf_mw;
                    let sinr = e.power_mw / (self.noise_mw + interf);
                    // negligible interference (below 1e-3 of the noise) is no collision
                    if interf > 1e-3 * self.noise_mw && sinr < self.capture {
                        RxOutcome::Collision
                    } else if !decide(e.rx) {
                        RxOutcome::Overheard
                    } else {
                        let ber = phy::ber(self.phy.modulation, sinr);
                        let lost = self.rx_rng[e.rx as usize].bernoulli(phy::per(ber, bits))
                            // on top of SINR: only a frame it delivered is drawn again
                            || self
                                .frame_loss
                                .as_mut()
                                .is_some_and(|l| l.rng[e.rx as usize].bernoulli(l.p));
                        if lost {
                            RxOutcome::LostChannel
                        } else {
                            RxOutcome::Delivered
                        }
                    }
                }
                Fate::Locked | Fate::Collided => RxOutcome::Collision,
                Fate::Weak => RxOutcome::LostChannel,
                Fate::Deaf => RxOutcome::Deaf,
            };
            if outcome == RxOutcome::Collision && e.in_range {
                self.stats.collisions += 1;
            }
            out.push(RxResult {
                rx: e.rx,
                outcome,
                in_range: e.in_range,
            });
        }
        self.txs[id as usize].reach = reach;
        self.free.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn phy() -> PhyParams {
        PhyParams::IEEE802154
    }

    fn prop() -> Propagation {
        Propagation {
            shadowing_db: 0.0,
            ..Propagation::INDOOR_2_4_GHZ
        }
    }

    #[test]
    fn grid_neighbours_equal_brute_force() {
        let mut rng = SimRng::stream(3, "grid");
        let pos: Vec<(f64, f64)> = (0..400)
            .map(|_| (rng.uniform() * 200.0, rng.uniform() * 200.0))
            .collect();
        let names: Vec<String> = (0..400).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let m = Medium::new("m", 1, phy(), prop(), None, &pos, &refs, &[]);
        let radius = prop().range_m(0.0 - phy().cutoff_dbm);
        for s in 0..400u32 {
            let got: Vec<u32> = m.neighbours(s, f64::NEG_INFINITY).map(|x| x.0).collect();
            let want: Vec<u32> = (0..400u32)
                .filter(|&r| {
                    let (a, b) = (pos[s as usize], pos[r as usize]);
                    r != s && libm::hypot(a.0 - b.0, a.1 - b.1) <= radius
                })
                .collect();
            assert_eq!(got, want, "sender {s}");
        }
    }

    #[test]
    fn lone_frame_is_delivered_and_energy_returns_to_zero() {
        let pos = [(0.0, 0.0), (10.0, 0.0)];
        let mut m = Medium::new("m", 1, phy(), prop(), None, &pos, &["a", "b"], &[]);
        let mut locks = Vec::new();
        let t = m.begin_tx(SimTime::ZERO, 0, 50, |_| true, &mut locks);
        assert!(m.receiving(1));
        m.start_cca(1);
        assert!(m.end_cca(1), "-70 dBm is above the -77 dBm CCA threshold");
        let mut out = Vec::new();
        m.end_tx(t, |_| true, &mut out, &mut locks);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, RxOutcome::Delivered);
        assert!(!m.receiving(1));
        m.start_cca(1);
        assert!(!m.end_cca(1));
    }

    #[test]
    fn only_selected_receivers_are_decided() {
        let pos = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let mut m = Medium::new("m", 1, phy(), prop(), None, &pos, &["a", "b", "c"], &[]);
        let mut locks = Vec::new();
        let t = m.begin_tx(SimTime::ZERO, 0, 50, |_| true, &mut locks);
        let mut out = Vec::new();
        m.end_tx(t, |r| r == 1, &mut out, &mut locks);
        let got: Vec<_> = out.iter().map(|r| (r.rx, r.outcome)).collect();
        assert_eq!(got, [(1, RxOutcome::Delivered), (2, RxOutcome::Overheard)]);
        assert_eq!(locks, [1, 2, 1, 2]);
    }

    #[test]
    fn random_overlaps_leave_no_energy_or_lock_behind() {
        // 60 members, Rician fading, random overlapping frames ended in
        // random order, some receivers deaf: every reached member gets one
        // result per frame, and once nothing is on air no energy, lock or
        // interference is left anywhere.
        let mut rng = SimRng::stream(11, "medium-fuzz");
        let pos: Vec<(f64, f64)> = (0..60)
            .map(|_| (rng.uniform() * 80.0, rng.uniform() * 80.0))
            .collect();
        let names: Vec<String> = (0..60).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let fading = FadingParams {
            fading: Fading::Rician { k: 2.0 },
            coherence: SimDuration::from_millis(3),
        };
        let mut p = prop();
        p.shadowing_db = 4.0;
        let interferer = [InterfererPos {
            position: (40.0, 40.0),
            power_dbm: -5.0,
        }];
        let mut m = Medium::new("m", 5, phy(), p, Some(fading), &pos, &refs, &interferer);
        let mut locks = Vec::new();
        let mut out = Vec::new();
        let mut on_air: Vec<(TxId, u32)> = Vec::new();
        let mut t = 0u64;
        for _ in 0..20_000 {
            t += rng.below(400_000);
            if on_air.len() < 8 && rng.bernoulli(0.55) {
                let s = rng.below(61) as u32; // 60 = the interferer
                if rng.bernoulli(0.1) && s < 60 {
                    m.set_deaf(s);
                    m.set_hearing(s, SimTime(t + 192_000));
                }
                let id = m.begin_tx(
                    SimTime(t),
                    s,
                    20 + rng.below(100) as u32,
                    |_| true,
                    &mut locks,
                );
                on_air.push((id, s));
            } else if !on_air.is_empty() {
                let k = rng.below(on_air.len() as u64) as usize;
                let (id, s) = on_air.swap_remove(k);
                m.end_tx(id, |r| r % 2 == 0, &mut out, &mut locks);
                assert_eq!(out.len(), m.neighbours(s, f64::NEG_INFINITY).count());
            }
        }
        for (id, _) in on_air.drain(..) {
            m.end_tx(id, |_| true, &mut out, &mut locks);
        }
        for (r, st) in m.rx.iter().enumerate() {
            assert_eq!(st.energy_mw, 0.0, "energy left at {r}");
            assert_eq!(st.active, 0);
            assert_eq!(st.lock, NONE, "lock left at {r}");
        }
        assert!(m.stats.collisions > 0);
    }
}
