use probity_macros::hook;

#[hook]
fn getenv(name: *const u8) -> *mut u8 {}

fn main() {}
