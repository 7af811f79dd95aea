//! Host name lookup without NSS, for `wait -t HOST:PORT`.
//!
//! A statically linked glibc cannot load NSS modules, and a `FROM scratch`
//! image has none anyway, so `getaddrinfo` is not an option. This module
//! does what a minimal resolver does:
//!
//! 1. an IP literal is used as is (`[::1]` brackets allowed);
//! 2. `/etc/hosts` (compose `extra_hosts` entries land there);
//! 3. a DNS `A` query over UDP to each `nameserver` of `/etc/resolv.conf`
//!    in turn (docker's embedded DNS is `127.0.0.11` in user networks),
//!    trying the name as given and, for a name without a dot, with each
//!    `search` domain appended. No nameserver listed means `127.0.0.1`, as
//!    glibc does.
//!
//! Only `A` records are asked for over DNS; IPv6 addresses come from
//! `/etc/hosts` or literals.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where and how names are looked up. [`Resolver::system`] reads the usual
/// files; tests point the fields elsewhere.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The hosts file (`/etc/hosts`).
    pub hosts_file: PathBuf,
    /// The resolver configuration (`/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
    /// When set, these servers are asked instead of the `nameserver` lines
    /// (lets tests use a responder on an unprivileged port).
    pub nameservers: Option<Vec<SocketAddr>>,
    /// How long to wait for each server's answer.
    pub timeout: Duration,
}

/// Why a name could not be turned into addresses.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Neither the hosts file nor any nameserver knows the name.
    #[error("{name:?} not found in {hosts} nor by DNS ({servers})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The hosts file consulted.
        hosts: String,
        /// The servers asked and what each said.
        servers: String,
    },
    /// The name cannot be put in a DNS query.
    #[error("invalid host name {0:?}")]
    InvalidName(String),
}

/// The parts of `resolv.conf` this resolver uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` addresses, in order.
    pub nameservers: Vec<IpAddr>,
    /// `search` (or `domain`) suffixes, in order.
    pub search: Vec<String>,
}

/// Parses `resolv.conf` text; unknown lines are ignored, as by glibc.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // An IPv6 server may carry a zone (`fe80::1%eth0`): drop it,
                // link-local servers are not supported.
                if let Some(addr) = words.next().and_then(|w| w.split('%').next()) {
                    if let Ok(ip) = addr.parse() {
                        conf.nameservers.push(ip);
                    }
                }
            }
            // The last of `search`/`domain` wins, as in glibc.
            Some("search") | Some("domain") => {
                conf.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
            }
            _ => {}
        }
    }
    conf
}

/// Looks `name` up in hosts-file text: every address of a line that lists
/// the name (case-insensitive), in file order.
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else { continue };
        if fields.any(|n| n.eq_ignore_ascii_case(name)) {
            // Zone suffixes (`fe80::1%eth0`) cannot be connected to without
            // a scope id; skip what does not parse.
            if let Ok(ip) = addr.parse::<IpAddr>() {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// Builds a DNS query (RD set) for the `A` records of `name`.
pub fn build_query(id: u16, name: &str) -> Result<Vec<u8>, LookupError> {
    let name = name.trim_end_matches('.');
    let invalid = || LookupError::InvalidName(name.to_string());
    if name.is_empty() || name.len() > 253 {
        return Err(invalid());
    }
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // flags: standard query, recursion desired
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question, no other records
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]); // QTYPE A, QCLASS IN
    Ok(q)
}

/// What a DNS answer said.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The `A` records of the answer section (any CNAME chain's targets
    /// included, as recursive servers send them).
    Addrs(Vec<Ipv4Addr>),
    /// The server answered with this RCODE (3 = name does not exist) or with
    /// no `A` record.
    Failed(u8),
}

/// Parses a DNS reply to the query `id`. `None` when the packet is not a
/// reply to it (or is malformed) and should be ignored.
pub fn parse_reply(id: u16, packet: &[u8]) -> Option<Answer> {
    if packet.len() < 12 || u16::from_be_bytes([packet[0], packet[1]]) != id {
        return None;
    }
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 == 0 {
        return None; // a query, not a response
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return Some(Answer::Failed(rcode));
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(packet, pos)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        pos = skip_name(packet, pos)?;
        let header = packet.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let class = u16::from_be_bytes([header[2], header[3]]);
        let len = u16::from_be_bytes([header[8], header[9]]) as usize;
        let data = packet.get(pos + 10..pos + 10 + len)?;
        if rtype == 1 && class == 1 && len == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + len;
    }
    Some(if addrs.is_empty() {
        Answer::Failed(0)
    } else {
        Answer::Addrs(addrs)
    })
}

/// Returns the offset just after the (possibly compressed) name at `pos`.
fn skip_name(packet: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *packet.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            // A compression pointer ends the name in place (two bytes).
            l if l & 0xc0 == 0xc0 => {
                packet.get(pos + 1)?;
                return Some(pos + 2);
            }
            l if l & 0xc0 == 0 => pos += 1 + l as usize,
            _ => return None,
        }
    }
}

/// Sends one query to `server` and waits up to `timeout` for its answer.
pub fn query(server: SocketAddr, name: &str, timeout: Duration) -> io::Result<Answer> {
    // Not cryptographic: the id only has to tell this query's reply apart.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let id = (nanos ^ std::process::id()) as u16;
    let packet =
        build_query(id, name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)?;
    // connect() makes the kernel drop datagrams from other sources.
    sock.connect(server)?;
    sock.send(&packet)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
        }
        sock.set_read_timeout(Some(left))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"))
            }
            Err(e) => return Err(e),
        };
        if let Some(answer) = parse_reply(id, &buf[..n]) {
            return Ok(answer);
        }
    }
}

impl Resolver {
    /// The system files, 1 s per server.
    pub fn system() -> Self {
        Resolver {
            hosts_file: PathBuf::from("/etc/hosts"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            nameservers: None,
            timeout: Duration::from_secs(1),
        }
    }

    /// Addresses of `host`: literal, hosts file, then DNS (see module docs).
    pub fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        // A missing hosts file (scratch image) is simply empty.
        let hosts = std::fs::read_to_string(&self.hosts_file).unwrap_or_default();
        let found = lookup_hosts(&hosts, host);
        if !found.is_empty() {
            return Ok(found);
        }
        let conf = std::fs::read_to_string(&self.resolv_conf)
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default();
        let servers: Vec<SocketAddr> = match &self.nameservers {
            Some(list) => list.clone(),
            None if conf.nameservers.is_empty() => vec![(Ipv4Addr::LOCALHOST, 53).into()],
            None => conf.nameservers.iter().map(|&ip| (ip, 53).into()).collect(),
        };
        let mut names = vec![host.to_string()];
        if !host.contains('.') {
            names.extend(conf.search.iter().map(|d| format!("{host}.{d}")));
        }
        let mut report = Vec::new();
        for name in &names {
            build_query(0, name)?;
            for &server in &servers {
                match query(server, name, self.timeout) {
                    Ok(Answer::Addrs(a)) => return Ok(a.into_iter().map(IpAddr::V4).collect()),
                    Ok(Answer::Failed(3)) => report.push(format!("{server}: no such name")),
                    Ok(Answer::Failed(0)) => report.push(format!("{server}: no A record")),
                    Ok(Answer::Failed(rc)) => report.push(format!("{server}: rcode {rc}")),
                    Err(e) => report.push(format!("{server}: {e}")),
                }
            }
        }
        report.dedup();
        Err(LookupError::NotFound {
            name: host.to_string(),
            hosts: self.hosts_file.display().to_string(),
            servers: report.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn resolv_conf_parsing() {
        let conf = parse_resolv_conf(
            "# Generated by Docker\nnameserver 127.0.0.11\nsearch example.internal. lab\n\
             options ndots:0\nnameserver fe80::1%eth0 # zone dropped\nnameserver bogus\n; x\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                "127.0.0.11".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(conf.search, vec!["example.internal", "lab"]);
        assert_eq!(parse_resolv_conf("domain a.b\nsearch c\n").search, ["c"]);
    }

    #[test]
    fn hosts_parsing() {
        let text = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\
                    # 10.9.9.9 db\n10.1.2.3 DB db.lab  # extra_hosts\n10.1.2.4 other db\n\
                    fe80::1%eth0 db\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            lookup_hosts(text, "db"),
            vec![ip("10.1.2.3"), ip("10.1.2.4")]
        );
        assert_eq!(lookup_hosts(text, "Db.Lab"), vec![ip("10.1.2.3")]);
        assert_eq!(
            lookup_hosts(text, "localhost"),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert!(lookup_hosts(text, "nothere").is_empty());
    }

    #[test]
    fn query_bytes() {
        let q = build_query(0x1234, "db.lab.").unwrap();
        assert_eq!(
            q,
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'd', b'b', 3, b'l', b'a', b'b', 0, 0,
                1, 0, 1
            ]
        );
        assert!(build_query(1, "a..b").is_err());
        assert!(build_query(1, &"x".repeat(64)).is_err());
        assert!(build_query(1, "").is_err());
    }

    /// A reply to `query` with a CNAME then the given A records, names
    /// compressed as real servers do.
    fn reply(query: &[u8], rcode: u8, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        let ancount = if addrs.is_empty() { 0 } else { addrs.len() + 1 };
        r[6..8].copy_from_slice(&(ancount as u16).to_be_bytes());
        if !addrs.is_empty() {
            // CNAME db -> x.db (pointer to offset 12)
            r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xc0, 12]);
            let cname_at = (r.len() - 4) as u8;
            for a in addrs {
                r.extend_from_slice(&[0xc0, cname_at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(a);
            }
        }
        r
    }

    #[test]
    fn reply_parsing() {
        let q = build_query(7, "db").unwrap();
        assert_eq!(
            parse_reply(7, &reply(&q, 0, &[[10, 0, 0, 5], [10, 0, 0, 6]])),
            Some(Answer::Addrs(vec![
                Ipv4Addr::new(10, 0, 0, 5),
                Ipv4Addr::new(10, 0, 0, 6)
            ]))
        );
        assert_eq!(parse_reply(7, &reply(&q, 3, &[])), Some(Answer::Failed(3)));
        assert_eq!(parse_reply(7, &reply(&q, 0, &[])), Some(Answer::Failed(0)));
        // Wrong id, a query echoed back, truncated packets: ignored.
        assert_eq!(parse_reply(8, &reply(&q, 0, &[[10, 0, 0, 5]])), None);
        assert_eq!(parse_reply(7, &q), None);
        let full = reply(&q, 0, &[[10, 0, 0, 5]]);
        // Every truncation is rejected (and none panics).
        for cut in 0..full.len() {
            assert_eq!(parse_reply(7, &full[..cut]), None, "cut at {cut}");
        }
    }

    /// A one-shot DNS responder on 127.0.0.1 answering `name` with `addr`
    /// and NXDOMAIN otherwise; returns its address.
    fn responder(name: &'static str, addr: [u8; 4], answers: usize) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = sock.local_addr().unwrap();
        thread::spawn(move || {
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0u8; 512];
            for _ in 0..answers {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    return;
                };
                let q = &buf[..n];
                let want = build_query(u16::from_be_bytes([q[0], q[1]]), name).unwrap();
                let r = if q == want.as_slice() {
                    reply(q, 0, &[addr])
                } else {
                    reply(q, 3, &[])
                };
                sock.send_to(&r, from).unwrap();
            }
        });
        local
    }

    struct Files(PathBuf);
    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn resolver(
        tag: &str,
        hosts: &str,
        resolv: &str,
        servers: Vec<SocketAddr>,
    ) -> (Resolver, Files) {
        let dir = std::env::temp_dir().join(format!("conlink-dns-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), hosts).unwrap();
        std::fs::write(dir.join("resolv.conf"), resolv).unwrap();
        let r = Resolver {
            hosts_file: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
            nameservers: Some(servers),
            timeout: Duration::from_millis(500),
        };
        (r, Files(dir))
    }

    #[test]
    fn lookup_prefers_literals_then_hosts() {
        // The server would answer differently: it must not be asked.
        let server = responder("db", [10, 0, 0, 99], 1);
        let (r, _f) = resolver("hosts", "10.0.0.7 db\n", "", vec![server]);
        assert_eq!(
            r.lookup("db").unwrap(),
            vec!["10.0.0.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            r.lookup("[::1]").unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            r.lookup("10.1.1.1").unwrap(),
            vec!["10.1.1.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn lookup_by_dns_with_search_domain() {
        // First query (`web`) gets NXDOMAIN, second (`web.lab`) the address.
        let server = responder("web.lab", [10, 0, 0, 42], 2);
        let (r, _f) = resolver("dns", "127.0.0.1 localhost\n", "search lab\n", vec![server]);
        assert_eq!(
            r.lookup("web").unwrap(),
            vec!["10.0.0.42".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn lookup_failure_says_why() {
        let server = responder("web", [10, 0, 0, 42], 1);
        // Nothing listens on this one: the query times out.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (r, _f) = resolver("fail", "", "", vec![server, silent.local_addr().unwrap()]);
        let err = r.lookup("nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\" not found"), "{err}");
        assert!(err.contains("no such name"), "{err}");
        assert!(err.contains("no answer"), "{err}");
    }
}
