//! Layers import downward only (DESIGN.md "Layers"; docs/architecture.md).
//! Every `crate::<module>` path in a module's source must name a module of
//! a lower layer: `link/`, `net/`, `transport/` and `proto/` never reach
//! `scenario`, `world`, `metrics` or `report`; `scenario` never reaches
//! `world`; `metrics` never reaches `world`; the simulator (`world`) never
//! reaches `report` (it writes no file). Comments are skipped; code,
//! including `use` lines and inline paths, is not.

use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first.
const LAYERS: [&str; 16] = [
    "sim",
    "net",
    "link",
    "sansio",
    "transport",
    "proto",
    "app",
    "scenario",
    "metrics",
    "check",
    "world",
    "report",
    "run",
    "browser",
    "sweep",
    "cli",
];

fn files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        for e in v {
            files(&e, out);
        }
    } else if p.is_file() && p.extension().is_some_and(|x| x == "rs") {
        out.push(p.to_path_buf());
    }
}

/// `crate::<name>` references in `text`, outside comments.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_module_imports_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (level, layer) in LAYERS.iter().enumerate() {
        let mut fs = Vec::new();
        files(&src.join(layer), &mut fs);
        files(&src.join(format!("{layer}.rs")), &mut fs);
        assert!(!fs.is_empty(), "no source for layer {layer}");
        for f in fs {
            let text = std::fs::read_to_string(&f).expect("read");
            for (line, name) in references(&text) {
                let Some(target) = LAYERS.iter().position(|l| *l == name) else {
                    continue; // a crate-level item, not a layer
                };
                if target > level {
                    violations.push(format!(
                        "{}:{line}: {layer} uses crate::{name}, a higher layer",
                        f.strip_prefix(&src).unwrap_or(&f).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that run back up:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    // the scan itself: a use line and an inline path are seen, a comment is not
    let text = "use crate::world::World;\n// crate::report is fine in a comment\nlet x = crate::metrics::record::fmt_ms(1);\n";
    let refs: Vec<String> = references(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(refs, ["world", "metrics"]);
}
