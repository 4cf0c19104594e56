//! The node's heartbeat Lease in `kube-node-lease`, renewed every 10 s.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kerno_sdk::{Api, KernelClient, Patch, PatchParams, PostParams};

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a lease is valid without renewal.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Creates or renews the node's lease.
pub async fn renew(client: &KernelClient, node_name: &str) -> Result<(), kerno_sdk::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(crate::time::now_exact());
    let pp = PatchParams {
        field_manager: Some("kubelet".to_owned()),
        ..PatchParams::default()
    };
    let patch = serde_json::json!({ "spec": { "renewTime": now, "holderIdentity": node_name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS } });
    match leases.patch(node_name, &pp, &Patch::Merge(patch)).await {
        Ok(_) => return Ok(()),
        Err(kerno_sdk::Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    // `kube-node-lease` exists from the kernel's first start; the kubelet's
    // role may not create namespaces.
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(node_name.to_owned()),
            namespace: Some(LEASE_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node_name.to_owned()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    };
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) | Err(kerno_sdk::Error::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
