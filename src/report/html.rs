//! `report.html`: one self-contained page per results directory, built from
//! the files already there — the summary and per-flow tables (`summary.csv`,
//! `runs.csv`), TCP and MQTT summaries (`connections.csv`, `mqtt.csv`) when
//! present, every chart (`charts/*.svg`, inlined; time-series charts
//! `charts/timeseries_*.svg` first) and the resolved scenario from
//! `manifest.json`.
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

const CSS: &str =
    "body{font-family:sans-serif;margin:1.5em auto;max-width:1250px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}\
th{background:#f0f0f0}td.t,th.t{text-align:left}\
.scroll{overflow-x:auto}.meta{color:#555}\
figure{margin:1em 0;display:inline-block;vertical-align:top}\
figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figure svg text{font-family:sans-serif}\
figcaption{font-size:.8em;color:#555}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.8em}\
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

/// A number for people: integers as they are, others to a precision that
/// suits their size (deterministic: Rust's float formatting).
fn fmt_num(s: &str) -> String {
    let Ok(v) = s.parse::<f64>() else {
        return s.to_string();
    };
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// A table; `text_cols` are left-aligned (names rather than numbers).
fn table(out: &mut String, head: &[String], rows: &[Vec<String>], text_cols: usize, id: &str) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table id=\"{}\"><tr>",
        escape(id)
    );
    for (i, h) in head.iter().enumerate() {
        let class = if i < text_cols { " class=\"t\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        for (i, v) in r.iter().enumerate() {
            if i < text_cols {
                let _ = write!(out, "<td class=\"t\">{}</td>", escape(v));
            } else {
                let _ = write!(out, "<td>{}</td>", escape(v));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"meta\">First {MAX_ROWS} of {} rows; the CSV has them all.</p>",
            rows.len()
        );
    }
}

/// Key columns, then the swept parameters (the columns between `pattern`
/// and `first_metric`).
fn key_and_params(t: &Csv, keys: &[&str], first_metric: &str) -> Vec<String> {
    let mut cols: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    if let (Some(p), Some(m)) = (t.col("pattern"), t.col(first_metric)) {
        cols.extend(t.head[p + 1..m].iter().cloned());
    }
    cols
}

fn summary_section(out: &mut String, t: &Csv) {
    let keys = key_and_params(t, &["flow", "protocol", "reliability", "pattern"], "runs");
    let mut head = keys.clone();
    head.push("runs".into());
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
            let mut v: Vec<String> = keys.iter().map(|k| t.cell(r, k).to_string()).collect();
            v.push(t.cell(r, "runs").to_string());
            for (m, _) in &metrics {
                let mean = fmt_num(t.cell(r, m));
                let ci = t.cell(r, &format!("{m}_ci95"));
                v.push(if ci.is_empty() || mean.is_empty() {
                    mean
                } else {
                    format!("{mean} ± {}", fmt_num(ci))
                });
            }
            v
        })
        .collect();
    out.push_str("<section id=\"summary\"><h2>Summary</h2>\n<p class=\"meta\">summary.csv: means over the runs of each parameter point, ± the Student-t 95 % half-width when there are at least two runs (docs/metrics.md).</p>\n");
    table(out, &head, &rows, keys.len(), "summary-table");
    out.push_str("</section>\n");
}

fn runs_section(out: &mut String, t: &Csv) {
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
                    if i < keys.len() {
                        v.to_string()
                    } else {
                        fmt_num(v)
                    }
                })
                .collect()
        })
        .collect();
    out.push_str("<section id=\"flows\"><h2>Per run and flow</h2>\n<p class=\"meta\">runs.csv (every column is in the file).</p>\n");
    table(out, &cols, &rows, keys.len(), "runs-table");
    out.push_str("</section>\n");
}

fn connections_section(out: &mut String, t: &Csv) {
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
                format!("{:.3}", e[4] / e[5])
            } else {
                String::new()
            };
            vec![
                f.clone(),
                format!("{:.0}", e[0]),
                format!("{:.0}", e[1]),
                format!("{:.0}", e[2]),
                format!("{:.0}", e[3]),
                hs,
            ]
        })
        .collect();
    out.push_str("<section id=\"connections\"><h2>TCP connections</h2>\n<p class=\"meta\">connections.csv summed per flow (one row per endpoint in the file).</p>\n");
    table(out, &head, &rows, 1, "connections-table");
    out.push_str("</section>\n");
}

fn mqtt_section(out: &mut String, t: &Csv) {
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
        cells.insert((m, col), fmt_num(t.cell(r, "value")));
    }
    let mut head = vec!["metric".to_string()];
    head.extend(cols.iter().cloned());
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| {
            let mut v = vec![m.clone()];
            v.extend(cols.iter().map(|c| {
                cells
                    .get(&(m.clone(), c.clone()))
                    .cloned()
                    .unwrap_or_default()
            }));
            v
        })
        .collect();
    out.push_str("<section id=\"mqtt\"><h2>MQTT broker and clients</h2>\n<p class=\"meta\">mqtt.csv (docs/metrics.md): broker counters and $SYS values, and per-flow client counters.</p>\n");
    table(out, &head, &rows, 1, "mqtt-table");
    out.push_str("</section>\n");
}

/// An SVG file's markup without an XML prologue or doctype, or None when it
/// is not an SVG document.
fn svg_markup(text: &str) -> Option<&str> {
    let start = text.find("<svg")?;
    let end = text.rfind("</svg>")? + "</svg>".len();
    (start < end).then(|| &text[start..end])
}

fn charts_section(out: &mut String, dir: &Path) -> io::Result<()> {
    let cdir = dir.join("charts");
    let mut names: Vec<String> = match fs::read_dir(&cdir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".svg"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    let (ts, rest): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| n.starts_with("timeseries_"));
    for (id, title, list) in [("timeseries", "Over time", ts), ("charts", "Charts", rest)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<section id=\"{id}\"><h2>{title}</h2>");
        for n in &list {
            let text = fs::read_to_string(cdir.join(n))?;
            let Some(svg) = svg_markup(&text) else {
                continue;
            };
            let _ = writeln!(
                out,
                "<figure class=\"chart\" data-chart=\"{0}\">{svg}<figcaption>charts/{0}</figcaption></figure>",
                escape(n)
            );
        }
        out.push_str("</section>\n");
    }
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
                "<p class=\"meta\">trace.csv: the life of message {0} across nodes, lost packets crossed (<code>qossim diagram &lt;this directory&gt; --message {0}</code> writes it as Mermaid and SVG; docs/traces.md).</p>\n<figure class=\"chart\" data-chart=\"diagram\">{1}</figure>",
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
    out.push_str("<nav><a href=\"#summary\">summary</a><a href=\"#flows\">per run and flow</a><a href=\"#charts\">charts</a><a href=\"#scenario\">scenario</a></nav>\n");
    match &summary {
        Some(t) => summary_section(&mut out, t),
        None => out.push_str("<section id=\"summary\"><h2>Summary</h2><p>No summary.csv in this directory.</p></section>\n"),
    }
    if let Some(t) = &runs {
        runs_section(&mut out, t);
    }
    charts_section(&mut out, dir)?;
    if let Some(t) = Csv::read(&dir.join("connections.csv"))? {
        connections_section(&mut out, &t);
    }
    if let Some(t) = Csv::read(&dir.join("mqtt.csv"))? {
        mqtt_section(&mut out, &t);
    }
    if dir.join("trace.csv").is_file() {
        diagram_section(&mut out, dir);
    }
    out.push_str("<section id=\"scenario\"><h2>Resolved scenario</h2>\n");
    match text("resolved_scenario") {
        Some(s) => {
            let _ = writeln!(out, "<pre>{}</pre>", escape(&s));
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
    fn numbers_are_rounded_by_size() {
        assert_eq!(fmt_num("1.000000"), "1");
        assert_eq!(fmt_num("0.797458"), "0.7975");
        assert_eq!(fmt_num("28.812345"), "28.812");
        assert_eq!(fmt_num("476.4123"), "476.4");
        assert_eq!(fmt_num(""), "");
        assert_eq!(fmt_num("qos1"), "qos1");
    }

    /// Time-series charts come first, under their own heading; every SVG
    /// is inlined once; a directory without a manifest still gets a page.
    #[test]
    fn timeseries_charts_first_and_missing_manifest_tolerated() {
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
            format!("<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{t}</text></svg>\n")
        };
        fs::write(dir.join("charts/delivery_ratio_by_series.svg"), svg("dr")).expect("svg");
        fs::write(dir.join("charts/timeseries_delivery.svg"), svg("ts")).expect("svg");
        fs::write(dir.join("charts/delivery_ratio_by_series.png"), b"png").expect("png");
        write_report(&dir).expect("report");
        let html = fs::read_to_string(dir.join("report.html")).expect("html");
        let ts = html
            .find("data-chart=\"timeseries_delivery.svg\"")
            .expect("ts chart");
        let dr = html
            .find("data-chart=\"delivery_ratio_by_series.svg\"")
            .expect("chart");
        assert!(html.find("<h2>Over time</h2>").expect("heading") < ts && ts < dr);
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "SVGs inlined once, PNGs not"
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
        let s = "<?xml version=\"1.0\"?>\n<svg a=\"1\"><g/></svg>\n";
        assert_eq!(svg_markup(s), Some("<svg a=\"1\"><g/></svg>"));
        assert_eq!(svg_markup("not svg"), None);
    }
}
