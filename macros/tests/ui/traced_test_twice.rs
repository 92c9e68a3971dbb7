use probity_macros::traced_test;

#[traced_test]
#[test]
fn already_a_test() {}

#[traced_test]
async fn asynchronous() {}

fn main() {}
