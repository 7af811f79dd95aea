//! What conlink puts in the kernel, compared with what `nft` itself puts
//! there for the same rules written as text: the raw expression listing
//! (`nft --debug=netlink list table`, registers and NAT flags included) and
//! the JSON listing must be identical. Also: other tables are never touched.
//! Run: `sudo cargo test -p conlink-net --test nft_list` (needs root).

mod nft_util;

use conlink_net::nft::{ForwardRules, NatRule, Nft, DOCKER_IF};
use nft_util::*;
use serde_json::Value;

const SAME_AS_TEXT: &str = r#"
table ip conlink {
  chain nat-eth0-pre { type nat hook prerouting priority dstnat; policy accept;
    iifname "eth0" dnat to 10.82.0.2
  }
  chain nat-eth0-post { type nat hook postrouting priority srcnat; policy accept;
    oifname "eth0" snat to 10.81.0.2
  }
  chain fwd-web_1-eth0-pre { type nat hook prerouting priority dstnat; policy accept;
    iifname "DOCKER-ETH0" tcp dport 8080 dnat to 10.40.0.11:80
    iifname "DOCKER-ETH0" udp dport 9053 dnat to 10.40.0.11:53
  }
  chain fwd-web_1-eth0-post { type nat hook postrouting priority srcnat; policy accept;
    oifname "br0" ip daddr 10.40.0.11 tcp dport 80 masquerade
    oifname "br0" ip daddr 10.40.0.11 udp dport 53 masquerade
  }
}
"#;

fn apply_ours(nft: &mut Nft) {
    nft.apply_nat(&NatRule {
        dev: "eth0".into(),
        ip: "10.81.0.2".parse().unwrap(),
        nat: "10.82.0.2".parse().unwrap(),
    })
    .unwrap();
    nft.apply_forwards(&ForwardRules {
        key: "web_1-eth0".into(),
        docker_if: DOCKER_IF.into(),
        bridge: "br0".into(),
        ip: "10.40.0.11".parse().unwrap(),
        forwards: vec![
            "8080:80/tcp".parse().unwrap(),
            "9053:53/udp".parse().unwrap(),
        ],
    })
    .unwrap();
}

/// `nft --debug=netlink list table ip conlink` with the rule handles (the
/// trailing number of each `ip conlink CHAIN HANDLE` line) removed.
fn raw_listing(ns: &Netns) -> String {
    let out = ns.exec(&["nft", "--debug=netlink", "list", "table", "ip", "conlink"]);
    out.lines()
        .map(|l| match l.strip_prefix("ip conlink ") {
            Some(rest) => format!("ip conlink {}", rest.split(' ').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON listing without handles and metainfo, sorted.
fn json_listing(ns: &Netns) -> Vec<String> {
    let v = ns.nft_table().expect("table ip conlink");
    let mut objs: Vec<String> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .map(|o| {
            let mut o = o.clone();
            if let Some(inner) = o.as_object_mut().unwrap().values_mut().next() {
                inner.as_object_mut().unwrap().remove("handle");
            }
            o.to_string()
        })
        .collect();
    objs.sort();
    objs
}

#[test]
fn listing_matches_rules_written_by_nft() {
    let ours = Netns::new("nftlo");
    let theirs = Netns::new("nftlt");
    let mut nft = Nft::open(Some(&ours.path())).unwrap();
    apply_ours(&mut nft);
    theirs.exec(&["nft", SAME_AS_TEXT]);

    let (a, b) = (raw_listing(&ours), raw_listing(&theirs));
    assert!(a.contains("[ nat dnat ip addr_min reg 1"), "{a}");
    assert_eq!(
        a, b,
        "raw expressions differ\n--- conlink\n{a}\n--- nft\n{b}"
    );
    let (a, b) = (json_listing(&ours), json_listing(&theirs));
    assert_eq!(a.len(), 11, "{a:#?}"); // table + 4 chains + 6 rules
    assert_eq!(a, b);
}

#[test]
fn other_tables_are_left_alone() {
    let ns = Netns::new("nftlf");
    ns.exec(&["nft", "add table ip other; add chain ip other c { type nat hook prerouting priority dstnat; }; add rule ip other c iifname \"x\" dnat to 10.9.9.9"]);
    ns.exec(&["nft", "add table inet conlink; add chain inet conlink c"]);
    let foreign = |ns: &Netns| -> Vec<Value> {
        let v: Value = serde_json::from_str(&ns.exec(&["nft", "-j", "list", "ruleset"])).unwrap();
        let mut objs: Vec<Value> = v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o.get("metainfo").is_none())
            .filter(|o| {
                let inner = o.as_object().unwrap().values().next().unwrap();
                !(inner["family"] == "ip"
                    && (inner["name"] == "conlink" || inner["table"] == "conlink"))
            })
            .cloned()
            .collect();
        objs.sort_by_key(|o| o.to_string());
        objs
    };
    let before = foreign(&ns);
    assert_eq!(before.len(), 5, "{before:#?}");
    let tables_before = ns.table_count();

    let mut nft = Nft::open(Some(&ns.path())).unwrap();
    apply_ours(&mut nft);
    assert_eq!(ns.table_count(), tables_before + 1);
    nft.remove_forwards("web_1-eth0").unwrap();
    nft.remove_nat("eth0").unwrap();
    nft.delete_table().unwrap();

    assert_eq!(foreign(&ns), before);
    assert_eq!(ns.table_count(), tables_before);
}
