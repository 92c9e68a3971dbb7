//! A small config library, the kind of code probity is for: its promises
//! are about what it does to the system, and its tests (`tests/`) prove
//! them with `#[probity::traced_test]`.
//!
//! - [`save`] writes a config atomically: a reader sees the old file or the
//!   new one, never half of one. That takes a temporary file in the same
//!   directory, `fsync`, then `rename` over the old file.
//! - [`summary`] is pure: no files, no network.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let config = confsave::Config { name: "demo".into(), retries: 3, endpoints: vec![] };
//! confsave::save(dir.path(), &config).unwrap();
//! assert_eq!(confsave::load(dir.path()).unwrap(), config);
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name a config is saved under.
pub const FILE_NAME: &str = "confsave.json";

/// An application's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// A display name.
    pub name: String,
    /// How often to retry.
    pub retries: u32,
    /// Where to send reports.
    pub endpoints: Vec<String>,
}

/// Where [`save`] writes in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Saves `config` in `dir` atomically: to a temporary file, synced, then
/// renamed over the old one.
pub fn save(dir: &Path, config: &Config) -> io::Result<()> {
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    // One buffer, one write: serializing straight into the file would
    // make a syscall per token (the snapshot test caught exactly that).
    let mut text = serde_json::to_vec_pretty(config)?;
    text.push(b'\n');
    let mut file = File::create(&tmp)?;
    let written = file.write_all(&text).and_then(|()| file.sync_all());
    drop(file);
    let saved = written.and_then(|()| std::fs::rename(&tmp, path_in(dir)));
    if saved.is_err() {
        // A failed save leaves the directory as it found it: the old
        // config, and no temporary file (the fault-injection tests check).
        let _ = std::fs::remove_file(&tmp);
    }
    saved
}

/// Reads the config saved in `dir`.
pub fn load(dir: &Path) -> io::Result<Config> {
    let text = std::fs::read_to_string(path_in(dir))?;
    serde_json::from_str(&text).map_err(io::Error::other)
}

/// A one-line description of `config`, for logs. Touches nothing.
pub fn summary(config: &Config) -> String {
    format!("{} ({} retries, {} endpoints)", config.name, config.retries, config.endpoints.len())
}
