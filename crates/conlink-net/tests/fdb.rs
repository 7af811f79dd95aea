//! Head-end replication against the real kernel: one FDB-driven VXLAN
//! device per host on a bridge, all-zeros FDB entries for the other hosts
//! (`bridge fdb append`), pings across, and a removed entry stops the
//! traffic to that host only.

mod common;

use std::net::Ipv4Addr;

use common::{json_cmd, require_root, Ns};
use conlink_net::{LinkAttrs, LinkKind};

/// The all-zeros destinations of `dev` as `bridge -j fdb show` lists them.
fn bridge_flood(ns: &Ns, dev: &str) -> Vec<String> {
    let v = json_cmd("bridge", &["-n", &ns.name, "-j", "fdb", "show", "dev", dev]);
    let mut out: Vec<String> = v
        .as_array()
        .expect("bridge -j gives a list")
        .iter()
        .filter(|e| e["mac"] == "00:00:00:00:00:00")
        .filter_map(|e| e["dst"].as_str().map(String::from))
        .collect();
    out.sort();
    out
}

#[test]
fn flood_entries_replicate_to_each_peer_and_removal_stops_one() {
    require_root();
    // Three "hosts" on an underlay bridge.
    let ul = Ns::new("ful");
    ul.h.create_bridge(&LinkAttrs::new("br0").up()).unwrap();
    let addrs: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(192, 168, 78, i)).collect();
    let mut hosts = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let h = Ns::new("fh");
        ul.h.create_veth(
            &LinkAttrs::new(format!("p{i}")).master("br0").up(),
            &LinkAttrs::new("u0").up(),
            &h.h,
        )
        .unwrap();
        h.h.add_addr(
            "u0",
            format!("{a}/24").parse::<conlink_model::Ipv4Net>().unwrap(),
        )
        .unwrap();
        // conlink's namespace on the host: a bridge, one node on it, the
        // tunnel made on the host (it reaches the underlay) and moved in.
        let c = Ns::new("fc");
        let node = Ns::new("fn");
        c.h.create_bridge(&LinkAttrs::new("s1").up()).unwrap();
        c.h.create_veth(
            &LinkAttrs::new("n0").master("s1").up(),
            &LinkAttrs::new("eth0").up(),
            &node.h,
        )
        .unwrap();
        node.h
            .add_addr(
                "eth0",
                format!("10.81.0.{}/24", i + 1)
                    .parse::<conlink_model::Ipv4Net>()
                    .unwrap(),
            )
            .unwrap();
        let kind = LinkKind::VxlanFdb {
            vni: 4242,
            dstport: 8472,
        };
        h.h.create_link(
            &LinkAttrs::new("vxlan-4242").master("s1").mtu(1450).up(),
            &kind,
            Some(&c.h),
        )
        .unwrap();
        let l = c.link("vxlan-4242");
        assert_eq!(l["linkinfo"]["info_kind"], "vxlan");
        assert_eq!(l["linkinfo"]["info_data"]["id"], 4242);
        assert_eq!(l["linkinfo"]["info_data"]["port"], 8472);
        assert!(l["linkinfo"]["info_data"]["remote"].is_null());
        assert_eq!(l["mtu"], 1450);
        for (j, peer) in addrs.iter().enumerate() {
            if j != i {
                c.h.fdb_append("vxlan-4242", *peer).unwrap();
            }
        }
        // Appending twice converges (a re-run after a restart).
        c.h.fdb_append("vxlan-4242", addrs[(i + 1) % 3]).unwrap();
        hosts.push((h, c, node));
    }
    let others = |i: usize| -> Vec<Ipv4Addr> {
        addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| *a)
            .collect()
    };
    for (i, (_, c, _)) in hosts.iter().enumerate() {
        assert_eq!(c.h.fdb_flood("vxlan-4242").unwrap(), others(i));
        let want: Vec<String> = others(i).iter().map(|a| a.to_string()).collect();
        assert_eq!(bridge_flood(c, "vxlan-4242"), want);
    }
    // Host 1 drops host 3 from its flood list before any traffic: node 1's
    // ARP request for node 3 is never sent there, so node 3 is unreachable
    // from node 1 while host 2 still is.
    let (_, c1, n1) = &hosts[0];
    c1.h.fdb_del("vxlan-4242", addrs[2]).unwrap();
    c1.h.fdb_del("vxlan-4242", addrs[2]).unwrap(); // absent: not an error
    assert_eq!(c1.h.fdb_flood("vxlan-4242").unwrap(), vec![addrs[1]]);
    assert_eq!(bridge_flood(c1, "vxlan-4242"), vec![addrs[1].to_string()]);
    assert!(
        !n1.ping("10.81.0.3"),
        "host 3 reached without a flood entry"
    );
    assert!(n1.ping("10.81.0.2"), "host 2 lost with host 3's entry");
    // Host 3 comes back: appended again, it is reached.
    c1.h.fdb_append("vxlan-4242", addrs[2]).unwrap();
    assert!(
        n1.ping("10.81.0.3"),
        "host 3 not reached after re-adding it"
    );
    // Every node reaches every other one (ARP is flooded to each peer).
    for (i, (_, _, node)) in hosts.iter().enumerate() {
        for j in 0..3 {
            if j != i {
                let dst = format!("10.81.0.{}", j + 1);
                assert!(node.ping(&dst), "host {} cannot ping {dst}", i + 1);
            }
        }
    }
}
