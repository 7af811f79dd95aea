//! GraphViz DOT output.
//!
//! Node and cluster identifiers are generated (`n0`, `cluster_b0`), so user
//! names only ever appear inside quoted strings, where [`quote`] escapes them.

use std::fmt::Write;

use crate::topo::{EdgeKind, NodeId, NodeKind, Topology};

/// A DOT double-quoted string. Backslash and quote are escaped; a newline in
/// a name becomes GraphViz's `\n` line break; other control characters (never
/// legal in interface names anyway) become spaces so the output stays valid.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn node_line(out: &mut String, t: &Topology, id: NodeId, indent: &str) {
    let n = &t.nodes[id];
    let label = if n.detail.is_empty() {
        n.name.clone()
    } else {
        format!("{}\n{}", n.name, n.detail)
    };
    let style = match n.kind {
        NodeKind::Inner => "shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\"",
        NodeKind::Outer => "shape=box, style=\"rounded,filled\", fillcolor=\"#fef3c7\"",
        NodeKind::Tunnel => "shape=box, style=\"rounded,filled\", fillcolor=\"#ede9fe\"",
        NodeKind::HostParent => "shape=box, style=\"filled\", fillcolor=\"#fee2e2\"",
        NodeKind::Remote => "shape=ellipse, style=\"filled\", fillcolor=\"#f3f4f6\"",
        NodeKind::Placeholder => "shape=plaintext",
    };
    let _ = writeln!(
        out,
        "{indent}n{id} [label={}, tooltip={}, {style}];",
        quote(&label),
        quote(&t.tooltip(id))
    );
}

/// Renders the topology as an undirected DOT graph.
pub fn render(t: &Topology) -> String {
    let mut o = String::new();
    o.push_str("graph conlink {\n");
    o.push_str("  graph [rankdir=LR, fontname=\"monospace\", fontsize=11, compound=true];\n");
    o.push_str("  node [fontname=\"monospace\", fontsize=10];\n");
    o.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    if !t.host.is_empty() {
        o.push_str("  subgraph cluster_host {\n");
        let _ = writeln!(o, "    label={};", quote("host (root namespace)"));
        o.push_str("    style=filled; fillcolor=\"#fff7f7\";\n");
        for &id in &t.host {
            node_line(&mut o, t, id, "    ");
        }
        o.push_str("  }\n");
    }
    if !t.bridges.is_empty() {
        o.push_str("  subgraph cluster_conlink {\n");
        let _ = writeln!(o, "    label={};", quote("conlink namespace"));
        o.push_str("    style=filled; fillcolor=\"#f8fafc\";\n");
        for (i, b) in t.bridges.iter().enumerate() {
            let _ = writeln!(o, "    subgraph cluster_b{i} {{");
            let _ = writeln!(o, "      label={};", quote(&b.title()));
            o.push_str("      style=filled; fillcolor=\"#fffbeb\";\n");
            for &id in &b.nodes {
                node_line(&mut o, t, id, "      ");
            }
            o.push_str("    }\n");
        }
        o.push_str("  }\n");
    }
    for (i, g) in t.groups.iter().enumerate() {
        let _ = writeln!(o, "  subgraph cluster_g{i} {{");
        let _ = writeln!(o, "    label={};", quote(&g.title()));
        let fill = if g.is_service { "#eff6ff" } else { "#f0fdf4" };
        let _ = writeln!(o, "    style=filled; fillcolor=\"{fill}\";");
        if !g.commands.is_empty() {
            let _ = writeln!(
                o,
                "    tooltip={};",
                quote(&format!("commands:\n{}", g.commands.join("\n")))
            );
        }
        for &id in &g.nodes {
            node_line(&mut o, t, id, "    ");
        }
        o.push_str("  }\n");
    }
    for &id in &t.remotes {
        node_line(&mut o, t, id, "  ");
    }
    for e in &t.edges {
        let mut attrs: Vec<String> = Vec::new();
        if !e.label.is_empty() && e.kind == EdgeKind::Host {
            attrs.push(format!("label={}", quote(&e.label)));
        }
        match e.kind {
            EdgeKind::Veth => {}
            EdgeKind::Host => attrs.push("style=dashed".into()),
            EdgeKind::Tunnel => attrs.push("style=bold, color=\"#7c3aed\"".into()),
        }
        if attrs.is_empty() {
            let _ = writeln!(o, "  n{} -- n{};", e.from, e.to);
        } else {
            let _ = writeln!(o, "  n{} -- n{} [{}];", e.from, e.to, attrs.join(", "));
        }
    }
    o.push_str("}\n");
    o
}
