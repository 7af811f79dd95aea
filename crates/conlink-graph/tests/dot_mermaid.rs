//! DOT output is accepted by GraphViz (`dot -Tsvg`, Debian package
//! `graphviz`) and draws every name; DOT and Mermaid have the structure the
//! spec asks for (clusters, edges, escaping).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use conlink_graph::{render, Format};

/// Runs `dot -Tsvg` on `src`; panics loudly if GraphViz is missing.
fn dot_svg(name: &str, src: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `dot` ({e}): install GraphViz (Debian package `graphviz`)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: dot -Tsvg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "{name}: dot warned: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn graphviz_accepts_every_dot_output_and_draws_every_name() {
    for (name, path) in common::fixtures() {
        let cfg = common::load(&path);
        let dot = render(&cfg, Format::Dot);
        let svg = dot_svg(&name, &dot);
        std::fs::write(
            common::artifact_dir().join(format!("{name}.graphviz.svg")),
            &svg,
        )
        .unwrap();
        let texts = common::svg_texts(&svg);
        for want in common::expected_texts(&cfg) {
            assert!(
                texts.contains(&want),
                "{name}: graphviz drawing has no text {want:?}"
            );
        }
    }
}

/// Lines of the block opened by the first line starting with `head`, up to
/// its matching `}`.
fn dot_block<'a>(dot: &'a str, head: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = dot.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(head))
        .unwrap_or_else(|| panic!("no block {head:?} in:\n{dot}"));
    let mut depth = 0;
    let mut out = Vec::new();
    for l in &lines[start..] {
        depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
        out.push(*l);
        if depth == 0 {
            break;
        }
    }
    out
}

/// The DOT node id whose label starts with `label_start`.
fn node_id(dot: &str, label_start: &str) -> String {
    let pat = format!("[label=\"{label_start}");
    let line = dot
        .lines()
        .find(|l| l.contains(&pat))
        .unwrap_or_else(|| panic!("no node labelled {label_start:?}"));
    line.split_whitespace().next().unwrap().to_string()
}

#[test]
fn dot_structure_of_all_link_types() {
    let cfg = common::load(&common::crate_dir().join("tests/fixtures/all-types.json"));
    let dot = render(&cfg, Format::Dot);
    // Host cluster holds the parents, labelled with the child kinds.
    let host = dot_block(&dot, "subgraph cluster_host").join("\n");
    assert!(
        host.contains("label=\"eth1\\nvlan 100, vlan 200\""),
        "{host}"
    );
    assert!(
        host.contains("label=\"eth2\\nipvlan l2, ipvtap l3\""),
        "{host}"
    );
    assert!(
        host.contains("label=\"eth0\\nmacvlan bridge, macvtap passthru\""),
        "{host}"
    );
    // conlink namespace holds one cluster per bridge; outer ends and
    // tunnels inside their bridge.
    let ns = dot_block(&dot, "subgraph cluster_conlink").join("\n");
    for b in [
        "bridge core (ovs)",
        "bridge lan (linux)",
        "bridge wire (patch)",
        "bridge idle (linux)",
    ] {
        assert!(ns.contains(&format!("label=\"{b}\"")), "missing {b}");
    }
    let lan_start = ns.find("label=\"bridge lan (linux)\"").unwrap();
    let lan = &ns[lan_start..ns[lan_start..].find('}').unwrap() + lan_start];
    for port in [
        "web-up\\nveth",
        "client_1-eth0\\nveth",
        "r1-eth0\\nveth",
        "vxlan-1003\\ntunnel",
    ] {
        assert!(lan.contains(port), "bridge lan lacks {port}: {lan}");
    }
    // A service cluster holds its inner interfaces.
    let web = dot_block(&dot, "subgraph cluster_g").join("\n");
    assert!(
        web.contains("label=\"service a-very-long-service-name\""),
        "{web}"
    );
    // Edges: inner veth end to outer end; *vlan child to host parent with
    // the kind as label; tunnel to its remote host node.
    let web_eth0 = node_id(&dot, "eth0\\nveth 10.0.0.80/24");
    let web_up = node_id(&dot, "web-up\\n");
    assert!(dot.contains(&format!("{web_eth0} -- {web_up};")));
    let v100 = node_id(&dot, "v100\\n");
    let eth1 = node_id(&dot, "eth1\\nvlan 100");
    assert!(dot.contains(&format!(
        "{v100} -- {eth1} [label=\"vlan 100\", style=dashed];"
    )));
    let vx = node_id(&dot, "vxlan-1001\\n");
    let remote = node_id(&dot, "remote host 192.168.50.2\\n");
    assert!(dot.contains(&format!("{vx} -- {remote} [")));
    // Properties are available as tooltips.
    assert!(
        dot.contains("netem: delay 40ms 5ms loss 1%"),
        "netem tooltip missing"
    );
    assert!(dot.contains("mac: c2:00:00:00:00:10"));
    // Derived outer name too long for IFNAMSIZ: the id-based placeholder.
    assert!(dot.contains("label=\"c<id>-eth1\\nveth\""));
}

#[test]
fn dot_escapes_hostile_names() {
    let cfg = common::load(&common::crate_dir().join("tests/fixtures/weird-names.json"));
    let dot = render(&cfg, Format::Dot);
    assert!(dot.contains(r#"label="bridge b\"q\\x (linux)""#), "{dot}");
    assert!(dot.contains(r#"label="e\"0\\\nveth 10.0.0.1/24""#), "{dot}");
    // Every quote inside a line is escaped: an even number of unescaped quotes.
    for l in dot.lines() {
        let unescaped = l.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(
            unescaped.matches('"').count() % 2,
            0,
            "unbalanced quotes: {l}"
        );
    }
}

#[test]
fn mermaid_structure_and_escaping() {
    for (name, path) in common::fixtures() {
        let cfg = common::load(&path);
        let m = render(&cfg, Format::Mermaid);
        assert!(m.starts_with("flowchart LR\n"), "{name}");
        let opens = m
            .lines()
            .filter(|l| l.trim_start().starts_with("subgraph "))
            .count();
        let ends = m.lines().filter(|l| l.trim() == "end").count();
        assert_eq!(opens, ends, "{name}: unbalanced subgraphs");
        // Every edge endpoint is a declared node.
        let declared: Vec<&str> = m
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with('n') && !l.contains("---") && !l.contains("-.-") && !l.contains("===")
            })
            .map(|l| l.split(['[', '(']).next().unwrap())
            .collect();
        for l in m
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("---") || l.contains("-.-") || l.contains("==="))
        {
            let a = l.split_whitespace().next().unwrap();
            let b = l.split_whitespace().last().unwrap();
            assert!(
                declared.contains(&a) && declared.contains(&b),
                "{name}: edge to undeclared node: {l}"
            );
        }
        // No raw special characters inside labels: quotes only delimit.
        for l in m.lines() {
            assert_eq!(l.matches('"').count() % 2, 0, "{name}: odd quotes in {l}");
        }
        for want in common::expected_texts(&cfg) {
            let esc = conlink_graph::mermaid::label(&want);
            let inner = &esc[1..esc.len() - 1];
            assert!(m.contains(inner), "{name}: mermaid lacks {want:?}");
        }
    }
    let cfg = common::load(&common::crate_dir().join("tests/fixtures/weird-names.json"));
    let m = render(&cfg, Format::Mermaid);
    assert!(
        m.contains("\"service svc#60;#38;#62;#123;x#125;#59;#35;1\""),
        "{m}"
    );
    assert!(m.contains("subgraph c"), "{m}");
    assert!(!m.contains("<&>"), "raw special characters leaked: {m}");
}

#[test]
fn graphviz_accepts_an_empty_config() {
    let svg = dot_svg(
        "empty",
        &render(&conlink_model::NetworkConfig::default(), Format::Dot),
    );
    assert!(svg.contains("<svg"), "{svg}");
}
