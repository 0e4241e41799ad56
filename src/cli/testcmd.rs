//! `qossim test [FILES|DIRS]`: run every scenario that has `[[expect]]`
//! tables (directories searched recursively, paths sorted) in parallel,
//! print one table row per expectation, optionally write JUnit XML.
//! Exit status: 0 all hold, 1 some expectation failed, 2 bad input (a
//! scenario that does not load, no scenario with expectations), 3 an
//! internal error (results could not be written).

use super::CliError;
use crate::run::expect::{evaluate, fmt_value, Evaluation};
use crate::run::{execute, file_safe, write_tables, RunOptions};
use crate::scenario::{self, model::Scenario};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `qossim test`.
#[derive(Debug, Default, Clone)]
pub struct TestRequest {
    /// Scenario files and directories (searched recursively for `*.toml`).
    pub paths: Vec<PathBuf>,
    /// Where each scenario's results go (`<out>/<path>/`); default
    /// `results/test/<time>-<pid>/`.
    pub out: Option<PathBuf>,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// `--set` overrides applied to every scenario.
    pub overrides: Vec<String>,
    /// Print only failures and errors.
    pub quiet: bool,
    /// Run the spec-oracle monitors in every scenario (`--check`); without
    /// it they run where an expectation reads `violations`.
    pub check: bool,
    /// Exit 2 when a scenario warns (`--deny-warnings`).
    pub deny_warnings: bool,
}

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The file, as found.
    pub path: PathBuf,
    pub evaluation: Evaluation,
}

/// Every `*.toml` under `paths` (files as given), sorted, without
/// duplicates; symbolic links to directories are not followed inside a
/// directory. A path that does not exist is bad input.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
        let rd = std::fs::read_dir(dir).map_err(|e| {
            CliError::BadArgument(format!("cannot read directory {}: {e}", dir.display()))
        })?;
        for entry in rd {
            let entry = entry.map_err(|e| {
                CliError::BadArgument(format!("cannot read directory {}: {e}", dir.display()))
            })?;
            let p = entry.path();
            // real directories only: a symbolic link to a parent would
            // never end
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out)?;
            } else if p.is_file() && p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(CliError::BadArgument(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether a file's text declares `[[expect]]` tables (an unparsable file
/// counts as declaring them, so the loader reports its error).
fn declares_expectations(text: &str) -> bool {
    match text.parse::<toml::Table>() {
        Ok(t) => t.contains_key("expect"),
        Err(_) => true,
    }
}

/// The scenarios among `files` that have expectations, loaded with
/// `overrides`; every load error is reported (on stderr) before failing.
pub fn load_scenarios(
    files: &[PathBuf],
    overrides: &[String],
) -> Result<Vec<(PathBuf, Scenario)>, CliError> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{}: cannot read scenario file: {e}", f.display()));
                continue;
            }
        };
        if !declares_expectations(&text) {
            continue;
        }
        match scenario::load_file(f, overrides) {
            Ok(sc) if sc.expectations.is_empty() => {}
            Ok(sc) => out.push((f.clone(), sc)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match errors.len() {
        0 => Ok(out),
        1 => Err(CliError::BadArgument(errors.remove(0))),
        n => {
            for e in &errors[..n - 1] {
                eprintln!("error: {e}");
            }
            Err(CliError::BadArgument(format!(
                "{} ({n} scenario files have errors)",
                errors[n - 1]
            )))
        }
    }
}

/// The results directory of one scenario file under `root`.
fn result_dir(root: &Path, path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    let s = s.strip_suffix(".toml").unwrap_or(&s);
    let s = s.trim_start_matches("./").trim_start_matches('/');
    root.join(file_safe(&s.replace('/', "__")))
}

/// Run one scenario into `dir`: messages.csv and the per-element tables,
/// runs.csv, summary.csv, manifest.json and expectations.csv.
fn run_one(sc: &Scenario, dir: &Path, check: bool) -> Result<Evaluation, CliError> {
    let internal = |e: String| CliError::TestInternal(e);
    let opts = RunOptions {
        check,
        out_dir: dir.to_path_buf(),
        packets: false,
        pcap: false,
        fsync: false,
        registry: None,
        trace: None,
    };
    let ex = execute(sc, 0, 0, &[], &opts).map_err(|e| internal(e.to_string()))?;
    write_tables(dir, &ex.rows)
        .map_err(|e| internal(format!("cannot write results in {}: {e}", dir.display())))?;
    let manifest = crate::report::manifest::manifest(sc, ex.wall_s, ex.events, ex.end);
    crate::report::atomic::write_atomic_unsynced(&dir.join("manifest.json"), manifest.as_bytes())
        .map_err(|e| internal(format!("cannot write results in {}: {e}", dir.display())))?;
    let ev = evaluate(sc, &ex.rows, None).map_err(|e| internal(e.to_string()))?;
    ev.write(dir, false)
        .map_err(|e| internal(format!("cannot write results in {}: {e}", dir.display())))?;
    Ok(ev)
}

/// Run the scenarios in parallel (rayon's pool: `RAYON_NUM_THREADS`);
/// results come back in the order given, whatever the thread count.
pub fn run_all(
    scenarios: &[(PathBuf, Scenario)],
    root: &Path,
    check: bool,
) -> Result<Vec<ScenarioResult>, CliError> {
    scenarios
        .par_iter()
        .map(|(path, sc)| {
            run_one(sc, &result_dir(root, path), check).map(|evaluation| ScenarioResult {
                path: path.clone(),
                evaluation,
            })
        })
        .collect()
}

/// The table `qossim test` prints: one row per expectation.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "scenario".into(),
        "expectation".into(),
        "flow".into(),
        "measured".into(),
        "result".into(),
    ]];
    for r in results {
        for v in r.evaluation.verdicts() {
            rows.push([
                r.path.display().to_string(),
                v.label,
                v.flows,
                v.measured,
                if v.pass { "pass" } else { "FAIL" }.into(),
            ]);
        }
    }
    let width = |k: usize| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
    let w: Vec<usize> = (0..4).map(width).collect();
    let mut s = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, cell) in r.iter().enumerate() {
            if k < 4 {
                let pad = w[k] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            } else {
                line.push_str(cell);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// `text` escaped for XML 1.0 attribute values and character data;
/// characters XML 1.0 cannot hold (controls other than tab, newline and
/// carriage return) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\t' => s.push_str("&#9;"),
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => s.push('\u{fffd}'),
            c => s.push(c),
        }
    }
    s
}

/// JUnit XML: one `<testsuite>` per scenario file, one `<testcase>` per
/// expectation, a `<failure message="measured X, expected op value">` for
/// each that failed (its body lists every failing row).
pub fn junit(results: &[ScenarioResult]) -> String {
    let total: usize = results
        .iter()
        .map(|r| r.evaluation.expectations.len())
        .sum();
    let failed: usize = results.iter().map(|r| r.evaluation.failed()).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"qossim test\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\">"
    );
    for r in results {
        let ev = &r.evaluation;
        let path = r.path.display().to_string();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\">",
            xml_escape(&path),
            ev.expectations.len(),
            ev.failed()
        );
        for (i, (e, v)) in ev.expectations.iter().zip(ev.verdicts()).enumerate() {
            let _ = write!(
                s,
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml_escape(&v.label),
                xml_escape(&path)
            );
            match &v.failing {
                None => s.push_str("/>\n"),
                Some(c) => {
                    let mut msg = format!(
                        "measured {}, expected {} {}",
                        fmt_value(c.measured),
                        e.op.as_str(),
                        fmt_value(Some(e.value))
                    );
                    if e.tolerance > 0.0 {
                        msg.push_str(&format!(" ± {}", fmt_value(Some(e.tolerance))));
                    }
                    let mut body = String::new();
                    for row in ev.checked.iter().filter(|x| x.expectation == i && !x.pass) {
                        let _ = writeln!(
                            body,
                            "{} {} {}: flow {}{}: measured {}",
                            e.metric,
                            e.op.as_str(),
                            fmt_value(Some(e.value)),
                            row.flow,
                            row.seed.map(|x| format!(", seed {x}")).unwrap_or_default(),
                            fmt_value(row.measured)
                        );
                    }
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>",
                        xml_escape(&msg),
                        xml_escape(&body)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// A fresh results directory under `results/test/`.
fn default_out() -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Path::new("results")
        .join("test")
        .join(format!("{t}-{}", std::process::id()))
}

/// `qossim test`.
pub fn test(req: &TestRequest) -> Result<(), CliError> {
    if req.paths.is_empty() {
        return Err(CliError::BadArgument(
            "name scenario files or directories to test (e.g. scenarios/regression/)".into(),
        ));
    }
    let files = collect_files(&req.paths)?;
    let scenarios = load_scenarios(&files, &req.overrides)?;
    let warned: Vec<_> = scenarios
        .iter()
        .flat_map(|(_, sc)| super::warnings(sc))
        .collect();
    super::report_warnings(&warned, req.deny_warnings)?;
    if scenarios.is_empty() {
        let names: Vec<String> = req.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::BadArgument(format!(
            "no scenario with [[expect]] tables in {} ({} .toml files looked at)",
            names.join(", "),
            files.len()
        )));
    }
    let root = req.out.clone().unwrap_or_else(default_out);
    std::fs::create_dir_all(&root)
        .map_err(|e| CliError::TestInternal(format!("cannot create {}: {e}", root.display())))?;
    let results = run_all(&scenarios, &root, req.check)?;
    let total: usize = results
        .iter()
        .map(|r| r.evaluation.expectations.len())
        .sum();
    let failed: usize = results.iter().map(|r| r.evaluation.failed()).sum();
    if !req.quiet || failed > 0 {
        print!("{}", table(&results));
        println!(
            "{total} expectations in {} scenarios: {} passed, {failed} failed",
            results.len(),
            total - failed
        );
        println!("results: {}/", root.display());
    }
    if let Some(j) = &req.junit {
        if let Some(parent) = j.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::TestInternal(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        crate::report::atomic::write_atomic(j, junit(&results).as_bytes())
            .map_err(|e| CliError::TestInternal(format!("cannot write {}: {e}", j.display())))?;
    }
    if failed > 0 {
        return Err(CliError::ExpectationsFailed { failed, total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}"
        );
    }

    #[test]
    fn result_dirs_are_flat_and_safe() {
        assert_eq!(
            result_dir(Path::new("/o"), Path::new("scenarios/regression/a b.toml")),
            Path::new("/o/scenarios__regression__a_b")
        );
    }
}
