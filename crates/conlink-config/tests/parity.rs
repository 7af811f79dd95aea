//! Drop-in parity with the original (issue 9): load-order merging across
//! compose and network files, leniency (warnings, not errors), zero-link
//! configs, `--config-schema`, tunnel ports, dual-stack replica offsets.

use std::path::{Path, PathBuf};

use conlink_config::{load, load_checked, LoadOptions};
use conlink_model::{IpNet, TunnelType};

/// A directory of files for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("conlink-parity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(compose: &[&Path], network: &[&Path]) -> LoadOptions {
    LoadOptions {
        compose_files: compose.iter().map(|p| p.to_path_buf()).collect(),
        network_files: network.iter().map(|p| p.to_path_buf()).collect(),
        ..LoadOptions::default()
    }
}

const COMPOSE: &str = r#"
x-network:
  links:
    - {service: node, bridge: s0, ip: 10.0.0.5/24, mtu: 9000}
services:
  node:
    image: busybox
    x-network:
      links:
        - {bridge: s1, ip: 10.0.0.1/24, route: ["default via 10.0.0.254"]}
"#;

#[test]
fn network_file_overrides_a_link_declared_inside_a_service() {
    let d = Dir::new("merge");
    let compose = d.file("compose.yaml", COMPOSE);
    let net = d.file(
        "net.yaml",
        "links: [{service: node, ip: 10.0.0.9/24, route: 10.9.0.0/16 via 10.0.0.9}]\n",
    );
    let cfg = load(&opts(&[&compose], &[&net])).unwrap();
    let l = &cfg.services["node"].links[0];
    // The network file comes last in load order: its ip wins over the
    // service's, which won over the top-level one; the service's bridge
    // beat the top level's; the top level's mtu survives; routes concatenate.
    assert_eq!(l.ip, vec!["10.0.0.9/24".parse::<IpNet>().unwrap()]);
    assert_eq!(l.bridge.as_deref(), Some("s1"));
    assert_eq!(l.mtu, Some(9000));
    let routes: Vec<String> = l.route.iter().map(ToString::to_string).collect();
    assert_eq!(
        routes,
        ["default via 10.0.0.254", "10.9.0.0/16 via 10.0.0.9"]
    );
}

#[test]
fn a_later_compose_file_overrides_an_earlier_ones_service() {
    let d = Dir::new("merge2");
    let a = d.file("a.yaml", COMPOSE);
    let b = d.file(
        "b.yaml",
        "services:\n  node:\n    x-network:\n      links: [{ip: 10.0.0.7/24}]\n",
    );
    let cfg = load(&opts(&[&a, &b], &[])).unwrap();
    assert_eq!(
        cfg.services["node"].links[0].ip,
        vec!["10.0.0.7/24".parse::<IpNet>().unwrap()]
    );
    // The other order: the first file's service definition is last.
    let cfg = load(&opts(&[&b, &a], &[])).unwrap();
    assert_eq!(
        cfg.services["node"].links[0].ip,
        vec!["10.0.0.1/24".parse::<IpNet>().unwrap()]
    );
}

#[test]
fn lenient_cases_are_warnings_naming_file_and_pointer() {
    let d = Dir::new("lenient");
    let net = d.file(
        "net.yaml",
        r#"links:
  - {service: a, bridge: s1, mode: bridge}
  - {service: a, dev: eth1, bridge: s1, vlanid: 10}
  - {service: a, dev: eth2, type: ipvlan, outer-dev: eth0, mode: bridge}
  - {service: a, dev: eth3, type: ipvtap, outer-dev: eth0, mode: l3s private}
bridges: [{bridge: s1, mode: linux, stp: true}]
tunnels: [{type: vxlan, bridge: s1, remote: 10.0.0.2, vni: 3, ttl: 4}]
commands: [{service: a, command: "true", user: root}]
"#,
    );
    let l = load_checked(&opts(&[], &[&net])).unwrap();
    let shown: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let f = net.display();
    assert_eq!(
        shown,
        [
            format!("{f}: /bridges/0/stp: unknown property \"stp\" (ignored)"),
            format!("{f}: /tunnels/0/ttl: unknown property \"ttl\" (ignored)"),
            format!("{f}: /commands/0/user: unknown property \"user\" (ignored)"),
            format!("{f}: /links/0/mode: mode applies to macvlan, macvtap, ipvlan and ipvtap links (ignored on a veth link)"),
            format!("{f}: /links/1/vlanid: vlanid applies to vlan links only (ignored on a veth link)"),
        ]
    );
    let links = &l.config.services["a"].links;
    assert_eq!(links[0].mode, None);
    assert_eq!(links[1].vlanid, None);
    assert_eq!(links[2].mode.as_deref(), Some("bridge"));
    assert_eq!(links[3].mode.as_deref(), Some("l3s private"));
}

#[test]
fn zero_links_are_valid_empty_absent_or_nothing_at_all() {
    let d = Dir::new("zero");
    let empty_list = d.file("a.yaml", "links: []\nbridges: [{bridge: s1}]\n");
    let absent = d.file(
        "b.yaml",
        "tunnels: [{type: vxlan, bridge: s1, remote: 10.0.0.2, vni: 3}]\n",
    );
    let nothing = d.file(
        "compose.yaml",
        "services:\n  network:\n    image: conlink\n",
    );
    let cfg = load(&opts(&[], &[&empty_list])).unwrap();
    assert!(cfg.services.is_empty() && cfg.containers.is_empty());
    assert!(cfg.bridges.contains_key("s1"));
    let cfg = load(&opts(&[], &[&absent])).unwrap();
    assert_eq!(cfg.tunnels.len(), 1);
    let cfg = load(&opts(&[&nothing], &[])).unwrap();
    assert_eq!(cfg, conlink_config::NetworkConfig::default());
}

#[test]
fn config_schema_file_is_checked_too() {
    let d = Dir::new("schema");
    let net = d.file(
        "net.yaml",
        "links: [{service: a, bridge: s1, mtu: 9000}, {service: b, bridge: s1}]\n",
    );
    let schema = d.file(
        "schema.json",
        r#"{"type": "object", "properties": {"links": {"type": "array",
             "items": {"required": ["mtu"]}}}}"#,
    );
    let mut o = opts(&[], &[&net]);
    o.extra_schemas = vec![schema.clone()];
    let e = load(&o).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: /links/1: missing required property \"mtu\"",
            net.display()
        )
    );
    // Satisfied: loads.
    let ok = d.file("ok.yaml", "links: [{service: a, bridge: s1, mtu: 9000}]\n");
    let mut o = opts(&[], &[&ok]);
    o.extra_schemas = vec![schema];
    assert!(load(&o).is_ok());
    // A schema file that is not one is an error naming it.
    let bad = d.file("bad.json", "{not json");
    let mut o = opts(&[], &[&ok]);
    o.extra_schemas = vec![bad.clone()];
    let e = load(&o).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: /: schema is not JSON", bad.display())),
        "{e}"
    );
    let mut o = opts(&[], &[&ok]);
    o.extra_schemas = vec![d.0.join("missing.json")];
    assert!(load(&o)
        .unwrap_err()
        .to_string()
        .contains("missing.json: /: cannot read schema"));
}

#[test]
fn tunnel_ports_default_to_the_originals() {
    let d = Dir::new("ports");
    let net = d.file(
        "net.yaml",
        r#"tunnels:
  - {type: vxlan, bridge: s1, remote: 10.0.0.2, vni: 1}
  - {type: geneve, bridge: s1, remote: 10.0.0.2, vni: 2}
  - {type: vxlan, bridge: s1, remote: 10.0.0.3, vni: 3, port: 4789}
"#,
    );
    let cfg = load(&opts(&[], &[&net])).unwrap();
    let ports: Vec<(TunnelType, u16)> = cfg
        .tunnels
        .iter()
        .map(|t| (t.tunnel_type, t.udp_port()))
        .collect();
    assert_eq!(
        ports,
        [
            (TunnelType::Vxlan, 8472),
            (TunnelType::Geneve, 6081),
            (TunnelType::Vxlan, 4789)
        ]
    );
}

#[test]
fn dual_stack_replica_offsets() {
    let d = Dir::new("dual");
    let net = d.file(
        "net.yaml",
        "links: [{service: a, bridge: s1, ip: [10.0.0.1/24, \"fd00::ffff/64\"]}]\n",
    );
    let cfg = load(&opts(&[], &[&net])).unwrap();
    let l = &cfg.services["a"].links[0];
    let r2: Vec<String> = l
        .replica_ips(2)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(r2, ["10.0.0.2/24", "fd00::1:0/64"]);
    assert_eq!(l.ipv4().unwrap().to_string(), "10.0.0.1/24");
}

#[test]
fn ethtool_on_any_link_type() {
    let d = Dir::new("ethtool");
    let net = d.file(
        "net.yaml",
        "links: [{service: a, type: dummy, ethtool: [\"-K rx-gro on\"]},\n\
         {service: a, dev: eth1, type: macvlan, outer-dev: eth0, ethtool: \"-L combined 2\"}]\n",
    );
    let cfg = load(&opts(&[], &[&net])).unwrap();
    let e: Vec<String> = cfg.services["a"]
        .links
        .iter()
        .flat_map(|l| l.ethtool.iter().map(ToString::to_string))
        .collect();
    // No tx-offload default on non-veth links; the user's settings stay.
    assert_eq!(e, ["--offload rx-gro on", "--set-channels combined 2"]);
}
