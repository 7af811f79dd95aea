//! The error type of the conlink-tools library.

use std::io;
use std::path::PathBuf;

/// Everything the library can fail with. Messages are lowercase, "verb
/// object: cause", and name the file or node involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, written or inspected.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted ("read", "create directory", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying OS error (errno reachable through `raw_os_error`).
        #[source]
        source: io::Error,
    },
    /// A `deps` file or a JSON dependency source is malformed.
    #[error("parse dependencies in {source_name}: {message}")]
    DepsSyntax {
        /// The file (or `-` for stdin) holding the bad text.
        source_name: String,
        /// What is wrong, naming the node/token.
        message: String,
    },
    /// A node is defined by two sources.
    #[error("node {node:?} is defined twice: in {first} and in {second}")]
    DuplicateNode {
        /// The node name.
        node: String,
        /// Where it was seen first.
        first: String,
        /// Where it was seen again.
        second: String,
    },
    /// A requested node, or a dependency of a resolved node, does not exist.
    #[error("node {node:?} does not exist (required by {required_by})")]
    MissingNode {
        /// The missing node.
        node: String,
        /// The node that names it, or "the command line".
        required_by: String,
    },
    /// The chosen nodes' ordering constraints contain a cycle.
    #[error("dependency graph contains a cycle: {}", path.join(" -> "))]
    Cycle {
        /// The nodes of the cycle, first node repeated at the end.
        path: Vec<String>,
    },
    /// The smallest-set search over OR dependencies did not finish within
    /// its work limit (see `deps::SEARCH_LIMIT`).
    #[error(
        "the OR dependencies are too tangled to find the smallest set within the search limit of {limit} steps{}; name one alternative of some ORs on the command line (it then satisfies them) to narrow the search",
        match best { Some(n) => format!(" (the best set found so far has {n} nodes)"), None => String::new() }
    )]
    SearchLimit {
        /// The work limit that was reached.
        limit: u64,
        /// Size of the best set found before giving up, if any.
        best: Option<usize>,
    },
    /// An invalid argument or setting (mdc files dir, mode list, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an `io::Error` with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
