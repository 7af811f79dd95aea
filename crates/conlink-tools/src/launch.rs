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

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Engine to use.
    pub engine: Engine,
    /// Image (default `conlink`).
    pub image: String,
    /// Container name (default `conlink`).
    pub name: String,
    /// `--network-file` values (each may be a colon list).
    pub network_files: Vec<String>,
    /// `--compose-file` values (each may be a colon list).
    pub compose_files: Vec<String>,
    /// Engine API socket on the host (default: the engine's).
    pub socket: Option<PathBuf>,
    /// Run in the background (`-d`).
    pub detach: bool,
    /// Program to run in the image (default `/app/build/conlink.js`).
    pub entry: String,
    /// Further arguments for conlink.
    pub conlink_args: Vec<OsString>,
}

impl Launch {
    /// Defaults for `engine`: image and name `conlink`, no files.
    pub fn new(engine: Engine) -> Self {
        Launch {
            engine,
            image: "conlink".into(),
            name: "conlink".into(),
            network_files: Vec::new(),
            compose_files: Vec::new(),
            socket: None,
            detach: false,
            entry: "/app/build/conlink.js".into(),
            conlink_args: Vec::new(),
        }
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
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(self.engine.default_socket()));
        let mut argv: Vec<OsString> =
            vec![self.engine.program().into(), "run".into(), "--rm".into()];
        argv.extend(["--name".into(), OsString::from(&self.name)]);
        if self.detach {
            argv.push("-d".into());
        }
        argv.extend(["--pid", "host", "--network", "none"].map(OsString::from));
        for cap in CAPABILITIES {
            argv.extend(["--cap-add", cap].map(OsString::from));
        }
        argv.extend(["--security-opt", "apparmor=unconfined"].map(OsString::from));
        let mut sock = socket.into_os_string();
        sock.push(":");
        sock.push(self.engine.socket_in_container());
        argv.extend(["-v".into(), sock]);
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
        argv.push(OsString::from(&self.image));
        argv.push(OsString::from(&self.entry));
        for (flag, path) in files {
            argv.extend([OsString::from(flag), path.into_os_string()]);
        }
        argv.extend(self.conlink_args.iter().cloned());
        Ok(argv)
    }
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
    }
}
