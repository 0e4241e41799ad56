//! The browser build gives the native CLI's numbers (issue 23 item 3): the
//! library compiled to wasm32-unknown-unknown without its `native` feature,
//! run under Node.js through the playground's ABI, writes runs.csv,
//! summary.csv, events.csv and timeseries.csv byte for byte as `qossim
//! run` does for the same scenario, overrides and seed — integer time,
//! libm and Rust's own float formatting, whatever the platform.

mod common;
use std::path::Path;

fn teaching(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/teaching")
        .join(name)
}

fn native(scenario: &Path, sets: &[&str], out: &Path) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qossim"));
    cmd.arg("run")
        .arg(scenario)
        .args(["--quiet", "--out"])
        .arg(out);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let st = cmd.status().expect("qossim run");
    assert!(st.success(), "qossim run {}", scenario.display());
}

fn same_files(native: &Path, wasm: &Path, what: &str) {
    let mut n = 0;
    for name in ["runs.csv", "summary.csv", "events.csv", "timeseries.csv"] {
        let w = wasm.join(name);
        let c = native.join(name);
        assert_eq!(w.is_file(), c.is_file(), "{what}: {name} in one build only");
        if !c.is_file() {
            continue;
        }
        let (a, b) = (
            std::fs::read(&c).expect("native"),
            std::fs::read(&w).expect("wasm"),
        );
        assert!(
            a == b,
            "{what}: {name} differs between the native CLI and the wasm build"
        );
        n += 1;
    }
    assert!(n >= 3, "{what}: {n} files compared");
}

#[test]
fn qos_levels_at_two_losses_match_the_native_cli_byte_for_byte() {
    let Some(wasm) = common::wasm::build() else {
        return;
    };
    let f = teaching("qos-levels.toml");
    for p in ["0.05", "0.2"] {
        let set = format!("links.backhaul.loss.p={p}");
        let sets = [set.as_str(), "seed=7"];
        let n = common::temp_dir("parity-native");
        native(&f, &sets, &n);
        let w = common::temp_dir("parity-wasm");
        let (code, out) = common::wasm::run(&wasm, &f, &w, 0, &sets);
        assert_eq!(code, 0, "{out}");
        same_files(&n, &w, &format!("qos-levels p={p}"));
    }
}

/// Every teaching scenario (as `qossim run` runs it: the file as written)
/// runs in the browser build with the playground's limit and gives the
/// native numbers; one over a tiny limit is refused with a message.
#[test]
fn every_teaching_scenario_runs_in_wasm_within_the_limit() {
    let Some(wasm) = common::wasm::build() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/teaching");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("teaching dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        let w = common::temp_dir("wasm-teach");
        let (code, out) =
            common::wasm::run(&wasm, f, &w, qossim::browser::PLAYGROUND_EVENT_LIMIT, &[]);
        assert_eq!(code, 0, "{}: {out}", f.display());
        let n = common::temp_dir("wasm-teach-native");
        native(f, &[], &n);
        same_files(&n, &w, &f.display().to_string());
    }
    let w = common::temp_dir("wasm-limit");
    let (code, out) = common::wasm::run(&wasm, &teaching("qos-levels.toml"), &w, 1000, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("more than 1000 events"), "{out}");
}
