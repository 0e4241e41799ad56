//! The scaling curve's chart and BENCHMARKS.md block (issue 22 item 6,
//! `qossim::report::scaling`, the code `examples/scaling_chart.rs` runs):
//! from a small CSV it writes a PNG and replaces the marked block of a copy
//! of BENCHMARKS.md, leaving the rest of the file as it was; a file
//! without the markers or a malformed CSV is an error that writes nothing.

mod common;

use common::temp_dir;
use qossim::report::scaling::{self, BEGIN, END};
use std::path::Path;

const CSV: &str = "clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s
10000,9.10,95000,9.500,1200000,131868,9.00
1000,1.20,12000,12.000,120000,100000,1.00
100000,1200.00,900000,9.000,12000000,10000,300.00
";

fn update(dir: &Path, md: &Path) -> Result<(), String> {
    scaling::update(
        &dir.join("scaling.csv"),
        &dir.join("img/scaling.png"),
        md,
        "docs/img/scaling.png",
        &scaling::Provenance {
            command: "scripts/bench-scaling.sh 1000 10000 100000",
            date: "2026-12-07 15:00 UTC",
            load: "0.10, 0.20, 0.30",
            version: "qossim 0123abc",
        },
    )
}

#[test]
fn writes_the_chart_and_replaces_only_the_block() {
    let dir = temp_dir("scaling-chart");
    std::fs::write(dir.join("scaling.csv"), CSV).expect("write csv");
    let bench =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"))
            .expect("BENCHMARKS.md");
    let (b, e) = (
        bench.find(BEGIN).expect("begin marker"),
        bench.find(END).expect("end marker"),
    );
    let old_block = bench[b..e + END.len()].to_string();
    let md = dir.join("BENCHMARKS.md");
    std::fs::write(&md, &bench).expect("copy");
    update(&dir, &md).expect("update");

    let png = std::fs::read(dir.join("img/scaling.png")).expect("png written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "PNG of {} bytes: nothing drawn?",
        png.len()
    );

    let new = std::fs::read_to_string(&md).expect("read back");
    assert_eq!(&new[..b], &bench[..b], "text before the block changed");
    assert!(
        new.ends_with(&bench[e + END.len()..]),
        "text after the block changed"
    );
    assert!(!new.contains(&old_block), "block not replaced");
    let nb = new.find(BEGIN).expect("begin kept");
    let block = &new[nb..new.find(END).expect("end kept") + END.len()];
    // rows sorted by clients, numbers as measured, cost per client against the smallest
    let rows: Vec<&str> = block.lines().filter(|l| l.starts_with("| 1")).collect();
    assert_eq!(rows.len(), 3, "{block}");
    assert!(
        rows[0].starts_with("| 1000 | 1.20 | 1.00 | 11.7 | 12.00 | 120000 |"),
        "{}",
        rows[0]
    );
    assert!(rows[1].starts_with("| 10000 | 9.10 |"), "{}", rows[1]);
    assert!(rows[2].ends_with("| 10.00× | 3.00× |"), "{}", rows[2]);
    assert!(
        block.contains("scripts/bench-scaling.sh 1000 10000 100000"),
        "{block}"
    );
    assert!(
        block.contains("2026-12-07 15:00 UTC") && block.contains("0.10, 0.20, 0.30"),
        "{block}"
    );
    assert!(block.contains("(docs/img/scaling.png)"), "{block}");
    assert!(block.contains("with qossim 0123abc"), "{block}");

    // a second update replaces the block again rather than adding one
    update(&dir, &md).expect("update again");
    let again = std::fs::read_to_string(&md).expect("read back");
    assert_eq!(again, new);
    assert_eq!(again.matches(BEGIN).count(), 1);
}

#[test]
fn missing_markers_or_bad_rows_are_errors_that_write_nothing() {
    let dir = temp_dir("scaling-chart-bad");
    std::fs::write(dir.join("scaling.csv"), CSV).expect("write csv");
    let md = dir.join("notes.md");
    std::fs::write(&md, "# Notes\n\n<!-- scaling:begin -->\nunfinished\n").expect("write md");
    let e = update(&dir, &md).expect_err("no end marker");
    assert!(e.contains(END), "{e}");
    assert_eq!(
        std::fs::read_to_string(&md).expect("md"),
        "# Notes\n\n<!-- scaling:begin -->\nunfinished\n"
    );
    assert!(
        !dir.join("img/scaling.png").exists(),
        "chart written despite the error"
    );

    std::fs::write(&md, format!("{BEGIN}\n{END}\n")).expect("write md");
    for (csv, what) in [
        ("clients,wall_s\n1000,1.0\n", "header"),
        (
            "clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s\n1000,x,1,1,1,1,1\n",
            "wall_s",
        ),
        (
            "clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s\n0,1,1,1,1,1,1\n",
            "> 0",
        ),
        (
            "clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s\n",
            "no rows",
        ),
    ] {
        std::fs::write(dir.join("scaling.csv"), csv).expect("write csv");
        let e = update(&dir, &md).expect_err(what);
        assert!(
            e.contains("scaling.csv:") && e.contains(what),
            "{what}: {e}"
        );
        assert_eq!(
            std::fs::read_to_string(&md).expect("md"),
            format!("{BEGIN}\n{END}\n")
        );
    }
}
