//! `report.html` in every results directory: written by `qossim run` and
//! `qossim sweep`, byte-identical across runs of the same scenario and seed,
//! self-contained (no script, no external reference), escaped, and rendered
//! by a real browser (headless Debian chromium) without console messages,
//! with every chart of the run in the DOM and a non-trivial screenshot.
//!
//! How console errors are detected: `chromium --headless=new
//! --enable-logging=stderr --v=0 --dump-dom <page>` prints every console
//! message of the page — console.error, console.log and uncaught
//! exceptions alike — as an `INFO:CONSOLE` line on stderr. The page has no
//! script, so any such line is a failure. The detector is itself checked
//! first on a page that logs an error and throws, so the browser test cannot
//! pass because chromium stopped reporting. Resource-load failures are not
//! console lines there, so the page is also checked statically for external
//! references (it has none to fail).
//!
//! How the layout is measured: the page has no script, so the test loads a
//! copy with one appended script that writes the page's `scrollWidth` and
//! `clientWidth` (and how many headline tables overflow their box) into a
//! `data-probe` attribute, at `--window-size=1280,800`, and reads it back
//! from `--dump-dom`. The probe is itself checked on a page that is wider
//! than the window.
//!
//! The page is read in order: headline numbers (from summary.csv), charts
//! in a fixed order with captions in words, then the tables collapsed in
//! `<details>`; numbers have three significant digits and confidence
//! intervals read `value ± half-width (n = N)`.
//!
//! Under CI=true a missing chromium fails the test; elsewhere the browser
//! part is skipped with a message (scripts/test.sh installs it).

mod common;
use common::browser::chromium;
use common::cli::sweep_ok;
use common::sim::{read_csv, run_text};
use common::temp_dir;
use std::path::Path;
use std::process::Command;

fn teaching(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/teaching")
            .join(name),
    )
    .expect("scenario")
}

fn report(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.html")).expect("report.html written")
}

fn chart_svgs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .expect("charts dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no charts in {}", dir.display());
    v
}

/// No script, no external stylesheet, font, image or frame.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "<link",
        "<iframe",
        "<img",
        "@import",
        "url(",
        "src=",
        "@font-face",
    ] {
        assert!(!lower.contains(bad), "report contains {bad:?}");
    }
    // the only links are in-page anchors
    for (i, _) in lower.match_indices("href=") {
        assert_eq!(&lower[i + 5..i + 7], "\"#", "external link at {i}");
    }
    // the only URL is the SVG namespace
    // (the protocol name "http" is no URL: count schemes)
    let urls = lower.matches("http://").count() + lower.matches("https://").count();
    let ns = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(urls, ns, "a URL other than the SVG namespace");
}

#[test]
fn report_is_written_by_run_identical_across_runs_and_self_contained() {
    let text = teaching("qos-levels.toml");
    let a = run_text("report-a", &text, &[]);
    let b = run_text("report-b", &text, &[]);
    let (ha, hb) = (report(&a), report(&b));
    assert!(ha == hb, "report.html differs between two runs of one seed");
    assert_self_contained(&ha);
    for chart in chart_svgs(&a) {
        assert!(
            ha.contains(&format!("data-chart=\"{chart}\"")),
            "{chart} missing"
        );
    }
    assert!(ha.contains("<table id=\"summary-table\">"));
    assert!(ha.contains("<table id=\"headline-table\">"));
    assert!(ha.contains("<details id=\"connections\""));
    assert!(ha.contains("<details id=\"mqtt\""));
    assert_reading_order(&ha);
    assert_consistent_precision(&ha, "headline-table", false);
    assert_consistent_precision(&ha, "summary-table", false);
    assert!(
        ha.contains("plant/line2/sensor{i}"),
        "the resolved scenario"
    );
    assert!(!ha.contains("wall_time"), "no wall time in the page");
    // another seed gives another page
    let c = run_text("report-c", &text, &["seed=2"]);
    assert!(report(&c) != ha);
}

/// Markup in a scenario name, flow name and topic is shown as text.
const INJECT: &str = r#"
name = "inj<script>console.error('INJECTED')</script>"
seed = 1
duration = "20 s"
drain = "5 s"
[[nodes]]
name = "a"
role = "client"
[[nodes]]
name = "b"
role = "server"
[[links]]
a = "a"
b = "b"
[[flows]]
name = "f<img_src-x_onerror-alert(1)>&amp;"
pattern = "point_to_point"
protocol = "udp"
publishers = ["a"]
receivers = ["b"]
topic = "t/<b>bold</b>/\"q\"/'s'"
payload_bytes = 16
interval = "1 s"
"#;

#[test]
fn report_escapes_names_and_topics() {
    let dir = run_text("report-inject", INJECT, &[]);
    let html = report(&dir);
    assert_self_contained(&html);
    assert!(html.contains("inj&lt;script&gt;console.error(&#39;INJECTED&#39;)&lt;/script&gt;"));
    assert!(html.contains("f&lt;img_src-x_onerror-alert(1)&gt;&amp;amp;"));
    assert!(html.contains("t/&lt;b&gt;bold&lt;/b&gt;/\\&quot;q\\&quot;/&#39;s&#39;"));
    assert!(!html.contains("<b>bold"));
    if let Some(c) = chromium() {
        let page = Browsed::load(&c, &dir.join("report.html"));
        page.assert_no_console();
        assert!(!page.dom.contains("<b>bold"), "markup rendered as markup");
    }
}

/// A page as chromium saw it: the serialised DOM and the console lines.
struct Browsed {
    dom: String,
    console: Vec<String>,
}

impl Browsed {
    fn load(chromium: &Path, page: &Path) -> Browsed {
        let profile = temp_dir("chromium-profile");
        let url = format!("file://{}", page.display());
        let out = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                &format!("--user-data-dir={}", profile.display()),
                "--dump-dom",
                &url,
            ])
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium failed: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        Browsed {
            dom: String::from_utf8_lossy(&out.stdout).into_owned(),
            console: err
                .lines()
                .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
                .map(str::to_string)
                .collect(),
        }
    }
    fn assert_no_console(&self) {
        assert!(self.console.is_empty(), "console: {:#?}", self.console);
    }
}

fn screenshot(chromium: &Path, page: &Path, png: &Path) {
    let profile = temp_dir("chromium-profile");
    let out = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2000",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium screenshot failed: {out:?}");
}

/// The PNG decodes to 1280×2000 and is not one flat colour: at least 1 %
/// of its pixels differ from the background (text, tables and charts).
fn assert_nontrivial_png(png: &Path) {
    let f = std::fs::File::open(png).expect("screenshot written");
    let mut dec = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; dec.output_buffer_size().expect("size")];
    let info = dec.next_frame(&mut buf).expect("frame");
    assert_eq!((info.width, info.height), (1280, 2000));
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let bg = pixels[0];
    let ink = pixels.iter().filter(|p| *p != &bg).count();
    assert!(
        ink * 100 > pixels.len(),
        "screenshot nearly blank: {ink} of {} pixels",
        pixels.len()
    );
}

#[test]
fn console_detector_catches_a_page_error() {
    let Some(c) = chromium() else { return };
    let dir = temp_dir("report-bad-page");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error('BROKEN'); nope();</script></body></html>",
    )
    .expect("write");
    let b = Browsed::load(&c, &page);
    assert!(
        b.console.iter().any(|l| l.contains("BROKEN")),
        "{:?}",
        b.console
    );
    assert!(
        b.console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "{:?}",
        b.console
    );
}

fn check_in_browser(c: &Path, dir: &Path) {
    let page = dir.join("report.html");
    let b = Browsed::load(c, &page);
    b.assert_no_console();
    let charts = chart_svgs(dir);
    for chart in &charts {
        assert!(
            b.dom.contains(&format!("data-chart=\"{chart}\"")),
            "{chart} not in the DOM"
        );
    }
    // every chart is an inline <svg> element of the parsed page
    assert!(b.dom.matches("<svg").count() >= charts.len());
    assert!(b.dom.contains("id=\"summary-table\""));
    let l = Layout::probe(c, &page);
    assert!(
        l.scroll_width <= l.client_width,
        "{}: horizontal scroll at 1280 px: {l:?}",
        page.display()
    );
    assert_eq!(
        l.headline_overflowing,
        0,
        "{}: headline tables wider than their box at 1280 px",
        page.display()
    );
    let png = dir.join("report-screenshot.png");
    screenshot(c, &page, &png);
    assert_nontrivial_png(&png);
}

#[test]
fn report_renders_in_chromium_for_a_run_and_a_sweep() {
    let Some(c) = chromium() else { return };
    let run = run_text("report-browser", &teaching("retained.toml"), &[]);
    check_in_browser(&c, &run);
    let sweep = temp_dir("report-sweep");
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/teaching/building-average.toml");
    sweep_ok(&file, &sweep, &[]);
    let html = report(&sweep);
    assert_self_contained(&html);
    assert!(html.contains("6 run(s)"));
    assert!(
        html.contains("links.backhaul.loss.p"),
        "swept parameters shown"
    );
    check_in_browser(&c, &sweep);
    // a second sweep of the same file writes the same page
    let again = temp_dir("report-sweep-again");
    sweep_ok(&file, &again, &["--jobs", "1"]);
    assert!(
        report(&again) == html,
        "sweep report.html not deterministic"
    );
}

/// The layout at a 1280×800 window, measured by a script in a copy of the
/// page (the page itself has none).
#[derive(Debug)]
struct Layout {
    scroll_width: u32,
    client_width: u32,
    /// Headline table boxes that need a horizontal scroll bar.
    headline_overflowing: u32,
}

impl Layout {
    fn probe(chromium: &Path, page: &Path) -> Layout {
        const PROBE: &str = "<script>(function(){var d=document.documentElement;\
var n=0;document.querySelectorAll('#headline .box').forEach(function(b){if(b.scrollWidth>b.clientWidth)n++;});\
document.body.setAttribute('data-probe',d.scrollWidth+' '+d.clientWidth+' '+n);})();</script>";
        let html = std::fs::read_to_string(page).expect("page");
        let at = html.rfind("</body>").expect("</body>");
        let dir = temp_dir("layout-probe");
        let copy = dir.join("probe.html");
        std::fs::write(&copy, format!("{}{PROBE}{}", &html[..at], &html[at..])).expect("write");
        let profile = temp_dir("chromium-profile");
        let out = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,800",
                &format!("--user-data-dir={}", profile.display()),
                "--dump-dom",
                &format!("file://{}", copy.display()),
            ])
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium failed: {out:?}");
        let dom = String::from_utf8_lossy(&out.stdout);
        let i = dom.find("data-probe=\"").expect("probe ran") + "data-probe=\"".len();
        let v: Vec<u32> = dom[i..dom[i..].find('"').expect("end") + i]
            .split(' ')
            .map(|x| x.parse().expect("a number"))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&profile);
        Layout {
            scroll_width: v[0],
            client_width: v[1],
            headline_overflowing: v[2],
        }
    }
}

/// The probe sees a page wider than the window and a headline box that
/// overflows, so the layout checks cannot pass because it measures nothing.
#[test]
fn layout_probe_catches_a_wide_page() {
    let Some(c) = chromium() else { return };
    let dir = temp_dir("report-wide-page");
    let wide = dir.join("wide.html");
    std::fs::write(
        &wide,
        "<!DOCTYPE html><html><body><section id=\"headline\"><div class=\"box\" style=\"overflow:auto\">\
<div style=\"width:3000px\">wide</div></div></section><div style=\"width:2000px\">wider</div></body></html>",
    )
    .expect("write");
    let l = Layout::probe(&c, &wide);
    assert!(l.client_width > 1200 && l.client_width <= 1280, "{l:?}");
    assert!(l.scroll_width >= 2000, "{l:?}");
    assert_eq!(l.headline_overflowing, 1, "{l:?}");
    let narrow = dir.join("narrow.html");
    std::fs::write(
        &narrow,
        "<!DOCTYPE html><html><body><p>fits</p></body></html>",
    )
    .expect("write");
    let l = Layout::probe(&c, &narrow);
    assert!(l.scroll_width <= l.client_width, "{l:?}");
}

/// Headline numbers, then the charts, then the tables.
fn assert_reading_order(html: &str) {
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} missing"));
    let headline = at("<section id=\"headline\">");
    let charts = at("<section id=\"charts\">");
    let tables = at("<section id=\"tables\">");
    assert!(
        headline < charts && charts < tables,
        "order: {headline} {charts} {tables}"
    );
    if let Some(first_chart) = html.find("<figure class=\"chart\"") {
        assert!(charts < first_chart && first_chart < tables);
    }
    for id in [
        "summary-table",
        "runs-table",
        "connections-table",
        "mqtt-table",
    ] {
        if let Some(t) = html.find(&format!("<table id=\"{id}\">")) {
            assert!(t > tables, "{id} before the tables section");
            // inside a <details> that is still open at the table
            let d = html[..t].rfind("<details").expect("in <details>");
            assert!(
                !html[d..t].contains("</details>"),
                "{id} not inside <details>"
            );
        }
    }
}

/// Text of an HTML fragment: tags dropped, the page's entities decoded.
fn text_of(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The cells of `<table id="id">` as text: header row first.
fn table_cells(html: &str, id: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("table {id} missing"));
    let end = html[start..].find("</table>").expect("</table>") + start;
    html[start..end]
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<t")
                .skip(1)
                .filter(|c| c.starts_with('d') || c.starts_with('h'))
                .map(|c| {
                    let body = &c[c.find('>').expect("tag end") + 1..];
                    let body = body.split("</t").next().unwrap_or("");
                    text_of(body).trim().to_string()
                })
                .collect()
        })
        .collect()
}

/// Significant digits of a number as written: 3 for "0.0111", "1.00",
/// "476" and "1.23e-5"; an integer part is never rounded, so "1505" and
/// "106200" count as 3 ("at least three, all integer digits").
fn sig_digits(s: &str) -> Option<usize> {
    let s = s.trim_start_matches('-');
    let mantissa = s.split('e').next()?;
    if mantissa.is_empty() || !mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if !mantissa.contains('.') {
        return Some(if mantissa.len() >= 3 {
            3
        } else {
            mantissa.len()
        });
    }
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    Some(digits.trim_start_matches('0').len())
}

/// Every numeric cell of table `id` (after the text columns) is a number
/// with three significant digits or zero, or `value ± half-width (n = N)`
/// whose value and (non-zero) half-width have three; no bare "1 ± 0".
/// With `counts`, integers are allowed as they are (runs.csv writes counts
/// as integers; a mean never is one: "1.00", not "1").
fn assert_consistent_precision(html: &str, id: &str, counts: bool) {
    let cells = table_cells(html, id);
    let head = &cells[0];
    let mut checked = 0;
    for row in &cells[1..] {
        for (i, cell) in row.iter().enumerate() {
            // names and swept parameters (`links.backhaul.loss.p`) are not
            // formatted; every other column is (headline columns are
            // parameter values, "0.05": their cells are numbers)
            let h = head[i].as_str();
            if cell.is_empty()
                || matches!(
                    h,
                    "series" | "run_id" | "flow" | "protocol" | "reliability" | "pattern"
                )
                || (h.contains('.')
                    && h.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !h.ends_with('.'))
            {
                continue;
            }
            let number = |s: &str| {
                s == "0"
                    || sig_digits(s) == Some(3)
                    || (counts && s.bytes().all(|b| b.is_ascii_digit()))
                    || panic!("{id} column {h:?}: {cell:?} ({s:?} not 3 significant digits)")
            };
            if let Some((v, rest)) = cell.split_once(" ± ") {
                let (hw, n) = rest
                    .split_once(" (n = ")
                    .unwrap_or_else(|| panic!("{id}: {cell:?} without (n = N)"));
                let n: u32 = n
                    .trim_end_matches(')')
                    .parse()
                    .unwrap_or_else(|_| panic!("{id}: {cell:?}"));
                assert!(n >= 2, "{id}: {cell:?}");
                number(v);
                number(hw);
            } else {
                number(cell);
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "{id}: no numbers checked");
}

/// The page of the default comparison (compare-loss, a 27-run sweep):
/// headline tables per metric whose cells are summary.csv's means and
/// half-widths (n = 3), charts ordered delivery → latency → bytes → the
/// rest with captions in words, long tables collapsed, every number to
/// three significant digits, no horizontal scroll at 1280 px.
#[test]
fn compare_loss_report_reads_headline_charts_tables() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/compare-loss.toml");
    let dir = temp_dir("report-compare-loss");
    sweep_ok(&file, &dir, &[]);
    let html = report(&dir);
    assert_self_contained(&html);
    assert_reading_order(&html);
    // headline: one table per metric, a row per series, a column per point
    let summary = read_csv(&dir.join("summary.csv"));
    let points: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for r in &summary {
            let p = &r["links.backhaul.loss.p"];
            if !v.contains(p) {
                v.push(p.clone());
            }
        }
        v
    };
    assert_eq!(points.len(), 9);
    for metric in [
        "delivery_ratio",
        "latency_ms_p50",
        "latency_ms_p99",
        "bytes_on_wire_per_delivered",
    ] {
        let id = format!("headline-{metric}");
        let cells = table_cells(&html, &id);
        assert_eq!(
            cells[0][1..],
            points[..],
            "{id}: columns are the loss values"
        );
        let labels: Vec<&str> = cells[1..].iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            labels,
            [
                "UDP best effort",
                "CoAP NON",
                "CoAP CON",
                "HTTP confirmed",
                "MQTT QoS 0",
                "MQTT QoS 1",
                "MQTT QoS 2",
                "MQTT-SN QoS 0",
                "MQTT-SN QoS 1",
                "MQTT-SN QoS 2"
            ],
            "{id}: series in words, flow names left out (one flow each)"
        );
        // every cell is its summary.csv row, rounded
        let flows: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in &summary {
                if !v.contains(&r["flow"]) {
                    v.push(r["flow"].clone());
                }
            }
            v
        };
        for r in &summary {
            let si = flows.iter().position(|f| *f == r["flow"]).expect("flow") + 1;
            let pi = points
                .iter()
                .position(|p| *p == r["links.backhaul.loss.p"])
                .expect("point")
                + 1;
            let cell = &cells[si][pi];
            let (v, rest) = cell
                .split_once(" ± ")
                .unwrap_or_else(|| panic!("{id}: {cell:?}"));
            let (hw, n) = rest.split_once(" (n = ").expect("(n = N)");
            assert_eq!(n, "3)", "{id}: {cell:?}");
            for (shown, col) in [(v, metric.to_string()), (hw, format!("{metric}_ci95"))] {
                let want: f64 = r[&col].parse().expect("number");
                let got: f64 = shown.parse().expect("number");
                assert!(
                    (got - want).abs() <= want.abs() * 5e-3 + 1e-9,
                    "{id} {} at {}: shows {shown}, summary.csv {col} = {want}",
                    r["flow"],
                    r["links.backhaul.loss.p"]
                );
            }
        }
        assert_consistent_precision(&html, &id, false);
    }
    assert_consistent_precision(&html, "summary-table", false);
    assert_consistent_precision(&html, "runs-table", true);
    // charts: every one, in the fixed order, captioned in words
    let charts = chart_svgs(&dir);
    let mut shown: Vec<(String, String)> = Vec::new();
    for part in html.split("<figure class=\"chart\" data-chart=\"").skip(1) {
        let name = part[..part.find('"').expect("end")].to_string();
        let c0 = part.find("<figcaption>").expect("caption") + "<figcaption>".len();
        let caption = text_of(&part[c0..part.find("</figcaption>").expect("end")]);
        shown.push((name, caption));
    }
    let mut names: Vec<String> = shown.iter().map(|(n, _)| n.clone()).collect();
    let kind = |n: &str| {
        ["delivery", "latency", "bytes", "timeseries"]
            .iter()
            .position(|k| n.starts_with(k))
            .unwrap_or(4)
    };
    let kinds: Vec<usize> = names.iter().map(|n| kind(n)).collect();
    assert!(
        kinds.windows(2).all(|w| w[0] <= w[1]),
        "chart order: {names:?}"
    );
    assert!(names[0].starts_with("delivery_ratio"), "{names:?}");
    names.sort();
    assert_eq!(names, charts, "every chart once");
    for (name, caption) in &shown {
        assert!(
            !caption.contains(".svg") && !caption.contains("charts/") && !caption.contains('_'),
            "{name}: caption {caption:?} is not words"
        );
        assert!(
            caption.starts_with(|c: char| c.is_ascii_uppercase()),
            "{name}: {caption:?}"
        );
        if name.contains("_vs_links.backhaul.loss.p") {
            assert!(
                caption.contains("against loss probability on link backhaul"),
                "{caption:?}"
            );
        }
    }
    // long tables collapsed, scrolling inside their box
    for id in ["summary", "flows"] {
        let i = html
            .find(&format!("<details id=\"{id}\""))
            .expect("details");
        let tag = &html[i..i + html[i..].find('>').expect("end")];
        assert!(
            !tag.contains("open"),
            "{id}: more than 12 rows, collapsed: {tag}"
        );
        let box_at = html[i..].find("<div class=\"box\">").expect("box") + i;
        assert!(box_at < html[i..].find("</details>").expect("end") + i);
    }
    assert!(
        html.contains(".box{overflow:auto"),
        "boxes scroll by themselves"
    );
    if let Some(c) = chromium() {
        check_in_browser(&c, &dir);
    }
}

/// The precision check fails on the mixes the old page had ("1 ± 0" beside
/// "0.9542 ± 0.0111", an interval without its n), so passing it means
/// something.
#[test]
fn precision_check_rejects_mixed_precision() {
    let page = |cell: &str| {
        format!(
            "<table id=\"t\"><thead><tr><th class=\"t\">series</th><th>delivery ratio</th></tr></thead>\
<tbody>\n<tr><td class=\"t\">UDP</td><td>{cell}</td></tr>\n</tbody></table>"
        )
    };
    let fails = |cell: &str, counts: bool| {
        let html = page(cell);
        std::panic::catch_unwind(|| assert_consistent_precision(&html, "t", counts)).is_err()
    };
    assert!(!fails(
        "0.954 ± 0.0111 <span class=\"n\">(n = 3)</span>",
        false
    ));
    assert!(!fails("1.00 ± 0 <span class=\"n\">(n = 3)</span>", false));
    assert!(!fails("1505", false));
    assert!(fails("1 ± 0 <span class=\"n\">(n = 3)</span>", false));
    assert!(fails(
        "0.9542 ± 0.0111 <span class=\"n\">(n = 3)</span>",
        false
    ));
    assert!(fails("0.954 ± 0.0111", false), "no (n = N)");
    assert!(fails("31", false));
    assert!(!fails("31", true), "a count in runs.csv");
    assert!(fails("0.5", true));
}
