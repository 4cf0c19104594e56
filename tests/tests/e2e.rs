//! The one integration-test binary; each area is a module so it links once.

mod e2e {
    pub mod admission;
    pub mod admission_builtin;
    pub mod admission_plugin;
    pub mod auth;
    pub mod auth_audit;
    pub mod auth_tokens;
    pub mod clients;
    pub mod cluster;
    pub mod controllers;
    pub mod dns;
    pub mod durability;
    pub mod grpc;
    pub mod kubectl;
    pub mod kubelet;
    pub mod malformed;
    pub mod network;
    pub mod node;
    pub mod plugins;
    pub mod protobuf;
    pub mod python_plugin;
    pub mod runtime;
    pub mod scheduler;
    pub mod services;
    pub mod supervisor;
    pub mod traffic;
    pub mod watch;
    pub mod workloads;
}
