//! Privileged tests of links, addresses, routes, marks, groups and netns
//! against the real kernel, checked with `ip -j` and real pings.

mod common;

use common::{require_root, uniq, Ns};
use conlink_model::{Ipv4Net, MacAddr, Route};
use conlink_net::{Handle, LinkAttrs, LinkKind, MacvlanMode, Netns};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn veth_into_namespaces_bridge_and_ping() {
    require_root();
    let sw = Ns::new("sw");
    let a = Ns::new("a");
    let b = Ns::new("b");
    let owner = format!("t{}", uniq());
    let group = 4000 + (std::process::id() % 1000);
    sw.h.create_bridge(&LinkAttrs::new("br0").owner(&owner).up())
        .unwrap();
    for (ns, outer, ip, mac) in [
        (&a, "a-eth0", "10.77.0.1/24", "c2:00:00:00:00:01"),
        (&b, "b-eth0", "10.77.0.2/24", "c2:00:00:00:00:02"),
    ] {
        let mac: MacAddr = mac.parse().unwrap();
        let outer_attrs = LinkAttrs::new(outer)
            .group(group)
            .master("br0")
            .owner(&owner)
            .up();
        let inner = LinkAttrs::new("eth0")
            .mtu(9000)
            .mac(mac)
            .group(group)
            .owner(&owner)
            .up();
        sw.h.create_veth(&outer_attrs, &inner, &ns.h).unwrap();
        ns.h.add_addr("eth0", net(ip)).unwrap();
        ns.h.set_tx_checksum("eth0", false).unwrap();
        // Checked with ip -j: name, MTU, MAC, alias mark, group, state.
        let l = ns.link("eth0");
        assert_eq!(l["mtu"], 9000);
        assert_eq!(l["address"], mac.to_string());
        assert_eq!(l["ifalias"], format!("conlink:{owner}"));
        assert_eq!(l["group"], group.to_string());
        assert!(l["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
        let o = sw.link(outer);
        assert_eq!(o["master"], "br0");
        assert_eq!(o["linkinfo"]["info_kind"], "veth");
        assert_eq!(o["ifalias"], format!("conlink:{owner}"));
        // The veth end's MTU is 9000 inside; the outer end keeps the default.
        let addr = &ns.ip(&["addr", "show", "dev", "eth0"])[0]["addr_info"];
        let v4 = addr
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["family"] == "inet")
            .unwrap();
        assert_eq!(v4["local"], ip.split('/').next().unwrap());
        assert_eq!(v4["prefixlen"], 24);
        assert_eq!(v4["broadcast"], "10.77.0.255");
        assert_eq!(ns.h.addrs("eth0").unwrap(), vec![net(ip).into()]);
    }
    // ethtool tx checksum off, seen by ethtool itself.
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &a.name, "ethtool", "-k", "eth0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("tx-checksumming: off"), "{text} {err}");
    assert!(a.ping("10.77.0.2"), "no ping a -> b through the bridge");
    assert!(b.ping("10.77.0.1"), "no ping b -> a through the bridge");

    // The mark finds exactly our links; group delete removes all veths
    // (both ends) in one request, the bridge stays.
    let marked: Vec<String> =
        sw.h.marked_links(Some(&owner))
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
    assert_eq!(marked.len(), 3, "{marked:?}");
    assert!(sw.h.delete_group(group).unwrap());
    assert!(!sw.has_link("a-eth0") && !sw.has_link("b-eth0"));
    assert!(!sw.h.delete_group(group).unwrap(), "empty group: false");
    assert!(!a.has_link("eth0") && !b.has_link("eth0"));
    assert!(sw.has_link("br0"));
    let gone = sw.h.delete_marked(Some(&owner)).unwrap();
    assert_eq!(gone, vec!["br0".to_string()]);
    assert!(!sw.has_link("br0"));
    assert!(sw.h.delete_group(0).is_err(), "group 0 must be refused");
}

#[test]
fn routes_with_every_field() {
    require_root();
    let n = Ns::new("rt");
    let peer = Ns::new("rtp");
    n.h.create_veth(
        &LinkAttrs::new("eth0").up(),
        &LinkAttrs::new("eth0").up(),
        &peer.h,
    )
    .unwrap();
    n.h.add_addr("eth0", net("10.78.0.1/24")).unwrap();
    for r in [
        "default via 10.78.0.254 metric 7",
        "10.1.0.0/16 via 10.78.0.100 src 10.78.0.1 mtu 1300",
        "10.2.0.0/16 via 10.78.0.100 table 1000",
        "10.3.3.3 scope link",
        "10.4.0.0/16 via 10.99.0.1 onlink",
    ] {
        let route: Route = r.parse().unwrap();
        n.h.add_route("eth0", &route).unwrap();
        // replace: re-applying is safe
        n.h.add_route("eth0", &route).unwrap();
    }
    let main = n.ip(&["route", "show"]);
    let find = |v: &serde_json::Value, dst: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["dst"] == dst)
            .unwrap_or_else(|| panic!("no route {dst} in {v}"))
            .clone()
    };
    let d = find(&main, "default");
    assert_eq!(d["gateway"], "10.78.0.254");
    assert_eq!(d["metric"], 7);
    assert_eq!(d["dev"], "eth0");
    let r = find(&main, "10.1.0.0/16");
    assert_eq!(r["prefsrc"], "10.78.0.1");
    assert_eq!(r["metrics"][0]["mtu"], 1300);
    let r = find(&main, "10.3.3.3");
    assert_eq!(r["scope"], "link");
    let r = find(&main, "10.4.0.0/16");
    assert!(r["flags"].as_array().unwrap().iter().any(|f| f == "onlink"));
    let t = n.ip(&["route", "show", "table", "1000"]);
    assert_eq!(find(&t, "10.2.0.0/16")["gateway"], "10.78.0.100");
    // A bad route is refused by the kernel with a clear error.
    let bad: Route = "10.5.0.0/16 via 10.99.0.1".parse().unwrap();
    let e = n.h.add_route("eth0", &bad).unwrap_err();
    assert!(e.to_string().contains("add route 10.5.0.0/16"), "{e}");
}

#[test]
fn set_mtu_mac_up_rename_alias_group() {
    require_root();
    let n = Ns::new("set");
    let p = Ns::new("setp");
    n.h.create_veth(&LinkAttrs::new("x0"), &LinkAttrs::new("x1"), &p.h)
        .unwrap();
    let mac: MacAddr = "c2:11:22:33:44:55".parse().unwrap();
    n.h.set_mtu("x0", 1400).unwrap();
    n.h.set_mac("x0", mac).unwrap();
    n.h.set_group("x0", 42).unwrap();
    n.h.set_alias("x0", "hello").unwrap();
    n.h.rename("x0", "y0").unwrap();
    n.h.set_up("y0", true).unwrap();
    let l = n.link("y0");
    assert_eq!(l["mtu"], 1400);
    assert_eq!(l["address"], "c2:11:22:33:44:55");
    assert_eq!(l["group"], "42");
    assert_eq!(l["ifalias"], "hello");
    assert!(l["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let info = n.h.link("y0").unwrap().unwrap();
    assert_eq!(info.mtu, 1400);
    assert_eq!(info.mac, Some(mac));
    assert_eq!(info.group, 42);
    assert!(info.up);
    assert_eq!(info.kind.as_deref(), Some("veth"));
    assert!(n.h.link("nope0").unwrap().is_none());
    let e = n.h.set_mtu("nope0", 1400).unwrap_err();
    assert!(e.is_no_device(), "{e:?}");
    let e =
        n.h.create_veth(&LinkAttrs::new("y0"), &LinkAttrs::new("z1"), &p.h)
            .unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    assert!(!p.has_link("z1"));
    assert!(n
        .h
        .create_link(
            &LinkAttrs::new("much-too-long-name"),
            &LinkKind::Bridge,
            None
        )
        .is_err());
}

#[test]
fn move_into_namespace_renames_when_name_taken() {
    require_root();
    let host = Ns::new("mvh");
    let c = Ns::new("mvc");
    let cp = Ns::new("mvcp");
    // The container already has an eth0.
    c.h.create_veth(&LinkAttrs::new("eth0"), &LinkAttrs::new("eth0"), &cp.h)
        .unwrap();
    host.h
        .create_veth(&LinkAttrs::new("m0"), &LinkAttrs::new("m1"), &host.h)
        .unwrap();
    // Moving m0 in as eth1 (free name), then m1 in as eth0 (taken: error).
    host.h.move_to("m0", &c.h, Some("eth1")).unwrap();
    assert!(c.has_link("eth1") && !host.has_link("m0"));
    let e = host.h.move_to("m1", &c.h, Some("eth0")).unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    // Nothing half-built: no temporary name left in the container.
    assert!(
        c.link_names().iter().all(|n| !n.starts_with("cltmp")),
        "{:?}",
        c.link_names()
    );
}

#[test]
fn macvlan_created_in_host_placed_in_container_and_pings() {
    require_root();
    let host = Ns::new("mh");
    let far = Ns::new("mf");
    let c = Ns::new("mc");
    let c2 = Ns::new("mc2");
    // Parent p0 in "host", its veth peer in "far" with 10.79.0.1.
    host.h
        .create_veth(
            &LinkAttrs::new("p0").up(),
            &LinkAttrs::new("p1").up(),
            &far.h,
        )
        .unwrap();
    far.h.add_addr("p1", net("10.79.0.1/24")).unwrap();
    // The container already has an eth0, so the macvlan is created under a
    // temporary name and renamed inside only if the kernel checks names
    // in the creating namespace; either way it must end up as eth0.
    let attrs = LinkAttrs::new("eth0").mtu(1400).owner("mt").up();
    host.h
        .create_link(
            &attrs,
            &LinkKind::Macvlan {
                parent: "p0".into(),
                mode: Some(MacvlanMode::Bridge),
            },
            Some(&c.h),
        )
        .unwrap();
    assert!(!host.has_link("eth0"));
    let l = c.link("eth0");
    assert_eq!(l["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(l["mtu"], 1400);
    assert_eq!(l["ifalias"], "conlink:mt");
    c.h.add_addr("eth0", net("10.79.0.2/24")).unwrap();
    assert!(c.ping("10.79.0.1"), "no ping over macvlan");

    // macvtap in a second container, a name clash in the host namespace
    // (p0's name) exercising the temporary-name path.
    host.h
        .create_link(
            &LinkAttrs::new("p0").owner("mt").up(),
            &LinkKind::Macvtap {
                parent: "p0".into(),
                mode: Some(MacvlanMode::Vepa),
            },
            Some(&c2.h),
        )
        .unwrap();
    let l = c2.link("p0");
    assert_eq!(l["linkinfo"]["info_kind"], "macvtap");
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "vepa");
    assert!(l["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    assert!(c2.link_names().iter().all(|n| !n.starts_with("cltmp")));
    assert!(host.link_names().iter().all(|n| !n.starts_with("cltmp")));
}

#[test]
fn netns_create_run_delete() {
    require_root();
    let name = format!("clt-ns-{}", uniq());
    let ns = Netns::create_named(&name).unwrap();
    assert!(Netns::exists_named(&name));
    let listed = common::json_cmd("ip", &["-j", "netns", "list"]);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == name.as_str()));
    // Creating it again: EEXIST.
    assert!(Netns::create_named(&name).unwrap_err().is_exists());
    // run() executes inside the namespace.
    let inside = ns
        .run(|| {
            std::fs::metadata("/proc/thread-self/ns/net").map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(inside, ns.inode().unwrap());
    assert_ne!(inside, Netns::current().unwrap().inode().unwrap());
    // A handle opened there sees only lo.
    let h = Handle::open(&ns).unwrap();
    let names: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["lo".to_string()]);
    drop(h);
    drop(ns);
    Netns::delete_named(&name).unwrap();
    assert!(!Netns::exists_named(&name));
    assert!(Netns::delete_named(&name).is_err());
    assert!(Netns::create_named("../etc").is_err());
}

/// An anonymous namespace (conlink's own in a host-network container) is
/// no file under /run/netns; closing its last descriptor destroys it and
/// what it holds, a veth's peer in another namespace included.
#[test]
fn anonymous_netns_goes_with_its_last_descriptor() {
    require_root();
    let other = Ns::new("an");
    let label = format!("anon-{}", uniq());
    let ns = Netns::create_anonymous(&label).unwrap();
    assert_eq!(ns.path(), label);
    assert_ne!(
        ns.inode().unwrap(),
        Netns::current().unwrap().inode().unwrap()
    );
    let h = Handle::open(&ns).unwrap();
    let names: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["lo".to_string()]);
    let peer = format!("an{}", uniq());
    h.create_veth(
        &LinkAttrs::new("inner0").up(),
        &LinkAttrs::new(&peer).up(),
        &other.h,
    )
    .unwrap();
    assert!(other.has_link(&peer));
    // No name was made for it: no file under /run/netns is this namespace
    // (other tests of this binary make named ones meanwhile).
    let me = ns.inode().unwrap();
    let named: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| Netns::open(e.path()).is_ok_and(|n| n.inode().ok() == Some(me)))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        named.is_empty(),
        "the anonymous namespace got a name: {named:?}"
    );
    drop(h);
    drop(ns);
    // The kernel tears the namespace down asynchronously.
    let t0 = std::time::Instant::now();
    while other.has_link(&peer) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "veth peer {peer} outlived the anonymous namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn stale_cached_index_is_looked_up_again() {
    require_root();
    let name = format!("clt-cache-{}", uniq());
    let h = Handle::create_netns(&name).unwrap();
    let _guard = NsName(name.clone());
    h.create_veth(&LinkAttrs::new("s0").up(), &LinkAttrs::new("s1").up(), &h)
        .unwrap();
    h.add_addr("s0", net("10.81.0.1/24")).unwrap();
    // Delete and recreate s0 behind the handle's back (new ifindex).
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip")
            .args([&["-n", name.as_str()][..], args].concat())
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    };
    ip(&["link", "del", "s0"]);
    ip(&["link", "add", "s0", "type", "veth", "peer", "name", "s1"]);
    h.add_addr("s0", net("10.81.0.2/24")).unwrap();
    let v = common::json_cmd("ip", &["-n", &name, "-j", "addr", "show", "dev", "s0"]);
    let addrs: Vec<_> = v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| a["local"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs, vec!["10.81.0.2".to_string()]);
    // A link that is really gone: a clear error naming it.
    ip(&["link", "del", "s0"]);
    let e = h.add_addr("s0", net("10.81.0.3/24")).unwrap_err();
    assert!(e.is_no_device() && e.to_string().contains("s0"), "{e}");
}

/// Deletes a named namespace on drop.
struct NsName(String);
impl Drop for NsName {
    fn drop(&mut self) {
        let _ = Netns::delete_named(&self.0);
    }
}

#[test]
fn ethtool_offloads_from_the_model() {
    require_root();
    let n = Ns::new("eth");
    n.h.create_veth(&LinkAttrs::new("o0"), &LinkAttrs::new("o1"), &n.h)
        .unwrap();
    let s: conlink_model::EthtoolSetting = "--offload rx off tx off sg off tso off gso off gro on"
        .parse()
        .unwrap();
    n.h.apply_ethtool("o0", &s).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &n.name, "ethtool", "-k", "o0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "rx-checksumming: off",
        "tx-checksumming: off",
        "scatter-gather: off",
        // ethtool's "tcp-segmentation-offload" aggregate also covers bits
        // the legacy TSO ioctl does not touch (accecn): check the base one.
        "tx-tcp-segmentation: off",
        "generic-segmentation-offload: off",
        "generic-receive-offload: on",
    ] {
        assert!(text.contains(want), "{want} missing in:\n{text}");
    }
    for feat in ["lro", "ufo"] {
        match n.h.set_offload("o0", feat, true) {
            Ok(()) => {}
            Err(e) => assert!(
                e.to_string()
                    .starts_with(&format!("ethtool {feat} on on o0:")),
                "{e}"
            ),
        }
    }
    let e = n.h.set_tx_checksum("nope0", false).unwrap_err();
    assert!(e.is_no_device(), "{e:?}");
}

#[test]
fn handle_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Handle>();
    check::<Netns>();
}

#[test]
fn dump_of_many_links_spans_several_reads() {
    require_root();
    let n = Ns::new("many");
    for i in 0..150 {
        n.h.create_veth(
            &LinkAttrs::new(format!("m{i}")).group(9).owner("many"),
            &LinkAttrs::new(format!("n{i}")).group(9),
            &n.h,
        )
        .unwrap();
    }
    let ours = n.h.links().unwrap();
    let theirs = n.link_names();
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours.len(), 301);
    assert_eq!(n.h.marked_links(Some("many")).unwrap().len(), 150);
    assert_eq!(n.h.marked_links(Some("other")).unwrap().len(), 0);
    assert!(n.h.delete_group(9).unwrap());
    assert_eq!(n.link_names(), vec!["lo".to_string()]);
}

/// A veth made in one batch: outer end bridged, up, marked and without an
/// IPv6 link-local address (`addrgenmode none`); the peer up and marked in
/// its namespace, addressable right away through the echoed index.
#[test]
fn batched_veth_outer_end_has_no_ipv6_link_local() {
    require_root();
    let sw = Ns::new("bv6s");
    let ns = Ns::new("bv6c");
    sw.h.create_bridge(&LinkAttrs::new("br0").up()).unwrap();
    sw.h.create_veth(
        &LinkAttrs::new("o6")
            .master("br0")
            .owner("t6")
            .no_ipv6_ll()
            .up(),
        &LinkAttrs::new("eth0").owner("t6").up(),
        &ns.h,
    )
    .unwrap();
    ns.h.add_addr("eth0", net("10.79.0.1/24")).unwrap();
    let o = sw.link("o6");
    assert_eq!(o["master"], "br0");
    assert_eq!(o["ifalias"], "conlink:t6");
    assert_eq!(o["inet6_addr_gen_mode"], "none", "{o}");
    assert!(o["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let v6 = sw.ip(&["-6", "addr", "show", "dev", "o6"]);
    assert!(
        v6.as_array().is_none_or(|a| a
            .iter()
            .all(|l| l["addr_info"].as_array().is_none_or(|x| x.is_empty()))),
        "outer end has IPv6 addresses: {v6}"
    );
    let e = ns.link("eth0");
    assert_eq!(e["ifalias"], "conlink:t6");
    assert!(e["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let a = &ns.ip(&["addr", "show", "dev", "eth0"])[0]["addr_info"];
    assert!(
        a.as_array()
            .unwrap()
            .iter()
            .any(|x| x["local"] == "10.79.0.1"),
        "{a}"
    );
}

/// A Linux bridge takes at most 1023 ports (BR_MAX_PORTS less port 0): the 1024th
/// join fails with an error naming the port and the bridge and saying why
/// (the errno's own text is "Exchange full").
#[test]
fn a_full_bridge_says_so() {
    require_root();
    let sw = Ns::new("full");
    sw.h.create_bridge(&LinkAttrs::new("br0").up()).unwrap();
    for i in 0..1023 {
        sw.h.create_veth(
            &LinkAttrs::new(format!("p{i}")),
            &LinkAttrs::new(format!("q{i}")),
            &sw.h,
        )
        .unwrap();
        sw.h.set_master(&format!("p{i}"), Some("br0")).unwrap();
    }
    sw.h.create_veth(&LinkAttrs::new("p1023"), &LinkAttrs::new("q1023"), &sw.h)
        .unwrap();
    let e = sw.h.set_master("p1023", Some("br0")).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EXFULL), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("add p1023 to bridge br0: ")
            && msg.contains("bridge br0 is full: a Linux bridge takes at most 1023 ports"),
        "{msg}"
    );
}
