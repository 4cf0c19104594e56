//! Cluster DNS (`kerno-dns`) under a real kernel, answering on a loopback
//! port: Services and EndpointSlices made with the real kubectl, queried
//! over UDP and TCP with the plugin's own codec.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::time::Duration;

use kerno_dns::message::{RData, Response, build_query, parse_response, rcode, rtype};
use kerno_tests::{Kerno, eventually};

const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-manual
  namespace: default
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: pg, port: 5432, protocol: TCP}]
endpoints:
- {addresses: [10.244.0.5], hostname: db-0, conditions: {ready: true}}
- {addresses: [10.244.0.6], conditions: {ready: true}}
- {addresses: [10.244.0.7], conditions: {ready: false}}
---
apiVersion: v1
kind: Service
metadata: {name: docs, namespace: default}
spec: {type: ExternalName, externalName: docs.example.invalid}
"#;

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn udp(port: u16, name: &str, qtype: u16) -> Option<Response> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket
        .send_to(&build_query(7, name, qtype), ("127.0.0.1", port))
        .ok()?;
    let mut buffer = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buffer).ok()?;
    parse_response(&buffer[..len]).ok()
}

fn tcp(port: u16, name: &str, qtype: u16) -> Option<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let query = build_query(9, name, qtype);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut response = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut response).ok()?;
    parse_response(&response).ok()
}

fn values(response: &Response) -> Vec<String> {
    let mut out: Vec<String> = response
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(ip) => ip.to_string(),
            RData::Aaaa(ip) => ip.to_string(),
            RData::Cname(n) | RData::Ptr(n) => n.clone(),
            RData::Srv { port, target, .. } => format!("{target}:{port}"),
            RData::Soa { .. } => String::new(),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn cluster_dns_answers_for_services_and_follows_changes() {
    let k = Kerno::up().expect("kerno up");
    let port = free_port();
    let _dns = k
        .spawn_plugin(
            "kerno-dns",
            "dns",
            serde_json::json!({"listen": format!("127.0.0.1:{port}"), "serviceIP": "10.96.0.10"}),
        )
        .expect("kerno-dns (cargo build -p kerno-dns)");
    k.kubectl_stdin(&["apply", "-f", "-"], Some(OBJECTS));

    let web = "web.default.svc.cluster.local";
    let a = eventually(Duration::from_secs(30), || {
        udp(port, web, rtype::A).filter(|r| !r.answers.is_empty())
    })
    .expect("no A answer for the Service");
    assert_eq!(
        (a.id, a.rcode, values(&a)),
        (7, rcode::NOERROR, vec!["10.96.0.20".to_owned()])
    );
    // The same over TCP; AAAA for an IPv4 Service is an empty NOERROR.
    let over_tcp = tcp(port, web, rtype::A).expect("a TCP answer");
    assert_eq!(values(&over_tcp), vec!["10.96.0.20"]);
    let aaaa = udp(port, web, rtype::AAAA).expect("an AAAA answer");
    assert_eq!((aaaa.rcode, aaaa.answers.len()), (rcode::NOERROR, 0));
    let srv = udp(port, "_http._tcp.web.default.svc.cluster.local", rtype::SRV).expect("SRV");
    assert_eq!(values(&srv), vec!["web.default.svc.cluster.local:80"]);
    let ptr = udp(port, "20.0.96.10.in-addr.arpa", rtype::PTR).expect("PTR");
    assert_eq!(values(&ptr), vec![web]);

    // Headless: the ready endpoints, by the Service's name and by hostname.
    let db = eventually(Duration::from_secs(30), || {
        udp(port, "db.default.svc.cluster.local", rtype::A).filter(|r| r.answers.len() == 2)
    })
    .expect("no answer for the headless Service");
    assert_eq!(values(&db), vec!["10.244.0.5", "10.244.0.6"]);
    let host = udp(port, "db-0.db.default.svc.cluster.local", rtype::A).expect("hostname");
    assert_eq!(values(&host), vec!["10.244.0.5"]);
    let cname = udp(port, "docs.default.svc.cluster.local", rtype::A).expect("CNAME");
    assert_eq!(values(&cname), vec!["docs.example.invalid"]);
    let missing = udp(port, "nope.default.svc.cluster.local", rtype::A).expect("NXDOMAIN");
    assert_eq!(missing.rcode, rcode::NXDOMAIN);
    let outside = udp(port, "example.com", rtype::A).expect("REFUSED");
    assert_eq!(outside.rcode, rcode::REFUSED);

    // Its own Service, at the configured ClusterIP.
    let dns_ip = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&[
            "get",
            "svc",
            "-n",
            "kube-system",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        let ip = String::from_utf8_lossy(&out.stdout).into_owned();
        (!ip.is_empty()).then_some(ip)
    });
    assert_eq!(dns_ip.as_deref(), Some("10.96.0.10"));
    let own = udp(port, "kube-dns.kube-system.svc.cluster.local", rtype::A);
    assert_eq!(
        own.map(|r| values(&r)),
        Some(vec![Ipv4Addr::new(10, 96, 0, 10).to_string()])
    );

    // Deleting the Service removes its name.
    k.kubectl_ok(&["delete", "service", "web"]);
    let gone = eventually(Duration::from_secs(30), || {
        udp(port, web, rtype::A).filter(|r| r.rcode == rcode::NXDOMAIN)
    });
    assert!(gone.is_some(), "the deleted Service still resolves");
    // A garbled packet gets FORMERR and the server keeps answering.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket
        .send_to(
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
            ("127.0.0.1", port),
        )
        .expect("send");
    let mut buffer = [0u8; 512];
    let (len, _) = socket.recv_from(&mut buffer).expect("an error response");
    assert_eq!(
        parse_response(&buffer[..len]).map(|r| r.rcode),
        Ok(rcode::FORMERR)
    );
    assert!(udp(port, "db.default.svc.cluster.local", rtype::A).is_some());
}
