//! `conlink-start`: runs conlink against existing containers without
//! compose; see `conlink_tools::launch`.

use std::ffi::OsString;

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::launch::{parse_start_args, shell_quote, StartEnv, USAGE};

fn main() {
    main_with("conlink-start", USAGE, run)
}

fn run() -> Result<(), Failure> {
    let args = parse_start_args(std::env::args_os().skip(1), &StartEnv::from_process())?;
    if args.help {
        println!("{USAGE}");
        return Ok(());
    }
    let argv: Vec<OsString> = args.launch.argv().map_err(|e| match e {
        conlink_tools::Error::Invalid(m) => Failure::Usage(m),
        other => other.into(),
    })?;
    let words: Vec<String> = argv
        .iter()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect();
    if args.dry_run {
        println!("{}", words.join(" "));
        return Ok(());
    }
    if args.launch.verbose {
        eprintln!("conlink-start: running: {}", words.join(" "));
    }
    Err(exec("conlink-start", &argv))
}
