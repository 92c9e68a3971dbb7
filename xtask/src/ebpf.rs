//! Building the eBPF object, and checking the committed one.
//!
//! The object is built with nightly Rust and bpf-linker (see `setup
//! --ebpf`), with paths remapped so that the bytes do not depend on where
//! the checkout or the cargo home are.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{root, sh};

pub fn committed_object() -> PathBuf {
    root().join("harness/ebpf/probity.bpf.o")
}

/// Builds the object and copies it to `dest`.
pub fn build_into(dest: &Path) -> anyhow::Result<PathBuf> {
    let crate_dir = root().join("harness-ebpf");
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let rustflags =
        format!("--remap-path-prefix={}=/probity --remap-path-prefix={}=/cargo", root().display(), home.display());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&crate_dir)
        // The toolchain file in harness-ebpf/ picks nightly; make sure no
        // outer override (cargo sets RUSTUP_TOOLCHAIN for xtask) wins.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUSTFLAGS", rustflags)
        .args(["build", "--release", "--locked"]);
    sh(&mut cmd)
        .context("failed to build the eBPF programs; run `cargo xtask setup --ebpf` to install the toolchain")?;
    let built = crate_dir.join("target/bpfel-unknown-none/release/probity");
    // An out-of-line Rust function keeps its mangled name, whose crate hash
    // depends on where the sources are checked out: the object would then
    // differ between checkouts and `check-ebpf` could not compare it.
    let bytes = std::fs::read(&built).with_context(|| format!("failed to read {}", built.display()))?;
    if bytes.windows(4).any(|w| w == b"_RNv") {
        bail!(
            "the eBPF object has an out-of-line Rust function (a `_RNv...` symbol), so it depends on the checkout path; \
             mark it #[inline(always)] (see `llvm-objdump -t {}`)",
            built.display()
        );
    }
    std::fs::copy(&built, dest).with_context(|| format!("failed to copy {} to {}", built.display(), dest.display()))?;
    println!("eBPF object written to {}", dest.display());
    Ok(dest.to_path_buf())
}

/// Rebuilds into a temporary file and compares with the committed object.
pub fn check() -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("probity-check-{}.bpf.o", std::process::id()));
    build_into(&tmp)?;
    let fresh = std::fs::read(&tmp)?;
    let _ = std::fs::remove_file(&tmp);
    let committed = std::fs::read(committed_object()).context("failed to read the committed eBPF object")?;
    if fresh != committed {
        bail!(
            "harness/ebpf/probity.bpf.o does not match harness-ebpf/ ({} bytes built, {} committed): run `cargo xtask build-ebpf` and commit the result",
            fresh.len(),
            committed.len()
        );
    }
    println!("the committed eBPF object matches its sources ({} bytes)", fresh.len());
    Ok(())
}
