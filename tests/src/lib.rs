//! Test harness: starts real kerno processes, etcd and kubectl.
