//! Two replicas of the example controller against a real kernel: only the
//! Lease holder reconciles, and killing it hands over within the Lease duration.

mod harness;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use harness::{Kernel, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kerno_example_controller::{LEASE_NAME, MIRROR_LABEL, MIRROR_OF_LABEL};
use kerno_sdk::plugin::Handshake;
use kerno_sdk::{Api, KernelClient, Patch, PatchParams, PostParams};

/// One replica: the process, its pid and where its log goes.
struct Replica {
    child: Child,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(kernel: &Kernel, name: &str, logs: &std::path::Path) -> Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerno-example-controller"));
        kernel.plugin_env(&mut cmd, name);
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        let mut child = cmd.spawn().context("spawning the example")?;
        // The first stdout line is the handshake.
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let handshake: Handshake = line.parse()?;
        assert_eq!(handshake.protocol_version, 1);
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn identity_prefix(&self, name: &str) -> String {
        format!("{name}-{}", self.child.id())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_reconciles_and_a_killed_holder_hands_over() -> Result<()> {
    let kernel = Kernel::up()?;
    let client = KernelClient::connect(&kernel.client_config()?).await?;
    let logs = tempfile::tempdir()?;
    let mut replicas = [
        Replica::start(&kernel, "mirror-1", logs.path())?,
        Replica::start(&kernel, "mirror-2", logs.path())?,
    ];

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut source = ConfigMap::default();
    source.metadata.name = Some("settings".into());
    source.metadata.labels = Some(BTreeMap::from([(
        MIRROR_LABEL.to_owned(),
        "true".to_owned(),
    )]));
    source.data = Some(BTreeMap::from([("color".to_owned(), "blue".to_owned())]));
    cms.create(&PostParams::default(), &source).await?;
    // An unlabelled ConfigMap is left alone.
    let mut plain = ConfigMap::default();
    plain.metadata.name = Some("plain".into());
    cms.create(&PostParams::default(), &plain).await?;

    let mirror = eventually("the mirror", Duration::from_secs(30), || {
        let cms = cms.clone();
        async move { cms.get_opt("settings-mirror").await.ok().flatten() }
    })
    .await?;
    assert_eq!(
        mirror
            .data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        mirror
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MIRROR_OF_LABEL))
            .map(String::as_str),
        Some("settings")
    );
    assert!(cms.get_opt("plain-mirror").await?.is_none());

    // Exactly one replica holds the lease, and only it wrote.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = leases
        .get(LEASE_NAME)
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .context("lease holder")?;
    let names = ["mirror-1", "mirror-2"];
    let leader = (0..2)
        .find(|i| holder == replicas[*i].identity_prefix(names[*i]))
        .with_context(|| format!("holder {holder} is neither replica"))?;
    let standby = 1 - leader;
    assert!(
        replicas[leader].log().contains("created mirror"),
        "{}",
        replicas[leader].log()
    );
    let standby_log = replicas[standby].log();
    assert!(
        !standby_log.contains("created mirror") && !standby_log.contains("updated mirror"),
        "standby acted: {standby_log}"
    );

    // Kill the holder without letting it release the lease.
    replicas[leader].child.kill()?;
    replicas[leader].child.wait()?;
    let killed_at = Instant::now();
    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"color": "green"}})),
    )
    .await?;
    eventually(
        "the standby to update the mirror",
        Duration::from_secs(40),
        || {
            let cms = cms.clone();
            async move {
                let mirror = cms.get_opt("settings-mirror").await.ok().flatten()?;
                (mirror.data?.get("color")? == "green").then_some(())
            }
        },
    )
    .await?;
    let handover = killed_at.elapsed();
    // Lease duration 15 s, plus up to one retry period (2 s + jitter) and slack.
    assert!(
        handover <= Duration::from_secs(20),
        "handover took {handover:?}"
    );
    let new_holder = leases
        .get(LEASE_NAME)
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .context("lease holder")?;
    assert_eq!(
        new_holder,
        replicas[standby].identity_prefix(names[standby])
    );
    assert!(
        replicas[standby].log().contains("updated mirror"),
        "{}",
        replicas[standby].log()
    );
    Ok(())
}
