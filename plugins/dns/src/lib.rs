//! Cluster DNS: answers `<service>.<namespace>.svc.<domain>` and the other
//! names of [`records`] over UDP and TCP, from informer caches of Services
//! and EndpointSlices, so answers follow the cluster within a watch event.
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `listen` (default `0.0.0.0:53`),
//! `clusterDomain` (`cluster.local`), `ttl` (5 s), and `serviceIP`: when set,
//! the plugin keeps the Service `kube-dns` in `kube-system` (ports 53/UDP and
//! 53/TCP) at that ClusterIP, the address kubelets write into pods'
//! resolv.conf (`clusterDNS`). `netns` (a network namespace's path) makes it
//! listen inside that namespace while it talks to the kernel from its own,
//! as on a node whose pods cannot reach the kernel's address.

#![warn(missing_docs)]

pub mod message;
pub mod records;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kerno_sdk::informer::{Informer, Store};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Api, KernelClient, ListParams, ObjectKey, PostParams};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use message::{Query, rcode};
use records::{ClusterView, Zone};

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Cache index of slices by `namespace/service`.
const BY_SERVICE: &str = "service";
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The plugin's config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// UDP and TCP address to serve on.
    pub listen: SocketAddr,
    /// The cluster domain.
    pub cluster_domain: String,
    /// TTL of answers, in seconds.
    pub ttl: u32,
    /// The ClusterIP of the `kube-dns` Service this plugin keeps, if any.
    #[serde(rename = "serviceIP")]
    pub service_ip: Option<String>,
    /// Listen inside this network namespace (a path such as `/run/netns/x`).
    pub netns: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 53)),
            cluster_domain: "cluster.local".into(),
            ttl: 5,
            service_ip: None,
            netns: None,
        }
    }
}

/// The informer caches, as the answers' [`ClusterView`].
struct Caches {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
}

impl ClusterView for Caches {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectKey::new(Some(namespace), name))
    }
    fn services(&self) -> Vec<Arc<Service>> {
        self.services.list()
    }
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .by_index(BY_SERVICE, &format!("{namespace}/{service}"))
    }
}

fn slice_service(slice: &EndpointSlice) -> Vec<String> {
    let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .map(|service| vec![format!("{namespace}/{service}")])
        .unwrap_or_default()
}

/// The plugin's work: serves until shutdown.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let cfg: Config = serde_json::from_value(ctx.config.clone())
        .map_err(|e| anyhow::anyhow!("invalid dns config: {e}"))?;
    let services = Informer::builder(
        Api::<Service>::all(ctx.client.clone()),
        ListParams::default(),
    )
    .spawn();
    let slices = Informer::builder(
        Api::<EndpointSlice>::all(ctx.client.clone()),
        ListParams::default(),
    )
    .index(BY_SERVICE, slice_service)
    .spawn();
    let (udp, tcp) = bind(cfg.listen, cfg.netns.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    if let Some(ip) = cfg.service_ip.clone() {
        tokio::spawn(keep_service(ctx.client.clone(), ip));
    }
    services.store().wait_until_ready().await;
    slices.store().wait_until_ready().await;
    let server = Arc::new(Server {
        zone: Zone {
            domain: cfg
                .cluster_domain
                .trim_end_matches('.')
                .to_ascii_lowercase(),
            ttl: cfg.ttl,
        },
        caches: Caches {
            services: services.store(),
            slices: slices.store(),
        },
    });
    ctx.health.set_serving(format!(
        "answering for {} on {}",
        server.zone.domain, cfg.listen
    ));
    tracing::info!(listen = %cfg.listen, domain = %server.zone.domain, "serving cluster DNS");
    tokio::select! {
        () = serve_udp(server.clone(), udp) => {}
        () = serve_tcp(server, tcp) => {}
        _ = ctx.shutdown.wait() => {}
    }
    drop((services, slices));
    Ok(())
}

/// Binds the UDP socket and TCP listener, inside `netns` when given.
async fn bind(
    listen: SocketAddr,
    netns: Option<std::path::PathBuf>,
) -> std::io::Result<(UdpSocket, TcpListener)> {
    let Some(path) = netns else {
        return Ok((
            UdpSocket::bind(listen).await?,
            TcpListener::bind(listen).await?,
        ));
    };
    let (udp, tcp) = kerno_sdk::netns::in_network_namespace(path, move || {
        let udp = std::net::UdpSocket::bind(listen)?;
        let tcp = std::net::TcpListener::bind(listen)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok((udp, tcp))
    })
    .await?;
    Ok((UdpSocket::from_std(udp)?, TcpListener::from_std(tcp)?))
}

struct Server {
    zone: Zone,
    caches: Caches,
}

impl Server {
    /// The response bytes for one request; `udp` limits its size.
    fn respond(&self, request: &[u8], udp: bool) -> Vec<u8> {
        let query: Query = match message::parse_query(request) {
            Ok(q) => q,
            Err(e) => {
                tracing::debug!(error = %e, "malformed query");
                return message::write_error(request, rcode::FORMERR);
            }
        };
        if query.opcode != 0 {
            return message::write_error(request, rcode::NOTIMP);
        }
        let answer = self.zone.answer(&self.caches, &query.name, query.qtype);
        message::write_response(&query, &answer, udp.then_some(query.udp_size))
    }
}

async fn serve_udp(server: Arc<Server>, socket: UdpSocket) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let response = server.respond(&buffer[..len], true);
        if let Err(e) = socket.send_to(&response, peer).await {
            tracing::debug!(error = %e, %peer, "udp send failed");
        }
    }
}

async fn serve_tcp(server: Arc<Server>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(tcp_connection(server.clone(), stream));
            }
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Length-prefixed messages (RFC 1035 4.2.2), several per connection.
async fn tcp_connection(server: Arc<Server>, mut stream: TcpStream) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut request = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let response = server.respond(&request, false);
        let mut framed = (response.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&response);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Keeps the `kube-dns` Service at `ip`, creating it when missing.
async fn keep_service(client: KernelClient, ip: String) {
    let api: Api<Service> = Api::namespaced(client, "kube-system");
    let service: Service = match serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {
            "clusterIP": ip,
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}
            ]
        }
    })) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "the kube-dns Service is not valid");
            return;
        }
    };
    loop {
        match api.get_opt("kube-dns").await {
            Ok(Some(_)) => {}
            Ok(None) => match api.create(&PostParams::default(), &service).await {
                Ok(_) => tracing::info!(%ip, "created Service kube-system/kube-dns"),
                Err(e) => tracing::warn!(error = %e, "cannot create Service kube-system/kube-dns"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot read Service kube-system/kube-dns"),
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}
