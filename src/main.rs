//! `qossim` command line: parse arguments, run, map errors to exit codes
//! (README.md "Exit codes": 0 ok, 1 something the user asked to check
//! failed, 2 bad input, 3 internal error or the environment failed). All
//! the work is in the library.

use clap::{Args, Parser, Subcommand};
use qossim::cli;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  qossim                                  run the built-in quickstart scenario
  qossim run scenarios/quickstart.toml    run a scenario file
  qossim run scenarios/quickstart.toml --set links.backhaul.loss.p=0.2 --seed 7
  qossim run scenarios/coap-vs-udp.toml --packets --pcap --out results/r
  qossim check scenarios/gilbert-elliott.toml   validate only
  qossim test scenarios/regression/ --junit junit.xml   check [[expect]] tables
  qossim run scenarios/regression/mqtt-qos2-drop-first-pubrel.toml --trace --out results/q2
  qossim diagram results/q2 --message commands:controller:0   a message's sequence diagram

Results go to results/<scenario name>/ unless --out is given:
  runs.csv, summary.csv, messages.csv, manifest.json (+ packets.csv, pcap/, trace.csv)
Scenario fields: scenarios/README.md; metrics: docs/metrics.md.";

#[derive(Parser)]
#[command(name = "qossim", version, about = "Deterministic simulator comparing IoT messaging protocols over lossy links", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Let scenarios read trace files outside their own directory.
    #[arg(long, global = true)]
    allow_outside: bool,
    /// Treat every warning (README.md "Warnings") as an error: exit 2.
    #[arg(long, global = true)]
    deny_warnings: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario (the built-in quickstart when no file is given).
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Validate a scenario file and print what it defines; runs nothing.
    /// With a [sweep], also every point of its grid: invalid points are
    /// warnings (`sweep` skips them), an error only when none is valid.
    Check(CheckArgs),
    /// List the scenarios under a directory (default `scenarios`) with the
    /// question each answers (the first sentence of its header comment).
    List(ListArgs),
    /// Print (or write with --out) a commented scenario skeleton for one
    /// pattern and protocol that runs as it is.
    New(NewArgs),
    /// Write the browser playground (a static site running the teaching
    /// scenarios through the wasm build) into --out.
    Playground(PlaygroundArgs),
    /// Run every scenario with [[expect]] tables (files, or directories
    /// searched recursively) and check the expectations.
    #[command(after_help = TEST_HELP)]
    Test(TestArgs),
    /// Run the scenario's [sweep] grid (every point × replication) in
    /// parallel; invalid points are skipped with a warning.
    #[command(after_help = SWEEP_HELP)]
    Sweep(SweepArgs),
    /// Combine the results directories of `sweep --shard K/N` runs.
    Merge(MergeArgs),
    /// (Re)draw the charts of a results directory from its summary.csv.
    Plot(PlotArgs),
    /// Draw one message's life across nodes (Mermaid and SVG) from the
    /// trace.csv of a run made with --trace.
    #[command(after_help = DIAGRAM_HELP)]
    Diagram(DiagramArgs),
    /// Serve the MQTT-SN gateway core to real clients (UDP), relaying to an
    /// MQTT broker (TCP), until Ctrl-C.
    #[command(after_help = GATEWAY_HELP)]
    Gateway(GatewayArgs),
    /// Serve the simulator's MQTT 3.1.1 and 5.0 broker to real clients (TCP) until
    /// Ctrl-C.
    #[command(after_help = BROKER_HELP)]
    Broker(BrokerArgs),
    /// Serve the simulator's CoAP endpoint and resource server to real
    /// clients (UDP) until Ctrl-C.
    #[command(name = "coap-server", after_help = COAP_SERVER_HELP)]
    CoapServer(CoapServerArgs),
}

const COAP_SERVER_HELP: &str = "\
Examples:
  qossim coap-server --listen 127.0.0.1:5685 --resource sensors/temp=21.5
  qossim coap-server --listen 127.0.0.1:5685 --scenario scenarios/coap-blockwise.toml --log -
GET, PUT, POST and DELETE on any path, /.well-known/core discovery, Observe
(RFC 7641), block-wise (RFC 7959, with [protocols.coap] block_size).
What a client can make the server hold is bounded (defaults shown with each
option): resources created (past it a PUT/POST gets 5.03), bytes stored and
the size of one value (4.13), observers (past it a registration is answered
without Observe). Malformed datagrams are ignored or reset (RFC 7252 §4.2,
§4.3) and counted.
The first line on stderr names the bound address (--listen HOST:0 picks a
free port). Ctrl-C (or SIGTERM) stops it: counters printed on stderr.
Exit codes: 0 stopped, 2 bad arguments or scenario, 3 cannot serve (e.g.
address in use, --log not writable). See docs/coap.md (`qossim coap-server`).";

#[derive(Args)]
struct CoapServerArgs {
    /// UDP address (IPv4) to serve CoAP on; port 0 picks a free one.
    #[arg(long, default_value = qossim::cli::coap_server::DEFAULT_LISTEN, value_name = "HOST:PORT")]
    listen: String,
    /// Take the endpoint and server options from this scenario's
    /// [protocols.coap] (ACK_TIMEOUT, MAX_RETRANSMIT, NSTART, congestion
    /// control, block_size, observe_max_age, observe_con_interval, …).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Override a field of the --scenario (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE", requires = "scenario")]
    set: Vec<String>,
    /// Store VALUE (text) at PATH before serving, e.g. sensors/temp=21.5
    /// (repeatable).
    #[arg(long = "resource", value_name = "PATH=VALUE")]
    resources: Vec<String>,
    /// Resources PUT/POST may create; past it they are answered 5.03.
    #[arg(long, default_value_t = qossim::proto::coap::server::DEFAULT_MAX_RESOURCES, value_name = "N")]
    max_resources: usize,
    /// Bytes of paths and values stored; past it a PUT/POST gets 4.13.
    #[arg(long, default_value_t = qossim::proto::coap::server::DEFAULT_MAX_STORE_BYTES, value_name = "BYTES")]
    max_bytes: usize,
    /// Largest value stored (a GET's answer must fit one UDP datagram
    /// unless block-wise is on); larger gets 4.13.
    #[arg(long, default_value_t = qossim::proto::coap::server::DEFAULT_MAX_VALUE_BYTES, value_name = "BYTES")]
    max_value: usize,
    /// Observers registered at once; past it a registration is answered
    /// without Observe.
    #[arg(long, default_value_t = qossim::cli::coap_server::DEFAULT_MAX_OBSERVERS, value_name = "N")]
    max_observers: usize,
    /// Message IDs remembered for deduplication (RFC 7252 §4.5) at once;
    /// past it the ones closest to expiry are forgotten first (counted).
    #[arg(long, default_value_t = qossim::cli::coap_server::DEFAULT_MAX_DEDUP, value_name = "N")]
    max_dedup: usize,
    /// Bytes of cached replies kept for duplicate requests at once; the
    /// same.
    #[arg(long, default_value_t = qossim::cli::coap_server::DEFAULT_MAX_DEDUP_BYTES, value_name = "BYTES")]
    max_dedup_bytes: usize,
    /// Answer CON requests this long after their Empty ACK, as separate
    /// responses (RFC 7252 §5.2.2), instead of piggybacked.
    #[arg(long, value_name = "DUR")]
    separate_delay: Option<String>,
    /// Send ETag and Max-Age with 2.05 answers and answer a GET offering
    /// the current ETag with 2.03 Valid (RFC 7252 §5.10.6).
    #[arg(long)]
    validators: bool,
    /// Write one line per datagram in and out (time, peer, direction,
    /// type, code, MID, token, options, payload length) to FILE, or to
    /// stdout with -.
    #[arg(long, value_name = "FILE|-")]
    log: Option<String>,
}

const BROKER_HELP: &str = "\
Examples:
  qossim broker --listen 127.0.0.1:1884
  qossim broker --listen 127.0.0.1:1884 --scenario scenarios/quickstart.toml --log broker.log
Every resource a client can make the broker hold is bounded (defaults shown
with each option): connections, the partial packet per connection (64 KiB
before CONNECT), the write backlog per connection (a client that does not
read is closed), the wait for CONNECT. Malformed input closes that
connection only.
Ctrl-C (or SIGTERM) stops it: connections are closed, counters printed.
Exit codes: 0 stopped, 2 bad arguments or scenario, 3 cannot serve (e.g.
address in use, --log not writable). See docs/mqtt.md (`qossim broker`).";

#[derive(Args)]
struct BrokerArgs {
    /// TCP address (IPv4) to serve MQTT on.
    #[arg(long, default_value = "127.0.0.1:1883", value_name = "HOST:PORT")]
    listen: String,
    /// Take the broker options from this scenario's [protocols.mqtt]
    /// (queues, in-flight window, QoS 2 forwarding, users, $SYS interval);
    /// the options below override it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Override a field of the --scenario (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE", requires = "scenario")]
    set: Vec<String>,
    /// Connections served at once; one more is accepted and closed at once.
    #[arg(long, default_value_t = qossim::cli::broker::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Largest packet accepted, header included; a fixed header announcing
    /// more closes the connection [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    max_packet_size: Option<usize>,
    /// How long a new connection may stay without CONNECT before it is closed.
    #[arg(long, default_value = qossim::cli::broker::DEFAULT_CONNECT_TIMEOUT, value_name = "DUR")]
    connect_timeout: String,
    /// Bytes that may wait to be written to one connection beyond what its
    /// socket takes; a client that does not read past this is closed.
    #[arg(long, default_value_t = qossim::proto::mqtt::socket::DEFAULT_MAX_OUT_BYTES, value_name = "BYTES")]
    max_backlog: usize,
    /// Write one line per packet in and out (time, connection, peer,
    /// direction, type, length, key fields) to FILE, or to stdout with -.
    #[arg(long, value_name = "FILE|-")]
    log: Option<String>,
}

const GATEWAY_HELP: &str = "\
Examples:
  qossim gateway --listen 127.0.0.1:1883 --broker 127.0.0.1:1884
  qossim gateway --broker 127.0.0.1:1884 --mode transparent --predefined 1=sensors/temp
Ctrl-C (or SIGTERM) stops it: broker connections are closed, counters printed.
Exit codes: 0 stopped, 2 bad arguments, 1 cannot serve (e.g. address in use).
See docs/mqttsn.md (`qossim gateway`).";

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    /// One MQTT connection per MQTT-SN client.
    Transparent,
    /// One MQTT connection for all clients.
    Aggregating,
    /// The gateway is the broker (no MQTT connection; --broker unused).
    Integrated,
}

#[derive(Args)]
struct GatewayArgs {
    /// UDP address to serve MQTT-SN on.
    #[arg(long, default_value = "127.0.0.1:1883", value_name = "HOST:PORT")]
    listen: String,
    /// The MQTT 3.1.1 broker (TCP) to relay to.
    #[arg(long, default_value = "127.0.0.1:1883", value_name = "HOST:PORT")]
    broker: String,
    /// How clients reach the broker.
    #[arg(long, value_enum, default_value = "aggregating")]
    mode: ModeArg,
    /// A predefined topic id (MQTT-SN 1.2 §6.7) for all clients (repeatable).
    #[arg(long, value_name = "ID=TOPIC")]
    predefined: Vec<String>,
    /// Keep alive of the gateway's MQTT connections, seconds (0: none).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    keep_alive: u16,
    /// MQTT client id of the aggregating connection.
    #[arg(long, default_value = "qossim-gw", value_name = "ID")]
    client_id: String,
    /// MQTT-SN clients served at once (more are refused with "congestion").
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_clients: usize,
    /// Longest topic name or filter a client may register, subscribe to
    /// or name as its will topic, bytes (longer: "not supported").
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    max_topic_len: usize,
    /// GwId in ADVERTISE and GWINFO.
    #[arg(long, default_value_t = 1, value_name = "N")]
    gw_id: u8,
}

const TEST_HELP: &str = "\
Examples:
  qossim test scenarios/regression/
  qossim test scenarios/regression/ --junit target/regression-junit.xml
  qossim test scenarios/regression/coap-con-loss.toml --set protocols.coap.max_retransmit=0
Exit codes: 0 every expectation holds, 1 one failed, 2 bad input (a scenario
that does not load, none with [[expect]]), 3 internal error (writing results).
Expectations: scenarios/README.md \"Expectations\".";

#[derive(Args)]
struct TestArgs {
    /// Scenario files and directories (searched recursively for *.toml).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where the results go, one directory per scenario (default: a new
    /// directory under results/test/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write JUnit XML here (one testcase per expectation).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Override a field of every scenario (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Print the table only when something fails.
    #[arg(long, short)]
    quiet: bool,
    /// Run the spec-oracle monitors in every scenario (docs/checks.md):
    /// violations.csv and the runs.csv `violations` column, also where no
    /// expectation reads them.
    #[arg(long)]
    check: bool,
}

const DIAGRAM_HELP: &str = "\
Examples:
  qossim run scenarios/regression/mqtt-qos2-drop-first-pubrel.toml --trace --out results/q2
  qossim diagram results/q2 --message commands:controller:0
  qossim diagram results/q2 --first-retransmitted
Writes diagram-<flow>-<publisher>-<seq>.mmd (Mermaid) and .svg into the
results directory. Exit codes: 0 written, 2 no trace.csv or no such message,
1 cannot read or write. See docs/traces.md.";

#[derive(Args)]
struct DiagramArgs {
    /// A results directory of a run made with --trace (holding trace.csv).
    dir: PathBuf,
    /// The message: FLOW:PUBLISHER:SEQ (messages.csv's flow, publisher and
    /// msg_id; trace.csv's msg column).
    #[arg(
        long,
        value_name = "FLOW:PUBLISHER:SEQ",
        required_unless_present = "first_retransmitted",
        conflicts_with = "first_retransmitted"
    )]
    message: Option<String>,
    /// Draw the first message that needed a retransmission instead.
    #[arg(long)]
    first_retransmitted: bool,
}

#[derive(Args)]
struct PlotArgs {
    /// A results directory (holding summary.csv).
    dir: PathBuf,
}

const SWEEP_HELP: &str = "\
Examples:
  qossim sweep scenarios/compare-loss.toml                 all cores, results/<name>/
  qossim sweep scenarios/compare-loss.toml --jobs 1 --out results/s
  qossim sweep scenarios/compare-loss.toml --resume        finish an interrupted sweep
  qossim sweep scenarios/compare-loss.toml --shard 1/4 --out part1   (on machine 1 of 4)
  qossim sweep scenarios/compare-loss.toml --shard 2/4 --out part2   (machine 2, and so on)
  qossim sweep scenarios/compare-loss.toml --shard 3/4 --out part3
  qossim sweep scenarios/compare-loss.toml --shard 4/4 --out part4
  qossim merge part1 part2 part3 part4 --out results/compare-loss
See docs/cluster.md for Slurm and GNU parallel.";

#[derive(Args)]
struct SweepArgs {
    /// Scenario file with a [sweep] table.
    scenario: PathBuf,
    /// Output directory (default: results/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Parallel runs (default: one per core of this machine).
    #[arg(long, default_value_t = cores())]
    jobs: usize,
    /// Keep the finished runs of an interrupted sweep in --out and do the rest.
    #[arg(long)]
    resume: bool,
    /// Run only shard K of N (runs with index mod N = K-1); combine with `merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Also write packets.csv and pcaps for these run ids (comma-separated).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pcap_runs: Vec<u64>,
    /// Override a scenario field for every run (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Run the spec-oracle monitors in every run (docs/checks.md): the
    /// runs.csv `violations` column and a combined violations.csv.
    #[arg(long)]
    check: bool,
    /// Remove the outputs of `qossim run`, or of another scenario's sweep,
    /// from --out instead of refusing the directory.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// Shard results directories.
    dirs: Vec<PathBuf>,
    /// Where the combined results go.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Default)]
struct RunArgs {
    /// Scenario file (TOML). Default: the built-in quickstart.
    scenario: Option<PathBuf>,
    /// Master seed (same as --set seed=N).
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory (default: results/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a scenario field, e.g. --set flows.telemetry.protocol=udp (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Also write packets.csv: one row per transmission per hop.
    #[arg(long)]
    packets: bool,
    /// Also write one nanosecond pcap per link (raw IPv4) under pcap/.
    #[arg(long)]
    pcap: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Exit with status 1 when an [[expect]] of the scenario fails.
    #[arg(long)]
    strict: bool,
    /// Run the spec-oracle monitors (docs/checks.md): violations.csv and the
    /// runs.csv `violations` column.
    #[arg(long)]
    check: bool,
    /// Also write trace.csv: one row per protocol event per node
    /// (docs/traces.md; read by `qossim diagram`).
    #[arg(long)]
    trace: bool,
    /// Keep only these nodes' rows in trace.csv (comma-separated names).
    #[arg(long, value_name = "NODES", value_delimiter = ',', requires = "trace")]
    trace_nodes: Vec<String>,
    /// Keep only these flows' rows in trace.csv (comma-separated names).
    #[arg(long, value_name = "FLOWS", value_delimiter = ',', requires = "trace")]
    trace_flows: Vec<String>,
    /// Remove a sweep's, or another scenario's, outputs from --out instead
    /// of refusing the directory.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Directory searched recursively for *.toml scenarios.
    #[arg(default_value = "scenarios")]
    dir: PathBuf,
}

#[derive(Args)]
struct NewArgs {
    /// point_to_point, broadcast or fan_in.
    pattern: String,
    /// mqtt, mqttsn, coap, udp, tcp or http.
    protocol: String,
    /// Sensors on one shared 802.15.4 radio medium instead of wired links.
    #[arg(long)]
    radio: bool,
    /// Write the scenario to this file (refused if it exists) instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PlaygroundArgs {
    /// Directory to write index.html, app.js, worker.js, style.css,
    /// scenarios.js and qossim.wasm into (created if needed).
    #[arg(long, short)]
    out: PathBuf,
    /// The wasm to ship (default: target/wasm32-unknown-unknown/release/
    /// qossim.wasm here, or beside the executable's target directory).
    #[arg(long)]
    wasm: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Override a scenario field before validating (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
}

/// The cores this process may use (the `--jobs` default).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    let parsed = Cli::parse();
    qossim::scenario::allow_files_outside(parsed.allow_outside);
    let deny_warnings = parsed.deny_warnings;
    let result = std::panic::catch_unwind(move || match parsed.cmd {
        None => cli::run(&cli::RunRequest {
            deny_warnings,
            ..cli::RunRequest::default()
        }),
        Some(Cmd::Run(a)) => cli::run(&cli::RunRequest {
            scenario: a.scenario,
            seed: a.seed,
            out: a.out,
            overrides: a.set,
            packets: a.packets,
            pcap: a.pcap,
            quiet: a.quiet,
            strict: a.strict,
            deny_warnings,
            check: a.check,
            trace: a.trace.then_some(qossim::world::trace::TraceOptions {
                nodes: a.trace_nodes,
                flows: a.trace_flows,
            }),
            force: a.force,
        }),
        Some(Cmd::Check(a)) => cli::check(&a.scenario, &a.set, deny_warnings),
        Some(Cmd::List(a)) => cli::list(&a.dir).map(|text| print!("{text}")),
        Some(Cmd::New(a)) => {
            cli::new_scenario(&a.pattern, &a.protocol, a.radio).and_then(|text| match &a.out {
                None => {
                    print!("{text}");
                    Ok(())
                }
                Some(path) => cli::write_new(path, &text),
            })
        }
        Some(Cmd::Playground(a)) => cli::playground(&cli::PlaygroundRequest {
            out: a.out,
            wasm: a.wasm,
        }),
        Some(Cmd::Test(a)) => cli::test(&cli::TestRequest {
            paths: a.paths,
            out: a.out,
            junit: a.junit,
            overrides: a.set,
            quiet: a.quiet,
            check: a.check,
            deny_warnings,
        }),
        Some(Cmd::Sweep(a)) => cli::sweep(&cli::SweepRequest {
            scenario: a.scenario,
            out: a.out,
            jobs: a.jobs,
            resume: a.resume,
            shard: a.shard,
            pcap_runs: a.pcap_runs,
            overrides: a.set,
            quiet: a.quiet,
            check: a.check,
            deny_warnings,
            force: a.force,
        }),
        Some(Cmd::Merge(a)) => cli::merge(&a.dirs, &a.out),
        Some(Cmd::Plot(a)) => cli::plot(&a.dir),
        Some(Cmd::Diagram(a)) => cli::diagram(&a.dir, a.message.as_deref()).map(|paths| {
            for p in paths {
                println!("{}", p.display());
            }
        }),
        Some(Cmd::Broker(a)) => cli::broker(&cli::BrokerRequest {
            listen: a.listen,
            scenario: a.scenario,
            overrides: a.set,
            max_connections: a.max_connections,
            max_packet_size: a.max_packet_size,
            connect_timeout: Some(a.connect_timeout),
            max_backlog: a.max_backlog,
            log: a.log,
        }),
        Some(Cmd::CoapServer(a)) => cli::coap_server(&cli::CoapServerRequest {
            listen: a.listen,
            scenario: a.scenario,
            overrides: a.set,
            resources: a.resources,
            limits: cli::CoapServerLimits {
                resources: a.max_resources,
                bytes: a.max_bytes,
                value: a.max_value,
                observers: a.max_observers,
                dedup: a.max_dedup,
                dedup_bytes: a.max_dedup_bytes,
            },
            separate_delay: a.separate_delay,
            validators: a.validators,
            log: a.log,
        }),
        Some(Cmd::Gateway(a)) => cli::gateway(&cli::GatewayRequest {
            listen: a.listen,
            broker: a.broker,
            mode: match a.mode {
                ModeArg::Transparent => qossim::proto::mqttsn::GatewayMode::Transparent,
                ModeArg::Aggregating => qossim::proto::mqttsn::GatewayMode::Aggregating,
                ModeArg::Integrated => qossim::proto::mqttsn::GatewayMode::Integrated,
            },
            predefined: a.predefined,
            keep_alive: a.keep_alive,
            client_id: a.client_id,
            max_clients: a.max_clients,
            max_topic_len: a.max_topic_len,
            gw_id: a.gw_id,
        }),
    });
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
        Err(_) => {
            eprintln!(
                "error: internal error (a bug in qossim); please report it with the scenario"
            );
            ExitCode::from(3)
        }
    }
}
