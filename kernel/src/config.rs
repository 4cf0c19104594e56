//! The cluster config file: one YAML document that composes a cluster.
//!
//! ```yaml
//! dataDir: ./kerno-data
//! kernel:
//!   listen: 127.0.0.1:6443
//!   store: { embedded: {} }     # or: { etcd: { endpoints: [http://127.0.0.1:2379] } }
//!   tlsSans: [kerno.example]    # extra names/IPs of the serving certificate
//!   bootstrapTokens: [abcdef.0123456789abcdef]   # for plugins run by hand
//!   pluginGracePeriodSeconds: 5 # Shutdown RPC/SIGTERM to SIGKILL
//! serviceClusterIPRange: 10.96.0.0/12
//! clusterDomain: cluster.local
//! plugins:
//!   scheduler-default: {}
//!   kubelet: { nodeName: node-1 }
//!   my-plugin: { command: [/opt/my-plugin, --flag], config: { any: value } }
//! ```
//!
//! Every field has a default, so an empty file (or none) is a working
//! single-node cluster. Unknown keys are rejected, except inside a plugin's
//! settings, which belong to the plugin. Relative paths in a file are relative
//! to the file's directory; relative paths on the command line to the current one.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./kerno-data";
/// Default listen address of the kernel (HTTPS REST and gRPC on one port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6443";
/// Default etcd endpoint when the etcd store is chosen without endpoints.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";
/// Default range Service cluster IPs are allocated from (as kube-apiserver's).
pub const DEFAULT_SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/12";
/// Default DNS domain of the cluster (as the kubelet's).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Errors of loading and checking the config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML for the config schema.
    #[error("{}: {message}", location(path, *line, *column))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// What is wrong, naming the offending key.
        message: String,
    },
    /// A value is well-formed YAML but not acceptable.
    #[error("{}invalid {field}: {message}", source_prefix(path))]
    Invalid {
        /// The file the value came from; `None` for defaults and CLI overrides.
        path: Option<PathBuf>,
        /// The field, as spelled in the file (`kernel.store.etcd.endpoints`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}

fn source_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The whole cluster configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Where the kernel keeps its store, PKI and kubeconfig.
    pub data_dir: PathBuf,
    /// Settings of the kernel process.
    pub kernel: KernelConfig,
    /// Range Service cluster IPs are allocated from, a CIDR (default `10.96.0.0/12`).
    #[serde(rename = "serviceClusterIPRange")]
    pub service_cluster_ip_range: String,
    /// DNS domain of the cluster (default `cluster.local`): Services resolve as
    /// `<svc>.<ns>.svc.<clusterDomain>`.
    pub cluster_domain: String,
    /// Plugins to run, in file order, keyed by plugin name.
    #[serde(deserialize_with = "deserialize_plugins")]
    pub plugins: Vec<PluginConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            kernel: KernelConfig::default(),
            service_cluster_ip_range: DEFAULT_SERVICE_CLUSTER_IP_RANGE.to_string(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            plugins: Vec::new(),
        }
    }
}

/// Settings of the kernel process.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Address of the one port serving HTTPS REST and gRPC.
    pub listen: SocketAddr,
    /// The store backend.
    pub store: StoreConfig,
    /// Extra subject alternative names (DNS names or IPs) of the serving
    /// certificate, beyond `localhost`, loopback, the `kubernetes.default…`
    /// names and the listen address.
    pub tls_sans: Vec<String>,
    /// Bootstrap tokens for plugins started outside the supervisor:
    /// `<id>.<secret>`, optionally `@<RFC 3339 expiry>`.
    pub bootstrap_tokens: Vec<String>,
    /// Seconds a plugin has to stop after the Shutdown RPC and SIGTERM
    /// before the supervisor kills it (default 5).
    pub plugin_grace_period_seconds: u64,
    /// The admission chain's in-process modules.
    pub admission: AdmissionConfig,
    /// A static token file in Kubernetes' CSV format
    /// (`token,user,uid,"group1,group2"`); `--token-auth-file` overrides it.
    pub token_auth_file: Option<PathBuf>,
    /// Where to append the audit log (JSON lines); `--audit-log` overrides it.
    pub audit_log: Option<PathBuf>,
}

/// `kernel.admission`: shared libraries loaded at start (the C ABI of
/// `admission-ffi`), run on every write after the built-in modules.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Paths of the modules, in order (mutating ones run before validating ones).
    pub modules: Vec<std::path::PathBuf>,
}

/// Default for `kernel.pluginGracePeriodSeconds`.
pub const DEFAULT_PLUGIN_GRACE_PERIOD_SECONDS: u64 = 5;

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            listen: default_listen(),
            store: StoreConfig::default(),
            tls_sans: Vec::new(),
            bootstrap_tokens: Vec::new(),
            plugin_grace_period_seconds: DEFAULT_PLUGIN_GRACE_PERIOD_SECONDS,
            admission: AdmissionConfig::default(),
            token_auth_file: None,
            audit_log: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6443))
}

/// The store backend: `{ embedded: {} }` or `{ etcd: { endpoints: [...] } }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawStoreConfig")]
pub enum StoreConfig {
    /// The embedded database in the data directory.
    Embedded(EmbeddedStoreConfig),
    /// An etcd cluster.
    Etcd(EtcdStoreConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Embedded(EmbeddedStoreConfig {})
    }
}

/// `store:` as written. serde_yaml 0.9 reads enums only from YAML tags
/// (`!etcd`), so the one-key map form is decoded through this struct.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStoreConfig {
    embedded: Option<EmbeddedStoreConfig>,
    etcd: Option<EtcdStoreConfig>,
}

impl TryFrom<RawStoreConfig> for StoreConfig {
    type Error = &'static str;

    fn try_from(raw: RawStoreConfig) -> Result<Self, Self::Error> {
        match (raw.embedded, raw.etcd) {
            (Some(embedded), None) => Ok(StoreConfig::Embedded(embedded)),
            (None, Some(etcd)) => Ok(StoreConfig::Etcd(etcd)),
            _ => Err("store must name exactly one backend: `embedded: {}` or `etcd: {...}`"),
        }
    }
}

impl StoreConfig {
    /// Which backend this is.
    pub fn kind(&self) -> StoreKind {
        match self {
            StoreConfig::Embedded(_) => StoreKind::Embedded,
            StoreConfig::Etcd(_) => StoreKind::Etcd,
        }
    }
}

/// Settings of the embedded store (none yet; it lives in the data directory).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedStoreConfig {}

/// Settings of the etcd store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EtcdStoreConfig {
    /// Client URLs of the etcd members (`http://host:port` or `https://`).
    pub endpoints: Vec<String>,
}

impl Default for EtcdStoreConfig {
    fn default() -> Self {
        EtcdStoreConfig {
            endpoints: vec![DEFAULT_ETCD_ENDPOINT.to_string()],
        }
    }
}

/// A store backend, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The embedded database.
    Embedded,
    /// etcd.
    Etcd,
}

/// One plugin entry of `plugins:`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The plugin's name (the key in `plugins:`), also its `Plugin` object's name.
    pub name: String,
    /// The command to run; `None` means the binary `kerno-<name>` next to
    /// `kerno` or on `PATH`.
    pub command: Option<Vec<String>>,
    /// Whether the supervisor runs it (`enabled: false` keeps the entry but skips it).
    pub enabled: bool,
    /// The plugin's own settings: the `config:` map merged with every other
    /// key of the entry (`kubelet: { nodeName: node-1 }` gives `{nodeName: node-1}`).
    pub config: Map<String, Value>,
}

/// The plugin entry as written; keys besides the reserved ones are the plugin's.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlugin {
    command: Option<Vec<String>>,
    enabled: Option<bool>,
    config: Option<Map<String, Value>>,
    #[serde(flatten)]
    inline: Map<String, Value>,
}

impl RawPlugin {
    fn into_config(self, name: String) -> Result<PluginConfig, String> {
        if !is_dns_label(&name) {
            return Err(format!(
                "plugin name {name:?} must be a DNS label (lower-case letters, digits, '-')"
            ));
        }
        if let Some(command) = &self.command
            && command.first().is_none_or(|c| c.is_empty())
        {
            return Err(format!("plugins.{name}.command must name a program"));
        }
        let mut config = self.config.unwrap_or_default();
        for (key, value) in self.inline {
            if config.contains_key(&key) {
                return Err(format!(
                    "plugins.{name}: key {key:?} is given both inline and under config"
                ));
            }
            config.insert(key, value);
        }
        Ok(PluginConfig {
            name,
            command: self.command,
            enabled: self.enabled.unwrap_or(true),
            config,
        })
    }
}

/// `plugins:` is a map (kept in file order) from name to settings; a plugin
/// with no settings may be written `name:` or `name: {}`.
fn deserialize_plugins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PluginConfig>, D::Error> {
    struct PluginsVisitor;

    impl<'de> Visitor<'de> for PluginsVisitor {
        type Value = Vec<PluginConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map from plugin name to plugin settings")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut plugins: Vec<PluginConfig> = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                let raw: Option<RawPlugin> = map.next_value()?;
                if plugins.iter().any(|p| p.name == name) {
                    return Err(de::Error::custom(format!("duplicate plugin {name:?}")));
                }
                let plugin = raw
                    .unwrap_or_default()
                    .into_config(name)
                    .map_err(de::Error::custom)?;
                plugins.push(plugin);
            }
            Ok(plugins)
        }
    }

    d.deserialize_any(PluginsVisitor)
}

/// Settings given on the command line, which win over the file. The CLI fills
/// this plain struct; `None`/empty means "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--store embedded|etcd`.
    pub store: Option<StoreKind>,
    /// `--etcd-endpoints`; given alone they also select the etcd store.
    pub etcd_endpoints: Vec<String>,
}

impl Config {
    /// Reads, parses and checks the config file at `path`. Errors name the
    /// file and, for syntax and schema errors, the line and column.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|e| parse_error(path, &e))?;
        // Relative paths in a file mean "next to the file", wherever kerno runs from.
        if config.data_dir.is_relative()
            && let Some(dir) = path.parent()
        {
            config.data_dir = dir.join(&config.data_dir);
        }
        if let Some(dir) = path.parent() {
            for file in [
                &mut config.kernel.token_auth_file,
                &mut config.kernel.audit_log,
            ]
            .into_iter()
            .flatten()
            {
                if file.is_relative() {
                    *file = dir.join(&*file);
                }
            }
        }
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Parses config YAML without checking values; an empty document is the default config.
    pub fn parse(text: &str) -> Result<Config, serde_yaml::Error> {
        let blank = text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "---"
        });
        if blank {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text)
    }

    /// The config of `path` (or the defaults without a file) with `overrides`
    /// applied and checked: what the kernel runs with.
    pub fn resolve(path: Option<&Path>, overrides: &Overrides) -> Result<Config> {
        let config = match path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        config.with_overrides(overrides)
    }

    /// Applies command-line `overrides` and checks the result.
    pub fn with_overrides(mut self, overrides: &Overrides) -> Result<Config> {
        if let Some(dir) = &overrides.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(listen) = overrides.listen {
            self.kernel.listen = listen;
        }
        let endpoints = &overrides.etcd_endpoints;
        let kind = match overrides.store {
            Some(kind) => kind,
            None if !endpoints.is_empty() => StoreKind::Etcd,
            None => self.kernel.store.kind(),
        };
        self.kernel.store = match kind {
            StoreKind::Embedded if !endpoints.is_empty() => {
                return Err(invalid(
                    "kernel.store",
                    "etcd endpoints were given but the store is embedded",
                ));
            }
            StoreKind::Embedded => StoreConfig::Embedded(EmbeddedStoreConfig {}),
            StoreKind::Etcd => {
                let mut etcd = match &self.kernel.store {
                    StoreConfig::Etcd(etcd) => etcd.clone(),
                    StoreConfig::Embedded(_) => EtcdStoreConfig::default(),
                };
                if !endpoints.is_empty() {
                    etcd.endpoints = endpoints.clone();
                }
                StoreConfig::Etcd(etcd)
            }
        };
        self.validate()?;
        Ok(self)
    }

    /// Checks values the schema cannot: URLs, CIDRs, names.
    pub fn validate(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("dataDir", "must not be empty"));
        }
        if let StoreConfig::Etcd(etcd) = &self.kernel.store {
            if etcd.endpoints.is_empty() {
                return Err(invalid("kernel.store.etcd.endpoints", "must not be empty"));
            }
            for endpoint in &etcd.endpoints {
                let ok = url::Url::parse(endpoint)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return Err(invalid(
                        "kernel.store.etcd.endpoints",
                        format!("{endpoint:?} is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        for token in &self.kernel.bootstrap_tokens {
            token
                .parse::<crate::auth::tokens::BootstrapToken>()
                .map_err(|e| invalid("kernel.bootstrapTokens", e.to_string()))?;
        }
        check_cidr(&self.service_cluster_ip_range)
            .map_err(|message| invalid("serviceClusterIPRange", message))?;
        let domain_ok = !self.cluster_domain.is_empty()
            && self.cluster_domain.len() <= 253
            && self.cluster_domain.split('.').all(is_dns_label);
        if !domain_ok {
            return Err(invalid(
                "clusterDomain",
                format!("{:?} is not a DNS domain", self.cluster_domain),
            ));
        }
        Ok(())
    }

    /// The plugin entry named `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

impl Error {
    fn in_file(self, file: &Path) -> Error {
        match self {
            Error::Invalid { field, message, .. } => Error::Invalid {
                path: Some(file.to_path_buf()),
                field,
                message,
            },
            other => other,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: None,
        field: field.to_string(),
        message: message.into(),
    }
}

fn parse_error(path: &Path, err: &serde_yaml::Error) -> Error {
    let location = err.location();
    let (line, column) = match &location {
        Some(l) => (Some(l.line()), Some(l.column())),
        None => (None, None),
    };
    let mut message = err.to_string();
    // serde_yaml appends the position; it is already in front, compiler style.
    if let Some(l) = &location {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Checks `a.b.c.d/n` or `v6::/n`.
fn check_cidr(cidr: &str) -> Result<(), String> {
    let bad = || format!("{cidr:?} is not a CIDR such as 10.96.0.0/12");
    let (ip, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = "\
dataDir: ./kerno-data
kernel:
  listen: 127.0.0.1:6443
  store: { embedded: {} }              # or: { etcd: { endpoints: [http://127.0.0.1:2379] } }
plugins:
  scheduler-default: {}
  controller-deployment:
  kubelet: { nodeName: node-1 }
  my-plugin: { command: [/opt/my-plugin, --flag], config: { any: value } }
";

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("kerno.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load_err(text: &str) -> Error {
        let dir = tempfile::tempdir().unwrap();
        Config::load(&write(dir.path(), text)).unwrap_err()
    }

    #[test]
    fn parses_the_architecture_example() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&write(dir.path(), EXAMPLE)).unwrap();
        assert_eq!(config.data_dir, dir.path().join("./kerno-data"));
        assert_eq!(config.kernel.listen, "127.0.0.1:6443".parse().unwrap());
        assert_eq!(
            config.kernel.store,
            StoreConfig::Embedded(EmbeddedStoreConfig {})
        );
        let names: Vec<_> = config.plugins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "scheduler-default",
                "controller-deployment",
                "kubelet",
                "my-plugin"
            ]
        );
        let kubelet = config.plugin("kubelet").unwrap();
        assert_eq!(
            Value::Object(kubelet.config.clone()),
            json!({"nodeName": "node-1"})
        );
        assert_eq!(kubelet.command, None);
        assert!(kubelet.enabled);
        let mine = config.plugin("my-plugin").unwrap();
        assert_eq!(
            mine.command.as_deref(),
            Some(&["/opt/my-plugin".to_string(), "--flag".to_string()][..])
        );
        assert_eq!(Value::Object(mine.config.clone()), json!({"any": "value"}));
        assert!(
            config
                .plugin("controller-deployment")
                .unwrap()
                .config
                .is_empty()
        );
        assert_eq!(config.service_cluster_ip_range, "10.96.0.0/12");
        assert_eq!(config.cluster_domain, "cluster.local");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("# nothing here\n").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.kernel.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.kernel.store.kind(), StoreKind::Embedded);
        let partial = Config::parse("kernel: { listen: '[::1]:7443' }").unwrap();
        assert_eq!(partial.kernel.listen.port(), 7443);
        assert_eq!(partial.kernel.store.kind(), StoreKind::Embedded);
    }

    #[test]
    fn parses_etcd_store_and_extra_fields() {
        let text = "\
kernel:
  store: { etcd: { endpoints: [http://10.0.0.1:2379, https://10.0.0.2:2379] } }
  tlsSans: [kerno.example, 192.0.2.1]
serviceClusterIPRange: 10.100.0.0/16
clusterDomain: example.internal
";
        let config = Config::parse(text).unwrap();
        config.validate().unwrap();
        let StoreConfig::Etcd(etcd) = &config.kernel.store else {
            panic!("expected etcd, got {:?}", config.kernel.store)
        };
        assert_eq!(
            etcd.endpoints,
            ["http://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(config.kernel.tls_sans, ["kerno.example", "192.0.2.1"]);
        assert_eq!(config.service_cluster_ip_range, "10.100.0.0/16");
        assert_eq!(config.cluster_domain, "example.internal");
        let defaulted = Config::parse("kernel: { store: { etcd: {} } }").unwrap();
        assert_eq!(
            defaulted.kernel.store,
            StoreConfig::Etcd(EtcdStoreConfig {
                endpoints: vec![DEFAULT_ETCD_ENDPOINT.into()]
            })
        );
    }

    #[test]
    fn unknown_keys_are_named_with_file_and_line() {
        let err = load_err("dataDir: /tmp/x\nkernel:\n  listen: 127.0.0.1:1\n  lisen: 1\n");
        let Error::Parse { line, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, Some(4));
        assert!(message.contains("unknown field `lisen`"), "{message}");
        let text = err.to_string();
        assert!(text.contains("kerno.yaml:4:"), "{text}");
        assert!(!text.contains(" at line "), "{text}");

        let err = load_err("dataDirectory: x\n").to_string();
        assert!(err.contains("unknown field `dataDirectory`"), "{err}");
        let err = load_err("kernel:\n  store: { embedded: { path: x } }\n").to_string();
        assert!(err.contains("unknown field `path`"), "{err}");
        let err = load_err("kernel:\n  store: { sqlite: {} }\n").to_string();
        assert!(err.contains("sqlite"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let err = load_err("kernel: { listen: nowhere }\n").to_string();
        assert!(err.contains("kerno.yaml:1:"), "{err}");
        let err = load_err("plugins:\n  Bad_Name: {}\n").to_string();
        assert!(err.contains("Bad_Name"), "{err}");
        let err = load_err("plugins:\n  p: { command: [] }\n").to_string();
        assert!(err.contains("command"), "{err}");
        let err = load_err("plugins:\n  p: { a: 1, config: { a: 2 } }\n").to_string();
        assert!(err.contains("both inline and under config"), "{err}");
        let err = load_err("plugins: [a, b]\n").to_string();
        assert!(err.contains("map from plugin name"), "{err}");
        let err = load_err("kernel: { store: { etcd: { endpoints: [localhost] } } }\n");
        assert!(
            matches!(&err, Error::Invalid { field, path: Some(_), .. } if field == "kernel.store.etcd.endpoints"),
            "{err:?}"
        );
        let err = load_err("serviceClusterIPRange: 10.96.0.0/33\n").to_string();
        assert!(err.contains("serviceClusterIPRange"), "{err}");
        assert!(err.contains("kerno.yaml"), "{err}");
        let err = load_err("clusterDomain: Cluster..local\n").to_string();
        assert!(err.contains("clusterDomain"), "{err}");
        let missing = Config::load(Path::new("/nonexistent/kerno.yaml")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/kerno.yaml"));
    }

    #[test]
    fn token_file_and_audit_log_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = "kernel:\n  tokenAuthFile: tokens.csv\n  auditLog: /var/log/kerno/audit.log\n";
        let config = Config::load(&write(dir.path(), text)).unwrap();
        assert_eq!(
            config.kernel.token_auth_file,
            Some(dir.path().join("tokens.csv"))
        );
        assert_eq!(
            config.kernel.audit_log,
            Some(PathBuf::from("/var/log/kerno/audit.log"))
        );
    }

    #[test]
    fn overrides_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), EXAMPLE);
        let overrides = Overrides {
            data_dir: Some("/var/lib/kerno".into()),
            listen: Some("0.0.0.0:7443".parse().unwrap()),
            store: None,
            etcd_endpoints: vec!["http://127.0.0.1:12379".into()],
        };
        let config = Config::resolve(Some(&path), &overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/kerno"));
        assert_eq!(config.kernel.listen.port(), 7443);
        // Endpoints alone select etcd.
        assert_eq!(
            config.kernel.store,
            StoreConfig::Etcd(EtcdStoreConfig {
                endpoints: vec!["http://127.0.0.1:12379".into()]
            })
        );
        assert_eq!(config.plugins.len(), 4);

        let back = config
            .clone()
            .with_overrides(&Overrides {
                store: Some(StoreKind::Embedded),
                ..Overrides::default()
            })
            .unwrap();
        assert_eq!(back.kernel.store.kind(), StoreKind::Embedded);

        let etcd_default = Config::resolve(
            None,
            &Overrides {
                store: Some(StoreKind::Etcd),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(
            etcd_default.kernel.store,
            StoreConfig::Etcd(EtcdStoreConfig::default())
        );

        let conflict = Config::default().with_overrides(&Overrides {
            store: Some(StoreKind::Embedded),
            etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
            ..Overrides::default()
        });
        assert!(matches!(conflict, Err(Error::Invalid { .. })));
        let bad_endpoint = Config::default().with_overrides(&Overrides {
            etcd_endpoints: vec!["ftp://x".into()],
            ..Overrides::default()
        });
        assert!(bad_endpoint.unwrap_err().to_string().contains("ftp://x"));
    }
}
