//! docs/cluster.md's recipes, run locally: the Slurm array script with the
//! variables Slurm would set, and the GNU parallel line when `parallel` is
//! installed; both merged results equal a single-machine sweep.

mod common;
use common::temp_dir;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn whole_sweep(out: &Path, scenario: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .args(["sweep"])
        .arg(scenario)
        .args(["--quiet", "--out"])
        .arg(out)
        .status()
        .expect("sweep");
    assert!(st.success());
}

fn merge(parts: &[&Path], out: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_qossim"))
        .arg("merge")
        .args(parts)
        .arg("--out")
        .arg(out)
        .status()
        .expect("merge");
    assert!(st.success());
}

fn same_tables(a: &Path, b: &Path) {
    for f in ["runs.csv", "summary.csv", "messages.csv"] {
        assert!(
            std::fs::read(a.join(f)).ok() == std::fs::read(b.join(f)).ok(),
            "{f} differs"
        );
    }
}

#[test]
fn slurm_array_script_dry_run() {
    let scenario = root().join("tests/fixtures/sweep-small.toml");
    let shards = temp_dir("slurm-shards");
    for k in 1..=3 {
        let st = Command::new("bash")
            .arg(root().join("scripts/slurm-sweep.sh"))
            .arg(&scenario)
            .arg(&shards)
            .env("QOSSIM", env!("CARGO_BIN_EXE_qossim"))
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_CPUS_PER_TASK", "1")
            .status()
            .expect("bash");
        assert!(st.success(), "array task {k}");
    }
    // without Slurm's variables the script refuses to run
    let st = Command::new("bash")
        .arg(root().join("scripts/slurm-sweep.sh"))
        .arg(&scenario)
        .arg(&shards)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .expect("bash");
    assert!(!st.status.success());
    let merged = temp_dir("slurm-merged");
    merge(
        &[&shards.join("1"), &shards.join("2"), &shards.join("3")],
        &merged,
    );
    let whole = temp_dir("slurm-whole");
    whole_sweep(&whole, &scenario);
    same_tables(&whole, &merged);
}

#[test]
fn gnu_parallel_line() {
    let has_parallel = Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_parallel {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("GNU parallel is required when CI=true (scripts/test.sh installs it)");
        }
        eprintln!("gnu_parallel_line: SKIPPED — GNU parallel not installed");
        return;
    }
    let scenario = root().join("tests/fixtures/sweep-small.toml");
    let shards = temp_dir("parallel-shards");
    let line = format!(
        "parallel --will-cite {q} sweep {s} --shard {{}}/2 --out {d}/{{}} --quiet ::: 1 2 && {q} merge {d}/1 {d}/2 --out {d}/merged",
        q = env!("CARGO_BIN_EXE_qossim"),
        s = scenario.display(),
        d = shards.display()
    );
    let st = Command::new("bash")
        .args(["-c", &line])
        .status()
        .expect("bash");
    assert!(st.success(), "{line}");
    let whole = temp_dir("parallel-whole");
    whole_sweep(&whole, &scenario);
    same_tables(&whole, &shards.join("merged"));
}
