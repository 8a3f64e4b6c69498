//! Embeds the code version (crate version + git commit when available) into the manifest.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let version = env!("CARGO_PKG_VERSION");
    let code = match commit {
        Some(c) if !c.is_empty() => format!("{version}+{c}"),
        _ => version.to_owned(),
    };
    println!("cargo:rustc-env=VIGIL_CODE_VERSION={code}");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
