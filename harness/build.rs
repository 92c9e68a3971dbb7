//! Builds the preload library (`probity-preload`) so the harness can embed
//! it: a crate depending on probity gets it with no extra step, and a test
//! binary carries it wherever it runs (a nextest archive included).
//!
//! The library is built by a cargo of its own, in release and without the
//! caller's flags, whatever profile probity itself is built with: it runs
//! inside every traced process. Its sources are the `probity-preload`
//! package's, found through `DEP_PROBITY_PRELOAD_DIR` (that package
//! `links` a name, so cargo hands its build script's metadata to ours):
//! in probity's workspace they are built as its member; unpacked from a
//! registry (or vendored), they are copied here and built as a workspace
//! of their own, with the probity-common and probity-macros this build
//! uses, offline, from the crates this build already fetched.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The sources of probity-preload and of the two packages it is built
    // from, as cargo unpacked them for this build.
    let dir = |key: &str| {
        let var = format!("DEP_PROBITY_PRELOAD_{key}");
        println!("cargo::rerun-if-env-changed={var}");
        PathBuf::from(std::env::var_os(&var).unwrap_or_else(|| panic!("probity-preload's build script sets {var}")))
    };
    let (source, common, macros) = (dir("DIR"), dir("COMMON_DIR"), dir("MACROS_DIR"));
    for package in [&source, &common, &macros] {
        for item in ["src", "Cargo.toml", "build.rs"] {
            println!("cargo::rerun-if-changed={}", package.join(item).display());
        }
    }
    let target_dir = out.join("preload-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let mut cmd = Command::new(cargo);
    // `cargo package` writes the original manifest beside the normalized
    // one: its presence says these sources are a package, not a member.
    if source.join("Cargo.toml.orig").exists() {
        let copy = out.join("preload-src");
        copy_package(&source, &copy, &common, &macros);
        cmd.current_dir(&copy).args(["build", "--offline", "--manifest-path"]).arg(copy.join("Cargo.toml"));
    } else {
        if let Some(root) = source.parent() {
            println!("cargo::rerun-if-changed={}", root.join("Cargo.lock").display());
        }
        cmd.current_dir(&source).args(["build", "--manifest-path"]).arg(source.join("Cargo.toml"));
    }
    // A separate target directory: the outer build holds a lock on its own.
    let status = cmd
        .args(["--release", "--lib", "-p", "probity-preload", "--target", &target, "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        // Small: it is embedded in every binary that links probity.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .status()
        .expect("failed to run cargo to build the preload library");
    assert!(status.success(), "failed to build the preload library ({}): {status}", source.display());
    let lib = target_dir.join(&target).join("release/libprobity_preload.so");
    let bytes = std::fs::read(&lib).unwrap_or_else(|e| panic!("failed to read {}: {e}", lib.display()));
    std::fs::write(out.join("libprobity_preload.so"), &bytes).expect("failed to copy the preload library");
    // The SHA-256 of the content: the extracted copy is checked against it
    // before every use, and its first 16 digits name the copy, so versions
    // never clash.
    let hash: String = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo::rustc-env=PROBITY_PRELOAD_SHA256={hash}");
    println!("cargo::rustc-env=PROBITY_PRELOAD_HASH={}", &hash[..16]);
}

/// Copies the packaged sources to `to`, a workspace of their own: the
/// registry's copy is shared and must not get a `Cargo.lock`, and a
/// workspace above `OUT_DIR` (the caller's) must not claim them. Its
/// probity dependencies are the very sources this build uses, wherever
/// they came from (a registry, a vendor directory, `cargo package`'s
/// own); only their dependencies (libc, syn...) are resolved, offline.
fn copy_package(from: &Path, to: &Path, common: &Path, macros: &Path) {
    let _ = std::fs::remove_dir_all(to);
    copy_dir(from, to).unwrap_or_else(|e| panic!("failed to copy {} to {}: {e}", from.display(), to.display()));
    let manifest = to.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("failed to read the copied manifest");
    text.push_str(&format!(
        "\n[workspace]\n\n[patch.crates-io]\nprobity-common = {{ path = {:?} }}\nprobity-macros = {{ path = {:?} }}\n",
        common.display().to_string(),
        macros.display().to_string(),
    ));
    std::fs::write(&manifest, text).expect("failed to write the copied manifest");
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        // A lock file a build left there is not the package's.
        if name == "Cargo.lock" || name == "target" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
