//! Routes and IPv6 on the real kernel: every route attribute and type the
//! model carries, in the main table and others (above 255 too), IPv4 and
//! IPv6, checked with `ip -j route show`; IPv6 addresses and pings between
//! namespaces; a route out of another dev.

mod common;

use common::{require_root, Ns};
use conlink_model::{IpNet, Route};
use conlink_net::LinkAttrs;
use serde_json::Value;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn route(s: &str) -> Route {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `ip -j [-6] route show table all`, without kernel-made routes.
fn routes(ns: &Ns, v6: bool) -> Vec<Value> {
    let fam = if v6 { "-6" } else { "-4" };
    ns.ip(&[fam, "-d", "route", "show", "table", "all"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] != "kernel" && r["table"] != "local")
        .filter(|r| !r["dst"].as_str().unwrap_or("").starts_with("fe80"))
        .filter(|r| !r["dst"].as_str().unwrap_or("").starts_with("ff00"))
        .cloned()
        .collect()
}

fn find<'a>(rs: &'a [Value], dst: &str, table: Option<&str>) -> &'a Value {
    rs.iter()
        .find(|r| {
            r["dst"] == dst
                && match table {
                    Some(t) => r["table"] == t,
                    None => r["table"].is_null() || r["table"] == "main",
                }
        })
        .unwrap_or_else(|| panic!("no route {dst} (table {table:?}) in {rs:#?}"))
}

/// Two namespaces joined by a veth, dual stack: a0 10.91.0.1 fd00:91::1,
/// b0 10.91.0.2 fd00:91::2.
fn pair() -> (Ns, Ns) {
    let a = Ns::new("ra");
    let b = Ns::new("rb");
    a.h.create_veth(&LinkAttrs::new("a0").up(), &LinkAttrs::new("b0").up(), &b.h)
        .unwrap();
    a.h.add_addr("a0", net("10.91.0.1/24")).unwrap();
    a.h.add_addr("a0", net("fd00:91::1/64")).unwrap();
    b.h.add_addr("b0", net("10.91.0.2/24")).unwrap();
    b.h.add_addr("b0", net("fd00:91::2/64")).unwrap();
    (a, b)
}

#[test]
fn ipv6_addresses_ping_and_read_back() {
    require_root();
    let (a, b) = pair();
    // nodad: usable at once, no "tentative" flag.
    let addrs = a.ip(&["-6", "addr", "show", "dev", "a0"]);
    let info = addrs[0]["addr_info"].as_array().unwrap();
    let mine = info
        .iter()
        .find(|i| i["local"] == "fd00:91::1")
        .expect("fd00:91::1 on a0");
    assert_eq!(mine["prefixlen"], 64);
    assert!(mine["tentative"].is_null(), "{mine}");
    assert!(b.ping("fd00:91::1"), "no IPv6 ping between namespaces");
    assert!(a.ping("10.91.0.2"), "no IPv4 ping on the dual-stack pair");
    assert_eq!(
        a.h.addrs("a0").unwrap(),
        vec![net("10.91.0.1/24"), net("fd00:91::1/64")]
    );
    a.h.del_addr("a0", net("fd00:91::1/64")).unwrap();
    assert_eq!(a.h.addrs("a0").unwrap(), vec![net("10.91.0.1/24")]);
}

#[test]
fn every_route_attribute_and_type_reaches_the_kernel() {
    require_root();
    let (a, b) = pair();
    for r in [
        "default via 10.91.0.2",
        "10.0.0.0/8 via 10.91.0.2 src 10.91.0.1 proto static metric 10 mtu 1400 advmss 1360 initcwnd 10 initrwnd 20 realms 1/2",
        "10.92.0.0/16 via 10.91.0.2 table 1000",
        "10.93.0.0/16 via 10.91.0.2 table 7 scope global",
        "10.94.0.5 via 10.91.0.99 onlink",
        "10.95.0.0/16 scope link",
        "blackhole 10.96.0.0/16",
        "unreachable 10.97.0.0/16 table 7",
        "prohibit 10.98.0.0/16",
        "throw 10.99.0.0/16 table 100",
        "default via fd00:91::2 metric 1024",
        "fd00:1::/64 via fd00:91::2 proto bird metric 5 mtu 1300",
        "fd00:2::/64 via fd00:91::2 table 2000",
        "blackhole fd00:3::/64",
        "unreachable fd00:4::/64",
    ] {
        a.h.add_route("a0", &route(r))
            .unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let v4 = routes(&a, false);
    let d = find(&v4, "default", None);
    assert_eq!(d["gateway"], "10.91.0.2");
    assert_eq!(d["dev"], "a0");
    assert_eq!(d["protocol"], "boot");
    let r = find(&v4, "10.0.0.0/8", None);
    assert_eq!(r["prefsrc"], "10.91.0.1");
    assert_eq!(r["protocol"], "static");
    assert_eq!(r["metric"], 10);
    assert_eq!(r["flow"], serde_json::json!({"from": "1", "to": "2"}));
    let m = r["metrics"].as_array().unwrap();
    for (k, v) in [
        ("mtu", 1400),
        ("advmss", 1360),
        ("initcwnd", 10),
        ("initrwnd", 20),
    ] {
        assert!(m.iter().any(|x| x[k] == v), "{k} {v} in {m:?}");
    }
    assert_eq!(
        find(&v4, "10.92.0.0/16", Some("1000"))["gateway"],
        "10.91.0.2"
    );
    assert_eq!(find(&v4, "10.93.0.0/16", Some("7"))["gateway"], "10.91.0.2");
    let o = find(&v4, "10.94.0.5", None);
    assert!(
        o["flags"].as_array().unwrap().iter().any(|f| f == "onlink"),
        "{o}"
    );
    assert_eq!(find(&v4, "10.95.0.0/16", None)["scope"], "link");
    assert_eq!(find(&v4, "10.96.0.0/16", None)["type"], "blackhole");
    assert_eq!(find(&v4, "10.97.0.0/16", Some("7"))["type"], "unreachable");
    assert_eq!(find(&v4, "10.98.0.0/16", None)["type"], "prohibit");
    assert_eq!(find(&v4, "10.99.0.0/16", Some("100"))["type"], "throw");
    let v6 = routes(&a, true);
    let d = find(&v6, "default", None);
    assert_eq!(d["gateway"], "fd00:91::2");
    assert_eq!(d["metric"], 1024);
    let r = find(&v6, "fd00:1::/64", None);
    assert_eq!(r["protocol"], "bird");
    assert_eq!(r["metric"], 5);
    assert_eq!(
        find(&v6, "fd00:2::/64", Some("2000"))["gateway"],
        "fd00:91::2"
    );
    assert_eq!(find(&v6, "fd00:3::/64", None)["type"], "blackhole");
    assert_eq!(find(&v6, "fd00:4::/64", None)["type"], "unreachable");
    // Replacing is idempotent; deleting removes exactly the route.
    a.h.add_route("a0", &route("blackhole 10.96.0.0/16"))
        .unwrap();
    a.h.del_route("a0", &route("blackhole 10.96.0.0/16"))
        .unwrap();
    a.h.del_route("a0", &route("fd00:2::/64 via fd00:91::2 table 2000"))
        .unwrap();
    let v4 = routes(&a, false);
    assert!(!v4.iter().any(|r| r["dst"] == "10.96.0.0/16"));
    assert!(!routes(&a, true).iter().any(|r| r["dst"] == "fd00:2::/64"));
    // The gatewayed routes carry traffic: b answers for 10.0.0.0/8 via a
    // host address.
    b.h.add_addr("lo", net("10.200.0.1/32")).unwrap();
    b.h.add_route("b0", &route("default via 10.91.0.1"))
        .unwrap();
    assert!(
        a.ping("10.200.0.1"),
        "no ping over 10.0.0.0/8 via 10.91.0.2"
    );
}

#[test]
fn a_route_naming_another_dev_goes_out_of_it() {
    require_root();
    let (a, b) = pair();
    // A second link in a: a1 <-> c (10.200.0.1/24 on a1, .2 on c).
    let c = Ns::new("rc");
    a.h.create_veth(&LinkAttrs::new("a1").up(), &LinkAttrs::new("c0").up(), &c.h)
        .unwrap();
    a.h.add_addr("a1", net("10.200.0.1/24")).unwrap();
    c.h.add_addr("c0", net("10.200.0.2/24")).unwrap();
    c.h.add_addr("lo", net("10.128.5.5/32")).unwrap();
    c.h.add_route("c0", &route("default via 10.200.0.1"))
        .unwrap();
    // The k3s example, configured on a0's link but naming a1.
    a.h.add_route("a0", &route("10.128.0.0/15 via 10.200.0.2 dev a1"))
        .unwrap();
    let r = find(&routes(&a, false), "10.128.0.0/15", None).clone();
    assert_eq!(r["dev"], "a1");
    assert_eq!(r["gateway"], "10.200.0.2");
    assert!(a.ping("10.128.5.5"), "no ping through the route out of a1");
    drop(b);
}
