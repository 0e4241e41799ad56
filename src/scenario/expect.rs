//! `[[expect]]` → [`Expectation`]s: assertions on a run's `runs.csv` and
//! `summary.csv` columns that `qossim run` prints at the end (a pass/FAIL
//! line each, `--strict` turns a failure into exit 1) and `qossim test`
//! checks (scenarios/README.md "Expectations").
//!
//! ```toml
//! [[expect]]
//! name = "CON delivers everything"   # optional label
//! metric = "delivery_ratio"          # a runs.csv / summary.csv column
//! op = ">="                          # == != < <= > >=
//! value = 0.99
//! flow = "con"                       # optional selectors: flow, protocol, reliability
//! tolerance = 0.0                    # optional, == and != only
//! seeds = 5                          # optional: seeds seed..seed+4, a run each
//! ```
//!
//! The metric is checked here against the columns the writers use
//! (`metrics::summary`), so a typo is a `qossim check` error naming the
//! close names.

use super::check::{list, Ctx};
use super::error::ScenarioError;
use super::schema::S;
use crate::scenario::columns::{METRIC_COLUMNS, RUN_KEY_COLUMNS};
use crate::scenario::model::FlowSpec;
use serde::Deserialize;

/// Most seeds one expectation may ask for.
pub const MAX_SEEDS: u64 = 10_000;

/// The spec-oracle monitors' runs.csv column (docs/checks.md): an
/// expectation on it turns the monitors on for the run.
pub use crate::scenario::columns::VIOLATIONS;

/// One `[[expect]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectSchema {
    pub name: Option<S<String>>,
    pub metric: S<String>,
    pub op: S<String>,
    pub value: S<f64>,
    pub flow: Option<S<String>>,
    pub protocol: Option<S<String>>,
    pub reliability: Option<S<String>>,
    pub tolerance: Option<S<f64>>,
    pub seeds: Option<S<u64>>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

const OPS: &[(&str, Op)] = &[
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<", Op::Lt),
    ("<=", Op::Le),
    (">", Op::Gt),
    (">=", Op::Ge),
];

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// Which file a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A `runs.csv` column: checked on every selected row of every run.
    Runs,
    /// A column only `summary.csv` has (`runs`, `<metric>_ci95`): checked
    /// once per selected flow over all the expectation's runs.
    Summary,
}

/// A validated `[[expect]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The `name` field, if given.
    pub name: Option<String>,
    /// The column, as written (`delivery_ratio`, `latency_ms_p99_ci95`, …).
    pub metric: String,
    pub source: Source,
    pub op: Op,
    pub value: f64,
    /// Absolute; 0 unless given (`==` and `!=` only).
    pub tolerance: f64,
    /// The flows it is about (indices into `Scenario::flows`, in order):
    /// every flow matching the selectors.
    pub flows: Vec<usize>,
    /// `seeds = N`: runs with seeds seed..seed+N−1; `None`: the run itself.
    pub seeds: Option<u64>,
}

impl Expectation {
    /// `name`, or `metric op value` (with `± tolerance` when one is given).
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => {
                let mut s = format!("{} {} {}", self.metric, self.op.as_str(), self.value);
                if self.tolerance > 0.0 {
                    s.push_str(&format!(" ± {}", self.tolerance));
                }
                s
            }
        }
    }

    /// Whether `measured` satisfies the expectation: `==` holds when
    /// |measured − value| ≤ tolerance, `!=` when it is larger; the others
    /// compare exactly. An undefined (empty) cell satisfies nothing.
    pub fn holds(&self, measured: Option<f64>) -> bool {
        let Some(m) = measured else { return false };
        if !m.is_finite() {
            return false;
        }
        let v = self.value;
        match self.op {
            Op::Eq => (m - v).abs() <= self.tolerance,
            Op::Ne => (m - v).abs() > self.tolerance,
            Op::Lt => m < v,
            Op::Le => m <= v,
            Op::Gt => m > v,
            Op::Ge => m >= v,
        }
    }
}

/// The numeric runs.csv columns an expectation may name: the numeric key
/// columns and every metric column.
pub fn runs_columns() -> Vec<&'static str> {
    ["run_id", "seed", "replication"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .collect()
}

/// Every column name an expectation may use, for messages and suggestions:
/// the runs.csv ones, then summary.csv's `runs` and `<metric>_ci95`.
pub fn known_metrics() -> Vec<String> {
    let mut v: Vec<String> = runs_columns().into_iter().map(String::from).collect();
    v.push("runs".into());
    v.extend(METRIC_COLUMNS.iter().map(|m| format!("{m}_ci95")));
    v
}

/// Where `metric` comes from, or why it cannot be used.
fn classify(metric: &str) -> Result<Source, String> {
    if runs_columns().contains(&metric) {
        return Ok(Source::Runs);
    }
    if metric == "runs"
        || metric
            .strip_suffix("_ci95")
            .is_some_and(|m| METRIC_COLUMNS.contains(&m))
    {
        return Ok(Source::Summary);
    }
    if RUN_KEY_COLUMNS.contains(&metric) {
        return Err(format!(
            "`{metric}` is a text column; select rows with the `flow`, `protocol` and `reliability` fields instead"
        ));
    }
    let close = suggestions(metric, &known_metrics());
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            list(close.iter().map(|c| format!("`{c}`")))
        )
    };
    Err(format!(
        "unknown metric `{metric}`{hint} (any numeric runs.csv or summary.csv column: docs/metrics.md)"
    ))
}

/// Levenshtein distance (characters).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Up to three names close to `word`: within an edit distance of a third
/// of its length (at least 2), or containing it; nearest first, then in
/// column order.
pub fn suggestions(word: &str, names: &[String]) -> Vec<String> {
    let limit = (word.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, usize, &String)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let d = distance(word, n);
            if d <= limit {
                Some((d, i, n))
            } else if word.len() >= 4 && n.contains(word) {
                Some((limit + 1, i, n))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, n)| n.clone())
        .collect()
}

/// Resolve every `[[expect]]` against the scenario's flows.
pub(crate) fn resolve_all(
    ctx: &Ctx<'_>,
    expects: &[S<ExpectSchema>],
    flows: &[FlowSpec],
) -> Result<Vec<Expectation>, ScenarioError> {
    let mut out = Vec::with_capacity(expects.len());
    for (i, ex) in expects.iter().enumerate() {
        let e = ex.get_ref();
        let f = |k: &str| format!("expect[{i}].{k}");
        let name = match &e.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(ctx.err_at(n, &f("name"), "the name cannot be empty"));
            }
            Some(n) => Some(n.get_ref().clone()),
            None => None,
        };
        let metric = e.metric.get_ref().clone();
        let source = classify(&metric).map_err(|m| ctx.err_at(&e.metric, &f("metric"), m))?;
        let op = ctx.choice(&e.op, &f("op"), OPS)?;
        let value = ctx.finite(&e.value, &f("value"))?;
        let tolerance = match &e.tolerance {
            Some(t) => {
                let x = ctx.finite(t, &f("tolerance"))?;
                if x < 0.0 {
                    return Err(ctx.err_at(
                        t,
                        &f("tolerance"),
                        format!("{x} is negative: a tolerance is an absolute distance ≥ 0"),
                    ));
                }
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(ctx.err_at(
                        t,
                        &f("tolerance"),
                        format!(
                            "a tolerance applies to `==` and `!=` only, not to `{}` (move `value` instead)",
                            op.as_str()
                        ),
                    ));
                }
                x
            }
            None => 0.0,
        };
        let seeds = match &e.seeds {
            Some(s) => Some(ctx.int_in(s, &f("seeds"), 1, MAX_SEEDS)?),
            None => None,
        };
        if source == Source::Summary && metric != "runs" && seeds.unwrap_or(1) < 2 {
            let at = e.seeds.as_ref().map_or(e.metric.span(), |s| s.span());
            return Err(ctx.err(
                at,
                &f("seeds"),
                format!("`{metric}` is a 95 % half-width over runs: it needs `seeds` ≥ 2 (one run has none)"),
            ));
        }
        // selectors: each must name something the scenario has
        let pick = |v: &Option<S<String>>,
                    key: &str,
                    of: &dyn Fn(&FlowSpec) -> String|
         -> Result<Option<String>, ScenarioError> {
            let Some(v) = v else { return Ok(None) };
            // distinct values, in flow order
            let mut have: Vec<String> = Vec::new();
            for fl in flows {
                let x = of(fl);
                if !have.contains(&x) {
                    have.push(x);
                }
            }
            if !have.contains(v.get_ref()) {
                return Err(ctx.err_at(
                    v,
                    &f(key),
                    format!(
                        "no flow of this scenario has {key} \"{}\"; it has: {}",
                        v.get_ref(),
                        list(&have)
                    ),
                ));
            }
            Ok(Some(v.get_ref().clone()))
        };
        let flow = pick(&e.flow, "flow", &|fl| fl.name.clone())?;
        let protocol = pick(&e.protocol, "protocol", &|fl| {
            fl.protocol.as_str().to_string()
        })?;
        let reliability = pick(&e.reliability, "reliability", &|fl| {
            fl.reliability.as_str().to_string()
        })?;
        let selected: Vec<usize> = flows
            .iter()
            .enumerate()
            .filter(|(_, fl)| {
                flow.as_ref().is_none_or(|n| *n == fl.name)
                    && protocol.as_ref().is_none_or(|p| p == fl.protocol.as_str())
                    && reliability
                        .as_ref()
                        .is_none_or(|r| r == fl.reliability.as_str())
            })
            .map(|(k, _)| k)
            .collect();
        if selected.is_empty() {
            return Err(ctx.err_at(
                ex,
                &format!("expect[{i}]"),
                if flows.is_empty() {
                    "the scenario has no flow to check".to_string()
                } else {
                    "no flow matches all of `flow`, `protocol` and `reliability` together"
                        .to_string()
                },
            ));
        }
        out.push(Expectation {
            name,
            metric,
            source,
            op,
            value,
            tolerance,
            flows: selected,
            seeds,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos() {
        let names = known_metrics();
        assert_eq!(
            suggestions("delivery_ration", &names)
                .first()
                .map(String::as_str),
            Some("delivery_ratio")
        );
        assert!(suggestions("zzzzzzzzzzzzzz", &names).is_empty());
    }

    #[test]
    fn classify_sorts_columns() {
        assert_eq!(classify("delivered"), Ok(Source::Runs));
        assert_eq!(classify("seed"), Ok(Source::Runs));
        assert_eq!(classify("delivered_ci95"), Ok(Source::Summary));
        assert_eq!(classify("runs"), Ok(Source::Summary));
        assert_eq!(classify("violations"), Ok(Source::Runs));
        assert!(classify("flow").unwrap_err().contains("text column"));
    }

    #[test]
    fn tolerance_widens_equality_only() {
        let mut e = Expectation {
            name: None,
            metric: "delivered".into(),
            source: Source::Runs,
            op: Op::Eq,
            value: 10.0,
            tolerance: 0.5,
            flows: vec![0],
            seeds: None,
        };
        assert!(e.holds(Some(10.4)));
        assert!(!e.holds(Some(10.6)));
        assert!(!e.holds(None));
        e.op = Op::Ne;
        assert!(!e.holds(Some(10.4)));
        assert!(e.holds(Some(10.6)));
        e.op = Op::Lt;
        assert!(!e.holds(Some(10.0)));
        e.op = Op::Le;
        assert!(e.holds(Some(10.0)));
    }
}
