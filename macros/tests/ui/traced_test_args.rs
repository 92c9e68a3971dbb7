use probity_macros::traced_test;

#[traced_test]
fn takes_an_argument(dir: &str) {}

fn main() {}
