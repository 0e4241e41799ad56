//! One run of a scenario from start to files: build the world, run it, write
//! `runs.csv`, `summary.csv`, `messages.csv`, optional `packets.csv` and
//! pcaps, and `manifest.json`, each atomically.

use crate::metrics::summary::{write_runs, write_summary, RunRow};
use crate::report::atomic::{write_atomic, AtomicFile};
use crate::report::pcap::PcapWriter;
use crate::scenario::model::Scenario;
use crate::world::{Outputs, RunOutcome, World};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[cfg(feature = "native")]
pub mod expect;

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub packets: bool,
    pub pcap: bool,
    /// fsync the streamed files (messages.csv, packets.csv, pcaps) before
    /// renaming them into place; a sweep's redoable fragments skip it.
    pub fsync: bool,
    /// The protocol plug-ins (None: the built-in ones).
    pub registry: Option<std::sync::Arc<crate::world::apps::Registry>>,
    /// Run the spec-oracle monitors (`--check`; also on when the scenario
    /// expects `violations`): `violations.csv` and the runs.csv column.
    pub check: bool,
    /// Write `trace.csv` (`--trace`, docs/traces.md), keeping the rows of
    /// these nodes and flows.
    pub trace: Option<crate::world::trace::TraceOptions>,
}

/// A finished run, for the CLI's summary.
#[cfg(feature = "native")]
pub struct RunReport {
    pub rows: Vec<RunRow>,
    pub events: u64,
    pub wall_s: f64,
    pub sim_end_s: f64,
    pub files: Vec<PathBuf>,
    /// The scenario's `[[expect]]` tables, evaluated (`None` when it has
    /// none).
    pub expectations: Option<expect::Evaluation>,
}

/// Errors of a run: everything here is I/O (the scenario was validated).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot write results in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `run_in_memory` stopped at its event limit.
    #[error("the scenario needs more than {0} events, this build's limit: shorten `duration` or lower the counts")]
    TooLarge(u64),
}

pub use crate::report::file_safe;

/// The rows of `runs.csv` for one finished run.
pub fn run_rows(
    sc: &Scenario,
    run_id: u64,
    replication: u64,
    params: &[(String, String)],
    out: &RunOutcome,
) -> Vec<RunRow> {
    let columns: std::sync::Arc<[String]> = out.columns.iter().map(|c| c.to_string()).collect();
    sc.flows
        .iter()
        .zip(&out.metrics)
        .map(|(f, metrics)| RunRow {
            run_id,
            scenario: sc.name.clone(),
            seed: sc.seed,
            replication,
            protocol: f.protocol.as_str().to_string(),
            reliability: f.reliability.as_str().to_string(),
            flow: f.name.clone(),
            pattern: f.pattern.as_str().to_string(),
            params: params.to_vec(),
            columns: columns.clone(),
            metrics: metrics.clone(),
        })
        .collect()
}

/// What one simulated run left behind.
pub struct Executed {
    pub rows: Vec<RunRow>,
    pub events: u64,
    pub wall_s: f64,
    pub end: crate::sim::SimTime,
    /// Files written (messages.csv, packets.csv, pcap/).
    pub files: Vec<PathBuf>,
}

/// Simulate `sc` once as run `run_id` and write its streamed outputs
/// (messages.csv, and packets.csv / pcap/ when asked) into `opts.out_dir`,
/// atomically; stale optional outputs from an earlier run there are removed.
pub fn execute(
    sc: &Scenario,
    run_id: u64,
    replication: u64,
    params: &[(String, String)],
    opts: &RunOptions,
) -> Result<Executed, RunError> {
    let dir = opts.out_dir.clone();
    let io_err = |source: io::Error| RunError::Io {
        dir: dir.clone(),
        source,
    };
    fs::create_dir_all(&dir).map_err(io_err)?;
    let started = Instant::now();
    let create = |p: &Path| {
        if opts.fsync {
            AtomicFile::create(p)
        } else {
            AtomicFile::create_unsynced(p)
        }
    };
    let mut outputs = Outputs {
        messages: Some(Box::new(create(&dir.join("messages.csv")).map_err(io_err)?)),
        check: opts.check,
        ..Default::default()
    };
    if opts.packets {
        outputs.packets = Some(Box::new(create(&dir.join("packets.csv")).map_err(io_err)?));
    }
    if let Some(t) = &opts.trace {
        let filter = crate::world::trace::TraceFilter::resolve(sc, t)
            .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let sink: Box<dyn crate::metrics::sink::Sink> =
            Box::new(create(&dir.join("trace.csv")).map_err(io_err)?);
        outputs.trace = Some((sink, filter));
    }
    let pcap_dir = dir.join("pcap");
    if opts.pcap {
        fs::create_dir_all(&pcap_dir).map_err(io_err)?;
        let wired = if sc.protocols.ip.plan().is_v6() {
            crate::report::pcap::LINKTYPE_IPV6
        } else {
            crate::report::pcap::LINKTYPE_IPV4
        };
        for l in &sc.links {
            let f =
                create(&pcap_dir.join(format!("{}.pcap", file_safe(&l.name)))).map_err(io_err)?;
            outputs.pcaps.push(Box::new(
                PcapWriter::with_linktype(f, wired).map_err(io_err)?,
            ));
        }
        // then one per radio medium: 802.15.4 frames with FCS (world::radio)
        for m in &sc.media {
            let f =
                create(&pcap_dir.join(format!("{}.pcap", file_safe(&m.name)))).map_err(io_err)?;
            let lt = crate::report::pcap::LINKTYPE_IEEE802_15_4_WITHFCS;
            outputs
                .pcaps
                .push(Box::new(PcapWriter::with_linktype(f, lt).map_err(io_err)?));
        }
    }
    let world = match &opts.registry {
        Some(r) => World::with_registry(sc, run_id, outputs, r),
        None => World::new(sc, run_id, outputs),
    }
    .map_err(io_err)?;
    let out = world.run().map_err(io_err)?;
    let wall_s = started.elapsed().as_secs_f64();
    let rows = run_rows(sc, run_id, replication, params, &out);
    let RunOutcome {
        messages,
        packets,
        trace,
        pcaps,
        events,
        end,
        connections,
        tables,
        absent_tables,
        series,
        links,
        nodes,
        radio,
        processing,
        violations,
        ..
    } = out;
    let mut files = Vec::new();
    let write = |path: &Path, buf: &[u8]| {
        if opts.fsync {
            write_atomic(path, buf)
        } else {
            crate::report::atomic::write_atomic_unsynced(path, buf)
        }
    };
    // per-element tables and time series
    {
        use crate::metrics::timeseries as ts;
        let names: Vec<String> = sc.nodes.iter().map(|n| n.name.clone()).collect();
        let media: Vec<String> = radio.media.iter().map(|(n, _)| n.clone()).collect();
        let mut table = |name: &str, f: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
            let path = dir.join(name);
            let mut buf = Vec::new();
            f(&mut buf)
                .and_then(|()| write(&path, &buf))
                .map_err(io_err)?;
            files.push(path);
            Ok::<(), RunError>(())
        };
        table("links.csv", &|b| {
            ts::write_links(b, run_id, &links, &sc.links, &names, end.0, &radio)
        })?;
        table("nodes.csv", &|b| {
            ts::write_nodes(b, run_id, sc, &nodes, &radio, &processing)
        })?;
        table("events.csv", &|b| ts::write_events(b, run_id, sc))?;
        let optional = [
            "timeseries.csv",
            "timeseries_links.csv",
            "timeseries_tcp.csv",
        ];
        let wanted = [
            series.is_some(),
            series
                .as_ref()
                .is_some_and(|s| !s.links.is_empty() || !s.media.is_empty()),
            series.as_ref().is_some_and(|s| !s.tcp.is_empty()),
        ];
        for (name, on) in optional.iter().zip(wanted) {
            if !on {
                remove_stale(&dir.join(name)).map_err(io_err)?;
            }
        }
        if let Some(s) = &series {
            table(optional[0], &|b| {
                ts::write_flow_series(b, run_id, sc, s, end.0)
            })?;
            if wanted[1] {
                table(optional[1], &|b| {
                    ts::write_link_series(b, run_id, (&links, &sc.links), &names, &media, s, end.0)
                })?;
            }
            if wanted[2] {
                table(optional[2], &|b| {
                    ts::write_tcp_series(b, run_id, &connections, &names, s, end.0)
                })?;
            }
        }
    }
    // the plug-ins' extra tables (mqtt.csv, …)
    for name in absent_tables {
        remove_stale(&dir.join(name)).map_err(io_err)?;
    }
    for t in tables {
        let path = dir.join(t.file);
        write(&path, t.csv.as_bytes()).map_err(io_err)?;
        files.push(path);
    }
    let conn_path = dir.join("connections.csv");
    if connections.is_empty() {
        remove_stale(&conn_path).map_err(io_err)?;
    } else {
        let flows: Vec<String> = sc.flows.iter().map(|f| f.name.clone()).collect();
        let nodes: Vec<String> = sc.nodes.iter().map(|n| n.name.clone()).collect();
        let mut buf = Vec::new();
        crate::metrics::connections::write_connections(
            &mut buf,
            run_id,
            &connections,
            &flows,
            &nodes,
        )
        .map_err(io_err)?;
        write(&conn_path, &buf).map_err(io_err)?;
        files.push(conn_path);
    }
    // the spec-oracle monitors' findings (docs/checks.md), when they ran
    let viol_path = dir.join("violations.csv");
    match &violations {
        Some(r) => {
            let names: Vec<String> = sc.nodes.iter().map(|n| n.name.clone()).collect();
            let mut buf = Vec::new();
            r.write_csv(&mut buf, run_id, &names).map_err(io_err)?;
            write(&viol_path, &buf).map_err(io_err)?;
            files.push(viol_path);
        }
        None => remove_stale(&viol_path).map_err(io_err)?,
    }
    if let Some(m) = messages {
        m.commit().map_err(io_err)?;
        files.push(dir.join("messages.csv"));
    }
    match packets {
        Some(p) => {
            p.commit().map_err(io_err)?;
            files.push(dir.join("packets.csv"));
        }
        None => remove_stale(&dir.join("packets.csv")).map_err(io_err)?,
    }
    match trace {
        Some(t) => {
            t.commit().map_err(io_err)?;
            files.push(dir.join("trace.csv"));
        }
        None => remove_stale(&dir.join("trace.csv")).map_err(io_err)?,
    }
    remove_stale_diagrams(&dir).map_err(io_err)?;
    if pcaps.is_empty() {
        if pcap_dir.is_dir() {
            fs::remove_dir_all(&pcap_dir).map_err(io_err)?;
        }
    } else {
        for w in pcaps {
            w.commit().map_err(io_err)?;
        }
        files.push(pcap_dir.clone());
    }
    Ok(Executed {
        rows,
        events,
        wall_s,
        end,
        files,
    })
}

/// Write `runs.csv` and `summary.csv` for `rows` into `dir`, atomically.
pub fn write_tables(dir: &Path, rows: &[RunRow]) -> io::Result<()> {
    let mut buf = Vec::new();
    write_runs(rows, &mut buf)?;
    write_atomic(&dir.join("runs.csv"), &buf)?;
    buf.clear();
    write_summary(rows, &mut buf)?;
    write_atomic(&dir.join("summary.csv"), &buf)
}

/// One run's outputs kept in memory: what the browser build returns
/// (`browser`, docs/tutorial.md "In the browser").
#[derive(Debug, Clone, Default)]
pub struct MemoryRun {
    /// (file name, contents) in the order written: `runs.csv`,
    /// `summary.csv`, `events.csv`, and `timeseries.csv` when the scenario
    /// samples; byte for byte what `qossim run` writes under those names.
    pub files: Vec<(String, Vec<u8>)>,
    /// Events the run handled.
    pub events: u64,
}

/// Simulate `sc` once with no file, thread or process access, stopping
/// with an error after `event_limit` events when one is given.
pub fn run_in_memory(sc: &Scenario, event_limit: Option<u64>) -> Result<MemoryRun, RunError> {
    let io_err = |source: io::Error| RunError::Io {
        dir: PathBuf::from("(memory)"),
        source,
    };
    let outputs = Outputs {
        event_limit,
        ..Default::default()
    };
    let world = World::new(sc, 0, outputs).map_err(io_err)?;
    let out = match world.run() {
        Ok(out) => out,
        Err(e) => {
            return Err(
                match e
                    .get_ref()
                    .and_then(|x| x.downcast_ref::<crate::world::EventLimit>())
                {
                    Some(l) => RunError::TooLarge(l.0),
                    None => io_err(e),
                },
            )
        }
    };
    let rows = run_rows(sc, 0, 0, &[], &out);
    let mut files = Vec::new();
    let mut buf = Vec::new();
    write_runs(&rows, &mut buf).map_err(io_err)?;
    files.push(("runs.csv".to_string(), std::mem::take(&mut buf)));
    write_summary(&rows, &mut buf).map_err(io_err)?;
    files.push(("summary.csv".to_string(), std::mem::take(&mut buf)));
    crate::metrics::timeseries::write_events(&mut buf, 0, sc).map_err(io_err)?;
    files.push(("events.csv".to_string(), std::mem::take(&mut buf)));
    if let Some(series) = &out.series {
        crate::metrics::timeseries::write_flow_series(&mut buf, 0, sc, series, out.end.0)
            .map_err(io_err)?;
        files.push(("timeseries.csv".to_string(), buf));
    }
    Ok(MemoryRun {
        files,
        events: out.events,
    })
}

/// Hand the heap pages the finished run freed back to the system. The
/// charts are drawn on worker threads, whose allocator arenas cannot reuse
/// the main thread's free memory: without this, a 10,000-node run's freed
/// world (tens of MB, kept by glibc because live blocks sit above it) and
/// the charts' bitmaps add up in the peak RSS (`BENCHMARKS.md`, mqttsn-10k).
pub fn release_freed_heap() {
    #[cfg(all(feature = "native", target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only returns free pages of
    // glibc's own arenas to the kernel (madvise); no live block moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Simulate `sc` once and write every output into `opts.out_dir`.
#[cfg(feature = "native")]
pub fn run_scenario(sc: &Scenario, opts: &RunOptions) -> Result<RunReport, RunError> {
    let dir = opts.out_dir.clone();
    let io_err = |source: io::Error| RunError::Io {
        dir: dir.clone(),
        source,
    };
    let ex = execute(sc, 0, 0, &[], opts)?;
    write_tables(&dir, &ex.rows).map_err(io_err)?;
    let mut files = vec![dir.join("runs.csv"), dir.join("summary.csv")];
    files.extend(ex.files);
    let manifest = crate::report::manifest::manifest(sc, ex.wall_s, ex.events, ex.end);
    write_atomic(&dir.join("manifest.json"), manifest.as_bytes()).map_err(io_err)?;
    release_freed_heap();
    // one chart at a time: the charts must not outgrow the run's own peak
    // memory (ChartOptions::sequential)
    let chart_opts = crate::report::charts::ChartOptions {
        sequential: true,
        ..crate::report::charts::ChartOptions::of(sc)
    };
    crate::report::charts::write_charts_with(&dir, &chart_opts).map_err(|e| RunError::Io {
        dir: dir.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    files.push(dir.join("charts"));
    files.push(dir.join("manifest.json"));
    crate::report::html::write_report(&dir).map_err(io_err)?;
    files.push(dir.join("report.html"));
    let expectations = if sc.expectations.is_empty() {
        remove_stale(&dir.join("expectations.csv")).map_err(io_err)?;
        None
    } else {
        let ev = expect::evaluate(sc, &ex.rows, opts.registry.as_ref())?;
        ev.write(&dir, opts.fsync).map_err(io_err)?;
        files.push(dir.join("expectations.csv"));
        Some(ev)
    };
    Ok(RunReport {
        expectations,
        rows: ex.rows,
        events: ex.events,
        wall_s: ex.wall_s,
        sim_end_s: ex.end.as_secs_f64(),
        files,
    })
}

/// `qossim diagram`'s files (`diagram-*.mmd`, `diagram-*.svg`) drawn from
/// an earlier run's trace.csv no longer describe this run: removed.
fn remove_stale_diagrams(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("diagram-") && (name.ends_with(".mmd") || name.ends_with(".svg")) {
            remove_stale(&dir.join(name.as_ref()))?;
        }
    }
    Ok(())
}

fn remove_stale(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
