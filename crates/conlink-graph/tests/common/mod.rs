//! Helpers shared by the conlink-graph integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use conlink_model::{Base, BridgeMode, NetworkConfig, Target, TunnelType};

/// The crate directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `tests/fixtures/*.json` and `tests/golden/*.json`, sorted, as
/// (name, path). Golden configs come from `conlink --show-config` on the
/// example projects; fixtures are hand-written.
pub fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in ["tests/fixtures", "tests/golden"] {
        let Ok(rd) = std::fs::read_dir(crate_dir().join(dir)) else {
            continue;
        };
        for e in rd {
            let p = e.expect("read fixture dir").path();
            if p.extension().and_then(|s| s.to_str()) == Some("json") {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                out.push((name, p));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 4,
        "expected at least 4 fixtures, found {}",
        out.len()
    );
    out
}

/// Reads a fixture into the model.
pub fn load(path: &Path) -> NetworkConfig {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Where tests leave artifacts (screenshots, rendered files).
pub fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../../target"));
    let d = target.join("graph-artifacts");
    std::fs::create_dir_all(&d).expect("create target/graph-artifacts");
    d
}

/// Texts that must appear as whole text elements in any rendering: box
/// titles of services, containers and bridges, and every interface name.
/// Computed from the config here, independently of the crate's own code.
pub fn expected_texts(cfg: &NetworkConfig) -> Vec<String> {
    let mut v = Vec::new();
    for s in cfg.services.keys() {
        v.push(format!("service {s}"));
    }
    for c in cfg.containers.keys() {
        v.push(format!("container {c}"));
    }
    for (name, b) in &cfg.bridges {
        let mode = match b.mode {
            BridgeMode::Linux => "linux",
            BridgeMode::Ovs => "ovs",
            BridgeMode::Patch => "patch",
        };
        v.push(format!("bridge {name} ({mode})"));
    }
    for t in &cfg.tunnels {
        let kind = match t.tunnel_type {
            TunnelType::Vxlan => "vxlan",
            TunnelType::Geneve => "geneve",
        };
        v.push(format!("{kind}-{}", t.vni));
        v.push(format!("remote host {}", t.remote));
    }
    for g in cfg.services.values().chain(cfg.containers.values()) {
        for l in &g.links {
            v.push(l.dev.clone());
            match (l.base, &l.outer_dev) {
                (_, Some(o)) => v.push(o.clone()),
                (Base::Conlink, None) => {
                    let n = match &l.target {
                        Target::Service(s) => format!("{s}_1-{}", l.dev),
                        Target::Container(c) => format!("{c}-{}", l.dev),
                    };
                    if n.len() <= 15 {
                        v.push(n);
                    }
                }
                _ => {}
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Undoes XML escaping (named and numeric character references).
pub fn xml_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let ent = &rest[i + 1..i + j];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&rest[i..i + j + 1]),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// Contents of every `<text ...>...</text>` element of an SVG, unescaped.
pub fn svg_texts(svg: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<text") {
        let after = &rest[i..];
        let Some(gt) = after.find('>') else { break };
        let Some(end) = after.find("</text>") else {
            break;
        };
        v.push(xml_unescape(&after[gt + 1..end]));
        rest = &after[end + 7..];
    }
    v
}
