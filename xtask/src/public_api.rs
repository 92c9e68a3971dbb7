//! The public API of probity's library crates, pinned: each crate's API,
//! as the `public-api` crate lists it from the nightly toolchain's rustdoc
//! JSON, is compared with the listing committed in
//! `public-api/<crate>.txt`, so that an API change is a reviewed diff.
//! `--bless` writes the listings anew.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context};
use clap::Args;

#[derive(Args)]
pub struct PublicApiArgs {
    /// Write the listings anew instead of comparing with them.
    #[arg(long)]
    bless: bool,
}

/// The crates whose API is pinned: the library, the record layouts it
/// shares with the eBPF programs and the preload library (with every
/// feature, as the harness uses them), and the `#[traced_test]` macro.
const CRATES: &[&str] = &["probity", "probity-common", "probity-macros"];

/// The toolchain whose rustdoc writes the JSON (rustdoc's JSON output is
/// unstable): the nightly `setup --ebpf` prepares.
const TOOLCHAIN: &str = "nightly";

/// The rustdoc JSON formats the `public-api` version in xtask's manifest
/// reads (see the comment there).
const FORMATS: std::ops::RangeInclusive<u64> = 56..=57;

pub fn run(args: &PublicApiArgs) -> anyhow::Result<()> {
    let root = crate::root();
    let dir = root.join("public-api");
    let mut changed = Vec::new();
    for &name in CRATES {
        let api = listing(&root, name)?;
        let path = dir.join(format!("{name}.txt"));
        if args.bless {
            std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
            std::fs::write(&path, &api).with_context(|| format!("failed to write {}", path.display()))?;
            println!("wrote {}", path.display());
            continue;
        }
        let committed = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        if committed == api {
            println!("{name}: public API unchanged");
            continue;
        }
        let diff = similar::TextDiff::from_lines(&committed, &api);
        let shown = diff.unified_diff().context_radius(2).header(&format!("public-api/{name}.txt"), "now").to_string();
        println!("{name}: public API changed (- committed, + now):\n{shown}");
        changed.push(name);
    }
    if !changed.is_empty() {
        bail!(
            "the public API of {} changed; if that is intended, run `cargo xtask public-api --bless` and commit \
             public-api/",
            changed.join(", ")
        );
    }
    Ok(())
}

/// The public API of the crate `name`, one item a line.
fn listing(root: &Path, name: &str) -> anyhow::Result<String> {
    let installed = Command::new("rustup").args(["run", TOOLCHAIN, "rustc", "--version"]).output();
    ensure!(
        installed.is_ok_and(|o| o.status.success()),
        "the {TOOLCHAIN} toolchain is missing: run `cargo xtask setup --ebpf`"
    );
    // Apart from the stable build's: nightly artifacts would only crowd it.
    let json = rustdoc_json::Builder::default()
        .toolchain(TOOLCHAIN)
        .manifest_path(root.join("Cargo.toml"))
        .target_dir(root.join("target/public-api"))
        .package(name)
        .all_features(true)
        .quiet(true)
        .build()
        .with_context(|| format!("failed to build the rustdoc JSON of {name}"))?;
    let text = std::fs::read_to_string(&json).with_context(|| format!("failed to read {}", json.display()))?;
    let format = serde_json::from_str::<serde_json::Value>(&text)
        .with_context(|| format!("failed to parse {}", json.display()))?["format_version"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        FORMATS.contains(&format),
        "{TOOLCHAIN}'s rustdoc writes JSON format {format}, and the public-api crate xtask uses reads {} to {}: \
         move xtask to a public-api release that reads format {format} (its changelog names the nightlies it \
         supports), or install a nightly of that range",
        FORMATS.start(),
        FORMATS.end()
    );
    // Blanket impls (`From<T> for T`, `Borrow`, dependencies' `Equivalent`)
    // say nothing of probity's API and change with dependencies' versions.
    let api = public_api::Builder::from_rustdoc_json(&json)
        .omit_blanket_impls(true)
        .build()
        .with_context(|| format!("failed to list the public API of {name} from {}", json.display()))?;
    Ok(api.to_string())
}
