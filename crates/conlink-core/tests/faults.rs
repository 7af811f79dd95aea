//! Fault injection against the fake kernel (issue 12): a kernel error at
//! every single step of a container's setup, the container's namespace
//! vanishing at every step, conlink killed after every step and
//! restarted, and one link's feature missing among others.
//! Each case asserts nothing leaks (interfaces, NAT tables, forwards) and
//! that, once the fault is gone, the same diff converges to what a fresh
//! start makes. The real-kernel twins are in
//! crates/conlink/tests/netns_faults.rs.

use std::path::PathBuf;

use conlink_core::adopt;
use conlink_core::apply::Applier;
use conlink_core::desired::{desired_container, desired_globals, Inputs};
use conlink_core::diff::{diff, diff_container, record};
use conlink_core::fake::{FakeKernel, World};
use conlink_core::state::{CtrRef, State};
use conlink_model::{Bridge, BridgeMode, Container, Group, Link, LinkType, NetworkConfig, Target};

fn link(dev: &str, bridge: &str, ip: &str, mac: &str) -> Link {
    Link {
        link_type: LinkType::Veth,
        target: Target::Service("a".into()),
        dev: dev.into(),
        outer_dev: None,
        bridge: Some(bridge.into()),
        ip: vec![ip.parse().unwrap()],
        mac: Some(mac.parse().unwrap()),
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

/// Service `a` with two links using most features (routes, NAT, netem,
/// ethtool, a forward), and a dummy.
fn inputs() -> Inputs {
    let mut l0 = link("eth0", "s1", "10.0.0.1/24", "c2:00:00:00:01:00");
    l0.route = vec!["10.1.0.0/16 via 10.0.0.254".parse().unwrap()];
    l0.nat = Some("10.9.0.1".parse().unwrap());
    l0.forward = vec!["8080:80/tcp".parse().unwrap()];
    let mut l1 = link("eth1", "s2", "10.0.1.1/24", "c2:00:00:00:02:00");
    l1.netem = Some("delay 10ms".parse().unwrap());
    l1.ethtool = vec!["-K tx off".parse().unwrap()];
    let mut d = link("dummy0", "s1", "10.0.2.1/24", "c2:00:00:00:03:00");
    d.link_type = LinkType::Dummy;
    d.bridge = None;
    let mut cfg = NetworkConfig::default();
    for b in ["s1", "s2"] {
        cfg.bridges.insert(
            b.into(),
            Bridge {
                bridge: b.into(),
                mode: BridgeMode::Linux,
                vni: None,
            },
        );
    }
    cfg.services.insert(
        "a".into(),
        Group {
            links: vec![l0, l1, d],
            commands: vec![],
        },
    );
    Inputs {
        cfg,
        ..Default::default()
    }
}

fn ctr(i: u32) -> Container {
    Container {
        id: format!("{:016x}", 1000 + i),
        name: format!("a_{i}"),
        service: Some("a".into()),
        project: None,
        index: i,
        netns: PathBuf::from(format!("/run/netns/a_{i}")),
    }
}

/// A kernel with the globals (bridges) applied and `n` container
/// namespaces; the recorded state.
fn with_globals(inp: &Inputs, n: u32) -> (Applier<FakeKernel>, State) {
    let k = FakeKernel::new();
    for i in 1..=n {
        k.add_ns(&ctr(i).netns);
    }
    let ap = Applier::new(k);
    let mut st = State::default();
    let want = State {
        globals: desired_globals(inp),
        ..Default::default()
    };
    for op in diff(&st, &want) {
        ap.apply_one(&op).unwrap();
        record(&mut st, &op);
    }
    (ap, st)
}

/// The world after a clean setup of containers 1..=n (the reference).
fn fresh(inp: &Inputs, n: u32) -> World {
    let (ap, mut st) = with_globals(inp, n);
    for i in 1..=n {
        let c = ctr(i);
        let want = desired_container(inp, &c).unwrap().unwrap();
        let mut slot = None;
        ap.apply_container(&mut slot, &diff_container(None, Some(&want)))
            .unwrap();
        st.containers.insert(c.name.clone(), slot.unwrap());
    }
    ap.kernel().world().without_indexes()
}

/// The kernel calls a clean setup of container 1 makes, in order.
fn setup_calls(inp: &Inputs) -> Vec<String> {
    let (ap, _) = with_globals(inp, 1);
    let before = ap.kernel().calls.lock().unwrap().len();
    let want = desired_container(inp, &ctr(1)).unwrap().unwrap();
    let mut slot = None;
    ap.apply_container(&mut slot, &diff_container(None, Some(&want)))
        .unwrap();
    let calls = ap.kernel().calls.lock().unwrap()[before..].to_vec();
    calls
}

/// A kernel error at each step of the setup: the container is rolled back
/// to nothing (no interface, NAT table or forward left), and after the
/// fault heals the same setup converges to a fresh start's world.
#[test]
fn a_kernel_error_at_any_step_leaks_nothing_and_heals() {
    let inp = inputs();
    let calls = setup_calls(&inp);
    assert!(calls.len() >= 10, "only {} calls: {calls:#?}", calls.len());
    let reference = fresh(&inp, 1);
    for (i, call) in calls.iter().enumerate() {
        let (ap, _) = with_globals(&inp, 1);
        let before = ap.kernel().world().without_indexes();
        let want = desired_container(&inp, &ctr(1)).unwrap().unwrap();
        ap.kernel().fail_on(call);
        let mut slot = None;
        let r = ap.apply_container(&mut slot, &diff_container(None, Some(&want)));
        assert!(r.is_err(), "step {i} ({call}) failing went unnoticed");
        assert!(slot.is_none(), "step {i} ({call}): state left {slot:?}");
        let after = ap.kernel().world().without_indexes();
        assert_eq!(after.ns, before.ns, "step {i} ({call}): interfaces leaked");
        assert_eq!(after.nat, before.nat, "step {i} ({call}): NAT table leaked");
        assert_eq!(
            after.fwd.clone().unwrap_or_default(),
            before.fwd.clone().unwrap_or_default(),
            "step {i} ({call}): forwards leaked"
        );
        ap.kernel().heal();
        ap.apply_container(&mut slot, &diff_container(None, Some(&want)))
            .unwrap_or_else(|e| panic!("step {i} ({call}): after healing: {e}"));
        let healed = ap.kernel().world().without_indexes();
        assert_eq!(healed.ns, reference.ns, "step {i} ({call}): not converged");
        assert_eq!(healed.nat, reference.nat, "step {i} ({call})");
    }
}

/// The link-level changes of a setup go to the kernel as runs (one
/// datagram per namespace on the real kernel): a change refused in the
/// middle of a run does not stop the rest of the run, but everything that
/// took effect is undone, and the markers (a run of their own, last) are
/// never written over a half-made container.
#[test]
fn a_refused_change_in_a_run_is_undone_with_the_rest_and_no_marker_is_written() {
    let inp = inputs();
    let calls = setup_calls(&inp);
    let at = |what: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(what) && c.contains(" eth0 "))
            .unwrap_or_else(|| panic!("no {what} call for eth0 in {calls:#?}"))
    };
    // In a clean setup the eth0 address and route follow one another in a
    // run (the same call order as their ops), and the markers come last.
    let (addr, route) = (at("add_addr"), at("add_route"));
    assert!(addr < route, "{calls:#?}");
    assert!(
        calls.iter().rposition(|c| c.starts_with("set_marker")) == Some(calls.len() - 1),
        "markers last: {calls:#?}"
    );
    let (ap, _) = with_globals(&inp, 1);
    let before = ap.kernel().world().without_indexes();
    let n0 = ap.kernel().calls.lock().unwrap().len();
    ap.kernel().fail_on(&calls[addr]);
    let want = desired_container(&inp, &ctr(1)).unwrap().unwrap();
    let mut slot = None;
    let e = ap
        .apply_container(&mut slot, &diff_container(None, Some(&want)))
        .unwrap_err();
    assert!(e.op.contains("address 10.0.0.1/24 added"), "{e}");
    let made = ap.kernel().calls.lock().unwrap()[n0..].to_vec();
    let failed = made.iter().position(|c| c == &calls[addr]).unwrap();
    assert!(
        made[failed..].iter().any(|c| c == &calls[route]),
        "the route after the refused address was not tried: {made:#?}"
    );
    assert!(
        !made.iter().any(|c| c.starts_with("set_marker")),
        "a marker was written over a half-made container: {made:#?}"
    );
    assert!(slot.is_none(), "state left {slot:?}");
    let after = ap.kernel().world().without_indexes();
    assert_eq!(after.ns, before.ns, "interfaces left");
    assert_eq!(after.nat, before.nat, "NAT table left");
}

/// The container dies (its namespace vanishes) after each step of its
/// setup: the rest fails, and removing the container leaves conlink's
/// namespace as the globals alone made it.
#[test]
fn a_container_dying_at_any_step_leaks_nothing() {
    let inp = inputs();
    let want = desired_container(&inp, &ctr(1)).unwrap().unwrap();
    let ops = diff_container(None, Some(&want));
    for cut in 0..=ops.len() {
        let (ap, _) = with_globals(&inp, 1);
        let globals_only = ap.kernel().world().without_indexes();
        let mut slot = None;
        ap.apply_container(&mut slot, &ops[..cut])
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        ap.kernel().remove_ns(&ctr(1).netns);
        let rest = ap.apply_container(&mut slot, &ops[cut..]);
        assert!(
            cut == ops.len() || rest.is_err() || ops[cut..].iter().all(|o| o.ctr().is_none()),
            "cut {cut}: setup in a vanished namespace succeeded"
        );
        // The die event: tear down whatever was recorded.
        let down = diff_container(slot.as_ref(), None);
        let mut slot2 = slot.clone();
        // Deleting what died with the namespace reports Gone; the applier
        // treats that as done, so this must succeed.
        ap.apply_container(&mut slot2, &down)
            .unwrap_or_else(|e| panic!("cut {cut}: teardown after death: {e}"));
        let after = ap.kernel().world().without_indexes();
        assert_eq!(
            after.ns.get(conlink_core::fake::CONLINK),
            globals_only.ns.get(conlink_core::fake::CONLINK),
            "cut {cut}: conlink's namespace keeps something of the dead container"
        );
        assert!(after.nat.is_empty(), "cut {cut}: NAT table leaked");
        assert!(
            after.fwd.clone().unwrap_or_default().is_empty(),
            "cut {cut}: forwards leaked"
        );
    }
}

/// A link whose kernel feature is missing (netem here) in the middle of
/// three replicas: only that replica fails, and only it is rolled back;
/// the others end exactly as in a fresh start.
#[test]
fn a_missing_feature_fails_only_its_container() {
    let inp = inputs();
    let (ap, _) = with_globals(&inp, 3);
    let netem_call = setup_calls(&inp)
        .into_iter()
        .find(|c| c.contains("netem"))
        .expect("a netem call");
    // The same call for replica 2.
    let for2 = netem_call.replace("/run/netns/a_1", "/run/netns/a_2");
    assert_ne!(
        for2, netem_call,
        "call text does not name the namespace: {netem_call}"
    );
    ap.kernel().fail_on(&for2);
    let mut results = Vec::new();
    for i in 1..=3 {
        let want = desired_container(&inp, &ctr(i)).unwrap().unwrap();
        let mut slot = None;
        results.push(
            ap.apply_container(&mut slot, &diff_container(None, Some(&want)))
                .map(|_| slot),
        );
    }
    assert!(results[0].as_ref().is_ok_and(|s| s.is_some()));
    assert!(results[2].as_ref().is_ok_and(|s| s.is_some()));
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.dev.as_deref(), Some("eth1"), "{err:?}");
    let w = ap.kernel().world().without_indexes();
    assert!(
        w.ns["/run/netns/a_2"].keys().all(|d| d == "lo"),
        "replica 2 keeps {:?}",
        w.ns["/run/netns/a_2"].keys().collect::<Vec<_>>()
    );
    // Replicas 1 and 3 as a fresh start of them makes them.
    let reference = fresh(&inp, 3);
    for ns in ["/run/netns/a_1", "/run/netns/a_3"] {
        assert_eq!(w.ns[ns], reference.ns[ns], "{ns}");
    }
}

/// conlink SIGKILLed after each step of a container's setup, then started
/// again on the system as it was left: adoption (scan the markers, bind
/// them to the running container, diff) must end exactly where a fresh
/// start ends. A link killed half-made (created, no address yet) used to
/// carry the finished link's hash from its creation on, so the restart
/// adopted it as finished and left it without its address (the real-kernel
/// twin: `crates/conlink/tests/e2e_faults.rs`, SIGKILL during a compose
/// scale-up).
#[test]
fn conlink_killed_after_any_step_adopts_to_a_fresh_start() {
    let inp = inputs();
    let c = ctr(1);
    let want = desired_container(&inp, &c).unwrap().unwrap();
    let ops = diff_container(None, Some(&want));
    let reference = fresh(&inp, 1);
    for cut in 0..=ops.len() {
        let (ap, _) = with_globals(&inp, 1);
        let mut slot = None;
        ap.apply_container(&mut slot, &ops[..cut])
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        // The restart: a new process (no memory), the same system.
        let ap2 = Applier::new(FakeKernel::with_world(ap.kernel().world()));
        let found = adopt::scan(ap2.kernel(), &inp);
        let r = CtrRef {
            name: c.name.clone(),
            id: c.id.clone(),
            netns: c.netns.clone(),
        };
        let bound = adopt::bind(
            found.state.containers.get(&c.name),
            &r,
            Some(&want),
            &adopt::inner_markers(ap2.kernel(), &r),
        );
        let mut actual = State {
            globals: found.state.globals.clone(),
            ..Default::default()
        };
        if let Some(b) = bound {
            actual.containers.insert(c.name.clone(), b);
        }
        let mut desired = State {
            globals: desired_globals(&inp),
            ..Default::default()
        };
        desired.containers.insert(c.name.clone(), want.clone());
        for op in diff(&actual, &desired) {
            ap2.apply_one(&op)
                .unwrap_or_else(|e| panic!("cut {cut} ({}): {op}: {e}", step(&ops, cut)));
            record(&mut actual, &op);
        }
        let w = ap2.kernel().world().without_indexes();
        assert_eq!(
            w.ns,
            reference.ns,
            "cut {cut} ({}): the restart did not converge to a fresh start",
            step(&ops, cut)
        );
        assert_eq!(w.nat, reference.nat, "cut {cut}: NAT tables");
        assert_eq!(
            w.fwd.clone().unwrap_or_default(),
            reference.fwd.clone().unwrap_or_default(),
            "cut {cut}: forwards"
        );
    }
}

/// The last step done before `cut`, for messages.
fn step(ops: &[conlink_core::diff::Op], cut: usize) -> String {
    match cut.checked_sub(1).and_then(|i| ops.get(i)) {
        Some(op) => format!("killed after {op}"),
        None => "killed before the first step".into(),
    }
}
