//! `report.html`: one self-contained page per results directory, built from
//! the files already there, in reading order:
//!
//! 1. **Headline numbers** per series (protocol and QoS, plus the flow when
//!    several flows share both): delivery ratio, latency p50 and p99 and
//!    bytes on the wire per delivered message, taken as they are from
//!    `summary.csv` (means over the runs of each parameter point, with the
//!    95 % half-width and the number of runs: `0.954 ± 0.0111 (n = 3)`).
//!    With swept parameters there is one small table per metric, series by
//!    parameter point.
//! 2. **Charts** (`charts/*.svg`, inlined) in a grid, in a fixed order —
//!    delivery, latency, bytes, time series, then any other — each with a
//!    caption in words derived from its file name ([`CHART_KINDS`]); a chart
//!    this table does not know goes last, its name turned into words.
//! 3. **Tables** (`summary.csv`, `runs.csv`, `connections.csv`,
//!    `mqtt.csv`) each in a `<details>` element, collapsed when longer than
//!    [`OPEN_ROWS`] rows, scrolling inside its own box; the sequence diagram
//!    of the first retransmitted message (runs with `--trace`); the resolved
//!    scenario from `manifest.json`.
//!
//! Every number is written by [`sig3`] (three significant digits, integer
//! parts kept whole); counts written as integers in the CSV stay integers.
//!
//! Self-contained: inline CSS and SVG, no script, no external font, image or
//! link, so it opens offline and can be mailed. Every text that comes from a
//! file (scenario names, topics, flow names, the scenario TOML) is
//! HTML-escaped. The page is a pure function of the CSVs, the charts and the
//! manifest's reproducible fields (scenario, version, seed, overrides, run
//! count, resolved scenario): wall time, host, paths and the git hash (it
//! changes with every commit while the results do not; manifest.json has
//! it) are left out, so the same scenario and seed give a byte-identical
//! page.

use crate::report::atomic::write_atomic;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

/// Rows shown per table before the page points to the CSV instead.
const MAX_ROWS: usize = 500;

/// Tables with at most this many rows are shown open; longer ones are
/// collapsed (`<details>` without `open`).
const OPEN_ROWS: usize = 12;

/// Headline metrics: summary.csv column, heading, unit.
const HEADLINE: [(&str, &str, &str); 4] = [
    ("delivery_ratio", "Delivery ratio", ""),
    ("latency_ms_p50", "Latency p50", "ms"),
    ("latency_ms_p99", "Latency p99", "ms"),
    (
        "bytes_on_wire_per_delivered",
        "Bytes on the wire per delivered message",
        "B",
    ),
];

/// Metrics shown in the summary and per-flow tables, with their headings.
const KEY_METRICS: [(&str, &str); 9] = [
    ("delivery_ratio", "delivery ratio"),
    ("latency_ms_p50", "p50 ms"),
    ("latency_ms_p95", "p95 ms"),
    ("latency_ms_p99", "p99 ms"),
    ("bytes_on_wire_per_delivered", "B / delivered"),
    ("retransmissions", "retrans."),
    ("duplicates", "duplicates"),
    ("sent", "sent"),
    ("delivered", "delivered"),
];

/// Chart kinds in page order: (file-name prefix, caption words). The first
/// prefix a chart's file name starts with gives its place and caption, so
/// specific prefixes come before general ones; the rest of the name adds
/// "against <parameter>", "at <point>", "by series" or the series
/// ([`chart_caption`]). Names no prefix matches go after all of these, in
/// name order, captioned with their name in words.
pub(crate) const CHART_KINDS: &[(&str, &str)] = &[
    ("delivery_ratio", "Delivery ratio"),
    ("delivery", "Delivery"),
    ("latency_ms_p50", "Latency p50 (ms)"),
    ("latency_ms_p95", "Latency p95 (ms)"),
    ("latency_ms_p99", "Latency p99 (ms)"),
    ("latency_cdf", "Latency distribution (CDF)"),
    ("latency", "Latency"),
    (
        "bytes_on_wire_per_delivered",
        "Bytes on the wire per delivered message",
    ),
    ("bytes_by_layer", "Bytes per delivered message by layer"),
    (
        "frames_air_per_delivered",
        "Frames on the air per delivered message",
    ),
    (
        "bytes_air_per_delivered",
        "Bytes on the air per delivered message",
    ),
    (
        "airtime_ms_air_per_delivered",
        "Airtime per delivered message (ms)",
    ),
    (
        "energy_mj_air_per_delivered",
        "Radio energy per delivered message (mJ)",
    ),
    ("bytes", "Bytes"),
    ("connect_ms_mean", "Time to connect (ms)"),
    ("timeseries_delivery_ratio", "Delivery ratio over time"),
    ("timeseries_latency_ms_p99", "Latency p99 over time (ms)"),
    ("timeseries_latency", "Latency over time"),
    ("timeseries_bytes_on_wire", "Bytes on the wire over time"),
    ("timeseries_bytes", "Bytes over time"),
    ("timeseries", "Over time"),
];

const CSS: &str =
    "body{font-family:sans-serif;margin:1.5em auto;max-width:1250px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse;font-size:.85em;margin:0}\
caption{text-align:left;font-weight:bold;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}\
th{background:#f0f0f0;position:sticky;top:0}td.t,th.t{text-align:left}\
.n{display:block;font-size:.8em;color:#666}\
#headline table{font-size:.8em}#headline th,#headline td{padding:.2em .35em}\
.box{overflow:auto;max-width:100%;margin:.5em 0}\
details .box{max-height:70vh;border:1px solid #ddd}\
details{margin:.8em 0}summary{cursor:pointer;font-weight:bold}\
.meta{color:#555}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,540px),1fr));gap:1em}\
figure{margin:0;min-width:0}\
figure svg{width:100%;height:auto;border:1px solid #eee}\
figure svg text{font-family:sans-serif}\
figcaption{font-size:.9em;color:#333;margin-top:.2em}\
.diagram svg{max-width:100%;height:auto}\
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em}\
nav a{margin-right:1em}";

/// HTML-escape text for element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A CSV file: header and rows.
struct Csv {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> io::Result<Option<Csv>> {
        if !path.is_file() {
            return Ok(None);
        }
        let mut r = csv::Reader::from_path(path).map_err(io::Error::other)?;
        let head = r
            .headers()
            .map_err(io::Error::other)?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(io::Error::other)?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(Some(Csv { head, rows }))
    }
    fn col(&self, name: &str) -> Option<usize> {
        self.head.iter().position(|h| h == name)
    }
    fn cell<'a>(&'a self, row: &'a [String], name: &str) -> &'a str {
        self.col(name)
            .and_then(|c| row.get(c))
            .map_or("", String::as_str)
    }
}

/// The one number format of the page: three significant digits, except
/// that an integer part is never rounded away (1505, not 1.50e3); zero is
/// "0"; magnitudes below 0.0001 or from 10^9 up in exponent form with three
/// digits (1.23e-5). Deterministic (Rust's float formatting).
pub(crate) fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e9).contains(&a) {
        return format!("{v:.2e}");
    }
    // decimal exponent of the leading digit, without trusting log10 at
    // exact powers of ten
    let mut mag = a.log10().floor() as i32;
    if 10f64.powi(mag) > a {
        mag -= 1;
    } else if 10f64.powi(mag + 1) <= a {
        mag += 1;
    }
    let dec = (2 - mag).max(0) as usize;
    let s = format!("{v:.dec$}");
    // rounding up to the next power of ten (0.9996 → 1.000) adds a digit
    match s.parse::<f64>() {
        Ok(r) if dec > 0 && r.abs() >= 10f64.powi(mag + 1) => format!("{v:.0$}", dec - 1),
        _ => s,
    }
}

/// A CSV cell for people: integers as they are (counts, ids), other
/// numbers by [`sig3`], text unchanged. Returns text, not HTML.
fn fmt_num(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return s.to_string();
    }
    match s.parse::<f64>() {
        Ok(v) => sig3(v),
        Err(_) => s.to_string(),
    }
}

/// A mean with its 95 % half-width and run count as HTML:
/// `0.954 ± 0.0111 (n = 3)`, the run count on a line of its own in small
/// type. Without a half-width (one run) only the mean.
fn fmt_ci(mean: &str, half_width: &str, n: &str) -> String {
    let m = fmt_num(mean);
    if m.is_empty() || half_width.is_empty() {
        return escape(&m);
    }
    format!(
        "{} ± {} <span class=\"n\">(n = {})</span>",
        escape(&m),
        escape(&fmt_num(half_width)),
        escape(n)
    )
}

/// Protocol and reliability in words: "MQTT QoS 1", "CoAP CON",
/// "UDP best effort".
pub(crate) fn series_words(protocol: &str, reliability: &str) -> String {
    let p = match protocol {
        "udp" => "UDP",
        "tcp" => "TCP",
        "coap" => "CoAP",
        "mqtt" => "MQTT",
        "mqttsn" => "MQTT-SN",
        "http" => "HTTP",
        other => other,
    };
    let r = match reliability {
        "qos0" => "QoS 0".to_string(),
        "qos1" => "QoS 1".to_string(),
        "qos2" => "QoS 2".to_string(),
        "qos_minus1" => "QoS −1".to_string(),
        "non" => "NON".to_string(),
        "con" => "CON".to_string(),
        other => other.replace('_', " "),
    };
    if r.is_empty() {
        p.to_string()
    } else {
        format!("{p} {r}")
    }
}

/// A scenario path in words: `links.backhaul.loss.p` → "loss probability
/// on link backhaul"; unknown fields keep their names with spaces for
/// dots and underscores.
pub(crate) fn param_words(path: &str) -> String {
    const FIELDS: [(&str, &str); 10] = [
        ("loss.p", "loss probability"),
        ("loss.mean_loss", "mean loss"),
        ("loss.mean_burst", "mean loss burst"),
        ("payload_bytes", "payload size (B)"),
        ("bandwidth", "bandwidth"),
        ("delay", "delay"),
        ("interval", "interval"),
        ("mtu", "MTU"),
        ("queue", "queue length"),
        ("count", "count"),
    ];
    let parts: Vec<&str> = path.split('.').collect();
    let (owner, field) = match parts.as_slice() {
        [kind @ ("links" | "flows" | "nodes" | "groups" | "media"), name, rest @ ..]
            if !rest.is_empty() =>
        {
            let kind = kind.trim_end_matches('s').replace("media", "medium");
            (Some(format!("{kind} {name}")), rest.join("."))
        }
        _ => (None, path.to_string()),
    };
    let field = FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, w)| w.to_string())
        .unwrap_or_else(|| field.replace(['.', '_'], " "));
    match owner {
        Some(o) => format!("{field} on {o}"),
        None => field,
    }
}

/// A name fragment in words: a series label as the charts write it into
/// file names (`coap_con___telemetry-con`) or anything else, underscores
/// to spaces.
fn fragment_words(s: &str) -> String {
    let (series, rest) = match s.split_once("___") {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut w = match series.split_once('_') {
        Some((p, r)) if matches!(p, "udp" | "tcp" | "coap" | "mqtt" | "mqttsn" | "http") => {
            series_words(p, r)
        }
        _ => series.replace('_', " "),
    };
    if let Some(r) = rest {
        w.push_str(", ");
        w.push_str(&r.replace("__", ", ").replace('_', " "));
    }
    w
}

/// A grid point as the charts write it into file names
/// (`links.backhaul.loss.p_0.2`, several joined by `__`) in words. The
/// value starts at the first `_` before a digit or a sign (field names
/// have underscores too: `loss.mean_loss_0.2`), else after the last `_`.
fn point_words(s: &str) -> String {
    s.split("__")
        .map(|p| {
            let at = p
                .char_indices()
                .find(|&(i, c)| {
                    c == '_' && p[i + 1..].starts_with(|d: char| d.is_ascii_digit() || d == '-')
                })
                .map(|(i, _)| i)
                .or_else(|| p.rfind('_'));
            match at.map(|i| (&p[..i], &p[i + 1..])) {
                Some((path, v)) if path.contains('.') => {
                    format!("{} = {}", param_words(path), v.replace('_', " "))
                }
                _ => p.replace('_', " "),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A chart's place on the page (index in [`CHART_KINDS`], unknown kinds
/// last) and its caption in words, from its file name.
pub(crate) fn chart_caption(file: &str) -> (usize, String) {
    let stem = file.strip_suffix(".svg").unwrap_or(file);
    let Some((rank, (prefix, words))) = CHART_KINDS
        .iter()
        .enumerate()
        .find(|(_, (p, _))| stem.starts_with(p))
    else {
        let mut w = fragment_words(stem).replace(" vs ", " against ");
        if let Some(c) = w.get(..1) {
            let up = c.to_uppercase();
            w.replace_range(..1, &up);
        }
        return (CHART_KINDS.len(), w);
    };
    let mut rest = &stem[prefix.len()..];
    let mut caption = words.to_string();
    // a series after a double underscore: `…__coap_con___telemetry-con`
    // (in a grid point, `_at_a_1__b_2`, it separates parameters)
    let mut series = None;
    if let Some((a, b)) = rest.split_once("__").filter(|_| !rest.starts_with("_at_")) {
        if !a.is_empty() {
            rest = a;
            series = Some(fragment_words(b));
        }
    }
    if let Some(p) = rest.strip_prefix("_vs_") {
        let _ = write!(caption, " against {}", param_words(p));
    } else if let Some(p) = rest.strip_prefix("_at_") {
        let _ = write!(caption, " at {}", point_words(p));
    } else if rest == "_by_series" {
        caption.push_str(" by series");
    } else if !rest.is_empty() {
        let _ = write!(
            caption,
            ": {}",
            fragment_words(rest.trim_start_matches('_'))
        );
    }
    if let Some(s) = series {
        let _ = write!(caption, " — {s}");
    }
    (rank, caption)
}

/// A table of HTML cells (callers escape), in a box that scrolls by
/// itself; `text_cols` are left-aligned (names rather than numbers).
fn table(out: &mut String, head: &[String], rows: &[Vec<String>], text_cols: usize, id: &str) {
    let _ = write!(
        out,
        "<div class=\"box\"><table id=\"{}\"><thead><tr>",
        escape(id)
    );
    for (i, h) in head.iter().enumerate() {
        let class = if i < text_cols { " class=\"t\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        for (i, v) in r.iter().enumerate() {
            let class = if i < text_cols { " class=\"t\"" } else { "" };
            let _ = write!(out, "<td{class}>{v}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"meta\">First {MAX_ROWS} of {} rows; the CSV has them all.</p>",
            rows.len()
        );
    }
}

/// A table inside `<details>`, open when it is short: `title` is the
/// summary line, `note` (HTML) a line under it.
#[allow(clippy::too_many_arguments)]
fn details_table(
    out: &mut String,
    section: &str,
    title: &str,
    note: &str,
    head: &[String],
    rows: &[Vec<String>],
    text_cols: usize,
    id: &str,
) {
    let open = if rows.len() <= OPEN_ROWS { " open" } else { "" };
    let plural = if rows.len() == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "<details id=\"{section}\"{open}><summary>{} ({} row{plural})</summary>\n<p class=\"meta\">{note}</p>",
        escape(title),
        rows.len()
    );
    table(out, head, rows, text_cols, id);
    out.push_str("</details>\n");
}

/// Key columns, then the swept parameters (the columns between `pattern`
/// and `first_metric`).
fn key_and_params(t: &Csv, keys: &[&str], first_metric: &str) -> Vec<String> {
    let mut cols: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    cols.extend(params(t, first_metric));
    cols
}

/// The swept-parameter columns: between `pattern` and `first_metric`.
fn params(t: &Csv, first_metric: &str) -> Vec<String> {
    match (t.col("pattern"), t.col(first_metric)) {
        (Some(p), Some(m)) if p < m => t.head[p + 1..m].to_vec(),
        _ => Vec::new(),
    }
}

/// Headline numbers from summary.csv: per series, delivery ratio, latency
/// p50/p99 and bytes per delivered message; one table when no parameter
/// varies, else one table per metric with a column per parameter point.
fn headline_section(out: &mut String, t: &Csv) {
    out.push_str("<section id=\"headline\"><h2>Headline numbers</h2>\n");
    // series in order of first appearance; parameter points likewise
    let varying: Vec<String> = params(t, "runs")
        .into_iter()
        .filter(|p| {
            let first = t.rows.first().map(|r| t.cell(r, p));
            t.rows.iter().any(|r| Some(t.cell(r, p)) != first)
        })
        .collect();
    let mut series: Vec<(String, String, String)> = Vec::new();
    let mut points: Vec<Vec<String>> = Vec::new();
    let mut cells: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (ri, r) in t.rows.iter().enumerate() {
        let s = (
            t.cell(r, "protocol").to_string(),
            t.cell(r, "reliability").to_string(),
            t.cell(r, "flow").to_string(),
        );
        let si = series.iter().position(|x| *x == s).unwrap_or_else(|| {
            series.push(s);
            series.len() - 1
        });
        let p: Vec<String> = varying.iter().map(|v| t.cell(r, v).to_string()).collect();
        let pi = points.iter().position(|x| *x == p).unwrap_or_else(|| {
            points.push(p);
            points.len() - 1
        });
        cells.entry((si, pi)).or_insert(ri);
    }
    // the flow name only where protocol and QoS do not tell series apart
    let labels: Vec<String> = series
        .iter()
        .map(|(p, r, f)| {
            let words = series_words(p, r);
            let shared = series
                .iter()
                .filter(|(p2, r2, _)| p2 == p && r2 == r)
                .count();
            escape(&if shared > 1 {
                format!("{words} — {f}")
            } else {
                words
            })
        })
        .collect();
    let metrics: Vec<(&str, &str, &str)> = HEADLINE
        .iter()
        .copied()
        .filter(|(m, _, _)| t.col(m).is_some())
        .collect();
    let ci = |ri: usize, m: &str| {
        let r = &t.rows[ri];
        fmt_ci(
            t.cell(r, m),
            t.cell(r, &format!("{m}_ci95")),
            t.cell(r, "runs"),
        )
    };
    let heading = |h: &str, unit: &str| {
        if unit.is_empty() {
            h.to_string()
        } else {
            format!("{h} ({unit})")
        }
    };
    out.push_str("<p class=\"meta\">From summary.csv: the mean over the runs of each parameter point, ± the Student-t 95 % half-width and the number of runs n when there are at least two runs (docs/metrics.md). Latency percentiles are each run's percentile, averaged.</p>\n");
    if varying.is_empty() {
        let mut head = vec!["series".to_string()];
        head.extend(metrics.iter().map(|(_, h, u)| heading(h, u)));
        let rows: Vec<Vec<String>> = (0..series.len())
            .filter_map(|si| {
                let ri = *cells.get(&(si, 0))?;
                let mut v = vec![labels[si].clone()];
                v.extend(metrics.iter().map(|(m, _, _)| ci(ri, m)));
                Some(v)
            })
            .collect();
        table(out, &head, &rows, 1, "headline-table");
    } else {
        let columns: Vec<String> = varying.iter().map(|p| param_words(p)).collect();
        for (m, h, u) in &metrics {
            let mut head = vec!["series".to_string()];
            head.extend(points.iter().map(|p| p.join(", ")));
            let rows: Vec<Vec<String>> = (0..series.len())
                .map(|si| {
                    let mut v = vec![labels[si].clone()];
                    v.extend(
                        (0..points.len())
                            .map(|pi| cells.get(&(si, pi)).map_or(String::new(), |&ri| ci(ri, m))),
                    );
                    v
                })
                .collect();
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<p class=\"meta\">Columns: {}.</p>",
                escape(&heading(h, u)),
                escape(&columns.join(", "))
            );
            table(out, &head, &rows, 1, &format!("headline-{m}"));
        }
    }
    out.push_str("</section>\n");
}

fn summary_table(out: &mut String, t: &Csv) {
    let keys = key_and_params(t, &["flow", "protocol", "reliability", "pattern"], "runs");
    let mut head = keys.clone();
    let metrics: Vec<(&str, &str)> = KEY_METRICS
        .iter()
        .copied()
        .filter(|(m, _)| t.col(m).is_some())
        .collect();
    head.extend(metrics.iter().map(|(_, h)| h.to_string()));
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let mut v: Vec<String> = keys.iter().map(|k| escape(t.cell(r, k))).collect();
            for (m, _) in &metrics {
                v.push(fmt_ci(
                    t.cell(r, m),
                    t.cell(r, &format!("{m}_ci95")),
                    t.cell(r, "runs"),
                ));
            }
            v
        })
        .collect();
    details_table(
        out,
        "summary",
        "Summary per parameter point and flow",
        "summary.csv: means over the runs of each parameter point, ± the Student-t 95 % half-width (n = runs) when there are at least two runs; the file has every metric.",
        &head,
        &rows,
        keys.len(),
        "summary-table",
    );
}

fn runs_table(out: &mut String, t: &Csv) {
    let keys = key_and_params(
        t,
        &["run_id", "flow", "protocol", "reliability", "pattern"],
        "sent",
    );
    let mut cols: Vec<String> = keys.clone();
    let extra = [
        "intended",
        "mqtt_wills",
        "mqtt_will_delay_ms_mean",
        "give_ups",
        "drops_channel",
        "bytes_on_wire",
    ];
    cols.extend(
        KEY_METRICS
            .iter()
            .map(|(m, _)| *m)
            .chain(extra)
            .filter(|m| t.col(m).is_some())
            .map(str::to_string),
    );
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            cols.iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = t.cell(r, c);
                    escape(&if i < keys.len() {
                        v.to_string()
                    } else {
                        fmt_num(v)
                    })
                })
                .collect()
        })
        .collect();
    details_table(
        out,
        "flows",
        "Per run and flow",
        "runs.csv (every column is in the file).",
        &cols,
        &rows,
        keys.len(),
        "runs-table",
    );
}

fn connections_table(out: &mut String, t: &Csv) {
    // per flow: endpoints, failed, retransmissions, RTO expiries, mean handshake
    let mut by: BTreeMap<String, [f64; 6]> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in &t.rows {
        let flow = t.cell(r, "flow").to_string();
        if !by.contains_key(&flow) {
            order.push(flow.clone());
        }
        let e = by.entry(flow).or_default();
        let n = |c: &str| t.cell(r, c).parse::<f64>().ok();
        e[0] += 1.0;
        e[1] += n("failed").unwrap_or(0.0);
        e[2] += n("retransmissions").unwrap_or(0.0);
        e[3] += n("rto_expiries").unwrap_or(0.0);
        if let Some(h) = n("handshake_ms") {
            e[4] += h;
            e[5] += 1.0;
        }
    }
    let head: Vec<String> = [
        "flow",
        "endpoints",
        "failed",
        "retransmissions",
        "RTO expiries",
        "mean handshake ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|f| {
            let e = by[f];
            let hs = if e[5] > 0.0 {
                sig3(e[4] / e[5])
            } else {
                String::new()
            };
            vec![
                escape(f),
                format!("{:.0}", e[0]),
                format!("{:.0}", e[1]),
                format!("{:.0}", e[2]),
                format!("{:.0}", e[3]),
                hs,
            ]
        })
        .collect();
    details_table(
        out,
        "connections",
        "TCP connections",
        "connections.csv summed per flow (one row per endpoint in the file).",
        &head,
        &rows,
        1,
        "connections-table",
    );
}

fn mqtt_table(out: &mut String, t: &Csv) {
    // long format → metric rows, one column per (scope, name)
    let mut cols: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in &t.rows {
        let col = format!("{} {}", t.cell(r, "scope"), t.cell(r, "name"));
        let runs = t.cell(r, "run_id");
        let col = if runs == "0" {
            col
        } else {
            format!("{col} (run {runs})")
        };
        let m = t.cell(r, "metric").to_string();
        if !cols.contains(&col) {
            cols.push(col.clone());
        }
        if !metrics.contains(&m) {
            metrics.push(m.clone());
        }
        cells.insert((m, col), escape(&fmt_num(t.cell(r, "value"))));
    }
    let mut head = vec!["metric".to_string()];
    head.extend(cols.iter().cloned());
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let mut v = vec![escape(m)];
            v.extend(cols.iter().map(|c| {
                cells
                    .get(&(m.clone(), c.clone()))
                    .cloned()
                    .unwrap_or_default()
            }));
            v
        })
        .collect();
    details_table(
        out,
        "mqtt",
        "MQTT broker and clients",
        "mqtt.csv (docs/metrics.md): broker counters and $SYS values, and per-flow client counters.",
        &head,
        &rows,
        1,
        "mqtt-table",
    );
}

/// An SVG file's markup without an XML prologue or doctype, or None when it
/// is not an SVG document. A root without a `viewBox` gets one from its
/// width and height, so the grid can scale it.
fn svg_markup(text: &str) -> Option<String> {
    let start = text.find("<svg")?;
    let end = text.rfind("</svg>")? + "</svg>".len();
    if start >= end {
        return None;
    }
    let svg = &text[start..end];
    let open_end = svg.find('>')?;
    let open = &svg[..open_end];
    if open.contains("viewBox") {
        return Some(svg.to_string());
    }
    let attr = |name: &str| -> Option<f64> {
        let i = open.find(&format!(" {name}=\""))? + name.len() + 3;
        let j = open[i..].find('"')? + i;
        open[i..j].parse::<f64>().ok()
    };
    match (attr("width"), attr("height")) {
        (Some(w), Some(h)) => Some(format!("<svg viewBox=\"0 0 {w} {h}\"{}", &svg[4..])),
        _ => Some(svg.to_string()),
    }
}

fn charts_section(out: &mut String, dir: &Path) -> io::Result<()> {
    let cdir = dir.join("charts");
    let names: Vec<String> = match fs::read_dir(&cdir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".svg"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut charts: Vec<(usize, String, String)> = names
        .into_iter()
        .map(|n| {
            let (rank, caption) = chart_caption(&n);
            (rank, n, caption)
        })
        .collect();
    charts.sort();
    out.push_str("<section id=\"charts\"><h2>Charts</h2>\n");
    if charts.is_empty() {
        out.push_str("<p>No charts in this directory.</p>\n");
    } else {
        out.push_str("<div class=\"charts\">\n");
        for (_, n, caption) in &charts {
            let text = fs::read_to_string(cdir.join(n))?;
            let Some(svg) = svg_markup(&text) else {
                continue;
            };
            let _ = writeln!(
                out,
                "<figure class=\"chart\" data-chart=\"{}\">{svg}<figcaption>{}</figcaption></figure>",
                escape(n),
                escape(caption)
            );
        }
        out.push_str("</div>\n");
    }
    out.push_str("</section>\n");
    Ok(())
}

/// The sequence diagram of the first message that needed a retransmission
/// (runs with `--trace`; `qossim diagram`). A trace it cannot read leaves
/// the section saying so; the rest of the report does not depend on it.
fn diagram_section(out: &mut String, dir: &Path) {
    use crate::report::diagram;
    out.push_str("<section id=\"diagram\"><h2>First retransmitted message</h2>\n");
    match diagram::first_retransmitted(dir).and_then(|t| match t {
        Some(tag) => diagram::diagram(dir, &tag).map(Some),
        None => Ok(None),
    }) {
        Ok(Some(d)) => {
            let _ = writeln!(
                out,
                "<p class=\"meta\">trace.csv: the life of message {0} across nodes, lost packets crossed (<code>qossim diagram &lt;this directory&gt; --message {0}</code> writes it as Mermaid and SVG; docs/traces.md).</p>\n<figure class=\"diagram\" data-chart=\"diagram\"><div class=\"box\">{1}</div></figure>",
                escape(&d.tag),
                d.svg
            );
        }
        Ok(None) => out.push_str("<p>No message in trace.csv needed a retransmission.</p>\n"),
        Err(e) => {
            let _ = writeln!(out, "<p>No diagram: {}</p>", escape(&e.to_string()));
        }
    }
    out.push_str("</section>\n");
}

/// Write `dir/report.html` from the results already in `dir`.
pub(crate) fn write_report(dir: &Path) -> io::Result<()> {
    let manifest: serde_json::Value = match fs::read_to_string(dir.join("manifest.json")) {
        Ok(s) => serde_json::from_str(&s).map_err(io::Error::other)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => serde_json::Value::Null,
        Err(e) => return Err(e),
    };
    let runs = Csv::read(&dir.join("runs.csv"))?;
    let summary = Csv::read(&dir.join("summary.csv"))?;
    let text = |k: &str| manifest.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let scenario = text("scenario")
        .or_else(|| {
            runs.as_ref()
                .and_then(|t| t.rows.first().map(|r| t.cell(r, "scenario").to_string()))
        })
        .unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>qossim report: {0}</title><style>{CSS}</style></head><body>\n\
<h1>qossim report: {0}</h1>\n",
        escape(&scenario)
    );
    let mut meta = Vec::new();
    if let Some(v) = text("qossim_version") {
        meta.push(format!("qossim {}", escape(&v)));
    }
    if let Some(v) = manifest.get("master_seed").and_then(|v| v.as_u64()) {
        meta.push(format!("master seed {v}"));
    }
    if let Some(v) = manifest.get("runs").and_then(|v| v.as_array()) {
        meta.push(format!("{} run(s)", v.len()));
    }
    if let Some(o) = manifest.get("overrides").and_then(|v| v.as_array()) {
        let o: Vec<String> = o
            .iter()
            .filter_map(|v| v.as_str())
            .map(|s| format!("--set {}", escape(s)))
            .collect();
        if !o.is_empty() {
            meta.push(o.join(" "));
        }
    }
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    out.push_str("<nav><a href=\"#headline\">headline</a><a href=\"#charts\">charts</a><a href=\"#tables\">tables</a><a href=\"#scenario\">scenario</a></nav>\n");
    match &summary {
        Some(t) => headline_section(&mut out, t),
        None => out.push_str("<section id=\"headline\"><h2>Headline numbers</h2><p>No summary.csv in this directory.</p></section>\n"),
    }
    charts_section(&mut out, dir)?;
    if dir.join("trace.csv").is_file() {
        diagram_section(&mut out, dir);
    }
    out.push_str("<section id=\"tables\"><h2>Tables</h2>\n");
    if let Some(t) = &summary {
        summary_table(&mut out, t);
    }
    if let Some(t) = &runs {
        runs_table(&mut out, t);
    }
    if let Some(t) = Csv::read(&dir.join("connections.csv"))? {
        connections_table(&mut out, &t);
    }
    if let Some(t) = Csv::read(&dir.join("mqtt.csv"))? {
        mqtt_table(&mut out, &t);
    }
    out.push_str("</section>\n<section id=\"scenario\"><h2>Resolved scenario</h2>\n");
    match text("resolved_scenario") {
        Some(s) => {
            let lines = s.lines().count();
            let _ = writeln!(
                out,
                "<details><summary>The scenario as run ({lines} lines)</summary><pre>{}</pre></details>",
                escape(&s)
            );
        }
        None => out.push_str("<p>No manifest.json in this directory.</p>\n"),
    }
    out.push_str("</section>\n<p class=\"meta\">Written by qossim from the files in this directory; wall time and host are in manifest.json.</p>\n</body></html>\n");
    write_atomic(&dir.join("report.html"), out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }

    #[test]
    fn numbers_have_three_significant_digits() {
        assert_eq!(sig3(1.0), "1.00");
        assert_eq!(sig3(0.954_2), "0.954");
        assert_eq!(sig3(0.011_1), "0.0111");
        assert_eq!(sig3(28.812_345), "28.8");
        assert_eq!(sig3(476.412_3), "476");
        assert_eq!(sig3(1504.4), "1504");
        assert_eq!(sig3(106_200.0), "106200");
        assert_eq!(sig3(-4.567_89), "-4.57");
        assert_eq!(sig3(0.0), "0");
        // rounding up to the next power of ten keeps three digits
        assert_eq!(sig3(0.999_6), "1.00");
        assert_eq!(sig3(9.996), "10.0");
        assert_eq!(sig3(99.96), "100");
        // exact powers of ten
        assert_eq!(sig3(0.1), "0.100");
        assert_eq!(sig3(100.0), "100");
        assert_eq!(sig3(1000.0), "1000");
        assert_eq!(sig3(0.000_229_4), "0.000229");
        assert_eq!(sig3(0.000_012_34), "1.23e-5");
        assert_eq!(sig3(2.5e12), "2.50e12");
        assert_eq!(sig3(f64::NAN), "NaN");
    }

    #[test]
    fn cells_keep_counts_and_text() {
        assert_eq!(fmt_num("590"), "590");
        assert_eq!(fmt_num("7"), "7");
        assert_eq!(fmt_num("590.000000"), "590");
        assert_eq!(fmt_num("1.000000"), "1.00");
        assert_eq!(fmt_num("0.797458"), "0.797");
        assert_eq!(fmt_num(""), "");
        assert_eq!(fmt_num("qos1"), "qos1");
        assert_eq!(
            fmt_ci("0.954200", "0.011100", "3"),
            "0.954 ± 0.0111 <span class=\"n\">(n = 3)</span>"
        );
        assert_eq!(
            fmt_ci("1.000000", "0.000000", "3"),
            "1.00 ± 0 <span class=\"n\">(n = 3)</span>"
        );
        assert_eq!(fmt_ci("32.518983", "", "1"), "32.5");
        assert_eq!(fmt_ci("", "", "1"), "");
    }

    #[test]
    fn chart_captions_are_words_in_a_fixed_order() {
        let c = |n: &str| chart_caption(n).1;
        assert_eq!(
            c("delivery_ratio_vs_links.backhaul.loss.p.svg"),
            "Delivery ratio against loss probability on link backhaul"
        );
        assert_eq!(
            c("delivery_ratio_by_series.svg"),
            "Delivery ratio by series"
        );
        assert_eq!(
            c("latency_cdf_at_links.backhaul.loss.p_0.2.svg"),
            "Latency distribution (CDF) at loss probability on link backhaul = 0.2"
        );
        assert_eq!(c("latency_cdf.svg"), "Latency distribution (CDF)");
        assert_eq!(
            c("bytes_by_layer_vs_links.backhaul.loss.p__coap_con___telemetry-con.svg"),
            "Bytes per delivered message by layer against loss probability on link backhaul — CoAP CON, telemetry-con"
        );
        assert_eq!(
            c("bytes_by_layer_by_series.svg"),
            "Bytes per delivered message by layer by series"
        );
        assert_eq!(
            c("timeseries_latency_ms_p99.svg"),
            "Latency p99 over time (ms)"
        );
        assert_eq!(
            c("latency_cdf_at_flows.t.interval_1_s__links.l.delay_5.svg"),
            "Latency distribution (CDF) at interval on flow t = 1 s, delay on link l = 5"
        );
        assert_eq!(
            c("latency_cdf_at_links.l.loss.mean_loss_0.2.svg"),
            "Latency distribution (CDF) at mean loss on link l = 0.2"
        );
        // unknown kinds: last, name in words, no file-name fragments
        assert_eq!(
            chart_caption("energy_mj_vs_nodes.s.tx.svg").0,
            CHART_KINDS.len()
        );
        assert_eq!(
            c("energy_mj_vs_nodes.s.tx.svg"),
            "Energy mj against nodes.s.tx"
        );
        let mut names = vec![
            "zz_other.svg",
            "timeseries_bytes_on_wire.svg",
            "bytes_on_wire_per_delivered_vs_x.svg",
            "timeseries_delivery_ratio.svg",
            "latency_ms_p99_vs_x.svg",
            "latency_cdf_at_x_1.svg",
            "latency_ms_p50_vs_x.svg",
            "delivery_ratio_vs_x.svg",
            "bytes_by_layer_vs_x__udp_best_effort___f.svg",
            "aa_other.svg",
        ];
        names.sort_by_key(|n| (chart_caption(n).0, n.to_string()));
        assert_eq!(
            names,
            [
                "delivery_ratio_vs_x.svg",
                "latency_ms_p50_vs_x.svg",
                "latency_ms_p99_vs_x.svg",
                "latency_cdf_at_x_1.svg",
                "bytes_on_wire_per_delivered_vs_x.svg",
                "bytes_by_layer_vs_x__udp_best_effort___f.svg",
                "timeseries_delivery_ratio.svg",
                "timeseries_bytes_on_wire.svg",
                "aa_other.svg",
                "zz_other.svg",
            ]
        );
    }

    #[test]
    fn series_and_parameters_in_words() {
        assert_eq!(series_words("mqttsn", "qos1"), "MQTT-SN QoS 1");
        assert_eq!(series_words("udp", "best_effort"), "UDP best effort");
        assert_eq!(series_words("coap", "non"), "CoAP NON");
        assert_eq!(series_words("myproto", "x_y"), "myproto x y");
        assert_eq!(
            param_words("links.backhaul.loss.p"),
            "loss probability on link backhaul"
        );
        assert_eq!(
            param_words("groups.sensor-{i}.link.loss.mean_loss"),
            "link loss mean loss on group sensor-{i}"
        );
        assert_eq!(param_words("seed_offset"), "seed offset");
    }

    /// Charts are ordered and captioned in words, the headline comes
    /// before the charts and the tables after them; every SVG is inlined
    /// once; a directory without a manifest still gets a page.
    #[test]
    fn page_order_and_missing_manifest_tolerated() {
        let dir = std::env::temp_dir().join(format!("qossim-html-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("charts")).expect("dir");
        fs::write(
            dir.join("runs.csv"),
            "run_id,scenario,seed,replication,protocol,reliability,flow,pattern,sent,delivered\n\
             0,s<1>,1,0,udp,best_effort,f&1,fan_in,10,9\n",
        )
        .expect("runs");
        let svg = |t: &str| {
            format!("<?xml version=\"1.0\"?>\n<svg width=\"90\" height=\"56\" xmlns=\"http://www.w3.org/2000/svg\"><text>{t}</text></svg>\n")
        };
        fs::write(dir.join("charts/delivery_ratio_by_series.svg"), svg("dr")).expect("svg");
        fs::write(dir.join("charts/timeseries_delivery_ratio.svg"), svg("ts")).expect("svg");
        fs::write(dir.join("charts/delivery_ratio_by_series.png"), b"png").expect("png");
        write_report(&dir).expect("report");
        let html = fs::read_to_string(dir.join("report.html")).expect("html");
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} missing"));
        let dr = at("data-chart=\"delivery_ratio_by_series.svg\"");
        let ts = at("data-chart=\"timeseries_delivery_ratio.svg\"");
        assert!(at("id=\"headline\"") < dr && dr < ts && ts < at("id=\"tables\""));
        assert!(html.contains("<figcaption>Delivery ratio over time</figcaption>"));
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "SVGs inlined once, PNGs not"
        );
        assert!(
            html.contains("<svg viewBox=\"0 0 90 56\" width=\"90\""),
            "viewBox added"
        );
        assert!(!html.contains("<?xml"));
        assert!(
            html.contains("qossim report: s&lt;1&gt;"),
            "name from runs.csv, escaped"
        );
        assert!(html.contains("f&amp;1"));
        assert!(html.contains("No summary.csv") && html.contains("No manifest.json"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn svg_markup_drops_the_prologue() {
        let s = "<?xml version=\"1.0\"?>\n<svg a=\"1\" viewBox=\"0 0 1 1\"><g/></svg>\n";
        assert_eq!(
            svg_markup(s).as_deref(),
            Some("<svg a=\"1\" viewBox=\"0 0 1 1\"><g/></svg>")
        );
        assert_eq!(svg_markup("not svg"), None);
    }
}
