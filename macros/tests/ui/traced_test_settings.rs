use probity_macros::traced_test;

#[traced_test(retries = 3)]
fn unknown_setting() {}

#[traced_test(timeout = "soon")]
fn bad_duration() {}

fn main() {}
