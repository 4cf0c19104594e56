//! Helpers shared by kerno's workload controllers (ReplicaSet, Deployment):
//! label selector matching, controller owner references, pod readiness and
//! availability, and a plugin main that optionally runs under leader election.

#![warn(missing_docs)]

pub mod owner;
pub mod pod;
pub mod run;
pub mod selector;

pub use owner::{controller_of, controller_ref, is_controlled_by};
pub use pod::{is_active, is_available, is_ready, now, until_available};
pub use selector::matches;
