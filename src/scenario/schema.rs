//! Serde schema of a scenario file: the TOML as written, before validation.
//!
//! Every struct denies unknown fields; nothing is flattened and no enum is
//! untagged, so the parser's errors name the offending field (DESIGN.md
//! "Scenario model"). Values are `Spanned` so the validation in `load` can
//! still point at the line. Choice fields (`role`, `model`, `action`, …) are
//! strings here and checked in `load`, which gives messages listing the
//! accepted values; tables whose keys depend on a choice (loss models, value
//! generators, event targets) hold every key as optional and `load` rejects
//! keys that do not apply.

use serde::Deserialize;
use toml::Spanned;

/// Shorthand for a value that remembers its byte span.
pub(crate) type S<T> = Spanned<T>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSchema {
    pub name: S<String>,
    /// Free text for people; accepted and not used.
    #[allow(dead_code)]
    pub description: Option<S<String>>,
    pub seed: Option<S<u64>>,
    pub duration: S<String>,
    pub warmup: Option<S<String>>,
    pub drain: Option<S<String>>,
    pub timeseries_interval: Option<S<String>>,
    #[serde(default)]
    pub nodes: Vec<S<NodeSchema>>,
    #[serde(default)]
    pub groups: Vec<S<GroupSchema>>,
    #[serde(default)]
    pub links: Vec<S<LinkSchema>>,
    #[serde(default)]
    pub flows: Vec<S<FlowSchema>>,
    #[serde(default)]
    pub events: Vec<S<EventSchema>>,
    /// `[[media]]`: shared radio media (`scenario::radio`).
    #[serde(default)]
    pub media: Vec<S<super::radio::MediumSchema>>,
    pub protocols: Option<ProtocolsSchema>,
    /// `[processing.<role>]`: per-role processing-time defaults
    /// (`scenario::processing`).
    pub processing: Option<S<super::processing::RoleDefaultsSchema>>,
    pub sweep: Option<S<SweepSchema>>,
    /// `[[expect]]`: expectations on the run's columns (`scenario::expect`).
    #[serde(default)]
    pub expect: Vec<S<super::expect::ExpectSchema>>,
    /// `[report]`: chart labels (`scenario::report`).
    pub report: Option<S<super::report::ReportSchema>>,
}

/// `[sweep]`: the parameter grid of `qossim sweep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SweepSchema {
    pub replications: Option<S<u64>>,
    pub mode: Option<S<String>>,
    #[serde(default)]
    pub axes: Vec<S<AxisSchema>>,
}

/// One axis of `[sweep]`: a `--set` path and the values it takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AxisSchema {
    pub path: S<String>,
    pub values: S<Vec<toml::Value>>,
    /// Axes with the same group vary together (zipped); groups and
    /// ungrouped axes are crossed.
    pub group: Option<S<String>>,
}

/// `[[nodes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSchema {
    pub name: S<String>,
    pub role: S<String>,
    pub position: Option<S<[f64; 2]>>,
    /// Processing times of this node (over its role's defaults).
    pub processing: Option<S<super::processing::ProcessingSchema>>,
}

/// `[[groups]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupSchema {
    pub name: S<String>,
    pub count: S<u64>,
    pub start_index: Option<S<u64>>,
    pub role: S<String>,
    pub placement: Option<S<PlacementSchema>>,
    pub link: Option<S<GroupLinkSchema>>,
    /// Processing times of every member (over the role's defaults).
    pub processing: Option<S<super::processing::ProcessingSchema>>,
}

/// A group's `placement` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlacementSchema {
    pub kind: S<String>,
    pub spacing: Option<S<f64>>,
    pub columns: Option<S<u64>>,
    pub origin: Option<S<[f64; 2]>>,
    pub area: Option<S<[f64; 2]>>,
}

/// A group's `link` template: the link fields plus `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupLinkSchema {
    pub to: S<String>,
    pub preset: Option<S<String>>,
    pub rate: Option<S<String>>,
    pub delay: Option<S<String>>,
    pub mtu: Option<S<u64>>,
    pub queue: Option<S<u64>>,
    pub loss: Option<S<LossSchema>>,
    /// One member's own link fields over the template's, by member name
    /// (`--set links.<member>--<to>.…` writes here).
    pub members: Option<std::collections::BTreeMap<String, S<MemberLinkSchema>>>,
}

/// A group member's own link fields (each replaces the template's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberLinkSchema {
    pub preset: Option<S<String>>,
    pub rate: Option<S<String>>,
    pub delay: Option<S<String>>,
    pub mtu: Option<S<u64>>,
    pub queue: Option<S<u64>>,
    pub loss: Option<S<LossSchema>>,
}

/// `[[links]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkSchema {
    pub name: Option<S<String>>,
    pub a: S<String>,
    pub b: S<String>,
    pub preset: Option<S<String>>,
    pub rate: Option<S<String>>,
    pub delay: Option<S<String>>,
    pub mtu: Option<S<u64>>,
    pub queue: Option<S<u64>>,
    pub loss: Option<S<LossSchema>>,
}

/// A `loss` table; which keys apply depends on `model`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LossSchema {
    pub model: S<String>,
    pub p: Option<S<f64>>,
    pub p_gb: Option<S<f64>>,
    pub p_bg: Option<S<f64>>,
    pub loss_good: Option<S<f64>>,
    pub loss_bad: Option<S<f64>>,
    pub mean_loss: Option<S<f64>>,
    pub burst: Option<S<f64>>,
    pub file: Option<S<String>>,
    pub format: Option<S<String>>,
    pub repeat: Option<S<bool>>,
    pub period: Option<S<String>>,
    pub fading: Option<S<String>>,
    pub k: Option<S<f64>>,
    pub mean_snr_db: Option<S<f64>>,
    pub coherence: Option<S<String>>,
    pub modulation: Option<S<String>>,
    pub phy_overhead_bytes: Option<S<u64>>,
}

/// `[[flows]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSchema {
    pub name: S<String>,
    pub pattern: S<String>,
    pub protocol: S<String>,
    pub reliability: Option<S<String>>,
    pub publishers: S<Vec<S<String>>>,
    pub receivers: S<Vec<S<String>>>,
    pub topic: S<String>,
    pub payload_bytes: S<u64>,
    pub timing: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub start: Option<S<String>>,
    pub count: Option<S<u64>>,
    pub value: Option<S<ValueSchema>>,
    pub broker: Option<S<String>>,
    pub retain: Option<S<bool>>,
    pub subscribe_with: Option<S<String>>,
    /// CoAP only: `put` (default) or `get`.
    pub coap_mode: Option<S<String>>,
    /// `coap_mode = "get"` only: how often each receiver polls.
    pub poll_interval: Option<S<String>>,
    /// `coap_mode = "discover"` only: the `/.well-known/core` query
    /// filter (RFC 6690 §4.1), terms joined by `&`.
    pub query: Option<S<String>>,
    /// CoAP `get`/`observe` only: the caching proxy node the receivers go
    /// through (RFC 7252 §5.7).
    pub proxy: Option<S<String>>,
    /// With `proxy`: `forward` (Proxy-Uri, the default) or `reverse`.
    pub proxy_mode: Option<S<String>>,
}

/// A flow's `value` generator table; which keys apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSchema {
    pub kind: S<String>,
    pub mean: Option<S<f64>>,
    pub sd: Option<S<f64>>,
    pub value: Option<S<f64>>,
    pub min: Option<S<f64>>,
    pub max: Option<S<f64>>,
}

/// `[[events]]`; which target keys apply depends on `action`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventSchema {
    pub at: S<String>,
    pub action: S<String>,
    pub link: Option<S<String>>,
    pub node: Option<S<String>>,
    pub nodes: Option<S<Vec<S<String>>>>,
    pub loss: Option<S<LossSchema>>,
    /// `client_sleep`: how long the clients sleep between wake-ups.
    pub duration: Option<S<String>>,
    /// Packet faults: which packets (`match = { … }`).
    #[serde(rename = "match")]
    pub matcher: Option<S<MatchSchema>>,
    /// Packet faults: end of the active window.
    pub until: Option<S<String>>,
    /// Packet faults with `every`: packets acted on at most.
    pub count: Option<S<u64>>,
    /// `delay_packet`: how much later.
    pub by: Option<S<String>>,
    /// `corrupt_packet`: byte offset into the layer (absent: a random byte).
    pub offset: Option<S<u64>>,
    /// `corrupt_packet`: `wire` or `payload`.
    pub layer: Option<S<String>>,
}

/// The `match` table of a packet fault.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSchema {
    pub protocol: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub from: Option<S<String>>,
    pub to: Option<S<String>>,
    pub flow: Option<S<String>>,
    pub nth: Option<S<u64>>,
    pub every: Option<S<u64>>,
}

/// `[protocols]`: the built-in protocols' sections, typed; any other
/// section is kept (with its span) for a protocol plug-in of that name to
/// validate, and rejected by the loader when no plug-in has the name.
#[derive(Debug, Default)]
pub(crate) struct ProtocolsSchema {
    pub ip: Option<S<IpSchema>>,
    pub udp: Option<S<UdpSchema>>,
    pub coap: Option<S<CoapSchema>>,
    pub tcp: Option<S<TcpSchema>>,
    pub mqtt: Option<S<super::mqtt::MqttSchema>>,
    pub mqttsn: Option<S<super::mqttsn::MqttsnSchema>>,
    pub http: Option<S<HttpSchema>>,
    pub tls: Option<S<super::security::TlsSchema>>,
    pub dtls: Option<S<super::security::DtlsSchema>>,
    /// Other sections, in file order.
    pub other: Vec<(String, S<toml::Value>)>,
}

/// Names of the built-in `[protocols]` sections.
pub(crate) const BUILTIN_PROTOCOL_SECTIONS: [&str; 9] = [
    "ip", "udp", "coap", "tcp", "mqtt", "mqttsn", "http", "tls", "dtls",
];

impl<'de> Deserialize<'de> for ProtocolsSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ProtocolsSchema;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of protocol sections")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ProtocolsSchema, A::Error> {
                let mut out = ProtocolsSchema::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "ip" => out.ip = Some(m.next_value()?),
                        "udp" => out.udp = Some(m.next_value()?),
                        "coap" => out.coap = Some(m.next_value()?),
                        "tcp" => out.tcp = Some(m.next_value()?),
                        "mqtt" => out.mqtt = Some(m.next_value()?),
                        "mqttsn" => out.mqttsn = Some(m.next_value()?),
                        "http" => out.http = Some(m.next_value()?),
                        "tls" => out.tls = Some(m.next_value()?),
                        "dtls" => out.dtls = Some(m.next_value()?),
                        _ => {
                            let v: S<toml::Value> = m.next_value()?;
                            out.other.push((k, v));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `[protocols.ip]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IpSchema {
    pub ttl: Option<S<u64>>,
    pub dont_fragment: Option<S<bool>>,
    pub reassembly_timeout: Option<S<String>>,
    pub version: Option<S<u64>>,
    pub prefix: Option<S<String>>,
}

/// `[protocols.http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSchema {
    pub port: Option<S<u64>>,
    pub persistent: Option<S<bool>>,
    /// HTTPS (HTTP over `[protocols.tls]`), default port 443.
    pub tls: Option<S<bool>>,
}

/// `[protocols.udp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UdpSchema {
    pub port: Option<S<u64>>,
}

/// `[protocols.coap]`: RFC 7252 §4.8 transmission parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CoapSchema {
    pub port: Option<S<u64>>,
    pub ack_timeout: Option<S<String>>,
    pub ack_random_factor: Option<S<f64>>,
    pub max_retransmit: Option<S<u64>>,
    pub nstart: Option<S<u64>>,
    pub default_leisure: Option<S<String>>,
    /// RFC 7252 §8.2 Leisure (S·G/R); absent: `default_leisure`.
    pub leisure: Option<S<String>>,
    pub probing_rate: Option<S<f64>>,
    /// `"default"` (RFC 7252) or `"cocoa"` (draft-ietf-core-cocoa-03).
    pub congestion: Option<S<String>>,
    pub max_latency: Option<S<String>>,
    pub processing_delay: Option<S<String>>,
    /// How long a NON request waits for its response.
    pub non_timeout: Option<S<String>>,
    /// Shortest request token, bytes.
    pub token_length: Option<S<u64>>,
    /// RFC 7641: Max-Age of notifications, seconds.
    pub observe_max_age: Option<S<u64>>,
    /// RFC 7641: how long past Max-Age a client waits before it
    /// re-registers, and waits before it retries a failed registration.
    pub observe_margin: Option<S<String>>,
    /// RFC 7641 §4.5: a NON observer gets a CON notification at least this
    /// often.
    pub observe_con_interval: Option<S<String>>,
    /// Block-wise transfer (RFC 7959) block size, 16..=1024, a power of 2.
    pub block_size: Option<S<u64>>,
    /// `"none"` or `"dtls"` (CoAP over DTLS; default port 5684).
    pub security: Option<S<String>>,
}

/// `[protocols.tcp]`: `profile` gives the defaults, every other field
/// overrides one parameter (see `transport::tcp::Config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TcpSchema {
    pub profile: Option<S<String>>,
    pub rto_formula: Option<S<String>>,
    pub initial_rto: Option<S<String>>,
    pub min_rto: Option<S<String>>,
    pub max_rto: Option<S<String>>,
    pub clock_granularity: Option<S<String>>,
    pub fallback_rto: Option<S<String>>,
    pub syn_retries: Option<S<u64>>,
    pub synack_retries: Option<S<u64>>,
    pub retries: Option<S<u64>>,
    pub user_timeout: Option<S<String>>,
    pub delayed_ack_min: Option<S<String>>,
    pub delayed_ack_max: Option<S<String>>,
    pub quickack_segments: Option<S<u64>>,
    pub ack_every: Option<S<u64>>,
    pub nagle: Option<S<bool>>,
    pub timestamps: Option<S<bool>>,
    pub window_scaling: Option<S<bool>>,
    pub window_scale: Option<S<u64>>,
    pub sack_permitted: Option<S<bool>>,
    pub initial_window: Option<S<u64>>,
    pub send_buffer: Option<S<u64>>,
    pub recv_buffer: Option<S<u64>>,
    pub time_wait: Option<S<String>>,
    pub dupack_threshold: Option<S<u64>>,
    pub congestion: Option<S<String>>,
    pub port: Option<S<u64>>,
}
