//! Human units in scenario files: durations (`"50 ms"`, `"1.5 s"`,
//! `"10 min"`) and bit rates (`"250 kbit/s"`, `"10 Mbps"`). Both are parsed
//! exactly (decimal digits, integer arithmetic) into integer nanoseconds and
//! integer bits per second; a value that is not a whole number of the base
//! unit is rejected rather than rounded.

use crate::sim::SimDuration;

/// Accepted duration units, for messages.
pub const DURATION_UNITS: &str = "ns, us, ms, s, min, h (e.g. \"50 ms\", \"1.5 s\", \"10 min\")";
/// Accepted rate units, for messages.
pub const RATE_UNITS: &str =
    "bit/s, kbit/s, Mbit/s, Gbit/s (aliases bps, kbps, Mbps, Gbps; e.g. \"250 kbit/s\")";

/// A non-negative decimal number split into digits: `int.frac`.
struct Decimal<'a> {
    int: &'a str,
    frac: &'a str,
}

/// Split `s` into a decimal number and the unit after it.
fn split_number(s: &str) -> Option<(Decimal<'_>, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num = num.trim_end();
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    Some((Decimal { int, frac }, unit.trim()))
}

/// `value · multiplier` exactly, if it is a whole number that fits in u64.
fn scale(d: &Decimal<'_>, multiplier: u64) -> Result<u64, &'static str> {
    let mut num: u128 = 0;
    for c in d.int.chars().chain(d.frac.chars()) {
        num = num
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(c as u8 - b'0')))
            .ok_or("is too large")?;
    }
    let mut den: u128 = 1;
    for _ in 0..d.frac.len() {
        den = den.checked_mul(10).ok_or("has too many decimals")?;
    }
    let total = num
        .checked_mul(u128::from(multiplier))
        .ok_or("is too large")?;
    if total % den != 0 {
        return Err("is not a whole number of the base unit");
    }
    u64::try_from(total / den).map_err(|_| "is too large")
}

/// Parse a duration such as `"50 ms"`, `"1.5 s"`, `"10min"`, `"0"`.
///
/// Errors say what is wrong and list the accepted units.
pub fn parse_duration(s: &str) -> Result<SimDuration, String> {
    let bad = || {
        format!(
            "invalid duration \"{s}\": expected a non-negative number and a unit: {DURATION_UNITS}"
        )
    };
    if s.trim().starts_with('-') {
        return Err(format!(
            "invalid duration \"{s}\": durations cannot be negative; units: {DURATION_UNITS}"
        ));
    }
    let (num, unit) = split_number(s).ok_or_else(bad)?;
    let mult: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" if num.int.chars().all(|c| c == '0') && num.frac.chars().all(|c| c == '0') => 1,
        _ => return Err(bad()),
    };
    scale(&num, mult)
        .map(SimDuration::from_nanos)
        .map_err(|why| match why {
            "is not a whole number of the base unit" => {
                format!("invalid duration \"{s}\": not a whole number of nanoseconds")
            }
            w => format!("invalid duration \"{s}\": {w}"),
        })
}

/// Parse a bit rate such as `"250 kbit/s"`, `"10 Mbps"`, `"9600 bit/s"` into
/// bits per second (SI prefixes: k = 1000).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let bad =
        || format!("invalid rate \"{s}\": expected a non-negative number and a unit: {RATE_UNITS}");
    let (num, unit) = split_number(s).ok_or_else(bad)?;
    let mult: u64 = match unit {
        "bit/s" | "bps" => 1,
        "kbit/s" | "kbps" => 1_000,
        "Mbit/s" | "Mbps" => 1_000_000,
        "Gbit/s" | "Gbps" => 1_000_000_000,
        _ => return Err(bad()),
    };
    scale(&num, mult).map_err(|why| match why {
        "is not a whole number of the base unit" => {
            format!("invalid rate \"{s}\": not a whole number of bit/s")
        }
        w => format!("invalid rate \"{s}\": {w}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Result<u64, String> {
        parse_duration(s).map(SimDuration::as_nanos)
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(ns("1.5 s"), Ok(1_500_000_000));
        assert_eq!(ns("50 ms"), Ok(50_000_000));
        assert_eq!(ns("10 s"), Ok(10_000_000_000));
        assert_eq!(ns("10 min"), Ok(600_000_000_000));
        assert_eq!(ns("1 h"), Ok(3_600_000_000_000));
        assert_eq!(ns("250 us"), Ok(250_000));
        assert_eq!(ns("3 ns"), Ok(3));
        assert_eq!(ns("60s"), Ok(60_000_000_000));
        assert_eq!(ns("12.5 s"), Ok(12_500_000_000));
        assert_eq!(ns("0"), Ok(0));
        assert_eq!(ns("0.000000001 s"), Ok(1));
    }

    #[test]
    fn durations_rejected_with_units_listed() {
        for bad in ["", "s", "10", "ten s", "1.5 fortnights", "1..5 s", ".5 s"] {
            let e = ns(bad).expect_err(bad);
            assert!(e.contains("ns, us, ms, s, min, h"), "{bad}: {e}");
        }
        assert!(ns("-1 s").expect_err("neg").contains("negative"));
        assert!(ns("1.5 ns").expect_err("frac").contains("whole number"));
        assert!(ns("99999999999999999999 h")
            .expect_err("big")
            .contains("too large"));
    }

    #[test]
    fn rates_and_aliases() {
        assert_eq!(parse_rate("250 kbit/s"), Ok(250_000));
        assert_eq!(parse_rate("10 Mbit/s"), Ok(10_000_000));
        assert_eq!(parse_rate("1 Gbit/s"), Ok(1_000_000_000));
        assert_eq!(parse_rate("9600 bit/s"), Ok(9600));
        assert_eq!(parse_rate("250 kbps"), Ok(250_000));
        assert_eq!(parse_rate("2.5 Mbps"), Ok(2_500_000));
        assert!(parse_rate("10 MB/s").expect_err("unit").contains("kbit/s"));
        assert!(parse_rate("0.5 bit/s").expect_err("frac").contains("whole"));
    }
}
