//! `[protocols.tls]` → `TlsConfig` (docs/security.md): the TLS overlay of
//! `[protocols.mqtt] transport = "tls" | "wss"`; `[protocols.dtls]` →
//! `DtlsParams`: the DTLS overlay of `security = "dtls"` in
//! `[protocols.coap]` and `[protocols.mqttsn]`.

use super::check::Ctx;
use super::error::ScenarioError;
use crate::scenario::model::{DatagramSecurity, DtlsParams, DtlsSession};
use crate::sim::SimDuration;
use crate::transport::dtls::{DtlsConfig, DtlsSuite};
use crate::transport::tls::{CipherSuite, KeyType, Resumption, TlsConfig, TlsVersion};

/// CoAP over DTLS's default port (RFC 7252 §12.7, "coaps").
pub(crate) const COAPS_PORT: u16 = 5684;
use serde::Deserialize;
use toml::Spanned as S;

/// `[protocols.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSchema {
    /// "1.2" or "1.3" (a bare `1.3`, as `--set` writes it, too).
    pub version: Option<S<toml::Value>>,
    pub suite: Option<S<String>>,
    pub resumption: Option<S<String>>,
    pub mutual: Option<S<bool>>,
    pub key: Option<S<String>>,
    pub server_chain: Option<S<Vec<u64>>>,
    pub client_chain: Option<S<Vec<u64>>>,
    pub sni: Option<S<String>>,
}

/// Resolve `[protocols.tls]` over the defaults (OpenSSL 3 as mosquitto and
/// paho-mqtt use it).
pub(crate) fn resolve(ctx: &Ctx, t: &TlsSchema) -> Result<TlsConfig, ScenarioError> {
    let f = |k: &str| format!("protocols.tls.{k}");
    let d = TlsConfig::default();
    let version = match &t.version {
        None => d.version,
        Some(v) => {
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Float(x) => format!("{x:.1}"),
                other => other.to_string(),
            };
            ctx.choice(
                &S::new(v.span(), text),
                &f("version"),
                &[("1.2", TlsVersion::Tls12), ("1.3", TlsVersion::Tls13)],
            )?
        }
    };
    let suite = match &t.suite {
        None => d.suite,
        Some(v) => ctx.choice(
            v,
            &f("suite"),
            &[
                ("aes128-gcm", CipherSuite::Aes128Gcm),
                ("aes256-gcm", CipherSuite::Aes256Gcm),
                ("aes128-cbc-sha256", CipherSuite::Aes128CbcSha256),
            ],
        )?,
    };
    let resumption = match &t.resumption {
        None => d.resumption,
        Some(v) => ctx.choice(
            v,
            &f("resumption"),
            &[
                ("none", Resumption::None),
                ("resume", Resumption::Resume),
                ("0rtt", Resumption::ZeroRtt),
            ],
        )?,
    };
    let key = match &t.key {
        None => d.key,
        Some(v) => ctx.choice(
            v,
            &f("key"),
            &[
                ("ecdsa-p256", KeyType::EcdsaP256),
                ("rsa-2048", KeyType::Rsa2048),
            ],
        )?,
    };
    // without sizes, a chain is the key type's fixtures (leaf and
    // intermediate, assets/tls/) as they are
    let fixture = |server: bool| -> Vec<usize> {
        (0..2)
            .map(|i| crate::transport::tls::cert::fixture(key, server, i).len())
            .collect()
    };
    let chain = |v: &Option<S<Vec<u64>>>, def: Vec<usize>| -> Vec<usize> {
        v.as_ref()
            .map_or(def, |c| c.get_ref().iter().map(|&x| x as usize).collect())
    };
    let cfg = TlsConfig {
        version,
        suite,
        resumption,
        mutual: t.mutual.as_ref().map_or(d.mutual, |v| *v.get_ref()),
        key,
        server_chain: chain(&t.server_chain, fixture(true)),
        client_chain: chain(&t.client_chain, fixture(false)),
        sni: t.sni.as_ref().map(|v| v.get_ref().clone()),
        seed: 0,
    };
    if let Err(e) = cfg.validate() {
        // name the field the conflict is about, at the section's first key
        let (field, span) = [
            ("resumption", t.resumption.as_ref().map(|v| v.span())),
            ("suite", t.suite.as_ref().map(|v| v.span())),
            ("server_chain", t.server_chain.as_ref().map(|v| v.span())),
            ("client_chain", t.client_chain.as_ref().map(|v| v.span())),
            ("sni", t.sni.as_ref().map(|v| v.span())),
            ("version", t.version.as_ref().map(|v| v.span())),
        ]
        .into_iter()
        .find_map(|(k, s)| s.map(|s| (k, s)))
        .unwrap_or(("version", 0..0));
        return Err(ctx.err(span, &f(field), e));
    }
    Ok(cfg)
}

/// `[protocols.dtls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DtlsSchema {
    pub suite: Option<S<String>>,
    pub psk_identity: Option<S<String>>,
    pub psk_hint: Option<S<String>>,
    pub cookie: Option<S<bool>>,
    pub initial_timer: Option<S<String>>,
    pub max_timer: Option<S<String>>,
    pub max_retransmissions: Option<S<u64>>,
    pub mtu: Option<S<u64>>,
    pub session: Option<S<String>>,
}

/// `security = "none" | "dtls"` of the datagram protocol section `section`.
pub(crate) fn datagram_security(
    ctx: &Ctx,
    v: &Option<S<String>>,
    section: &str,
) -> Result<DatagramSecurity, ScenarioError> {
    match v {
        None => Ok(DatagramSecurity::None),
        Some(v) => ctx.choice(
            v,
            &format!("{section}.security"),
            &[
                ("none", DatagramSecurity::None),
                ("dtls", DatagramSecurity::Dtls),
            ],
        ),
    }
}

/// Longest PSK identity and hint accepted (RFC 4279 §5.3: implementations
/// must support 128 bytes).
const MAX_PSK_TEXT: usize = 128;

/// Resolve `[protocols.dtls]` over the defaults (OpenSSL's timer, RFC
/// 7925's suite, libcoap's identity and hint).
pub(crate) fn resolve_dtls(ctx: &Ctx, t: &DtlsSchema) -> Result<DtlsParams, ScenarioError> {
    let f = |k: &str| format!("protocols.dtls.{k}");
    let d = DtlsConfig::default();
    let text = |v: &Option<S<String>>, k: &str, min: usize, def: &[u8]| match v {
        None => Ok(def.to_vec()),
        Some(v) => {
            let n = v.get_ref().len();
            if !(min..=MAX_PSK_TEXT).contains(&n) {
                return Err(ctx.err_at(
                    v,
                    &f(k),
                    format!("{n} bytes: must be {min} to {MAX_PSK_TEXT} bytes (RFC 4279 §5.3)"),
                ));
            }
            Ok(v.get_ref().as_bytes().to_vec())
        }
    };
    // timers: positive, the cap at least the first value
    const MAX_TIMER: SimDuration = SimDuration::from_secs(3600);
    let timer = |v: &Option<S<String>>, k: &str, def: SimDuration| -> Result<_, ScenarioError> {
        let x = ctx.duration_or(v, &f(k), def, MAX_TIMER)?;
        match v {
            Some(v) if x == SimDuration::ZERO => {
                Err(ctx.err_at(v, &f(k), "must be longer than 0 s"))
            }
            _ => Ok(x),
        }
    };
    let initial_timer = timer(&t.initial_timer, "initial_timer", d.initial_timer)?;
    let max_timer = timer(&t.max_timer, "max_timer", d.max_timer.max(initial_timer))?;
    if max_timer < initial_timer {
        let v = t.max_timer.as_ref().or(t.initial_timer.as_ref());
        let span = v.map_or(0..0, |v| v.span());
        return Err(ctx.err(
            span,
            &f("max_timer"),
            format!("max_timer {max_timer} is shorter than initial_timer {initial_timer}"),
        ));
    }
    let config = DtlsConfig {
        suite: match &t.suite {
            None => d.suite,
            Some(v) => ctx.choice(
                v,
                &f("suite"),
                &[
                    ("psk-aes128-ccm8", DtlsSuite::Psk128Ccm8),
                    ("psk-aes128-gcm", DtlsSuite::Psk128Gcm),
                    ("ecdhe-psk-chacha20", DtlsSuite::EcdhePskChacha20),
                ],
            )?,
        },
        psk_identity: text(&t.psk_identity, "psk_identity", 1, &d.psk_identity)?,
        psk_hint: text(&t.psk_hint, "psk_hint", 0, &d.psk_hint)?,
        cookie: t.cookie.as_ref().map_or(d.cookie, |v| *v.get_ref()),
        initial_timer,
        max_timer,
        max_retransmissions: t
            .max_retransmissions
            .as_ref()
            .map_or(Ok(u64::from(d.max_retransmissions)), |v| {
                ctx.int_in(v, &f("max_retransmissions"), 0, 64)
            })? as u32,
        // a flight's messages must fit in a few datagrams: the smallest
        // IPv4 MTU every host accepts (576) less IPv4 and UDP headers, to
        // the largest UDP payload
        mtu: t
            .mtu
            .as_ref()
            .map_or(Ok(d.mtu as u64), |v| ctx.int_in(v, &f("mtu"), 548, 65_507))?
            as usize,
        // the RFC 7925 profile (the libcoap/OpenSSL one is the
        // calibration's: tests/security_calibration.rs)
        ..DtlsConfig::default()
    };
    let session = match &t.session {
        None => DtlsSession::default(),
        Some(v) => ctx.choice(
            v,
            &f("session"),
            &[
                ("persistent", DtlsSession::Persistent),
                ("per_message", DtlsSession::PerMessage),
            ],
        )?,
    };
    Ok(DtlsParams { config, session })
}
