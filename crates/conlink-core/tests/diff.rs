//! The diff and the applier against the fake kernel: no root needed.

use std::path::PathBuf;

use conlink_core::adopt;
use conlink_core::apply::Applier;
use conlink_core::desired::Inputs;
use conlink_core::diff::{diff, diff_container, record, Op};
use conlink_core::fake::{FakeKernel, World, CONLINK};
use conlink_core::kernel::Kernel;
use conlink_core::state::{CtrRef, State};
use conlink_model::{Bridge, BridgeMode, Container, Group, Link, LinkType, NetworkConfig, Target};

fn veth(svc: &str, dev: &str, bridge: &str, ip: &str) -> Link {
    Link {
        link_type: LinkType::Veth,
        target: Target::Service(svc.into()),
        dev: dev.into(),
        outer_dev: None,
        bridge: Some(bridge.into()),
        ip: vec![ip.parse().unwrap()],
        mac: Some("c2:00:00:00:00:01".parse().unwrap()),
        mtu: Some(1500),
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

fn cfg(links: Vec<Link>) -> NetworkConfig {
    let mut c = NetworkConfig::default();
    for b in ["s1", "s2"] {
        c.bridges.insert(
            b.into(),
            Bridge {
                bridge: b.into(),
                mode: BridgeMode::Linux,
                vni: None,
            },
        );
    }
    for l in links {
        let name = l.target.name().to_string();
        c.services
            .entry(name)
            .or_insert_with(Group::default)
            .links
            .push(l);
    }
    c
}

fn ctr(svc: &str, i: u32) -> Container {
    Container {
        id: format!("{:016x}", i as u64 * 7919 + svc.len() as u64),
        name: format!("{svc}_{i}"),
        service: Some(svc.into()),
        project: None,
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

/// Applies diff(actual -> want) on the kernel, recording; panics on error.
fn converge(ap: &Applier<FakeKernel>, actual: &mut State, want: &State) -> Vec<Op> {
    let ops = diff(actual, want);
    for op in &ops {
        ap.apply_one(op).unwrap_or_else(|e| panic!("{op}: {e}"));
        record(actual, op);
    }
    ops
}

fn inputs(c: NetworkConfig) -> Inputs {
    Inputs {
        cfg: c,
        ..Default::default()
    }
}

#[test]
fn setup_then_teardown_leaves_the_kernel_as_it_was() {
    let mut l = veth("a", "eth0", "s1", "10.0.0.1/24");
    l.forward = vec!["8080:80/tcp".parse().unwrap()];
    l.nat = Some("10.9.0.1".parse().unwrap());
    l.route = vec!["10.1.0.0/16 via 10.0.0.254".parse().unwrap()];
    l.netem = Some("delay 10ms".parse().unwrap());
    let inp = inputs(cfg(vec![l]));
    let k = FakeKernel::new();
    let c = ctr("a", 1);
    k.add_ns(&c.netns);
    let empty = k.world();
    let ap = Applier::new(k);
    let mut actual = State::default();
    let want = desired(&inp, std::slice::from_ref(&c));
    converge(&ap, &mut actual, &want);
    assert!(diff(&actual, &want).is_empty(), "not converged");
    let w = ap.kernel().world();
    // The forward's host route on the bridge side is there...
    assert!(w.ns[CONLINK]["s1"].routes.contains("10.0.0.1/32"), "{w:?}");
    assert!(w.nat.contains_key(&c.netns.display().to_string()));
    converge(&ap, &mut actual, &State::default());
    let after = ap.kernel().world();
    // ...and gone after teardown (the old inverse forgot it), as is the NAT table.
    assert_eq!(
        after.without_indexes().ns,
        World { ..empty.clone() }.without_indexes().ns
    );
    assert!(after.nat.is_empty());
    assert_eq!(after.fwd, None);
}

#[test]
fn a_setup_failing_part_way_leaves_no_nat_table() {
    let mut l = veth("a", "eth0", "s1", "10.0.0.1/24");
    l.nat = Some("10.9.0.1".parse().unwrap());
    let mut l2 = veth("a", "eth1", "s2", "10.0.1.1/24");
    l2.mac = Some("c2:00:00:00:00:02".parse().unwrap());
    let inp = inputs(cfg(vec![l, l2]));
    let k = FakeKernel::new();
    let c = ctr("a", 1);
    k.add_ns(&c.netns);
    let ap = Applier::new(k);
    let mut g = State::default();
    let want = desired(&inp, std::slice::from_ref(&c));
    // Globals first.
    for op in diff(
        &g,
        &State {
            containers: Default::default(),
            ..want.clone()
        },
    ) {
        ap.apply_one(&op).unwrap();
        record(&mut g, &op);
    }
    let before = ap.kernel().world();
    ap.kernel().fail_on("add_addr /run/netns/a_1 eth1");
    let mut slot = None;
    let ops = diff_container(None, want.containers.get("a_1"));
    let err = ap.apply_container(&mut slot, &ops).unwrap_err();
    assert_eq!(err.dev.as_deref(), Some("eth1"));
    assert!(slot.is_none(), "{slot:?}");
    let after = ap.kernel().world();
    assert!(after.nat.is_empty(), "NAT table left: {:?}", after.nat);
    assert_eq!(
        after.without_indexes(),
        World {
            next_index: 0,
            ..before.without_indexes()
        }
    );
}

#[test]
fn in_place_changes_keep_the_ifindex_and_touch_only_the_changed_link() {
    let inp = inputs(cfg(vec![
        veth("a", "eth0", "s1", "10.0.0.1/24"),
        veth("b", "eth0", "s1", "10.0.0.2/24"),
    ]));
    let k = FakeKernel::new();
    let (a, b) = (ctr("a", 1), ctr("b", 1));
    k.add_ns(&a.netns);
    k.add_ns(&b.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inp, &[a.clone(), b.clone()]));
    let w0 = ap.kernel().world();
    let mut c2 = inp.cfg.clone();
    let l = &mut c2.services.get_mut("a").unwrap().links[0];
    l.mtu = Some(9000);
    l.ip = vec!["10.0.0.11/24".parse().unwrap()];
    l.route = vec!["default via 10.0.0.254".parse().unwrap()];
    let ops = converge(
        &ap,
        &mut actual,
        &desired(&inputs(c2), &[a.clone(), b.clone()]),
    );
    let shown: Vec<String> = ops
        .iter()
        .filter(|o| !o.is_bookkeeping())
        .map(|o| o.to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "a_1/eth0: address 10.0.0.1/24 removed",
            "a_1/eth0: mtu 1500 -> 9000",
            "a_1/eth0: address 10.0.0.11/24 added",
            "a_1/eth0: route default via 10.0.0.254 added",
        ]
    );
    let w1 = ap.kernel().world();
    let an = a.netns.display().to_string();
    let bn = b.netns.display().to_string();
    assert_eq!(w1.ns[&an]["eth0"].ifindex, w0.ns[&an]["eth0"].ifindex);
    assert_eq!(w1.ns[&bn], w0.ns[&bn], "untouched container changed");
    assert_eq!(w1.ns[&an]["eth0"].mtu, 9000);
}

#[test]
fn a_bridge_change_recreates_the_link_on_the_new_bridge() {
    let inp = inputs(cfg(vec![veth("a", "eth0", "s1", "10.0.0.1/24")]));
    let k = FakeKernel::new();
    let a = ctr("a", 1);
    k.add_ns(&a.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&a)));
    let mut c2 = inp.cfg.clone();
    c2.services.get_mut("a").unwrap().links[0].bridge = Some("s2".into());
    converge(
        &ap,
        &mut actual,
        &desired(&inputs(c2), std::slice::from_ref(&a)),
    );
    let w = ap.kernel().world();
    assert_eq!(w.ns[CONLINK]["a_1-eth0"].master.as_deref(), Some("s2"));
}

#[test]
fn adoption_keeps_matching_links_and_replaces_changed_ones() {
    let inp = inputs(cfg(vec![
        veth("a", "eth0", "s1", "10.0.0.1/24"),
        veth("b", "eth0", "s1", "10.0.0.2/24"),
    ]));
    let k = FakeKernel::new();
    let (a, b) = (ctr("a", 1), ctr("b", 1));
    k.add_ns(&a.netns);
    k.add_ns(&b.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inp, &[a.clone(), b.clone()]));
    let w0 = ap.kernel().world();
    // "Restart" with b's address changed: scan the kernel, bind, diff.
    let mut c2 = inp.cfg.clone();
    c2.services.get_mut("b").unwrap().links[0].ip = vec!["10.0.0.22/24".parse().unwrap()];
    let inp2 = inputs(c2);
    let found = adopt::scan(ap.kernel(), &inp2);
    assert_eq!(found.count, 4);
    let want = desired(&inp2, &[a.clone(), b.clone()]);
    let mut st = State {
        globals: found.state.globals.clone(),
        ..Default::default()
    };
    for c in [&a, &b] {
        let r = CtrRef {
            name: c.name.clone(),
            id: c.id.clone(),
            netns: c.netns.clone(),
        };
        if let Some(x) = adopt::bind(
            found.state.containers.get(&c.name),
            &r,
            want.containers.get(&c.name),
            &adopt::inner_markers(ap.kernel(), &r),
        ) {
            st.containers.insert(c.name.clone(), x);
        }
    }
    assert_eq!(
        st.containers["a_1"], want.containers["a_1"],
        "a not adopted as is"
    );
    let ops = converge(&ap, &mut st, &want);
    assert!(
        ops.iter().all(|o| o.ctr().is_none_or(|c| c.name == "b_1")),
        "{ops:?}"
    );
    let w1 = ap.kernel().world();
    let an = a.netns.display().to_string();
    assert_eq!(w1.ns[&an], w0.ns[&an]);
    assert_eq!(w1.ns[CONLINK]["s1"].ifindex, w0.ns[CONLINK]["s1"].ifindex);
    let bn = b.netns.display().to_string();
    assert!(w1.ns[&bn]["eth0"]
        .addrs
        .contains(&"10.0.0.22/24".parse().unwrap()));
}

#[test]
fn the_kernel_marks_what_it_made() {
    let inp = inputs(cfg(vec![veth("a", "eth0", "s1", "10.0.0.1/24")]));
    let k = FakeKernel::new();
    let a = ctr("a", 1);
    k.add_ns(&a.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&a)));
    let m = ap
        .kernel()
        .marked(conlink_core::kernel::Ns::Conlink)
        .unwrap();
    let outer = m.iter().find(|m| m.name == "a_1-eth0").unwrap();
    let lm = adopt::LinkMarker::parse(&outer.marker).unwrap();
    assert_eq!((lm.ctr.as_str(), lm.dev.as_str()), ("a_1", "eth0"));
    assert_eq!(lm.hash, actual.containers["a_1"].links["eth0"].hash());
}

#[test]
fn an_admin_down_override_holds_both_veth_ends_down_and_up_restores_them() {
    let mut inp = inputs(cfg(vec![veth("a", "eth0", "s1", "10.0.0.1/24")]));
    let k = FakeKernel::new();
    let c = ctr("a", 1);
    k.add_ns(&c.netns);
    let ap = Applier::new(k);
    let mut actual = State::default();
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&c)));
    let ns = c.netns.display().to_string();
    let outer = actual.containers["a_1"].links["eth0"]
        .id
        .outer
        .clone()
        .unwrap()
        .name;
    let ends = |w: &World| (w.ns[&ns]["eth0"].up, w.ns[CONLINK][&outer].up);
    assert_eq!(ends(&ap.kernel().world()), (true, true));
    inp.overrides.insert(
        ("a_1".into(), "eth0".into()),
        conlink_core::desired::LinkOverride {
            admin_down: true,
            netem: None,
        },
    );
    converge(&ap, &mut actual, &desired(&inp, std::slice::from_ref(&c)));
    assert_eq!(ends(&ap.kernel().world()), (false, false), "both ends down");
    inp.overrides.clear();
    let want = desired(&inp, std::slice::from_ref(&c));
    converge(&ap, &mut actual, &want);
    assert_eq!(
        ends(&ap.kernel().world()),
        (true, true),
        "both ends up again"
    );
    assert!(diff(&actual, &want).is_empty(), "not converged");
}

/// A small deterministic PRNG (splitmix64): the property test's cases are
/// reproducible from the seed in a failure message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random config over services a, b, c: each link with random
/// properties from small sets, so edits hit every kind of change.
fn random_cfg(r: &mut Rng) -> NetworkConfig {
    let mut links = Vec::new();
    for (si, svc) in ["a", "b", "c"].iter().enumerate() {
        for (di, dev) in ["eth0", "eth1"].iter().enumerate() {
            if r.below(4) == 0 {
                continue;
            }
            let bridge = ["s1", "s2"][r.below(2) as usize];
            let mut l = veth(
                svc,
                dev,
                bridge,
                &format!("10.{}.{si}.{}/24", di + 1, 1 + r.below(3)),
            );
            l.mtu = Some([1500, 9000][r.below(2) as usize]);
            l.mac = Some(
                format!("c2:00:00:00:0{si}:{:02x}", r.below(3) + 16 * di as u64)
                    .parse()
                    .unwrap(),
            );
            if r.below(2) == 0 {
                l.route = vec![
                    format!("10.9{}.0.0/16 via 10.{}.{si}.254", r.below(2), di + 1)
                        .parse()
                        .unwrap(),
                ];
            }
            if r.below(3) == 0 {
                l.nat = Some(format!("10.77.{si}.{}", di + 1).parse().unwrap());
            }
            if r.below(3) == 0 {
                l.forward = vec![format!("{}:80/tcp", 8000 + si * 10 + di).parse().unwrap()];
            }
            if r.below(3) == 0 {
                l.ethtool = vec!["--offload tx off".parse().unwrap()];
            }
            if r.below(3) == 0 {
                l.link_type = LinkType::Dummy;
                l.bridge = None;
                l.forward.clear();
            }
            links.push(l);
        }
    }
    cfg(links)
}

/// Random sequences of config edits and container start/die events,
/// applied to the fake kernel, always end in the state a fresh start of
/// the final config (with the final containers) makes.
#[test]
fn any_history_ends_where_a_fresh_start_does() {
    for seed in 0..150u64 {
        let mut r = Rng(seed);
        let k = FakeKernel::new();
        let ap = Applier::new(k);
        let mut actual = State::default();
        let mut cfgnow = random_cfg(&mut r);
        // Running instances: (service, generation) -> a new id per restart.
        let mut running: Vec<Container> = Vec::new();
        let mut gen = 0u32;
        for _step in 0..12 {
            match r.below(3) {
                0 => cfgnow = random_cfg(&mut r),
                1 => {
                    // Start a stopped service (a new instance: new id).
                    let svc = ["a", "b", "c"][r.below(3) as usize];
                    if !running.iter().any(|c| c.service.as_deref() == Some(svc)) {
                        gen += 1;
                        let mut c = ctr(svc, 1);
                        c.id = format!("{gen:016x}");
                        c.netns = PathBuf::from(format!("/run/netns/{svc}-{gen}"));
                        ap.kernel().add_ns(&c.netns);
                        running.push(c);
                    }
                }
                _ => {
                    // A container dies: its namespace (and veths) vanish first.
                    if !running.is_empty() {
                        let c = running.remove(r.below(running.len() as u64) as usize);
                        ap.kernel().remove_ns(&c.netns);
                    }
                }
            }
            let want = desired(&inputs(cfgnow.clone()), &running);
            let ops = diff(&actual, &want);
            for op in &ops {
                ap.apply_one(op)
                    .unwrap_or_else(|e| panic!("seed {seed}: {op}: {e}"));
                record(&mut actual, op);
            }
            assert!(
                diff(&actual, &want).is_empty(),
                "seed {seed}: not converged"
            );
        }
        // A fresh start of the final config with the same containers.
        let fresh = FakeKernel::new();
        for c in &running {
            fresh.add_ns(&c.netns);
        }
        let fap = Applier::new(fresh);
        let mut factual = State::default();
        let want = desired(&inputs(cfgnow.clone()), &running);
        for op in diff(&factual, &want) {
            fap.apply_one(&op).unwrap();
            record(&mut factual, &op);
        }
        let (w1, w2) = (
            ap.kernel().world().without_indexes(),
            fap.kernel().world().without_indexes(),
        );
        assert_eq!(w1.ns, w2.ns, "seed {seed}: interfaces differ");
        assert_eq!(w1.nat, w2.nat, "seed {seed}: NAT differs");
        // The table is made on the first rule: an empty one equals none.
        let rules = |w: &World| w.fwd.clone().unwrap_or_default();
        assert_eq!(rules(&w1), rules(&w2), "seed {seed}: forwards differ");
        assert_eq!(actual, factual, "seed {seed}: recorded state differs");
    }
}
