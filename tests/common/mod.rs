//! Helpers shared by integration tests (each test crate uses what it needs).

#![allow(dead_code)]

pub mod abuse;
pub mod browser;
pub mod cli;
pub mod peers;
pub mod served;
pub mod sim;
pub mod tls_pair;
pub mod tshark;
pub mod wasm;

use std::path::{Path, PathBuf};

/// The contract example of DESIGN.md: the project's own copy
/// (`tests/fixtures/contract-example.toml`) always, and the team's shared
/// copy (`../shared/contract-example.toml`) too when it exists beside the
/// checkout, so the two cannot drift apart silently.
pub fn contracts() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![root.join("tests/fixtures/contract-example.toml")];
    let shared = root.join("../shared/contract-example.toml");
    if shared.is_file() {
        v.push(shared);
    }
    v
}

/// A fresh, empty directory under the system temp dir, unique per process,
/// `tag` and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("qossim-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Every scenario file shipped under `scenarios/` (recursively), sorted.
pub fn shipped_scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}
