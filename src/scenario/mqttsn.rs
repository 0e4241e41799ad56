//! `[protocols.mqttsn]` → `MqttsnParams` (defaults in model.rs, the ranges
//! MQTT-SN 1.2 §7.2 recommends; docs/mqttsn.md).

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::flows::resolve_nodes;
use super::topology::Topology;
use crate::scenario::model::{
    DatagramSecurity, MqttsnDiscovery, MqttsnGatewayMode, MqttsnParams, MqttsnTopicType,
    MqttsnTransport,
};
use crate::sim::SimDuration;
use serde::Deserialize;
use toml::Spanned as S;

/// `[protocols.mqttsn]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MqttsnSchema {
    pub port: Option<S<u64>>,
    pub gateway_mode: Option<S<String>>,
    pub discovery: Option<S<String>>,
    pub transport: Option<S<String>>,
    pub t_adv: Option<S<String>>,
    pub n_adv: Option<S<u64>>,
    pub t_searchgw: Option<S<String>>,
    pub t_gwinfo: Option<S<String>>,
    pub t_wait: Option<S<String>>,
    pub t_retry: Option<S<String>>,
    pub n_retry: Option<S<u64>>,
    pub keep_alive: Option<S<String>>,
    pub clean_session: Option<S<bool>>,
    pub topic_id_type: Option<S<String>>,
    /// Topic name → id.
    pub predefined: Option<S<toml::Table>>,
    pub max_queued: Option<S<u64>>,
    pub gateway_buffer: Option<S<u64>>,
    pub gateway_max_clients: Option<S<u64>>,
    pub radius: Option<S<u64>>,
    #[serde(default)]
    pub sleep: Vec<S<SleepSchema>>,
    pub connect_spread: Option<S<String>>,
    pub will_topic: Option<S<String>>,
    pub will_message: Option<S<String>>,
    pub will_qos: Option<S<u64>>,
    pub will_retain: Option<S<bool>>,
    /// `"none"` or `"dtls"`.
    pub security: Option<S<String>>,
}

/// One `[[protocols.mqttsn.sleep]]` schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SleepSchema {
    /// Node names or globs.
    pub nodes: S<Vec<S<String>>>,
    /// Sleep duration (DISCONNECT Duration, whole seconds ≥ 1).
    pub duration: S<String>,
}

/// A whole number of seconds in 0..=65535 (the 16-bit Duration fields of
/// CONNECT and DISCONNECT, MQTT-SN 1.2 §5.4.4, §5.4.21).
fn whole_seconds(
    ctx: &Ctx<'_>,
    v: &S<String>,
    field: &str,
    d: SimDuration,
) -> Result<(), ScenarioError> {
    if !d.as_nanos().is_multiple_of(1_000_000_000) || d.as_secs_f64() > 65_535.0 {
        return Err(ctx.err_at(
            v,
            field,
            format!("{d} is not a whole number of seconds in 0..=65535 (a 16-bit Duration field)"),
        ));
    }
    Ok(())
}

pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    topo: &Topology,
    m: &MqttsnSchema,
) -> Result<MqttsnParams, ScenarioError> {
    let d = MqttsnParams::default();
    let f = |k: &str| format!("protocols.mqttsn.{k}");
    let dur = |v: &Option<S<String>>, k: &str, def: SimDuration| {
        ctx.duration_or(v, &f(k), def, MAX_DURATION)
    };
    let positive = |v: &Option<S<String>>, k: &str, def: SimDuration| {
        let t = dur(v, k, def)?;
        match v {
            Some(v) if t == SimDuration::ZERO => Err(ctx.err_at(v, &f(k), "must be positive")),
            _ => Ok(t),
        }
    };
    let int = |v: &Option<S<u64>>, k: &str, def: u64, lo: u64, hi: u64| {
        v.as_ref().map_or(Ok(def), |v| ctx.int_in(v, &f(k), lo, hi))
    };
    let keep_alive = dur(&m.keep_alive, "keep_alive", d.keep_alive)?;
    if let Some(v) = &m.keep_alive {
        whole_seconds(ctx, v, &f("keep_alive"), keep_alive)?;
    }
    let mut predefined: Vec<(String, u16)> = Vec::new();
    if let Some(t) = &m.predefined {
        for (name, id) in t.get_ref() {
            let field = f(&format!("predefined.{name}"));
            let id = id.as_integer().unwrap_or(-1);
            // MQTT-SN 1.2 §5.3.11: 0x0000 and 0xFFFF are reserved
            if !(1..=0xFFFE).contains(&id) {
                return Err(ctx.err_at(
                    t,
                    &field,
                    format!("predefined topic id {id} for \"{name}\" is outside 1..=65534 (0x0000 and 0xFFFF are reserved)"),
                ));
            }
            if let Some((other, _)) = predefined.iter().find(|(_, x)| i64::from(*x) == id) {
                return Err(ctx.err_at(
                    t,
                    &field,
                    format!("predefined topic id {id} is given to both \"{other}\" and \"{name}\""),
                ));
            }
            if let Err(e) = crate::proto::mqtt::TopicName::new(name) {
                return Err(ctx.err_at(t, &field, format!("\"{name}\" is not a topic name: {e}")));
            }
            predefined.push((name.clone(), id as u16));
        }
    }
    let mut sleep = Vec::new();
    for (i, s) in m.sleep.iter().enumerate() {
        let s = s.get_ref();
        let field = f(&format!("sleep[{i}]"));
        let nodes = resolve_nodes(ctx, topo, &s.nodes, &format!("{field}.nodes"))?;
        let t = ctx.duration(&s.duration, &format!("{field}.duration"), MAX_DURATION)?;
        whole_seconds(ctx, &s.duration, &format!("{field}.duration"), t)?;
        if t == SimDuration::ZERO {
            return Err(ctx.err_at(
                &s.duration,
                &format!("{field}.duration"),
                "a sleep duration must be at least 1 s (Duration 0 is a plain DISCONNECT)",
            ));
        }
        sleep.push((nodes, t));
    }
    let will_topic = match &m.will_topic {
        None => None,
        Some(v) => {
            let probe = v.get_ref().replace("{name}", "x");
            if let Err(e) = crate::proto::mqtt::TopicName::new(&probe) {
                return Err(ctx.err_at(
                    v,
                    &f("will_topic"),
                    format!("not a valid topic name: {e}"),
                ));
            }
            Some(v.get_ref().clone())
        }
    };
    let params = MqttsnParams {
        port: int(&m.port, "port", u64::from(d.port), 1, 65_535)? as u16,
        gateway_mode: match &m.gateway_mode {
            None => d.gateway_mode,
            Some(v) => ctx.choice(
                v,
                &f("gateway_mode"),
                &[
                    ("transparent", MqttsnGatewayMode::Transparent),
                    ("aggregating", MqttsnGatewayMode::Aggregating),
                    ("integrated", MqttsnGatewayMode::Integrated),
                ],
            )?,
        },
        transport: match &m.transport {
            None => d.transport,
            Some(v) => ctx.choice(
                v,
                &f("transport"),
                &[("udp", MqttsnTransport::Udp), ("raw", MqttsnTransport::Raw)],
            )?,
        },
        discovery: match &m.discovery {
            None => d.discovery,
            Some(v) => ctx.choice(
                v,
                &f("discovery"),
                &[
                    ("advertise", MqttsnDiscovery::Advertise),
                    ("static", MqttsnDiscovery::Static),
                ],
            )?,
        },
        t_adv: positive(&m.t_adv, "t_adv", d.t_adv)?,
        n_adv: int(&m.n_adv, "n_adv", u64::from(d.n_adv), 1, 100)? as u32,
        t_searchgw: positive(&m.t_searchgw, "t_searchgw", d.t_searchgw)?,
        t_gwinfo: positive(&m.t_gwinfo, "t_gwinfo", d.t_gwinfo)?,
        t_wait: positive(&m.t_wait, "t_wait", d.t_wait)?,
        t_retry: positive(&m.t_retry, "t_retry", d.t_retry)?,
        n_retry: int(&m.n_retry, "n_retry", u64::from(d.n_retry), 0, 100)? as u32,
        keep_alive,
        clean_session: m
            .clean_session
            .as_ref()
            .map_or(d.clean_session, |v| *v.get_ref()),
        topic_id_type: match &m.topic_id_type {
            None => d.topic_id_type,
            Some(v) => ctx.choice(
                v,
                &f("topic_id_type"),
                &[
                    ("normal", MqttsnTopicType::Normal),
                    ("predefined", MqttsnTopicType::Predefined),
                    ("short", MqttsnTopicType::Short),
                ],
            )?,
        },
        predefined,
        max_queued: int(
            &m.max_queued,
            "max_queued",
            u64::from(d.max_queued),
            1,
            1_000_000,
        )? as u32,
        gateway_buffer: int(
            &m.gateway_buffer,
            "gateway_buffer",
            u64::from(d.gateway_buffer),
            0,
            1_000_000,
        )? as u32,
        gateway_max_clients: int(
            &m.gateway_max_clients,
            "gateway_max_clients",
            u64::from(d.gateway_max_clients),
            1,
            10_000_000,
        )? as u32,
        radius: int(&m.radius, "radius", u64::from(d.radius), 0, 3)? as u8,
        sleep,
        connect_spread: dur(&m.connect_spread, "connect_spread", d.connect_spread)?,
        will_topic,
        will_message: m
            .will_message
            .as_ref()
            .map_or(d.will_message.clone(), |v| v.get_ref().clone()),
        will_qos: int(&m.will_qos, "will_qos", u64::from(d.will_qos), 0, 2)? as u8,
        will_retain: m
            .will_retain
            .as_ref()
            .map_or(d.will_retain, |v| *v.get_ref()),
        security: super::security::datagram_security(ctx, &m.security, "protocols.mqttsn")?,
    };
    if let (MqttsnTransport::Raw, DatagramSecurity::Dtls, Some(v)) =
        (params.transport, params.security, &m.security)
    {
        return Err(ctx.err_at(
            v,
            &f("security"),
            "DTLS runs over UDP; transport = \"raw\" carries MQTT-SN without IP: use transport = \"udp\" or security = \"none\"",
        ));
    }
    Ok(params)
}

/// With `transport = "raw"` MQTT-SN rides in 802.15.4 frames without IP, so
/// every MQTT-SN client, forwarder and gateway must be on a medium (a
/// message reaches only the medium's members). Names the first node that
/// is not.
pub(crate) fn check_raw(
    ctx: &Ctx<'_>,
    m: Option<&MqttsnSchema>,
    params: &MqttsnParams,
    nodes: &[crate::scenario::model::NodeSpec],
    media: &[crate::scenario::radio::MediumSpec],
    flows: &[crate::scenario::model::FlowSpec],
) -> Result<(), ScenarioError> {
    use crate::scenario::model::{Protocol, Role};
    let (MqttsnTransport::Raw, Some(v)) = (params.transport, m.and_then(|m| m.transport.as_ref()))
    else {
        return Ok(());
    };
    let on_medium = |n: usize| media.iter().any(|md| md.members.contains(&n));
    let mut need: Vec<usize> = (0..nodes.len())
        .filter(|&n| matches!(nodes[n].role, Role::Gateway | Role::Forwarder))
        .collect();
    for fl in flows {
        if fl.protocol == Protocol::Mqttsn {
            need.extend(&fl.publishers);
        }
        if fl.subscribe_with == Protocol::Mqttsn {
            need.extend(&fl.receivers);
        }
    }
    match need.into_iter().find(|&n| !on_medium(n)) {
        None => Ok(()),
        Some(n) => Err(ctx.err_at(
            v,
            "protocols.mqttsn.transport",
            format!(
                "transport = \"raw\" carries MQTT-SN in 802.15.4 frames without IP, but node \"{}\" ({}) is on no [[media]]; add it to a medium's members or use transport = \"udp\"",
                nodes[n].name,
                nodes[n].role.as_str()
            ),
        )),
    }
}
