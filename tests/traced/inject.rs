//! Fault injection in traced functions: the rule applies to what the
//! function does, not to the start-up of the child that runs it.

use std::path::PathBuf;

use probity::{traced_test, traced_with, Tracer};

/// The first `openat` of the function fails (the child's start-up opened
/// files before it: those were neither counted nor failed); the second
/// runs.
#[traced_test]
fn a_rule_counts_from_the_function_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "a").unwrap();
    let tracer = Tracer::new().with_inject("openat:error=EACCES:when=1".parse().unwrap());
    let run = traced_with(tracer, dir.path().to_path_buf(), |dir: PathBuf| {
        let first = std::fs::read_to_string(dir.join("a")).map_err(|e| e.kind().to_string());
        let second = std::fs::read_to_string(dir.join("a")).map_err(|e| e.kind().to_string());
        (first, second)
    });
    assert_eq!(run.value, (Err("permission denied".to_string()), Ok("a".to_string())));
    let injected: Vec<_> = run.trace.syscalls().injected().collect();
    assert_eq!(injected.len(), 1, "{}", crate::dump(&run.trace));
    assert_eq!(injected[0].1.path(), Some(dir.path().join("a").as_path()));
    // The second open ran, and the kernel tracer saw it.
    run.trace.syscalls().named("openat").path(dir.path().join("a")).ok().assert_exactly(1);
}
