//! conlink's reconciling core.
//!
//! Desired state is a pure function of the config, the observed containers
//! and the overrides ([`desired`]); actual state is the same type, recorded
//! as operations succeed ([`apply`]) and rediscoverable from the kernel by
//! ownership markers ([`adopt`]). One pure [`diff`] from actual to desired
//! yields every operation: setup, teardown, undo, reload and adoption. The
//! [`reconcile`] loop feeds it runtime events, config reloads and overrides.
//! The [`kernel::Kernel`] trait separates it from the system; unit tests use
//! the in-memory [`fake::FakeKernel`].

pub mod adopt;
pub mod apply;
pub mod desired;
pub mod diff;
pub mod events;
pub mod fake;
pub mod kernel;
pub mod mesh;
pub mod net;
pub mod plan;
pub mod reconcile;
pub mod state;

pub use apply::{Applier, ApplyError};
pub use desired::{desired_container, desired_globals, Inputs, LinkOverride, Overrides, PlanError};
pub use diff::{diff, Op};
pub use kernel::{Kernel, KernelError};
pub use state::State;
