//! Latency CDFs from `messages.csv`: the empirical distribution of delivered
//! messages' latency, a curve per series, each chart comparing the series
//! at one point of the numeric swept parameters.
//!
//! A single run (or a sweep of categorical parameters only) gets one chart.
//! A sweep over numeric parameters gets one chart per value of them (per
//! grid point of the numeric axes), pooling the replications; with more
//! than `MAX_CHARTS` points, `MAX_CHARTS` of them evenly spaced from the
//! first to the last. Curves keep the series' colour and marker of every
//! other chart of the directory. The x axis is logarithmic (latencies span
//! milliseconds to the CoAP give-up time); y is the fraction of delivered
//! messages with at most that latency.

use super::chart_style::{
    decimals, draw_legend, draw_marker, fixed, font, legend_width, log_tick, px, Entry, Ident, Key,
    SeriesStyle, Styles,
};
use super::charts::{lc_first, register, render_both, safe, word_order, write_pair, ChartError};
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// At most this many CDF charts per directory.
pub(crate) const MAX_CHARTS: usize = 12;

/// Curves of one chart: (label, style, sorted latencies in ms).
type Curves = Vec<(String, SeriesStyle, Vec<f64>)>;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    s: f64,
    title: &str,
    curves: &Curves,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let entries: Vec<Entry> = curves
        .iter()
        .map(|c| Entry {
            label: c.0.clone(),
            style: c.1,
            key: Key::LineMarker,
        })
        .collect();
    let lw = legend_width(&root, &entries, s);
    let (plot, leg) = root.split_horizontally(root.dim_in_pixel().0 - lw);
    let lo = curves
        .iter()
        .filter_map(|c| c.2.first())
        .fold(f64::MAX, |a, &b| a.min(b))
        .max(1e-3);
    let hi = curves
        .iter()
        .filter_map(|c| c.2.last())
        .fold(lo * 10.0, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, font(s, 20.0))
        .margin(px(s, 16.0))
        .x_label_area_size(px(s, 48.0))
        .y_label_area_size(px(s, 64.0))
        .build_cartesian_2d(
            (lo * 0.8..hi * 1.25)
                .log_scale()
                .with_key_points(log_ticks(lo * 0.8, hi * 1.25)),
            0.0..1.02,
        )?;
    let dy = decimals(0.0, 1.02, 6);
    chart
        .configure_mesh()
        .max_light_lines(0)
        .y_labels(6)
        .x_desc("Latency (ms, log scale)")
        .y_desc("Fraction of delivered messages")
        .x_label_formatter(&|v| log_tick(*v))
        .y_label_formatter(&|v| {
            if *v > 1.0 + 1e-9 {
                String::new()
            } else {
                fixed(*v, dy)
            }
        })
        .label_style(font(s, 14.0))
        .axis_desc_style(font(s, 16.0))
        .draw()?;
    let mut marks: Vec<((i32, i32), SeriesStyle)> = Vec::new();
    for (_, style, lat) in curves {
        let n = lat.len() as f64;
        // a step curve through at most 400 points (nearest-rank quantiles)
        let steps = lat.len().min(400);
        let pts: Vec<(f64, f64)> = (1..=steps)
            .map(|k| {
                let idx = ((k as f64 / steps as f64) * n).ceil() as usize;
                let idx = idx.clamp(1, lat.len());
                (lat[idx - 1].max(lo), idx as f64 / n)
            })
            .collect();
        // markers at the deciles 0.1 … 0.9, so curves differ in grey too
        for q in 1..=9 {
            let idx = ((q as f64 / 10.0) * n).ceil() as usize;
            let idx = idx.clamp(1, lat.len());
            marks.push((
                chart.backend_coord(&(lat[idx - 1].max(lo), idx as f64 / n)),
                *style,
            ));
        }
        chart.draw_series(LineSeries::new(
            pts,
            style.color.stroke_width(px(s, 2.0) as u32),
        ))?;
    }
    for (p, st) in marks {
        draw_marker(&root, p, st, s)?;
    }
    draw_legend(&leg, &entries, s)?;
    root.present()?;
    Ok(())
}

/// Ticks of a log axis on [lo, hi]: 1, 2 and 5 times the powers of ten,
/// or only the powers of ten when that would be more than 12 ticks.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let pick = |ms: &[f64]| -> Vec<f64> {
        (k0..=k1)
            .flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    let fine = pick(&[1.0, 2.0, 5.0]);
    if fine.len() <= 12 {
        fine
    } else {
        pick(&[1.0])
    }
}

/// Latencies of one series as they are read: chunks of `CHUNK` values, so
/// a series of half a million holds no doubling slack (a `Vec` grown by
/// pushes may hold twice its length), then one exact `Vec` to sort.
#[derive(Default)]
struct Chunked {
    full: Vec<Box<[f64]>>,
    last: Vec<f64>,
}

impl Chunked {
    /// Values per chunk (512 KB).
    const CHUNK: usize = 1 << 16;

    fn with(l: f64) -> Self {
        let mut c = Chunked::default();
        c.push(l);
        c
    }

    fn push(&mut self, l: f64) {
        // the first chunk grows as a `Vec` does (a short series stays
        // small); a full chunk is set aside and the next one made whole
        if self.last.len() == Self::CHUNK {
            let full = std::mem::replace(&mut self.last, Vec::with_capacity(Self::CHUNK));
            self.full.push(full.into_boxed_slice());
        }
        self.last.push(l);
    }

    fn len(&self) -> usize {
        self.full.len() * Self::CHUNK + self.last.len()
    }

    /// The values in reading order, each chunk freed once copied.
    fn into_vec(self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.full {
            v.extend_from_slice(&c);
        }
        v.extend_from_slice(&self.last);
        v
    }
}

/// Write `charts/latency_cdf*.svg/png` for `dir` (needs runs.csv and
/// messages.csv), series styled and named by `styles`.
pub(crate) fn write_cdfs(dir: &Path, styles: &Styles) -> Result<Vec<PathBuf>, ChartError> {
    register();
    let runs_path = dir.join("runs.csv");
    let rows = crate::metrics::summary::read_runs(
        std::fs::File::open(&runs_path)
            .map_err(|e| ChartError::Read(runs_path.clone(), e.to_string()))?,
    )
    .map_err(|e| ChartError::Format(runs_path.clone(), e))?;
    // a point is the values of the numeric axes; (run, flow) → (point, series)
    let axis_paths = styles.point_paths();
    let mut points: Vec<Vec<String>> = Vec::new();
    let mut series_of: BTreeMap<(u64, String), (usize, Ident)> = BTreeMap::new();
    for r in &rows {
        let paths: Vec<String> = r.params.iter().map(|(k, _)| k.clone()).collect();
        let values: Vec<String> = r.params.iter().map(|(_, v)| v.clone()).collect();
        let p: Vec<String> = axis_paths
            .iter()
            .map(|a| {
                r.params
                    .iter()
                    .find(|(k, _)| k == a)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        let pi = match points.iter().position(|x| *x == p) {
            Some(i) => i,
            None => {
                points.push(p);
                points.len() - 1
            }
        };
        let id = Ident::new(
            &r.protocol,
            &r.reliability,
            &r.flow,
            styles.cats_of(&paths, &values),
        );
        series_of.insert((r.run_id, r.flow.clone()), (pi, id));
    }
    // points in order of value; at most MAX_CHARTS, evenly spaced
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .iter()
            .zip(points[b].iter())
            .map(|(x, y)| word_order(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let chosen: Vec<usize> = if order.len() <= MAX_CHARTS {
        order
    } else {
        let n = order.len() - 1;
        let mut c: Vec<usize> = (0..MAX_CHARTS)
            .map(|k| order[(k * n + (MAX_CHARTS - 1) / 2) / (MAX_CHARTS - 1)])
            .collect();
        c.dedup();
        c
    };
    let mut lat: BTreeMap<(usize, Ident), Chunked> = BTreeMap::new();
    let msg_path = dir.join("messages.csv");
    let mut rd = csv::ReaderBuilder::new()
        .buffer_capacity(1 << 20)
        .from_path(&msg_path)
        .map_err(|e| ChartError::Read(msg_path.clone(), e.to_string()))?;
    let h = rd
        .byte_headers()
        .map_err(|e| ChartError::Read(msg_path.clone(), e.to_string()))?
        .clone();
    let col = |n: &str| h.iter().position(|c| c == n.as_bytes());
    let (Some(c_run), Some(c_flow), Some(c_lat)) = (col("run_id"), col("flow"), col("latency_ms"))
    else {
        return Err(ChartError::Format(msg_path, "not a messages.csv".into()));
    };
    // messages.csv can be large: one reused byte record, and only the rows
    // of the chosen points parsed further
    let mut by_run: BTreeMap<u64, Vec<(&str, usize, &Ident)>> = BTreeMap::new();
    for ((run, flow), (pi, id)) in &series_of {
        if chosen.contains(pi) {
            by_run.entry(*run).or_default().push((flow, *pi, id));
        }
    }
    let mut rec = csv::ByteRecord::new();
    loop {
        match rd.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ChartError::Read(msg_path.clone(), e.to_string())),
        }
        let Some(run) = rec
            .get(c_run)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let Some(flows) = by_run.get(&run) else {
            continue;
        };
        let flow = rec.get(c_flow).unwrap_or_default();
        let Some(&(_, pi, id)) = flows.iter().find(|f| f.0.as_bytes() == flow) else {
            continue;
        };
        let Some(l) = rec
            .get(c_lat)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        match lat.get_mut(&(pi, id.clone())) {
            Some(v) => v.push(l),
            None => {
                lat.insert((pi, id.clone()), Chunked::with(l));
            }
        }
    }
    let out_dir = dir.join("charts");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| ChartError::Write(out_dir.clone(), e.to_string()))?;
    let mut written = Vec::new();
    let axis_names: Vec<String> = axis_paths
        .iter()
        .map(|p| lc_first(&styles.axis_label(p)))
        .collect();
    for &pi in &chosen {
        let mut curves: Curves = Vec::new();
        // BTreeMap order: by identity, as in every other chart
        // each series belongs to one point: its values are taken, not copied
        for ((p, id), v) in lat.iter_mut() {
            if *p == pi {
                let mut v = std::mem::take(v).into_vec();
                v.sort_by(f64::total_cmp);
                curves.push((styles.label(id), styles.style(id), v));
            }
        }
        if curves.is_empty() {
            continue;
        }
        let (name, title) = if points[pi].is_empty() {
            (
                "latency_cdf".to_string(),
                "Latency CDF of delivered messages".to_string(),
            )
        } else {
            let file: Vec<String> = axis_paths
                .iter()
                .zip(&points[pi])
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let words: Vec<String> = axis_names
                .iter()
                .zip(&points[pi])
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            (
                format!("latency_cdf_at_{}", safe(&file.join(", "))),
                format!("Latency CDF at {}", words.join(", ")),
            )
        };
        let rendered: Result<(String, Vec<u8>), String> =
            (|| render_both!(|root, s| draw(root, s, &title, &curves)))();
        let (svg, png) = rendered.map_err(|e| ChartError::Write(out_dir.join(&name), e))?;
        write_pair(&out_dir, &name, &title, "cdf", &svg, &png, &mut written)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::Chunked;

    #[test]
    fn chunked_latencies_keep_order_and_no_slack() {
        let n = 2 * Chunked::CHUNK + 123;
        let mut c = Chunked::with(0.0);
        for i in 1..n {
            c.push(i as f64);
        }
        assert_eq!(c.len(), n);
        // full chunks are exact; only the last one can hold spare room
        assert_eq!(c.full.len(), 2);
        assert!(c.full.iter().all(|b| b.len() == Chunked::CHUNK));
        let v = c.into_vec();
        assert_eq!(v.len(), n);
        assert_eq!(v.capacity(), n);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f64));
        // a short series stays small
        let mut s = Chunked::with(1.5);
        s.push(2.5);
        assert!(s.last.capacity() < 64);
        assert_eq!(s.into_vec(), vec![1.5, 2.5]);
    }
}
