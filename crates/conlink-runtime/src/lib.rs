//! Container runtimes conlink watches.
//!
//! A runtime reports containers starting and dying, tells where each one's
//! network namespace is, and runs commands inside containers. It knows
//! nothing of netlink or of the network config: the daemon matches
//! containers against the config and the planner decides what to build.

pub mod docker;
pub mod netns;
mod seen;

pub use conlink_model::Container;

/// What the runtime reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A container started (or was already running when conlink subscribed).
    Start(Container),
    /// A container died; its id.
    Die(String),
    /// The runtime's listing is complete: every container running at that
    /// moment has been reported by a `Start` (sent after each successful
    /// listing; with several engines, once all have listed). Entries of an
    /// earlier run that no `Start` claimed by then are of containers gone.
    Synced,
}

/// A container the engine knows about, whatever its state (for deciding
/// what `All links connected` waits for: a service with no container at
/// all, e.g. profile-gated, is not waited for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Container name.
    pub name: String,
    /// Compose service, when it belongs to one.
    pub service: Option<String>,
    /// Compose project, when it belongs to one.
    pub project: Option<String>,
}

/// Why a runtime operation failed (the runtimes' own error types, boxed:
/// the core only logs them).
pub type RuntimeError = Box<dyn std::error::Error + Send + Sync>;

/// What the core needs from a container engine: one implementation per
/// engine kind (docker/podman API, named namespaces), one loop in the core.
pub trait Runtime: Send + Sync + 'static {
    /// Reports every running container as started, then live starts and
    /// deaths, into `tx`; returns when `tx` closes (or is cancelled by
    /// dropping the future).
    fn watch(
        &self,
        tx: tokio::sync::mpsc::Sender<Event>,
    ) -> impl std::future::Future<Output = ()> + Send;

    /// Runs `argv` in `c`, logging its output lines prefixed with the
    /// container name; returns the exit code.
    fn exec(
        &self,
        c: &Container,
        argv: Vec<String>,
    ) -> impl std::future::Future<Output = Result<i64, RuntimeError>> + Send;

    /// Containers that exist in the engine (created, starting, running,
    /// restarting): the set `All links connected` waits for is drawn from
    /// these.
    fn known(&self) -> impl std::future::Future<Output = Result<Vec<Known>, RuntimeError>> + Send;

    /// The same from what the runtime's events showed, without asking the
    /// engine; None when it cannot tell. Good for "not yet" only: the core
    /// confirms a "converged" with [`Self::known`].
    fn known_cached(&self) -> Option<Vec<Known>> {
        None
    }
}
