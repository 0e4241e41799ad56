//! `[report]`: how charts and report.html present a scenario's results.
//!
//! ```toml
//! [report]
//! labels = { "links.backhaul.loss.p" = "Backhaul loss probability" }
//! ```
//!
//! `labels` names swept `--set` paths in words (with their unit) on chart
//! axes and legends, over the built-in table (`report::charts::axis_label`).
//! `demonstrates = ["topic-practice"]` says the scenario shows bad topic
//! practice on purpose: its topic-practice warnings are not printed.
//! `allow = ["client-id"]` silences the named kinds of topic-practice
//! warning only, for a scenario that departs from that one practice for a
//! reason its comments state.

use super::check::Ctx;
use super::schema::S;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[report]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportSchema {
    #[serde(default)]
    pub labels: BTreeMap<String, S<String>>,
    /// Bad practice the scenario shows on purpose (silences its warnings).
    pub demonstrates: Option<S<Vec<S<String>>>>,
    /// Kinds of topic-practice warning accepted on purpose.
    pub allow: Option<S<Vec<S<String>>>>,
}

/// `[report]`, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSpec {
    /// Axis titles by `--set` path.
    pub labels: BTreeMap<String, String>,
    /// `demonstrates = ["topic-practice"]`: the scenario shows that bad
    /// practice on purpose, so its warnings are not printed
    /// (`scenario::topic_practice`).
    pub demonstrates: Vec<String>,
    /// `allow = ["client-id", …]`: kinds of topic-practice warning
    /// (`scenario::topic_practice::KINDS`) not printed.
    pub allow: Vec<String>,
}

/// Longest label accepted (it must fit beside a chart's axis).
const MAX_LABEL: usize = 80;

pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    r: &S<ReportSchema>,
) -> Result<ReportSpec, super::ScenarioError> {
    let mut labels = BTreeMap::new();
    for (path, label) in &r.get_ref().labels {
        let field = format!("report.labels.\"{path}\"");
        if path.trim().is_empty() {
            return Err(ctx.err_at(
                label,
                &field,
                "empty path: expected a `--set` path such as \"links.backhaul.loss.p\"",
            ));
        }
        let text = label.get_ref().trim();
        if text.is_empty() {
            return Err(ctx.err_at(
                label,
                &field,
                "empty label: expected words such as \"Backhaul loss (%)\"",
            ));
        }
        if text.chars().count() > MAX_LABEL || text.contains(['\n', '\r']) {
            return Err(ctx.err_at(
                label,
                &field,
                format!("a label is one line of at most {MAX_LABEL} characters"),
            ));
        }
        labels.insert(path.trim().to_string(), text.to_string());
    }
    let mut demonstrates = Vec::new();
    for (i, d) in r
        .get_ref()
        .demonstrates
        .iter()
        .flat_map(|v| v.get_ref())
        .enumerate()
    {
        let known = [super::topic_practice::DEMONSTRATES];
        if !known.contains(&d.get_ref().as_str()) {
            return Err(ctx.err_at(
                d,
                &format!("report.demonstrates[{i}]"),
                format!(
                    "unknown practice \"{}\": expected one of {known:?}",
                    d.get_ref()
                ),
            ));
        }
        demonstrates.push(d.get_ref().clone());
    }
    let mut allow = Vec::new();
    for (i, d) in r
        .get_ref()
        .allow
        .iter()
        .flat_map(|v| v.get_ref())
        .enumerate()
    {
        let known = super::topic_practice::KINDS;
        if !known.contains(&d.get_ref().as_str()) {
            return Err(ctx.err_at(
                d,
                &format!("report.allow[{i}]"),
                format!(
                    "unknown topic-practice warning \"{}\": expected one of {known:?}",
                    d.get_ref()
                ),
            ));
        }
        allow.push(d.get_ref().clone());
    }
    Ok(ReportSpec {
        labels,
        demonstrates,
        allow,
    })
}
