//! `copy [-T|--template] SRC_DIR DST_DIR [-- CMD ARGS…]`: copies SRC_DIR
//! over DST_DIR (see `conlink_tools::tree`), then runs CMD in its place.

use std::ffi::OsString;
use std::path::PathBuf;

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::tree::{copy_tree, env_lookup, Lookup};

const USAGE: &str = "usage: copy [-T|--template] SRC_DIR DST_DIR [--] [CMD ARGS...]
Copies SRC_DIR recursively over DST_DIR (creating directories, keeping
permissions, removing nothing), then runs CMD in its place.
  -T, --template   replace {{NAME}} in text files with env variable NAME if set";

fn main() {
    main_with("copy", USAGE, run)
}

fn run() -> Result<(), Failure> {
    use lexopt::prelude::*;
    let mut template = false;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut command: Vec<OsString> = Vec::new();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Short('T') | Long("template") => template = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Value(v) if dirs.len() < 2 => {
                dirs.push(v.into());
                if dirs.len() == 2 {
                    command.extend(p.raw_args()?);
                    // `copy SRC DST -- CMD`: the separator is not part of CMD.
                    if command.first().is_some_and(|a| a == "--") {
                        command.remove(0);
                    }
                    break;
                }
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [src, dst] = <[PathBuf; 2]>::try_from(dirs)
        .map_err(|_| Failure::Usage("SRC_DIR and DST_DIR are required".into()))?;
    let lookup: Lookup = &env_lookup;
    let stats = copy_tree(&src, &dst, template.then_some(lookup))?;
    eprintln!(
        "copy: {} -> {}: {} files ({} templated), {} directories, {} links",
        src.display(),
        dst.display(),
        stats.files,
        stats.templated,
        stats.dirs,
        stats.symlinks
    );
    if command.is_empty() {
        return Ok(());
    }
    Err(exec("copy", &command))
}
