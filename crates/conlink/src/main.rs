mod plan;
fn main() {}
