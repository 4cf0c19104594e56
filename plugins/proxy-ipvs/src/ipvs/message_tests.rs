//! Byte layouts as `linux/ip_vs.h` and `linux/genetlink.h` define them
//! (host byte order, little-endian here; ports big-endian), written out by
//! hand so the encoder is checked against the kernel's format, not itself.
#![cfg(target_endian = "little")]

use super::*;

fn web() -> ServiceKey {
    ServiceKey {
        protocol: Protocol::Tcp,
        addr: Ipv4Addr::new(10, 96, 0, 10),
        port: 80,
    }
}

/// nlmsghdr + genlmsghdr for IPVS family 0x1c, REQUEST|ACK, seq 7.
fn header(total: u8, cmd: u8) -> Vec<u8> {
    vec![
        total, 0, 0, 0, // nlmsg_len
        0x1c, 0, // nlmsg_type: the family id
        0x05, 0, // NLM_F_REQUEST | NLM_F_ACK
        7, 0, 0, 0, // seq
        0, 0, 0, 0, // pid
        cmd, 1, 0, 0, // genl cmd, IPVS_GENL_VERSION, reserved
    ]
}

fn service_key_bytes() -> Vec<u8> {
    vec![
        6, 0, 1, 0, 2, 0, 0, 0, // IPVS_SVC_ATTR_AF = AF_INET (u16, padded)
        6, 0, 2, 0, 6, 0, 0, 0, // IPVS_SVC_ATTR_PROTOCOL = IPPROTO_TCP
        20, 0, 3, 0, 10, 96, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR: nf_inet_addr
        6, 0, 4, 0, 0, 80, 0, 0, // IPVS_SVC_ATTR_PORT, big-endian 80
    ]
}

#[test]
fn new_service_carries_every_attribute_the_kernel_requires() {
    let svc = VirtualService {
        key: web(),
        scheduler: "rr".into(),
        persistence: Some(600),
    };
    let got = encode(&Request::NewService(svc), 0x1c, 7);
    let mut inner = service_key_bytes();
    inner.extend([
        7, 0, 6, 0, b'r', b'r', 0, 0, // IPVS_SVC_ATTR_SCHED_NAME "rr\0", padded
        12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS {PERSISTENT, mask ~0}
        8, 0, 8, 0, 0x58, 0x02, 0, 0, // IPVS_SVC_ATTR_TIMEOUT = 600
        8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff, // IPVS_SVC_ATTR_NETMASK
    ]);
    let mut want = header(0, 1);
    want.extend([u8::try_from(inner.len() + 4).expect("len"), 0, 1, 0]); // IPVS_CMD_ATTR_SERVICE
    want.extend(inner);
    want[0] = u8::try_from(want.len()).expect("len");
    assert_eq!(got, want);
}

#[test]
fn new_dest_names_the_service_then_the_masqueraded_real_server() {
    let dest = RealServer {
        addr: Ipv4Addr::new(10, 244, 0, 2),
        port: 8080,
    };
    let got = encode(&Request::NewDest(web(), dest), 0x1c, 7);
    let svc = service_key_bytes();
    let dest_inner: Vec<u8> = vec![
        20, 0, 1, 0, 10, 244, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // IPVS_DEST_ATTR_ADDR
        6, 0, 2, 0, 0x1f, 0x90, 0, 0, // IPVS_DEST_ATTR_PORT 8080 big-endian
        8, 0, 3, 0, 0, 0, 0, 0, // FWD_METHOD = IP_VS_CONN_F_MASQ
        8, 0, 4, 0, 1, 0, 0, 0, // WEIGHT = 1
        8, 0, 5, 0, 0, 0, 0, 0, // U_THRESH
        8, 0, 6, 0, 0, 0, 0, 0, // L_THRESH
        6, 0, 11, 0, 2, 0, 0, 0, // IPVS_DEST_ATTR_ADDR_FAMILY = AF_INET
    ];
    let mut want = header(0, 5);
    want.extend([u8::try_from(svc.len() + 4).expect("len"), 0, 1, 0]);
    want.extend(svc);
    want.extend([u8::try_from(dest_inner.len() + 4).expect("len"), 0, 2, 0]);
    want.extend(dest_inner);
    want[0] = u8::try_from(want.len()).expect("len");
    assert_eq!(got, want);
}

#[test]
fn del_service_and_flush_carry_only_the_key_or_nothing() {
    let got = encode(&Request::DelService(web()), 0x1c, 7);
    let mut want = header(0, 3);
    want.extend([48, 0, 1, 0]); // nested: 4 + the 44 bytes of the key
    want.extend(service_key_bytes());
    want[0] = u8::try_from(want.len()).expect("len");
    assert_eq!(got, want);
    let mut flush = header(20, 17);
    flush[0] = 20;
    assert_eq!(encode(&Request::Flush, 0x1c, 7), flush);
}

#[test]
fn the_family_lookup_asks_the_controller_for_ipvs() {
    let got = get_family(1);
    let want: Vec<u8> = vec![
        32, 0, 0, 0, 0x10, 0, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, // GENL_ID_CTRL, REQUEST
        3, 1, 0, 0, // CTRL_CMD_GETFAMILY
        9, 0, 2, 0, b'I', b'P', b'V', b'S', 0, 0, 0, 0, // CTRL_ATTR_FAMILY_NAME "IPVS\0"
    ];
    assert_eq!(got, want);
}

#[test]
fn replies_parse_into_family_ids_acks_and_errnos() {
    let reply: Vec<u8> = vec![
        40, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr from the controller
        1, 2, 0, 0, // CTRL_CMD_NEWFAMILY
        9, 0, 2, 0, b'I', b'P', b'V', b'S', 0, 0, 0, 0, // FAMILY_NAME
        6, 0, 1, 0, 0x1c, 0, 0, 0, // FAMILY_ID = 0x1c
    ];
    assert_eq!(parse_family_id(&reply), Ok(0x1c));
    let mut ack: Vec<u8> = vec![36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ack.extend(&header(20, 1)[..16]);
    assert_eq!(parse_ack(&ack), Ok(()));
    let mut refused = ack.clone();
    refused[16..20].copy_from_slice(&(-17i32).to_ne_bytes()); // EEXIST
    assert_eq!(parse_ack(&refused), Err(ParseError::Errno(-17)));
    assert_eq!(parse_family_id(&refused), Err(ParseError::Errno(-17)));
    assert_eq!(parse_ack(&ack[..10]), Err(ParseError::Truncated));
}
