//! Charts from summary.csv: valid SVG and PNG, one series per (protocol,
//! reliability) with its legend, one point per summary row, byte-identical
//! when redrawn by `qossim plot` from a copy of the CSVs.

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
    // latency CDFs at the first, middle and last point
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
            assert_eq!((w, h), (900, 560), "{n}");
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
    let mut series: Vec<String> = summary
        .iter()
        .map(|r| format!("{} {} — {}", r["protocol"], r["reliability"], r["flow"]))
        .collect();
    series.sort();
    series.dedup();
    assert_eq!(series.len(), 2);
    for s in &series {
        assert!(
            texts.iter().any(|t| t.trim() == s),
            "legend `{s}` missing; texts: {texts:?}"
        );
    }
    // points are filled circles (error bars draw hollow ones at their centres)
    let points = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("fill").is_some_and(|f| f != "none"))
        .count();
    assert_eq!(points, summary.len(), "one point per summary row");
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
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count(),
        3
    );
}
