//! Draws a `--show-config` JSON file: `render FORMAT < config.json`
//! (what `conlink graph` does once the CLI is wired; handy for fixtures).

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let format = match args.get(1).map(|s| s.parse::<conlink_graph::Format>()) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            eprintln!("render: {e}");
            std::process::exit(2);
        }
        None => {
            eprintln!("usage: render dot|mermaid|svg|html < config.json");
            std::process::exit(2);
        }
    };
    let mut json = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut json) {
        eprintln!("render: read stdin: {e}");
        std::process::exit(1);
    }
    match conlink_graph::render_json(&json, format) {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("render: parse config: {e}");
            std::process::exit(1);
        }
    }
}
