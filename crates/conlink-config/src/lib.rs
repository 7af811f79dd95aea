//! conlink-config: turns users' files into one validated, typed
//! [`NetworkConfig`].
//!
//! The pipeline (spec §3–§7), each step its own module:
//!
//! 1. [`source`]: read compose files (top-level and per-service `x-network`)
//!    and network files (YAML or JSON), interpolate environment variables in
//!    every string, give links and commands under a service their default
//!    `service:`;
//! 2. [`tree`] + `source::merge`: merge everything in order, links keyed by
//!    (service|container, dev), service-internal definitions winning;
//! 3. [`validate`]: check the merged config against the embedded JSON schema;
//! 4. [`enrich`]: semantic checks the schema cannot express, defaults, bridge
//!    mode resolution, strings parsed into typed values.
//!
//! Every error found on the way is collected; [`load`] returns them all at
//! once, each naming the file and the JSON pointer inside it. Nothing here
//! touches the system: the caller passes the environment and whether the
//! openvswitch module is loaded.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use conlink_model::NetworkConfig;

pub mod enrich;
pub mod interpolate;
mod limits;
pub mod source;
pub mod tree;
pub mod validate;

/// Default bridge mode as given on the command line (`--default-bridge-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BridgeModeSetting {
    /// `ovs` if the openvswitch kernel module is loaded, else `linux`.
    #[default]
    Auto,
    /// A Linux bridge.
    Linux,
    /// An Open vSwitch bridge.
    Ovs,
    /// Two links joined back-to-back with tc.
    Patch,
}

impl FromStr for BridgeModeSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "linux" => Ok(Self::Linux),
            "ovs" => Ok(Self::Ovs),
            "patch" => Ok(Self::Patch),
            _ => Err(format!("bridge mode {s:?}: use auto, linux, ovs or patch")),
        }
    }
}

impl fmt::Display for BridgeModeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Linux => "linux",
            Self::Ovs => "ovs",
            Self::Patch => "patch",
        })
    }
}

/// What to load and the defaults to apply.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compose files, in order (their `x-network` keys hold config).
    pub compose_files: Vec<PathBuf>,
    /// Network files (YAML or JSON), in order, merged after compose files.
    pub network_files: Vec<PathBuf>,
    /// Mode of bridges that do not set one.
    pub default_bridge_mode: BridgeModeSetting,
    /// MTU of links that do not set one (not *vlan/*vtap: they inherit).
    pub default_mtu: u32,
    /// Do not prepend `--offload tx off` to veth links' ethtool settings.
    pub keep_veth_offload: bool,
    /// Whether the openvswitch kernel module is loaded (decides `auto`).
    pub ovs_loaded: bool,
    /// Variables for interpolation (normally `std::env::vars()`).
    pub env: HashMap<String, String>,
    /// Largest config file read, in bytes (`--config-max-bytes`): a bigger
    /// file is an error, so a runaway generator cannot exhaust memory.
    pub max_file_bytes: u64,
    /// Most YAML/JSON nodes (maps, lists and scalars) in one file
    /// (`--config-max-nodes`).
    pub max_nodes: usize,
    /// Extra JSON schema files the merged config must also satisfy
    /// (`--config-schema FILE`), besides the built-in one.
    pub extra_schemas: Vec<PathBuf>,
}

/// Default of [`LoadOptions::max_file_bytes`]: 16 MiB, about 100 times the
/// largest real config seen.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;

/// Default of [`LoadOptions::max_nodes`]: 250,000 nodes, about 25,000 links.
/// 200,000 JSON links took 690 MB before this limit existed.
pub const DEFAULT_MAX_NODES: usize = 250_000;

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            compose_files: Vec::new(),
            network_files: Vec::new(),
            default_bridge_mode: BridgeModeSetting::Auto,
            default_mtu: 65535,
            keep_veth_offload: false,
            ovs_loaded: false,
            env: HashMap::new(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_nodes: DEFAULT_MAX_NODES,
            extra_schemas: Vec::new(),
        }
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the offending value was written in, where known.
    pub file: Option<PathBuf>,
    /// JSON pointer inside that file (e.g. `/services/node/x-network/links/0/ip`
    /// or `/links/3/ip`); `""` is the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        let path = printable(path, MESSAGE_MAX);
        let message = printable(&self.message, MESSAGE_MAX);
        match &self.file {
            Some(file) => write!(
                f,
                "{}: {path}: {message}",
                printable(&file.to_string_lossy(), MESSAGE_MAX)
            ),
            None => write!(f, "{path}: {message}"),
        }
    }
}

/// Longest message (and pointer) printed, in bytes: a 1 MB value quoted in
/// an error must not flood the terminal.
pub const MESSAGE_MAX: usize = 400;

/// Most errors printed by [`ConfigErrors`]' `Display`; the rest are counted.
pub const ERRORS_SHOWN_MAX: usize = 100;

/// `s` made safe to print on one line: control characters (newline, ESC,
/// …) escaped as `\n`, `\u{1b}` so a config value cannot forge log lines or
/// drive the terminal, and cut after `max` bytes with a count of the rest.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 32);
    for (i, c) in s.char_indices() {
        if out.len() >= max {
            out.push_str(&format!("… ({} more bytes)", s.len() - i));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every problem found in a configuration, in the order found. Displays one
/// per line as `FILE: /pointer: message`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(ERRORS_SHOWN_MAX).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > ERRORS_SHOWN_MAX {
            let more = self.0.len() - ERRORS_SHOWN_MAX;
            write!(
                f,
                "\n… and {more} more error{}",
                if more == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A problem at a JSON pointer into the merged config (before it is tied
/// to the file the value came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// JSON pointer into the merged config.
    pub ptr: String,
    /// What is wrong.
    pub message: String,
}

/// An error before it is tied to a file: a location in the merged config
/// (or directly in a file) plus the message.
#[derive(Debug, Clone)]
pub(crate) struct RawError {
    pub loc: tree::Loc,
    pub message: String,
}

/// A loaded configuration and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated, enriched configuration.
    pub config: NetworkConfig,
    /// Values ignored where the original was lenient (unknown keys in
    /// `bridges`/`tunnels`/`commands` entries, `mode` on a veth, `vlanid` on
    /// a non-vlan link), each with its file and pointer.
    pub warnings: Vec<ConfigError>,
}

/// Loads, merges, validates and enriches the configuration: the one entry
/// point the daemon and `--show-config` use. Returns every error at once;
/// warnings are logged (`tracing::warn!`), see [`load_checked`] to get them.
pub fn load(opts: &LoadOptions) -> Result<NetworkConfig, ConfigErrors> {
    let l = load_checked(opts)?;
    for w in &l.warnings {
        tracing::warn!("{w}");
    }
    Ok(l.config)
}

/// [`load`], returning the warnings instead of logging them.
pub fn load_checked(opts: &LoadOptions) -> Result<Loaded, ConfigErrors> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut errs: Vec<RawError> = Vec::new();
    let fragments = source::read_all(opts, &mut files, &mut errs);
    let merged = source::merge(fragments, &mut errs);
    let value = merged.to_value();
    let errs_from_sources = errs.len();
    // A value that failed to interpolate is still the raw string; do not
    // report it a second time as, say, a malformed address.
    let source_locs: std::collections::HashSet<tree::Loc> =
        errs.iter().map(|e| e.loc.clone()).collect();
    let mut schema_errs = validate::validate(&value);
    for path in &opts.extra_schemas {
        // A user schema (`--config-schema FILE`) that cannot be used is an
        // error naming that file; its violations read like the built-in
        // schema's, located in the config files.
        let idx = files.len();
        files.push(path.clone());
        match validate::validate_extra(path, &value) {
            Ok(v) => schema_errs.extend(v),
            Err(message) => errs.push(RawError {
                loc: tree::Loc::new(idx, ""),
                message,
            }),
        }
    }
    let source_failed = !errs.is_empty();
    if source_failed {
        // A file that could not be read or parsed explains missing links
        // better than "no links configured" would.
        schema_errs.retain(|e| !e.ptr.is_empty());
    }
    for e in &schema_errs {
        errs.push(RawError {
            loc: merged.locate(&e.ptr),
            message: e.message.clone(),
        });
    }
    let bad_ptrs: Vec<String> = schema_errs.into_iter().map(|e| e.ptr).collect();
    match enrich::enrich(&value, opts, &bad_ptrs) {
        Ok((config, warns)) if errs.is_empty() => {
            let warnings = warns
                .into_iter()
                .map(|w| {
                    let loc = merged.locate(&w.ptr);
                    ConfigError {
                        file: loc.file.and_then(|i| files.get(i).cloned()),
                        path: loc.ptr,
                        message: w.message,
                    }
                })
                .collect();
            return Ok(Loaded { config, warnings });
        }
        Ok(_) => {}
        Err(sem) => {
            for e in sem {
                errs.push(RawError {
                    loc: merged.locate(&e.ptr),
                    message: e.message,
                });
            }
        }
    }
    let n = errs_from_sources;
    let mut i = 0;
    errs.retain(|e| {
        i += 1;
        i <= n || !source_locs.contains(&e.loc)
    });
    // Report in file order, then in document order within a file.
    errs.sort_by(|a, b| (a.loc.file, ptr_key(&a.loc.ptr)).cmp(&(b.loc.file, ptr_key(&b.loc.ptr))));
    Err(ConfigErrors(
        errs.into_iter()
            .map(|e| ConfigError {
                file: e.loc.file.and_then(|i| files.get(i).cloned()),
                path: e.loc.ptr,
                message: e.message,
            })
            .collect(),
    ))
}

/// Sort key of a JSON pointer: list indexes compare as numbers.
fn ptr_key(ptr: &str) -> Vec<(u64, &str)> {
    ptr.split('/')
        .map(|t| match t.parse::<u64>() {
            Ok(n) => (n, ""),
            Err(_) => (u64::MAX, t),
        })
        .collect()
}
