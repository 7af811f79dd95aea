//! Live reload of the properties `netns_reload.rs` does not cover (netns
//! runtime, real kernel): ethtool settings, port forwards (real TCP through
//! the DNAT), tunnels and commands; for each,
//! what changes in place and what is made again (docs/architecture.md, "In
//! place or remade"), with the links the edit does not touch keeping their
//! ifindex.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{ip_json, prefix, require_root, Conlink};

fn ifindex(ns: &str, dev: &str) -> serde_json::Value {
    ip_json(ns, &["link", "show", "dev", dev])[0]["ifindex"].clone()
}

/// `ethtool -k DEV` inside `ns`: the value of `feature` (`on`/`off`).
fn feature(ns: &str, dev: &str, feature: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-k", dev])
        .output()
        .expect("run ethtool");
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    t.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{feature}: ")))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no {feature} in ethtool -k {dev}: {t}"))
}

fn two(p: &str, a_extra: &str, tail: &str) -> String {
    format!(
        "bridges:\n  - {{bridge: s1, mode: linux}}\n\
         links:\n\
         \x20 - {{container: {p}a, bridge: s1, ip: 10.216.0.1/24{a_extra}}}\n\
         \x20 - {{container: {p}b, bridge: s1, ip: 10.216.0.2/24}}\n\
         {tail}"
    )
}

#[test]
fn ethtool_added_in_place_removed_remakes_the_link() {
    require_root();
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let mut c = Conlink::start(&p, &two(&p, ", ethtool: ['-K gso off']", ""), &[]);
    c.wait_connected();
    assert_eq!(feature(&a, "eth0", "generic-segmentation-offload"), "off");
    let (a0, b0) = (ifindex(&a, "eth0"), ifindex(&b, "eth0"));

    // A setting added: applied in place (same interface).
    c.edit_config(&two(&p, ", ethtool: ['-K gso off', '-K tso off']", ""));
    c.wait_for(&format!("{a}/eth0: ethtool"), 1, Duration::from_secs(10));
    c.wait_for("All links connected", 2, Duration::from_secs(10));
    assert_eq!(feature(&a, "eth0", "tcp-segmentation-offload"), "off");
    assert_eq!(
        ifindex(&a, "eth0"),
        a0,
        "an added ethtool setting remade the link"
    );

    // Settings removed: ethtool has no "unset", so the link is made again
    // with the kernel's defaults (new ifindex), and says so.
    c.edit_config(&two(&p, "", ""));
    c.wait_for(&format!("{a}/eth0: removed"), 1, Duration::from_secs(10));
    c.wait_for("All links connected", 3, Duration::from_secs(10));
    assert_ne!(
        ifindex(&a, "eth0"),
        a0,
        "a removed setting must remake the link"
    );
    assert_eq!(feature(&a, "eth0", "generic-segmentation-offload"), "on");
    assert_eq!(ifindex(&b, "eth0"), b0, "b was touched");
    assert!(
        common::ping(&b, "10.216.0.1"),
        "no traffic over the remade link"
    );
    assert!(c.stop());
}

#[test]
fn tunnels_added_remade_on_a_change_and_removed() {
    require_root();
    let p = prefix();
    // A "host" namespace with an underlay address: the tunnel devices are
    // made there and moved into conlink's namespace.
    let host = format!("{p}h");
    assert!(Command::new("ip")
        .args(["netns", "add", &host])
        .status()
        .unwrap()
        .success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _host = Del(host.clone());
    for args in [
        // (a veth pair: this kernel may have no dummy module)
        &[
            "link", "add", "under0", "type", "veth", "peer", "name", "under1",
        ][..],
        &["addr", "add", "192.168.78.1/24", "dev", "under0"],
        &["link", "set", "under0", "up"],
    ] {
        assert!(Command::new("ip")
            .args(["-n", &host])
            .args(args)
            .status()
            .unwrap()
            .success());
    }
    let tunnel = |remote: &str| {
        format!("tunnels:\n  - {{type: vxlan, bridge: s1, remote: {remote}, vni: 1002}}\n")
    };
    let mut c = Conlink::start_in(&host, &p, &two(&p, "", ""), &[]);
    c.wait_connected();
    let own = c.own_ns.clone();
    let (a0, b0) = (
        ifindex(&format!("{p}a"), "eth0"),
        ifindex(&format!("{p}b"), "eth0"),
    );

    c.edit_config(&two(&p, "", &tunnel("192.168.78.2")));
    c.wait_for("tunnel vxlan-1002: created", 1, Duration::from_secs(10));
    c.wait_for("All links connected", 2, Duration::from_secs(10));
    let t = ip_json(&own, &["-d", "link", "show", "dev", "vxlan-1002"]);
    assert_eq!(t[0]["master"], "s1", "{t}");
    assert_eq!(
        t[0]["linkinfo"]["info_data"]["remote"], "192.168.78.2",
        "{t}"
    );
    let t0 = t[0]["ifindex"].clone();

    // A new remote: a VXLAN's remote is fixed at creation, so the tunnel is
    // made again (same name, new ifindex).
    c.edit_config(&two(&p, "", &tunnel("192.168.78.3")));
    c.wait_for("tunnel vxlan-1002: removed", 1, Duration::from_secs(10));
    c.wait_for("tunnel vxlan-1002: created", 2, Duration::from_secs(10));
    c.wait_for("All links connected", 3, Duration::from_secs(10));
    let t = ip_json(&own, &["-d", "link", "show", "dev", "vxlan-1002"]);
    assert_eq!(
        t[0]["linkinfo"]["info_data"]["remote"], "192.168.78.3",
        "{t}"
    );
    assert_ne!(t[0]["ifindex"], t0);
    assert_eq!(t[0]["master"], "s1", "{t}");

    c.edit_config(&two(&p, "", ""));
    c.wait_for("tunnel vxlan-1002: removed", 2, Duration::from_secs(10));
    c.wait_for("All links connected", 4, Duration::from_secs(10));
    let names: Vec<String> = ip_json(&own, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect();
    assert!(!names.iter().any(|n| n == "vxlan-1002"), "{names:?}");
    assert_eq!(
        (
            ifindex(&format!("{p}a"), "eth0"),
            ifindex(&format!("{p}b"), "eth0")
        ),
        (a0, b0),
        "links on the tunnel's bridge were touched"
    );
    assert!(c.stop());
}

#[test]
fn commands_added_run_once_removed_are_forgotten() {
    require_root();
    let p = prefix();
    let mark = |n: &str| PathBuf::from(format!("/tmp/conlink-test-{p}-{n}"));
    struct Rm(Vec<PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for f in &self.0 {
                let _ = std::fs::remove_file(f);
            }
        }
    }
    let _rm = Rm(vec![mark("one"), mark("two")]);
    let cmd = |n: &str| {
        format!(
            "  - {{container: {p}a, command: 'echo ran >> {}'}}\n",
            mark(n).display()
        )
    };
    let mut c = Conlink::start(&p, &two(&p, "", ""), &[]);
    c.wait_connected();
    let a0 = ifindex(&format!("{p}a"), "eth0");

    // A command added: it runs once, now (the links are up already).
    c.edit_config(&two(&p, "", &format!("commands:\n{}", cmd("one"))));
    c.wait_for("exited 0", 1, Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(mark("one")).unwrap(), "ran\n");

    // A second one added: only the new one runs; the first is not run again.
    c.edit_config(&two(
        &p,
        "",
        &format!("commands:\n{}{}", cmd("one"), cmd("two")),
    ));
    c.wait_for("exited 0", 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(mark("two")).unwrap(), "ran\n");
    assert_eq!(
        std::fs::read_to_string(mark("one")).unwrap(),
        "ran\n",
        "ran twice"
    );

    // Both removed: nothing runs, nothing to undo; the link stays.
    c.edit_config(&two(&p, "", ""));
    c.wait_for("config reload", 3, Duration::from_secs(10));
    c.wait_for("All links connected", 4, Duration::from_secs(10));
    assert_eq!(c.log().iter().filter(|l| l.contains("exited 0")).count(), 2);
    assert_eq!(
        ifindex(&format!("{p}a"), "eth0"),
        a0,
        "a command edit touched the link"
    );
    assert!(c.stop());
}

/// A python TCP server in `ns` on `0.0.0.0:port` answering "hello" once.
fn serve_once(ns: &str, port: u16) -> std::process::Child {
    let code = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('0.0.0.0',{port}))\ns.listen(1)\nc,a=s.accept()\nc.sendall(b'hello')\nc.close()\n"
    );
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &code])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start python server")
}

/// Connects from `ns` to `addr:port` (retrying up to 10 s); the reply.
fn connect(ns: &str, addr: &str, port: u16) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.create_connection(('{addr}',{port}),timeout=1)\nprint(s.recv(100).decode())\n"
    );
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stderr(std::process::Stdio::null())
            .output()
            .expect("run python client");
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_port_forward_change_is_applied_in_place() {
    require_root();
    let p = prefix();
    // conlink's namespace made by the test with an `eth0` towards a client
    // namespace, as docker gives a conlink container one (conlink renames
    // it DOCKER-ETH0 and forwards arrive there).
    let (own, cl) = (format!("{p}own"), format!("{p}cl"));
    struct Del(Vec<String>);
    impl Drop for Del {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
    let _ns = Del(vec![own.clone(), cl.clone()]);
    for n in [&own, &cl] {
        assert!(Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .unwrap()
            .success());
    }
    for (ns, args) in [
        (
            &own,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &cl,
            ][..],
        ),
        (&own, &["addr", "add", "192.168.79.1/24", "dev", "eth0"]),
        (&own, &["link", "set", "eth0", "up"]),
        (&cl, &["addr", "add", "192.168.79.2/24", "dev", "eth0"]),
        (&cl, &["link", "set", "eth0", "up"]),
    ] {
        assert!(Command::new("ip")
            .args(["-n", ns])
            .args(args)
            .status()
            .unwrap()
            .success());
    }
    let fwd = |port: u16| format!(", forward: ['{port}:7080/tcp']");
    let mut c = Conlink::start(&p, &two(&p, &fwd(8080), ""), &[]);
    c.wait_connected();
    let a = format!("{p}a");
    let (a0, b0) = (ifindex(&a, "eth0"), ifindex(&format!("{p}b"), "eth0"));
    let mut srv = serve_once(&a, 7080);
    assert_eq!(connect(&cl, "192.168.79.1", 8080).as_deref(), Some("hello"));
    let _ = srv.wait();

    c.edit_config(&two(&p, &fwd(8081), ""));
    c.wait_for(
        // The old rules go, then the new ones come (two steps, each all or
        // nothing), on the same link.
        &format!("{a}/eth0: forward none -> 8081:7080/tcp"),
        1,
        Duration::from_secs(10),
    );
    c.wait_for("All links connected", 2, Duration::from_secs(10));
    let mut srv = serve_once(&a, 7080);
    assert_eq!(connect(&cl, "192.168.79.1", 8081).as_deref(), Some("hello"));
    let _ = srv.wait();
    let rules = Command::new("ip")
        .args(["netns", "exec", &own, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(rules.contains("8081") && !rules.contains("8080"), "{rules}");
    assert_eq!(
        (ifindex(&a, "eth0"), ifindex(&format!("{p}b"), "eth0")),
        (a0, b0),
        "a forward change remade a link"
    );
    assert!(c.stop());
}
