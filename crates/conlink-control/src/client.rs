//! Clients of the API: `conlink status|events|link …` talk to a running
//! conlink through these, over its unix socket (or TCP with a token).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use crate::api::{ChangeReply, ClearRequest, ErrorReply, SetRequest, Status};
use crate::error::{Error, Result};

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// `HOST:PORT` with its bearer token.
    Tcp {
        /// `HOST:PORT`.
        addr: String,
        /// Bearer token.
        token: Option<String>,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "http://{addr}"),
        }
    }
}

/// The one socket in `dir` (`/run/conlink`): what `conlink status` uses
/// when no `--socket` is given. None or several is an error that says what
/// to do.
pub fn discover_socket(dir: &Path) -> Result<PathBuf> {
    let mut socks: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => {
            return Err(Error::Io {
                op: format!("list {}", dir.display()),
                source: e,
            })
        }
    };
    socks.sort();
    match socks.len() {
        1 => Ok(socks.remove(0)),
        0 => Err(Error::BadRequest(format!(
            "no conlink API socket in {} (is conlink running here? give --socket PATH)",
            dir.display()
        ))),
        _ => Err(Error::BadRequest(format!(
            "several conlink API sockets in {}: {}; pick one with --socket",
            dir.display(),
            socks
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A client of one endpoint (one connection per request).
#[derive(Debug, Clone)]
pub struct Client {
    ep: Endpoint,
}

fn connect_error(ep: &Endpoint, e: std::io::Error) -> Error {
    let why = match (ep, e.kind()) {
        (Endpoint::Unix(_), std::io::ErrorKind::PermissionDenied) => {
            "permission denied: the API socket is root only (mode 0600); run as root".to_string()
        }
        (Endpoint::Unix(_), std::io::ErrorKind::NotFound) => {
            "no such socket (is conlink running? see --socket)".to_string()
        }
        (_, std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (is conlink running? a stale socket?)".to_string()
        }
        _ => e.to_string(),
    };
    Error::Http {
        op: format!("connect to {ep}"),
        message: why,
    }
}

impl Client {
    /// A client of `ep`.
    pub fn new(ep: Endpoint) -> Client {
        Client { ep }
    }

    /// Sends one request and returns the response (errors already turned
    /// into [`Error::Remote`]).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>> {
        let ep = &self.ep;
        let http = |message: String| Error::Http {
            op: format!("{method} {path} on {ep}"),
            message,
        };
        let mut b = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, "conlink");
        if let Endpoint::Tcp { token: Some(t), .. } = ep {
            b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        let resp = match ep {
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| connect_error(ep, e))?;
                send(s, req).await.map_err(http)?
            }
            Endpoint::Tcp { addr, .. } => {
                let s = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| connect_error(ep, e))?;
                send(s, req).await.map_err(http)?
            }
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(match serde_json::from_slice::<ErrorReply>(&bytes) {
            Ok(r) => Error::Remote {
                status,
                kind: r.kind,
                message: r.error,
            },
            Err(_) => Error::Remote {
                status,
                kind: "http".into(),
                message: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            },
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let resp = self.request(method, path, body).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Http {
                op: format!("read answer of {path}"),
                message: e.to_string(),
            })?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| Error::Http {
            op: format!("decode answer of {path}"),
            message: e.to_string(),
        })
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status> {
        self.json(Method::GET, "/v1/status", None).await
    }

    /// `GET /v1/status` as the raw JSON text.
    pub async fn status_raw(&self) -> Result<Bytes> {
        let resp = self.request(Method::GET, "/v1/status", None).await?;
        resp.into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| Error::Http {
                op: "read status".into(),
                message: e.to_string(),
            })
    }

    /// `GET /v1/state`: the daemon's own state (`conlink plan`).
    pub async fn state(&self) -> Result<serde_json::Value> {
        self.json(Method::GET, "/v1/state", None).await
    }

    /// `POST /v1/links/set`.
    pub async fn set(&self, req: &SetRequest) -> Result<ChangeReply> {
        let body = serde_json::to_vec(req).map_err(|e| Error::BadRequest(e.to_string()))?;
        self.json(Method::POST, "/v1/links/set", Some(body)).await
    }

    /// `POST /v1/links/clear`.
    pub async fn clear(&self, target: &str) -> Result<ChangeReply> {
        let body = serde_json::to_vec(&ClearRequest {
            target: target.to_string(),
        })
        .map_err(|e| Error::BadRequest(e.to_string()))?;
        self.json(Method::POST, "/v1/links/clear", Some(body)).await
    }

    /// `GET /v1/events?QUERY`: calls `on_line` with each JSON line until the
    /// stream ends or `on_line` returns false.
    pub async fn events(&self, query: &str, mut on_line: impl FnMut(&str) -> bool) -> Result<()> {
        let path = if query.is_empty() {
            "/v1/events".to_string()
        } else {
            format!("/v1/events?{query}")
        };
        let mut body = self.request(Method::GET, &path, None).await?.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Http {
                op: "read events".into(),
                message: e.to_string(),
            })?;
            if let Some(d) = frame.data_ref() {
                buf.extend_from_slice(d);
                while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let s = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    if !on_line(&s) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

async fn send<S>(s: S, req: Request<Full<Bytes>>) -> std::result::Result<Response<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// Parses `--since`: unix seconds (`1700000000`, `1700000000.5`), a
/// duration back from `now` (`30s`, `10m`, `2h`, `1h30m`), or an RFC 3339
/// UTC time (`2026-12-01T20:00:00Z`, fractions allowed) — what
/// `docker events --since` takes, less local time zones.
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime> {
    let bad = || {
        Error::BadRequest(format!(
            "--since {s:?}: expected unix seconds, a duration back (10m, 1h30m) or an RFC 3339 UTC time"
        ))
    };
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() && v >= 0.0 {
            return Ok(UNIX_EPOCH + Duration::from_secs_f64(v));
        }
        return Err(bad());
    }
    if let Some(d) = parse_duration(s) {
        return now.checked_sub(d).ok_or_else(bad);
    }
    parse_rfc3339(s).ok_or_else(bad)
}

/// `1h30m`, `10s`, `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mul = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        total += v * mul;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, da] = <[i64; 3]>::try_from(d).ok()?;
    let [h, mi, se] = <[i64; 3]>::try_from(t).ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + se;
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_secs_f64(frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert_eq!(
            secs(parse_since("1700000000.5", now).unwrap()),
            1_700_000_000.5
        );
        assert_eq!(secs(parse_since("10m", now).unwrap()), 1_000_000.0 - 600.0);
        assert_eq!(
            secs(parse_since("1h30m", now).unwrap()),
            1_000_000.0 - 5400.0
        );
        assert_eq!(
            secs(parse_since("2026-12-01T20:00:00Z", now).unwrap()),
            1_796_155_200.0
        );
        assert_eq!(
            secs(parse_since("1970-01-02T00:00:01.25Z", now).unwrap()),
            86401.25
        );
        for bad in ["", "yesterday", "10x", "2026-13-01T00:00:00Z", "-5"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn discovery() {
        let dir = std::env::temp_dir().join(format!("conlink-disc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = discover_socket(&dir).unwrap_err().to_string();
        assert!(e.contains("no conlink API socket"), "{e}");
        std::fs::write(dir.join("a.sock"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        assert_eq!(discover_socket(&dir).unwrap(), dir.join("a.sock"));
        std::fs::write(dir.join("b.sock"), "").unwrap();
        let e = discover_socket(&dir).unwrap_err().to_string();
        assert!(
            e.contains("a.sock") && e.contains("b.sock") && e.contains("--socket"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
