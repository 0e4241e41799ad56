//! `--set path=value` overrides, applied to the TOML document with
//! `toml_edit` before deserialising, so comments, formatting and (mostly)
//! line numbers survive and errors still point into the file.
//!
//! Paths are dot-separated keys; an array of tables (`links`, `flows`,
//! `groups`, …) is indexed by an element's `name` (links also by their
//! default name `a--b`). Missing intermediate tables are created. The value
//! is parsed as a TOML value when it is one (`7`, `0.2`, `true`, `"x"`,
//! `{ model = "bernoulli", p = 0.1 }`), else taken as a bare string (`mqtt`,
//! `10 s`). Setting a `loss.model` removes the keys that do not apply to the
//! new model (see `loss::MODEL_KEYS`).

use super::check::list;
use super::error::{element_label, LineIndex, ScenarioError};
use super::loss::MODEL_KEYS;
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// Apply `overrides` (each `path=value`) in order to the TOML `text`.
/// Errors carry `file = "--set"` (callers replace it with the scenario's
/// name) and the path as `field`.
pub fn apply_overrides(text: &str, overrides: &[String]) -> Result<String, ScenarioError> {
    if overrides.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = match e.span() {
            Some(s) => {
                let (l, c) = LineIndex::new(text).line_col(s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ScenarioError {
            file: "--set".into(),
            line,
            column,
            field: None,
            message: e.message().trim().to_string(),
        }
    })?;
    for ov in overrides {
        apply_one(&mut doc, ov)?;
    }
    Ok(doc.to_string())
}

/// An override split into its path segments and value.
struct Override<'a> {
    raw: &'a str,
    path: &'a str,
    value: Value,
}

impl Override<'_> {
    fn err(&self, at: &[&str], message: impl std::fmt::Display) -> ScenarioError {
        ScenarioError {
            file: "--set".into(),
            line: None,
            column: None,
            field: Some(if at.is_empty() {
                self.path.to_string()
            } else {
                at.join(".")
            }),
            message: format!("in `--set {}`: {message}", self.raw),
        }
    }
}

fn apply_one(doc: &mut DocumentMut, raw: &str) -> Result<(), ScenarioError> {
    let Some((path, value)) = raw.split_once('=') else {
        return Err(ScenarioError {
            file: "--set".into(),
            line: None,
            column: None,
            field: None,
            message: format!("malformed override `{raw}`: expected `path=value` (e.g. `links.backhaul.loss.p=0.2`)"),
        });
    };
    let path = path.trim();
    let value = parse_value(value.trim());
    let ov = Override { raw, path, value };
    let segs: Vec<&str> = path.split('.').collect();
    if let Some(i) = segs.iter().position(|s| s.trim().is_empty()) {
        return Err(ov.err(&segs[..=i], "empty path segment"));
    }
    if let Some(redirected) = member_link(doc, &segs) {
        let segs: Vec<&str> = redirected.iter().map(String::as_str).collect();
        return set_table(doc.as_table_mut(), &segs, 0, &ov);
    }
    set_table(doc.as_table_mut(), &segs, 0, &ov)
}

/// `links.<member>--<to>.<field…>` where no `[[links]]` element has that
/// name but `<member>` is a member of a group whose `link` goes to `<to>`:
/// the path of that member's own link settings,
/// `groups.<group>.link.members.<member>.<field…>` (scenarios/README.md
/// "[[groups]]"); `None` otherwise.
fn member_link(doc: &DocumentMut, segs: &[&str]) -> Option<Vec<String>> {
    let [first, name, rest @ ..] = segs else {
        return None;
    };
    if *first != "links" || rest.is_empty() {
        return None;
    }
    let (member, to) = name.split_once("--")?;
    if let Some(links) = doc.get("links").and_then(Item::as_array_of_tables) {
        let named = links.iter().any(|t| {
            let s = |f: &str| t.get(f).and_then(Item::as_str);
            s("name") == Some(name) || s("a").zip(s("b")) == Some((member, to))
        });
        if named {
            return None;
        }
    }
    let groups = doc.get("groups")?.as_array_of_tables()?;
    for g in groups.iter() {
        let Some(template) = g.get("name").and_then(Item::as_str) else {
            continue;
        };
        let link_to = g
            .get("link")
            .and_then(|l| l.get("to"))
            .and_then(|v| v.as_str());
        if link_to != Some(to) {
            continue;
        }
        let Some((pre, post)) = template.split_once("{i}") else {
            continue;
        };
        let Some(k) = member
            .strip_prefix(pre)
            .and_then(|m| m.strip_suffix(post))
            .and_then(|k| k.parse::<u64>().ok())
        else {
            continue;
        };
        let int = |f: &str, d: i64| g.get(f).and_then(Item::as_integer).unwrap_or(d);
        let (start, count) = (int("start_index", 1), int("count", 0));
        if (k as i64) < start || (k as i64) >= start + count {
            continue;
        }
        let mut out: Vec<String> = ["groups", template, "link", "members", member]
            .iter()
            .map(|s| s.to_string())
            .collect();
        out.extend(rest.iter().map(|s| s.to_string()));
        return Some(out);
    }
    None
}

/// A TOML value if `s` is one, else `s` as a string.
fn parse_value(s: &str) -> Value {
    s.parse::<Value>().unwrap_or_else(|_| Value::from(s))
}

/// Keep the comments/whitespace around a replaced value.
fn with_decor(mut new: Value, old: Option<&Value>) -> Value {
    if let Some(old) = old {
        *new.decor_mut() = old.decor().clone();
    }
    new
}

/// The keys a loss table may keep under `model`, or `None` if the model is
/// unknown (then nothing is removed and the loader reports the model).
fn model_keys(value: &Value) -> Option<&'static [&'static str]> {
    let m = value.as_str()?;
    MODEL_KEYS.iter().find(|(n, _)| *n == m).map(|(_, k)| *k)
}

fn is_loss_model(segs: &[&str], i: usize) -> bool {
    segs[i] == "model" && i > 0 && segs[i - 1] == "loss"
}

/// `loss.p` set on a loss table without a `model` (a link that had no
/// loss): the table becomes `{ model = "bernoulli", p }`, what `p` alone
/// means.
fn bernoulli_by_default(segs: &[&str], i: usize) -> bool {
    segs[i] == "p" && i > 0 && segs[i - 1] == "loss"
}

fn set_table(
    t: &mut Table,
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<(), ScenarioError> {
    let key = segs[i];
    if i + 1 == segs.len() {
        let new = with_decor(ov.value.clone(), t.get(key).and_then(Item::as_value));
        if is_loss_model(segs, i) {
            if let Some(keep) = model_keys(&new) {
                t.retain(|k, _| k == "model" || keep.contains(&k));
            }
        }
        if bernoulli_by_default(segs, i) && !t.contains_key("model") {
            t.insert("model", Item::Value(Value::from("bernoulli")));
        }
        t.insert(key, Item::Value(new));
        return Ok(());
    }
    if !t.contains_key(key) {
        let mut nt = Table::new();
        nt.set_implicit(true);
        t.insert(key, Item::Table(nt));
    }
    match t.get_mut(key) {
        Some(item) => set_item(item, segs, i + 1, ov),
        None => Err(ov.err(&segs[..=i], "cannot create this table")),
    }
}

fn set_item(
    item: &mut Item,
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<(), ScenarioError> {
    match item {
        Item::Table(t) => set_table(t, segs, i, ov),
        Item::ArrayOfTables(a) => {
            let idx = select_table(a, segs, i, ov)?;
            if i + 1 == segs.len() {
                return Err(ov.err(
                    &segs[..=i],
                    "a path must name a field inside the element, not the whole element",
                ));
            }
            match a.get_mut(idx) {
                Some(t) => set_table(t, segs, i + 1, ov),
                None => Err(ov.err(&segs[..=i], "element vanished")),
            }
        }
        Item::Value(v) => set_value(v, segs, i, ov),
        Item::None => Err(ov.err(&segs[..i], "not a table")),
    }
}

fn select_table(
    a: &ArrayOfTables,
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<usize, ScenarioError> {
    let labels: Vec<String> = a
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let s = |f: &str| t.get(f).and_then(Item::as_str);
            element_label(s("name"), s("a").zip(s("b")), k)
        })
        .collect();
    let defaults: Vec<Option<String>> = a
        .iter()
        .map(|t| {
            let s = |f: &str| t.get(f).and_then(Item::as_str);
            s("a").zip(s("b")).map(|(x, y)| format!("{x}--{y}"))
        })
        .collect();
    pick(&labels, &defaults, segs, i, ov)
}

/// The element whose name is `segs[i]` (or, failing that, whose default
/// link name `a--b` is).
fn pick(
    labels: &[String],
    defaults: &[Option<String>],
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<usize, ScenarioError> {
    let want = segs[i];
    labels
        .iter()
        .position(|l| l == want)
        .or_else(|| defaults.iter().position(|d| d.as_deref() == Some(want)))
        .ok_or_else(|| {
            // `links.<member>--<to>` names one group member's link only
            // when the member exists and its group links to `<to>`
            let hint = match (segs[..i].join(".").as_str(), want.split_once("--")) {
                ("links", Some((member, to))) => format!(
                    " (nor is \"{member}\" a member of a group whose `link` goes to \"{to}\": \
                     `links.<member>--<to>.{0}` sets one member's link, \
                     `groups.<group>.link.{0}`, e.g. groups.sensor-{{i}}.link.loss.p, every member's)",
                    segs[i + 1..].join(".")
                ),
                _ => String::new(),
            };
            ov.err(
                &segs[..=i],
                format!(
                    "no element named \"{want}\" in `{}`; known: {}{}{hint}",
                    segs[..i].join("."),
                    list(labels),
                    super::error::did_you_mean(want, labels.iter().map(String::as_str))
                ),
            )
        })
}

fn set_value(
    v: &mut Value,
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<(), ScenarioError> {
    match v {
        Value::InlineTable(t) => set_inline(t, segs, i, ov),
        Value::Array(arr) => {
            let tables: Vec<Option<&InlineTable>> =
                arr.iter().map(Value::as_inline_table).collect();
            let labels: Vec<String> = tables
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let s = |f: &str| t.and_then(|t| t.get(f)).and_then(Value::as_str);
                    element_label(s("name"), s("a").zip(s("b")), k)
                })
                .collect();
            let defaults: Vec<Option<String>> = tables
                .iter()
                .map(|t| {
                    let s = |f: &str| t.and_then(|t| t.get(f)).and_then(Value::as_str);
                    s("a").zip(s("b")).map(|(x, y)| format!("{x}--{y}"))
                })
                .collect();
            let idx = pick(&labels, &defaults, segs, i, ov)?;
            if i + 1 == segs.len() {
                return Err(ov.err(
                    &segs[..=i],
                    "a path must name a field inside the element, not the whole element",
                ));
            }
            match arr.get_mut(idx) {
                Some(Value::InlineTable(t)) => set_inline(t, segs, i + 1, ov),
                _ => Err(ov.err(&segs[..=i], "this element is not a table")),
            }
        }
        other => Err(ov.err(
            &segs[..i],
            format!(
                "is a {}, not a table: cannot set `{}` inside it",
                other.type_name(),
                segs[i]
            ),
        )),
    }
}

fn set_inline(
    t: &mut InlineTable,
    segs: &[&str],
    i: usize,
    ov: &Override<'_>,
) -> Result<(), ScenarioError> {
    let key = segs[i];
    if i + 1 == segs.len() {
        let new = with_decor(ov.value.clone(), t.get(key));
        if is_loss_model(segs, i) {
            if let Some(keep) = model_keys(&new) {
                t.retain(|k, _| k == "model" || keep.contains(&k));
            }
        }
        if bernoulli_by_default(segs, i) && !t.contains_key("model") {
            t.insert("model", Value::from("bernoulli"));
        }
        t.insert(key, new);
        return Ok(());
    }
    if !t.contains_key(key) {
        t.insert(key, Value::InlineTable(InlineTable::new()));
    }
    match t.get_mut(key) {
        Some(v) => set_value(v, segs, i + 1, ov),
        None => Err(ov.err(&segs[..=i], "cannot create this table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, ovs: &[&str]) -> Result<String, ScenarioError> {
        let ovs: Vec<String> = ovs.iter().map(|s| s.to_string()).collect();
        apply_overrides(text, &ovs)
    }

    #[test]
    fn values_parse_as_toml_or_bare_strings() {
        let out = set(
            "seed = 1 # keep\n",
            &["seed=7", "duration=10 s", "x=\"q\"", "b=true"],
        )
        .unwrap_or_default();
        assert!(out.contains("seed = 7 # keep"), "{out}");
        assert!(out.contains("duration = \"10 s\""), "{out}");
        assert!(out.contains("x = \"q\""), "{out}");
        assert!(out.contains("b = true"), "{out}");
    }

    #[test]
    fn creates_missing_tables() {
        let out = set("name = \"x\"\n", &["protocols.coap.max_retransmit=2"]).unwrap_or_default();
        let v: toml::Table = toml::from_str(&out).unwrap_or_default();
        let got = v
            .get("protocols")
            .and_then(|p| p.get("coap"))
            .and_then(|c| c.get("max_retransmit"));
        assert_eq!(got.and_then(toml::Value::as_integer), Some(2), "{out}");
    }

    /// `--set links.X.loss.p=…` on a link without loss, documented in
    /// `qossim run --help`, makes it a Bernoulli channel; an existing
    /// model is kept.
    #[test]
    fn loss_p_on_a_lossless_link_is_bernoulli() {
        let text = "[[links]]\nname = \"l\"\n[[groups]]\nname = \"s-{i}\"\nlink = { to = \"r\" }\n";
        let out = set(
            text,
            &["links.l.loss.p=0.2", "groups.s-{i}.link.loss.p=0.3"],
        )
        .unwrap_or_default();
        let v: toml::Table = toml::from_str(&out).unwrap_or_default();
        let loss = |t: Option<&toml::Value>| {
            let l = t.and_then(|t| t.get("loss"));
            (
                l.and_then(|l| l.get("model"))
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                l.and_then(|l| l.get("p")).and_then(toml::Value::as_float),
            )
        };
        let link = v.get("links").and_then(|a| a.get(0));
        assert_eq!(loss(link), (Some("bernoulli".into()), Some(0.2)), "{out}");
        let g = v
            .get("groups")
            .and_then(|a| a.get(0))
            .and_then(|g| g.get("link"));
        assert_eq!(loss(g), (Some("bernoulli".into()), Some(0.3)), "{out}");
        let ge = "[[links]]\nname = \"l\"\nloss = { model = \"gilbert_elliott\", p = 0.1 }\n";
        let out = set(ge, &["links.l.loss.p=0.2"]).unwrap_or_default();
        assert!(
            out.contains("gilbert_elliott") && !out.contains("bernoulli"),
            "{out}"
        );
    }

    #[test]
    fn a_group_members_link_points_to_the_group() {
        let text = "[[links]]\nname = \"l\"\n";
        let e = set(text, &["links.sensor-1--router.loss.p=0.3"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("groups.<group>.link.loss.p"), "{e}");
        assert!(
            e.contains("`links.<member>--<to>.loss.p` sets one member's link"),
            "{e}"
        );
    }

    #[test]
    fn a_members_link_is_set_in_its_group() {
        let text = "[[groups]]\nname = \"sensor-{i}\"\ncount = 3\nlink = { to = \"router\", rate = \"1 Mbit/s\" }\n";
        let out = set(text, &["links.sensor-2--router.loss.p=0.3"]).expect("set");
        assert!(
            out.contains("members = { sensor-2 = { loss = { p = 0.3, model = \"bernoulli\" } } }")
                || out.contains(
                    "members = { sensor-2 = { loss = { model = \"bernoulli\", p = 0.3 } } }"
                ),
            "{out}"
        );
        // outside the group's indices, or to another node: not a member's
        // link (left to `links`, where the loader reports it)
        for bad in [
            "links.sensor-4--router.loss.p=0.3",
            "links.sensor-0--router.loss.p=0.3",
            "links.sensor-1--gw.loss.p=0.3",
        ] {
            let out = set(text, &[bad]).unwrap_or_default();
            assert!(!out.contains("members"), "{bad}: {out}");
        }
    }

    #[test]
    fn model_switch_prunes_foreign_keys() {
        let text = "[[links]]\nname = \"l\"\nloss = { model = \"gilbert_elliott\", mean_loss = 0.05, burst = 4.0 }\n";
        let out = set(
            text,
            &["links.l.loss.model=bernoulli", "links.l.loss.p=0.2"],
        )
        .unwrap_or_default();
        assert!(out.contains("model = \"bernoulli\""), "{out}");
        assert!(out.contains("p = 0.2"), "{out}");
        assert!(
            !out.contains("burst") && !out.contains("mean_loss"),
            "{out}"
        );
    }

    #[test]
    fn bad_paths_name_segment_and_known_names() {
        let text = "[[links]]\nname = \"backhaul\"\na = \"r\"\nb = \"c\"\n";
        let e = set(text, &["links.nope.mtu=100"]).expect_err("unknown element");
        assert_eq!(e.field.as_deref(), Some("links.nope"));
        assert!(e.message.contains("backhaul"), "{e}");
        let e = set(text, &["seed"]).expect_err("malformed");
        assert!(e.message.contains("malformed override `seed`"), "{e}");
        let e = set(text, &["links.backhaul.a.x=1"]).expect_err("scalar");
        assert!(e.message.contains("not a table"), "{e}");
        assert!(set(text, &["links.r--c.mtu=100"]).is_ok());
    }
}
