//! OCI runtime specs of containers and exec processes, built in code.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kerno_proto::runtime::v1 as pb;
use oci_spec::runtime::{
    Capability, LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType, Mount, Process, Spec,
    User,
};

use crate::error::{Error, Result};
use crate::images::RunConfig;

/// The capabilities a container gets (Docker's and containerd's default set).
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything a container's spec is made from.
pub struct ContainerSpecInput<'a> {
    /// The request's config.
    pub config: &'a pb::ContainerConfig,
    /// What the image says.
    pub image: &'a RunConfig,
    /// The sandbox's directory (namespace files, hostname, resolv.conf, hosts).
    pub sandbox_dir: &'a Path,
    /// The pod's hostname.
    pub hostname: &'a str,
    /// Whether the pod uses the node's network (and UTS) namespace.
    pub host_network: bool,
    /// The container's cgroup, relative to each v1 hierarchy root.
    pub cgroups_path: String,
}

/// The command line: Kubernetes' command/args over the image's Entrypoint/Cmd.
pub fn command_line(config: &pb::ContainerConfig, image: &RunConfig) -> Vec<String> {
    let entrypoint = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    match (config.command.is_empty(), config.args.is_empty()) {
        (false, false) => [config.command.clone(), config.args.clone()].concat(),
        (false, true) => config.command.clone(),
        (true, false) => [entrypoint, config.args.clone()].concat(),
        (true, true) => [entrypoint, cmd].concat(),
    }
}

/// The environment: the image's, then the request's (later entries win).
pub fn environment(config: &pb::ContainerConfig, image: &RunConfig) -> Vec<String> {
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    for kv in &config.envs {
        env.retain(|e| e.split('=').next() != Some(kv.key.as_str()));
        env.push(format!("{}={}", kv.key, kv.value));
    }
    env
}

fn capabilities() -> Result<HashSet<Capability>> {
    DEFAULT_CAPABILITIES
        .iter()
        .map(|c| {
            serde_json::from_value(serde_json::Value::String((*c).to_owned()))
                .map_err(|e| Error::Internal(format!("capability {c}: {e}")))
        })
        .collect()
}

fn bind(destination: &str, source: &Path, readonly: bool) -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(destination));
    mount.set_typ(Some("bind".to_owned()));
    mount.set_source(Some(source.to_owned()));
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    options.push(if readonly { "ro" } else { "rw" }.to_owned());
    mount.set_options(Some(options));
    mount
}

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path);
    ns
}

/// A numeric `uid[:gid]` from the image's `User`; names are not resolved.
fn image_user(user: Option<&str>) -> (u32, u32) {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return (0, 0);
    };
    let mut parts = user.splitn(2, ':');
    let uid = parts.next().and_then(|u| u.parse().ok()).unwrap_or(0);
    let gid = parts.next().and_then(|g| g.parse().ok()).unwrap_or(0);
    (uid, gid)
}

/// The process part of a spec, shared by containers and execs.
pub fn process(
    args: Vec<String>,
    env: Vec<String>,
    cwd: &str,
    user: (u32, u32),
    tty: bool,
) -> Result<Process> {
    if args.is_empty() {
        return Err(Error::InvalidArgument(
            "no command: neither the container nor its image gives one".into(),
        ));
    }
    let mut process = Process::default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(if cwd.is_empty() { "/" } else { cwd }));
    process.set_terminal(Some(tty));
    let mut u = User::default();
    u.set_uid(user.0);
    u.set_gid(user.1);
    process.set_user(u);
    let caps = capabilities()?;
    if let Some(mut c) = process.capabilities().clone() {
        c.set_bounding(Some(caps.clone()));
        c.set_effective(Some(caps.clone()));
        c.set_permitted(Some(caps));
        c.set_inheritable(None);
        c.set_ambient(None);
        process.set_capabilities(Some(c));
    }
    process.set_no_new_privileges(Some(false));
    Ok(process)
}

/// The spec of a container in a sandbox.
pub fn container_spec(input: &ContainerSpecInput<'_>) -> Result<Spec> {
    let config = input.config;
    let (mut uid, mut gid) = image_user(input.image.user.as_deref());
    if let Some(u) = config.run_as_user {
        uid = u32::try_from(u).map_err(|_| Error::InvalidArgument(format!("bad uid {u}")))?;
    }
    if let Some(g) = config.run_as_group {
        gid = u32::try_from(g).map_err(|_| Error::InvalidArgument(format!("bad gid {g}")))?;
    }
    let cwd = if config.working_dir.is_empty() {
        input.image.working_dir.clone().unwrap_or_default()
    } else {
        config.working_dir.clone()
    };
    let process = process(
        command_line(config, input.image),
        environment(config, input.image),
        &cwd,
        (uid, gid),
        config.tty,
    )?;

    let mut spec = Spec::default();
    spec.set_process(Some(process));
    spec.set_hostname(Some(input.hostname.to_owned()));
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    // Kubernetes mounts the node's cgroups read-only; keep /sys/fs/cgroup.
    let sandbox = input.sandbox_dir;
    mounts.push(bind("/etc/hostname", &sandbox.join("hostname"), false));
    mounts.push(bind(
        "/etc/resolv.conf",
        &sandbox.join("resolv.conf"),
        false,
    ));
    mounts.push(bind("/etc/hosts", &sandbox.join("hosts"), false));
    for m in &config.mounts {
        if !m.container_path.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "mount path {:?} is not absolute",
                m.container_path
            )));
        }
        if !Path::new(&m.host_path).exists() {
            return Err(Error::InvalidArgument(format!(
                "mount source {} does not exist on the node",
                m.host_path
            )));
        }
        mounts.retain(|existing| existing.destination() != Path::new(&m.container_path));
        mounts.push(bind(&m.container_path, Path::new(&m.host_path), m.readonly));
    }
    spec.set_mounts(Some(mounts));

    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| Error::Internal("default spec has no linux section".into()))?;
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None),
        namespace(LinuxNamespaceType::Mount, None),
        namespace(LinuxNamespaceType::Ipc, Some(sandbox.join("ipc"))),
    ];
    if !input.host_network {
        namespaces.push(namespace(
            LinuxNamespaceType::Network,
            Some(sandbox.join("net")),
        ));
        namespaces.push(namespace(
            LinuxNamespaceType::Uts,
            Some(sandbox.join("uts")),
        ));
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    if let Some(resources) = linux.resources_mut()
        && let Some(r) = &config.resources
    {
        if r.memory_limit_bytes > 0 {
            let mut memory = LinuxMemory::default();
            memory.set_limit(Some(r.memory_limit_bytes));
            resources.set_memory(Some(memory));
        }
        let mut cpu = LinuxCpu::default();
        let mut any_cpu = false;
        if r.cpu_millis_request > 0 {
            // Kubernetes' milli-CPU to shares: 1 CPU = 1024 shares, at least 2.
            let shares = (r.cpu_millis_request as u64 * 1024 / 1000).max(2);
            cpu.set_shares(Some(shares));
            any_cpu = true;
        }
        if r.cpu_millis_limit > 0 {
            cpu.set_period(Some(100_000));
            cpu.set_quota(Some((r.cpu_millis_limit * 100).max(1000)));
            any_cpu = true;
        }
        if any_cpu {
            resources.set_cpu(Some(cpu));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> RunConfig {
        RunConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["default".into()]),
            env: Some(vec!["A=image".into()]),
            working_dir: Some("/work".into()),
            user: Some("1000:1001".into()),
        }
    }

    #[test]
    fn command_and_args_override_like_kubernetes() {
        let img = image();
        let mut c = pb::ContainerConfig::default();
        assert_eq!(command_line(&c, &img), ["/entry", "default"]);
        c.args = vec!["x".into()];
        assert_eq!(command_line(&c, &img), ["/entry", "x"]);
        c.command = vec!["sh".into()];
        assert_eq!(command_line(&c, &img), ["sh", "x"]);
        c.args.clear();
        assert_eq!(command_line(&c, &img), ["sh"]);
    }

    #[test]
    fn request_env_wins_over_the_image() {
        let c = pb::ContainerConfig {
            envs: vec![pb::KeyValue {
                key: "A".into(),
                value: "pod".into(),
            }],
            ..Default::default()
        };
        let env = environment(&c, &image());
        assert!(env.contains(&"A=pod".to_owned()));
        assert!(!env.contains(&"A=image".to_owned()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
    }

    #[test]
    fn spec_joins_the_sandbox_and_sets_limits() {
        let config = pb::ContainerConfig {
            command: vec!["sleep".into(), "1".into()],
            resources: Some(pb::Resources {
                cpu_millis_request: 250,
                cpu_millis_limit: 500,
                memory_limit_bytes: 64 << 20,
            }),
            run_as_user: Some(7),
            ..Default::default()
        };
        let img = image();
        let spec = container_spec(&ContainerSpecInput {
            config: &config,
            image: &img,
            sandbox_dir: Path::new("/state/sandboxes/s1"),
            hostname: "pod-a",
            host_network: false,
            cgroups_path: "/kerno/s1/c1".into(),
        })
        .expect("spec");
        let json = serde_json::to_value(&spec).expect("json");
        let ns = &json["linux"]["namespaces"];
        let net = ns
            .as_array()
            .and_then(|a| a.iter().find(|n| n["type"] == "network"))
            .expect("network namespace");
        assert_eq!(net["path"], "/state/sandboxes/s1/net");
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(json["linux"]["resources"]["cpu"]["shares"], 256);
        assert_eq!(json["process"]["user"]["uid"], 7);
        assert_eq!(json["process"]["user"]["gid"], 1001);
        assert_eq!(json["process"]["cwd"], "/work");
        assert_eq!(json["linux"]["cgroupsPath"], "/kerno/s1/c1");
    }

    #[test]
    fn missing_command_is_invalid() {
        let img = RunConfig::default();
        let config = pb::ContainerConfig::default();
        let err = container_spec(&ContainerSpecInput {
            config: &config,
            image: &img,
            sandbox_dir: Path::new("/s"),
            hostname: "h",
            host_network: true,
            cgroups_path: "/k".into(),
        })
        .expect_err("no command");
        assert!(matches!(err, Error::InvalidArgument(_)));
    }
}
