//! The docker runtime: any engine speaking the docker API (docker, podman).
//!
//! Container lookups, exec and the event stream all go through `bollard`.
//! The stream used to be read by an HTTP/1.1 reader of our own, to accept
//! the pre-2016 `status`/`id` event fields as well as `Action`/`Actor.ID`;
//! every engine conlink supports (docker API 1.22+, podman 4.x, checked in
//! docs/testing.md) sends `Action`/`Actor.ID`, so that reason did not hold
//! and bollard's `events()` does the job (issue 12).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use futures_util::Stream;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::seen::{Listed, Seen};
use crate::{Container, Event};

const LABEL_PROJECT: &str = "com.docker.compose.project";
const LABEL_SERVICE: &str = "com.docker.compose.service";
const LABEL_NUMBER: &str = "com.docker.compose.container-number";
const LABEL_SWARM_SERVICE: &str = "com.docker.swarm.service.name";
const LABEL_SWARM_TASK: &str = "com.docker.swarm.task.name";
const LABEL_SWARM_NODE: &str = "com.docker.swarm.node.id";
const LABEL_STACK: &str = "com.docker.stack.namespace";
/// Node label that fixes the replica index of global-service tasks on a node.
pub const LABEL_NODE_INDEX: &str = "conlink.index";

/// A container's compose identity from its labels: (service, project,
/// index). Compose containers: their compose labels. Swarm tasks: the
/// service name without the stack prefix (`lab_node` in stack `lab` is
/// service `node` of project `lab`), the stack as project, and the task
/// slot as index (task name `SERVICE.SLOT.TASKID`), so a task keeps its
/// index, and with it its addresses, wherever it is scheduled. Tasks of
/// global services carry the node id where the slot would be: their index
/// comes from `global_index(node id)`.
pub fn identity(
    labels: &HashMap<String, String>,
    global_index: impl FnOnce(&str) -> u32,
) -> (Option<String>, Option<String>, u32) {
    if let Some(svc) = labels.get(LABEL_SWARM_SERVICE) {
        let stack = labels.get(LABEL_STACK).cloned();
        let service = match &stack {
            Some(st) => svc
                .strip_prefix(&format!("{st}_"))
                .unwrap_or(svc)
                .to_string(),
            None => svc.clone(),
        };
        let slot = labels
            .get(LABEL_SWARM_TASK)
            .and_then(|t| t.strip_prefix(&format!("{svc}.")))
            .and_then(|rest| rest.split('.').next());
        let index = match slot.map(str::parse::<u32>) {
            Some(Ok(n)) if n > 0 => n,
            // Global service: the slot is the node id.
            _ => {
                let node = labels
                    .get(LABEL_SWARM_NODE)
                    .map(String::as_str)
                    .or(slot)
                    .unwrap_or("");
                global_index(node)
            }
        };
        return (Some(service), stack, index);
    }
    (
        labels.get(LABEL_SERVICE).cloned(),
        labels.get(LABEL_PROJECT).cloned(),
        labels
            .get(LABEL_NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    )
}

/// The index of a global service's task on node `node`: the node's
/// `conlink.index` label when set, else its 1-based rank in the swarm's
/// nodes ordered by (hostname, id). `nodes`: (id, hostname, labels).
pub fn global_index(node: &str, nodes: &[(String, String, HashMap<String, String>)]) -> u32 {
    if let Some(n) = nodes
        .iter()
        .find(|(id, _, _)| id == node)
        .and_then(|(_, _, l)| l.get(LABEL_NODE_INDEX))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let mut order: Vec<(&str, &str)> = nodes
        .iter()
        .map(|(id, host, _)| (host.as_str(), id.as_str()))
        .collect();
    order.sort();
    order
        .iter()
        .position(|(_, id)| *id == node)
        .map_or(1, |p| p as u32 + 1)
}

/// A swarm node as the mesh needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmNode {
    /// Node id.
    pub id: String,
    /// Hostname.
    pub hostname: String,
    /// The address the node advertises to the swarm.
    pub addr: Option<std::net::Ipv4Addr>,
    /// Whether the swarm sees it ready (down nodes take their tunnels with
    /// them).
    pub ready: bool,
    /// Node labels.
    pub labels: HashMap<String, String>,
}

/// Errors of the docker runtime.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine API failed.
    #[error("docker API at {socket}: {source}")]
    Api {
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// An inspect in flight for a start event: yields the id when it runs.
type Inspecting = tokio::task::JoinHandle<Option<String>>;

/// Records the outcome of a finished (or awaited) inspect in `known`.
async fn settle(h: Inspecting, known: &mut HashSet<String>) {
    if let Ok(Some(id)) = h.await {
        known.insert(id);
    }
}

/// A connection to one engine socket.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    socket: PathBuf,
    /// Where the engine's sandbox directory (`EXEC_ROOT/netns`) is mounted
    /// in conlink's container (`--sandbox-dir`): every container's
    /// namespace is then opened there, by the file name of its SandboxKey.
    sandbox_dir: Option<PathBuf>,
    /// The engine's containers as the event stream shows them (shared by
    /// the clones: the watcher folds events in, the convergence check
    /// reads it).
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
}

/// What conlink learns about its own container from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnContainer {
    /// Its compose project (a swarm task: its stack).
    pub project: Option<String>,
    /// `HostConfig.NetworkMode`: `host`, `none`, `default`, `container:ID`,
    /// a network name. A swarm task on the `host` network has `host`.
    pub network_mode: Option<String>,
}

/// Where a container's namespace is found through the engine's sandbox
/// directory mounted at `dir`: `dir/NAME` for SandboxKey `…/netns/NAME`.
/// None without a key (a container sharing another's namespace has none).
pub fn sandbox_in(dir: &Path, key: &str) -> Option<PathBuf> {
    let name = Path::new(key).file_name()?;
    Some(dir.join(name))
}

/// A container event as read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// `start`, `die`, …
    pub action: String,
    /// Container id.
    pub id: String,
}

/// What a decoded event means to conlink: the action and container id of a
/// container event, None for any other event (or one missing either).
pub fn parse_event(m: &EventMessage) -> Option<RawEvent> {
    // An engine that leaves `Type` out sends container events only.
    if m.typ.is_some_and(|t| t != EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let action = m.action.as_deref().filter(|a| !a.is_empty())?;
    let id = m
        .actor
        .as_ref()
        .and_then(|a| a.id.as_deref())
        .filter(|i| !i.is_empty())?;
    Some(RawEvent {
        action: action.to_string(),
        id: id.to_string(),
    })
}

/// A container's name and compose identity from its name (`/` first, as
/// listings give it, or not) and labels. Swarm tasks go by their service
/// and stack, like [`DockerRuntime::inspect`]; the index does not matter
/// here.
fn known_of(name: &str, labels: &HashMap<String, String>) -> crate::Known {
    let (service, project, _) = identity(labels, |_| 1);
    crate::Known {
        name: name.trim_start_matches('/').to_string(),
        service,
        project,
    }
}

/// The name and compose identity an event's attributes give (docker puts
/// the container's name and every label there); None without a name.
fn named_by_attributes(m: &EventMessage) -> Option<crate::Known> {
    let attrs = m.actor.as_ref()?.attributes.as_ref()?;
    let name = attrs.get("name").filter(|n| !n.is_empty())?;
    Some(known_of(name, attrs))
}

/// Decodes one event as the engine sends it (JSON text), the way the
/// stream does: bollard's `EventMessage`, then [`parse_event`]. For the
/// fuzz target and tests.
pub fn decode_event(json: &[u8]) -> Option<RawEvent> {
    serde_json::from_slice::<EventMessage>(json)
        .ok()
        .as_ref()
        .and_then(parse_event)
}

impl DockerRuntime {
    /// Connects and negotiates the API version (docker 20.10 answers 1.41).
    pub async fn connect(socket: &Path) -> Result<Self, DockerError> {
        let s = socket.display().to_string();
        let api = |source| DockerError::Api {
            socket: s.clone(),
            source,
        };
        let docker = Docker::connect_with_unix(&s, 120, bollard::API_DEFAULT_VERSION)
            .map_err(api)?
            .negotiate_version()
            .await
            .map_err(api)?;
        Ok(Self {
            docker,
            socket: socket.to_path_buf(),
            sandbox_dir: None,
            seen: Default::default(),
        })
    }

    /// Opens containers' namespaces through the engine's sandbox directory
    /// mounted at `dir` ([`sandbox_in`]) instead of `/proc/PID/ns/net`:
    /// for conlink in a container without `pid: host` (a swarm service).
    pub fn with_sandbox_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.sandbox_dir = dir;
        self
    }

    /// conlink's own container as conlink needs to know it (its project and
    /// network mode), None when the engine does not know it. Unlike
    /// [`Self::inspect`] this needs no namespace path.
    pub async fn own_container(&self, id: &str) -> Result<Option<OwnContainer>, DockerError> {
        let Some(info) = self.inspect_raw(id).await? else {
            return Ok(None);
        };
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let (_, project, _) = identity(&labels, |_| 1);
        Ok(Some(OwnContainer {
            project,
            network_mode: info.host_config.and_then(|h| h.network_mode),
        }))
    }

    /// The engine's record of container `id`; None when it does not know it.
    async fn inspect_raw(
        &self,
        id: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, DockerError> {
        match self.docker.inspect_container(id, None).await {
            Ok(i) => Ok(Some(i)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.api(e)),
        }
    }

    fn api(&self, source: bollard::errors::Error) -> DockerError {
        DockerError::Api {
            socket: self.socket.display().to_string(),
            source,
        }
    }

    /// Looks a running container up; None when it is gone or not running.
    pub async fn inspect(&self, id: &str) -> Result<Option<Container>, DockerError> {
        let Some(info) = self.inspect_raw(id).await? else {
            return Ok(None);
        };
        let state = info.state.unwrap_or_default();
        let pid = state.pid.unwrap_or(0);
        if state.running != Some(true) || pid <= 0 {
            return Ok(None);
        }
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let is_global_task = labels.contains_key(LABEL_SWARM_SERVICE)
            && labels
                .get(LABEL_SWARM_TASK)
                .and_then(|t| t.split('.').nth(1))
                .is_some_and(|slot| slot.parse::<u32>().is_err());
        let nodes = if is_global_task {
            match self.swarm_nodes().await {
                Ok(n) => n,
                Err(e) => {
                    warn!("global service task {id}: no node list for its index ({e}); index 1");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let nodes: Vec<(String, String, HashMap<String, String>)> = nodes
            .into_iter()
            .map(|n| (n.id, n.hostname, n.labels))
            .collect();
        let (service, project, index) = identity(&labels, |node| global_index(node, &nodes));
        let name = info
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let key = info
            .network_settings
            .and_then(|n| n.sandbox_key)
            .filter(|k| !k.is_empty());
        let netns = if let Some(dir) = &self.sandbox_dir {
            // conlink in a container of its own PID namespace (a swarm
            // service): /proc/PID would name some other process, so the
            // sandbox is the only way in. Missing, the container is left
            // alone with a warning rather than wired into a wrong namespace.
            let host_net = info
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.as_deref())
                == Some("host");
            match key.as_deref().and_then(|k| sandbox_in(dir, k)) {
                Some(p) if p.exists() => p,
                // On the host's network (conlink's own task, for one): not
                // a namespace conlink wires into.
                _ if host_net => {
                    debug!("container {name}: on the host network, no sandbox of its own");
                    return Ok(None);
                }
                found => {
                    warn!(
                        "container {name}: {}; not wired (mount the engine's EXEC_ROOT/netns \
                         directory at {} with `bind: {{propagation: rslave}}`, so that \
                         sandboxes made later appear there too)",
                        match (&found, &key) {
                            (Some(p), Some(k)) => format!(
                                "its namespace {} (SandboxKey {k}) is not under --sandbox-dir",
                                p.display()
                            ),
                            _ => "the engine reports no sandbox for it".to_string(),
                        },
                        dir.display()
                    );
                    return Ok(None);
                }
            }
        } else {
            // A swarm task's namespace through the engine's own handle on
            // it (NetworkSettings.SandboxKey, a bind mount under the
            // engine's exec-root) when conlink can see it at that path.
            key.filter(|_| labels.contains_key(LABEL_SWARM_SERVICE))
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/net")))
        };
        Ok(Some(Container {
            id: info.id.unwrap_or_else(|| id.to_string()),
            name,
            service,
            project,
            index,
            netns,
        }))
    }

    /// The swarm's nodes (manager engines only; a worker's engine refuses).
    pub async fn swarm_nodes(&self) -> Result<Vec<SwarmNode>, DockerError> {
        let nodes = self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| self.api(e))?;
        Ok(nodes
            .into_iter()
            .map(|n| {
                let status = n.status.unwrap_or_default();
                let ready = matches!(status.state, Some(bollard::models::NodeState::READY));
                SwarmNode {
                    id: n.id.unwrap_or_default(),
                    hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                    addr: status.addr.and_then(|a| a.parse().ok()),
                    ready,
                    labels: n.spec.and_then(|s| s.labels).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// This engine's own swarm address (`docker info` Swarm.NodeAddr), None
    /// when it is not in a swarm.
    pub async fn swarm_addr(&self) -> Result<Option<std::net::Ipv4Addr>, DockerError> {
        let info = self.docker.info().await.map_err(|e| self.api(e))?;
        Ok(info
            .swarm
            .and_then(|s| s.node_addr)
            .and_then(|a| a.parse().ok()))
    }

    /// The engine's containers: running ones (`docker ps`), or all.
    async fn list(&self, all: bool) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
        self.docker
            .list_containers(Some(ListContainersOptions {
                all,
                ..Default::default()
            }))
            .await
            .map_err(|e| self.api(e))
    }

    /// Ids of running containers.
    pub async fn running(&self) -> Result<Vec<String>, DockerError> {
        let list = self.list(false).await?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists every container (`docker ps -a`) and merges the listing into
    /// the record of what the events showed; the ids of those running.
    async fn list_into_seen(&self) -> Result<Vec<String>, DockerError> {
        use bollard::models::ContainerSummaryStateEnum as S;
        let since = self.seen().mark();
        let list = self.list(true).await?;
        let mut running = Vec::new();
        let mut listed = Vec::with_capacity(list.len());
        for c in list {
            let Some(id) = c.id else {
                continue;
            };
            // What `docker ps` without `-a` lists; an engine that leaves
            // the state out gets every container inspected (inspect tells
            // which run).
            if matches!(c.state, None | Some(S::RUNNING | S::PAUSED | S::RESTARTING)) {
                running.push(id.clone());
            }
            let Some(name) = c.names.as_ref().and_then(|n| n.first()) else {
                continue;
            };
            listed.push(Listed {
                id,
                known: known_of(name, &c.labels.unwrap_or_default()),
                alive: matches!(
                    c.state,
                    Some(S::CREATED) | Some(S::RUNNING) | Some(S::RESTARTING)
                ),
            });
        }
        debug!(
            "docker at {}: listed {} container(s)",
            self.socket.display(),
            listed.len()
        );
        self.seen().merge(since, listed);
        Ok(running)
    }

    /// The containers that exist (created, restarting, running) by the
    /// event stream alone, without asking the engine; None when the record
    /// cannot tell (the stream is not running, or a container created
    /// since the last listing has no name yet). See [`crate::seen`].
    pub fn known_cached(&self) -> Option<Vec<crate::Known>> {
        self.seen().alive()
    }

    /// Subscribes to container start/die events. The request goes out when
    /// the stream is first polled, after [`Self::resync`] has listed what
    /// runs; `since` (a second before now) makes the engine replay what
    /// happened in between, so nothing starting then is missed (a
    /// duplicate start is ignored by the daemon, a replayed start of a
    /// container that is gone inspects to nothing).
    fn open_events(&self) -> impl Stream<Item = Result<EventMessage, bollard::errors::Error>> {
        let since = std::time::SystemTime::now()
            .checked_sub(Duration::from_secs(1))
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                // create/destroy/rename only keep `seen` (podman names
                // its removal `remove`).
                ["start", "die", "create", "destroy", "remove", "rename"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        self.docker.events(Some(EventsOptions {
            since,
            until: None,
            filters: Some(filters),
        }))
    }

    /// Reads events until the stream ends, sending what they mean to `tx`.
    /// Each start is inspected on its own task, so a burst of starts (a
    /// `--scale` of 50) is not answered one inspect round-trip at a time; a
    /// die waits for the pending inspect of its own container only, so the
    /// daemon still sees start before die.
    async fn pump(
        &self,
        events: impl Stream<Item = Result<EventMessage, bollard::errors::Error>>,
        known: &mut HashSet<String>,
        tx: &mpsc::Sender<Event>,
    ) -> Result<(), String> {
        let mut pending = HashMap::new();
        let res = self.pump_events(events, known, tx, &mut pending).await;
        // Settle in-flight inspects so `known` is complete for a resync.
        for (_, h) in pending.drain() {
            settle(h, known).await;
        }
        res
    }

    async fn pump_events(
        &self,
        events: impl Stream<Item = Result<EventMessage, bollard::errors::Error>>,
        known: &mut HashSet<String>,
        tx: &mpsc::Sender<Event>,
        pending: &mut HashMap<String, Inspecting>,
    ) -> Result<(), String> {
        let mut events = std::pin::pin!(events);
        loop {
            let msg = tokio::select! {
                m = events.next() => m,
                // Notice a closed channel while the engine is quiet.
                () = tx.closed() => return Ok(()),
            };
            let msg = match msg {
                Some(Ok(m)) => m,
                // A broken connection, an engine restart, bad JSON: the
                // caller reconnects and resynchronises.
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream ended".into()),
            };
            let done: Vec<String> = pending
                .iter()
                .filter(|(_, h)| h.is_finished())
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                if let Some(h) = pending.remove(&k) {
                    settle(h, known).await;
                }
            }
            let Some(ev) = parse_event(&msg) else {
                continue;
            };
            debug!("docker event {} {}", ev.action, ev.id);
            let named = (ev.action == "create")
                .then(|| named_by_attributes(&msg))
                .flatten();
            self.seen().event(&ev.action, &ev.id, named);
            match ev.action.as_str() {
                "start" => {
                    let h = tokio::spawn(self.clone().announce(ev.id.clone(), tx.clone()));
                    if let Some(prev) = pending.insert(ev.id, h) {
                        settle(prev, known).await;
                    }
                }
                "die" => {
                    if let Some(h) = pending.remove(&ev.id) {
                        settle(h, known).await;
                    }
                    if known.remove(&ev.id) && tx.send(Event::Die(ev.id)).await.is_err() {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }

    /// Inspects `id` and reports it started; the id when it runs.
    async fn announce(self, id: String, tx: mpsc::Sender<Event>) -> Option<String> {
        match self.inspect(&id).await {
            Ok(Some(c)) => {
                let id = c.id.clone();
                tx.send(Event::Start(c)).await.ok()?;
                Some(id)
            }
            Ok(None) => None,
            Err(e) => {
                warn!("inspect {id}: {e}");
                None
            }
        }
    }

    /// Watches the engine: reports every running container as started, then
    /// live start/die events. If the stream breaks (engine restart), it
    /// reconnects with backoff and resynchronises: containers that died
    /// meanwhile get a die event, ones that started get a start event.
    /// Returns when `tx` is closed.
    pub async fn watch(&self, tx: mpsc::Sender<Event>) {
        let mut known: HashSet<String> = HashSet::new();
        let mut backoff = Duration::from_millis(100);
        // Set when the stream broke: the next good resync says so.
        let mut lost: Option<std::time::Instant> = None;
        loop {
            // The subscription replays from a second before the listing
            // (see open_events), so nothing starting in between is missed.
            let stream = self.open_events();
            match self.resync(&mut known, &tx).await {
                Ok(true) => {
                    if let Some(t) = lost.take() {
                        info!(
                            "docker event stream at {}: reconnected after {:.1} s, {} container(s) running",
                            self.socket.display(),
                            t.elapsed().as_secs_f64(),
                            known.len()
                        );
                    }
                }
                Ok(false) => return,
                Err(e) => {
                    warn!("{e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            let since = std::time::Instant::now();
            match self.pump(stream, &mut known, &tx).await {
                Ok(()) => return,
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    // A stream that breaks at once again and again (an
                    // engine whose /events fails while listing works) must
                    // not spin: back off unless it ran for a while.
                    backoff = if since.elapsed() > Duration::from_secs(5) {
                        Duration::from_millis(100)
                    } else {
                        (backoff * 2).min(Duration::from_secs(5))
                    };
                    warn!(
                        "docker event stream at {} broke ({e}); reconnecting in {backoff:?}",
                        self.socket.display()
                    );
                    lost.get_or_insert_with(std::time::Instant::now);
                    self.seen().set_live(false);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Brings `known` in line with what runs now. Ok(false): tx closed.
    async fn resync(
        &self,
        known: &mut HashSet<String>,
        tx: &mpsc::Sender<Event>,
    ) -> Result<bool, DockerError> {
        let running = self.list_into_seen().await?;
        // The stream opens (replaying from a second before the listing)
        // as soon as this returns: the record is complete from here on.
        self.seen().set_live(true);
        let now: HashSet<String> = running.iter().cloned().collect();
        let gone: Vec<String> = known.difference(&now).cloned().collect();
        for id in gone {
            known.remove(&id);
            if tx.send(Event::Die(id)).await.is_err() {
                return Ok(false);
            }
        }
        // Inspect in parallel (many containers at startup), a few at a time.
        for batch in running.chunks(16) {
            let mut set = tokio::task::JoinSet::new();
            for id in batch {
                let (rt, id) = (self.clone(), id.clone());
                set.spawn(async move { rt.inspect(&id).await });
            }
            while let Some(r) = set.join_next().await {
                let Ok(r) = r else { continue };
                if let Some(c) = r? {
                    known.insert(c.id.clone());
                    if tx.send(Event::Start(c)).await.is_err() {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(tx.send(Event::Synced).await.is_ok())
    }

    /// Runs `argv` in container `c` through the exec API, logging output
    /// lines prefixed with the container name; returns the exit code.
    pub async fn exec(&self, c: &Container, argv: Vec<String>) -> Result<i64, DockerError> {
        let created = self
            .docker
            .create_exec(
                &c.id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.api(e))?;
        let started = self
            .docker
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.api(e))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            let mut pending: HashMap<bool, String> = HashMap::new();
            while let Some(Ok(chunk)) = output.next().await {
                let (is_err, bytes) = match chunk {
                    bollard::container::LogOutput::StdErr { message } => (true, message),
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message } => (false, message),
                    bollard::container::LogOutput::StdIn { .. } => continue,
                };
                let acc = pending.entry(is_err).or_default();
                acc.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(pos) = acc.find('\n') {
                    let line: String = acc.drain(..=pos).collect();
                    info!("{}: {}", c.name, line.trim_end());
                }
            }
            for rest in pending.values().filter(|r| !r.is_empty()) {
                info!("{}: {}", c.name, rest.trim_end());
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.api(e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }
}

/// conlink's own container id, when it runs in a container: the 64-hex id
/// in the `/docker/containers/ID/` (or podman `/containers/…/userdata/`)
/// paths of the mounts the engine makes (hostname, hosts, resolv.conf).
/// cgroup v2 shows only `0::/` inside a container, so mountinfo it is.
/// Podman names the directory after its storage driver
/// (`overlay-containers`, `vfs-containers` for rootless podman with vfs).
/// Only mounts *at* those three files count (field 5 of a mountinfo line
/// is the mount point, field 4 the source path): on a host, any container
/// the engine runs shows its own mounts under `…/containers/ID/mounts/…`
/// (a swarm task's `secrets`, a shareable `shm`), and a conlink on that
/// host once took itself for that container (issue 12, found running the
/// fault tests beside a swarm test).
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    for line in mountinfo.lines() {
        let mut fields = line.split_whitespace();
        let (Some(root), Some(point)) = (fields.nth(3), fields.next()) else {
            continue;
        };
        if !matches!(point, "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf") {
            continue;
        }
        for marker in ["/containers/", "/overlay-containers/", "/vfs-containers/"] {
            if let Some(rest) = root.split(marker).nth(1) {
                let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                if id.len() == 64 {
                    return Some(id);
                }
            }
        }
    }
    None
}

/// Logs which engine answered.
pub fn log_connected(socket: &Path) {
    info!("connected to container engine at {}", socket.display());
}

impl DockerRuntime {
    /// Every container the engine knows in a state that will (or may soon)
    /// run: created, restarting, running (`docker ps -a` minus the exited
    /// and dead ones).
    pub async fn known(&self) -> Result<Vec<crate::Known>, DockerError> {
        self.list_into_seen().await?;
        Ok(self.seen().alive_named())
    }
}

/// The engines conlink watches (docker and/or podman), as one runtime:
/// events of all, exec through the first that knows the container.
pub struct Engines(pub Vec<DockerRuntime>);

impl crate::Runtime for Engines {
    async fn watch(&self, tx: mpsc::Sender<Event>) {
        // Each engine's events are relayed; `Synced` only once every
        // engine has listed (before that, another engine's containers are
        // not reported yet).
        let n = self.0.len();
        let synced = std::sync::Arc::new(std::sync::Mutex::new(vec![false; n]));
        let mut set = tokio::task::JoinSet::new();
        for (i, rt) in self.0.iter().enumerate() {
            let (rt, tx, synced) = (rt.clone(), tx.clone(), synced.clone());
            let (etx, mut erx) = mpsc::channel(1024);
            set.spawn(async move { rt.watch(etx).await });
            set.spawn(async move {
                loop {
                    // The receiver gone (conlink stopping) ends the relay
                    // at once, while the engine is quiet too: dropping
                    // `erx` is what tells the engine's watcher to stop.
                    let ev = tokio::select! {
                        ev = erx.recv() => match ev {
                            Some(ev) => ev,
                            None => return,
                        },
                        () = tx.closed() => return,
                    };
                    if let Event::Synced = ev {
                        let all = {
                            let mut s = synced.lock().unwrap_or_else(|p| p.into_inner());
                            s[i] = true;
                            s.iter().all(|x| *x)
                        };
                        if !all {
                            continue;
                        }
                    }
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while set.join_next().await.is_some() {}
    }

    async fn exec(&self, c: &Container, argv: Vec<String>) -> Result<i64, crate::RuntimeError> {
        let mut last = None;
        for rt in &self.0 {
            match rt.exec(c, argv.clone()).await {
                Ok(code) => return Ok(code),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || "no engine".into(),
            |e| Box::new(e) as crate::RuntimeError,
        ))
    }

    async fn known(&self) -> Result<Vec<crate::Known>, crate::RuntimeError> {
        let mut all = Vec::new();
        for rt in &self.0 {
            all.extend(rt.known().await?);
        }
        Ok(all)
    }

    fn known_cached(&self) -> Option<Vec<crate::Known>> {
        let mut all = Vec::new();
        for rt in &self.0 {
            all.extend(rt.known_cached()?);
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn labels(v: &[(&str, &str)]) -> HashMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn swarm_tasks_map_to_service_stack_and_slot() {
        // Labels as docker 20.10 sets them on a stack's replicated task.
        let l = labels(&[
            ("com.docker.stack.namespace", "lab"),
            ("com.docker.swarm.service.name", "lab_node"),
            ("com.docker.swarm.node.id", "2dng1kbzhe1d701wec8iy4t5l"),
            (
                "com.docker.swarm.task.name",
                "lab_node.4.htwvqdpxx2nlus1lrc8wyzgfp",
            ),
        ]);
        let never = |_: &str| -> u32 { panic!("not a global task") };
        assert_eq!(
            identity(&l, never),
            (Some("node".into()), Some("lab".into()), 4)
        );
        // A service created without a stack keeps its name, no project.
        let l = labels(&[
            ("com.docker.swarm.service.name", "t2"),
            (
                "com.docker.swarm.task.name",
                "t2.1.jqz1w0qw87wcnsv8f75hkgvzu",
            ),
        ]);
        assert_eq!(identity(&l, never), (Some("t2".into()), None, 1));
        // A stack service whose name contains the separator: only the
        // stack prefix goes.
        let l = labels(&[
            ("com.docker.stack.namespace", "lab"),
            ("com.docker.swarm.service.name", "lab_my_node"),
            ("com.docker.swarm.task.name", "lab_my_node.12.x"),
        ]);
        assert_eq!(
            identity(&l, never),
            (Some("my_node".into()), Some("lab".into()), 12)
        );
        // Compose containers keep their compose identity.
        let l = labels(&[
            ("com.docker.compose.project", "p"),
            ("com.docker.compose.service", "s"),
            ("com.docker.compose.container-number", "3"),
        ]);
        assert_eq!(identity(&l, never), (Some("s".into()), Some("p".into()), 3));
    }

    #[test]
    fn global_tasks_take_the_node_rank_or_its_label() {
        let l = labels(&[
            ("com.docker.stack.namespace", "lab"),
            ("com.docker.swarm.service.name", "lab_g"),
            ("com.docker.swarm.node.id", "bbb"),
            (
                "com.docker.swarm.task.name",
                "lab_g.bbb.pfspnemm2cgmpan5yv3l9ngwd",
            ),
        ]);
        let nodes = vec![
            ("ccc".to_string(), "h1".to_string(), HashMap::new()),
            ("bbb".to_string(), "h2".to_string(), HashMap::new()),
            ("aaa".to_string(), "h2".to_string(), HashMap::new()),
        ];
        // Ordered by (hostname, id): ccc@h1, aaa@h2, bbb@h2.
        assert_eq!(
            identity(&l, |n| global_index(n, &nodes)),
            (Some("g".into()), Some("lab".into()), 3)
        );
        let mut labelled = nodes.clone();
        labelled[1].2 = labels(&[("conlink.index", "7")]);
        assert_eq!(global_index("bbb", &labelled), 7);
        assert_eq!(global_index("zzz", &nodes), 1);
    }

    #[test]
    fn sandbox_keys_map_into_the_mounted_directory() {
        let dir = Path::new("/run/engine-netns");
        assert_eq!(
            sandbox_in(dir, "/var/run/docker/netns/3f2a9c1b7d4e"),
            Some(PathBuf::from("/run/engine-netns/3f2a9c1b7d4e"))
        );
        // Another exec-root, the same file name.
        assert_eq!(
            sandbox_in(dir, "/tmp/e1/netns/1-abc"),
            Some(PathBuf::from("/run/engine-netns/1-abc"))
        );
        assert_eq!(sandbox_in(dir, "/"), None);
    }

    #[test]
    fn own_container_id_in_rootless_podman_vfs() {
        let id = "a".repeat(64);
        let line = format!(
            "1020 1011 0:40 /home/u/.local/share/containers/storage/vfs-containers/{id}/userdata/hostname \
             /etc/hostname rw,nosuid,nodev - tmpfs tmpfs rw"
        );
        assert_eq!(own_container_id(&line), Some(id));
        assert_eq!(
            own_container_id("25 1 0:22 / / rw - ext4 /dev/vda rw"),
            None
        );
    }

    #[test]
    fn events_decode_through_bollard() {
        let d = |v: serde_json::Value| decode_event(v.to_string().as_bytes());
        // What docker and podman send (both also carry status/id/from).
        let new = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {}},
                         "status": "start", "id": "abc", "from": "alpine", "time": 1, "timeNano": 1});
        assert_eq!(
            d(new),
            Some(RawEvent {
                action: "start".into(),
                id: "abc".into()
            })
        );
        // Without Type (container events only), with an unknown scope.
        let untyped = json!({"Action": "die", "Actor": {"ID": "def"}});
        assert_eq!(d(untyped).map(|e| e.action), Some("die".to_string()));
        // Pre-2016 fields only: not understood (no engine conlink supports
        // sends just these).
        assert_eq!(d(json!({"status": "die", "id": "def"})), None);
        assert_eq!(
            d(json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}})),
            None
        );
        assert_eq!(
            d(json!({"Type": "container", "Action": "", "Actor": {"ID": "n"}})),
            None
        );
        assert_eq!(decode_event(b"{not json"), None);
    }

    #[test]
    fn own_id_from_mountinfo() {
        let id = "3f1c".repeat(16);
        let mi = format!(
            "1 0 0:1 / / rw - overlay overlay rw\n\
             612 600 254:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(own_container_id(&mi), Some(id.clone()));
        assert_eq!(
            own_container_id("1 0 0:1 / / rw - overlay overlay rw\n"),
            None
        );
        // On a host running a swarm task of a private engine: its secrets
        // mount is no sign of being in a container.
        let host = format!(
            "25 1 0:22 / / rw - ext4 /dev/vda rw\n\
             100 115 0:66 / /tmp/t/d1/containers/{id}/mounts/secrets ro,relatime shared:15 - tmpfs tmpfs ro\n"
        );
        assert_eq!(own_container_id(&host), None);
    }

    /// A tiny engine on a unix socket: answers /version, container list
    /// and inspect from `running`, and serves /events from a channel of raw
    /// chunks (None closes the stream).
    mod fake {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{UnixListener, UnixStream};
        use tokio::sync::mpsc;

        /// How many times /events was requested.
        pub static SUBSCRIPTIONS: std::sync::atomic::AtomicUsize =
            std::sync::atomic::AtomicUsize::new(0);

        /// The path and query of the last /events request.
        pub static LAST_EVENTS_QUERY: Mutex<String> = Mutex::new(String::new());

        pub type Chunks = Arc<tokio::sync::Mutex<mpsc::Receiver<Option<String>>>>;

        /// id -> (name, service, number, pid)
        pub type Running = Arc<Mutex<HashMap<String, (String, String, u32, u32)>>>;

        pub fn serve(listener: UnixListener, running: Running, chunks: Chunks) {
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    tokio::spawn(conn(s, running.clone(), chunks.clone()));
                }
            });
        }

        async fn conn(mut s: UnixStream, running: Running, chunks: Chunks) {
            let mut buf = Vec::new();
            loop {
                // One request head (no bodies: GETs only).
                let head = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let h = String::from_utf8_lossy(&buf[..i]).into_owned();
                        buf.drain(..i + 4);
                        break h;
                    }
                    let mut b = [0u8; 4096];
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.contains("/events") {
                    *LAST_EVENTS_QUERY.lock().unwrap() = path.clone();
                    SUBSCRIPTIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if s.write_all(hdr.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut rx = chunks.lock().await;
                    while let Some(Some(c)) = rx.recv().await {
                        let out = format!("{:x}\r\n{c}\r\n", c.len());
                        if s.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    return; // closes the stream
                }
                let body = if path.contains("/version") {
                    r#"{"ApiVersion":"1.41","Version":"20.10.24","MinAPIVersion":"1.12"}"#
                        .to_string()
                } else if path.contains("/containers/json") {
                    let ids: Vec<String> = running
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|(id, (name, svc, _, _))| {
                            format!(
                                r#"{{"Id":"{id}","Names":["/{name}"],"State":"running","Labels":{{"com.docker.compose.project":"p","com.docker.compose.service":"{svc}"}}}}"#
                            )
                        })
                        .collect();
                    format!("[{}]", ids.join(","))
                } else if let Some(id) = path
                    .split("/containers/")
                    .nth(1)
                    .and_then(|r| r.strip_suffix("/json"))
                {
                    let found = running.lock().unwrap().get(id).cloned();
                    match found {
                        Some((name, svc, n, pid)) => format!(
                            r#"{{"Id":"{id}","Name":"/{name}","State":{{"Running":true,"Pid":{pid}}},"Config":{{"Labels":{{"com.docker.compose.project":"p","com.docker.compose.service":"{svc}","com.docker.compose.container-number":"{n}"}}}}}}"#
                        ),
                        None => {
                            let msg = r#"{"message":"No such container"}"#;
                            let out = format!(
                                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{msg}",
                                msg.len()
                            );
                            if s.write_all(out.as_bytes()).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    }
                } else {
                    "{}".to_string()
                };
                let out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if s.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("watch ended")
    }

    fn started(ev: &Event) -> Option<(String, u32)> {
        match ev {
            Event::Start(c) => Some((c.name.clone(), c.index)),
            Event::Die(_) | Event::Synced => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_lists_streams_events_and_resyncs_after_a_break() {
        let dir = std::env::temp_dir().join(format!("conlink-fake-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let id = |c: char| c.to_string().repeat(64);
        let running: fake::Running = Arc::default();
        running
            .lock()
            .unwrap()
            .insert(id('a'), ("p-node-1".into(), "node".into(), 1, 101));
        let (chunk_tx, chunk_rx) = mpsc::channel(16);
        fake::serve(
            listener,
            running.clone(),
            Arc::new(tokio::sync::Mutex::new(chunk_rx)),
        );

        let rt = DockerRuntime::connect(&sock)
            .await
            .expect("connect to fake engine");
        let (tx, mut rx) = mpsc::channel(16);
        let watcher = tokio::spawn(async move { rt.watch(tx).await });

        // Already running at subscription.
        let ev = next(&mut rx).await;
        assert_eq!(started(&ev), Some(("p-node-1".into(), 1)));
        if let Event::Start(c) = &ev {
            assert_eq!(c.netns, PathBuf::from("/proc/101/ns/net"));
            assert_eq!(c.project.as_deref(), Some("p"));
        }
        // The listing is complete.
        assert_eq!(next(&mut rx).await, Event::Synced);

        // A new-style start event split across two chunks.
        running
            .lock()
            .unwrap()
            .insert(id('b'), ("p-node-2".into(), "node".into(), 2, 102));
        let ev = format!(
            r#"{{"Type":"container","Action":"start","Actor":{{"ID":"{}","Attributes":{{}}}}}}"#,
            id('b')
        );
        let (h1, h2) = ev.split_at(20);
        chunk_tx.send(Some(h1.to_string())).await.unwrap();
        chunk_tx.send(Some(h2.to_string() + "\n")).await.unwrap();
        assert_eq!(started(&next(&mut rx).await), Some(("p-node-2".into(), 2)));

        // A die event with the legacy fields as well, as docker sends it.
        running.lock().unwrap().remove(&id('a'));
        chunk_tx
            .send(Some(format!(
                r#"{{"status":"die","id":"{0}","Type":"container","Action":"die","Actor":{{"ID":"{0}"}}}}"#,
                id('a')
            )))
            .await
            .unwrap();
        assert_eq!(next(&mut rx).await, Event::Die(id('a')));
        // All of that came through the first subscription (a parse error
        // would have broken the stream and been papered over by a resync).
        let subs = || fake::SUBSCRIPTIONS.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(subs(), 1);

        // The stream breaks; meanwhile node-2 dies and node-3 starts. After
        // reconnecting: a die for node-2, starts for what runs (node-3).
        running.lock().unwrap().remove(&id('b'));
        running
            .lock()
            .unwrap()
            .insert(id('c'), ("p-node-3".into(), "node".into(), 3, 103));
        chunk_tx.send(None).await.unwrap();
        let mut got = [next(&mut rx).await, next(&mut rx).await];
        got.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(got[0], Event::Die(id('b')));
        assert_eq!(started(&got[1]), Some(("p-node-3".into(), 3)));
        assert_eq!(next(&mut rx).await, Event::Synced);
        // The new subscription goes out right after the listing (it replays
        // from before it, `since`).
        let t = std::time::Instant::now();
        while subs() < 2 && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(subs(), 2);
        assert!(
            fake::LAST_EVENTS_QUERY.lock().unwrap().contains("since="),
            "{:?}",
            fake::LAST_EVENTS_QUERY.lock().unwrap()
        );

        drop(rx);
        watcher.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
