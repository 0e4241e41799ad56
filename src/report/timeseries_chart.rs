//! Time-series charts of a single run, from `timeseries.csv` and
//! `events.csv`: delivery ratio, latency p99 and bytes on the wire of the
//! messages sent in each interval, one line per flow, with every scenario
//! event drawn as a labelled vertical marker on the time axis. Written as
//! `charts/timeseries_<metric>.svg` and `.png`; `qossim plot` redraws them.

use super::charts::{encode_png, read_table, render_both, ChartError, FAMILY, PALETTE, SIZE};
use crate::report::atomic::write_atomic_unsynced;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metrics charted over time: (column, file name part, axis title).
const METRICS: [(&str, &str, &str); 3] = [
    ("delivery_ratio", "delivery_ratio", "delivery ratio"),
    ("latency_ms_p99", "latency_ms_p99", "latency p99 (ms)"),
    (
        "bytes_on_wire",
        "bytes_on_wire",
        "bytes on the wire per interval",
    ),
];

/// A flow's points: (t in s, value), in time order; `None` where the
/// interval has no value (a gap in the line).
type Line = (String, Vec<(f64, Option<f64>)>);

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_name: &str,
    lines: &[Line],
    events: &[(f64, String)],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xs = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0));
    let x1 = xs.fold(1.0f64, f64::max);
    let y1 = lines
        .iter()
        .flat_map(|l| l.1.iter().filter_map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x1, 0.0..y1)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_name)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    for (i, (t, label)) in events.iter().enumerate() {
        let grey = RGBColor(120, 120, 120);
        // labels of nearby events on staggered rows so they do not overlap
        let row = (i % 4) as f64;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*t, 0.0), (*t, y1)],
            grey.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*t, y1 * (0.99 - 0.045 * row)),
            (FAMILY, 12).into_font().color(&grey),
        )))?;
    }
    for (i, (label, pts)) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // a line per run of consecutive defined points
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in pts {
            match y {
                Some(y) => runs.last_mut().expect("non-empty").push((x, y)),
                None if !runs.last().expect("non-empty").is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        let mut first = true;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let s = chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
            if first {
                s.label(label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
                first = false;
            }
        }
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Write the time-series charts of `dir` (nothing when it has no
/// `timeseries.csv`); returns the files written.
pub(crate) fn write_timeseries_charts(dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    let path = dir.join("timeseries.csv");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let t = read_table(&path)?;
    let rows = &t.rows;
    let col = |n: &str| t.col(n);
    let (Some(c_flow), Some(c_t), Some(c_run)) = (col("flow"), col("t_ms"), col("run_id")) else {
        return Err(ChartError::Format(
            path,
            "missing flow, t_ms or run_id".into(),
        ));
    };
    let mut events: Vec<(f64, String)> = Vec::new();
    let ev_path = dir.join("events.csv");
    if ev_path.is_file() {
        let ev = read_table(&ev_path)?;
        if let (Some(t), Some(a), Some(g)) = (ev.col("t_ms"), ev.col("action"), ev.col("target")) {
            for r in &ev.rows {
                if let Ok(ms) = r[t].parse::<f64>() {
                    events.push((ms / 1000.0, format!("{} {}", r[a], r[g]).trim().to_string()));
                }
            }
        }
    }
    let out_dir = dir.join("charts");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| ChartError::Write(out_dir.clone(), e.to_string()))?;
    let mut written = Vec::new();
    // one run per directory: the first run id present
    let run = rows.first().map(|r| r[c_run].clone()).unwrap_or_default();
    for (column, file, y_name) in METRICS {
        let Some(c) = col(column) else { continue };
        let mut by_flow: BTreeMap<usize, Line> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for r in rows.iter().filter(|r| r[c_run] == run) {
            let flow = &r[c_flow];
            let i = match order.iter().position(|f| f == flow) {
                Some(i) => i,
                None => {
                    order.push(flow.clone());
                    order.len() - 1
                }
            };
            let t = r[c_t].parse::<f64>().unwrap_or(0.0) / 1000.0;
            let v = r[c].parse::<f64>().ok().filter(|v| v.is_finite());
            by_flow
                .entry(i)
                .or_insert_with(|| (flow.clone(), Vec::new()))
                .1
                .push((t, v));
        }
        let lines: Vec<Line> = by_flow.into_values().collect();
        if lines.is_empty() {
            continue;
        }
        let title = format!("{y_name} over time");
        let name = format!("timeseries_{file}");
        let rendered: Result<(String, Vec<u8>), String> =
            (|| render_both!(|root| draw(root, &title, y_name, &lines, &events)))();
        let (svg, png) = rendered.map_err(|e| ChartError::Write(out_dir.join(&name), e))?;
        for (ext, bytes) in [("svg", svg.into_bytes()), ("png", png)] {
            let p = out_dir.join(format!("{name}.{ext}"));
            write_atomic_unsynced(&p, &bytes)
                .map_err(|e| ChartError::Write(p.clone(), e.to_string()))?;
            written.push(p);
        }
    }
    Ok(written)
}
