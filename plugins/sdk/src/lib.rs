//! The kerno plugin SDK: what a plugin author needs so that a controller is
//! little more than its reconcile function. It grows with the plugin runtime.

pub use kerno_proto as proto;
