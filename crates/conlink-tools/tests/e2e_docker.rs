//! End-to-end tests of the tools inside real docker containers: a
//! `FROM scratch` image (no shell, no libc, no NSS) and the busybox test
//! image. They need a running docker daemon and fail loudly without one.
//!
//! The static binaries are built by the first test that needs them
//! (`cargo build --profile tools --target x86_64-unknown-linux-gnu` with
//! crt-static), then bind-mounted into the containers as users do.
//! Every container, network, namespace and image a test creates has a
//! unique name and is removed by that name when the test ends.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

const BUSYBOX: &str = "conlink-test-busybox";
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const LIMIT: Duration = Duration::from_secs(90);

/// Panics unless `docker info` answers.
fn require_docker() {
    require_root();
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        panic!("these tests need a running docker daemon (`docker info` failed); run scripts/install-deps");
    }
}

/// Runs a command to completion (bounded); panics when it fails.
fn must(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let out = finish(spawn(cmd), LIMIT);
    assert_eq!(out.code(), 0, "{desc}: {out:?}");
    out.stdout
}

fn docker(args: &[&str]) -> String {
    must(Command::new("docker").args(args))
}

/// Directory holding the static wait/copy/echo, built once per process.
fn static_tools() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Same command and flags as scripts/build-images and
        // bench/tools-size, so that the builds share their artifacts.
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--profile", "tools", "--target", TRIPLE])
            .args(["-p", "conlink-tools", "--bins", "--manifest-path"])
            .arg(&manifest)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "static build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target_dir.join(TRIPLE).join("tools");
        for b in ["wait", "copy", "echo"] {
            let ldd = Command::new("ldd").arg(dir.join(b)).output().expect("ldd");
            let text = String::from_utf8_lossy(&ldd.stdout).to_string()
                + &String::from_utf8_lossy(&ldd.stderr);
            assert!(text.contains("not a dynamic executable"), "{b}: {text}");
        }
        dir
    })
}

/// `-v` arguments mounting the static tools at /tools/.
fn tool_mounts() -> Vec<String> {
    let dir = static_tools();
    ["wait", "copy", "echo"]
        .iter()
        .flat_map(|b| {
            [
                "-v".to_string(),
                format!("{}:/tools/{b}:ro", dir.join(b).display()),
            ]
        })
        .collect()
}

/// A docker object removed by exact name on drop.
struct Docker {
    kind: &'static str,
    name: String,
}

impl Drop for Docker {
    fn drop(&mut self) {
        let args: &[&str] = match self.kind {
            "container" => &["rm", "-f", "-v"],
            "network" => &["network", "rm"],
            _ => &["image", "rm", "-f"],
        };
        let _ = Command::new("docker")
            .args(args)
            .arg(&self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `FROM scratch` image with no files at all, under a unique tag.
fn scratch_image() -> Docker {
    let name = format!("conlink-tools-scratch:{}", unique());
    let mut child = Command::new("docker")
        .args(["import", "-", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker import");
    // An empty tar archive: two zero blocks.
    child.stdin.take().unwrap().write_all(&[0u8; 1024]).unwrap();
    let out = finish(child, LIMIT);
    assert_eq!(out.code(), 0, "docker import: {out:?}");
    Docker {
        kind: "image",
        name,
    }
}

fn container_name(tag: &str) -> Docker {
    Docker {
        kind: "container",
        name: format!("clt-{tag}-{}", unique()),
    }
}

/// `docker run --rm --name NAME ARGS…` to completion.
fn docker_run(c: &Docker, args: &[String]) -> Out {
    finish(
        spawn(
            Command::new("docker")
                .args(["run", "--rm", "--name", &c.name])
                .args(args),
        ),
        LIMIT,
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Source tree for the copy tests: text with placeholders, a binary file
/// with a placeholder and NUL bytes, an executable script, nested dirs.
fn copy_source(root: &Path) -> Vec<u8> {
    fs::create_dir_all(root.join("etc/app")).unwrap();
    fs::write(
        root.join("etc/app/app.conf"),
        "peer={{PEER}} port={{PORT}} keep={{NOT_SET_ANYWHERE}}\n",
    )
    .unwrap();
    let blob = b"\0\x01{{PEER}}\xff\0".to_vec();
    fs::write(root.join("etc/app/blob"), &blob).unwrap();
    fs::write(root.join("start"), "#!/bin/sh\necho {{PEER}}\n").unwrap();
    fs::set_permissions(root.join("start"), fs::Permissions::from_mode(0o750)).unwrap();
    blob
}

fn check_copy_result(out_dir: &Path, blob: &[u8]) {
    assert_eq!(
        fs::read(out_dir.join("etc/app/app.conf")).unwrap(),
        b"peer=10.0.0.2 port=80 keep={{NOT_SET_ANYWHERE}}\n"
    );
    assert_eq!(fs::read(out_dir.join("etc/app/blob")).unwrap(), blob);
    assert_eq!(
        fs::read(out_dir.join("start")).unwrap(),
        b"#!/bin/sh\necho 10.0.0.2\n"
    );
    let mode = fs::metadata(out_dir.join("start"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
}

#[test]
fn copy_and_wait_in_a_scratch_container() {
    require_docker();
    let image = scratch_image();
    let c = container_name("scratch");
    let dir = TempDir::new("e2e-scratch");
    let (src, out_dir) = (dir.path().join("src"), dir.path().join("out"));
    let blob = copy_source(&src);
    fs::create_dir_all(&out_dir).unwrap();
    let mut args = tool_mounts();
    args.extend(strings(&[
        "-e",
        "PEER=10.0.0.2",
        "-e",
        "PORT=80",
        "--network",
        "none",
    ]));
    args.extend(strings(&["-v", &format!("{}:/src:ro", src.display())]));
    args.extend(strings(&["-v", &format!("{}:/out", out_dir.display())]));
    args.push(image.name.clone());
    // copy, then exec wait, which execs echo: no shell anywhere.
    args.extend(strings(&[
        "/tools/copy",
        "-T",
        "/src",
        "/out",
        "--",
        "/tools/wait",
        "-f",
        "/out/start",
        "-i",
        "lo",
        "-I",
        "lo",
        "-t",
        "localhost:1x",
        "--",
        "/tools/echo",
        "unreachable",
    ]));
    // First a malformed option: usage error, exit 2, from inside scratch.
    let out = docker_run(&c, &args);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("usage: wait"), "{out:?}");
    check_copy_result(&out_dir, &blob);

    // Now a good run.
    let n = args.len();
    args.truncate(n - 5);
    args.extend(strings(&["--", "/tools/echo", "scratch", "ok"]));
    let out = docker_run(&c, &args);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "scratch ok\n");

    // A missing command is a clear error (status 127), not a crash.
    let mut missing = args[..args.len() - 3].to_vec();
    missing.push("/no/such/program".into());
    let out = docker_run(&c, &missing);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(
        out.stderr.contains("cannot run \"/no/such/program\""),
        "{out:?}"
    );
}

#[test]
fn copy_and_wait_in_a_busybox_container() {
    require_docker();
    let c = container_name("busybox");
    let dir = TempDir::new("e2e-busybox");
    let (src, out_dir) = (dir.path().join("src"), dir.path().join("out"));
    let blob = copy_source(&src);
    fs::create_dir_all(&out_dir).unwrap();
    let mut args = tool_mounts();
    args.extend(strings(&[
        "-e",
        "PEER=10.0.0.2",
        "-e",
        "PORT=80",
        "--network",
        "none",
    ]));
    args.extend(strings(&["-v", &format!("{}:/src:ro", src.display())]));
    args.extend(strings(&["-v", &format!("{}:/out", out_dir.display())]));
    args.push(BUSYBOX.into());
    // wait polls, with -c (through the image's sh), for a flag the test
    // creates through the bind mount once wait says it is waiting; then the
    // umask applies to the command.
    args.extend(strings(&[
        "sh",
        "-c",
        "exec /tools/copy --template /src /out -- \
         /tools/wait -s 0.1 -u 077 -c 'test -e /out/go' -f /out/etc/app/app.conf -- \
         sh -c 'umask; cat /out/etc/app/app.conf'",
    ]));
    let mut child = Watched::spawn(
        Command::new("docker")
            .args(["run", "--rm", "--name", &c.name])
            .args(&args),
    );
    child.wait_for_stderr(
        "waiting for command \"test -e /out/go\" (exit status: 1)",
        LIMIT,
    );
    fs::write(out_dir.join("go"), "").unwrap();
    let out = child.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "0077\npeer=10.0.0.2 port=80 keep={{NOT_SET_ANYWHERE}}\n"
    );
    check_copy_result(&out_dir, &blob);
}

#[test]
fn waiting_scratch_container_stops_promptly_and_c_needs_a_shell() {
    require_docker();
    let image = scratch_image();
    // As PID 1 a process gets no default SIGTERM action: wait installs one.
    let c = container_name("stop");
    let mut args = strings(&["run", "-d", "--name", &c.name, "--network", "none"]);
    args.extend(tool_mounts());
    args.push(image.name.clone());
    args.extend(strings(&["/tools/wait", "-f", "/never"]));
    must(Command::new("docker").args(&args));
    // Running and past its signal setup.
    wait_for_logs(&c.name, "waiting for file /never");
    let started = Instant::now();
    docker(&["stop", "--time", "30", &c.name]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "docker stop took {:?}",
        started.elapsed()
    );
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &c.name]);
    assert_eq!(code.trim(), "143");

    // -c runs `sh -c`: in an image without a shell that is an error, not an
    // endless wait.
    let c2 = container_name("nosh");
    let mut args = tool_mounts();
    args.extend(strings(&[
        "--network",
        "none",
        &image.name,
        "/tools/wait",
        "-c",
        "true",
    ]));
    let out = docker_run(&c2, &args);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("no 'sh' in PATH"), "{out:?}");
}

/// Blocks until `docker logs NAME` (stderr) contains `text`.
fn wait_for_logs(name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = Command::new("docker")
            .args(["logs", name])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&logs.stderr).contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never logged {text:?}: {logs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// IPv4 address of a running container on its (only) network.
fn container_ip(name: &str) -> String {
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ]);
    let ip = ip.trim().to_string();
    assert!(!ip.is_empty(), "no address for {name}");
    ip
}

#[test]
fn wait_tcp_resolves_extra_hosts_and_docker_dns_in_scratch() {
    require_docker();
    let image = scratch_image();
    let net = Docker {
        kind: "network",
        name: format!("clt-net-{}", unique()),
    };
    docker(&["network", "create", &net.name]);
    // The server listens only once the test creates /tmp/go in it.
    let srv = container_name("srv");
    docker(&[
        "run",
        "-d",
        "--name",
        &srv.name,
        "--network",
        &net.name,
        "--network-alias",
        "websrv",
        BUSYBOX,
        "sh",
        "-c",
        "until [ -e /tmp/go ]; do sleep 0.1; done; exec httpd -f -p 8080 -h /tmp",
    ]);
    let ip = container_ip(&srv.name);
    let c = container_name("client");
    let mut args = tool_mounts();
    // --dns 127.0.0.1: docker's embedded DNS forwards what it does not know
    // to this upstream, inside the container: no query leaves the machine.
    args.extend(strings(&["--network", &net.name, "--dns", "127.0.0.1"]));
    args.extend(strings(&["--add-host", &format!("extrahost:{ip}")]));
    args.push(image.name.clone());
    // extrahost is only in /etc/hosts (compose extra_hosts); websrv only in
    // docker's embedded DNS (127.0.0.11 from /etc/resolv.conf).
    args.extend(strings(&[
        "/tools/wait",
        "-s",
        "0.2",
        "-t",
        "extrahost:8080",
        "-t",
        "websrv:8080",
        "--",
        "/tools/echo",
        "reached",
    ]));
    let client = spawn(
        Command::new("docker")
            .args(["run", "--rm", "--name", &c.name])
            .args(&args),
    );
    // Let the server listen only once the client says it is waiting.
    wait_for_logs(&c.name, "waiting for tcp extrahost:8080");
    docker(&["exec", &srv.name, "touch", "/tmp/go"]);
    let out = finish(client, LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "reached\n");
    assert!(
        out.stderr
            .contains("waiting for tcp extrahost:8080 (connect"),
        "{out:?}"
    );

    // A name nobody knows: wait keeps waiting (checked for 3 s), naming it.
    let c2 = container_name("client2");
    let mut args = tool_mounts();
    args.extend(strings(&["--network", &net.name, "--dns", "127.0.0.1"]));
    args.push(image.name.clone());
    args.extend(strings(&[
        "/tools/wait",
        "-s",
        "0.2",
        "-t",
        "nosuchhost:8080",
    ]));
    let child = spawn(
        Command::new("docker")
            .args(["run", "--rm", "--name", &c2.name])
            .args(&args),
    );
    std::thread::sleep(Duration::from_secs(3));
    // Stop the container (by its exact name); the client then returns.
    docker(&["rm", "-f", &c2.name]);
    let out = finish(child, LIMIT);
    assert_ne!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "waiting for tcp nosuchhost:8080 (\"nosuchhost\" not found in /etc/hosts nor by DNS (127.0.0.11:53"
        ),
        "{out:?}"
    );
}

/// A network namespace created by the test, deleted by name on drop.
struct Netns(String);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn wait_for_eth0_configured_from_outside_in_scratch() {
    require_docker();
    let image = scratch_image();
    let c = container_name("ifwait");
    let mut args = tool_mounts();
    args.extend(strings(&["-d", "--network", "none", "--name", &c.name]));
    args.push(image.name.clone());
    args.extend(strings(&[
        "/tools/wait",
        "-s",
        "0.1",
        "-i",
        "eth0",
        "-I",
        "eth0",
        "--",
        "/tools/echo",
        "eth0 ready",
    ]));
    let mut run_args = vec!["run".to_string()];
    run_args.extend(args);
    must(Command::new("docker").args(&run_args));
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &c.name]);
    let pid = pid.trim().to_string();
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "pid {pid:?}");

    wait_for_logs(&c.name, "waiting for interface eth0 (no such interface)");

    // Do what conlink does: a veth with one end in our own namespace, the
    // other moved into the container as eth0, addressed, then up.
    let ns = Netns(format!("cltd{}", unique()));
    must(Command::new("ip").args(["netns", "add", &ns.0]));
    let outer = format!("clt{}", &unique());
    must(Command::new("ip").args([
        "-n", &ns.0, "link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns", &pid,
    ]));
    let in_container = |args: &[&str]| {
        must(
            Command::new("nsenter")
                .args(["-t", &pid, "-n", "ip"])
                .args(args),
        );
    };
    wait_for_logs(&c.name, "waiting for an address on interface eth0");
    std::thread::sleep(Duration::from_millis(300));
    let running = docker(&["inspect", "-f", "{{.State.Running}}", &c.name]);
    assert_eq!(
        running.trim(),
        "true",
        "wait returned before eth0 had an address"
    );
    in_container(&["addr", "add", "10.231.9.2/24", "dev", "eth0"]);
    in_container(&["link", "set", "eth0", "up"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = docker(&["inspect", "-f", "{{.State.Running}}", &c.name]);
        if running.trim() == "false" {
            break;
        }
        assert!(Instant::now() < deadline, "wait did not return");
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &c.name]);
    assert_eq!(code.trim(), "0");
    let logs = finish(spawn(Command::new("docker").args(["logs", &c.name])), LIMIT);
    assert_eq!(logs.stdout, "eth0 ready\n", "{logs:?}");
    assert!(
        logs.stderr.contains("waiting for interface eth0"),
        "{logs:?}"
    );
}

/// A modes directory whose compose files use env values, profiles and
/// `./.files` paths.
fn compose_modes(top: &Path) {
    let w = |p: &str, text: &str| {
        let path = top.join("modes").join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    w("base/env", "IMAGE=conlink-test-busybox\n");
    w(
        "base/compose.yaml",
        "services:\n  net:\n    image: ${IMAGE}\n    command: sleep 1000\n    volumes:\n      - ./.files/net:/files:ro\n",
    );
    w("base/net/files/hello", "net\n");
    w("db/deps", "base\n");
    w(
        "db/compose.yaml",
        "services:\n  db:\n    image: ${IMAGE}\n    command: sleep 1000\n",
    );
    w("cache/deps", "base storage\n");
    w("storage/.env", "STORE=disk\n");
    w(
        "cache/compose.yml",
        "services:\n  cache:\n    image: ${IMAGE}\n    command: sleep 1000\n",
    );
    w("web/deps", "base db|cache +metrics\n");
    // MDC_MODE_<name> comes before each mode's env text: env files can
    // interpolate the flags of the modes resolved so far, their own included.
    w(
        "web/env",
        "TITLE=from web\nFLAGS=web:${MDC_MODE_web:-off} db:${MDC_MODE_db:-off} cache:${MDC_MODE_cache:-off}\n",
    );
    w(
        "web/docker-compose.yml",
        "services:\n  web:\n    image: ${IMAGE}\n    profiles: [MODE_web]\n    command: sleep 1000\n    \
         environment:\n      TITLE: ${TITLE}\n      FLAGS: ${FLAGS}\n    volumes:\n      - ./.files/web:/files:ro\n",
    );
    w("web/web/files/index.html", "web\n");
    w("metrics/deps", "base\n");
    w(
        "metrics/compose.yaml",
        "services:\n  metrics:\n    image: ${IMAGE}\n    profiles: [MODE_other]\n",
    );
}

#[test]
fn mdc_output_is_accepted_by_docker_compose_config() {
    require_docker();
    let top = TempDir::new("e2e-mdc");
    compose_modes(top.path());
    let out = finish(
        spawn(
            Command::new(bin("mdc"))
                .current_dir(top.path())
                .env_remove("DOCKER_COMPOSE")
                .env_remove("MODES_DIR")
                .env_remove("ENV_FILE")
                .env_remove("MDC_FILES_DIR")
                .args(["web,metrics", "config", "--format", "json"]),
        ),
        LIMIT,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let cfg: serde_json::Value = serde_json::from_str(&out.stdout).expect("compose JSON");
    let services = cfg["services"].as_object().expect("services");
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort();
    // db (1 node) beats cache (2 nodes) for web's OR; metrics' profile is
    // not enabled, web's (MODE_web) is.
    assert_eq!(names, ["db", "net", "web"], "{}", out.stdout);
    assert_eq!(cfg["services"]["web"]["environment"]["TITLE"], "from web");
    assert_eq!(
        cfg["services"]["web"]["environment"]["FLAGS"],
        "web:enabled db:enabled cache:off"
    );
    assert_eq!(cfg["services"]["db"]["image"], "conlink-test-busybox");
    // Relative paths anchor at the top directory thanks to the empty base.
    let top_abs = fs::canonicalize(top.path()).unwrap();
    let source = cfg["services"]["web"]["volumes"][0]["source"]
        .as_str()
        .unwrap();
    assert_eq!(Path::new(source), top_abs.join(".files/web"));
    assert_eq!(
        fs::read_to_string(top.path().join(".files/web/index.html")).unwrap(),
        "web\n"
    );
}

/// A script that reports what the conlink container sees. It is given to
/// conlink-start as the network file *and* as the entry program (config
/// files are mounted read-only at their own path), and ignores its
/// arguments apart from printing them. `socket` is where the engine socket
/// should be inside.
fn report_script(dir: &Path, socket: &str) -> PathBuf {
    let script = dir.join("net.yaml");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"args=$*\"\necho \"pid1=$(cat /proc/1/comm)\"\n\
             grep CapEff /proc/self/status\ntest -S {socket} && echo socket=ok\n\
             echo \"links=$(ls /sys/class/net | tr '\\n' ' ')\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Checks the report of [`report_script`]: arguments, host PID namespace,
/// the five capabilities, the socket, no network but `lo`.
fn check_report(out: &Out, script: &Path) {
    assert_eq!(out.code(), 0, "{out:?}");
    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        field("args="),
        format!("--network-file {} --compose-project lab", script.display())
    );
    // --pid host: PID 1 is the host's.
    let host_init = fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(field("pid1="), host_init.trim());
    assert_eq!(field("socket="), "ok");
    // --network none: only lo.
    assert_eq!(field("links="), "lo");
    let caps = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    for (name, bit) in [
        ("NET_BROADCAST", 11),
        ("NET_ADMIN", 12),
        ("IPC_LOCK", 14),
        ("SYS_ADMIN", 21),
        ("SYS_NICE", 23),
    ] {
        assert!(caps & (1 << bit) != 0, "{name} missing from {caps:#x}");
    }
}

#[test]
fn conlink_start_command_is_accepted_by_docker() {
    require_docker();
    let dir = TempDir::new("e2e-start");
    let script = report_script(dir.path(), "/var/run/docker.sock");
    let c = container_name("start");
    let out = finish(
        spawn(
            Command::new(bin("conlink-start"))
                .args(["-e", "docker", "-i", BUSYBOX, "--name", &c.name, "--entry"])
                .arg(&script)
                .arg("-n")
                .arg(&script)
                .args(["--", "--compose-project", "lab"]),
        ),
        LIMIT,
    );
    check_report(&out, &script);
}

/// A podman API service on a private socket, stopped (by its own PID) on
/// drop, plus an image imported under a unique tag, removed on drop.
struct Podman {
    service: std::process::Child,
    image: String,
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn conlink_start_command_is_accepted_by_podman() {
    require_root();
    let version = Command::new("podman").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "this test needs podman (scripts/install-deps installs it)"
    );
    let dir = TempDir::new("e2e-podman");
    // A minimal image: the host's static busybox and the applets the
    // report script uses.
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("static /bin/busybox");
    for applet in ["sh", "cat", "grep", "ls", "tr", "test", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let image = format!("conlink-tools-bb:{}", unique());
    let tarball = dir.path().join("rootfs.tar");
    must(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    let import = finish(
        spawn(
            Command::new("podman")
                .arg("import")
                .arg(&tarball)
                .arg(&image),
        ),
        LIMIT,
    );
    let sock = dir.path().join("podman.sock");
    let service = Command::new("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("podman system service");
    let _podman = Podman {
        service,
        image: image.clone(),
    };
    assert_eq!(import.code(), 0, "podman import: {import:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "podman service socket did not appear"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = report_script(dir.path(), "/var/run/podman/podman.sock");
    let name = format!("clt-podstart-{}", unique());
    let out = finish(
        spawn(
            Command::new(bin("conlink-start"))
                .args([
                    "-e",
                    "podman",
                    "-i",
                    &format!("localhost/{image}"),
                    "--name",
                    &name,
                ])
                .arg("--socket")
                .arg(&sock)
                .arg("--entry")
                .arg(&script)
                .arg("-n")
                .arg(&script)
                .args(["--", "--compose-project", "lab"]),
        ),
        LIMIT,
    );
    // --rm removed the container; make sure, by name, whatever happened.
    let _ = Command::new("podman")
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    check_report(&out, &script);
}

/// `docker compose -p NAME down` on drop (by project name: the compose
/// files need variables the drop cannot know).
struct ComposeProject(String);
impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["compose", "-p", &self.0, "down", "-v", "-t", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Needs an image whose conlink daemon creates links (spec §1 service
/// shape): `conlink:latest` from scripts/build-images, or the image named by
/// CONLINK_TEST_IMAGE.
#[test]
fn mdc_modes_run_through_conlink_and_wait_for_eth0() {
    require_docker();
    let top = TempDir::new("e2e-mdc-conlink");
    let w = |p: &str, text: &str| {
        let path = top.path().join("modes").join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    // base: conlink itself, reading every mode's compose file through
    // COMPOSE_FILE (a colon list, relative to /test = the top directory).
    w(
        "base/compose.yaml",
        "services:\n  network:\n    image: ${CONLINK_IMAGE}\n    pid: host\n    network_mode: none\n    \
         cap_add: [SYS_ADMIN, NET_ADMIN, SYS_NICE, NET_BROADCAST, IPC_LOCK]\n    \
         security_opt: ['apparmor:unconfined']\n    volumes:\n      \
         - /var/run/docker.sock:/var/run/docker.sock\n      - ./:/test\n    working_dir: /test\n    \
         command: /app/build/conlink.js --compose-file ${COMPOSE_FILE}\n",
    );
    let node = |name: &str, ip: &str, cmd: &str| {
        format!(
            "services:\n  {name}:\n    image: {BUSYBOX}\n    network_mode: none\n    \
             volumes: ['${{WAIT_BIN}}:/utils/wait:ro']\n    command: {cmd}\n    \
             x-network:\n      links:\n        - {{bridge: s1, ip: {ip}/24}}\n"
        )
    };
    w("node1/deps", "base +node2\n");
    w(
        "node1/compose.yaml",
        &node(
            "node1",
            "10.231.1.1",
            "/utils/wait -I eth0 -- ping -c 1 -W 10 10.231.1.2",
        ),
    );
    w("node2/deps", "base\n");
    w(
        "node2/compose.yaml",
        &node("node2", "10.231.1.2", "/utils/wait -I eth0 -- sleep 600"),
    );
    let project = top
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let _down = ComposeProject(project.clone());
    let wait_bin = static_tools().join("wait");
    let conlink_image = conlink_image();
    let out = finish(
        spawn(
            Command::new(bin("mdc"))
                .current_dir(top.path())
                .env("WAIT_BIN", &wait_bin)
                .env("CONLINK_IMAGE", &conlink_image)
                .env_remove("DOCKER_COMPOSE")
                .env_remove("MODES_DIR")
                .env_remove("ENV_FILE")
                .env_remove("MDC_FILES_DIR")
                .args(["node1,node2", "up", "-d"]),
        ),
        LIMIT,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let project = top
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let node1 = format!("{project}-node1-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &node1,
        ]);
        if state.trim() == "exited 0" {
            break;
        }
        assert!(state.starts_with("running"), "node1: {state}");
        let conlink = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}}",
            &format!("{project}-network-1"),
        ]);
        if conlink.trim() != "running" {
            let logs = finish(
                spawn(Command::new("docker").args(["logs", &format!("{project}-network-1")])),
                LIMIT,
            );
            panic!("the conlink container is {}: {logs:?}", conlink.trim());
        }
        assert!(
            Instant::now() < deadline,
            "node1 still waiting for eth0 after 60 s (is the conlink daemon working?)"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = finish(spawn(Command::new("docker").args(["logs", &node1])), LIMIT);
    assert!(logs.stdout.contains("1 packets received"), "{logs:?}");
}

/// The conlink image to run (CONLINK_TEST_IMAGE overrides).
fn conlink_image() -> String {
    std::env::var("CONLINK_TEST_IMAGE").unwrap_or_else(|_| "conlink:latest".into())
}

#[test]
fn conlink_start_links_existing_containers() {
    require_docker();
    // Two containers without networking that wait for eth0; node1 then pings
    // node2 and exits.
    let n1 = container_name("n1");
    let n2 = container_name("n2");
    let wait_mount = format!("{}:/utils/wait:ro", static_tools().join("wait").display());
    for (c, cmd) in [
        (&n2, "/utils/wait -I eth0 -- sleep 600"),
        (&n1, "/utils/wait -I eth0 -- ping -c 1 -W 10 10.231.2.2"),
    ] {
        let mut args = strings(&["run", "-d", "--name", &c.name, "--network", "none"]);
        args.extend(strings(&["-v", &wait_mount, BUSYBOX, "sh", "-c", cmd]));
        must(Command::new("docker").args(&args));
    }
    let dir = TempDir::new("e2e-start-links");
    let net = dir.path().join("net.yaml");
    fs::write(
        &net,
        format!(
            "links:\n  - {{container: {}, bridge: s1, ip: 10.231.2.1/24}}\n  \
             - {{container: {}, bridge: s1, ip: 10.231.2.2/24}}\n",
            n1.name, n2.name
        ),
    )
    .unwrap();
    let conlink = container_name("conlink");
    let out = finish(
        spawn(
            Command::new(bin("conlink-start"))
                .args([
                    "-e",
                    "docker",
                    "-i",
                    &conlink_image(),
                    "--name",
                    &conlink.name,
                ])
                .arg("-d")
                .arg("-n")
                .arg(&net),
        ),
        LIMIT,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &n1.name,
        ]);
        if state.trim() == "exited 0" {
            break;
        }
        assert!(state.starts_with("running"), "node1: {state}");
        let running = finish(
            spawn(Command::new("docker").args([
                "inspect",
                "-f",
                "{{.State.Running}}",
                &conlink.name,
            ])),
            LIMIT,
        );
        if running.stdout.trim() != "true" {
            let logs = finish(
                spawn(Command::new("docker").args(["logs", &conlink.name])),
                LIMIT,
            );
            panic!("the conlink container stopped: {running:?} {logs:?}");
        }
        assert!(
            Instant::now() < deadline,
            "node1 still waiting for eth0 after 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = finish(
        spawn(Command::new("docker").args(["logs", &n1.name])),
        LIMIT,
    );
    assert!(logs.stdout.contains("1 packets received"), "{logs:?}");
    // SIGTERM: conlink removes what it made; --rm removes the container.
    docker(&["stop", "--time", "20", &conlink.name]);
}

#[test]
fn wait_resolves_compose_extra_hosts() {
    require_docker();
    // A compose project: the service's own httpd starts after a second on
    // loopback; `extra_hosts` maps a name to it, and only /etc/hosts knows
    // that name (no network, so no DNS at all).
    let top = TempDir::new("e2e-extra-hosts");
    let project = top
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let _down = ComposeProject(project.clone());
    fs::write(
        top.path().join("compose.yaml"),
        format!(
            "services:\n  client:\n    image: {BUSYBOX}\n    network_mode: none\n    \
             extra_hosts: ['svc-by-extra-hosts:127.0.0.1']\n    \
             volumes: ['{}:/tools/wait:ro']\n    \
             command: [sh, -c, '(until [ -e /tmp/go ]; do sleep 0.1; done; \
             exec httpd -f -p 8080 -h /tmp) & \
             exec /tools/wait -s 0.2 -t svc-by-extra-hosts:8080 -- echo reached']\n",
            static_tools().join("wait").display()
        ),
    )
    .unwrap();
    let mut up = Watched::spawn(Command::new("docker").current_dir(top.path()).args([
        "compose",
        "-p",
        &project,
        "up",
        "--exit-code-from",
        "client",
    ]));
    // The server starts once wait has said what it waits for.
    up.wait_for_stderr("waiting for tcp svc-by-extra-hosts:8080", LIMIT);
    docker(&["exec", &format!("{project}-client-1"), "touch", "/tmp/go"]);
    let out = up.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("reached"), "{out:?}");
    // compose shows the container's stderr on its own stderr.
    assert!(
        out.stderr.contains(
            "waiting for tcp svc-by-extra-hosts:8080 (connect 127.0.0.1:8080: Connection refused"
        ),
        "{out:?}"
    );
}

/// Starts node1 and node2 (`--network none`, `wait -I eth0` first); node1
/// then pings `peer` once and exits.
fn start_waiting_pair(n1: &Docker, n2: &Docker, peer: &str) {
    let wait_mount = format!("{}:/utils/wait:ro", static_tools().join("wait").display());
    let ping = format!("/utils/wait -I eth0 -- ping -c 1 -W 10 {peer}");
    for (c, cmd) in [
        (n2, "/utils/wait -I eth0 -- sleep 600"),
        (n1, ping.as_str()),
    ] {
        let mut args = strings(&["run", "-d", "--name", &c.name, "--network", "none"]);
        args.extend(strings(&["-v", &wait_mount, BUSYBOX, "sh", "-c", cmd]));
        must(Command::new("docker").args(&args));
    }
}

/// Waits (60 s at most) until node1 has exited 0 with one ping answered,
/// while the conlink container keeps running.
fn wait_for_ping(n1: &Docker, conlink: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &n1.name,
        ]);
        if state.trim() == "exited 0" {
            break;
        }
        assert!(state.starts_with("running"), "node1: {state}");
        let running = finish(
            spawn(Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", conlink])),
            LIMIT,
        );
        if running.stdout.trim() != "true" {
            let logs = finish(spawn(Command::new("docker").args(["logs", conlink])), LIMIT);
            panic!("the conlink container is not running: {running:?} {logs:?}");
        }
        assert!(
            Instant::now() < deadline,
            "node1 still waiting for eth0 after 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = finish(
        spawn(Command::new("docker").args(["logs", &n1.name])),
        LIMIT,
    );
    assert!(logs.stdout.contains("1 packets received"), "{logs:?}");
}

#[test]
fn conlink_start_original_command_links_existing_containers() {
    require_docker();
    // The original README's command line, run for real from the repository
    // root: only the container names are unique to this test (and the image
    // comes from IMAGE, as the original reads it). conlink-start execs
    // `docker run` in the foreground, as the user's terminal would.
    let root = fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
    let n1 = container_name("zzz-node-1");
    let n2 = container_name("zzz-node-2");
    let net = container_name("zzz-network");
    start_waiting_pair(&n1, &n2, "10.0.1.2");
    let mut cmd = Command::new(bin("conlink-start"));
    cmd.current_dir(&root).env("IMAGE", conlink_image());
    for k in [
        "CONLINK_ENGINE",
        "CONLINK_IMAGE",
        "MODE",
        "HOST_MODE",
        "DRY_RUN",
        "VERBOSE",
    ] {
        cmd.env_remove(k);
    }
    for k in [
        "NETWORK_FILE",
        "NETWORK_FILES",
        "COMPOSE_FILE",
        "COMPOSE_FILES",
        "COMPOSE_PROJECT",
    ] {
        cmd.env_remove(k);
    }
    let node1 = format!("NODE_NAME_1={}", n1.name);
    let node2 = format!("NODE_NAME_2={}", n2.name);
    cmd.args([
        "-v",
        "--mode",
        "docker",
        "--host-mode",
        "docker",
        "--network-file",
    ])
    .arg("examples/test3-network.yaml")
    .args([
        "--", "--name", &net.name, "--rm", "-e", &node1, "-e", &node2,
    ]);
    let mut child = Watched::spawn(&mut cmd);
    // -v: the launcher prints what it runs, and conlink logs verbosely.
    child.wait_for_stderr("conlink-start: running: docker run --pid host", LIMIT);
    // `docker run` creates the container a moment later (seconds on a
    // loaded machine); until then there is nothing to inspect.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = finish(
            spawn(Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", &net.name])),
            LIMIT,
        );
        if state.stdout.trim() == "true" {
            break;
        }
        assert!(
            child.running(),
            "conlink-start ended before its container ran"
        );
        assert!(
            Instant::now() < deadline,
            "{} not running after 60 s: {state:?}",
            net.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_ping(&n1, &net.name);
    // SIGTERM: conlink removes what it made, --rm the container, and the
    // foreground `docker run` (conlink-start's process) ends.
    docker(&["stop", "--time", "20", &net.name]);
    let out = child.finish(LIMIT);
    assert!(
        out.stderr.contains("DEBUG"),
        "conlink -v not passed on: {out:?}"
    );
    let gone = finish(
        spawn(Command::new("docker").args(["inspect", &net.name])),
        LIMIT,
    );
    assert_ne!(gone.code(), 0, "--rm did not remove {}", net.name);
}

/// A login-less user created for one test, with its own subordinate uid/gid
/// range (written by this test), home and runtime directory. On drop: every
/// process of that uid is killed by PID (podman leaves a pause process and
/// the test's API service behind), then the user (userdel also removes its
/// subuid/subgid lines), its home (podman's storage) and runtime dir go.
struct RootlessUser {
    name: String,
    uid: u32,
    home: PathBuf,
    run_dir: PathBuf,
}

impl RootlessUser {
    fn create() -> Self {
        require_root();
        for tool in [
            "useradd",
            "usermod",
            "userdel",
            "runuser",
            "newuidmap",
            "newgidmap",
        ] {
            let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
                .any(|d| d.join(tool).is_file());
            assert!(
                found,
                "{tool} missing (scripts/install-deps installs uidmap/passwd)"
            );
        }
        // Short (useradd: 32 chars max) and unique.
        let name = format!("cltr{}", unique().replace('x', "u"));
        let home = std::env::temp_dir().join(format!("conlink-tools-{name}"));
        // No automatic subordinate ids: this test writes its own range, in a
        // block far above useradd's automatic ones (100000 + n * 65536).
        must(
            Command::new("useradd")
                .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", "-m", "-d"])
                .arg(&home)
                .args(["-s", "/bin/sh", &name]),
        );
        let uid: u32 = must(Command::new("id").args(["-u", &name]))
            .trim()
            .parse()
            .unwrap();
        let first = 400_000_000 + (std::process::id() % 4000) * 65_536;
        let range = format!("{first}-{}", first + 65_535);
        let user = RootlessUser {
            run_dir: PathBuf::from(format!("/run/user/{uid}")),
            name,
            uid,
            home,
        };
        must(Command::new("usermod").args([
            "--add-subuids",
            &range,
            "--add-subgids",
            &range,
            &user.name,
        ]));
        fs::create_dir_all(&user.run_dir).unwrap();
        must(
            Command::new("chown")
                .arg(format!("{uid}:{uid}"))
                .arg(&user.run_dir),
        );
        fs::set_permissions(&user.run_dir, fs::Permissions::from_mode(0o700)).unwrap();
        // vfs: overlay needs fuse-overlayfs or a kernel that allows it in a
        // user namespace; vfs always works (it copies layers).
        let conf = user.home.join(".config/containers");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("storage.conf"), "[storage]\ndriver = \"vfs\"\n").unwrap();
        must(
            Command::new("chown")
                .args(["-R", &format!("{uid}:{uid}")])
                .arg(user.home.join(".config")),
        );
        user
    }

    /// `program` run as the user, with its HOME and XDG_RUNTIME_DIR.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env"])
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.run_dir.display()))
            .arg(format!(
                "PATH={}",
                std::env::var("PATH").unwrap_or_default()
            ))
            .arg(program)
            .current_dir(&self.home);
        c
    }

    fn podman(&self, args: &[&str]) -> Out {
        let mut c = self.cmd("podman");
        finish(spawn(c.args(args)), Duration::from_secs(300))
    }

    /// PIDs of the user's processes.
    fn pids(&self) -> Vec<i32> {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                        (e.metadata().ok()?.uid() == self.uid).then_some(pid)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                // SAFETY: plain kill(2) of a process of the user this test made.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("userdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.home);
        let _ = fs::remove_dir_all(&self.run_dir);
    }
}

#[test]
fn conlink_start_rootless_podman_links_existing_containers() {
    require_docker();
    let user = RootlessUser::create();
    let out = user.podman(&[
        "info",
        "--format",
        "{{.Host.Security.Rootless}} {{.Store.GraphDriverName}}",
    ]);
    assert_eq!(out.code(), 0, "rootless podman does not work here: {out:?}");
    assert_eq!(out.stdout.trim(), "true vfs", "{out:?}");
    // Images: the conlink image and the busybox test image, from docker.
    let image = conlink_image();
    for img in [image.as_str(), BUSYBOX] {
        let tar = user.home.join("image.tar");
        must(
            Command::new("docker")
                .args(["save", "-o"])
                .arg(&tar)
                .arg(img),
        );
        must(Command::new("chmod").arg("644").arg(&tar));
        let out = user.podman(&["load", "-q", "-i", tar.to_str().unwrap()]);
        assert_eq!(out.code(), 0, "podman load {img}: {out:?}");
        fs::remove_file(&tar).unwrap();
    }
    // The user's API service on the rootless socket conlink-start mounts.
    let sock = user.run_dir.join("podman/podman.sock");
    fs::create_dir_all(sock.parent().unwrap()).unwrap();
    must(
        Command::new("chown")
            .arg(format!("{0}:{0}", user.uid))
            .arg(sock.parent().unwrap()),
    );
    let service_log = user.home.join("service.log");
    let mut service = user.cmd("podman");
    service
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdout(Stdio::null())
        .stderr(fs::File::create(&service_log).unwrap());
    let mut service = service.spawn().expect("podman system service");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "rootless podman socket did not appear: {}",
            fs::read_to_string(&service_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two rootless containers without networking; node1 pings node2.
    let wait = user.home.join("wait");
    fs::copy(static_tools().join("wait"), &wait).unwrap();
    let wait_mount = format!("{}:/utils/wait:ro", wait.display());
    let bb = format!("localhost/{BUSYBOX}:latest");
    for (name, cmd) in [
        ("node2", "/utils/wait -I eth0 -- sleep 600"),
        // One ping of a few: node1's link may be up before node2's, and
        // one echo lost to an unanswered ARP (3 tries, 1 s apart) would
        // fail a single `ping -c 1` however long it waits.
        (
            "node1",
            "/utils/wait -I eth0 -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do \
             ping -c 1 -W 1 10.231.3.2 && exit 0; done; exit 1'",
        ),
    ] {
        // NET_RAW: busybox ping opens a raw socket; rootless podman's
        // default capabilities leave it out ("permission denied").
        let out = user.podman(&[
            "run",
            "-d",
            "--name",
            name,
            "--cap-add",
            "NET_RAW",
            "--network",
            "none",
            "-v",
            &wait_mount,
            &bb,
            "sh",
            "-c",
            cmd,
        ]);
        assert_eq!(out.code(), 0, "podman run {name}: {out:?}");
    }
    let net = user.home.join("net.yaml");
    fs::write(
        &net,
        "links:\n  - {container: node1, bridge: s1, ip: 10.231.3.1/24}\n  \
         - {container: node2, bridge: s1, ip: 10.231.3.2/24}\n",
    )
    .unwrap();
    // The original interface, as the user: podman runs conlink and wires
    // podman's (rootless) containers.
    let image_ref = if image.contains('/') {
        image.clone()
    } else {
        format!("localhost/{image}")
    };
    let start = |extra: &[&str]| {
        let mut c = user.cmd(bin("conlink-start"));
        c.args([
            "--mode",
            "podman",
            "--host-mode",
            "podman",
            "--image",
            &image_ref,
        ])
        .args(["--network-file", net.to_str().unwrap()])
        .args(extra);
        finish(spawn(&mut c), LIMIT)
    };
    let dry = start(&["--dry-run", "--", "--name", "network", "--rm", "-d"]);
    assert_eq!(dry.code(), 0, "{dry:?}");
    assert!(
        dry.stdout
            .starts_with("podman run --privileged --pid host --network none "),
        "{dry:?}"
    );
    assert!(
        dry.stdout.contains(&format!(
            " -v {}:/var/run/podman/podman.sock ",
            sock.display()
        )),
        "{dry:?}"
    );
    let out = start(&["--", "--name", "network", "--rm", "-d"]);
    assert_eq!(out.code(), 0, "conlink-start (rootless podman): {out:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = user.podman(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "node1",
        ]);
        if state.stdout.trim() == "exited 0" {
            break;
        }
        let conlink = user.podman(&["inspect", "-f", "{{.State.Status}}", "network"]);
        if Instant::now() > deadline
            || !state.stdout.starts_with("running")
            || conlink.stdout.trim() != "running"
        {
            let logs = user.podman(&["logs", "network"]);
            let n1 = user.podman(&["logs", "node1"]);
            panic!("node1: {state:?}\nconlink: {conlink:?}\nconlink logs: {logs:?}\nnode1 logs: {n1:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = user.podman(&["logs", "node1"]);
    assert!(logs.stdout.contains("1 packets received"), "{logs:?}");
    // conlink knows it runs in a (rootless podman) container: bridges in
    // its own namespace, not in a named one it would create.
    let logs = user.podman(&["logs", "network"]);
    assert!(logs.stderr.contains("running in container"), "{logs:?}");
    let out = user.podman(&["stop", "-t", "20", "network"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let _ = service.kill();
    let _ = service.wait();
}
