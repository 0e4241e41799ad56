//! Validation helpers shared by the loader: each turns a `Spanned` schema
//! value into a checked model value or a `ScenarioError` that carries the
//! file, line, column and field path.

use super::error::{LineIndex, ScenarioError};
use super::schema::S;
use super::units;
use crate::sim::SimDuration;
use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

/// Longest duration a scenario may ask for (durations, drains, intervals):
/// 30 days, far below the 584 years a u64 of nanoseconds lasts.
pub(crate) const MAX_DURATION: SimDuration = SimDuration::from_secs(30 * 24 * 3600);

/// Where errors are reported: the scenario's name for messages, its text for
/// line numbers, and its directory for relative trace-file paths.
pub struct Ctx<'a> {
    /// File name used in messages.
    pub origin: &'a str,
    /// Line index of the (resolved) scenario text.
    pub index: LineIndex<'a>,
    /// Directory relative paths are resolved against.
    pub base_dir: &'a Path,
    /// Protocol plug-ins registered beside the built-in protocols.
    pub protocols: &'a crate::scenario::model::ProtocolTable,
}

impl<'a> Ctx<'a> {
    /// An error at `span` in field `field`.
    pub fn err(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, col) = self.index.line_col(span.start);
        ScenarioError {
            file: self.origin.to_string(),
            line: Some(line),
            column: Some(col),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// An error at the span of `v`.
    pub fn err_at<T>(&self, v: &S<T>, field: &str, message: impl Into<String>) -> ScenarioError {
        self.err(v.span(), field, message)
    }

    /// A duration `≤ max`.
    pub fn duration(
        &self,
        v: &S<String>,
        field: &str,
        max: SimDuration,
    ) -> Result<SimDuration, ScenarioError> {
        let d = units::parse_duration(v.get_ref()).map_err(|m| self.err_at(v, field, m))?;
        if d > max {
            return Err(self.err_at(
                v,
                field,
                format!(
                    "duration {d} is too long: at most {max} ({})",
                    human_duration(max)
                ),
            ));
        }
        Ok(d)
    }

    /// An optional duration with a default.
    pub fn duration_or(
        &self,
        v: &Option<S<String>>,
        field: &str,
        default: SimDuration,
        max: SimDuration,
    ) -> Result<SimDuration, ScenarioError> {
        v.as_ref()
            .map_or(Ok(default), |v| self.duration(v, field, max))
    }

    /// A finite float.
    pub fn finite(&self, v: &S<f64>, field: &str) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if !x.is_finite() {
            return Err(self.err_at(v, field, format!("must be a finite number, got {x}")));
        }
        Ok(x)
    }

    /// A finite float in `[lo, hi]`.
    pub fn float_in(
        &self,
        v: &S<f64>,
        field: &str,
        lo: f64,
        hi: f64,
    ) -> Result<f64, ScenarioError> {
        let x = self.finite(v, field)?;
        if !(lo..=hi).contains(&x) {
            return Err(self.err_at(
                v,
                field,
                format!("{x} is out of range: must be in [{lo}, {hi}]"),
            ));
        }
        Ok(x)
    }

    /// A probability in `[0, 1]`.
    pub fn prob(&self, v: &S<f64>, field: &str) -> Result<f64, ScenarioError> {
        self.float_in(v, field, 0.0, 1.0)
    }

    /// An integer in `lo..=hi`.
    pub fn int_in(&self, v: &S<u64>, field: &str, lo: u64, hi: u64) -> Result<u64, ScenarioError> {
        let x = *v.get_ref();
        if !(lo..=hi).contains(&x) {
            return Err(self.err_at(
                v,
                field,
                format!("{x} is out of range: must be in {lo}..={hi}"),
            ));
        }
        Ok(x)
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(
        &self,
        v: &S<String>,
        field: &str,
        options: &[(&str, T)],
    ) -> Result<T, ScenarioError> {
        options
            .iter()
            .find(|(name, _)| *name == v.get_ref().as_str())
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                self.err_at(
                    v,
                    field,
                    format!(
                        "unknown value \"{}\", expected one of: {}{}",
                        v.get_ref(),
                        list(options.iter().map(|o| o.0)),
                        super::error::did_you_mean(v.get_ref(), options.iter().map(|o| o.0))
                    ),
                )
            })
    }
}

/// `a, b, c` (at most 8 names, then `… (N more)`).
pub(crate) fn list<I: IntoIterator<Item = D>, D: Display>(items: I) -> String {
    const SHOWN: usize = 8;
    let mut out = String::new();
    let mut n = 0usize;
    for item in items {
        if n < SHOWN {
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(&item.to_string());
        }
        n += 1;
    }
    if n > SHOWN {
        out.push_str(&format!(", … ({} more)", n - SHOWN));
    }
    if n == 0 {
        out.push_str("(none)");
    }
    out
}

/// `30 days` style rendering of a whole number of seconds, for limits.
fn human_duration(d: SimDuration) -> String {
    let s = d.as_nanos() / 1_000_000_000;
    if s.is_multiple_of(86_400) && s > 0 {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) && s > 0 {
        format!("{} h", s / 3600)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_suggests_the_closest_name_within_reach() {
        use super::super::error::{did_you_mean, edit_distance, with_suggestion};
        assert_eq!(edit_distance("clinet", "client"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("clinet", ["router", "server", "client"]),
            "; did you mean `client`?"
        );
        assert_eq!(did_you_mean("xyz", ["router", "client"]), "");
        // short words: one edit at most
        assert_eq!(did_you_mean("tpc", ["tcp", "udp"]), "");
        assert_eq!(did_you_mean("tcq", ["tcp", "udp"]), "; did you mean `tcp`?");
        let m = "unknown field `durration`, expected one of `name`, `duration`, `drain`";
        assert!(with_suggestion(m).ends_with("; did you mean `duration`?"));
        assert_eq!(with_suggestion("missing field `x`"), "missing field `x`");
    }

    #[test]
    fn list_truncates_long_lists() {
        assert_eq!(list(["a", "b"]), "a, b");
        assert_eq!(list(Vec::<String>::new()), "(none)");
        let many: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(list(&many), "0, 1, 2, 3, 4, 5, 6, 7, … (2 more)");
    }

    #[test]
    fn limits_render_readably() {
        assert_eq!(human_duration(MAX_DURATION), "30 days");
        assert_eq!(human_duration(SimDuration::from_secs(3600)), "1 h");
    }
}
