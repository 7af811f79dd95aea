//! `conlink plan`: the changes the daemon would make for the config
//! options, printed without making any. The plan itself is the core's
//! (`conlink_core::plan`: the daemon's desired state and diff); this file
//! only finds, read-only, what the daemon would start from: conlink's
//! namespace (never created here) and the containers that run.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use conlink_core::net::MarkReader;
use conlink_core::plan::{Observed, Plan, RunningState};
use conlink_core::Inputs;
use conlink_model::Container;
use conlink_net::Netns;
use conlink_runtime::docker::DockerRuntime;
use conlink_runtime::netns::{netns_path, pseudo_id};

use crate::cli::{self, Cli};

/// Exit code when the plan has changes (as `terraform plan
/// -detailed-exitcode`): 0 means nothing would change, 1 an error.
const CHANGES: u8 = 2;

/// Runs `conlink plan`, printing the plan (or the error) and choosing the
/// exit code.
pub fn main(cli: &Cli, json: bool) -> ExitCode {
    match compute(cli) {
        Ok(p) => {
            let text = if json {
                let mut t = serde_json::to_string_pretty(&p.json()).unwrap_or_default();
                t.push('\n');
                t
            } else {
                p.human()
            };
            if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
                eprintln!("conlink: write plan: {e}");
                return ExitCode::from(1);
            }
            if !p.errors.is_empty() {
                ExitCode::from(1)
            } else if p.has_changes() {
                ExitCode::from(CHANGES)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("conlink: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn compute(cli: &Cli) -> anyhow::Result<Plan> {
    if cli.network_files().is_empty() && cli.compose_files().is_empty() {
        anyhow::bail!("plan: no config given (--network-file or --compose-file)");
    }
    let cfg = crate::load(cli)?;
    if let Some(run) = running(cli)? {
        return Ok(conlink_core::plan::plan_reload(&run, cfg));
    }
    match cli.runtime {
        cli::Runtime::Netns => netns(cli, cfg),
        cli::Runtime::Docker => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start async runtime")?;
            rt.block_on(docker(cli, cfg))
        }
    }
}

/// The running conlink's own state, from its control API: `--socket`
/// (then it must answer), else `/run/conlink/NAME.sock` when a conlink
/// answers there (NAME: the compose project inside a compose deployment,
/// else `--netns-name`, as the daemon names it). None: no conlink runs;
/// the plan then reads the kernel.
fn running(cli: &Cli) -> anyhow::Result<Option<RunningState>> {
    use conlink_control::client::{Client, Endpoint};
    let explicit = cli.socket.clone();
    let path = match &explicit {
        Some(p) => p.clone(),
        None => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let in_ctr = conlink_runtime::docker::own_container_id(&mountinfo).is_some();
            let name = match (&cli.compose_project, in_ctr, cli.runtime) {
                (Some(p), true, cli::Runtime::Docker) => p.clone(),
                _ => cli.netns_name.clone(),
            };
            let p = conlink_control::server::socket_path(
                std::path::Path::new(conlink_control::server::SOCKET_DIR),
                &name,
            );
            if !p.exists() {
                eprintln!(
                    "conlink: no conlink API socket at {}: planning against what the kernel holds (as a conlink started now would adopt it)",
                    p.display()
                );
                return Ok(None);
            }
            p
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start async runtime")?;
    let got = rt.block_on(Client::new(Endpoint::Unix(path.clone())).state());
    match got {
        Ok(v) => {
            let run: RunningState = serde_json::from_value(v)
                .with_context(|| format!("{}: not a conlink state", path.display()))?;
            eprintln!(
                "conlink: planning against the running conlink at {} (what a reload would change)",
                path.display()
            );
            Ok(Some(run))
        }
        Err(e) if explicit.is_some() => {
            Err(anyhow::Error::from(e).context(format!("ask {}", path.display())))
        }
        Err(e) => {
            eprintln!(
                "conlink: no conlink answers at {} ({e}): planning against what the kernel holds",
                path.display()
            );
            Ok(None)
        }
    }
}

/// conlink's named namespace when it exists: a reader on it, else None
/// (nothing was made yet, and the daemon would create it).
fn named_reader(name: &str) -> anyhow::Result<Option<MarkReader>> {
    if !Netns::exists_named(name) {
        return Ok(None);
    }
    let ns = Netns::named(name).with_context(|| format!("open namespace {name}"))?;
    Ok(Some(MarkReader::open(&ns).map_err(|e| {
        anyhow::anyhow!("read namespace {name}: {e}")
    })?))
}

/// The netns runtime: the instances the daemon would play (as
/// `NetnsRuntime::prepare` names them), whether their namespaces exist
/// yet or not.
fn netns(cli: &Cli, cfg: conlink_model::NetworkConfig) -> anyhow::Result<Plan> {
    let scale = cli.scales();
    let mut obs = Observed::default();
    let reader = named_reader(&cli.netns_name)?;
    if reader.is_none() {
        obs.missing_namespaces.push(cli.netns_name.clone());
    }
    let wanted =
        cfg.containers
            .keys()
            .map(|c| (c.clone(), None, 1))
            .chain(cfg.services.keys().flat_map(|s| {
                let n = scale.get(s).copied().unwrap_or(1);
                (1..=n).map(move |i| (format!("{s}_{i}"), Some(s.clone()), i))
            }));
    for (name, service, index) in wanted {
        let path = netns_path(&name);
        if !path.exists() {
            obs.missing_namespaces.push(name.clone());
        }
        obs.containers.push(Container {
            id: pseudo_id(&name),
            name,
            service,
            project: None,
            index,
            netns: path,
        });
    }
    let inputs = Inputs {
        cfg,
        ..Default::default()
    };
    Ok(conlink_core::plan::plan(reader.as_ref(), &inputs, &obs))
}

/// The docker runtime: the running containers of every engine that
/// answers; conlink's namespace is its own inside a container (as the
/// daemon's), else the named one.
async fn docker(cli: &Cli, cfg: conlink_model::NetworkConfig) -> anyhow::Result<Plan> {
    let mut engines = Vec::new();
    for sock in [&cli.docker_socket, &cli.podman_socket] {
        if sock.exists() {
            if let Ok(rt) = DockerRuntime::connect(sock).await {
                engines.push(rt);
            }
        }
    }
    if engines.is_empty() {
        anyhow::bail!(
            "no container engine answers at {} or {}",
            cli.docker_socket.display(),
            cli.podman_socket.display()
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own_id = conlink_runtime::docker::own_container_id(&mountinfo);
    let mut project = cli.compose_project.clone();
    let mut obs = Observed::default();
    for rt in &engines {
        let ids = rt.running().await.context("list running containers")?;
        for id in ids {
            if let Some(c) = rt.inspect(&id).await.context("inspect container")? {
                if Some(&c.id) == own_id.as_ref() && project.is_none() {
                    project = c.project.clone();
                }
                obs.containers.push(c);
            }
        }
    }
    let reader = match &own_id {
        Some(_) => Some(
            MarkReader::open(&Netns::current()?)
                .map_err(|e| anyhow::anyhow!("read conlink's namespace: {e}"))?,
        ),
        None => {
            let r = named_reader(&cli.netns_name)?;
            if r.is_none() {
                obs.missing_namespaces.push(cli.netns_name.clone());
            }
            r
        }
    };
    let inputs = Inputs {
        cfg,
        project,
        ..Default::default()
    };
    Ok(conlink_core::plan::plan(reader.as_ref(), &inputs, &obs))
}
