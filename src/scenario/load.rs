//! Entry points: text → overrides → serde schema → validated `Scenario`.

use super::check::{Ctx, MAX_DURATION};
use super::error::{field_path_at, LineIndex, ScenarioError};
use super::schema::{FileSchema, FlowSchema};
use super::{
    events, expect, flows, overrides, paths, processing, protocols, radio, report, sweep, topology,
};
use crate::scenario::model::{ProtocolTable, Scenario};
use crate::sim::SimDuration;
use std::collections::HashSet;
use std::path::Path;

/// Most `timeseries.csv` intervals a run may ask for.
const MAX_INTERVALS: u64 = 1_000_000;

/// Default drain after the publishing window (covers CoAP's 93 s
/// MAX_TRANSMIT_WAIT, RFC 7252 §4.8.2).
pub(crate) const DEFAULT_DRAIN: SimDuration = SimDuration::from_secs(100);

/// Load a scenario file, applying `--set` overrides (`path=value`).
/// Trace files are resolved relative to the file's directory.
pub fn load_file(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    load_file_with(path, overrides, &ProtocolTable::default())
}

/// [`load_file`] for a scenario that may also use the protocol plug-ins of
/// `protocols` (`world::apps::Registry::protocol_table`).
pub fn load_file_with(
    path: &Path,
    overrides: &[String],
    protocols: &ProtocolTable,
) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::file_only(&origin, format!("cannot read scenario file: {e}"))
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut s = load_str_with(&text, &origin, base, overrides, protocols)?;
    s.source = Some(path.to_path_buf());
    Ok(s)
}

/// Load a scenario from `text`; `origin` names it in errors, `base_dir` is
/// where relative trace-file paths are resolved. `source` is left `None`.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    load_str_with(text, origin, base_dir, overrides, &ProtocolTable::default())
}

/// [`load_str`] with protocol plug-ins (see [`load_file_with`]).
pub fn load_str_with(
    text: &str,
    origin: &str,
    base_dir: &Path,
    overrides: &[String],
    protocols: &ProtocolTable,
) -> Result<Scenario, ScenarioError> {
    let resolved = overrides::apply_overrides(text, overrides).map_err(|mut e| {
        e.file = origin.to_string();
        e
    })?;
    let ctx = Ctx {
        origin,
        index: LineIndex::new(&resolved),
        base_dir,
        protocols,
    };
    let file: FileSchema =
        toml::from_str(&resolved).map_err(|e| parse_error(&ctx, &resolved, &e))?;
    build(&ctx, &file, text, &resolved, overrides)
}

/// Turn a TOML/serde error into a located `ScenarioError`.
fn parse_error(ctx: &Ctx<'_>, text: &str, e: &toml::de::Error) -> ScenarioError {
    let message = super::error::with_suggestion(e.message().trim());
    let Some(span) = e.span() else {
        return ScenarioError::file_only(ctx.origin, message);
    };
    // An empty span (0..0) is how the parser points at the root table.
    let mut field = if span.is_empty() {
        None
    } else {
        field_path_at(text, span.clone())
    };
    // "missing field `x`": the span is the enclosing table; name the field.
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        field = Some(match field {
            Some(p) if !p.is_empty() => format!("{p}.{missing}"),
            _ => missing.to_string(),
        });
    }
    let (line, col) = ctx.index.line_col(span.start);
    ScenarioError {
        file: ctx.origin.to_string(),
        line: Some(line),
        column: Some(col),
        field,
        message,
    }
}

fn build(
    ctx: &Ctx<'_>,
    file: &FileSchema,
    text: &str,
    resolved: &str,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    let name = file.name.get_ref().clone();
    if name.trim().is_empty() {
        return Err(ctx.err_at(&file.name, "name", "the scenario name cannot be empty"));
    }
    let seed = file.seed.as_ref().map_or(1, |s| *s.get_ref());
    let duration = ctx.duration(&file.duration, "duration", MAX_DURATION)?;
    if duration == SimDuration::ZERO {
        return Err(ctx.err_at(&file.duration, "duration", "duration must be at least 1 ns"));
    }
    let warmup = ctx.duration_or(&file.warmup, "warmup", SimDuration::ZERO, MAX_DURATION)?;
    if let (Some(w), true) = (&file.warmup, warmup >= duration) {
        return Err(ctx.err_at(
            w,
            "warmup",
            format!("warmup {warmup} must be shorter than duration {duration}"),
        ));
    }
    let drain = ctx.duration_or(&file.drain, "drain", DEFAULT_DRAIN, MAX_DURATION)?;
    // default 1 s, coarser for runs so long that 1 s would be too many rows
    let total = (duration + drain).as_nanos();
    let default_interval = SimDuration::from_secs(1).max(SimDuration::from_nanos(
        total.div_ceil(MAX_INTERVALS).div_ceil(1_000_000_000) * 1_000_000_000,
    ));
    let timeseries_interval = ctx.duration_or(
        &file.timeseries_interval,
        "timeseries_interval",
        default_interval,
        MAX_DURATION,
    )?;
    if let Some(v) = &file.timeseries_interval {
        let n = total / timeseries_interval.as_nanos().max(1);
        if timeseries_interval > SimDuration::ZERO && n > MAX_INTERVALS {
            return Err(ctx.err_at(
                v,
                "timeseries_interval",
                format!("{timeseries_interval} makes {n} intervals over duration + drain; at most {MAX_INTERVALS} (use a longer interval, or \"0 s\" for no time series)"),
            ));
        }
    }
    let topo = topology::build(ctx, file, seed)?;
    let processing = processing::resolve(ctx, file, &topo.nodes)?;
    let http_used = file
        .flows
        .iter()
        .any(|f| f.get_ref().protocol.get_ref() == "http");
    let protocols = protocols::resolve(ctx, &topo, file.protocols.as_ref(), http_used)?;
    let mut flow_names = HashSet::new();
    let mut out_flows = Vec::with_capacity(file.flows.len());
    for fl in &file.flows {
        let fl = fl.get_ref();
        let field = format!("flows.{}.name", fl.name.get_ref());
        topology::check_name(ctx, &fl.name, fl.name.get_ref(), &field)?;
        if !flow_names.insert(fl.name.get_ref().clone()) {
            return Err(ctx.err_at(
                &fl.name,
                &field,
                format!("duplicate flow name \"{}\"", fl.name.get_ref()),
            ));
        }
        let spec = flows::resolve(ctx, &topo, fl, duration, &protocols)?;
        // A workload no run can finish (`interval = "1 ns"`: 6·10¹⁰
        // messages a minute) is refused with its numbers.
        let sent = flows::messages_offered(&spec, duration);
        if sent > flows::MAX_MESSAGES {
            let at = fl.interval.as_ref().map_or(fl.name.span(), |v| v.span());
            return Err(ctx.err(
                at,
                &format!("flows.{}.interval", fl.name.get_ref()),
                format!(
                    "{} publishers would send about {sent:.3e} messages in {duration}, more than the {:.0e} a run can simulate and record; use a longer interval, fewer publishers or a shorter duration",
                    spec.publishers.len(),
                    flows::MAX_MESSAGES
                ),
            ));
        }
        out_flows.push(spec);
    }
    let schemas: Vec<&FlowSchema> = file.flows.iter().map(|f| f.get_ref()).collect();
    flows::check_mqttsn_flows(ctx, &topo, &schemas, &out_flows)?;
    let events = events::resolve_all(ctx, &topo, &out_flows, &file.events, duration + drain)?;
    let media = radio::resolve_all(ctx, &topo, &file.media)?;
    let sn_schema = file
        .protocols
        .as_ref()
        .and_then(|p| p.mqttsn.as_ref())
        .map(|m| m.get_ref());
    super::mqttsn::check_raw(
        ctx,
        sn_schema,
        &protocols.mqttsn,
        &topo.nodes,
        &media,
        &out_flows,
    )?;
    let spanned: Vec<_> = file.flows.iter().collect();
    paths::check(ctx, &topo.nodes, &topo.links, &media, &out_flows, &spanned)?;
    let expectations = expect::resolve_all(ctx, &file.expect, &out_flows)?;
    let sweep = match &file.sweep {
        Some(sw) => Some(sweep::resolve(ctx, sw, resolved)?),
        None => None,
    };
    let report = match &file.report {
        Some(r) => report::resolve(ctx, r)?,
        None => Default::default(),
    };
    // The topology grew by pushes; a run keeps it to the end, so give back
    // the doubling slack (up to 40 % of 10,000 nodes' and links' specs).
    let (mut nodes, mut links) = (topo.nodes, topo.links);
    nodes.shrink_to_fit();
    links.shrink_to_fit();
    Ok(Scenario {
        name,
        source: None,
        origin: ctx.origin.to_string(),
        text: text.into(),
        seed,
        duration,
        warmup,
        drain,
        timeseries_interval,
        nodes,
        links,
        flows: out_flows,
        events,
        media,
        protocols,
        processing,
        resolved_toml: resolved.to_string(),
        overrides: overrides.to_vec(),
        sweep,
        expectations,
        report,
    })
}
