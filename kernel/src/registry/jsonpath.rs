//! The simple JSONPath subset used by CRD `additionalPrinterColumns` and
//! scale paths: `.a.b`, `.a['b.c']`, `.a[0]`, `.a[*]`, `{.a}` and `\.` escapes.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array index (negative counts from the end).
    Index(i64),
    /// Every element of an array or every value of an object.
    Wildcard,
}

/// Parses a path; `None` if it is outside the supported subset.
pub fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    key.push(chars[i]);
                    i += 1;
                }
                if key == "*" {
                    steps.push(Step::Wildcard);
                } else if !key.is_empty() {
                    steps.push(Step::Key(key));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Key(q.to_owned()));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Every value `path` selects in `obj`, in order.
pub fn find<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in current {
            match (step, v) {
                (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                (Step::Index(n), Value::Array(a)) => {
                    let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                    if let Ok(idx) = usize::try_from(idx) {
                        next.extend(a.get(idx));
                    }
                }
                (Step::Wildcard, Value::Array(a)) => next.extend(a.iter()),
                (Step::Wildcard, Value::Object(m)) => next.extend(m.values()),
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// The first value `path` selects, if any.
pub fn first<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    find(obj, path).into_iter().next()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn evaluates_simple_paths() {
        let obj = json!({"spec": {"replicas": 3, "items": [{"n": "a"}, {"n": "b"}]},
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        assert_eq!(first(&obj, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(first(&obj, "{.spec.items[1].n}"), Some(&json!("b")));
        assert_eq!(first(&obj, ".spec.items[-1].n"), Some(&json!("b")));
        assert_eq!(
            find(&obj, ".spec.items[*].n"),
            vec![&json!("a"), &json!("b")]
        );
        assert_eq!(
            first(&obj, ".metadata.labels['app.kubernetes.io/name']"),
            Some(&json!("x"))
        );
        assert_eq!(
            first(&obj, r".metadata.labels.app\.kubernetes\.io/name"),
            Some(&json!("x"))
        );
        assert_eq!(first(&obj, ".spec.missing"), None);
        assert_eq!(parse("spec"), None);
    }
}
