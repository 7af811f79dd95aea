//! `mdc MODES [COMPOSE ARGS…]`: modular compose; see `conlink_tools::mdc`.

use std::ffi::OsString;

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::mdc::{compose_argv, run as mdc_run, Settings};

const USAGE: &str = "usage: mdc MODES [COMPOSE ARGS...]
Resolves MODES (comma separated) with their dependencies from MODES_DIR,
writes ENV_FILE, ./.compose-empty.yaml and MDC_FILES_DIR, then, if ARGS are
given, runs: DOCKER_COMPOSE --env-file ENV_FILE ARGS...
Environment: MODES_DIR (./modes), ENV_FILE (.env), MDC_FILES_DIR (./.files),
             DOCKER_COMPOSE (docker compose)";

fn main() {
    main_with("mdc", USAGE, run)
}

fn run() -> Result<(), Failure> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((modes, rest)) = args.split_first() else {
        return Err(Failure::Usage("MODES is required".into()));
    };
    if modes == "-h" || modes == "--help" {
        println!("{USAGE}");
        return Ok(());
    }
    let modes = modes
        .to_str()
        .ok_or_else(|| Failure::Usage("MODES is not valid UTF-8".into()))?;
    if modes.starts_with('-') {
        return Err(Failure::Usage(format!("unknown option {modes:?}")));
    }
    let command_line = std::iter::once("mdc".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let settings = Settings::from_env();
    let outcome = mdc_run(&settings, modes, &command_line)?;
    for name in &outcome.empty_modes {
        eprintln!(
            "mdc: warning: mode {name:?} has no directory in {}; using it as an empty mode",
            settings.modes_dir
        );
    }
    let names: Vec<&str> = outcome.modes.iter().map(|m| m.name.as_str()).collect();
    eprintln!(
        "mdc: modes {}; wrote {} and {} ({} files)",
        names.join(" "),
        settings.env_file.display(),
        settings.files_dir.display(),
        outcome.files
    );
    if rest.is_empty() {
        return Ok(());
    }
    if settings.compose_cmd.is_empty() {
        return Err(Failure::Usage("DOCKER_COMPOSE is blank".into()));
    }
    Err(exec("mdc", &compose_argv(&settings, rest)))
}
