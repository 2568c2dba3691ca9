//! `synthetic-cluster`: writes a synthetic Kubernetes cluster's usage as OpenMetrics, for
//! `promtool tsdb create-blocks-from openmetrics` (the recommender's benchmark and the demo).
//!
//! One file per two hours of data (`OUT/slice-NNNN.om`), so promtool reads each once.
//! Namespaces of 20 containers; every fifth container runs 2 pods, every seventh has no limits,
//! every eleventh is nearly idle. The same arguments always write the same samples; the
//! recommender's tests compute their ground truth from the same model
//! (`rivulet_testkit::synthetic`).

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rivulet_testkit::synthetic::{Cluster, Container};

/// Writes a synthetic cluster's usage as OpenMetrics slices.
#[derive(Debug, Parser)]
#[command(name = "synthetic-cluster", version, about)]
struct Args {
    /// Containers (20 per namespace).
    #[arg(long, default_value_t = 60)]
    containers: usize,
    /// Days of data, ending at `--end`.
    #[arg(long, default_value_t = 15)]
    days: i64,
    /// Minutes between samples.
    #[arg(long, default_value_t = 5)]
    every_minutes: i64,
    /// Where the slices go (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Unix time (seconds) of the last sample.
    #[arg(long)]
    end: i64,
}

/// The cluster the arguments describe.
fn cluster(args: &Args) -> Cluster {
    let containers = (0..args.containers)
        .map(|i| {
            let name = format!("app-{i:04}");
            let n = u32::try_from(i).unwrap_or(u32::MAX);
            Container {
                namespace: format!("ns-{:03}", i / 20),
                workload: name.clone(),
                workload_type: if i % 3 == 0 {
                    "statefulset"
                } else {
                    "deployment"
                }
                .into(),
                container: name.clone(),
                image: format!("registry.example/{name}:1"),
                pods: if i % 5 == 0 { 2 } else { 1 },
                cpu: if i % 11 == 0 {
                    (0, 1)
                } else {
                    (
                        100 + n.wrapping_mul(37) % 900,
                        64 + n.wrapping_mul(13) % 400,
                    )
                },
                memory: (64 + n.wrapping_mul(29) % 1024, 50 + n.wrapping_mul(7) % 500),
                requests: Some((0.5, 536_870_912.0)),
                limits: (i % 7 != 0).then_some((1.0, 1_073_741_824.0)),
                minutes: args.days * 1440,
            }
        })
        .collect();
    Cluster {
        containers,
        end: args.end,
        ..Cluster::default()
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cluster = cluster(&args);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {:?}", args.out))?;
    let total = args.days * 1440;
    for (k, start) in (0..total).step_by(120).enumerate() {
        let path = args.out.join(format!("slice-{k:04}.om"));
        let file = std::fs::File::create(&path).with_context(|| format!("creating {path:?}"))?;
        let mut out = BufWriter::new(file);
        cluster
            .write_openmetrics_minutes(&mut out, args.every_minutes, start..start + 120)
            .with_context(|| format!("writing {path:?}"))?;
    }
    Ok(())
}
