//! The daemon with `mode: ovs` bridges in the netns runtime, for real: this
//! kernel has no openvswitch module, so conlink starts its own ovsdb-server
//! and ovs-vswitchd in its namespace and puts the bridge on the userspace
//! datapath. Pings and TCP between namespaces through the bridge, ports
//! removed from OVS when a member dies, bridge and daemons gone after
//! SIGTERM; after SIGKILL the daemons die with conlink and a restart clears
//! what was left. Needs root and openvswitch-switch (scripts/install-deps).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{link_names, netns_list, ping, prefix, require_root, Conlink};

fn require_ovs() {
    for p in [
        "/usr/sbin/ovsdb-server",
        "/usr/sbin/ovs-vswitchd",
        "/usr/bin/ovs-vsctl",
    ] {
        assert!(
            Path::new(p).exists(),
            "{p} missing: install openvswitch-switch (scripts/install-deps)"
        );
    }
}

/// conlink's OVS runtime directory for its namespace `own`.
fn ovs_dir(own: &str) -> PathBuf {
    PathBuf::from(format!("/run/conlink/ovs-{own}"))
}

/// `ovs-vsctl --db=unix:DIR/db.sock -- ARGS` (conlink's own instance).
fn vsctl(own: &str, args: &[&str]) -> Result<String, String> {
    let o = Command::new("ovs-vsctl")
        .arg(format!(
            "--db=unix:{}",
            ovs_dir(own).join("db.sock").display()
        ))
        .args(["--timeout=5", "--"])
        .args(args)
        .output()
        .expect("run ovs-vsctl");
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn ports(own: &str, bridge: &str) -> Vec<String> {
    let mut v: Vec<String> = vsctl(own, &["list-ports", bridge])
        .expect("list-ports")
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// PIDs from conlink's OVS pidfiles (ovsdb-server, ovs-vswitchd).
fn daemon_pids(own: &str) -> Vec<u32> {
    ["ovsdb-server", "ovs-vswitchd"]
        .iter()
        .map(|d| {
            let f = ovs_dir(own).join(format!("{d}.pid"));
            std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .trim()
                .parse()
                .expect("pid")
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

fn ino(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .ino()
}

/// Runs `f` on a thread inside named namespace `ns` (sockets stay there).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open netns");
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP echo from `from` to `addr` (listener in `to`): checksums must be
/// right end to end, which ping alone would not show.
fn tcp_echo(from: &str, to: &str, addr: &str) {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    let l = in_netns(to, move || std::net::TcpListener::bind(a)).expect("bind");
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = in_netns(from, move || {
        std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5))
    })
    .unwrap_or_else(|e| panic!("tcp {from} -> {addr} through the ovs bridge: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"ovs!").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back)
        .expect("tcp echo through the ovs bridge");
    assert_eq!(&back, b"ovs!");
    server.join().unwrap();
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ovs_bridge_carries_traffic_drops_ports_on_die_and_leaves_nothing() {
    require_root();
    require_ovs();
    let p = prefix();
    let before = netns_list(&p);
    let cfg = format!(
        r#"
bridges:
  - {{bridge: s1, mode: ovs}}
links:
  - {{container: {p}a, bridge: s1, ip: 10.208.0.1/24}}
  - {{container: {p}b, bridge: s1, ip: 10.208.0.2/24}}
  - {{container: {p}c, bridge: s1, ip: 10.208.0.3/24}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let own = c.own_ns.clone();
    assert!(
        c.log().iter().any(|l| l.contains("userspace datapath")),
        "conlink did not say it uses the userspace datapath"
    );

    // conlink's own daemons, in conlink's namespace, state in its directory.
    let pids = daemon_pids(&own);
    for pid in &pids {
        assert!(alive(*pid), "daemon {pid} not running");
        assert_eq!(
            ino(&format!("/proc/{pid}/ns/net")),
            ino(&format!("/run/netns/{own}")),
            "daemon {pid} is not in conlink's namespace"
        );
    }
    assert_eq!(
        vsctl(&own, &["get", "Bridge", "s1", "datapath_type"])
            .unwrap()
            .trim(),
        "netdev"
    );
    assert_eq!(
        ports(&own, "s1"),
        [
            format!("{p}a-eth0"),
            format!("{p}b-eth0"),
            format!("{p}c-eth0")
        ]
    );

    for (from, to, addr) in [
        ("a", "b", "10.208.0.2"),
        ("b", "c", "10.208.0.3"),
        ("c", "a", "10.208.0.1"),
    ] {
        assert!(
            ping(&format!("{p}{from}"), addr),
            "{p}{from} cannot ping {p}{to} through the ovs bridge"
        );
    }
    tcp_echo(&format!("{p}a"), &format!("{p}b"), "10.208.0.2:7001");

    // A member dies: its port leaves OVS (not only its veth).
    let st = Command::new("ip")
        .args(["netns", "del", &format!("{p}c")])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until("c's port removed from OVS", || ports(&own, "s1").len() == 2);
    assert_eq!(
        ports(&own, "s1"),
        [format!("{p}a-eth0"), format!("{p}b-eth0")]
    );
    assert!(
        ping(&format!("{p}a"), "10.208.0.2"),
        "a and b cut off by c's death"
    );

    assert!(c.stop(), "conlink exited with an error");
    for pid in &pids {
        assert!(!alive(*pid), "ovs daemon {pid} still running after SIGTERM");
    }
    assert!(
        !ovs_dir(&own).exists(),
        "{} left behind",
        ovs_dir(&own).display()
    );
    // conlink created its namespace and the members: all gone.
    assert_eq!(netns_list(&p), before, "namespaces left behind");
}

#[test]
fn after_sigkill_the_daemons_die_and_a_restart_clears_the_leftovers() {
    sigkill_then_restart(false, 209);
}

/// conlink killed after ovs-vswitchd made the bridge's tap but before
/// conlink marked it (a window the e2e scale-down fault test hit): the
/// restart finds an unmarked `s1`. The killed run's database, which marked
/// the bridge conlink's, proves the tap ours: the restart replaces it and
/// connects, instead of refusing the name as someone else's.
#[test]
fn a_bridge_tap_a_killed_run_left_unmarked_is_proved_ours_by_its_database() {
    sigkill_then_restart(true, 219);
}

/// Runs a bridge with two members, SIGKILLs conlink, optionally takes
/// conlink's mark off the bridge's tap and `ovs-netdev`, starts it again
/// and checks traffic, then a clean stop. `net`: the third octet of
/// 10.N.0.0/24.
fn sigkill_then_restart(unmark: bool, net: u8) {
    require_root();
    require_ovs();
    let p = prefix();
    let cfg = format!(
        "bridges:\n  - {{bridge: s1, mode: ovs}}\n\
         links:\n  - {{service: {p}k, bridge: s1, ip: 10.{net}.0.1/24}}\n"
    );
    let scale = format!("{p}k=2");
    let mut first = Conlink::start(&p, &cfg, &["--scale", &scale]);
    let own = first.own_ns.clone();
    // Namespaces the killed run leaves behind: removed by exact name at the
    // end, also when an assert fails.
    struct DelOnDrop(Vec<String>);
    impl Drop for DelOnDrop {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
    let _left = DelOnDrop(vec![own.clone(), format!("{p}k_1"), format!("{p}k_2")]);
    first.wait_connected();
    let pids = daemon_pids(&own);
    first.kill9();
    // PR_SET_PDEATHSIG: the daemons do not outlive conlink.
    wait_until("ovs daemons gone after conlink's SIGKILL", || {
        pids.iter().all(|p| !alive(*p))
    });
    // The userspace datapath's persistent devices stayed in conlink's
    // namespace (no cleanup ran), with the runtime directory.
    let names = link_names(&own);
    assert!(names.iter().any(|n| n == "s1"), "{names:?}");
    assert!(ovs_dir(&own).exists());
    if unmark {
        for dev in ["s1", "ovs-netdev"] {
            let st = Command::new("ip")
                .args(["-n", &own, "link", "set", dev, "alias", ""])
                .status()
                .expect("run ip");
            assert!(st.success(), "unmark {dev}");
        }
    }

    let mut second = Conlink::start(&p, &cfg, &["--scale", &scale]);
    second.wait_connected();
    assert!(
        ping(&format!("{p}k_1"), &format!("10.{net}.0.2")),
        "no traffic through the ovs bridge after the restart"
    );
    let pids2 = daemon_pids(&own);
    assert!(second.stop());
    for pid in &pids2 {
        assert!(!alive(*pid), "ovs daemon {pid} still running after SIGTERM");
    }
    assert!(!ovs_dir(&own).exists(), "runtime directory left behind");
    // No device of conlink's (outer ends, the bridge tap, ovs-netdev)
    // stays: the namespace itself is gone, the first run made and marked
    // it, so the second removed it at exit.
    assert!(
        !std::path::Path::new("/run/netns").join(&own).exists(),
        "conlink's namespace left behind"
    );
}
