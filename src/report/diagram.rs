//! Sequence diagrams of one message (`qossim diagram`, docs/traces.md):
//! its life across nodes, read from a run's `trace.csv`, as Mermaid
//! `sequenceDiagram` text and as a hand-written SVG.
//!
//! Which packets belong to message `flow:publisher:seq`: every packet a
//! host sent whose payload carries that message (`msg` column: PUBLISH
//! hops, CoAP CON/NON, MQTT-SN PUBLISH, UDP datagrams), and the
//! acknowledgements on the same pair of hosts with the same protocol id
//! (MQTT packet id: PUBACK, PUBREC, PUBCOMP back, PUBREL forward; CoAP
//! message ID: ACK, RST back; MQTT-SN MsgId), until the sender of the
//! message reuses that id for another message. TCP's own segments (pure
//! ACKs, handshakes) are left out. The trace is read once, streaming.
//!
//! Each packet is an arrow from its send to each receipt (`recv`, joined
//! by the `pkt` serial); a packet lost on the way (a `lost` row, or no
//! receipt at all) is an arrow ending in a cross. A packet that repeats an
//! earlier one of the diagram (same hosts, kind and ids, TCP's ack number
//! and MQTT's DUP aside) is labelled `retx n`; an MQTT or MQTT-SN DUP flag
//! is labelled `DUP`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Why no diagram could be drawn.
#[derive(Debug, thiserror::Error)]
pub enum DiagramError {
    #[error("{0} has no trace.csv: run the scenario with `qossim run --trace` first")]
    NoTrace(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a trace.csv (header {header:?})")]
    BadHeader { path: PathBuf, header: String },
    #[error("--message {0:?}: expected FLOW:PUBLISHER:SEQ (e.g. telemetry:sensor-1:0)")]
    BadTag(String),
    #[error("message {0} does not appear in trace.csv (a seq the publisher never sent, or rows left out by --trace-nodes/--trace-flows)")]
    NotFound(String),
    #[error("no message in trace.csv needed a retransmission")]
    NoRetransmission,
}

/// One row of `trace.csv` (the columns a diagram reads).
#[derive(Debug, Clone, Default)]
struct Row {
    t: u64,
    node: String,
    layer: String,
    event: String,
    pkt: u32,
    src: String,
    dst: String,
    kind: String,
    ids: String,
    msg: String,
    outcome: String,
}

/// Split one CSV line (fields quoted as `csv_field` writes them).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Stream the rows of `dir/trace.csv` to `f`.
fn each_row(dir: &Path, mut f: impl FnMut(Row)) -> Result<(), DiagramError> {
    let path = dir.join("trace.csv");
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DiagramError::NoTrace(dir.to_path_buf()))
        }
        Err(source) => return Err(DiagramError::Read { path, source }),
    };
    let mut lines = BufReader::new(file).lines();
    let read_err = |source| DiagramError::Read {
        path: path.clone(),
        source,
    };
    let header = lines
        .next()
        .transpose()
        .map_err(read_err)?
        .unwrap_or_default();
    if header != crate::world::trace::TRACE_HEADER {
        return Err(DiagramError::BadHeader {
            path: path.clone(),
            header,
        });
    }
    for line in lines {
        let line = line.map_err(read_err)?;
        let c = split_csv(&line);
        if c.len() < 14 {
            continue;
        }
        let mut c = c.into_iter();
        let mut next = || c.next().unwrap_or_default();
        let _run = next();
        let t = next().parse().unwrap_or(0);
        let node = next();
        let _peer = next();
        let layer = next();
        let event = next();
        let pkt = next().parse().unwrap_or(0);
        let src = next();
        let dst = next();
        let kind = next();
        let ids = next();
        let _bytes = next();
        let msg = next();
        let outcome = next();
        f(Row {
            t,
            node,
            layer,
            event,
            pkt,
            src,
            dst,
            kind,
            ids,
            msg,
            outcome,
        });
    }
    Ok(())
}

/// The value of `key=` in an ids field.
fn id_value<'a>(ids: &'a str, key: &str) -> Option<&'a str> {
    ids.split(' ')
        .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// A packet kind's protocol family and the id that pairs its
/// acknowledgements: (family, id value).
fn protocol_id<'a>(kind: &str, ids: &'a str) -> Option<(&'static str, &'a str)> {
    if kind.starts_with("mqttsn_") {
        Some(("mqttsn", id_value(ids, "msgid")?))
    } else if kind.starts_with("mqtt_") {
        Some(("mqtt", id_value(ids, "pid")?))
    } else if kind.starts_with("coap_") {
        Some(("coap", id_value(ids, "mid")?))
    } else {
        None
    }
}

/// Whether `kind` carries a message (its id then names that message).
fn is_message_kind(kind: &str) -> bool {
    matches!(
        kind,
        "mqtt_publish" | "mqttsn_publish" | "coap_con" | "coap_non"
    )
}

/// For an acknowledgement kind: `Some(true)` when it travels the way the
/// message did (PUBREL), `Some(false)` when it travels back; `None`: not
/// an acknowledgement of a message.
fn ack_direction(kind: &str) -> Option<bool> {
    match kind {
        "mqtt_pubrel" | "mqttsn_pubrel" => Some(true),
        "mqtt_puback" | "mqtt_pubrec" | "mqtt_pubcomp" | "mqttsn_puback" | "mqttsn_pubrec"
        | "mqttsn_pubcomp" | "coap_ack" | "coap_rst" => Some(false),
        _ => None,
    }
}

/// What makes a packet a repeat of another: hosts, kind and ids without
/// TCP's ack number (it moves on), MQTT's DUP flag and the retx mark.
fn repeat_key(r: &Row) -> String {
    let ids: Vec<&str> = r
        .ids
        .split(' ')
        .filter(|t| *t != "retx" && !t.starts_with("ack=") && !t.starts_with("dup="))
        .collect();
    format!("{}>{}|{}|{}", r.src, r.dst, r.kind, ids.join(" "))
}

/// Acknowledgement windows: (message sender, receiver, family, id) → open.
type Windows = HashMap<(String, String, &'static str, String), bool>;

/// The message (tag) an acknowledgement row belongs to, by its window.
fn ack_owner<'a>(
    owners: &'a HashMap<(String, String, &'static str, String), String>,
    r: &Row,
) -> Option<&'a str> {
    let forward = ack_direction(&r.kind)?;
    let (fam, id) = protocol_id(&r.kind, &r.ids)?;
    let (a, b) = if forward {
        (&r.src, &r.dst)
    } else {
        (&r.dst, &r.src)
    };
    owners
        .get(&(a.clone(), b.clone(), fam, id.to_string()))
        .map(String::as_str)
}

/// The first message (in send order) one of whose packets was sent again:
/// a retransmission (same hosts, kind and ids) or an MQTT DUP.
pub fn first_retransmitted(dir: &Path) -> Result<Option<String>, DiagramError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut owners: HashMap<(String, String, &'static str, String), String> = HashMap::new();
    let mut found: Option<String> = None;
    each_row(dir, |r| {
        if found.is_some() || r.layer != "ip" || r.event != "send" {
            return;
        }
        if !r.msg.is_empty() && is_message_kind(&r.kind) {
            if let Some((fam, id)) = protocol_id(&r.kind, &r.ids) {
                owners.insert(
                    (r.src.clone(), r.dst.clone(), fam, id.to_string()),
                    r.msg.clone(),
                );
            }
        }
        let owner = if r.msg.is_empty() {
            ack_owner(&owners, &r).map(str::to_string)
        } else {
            Some(r.msg.clone())
        };
        let Some(owner) = owner else {
            return;
        };
        let again = !seen.insert(repeat_key(&r));
        if again || id_value(&r.ids, "dup") == Some("1") {
            found = Some(owner);
        }
    })?;
    Ok(found)
}

/// What the diagram draws, in time order.
#[derive(Debug, Clone)]
enum Item {
    /// An application event at a node (publish, deliver, …).
    App { t: u64, node: String, event: String },
    /// A packet: its send row and label.
    Packet {
        t: u64,
        pkt: u32,
        src: String,
        dst: String,
        label: String,
    },
}

/// A drawn arrow: from `src` at `t0` to `dst` at `t1`; `lost`: where and
/// how it ended instead.
#[derive(Debug, Clone)]
struct Arrow {
    t0: u64,
    t1: u64,
    src: String,
    dst: String,
    label: String,
    lost: Option<(String, String)>,
}

/// One message's diagram.
#[derive(Debug, Clone)]
pub struct Diagram {
    pub tag: String,
    pub mermaid: String,
    pub svg: String,
}

/// Check a `flow:publisher:seq` tag (names may hold ':' but seq may not).
pub fn parse_tag(tag: &str) -> Result<(String, String, u32), DiagramError> {
    let bad = || DiagramError::BadTag(tag.to_string());
    let (rest, seq) = tag.rsplit_once(':').ok_or_else(bad)?;
    let (flow, publisher) = rest.rsplit_once(':').ok_or_else(bad)?;
    let seq = seq.parse().map_err(|_| bad())?;
    if flow.is_empty() || publisher.is_empty() {
        return Err(bad());
    }
    Ok((flow.to_string(), publisher.to_string(), seq))
}

/// The label of a packet row: its kind's name and the ids that matter.
fn label(r: &Row, retx: usize) -> String {
    let name = r
        .kind
        .split_once('_')
        .map_or(r.kind.as_str(), |(_, k)| k)
        .to_ascii_uppercase();
    let mut s = name;
    for key in ["pid", "qos", "mid", "msgid"] {
        if let Some(v) = id_value(&r.ids, key) {
            let _ = write!(s, " {key}={v}");
        }
    }
    if id_value(&r.ids, "dup") == Some("1") {
        s.push_str(" DUP");
    }
    if retx > 0 {
        let _ = write!(s, " retx {retx}");
    }
    s
}

/// Read `dir/trace.csv` and draw message `tag` (`flow:publisher:seq`).
pub fn diagram(dir: &Path, tag: &str) -> Result<Diagram, DiagramError> {
    parse_tag(tag)?;
    let mut items: Vec<Item> = Vec::new();
    let mut selected: HashSet<u32> = HashSet::new();
    let mut windows: Windows = HashMap::new();
    let mut repeats: HashMap<String, usize> = HashMap::new();
    let mut recvs: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut losts: HashMap<u32, Vec<(u64, String, String)>> = HashMap::new();
    each_row(dir, |r| {
        if r.layer == "app" {
            if r.msg == tag {
                items.push(Item::App {
                    t: r.t,
                    node: r.node,
                    event: r.event,
                });
            }
            return;
        }
        match r.event.as_str() {
            "send" if r.layer == "ip" => {}
            "recv" => {
                if selected.contains(&r.pkt) {
                    recvs.entry(r.pkt).or_default().push(r.t);
                }
                return;
            }
            "lost" => {
                if selected.contains(&r.pkt) {
                    losts
                        .entry(r.pkt)
                        .or_default()
                        .push((r.t, r.node, r.outcome));
                }
                return;
            }
            _ => return,
        }
        let pid = protocol_id(&r.kind, &r.ids).map(|(f, i)| (f, i.to_string()));
        let take = if r.msg == tag {
            if let (Some((fam, id)), true) = (&pid, is_message_kind(&r.kind)) {
                windows
                    .entry((r.src.clone(), r.dst.clone(), fam, id.clone()))
                    .or_insert(true);
            }
            true
        } else if let Some((fam, id)) = pid {
            if !r.msg.is_empty() && is_message_kind(&r.kind) {
                // the sender reuses the id for another message
                if let Some(open) = windows.get_mut(&(r.src.clone(), r.dst.clone(), fam, id)) {
                    *open = false;
                }
                false
            } else {
                match ack_direction(&r.kind) {
                    Some(fwd) => {
                        let (a, b) = if fwd {
                            (r.src.clone(), r.dst.clone())
                        } else {
                            (r.dst.clone(), r.src.clone())
                        };
                        windows.get(&(a, b, fam, id)).copied().unwrap_or(false)
                    }
                    None => false,
                }
            }
        } else {
            false
        };
        if !take {
            return;
        }
        selected.insert(r.pkt);
        let n = repeats.entry(repeat_key(&r)).or_insert(0);
        let lbl = label(&r, *n);
        *n += 1;
        items.push(Item::Packet {
            t: r.t,
            pkt: r.pkt,
            src: r.src,
            dst: r.dst,
            label: lbl,
        });
    })?;
    if items.is_empty() {
        return Err(DiagramError::NotFound(tag.to_string()));
    }
    let mut arrows_of = |pkt: u32, t: u64, src: &str, dst: &str, label: &str| -> Vec<Arrow> {
        let mut v = Vec::new();
        let arrow = |t1: u64, lost: Option<(String, String)>| Arrow {
            t0: t,
            t1,
            src: src.to_string(),
            dst: dst.to_string(),
            label: label.to_string(),
            lost,
        };
        for &t1 in recvs.get(&pkt).map(Vec::as_slice).unwrap_or(&[]) {
            v.push(arrow(t1, None));
        }
        for (t1, node, outcome) in losts.remove(&pkt).unwrap_or_default() {
            v.push(arrow(t1, Some((node, outcome))));
        }
        if v.is_empty() {
            v.push(arrow(t, Some((String::new(), "never received".into()))));
        }
        v
    };
    // participants in order of appearance; events in time order (stable)
    let mut order: Vec<(u64, usize, Drawn)> = Vec::new();
    let mut participants: Vec<String> = Vec::new();
    let mut join = |n: &str| {
        if !participants.iter().any(|p| p == n) {
            participants.push(n.to_string());
        }
    };
    for (i, it) in items.iter().enumerate() {
        match it {
            Item::App { t, node, event } => {
                join(node);
                order.push((*t, i, Drawn::Note(node.clone(), *t, event.clone())));
            }
            Item::Packet {
                t,
                pkt,
                src,
                dst,
                label,
            } => {
                join(src);
                join(dst);
                for a in arrows_of(*pkt, *t, src, dst, label) {
                    order.push((*t, i, Drawn::Arrow(a)));
                }
            }
        }
    }
    order.sort_by_key(|(t, i, _)| (*t, *i));
    let drawn: Vec<Drawn> = order.into_iter().map(|(_, _, d)| d).collect();
    Ok(Diagram {
        tag: tag.to_string(),
        mermaid: mermaid(tag, &participants, &drawn),
        svg: svg(tag, &participants, &drawn),
    })
}

#[derive(Debug, Clone)]
enum Drawn {
    Note(String, u64, String),
    Arrow(Arrow),
}

/// `t` ns as milliseconds with three decimals.
fn ms(t: u64) -> String {
    format!("{}.{:03} ms", t / 1_000_000, t % 1_000_000 / 1000)
}

/// What an application event says in a note.
fn app_text(event: &str) -> &str {
    match event {
        "publish" => "published",
        "deliver" => "delivered",
        "deliver_repeat" => "delivered again (duplicate)",
        "deliver_unrecorded" => "delivered (not recorded: late or in warmup)",
        e => e,
    }
}

/// Mermaid text: participants aliased (names may hold '-'), `->>` for a
/// packet received, `-x` for one lost, notes for the times.
fn mermaid(tag: &str, parts: &[String], drawn: &[Drawn]) -> String {
    let alias = |n: &str| parts.iter().position(|p| p == n).unwrap_or(0);
    let clean = |s: &str| s.replace([';', '#', '\n'], " ");
    let mut s = String::from("sequenceDiagram\n");
    let _ = writeln!(
        s,
        "    %% message {} (qossim diagram, from trace.csv)",
        clean(tag)
    );
    for (i, p) in parts.iter().enumerate() {
        let _ = writeln!(s, "    participant P{i} as {}", clean(p));
    }
    for d in drawn {
        match d {
            Drawn::Note(node, t, event) => {
                let _ = writeln!(
                    s,
                    "    Note over P{}: {} {}",
                    alias(node),
                    ms(*t),
                    app_text(event)
                );
            }
            Drawn::Arrow(a) => {
                let (x, y) = (alias(&a.src), alias(&a.dst));
                let over = if x == y {
                    format!("P{x}")
                } else {
                    format!("P{x},P{y}")
                };
                match &a.lost {
                    None => {
                        let _ = writeln!(s, "    P{x}->>P{y}: {}", clean(&a.label));
                        let _ = writeln!(s, "    Note over {over}: {} → {}", ms(a.t0), ms(a.t1));
                    }
                    Some((node, outcome)) => {
                        let _ = writeln!(s, "    P{x}-xP{y}: {} ({outcome})", clean(&a.label));
                        let at = if node.is_empty() {
                            String::new()
                        } else {
                            format!(" at {}", clean(node))
                        };
                        let _ = writeln!(
                            s,
                            "    Note over {over}: {} lost{at} ({})",
                            ms(a.t1.max(a.t0)),
                            outcome
                        );
                    }
                }
            }
        }
    }
    s
}

fn xml(s: &str) -> String {
    crate::report::html::escape(s)
}

/// The SVG: a lifeline per node, time running down (proportional, each
/// step stretched to at least `GAP` px so labels stay apart), an arrow per
/// packet (slanted by its transit time), a red cross where one was lost.
fn svg(tag: &str, parts: &[String], drawn: &[Drawn]) -> String {
    const COL: f64 = 170.0;
    const LEFT: f64 = 150.0;
    const TOP: f64 = 70.0;
    const GAP: f64 = 22.0;
    const SPAN: f64 = 400.0;
    let x = |n: &str| LEFT + COL * parts.iter().position(|p| p == n).unwrap_or(0) as f64;
    // every instant drawn, mapped to a y; a note has a row of its own,
    // before the packets of its instant (publish) or after them (the rest)
    let note_slot = |event: &str| if event == "publish" { 0u8 } else { 2 };
    let mut times: Vec<(u64, u8)> = Vec::new();
    for d in drawn {
        match d {
            Drawn::Note(_, t, event) => times.push((*t, note_slot(event))),
            Drawn::Arrow(a) => {
                times.push((a.t0, 1));
                times.push((a.t1.max(a.t0), 1));
            }
        }
    }
    times.sort_unstable();
    times.dedup();
    let (t0, t1) = (times[0].0, times.last().unwrap_or(&times[0]).0);
    let scale = SPAN / ((t1 - t0).max(1) as f64);
    let mut ys = Vec::with_capacity(times.len());
    let mut y = TOP;
    for (i, &(t, _)) in times.iter().enumerate() {
        if i > 0 {
            y += ((t - times[i - 1].0) as f64 * scale).max(GAP);
        }
        ys.push(y);
    }
    let y_at = |t: u64, slot: u8| ys[times.binary_search(&(t, slot)).unwrap_or(0)];
    let y_of = |t: u64| y_at(t, 1);
    let bottom = y + 40.0;
    let width = LEFT + COL * parts.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{bottom:.0}\" viewBox=\"0 0 {width:.0} {bottom:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<title>message {}</title>", xml(tag));
    s.push_str("<defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n");
    let _ = writeln!(
        s,
        "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">message {}</text>",
        xml(tag)
    );
    for p in parts {
        let px = x(p);
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"28\" width=\"140\" height=\"22\" fill=\"#eef\" stroke=\"#336\"/><text x=\"{px:.1}\" y=\"43\" text-anchor=\"middle\">{}</text>",
            px - 70.0,
            xml(p)
        );
        let _ = writeln!(
            s,
            "<line x1=\"{px:.1}\" y1=\"50\" x2=\"{px:.1}\" y2=\"{bottom:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
        );
    }
    // time axis: each instant's label at the left
    for (&(t, _), &ty) in times.iter().zip(&ys) {
        let _ = writeln!(
            s,
            "<text x=\"4\" y=\"{:.1}\" fill=\"#666\">{}</text>",
            ty + 4.0,
            ms(t)
        );
    }
    for d in drawn {
        match d {
            Drawn::Note(node, t, event) => {
                let (nx, ny) = (x(node), y_at(*t, note_slot(event)));
                let _ = writeln!(
                    s,
                    "<circle cx=\"{nx:.1}\" cy=\"{ny:.1}\" r=\"4\" fill=\"#393\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#393\">{}</text>",
                    nx + 7.0,
                    ny + 4.0,
                    xml(app_text(event))
                );
            }
            Drawn::Arrow(a) => {
                let (x0, y0) = (x(&a.src), y_of(a.t0));
                let (x1, y1) = (x(&a.dst), y_of(a.t1.max(a.t0)));
                match &a.lost {
                    None => {
                        let _ = writeln!(
                            s,
                            "<line x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{x1:.1}\" y2=\"{y1:.1}\" stroke=\"#333\" marker-end=\"url(#head)\"/>"
                        );
                        let _ = writeln!(
                            s,
                            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                            (x0 + x1) / 2.0,
                            (y0 + y1) / 2.0 - 4.0,
                            xml(&a.label)
                        );
                    }
                    Some((_, outcome)) => {
                        // the arrow stops 60 % of the way, in a cross
                        let ex = x0 + (x1 - x0) * 0.6;
                        let ey = y0 + (y1 - y0) * 0.6;
                        let _ = writeln!(
                            s,
                            "<line x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" stroke=\"#c00\"/>"
                        );
                        let _ = writeln!(
                            s,
                            "<path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\" stroke=\"#c00\" stroke-width=\"2\"/>",
                            ex - 5.0,
                            ey - 5.0,
                            ex + 5.0,
                            ey + 5.0,
                            ex - 5.0,
                            ey + 5.0,
                            ex + 5.0,
                            ey - 5.0
                        );
                        // the label starts at the sender and runs towards
                        // the cross (a short arrow's label would reach the
                        // time column if centred)
                        let (lx, anchor) = if x1 >= x0 {
                            (x0 + 6.0, "start")
                        } else {
                            (x0 - 6.0, "end")
                        };
                        let _ = writeln!(
                            s,
                            "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#c00\">{} × {}</text>",
                            y0 - 4.0,
                            xml(&a.label),
                            xml(outcome)
                        );
                    }
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The file stem of a message's diagram: `diagram-<flow>-<publisher>-<seq>`.
pub fn file_stem(tag: &str) -> String {
    match parse_tag(tag) {
        Ok((f, p, n)) => format!(
            "diagram-{}-{}-{n}",
            super::file_safe(&f),
            super::file_safe(&p)
        ),
        Err(_) => format!("diagram-{}", super::file_safe(tag)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\","), ["a", "b,c", "d\"e", ""]);
    }

    #[test]
    fn tags_parse_from_the_right() {
        assert_eq!(
            parse_tag("t:a:b:7").expect("tag"),
            ("t:a".to_string(), "b".to_string(), 7)
        );
        assert!(parse_tag("t:7").is_err());
        assert!(parse_tag("t:a:x").is_err());
    }

    #[test]
    fn repeats_ignore_the_ack_number_and_dup() {
        let r = |ids: &str| Row {
            src: "a".into(),
            dst: "b".into(),
            kind: "mqtt_publish".into(),
            ids: ids.into(),
            ..Default::default()
        };
        assert_eq!(
            repeat_key(&r("seq=1 ack=5 len=9 pid=1 qos=1 dup=0")),
            repeat_key(&r("retx seq=1 ack=9 len=9 pid=1 qos=1 dup=1"))
        );
        assert_ne!(
            repeat_key(&r("seq=1 ack=5 len=9")),
            repeat_key(&r("seq=10 ack=5 len=9"))
        );
    }
}
