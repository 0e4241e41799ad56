//! Charts of a results directory, from `summary.csv` alone (`qossim plot`
//! regenerates them byte for byte).
//!
//! For every swept-parameter column with at least two distinct numeric
//! values (the x axis) there is one chart per key metric — delivery ratio,
//! latency p50/p95/p99 and bytes on the wire per delivered message — with one
//! series per (protocol, reliability, flow) (plus the other parameters' values
//! when several axes are swept), one point per summary row, and error bars of
//! ± the row's `_ci95` half-width. Without a numeric axis (a single run, or
//! categorical sweeps) each metric gets a dot chart with one column per series.
//!
//! Every chart is written as SVG and PNG under `charts/`. Text is drawn with
//! the embedded DejaVu Sans (assets/fonts), never a system font, and the PNG
//! is encoded by the `png` crate with fixed settings, so files are identical
//! on every machine.

use crate::report::atomic::write_atomic_unsynced;
use plotters::prelude::*;
use plotters::style::FontStyle;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "qossim-sans";
pub(crate) const SIZE: (u32, u32) = (900, 560);

/// Errors while charting.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}: {1}")]
    Write(PathBuf, String),
    #[error("{0}: not a summary.csv ({1})")]
    Format(PathBuf, String),
}

/// Metrics charted, with the axis title.
const METRICS: [(&str, &str); 5] = [
    ("delivery_ratio", "delivery ratio"),
    ("latency_ms_p50", "latency p50 (ms)"),
    ("latency_ms_p95", "latency p95 (ms)"),
    ("latency_ms_p99", "latency p99 (ms)"),
    (
        "bytes_on_wire_per_delivered",
        "bytes on the wire per delivered message (B)",
    ),
];

pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// A CSV table: header and rows of cells.
pub(crate) struct Table {
    pub(crate) head: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn col(&self, name: &str) -> Option<usize> {
        self.head.iter().position(|h| h == name)
    }
}

pub(crate) fn read_table(path: &Path) -> Result<Table, ChartError> {
    let mut rd =
        csv::Reader::from_path(path).map_err(|e| ChartError::Read(path.into(), e.to_string()))?;
    let head: Vec<String> = rd
        .headers()
        .map_err(|e| ChartError::Read(path.into(), e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for r in rd.records() {
        let r = r.map_err(|e| ChartError::Read(path.into(), e.to_string()))?;
        rows.push(r.iter().map(str::to_string).collect());
    }
    Ok(Table { head, rows })
}

/// A file-safe name.
pub(crate) fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One series: label and points (x, y, ci95).
struct Series {
    label: String,
    points: Vec<(f64, f64, Option<f64>)>,
}

/// Largest magnitude charted: plotters' tick search never ends on ranges
/// near the f64 limits (±1e308 hung `write_charts`), and no qossim metric or
/// parameter comes close, so larger cells count as not numeric.
const MAX_ABS: f64 = 1e12;

fn num(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.abs() <= MAX_ABS)
}

/// Fixed-precision axis labels (no locale, no float noise).
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

type Draw = Result<(), Box<dyn std::error::Error>>;

fn draw_xy<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_name: &str,
    y_name: &str,
    series: &[Series],
    by_series: bool,
) -> Draw
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, c) in pts {
        let c = c.unwrap_or(0.0);
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y - c);
        y1 = y1.max(y + c);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad_x = ((x1 - x0) * 0.05).max(1e-9);
    let pad_y = ((y1 - y0) * 0.08).max(1e-3);
    let y_lo = (y0 - pad_y).min(0.0f64.max(y0 - pad_y));
    // headroom for the legend (upper right, ≈ 20 px per series in a plot
    // area of ≈ 440 px), so it never hides the highest points
    let legend = ((12 + 20 * series.len()) as f64 / 440.0).min(0.6);
    let y_hi = y_lo + (y1 + pad_y - y_lo) / (1.0 - legend);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((x0 - pad_x)..(x1 + pad_x), y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .x_label_formatter(&|v: &f64| {
            // by-series charts: only whole positions are series (1-based)
            if !by_series {
                tick(v)
            } else if v.fract() == 0.0 && *v >= 1.0 && *v <= series.len() as f64 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&tick)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line: Vec<(f64, f64)> = s.points.iter().map(|&(x, y, _)| (x, y)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            line.iter()
                .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
        )?;
        chart.draw_series(s.points.iter().filter_map(|&(x, y, c)| {
            c.map(|c| ErrorBar::new_vertical(x, y - c, y, y + c, color.stroke_width(1), 8))
        }))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Layers of `bytes_on_wire`, bottom to top, with their `runs.csv` columns.
const LAYERS: [(&str, &str); 4] = [
    ("bytes_payload", "application payload"),
    ("bytes_protocol", "protocol headers"),
    ("bytes_transport_ip", "UDP/TCP and IP headers"),
    ("bytes_retransmissions", "retransmissions"),
];

/// A rendered chart: name, SVG text, PNG bytes.
type Rendered = (String, String, Vec<u8>);

/// A chart to render.
enum Job {
    Xy {
        name: String,
        title: String,
        x_name: String,
        y_name: &'static str,
        series: Vec<Series>,
        /// No numeric axis: x positions are series numbers 1..n.
        by_series: bool,
    },
    Stacked {
        name: String,
        title: String,
        x_name: String,
        bars: Vec<Bar>,
    },
}

/// One stacked bar: x and bytes per delivered message of each layer.
type Bar = (f64, [f64; 4]);

/// Stacked bars: (x, per-layer bytes per delivered message).
fn draw_stacked<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_name: &str,
    bars: &[(f64, [f64; 4])],
) -> Draw
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut xs: Vec<f64> = bars.iter().map(|b| b.0).collect();
    xs.sort_by(f64::total_cmp);
    let gap = xs
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .fold(f64::MAX, f64::min);
    let w = if gap == f64::MAX { 0.5 } else { gap * 0.35 };
    let x0 = xs.first().copied().unwrap_or(0.0) - w * 2.0;
    let x1 = xs.last().copied().unwrap_or(1.0) + w * 2.0;
    let top = bars
        .iter()
        .map(|b| b.1.iter().sum::<f64>())
        .fold(1.0f64, f64::max)
        * 1.35;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(x_name)
        .y_desc("bytes on the wire per delivered message (B)")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    for (li, (_, name)) in LAYERS.iter().enumerate() {
        let color = PALETTE[li % PALETTE.len()];
        let rects: Vec<Rectangle<(f64, f64)>> = bars
            .iter()
            .map(|(x, v)| {
                let base: f64 = v[..li].iter().sum();
                Rectangle::new([(x - w, base), (x + w, base + v[li])], color.filled())
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Encode an RGB buffer as PNG with fixed settings.
pub(crate) fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, SIZE.0, SIZE.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

/// Draw one chart twice — SVG text and PNG bytes — with `$draw`, a closure
/// taking the drawing area (a macro, since the two backends differ in type).
macro_rules! render_both {
    ($draw:expr) => {{
        let mut svg = String::new();
        ($draw)(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())
            .map_err(|e| e.to_string())?;
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        ($draw)(BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area())
            .map_err(|e| e.to_string())?;
        Ok((svg, encode_png(&rgb)?))
    }};
}
pub(crate) use render_both;

fn render_stacked(
    title: &str,
    x_name: &str,
    bars: &[(f64, [f64; 4])],
) -> Result<(String, Vec<u8>), String> {
    render_both!(|root| draw_stacked(root, title, x_name, bars))
}

/// Render the same chart as SVG text and as PNG bytes.
fn render(
    title: &str,
    x_name: &str,
    y_name: &str,
    series: &[Series],
    by_series: bool,
) -> Result<(String, Vec<u8>), String> {
    render_both!(|root| draw_xy(root, title, x_name, y_name, series, by_series))
}

/// Write every chart of `dir` (from `dir/summary.csv`) into `dir/charts/`.
pub fn write_charts(dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    register();
    let path = dir.join("summary.csv");
    let t = read_table(&path)?;
    let (Some(c_proto), Some(c_rel), Some(c_flow), Some(c_pat), Some(c_runs)) = (
        t.col("protocol"),
        t.col("reliability"),
        t.col("flow"),
        t.col("pattern"),
        t.col("runs"),
    ) else {
        return Err(ChartError::Format(path, "missing key columns".into()));
    };
    let params: Vec<usize> = (c_pat + 1..c_runs).collect();
    // numeric axes with at least two distinct values
    let axes: Vec<usize> = params
        .iter()
        .copied()
        .filter(|&c| {
            let mut vals: Vec<f64> = Vec::new();
            for r in &t.rows {
                match r.get(c).and_then(|v| num(v)) {
                    Some(v) if !vals.contains(&v) => vals.push(v),
                    Some(_) => {}
                    None => return false,
                }
            }
            vals.len() >= 2
        })
        .collect();
    let out_dir = dir.join("charts");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| ChartError::Write(out_dir.clone(), e.to_string()))?;
    let mut written = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    // parameters that vary name the series (all but the chart's x axis)
    let varying: Vec<usize> = params
        .iter()
        .copied()
        .filter(|&c| {
            t.rows
                .iter()
                .any(|r| r.get(c) != t.rows.first().and_then(|f| f.get(c)))
        })
        .collect();
    let label_of = |r: &Vec<String>, skip: Option<usize>| {
        let mut l = format!("{} {} — {}", r[c_proto], r[c_rel], r[c_flow]);
        for &p in varying.iter().filter(|&&p| Some(p) != skip) {
            l.push_str(&format!(", {}={}", t.head[p], r[p]));
        }
        l
    };
    for (metric, title) in METRICS {
        let (Some(cm), ci) = (t.col(metric), t.col(&format!("{metric}_ci95"))) else {
            continue;
        };
        let mut charts: Vec<(String, String, Vec<Series>)> = Vec::new();
        if axes.is_empty() {
            // one column per series
            let mut series = Vec::new();
            for (i, r) in t.rows.iter().enumerate() {
                if let Some(y) = r.get(cm).and_then(|v| num(v)) {
                    let c = ci.and_then(|c| r.get(c)).and_then(|v| num(v));
                    series.push(Series {
                        label: label_of(r, None),
                        points: vec![((i + 1) as f64, y, c)],
                    });
                }
            }
            charts.push((format!("{metric}_by_series"), "series".into(), series));
        }
        for &ax in &axes {
            let mut series: Vec<Series> = Vec::new();
            for r in &t.rows {
                let (Some(x), Some(y)) = (
                    r.get(ax).and_then(|v| num(v)),
                    r.get(cm).and_then(|v| num(v)),
                ) else {
                    continue;
                };
                let c = ci.and_then(|c| r.get(c)).and_then(|v| num(v));
                let label = label_of(r, Some(ax));
                match series.iter_mut().find(|s| s.label == label) {
                    Some(s) => s.points.push((x, y, c)),
                    None => series.push(Series {
                        label,
                        points: vec![(x, y, c)],
                    }),
                }
            }
            for s in &mut series {
                s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            charts.push((
                format!("{metric}_vs_{}", safe(&t.head[ax])),
                t.head[ax].clone(),
                series,
            ));
        }
        for (name, x_name, series) in charts {
            jobs.push(Job::Xy {
                name,
                title: format!("{title} vs {x_name}"),
                x_name,
                y_name: title,
                series,
                by_series: axes.is_empty(),
            });
        }
    }
    // bytes per delivered message, stacked by layer: one chart per series
    // (per axis, or by series without one); ratio of the runs' means
    let layer_cols: Vec<Option<usize>> = LAYERS.iter().map(|(c, _)| t.col(c)).collect();
    if let (Some(cd), true) = (t.col("delivered"), layer_cols.iter().all(Option::is_some)) {
        let per_delivered = |r: &Vec<String>| -> Option<[f64; 4]> {
            let d = r.get(cd).and_then(|v| num(v)).filter(|d| *d > 0.0)?;
            let mut v = [0.0; 4];
            for (k, c) in layer_cols.iter().enumerate() {
                v[k] = c.and_then(|c| r.get(c)).and_then(|x| num(x))? / d;
            }
            Some(v)
        };
        let mut stacked: Vec<(String, String, Vec<Bar>)> = Vec::new();
        if axes.is_empty() {
            let bars: Vec<(f64, [f64; 4])> = t
                .rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| per_delivered(r).map(|v| ((i + 1) as f64, v)))
                .collect();
            stacked.push((
                "bytes_by_layer_by_series".into(),
                "series (as in summary.csv)".into(),
                bars,
            ));
        }
        for &ax in &axes {
            let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
            for r in &t.rows {
                let (Some(x), Some(v)) = (r.get(ax).and_then(|v| num(v)), per_delivered(r)) else {
                    continue;
                };
                let label = label_of(r, Some(ax));
                match groups.iter_mut().find(|g| g.0 == label) {
                    Some(g) => g.1.push((x, v)),
                    None => groups.push((label, vec![(x, v)])),
                }
            }
            for (label, bars) in groups {
                stacked.push((
                    format!("bytes_by_layer_vs_{}__{}", safe(&t.head[ax]), safe(&label)),
                    t.head[ax].clone(),
                    bars,
                ));
            }
        }
        for (name, x_name, bars) in stacked {
            let title = format!(
                "bytes per delivered message by layer — {}",
                name.rsplit("__").next().unwrap_or(&name)
            );
            jobs.push(Job::Stacked {
                name,
                title,
                x_name,
                bars,
            });
        }
    }
    // render in parallel (each chart is independent), write in order; the
    // latency CDFs (a scan of messages.csv) are drawn alongside
    let want_cdfs = dir.join("runs.csv").is_file() && dir.join("messages.csv").is_file();
    let (rendered, cdfs) = rayon::join(
        || {
            jobs.par_iter()
                .map(|job| {
                    let (name, r) = match job {
                        Job::Xy {
                            name,
                            title,
                            x_name,
                            y_name,
                            series,
                            by_series,
                        } => (name, render(title, x_name, y_name, series, *by_series)),
                        Job::Stacked {
                            name,
                            title,
                            x_name,
                            bars,
                        } => (name, render_stacked(title, x_name, bars)),
                    };
                    r.map(|(svg, png)| (name.clone(), svg, png))
                        .map_err(|e| ChartError::Write(out_dir.join(name), e))
                })
                .collect::<Vec<Result<Rendered, ChartError>>>()
        },
        || want_cdfs.then(|| super::cdf::write_cdfs(dir)),
    );
    for r in rendered {
        let (name, svg, png_bytes) = r?;
        for (ext, bytes) in [("svg", svg.into_bytes()), ("png", png_bytes)] {
            let p = out_dir.join(format!("{name}.{ext}"));
            write_atomic_unsynced(&p, &bytes)
                .map_err(|e| ChartError::Write(p.clone(), e.to_string()))?;
            written.push(p);
        }
    }
    if let Some(c) = cdfs {
        written.extend(c?);
    }
    register();
    written.extend(super::timeseries_chart::write_timeseries_charts(dir)?);
    remove_stale_charts(&out_dir, &written)?;
    Ok(written)
}

/// Remove chart files (and temporary files) in `charts/` that this drawing
/// did not write — left by an earlier sweep over other axes, or by an
/// interrupted one — so the directory holds exactly the charts of its CSVs.
fn remove_stale_charts(out_dir: &Path, written: &[PathBuf]) -> Result<(), ChartError> {
    let err = |p: &Path, e: std::io::Error| ChartError::Write(p.to_path_buf(), e.to_string());
    let entries = std::fs::read_dir(out_dir).map_err(|e| err(out_dir, e))?;
    for e in entries {
        let p = e.map_err(|e| err(out_dir, e))?.path();
        let ours = p
            .extension()
            .is_some_and(|x| x == "svg" || x == "png" || x == "tmp");
        if ours && p.is_file() && !written.contains(&p) {
            std::fs::remove_file(&p).map_err(|e| err(&p, e))?;
        }
    }
    Ok(())
}
