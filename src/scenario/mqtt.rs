//! `[protocols.mqtt]` → `MqttParams` (defaults in model.rs; docs/mqtt.md).

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use crate::proto::mqtt::acl::{self, Acl, AclRule, DenyPublish};
use crate::proto::mqtt::MqttVersion;
use crate::scenario::model::{
    MqttParams, MqttPersistence, MqttSession, MqttTransport, Qos2Forward,
};
use crate::sim::SimDuration;
use serde::Deserialize;
use toml::Spanned as S;

/// `[protocols.mqtt]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MqttSchema {
    pub port: Option<S<u64>>,
    /// "tcp" (default), "tls", "websocket" or "wss" (docs/security.md).
    pub transport: Option<S<String>>,
    pub keep_alive: Option<S<String>>,
    pub session: Option<S<String>>,
    pub qos2_forward: Option<S<String>>,
    pub persistence: Option<S<String>>,
    pub max_inflight: Option<S<u64>>,
    pub max_queued: Option<S<u64>>,
    pub sys_interval: Option<S<String>>,
    pub legacy_retry: Option<S<String>>,
    pub reconnect_min: Option<S<String>>,
    pub reconnect_max: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub connect_spread: Option<S<String>>,
    pub allow_anonymous: Option<S<bool>>,
    pub users: Option<S<Vec<S<UserSchema>>>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
    pub will_topic: Option<S<String>>,
    pub will_message: Option<S<String>>,
    pub will_qos: Option<S<u64>>,
    pub will_retain: Option<S<bool>>,
    /// "3.1.1" or "5.0"; a bare `5.0` (a TOML float, as `--set
    /// protocols.mqtt.version=5.0` writes it) is read as "5.0".
    pub version: Option<S<toml::Value>>,
    pub session_expiry: Option<S<String>>,
    pub topic_aliases: Option<S<u64>>,
    pub receive_maximum: Option<S<u64>>,
    pub broker_topic_alias_max: Option<S<u64>>,
    pub broker_receive_maximum: Option<S<u64>>,
    pub acl: Option<S<Vec<S<AclRuleSchema>>>>,
    pub acl_deny_publish: Option<S<String>>,
}

/// One `acl` rule (docs/mqtt.md, "Access control").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AclRuleSchema {
    pub clients: Option<S<String>>,
    pub users: Option<S<String>>,
    pub publish: Option<S<Vec<S<String>>>>,
    pub subscribe: Option<S<Vec<S<String>>>>,
}

/// One `users` entry of the broker's password table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserSchema {
    pub username: S<String>,
    pub password: S<String>,
}

/// Largest in-flight window and offline queue accepted.
const MAX_WINDOW: u64 = 65_535;
const MAX_QUEUE: u64 = 10_000_000;

pub(crate) fn resolve(ctx: &Ctx<'_>, m: &MqttSchema) -> Result<MqttParams, ScenarioError> {
    let d = MqttParams::default();
    let f = |k: &str| format!("protocols.mqtt.{k}");
    let dur = |v: &Option<S<String>>, k: &str, def: SimDuration| {
        ctx.duration_or(v, &f(k), def, MAX_DURATION)
    };
    let int = |v: &Option<S<u64>>, k: &str, def: u64, lo: u64, hi: u64| {
        v.as_ref().map_or(Ok(def), |v| ctx.int_in(v, &f(k), lo, hi))
    };
    let transport = match &m.transport {
        None => d.transport,
        Some(v) => ctx.choice(
            v,
            &f("transport"),
            &[
                ("tcp", MqttTransport::Tcp),
                ("tls", MqttTransport::Tls),
                ("websocket", MqttTransport::WebSocket),
                ("wss", MqttTransport::Wss),
            ],
        )?,
    };
    let keep_alive = dur(&m.keep_alive, "keep_alive", d.keep_alive)?;
    // [MQTT-3.1.2-10]: a 16-bit number of seconds; 0 turns keep-alive off
    if keep_alive.as_nanos() % 1_000_000_000 != 0 || keep_alive.as_secs_f64() > 65_535.0 {
        let v = m
            .keep_alive
            .as_ref()
            .expect("non-default keep_alive was given");
        return Err(ctx.err_at(
            v,
            &f("keep_alive"),
            format!("{keep_alive} is not a whole number of seconds in 0..=65535 (the CONNECT field is 16 bits of seconds)"),
        ));
    }
    let reconnect_min = dur(&m.reconnect_min, "reconnect_min", d.reconnect_min)?;
    let reconnect_max = dur(&m.reconnect_max, "reconnect_max", d.reconnect_max)?;
    if reconnect_max < reconnect_min {
        let sp = m
            .reconnect_max
            .as_ref()
            .or(m.reconnect_min.as_ref())
            .map(|v| v.span())
            .unwrap_or(0..0);
        return Err(ctx.err(
            sp,
            &f("reconnect_max"),
            format!("reconnect_max {reconnect_max} is below reconnect_min {reconnect_min}"),
        ));
    }
    let mut users = Vec::new();
    if let Some(list) = &m.users {
        for (i, u) in list.get_ref().iter().enumerate() {
            let u = u.get_ref();
            if u.username.get_ref().is_empty() {
                return Err(ctx.err_at(
                    &u.username,
                    &format!("protocols.mqtt.users[{i}].username"),
                    "a user name cannot be empty",
                ));
            }
            users.push((u.username.get_ref().clone(), u.password.get_ref().clone()));
        }
    }
    let will_topic = match &m.will_topic {
        None => None,
        Some(v) => {
            let t = v.get_ref();
            let probe = t.replace("{name}", "x");
            if let Err(e) = crate::proto::mqtt::TopicName::new(&probe) {
                return Err(ctx.err_at(
                    v,
                    &f("will_topic"),
                    format!("not a valid topic name: {e}"),
                ));
            }
            if probe.contains('{') || probe.contains('}') {
                return Err(ctx.err_at(
                    v,
                    &f("will_topic"),
                    "only the placeholder {name} (the node name) is allowed",
                ));
            }
            Some(t.clone())
        }
    };
    let acl = resolve_acl(ctx, m)?;
    let session_expiry = match &m.session_expiry {
        None => d.session_expiry,
        Some(v) if v.get_ref() == "never" => u32::MAX,
        Some(v) => {
            let t = ctx.duration(v, &f("session_expiry"), MAX_DURATION)?;
            let secs = t.as_nanos() / 1_000_000_000;
            if t.as_nanos() % 1_000_000_000 != 0 || secs >= u64::from(u32::MAX) {
                return Err(ctx.err_at(
                    v,
                    &f("session_expiry"),
                    format!("{t} is not a whole number of seconds below 4294967295 (the Session Expiry Interval is 32 bits of seconds); use \"never\" for a session that never expires"),
                ));
            }
            secs as u32
        }
    };
    Ok(MqttParams {
        version: match &m.version {
            None => d.version,
            Some(v) => {
                let text = match v.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Float(x) => format!("{x:.1}"),
                    toml::Value::Integer(i) => format!("{i}.0"),
                    other => other.to_string(),
                };
                ctx.choice(
                    &S::new(v.span(), text),
                    &f("version"),
                    &[("3.1.1", MqttVersion::V311), ("5.0", MqttVersion::V5)],
                )?
            }
        },
        session_expiry,
        topic_aliases: int(
            &m.topic_aliases,
            "topic_aliases",
            u64::from(d.topic_aliases),
            0,
            65_535,
        )? as u16,
        receive_maximum: int(
            &m.receive_maximum,
            "receive_maximum",
            u64::from(d.receive_maximum),
            1,
            65_535,
        )? as u16,
        broker_topic_alias_max: int(
            &m.broker_topic_alias_max,
            "broker_topic_alias_max",
            u64::from(d.broker_topic_alias_max),
            0,
            65_535,
        )? as u16,
        broker_receive_maximum: int(
            &m.broker_receive_maximum,
            "broker_receive_maximum",
            u64::from(d.broker_receive_maximum),
            1,
            65_535,
        )? as u16,
        port: int(
            &m.port,
            "port",
            u64::from(transport.default_port()),
            1,
            65_535,
        )? as u16,
        transport,
        keep_alive,
        session: match &m.session {
            None => d.session,
            Some(v) => ctx.choice(
                v,
                &f("session"),
                &[
                    ("persistent", MqttSession::Persistent),
                    ("clean", MqttSession::Clean),
                    ("per_message", MqttSession::PerMessage),
                ],
            )?,
        },
        qos2_forward: match &m.qos2_forward {
            None => d.qos2_forward,
            Some(v) => ctx.choice(
                v,
                &f("qos2_forward"),
                &[
                    ("on_pubrel", Qos2Forward::OnPubrel),
                    ("on_publish", Qos2Forward::OnPublish),
                ],
            )?,
        },
        persistence: match &m.persistence {
            None => d.persistence,
            Some(v) => ctx.choice(
                v,
                &f("persistence"),
                &[
                    ("none", MqttPersistence::None),
                    ("durable", MqttPersistence::Durable),
                ],
            )?,
        },
        max_inflight: int(
            &m.max_inflight,
            "max_inflight",
            u64::from(d.max_inflight),
            1,
            MAX_WINDOW,
        )? as u32,
        max_queued: int(
            &m.max_queued,
            "max_queued",
            u64::from(d.max_queued),
            0,
            MAX_QUEUE,
        )? as u32,
        sys_interval: dur(&m.sys_interval, "sys_interval", d.sys_interval)?,
        legacy_retry: match &m.legacy_retry {
            None => None,
            Some(v) => {
                let t = ctx.duration(v, &f("legacy_retry"), MAX_DURATION)?;
                (t > SimDuration::ZERO).then_some(t)
            }
        },
        reconnect_min,
        reconnect_max,
        connect_timeout: {
            let t = dur(&m.connect_timeout, "connect_timeout", d.connect_timeout)?;
            if t == SimDuration::ZERO {
                let v = m.connect_timeout.as_ref().expect("zero was given");
                return Err(ctx.err_at(v, &f("connect_timeout"), "must be positive"));
            }
            t
        },
        connect_spread: dur(&m.connect_spread, "connect_spread", d.connect_spread)?,
        allow_anonymous: m
            .allow_anonymous
            .as_ref()
            .map_or(d.allow_anonymous, |v| *v.get_ref()),
        users,
        username: m.username.as_ref().map(|v| v.get_ref().clone()),
        password: m.password.as_ref().map(|v| v.get_ref().clone()),
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
        acl,
        acl_deny_publish: match &m.acl_deny_publish {
            None => d.acl_deny_publish,
            Some(v) => ctx.choice(
                v,
                &f("acl_deny_publish"),
                &[
                    ("drop", DenyPublish::Drop),
                    ("disconnect", DenyPublish::Disconnect),
                ],
            )?,
        },
        mutant_forget_qos2: false,
        mutant_skip_qos1: false,
    })
}

/// `acl = [ { clients, users, publish, subscribe }, … ]`: every glob and
/// pattern checked where it is written.
fn resolve_acl(ctx: &Ctx<'_>, m: &MqttSchema) -> Result<Acl, ScenarioError> {
    let Some(list) = &m.acl else {
        return Ok(Acl::default());
    };
    let mut rules = Vec::new();
    for (i, r) in list.get_ref().iter().enumerate() {
        let field = |k: &str| format!("protocols.mqtt.acl[{i}].{k}");
        let r = r.get_ref();
        let glob = |v: &Option<S<String>>, k: &str| -> Result<Option<String>, ScenarioError> {
            let Some(v) = v else { return Ok(None) };
            acl::check_glob(v.get_ref()).map_err(|e| {
                ctx.err_at(
                    v,
                    &field(k),
                    format!("{e}; expected a name or a glob with * and ?"),
                )
            })?;
            Ok(Some(v.get_ref().clone()))
        };
        let patterns = |v: &Option<S<Vec<S<String>>>>,
                        k: &str|
         -> Result<Vec<String>, ScenarioError> {
            let mut out = Vec::new();
            for (j, p) in v.iter().flat_map(|v| v.get_ref().iter()).enumerate() {
                acl::check_pattern(p.get_ref()).map_err(|e| {
                    ctx.err_at(
                        p,
                        &format!("{}[{j}]", field(k)),
                        format!("{e}; expected an MQTT topic filter (levels split by /, + a whole level, # the whole last level) with optional %c / %u"),
                    )
                })?;
                out.push(p.get_ref().clone());
            }
            Ok(out)
        };
        rules.push(AclRule {
            clients: glob(&r.clients, "clients")?,
            users: glob(&r.users, "users")?,
            publish: patterns(&r.publish, "publish")?,
            subscribe: patterns(&r.subscribe, "subscribe")?,
        });
    }
    Acl::new(rules).map_err(|e| ctx.err_at(list, "protocols.mqtt.acl", e.to_string()))
}
