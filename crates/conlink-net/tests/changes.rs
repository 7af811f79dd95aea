//! A run of link-level changes in one datagram (`Handle::apply`) on the
//! real kernel: every change applied in order with one verdict each, a
//! refused change in the middle failing alone, and an index gone stale
//! behind the handle's back looked up again.

mod common;

use common::{require_root, Ns};
use conlink_model::{IpNet, Route};
use conlink_net::{nl, Change, Error, LinkAttrs};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The addresses on `dev` (`ip -j addr show`): (address, prefix length).
fn addrs(ns: &Ns, dev: &str) -> Vec<(String, u64)> {
    ns.ip(&["addr", "show", "dev", dev])[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let local = x["local"].as_str().unwrap_or("").to_string();
            (local, x["prefixlen"].as_u64().unwrap_or(0))
        })
        .collect()
}

#[test]
fn a_run_goes_in_one_datagram_with_a_verdict_per_change() {
    require_root();
    let a = Ns::new("ca");
    let b = Ns::new("cb");
    a.h.create_veth(&LinkAttrs::new("a0"), &LinkAttrs::new("b0"), &b.h)
        .unwrap();
    let route: Route = "10.93.0.0/16 via 10.92.0.254".parse().unwrap();
    let addr = net("10.92.0.1/24");
    let run = [
        Change::Mtu("a0", 1400),
        Change::Up("a0", true),
        Change::AddAddr("a0", addr),
        // Refused by the kernel: not there.
        Change::Up("nosuch0", true),
        Change::AddRoute("a0", &route),
        Change::Mark("a0", "test run"),
    ];
    let (dg0, msg0) = nl::sent();
    let verdicts = a.h.apply(&run);
    let (dg1, msg1) = nl::sent();
    assert_eq!(
        (dg1 - dg0, msg1 - msg0),
        (1, 6),
        "one datagram, six requests"
    );
    assert_eq!(verdicts.len(), 6);
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v.is_ok(), i != 3, "change {i}: {v:?}");
    }
    let e = verdicts[3].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("set nosuch0 up"),
        "the error names the change: {e}"
    );
    // The changes after the refused one took effect, in order.
    let l = a.link("a0");
    assert_eq!(l["mtu"], 1400, "{l}");
    assert!(
        l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{l}"
    );
    assert_eq!(l["ifalias"], "conlink:test run", "{l}");
    let got = addrs(&a, "a0");
    assert!(got.contains(&("10.92.0.1".into(), 24)), "{got:?}");
    let r = a.ip(&["route", "show", "10.93.0.0/16"]);
    assert_eq!(r[0]["gateway"], "10.92.0.254", "{r}");
    // The run's removals, again in one datagram.
    let verdicts = a.h.apply(&[
        Change::DelRoute("a0", &route),
        Change::DelAddr("a0", addr),
        Change::Up("a0", false),
    ]);
    assert!(verdicts.iter().all(|v| v.is_ok()), "{verdicts:?}");
    assert!(a
        .ip(&["route", "show", "10.93.0.0/16"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn an_index_gone_stale_is_looked_up_again() {
    require_root();
    let a = Ns::new("cs");
    let b = Ns::new("ct");
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(["-n", &a.name])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}");
    };
    ip(&[
        "link", "add", "a0", "up", "type", "veth", "peer", "b0", "netns", &b.name,
    ]);
    // Cached now: the index of a0.
    a.h.add_addr("a0", net("10.94.0.1/24")).unwrap();
    // a0 deleted and made again behind the handle's back: a new index.
    ip(&["link", "del", "a0"]);
    ip(&[
        "link", "add", "a0", "up", "type", "veth", "peer", "b0", "netns", &b.name,
    ]);
    let v = a.h.apply(&[Change::AddAddr("a0", net("10.94.0.2/24"))]);
    assert!(v[0].is_ok(), "{v:?}");
    let got = addrs(&a, "a0");
    assert!(got.contains(&("10.94.0.2".into(), 24)), "{got:?}");
    // An interface that is not there at all: a clear error, nothing sent.
    let v = a.h.apply(&[Change::AddAddr("gone0", net("10.94.0.3/24"))]);
    assert!(
        matches!(&v[0], Err(Error::NoSuchLink { name, .. }) if name == "gone0"),
        "{v:?}"
    );
}
