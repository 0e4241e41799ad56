//! `[sweep]`: validate the parameter grid of `qossim sweep`.
//!
//! ```toml
//! [sweep]
//! mode = "cross"            # or "zip"
//! replications = 3
//! axes = [
//!   { path = "links.backhaul.loss.p", values = [0.0, 0.1, 0.2] },
//!   { path = "flows.telemetry.protocol", values = ["udp", "coap"] },
//! ]
//! ```
//!
//! In mode "cross" an axis may name a `group`: the axes of one group step
//! together (their k-th values make one step, equal lengths required) and
//! the groups and ungrouped axes are crossed, e.g. two (protocol,
//! reliability) pairs × three losses = 6 points.
//!
//! Each path is a `--set` path; every value is checked here by applying it
//! to the file, so a typo fails at load time with the axis's line, not
//! halfway through a sweep.

use super::check::Ctx;
use super::error::ScenarioError;
use super::overrides::apply_overrides;
use super::schema::{SweepSchema, S};
use crate::scenario::model::{SweepAxis, SweepMode, SweepSpec};

/// Most runs one sweep may expand to.
pub(crate) const MAX_RUNS: u64 = 1_000_000;

pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    sw: &S<SweepSchema>,
    text: &str,
) -> Result<SweepSpec, ScenarioError> {
    let s = sw.get_ref();
    let mode = match s.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("cross") => SweepMode::Cross,
        Some("zip") => SweepMode::Zip,
        Some(other) => {
            let m = s.mode.as_ref().map_or(sw.span(), |m| m.span());
            return Err(ctx.err(
                m,
                "sweep.mode",
                format!("unknown mode \"{other}\": expected \"cross\" or \"zip\""),
            ));
        }
    };
    let replications = match &s.replications {
        None => 1,
        Some(r) if (1..=10_000).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => {
            return Err(ctx.err_at(
                r,
                "sweep.replications",
                format!("{} is out of range: must be in 1..=10000", r.get_ref()),
            ))
        }
    };
    let mut axes = Vec::with_capacity(s.axes.len());
    for (i, a) in s.axes.iter().enumerate() {
        let a = a.get_ref();
        let field = format!("sweep.axes[{i}]");
        let path = a.path.get_ref().trim().to_string();
        if path.is_empty() || path == "sweep" || path.starts_with("sweep.") {
            return Err(ctx.err_at(
                &a.path,
                &format!("{field}.path"),
                "an axis needs a `--set` path outside [sweep]",
            ));
        }
        if axes.iter().any(|x: &SweepAxis| x.path == path) {
            return Err(ctx.err_at(
                &a.path,
                &format!("{field}.path"),
                format!("path `{path}` is swept twice"),
            ));
        }
        let vals = a.values.get_ref();
        if vals.is_empty() {
            return Err(ctx.err_at(
                &a.values,
                &format!("{field}.values"),
                "an axis needs at least one value",
            ));
        }
        let mut values = Vec::with_capacity(vals.len());
        let mut labels = Vec::with_capacity(vals.len());
        for v in vals {
            let (value, label) = match v {
                toml::Value::String(s) => (toml::Value::String(s.clone()).to_string(), s.clone()),
                toml::Value::Float(f) if !f.is_finite() => {
                    return Err(ctx.err_at(
                        &a.values,
                        &format!("{field}.values"),
                        "values must be finite numbers",
                    ));
                }
                other => (other.to_string(), other.to_string()),
            };
            // the value must apply to the file (the loader checks its range per run)
            apply_overrides(text, &[format!("{path}={value}")]).map_err(|e| {
                ctx.err_at(
                    &a.path,
                    &format!("{field}.path"),
                    format!("cannot apply `{path}={value}`: {}", e.message),
                )
            })?;
            values.push(value);
            labels.push(label);
        }
        let group = match &a.group {
            None => None,
            Some(g) if mode == SweepMode::Zip => {
                return Err(ctx.err_at(
                    g,
                    &format!("{field}.group"),
                    "mode \"zip\" already steps every axis together: remove `group`, or use mode = \"cross\" to cross the groups",
                ));
            }
            Some(g) if g.get_ref().trim().is_empty() => {
                return Err(ctx.err_at(
                    g,
                    &format!("{field}.group"),
                    "a group needs a name, e.g. group = \"proto\"",
                ));
            }
            Some(g) => Some(g.get_ref().trim().to_string()),
        };
        axes.push(SweepAxis {
            path,
            values,
            labels,
            group,
        });
    }
    let spec = SweepSpec {
        mode,
        replications,
        axes,
    };
    let points: u64 = match mode {
        SweepMode::Cross => {
            for f in spec.factors() {
                let first = &spec.axes[f[0]];
                let n = first.values.len();
                if let Some(&i) = f.iter().find(|&&i| spec.axes[i].values.len() != n) {
                    let a = &spec.axes[i];
                    return Err(ctx.err_at(
                        &s.axes[i],
                        &format!("sweep.axes[{i}].values"),
                        format!(
                            "group \"{}\" steps its axes together, so they need equal lengths: `{}` has {} values, `{}` {n}",
                            a.group.as_deref().unwrap_or_default(),
                            a.path,
                            a.values.len(),
                            first.path
                        ),
                    ));
                }
            }
            spec.factors()
                .iter()
                .map(|f| spec.axes[f[0]].values.len() as u64)
                .try_fold(1u64, |acc, n| acc.checked_mul(n))
                .unwrap_or(u64::MAX)
        }
        SweepMode::Zip => {
            let axes = &spec.axes;
            let n = axes.first().map_or(1, |a| a.values.len());
            if let Some((i, a)) = axes.iter().enumerate().find(|(_, a)| a.values.len() != n) {
                return Err(ctx.err_at(
                    &s.axes[i],
                    &format!("sweep.axes[{i}].values"),
                    format!("mode \"zip\" needs axes of equal length: `{}` has {} values, the first axis {n}", a.path, a.values.len()),
                ));
            }
            n as u64
        }
    };
    let runs = points.saturating_mul(replications);
    if runs > MAX_RUNS {
        return Err(ctx.err_at(
            sw,
            "sweep",
            format!("the grid expands to {runs} runs, more than {MAX_RUNS}"),
        ));
    }
    Ok(spec)
}
