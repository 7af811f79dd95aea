//! `resolve-deps [-p SOURCES] [-f FORMAT] NODE…`: resolves nodes with their
//! dependencies (spec §10) and prints them in dependency order.

use conlink_tools::cli::{main_with, Failure};
use conlink_tools::deps::{self, Format, Graph};

const USAGE: &str = "usage: resolve-deps [-p|--path SOURCES] [-f|--format nodes|paths|json] NODE...
  SOURCES: directories and/or JSON files, colon or comma separated; '-' is
           JSON on stdin (default: env RESOLVE_DEPS_PATH, else .)
  FORMAT:  default: env RESOLVE_DEPS_FORMAT, else nodes; json prints
           [{\"node\",\"path\",\"dep-str\",\"deps\"}, ...]
  NODE:    start nodes; 'a|b' (one of) and commas allowed as in deps files";

fn main() {
    main_with("resolve-deps", USAGE, run)
}

fn run() -> Result<(), Failure> {
    use lexopt::prelude::*;
    // The environment gives the defaults (as the original reads them); an
    // empty variable counts as unset.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut sources = env("RESOLVE_DEPS_PATH").unwrap_or_else(|| ".".into());
    let mut format = match env("RESOLVE_DEPS_FORMAT") {
        Some(f) => f.parse().map_err(|e: conlink_tools::Error| {
            Failure::Usage(format!("RESOLVE_DEPS_FORMAT: {e}"))
        })?,
        None => Format::Nodes,
    };
    let mut start = String::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('p') | Long("path") => sources = parser.value()?.string()?,
            Short('f') | Long("format") => {
                format = parser
                    .value()?
                    .string()?
                    .parse()
                    .map_err(|e: conlink_tools::Error| Failure::Usage(e.to_string()))?
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Value(v) => {
                start.push_str(&v.string()?);
                start.push('\n');
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let start = deps::parse_deps_text(&start, "the command line")?;
    if start.is_empty() {
        return Err(Failure::Usage("no start node given".into()));
    }
    let graph = Graph::load(&sources, &mut std::io::stdin().lock())?;
    let resolved = graph.resolve(&start)?;
    print!("{}", deps::format(&resolved, format));
    Ok(())
}
