//! Matching labels against label selectors and node selector terms.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Labels of an object (empty when it has none).
pub type Labels = BTreeMap<String, String>;

fn requirement(labels: &Labels, key: &str, op: &str, values: &[String]) -> bool {
    let value = labels.get(key);
    match op {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// Whether `labels` match a label selector; an empty selector matches
/// everything (callers treat a missing selector as matching nothing).
pub fn matches_selector(selector: &LabelSelector, labels: &Labels) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|e: &LabelSelectorRequirement| {
                requirement(
                    labels,
                    &e.key,
                    &e.operator,
                    e.values.as_deref().unwrap_or(&[]),
                )
            })
}

fn node_requirement(labels: &Labels, r: &NodeSelectorRequirement) -> bool {
    requirement(
        labels,
        &r.key,
        &r.operator,
        r.values.as_deref().unwrap_or(&[]),
    )
}

/// Whether node `labels` (and `name`, for `matchFields`) match a term; an
/// empty term matches nothing, as in Kubernetes.
pub fn matches_node_term(term: &NodeSelectorTerm, labels: &Labels, name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name_labels = Labels::from([("metadata.name".to_owned(), name.to_owned())]);
    exprs.iter().all(|r| node_requirement(labels, r))
        && fields.iter().all(|r| node_requirement(&name_labels, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selector_operators() {
        let l = labels(&[("app", "web"), ("gen", "5")]);
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let sel = |r: LabelSelectorRequirement| LabelSelector {
            match_expressions: Some(vec![r]),
            match_labels: None,
        };
        assert!(matches_selector(&sel(req("app", "In", &["web", "db"])), &l));
        assert!(!matches_selector(&sel(req("app", "NotIn", &["web"])), &l));
        assert!(matches_selector(&sel(req("zone", "DoesNotExist", &[])), &l));
        assert!(requirement(&l, "gen", "Gt", &["4".into()]));
        assert!(!requirement(&l, "gen", "Lt", &["4".into()]));
    }

    #[test]
    fn empty_node_term_matches_nothing() {
        assert!(!matches_node_term(
            &NodeSelectorTerm::default(),
            &labels(&[]),
            "n"
        ));
    }
}
