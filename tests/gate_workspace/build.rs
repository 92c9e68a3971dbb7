//! Writes a file outside `target/`, as some build scripts do: the gate
//! attributes it to this build script.

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stamp.txt"), "built\n").unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
