//! conlink: declarative layer 2 and layer 3 links for docker compose
//! containers (spec §1). Parsing lives in `cli`; this file only dispatches.

mod cli;
mod control;
mod plan;
mod run;
mod watch;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;

use cli::Cli;

/// One malloc arena (glibc): glibc gives each thread that allocates its
/// own arena, and pages freed in one are not reused by another, so the
/// daemon's RSS was ~40 % above its heap at thousands of containers
/// (2000 namespaces: 49 → 36 MB peak; docs/performance.md, "Memory").
/// conlink allocates little and rarely at once on two threads.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs first in
    // main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse_args();
    if let Err(e) = cli.check() {
        e.exit();
    }
    init_logging(cli.verbose);
    let result = match &cli.command {
        Some(cli::Command::Graph { format, output }) => graph(&cli, *format, output.as_deref()),
        Some(cli::Command::Plan { json }) => return plan::main(&cli, *json),
        Some(cli::Command::Status { .. })
        | Some(cli::Command::Events { .. })
        | Some(cli::Command::Link { .. }) => client(&cli),
        None if cli.show_config => show_config(&cli),
        None => daemon(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conlink: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr (stdout carries `--show-config` JSON). `RUST_LOG`
/// overrides the level chosen by `--verbose`.
fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Loads the config, reporting every problem at once.
pub(crate) fn load(cli: &Cli) -> anyhow::Result<conlink_model::NetworkConfig> {
    conlink_config::load(&cli.load_options()).map_err(|errs| {
        anyhow::anyhow!(
            "invalid configuration ({} error{}):\n{errs}",
            errs.0.len(),
            if errs.0.len() == 1 { "" } else { "s" }
        )
    })
}

/// Runs the daemon until SIGINT/SIGTERM.
fn daemon(cli: &Cli) -> anyhow::Result<()> {
    let cfg = load(cli)?;
    let opts = run::RunOptions {
        runtime: match cli.runtime {
            cli::Runtime::Docker => run::RuntimeKind::Docker,
            cli::Runtime::Netns => run::RuntimeKind::Netns,
        },
        scale: cli
            .scale
            .iter()
            .map(|s| (s.service.clone(), s.replicas))
            .collect(),
        netns_name: cli.netns_name.clone(),
        docker_socket: cli.docker_socket.clone(),
        podman_socket: cli.podman_socket.clone(),
        sandbox_dir: cli.sandbox_dir.clone(),
        compose_project: cli.compose_project.clone(),
        peers: cli.peer.clone(),
        swarm: cli.swarm,
        mesh_tunnel: cli.mesh_tunnel,
        mesh_port: cli.mesh_port,
        underlay_mtu: cli.underlay_mtu,
        control: control::ControlOptions {
            socket: cli.socket.clone(),
            api_addr: cli.api_addr.clone(),
            api_token_file: cli.api_token_file.clone(),
            metrics_addr: cli.metrics_addr.clone(),
            web_addr: cli.web_addr.clone(),
        },
        files: cli
            .compose_files()
            .into_iter()
            .chain(cli.network_files())
            .collect(),
        loader: {
            let o = cli.load_options();
            std::sync::Arc::new(move || {
                // The environment as it is now (interpolation).
                let mut o = o.clone();
                o.env = std::env::vars().collect();
                conlink_config::load(&o).map_err(|errs| errs.to_string())
            })
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start async runtime")?;
    rt.block_on(run::run(cfg, opts))
}

/// `conlink graph`: draws the topology of the config options, or of
/// `--show-config` JSON on stdin when none are given.
fn graph(
    cli: &Cli,
    format: cli::GraphFormat,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let text = if cli.network_file.is_empty() && cli.compose_file.is_empty() {
        let mut json = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut json)
            .context("read --show-config JSON from stdin")?;
        conlink_graph::render_json(&json, format.into())
            .context("stdin is not conlink --show-config JSON")?
    } else {
        conlink_graph::render(&load(cli)?, format.into())
    };
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("write {}", p.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("write graph")?,
    }
    Ok(())
}

/// `--show-config`: load, validate and enrich, print the result as JSON.
/// A config error prints every problem (one per line) and fails.
fn show_config(cli: &Cli) -> anyhow::Result<()> {
    let cfg = load(cli)?;
    // One write: stdout is line-buffered, and a large config has many lines.
    let mut json = serde_json::to_string_pretty(&cfg).context("serialize config")?;
    json.push('\n');
    std::io::stdout()
        .lock()
        .write_all(json.as_bytes())
        .context("write config")?;
    Ok(())
}

/// Where a client subcommand talks to: `--api-addr` (with its token),
/// `--socket`, or the one socket in /run/conlink.
fn endpoint(cli: &Cli) -> anyhow::Result<conlink_control::client::Endpoint> {
    use conlink_control::client::Endpoint;
    if let Some(addr) = &cli.api_addr {
        let token = match &cli.api_token_file {
            Some(f) => Some(control::read_token(f)?),
            None => None,
        };
        return Ok(Endpoint::Tcp {
            addr: addr.clone(),
            token,
        });
    }
    Ok(Endpoint::Unix(match &cli.socket {
        Some(p) => p.clone(),
        None => conlink_control::client::discover_socket(std::path::Path::new(
            conlink_control::server::SOCKET_DIR,
        ))?,
    }))
}

/// `conlink status|events|link`: one request (or stream) to a running conlink.
fn client(cli: &Cli) -> anyhow::Result<()> {
    use conlink_control::api::{Admin, FlapRequest, SetRequest};
    let c = conlink_control::client::Client::new(endpoint(cli)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start async runtime")?;
    let mut out = std::io::stdout().lock();
    rt.block_on(async {
        match &cli.command {
            Some(cli::Command::Status { json: true }) => {
                let mut b = c.status_raw().await?.to_vec();
                b.push(b'\n');
                out.write_all(&b).context("write status")?;
            }
            Some(cli::Command::Status { json: false }) => {
                let st = c.status().await?;
                out.write_all(conlink_control::render::status_table(&st).as_bytes())
                    .context("write status")?;
            }
            Some(cli::Command::Events {
                since,
                filter,
                no_follow,
            }) => {
                let mut q = Vec::new();
                if let Some(s) = since {
                    let t = conlink_control::client::parse_since(s, std::time::SystemTime::now())?;
                    q.push(format!("since={}", conlink_control::server::unix_secs(t)));
                }
                for f in filter {
                    if !f.contains('=') {
                        anyhow::bail!("--filter {f:?}: expected KEY=VALUE");
                    }
                    q.push(format!("filter={}", percent(f)));
                }
                if *no_follow {
                    q.push("follow=0".into());
                }
                let mut werr = None;
                c.events(&q.join("&"), |line| {
                    // Flushed per line: `conlink events | jq` shows each at once.
                    match writeln!(out, "{line}").and_then(|_| out.flush()) {
                        Ok(()) => true,
                        Err(e) => {
                            werr = Some(e);
                            false
                        }
                    }
                })
                .await?;
                if let Some(e) = werr {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        return Err(anyhow::Error::from(e).context("write events"));
                    }
                }
            }
            Some(cli::Command::Link { action }) => {
                let reply = match action {
                    cli::LinkAction::Set {
                        target,
                        admin,
                        netem,
                        reset,
                        flap,
                        count,
                    } => {
                        c.set(&SetRequest {
                            target: target.clone(),
                            admin: admin.map(|a| match a {
                                cli::AdminArg::Down => Admin::Down,
                                cli::AdminArg::Up => Admin::Up,
                            }),
                            netem: netem.clone(),
                            reset: *reset,
                            flap: flap.map(|(down_ms, up_ms)| FlapRequest {
                                down_ms,
                                up_ms,
                                count: *count,
                            }),
                        })
                        .await?
                    }
                    cli::LinkAction::Clear { target } => c.clear(target).await?,
                };
                for l in reply.links {
                    writeln!(out, "{l}").context("write reply")?;
                }
            }
            _ => {}
        }
        Ok(())
    })
}

/// Percent-encodes a query value (`=`, `&`, spaces, non-ASCII).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
