//! The multi-host mesh in desired state, against the fake kernel: the
//! tunnels are made, changed in place (peers come and go), adopted after a
//! restart and removed by the same diff as everything else; a patch's
//! tunnel is its fallback end. No root needed (the real kernel side is
//! conlink-net's `fdb` test and `crates/conlink/tests/multihost.rs`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use conlink_core::adopt;
use conlink_core::apply::Applier;
use conlink_core::desired::{desired_globals, Inputs};
use conlink_core::diff::{diff, record, Op};
use conlink_core::fake::{FakeKernel, CONLINK};
use conlink_core::mesh::{derive_vni, peer_tunnel_name, Mesh, MeshOptions, MeshTunnel};
use conlink_core::state::State;
use conlink_model::{Bridge, BridgeMode, Container, Group, Link, LinkType, NetworkConfig, Target};

fn veth(svc: &str, bridge: &str) -> Link {
    Link {
        link_type: LinkType::Veth,
        target: Target::Service(svc.into()),
        dev: "lan0".into(),
        outer_dev: None,
        bridge: Some(bridge.into()),
        ip: vec![],
        mac: None,
        mtu: Some(1450),
        route: vec![],
        nat: None,
        netem: None,
        mode: None,
        vlanid: None,
        forward: vec![],
        ethtool: vec![],
        ipv6: true,
        base: conlink_model::Base::Conlink,
    }
}

/// Bridge s1 (linux) with service `node`, patch p1 between `pa` and `pb`.
fn cfg() -> NetworkConfig {
    let mut c = NetworkConfig::default();
    for (b, mode) in [("s1", BridgeMode::Linux), ("p1", BridgeMode::Patch)] {
        c.bridges.insert(
            b.into(),
            Bridge {
                bridge: b.into(),
                mode,
                vni: None,
            },
        );
    }
    for (svc, b) in [("node", "s1"), ("pa", "p1"), ("pb", "p1")] {
        c.services.insert(
            svc.into(),
            Group {
                links: vec![veth(svc, b)],
                commands: vec![],
            },
        );
    }
    c
}

fn peers(v: &[u8]) -> BTreeSet<Ipv4Addr> {
    v.iter().map(|i| Ipv4Addr::new(192, 168, 211, *i)).collect()
}

fn inputs(p: &[u8]) -> Inputs {
    inputs_of(MeshTunnel::Vxlan, p)
}

fn inputs_of(kind: MeshTunnel, p: &[u8]) -> Inputs {
    Inputs {
        cfg: cfg(),
        project: Some("lab".into()),
        mesh: Some(Mesh {
            opts: MeshOptions {
                kind,
                port: kind.default_port(),
                underlay_mtu: 1500,
                project: "lab".into(),
            },
            peers: peers(p),
            local: Some(Ipv4Addr::new(192, 168, 211, 1)),
        }),
        ..Default::default()
    }
}

fn ctr(svc: &str, i: u32) -> Container {
    Container {
        id: format!("{:016x}", i as u64 * 7919 + svc.len() as u64),
        name: format!("lab_{svc}.{i}"),
        service: Some(svc.into()),
        project: Some("lab".into()),
        index: i,
        netns: PathBuf::from(format!("/run/netns/{svc}_{i}")),
    }
}

/// The daemon's desired state of `ctrs` (a container that cannot be
/// planned fails the test).
fn desired(inp: &Inputs, ctrs: &[Container]) -> State {
    let (s, errors) = conlink_core::plan::desired_state(inp, ctrs);
    assert!(errors.is_empty(), "{errors:?}");
    s
}

fn converge(ap: &Applier<FakeKernel>, actual: &mut State, want: &State) -> Vec<Op> {
    let ops = diff(actual, want);
    for op in &ops {
        ap.apply_one(op).unwrap_or_else(|e| panic!("{op}: {e}"));
        record(actual, op);
    }
    assert!(diff(actual, want).is_empty(), "not converged");
    ops
}

fn s1() -> String {
    format!("vxlan-{}", derive_vni("lab", "s1"))
}

fn p1() -> String {
    format!("vxlan-{}", derive_vni("lab", "p1"))
}

#[test]
fn peers_coming_and_going_change_flood_entries_in_place() {
    let k = FakeKernel::new();
    let n = ctr("node", 1);
    k.add_ns(&n.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    let ops = converge(
        &ap,
        &mut actual,
        &desired(&inputs(&[2, 3]), std::slice::from_ref(&n)),
    );
    let made: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
    assert!(
        made.contains(&format!(
            "tunnel {}: created (multi-host, VNI {}, bridge s1)",
            s1(),
            derive_vni("lab", "s1")
        )),
        "{made:?}"
    );
    let w = ap.kernel().world();
    let t = &w.ns[CONLINK][&s1()];
    assert_eq!(t.kind, "vxlan");
    assert_eq!(t.master.as_deref(), Some("s1"));
    assert_eq!(t.mtu, 1450);
    assert_eq!(t.flood, peers(&[2, 3]));
    let index = t.ifindex;
    // Peer 3 leaves, 4 comes: two entries, the devices stay.
    let ops = converge(
        &ap,
        &mut actual,
        &desired(&inputs(&[2, 4]), std::slice::from_ref(&n)),
    );
    let mut want = vec![];
    for t in [p1(), s1()] {
        want.push(Op::DelFlood {
            name: t.clone(),
            remote: Ipv4Addr::new(192, 168, 211, 3),
        });
        want.push(Op::AddFlood {
            name: t,
            remote: Ipv4Addr::new(192, 168, 211, 4),
        });
    }
    let mut got = ops.clone();
    got.sort_by_key(|o| o.to_string());
    want.sort_by_key(|o| o.to_string());
    assert_eq!(got, want);
    let w = ap.kernel().world();
    assert_eq!(w.ns[CONLINK][&s1()].ifindex, index, "tunnel re-made");
    assert_eq!(w.ns[CONLINK][&s1()].flood, peers(&[2, 4]));
    assert_eq!(actual.globals.tunnels[&s1()].flood, peers(&[2, 4]));
    // The container's link was not touched by any of it.
    assert!(ops.iter().all(|o| o.ctr().is_none()));
    // The last peer leaves: the tunnels go, the bridge and the link stay.
    let ops = converge(
        &ap,
        &mut actual,
        &desired(&inputs(&[]), std::slice::from_ref(&n)),
    );
    assert_eq!(
        ops.iter()
            .filter(|o| matches!(o, Op::DeleteTunnel { .. }))
            .count(),
        2
    );
    let w = ap.kernel().world();
    assert!(!w.ns[CONLINK].values().any(|l| l.kind == "vxlan"));
    assert!(w.ns[CONLINK].contains_key("s1"));
    assert!(w.ns[CONLINK].contains_key("node_1-lan0"));
}

#[test]
fn a_restarted_conlink_adopts_its_tunnels_and_their_peers() {
    let k = FakeKernel::new();
    let n = ctr("node", 1);
    k.add_ns(&n.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(
        &ap,
        &mut actual,
        &desired(&inputs(&[2, 3]), std::slice::from_ref(&n)),
    );
    let index = ap.kernel().world().ns[CONLINK][&s1()].ifindex;
    // conlink dies (nothing removed); the next run, whose peers are now
    // 2 and 5, reads the kernel back (patch bridges are bookkeeping only:
    // recorded again, nothing made).
    let inp = inputs(&[2, 5]);
    let found = adopt::scan(ap.kernel(), &inp);
    let t = &found.state.globals.tunnels[&s1()];
    assert_eq!(t.flood, peers(&[2, 3]), "flood list read back");
    let mut adopted = found.state.clone();
    adopted.containers.clear();
    let want = State {
        globals: desired_globals(&inp),
        ..Default::default()
    };
    let ops = diff(&adopted, &want);
    assert!(
        ops.iter().all(|o| matches!(
            o,
            Op::AddFlood { .. }
                | Op::DelFlood { .. }
                | Op::DropForwardTable
                | Op::CreateBridge {
                    mode: BridgeMode::Patch,
                    ..
                }
        )),
        "adoption re-made something: {ops:?}"
    );
    for op in &ops {
        ap.apply_one(op).unwrap();
        record(&mut adopted, op);
    }
    let w = ap.kernel().world();
    assert_eq!(w.ns[CONLINK][&s1()].ifindex, index);
    assert_eq!(w.ns[CONLINK][&s1()].flood, peers(&[2, 5]));
    // Another underlay MTU is another device: not adopted, re-made.
    let mut other = inputs(&[2, 5]);
    if let Some(m) = &mut other.mesh {
        m.opts.underlay_mtu = 9000;
    }
    let found = adopt::scan(ap.kernel(), &other);
    let want = desired_globals(&other);
    let ops = diff(
        &State {
            globals: found.state.globals,
            ..Default::default()
        },
        &State {
            globals: want,
            ..Default::default()
        },
    );
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::DeleteTunnel { name, .. } if *name == s1())),
        "{ops:?}"
    );
}

#[test]
fn a_patch_uses_its_tunnel_only_while_the_other_end_is_elsewhere() {
    let k = FakeKernel::new();
    let (a, b) = (ctr("pa", 1), ctr("pb", 1));
    k.add_ns(&a.netns);
    k.add_ns(&b.netns);
    let ap = Applier::new(k);
    let inp = inputs(&[2]);
    let mut actual = State::default();
    let patched = |ap: &Applier<FakeKernel>, dev: &str| {
        ap.kernel().world().ns[CONLINK]
            .get(dev)
            .and_then(|l| l.patched.clone())
    };
    // Only pa here: its end is patched to the tunnel.
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&a)));
    assert_eq!(patched(&ap, "pa_1-lan0"), Some(p1()));
    assert_eq!(patched(&ap, &p1()), Some("pa_1-lan0".into()));
    // pb is rescheduled here: the two local ends are patched, the tunnel
    // released (no redirect into either end).
    converge(&ap, &mut actual, &desired(&inp, &[a.clone(), b.clone()]));
    assert_eq!(patched(&ap, "pa_1-lan0"), Some("pb_1-lan0".into()));
    assert_eq!(patched(&ap, "pb_1-lan0"), Some("pa_1-lan0".into()));
    assert_eq!(patched(&ap, &p1()), None);
    // pb leaves again: pa goes back to the tunnel.
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&a)));
    assert_eq!(patched(&ap, "pa_1-lan0"), Some(p1()));
    assert_eq!(patched(&ap, &p1()), Some("pa_1-lan0".into()));
    // The last peer leaves: the tunnel goes; pa is alone (nothing to
    // patch), as after a fresh start with no peers.
    converge(
        &ap,
        &mut actual,
        &desired(&inputs(&[]), std::slice::from_ref(&a)),
    );
    assert!(!ap.kernel().world().ns[CONLINK].contains_key(&p1()));
    let fresh = {
        let k = FakeKernel::new();
        k.add_ns(&a.netns);
        let ap2 = Applier::new(k);
        let mut st = State::default();
        converge(
            &ap2,
            &mut st,
            &desired(&inputs(&[]), std::slice::from_ref(&a)),
        );
        ap2.kernel().world().without_indexes()
    };
    let mut now = ap.kernel().world().without_indexes();
    now.ns.retain(|k, _| fresh.ns.contains_key(k));
    // pa's filter still names the deleted tunnel in the kernel model (a
    // redirect to nowhere, as tc leaves it); everything else is equal.
    if let Some(l) = now.ns.get_mut(CONLINK).and_then(|m| m.get_mut("pa_1-lan0")) {
        l.patched = None;
    }
    assert_eq!(now.ns, fresh.ns);
}

#[test]
fn teardown_removes_the_mesh_with_everything_else() {
    let k = FakeKernel::new();
    let (n, a) = (ctr("node", 1), ctr("pa", 1));
    k.add_ns(&n.netns);
    k.add_ns(&a.netns);
    let empty = k.world();
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inputs(&[2, 3]), &[n, a]));
    converge(&ap, &mut actual, &State::default());
    assert_eq!(
        ap.kernel().world().without_indexes().ns,
        empty.without_indexes().ns
    );
}

/// The per-peer device of bridge `b` towards peer 192.168.211.`i`.
fn dev(kind: MeshTunnel, b: &str, i: u8) -> String {
    peer_tunnel_name(kind, derive_vni("lab", b), Ipv4Addr::new(192, 168, 211, i))
}

#[test]
fn per_peer_kinds_make_and_remove_one_isolated_device_per_peer() {
    for kind in [MeshTunnel::Geneve, MeshTunnel::VxlanP2p] {
        let k = FakeKernel::new();
        let n = ctr("node", 1);
        k.add_ns(&n.netns);
        let ap = Applier::new(k);
        let mut actual = State::default();
        let node = std::slice::from_ref(&n);
        converge(&ap, &mut actual, &desired(&inputs_of(kind, &[2, 3]), node));
        let w = ap.kernel().world();
        let devs: Vec<&String> = w.ns[CONLINK]
            .iter()
            .filter(|(_, l)| l.remote.is_some())
            .map(|(n, _)| n)
            .collect();
        // s1 towards 2 and 3; the patch p1 is not stretched (two peers).
        assert_eq!(
            devs,
            vec![&dev(kind, "s1", 2), &dev(kind, "s1", 3)],
            "{kind}"
        );
        for i in [2, 3] {
            let l = &w.ns[CONLINK][&dev(kind, "s1", i)];
            assert_eq!(
                l.kind,
                if kind == MeshTunnel::Geneve {
                    "geneve"
                } else {
                    "vxlan"
                }
            );
            assert_eq!(l.remote, Some(Ipv4Addr::new(192, 168, 211, i)));
            assert!(l.isolated && l.up, "{kind}: isolated and up");
            assert_eq!(l.master.as_deref(), Some("s1"));
            assert_eq!(l.mtu, 1450);
            assert!(l.flood.is_empty());
        }
        let kept = w.ns[CONLINK][&dev(kind, "s1", 2)].ifindex;
        // Peer 3 leaves, 4 comes: one device removed, one made; 2 stays.
        let ops = converge(&ap, &mut actual, &desired(&inputs_of(kind, &[2, 4]), node));
        let shown: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
        assert_eq!(ops.len(), 2, "{kind}: {shown:?}");
        assert!(
            ops.iter()
                .any(|o| matches!(o, Op::DeleteTunnel { name, .. } if *name == dev(kind, "s1", 3))),
            "{shown:?}"
        );
        assert!(
            ops.iter()
                .any(|o| matches!(o, Op::CreateTunnel { name, .. } if *name == dev(kind, "s1", 4))),
            "{shown:?}"
        );
        let w = ap.kernel().world();
        assert_eq!(w.ns[CONLINK][&dev(kind, "s1", 2)].ifindex, kept);
        assert!(!w.ns[CONLINK].contains_key(&dev(kind, "s1", 3)));
        assert!(
            ops.iter().all(|o| o.ctr().is_none()),
            "no container touched"
        );
        // A restart adopts the devices as they are (nothing re-made).
        let inp = inputs_of(kind, &[2, 4]);
        let found = adopt::scan(ap.kernel(), &inp);
        let mut adopted = found.state.clone();
        adopted.containers.clear();
        let want = State {
            globals: desired_globals(&inp),
            ..Default::default()
        };
        let ops = diff(&adopted, &want);
        assert!(
            ops.iter().all(|o| matches!(
                o,
                Op::DropForwardTable
                    | Op::CreateBridge {
                        mode: BridgeMode::Patch,
                        ..
                    }
            )),
            "{kind}: adoption re-made something: {ops:?}"
        );
        // The last peer leaves: every device goes.
        converge(&ap, &mut actual, &desired(&inputs_of(kind, &[]), node));
        let w = ap.kernel().world();
        assert!(
            !w.ns[CONLINK].values().any(|l| l.remote.is_some()),
            "{kind}"
        );
        assert!(w.ns[CONLINK].contains_key("node_1-lan0"));
    }
}

#[test]
fn per_peer_patch_is_one_p2p_device_while_there_is_one_peer() {
    let kind = MeshTunnel::Geneve;
    let k = FakeKernel::new();
    let a = ctr("pa", 1);
    k.add_ns(&a.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    let pa = std::slice::from_ref(&a);
    let patched = |ap: &Applier<FakeKernel>, d: &str| {
        ap.kernel().world().ns[CONLINK]
            .get(d)
            .and_then(|l| l.patched.clone())
    };
    converge(&ap, &mut actual, &desired(&inputs_of(kind, &[2]), pa));
    let t = dev(kind, "p1", 2);
    assert_eq!(patched(&ap, "pa_1-lan0"), Some(t.clone()));
    assert_eq!(patched(&ap, &t), Some("pa_1-lan0".into()));
    // Not isolated: a patch has no bridge.
    assert!(!ap.kernel().world().ns[CONLINK][&t].isolated);
    // A second peer: the patch is no longer stretched (warned), pa alone.
    converge(&ap, &mut actual, &desired(&inputs_of(kind, &[2, 3]), pa));
    assert!(!ap.kernel().world().ns[CONLINK].contains_key(&t));
    assert!(!ap.kernel().world().ns[CONLINK].contains_key(&dev(kind, "p1", 3)));
    // Back to one peer: the patch is carried again.
    converge(&ap, &mut actual, &desired(&inputs_of(kind, &[3]), pa));
    let t3 = dev(kind, "p1", 3);
    assert_eq!(patched(&ap, "pa_1-lan0"), Some(t3.clone()));
    assert_eq!(patched(&ap, &t3), Some("pa_1-lan0".into()));
}
