//! `nat` (spec §4) on the real kernel: a client, a container doing 1:1 NAT on
//! its `eth0`, and a server behind it, each in its own namespace.
//!
//! ```text
//! cli c0 10.81.0.1/24 ── eth0 10.81.0.2/24 [ctr] in0 10.82.0.1/24 ── s0 10.82.0.2/24 srv
//!                         nat: eth0 ip 10.81.0.2, nat 10.82.0.2
//! ```
//! Run: `sudo cargo test -p conlink-net --test nft_nat` (needs root).

mod nft_util;

use conlink_net::nft::{NatRule, Nft, NftError};
use nft_util::*;
use std::net::Ipv4Addr;

struct Topo {
    cli: Netns,
    ctr: Netns,
    srv: Netns,
}

fn topo() -> Topo {
    let (cli, ctr, srv) = (Netns::new("nftc"), Netns::new("nftk"), Netns::new("nfts"));
    run(
        "ip",
        &[
            "link", "add", "c0", "netns", &cli.name, "type", "veth", "peer", "name", "eth0",
            "netns", &ctr.name,
        ],
    );
    run(
        "ip",
        &[
            "link", "add", "in0", "netns", &ctr.name, "type", "veth", "peer", "name", "s0",
            "netns", &srv.name,
        ],
    );
    cli.ip(&["addr", "add", "10.81.0.1/24", "dev", "c0"]);
    cli.ip(&["link", "set", "c0", "up"]);
    ctr.ip(&["addr", "add", "10.81.0.2/24", "dev", "eth0"]);
    ctr.ip(&["addr", "add", "10.82.0.1/24", "dev", "in0"]);
    ctr.ip(&["link", "set", "eth0", "up"]);
    ctr.ip(&["link", "set", "in0", "up"]);
    ctr.forwarding();
    srv.ip(&["addr", "add", "10.82.0.2/24", "dev", "s0"]);
    srv.ip(&["link", "set", "s0", "up"]);
    srv.ip(&["route", "add", "default", "via", "10.82.0.1"]);
    Topo { cli, ctr, srv }
}

fn rule() -> NatRule {
    NatRule {
        dev: "eth0".into(),
        ip: Ipv4Addr::new(10, 81, 0, 2),
        nat: Ipv4Addr::new(10, 82, 0, 2),
    }
}

#[test]
fn nat_dnat_and_snat_carry_tcp() {
    let t = topo();
    let tables_before = t.ctr.table_count();
    let srv_l = t.srv.tcp_listen("0.0.0.0:5001");
    let cli_l = t.cli.tcp_listen("0.0.0.0:5002");

    // Control: without NAT nothing listens on the container's own address.
    assert!(
        tcp_roundtrip(&t.cli, "10.81.0.2:5001", &srv_l).is_err(),
        "connection reached something before NAT was set up"
    );

    let mut nft = Nft::open(Some(&t.ctr.path())).unwrap();
    nft.apply_nat(&rule()).unwrap();

    // DNAT: the client dials the container's address and lands on the server
    // at the nat address; the client's own address is kept.
    let (local, peer) = tcp_roundtrip(&t.cli, "10.81.0.2:5001", &srv_l).expect("dnat connect");
    assert_eq!(local.to_string(), "10.82.0.2:5001");
    assert_eq!(peer.ip().to_string(), "10.81.0.1");

    // SNAT: the server reaches the client, which sees the container's ip.
    let (local, peer) = tcp_roundtrip(&t.srv, "10.81.0.1:5002", &cli_l).expect("snat connect");
    assert_eq!(local.to_string(), "10.81.0.1:5002");
    assert_eq!(peer.ip().to_string(), "10.81.0.2");

    // The container's own connection out of eth0 (from ip) is not hijacked
    // by the DNAT on its replies: conntrack knows they are replies. This is
    // why `nat` is stateful (docs/nat-and-forward.md).
    let (local, peer) = tcp_roundtrip(&t.ctr, "10.81.0.1:5002", &cli_l).expect("own connection");
    assert_eq!(local.to_string(), "10.81.0.1:5002");
    assert_eq!(peer.ip().to_string(), "10.81.0.2");

    // The listing shows exactly the two rules, also after re-applying.
    nft.apply_nat(&rule()).unwrap();
    let table = t.ctr.nft_table().expect("table ip conlink exists");
    eprintln!("listing: {table}");
    let pre = chain_rules(&table, "nat-eth0-pre");
    let post = chain_rules(&table, "nat-eth0-post");
    assert_eq!(pre.len(), 1, "{table}");
    assert_eq!(post.len(), 1, "{table}");
    assert_eq!(pre[0][0]["match"]["left"]["meta"]["key"], "iifname");
    assert_eq!(pre[0][0]["match"]["right"], "eth0");
    assert_eq!(pre[0][1]["dnat"]["addr"], "10.82.0.2");
    assert_eq!(post[0][0]["match"]["left"]["meta"]["key"], "oifname");
    assert_eq!(post[0][1]["snat"]["addr"], "10.81.0.2");

    // Removing the rules stops the DNAT again; removing twice is fine.
    nft.remove_nat("eth0").unwrap();
    nft.remove_nat("eth0").unwrap();
    assert!(tcp_roundtrip(&t.cli, "10.81.0.2:5001", &srv_l).is_err());
    let table = t.ctr.nft_table().expect("table stays until deleted");
    assert!(chain_names(&table).is_empty(), "{table}");

    assert!(nft.has_table().unwrap(), "has_table misses the table");
    nft.delete_table().unwrap();
    assert!(
        t.ctr.nft_table().is_none(),
        "table still listed after delete"
    );
    assert!(!nft.has_table().unwrap(), "has_table sees a deleted table");
    nft.delete_table().unwrap(); // idempotent
    assert_eq!(t.ctr.table_count(), tables_before);
}

#[test]
fn nat_bad_input_changes_nothing() {
    let ctr = Netns::new("nftb");
    let mut nft = Nft::open(Some(&ctr.path())).unwrap();
    for bad in [
        NatRule {
            dev: "".into(),
            ..rule()
        },
        NatRule {
            dev: "name-longer-than-15".into(),
            ..rule()
        },
        NatRule {
            nat: Ipv4Addr::UNSPECIFIED,
            ..rule()
        },
    ] {
        let e = nft.apply_nat(&bad).unwrap_err();
        assert!(matches!(e, NftError::Invalid(_)), "{e}");
    }
    assert_eq!(ctr.table_count(), 0);
}

#[test]
fn nat_kernel_refusal_keeps_errno_and_rolls_back() {
    let ctr = Netns::new("nfte");
    // Someone else's chain with our name but another hook: our batch must
    // fail as a whole, name the step, and keep the errno.
    ctr.exec(&["nft", "add table ip conlink; add chain ip conlink nat-eth0-pre { type filter hook input priority 0; }"]);
    let mut nft = Nft::open(Some(&ctr.path())).unwrap();
    let e = nft.apply_nat(&rule()).unwrap_err();
    let msg = e.to_string();
    eprintln!("kernel refusal as reported: {msg}");
    assert!(e.errno().is_some(), "{msg}");
    assert!(msg.contains("add chain nat-eth0-pre"), "{msg}");
    assert!(msg.contains(&ctr.name), "{msg}");
    // Rolled back: the post chain was never created.
    let table = ctr.nft_table().unwrap();
    assert_eq!(
        chain_names(&table),
        vec!["nat-eth0-pre".to_string()],
        "{table}"
    );

    // Opening in a namespace that does not exist reports ENOENT.
    let e = Nft::open(Some(std::path::Path::new("/run/netns/conlink-no-such-ns"))).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
}

/// Rules go into the namespace a held fd refers to, even when the path it
/// was opened by names another namespace by now (a recycled PID's
/// `/proc/PID/ns/net`, here a `/run/netns/NAME` deleted and made again).
/// Opening by path again would have put them in the new namespace.
#[test]
fn nat_through_a_held_namespace_fd_survives_a_reused_path() {
    use std::os::fd::AsFd;
    let ns = Netns::new("nftfd");
    let held = std::fs::File::open(ns.path()).unwrap();
    // Same name, another namespace (Netns's drop deletes it by name).
    run("ip", &["netns", "del", &ns.name]);
    run("ip", &["netns", "add", &ns.name]);
    let mut nft = Nft::open_fd(held.as_fd(), "held fd").unwrap();
    nft.apply_nat(&rule()).unwrap();
    assert!(
        ns.nft_table().is_none(),
        "rules landed in the namespace now at the path"
    );
    // The held namespace has them: list from a child started by a thread
    // that entered it (children inherit the thread's namespace).
    let fd = held.try_clone().unwrap();
    let out = std::thread::spawn(move || {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::process::Command::new("nft")
            .args(["-j", "list", "table", "ip", "conlink"])
            .output()
            .unwrap()
    })
    .join()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(chain_rules(&table, "nat-eth0-pre").len(), 1, "{table}");
}
