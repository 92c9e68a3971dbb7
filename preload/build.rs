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

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo::rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}
