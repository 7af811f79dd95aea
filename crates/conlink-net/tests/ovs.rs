//! Open vSwitch for real, on the userspace datapath (this kernel has no
//! openvswitch module): conlink's own ovsdb-server + ovs-vswitchd started
//! in a test namespace, bridges and veth ports carrying pings and TCP, the
//! existing-instance logic, failures with their log tail, leftovers of a
//! killed run, and a stop that leaves no process, socket or directory.
//! Needs root and Debian's openvswitch-switch (scripts/install-deps).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{require_root, uniq, Ns};
use conlink_model::Ipv4Net;
use conlink_net::{Datapath, Error, LinkAttrs, OvsOptions, OvsSupervisor};

/// A runtime directory for one supervisor, removed on drop if a failed
/// assert left it behind.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> RunDir {
        RunDir(std::env::temp_dir().join(format!("clt-ovs-{}", uniq())))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options for a test instance: never the machine's own OVS, and the
/// userspace datapath whatever the kernel has (that is what is tested).
fn opts(dir: &Path) -> OvsOptions {
    let mut o = OvsOptions::new(dir.join("ovs"));
    o.existing.clear();
    o.datapath = Some(Datapath::Netdev);
    o
}

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

/// Whether PID is a live process (not reaped, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

/// The network namespace inode of PID.
fn netns_ino(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .expect("stat /proc/PID/ns/net")
        .ino()
}

#[test]
fn own_daemons_run_in_the_namespace_and_stop_leaving_nothing() {
    require_root();
    require_ovs();
    let sw = Ns::new("ovs");
    let dir = RunDir::new();
    let run = dir.0.join("ovs");
    let before = sw.link_names();
    let ovs = OvsSupervisor::ensure(sw.h.netns(), &opts(&dir.0)).expect("start ovs");
    assert!(ovs.started_own());
    assert_eq!(ovs.datapath(), Datapath::Netdev);
    assert_eq!(ovs.db_socket(), run.join("db.sock"));
    let pids = ovs.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let ino = sw.h.netns().inode().unwrap();
    for pid in &pids {
        assert!(alive(*pid), "daemon {pid} not running");
        assert_eq!(
            netns_ino(*pid),
            ino,
            "daemon {pid} not in the test namespace"
        );
    }
    // All state in the runtime directory: db, sockets, pidfiles, logs.
    for f in [
        "conf.db",
        "db.sock",
        "ovsdb-server.pid",
        "ovsdb-server.ctl",
        "ovsdb-server.log",
        "ovs-vswitchd.pid",
        "ovs-vswitchd.ctl",
        "ovs-vswitchd.log",
    ] {
        assert!(run.join(f).exists(), "{f} missing in {}", run.display());
    }
    let pidfile: u32 = std::fs::read_to_string(run.join("ovs-vswitchd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pidfile, pids[1]);

    // A userspace bridge: its device appears in the daemons' namespace.
    ovs.add_bridge("cltbr0").unwrap();
    assert!(ovs.bridge_exists("cltbr0").unwrap());
    assert!(!ovs.bridge_exists("cltnope").unwrap());
    assert_eq!(ovs.list_bridges().unwrap(), ["cltbr0"]);
    assert_eq!(ovs.marked_bridges("conlink").unwrap(), ["cltbr0"]);
    assert!(ovs.marked_bridges("someoneelse").unwrap().is_empty());
    assert!(sw.has_link("cltbr0"), "{:?}", sw.link_names());
    // Idempotent, as the executor's re-runs need.
    ovs.add_bridge("cltbr0").unwrap();

    // Names are never options or column syntax: refused before any call.
    for bad in [
        "-x",
        "--may-exist",
        "a=b",
        "a b",
        "",
        "a:b",
        "0123456789abcdef",
    ] {
        let e = ovs.add_bridge(bad).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{bad:?}: {e}");
        assert!(matches!(
            ovs.add_port("cltbr0", bad),
            Err(Error::Invalid(_))
        ));
    }
    // A port the switch cannot open is an error naming it, and is not kept.
    let e = ovs.add_port("cltbr0", "cltnosuch").unwrap_err();
    assert!(matches!(e, Error::Ovs { .. }), "{e:?}");
    assert!(e.to_string().contains("cltnosuch"), "{e}");
    assert!(ovs.list_ports("cltbr0").unwrap().is_empty());

    ovs.shutdown().expect("stop ovs");
    for pid in &pids {
        assert!(!alive(*pid), "daemon {pid} still running after shutdown");
    }
    assert!(!run.exists(), "{} left behind", run.display());
    assert!(
        !dir.0.exists(),
        "parent {} (created by ensure) left behind",
        dir.0.display()
    );
    // The bridge device and ovs-netdev went with ovs-vswitchd.
    assert_eq!(sw.link_names(), before);
    assert!(ovs.pids().is_empty());
    ovs.shutdown().expect("a second shutdown is a no-op");
}

/// Runs `f` in namespace `ns` (sockets made there stay there).
fn in_ns<T: Send>(ns: &Ns, f: impl FnOnce() -> T + Send) -> T {
    ns.h.netns().run(f).expect("enter test namespace")
}

#[test]
fn bridge_with_two_veth_ports_carries_ping_and_tcp_and_ports_come_off() {
    require_root();
    require_ovs();
    let sw = Ns::new("ovsw");
    let a = Ns::new("ovsa");
    let b = Ns::new("ovsb");
    let dir = RunDir::new();
    let ovs = OvsSupervisor::ensure(sw.h.netns(), &opts(&dir.0)).expect("start ovs");
    ovs.add_bridge("cltbr1").unwrap();
    for (ns, outer, ip) in [(&a, "clta0", "10.78.0.1/24"), (&b, "cltb0", "10.78.0.2/24")] {
        sw.h.create_veth(
            &LinkAttrs::new(outer).up(),
            &LinkAttrs::new("eth0").up(),
            &ns.h,
        )
        .unwrap();
        ns.h.add_addr("eth0", ip.parse::<Ipv4Net>().unwrap())
            .unwrap();
        // The userspace datapath reads frames from the outer end with an
        // AF_PACKET socket and writes them out of the other: a TCP/UDP
        // checksum left for offload (CHECKSUM_PARTIAL, veth's default) is
        // never filled in on that path, so the receiver drops the segment
        // (ICMP checksums are always computed in software, so ping alone
        // would not notice). conlink turns tx offload off on container
        // ends by default; this test does the same.
        ns.h.set_tx_checksum("eth0", false).unwrap();
        ovs.add_port("cltbr1", outer).unwrap();
    }
    let mut ports = ovs.list_ports("cltbr1").unwrap();
    ports.sort();
    assert_eq!(ports, ["clta0", "cltb0"]);
    assert!(
        a.ping("10.78.0.2"),
        "a cannot ping b through the ovs bridge"
    );
    assert!(
        b.ping("10.78.0.1"),
        "b cannot ping a through the ovs bridge"
    );

    // TCP both ways of one connection (checksums must be right).
    let listener = in_ns(&b, || std::net::TcpListener::bind("10.78.0.2:7000")).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        buf
    });
    let mut c = in_ns(&a, || {
        std::net::TcpStream::connect_timeout(
            &"10.78.0.2:7000".parse().unwrap(),
            Duration::from_secs(5),
        )
    })
    .expect("tcp connect through the ovs bridge");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back)
        .expect("tcp echo through the ovs bridge");
    assert_eq!(&back, b"hello");
    assert_eq!(&server.join().unwrap(), b"hello");

    // A port removed is gone from OVS and traffic stops.
    ovs.del_port("cltbr1", "cltb0").unwrap();
    assert_eq!(ovs.list_ports("cltbr1").unwrap(), ["clta0"]);
    assert!(!a.ping("10.78.0.2"), "ping still passes without b's port");
    ovs.del_port("cltbr1", "cltb0")
        .expect("removing an absent port is fine");
    ovs.del_bridge("cltbr1").unwrap();
    assert!(!ovs.bridge_exists("cltbr1").unwrap());
    assert!(!sw.has_link("cltbr1"));
    ovs.shutdown().unwrap();
}

#[test]
fn an_ovs_running_in_the_namespace_is_used_one_elsewhere_is_not() {
    require_root();
    require_ovs();
    let sw = Ns::new("ovsx");
    let other = Ns::new("ovsy");
    let d1 = RunDir::new();
    let d2 = RunDir::new();
    let d3 = RunDir::new();
    let first = OvsSupervisor::ensure(sw.h.netns(), &opts(&d1.0)).expect("start ovs");
    let sock = first.db_socket().to_path_buf();

    let mut o = opts(&d2.0);
    o.existing = vec![PathBuf::from("/nonexistent/db.sock"), sock.clone()];
    let second = OvsSupervisor::ensure(sw.h.netns(), &o).expect("use running ovs");
    assert!(
        !second.started_own(),
        "started its own although one runs there"
    );
    assert_eq!(second.db_socket(), sock);
    assert!(!d2.0.exists(), "no directory for a reused instance");
    second.add_bridge("cltbr2").unwrap();
    assert!(
        first.bridge_exists("cltbr2").unwrap(),
        "not the same database"
    );
    // Shutting the user down leaves the running OVS alone.
    second.shutdown().unwrap();
    assert!(first.pids().iter().all(|p| alive(*p)));
    assert!(first.bridge_exists("cltbr2").unwrap());

    // Its switch runs in another namespace: useless for that one's ports.
    let mut o = opts(&d3.0);
    o.existing = vec![sock.clone()];
    let third = OvsSupervisor::ensure(other.h.netns(), &o).expect("start own ovs");
    assert!(third.started_own());
    assert_ne!(third.db_socket(), sock);
    assert!(!third.bridge_exists("cltbr2").unwrap());
    let third_pids = third.pids();
    drop(third); // stop on drop
    assert!(
        third_pids.iter().all(|p| !alive(*p)),
        "drop did not stop them"
    );
    assert!(!d3.0.exists());
    first.shutdown().unwrap();
}

#[test]
fn a_daemon_that_fails_gives_its_log_tail_and_nothing_is_left() {
    require_root();
    require_ovs();
    let sw = Ns::new("ovsf");

    // ovs-vswitchd exits at once: the error says so with its stderr, and
    // the ovsdb-server already started is stopped.
    let dir = RunDir::new();
    let mut o = opts(&dir.0);
    let fake = dir.0.join("fake-vswitchd");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'cannot frobnicate the datapath' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    o.programs.ovs_vswitchd = fake;
    let e = OvsSupervisor::ensure(sw.h.netns(), &o).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::OvsStart {
                daemon: "ovs-vswitchd",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(msg.contains("exited"), "{msg}");
    assert!(
        msg.contains("cannot frobnicate the datapath"),
        "no log tail: {msg}"
    );
    assert!(!dir.0.join("ovs").exists(), "runtime directory left behind");
    let left = pids_naming(&dir.0);
    assert!(left.is_empty(), "ovsdb-server left running: {left:?}");

    // A schema that does not exist: ovsdb-tool's own message.
    let dir = RunDir::new();
    let mut o = opts(&dir.0);
    o.programs.schema = "/nonexistent/vswitch.ovsschema".into();
    let e = OvsSupervisor::ensure(sw.h.netns(), &o).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OvsStart {
                daemon: "ovsdb-tool",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("/nonexistent/vswitch.ovsschema"),
        "{e}"
    );
    assert!(!dir.0.join("ovs").exists());

    // Not installed at all: a clear "unavailable".
    let dir = RunDir::new();
    let mut o = opts(&dir.0);
    o.programs.ovsdb_tool = "/nonexistent/ovsdb-tool".into();
    let e = OvsSupervisor::ensure(sw.h.netns(), &o).unwrap_err();
    assert!(matches!(e, Error::OvsUnavailable(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("open vswitch unavailable: cannot run /nonexistent/ovsdb-tool"),
        "{e}"
    );
}

/// PIDs of live processes whose command line names `dir` (tests run in
/// parallel: each looks only at its own daemons).
fn pids_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            alive(*p)
                && std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

#[test]
fn leftovers_of_a_killed_run_are_cleared_and_only_theirs() {
    require_root();
    require_ovs();
    let sw = Ns::new("ovsl");
    let dir = RunDir::new();
    let run = dir.0.join("ovs");
    std::fs::create_dir_all(&run).unwrap();
    // Stand-ins for the daemons of a killed run: processes whose command
    // line names the directory (as the real ones do), and one that does
    // not (a recycled PID: must be left alone). `exec -a` gives one
    // process with that argv[0].
    let spawn = |arg0: &str| {
        std::process::Command::new("bash")
            .args(["-c", "exec -a \"$0\" sleep 60", arg0])
            .spawn()
            .unwrap()
    };
    let mut ours = spawn(&format!("{}/ovsdb-server", run.display()));
    let mut stranger = spawn("unrelated");
    std::fs::write(run.join("ovsdb-server.pid"), format!("{}\n", ours.id())).unwrap();
    std::fs::write(run.join("ovs-vswitchd.pid"), format!("{}\n", stranger.id())).unwrap();
    std::fs::write(run.join("db.sock"), "stale").unwrap();

    let ovs = OvsSupervisor::ensure(sw.h.netns(), &opts(&dir.0)).expect("start over leftovers");
    let st = ours.wait().unwrap();
    assert!(!st.success(), "leftover not signalled: {st}");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "unrelated process was killed"
    );
    assert!(ovs.started_own());
    ovs.add_bridge("cltbr3").unwrap();
    ovs.shutdown().unwrap();
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}
