//! The one error type of conlink-net.

use std::io;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the network layer. The kernel's errno stays reachable
/// ([`Error::errno`]) so callers can branch on EEXIST/ENODEV.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request.
    #[error("{op}: {}{}", errno_text(*.errno), kernel_msg.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Netlink {
        /// What was attempted, with the iproute2-like object (`create veth eth0`).
        op: String,
        /// Positive errno.
        errno: i32,
        /// The kernel's extended-ack message, if any.
        kernel_msg: Option<String>,
    },
    /// The kernel lacks a feature the operation needs.
    #[error("{op}: kernel lacks {feature} support (module {module} not loaded)")]
    MissingFeature {
        /// What was attempted.
        op: String,
        /// The feature (`geneve`, `netem`, `802.1Q vlan`…).
        feature: &'static str,
        /// The kernel module providing it.
        module: &'static str,
        /// The errno the kernel answered.
        errno: i32,
    },
    /// A namespace could not be opened, created, entered or removed.
    #[error("{op} {path}: {source}")]
    Netns {
        /// What was attempted (`open netns`, `create netns`…).
        op: &'static str,
        /// The namespace path or name.
        path: String,
        /// The system error.
        source: io::Error,
    },
    /// An ethtool ioctl failed.
    #[error("ethtool {setting} on {dev}: {source}")]
    Ethtool {
        /// Interface name.
        dev: String,
        /// The setting (`tx off`…).
        setting: String,
        /// The system error.
        source: io::Error,
    },
    /// An interface that must exist does not.
    #[error("{op}: no interface named {name:?}")]
    NoSuchLink {
        /// What was attempted.
        op: String,
        /// The missing interface.
        name: String,
    },
    /// The caller asked for something that cannot be done; nothing was changed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Open vSwitch is not installed or not running.
    #[error("open vswitch unavailable: {0}")]
    OvsUnavailable(String),
    /// An `ovs-vsctl` command failed.
    #[error("ovs-vsctl {args}: {stderr}")]
    Ovs {
        /// The arguments given.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An Open vSwitch daemon conlink starts did not come up.
    #[error("start {daemon}: {problem}; {log_tail}")]
    OvsStart {
        /// `ovsdb-tool`, `ovsdb-server` or `ovs-vswitchd`.
        daemon: &'static str,
        /// What went wrong (exited, did not answer in time…).
        problem: String,
        /// The last lines of its log and stderr.
        log_tail: String,
    },
    /// Some other system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The system error.
        source: io::Error,
    },
    /// Several errors (teardown keeps going and reports them all).
    #[error("{} errors: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
}

fn errno_text(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    // std prints "File exists (os error 17)"; keep the errno visible.
    s.replace("os error", "errno")
}

impl Error {
    /// The kernel's errno, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } | Error::MissingFeature { errno, .. } => Some(*errno),
            Error::Netns { source, .. }
            | Error::Ethtool { source, .. }
            | Error::Io { source, .. } => source.raw_os_error(),
            Error::NoSuchLink { .. } => Some(libc::ENODEV),
            _ => None,
        }
    }

    /// The object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The interface does not exist (ENODEV).
    pub fn is_no_device(&self) -> bool {
        self.errno() == Some(libc::ENODEV)
    }

    /// The kernel lacks a feature.
    pub fn is_missing_feature(&self) -> bool {
        matches!(self, Error::MissingFeature { .. })
    }
}
