//! Running the daemon: runtime + executor + event loop, and the orderly
//! shutdown on SIGINT/SIGTERM that leaves nothing behind.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use conlink_model::NetworkConfig;
use conlink_net::Netns;
use conlink_runtime::docker::DockerRuntime;
use conlink_runtime::netns::{exec_in, NetnsRuntime};
use conlink_runtime::Container;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::daemon::{Daemon, Exec};
use crate::exec::{Executor, Placement};

/// Which engine conlink watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// docker and/or podman through their API sockets.
    Docker,
    /// Named network namespaces play the containers.
    Netns,
}

/// What the daemon needs besides the config.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which runtime.
    pub runtime: RuntimeKind,
    /// netns runtime: replicas per service (default 1).
    pub scale: Vec<(String, u32)>,
    /// Name of conlink's own namespace when it runs on a host.
    pub netns_name: String,
    /// docker API socket.
    pub docker_socket: PathBuf,
    /// podman API socket.
    pub podman_socket: PathBuf,
    /// Compose project whose `service:` links apply.
    pub compose_project: Option<String>,
}

/// Commands of the netns runtime: run inside the namespace.
struct NetnsExec;

impl Exec for NetnsExec {
    async fn exec(&self, c: &Container, argv: Vec<String>) -> anyhow::Result<i64> {
        Ok(exec_in(c, &argv).await?)
    }
}

/// conlink's own namespace on a host: a dedicated named one, created if
/// missing (and then removed at exit).
struct OwnNetns {
    ns: Netns,
    name: String,
    created: bool,
}

impl OwnNetns {
    fn open_or_create(name: &str) -> anyhow::Result<Self> {
        if Netns::exists_named(name) {
            info!("using existing network namespace {name} for bridges");
            return Ok(Self {
                ns: Netns::named(name)?,
                name: name.to_string(),
                created: false,
            });
        }
        let ns = Netns::create_named(name)
            .with_context(|| format!("create conlink's namespace {name}"))?;
        info!("created network namespace {name} for bridges");
        Ok(Self {
            ns,
            name: name.to_string(),
            created: true,
        })
    }
}

impl Drop for OwnNetns {
    fn drop(&mut self) {
        if self.created {
            if let Err(e) = Netns::delete_named(&self.name) {
                warn!("delete namespace {}: {e}", self.name);
            }
        }
    }
}

/// Runs the daemon until SIGINT/SIGTERM, then removes everything.
pub async fn run(cfg: NetworkConfig, opts: RunOptions) -> anyhow::Result<()> {
    match opts.runtime {
        RuntimeKind::Netns => run_netns(cfg, opts).await,
        RuntimeKind::Docker => run_docker(cfg, opts).await,
    }
}

async fn run_netns(cfg: NetworkConfig, opts: RunOptions) -> anyhow::Result<()> {
    // Signals first, so one arriving during setup still shuts down cleanly.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let services: Vec<(String, u32)> = cfg
        .services
        .keys()
        .map(|s| {
            let n = opts
                .scale
                .iter()
                .rev()
                .find(|(name, _)| name == s)
                .map_or(1, |(_, n)| *n);
            (s.clone(), n)
        })
        .collect();
    let containers: Vec<String> = cfg.containers.keys().cloned().collect();

    let own = OwnNetns::open_or_create(&opts.netns_name)?;
    let cfg2 = cfg.clone();
    let own_ns = own.ns.try_clone()?;
    // The host side (parents of *vlan links) is the namespace conlink was
    // started in.
    // Tunnels are made there too (it reaches the remote) and moved in.
    let place = Placement {
        host_ns: Some("/proc/self/ns/net".into()),
        tunnel_ns: Some("/proc/self/ns/net".into()),
        ovs_dir: Placement::ovs_dir_for(&opts.netns_name),
    };
    let exec = tokio::task::spawn_blocking(move || Executor::init(&cfg2, &own_ns, place)).await??;
    let exec = Arc::new(exec);
    let mut rt = tokio::task::spawn_blocking(move || NetnsRuntime::prepare(&containers, &services))
        .await??;

    // A container's loopback is up; make the namespaces we play them with
    // alike (ping to self, local services on 127.0.0.1).
    // Only namespaces conlink created: existing ones belong to someone else.
    let lo: Vec<PathBuf> = rt
        .created()
        .map(conlink_runtime::netns::netns_path)
        .collect();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for ns in lo {
            conlink_net::Handle::open(&Netns::open(&ns)?)?.set_up("lo", true)?;
        }
        Ok(())
    })
    .await??;

    let daemon = Daemon::new(cfg, None, exec.clone(), NetnsExec);
    let (tx, rx) = mpsc::channel(1024);
    let d = daemon.clone();
    let looped = tokio::spawn(async move { d.run(rx).await });
    rt.announce(&tx).await;
    let watch = rt.watcher().spawn(tx.clone());

    tokio::select! {
        _ = sigint.recv() => info!("SIGINT: cleaning up"),
        _ = sigterm.recv() => info!("SIGTERM: cleaning up"),
    }
    tokio::task::spawn_blocking(move || watch.stop()).await.ok();
    drop(tx);
    await_loop(looped).await;
    if let Some(t) = daemon.timings().summary() {
        info!("{t}");
    }
    let remaining = daemon.remaining();
    let errs = tokio::task::spawn_blocking(move || {
        let mut errs = exec.shutdown(&remaining);
        errs.extend(rt.shutdown().into_iter().map(anyhow::Error::from));
        errs
    })
    .await?;
    drop(own);
    for e in &errs {
        warn!("cleanup: {e:#}");
    }
    info!("cleanup done");
    Ok(())
}

/// Waits for the event loop to end: in-flight setups finish before the
/// teardown; commands still running after a grace period are abandoned
/// (their containers keep running).
async fn await_loop(mut looped: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut looped)
        .await
        .is_err()
    {
        warn!("commands still running after {SHUTDOWN_GRACE:?}; not waiting for them");
        looped.abort();
        looped.await.ok();
    }
}

/// How long shutdown waits for in-flight setups and running commands.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Commands through the engine's exec API (the first engine that knows the
/// container runs it).
struct DockerExec(Vec<DockerRuntime>);

impl Exec for DockerExec {
    async fn exec(&self, c: &Container, argv: Vec<String>) -> anyhow::Result<i64> {
        let mut last = None;
        for rt in &self.0 {
            match rt.exec(c, argv.clone()).await {
                Ok(code) => return Ok(code),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no engine"), anyhow::Error::from))
    }
}

async fn run_docker(cfg: NetworkConfig, opts: RunOptions) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let mut engines = Vec::new();
    for sock in [&opts.docker_socket, &opts.podman_socket] {
        if !sock.exists() {
            continue;
        }
        match DockerRuntime::connect(sock).await {
            Ok(rt) => {
                conlink_runtime::docker::log_connected(sock);
                engines.push(rt);
            }
            Err(e) => warn!("{e}"),
        }
    }
    if engines.is_empty() {
        anyhow::bail!(
            "no container engine answers at {} or {}",
            opts.docker_socket.display(),
            opts.podman_socket.display()
        );
    }

    // Inside a container conlink uses its own namespace and finds its
    // compose project; on a host it makes a dedicated namespace.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own_id = conlink_runtime::docker::own_container_id(&mountinfo);
    let mut project = opts.compose_project.clone();
    let (own, conlink_ns, place) = match &own_id {
        Some(id) => {
            // Whichever engine runs us knows us (docker or podman).
            let mut me = None;
            for rt in &engines {
                if let Ok(Some(c)) = rt.inspect(id).await {
                    me = Some(c);
                    break;
                }
            }
            if me.is_none() {
                warn!("own container {} not found in any engine", &id[..12]);
            }
            if project.is_none() {
                project = me.as_ref().and_then(|c| c.project.clone());
            }
            info!(
                "running in container {} (project {})",
                &id[..12],
                project.as_deref().unwrap_or("-")
            );
            // With `pid: host`, PID 1 is the host's init: its namespace is
            // the host's root namespace.
            let place = Placement {
                host_ns: Some("/proc/1/ns/net".into()),
                tunnel_ns: None,
                ovs_dir: Placement::ovs_dir_for(&opts.netns_name),
            };
            (None, Netns::current()?, place)
        }
        None => {
            let own = OwnNetns::open_or_create(&opts.netns_name)?;
            let ns = own.ns.try_clone()?;
            let place = Placement {
                host_ns: Some("/proc/self/ns/net".into()),
                tunnel_ns: Some("/proc/self/ns/net".into()),
                ovs_dir: Placement::ovs_dir_for(&opts.netns_name),
            };
            (Some(own), ns, place)
        }
    };

    let cfg2 = cfg.clone();
    let exec =
        tokio::task::spawn_blocking(move || Executor::init(&cfg2, &conlink_ns, place)).await??;
    let exec = Arc::new(exec);
    let daemon = Daemon::new(cfg, project, exec.clone(), DockerExec(engines.clone()));
    let (tx, rx) = mpsc::channel(1024);
    let d = daemon.clone();
    let looped = tokio::spawn(async move { d.run(rx).await });
    let mut watchers = tokio::task::JoinSet::new();
    for rt in engines {
        let tx = tx.clone();
        watchers.spawn(async move { rt.watch(tx).await });
    }
    drop(tx);

    tokio::select! {
        _ = sigint.recv() => info!("SIGINT: cleaning up"),
        _ = sigterm.recv() => info!("SIGTERM: cleaning up"),
    }
    watchers.abort_all();
    while watchers.join_next().await.is_some() {}
    await_loop(looped).await;
    if let Some(t) = daemon.timings().summary() {
        info!("{t}");
    }
    let remaining = daemon.remaining();
    let errs = tokio::task::spawn_blocking(move || exec.shutdown(&remaining)).await?;
    drop(own);
    for e in &errs {
        warn!("cleanup: {e:#}");
    }
    info!("cleanup done");
    Ok(())
}
