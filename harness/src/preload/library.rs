//! The preload library, embedded at build time (see `harness/build.rs`) and
//! written out once per version to a file the dynamic loader can open.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::Error;

static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libprobity_preload.so"));

/// The path of the extracted library, writing it on first use.
pub fn path() -> Result<PathBuf, Error> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| extract().map_err(|e| e.to_string()))
        .clone()
        .map_err(|what| Error::Preload { what, source: std::io::Error::other("see above") })
}

fn extract() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    // Named by content, so concurrent test binaries of one build share it
    // and different builds never overwrite each other's.
    let dir = std::env::temp_dir();
    let path = dir.join(format!("libprobity_preload-{}.so", env!("PROBITY_PRELOAD_HASH")));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == LIBRARY.len() as u64) {
        return Ok(path);
    }
    let tmp = dir.join(format!("libprobity_preload-{}.{}.tmp", env!("PROBITY_PRELOAD_HASH"), std::process::id()));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| std::io::Error::new(e.kind(), format!("failed to write the preload library to {}: {e}", tmp.display())))?;
    f.write_all(LIBRARY)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
    drop(f);
    // Atomic: a reader sees the whole file or none.
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
