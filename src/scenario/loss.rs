//! `loss` tables → `LossSpec`.
//!
//! Models and their keys (`MODEL_KEYS`): `none`; `bernoulli` (`p`);
//! `gilbert_elliott` with either `p_gb`, `p_bg` (+ `loss_good` = 0,
//! `loss_bad` = 1) or `mean_loss` ρ and `burst` L, converted as a simple
//! Gilbert model (loss only in the bad state, mean loss-run length L):
//! r = 1/L, p = r·ρ/(1−ρ), so p_gb = p, p_bg = r (Gilbert 1960; the
//! stationary bad-state probability p/(p+r) equals ρ); `trace` (`file`,
//! `format`, `repeat`, `loss_good`, `loss_bad`, `period`, see `trace`).

use super::check::{list, Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::schema::{LossSchema, S};
use super::trace;
use crate::scenario::model::{LossSpec, TraceSpec};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether trace files may lie outside the scenario's directory
/// (`qossim --allow-outside`); off by default.
static ALLOW_OUTSIDE: AtomicBool = AtomicBool::new(false);

/// Let scenarios loaded from now on read trace files anywhere (`true`, the
/// CLI's `--allow-outside`), or only inside the scenario's own directory
/// (`false`, the default: a scenario file from elsewhere cannot make
/// `check` read `/dev/urandom` or another user's files). Process-wide.
pub fn allow_files_outside(yes: bool) {
    ALLOW_OUTSIDE.store(yes, Ordering::Relaxed);
}

/// `path` (resolved) lies inside `base` once both are canonical (so `..`
/// and symbolic links cannot lead out).
fn inside(base: &Path, path: &Path) -> bool {
    // a scenario named without a directory ("s.toml") has the empty parent
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    match (base.canonicalize(), path.canonicalize()) {
        (Ok(b), Ok(p)) => p.starts_with(b),
        _ => false,
    }
}

/// Each loss model and the keys (besides `model`) that apply to it.
pub(crate) const MODEL_KEYS: &[(&str, &[&str])] = &[
    ("none", &[]),
    ("bernoulli", &["p"]),
    (
        "gilbert_elliott",
        &[
            "p_gb",
            "p_bg",
            "loss_good",
            "loss_bad",
            "mean_loss",
            "burst",
        ],
    ),
    (
        "trace",
        &[
            "file",
            "format",
            "repeat",
            "loss_good",
            "loss_bad",
            "period",
        ],
    ),
    (
        "fading",
        &[
            "fading",
            "k",
            "mean_snr_db",
            "coherence",
            "modulation",
            "phy_overhead_bytes",
        ],
    ),
];

/// The keys of `l` that are present, with their spans, in schema order.
fn present(l: &LossSchema) -> Vec<(&'static str, std::ops::Range<usize>)> {
    fn sp<T>(v: &Option<S<T>>) -> Option<std::ops::Range<usize>> {
        v.as_ref().map(|v| v.span())
    }
    [
        ("p", sp(&l.p)),
        ("p_gb", sp(&l.p_gb)),
        ("p_bg", sp(&l.p_bg)),
        ("loss_good", sp(&l.loss_good)),
        ("loss_bad", sp(&l.loss_bad)),
        ("mean_loss", sp(&l.mean_loss)),
        ("burst", sp(&l.burst)),
        ("file", sp(&l.file)),
        ("format", sp(&l.format)),
        ("repeat", sp(&l.repeat)),
        ("period", sp(&l.period)),
        ("fading", sp(&l.fading)),
        ("k", sp(&l.k)),
        ("mean_snr_db", sp(&l.mean_snr_db)),
        ("coherence", sp(&l.coherence)),
        ("modulation", sp(&l.modulation)),
        ("phy_overhead_bytes", sp(&l.phy_overhead_bytes)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect()
}

/// Resolve a loss table whose field path is `field` (e.g. `links.x.loss`).
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    l: &S<LossSchema>,
    field: &str,
) -> Result<LossSpec, ScenarioError> {
    let span = l.span();
    let l = l.get_ref();
    let model = l.model.get_ref().as_str();
    let f = |k: &str| format!("{field}.{k}");
    let Some(&(_, keys)) = MODEL_KEYS.iter().find(|(m, _)| *m == model) else {
        return Err(ctx.err_at(
            &l.model,
            &f("model"),
            format!(
                "unknown loss model \"{model}\", expected one of: {}",
                list(MODEL_KEYS.iter().map(|m| m.0))
            ),
        ));
    };
    for (k, s) in present(l) {
        if !keys.contains(&k) {
            return Err(ctx.err(
                s,
                &f(k),
                format!(
                    "field `{k}` does not apply to model `{model}` (its fields: {})",
                    list(keys.iter())
                ),
            ));
        }
    }
    let prob_or =
        |v: &Option<S<f64>>, k: &str, d: f64| v.as_ref().map_or(Ok(d), |v| ctx.prob(v, &f(k)));
    match model {
        "none" => Ok(LossSpec::None),
        "bernoulli" => {
            let p = l.p.as_ref().ok_or_else(|| {
                ctx.err(
                    span.clone(),
                    &f("p"),
                    "model `bernoulli` needs `p` (loss probability)",
                )
            })?;
            Ok(LossSpec::Bernoulli {
                p: ctx.prob(p, &f("p"))?,
            })
        }
        "gilbert_elliott" => gilbert(ctx, l, span, field),
        "fading" => fading(ctx, l, span, field),
        _ => {
            let file = l
                .file
                .as_ref()
                .ok_or_else(|| ctx.err(span.clone(), &f("file"), "model `trace` needs `file`"))?;
            let format = match &l.format {
                None => "bits",
                Some(v) => ctx.choice(
                    v,
                    &f("format"),
                    &[("bits", "bits"), ("intervals", "intervals")],
                )?,
            };
            let path = ctx.base_dir.join(file.get_ref());
            let shown = path.display().to_string();
            if !ALLOW_OUTSIDE.load(Ordering::Relaxed)
                && path.exists()
                && !inside(ctx.base_dir, &path)
            {
                return Err(ctx.err_at(
                    file,
                    &f("file"),
                    format!(
                        "trace file {shown} is outside the scenario's directory {}; give it a path inside, or run with --allow-outside",
                        ctx.base_dir.display()
                    ),
                ));
            }
            let meta = std::fs::metadata(&path).map_err(|e| {
                ctx.err_at(
                    file,
                    &f("file"),
                    format!("cannot read trace file {shown}: {e}"),
                )
            })?;
            // A device (/dev/zero reads forever), a FIFO (blocks `check`)
            // or a directory is not a trace.
            if !meta.is_file() {
                return Err(ctx.err_at(
                    file,
                    &f("file"),
                    format!("trace file {shown} is not a regular file"),
                ));
            }
            if meta.len() > trace::MAX_TRACE_BYTES {
                return Err(ctx.err_at(
                    file,
                    &f("file"),
                    format!(
                        "trace file {shown} is {} bytes, more than the {} allowed",
                        meta.len(),
                        trace::MAX_TRACE_BYTES
                    ),
                ));
            }
            // bounded even if the file grows after the size check
            let mut text = String::new();
            std::fs::File::open(&path)
                .and_then(|fh| {
                    fh.take(trace::MAX_TRACE_BYTES + 1)
                        .read_to_string(&mut text)
                })
                .map_err(|e| {
                    ctx.err_at(
                        file,
                        &f("file"),
                        format!("cannot read trace file {shown}: {e}"),
                    )
                })?;
            if text.len() as u64 > trace::MAX_TRACE_BYTES {
                return Err(ctx.err_at(
                    file,
                    &f("file"),
                    format!(
                        "trace file {shown} grew past the {} bytes allowed while it was read",
                        trace::MAX_TRACE_BYTES
                    ),
                ));
            }
            let written = PathBuf::from(file.get_ref());
            if format == "bits" {
                for (k, v) in [
                    ("loss_good", l.loss_good.as_ref().map(|v| v.span())),
                    ("loss_bad", l.loss_bad.as_ref().map(|v| v.span())),
                    ("period", l.period.as_ref().map(|v| v.span())),
                ] {
                    if let Some(s) = v {
                        return Err(ctx.err(
                            s,
                            &f(k),
                            format!("field `{k}` applies only to `format = \"intervals\"` traces"),
                        ));
                    }
                }
                let bits = trace::parse_bits(&text, &shown, &f("file"))?;
                Ok(LossSpec::Trace(TraceSpec::Bits {
                    bits: bits.into(),
                    repeat: l.repeat.as_ref().is_none_or(|r| *r.get_ref()),
                    file: written,
                }))
            } else {
                if let Some(r) = &l.repeat {
                    return Err(ctx.err_at(r, &f("repeat"), "field `repeat` applies only to `format = \"bits\"` traces; intervals repeat with `period`"));
                }
                let intervals = trace::parse_intervals(&text, &shown, &f("file"))?;
                let period = match &l.period {
                    None => None,
                    Some(p) => {
                        let d = ctx.duration(p, &f("period"), MAX_DURATION)?;
                        let last = intervals.last().map_or(0, |iv| iv.0.as_nanos());
                        if d.as_nanos() <= last {
                            return Err(ctx.err_at(p, &f("period"), format!("period {d} must be longer than the last interval start in the trace ({last} ns)")));
                        }
                        Some(d)
                    }
                };
                Ok(LossSpec::Trace(TraceSpec::Intervals {
                    intervals: intervals.into(),
                    loss_good: prob_or(&l.loss_good, "loss_good", 0.0)?,
                    loss_bad: prob_or(&l.loss_bad, "loss_bad", 1.0)?,
                    period,
                    file: written,
                }))
            }
        }
    }
}

/// Resolve a loss table that accepts only the models in `allowed` (a
/// `[[media]]` table: `none` and `bernoulli`), `on` naming where it is
/// ("a medium"). Another model, known elsewhere or not, is an error at
/// `<field>.model` listing the accepted ones; the rest is [`resolve`].
pub(crate) fn resolve_only(
    ctx: &Ctx<'_>,
    l: &S<LossSchema>,
    field: &str,
    allowed: &[&str],
    on: &str,
) -> Result<LossSpec, ScenarioError> {
    let m = &l.get_ref().model;
    let model = m.get_ref().as_str();
    if !allowed.contains(&model) {
        let what = if MODEL_KEYS.iter().any(|(k, _)| *k == model) {
            format!("loss model \"{model}\" is not supported on {on}")
        } else {
            format!("unknown loss model \"{model}\"")
        };
        return Err(ctx.err_at(
            m,
            &format!("{field}.model"),
            format!("{what}, expected one of: {}", list(allowed.iter())),
        ));
    }
    resolve(ctx, l, field)
}

fn gilbert(
    ctx: &Ctx<'_>,
    l: &LossSchema,
    span: std::ops::Range<usize>,
    field: &str,
) -> Result<LossSpec, ScenarioError> {
    let f = |k: &str| format!("{field}.{k}");
    let direct = l.p_gb.is_some() || l.p_bg.is_some();
    let derived = l.mean_loss.is_some() || l.burst.is_some();
    let both_forms = "model `gilbert_elliott` takes either `p_gb` and `p_bg` (with optional `loss_good`, `loss_bad`) or `mean_loss` and `burst`, not both";
    if direct && derived {
        return Err(ctx.err(span, field, both_forms));
    }
    if derived {
        if let Some(v) = l.loss_good.as_ref().or(l.loss_bad.as_ref()) {
            return Err(ctx.err_at(v, field, "`mean_loss`/`burst` define a simple Gilbert model (loss_good = 0, loss_bad = 1); give `p_gb`/`p_bg` to set `loss_good`/`loss_bad`"));
        }
        let (Some(rho_v), Some(len_v)) = (&l.mean_loss, &l.burst) else {
            return Err(ctx.err(
                span,
                field,
                "`mean_loss` and `burst` must be given together",
            ));
        };
        let rho = ctx.finite(rho_v, &f("mean_loss"))?;
        let len = ctx.finite(len_v, &f("burst"))?;
        if !(0.0..1.0).contains(&rho) {
            return Err(ctx.err_at(rho_v, &f("mean_loss"), format!("mean_loss = {rho} is infeasible: it must be in [0, 1) (a channel that loses every packet has no good state)")));
        }
        if len < 1.0 {
            return Err(ctx.err_at(
                len_v,
                &f("burst"),
                format!(
                    "burst = {len} is infeasible: the mean loss-run length is at least 1 packet"
                ),
            ));
        }
        let r = 1.0 / len;
        let p = r * rho / (1.0 - rho);
        if p > 1.0 {
            // p ≤ 1 ⇔ ρ/(1−ρ) ≤ L ⇔ ρ ≤ L/(L+1) ⇔ L ≥ ρ/(1−ρ).
            return Err(ctx.err_at(
                rho_v,
                &f("mean_loss"),
                format!(
                    "mean_loss = {rho} with burst = {len} is infeasible: the good→bad probability p = ρ/((1−ρ)·L) = {p:.4} exceeds 1 \
                     (loss runs of mean length {len} cannot be separated by gaps short enough). \
                     With burst = {len}, mean_loss must be ≤ {:.4}; with mean_loss = {rho}, burst must be ≥ {:.4}",
                    len / (len + 1.0),
                    rho / (1.0 - rho)
                ),
            ));
        }
        return Ok(LossSpec::GilbertElliott {
            p_gb: p,
            p_bg: r,
            loss_good: 0.0,
            loss_bad: 1.0,
        });
    }
    let (Some(gb), Some(bg)) = (&l.p_gb, &l.p_bg) else {
        return Err(ctx.err(span, field, both_forms));
    };
    let opt =
        |v: &Option<S<f64>>, k: &str, d: f64| v.as_ref().map_or(Ok(d), |v| ctx.prob(v, &f(k)));
    Ok(LossSpec::GilbertElliott {
        p_gb: ctx.prob(gb, &f("p_gb"))?,
        p_bg: ctx.prob(bg, &f("p_bg"))?,
        loss_good: opt(&l.loss_good, "loss_good", 0.0)?,
        loss_bad: opt(&l.loss_bad, "loss_bad", 1.0)?,
    })
}

/// `model = "fading"`: block fading over a mean SNR (docs/channels.md).
fn fading(
    ctx: &Ctx<'_>,
    l: &LossSchema,
    span: std::ops::Range<usize>,
    field: &str,
) -> Result<LossSpec, ScenarioError> {
    use crate::scenario::model::{Fading, FadingSpec, Modulation};
    let f = |k: &str| format!("{field}.{k}");
    let snr = l.mean_snr_db.as_ref().ok_or_else(|| {
        ctx.err(
            span.clone(),
            &f("mean_snr_db"),
            "model `fading` needs `mean_snr_db` (mean SNR in dB)",
        )
    })?;
    let mean_snr_db = *snr.get_ref();
    if !mean_snr_db.is_finite() || !(-30.0..=80.0).contains(&mean_snr_db) {
        return Err(ctx.err_at(
            snr,
            &f("mean_snr_db"),
            format!("{mean_snr_db} is out of range: must be in [-30, 80] dB"),
        ));
    }
    let kind = match &l.fading {
        None => "rayleigh",
        Some(v) => ctx.choice(
            v,
            &f("fading"),
            &[("rayleigh", "rayleigh"), ("rician", "rician")],
        )?,
    };
    let fading = match (kind, &l.k) {
        ("rayleigh", Some(k)) => {
            return Err(ctx.err_at(
                k,
                &f("k"),
                "field `k` applies only to `fading = \"rician\"`",
            ))
        }
        ("rayleigh", None) => Fading::Rayleigh,
        (_, None) => {
            return Err(ctx.err(
                span,
                &f("k"),
                "`fading = \"rician\"` needs `k` (K-factor, linear, ≥ 0)",
            ))
        }
        (_, Some(k)) => {
            let kv = *k.get_ref();
            if !kv.is_finite() || !(0.0..=1000.0).contains(&kv) {
                return Err(ctx.err_at(
                    k,
                    &f("k"),
                    format!("{kv} is out of range: must be in [0, 1000]"),
                ));
            }
            Fading::Rician { k: kv }
        }
    };
    let coherence = match &l.coherence {
        None => crate::sim::SimDuration::from_millis(100),
        Some(c) => {
            let d = ctx.duration(c, &f("coherence"), MAX_DURATION)?;
            if d.as_nanos() == 0 {
                return Err(ctx.err_at(c, &f("coherence"), "coherence must be greater than 0"));
            }
            d
        }
    };
    let modulation = match &l.modulation {
        None => Modulation::Oqpsk802154,
        Some(v) => {
            match ctx.choice(v, &f("modulation"), &[("oqpsk", "oqpsk"), ("bpsk", "bpsk")])? {
                "bpsk" => Modulation::Bpsk,
                _ => Modulation::Oqpsk802154,
            }
        }
    };
    let phy_overhead_bytes = match &l.phy_overhead_bytes {
        None => 0,
        Some(v) if *v.get_ref() <= 1000 => *v.get_ref() as u32,
        Some(v) => return Err(ctx.err_at(v, &f("phy_overhead_bytes"), "must be in 0..=1000")),
    };
    Ok(LossSpec::Fading(FadingSpec {
        fading,
        mean_snr_db,
        coherence,
        modulation,
        phy_overhead_bytes,
    }))
}
