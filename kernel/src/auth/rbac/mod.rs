//! Role-based access control as Kubernetes does it: Roles and ClusterRoles
//! hold rules, bindings grant them to users, groups and ServiceAccounts,
//! everything not granted is denied.
//!
//! - [`rules`]: what one rule allows.
//! - [`policy`]: a compiled snapshot of all RBAC objects and the decision.

pub mod authorizer;
pub mod bootstrap;
pub mod policy;
pub mod review;
pub mod rules;

pub use authorizer::RbacAuthorizer;
pub use policy::{Decision, Policy};
pub use rules::Attributes;
