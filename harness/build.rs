//! Builds the preload library (`preload/`) so the harness can embed it: a
//! crate depending on probity gets it with no extra step, and a test
//! binary carries it wherever it runs (a nextest archive included).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = manifest.parent().expect("the harness lives in the workspace").to_path_buf();
    for dir in [
        "preload/src",
        "preload/Cargo.toml",
        "preload/build.rs",
        "common/src",
        "common/Cargo.toml",
        "macros/src",
        "macros/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = out.join("preload-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A separate target directory: the outer build holds a lock on its own.
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--lib", "-p", "probity-preload", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        // Small: it is embedded in every binary that links probity.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .status()
        .expect("failed to run cargo to build the preload library");
    assert!(status.success(), "failed to build the preload library (preload/): {status}");
    let lib = target_dir.join("release/libprobity_preload.so");
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
