//! Latency CDFs from `messages.csv`: the empirical distribution of delivered
//! messages' latency per flow, at chosen parameter points.
//!
//! A single run gets one chart with a curve per flow. A sweep gets one chart
//! per chosen point — the first, middle and last point of its grid (in
//! `runs.csv` order) — with a curve per flow, pooling the replications.
//! The x axis is logarithmic (latencies span milliseconds to the CoAP give-up
//! time); y is the fraction of delivered messages with at most that latency.

use super::charts::{encode_png, register, render_both, safe, ChartError, FAMILY, PALETTE, SIZE};
use crate::report::atomic::write_atomic_unsynced;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Curves of one chart: (label, sorted latencies in ms).
type Curves = Vec<(String, Vec<f64>)>;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    curves: &Curves,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let lo = curves
        .iter()
        .filter_map(|c| c.1.first())
        .fold(f64::MAX, |a, &b| a.min(b))
        .max(1e-3);
    let hi = curves
        .iter()
        .filter_map(|c| c.1.last())
        .fold(lo * 10.0, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0.0..1.02)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("fraction of delivered messages")
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    for (i, (label, lat)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
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
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Write `charts/latency_cdf*.svg/png` for `dir` (needs runs.csv and messages.csv).
pub(crate) fn write_cdfs(dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    register();
    let runs_path = dir.join("runs.csv");
    let rows = crate::metrics::summary::read_runs(
        std::fs::File::open(&runs_path)
            .map_err(|e| ChartError::Read(runs_path.clone(), e.to_string()))?,
    )
    .map_err(|e| ChartError::Format(runs_path.clone(), e))?;
    // points in order of first appearance; run id → point; (run, flow) → series name
    let mut points: Vec<String> = Vec::new();
    let mut run_point: BTreeMap<u64, usize> = BTreeMap::new();
    let mut flow_label: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        let p: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let p = p.join(", ");
        let pi = match points.iter().position(|x| *x == p) {
            Some(i) => i,
            None => {
                points.push(p);
                points.len() - 1
            }
        };
        run_point.insert(r.run_id, pi);
        flow_label
            .entry(r.flow.clone())
            .or_insert_with(|| format!("{} {} — {}", r.protocol, r.reliability, r.flow));
    }
    let mut chosen: Vec<usize> = vec![0, points.len() / 2, points.len().saturating_sub(1)];
    chosen.dedup();
    chosen.retain(|&p| p < points.len());
    let mut lat: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
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
    let field = |rec: &csv::ByteRecord, c: usize| {
        rec.get(c)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string)
    };
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
        let Some(&pi) = run_point.get(&run) else {
            continue;
        };
        if !chosen.contains(&pi) {
            continue;
        }
        let Some(l) = rec
            .get(c_lat)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        lat.entry((pi, field(&rec, c_flow).unwrap_or_default()))
            .or_default()
            .push(l);
    }
    let out_dir = dir.join("charts");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| ChartError::Write(out_dir.clone(), e.to_string()))?;
    let mut written = Vec::new();
    for &pi in &chosen {
        let mut curves: Curves = Vec::new();
        for ((p, flow), v) in &lat {
            if *p == pi && !v.is_empty() {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                curves.push((
                    flow_label
                        .get(flow)
                        .cloned()
                        .unwrap_or_else(|| flow.clone()),
                    v,
                ));
            }
        }
        if curves.is_empty() {
            continue;
        }
        let (name, title) = if points[pi].is_empty() {
            (
                "latency_cdf".to_string(),
                "latency CDF of delivered messages".to_string(),
            )
        } else {
            (
                format!("latency_cdf_at_{}", safe(&points[pi])),
                format!("latency CDF at {}", points[pi]),
            )
        };
        let rendered: Result<(String, Vec<u8>), String> =
            (|| render_both!(|root| draw(root, &title, &curves)))();
        let (svg, png_bytes) = rendered.map_err(|e| ChartError::Write(out_dir.join(&name), e))?;
        for (ext, bytes) in [("svg", svg.into_bytes()), ("png", png_bytes)] {
            let p = out_dir.join(format!("{name}.{ext}"));
            write_atomic_unsynced(&p, &bytes)
                .map_err(|e| ChartError::Write(p.clone(), e.to_string()))?;
            written.push(p);
        }
    }
    Ok(written)
}
