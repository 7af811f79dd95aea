//! `wait`: block until conditions hold, in the order given, then exec a
//! command (spec §9).

use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::Failure;
use crate::dns::Resolver;
use crate::iface;

/// Usage text of `wait`.
pub const USAGE: &str = "usage: wait [OPTIONS] [--] [CMD ARGS...]
Waits for each condition in the order given, then runs CMD in its place.
  -f, --file PATH           PATH exists
  -i, --if, --intf IFACE    interface IFACE exists
  -I, --ip IFACE            IFACE is up with an IPv4 (or global IPv6) address
  -t, --tcp HOST:PORT       a TCP connection to HOST:PORT succeeds
  -c, --cmd, --command CMD  'sh -c CMD' exits 0
  -s, --sleep SECONDS       retry interval (default: env WAIT_SLEEP, else 1;
                            fractions allowed)
  -u, --umask MASK          octal umask for CMD (and for -c commands)";

/// One condition to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `-f PATH`: the path exists (a dangling symlink does not count).
    File(PathBuf),
    /// `-i IFACE`: the interface exists in this network namespace.
    Iface(String),
    /// `-I IFACE`: the interface is up and has an address (see [`iface`]).
    IfaceAddr(String),
    /// `-t HOST:PORT`: a TCP connect succeeds.
    Tcp {
        /// Host name or IP literal (brackets removed).
        host: String,
        /// Port number.
        port: u16,
    },
    /// `-c CMD`: `sh -c CMD` exits with status 0.
    Cmd(String),
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::File(p) => write!(f, "file {}", p.display()),
            Condition::Iface(i) => write!(f, "interface {i}"),
            Condition::IfaceAddr(i) => write!(f, "an address on interface {i}"),
            Condition::Tcp { host, port } => write!(f, "tcp {host}:{port}"),
            Condition::Cmd(c) => write!(f, "command {c:?}"),
        }
    }
}

/// A parsed `wait` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitArgs {
    /// Conditions, in the order given.
    pub conditions: Vec<Condition>,
    /// Retry interval (`-s`; the last one given applies to all conditions).
    pub interval: Duration,
    /// `-u` umask, applied before any condition is checked.
    pub umask: Option<u32>,
    /// The command to exec afterwards (may be empty).
    pub command: Vec<OsString>,
    /// `-h` was given.
    pub help: bool,
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let err = || format!("invalid HOST:PORT {s:?}");
    let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']').ok_or_else(err)?,
        None if host.contains(':') => return Err(format!("{}; write IPv6 as [ADDR]:PORT", err())),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| err())?;
    if host.is_empty() || port == 0 {
        return Err(err());
    }
    Ok((host.to_string(), port))
}

/// Checks an interface name as the kernel would (1–15 bytes, no `/`, no
/// whitespace), so that a typo is a usage error rather than an endless wait.
pub fn parse_iface(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid interface name {s:?} (1-15 characters, no '/', ':' or spaces)"
        ))
    }
}

/// Shortest retry interval: `-s 0` (accepted, as scripts pass it to mean
/// "as fast as possible") is raised to this instead of busy-looping at 100%
/// CPU (issue 12, defect 8).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Parses a retry interval in seconds (`1`, `0.2`), at least [`MIN_INTERVAL`].
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 86_400.0)
        .map(|v| Duration::from_secs_f64(v).max(MIN_INTERVAL))
        .ok_or_else(|| format!("invalid interval {s:?} (seconds, e.g. 1 or 0.5)"))
}

/// Parses an octal umask (`022`, `0077`).
pub fn parse_umask(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("invalid umask {s:?} (octal, at most 0777)"))
}

/// Parses `wait`'s arguments (without the program name). The first
/// non-option argument, or everything after `--`, is the command.
/// The retry interval defaults to 1 s; see [`parse_args_with_env`] for the
/// `WAIT_SLEEP` environment variable.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<WaitArgs, Failure> {
    parse_args_with_env(args, None)
}

/// Like [`parse_args`], with the value of the `WAIT_SLEEP` environment
/// variable (the original's way to set the retry interval for every `wait`
/// of a compose file at once). `-s` wins over it; an empty value counts as
/// unset, a malformed one is a usage error naming the variable.
pub fn parse_args_with_env(
    args: impl IntoIterator<Item = OsString>,
    wait_sleep: Option<&str>,
) -> Result<WaitArgs, Failure> {
    use lexopt::prelude::*;
    let interval = match wait_sleep.filter(|v| !v.is_empty()) {
        Some(v) => parse_seconds(v).map_err(|e| Failure::Usage(format!("WAIT_SLEEP: {e}")))?,
        None => Duration::from_secs(1),
    };
    let mut parsed = WaitArgs {
        conditions: Vec::new(),
        interval,
        umask: None,
        command: Vec::new(),
        help: false,
    };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('f') | Long("file") => {
                let path = p.value()?;
                // an empty path can never exist: waiting on it would hang forever
                if path.is_empty() {
                    return Err(Failure::Usage("-f needs a path (got an empty one)".into()));
                }
                parsed.conditions.push(Condition::File(path.into()));
            }
            Short('i') | Long("if") | Long("intf") => {
                let name = parse_iface(&p.value()?.string()?).map_err(Failure::Usage)?;
                parsed.conditions.push(Condition::Iface(name));
            }
            Short('I') | Long("ip") => {
                let name = parse_iface(&p.value()?.string()?).map_err(Failure::Usage)?;
                parsed.conditions.push(Condition::IfaceAddr(name));
            }
            Short('t') | Long("tcp") => {
                let (host, port) =
                    parse_host_port(&p.value()?.string()?).map_err(Failure::Usage)?;
                parsed.conditions.push(Condition::Tcp { host, port });
            }
            Short('c') | Long("cmd") | Long("command") => {
                parsed.conditions.push(Condition::Cmd(p.value()?.string()?))
            }
            Short('s') | Long("sleep") => {
                parsed.interval = parse_seconds(&p.value()?.string()?).map_err(Failure::Usage)?;
            }
            Short('u') | Long("umask") => {
                parsed.umask = Some(parse_umask(&p.value()?.string()?).map_err(Failure::Usage)?);
            }
            Short('h') | Long("help") => parsed.help = true,
            Value(first) => {
                parsed.command.push(first);
                parsed.command.extend(p.raw_args()?);
                break;
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(parsed)
}

/// Checks a condition once. `Ok(false)` means "not yet"; errors are
/// conditions that can never become true (e.g. no `sh` in the image).
pub fn check(cond: &Condition, resolver: &Resolver, timeout: Duration) -> Result<bool, Failure> {
    Ok(check_why(cond, resolver, timeout)?.is_none())
}

/// Like [`check`], but says why a condition is not met yet (`None` when it
/// is met).
pub fn check_why(
    cond: &Condition,
    resolver: &Resolver,
    timeout: Duration,
) -> Result<Option<String>, Failure> {
    let not_yet = |ok: bool, why: &str| (!ok).then(|| why.to_string());
    match cond {
        // symlink_metadata would accept dangling links; `exists` follows them.
        Condition::File(p) => Ok(not_yet(p.exists(), "does not exist")),
        Condition::Iface(name) => iface::state(name)
            .map(|s| not_yet(s.is_some(), "no such interface"))
            .map_err(|e| fatal(format!("check interface {name}: {e}"))),
        Condition::IfaceAddr(name) => iface::has_address(name)
            .map(|ok| not_yet(ok, "missing, down or without address"))
            .map_err(|e| fatal(format!("read addresses of {name}: {e}"))),
        Condition::Tcp { host, port } => {
            // Resolve on every attempt: the name may appear later (a
            // container that is not started yet has no DNS entry).
            let addrs = match resolver.lookup(host) {
                Ok(a) => a,
                Err(e) => return Ok(Some(e.to_string())),
            };
            let mut why = Vec::new();
            for ip in addrs {
                let addr = SocketAddr::new(ip, *port);
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(_) => return Ok(None),
                    Err(e) => why.push(format!("connect {addr}: {e}")),
                }
            }
            Ok(Some(why.join("; ")))
        }
        Condition::Cmd(cmd) => match Command::new("sh").arg("-c").arg(cmd).status() {
            Ok(status) => Ok(not_yet(status.success(), &status.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(fatal(format!(
                "run sh -c {cmd:?}: no 'sh' in PATH (an image without a shell cannot use -c)"
            ))),
            Err(e) => Err(fatal(format!("run sh -c {cmd:?}: {e}"))),
        },
    }
}

fn fatal(msg: String) -> Failure {
    Failure::Error(anyhow::anyhow!(msg))
}

/// Waits for every condition in turn. When one is not met at once it
/// prints `wait: waiting for COND (why)` on stderr, again whenever the
/// reason changes, and `wait: COND ready after N s` at the end.
pub fn wait_all(args: &WaitArgs, resolver: &Resolver) -> Result<(), Failure> {
    // Connect attempts give up after the interval (at least 1 s, so that a
    // slow but live server is not missed).
    let timeout = args.interval.max(Duration::from_secs(1));
    for cond in &args.conditions {
        let started = Instant::now();
        let Some(mut why) = check_why(cond, resolver, timeout)? else {
            continue;
        };
        eprintln!("wait: waiting for {cond} ({why})");
        loop {
            std::thread::sleep(args.interval);
            match check_why(cond, resolver, timeout)? {
                None => break,
                Some(now) if now != why => {
                    eprintln!("wait: still waiting for {cond} ({now})");
                    why = now;
                }
                Some(_) => {}
            }
        }
        eprintln!(
            "wait: {cond} ready after {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<WaitArgs, Failure> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn options_in_order() {
        let a = parse(&[
            "-f",
            "/x",
            "--if",
            "eth0",
            "--intf=eth1",
            "-Ieth2",
            "--ip",
            "eth3",
            "-t",
            "db:5432",
            "--tcp",
            "[::1]:80",
            "-c",
            "true",
            "-s",
            "0.25",
            "-u",
            "027",
            "--",
            "cmd",
            "-f",
            "y",
        ])
        .unwrap();
        assert_eq!(
            a.conditions,
            vec![
                Condition::File("/x".into()),
                Condition::Iface("eth0".into()),
                Condition::Iface("eth1".into()),
                Condition::IfaceAddr("eth2".into()),
                Condition::IfaceAddr("eth3".into()),
                Condition::Tcp {
                    host: "db".into(),
                    port: 5432
                },
                Condition::Tcp {
                    host: "::1".into(),
                    port: 80
                },
                Condition::Cmd("true".into()),
            ]
        );
        assert_eq!(a.interval, Duration::from_millis(250));
        assert_eq!(a.umask, Some(0o027));
        assert_eq!(a.command, vec!["cmd", "-f", "y"]);
    }

    #[test]
    fn zero_interval_is_clamped_and_empty_file_rejected() {
        // regression (issue 12, defect 8): -s 0 busy-looped, -f '' hung
        assert_eq!(
            parse(&["-s", "0", "-f", "/x"]).unwrap().interval,
            MIN_INTERVAL
        );
        assert_eq!(
            parse(&["-s", "0.001", "-f", "/x"]).unwrap().interval,
            MIN_INTERVAL
        );
        assert!(matches!(parse(&["-f", ""]), Err(Failure::Usage(m)) if m.contains("empty")));
    }

    #[test]
    fn command_long_form_and_wait_sleep() {
        let a = parse(&["--command", "true", "--cmd=false"]).unwrap();
        assert_eq!(
            a.conditions,
            vec![
                Condition::Cmd("true".into()),
                Condition::Cmd("false".into())
            ]
        );
        let env = |args: &[&str], v: Option<&str>| {
            parse_args_with_env(args.iter().map(OsString::from), v)
        };
        assert_eq!(
            env(&[], Some("0.2")).unwrap().interval,
            Duration::from_millis(200)
        );
        assert_eq!(env(&[], Some("")).unwrap().interval, Duration::from_secs(1));
        assert_eq!(
            env(&["-s", "3"], Some("0.2")).unwrap().interval,
            Duration::from_secs(3)
        );
        match env(&[], Some("soon")) {
            Err(Failure::Usage(msg)) => assert!(msg.starts_with("WAIT_SLEEP: "), "{msg}"),
            other => panic!("expected usage error, got {other:?}"),
        }
    }

    #[test]
    fn command_without_double_dash() {
        let a = parse(&["-f", "/x", "sleep", "-n", "--", "1"]).unwrap();
        assert_eq!(a.command, vec!["sleep", "-n", "--", "1"]);
        assert!(parse(&[]).unwrap().command.is_empty());
    }

    #[test]
    fn malformed_options_are_usage_errors() {
        for bad in [
            &["-t", "db"][..],
            &["-t", "db:"],
            &["-t", "db:0"],
            &["-t", "db:99999"],
            &["-t", "::1:80"],
            &["-t", ":80"],
            &["-s", "x"],
            &["-s", "-1"],
            &["-s", "inf"],
            &["-u", "999"],
            &["-u", "8"],
            &["-f"],
            &["-i", "a-name-longer-than-15"],
            &["-I", ""],
            &["-I", "eth0:1"],
            &["-i", "a/b"],
            &["-x"],
            &["--file"],
            &["--bogus"],
        ] {
            match parse(bad) {
                Err(Failure::Usage(msg)) => assert!(!msg.is_empty()),
                other => panic!("{bad:?}: expected usage error, got {other:?}"),
            }
        }
    }

    #[test]
    fn checks_once() {
        let r = Resolver::system();
        let t = Duration::from_millis(200);
        assert!(check(&Condition::File("/".into()), &r, t).unwrap());
        assert!(!check(&Condition::File("/nonexistent-conlink".into()), &r, t).unwrap());
        assert!(check(&Condition::Iface("lo".into()), &r, t).unwrap());
        assert!(!check(&Condition::Iface("nope-conlink".into()), &r, t).unwrap());
        assert!(check(&Condition::IfaceAddr("lo".into()), &r, t).unwrap());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let tcp = Condition::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(check(&tcp, &r, t).unwrap());
        drop(l);
        assert!(!check(&tcp, &r, t).unwrap());
        assert!(check(&Condition::Cmd("exit 0".into()), &r, t).unwrap());
        assert!(!check(&Condition::Cmd("exit 3".into()), &r, t).unwrap());
    }
}
