//! `conlink-start`: runs conlink against existing containers without
//! compose; see `conlink_tools::launch`.

use std::ffi::OsString;

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::launch::{shell_quote, Engine, Launch};

const USAGE: &str = "usage: conlink-start [OPTIONS] [-- CONLINK ARGS...]
Runs the conlink image (host pid, needed capabilities, engine socket and
config files mounted) against containers that already exist.
  -n, --network-file F   network config file (repeatable; colon lists allowed)
  -c, --compose-file F   compose file with x-network keys (repeatable)
  -e, --engine ENGINE    docker or podman (env CONLINK_ENGINE; default: the
                         first found in PATH, docker first)
  -i, --image IMAGE      image to run (env CONLINK_IMAGE; default conlink)
      --name NAME        container name (default conlink)
  -s, --socket PATH      engine API socket on this host (default: the engine's)
      --entry PROGRAM    program in the image (default /app/build/conlink.js)
  -d, --detach           run in the background
      --dry-run          print the command instead of running it";

fn main() {
    main_with("conlink-start", USAGE, run)
}

fn run() -> Result<(), Failure> {
    use lexopt::prelude::*;
    let usage = |e: conlink_tools::Error| Failure::Usage(e.to_string());
    let engine = match std::env::var("CONLINK_ENGINE") {
        Ok(e) if !e.is_empty() => e.parse().map_err(usage)?,
        _ => Engine::detect(),
    };
    let mut launch = Launch::new(engine);
    if let Ok(image) = std::env::var("CONLINK_IMAGE") {
        if !image.is_empty() {
            launch.image = image;
        }
    }
    let mut dry_run = false;
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Short('n') | Long("network-file") => launch.network_files.push(p.value()?.string()?),
            Short('c') | Long("compose-file") => launch.compose_files.push(p.value()?.string()?),
            Short('e') | Long("engine") => {
                launch.engine = p.value()?.string()?.parse().map_err(usage)?
            }
            Short('i') | Long("image") => launch.image = p.value()?.string()?,
            Long("name") => launch.name = p.value()?.string()?,
            Short('s') | Long("socket") => launch.socket = Some(p.value()?.into()),
            Long("entry") => launch.entry = p.value()?.string()?,
            Short('d') | Long("detach") => launch.detach = true,
            Long("dry-run") => dry_run = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Value(v) => {
                launch.conlink_args.push(v);
                launch.conlink_args.extend(p.raw_args()?);
                break;
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let argv: Vec<OsString> = launch.argv().map_err(|e| match e {
        conlink_tools::Error::Invalid(m) => Failure::Usage(m),
        other => other.into(),
    })?;
    if dry_run {
        let words: Vec<String> = argv
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect();
        println!("{}", words.join(" "));
        return Ok(());
    }
    Err(exec("conlink-start", &argv))
}
