//! The IPVS datapath: one virtual service per ClusterIP port (round robin,
//! persistence for ClientIP affinity) with the ready endpoints as
//! masqueraded real servers, programmed over generic netlink, and the
//! ClusterIPs on a dummy interface so the node accepts their packets.
//!
//! Used only where the kernel has IPVS (`/proc/net/ip_vs`) and the config
//! asks for it (`datapath: ipvs`): this datapath serves ClusterIPs; NodePorts
//! and fast rejection of services without endpoints are the nftables
//! datapath's (kube-proxy's IPVS mode borrows iptables for those).
//!
//! It keeps what it programmed in memory and sends only the difference; its
//! first sync after a start flushes IPVS and programs everything, as the
//! kernel's table may hold a previous run's state.

pub mod message;
pub mod socket;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::datapath::{Datapath, Error};
use crate::model::ProxyState;
use message::{RealServer, Request, ServiceKey, VirtualService};

/// Sends IPVS requests to the kernel and waits for each ACK.
pub trait IpvsSocket: Send {
    /// Sends one request; an error when the kernel refused it.
    fn send(&mut self, request: &Request) -> Result<(), std::io::Error>;
}

/// Keeps the virtual addresses on the node (a dummy interface).
pub trait VirtualAddresses: Send {
    /// Makes the interface hold exactly `addrs`.
    fn set(&mut self, addrs: &BTreeSet<Ipv4Addr>) -> Result<(), std::io::Error>;
}

type Programmed = BTreeMap<ServiceKey, (VirtualService, BTreeSet<RealServer>)>;

/// What IPVS should hold for `state`.
pub fn desired(state: &ProxyState) -> Programmed {
    state
        .iter()
        .map(|(name, svc)| {
            let key = ServiceKey {
                protocol: name.protocol,
                addr: svc.cluster_ip,
                port: svc.port,
            };
            let virtual_service = VirtualService {
                key,
                scheduler: "rr".into(),
                persistence: svc.affinity_seconds,
            };
            let dests = svc
                .backends
                .iter()
                .map(|b| RealServer {
                    addr: b.ip,
                    port: b.port,
                })
                .collect();
            (key, (virtual_service, dests))
        })
        .collect()
}

/// The requests moving IPVS from `current` (`None`: unknown, flush first) to `want`.
pub fn plan(current: Option<&Programmed>, want: &Programmed) -> Vec<Request> {
    let mut requests = Vec::new();
    let empty = Programmed::new();
    let current = match current {
        Some(c) => c,
        None => {
            requests.push(Request::Flush);
            &empty
        }
    };
    for key in current.keys().filter(|k| !want.contains_key(k)) {
        requests.push(Request::DelService(*key));
    }
    for (key, (svc, dests)) in want {
        let had = current.get(key);
        match had {
            None => requests.push(Request::NewService(svc.clone())),
            Some((old, _)) if old != svc => requests.push(Request::SetService(svc.clone())),
            Some(_) => {}
        }
        let old_dests = had.map(|(_, d)| d.clone()).unwrap_or_default();
        for d in old_dests.difference(dests) {
            requests.push(Request::DelDest(*key, *d));
        }
        for d in dests.difference(&old_dests) {
            requests.push(Request::NewDest(*key, *d));
        }
    }
    requests
}

/// The IPVS datapath over a socket and an address keeper.
pub struct IpvsDatapath<S, A> {
    io: Arc<Mutex<(S, A)>>,
    programmed: Option<Programmed>,
}

impl<S: IpvsSocket + 'static, A: VirtualAddresses + 'static> IpvsDatapath<S, A> {
    /// A datapath sending through `socket` and keeping addresses with `addrs`.
    pub fn new(socket: S, addrs: A) -> Self {
        Self {
            io: Arc::new(Mutex::new((socket, addrs))),
            programmed: None,
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Ipvs(e)
}

#[async_trait]
impl<S: IpvsSocket + 'static, A: VirtualAddresses + 'static> Datapath for IpvsDatapath<S, A> {
    fn name(&self) -> &'static str {
        "ipvs"
    }

    async fn sync(&mut self, state: &ProxyState) -> Result<(), Error> {
        let want = desired(state);
        let requests = plan(self.programmed.as_ref(), &want);
        let addrs: BTreeSet<Ipv4Addr> = want.keys().map(|k| k.addr).collect();
        // Unknown after a failure: the next sync flushes and starts over.
        self.programmed = None;
        let io = self.io.clone();
        // Netlink calls block: keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut io = io
                .lock()
                .map_err(|_| io_error(std::io::Error::other("ipvs socket poisoned")))?;
            let (socket, addresses) = &mut *io;
            // Addresses first, so a new service's packets are accepted once it exists.
            addresses.set(&addrs).map_err(io_error)?;
            for request in &requests {
                socket.send(request).map_err(io_error)?;
            }
            Ok::<(), Error>(())
        })
        .await
        .map_err(|e| io_error(std::io::Error::other(e.to_string())))??;
        self.programmed = Some(want);
        Ok(())
    }
}

/// Fakes for tests.
pub mod fake {
    use super::*;

    /// Records requests and address sets.
    #[derive(Clone, Default)]
    pub struct Recorder {
        /// Requests sent, in order.
        pub requests: Arc<Mutex<Vec<Request>>>,
        /// Address sets applied, in order.
        pub addresses: Arc<Mutex<Vec<BTreeSet<Ipv4Addr>>>>,
    }

    impl IpvsSocket for Recorder {
        fn send(&mut self, request: &Request) -> Result<(), std::io::Error> {
            if let Ok(mut r) = self.requests.lock() {
                r.push(request.clone());
            }
            Ok(())
        }
    }

    impl VirtualAddresses for Recorder {
        fn set(&mut self, addrs: &BTreeSet<Ipv4Addr>) -> Result<(), std::io::Error> {
            if let Ok(mut a) = self.addresses.lock() {
                a.push(addrs.clone());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{Backend, Protocol, ServicePortName, ServicePortState};

    fn state(backends: &[u8], affinity: Option<u32>) -> ProxyState {
        let mut s = ProxyState::new();
        s.insert(
            ServicePortName {
                namespace: "default".into(),
                name: "web".into(),
                port: String::new(),
                protocol: Protocol::Tcp,
            },
            ServicePortState {
                cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
                port: 80,
                node_port: None,
                affinity_seconds: affinity,
                external_local: false,
                backends: backends
                    .iter()
                    .map(|last| Backend {
                        ip: Ipv4Addr::new(10, 244, 0, *last),
                        port: 8080,
                        local: false,
                    })
                    .collect::<BTreeSet<_>>(),
            },
        );
        s
    }

    #[tokio::test]
    async fn first_sync_flushes_then_later_syncs_send_only_the_difference() {
        let fake = fake::Recorder::default();
        let mut dp = IpvsDatapath::new(fake.clone(), fake.clone());
        dp.sync(&state(&[2, 3], None)).await.expect("sync");
        let key = ServiceKey {
            protocol: Protocol::Tcp,
            addr: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
        };
        let dest = |last| RealServer {
            addr: Ipv4Addr::new(10, 244, 0, last),
            port: 8080,
        };
        let first = fake.requests.lock().expect("requests").clone();
        assert_eq!(first[0], Request::Flush);
        assert!(matches!(&first[1], Request::NewService(s) if s.key == key && s.scheduler == "rr"));
        assert_eq!(
            first[2..],
            [
                Request::NewDest(key, dest(2)),
                Request::NewDest(key, dest(3))
            ]
        );
        fake.requests.lock().expect("requests").clear();

        // An endpoint replaced and affinity turned on.
        dp.sync(&state(&[3, 4], Some(60))).await.expect("sync");
        let second = fake.requests.lock().expect("requests").clone();
        assert!(matches!(&second[0], Request::SetService(s) if s.persistence == Some(60)));
        assert_eq!(
            second[1..],
            [
                Request::DelDest(key, dest(2)),
                Request::NewDest(key, dest(4))
            ]
        );
        fake.requests.lock().expect("requests").clear();

        // Every service gone: deleted, and no address left.
        dp.sync(&ProxyState::new()).await.expect("sync");
        assert_eq!(
            *fake.requests.lock().expect("requests"),
            [Request::DelService(key)]
        );
        let addresses = fake.addresses.lock().expect("addresses").clone();
        assert_eq!(addresses.first().map(BTreeSet::len), Some(1));
        assert_eq!(addresses.last().map(BTreeSet::len), Some(0));
    }
}
