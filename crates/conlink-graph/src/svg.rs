//! SVG drawn by conlink itself, no GraphViz needed.
//!
//! The picture has a fixed structure, so the layout is computed directly
//! instead of by a general graph layout engine (layout-rs flattens clusters):
//!
//! ```text
//!                          [remote hosts            ]
//!   [service A]            [conlink namespace       ]            [service C]
//!   [container B] ──────── [ bridge s1: L ends R ends] ─────────  [service D]
//!        ...               [ bridge s2: L ends R ends]      |        ...
//!                          [host (root namespace)   ] ---- lanes
//! ```
//!
//! Services and containers sit in two side columns, balanced by height and
//! ordered by the bridges they join; bridges are then ordered by the height
//! of the interfaces joining them, and each bridge has a left and a right
//! port column for ends whose peer is on that side, sorted by the peer's
//! height, so veth edges run across one gap and cross no box. Edges to host
//! parents and remote hosts run in vertical lanes beside the centre column.
//! Every box's size comes from its text, boxes never overlap by
//! construction, and the browser test checks that from the rendered geometry.

use std::fmt::Write;

use crate::topo::{EdgeKind, NodeId, NodeKind, Topology};

/// Font size of node names (monospace, so width is predictable).
const FONT: f64 = 12.0;
/// Font size of the detail line under a node name.
const SMALL: f64 = 10.0;
/// Advance width of one monospace character, as a fraction of the font size
/// (DejaVu Sans Mono / Liberation Mono: 0.602), with some margin.
const ADVANCE: f64 = 0.62;
const NODE_H: f64 = 34.0;
const NODE_GAP: f64 = 8.0;
const PAD: f64 = 10.0;
const TITLE_H: f64 = 22.0;
const BOX_GAP: f64 = 16.0;
const LANE: f64 = 8.0;
const GAP_BASE: f64 = 90.0;
const MARGIN: f64 = 20.0;

/// Display width of a string in character cells (wide East Asian characters
/// count twice).
fn cells(s: &str) -> f64 {
    s.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2.0 } else { 1.0 })
        .sum()
}

fn text_w(s: &str, size: f64) -> f64 {
    cells(s) * size * ADVANCE
}

/// XML text/attribute escaping; characters XML 1.0 forbids become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[derive(Debug, Clone, Copy, Default)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

/// Natural width of a node box.
fn node_w(t: &Topology, id: NodeId) -> f64 {
    let n = &t.nodes[id];
    (text_w(&n.name, FONT).max(text_w(&n.detail, SMALL)) + 2.0 * PAD).max(70.0)
}

/// A titled box holding a vertical stack of nodes.
struct Stack {
    title: String,
    nodes: Vec<NodeId>,
}

impl Stack {
    fn inner_w(&self, t: &Topology) -> f64 {
        let nodes = self.nodes.iter().map(|&n| node_w(t, n)).fold(0.0, f64::max);
        nodes.max(text_w(&self.title, FONT))
    }
    fn h(&self) -> f64 {
        let n = self.nodes.len() as f64;
        TITLE_H + PAD + n * NODE_H + (n - 1.0).max(0.0) * NODE_GAP + PAD
    }
}

/// Positions of everything, filled by [`layout`].
struct Layout {
    node: Vec<Rect>,
    /// (rect, title, css class, hover text)
    boxes: Vec<(Rect, String, &'static str, String)>,
    /// Which side each node is on, for edges leaving it: -1 left, 1 right.
    group_side: Vec<i8>,
    /// x of the vertical lane of each host or tunnel edge.
    lane: Vec<f64>,
    /// y where each host or tunnel edge enters its target node.
    entry: Vec<f64>,
    width: f64,
    height: f64,
    /// x of the centre column's left and right edges.
    centre: (f64, f64),
}

/// Places `stack` at (x, y) with the given outer width; returns its rect.
fn place_stack(s: &Stack, x: f64, y: f64, w: f64, l: &mut Layout) -> Rect {
    let r = Rect { x, y, w, h: s.h() };
    let mut ny = y + TITLE_H + PAD;
    for &n in &s.nodes {
        l.node[n] = Rect {
            x: x + PAD,
            y: ny,
            w: w - 2.0 * PAD,
            h: NODE_H,
        };
        ny += NODE_H + NODE_GAP;
    }
    r
}

fn layout(t: &Topology) -> Layout {
    let nn = t.nodes.len();
    let mut l = Layout {
        node: vec![Rect::default(); nn],
        boxes: Vec::new(),
        group_side: vec![0; nn],
        lane: vec![0.0; t.edges.len()],
        entry: vec![0.0; t.edges.len()],
        width: 0.0,
        height: 0.0,
        centre: (0.0, 0.0),
    };
    // Which group an inner node is in, which bridge an outer node is on, and
    // the inner end of each outer end.
    let mut group_of: Vec<Option<usize>> = vec![None; nn];
    for (g, gb) in t.groups.iter().enumerate() {
        for &n in &gb.nodes {
            group_of[n] = Some(g);
        }
    }
    let mut bridge_of: Vec<Option<usize>> = vec![None; nn];
    for (i, b) in t.bridges.iter().enumerate() {
        for &n in &b.nodes {
            bridge_of[n] = Some(i);
        }
    }
    let mut peer: Vec<Option<NodeId>> = vec![None; nn];
    for e in t.edges.iter().filter(|e| e.kind == EdgeKind::Veth) {
        peer[e.to] = Some(e.from);
    }

    // Sort key of a group: mean rank of what its links attach to (bridges in
    // order, the host box below them), so groups line up with their bridges.
    let host_rank = t.bridges.len() as f64;
    let mut sum = vec![0.0; t.groups.len()];
    let mut cnt = vec![0.0; t.groups.len()];
    for e in &t.edges {
        if let Some(g) = group_of[e.from] {
            sum[g] += match e.kind {
                EdgeKind::Veth => bridge_of[e.to].map_or(host_rank, |b| b as f64),
                _ => host_rank,
            };
            cnt[g] += 1.0;
        }
    }
    let mut order: Vec<(f64, usize)> = (0..t.groups.len())
        .map(|g| {
            (
                if cnt[g] > 0.0 {
                    sum[g] / cnt[g]
                } else {
                    host_rank + 1.0
                },
                g,
            )
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let stacks: Vec<Stack> = t
        .groups
        .iter()
        .map(|g| Stack {
            title: g.title(),
            nodes: g.nodes.clone(),
        })
        .collect();

    // Balance the two sides by height, keeping the sorted order on each.
    let (mut left, mut right): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    let (mut hl, mut hr) = (0.0, 0.0);
    for &(_, g) in &order {
        let h = stacks[g].h() + BOX_GAP;
        if hl <= hr {
            left.push(g);
            hl += h;
        } else {
            right.push(g);
            hr += h;
        }
    }
    for &g in &right {
        for &n in &t.groups[g].nodes {
            l.group_side[n] = 1;
        }
    }
    for &g in &left {
        for &n in &t.groups[g].nodes {
            l.group_side[n] = -1;
        }
    }
    let side_w = |gs: &[usize]| {
        gs.iter()
            .map(|&g| stacks[g].inner_w(t) + 2.0 * PAD)
            .fold(0.0, f64::max)
    };
    let (wl, wr) = (side_w(&left), side_w(&right));
    let side_h = |gs: &[usize]| {
        gs.iter().map(|&g| stacks[g].h()).sum::<f64>() + (gs.len() as f64 - 1.0).max(0.0) * BOX_GAP
    };

    // Bridges have two port columns: ends paired with left-side groups on
    // the left, the rest (right-side groups, tunnels) on the right, so no
    // edge crosses a bridge.
    let port_side = |n: NodeId| -> i8 {
        match t.nodes[n].kind {
            NodeKind::Outer => peer[n].map_or(-1, |p| l.group_side[p]),
            NodeKind::Tunnel => 1,
            _ => -1,
        }
    };
    let port_w = t
        .bridges
        .iter()
        .flat_map(|b| b.nodes.iter())
        .map(|&n| node_w(t, n))
        .fold(0.0, f64::max);
    let bridge_inner_w = t
        .bridges
        .iter()
        .map(|b| text_w(&b.title(), FONT))
        .fold(2.0 * port_w + 2.0 * PAD, f64::max);
    let bridge_w = bridge_inner_w + 2.0 * PAD;
    let bridge_rows: Vec<(Vec<NodeId>, Vec<NodeId>)> = t
        .bridges
        .iter()
        .map(|b| b.nodes.iter().partition(|&&n| port_side(n) < 0))
        .collect();
    let rows_h = |rows: usize| {
        let r = rows.max(1) as f64;
        TITLE_H + PAD + r * NODE_H + (r - 1.0) * NODE_GAP + PAD
    };
    let bridge_h: Vec<f64> = bridge_rows
        .iter()
        .map(|(a, b)| rows_h(a.len().max(b.len())))
        .collect();
    let ns_title = "conlink namespace";
    let ns_w = (bridge_w + 2.0 * PAD).max(text_w(ns_title, FONT) + 2.0 * PAD);
    let ns_h = if t.bridges.is_empty() {
        0.0
    } else {
        TITLE_H
            + PAD
            + bridge_h.iter().sum::<f64>()
            + (t.bridges.len() as f64 - 1.0) * BOX_GAP
            + PAD
    };
    let remote = Stack {
        title: "remote hosts".into(),
        nodes: t.remotes.clone(),
    };
    let host = Stack {
        title: "host (root namespace)".into(),
        nodes: t.host.clone(),
    };
    let remote_w = if t.remotes.is_empty() {
        0.0
    } else {
        remote.inner_w(t) + 2.0 * PAD
    };
    let host_w = if t.host.is_empty() {
        0.0
    } else {
        host.inner_w(t) + 2.0 * PAD
    };
    let centre_w = ns_w.max(remote_w).max(host_w);
    let parts: Vec<f64> = [
        (!t.remotes.is_empty()).then(|| remote.h()),
        (!t.bridges.is_empty()).then_some(ns_h),
        (!t.host.is_empty()).then(|| host.h()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let centre_h = parts.iter().sum::<f64>() + (parts.len() as f64 - 1.0).max(0.0) * 2.0 * BOX_GAP;

    // Lanes beside the centre column: one per host edge on its side, one
    // per tunnel on the right.
    let lanes = |s: i8| {
        t.edges
            .iter()
            .filter(|e| match e.kind {
                EdgeKind::Host => l.group_side[e.from] == s,
                EdgeKind::Tunnel => s > 0,
                EdgeKind::Veth => false,
            })
            .count() as f64
    };
    // Many veth edges through one gap need room to stay apart.
    let veths = |s: i8| {
        t.edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Veth && l.group_side[e.from] == s)
            .count() as f64
    };
    let gap_l = GAP_BASE + lanes(-1) * LANE + (veths(-1) * 1.5).min(120.0);
    let gap_r = GAP_BASE + lanes(1) * LANE + (veths(1) * 1.5).min(120.0);

    let total_h = side_h(&left).max(side_h(&right)).max(centre_h);
    let x_left = MARGIN;
    let x_centre = if left.is_empty() {
        MARGIN + gap_l
    } else {
        x_left + wl + gap_l
    };
    let x_right = x_centre + centre_w + gap_r;
    l.centre = (x_centre, x_centre + centre_w);

    // Side columns, vertically centred.
    for (gs, x, w) in [(&left, x_left, wl), (&right, x_right, wr)] {
        let mut y = MARGIN + (total_h - side_h(gs)) / 2.0;
        for &g in gs {
            let r = place_stack(&stacks[g], x, y, w, &mut l);
            let kind = if t.groups[g].is_service {
                "service"
            } else {
                "container"
            };
            let mut hover = stacks[g].title.clone();
            if !t.groups[g].commands.is_empty() {
                hover += &format!("\ncommands:\n{}", t.groups[g].commands.join("\n"));
            }
            l.boxes.push((r, stacks[g].title.clone(), kind, hover));
            y += r.h + BOX_GAP;
        }
    }

    // Centre column, vertically centred too.
    let mut y = MARGIN + (total_h - centre_h) / 2.0;
    let centred = |w: f64| x_centre + (centre_w - w) / 2.0;
    if !t.remotes.is_empty() {
        let r = place_stack(&remote, centred(remote_w), y, remote_w, &mut l);
        l.boxes
            .push((r, remote.title.clone(), "remote", remote.title.clone()));
        y += r.h + 2.0 * BOX_GAP;
    }
    if !t.bridges.is_empty() {
        let nx = centred(ns_w);
        let ns = Rect {
            x: nx,
            y,
            w: ns_w,
            h: ns_h,
        };
        l.boxes
            .push((ns, ns_title.into(), "namespace", ns_title.into()));
        // Ports ordered by the height of the inner end they pair with, so
        // veth edges don't cross; tunnels (no peer) stay on top.
        let peer_y: Vec<f64> = peer
            .iter()
            .map(|p| p.map_or(f64::NEG_INFINITY, |p| l.node[p].cy()))
            .collect();
        // Bridges ordered by the mean height of the interfaces joining them
        // (groups are placed already), tunnel-only bridges first (nearest
        // the remote hosts), empty ones last.
        let bridge_key = |b: &crate::topo::BridgeBox| -> f64 {
            let ys: Vec<f64> = b
                .nodes
                .iter()
                .filter(|&&n| peer[n].is_some())
                .map(|&n| peer_y[n])
                .collect();
            if !ys.is_empty() {
                ys.iter().sum::<f64>() / ys.len() as f64
            } else if b.nodes.iter().any(|&n| t.nodes[n].kind == NodeKind::Tunnel) {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        };
        let mut border: Vec<usize> = (0..t.bridges.len()).collect();
        border.sort_by(|&a, &b| bridge_key(&t.bridges[a]).total_cmp(&bridge_key(&t.bridges[b])));
        let mut by = y + TITLE_H + PAD;
        for i in border {
            let b = &t.bridges[i];
            let bx = nx + PAD;
            let r = Rect {
                x: bx,
                y: by,
                w: bridge_w,
                h: bridge_h[i],
            };
            for (col, x) in [
                (&bridge_rows[i].0, bx + PAD),
                (&bridge_rows[i].1, bx + bridge_w - PAD - port_w),
            ] {
                let mut col = col.clone();
                col.sort_by(|&a, &c| peer_y[a].total_cmp(&peer_y[c]));
                let mut ny = by + TITLE_H + PAD;
                for n in col {
                    l.node[n] = Rect {
                        x,
                        y: ny,
                        w: port_w,
                        h: NODE_H,
                    };
                    ny += NODE_H + NODE_GAP;
                }
            }
            let mode = b
                .mode
                .map(|m| format!("\nmode: {}", crate::topo::mode_str(m)))
                .unwrap_or_default();
            l.boxes
                .push((r, b.title(), "bridge", format!("bridge {}{mode}", b.name)));
            by += r.h + BOX_GAP;
        }
        y += ns_h + 2.0 * BOX_GAP;
    }
    if !t.host.is_empty() {
        let r = place_stack(&host, centred(host_w), y, host_w, &mut l);
        l.boxes
            .push((r, host.title.clone(), "host", host.title.clone()));
    }
    // Host parents and remote hosts ordered by the mean height of the
    // interfaces that reach them, so their lanes cross less.
    let mut ysum = vec![0.0; nn];
    let mut ycnt = vec![0.0f64; nn];
    for e in &t.edges {
        ysum[e.to] += l.node[e.from].cy();
        ycnt[e.to] += 1.0;
    }
    for list in [&t.host, &t.remotes] {
        let mut slots: Vec<Rect> = list.iter().map(|&n| l.node[n]).collect();
        slots.sort_by(|a, b| a.y.total_cmp(&b.y));
        let mut sorted = list.clone();
        let mean = |n: NodeId| ysum[n] / ycnt[n].max(1.0);
        sorted.sort_by(|&a, &b| mean(a).total_cmp(&mean(b)));
        for (n, r) in sorted.into_iter().zip(slots) {
            l.node[n] = r;
        }
    }
    // Lanes, from the centre column outwards: on each side, edges leaving
    // higher get the inner lanes; on the right tunnels (going up) come
    // before host edges (going down), so the two kinds never cross.
    let mut lane_edges: Vec<(i8, u8, f64, usize)> = t
        .edges
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e.kind {
            EdgeKind::Veth => None,
            EdgeKind::Tunnel => Some((1, 0, l.node[e.from].cy(), i)),
            EdgeKind::Host => Some((l.group_side[e.from], 1, l.node[e.from].cy(), i)),
        })
        .collect();
    lane_edges.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
    let (mut nl, mut nr) = (0.0, 0.0);
    for (side, _, _, i) in lane_edges {
        l.lane[i] = if side < 0 {
            nl += 1.0;
            l.centre.0 - 12.0 - nl * LANE
        } else {
            nr += 1.0;
            l.centre.1 + 12.0 + nr * LANE
        };
    }
    // Several lanes into one node enter it at spread-out heights, ordered
    // so their last segments cross no other lane: host edges come down, so
    // the outer the lane the lower it enters; tunnels go up, the reverse.
    let mut into: std::collections::BTreeMap<(NodeId, bool), Vec<usize>> = Default::default();
    for (i, e) in t.edges.iter().enumerate() {
        if e.kind != EdgeKind::Veth {
            into.entry((e.to, l.lane[i] < l.centre.0))
                .or_default()
                .push(i);
        }
    }
    for ((to, _), mut es) in into {
        let dist = |i: usize| {
            if l.lane[i] < l.centre.0 {
                l.centre.0 - l.lane[i]
            } else {
                l.lane[i] - l.centre.1
            }
        };
        es.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)));
        if t.edges[es[0]].kind == EdgeKind::Tunnel {
            es.reverse();
        }
        let r = l.node[to];
        let m = es.len() as f64;
        for (k, i) in es.into_iter().enumerate() {
            l.entry[i] = r.y + r.h * (k as f64 + 1.0) / (m + 1.0);
        }
    }
    l.width = if right.is_empty() {
        x_right
    } else {
        x_right + wr + MARGIN
    };
    l.height = total_h + 2.0 * MARGIN;
    l
}

/// Polyline path data.
fn poly(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(d, "{}{x:.1} {y:.1} ", if i == 0 { "M" } else { "L" });
    }
    d.trim_end().to_string()
}

/// Renders the SVG document (without XML declaration, so it can be inlined
/// into HTML as is).
pub fn render(t: &Topology) -> String {
    let l = layout(t);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"conlink-graph\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"DejaVu Sans Mono, Liberation Mono, Menlo, Consolas, monospace\">",
        w = l.width,
        h = l.height
    );
    o.push_str(STYLE);
    let _ = writeln!(
        o,
        "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"{:.0}\" height=\"{:.0}\"/>",
        l.width, l.height
    );
    for (r, title, kind, hover) in &l.boxes {
        let _ = writeln!(
            o,
            "<g class=\"box {kind}\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\"/><text class=\"btitle\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(hover),
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + PAD,
            r.y + 16.0,
            esc(title)
        );
    }
    for (i, e) in t.edges.iter().enumerate() {
        let a = l.node[e.from];
        let b = l.node[e.to];
        let x = l.lane[i];
        let d = match e.kind {
            EdgeKind::Veth => {
                let (x1, x2) = if l.group_side[e.from] < 0 {
                    (a.right(), b.x)
                } else {
                    (a.x, b.right())
                };
                let (y1, y2) = (a.cy(), b.cy());
                let xm = (x1 + x2) / 2.0;
                format!("M{x1:.1} {y1:.1} C{xm:.1} {y1:.1} {xm:.1} {y2:.1} {x2:.1} {y2:.1}")
            }
            EdgeKind::Host if l.group_side[e.from] < 0 => poly(&[
                (a.right(), a.cy()),
                (x, a.cy()),
                (x, l.entry[i]),
                (b.x, l.entry[i]),
            ]),
            EdgeKind::Host => poly(&[
                (a.x, a.cy()),
                (x, a.cy()),
                (x, l.entry[i]),
                (b.right(), l.entry[i]),
            ]),
            EdgeKind::Tunnel => poly(&[
                (a.right(), a.cy()),
                (x, a.cy()),
                (x, l.entry[i]),
                (b.right(), l.entry[i]),
            ]),
        };
        let class = match e.kind {
            EdgeKind::Veth => "veth",
            EdgeKind::Host => "hostlink",
            EdgeKind::Tunnel => "tunnel",
        };
        let title = if e.label.is_empty() {
            format!("{} — {}", t.nodes[e.from].name, t.nodes[e.to].name)
        } else {
            format!(
                "{} — {} ({})",
                t.nodes[e.from].name, t.nodes[e.to].name, e.label
            )
        };
        let _ = writeln!(
            o,
            "<path class=\"edge {class}\" id=\"e{i}\" data-from=\"n{}\" data-to=\"n{}\" d=\"{d}\"><title>{}</title></path>",
            e.from,
            e.to,
            esc(&title)
        );
    }
    // `data-key` ties an inner interface node to the links of a running
    // conlink (`service:NAME/DEV`, `container:NAME/DEV`): the live page
    // (conlink-control) colours nodes by it.
    let mut keys = vec![None; t.nodes.len()];
    for g in &t.groups {
        let kind = if g.is_service { "service" } else { "container" };
        for &n in &g.nodes {
            keys[n] = Some(format!("{kind}:{}/{}", g.name, t.nodes[n].name));
        }
    }
    for (id, n) in t.nodes.iter().enumerate() {
        let r = l.node[id];
        let key = keys[id]
            .as_ref()
            .map_or(String::new(), |k| format!(" data-key=\"{}\"", esc(k)));
        let kind = match n.kind {
            NodeKind::Inner => "inner",
            NodeKind::Outer => "outer",
            NodeKind::Tunnel => "tun",
            NodeKind::HostParent => "parent",
            NodeKind::Remote => "remotehost",
            NodeKind::Placeholder => "placeholder",
        };
        let _ = write!(
            o,
            "<g class=\"node {kind}\" id=\"n{id}\"{key}><title>{}</title><rect class=\"nodebox\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\"/>",
            esc(&t.tooltip(id)),
            r.x,
            r.y,
            r.w,
            r.h
        );
        if n.detail.is_empty() {
            let _ = write!(
                o,
                "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                r.x + PAD,
                r.cy() + 4.0,
                esc(&n.name)
            );
        } else {
            let _ = write!(
                o,
                "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\">{}</text><text class=\"detail\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                r.x + PAD,
                r.y + 14.0,
                esc(&n.name),
                r.x + PAD,
                r.y + 28.0,
                esc(&n.detail)
            );
        }
        o.push_str("</g>\n");
    }
    o.push_str("</svg>\n");
    o
}

const STYLE: &str = r#"<style>
.conlink-graph .bg { fill: #ffffff; }
.conlink-graph .box > rect { stroke-width: 1.2; }
.conlink-graph .service > rect { fill: #eff6ff; stroke: #3b82f6; }
.conlink-graph .container > rect { fill: #f0fdf4; stroke: #22c55e; }
.conlink-graph .namespace > rect { fill: #f8fafc; stroke: #64748b; stroke-dasharray: 6 3; }
.conlink-graph .bridge > rect { fill: #fffbeb; stroke: #d97706; }
.conlink-graph .host > rect { fill: #fff1f2; stroke: #e11d48; stroke-dasharray: 6 3; }
.conlink-graph .remote > rect { fill: #f5f3ff; stroke: #7c3aed; stroke-dasharray: 2 3; }
.conlink-graph .btitle { font-size: 12px; font-weight: bold; fill: #1f2937; }
.conlink-graph .nodebox { fill: #ffffff; stroke: #475569; }
.conlink-graph .inner .nodebox { fill: #dbeafe; }
.conlink-graph .outer .nodebox { fill: #fef3c7; }
.conlink-graph .tun .nodebox { fill: #ede9fe; }
.conlink-graph .parent .nodebox { fill: #fee2e2; }
.conlink-graph .remotehost .nodebox { fill: #f3f4f6; }
.conlink-graph .placeholder .nodebox { fill: none; stroke: none; }
.conlink-graph .name { font-size: 12px; fill: #111827; }
.conlink-graph .detail { font-size: 10px; fill: #4b5563; }
.conlink-graph .edge { fill: none; stroke: #334155; stroke-width: 1.3; }
.conlink-graph .hostlink { stroke: #e11d48; stroke-dasharray: 5 3; }
.conlink-graph .tunnel { stroke: #7c3aed; stroke-width: 2.2; }
.conlink-graph .node:hover .nodebox, .conlink-graph .node.hl .nodebox { stroke: #dc2626; stroke-width: 2.5; }
.conlink-graph .edge.hl { stroke: #dc2626; stroke-width: 3; }
</style>
"#;
