//! What every chart of a results directory shares: the colour-blind-safe
//! palette and markers assigned by series identity, short legend names,
//! axis titles in words (a built-in table and the scenario's
//! `[report] labels`), tick formatting, and the legend drawn beside the
//! plot rather than over it.

use super::charts::FAMILY;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::Path;

/// Okabe & Ito (2008) colour-blind-safe palette, most distinct first.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Marker shapes, cycled with a period (5) coprime with the palette's (8),
/// so the first 40 series differ in colour or marker.
pub(crate) const MARKERS: usize = 5;

/// The legend frame's colour: nothing else in a chart is drawn with it
/// (tests find the legend by it).
pub(crate) const LEGEND_FRAME: RGBColor = RGBColor(96, 96, 96);

/// A series' colour and marker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SeriesStyle {
    pub color: RGBColor,
    pub marker: usize,
}

/// Options of a directory's charts: the scenario's `[report]` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartOptions {
    /// Axis titles by `--set` path (`[report] labels`), over the built-in table.
    pub labels: BTreeMap<String, String>,
    /// Draw one chart at a time on the calling thread instead of one per
    /// thread. `qossim run` sets it: a chart is a 6 MB bitmap while it is
    /// drawn, and on two threads the charts, not the simulation, set the
    /// peak memory of a 10,000-sensor run (BENCHMARKS.md, mqttsn-10k);
    /// drawing them in turn costs that run about 0.1 s. Sweeps and `qossim
    /// plot` draw in parallel.
    pub sequential: bool,
}

impl ChartOptions {
    /// The options of a scenario.
    pub fn of(sc: &crate::scenario::model::Scenario) -> Self {
        ChartOptions {
            labels: sc.report.labels.clone(),
            sequential: false,
        }
    }

    /// The options recorded in `dir/manifest.json` (its resolved scenario's
    /// `[report]` table); default when there is no manifest or no table.
    pub fn from_dir(dir: &Path) -> Self {
        let mut o = ChartOptions::default();
        let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
            return o;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return o;
        };
        let Some(toml_text) = v.get("resolved_scenario").and_then(|s| s.as_str()) else {
            return o;
        };
        let Ok(t) = toml_text.parse::<toml::Table>() else {
            return o;
        };
        if let Some(labels) = t
            .get("report")
            .and_then(|r| r.get("labels"))
            .and_then(|l| l.as_table())
        {
            for (k, v) in labels {
                if let Some(s) = v.as_str() {
                    o.labels.insert(k.clone(), s.to_string());
                }
            }
        }
        o
    }
}

/// Rank of a protocol in legends and colour assignment.
fn protocol_rank(p: &str) -> usize {
    ["udp", "coap", "http", "tcp", "mqtt", "mqttsn"]
        .iter()
        .position(|x| *x == p)
        .unwrap_or(99)
}

fn reliability_rank(r: &str) -> usize {
    [
        "best_effort",
        "non",
        "con",
        "confirmed",
        "exactly_once",
        "qos_minus1",
        "qos0",
        "qos1",
        "qos2",
    ]
    .iter()
    .position(|x| *x == r)
    .unwrap_or(99)
}

/// A protocol as written in papers.
pub(crate) fn protocol_name(p: &str) -> String {
    match p {
        "udp" => "UDP".into(),
        "coap" => "CoAP".into(),
        "mqtt" => "MQTT".into(),
        "mqttsn" => "MQTT-SN".into(),
        "http" => "HTTP".into(),
        "tcp" => "TCP".into(),
        "ip" => "IP".into(),
        other => other.to_string(),
    }
}

/// A reliability level as written in papers; `None` when it adds nothing
/// (UDP's best effort, HTTP's and TCP's confirmed delivery).
pub(crate) fn reliability_name(protocol: &str, r: &str) -> Option<String> {
    Some(match r {
        "" | "best_effort" => return None,
        "confirmed" if matches!(protocol, "http" | "tcp") => return None,
        "non" => "NON".into(),
        "con" => "CON".into(),
        "qos0" => "QoS 0".into(),
        "qos1" => "QoS 1".into(),
        "qos2" => "QoS 2".into(),
        "qos_minus1" => "QoS −1".into(),
        "exactly_once" => "exactly once".into(),
        other => other.to_string(),
    })
}

/// A series' identity: what it is, independent of the chart it is on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ident {
    rank: (usize, usize),
    pub protocol: String,
    pub reliability: String,
    pub flow: String,
    /// Values of the directory's categorical swept parameters, in column order.
    pub cats: Vec<String>,
}

impl Ident {
    pub(crate) fn new(protocol: &str, reliability: &str, flow: &str, cats: Vec<String>) -> Self {
        Ident {
            rank: (protocol_rank(protocol), reliability_rank(reliability)),
            protocol: protocol.into(),
            reliability: reliability.into(),
            flow: flow.into(),
            cats,
        }
    }
}

/// Last segment of a path that names a categorical parameter even when its
/// values are numbers.
fn categorical_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(
        last,
        "protocol"
            | "reliability"
            | "qos"
            | "pattern"
            | "coap_mode"
            | "role"
            | "model"
            | "version"
            | "transport"
    )
}

/// Paths whose effect already shows in the protocol and reliability names.
fn shown_by_protocol(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(last, "protocol" | "reliability" | "qos")
}

/// Whether a cell is a number (finite, within the charted magnitude).
pub(crate) fn num(s: &str) -> Option<f64> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() <= MAX_ABS)
}

/// Largest magnitude charted: plotters' tick search never ends on ranges
/// near the f64 limits (±1e308 hung `write_charts`), and no qossim metric or
/// parameter comes close, so larger cells count as not numeric.
pub(crate) const MAX_ABS: f64 = 1e12;

/// What a swept parameter is on the charts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Param {
    /// Numbers: an x axis.
    Axis,
    /// Words (or a protocol or QoS level): part of a series' identity.
    Cat,
    /// Words, without any numeric axis: the groups of the bar charts (and
    /// the points of the CDFs), not part of the series' identity.
    Group,
}

/// The series of a results directory: every identity in a fixed order
/// (protocol, reliability, flow, categorical values), which gives each its
/// colour and marker on every chart of the directory.
pub(crate) struct Styles {
    ids: Vec<Ident>,
    /// Flow names are shown when two series differ only in flow.
    show_flow: bool,
    /// Swept parameters with ≥ 2 values: (path, role).
    params: Vec<(String, Param)>,
    /// Per parameter of `params`: the protocols whose rows all have one
    /// value of it, so that their names already tell it (a zip of
    /// protocols with the receivers' protocol, say).
    implied: Vec<Vec<String>>,
    /// Per parameter of `params`: its values follow one to one from an
    /// earlier parameter's (a zip such as MQTT's and DTLS's `session`),
    /// so that one already tells it.
    redundant: Vec<bool>,
    opts: ChartOptions,
}

impl Styles {
    /// From the rows' (protocol, reliability, flow, params) and the
    /// parameter paths.
    pub(crate) fn new(
        paths: &[String],
        rows: &[(String, String, String, Vec<String>)],
        opts: &ChartOptions,
    ) -> Self {
        let mut params = Vec::new();
        let mut implied = Vec::new();
        let mut kept: Vec<usize> = Vec::new();
        let mut protocols: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        protocols.sort();
        protocols.dedup();
        for (k, path) in paths.iter().enumerate() {
            let values_of = |proto: Option<&str>| {
                let mut vals: Vec<&str> = rows
                    .iter()
                    .filter(|r| proto.is_none_or(|p| r.0 == p))
                    .filter_map(|r| r.3.get(k))
                    .map(|s| s.as_str())
                    .collect();
                vals.sort();
                vals.dedup();
                vals
            };
            let vals = values_of(None);
            if vals.len() < 2 {
                continue;
            }
            let numeric = !categorical_path(path) && vals.iter().all(|v| num(v).is_some());
            kept.push(k);
            params.push((path.clone(), if numeric { Param::Axis } else { Param::Cat }));
            implied.push(
                protocols
                    .iter()
                    .filter(|p| values_of(Some(p)).len() == 1)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>(),
            );
        }
        // categorical comparisons are grouped by the first categorical
        // parameter the protocol names do not already show
        if !params.iter().any(|p| p.1 == Param::Axis) {
            let shown = |k: usize, path: &str| {
                shown_by_protocol(path) || implied[k].len() == protocols.len()
            };
            if let Some(p) = params
                .iter_mut()
                .enumerate()
                .find(|(k, p)| !shown(*k, &p.0))
                .map(|(_, p)| p)
            {
                p.1 = Param::Group;
            }
        }
        // a one-to-one correspondence of values over the rows
        let same_partition = |a: usize, b: usize| {
            let mut pairs: Vec<(&str, &str)> = rows
                .iter()
                .filter_map(|r| Some((r.3.get(a)?.as_str(), r.3.get(b)?.as_str())))
                .collect();
            pairs.sort();
            pairs.dedup();
            let one_to_one = |v: &[(&str, &str)]| v.windows(2).all(|w| w[0].0 != w[1].0);
            let mut flipped: Vec<(&str, &str)> = pairs.iter().map(|p| (p.1, p.0)).collect();
            flipped.sort();
            one_to_one(&pairs) && one_to_one(&flipped)
        };
        let redundant = (0..params.len())
            .map(|i| {
                params[i].1 == Param::Cat
                    && (0..i).any(|j| params[j].1 == Param::Cat && same_partition(kept[j], kept[i]))
            })
            .collect();
        let mut s = Styles {
            ids: Vec::new(),
            show_flow: false,
            params,
            implied,
            redundant,
            opts: opts.clone(),
        };
        let mut ids: Vec<Ident> = rows
            .iter()
            .map(|r| {
                let cats = s.cats_of(paths, &r.3);
                Ident::new(&r.0, &r.1, &r.2, cats)
            })
            .collect();
        ids.sort();
        ids.dedup();
        s.show_flow = ids.windows(2).any(|w| {
            w[0].protocol == w[1].protocol
                && w[0].reliability == w[1].reliability
                && w[0].cats == w[1].cats
        });
        s.ids = ids;
        s
    }

    /// The categorical parameters' values of a row with parameter `paths`.
    pub(crate) fn cats_of(&self, paths: &[String], values: &[String]) -> Vec<String> {
        self.params
            .iter()
            .filter(|(_, k)| *k == Param::Cat)
            .map(|(p, _)| {
                paths
                    .iter()
                    .position(|x| x == p)
                    .and_then(|k| values.get(k).cloned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The parameter grouping the bar charts (none with a numeric axis).
    pub(crate) fn group_path(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(_, k)| *k == Param::Group)
            .map(|(p, _)| p.as_str())
    }

    /// The parameters a CDF chart is drawn at one value of: the numeric
    /// axes, else the bar charts' group.
    pub(crate) fn point_paths(&self) -> Vec<&str> {
        let mut v = self.axis_paths();
        v.extend(self.group_path());
        v
    }

    /// Numeric axis paths.
    pub(crate) fn axis_paths(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(_, k)| *k == Param::Axis)
            .map(|(p, _)| p.as_str())
            .collect()
    }

    /// The colour and marker of a series (by identity; one not seen in
    /// the directory's summary gets the slot after every known one).
    pub(crate) fn style(&self, id: &Ident) -> SeriesStyle {
        let i = match self.ids.binary_search(id) {
            Ok(i) => i,
            Err(_) => self.ids.len(),
        };
        SeriesStyle {
            color: PALETTE[i % PALETTE.len()],
            marker: i % MARKERS,
        }
    }

    /// The position of a series in the directory's order (legends sort by it).
    pub(crate) fn index(&self, id: &Ident) -> usize {
        self.ids.binary_search(id).unwrap_or(self.ids.len())
    }

    /// The style of a series the summary does not name.
    pub(crate) fn style_unknown(&self) -> SeriesStyle {
        let i = self.ids.len();
        SeriesStyle {
            color: PALETTE[i % PALETTE.len()],
            marker: i % MARKERS,
        }
    }

    /// The identity of a flow in a single run (its first in the summary).
    pub(crate) fn by_flow(&self, flow: &str) -> Option<&Ident> {
        self.ids.iter().find(|i| i.flow == flow)
    }

    /// Short legend name: protocol and reliability, the flow when needed to
    /// tell series apart, categorical values not shown by the protocol.
    pub(crate) fn label(&self, id: &Ident) -> String {
        let mut l = protocol_name(&id.protocol);
        if let Some(r) = reliability_name(&id.protocol, &id.reliability) {
            l.push(' ');
            l.push_str(&r);
        }
        if self.show_flow {
            l.push_str(&format!(" ({})", id.flow));
        }
        let cats: Vec<_> = self
            .params
            .iter()
            .zip(&self.implied)
            .zip(&self.redundant)
            .filter(|(((_, k), _), _)| *k == Param::Cat)
            .collect();
        // TLS settings say nothing about a connection without TLS
        let transport = cats
            .iter()
            .zip(&id.cats)
            .find(|((((p, _), _), _), _)| p == "protocols.mqtt.transport")
            .map(|(_, v)| v.as_str());
        let no_tls = |p: &str| {
            p.starts_with("protocols.tls.")
                && (id.protocol != "mqtt" || transport.is_some_and(|t| !matches!(t, "tls" | "wss")))
        };
        for ((((p, _), implied), redundant), v) in cats.into_iter().zip(&id.cats) {
            if !shown_by_protocol(p) && !implied.contains(&id.protocol) && !redundant && !no_tls(p)
            {
                // words, not identifiers: `per_message` reads "per message"
                let v = v.replace('_', " ");
                l.push_str(&format!(", {} {v}", self.axis_label(p).to_lowercase()));
            }
        }
        l
    }

    /// An axis title in words for a swept `--set` path.
    pub(crate) fn axis_label(&self, path: &str) -> String {
        axis_label(path, &self.opts)
    }
}

/// An axis title in words for a `--set` path: the scenario's `[report]
/// labels` first, then the built-in table, else the path itself.
pub fn axis_label(path: &str, opts: &ChartOptions) -> String {
    if let Some(l) = opts.labels.get(path) {
        return l.clone();
    }
    let seg: Vec<&str> = path.split('.').collect();
    // what the path is on: "link backhaul", "medium wpan", "flow telemetry"
    let (on, rest): (String, &[&str]) = match seg.as_slice() {
        ["links", l, rest @ ..] => (format!("link {l}"), rest),
        ["media", m, rest @ ..] => (format!("medium {m}"), rest),
        ["groups", g, "link", rest @ ..] => (format!("links of group {g}"), rest),
        ["groups", g, rest @ ..] => (format!("group {g}"), rest),
        ["flows", f, rest @ ..] => (format!("flow {f}"), rest),
        ["nodes", n, rest @ ..] => (format!("node {n}"), rest),
        ["protocols", p, rest @ ..] => (protocol_name(p), rest),
        rest => (String::new(), rest),
    };
    let what = match rest {
        ["loss", "p"] => "Loss probability".to_string(),
        ["loss", "mean_loss"] => "Mean loss probability".to_string(),
        ["loss", "p_gb"] => "Good-to-bad transition probability".to_string(),
        ["loss", "p_bg"] => "Bad-to-good transition probability".to_string(),
        ["loss", "burst"] => "Mean loss burst length (packets)".to_string(),
        ["loss", "loss_good"] => "Loss probability in the good state".to_string(),
        ["loss", "loss_bad"] => "Loss probability in the bad state".to_string(),
        ["rate"] => "Rate".to_string(),
        ["delay"] => "One-way delay".to_string(),
        ["mtu"] => "MTU (B)".to_string(),
        ["queue"] | ["queue_bytes"] => "Queue size (B)".to_string(),
        ["interval"] => "Publish interval".to_string(),
        ["jitter"] => "Publish jitter".to_string(),
        ["payload_bytes"] => "Payload size (B)".to_string(),
        ["protocol"] => "Protocol".to_string(),
        ["reliability"] | ["qos"] => "Reliability (QoS)".to_string(),
        ["pattern"] => "Pattern".to_string(),
        ["count"] => "Number of nodes".to_string(),
        ["duration"] => "Duration".to_string(),
        ["warmup"] => "Warm-up".to_string(),
        ["seed"] => "Seed".to_string(),
        ["version"] => "Version".to_string(),
        ["transport"] => "Transport".to_string(),
        _ => return path.to_string(),
    };
    if on.is_empty() {
        what
    } else {
        format!("{what} ({on})")
    }
}

/// Decimals that show every tick plotters can choose on `[lo, hi]` with at
/// most `max_points` labels exactly and distinctly: its ticks step by
/// 1, 2 or 5 × 10^k with at most `max_points` of them, so the step is at
/// least 10^floor(log10((hi − lo) / max_points)).
pub(crate) fn decimals(lo: f64, hi: f64, max_points: usize) -> usize {
    let range = (hi - lo).abs();
    if range <= 0.0 || !range.is_finite() {
        return 0;
    }
    let k = (range / max_points as f64).log10().floor();
    if k >= 0.0 {
        0
    } else {
        (-k as usize).min(9)
    }
}

/// A tick at `d` decimals, without a "-0".
pub(crate) fn fixed(v: f64, d: usize) -> String {
    let s = format!("{v:.d$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A tick on a log axis: up to three significant digits, no trailing
/// zeros ("10000", "0.5", "2.5").
pub(crate) fn log_tick(v: f64) -> String {
    if v <= 0.0 || !v.is_finite() {
        return "0".into();
    }
    let mag = v.log10().floor() as i32;
    let d = (2 - mag).clamp(0, 9) as usize;
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Pixel size at scale `s`.
pub(crate) fn px(s: f64, v: f64) -> i32 {
    (v * s).round() as i32
}

/// Font size at scale `s`.
pub(crate) fn font(s: f64, v: f64) -> (&'static str, f64) {
    (FAMILY, v * s)
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Key {
    /// A line with the series' marker on it.
    LineMarker,
    /// A filled box (bars).
    Box,
}

/// One legend entry.
pub(crate) struct Entry {
    pub label: String,
    pub style: SeriesStyle,
    pub key: Key,
}

/// Draw a marker centred on pixel `(x, y)`.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    st: SeriesStyle,
    s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let r = px(s, 4.5);
    let fill = st.color.filled();
    match st.marker {
        0 => area.draw(&Circle::new((x, y), r, fill)),
        1 => {
            let q = px(s, 4.0);
            area.draw(&Rectangle::new([(x - q, y - q), (x + q, y + q)], fill))
        }
        2 => area.draw(&Polygon::new(
            vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)],
            fill,
        )),
        3 => area.draw(&Polygon::new(
            vec![
                (x, y - r - 1),
                (x + r + 1, y),
                (x, y + r + 1),
                (x - r - 1, y),
            ],
            fill,
        )),
        _ => area.draw(&Polygon::new(
            vec![(x - r - 1, y - r), (x + r + 1, y - r), (x, y + r + 1)],
            fill,
        )),
    }
}

/// Width in pixels the legend needs (0 without entries).
pub(crate) fn legend_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    s: f64,
) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let style: TextStyle = font(s, 13.0).into();
    let w = entries
        .iter()
        .map(|e| {
            area.estimate_text_size(&e.label, &style)
                .map(|x| x.0)
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    // key (28) + gaps + frame padding; at most 40 % of the canvas
    let need = w as f64 + 52.0 * s;
    need.min(area.dim_in_pixel().0 as f64 * 0.4) as u32
}

/// Draw the legend in `area` (the strip right of the plot), top-aligned
/// below the title, inside a frame of `LEGEND_FRAME`.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, _) = area.dim_in_pixel();
    let row = px(s, 20.0);
    let top = px(s, 48.0);
    let left = px(s, 4.0);
    let right = w as i32 - px(s, 12.0);
    let bottom = top + px(s, 8.0) + row * entries.len() as i32;
    area.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        WHITE.filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        LEGEND_FRAME.stroke_width(1),
    ))?;
    let text = TextStyle::from(font(s, 13.0)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, e) in entries.iter().enumerate() {
        let y = top + px(s, 4.0) + row * i as i32 + row / 2;
        let x0 = left + px(s, 8.0);
        match e.key {
            Key::LineMarker => {
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + px(s, 24.0), y)],
                    e.style.color.stroke_width(px(s, 2.0) as u32),
                ))?;
                draw_marker(area, (x0 + px(s, 12.0), y), e.style, s)?;
            }
            Key::Box => {
                area.draw(&Rectangle::new(
                    [
                        (x0 + px(s, 4.0), y - px(s, 6.0)),
                        (x0 + px(s, 20.0), y + px(s, 6.0)),
                    ],
                    e.style.color.filled(),
                ))?;
            }
        }
        area.draw(&Text::new(
            e.label.clone(),
            (x0 + px(s, 32.0), y),
            text.clone(),
        ))?;
    }
    Ok(())
}

/// Insert `<title>` (the caption) and `<desc>` (the chart kind) after the
/// `<svg …>` opening tag: screen readers and browsers show them, and
/// `charts::list_charts` reads them back.
pub(crate) fn annotate_svg(svg: &str, title: &str, kind: &str) -> String {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    match svg
        .find("<svg")
        .and_then(|i| svg[i..].find('>').map(|j| i + j + 1))
    {
        Some(at) => format!(
            "{}\n<title>{}</title>\n<desc>{}</desc>{}",
            &svg[..at],
            esc(title),
            esc(kind),
            &svg[at..]
        ),
        None => svg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word parameter with one value per protocol (the receivers'
    /// protocol beside each flow protocol) neither labels nor groups; one
    /// that differs within a protocol labels that protocol's series only.
    #[test]
    fn words_a_protocol_implies_stay_out_of_labels_and_groups() {
        let paths: Vec<String> = ["ip.version", "subscribe_with", "transport"]
            .map(String::from)
            .to_vec();
        let row = |p: &str, v: &str, s: &str, t: &str| {
            (
                p.to_string(),
                if p == "coap" { "con" } else { "qos1" }.to_string(),
                "f".to_string(),
                vec![v.to_string(), s.to_string(), t.to_string()],
            )
        };
        let rows = vec![
            row("coap", "4", "coap", "udp"),
            row("mqttsn", "4", "mqtt", "udp"),
            row("coap", "6", "coap", "udp"),
            row("mqttsn", "6", "mqtt", "udp"),
            row("mqttsn", "6", "mqtt", "raw"),
        ];
        let st = Styles::new(&paths, &rows, &ChartOptions::default());
        assert_eq!(st.group_path(), Some("ip.version"));
        assert!(st.axis_paths().is_empty(), "a version is a choice");
        let label = |r: &(String, String, String, Vec<String>)| {
            st.label(&Ident::new(&r.0, &r.1, &r.2, st.cats_of(&paths, &r.3)))
        };
        assert_eq!(label(&rows[0]), "CoAP CON");
        assert_eq!(label(&rows[4]), "MQTT-SN QoS 1, transport raw");
        // without the version, subscribe_with (implied) does not group
        let st = Styles::new(
            &paths[1..],
            &rows
                .iter()
                .map(|r| (r.0.clone(), r.1.clone(), r.2.clone(), r.3[1..].to_vec()))
                .collect::<Vec<_>>(),
            &ChartOptions::default(),
        );
        assert_eq!(st.group_path(), Some("transport"));
    }

    /// Every tick plotters can choose on a range, formatted at `decimals`,
    /// is distinct: ranges that once gave "1.001 1.001 1.000" and
    /// "500.0" beside "1000".
    #[test]
    fn ticks_are_distinct_and_uniform() {
        for (lo, hi) in [
            (0.9995, 1.0012),
            (0.0, 2000.0),
            (0.0, 0.4),
            (0.0, 1.04),
            (10.0, 11.0),
        ] {
            let d = decimals(lo, hi, 10);
            // every 1/2/5 × 10^k step giving at most 10 ticks
            for k in -6..6 {
                for m in [1.0, 2.0, 5.0] {
                    let step = m * 10f64.powi(k);
                    if (hi - lo) / step > 10.0 {
                        continue;
                    }
                    let mut v = (lo / step).ceil() * step;
                    let mut labels = Vec::new();
                    while v <= hi + 1e-12 {
                        labels.push(fixed(v, d));
                        v += step;
                    }
                    let mut u = labels.clone();
                    u.dedup();
                    assert_eq!(u, labels, "[{lo}, {hi}] step {step}");
                }
            }
        }
        assert_eq!(decimals(0.0, 2000.0, 10), 0);
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(log_tick(10000.0), "10000");
        assert_eq!(log_tick(0.5), "0.5");
        assert_eq!(log_tick(2.0), "2");
        assert_eq!(log_tick(25.0), "25");
    }

    #[test]
    fn paths_become_words_and_labels_win() {
        let mut o = ChartOptions::default();
        assert_eq!(
            axis_label("links.backhaul.loss.p", &o),
            "Loss probability (link backhaul)"
        );
        assert_eq!(
            axis_label("groups.sensor-{i}.link.loss.mean_loss", &o),
            "Mean loss probability (links of group sensor-{i})"
        );
        assert_eq!(
            axis_label("flows.t.interval", &o),
            "Publish interval (flow t)"
        );
        assert_eq!(axis_label("links.l.mtu", &o), "MTU (B) (link l)");
        assert_eq!(axis_label("something.else", &o), "something.else");
        o.labels
            .insert("links.backhaul.loss.p".into(), "Backhaul loss (%)".into());
        assert_eq!(axis_label("links.backhaul.loss.p", &o), "Backhaul loss (%)");
    }

    #[test]
    fn series_keep_their_style_whatever_the_row_order() {
        let o = ChartOptions::default();
        let row = |p: &str, r: &str, f: &str| (p.to_string(), r.to_string(), f.to_string(), vec![]);
        let a = Styles::new(
            &[],
            &[row("mqtt", "qos1", "m"), row("udp", "best_effort", "u")],
            &o,
        );
        let b = Styles::new(
            &[],
            &[row("udp", "best_effort", "u"), row("mqtt", "qos1", "m")],
            &o,
        );
        let id = Ident::new("mqtt", "qos1", "m", vec![]);
        assert_eq!(a.style(&id), b.style(&id));
        assert_eq!(a.label(&id), "MQTT QoS 1");
        assert_eq!(
            a.label(&Ident::new("udp", "best_effort", "u", vec![])),
            "UDP"
        );
        assert_ne!(
            a.style(&id),
            a.style(&Ident::new("udp", "best_effort", "u", vec![]))
        );
        // two flows with the same protocol and QoS: the flow names them
        let c = Styles::new(
            &[],
            &[
                row("udp", "best_effort", "a"),
                row("udp", "best_effort", "b"),
            ],
            &o,
        );
        assert_eq!(
            c.label(&Ident::new("udp", "best_effort", "a", vec![])),
            "UDP (a)"
        );
    }
}
