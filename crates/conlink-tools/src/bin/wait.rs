//! `wait [OPTIONS] [-- CMD ARGS…]`: see `conlink_tools::wait`.

use conlink_tools::cli::{exec, main_with, Failure};
use conlink_tools::dns::Resolver;
use conlink_tools::wait::{parse_args, wait_all, USAGE};

fn main() {
    main_with("wait", USAGE, run)
}

fn run() -> Result<(), Failure> {
    let args = parse_args(std::env::args_os().skip(1))?;
    if args.help {
        println!("{USAGE}");
        return Ok(());
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
