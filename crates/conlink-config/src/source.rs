//! Reading config sources and merging them (spec §3).
//!
//! A source file yields *fragments*: pieces shaped like a network file
//! (`links`, `bridges`, `tunnels`, `commands`). A compose file yields its
//! top-level `x-network` and then each service's `x-network` in file order;
//! a network file is one fragment. Everything merges in that load order
//! (compose files as given, then network files as given): a later
//! definition of the same link wins, wherever it was written, exactly as
//! the original merges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::interpolate::interpolate;
use crate::tree::{escape, Loc, Node, Tree};
use crate::{LoadOptions, RawError};

/// One piece of config from one place.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The config, shaped like a network file.
    pub tree: Tree,
    /// Whether it came from inside a compose service (links and commands
    /// there default `service:` to it; the merge order is load order all
    /// the same).
    pub service_internal: bool,
}

/// Keys whose values are numbers: a string that becomes a whole number after
/// interpolation (`mtu: ${MTU:-1500}`) is read as that number, as compose does
/// for its own numeric fields.
const NUMERIC_KEYS: &[&str] = &["mtu", "vlanid", "vni"];

fn err(errs: &mut Vec<RawError>, file: usize, ptr: &str, message: impl Into<String>) {
    errs.push(RawError {
        loc: Loc::new(file, ptr),
        message: message.into(),
    });
}

/// Reads every file of `opts` (compose files first, then network files) and
/// returns their fragments in merge order. File names are pushed to `files`
/// (errors refer to them by index); problems go to `errs`.
pub(crate) fn read_all(
    opts: &LoadOptions,
    files: &mut Vec<PathBuf>,
    errs: &mut Vec<RawError>,
) -> Vec<Fragment> {
    let mut out = Vec::new();
    for (path, compose) in opts
        .compose_files
        .iter()
        .map(|p| (p, true))
        .chain(opts.network_files.iter().map(|p| (p, false)))
    {
        let idx = files.len();
        files.push(path.clone());
        let Some(doc) = parse_file(path, idx, opts, errs) else {
            continue;
        };
        let frags = if compose {
            compose_fragments(doc, idx, errs)
        } else {
            network_fragments(doc, idx, errs)
        };
        for mut f in frags {
            interpolate_tree(&mut f.tree, None, &opts.env, errs);
            out.push(f);
        }
    }
    out
}

/// Reads and parses one file: JSON if it ends in `.json`, YAML otherwise.
/// The file is read through a bounded reader, so a huge file (or a FIFO
/// that never ends) costs at most `max_file_bytes` of memory.
fn parse_file(
    path: &Path,
    idx: usize,
    opts: &LoadOptions,
    errs: &mut Vec<RawError>,
) -> Option<Value> {
    use std::io::Read;
    let limit = opts.max_file_bytes;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes));
    if let Err(e) = read {
        err(errs, idx, "", format!("cannot read file: {e}"));
        return None;
    }
    if bytes.len() as u64 > limit {
        err(
            errs,
            idx,
            "",
            format!(
                "file is larger than the limit of {limit} bytes \
                 (raise it with --config-max-bytes or CONLINK_CONFIG_MAX_BYTES)"
            ),
        );
        return None;
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let (line, col) = line_col(e.as_bytes(), at);
            err(
                errs,
                idx,
                "",
                format!("invalid UTF-8 at byte {at} (line {line}, column {col})"),
            );
            return None;
        }
    };
    let json = path.extension().is_some_and(|e| e == "json");
    parse_text_limited(&text, json, opts.max_nodes)
        .map_err(|m| err(errs, idx, "", m))
        .ok()
}

/// 1-based line and column (in bytes) of byte offset `at`.
fn line_col(b: &[u8], at: usize) -> (usize, usize) {
    let before = &b[..at.min(b.len())];
    let line = before.iter().filter(|c| **c == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|c| *c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// Parses a document with the default node limit ([`crate::DEFAULT_MAX_NODES`]).
pub fn parse_text(text: &str, json: bool) -> Result<Value, String> {
    parse_text_limited(text, json, crate::DEFAULT_MAX_NODES)
}

/// Parses a document of at most `max_nodes` nodes. YAML goes through
/// serde-saphyr, which applies merge keys (also lists of aliases and chained
/// merges) and ignores compose's `!reset`/`!override` tags; duplicate keys
/// are an error. Booleans are YAML 1.2's `true`/`false` only, as in compose:
/// a service called `n` or `on` stays a string. JSON goes through
/// serde_json with a node counter (serde_json has no budget of its own).
pub fn parse_text_limited(text: &str, json: bool, max_nodes: usize) -> Result<Value, String> {
    if json {
        crate::limits::json_with_node_limit(text, max_nodes)
    } else {
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = max_nodes;
        // every node is one or two events (start and end)
        budget.max_events = max_nodes.saturating_mul(2).max(budget.max_events);
        let opts = serde_saphyr::options! { strict_booleans: true, budget: Some(budget) };
        serde_saphyr::from_str_with_options::<Value>(text, opts)
            .map_err(|e| crate::limits::yaml_message(&e, max_nodes))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The fragments of a compose file: top-level `x-network`, then each
/// service's `x-network` with `service:` defaulted to the service name.
fn compose_fragments(doc: Value, idx: usize, errs: &mut Vec<RawError>) -> Vec<Fragment> {
    let mut out = Vec::new();
    let mut root = match doc {
        // An empty compose file (mdc's base file is one) holds nothing.
        Value::Null => return out,
        Value::Object(m) => m,
        other => {
            err(
                errs,
                idx,
                "",
                format!("a compose file must be a map, not {}", type_name(&other)),
            );
            return out;
        }
    };
    if let Some(x) = root.remove("x-network") {
        if let Some(f) = fragment(x, idx, "/x-network", None, errs) {
            out.push(f);
        }
    }
    match root.remove("services") {
        None | Some(Value::Null) => {}
        Some(Value::Object(services)) => {
            for (name, svc) in services {
                let Value::Object(mut svc) = svc else {
                    continue; // not ours to judge: compose will complain
                };
                if let Some(x) = svc.remove("x-network") {
                    let ptr = format!("/services/{}/x-network", escape(&name));
                    if let Some(f) = fragment(x, idx, &ptr, Some(&name), errs) {
                        out.push(f);
                    }
                }
            }
        }
        Some(other) => err(
            errs,
            idx,
            "/services",
            format!("services must be a map, not {}", type_name(&other)),
        ),
    }
    out
}

/// A network file is one fragment (an empty file is an empty config).
fn network_fragments(doc: Value, idx: usize, errs: &mut Vec<RawError>) -> Vec<Fragment> {
    match doc {
        Value::Null => Vec::new(),
        v => fragment(v, idx, "", None, errs).into_iter().collect(),
    }
}

/// Checks a fragment is a map and gives links and commands inside a service
/// their default `service:`.
fn fragment(
    v: Value,
    idx: usize,
    ptr: &str,
    service: Option<&str>,
    errs: &mut Vec<RawError>,
) -> Option<Fragment> {
    match v {
        Value::Null => None,
        Value::Object(_) => {
            let mut tree = Tree::from_value(v, idx, ptr);
            if let Some(svc) = service {
                for key in ["links", "commands"] {
                    if let Some(Tree {
                        node: Node::Seq(items),
                        ..
                    }) = tree.get_mut(key)
                    {
                        for item in items {
                            default_service(item, svc);
                        }
                    }
                }
            }
            Some(Fragment {
                tree,
                service_internal: service.is_some(),
            })
        }
        other => {
            err(
                errs,
                idx,
                ptr,
                format!(
                    "network config must be a map (links, bridges, tunnels, commands), not {}",
                    type_name(&other)
                ),
            );
            None
        }
    }
}

fn default_service(item: &mut Tree, svc: &str) {
    let loc = item.loc.clone();
    if let Node::Map(m) = &mut item.node {
        if !m.iter().any(|(k, _)| k == "service" || k == "container") {
            m.push((
                "service".into(),
                Tree {
                    node: Node::Scalar(Value::String(svc.into())),
                    loc,
                },
            ));
        }
    }
}

/// Interpolates every string value (not keys) in place.
fn interpolate_tree(
    t: &mut Tree,
    key: Option<&str>,
    env: &HashMap<String, String>,
    errs: &mut Vec<RawError>,
) {
    match &mut t.node {
        Node::Scalar(Value::String(s)) => {
            if !s.contains('$') {
                return;
            }
            match interpolate(s, env) {
                Ok(new) => {
                    let numeric = key.is_some_and(|k| NUMERIC_KEYS.contains(&k));
                    t.node = match new.parse::<u64>() {
                        Ok(n) if numeric => Node::Scalar(Value::from(n)),
                        _ => Node::Scalar(Value::String(new)),
                    };
                }
                Err(e) => errs.push(RawError {
                    loc: t.loc.clone(),
                    message: e.0,
                }),
            }
        }
        Node::Scalar(_) => {}
        Node::Seq(items) => {
            for i in items {
                interpolate_tree(i, None, env, errs);
            }
        }
        Node::Map(m) => {
            for (k, v) in m {
                interpolate_tree(v, Some(k), env, errs);
            }
        }
    }
}

/// Identity of a link for merging: (is a service, service or container name, dev).
type LinkKey = (bool, String, String);

/// The merge key of a link, if it names exactly one target.
fn link_key(t: &Tree) -> Option<LinkKey> {
    let svc = t.get("service").and_then(Tree::as_str);
    let ctr = t.get("container").and_then(Tree::as_str);
    let dev = match t.get("dev") {
        None => "eth0".to_string(),
        Some(d) => d.as_str()?.to_string(),
    };
    match (svc, ctr, t.get("service"), t.get("container")) {
        (Some(s), None, _, None) => Some((true, s.to_string(), dev)),
        (None, Some(c), None, _) => Some((false, c.to_string(), dev)),
        _ => None,
    }
}

/// A list-valued key pulled out of a fragment, or an error if it is not a list.
fn take_list(f: &mut Tree, key: &str, errs: &mut Vec<RawError>) -> Vec<Tree> {
    let Node::Map(m) = &mut f.node else {
        return Vec::new();
    };
    let Some(pos) = m.iter().position(|(k, _)| k == key) else {
        return Vec::new();
    };
    let (_, v) = m.remove(pos);
    match v.node {
        Node::Seq(items) => items,
        Node::Scalar(Value::Null) => Vec::new(),
        other => {
            let shown = Tree {
                node: other,
                loc: v.loc.clone(),
            }
            .to_value();
            errs.push(RawError {
                loc: v.loc,
                message: format!("{key} must be a list, not {}", type_name(&shown)),
            });
            Vec::new()
        }
    }
}

/// Merges fragments in load order (spec §3). Links with the same
/// (service|container, dev) become one link, each definition merged over
/// the ones before it (later scalars win, lists concatenate): so a network
/// file, or a later compose file, overrides a link declared inside a
/// service, and a service's own `x-network` overrides its file's top-level
/// one. Bridges with the same name merge likewise. Tunnels and commands
/// concatenate.
pub(crate) fn merge(fragments: Vec<Fragment>, errs: &mut Vec<RawError>) -> Tree {
    let mut root = Tree::empty_map();
    // each link key's definitions, in load order; keys in order of first appearance
    type Defs = Vec<Tree>;
    let mut links: Vec<Defs> = Vec::new();
    let mut link_index: HashMap<LinkKey, usize> = HashMap::new();
    let mut bridges: Vec<Tree> = Vec::new();
    let mut bridge_index: HashMap<String, usize> = HashMap::new();
    let mut seen_links = false;
    let mut seen_bridges = false;
    for mut f in fragments {
        let has = |t: &Tree, k: &str| t.get(k).is_some();
        seen_links |= has(&f.tree, "links");
        seen_bridges |= has(&f.tree, "bridges");
        for l in take_list(&mut f.tree, "links", errs) {
            match link_key(&l) {
                Some(k) => match link_index.get(&k) {
                    Some(&i) => links[i].push(l),
                    None => {
                        link_index.insert(k, links.len());
                        links.push(vec![l]);
                    }
                },
                None => links.push(vec![l]),
            }
        }
        for b in take_list(&mut f.tree, "bridges", errs) {
            let name = b.get("bridge").and_then(Tree::as_str).map(str::to_string);
            match name.as_ref().and_then(|n| bridge_index.get(n)) {
                Some(&i) => bridges[i].merge(b),
                None => {
                    if let Some(n) = name {
                        bridge_index.insert(n, bridges.len());
                    }
                    bridges.push(b);
                }
            }
        }
        root.merge(f.tree);
    }
    let merged_links: Vec<Tree> = links
        .into_iter()
        .filter_map(|defs| {
            let mut it = defs.into_iter();
            let mut acc = it.next()?;
            for d in it {
                let loc = d.loc.clone();
                acc.merge(d);
                // the winning (last) definition names the link as a whole
                acc.loc = loc;
            }
            Some(acc)
        })
        .collect();
    if let Node::Map(m) = &mut root.node {
        let seq = |items: Vec<Tree>| Tree {
            node: Node::Seq(items),
            loc: Loc {
                file: None,
                ptr: String::new(),
            },
        };
        if seen_links {
            m.insert(0, ("links".into(), seq(merged_links)));
        }
        if seen_bridges {
            m.push(("bridges".into(), seq(bridges)));
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frag(v: Value, file: usize, ptr: &str, svc: Option<&str>) -> Fragment {
        let mut errs = Vec::new();
        let f = fragment(v, file, ptr, svc, &mut errs).unwrap();
        assert!(errs.is_empty());
        f
    }

    #[test]
    fn links_merge_in_load_order_so_a_network_file_overrides_a_service() {
        // issue 9 item 1: the network file is loaded after the compose file,
        // so its scalars win over the service's own definition
        let compose_top = frag(
            json!({"links": [{"service": "node", "bridge": "s0", "ip": "10.0.0.7/24", "mtu": 9000}]}),
            0,
            "/x-network",
            None,
        );
        let compose_svc = frag(
            json!({"links": [{"bridge": "s1", "ip": "10.0.0.1/24", "netem": "delay 1ms",
                              "route": ["default via 10.0.0.254"]}]}),
            0,
            "/services/node/x-network",
            Some("node"),
        );
        let netfile = frag(
            json!({"links": [{"service": "node", "ip": "10.0.0.9/24", "mtu": 1500,
                              "route": "10.9.0.0/16 via 10.0.0.9"}]}),
            1,
            "",
            None,
        );
        let mut errs = Vec::new();
        let m = merge(vec![compose_top, compose_svc, netfile], &mut errs);
        assert!(errs.is_empty());
        assert_eq!(
            m.to_value(),
            json!({"links": [{"service": "node", "bridge": "s1", "ip": "10.0.0.9/24",
                              "mtu": 1500, "netem": "delay 1ms",
                              "route": ["default via 10.0.0.254", "10.9.0.0/16 via 10.0.0.9"]}]})
        );
        // provenance: bridge from the compose service (over the top level),
        // ip and mtu from the network file
        assert_eq!(
            m.locate("/links/0/bridge"),
            Loc::new(0, "/services/node/x-network/links/0/bridge")
        );
        assert_eq!(m.locate("/links/0/mtu"), Loc::new(1, "/links/0/mtu"));
        assert_eq!(m.locate("/links/0/ip"), Loc::new(1, "/links/0/ip"));
    }

    #[test]
    fn links_with_other_dev_or_target_stay_separate() {
        let a = frag(
            json!({"links": [{"service": "n", "bridge": "s1"},
                             {"service": "n", "dev": "eth1", "bridge": "s2"},
                             {"container": "n", "bridge": "s3"},
                             {"service": "n", "dev": "eth0", "ip": "10.0.0.1/8"}]}),
            0,
            "",
            None,
        );
        let mut errs = Vec::new();
        let m = merge(vec![a], &mut errs);
        assert_eq!(
            m.to_value()["links"],
            json!([{"service": "n", "bridge": "s1", "dev": "eth0", "ip": "10.0.0.1/8"},
                   {"service": "n", "dev": "eth1", "bridge": "s2"},
                   {"container": "n", "bridge": "s3"}])
        );
    }

    #[test]
    fn later_top_level_scalar_wins_and_bridges_merge_by_name() {
        let a = frag(
            json!({"links": [{"container": "c", "bridge": "s1", "mtu": 1000}],
                   "bridges": [{"bridge": "s1", "mode": "linux"}],
                   "tunnels": [{"type": "vxlan", "bridge": "s1", "remote": "10.0.0.2", "vni": 1}]}),
            0,
            "",
            None,
        );
        let b = frag(
            json!({"links": [{"container": "c", "mtu": 2000}],
                   "bridges": [{"bridge": "s1", "mode": "patch"}, {"bridge": "s2"}],
                   "tunnels": [{"type": "vxlan", "bridge": "s1", "remote": "10.0.0.3", "vni": 2}]}),
            1,
            "",
            None,
        );
        let mut errs = Vec::new();
        let m = merge(vec![a, b], &mut errs).to_value();
        assert_eq!(m["links"][0]["mtu"], json!(2000));
        assert_eq!(
            m["bridges"],
            json!([{"bridge": "s1", "mode": "patch"}, {"bridge": "s2"}])
        );
        assert_eq!(m["tunnels"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn commands_under_a_service_default_to_it() {
        let a = frag(
            json!({"commands": [{"command": "ip a"}, {"container": "x", "command": ["true"]}]}),
            0,
            "/services/r/x-network",
            Some("r"),
        );
        let mut errs = Vec::new();
        let m = merge(vec![a], &mut errs).to_value();
        assert_eq!(
            m["commands"],
            json!([{"command": "ip a", "service": "r"}, {"container": "x", "command": ["true"]}])
        );
    }

    #[test]
    fn non_list_links_is_an_error() {
        let a = frag(json!({"links": {"service": "x"}}), 0, "", None);
        let mut errs = Vec::new();
        merge(vec![a], &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].loc, Loc::new(0, "/links"));
        assert_eq!(errs[0].message, "links must be a list, not a map");
    }

    fn yaml(s: &str) -> Value {
        parse_text(s, false).unwrap()
    }

    #[test]
    fn yaml_merge_keys_lists_of_aliases_and_chains() {
        let v = yaml(
            "x-a: &a {bridge: s1, mtu: 1500}\n\
             x-b: &b {netem: delay 1ms, mtu: 9000}\n\
             x-c: &c\n  <<: *a\n  ip: 10.0.0.1/24\n\
             list:\n  <<: [*a, *b]\n  dev: eth1\n\
             chain:\n  <<: *c\n  dev: eth2\n\
             override:\n  <<: *a\n  mtu: 1400\n",
        );
        // first alias in a merge list wins over later ones
        assert_eq!(
            v["list"],
            json!({"dev": "eth1", "bridge": "s1", "mtu": 1500, "netem": "delay 1ms"})
        );
        assert_eq!(
            v["chain"],
            json!({"dev": "eth2", "bridge": "s1", "mtu": 1500, "ip": "10.0.0.1/24"})
        );
        assert_eq!(v["override"]["mtu"], json!(1400));
        assert!(!v.to_string().contains("<<"));
    }

    #[test]
    fn yaml_compose_tags_are_tolerated() {
        let v = yaml(
            "services:\n  a:\n    image: !reset null\n    ports: !override ['80:80']\n    \
             environment: !reset []\n    x-network:\n      links: [{bridge: s1}]\n",
        );
        assert_eq!(v["services"]["a"]["ports"], json!(["80:80"]));
        assert_eq!(v["services"]["a"]["x-network"]["links"][0]["bridge"], "s1");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let v = yaml("a: n\nb: yes\nc: off\nd: true\ne: False\n");
        assert_eq!(
            v,
            json!({"a": "n", "b": "yes", "c": "off", "d": true, "e": false})
        );
    }

    #[test]
    fn yaml_anchors_and_aliases_in_lists() {
        let v = yaml("x-l: &l {bridge: s1}\nlinks: [*l, *l]\n");
        assert_eq!(v["links"], json!([{"bridge": "s1"}, {"bridge": "s1"}]));
    }

    #[test]
    fn yaml_errors_are_one_line() {
        let e = parse_text("a: [1, 2\nb: 3\n", false).unwrap_err();
        assert!(e.starts_with("invalid YAML: "), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_text("a: 1\na: 2\n", false).unwrap_err();
        assert!(e.contains("duplicate mapping key"), "{e}");
        let e = parse_text("{\"a\": }", true).unwrap_err();
        assert!(e.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn interpolated_numbers_become_numbers_for_numeric_keys() {
        let mut t = Tree::from_value(
            json!({"mtu": "${M}", "dev": "${M}", "vni": "${UNSET:-7}"}),
            0,
            "",
        );
        let env: HashMap<String, String> = [("M".to_string(), "1400".to_string())].into();
        let mut errs = Vec::new();
        interpolate_tree(&mut t, None, &env, &mut errs);
        assert_eq!(t.to_value(), json!({"mtu": 1400, "dev": "1400", "vni": 7}));
        let mut t = Tree::from_value(json!({"links": [{"ip": "${IP:?no ip}"}]}), 3, "");
        interpolate_tree(&mut t, None, &env, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].loc, Loc::new(3, "/links/0/ip"));
        assert_eq!(
            errs[0].message,
            "required variable IP is unset or empty: no ip"
        );
    }
}
