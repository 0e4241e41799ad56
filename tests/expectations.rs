//! `[[expect]]` tables: parsing and its errors (field named, close names
//! suggested), evaluation at the end of `qossim run` (pass/FAIL lines,
//! `--strict`, `seeds`, expectations.csv) and `qossim test` (exit codes,
//! the table, JUnit XML, determinism across thread counts).

mod common;
use common::cli::run as qossim;
use common::temp_dir;
use qossim::scenario::expect::{Op, Source};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small, fast scenario: one UDP sensor over a lossy link, 20 readings.
const BASE: &str = r#"name = "expect-base"
seed = 1
duration = "20 s"
drain = "2 s"

[[nodes]]
name = "collector"
role = "server"

[[nodes]]
name = "sensor"
role = "client"

[[links]]
name = "radio"
a = "sensor"
b = "collector"
rate = "250 kbit/s"
delay = "10 ms"
loss = { model = "bernoulli", p = 0.3 }

[[flows]]
name = "readings"
pattern = "point_to_point"
protocol = "udp"
publishers = ["sensor"]
receivers = ["collector"]
topic = "t"
payload_bytes = 24
interval = "1 s"
"#;

fn load(expect: &str) -> Result<qossim::Scenario, qossim::scenario::ScenarioError> {
    qossim::scenario::load_str(&format!("{BASE}{expect}"), "t.toml", Path::new("."), &[])
}

fn load_err(expect: &str) -> qossim::scenario::ScenarioError {
    match load(expect) {
        Ok(_) => panic!("expected an error for:\n{expect}"),
        Err(e) => e,
    }
}

/// The 1-based line of the first occurrence of `needle` in BASE + expect.
fn line_of(expect: &str, needle: &str) -> usize {
    let text = format!("{BASE}{expect}");
    let at = text.find(needle).expect("needle");
    text[..at].lines().count() + usize::from(text[..at].ends_with('\n'))
}

#[test]
fn every_op_parses() {
    for (op, want) in [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
    ] {
        let sc = load(&format!(
            "\n[[expect]]\nmetric = \"delivered\"\nop = \"{op}\"\nvalue = 3\n"
        ))
        .unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(sc.expectations.len(), 1);
        let e = &sc.expectations[0];
        assert_eq!(e.op, want);
        assert_eq!(e.op.as_str(), op);
        assert_eq!(e.value, 3.0);
        assert_eq!(e.source, Source::Runs);
        assert_eq!(e.flows, vec![0]);
        assert_eq!(e.label(), format!("delivered {op} 3"));
    }
}

#[test]
fn selectors_tolerance_seeds_and_name_parse() {
    let sc = load(
        "\n[[expect]]\nname = \"most arrive\"\nmetric = \"delivery_ratio\"\nop = \"==\"\nvalue = 0.7\ntolerance = 0.2\nflow = \"readings\"\nprotocol = \"udp\"\nreliability = \"best_effort\"\nseeds = 4\n",
    )
    .expect("loads");
    let e = &sc.expectations[0];
    assert_eq!(e.label(), "most arrive");
    assert_eq!(e.tolerance, 0.2);
    assert_eq!(e.seeds, Some(4));
    assert!(e.holds(Some(0.85)) && !e.holds(Some(0.95)));
    let sc = load("\n[[expect]]\nmetric = \"delivered_ci95\"\nop = \"<\"\nvalue = 5\nseeds = 3\n")
        .expect("loads");
    assert_eq!(sc.expectations[0].source, Source::Summary);
}

#[test]
fn bad_op_names_the_field_and_the_choices() {
    let x = "\n[[expect]]\nmetric = \"delivered\"\nop = \"=>\"\nvalue = 3\n";
    let e = load_err(x);
    assert_eq!(e.field.as_deref(), Some("expect[0].op"), "{e}");
    assert_eq!(e.line, Some(line_of(x, "op = ")), "{e}");
    assert!(
        e.message.contains("\"=>\"") && e.message.contains(">="),
        "{e}"
    );
}

#[test]
fn unknown_metric_suggests_close_names() {
    let x = "\n[[expect]]\nmetric = \"delivery_ration\"\nop = \">\"\nvalue = 0.5\n";
    let e = load_err(x);
    assert_eq!(e.field.as_deref(), Some("expect[0].metric"), "{e}");
    assert_eq!(e.line, Some(line_of(x, "metric = ")), "{e}");
    assert!(
        e.message.contains("unknown metric `delivery_ration`"),
        "{e}"
    );
    assert!(e.message.contains("did you mean `delivery_ratio`"), "{e}");
    let e = load_err("\n[[expect]]\nmetric = \"latency_p99\"\nop = \">\"\nvalue = 0.5\n");
    assert!(e.message.contains("latency_ms_p99"), "{e}");
}

#[test]
fn violations_is_a_metric_since_the_monitors_landed() {
    // tests/monitors.rs runs it; here: the loader accepts it, and a
    // misspelling is pointed at it
    let e = load_err("\n[[expect]]\nmetric = \"violation\"\nop = \"==\"\nvalue = 0\n");
    assert!(e.message.contains("`violations`"), "{e}");
}

#[test]
fn text_columns_are_refused() {
    let e = load_err("\n[[expect]]\nmetric = \"protocol\"\nop = \"==\"\nvalue = 0\n");
    assert!(e.message.contains("text column"), "{e}");
}

#[test]
fn unknown_selectors_are_refused() {
    let x = "\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\nflow = \"readngs\"\n";
    let e = load_err(x);
    assert_eq!(e.field.as_deref(), Some("expect[0].flow"), "{e}");
    assert_eq!(e.line, Some(line_of(x, "flow = \"readngs")), "{e}");
    assert!(
        e.message.contains("readngs") && e.message.contains("readings"),
        "{e}"
    );
    let e = load_err(
        "\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\nprotocol = \"coap\"\n",
    );
    assert_eq!(e.field.as_deref(), Some("expect[0].protocol"), "{e}");
    assert!(e.message.contains("udp"), "{e}");
    let e = load_err(
        "\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\nreliability = \"con\"\n",
    );
    assert_eq!(e.field.as_deref(), Some("expect[0].reliability"), "{e}");
}

#[test]
fn seeds_zero_and_negative_tolerance_are_refused() {
    let x = "\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\nseeds = 0\n";
    let e = load_err(x);
    assert_eq!(e.field.as_deref(), Some("expect[0].seeds"), "{e}");
    assert_eq!(e.line, Some(line_of(x, "seeds = 0")), "{e}");
    assert!(e.message.contains("out of range"), "{e}");
    let x = "\n[[expect]]\nmetric = \"delivered\"\nop = \"==\"\nvalue = 0\ntolerance = -1\n";
    let e = load_err(x);
    assert_eq!(e.field.as_deref(), Some("expect[0].tolerance"), "{e}");
    assert!(e.message.contains("negative"), "{e}");
    let e =
        load_err("\n[[expect]]\nmetric = \"delivered\"\nop = \"<\"\nvalue = 0\ntolerance = 1\n");
    assert_eq!(e.field.as_deref(), Some("expect[0].tolerance"), "{e}");
    let e = load_err("\n[[expect]]\nmetric = \"delivered_ci95\"\nop = \"<\"\nvalue = 1\n");
    assert_eq!(e.field.as_deref(), Some("expect[0].seeds"), "{e}");
    let e = load_err("\n[[expect]]\nmetric = \"delivered\"\nop = \"<\"\nvalue = 1\nbogus = 2\n");
    assert!(e.to_string().contains("bogus"), "{e}");
}

/// The columns expectations accept are the columns the writers write.
#[test]
fn metric_list_is_the_writers_list() {
    let reg = qossim::world::apps::Registry::builtin();
    assert_eq!(
        reg.metric_columns(),
        qossim::metrics::summary::METRIC_COLUMNS.to_vec()
    );
    let known = qossim::scenario::expect::known_metrics();
    for c in qossim::metrics::summary::METRIC_COLUMNS {
        assert!(known.iter().any(|k| k == c), "{c}");
        assert!(known.iter().any(|k| *k == format!("{c}_ci95")), "{c}");
    }
}

fn write_scenario(dir: &Path, file: &str, expect: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, format!("{BASE}{expect}")).expect("write scenario");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

const TRUE_AND_FALSE: &str = "
[[expect]]
name = \"something arrives\"
metric = \"delivered\"
op = \">\"
value = 0

[[expect]]
metric = \"delivery_ratio\"
op = \">=\"
value = 0.99
";

#[test]
fn run_prints_pass_and_fail_and_strict_exits_1() {
    let d = temp_dir("expect-run");
    let f = write_scenario(&d, "s.toml", TRUE_AND_FALSE);
    let out = d.join("out");
    let (code, stdout, stderr) = qossim(&["run", s(&f), "--out", s(&out)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs.csv");
    let delivered: Vec<&str> = runs.lines().nth(1).expect("row").split(',').collect();
    let header: Vec<&str> = runs.lines().next().expect("header").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).expect("column");
    let d_val = delivered[col("delivered")];
    assert!(
        stdout.contains(&format!(
            "expect something arrives [readings]: measured {d_val} → pass"
        )),
        "{stdout}"
    );
    let ratio: f64 = delivered[col("delivery_ratio")].parse().expect("ratio");
    assert!(
        ratio < 0.99,
        "the scenario's loss must make the second false"
    );
    assert!(
        stdout.contains("expect delivery_ratio >= 0.99 [readings]: measured 0.")
            && stdout.contains("→ FAIL"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("expectations.csv")).expect("expectations.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "scenario,expectation,flow,seed,measured,op,value,tolerance,pass"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        lines[1],
        format!("expect-base,something arrives,readings,1,{d_val},>,0,0,1")
    );
    assert!(
        lines[2].starts_with("expect-base,delivery_ratio >= 0.99,readings,1,0."),
        "{csv}"
    );
    assert!(lines[2].ends_with(",>=,0.99,0,0"), "{csv}");
    let (code, stdout, stderr) = qossim(&["run", s(&f), "--out", s(&out), "--strict"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("1 of 2 expectations failed"), "{stderr}");
    // all true: --strict exits 0
    let g = write_scenario(
        &d,
        "ok.toml",
        "\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\n",
    );
    let (code, stdout, stderr) = qossim(&["run", s(&g), "--out", s(&out), "--strict"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("→ pass") && !stdout.contains("FAIL"),
        "{stdout}"
    );
}

#[test]
fn seeds_run_every_seed() {
    let d = temp_dir("expect-seeds");
    let f = write_scenario(
        &d,
        "s.toml",
        "\n[[expect]]\nmetric = \"delivered\"\nop = \">=\"\nvalue = 0\nseeds = 3\n",
    );
    let out = d.join("out");
    let (code, stdout, stderr) = qossim(&["run", s(&f), "--out", s(&out)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = std::fs::read_to_string(out.join("expectations.csv")).expect("expectations.csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let seeds: Vec<&str> = rows.iter().map(|r| r[3]).collect();
    assert_eq!(seeds, ["1", "2", "3"]);
    // each row is what a separate run with that seed measures
    for r in &rows {
        let o = d.join(format!("seed{}", r[3]));
        let (code, _, err) = qossim(&["run", s(&f), "--seed", r[3], "--out", s(&o), "--quiet"]);
        assert_eq!(code, 0, "{err}");
        let runs = std::fs::read_to_string(o.join("runs.csv")).expect("runs.csv");
        let header: Vec<&str> = runs.lines().next().expect("header").split(',').collect();
        let row: Vec<&str> = runs.lines().nth(1).expect("row").split(',').collect();
        let c = header.iter().position(|h| *h == "delivered").expect("col");
        assert_eq!(row[c], r[4], "seed {}", r[3]);
    }
    // summary-only columns: one row over the three runs, no seed
    let g = write_scenario(
        &d,
        "ci.toml",
        "\n[[expect]]\nmetric = \"runs\"\nop = \"==\"\nvalue = 3\nseeds = 3\n\n[[expect]]\nmetric = \"delivered_ci95\"\nop = \">=\"\nvalue = 0\nseeds = 3\n",
    );
    let (code, stdout, stderr) = qossim(&["run", s(&g), "--out", s(&out), "--strict"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = std::fs::read_to_string(out.join("expectations.csv")).expect("expectations.csv");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with("expect-base,runs == 3,readings,,3,"),
        "{csv}"
    );
}

/// A minimal XML well-formedness check: balanced, properly nested tags,
/// quoted attributes, only the five predefined entities or numeric ones.
/// Returns the element names in document order.
fn xml_elements(text: &str) -> Vec<String> {
    let body = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        check_text(&rest[..i]);
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{tag}"
        );
        // attributes: name="value" pairs
        let mut attrs = tag[name.len()..].trim();
        while !attrs.is_empty() {
            let eq = attrs.find("=\"").expect("attribute without =\"");
            let close = attrs[eq + 2..].find('"').expect("unterminated attribute") + eq + 2;
            let value = &attrs[eq + 2..close];
            assert!(!value.contains('<'), "{value}");
            check_text(value);
            attrs = attrs[close + 1..].trim_start();
        }
        names.push(name.clone());
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    names
}

fn check_text(t: &str) {
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        let end = rest[i..].find(';').expect("unterminated entity") + i;
        let ent = &rest[i + 1..end];
        assert!(
            ["amp", "lt", "gt", "quot", "apos"].contains(&ent)
                || (ent.starts_with('#') && ent[1..].chars().all(|c| c.is_ascii_digit())),
            "bad entity &{ent};"
        );
        rest = &rest[end + 1..];
    }
}

fn python_parses(path: &Path) -> Option<bool> {
    let st = Command::new("python3")
        .args([
            "-c",
            "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])",
            s(path),
        ])
        .status()
        .ok()?;
    Some(st.success())
}

#[test]
fn test_command_exit_codes_table_and_junit() {
    let d = temp_dir("expect-test");
    let suite = d.join("suite");
    std::fs::create_dir_all(suite.join("sub")).expect("mkdir");
    // one file with a false expectation (and markup in its name), one all
    // true in a subdirectory, one without expectations (skipped)
    write_scenario(
        &suite,
        "a.toml",
        "\n[[expect]]\nname = \"ratio <high> & \\\"quoted\\\"\"\nmetric = \"delivery_ratio\"\nop = \">=\"\nvalue = 0.99\n\n[[expect]]\nmetric = \"delivered\"\nop = \">\"\nvalue = 0\n",
    );
    write_scenario(
        &suite.join("sub"),
        "b.toml",
        "\n[[expect]]\nmetric = \"retransmissions\"\nop = \"==\"\nvalue = 0\n",
    );
    write_scenario(&suite, "plain.toml", "");
    // a link back up the tree is not followed (it would never end)
    std::os::unix::fs::symlink(&suite, suite.join("sub/loop")).expect("symlink");
    let out = d.join("out");
    let junit = d.join("j/junit.xml");
    let (code, stdout, stderr) =
        qossim(&["test", s(&suite), "--out", s(&out), "--junit", s(&junit)]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let fail_line = stdout
        .lines()
        .find(|l| l.ends_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL row:\n{stdout}"));
    assert!(fail_line.contains("a.toml"), "{fail_line}");
    assert!(
        fail_line.contains("ratio <high> & \"quoted\""),
        "{fail_line}"
    );
    let csv = std::fs::read_to_string(
        out.join(format!(
            "{}__a",
            s(&suite).trim_start_matches('/').replace('/', "__")
        ))
        .join("expectations.csv"),
    )
    .expect("a's expectations.csv");
    let measured = csv
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .nth(4)
        .expect("measured")
        .to_string();
    assert!(fail_line.contains(&measured), "{fail_line} / {measured}");
    assert!(
        stdout.contains("3 expectations in 2 scenarios: 2 passed, 1 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 3 expectations failed"), "{stderr}");
    // JUnit: well-formed, one testcase per expectation, the failure's message
    let xml = std::fs::read_to_string(&junit).expect("junit");
    let names = xml_elements(&xml);
    assert_eq!(
        names.iter().filter(|n| *n == "testsuite").count(),
        2,
        "{xml}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "testcase").count(),
        3,
        "{xml}"
    );
    assert_eq!(names.iter().filter(|n| *n == "failure").count(), 1, "{xml}");
    assert!(
        xml.contains(&format!(
            "<failure message=\"measured {measured}, expected &gt;= 0.99\""
        )),
        "{xml}"
    );
    assert!(
        xml.contains("ratio &lt;high&gt; &amp; &quot;quoted&quot;"),
        "{xml}"
    );
    if let Some(ok) = python_parses(&junit) {
        assert!(ok, "python's minidom rejects {xml}");
    }
    // all true: exit 0
    let (code, stdout, stderr) = qossim(&["test", s(&suite.join("sub")), "--out", s(&out)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("1 expectations in 1 scenarios: 1 passed, 0 failed"),
        "{stdout}"
    );
    // bad input: a broken scenario, no scenario with expectations, a missing path
    let broken = d.join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    write_scenario(
        &broken,
        "bad.toml",
        "\n[[expect]]\nmetric = \"delivery_ration\"\nop = \">=\"\nvalue = 0.99\n",
    );
    let (code, _, stderr) = qossim(&["test", s(&broken), "--out", s(&out)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("delivery_ratio"),
        "{stderr}"
    );
    std::fs::write(broken.join("bad.toml"), "name = \"x\"\n[[expect]\n").expect("write");
    let (code, _, stderr) = qossim(&["test", s(&broken), "--out", s(&out)]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = qossim(&["test", s(&suite.join("plain.toml")), "--out", s(&out)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no scenario with [[expect]]"), "{stderr}");
    let (code, _, stderr) = qossim(&["test", s(&d.join("nosuch")), "--out", s(&out)]);
    assert_eq!(code, 2, "{stderr}");
    // internal error: results cannot be written (--out below a file)
    let file = d.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let (code, _, stderr) = qossim(&["test", s(&suite.join("sub")), "--out", s(&file.join("o"))]);
    assert_eq!(code, 3, "{stderr}");
}

fn test_with_threads(threads: &str, out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .current_dir(root)
        .env("RAYON_NUM_THREADS", threads)
        .args(["test", "scenarios/regression/", "--out", s(out)])
        .output()
        .expect("run qossim");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with("results: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn test_output_is_the_same_with_one_or_two_threads() {
    let d = temp_dir("expect-threads");
    let (a, b) = (d.join("t1"), d.join("t2"));
    let ta = test_with_threads("1", &a);
    let tb = test_with_threads("2", &b);
    assert_eq!(ta, tb);
    assert!(ta.lines().count() > 8, "{ta}");
    let mut dirs: Vec<_> = std::fs::read_dir(&a)
        .expect("out")
        .map(|e| e.expect("entry").file_name())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8);
    for name in dirs {
        for f in ["expectations.csv", "runs.csv"] {
            let x = std::fs::read(a.join(&name).join(f)).expect("read");
            let y = std::fs::read(b.join(&name).join(f)).expect("read");
            assert!(x == y, "{name:?}/{f} differs between 1 and 2 threads");
        }
    }
}
