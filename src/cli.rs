//! What the `qossim` subcommands do, as library functions (the binary only
//! parses arguments), so tests drive exactly what users run.

use crate::run::{run_scenario, RunError, RunOptions, RunReport};
use crate::scenario::{self, model::Scenario, ScenarioError};
use std::path::{Path, PathBuf};

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
}

impl CliError {
    /// 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Scenario(_) => 2,
            CliError::Run(_) => 1,
            CliError::Sweep(e) => e.exit_code(),
            CliError::Chart(crate::report::charts::ChartError::Write(..)) => 1,
            CliError::Chart(_) => 2,
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

/// Warnings about a valid but questionable scenario (printed on stderr).
pub fn warnings(sc: &Scenario) -> Vec<String> {
    use crate::scenario::model::{Protocol, Reliability};
    let mut w = Vec::new();
    let con = sc.flows.iter().any(|f| {
        f.protocol == Protocol::Coap
            && matches!(f.reliability, Reliability::Confirmed | Reliability::Con)
    });
    if con {
        let wait = crate::proto::coap::Config::from(&sc.protocols.coap).max_transmit_wait();
        if sc.drain < wait {
            w.push(format!(
                "drain {} is shorter than CoAP MAX_TRANSMIT_WAIT {wait}: CON messages still being retransmitted when the run ends count as lost (DESIGN.md: drain ≥ the slowest give-up time)",
                sc.drain
            ));
        }
    }
    w
}

/// `qossim run`.
pub fn run(req: &RunRequest) -> Result<(), CliError> {
    let mut overrides = req.overrides.clone();
    if let Some(s) = req.seed {
        overrides.push(format!("seed={s}"));
    }
    let sc = load(req.scenario.as_deref(), &overrides)?;
    for w in warnings(&sc) {
        eprintln!("warning: {w}");
    }
    let out_dir = req
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(crate::run::file_safe(&sc.name)));
    let report = run_scenario(
        &sc,
        &RunOptions {
            out_dir: out_dir.clone(),
            packets: req.packets,
            pcap: req.pcap,
            fsync: true,
            registry: None,
        },
    )?;
    if !req.quiet {
        print!("{}", summary_text(&sc, &report, &out_dir));
    }
    Ok(())
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

/// `qossim check`.
pub fn check(path: &Path, overrides: &[String]) -> Result<(), CliError> {
    let sc = scenario::load_file(path, overrides)?;
    for w in warnings(&sc) {
        eprintln!("warning: {w}");
    }
    let radios: usize = sc.media.iter().map(|m| m.members.len()).sum();
    let media = match sc.media.len() {
        0 => String::new(),
        1 => format!(", 1 radio medium ({radios} radios)"),
        n => format!(", {n} radio media ({radios} radios)"),
    };
    println!(
        "{}: ok — scenario `{}`: {} nodes, {} links{media}, {} flows, {} events; {} + {} drain simulated",
        path.display(),
        sc.name,
        sc.nodes.len(),
        sc.links.len(),
        sc.flows.len(),
        sc.events.len(),
        sc.duration,
        sc.drain
    );
    Ok(())
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
}

/// `qossim sweep`.
pub fn sweep(req: &SweepRequest) -> Result<(), CliError> {
    use crate::sweep::{parse_shard, run_sweep, SweepError, SweepOptions};
    let shard = match &req.shard {
        Some(s) => Some(parse_shard(s).map_err(SweepError::BadOption)?),
        None => None,
    };
    let out_dir = match &req.out {
        Some(o) => o.clone(),
        None => {
            let sc = scenario::load_file(&req.scenario, &req.overrides)?;
            Path::new("results").join(crate::run::file_safe(&sc.name))
        }
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
        },
    )?;
    if !req.quiet {
        println!(
            "sweep: {} runs in the grid, {} run now, {} already done; {:.2} s",
            r.total_runs, r.executed, r.skipped, r.wall_s
        );
        if r.combined {
            println!(
                "results: {}/ (runs.csv, summary.csv, messages.csv, charts, manifest.json, report.html, runs/)",
                out_dir.display()
            );
        } else {
            println!(
                "shard results: {}/runs/ — combine the shards with `qossim merge`",
                out_dir.display()
            );
        }
    }
    Ok(())
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
