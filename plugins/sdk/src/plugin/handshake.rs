//! The handshake line a plugin prints on stdout once it serves:
//! `KERNO_PLUGIN <protocol version> <endpoint>`, for example
//! `KERNO_PLUGIN 1 unix:///run/kerno/plugins/dns.sock` or
//! `KERNO_PLUGIN 1 tcp://127.0.0.1:40123`. Words are separated by single
//! spaces, so a socket path must not contain spaces.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The first word of a handshake line.
pub const MAGIC: &str = "KERNO_PLUGIN";

/// Where a plugin serves gRPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginEndpoint {
    /// A unix socket at this absolute path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl fmt::Display for PluginEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginEndpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            PluginEndpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Why a handshake line was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The line does not have the form `KERNO_PLUGIN <version> <endpoint>`.
    #[error(
        "malformed handshake line {0:?}: expected \"KERNO_PLUGIN <version> <unix:///path | tcp://host:port>\""
    )]
    Malformed(String),
    /// The version is not a number.
    #[error("handshake protocol version {0:?} is not a number")]
    BadVersion(String),
    /// The endpoint is neither an absolute unix path nor a TCP address.
    #[error("handshake endpoint {0:?} is neither unix:///absolute/path nor tcp://ip:port")]
    BadEndpoint(String),
}

impl FromStr for PluginEndpoint {
    type Err = HandshakeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix://") {
            if path.starts_with('/') && path.len() > 1 {
                return Ok(PluginEndpoint::Unix(PathBuf::from(path)));
            }
        } else if let Some(addr) = s.strip_prefix("tcp://")
            && let Ok(addr) = addr.parse()
        {
            return Ok(PluginEndpoint::Tcp(addr));
        }
        Err(HandshakeError::BadEndpoint(s.to_owned()))
    }
}

/// A parsed handshake line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The plugin protocol version the plugin speaks.
    pub protocol_version: u32,
    /// Where it serves.
    pub endpoint: PluginEndpoint,
}

impl fmt::Display for Handshake {
    /// The line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MAGIC} {} {}", self.protocol_version, self.endpoint)
    }
}

impl FromStr for Handshake {
    type Err = HandshakeError;

    /// Parses one line (a trailing newline is allowed), as the supervisor does.
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let mut words = line.trim_end_matches(['\r', '\n']).split(' ');
        let (Some(MAGIC), Some(version), Some(endpoint), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(HandshakeError::Malformed(line.to_owned()));
        };
        let protocol_version = version
            .parse()
            .map_err(|_| HandshakeError::BadVersion(version.to_owned()))?;
        Ok(Handshake {
            protocol_version,
            endpoint: endpoint.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let unix = Handshake {
            protocol_version: 1,
            endpoint: PluginEndpoint::Unix("/run/kerno/dns.sock".into()),
        };
        assert_eq!(
            unix.to_string(),
            "KERNO_PLUGIN 1 unix:///run/kerno/dns.sock"
        );
        assert_eq!(
            "KERNO_PLUGIN 1 unix:///run/kerno/dns.sock\n".parse(),
            Ok(unix)
        );
        let tcp: Result<Handshake, _> = "KERNO_PLUGIN 2 tcp://127.0.0.1:4000".parse();
        assert_eq!(
            tcp,
            Ok(Handshake {
                protocol_version: 2,
                endpoint: PluginEndpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 4000))),
            })
        );
    }

    #[test]
    fn garbled_lines_are_refused_with_reasons() {
        assert!(matches!(
            "hello".parse::<Handshake>(),
            Err(HandshakeError::Malformed(_))
        ));
        assert!(matches!(
            "KERNO_PLUGIN 1 unix:///a extra".parse::<Handshake>(),
            Err(HandshakeError::Malformed(_))
        ));
        assert!(matches!(
            "KERNO_PLUGIN one unix:///a".parse::<Handshake>(),
            Err(HandshakeError::BadVersion(_))
        ));
        assert!(matches!(
            "KERNO_PLUGIN 1 unix://relative".parse::<Handshake>(),
            Err(HandshakeError::BadEndpoint(_))
        ));
        assert!(matches!(
            "KERNO_PLUGIN 1 http://127.0.0.1:1".parse::<Handshake>(),
            Err(HandshakeError::BadEndpoint(_))
        ));
    }
}
