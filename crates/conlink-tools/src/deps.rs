//! Dependency resolution for mdc modes (spec §10), also exposed as the
//! `resolve-deps` command.
//!
//! A [`Graph`] is loaded from one or more sources: directories (each
//! subdirectory is a node, its `deps` file its dependencies) or JSON files
//! mapping node → list of deps (`-` reads JSON from stdin). [`Graph::resolve`]
//! picks the smallest set of nodes that satisfies the hard and OR
//! dependencies of the requested start nodes and orders it.
//!
//! Choices made where the spec is silent:
//! * "Chosen OR" edges for ordering: an OR is inclusive, so *every*
//!   alternative that ends up in the result is ordered before the node that
//!   wrote the OR (this is what makes `e c d` end with `e` in the worked
//!   example).
//! * Missing nodes: before searching, every node that could be part of the
//!   result (reachable from the start nodes through hard and OR deps) must
//!   only name existing nodes, in any kind of dependency (`+name` included);
//!   otherwise the result is an error naming the node and who asked for it.
//! * In JSON sources a name that only appears as a dependency is a node
//!   without deps (the worked examples of §10 never define `a`); directory
//!   sources have no such rule.
//! * Output order: a depth-first walk from the start nodes in the order
//!   written, visiting each node's dependencies in the order written, emitting
//!   a node after its dependencies.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One dependency as written in a `deps` file or a JSON source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dep {
    /// `name` / `"name"`: the node must be in the result, before this one.
    Hard(String),
    /// `a|b|c` / `["a","b","c"]` / `{"or": [...]}`: at least one must be in
    /// the result; those in it come before this node.
    Or(Vec<String>),
    /// `+name` / `{"after": "name"}`: does not pull `name` in, but if it is in
    /// the result it comes before this node.
    After(String),
}

/// A node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name (the directory name, or the JSON key).
    pub name: String,
    /// The node's directory for directory sources, the JSON file (or `-`)
    /// otherwise.
    pub path: PathBuf,
    /// Its dependencies, in the order written.
    pub deps: Vec<Dep>,
    /// Human-readable origin used in error messages (the `deps` file or JSON
    /// source).
    pub origin: String,
}

/// A dependency graph built from one or more sources.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    /// Names used as dependencies in JSON sources, with the first source
    /// naming them: such a name is a node (without deps) unless defined.
    mentioned: Vec<(String, String)>,
    /// Work limit of the smallest-set search; `None`: [`SEARCH_LIMIT`].
    search_limit: Option<u64>,
}

/// Output format of a resolution (the `--format` of `resolve-deps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Space-separated names on one line.
    Nodes,
    /// `name=path`, one per line.
    Paths,
    /// A JSON array of `{"node", "path", "dep-str", "deps"}` objects, one
    /// per resolved node in order (the original's shape).
    Json,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nodes" => Ok(Format::Nodes),
            "paths" => Ok(Format::Paths),
            "json" => Ok(Format::Json),
            other => Err(Error::Invalid(format!(
                "unknown output format {other:?} (expected nodes, paths or json)"
            ))),
        }
    }
}

/// Characters that separate or mark tokens and therefore cannot be part of a
/// node name that is referenced.
fn check_name(name: &str, source_name: &str, context: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('+')
        || name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '|' | '#'));
    if bad {
        return Err(Error::DepsSyntax {
            source_name: source_name.to_string(),
            message: format!("{context}: invalid node name {name:?}"),
        });
    }
    Ok(())
}

/// Parses the text of a `deps` file (or the start nodes given on a command
/// line): `#` starts a comment, tokens are separated by whitespace or commas,
/// `a|b` is an OR, `+a` an order-only dependency.
pub fn parse_deps_text(text: &str, source_name: &str) -> Result<Vec<Dep>> {
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = match line.find('#') {
            Some(i) => &line[..i],
            None => line,
        };
        for token in line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
        {
            let context = format!("token {token:?}");
            if let Some(rest) = token.strip_prefix('+') {
                check_name(rest, source_name, &context)?;
                deps.push(Dep::After(rest.to_string()));
            } else if token.contains('|') {
                let alts: Vec<String> = token.split('|').map(str::to_string).collect();
                for alt in &alts {
                    check_name(alt, source_name, &context)?;
                }
                deps.push(Dep::Or(alts));
            } else {
                check_name(token, source_name, &context)?;
                deps.push(Dep::Hard(token.to_string()));
            }
        }
    }
    Ok(deps)
}

/// Parses a JSON source: an object mapping node → list of deps, where a
/// dep is a string (hard), a list of strings (OR), `{"or": [...]}` or
/// `{"after": "name"}`. `null` means no deps.
pub fn parse_json_source(text: &str, source_name: &str) -> Result<Vec<(String, Vec<Dep>)>> {
    let syntax = |message: String| Error::DepsSyntax {
        source_name: source_name.to_string(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| syntax(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(syntax(
            "top level must be an object mapping node -> list of deps".into(),
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (node, deps) in map {
        let items = match deps {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(items) => items,
            other => {
                return Err(syntax(format!(
                    "node {node:?}: deps must be a list, not {other}"
                )))
            }
        };
        let mut parsed = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let context = format!("node {node:?} dep #{i}");
            parsed.push(json_dep(item, source_name, &context)?);
        }
        out.push((node, parsed));
    }
    Ok(out)
}

/// Converts one JSON dependency item.
fn json_dep(item: &serde_json::Value, source_name: &str, context: &str) -> Result<Dep> {
    use serde_json::Value;
    let syntax = |message: String| Error::DepsSyntax {
        source_name: source_name.to_string(),
        message: format!("{context}: {message}"),
    };
    let or_list = |list: &Vec<Value>| -> Result<Dep> {
        if list.is_empty() {
            return Err(syntax("an OR needs at least one alternative".into()));
        }
        let mut alts = Vec::with_capacity(list.len());
        for alt in list {
            let Value::String(s) = alt else {
                return Err(syntax(format!(
                    "OR alternatives must be strings, not {alt}"
                )));
            };
            check_name(s, source_name, context)?;
            alts.push(s.clone());
        }
        Ok(Dep::Or(alts))
    };
    match item {
        Value::String(s) => {
            check_name(s, source_name, context)?;
            Ok(Dep::Hard(s.clone()))
        }
        Value::Array(list) => or_list(list),
        Value::Object(obj) if obj.len() == 1 => match obj.iter().next() {
            Some((k, Value::Array(list))) if k == "or" => or_list(list),
            Some((k, Value::String(s))) if k == "after" => {
                check_name(s, source_name, context)?;
                Ok(Dep::After(s.clone()))
            }
            _ => Err(syntax(format!(
                "expected {{\"or\": [names]}} or {{\"after\": name}}, got {item}"
            ))),
        },
        other => Err(syntax(format!(
            "a dep is a string, a list of strings, {{\"or\": [...]}} or {{\"after\": name}}, not {other}"
        ))),
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the work limit of the smallest-set search (default
    /// [`SEARCH_LIMIT`]); mostly for tests of the limit itself.
    pub fn set_search_limit(&mut self, limit: u64) {
        self.search_limit = Some(limit);
    }

    /// Loads every source of a colon- or comma-separated list: a directory,
    /// a JSON file, or `-` (JSON read from `stdin`).
    pub fn load(sources: &str, stdin: &mut dyn Read) -> Result<Self> {
        let mut graph = Graph::new();
        let list: Vec<&str> = sources
            .split([':', ','])
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Err(Error::Invalid("no dependency source given".into()));
        }
        for source in list {
            graph.load_source(source, stdin)?;
        }
        Ok(graph)
    }

    /// Loads one source (see [`Graph::load`]).
    pub fn load_source(&mut self, source: &str, stdin: &mut dyn Read) -> Result<()> {
        if source == "-" {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(|e| Error::io("read", "<stdin>", e))?;
            return self.add_json(&text, "-");
        }
        let path = Path::new(source);
        let meta = fs::metadata(path).map_err(|e| Error::io("read dependency source", path, e))?;
        if meta.is_dir() {
            self.add_dir(path)
        } else {
            let text = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
            self.add_json(&text, source)
        }
    }

    /// Adds the nodes of a directory source: each subdirectory not starting
    /// with `.` is a node; its `deps` file, if any, lists its dependencies.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Follows symlinks: a linked mode directory is a mode too.
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            names.push(name);
        }
        // read_dir order is arbitrary; sort for reproducible errors and output.
        names.sort();
        for name in names {
            let node_dir = dir.join(&name);
            let deps_file = node_dir.join("deps");
            let (deps, origin) = match fs::read_to_string(&deps_file) {
                Ok(text) => {
                    let origin = deps_file.display().to_string();
                    (parse_deps_text(&text, &origin)?, origin)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    (Vec::new(), node_dir.display().to_string())
                }
                Err(e) => return Err(Error::io("read", deps_file, e)),
            };
            self.add_node(Node {
                name,
                path: node_dir,
                deps,
                origin,
            })?;
        }
        Ok(())
    }

    /// Adds the nodes of a JSON source; `source_name` is its path (or `-`).
    pub fn add_json(&mut self, text: &str, source_name: &str) -> Result<()> {
        for (name, deps) in parse_json_source(text, source_name)? {
            for dep in &deps {
                let names: &[String] = match dep {
                    Dep::Hard(n) | Dep::After(n) => std::slice::from_ref(n),
                    Dep::Or(alts) => alts,
                };
                for n in names {
                    self.mentioned.push((n.clone(), source_name.to_string()));
                }
            }
            self.add_node(Node {
                name,
                path: PathBuf::from(source_name),
                deps,
                origin: source_name.to_string(),
            })?;
        }
        Ok(())
    }

    /// Adds one node; a node already defined elsewhere is an error.
    pub fn add_node(&mut self, node: Node) -> Result<()> {
        if let Some(&i) = self.index.get(&node.name) {
            return Err(Error::DuplicateNode {
                node: node.name,
                first: self.nodes[i].origin.clone(),
                second: node.origin,
            });
        }
        self.index.insert(node.name.clone(), self.nodes.len());
        self.nodes.push(node);
        Ok(())
    }

    /// The node called `name`, if defined.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// All nodes, in the order they were added.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Resolves `start` (parsed like a `deps` file, e.g. with
    /// [`parse_deps_text`]) into an ordered list of nodes: the smallest set
    /// satisfying all hard and OR dependencies (ties: an acyclic set over
    /// one with a cycle, else the first found, trying OR alternatives in
    /// the order written), ordered so that each node
    /// follows its hard, OR and order-only dependencies within the set.
    pub fn resolve(&self, start: &[Dep]) -> Result<Vec<Node>> {
        let implicit = self
            .mentioned
            .iter()
            .any(|(n, _)| !self.index.contains_key(n));
        if implicit {
            // In JSON sources a name that is only mentioned as a dependency
            // is a node without deps (the worked examples of spec §10 never
            // define `a`). Directory sources have no such rule.
            let mut graph = self.clone();
            for (name, source) in &self.mentioned {
                if !graph.index.contains_key(name) {
                    graph.add_node(Node {
                        name: name.clone(),
                        path: PathBuf::from(source),
                        deps: Vec::new(),
                        origin: source.clone(),
                    })?;
                }
            }
            graph.mentioned.clear();
            return graph.resolve(start);
        }
        let (start, table) = self.validate(start)?;
        let set = smallest_set(
            &start,
            &table,
            &self.nodes,
            self.search_limit.unwrap_or(SEARCH_LIMIT),
        )?;
        let order = order(&start, &table, &set, &self.nodes)?;
        Ok(order.into_iter().map(|i| self.nodes[i].clone()).collect())
    }

    /// Checks every reference made by the start deps and by nodes reachable
    /// through hard and OR deps. Returns the start deps and the deps of every
    /// reachable node as indices (unreachable nodes get no deps: they can
    /// never be chosen).
    fn validate(&self, start: &[Dep]) -> Result<(Vec<IDep>, Vec<Vec<IDep>>)> {
        let lookup = |name: &str, by: &str| -> Result<usize> {
            self.index
                .get(name)
                .copied()
                .ok_or_else(|| Error::MissingNode {
                    node: name.to_string(),
                    required_by: by.to_string(),
                })
        };
        let convert = |deps: &[Dep], by: &str, strict_after: bool| -> Result<Vec<IDep>> {
            let mut out = Vec::with_capacity(deps.len());
            for dep in deps {
                match dep {
                    Dep::Hard(n) => out.push(IDep::Hard(lookup(n, by)?)),
                    Dep::Or(alts) => {
                        let mut ids = Vec::with_capacity(alts.len());
                        for a in alts {
                            ids.push(lookup(a, by)?);
                        }
                        out.push(IDep::Or(ids));
                    }
                    Dep::After(n) => match lookup(n, by) {
                        Ok(i) => out.push(IDep::After(i)),
                        Err(e) if strict_after => return Err(e),
                        // `+name` among the start nodes would order something
                        // before the virtual start node, which is never output.
                        Err(_) => {}
                    },
                }
            }
            Ok(out)
        };
        let start = convert(start, "the start nodes", false)?;
        if !start.iter().any(|d| !matches!(d, IDep::After(_))) {
            return Err(Error::Invalid("no start node given".into()));
        }
        let mut table: Vec<Vec<IDep>> = vec![Vec::new(); self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut queue: VecDeque<usize> = VecDeque::new();
        let enqueue = |deps: &[IDep], seen: &mut [bool], queue: &mut VecDeque<usize>| {
            for d in deps {
                for &i in d.pulls() {
                    if !seen[i] {
                        seen[i] = true;
                        queue.push_back(i);
                    }
                }
            }
        };
        enqueue(&start, &mut seen, &mut queue);
        while let Some(i) = queue.pop_front() {
            let node = &self.nodes[i];
            let by = format!("{:?} in {}", node.name, node.origin);
            let deps = convert(&node.deps, &by, true)?;
            enqueue(&deps, &mut seen, &mut queue);
            table[i] = deps;
        }
        Ok((start, table))
    }
}

/// A dependency with node names replaced by indices into `Graph::nodes`.
#[derive(Debug, Clone)]
enum IDep {
    Hard(usize),
    Or(Vec<usize>),
    After(usize),
}

impl IDep {
    /// The nodes this dependency may pull into the result.
    fn pulls(&self) -> &[usize] {
        match self {
            IDep::Hard(i) => std::slice::from_ref(i),
            IDep::Or(ids) => ids,
            IDep::After(_) => &[],
        }
    }
}

/// How much work [`smallest_set`] may do (steps of the search, each
/// weighted by the ORs it looks at) before giving up with
/// [`Error::SearchLimit`]. Finding the smallest set is a hitting-set
/// problem (NP-hard); real mode graphs take a few hundred steps, 3,000
/// independent ORs about 5 million, and this bounds a pathological graph
/// to a few seconds instead of a hang.
pub const SEARCH_LIMIT: u64 = 20_000_000;

/// The search state: the chosen nodes, the OR dependencies met (a queue:
/// `ors[head..]` are still to check) and an undo trail, so the depth-first
/// search backtracks without copying the state (it used to clone it at
/// every level: gigabytes at 3,000 ORs).
struct State<'a> {
    in_set: Vec<bool>,
    count: usize,
    ors: Vec<&'a [usize]>,
    head: usize,
    trail: Vec<usize>,
    /// `taken` marks for [`State::lower_bound`]: `taken[i] == stamp` means
    /// taken in the current call (no clearing between calls).
    taken: Vec<u32>,
    stamp: u32,
}

/// Where to roll a [`State`] back to.
#[derive(Clone, Copy)]
struct Mark {
    ors: usize,
    head: usize,
    trail: usize,
}

impl<'a> State<'a> {
    /// Adds `node` and, breadth first, its hard closure; queues the ORs met.
    fn add(&mut self, node: usize, table: &'a [Vec<IDep>]) {
        let mut queue = VecDeque::from([node]);
        while let Some(n) = queue.pop_front() {
            if self.in_set[n] {
                continue;
            }
            self.in_set[n] = true;
            self.trail.push(n);
            self.count += 1;
            for dep in &table[n] {
                match dep {
                    IDep::Hard(h) => queue.push_back(*h),
                    IDep::Or(alts) => self.ors.push(alts),
                    IDep::After(_) => {}
                }
            }
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            ors: self.ors.len(),
            head: self.head,
            trail: self.trail.len(),
        }
    }

    fn undo(&mut self, m: Mark) {
        for n in self.trail.drain(m.trail..) {
            self.in_set[n] = false;
            self.count -= 1;
        }
        self.ors.truncate(m.ors);
        self.head = m.head;
    }

    /// Skips the ORs at the head that the set already satisfies.
    fn skip_satisfied(&mut self) {
        while self
            .ors
            .get(self.head)
            .is_some_and(|alts| alts.iter().any(|&a| self.in_set[a]))
        {
            self.head += 1;
        }
    }

    /// How many more nodes any completion must add at least: a greedy
    /// packing of unsatisfied ORs with pairwise disjoint alternatives (each
    /// needs a distinct new node). Linear in the queued ORs.
    fn lower_bound(&mut self) -> usize {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.taken.iter_mut().for_each(|t| *t = 0);
            self.stamp = 1;
        }
        let mut bound = 0;
        for alts in &self.ors[self.head..] {
            if alts
                .iter()
                .any(|&a| self.in_set[a] || self.taken[a] == self.stamp)
            {
                continue;
            }
            for &a in alts.iter() {
                self.taken[a] = self.stamp;
            }
            bound += 1;
        }
        bound
    }
}

/// The best set found so far and whether ordering it meets a cycle.
struct Best {
    in_set: Vec<bool>,
    count: usize,
    cyclic: bool,
}

/// Finds the smallest set satisfying the hard and OR deps of `start`:
/// an iterative depth-first branch and bound over the OR alternatives, in
/// the order written. A later solution replaces the best if it is strictly
/// smaller, or as small and acyclic where the best has a cycle (so
/// `a: [b|c], b: [a]` gives `{a, c}`, not the cycle through `b`). Gives up
/// with [`Error::SearchLimit`] after `limit` work units.
fn smallest_set(
    start: &[IDep],
    table: &[Vec<IDep>],
    nodes: &[Node],
    limit: u64,
) -> Result<Vec<bool>> {
    let n = nodes.len();
    let mut st = State {
        in_set: vec![false; n],
        count: 0,
        ors: Vec::new(),
        head: 0,
        trail: Vec::new(),
        taken: vec![0; n],
        stamp: 0,
    };
    for dep in start {
        match dep {
            IDep::Hard(i) => st.add(*i, table),
            IDep::Or(alts) => st.ors.push(alts),
            IDep::After(_) => {}
        }
    }
    // One frame per OR being branched on: its alternatives, the next one
    // to try, and the state to roll back to before trying it.
    let mut frames: Vec<(&[usize], usize, Mark)> = Vec::new();
    let mut best: Option<Best> = None;
    let mut work: u64 = 0;
    loop {
        st.skip_satisfied();
        work += 1;
        if work > limit {
            return Err(Error::SearchLimit {
                limit,
                best: best.map(|b| b.count),
            });
        }
        // No bound is needed before the first solution (nothing to prune
        // against); after it, the bound's cost counts as work too.
        let pruned = match best.as_ref() {
            None => false,
            Some(b) => {
                work += (st.ors.len() - st.head) as u64;
                let bound = st.count + st.lower_bound();
                // While the best has a cycle, an equally small set is still
                // worth finding (it may be acyclic).
                bound > b.count || (bound == b.count && !b.cyclic)
            }
        };
        if !pruned {
            if st.head == st.ors.len() {
                let cyclic = order(start, table, &st.in_set, nodes).is_err();
                let better = best.as_ref().is_none_or(|b| {
                    st.count < b.count || (st.count == b.count && b.cyclic && !cyclic)
                });
                if better {
                    best = Some(Best {
                        in_set: st.in_set.clone(),
                        count: st.count,
                        cyclic,
                    });
                }
            } else {
                let alts = st.ors[st.head];
                st.head += 1;
                frames.push((alts, 0, st.mark()));
            }
        }
        // Next alternative of the innermost open OR, backtracking as needed.
        loop {
            let Some((alts, next, mark)) = frames.last_mut() else {
                // Every OR has at least one alternative (the parsers reject
                // empty ORs) and all exist (checked by `validate`), so the
                // first descent always records a solution.
                return Ok(best.map(|b| b.in_set).unwrap_or_else(|| vec![false; n]));
            };
            let mark = *mark;
            st.undo(mark);
            if let Some(&a) = alts.get(*next) {
                *next += 1;
                st.add(a, table);
                break;
            }
            frames.pop();
        }
    }
}

/// Orders the chosen set: depth-first from the start deps, dependencies
/// (hard, OR alternatives and `+after` targets that are in the set) before
/// the node, in the order written. A node met again while still open is a
/// cycle. Iterative (an explicit stack): a 60,000-node chain used to
/// overflow the thread's stack.
fn order(start: &[IDep], table: &[Vec<IDep>], set: &[bool], nodes: &[Node]) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let edges = |deps: &[IDep]| -> Vec<usize> {
        let mut v = Vec::new();
        for d in deps {
            match d {
                IDep::Hard(i) => v.push(*i),
                IDep::Or(alts) => v.extend(alts.iter().copied().filter(|&a| set[a])),
                IDep::After(i) if set[*i] => v.push(*i),
                IDep::After(_) => {}
            }
        }
        v
    };
    let mut marks = vec![Mark::New; nodes.len()];
    let mut out = Vec::new();
    // The open path: each node with its edges and the next edge to follow.
    let mut path: Vec<(usize, Vec<usize>, usize)> = Vec::new();
    for root in edges(start) {
        let mut pending = Some(root);
        loop {
            if let Some(n) = pending.take() {
                match marks[n] {
                    Mark::Done => {}
                    Mark::Open => {
                        let from = path.iter().position(|(p, _, _)| *p == n).unwrap_or(0);
                        let mut cycle: Vec<String> = path[from..]
                            .iter()
                            .map(|(p, _, _)| nodes[*p].name.clone())
                            .collect();
                        cycle.push(nodes[n].name.clone());
                        return Err(Error::Cycle { path: cycle });
                    }
                    Mark::New => {
                        marks[n] = Mark::Open;
                        path.push((n, edges(&table[n]), 0));
                    }
                }
            }
            let Some((n, es, next)) = path.last_mut() else {
                break;
            };
            if let Some(&m) = es.get(*next) {
                *next += 1;
                pending = Some(m);
            } else {
                let n = *n;
                path.pop();
                marks[n] = Mark::Done;
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Formats a resolution in one of the output formats (with a trailing
/// newline).
pub fn format(nodes: &[Node], format: Format) -> String {
    match format {
        Format::Nodes => {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            format!("{}\n", names.join(" "))
        }
        Format::Paths => nodes
            .iter()
            .map(|n| format!("{}={}\n", n.name, n.path.display()))
            .collect(),
        Format::Json => {
            // Written by hand to keep the keys in the original's order
            // (serde_json's map would sort them).
            let items: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let deps: Vec<serde_json::Value> = n.deps.iter().map(dep_json).collect();
                    format!(
                        "{{\"node\":{},\"path\":{},\"dep-str\":{},\"deps\":{}}}",
                        serde_json::Value::from(n.name.as_str()),
                        serde_json::Value::from(n.path.display().to_string()),
                        serde_json::Value::from(dep_str(&n.deps)),
                        serde_json::Value::Array(deps),
                    )
                })
                .collect();
            format!("[{}]\n", items.join(","))
        }
    }
}

/// The deps of a node in `deps` file syntax, normalised: tokens separated by
/// one space, comments dropped (`b|c +d`); the `dep-str` of `--format json`.
pub fn dep_str(deps: &[Dep]) -> String {
    let tokens: Vec<String> = deps
        .iter()
        .map(|d| match d {
            Dep::Hard(n) => n.clone(),
            Dep::Or(alts) => alts.join("|"),
            Dep::After(n) => format!("+{n}"),
        })
        .collect();
    tokens.join(" ")
}

/// One dep in the JSON source syntax of spec §10 (so that `deps` can be fed
/// back as a JSON source): `"name"`, `{"or": [...]}`, `{"after": "name"}`.
pub fn dep_json(dep: &Dep) -> serde_json::Value {
    match dep {
        Dep::Hard(n) => n.as_str().into(),
        Dep::Or(alts) => serde_json::json!({ "or": alts }),
        Dep::After(n) => serde_json::json!({ "after": n }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKED: &str = r#"{"b":["a"],"c":["a","b"],"d":["a"],"e":["a",{"or":["d","c"]}]}"#;

    fn graph(json: &str) -> Graph {
        let mut g = Graph::new();
        g.add_json(json, "test.json").unwrap();
        g
    }

    fn resolve(g: &Graph, start: &str) -> Result<String> {
        let start = parse_deps_text(start, "start")?;
        let nodes = g.resolve(&start)?;
        Ok(nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(" "))
    }

    #[test]
    fn worked_example_e() {
        assert_eq!(resolve(&graph(WORKED), "e").unwrap(), "a d e");
    }

    #[test]
    fn worked_example_e_c() {
        assert_eq!(resolve(&graph(WORKED), "e c").unwrap(), "a b c e");
    }

    #[test]
    fn worked_example_e_c_d() {
        let out = resolve(&graph(WORKED), "e c d").unwrap();
        let names: Vec<&str> = out.split(' ').collect();
        assert_eq!(names.len(), 5, "{out}");
        assert_eq!(names[0], "a");
        assert_eq!(names[4], "e");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c", "d", "e"]);
        // b before c (c needs b).
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("b") < pos("c"), "{out}");
        assert_eq!(out, "a d b c e");
    }

    #[test]
    fn worked_example_after() {
        let g = graph(
            r#"{"b":["a",{"after":"d"}],"c":["a","b"],"d":["a"],"e":["a",{"or":["d","c"]}]}"#,
        );
        assert_eq!(resolve(&g, "b").unwrap(), "a b");
        assert_eq!(resolve(&g, "b d").unwrap(), "a d b");
    }

    #[test]
    fn or_prefers_fewest_nodes_not_first_written() {
        // c costs two nodes (c, x), d costs one.
        let g = graph(r#"{"c":["x"],"d":[],"x":[],"e":[["c","d"]]}"#);
        assert_eq!(resolve(&g, "e").unwrap(), "d e");
    }

    #[test]
    fn or_tie_takes_first_written() {
        let g = graph(r#"{"p":[],"q":[],"e":[["q","p"]]}"#);
        assert_eq!(resolve(&g, "e").unwrap(), "q e");
        let g = graph(r#"{"p":[],"q":[],"e":[["p","q"]]}"#);
        assert_eq!(resolve(&g, "e").unwrap(), "p e");
    }

    #[test]
    fn or_already_satisfied_by_hard_dep_adds_nothing() {
        // The OR comes first but `y` is pulled in anyway by the hard dep.
        let g = graph(r#"{"x":[],"y":[],"e":[["x","y"],"y"]}"#);
        assert_eq!(resolve(&g, "e").unwrap(), "y e");
    }

    #[test]
    fn shared_choice_across_ors_is_minimal() {
        // Picking `b` satisfies both ORs with one node; greedy first choice
        // (a, then c) would need two.
        let g = graph(r#"{"a":[],"b":[],"c":[],"m":[["a","b"]],"n":[["c","b"]]}"#);
        assert_eq!(resolve(&g, "m n").unwrap(), "b m n");
    }

    #[test]
    fn many_independent_ors_resolve_fast() {
        // 60 nodes each with a two-way OR over private leaves: 2^60 leaves
        // without pruning.
        let mut obj = serde_json::Map::new();
        let mut start = String::new();
        for i in 0..60 {
            obj.insert(format!("a{i}"), serde_json::json!([]));
            obj.insert(format!("b{i}"), serde_json::json!([]));
            obj.insert(
                format!("n{i}"),
                serde_json::json!([[format!("a{i}"), format!("b{i}")]]),
            );
            start.push_str(&format!("n{i} "));
        }
        let g = graph(&serde_json::Value::Object(obj).to_string());
        let t = std::time::Instant::now();
        let out = resolve(&g, &start).unwrap();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(out.split(' ').count(), 120);
        assert!(out.starts_with("a0 n0 a1 n1"), "{out}");
    }

    #[test]
    fn overlapping_ors_still_find_the_minimum() {
        // Greedy (first alternatives) gives {x1, x2, x3}; `s` covers all
        // three ORs but costs two nodes (s + its dep t): 2 < 3.
        let g = graph(
            r#"{"x1":[],"x2":[],"x3":[],"t":[],"s":["t"],
                "p":[["x1","s"]],"q":[["x2","s"]],"r":[["x3","s"]]}"#,
        );
        assert_eq!(resolve(&g, "p q r").unwrap(), "t s p q r");
    }

    #[test]
    fn or_on_the_command_line() {
        let g = graph(r#"{"a":["z"],"b":[],"z":[]}"#);
        assert_eq!(resolve(&g, "a|b").unwrap(), "b");
        assert_eq!(resolve(&g, "z,a|b").unwrap(), "z a");
    }

    #[test]
    fn order_only_does_not_pull_in() {
        let g = graph(r#"{"a":[{"after":"z"}],"z":[]}"#);
        assert_eq!(resolve(&g, "a").unwrap(), "a");
        assert_eq!(resolve(&g, "a z").unwrap(), "z a");
        assert_eq!(resolve(&g, "z a").unwrap(), "z a");
    }

    #[test]
    fn json_mentioned_names_are_leaf_nodes() {
        let g = graph(r#"{"b":["a"]}"#);
        let nodes = g.resolve(&parse_deps_text("b", "t").unwrap()).unwrap();
        assert_eq!(nodes[0].name, "a");
        assert_eq!(nodes[0].path, PathBuf::from("test.json"));
    }

    #[test]
    fn deps_file_syntax() {
        let deps = parse_deps_text(
            "# leading comment\na b,c  # trailing\n\n x|y|z,+w\t+v # c|d\n",
            "deps",
        )
        .unwrap();
        assert_eq!(
            deps,
            vec![
                Dep::Hard("a".into()),
                Dep::Hard("b".into()),
                Dep::Hard("c".into()),
                Dep::Or(vec!["x".into(), "y".into(), "z".into()]),
                Dep::After("w".into()),
                Dep::After("v".into()),
            ]
        );
    }

    #[test]
    fn deps_file_bad_tokens() {
        for bad in ["a||b", "|a", "a|", "+", "+a|b", "++a", "a|+b"] {
            let err = parse_deps_text(bad, "modes/x/deps")
                .unwrap_err()
                .to_string();
            assert!(err.contains("modes/x/deps"), "{bad}: {err}");
            assert!(err.contains("invalid node name"), "{bad}: {err}");
        }
    }

    #[test]
    fn json_forms() {
        let parsed = parse_json_source(
            r#"{"n":["a",["b","c"],{"or":["d"]},{"after":"e"}],"m":null}"#,
            "j",
        )
        .unwrap();
        let n = parsed.iter().find(|(k, _)| k == "n").unwrap();
        assert_eq!(
            n.1,
            vec![
                Dep::Hard("a".into()),
                Dep::Or(vec!["b".into(), "c".into()]),
                Dep::Or(vec!["d".into()]),
                Dep::After("e".into()),
            ]
        );
        assert!(parsed.iter().any(|(k, d)| k == "m" && d.is_empty()));
    }

    #[test]
    fn json_errors_name_the_problem() {
        let cases = [
            ("[1]", "top level must be an object"),
            (r#"{"a":"b"}"#, "deps must be a list"),
            (r#"{"a":[1]}"#, "a dep is a string"),
            (r#"{"a":[[]]}"#, "at least one alternative"),
            (r#"{"a":[{"or":[1]}]}"#, "must be strings"),
            (r#"{"a":[{"before":"x"}]}"#, "expected {\"or\""),
            (r#"{"a":["x|y"]}"#, "invalid node name"),
            ("{", "invalid JSON"),
        ];
        for (text, want) in cases {
            let err = parse_json_source(text, "src.json").unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("src.json"), "{text}: {err}");
        }
    }

    #[test]
    fn long_chain_does_not_overflow_the_stack() {
        // n0 -> n1 -> ... -> n59999: the recursive ordering overflowed.
        let mut obj = serde_json::Map::new();
        for i in 0..60_000 {
            obj.insert(format!("n{i}"), serde_json::json!([format!("n{}", i + 1)]));
        }
        obj.insert("n60000".into(), serde_json::json!([]));
        let g = graph(&serde_json::Value::Object(obj).to_string());
        let out = resolve(&g, "n0").unwrap();
        let names: Vec<&str> = out.split(' ').collect();
        assert_eq!(names.len(), 60_001);
        assert_eq!(names[0], "n60000");
        assert_eq!(names[60_000], "n0");
    }

    #[test]
    fn thousands_of_independent_ors_are_linear() {
        // 3,000 independent two-way ORs: cloned state per level (gigabytes)
        // and a quadratic bound per step (minutes) before.
        let mut obj = serde_json::Map::new();
        let mut start = String::new();
        for i in 0..3000 {
            obj.insert(
                format!("n{i}"),
                serde_json::json!([[format!("a{i}"), format!("b{i}")]]),
            );
            start.push_str(&format!("n{i} "));
        }
        let g = graph(&serde_json::Value::Object(obj).to_string());
        let t = std::time::Instant::now();
        let out = resolve(&g, &start).unwrap();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(out.split(' ').count(), 6000);
        assert!(out.starts_with("a0 n0 a1 n1"), "{out}");
    }

    #[test]
    fn path_of_ors_is_bounded_not_a_hang() {
        // n_i: [a_i|b_i], a_i and b_i both need n_{i+1}: every choice ties,
        // and no bound can prune them; 2^1000 leaves. The search gives up
        // with a clear error at its limit instead of running for ever.
        let mut obj = serde_json::Map::new();
        for i in 0..1000 {
            let next = format!("n{}", i + 1);
            obj.insert(
                format!("n{i}"),
                serde_json::json!([[format!("a{i}"), format!("b{i}")]]),
            );
            obj.insert(format!("a{i}"), serde_json::json!([next]));
            obj.insert(format!("b{i}"), serde_json::json!([next]));
        }
        let mut g = graph(&serde_json::Value::Object(obj).to_string());
        // A lower limit than the default keeps the debug-build test quick;
        // `resolve-deps` stops at the default limit in under a second.
        g.set_search_limit(500_000);
        let t = std::time::Instant::now();
        let err = resolve(&g, "n0").unwrap_err().to_string();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        assert!(err.contains("search limit of 500000 steps"), "{err}");
        assert!(
            err.contains("best set found so far has 2001 nodes"),
            "{err}"
        );
        // A short path resolves.
        assert_eq!(resolve(&g, "n998").unwrap(), "n1000 a999 n999 a998 n998");
    }

    #[test]
    fn search_limit_is_an_error_not_a_hang() {
        let mut g = graph(r#"{"e":[["p","q"]],"p":[],"q":[]}"#);
        g.set_search_limit(1);
        let err = resolve(&g, "e").unwrap_err();
        assert!(matches!(err, Error::SearchLimit { limit: 1, .. }), "{err}");
    }

    #[test]
    fn tie_prefers_the_acyclic_set() {
        // {a, b} and {a, c} are both two nodes; only {a, c} has no cycle.
        let g = graph(r#"{"a":[["b","c"]],"b":["a"],"c":[]}"#);
        assert_eq!(resolve(&g, "a").unwrap(), "c a");
        // With no acyclic answer, the cycle is still reported.
        let g = graph(r#"{"a":[["b","c"]],"b":["a"],"c":["a"]}"#);
        let err = resolve(&g, "a").unwrap_err().to_string();
        assert!(err.contains("a -> b -> a"), "{err}");
    }

    #[test]
    fn cycle_is_an_error() {
        let g = graph(r#"{"a":["b"],"b":["c"],"c":["a"]}"#);
        let err = resolve(&g, "a").unwrap_err().to_string();
        assert!(err.contains("contains a cycle"), "{err}");
        assert!(err.contains("a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn cycle_through_order_only_dep_is_an_error() {
        let g = graph(r#"{"a":[{"after":"b"}],"b":["a"]}"#);
        assert_eq!(resolve(&g, "a").unwrap(), "a");
        let err = resolve(&g, "b").unwrap_err().to_string();
        assert!(err.contains("contains a cycle"), "{err}");
    }

    #[test]
    fn cycle_outside_the_chosen_set_is_fine() {
        // x and y form a cycle but the cheaper alternative z avoids them.
        let g = graph(r#"{"x":["y"],"y":["x"],"z":[],"e":[["x","z"]]}"#);
        assert_eq!(resolve(&g, "e").unwrap(), "z e");
    }

    #[test]
    fn missing_start_node() {
        let err = resolve(&graph(WORKED), "e nope").unwrap_err();
        assert!(
            matches!(&err, Error::MissingNode { node, .. } if node == "nope"),
            "{err}"
        );
    }

    #[test]
    fn missing_dependency_in_directory_source() {
        let dir = TempDir::new("missing");
        std::fs::create_dir_all(dir.0.join("a")).unwrap();
        std::fs::write(dir.0.join("a/deps"), "ghost\n").unwrap();
        let mut g = Graph::new();
        g.add_dir(&dir.0).unwrap();
        let err = resolve(&g, "a").unwrap_err().to_string();
        assert!(err.contains("\"ghost\" does not exist"), "{err}");
        assert!(err.contains("a/deps"), "{err}");
    }

    #[test]
    fn duplicate_node_across_sources() {
        let dir = TempDir::new("dup");
        std::fs::create_dir_all(dir.0.join("a")).unwrap();
        let json = dir.0.join("more.json");
        std::fs::write(&json, r#"{"a":[]}"#).unwrap();
        let sources = format!("{}:{}", dir.0.display(), json.display());
        let err = Graph::load(&sources, &mut std::io::empty()).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateNode { node, .. } if node == "a"),
            "{err}"
        );
        assert!(err.to_string().contains("more.json"), "{err}");
    }

    #[test]
    fn directory_and_stdin_sources() {
        let dir = TempDir::new("dirs");
        for (name, deps) in [
            ("base", ""),
            ("web", "base # needs base\n+db"),
            (".hidden", ""),
        ] {
            std::fs::create_dir_all(dir.0.join(name)).unwrap();
            if !deps.is_empty() {
                std::fs::write(dir.0.join(name).join("deps"), deps).unwrap();
            }
        }
        std::fs::write(dir.0.join("not-a-node"), "").unwrap();
        let sources = format!("{},-", dir.0.display());
        let mut stdin: &[u8] = br#"{"db":["base"]}"#;
        let g = Graph::load(&sources, &mut stdin).unwrap();
        let mut names: Vec<&str> = g.nodes().iter().map(|n| n.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["base", "db", "web"]);
        assert_eq!(resolve(&g, "web").unwrap(), "base web");
        let nodes = g.resolve(&parse_deps_text("web db", "t").unwrap()).unwrap();
        let out = format(&nodes, Format::Paths);
        let d = dir.0.display();
        assert_eq!(out, format!("base={d}/base\ndb=-\nweb={d}/web\n"));
        assert_eq!(
            format(&nodes, Format::Nodes),
            "base db web\n",
            "paths: {out}"
        );
        let text = format(&nodes, Format::Json);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json[1]["node"], "db");
        assert_eq!(json[1]["path"], "-");
        assert_eq!(json[1]["dep-str"], "base");
        assert_eq!(json[1]["deps"], serde_json::json!(["base"]));
        assert!(text.starts_with(r#"[{"node":"base","path":"#), "{text}");
    }

    #[test]
    fn json_deps_round_trip() {
        let deps = parse_deps_text("a b|c # x\n+d, e", "t").unwrap();
        assert_eq!(dep_str(&deps), "a b|c +d e");
        let json: Vec<serde_json::Value> = deps.iter().map(dep_json).collect();
        assert_eq!(
            serde_json::Value::Array(json.clone()),
            serde_json::json!(["a", {"or": ["b", "c"]}, {"after": "d"}, "e"])
        );
        // The "deps" of the output read back as a JSON source give the same deps.
        let source = serde_json::json!({ "n": json }).to_string();
        assert_eq!(
            parse_json_source(&source, "t").unwrap(),
            [("n".to_string(), deps)]
        );
    }

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "conlink-deps-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
