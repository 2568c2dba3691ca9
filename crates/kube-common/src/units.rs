//! Kubernetes quantities (`100m`, `1.5`, `512Mi`, `1G`, `2e3`) and Go durations (`90s`,
//! `1h30m`, `300ms`), the two unit syntaxes of Kubernetes manifests, as plain numbers.
//!
//! Quantities are kept in milli-units (`i64`: up to about 9.2 EB of memory in milli-bytes is
//! 9.2e15 bytes, so values are computed in `i128` and saturate). Two quantities are equal when
//! their values are, whatever their spelling: the API server rewrites `2000000000` as `2G`.

use std::time::Duration;

/// Why a quantity or duration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?}: {reason}")]
pub struct UnitError {
    what: &'static str,
    text: String,
    reason: &'static str,
}

fn refuse(what: &'static str, text: &str, reason: &'static str) -> UnitError {
    UnitError {
        what,
        text: text.to_owned(),
        reason,
    }
}

/// The value of a Kubernetes quantity in milli-units (`"100m"` → 100, `"1"` → 1000,
/// `"1Ki"` → 1,024,000). Fractions below a milli-unit are rounded up, as Kubernetes'
/// `MilliValue` does.
pub fn milli(text: &str) -> Result<i64, UnitError> {
    let what = "quantity";
    let s = text.trim();
    let (sign, s) = match s.as_bytes().first() {
        Some(b'-') => (-1i128, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(refuse(what, text, "expected a number"));
    }
    // (numerator, denominator) of the suffix's factor, in milli-units.
    let (num, den): (i128, i128) = match suffix {
        "" => (1_000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1_000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1_000 << 10, 1),
        "Mi" => (1_000 << 20, 1),
        "Gi" => (1_000 << 30, 1),
        "Ti" => (1_000 << 40, 1),
        "Pi" => (1_000 << 50, 1),
        "Ei" => (1_000 << 60, 1),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..]
                .parse()
                .map_err(|_| refuse(what, text, "bad exponent"))?;
            if !(-18..=18).contains(&exp) {
                return Err(refuse(what, text, "exponent out of range"));
            }
            let exp = exp + 3;
            if exp >= 0 {
                (10i128.pow(exp as u32), 1)
            } else {
                (1, 10i128.pow((-exp) as u32))
            }
        }
        _ => return Err(refuse(what, text, "unknown suffix")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.len() + fraction.len() > 30 {
        return Err(refuse(what, text, "too many digits"));
    }
    let digits: i128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| refuse(what, text, "expected a number"))?;
    let scale = 10i128.pow(fraction.len() as u32);
    let (n, d) = (digits * num, scale * den);
    let value = sign * ((n + d - 1) / d);
    Ok(value.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// A CPU quantity of `m` milli-cores, spelled as Kubernetes spells it (`100m`, `2`).
pub fn cpu(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// A memory quantity of `m` milli-bytes, in whole bytes (rounded up) with the largest
/// decimal suffix that divides it (`2G`, `1500M`, `123`).
pub fn bytes(m: i64) -> String {
    let b = (m + 999).div_euclid(1000);
    if b == 0 {
        return "0".to_owned();
    }
    for (suffix, factor) in [
        ("E", 18),
        ("P", 15),
        ("T", 12),
        ("G", 9),
        ("M", 6),
        ("k", 3),
    ] {
        let f = 10i64.pow(factor);
        if b % f == 0 {
            return format!("{}{suffix}", b / f);
        }
    }
    b.to_string()
}

/// A Go duration (`time.ParseDuration`, the syntax of `metav1.Duration`): `0`, or a sequence of
/// decimal numbers with units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h` (`1h30m`, `1.5s`).
pub fn duration(text: &str) -> Result<Duration, UnitError> {
    let what = "duration";
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(refuse(what, text, "negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(refuse(what, text, "empty"));
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| refuse(what, text, "missing unit"))?;
        let (number, tail) = rest.split_at(end);
        let value: f64 = number
            .parse()
            .map_err(|_| refuse(what, text, "expected a number"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let factor = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(refuse(what, text, "unknown unit")),
        };
        nanos += value * factor;
        rest = tail;
    }
    if nanos > u64::MAX as f64 {
        return Err(refuse(what, text, "too long"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_milli_units() {
        for (text, m) in [
            ("100m", 100),
            ("1", 1000),
            ("1.1", 1100),
            ("0", 0),
            ("2", 2000),
            ("100M", 100_000_000_000),
            ("1G", 1_000_000_000_000),
            ("12Gi", 12 * (1 << 30) * 1000),
            ("1Ki", 1_024_000),
            ("1.5Gi", 1_610_612_736_000),
            ("2e3", 2_000_000),
            ("1E3", 1_000_000),
            ("5e-3", 5),
            ("1u", 1),
            ("-1", -1000),
            ("0.0001", 1),
        ] {
            assert_eq!(milli(text), Ok(m), "{text}");
        }
        for bad in ["", "m", "1x", "1..2", "Gi", "1e99", "abc", "1 G"] {
            assert!(milli(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(milli("9E"), Ok(i64::MAX), "saturates");
    }

    #[test]
    fn quantities_spelled() {
        assert_eq!(cpu(100), "100m");
        assert_eq!(cpu(2000), "2");
        assert_eq!(cpu(1100), "1100m");
        assert_eq!(bytes(2_000_000_000_000), "2G");
        assert_eq!(bytes(1_500_000_000_000), "1500M");
        assert_eq!(bytes(123_000), "123");
        assert_eq!(bytes(1), "1", "rounded up to a byte");
        assert_eq!(bytes(0), "0");
        for m in [100_000_000_000i64, 7_000_000_000_000, 1_073_741_824_000] {
            assert_eq!(milli(&bytes(m)), Ok(m));
        }
    }

    #[test]
    fn go_durations() {
        for (text, d) in [
            ("0", Duration::ZERO),
            ("1m", Duration::from_secs(60)),
            ("5m", Duration::from_secs(300)),
            ("60m", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5s", Duration::from_millis(1500)),
            ("300ms", Duration::from_millis(300)),
            ("2h45m30.5s", Duration::from_millis(9_930_500)),
            ("10us", Duration::from_micros(10)),
        ] {
            assert_eq!(duration(text), Ok(d), "{text}");
        }
        for bad in ["", "5", "1d", "-1m", "m", "1.2.3s", "1 m"] {
            assert!(duration(bad).is_err(), "{bad} accepted");
        }
    }
}
