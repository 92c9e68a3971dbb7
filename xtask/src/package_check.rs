//! `package-check`: probity installs from a registry. Packages the
//! published crates (probity-common, probity-macros, probity-preload,
//! probity, probity-cli) with cargo's verify build, offline, then builds a fresh crate
//! (`xtask/package-check/`) against the packaged crates alone, served by
//! a directory registry with the workspace's vendored dependencies, and
//! runs its traced test for real.
//!
//! Everything lives in `target/package-check/`: `home/` is the cargo home
//! whose config replaces crates.io by `vendor/`; `target/` is kept between
//! runs (dependencies compile once), minus the probity crates, which a
//! registry build would otherwise take as unchanged. `bench-tests
//! --user-crate` prepares the same fresh crate with [`prepare`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::sh;

/// The published crates, in dependency order.
const CRATES: [&str; 5] = ["probity-common", "probity-macros", "probity-preload", "probity", "probity-cli"];

/// A fresh crate, copied from `xtask/package-check/`, that depends on the
/// packaged probity alone, with the cargo home and target directory its
/// commands run with.
pub struct Fresh {
    cargo: std::ffi::OsString,
    /// The fresh crate's directory.
    pub dir: PathBuf,
    home: PathBuf,
    target: PathBuf,
}

impl Fresh {
    /// A cargo command run in the fresh crate, offline, with the cargo home
    /// whose registry is the packaged crates and the default profiles.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.dir)
            .env("CARGO_HOME", &self.home)
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS");
        cmd
    }
}

pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let fresh = prepare()?;
    sh(fresh.cargo().args(["test", "--offline", "--quiet"]))?;

    // What loading costs the fresh crate's debug test binary: a process
    // running one traced test of `sort`, most of which is the first load.
    let binary = test_binary(&fresh, "traced")?;
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            sh(Command::new(&binary)
                .args(["--exact", "sort_runs_alone_and_offline", "-q"])
                .stdout(std::process::Stdio::null()))
            .map(|()| t.elapsed())
        })
        .collect::<anyhow::Result<_>>()?;
    times.sort();
    println!(
        "package-check: passed in {:.0?}; a test process of the fresh crate (load + one traced test): median {:.0?}, fastest {:.0?}",
        started.elapsed(),
        times[2],
        times[0],
    );
    Ok(())
}

/// Packages the published crates into a directory registry under
/// `target/package-check/` and copies the fresh crate there, ready to
/// build against them.
pub fn prepare() -> anyhow::Result<Fresh> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = crate::root();
    let work = root.join("target/package-check");
    let (home, vendor, fresh, target) =
        (work.join("home"), work.join("vendor"), work.join("fresh"), work.join("target"));
    for dir in [&home, &vendor, &fresh] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("failed to remove {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(&home)?;

    // The dependencies as the lock file has them, from cargo's cache.
    sh(Command::new(&cargo)
        .current_dir(&root)
        .args(["vendor", "--offline", "--locked", "--quiet"])
        .arg(&vendor)
        .stdout(std::process::Stdio::null()))?;
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"packaged\"\n\n[source.packaged]\ndirectory = {:?}\n\n[net]\noffline = true\n",
            vendor.display().to_string()
        ),
    )?;
    let in_home = |cmd: &mut Command| -> anyhow::Result<()> {
        cmd.env("CARGO_HOME", &home).env("CARGO_TARGET_DIR", &target).env_remove("RUSTFLAGS");
        sh(cmd)
    };

    // Registry packages count as unchanged while their version is: drop
    // what an earlier run built of probity's.
    if target.exists() {
        let mut clean = Command::new(&cargo);
        clean.current_dir(&root).args(["clean", "--offline", "--quiet"]);
        for name in CRATES {
            clean.args(["-p", name]);
        }
        in_home(&mut clean)?;
    }

    // In dependency order, each added to the registry once verified: the
    // verify build of the next resolves it there, as from crates.io.
    let version = env!("CARGO_PKG_VERSION");
    for stage in [&CRATES[..2], &CRATES[2..3], &CRATES[3..4], &CRATES[4..]] {
        println!("package-check: packaging and verifying {}", stage.join(", "));
        let mut package = Command::new(&cargo);
        package.current_dir(&root).args([
            "package",
            "--offline",
            "--locked",
            "--allow-dirty",
            "--registry",
            "crates-io",
        ]);
        for name in stage {
            package.args(["-p", name]);
        }
        in_home(&mut package)?;
        for name in stage {
            let file = target.join("package").join(format!("{name}-{version}.crate"));
            unpack(&file, &vendor)
                .with_context(|| format!("failed to add {} to the directory registry", file.display()))?;
        }
    }

    println!("package-check: a fresh crate against the packaged crates");
    copy_dir(&root.join("xtask/package-check"), &fresh)?;
    Ok(Fresh { cargo, dir: fresh, home, target })
}

/// Unpacks a `.crate` into the directory registry `vendor`, with the
/// checksum file a directory source wants (no per-file sums: the
/// package's own is enough here).
fn unpack(file: &Path, vendor: &Path) -> anyhow::Result<()> {
    sh(Command::new("tar").arg("-xzf").arg(file).arg("-C").arg(vendor))?;
    let sum = Command::new("sha256sum").arg(file).output()?;
    anyhow::ensure!(sum.status.success(), "sha256sum failed on {}", file.display());
    let sum = String::from_utf8(sum.stdout)?;
    let sum = sum.split_whitespace().next().context("sha256sum printed nothing")?;
    let dir = vendor.join(file.file_stem().context("a .crate has a name")?);
    std::fs::write(dir.join(".cargo-checksum.json"), format!("{{\"files\":{{}},\"package\":\"{sum}\"}}"))?;
    Ok(())
}

/// The executable of the fresh crate's test target `name`, built.
pub fn test_binary(fresh: &Fresh, name: &str) -> anyhow::Result<PathBuf> {
    let out = fresh
        .cargo()
        .args(["test", "--offline", "--no-run", "--message-format=json", "--quiet", "--test", name])
        .output()
        .context("failed to run cargo test --no-run")?;
    anyhow::ensure!(out.status.success(), "cargo test --no-run failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v["target"]["name"] == name)
        .and_then(|v| v["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("no test executable for tests/{name}.rs"))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
