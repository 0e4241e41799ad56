//! Draw the scaling curve and rewrite BENCHMARKS.md's scaling block from
//! the CSV `scripts/bench-scaling.sh` writes (`qossim::report::scaling`).
//!
//! ```text
//! cargo run --release --example scaling_chart -- --csv target/bench-scaling/scaling.csv \
//!     --png docs/img/scaling.png --markdown BENCHMARKS.md \
//!     --command "scripts/bench-scaling.sh 1000 10000" --date "2026-12-07" --load "0.50 0.40 0.30" \
//!     --version "qossim 0123abc"
//! ```

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// The measurements (clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s).
    #[arg(long)]
    csv: PathBuf,
    /// Where the chart goes.
    #[arg(long)]
    png: PathBuf,
    /// The markdown file whose `<!-- scaling:begin -->` … `<!-- scaling:end -->` block is rewritten.
    #[arg(long)]
    markdown: PathBuf,
    /// How the markdown links the chart (default: the --png path).
    #[arg(long)]
    image: Option<String>,
    /// The command that measured, quoted in the block.
    #[arg(long)]
    command: String,
    /// When it was measured.
    #[arg(long)]
    date: String,
    /// The machine's load average before the runs (`uptime`).
    #[arg(long)]
    load: String,
    /// What was measured (e.g. `qossim <git hash>`).
    #[arg(long)]
    version: String,
}

fn main() {
    let a = Args::parse();
    let image = a.image.unwrap_or_else(|| a.png.display().to_string());
    if let Err(e) = qossim::report::scaling::update(
        &a.csv,
        &a.png,
        &a.markdown,
        &image,
        &qossim::report::scaling::Provenance {
            command: &a.command,
            date: &a.date,
            load: &a.load,
            version: &a.version,
        },
    ) {
        eprintln!("scaling_chart: {e}");
        std::process::exit(1);
    }
}
