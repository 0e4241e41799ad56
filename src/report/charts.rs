//! Charts of a results directory, from `summary.csv` (plus `runs.csv` and
//! `messages.csv` for the latency CDFs, `timeseries.csv` for the charts over
//! time); `qossim plot` regenerates them byte for byte.
//!
//! For every swept parameter whose values are all numbers (the x axis)
//! there is one line chart per key metric — delivery ratio, latency
//! p50/p95/p99 and bytes on the wire per delivered message — with one
//! series per (protocol, reliability, flow, categorical parameters), plus
//! the other numeric parameters' values when several are swept, one marker
//! per summary row and whiskers of ± the row's `_ci95` half-width. Without
//! a numeric axis (a single run, or a sweep of protocols, QoS levels or
//! other words) each metric is a grouped bar chart with CI whiskers.
//!
//! Every series keeps one colour and marker on every chart of the directory
//! (`chart_style::Styles`, Okabe–Ito palette); legends name protocol and
//! QoS and sit beside the plot; axis titles are words with units (built-in
//! table and the scenario's `[report] labels`). Every chart is written as
//! SVG (900 × 560) and as PNG at twice that resolution under `charts/`.
//! Text is drawn with the embedded DejaVu Sans (assets/fonts), never a
//! system font, and the PNG is encoded by the `png` crate with fixed
//! settings, so files are identical on every machine.

use super::chart_style::{
    annotate_svg, decimals, draw_legend, draw_marker, fixed, font, legend_width, num, px, Entry,
    Ident, Key, SeriesStyle, Styles,
};
pub use super::chart_style::{axis_label, ChartOptions};
use crate::report::atomic::write_atomic_unsynced;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The registered family name, written into the SVGs as a CSS font list:
/// viewers without DejaVu Sans fall back to a sans-serif font.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";
/// SVG size in pixels; the PNG is `PNG_SCALE` times larger.
pub(crate) const SIZE: (u32, u32) = (900, 560);
/// Resolution of the PNG relative to the SVG.
pub(crate) const PNG_SCALE: u32 = 2;

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

/// Metrics charted: column, axis title in words with unit, whether it is a
/// ratio (axis [0, 1], whiskers clipped there), chart kind.
const METRICS: [(&str, &str, bool, &str); 5] = [
    ("delivery_ratio", "Delivery ratio", true, "delivery"),
    ("latency_ms_p50", "Latency p50 (ms)", false, "latency"),
    ("latency_ms_p95", "Latency p95 (ms)", false, "latency"),
    ("latency_ms_p99", "Latency p99 (ms)", false, "latency"),
    (
        "bytes_on_wire_per_delivered",
        "Bytes on the wire per delivered message (B)",
        false,
        "bytes",
    ),
];

/// Metrics drawn only when some row has a value: column, axis title,
/// chart kind. `connect_ms_mean` has one for flows whose clients open
/// connections or DTLS associations (docs/metrics.md).
const OPTIONAL_METRICS: [(&str, &str, &str); 1] = [(
    "connect_ms_mean",
    "Time to connect: TCP, TLS/DTLS handshake, WebSocket upgrade (ms)",
    "connect",
)];

/// A flow's own frames on the 802.15.4 media per delivered message:
/// column, chart name, axis title. Each is the column's mean over the
/// mean of `delivered` (a ratio of means: no whiskers), drawn only when
/// some row has a value (a medium).
const AIR_METRICS: [(&str, &str, &str); 4] = [
    (
        "frames_air",
        "frames_air_per_delivered",
        "Frames on the air per delivered message",
    ),
    (
        "bytes_air",
        "bytes_air_per_delivered",
        "Bytes on the air per delivered message (B)",
    ),
    (
        "airtime_ms_air",
        "airtime_ms_air_per_delivered",
        "Airtime per delivered message (ms)",
    ),
    (
        "energy_mj_air",
        "energy_mj_air_per_delivered",
        "Radio energy per delivered message (mJ)",
    ),
];

/// Top of a ratio axis: 1 plus room for a marker drawn at 1.
pub(crate) const RATIO_TOP: f64 = 1.04;

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

/// Order of parameter values that are words: durations and rates by
/// their value ("500 ms" before "2 s"), numbers by value, else text.
pub(crate) fn word_order(a: &str, b: &str) -> std::cmp::Ordering {
    use crate::scenario::units::{parse_duration, parse_rate};
    if let (Ok(x), Ok(y)) = (parse_duration(a), parse_duration(b)) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (parse_rate(a), parse_rate(b)) {
        return x.cmp(&y);
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

/// "Loss probability (link backhaul)" → "loss probability (link backhaul)",
/// keeping acronyms ("MTU (B)").
pub(crate) fn lc_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_string(),
    }
}

/// One line series: label, style and points (x, y, ci95).
struct Series {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64, Option<f64>)>,
}

/// One bar of a grouped bar chart.
struct BarItem {
    label: String,
    style: SeriesStyle,
    y: f64,
    ci: Option<f64>,
}

type Draw = Result<(), Box<dyn std::error::Error>>;

/// The y range of values with half-widths: from 0 to the top with 6 %
/// headroom (every charted metric is non-negative: whiskers stop at 0); a
/// ratio axis is [0, 1.04].
fn y_range(vals: impl Iterator<Item = (f64, Option<f64>)>, ratio: bool) -> (f64, f64) {
    if ratio {
        return (0.0, RATIO_TOP);
    }
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (y, c) in vals {
        let c = c.unwrap_or(0.0);
        lo = lo.min(y);
        hi = hi.max(y + c);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let lo = lo.min(0.0);
    let span = (hi - lo).max(hi.abs() * 0.1).max(1e-6);
    (lo, hi + span * 0.06)
}

/// A whisker from `lo` to `hi` at x, capped, in the chart's coordinates.
fn whisker<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x: f64,
    (lo, hi): (f64, f64),
    color: RGBColor,
    s: f64,
) -> Draw
where
    DB::ErrorType: 'static,
{
    let cap = px(s, 5.0);
    let stroke = color.stroke_width(px(s, 1.0).max(1) as u32);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(x, lo), (x, hi)],
        stroke,
    )))?;
    for y in [lo, hi] {
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, y)) + PathElement::new(vec![(-cap, 0), (cap, 0)], stroke),
        ))?;
    }
    Ok(())
}

/// Clip a whisker at 0 (no charted metric is negative) and, on ratio
/// axes, at 1.
fn clip(lo: f64, hi: f64, ratio: bool) -> (f64, f64) {
    if ratio {
        (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0))
    } else {
        (lo.max(0.0), hi.max(0.0))
    }
}

/// Split the canvas into plot (left) and legend (right).
fn split<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    s: f64,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let lw = legend_width(root, entries, s);
    let w = root.dim_in_pixel().0;
    root.split_horizontally(w - lw)
}

/// Line chart with markers and CI whiskers against a numeric axis.
fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: f64,
    title: &str,
    x_name: &str,
    y_name: &str,
    series: &[Series],
    ratio: bool,
) -> Draw
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let entries: Vec<Entry> = series
        .iter()
        .map(|x| Entry {
            label: x.label.clone(),
            style: x.style,
            key: Key::LineMarker,
        })
        .collect();
    let (plot, leg) = split(&root, &entries, s);
    let pts = || series.iter().flat_map(|x| x.points.iter());
    let (x0, x1) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (x0, x1) = if x0 > x1 { (0.0, 1.0) } else { (x0, x1) };
    let pad = if x1 > x0 {
        (x1 - x0) * 0.04
    } else {
        (x0.abs() * 0.1).max(0.5)
    };
    let (xl, xh) = (x0 - pad, x1 + pad);
    let (yl, yh) = y_range(pts().map(|p| (p.1, p.2)), ratio);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(s, 20.0))
        .margin(px(s, 16.0))
        .x_label_area_size(px(s, 48.0))
        .y_label_area_size(px(s, 72.0))
        .build_cartesian_2d(xl..xh, yl..yh)?;
    let (dx, dy) = (decimals(xl, xh, 10), decimals(yl, yh, 8));
    chart
        .configure_mesh()
        .max_light_lines(0)
        .x_labels(10)
        .y_labels(8)
        .x_desc(x_name)
        .y_desc(y_name)
        .x_label_formatter(&|v: &f64| fixed(*v, dx))
        .y_label_formatter(&|v: &f64| {
            if ratio && *v > 1.0 + 1e-9 {
                String::new()
            } else {
                fixed(*v, dy)
            }
        })
        .label_style(font(s, 14.0))
        .axis_desc_style(font(s, 16.0))
        .draw()?;
    for x in series {
        let line: Vec<(f64, f64)> = x.points.iter().map(|&(a, b, _)| (a, b)).collect();
        chart.draw_series(LineSeries::new(
            line,
            x.style.color.stroke_width(px(s, 2.0) as u32),
        ))?;
        for &(a, b, c) in &x.points {
            if let Some(c) = c.filter(|c| *c > 0.0) {
                whisker(&mut chart, a, clip(b - c, b + c, ratio), x.style.color, s)?;
            }
        }
    }
    for x in series {
        for &(a, b, _) in &x.points {
            draw_marker(&root, chart.backend_coord(&(a, b)), x.style, s)?;
        }
    }
    draw_legend(&leg, &entries, s)?;
    root.present()?;
    Ok(())
}

/// Grouped bar chart with CI whiskers: groups side by side, a bar per
/// series in each group, the group names under the axis.
fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: f64,
    title: &str,
    x_name: &str,
    y_name: &str,
    groups: &[(String, Vec<BarItem>)],
    ratio: bool,
) -> Draw
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut entries: Vec<Entry> = Vec::new();
    for b in groups.iter().flat_map(|g| g.1.iter()) {
        if !entries.iter().any(|e| e.label == b.label) {
            entries.push(Entry {
                label: b.label.clone(),
                style: b.style,
                key: Key::Box,
            });
        }
    }
    let (plot, leg) = split(&root, &entries, s);
    // x: one unit per bar, 0.8 between groups, 0.6 at each end
    let mut at = 0.6;
    let mut layout: Vec<(f64, f64, Vec<f64>)> = Vec::new(); // (start, end, bar centres)
    for (_, bars) in groups {
        let start = at;
        let xs: Vec<f64> = (0..bars.len()).map(|i| start + i as f64 + 0.5).collect();
        at += bars.len() as f64;
        layout.push((start, at, xs));
        at += 0.8;
    }
    let xh = at - 0.8 + 0.6;
    let (yl, yh) = y_range(
        groups.iter().flat_map(|g| g.1.iter().map(|b| (b.y, b.ci))),
        ratio,
    );
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(s, 20.0))
        .margin(px(s, 16.0))
        .x_label_area_size(px(s, 48.0))
        .y_label_area_size(px(s, 72.0))
        .build_cartesian_2d(0.0..xh.max(1.0), yl..yh)?;
    let dy = decimals(yl, yh, 8);
    chart
        .configure_mesh()
        .max_light_lines(0)
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(8)
        .x_desc(x_name)
        .y_desc(y_name)
        .y_label_formatter(&|v: &f64| {
            if ratio && *v > 1.0 + 1e-9 {
                String::new()
            } else {
                fixed(*v, dy)
            }
        })
        .label_style(font(s, 14.0))
        .axis_desc_style(font(s, 16.0))
        .draw()?;
    for ((name, bars), (start, end, xs)) in groups.iter().zip(&layout) {
        for (b, &x) in bars.iter().zip(xs) {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.42, 0.0f64.max(yl)), (x + 0.42, b.y)],
                b.style.color.filled(),
            )))?;
            if let Some(c) = b.ci.filter(|c| *c > 0.0) {
                whisker(
                    &mut chart,
                    x,
                    clip(b.y - c, b.y + c, ratio),
                    RGBColor(0, 0, 0),
                    s,
                )?;
            }
        }
        if !name.is_empty() {
            let (cx, cy) = chart.backend_coord(&((start + end) / 2.0, yl));
            root.draw(&Text::new(
                name.clone(),
                (cx, cy + px(s, 6.0)),
                TextStyle::from(font(s, 14.0)).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
    }
    draw_legend(&leg, &entries, s)?;
    root.present()?;
    Ok(())
}

/// Layers of `bytes_on_wire`, bottom to top, with their `runs.csv` columns
/// and colours (fixed, so a layer looks the same on every chart).
const LAYERS: [(&str, &str, RGBColor); 7] = [
    (
        "bytes_payload",
        "application payload",
        RGBColor(0, 114, 178),
    ),
    ("bytes_protocol", "protocol headers", RGBColor(86, 180, 233)),
    // the security overlays (issue 21), 0 without TLS, DTLS or WebSocket
    (
        "bytes_security",
        "TLS/DTLS records, handshakes, WebSocket",
        RGBColor(230, 159, 0),
    ),
    (
        "bytes_transport_ip",
        "UDP/TCP and IP headers",
        RGBColor(170, 170, 170),
    ),
    // the radio hop's layers (issue 20), 0 on wired links
    (
        "bytes_adaptation",
        "6LoWPAN headers",
        RGBColor(204, 121, 167),
    ),
    (
        "bytes_link",
        "PHY/MAC headers, FCS, link ACKs",
        RGBColor(0, 158, 115),
    ),
    (
        "bytes_retransmissions",
        "retransmissions",
        RGBColor(213, 94, 0),
    ),
];

/// One stacked bar: x position and bytes per delivered message of each layer.
type Bar = (f64, [f64; LAYERS.len()]);

/// Stacked bars by layer: on a numeric axis, or (with `cats`) one bar per
/// category, named under the axis (words on separate lines).
fn draw_stacked<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: f64,
    title: &str,
    x_name: &str,
    bars: &[Bar],
    cats: Option<&[String]>,
) -> Draw
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let entries: Vec<Entry> = LAYERS
        .iter()
        .rev()
        .map(|(_, name, color)| Entry {
            label: (*name).to_string(),
            style: SeriesStyle {
                color: *color,
                marker: 0,
            },
            key: Key::Box,
        })
        .collect();
    let (plot, leg) = split(&root, &entries, s);
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
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.06 } else { 1.0 };
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(s, 20.0))
        .margin(px(s, 16.0))
        .x_label_area_size(px(s, if cats.is_some() { 64.0 } else { 48.0 }))
        .y_label_area_size(px(s, 72.0))
        .build_cartesian_2d(x0..x1, 0.0..top)?;
    let (dx, dy) = (decimals(x0, x1, 10), decimals(0.0, top, 8));
    let yf = |v: &f64| fixed(*v, dy);
    let mut mesh = chart.configure_mesh();
    mesh.max_light_lines(0);
    mesh.y_labels(8)
        .x_desc(x_name)
        .y_desc("Bytes on the wire per delivered message (B)")
        .y_label_formatter(&yf)
        .label_style(font(s, 14.0))
        .axis_desc_style(font(s, 16.0));
    if cats.is_some() {
        mesh.disable_x_mesh().x_labels(0);
    } else {
        mesh.x_labels(10);
    }
    let xf = |v: &f64| fixed(*v, dx);
    mesh.x_label_formatter(&xf).draw()?;
    for (li, (_, _, color)) in LAYERS.iter().enumerate() {
        let rects: Vec<Rectangle<(f64, f64)>> = bars
            .iter()
            .map(|(x, v)| {
                let base: f64 = v[..li].iter().sum();
                Rectangle::new([(x - w, base), (x + w, base + v[li])], color.filled())
            })
            .collect();
        chart.draw_series(rects)?;
    }
    if let Some(cats) = cats {
        let style = TextStyle::from(font(s, 12.0)).pos(Pos::new(HPos::Center, VPos::Top));
        for ((x, _), name) in bars.iter().zip(cats) {
            let (cx, cy) = chart.backend_coord(&(*x, 0.0));
            for (k, line) in category_lines(name).iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (cx, cy + px(s, 6.0 + 14.0 * k as f64)),
                    style.clone(),
                ))?;
            }
        }
    }
    draw_legend(&leg, &entries, s)?;
    root.present()?;
    Ok(())
}

/// A category name on up to three short lines: protocol, reliability, rest.
fn category_lines(name: &str) -> Vec<String> {
    let (first, rest) = name.split_once(' ').unwrap_or((name, ""));
    let mut lines = vec![first.to_string()];
    if !rest.is_empty() {
        match rest.split_once(" (") {
            Some((a, b)) if !a.is_empty() => {
                lines.push(a.to_string());
                lines.push(format!("({b}"));
            }
            _ => lines.push(rest.to_string()),
        }
    }
    lines
}

/// Encode an RGB buffer of `size` as PNG with fixed settings.
pub(crate) fn encode_png(rgb: &[u8], size: (u32, u32)) -> Result<Vec<u8>, String> {
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

/// Draw one chart twice — SVG text at `SIZE` (scale 1) and PNG bytes at
/// `PNG_SCALE` × `SIZE` — with `$draw`, a closure taking the drawing area
/// and the scale (a macro, since the two backends differ in type).
macro_rules! render_both {
    ($draw:expr) => {{
        use $crate::report::charts::{encode_png, PNG_SCALE, SIZE};
        let mut svg = String::new();
        ($draw)(
            SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
            1.0,
        )
        .map_err(|e| e.to_string())?;
        let big = (SIZE.0 * PNG_SCALE, SIZE.1 * PNG_SCALE);
        let mut rgb = vec![0u8; (big.0 * big.1 * 3) as usize];
        ($draw)(
            BitMapBackend::with_buffer(&mut rgb, big).into_drawing_area(),
            PNG_SCALE as f64,
        )
        .map_err(|e| e.to_string())?;
        Ok((svg, encode_png(&rgb, big)?))
    }};
}
pub(crate) use render_both;

/// Write `name.svg` (with its caption and kind) and `name.png` into `out_dir`.
pub(crate) fn write_pair(
    out_dir: &Path,
    name: &str,
    title: &str,
    kind: &str,
    svg: &str,
    png: &[u8],
    written: &mut Vec<PathBuf>,
) -> Result<(), ChartError> {
    let svg = annotate_svg(svg, title, kind);
    for (ext, bytes) in [("svg", svg.as_bytes()), ("png", png)] {
        let p = out_dir.join(format!("{name}.{ext}"));
        write_atomic_unsynced(&p, bytes)
            .map_err(|e| ChartError::Write(p.clone(), e.to_string()))?;
        written.push(p);
    }
    Ok(())
}

/// A chart to render.
enum Job {
    Lines {
        x_name: String,
        y_name: &'static str,
        series: Vec<Series>,
        ratio: bool,
    },
    Bars {
        x_name: String,
        y_name: &'static str,
        groups: Vec<(String, Vec<BarItem>)>,
        ratio: bool,
    },
    Stacked {
        x_name: String,
        bars: Vec<Bar>,
        cats: Option<Vec<String>>,
    },
}

/// A chart with its file name, caption and kind.
struct Planned {
    name: String,
    title: String,
    kind: &'static str,
    job: Job,
}

impl Planned {
    fn render(&self) -> Result<(String, Vec<u8>), String> {
        let t = &self.title;
        match &self.job {
            Job::Lines {
                x_name,
                y_name,
                series,
                ratio,
            } => render_both!(|root, s| draw_lines(root, s, t, x_name, y_name, series, *ratio)),
            Job::Bars {
                x_name,
                y_name,
                groups,
                ratio,
            } => render_both!(|root, s| draw_bars(root, s, t, x_name, y_name, groups, *ratio)),
            Job::Stacked { x_name, bars, cats } => {
                render_both!(|root, s| draw_stacked(root, s, t, x_name, bars, cats.as_deref()))
            }
        }
    }
}

/// A chart of a results directory, for pages that show them
/// (`list_charts`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChartInfo {
    /// The SVG file; the PNG (twice the resolution) has the same stem.
    pub svg: PathBuf,
    pub png: PathBuf,
    /// "delivery", "latency", "bytes", "bytes_by_layer", "cdf" or "timeseries".
    pub kind: String,
    /// The chart's title in words.
    pub caption: String,
}

/// Kinds in the order a report shows them.
pub const KIND_ORDER: [&str; 8] = [
    "delivery",
    "latency",
    "bytes",
    "bytes_by_layer",
    "air",
    "connect",
    "cdf",
    "timeseries",
];

/// The charts in `dir/charts/` with their kind and caption (read back from
/// each SVG's `<title>` and `<desc>`), in `KIND_ORDER` then file-name order.
pub fn list_charts(dir: &Path) -> Result<Vec<ChartInfo>, ChartError> {
    let cdir = dir.join("charts");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&cdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ChartError::Read(cdir, e.to_string())),
    };
    for e in entries {
        let p = e
            .map_err(|e| ChartError::Read(cdir.clone(), e.to_string()))?
            .path();
        if p.extension().is_none_or(|x| x != "svg") {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).map_err(|e| ChartError::Read(p.clone(), e.to_string()))?;
        let tag = |t: &str| -> Option<String> {
            let open = format!("<{t}>");
            let i = text.find(&open)? + open.len();
            let j = text[i..].find(&format!("</{t}>"))? + i;
            Some(
                text[i..j]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        let (Some(caption), Some(kind)) = (tag("title"), tag("desc")) else {
            continue;
        };
        out.push(ChartInfo {
            png: p.with_extension("png"),
            svg: p,
            kind,
            caption,
        });
    }
    let rank = |k: &str| {
        KIND_ORDER
            .iter()
            .position(|x| *x == k)
            .unwrap_or(KIND_ORDER.len())
    };
    out.sort_by(|a, b| (rank(&a.kind), &a.svg).cmp(&(rank(&b.kind), &b.svg)));
    Ok(out)
}

/// Write every chart of `dir` into `dir/charts/`, with the options recorded
/// in `dir/manifest.json` (`ChartOptions::from_dir`).
pub fn write_charts(dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    write_charts_with(dir, &ChartOptions::from_dir(dir))
}

/// Write every chart of `dir` (from `dir/summary.csv`, and the CDF and
/// time-series inputs when present) into `dir/charts/`.
pub fn write_charts_with(dir: &Path, opts: &ChartOptions) -> Result<Vec<PathBuf>, ChartError> {
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
    if c_runs <= c_pat {
        return Err(ChartError::Format(path, "`runs` before `pattern`".into()));
    }
    if let Some((i, _)) = t
        .rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != t.head.len())
    {
        return Err(ChartError::Format(
            path,
            format!(
                "row {} has {} cells, the header {}",
                i + 2,
                t.rows[i].len(),
                t.head.len()
            ),
        ));
    }
    let param_cols: Vec<usize> = (c_pat + 1..c_runs).collect();
    let paths: Vec<String> = param_cols.iter().map(|&c| t.head[c].clone()).collect();
    let pvals =
        |r: &Vec<String>| -> Vec<String> { param_cols.iter().map(|&c| r[c].clone()).collect() };
    let keyed: Vec<(String, String, String, Vec<String>)> = t
        .rows
        .iter()
        .map(|r| {
            (
                r[c_proto].clone(),
                r[c_rel].clone(),
                r[c_flow].clone(),
                pvals(r),
            )
        })
        .collect();
    let styles = Styles::new(&paths, &keyed, opts);
    let ident = |r: &Vec<String>| {
        Ident::new(
            &r[c_proto],
            &r[c_rel],
            &r[c_flow],
            styles.cats_of(&paths, &pvals(r)),
        )
    };
    let axes: Vec<usize> = styles
        .axis_paths()
        .iter()
        .filter_map(|p| t.col(p))
        .collect();
    // categorical comparisons: grouped by the first categorical parameter
    // the protocol names do not already show, else by protocol
    let group_param = styles.group_path().and_then(|p| t.col(p));
    let group_title = match group_param {
        Some(c) => styles.axis_label(&t.head[c]),
        None => "Protocol".to_string(),
    };
    let group_of = |r: &Vec<String>| match group_param {
        Some(c) => r[c].clone(),
        None => super::chart_style::protocol_name(&r[c_proto]),
    };
    let out_dir = dir.join("charts");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| ChartError::Write(out_dir.clone(), e.to_string()))?;
    let mut jobs: Vec<Planned> = Vec::new();
    let cell = |r: &Vec<String>, c: usize| r.get(c).and_then(|v| num(v));
    let plain = METRICS.map(|(m, y, ratio, kind)| (m, m, y, ratio, kind, false));
    let air = AIR_METRICS.map(|(col, m, y)| (m, col, y, false, "air", true));
    let optional = OPTIONAL_METRICS.map(|(m, y, kind)| (m, m, y, false, kind, false));
    for (metric, column, y_name, ratio, kind, per_delivered) in
        plain.into_iter().chain(air).chain(optional)
    {
        let ci = t.col(&format!("{column}_ci95")).filter(|_| !per_delivered);
        let (Some(cm), cd) = (t.col(column), t.col("delivered")) else {
            continue;
        };
        let y_of = |r: &Vec<String>| -> Option<f64> {
            let v = cell(r, cm)?;
            if !per_delivered {
                return Some(v);
            }
            let d = cell(r, cd?)?;
            (d > 0.0).then(|| v / d)
        };
        let drawn_when_present = per_delivered || OPTIONAL_METRICS.iter().any(|o| o.0 == column);
        if drawn_when_present && !t.rows.iter().any(|r| y_of(r).is_some()) {
            continue;
        }
        if axes.is_empty() {
            let mut groups: Vec<(String, Vec<BarItem>)> = Vec::new();
            let mut rows: Vec<(&Vec<String>, Ident)> =
                t.rows.iter().map(|r| (r, ident(r))).collect();
            rows.sort_by(|a, b| a.1.cmp(&b.1));
            for (r, id) in rows {
                let Some(y) = y_of(r) else { continue };
                let bar = BarItem {
                    label: styles.label(&id),
                    style: styles.style(&id),
                    y,
                    ci: ci.and_then(|c| cell(r, c)),
                };
                let g = group_of(r);
                match groups.iter_mut().find(|x| x.0 == g) {
                    Some(x) => x.1.push(bar),
                    None => groups.push((g, vec![bar])),
                }
            }
            if group_param.is_some() {
                groups.sort_by(|a, b| word_order(&a.0, &b.0));
            }
            jobs.push(Planned {
                name: format!("{metric}_by_series"),
                title: format!("{y_name} by {}", lc_first(&group_title)),
                kind,
                job: Job::Bars {
                    x_name: group_title.clone(),
                    y_name,
                    groups,
                    ratio,
                },
            });
        }
        for &ax in &axes {
            // series: identity plus the other numeric axes' values
            let mut series: Vec<(Ident, Vec<String>, Series)> = Vec::new();
            for r in &t.rows {
                let (Some(x), Some(y)) = (cell(r, ax), y_of(r)) else {
                    continue;
                };
                let c = ci.and_then(|c| cell(r, c));
                let id = ident(r);
                let others: Vec<String> = axes
                    .iter()
                    .filter(|&&a| a != ax)
                    .map(|&a| r[a].clone())
                    .collect();
                match series.iter_mut().find(|s| s.0 == id && s.1 == others) {
                    Some(s) => s.2.points.push((x, y, c)),
                    None => {
                        let mut label = styles.label(&id);
                        for (&a, v) in axes.iter().filter(|&&a| a != ax).zip(&others) {
                            label.push_str(&format!(
                                ", {} = {v}",
                                lc_first(&styles.axis_label(&t.head[a]))
                            ));
                        }
                        let style = styles.style(&id);
                        series.push((
                            id,
                            others,
                            Series {
                                label,
                                style,
                                points: vec![(x, y, c)],
                            },
                        ));
                    }
                }
            }
            series.sort_by(|a, b| {
                (
                    &a.0,
                    a.1.iter()
                        .map(|v| num(v).unwrap_or(0.0))
                        .collect::<Vec<_>>(),
                )
                    .partial_cmp(&(
                        &b.0,
                        b.1.iter()
                            .map(|v| num(v).unwrap_or(0.0))
                            .collect::<Vec<_>>(),
                    ))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            // the same identity split by another axis: same colour, next markers
            let mut k = 0;
            for i in 0..series.len() {
                k = if i > 0 && series[i].0 == series[i - 1].0 {
                    k + 1
                } else {
                    0
                };
                series[i].2.style.marker =
                    (series[i].2.style.marker + k) % super::chart_style::MARKERS;
            }
            let mut series: Vec<Series> = series.into_iter().map(|s| s.2).collect();
            for s in &mut series {
                s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let x_name = styles.axis_label(&t.head[ax]);
            jobs.push(Planned {
                name: format!("{metric}_vs_{}", safe(&t.head[ax])),
                title: format!("{y_name} vs {}", lc_first(&x_name)),
                kind,
                job: Job::Lines {
                    x_name,
                    y_name,
                    series,
                    ratio,
                },
            });
        }
    }
    // bytes per delivered message, stacked by layer: one bar per series
    // without a numeric axis, else a chart per series and axis; ratio of
    // the runs' means
    let layer_cols: Vec<Option<usize>> = LAYERS.iter().map(|(c, _, _)| t.col(c)).collect();
    // results written before the radio layers existed lack their columns:
    // those layers are then 0
    let required = layer_cols.iter().zip(LAYERS).all(|(c, (name, _, _))| {
        c.is_some() || matches!(name, "bytes_link" | "bytes_adaptation" | "bytes_security")
    });
    if let (Some(cd), true) = (t.col("delivered"), required) {
        let per_delivered = |r: &Vec<String>| -> Option<[f64; LAYERS.len()]> {
            let d = r.get(cd).and_then(|v| num(v)).filter(|d| *d > 0.0)?;
            let mut v = [0.0; LAYERS.len()];
            for (k, c) in layer_cols.iter().enumerate() {
                if let Some(c) = c {
                    v[k] = r.get(*c).and_then(|x| num(x))? / d;
                }
            }
            Some(v)
        };
        let title = "Bytes per delivered message by layer";
        if axes.is_empty() {
            // by group (the bar charts' groups, when a word parameter is
            // swept), then series
            let group_key = |r: &Vec<String>| group_param.map(|c| r[c].clone());
            let mut rows: Vec<(Option<String>, Ident, [f64; LAYERS.len()])> = t
                .rows
                .iter()
                .filter_map(|r| per_delivered(r).map(|v| (group_key(r), ident(r), v)))
                .collect();
            rows.sort_by(|a, b| {
                let g = match (&a.0, &b.0) {
                    (Some(x), Some(y)) => word_order(x, y),
                    _ => std::cmp::Ordering::Equal,
                };
                g.then(a.1.cmp(&b.1))
            });
            let cats: Vec<String> = rows
                .iter()
                .map(|(g, id, _)| match g {
                    Some(g) => format!("{} ({g})", styles.label(id)),
                    None => styles.label(id),
                })
                .collect();
            let bars: Vec<Bar> = rows
                .iter()
                .enumerate()
                .map(|(i, (_, _, v))| (i as f64, *v))
                .collect();
            jobs.push(Planned {
                name: "bytes_by_layer_by_series".into(),
                title: title.into(),
                kind: "bytes_by_layer",
                job: Job::Stacked {
                    x_name: String::new(),
                    bars,
                    cats: Some(cats),
                },
            });
        }
        for &ax in &axes {
            let mut groups: Vec<(Ident, String, Vec<Bar>)> = Vec::new();
            for r in &t.rows {
                let (Some(x), Some(v)) = (r.get(ax).and_then(|v| num(v)), per_delivered(r)) else {
                    continue;
                };
                let id = ident(r);
                let mut label = styles.label(&id);
                for &a in axes.iter().filter(|&&a| a != ax) {
                    label.push_str(&format!(
                        ", {} = {}",
                        lc_first(&styles.axis_label(&t.head[a])),
                        r[a]
                    ));
                }
                match groups.iter_mut().find(|g| g.1 == label) {
                    Some(g) => g.2.push((x, v)),
                    None => groups.push((id, label, vec![(x, v)])),
                }
            }
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, label, bars) in groups {
                jobs.push(Planned {
                    name: format!("bytes_by_layer_vs_{}__{}", safe(&t.head[ax]), safe(&label)),
                    title: format!("{title}: {label}"),
                    kind: "bytes_by_layer",
                    job: Job::Stacked {
                        x_name: styles.axis_label(&t.head[ax]),
                        bars,
                        cats: None,
                    },
                });
            }
        }
    }
    // render in parallel (each chart is independent), write in order; the
    // latency CDFs (a scan of messages.csv) are drawn alongside
    let want_cdfs = dir.join("runs.csv").is_file() && dir.join("messages.csv").is_file();
    let render = |job: &Planned| {
        job.render()
            .map_err(|e| ChartError::Write(out_dir.join(&job.name), e))
    };
    let (rendered, cdfs) = if opts.sequential {
        let rendered: Vec<Result<(String, Vec<u8>), ChartError>> =
            jobs.iter().map(render).collect();
        (
            rendered,
            want_cdfs.then(|| super::cdf::write_cdfs(dir, &styles)),
        )
    } else {
        rayon::join(
            || jobs.par_iter().map(render).collect::<Vec<_>>(),
            || want_cdfs.then(|| super::cdf::write_cdfs(dir, &styles)),
        )
    };
    let mut written = Vec::new();
    for (job, r) in jobs.iter().zip(rendered) {
        let (svg, png) = r?;
        write_pair(
            &out_dir,
            &job.name,
            &job.title,
            job.kind,
            &svg,
            &png,
            &mut written,
        )?;
    }
    if let Some(c) = cdfs {
        written.extend(c?);
    }
    written.extend(super::timeseries_chart::write_timeseries_charts(
        dir, &styles,
    )?);
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
