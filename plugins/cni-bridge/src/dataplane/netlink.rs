//! The real datapath over rtnetlink.
//!
//! The driver runs in the node's network namespace and keeps one netlink
//! connection there. To configure a pod's namespace it starts a short-lived
//! thread that enters that namespace (`setns` affects only the calling
//! thread), opens a netlink socket there (a socket stays bound to the
//! namespace it was created in) and runs the changes on its own runtime.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteProtocol};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::{Dataplane, DataplaneError, NodeRoute, PodLink};

/// The routing protocol number marking routes this driver installed, so
/// SyncRoutes removes only its own stale routes.
pub const ROUTE_PROTOCOL: u8 = 161;

/// The datapath of the namespace the driver runs in.
pub struct NetlinkDataplane {
    handle: Handle,
}

impl NetlinkDataplane {
    /// Opens a netlink connection in the current namespace; call inside a
    /// tokio runtime (the connection runs as a task).
    pub fn connect() -> Result<Self, DataplaneError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| DataplaneError::Io {
                path: PathBuf::from("netlink socket"),
                source,
            })?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }
}

/// Turns on IPv4 forwarding in the namespace the process runs in.
pub fn enable_ip_forward() -> Result<(), DataplaneError> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    std::fs::write(path, b"1").map_err(|source| DataplaneError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> DataplaneError {
    let op = op.into();
    move |source| DataplaneError::Netlink { op, source }
}

fn errno_of(e: &rtnetlink::Error) -> Option<nix::errno::Errno> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => {
            msg.code.map(|c| nix::errno::Errno::from_raw(-c.get()))
        }
        _ => None,
    }
}

/// Treats "already there" as success.
fn ignore_exists(r: Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error> {
    match r {
        Err(e) if errno_of(&e) == Some(nix::errno::Errno::EEXIST) => Ok(()),
        r => r,
    }
}

/// Treats "already gone" as success.
fn ignore_missing(r: Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error> {
    match r {
        Err(e)
            if matches!(
                errno_of(&e),
                Some(nix::errno::Errno::ENODEV | nix::errno::Errno::ESRCH)
            ) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// The index of the link `name`, `None` when there is none.
async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, DataplaneError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno_of(&e) == Some(nix::errno::Errno::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("get link {name}"))(e)),
    }
}

async fn set_up(handle: &Handle, index: u32, what: &str) -> Result<(), DataplaneError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("set {what} up")))
}

async fn add_address(
    handle: &Handle,
    index: u32,
    address: Ipv4Net,
    what: &str,
) -> Result<(), DataplaneError> {
    ignore_exists(
        handle
            .address()
            .add(index, IpAddr::V4(address.addr()), address.prefix_len())
            .execute()
            .await,
    )
    .map_err(nl(format!("add address {address} to {what}")))
}

/// Runs `work` with a netlink handle of the namespace at `path`, on a thread
/// that entered it.
async fn in_netns<T, F, Fut>(path: &Path, work: F) -> Result<T, DataplaneError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, DataplaneError>>,
{
    let netns_err = |reason: String| DataplaneError::Netns {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| netns_err(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let err = |reason: String| DataplaneError::Netns {
                path: owned_path.clone(),
                reason,
            };
            let result = (|| {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| err(format!("setns: {e}")))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| err(format!("runtime: {e}")))?;
                runtime.block_on(async {
                    let (connection, handle, _) = rtnetlink::new_connection()
                        .map_err(|e| err(format!("netlink socket: {e}")))?;
                    tokio::spawn(connection);
                    work(handle).await
                })
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| netns_err(format!("thread: {e}")))?;
    rx.await
        .map_err(|_| netns_err("the namespace thread died".into()))?
}

/// Inside the pod's namespace: lo up, the address on the pod's interface,
/// the interface up, the default route via the gateway.
async fn configure_pod_side(
    handle: Handle,
    interface: String,
    address: Ipv4Net,
    gateway: Ipv4Addr,
) -> Result<(), DataplaneError> {
    if let Some(lo) = link_index(&handle, "lo").await? {
        set_up(&handle, lo, "lo").await?;
    }
    let index = link_index(&handle, &interface)
        .await?
        .ok_or_else(|| DataplaneError::LinkNotFound(interface.clone()))?;
    add_address(&handle, index, address, &interface).await?;
    set_up(&handle, index, &interface).await?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(nl(format!("default route via {gateway}")))
}

#[async_trait::async_trait]
impl Dataplane for NetlinkDataplane {
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Net,
        mtu: Option<u32>,
    ) -> Result<(), DataplaneError> {
        let h = &self.handle;
        let index = match link_index(h, bridge).await? {
            Some(i) => i,
            None => {
                let mut builder = LinkBridge::new(bridge);
                if let Some(mtu) = mtu {
                    builder = builder.mtu(mtu);
                }
                ignore_exists(h.link().add(builder.build()).execute().await)
                    .map_err(nl(format!("add bridge {bridge}")))?;
                link_index(h, bridge)
                    .await?
                    .ok_or_else(|| DataplaneError::LinkNotFound(bridge.to_owned()))?
            }
        };
        add_address(h, index, gateway, bridge).await?;
        set_up(h, index, bridge).await
    }

    async fn attach_pod(&self, link: &PodLink) -> Result<(), DataplaneError> {
        let h = &self.handle;
        let bridge = link_index(h, &link.bridge)
            .await?
            .ok_or_else(|| DataplaneError::LinkNotFound(link.bridge.clone()))?;
        let host = match link_index(h, &link.host_veth).await? {
            Some(i) => i,
            None => {
                // A pod end left by an interrupted SetUp would clash by name.
                let interface = link.interface.clone();
                in_netns(&link.netns_path, move |h| async move {
                    if let Some(i) = link_index(&h, &interface).await? {
                        ignore_missing(h.link().del(i).execute().await)
                            .map_err(nl(format!("delete stale {interface}")))?;
                    }
                    Ok(())
                })
                .await?;
                let netns =
                    std::fs::File::open(&link.netns_path).map_err(|e| DataplaneError::Netns {
                        path: link.netns_path.clone(),
                        reason: e.to_string(),
                    })?;
                // The pod end is created directly in the pod's namespace
                // under its final name, so it never clashes in the node's.
                let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
                    .name(link.interface.clone())
                    .setns_by_fd(netns.as_raw_fd());
                let mut veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                    .name(link.host_veth.clone());
                if let Some(mtu) = link.mtu {
                    peer = peer.mtu(mtu);
                    veth = veth.mtu(mtu);
                }
                let veth = veth.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
                h.link()
                    .add(veth.build())
                    .execute()
                    .await
                    .map_err(nl(format!("add veth {}", link.host_veth)))?;
                drop(netns);
                link_index(h, &link.host_veth)
                    .await?
                    .ok_or_else(|| DataplaneError::LinkNotFound(link.host_veth.clone()))?
            }
        };
        h.link()
            .set(
                LinkUnspec::new_with_index(host)
                    .controller(bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(format!("attach {} to {}", link.host_veth, link.bridge)))?;
        h.link()
            .set_port(LinkBridgePort::new(host).hairpin(link.hairpin).build())
            .execute()
            .await
            .map_err(nl(format!("hairpin on {}", link.host_veth)))?;
        let (interface, address, gateway) = (link.interface.clone(), link.address, link.gateway);
        in_netns(&link.netns_path, move |h| {
            configure_pod_side(h, interface, address, gateway)
        })
        .await
    }

    async fn detach_pod(&self, host_veth: &str) -> Result<(), DataplaneError> {
        let h = &self.handle;
        if let Some(index) = link_index(h, host_veth).await? {
            // Deleting one end of a veth pair deletes the other.
            ignore_missing(h.link().del(index).execute().await)
                .map_err(nl(format!("delete {host_veth}")))?;
        }
        Ok(())
    }

    async fn sync_routes(&self, routes: &[NodeRoute]) -> Result<(), DataplaneError> {
        let h = &self.handle;
        let mut installed = Vec::new();
        let mut dump = h
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(route) = dump.try_next().await.map_err(nl("list routes"))? {
            if route.header.protocol != RouteProtocol::Other(ROUTE_PROTOCOL)
                || route.header.table != RouteHeader::RT_TABLE_MAIN
            {
                continue;
            }
            let mut destination = None;
            let mut gateway = None;
            for attribute in &route.attributes {
                match attribute {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = Some(*a),
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
                    _ => {}
                }
            }
            let current = destination.zip(gateway).and_then(|(d, via)| {
                Ipv4Net::new(d, route.header.destination_prefix_length)
                    .ok()
                    .map(|pod_cidr| NodeRoute { pod_cidr, via })
            });
            installed.push((current, route));
        }
        for (current, route) in installed {
            if current.is_some_and(|c| routes.contains(&c)) {
                continue;
            }
            ignore_missing(h.route().del(route).execute().await)
                .map_err(nl(format!("delete stale route {current:?}")))?;
        }
        for route in routes {
            let message = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(route.pod_cidr.network(), route.pod_cidr.prefix_len())
                .gateway(route.via)
                .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                .build();
            h.route()
                .add(message)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("route {} via {}", route.pod_cidr, route.via)))?;
        }
        Ok(())
    }
}
