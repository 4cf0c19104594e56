//! The containerd runtime driver against a private containerd and runc:
//! image import, sandboxes, containers, logs, exec, stop, limits, errors and
//! cleanup, through a direct gRPC client to the driver's socket.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kerno_proto::runtime::v1 as pb;
use kerno_tests::containerd::Containerd;
use kerno_tests::image::build_busybox_image;
use kerno_tests::{Kerno, PluginProcess, eventually};
use pb::runtime_client::RuntimeClient;
use tonic::transport::{Channel, Endpoint};

const DRIVER: &str = "kerno-cri-containerd";

struct Node {
    client: RuntimeClient<Channel>,
    namespace: String,
    state: tempfile::TempDir,
    _driver: PluginProcess,
    _kerno: Kerno,
}

async fn connect(socket: PathBuf) -> RuntimeClient<Channel> {
    let channel = Endpoint::from_static("http://driver").connect_with_connector_lazy(
        tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }),
    );
    RuntimeClient::new(channel)
}

/// A kernel and the driver on `containerd_socket`, in a fresh namespace.
async fn start_node(containerd_socket: &Path, tag: &str) -> Node {
    let kerno = Kerno::up().expect("kerno up");
    let state = tempfile::Builder::new()
        .prefix("kerno-cri-")
        .tempdir()
        .expect("state dir");
    let namespace = format!("kerno-test-{tag}-{}", std::process::id());
    let (driver, socket) = kerno
        .spawn_plugin_on_socket(
            DRIVER,
            "runtime",
            serde_json::json!({
                "address": containerd_socket,
                "namespace": namespace,
                "stateDir": state.path().join("state"),
            }),
            state.path(),
        )
        .expect("the driver binary: build it with cargo build -p kerno-cri-containerd");
    eventually(Duration::from_secs(20), || socket.exists().then_some(()))
        .expect("the driver never created its socket");
    Node {
        client: connect(socket).await,
        namespace,
        state,
        _driver: driver,
        _kerno: kerno,
    }
}

async fn import_busybox(node: &mut Node) {
    let archive = build_busybox_image(node.state.path()).expect("build the busybox image");
    let imported = node
        .client
        .import_image(pb::ImportImageRequest {
            path: archive.display().to_string(),
        })
        .await
        .expect("import")
        .into_inner();
    assert!(
        imported.images.iter().any(|i| i
            .repo_tags
            .iter()
            .any(|t| t == "docker.io/library/busybox:latest")),
        "{imported:?}"
    );
}

fn sandbox_config(name: &str, logs: &Path) -> pb::PodSandboxConfig {
    pb::PodSandboxConfig {
        metadata: Some(pb::PodSandboxMetadata {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("uid-{name}"),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.display().to_string(),
        ..Default::default()
    }
}

fn container(name: &str, command: &[&str]) -> pb::ContainerConfig {
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: "busybox".into(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

async fn run(node: &mut Node, sandbox: &str, config: pb::ContainerConfig) -> String {
    let id = node
        .client
        .create_container(pb::CreateContainerRequest {
            sandbox_id: sandbox.into(),
            config: Some(config),
            sandbox_config: None,
        })
        .await
        .expect("create container")
        .into_inner()
        .container_id;
    node.client
        .start_container(pb::ContainerRef {
            container_id: id.clone(),
        })
        .await
        .expect("start container");
    id
}

async fn status(node: &mut Node, id: &str) -> pb::Container {
    node.client
        .container_status(pb::ContainerRef {
            container_id: id.into(),
        })
        .await
        .expect("container status")
        .into_inner()
}

async fn wait_exited(node: &mut Node, id: &str, patience: Duration) -> pb::Container {
    let deadline = Instant::now() + patience;
    loop {
        let s = status(node, id).await;
        if s.state == pb::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn logs(node: &mut Node, id: &str) -> String {
    let mut stream = node
        .client
        .read_logs(pb::ReadLogsRequest {
            container_id: id.into(),
            tail_lines: -1,
            ..Default::default()
        })
        .await
        .expect("read logs")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.expect("log chunk") {
        out.extend(chunk.data);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn busybox_runs_logs_execs_stops_and_leaves_nothing_behind() {
    let containerd = Containerd::start().expect("private containerd");
    let mut node = start_node(&containerd.socket, "life").await;
    let version = node
        .client
        .version(pb::VersionRequest {})
        .await
        .expect("version")
        .into_inner();
    assert!(
        version.backend_version.contains("containerd"),
        "{version:?}"
    );
    import_busybox(&mut node).await;
    let image = node
        .client
        .image_status(pb::ImageRef {
            image: "busybox".into(),
        })
        .await
        .expect("image status")
        .into_inner()
        .image
        .expect("busybox is present after import");
    assert!(image.size_bytes > 100_000, "{image:?}");

    let logs_dir = node.state.path().join("pods");
    let sandbox = node
        .client
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(sandbox_config("pod-a", &logs_dir)),
        })
        .await
        .expect("run sandbox")
        .into_inner();
    assert!(
        Path::new(&sandbox.netns_path).exists(),
        "netns {}",
        sandbox.netns_path
    );

    // A short container: its output lands in a CRI-format log.
    let echo = run(
        &mut node,
        &sandbox.sandbox_id,
        container("echo", &["echo", "hello"]),
    )
    .await;
    let done = wait_exited(&mut node, &echo, Duration::from_secs(15)).await;
    assert_eq!((done.exit_code, done.reason.as_str()), (0, "Completed"));
    assert_eq!(logs(&mut node, &echo).await, "hello\n");
    let raw = std::fs::read_to_string(logs_dir.join("echo/0.log")).expect("log file");
    assert!(raw.ends_with(" stdout F hello\n"), "{raw:?}");

    // A long-running container with a memory limit and a TERM handler.
    let mut sleeper = container(
        "sleeper",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 3' TERM; echo up; while true; do sleep 0.1; done",
        ],
    );
    sleeper.resources = Some(pb::Resources {
        memory_limit_bytes: 64 << 20,
        ..Default::default()
    });
    let long = run(&mut node, &sandbox.sandbox_id, sleeper).await;
    assert_eq!(
        status(&mut node, &long).await.state,
        pb::ContainerState::ContainerRunning as i32
    );
    let hostname = node
        .client
        .exec_sync(pb::ExecSyncRequest {
            container_id: long.clone(),
            cmd: vec!["hostname".into()],
            timeout_seconds: 10,
        })
        .await
        .expect("exec hostname")
        .into_inner();
    assert_eq!(
        (
            String::from_utf8_lossy(&hostname.stdout).trim(),
            hostname.exit_code
        ),
        ("pod-a", 0)
    );
    let failing = node
        .client
        .exec_sync(pb::ExecSyncRequest {
            container_id: long.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo oops >&2; exit 7".into()],
            timeout_seconds: 10,
        })
        .await
        .expect("exec failing command")
        .into_inner();
    assert_eq!(failing.exit_code, 7);
    assert_eq!(String::from_utf8_lossy(&failing.stderr), "oops\n");

    let limit_file = format!(
        "/sys/fs/cgroup/memory/kerno/{}/{}/{long}/memory.limit_in_bytes",
        node.namespace, sandbox.sandbox_id
    );
    let limit = std::fs::read_to_string(&limit_file).expect("the container's memory cgroup");
    assert_eq!(limit.trim(), (64u64 << 20).to_string(), "{limit_file}");

    let asked = Instant::now();
    node.client
        .stop_container(pb::StopContainerRequest {
            container_id: long.clone(),
            timeout_seconds: 20,
        })
        .await
        .expect("stop");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "SIGTERM was not delivered promptly"
    );
    let stopped = status(&mut node, &long).await;
    assert_eq!((stopped.exit_code, stopped.reason.as_str()), (3, "Error"));
    assert_eq!(logs(&mut node, &long).await, "up\ngot TERM\n");

    // A container that ignores SIGTERM is killed after the grace period.
    let stubborn = run(
        &mut node,
        &sandbox.sandbox_id,
        container(
            "stubborn",
            &["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
        ),
    )
    .await;
    let asked = Instant::now();
    node.client
        .stop_container(pb::StopContainerRequest {
            container_id: stubborn.clone(),
            timeout_seconds: 1,
        })
        .await
        .expect("stop stubborn");
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(status(&mut node, &stubborn).await.exit_code, 137);

    let listed = node
        .client
        .list_containers(pb::ListContainersRequest {
            sandbox_id: sandbox.sandbox_id.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .items;
    assert_eq!(listed.len(), 3, "{listed:?}");

    node.client
        .stop_pod_sandbox(pb::PodSandboxRef {
            sandbox_id: sandbox.sandbox_id.clone(),
        })
        .await
        .expect("stop sandbox");
    node.client
        .remove_pod_sandbox(pb::PodSandboxRef {
            sandbox_id: sandbox.sandbox_id.clone(),
        })
        .await
        .expect("remove sandbox");
    assert!(
        !Path::new(&sandbox.netns_path).exists(),
        "netns left behind"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mounts")
            .expect("mounts")
            .contains(&sandbox.sandbox_id),
        "a namespace mount was left behind"
    );
    let ns = node.namespace.clone();
    assert_eq!(
        containerd.ids(&ns, "containers").expect("ctr"),
        Vec::<String>::new()
    );
    assert_eq!(
        containerd.ids(&ns, "tasks").expect("ctr"),
        Vec::<String>::new()
    );
    let snapshots = containerd.ids(&ns, "snapshots").expect("ctr");
    for id in [&echo, &long, &stubborn] {
        assert!(!snapshots.contains(id), "snapshot {id} left: {snapshots:?}");
    }
    assert!(
        node.client
            .list_pod_sandbox(pb::ListPodSandboxRequest::default())
            .await
            .expect("list sandboxes")
            .into_inner()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn absent_images_and_unknown_handlers_are_refused_clearly() {
    let containerd = Containerd::start().expect("private containerd");
    let mut node = start_node(&containerd.socket, "errors").await;
    let absent = node
        .client
        .image_status(pb::ImageRef {
            image: "nosuch:1.0".into(),
        })
        .await
        .expect("image status")
        .into_inner();
    assert!(absent.image.is_none());

    let err = node
        .client
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(pb::PodSandboxConfig {
                runtime_handler: "kata".into(),
                ..sandbox_config("pod-b", node.state.path())
            }),
        })
        .await
        .expect_err("unknown handler");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("kata"), "{err:?}");

    let sandbox = node
        .client
        .run_pod_sandbox(pb::RunPodSandboxRequest {
            config: Some(sandbox_config("pod-b", node.state.path())),
        })
        .await
        .expect("run sandbox")
        .into_inner();
    let mut missing = container("app", &["sh"]);
    missing.image = "nosuch:1.0".into();
    let err = node
        .client
        .create_container(pb::CreateContainerRequest {
            sandbox_id: sandbox.sandbox_id.clone(),
            config: Some(missing),
            sandbox_config: None,
        })
        .await
        .expect_err("absent image");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert_eq!(err.message(), "image nosuch:1.0 not present");

    let err = node
        .client
        .container_status(pb::ContainerRef {
            container_id: "does-not-exist".into(),
        })
        .await
        .expect_err("unknown container");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    node.client
        .remove_pod_sandbox(pb::PodSandboxRef {
            sandbox_id: sandbox.sandbox_id,
        })
        .await
        .expect("remove sandbox");
    assert!(!Path::new(&sandbox.netns_path).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_down_is_unavailable() {
    let mut containerd = Containerd::start().expect("private containerd");
    let socket = containerd.socket.clone();
    let mut node = start_node(&socket, "down").await;
    node.client
        .version(pb::VersionRequest {})
        .await
        .expect("version while containerd is up");
    containerd.kill();
    let err = node
        .client
        .version(pb::VersionRequest {})
        .await
        .expect_err("containerd is down");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&format!(
            "containerd is not reachable at {}",
            socket.display()
        )),
        "{err:?}"
    );
    let err = node
        .client
        .list_images(pb::Empty {})
        .await
        .expect_err("containerd is down");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
}
