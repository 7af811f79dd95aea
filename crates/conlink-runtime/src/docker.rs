//! The docker runtime: any engine speaking the docker API (docker, podman).
//!
//! Container lookups and exec go through `bollard`. The event stream is read
//! with a small HTTP/1.1 reader of our own because bollard's `EventMessage`
//! only knows the new `Action`/`Actor.ID` fields, and older engines (and some
//! podman versions) send only `status`/`id`; we accept both.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{Container, Event};

const LABEL_PROJECT: &str = "com.docker.compose.project";
const LABEL_SERVICE: &str = "com.docker.compose.service";
const LABEL_NUMBER: &str = "com.docker.compose.container-number";

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
    /// The event stream could not be read.
    #[error("docker events at {socket}: {reason}")]
    Events { socket: String, reason: String },
}

/// A connection to one engine socket.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    socket: PathBuf,
}

/// A container event as read from the stream (either field generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// `start`, `die`, …
    pub action: String,
    /// Container id.
    pub id: String,
}

/// Parses one event object, accepting `Action`/`Actor.ID` and the older
/// `status`/`id`. Returns None for non-container events.
pub fn parse_event(v: &serde_json::Value) -> Option<RawEvent> {
    let typ = v
        .get("Type")
        .and_then(|t| t.as_str())
        .unwrap_or("container");
    if typ != "container" {
        return None;
    }
    let action = v
        .get("Action")
        .or_else(|| v.get("status"))
        .and_then(|a| a.as_str())?;
    let id = v
        .get("Actor")
        .and_then(|a| a.get("ID"))
        .or_else(|| v.get("id"))
        .and_then(|a| a.as_str())?;
    Some(RawEvent {
        action: action.to_string(),
        id: id.to_string(),
    })
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
        })
    }

    fn api(&self, source: bollard::errors::Error) -> DockerError {
        DockerError::Api {
            socket: self.socket.display().to_string(),
            source,
        }
    }

    /// Looks a running container up; None when it is gone or not running.
    pub async fn inspect(&self, id: &str) -> Result<Option<Container>, DockerError> {
        let info = match self.docker.inspect_container(id, None).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.api(e)),
        };
        let state = info.state.unwrap_or_default();
        let pid = state.pid.unwrap_or(0);
        if state.running != Some(true) || pid <= 0 {
            return Ok(None);
        }
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        Ok(Some(Container {
            id: info.id.unwrap_or_else(|| id.to_string()),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service: labels.get(LABEL_SERVICE).cloned(),
            project: labels.get(LABEL_PROJECT).cloned(),
            index: labels
                .get(LABEL_NUMBER)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        }))
    }

    /// Ids of running containers.
    pub async fn running(&self) -> Result<Vec<String>, DockerError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                ..Default::default()
            }))
            .await
            .map_err(|e| self.api(e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Opens the event stream (container start/die only).
    async fn open_events(&self) -> Result<BufReader<UnixStream>, DockerError> {
        let err = |reason: String| DockerError::Events {
            socket: self.socket.display().to_string(),
            reason,
        };
        let mut s = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| err(e.to_string()))?;
        // filters={"type":["container"],"event":["start","die"]}, url-encoded.
        let q = "%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22start%22%2C%22die%22%5D%7D";
        let req = format!("GET /events?filters={q} HTTP/1.1\r\nHost: docker\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status)
            .await
            .map_err(|e| err(e.to_string()))?;
        if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
            return Err(err(format!("unexpected answer {:?}", status.trim())));
        }
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await.map_err(|e| err(e.to_string()))? == 0 {
                return Err(err("connection closed in headers".into()));
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("transfer-encoding:")
                && h.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
        if !chunked {
            return Err(err("event stream is not chunked".into()));
        }
        Ok(r)
    }

    /// Reads events until the stream ends, sending what they mean to `tx`.
    async fn pump(
        &self,
        mut r: BufReader<UnixStream>,
        known: &mut HashSet<String>,
        tx: &mpsc::Sender<Event>,
    ) -> Result<(), String> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // Chunked transfer: "SIZE\r\n DATA \r\n"; events may span chunks.
            let mut line = String::new();
            if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("stream closed".into());
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                return Err("stream ended".into());
            }
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk).await.map_err(|e| e.to_string())?;
            buf.extend_from_slice(&chunk[..size]);
            let mut consumed = 0;
            let mut it =
                serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
            while let Some(Ok(v)) = it.next() {
                consumed = it.byte_offset();
                let Some(ev) = parse_event(&v) else { continue };
                debug!("docker event {} {}", ev.action, ev.id);
                let out = match ev.action.as_str() {
                    "start" => match self.inspect(&ev.id).await {
                        Ok(Some(c)) => {
                            known.insert(c.id.clone());
                            Some(Event::Start(c))
                        }
                        Ok(None) => None,
                        Err(e) => {
                            warn!("inspect {}: {e}", ev.id);
                            None
                        }
                    },
                    "die" => known.remove(&ev.id).then(|| Event::Die(ev.id.clone())),
                    _ => None,
                };
                if let Some(out) = out {
                    if tx.send(out).await.is_err() {
                        return Ok(());
                    }
                }
            }
            buf.drain(..consumed);
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
        loop {
            // Subscribe first, then list, so nothing starting in between is
            // missed (a duplicate start is ignored by the daemon).
            let stream = match self.open_events().await {
                Ok(s) => s,
                Err(e) => {
                    warn!("{e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            match self.resync(&mut known, &tx).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    warn!("{e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
            backoff = Duration::from_millis(100);
            match self.pump(stream, &mut known, &tx).await {
                Ok(()) => return,
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    warn!(
                        "docker event stream at {} broke ({e}); reconnecting",
                        self.socket.display()
                    );
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
        let running = self.running().await?;
        let now: HashSet<String> = running.iter().cloned().collect();
        let gone: Vec<String> = known.difference(&now).cloned().collect();
        for id in gone {
            known.remove(&id);
            if tx.send(Event::Die(id)).await.is_err() {
                return Ok(false);
            }
        }
        for id in running {
            if let Some(c) = self.inspect(&id).await? {
                known.insert(c.id.clone());
                if tx.send(Event::Start(c)).await.is_err() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
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
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    for line in mountinfo.lines() {
        for field in line.split_whitespace() {
            for marker in ["/containers/", "/overlay-containers/"] {
                if let Some(rest) = field.split(marker).nth(1) {
                    let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                    if id.len() == 64 {
                        return Some(id);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_event_generations_parse() {
        let new = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {}}});
        let old = json!({"status": "die", "id": "def", "from": "alpine"});
        let net = json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}});
        assert_eq!(
            parse_event(&new),
            Some(RawEvent {
                action: "start".into(),
                id: "abc".into()
            })
        );
        assert_eq!(
            parse_event(&old),
            Some(RawEvent {
                action: "die".into(),
                id: "def".into()
            })
        );
        assert_eq!(parse_event(&net), None);
    }

    #[test]
    fn own_id_from_mountinfo() {
        let id = "3f1c".repeat(16);
        let mi = format!(
            "1 0 0:1 / / rw - overlay overlay rw\n\
             612 600 254:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(own_container_id(&mi), Some(id));
        assert_eq!(
            own_container_id("1 0 0:1 / / rw - overlay overlay rw\n"),
            None
        );
    }
}
