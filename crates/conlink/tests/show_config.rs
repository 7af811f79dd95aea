//! The conlink binary's command line: `--show-config` output for every
//! example (against conlink-config's golden files), usage errors, config
//! errors and environment fallbacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

include!("../../conlink-config/tests/examples_list.rs");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs conlink with a clean environment (only PATH), so variables of the
/// caller cannot leak into interpolation or the env fallbacks.
fn conlink(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conlink"));
    c.args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run conlink")
}

fn mask(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(i) = rest.find("\"c2:") {
        out.push_str(&rest[..i]);
        out.push_str("\"c2:XX:XX:XX:XX:XX\"");
        rest = &rest[i + 19..];
    }
    out.push_str(rest);
    out
}

#[test]
fn show_config_of_every_example_matches_golden() {
    let mut failures = Vec::new();
    for (name, compose, network) in EXAMPLES {
        let mut args = vec!["--show-config".to_string()];
        for f in *compose {
            args.push("--compose-file".into());
            args.push(format!("examples/{f}"));
        }
        for f in *network {
            args.push("--network-file".into());
            args.push(format!("examples/{f}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = conlink(&args, &[]);
        let golden = root().join(format!(
            "crates/conlink-config/tests/golden/example-{name}.json"
        ));
        let want = std::fs::read_to_string(&golden).unwrap();
        let got = mask(&String::from_utf8_lossy(&out.stdout));
        if !out.status.success() || got != want {
            failures.push(format!(
                "{name}: status {:?}\nstderr: {}\nstdout: {got}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn router_example_bridges_are_readable_as_json() {
    let out = conlink(
        &[
            "--show-config",
            "--compose-file",
            "examples/router/compose.yaml",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = v["bridges"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["s1", "s2", "s3"]);
    let services: Vec<&String> = v["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["h1", "h2", "h3", "router"]);
    // the auto choice is logged on stderr, never mixed into the JSON
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bridge mode auto -> "), "{err}");
}

#[test]
fn config_error_exits_nonzero_listing_every_error() {
    let dir = std::env::temp_dir().join(format!("conlink-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.yaml");
    std::fs::write(
        &f,
        "links:\n  - {service: a, bridge: s1, ip: 10.0.0.1/99}\n  - {service: b, mtu: 5}\n",
    )
    .unwrap();
    let out = conlink(
        &["--show-config", "--network-file", f.to_str().unwrap()],
        &[],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let fs = f.display();
    assert!(err.contains("invalid configuration (3 errors)"), "{err}");
    assert!(
        err.contains(&format!("{fs}: /links/1: a veth link needs a bridge")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{fs}: /links/0/ip: \"10.0.0.1/99\": prefix length must be 0..=32"
        )),
        "{err}"
    );
}

#[test]
fn missing_config_file_option_is_a_usage_error() {
    let out = conlink(&["--show-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--network-file") && err.contains("--compose-file"),
        "{err}"
    );
    let out = conlink(
        &["--compose-file", "x", "--default-bridge-mode", "bogus"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn daemon_without_any_engine_is_an_error() {
    // Spec §2: either socket may be missing; if neither answers, exit with
    // an error (naming both).
    let out = conlink(
        &[
            "--compose-file",
            "examples/router/compose.yaml",
            "--docker-socket",
            "/nonexistent/docker.sock",
            "--podman-socket",
            "/nonexistent/podman.sock",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no container engine answers")
            && err.contains("/nonexistent/docker.sock")
            && err.contains("/nonexistent/podman.sock"),
        "{err}"
    );
}

#[test]
fn environment_fallbacks() {
    let out = conlink(
        &["--show-config"],
        &[
            (
                "CONLINK_COMPOSE_FILE",
                "examples/multi/compose.yaml:examples/multi/compose.extra.yaml",
            ),
            ("CONLINK_BRIDGE_MODE", "patch"),
            ("VERBOSE", "0"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bridges"]["s1"]["mode"], "patch");
    assert!(v["services"]["n3"].is_object(), "second compose file read");
    // option beats environment; variables reach interpolation
    let out = conlink(
        &[
            "--show-config",
            "--default-bridge-mode=linux",
            "--default-mtu=1500",
            "--keep-veth-offload",
            "--compose-file=examples/tunnels/compose.yaml",
        ],
        &[
            ("CONLINK_BRIDGE_MODE", "patch"),
            ("REMOTE", "10.200.0.2"),
            ("VNI", "42"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bridges"]["wan"]["mode"], "linux");
    assert_eq!(v["tunnels"][0]["remote"], "10.200.0.2");
    assert_eq!(v["tunnels"][0]["vni"], 42);
    let link = &v["services"]["node"]["links"][0];
    assert_eq!(link["mtu"], 1450);
    assert!(link.get("ethtool").is_none(), "{link}");
}

#[test]
fn empty_network_file_values_are_usage_errors() {
    // regression (issue 12, defect 3): these ran as "no links"
    for v in ["", ":", "::"] {
        let out = conlink(&["--show-config", "--network-file", v], &[]);
        assert_eq!(out.status.code(), Some(2), "{v:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--network-file names no file"), "{v:?}: {err}");
    }
    let out = conlink(&["--show-config", "--compose-file", ""], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A directory for one test's files, removed on drop.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("conlink-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TmpDir(d)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Issue 9 items 1 and 8: several compose files after one flag, merged in
/// load order with the network file last (its ip wins over the service's).
#[test]
fn several_compose_files_after_one_flag_merge_in_load_order() {
    let d = TmpDir::new("multi");
    let a = d.file(
        "a.yaml",
        "services:\n  node:\n    x-network:\n      links: [{bridge: s1, ip: 10.0.0.1/24}]\n",
    );
    let b = d.file(
        "b.yaml",
        "services:\n  node:\n    x-network:\n      links: [{mtu: 1400}]\n",
    );
    let n = d.file("net.yaml", "links: [{service: node, ip: 10.0.0.9/24}]\n");
    let out = conlink(
        &[
            "--compose-file",
            &a,
            &b,
            "--network-file",
            &n,
            "--show-config",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &v["services"]["node"]["links"][0];
    assert_eq!(l["ip"], "10.0.0.9/24");
    assert_eq!(l["mtu"], 1400);
    assert_eq!(l["bridge"], "s1");
}

/// Issue 9 item 8: `--config-schema FILE` also validates, errors in the
/// usual `FILE: /pointer: message` form, exit 1.
#[test]
fn config_schema_violations_are_config_errors() {
    let d = TmpDir::new("schema");
    let n = d.file("net.yaml", "links: [{service: node, bridge: s1}]\n");
    let s = d.file(
        "schema.json",
        r#"{"properties": {"links": {"items": {"required": ["ip"]}}}}"#,
    );
    let out = conlink(
        &["--network-file", &n, "--config-schema", &s, "--show-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{n}: /links/0: missing required property \"ip\"")),
        "{err}"
    );
}

/// Issue 9 items 5 and 6: lenient values are warnings on stderr, and a
/// config with no links loads.
#[test]
fn warnings_and_zero_links_still_show_the_config() {
    let d = TmpDir::new("lenient");
    let n = d.file("net.yaml", "links: []\nbridges: [{bridge: s1, stp: on}]\n");
    let out = conlink(&["--network-file", &n, "--show-config"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bridges"]["s1"]["mode"], "linux");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{n}: /bridges/0/stp: unknown property \"stp\" (ignored)"
        )),
        "{err}"
    );
}
