//! Processing times (`processing = { … }` on `[[nodes]]` and `[[groups]]`,
//! `[processing.<role>]` defaults): per node, a stack delay per packet sent
//! and received and an application service time per protocol message, served
//! by one FIFO server (`world::proc`). Brokers, servers and gateways start
//! from calibrated defaults (`ProcessingSpec::builtin`), every other role
//! from `"0 s"`; a node whose delays are all `"0 s"` has no processing at
//! all (no event, no state).
//!
//! A delay is a duration string (a constant, `"50 us"`) or a distribution in
//! the same string: `"exp(1 ms)"` (exponential with that mean) or
//! `"uniform(0.5 ms, 1.5 ms)"`. A string keeps `--set` paths working
//! (`--set nodes.broker.processing.service=exp(1ms)`) and needs no untagged
//! enum (DESIGN.md "Scenario model").

use super::check::Ctx;
use super::error::ScenarioError;
use super::model::{NodeSpec, ProcessingSpec, Role};
use super::schema::{FileSchema, S};
use super::units::parse_duration;
use crate::sim::{Delay, SimDuration};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Longest processing delay (mean, or max of a uniform).
const MAX_DELAY: SimDuration = SimDuration::from_secs(3600);
/// Longest processing queue, in packets.
const MAX_PROC_QUEUE: u64 = 10_000_000;

/// One node's (or role's) `processing` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessingSchema {
    pub stack_tx: Option<S<String>>,
    pub stack_rx: Option<S<String>>,
    pub service: Option<S<String>>,
    pub per_copy: Option<S<String>>,
    pub queue: Option<S<u64>>,
    pub stack_queue: Option<S<u64>>,
}

/// `[processing]`: defaults per role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleDefaultsSchema {
    pub router: Option<S<ProcessingSchema>>,
    pub server: Option<S<ProcessingSchema>>,
    pub broker: Option<S<ProcessingSchema>>,
    pub gateway: Option<S<ProcessingSchema>>,
    pub forwarder: Option<S<ProcessingSchema>>,
    pub client: Option<S<ProcessingSchema>>,
}

impl RoleDefaultsSchema {
    fn of(&self, role: Role) -> Option<&S<ProcessingSchema>> {
        match role {
            Role::Router => self.router.as_ref(),
            Role::Server => self.server.as_ref(),
            Role::Broker => self.broker.as_ref(),
            Role::Gateway => self.gateway.as_ref(),
            Role::Forwarder => self.forwarder.as_ref(),
            Role::Client => self.client.as_ref(),
        }
    }
}

/// Parse a delay: `"1 ms"`, `"exp(1 ms)"` / `"exponential(1 ms)"`,
/// `"uniform(0.5 ms, 1.5 ms)"`.
pub fn parse_delay(s: &str) -> Result<Delay, String> {
    let t = s.trim();
    let call = |name: &str| -> Option<&str> {
        let rest = t.strip_prefix(name)?.trim_start();
        rest.strip_prefix('(')?.strip_suffix(')')
    };
    let d = if let Some(a) = call("exponential").or_else(|| call("exp")) {
        Delay::Exponential {
            mean: parse_duration(a.trim())?,
        }
    } else if let Some(a) = call("uniform") {
        let (lo, hi) = a
            .split_once(',')
            .ok_or("uniform needs two durations: \"uniform(0.5 ms, 1.5 ms)\"")?;
        let (min, max) = (parse_duration(lo.trim())?, parse_duration(hi.trim())?);
        if min > max {
            return Err(format!("uniform({min}, {max}): min is larger than max"));
        }
        Delay::Uniform { min, max }
    } else if t.contains('(') {
        return Err(format!(
            "unknown distribution in \"{t}\": a duration (\"50 us\"), \"exp(<mean>)\" or \"uniform(<min>, <max>)\""
        ));
    } else {
        Delay::Constant(parse_duration(t)?)
    };
    let top = match d {
        Delay::Uniform { max, .. } => max,
        _ => d.mean(),
    };
    if top > MAX_DELAY {
        return Err(format!("{d} is too long: at most {MAX_DELAY}"));
    }
    Ok(d)
}

/// Apply the fields `p` sets onto `out`.
fn apply(
    ctx: &Ctx<'_>,
    p: &ProcessingSchema,
    field: &str,
    out: &mut ProcessingSpec,
) -> Result<(), ScenarioError> {
    let delay = |v: &Option<S<String>>, name: &str, slot: &mut Delay| {
        if let Some(v) = v {
            *slot = parse_delay(v.get_ref())
                .map_err(|m| ctx.err_at(v, &format!("{field}.{name}"), m))?;
        }
        Ok::<(), ScenarioError>(())
    };
    delay(&p.stack_tx, "stack_tx", &mut out.stack_tx)?;
    delay(&p.stack_rx, "stack_rx", &mut out.stack_rx)?;
    delay(&p.service, "service", &mut out.service)?;
    delay(&p.per_copy, "per_copy", &mut out.per_copy)?;
    if let Some(q) = &p.queue {
        out.queue = ctx.int_in(q, &format!("{field}.queue"), 1, MAX_PROC_QUEUE)? as u32;
    }
    if let Some(q) = &p.stack_queue {
        out.stack_queue = ctx.int_in(q, &format!("{field}.stack_queue"), 1, MAX_PROC_QUEUE)? as u32;
    }
    Ok(())
}

/// Every node's processing times: role default, then the node's or its
/// group's table. Nodes whose delays are all zero are left out.
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    file: &FileSchema,
    nodes: &[NodeSpec],
) -> Result<BTreeMap<usize, ProcessingSpec>, ScenarioError> {
    let roles = file.processing.as_ref().map(|r| r.get_ref());
    let mut out = BTreeMap::new();
    // resolve each distinct (role, explicit node or group) once
    let mut memo: BTreeMap<(u8, Option<usize>), Option<ProcessingSpec>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let own = match n.group {
            Some(g) => file
                .groups
                .get(g)
                .and_then(|g| g.get_ref().processing.as_ref()),
            None => file
                .nodes
                .get(i)
                .and_then(|s| s.get_ref().processing.as_ref()),
        };
        let key = (n.role as u8, n.group);
        let spec = if n.group.is_some() && memo.contains_key(&key) {
            memo[&key]
        } else {
            let mut spec = ProcessingSpec::builtin(n.role);
            if let Some(d) = roles.and_then(|r| r.of(n.role)) {
                apply(
                    ctx,
                    d.get_ref(),
                    &format!("processing.{}", n.role.as_str()),
                    &mut spec,
                )?;
            }
            if let Some(p) = own {
                let field = match n.group {
                    Some(g) => format!(
                        "groups.{}.processing",
                        file.groups[g].get_ref().name.get_ref()
                    ),
                    None => format!("nodes.{}.processing", n.name),
                };
                apply(ctx, p.get_ref(), &field, &mut spec)?;
            }
            let spec = (!spec.is_zero()).then_some(spec);
            if n.group.is_some() {
                memo.insert(key, spec);
            }
            spec
        };
        if let Some(s) = spec {
            out.insert(i, s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse() {
        assert_eq!(
            parse_delay("50 us").unwrap(),
            Delay::Constant(SimDuration::from_micros(50))
        );
        assert_eq!(
            parse_delay("exp(1 ms)").unwrap(),
            Delay::Exponential {
                mean: SimDuration::from_millis(1)
            }
        );
        assert_eq!(
            parse_delay(" uniform( 0.5 ms , 1.5ms ) ").unwrap(),
            Delay::Uniform {
                min: SimDuration::from_micros(500),
                max: SimDuration::from_micros(1500)
            }
        );
        assert!(parse_delay("uniform(2 ms, 1 ms)").is_err());
        assert!(parse_delay("normal(1 ms)").is_err());
        assert!(parse_delay("2 h").is_err());
        assert_eq!(parse_delay("0 s").unwrap(), Delay::ZERO);
    }
}
