//! Embeds the measured crates' versions (read from the workspace's Cargo.lock) and the compiler
//! version, so every report says exactly what it measured.

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The crates whose versions every report prints.
const CRATES: &[&str] = &[
    "lanemap",
    "dashmap",
    "papaya",
    "scc",
    "flurry",
    "hashbrown",
    "parking_lot",
    "foldhash",
];

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock_path = Path::new(&manifest_dir).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    println!("cargo:rerun-if-changed=build.rs");
    let lock = fs::read_to_string(&lock_path).unwrap_or_default();
    let versions: Vec<String> = CRATES
        .iter()
        .map(|name| format!("{name} {}", locked_versions(&lock, name).join("/")))
        .collect();
    println!(
        "cargo:rustc-env=LANEMAP_BENCH_VERSIONS={}",
        versions.join(";")
    );

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LANEMAP_BENCH_RUSTC={rustc_version}");
    let target = env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=LANEMAP_BENCH_TARGET={target}");
}

/// Every version of `name` in a Cargo.lock (a crate can be locked at several versions).
fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                found.push(version.trim_matches('"').to_string());
            }
        }
    }
    if found.is_empty() {
        found.push("unknown".into());
    }
    found
}
