//! The daemon: turns runtime events into setups and teardowns, one container
//! at a time per container and many containers in parallel, and says
//! `All links connected` whenever everything configured has converged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conlink_model::{NetworkConfig, Target};
use conlink_runtime::{Container, Event};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::plan::{plan_container, targets_for, ContainerPlan};

/// The exact line existing tests and users grep for.
pub const ALL_CONNECTED: &str = "All links connected";

/// Carries plans out on the system. Blocking: the daemon calls it on a
/// blocking thread. Passed in explicitly so the daemon's logic can be tested
/// with a fake; the real one is [`crate::exec::Executor`].
pub trait Network: Send + Sync + 'static {
    /// Builds every link of `plan` for `c`. On error, what was built for this
    /// container must already be removed again.
    fn setup(&self, c: &Container, plan: &ContainerPlan) -> anyhow::Result<()>;
    /// Removes what `setup` built for `c` (tolerating a container whose
    /// namespace is already gone). Returns every error met, having gone on.
    fn teardown(&self, c: &Container, plan: &ContainerPlan) -> Vec<anyhow::Error>;
}

/// Runs configured commands inside containers.
pub trait Exec: Send + Sync + 'static {
    /// Runs `argv` in `c`, logging its output lines prefixed with the
    /// container name; returns the exit code.
    fn exec(
        &self,
        c: &Container,
        argv: Vec<String>,
    ) -> impl std::future::Future<Output = anyhow::Result<i64>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Ready,
    Failed,
}

struct Entry {
    container: Container,
    plan: Arc<ContainerPlan>,
    status: Status,
    /// What the container counts for (`targets_for`), kept for the counts.
    targets: Vec<Target>,
}

/// The containers with links and the counts that make the convergence test
/// O(1): it runs after every setup, and a scan of all entries there made
/// bringing up N containers cost O(N²) (measured: noticeable from ~1000).
#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Whether `All links connected` was logged for the current state.
    announced: bool,
    /// Entries not `Ready`.
    not_ready: usize,
    /// Per configured service/container: how many entries count for it.
    present: HashMap<Target, usize>,
    /// Configured targets with no entry at all.
    missing: usize,
}

impl State {
    fn new(cfg: &NetworkConfig) -> Self {
        let present: HashMap<Target, usize> = cfg
            .services
            .keys()
            .map(|s| Target::Service(s.clone()))
            .chain(cfg.containers.keys().map(|c| Target::Container(c.clone())))
            .map(|t| (t, 0))
            .collect();
        State {
            missing: present.len(),
            present,
            ..Default::default()
        }
    }

    fn insert(&mut self, id: String, e: Entry) {
        self.remove(&id);
        if e.status != Status::Ready {
            self.not_ready += 1;
        }
        for t in &e.targets {
            if let Some(n) = self.present.get_mut(t) {
                if *n == 0 {
                    self.missing -= 1;
                }
                *n += 1;
            }
        }
        self.entries.insert(id, e);
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        if e.status != Status::Ready {
            self.not_ready -= 1;
        }
        for t in &e.targets {
            if let Some(n) = self.present.get_mut(t) {
                *n -= 1;
                if *n == 0 {
                    self.missing += 1;
                }
            }
        }
        Some(e)
    }

    /// Sets the status of entry `id` if it is still instance `c`; false if not.
    fn set_status(&mut self, id: &str, c: &Container, status: Status) -> bool {
        let Some(e) = self.entries.get_mut(id).filter(|e| e.container == *c) else {
            return false;
        };
        let (was, now) = (e.status != Status::Ready, status != Status::Ready);
        e.status = status;
        match (was, now) {
            (true, false) => self.not_ready -= 1,
            (false, true) => self.not_ready += 1,
            _ => {}
        }
        true
    }

    /// Every configured service and container has an instance, and every
    /// instance is ready.
    fn converged(&self) -> bool {
        self.not_ready == 0 && self.missing == 0
    }
}

/// Runs the operations on one container name strictly in event order:
/// each waits for the previous one on the same name to finish. Keyed by
/// name, not id: outer interface names derive from the container name, so
/// the teardown of a removed replica and the setup of its successor (same
/// name, new id, e.g. `--scale x=0` then `=1`) touch the same interfaces;
/// a restart keeps id and name. A lock taken inside the spawned tasks would
/// not do: tasks start in any order on a multi-threaded runtime.
#[derive(Default)]
struct Queues(HashMap<String, tokio::sync::oneshot::Receiver<()>>);

impl Queues {
    /// Wraps `op` so it runs after the last queued operation on `name`.
    fn chain<F>(&mut self, name: &str, op: F) -> impl std::future::Future<Output = ()> + Send
    where
        F: std::future::Future<Output = ()> + Send,
    {
        let (done, rx) = tokio::sync::oneshot::channel::<()>();
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

    /// Forgets names whose last operation has finished.
    fn prune(&mut self) {
        self.0.retain(|_, rx| {
            matches!(
                rx.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
            )
        });
    }
}

/// Per-container samples: (start event → links configured, the setup work
/// alone).
#[derive(Default, Clone)]
pub struct Timings(Arc<Mutex<Vec<(Duration, Duration)>>>);

impl Timings {
    /// All samples so far.
    pub fn samples(&self) -> Vec<(Duration, Duration)> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
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
        Some(format!(
            "over {} container(s): event to ready {}; setup work {}",
            all.len(),
            q(all.iter().map(|s| s.0).collect()),
            q(all.iter().map(|s| s.1).collect())
        ))
    }
}

/// The daemon's shared core.
pub struct Daemon<N: Network, E: Exec> {
    cfg: Arc<NetworkConfig>,
    project: Option<String>,
    net: Arc<N>,
    exec: Arc<E>,
    state: Mutex<State>,
    /// Notified each time `All links connected` is logged.
    connected_tx: tokio::sync::watch::Sender<u64>,
    timings: Timings,
    /// Running `commands`: outside the per-name queues, so a long command
    /// never holds back the teardown of its container.
    commands: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Bounds the setups in flight (see `setup`).
    slots: Arc<tokio::sync::Semaphore>,
}

impl<N: Network, E: Exec> Daemon<N, E> {
    /// A daemon for `cfg`; `project` scopes `service:` matching (None: any).
    pub fn new(cfg: NetworkConfig, project: Option<String>, net: Arc<N>, exec: E) -> Arc<Self> {
        let (connected_tx, _) = tokio::sync::watch::channel(0);
        let state = State::new(&cfg);
        Arc::new(Self {
            cfg: Arc::new(cfg),
            project,
            net,
            exec: Arc::new(exec),
            state: Mutex::new(state),
            connected_tx,
            timings: Timings::default(),
            commands: Mutex::new(Vec::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            )),
        })
    }

    /// Setup latency samples.
    pub fn timings(&self) -> Timings {
        self.timings.clone()
    }

    /// A receiver that changes each time everything has converged.
    #[cfg(test)]
    pub fn connected(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connected_tx.subscribe()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere already; the state itself
        // is plain data and still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The containers with links right now and their plans (for shutdown).
    pub fn remaining(&self) -> Vec<(Container, Arc<ContainerPlan>)> {
        self.state()
            .entries
            .values()
            .map(|e| (e.container.clone(), e.plan.clone()))
            .collect()
    }

    /// Consumes runtime events until the channel closes.
    pub async fn run(self: &Arc<Self>, mut rx: mpsc::Receiver<Event>) {
        let mut tasks = tokio::task::JoinSet::new();
        let mut queues = Queues::default();
        self.check_connected();
        while let Some(ev) = rx.recv().await {
            let me = self.clone();
            match ev {
                Event::Start(c) => {
                    let t0 = Instant::now();
                    if self.on_start(&c) {
                        let name = c.name.clone();
                        tasks.spawn(queues.chain(&name, async move { me.setup(c, t0).await }));
                    }
                }
                Event::Die(id) => {
                    if let Some((c, plan)) = self.on_die(&id) {
                        let name = c.name.clone();
                        tasks.spawn(queues.chain(&name, async move { me.teardown(c, plan).await }));
                    }
                }
            }
            // Reap finished tasks so the set does not grow without bound.
            while tasks.try_join_next().is_some() {}
            queues.prune();
        }
        while tasks.join_next().await.is_some() {}
        // Commands still running: wait for them (callers bound this wait).
        let cmds: Vec<_> = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for h in cmds {
            h.await.ok();
        }
    }

    /// Records a start; true when there is work.
    fn on_start(&self, c: &Container) -> bool {
        let plan = match plan_container(&self.cfg, c, self.project.as_deref()) {
            Ok(p) if p.is_empty() => return false,
            Ok(p) => p,
            Err(e) => {
                error!("{}: cannot plan links: {e}", c.name);
                return false;
            }
        };
        let mut st = self.state();
        // The engine may report a container twice (listed at subscription
        // and seen in the stream): the same instance is not set up again.
        if st.entries.get(&c.id).is_some_and(|e| e.container == *c) {
            return false;
        }
        st.announced = false;
        st.insert(
            c.id.clone(),
            Entry {
                container: c.clone(),
                plan: Arc::new(plan),
                status: Status::Pending,
                targets: targets_for(c, self.project.as_deref()),
            },
        );
        true
    }

    fn on_die(&self, id: &str) -> Option<(Container, Arc<ContainerPlan>)> {
        let mut st = self.state();
        let e = st.remove(id)?;
        st.announced = false;
        Some((e.container, e.plan))
    }

    async fn setup(self: Arc<Self>, c: Container, t0: Instant) {
        // The container may have died while earlier operations ran.
        let plan = match self.state().entries.get(&c.id) {
            Some(e) if e.container == c => e.plan.clone(),
            _ => return,
        };
        let net = self.net.clone();
        let (c2, p2) = (c.clone(), plan.clone());
        // Link changes serialise on the kernel's RTNL lock: more setups in
        // flight than cores only adds thread switching (measured with
        // bench/links), so a few run at once and the rest queue here.
        let permit = self.slots.clone().acquire_owned().await;
        let t1 = Instant::now();
        let res = tokio::task::spawn_blocking(move || net.setup(&c2, &p2)).await;
        drop(permit);
        let res = match res {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("setup task failed: {e}")),
        };
        let (took, work) = (t0.elapsed(), t1.elapsed());
        let status = match &res {
            Ok(()) => {
                if let Ok(mut t) = self.timings.0.lock() {
                    t.push((took, work));
                }
                info!(
                    "{}: {} link(s) ready in {:.3} ms (setup {:.3} ms)",
                    c.name,
                    plan.links.len(),
                    took.as_secs_f64() * 1e3,
                    work.as_secs_f64() * 1e3
                );
                Status::Ready
            }
            Err(e) => {
                error!("{}: link setup failed: {e:#}", c.name);
                Status::Failed
            }
        };
        if !self.state().set_status(&c.id, &c, status) {
            return;
        }
        // Convergence is about links; commands (which may run for long)
        // start after and do not hold the announcement back.
        self.check_connected();
        if status == Status::Ready && !plan.commands.is_empty() {
            let me = self.clone();
            let h = tokio::spawn(async move { me.run_commands(&c, &plan).await });
            let mut cmds = self.commands.lock().unwrap_or_else(|p| p.into_inner());
            cmds.retain(|h| !h.is_finished());
            cmds.push(h);
        }
    }

    async fn run_commands(&self, c: &Container, plan: &ContainerPlan) {
        let runs = plan.commands.iter().map(|argv| {
            let exec = self.exec.clone();
            let (c, argv) = (c.clone(), argv.clone());
            async move {
                let shown = argv.join(" ");
                match exec.exec(&c, argv).await {
                    Ok(0) => info!("{}: command {shown:?} exited 0", c.name),
                    Ok(code) => warn!("{}: command {shown:?} exited {code}", c.name),
                    Err(e) => error!("{}: command {shown:?} failed: {e:#}", c.name),
                }
            }
        });
        futures_join_all(runs).await;
    }

    async fn teardown(self: Arc<Self>, c: Container, plan: Arc<ContainerPlan>) {
        let net = self.net.clone();
        let name = c.name.clone();
        let errs = tokio::task::spawn_blocking(move || net.teardown(&c, &plan))
            .await
            .unwrap_or_else(|e| vec![anyhow::anyhow!("teardown task failed: {e}")]);
        for e in errs {
            warn!("{name}: teardown: {e:#}");
        }
        info!("{name}: links removed");
        self.check_connected();
    }

    /// Logs `All links connected` if everything configured has converged
    /// and it was not yet said for this state.
    fn check_connected(&self) {
        let mut st = self.state();
        if st.announced || !st.converged() {
            return;
        }
        st.announced = true;
        drop(st);
        info!("{ALL_CONNECTED}");
        self.connected_tx.send_modify(|n| *n += 1);
    }
}

/// Runs futures concurrently and waits for all (tiny join_all; avoids a
/// dependency on the futures crate for one function).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use conlink_model::{Base, Bridge, BridgeMode, Group, Link, LinkType};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct FakeNet {
        setups: AtomicUsize,
        teardowns: AtomicUsize,
        fail_name: Option<String>,
    }
    impl Network for FakeNet {
        fn setup(&self, c: &Container, _p: &ContainerPlan) -> anyhow::Result<()> {
            self.setups.fetch_add(1, Ordering::SeqCst);
            if self.fail_name.as_deref() == Some(c.name.as_str()) {
                anyhow::bail!("boom");
            }
            Ok(())
        }
        fn teardown(&self, _c: &Container, _p: &ContainerPlan) -> Vec<anyhow::Error> {
            self.teardowns.fetch_add(1, Ordering::SeqCst);
            vec![]
        }
    }
    /// (container name, argv) of every command run.
    type Ran = Arc<Mutex<Vec<(String, Vec<String>)>>>;
    struct FakeExec(Ran);
    impl Exec for FakeExec {
        async fn exec(&self, c: &Container, argv: Vec<String>) -> anyhow::Result<i64> {
            self.0.lock().unwrap().push((c.name.clone(), argv));
            Ok(0)
        }
    }

    fn cfg() -> NetworkConfig {
        let mut cfg = NetworkConfig::default();
        cfg.bridges.insert(
            "s1".into(),
            Bridge {
                bridge: "s1".into(),
                mode: BridgeMode::Linux,
            },
        );
        let link = Link {
            link_type: LinkType::Veth,
            target: Target::Service("node".into()),
            dev: "eth0".into(),
            outer_dev: None,
            bridge: Some("s1".into()),
            ip: vec!["10.0.0.1/24".parse().unwrap()],
            mac: None,
            mtu: None,
            route: vec![],
            nat: None,
            netem: None,
            mode: None,
            vlanid: None,
            forward: vec![],
            ethtool: vec![],
            base: Base::Conlink,
        };
        cfg.services.insert(
            "node".into(),
            Group {
                links: vec![link],
                commands: vec![conlink_model::Command {
                    target: Target::Service("node".into()),
                    command: conlink_model::CommandSpec::Shell("echo hi".into()),
                }],
            },
        );
        cfg
    }

    fn node(i: u32) -> Container {
        Container {
            id: format!("id{i}"),
            name: format!("p-node-{i}"),
            service: Some("node".into()),
            project: Some("p".into()),
            index: i,
            netns: "/nonexistent".into(),
        }
    }

    async fn wait_connected(rx: &mut tokio::sync::watch::Receiver<u64>, n: u64) {
        tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v >= n))
            .await
            .expect("timed out waiting for All links connected")
            .unwrap();
    }

    #[tokio::test]
    async fn announces_once_all_replicas_ready_and_again_after_changes() {
        let cmds = Arc::new(Mutex::new(vec![]));
        let d = Daemon::new(
            cfg(),
            Some("p".into()),
            Arc::new(FakeNet::default()),
            FakeExec(cmds.clone()),
        );
        let mut rx = d.connected();
        let (tx, erx) = mpsc::channel(16);
        let d2 = d.clone();
        let run = tokio::spawn(async move { d2.run(erx).await });
        for i in 1..=3 {
            tx.send(Event::Start(node(i))).await.unwrap();
        }
        // A duplicate report of a running instance changes nothing.
        tx.send(Event::Start(node(1))).await.unwrap();
        wait_connected(&mut rx, 1).await;
        assert_eq!(d.net.setups.load(Ordering::SeqCst), 3);
        // A container of another project is ignored.
        let mut other = node(9);
        other.project = Some("q".into());
        tx.send(Event::Start(other)).await.unwrap();
        tx.send(Event::Die("id2".into())).await.unwrap();
        wait_connected(&mut rx, 2).await;
        assert_eq!(d.net.teardowns.load(Ordering::SeqCst), 1);
        assert_eq!(d.net.setups.load(Ordering::SeqCst), 3);
        drop(tx);
        run.await.unwrap();
        assert_eq!(cmds.lock().unwrap().len(), 3);
        assert_eq!(cmds.lock().unwrap()[0].1, vec!["sh", "-c", "echo hi"]);
        assert_eq!(d.timings().samples().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_container_blocks_the_announcement_but_not_others() {
        let net = FakeNet {
            fail_name: Some("p-node-2".into()),
            ..Default::default()
        };
        let cmds = Arc::new(Mutex::new(vec![]));
        let d = Daemon::new(
            cfg(),
            Some("p".into()),
            Arc::new(net),
            FakeExec(cmds.clone()),
        );
        let rx = d.connected();
        let (tx, erx) = mpsc::channel(16);
        tx.send(Event::Start(node(1))).await.unwrap();
        tx.send(Event::Start(node(2))).await.unwrap();
        drop(tx);
        d.run(erx).await;
        assert_eq!(*rx.borrow(), 0, "must not announce with a failed replica");
        // The healthy replica still got its commands.
        assert_eq!(cmds.lock().unwrap().len(), 1);
    }

    /// Records setup/teardown order; teardown is slow.
    #[derive(Default)]
    struct OrderNet(Mutex<Vec<String>>);
    impl Network for OrderNet {
        fn setup(&self, c: &Container, _p: &ContainerPlan) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(format!("setup {}", c.id));
            Ok(())
        }
        fn teardown(&self, c: &Container, _p: &ContainerPlan) -> Vec<anyhow::Error> {
            std::thread::sleep(Duration::from_millis(100));
            self.0.lock().unwrap().push(format!("teardown {}", c.id));
            vec![]
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_successor_with_the_same_name_waits_for_the_teardown() {
        let net = Arc::new(OrderNet::default());
        let d = Daemon::new(
            cfg(),
            Some("p".into()),
            net.clone(),
            FakeExec(Ran::default()),
        );
        let (tx, erx) = mpsc::channel(16);
        let old = node(1);
        // `--scale node=0` then `=1`: same name, new id.
        let mut new = node(1);
        new.id = "fresh".into();
        let d2 = d.clone();
        let run = tokio::spawn(async move { d2.run(erx).await });
        tx.send(Event::Start(old)).await.unwrap();
        let mut rx = d.connected();
        wait_connected(&mut rx, 1).await;
        tx.send(Event::Die("id1".into())).await.unwrap();
        tx.send(Event::Start(new)).await.unwrap();
        drop(tx);
        run.await.unwrap();
        assert_eq!(
            *net.0.lock().unwrap(),
            ["setup id1", "teardown id1", "setup fresh"]
        );
    }
}
