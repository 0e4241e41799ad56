//! `qossim playground --out DIR [--wasm PATH]`: a self-contained static
//! site (no CDN, no network) that runs the teaching scenarios in the
//! browser through the library compiled to `wasm32-unknown-unknown`.
//!
//! The page files live in `assets/playground/` and are embedded at build
//! time, as is every `scenarios/teaching/*.toml` (the list is written out
//! below; `tests/playground.rs` checks it equals the directory). The knobs
//! the page offers for each scenario are read here from its TOML, so the
//! page needs no TOML parser: each knob is a `--set` path with its current
//! value and the values it may take.

use super::CliError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The command that builds the wasm the site runs (docs/tutorial.md "In
/// the browser"), from the crate root.
pub const WASM_BUILD: &str = "env CARGO_TARGET_DIR=target/wasm cargo rustc --profile wasm --lib \
     --target wasm32-unknown-unknown --no-default-features --crate-type cdylib";

/// Where [`WASM_BUILD`] puts the wasm, relative to the crate root.
pub const WASM_REL: &str = "target/wasm/wasm32-unknown-unknown/wasm/qossim.wasm";

/// Events a browser run may take before it stops with "too large for the
/// browser" (the page passes it to `qossim_run`).
pub const MAX_EVENTS: u64 = crate::browser::PLAYGROUND_EVENT_LIMIT;

/// Every teaching scenario, by name, as its file text.
pub const TEACHING: [(&str, &str); 14] = [
    (
        "air-cost",
        include_str!("../../scenarios/teaching/air-cost.toml"),
    ),
    (
        "broker-saturation",
        include_str!("../../scenarios/teaching/broker-saturation.toml"),
    ),
    (
        "building-average",
        include_str!("../../scenarios/teaching/building-average.toml"),
    ),
    (
        "coap-con-vs-non",
        include_str!("../../scenarios/teaching/coap-con-vs-non.toml"),
    ),
    (
        "idle-cost",
        include_str!("../../scenarios/teaching/idle-cost.toml"),
    ),
    (
        "last-will",
        include_str!("../../scenarios/teaching/last-will.toml"),
    ),
    (
        "mqtt-versions",
        include_str!("../../scenarios/teaching/mqtt-versions.toml"),
    ),
    (
        "mqtt-vs-coap",
        include_str!("../../scenarios/teaching/mqtt-vs-coap.toml"),
    ),
    (
        "patterns",
        include_str!("../../scenarios/teaching/patterns.toml"),
    ),
    (
        "qos-levels",
        include_str!("../../scenarios/teaching/qos-levels.toml"),
    ),
    (
        "retained",
        include_str!("../../scenarios/teaching/retained.toml"),
    ),
    (
        "room-120",
        include_str!("../../scenarios/teaching/room-120.toml"),
    ),
    (
        "tls-cost",
        include_str!("../../scenarios/teaching/tls-cost.toml"),
    ),
    (
        "topics",
        include_str!("../../scenarios/teaching/topics.toml"),
    ),
];

/// The site's static files, as written into the output directory.
const FILES: [(&str, &str); 4] = [
    (
        "index.html",
        include_str!("../../assets/playground/index.html"),
    ),
    ("app.js", include_str!("../../assets/playground/app.js")),
    (
        "worker.js",
        include_str!("../../assets/playground/worker.js"),
    ),
    (
        "style.css",
        include_str!("../../assets/playground/style.css"),
    ),
];

/// Arguments of `qossim playground`.
#[derive(Debug, Clone)]
pub struct PlaygroundRequest {
    pub out: PathBuf,
    /// The wasm to ship; found by [`find_wasm`] when not given.
    pub wasm: Option<PathBuf>,
}

/// The wasm file: `explicit` when given (it must exist), else
/// [`WASM_REL`] under `cwd`, else `../wasm/wasm32-unknown-unknown/wasm/`
/// beside the executable `exe` (a `target/release/qossim` binary finds the
/// wasm built into `target/wasm`).
pub fn find_wasm(
    explicit: Option<&Path>,
    cwd: &Path,
    exe: Option<&Path>,
) -> Result<PathBuf, CliError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(CliError::BadArgument(format!(
                "--wasm {}: no such file (build it with `{WASM_BUILD}`)",
                p.display()
            )))
        };
    }
    let mut tried = vec![cwd.join(WASM_REL)];
    if let Some(dir) = exe.and_then(Path::parent) {
        tried.push(dir.join("../wasm/wasm32-unknown-unknown/wasm/qossim.wasm"));
    }
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(CliError::BadArgument(format!(
        "no qossim.wasm found (looked at {}); build it with `{WASM_BUILD}` \
         (after `rustup target add wasm32-unknown-unknown`), or give --wasm PATH",
        list.join(", ")
    )))
}

/// The `--set` knobs of one scenario: seed, loss of every lossy link and
/// group link, group counts, each flow's protocol and reliability, MQTT
/// keep-alive. Each is `{path, label, kind, value, …}` with `kind`
/// `number` (`min`, `max`, `step`) or `select` (`options`).
pub fn knobs(text: &str) -> Result<Vec<Value>, toml::de::Error> {
    let doc: toml::Table = toml::from_str(text)?;
    let mut out = vec![json!({"path": "seed", "label": "seed", "kind": "number",
        "value": doc.get("seed").and_then(toml::Value::as_integer).unwrap_or(1),
        "min": 0, "max": 1_000_000, "step": 1})];
    let tables = |key: &str| -> Vec<toml::Table> {
        doc.get(key)
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let s = |t: &toml::Table, k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
    for link in tables("links") {
        let name = s(&link, "name").unwrap_or_else(|| {
            format!(
                "{}--{}",
                s(&link, "a").unwrap_or_default(),
                s(&link, "b").unwrap_or_default()
            )
        });
        loss_knobs(
            &mut out,
            &format!("links.{name}.loss"),
            &format!("link {name}"),
            &link,
        );
    }
    for media in doc
        .get("media")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flatten()
    {
        if let Some(m) = media.1.as_table() {
            loss_knobs(
                &mut out,
                &format!("media.{}.loss", media.0),
                &format!("medium {}", media.0),
                m,
            );
        }
    }
    for g in tables("groups") {
        let name = s(&g, "name").unwrap_or_default();
        if let Some(link) = g.get("link").and_then(toml::Value::as_table) {
            loss_knobs(
                &mut out,
                &format!("groups.{name}.link.loss"),
                &format!("links of {name}"),
                link,
            );
        }
        if let Some(n) = g.get("count").and_then(toml::Value::as_integer) {
            out.push(json!({"path": format!("groups.{name}.count"),
                "label": format!("number of {name}"), "kind": "number",
                "value": n, "min": 1, "max": (n * 4).max(20), "step": 1}));
        }
    }
    let mut mqtt = false;
    for f in tables("flows") {
        let (Some(name), Some(proto)) = (s(&f, "name"), s(&f, "protocol")) else {
            continue;
        };
        let family: &[&str] = match proto.as_str() {
            "mqtt" | "mqttsn" | "coap" => &["mqtt", "mqttsn", "coap"],
            _ => &[],
        };
        mqtt |= proto == "mqtt";
        if !family.is_empty() {
            out.push(json!({"path": format!("flows.{name}.protocol"),
                "label": format!("flow {name}: protocol"), "kind": "select",
                "value": proto, "options": family}));
        }
        if let Some(rel) = s(&f, "reliability") {
            out.push(json!({"path": format!("flows.{name}.reliability"),
                "label": format!("flow {name}: reliability"), "kind": "select",
                "value": rel, "options": reliability_options(&proto),
                "follows": format!("flows.{name}.protocol")}));
        }
    }
    if mqtt {
        let ka = doc
            .get("protocols")
            .and_then(|p| p.get("mqtt"))
            .and_then(|m| m.get("keep_alive"))
            .and_then(toml::Value::as_str)
            .unwrap_or("60 s") // scenarios/README.md: the default
            .to_string();
        let mut opts: Vec<String> = ["5 s", "10 s", "30 s", "60 s", "120 s", "300 s"]
            .map(String::from)
            .to_vec();
        if !opts.contains(&ka) {
            opts.insert(0, ka.clone());
        }
        out.push(
            json!({"path": "protocols.mqtt.keep_alive", "label": "MQTT keep_alive",
            "kind": "select", "value": ka, "options": opts}),
        );
    }
    Ok(out)
}

/// The reliability values of a flow protocol (the page switches to these
/// when the protocol select changes).
pub fn reliability_options(protocol: &str) -> Vec<&'static str> {
    match protocol {
        "mqtt" | "mqttsn" => vec!["qos0", "qos1", "qos2"],
        "coap" => vec!["con", "non"],
        _ => vec![],
    }
}

/// Loss knobs of a table that has `loss = {…}`: `p` for Bernoulli,
/// `mean_loss` and `burst` for the simple Gilbert-Elliott form.
fn loss_knobs(out: &mut Vec<Value>, path: &str, what: &str, t: &toml::Table) {
    let Some(loss) = t.get("loss").and_then(toml::Value::as_table) else {
        return;
    };
    let num = |k: &str| {
        loss.get(k)
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
    };
    match loss.get("model").and_then(toml::Value::as_str) {
        Some("bernoulli") => out.push(json!({"path": format!("{path}.p"),
            "label": format!("loss p, {what}"), "kind": "number",
            "value": num("p").unwrap_or(0.0), "min": 0, "max": 0.9, "step": 0.01})),
        Some("gilbert_elliott") if loss.contains_key("mean_loss") => {
            out.push(json!({"path": format!("{path}.mean_loss"),
                "label": format!("mean loss, {what}"), "kind": "number",
                "value": num("mean_loss").unwrap_or(0.0), "min": 0, "max": 0.8, "step": 0.01}));
            out.push(json!({"path": format!("{path}.burst"),
                "label": format!("loss burst (packets), {what}"), "kind": "number",
                "value": num("burst").unwrap_or(1.0), "min": 1, "max": 20, "step": 0.5}));
        }
        _ => {}
    }
}

/// `scenarios.js`: every teaching scenario's name, text and knobs, plus
/// the event limit, as one global the page reads.
pub fn scenarios_js() -> Result<String, CliError> {
    let mut list = Vec::new();
    for (name, text) in TEACHING {
        let k = knobs(text)
            .map_err(|e| CliError::BadArgument(format!("scenarios/teaching/{name}.toml: {e}")))?;
        list.push(json!({"name": name, "toml": text, "knobs": k}));
    }
    let data = json!({"max_events": MAX_EVENTS, "wasm_build": WASM_BUILD, "scenarios": list});
    Ok(format!(
        "// Generated by `qossim playground`: the teaching scenarios and their knobs.\n\
         self.QOSSIM = {data};\n"
    ))
}

/// `qossim-wasm.js`: the module as base64 (RFC 4648) in a script.
fn embedded_js(wasm: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(wasm.len() / 3 * 4 + 128);
    s.push_str(
        "// Generated by `qossim playground`: qossim.wasm, base64.\nself.QOSSIM_WASM_B64 = \"",
    );
    for c in wasm.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(B64[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s.push_str("\";\n");
    s
}

/// Write the site into `req.out` (created if needed; the site's files are
/// replaced, nothing else is touched).
pub fn playground(req: &PlaygroundRequest) -> Result<(), CliError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe().ok();
    let wasm = find_wasm(req.wasm.as_deref(), &cwd, exe.as_deref())?;
    let bytes = std::fs::read(&wasm)
        .map_err(|e| CliError::BadArgument(format!("cannot read {}: {e}", wasm.display())))?;
    if !bytes.starts_with(b"\0asm") {
        return Err(CliError::BadArgument(format!(
            "{} is not a WebAssembly module (build it with `{WASM_BUILD}`)",
            wasm.display()
        )));
    }
    let write = |name: &str, data: &[u8]| {
        let p = req.out.join(name);
        std::fs::write(&p, data)
            .map_err(|e| CliError::BadArgument(format!("cannot write {}: {e}", p.display())))
    };
    std::fs::create_dir_all(&req.out)
        .map_err(|e| CliError::BadArgument(format!("cannot create {}: {e}", req.out.display())))?;
    for (name, text) in FILES {
        write(name, text.as_bytes())?;
    }
    write("scenarios.js", scenarios_js()?.as_bytes())?;
    write("qossim.wasm", &bytes)?;
    // a page opened from disk (file://) may neither fetch the wasm nor
    // start a worker from a file: both also come as scripts, which it may
    // load (the worker from a Blob of its source)
    write("qossim-wasm.js", embedded_js(&bytes).as_bytes())?;
    let worker =
        serde_json::Value::String(include_str!("../../assets/playground/worker.js").to_string());
    write(
        "worker-src.js",
        format!("// Generated by `qossim playground`: worker.js as a string.\nself.QOSSIM_WORKER_SRC = {worker};\n")
            .as_bytes(),
    )?;
    println!(
        "wrote the playground to {} (wasm: {}, {} bytes); open {0}/index.html \
         from disk or serve it with `python3 -m http.server -d {0}`",
        req.out.display(),
        wasm.display(),
        bytes.len()
    );
    Ok(())
}
