//! `[[media]]`: shared radio media (issue #4). Each table names a medium,
//! its members (node names or globs; every member needs a `position`) and
//! starts from a preset (`ieee802154`, `lora-like`) whose every number can be
//! overridden field by field. The presets and every field are documented in
//! `scenarios/README.md` and `docs/channels.md`.

use super::check::{list, Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::flows::resolve_nodes;
use super::schema::{LossSchema, S};
use super::topology::Topology;
use crate::link::energy::{DutyCycle, RadioParams};
use crate::link::mac154::{self, Addressing, MacParams};
use crate::link::medium::{FadingParams, PhyParams, Propagation};
use crate::scenario::model::{Fading, LossSpec, Modulation};
use crate::sim::SimDuration;
use serde::Deserialize;

/// Largest |x| or |y| of a medium member or interferer, in metres
/// (10,000 km): keeps the neighbour grid's arithmetic finite.
pub const MAX_COORD_M: f64 = 1e7;

/// `[[media]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediumSchema {
    pub name: S<String>,
    pub preset: Option<S<String>>,
    pub members: S<Vec<S<String>>>,
    pub rate: Option<S<String>>,
    pub frame_bytes: Option<S<u64>>,
    pub phy_header_bytes: Option<S<u64>>,
    pub addressing: Option<S<String>>,
    pub tx_power_dbm: Option<S<f64>>,
    pub noise_dbm: Option<S<f64>>,
    pub sensitivity_dbm: Option<S<f64>>,
    pub cca_threshold_dbm: Option<S<f64>>,
    pub capture_db: Option<S<f64>>,
    pub cutoff_dbm: Option<S<f64>>,
    pub modulation: Option<S<String>>,
    pub turnaround: Option<S<String>>,
    pub path_loss_exponent: Option<S<f64>>,
    pub ref_loss_db: Option<S<f64>>,
    pub ref_distance_m: Option<S<f64>>,
    pub shadowing_db: Option<S<f64>>,
    pub fading: Option<S<String>>,
    pub k: Option<S<f64>>,
    pub coherence: Option<S<String>>,
    pub csma: Option<S<bool>>,
    pub min_be: Option<S<u64>>,
    pub max_be: Option<S<u64>>,
    pub max_backoffs: Option<S<u64>>,
    pub unit_backoff: Option<S<String>>,
    pub cca_duration: Option<S<String>>,
    pub ack: Option<S<bool>>,
    pub max_frame_retries: Option<S<u64>>,
    pub ack_wait: Option<S<String>>,
    pub queue: Option<S<u64>>,
    pub tx_duty_limit: Option<S<f64>>,
    pub route_margin_db: Option<S<f64>>,
    /// `loss = { model = "bernoulli", p = … }`: per-attempt loss on top of SINR.
    pub(crate) loss: Option<S<LossSchema>>,
    pub energy: Option<S<EnergySchema>>,
    pub duty_cycle: Option<S<DutySchema>>,
    #[serde(default)]
    pub interferers: Vec<S<InterfererSchema>>,
}

/// `energy = { … }`: supply voltage and currents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergySchema {
    pub voltage: Option<S<f64>>,
    pub tx_ma: Option<S<f64>>,
    pub rx_ma: Option<S<f64>>,
    pub listen_ma: Option<S<f64>>,
    pub sleep_ma: Option<S<f64>>,
}

/// `duty_cycle = { period, wake, nodes }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutySchema {
    pub period: S<String>,
    pub wake: S<String>,
    pub nodes: S<Vec<S<String>>>,
}

/// `interferers = [{ position, power_dbm, period, burst, start }]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfererSchema {
    pub position: S<[f64; 2]>,
    pub power_dbm: S<f64>,
    pub period: S<String>,
    pub burst: S<String>,
    pub start: Option<S<String>>,
}

/// An interferer: bursts of `burst` every `period` from `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfererSpec {
    pub position: (f64, f64),
    pub power_dbm: f64,
    pub period: SimDuration,
    pub burst: SimDuration,
    pub start: SimDuration,
}

/// A validated medium.
#[derive(Debug, Clone, PartialEq)]
pub struct MediumSpec {
    pub name: String,
    pub preset: String,
    /// Node indices in node order.
    pub members: Vec<usize>,
    pub phy: PhyParams,
    pub propagation: Propagation,
    pub fading: Option<FadingParams>,
    pub mac: MacParams,
    pub energy: RadioParams,
    /// Synchronous duty cycle of the `duty_nodes` (the others always listen).
    pub duty: Option<DutyCycle>,
    pub duty_nodes: Vec<usize>,
    pub interferers: Vec<InterfererSpec>,
    /// Routing uses pairs whose mean power is at least sensitivity + margin.
    pub route_margin_db: f64,
    /// Independent loss of each frame attempt at each receiver, on top of
    /// SINR (`LossSpec::None` or `LossSpec::Bernoulli`; see `MEDIA_LOSS_MODELS`).
    pub loss: LossSpec,
}

impl MediumSpec {
    /// Largest payload of one data frame (an IPv4 packet, or a 6LoWPAN
    /// frame payload in an IPv6 run): frame size − MAC header − FCS.
    pub fn mtu(&self) -> u32 {
        self.phy.max_frame_bytes - mac154::data_overhead(self.mac.addressing, self.mac.addressing)
    }
}

/// The loss models a `[[media]]` table accepts: a medium's loss is drawn per
/// frame attempt and receiver (`link::medium`), which only the memoryless
/// models make sense of so far.
pub const MEDIA_LOSS_MODELS: &[&str] = &["none", "bernoulli"];

/// A preset: PHY, propagation, fading, MAC and energy numbers.
pub struct RadioPreset {
    pub phy: PhyParams,
    pub propagation: Propagation,
    pub fading: Option<FadingParams>,
    pub mac: MacParams,
    pub energy: RadioParams,
}

/// The presets by name (numbers and sources in docs/channels.md).
pub fn presets() -> [(&'static str, RadioPreset); 2] {
    [
        (
            // IEEE 802.15.4-2006 2.4 GHz O-QPSK, CC2420 radio
            "ieee802154",
            RadioPreset {
                phy: PhyParams::IEEE802154,
                propagation: Propagation::INDOOR_2_4_GHZ,
                fading: Some(FadingParams {
                    fading: Fading::Rayleigh,
                    coherence: SimDuration::from_millis(100),
                }),
                mac: MacParams::IEEE802154,
                energy: RadioParams::CC2420,
            },
        ),
        (
            // a LoRa-like long-range, low-rate radio (SX1276-class, EU 868 MHz)
            "lora-like",
            RadioPreset {
                phy: PhyParams {
                    rate_bps: 5_470,
                    max_frame_bytes: 255,
                    phy_header_bytes: 9,
                    tx_power_dbm: 14.0,
                    noise_dbm: -130.0,
                    sensitivity_dbm: -123.0,
                    cca_threshold_dbm: -110.0,
                    capture_db: 6.0,
                    modulation: Modulation::Bpsk,
                    turnaround: SimDuration::from_micros(100),
                    cutoff_dbm: -133.0,
                },
                propagation: Propagation {
                    exponent: 2.7,
                    ref_loss_db: 31.0,
                    ref_distance_m: 1.0,
                    shadowing_db: 6.0,
                },
                fading: Some(FadingParams {
                    fading: Fading::Rayleigh,
                    coherence: SimDuration::from_millis(500),
                }),
                mac: MacParams {
                    csma: false,
                    ack: false,
                    queue: 8,
                    tx_duty_limit: Some(0.01),
                    ..MacParams::IEEE802154
                },
                energy: RadioParams {
                    voltage_v: 3.3,
                    tx_ma: 44.0,
                    rx_ma: 10.8,
                    listen_ma: 1.6,
                    sleep_ma: 0.0002,
                },
            },
        ),
    ]
}

fn dur(
    ctx: &Ctx<'_>,
    v: &Option<S<String>>,
    field: &str,
    default: SimDuration,
    min: SimDuration,
) -> Result<SimDuration, ScenarioError> {
    let d = ctx.duration_or(v, field, default, MAX_DURATION)?;
    if let (Some(s), true) = (v, d < min) {
        return Err(ctx.err_at(s, field, format!("must be at least {min}")));
    }
    Ok(d)
}

fn float(
    ctx: &Ctx<'_>,
    v: &Option<S<f64>>,
    field: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, ScenarioError> {
    v.as_ref()
        .map_or(Ok(default), |v| ctx.float_in(v, field, lo, hi))
}

fn int(
    ctx: &Ctx<'_>,
    v: &Option<S<u64>>,
    field: &str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64, ScenarioError> {
    v.as_ref()
        .map_or(Ok(default), |v| ctx.int_in(v, field, lo, hi))
}

/// Resolve every `[[media]]` table.
pub fn resolve_all(
    ctx: &Ctx<'_>,
    topo: &Topology,
    media: &[S<MediumSchema>],
) -> Result<Vec<MediumSpec>, ScenarioError> {
    let mut out: Vec<MediumSpec> = Vec::with_capacity(media.len());
    let mut owner: Vec<Option<usize>> = vec![None; topo.nodes.len()];
    for m in media {
        let spec = resolve(ctx, topo, m.get_ref())?;
        let f = format!("media.{}", spec.name);
        if out.iter().any(|o| o.name == spec.name) {
            return Err(ctx.err_at(
                &m.get_ref().name,
                &format!("{f}.name"),
                format!("duplicate medium name \"{}\"", spec.name),
            ));
        }
        for &n in &spec.members {
            if let Some(o) = owner[n] {
                return Err(ctx.err_at(
                    &m.get_ref().members,
                    &format!("{f}.members"),
                    format!(
                        "node \"{}\" is already a member of medium \"{}\": a node has one radio",
                        topo.nodes[n].name, out[o].name
                    ),
                ));
            }
            owner[n] = Some(out.len());
        }
        out.push(spec);
    }
    Ok(out)
}

fn resolve(ctx: &Ctx<'_>, topo: &Topology, m: &MediumSchema) -> Result<MediumSpec, ScenarioError> {
    let name = m.name.get_ref().clone();
    let f0 = format!("media.{name}");
    let f = |k: &str| format!("{f0}.{k}");
    super::topology::check_name(ctx, &m.name, &name, &f("name"))?;
    let all = presets();
    let preset_name = m.preset.as_ref().map_or("ieee802154", |p| p.get_ref());
    let Some((pname, p)) = all.iter().find(|(n, _)| *n == preset_name) else {
        let at = m.preset.as_ref().map_or(m.name.span(), |p| p.span());
        return Err(ctx.err(
            at,
            &f("preset"),
            format!(
                "unknown medium preset \"{preset_name}\", known presets: {}",
                list(all.iter().map(|p| p.0))
            ),
        ));
    };
    let members = resolve_nodes(ctx, topo, &m.members, &f("members"))?;
    for &n in &members {
        if topo.nodes[n].position.is_none() {
            return Err(ctx.err_at(
                &m.members,
                &f("members"),
                format!(
                    "node \"{}\" has no position: give it `position = [x, y]` (metres) or its group a `placement`",
                    topo.nodes[n].name
                ),
            ));
        }
        if let Some((x, y)) = topo.nodes[n].position {
            if x.abs() > MAX_COORD_M || y.abs() > MAX_COORD_M {
                return Err(ctx.err_at(
                    &m.members,
                    &f("members"),
                    format!(
                        "node \"{}\" at [{x}, {y}] is too far out for a radio medium: coordinates must be within ±{MAX_COORD_M} m",
                        topo.nodes[n].name
                    ),
                ));
            }
        }
    }
    let mut phy = p.phy;
    if let Some(r) = &m.rate {
        let bps =
            super::units::parse_rate(r.get_ref()).map_err(|e| ctx.err_at(r, &f("rate"), e))?;
        if !(1..=1_000_000_000).contains(&bps) {
            return Err(ctx.err_at(
                r,
                &f("rate"),
                format!("rate {bps} bit/s is out of range: must be 1 bit/s ..= 1 Gbit/s"),
            ));
        }
        phy.rate_bps = bps;
    }
    let addressing = match &m.addressing {
        Some(a) => ctx.choice(
            a,
            &f("addressing"),
            &[
                ("short", Addressing::Short),
                ("extended", Addressing::Extended),
            ],
        )?,
        None => p.mac.addressing,
    };
    let overhead = mac154::data_overhead(addressing, addressing) as u64;
    let min_frame = super::topology::MIN_MTU + overhead;
    phy.max_frame_bytes = int(ctx, &m.frame_bytes, &f("frame_bytes"), phy.max_frame_bytes.into(), min_frame, 65_535 + overhead)
        .map_err(|mut e| {
            e.message.push_str(&format!(" (the IPv4 MTU is frame_bytes − {overhead} bytes of MAC header and FCS, and must be at least 68)"));
            e
        })? as u32;
    phy.phy_header_bytes = int(
        ctx,
        &m.phy_header_bytes,
        &f("phy_header_bytes"),
        phy.phy_header_bytes.into(),
        0,
        1024,
    )? as u32;
    phy.tx_power_dbm = float(
        ctx,
        &m.tx_power_dbm,
        &f("tx_power_dbm"),
        phy.tx_power_dbm,
        -50.0,
        40.0,
    )?;
    phy.noise_dbm = float(
        ctx,
        &m.noise_dbm,
        &f("noise_dbm"),
        phy.noise_dbm,
        -200.0,
        0.0,
    )?;
    phy.sensitivity_dbm = float(
        ctx,
        &m.sensitivity_dbm,
        &f("sensitivity_dbm"),
        phy.sensitivity_dbm,
        -200.0,
        0.0,
    )?;
    phy.cca_threshold_dbm = float(
        ctx,
        &m.cca_threshold_dbm,
        &f("cca_threshold_dbm"),
        phy.cca_threshold_dbm,
        -200.0,
        0.0,
    )?;
    phy.capture_db = float(
        ctx,
        &m.capture_db,
        &f("capture_db"),
        phy.capture_db,
        0.0,
        60.0,
    )?;
    phy.cutoff_dbm = float(
        ctx,
        &m.cutoff_dbm,
        &f("cutoff_dbm"),
        phy.cutoff_dbm,
        -250.0,
        0.0,
    )?;
    if phy.cutoff_dbm > phy.sensitivity_dbm {
        let at = m.cutoff_dbm.as_ref().map_or(m.name.span(), |v| v.span());
        return Err(ctx.err(at, &f("cutoff_dbm"), format!("cutoff_dbm {} must not exceed sensitivity_dbm {}: signals a receiver can lock on must count", phy.cutoff_dbm, phy.sensitivity_dbm)));
    }
    if let Some(v) = &m.modulation {
        phy.modulation = ctx.choice(
            v,
            &f("modulation"),
            &[
                ("oqpsk", Modulation::Oqpsk802154),
                ("bpsk", Modulation::Bpsk),
            ],
        )?;
    }
    phy.turnaround = dur(
        ctx,
        &m.turnaround,
        &f("turnaround"),
        phy.turnaround,
        SimDuration::ZERO,
    )?;
    let mut prop = p.propagation;
    prop.exponent = float(
        ctx,
        &m.path_loss_exponent,
        &f("path_loss_exponent"),
        prop.exponent,
        1.0,
        8.0,
    )?;
    prop.ref_loss_db = float(
        ctx,
        &m.ref_loss_db,
        &f("ref_loss_db"),
        prop.ref_loss_db,
        0.0,
        200.0,
    )?;
    prop.ref_distance_m = float(
        ctx,
        &m.ref_distance_m,
        &f("ref_distance_m"),
        prop.ref_distance_m,
        0.001,
        10_000.0,
    )?;
    prop.shadowing_db = float(
        ctx,
        &m.shadowing_db,
        &f("shadowing_db"),
        prop.shadowing_db,
        0.0,
        30.0,
    )?;
    let fading_kind = match &m.fading {
        Some(v) => ctx.choice(
            v,
            &f("fading"),
            &[("none", 0u8), ("rayleigh", 1), ("rician", 2)],
        )?,
        None => match p.fading.map(|x| x.fading) {
            None => 0,
            Some(Fading::Rayleigh) => 1,
            Some(Fading::Rician { .. }) => 2,
        },
    };
    if let (Some(k), true) = (&m.k, fading_kind != 2) {
        return Err(ctx.err_at(
            k,
            &f("k"),
            "field `k` applies only to `fading = \"rician\"`",
        ));
    }
    let coherence = dur(
        ctx,
        &m.coherence,
        &f("coherence"),
        p.fading
            .map_or(SimDuration::from_millis(100), |x| x.coherence),
        SimDuration::from_nanos(1),
    )?;
    let fading = match fading_kind {
        0 => {
            if let Some(c) = &m.coherence {
                return Err(ctx.err_at(
                    c,
                    &f("coherence"),
                    "field `coherence` does not apply to `fading = \"none\"`",
                ));
            }
            None
        }
        1 => Some(FadingParams {
            fading: Fading::Rayleigh,
            coherence,
        }),
        _ => {
            let at = m.fading.as_ref().map_or(m.name.span(), |v| v.span());
            let k = m.k.as_ref().ok_or_else(|| {
                ctx.err(
                    at,
                    &f("k"),
                    "`fading = \"rician\"` needs `k` (K-factor, linear)",
                )
            })?;
            Some(FadingParams {
                fading: Fading::Rician {
                    k: ctx.float_in(k, &f("k"), 0.0, 1000.0)?,
                },
                coherence,
            })
        }
    };
    let mut mac = p.mac;
    mac.addressing = addressing;
    mac.csma = m.csma.as_ref().map_or(mac.csma, |v| *v.get_ref());
    mac.min_be = int(ctx, &m.min_be, &f("min_be"), mac.min_be.into(), 0, 8)? as u8;
    mac.max_be = int(ctx, &m.max_be, &f("max_be"), mac.max_be.into(), 3, 8)? as u8;
    if mac.min_be > mac.max_be {
        let at = m.min_be.as_ref().map_or(m.name.span(), |v| v.span());
        return Err(ctx.err(
            at,
            &f("min_be"),
            format!(
                "min_be {} must not exceed max_be {}",
                mac.min_be, mac.max_be
            ),
        ));
    }
    mac.max_backoffs = int(
        ctx,
        &m.max_backoffs,
        &f("max_backoffs"),
        mac.max_backoffs.into(),
        0,
        5,
    )? as u8;
    mac.unit_backoff = dur(
        ctx,
        &m.unit_backoff,
        &f("unit_backoff"),
        mac.unit_backoff,
        SimDuration::from_nanos(1),
    )?;
    mac.cca_duration = dur(
        ctx,
        &m.cca_duration,
        &f("cca_duration"),
        mac.cca_duration,
        SimDuration::from_nanos(1),
    )?;
    mac.ack = m.ack.as_ref().map_or(mac.ack, |v| *v.get_ref());
    mac.max_frame_retries = int(
        ctx,
        &m.max_frame_retries,
        &f("max_frame_retries"),
        mac.max_frame_retries.into(),
        0,
        7,
    )? as u8;
    mac.ack_wait = dur(
        ctx,
        &m.ack_wait,
        &f("ack_wait"),
        mac.ack_wait,
        SimDuration::from_nanos(1),
    )?;
    mac.queue = int(
        ctx,
        &m.queue,
        &f("queue"),
        mac.queue.into(),
        1,
        super::topology::MAX_QUEUE,
    )? as u32;
    if let Some(v) = &m.tx_duty_limit {
        let x = ctx.float_in(v, &f("tx_duty_limit"), 0.0, 1.0)?;
        if x <= 0.0 {
            return Err(ctx.err_at(
                v,
                &f("tx_duty_limit"),
                "must be in (0, 1]: a radio that may never send is not a radio",
            ));
        }
        mac.tx_duty_limit = if x >= 1.0 { None } else { Some(x) };
    }
    let ack_airtime = mac154::airtime(mac154::ACK_PSDU_BYTES + phy.phy_header_bytes, phy.rate_bps);
    // an ACK ending exactly at the timeout would lose to it (the timer was
    // scheduled first), so the wait must be strictly longer
    if mac.ack && mac.ack_wait <= phy.turnaround + ack_airtime {
        let at = m.ack_wait.as_ref().map_or(m.name.span(), |v| v.span());
        return Err(ctx.err(at, &f("ack_wait"), format!("ack_wait {} must be longer than turnaround + ACK airtime ({}): no ACK could ever arrive in time", mac.ack_wait, phy.turnaround + ack_airtime)));
    }
    let mut energy = p.energy;
    if let Some(e) = &m.energy {
        let e = e.get_ref();
        let fe = |k: &str| f(&format!("energy.{k}"));
        energy.voltage_v = float(
            ctx,
            &e.voltage,
            &fe("voltage"),
            energy.voltage_v,
            0.0,
            1000.0,
        )?;
        energy.tx_ma = float(ctx, &e.tx_ma, &fe("tx_ma"), energy.tx_ma, 0.0, 100_000.0)?;
        energy.rx_ma = float(ctx, &e.rx_ma, &fe("rx_ma"), energy.rx_ma, 0.0, 100_000.0)?;
        energy.listen_ma = float(
            ctx,
            &e.listen_ma,
            &fe("listen_ma"),
            energy.listen_ma,
            0.0,
            100_000.0,
        )?;
        energy.sleep_ma = float(
            ctx,
            &e.sleep_ma,
            &fe("sleep_ma"),
            energy.sleep_ma,
            0.0,
            100_000.0,
        )?;
    }
    let (duty, duty_nodes) = match &m.duty_cycle {
        None => (None, Vec::new()),
        Some(d) => {
            let d = d.get_ref();
            let period = dur(
                ctx,
                &Some(d.period.clone()),
                &f("duty_cycle.period"),
                SimDuration::ZERO,
                SimDuration::from_micros(1),
            )?;
            let wake = dur(
                ctx,
                &Some(d.wake.clone()),
                &f("duty_cycle.wake"),
                SimDuration::ZERO,
                SimDuration::from_nanos(1),
            )?;
            if wake > period {
                return Err(ctx.err_at(
                    &d.wake,
                    &f("duty_cycle.wake"),
                    format!("wake {wake} is longer than period {period}"),
                ));
            }
            let nodes = resolve_nodes(ctx, topo, &d.nodes, &f("duty_cycle.nodes"))?;
            if let Some(&n) = nodes.iter().find(|n| !members.contains(n)) {
                return Err(ctx.err_at(
                    &d.nodes,
                    &f("duty_cycle.nodes"),
                    format!(
                        "node \"{}\" is not a member of medium \"{name}\"",
                        topo.nodes[n].name
                    ),
                ));
            }
            (Some(DutyCycle { period, wake }), nodes)
        }
    };
    let mut interferers = Vec::with_capacity(m.interferers.len());
    for (i, it) in m.interferers.iter().enumerate() {
        let it = it.get_ref();
        let fi = |k: &str| f(&format!("interferers[{i}].{k}"));
        let [x, y] = *it.position.get_ref();
        if !x.is_finite() || !y.is_finite() {
            return Err(ctx.err_at(
                &it.position,
                &fi("position"),
                format!("coordinates must be finite numbers, got [{x}, {y}]"),
            ));
        }
        if x.abs() > MAX_COORD_M || y.abs() > MAX_COORD_M {
            return Err(ctx.err_at(
                &it.position,
                &fi("position"),
                format!("[{x}, {y}] is too far out: coordinates must be within ±{MAX_COORD_M} m"),
            ));
        }
        let power_dbm = ctx.float_in(&it.power_dbm, &fi("power_dbm"), -50.0, 60.0)?;
        let period = dur(
            ctx,
            &Some(it.period.clone()),
            &fi("period"),
            SimDuration::ZERO,
            SimDuration::from_micros(1),
        )?;
        let burst = dur(
            ctx,
            &Some(it.burst.clone()),
            &fi("burst"),
            SimDuration::ZERO,
            SimDuration::from_nanos(1),
        )?;
        if burst > period {
            return Err(ctx.err_at(
                &it.burst,
                &fi("burst"),
                format!("burst {burst} is longer than period {period}"),
            ));
        }
        let start = dur(
            ctx,
            &it.start,
            &fi("start"),
            SimDuration::ZERO,
            SimDuration::ZERO,
        )?;
        interferers.push(InterfererSpec {
            position: (x, y),
            power_dbm,
            period,
            burst,
            start,
        });
    }
    let route_margin_db = float(
        ctx,
        &m.route_margin_db,
        &f("route_margin_db"),
        10.0,
        0.0,
        100.0,
    )?;
    let loss = match &m.loss {
        None => LossSpec::None,
        Some(l) => super::loss::resolve_only(ctx, l, &f("loss"), MEDIA_LOSS_MODELS, "a medium")?,
    };
    Ok(MediumSpec {
        name,
        preset: pname.to_string(),
        members,
        phy,
        propagation: prop,
        fading,
        mac,
        energy,
        duty,
        duty_nodes,
        interferers,
        route_margin_db,
        loss,
    })
}
