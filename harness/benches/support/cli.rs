//! Where the benches find the `probity` binary, which is the CLI crate's
//! (`cli/`) and so not built for this one's benches: `cargo xtask bench`
//! builds it and names it in `PROBITY_BIN`; under a bare `cargo bench` it
//! is the release build beside the bench's own executable.

use std::path::PathBuf;

use anyhow::{ensure, Context};

/// The `probity` binary to measure.
pub fn probity_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("PROBITY_BIN") {
        Some(p) => PathBuf::from(p),
        // A bench runs as target/release/deps/NAME-HASH.
        None => std::env::current_exe()
            .context("failed to find this bench's executable")?
            .parent()
            .and_then(|deps| deps.parent())
            .context("the bench runs from a target directory")?
            .join("probity"),
    };
    ensure!(
        path.is_file(),
        "the probity binary {} is missing: run `cargo xtask bench`, or `cargo build --release -p probity-cli` first",
        path.display()
    );
    Ok(path)
}
