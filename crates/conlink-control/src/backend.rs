//! What the control servers need from the daemon ([`ControlBackend`]),
//! and the small pieces a daemon uses to provide it: an event hub with
//! history ([`EventHub`]) and latency/error metrics ([`Metrics`]).
//!
//! The servers never see the daemon's internals: a reconciling core, the
//! older per-container daemon and the unit tests' fake all implement the
//! same trait.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conlink_model::Netem;
use tokio::sync::broadcast;

use crate::api::{Actor, Event, EventType, Status};
use crate::error::Result;
use crate::target::Selector;

/// A change to the runtime override of the selected links: one more input
/// of the desired state, kept across config reloads and container restarts
/// until cleared. Fields left None keep what the override had.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverrideChange {
    /// Some(true): hold both ends administratively down; Some(false): back
    /// up (drops the admin part of the override).
    pub admin_down: Option<bool>,
    /// netem parameters to lay over the configured netem ([`overlay_netem`]):
    /// merged into what the override already had.
    pub netem: Option<Netem>,
    /// Drop the netem part of the override (back to the config).
    pub reset_netem: bool,
}

/// The daemon, as the control servers see it. Methods may block briefly
/// (a snapshot reads kernel counters): the servers call them on blocking
/// threads.
pub trait ControlBackend: Send + Sync + 'static {
    /// The whole status now (kernel state and counters read fresh).
    fn snapshot(&self) -> Status;
    /// Live events from now on.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Past events at or after `since`
    /// (as many as the daemon keeps).
    fn history(&self, since: Option<SystemTime>) -> Vec<Event>;
    /// Changes the override of the links `sel` matches; returns their
    /// `CONTAINER/DEV` ids. Nothing changes when it fails.
    fn set_override(&self, sel: &Selector, change: &OverrideChange) -> Result<Vec<String>>;
    /// Removes every override of the links `sel` matches; returns their ids.
    fn clear_override(&self, sel: &Selector) -> Result<Vec<String>>;
    /// The topology page (`conlink graph --format html` of the running
    /// config) the live page starts from.
    fn graph_html(&self) -> String;
    /// Latency histograms and error counters.
    fn metrics(&self) -> &Metrics;
    /// Events counted by type and action since start.
    fn event_counts(&self) -> BTreeMap<(EventType, String), u64>;
    /// The daemon's own state as JSON (`GET /v1/state`): what it has made,
    /// the containers it sees, the inputs a reload keeps; `conlink plan`
    /// diffs a config against it. Null when the backend has none.
    fn running_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Lays `over` on `base`: every parameter `over` sets replaces the base's,
/// the others stay (`--netem "loss 1%"` over a configured `delay 50ms`
/// gives `delay 50ms loss 1%`). Parameters that go together are replaced
/// together: delay with its jitter, correlation and distribution; reorder
/// with its gap; loss with its `ecn`.
pub fn overlay_netem(base: Option<&Netem>, over: &Netem) -> Netem {
    let mut n = base.cloned().unwrap_or_default();
    if over.delay_ns.is_some() {
        n.delay_ns = over.delay_ns;
        n.jitter_ns = over.jitter_ns;
        n.delay_corr = over.delay_corr;
        n.distribution = over.distribution;
    }
    if over.reorder.is_some() {
        n.reorder = over.reorder;
        n.gap = over.gap;
    }
    if over.loss.is_some() {
        n.loss = over.loss;
        n.ecn = over.ecn;
    }
    n.limit = over.limit.or(n.limit);
    n.duplicate = over.duplicate.or(n.duplicate);
    n.corrupt = over.corrupt.or(n.corrupt);
    n.rate = over.rate.or(n.rate);
    n.slot = over.slot.or(n.slot);
    n.seed = over.seed.or(n.seed);
    n
}

/// How many past events an [`EventHub`] keeps for `events --since`.
pub const HISTORY: usize = 4096;

/// Numbers, stamps, keeps and broadcasts events. Cheap when nobody
/// listens: a send without receivers is a failed `try_send` and nothing else.
pub struct EventHub {
    tx: broadcast::Sender<Event>,
    inner: Mutex<HubInner>,
}

#[derive(Default)]
struct HubInner {
    seq: u64,
    history: VecDeque<Event>,
    counts: BTreeMap<(EventType, String), u64>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// An empty hub.
    pub fn new() -> Self {
        EventHub {
            tx: broadcast::channel(4096).0,
            inner: Mutex::new(HubInner::default()),
        }
    }

    /// Records and broadcasts one event; returns it.
    pub fn emit(
        &self,
        kind: EventType,
        action: &str,
        id: impl Into<String>,
        attributes: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Event {
        self.emit_owned(
            kind,
            action,
            id,
            attributes.into_iter().map(|(k, v)| (k.to_string(), v)),
        )
    }

    /// [`EventHub::emit`] with attribute names decided at run time (events
    /// re-emitted from the core).
    pub fn emit_owned(
        &self,
        kind: EventType,
        action: &str,
        id: impl Into<String>,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Event {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.seq += 1;
        let ev = Event {
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i128,
            kind,
            action: action.to_string(),
            actor: Actor {
                id: id.into(),
                attributes: attributes.into_iter().collect(),
            },
            seq: g.seq,
        };
        *g.counts.entry((kind, action.to_string())).or_default() += 1;
        if g.history.len() == HISTORY {
            g.history.pop_front();
        }
        g.history.push_back(ev.clone());
        // Sent under the lock so that subscribers see seq order.
        let _ = self.tx.send(ev.clone());
        ev
    }

    /// Live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Kept events at or after `since`.
    pub fn history(&self, since: Option<SystemTime>) -> Vec<Event> {
        let from = since
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.history
            .iter()
            .filter(|e| e.time_nano >= from)
            .cloned()
            .collect()
    }

    /// Counts by (type, action).
    pub fn counts(&self) -> BTreeMap<(EventType, String), u64> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .clone()
    }
}

/// Upper bounds (seconds) of the latency histograms' buckets: 1 ms to 10 s,
/// where link setups and reconciles fall.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A Prometheus histogram on atomics (no lock on the setup path).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// (cumulative bucket counts, count, sum in seconds).
    pub fn read(&self) -> (Vec<u64>, u64, f64) {
        (
            self.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            self.count.load(Ordering::Relaxed),
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// What the daemon measures for `/metrics` besides link counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Container start event → its links ready.
    pub setup: Histogram,
    /// One reconcile (diff and apply) of the whole desired state.
    pub reconcile: Histogram,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts one error of `kind` (`setup`, `teardown`, `reload`, `override`…).
    pub fn error(&self, kind: &str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// Errors by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_replaces_only_given_parameters() {
        let base: Netem = "delay 50ms 5ms loss 2% rate 10mbit".parse().unwrap();
        let over: Netem = "loss 1% duplicate 3%".parse().unwrap();
        let n = overlay_netem(Some(&base), &over);
        assert_eq!(
            n.to_string(),
            "delay 50ms 5ms loss 1% duplicate 3% rate 10mbit"
        );
        // A new delay replaces the jitter with it.
        let n = overlay_netem(Some(&base), &"delay 10ms".parse().unwrap());
        assert_eq!(n.to_string(), "delay 10ms loss 2% rate 10mbit");
        let n = overlay_netem(None, &over);
        assert_eq!(n.to_string(), "loss 1% duplicate 3%");
    }

    #[test]
    fn hub_numbers_keeps_and_counts() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        hub.emit(
            EventType::Container,
            "start",
            "a",
            [("service", "s".into())],
        );
        hub.emit(EventType::Link, "created", "a/eth0", []);
        hub.emit(EventType::Link, "created", "a/eth1", []);
        assert_eq!(rx.try_recv().unwrap().seq, 1);
        assert_eq!(rx.try_recv().unwrap().actor.id, "a/eth0");
        let h = hub.history(None);
        assert_eq!(h.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(hub
            .history(Some(SystemTime::now() + Duration::from_secs(5)))
            .is_empty());
        assert_eq!(hub.counts()[&(EventType::Link, "created".into())], 2);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        let (b, n, sum) = h.read();
        assert_eq!(n, 2);
        assert_eq!(b[0], 1); // <= 1 ms
        assert_eq!(b[5], 2); // <= 50 ms
        assert!((sum - 0.0305).abs() < 1e-9);
    }
}
