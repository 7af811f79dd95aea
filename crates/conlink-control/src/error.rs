//! Errors of the control surface. Each maps to one HTTP status and one
//! `kind` string in the JSON error answer, so a client can branch on it.

/// What went wrong with a control request or the control servers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target matches no link (the message lists the known ones).
    #[error("unknown target {target:?}: no link matches (known: {known})")]
    UnknownTarget {
        /// The target as given.
        target: String,
        /// Some known `CONTAINER/DEV` ids.
        known: String,
    },
    /// A malformed request (bad target syntax, bad netem, nothing to do).
    #[error("{0}")]
    BadRequest(String),
    /// TCP request without the right bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// The daemon cannot do this (e.g. overrides without the reconciling core).
    #[error("{0}")]
    Unsupported(String),
    /// The daemon accepted the request but could not carry it out.
    #[error("{0}")]
    Apply(String),
    /// No such API path.
    #[error("no such API path: {0}")]
    NotFound(String),
    /// Socket or listener trouble.
    #[error("{op}: {source}")]
    Io {
        /// What was being done (`bind /run/conlink/x.sock`).
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server answered with an error (client side).
    #[error("{message}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// `kind` of the answer.
        kind: String,
        /// `error` of the answer.
        message: String,
    },
    /// HTTP protocol trouble (client side).
    #[error("{op}: {message}")]
    Http {
        /// What was being done.
        op: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Error::UnknownTarget { .. } => 404,
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::NotFound(_) => 404,
            Error::Unsupported(_) => 501,
            Error::Apply(_) => 500,
            Error::Io { .. } | Error::Http { .. } => 500,
            Error::Remote { status, .. } => *status,
        }
    }

    /// `kind` of the answer.
    pub fn kind(&self) -> &str {
        match self {
            Error::UnknownTarget { .. } => "unknown_target",
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::NotFound(_) => "not_found",
            Error::Unsupported(_) => "unsupported",
            Error::Apply(_) => "apply",
            Error::Io { .. } | Error::Http { .. } => "internal",
            Error::Remote { kind, .. } => kind,
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
