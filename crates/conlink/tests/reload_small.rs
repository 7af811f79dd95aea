//! The short version of `bench/reload` as a check of work, not time: the
//! same one-link change (an MTU, in place) in a small and a larger lab
//! costs the same operations and netlink messages, as the daemon reports
//! them on its `config reload (...): done` line; untouched links keep
//! their ifindex.

mod common;

use std::time::Duration;

use common::{ip_json, prefix, require_root, Conlink};

fn config(p: &str, n: usize, mtu1: u32) -> String {
    let mut s = String::from("bridges:\n  - {bridge: lan, mode: linux}\nlinks:\n");
    for i in 1..=n {
        let mtu = if i == 1 { mtu1 } else { 9000 };
        s += &format!(
            "  - {{container: {p}n{i}, dev: eth0, bridge: lan, mtu: {mtu}, ip: 10.215.{}.{}/16}}\n",
            i / 256,
            i % 256
        );
    }
    s
}

/// (operations, netlink messages, datagrams) of the `n`-th reload.
fn work(c: &Conlink, n: usize) -> (u64, u64, u64) {
    let log = c.log();
    let line = log
        .iter()
        .filter(|l| l.contains("config reload (file changed): done"))
        .nth(n - 1)
        .unwrap_or_else(|| panic!("no reload line {n}: {log:#?}"));
    let num = |after: &str| -> u64 {
        let head = line.split(after).next().expect("field");
        head.rsplit(' ')
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number before {after:?} in {line}"))
    };
    (
        num(" operation(s)"),
        num(" netlink message(s)"),
        num(" datagram(s)"),
    )
}

/// Starts a lab of `n` links, makes three MTU edits on the first link;
/// returns each reload's work.
fn lab(n: usize) -> Vec<(u64, u64, u64)> {
    let p = prefix();
    let mut c = Conlink::start(&p, &config(&p, n, 9000), &[]);
    c.wait_connected();
    let last = format!("{p}n{n}");
    let untouched = ip_json(&last, &["link", "show", "dev", "eth0"])[0]["ifindex"].clone();
    let mut got = Vec::new();
    for (k, mtu) in [1500, 9000, 1400].into_iter().enumerate() {
        c.edit_config(&config(&p, n, mtu));
        c.wait_for(
            "config reload (file changed): done",
            k + 1,
            Duration::from_secs(30),
        );
        let l = &ip_json(&format!("{p}n1"), &["link", "show", "dev", "eth0"])[0];
        assert_eq!(l["mtu"], mtu, "{l}");
        got.push(work(&c, k + 1));
    }
    assert_eq!(
        ip_json(&last, &["link", "show", "dev", "eth0"])[0]["ifindex"],
        untouched,
        "an untouched link was remade"
    );
    assert!(c.stop());
    got
}

#[test]
fn a_one_link_change_costs_the_same_in_a_small_and_a_larger_lab() {
    require_root();
    let small = lab(10);
    let large = lab(80);
    // MTU on both veth ends, then the ownership marker on both (the hash
    // of the new spec): 2 operations, 4 netlink messages, whatever the lab.
    for w in small.iter().chain(&large) {
        assert_eq!(*w, (2, 4, 4), "small {small:?}, large {large:?}");
    }
}
