//! The SDK against a real kernel: typed and dynamic API, error mapping,
//! watches, informers across a kernel restart, and leader election on Leases.

mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use harness::{Kernel, eventually};
use k8s_openapi::api::core::v1::ConfigMap;
use kerno_sdk::informer::{Informer, ListWatch};
use kerno_sdk::leader::{LeaderConfig, LeaderElector, LeaseApi};
use kerno_sdk::{
    Api, ApiResource, DeleteParams, DynamicObject, Error, KernelClient, ListParams, ObjectKey,
    ObjectList, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.labels = Some(BTreeMap::from([("suite".to_owned(), "sdk".to_owned())]));
    cm.data = Some(
        data.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    cm
}

async fn client(kernel: &Kernel) -> Result<KernelClient> {
    Ok(KernelClient::connect(&kernel.client_config()?).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_api_round_trips_and_maps_errors() -> Result<()> {
    let kernel = Kernel::up()?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&kernel).await?, "default");
    let pp = PostParams::default();

    let created = cms.create(&pp, &configmap("a", &[("k", "v1")])).await?;
    let rv1 = created
        .metadata
        .resource_version
        .clone()
        .context("resourceVersion")?;
    assert!(created.metadata.uid.is_some());
    assert!(matches!(
        cms.create(&pp, &configmap("a", &[])).await,
        Err(Error::AlreadyExists(_))
    ));

    let got = cms.get("a").await?;
    assert_eq!(got.data, created.data);
    assert!(matches!(cms.get("nope").await, Err(Error::NotFound(_))));
    assert!(cms.get_opt("nope").await?.is_none());

    // Replace at the current revision works; at a stale one it conflicts.
    let mut next = got.clone();
    next.data = Some(BTreeMap::from([("k".to_owned(), "v2".to_owned())]));
    let replaced = cms.replace("a", &pp, &next).await?;
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    next.metadata.resource_version = Some(rv1);
    assert!(matches!(
        cms.replace("a", &pp, &next).await,
        Err(Error::Conflict(_))
    ));

    let merged = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"m": "1"}})),
        )
        .await?;
    assert_eq!(
        merged
            .data
            .as_ref()
            .and_then(|d| d.get("m"))
            .map(String::as_str),
        Some("1")
    );
    let json_patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Json(serde_json::json!([{"op": "remove", "path": "/data/m"}])),
        )
        .await?;
    assert!(
        json_patched
            .data
            .as_ref()
            .is_some_and(|d| !d.contains_key("m"))
    );

    cms.create(&pp, &configmap("b", &[])).await?;
    let mut other = configmap("c", &[]);
    other.metadata.labels = None;
    cms.create(&pp, &other).await?;
    let listed = cms.list(&ListParams::default().labels("suite=sdk")).await?;
    let mut names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a", "b"]);
    assert!(listed.resource_version.parse::<u64>().is_ok());

    // Paging: one item per page, all items in the end.
    let mut lp = ListParams::default().limit(1);
    let mut paged = Vec::new();
    loop {
        let page = cms.list(&lp).await?;
        assert!(page.items.len() <= 1);
        paged.extend(page.items);
        match page.continue_token {
            Some(token) => lp.continue_token = Some(token),
            None => break,
        }
    }
    assert_eq!(paged.len(), 3);

    let invalid = cms.create(&pp, &configmap("Not_A_Valid_Name", &[])).await;
    assert!(matches!(invalid, Err(Error::Invalid(_))), "{invalid:?}");

    cms.delete("b", &DeleteParams::default()).await?;
    assert!(cms.get_opt("b").await?.is_none());
    assert!(matches!(
        cms.delete("b", &DeleteParams::default()).await,
        Err(Error::NotFound(_))
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_changes_after_a_revision() -> Result<()> {
    let kernel = Kernel::up()?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&kernel).await?, "default");
    let rv = cms.list(&ListParams::default()).await?.resource_version;
    let mut events = cms.watch(&WatchParams::default(), &rv).await?;
    cms.create(&PostParams::default(), &configmap("w", &[("k", "1")]))
        .await?;
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "2"}})),
    )
    .await?;
    cms.delete("w", &DeleteParams::default()).await?;
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .context("watch event in time")?
            .context("watch stream open")??;
        match event {
            WatchEvent::Added(c) => {
                kinds.push(format!("added {}", c.data.unwrap_or_default()["k"]))
            }
            WatchEvent::Modified(c) => {
                kinds.push(format!("modified {}", c.data.unwrap_or_default()["k"]))
            }
            WatchEvent::Deleted(_) => kinds.push("deleted".to_owned()),
            WatchEvent::Bookmark(_) => {}
        }
    }
    assert_eq!(kinds, vec!["added 1", "modified 2", "deleted"]);
    Ok(())
}

/// Counts the lists an informer makes, to tell a resumed watch from a
/// relist, and the watches it opened.
struct Counting {
    api: Api<ConfigMap>,
    lists: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
}

#[async_trait]
impl ListWatch<ConfigMap> for Counting {
    async fn list(&self, lp: &ListParams) -> kerno_sdk::Result<ObjectList<ConfigMap>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.api.list(lp).await
    }

    async fn watch(
        &self,
        wp: &WatchParams,
        rv: &str,
    ) -> kerno_sdk::Result<BoxStream<'static, kerno_sdk::Result<WatchEvent<ConfigMap>>>> {
        let stream = self.api.watch(wp, rv).await?;
        self.watches.fetch_add(1, Ordering::SeqCst);
        Ok(stream)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_follows_changes_and_resumes_across_a_kernel_restart() -> Result<()> {
    let mut kernel = Kernel::up()?;
    // A lazy client reconnects by itself after the kernel restarts.
    let client = KernelClient::connect_lazy(&kernel.client_config()?)?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &configmap("before", &[]))
        .await?;
    let lists = Arc::new(AtomicUsize::new(0));
    let watches = Arc::new(AtomicUsize::new(0));
    let informer = Informer::builder(
        Counting {
            api: cms.clone(),
            lists: lists.clone(),
            watches: watches.clone(),
        },
        ListParams::default().labels("suite=sdk"),
    )
    .index("first-key", |c: &ConfigMap| {
        c.data
            .iter()
            .flat_map(|d| d.keys().next().cloned())
            .collect()
    })
    .spawn();
    let store = informer.store();
    tokio::time::timeout(Duration::from_secs(10), store.wait_until_ready()).await?;
    assert!(
        store
            .get(&ObjectKey::new(Some("default"), "before"))
            .is_some()
    );

    cms.create(&PostParams::default(), &configmap("x", &[("color", "red")]))
        .await?;
    eventually("x in the cache", Duration::from_secs(10), || {
        let found = store.by_index("first-key", "color").len() == 1;
        async move { found.then_some(()) }
    })
    .await?;

    kernel.kill9_and_restart()?;
    // Wait for the watch to be re-opened before writing: the kernel's window
    // after a restart starts at the revision it restarted at, so a write
    // before the resume would (rightly) make the old revision too old.
    eventually("the watch to resume", Duration::from_secs(30), || {
        let resumed = watches.load(Ordering::SeqCst) >= 2;
        async move { resumed.then_some(()) }
    })
    .await?;
    cms.create(&PostParams::default(), &configmap("after", &[]))
        .await?;
    eventually("after in the cache", Duration::from_secs(30), || {
        let found = store
            .get(&ObjectKey::new(Some("default"), "after"))
            .is_some();
        async move { found.then_some(()) }
    })
    .await?;
    // The watch resumed from its revision: no second list.
    assert_eq!(
        lists.load(Ordering::SeqCst),
        1,
        "the informer listed again after the restart"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_on_real_leases() -> Result<()> {
    let kernel = Kernel::up()?;
    let client = client(&kernel).await?;
    let a = LeaderElector::new(
        LeaseApi::new(client.clone(), "default", "sdk-test"),
        LeaderConfig::new("a"),
    );
    let b = LeaderElector::new(
        LeaseApi::new(client.clone(), "default", "sdk-test"),
        LeaderConfig::new("b"),
    );
    assert!(a.try_acquire_or_renew().await?);
    assert!(!b.try_acquire_or_renew().await?);
    assert!(a.try_acquire_or_renew().await?);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client, "default");
    let lease = leases.get("sdk-test").await?;
    let spec = lease.spec.context("lease spec")?;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert!(spec.renew_time.is_some() && spec.acquire_time.is_some());
    a.release().await?;
    assert!(b.try_acquire_or_renew().await?);
    let spec = leases.get("sdk-test").await?.spec.context("lease spec")?;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_api_serves_custom_resources() -> Result<()> {
    let kernel = Kernel::up()?;
    let client = client(&kernel).await?;
    let crds: Api<serde_json::Value> = Api::dynamic(
        client.clone(),
        ApiResource::new(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        ),
        None,
    );
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.kerno.dev"},
        "spec": {
            "group": "example.kerno.dev",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    });
    crds.create(&PostParams::default(), &crd).await?;
    let widget_type = ApiResource::new("example.kerno.dev", "v1", "Widget", "widgets", true);
    let widgets: Api<DynamicObject> = Api::dynamic(client, widget_type.clone(), Some("default"));
    let widget =
        DynamicObject::new(&widget_type, "w1").with("spec", serde_json::json!({"size": 3}));
    // The new type may take a moment to be served.
    let created = eventually("widgets served", Duration::from_secs(10), || {
        let widgets = widgets.clone();
        let widget = widget.clone();
        async move { widgets.create(&PostParams::default(), &widget).await.ok() }
    })
    .await?;
    assert_eq!(created.data["spec"]["size"], 3);
    let got = widgets.get("w1").await?;
    assert_eq!(got.kind, "Widget");
    assert!(got.metadata.uid.is_some());
    Ok(())
}
