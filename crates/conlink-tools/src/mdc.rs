//! `mdc`: modular compose (spec §9).
//!
//! A modes directory holds one directory per mode. A mode may have a `deps`
//! file (see [`crate::deps`]), an `env` or `.env` file, a compose file
//! (`compose.yaml`, `compose.yml`, `docker-compose.yaml`,
//! `docker-compose.yml`: the first found) and `<svc>/files/` trees. [`run`]
//! resolves the requested modes and writes:
//!
//! * the env file (default `.env`), atomically:
//!   ```text
//!   # mdc MODES ARGS...                      (the command line)
//!   MDC_MODE_<name>=enabled                  (for each mode in resolution
//!   <that mode's env file>                    order: the flag first, so the
//!                                             env text can use ${MDC_MODE_x})
//!   COMPOSE_FILE=./.compose-empty.yaml:<each mode's compose file>
//!   COMPOSE_DIR=<absolute directory of the env file>
//!   COMPOSE_PROFILES=MODE_<name>,...
//!   MDC_MODE_DIRS=<mode dir>,...
//!   ```
//!   In `MDC_MODE_<name>` every character other than an ASCII letter or digit
//!   becomes `_`; profile names keep the mode name as it is (compose allows
//!   `-` and `.` there).
//! * `.compose-empty.yaml` in the current directory: an empty base compose
//!   file, first in `COMPOSE_FILE`, so that compose anchors relative paths
//!   at the top directory rather than at the first mode's directory.
//! * the files directory (default `.files`), recreated: every
//!   `<mode>/<svc>/files/` tree is copied into `.files/<svc>/` in resolution
//!   order, later modes overwriting earlier files.
//!
//! A mode named on the command line (a plain name, not an `a|b`
//! alternative) that has no directory is an empty mode, with a warning (as
//! in the original): it gets its `MDC_MODE_<name>` and `MODE_<name>`
//! profile, and nothing else (no `MDC_MODE_DIRS` entry: there is no
//! directory). A missing mode named in a `deps` file stays an error.
//!
//! Everything that can be checked is checked before anything is written.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::deps::{self, Graph, Node};
use crate::error::{Error, Result};
use crate::tree;

/// Compose file names looked for in a mode directory, in this order.
pub const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The empty base compose file written next to the env file's users.
pub const EMPTY_COMPOSE: &str = "./.compose-empty.yaml";

/// Contents of the empty base compose file.
pub const EMPTY_COMPOSE_TEXT: &str =
    "# Written by mdc: empty base so that relative paths anchor here.\nservices: {}\n";

/// Settings of an mdc run (environment variables of the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `MODES_DIR`: modes directory (or a colon/comma list of sources as in
    /// `resolve-deps`); default `./modes`.
    pub modes_dir: String,
    /// `ENV_FILE`: default `.env`.
    pub env_file: PathBuf,
    /// `MDC_FILES_DIR`: default `./.files`.
    pub files_dir: PathBuf,
    /// `DOCKER_COMPOSE`, split on whitespace: default `docker compose`.
    pub compose_cmd: Vec<String>,
}

impl Settings {
    /// Reads the settings from the environment, with the defaults above.
    pub fn from_env() -> Self {
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_string())
        };
        Settings {
            modes_dir: var("MODES_DIR", "./modes"),
            env_file: var("ENV_FILE", ".env").into(),
            files_dir: var("MDC_FILES_DIR", "./.files").into(),
            compose_cmd: var("DOCKER_COMPOSE", "docker compose")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        }
    }
}

/// What [`run`] wrote.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The resolved modes, in order.
    pub modes: Vec<Node>,
    /// The env file text that was written.
    pub env_text: String,
    /// Files copied into the files directory.
    pub files: usize,
    /// Requested modes without a directory, used as empty modes.
    pub empty_modes: Vec<String>,
}

/// `MDC_MODE_<name>` variable name for a mode.
pub fn mode_var(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("MDC_MODE_{clean}")
}

/// The first compose file present in a mode directory.
pub fn compose_file(mode_dir: &Path) -> Option<PathBuf> {
    COMPOSE_NAMES
        .iter()
        .map(|n| mode_dir.join(n))
        .find(|p| p.is_file())
}

/// The mode's env file (`env`, else `.env`), if any.
pub fn env_file(mode_dir: &Path) -> Option<PathBuf> {
    ["env", ".env"]
        .iter()
        .map(|n| mode_dir.join(n))
        .find(|p| p.is_file())
}

/// `path` made absolute, `.` parts dropped, symlinks not resolved.
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("read", ".", e))?
            .join(path)
    };
    Ok(abs
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

/// `path` made absolute with symlinks resolved, also when its last parts do
/// not exist yet: the longest existing ancestor is canonicalized and the
/// rest appended (the files directory is usually created by the run).
fn resolved(path: &Path) -> Result<PathBuf> {
    let abs = absolute(path)?;
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(real) = fs::canonicalize(base) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Ok(out);
        }
        match (base.file_name(), base.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                base = parent;
            }
            // Only `/` has no parent, and it always exists; `..` parts are
            // refused before this is called.
            _ => return Ok(abs),
        }
    }
}

/// Refuses a files directory whose removal would hurt: empty, `.`, `/`, a
/// `..` part, the current directory or one of its ancestors, or one that
/// is, holds or lies inside a modes directory (`protected`: each source of
/// MODES_DIR and each resolved mode's directory) or the env file. Paths are
/// compared after resolving symlinks, so `sub/modes -> ../modes` is caught.
pub fn check_files_dir(dir: &Path, modes: &[PathBuf], env_file: &Path) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::Invalid(format!(
            "refusing MDC_FILES_DIR {:?}: {why} (it is deleted and rebuilt on every run)",
            dir.display().to_string()
        )))
    };
    if dir.as_os_str().is_empty() {
        return refuse("empty".into());
    }
    if dir
        .components()
        .all(|c| matches!(c, Component::CurDir | Component::RootDir))
    {
        return refuse("it is '.' or '/'".into());
    }
    if dir.components().any(|c| c == Component::ParentDir) {
        return refuse("'..' is not allowed".into());
    }
    let real = resolved(dir)?;
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
    let real_cwd = fs::canonicalize(&cwd).unwrap_or(cwd);
    if real_cwd.starts_with(&real) {
        return refuse("it is the current directory or one of its parents".into());
    }
    // Both spellings: `sub` holding the symlink `sub/modes -> ../modes`
    // does not hold the modes tree, but deleting it takes MODES_DIR away.
    let mine = [real, absolute(dir)?];
    let overlaps = |other: &Path| -> Result<bool> {
        let theirs = [resolved(other)?, absolute(other)?];
        Ok(mine
            .iter()
            .any(|a| theirs.iter().any(|b| a.starts_with(b) || b.starts_with(a))))
    };
    for m in modes {
        if overlaps(m)? {
            return refuse(format!(
                "it is, holds or is inside the modes directory {}",
                m.display()
            ));
        }
    }
    if overlaps(env_file)? {
        return refuse(format!(
            "it is, holds or is inside the env file {}",
            env_file.display()
        ));
    }
    Ok(())
}

/// The directories MDC_FILES_DIR must stay clear of: each directory source
/// of `modes_dir` and the directory of each resolved mode (a JSON source's
/// nodes point at the JSON file, protected the same way).
fn protected_dirs(modes_dir: &str, modes: &[Node]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = modes_dir
        .split([':', ','])
        .filter(|s| !s.is_empty() && *s != "-")
        .map(PathBuf::from)
        .collect();
    out.extend(
        modes
            .iter()
            .filter(|m| m.origin != EMPTY_MODE_ORIGIN && m.path != Path::new("-"))
            .map(|m| m.path.clone()),
    );
    out
}

/// Builds the env file text for the resolved `modes` (see module docs).
/// `command_line` is recorded in the first comment; `compose_dir` is the
/// absolute directory of the env file.
pub fn env_text(modes: &[Node], command_line: &str, compose_dir: &Path) -> Result<String> {
    let mut text = format!("# {command_line}\n");
    for m in modes {
        // The flag before the mode's env text: compose interpolates
        // ${MDC_MODE_x} in later lines of an env file.
        text.push_str(&format!("{}=enabled\n", mode_var(&m.name)));
        if let Some(f) = env_file(&m.path) {
            let body = fs::read_to_string(&f).map_err(|e| Error::io("read", &f, e))?;
            text.push_str(&body);
            if !body.is_empty() && !body.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    let mut files = vec![EMPTY_COMPOSE.to_string()];
    files.extend(
        modes
            .iter()
            .filter_map(|m| compose_file(&m.path))
            .map(|p| p.display().to_string()),
    );
    let profiles: Vec<String> = modes.iter().map(|m| format!("MODE_{}", m.name)).collect();
    let dirs: Vec<String> = modes
        .iter()
        .filter(|m| m.origin != EMPTY_MODE_ORIGIN)
        .map(|m| m.path.display().to_string())
        .collect();
    text.push_str(&format!("COMPOSE_FILE={}\n", files.join(":")));
    text.push_str(&format!("COMPOSE_DIR={}\n", compose_dir.display()));
    text.push_str(&format!("COMPOSE_PROFILES={}\n", profiles.join(",")));
    text.push_str(&format!("MDC_MODE_DIRS={}\n", dirs.join(",")));
    Ok(text)
}

/// Writes `data` to `path` through a temporary file in the same directory
/// and a rename, so that readers never see half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", path.display())))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("rename into place", path, e)
    })
}

/// Copies every `<mode>/<svc>/files/` tree into `files_dir/<svc>/`.
fn copy_files(modes: &[Node], files_dir: &Path) -> Result<usize> {
    let mut count = 0;
    for m in modes {
        let Ok(entries) = fs::read_dir(&m.path) else {
            continue; // JSON-only nodes have no directory
        };
        let mut svcs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("files").is_dir())
            .collect();
        svcs.sort();
        for svc in svcs {
            let Some(svc_name) = svc.file_name() else {
                continue;
            };
            let stats = tree::copy_tree(&svc.join("files"), &files_dir.join(svc_name), None)?;
            count += stats.files;
        }
    }
    Ok(count)
}

/// The `origin` of a requested mode that has no directory.
pub const EMPTY_MODE_ORIGIN: &str = "(no directory: empty mode)";

/// Adds an empty node for every plain mode name of `start` that `graph`
/// lacks; returns their names. The node's path is where its directory
/// would be (under the first source of `modes_dir`).
fn add_empty_modes(graph: &mut Graph, start: &[deps::Dep], modes_dir: &str) -> Result<Vec<String>> {
    let first = modes_dir
        .split([':', ','])
        .find(|s| !s.is_empty() && *s != "-")
        .unwrap_or("./modes");
    let mut added = Vec::new();
    for dep in start {
        if let deps::Dep::Hard(name) = dep {
            if graph.node(name).is_none() {
                graph.add_node(Node {
                    name: name.clone(),
                    path: Path::new(first).join(name),
                    deps: Vec::new(),
                    origin: EMPTY_MODE_ORIGIN.into(),
                })?;
                added.push(name.clone());
            }
        }
    }
    Ok(added)
}

/// Resolves `modes_arg` (comma-separated, `a|b` and `+a` as in deps files)
/// and writes the env file, `.compose-empty.yaml` and the files directory.
pub fn run(settings: &Settings, modes_arg: &str, command_line: &str) -> Result<Outcome> {
    let start = deps::parse_deps_text(modes_arg, "the mode list")?;
    if start.is_empty() {
        return Err(Error::Invalid("no mode given".into()));
    }
    let mut graph = Graph::load(&settings.modes_dir, &mut std::io::empty())?;
    let empty_modes = add_empty_modes(&mut graph, &start, &settings.modes_dir)?;
    let modes = graph.resolve(&start)?;
    check_files_dir(
        &settings.files_dir,
        &protected_dirs(&settings.modes_dir, &modes),
        &settings.env_file,
    )?;
    let env_dir = match settings.env_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let compose_dir = fs::canonicalize(&env_dir).map_err(|e| Error::io("resolve", &env_dir, e))?;
    let text = env_text(&modes, command_line, &compose_dir)?;

    match fs::remove_dir_all(&settings.files_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", &settings.files_dir, e)),
    }
    fs::create_dir_all(&settings.files_dir)
        .map_err(|e| Error::io("create directory", &settings.files_dir, e))?;
    let files = copy_files(&modes, &settings.files_dir)?;
    write_atomic(Path::new(EMPTY_COMPOSE), EMPTY_COMPOSE_TEXT.as_bytes())?;
    write_atomic(&settings.env_file, text.as_bytes())?;
    Ok(Outcome {
        modes,
        env_text: text,
        files,
        empty_modes,
    })
}

/// The compose command to exec: `DOCKER_COMPOSE --env-file ENV_FILE ARGS…`.
pub fn compose_argv(settings: &Settings, args: &[OsString]) -> Vec<OsString> {
    let mut argv: Vec<OsString> = settings.compose_cmd.iter().map(OsString::from).collect();
    argv.push("--env-file".into());
    argv.push(settings.env_file.clone().into_os_string());
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_var_names() {
        assert_eq!(mode_var("web-2.x"), "MDC_MODE_web_2_x");
        assert_eq!(mode_var("Base1"), "MDC_MODE_Base1");
    }

    #[test]
    fn files_dir_guard() {
        let check =
            |d: &str| check_files_dir(Path::new(d), &[PathBuf::from("./modes")], Path::new(".env"));
        for bad in [
            "",
            ".",
            "/",
            "./",
            "//",
            "/.",
            "../x",
            "a/../b",
            "modes",
            "modes/a/files",
            ".env",
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains("refusing MDC_FILES_DIR"), "{bad:?}: {err}");
        }
        let cwd = std::env::current_dir().unwrap();
        assert!(check(&cwd.display().to_string()).is_err());
        assert!(check(&cwd.parent().unwrap().display().to_string()).is_err());
        assert!(check("./.files").is_ok());
        assert!(check("modes-files").is_ok());
        assert!(check("/tmp/mdc-files-x").is_ok());
    }

    #[test]
    fn compose_command() {
        let s = Settings {
            modes_dir: "m".into(),
            env_file: ".env".into(),
            files_dir: ".files".into(),
            compose_cmd: vec!["podman".into(), "compose".into()],
        };
        let argv = compose_argv(&s, &["up".into(), "-d".into()]);
        assert_eq!(
            argv,
            ["podman", "compose", "--env-file", ".env", "up", "-d"]
        );
    }
}
