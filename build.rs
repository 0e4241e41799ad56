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
    // packed-refs), or the embedded hash goes stale. Paths come from git
    // itself, so a linked worktree (where `.git` is a file) watches its own
    // HEAD instead of a missing path that would rebuild on every call.
    let git_path = |p: &str| {
        Command::new("git")
            .args(["rev-parse", "--git-path", p])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    };
    let common = Command::new("git")
        .args(["rev-parse", "--git-common-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    if let Some(head) = git_path("HEAD") {
        println!("cargo:rerun-if-changed={head}");
        if let Ok(text) = std::fs::read_to_string(&head) {
            if let Some(r) = text.trim().strip_prefix("ref: ") {
                if let Some(c) = &common {
                    println!("cargo:rerun-if-changed={c}/{r}");
                }
            }
        }
    }
    // a missing watched file would rerun this script on every build
    if let Some(c) = common.filter(|c| std::path::Path::new(&format!("{c}/packed-refs")).exists()) {
        println!("cargo:rerun-if-changed={c}/packed-refs");
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
