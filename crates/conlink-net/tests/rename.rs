//! Privileged: renaming an interface in use keeps its addresses and routes
//! (conlink renames its docker `eth0` to `DOCKER-ETH0` at startup).

mod common;

use common::{require_root, Ns};
use conlink_model::Route;
use conlink_net::LinkAttrs;

#[test]
fn rename_keeps_addresses_and_routes() {
    require_root();
    let a = Ns::new("rna");
    let b = Ns::new("rnb");
    a.h.create_veth(&LinkAttrs::new("eth0"), &LinkAttrs::new("peer0"), &b.h)
        .unwrap();
    a.h.add_addr(
        "eth0",
        "172.30.9.2/24".parse::<conlink_model::IpNet>().unwrap(),
    )
    .unwrap();
    a.h.set_up("eth0", true).unwrap();
    b.h.add_addr(
        "peer0",
        "172.30.9.1/24".parse::<conlink_model::IpNet>().unwrap(),
    )
    .unwrap();
    b.h.set_up("peer0", true).unwrap();
    let default: Route = "default via 172.30.9.1".parse().unwrap();
    let extra: Route = "10.66.0.0/16 via 172.30.9.1 metric 7".parse().unwrap();
    a.h.add_route("eth0", &default).unwrap();
    a.h.add_route("eth0", &extra).unwrap();
    let listed = a.h.routes("eth0").unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    a.h.rename_keeping_config("eth0", "DOCKER-ETH0").unwrap();

    assert!(!a.has_link("eth0"));
    let l = a.link("DOCKER-ETH0");
    assert_eq!(l["operstate"], "UP", "{l}");
    let addrs = a.h.addrs("DOCKER-ETH0").unwrap();
    assert_eq!(addrs, vec!["172.30.9.2/24".parse().unwrap()]);
    let routes = a.ip(&["route", "show"]);
    let text = routes.to_string();
    assert!(text.contains("\"dst\":\"default\""), "{text}");
    assert!(
        text.contains("\"dst\":\"10.66.0.0/16\"") && text.contains("\"metric\":7"),
        "{text}"
    );
    assert!(a.ping("172.30.9.1"), "no traffic after rename");
}
