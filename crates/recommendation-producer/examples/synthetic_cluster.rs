//! Writes a synthetic cluster as OpenMetrics for `scripts/bench-recommender`.
//!
//! Usage: `synthetic_cluster CONTAINERS DAYS EVERY_MINUTES OUT_DIR END_UNIX_SECONDS`: one
//! OpenMetrics file per two hours of data (`OUT_DIR/slice-NNNN.om`), so promtool reads each
//! once.
//! Namespaces of 20 containers; every fifth container runs 2 pods, every seventh has no
//! limits, every eleventh is nearly idle.

#![allow(clippy::unwrap_used)] // a tool: a failed unwrap is a failed run

use std::io::BufWriter;

use rivulet_recommendation_producer::synthetic::{Cluster, Container};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args[0].parse().unwrap();
    let days: i64 = args[1].parse().unwrap();
    let every: i64 = args[2].parse().unwrap();
    let end: i64 = args[4].parse().unwrap();
    let containers = (0..n)
        .map(|i| {
            let name = format!("app-{i:04}");
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
                    (100 + (i as u32 * 37) % 900, 64 + (i as u32 * 13) % 400)
                },
                memory: (64 + (i as u32 * 29) % 1024, 50 + (i as u32 * 7) % 500),
                requests: Some((0.5, 536_870_912.0)),
                limits: (i % 7 != 0).then_some((1.0, 1_073_741_824.0)),
                minutes: days * 1440,
            }
        })
        .collect();
    let cluster = Cluster {
        containers,
        end,
        ..Cluster::default()
    };
    let total = days * 1440;
    for (k, start) in (0..total).step_by(120).enumerate() {
        let path = std::path::Path::new(&args[3]).join(format!("slice-{k:04}.om"));
        let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
        cluster
            .write_openmetrics_minutes(&mut out, every, start..start + 120)
            .unwrap();
    }
}
