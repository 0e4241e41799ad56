//! What the `qossim` subcommands do, as library functions (the binary only
//! parses arguments), so tests drive exactly what users run.

use crate::run::{run_scenario, RunError, RunOptions, RunReport};
use crate::scenario::error::Warning;
use crate::scenario::{self, model::Scenario, ScenarioError};
use std::path::{Path, PathBuf};

pub mod broker;
pub mod coap_server;
pub mod new;
pub mod playground;
pub mod testcmd;
pub use broker::{broker, BrokerRequest};
pub use coap_server::{coap_server, CoapServerLimits, CoapServerRequest};
pub use new::{new_scenario, write_new};
pub use playground::{playground, PlaygroundRequest};
pub use testcmd::{test, TestRequest};

/// The built-in default scenario (`cargo run --release` with no arguments).
pub const QUICKSTART: &str = include_str!("../scenarios/quickstart.toml");

/// Errors the CLI reports, with their exit codes.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Sweep(#[from] crate::sweep::SweepError),
    #[error("{0}")]
    Chart(#[from] crate::report::charts::ChartError),
    /// A command-line value that makes no sense (exit 2).
    #[error("{0}")]
    BadArgument(String),
    /// `qossim gateway` could not serve (e.g. its address is in use).
    #[error("{0}")]
    Gateway(#[from] crate::proto::mqttsn::socket::SocketError),
    /// `qossim broker` could not serve (address in use, --log unwritable).
    #[error("{0}")]
    Broker(#[from] broker::BrokerError),
    /// `qossim coap-server` could not serve (address in use, --log
    /// unwritable).
    #[error("{0}")]
    CoapServer(#[from] coap_server::CoapServerError),
    /// Expectations that did not hold (`run --strict`, `test`: exit 1).
    #[error("{failed} of {total} expectations failed")]
    ExpectationsFailed { failed: usize, total: usize },
    /// `qossim test` could not write its results (exit 3).
    #[error("internal error: {0}")]
    TestInternal(String),
    /// `qossim diagram`: no trace, no such message (exit 2), unreadable (3).
    #[error("{0}")]
    Diagram(#[from] crate::report::diagram::DiagramError),
    /// `--deny-warnings` and the command warned (exit 2).
    #[error("{0} warning(s) and --deny-warnings")]
    DeniedWarnings(usize),
}

impl CliError {
    /// README.md "Exit codes": 1 something the user asked to check failed
    /// (an expectation, sweep points at run time), 2 bad input, 3 an
    /// internal error or an environment that failed (a results directory
    /// that cannot be written, an address that cannot be bound).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Scenario(_) => 2,
            CliError::Run(_) => 3,
            CliError::Sweep(e) => e.exit_code(),
            CliError::Chart(crate::report::charts::ChartError::Write(..)) => 3,
            CliError::Chart(_) => 2,
            CliError::BadArgument(_) => 2,
            CliError::Gateway(_) => 3,
            CliError::Broker(_) | CliError::CoapServer(_) => 3,
            CliError::ExpectationsFailed { .. } => 1,
            CliError::TestInternal(_) => 3,
            CliError::Diagram(crate::report::diagram::DiagramError::Read { .. }) => 3,
            CliError::Diagram(_) => 2,
            CliError::DeniedWarnings(_) => 2,
        }
    }
}

/// Arguments of `qossim run`.
#[derive(Debug, Default, Clone)]
pub struct RunRequest {
    pub scenario: Option<PathBuf>,
    pub seed: Option<u64>,
    pub out: Option<PathBuf>,
    pub overrides: Vec<String>,
    pub packets: bool,
    pub pcap: bool,
    pub quiet: bool,
    /// Exit 1 when an expectation fails.
    pub strict: bool,
    /// Exit 2 when the scenario or the run warns (`--deny-warnings`).
    pub deny_warnings: bool,
    /// Run the spec-oracle monitors (`--check`).
    pub check: bool,
    /// Write `trace.csv` (`--trace`, filtered by `--trace-nodes`,
    /// `--trace-flows`).
    pub trace: Option<crate::world::trace::TraceOptions>,
    /// Remove a sweep's or another scenario's outputs from the results
    /// directory instead of refusing it.
    pub force: bool,
}

/// Load a scenario file, or the built-in quickstart.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    match path {
        Some(p) => scenario::load_file(p, overrides),
        None => scenario::load_str(
            QUICKSTART,
            "<built-in quickstart>",
            Path::new("scenarios"),
            overrides,
        ),
    }
}

/// Warnings about a valid but questionable scenario (printed on stderr,
/// located in the scenario file: README.md "Warnings").
pub fn warnings(sc: &Scenario) -> Vec<Warning> {
    use crate::scenario::model::{Protocol, Reliability};
    let mut w = crate::scenario::topic_practice::warnings(sc);
    w.extend(crate::scenario::overload::warnings(sc));
    let mut warn = |field: String, message: String| {
        w.push(Warning::at(&sc.origin, &sc.text, Some(&field), message));
    };
    let con = sc.flows.iter().any(|f| {
        f.protocol == Protocol::Coap
            && matches!(f.reliability, Reliability::Confirmed | Reliability::Con)
    });
    if con {
        let wait = crate::proto::coap::Config::from(&sc.protocols.coap).max_transmit_wait();
        if sc.drain < wait {
            warn("drain".into(), format!(
                "drain {} is shorter than CoAP MAX_TRANSMIT_WAIT {wait}: CON messages still being retransmitted when the run ends count as lost (DESIGN.md: drain ≥ the slowest give-up time)",
                sc.drain
            ));
        }
    }
    // Observe: a receiver that hears nothing for Max-Age + margin
    // re-registers, so readings rarer than that cost a registration each
    let patience = crate::sim::SimDuration::from_secs(u64::from(sc.protocols.coap.observe_max_age))
        + sc.protocols.coap.observe_margin;
    for f in &sc.flows {
        use crate::scenario::model::{CoapMode, Timing};
        if f.protocol != Protocol::Coap || f.coap_mode != CoapMode::Observe {
            continue;
        }
        let gap = match &f.timing {
            Timing::Periodic { interval, .. } => *interval,
            Timing::Poisson { mean_interval } => *mean_interval,
            Timing::Bulk => continue,
        };
        if gap > patience {
            warn(format!("flows.{}", f.name), format!(
                "flow {}: readings every {gap} but observers re-register after {patience} without one (protocols.coap.observe_max_age + observe_margin): every reading will also cost a re-registration; raise observe_max_age",
                f.name
            ));
        }
    }
    // Workload against capacity (the loader refuses only what no run can
    // finish): a publisher offering more payload than its only link
    // carries fills that link's queue; many messages make a long run.
    // each node's only link (None: none, or several), found once: a scan
    // of every link per publisher took hours at a million clients
    let mut only_link: Vec<Option<usize>> = vec![None; sc.nodes.len()];
    let mut links_of = vec![0u32; sc.nodes.len()];
    for (i, l) in sc.links.iter().enumerate() {
        for n in [l.a, l.b] {
            links_of[n] += 1;
            only_link[n] = (links_of[n] == 1).then_some(i);
        }
    }
    for f in &sc.flows {
        let offered = crate::scenario::flows::messages_offered(f, sc.duration);
        if offered > 1e7 {
            warn(format!("flows.{}.interval", f.name), format!(
                "flow {}: {} publishers offer about {offered:.2e} messages in {}: expect a long run and about {:.1} GB of message records",
                f.name,
                f.publishers.len(),
                sc.duration,
                offered * crate::scenario::flows::RECORD_BYTES_PER_MESSAGE / 1e9
            ));
        }
        let per_publisher_bps = if f.publishers.is_empty() {
            0.0
        } else {
            offered / f.publishers.len() as f64 * f64::from(f.payload_bytes) * 8.0
                / (sc.duration.0.saturating_sub(f.start.0) as f64 / 1e9).max(1e-9)
        };
        for &p in &f.publishers {
            let Some(l) = only_link[p].and_then(|i| sc.links.get(i)) else {
                continue; // on a medium, or several ways out
            };
            if per_publisher_bps > l.rate_bps as f64 {
                warn(format!("flows.{}", f.name), format!(
                    "flow {}: publisher {} offers {:.0} bit/s of payload alone, more than its link {}'s {} bit/s: the link's queue fills and drops (drops_queue), latency grows",
                    f.name, sc.nodes[p].name, per_publisher_bps, l.name, l.rate_bps
                ));
                break; // once per flow
            }
        }
    }
    w
}

/// Print `warnings` on stderr (one line each); with `deny`, any warning
/// is an error (exit 2).
pub fn report_warnings(warnings: &[Warning], deny: bool) -> Result<(), CliError> {
    for w in warnings {
        eprintln!("{w}");
    }
    if deny && !warnings.is_empty() {
        return Err(CliError::DeniedWarnings(warnings.len()));
    }
    Ok(())
}

/// `qossim run`.
pub fn run(req: &RunRequest) -> Result<(), CliError> {
    let mut overrides = req.overrides.clone();
    if let Some(s) = req.seed {
        overrides.push(format!("seed={s}"));
    }
    let sc = load(req.scenario.as_deref(), &overrides)?;
    if let Some(t) = &req.trace {
        crate::world::trace::TraceFilter::resolve(&sc, t).map_err(CliError::BadArgument)?;
    }
    report_warnings(&warnings(&sc), req.deny_warnings)?;
    let out_dir = req
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(crate::run::file_safe(&sc.name)));
    crate::sweep::dir::claim(
        &out_dir,
        crate::sweep::dir::Command::Run,
        &sc.name,
        req.force,
    )?;
    let report = run_scenario(
        &sc,
        &RunOptions {
            check: req.check,
            out_dir: out_dir.clone(),
            packets: req.packets,
            pcap: req.pcap,
            fsync: true,
            registry: None,
            trace: req.trace.clone(),
        },
    )?;
    if !req.quiet {
        print!("{}", summary_text(&sc, &report, &out_dir));
    }
    let after = run_warnings(&sc, &report);
    for w in &after {
        eprintln!("{w}");
    }
    if let Some(ev) = &report.expectations {
        if !req.quiet {
            for line in ev.lines() {
                println!("{line}");
            }
        }
        let failed = ev.failed();
        if req.strict && failed > 0 {
            return Err(CliError::ExpectationsFailed {
                failed,
                total: ev.expectations.len(),
            });
        }
    }
    if req.deny_warnings && !after.is_empty() {
        return Err(CliError::DeniedWarnings(after.len()));
    }
    Ok(())
}

/// Warnings after a run: a flow that delivered nothing of what it
/// intended, and a flow with packets that found no route.
pub fn run_warnings(sc: &Scenario, r: &RunReport) -> Vec<Warning> {
    let mut w = Vec::new();
    let Some(first) = r.rows.first() else {
        return w;
    };
    let col = |name: &str| first.columns.iter().position(|c| c == name);
    let (Some(ci), Some(cd), Some(cn)) = (col("intended"), col("delivered"), col("drops_no_route"))
    else {
        return w;
    };
    for row in &r.rows {
        let m = &row.metrics;
        let get = |c: usize| m.get(c).and_then(|v| v.as_f64()).unwrap_or(0.0);
        if get(ci) > 0.0 && get(cd) == 0.0 {
            w.push(Warning::at(
                &sc.origin,
                &sc.text,
                Some(&format!("flows.{}", row.flow)),
                format!(
                    "flow `{}` delivered nothing ({} intended)",
                    row.flow,
                    get(ci)
                ),
            ));
        }
        if get(cn) > 0.0 {
            w.push(Warning::at(&sc.origin, &sc.text, Some(&format!("flows.{}", row.flow)), format!(
                "flow `{}`: {} packets found no route (drops_no_route): a path needs a node that does not forward (only role = \"router\" does), or a link was down",
                row.flow,
                get(cn)
            )));
        }
    }
    w
}

/// The one-screen summary printed after a run.
pub fn summary_text(sc: &Scenario, r: &RunReport, out_dir: &Path) -> String {
    use crate::metrics::summary::Value;
    use std::fmt::Write;
    let columns: Vec<&str> = r
        .rows
        .first()
        .map(|row| row.columns.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap_or(0);
    let (ci, cd, cr, c50, c99, cb) = (
        col("intended"),
        col("delivered"),
        col("delivery_ratio"),
        col("latency_ms_p50"),
        col("latency_ms_p99"),
        col("bytes_on_wire_per_delivered"),
    );
    let f = |v: Value, prec: usize| match v.as_f64() {
        Some(x) => format!("{x:.prec$}"),
        None => "-".into(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "qossim {}: scenario `{}`, seed {}, {:.0} s simulated, {} events in {:.2} s",
        env!("CARGO_PKG_VERSION"),
        sc.name,
        sc.seed,
        r.sim_end_s,
        r.events,
        r.wall_s
    );
    let _ = writeln!(
        s,
        "{:<16} {:<9} {:<12} {:>19} {:>8} {:>10} {:>10} {:>12}",
        "flow",
        "protocol",
        "reliability",
        "delivered/intended",
        "ratio",
        "p50 ms",
        "p99 ms",
        "B/delivered"
    );
    for row in &r.rows {
        let m = &row.metrics;
        let _ = writeln!(
            s,
            "{:<16} {:<9} {:<12} {:>19} {:>8} {:>10} {:>10} {:>12}",
            row.flow,
            row.protocol,
            row.reliability,
            format!("{}/{}", f(m[cd], 0), f(m[ci], 0)),
            f(m[cr], 4),
            f(m[c50], 1),
            f(m[c99], 1),
            f(m[cb], 1)
        );
    }
    let names: Vec<String> = r
        .files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let _ = writeln!(s, "results: {}/ ({})", out_dir.display(), names.join(", "));
    s
}

/// `qossim diagram`: the sequence diagram of message `message`
/// (`flow:publisher:seq`), or of the first message that needed a
/// retransmission (`None`), from `dir/trace.csv`, written beside it as
/// `diagram-<flow>-<publisher>-<seq>.mmd` and `.svg`. Returns the paths.
pub fn diagram(dir: &Path, message: Option<&str>) -> Result<Vec<PathBuf>, CliError> {
    use crate::report::diagram::{self, DiagramError};
    let tag = match message {
        Some(m) => {
            diagram::parse_tag(m)?;
            m.to_string()
        }
        None => diagram::first_retransmitted(dir)?.ok_or(DiagramError::NoRetransmission)?,
    };
    let d = diagram::diagram(dir, &tag)?;
    let stem = diagram::file_stem(&tag);
    let mut paths = Vec::new();
    for (ext, text) in [("mmd", &d.mermaid), ("svg", &d.svg)] {
        let p = dir.join(format!("{stem}.{ext}"));
        crate::report::atomic::write_atomic(&p, text.as_bytes()).map_err(|source| {
            RunError::Io {
                dir: dir.to_path_buf(),
                source,
            }
        })?;
        paths.push(p);
    }
    Ok(paths)
}

/// `qossim list`: every `*.toml` under `dir` (recursively, sorted by
/// path) with the first sentence of its header comment — the question it
/// answers ("Question:", "Course question:") or what it checks or
/// measures ("Regression:", "Benchmark …:"). A file without a header
/// comment is listed with "(no description)".
pub fn list(dir: &Path) -> Result<String, CliError> {
    use std::fmt::Write;
    fn walk(d: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files).map_err(|e| {
        CliError::BadArgument(format!("cannot list scenarios in {}: {e}", dir.display()))
    })?;
    files.sort();
    let mut s = String::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let header: Vec<&str> = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim())
            .take_while(|l| !l.is_empty())
            .collect();
        let joined = header.join(" ");
        // the first sentence: up to the first "?" or ". "
        let end = joined
            .find('?')
            .map(|i| i + 1)
            .or_else(|| joined.find(". ").map(|i| i + 1))
            .unwrap_or(joined.len());
        let first = joined[..end].trim();
        let _ = writeln!(
            s,
            "{}\n    {}",
            f.display(),
            if first.is_empty() {
                "(no description)"
            } else {
                first
            }
        );
    }
    Ok(s)
}

/// `n` and the noun for it: "1 flow", "2 flows".
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `qossim check`.
///
/// A scenario with a `[sweep]` also has every point of its grid loaded as
/// its runs would load it: the invalid points are printed as warnings
/// (`FILE: warning: sweep point N (path=value, …) is invalid: …`) and
/// `qossim sweep` skips them; when no point is valid, that is an error
/// (exit 2), as it is for `sweep`.
pub fn check(path: &Path, overrides: &[String], deny_warnings: bool) -> Result<(), CliError> {
    let sc = scenario::load_file(path, overrides)?;
    report_warnings(&warnings(&sc), deny_warnings)?;
    let grid = check_sweep_points(path, &sc, overrides, deny_warnings)?;
    let radios: usize = sc.media.iter().map(|m| m.members.len()).sum();
    let media = match sc.media.len() {
        0 => String::new(),
        1 => format!(", 1 radio medium ({radios} radios)"),
        n => format!(", {n} radio media ({radios} radios)"),
    };
    let expects = match sc.expectations.len() {
        0 => String::new(),
        1 => ", 1 expectation".to_string(),
        n => format!(", {n} expectations"),
    };
    println!(
        "{}: ok — scenario `{}`: {}, {}{media}, {}, {}{expects}; {} + {} drain simulated{grid}",
        path.display(),
        sc.name,
        plural(sc.nodes.len(), "node", "nodes"),
        plural(sc.links.len(), "link", "links"),
        plural(sc.flows.len(), "flow", "flows"),
        plural(sc.events.len(), "event", "events"),
        sc.duration,
        sc.drain
    );
    Ok(())
}

/// `check`'s part for a `[sweep]`: load every point, warn about the
/// invalid ones, fail when none is valid; returns the text for the `ok`
/// line (`; sweep: 27 points × 3 replications, 4 points invalid`).
fn check_sweep_points(
    path: &Path,
    sc: &Scenario,
    overrides: &[String],
    deny_warnings: bool,
) -> Result<String, CliError> {
    let Some(sw) = &sc.sweep else {
        return Ok(String::new());
    };
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::file_only(&origin, format!("cannot read scenario file: {e}"))
    })?;
    let runs = crate::sweep::expand(sc);
    let points = runs.last().map_or(0, |r| r.point as usize + 1);
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let (invalid, warned) = crate::sweep::screen_points(
        &text,
        &origin,
        base_dir,
        overrides,
        &runs,
        " (`qossim sweep` skips it)",
    )?;
    report_warnings(&warned, deny_warnings)?;
    let mut s = format!(
        "; sweep: {} × {}",
        plural(points, "point", "points"),
        plural(sw.replications as usize, "replication", "replications")
    );
    if !invalid.is_empty() {
        s.push_str(&format!(
            ", {} invalid",
            plural(invalid.len(), "point", "points")
        ));
    }
    Ok(s)
}

/// Arguments of `qossim sweep`.
#[derive(Debug, Default, Clone)]
pub struct SweepRequest {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub jobs: usize,
    pub resume: bool,
    pub shard: Option<String>,
    pub pcap_runs: Vec<u64>,
    pub overrides: Vec<String>,
    pub quiet: bool,
    /// Run the spec-oracle monitors in every run (`--check`).
    pub check: bool,
    /// Exit 2 when the scenario warns (`--deny-warnings`).
    pub deny_warnings: bool,
    /// Remove another command's or scenario's outputs from the results
    /// directory instead of refusing it.
    pub force: bool,
}

/// Lines of the table a sweep prints at its end (`summary.csv` has all).
const SWEEP_SUMMARY_LINES: usize = 200;

/// `qossim sweep`.
pub fn sweep(req: &SweepRequest) -> Result<(), CliError> {
    use crate::sweep::{parse_shard, run_sweep, SweepError, SweepOptions};
    let shard = match &req.shard {
        Some(s) => Some(parse_shard(s).map_err(SweepError::BadOption)?),
        None => None,
    };
    // the base point's warnings (each point is checked when it loads)
    let sc = scenario::load_file(&req.scenario, &req.overrides)?;
    report_warnings(&warnings(&sc), req.deny_warnings)?;
    let out_dir = match &req.out {
        Some(o) => o.clone(),
        None => Path::new("results").join(crate::run::file_safe(&sc.name)),
    };
    let r = run_sweep(
        &req.scenario,
        &req.overrides,
        &SweepOptions {
            out_dir: out_dir.clone(),
            jobs: req.jobs,
            resume: req.resume,
            shard,
            quiet: req.quiet,
            pcap_runs: req.pcap_runs.clone(),
            check: req.check,
            force: req.force,
            deny_warnings: req.deny_warnings,
        },
    )?;
    if !req.quiet {
        let invalid = if r.invalid.is_empty() {
            String::new()
        } else {
            format!(
                "; {} invalid points ({} runs) skipped",
                r.invalid.len(),
                r.invalid_runs
            )
        };
        let failed = if r.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", r.failed.len())
        };
        println!(
            "sweep: {} runs in the grid, {} run now{failed}, {} already done{invalid}; {:.2} s",
            r.total_runs, r.executed, r.skipped, r.wall_s
        );
        if r.combined {
            print!(
                "{}",
                crate::sweep::summary_text(&r.rows, SWEEP_SUMMARY_LINES)
            );
            println!(
                "results: {}/ (runs.csv, summary.csv, messages.csv, charts, manifest.json, report.html, runs/)",
                out_dir.display()
            );
        } else if shard.is_some() {
            println!(
                "shard results: {}/runs/ — combine the shards with `qossim merge`",
                out_dir.display()
            );
        }
    }
    let ran = r.executed + r.skipped;
    match r.failure(&out_dir, ran) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `qossim merge`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(), CliError> {
    let (id, n) = crate::sweep::merge(dirs, out)?;
    println!(
        "merged {n} runs of `{}` from {} directories into {}/",
        id.scenario,
        dirs.len(),
        out.display()
    );
    Ok(())
}

/// `qossim plot`.
pub fn plot(dir: &Path) -> Result<(), CliError> {
    let files = crate::report::charts::write_charts(dir)?;
    // the page inlines the charts: redraw it with them
    crate::report::html::write_report(dir).map_err(|e| {
        crate::report::charts::ChartError::Write(dir.join("report.html"), e.to_string())
    })?;
    println!(
        "{} chart files in {}/charts/, report.html",
        files.len(),
        dir.display()
    );
    Ok(())
}

/// Arguments of `qossim gateway`.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// UDP address served (`HOST:PORT`).
    pub listen: String,
    /// The MQTT broker (`HOST:PORT`).
    pub broker: String,
    pub mode: crate::proto::mqttsn::GatewayMode,
    /// `ID=TOPIC` predefined topic ids.
    pub predefined: Vec<String>,
    /// Keep alive of the gateway's MQTT connections, seconds.
    pub keep_alive: u16,
    /// MQTT client id of the aggregating connection.
    pub client_id: String,
    pub max_clients: usize,
    /// Longest topic name a client may use (`GatewayConfig::max_topic_len`).
    pub max_topic_len: usize,
    pub gw_id: u8,
}

impl Default for GatewayRequest {
    fn default() -> Self {
        GatewayRequest {
            listen: "127.0.0.1:1883".into(),
            broker: "127.0.0.1:1883".into(),
            mode: crate::proto::mqttsn::GatewayMode::Aggregating,
            predefined: Vec::new(),
            keep_alive: 60,
            client_id: "qossim-gw".into(),
            max_clients: 10_000,
            max_topic_len: 256,
            gw_id: 1,
        }
    }
}

/// Largest MQTT packet the gateway's upstream connections accept from the
/// broker: an MQTT-SN message is at most 65 535 octets, so nothing larger
/// can be relayed (and a connection's input buffer stays bounded).
const GATEWAY_MAX_MQTT_PACKET: usize = 128 * 1024;
/// Publishes an upstream connection queues while it is down.
const GATEWAY_MAX_UPSTREAM_QUEUE: usize = 1000;

fn resolve(what: &str, s: &str) -> Result<std::net::SocketAddr, CliError> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| CliError::BadArgument(format!("--{what} {s:?}: {why}"));
    let mut addrs = s
        .to_socket_addrs()
        .map_err(|e| bad(format!("not an address (HOST:PORT): {e}")))?;
    addrs
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// `--listen` of a served command (`cmd`, e.g. "qossim broker"): an IPv4
/// `HOST:PORT` (port 0: any free port); `example` shows one.
fn listen_v4(s: &str, cmd: &str, example: &str) -> Result<std::net::SocketAddrV4, CliError> {
    match resolve("listen", s)? {
        std::net::SocketAddr::V4(a) => Ok(a),
        std::net::SocketAddr::V6(a) => Err(CliError::BadArgument(format!(
            "--listen {s:?}: {a} is IPv6; {cmd} serves IPv4 only (e.g. {example})"
        ))),
    }
}

/// The writer of a served command's `--log`: stdout for `-`, else the
/// file `target` (created or truncated), written line by line.
fn open_log(target: &str) -> std::io::Result<Box<dyn std::io::Write + Send>> {
    if target == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let f = std::fs::File::create(target)?;
    Ok(Box::new(std::io::LineWriter::new(f)))
}

/// Parse `ID=TOPIC` options: ids 1–65534 (0x0000 and 0xFFFF are reserved,
/// MQTT-SN 1.2 §5.3.11), each once; topic names without wildcards.
pub fn parse_predefined(items: &[String]) -> Result<Vec<(u16, String)>, CliError> {
    let mut out: Vec<(u16, String)> = Vec::new();
    for item in items {
        let bad = |why: &str| CliError::BadArgument(format!("--predefined {item:?}: {why}"));
        let (id, topic) = item
            .split_once('=')
            .ok_or_else(|| bad("expected ID=TOPIC"))?;
        let id: u16 = id
            .trim()
            .parse()
            .map_err(|_| bad("the id is not a number in 1..=65534"))?;
        if id == 0 || id == u16::MAX {
            return Err(bad("ids 0 and 65535 are reserved (MQTT-SN 1.2 §5.3.11)"));
        }
        if crate::proto::mqtt::TopicName::new(topic).is_err() {
            return Err(bad("not a topic name (empty, or with + or #)"));
        }
        if out.iter().any(|(i, _)| *i == id) {
            return Err(bad("this id is given twice"));
        }
        out.push((id, topic.to_string()));
    }
    Ok(out)
}

/// The addresses and gateway configuration `req` asks for.
pub fn gateway_config(
    req: &GatewayRequest,
) -> Result<
    (
        std::net::SocketAddr,
        std::net::SocketAddr,
        crate::proto::mqttsn::GatewayConfig,
    ),
    CliError,
> {
    use crate::proto::mqttsn::GatewayConfig;
    let listen = resolve("listen", &req.listen)?;
    let broker = resolve("broker", &req.broker)?;
    if req.client_id.is_empty() || req.client_id.len() > 23 {
        return Err(CliError::BadArgument(format!(
            "--client-id {:?}: 1 to 23 characters (MQTT 3.1.1 §3.1.3.1)",
            req.client_id
        )));
    }
    if req.max_clients == 0 {
        return Err(CliError::BadArgument(
            "--max-clients must be at least 1".into(),
        ));
    }
    let mut upstream = crate::proto::mqtt::ClientConfig::new(req.client_id.clone());
    upstream.keep_alive = req.keep_alive;
    upstream.max_packet_size = GATEWAY_MAX_MQTT_PACKET;
    upstream.max_queued = GATEWAY_MAX_UPSTREAM_QUEUE;
    let config = GatewayConfig {
        gw_id: req.gw_id,
        mode: req.mode,
        port: listen.port(),
        max_clients: req.max_clients,
        max_topic_len: req.max_topic_len,
        predefined: parse_predefined(&req.predefined)?,
        upstream,
        ..GatewayConfig::default()
    };
    Ok((listen, broker, config))
}

/// Set by SIGINT / SIGTERM while `qossim gateway`, `qossim broker` or
/// `qossim coap-server` serves.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT and SIGTERM set [`STOP`] instead of killing the process. No
/// SA_RESTART: a blocking wait returns at once (every wait is bounded
/// anyway).
fn install_stop_signals() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sa` is a zeroed `sigaction` (a valid value: empty mask,
        // no flags) whose handler is an `extern "C" fn(c_int)` that only
        // stores to a static atomic; `sigaction` reads it and writes no
        // old action (null).
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `qossim gateway`: serve until SIGINT or SIGTERM, then close the broker
/// connections and print the counters.
pub fn gateway(req: &GatewayRequest) -> Result<(), CliError> {
    use crate::proto::mqttsn::socket::{GatewayDriver, GatewayIoConfig, SocketError};
    use std::time::{Duration, Instant};
    let (listen, broker, config) = gateway_config(req)?;
    let mode = config.mode;
    install_stop_signals().map_err(SocketError::Io)?;
    let d = GatewayDriver::bind_with(listen, broker, config, GatewayIoConfig::default())?;
    let local = d.local_addr();
    let upstream = match mode {
        crate::proto::mqttsn::GatewayMode::Integrated => "no broker: integrated".to_string(),
        m => format!("MQTT broker tcp {broker}, {} mode", mode_name(m)),
    };
    let bcast = match d.transport().broadcast() {
        Some(ip) => format!("broadcasts to {ip}"),
        None => "broadcasts (ADVERTISE, GWINFO) not sent here".into(),
    };
    println!("qossim gateway: MQTT-SN on udp {local} → {upstream}; {bcast}; Ctrl-C stops");
    let started = Instant::now();
    let t = d.spawn();
    while !STOP.load(std::sync::atomic::Ordering::SeqCst) && !t.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = t.stop()?;
    print!("{}", gateway_summary(&d.snapshot(), started.elapsed()));
    Ok(())
}

fn mode_name(m: crate::proto::mqttsn::GatewayMode) -> &'static str {
    use crate::proto::mqttsn::GatewayMode;
    match m {
        GatewayMode::Transparent => "transparent",
        GatewayMode::Aggregating => "aggregating",
        GatewayMode::Integrated => "integrated",
    }
}

/// The counters `qossim gateway` prints when it stops.
pub fn gateway_summary(
    s: &crate::proto::mqttsn::socket::GatewaySnapshot,
    elapsed: std::time::Duration,
) -> String {
    let (g, io) = (&s.gateway, &s.io);
    format!(
        "qossim gateway: stopped after {:.1} s\n\
         mqtt-sn: {} datagrams in ({} B), {} out ({} B); {} malformed, {} ignored, {} from unusable sources, {} broadcasts dropped, {} send errors\n\
         clients: {} connects, {} refused, {} with a session; {} registrations, {} topics too long; {} publishes received, {} delivered; {} dropped; {} retransmissions, {} give-ups; {} keep-alive timeouts\n\
         upstream: {} connections opened, {} connect failures, {} refused, {} lost, {} closed for backlog, {} closed by the gateway; {} B sent, {} B received\n",
        elapsed.as_secs_f64(),
        io.datagrams_received,
        io.bytes_received,
        io.datagrams_sent,
        io.bytes_sent,
        g.decode_errors,
        g.ignored,
        io.sources_dropped,
        io.broadcasts_dropped,
        io.send_errors,
        g.connects,
        g.connects_refused,
        s.clients,
        g.registrations,
        g.topics_too_long,
        g.publishes_received,
        g.publishes_delivered,
        g.dropped + g.dropped_queue_full + g.dropped_asleep,
        g.retransmissions,
        g.give_ups,
        g.keep_alive_timeouts,
        io.upstream_connects,
        io.upstream_connect_failures,
        io.upstream_refused,
        io.upstream_lost,
        io.upstream_overflows,
        io.upstream_closes,
        io.upstream_bytes_sent,
        io.upstream_bytes_received,
    )
}
