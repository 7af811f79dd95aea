// Shared by conlink-config/tests/golden.rs and conlink/tests/show_config.rs
// (included with `include!`).

/// How each example is run: (golden name, compose files, network files),
/// paths relative to `examples/`. Mirrors the commands in the examples'
/// comments.
#[allow(dead_code)]
pub const EXAMPLES: &[(&str, &[&str], &[&str])] = &[
    ("router", &["router/compose.yaml"], &[]),
    ("scale", &["scale/compose.yaml"], &["scale/network.yaml"]),
    ("bridge-modes", &["bridge-modes/compose.yaml"], &[]),
    ("forward", &["forward/compose.yaml"], &[]),
    ("link-props", &["link-props/compose.yaml"], &[]),
    (
        "host-links",
        &["host-links/compose.yaml"],
        &["host-links/vlan.yaml"],
    ),
    (
        "tunnels",
        &["tunnels/compose.yaml"],
        &["tunnels/geneve.yaml"],
    ),
    (
        "multi",
        &["multi/compose.yaml", "multi/compose.extra.yaml"],
        &[],
    ),
    ("swarm", &["swarm/stack.yaml"], &[]),
];
