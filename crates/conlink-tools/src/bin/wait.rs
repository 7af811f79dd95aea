//! `wait [OPTIONS] [-- CMD ARGS…]`: see `conlink_tools::wait`.

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::dns::Resolver;
use conlink_tools::wait::{parse_args_with_env, wait_all, USAGE};

fn main() {
    main_with("wait", USAGE, run)
}

fn run() -> Result<(), Failure> {
    let wait_sleep = std::env::var("WAIT_SLEEP").ok();
    let args = parse_args_with_env(std::env::args_os().skip(1), wait_sleep.as_deref())?;
    if args.help {
        println!("{USAGE}");
        return Ok(());
    }
    if std::process::id() == 1 {
        exit_on_termination_signals();
    }
    if let Some(mask) = args.umask {
        // SAFETY: umask(2) cannot fail; the mask is checked to be <= 0o777.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    wait_all(&args, &Resolver::system())?;
    if args.command.is_empty() {
        return Ok(());
    }
    Err(exec("wait", &args.command))
}

/// As a container's PID 1, signals whose default action is to terminate
/// are ignored by the kernel unless a handler is installed: `docker stop`
/// would then hang for its whole timeout while we wait. Exit at once
/// instead (128 + signal, as a shell reports it). `exec` resets caught
/// signals to their defaults, so the final command is unaffected.
fn exit_on_termination_signals() {
    extern "C" fn on_signal(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installs an async-signal-safe handler; nothing else in
        // this program uses these signals.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}
