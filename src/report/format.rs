//! Numbers for people: thousands separators and a precision that follows the
//! magnitude, so a table cell never shows `0.000123456` or `12345.678901`.
//! Machine formats keep their raw values; only the HTML page and chart
//! labels use these.

/// `v` with `decimals` digits after the point and the integer part grouped
/// in threes: `1234567.5, 1` → `1,234,567.5`. Non-finite values read `n/a`.
pub fn thousands(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + int.len() / 3 + 1);
    // "-0" after rounding is just "0".
    if v < 0.0 && text.bytes().any(|b| matches!(b, b'1'..=b'9')) {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A count: `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    thousands(n as f64, 0)
}

/// A measurement with about three significant digits, never in scientific
/// notation: `0.0123` → `0.012`, `1.234` → `1.23`, `12.34` → `12.3`,
/// `12345.6` → `12,346`.
pub fn num(v: f64) -> String {
    let a = v.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    thousands(v, decimals)
}

/// A byte count in binary units: `512 B`, `12.3 KiB`, `4.56 MiB`.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", thousands(v, 0))
    } else {
        format!("{} {}", num(v), UNITS[unit])
    }
}

/// A fraction as a percentage: `0.00123` → `0.123%`.
pub fn percent(fraction: f64) -> String {
    format!("{}%", num(fraction * 100.0))
}

/// Seconds as a short duration: `42.1 s`, `2 min 30 s`, `1 h 5 min`.
pub fn duration_s(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "n/a".into();
    }
    let whole = s.round() as u64;
    if s < 60.0 {
        format!("{} s", num(s))
    } else if whole < 3600 {
        format!("{} min {} s", whole / 60, whole % 60)
    } else {
        format!("{} h {} min", whole / 3600, whole % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0.0, 0), "0");
        assert_eq!(thousands(999.0, 0), "999");
        assert_eq!(thousands(1000.0, 0), "1,000");
        assert_eq!(thousands(1234567.5, 1), "1,234,567.5");
        assert_eq!(thousands(-1234.0, 0), "-1,234");
        assert_eq!(thousands(-0.001, 1), "0.0");
        assert_eq!(thousands(f64::NAN, 1), "n/a");
        assert_eq!(count(12_345_678), "12,345,678");
    }

    #[test]
    fn precision_follows_magnitude() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(0.01234), "0.012");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12345.6), "12,346");
    }

    #[test]
    fn units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(2048.0), "2.00 KiB");
        assert_eq!(bytes(5.5 * 1024.0 * 1024.0), "5.50 MiB");
        assert_eq!(percent(0.00123), "0.123%");
        assert_eq!(duration_s(42.14), "42.1 s");
        assert_eq!(duration_s(150.0), "2 min 30 s");
        assert_eq!(duration_s(3900.0), "1 h 5 min");
    }
}
