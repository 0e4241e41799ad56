//! Loss trace file formats (see `docs/channels.md`).
//!
//! - **Bits** (`*.bits`): one character per packet, `1` = lost, `0` =
//!   delivered; whitespace is ignored and `#` starts a comment that runs to the
//!   end of the line. `110 0` and `1\n1\n0\n0` are the same trace.
//! - **Intervals** (`*.intervals`): one `<duration> good|bad` per line, e.g.
//!   `2.5 s bad`; durations take `ns`, `us`, `ms`, `s`, `min` or `h`, with an
//!   optional decimal fraction; blank lines and `#` comments are ignored. The
//!   intervals follow each other from trace time 0; their sum is the trace's
//!   length, which is the repeat period when the trace repeats.
//!
//! The parsers take the file's text and report errors by 1-based line; the
//! scenario loader reads the file and adds its path.

use crate::sim::{SimDuration, SimTime};
use std::sync::Arc;
use thiserror::Error;

/// A malformed trace file, located by 1-based line (and column for bits).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TraceError {
    #[error("line {line}, column {col}: expected '0' or '1', found {found:?}")]
    BadBit {
        line: usize,
        col: usize,
        found: char,
    },
    #[error("line {line}: expected `<duration> good|bad`, found {text:?}")]
    BadIntervalLine { line: usize, text: String },
    #[error("line {line}: bad duration {text:?} (a number followed by ns, us, ms, s, min or h)")]
    BadDuration { line: usize, text: String },
    #[error("line {line}: interval duration must be greater than zero")]
    ZeroDuration { line: usize },
    #[error("line {line}: state must be `good` or `bad`, found {found:?}")]
    BadState { line: usize, found: String },
    #[error("line {line}: trace longer than the simulated time range")]
    TooLong { line: usize },
    #[error("trace has no entries")]
    Empty,
}

/// Parse a bits trace: `true` = the packet with that index is lost.
pub fn parse_bits(text: &str) -> Result<Arc<[bool]>, TraceError> {
    let mut bits = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("");
        for (col, ch) in content.chars().enumerate() {
            match ch {
                '0' => bits.push(false),
                '1' => bits.push(true),
                c if c.is_whitespace() => {}
                c => {
                    return Err(TraceError::BadBit {
                        line: i + 1,
                        col: col + 1,
                        found: c,
                    })
                }
            }
        }
    }
    if bits.is_empty() {
        return Err(TraceError::Empty);
    }
    Ok(bits.into())
}

/// A parsed intervals trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalTrace {
    /// (start, bad?) in trace time, the first at 0, strictly increasing.
    pub intervals: Arc<[(SimTime, bool)]>,
    /// Sum of the durations: the repeat period when the trace repeats.
    pub length: SimDuration,
}

/// Parse an intervals trace.
pub fn parse_intervals(text: &str) -> Result<IntervalTrace, TraceError> {
    let mut intervals = Vec::new();
    let mut start: u64 = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let Some((dur_text, state_text)) = content.rsplit_once(char::is_whitespace) else {
            return Err(TraceError::BadIntervalLine {
                line,
                text: content.to_string(),
            });
        };
        let bad = match state_text {
            "good" => false,
            "bad" => true,
            other => {
                return Err(TraceError::BadState {
                    line,
                    found: other.to_string(),
                })
            }
        };
        let dur = parse_duration(dur_text.trim()).ok_or_else(|| TraceError::BadDuration {
            line,
            text: dur_text.trim().to_string(),
        })?;
        if dur.as_nanos() == 0 {
            return Err(TraceError::ZeroDuration { line });
        }
        intervals.push((SimTime(start), bad));
        start = start
            .checked_add(dur.as_nanos())
            .ok_or(TraceError::TooLong { line })?;
    }
    if intervals.is_empty() {
        return Err(TraceError::Empty);
    }
    Ok(IntervalTrace {
        intervals: intervals.into(),
        length: SimDuration(start),
    })
}

/// `<number>[ ]<unit>` with a decimal fraction allowed, converted exactly to
/// nanoseconds (digits beyond nanosecond resolution are rejected).
fn parse_duration(text: &str) -> Option<SimDuration> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ns: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits = |s: &str| -> Option<u128> {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse::<u128>().ok()
        }
    };
    let int_ns = digits(int_part)?.checked_mul(unit_ns)?;
    // fraction = f / 10^k of a unit; exact only if 10^k divides f·unit_ns.
    let k = u32::try_from(frac_part.len()).ok()?;
    let scale = 10u128.checked_pow(k)?;
    let frac_scaled = digits(frac_part)?.checked_mul(unit_ns)?;
    if frac_scaled % scale != 0 {
        return None;
    }
    let ns = int_ns.checked_add(frac_scaled / scale)?;
    u64::try_from(ns).ok().map(SimDuration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_with_comments_and_whitespace() {
        let t = "# header\n110 0 # trailing\n\n  1\n";
        assert_eq!(
            &*parse_bits(t).unwrap_or_else(|_| Arc::from([])),
            &[true, true, false, false, true]
        );
        assert_eq!(
            parse_bits("01\n0x1"),
            Err(TraceError::BadBit {
                line: 2,
                col: 2,
                found: 'x'
            })
        );
        assert_eq!(parse_bits("# nothing\n"), Err(TraceError::Empty));
    }

    #[test]
    fn intervals_accumulate_from_zero() {
        let t = "# a 2 s cycle\n1 s good\n500 ms bad\n0.2 s good # note\n300ms bad\n";
        let tr = parse_intervals(t).unwrap_or_else(|_| IntervalTrace {
            intervals: Arc::from([]),
            length: SimDuration::ZERO,
        });
        let ms = |m: u64| SimTime(m * 1_000_000);
        assert_eq!(
            &*tr.intervals,
            &[
                (ms(0), false),
                (ms(1000), true),
                (ms(1500), false),
                (ms(1700), true)
            ]
        );
        assert_eq!(tr.length, SimDuration::from_secs(2));
    }

    #[test]
    fn interval_errors_name_the_line() {
        assert_eq!(
            parse_intervals("1 s good\n2 s ugly"),
            Err(TraceError::BadState {
                line: 2,
                found: "ugly".into()
            })
        );
        assert_eq!(
            parse_intervals("\n\nbad"),
            Err(TraceError::BadIntervalLine {
                line: 3,
                text: "bad".into()
            })
        );
        assert_eq!(
            parse_intervals("3 parsecs bad"),
            Err(TraceError::BadDuration {
                line: 1,
                text: "3 parsecs".into()
            })
        );
        assert_eq!(
            parse_intervals("0 s bad"),
            Err(TraceError::ZeroDuration { line: 1 })
        );
        assert_eq!(
            parse_intervals("1 s good\n5000000 h bad\n5000000 h bad"),
            Err(TraceError::TooLong { line: 3 })
        );
        assert_eq!(parse_intervals("# only\n"), Err(TraceError::Empty));
    }

    #[test]
    fn durations_are_exact() {
        assert_eq!(parse_duration("1.5 ms"), Some(SimDuration(1_500_000)));
        assert_eq!(parse_duration("250us"), Some(SimDuration(250_000)));
        assert_eq!(parse_duration("2 min"), Some(SimDuration::from_secs(120)));
        assert_eq!(parse_duration(".25 s"), Some(SimDuration(250_000_000)));
        assert_eq!(parse_duration("1 h"), Some(SimDuration::from_secs(3600)));
        assert_eq!(parse_duration("0.5 ns"), None);
        assert_eq!(parse_duration("1.2.3 s"), None);
        assert_eq!(parse_duration(". s"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("99999999999999999999 h"), None);
    }
}
