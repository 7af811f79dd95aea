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

#[test]
fn conlink_start_dry_run_prints_the_exact_command() {
    let dir = TempDir::new("start");
    let net = dir.path().join("net work.yaml");
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&net, "links: []\n").unwrap();
    std::fs::write(&compose, "services: {}\n").unwrap();
    let out = finish(
        spawn(
            Command::new(bin("conlink-start"))
                .current_dir(dir.path())
                .env_remove("CONLINK_ENGINE")
                .env("CONLINK_IMAGE", "conlink:test")
                .args([
                    "--dry-run",
                    "-e",
                    "docker",
                    "-n",
                    "net work.yaml",
                    "--compose-file",
                ])
                .arg(&compose)
                .args(["-d", "--", "-v", "--compose-project", "lab"]),
        ),
        Duration::from_secs(20),
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
