//! The protocol seam from outside the crate: a UDP "echo" protocol defined
//! only here registers through the public registry API, parses its own
//! `[protocols.echo]` section, and runs a scenario with `protocol = "echo"`
//! — no change under `src/`. Each message is a datagram to every intended
//! receiver's echo port; the receiver's application takes it (a delivery)
//! and echoes it back; the publisher counts the echoes in its extension
//! column `echo_replies`.

mod common;

use qossim::metrics::summary::Value;
use qossim::net::packet::PacketMeta;
use qossim::run::{run_scenario, RunOptions};
use qossim::scenario::model::{Protocol, Reliability, Scenario};
use qossim::world::apps::{Ctx, Message, Plugin, PluginEntry, PluginOutput, Registry, RunEnd};
use qossim::world::host::{DatagramApp, Received};
use std::sync::Arc;

/// The echo protocol's state for one run.
struct Echo {
    port: u16,
    /// Echoes received back, per flow.
    replies: Vec<u64>,
}

/// `[protocols.echo]`: `port` (1–65535, default 7, RFC 862's).
fn section_port(v: &toml::Value) -> Result<u16, String> {
    let t = v.as_table().ok_or("expected a table")?;
    for k in t.keys() {
        if k != "port" {
            return Err(format!("unknown field `{k}`, expected `port`"));
        }
    }
    match t.get("port") {
        None => Ok(7),
        Some(p) => p
            .as_integer()
            .filter(|p| (1..=65_535).contains(p))
            .map(|p| p as u16)
            .ok_or_else(|| "port must be an integer in 1..=65535".to_string()),
    }
}

fn check(v: &toml::Value) -> Result<(), String> {
    section_port(v).map(|_| ())
}

fn make(sc: &Scenario) -> Box<dyn Plugin> {
    let port = sc
        .protocols
        .ext
        .get("echo")
        .map_or(Ok(7), section_port)
        .unwrap_or(7);
    Box::new(Echo {
        port,
        replies: vec![0; sc.flows.len()],
    })
}

/// The first byte of a datagram: 0 request, 1 reply.
const REQUEST: u8 = 0;
const REPLY: u8 = 1;

impl Plugin for Echo {
    fn setup(&mut self, ctx: &mut Ctx<'_, '_>) {
        let sc = ctx.scenario();
        for f in sc.flows.iter().filter(|f| f.protocol.as_str() == "echo") {
            for &n in f.publishers.iter().chain(&f.receivers) {
                ctx.udp_bind(n, self.port).expect("echo port free");
            }
        }
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, '_>, m: Message<'_>) {
        let mut data = vec![REQUEST];
        data.extend_from_slice(m.payload);
        for &r in m.receivers {
            let meta = PacketMeta {
                flow: m.flow as u32,
                kind: "echo_request",
                counted: m.counted,
                created: ctx.now(),
                proto_bytes: 1,
                app_bytes: m.payload.len() as u16,
                ..Default::default()
            };
            ctx.udp_send(
                (m.node as usize, self.port),
                (r as usize, self.port),
                &data,
                meta,
            );
        }
    }

    fn datagram_app(&mut self) -> Option<&mut dyn DatagramApp> {
        Some(self)
    }

    fn finish(&mut self, _end: &RunEnd<'_>) -> PluginOutput {
        PluginOutput {
            columns: self.replies.iter().map(|&n| vec![Value::Int(n)]).collect(),
            ..Default::default()
        }
    }
}

impl DatagramApp for Echo {
    fn on_datagram(&mut self, ctx: &mut Ctx<'_, '_>, rx: Received<'_>) {
        match rx.data.first() {
            Some(&REQUEST) => {
                ctx.deliver(rx.node, &rx.data[1..]);
                let mut reply = rx.data.to_vec();
                reply[0] = REPLY;
                let from = rx.from.addr.v4().and_then(qossim::net::ip::addr_node);
                if let Some(src) = from {
                    let meta = PacketMeta {
                        kind: "echo_reply",
                        ..rx.meta
                    };
                    ctx.udp_send(
                        (rx.node as usize, self.port),
                        (src, rx.from.port),
                        &reply,
                        meta,
                    );
                }
            }
            Some(&REPLY) if rx.meta.counted => {
                if let Some(n) = self.replies.get_mut(rx.meta.flow as usize) {
                    *n += 1;
                }
            }
            _ => {}
        }
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(
        PluginEntry::new("echo", make)
            .columns(&["echo_replies"])
            .reliabilities(&[Reliability::BestEffort])
            .section(check),
    )
    .expect("register echo");
    r
}

const SCENARIO: &str = r#"name = "echo"
seed = 3
duration = "60 s"
drain = "5 s"

[[nodes]]
name = "server"
role = "server"

[[groups]]
name = "c-{i}"
count = 4
role = "client"
link = { to = "server", rate = "1 Mbit/s", delay = "10 ms" }

[[flows]]
name = "pings"
pattern = "fan_in"
protocol = "echo"
publishers = ["c-*"]
receivers = ["server"]
topic = "t/{i}"
payload_bytes = 20
interval = "1 s"

[[flows]]
name = "plain"
pattern = "fan_in"
protocol = "udp"
publishers = ["c-*"]
receivers = ["server"]
topic = "u/{i}"
payload_bytes = 20
interval = "1 s"

[protocols.echo]
port = 7777
"#;

fn load(text: &str, reg: &Registry) -> Result<Scenario, qossim::scenario::ScenarioError> {
    qossim::scenario::load_str_with(
        text,
        "echo.toml",
        std::path::Path::new("."),
        &[],
        &reg.protocol_table(),
    )
}

#[test]
fn an_echo_plugin_defined_in_the_test_crate_runs_a_scenario() {
    let reg = registry();
    let sc = load(SCENARIO, &reg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.flows[0].protocol, Protocol::Ext("echo"));
    assert_eq!(sc.protocols.ext["echo"]["port"].as_integer(), Some(7777));
    let dir = common::temp_dir("echo");
    let report = run_scenario(
        &sc,
        &RunOptions {
            check: false,
            out_dir: dir.clone(),
            packets: true,
            registry: Some(Arc::new(reg)),
            ..Default::default()
        },
    )
    .expect("run");
    let cols: Vec<&str> = report.rows[0].columns.iter().map(String::as_str).collect();
    assert_eq!(
        cols[cols.len() - 2..],
        ["echo_replies", "violations"],
        "the plug-in's column comes last before the monitors' `violations`"
    );
    let echo = |flow: &str, col: &str| {
        let r = report.rows.iter().find(|r| r.flow == flow).expect("row");
        let i = cols.iter().position(|c| *c == col).expect("column");
        r.metrics[i]
    };
    // 4 publishers × 60 messages on lossless links: every request delivered,
    // every echo back; the UDP flow beside it has no echoes (0, present)
    assert_eq!(echo("pings", "sent"), Value::Int(240));
    assert_eq!(echo("pings", "delivered"), Value::Int(240));
    assert_eq!(echo("pings", "echo_replies"), Value::Int(240));
    assert_eq!(echo("plain", "echo_replies"), Value::Int(0));
    assert_eq!(echo("plain", "delivered"), Value::Int(240));
    let runs = std::fs::read_to_string(dir.join("runs.csv")).expect("runs.csv");
    assert!(runs
        .lines()
        .next()
        .unwrap_or("")
        .ends_with(",echo_replies,violations"));
    let packets = std::fs::read_to_string(dir.join("packets.csv")).expect("packets.csv");
    assert!(
        packets.contains(",echo,echo_request,"),
        "kind and protocol name"
    );
    assert!(packets.contains(",echo,echo_reply,"));
    // the request on the wire: IPv4 20 + UDP 8 + 1 + 20 = 49 bytes
    assert!(packets.contains(",echo_request,49,delivered"));
}

#[test]
fn the_echo_section_is_validated_by_the_plugin_with_its_line() {
    let reg = registry();
    let bad = SCENARIO.replace("port = 7777", "port = 70000");
    let e = load(&bad, &reg).expect_err("port out of range");
    assert_eq!(e.field.as_deref(), Some("protocols.echo"));
    assert!(e.message.contains("port must be"), "{e}");
    assert!(e.line.is_some(), "{e}");
    // without the plug-in its section and the protocol are unknown
    let e = load(SCENARIO, &Registry::builtin()).expect_err("no echo");
    assert!(e.message.contains("unknown field `echo`"), "{e}");
    let no_section = SCENARIO.replace("[protocols.echo]\nport = 7777\n", "");
    let e = load(&no_section, &Registry::builtin()).expect_err("no echo");
    assert!(e.message.contains("unknown protocol \"echo\""), "{e}");
    // and reliabilities it does not offer are refused
    let e = load(
        &SCENARIO.replace(
            "protocol = \"echo\"",
            "protocol = \"echo\"\nreliability = \"confirmed\"",
        ),
        &reg,
    )
    .expect_err("echo is best effort");
    assert!(
        e.message.contains("not available with protocol \"echo\""),
        "{e}"
    );
}

#[test]
fn registering_a_name_or_column_twice_is_refused() {
    let mut r = registry();
    assert!(r.register(PluginEntry::new("echo", make)).is_err());
    assert!(r
        .register(PluginEntry::new("echo2", make).columns(&["echo_replies"]))
        .is_err());
    assert!(
        r.register(PluginEntry::new("mqtt", make)).is_err(),
        "a built-in name"
    );
}
