//! Names this package's directory to the build scripts of the packages
//! that depend on it (`links`): `probity`'s builds the preload library
//! from these very sources (see `harness/build.rs`).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=dir={dir}");
}
