//! Loss trace files referenced by `loss = { model = "trace", file = … }`.
//!
//! Two formats:
//! - `bits`: one character per packet, `1` = lost, `0` = delivered;
//!   whitespace is ignored and `#` starts a comment running to the end of the
//!   line.
//! - `intervals`: one state change per line, `<duration> good|bad` (e.g.
//!   `0 s good`, `12.5 s bad`); times strictly increasing, the first at 0;
//!   blank lines and `#` comments ignored.
//!
//! Errors name the trace file and its line.

use super::error::ScenarioError;
use super::units;
use crate::sim::SimTime;

/// Largest trace file accepted (bytes): 256 MiB.
pub const MAX_TRACE_BYTES: u64 = 256 * 1024 * 1024;

fn at(file: &str, line: usize, field: &str, message: String) -> ScenarioError {
    ScenarioError {
        file: file.to_string(),
        line: Some(line),
        column: None,
        field: Some(field.to_string()),
        message,
    }
}

/// Parse a `bits` trace; `file` names it in errors, `field` is the scenario
/// field that referenced it.
pub fn parse_bits(text: &str, file: &str, field: &str) -> Result<Vec<bool>, ScenarioError> {
    let mut bits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("");
        for (col, c) in content.chars().enumerate() {
            match c {
                '0' => bits.push(false),
                '1' => bits.push(true),
                c if c.is_whitespace() => {}
                c => {
                    let mut e = at(
                        file,
                        n + 1,
                        field,
                        format!("unexpected character {c:?} in a bits trace: only '0' (delivered), '1' (lost), whitespace and # comments are allowed"),
                    );
                    e.column = Some(col + 1);
                    return Err(e);
                }
            }
        }
    }
    if bits.is_empty() {
        return Err(ScenarioError {
            field: Some(field.to_string()),
            ..ScenarioError::file_only(file, "bits trace holds no packets (no '0' or '1')")
        });
    }
    Ok(bits)
}

/// Parse an `intervals` trace into (start, bad?) pairs.
pub fn parse_intervals(
    text: &str,
    file: &str,
    field: &str,
) -> Result<Vec<(SimTime, bool)>, ScenarioError> {
    let mut out: Vec<(SimTime, bool)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let (time, state) = content.rsplit_once(char::is_whitespace).ok_or_else(|| {
            at(
                file,
                n + 1,
                field,
                format!("expected `<duration> good|bad`, got {content:?}"),
            )
        })?;
        let bad = match state {
            "good" => false,
            "bad" => true,
            other => {
                return Err(at(
                    file,
                    n + 1,
                    field,
                    format!("unknown state {other:?}: expected `good` or `bad`"),
                ))
            }
        };
        let t = units::parse_duration(time.trim()).map_err(|m| at(file, n + 1, field, m))?;
        let t = SimTime::from_nanos(t.as_nanos());
        match out.last() {
            None if t != SimTime::ZERO => {
                return Err(at(
                    file,
                    n + 1,
                    field,
                    format!("the first interval must start at 0, not at {t}"),
                ))
            }
            Some(&(prev, _)) if t <= prev => {
                return Err(at(
                    file,
                    n + 1,
                    field,
                    format!("times must increase: {t} is not after the previous {prev}"),
                ))
            }
            _ => {}
        }
        out.push((t, bad));
    }
    if out.is_empty() {
        return Err(ScenarioError {
            field: Some(field.to_string()),
            ..ScenarioError::file_only(file, "intervals trace holds no intervals")
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_ignore_whitespace_and_comments() {
        let bits = parse_bits("# header\n01 1\n0 # tail 111\n", "t.bits", "f");
        assert_eq!(bits, Ok(vec![false, true, true, false]));
    }

    #[test]
    fn bits_error_names_file_and_line() {
        let e = parse_bits("01\n0x1\n", "t.bits", "links.l.loss.file").expect_err("x");
        assert_eq!(
            (e.file.as_str(), e.line, e.column),
            ("t.bits", Some(2), Some(2))
        );
        assert!(parse_bits("# only\n", "t.bits", "f").is_err());
    }

    #[test]
    fn intervals_parse_and_check_order() {
        let iv = parse_intervals("0 s good\n12.5 s bad\n# c\n\n20 s good\n", "t.iv", "f");
        assert_eq!(
            iv,
            Ok(vec![
                (SimTime::ZERO, false),
                (SimTime::from_nanos(12_500_000_000), true),
                (SimTime::from_nanos(20_000_000_000), false)
            ])
        );
        let e = parse_intervals("0 s good\n5 s bad\n5 s good\n", "t.iv", "f").expect_err("order");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("increase"));
        let e = parse_intervals("1 s good\n", "t.iv", "f").expect_err("start");
        assert!(e.message.contains("start at 0"));
        let e = parse_intervals("0 s meh\n", "t.iv", "f").expect_err("state");
        assert!(e.message.contains("good"));
    }
}
