//! The real IPVS socket (generic netlink) and the dummy interface holding
//! the virtual addresses (through `ip`).

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};

use super::message::{self, Request};
use super::{IpvsSocket, VirtualAddresses};

/// A generic-netlink socket bound to the kernel's IPVS family.
pub struct NetlinkIpvs {
    socket: Socket,
    family: u16,
    seq: u32,
}

fn parse_error(e: message::ParseError) -> io::Error {
    match e {
        message::ParseError::Errno(errno) => io::Error::from_raw_os_error(-errno),
        other => io::Error::other(other.to_string()),
    }
}

impl NetlinkIpvs {
    /// Opens the socket and resolves the IPVS family (fails where the kernel has no IPVS).
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        socket.send(&message::get_family(1), 0)?;
        let (reply, _) = socket.recv_from_full()?;
        let family = message::parse_family_id(&reply).map_err(parse_error)?;
        Ok(Self {
            socket,
            family,
            seq: 1,
        })
    }
}

impl IpvsSocket for NetlinkIpvs {
    fn send(&mut self, request: &Request) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        self.socket
            .send(&message::encode(request, self.family, self.seq), 0)?;
        let (reply, _) = self.socket.recv_from_full()?;
        match message::parse_ack(&reply) {
            // Deleting what is already gone is done.
            Err(message::ParseError::Errno(errno))
                if matches!(request, Request::DelService(_) | Request::DelDest(..))
                    && (-errno == 2 || -errno == 3) =>
            {
                Ok(())
            }
            other => other.map_err(parse_error),
        }
    }
}

/// The dummy interface `kerno-ipvs0` with exactly the virtual addresses, via `ip`.
pub struct DummyInterface {
    /// The interface's name.
    pub name: String,
}

impl Default for DummyInterface {
    fn default() -> Self {
        Self {
            name: "kerno-ipvs0".into(),
        }
    }
}

fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl VirtualAddresses for DummyInterface {
    fn set(&mut self, addrs: &BTreeSet<Ipv4Addr>) -> io::Result<()> {
        if ip(&["link", "show", &self.name]).is_err() {
            ip(&["link", "add", &self.name, "type", "dummy"])?;
        }
        let listed = ip(&["-4", "-o", "addr", "show", "dev", &self.name])?;
        let current: BTreeSet<Ipv4Addr> = listed
            .split_whitespace()
            .filter_map(|w| w.strip_suffix("/32").and_then(|a| a.parse().ok()))
            .collect();
        for gone in current.difference(addrs) {
            ip(&["addr", "del", &format!("{gone}/32"), "dev", &self.name])?;
        }
        for new in addrs.difference(&current) {
            ip(&["addr", "add", &format!("{new}/32"), "dev", &self.name])?;
        }
        Ok(())
    }
}
