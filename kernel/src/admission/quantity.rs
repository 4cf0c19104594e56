//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `2G`, `1e3`) as
//! exact thousandths, for the admission modules that compare and add them.

/// A quantity in thousandths of its unit (millicores, millibytes).
pub type Milli = i128;

/// Parses a quantity; `None` when it is not one.
pub fn parse(text: &str) -> Option<Milli> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = |s: &str| s.is_empty() || s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    // value = mantissa / 10^scale
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = fraction.len() as u32;
    let (multiplier, exp10): (i128, i32) = match suffix {
        "" => (1, 0),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        s if s.starts_with(['e', 'E']) => (1, s[1..].parse().ok()?),
        _ => return None,
    };
    // thousandths = mantissa * multiplier * 10^(exp10 + 3 - scale), rounded up
    // as Kubernetes rounds a quantity up to its smallest unit.
    let power = exp10 + 3 - scale as i32;
    let base = mantissa.checked_mul(multiplier)?;
    let value = if power >= 0 {
        base.checked_mul(10i128.checked_pow(power as u32)?)?
    } else {
        let divisor = 10i128.checked_pow(power.unsigned_abs())?;
        (base + divisor - 1) / divisor
    };
    Some(if negative { -value } else { value })
}

/// Formats thousandths back as a quantity: binary suffixes for byte
/// amounts (`memory`, `storage`...) when exact, else an integer, else `m`.
pub fn format(value: Milli, bytes: bool) -> String {
    if value % 1000 != 0 {
        return format!("{value}m");
    }
    let units = value / 1000;
    if bytes && units != 0 {
        for (suffix, size) in [
            ("Ei", 1i128 << 60),
            ("Pi", 1 << 50),
            ("Ti", 1 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if units % size == 0 {
                return format!("{}{suffix}", units / size);
            }
        }
    }
    units.to_string()
}

/// Whether a resource name counts bytes (its quantities print as `Mi`, `Gi`).
pub fn is_bytes(resource: &str) -> bool {
    resource.ends_with("memory") || resource.ends_with("storage")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_kubernetes_quantities() {
        assert_eq!(parse("100m"), Some(100));
        assert_eq!(parse("1"), Some(1000));
        assert_eq!(parse("1.5"), Some(1500));
        assert_eq!(parse("0.1"), Some(100));
        assert_eq!(parse("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse("2G"), Some(2_000_000_000_000));
        assert_eq!(parse("1e3"), Some(1_000_000));
        assert_eq!(parse("1.0001m"), Some(2));
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("1Xi"), None);
        assert_eq!(parse(""), None);
        assert_eq!(format(1500, false), "1500m");
        assert_eq!(format(2000, false), "2");
        assert_eq!(format(parse("256Mi").unwrap_or_default(), true), "256Mi");
        assert_eq!(format(parse("1G").unwrap_or_default(), true), "1000000000");
        assert_eq!(format(0, true), "0");
    }
}
