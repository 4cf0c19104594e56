//! IPVS generic-netlink messages, encoded and parsed by hand with the
//! layouts of `linux/ip_vs.h` (what `ipvsadm`'s libipvs sends), and the
//! generic-netlink controller's family lookup.

use std::net::Ipv4Addr;

use crate::model::Protocol;

/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
const NLM_F_ACK: u16 = 0x4;
/// `NLMSG_ERROR` (also carries the ACK, with error 0).
const NLMSG_ERROR: u16 = 0x2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 0x3;
/// The generic-netlink controller's family id.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
const IPVS_GENL_VERSION: u8 = 1;
const AF_INET: u16 = 2;

/// `IPVS_CMD_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cmd {
    /// `IPVS_CMD_NEW_SERVICE`.
    NewService = 1,
    /// `IPVS_CMD_SET_SERVICE`.
    SetService = 2,
    /// `IPVS_CMD_DEL_SERVICE`.
    DelService = 3,
    /// `IPVS_CMD_NEW_DEST`.
    NewDest = 5,
    /// `IPVS_CMD_DEL_DEST`.
    DelDest = 7,
    /// `IPVS_CMD_FLUSH`.
    Flush = 17,
}

/// `IPVS_CMD_ATTR_SERVICE`, `IPVS_CMD_ATTR_DEST`.
const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;
/// `IPVS_SVC_ATTR_*`.
const SVC_ATTR_AF: u16 = 1;
const SVC_ATTR_PROTOCOL: u16 = 2;
const SVC_ATTR_ADDR: u16 = 3;
const SVC_ATTR_PORT: u16 = 4;
const SVC_ATTR_SCHED_NAME: u16 = 6;
const SVC_ATTR_FLAGS: u16 = 7;
const SVC_ATTR_TIMEOUT: u16 = 8;
const SVC_ATTR_NETMASK: u16 = 9;
/// `IPVS_DEST_ATTR_*`.
const DEST_ATTR_ADDR: u16 = 1;
const DEST_ATTR_PORT: u16 = 2;
const DEST_ATTR_FWD_METHOD: u16 = 3;
const DEST_ATTR_WEIGHT: u16 = 4;
const DEST_ATTR_U_THRESH: u16 = 5;
const DEST_ATTR_L_THRESH: u16 = 6;
const DEST_ATTR_ADDR_FAMILY: u16 = 11;
/// `IP_VS_SVC_F_PERSISTENT`.
const SVC_F_PERSISTENT: u32 = 0x1;
/// `IP_VS_CONN_F_MASQ`: NAT to the real server.
const CONN_F_MASQ: u32 = 0;

/// A virtual service's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Its protocol.
    pub protocol: Protocol,
    /// The virtual address (a ClusterIP).
    pub addr: Ipv4Addr,
    /// The virtual port.
    pub port: u16,
}

/// A virtual service: round robin, with persistence for ClientIP affinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualService {
    /// Which service.
    pub key: ServiceKey,
    /// The scheduler (`rr`).
    pub scheduler: String,
    /// Persistence timeout in seconds (`None`: not persistent).
    pub persistence: Option<u32>,
}

/// A real server behind a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealServer {
    /// The endpoint's address.
    pub addr: Ipv4Addr,
    /// The endpoint's port.
    pub port: u16,
}

/// One IPVS request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Create a service.
    NewService(VirtualService),
    /// Change a service's scheduler or persistence.
    SetService(VirtualService),
    /// Remove a service (and its real servers).
    DelService(ServiceKey),
    /// Add a real server (masquerading, weight 1).
    NewDest(ServiceKey, RealServer),
    /// Remove a real server.
    DelDest(ServiceKey, RealServer),
    /// Remove every service.
    Flush,
}

/// Why a netlink reply is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its headers say.
    #[error("truncated netlink message")]
    Truncated,
    /// The kernel answered with an error (a negative errno).
    #[error("netlink error {0}")]
    Errno(i32),
    /// The controller's reply had no family id.
    #[error("the kernel has no generic netlink family {0:?}")]
    NoFamily(&'static str),
}

fn protocol_number(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// Appends one attribute, padded to four bytes.
fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// `union nf_inet_addr`: 16 bytes, the IPv4 address first.
fn inet_addr(ip: Ipv4Addr) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&ip.octets());
    a
}

fn service_key_attrs(out: &mut Vec<u8>, key: &ServiceKey) {
    attr(out, SVC_ATTR_AF, &AF_INET.to_ne_bytes());
    attr(
        out,
        SVC_ATTR_PROTOCOL,
        &protocol_number(key.protocol).to_ne_bytes(),
    );
    attr(out, SVC_ATTR_ADDR, &inet_addr(key.addr));
    attr(out, SVC_ATTR_PORT, &key.port.to_be_bytes());
}

fn service_attrs(key: &ServiceKey, full: Option<&VirtualService>) -> Vec<u8> {
    let mut inner = Vec::new();
    service_key_attrs(&mut inner, key);
    if let Some(svc) = full {
        // The kernel wants all four on NEW/SET, or refuses with EINVAL.
        let mut sched = svc.scheduler.as_bytes().to_vec();
        sched.push(0);
        attr(&mut inner, SVC_ATTR_SCHED_NAME, &sched);
        let flags = if svc.persistence.is_some() {
            SVC_F_PERSISTENT
        } else {
            0
        };
        let mut flags_mask = flags.to_ne_bytes().to_vec();
        flags_mask.extend_from_slice(&u32::MAX.to_ne_bytes());
        attr(&mut inner, SVC_ATTR_FLAGS, &flags_mask);
        attr(
            &mut inner,
            SVC_ATTR_TIMEOUT,
            &svc.persistence.unwrap_or(0).to_ne_bytes(),
        );
        attr(&mut inner, SVC_ATTR_NETMASK, &u32::MAX.to_ne_bytes());
    }
    let mut out = Vec::new();
    attr(&mut out, CMD_ATTR_SERVICE, &inner);
    out
}

fn dest_attrs(dest: &RealServer, full: bool) -> Vec<u8> {
    let mut inner = Vec::new();
    attr(&mut inner, DEST_ATTR_ADDR, &inet_addr(dest.addr));
    attr(&mut inner, DEST_ATTR_PORT, &dest.port.to_be_bytes());
    if full {
        attr(&mut inner, DEST_ATTR_FWD_METHOD, &CONN_F_MASQ.to_ne_bytes());
        attr(&mut inner, DEST_ATTR_WEIGHT, &1u32.to_ne_bytes());
        attr(&mut inner, DEST_ATTR_U_THRESH, &0u32.to_ne_bytes());
        attr(&mut inner, DEST_ATTR_L_THRESH, &0u32.to_ne_bytes());
    }
    attr(&mut inner, DEST_ATTR_ADDR_FAMILY, &AF_INET.to_ne_bytes());
    let mut out = Vec::new();
    attr(&mut out, CMD_ATTR_DEST, &inner);
    out
}

/// A netlink message: header, generic-netlink header, attributes.
fn message(family: u16, flags: u16, seq: u32, cmd: u8, version: u8, attrs: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + 4 + attrs.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(20 + attrs.len());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&family.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    out.push(cmd);
    out.push(version);
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(attrs);
    out
}

/// The controller request resolving the IPVS family's id.
pub fn get_family(seq: u32) -> Vec<u8> {
    let mut name = IPVS_GENL_NAME.as_bytes().to_vec();
    name.push(0);
    let mut attrs = Vec::new();
    attr(&mut attrs, CTRL_ATTR_FAMILY_NAME, &name);
    message(
        GENL_ID_CTRL,
        NLM_F_REQUEST,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
        &attrs,
    )
}

/// Encodes `request` for the IPVS family `family`, asking for an ACK.
pub fn encode(request: &Request, family: u16, seq: u32) -> Vec<u8> {
    let (cmd, attrs) = match request {
        Request::NewService(svc) => (Cmd::NewService, service_attrs(&svc.key, Some(svc))),
        Request::SetService(svc) => (Cmd::SetService, service_attrs(&svc.key, Some(svc))),
        Request::DelService(key) => (Cmd::DelService, service_attrs(key, None)),
        Request::NewDest(key, dest) => {
            let mut a = service_attrs(key, None);
            a.extend(dest_attrs(dest, true));
            (Cmd::NewDest, a)
        }
        Request::DelDest(key, dest) => {
            let mut a = service_attrs(key, None);
            a.extend(dest_attrs(dest, false));
            (Cmd::DelDest, a)
        }
        Request::Flush => (Cmd::Flush, Vec::new()),
    };
    message(
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        cmd as u8,
        IPVS_GENL_VERSION,
        &attrs,
    )
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ParseError> {
    let bytes = b.get(at..at + 2).ok_or(ParseError::Truncated)?;
    Ok(u16::from_ne_bytes([bytes[0], bytes[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ParseError> {
    let bytes = b.get(at..at + 4).ok_or(ParseError::Truncated)?;
    Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The messages in a netlink datagram: `(type, payload)`.
fn messages(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = usize::try_from(u32_at(buf, at)?).map_err(|_| ParseError::Truncated)?;
        if len < 16 || at + len > buf.len() {
            return Err(ParseError::Truncated);
        }
        out.push((u16_at(buf, at + 4)?, &buf[at + 16..at + len]));
        at += (len + 3) & !3;
    }
    Ok(out)
}

/// Checks an `NLMSG_ERROR` reply: error 0 is the ACK.
pub fn parse_ack(buf: &[u8]) -> Result<(), ParseError> {
    for (kind, payload) in messages(buf)? {
        if kind == NLMSG_ERROR {
            let errno = u32_at(payload, 0)?.cast_signed();
            return if errno == 0 {
                Ok(())
            } else {
                Err(ParseError::Errno(errno))
            };
        }
    }
    Err(ParseError::Truncated)
}

/// The family id in the controller's reply to [`get_family`].
pub fn parse_family_id(buf: &[u8]) -> Result<u16, ParseError> {
    for (kind, payload) in messages(buf)? {
        match kind {
            NLMSG_ERROR => {
                let errno = u32_at(payload, 0)?.cast_signed();
                if errno != 0 {
                    return Err(ParseError::Errno(errno));
                }
            }
            GENL_ID_CTRL => {
                // Skip the generic-netlink header, then walk the attributes.
                let mut at = 4;
                while at + 4 <= payload.len() {
                    let len = usize::from(u16_at(payload, at)?);
                    let kind = u16_at(payload, at + 2)? & 0x3fff;
                    if len < 4 || at + len > payload.len() {
                        return Err(ParseError::Truncated);
                    }
                    if kind == CTRL_ATTR_FAMILY_ID {
                        return u16_at(payload, at + 4);
                    }
                    at += (len + 3) & !3;
                }
            }
            NLMSG_DONE => break,
            _ => {}
        }
    }
    Err(ParseError::NoFamily(IPVS_GENL_NAME))
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
