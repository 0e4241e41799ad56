//! `ScenarioError`: what went wrong, in which file, on which line and column,
//! in which field. Byte spans from the TOML parser are converted to 1-based
//! line/column here, and a span can be mapped back to the `--set`-style field
//! path it falls in (`flows.telemetry.interval`).

use std::fmt;
use std::ops::Range;

/// An error in a scenario file (or a trace file it references), located as
/// precisely as the parser allows.
///
/// Displayed as ``<file>:<line>:<col>: field `<field>`: <message>``; missing
/// parts are left out (`<file>: <message>` when nothing else is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file (or trace file) the error is in, as given.
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column (in characters).
    pub column: Option<usize>,
    /// Field path in `--set` syntax (`links.backhaul.loss.p`), if known.
    pub field: Option<String>,
    /// What is wrong, and where useful, what would be accepted.
    pub message: String,
}

impl ScenarioError {
    /// An error that is about the file as a whole (unreadable, …).
    pub fn file_only(file: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }
}

/// `file[:line[:col]]`, the location errors and warnings start with.
fn write_location(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> fmt::Result {
    write!(f, "{file}")?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
        if let Some(col) = column {
            write!(f, ":{col}")?;
        }
    }
    Ok(())
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.file, self.line, self.column)?;
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A valid but questionable scenario, or a run that did something the
/// user probably did not intend (README.md "Warnings"). Every command
/// prints warnings in one form, ``<file>:<line>:<col>: warning: <message>``
/// (the location of the field the warning is about, when it is in the
/// file), and `--deny-warnings` turns them into exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path in `--set` syntax the warning is about, if any.
    pub field: Option<String>,
    pub message: String,
}

impl Warning {
    /// A warning about `field` (a `--set`-style path such as `flows.t` or
    /// `drain`) of the scenario text `text` read from `file`: located at
    /// the field's deepest ancestor that the text spells out (an array
    /// element at its `name`), at the file alone when none does.
    pub fn at(file: &str, text: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        let span = field.and_then(|f| span_of_path(text, f));
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = LineIndex::new(text).line_col(s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Warning {
            file: file.to_string(),
            line,
            column,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.file, self.line, self.column)?;
        write!(f, ": warning: {}", self.message)
    }
}

/// The byte span of the `--set`-style `path` in the TOML `text`: a key's
/// span, or for an array element (named as in [`field_path_at`]) the span
/// of its `name` value (the whole element when unnamed). When `path` is
/// not spelled out in full (a default, a group member), the span of its
/// longest prefix that is; `None` when not even the first segment is.
pub fn span_of_path(text: &str, path: &str) -> Option<Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut table = doc.as_item().as_table()?;
    let mut found = None;
    let mut segs = path.split('.').peekable();
    while let Some(seg) = segs.next() {
        let Some((key, item)) = table.get_key_value(seg) else {
            break;
        };
        match item {
            toml_edit::Item::Table(t) => {
                found = t.span().or_else(|| key.span()).or(found);
                table = t;
            }
            toml_edit::Item::ArrayOfTables(a) => {
                found = key.span().or(found);
                // the next segment names the element
                let Some(elem) = segs.next() else { break };
                let Some(t) = a
                    .iter()
                    .enumerate()
                    .find(|(i, t)| table_label(t, *i) == elem)
                else {
                    break;
                };
                let name =
                    t.1.get("name")
                        .and_then(|n| n.as_value())
                        .and_then(|v| v.span());
                found = name.or_else(|| t.1.span()).or(found);
                table = t.1;
            }
            toml_edit::Item::Value(v) => {
                found = v.span().or_else(|| key.span()).or(found);
                break;
            }
            toml_edit::Item::None => break,
        }
    }
    found
}

/// Levenshtein distance between `a` and `b` (in characters).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + usize::from(ca != cb));
            diag = up;
        }
    }
    row[b.len()]
}

/// `; did you mean `x`?` for the candidate closest to `want` (the first
/// of equals) when it is within a third of `want`'s length in edits (at
/// least 1, at most 3), else the empty string.
pub(crate) fn did_you_mean<'a>(
    want: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let limit = (want.chars().count() / 3).clamp(1, 3);
    let best = candidates
        .into_iter()
        .filter(|c| *c != want)
        .map(|c| (edit_distance(want, c), c))
        .min_by_key(|&(d, _)| d);
    match best {
        Some((d, c)) if d <= limit => format!("; did you mean `{c}`?"),
        _ => String::new(),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`, …" and
/// "unknown variant `x`, expected one of …" messages with a
/// [`did_you_mean`] suggestion appended.
pub(crate) fn with_suggestion(message: &str) -> String {
    let parsed = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split_once('`'))
        .and_then(|(want, rest)| Some((want, rest.split_once("expected ")?.1)));
    let Some((want, expected)) = parsed else {
        return message.to_string();
    };
    let candidates = expected.split('`').skip(1).step_by(2);
    format!("{message}{}", did_you_mean(want, candidates))
}

/// Maps byte offsets of one text to 1-based (line, column).
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Index `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past
    /// the end map to the end of the text.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

/// The deepest field path (in `--set` syntax) whose key, value or table
/// covers the byte range `target` of the TOML `text` (empty for the root); array-of-tables elements are named by their
/// `name` key (or `a--b` for unnamed links), else by `[index]`.
pub fn field_path_at(text: &str, target: Range<usize>) -> Option<String> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let root = doc.as_item().as_table()?;
    let mut best: Option<(usize, Vec<String>)> = Some((usize::MAX, Vec::new()));
    let mut path = Vec::new();
    walk_table(root, &target, &mut path, &mut best);
    best.map(|(_, p)| p.join("."))
}

/// Width of `span` if it contains all of `target` (an empty target counts
/// as its first byte).
fn covers(span: Option<Range<usize>>, target: &Range<usize>) -> Option<usize> {
    let end = target.end.max(target.start + 1);
    span.filter(|s| s.start <= target.start && end <= s.end.max(s.start + 1))
        .map(|s| s.end - s.start)
}

/// Record `path` if it is deeper (or, equally deep, narrower) than the best.
fn consider(path: &[String], width: usize, best: &mut Option<(usize, Vec<String>)>) {
    let better = match best {
        None => true,
        Some((w, p)) => path.len() > p.len() || (path.len() == p.len() && width < *w),
    };
    if better {
        *best = Some((width, path.to_vec()));
    }
}

/// The label an array element gets in a path: its `name`, the default link
/// name `a--b`, or `[index]`.
pub(crate) fn element_label(name: Option<&str>, a_b: Option<(&str, &str)>, index: usize) -> String {
    match (name, a_b) {
        (Some(n), _) => n.to_string(),
        (None, Some((a, b))) => format!("{a}--{b}"),
        (None, None) => format!("[{index}]"),
    }
}

fn table_label(t: &toml_edit::Table, index: usize) -> String {
    let s = |k: &str| t.get(k).and_then(|i| i.as_str());
    element_label(s("name"), s("a").zip(s("b")), index)
}

fn inline_label(t: &toml_edit::InlineTable, index: usize) -> String {
    let s = |k: &str| t.get(k).and_then(|v| v.as_str());
    element_label(s("name"), s("a").zip(s("b")), index)
}

fn walk_table(
    t: &toml_edit::Table,
    target: &Range<usize>,
    path: &mut Vec<String>,
    best: &mut Option<(usize, Vec<String>)>,
) {
    if let Some(w) = covers(t.span(), target) {
        consider(path, w, best);
    }
    for (k, item) in t.iter() {
        path.push(k.to_string());
        if let Some((key, _)) = t.get_key_value(k) {
            if let Some(w) = covers(key.span(), target) {
                consider(path, w, best);
            }
        }
        walk_item(item, target, path, best);
        path.pop();
    }
}

fn walk_item(
    item: &toml_edit::Item,
    target: &Range<usize>,
    path: &mut Vec<String>,
    best: &mut Option<(usize, Vec<String>)>,
) {
    match item {
        toml_edit::Item::Table(t) => walk_table(t, target, path, best),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(table_label(t, i));
                walk_table(t, target, path, best);
                path.pop();
            }
        }
        toml_edit::Item::Value(v) => walk_value(v, target, path, best),
        toml_edit::Item::None => {}
    }
}

fn walk_value(
    v: &toml_edit::Value,
    target: &Range<usize>,
    path: &mut Vec<String>,
    best: &mut Option<(usize, Vec<String>)>,
) {
    let Some(w) = covers(v.span(), target) else {
        return;
    };
    consider(path, w, best);
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, val) in t.iter() {
                path.push(k.to_string());
                if let Some((key, _)) = t.get_key_value(k) {
                    if let Some(w) = covers(key.span(), target) {
                        consider(path, w, best);
                    }
                }
                walk_value(val, target, path, best);
                path.pop();
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                let label = match val {
                    toml_edit::Value::InlineTable(t) => inline_label(t, i),
                    _ => format!("[{i}]"),
                };
                path.push(label);
                walk_value(val, target, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_of_path_finds_keys_elements_and_the_nearest_ancestor() {
        let text = "name = \"x\"\ndrain = \"5 s\"\n[protocols.coap]\nleisure = \"1 s\"\n[[flows]]\nname = \"a\"\n[[flows]]\nname = \"b\"\ninterval = \"2 s\"\n";
        let at = |p: &str| span_of_path(text, p).map(|s| LineIndex::new(text).line_col(s.start));
        assert_eq!(at("drain"), Some((2, 9)));
        assert_eq!(at("protocols.coap.leisure"), Some((4, 11)));
        assert_eq!(at("flows.b"), Some((8, 8)));
        assert_eq!(at("flows.b.interval"), Some((9, 12)));
        // a default (no `interval` in `a`): the element's name
        assert_eq!(at("flows.a.interval"), Some((6, 8)));
        // unknown element: the array's key
        assert!(at("flows.zzz").is_some());
        assert_eq!(at("nothing.here"), None);
        let w = Warning::at("f.toml", text, Some("flows.b"), "hm");
        assert_eq!(w.to_string(), "f.toml:8:8: warning: hm");
        let w = Warning::at("f.toml", text, None, "hm");
        assert_eq!(w.to_string(), "f.toml: warning: hm");
    }

    #[test]
    fn line_col_counts_from_one() {
        let idx = LineIndex::new("ab\ncdé\nx");
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(3), (2, 1));
        assert_eq!(idx.line_col(7), (2, 4));
        assert_eq!(idx.line_col(8), (3, 1));
    }

    #[test]
    fn display_omits_missing_parts() {
        let mut e = ScenarioError::file_only("a.toml", "boom");
        assert_eq!(e.to_string(), "a.toml: boom");
        e.line = Some(3);
        e.column = Some(7);
        e.field = Some("links.x.mtu".into());
        assert_eq!(e.to_string(), "a.toml:3:7: field `links.x.mtu`: boom");
    }

    #[test]
    fn path_names_array_elements() {
        let text = "seed = 1\n[[links]]\na = \"r\"\nb = \"c\"\nloss = { model = \"bernoulli\", p = 0.1 }\n";
        let off = text.find("0.1").unwrap_or(0);
        assert_eq!(
            field_path_at(text, off..off + 3).as_deref(),
            Some("links.r--c.loss.p")
        );
        assert_eq!(field_path_at(text, 0..4).as_deref(), Some("seed"));
        assert_eq!(field_path_at(text, 0..text.len()).as_deref(), Some(""));
    }
}
