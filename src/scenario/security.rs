//! `[protocols.tls]` → `TlsConfig` (docs/security.md): the TLS overlay of
//! `[protocols.mqtt] transport = "tls" | "wss"`.

use super::check::Ctx;
use super::error::ScenarioError;
use crate::transport::tls::{CipherSuite, KeyType, Resumption, TlsConfig, TlsVersion};
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
