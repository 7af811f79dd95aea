//! The reconciler: level-triggered. Each input (a runtime event, a config
//! reload, an override) marks container names to look at; for each, the
//! desired state is computed afresh from the current inputs and diffed
//! against what conlink has made, and the difference applied. Work on one
//! container name runs strictly in order; different names run in parallel
//! (bounded: link changes serialise on the kernel's RTNL lock). A failure
//! for one container is undone and logged and never touches the others;
//! the next change retries it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use conlink_model::{Container, Target};
use conlink_runtime::{Event, Known, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::apply::Applier;
use crate::desired::{
    desired_container, desired_globals, in_project, targets_for, Inputs, LinkOverride,
};
use crate::diff::{diff_container, globals_post, globals_pre, mode_str, Op};
use crate::events::{
    Action, ContainerSnapshot, CoreEvent, EventType, LinkSnapshot, LinkStatus, Snapshot,
};
use crate::kernel::Kernel;
use crate::state::{CtrState, Globals, State};

/// The exact line existing tests and users grep for.
pub const ALL_CONNECTED: &str = "All links connected";

/// How many containers are set up at once: `CONLINK_SETUP_SLOTS` (1–64),
/// else the cores clamped to 2..8 (docs/performance.md).
pub fn setup_slots() -> usize {
    slots_from(std::env::var("CONLINK_SETUP_SLOTS").ok().as_deref())
}

fn slots_from(v: Option<&str>) -> usize {
    v.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)))
}

/// Failures named in the `links failed` verdict; the rest are counted.
const FAILED_SHOWN: usize = 10;

/// How many events the history keeps (for `--since`).
const HISTORY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Ready,
    Failed,
}

/// What the core knows about one container name.
struct Entry {
    /// What conlink has made for it.
    actual: Option<CtrState>,
    /// Outcome of the last reconcile.
    status: Status,
    /// Why the last reconcile failed: (dev, reason).
    failure: Option<(Option<String>, String)>,
    /// Whether the config wants anything for it (last computed).
    wanted: bool,
}

/// Per-container samples: (trigger → links ready, the setup work alone).
/// The last [`Timings::KEEP`] are kept (a soak or a long-lived lab would
/// otherwise grow the daemon by 32 bytes per container start, forever);
/// samples are numbered from the first ever, so a reader that has seen `n`
/// still takes exactly the new ones.
#[derive(Default, Clone)]
pub struct Timings(Arc<Mutex<Samples>>);

#[derive(Default)]
struct Samples {
    /// Samples ever recorded (the number of the next one).
    total: usize,
    /// The last ones, oldest first.
    kept: std::collections::VecDeque<(Duration, Duration)>,
}

impl Timings {
    /// How many samples are kept (64 Ki: 1 MiB).
    pub const KEEP: usize = 1 << 16;

    /// Records one sample.
    pub fn push(&self, took: Duration, work: Duration) {
        if let Ok(mut s) = self.0.lock() {
            if s.kept.len() == Self::KEEP {
                s.kept.pop_front();
            }
            s.kept.push_back((took, work));
            s.total += 1;
        }
    }

    /// The kept samples.
    pub fn samples(&self) -> Vec<(Duration, Duration)> {
        self.samples_since(0).0
    }

    /// The kept samples numbered `n` and later, and the number of the next
    /// one (what the reader passes next time): a reader takes only the new
    /// ones without copying the rest.
    pub fn samples_since(&self, n: usize) -> (Vec<(Duration, Duration)>, usize) {
        let Ok(s) = self.0.lock() else {
            return (Vec::new(), n);
        };
        let first = s.total - s.kept.len();
        let skip = n.saturating_sub(first);
        (s.kept.iter().skip(skip).copied().collect(), s.total)
    }

    /// Samples ever recorded.
    pub fn total(&self) -> usize {
        self.0.lock().map(|s| s.total).unwrap_or(0)
    }

    /// p50/p99 of both figures, or None without samples.
    pub fn summary(&self) -> Option<String> {
        let all = self.samples();
        if all.is_empty() {
            return None;
        }
        let q = |mut v: Vec<Duration>| {
            v.sort();
            let pick = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
            format!(
                "p50 {:.3} ms, p99 {:.3} ms",
                pick(0.50).as_secs_f64() * 1e3,
                pick(0.99).as_secs_f64() * 1e3
            )
        };
        let total = self.total();
        let over = if total > all.len() {
            format!("the last {} of {total} container(s)", all.len())
        } else {
            format!("{total} container(s)")
        };
        Some(format!(
            "over {over}: event to ready {}; setup work {}",
            q(all.iter().map(|s| s.0).collect()),
            q(all.iter().map(|s| s.1).collect())
        ))
    }
}

/// Runs the work on one container name strictly in order: each waits for
/// the previous one on the same name. Keyed by name, not id: outer
/// interface names derive from the container name, so the removal of a
/// replaced replica and the setup of its successor (same name, new id)
/// touch the same interfaces. A lock taken inside the spawned tasks would
/// not do: tasks start in any order on a multi-threaded runtime.
#[derive(Default)]
struct Queues(HashMap<String, oneshot::Receiver<()>>);

impl Queues {
    fn chain<F>(&mut self, name: &str, op: F) -> impl std::future::Future<Output = ()> + Send
    where
        F: std::future::Future<Output = ()> + Send,
    {
        let (done, rx) = oneshot::channel::<()>();
        let prev = self.0.insert(name.to_string(), rx);
        async move {
            if let Some(prev) = prev {
                // Err: the previous operation finished (its sender dropped).
                let _ = prev.await;
            }
            op.await;
            drop(done);
        }
    }

    fn prune(&mut self) {
        self.0
            .retain(|_, rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReloadError(pub String);

/// The reconciler. Cheap to share (`Arc`).
pub struct Core<K: Kernel, R: Runtime> {
    applier: Arc<Applier<K>>,
    runtime: Arc<R>,
    inputs: RwLock<Arc<Inputs>>,
    /// Running containers by name.
    observed: Mutex<BTreeMap<String, Container>>,
    entries: Mutex<BTreeMap<String, Entry>>,
    globals: tokio::sync::Mutex<Globals>,
    /// A copy of the globals for snapshots (no await needed).
    globals_seen: Mutex<Globals>,
    queues: Mutex<Queues>,
    slots: Arc<tokio::sync::Semaphore>,
    events: broadcast::Sender<CoreEvent>,
    history: Mutex<VecDeque<CoreEvent>>,
    timings: Timings,
    /// What the last convergence check said (to log once per state).
    announced: Mutex<Option<String>>,
    /// Bumped each time `All links connected` is logged.
    connected: tokio::sync::watch::Sender<u64>,
    commands: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Tasks in flight (reconciles), for shutdown.
    tasks: Mutex<tokio::task::JoinSet<()>>,
    /// An earlier run's interfaces were found: containers seen for the
    /// first time are looked at for marked links inside them too.
    adopting: bool,
    /// Names looked at that way.
    scanned: Mutex<std::collections::HashSet<String>>,
    /// Reconciles queued or running.
    inflight: std::sync::atomic::AtomicUsize,
    /// Convergence checks started so far: a check's later looks stop once
    /// a newer check runs (each looks at the engine's whole list).
    checks: std::sync::atomic::AtomicU64,
    /// Set to end [`Core::run`].
    stop: tokio::sync::watch::Sender<bool>,
    /// Operations applied successfully so far (reload reports).
    ops_applied: std::sync::atomic::AtomicU64,
}

impl<K: Kernel, R: Runtime> Core<K, R> {
    /// A core over `kernel` and `runtime`, starting from the `actual`
    /// state found (nothing, or what adoption rediscovered: then
    /// `adopting`).
    pub fn new(
        applier: Applier<K>,
        runtime: R,
        inputs: Inputs,
        actual: State,
        adopting: bool,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        let (connected, _) = tokio::sync::watch::channel(0);
        // Adopted patch tunnels are patch ends again.
        for (name, spec) in &actual.globals.tunnels {
            applier.adopt_tunnel(name, spec);
        }
        let entries = actual
            .containers
            .into_iter()
            .map(|(name, st)| {
                (
                    name,
                    Entry {
                        actual: Some(st),
                        // Not waited for until a running container claims
                        // it (then it is reconciled like any other).
                        status: Status::Ready,
                        failure: None,
                        wanted: false,
                    },
                )
            })
            .collect();
        Arc::new(Core {
            applier: Arc::new(applier),
            runtime: Arc::new(runtime),
            inputs: RwLock::new(Arc::new(inputs)),
            observed: Mutex::new(BTreeMap::new()),
            entries: Mutex::new(entries),
            globals_seen: Mutex::new(actual.globals.clone()),
            globals: tokio::sync::Mutex::new(actual.globals),
            queues: Mutex::new(Queues::default()),
            slots: Arc::new(tokio::sync::Semaphore::new(setup_slots())),
            events,
            history: Mutex::new(VecDeque::new()),
            timings: Timings::default(),
            announced: Mutex::new(None),
            connected,
            commands: Mutex::new(Vec::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            adopting,
            scanned: Mutex::new(Default::default()),
            stop: tokio::sync::watch::channel(false).0,
            inflight: std::sync::atomic::AtomicUsize::new(0),
            checks: std::sync::atomic::AtomicU64::new(0),
            ops_applied: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Operations applied successfully since start (all kinds, bookkeeping
    /// included): the difference across a reload is the reload's work.
    pub fn ops_applied(&self) -> u64 {
        self.ops_applied.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_ops(&self, n: usize) {
        self.ops_applied
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ends [`Core::run`] (which then waits for the work in flight).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<R> {
        &self.runtime
    }

    /// The applier (and through it the kernel).
    pub fn applier(&self) -> &Arc<Applier<K>> {
        &self.applier
    }

    /// Setup latency samples.
    pub fn timings(&self) -> Timings {
        self.timings.clone()
    }

    /// A receiver that changes each time everything has converged.
    pub fn connected(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connected.subscribe()
    }

    /// The inputs in force.
    pub fn inputs(&self) -> Arc<Inputs> {
        self.inputs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock<'a, T>(m: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
        // A poisoned lock means a panic elsewhere already; the data is
        // plain and still consistent enough to keep serving.
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event (broadcast and history).
    pub fn emit(&self, ev: CoreEvent) {
        let mut h = Self::lock(&self.history);
        if h.len() >= HISTORY {
            h.pop_front();
        }
        h.push_back(ev.clone());
        drop(h);
        let _ = self.events.send(ev);
    }

    /// Makes the globals of the current inputs (start-up). On error, the
    /// globals made so far are removed again.
    pub async fn init_globals(&self) -> Result<(), crate::ApplyError> {
        let inp = self.inputs();
        let want = desired_globals(&inp);
        let mut g = self.globals.lock().await;
        let mut ops = globals_pre(&g, &want);
        // At start-up, leftovers of an earlier run the config no longer
        // wants go too (bridges, tunnels: nothing uses them).
        ops.extend(globals_post(&g, &want));
        let res = self.apply_globals(&mut g, ops, true).await;
        *Self::lock(&self.globals_seen) = g.clone();
        res
    }

    async fn apply_globals(
        &self,
        g: &mut Globals,
        ops: Vec<Op>,
        log: bool,
    ) -> Result<(), crate::ApplyError> {
        if ops.is_empty() {
            return Ok(());
        }
        let ap = self.applier.clone();
        let mut st = g.clone();
        let (res, st) = tokio::task::spawn_blocking(move || {
            let r = ap.apply_globals(&mut st, &ops);
            (r.map(|()| ops), st)
        })
        .await
        .unwrap_or_else(|e| {
            (
                Err(crate::ApplyError {
                    op: "globals".into(),
                    dev: None,
                    err: crate::KernelError::new(crate::kernel::ErrorKind::Other, e.to_string()),
                }),
                g.clone(),
            )
        });
        *g = st;
        match res {
            Ok(ops) => {
                self.count_ops(ops.len());
                for op in ops.iter().filter(|o| !o.is_bookkeeping()) {
                    if log {
                        info!("{op}");
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Consumes runtime events until the channel closes.
    pub async fn run(self: &Arc<Self>, mut rx: mpsc::Receiver<Event>) {
        self.check_converged();
        let mut stop = self.stop.subscribe();
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(ev) = ev else { break };
            let t0 = Instant::now();
            match ev {
                Event::Start(c) => {
                    let name = c.name.clone();
                    {
                        let mut obs = Self::lock(&self.observed);
                        // The engine may report a container twice (listed
                        // at subscription and seen in the stream).
                        if obs.get(&name) == Some(&c) {
                            continue;
                        }
                        obs.insert(name.clone(), c.clone());
                    }
                    self.emit(
                        CoreEvent::now(EventType::Container, Action::Start, &name)
                            .attr("id", &c.id),
                    );
                    self.trigger(&name, t0, false);
                }
                // Adopted entries no listed container claimed are of
                // containers gone: removed or stopped while conlink was
                // down, or dead in the moment before its listing.
                Event::Synced => {
                    let orphans: Vec<String> = {
                        let obs = Self::lock(&self.observed);
                        Self::lock(&self.entries)
                            .iter()
                            .filter(|(n, e)| {
                                !obs.contains_key(*n)
                                    && e.actual.as_ref().is_some_and(|a| {
                                        a.ctr.id.starts_with(crate::adopt::ADOPT_PREFIX)
                                    })
                            })
                            .map(|(n, _)| n.clone())
                            .collect()
                    };
                    for n in orphans {
                        debug!("{n}: adopted links of a container not running: removed");
                        self.trigger(&n, t0, false);
                    }
                }
                Event::Die(id) => {
                    let name = {
                        let mut obs = Self::lock(&self.observed);
                        let name = obs.iter().find(|(_, c)| c.id == id).map(|(n, _)| n.clone());
                        if let Some(c) = name.as_ref().and_then(|n| obs.remove(n)) {
                            // A handle opened ahead for it and never used
                            // would keep the dead namespace alive (and a
                            // namespace made again under its path is
                            // another one).
                            self.applier.kernel().forget_unused_ns(&c.netns);
                        }
                        name
                    };
                    // A container conlink has no record of may still have
                    // links of an earlier run (adopted entries know their id).
                    let name = name.or_else(|| {
                        Self::lock(&self.entries)
                            .iter()
                            .find(|(_, e)| e.actual.as_ref().is_some_and(|a| a.ctr.id == id))
                            .map(|(n, _)| n.clone())
                    });
                    if let Some(name) = name {
                        self.emit(
                            CoreEvent::now(EventType::Container, Action::Die, &name)
                                .attr("id", &id),
                        );
                        self.trigger(&name, t0, false);
                    }
                }
            }
        }
        drop(rx);
        self.drain().await;
    }

    /// Waits for every reconcile in flight, then for running commands
    /// (callers bound this wait).
    pub async fn drain(&self) {
        loop {
            let mut set = std::mem::take(&mut *Self::lock(&self.tasks));
            if set.is_empty() {
                break;
            }
            while set.join_next().await.is_some() {}
        }
        let cmds: Vec<_> = Self::lock(&self.commands).drain(..).collect();
        for h in cmds {
            h.await.ok();
        }
    }

    /// Queues a reconcile of container `name`; the returned receiver fires
    /// when it has run.
    pub fn trigger(self: &Arc<Self>, name: &str, t0: Instant, log: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let me = self.clone();
        let n = name.to_string();
        self.inflight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fut = Self::lock(&self.queues).chain(name, async move {
            me.reconcile_one(&n, t0, log).await;
            me.inflight
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            me.check_converged();
            let _ = tx.send(());
        });
        Self::lock(&self.queues).prune();
        let mut tasks = Self::lock(&self.tasks);
        tasks.spawn(fut);
        while tasks.try_join_next().is_some() {}
        rx
    }

    async fn reconcile_one(self: &Arc<Self>, name: &str, t0: Instant, log: bool) {
        // The slot is taken before anything is computed: at a start-up of
        // thousands of containers, all but `slots` of them wait here
        // holding nothing, instead of each holding its whole plan (ops,
        // desired and actual state: ~20 KB per container) until its turn
        // (docs/performance.md, "Memory"). The plan is also computed
        // against the state as it is when it runs.
        let permit = self.slots.clone().acquire_owned().await;
        let inp = self.inputs();
        let obs = Self::lock(&self.observed).get(name).cloned();
        let desired = match &obs {
            None => Ok(None),
            Some(c) => desired_container(&inp, c),
        };
        let desired = match desired {
            Ok(d) => d,
            Err(e) => {
                error!("{name}: cannot plan links: {e}");
                self.set_status(name, Status::Failed, Some((None, e.to_string())), true);
                return;
            }
        };
        let wanted = desired.is_some();
        let mut actual = {
            let mut es = Self::lock(&self.entries);
            let e = es.entry(name.to_string()).or_insert(Entry {
                actual: None,
                status: Status::Pending,
                failure: None,
                wanted,
            });
            e.wanted = wanted;
            e.actual.clone()
        };
        if let Some(c) = &obs {
            let ctr = crate::state::CtrRef {
                name: c.name.clone(),
                id: c.id.clone(),
                netns: c.netns.clone(),
            };
            let unbound = actual
                .as_ref()
                .is_some_and(|a| a.ctr.id.starts_with(crate::adopt::ADOPT_PREFIX));
            // Markers inside a container are ours only if the container is
            // of our project (or wanted by our config): another project's
            // conlink marks its links the same way, and adopting them
            // would delete them (they are not desired here).
            let ours = desired.is_some() || in_project(c, inp.project.as_deref());
            let first = ours && self.adopting && Self::lock(&self.scanned).insert(name.to_string());
            if unbound || (first && actual.is_none()) {
                let inner = if first {
                    let ap = self.applier.clone();
                    let ctr2 = ctr.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::adopt::inner_markers(ap.kernel(), &ctr2)
                    })
                    .await
                    .unwrap_or_default()
                } else {
                    Vec::new()
                };
                actual = crate::adopt::bind(actual.as_ref(), &ctr, desired.as_ref(), &inner);
                let kept = actual.as_ref().filter(|a| a.ctr == ctr).map_or(0, |a| {
                    a.links
                        .iter()
                        .filter(|(d, l)| desired.as_ref().and_then(|x| x.links.get(d)) == Some(l))
                        .count()
                });
                if kept > 0 {
                    info!("{name}: {kept} link(s) adopted from the earlier run");
                }
                if let Some(a) = &actual {
                    for l in a.links.values() {
                        if let Some(o) =
                            l.id.outer
                                .as_ref()
                                .filter(|o| o.mode == conlink_model::BridgeMode::Patch)
                        {
                            self.applier.adopt_patch_end(&o.bridge, &o.name);
                        }
                    }
                }
                if let Some(e) = Self::lock(&self.entries).get_mut(name) {
                    e.actual = actual.clone();
                }
            }
        }
        let ops = diff_container(actual.as_ref(), desired.as_ref());
        if ops.is_empty() {
            self.finish(name, actual, wanted, Status::Ready, None);
            return;
        }
        // Something changes: the verdict is said again once it settles.
        // (An event that changes nothing, e.g. an unrelated container
        // starting, repeats no `All links connected`.)
        *Self::lock(&self.announced) = None;
        let had = actual.as_ref().is_some_and(|a| !a.links.is_empty());
        let creates = ops
            .iter()
            .filter(|o| matches!(o, Op::CreateLink { .. }))
            .count();
        let removes_all = desired.is_none();
        let t1 = Instant::now();
        let ap = self.applier.clone();
        let ops2 = ops.clone();
        let mut st = actual.clone();
        let (res, st) = match tokio::task::spawn_blocking(move || {
            let r = ap.apply_container(&mut st, &ops2);
            (r, st)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                error!("{name}: link setup task failed: {e}");
                (Ok(()), actual.clone())
            }
        };
        drop(permit);
        let (took, work) = (t0.elapsed(), t1.elapsed());
        match res {
            Ok(()) => {
                self.count_ops(ops.len());
                let n_links = desired.as_ref().map_or(0, |d| d.links.len());
                if log || had {
                    for op in ops
                        .iter()
                        .filter(|o| !o.is_bookkeeping() && !matches!(o, Op::RunCommand { .. }))
                    {
                        if removes_all && !log {
                            debug!("{op}");
                        } else {
                            info!("{op}");
                        }
                    }
                }
                self.emit_link_events(name, &ops);
                if removes_all {
                    info!("{name}: links removed");
                } else if creates > 0 && !had {
                    self.timings.push(took, work);
                    info!(
                        "{name}: {n_links} link(s) ready in {:.3} ms (setup {:.3} ms)",
                        took.as_secs_f64() * 1e3,
                        work.as_secs_f64() * 1e3
                    );
                }
                self.finish(name, st, wanted, Status::Ready, None);
                // Convergence is about links; commands (which may run for
                // long) start after and do not hold the announcement back.
                let cmds: Vec<Vec<String>> = ops
                    .iter()
                    .filter_map(|o| match o {
                        Op::RunCommand { argv, .. } => Some(argv.clone()),
                        _ => None,
                    })
                    .collect();
                if let (false, Some(c)) = (cmds.is_empty(), obs) {
                    self.run_commands(c, cmds);
                }
            }
            Err(e) => {
                error!("{name}: link setup failed: {e}");
                self.emit(
                    CoreEvent::now(
                        EventType::Link,
                        Action::Failed,
                        format!("{name}/{}", e.dev.clone().unwrap_or_default()),
                    )
                    .attr("reason", e.err.to_string()),
                );
                self.finish(
                    name,
                    st,
                    wanted,
                    Status::Failed,
                    Some((e.dev.clone(), e.err.to_string())),
                );
            }
        }
    }

    fn emit_link_events(&self, name: &str, ops: &[Op]) {
        let mut seen = BTreeSet::new();
        // A link made here is marked again at the end of its setup: that
        // is part of making it, not a change.
        let made: BTreeSet<&String> = ops
            .iter()
            .filter_map(|o| match o {
                Op::CreateLink { dev, .. } => Some(dev),
                _ => None,
            })
            .collect();
        for op in ops {
            let (dev, action) = match op {
                Op::CreateLink { dev, .. } => (dev, Action::Created),
                Op::DeleteLink { dev, .. } => (dev, Action::Removed),
                Op::Mark { dev, .. } if !made.contains(dev) => (dev, Action::Changed),
                _ => continue,
            };
            if seen.insert((dev.clone(), action as u8)) {
                self.emit(CoreEvent::now(
                    EventType::Link,
                    action,
                    format!("{name}/{dev}"),
                ));
            }
        }
    }

    fn finish(
        &self,
        name: &str,
        actual: Option<CtrState>,
        wanted: bool,
        status: Status,
        failure: Option<(Option<String>, String)>,
    ) {
        let mut es = Self::lock(&self.entries);
        if actual.is_none() && !wanted {
            es.remove(name);
            return;
        }
        let e = es.entry(name.to_string()).or_insert(Entry {
            actual: None,
            status,
            failure: None,
            wanted,
        });
        e.actual = actual;
        e.status = status;
        e.failure = failure;
        e.wanted = wanted;
    }

    fn set_status(
        &self,
        name: &str,
        status: Status,
        failure: Option<(Option<String>, String)>,
        wanted: bool,
    ) {
        let mut es = Self::lock(&self.entries);
        let e = es.entry(name.to_string()).or_insert(Entry {
            actual: None,
            status,
            failure: None,
            wanted,
        });
        e.status = status;
        e.failure = failure;
        e.wanted = wanted;
    }

    fn run_commands(self: &Arc<Self>, c: Container, cmds: Vec<Vec<String>>) {
        for argv in cmds {
            let rt = self.runtime.clone();
            let c = c.clone();
            let h = tokio::spawn(async move {
                let shown = argv.join(" ");
                match rt.exec(&c, argv).await {
                    Ok(0) => info!("{}: command {shown:?} exited 0", c.name),
                    Ok(code) => warn!("{}: command {shown:?} exited {code}", c.name),
                    Err(e) => error!("{}: command {shown:?} failed: {e}", c.name),
                }
            });
            let mut cmds = Self::lock(&self.commands);
            cmds.retain(|h| !h.is_finished());
            cmds.push(h);
        }
    }

    /// Checks convergence once no work is queued: every matching container
    /// the engine has (created, starting, running) is running with its
    /// links ready. Logs `All links connected` once per converged state;
    /// with failed links, one summary line naming each instead.
    fn check_converged(self: &Arc<Self>) {
        if self.busy() {
            return;
        }
        let me = self.clone();
        use std::sync::atomic::Ordering::SeqCst;
        let this = self.checks.fetch_add(1, SeqCst) + 1;
        // The engine query is async; the verdict is computed on a task.
        tokio::spawn(async move {
            // The first look may take the runtime's record of its events
            // (`known_cached`): during a `--scale` of 200 every setup ends
            // in a check, and while compose has replicas created and not
            // started the record says "not yet" without the engine listing
            // its containers 200 times. A "converged" is always confirmed
            // by a listing. A "waiting" may be stale (a container the
            // record missed the removal of; the engine listing a container
            // that just died as running): look again a few times with a
            // listing, 0.25 s doubling (1 s after a record's "not yet");
            // any later event checks anew anyway, and then this check
            // stops looking.
            let mut delay = Duration::from_millis(250);
            let mut may_cache = true;
            for _ in 0..5 {
                if me.checks.load(SeqCst) != this {
                    return;
                }
                let (waiting, cached) = me.converged_verdict(may_cache).await;
                if !waiting || me.busy() {
                    return;
                }
                if cached {
                    delay = delay.max(Duration::from_secs(1));
                }
                may_cache = false;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        });
    }

    fn busy(&self) -> bool {
        self.inflight.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// The verdict; true when it was "not yet" only because the engine
    /// has a wanted container conlink has not seen running (worth
    /// another look), and whether that came from the runtime's record
    /// (`may_cache`) rather than a listing.
    async fn converged_verdict(self: &Arc<Self>, may_cache: bool) -> (bool, bool) {
        let inp = self.inputs();
        let failed: Vec<String> = {
            let es = Self::lock(&self.entries);
            if es.values().any(|e| e.wanted && e.status == Status::Pending) {
                return (false, false);
            }
            es.iter()
                .filter(|(_, e)| e.wanted && e.status == Status::Failed)
                .map(|(n, e)| match &e.failure {
                    Some((Some(dev), why)) => format!("{n}/{dev}: {why}"),
                    Some((None, why)) => format!("{n}: {why}"),
                    None => format!("{n}: failed"),
                })
                .collect()
        };
        let project = inp.project.as_deref();
        // A known container the config wants that does not run yet (or
        // whose start has not reached us): not converged.
        let waiting_on = |known: &[Known]| {
            let observed = Self::lock(&self.observed);
            known.iter().any(|k| {
                let c = Container {
                    id: String::new(),
                    name: k.name.clone(),
                    service: k.service.clone(),
                    project: k.project.clone(),
                    index: 1,
                    netns: Default::default(),
                };
                let wanted = targets_for(&c, project).iter().any(|t| match t {
                    Target::Service(s) => inp.cfg.services.contains_key(s),
                    Target::Container(n) => inp.cfg.containers.contains_key(n),
                });
                wanted && !observed.contains_key(&k.name)
            })
        };
        if let Some(known) = self.runtime.known_cached().filter(|_| may_cache) {
            if waiting_on(&known) {
                return (true, true);
            }
        }
        let known = match self.runtime.known().await {
            Ok(k) => k,
            Err(e) => {
                warn!("cannot list the engine's containers: {e}");
                return (false, false);
            }
        };
        let waiting = waiting_on(&known);
        if waiting || self.busy() {
            return (waiting, false);
        }
        let verdict = if failed.is_empty() {
            ALL_CONNECTED.to_string()
        } else {
            // At most FAILED_SHOWN of them: a lab of thousands failing
            // alike would make one line of hundreds of KB (`conlink
            // status` lists every failure).
            let shown = failed.len().min(FAILED_SHOWN);
            let more = match failed.len() - shown {
                0 => String::new(),
                n => format!("; … and {n} more (conlink status lists them)"),
            };
            format!(
                "links failed ({} container(s)): {}{more}",
                failed.len(),
                failed[..shown].join("; ")
            )
        };
        {
            let mut a = Self::lock(&self.announced);
            if a.as_deref() == Some(verdict.as_str()) {
                return (false, false);
            }
            *a = Some(verdict.clone());
        }
        if failed.is_empty() {
            info!("{ALL_CONNECTED}");
            self.emit(CoreEvent::now(
                EventType::Conlink,
                Action::Converged,
                "conlink",
            ));
            self.connected.send_modify(|n| *n += 1);
        } else {
            error!("{verdict}");
        }
        (false, false)
    }

    /// Replaces the inputs and converges to them: new globals first, then
    /// every container, then globals no longer wanted. Refused (nothing
    /// changed, the old inputs stay) when the new globals cannot be made.
    pub async fn reload(self: &Arc<Self>, new: Inputs) -> Result<(), ReloadError> {
        let t0 = Instant::now();
        let mut g = self.globals.lock().await;
        let want = desired_globals(&new);
        let old = std::mem::replace(
            &mut *self.inputs.write().unwrap_or_else(|p| p.into_inner()),
            Arc::new(new),
        );
        let pre = globals_pre(&g, &want);
        if let Err(e) = self.apply_globals(&mut g, pre, true).await {
            *self.inputs.write().unwrap_or_else(|p| p.into_inner()) = old;
            *Self::lock(&self.globals_seen) = g.clone();
            return Err(ReloadError(format!("{e}")));
        }
        *Self::lock(&self.globals_seen) = g.clone();
        // A reload is a change: its verdict is said again.
        *Self::lock(&self.announced) = None;
        let names: BTreeSet<String> = Self::lock(&self.observed)
            .keys()
            .chain(Self::lock(&self.entries).keys())
            .cloned()
            .collect();
        let waits: Vec<_> = names.iter().map(|n| self.trigger(n, t0, true)).collect();
        for w in waits {
            let _ = w.await;
        }
        let post = globals_post(&g, &want);
        if let Err(e) = self.apply_globals(&mut g, post, true).await {
            warn!("removing what the new config no longer has: {e}");
        }
        *Self::lock(&self.globals_seen) = g.clone();
        drop(g);
        self.emit(CoreEvent::now(
            EventType::Config,
            Action::Reloaded,
            "config",
        ));
        self.check_converged();
        Ok(())
    }

    /// Multi-host: the other hosts' conlinks are now `peers` (this host's
    /// own addresses left out by the caller). The mesh tunnels follow by
    /// the globals diff like any other change: a peer that comes or goes is
    /// one flood entry appended or deleted on each tunnel (in place), the
    /// first peer makes the tunnels, the last one leaving removes them. No
    /// container is touched. Safe to call with an unchanged set (nothing
    /// to do then, or a retry of what failed before); Ok(true) when
    /// something changed. Without multi-host mode, nothing happens.
    pub async fn set_peers(
        &self,
        peers: BTreeSet<std::net::Ipv4Addr>,
    ) -> Result<bool, ReloadError> {
        let mut g = self.globals.lock().await;
        let mut new_set = false;
        self.update_inputs(|i| {
            if let Some(m) = &mut i.mesh {
                if m.peers != peers {
                    m.peers = peers.clone();
                    new_set = true;
                }
            }
        });
        if new_set {
            let shown: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
            info!(
                "multi-host: peers now {}",
                if shown.is_empty() {
                    "none".to_string()
                } else {
                    shown.join(", ")
                }
            );
            let inp = self.inputs();
            if let Some(m) = &inp.mesh {
                for w in crate::mesh::patch_warnings(&inp.cfg, m) {
                    warn!("{w}");
                }
            }
            self.emit(
                CoreEvent::now(EventType::Conlink, Action::Changed, "peers")
                    .attr("peers", shown.join(",")),
            );
        }
        let want = desired_globals(&self.inputs());
        let mut ops = globals_pre(&g, &want);
        ops.extend(globals_post(&g, &want));
        if ops.is_empty() {
            return Ok(false);
        }
        let res = self.apply_globals(&mut g, ops, true).await;
        *Self::lock(&self.globals_seen) = g.clone();
        res.map(|()| true).map_err(|e| ReloadError(e.to_string()))
    }

    /// Sets an override on one link and reconciles that container; the
    /// receiver fires when that reconcile has run (the control API waits
    /// for it to report failures such as a kernel without netem).
    pub fn set_override(
        self: &Arc<Self>,
        ctr: &str,
        dev: &str,
        o: LinkOverride,
    ) -> oneshot::Receiver<()> {
        self.update_inputs(|i| {
            i.overrides.insert((ctr.into(), dev.into()), o);
        });
        self.emit(CoreEvent::now(
            EventType::Override,
            Action::Set,
            format!("{ctr}/{dev}"),
        ));
        self.trigger(ctr, Instant::now(), true)
    }

    /// The override of one link, if any.
    pub fn override_of(&self, ctr: &str, dev: &str) -> Option<LinkOverride> {
        self.inputs()
            .overrides
            .get(&(ctr.to_string(), dev.to_string()))
            .cloned()
    }

    /// Clears an override; when there was one, a receiver that fires when
    /// the reconcile it caused has run.
    pub fn clear_override(self: &Arc<Self>, ctr: &str, dev: &str) -> Option<oneshot::Receiver<()>> {
        let mut had = false;
        self.update_inputs(|i| {
            had = i.overrides.remove(&(ctr.into(), dev.into())).is_some();
        });
        if had {
            self.emit(CoreEvent::now(
                EventType::Override,
                Action::Cleared,
                format!("{ctr}/{dev}"),
            ));
            return Some(self.trigger(ctr, Instant::now(), true));
        }
        None
    }

    fn update_inputs(&self, f: impl FnOnce(&mut Inputs)) {
        let mut w = self.inputs.write().unwrap_or_else(|p| p.into_inner());
        let mut inp = (**w).clone();
        f(&mut inp);
        *w = Arc::new(inp);
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CoreEvent> {
        self.events.subscribe()
    }

    /// The events kept (oldest first).
    pub fn history(&self) -> Vec<CoreEvent> {
        Self::lock(&self.history).iter().cloned().collect()
    }

    /// The state as the control API shows it.
    pub fn snapshot(&self) -> Snapshot {
        let inp = self.inputs();
        let observed = Self::lock(&self.observed).clone();
        let es = Self::lock(&self.entries);
        let mut containers = Vec::new();
        for (name, e) in es.iter() {
            let c = observed.get(name);
            let desired = c.and_then(|c| desired_container(&inp, c).ok().flatten());
            let Some(d) = desired.or_else(|| e.actual.clone()) else {
                continue;
            };
            let links = d
                .links
                .iter()
                .map(|(dev, l)| {
                    let applied = e.actual.as_ref().and_then(|a| a.links.get(dev));
                    let (status, reason) = match &e.failure {
                        Some((Some(fd), why)) if fd == dev && e.status == Status::Failed => {
                            (LinkStatus::Failed, Some(why.clone()))
                        }
                        _ if applied == Some(l) => (LinkStatus::Ready, None),
                        _ => (LinkStatus::Pending, None),
                    };
                    LinkSnapshot {
                        dev: dev.clone(),
                        desired: l.clone(),
                        outer: l.id.outer.as_ref().map(|o| o.name.clone()),
                        bridge: l.id.outer.as_ref().map(|o| o.bridge.clone()),
                        netns: d.ctr.netns.display().to_string(),
                        status,
                        reason,
                    }
                })
                .collect();
            containers.push(ContainerSnapshot {
                name: name.clone(),
                id: d.ctr.id.clone(),
                service: c.and_then(|c| c.service.clone()),
                replica: c.map_or(1, |c| c.index),
                links,
            });
        }
        drop(es);
        let g = Self::lock(&self.globals_seen).clone();
        Snapshot {
            containers,
            bridges: g
                .bridges
                .iter()
                .map(|(n, m)| (n.clone(), mode_str(*m).to_string()))
                .collect(),
            tunnels: g.tunnels.clone(),
            converged: Self::lock(&self.announced).as_deref() == Some(ALL_CONNECTED),
        }
    }

    /// What conlink has made, as one state value.
    pub fn actual(&self) -> State {
        self.actual_now()
    }

    /// What `conlink plan` needs from a running conlink to predict its
    /// next reload exactly: the actual state, the containers seen and the
    /// inputs a reload keeps.
    pub fn running_state(&self) -> crate::plan::RunningState {
        let inp = self.inputs();
        crate::plan::RunningState {
            actual: self.actual_now(),
            observed: Self::lock(&self.observed).values().cloned().collect(),
            project: inp.project.clone(),
            overrides: inp
                .overrides
                .iter()
                .map(|((c, d), o)| (c.clone(), d.clone(), o.clone()))
                .collect(),
            mesh: inp.mesh.clone(),
        }
    }

    fn actual_now(&self) -> State {
        State {
            globals: Self::lock(&self.globals_seen).clone(),
            containers: Self::lock(&self.entries)
                .iter()
                .filter_map(|(n, e)| e.actual.clone().map(|a| (n.clone(), a)))
                .collect(),
        }
    }

    /// Removes everything conlink made: the diff from the actual state to
    /// nothing, run with one batched delete for the outer ends (the kernel
    /// unregisters a group in one go: < 1 ms each instead of ~20 ms one by
    /// one). Goes on past errors and returns them all.
    pub async fn teardown(&self) -> Vec<String> {
        let actual = self.actual();
        let ap = self.applier.clone();
        let mut g = self.globals.lock().await;
        let globals = g.clone();
        let errs = tokio::task::spawn_blocking(move || teardown_all(&ap, actual, globals))
            .await
            .unwrap_or_else(|e| vec![e.to_string()]);
        *g = Globals::default();
        *Self::lock(&self.globals_seen) = Globals::default();
        Self::lock(&self.entries).clear();
        errs
    }
}

/// The teardown: every container's removal operations except the deletes
/// of outer ends (forwards, NAT, links inside containers), then one group
/// delete of all outer ends and tunnels, then the global removals.
fn teardown_all<K: Kernel>(ap: &Applier<K>, actual: State, globals: Globals) -> Vec<String> {
    let mut errs = Vec::new();
    // Outer ends go in one group delete below; only what that needs is
    // kept of them (not their whole ops: at thousands of links those were
    // the daemon's peak memory, at its exit).
    let mut outer_ends = false;
    let mut ovs_ports: Vec<(String, String)> = Vec::new();
    for (_, c) in actual.containers {
        for op in diff_container(Some(&c), None) {
            if let Op::DeleteLink { link, .. } = &op {
                if let Some(o) = &link.id.outer {
                    outer_ends = true;
                    if o.mode == conlink_model::BridgeMode::Ovs {
                        ovs_ports.push((o.bridge.clone(), o.name.clone()));
                    }
                    continue;
                }
            }
            if let Err(e) = ap.apply_one(&op) {
                errs.push(format!("{op}: {e}"));
            }
        }
    }
    let post = globals_post(&globals, &Globals::default());
    let has_tunnels = post.iter().any(|o| matches!(o, Op::DeleteTunnel { .. }));
    if outer_ends || has_tunnels {
        // The ovs bookkeeping of each outer end, then one delete.
        for (bridge, name) in &ovs_ports {
            let _ = ap.kernel().detach_ovs(bridge, name);
        }
        if let Err(e) = ap.kernel().delete_outer_group() {
            if e.kind != crate::kernel::ErrorKind::Gone {
                errs.push(format!("delete outer interfaces: {e}"));
            }
        }
    }
    for op in post {
        if let Err(e) = ap.apply_one(&op) {
            errs.push(format!("{op}: {e}"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_slots_from_the_environment_or_the_cores() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        assert_eq!(slots_from(Some("1")), 1);
        assert_eq!(slots_from(Some(" 16 ")), 16);
        for bad in ["0", "65", "x", ""] {
            assert_eq!(slots_from(Some(bad)), cores, "{bad:?}");
        }
        assert_eq!(slots_from(None), cores);
    }

    #[test]
    fn timings_keep_the_last_samples_and_count_all() {
        let t = Timings::default();
        let ms = Duration::from_millis;
        let n = Timings::KEEP + 10;
        for i in 0..n {
            t.push(ms(i as u64), ms(1));
        }
        assert_eq!(t.total(), n);
        let all = t.samples();
        assert_eq!(all.len(), Timings::KEEP);
        assert_eq!(all[0].0, ms(10), "the oldest ten were dropped");
        // A reader that saw 5 (dropped since) gets every kept one; one that
        // saw n - 3 gets the last three; one up to date gets none.
        assert_eq!(t.samples_since(5), (all.clone(), n));
        let (last, next) = t.samples_since(n - 3);
        assert_eq!(next, n);
        assert_eq!(
            last.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![ms(n as u64 - 3), ms(n as u64 - 2), ms(n as u64 - 1)]
        );
        assert!(t.samples_since(n).0.is_empty());
        let s = t.summary().unwrap();
        assert!(
            s.contains(&format!("the last {} of {n}", Timings::KEEP)),
            "{s}"
        );
    }
}
