//! conlink: declarative layer 2 and layer 3 links for docker compose
//! containers (spec §1). Parsing lives in `cli`; this file only dispatches.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = if cli.show_config {
        show_config(&cli)
    } else {
        eprintln!("conlink: daemon not implemented yet");
        return ExitCode::from(1);
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conlink: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr (stdout carries `--show-config` JSON). `RUST_LOG`
/// overrides the level chosen by `--verbose`.
fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `--show-config`: load, validate and enrich, print the result as JSON.
/// A config error prints every problem (one per line) and fails.
fn show_config(cli: &Cli) -> anyhow::Result<()> {
    let cfg = conlink_config::load(&cli.load_options()).map_err(|errs| {
        anyhow::anyhow!(
            "invalid configuration ({} error{}):\n{errs}",
            errs.0.len(),
            if errs.0.len() == 1 { "" } else { "s" }
        )
    })?;
    // One write: stdout is line-buffered, and a large config has many lines.
    let mut json = serde_json::to_string_pretty(&cfg).context("serialize config")?;
    json.push('\n');
    std::io::stdout()
        .lock()
        .write_all(json.as_bytes())
        .context("write config")?;
    Ok(())
}
