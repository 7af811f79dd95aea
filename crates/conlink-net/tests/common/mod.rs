//! Helpers for the privileged tests: root check, unique names, namespace
//! guards, `ip -j`/`tc -j` parsing, bounded pings.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use conlink_net::{Handle, Netns};
use serde_json::Value;

/// Panics unless running as root: these tests need the real kernel.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run cargo test as root");
    }
}

/// A short unique suffix: pid (base 36) + counter, so parallel tests and
/// concurrent runs never collide.
pub fn uniq() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{}{}", radix36(std::process::id()), radix36(n))
}

fn radix36(mut v: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// A named namespace created for a test, deleted (by exact name) on drop.
pub struct Ns {
    pub name: String,
    pub h: Handle,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = format!("clt-{tag}-{}", uniq());
        let ns = Netns::create_named(&name).expect("create test netns");
        let h = Handle::open(&ns).expect("open handle");
        h.set_up("lo", true).expect("lo up");
        Ns { name, h }
    }

    /// `ip -n NS -j ARGS…` parsed.
    pub fn ip(&self, args: &[&str]) -> Value {
        json_cmd("ip", &[&["-n", &self.name, "-j"], args].concat())
    }

    /// `ip -n NS -j -d link show dev DEV`, the one object.
    pub fn link(&self, dev: &str) -> Value {
        let v = self.ip(&["-d", "link", "show", "dev", dev]);
        v[0].clone()
    }

    /// Whether DEV exists in this namespace (via `ip`).
    pub fn has_link(&self, dev: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name, "link", "show", "dev", dev])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Names of all links in the namespace (via `ip -j`).
    pub fn link_names(&self) -> Vec<String> {
        self.ip(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// `tc -n NS -j ARGS…` parsed.
    pub fn tc(&self, args: &[&str]) -> Value {
        json_cmd("tc", &[&["-n", &self.name, "-j"], args].concat())
    }

    /// Pings ADDR from this namespace: true if a reply came within ~3 s.
    pub fn ping(&self, addr: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(6);
        while Instant::now() < deadline {
            let ok = Command::new("ip")
                .args([
                    "netns", "exec", &self.name, "ping", "-n", "-q", "-c", "1", "-W", "1", addr,
                ])
                .output()
                .expect("run ping")
                .status
                .success();
            if ok {
                return true;
            }
        }
        false
    }

    /// Runs a command in the namespace, panicking on failure.
    pub fn exec(&self, args: &[&str]) {
        let o = Command::new("ip")
            .args([&["netns", "exec", &self.name][..], args].concat())
            .output()
            .expect("run command");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Netns::delete_named(&self.name);
    }
}

pub fn json_cmd(prog: &str, args: &[&str]) -> Value {
    let o = Command::new(prog)
        .args(args)
        .output()
        .expect("run json command");
    assert!(
        o.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    if o.stdout.iter().all(|b| b.is_ascii_whitespace()) {
        return Value::Array(vec![]);
    }
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{prog} {args:?}: bad json {e}: {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}
