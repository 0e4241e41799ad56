//! Charts from summary.csv: valid SVG and PNG (twice the SVG's size), one
//! series per (protocol, reliability) with its legend, one marker per
//! summary row (a bar per series without a numeric axis), byte-identical
//! when redrawn by `qossim plot` from a copy of the CSVs. The paper-ready
//! checks (ticks, legend placement, ratio axes, colours) are in
//! tests/charts_paper.rs.

mod common;
use common::temp_dir;
use std::path::Path;
use std::process::Command;

fn sweep_into(out: &Path) {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-small.toml");
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("sweep")
        .arg(&f)
        .args(["--quiet", "--out"])
        .arg(out)
        .status()
        .expect("sweep");
    assert!(st.success());
}

#[test]
fn sweep_charts_are_valid_and_complete() {
    let out = temp_dir("charts");
    sweep_into(&out);
    let charts = out.join("charts");
    let mut names: Vec<String> = std::fs::read_dir(&charts)
        .expect("charts")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for metric in [
        "delivery_ratio",
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_ms_p99",
        "bytes_on_wire_per_delivered",
    ] {
        for ext in ["svg", "png"] {
            let n = format!("{metric}_vs_links.backhaul.loss.p.{ext}");
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
    // one latency CDF per loss value (every point of the grid)
    for p in ["0.0", "0.1", "0.3"] {
        let n = format!("latency_cdf_at_links.backhaul.loss.p_{p}.svg");
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for n in &names {
        let bytes = std::fs::read(charts.join(n)).expect("read");
        if n.ends_with(".svg") {
            let text = String::from_utf8(bytes).expect("utf-8");
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{n} is not XML: {e}"));
        } else {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{n}");
            assert_eq!(&bytes[12..16], b"IHDR");
            let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
            let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
            assert_eq!((w, h), (1800, 1120), "{n}");
        }
    }
    // the delivery-ratio chart: a legend entry per (protocol, reliability, flow)
    // and one marker per summary row
    let svg = std::fs::read_to_string(charts.join("delivery_ratio_vs_links.backhaul.loss.p.svg"))
        .expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("xml");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    let summary = common::sim::read_csv(&out.join("summary.csv"));
    for s in ["UDP", "CoAP CON"] {
        assert!(
            texts.iter().any(|t| t.trim() == s),
            "legend `{s}` missing; texts: {texts:?}"
        );
    }
    assert_eq!(markers(&doc), summary.len(), "one marker per summary row");
}

#[test]
fn plot_redraws_identical_charts_from_a_copy_of_the_csvs() {
    let out = temp_dir("charts-src");
    sweep_into(&out);
    let copy = temp_dir("charts-copy");
    for f in ["summary.csv", "runs.csv", "messages.csv"] {
        std::fs::copy(out.join(f), copy.join(f)).expect("copy");
    }
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("plot")
        .arg(&copy)
        .output()
        .expect("plot");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut n = 0;
    for e in std::fs::read_dir(out.join("charts")).expect("charts") {
        let name = e.expect("entry").file_name();
        let a = std::fs::read(out.join("charts").join(&name)).expect("a");
        let b = std::fs::read(copy.join("charts").join(&name)).expect("b");
        assert!(a == b, "{} differs", name.to_string_lossy());
        n += 1;
    }
    assert_eq!(n, 20, "5 metrics + 2 series by layer + 3 CDFs, SVG and PNG");
    // a directory without summary.csv is bad input, not a panic
    let empty = temp_dir("charts-empty");
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("plot")
        .arg(&empty)
        .output()
        .expect("plot");
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("summary.csv"));
}

#[test]
fn a_single_run_gets_charts_by_series() {
    let out = temp_dir("charts-single");
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/coap-vs-udp.toml");
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("run")
        .arg(&q)
        .args(["--quiet", "--set", "duration=\"2 min\"", "--out"])
        .arg(&out)
        .status()
        .expect("run");
    assert!(st.success());
    let svg =
        std::fs::read_to_string(out.join("charts/delivery_ratio_by_series.svg")).expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("xml");
    assert_eq!(bars(&doc), 3, "a bar per flow");

    // `run` draws one chart at a time (ChartOptions::sequential), `plot`
    // in parallel: the same bytes either way, the latency CDFs included
    let copy = temp_dir("charts-single-plot");
    for f in [
        "summary.csv",
        "runs.csv",
        "messages.csv",
        "manifest.json",
        "timeseries.csv",
    ] {
        std::fs::copy(out.join(f), copy.join(f)).expect(f);
    }
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("plot")
        .arg(&copy)
        .status()
        .expect("plot");
    assert!(st.success());
    let mut names: Vec<_> = std::fs::read_dir(out.join("charts"))
        .expect("charts")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert!(names
        .iter()
        .any(|n| n.to_string_lossy().starts_with("latency_cdf")));
    for n in &names {
        let a = std::fs::read(out.join("charts").join(n)).expect("run chart");
        let b = std::fs::read(copy.join("charts").join(n)).unwrap_or_else(|e| panic!("{n:?}: {e}"));
        assert!(a == b, "{n:?} differs between run and plot");
    }
}

// ---- write_charts on a hand-made summary.csv (no simulator involved) ----

use qossim::report::charts::write_charts;

const METRICS: [&str; 5] = [
    "delivery_ratio",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_p99",
    "bytes_on_wire_per_delivered",
];

/// 2 protocols × 2 reliabilities × 4 loss values, every metric with a CI
/// (one CI left empty: no bar there, the point still drawn).
fn hand_made_summary(axis: bool) -> String {
    let mut s = String::from("scenario,protocol,reliability,flow,pattern,");
    if axis {
        s.push_str("links.backhaul.loss.p,");
    }
    s.push_str("runs");
    for m in METRICS {
        s.push_str(&format!(",{m},{m}_ci95"));
    }
    s.push('\n');
    let losses: &[f64] = if axis { &[0.0, 0.1, 0.2, 0.3] } else { &[0.1] };
    for (k, &p) in losses.iter().enumerate() {
        for (i, (proto, rel)) in [
            ("udp", "none"),
            ("udp", "ack"),
            ("coap", "non"),
            ("coap", "con"),
        ]
        .iter()
        .enumerate()
        {
            let dr = 1.0 - p * (1.0 - 0.2 * i as f64);
            let lat = 10.0 + 5.0 * i as f64 + 40.0 * p;
            s.push_str(&format!("demo,{proto},{rel},telemetry,fan_in,"));
            if axis {
                s.push_str(&format!("{p},"));
            }
            let ci = if k == 1 && i == 0 {
                String::new()
            } else {
                "0.010000".into()
            };
            s.push_str(&format!(
                "5,{dr:.6},{ci},{lat:.6},0.5,{:.6},1.5,{:.6},2.5,{:.6},3.0\n",
                lat * 2.0,
                lat * 3.0,
                60.0 + 100.0 * p
            ));
        }
    }
    s
}

fn chart_dir(tag: &str, summary: &str) -> std::path::PathBuf {
    let d = temp_dir(tag);
    std::fs::write(d.join("summary.csv"), summary).expect("write summary");
    d
}

fn check_png(name: &str, bytes: &[u8]) {
    assert!(bytes.len() > 24, "{name} too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name} signature");
    assert_eq!(&bytes[12..16], b"IHDR", "{name}");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!((w, h), (1800, 1120), "{name}");
}

/// The elements before the legend frame (the rect stroked #606060).
fn before_legend<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.is_element())
        .take_while(|n| !(n.has_tag_name("rect") && n.attribute("stroke") == Some("#606060")))
        .collect()
}

/// The trimmed texts of an SVG chart, in document order.
fn svg_texts<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect()
}

/// Data markers: circles, polygons and 8 px squares drawn before the legend.
fn markers(doc: &roxmltree::Document) -> usize {
    before_legend(doc)
        .iter()
        .filter(|n| {
            n.has_tag_name("circle")
                || n.has_tag_name("polygon")
                || (n.has_tag_name("rect") && n.attribute("width") == Some("8"))
        })
        .count()
}

/// Bars: filled rects (not white, not 8 px markers) drawn before the legend.
fn bars(doc: &roxmltree::Document) -> usize {
    before_legend(doc)
        .iter()
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("width") != Some("8")
                && n.attribute("fill")
                    .is_some_and(|f| f != "#FFFFFF" && f != "none")
        })
        .count()
}

#[test]
fn hand_made_summary_gives_one_chart_per_metric_with_every_series_and_point() {
    let d = chart_dir("charts-lib", &hand_made_summary(true));
    let files = write_charts(&d).expect("charts");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for m in METRICS {
        for ext in ["svg", "png"] {
            let n = format!("{m}_vs_links.backhaul.loss.p.{ext}");
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
    for p in &files {
        assert!(p.starts_with(d.join("charts")), "{}", p.display());
        let bytes = std::fs::read(p).expect("read");
        let name = p.display().to_string();
        if name.ends_with(".svg") {
            let text = String::from_utf8(bytes).expect("utf-8");
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            check_png(&name, &bytes);
        }
    }
    // no temporary files left behind by the atomic writes
    for e in std::fs::read_dir(d.join("charts")).expect("dir") {
        let n = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!n.ends_with(".tmp"), "{n}");
    }
    let svg = std::fs::read_to_string(d.join("charts/delivery_ratio_vs_links.backhaul.loss.p.svg"))
        .expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("xml");
    let texts = svg_texts(&doc);
    for s in ["UDP none", "UDP ack", "CoAP NON", "CoAP CON"] {
        assert_eq!(texts.iter().filter(|t| **t == s).count(), 1, "legend `{s}`");
    }
    assert!(
        texts.contains(&"Loss probability (link backhaul)"),
        "x title"
    );
    assert!(texts.contains(&"Delivery ratio"), "y title");
    assert_eq!(markers(&doc), 16, "one marker per summary row");
}

#[test]
fn charts_are_byte_identical_when_redrawn_and_in_a_copy() {
    let summary = hand_made_summary(true);
    let a = chart_dir("charts-a", &summary);
    let b = chart_dir("charts-b", &summary);
    let first = write_charts(&a).expect("a");
    let bytes: Vec<Vec<u8>> = first
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let again = write_charts(&a).expect("a again");
    assert_eq!(first, again);
    let other = write_charts(&b).expect("b");
    assert_eq!(other.len(), first.len());
    for ((p, before), q) in first.iter().zip(&bytes).zip(&other) {
        assert!(
            std::fs::read(p).expect("read") == *before,
            "{} changed",
            p.display()
        );
        assert_eq!(p.file_name(), q.file_name());
        assert!(
            std::fs::read(q).expect("read") == *before,
            "{} differs",
            q.display()
        );
    }
}

#[test]
fn no_swept_axis_gives_one_chart_per_metric_by_series() {
    let d = chart_dir("charts-noaxis", &hand_made_summary(false));
    let files = write_charts(&d).expect("charts");
    assert_eq!(files.len(), 2 * METRICS.len(), "{files:?}");
    for m in METRICS {
        let svg = std::fs::read_to_string(d.join(format!("charts/{m}_by_series.svg")))
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        let doc = roxmltree::Document::parse(&svg).expect("xml");
        assert_eq!(bars(&doc), 4, "{m}: one bar per series");
        let texts = svg_texts(&doc);
        // grouped by protocol, named in words, not numbered
        for k in ["UDP", "CoAP", "Protocol"] {
            assert!(texts.contains(&k), "{m}: `{k}` in {texts:?}");
        }
        for k in ["1", "2", "3", "4", "1.500"] {
            assert!(!texts.contains(&k), "{m}: series numbered `{k}`");
        }
        check_png(
            m,
            &std::fs::read(d.join(format!("charts/{m}_by_series.png"))).expect("png"),
        );
    }
}

#[test]
fn bad_summaries_are_errors_naming_the_file() {
    let good = hand_made_summary(true);
    let header = good.lines().next().expect("header").to_string();
    let cases = [
        ("missing", None),
        ("empty", Some(String::new())),
        (
            "not-csv",
            Some("\u{0}\u{1}garbage\n\"unterminated".to_string()),
        ),
        ("no-key-columns", Some("a,b,c\n1,2,3\n".to_string())),
        (
            "ragged",
            Some(format!("{header}\ndemo,udp,none,telemetry,fan_in,0.1,5\n")),
        ),
    ];
    for (tag, body) in cases {
        let d = temp_dir(&format!("charts-bad-{tag}"));
        if let Some(b) = body {
            std::fs::write(d.join("summary.csv"), b).expect("write");
        }
        let e = write_charts(&d).expect_err(tag);
        assert!(e.to_string().contains("summary.csv"), "{tag}: {e}");
    }
}

#[test]
fn extreme_and_non_numeric_cells_do_not_hang_or_panic() {
    // ±1e308 used to make plotters' tick search spin forever
    let s =
        "scenario,protocol,reliability,flow,pattern,x,runs,delivery_ratio,delivery_ratio_ci95\n\
             demo,udp,none,f,fan_in,1e308,1,0.5,1e308\n\
             demo,udp,none,f,fan_in,-1e308,1,NaN,inf\n\
             demo,udp,none,f,fan_in,0.5,1,0.7,\n";
    let d = chart_dir("charts-extreme", s);
    let files = write_charts(&d).expect("charts");
    assert!(!files.is_empty());
}

/// The legend (beside the plot) never covers a data point or bar:
/// qos-levels' bytes chart has its highest bar (QoS 2) at the right edge,
/// where an upper-right legend used to sit.
#[test]
fn the_legend_covers_no_point() {
    let out = temp_dir("charts-legend");
    let q = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/teaching/qos-levels.toml");
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("run")
        .arg(&q)
        .args(["--quiet", "--out"])
        .arg(&out)
        .status()
        .expect("run");
    assert!(st.success());
    let mut checked = 0;
    for e in std::fs::read_dir(out.join("charts")).expect("charts") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if !name.ends_with(".svg") {
            continue;
        }
        let svg = std::fs::read_to_string(&p).expect("svg");
        let doc = roxmltree::Document::parse(&svg).expect("xml");
        let num = |n: &roxmltree::Node, a: &str| -> f64 {
            n.attribute(a).and_then(|v| v.parse().ok()).expect(a)
        };
        let frame = doc
            .descendants()
            .find(|n| n.has_tag_name("rect") && n.attribute("stroke") == Some("#606060"))
            .unwrap_or_else(|| panic!("{name}: no legend frame"));
        let (x, y, w, h) = (
            num(&frame, "x"),
            num(&frame, "y"),
            num(&frame, "width"),
            num(&frame, "height"),
        );
        for c in before_legend(&doc) {
            let (cx0, cy0, cx1, cy1) = match c.tag_name().name() {
                "circle" => {
                    let (cx, cy, r) = (num(&c, "cx"), num(&c, "cy"), num(&c, "r"));
                    (cx - r, cy - r, cx + r, cy + r)
                }
                "rect"
                    if c.attribute("fill")
                        .is_some_and(|f| f != "#FFFFFF" && f != "none") =>
                {
                    let (rx, ry) = (num(&c, "x"), num(&c, "y"));
                    (rx, ry, rx + num(&c, "width"), ry + num(&c, "height"))
                }
                _ => continue,
            };
            let inside = cx1 >= x && cx0 <= x + w && cy1 >= y && cy0 <= y + h;
            assert!(!inside, "{name}: ({cx0}, {cy0}) under the legend");
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} points and bars checked");
}

/// A summary of a wired and a radio series with `bytes_*` layers; with
/// `radio_layers` the radio one has link and 6LoWPAN bytes in their own
/// columns, without them it is a summary written before they existed.
fn layered_summary(radio_layers: bool) -> String {
    let mut s = String::from(
        "scenario,protocol,reliability,flow,pattern,runs,delivered,bytes_payload,bytes_protocol,bytes_transport_ip,bytes_retransmissions",
    );
    if radio_layers {
        s.push_str(",bytes_link,bytes_adaptation");
    }
    s.push('\n');
    for (proto, rel, link, adapt) in [("udp", "none", 0, 0), ("coap", "non", 340, 180)] {
        s.push_str(&format!("demo,{proto},{rel},f,fan_in,1,10,200,170,280,0"));
        if radio_layers {
            s.push_str(&format!(",{link},{adapt}"));
        }
        s.push('\n');
    }
    s
}

/// Rects of `colour` with a height drawn before the legend (a layer's bar
/// parts; a layer of 0 bytes draws a rect of height 0).
fn layer_rects(doc: &roxmltree::Document, colour: &str) -> usize {
    before_legend(doc)
        .iter()
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("fill") == Some(colour)
                && n.attribute("height").is_some_and(|h| h != "0")
        })
        .count()
}

#[test]
fn bytes_by_layer_stacks_the_radio_layers_and_draws_older_summaries() {
    // bytes_link green (0, 158, 115), bytes_adaptation purple (204, 121, 167)
    let (link, adapt) = ("#009E73", "#CC79A7");
    for radio_layers in [true, false] {
        let d = chart_dir("charts-layers", &layered_summary(radio_layers));
        write_charts(&d).expect("charts");
        let svg = std::fs::read_to_string(d.join("charts/bytes_by_layer_by_series.svg"))
            .unwrap_or_else(|e| panic!("radio_layers={radio_layers}: {e}"));
        let doc = roxmltree::Document::parse(&svg).expect("xml");
        let want = usize::from(radio_layers);
        assert_eq!(layer_rects(&doc, link), want, "link part, {radio_layers}");
        assert_eq!(
            layer_rects(&doc, adapt),
            want,
            "6LoWPAN part, {radio_layers}"
        );
        let texts = svg_texts(&doc);
        for l in ["6LoWPAN headers", "PHY/MAC headers, FCS, link ACKs"] {
            assert!(texts.contains(&l), "legend `{l}` in {texts:?}");
        }
    }
}
