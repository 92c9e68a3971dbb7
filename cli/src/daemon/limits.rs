//! The daemon's limits: defaults, a TOML file read at start and on
//! SIGHUP, and flags over both.

use std::path::Path;

use anyhow::Context;
use probity::daemon::Limits;
use serde::Deserialize;

/// The file's keys; anything else is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    sessions_per_user: Option<u32>,
    queue_mib: Option<usize>,
}

/// The limits `path` sets over the defaults (the defaults alone without one).
pub fn read(path: Option<&Path>) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    let Some(path) = path else { return Ok(limits) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the limits file {}", path.display()))?;
    let f: File = toml::from_str(&text)
        .with_context(|| format!("bad limits file {} (allowed keys: sessions_per_user, queue_mib)", path.display()))?;
    apply_flags(&mut limits, f.sessions_per_user, f.queue_mib);
    Ok(limits)
}

/// Sets what was given.
pub fn apply_flags(limits: &mut Limits, sessions_per_user: Option<u32>, queue_mib: Option<usize>) {
    if let Some(n) = sessions_per_user {
        limits.sessions_per_user = n;
    }
    if let Some(m) = queue_mib {
        // At most 1 TiB: more would wrap, and no machine queues that much.
        limits.queue_bytes = m.clamp(1, 1 << 20) << 20;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_limits_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("limits.toml");
        std::fs::write(&p, "sessions_per_user = 3\nqueue_mib = 2\n").unwrap();
        let l = read(Some(&p)).unwrap();
        assert_eq!((l.sessions_per_user, l.queue_bytes), (3, 2 << 20));
        std::fs::write(&p, "sessions = 3\n").unwrap();
        let e = format!("{:#}", read(Some(&p)).unwrap_err());
        assert!(e.contains("allowed keys: sessions_per_user, queue_mib") && e.contains("line 1"), "{e}");
        assert!(format!("{:#}", read(Some(&dir.path().join("none"))).unwrap_err()).contains("cannot read"));
    }
}
