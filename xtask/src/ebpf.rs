//! Building the eBPF objects, and checking the committed ones.
//!
//! The object is built with nightly Rust and bpf-linker (see `setup
//! --ebpf`), with paths remapped so that the bytes do not depend on where
//! the checkout or the cargo home are. A second object, derived from it,
//! holds only the raw tracepoint programs (see [`raw_only`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{root, sh};

/// The whole object: every program, the classic tracepoint fallbacks
/// included.
const OBJECT: &str = "probity.bpf.o";
/// The object without the classic tracepoint programs.
const RAW_OBJECT: &str = "probity-raw.bpf.o";

/// Where the objects are committed.
pub fn committed_dir() -> PathBuf {
    root().join("harness/ebpf")
}

/// Builds the objects and writes them to `dir`.
pub fn build_into(dir: &Path) -> anyhow::Result<()> {
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
    let dest = dir.join(OBJECT);
    std::fs::copy(&built, &dest)
        .with_context(|| format!("failed to copy {} to {}", built.display(), dest.display()))?;
    raw_only(&dest, &dir.join(RAW_OBJECT))?;
    println!("eBPF objects written to {}", dir.display());
    Ok(())
}

/// Writes to `dest` the object `whole` without its classic tracepoint
/// programs (sections `tracepoint/*` and their relocations).
///
/// aya parses and relocates every program of an object, whether it is
/// loaded or not, and a user's debug test binary runs that code
/// unoptimised (probity cannot set its profile): about 0.3-0.4 µs an
/// instruction there, several times what it costs optimised. The
/// classic programs are over a third of the instructions and only a
/// kernel without BTF loads them, so the harness gives aya this object
/// unless it needs one of them. The object is not stripped otherwise: it has no debug sections
/// or BTF to strip (bpf-linker writes neither without `--btf`), and aya
/// needs its symbols.
fn raw_only(whole: &Path, dest: &Path) -> anyhow::Result<()> {
    // bpf-linker links against LLVM 22 (see `setup --ebpf`), whose
    // binaries are not on the PATH of a Debian install.
    let llvm = Path::new("/usr/lib/llvm-22/bin/llvm-objcopy");
    let objcopy = if llvm.exists() { llvm } else { Path::new("llvm-objcopy") };
    sh(Command::new(objcopy)
        .args(["--remove-section=tracepoint/*", "--remove-section=.reltracepoint/*"])
        .arg(whole)
        .arg(dest))
    .context("failed to derive the raw tracepoint object; run `cargo xtask setup --ebpf` to install LLVM")?;
    let derived = std::fs::read(dest).with_context(|| format!("failed to read {}", dest.display()))?;
    if derived.windows(b"tracepoint/".len()).any(|w| w == b"tracepoint/") {
        bail!("{} still names a classic tracepoint section", dest.display());
    }
    Ok(())
}

/// Rebuilds into a temporary directory and compares with the committed
/// objects.
pub fn check() -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("probity-check-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let built = build_into(&tmp).and_then(|()| {
        [OBJECT, RAW_OBJECT]
            .into_iter()
            .map(|name| Ok((name, std::fs::read(tmp.join(name))?)))
            .collect::<anyhow::Result<Vec<_>>>()
    });
    let _ = std::fs::remove_dir_all(&tmp);
    for (name, fresh) in built? {
        let path = committed_dir().join(name);
        let committed = std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        if fresh != committed {
            bail!(
                "harness/ebpf/{name} does not match harness-ebpf/ ({} bytes built, {} committed): run `cargo xtask build-ebpf` and commit the result",
                fresh.len(),
                committed.len()
            );
        }
        println!("the committed eBPF object {name} matches its sources ({} bytes)", fresh.len());
    }
    Ok(())
}
