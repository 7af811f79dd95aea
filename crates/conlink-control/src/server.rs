//! The HTTP/1.1 servers: the JSON API (unix socket, optional TCP with a
//! bearer token), the Prometheus endpoint and the live page. One accept
//! loop serves all three; what a listener answers is its [`Role`].
//!
//! API paths:
//! - `GET /v1/status` → [`Status`] JSON
//! - `GET /v1/events?since=UNIX_SECS&follow=0|1&filter=KEY=VALUE…` → JSON
//!   lines: past events from `since` (all of them with `follow=0`), then
//!   live ones unless `follow=0`
//! - `POST /v1/links/set` [`SetRequest`] → [`ChangeReply`]
//! - `POST /v1/links/clear` [`ClearRequest`] → [`ChangeReply`]
//!
//! Errors are `{"error": "...", "kind": "..."}` with a matching status.

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api::{
    Admin, ChangeReply, ClearRequest, ErrorReply, Event, FlapRequest, FlapStatus, SetRequest,
    Status,
};
use crate::backend::{ControlBackend, OverrideChange};
use crate::error::{Error, Result};
use crate::target::Selector;

/// Where conlink's API sockets live.
pub const SOCKET_DIR: &str = "/run/conlink";

/// `/run/conlink/NAME.sock` (characters other than `[A-Za-z0-9._-]` in
/// NAME become `_`).
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{clean}.sock"))
}

pub(crate) type Resp = Response<BoxBody<Bytes, Infallible>>;

/// What a listener serves.
#[derive(Debug, Clone)]
pub enum Role {
    /// The JSON API; `token`: required bearer token (TCP).
    Api {
        /// Bearer token every request must carry (None: unix socket, whose
        /// file mode is the access control).
        token: Option<String>,
    },
    /// `GET /metrics`.
    Metrics,
    /// The live page (read-only).
    Web,
}

/// A running flap on the links of one target.
struct Flap {
    status: FlapStatus,
    links: Vec<String>,
    /// In the down half of a cycle (to put the links back up if cancelled).
    down: bool,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// State shared by every listener: the backend and the running flaps.
pub struct Control {
    backend: Arc<dyn ControlBackend>,
    flaps: Mutex<HashMap<String, Flap>>,
}

impl Control {
    /// Control over `backend`.
    pub fn new(backend: Arc<dyn ControlBackend>) -> Arc<Control> {
        Arc::new(Control {
            backend,
            flaps: Mutex::new(HashMap::new()),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn ControlBackend> {
        &self.backend
    }

    fn flaps(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flap>> {
        self.flaps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The backend's snapshot with running flaps filled in.
    pub async fn status(self: &Arc<Self>) -> Status {
        let me = self.clone();
        let mut st = tokio::task::spawn_blocking(move || me.backend.snapshot())
            .await
            .unwrap_or_default();
        let flaps = self.flaps();
        for l in &mut st.links {
            let id = l.id();
            if let Some(f) = flaps.values().find(|f| f.links.contains(&id)) {
                l.flap = Some(f.status);
            }
        }
        st
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn ControlBackend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(me.backend.as_ref()))
            .await
            .map_err(|e| Error::Apply(format!("request task failed: {e}")))?
    }

    /// Stops flaps on any of `links`; returns whether one was in its down
    /// half (the caller then restores admin up).
    fn cancel_flaps(&self, links: &[String]) -> bool {
        let mut flaps = self.flaps();
        let hit: Vec<String> = flaps
            .iter()
            .filter(|(_, f)| f.links.iter().any(|l| links.contains(l)))
            .map(|(k, _)| k.clone())
            .collect();
        let mut was_down = false;
        for k in hit {
            if let Some(mut f) = flaps.remove(&k) {
                if let Some(t) = f.task.take() {
                    t.abort();
                }
                was_down |= f.down;
                info!("flap on {k} cancelled after {} cycle(s)", f.status.done);
            }
        }
        was_down
    }

    /// `link set`.
    pub async fn set(self: &Arc<Self>, req: SetRequest) -> Result<ChangeReply> {
        let sel = Selector::parse(&req.target)?;
        let netem = match &req.netem {
            Some(s) => Some(
                s.parse::<conlink_model::Netem>()
                    .map_err(|e| Error::BadRequest(e.to_string()))?,
            ),
            None => None,
        };
        if req.admin.is_none() && netem.is_none() && !req.reset && req.flap.is_none() {
            return Err(Error::BadRequest(
                "nothing to change: give down, up, --netem, --reset or --flap".into(),
            ));
        }
        if req.flap.is_some() && req.admin.is_some() {
            return Err(Error::BadRequest(
                "--flap and down/up exclude each other".into(),
            ));
        }
        if let Some(f) = &req.flap {
            if f.down_ms == 0 || f.up_ms == 0 || f.count == Some(0) {
                return Err(Error::BadRequest(
                    "--flap times must be above 0 and --count at least 1".into(),
                ));
            }
        }
        // Resolve first so that an unknown target changes nothing, flaps
        // included.
        let st = self.status().await;
        let links: Vec<String> = sel.resolve(&st)?.into_iter().map(|l| l.id()).collect();
        if self.cancel_flaps(&links) && req.admin.is_none() {
            let sel2 = sel.clone();
            self.blocking(move |b| {
                b.set_override(
                    &sel2,
                    &OverrideChange {
                        admin_down: Some(false),
                        ..Default::default()
                    },
                )
            })
            .await?;
        }
        let change = OverrideChange {
            admin_down: req.admin.map(|a| a == Admin::Down),
            netem,
            reset_netem: req.reset,
        };
        if change != OverrideChange::default() {
            let sel2 = sel.clone();
            self.blocking(move |b| b.set_override(&sel2, &change))
                .await?;
        }
        if let Some(f) = req.flap {
            self.start_flap(sel, links.clone(), f).await?;
        }
        Ok(ChangeReply { links })
    }

    async fn start_flap(
        self: &Arc<Self>,
        sel: Selector,
        links: Vec<String>,
        f: FlapRequest,
    ) -> Result<()> {
        // The first transition runs here, so a backend that cannot apply
        // overrides fails the request instead of a background task.
        let sel2 = sel.clone();
        self.blocking(move |b| {
            b.set_override(
                &sel2,
                &OverrideChange {
                    admin_down: Some(true),
                    ..Default::default()
                },
            )
        })
        .await?;
        let key = sel.raw.clone();
        self.flaps().insert(
            key.clone(),
            Flap {
                status: FlapStatus {
                    down_ms: f.down_ms,
                    up_ms: f.up_ms,
                    count: f.count,
                    done: 0,
                },
                links,
                down: true,
                task: None,
            },
        );
        let me = self.clone();
        let k2 = key.clone();
        let task = tokio::spawn(async move { me.flap_loop(sel, k2, f).await });
        if let Some(fl) = self.flaps().get_mut(&key) {
            fl.task = Some(task);
        }
        Ok(())
    }

    async fn flap_loop(self: Arc<Self>, sel: Selector, key: String, f: FlapRequest) {
        let mut done = 0u32;
        loop {
            tokio::time::sleep(Duration::from_millis(f.down_ms)).await;
            if let Err(e) = self.flap_step(&sel, &key, false).await {
                warn!("flap {key}: {e}");
                break;
            }
            done += 1;
            if let Some(fl) = self.flaps().get_mut(&key) {
                fl.status.done = done;
            }
            if f.count.is_some_and(|n| done >= n) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(f.up_ms)).await;
            if let Err(e) = self.flap_step(&sel, &key, true).await {
                warn!("flap {key}: {e}");
                break;
            }
        }
        info!("flap on {key}: {done} cycle(s) done");
        self.flaps().remove(&key);
    }

    async fn flap_step(self: &Arc<Self>, sel: &Selector, key: &str, down: bool) -> Result<()> {
        let sel = sel.clone();
        self.blocking(move |b| {
            b.set_override(
                &sel,
                &OverrideChange {
                    admin_down: Some(down),
                    ..Default::default()
                },
            )
        })
        .await?;
        if let Some(fl) = self.flaps().get_mut(key) {
            fl.down = down;
        }
        Ok(())
    }

    /// `link clear`.
    pub async fn clear(self: &Arc<Self>, req: ClearRequest) -> Result<ChangeReply> {
        let sel = Selector::parse(&req.target)?;
        let st = self.status().await;
        let links: Vec<String> = sel.resolve(&st)?.into_iter().map(|l| l.id()).collect();
        self.cancel_flaps(&links);
        let links = self.blocking(move |b| b.clear_override(&sel)).await?;
        Ok(ChangeReply { links })
    }
}

/// A listener running in the background; stops (and removes its socket
/// file) when dropped.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
    /// TCP: the bound address (port 0 resolved).
    pub local_addr: Option<std::net::SocketAddr>,
    socket: Option<PathBuf>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Serves the API on unix socket `path` (mode 0600, directory made if
/// missing). A stale socket file is replaced; one another process still
/// answers on is an error.
pub fn serve_unix(path: &Path, ctl: Arc<Control>) -> Result<Listener> {
    let io = |op: String| move |source| Error::Io { op, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Io {
                op: format!("bind {}", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another conlink answers on this socket (give this one another --netns-name or compose project)",
                ),
            });
        }
        std::fs::remove_file(path).map_err(io(format!("remove stale {}", path.display())))?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(io(format!("bind {}", path.display())))?;
    // Root only: the socket gives full control of the lab. (Connecting
    // needs write permission on the socket file.)
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod 0600 {}", path.display())))?;
    info!("control API on unix socket {}", path.display());
    let role = Role::Api { token: None };
    let task = tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => spawn_conn(s, ctl.clone(), role.clone()),
                Err(e) => {
                    warn!("accept on API socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener {
        task,
        local_addr: None,
        socket: Some(path.to_path_buf()),
    })
}

/// Serves `role` on TCP `addr`. The API role must carry a token: an
/// unauthenticated TCP API is refused.
pub async fn serve_tcp(addr: &str, role: Role, ctl: Arc<Control>) -> Result<Listener> {
    if let Role::Api { token } = &role {
        if token.as_deref().is_none_or(str::is_empty) {
            return Err(Error::BadRequest(format!(
                "--api-addr {addr}: a TCP API needs a bearer token (--api-token-file); refusing unauthenticated TCP"
            )));
        }
    }
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Io {
            op: format!("listen on {addr}"),
            source,
        })?;
    let local = l.local_addr().ok();
    let what = match role {
        Role::Api { .. } => "control API (bearer token)",
        Role::Metrics => "metrics",
        Role::Web => "live page",
    };
    info!(
        "{what} on http://{}",
        local.map_or(addr.to_string(), |a| a.to_string())
    );
    let task = tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    spawn_conn(s, ctl.clone(), role.clone())
                }
                Err(e) => {
                    warn!("accept on {what}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener {
        task,
        local_addr: local,
        socket: None,
    })
}

fn spawn_conn<S>(s: S, ctl: Arc<Control>, role: Role)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let (ctl, role) = (ctl.clone(), role.clone());
            async move { Ok::<_, Infallible>(route(req, ctl, role).await) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(s), svc)
            .await
        {
            debug!("control connection: {e}");
        }
    });
}

fn full(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json<T: serde::Serialize>(v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => full(StatusCode::OK, "application/json", b),
        Err(e) => error(&Error::Apply(format!("serialize answer: {e}"))),
    }
}

fn error(e: &Error) -> Resp {
    let body = serde_json::to_vec(&ErrorReply {
        error: e.to_string(),
        kind: e.kind().to_string(),
    })
    .unwrap_or_default();
    full(
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        body,
    )
}

/// Compares without an early exit, so timing does not leak the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T> {
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::BadRequest(format!("read request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("bad request JSON: {e}")))
}

async fn route(req: Request<Incoming>, ctl: Arc<Control>, role: Role) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match role {
        Role::Metrics => match (req.method(), path.as_str()) {
            (&Method::GET, "/metrics") => {
                let st = ctl.status().await;
                let b = &ctl.backend;
                let text = crate::render::metrics_text(&st, b.metrics(), &b.event_counts());
                full(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text,
                )
            }
            _ => error(&Error::NotFound(path)),
        },
        Role::Web => match (req.method(), path.as_str()) {
            (&Method::GET, "/") => {
                let me = ctl.clone();
                let page = tokio::task::spawn_blocking(move || me.backend.graph_html())
                    .await
                    .unwrap_or_default();
                full(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    crate::web::live_page(&page),
                )
            }
            (&Method::GET, "/v1/status") => json(&ctl.status().await),
            (&Method::GET, "/v1/stream") => crate::web::stream(ctl),
            _ => error(&Error::NotFound(path)),
        },
        Role::Api { token } => {
            if let Some(t) = token {
                let got = req
                    .headers()
                    .get(hyper::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                match got {
                    Some(g) if same(g.trim().as_bytes(), t.as_bytes()) => {}
                    Some(_) => return error(&Error::Unauthorized("wrong bearer token".into())),
                    None => {
                        return error(&Error::Unauthorized(
                            "missing bearer token: send Authorization: Bearer TOKEN (the content of --api-token-file)".into(),
                        ))
                    }
                }
            }
            match (req.method().clone(), path.as_str()) {
                (Method::GET, "/v1/status") => json(&ctl.status().await),
                (Method::GET, "/v1/events") => events(ctl, &query),
                (Method::GET, "/v1/state") => {
                    let me = ctl.clone();
                    // Serializing every link of a large lab is work: off
                    // the async threads.
                    let v = tokio::task::spawn_blocking(move || me.backend.running_state())
                        .await
                        .unwrap_or_default();
                    json(&v)
                }
                (Method::POST, "/v1/links/set") => match read_json::<SetRequest>(req).await {
                    Ok(r) => match ctl.set(r).await {
                        Ok(v) => json(&v),
                        Err(e) => error(&e),
                    },
                    Err(e) => error(&e),
                },
                (Method::POST, "/v1/links/clear") => match read_json::<ClearRequest>(req).await {
                    Ok(r) => match ctl.clear(r).await {
                        Ok(v) => json(&v),
                        Err(e) => error(&e),
                    },
                    Err(e) => error(&e),
                },
                _ => error(&Error::NotFound(path)),
            }
        }
    }
}

/// A response body fed by a channel (event stream, server-sent events).
pub(crate) struct ChannelBody(pub(crate) mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

pub(crate) fn streaming(ctype: &str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let mut r = Response::new(ChannelBody(rx).boxed());
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-cache".parse() {
        r.headers_mut().insert(hyper::header::CACHE_CONTROL, v);
    }
    r
}

/// Event filters of `GET /v1/events`: `since`, `follow`, `filter=KEY=VALUE`
/// (KEY `type`, `action`, `id`, or any attribute; filters with different
/// keys must all match, one of several values of the same key must).
#[derive(Debug, Default)]
pub struct EventQuery {
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
    /// Keep streaming live events after the history.
    pub follow: bool,
    /// (key, value) filters.
    pub filters: Vec<(String, String)>,
}

fn unpercent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl EventQuery {
    /// Parses the query string.
    pub fn parse(q: &str) -> Result<EventQuery> {
        let mut eq = EventQuery {
            follow: true,
            ..Default::default()
        };
        for kv in q.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = unpercent(v);
            match k {
                "since" => {
                    let secs: f64 = v.parse().map_err(|_| {
                        Error::BadRequest(format!("since={v:?}: expected unix seconds"))
                    })?;
                    if !(secs.is_finite() && secs >= 0.0) {
                        return Err(Error::BadRequest(format!("since={v:?}: out of range")));
                    }
                    eq.since = Some(UNIX_EPOCH + Duration::from_secs_f64(secs));
                }
                "follow" => eq.follow = !matches!(v.as_str(), "0" | "false" | "no"),
                "filter" => {
                    let (fk, fv) = v.split_once('=').ok_or_else(|| {
                        Error::BadRequest(format!("filter {v:?}: expected KEY=VALUE"))
                    })?;
                    eq.filters.push((fk.to_string(), fv.to_string()));
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "unknown events parameter {other:?} (since, follow, filter)"
                    )))
                }
            }
        }
        Ok(eq)
    }

    /// Whether `e` passes the filters.
    pub fn matches(&self, e: &Event) -> bool {
        let mut keys: Vec<&str> = self.filters.iter().map(|(k, _)| k.as_str()).collect();
        keys.dedup();
        keys.iter().all(|k| {
            self.filters.iter().filter(|(fk, _)| fk == k).any(|(_, v)| {
                let got = match *k {
                    "type" => Some(e.kind.as_str()),
                    "action" => Some(e.action.as_str()),
                    "id" => Some(e.actor.id.as_str()),
                    attr => e.actor.attributes.get(attr).map(String::as_str),
                };
                got == Some(v.as_str())
            })
        })
    }
}

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn events(ctl: Arc<Control>, query: &str) -> Resp {
    let q = match EventQuery::parse(query) {
        Ok(q) => q,
        Err(e) => return error(&e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        // Subscribe before reading history so nothing falls in between;
        // live events already in the history are skipped by number.
        let mut live = ctl.backend.subscribe();
        // Like `docker events`: without `since` a follower gets only new
        // events; a one-shot read (`follow=0`) gets the whole history.
        let hist = if q.since.is_some() || !q.follow {
            ctl.backend.history(q.since)
        } else {
            vec![]
        };
        let mut last = 0;
        for e in hist {
            last = e.seq;
            if q.matches(&e) && tx.send(line(&e)).await.is_err() {
                return;
            }
        }
        if !q.follow {
            return;
        }
        loop {
            match live.recv().await {
                Ok(e) if e.seq <= last => {}
                Ok(e) => {
                    last = e.seq;
                    if q.matches(&e) && tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!("event stream client too slow: {n} event(s) skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    streaming("application/x-ndjson", rx)
}

/// Seconds since the epoch of `t` (for `since=`).
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_query() {
        let q = EventQuery::parse(
            "since=10.5&follow=0&filter=type%3Dlink&filter=type=container&filter=dev=eth0",
        )
        .unwrap();
        assert!(!q.follow);
        assert_eq!(unix_secs(q.since.unwrap()), 10.5);
        let mut e = Event {
            time: 0,
            time_nano: 0,
            kind: crate::api::EventType::Link,
            action: "created".into(),
            actor: Default::default(),
            seq: 1,
        };
        assert!(!q.matches(&e), "no dev attribute");
        e.actor.attributes.insert("dev".into(), "eth0".into());
        assert!(q.matches(&e));
        e.kind = crate::api::EventType::Override;
        assert!(!q.matches(&e));
        assert!(EventQuery::parse("bogus=1").is_err());
        assert!(EventQuery::parse("since=abc").is_err());
        assert!(EventQuery::parse("filter=nokey").is_err());
    }

    #[test]
    fn socket_names_are_cleaned() {
        assert_eq!(
            socket_path(Path::new("/run/conlink"), "my lab/x"),
            PathBuf::from("/run/conlink/my_lab_x.sock")
        );
    }
}
