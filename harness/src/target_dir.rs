//! The cargo target directory of the running test or program.

use std::path::{Path, PathBuf};

/// `CARGO_TARGET_DIR` when it is absolute, else the nearest ancestor of
/// the executable that cargo marked with a `CACHEDIR.TAG`.
pub(crate) fn target_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).filter(|d| d.is_absolute()) {
        return Some(d);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().skip(1).find(|d| d.join("CACHEDIR.TAG").is_file()).map(Path::to_path_buf)
}
