//! `wait` as a process: files, interfaces (in a namespace the test
//! creates), TCP on 127.0.0.1, `-c`, `-u`, exec and error statuses.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn waits_for_a_file_then_execs() {
    let dir = TempDir::new("wait-file");
    let flag = dir.path().join("ready");
    let mut child = Watched::spawn(
        Command::new(bin("wait"))
            .args(["-s", "0.05", "-f"])
            .arg(&flag)
            .arg("--")
            .arg(bin("echo"))
            .args(["done", "x"]),
    );
    let waiting = format!("waiting for file {} (does not exist)", flag.display());
    child.wait_for_stderr(&waiting, LIMIT);
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.running(), "returned before the file existed");
    std::fs::write(&flag, "").unwrap();
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "done x\n");
    assert!(out.stderr.contains("ready after"), "{out:?}");
}

#[test]
fn conditions_are_checked_in_order() {
    let dir = TempDir::new("wait-order");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut child = Watched::spawn(
        Command::new(bin("wait"))
            .args(["-s", "0.05", "-f"])
            .arg(&a)
            .arg("-f")
            .arg(&b),
    );
    child.wait_for_stderr(&format!("waiting for file {}", a.display()), LIMIT);
    // b appears first, but a is still awaited.
    std::fs::write(&b, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.running(), "returned while a was missing");
    std::fs::write(&a, "").unwrap();
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    // b existed by the time a did: it was never waited for.
    assert!(!out.stderr.contains(&format!("{}", b.display())), "{out:?}");
}

#[test]
fn waits_for_tcp_on_localhost_by_name_and_address() {
    // Reserve a port, free it, and open it again after a delay.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(
        dns_has_localhost(&hosts),
        "/etc/hosts of this machine must map localhost to 127.0.0.1"
    );
    let mut child = Watched::spawn(Command::new(bin("wait")).args([
        "-s",
        "0.05",
        "-t",
        &format!("127.0.0.1:{port}"),
        "--tcp",
        &format!("localhost:{port}"),
        "--",
    ]));
    // The progress line says why: nothing listens yet.
    child.wait_for_stderr(
        &format!("waiting for tcp 127.0.0.1:{port} (connect 127.0.0.1:{port}: Connection refused"),
        LIMIT,
    );
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let out = child.finish(LIMIT);
    drop(listener);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("ready after"), "{out:?}");
}

fn dns_has_localhost(hosts: &str) -> bool {
    hosts.lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some("127.0.0.1") && f.any(|n| n == "localhost")
    })
}

#[test]
fn cmd_condition_and_umask() {
    let dir = TempDir::new("wait-cmd");
    let marker = dir.path().join("m");
    let check = format!("test -e {}", marker.display());
    let mut child = Watched::spawn(Command::new(bin("wait")).args([
        "-s", "0.05", "-u", "027", "-c", &check, "--", "sh", "-c", "umask",
    ]));
    child.wait_for_stderr(
        &format!("waiting for command {check:?} (exit status: 1)"),
        LIMIT,
    );
    std::fs::write(&marker, "").unwrap();
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "0027");
}

#[test]
fn command_long_form_retried_at_the_wait_sleep_interval() {
    let dir = TempDir::new("wait-sleep");
    let tries = dir.path().join("tries");
    // Succeeds on the 8th run: 7 sleeps. At WAIT_SLEEP=0.05 that is ~0.35 s;
    // at the default 1 s it would be 7 s.
    let check = format!("echo x >> {0}; test $(wc -l < {0}) -ge 8", tries.display());
    let started = std::time::Instant::now();
    let out = finish(
        spawn(
            Command::new(bin("wait"))
                .env("WAIT_SLEEP", "0.05")
                .args(["--command", &check]),
        ),
        LIMIT,
    );
    let took = started.elapsed();
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(&tries).unwrap().lines().count(), 8);
    assert!(took >= Duration::from_millis(350), "took {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "WAIT_SLEEP ignored: took {took:?}"
    );
    // A malformed WAIT_SLEEP is a usage error naming the variable.
    let out = finish(
        spawn(
            Command::new(bin("wait"))
                .env("WAIT_SLEEP", "soon")
                .args(["-f", "/"]),
        ),
        LIMIT,
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("WAIT_SLEEP: invalid interval \"soon\""),
        "{out:?}"
    );
}

#[test]
fn no_command_exits_zero_when_ready() {
    let out = run("wait", ["-f", "/", "-i", "lo", "-I", "lo"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn missing_command_is_a_clear_error() {
    let out = run("wait", ["-f", "/", "--", "/nonexistent/conlink-cmd", "a"]);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot run \"/nonexistent/conlink-cmd\""),
        "{out:?}"
    );
    assert!(out.stderr.contains("No such file"), "{out:?}");
}

#[test]
fn malformed_options_exit_2_with_usage() {
    for args in [
        &["-t", "nohostport"][..],
        &["-t", "host:notaport"],
        &["-s", "soon"],
        &["-u", "9"],
        &["--what"],
        &["-f"],
    ] {
        let out = run("wait", args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains("usage: wait"), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {out:?}");
    }
}

/// A network namespace created by this test, deleted by name on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        require_root();
        let name = format!("cltw{}", unique());
        ip(&["netns", "add", &name]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn waits_for_interface_and_address_in_a_namespace() {
    let ns = Netns::new();
    let mut child = Watched::spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(bin("wait"))
            .args(["-s", "0.05", "-i", "v0", "-I", "v0", "--"])
            .arg(bin("echo"))
            .arg("configured"),
    );
    let still_waiting = |child: &mut Watched| {
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.running(), "wait returned too early");
    };
    child.wait_for_stderr("waiting for interface v0 (no such interface)", LIMIT);
    still_waiting(&mut child);
    ip(&[
        "-n", &ns.0, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
    ]);
    child.wait_for_stderr("waiting for an address on interface v0", LIMIT);
    // Exists, but down and without address.
    still_waiting(&mut child);
    ip(&["-n", &ns.0, "addr", "add", "10.231.7.1/24", "dev", "v0"]);
    // Address, but still down.
    still_waiting(&mut child);
    ip(&["-n", &ns.0, "link", "set", "v0", "up"]);
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "configured\n");
}

#[test]
fn link_local_ipv6_alone_does_not_count() {
    let ns = Netns::new();
    ip(&[
        "-n", &ns.0, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
    ]);
    ip(&["-n", &ns.0, "link", "set", "v0", "up"]);
    ip(&["-n", &ns.0, "link", "set", "v1", "up"]);
    let mut child = Watched::spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(bin("wait"))
            .args(["-s", "0.05", "-I", "v0"]),
    );
    // Give the kernel time to add fe80:: addresses (and finish DAD).
    std::thread::sleep(Duration::from_millis(2500));
    let out = Command::new("ip")
        .args(["-n", &ns.0, "-6", "-j", "addr", "show", "dev", "v0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fe80"),
        "no link-local address appeared: {text}"
    );
    assert!(child.running(), "link-local address satisfied -I");
    ip(&[
        "-n",
        &ns.0,
        "addr",
        "add",
        "fd00:231::1/64",
        "dev",
        "v0",
        "nodad",
    ]);
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
}
