//! Privileged test of the one-dump link state and counters read
//! (`Handle::link_stats`), checked against `ip -s -j link show` after real
//! pings and after taking one end down.

mod common;

use common::{require_root, Ns};
use conlink_net::{LinkAttrs, LinkStats};

fn find<'a>(v: &'a [LinkStats], name: &str) -> &'a LinkStats {
    v.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} not in the dump: {v:?}"))
}

#[test]
fn counters_and_state_match_ip_s_link() {
    require_root();
    let a = Ns::new("sa");
    let b = Ns::new("sb");
    a.h.create_veth(&LinkAttrs::new("va").up(), &LinkAttrs::new("vb").up(), &b.h)
        .unwrap();
    a.h.add_addr(
        "va",
        "10.78.0.1/24".parse::<conlink_model::Ipv4Net>().unwrap(),
    )
    .unwrap();
    b.h.add_addr(
        "vb",
        "10.78.0.2/24".parse::<conlink_model::Ipv4Net>().unwrap(),
    )
    .unwrap();
    assert!(a.ping("10.78.0.2"), "no ping through the veth");
    a.exec(&["ping", "-n", "-q", "-c", "5", "-i", "0.01", "10.78.0.2"]);

    let mine = a.h.link_stats().unwrap();
    let va = find(&mine, "va");
    // `ip` reads right after our dump; only the kernel's own IPv6
    // neighbour discovery may send in between, hence a small tolerance on
    // packet counts.
    let ipj = &a.ip(&["-s", "link", "show", "dev", "va"])[0];
    let rx = &ipj["stats64"]["rx"];
    let tx = &ipj["stats64"]["tx"];
    let close = |ours: u64, theirs: &serde_json::Value, what: &str| {
        let t = theirs
            .as_u64()
            .unwrap_or_else(|| panic!("no {what} in {ipj}"));
        assert!(
            t >= ours && t - ours <= 4,
            "{what}: ours {ours}, ip says {t}"
        );
    };
    close(va.counters.rx_packets, &rx["packets"], "rx packets");
    close(va.counters.tx_packets, &tx["packets"], "tx packets");
    assert!(va.counters.tx_packets >= 6, "{va:?}");
    assert!(va.counters.tx_bytes >= 6 * 98, "{va:?}");
    assert_eq!(va.counters.rx_errors, rx["errors"].as_u64().unwrap());
    assert_eq!(va.counters.tx_dropped, tx["dropped"].as_u64().unwrap());
    assert_eq!(va.mtu as u64, ipj["mtu"].as_u64().unwrap());
    assert_eq!(va.oper_state, ipj["operstate"].as_str().unwrap());
    assert_eq!(va.oper_state, "UP");
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert!(va.admin_up && va.carrier == Some(true));
    // The veth's IFLA_LINK is the peer's index in the other namespace.
    let theirs = b.h.link_stats().unwrap();
    assert_eq!(va.link, Some(find(&theirs, "vb").index));

    // Admin down on one end: the peer loses carrier (LOWERLAYERDOWN).
    b.h.set_up("vb", false).unwrap();
    // The carrier flips at once; the kernel's linkwatch work updates the
    // operational state a moment later (up to a second): poll, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let va = loop {
        let all = a.h.link_stats().unwrap();
        let va = find(&all, "va").clone();
        if va.oper_state != "UP" || std::time::Instant::now() > deadline {
            break va;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(va.admin_up);
    assert_eq!(va.carrier, Some(false));
    // DOWN or LOWERLAYERDOWN: the kernel picks by comparing the veth's
    // index with its peer's, which may be equal across namespaces.
    assert!(
        ["DOWN", "LOWERLAYERDOWN"].contains(&va.oper_state.as_str()),
        "{va:?}"
    );
    let ipj = &a.ip(&["link", "show", "dev", "va"])[0];
    assert_eq!(ipj["operstate"], va.oper_state.as_str());
    let vb = b.h.link_stats().unwrap();
    let vb = find(&vb, "vb");
    assert!(!vb.admin_up);
    assert_eq!(vb.oper_state, "DOWN");
}
