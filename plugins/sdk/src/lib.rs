//! The kerno plugin SDK: what a plugin author needs so that a controller is
//! little more than its reconcile function.
//!
//! - [`client`]: the kernel's gRPC object API, typed over `k8s-openapi`
//!   ([`Api`]) and dynamic for custom resources ([`DynamicObject`]).
//! - [`informer`]: list+watch with resume and relist on `410 Gone`, feeding a
//!   shared [`informer::Store`] cache of `Arc<K>` with indexes.
//! - [`queue`]: a rate-limited work queue with per-key dedup and back-off.
//! - [`controller`]: the reconcile loop, `reconcile(Arc<K>, Arc<Ctx>) -> Result<Action, E>`.
//! - [`leader`]: leader election on `coordination.k8s.io/v1` Leases.
//! - [`plugin`]: the plugin main (handshake, registration, heartbeat, health,
//!   graceful shutdown) and the environment the kernel's supervisor sets.
//! - [`admission`]: admission plugins, an [`admission::AdmissionHandler`] and its hooks.
//! - [`telemetry`]: tracing to stderr and OpenTelemetry export.

#![warn(missing_docs)]

pub mod admission;
pub mod binding;
pub mod client;
pub mod controller;
pub mod events;
pub mod informer;
pub mod leader;
pub mod netns;
pub mod plugin;
pub mod queue;
pub mod telemetry;

pub use async_trait::async_trait;
pub use client::{
    Api, ApiResource, ClientConfig, DeleteParams, DynamicObject, Error, KernelClient, ListParams,
    ObjectKey, ObjectList, Patch, PatchParams, PostParams, Resource, Result, WatchEvent,
    WatchParams,
};
pub use controller::{Action, Controller};
pub use k8s_openapi;
pub use kerno_proto as proto;
