//! Running `tshark` on capture files written by tests.
//!
//! When `tshark` is not installed, [`available`] fails the test if the
//! environment says `CI=true` (CI must run the interop checks) and otherwise
//! prints why the test is skipped, so a developer without Wireshark can still
//! run `cargo test`.

use std::path::Path;
use std::process::Command;

/// True when `tshark -v` runs. Panics (failing the test) when it does not
/// and `CI=true`; otherwise prints a skip message naming `test` and returns false.
pub fn available(test: &str) -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: tshark is required when CI=true but was not found on PATH");
        }
        eprintln!(
            "{test}: SKIPPED — tshark not found on PATH (install it, e.g. apt-get install tshark)"
        );
    }
    ok
}

/// Run `tshark -r <file> <args…>` and return its standard output; panics with
/// tshark's stderr when it exits unsuccessfully.
pub fn run(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    assert!(
        out.status.success(),
        "tshark {args:?} on {} failed ({}): {}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Non-empty output lines.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}
