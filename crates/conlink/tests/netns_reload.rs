//! Live configuration changes (netns runtime, real kernel): edits land in
//! place, untouched links keep their ifindex and lose no packets, a bad
//! edit changes nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ip_json, prefix, require_root, Conlink};

fn config(p: &str, a_extra: &str, more: &str) -> String {
    format!(
        "links:\n\
         \x20 - {{container: {p}a, bridge: s1, ip: 10.208.0.1/24{a_extra}}}\n\
         \x20 - {{container: {p}b, bridge: s1, ip: 10.208.0.2/24}}\n\
         \x20 - {{container: {p}c, bridge: s1, ip: 10.208.0.3/24}}\n\
         {more}\
         bridges:\n  - {{bridge: s1, mode: linux}}\n"
    )
}

fn ifindex(ns: &str, dev: &str) -> serde_json::Value {
    ip_json(ns, &["link", "show", "dev", dev])[0]["ifindex"].clone()
}

/// `ip -j addr` and `ip -j route` of a namespace (the whole visible state).
fn snapshot(ns: &str) -> (serde_json::Value, serde_json::Value) {
    // Less what the kernel changes by itself, on its own clock: a bridge's
    // operstate (UNKNOWN until linkwatch runs, up to a second after its
    // first port), an IPv6 address's `tentative` (until DAD ends).
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("operstate");
                m.remove("tentative");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut s = (
        ip_json(ns, &["addr", "show"]),
        ip_json(ns, &["route", "show"]),
    );
    strip(&mut s.0);
    s
}

/// A background ping counting replies: `ping -i 0.05 -c N`.
struct Pinger(std::process::Child);

impl Pinger {
    fn start(ns: &str, addr: &str, n: u32) -> Pinger {
        Pinger(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    ns,
                    "ping",
                    "-i",
                    "0.05",
                    "-c",
                    &n.to_string(),
                    "-W",
                    "1",
                    addr,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ping"),
        )
    }

    /// (sent, received).
    fn finish(self) -> (u32, u32) {
        let out = self.0.wait_with_output().expect("ping output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary: {text}"));
        let nums: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums[0], nums[1])
    }
}

#[test]
fn edits_land_in_place_and_untouched_links_lose_nothing() {
    require_root();
    let p = prefix();
    let mut c = Conlink::start(&p, &config(&p, "", ""), &[]);
    c.wait_connected();
    let (a, b, cc) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let before_b = ifindex(&b, "eth0");
    let before_c = ifindex(&cc, "eth0");
    let before_a = ifindex(&a, "eth0");
    // 80 pings over ~4 s between the two untouched containers.
    let pinger = Pinger::start(&b, "10.208.0.3", 80);
    std::thread::sleep(Duration::from_millis(300));

    // MTU, a route and NAT on a's link; a new link on a new bridge.
    c.edit_config(&config(
        &p,
        ", mtu: 9000, route: ['10.99.0.0/16 via 10.208.0.254'], nat: 10.210.0.1",
        "  - {container: PFXa, dev: eth1, bridge: s2, ip: 10.209.0.1/24}\n"
            .replace("PFX", &p)
            .as_str(),
    ));
    c.wait_for(
        &format!("{a}/eth0: mtu 65535 -> 9000"),
        1,
        Duration::from_secs(10),
    );
    c.wait_for("bridge s2: created", 1, Duration::from_secs(10));
    c.wait_for(&format!("{a}/eth1: created"), 1, Duration::from_secs(10));
    c.wait_for("All links connected", 2, Duration::from_secs(10));
    let l = &ip_json(&a, &["link", "show", "dev", "eth0"])[0];
    assert_eq!(l["mtu"], 9000, "{l}");
    assert_eq!(ifindex(&a, "eth0"), before_a, "a's link was recreated");
    let routes = ip_json(&a, &["route", "show", "10.99.0.0/16"]);
    assert_eq!(routes[0]["gateway"], "10.208.0.254", "{routes}");
    let nft = Command::new("ip")
        .args(["netns", "exec", &a, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&nft.stdout).contains("conlink"),
        "no NAT table"
    );

    // Remove what was added: the link and the bridge go.
    c.edit_config(&config(&p, "", ""));
    c.wait_for(&format!("{a}/eth1: removed"), 1, Duration::from_secs(10));
    c.wait_for("bridge s2: removed", 1, Duration::from_secs(10));
    c.wait_for("All links connected", 3, Duration::from_secs(10));
    assert!(ip_json(&a, &["route", "show", "10.99.0.0/16"])
        .as_array()
        .unwrap()
        .is_empty());
    let nft = Command::new("ip")
        .args(["netns", "exec", &a, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&nft.stdout).contains("conlink"),
        "NAT table left"
    );

    let (sent, got) = pinger.finish();
    assert_eq!(
        (sent, got),
        (80, 80),
        "pings between untouched containers were lost"
    );
    assert_eq!(ifindex(&b, "eth0"), before_b);
    assert_eq!(ifindex(&cc, "eth0"), before_c);
    assert!(c.stop());
}

#[test]
fn a_bad_edit_changes_nothing_and_is_logged() {
    require_root();
    let p = prefix();
    let good = config(&p, "", "");
    let mut c = Conlink::start(&p, &good, &[]);
    c.wait_connected();
    let ns = [format!("{p}a"), format!("{p}b"), c.own_ns.clone()];
    let before: Vec<_> = ns.iter().map(|n| snapshot(n)).collect();
    // A syntax error, then a schema error.
    c.edit_config("links: [ {container: x, bridge: s1\n");
    c.wait_for(
        "refused; the running config stays",
        1,
        Duration::from_secs(10),
    );
    c.edit_config(&good.replace("ip: 10.208.0.1/24", "ip: 10.208.0.1/24, mtu: banana"));
    c.wait_for(
        "refused; the running config stays",
        2,
        Duration::from_secs(10),
    );
    let log = c.log();
    assert!(
        log.iter()
            .any(|l| l.contains("network.yaml") && l.contains("/links/0/mtu")),
        "the error names the file and the path: {log:#?}"
    );
    let after: Vec<_> = ns.iter().map(|n| snapshot(n)).collect();
    assert_eq!(before, after, "a bad edit changed the lab");
    // SIGHUP with the good file again: nothing to do.
    c.edit_config(&good);
    c.wait_for("no change", 1, Duration::from_secs(10));
    assert!(c.stop());
}
