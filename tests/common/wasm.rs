//! The browser build (`src/browser.rs`): built once per test process with
//! the command docs/tutorial.md gives, into its own target directory
//! (`target/wasm`, so the outer `cargo test` holding `target/` never
//! blocks it), and run under Node.js by `scripts/wasm-run.mjs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::peers::skip_or_fail;

/// The cargo arguments of the browser build (scripts/test.sh and
/// docs/tutorial.md give the same), run with `CARGO_TARGET_DIR=target/wasm`.
pub const WASM_BUILD: [&str; 10] = [
    "rustc",
    "--profile",
    "wasm",
    "--lib",
    "--target",
    "wasm32-unknown-unknown",
    "--no-default-features",
    "--crate-type",
    "cdylib",
    "--quiet",
];

/// The release `qossim.wasm`, built if needed; `None` (after
/// [`skip_or_fail`]) when the `wasm32-unknown-unknown` target or Node.js is
/// missing.
pub fn build() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/wasm");
        let out = Command::new(env!("CARGO"))
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            .args(WASM_BUILD)
            .output()
            .map_err(|e| format!("cargo: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err(if err.contains("wasm32-unknown-unknown") && err.contains("not installed") {
                "the wasm32-unknown-unknown target is not installed (rustup target add wasm32-unknown-unknown)".to_string()
            } else {
                format!("the wasm build failed:\n{err}")
            });
        }
        Ok(target.join("wasm32-unknown-unknown/wasm/qossim.wasm"))
    });
    match r {
        Ok(p) if node_available() => Some(p.clone()),
        Ok(_) => None,
        Err(e) if e.starts_with("the wasm build failed") => panic!("{e}"),
        Err(e) => {
            skip_or_fail(e);
            None
        }
    }
}

fn node_available() -> bool {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("node not found (install Debian package nodejs)");
    }
    ok
}

/// Run `scenario` in the wasm build under Node.js with `--set` `sets` and
/// an event limit (0: none) into `out`; the exit status (0 ran, 3 refused)
/// and what it printed.
pub fn run(wasm: &Path, scenario: &Path, out: &Path, limit: u64, sets: &[&str]) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("node");
    cmd.arg(root.join("scripts/wasm-run.mjs"))
        .arg(wasm)
        .arg(scenario)
        .arg(out)
        .arg(limit.to_string());
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}
