//! Mermaid flowchart output (renders natively in GitHub/GitLab markdown).
//!
//! Ids are generated (`n0`, `c0`); user names appear only in quoted labels,
//! where [`label`] turns every character Mermaid treats specially into an
//! entity code (`#quot;`, `#35;`, ...).

use std::fmt::Write;

use crate::topo::{EdgeKind, NodeId, NodeKind, Topology};

/// A Mermaid quoted label. Mermaid has no backslash escapes: `"` ends the
/// label, `#` starts an entity, `<`/`>`/`&` are read as HTML, so these become
/// numeric entity codes. Newlines become `<br/>`.
pub fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '#' | '<' | '>' | '&' | '`' | '|' | '[' | ']' | '{' | '}' | ';' => {
                let _ = write!(out, "#{};", c as u32);
            }
            '\n' => out.push_str("<br/>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn node_line(o: &mut String, t: &Topology, id: NodeId, indent: &str) {
    let n = &t.nodes[id];
    let text = if n.detail.is_empty() {
        label(&n.name)
    } else {
        // Join the two escaped halves with a real line break tag.
        let a = label(&n.name);
        let b = label(&n.detail);
        format!("{}<br/>{}", &a[..a.len() - 1], &b[1..])
    };
    let shape = match n.kind {
        NodeKind::Remote => format!("n{id}(({text}))"),
        NodeKind::HostParent => format!("n{id}[/{text}/]"),
        _ => format!("n{id}[{text}]"),
    };
    let _ = writeln!(o, "{indent}{shape}");
}

/// Renders the topology as a Mermaid `flowchart LR` with nested subgraphs.
pub fn render(t: &Topology) -> String {
    let mut o = String::from("flowchart LR\n");
    let mut sub = 0usize;
    let mut open = |o: &mut String, title: &str, indent: &str| {
        let _ = writeln!(o, "{indent}subgraph c{sub} [{}]", label(title));
        sub += 1;
    };
    if !t.host.is_empty() {
        open(&mut o, "host (root namespace)", "  ");
        for &id in &t.host {
            node_line(&mut o, t, id, "    ");
        }
        o.push_str("  end\n");
    }
    if !t.bridges.is_empty() {
        open(&mut o, "conlink namespace", "  ");
        for b in &t.bridges {
            open(&mut o, &b.title(), "    ");
            for &id in &b.nodes {
                node_line(&mut o, t, id, "      ");
            }
            o.push_str("    end\n");
        }
        o.push_str("  end\n");
    }
    for g in &t.groups {
        open(&mut o, &g.title(), "  ");
        for &id in &g.nodes {
            node_line(&mut o, t, id, "    ");
        }
        o.push_str("  end\n");
    }
    for &id in &t.remotes {
        node_line(&mut o, t, id, "  ");
    }
    for e in &t.edges {
        let _ = match e.kind {
            EdgeKind::Veth => writeln!(o, "  n{} --- n{}", e.from, e.to),
            EdgeKind::Host => writeln!(o, "  n{} -.-|{}| n{}", e.from, label(&e.label), e.to),
            EdgeKind::Tunnel => writeln!(o, "  n{} ===|{}| n{}", e.from, label(&e.label), e.to),
        };
    }
    o
}
