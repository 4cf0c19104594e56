//! Who a request comes from, once authenticated.

/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of cluster administrators; bound to `cluster-admin`.
pub const MASTERS_GROUP: &str = "system:masters";

tokio::task_local! {
    /// The user of the request being served, for code below the API layer
    /// (the admission chain) that has no request at hand.
    pub static REQUEST_USER: UserInfo;
}

/// The name of the user of the request being served; empty outside one
/// (the kernel's own writes).
pub fn current_user_name() -> String {
    REQUEST_USER
        .try_with(|u| u.name.clone())
        .unwrap_or_default()
}

/// An authenticated user: what authorization and audit see.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// The user name, e.g. `alice`, `system:plugin:scheduler-default` or
    /// `system:serviceaccount:default:builder`.
    pub name: String,
    /// The groups, always including [`AUTHENTICATED_GROUP`].
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user in `groups` (plus [`AUTHENTICATED_GROUP`]).
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = String>) -> Self {
        let mut groups: Vec<String> = groups.into_iter().collect();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        Self {
            name: name.into(),
            groups,
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `(namespace, name)` when this is a ServiceAccount's user
    /// (`system:serviceaccount:<namespace>:<name>`).
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_is_authenticated_once() {
        let u = UserInfo::new("alice", ["dev".to_owned(), AUTHENTICATED_GROUP.to_owned()]);
        assert_eq!(u.groups, ["dev", AUTHENTICATED_GROUP]);
        assert!(UserInfo::new("bob", []).in_group(AUTHENTICATED_GROUP));
    }

    #[test]
    fn service_account_users_are_recognised() {
        let sa = UserInfo::new("system:serviceaccount:team:builder", []);
        assert_eq!(sa.service_account(), Some(("team", "builder")));
        assert_eq!(UserInfo::new("alice", []).service_account(), None);
    }
}
