//! Kubernetes resource quantities (`500m`, `1Gi`, `2`, `1e3`) as numbers.

/// Parses a quantity into its value times `scale` (1000 for milli-units),
/// rounded up like Kubernetes' `MilliValue`/`Value`; `None` if malformed.
pub fn parse_scaled(quantity: &str, scale: f64) -> Option<i64> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Ei" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let value = (number * multiplier * scale).ceil();
    value.is_finite().then_some(value as i64)
}

/// CPU in millicores.
pub fn cpu_millis(quantity: &str) -> Option<i64> {
    parse_scaled(quantity, 1000.0)
}

/// Bytes (or any plain count).
pub fn value(quantity: &str) -> Option<i64> {
    parse_scaled(quantity, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory_forms() {
        assert_eq!(cpu_millis("500m"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("0.1"), Some(100));
        assert_eq!(value("64Mi"), Some(64 * 1024 * 1024));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("12x"), None);
        assert_eq!(value(""), None);
    }
}
