//! `[protocols.*]` → `ProtocolParams`, defaults from model.rs (`Default`).

use super::check::{Ctx, MAX_DURATION};
use super::error::ScenarioError;
use super::schema::ProtocolsSchema;
use crate::scenario::model::{CoapParams, IpParams, ProtocolParams, UdpParams};
use crate::sim::SimDuration;

/// Most CoAP retransmissions accepted (RFC 7252 default 4).
pub const MAX_COAP_RETRANSMIT: u64 = 20;
/// Most outstanding CoAP interactions per peer accepted (NSTART).
pub const MAX_NSTART: u64 = 65_535;

/// Resolve the protocol tables (absent tables keep their defaults).
pub fn resolve(
    ctx: &Ctx<'_>,
    p: Option<&ProtocolsSchema>,
) -> Result<ProtocolParams, ScenarioError> {
    let mut out = ProtocolParams::default();
    let Some(p) = p else { return Ok(out) };
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
        };
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
        out.coap = CoapParams {
            port: c.port.as_ref().map_or(Ok(u64::from(d.port)), |v| {
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
            max_latency: dur(&c.max_latency, "max_latency", d.max_latency)?,
            processing_delay: dur(&c.processing_delay, "processing_delay", d.processing_delay)?,
        };
    }
    Ok(out)
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
