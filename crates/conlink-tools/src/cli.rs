//! Shared command-line plumbing of the tool binaries: usage errors (exit
//! 2), error chains (exit 1) and exec'ing the final command.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// How a tool run ends when it does not exec.
#[derive(Debug)]
pub enum Failure {
    /// Malformed command line: message, then usage, exit status 2.
    Usage(String),
    /// Runtime error: the whole error chain, exit status 1.
    Error(anyhow::Error),
    /// The message has been printed already; exit with this status.
    Exit(i32),
}

impl From<lexopt::Error> for Failure {
    fn from(e: lexopt::Error) -> Self {
        Failure::Usage(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Failure::Error(e.into())
    }
}

/// Runs a tool's body and exits: 0 on success, 2 on usage errors (message
/// plus `usage` on stderr), 1 on other errors (`tool: error: chain`).
pub fn main_with(tool: &str, usage: &str, body: impl FnOnce() -> Result<(), Failure>) -> ! {
    let code = match body() {
        Ok(()) => 0,
        Err(Failure::Usage(msg)) => {
            eprintln!("{tool}: {msg}\n{usage}");
            2
        }
        Err(Failure::Error(e)) => {
            eprintln!("{tool}: error: {e:#}");
            1
        }
        Err(Failure::Exit(code)) => code,
    };
    // Flush explicitly: `process::exit` skips destructors.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Replaces the process with `argv` (searched in `PATH`). Only returns on
/// failure: prints why and gives the shell's statuses (127 not found, 126
/// not executable).
pub fn exec(tool: &str, argv: &[OsString]) -> Failure {
    let Some((cmd, args)) = argv.split_first() else {
        return Failure::Usage("no command to run".into());
    };
    let _ = std::io::stdout().flush();
    let err = Command::new(cmd).args(args).exec();
    eprintln!("{tool}: cannot run {:?}: {err}", cmd.to_string_lossy());
    Failure::Exit(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}
