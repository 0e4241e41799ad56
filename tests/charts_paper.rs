//! Charts fit for a paper, checked in the SVG of every chart type (line
//! charts against a numeric axis, grouped bar charts of categories, stacked
//! bytes by layer, latency CDFs, time series): no two tick labels on an
//! axis are equal, the legend lies inside the canvas and covers no plotted
//! point, line or bar, ratio axes end at most at 1.05 with whiskers clipped
//! to [0, 1], the same series has the same colour and marker on every chart
//! of a directory, legends name the series actually drawn, axis titles and
//! captions are words (no raw `--set` path, no file-name fragment), the
//! scenario's `[report] labels` replace the built-in axis titles, and every
//! PNG is twice the SVG's resolution.

mod common;
use common::temp_dir;
use roxmltree::{Document, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn qossim(args: &[&str], out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .args(args)
        .args(["--quiet", "--out"])
        .arg(out)
        .output()
        .expect("qossim");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The protocol × loss sweep (line charts, CDFs per loss value).
fn sweep_dir() -> PathBuf {
    let out = temp_dir("paper-sweep");
    let f = root().join("tests/fixtures/chart-protocols.toml");
    qossim(&["sweep", f.to_str().expect("utf-8")], &out);
    out
}

/// A single run with three series (bar charts, one CDF, time series).
fn run_dir() -> PathBuf {
    let out = temp_dir("paper-run");
    let f = root().join("scenarios/coap-vs-udp.toml");
    qossim(
        &[
            "run",
            f.to_str().expect("utf-8"),
            "--set",
            "duration=\"2 min\"",
        ],
        &out,
    );
    out
}

/// Air cost charts: the air-cost teaching sweep (bars of stacks, MQTT-SN's
/// transports told apart) and a payload-size sweep on a medium (lines).
fn air_dirs() -> [PathBuf; 2] {
    let bars = temp_dir("paper-air-bars");
    let f = root().join("scenarios/teaching/air-cost.toml");
    qossim(&["sweep", f.to_str().expect("utf-8")], &bars);
    let lines = temp_dir("paper-air-lines");
    let f = root().join("tests/fixtures/chart-air.toml");
    qossim(&["sweep", f.to_str().expect("utf-8")], &lines);
    for name in ["frames", "bytes", "airtime_ms", "energy_mj"] {
        let bar = format!("charts/{name}_air_per_delivered_by_series.svg");
        assert!(bars.join(&bar).is_file(), "{bar}");
        let line = format!("charts/{name}_air_per_delivered_vs_flows.f.payload_bytes.svg");
        assert!(lines.join(&line).is_file(), "{line}");
    }
    [bars, lines]
}

/// Time to connect (lines against loss, per stack and session kind): the
/// TLS-cost teaching sweep.
fn connect_dir() -> PathBuf {
    let out = temp_dir("paper-connect");
    let f = root().join("scenarios/teaching/tls-cost.toml");
    qossim(&["sweep", f.to_str().expect("utf-8")], &out);
    assert!(out
        .join("charts/connect_ms_mean_vs_links.access.loss.p.svg")
        .is_file());
    out
}

/// A categorical sweep (interval as words) with CIs: grouped bars with
/// whiskers, drawn by the library from a hand-made summary.csv.
fn categorical_dir() -> PathBuf {
    let d = temp_dir("paper-cat");
    let mut s = String::from(
        "scenario,protocol,reliability,flow,pattern,flows.f.interval,runs,\
         delivery_ratio,delivery_ratio_ci95,latency_ms_p50,latency_ms_p50_ci95\n",
    );
    for (k, iv) in ["50 ms", "25 ms", "16 ms"].iter().enumerate() {
        for (i, (p, r)) in [("udp", "best_effort"), ("coap", "con"), ("mqtt", "qos1")]
            .iter()
            .enumerate()
        {
            let dr = 0.97 - 0.1 * k as f64 + 0.01 * i as f64;
            s.push_str(&format!(
                "demo,{p},{r},f,fan_in,{iv},5,{dr:.4},0.0600,{:.3},1.5\n",
                10.0 + 5.0 * (i + k) as f64
            ));
        }
    }
    std::fs::write(d.join("summary.csv"), s).expect("write");
    qossim::report::charts::write_charts(&d).expect("charts");
    d
}

fn num(n: &Node, a: &str) -> f64 {
    n.attribute(a)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("attribute {a} of {n:?}"))
}

fn text_of<'a>(n: &Node<'a, 'a>) -> String {
    n.text().unwrap_or("").trim().to_string()
}

/// Pixel points of a drawn element (markers, lines, bars).
fn points_of(n: &Node) -> Vec<(f64, f64)> {
    match n.tag_name().name() {
        "circle" => {
            let (x, y, r) = (num(n, "cx"), num(n, "cy"), num(n, "r"));
            vec![(x - r, y - r), (x + r, y + r)]
        }
        "rect" => {
            let (x, y, w, h) = (num(n, "x"), num(n, "y"), num(n, "width"), num(n, "height"));
            vec![(x, y), (x + w, y + h)]
        }
        "polygon" | "polyline" => n
            .attribute("points")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|p| {
                let (a, b) = p.split_once(',')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect(),
        _ => Vec::new(),
    }
}

struct Svg {
    name: String,
    text: String,
}

fn svgs(dir: &Path) -> Vec<Svg> {
    let mut v: Vec<Svg> = std::fs::read_dir(dir.join("charts"))
        .expect("charts")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .map(|p| Svg {
            name: p.file_name().expect("name").to_string_lossy().into_owned(),
            text: std::fs::read_to_string(&p).expect("svg"),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!v.is_empty(), "no charts in {}", dir.display());
    v
}

/// A legend: label → (colour, marker shape).
type Legend = BTreeMap<String, (String, String)>;

/// The legend frame (the one rect stroked #606060) and the legend's
/// entries: label → (colour, marker shape).
fn legend<'a>(doc: &'a Document<'a>) -> (Node<'a, 'a>, BTreeMap<String, (String, String)>) {
    let frames: Vec<Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("stroke") == Some("#606060"))
        .collect();
    assert_eq!(frames.len(), 1, "one legend frame");
    let frame = frames[0];
    let mut entries = BTreeMap::new();
    let after: Vec<Node> = doc
        .descendants()
        .skip_while(|n| *n != frame)
        .filter(|n| n.is_element())
        .collect();
    let mut key: Option<(String, String)> = None;
    for n in after.iter().skip(1) {
        match n.tag_name().name() {
            "text" => {
                if let Some(k) = key.take() {
                    entries.insert(text_of(n), k);
                }
            }
            "circle" | "rect" | "polygon" => {
                let colour = n.attribute("fill").unwrap_or("").to_string();
                let shape = format!("{}{}", n.tag_name().name(), points_of(n).len());
                key = Some((colour, shape));
            }
            "polyline" => {
                // a line key; the marker drawn on it follows and wins
                let colour = n.attribute("stroke").unwrap_or("").to_string();
                key = Some((colour, "line".into()));
            }
            _ => {}
        }
    }
    (frame, entries)
}

/// What a chart plots: the elements after the axes' last tick label and
/// before the legend frame.
fn data_nodes<'a>(doc: &'a Document<'a>, frame: Node<'a, 'a>) -> Vec<Node<'a, 'a>> {
    let all: Vec<Node> = doc
        .descendants()
        .filter(|n| n.is_element())
        .take_while(|n| *n != frame)
        .collect();
    let last_tick = all
        .iter()
        .rposition(|n| {
            n.has_tag_name("text")
                && text_of(n).parse::<f64>().is_ok()
                && matches!(n.attribute("text-anchor"), Some("end") | Some("middle"))
        })
        .expect("tick labels");
    all[last_tick + 1..].to_vec()
}

/// Every check that applies to one chart; returns its legend.
fn check_chart(svg: &Svg) -> BTreeMap<String, (String, String)> {
    let name = &svg.name;
    let doc = Document::parse(&svg.text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let texts: Vec<Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .collect();
    // tick labels: y ticks share x (right-aligned), x ticks share y
    let mut y_ticks: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut x_ticks: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for t in &texts {
        let s = text_of(t);
        if s.parse::<f64>().is_err() {
            continue;
        }
        match t.attribute("text-anchor") {
            Some("end") => y_ticks.entry(num(t, "x") as i64).or_default().push(s),
            Some("middle") => x_ticks.entry(num(t, "y") as i64).or_default().push(s),
            _ => {}
        }
    }
    assert!(!y_ticks.is_empty(), "{name}: no y ticks");
    for (axis, ticks) in [("y", &y_ticks), ("x", &x_ticks)] {
        for labels in ticks.values() {
            let mut sorted = labels.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                labels.len(),
                "{name}: equal {axis} ticks {labels:?}"
            );
            // one format per axis: every label has the same number of decimals
            if axis == "y" || !name.contains("cdf") {
                let decimals: Vec<usize> = labels
                    .iter()
                    .map(|l| l.split_once('.').map_or(0, |(_, f)| f.len()))
                    .collect();
                assert!(
                    decimals.windows(2).all(|w| w[0] == w[1]),
                    "{name}: mixed {axis} tick formats {labels:?}"
                );
            }
        }
    }
    // no "10000.0" on a log axis, no float noise anywhere
    for t in &texts {
        let s = text_of(t);
        assert!(
            !s.ends_with(".0") || s.parse::<f64>().map_or(true, |v| v < 10.0),
            "{name}: tick {s}"
        );
        assert!(
            !s.contains('_') && !s.contains("links.") && !s.contains("flows."),
            "{name}: text `{s}` is a path or file name"
        );
    }
    // the legend: inside the canvas, covering nothing drawn before it
    let (frame, entries) = legend(&doc);
    let (fx, fy, fw, fh) = (
        num(&frame, "x"),
        num(&frame, "y"),
        num(&frame, "width"),
        num(&frame, "height"),
    );
    assert!(
        fx >= 0.0 && fy >= 0.0 && fx + fw <= 900.0 && fy + fh <= 560.0,
        "{name}: legend outside the canvas"
    );
    // … and outside the data area: right of the x axis' end
    let x_axis_end = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some("#000000"))
        .map(|n| points_of(&n))
        .filter(|p| p.len() == 2 && p[0].1 == p[1].1 && (p[1].0 - p[0].0).abs() > 200.0)
        .map(|p| p[0].0.max(p[1].0))
        .fold(f64::NAN, f64::max);
    assert!(x_axis_end.is_finite(), "{name}: no x axis");
    assert!(
        fx >= x_axis_end,
        "{name}: legend at x {fx} inside the plot (axis ends at {x_axis_end})"
    );
    let data = data_nodes(&doc, frame);
    assert!(!data.is_empty(), "{name}: nothing plotted");
    for n in &data {
        for (x, y) in points_of(n) {
            let inside = x > fx && x < fx + fw && y > fy && y < fy + fh;
            assert!(
                !inside,
                "{name}: {} at ({x}, {y}) under the legend",
                n.tag_name().name()
            );
        }
    }
    assert!(!entries.is_empty(), "{name}: empty legend");
    // ratio axes: top tick ≤ 1.05, whiskers within [0, 1]
    let ratio = name.starts_with("delivery_ratio")
        || name == "timeseries_delivery_ratio.svg"
        || name.contains("cdf");
    if ratio {
        let ticks = y_ticks.values().next().expect("y ticks");
        let top = ticks
            .iter()
            .map(|t| t.parse::<f64>().expect("num"))
            .fold(f64::MIN, f64::max);
        assert!(top <= 1.05, "{name}: ratio axis up to {top}");
        let one = texts
            .iter()
            .find(|t| {
                t.attribute("text-anchor") == Some("end") && text_of(t).parse::<f64>() == Ok(1.0)
            })
            .map(|t| num(t, "y"))
            .unwrap_or_else(|| panic!("{name}: no tick at 1"));
        for n in data.iter().filter(|n| n.has_tag_name("polyline")) {
            let p = points_of(n);
            if p.len() == 2 && p[0].0 == p[1].0 {
                for (_, y) in p {
                    assert!(y >= one - 0.5, "{name}: whisker above 1 (y {y} < {one})");
                }
            }
        }
    }
    // caption in words
    let title = doc
        .descendants()
        .find(|n| n.has_tag_name("title"))
        .map(|n| text_of(&n))
        .unwrap_or_else(|| panic!("{name}: no <title>"));
    assert!(
        !title.contains('_') && !title.contains(".svg"),
        "{name}: title `{title}`"
    );
    entries
}

fn check_pngs(dir: &Path) {
    for e in std::fs::read_dir(dir.join("charts")).expect("charts") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "png") {
            let b = std::fs::read(&p).expect("png");
            let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
            let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
            assert_eq!((w, h), (1800, 1120), "{}", p.display());
            assert!(
                p.with_extension("svg").is_file(),
                "{} has no SVG",
                p.display()
            );
        }
    }
}

/// Colours and markers equal for equal series on every chart of `dir`.
fn same_style_everywhere(dir: &Path, charts: &[(String, Legend)]) {
    let mut seen: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut compared = 0;
    for (name, entries) in charts {
        if name.starts_with("bytes_by_layer") {
            continue; // layers, not series
        }
        for (label, (colour, shape)) in entries {
            // the line-only key of bars carries no marker: compare colours
            match seen.get(label) {
                Some((c, s, first)) => {
                    assert_eq!(
                        c,
                        colour,
                        "{}: `{label}` is {c} on {first} but {colour} on {name}",
                        dir.display()
                    );
                    if s != "line"
                        && shape != "line"
                        && !s.starts_with("rect")
                        && !shape.starts_with("rect")
                    {
                        assert_eq!(s, shape, "`{label}` marker differs on {first} and {name}");
                    }
                    compared += 1;
                }
                None => {
                    seen.insert(label.clone(), (colour.clone(), shape.clone(), name.clone()));
                }
            }
        }
    }
    assert!(
        compared >= 3,
        "{}: only {compared} comparisons",
        dir.display()
    );
    // different series, different (colour, marker)
    let styles: Vec<(&String, &String)> = seen.values().map(|(c, s, _)| (c, s)).collect();
    let mut d = styles.clone();
    d.sort();
    d.dedup();
    assert_eq!(
        d.len(),
        styles.len(),
        "{}: two series look the same: {seen:?}",
        dir.display()
    );
}

#[test]
fn every_chart_type_is_paper_ready() {
    let mut kinds = std::collections::BTreeSet::new();
    let [air_bars, air_lines] = air_dirs();
    for dir in [
        sweep_dir(),
        run_dir(),
        categorical_dir(),
        air_bars,
        air_lines,
        connect_dir(),
    ] {
        let mut legends = Vec::new();
        for svg in svgs(&dir) {
            let entries = check_chart(&svg);
            legends.push((svg.name.clone(), entries));
        }
        same_style_everywhere(&dir, &legends);
        if dir.join("messages.csv").is_file() {
            check_pngs(&dir);
        }
        for c in qossim::report::charts::list_charts(&dir).expect("list") {
            assert!(c.svg.is_file() && c.png.is_file(), "{c:?}");
            assert!(!c.caption.is_empty());
            kinds.insert(c.kind);
        }
    }
    for k in qossim::report::charts::KIND_ORDER {
        assert!(kinds.contains(k), "no {k} chart rendered; {kinds:?}");
    }
}

#[test]
fn sweeps_compare_series_at_the_same_point_with_words_for_paths() {
    let dir = sweep_dir();
    let read = |n: &str| {
        std::fs::read_to_string(dir.join("charts").join(n)).unwrap_or_else(|e| panic!("{n}: {e}"))
    };
    // one CDF per loss value, each naming the series actually drawn there
    for p in ["0.0", "0.25"] {
        let svg = read(&format!("latency_cdf_at_links.backhaul.loss.p_{p}.svg"));
        let doc = Document::parse(&svg).expect("xml");
        let (_, entries) = legend(&doc);
        let labels: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(labels, ["CoAP CON", "CoAP NON", "UDP"], "CDF at {p}");
        assert!(
            svg.contains(&format!(
                "<title>Latency CDF at backhaul loss (fraction of packets) = {p}</title>"
            )),
            "{svg:.400}"
        );
    }
    let n_cdf = std::fs::read_dir(dir.join("charts"))
        .expect("charts")
        .filter(|e| {
            e.as_ref()
                .expect("e")
                .file_name()
                .to_string_lossy()
                .starts_with("latency_cdf")
        })
        .count();
    assert_eq!(n_cdf, 4, "two CDFs (SVG and PNG each)");
    // the scenario's [report] label names the axis; the series are the
    // swept protocols with their QoS, not the file's base flow
    let svg = read("delivery_ratio_vs_links.backhaul.loss.p.svg");
    let doc = Document::parse(&svg).expect("xml");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| text_of(&n))
        .collect();
    assert!(
        texts.contains(&"Backhaul loss (fraction of packets)".to_string()),
        "{texts:?}"
    );
    assert!(texts.contains(&"Delivery ratio".to_string()), "{texts:?}");
    let (_, entries) = legend(&doc);
    assert_eq!(
        entries.keys().collect::<Vec<_>>(),
        ["CoAP CON", "CoAP NON", "UDP"]
    );
    // `qossim plot` on the results gives the same bytes (the label comes from manifest.json)
    let before = read("delivery_ratio_vs_links.backhaul.loss.p.svg");
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("plot")
        .arg(&dir)
        .output()
        .expect("plot");
    assert!(st.status.success());
    assert_eq!(before, read("delivery_ratio_vs_links.backhaul.loss.p.svg"));
}

#[test]
fn categories_are_grouped_bars_with_whiskers_not_numbered_points() {
    let d = categorical_dir();
    let svg = std::fs::read_to_string(d.join("charts/delivery_ratio_by_series.svg")).expect("svg");
    let doc = Document::parse(&svg).expect("xml");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| text_of(&n))
        .collect();
    // groups named by the interval, in numeric order; x title in words
    let pos = |s: &str| {
        texts
            .iter()
            .position(|t| t == s)
            .unwrap_or_else(|| panic!("`{s}` in {texts:?}"))
    };
    assert!(pos("16 ms") < pos("25 ms") && pos("25 ms") < pos("50 ms"));
    assert!(
        texts.contains(&"Publish interval (flow f)".to_string()),
        "{texts:?}"
    );
    for k in ["1", "2", "3", "1.500"] {
        assert!(!texts.contains(&k.to_string()), "numbered series {k}");
    }
    // nine bars in the series' colours, nine whiskers (black, clipped at 1)
    let (frame, _) = legend(&doc);
    let bars = doc
        .descendants()
        .take_while(|n| *n != frame)
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("fill")
                    .is_some_and(|f| f != "#FFFFFF" && f != "none")
        })
        .count();
    assert_eq!(bars, 9);
    let whiskers = data_nodes(&doc, frame)
        .into_iter()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some("#000000"))
        .filter(|n| {
            let p = points_of(n);
            p.len() == 2 && p[0].0 == p[1].0
        })
        .count();
    assert_eq!(whiskers, 9);
}

#[test]
fn report_labels_are_checked_like_every_table() {
    let base = std::fs::read_to_string(root().join("tests/fixtures/chart-protocols.toml"))
        .expect("fixture");
    let with = |report: &str| {
        base.replace(
        "[report]\nlabels = { \"links.backhaul.loss.p\" = \"Backhaul loss (fraction of packets)\" }",
        report,
    )
    };
    let sc =
        qossim::scenario::load_str(&base, "t.toml", Path::new("."), &[]).expect("fixture loads");
    assert_eq!(
        sc.report
            .labels
            .get("links.backhaul.loss.p")
            .map(String::as_str),
        Some("Backhaul loss (fraction of packets)")
    );
    for (report, want) in [
        ("[report]\nlables = {}", "lables"),
        (
            "[report]\nlabels = { \"links.backhaul.loss.p\" = \"\" }",
            "empty label",
        ),
        (
            "[report]\nlabels = { \"links.backhaul.loss.p\" = 3 }",
            "string",
        ),
    ] {
        let e = qossim::scenario::load_str(&with(report), "t.toml", Path::new("."), &[])
            .expect_err(report);
        let msg = e.to_string();
        assert!(msg.contains(want), "{report}: {msg}");
        assert!(msg.contains("report"), "{report}: field not named: {msg}");
        let line = base.lines().position(|l| l == "[report]").expect("line") + 1;
        assert!(
            msg.contains(&format!(":{}:", line)) || msg.contains(&format!(":{}:", line + 1)),
            "{report}: line not named: {msg}"
        );
    }
}
