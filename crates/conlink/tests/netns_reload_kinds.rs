//! Live reload of the properties `netns_reload.rs` does not cover (netns
//! runtime, real kernel): ethtool settings, tunnels and commands; for each,
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
