//! Generic validation as Kubernetes' apimachinery does it: object names,
//! metadata (namespace, labels, annotations) and the name syntaxes, with
//! Kubernetes' exact messages so `kubectl` users see familiar errors.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use crate::error::FieldError;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";

/// Total size limit of all annotations of one object, in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn anchored(fmt: &str) -> Regex {
    // The formats are constants of this file, covered by the unit tests.
    Regex::new(&format!("^(?:{fmt})$")).unwrap_or_else(|e| panic!("built-in regex {fmt}: {e}"))
}

static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static DNS1035_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1035_LABEL_FMT));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));
static CONFIG_KEY: LazyLock<Regex> = LazyLock::new(|| anchored(CONFIG_KEY_FMT));

/// Kubernetes' error text for a regex mismatch: `<msg> (e.g. 'a',  or 'b', regex used for validation is '<fmt>')`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = msg.to_owned();
    if !examples.is_empty() {
        let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
        out.push_str(&format!(" (e.g. {}, ", quoted.join(",  or ")));
    } else {
        out.push_str(" (");
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Problems with `value` as an RFC 1123 label (namespaces, container names).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !DNS1123_LABEL.is_match(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// Problems with `value` as an RFC 1123 subdomain (most object names).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !DNS1123_SUBDOMAIN.is_match(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with `value` as an RFC 1035 label (service names).
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !DNS1035_LABEL.is_match(value) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Problems with `value` as a path segment name (RBAC object names).
pub fn path_segment_name(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    for bad in ["/", "%"] {
        if value.contains(bad) {
            return vec![format!("may not contain '{bad}'")];
        }
    }
    Vec::new()
}

/// Problems with `value` as a qualified name (label and annotation keys):
/// an optional DNS subdomain prefix and `/`, then a name of up to 63 characters.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                for msg in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "{} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"],
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            )
        ));
    }
    errs
}

/// Problems with `value` as a label value.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Problems with `value` as a ConfigMap or Secret key.
pub fn config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !CONFIG_KEY.is_match(value) {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_owned());
    } else if value == ".." {
        errs.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// How a type's object names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: most types.
    Subdomain,
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label: services.
    Dns1035,
    /// Path segment: RBAC types.
    PathSegment,
}

impl NameRule {
    /// The problems of `name` under this rule.
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => dns1123_subdomain(name),
            NameRule::Label => dns1123_label(name),
            NameRule::Dns1035 => dns1035_label(name),
            NameRule::PathSegment => path_segment_name(name),
        }
    }
}

/// Reports `msgs` about `value` at `field` as invalid-value errors.
pub fn invalid_all(field: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter()
        .map(|m| FieldError::invalid(field, &json!(value), m))
        .collect()
}

/// `field: Too long: must have at most N bytes`.
pub fn too_long(field: &str, max: usize) -> FieldError {
    FieldError {
        reason: "FieldValueTooLong",
        field: field.to_owned(),
        message: format!("{field}: Too long: must have at most {max} bytes"),
    }
}

/// `field: Invalid value: <go-rendered value>: detail`, for values Kubernetes
/// prints in Go syntax (maps, selectors) rather than as JSON.
pub fn invalid_raw(field: &str, shown: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_owned(),
        message: format!("{field}: Invalid value: {shown}: {detail}"),
    }
}

/// Validates a label map at `field`.
pub fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        errs.extend(invalid_all(field, k, qualified_name(k)));
        if let Some(v) = v.as_str() {
            errs.extend(invalid_all(field, v, label_value(v)));
        }
    }
    errs
}

/// Validates an annotation map at `field`: key syntax and total size.
pub fn validate_annotations(annotations: Option<&Value>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        // Kubernetes checks annotation keys case-insensitively.
        errs.extend(invalid_all(field, k, qualified_name(&k.to_lowercase())));
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Validates `metadata` of a top-level object: name or generateName, the
/// namespace according to scope, labels and annotations; on update, that
/// name and namespace did not change.
pub fn validate_object_meta(
    obj: &Value,
    old: Option<&Value>,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate_name = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !generate_name.is_empty() {
        // A generated name gets a random suffix, so a trailing dash is fine.
        let masked = generate_name
            .strip_suffix('-')
            .map_or_else(|| generate_name.to_owned(), |s| format!("{s}a"));
        errs.extend(invalid_all(
            "metadata.generateName",
            generate_name,
            rule.check(&masked),
        ));
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "metadata.name: Required value: name or generateName is required".into(),
            });
        }
    } else {
        errs.extend(invalid_all("metadata.name", name, rule.check(name)));
    }
    let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace"));
        } else {
            errs.extend(invalid_all(
                "metadata.namespace",
                namespace,
                dns1123_label(namespace),
            ));
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        "metadata.annotations",
    ));
    if let Some(old) = old {
        for (field, key) in [
            ("metadata.name", "name"),
            ("metadata.namespace", "namespace"),
        ] {
            let new_v = meta.get(key).and_then(Value::as_str).unwrap_or("");
            let old_v = old
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if new_v != old_v {
                errs.push(FieldError::invalid(
                    field,
                    &json!(new_v),
                    "field is immutable",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_message_matches_kubernetes() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "Foo", "namespace": "default"}}),
            None,
            true,
            NameRule::Subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            r#"metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        );
    }

    #[test]
    fn label_and_dns1035_messages() {
        assert_eq!(
            dns1123_label("a.b"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned()]
        );
        assert!(dns1035_label("1abc")[0].starts_with("a DNS-1035 label"));
        assert!(dns1035_label("abc-1").is_empty());
        assert_eq!(
            dns1123_label(&"a".repeat(64))[0],
            "must be no more than 63 characters"
        );
    }

    #[test]
    fn name_required_and_scope() {
        let errs = validate_object_meta(&json!({"metadata": {}}), None, true, NameRule::Subdomain);
        let msgs: Vec<_> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n1", "namespace": "x"}}),
            None,
            false,
            NameRule::Subdomain,
        );
        assert_eq!(
            errs[0].message,
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        // generateName with a trailing dash is valid.
        let errs = validate_object_meta(
            &json!({"metadata": {"generateName": "web-", "namespace": "x"}}),
            None,
            true,
            NameRule::Subdomain,
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn labels_and_annotations() {
        let errs = validate_labels(
            Some(&json!({"app": "web", "bad key": "x", "k": "-v"})),
            "metadata.labels",
        );
        assert_eq!(errs.len(), 2);
        assert!(errs[0].message.starts_with(r#"metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters"#));
        assert!(errs[1].message.starts_with(
            r#"metadata.labels: Invalid value: "-v": a valid label must be an empty string"#
        ));
        assert!(validate_labels(Some(&json!({"example.com/app": ""})), "l").is_empty());
        assert_eq!(qualified_name("a/b/c").len(), 1);
        assert_eq!(
            qualified_name("Bad_/x")[0]
                .split(' ')
                .take(3)
                .collect::<Vec<_>>(),
            vec!["prefix", "part", "a"]
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let errs = validate_annotations(Some(&json!({"a": big})), "metadata.annotations");
        assert_eq!(
            errs,
            vec![too_long(
                "metadata.annotations",
                TOTAL_ANNOTATION_SIZE_LIMIT
            )]
        );
        assert!(
            validate_annotations(Some(&json!({"Kubectl.Kubernetes.io/X": "y"})), "a").is_empty()
        );
    }

    #[test]
    fn name_immutable_on_update() {
        let old = json!({"metadata": {"name": "a"}});
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "b"}}),
            Some(&old),
            false,
            NameRule::Label,
        );
        assert_eq!(
            errs[0].message,
            r#"metadata.name: Invalid value: "b": field is immutable"#
        );
    }

    #[test]
    fn config_keys() {
        assert!(config_map_key("app.properties").is_empty());
        assert!(config_map_key("a b")[0].starts_with("a valid config key"));
        assert_eq!(
            config_map_key("..x"),
            vec!["must not start with '..'".to_owned()]
        );
        assert_eq!(
            path_segment_name("a/b"),
            vec!["may not contain '/'".to_owned()]
        );
    }
}
