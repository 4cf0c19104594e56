//! The small part of the DNS wire format (RFC 1035, SRV from RFC 2782, AAAA
//! from RFC 3596) cluster DNS needs: parse a query, write a response.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types answered.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Zone authority (for negative answers).
    pub const SOA: u16 = 6;
    /// Reverse pointer.
    pub const PTR: u16 = 12;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service location.
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Any type.
    pub const ANY: u16 = 255;
}

/// Response codes.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The query could not be parsed.
    pub const FORMERR: u8 = 1;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The server does not answer for this name.
    pub const REFUSED: u8 = 5;
    /// The opcode is not supported.
    pub const NOTIMP: u8 = 4;
}

/// Why a message could not be read.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than its header or its question says.
    #[error("truncated message")]
    Truncated,
    /// A label longer than 63 bytes or a name longer than 255.
    #[error("bad name")]
    BadName,
    /// Not exactly one question.
    #[error("expected one question, got {0}")]
    QuestionCount(u16),
}

/// A parsed query: its id, flags and its one question.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The id to echo.
    pub id: u16,
    /// The opcode (0 is a standard query).
    pub opcode: u8,
    /// Recursion desired, echoed.
    pub recursion_desired: bool,
    /// The name asked for, lower-case, without the trailing dot.
    pub name: String,
    /// The record type asked for.
    pub qtype: u16,
    /// The class (1, IN).
    pub qclass: u16,
    /// The largest UDP response the client takes (512 without EDNS).
    pub udp_size: usize,
    /// The question's bytes as sent, echoed in the response.
    question: Vec<u8>,
}

/// Reads a query.
pub fn parse_query(bytes: &[u8]) -> Result<Query, ParseError> {
    if bytes.len() < 12 {
        return Err(ParseError::Truncated);
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let opcode = (bytes[2] >> 3) & 0x0f;
    let recursion_desired = bytes[2] & 0x01 != 0;
    let qdcount = u16::from_be_bytes([bytes[4], bytes[5]]);
    let arcount = u16::from_be_bytes([bytes[10], bytes[11]]);
    if qdcount != 1 {
        return Err(ParseError::QuestionCount(qdcount));
    }
    let (name, after_name) = read_name(bytes, 12)?;
    let fixed = bytes
        .get(after_name..after_name + 4)
        .ok_or(ParseError::Truncated)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    let end = after_name + 4;
    let mut udp_size = 512;
    // EDNS(0): an OPT record among the additional records raises the UDP size.
    if arcount > 0 {
        let mut at = end;
        // Skip answer/authority sections: a query has none.
        for _ in 0..arcount {
            let Ok((_, after)) = read_name(bytes, at) else {
                break;
            };
            let Some(rr) = bytes.get(after..after + 10) else {
                break;
            };
            let rr_type = u16::from_be_bytes([rr[0], rr[1]]);
            let class = u16::from_be_bytes([rr[2], rr[3]]);
            let rdlen = u16::from_be_bytes([rr[8], rr[9]]) as usize;
            if rr_type == rtype::OPT {
                udp_size = (class as usize).clamp(512, 4096);
            }
            at = after + 10 + rdlen;
        }
    }
    Ok(Query {
        id,
        opcode,
        recursion_desired,
        name,
        qtype,
        qclass,
        udp_size,
        question: bytes[12..end].to_vec(),
    })
}

/// Reads a (possibly compressed) name at `at`; returns it lower-cased and
/// the offset after it in the message.
fn read_name(bytes: &[u8], mut at: usize) -> Result<(String, usize), ParseError> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *bytes.get(at).ok_or(ParseError::Truncated)? as usize;
        if len & 0xc0 == 0xc0 {
            let low = *bytes.get(at + 1).ok_or(ParseError::Truncated)? as usize;
            end.get_or_insert(at + 2);
            jumps += 1;
            if jumps > 16 {
                return Err(ParseError::BadName);
            }
            at = ((len & 0x3f) << 8) | low;
            continue;
        }
        if len > 63 {
            return Err(ParseError::BadName);
        }
        if len == 0 {
            let name = labels.join(".");
            if name.len() > 253 {
                return Err(ParseError::BadName);
            }
            return Ok((name, end.unwrap_or(at + 1)));
        }
        let label = bytes
            .get(at + 1..at + 1 + len)
            .ok_or(ParseError::Truncated)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
    }
}

/// The data of one answer record.
#[derive(Clone, Debug, PartialEq)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Another name.
    Cname(String),
    /// A reverse pointer.
    Ptr(String),
    /// A service location.
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The port.
        port: u16,
        /// The host.
        target: String,
    },
    /// The zone's authority, in negative answers.
    Soa {
        /// The primary name server.
        mname: String,
        /// The responsible mailbox.
        rname: String,
        /// How long a negative answer may be cached.
        minimum: u32,
    },
}

impl RData {
    fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Cname(_) => rtype::CNAME,
            RData::Ptr(_) => rtype::PTR,
            RData::Srv { .. } => rtype::SRV,
            RData::Soa { .. } => rtype::SOA,
        }
    }
}

/// One resource record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Its owner name, without the trailing dot.
    pub name: String,
    /// Seconds it may be cached.
    pub ttl: u32,
    /// Its data.
    pub data: RData,
}

/// What to answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// The response code.
    pub rcode: u8,
    /// Authoritative (inside the cluster domain).
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (an SOA on negative answers).
    pub authority: Vec<Record>,
    /// The additional section (addresses of SRV targets).
    pub additional: Vec<Record>,
}

/// Writes the response to `query`; over UDP, an answer larger than the
/// client accepts is cut to its header and question with TC set, so the
/// client retries over TCP.
pub fn write_response(query: &Query, answer: &Answer, limit: Option<usize>) -> Vec<u8> {
    let mut out = header(query, answer, false);
    out.extend_from_slice(&query.question);
    for record in answer
        .answers
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additional)
    {
        write_record(&mut out, record);
    }
    if let Some(limit) = limit
        && out.len() > limit
    {
        let mut cut = header(query, &Answer::default(), true);
        cut[3] = (cut[3] & 0xf0) | answer.rcode;
        cut.extend_from_slice(&query.question);
        return cut;
    }
    out
}

/// A response to a message that could not be parsed as a query.
pub fn write_error(bytes: &[u8], rcode: u8) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    if bytes.len() >= 2 {
        out[..2].copy_from_slice(&bytes[..2]);
    }
    out[2] = 0x80;
    out[3] = rcode;
    out
}

fn header(query: &Query, answer: &Answer, truncated: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query.id.to_be_bytes());
    let mut flags1 = 0x80 | (query.opcode << 3);
    if answer.authoritative {
        flags1 |= 0x04;
    }
    if truncated {
        flags1 |= 0x02;
    }
    if query.recursion_desired {
        flags1 |= 0x01;
    }
    out.push(flags1);
    out.push(answer.rcode & 0x0f);
    let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
    out.extend_from_slice(&1u16.to_be_bytes());
    if truncated {
        out.extend_from_slice(&[0; 6]);
    } else {
        out.extend_from_slice(&count(answer.answers.len()));
        out.extend_from_slice(&count(answer.authority.len()));
        out.extend_from_slice(&count(answer.additional.len()));
    }
    out
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

fn write_record(out: &mut Vec<u8>, record: &Record) {
    write_name(out, &record.name);
    out.extend_from_slice(&record.data.rtype().to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    let mut data = Vec::new();
    match &record.data {
        RData::A(ip) => data.extend_from_slice(&ip.octets()),
        RData::Aaaa(ip) => data.extend_from_slice(&ip.octets()),
        RData::Cname(name) | RData::Ptr(name) => write_name(&mut data, name),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            data.extend_from_slice(&priority.to_be_bytes());
            data.extend_from_slice(&weight.to_be_bytes());
            data.extend_from_slice(&port.to_be_bytes());
            write_name(&mut data, target);
        }
        RData::Soa {
            mname,
            rname,
            minimum,
        } => {
            write_name(&mut data, mname);
            write_name(&mut data, rname);
            // serial, refresh, retry, expire, minimum
            for value in [1u32, 7200, 1800, 86400, *minimum] {
                data.extend_from_slice(&value.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(&data);
}

/// Builds a query (for tests and clients).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    write_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

/// A response, read back (for tests and clients).
#[derive(Debug, PartialEq)]
pub struct Response {
    /// The id.
    pub id: u16,
    /// The response code.
    pub rcode: u8,
    /// TC was set.
    pub truncated: bool,
    /// The answer section.
    pub answers: Vec<Record>,
}

/// Reads a response's answer section.
pub fn parse_response(bytes: &[u8]) -> Result<Response, ParseError> {
    if bytes.len() < 12 {
        return Err(ParseError::Truncated);
    }
    let count = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let (qdcount, ancount) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..qdcount {
        at = read_name(bytes, at)?.1 + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (name, after) = read_name(bytes, at)?;
        let rr = bytes.get(after..after + 10).ok_or(ParseError::Truncated)?;
        let kind = u16::from_be_bytes([rr[0], rr[1]]);
        let ttl = u32::from_be_bytes([rr[4], rr[5], rr[6], rr[7]]);
        let len = u16::from_be_bytes([rr[8], rr[9]]) as usize;
        let start = after + 10;
        let rdata = bytes.get(start..start + len).ok_or(ParseError::Truncated)?;
        let data = match kind {
            rtype::A if len == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            rtype::AAAA if len == 16 => {
                let octets: [u8; 16] = rdata.try_into().map_err(|_| ParseError::Truncated)?;
                RData::Aaaa(Ipv6Addr::from(octets))
            }
            rtype::CNAME => RData::Cname(read_name(bytes, start)?.0),
            rtype::PTR => RData::Ptr(read_name(bytes, start)?.0),
            rtype::SRV if len >= 7 => RData::Srv {
                priority: u16::from_be_bytes([rdata[0], rdata[1]]),
                weight: u16::from_be_bytes([rdata[2], rdata[3]]),
                port: u16::from_be_bytes([rdata[4], rdata[5]]),
                target: read_name(bytes, start + 6)?.0,
            },
            _ => {
                at = start + len;
                continue;
            }
        };
        answers.push(Record { name, ttl, data });
        at = start + len;
    }
    Ok(Response {
        id: u16::from_be_bytes([bytes[0], bytes[1]]),
        rcode: bytes[3] & 0x0f,
        truncated: bytes[2] & 0x02 != 0,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_through_a_response() {
        let bytes = build_query(0x1234, "Web.Default.svc.cluster.local", rtype::A);
        let query = parse_query(&bytes).unwrap();
        assert_eq!(query.name, "web.default.svc.cluster.local");
        assert_eq!(
            (query.id, query.qtype, query.qclass, query.udp_size),
            (0x1234, 1, 1, 512)
        );
        let answer = Answer {
            authoritative: true,
            answers: vec![
                Record {
                    name: query.name.clone(),
                    ttl: 5,
                    data: RData::A(Ipv4Addr::new(10, 96, 0, 10)),
                },
                Record {
                    name: "_http._tcp.web.default.svc.cluster.local".into(),
                    ttl: 5,
                    data: RData::Srv {
                        priority: 0,
                        weight: 100,
                        port: 80,
                        target: "web.default.svc.cluster.local".into(),
                    },
                },
            ],
            ..Answer::default()
        };
        let response = parse_response(&write_response(&query, &answer, Some(512))).unwrap();
        assert_eq!(response.id, 0x1234);
        assert_eq!(response.rcode, rcode::NOERROR);
        assert_eq!(response.answers, answer.answers);
    }

    #[test]
    fn large_udp_answers_are_truncated_with_tc() {
        let query =
            parse_query(&build_query(7, "many.default.svc.cluster.local", rtype::A)).unwrap();
        let answers = (0..100)
            .map(|i| Record {
                name: query.name.clone(),
                ttl: 5,
                data: RData::A(Ipv4Addr::new(10, 244, 0, i)),
            })
            .collect();
        let answer = Answer {
            answers,
            ..Answer::default()
        };
        let cut = parse_response(&write_response(&query, &answer, Some(query.udp_size))).unwrap();
        assert!(cut.truncated && cut.answers.is_empty());
        let whole = parse_response(&write_response(&query, &answer, None)).unwrap();
        assert_eq!(whole.answers.len(), 100);
    }

    #[test]
    fn malformed_queries_are_errors_not_panics() {
        assert_eq!(parse_query(&[1, 2, 3]), Err(ParseError::Truncated));
        let mut no_question = build_query(1, "a.b", rtype::A);
        no_question[5] = 0;
        assert_eq!(parse_query(&no_question), Err(ParseError::QuestionCount(0)));
        let mut looped = build_query(1, "a", rtype::A);
        looped.truncate(12);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_query(&looped), Err(ParseError::BadName));
        let mut cut = build_query(1, "abc.def", rtype::A);
        cut.truncate(16);
        assert_eq!(parse_query(&cut), Err(ParseError::Truncated));
    }
}
