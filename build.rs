// Embeds the git hash and the locked versions of the direct dependencies, so
// manifest.json can say exactly what produced a result.
use std::process::Command;

const DIRECT: &[&str] = &[
    "rand",
    "rand_distr",
    "rand_pcg",
    "petgraph",
    "serde",
    "serde_json",
    "toml",
    "toml_edit",
    "csv",
    "clap",
    "thiserror",
    "libm",
];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    // HEAD names a branch ref, which moves on every commit: watch both (and
    // packed-refs), or the embedded hash goes stale
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
    let hash = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QOSSIM_GIT_HASH={hash}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                if DIRECT.contains(&n.as_str()) {
                    versions.push(format!("{n} {}", v.trim_matches('"')));
                }
            }
        }
    }
    println!(
        "cargo:rustc-env=QOSSIM_CRATE_VERSIONS={}",
        versions.join(";")
    );
}
