//! `conlink plan`'s core against the fake kernel: the plan of each edit
//! of a lab, in both forms, checked exactly against golden files in
//! `tests/plan/` (`UPDATE_GOLDEN=1` rewrites them; review the diff), and
//! the kernel left exactly as it was.

use std::path::{Path, PathBuf};

use conlink_core::apply::Applier;
use conlink_core::diff::{diff, record};
use conlink_core::fake::FakeKernel;
use conlink_core::plan::{plan, plan_reload, states, Observed, Plan, RunningState};
use conlink_core::state::State;
use conlink_core::Inputs;
use conlink_model::Container;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plan")
}

fn inputs(file: &str) -> Inputs {
    let opts = conlink_config::LoadOptions {
        network_files: vec![dir().join(file)],
        ..Default::default()
    };
    Inputs {
        cfg: conlink_config::load(&opts).unwrap_or_else(|e| panic!("{file}: {e}")),
        ..Default::default()
    }
}

fn ctr(name: &str, service: Option<&str>, index: u32) -> Container {
    Container {
        id: format!("{:0>16}", format!("{index}{}", name.len())),
        name: name.into(),
        service: service.map(Into::into),
        project: None,
        index,
        netns: PathBuf::from(format!("/run/netns/{name}")),
    }
}

fn lab() -> Vec<Container> {
    vec![
        ctr("node_1", Some("node"), 1),
        ctr("node_2", Some("node"), 2),
        ctr("r1", None, 1),
    ]
}

/// A fake kernel with `file`'s lab set up on it, as the daemon leaves it.
fn running(file: &str) -> Applier<FakeKernel> {
    running_with_state(file).0
}

/// The same, with the actual state the daemon recorded.
fn running_with_state(file: &str) -> (Applier<FakeKernel>, State) {
    let k = FakeKernel::new();
    for c in lab() {
        k.add_ns(&c.netns);
    }
    let ap = Applier::new(k);
    let (mut actual, want, errors) = states::<FakeKernel>(None, &inputs(file), &lab());
    assert!(errors.is_empty(), "{errors:?}");
    for op in diff(&actual, &want) {
        ap.apply_one(&op).unwrap_or_else(|e| panic!("{op}: {e}"));
        record(&mut actual, &op);
    }
    (ap, actual)
}

/// Compares `got` with the golden file `name` (or rewrites it).
fn golden(name: &str, got: &str) {
    let path = dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(got, want, "plan differs from {}", path.display());
}

fn check(case: &str, p: &Plan) {
    golden(&format!("{case}.txt"), &p.human());
    let mut json = serde_json::to_string_pretty(&p.json()).unwrap();
    json.push('\n');
    golden(&format!("{case}.json"), &json);
}

fn observed() -> Observed {
    Observed {
        containers: lab(),
        missing_namespaces: Vec::new(),
    }
}

#[test]
fn from_nothing_the_plan_is_the_whole_setup() {
    let p = plan::<FakeKernel>(None, &inputs("base.yaml"), &observed());
    assert!(p.has_changes());
    check("fresh", &p);
}

#[test]
fn an_unchanged_config_plans_nothing_and_touches_nothing() {
    let ap = running("base.yaml");
    let before = ap.kernel().world();
    let p = plan(Some(ap.kernel()), &inputs("base.yaml"), &observed());
    assert_eq!(ap.kernel().world(), before, "plan changed the kernel");
    assert!(!p.has_changes(), "{}", p.human());
    check("same", &p);
}

#[test]
fn edits_plan_exactly_what_a_restarted_conlink_would_change() {
    let ap = running("base.yaml");
    let before = ap.kernel().world();
    let p = plan(Some(ap.kernel()), &inputs("edit.yaml"), &observed());
    assert_eq!(ap.kernel().world(), before, "plan changed the kernel");
    check("edit", &p);
    // Applying the plan's operations converges: planning again is empty.
    let edit = inputs("edit.yaml");
    let (mut actual, want, _) = states(Some(ap.kernel()), &edit, &lab());
    for op in diff(&actual, &want) {
        ap.apply_one(&op).unwrap_or_else(|e| panic!("{op}: {e}"));
        record(&mut actual, &op);
    }
    let again = plan(Some(ap.kernel()), &edit, &observed());
    assert!(!again.has_changes(), "{}", again.human());
}

#[test]
fn removals_are_planned_and_touch_nothing() {
    let ap = running("base.yaml");
    let before = ap.kernel().world();
    let p = plan(Some(ap.kernel()), &inputs("remove.yaml"), &observed());
    assert_eq!(ap.kernel().world(), before, "plan changed the kernel");
    check("remove", &p);
}

#[test]
fn a_container_that_is_gone_has_its_leftovers_planned_away() {
    let ap = running("base.yaml");
    let mut o = observed();
    o.containers.retain(|c| c.name != "node_2");
    let p = plan(Some(ap.kernel()), &inputs("base.yaml"), &o);
    check("gone", &p);
}

#[test]
fn against_a_running_conlink_edits_plan_the_reload_in_place() {
    let (ap, actual) = running_with_state("base.yaml");
    let run = RunningState {
        actual,
        observed: lab(),
        ..Default::default()
    };
    let edit = inputs("edit.yaml");
    let p = plan_reload(&run, edit.cfg.clone());
    check("reload-edit", &p);
    // The plan is the reload: applying it converges to a fresh start.
    let (mut actual, want, _) = conlink_core::plan::reload_states(&run, edit.cfg);
    for op in diff(&actual, &want) {
        ap.apply_one(&op).unwrap_or_else(|e| panic!("{op}: {e}"));
        record(&mut actual, &op);
    }
    assert_eq!(actual, want);
    // The running state travels as JSON (the control API): read back the same.
    let json = serde_json::to_string(&run).unwrap();
    let back: RunningState = serde_json::from_str(&json).unwrap();
    assert_eq!(back.actual, run.actual);
    let same = plan_reload(&run, inputs("base.yaml").cfg);
    assert!(!same.has_changes(), "{}", same.human());
}
