//! The synthetic fleets of the benchmark and the demo: namespaces of workloads with varied
//! usage, written as OpenMetrics slices for `promtool tsdb create-blocks-from openmetrics`.
//! The same arguments always give the same samples, and the recommender's tests compute the
//! ground truth from the same model ([`Cluster::expected`]).

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::synthetic::{Cluster, Container};

/// The demo's fleet (`scripts/up`): 3 namespaces of 4 workloads, 15 days of usage sampled every
/// minute, ending 2026-11-01T00:00:00Z (fixed, so the prepared data is cached for good).
pub const DEMO: Fleet = Fleet {
    containers: 12,
    per_namespace: 4,
    days: 15,
    end: 1_793_491_200,
};

/// Minutes per slice: promtool reads its whole input once per two-hour block it writes.
const SLICE_MINUTES: i64 = 120;

/// A fleet's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fleet {
    /// Containers (one per workload).
    pub containers: usize,
    /// Containers per namespace (`ns-000`, `ns-001`, …).
    pub per_namespace: usize,
    /// Days of data, ending at `end`.
    pub days: i64,
    /// Unix time (seconds) of the end of the data.
    pub end: i64,
}

impl Fleet {
    /// The cluster: every fifth container runs 2 pods, every seventh has no limits, every
    /// eleventh is nearly idle, every third is a statefulset.
    pub fn cluster(&self) -> Cluster {
        let per_namespace = self.per_namespace.max(1);
        let containers = (0..self.containers)
            .map(|i| {
                let name = format!("app-{i:04}");
                let n = u32::try_from(i).unwrap_or(u32::MAX);
                Container {
                    namespace: format!("ns-{:03}", i / per_namespace),
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
                    minutes: self.days * 1440,
                }
            })
            .collect();
        Cluster {
            containers,
            end: self.end,
            ..Cluster::default()
        }
    }
}

impl Cluster {
    /// Writes the usage as OpenMetrics files of two hours each (`OUT/slice-NNNN.om`, newest
    /// first), usage every `every` minutes; returns their paths.
    pub fn write_slices(&self, out: &Path, every: i64) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(out)?;
        let longest = self.containers.iter().map(|c| c.minutes).max().unwrap_or(0);
        let mut paths = Vec::new();
        for (k, start) in (0..longest).step_by(SLICE_MINUTES as usize).enumerate() {
            let path = out.join(format!("slice-{k:04}.om"));
            let mut file = BufWriter::new(std::fs::File::create(&path)?);
            self.write_openmetrics_minutes(&mut file, every, start..start + SLICE_MINUTES)?;
            std::io::Write::flush(&mut file)?;
            paths.push(path);
        }
        Ok(paths)
    }
}
