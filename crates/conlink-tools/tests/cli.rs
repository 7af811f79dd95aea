//! `resolve-deps`, `echo` and `conlink-start` as processes.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const WORKED: &str = r#"{"b":["a"],"c":["a","b"],"d":["a"],"e":["a",{"or":["d","c"]}]}"#;

fn resolve_stdin(json: &str, args: &[&str]) -> Out {
    let mut child = Command::new(bin("resolve-deps"))
        .args(["-p", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading stdin: EPIPE here is expected.
    let _ = child.stdin.take().unwrap().write_all(json.as_bytes());
    finish(child, Duration::from_secs(20))
}

#[test]
fn resolve_deps_worked_examples_from_stdin() {
    for (start, want) in [
        (&["e"][..], "a d e\n"),
        (&["e", "c"], "a b c e\n"),
        (&["e,c,d"], "a d b c e\n"),
    ] {
        let out = resolve_stdin(WORKED, start);
        assert_eq!(out.code(), 0, "{start:?}: {out:?}");
        assert_eq!(out.stdout, want, "{start:?}");
    }
    let after = r#"{"b":["a",{"after":"d"}],"c":["a","b"],"d":["a"],"e":["a",{"or":["d","c"]}]}"#;
    assert_eq!(resolve_stdin(after, &["b"]).stdout, "a b\n");
    assert_eq!(resolve_stdin(after, &["b", "d"]).stdout, "a d b\n");
}

#[test]
fn resolve_deps_formats_and_directory_sources() {
    let dir = TempDir::new("rd");
    for (node, deps) in [
        ("a", None),
        ("b", Some("a # comment\n")),
        ("c", Some("a|b")),
    ] {
        std::fs::create_dir_all(dir.path().join(node)).unwrap();
        if let Some(d) = deps {
            std::fs::write(dir.path().join(node).join("deps"), d).unwrap();
        }
    }
    let json = dir.path().join("extra.json");
    std::fs::write(&json, r#"{"x":["b",{"after":"c"}]}"#).unwrap();
    let sources = format!("{},{}", dir.path().display(), json.display());
    let out = run("resolve-deps", ["-p", &sources, "-f", "paths", "x", "c"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let d = dir.path().display();
    assert_eq!(
        out.stdout,
        format!("a={d}/a\nb={d}/b\nc={d}/c\nx={}\n", json.display())
    );
    let out = run("resolve-deps", ["--path", &sources, "--format=json", "c"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"node": "a", "path": format!("{d}/a"), "dep-str": "", "deps": []},
            {"node": "c", "path": format!("{d}/c"), "dep-str": "a|b", "deps": [{"or": ["a", "b"]}]},
        ])
    );
    // Keys in the original's order.
    assert!(
        out.stdout.starts_with(&format!(
            r#"[{{"node":"a","path":"{d}/a","dep-str":"","deps":[]}},"#
        )),
        "{out:?}"
    );
    // RESOLVE_DEPS_PATH and RESOLVE_DEPS_FORMAT give the defaults; options win.
    let env_run = |args: &[&str], fmt: &str| {
        finish(
            spawn(
                Command::new(bin("resolve-deps"))
                    .env("RESOLVE_DEPS_PATH", &sources)
                    .env("RESOLVE_DEPS_FORMAT", fmt)
                    .args(args),
            ),
            Duration::from_secs(20),
        )
    };
    let out = env_run(&["x"], "json");
    assert_eq!(out.code(), 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[2]["node"], "x");
    assert_eq!(v[2]["dep-str"], "b +c");
    assert_eq!(v[2]["deps"], serde_json::json!(["b", {"after": "c"}]));
    let out = env_run(&["-f", "nodes", "x"], "json");
    assert_eq!(out.stdout, "a b x\n", "{out:?}");
    let out = env_run(&["-p", &format!("{d}"), "b"], "paths");
    assert_eq!(out.stdout, format!("a={d}/a\nb={d}/b\n"), "{out:?}");
    let out = env_run(&["x"], "yaml");
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr
            .contains("RESOLVE_DEPS_FORMAT: unknown output format \"yaml\""),
        "{out:?}"
    );
    // The default source is the current directory.
    let out = finish(
        spawn(
            Command::new(bin("resolve-deps"))
                .current_dir(dir.path())
                .arg("b"),
        ),
        Duration::from_secs(20),
    );
    assert_eq!(out.stdout, "a b\n", "{out:?}");
}

#[test]
fn resolve_deps_errors() {
    let out = resolve_stdin(r#"{"a":["b"],"b":["a"]}"#, &["a"]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("contains a cycle"), "{out:?}");
    let out = resolve_stdin(WORKED, &["zz"]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr.contains("\"zz\" does not exist"), "{out:?}");
    let out = resolve_stdin(WORKED, &["-f", "xml", "e"]);
    assert_eq!(out.code(), 2, "{out:?}");
    let out = resolve_stdin(WORKED, &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    let dir = TempDir::new("rd-dup");
    std::fs::create_dir_all(dir.path().join("e")).unwrap();
    let out = resolve_stdin(WORKED, &["-p", &format!("-:{}", dir.path().display()), "e"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("defined twice"), "{out:?}");
}

#[test]
fn echo_prints_arguments() {
    assert_eq!(run("echo", ["a", "b c", ""]).stdout, "a b c \n");
    assert_eq!(run("echo", ["-n", "x"]).stdout, "x");
    assert_eq!(run("echo", Vec::<&str>::new()).stdout, "\n");
}

/// Every variable conlink-start reads (launch::ENV_VARS).
const START_ENV: [&str; 13] = [
    "CONLINK_ENGINE",
    "CONLINK_IMAGE",
    "MODE",
    "HOST_MODE",
    "IMAGE",
    "VERBOSE",
    "DRY_RUN",
    "NETWORK_FILE",
    "NETWORK_FILES",
    "COMPOSE_FILE",
    "COMPOSE_FILES",
    "COMPOSE_PROJECT",
    "XDG_RUNTIME_DIR",
];

/// conlink-start with none of the variables it reads, then `env` set.
fn start(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = Command::new(bin("conlink-start"));
    cmd.current_dir(dir);
    for k in START_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(spawn(cmd.args(args)), Duration::from_secs(20))
}

const CAPS: &str = "--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_NICE \
                    --cap-add NET_BROADCAST --cap-add IPC_LOCK --security-opt apparmor=unconfined";

#[test]
fn conlink_start_original_documented_command_line() {
    // The original README's command, word for word, from the repository
    // root; DRY_RUN from the environment so the line stays unchanged.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::fs::canonicalize(root).unwrap();
    let documented = [
        "-v",
        "--mode",
        "docker",
        "--host-mode",
        "docker",
        "--network-file",
        "examples/test3-network.yaml",
        "--",
        "--name",
        "ZZZ_network",
        "--rm",
        "-e",
        "NODE_NAME_1=ZZZ_node_1",
        "-e",
        "NODE_NAME_2=ZZZ_node_2",
    ];
    let out = start(&root, &[("DRY_RUN", "1")], &documented);
    assert_eq!(out.code(), 0, "{out:?}");
    let f = root.join("examples/test3-network.yaml");
    let f = f.display();
    let caps = CAPS.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        out.stdout,
        format!(
            "docker run --pid host --network none {caps} \
             -v /var/run/docker.sock:/var/run/docker.sock -v {f}:{f}:ro \
             --name ZZZ_network --rm -e NODE_NAME_1=ZZZ_node_1 -e NODE_NAME_2=ZZZ_node_2 \
             conlink /app/build/conlink.js -v --network-file {f}\n"
        )
    );
    // --mode podman, --host-mode docker: podman runs conlink, docker's
    // socket is mounted; as root, no --privileged.
    let mut podman = documented.to_vec();
    podman[2] = "podman";
    let out = start(&root, &[("DRY_RUN", "1")], &podman);
    assert!(
        out.stdout.starts_with(&format!(
            "podman run --pid host --network none {caps} -v /var/run/docker.sock:/var/run/docker.sock "
        )),
        "{out:?}"
    );
    // --host-mode podman: podman's system socket at conlink's podman path.
    let mut host_podman = documented.to_vec();
    host_podman[4] = "podman";
    let out = start(&root, &[("DRY_RUN", "1")], &host_podman);
    assert!(
        out.stdout
            .contains(" -v /run/podman/podman.sock:/var/run/podman/podman.sock "),
        "{out:?}"
    );
    // --host-mode none: no socket, no host PID namespace.
    let mut none = documented.to_vec();
    none[4] = "none";
    let out = start(&root, &[("DRY_RUN", "1")], &none);
    assert!(
        out.stdout.starts_with(&format!(
            "docker run --network none {caps} -v {f}:{f}:ro --name"
        )),
        "{out:?}"
    );
}

#[test]
fn conlink_start_original_interface_from_the_environment() {
    let dir = TempDir::new("start-env");
    for f in ["a.yaml", "b.yaml", "c.yaml"] {
        std::fs::write(dir.path().join(f), "links: []\n").unwrap();
    }
    let d = dir.path().display();
    let caps = CAPS.split_whitespace().collect::<Vec<_>>().join(" ");
    // Settings from the environment only: MODE selects the original
    // interface (so -- is for podman run), unknown options and their
    // values go to conlink in order.
    let env = [
        ("MODE", "podman"),
        ("HOST_MODE", "docker"),
        ("IMAGE", "my/conlink:1"),
        ("VERBOSE", "yes"),
        ("DRY_RUN", "true"),
        ("NETWORK_FILE", "a.yaml:b.yaml"),
        ("COMPOSE_FILE", "c.yaml"),
        ("COMPOSE_PROJECT", "lab"),
    ];
    let out = start(
        dir.path(),
        &env,
        &[
            "--default-mtu",
            "1500",
            "--keep-veth-offload",
            "--",
            "-d",
            "--name",
            "net",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "podman run --pid host --network none {caps} \
             -v /var/run/docker.sock:/var/run/docker.sock \
             -v {d}/a.yaml:{d}/a.yaml:ro -v {d}/b.yaml:{d}/b.yaml:ro -v {d}/c.yaml:{d}/c.yaml:ro \
             -d --name net my/conlink:1 /app/build/conlink.js -v \
             --network-file {d}/a.yaml --network-file {d}/b.yaml --compose-file {d}/c.yaml \
             --compose-project lab --default-mtu 1500 --keep-veth-offload\n"
        )
    );
    // Options win over the environment; CONLINK_* win over the original's
    // names; --opt=value stays one word; falsey VERBOSE/DRY_RUN are off.
    let out = start(
        dir.path(),
        &[
            ("MODE", "podman"),
            ("CONLINK_ENGINE", "docker"),
            ("IMAGE", "ignored"),
            ("CONLINK_IMAGE", "cl:env"),
            ("NETWORK_FILE", "a.yaml"),
            ("VERBOSE", "0"),
            ("DRY_RUN", "off"),
        ],
        &[
            "--dry-run",
            "--network-file",
            "b.yaml",
            "--default-mtu=9000",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "docker run --pid host --network none {caps} \
             -v /var/run/docker.sock:/var/run/docker.sock -v {d}/b.yaml:{d}/b.yaml:ro \
             cl:env /app/build/conlink.js --network-file {d}/b.yaml --default-mtu=9000\n"
        )
    );
    // Bad values name their source.
    let out = start(
        dir.path(),
        &[("HOST_MODE", "lxc")],
        &["--dry-run", "-n", "a.yaml"],
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("HOST_MODE: unknown host mode \"lxc\""),
        "{out:?}"
    );
    let out = start(
        dir.path(),
        &[],
        &["--dry-run", "--mode", "lxc", "-n", "a.yaml"],
    );
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("unknown engine \"lxc\""), "{out:?}");
    // Without an original-only option, -- still means conlink's arguments.
    let out = start(
        dir.path(),
        &[("DRY_RUN", "1")],
        &["-e", "docker", "-n", "a.yaml", "--", "-v"],
    );
    assert!(
        out.stdout
            .starts_with("docker run --rm --name conlink --pid host")
            && out
                .stdout
                .ends_with(&format!("--network-file {d}/a.yaml -v\n")),
        "{out:?}"
    );
    // -v in conlink's arguments and VERBOSE: one -v (conlink refuses two).
    let out = start(
        dir.path(),
        &[("DRY_RUN", "1"), ("VERBOSE", "1")],
        &["-n", "a.yaml", "--", "-v"],
    );
    assert_eq!(out.stdout.matches(" -v").count(), 3, "{out:?}"); // 2 mounts + 1
}

#[test]
fn conlink_start_dry_run_prints_the_exact_command() {
    let dir = TempDir::new("start");
    let net = dir.path().join("net work.yaml");
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&net, "links: []\n").unwrap();
    std::fs::write(&compose, "services: {}\n").unwrap();
    let compose_arg = compose.display().to_string();
    let out = start(
        dir.path(),
        &[("CONLINK_IMAGE", "conlink:test")],
        &[
            "--dry-run",
            "-e",
            "docker",
            "-n",
            "net work.yaml",
            "--compose-file",
            &compose_arg,
            "-d",
            "--",
            "-v",
            "--compose-project",
            "lab",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let (n, c) = (net.display(), compose.display());
    assert_eq!(
        out.stdout,
        format!(
            "docker run --rm --name conlink -d --pid host --network none \
             --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_NICE \
             --cap-add NET_BROADCAST --cap-add IPC_LOCK --security-opt apparmor=unconfined \
             -v /var/run/docker.sock:/var/run/docker.sock \
             -v '{n}:{n}:ro' -v {c}:{c}:ro conlink:test /app/build/conlink.js \
             --network-file '{n}' --compose-file {c} -v --compose-project lab\n"
        )
    );
    let out = run(
        "conlink-start",
        [
            "--dry-run",
            "-e",
            "podman",
            "--socket",
            "/run/user/podman.sock",
            "-n",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([compose.display().to_string()]),
    );
    assert!(
        out.stdout
            .starts_with("podman run --rm --name conlink --pid host"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("-v /run/user/podman.sock:/var/run/podman/podman.sock "),
        "{out:?}"
    );
}

#[test]
fn conlink_start_errors() {
    let out = run("conlink-start", ["--dry-run", "-e", "docker"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("--network-file"), "{out:?}");
    let out = run("conlink-start", ["--dry-run", "-e", "lxc", "-n", "x"]);
    assert_eq!(out.code(), 2, "{out:?}");
    let out = run(
        "conlink-start",
        ["--dry-run", "-n", "/nonexistent/conlink.yaml"],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/conlink.yaml"), "{out:?}");
}
