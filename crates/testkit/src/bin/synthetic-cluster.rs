//! `synthetic-cluster`: writes a synthetic Kubernetes fleet's usage as OpenMetrics, for
//! `promtool tsdb create-blocks-from openmetrics` (the recommender's benchmark and the demo).
//!
//! One file per two hours of data (`OUT/slice-NNNN.om`), so promtool reads each once. The
//! fleet is `rivulet_testkit::fleet::Fleet`; `--demo` is the demo's (`fleet::DEMO`). The same
//! arguments always write the same samples; the recommender's tests compute their ground truth
//! from the same model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rivulet_testkit::fleet::{DEMO, Fleet};

/// Writes a synthetic fleet's usage as OpenMetrics slices.
#[derive(Debug, Parser)]
#[command(name = "synthetic-cluster", version, about)]
struct Args {
    /// The demo's fleet (12 containers in 3 namespaces, 15 days, every minute, ending
    /// 2026-11-01); the shape flags are then ignored.
    #[arg(long)]
    demo: bool,
    /// Containers.
    #[arg(long, default_value_t = 60)]
    containers: usize,
    /// Containers per namespace.
    #[arg(long, default_value_t = 20)]
    per_namespace: usize,
    /// Days of data, ending at `--end`.
    #[arg(long, default_value_t = 15)]
    days: i64,
    /// Minutes between usage samples (the recommender's ground truth assumes 1).
    #[arg(long, default_value_t = 5)]
    every_minutes: i64,
    /// Where the slices go (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Unix time (seconds) of the end of the data.
    #[arg(long, default_value_t = DEMO.end)]
    end: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (fleet, every) = if args.demo {
        (DEMO, 1)
    } else {
        let fleet = Fleet {
            containers: args.containers,
            per_namespace: args.per_namespace,
            days: args.days,
            end: args.end,
        };
        (fleet, args.every_minutes)
    };
    let written = fleet
        .cluster()
        .write_slices(&args.out, every)
        .with_context(|| format!("writing slices into {:?}", args.out))?;
    eprintln!("{} slices in {}", written.len(), args.out.display());
    Ok(())
}
