//! Port forwards: `CONLINK_PORT:CONTAINER_PORT/tcp|udp`.

use std::fmt;
use std::str::FromStr;

/// Why a forward string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forward {0:?}: expected CONLINK_PORT:CONTAINER_PORT/tcp|udp with ports 1..=65535")]
pub struct ParseForwardError(pub String);

/// Transport protocol of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// A port published through conlink's docker interface to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Forward {
    /// Port on conlink's docker interface (offset by replica index).
    pub conlink_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

impl Forward {
    /// The forward for replica offset `offset` (conlink port + offset).
    pub fn offset(&self, offset: u16) -> Option<Self> {
        let p = self.conlink_port.checked_add(offset)?;
        Some(Self {
            conlink_port: p,
            ..*self
        })
    }
}

impl FromStr for Forward {
    type Err = ParseForwardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let e = || ParseForwardError(s.to_string());
        let (ports, proto) = s.split_once('/').ok_or_else(e)?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(e()),
        };
        let (a, b) = ports.split_once(':').ok_or_else(e)?;
        let port = |p: &str| -> Result<u16, ParseForwardError> {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(e());
            }
            p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(e)
        };
        Ok(Forward {
            conlink_port: port(a)?,
            container_port: port(b)?,
            proto,
        })
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.conlink_port, self.container_port, self.proto
        )
    }
}
crate::serde_via_str!(Forward);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_forms() {
        let f: Forward = "8080:80/tcp".parse().unwrap();
        assert_eq!(f.offset(2).unwrap().to_string(), "8082:80/tcp");
        for bad in [
            "80:80",
            "80/tcp",
            "0:80/tcp",
            "70000:80/tcp",
            "80:80/sctp",
            "a:80/tcp",
        ] {
            assert!(bad.parse::<Forward>().is_err(), "{bad}");
        }
    }
}
