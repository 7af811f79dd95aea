//! `echo [-n] [ARGS…]`: prints its arguments separated by spaces, then a
//! newline (none with `-n`). For scratch images that have no shell.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let newline = args.first().is_none_or(|a| a != "-n");
    if !newline {
        args.remove(0);
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        // Bytes, not UTF-8: arguments are printed exactly as given.
        out.extend_from_slice(a.as_bytes());
    }
    if newline {
        out.push(b'\n');
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}
