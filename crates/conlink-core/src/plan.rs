//! `conlink plan`: what conlink would change, computed without changing
//! anything. It is the daemon's own path with the applying left out: the
//! actual state is rediscovered from the kernel by ownership markers
//! ([`crate::adopt::scan`] and [`crate::adopt::bind`], exactly as a
//! restarted conlink adopts), the desired state is [`desired_globals`] and
//! [`desired_container`] of the config and the containers that run, and
//! the operations are [`diff`] between the two. Nothing here has a way to
//! change the system: it reads markers through [`Marks`] only.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use conlink_model::{Container, NetworkConfig};
use serde::{Deserialize, Serialize};

use crate::adopt::{self, Marks};
use crate::desired::{desired_container, desired_globals, Inputs, LinkOverride};
use crate::diff::{diff, Op};
use crate::state::{CtrRef, State};

/// How an operation changes the system, as plans count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Something is made (`+`).
    Add,
    /// Something is changed in place (`~`).
    Change,
    /// Something is removed (`-`).
    Remove,
}

impl Action {
    /// The operation's action.
    pub fn of(op: &Op) -> Action {
        use Op::*;
        match op {
            CreateBridge { .. }
            | CreateTunnel { .. }
            | EnableForwarding
            | AddFlood { .. }
            | CreateLink { .. }
            | AddAddr { .. }
            | AddRoute { .. }
            | RunCommand { .. } => Action::Add,
            DeleteBridge { .. }
            | DeleteTunnel { .. }
            | DelFlood { .. }
            | DropForwardTable
            | ForgetForwarding
            | DeleteLink { .. }
            | DelAddr { .. }
            | DelRoute { .. }
            | DropNatTable { .. }
            | ForgetCommands { .. }
            | ForgetContainer { .. } => Action::Remove,
            SetTunnelNetem { .. }
            | SetMtu { .. }
            | SetMac { .. }
            | SetNetem { .. }
            | SetEthtool { .. }
            | SetUp { .. }
            | SetNat { .. }
            | SetForward { .. }
            | Mark { .. } => Action::Change,
        }
    }

    fn sign(self) -> char {
        match self {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        }
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Add, change or remove.
    pub action: Action,
    /// The change log line the daemon would write for it.
    pub text: String,
    /// The operation itself (`op` names its kind).
    pub op: Op,
}

/// Work outside the diff that the runtime would do first: the netns
/// runtime creates the namespaces it plays containers with (and conlink's
/// own) when they are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prepare {
    /// Namespace name.
    pub namespace: String,
}

/// A plan: the changes in the order the daemon would make them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Plan {
    /// Namespaces the runtime would create first.
    pub prepare: Vec<Prepare>,
    /// The operations, bookkeeping left out.
    pub changes: Vec<Change>,
    /// Containers whose links cannot be planned (`NAME: why`).
    pub errors: Vec<String>,
}

/// What a plan starts from besides the inputs.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The containers that run (the netns runtime: the namespaces it
    /// would play, whether they exist yet or not).
    pub containers: Vec<Container>,
    /// Namespaces that do not exist yet and would be created.
    pub missing_namespaces: Vec<String>,
}

/// The desired state of `inp` for `containers`, as the daemon computes
/// it. Containers whose links cannot be planned are left out (the daemon
/// leaves them alone) and returned as errors (`NAME: why`).
pub fn desired_state(inp: &Inputs, containers: &[Container]) -> (State, Vec<String>) {
    let mut errors = Vec::new();
    let mut desired = State {
        globals: desired_globals(inp),
        ..Default::default()
    };
    for c in containers {
        match desired_container(inp, c) {
            Ok(Some(d)) => {
                desired.containers.insert(c.name.clone(), d);
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("{}: cannot plan links: {e}", c.name)),
        }
    }
    errors.sort();
    (desired, errors)
}

/// The actual and desired states a plan compares, as the daemon would
/// compute them at start-up: the actual state rediscovered from the
/// markers `marks` reads (None: conlink's namespace does not exist, so
/// nothing is there), the desired state of `inp` for `containers`
/// ([`desired_state`]).
pub fn states<M: Marks + ?Sized>(
    marks: Option<&M>,
    inp: &Inputs,
    containers: &[Container],
) -> (State, State, Vec<String>) {
    let (desired, errors) = desired_state(inp, containers);
    let found = marks.map(|m| adopt::scan(m, inp)).unwrap_or_default();
    let mut actual = found.state;
    if found.count > 0 {
        // An earlier run's forwarding flag and forward table cannot be
        // read back from markers; the daemon re-asserts the first and
        // drops the second when unwanted, both idempotent. A plan against
        // a running conlink reports neither as a change.
        actual.globals.forwarding = desired.globals.forwarding;
        actual.globals.forward_table = desired.globals.forward_table;
    }
    if let Some(m) = marks.filter(|_| found.count > 0) {
        for c in containers {
            let ctr = CtrRef {
                name: c.name.clone(),
                id: c.id.clone(),
                netns: c.netns.clone(),
            };
            // As the reconciler does on a container's first reconcile
            // after a restart: markers inside it too (dummy, *vlan).
            let inner = adopt::inner_markers(m, &ctr);
            let d = desired.containers.get(&c.name);
            match adopt::bind(actual.containers.get(&c.name), &ctr, d, &inner) {
                Some(b) => actual.containers.insert(c.name.clone(), b),
                None => actual.containers.remove(&c.name),
            };
        }
    }
    (actual, desired, errors)
}

/// A running conlink's own view, as its control API hands it out
/// (`GET /v1/state`): what it has made (recorded as it applied), the
/// containers it sees and the inputs besides the config that a reload
/// keeps. A plan from it is exactly the diff the next reload would apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunningState {
    /// The actual state.
    pub actual: State,
    /// The containers it has seen start (and not die).
    pub observed: Vec<Container>,
    /// Its compose project.
    pub project: Option<String>,
    /// Its control API overrides: (container, dev, override).
    pub overrides: Vec<(String, String, LinkOverride)>,
    /// Its multi-host mesh (options and current peers), if any.
    pub mesh: Option<crate::mesh::Mesh>,
}

/// The states a reload of the running conlink to `cfg` would compare:
/// its recorded actual state, and the desired state of `cfg` with the
/// inputs it keeps (project, overrides, extra tunnels) for the containers
/// it sees.
pub fn reload_states(run: &RunningState, cfg: NetworkConfig) -> (State, State, Vec<String>) {
    let inp = Inputs {
        cfg,
        project: run.project.clone(),
        overrides: run
            .overrides
            .iter()
            .map(|(c, d, o)| ((c.clone(), d.clone()), o.clone()))
            .collect(),
        mesh: run.mesh.clone(),
    };
    let (desired, errors) = desired_state(&inp, &run.observed);
    (run.actual.clone(), desired, errors)
}

/// The plan of reloading the running conlink to `cfg`.
pub fn plan_reload(run: &RunningState, cfg: NetworkConfig) -> Plan {
    let (actual, desired, errors) = reload_states(run, cfg);
    from_states(&actual, &desired, errors, Vec::new())
}

/// The plan for `inp` and what runs: [`states`], then [`diff`]. The
/// operations are the daemon's, in its order; two kinds are left out of
/// the view because they change nothing anyone configured: bookkeeping
/// ([`Op::is_bookkeeping`]) and the clearing of forward rules a link found
/// after a restart might have had (the diff clears them blindly because
/// markers cannot say; for a link without forwards it is a no-op).
pub fn plan<M: Marks + ?Sized>(marks: Option<&M>, inp: &Inputs, observed: &Observed) -> Plan {
    let (actual, desired, errors) = states(marks, inp, &observed.containers);
    let prepare = observed
        .missing_namespaces
        .iter()
        .map(|n| Prepare {
            namespace: n.clone(),
        })
        .collect();
    from_states(&actual, &desired, errors, prepare)
}

/// The plan from `actual` to `desired`.
fn from_states(
    actual: &State,
    desired: &State,
    errors: Vec<String>,
    prepare: Vec<Prepare>,
) -> Plan {
    let ops: Vec<Op> = diff(actual, desired)
        .into_iter()
        .filter(|op| !op.is_bookkeeping() && !blind_forward_clear(op))
        .collect();
    // Properties set on a link this plan creates are part of creating it.
    let created: BTreeSet<(String, String)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::CreateLink { ctr, dev, .. } => Some((ctr.name.clone(), dev.clone())),
            _ => None,
        })
        .collect();
    let changes = ops
        .into_iter()
        .map(|op| {
            let part_of_create = link_of(&op).is_some_and(|k| created.contains(&k));
            Change {
                action: if part_of_create && !matches!(op, Op::DeleteLink { .. }) {
                    Action::Add
                } else {
                    Action::of(&op)
                },
                text: op.to_string(),
                op,
            }
        })
        .collect();
    Plan {
        prepare,
        changes,
        errors,
    }
}

/// (container, dev) of an operation on one link.
fn link_of(op: &Op) -> Option<(String, String)> {
    use Op::*;
    match op {
        CreateLink { ctr, dev, .. }
        | DeleteLink { ctr, dev, .. }
        | SetMtu { ctr, dev, .. }
        | SetMac { ctr, dev, .. }
        | AddAddr { ctr, dev, .. }
        | DelAddr { ctr, dev, .. }
        | AddRoute { ctr, dev, .. }
        | DelRoute { ctr, dev, .. }
        | SetNetem { ctr, dev, .. }
        | SetEthtool { ctr, dev, .. }
        | SetUp { ctr, dev, .. }
        | SetNat { ctr, dev, .. }
        | SetForward { ctr, dev, .. }
        | Mark { ctr, dev, .. } => Some((ctr.name.clone(), dev.clone())),
        _ => None,
    }
}

fn blind_forward_clear(op: &Op) -> bool {
    matches!(op, Op::SetForward { from: Some(f), to: None, .. } if f.forwards.is_empty())
}

/// Objects a plan touches, counted the way users think of them: a link
/// removed and made again is one replacement, a link whose properties
/// change in place is one change however many properties change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Objects made (bridges, tunnels, links, namespaces, commands run).
    pub add: usize,
    /// Objects changed in place.
    pub change: usize,
    /// Links removed and made again.
    pub replace: usize,
    /// Objects removed.
    pub remove: usize,
}

impl Plan {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.prepare.is_empty()
    }

    /// The objects touched, by kind of change.
    pub fn summary(&self) -> Summary {
        let mut created = BTreeSet::new();
        let mut deleted = BTreeSet::new();
        let mut changed = BTreeSet::new();
        let mut sum = Summary {
            add: self.prepare.len(),
            ..Default::default()
        };
        for c in &self.changes {
            match (&c.op, link_of(&c.op)) {
                (Op::CreateLink { .. }, Some(k)) => {
                    created.insert(k);
                }
                (Op::DeleteLink { .. }, Some(k)) => {
                    deleted.insert(k);
                }
                (_, Some(k)) => {
                    changed.insert(k);
                }
                (
                    Op::SetTunnelNetem { name, .. }
                    | Op::AddFlood { name, .. }
                    | Op::DelFlood { name, .. },
                    None,
                ) => {
                    changed.insert((String::new(), name.clone()));
                }
                (Op::DropNatTable { ctr }, None) => {
                    changed.insert((ctr.name.clone(), String::new()));
                }
                (_, None) => match c.action {
                    Action::Add => sum.add += 1,
                    Action::Change => sum.change += 1,
                    Action::Remove => sum.remove += 1,
                },
            }
        }
        // A tunnel replaced is deleted then created under one name.
        sum.replace += created.intersection(&deleted).count();
        sum.add += created.difference(&deleted).count();
        sum.remove += deleted.difference(&created).count();
        sum.change += changed
            .iter()
            .filter(|k| !created.contains(*k) && !deleted.contains(*k))
            .count();
        sum
    }

    /// The human form: one line per change, signed like a diff (`+` made,
    /// `~` changed in place, `-` removed), then a summary line.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for p in &self.prepare {
            let _ = writeln!(s, "+ namespace {}: created", p.namespace);
        }
        for c in &self.changes {
            let _ = writeln!(s, "{} {}", c.action.sign(), c.text);
        }
        for e in &self.errors {
            let _ = writeln!(s, "! {e}");
        }
        if self.has_changes() {
            let m = self.summary();
            let _ = writeln!(
                s,
                "Plan: {} to add, {} to change, {} to replace, {} to remove.",
                m.add, m.change, m.replace, m.remove
            );
        } else if self.errors.is_empty() {
            s.push_str("No changes: the system matches the configuration.\n");
        }
        s
    }

    /// The JSON form: the summary counts and every change with its
    /// operation in full.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "changed": self.has_changes(),
            "summary": self.summary(),
            "prepare": self.prepare,
            "changes": self.changes,
            "errors": self.errors,
        })
    }
}
