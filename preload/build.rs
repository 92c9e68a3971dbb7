//! Links the unwinder into the preload library, so that loading it loads
//! nothing the traced program would not.
//!
//! Rust's standard library needs an unwinder (`_Unwind_*`), and on
//! `*-linux-gnu` rustc links it as `-lgcc_s`: every preloaded process
//! would then open and map `libgcc_s.so.1` too, syscalls and all. GCC's
//! `-static-libgcc` cannot change that (rustc links with
//! `-nodefaultlibs` and names `gcc_s` itself), and `panic = "abort"` is a
//! profile setting, not a crate's. So the static unwinder, `libgcc_eh.a`,
//! is linked whole ahead of the standard library: every `_Unwind_*`
//! symbol is then defined inside the library (and kept local by the
//! cdylib's version script, so the program's own unwinder is untouched),
//! and the linker, told `--as-needed` by rustc, drops `libgcc_s`.
//!
//! It also tells `probity`'s build script (`DEP_PROBITY_PRELOAD_DIR`)
//! where this package's sources are (and those of probity-common and
//! probity-macros): that script builds the library from
//! them, in a release profile of its own, wherever the package came from.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=dir={dir}");
    // And those of the two packages it is built from, which name theirs
    // to this script only.
    for (var, key) in [("DEP_PROBITY_COMMON_DIR", "common_dir"), ("DEP_PROBITY_MACROS_DIR", "macros_dir")] {
        let dir = std::env::var(var).unwrap_or_else(|_| panic!("cargo sets {var}"));
        println!("cargo::metadata={key}={dir}");
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo::rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}
