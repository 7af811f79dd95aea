//! `conlink-start`: runs the conlink image against existing containers
//! without compose, with docker or podman.
//!
//! The command built is the compose service of spec §1 as a `run`:
//!
//! ```text
//! ENGINE run --rm --name NAME [-d] --pid host --network none
//!   --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_NICE
//!   --cap-add NET_BROADCAST --cap-add IPC_LOCK --security-opt apparmor=unconfined
//!   -v SOCKET:/var/run/docker.sock            (podman: /var/run/podman/podman.sock)
//!   -v /abs/file:/abs/file:ro ...             (each config file, same path inside)
//!   IMAGE /app/build/conlink.js --network-file /abs/file ... [CONLINK ARGS]
//! ```
//!
//! Config files are mounted at their absolute host path so that paths in
//! conlink's messages are the user's paths.
//!
//! The original launcher's interface ([`Launch::original`]) differs in
//! three ways: everything after `--` goes to `ENGINE run` (before the
//! image) instead of to conlink; no `--rm`/`--name` are added (its
//! documented command passes them itself); and the engine whose containers
//! conlink wires (`--host-mode`, [`HostMode`]) can differ from the one that
//! runs conlink (`--mode`):
//!
//! ```text
//! ENGINE run [--name N] [-d] [--privileged] [--pid host] --network none
//!   --cap-add ... --security-opt apparmor=unconfined
//!   [-v HOST_SOCKET:INNER_SOCKET] -v /abs/file:/abs/file:ro ...
//!   RUN ARGS... IMAGE /app/build/conlink.js [-v] --network-file /abs/file ...
//!   [--compose-project P] [CONLINK ARGS]
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cli::Failure;
use crate::error::{Error, Result};

/// Capabilities the conlink container needs (spec §1).
pub const CAPABILITIES: [&str; 5] = [
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_NICE",
    "NET_BROADCAST",
    "IPC_LOCK",
];

/// The container engine to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `docker`.
    Docker,
    /// `podman`.
    Podman,
}

impl Engine {
    /// Program name.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// Default API socket on the host.
    pub fn default_socket(self) -> &'static str {
        match self {
            Engine::Docker => "/var/run/docker.sock",
            Engine::Podman => "/run/podman/podman.sock",
        }
    }

    /// Where conlink looks for this engine's socket inside its container
    /// (its `--docker-socket` / `--podman-socket` defaults, spec §2).
    pub fn socket_in_container(self) -> &'static str {
        match self {
            Engine::Docker => "/var/run/docker.sock",
            Engine::Podman => "/var/run/podman/podman.sock",
        }
    }

    /// The host socket to mount by default: docker's fixed path; podman's
    /// system socket for root, else the rootless one under
    /// `XDG_RUNTIME_DIR` (`/run/user/UID` when unset), where
    /// `podman system service` puts it for a user.
    pub fn host_socket(self, euid: u32, xdg_runtime_dir: Option<&str>) -> PathBuf {
        match (self, euid) {
            (Engine::Podman, uid) if uid != 0 => {
                let base = xdg_runtime_dir
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
                base.join("podman/podman.sock")
            }
            _ => PathBuf::from(self.default_socket()),
        }
    }

    /// `docker` if found in `PATH`, else `podman` if found, else `docker`.
    pub fn detect() -> Engine {
        if in_path("docker") {
            Engine::Docker
        } else if in_path("podman") {
            Engine::Podman
        } else {
            Engine::Docker
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker" => Ok(Engine::Docker),
            "podman" => Ok(Engine::Podman),
            other => Err(Error::Invalid(format!(
                "unknown engine {other:?} (expected docker or podman)"
            ))),
        }
    }
}

/// The engine whose containers conlink wires (the original's
/// `--host-mode`): its API socket is mounted and the container shares the
/// host's PID namespace (to reach the containers' namespaces). `None`: no
/// socket, no `--pid host` (conlink then only builds its own namespace:
/// bridges, tunnels, or `--runtime netns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// Containers of this engine.
    Engine(Engine),
    /// No engine.
    None,
}

impl std::str::FromStr for HostMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(HostMode::None),
            other => other.parse().map(HostMode::Engine).map_err(|_| {
                Error::Invalid(format!(
                    "unknown host mode {other:?} (expected docker, podman or none)"
                ))
            }),
        }
    }
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Engine that runs the conlink container (`-e`, `--mode`).
    pub engine: Engine,
    /// Engine whose containers conlink wires (`--host-mode`); `None` here
    /// means the same as `engine`.
    pub host_mode: Option<HostMode>,
    /// Image (default `conlink`).
    pub image: String,
    /// Container name (`--name`; `conlink` by default in the current
    /// interface, none in the original's).
    pub name: Option<String>,
    /// Add `--rm` (the current interface; the original's passes it itself).
    pub rm: bool,
    /// `--network-file` values (each may be a colon list).
    pub network_files: Vec<String>,
    /// `--compose-file` values (each may be a colon list).
    pub compose_files: Vec<String>,
    /// Engine API socket on the host (default: [`Engine::host_socket`] of
    /// the host engine, for `euid`).
    pub socket: Option<PathBuf>,
    /// Run in the background (`-d`).
    pub detach: bool,
    /// Add `--privileged` (rootless podman: see [`Launch::needs_privileged`]).
    pub privileged: bool,
    /// Program to run in the image (default `/app/build/conlink.js`).
    pub entry: String,
    /// Pass `-v` to conlink (`-v`/`--verbose` of the original interface).
    pub verbose: bool,
    /// Pass `--compose-project NAME` to conlink.
    pub compose_project: Option<String>,
    /// Arguments for `ENGINE run`, before the image (the original's `--`).
    pub run_args: Vec<OsString>,
    /// Further arguments for conlink.
    pub conlink_args: Vec<OsString>,
    /// Effective user id of the caller: picks podman's rootless socket.
    pub euid: u32,
    /// `XDG_RUNTIME_DIR` of the caller (rootless podman's socket lives there).
    pub xdg_runtime_dir: Option<String>,
}

impl Launch {
    /// The current interface's defaults for `engine`: image and name
    /// `conlink`, `--rm`, no files, run as root.
    pub fn new(engine: Engine) -> Self {
        Launch {
            engine,
            host_mode: None,
            image: "conlink".into(),
            name: Some("conlink".into()),
            rm: true,
            network_files: Vec::new(),
            compose_files: Vec::new(),
            socket: None,
            detach: false,
            privileged: false,
            entry: "/app/build/conlink.js".into(),
            verbose: false,
            compose_project: None,
            run_args: Vec::new(),
            conlink_args: Vec::new(),
            euid: 0,
            xdg_runtime_dir: None,
        }
    }

    /// The original launcher's defaults: as [`Launch::new`], but no `--rm`
    /// and no `--name` (its users pass them after `--`).
    pub fn original(engine: Engine) -> Self {
        Launch {
            name: None,
            rm: false,
            ..Launch::new(engine)
        }
    }

    /// Whether the original would add `--privileged`: podman run by a user
    /// other than root. Rootless podman's containers get capabilities only
    /// within the user's namespace, and conlink needs more of the
    /// container's environment (e.g. writable `/proc/sys`) than `--cap-add`
    /// grants there. Docker's daemon runs as root whoever calls it, so a
    /// docker user needs nothing more.
    pub fn needs_privileged(engine: Engine, euid: u32) -> bool {
        engine == Engine::Podman && euid != 0
    }

    /// The engine whose containers conlink wires.
    pub fn effective_host_mode(&self) -> HostMode {
        self.host_mode.unwrap_or(HostMode::Engine(self.engine))
    }

    /// The engine command line. Config files must exist (they are made
    /// absolute); at least one is required, as for conlink itself.
    pub fn argv(&self) -> Result<Vec<OsString>> {
        let mut files: Vec<(&str, PathBuf)> = Vec::new();
        for (flag, values) in [
            ("--network-file", &self.network_files),
            ("--compose-file", &self.compose_files),
        ] {
            for value in values {
                for part in value.split(':').filter(|p| !p.is_empty()) {
                    files.push((flag, absolute(Path::new(part))?));
                }
            }
        }
        if files.is_empty() {
            return Err(Error::Invalid(
                "at least one --network-file or --compose-file is required".into(),
            ));
        }
        let mut argv: Vec<OsString> = vec![self.engine.program().into(), "run".into()];
        if self.rm {
            argv.push("--rm".into());
        }
        if let Some(name) = &self.name {
            argv.extend(["--name".into(), OsString::from(name)]);
        }
        if self.detach {
            argv.push("-d".into());
        }
        if self.privileged {
            argv.push("--privileged".into());
        }
        let host = self.effective_host_mode();
        if let HostMode::Engine(_) = host {
            argv.extend(["--pid", "host"].map(OsString::from));
        }
        argv.extend(["--network", "none"].map(OsString::from));
        for cap in CAPABILITIES {
            argv.extend(["--cap-add", cap].map(OsString::from));
        }
        argv.extend(["--security-opt", "apparmor=unconfined"].map(OsString::from));
        if let HostMode::Engine(host_engine) = host {
            let socket = self.socket.clone().unwrap_or_else(|| {
                host_engine.host_socket(self.euid, self.xdg_runtime_dir.as_deref())
            });
            let mut sock = socket.into_os_string();
            sock.push(":");
            sock.push(host_engine.socket_in_container());
            argv.extend(["-v".into(), sock]);
        }
        let mut mounted: Vec<&PathBuf> = Vec::new();
        for (_, path) in &files {
            if mounted.contains(&path) {
                continue;
            }
            mounted.push(path);
            let mut m = path.clone().into_os_string();
            m.push(":");
            m.push(path);
            m.push(":ro");
            argv.extend(["-v".into(), m]);
        }
        argv.extend(self.run_args.iter().cloned());
        argv.push(OsString::from(&self.image));
        argv.push(OsString::from(&self.entry));
        // conlink refuses a second -v (clap: "cannot be used multiple times").
        let has_v = self
            .conlink_args
            .iter()
            .any(|a| a == "-v" || a == "--verbose");
        if self.verbose && !has_v {
            argv.push("-v".into());
        }
        for (flag, path) in files {
            argv.extend([OsString::from(flag), path.into_os_string()]);
        }
        if let Some(project) = &self.compose_project {
            argv.extend(["--compose-project".into(), OsString::from(project)]);
        }
        argv.extend(self.conlink_args.iter().cloned());
        Ok(argv)
    }
}

/// Truthiness of a boolean environment variable, as conlink reads
/// `VERBOSE`: set to anything but empty, `0`, `false`, `no`, `off`
/// (any case).
pub fn env_flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "false" | "no" | "off")
    })
}

/// Usage text of `conlink-start`.
pub const USAGE: &str = "usage: conlink-start [OPTIONS] [-- CONLINK ARGS...]
       conlink-start [-v] [--mode M] [--host-mode H] [OPTIONS] [-- RUN ARGS...]
Runs the conlink image (host pid, needed capabilities, engine socket and
config files mounted) against containers that already exist.
  -n, --network-file F   network config file (repeatable; colon lists allowed;
                         env NETWORK_FILE, NETWORK_FILES)
  -c, --compose-file F   compose file with x-network keys (repeatable;
                         env COMPOSE_FILE, COMPOSE_FILES)
  -e, --engine, --mode M engine that runs conlink: docker or podman (env
                         CONLINK_ENGINE, then MODE; default: the first found
                         in PATH, docker first)
      --host-mode H      engine whose containers conlink wires: docker,
                         podman or none (env HOST_MODE; default: --mode)
  -i, --image IMAGE      image to run (env CONLINK_IMAGE, then IMAGE;
                         default conlink)
      --name NAME        container name (default conlink; original: none)
  -s, --socket PATH      host engine's API socket (default: the engine's)
      --entry PROGRAM    program in the image (default /app/build/conlink.js)
  -d, --detach           run in the background
  -v, --verbose          print the command; conlink -v (env VERBOSE)
      --compose-project P  conlink --compose-project P (env COMPOSE_PROJECT)
      --dry-run          print the command instead of running it (env DRY_RUN)
The original launcher's interface is used when any of --mode, --host-mode,
-v, --compose-project or an option unknown here is given (or MODE or
HOST_MODE is set): then unknown options and other arguments go to conlink,
and everything after -- goes to 'ENGINE run' (no --rm or --name added).
Otherwise the first argument that is not an option, or everything after --,
goes to conlink.";

/// A parsed `conlink-start` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartArgs {
    /// What to run.
    pub launch: Launch,
    /// `--dry-run` / `DRY_RUN`: print the command instead.
    pub dry_run: bool,
    /// `-h`/`--help`.
    pub help: bool,
    /// The original launcher's interface was selected.
    pub original: bool,
}

/// The caller's environment as far as `conlink-start` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartEnv {
    /// Environment variable lookup results, by name (empty values dropped).
    pub vars: Vec<(String, String)>,
    /// Effective user id.
    pub euid: u32,
    /// Engine found in `PATH` when none is chosen.
    pub detected: Option<Engine>,
}

/// Variables `conlink-start` reads.
pub const ENV_VARS: [&str; 13] = [
    "CONLINK_ENGINE",
    "CONLINK_IMAGE",
    "MODE",
    "HOST_MODE",
    "IMAGE",
    "VERBOSE",
    "DRY_RUN",
    "NETWORK_FILE",
    "NETWORK_FILES",
    "COMPOSE_FILE",
    "COMPOSE_FILES",
    "COMPOSE_PROJECT",
    "XDG_RUNTIME_DIR",
];

impl StartEnv {
    /// Reads [`ENV_VARS`], the euid, and which engine is in `PATH`.
    pub fn from_process() -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|k| {
                let v = std::env::var(k).ok()?;
                (!v.is_empty()).then(|| (k.to_string(), v))
            })
            .collect();
        StartEnv {
            vars,
            // SAFETY: geteuid cannot fail.
            euid: unsafe { libc::geteuid() },
            detected: Some(Engine::detect()),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `conlink-start`'s arguments (without the program name) in the
/// current or the original launcher's interface (see [`USAGE`]). Options
/// win over the environment.
pub fn parse_start_args(
    args: impl IntoIterator<Item = OsString>,
    env: &StartEnv,
) -> std::result::Result<StartArgs, Failure> {
    use lexopt::prelude::*;
    let usage = |e: Error| Failure::Usage(e.to_string());
    let env_usage = |var: &str, e: Error| Failure::Usage(format!("{var}: {e}"));
    let mut original = env.get("MODE").is_some() || env.get("HOST_MODE").is_some();
    let mut engine: Option<Engine> = None;
    let mut host_mode: Option<HostMode> = None;
    let mut image: Option<String> = None;
    let mut name: Option<String> = None;
    let mut verbose = false;
    let mut dry_run = false;
    let mut help = false;
    let mut detach = false;
    let mut socket: Option<PathBuf> = None;
    let mut entry: Option<String> = None;
    let mut project: Option<String> = None;
    let (mut network_files, mut compose_files) = (Vec::new(), Vec::new());
    let (mut conlink_args, mut run_args): (Vec<OsString>, Vec<OsString>) = (Vec::new(), Vec::new());
    let mut p = lexopt::Parser::from_args(args);
    loop {
        // A "--" at an argument boundary (not an option's value) ends the
        // options; lexopt would swallow it silently.
        if let Some(mut raw) = p.try_raw_args() {
            if raw.peek().is_some_and(|a| a == "--") {
                raw.next();
                let rest: Vec<OsString> = raw.collect();
                if original {
                    run_args = rest;
                } else {
                    conlink_args.extend(rest);
                }
                break;
            }
        }
        let Some(arg) = p.next()? else { break };
        match arg {
            Short('n') | Long("network-file") => network_files.push(p.value()?.string()?),
            Short('c') | Long("compose-file") => compose_files.push(p.value()?.string()?),
            Short('e') | Long("engine") => {
                engine = Some(p.value()?.string()?.parse().map_err(usage)?)
            }
            Long("mode") => {
                original = true;
                engine = Some(p.value()?.string()?.parse().map_err(usage)?);
            }
            Long("host-mode") => {
                original = true;
                host_mode = Some(p.value()?.string()?.parse().map_err(usage)?);
            }
            Short('v') | Long("verbose") => {
                original = true;
                verbose = true;
            }
            Long("compose-project") => {
                original = true;
                project = Some(p.value()?.string()?);
            }
            Short('i') | Long("image") => image = Some(p.value()?.string()?),
            Long("name") => name = Some(p.value()?.string()?),
            Short('s') | Long("socket") => socket = Some(p.value()?.into()),
            Long("entry") => entry = Some(p.value()?.string()?),
            Short('d') | Long("detach") => detach = true,
            Long("dry-run") => dry_run = true,
            Short('h') | Long("help") => help = true,
            Value(v) if original => conlink_args.push(v),
            Value(v) => {
                // The current interface: the first plain argument starts
                // conlink's arguments, verbatim.
                conlink_args.push(v);
                conlink_args.extend(p.raw_args()?);
                break;
            }
            Long(opt) => {
                // Unknown: the original passes it on to conlink, with an
                // attached value if any (`--default-mtu=1500`); a separate
                // value follows as a plain argument.
                original = true;
                let mut a = OsString::from(format!("--{opt}"));
                if let Some(v) = p.optional_value() {
                    a.push("=");
                    a.push(v);
                }
                conlink_args.push(a);
            }
            Short(c) => {
                original = true;
                let mut a = OsString::from(format!("-{c}"));
                if let Some(v) = p.optional_value() {
                    a.push(v);
                }
                conlink_args.push(a);
            }
        }
    }
    let engine = match engine {
        Some(e) => e,
        None => match (env.get("CONLINK_ENGINE"), env.get("MODE")) {
            (Some(v), _) => v.parse().map_err(|e| env_usage("CONLINK_ENGINE", e))?,
            (None, Some(v)) => v.parse().map_err(|e| env_usage("MODE", e))?,
            (None, None) => env.detected.unwrap_or(Engine::Docker),
        },
    };
    let host_mode = match (host_mode, env.get("HOST_MODE")) {
        (Some(h), _) => Some(h),
        (None, Some(v)) => Some(v.parse().map_err(|e| env_usage("HOST_MODE", e))?),
        (None, None) => None,
    };
    let mut launch = if original {
        Launch::original(engine)
    } else {
        Launch::new(engine)
    };
    launch.host_mode = host_mode;
    if let Some(i) = image
        .or_else(|| env.get("CONLINK_IMAGE").map(str::to_string))
        .or_else(|| env.get("IMAGE").map(str::to_string))
    {
        launch.image = i;
    }
    if name.is_some() {
        launch.name = name;
    }
    if network_files.is_empty() {
        network_files.extend(
            ["NETWORK_FILE", "NETWORK_FILES"]
                .iter()
                .filter_map(|k| env.get(k).map(str::to_string)),
        );
    }
    if compose_files.is_empty() {
        compose_files.extend(
            ["COMPOSE_FILE", "COMPOSE_FILES"]
                .iter()
                .filter_map(|k| env.get(k).map(str::to_string)),
        );
    }
    launch.network_files = network_files;
    launch.compose_files = compose_files;
    launch.socket = socket;
    launch.detach = detach;
    if let Some(e) = entry {
        launch.entry = e;
    }
    launch.verbose = verbose || env_flag(env.get("VERBOSE"));
    launch.compose_project = project.or_else(|| env.get("COMPOSE_PROJECT").map(str::to_string));
    launch.run_args = run_args;
    launch.conlink_args = conlink_args;
    launch.euid = env.euid;
    launch.xdg_runtime_dir = env.get("XDG_RUNTIME_DIR").map(str::to_string);
    launch.privileged = Launch::needs_privileged(engine, env.euid);
    Ok(StartArgs {
        launch,
        dry_run: dry_run || env_flag(env.get("DRY_RUN")),
        help,
        original,
    })
}

/// `path` made absolute (lexically, without resolving symlinks: mounting
/// a symlink mounts its target); the file must exist.
fn absolute(path: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read config file", path, e))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "config file {} is not a regular file",
            path.display()
        )));
    }
    std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))
}

/// Quotes an argument for a POSIX shell when needed (for `--dry-run`).
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b.yaml"), "/a/b.yaml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn needs_a_config_file() {
        let err = Launch::new(Engine::Docker).argv().unwrap_err().to_string();
        assert!(err.contains("--network-file"), "{err}");
        let mut l = Launch::new(Engine::Docker);
        l.network_files.push("/nonexistent/conlink.yaml".into());
        let err = l.argv().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/conlink.yaml"), "{err}");
    }

    #[test]
    fn engine_names() {
        assert_eq!("podman".parse::<Engine>().unwrap(), Engine::Podman);
        assert!("lxc".parse::<Engine>().is_err());
        assert_eq!("none".parse::<HostMode>().unwrap(), HostMode::None);
        assert_eq!(
            "docker".parse::<HostMode>().unwrap(),
            HostMode::Engine(Engine::Docker)
        );
        let err = "lxc".parse::<HostMode>().unwrap_err().to_string();
        assert!(err.contains("docker, podman or none"), "{err}");
    }

    #[test]
    fn sockets_for_root_and_rootless() {
        let p = |e: Engine, uid, xdg| e.host_socket(uid, xdg).display().to_string();
        assert_eq!(p(Engine::Docker, 1000, None), "/var/run/docker.sock");
        assert_eq!(p(Engine::Podman, 0, Some("/x")), "/run/podman/podman.sock");
        assert_eq!(
            p(Engine::Podman, 1000, None),
            "/run/user/1000/podman/podman.sock"
        );
        assert_eq!(p(Engine::Podman, 1000, Some("/x")), "/x/podman/podman.sock");
        assert!(Launch::needs_privileged(Engine::Podman, 1000));
        assert!(!Launch::needs_privileged(Engine::Podman, 0));
        assert!(!Launch::needs_privileged(Engine::Docker, 1000));
    }

    #[test]
    fn original_layout_host_mode_none() {
        let dir = std::env::temp_dir().join(format!("conlink-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("n.yaml");
        std::fs::write(&f, "links: []\n").unwrap();
        let mut l = Launch::original(Engine::Podman);
        l.host_mode = Some(HostMode::None);
        l.network_files.push(f.display().to_string());
        l.verbose = true;
        l.privileged = true;
        l.compose_project = Some("p".into());
        l.run_args = vec!["--name".into(), "x".into()];
        l.conlink_args = vec!["--runtime".into(), "netns".into()];
        let argv: Vec<String> = l
            .argv()
            .unwrap()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let f = f.display().to_string();
        let mut want = vec!["podman", "run", "--privileged", "--network", "none"];
        for cap in CAPABILITIES {
            want.extend(["--cap-add", cap]);
        }
        let mount = format!("{f}:{f}:ro");
        want.extend(["--security-opt", "apparmor=unconfined", "-v", &mount]);
        want.extend(["--name", "x", "conlink", "/app/build/conlink.js", "-v"]);
        want.extend(["--network-file", &f, "--compose-project", "p"]);
        want.extend(["--runtime", "netns"]);
        assert_eq!(argv, want);
        assert!(env_flag(Some("1")));
        for off in [
            None,
            Some(""),
            Some("0"),
            Some("False"),
            Some("no"),
            Some("off"),
        ] {
            assert!(!env_flag(off), "{off:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
