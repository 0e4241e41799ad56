//! The scaling curve of the fan-in benchmark (issue 22 item 6;
//! `scripts/bench-scaling.sh`, BENCHMARKS.md "Scaling curve"): a CSV of
//! one row per client count (`clients,wall_s,peak_rss_kb,
//! rss_per_client_kb,events,events_per_s,cpu_s`) drawn as a log-log chart of wall
//! time and peak RSS against clients, each beside its linear extrapolation
//! from the smallest size so that super-linear costs show, and written as
//! a table into the marked block of a markdown file.

use super::chart_style::{font, px, PALETTE};
use super::charts::{encode_png, register};
use plotters::prelude::*;
use std::path::Path;

/// The markers of the block [`replace_block`] rewrites.
pub const BEGIN: &str = "<!-- scaling:begin -->";
pub const END: &str = "<!-- scaling:end -->";

/// The CSV's header, in order.
pub const COLUMNS: [&str; 7] = [
    "clients",
    "wall_s",
    "peak_rss_kb",
    "rss_per_client_kb",
    "events",
    "events_per_s",
    "cpu_s",
];

/// One size's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub clients: u64,
    pub wall_s: f64,
    pub peak_rss_kb: u64,
    pub rss_per_client_kb: f64,
    pub events: u64,
    pub events_per_s: f64,
    /// User + system CPU time: on a shared machine, steadier than wall.
    pub cpu_s: f64,
}

/// Read the CSV at `path` (header [`COLUMNS`]), rows sorted by clients.
pub fn read_csv(path: &Path) -> Result<Vec<Point>, String> {
    let err = |line: usize, m: String| format!("{}:{line}: {m}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let head = lines.next().map(|(_, l)| l).unwrap_or("");
    if head.split(',').map(str::trim).ne(COLUMNS) {
        return Err(err(1, format!("header must be {}", COLUMNS.join(","))));
    }
    let mut points = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != COLUMNS.len() {
            return Err(err(
                i + 1,
                format!("{} cells, expected {}", cells.len(), COLUMNS.len()),
            ));
        }
        let f = |k: usize| {
            cells[k]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    err(
                        i + 1,
                        format!("{}: not a number ≥ 0: {:?}", COLUMNS[k], cells[k]),
                    )
                })
        };
        let u = |k: usize| {
            cells[k].parse::<u64>().map_err(|_| {
                err(
                    i + 1,
                    format!("{}: not a whole number: {:?}", COLUMNS[k], cells[k]),
                )
            })
        };
        let p = Point {
            clients: u(0)?,
            wall_s: f(1)?,
            peak_rss_kb: u(2)?,
            rss_per_client_kb: f(3)?,
            events: u(4)?,
            events_per_s: f(5)?,
            cpu_s: f(6)?,
        };
        if p.clients == 0 || p.wall_s <= 0.0 || p.peak_rss_kb == 0 {
            return Err(err(
                i + 1,
                "clients, wall_s and peak_rss_kb must be > 0 (log axes)".into(),
            ));
        }
        points.push(p);
    }
    if points.is_empty() {
        return Err(err(2, "no rows".into()));
    }
    points.sort_by_key(|p| p.clients);
    Ok(points)
}

/// Size of the PNG in pixels.
const PNG_SIZE: (u32, u32) = (1600, 700);

/// The chart as PNG bytes: two log-log panels (wall time, peak RSS), each
/// with the measured points and a dashed line of linear growth from the
/// smallest size.
pub fn png(points: &[Point]) -> Result<Vec<u8>, String> {
    register();
    let mut rgb = vec![0u8; (PNG_SIZE.0 * PNG_SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, PNG_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 2));
        let wall: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.clients as f64, p.wall_s))
            .collect();
        let rss: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.clients as f64, p.peak_rss_kb as f64 / 1024.0))
            .collect();
        panel(&panels[0], "Wall time", "wall time (s)", &wall, PALETTE[0])?;
        panel(&panels[1], "Peak RSS", "peak RSS (MB)", &rss, PALETTE[1])?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, PNG_SIZE)
}

/// One log-log panel of `pts` (x clients) with the linear extrapolation
/// from the first point.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_name: &str,
    pts: &[(f64, f64)],
    color: RGBColor,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let s = 2.0;
    let (x0, y0) = pts[0];
    let linear: Vec<(f64, f64)> = pts.iter().map(|&(x, _)| (x, y0 * x / x0)).collect();
    let all = pts.iter().chain(&linear);
    let (xl, xh) = all
        .clone()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (yl, yh) = all.fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let e = |v: f64| v.log10();
    let range = |lo: f64, hi: f64| {
        let lo = 10f64.powf(e(lo).floor());
        let hi = 10f64.powf(e(hi).ceil().max(e(lo) + 1.0));
        lo..hi
    };
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} against clients (log-log)"), font(s, 18.0))
        .margin(px(s, 14.0))
        .margin_right(px(s, 36.0))
        .x_label_area_size(px(s, 44.0))
        .y_label_area_size(px(s, 64.0))
        .build_cartesian_2d(range(xl, xh).log_scale(), range(yl, yh).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .x_desc("clients")
        .y_desc(y_name)
        .x_label_formatter(&|v: &f64| format!("{v:.0}"))
        .y_label_formatter(&|v: &f64| format!("{v}"))
        .label_style(font(s, 13.0))
        .axis_desc_style(font(s, 15.0))
        .draw()
        .map_err(|e| e.to_string())?;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(
            linear,
            px(s, 6.0) as u32,
            px(s, 4.0) as u32,
            grey.stroke_width(px(s, 1.5) as u32),
        ))
        .map_err(|e| e.to_string())?
        .label("linear from the smallest size")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    chart
        .draw_series(LineSeries::new(
            pts.iter().copied(),
            color.stroke_width(px(s, 2.0) as u32),
        ))
        .map_err(|e| e.to_string())?
        .label("measured")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    chart
        .draw_series(
            pts.iter()
                .map(|&p| Circle::new(p, px(s, 4.0), color.filled())),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(font(s, 13.0))
        .background_style(WHITE)
        .border_style(grey)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// How a curve was measured, as the block states it.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// The command that measured.
    pub command: &'a str,
    /// When.
    pub date: &'a str,
    /// The load average before the runs (`uptime`).
    pub load: &'a str,
    /// What was measured (`qossim <git hash>`).
    pub version: &'a str,
}

/// The markdown of the block (markers included): how it was measured,
/// the table with each size's cost per client relative to the smallest,
/// and the chart.
pub fn markdown(points: &[Point], how: &Provenance<'_>, image: &str) -> String {
    let Provenance {
        command,
        date,
        load,
        version,
    } = *how;
    let first = &points[0];
    let per = |p: &Point| p.wall_s / p.clients as f64;
    let cpu_per = |p: &Point| p.cpu_s / p.clients as f64;
    let mut s = format!(
        "{BEGIN}\nMeasured {date} with {version} (load average before the runs: {load}):\n\n    {command}\n\n\
         | clients | wall (s) | CPU (s) | peak RSS (MB) | RSS per client (KB) | events | events/s (wall) | wall per client vs {0} clients | CPU per client vs {0} clients |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        first.clients
    );
    for p in points {
        s += &format!(
            "| {} | {:.2} | {:.2} | {:.1} | {:.2} | {} | {:.3e} | {:.2}× | {:.2}× |\n",
            p.clients,
            p.wall_s,
            p.cpu_s,
            p.peak_rss_kb as f64 / 1024.0,
            p.rss_per_client_kb,
            p.events,
            p.events_per_s,
            per(p) / per(first),
            if first.cpu_s > 0.0 {
                cpu_per(p) / cpu_per(first)
            } else {
                f64::NAN
            }
        );
    }
    s += &format!(
        "\n![Wall time and peak RSS against clients, log-log, with linear growth from the smallest size dashed]({image})\n{END}"
    );
    s
}

/// `doc` with the text from [`BEGIN`] to [`END`] (both included) replaced
/// by `block`; an error when the markers are missing or out of order.
pub fn replace_block(doc: &str, block: &str) -> Result<String, String> {
    let b = doc
        .find(BEGIN)
        .ok_or_else(|| format!("no {BEGIN} marker"))?;
    let e = doc[b..]
        .find(END)
        .map(|i| b + i + END.len())
        .ok_or_else(|| format!("no {END} marker after {BEGIN}"))?;
    Ok(format!("{}{block}{}", &doc[..b], &doc[e..]))
}

/// Read `csv`, write the chart to `png_path` and rewrite the block of
/// `markdown_path` (the chart linked as `image`).
pub fn update(
    csv: &Path,
    png_path: &Path,
    markdown_path: &Path,
    image: &str,
    how: &Provenance<'_>,
) -> Result<(), String> {
    let points = read_csv(csv)?;
    let bytes = png(&points)?;
    let doc = std::fs::read_to_string(markdown_path)
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    let doc = replace_block(&doc, &markdown(&points, how, image))
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    if let Some(dir) = png_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    super::atomic::write_atomic_unsynced(png_path, &bytes)
        .map_err(|e| format!("{}: {e}", png_path.display()))?;
    super::atomic::write_atomic_unsynced(markdown_path, doc.as_bytes())
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    Ok(())
}
