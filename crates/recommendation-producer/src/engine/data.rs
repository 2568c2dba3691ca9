//! The engine's input: per 15-minute interval, aggregates of each container metric.

use std::collections::BTreeMap;

/// Aggregates of one metric over one interval, as the range queries return them (each from
/// its own query, so any may be missing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Agg {
    /// Mean.
    pub avg: Option<f64>,
    /// Minimum.
    pub min: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
    /// Sum over the container's pods.
    pub sum: Option<f64>,
}

impl Agg {
    /// Mean, min and max of a window's values, no sum (a namespace-wide series, one per
    /// namespace); empty when there are none.
    pub fn window(values: &[f64]) -> Agg {
        if values.is_empty() {
            return Agg::default();
        }
        Agg {
            avg: Some(values.iter().sum::<f64>() / values.len() as f64),
            min: values.iter().copied().reduce(f64::min),
            max: values.iter().copied().reduce(f64::max),
            sum: None,
        }
    }

    /// Every aggregate the same value (a constant series).
    pub fn flat(v: f64) -> Agg {
        Agg {
            avg: Some(v),
            min: Some(v),
            max: Some(v),
            sum: Some(v),
        }
    }
}

/// The metrics of one container in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Interval {
    /// CPU request, cores.
    pub cpu_request: Agg,
    /// CPU limit, cores.
    pub cpu_limit: Agg,
    /// CPU usage, cores.
    pub cpu_usage: Agg,
    /// CPU throttling, cores.
    pub cpu_throttle: Agg,
    /// Memory request, bytes.
    pub memory_request: Agg,
    /// Memory limit, bytes.
    pub memory_limit: Agg,
    /// Memory working set, bytes.
    pub memory_usage: Agg,
    /// Memory RSS, bytes.
    pub memory_rss: Agg,
    /// Pods running (namespace experiments: the namespace's pods; containers: none, the
    /// pods follow from the usage sums).
    pub pods: Option<f64>,
}

/// A container's intervals by end time (Unix seconds).
pub type Series = BTreeMap<i64, Interval>;

/// Pods behind an interval's figures: the pods counted (namespaces), else CPU usage sum ÷ avg,
/// else memory usage sum ÷ avg, else 0.
pub fn pods(i: &Interval) -> f64 {
    if let Some(pods) = i.pods {
        return pods;
    }
    let ratio = |a: &Agg| match (a.sum, a.avg) {
        (Some(s), Some(v)) if v != 0.0 => Some(s / v),
        _ => None,
    };
    ratio(&i.cpu_usage)
        .or_else(|| ratio(&i.memory_usage))
        .unwrap_or(0.0)
}
