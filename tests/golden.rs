//! Golden outputs: every shipped scenario (the benchmark ones shortened),
//! run by the `qossim` binary with `--packets --pcap`, and one small sweep
//! with `--jobs 2`, must produce byte-identical CSVs, report.html and pcaps
//! to the digests recorded in `tests/golden/<case>.sha256`.
//!
//! This test never writes digests, and a missing digest file fails it. When
//! a change of behaviour is meant, `scripts/golden-update.sh` regenerates
//! them and the diff of `tests/golden/` is reviewed in the same commit.
//! Run in release: `cargo test --release --test golden`.

mod common;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One line of `tests/golden/cases.txt`.
struct Case {
    name: String,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(root().join("tests/golden/cases.txt"))
        .expect("tests/golden/cases.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace().map(String::from);
            let name = words.next().expect("case name");
            Case {
                name,
                args: words.collect(),
            }
        })
        .collect()
}

/// Whether an output file is under the golden contract.
fn digested(rel: &str) -> bool {
    rel.ends_with(".csv") || rel.ends_with(".pcap") || rel == "report.html"
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, base, out);
        } else {
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_str()
                .expect("utf-8 path")
                .to_string();
            if digested(&rel) {
                out.push(rel);
            }
        }
    }
}

/// `sha256sum` lines ("<hex>  <path>") of a directory, sorted by path
/// bytes (as `LC_ALL=C sort` orders them).
fn digests(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
        .iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(rel)).expect("read output");
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{hex}  {rel}")
        })
        .collect()
}

fn run_case(c: &Case, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .current_dir(root())
        .args(&c.args)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .status()
        .expect("run qossim");
    assert!(
        status.success(),
        "case {}: qossim {:?} failed",
        c.name,
        c.args
    );
}

fn golden_file(name: &str) -> PathBuf {
    root().join("tests/golden").join(format!("{name}.sha256"))
}

#[test]
fn every_shipped_scenario_has_a_golden_case() {
    let cases = cases();
    let mut shipped = Vec::new();
    let mut stack = vec![root().join("scenarios")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("scenarios/") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                let rel = p.strip_prefix(root()).expect("under root");
                shipped.push(rel.to_str().expect("utf-8").to_string());
            }
        }
    }
    shipped.sort();
    let missing: Vec<&String> = shipped
        .iter()
        .filter(|s| !cases.iter().any(|c| c.args.iter().any(|a| a == *s)))
        .collect();
    assert!(
        missing.is_empty(),
        "shipped scenarios without a case in tests/golden/cases.txt: {missing:?}"
    );
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

#[test]
fn outputs_match_the_golden_digests() {
    let tmp = common::temp_dir("golden");
    let mut failures = Vec::new();
    for c in cases() {
        let out = tmp.join(&c.name);
        run_case(&c, &out);
        let got = digests(&out);
        let file = golden_file(&c.name);
        let want = match std::fs::read_to_string(&file) {
            Ok(t) => t.lines().map(String::from).collect::<Vec<_>>(),
            Err(e) => {
                failures.push(format!("{}: no digests ({e})", file.display()));
                continue;
            }
        };
        if got != want {
            let mut diff: Vec<String> = Vec::new();
            for w in &want {
                if !got.contains(w) {
                    diff.push(format!("  - {w}"));
                }
            }
            for g in &got {
                if !want.contains(g) {
                    diff.push(format!("  + {g}"));
                }
            }
            diff.truncate(12);
            failures.push(format!("case {}:\n{}", c.name, diff.join("\n")));
        } else {
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    assert!(
        failures.is_empty(),
        "outputs differ from tests/golden (outputs kept under {}); if the \
         change is intended, run scripts/golden-update.sh and commit the \
         reviewed diff:\n{}",
        tmp.display(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
