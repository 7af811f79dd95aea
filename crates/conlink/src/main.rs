mod daemon;
mod plan;
fn main() {}
