//! Helpers shared by the privileged nft tests: namespaces with unique names
//! removed by exact name on drop, commands run inside them, TCP/UDP endpoints
//! bound inside a namespace, and `nft -j` readers (tests may use the CLI to
//! check results; product code never does).
#![allow(dead_code)]

use serde_json::Value;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Panic with a clear message when not root: these tests need the kernel.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (network namespaces and nftables): run it as root");
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique suffix: pid + counter.
pub fn uniq() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Run a command, panic with its output if it fails; return stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd} {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace created for one test; deleted by exact name.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Self {
        require_root();
        let name = format!("{prefix}-{}", uniq());
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n NAME ARGS`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NAME ARGS`
    pub fn exec(&self, args: &[&str]) -> String {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    pub fn forwarding(&self) {
        self.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }

    /// Run `f` on a thread that has entered this namespace (sockets created
    /// there stay in it).
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let file = File::open(self.path()).expect("open netns");
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    }

    pub fn tcp_listen(&self, addr: &str) -> TcpListener {
        let addr: SocketAddr = addr.parse().expect("addr");
        self.run_in(move || TcpListener::bind(addr)).expect("bind")
    }

    pub fn udp_bind(&self, addr: &str) -> UdpSocket {
        let addr: SocketAddr = addr.parse().expect("addr");
        let s = self
            .run_in(move || UdpSocket::bind(addr))
            .expect("bind udp");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    }

    pub fn tcp_connect(&self, addr: &str) -> io::Result<TcpStream> {
        let addr: SocketAddr = addr.parse().expect("addr");
        self.run_in(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)))
    }

    /// `nft -j list table ip conlink`, or None when the table is absent.
    pub fn nft_table(&self) -> Option<Value> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "nft", "-j", "list", "table", "ip", "conlink",
            ])
            .output()
            .expect("spawn nft (apt-get install nftables)");
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("nft json"))
    }

    /// Number of nftables tables in this namespace.
    pub fn table_count(&self) -> usize {
        let v: Value = serde_json::from_str(&self.exec(&["nft", "-j", "list", "tables"])).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o.get("table").is_some())
            .count()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also removes the veths and bridges in it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Rules of `chain` in an `nft -j` listing: their `expr` arrays.
pub fn chain_rules(table: &Value, chain: &str) -> Vec<Value> {
    table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r["chain"] == chain)
        .map(|r| r["expr"].clone())
        .collect()
}

/// Names of the chains in an `nft -j` listing.
pub fn chain_names(table: &Value) -> Vec<String> {
    table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("chain"))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// Accept one connection within 5 s, exchange a line, and return
/// (local address, peer address) as the server saw them.
pub fn accept_one(l: &TcpListener) -> (SocketAddr, SocketAddr) {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.accept() {
            Ok((mut s, peer)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut b = [0u8; 4];
                s.read_exact(&mut b).expect("read ping");
                assert_eq!(&b, b"ping");
                s.write_all(b"pong").unwrap();
                return (s.local_addr().unwrap(), peer);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection arrived within 5 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Client side of `accept_one`: connect from `ns` to `addr`, ping, and
/// return what the server saw. Err when the connection cannot be made.
pub fn tcp_roundtrip(
    from: &Netns,
    addr: &str,
    server: &TcpListener,
) -> io::Result<(SocketAddr, SocketAddr)> {
    let mut c = from.tcp_connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.write_all(b"ping").unwrap();
    let seen = accept_one(server);
    let mut b = [0u8; 4];
    c.read_exact(&mut b).expect("read pong");
    assert_eq!(&b, b"pong");
    // The client still believes it talks to the address it dialled.
    assert_eq!(c.peer_addr().unwrap().to_string(), addr);
    Ok(seen)
}
