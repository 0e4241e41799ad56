//! Running the `qossim` binary from integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `qossim args…`: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .args(args)
        .output()
        .expect("run qossim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `qossim args…`: (exit code, stdout followed by stderr).
pub fn qossim(args: &[&str]) -> (i32, String) {
    let (code, out, err) = run(args);
    (code, format!("{out}{err}"))
}

/// The small sweep scenario the sweep tests share.
pub fn sweep_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep-small.toml")
}

/// `qossim sweep <scenario> --out <out> --quiet <extra…>`, which must succeed.
pub fn sweep_ok(scenario: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "sweep",
        scenario.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let (code, text) = qossim(&args);
    assert_eq!(code, 0, "{text}");
}
