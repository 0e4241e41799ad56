//! Time-series charts of a single run, from `timeseries.csv` and
//! `events.csv`: delivery ratio, latency p99 and bytes on the wire of the
//! messages sent in each interval, one line per flow (in the flow's colour
//! and marker of every other chart of the directory, named as there), with
//! every scenario event drawn as a labelled vertical marker on the time
//! axis. Written as `charts/timeseries_<metric>.svg` and `.png`; `qossim
//! plot` redraws them.

use super::chart_style::{
    decimals, draw_legend, draw_marker, fixed, font, legend_width, px, Entry, Key, SeriesStyle,
    Styles,
};
use super::charts::{read_table, render_both, write_pair, ChartError, FAMILY, RATIO_TOP};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metrics charted over time: (column, file name part, axis title, ratio).
const METRICS: [(&str, &str, &str, bool); 3] = [
    ("delivery_ratio", "delivery_ratio", "Delivery ratio", true),
    (
        "latency_ms_p99",
        "latency_ms_p99",
        "Latency p99 (ms)",
        false,
    ),
    (
        "bytes_on_wire",
        "bytes_on_wire",
        "Bytes on the wire per interval (B)",
        false,
    ),
];

/// A flow's line: label, style and points (t in s, value), in time order;
/// `None` where the interval has no value (a gap in the line).
type Line = (String, SeriesStyle, Vec<(f64, Option<f64>)>);

#[allow(clippy::too_many_arguments)]
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    s: f64,
    title: &str,
    y_name: &str,
    lines: &[Line],
    events: &[(f64, String)],
    ratio: bool,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let entries: Vec<Entry> = lines
        .iter()
        .map(|l| Entry {
            label: l.0.clone(),
            style: l.1,
            key: Key::LineMarker,
        })
        .collect();
    let lw = legend_width(&root, &entries, s);
    let (plot, leg) = root.split_horizontally(root.dim_in_pixel().0 - lw);
    let xs = lines.iter().flat_map(|l| l.2.iter().map(|p| p.0));
    let x1 = xs.fold(1.0f64, f64::max);
    let y1 = lines
        .iter()
        .flat_map(|l| l.2.iter().filter_map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y1 = if ratio {
        RATIO_TOP
    } else if y1 <= 0.0 {
        1.0
    } else {
        y1 * 1.08
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(s, 20.0))
        .margin(px(s, 16.0))
        .x_label_area_size(px(s, 48.0))
        .y_label_area_size(px(s, 72.0))
        .build_cartesian_2d(0.0..x1, 0.0..y1)?;
    let (dx, dy) = (decimals(0.0, x1, 10), decimals(0.0, y1, 8));
    chart
        .configure_mesh()
        .max_light_lines(0)
        .x_labels(10)
        .y_labels(8)
        .x_desc("Time (s)")
        .y_desc(y_name)
        .x_label_formatter(&|v| fixed(*v, dx))
        .y_label_formatter(&|v| {
            if ratio && *v > 1.0 + 1e-9 {
                String::new()
            } else {
                fixed(*v, dy)
            }
        })
        .label_style(font(s, 14.0))
        .axis_desc_style(font(s, 16.0))
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
            (FAMILY, 12.0 * s).into_font().color(&grey),
        )))?;
    }
    let mut marks = Vec::new();
    for (_, style, pts) in lines {
        // a line per run of consecutive defined points
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in pts {
            match y {
                Some(y) => runs.last_mut().expect("non-empty").push((x, y)),
                None if !runs.last().expect("non-empty").is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        // a marker every tenth of the defined points, so lines differ in grey
        let defined: Vec<(f64, f64)> = runs.iter().flatten().copied().collect();
        let every = (defined.len() / 10).max(1);
        for p in defined.iter().step_by(every) {
            marks.push((chart.backend_coord(p), *style));
        }
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            chart.draw_series(LineSeries::new(
                run,
                style.color.stroke_width(px(s, 2.0) as u32),
            ))?;
        }
    }
    for (p, st) in marks {
        draw_marker(&root, p, st, s)?;
    }
    draw_legend(&leg, &entries, s)?;
    root.present()?;
    Ok(())
}

/// Write the time-series charts of `dir` (nothing when it has no
/// `timeseries.csv`); returns the files written.
pub(crate) fn write_timeseries_charts(
    dir: &Path,
    styles: &Styles,
) -> Result<Vec<PathBuf>, ChartError> {
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
    for (column, file, y_name, ratio) in METRICS {
        let Some(c) = col(column) else { continue };
        let mut by_flow: BTreeMap<usize, (usize, Line)> = BTreeMap::new();
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
                .or_insert_with(|| match styles.by_flow(flow) {
                    Some(id) => (
                        styles.index(id),
                        (styles.label(id), styles.style(id), Vec::new()),
                    ),
                    None => (
                        usize::MAX,
                        (flow.clone(), styles.style_unknown(), Vec::new()),
                    ),
                })
                .1
                 .2
                .push((t, v));
        }
        // in the directory's series order, as on every other chart
        let mut lines: Vec<(usize, Line)> = by_flow.into_values().collect();
        lines.sort_by_key(|l| l.0);
        let lines: Vec<Line> = lines.into_iter().map(|l| l.1).collect();
        if lines.is_empty() {
            continue;
        }
        let title = format!("{y_name} over time");
        let name = format!("timeseries_{file}");
        let rendered: Result<(String, Vec<u8>), String> =
            (|| render_both!(|root, s| draw(root, s, &title, y_name, &lines, &events, ratio)))();
        let (svg, png) = rendered.map_err(|e| ChartError::Write(out_dir.join(&name), e))?;
        write_pair(
            &out_dir,
            &name,
            &title,
            "timeseries",
            &svg,
            &png,
            &mut written,
        )?;
    }
    Ok(written)
}
