//! Fuzz targets of conlink's input parsers (issue 12), one function each.
//!
//! Each target takes arbitrary bytes, must never panic, hang or grow
//! without bound, and checks what must hold of its answer (error messages
//! in the `FILE: /pointer: problem` form, parser round trips, resolved
//! dependency lists that satisfy their dependencies). A broken invariant
//! panics, which is what both drivers report:
//!
//! * `fuzz/` (cargo-fuzz, nightly, libFuzzer): `cargo fuzz run TARGET`;
//! * `tests/props.rs` (stable, in the normal test suite): proptest mutates
//!   the committed corpus (`fuzz/corpus/TARGET/`) with a fixed seed.
//!
//! [`TARGETS`] lists them by the names both drivers use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use conlink_config::{load_checked, LoadOptions, ERRORS_SHOWN_MAX, MESSAGE_MAX};
use conlink_model::{EthtoolSetting, Forward, Netem, Route};

/// A fuzz target: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target, by name (the corpus directory and cargo-fuzz target name).
pub const TARGETS: &[(&str, Target)] = &[
    ("config_yaml", config_yaml),
    ("config_json", config_json),
    ("interpolate", interpolate),
    ("route", route),
    ("netem", netem),
    ("ethtool", ethtool),
    ("forward", forward),
    ("deps_text", deps_text),
    ("deps_json", deps_json),
    ("docker_event", docker_event),
];

/// The environment every config target interpolates with.
fn env() -> HashMap<String, String> {
    HashMap::from([
        ("SET".to_string(), "10.0.0.1/24".to_string()),
        ("EMPTY".to_string(), String::new()),
        ("NAME".to_string(), "node".to_string()),
    ])
}

/// A per-process scratch directory for the files the loader reads (it reads
/// files only, as the daemon does).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("conlink-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create fuzz scratch directory");
        d
    })
}

/// Loads `data` as a network file named `name` and checks the answer.
fn load_file(data: &[u8], name: &str) {
    // A per-thread file: proptest and libFuzzer may run targets on
    // several threads.
    let file = scratch().join(format!("{:?}-{name}", std::thread::current().id()));
    std::fs::write(&file, data).expect("write fuzz input");
    let opts = LoadOptions {
        network_files: vec![file.clone()],
        env: env(),
        // Small budgets keep each case fast; the limits are tested elsewhere.
        max_nodes: 5_000,
        max_file_bytes: 1 << 20,
        ..LoadOptions::default()
    };
    match load_checked(&opts) {
        Ok(loaded) => check_config(&loaded.config),
        Err(errs) => {
            assert!(!errs.0.is_empty(), "an error list must not be empty");
            let shown = errs.to_string();
            let lines: Vec<&str> = shown.lines().collect();
            assert!(
                lines.len() <= ERRORS_SHOWN_MAX + 1,
                "{} lines printed",
                lines.len()
            );
            let prefix = format!("{}: /", file.display());
            for line in lines.iter().take(ERRORS_SHOWN_MAX) {
                // FILE: /pointer: problem, on one line, no raw control
                // characters (they could forge log lines).
                assert!(line.starts_with(&prefix), "not FILE: /pointer: {line:?}");
                assert!(
                    !line.chars().any(char::is_control),
                    "control character in {line:?}"
                );
                assert!(
                    line.len() <= 3 * MESSAGE_MAX + file.as_os_str().len() + 100,
                    "message not capped ({} bytes)",
                    line.len()
                );
            }
            for e in &errs.0 {
                assert!(
                    e.path.is_empty() || e.path.starts_with('/'),
                    "pointer {:?}",
                    e.path
                );
                assert!(!e.message.is_empty(), "empty message at {}", e.path);
            }
        }
    }
}

/// What must hold of any config the loader accepts: interface names follow
/// the kernel's rules (issue 12 defect 4), and the config serializes.
fn check_config(cfg: &conlink_model::NetworkConfig) {
    let ifname = |n: &str| {
        assert!(
            (1..=15).contains(&n.len()),
            "interface name {n:?} has {} bytes",
            n.len()
        );
        assert!(
            !n.starts_with('-') && n != "." && n != "..",
            "interface name {n:?}"
        );
        assert!(
            !n.bytes()
                .any(|b| b == b'/' || b == b'%' || b == b':' || !(b'!'..=b'~').contains(&b)),
            "interface name {n:?}"
        );
    };
    for b in cfg.bridges.keys() {
        ifname(b);
    }
    for g in cfg.services.values().chain(cfg.containers.values()) {
        for l in &g.links {
            ifname(&l.dev);
            if let Some(o) = &l.outer_dev {
                ifname(o);
            }
        }
    }
    serde_json::to_string(cfg).expect("an accepted config serializes");
}

/// The config loader on a YAML network file.
pub fn config_yaml(data: &[u8]) {
    load_file(data, "net.yaml");
}

/// The config loader on a JSON network file.
pub fn config_json(data: &[u8]) {
    load_file(data, "net.json");
}

/// `${…}` interpolation: never panics, bounded error text, and text without
/// `$` comes back unchanged.
pub fn interpolate(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    match conlink_config::interpolate::interpolate(&s, &env()) {
        Ok(out) => {
            if !s.contains('$') {
                assert_eq!(out, s, "text without $ must come back unchanged");
            }
        }
        Err(e) => assert!(e.0.len() <= 2_000, "error of {} bytes", e.0.len()),
    }
}

/// A parser whose accepted values print back to text it parses to the same
/// value (what `--show-config` and the daemon's logs rely on).
fn round_trip<T>(data: &[u8])
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
    T::Err: std::fmt::Display,
{
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = s.parse::<T>() {
        let text = v.to_string();
        match text.parse::<T>() {
            Ok(again) => assert_eq!(again, v, "{s:?} printed as {text:?}"),
            Err(e) => panic!("{s:?} printed as {text:?}, which does not parse: {e}"),
        }
    }
}

/// The `route` option parser (round trip).
pub fn route(data: &[u8]) {
    round_trip::<Route>(data);
}

/// The `netem` option parser (round trip).
pub fn netem(data: &[u8]) {
    round_trip::<Netem>(data);
}

/// The `ethtool` option parser (round trip).
pub fn ethtool(data: &[u8]) {
    round_trip::<EthtoolSetting>(data);
}

/// The `forward` option parser (round trip).
pub fn forward(data: &[u8]) {
    round_trip::<Forward>(data);
}

/// Search limit for the resolver targets: small, so a case is quick.
const DEPS_SEARCH_LIMIT: u64 = 200_000;

/// `deps` file syntax: the first line is the start list, the rest are
/// `NAME: DEPS` lines making a graph; resolution is checked.
pub fn deps_text(data: &[u8]) {
    use conlink_tools::deps::{parse_deps_text, Dep};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = s.lines();
    let Some(first) = lines.next() else { return };
    let Ok(start) = parse_deps_text(first, "start") else {
        return;
    };
    let mut obj = serde_json::Map::new();
    for line in lines {
        let Some((name, deps)) = line.split_once(':') else {
            continue;
        };
        let Ok(deps) = parse_deps_text(deps, "node") else {
            continue;
        };
        let json: Vec<serde_json::Value> = deps
            .iter()
            .map(|d| match d {
                Dep::Hard(n) => serde_json::json!(n),
                Dep::Or(a) => serde_json::json!(a),
                Dep::After(n) => serde_json::json!({ "after": n }),
            })
            .collect();
        obj.insert(name.trim().to_string(), serde_json::Value::Array(json));
    }
    resolve_checked(&serde_json::Value::Object(obj).to_string(), &start);
}

/// A JSON dependency source; the start list is every node of the source.
pub fn deps_json(data: &[u8]) {
    use conlink_tools::deps::{parse_json_source, Dep};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(nodes) = parse_json_source(s, "fuzz.json") else {
        return;
    };
    let start: Vec<Dep> = nodes
        .iter()
        .take(8)
        .map(|(n, _)| Dep::Hard(n.clone()))
        .collect();
    resolve_checked(s, &start);
}

/// Resolves `start` in the graph of JSON `source` and checks the answer:
/// no duplicates, every hard dependency and at least one alternative of
/// every OR of a chosen node chosen too, and before it.
fn resolve_checked(source: &str, start: &[conlink_tools::deps::Dep]) {
    use conlink_tools::deps::{Dep, Graph};
    let mut g = Graph::new();
    if g.add_json(source, "fuzz.json").is_err() {
        return;
    }
    g.set_search_limit(DEPS_SEARCH_LIMIT);
    let Ok(order) = g.resolve(start) else { return };
    let pos: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    assert_eq!(pos.len(), order.len(), "a node appears twice");
    for d in start {
        match d {
            Dep::Hard(n) => assert!(pos.contains_key(n.as_str()), "start {n} missing"),
            Dep::Or(alts) => assert!(
                alts.iter().any(|a| pos.contains_key(a.as_str())),
                "no alternative of start {alts:?}"
            ),
            Dep::After(_) => {}
        }
    }
    for (i, n) in order.iter().enumerate() {
        for d in &n.deps {
            match d {
                Dep::Hard(h) => {
                    let p = pos.get(h.as_str()).copied();
                    assert!(p.is_some_and(|p| p < i), "{} before its dep {h}", n.name);
                }
                Dep::Or(alts) => {
                    assert!(
                        alts.iter()
                            .any(|a| pos.get(a.as_str()).is_some_and(|&p| p < i)),
                        "{}: no alternative of {alts:?} before it",
                        n.name
                    );
                }
                Dep::After(a) => {
                    if let Some(&p) = pos.get(a.as_str()) {
                        assert!(p < i, "{} before its +{a}", n.name);
                    }
                }
            }
        }
    }
}

/// The docker event decoder (bollard's `EventMessage` + conlink's reading
/// of it): never panics, and what it returns has an action and an id.
pub fn docker_event(data: &[u8]) {
    if let Some(ev) = conlink_runtime::docker::decode_event(data) {
        assert!(!ev.action.is_empty() && !ev.id.is_empty(), "{ev:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The invariants can fail: a config holding a kernel-template name
    /// (which the loader must never accept) trips the check.
    #[test]
    #[should_panic(expected = "interface name \"eth%d\"")]
    fn config_check_fires_on_a_bad_name() {
        let mut cfg = conlink_model::NetworkConfig::default();
        cfg.bridges.insert(
            "eth%d".into(),
            conlink_model::Bridge {
                bridge: "eth%d".into(),
                mode: conlink_model::BridgeMode::Linux,
                vni: None,
            },
        );
        check_config(&cfg);
    }

    /// Every seed of the committed corpus passes its target.
    #[test]
    fn seeds_pass() {
        config_yaml(b"links: [{service: a, bridge: s1, dev: \"eth%d\"}]\n");
        docker_event(br#"{"Type":"container","Action":"start","Actor":{"ID":"x"}}"#);
        route(b"default via 10.0.0.1");
    }
}
