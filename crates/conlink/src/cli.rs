//! Command line (spec §2): every option existing users pass, with
//! environment fallbacks, plus room for subcommands.
//!
//! Shape: `conlink [OPTIONS] [COMMAND]`. Without a command the daemon runs
//! (or `--show-config` prints the config). Options are global, so later
//! subcommands (`graph`, `status`, …) can read the same config options.
//! At least one `--network-file`/`--compose-file` is required unless a
//! subcommand is given (`subcommand_negates_reqs`); missing it is a usage
//! error (exit 2), like every other parse error clap reports.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use conlink_config::{BridgeModeSetting, LoadOptions};

/// Declarative layer 2 and layer 3 links for docker compose containers.
#[derive(Debug, Clone, Parser)]
#[command(name = "conlink", version, about, subcommand_negates_reqs = true)]
#[command(group = clap::ArgGroup::new("config")
    .args(["network_file", "compose_file"])
    .required(true)
    .multiple(true))]
pub struct Cli {
    /// Verbose logs to stderr (env: any value but empty, 0, false, no, off)
    #[arg(short, long, env = "VERBOSE", global = true, action = ArgAction::SetTrue,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub verbose: bool,

    /// Load, validate and enrich the configuration, print it as JSON, exit
    #[arg(long)]
    pub show_config: bool,

    /// Mode of bridges that do not set one (auto: ovs if the openvswitch
    /// module is loaded, else linux)
    #[arg(long, value_enum, value_name = "MODE", env = "CONLINK_BRIDGE_MODE",
          default_value_t = BridgeModeArg::Auto, global = true)]
    pub default_bridge_mode: BridgeModeArg,

    /// MTU of links that do not set one (not for *vlan/*vtap links, which
    /// inherit their parent's)
    #[arg(long, value_name = "MTU", default_value_t = 65535, global = true,
          value_parser = clap::value_parser!(u32).range(68..=65535))]
    pub default_mtu: u32,

    /// Do not turn tx offload off on container veth ends
    #[arg(long, global = true)]
    pub keep_veth_offload: bool,

    /// Network config file (YAML or JSON); repeatable, each value may be a
    /// colon-separated list, several files may follow one flag
    #[arg(long = "network-file", value_name = "FILE", env = "CONLINK_NETWORK_FILE",
          value_delimiter = ':', action = ArgAction::Append, global = true)]
    pub network_file: Vec<String>,

    /// Compose file whose x-network keys hold config; repeatable, each value
    /// may be a colon-separated list, several files may follow one flag
    #[arg(long = "compose-file", value_name = "FILE", env = "CONLINK_COMPOSE_FILE",
          value_delimiter = ':', action = ArgAction::Append, global = true)]
    pub compose_file: Vec<String>,

    /// Largest config file read, in bytes (a bigger one is an error)
    #[arg(long, value_name = "BYTES", env = "CONLINK_CONFIG_MAX_BYTES",
          default_value_t = conlink_config::DEFAULT_MAX_FILE_BYTES, global = true)]
    pub config_max_bytes: u64,

    /// Most YAML/JSON nodes (maps, lists, values) in one config file
    #[arg(long, value_name = "N", env = "CONLINK_CONFIG_MAX_NODES",
          default_value_t = conlink_config::DEFAULT_MAX_NODES, global = true)]
    pub config_max_nodes: usize,

    /// An extra JSON schema the merged config must also satisfy (besides
    /// the built-in one)
    #[arg(
        long,
        value_name = "FILE",
        env = "CONLINK_CONFIG_SCHEMA",
        global = true
    )]
    pub config_schema: Option<PathBuf>,

    /// Compose project whose service links apply (default: conlink's own
    /// project when it runs as a compose service)
    #[arg(long, value_name = "NAME", env = "COMPOSE_PROJECT_NAME", global = true)]
    pub compose_project: Option<String>,

    /// Docker API socket
    #[arg(
        long,
        value_name = "PATH",
        env = "CONLINK_DOCKER_SOCKET",
        default_value = "/var/run/docker.sock",
        global = true
    )]
    pub docker_socket: PathBuf,

    /// Podman API socket (docker-compatible)
    #[arg(
        long,
        value_name = "PATH",
        env = "CONLINK_PODMAN_SOCKET",
        default_value = "/var/run/podman/podman.sock",
        global = true
    )]
    pub podman_socket: PathBuf,

    /// Where the engine's sandbox directory (docker's EXEC_ROOT/netns,
    /// `/var/run/docker/netns`) is mounted in conlink's container: every
    /// container's namespace is opened there, by the file name of its
    /// SandboxKey, instead of through /proc/PID (for conlink as a swarm
    /// service, which has no `pid: host`; docs/multihost.md)
    #[arg(long, value_name = "DIR", env = "CONLINK_SANDBOX_DIR", global = true)]
    pub sandbox_dir: Option<PathBuf>,

    /// Where containers come from: the docker/podman API, or plain network
    /// namespaces that conlink creates itself (one per service replica or
    /// container, no engine needed)
    #[arg(long, value_enum, value_name = "RUNTIME", env = "CONLINK_RUNTIME",
          default_value_t = Runtime::Docker, global = true)]
    pub runtime: Runtime,

    /// netns runtime: replicas of service SVC (default 1); repeatable
    #[arg(long, value_name = "SVC=N", value_parser = parse_scale, action = ArgAction::Append, global = true)]
    pub scale: Vec<Scale>,

    /// Name of conlink's own network namespace when it runs on a host (or
    /// with the netns runtime): created if missing, removed at exit if
    /// conlink created it. Inside a container conlink uses its own.
    #[arg(
        long,
        value_name = "NAME",
        env = "CONLINK_NETNS",
        default_value = "conlink",
        global = true
    )]
    pub netns_name: String,

    /// Multi-host: the address of another host's conlink; every bridge is
    /// stretched to it by a tunnel (docs/multihost.md). Repeatable, each
    /// value may be a comma-separated list; addresses of this host are
    /// ignored, so every host may be given the same list
    #[arg(long = "peer", value_name = "ADDR", env = "CONLINK_PEERS",
          value_delimiter = ',', action = ArgAction::Append)]
    pub peer: Vec<std::net::Ipv4Addr>,

    /// Multi-host on Docker Swarm: the peers are the swarm's ready nodes
    /// (their addresses, from the engine's node list: a manager engine)
    #[arg(long, env = "CONLINK_SWARM")]
    pub swarm: bool,

    /// Multi-host: how bridges are stretched between hosts: `vxlan` (one
    /// device per bridge flooding to every peer), `geneve` or `vxlan-p2p`
    /// (one device per bridge and peer, isolated bridge ports)
    #[arg(long, value_name = "KIND", env = "CONLINK_MESH_TUNNEL", default_value = "vxlan",
          value_parser = parse_mesh_tunnel)]
    pub mesh_tunnel: conlink_core::mesh::MeshTunnel,

    /// Multi-host: UDP port of the tunnels between hosts (default: vxlan
    /// 8472, geneve 6081)
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub mesh_port: Option<u16>,

    /// Multi-host: MTU of the underlay between hosts (the tunnel MTU is 50
    /// bytes less); default: the smallest MTU of the interfaces the routes
    /// to the peers use, else 1500
    #[arg(long, value_name = "MTU",
          value_parser = clap::value_parser!(u32).range(1280..=65535))]
    pub underlay_mtu: Option<u32>,

    /// Daemon: control API unix socket (default /run/conlink/NAME.sock,
    /// NAME the compose project or --netns-name; `off`: none). Clients
    /// (status, events, link): the socket to talk to (default: the one
    /// socket in /run/conlink).
    #[arg(long, value_name = "PATH", env = "CONLINK_SOCKET", global = true)]
    pub socket: Option<PathBuf>,

    /// Daemon: also serve the control API on TCP HOST:PORT (needs
    /// --api-token-file). Clients: talk to this address instead of a socket
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "CONLINK_API_ADDR",
        global = true
    )]
    pub api_addr: Option<String>,

    /// File holding the bearer token of the TCP API (daemon and clients)
    #[arg(
        long,
        value_name = "FILE",
        env = "CONLINK_API_TOKEN_FILE",
        global = true
    )]
    pub api_token_file: Option<PathBuf>,

    /// Serve Prometheus metrics on http://HOST:PORT/metrics (off by default)
    #[arg(long, value_name = "HOST:PORT", env = "CONLINK_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Serve the live topology page on http://HOST:PORT/ (off by default)
    #[arg(long, value_name = "HOST:PORT", env = "CONLINK_WEB_ADDR")]
    pub web_addr: Option<String>,

    /// Subcommand (none: run the daemon)
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands (none: the daemon).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Draw the topology: from the config options, or with none given from
    /// `--show-config` JSON on stdin
    Graph {
        /// Output format
        #[arg(short, long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Write to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show every container and link of a running conlink (state,
    /// addresses, netem, counters), bridges, tunnels, what is pending
    Status {
        /// Print the API's JSON instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Stream a running conlink's events as JSON lines (docker events shape)
    Events {
        /// Start with past events from this time: unix seconds, a duration
        /// back (10m, 1h30m) or RFC 3339 UTC (2026-12-01T20:00:00Z)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events matching KEY=VALUE (type, action, id or an attribute
        /// such as container, service, dev); repeatable
        #[arg(short, long, value_name = "KEY=VALUE", action = ArgAction::Append)]
        filter: Vec<String>,
        /// Print past events and exit instead of following
        #[arg(long)]
        no_follow: bool,
    },
    /// Print what conlink would change for the config options, without
    /// changing anything: against what a conlink made (read from the
    /// kernel by its markers) or from nothing. Exit 0: no change, 2:
    /// changes, 1: error
    Plan {
        /// Print JSON instead of the change lines
        #[arg(long)]
        json: bool,
    },
    /// Change links of a running conlink at run time
    Link {
        /// What to do
        #[command(subcommand)]
        action: LinkAction,
    },
}

/// `conlink link …`.
#[derive(Debug, Clone, Subcommand)]
pub enum LinkAction {
    /// Override links: down/up (both ends), netem parameters, flapping.
    /// Overrides last until `link clear`, across reloads and restarts
    Set {
        /// CONTAINER[:DEV] or SERVICE[:REPLICA][:DEV]
        target: String,
        /// down or up
        #[arg(value_enum)]
        admin: Option<AdminArg>,
        /// netem parameters laid over the configured ones ("delay 50ms loss 1%")
        #[arg(long, value_name = "PARAMS")]
        netem: Option<String>,
        /// Drop the netem override (back to the config)
        #[arg(long)]
        reset: bool,
        /// Flap: down for DOWN, up for UP, repeatedly (e.g. 2s/5s)
        #[arg(long, value_name = "DOWN/UP", value_parser = parse_flap)]
        flap: Option<(u64, u64)>,
        /// Number of flap cycles (default: until cleared)
        #[arg(long, value_name = "N", requires = "flap",
              value_parser = clap::value_parser!(u32).range(1..))]
        count: Option<u32>,
    },
    /// Remove every override of the links (back to the config)
    Clear {
        /// CONTAINER[:DEV] or SERVICE[:REPLICA][:DEV]
        target: String,
    },
}

/// `link set … down|up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminArg {
    /// Administratively down, both ends (the peer sees carrier loss)
    Down,
    /// Back up
    Up,
}

/// `--flap DOWN/UP` in milliseconds.
fn parse_flap(s: &str) -> Result<(u64, u64), String> {
    let (d, u) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected DOWN/UP, e.g. 2s/5s"))?;
    let ms = |v: &str| {
        conlink_control::client::parse_duration(v)
            .map(|d| d.as_millis() as u64)
            .filter(|&m| m > 0)
            .ok_or_else(|| format!("{v:?}: expected a duration above 0 (500ms, 2s, 1m)"))
    };
    Ok((ms(d)?, ms(u)?))
}

/// `graph --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// GraphViz DOT
    Dot,
    /// Mermaid flowchart (renders in GitHub/GitLab markdown)
    Mermaid,
    /// SVG drawn by conlink (no GraphViz needed)
    Svg,
    /// Self-contained HTML page with the SVG and link details on hover
    Html,
}

impl From<GraphFormat> for conlink_graph::Format {
    fn from(f: GraphFormat) -> Self {
        match f {
            GraphFormat::Dot => conlink_graph::Format::Dot,
            GraphFormat::Mermaid => conlink_graph::Format::Mermaid,
            GraphFormat::Svg => conlink_graph::Format::Svg,
            GraphFormat::Html => conlink_graph::Format::Html,
        }
    }
}

/// `--default-bridge-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BridgeModeArg {
    /// ovs if the openvswitch module is loaded, else linux
    Auto,
    /// Linux bridge
    Linux,
    /// Open vSwitch bridge
    Ovs,
    /// Two links joined back-to-back with tc (no bridge)
    Patch,
}

impl From<BridgeModeArg> for BridgeModeSetting {
    fn from(a: BridgeModeArg) -> Self {
        match a {
            BridgeModeArg::Auto => BridgeModeSetting::Auto,
            BridgeModeArg::Linux => BridgeModeSetting::Linux,
            BridgeModeArg::Ovs => BridgeModeSetting::Ovs,
            BridgeModeArg::Patch => BridgeModeSetting::Patch,
        }
    }
}

/// `--runtime` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// Containers from the docker (and podman) API
    Docker,
    /// Network namespaces created by conlink for each service replica and container
    Netns,
}

/// `--scale SVC=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// Service name.
    pub service: String,
    /// Replica count.
    pub replicas: u32,
}

fn parse_mesh_tunnel(s: &str) -> Result<conlink_core::mesh::MeshTunnel, String> {
    s.parse()
}

fn parse_scale(s: &str) -> Result<Scale, String> {
    let (svc, n) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected SVC=N"))?;
    if svc.is_empty() {
        return Err(format!("{s:?}: empty service name"));
    }
    let replicas = n
        .parse::<u32>()
        .map_err(|_| format!("{s:?}: N must be a whole number"))?;
    Ok(Scale {
        service: svc.to_string(),
        replicas,
    })
}

impl Cli {
    /// Network files, colon lists split, empty entries dropped.
    pub fn network_files(&self) -> Vec<PathBuf> {
        paths(&self.network_file)
    }

    /// Compose files, colon lists split, empty entries dropped.
    pub fn compose_files(&self) -> Vec<PathBuf> {
        paths(&self.compose_file)
    }

    /// Replica counts from `--scale` (later values win).
    #[allow(dead_code)] // read by the netns runtime, which the daemon adds
    pub fn scales(&self) -> HashMap<String, u32> {
        self.scale
            .iter()
            .map(|s| (s.service.clone(), s.replicas))
            .collect()
    }

    /// What to hand to `conlink_config::load`. Reads the process environment
    /// (interpolation source) and whether the openvswitch module is loaded.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            compose_files: self.compose_files(),
            network_files: self.network_files(),
            default_bridge_mode: self.default_bridge_mode.into(),
            default_mtu: self.default_mtu,
            keep_veth_offload: self.keep_veth_offload,
            ovs_loaded: std::path::Path::new("/sys/module/openvswitch").exists(),
            env: std::env::vars().collect(),
            max_file_bytes: self.config_max_bytes,
            max_nodes: self.config_max_nodes,
            extra_schemas: self.config_schema.iter().cloned().collect(),
        }
    }

    /// Usage problems clap cannot express: `--network-file ''` or `:` names
    /// no file at all, which would otherwise run with no links.
    pub fn check(&self) -> Result<(), clap::Error> {
        for (flag, v) in [
            ("--network-file", &self.network_file),
            ("--compose-file", &self.compose_file),
        ] {
            if !v.is_empty() && v.iter().all(String::is_empty) {
                return Err(<Self as clap::CommandFactory>::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("{flag} names no file (the value is empty)"),
                ));
            }
        }
        Ok(())
    }

    /// Parses the process arguments ([`normalize_args`] first).
    pub fn parse_args() -> Cli {
        Cli::parse_from(normalize_args(std::env::args_os()))
    }
}

/// Options after which the original's parser (yargs arrays) takes several
/// values: `--compose-file A B --network-file C D`.
const MULTI_VALUE: &[&str] = &["--compose-file", "--network-file"];

/// Rewrites `--compose-file A B` into `--compose-file A --compose-file B`
/// (the original's form; clap's `num_args(1..)` would also swallow a
/// following subcommand name such as `graph`, which this does not). A value
/// run ends at the next word starting with `-`, at a subcommand name, or
/// at `--`.
pub fn normalize_args<I, T>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    use clap::CommandFactory;
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(std::iter::once("help".to_string()))
        .collect();
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let a = args[i].clone();
        i += 1;
        let s = a.to_string_lossy().to_string();
        if s == "--" {
            out.extend(args[i - 1..].iter().cloned());
            break;
        }
        let flag = MULTI_VALUE
            .iter()
            .find(|f| s == **f || s.starts_with(&format!("{f}=")));
        out.push(a);
        let Some(flag) = flag else { continue };
        if s == *flag {
            // The first value belongs to the flag as clap sees it.
            match args.get(i) {
                Some(v) => {
                    out.push(v.clone());
                    i += 1;
                }
                None => continue,
            }
        }
        while let Some(v) = args.get(i) {
            let vs = v.to_string_lossy();
            if vs.starts_with('-') || subcommands.iter().any(|c| *c == vs) {
                break;
            }
            out.push(std::ffi::OsString::from(*flag));
            out.push(v.clone());
            i += 1;
        }
    }
    out
}

fn paths(v: &[String]) -> Vec<PathBuf> {
    v.iter()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("conlink").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repeatable_and_colon_separated_files() {
        let c = parse(&[
            "--network-file",
            "a.yaml:b.json",
            "--network-file=c.yaml",
            "--compose-file",
            "x.yaml::y.yaml:",
            "--compose-file",
            "z.yaml",
        ])
        .unwrap();
        assert_eq!(
            c.network_files(),
            vec![
                PathBuf::from("a.yaml"),
                PathBuf::from("b.json"),
                PathBuf::from("c.yaml")
            ]
        );
        assert_eq!(
            c.compose_files(),
            vec![
                PathBuf::from("x.yaml"),
                PathBuf::from("y.yaml"),
                PathBuf::from("z.yaml")
            ]
        );
    }

    fn parse_norm(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize_args(
            std::iter::once("conlink").chain(args.iter().copied()),
        ))
    }

    #[test]
    fn several_files_after_one_flag_as_the_original_allows() {
        let c = parse_norm(&[
            "--compose-file",
            "a.yaml",
            "b.yaml:c.yaml",
            "--network-file=n1.yaml",
            "n2.yaml",
            "--show-config",
            "--compose-file",
            "d.yaml",
        ])
        .unwrap();
        assert_eq!(
            c.compose_files(),
            ["a.yaml", "b.yaml", "c.yaml", "d.yaml"].map(PathBuf::from)
        );
        assert_eq!(c.network_files(), ["n1.yaml", "n2.yaml"].map(PathBuf::from));
        assert!(c.show_config);
        // A subcommand after the files is still the subcommand.
        let c = parse_norm(&["--compose-file", "a.yaml", "b.yaml", "graph", "-f", "svg"]).unwrap();
        assert_eq!(c.compose_files(), ["a.yaml", "b.yaml"].map(PathBuf::from));
        assert!(matches!(c.command, Some(Command::Graph { .. })));
        // Without normalizing, clap alone refuses the second file.
        assert!(parse(&["--compose-file", "a.yaml", "b.yaml"]).is_err());
    }

    #[test]
    fn config_schema_reaches_the_load_options() {
        let c = parse(&["--compose-file", "c.yaml", "--config-schema", "s.json"]).unwrap();
        assert_eq!(
            c.load_options().extra_schemas,
            vec![PathBuf::from("s.json")]
        );
        let c = parse(&["--compose-file", "c.yaml"]).unwrap();
        assert!(c.load_options().extra_schemas.is_empty());
    }

    #[test]
    fn defaults() {
        let c = parse(&["--compose-file", "c.yaml"]).unwrap();
        assert!(!c.verbose && !c.show_config && !c.keep_veth_offload);
        assert_eq!(c.default_bridge_mode, BridgeModeArg::Auto);
        assert_eq!(c.default_mtu, 65535);
        assert_eq!(c.docker_socket, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(
            c.podman_socket,
            PathBuf::from("/var/run/podman/podman.sock")
        );
        assert_eq!(c.runtime, Runtime::Docker);
        assert!(c.scale.is_empty());
        assert!(c.command.is_none());
        assert!(c.metrics_addr.is_none() && c.web_addr.is_none() && c.api_addr.is_none());
        assert_eq!(c.mesh_tunnel, conlink_core::mesh::MeshTunnel::Vxlan);
        assert_eq!((c.mesh_port, c.underlay_mtu), (None, None));
    }

    #[test]
    fn mesh_options() {
        use conlink_core::mesh::MeshTunnel;
        for (v, k) in [
            ("vxlan", MeshTunnel::Vxlan),
            ("vxlan-p2p", MeshTunnel::VxlanP2p),
            ("geneve", MeshTunnel::Geneve),
        ] {
            let c = parse(&[
                "--compose-file",
                "c",
                "--peer",
                "10.0.0.2",
                "--mesh-tunnel",
                v,
            ])
            .unwrap();
            assert_eq!(c.mesh_tunnel, k);
        }
        let c = parse(&[
            "--compose-file",
            "c",
            "--mesh-port",
            "7000",
            "--underlay-mtu",
            "9000",
        ])
        .unwrap();
        assert_eq!((c.mesh_port, c.underlay_mtu), (Some(7000), Some(9000)));
        let e = parse(&["--compose-file", "c", "--mesh-tunnel", "gre"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("expected vxlan, vxlan-p2p or geneve"),
            "{e}"
        );
        for bad in [
            &["--compose-file", "c", "--mesh-port", "0"][..],
            &["--compose-file", "c", "--underlay-mtu", "1000"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn control_subcommands() {
        let c = parse(&["link", "set", "node:1:eth0", "down"]).unwrap();
        match c.command {
            Some(Command::Link {
                action: LinkAction::Set { target, admin, .. },
            }) => {
                assert_eq!(target, "node:1:eth0");
                assert_eq!(admin, Some(AdminArg::Down));
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&["link", "set", "r1", "--flap", "500ms/2s", "--count", "3"]).unwrap();
        match c.command {
            Some(Command::Link {
                action: LinkAction::Set { flap, count, .. },
            }) => assert_eq!((flap, count), (Some((500, 2000)), Some(3))),
            other => panic!("{other:?}"),
        }
        let c = parse(&["--socket", "/x.sock", "status", "--json"]).unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/x.sock")));
        assert!(matches!(c.command, Some(Command::Status { json: true })));
        let c = parse(&[
            "events",
            "--since",
            "10m",
            "-f",
            "type=link",
            "-f",
            "dev=eth0",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Events { ref filter, .. }) if filter.len() == 2));
        for bad in [
            &["link", "set", "x", "sideways"][..],
            &["link", "set", "x", "--flap", "2s"],
            &["link", "set", "x", "--flap", "0s/1s"],
            &["link", "set", "x", "--count", "3"],
            &["link", "set", "x", "--flap", "1s/1s", "--count", "0"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn every_option_parses() {
        let c = parse(&[
            "-v",
            "--show-config",
            "--default-bridge-mode",
            "patch",
            "--default-mtu",
            "9000",
            "--keep-veth-offload",
            "--network-file",
            "n.yaml",
            "--compose-project",
            "proj",
            "--docker-socket",
            "/d.sock",
            "--podman-socket",
            "/p.sock",
            "--sandbox-dir",
            "/run/engine-netns",
            "--runtime",
            "netns",
            "--scale",
            "node=3",
            "--scale",
            "web=0",
        ])
        .unwrap();
        assert!(c.verbose && c.show_config && c.keep_veth_offload);
        assert_eq!(c.default_bridge_mode, BridgeModeArg::Patch);
        assert_eq!(c.default_mtu, 9000);
        assert_eq!(c.compose_project.as_deref(), Some("proj"));
        assert_eq!(c.docker_socket, PathBuf::from("/d.sock"));
        assert_eq!(c.podman_socket, PathBuf::from("/p.sock"));
        assert_eq!(c.sandbox_dir, Some(PathBuf::from("/run/engine-netns")));
        assert_eq!(c.runtime, Runtime::Netns);
        assert_eq!(
            c.scales(),
            HashMap::from([("node".into(), 3), ("web".into(), 0)])
        );
        let o = c.load_options();
        assert_eq!(o.default_bridge_mode, BridgeModeSetting::Patch);
        assert_eq!(o.default_mtu, 9000);
        assert!(o.keep_veth_offload);
    }

    #[test]
    fn usage_errors() {
        use clap::error::ErrorKind;
        // no config file at all
        let e = parse(&["--show-config"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(e.exit_code(), 2);
        for bad in [
            &["--compose-file", "c", "--default-bridge-mode", "fast"][..],
            &["--compose-file", "c", "--default-mtu", "10"],
            &["--compose-file", "c", "--default-mtu", "70000"],
            &["--compose-file", "c", "--scale", "node"],
            &["--compose-file", "c", "--scale", "node=x"],
            &["--compose-file", "c", "--scale", "=2"],
            &["--compose-file", "c", "--runtime", "lxc"],
            &["--compose-file", "c", "--bogus"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
