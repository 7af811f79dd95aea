//! How the load options change enrichment: default MTU, default bridge
//! mode, the openvswitch probe result, veth offload.

use std::path::PathBuf;

use conlink_config::{load, BridgeModeSetting, LoadOptions};
use conlink_model::{BridgeMode, EthtoolSetting, NetworkConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ok")
        .join(name)
}

fn load_with(f: impl FnOnce(&mut LoadOptions)) -> NetworkConfig {
    let mut o = LoadOptions {
        network_files: vec![fixture("all-link-types.yaml"), fixture("tunnels.json")],
        ..LoadOptions::default()
    };
    f(&mut o);
    load(&o).unwrap()
}

#[test]
fn auto_is_ovs_only_when_the_module_is_loaded() {
    let c = load_with(|_| {});
    assert_eq!(c.bridges["core"].mode, BridgeMode::Linux);
    assert_eq!(c.bridges["s1"].mode, BridgeMode::Linux);
    assert_eq!(c.bridges["wire"].mode, BridgeMode::Patch);
    let c = load_with(|o| o.ovs_loaded = true);
    assert_eq!(c.bridges["core"].mode, BridgeMode::Ovs);
    assert_eq!(c.bridges["s1"].mode, BridgeMode::Ovs);
    assert_eq!(c.bridges["wire"].mode, BridgeMode::Patch);
}

#[test]
fn default_bridge_mode_applies_to_undeclared_bridges_only() {
    let c = load_with(|o| o.default_bridge_mode = BridgeModeSetting::Linux);
    assert_eq!(c.bridges["s1"].mode, BridgeMode::Linux);
    // declared `mode: auto` stays auto (-> linux without ovs), not the default
    let c = load_with(|o| {
        o.default_bridge_mode = BridgeModeSetting::Ovs;
    });
    assert_eq!(c.bridges["s1"].mode, BridgeMode::Ovs);
    assert_eq!(c.bridges["core"].mode, BridgeMode::Linux);
}

#[test]
fn default_mtu_skips_vlan_kinds_and_explicit_values() {
    let c = load_with(|o| o.default_mtu = 9000);
    let links = &c.containers["c1"].links;
    let mtu = |dev: &str| links.iter().find(|l| l.dev == dev).unwrap().mtu;
    assert_eq!(mtu("eth0"), Some(9000));
    assert_eq!(mtu("d0"), Some(9000));
    assert_eq!(mtu("v5"), None);
    assert_eq!(mtu("m0"), None);
    assert_eq!(mtu("t0"), Some(1400));
    assert_eq!(mtu("i0"), None);
}

#[test]
fn veth_offload_setting_comes_first_unless_kept() {
    let dir = std::env::temp_dir().join(format!("conlink-opt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("n.yaml");
    std::fs::write(
        &f,
        "links: [{service: a, bridge: s1, ethtool: [-K rx off]}]\n",
    )
    .unwrap();
    let run = |keep: bool| {
        load(&LoadOptions {
            network_files: vec![f.clone()],
            keep_veth_offload: keep,
            ..LoadOptions::default()
        })
        .unwrap()
    };
    let shown = |c: &NetworkConfig| -> Vec<String> {
        c.services["a"].links[0]
            .ethtool
            .iter()
            .map(EthtoolSetting::to_string)
            .collect()
    };
    let off = run(false);
    let kept = run(true);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(shown(&off), ["--offload tx off", "--offload rx off"]);
    assert_eq!(shown(&kept), ["--offload rx off"]);
}

#[test]
fn random_macs_are_c2_and_distinct() {
    let c = load_with(|_| {});
    let macs: Vec<_> = c.containers["c1"]
        .links
        .iter()
        .filter_map(|l| l.mac)
        .filter(|m| m.0[0] == 0xc2)
        .collect();
    assert_eq!(macs.len(), 4, "veth, dummy, vlan, macvlan get random MACs");
    let mut uniq = macs.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), macs.len());
}
