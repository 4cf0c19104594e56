//! `kerno-test-admission`: an admission plugin on the SDK for the e2e tests.
//! Two hooks on pods: `add-label.test.kerno.dev` (mutating) labels every pod
//! `kerno.dev/admitted-by: grpc-plugin`, and `image-tag.test.kerno.dev`
//! (validating) refuses containers whose image has no tag.
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `timeoutMs` (both hooks' timeout, default
//! 2000), `failurePolicy` (`Fail` or `Ignore`, default `Fail`) and `sleep`
//! (`true`: every review sleeps twice the timeout before answering, so the
//! kernel's timeout and failure policy decide).

use std::time::Duration;

use kerno_sdk::admission::{AdmissionHandler, FailurePolicy, Hook, Review, Verdict};
use kerno_sdk::plugin::{PluginBuilder, PluginContext};
use serde_json::json;

struct TestHooks {
    sleep: Option<Duration>,
}

/// Whether an image reference names a tag or a digest.
fn has_tag(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains(':')
}

#[kerno_sdk::async_trait]
impl AdmissionHandler for TestHooks {
    async fn review(&self, review: Review) -> Verdict {
        if let Some(sleep) = self.sleep {
            tokio::time::sleep(sleep).await;
        }
        match review.hook.as_str() {
            "add-label.test.kerno.dev" => {
                let mut pod = review.object;
                let Some(meta) = pod.get_mut("metadata").and_then(|m| m.as_object_mut()) else {
                    return Verdict::deny("the pod has no metadata");
                };
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kerno.dev/admitted-by".into(), json!("grpc-plugin"));
                }
                Verdict::mutate(&pod)
            }
            "image-tag.test.kerno.dev" => {
                let containers = ["initContainers", "containers"]
                    .iter()
                    .filter_map(|k| review.object["spec"][k].as_array())
                    .flatten();
                for c in containers {
                    let image = c["image"].as_str().unwrap_or_default();
                    if !has_tag(image) {
                        let name = c["name"].as_str().unwrap_or_default();
                        return Verdict::deny(format!(
                            "container {name:?} uses image {image:?} without a tag (grpc plugin)"
                        ));
                    }
                }
                Verdict::allow()
            }
            other => Verdict::deny(format!("unknown hook {other:?}")),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: serde_json::Value = std::env::var("KERNO_PLUGIN_CONFIG")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let timeout = Duration::from_millis(config["timeoutMs"].as_u64().unwrap_or(2000));
    let policy = match config["failurePolicy"].as_str() {
        Some("Ignore") => FailurePolicy::Ignore,
        _ => FailurePolicy::Fail,
    };
    let sleep = config["sleep"]
        .as_bool()
        .unwrap_or(false)
        .then_some(timeout * 2);
    let hooks = vec![
        Hook::mutating("add-label.test.kerno.dev")
            .on(&["CREATE", "UPDATE"], &[""], &["pods"])
            .timeout(timeout)
            .failure_policy(policy),
        Hook::validating("image-tag.test.kerno.dev")
            .on(&["CREATE", "UPDATE"], &[""], &["pods"])
            .timeout(timeout)
            .failure_policy(policy),
    ];
    PluginBuilder::new("admission", "0.0.1")
        .admission(hooks, TestHooks { sleep })
        .run(|ctx: PluginContext| async move {
            ctx.shutdown.wait().await;
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    Ok(())
}
