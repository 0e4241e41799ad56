//! `[protocols.*]` → `ProtocolParams`, defaults from model.rs (`Default`).

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::schema::{ProtocolsSchema, TcpSchema};
use crate::proto::coap::Congestion;
use crate::scenario::model::{
    CoapParams, DatagramSecurity, IpParams, ProtocolParams, TcpParams, UdpParams,
};
use crate::sim::SimDuration;

/// Upper bound of `[protocols.coap] leisure` (RFC 7252 §8.2).
const MAX_LEISURE: SimDuration = SimDuration::from_secs(3600);
use crate::transport::tcp::{
    Config as TcpConfig, CongestionAlgorithm, InitialWindow, Profile, RtoFormula,
};

/// HTTPS's port (RFC 2818).
const HTTPS_PORT: u16 = 443;

/// Most CoAP retransmissions accepted (RFC 7252 default 4).
pub(crate) const MAX_COAP_RETRANSMIT: u64 = 20;
/// Most outstanding CoAP interactions per peer accepted (NSTART).
pub(crate) const MAX_NSTART: u64 = 65_535;

/// Resolve the protocol tables (absent tables keep their defaults).
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    topo: &super::topology::Topology,
    p: Option<&ProtocolsSchema>,
    http_used: bool,
) -> Result<ProtocolParams, ScenarioError> {
    let mut out = ProtocolParams::default();
    let Some(p) = p else { return Ok(out) };
    for (name, section) in &p.other {
        let field = format!("protocols.{name}");
        let Some(ext) = ctx.protocols.get(name) else {
            let expected: Vec<&str> = super::schema::BUILTIN_PROTOCOL_SECTIONS
                .into_iter()
                .chain(ctx.protocols.ext.iter().map(|e| e.name))
                .collect();
            return Err(ctx.err_at(
                section,
                &field,
                format!(
                    "unknown field `{name}`, expected one of {}",
                    expected
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        (ext.check_section)(section.get_ref()).map_err(|m| ctx.err_at(section, &field, m))?;
        out.ext.insert(name.clone(), section.get_ref().clone());
    }
    if let Some(ip) = &p.ip {
        let ip = ip.get_ref();
        let d = IpParams::default();
        out.ip = IpParams {
            ttl: ip.ttl.as_ref().map_or(Ok(u64::from(d.ttl)), |v| {
                ctx.int_in(v, "protocols.ip.ttl", 1, 255)
            })? as u8,
            dont_fragment: ip
                .dont_fragment
                .as_ref()
                .map_or(d.dont_fragment, |v| *v.get_ref()),
            reassembly_timeout: positive(
                ctx,
                ctx.duration_or(
                    &ip.reassembly_timeout,
                    "protocols.ip.reassembly_timeout",
                    d.reassembly_timeout,
                    MAX_DURATION,
                )?,
                &ip.reassembly_timeout,
                "protocols.ip.reassembly_timeout",
            )?,
            version: match &ip.version {
                None => d.version,
                Some(v) if matches!(*v.get_ref(), 4 | 6) => *v.get_ref() as u8,
                Some(v) => {
                    return Err(ctx.err_at(
                        v,
                        "protocols.ip.version",
                        format!(
                            "IP version {} is not supported, expected 4 or 6",
                            v.get_ref()
                        ),
                    ))
                }
            },
            prefix: match &ip.prefix {
                None => d.prefix,
                Some(v) => crate::net::l3::parse_prefix(v.get_ref())
                    .map_err(|m| ctx.err_at(v, "protocols.ip.prefix", m))?,
            },
        };
        if let (6, Some(v)) = (out.ip.version, &ip.version) {
            // RFC 8200 §5: every link must carry 1280-byte packets; the
            // 802.15.4 media get there by 6LoWPAN fragmentation, wired links
            // must do it themselves.
            let min = crate::net::ipv6::MIN_MTU as u32;
            if let Some(l) = topo.links.iter().find(|l| l.mtu < min) {
                return Err(ctx.err_at(
                    v,
                    "protocols.ip.version",
                    format!(
                        "IPv6 needs every link to carry {min}-byte packets (RFC 8200 §5), but link \"{}\" has mtu = {}; raise its mtu or keep version = 4",
                        l.name, l.mtu
                    ),
                ));
            }
        }
    }
    if let Some(udp) = &p.udp {
        let d = UdpParams::default();
        out.udp.port = udp
            .get_ref()
            .port
            .as_ref()
            .map_or(Ok(u64::from(d.port)), |v| {
                ctx.int_in(v, "protocols.udp.port", 1, 65_535)
            })? as u16;
    }
    if let Some(c) = &p.coap {
        let c = c.get_ref();
        let d = CoapParams::default();
        let dur = |v: &Option<toml::Spanned<String>>,
                   k: &str,
                   def: SimDuration|
         -> Result<SimDuration, ScenarioError> {
            let field = format!("protocols.coap.{k}");
            positive(
                ctx,
                ctx.duration_or(v, &field, def, MAX_DURATION)?,
                v,
                &field,
            )
        };
        let security = super::security::datagram_security(ctx, &c.security, "protocols.coap")?;
        // RFC 7252 §12.7: coaps' default port
        let default_port = match security {
            DatagramSecurity::None => d.port,
            DatagramSecurity::Dtls => crate::scenario::security::COAPS_PORT,
        };
        out.coap = CoapParams {
            security,
            port: c.port.as_ref().map_or(Ok(u64::from(default_port)), |v| {
                ctx.int_in(v, "protocols.coap.port", 1, 65_535)
            })? as u16,
            ack_timeout: dur(&c.ack_timeout, "ack_timeout", d.ack_timeout)?,
            // RFC 7252 §4.8: ACK_RANDOM_FACTOR MUST NOT be below 1.0.
            ack_random_factor: c
                .ack_random_factor
                .as_ref()
                .map_or(Ok(d.ack_random_factor), |v| {
                    ctx.float_in(v, "protocols.coap.ack_random_factor", 1.0, 1000.0)
                })?,
            max_retransmit: c
                .max_retransmit
                .as_ref()
                .map_or(Ok(u64::from(d.max_retransmit)), |v| {
                    ctx.int_in(v, "protocols.coap.max_retransmit", 0, MAX_COAP_RETRANSMIT)
                })? as u32,
            nstart: c.nstart.as_ref().map_or(Ok(u64::from(d.nstart)), |v| {
                ctx.int_in(v, "protocols.coap.nstart", 1, MAX_NSTART)
            })? as u32,
            default_leisure: dur(&c.default_leisure, "default_leisure", d.default_leisure)?,
            // RFC 7252 §8.2: 0 (answer at once) is allowed; at most an hour
            leisure: c
                .leisure
                .as_ref()
                .map(|v| ctx.duration(v, "protocols.coap.leisure", MAX_LEISURE))
                .transpose()?,
            probing_rate: match &c.probing_rate {
                None => d.probing_rate,
                Some(v) => {
                    let x = ctx.finite(v, "protocols.coap.probing_rate")?;
                    if x <= 0.0 {
                        return Err(ctx.err_at(
                            v,
                            "protocols.coap.probing_rate",
                            format!("{x} is out of range: PROBING_RATE must be > 0 bytes/s"),
                        ));
                    }
                    x
                }
            },
            congestion: match &c.congestion {
                None => d.congestion,
                Some(v) => ctx.choice(
                    v,
                    "protocols.coap.congestion",
                    &[
                        ("default", Congestion::Default),
                        ("cocoa", Congestion::Cocoa),
                    ],
                )?,
            },
            max_latency: dur(&c.max_latency, "max_latency", d.max_latency)?,
            processing_delay: dur(&c.processing_delay, "processing_delay", d.processing_delay)?,
            // absent: ACK_TIMEOUT·ACK_RANDOM_FACTOR, as before the field existed
            non_timeout: c
                .non_timeout
                .as_ref()
                .map(|v| {
                    let field = "protocols.coap.non_timeout";
                    positive(
                        ctx,
                        ctx.duration(v, field, MAX_DURATION)?,
                        &c.non_timeout,
                        field,
                    )
                })
                .transpose()?,
            // RFC 7252 §3: a token is 0 to 8 bytes; 0 would make every
            // request's token the same
            token_length: c
                .token_length
                .as_ref()
                .map_or(Ok(u64::from(d.token_length)), |v| {
                    ctx.int_in(v, "protocols.coap.token_length", 1, 8)
                })? as u8,
            // RFC 7252 §5.10.5: Max-Age is a 4-byte uint; 0 would make every
            // notification stale at once
            observe_max_age: c
                .observe_max_age
                .as_ref()
                .map_or(Ok(u64::from(d.observe_max_age)), |v| {
                    ctx.int_in(v, "protocols.coap.observe_max_age", 1, u64::from(u32::MAX))
                })? as u32,
            observe_margin: dur(&c.observe_margin, "observe_margin", d.observe_margin)?,
            observe_con_interval: dur(
                &c.observe_con_interval,
                "observe_con_interval",
                d.observe_con_interval,
            )?,
            mutant_no_dedup: false,
            // RFC 7959 §2.2: 2^(SZX+4) bytes, SZX 0..=6
            block_size: match &c.block_size {
                None => None,
                Some(v) => {
                    let x = *v.get_ref();
                    if !(16..=1024).contains(&x) || !x.is_power_of_two() {
                        return Err(ctx.err_at(
                            v,
                            "protocols.coap.block_size",
                            format!(
                                "{x} is not a block size: must be 16, 32, 64, 128, 256, 512 or 1024 bytes (RFC 7959 SZX 0..=6)"
                            ),
                        ));
                    }
                    Some(x as u16)
                }
            },
        };
    }
    if let Some(t) = &p.tcp {
        out.tcp = resolve_tcp(ctx, t.get_ref())?;
    }
    if let Some(m) = &p.mqttsn {
        out.mqttsn = super::mqttsn::resolve(ctx, topo, m.get_ref())?;
    }
    if let Some(m) = &p.mqtt {
        out.mqtt = super::mqtt::resolve(ctx, m.get_ref())?;
    }
    if let Some(t) = &p.tls {
        out.tls = super::security::resolve(ctx, t.get_ref())?;
    }
    if let Some(t) = &p.dtls {
        out.dtls = super::security::resolve_dtls(ctx, t.get_ref())?;
    }
    if let Some(h) = &p.http {
        let h = h.get_ref();
        if let Some(v) = &h.port {
            out.http.port = ctx.int_in(v, "protocols.http.port", 1, 65535)? as u16;
        }
        if let Some(v) = &h.persistent {
            out.http.persistent = *v.get_ref();
        }
        if let Some(v) = &h.tls {
            out.http.tls = *v.get_ref();
            if out.http.tls && h.port.is_none() {
                out.http.port = HTTPS_PORT;
            }
        }
    }
    // Servers listen on each TCP protocol's port: they must differ.
    // HTTPS's default port (443) counts as set
    let http_span = p.http.as_ref().and_then(|h| {
        let h = h.get_ref();
        h.port
            .as_ref()
            .map(|v| v.span())
            .or_else(|| h.tls.as_ref().filter(|v| *v.get_ref()).map(|v| v.span()))
    });
    let others = [
        (
            "tcp",
            out.tcp.port,
            p.tcp
                .as_ref()
                .and_then(|t| t.get_ref().port.as_ref().map(|v| v.span())),
        ),
        (
            "mqtt",
            out.mqtt.port,
            // a transport's default port (80 for websocket) counts as set
            // when HTTP servers listen too
            p.mqtt.as_ref().and_then(|m| {
                let m = m.get_ref();
                m.port
                    .as_ref()
                    .map(|v| v.span())
                    .or_else(|| m.transport.as_ref().filter(|_| http_used).map(|v| v.span()))
            }),
        ),
    ];
    for (other, port, span) in others {
        if port != out.http.port {
            continue;
        }
        let (field, sp, named) = match (&http_span, span) {
            (Some(s), _) => ("http", s.clone(), other),
            (None, Some(s)) => (other, s, "http"),
            (None, None) => continue,
        };
        return Err(ctx.err(
            sp,
            &format!("protocols.{field}.port"),
            format!("TCP port {port} is [protocols.{named}]'s port too: each TCP protocol needs its own port"),
        ));
    }
    // Every node binds each UDP protocol's port: they must differ.
    let udp_ports = [
        (
            "udp",
            out.udp.port,
            p.udp
                .as_ref()
                .and_then(|u| u.get_ref().port.as_ref().map(|v| v.span())),
        ),
        (
            "coap",
            out.coap.port,
            p.coap
                .as_ref()
                .and_then(|c| c.get_ref().port.as_ref().map(|v| v.span())),
        ),
        (
            "mqttsn",
            out.mqttsn.port,
            p.mqttsn
                .as_ref()
                .and_then(|m| m.get_ref().port.as_ref().map(|v| v.span())),
        ),
    ];
    for (i, (a, pa, sa)) in udp_ports.iter().enumerate() {
        for (b, pb, sb) in &udp_ports[i + 1..] {
            let (a, b, pa) = (*a, *b, *pa);
            if pa != *pb {
                continue;
            }
            let (name, sp) = match (sb, sa) {
                (Some(s), _) => (b, s.clone()),
                (None, Some(s)) => (a, s.clone()),
                (None, None) => continue,
            };
            let other = if name == b { a } else { b };
            return Err(ctx.err(
                sp,
                &format!("protocols.{name}.port"),
                format!("UDP port {pa} is [protocols.{other}]'s port too: each UDP protocol needs its own port"),
            ));
        }
    }
    Ok(out)
}

/// Most retransmissions accepted for any TCP retry count.
pub(crate) const MAX_TCP_RETRIES: u64 = 100;
/// Largest TCP buffer accepted (1 GiB).
pub(crate) const MAX_TCP_BUFFER: u64 = 1 << 30;

/// `[protocols.tcp]`: start from the profile, apply explicit fields, check
/// the combinations.
fn resolve_tcp(ctx: &Ctx<'_>, t: &TcpSchema) -> Result<TcpParams, ScenarioError> {
    let profile = match &t.profile {
        None => Profile::LinuxLike,
        Some(v) => ctx.choice(
            v,
            "protocols.tcp.profile",
            &[("linux-like", Profile::LinuxLike), ("rfc", Profile::Rfc)],
        )?,
    };
    let mut c: TcpConfig = profile.config();
    let dur = |v: &Option<toml::Spanned<String>>,
               k: &str,
               def: SimDuration|
     -> Result<SimDuration, ScenarioError> {
        let field = format!("protocols.tcp.{k}");
        positive(
            ctx,
            ctx.duration_or(v, &field, def, MAX_DURATION)?,
            v,
            &field,
        )
    };
    let int = |v: &Option<toml::Spanned<u64>>, k: &str, def: u64, lo: u64, hi: u64| {
        v.as_ref().map_or(Ok(def), |v| {
            ctx.int_in(v, &format!("protocols.tcp.{k}"), lo, hi)
        })
    };
    let flag =
        |v: &Option<toml::Spanned<bool>>, def: bool| v.as_ref().map_or(def, |v| *v.get_ref());
    if let Some(v) = &t.rto_formula {
        c.rto_formula = ctx.choice(
            v,
            "protocols.tcp.rto_formula",
            &[
                ("rfc6298", RtoFormula::Rfc6298),
                ("linux", RtoFormula::Linux),
            ],
        )?;
    }
    c.initial_rto = dur(&t.initial_rto, "initial_rto", c.initial_rto)?;
    c.min_rto = dur(&t.min_rto, "min_rto", c.min_rto)?;
    c.max_rto = dur(&t.max_rto, "max_rto", c.max_rto)?;
    c.clock_granularity = dur(
        &t.clock_granularity,
        "clock_granularity",
        c.clock_granularity,
    )?;
    c.fallback_rto = dur(&t.fallback_rto, "fallback_rto", c.fallback_rto)?;
    c.syn_retries = int(
        &t.syn_retries,
        "syn_retries",
        c.syn_retries.into(),
        0,
        MAX_TCP_RETRIES,
    )? as u32;
    c.synack_retries = int(
        &t.synack_retries,
        "synack_retries",
        c.synack_retries.into(),
        0,
        MAX_TCP_RETRIES,
    )? as u32;
    c.retries = int(&t.retries, "retries", c.retries.into(), 0, MAX_TCP_RETRIES)? as u32;
    if t.user_timeout.is_some() {
        c.user_timeout = Some(dur(&t.user_timeout, "user_timeout", SimDuration::ZERO)?);
    }
    c.delayed_ack_min = dur(&t.delayed_ack_min, "delayed_ack_min", c.delayed_ack_min)?;
    // Zero disables delayed ACKs; RFC 1122 §4.2.3.2: the delay MUST be
    // less than 0.5 s.
    c.delayed_ack_max = match &t.delayed_ack_max {
        None => c.delayed_ack_max,
        Some(v) => {
            let d = ctx.duration(v, "protocols.tcp.delayed_ack_max", MAX_DURATION)?;
            if d >= SimDuration::from_millis(500) {
                return Err(ctx.err_at(
                    v,
                    "protocols.tcp.delayed_ack_max",
                    "must be below 500 ms (RFC 1122 §4.2.3.2)",
                ));
            }
            d
        }
    };
    c.quickack_segments = int(
        &t.quickack_segments,
        "quickack_segments",
        c.quickack_segments.into(),
        0,
        1000,
    )? as u32;
    c.ack_every = int(&t.ack_every, "ack_every", c.ack_every.into(), 1, 64)? as u32;
    c.nagle = flag(&t.nagle, c.nagle);
    c.timestamps = flag(&t.timestamps, c.timestamps);
    c.sack_permitted = flag(&t.sack_permitted, c.sack_permitted);
    if let Some(v) = &t.window_scale {
        c.window_scale = Some(ctx.int_in(v, "protocols.tcp.window_scale", 0, 14)? as u8);
    }
    match &t.window_scaling {
        Some(v) if !*v.get_ref() => {
            if let Some(ws) = &t.window_scale {
                return Err(ctx.err_at(
                    ws,
                    "protocols.tcp.window_scale",
                    "set while window_scaling = false",
                ));
            }
            c.window_scale = None;
        }
        Some(_) => c.window_scale = c.window_scale.or(Some(7)),
        None => {}
    }
    if let Some(v) = &t.initial_window {
        c.initial_window =
            InitialWindow::Segments(ctx.int_in(v, "protocols.tcp.initial_window", 1, 1000)? as u32);
    }
    c.send_buffer = int(
        &t.send_buffer,
        "send_buffer",
        c.send_buffer.into(),
        1,
        MAX_TCP_BUFFER,
    )? as u32;
    c.recv_buffer = int(
        &t.recv_buffer,
        "recv_buffer",
        c.recv_buffer.into(),
        1,
        MAX_TCP_BUFFER,
    )? as u32;
    c.time_wait = dur(&t.time_wait, "time_wait", c.time_wait)?;
    c.dupack_threshold = int(
        &t.dupack_threshold,
        "dupack_threshold",
        c.dupack_threshold.into(),
        1,
        100,
    )? as u32;
    if let Some(v) = &t.congestion {
        c.congestion = ctx.choice(
            v,
            "protocols.tcp.congestion",
            &[
                ("cubic", CongestionAlgorithm::Cubic),
                ("newreno", CongestionAlgorithm::NewReno),
            ],
        )?;
    }
    if c.min_rto > c.max_rto {
        let at = t.min_rto.as_ref().or(t.max_rto.as_ref());
        let msg = "min_rto must not exceed max_rto";
        return Err(match at {
            Some(v) => ctx.err_at(v, "protocols.tcp.min_rto", msg),
            None => ctx.err(0..0, "protocols.tcp.min_rto", msg),
        });
    }
    if c.delayed_ack_max.as_nanos() > 0 && c.delayed_ack_min > c.delayed_ack_max {
        let at = t.delayed_ack_min.as_ref().or(t.delayed_ack_max.as_ref());
        let msg = "delayed_ack_min must not exceed delayed_ack_max";
        return Err(match at {
            Some(v) => ctx.err_at(v, "protocols.tcp.delayed_ack_min", msg),
            None => ctx.err(0..0, "protocols.tcp.delayed_ack_min", msg),
        });
    }
    let port = match &t.port {
        None => 5001,
        Some(v) => ctx.int_in(v, "protocols.tcp.port", 1, 65535)? as u16,
    };
    Ok(TcpParams {
        config: c,
        port,
        mutant_deliver_out_of_order: false,
    })
}

/// Reject a zero duration that was written explicitly.
fn positive(
    ctx: &Ctx<'_>,
    d: SimDuration,
    v: &Option<toml::Spanned<String>>,
    field: &str,
) -> Result<SimDuration, ScenarioError> {
    match v {
        Some(v) if d == SimDuration::ZERO => Err(ctx.err_at(v, field, "must be positive")),
        _ => Ok(d),
    }
}
