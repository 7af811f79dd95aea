//! `forward` (spec §4) on the real kernel. One namespace plays conlink: its
//! `DOCKER-ETH0` is a veth to a client namespace, and a bridge joins two
//! replica containers, each with its own forwards.
//!
//! ```text
//! cli c0 172.21.0.1/24 ── DOCKER-ETH0 172.21.0.2/24 [conlink] br0 ─┬─ o1 ── eth0 10.40.0.11 k1
//!                                                                  └─ o2 ── eth0 10.40.0.12 k2
//! k1: 8080:80/tcp            k2: 8081:80/tcp, 9053:53/udp
//! ```
//! As conlink would: `10.40.0.1x/32 dev br0` in conlink's namespace (the bridge
//! has no address, so masquerade picks the docker address) and a /32 route
//! back to `172.21.0.2` in each container.
//! Run: `sudo cargo test -p conlink-net --test nft_forward` (needs root).

mod nft_util;

use conlink_model::Forward;
use conlink_net::nft::{ForwardRules, Nft, NftError, DOCKER_IF};
use nft_util::*;
use std::net::Ipv4Addr;
use std::time::Duration;

struct Topo {
    cli: Netns,
    cl: Netns,
    k1: Netns,
    k2: Netns,
}

fn topo() -> Topo {
    let cli = Netns::new("nftfc");
    let cl = Netns::new("nftfl");
    let k1 = Netns::new("nftf1");
    let k2 = Netns::new("nftf2");
    run(
        "ip",
        &[
            "link", "add", "c0", "netns", &cli.name, "type", "veth", "peer", "name", DOCKER_IF,
            "netns", &cl.name,
        ],
    );
    cli.ip(&["addr", "add", "172.21.0.1/24", "dev", "c0"]);
    cli.ip(&["link", "set", "c0", "up"]);
    cl.ip(&["addr", "add", "172.21.0.2/24", "dev", DOCKER_IF]);
    cl.ip(&["link", "set", DOCKER_IF, "up"]);
    cl.ip(&["link", "add", "br0", "type", "bridge"]);
    cl.ip(&["link", "set", "br0", "up"]);
    cl.forwarding();
    for (k, outer, ip) in [(&k1, "o1", "10.40.0.11"), (&k2, "o2", "10.40.0.12")] {
        run(
            "ip",
            &[
                "link", "add", outer, "netns", &cl.name, "type", "veth", "peer", "name", "eth0",
                "netns", &k.name,
            ],
        );
        cl.ip(&["link", "set", outer, "master", "br0", "up"]);
        cl.ip(&["route", "add", &format!("{ip}/32"), "dev", "br0"]);
        k.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        k.ip(&["link", "set", "eth0", "up"]);
        k.ip(&["route", "add", "172.21.0.2/32", "dev", "eth0"]);
    }
    Topo { cli, cl, k1, k2 }
}

fn rules(key: &str, ip: [u8; 4], fwds: &[&str]) -> ForwardRules {
    ForwardRules {
        key: key.into(),
        docker_if: DOCKER_IF.into(),
        bridge: "br0".into(),
        ip: Ipv4Addr::from(ip),
        forwards: fwds.iter().map(|f| f.parse::<Forward>().unwrap()).collect(),
    }
}

/// One UDP datagram from the client to conlink's port; the container echoes
/// it. Returns the source the container saw, or None if nothing arrived.
fn udp_roundtrip(t: &Topo, server: &std::net::UdpSocket) -> Option<String> {
    let c = t.cli.udp_bind("172.21.0.1:0");
    c.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    c.send_to(b"dns?", "172.21.0.2:9053").unwrap();
    let mut b = [0u8; 16];
    let (n, from) = server.recv_from(&mut b).ok()?;
    assert_eq!(&b[..n], b"dns?");
    server.send_to(b"dns!", from).unwrap();
    let (n, reply_from) = c.recv_from(&mut b).expect("udp reply");
    assert_eq!(&b[..n], b"dns!");
    // The reply appears to come from the port the client dialled.
    assert_eq!(reply_from.to_string(), "172.21.0.2:9053");
    Some(from.ip().to_string())
}

#[test]
fn forward_two_replicas_and_remove_one() {
    let t = topo();
    let tables_before = t.cl.table_count();
    let l1 = t.k1.tcp_listen("0.0.0.0:80");
    let l2 = t.k2.tcp_listen("0.0.0.0:80");
    let u2 = t.k2.udp_bind("0.0.0.0:53");
    u2.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();

    // Control: nothing is published yet.
    assert!(tcp_roundtrip(&t.cli, "172.21.0.2:8080", &l1).is_err());

    let mut nft = Nft::open(Some(&t.cl.path())).unwrap();
    nft.apply_forwards(&rules("k1", [10, 40, 0, 11], &["8080:80/tcp"]))
        .unwrap();
    nft.apply_forwards(&rules(
        "k2",
        [10, 40, 0, 12],
        &["8081:80/tcp", "9053:53/udp"],
    ))
    .unwrap();

    // Each port reaches its own replica's port 80, masqueraded to conlink's
    // docker address.
    let (local, peer) = tcp_roundtrip(&t.cli, "172.21.0.2:8080", &l1).expect("8080 -> k1");
    assert_eq!(local.to_string(), "10.40.0.11:80");
    assert_eq!(peer.ip().to_string(), "172.21.0.2");
    let (local, peer) = tcp_roundtrip(&t.cli, "172.21.0.2:8081", &l2).expect("8081 -> k2");
    assert_eq!(local.to_string(), "10.40.0.12:80");
    assert_eq!(peer.ip().to_string(), "172.21.0.2");
    assert_eq!(udp_roundtrip(&t, &u2).as_deref(), Some("172.21.0.2"));

    // The listing: one pre and one post chain per replica, one rule per port.
    let table = t.cl.nft_table().expect("table ip conlink");
    let pre2 = chain_rules(&table, "fwd-k2-pre");
    assert_eq!(chain_rules(&table, "fwd-k1-pre").len(), 1, "{table}");
    assert_eq!(pre2.len(), 2, "{table}");
    assert_eq!(chain_rules(&table, "fwd-k2-post").len(), 2, "{table}");
    assert_eq!(pre2[0][0]["match"]["right"], DOCKER_IF);
    assert_eq!(pre2[0][2]["dnat"]["addr"], "10.40.0.12");
    assert_eq!(pre2[0][2]["dnat"]["port"], 80);
    assert_eq!(pre2[1][1]["match"]["left"]["payload"]["protocol"], "udp");
    assert_eq!(pre2[1][1]["match"]["right"], 9053);

    // Replica 1 goes away: only its port stops.
    nft.remove_forwards("k1").unwrap();
    assert!(
        tcp_roundtrip(&t.cli, "172.21.0.2:8080", &l1).is_err(),
        "8080 still forwarded"
    );
    let (local, _) = tcp_roundtrip(&t.cli, "172.21.0.2:8081", &l2).expect("8081 after removing k1");
    assert_eq!(local.to_string(), "10.40.0.12:80");
    assert_eq!(udp_roundtrip(&t, &u2).as_deref(), Some("172.21.0.2"));
    let table = t.cl.nft_table().unwrap();
    let mut names = chain_names(&table);
    names.sort();
    assert_eq!(names, ["fwd-k2-post", "fwd-k2-pre"], "{table}");

    // Replica 1 comes back on the same port; re-applying k2 does not
    // duplicate its rules.
    nft.apply_forwards(&rules("k1", [10, 40, 0, 11], &["8080:80/tcp"]))
        .unwrap();
    nft.apply_forwards(&rules(
        "k2",
        [10, 40, 0, 12],
        &["8081:80/tcp", "9053:53/udp"],
    ))
    .unwrap();
    assert_eq!(
        chain_rules(&t.cl.nft_table().unwrap(), "fwd-k2-pre").len(),
        2
    );
    let (local, _) = tcp_roundtrip(&t.cli, "172.21.0.2:8080", &l1).expect("8080 back");
    assert_eq!(local.to_string(), "10.40.0.11:80");

    nft.delete_table().unwrap();
    assert!(
        t.cl.nft_table().is_none(),
        "table still listed after delete"
    );
    assert!(tcp_roundtrip(&t.cli, "172.21.0.2:8081", &l2).is_err());
    assert_eq!(t.cl.table_count(), tables_before);
    // Removing from a deleted table is fine.
    nft.remove_forwards("k2").unwrap();
    assert_eq!(t.cl.table_count(), tables_before);
}

#[test]
fn forward_bad_input_changes_nothing() {
    let cl = Netns::new("nftfb");
    let mut nft = Nft::open(Some(&cl.path())).unwrap();
    let good = rules("k1", [10, 40, 0, 11], &["8080:80/tcp"]);
    for bad in [
        ForwardRules {
            key: "has space".into(),
            ..good.clone()
        },
        ForwardRules {
            key: String::new(),
            ..good.clone()
        },
        ForwardRules {
            bridge: "".into(),
            ..good.clone()
        },
        ForwardRules {
            docker_if: "x".repeat(16),
            ..good.clone()
        },
        ForwardRules {
            forwards: vec![],
            ..good.clone()
        },
        rules("k1", [10, 40, 0, 11], &["8080:80/tcp", "8080:81/tcp"]),
        rules("k1", [255, 255, 255, 255], &["8080:80/tcp"]),
    ] {
        let e = nft.apply_forwards(&bad).unwrap_err();
        assert!(matches!(e, NftError::Invalid(_)), "{e}");
    }
    assert!(matches!(
        nft.remove_forwards("a/b"),
        Err(NftError::Invalid(_))
    ));
    assert_eq!(cl.table_count(), 0);
}
