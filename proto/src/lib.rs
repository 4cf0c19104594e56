//! kerno's wire protocols. This crate holds only generated code: the `.proto`
//! files under `proto/` are the source of truth for every language.

/// `kerno.kernel.v1`: the kernel's object API (Get, List, Create, Update,
/// UpdateStatus, Patch, Delete, Watch on any registered resource).
pub mod kernel {
    /// Version 1 of the kernel API.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.kernel.v1");
    }
}

/// `kerno.plugin.v1`: how plugins join a cluster (the kernel's `PluginRegistry`,
/// the `Plugin` service every plugin serves, and the stdout handshake line).
pub mod plugin {
    /// Version 1 of the plugin protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.plugin.v1");
    }
}

/// `kerno.runtime.v1`: the node's container runtime driver (CRI-like), served
/// by `cri-containerd` to the kubelet on a unix socket.
pub mod runtime {
    /// Version 1 of the runtime protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.runtime.v1");
    }
}

/// `kerno.network.v1`: the node's pod network driver (CNI-like), served by
/// `cni-bridge` to the kubelet on a unix socket.
pub mod network {
    /// Version 1 of the network protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.network.v1");
    }
}

/// `kerno.admission.v1`: admission plugins (webhooks over gRPC), served by
/// plugins that registered admission hooks and called by the kernel's chain.
pub mod admission {
    /// Version 1 of the admission protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.admission.v1");
    }
}
