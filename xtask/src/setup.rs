//! Installing what a fresh Debian machine lacks.

use std::path::Path;
use std::process::Command;

use clap::Args;

use crate::sh;

#[derive(Args)]
pub struct SetupArgs {
    /// Also install the eBPF toolchain (nightly rust-src, LLVM 22, bpf-linker).
    #[arg(long)]
    ebpf: bool,
}

/// Debian packages the tests and benchmarks use: strace is the oracle the
/// fidelity tests compare with, and the benchmarks' baseline; the network
/// tests make private network namespaces (`unshare`, `ip`) and force
/// retransmits with an nftables rule; ltrace is the preload benchmark's
/// baseline; git is a real program the snapshot tests trace;
/// libseccomp-dev is what the harness links for fault injection's filter.
const TEST_PACKAGES: &[&str] = &[
    "libseccomp-dev",
    "strace",
    "ltrace",
    "gcc",
    "libc6-dev",
    "python3",
    "tar",
    "coreutils",
    "util-linux",
    "iproute2",
    "nftables",
    "git",
];
const EBPF_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev"];

pub fn run(args: &SetupArgs) -> anyhow::Result<()> {
    let mut packages: Vec<&str> = TEST_PACKAGES.to_vec();
    if args.ebpf {
        packages.extend(EBPF_PACKAGES);
    }
    let missing: Vec<&str> = packages.into_iter().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        println!("installing {}", missing.join(" "));
        sh(Command::new("apt-get").arg("update").arg("-qq"))?;
        sh(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing))?;
    }
    // The checks every change passes (CONTRIBUTING.md): a minimal rustup
    // profile has neither.
    sh(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    if args.ebpf {
        sh(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "rustfmt",
            "clippy",
            "--toolchain",
            "nightly",
        ]))?;
        if which("bpf-linker").is_none() {
            println!("building bpf-linker for LLVM 22 (a few minutes)");
            let path = format!("/usr/lib/llvm-22/bin:{}", std::env::var("PATH").unwrap_or_default());
            sh(Command::new("cargo").env("PATH", path).env_remove("RUSTUP_TOOLCHAIN").args([
                "install",
                "bpf-linker",
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ]))?;
        }
    }
    println!("setup done");
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    let home_bin = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|p| p.join("bin"));
    std::env::split_paths(&path).chain(home_bin).map(|d| d.join(bin)).find(|p| p.is_file())
}
