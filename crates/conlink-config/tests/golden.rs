//! Golden output: the enriched config (exactly what `--show-config` prints)
//! for every example under `examples/` and every fixture in `tests/ok/`.
//! Random MACs (first octet c2) are masked. `UPDATE_EXPECT=1` rewrites the
//! files in `tests/golden/` (review the diff!). The conlink binary's tests
//! compare its `--show-config` output against the same files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use conlink_config::{load, LoadOptions};

include!("examples_list.rs");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Replaces random MACs (`c2:…`) so the output is deterministic.
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

fn check(name: &str, opts: &LoadOptions, failures: &mut Vec<String>) {
    let cfg = match load(opts) {
        Ok(c) => c,
        Err(e) => {
            failures.push(format!("{name}: rejected:\n{e}"));
            return;
        }
    };
    // `--show-config` output reads back into the same config (conlink
    // graph and users' tools rely on it).
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    match serde_json::from_str::<conlink_config::NetworkConfig>(&text) {
        Ok(back) if back == cfg => {}
        Ok(back) => failures.push(format!("{name}: reads back differently: {back:?}")),
        Err(e) => failures.push(format!("{name}: does not read back: {e}")),
    }
    let got = mask(&text) + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    if got != want {
        failures.push(format!(
            "{name}: output differs from {}:\n{got}",
            path.display()
        ));
    }
}

#[test]
fn every_example_is_listed() {
    let mut dirs: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|e| e.0.to_string()).collect();
    listed.sort();
    assert_eq!(dirs, listed, "add new examples to EXAMPLES");
}

#[test]
fn examples_match_golden_output() {
    let dir = examples_dir();
    let mut failures = Vec::new();
    for (name, compose, network) in EXAMPLES {
        let opts = LoadOptions {
            compose_files: compose.iter().map(|f| dir.join(f)).collect(),
            network_files: network.iter().map(|f| dir.join(f)).collect(),
            ..LoadOptions::default()
        };
        check(&format!("example-{name}"), &opts, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ok_fixtures_match_golden_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ok");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5);
    let env: HashMap<String, String> = [("SET", "10.0.0.1/24"), ("EMPTY", ""), ("NUM", "1400")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut failures = Vec::new();
    for input in inputs {
        let stem = input.file_stem().unwrap().to_string_lossy().to_string();
        let mut opts = LoadOptions {
            env: env.clone(),
            ..LoadOptions::default()
        };
        if stem.starts_with("compose-") {
            opts.compose_files.push(input.clone());
        } else {
            opts.network_files.push(input.clone());
        }
        check(&format!("ok-{stem}"), &opts, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
