//! Label and field selectors, parsed and matched the way Kubernetes does.
//!
//! Label selectors come from `?labelSelector=` strings (`app=web,tier!=db`,
//! `env in (a,b)`, `!canary`) or from a `metav1.LabelSelector` object
//! (`matchLabels` / `matchExpressions`, as in a Deployment's `spec.selector`).
//! Field selectors come from `?fieldSelector=` strings (`metadata.name=web`,
//! `status.phase!=Running`), with `\,`, `\=` and `\\` escapes in values.
//! Both are parsed once per request and matched cheaply per object.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// A selector that could not be parsed. The message is Kubernetes' own, so
/// the service layer returns it as a 400 as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

type Result<T, E = SelectorError> = std::result::Result<T, E>;

/// The operator of one label requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOp {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value`: also true when the label is absent.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: also true when the label is absent.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than n.
    Gt,
    /// `key<n`: the label is an integer less than n.
    Lt,
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: LabelOp,
    /// The values, sorted and deduplicated (empty for `Exists`/`DoesNotExist`).
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking the key and values like Kubernetes'
    /// `labels.NewRequirement`.
    pub fn new(key: &str, op: LabelOp, values: Vec<String>) -> Result<Self> {
        validate_label_key(key)?;
        match op {
            LabelOp::In | LabelOp::NotIn if values.is_empty() => {
                return Err(SelectorError(
                    "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                        .into(),
                ));
            }
            LabelOp::Equals | LabelOp::NotEquals if values.len() != 1 => {
                return Err(SelectorError(format!(
                    "values: Invalid value: {values:?}: exact-match compatibility requires one single value"
                )));
            }
            LabelOp::Exists | LabelOp::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
                )));
            }
            LabelOp::Gt | LabelOp::Lt => {
                if values.len() != 1 {
                    return Err(SelectorError(format!(
                        "values: Invalid value: {values:?}: for 'Gt', 'Lt' operators, exactly one value is required"
                    )));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(SelectorError(format!(
                        "values[0]: Invalid value: {:?}: for 'Gt', 'Lt' operators, the value must be an integer",
                        values[0]
                    )));
                }
            }
            _ => {}
        }
        if !matches!(op, LabelOp::Gt | LabelOp::Lt) {
            for (i, v) in values.iter().enumerate() {
                validate_label_value(v)
                    .map_err(|msg| SelectorError(format!("values[{i}][{key}]: {msg}")))?;
            }
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Self {
            key: key.to_owned(),
            op,
            values,
        })
    }

    /// Whether the labels (looked up through `get`) satisfy this requirement.
    pub fn matches<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = get(&self.key);
        match self.op {
            LabelOp::Equals | LabelOp::In => value.is_some_and(|v| self.has_value(v)),
            LabelOp::NotEquals | LabelOp::NotIn => !value.is_some_and(|v| self.has_value(v)),
            LabelOp::Exists => value.is_some(),
            LabelOp::DoesNotExist => value.is_none(),
            LabelOp::Gt | LabelOp::Lt => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.op == LabelOp::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    fn has_value(&self, v: &str) -> bool {
        // Sets are tiny; a linear scan beats hashing here.
        self.values.iter().any(|x| x == v)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.op {
            LabelOp::Equals => write!(f, "{}={first}", self.key),
            LabelOp::NotEquals => write!(f, "{}!={first}", self.key),
            LabelOp::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            LabelOp::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            LabelOp::Exists => write!(f, "{}", self.key),
            LabelOp::DoesNotExist => write!(f, "!{}", self.key),
            LabelOp::Gt => write!(f, "{}>{first}", self.key),
            LabelOp::Lt => write!(f, "{}<{first}", self.key),
        }
    }
}

/// A parsed label selector: all requirements must hold. The empty selector
/// matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses a selector string such as `app=web,env in (a, b),!canary`.
    pub fn parse(s: &str) -> Result<Self> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        loop {
            match p.peek() {
                Token::Ident(_) | Token::Not => {
                    let r = p
                        .requirement()
                        .map_err(|e| SelectorError(format!("unable to parse requirement: {e}")))?;
                    requirements.push(r);
                    match p.next() {
                        Token::End => break,
                        Token::Comma => match p.peek() {
                            Token::Ident(_) | Token::Not => {}
                            t => {
                                return Err(SelectorError(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                )));
                            }
                        },
                        t => {
                            return Err(SelectorError(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::End => break,
                t => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    )));
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Converts a `metav1.LabelSelector` JSON object (`matchLabels`,
    /// `matchExpressions`). An empty object matches everything; the caller
    /// decides what a missing (null) selector means.
    pub fn from_json(selector: &Value) -> Result<Self> {
        let obj = match selector {
            Value::Object(o) => o,
            Value::Null => return Ok(Self::default()),
            other => {
                return Err(SelectorError(format!(
                    "invalid label selector: expected an object, got {other}"
                )));
            }
        };
        let mut requirements = Vec::new();
        if let Some(labels) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let labels = labels.as_object().ok_or_else(|| {
                SelectorError("invalid label selector: matchLabels must be an object".into())
            })?;
            for (k, v) in labels {
                let v = v.as_str().ok_or_else(|| {
                    SelectorError(format!(
                        "invalid label selector: matchLabels[{k}] must be a string"
                    ))
                })?;
                requirements.push(Requirement::new(k, LabelOp::Equals, vec![v.to_owned()])?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let exprs = exprs.as_array().ok_or_else(|| {
                SelectorError("invalid label selector: matchExpressions must be a list".into())
            })?;
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
                let op_name = expr
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let op = match op_name {
                    "In" => LabelOp::In,
                    "NotIn" => LabelOp::NotIn,
                    "Exists" => LabelOp::Exists,
                    "DoesNotExist" => LabelOp::DoesNotExist,
                    other => {
                        return Err(SelectorError(format!(
                            "{other:?} is not a valid label selector operator"
                        )));
                    }
                };
                let values = match expr.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => vs
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_owned).ok_or_else(|| {
                                SelectorError(
                                    "invalid label selector: values must be strings".into(),
                                )
                            })
                        })
                        .collect::<Result<_>>()?,
                    Some(_) => {
                        return Err(SelectorError(
                            "invalid label selector: values must be a list".into(),
                        ));
                    }
                };
                requirements.push(Requirement::new(key, op, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Matches a `metadata.labels` JSON map (non-string values never match).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.matches_fn(|k| labels.get(k).and_then(Value::as_str))
    }

    /// Matches labels held in a sorted map.
    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_fn(|k| labels.get(k).map(String::as_str))
    }

    /// Matches labels looked up through `get`.
    pub fn matches_fn<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches(&get))
    }

    /// Matches the labels of an object (`metadata.labels`; none = empty).
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let empty = Map::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let next = chars.peek().map(|&(_, c)| c);
            let tok = match (c, next) {
                ('!', Some('=')) => {
                    chars.next();
                    Token::NotEq
                }
                ('=', Some('=')) => {
                    chars.next();
                    Token::DoubleEq
                }
                ('!', _) => Token::Not,
                ('=', _) => Token::Eq,
                ('>', _) => Token::Gt,
                ('<', _) => Token::Lt,
                ('(', _) => Token::Open,
                (')', _) => Token::Close,
                _ => Token::Comma,
            };
            out.push(tok);
            continue;
        }
        let mut end = s.len();
        while let Some(&(j, c)) = chars.peek() {
            if c.is_whitespace() || is_special(c) {
                end = j;
                break;
            }
            chars.next();
        }
        let word = &s[i..end];
        out.push(match word {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word.to_owned()),
        });
    }
    out.push(Token::End);
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens.get(self.pos).cloned().unwrap_or(Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        self.pos += 1;
        t
    }

    /// Within a value list or after an operator, `in`/`notin` are plain words.
    fn next_as_value(&mut self) -> Token {
        match self.next() {
            Token::In => Token::Ident("in".into()),
            Token::NotIn => Token::Ident("notin".into()),
            t => t,
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = if self.peek() == Token::Not {
            self.next();
            true
        } else {
            false
        };
        let key = match self.next() {
            Token::Ident(k) => k,
            t => return Err(format!("found '{}', expected: identifier", t.literal())),
        };
        // As in Kubernetes, `!key` ends the requirement whatever follows; the
        // caller then reports a stray operator.
        if negated {
            return Requirement::new(&key, LabelOp::DoesNotExist, Vec::new()).map_err(|e| e.0);
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Requirement::new(&key, LabelOp::Exists, Vec::new()).map_err(|e| e.0);
        }
        let op = match self.next() {
            Token::Eq | Token::DoubleEq => LabelOp::Equals,
            Token::NotEq => LabelOp::NotEquals,
            Token::Gt => LabelOp::Gt,
            Token::Lt => LabelOp::Lt,
            Token::In => LabelOp::In,
            Token::NotIn => LabelOp::NotIn,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        };
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.value_set()?,
            _ => match self.peek() {
                Token::End | Token::Comma => vec![String::new()],
                _ => match self.next_as_value() {
                    Token::Ident(v) => vec![v],
                    t => return Err(format!("found '{}', expected: identifier", t.literal())),
                },
            },
        };
        Requirement::new(&key, op, values).map_err(|e| e.0)
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Token::Open => {}
            t => return Err(format!("found '{}', expected:'('", t.literal())),
        }
        let mut values = Vec::new();
        // Kubernetes reads `()` and empty list entries (`(a,,b)`) as "".
        let mut expect_value = true;
        loop {
            match self.next_as_value() {
                Token::Ident(v) if expect_value => {
                    values.push(v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::Close => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                t => return Err(format!("found '{}', expected: ',', or ')'", t.literal())),
            }
        }
    }
}

const NAME_FMT_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_FMT_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, non-empty.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || *c == b'-')
        })
}

/// Checks a label key: an optional DNS subdomain prefix and `/`, then a name
/// of at most 63 characters.
pub fn validate_label_key(key: &str) -> Result<()> {
    let invalid = |detail: &str| SelectorError(format!("key: Invalid value: {key:?}: {detail}"));
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if name.contains('/') {
        return Err(invalid(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ));
    }
    if name.is_empty() {
        return Err(invalid("name part must be non-empty"));
    }
    if name.len() > 63 {
        return Err(invalid("name part must be no more than 63 characters"));
    }
    if !is_qualified_name_part(name) {
        return Err(invalid(NAME_FMT_MSG));
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(invalid("prefix part must be non-empty"));
        }
        if !is_dns1123_subdomain(prefix) {
            return Err(invalid(DNS1123_SUBDOMAIN_MSG));
        }
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of the name syntax.
/// The error is `Invalid value: "<v>": <why>`, without a field path.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err(format!(
            "Invalid value: {value:?}: must be no more than 63 characters"
        ));
    }
    if !is_qualified_name_part(value) {
        return Err(format!("Invalid value: {value:?}: {VALUE_FMT_MSG}"));
    }
    Ok(())
}

/// The operator of a field requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    /// `f=v` or `f==v`.
    Equals,
    /// `f!=v`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The operator.
    pub op: FieldOp,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector: all terms must hold. A field an object does not
/// have reads as the empty string, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses `metadata.name=web,status.phase!=Running`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut terms = Vec::new();
        for part in split_unescaped_commas(s) {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, raw)) = split_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_field_value(raw)?;
            terms.push(FieldRequirement {
                field: field.trim().to_owned(),
                op,
                value,
            });
        }
        terms.sort_by(|a, b| a.field.cmp(&b.field));
        Ok(Self { terms })
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, sorted by field.
    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// The field names used, so the caller can reject unsupported ones with
    /// `field label not supported: <name>`.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// The value an `=` term requires for `field`, if any (lets callers narrow
    /// a scan, e.g. to one namespace).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.op == FieldOp::Equals)
            .map(|t| t.value.as_str())
    }

    /// Matches an object whose field values are given by `get`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let v = get(&t.field);
            let v = v.as_deref().unwrap_or("");
            (v == t.value) == (t.op == FieldOp::Equals)
        })
    }

    /// Like [`FieldSelector::matches`], for borrowed values.
    pub fn matches_str<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms.iter().all(|t| {
            let v = get(&t.field).unwrap_or("");
            (v == t.value) == (t.op == FieldOp::Equals)
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match t.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            let escaped = t
                .value
                .replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('=', "\\=");
            write!(f, "{}{op}{escaped}", t.field)?;
        }
        Ok(())
    }
}

fn split_unescaped_commas(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits at the first operator; `!=` and `==` win over `=` at one position.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if rest.starts_with("!=") {
            return Some((&term[..i], FieldOp::NotEquals, &term[i + 2..]));
        }
        if rest.starts_with("==") {
            return Some((&term[..i], FieldOp::Equals, &term[i + 2..]));
        }
        if rest.starts_with('=') {
            return Some((&term[..i], FieldOp::Equals, &term[i + 1..]));
        }
    }
    None
}

fn unescape_field_value(raw: &str) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(SelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    )));
                }
                None => {
                    return Err(SelectorError(
                        "invalid field selector: invalid escape sequence: \\".into(),
                    ));
                }
            },
            ',' | '=' => {
                return Err(SelectorError(format!(
                    "invalid field selector: unescaped character in value: {c}"
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_equality_and_sets() {
        let s =
            LabelSelector::parse(" app = web , env in (prod, staging),tier!=db,!canary").unwrap();
        assert_eq!(s.requirements().len(), 4);
        assert!(s.matches(&labels(json!({"app": "web", "env": "prod"}))));
        assert!(s.matches(&labels(
            json!({"app": "web", "env": "staging", "tier": "fe"})
        )));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "dev"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod", "tier": "db"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod", "canary": ""}))));
        assert!(!s.matches(&labels(json!({"env": "prod"}))));
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env in (prod,staging),tier!=db"
        );
    }

    #[test]
    fn label_double_equals_exists_notin_and_numbers() {
        let s = LabelSelector::parse("a==1,b,c notin (x),n>3,m<10").unwrap();
        let ok = labels(json!({"a": "1", "b": "", "n": "4", "m": "9"}));
        assert!(s.matches(&ok));
        let mut bad = ok.clone();
        bad.insert("c".into(), json!("x"));
        assert!(!s.matches(&bad));
        let mut bad = ok.clone();
        bad.insert("n".into(), json!("3"));
        assert!(!s.matches(&bad));
        let mut bad = ok.clone();
        bad.remove("b");
        assert!(!s.matches(&bad));
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = LabelSelector::parse("  ").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&Map::new()));
        assert!(s.matches_object(&json!({"metadata": {}})));
    }

    #[test]
    fn keywords_can_be_values_and_prefixed_keys_work() {
        let s = LabelSelector::parse("example.com/role in (in, notin),x=in").unwrap();
        assert!(s.matches(&labels(json!({"example.com/role": "notin", "x": "in"}))));
        assert!(!s.matches(&labels(json!({"example.com/role": "other", "x": "in"}))));
    }

    #[test]
    fn label_errors_read_like_kubernetes() {
        let e = LabelSelector::parse("a in").unwrap_err();
        assert_eq!(e.0, "unable to parse requirement: found '', expected:'('");
        let e = LabelSelector::parse("a=b c").unwrap_err();
        assert_eq!(e.0, "found 'c', expected: ',' or 'end of string'");
        let e = LabelSelector::parse("a=b,").unwrap_err();
        assert_eq!(e.0, "found '', expected: identifier after ','");
        let e = LabelSelector::parse("=b").unwrap_err();
        assert_eq!(
            e.0,
            "found '=', expected: !, identifier, or 'end of string'"
        );
        let e = LabelSelector::parse("-bad=x").unwrap_err();
        assert!(e.0.starts_with("unable to parse requirement: key: Invalid value: \"-bad\""));
        let e = LabelSelector::parse("a=-x").unwrap_err();
        assert!(
            e.0.starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-x\""),
            "{}",
            e.0
        );
        assert!(LabelSelector::parse("a>x").is_err());
        assert!(LabelSelector::parse("Example.com/a=b").is_err());
        assert!(LabelSelector::parse(&format!("{}=b", "a".repeat(64))).is_err());
    }

    #[test]
    fn from_json_match_labels_and_expressions() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(s.matches(&labels(json!({"app": "web", "env": "prod"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod", "canary": "1"}))));
        assert!(!s.matches(&labels(json!({"app": "db", "env": "prod"}))));
        let e = LabelSelector::from_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Maybe"}]
        }))
        .unwrap_err();
        assert_eq!(e.0, "\"Maybe\" is not a valid label selector operator");
        assert!(
            LabelSelector::from_json(&json!({
                "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
            }))
            .is_err()
        );
        assert!(LabelSelector::from_json(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn field_selectors_parse_match_and_escape() {
        let s = FieldSelector::parse("metadata.name=a\\,b\\=c\\\\,status.phase!=Running").unwrap();
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            vec!["metadata.name", "status.phase"]
        );
        assert_eq!(s.exact("metadata.name"), Some("a,b=c\\"));
        let get = |phase: &'static str| {
            move |f: &str| match f {
                "metadata.name" => Some("a,b=c\\".to_owned()),
                "status.phase" => Some(phase.to_owned()),
                _ => None,
            }
        };
        assert!(s.matches(get("Pending")));
        assert!(!s.matches(get("Running")));
        assert_eq!(
            s.to_string(),
            "metadata.name=a\\,b\\=c\\\\,status.phase!=Running"
        );
        assert_eq!(FieldSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn field_missing_reads_as_empty_and_double_equals() {
        let s = FieldSelector::parse("spec.nodeName==").unwrap();
        assert!(s.matches(|_| None));
        assert!(!s.matches(|_| Some("node-1".into())));
        let s = FieldSelector::parse("spec.nodeName!=").unwrap();
        assert!(!s.matches(|_| None));
        assert!(FieldSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn field_errors() {
        let e = FieldSelector::parse("metadata.name").unwrap_err();
        assert_eq!(
            e.0,
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert!(
            FieldSelector::parse("a=b\\x")
                .unwrap_err()
                .0
                .contains("invalid escape sequence")
        );
        assert!(
            FieldSelector::parse("a=b=c")
                .unwrap_err()
                .0
                .contains("unescaped")
        );
    }
}
