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

/// The metrics of one container in one interval, spelled out: what [`Interval`] is built
/// from and unpacks to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Parts {
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

/// The metrics of one container in one interval ([`Parts`]), packed: the 33 values, and a bit
/// per value for whether it is there. 272 bytes where `Parts` takes 528 (an `Option<f64>` is
/// 16): a job holds a namespace's intervals (20 containers × 1,441) several times over while
/// they are fetched and computed, and they were most of the recommender's peak memory
/// (`heaptrack` over `scripts/bench-recommender`).
#[derive(Clone, Copy, PartialEq)]
pub struct Interval {
    /// Absent values are 0.0, so that equal intervals compare equal.
    values: [f64; VALUES],
    present: u64,
}

const VALUES: usize = 8 * 4 + 1;
const PODS: usize = VALUES - 1;

impl Default for Interval {
    fn default() -> Self {
        Interval {
            values: [0.0; VALUES],
            present: 0,
        }
    }
}

impl From<Parts> for Interval {
    fn from(parts: Parts) -> Interval {
        let mut interval = Interval::default();
        let aggs = [
            parts.cpu_request,
            parts.cpu_limit,
            parts.cpu_usage,
            parts.cpu_throttle,
            parts.memory_request,
            parts.memory_limit,
            parts.memory_usage,
            parts.memory_rss,
        ];
        for (k, agg) in aggs.into_iter().enumerate() {
            for (j, value) in [agg.avg, agg.min, agg.max, agg.sum].into_iter().enumerate() {
                interval.put(k * 4 + j, value);
            }
        }
        interval.put(PODS, parts.pods);
        interval
    }
}

impl Interval {
    fn put(&mut self, at: usize, value: Option<f64>) {
        if let Some(v) = value {
            self.values[at] = v;
            self.present |= 1 << at;
        }
    }

    fn value(&self, at: usize) -> Option<f64> {
        (self.present & (1 << at) != 0).then(|| self.values[at])
    }

    fn agg(&self, k: usize) -> Agg {
        Agg {
            avg: self.value(k * 4),
            min: self.value(k * 4 + 1),
            max: self.value(k * 4 + 2),
            sum: self.value(k * 4 + 3),
        }
    }

    /// Unpacked.
    pub fn parts(&self) -> Parts {
        Parts {
            cpu_request: self.cpu_request(),
            cpu_limit: self.cpu_limit(),
            cpu_usage: self.cpu_usage(),
            cpu_throttle: self.cpu_throttle(),
            memory_request: self.memory_request(),
            memory_limit: self.memory_limit(),
            memory_usage: self.memory_usage(),
            memory_rss: self.memory_rss(),
            pods: self.pods(),
        }
    }

    /// CPU request, cores.
    pub fn cpu_request(&self) -> Agg {
        self.agg(0)
    }
    /// CPU limit, cores.
    pub fn cpu_limit(&self) -> Agg {
        self.agg(1)
    }
    /// CPU usage, cores.
    pub fn cpu_usage(&self) -> Agg {
        self.agg(2)
    }
    /// CPU throttling, cores.
    pub fn cpu_throttle(&self) -> Agg {
        self.agg(3)
    }
    /// Memory request, bytes.
    pub fn memory_request(&self) -> Agg {
        self.agg(4)
    }
    /// Memory limit, bytes.
    pub fn memory_limit(&self) -> Agg {
        self.agg(5)
    }
    /// Memory working set, bytes.
    pub fn memory_usage(&self) -> Agg {
        self.agg(6)
    }
    /// Memory RSS, bytes.
    pub fn memory_rss(&self) -> Agg {
        self.agg(7)
    }
    /// Pods running, where counted ([`Parts::pods`]).
    pub fn pods(&self) -> Option<f64> {
        self.value(PODS)
    }
}

impl std::fmt::Debug for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.parts().fmt(f)
    }
}

/// A container's intervals by end time (Unix seconds).
pub type Series = BTreeMap<i64, Interval>;

/// Pods behind an interval's figures: the pods counted (namespaces), else CPU usage sum ÷ avg,
/// else memory usage sum ÷ avg, else 0.
pub fn pods(i: &Interval) -> f64 {
    if let Some(pods) = i.pods() {
        return pods;
    }
    let ratio = |a: &Agg| match (a.sum, a.avg) {
        (Some(s), Some(v)) if v != 0.0 => Some(s / v),
        _ => None,
    };
    ratio(&i.cpu_usage())
        .or_else(|| ratio(&i.memory_usage()))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_packs_every_value_and_every_absence() {
        let parts = Parts {
            cpu_request: Agg::flat(0.5),
            cpu_usage: Agg {
                avg: Some(0.25),
                min: None,
                max: Some(f64::NAN),
                sum: Some(-0.0),
            },
            memory_rss: Agg {
                avg: None,
                min: Some(0.0),
                max: Some(1e12),
                sum: None,
            },
            pods: Some(3.0),
            ..Parts::default()
        };
        let back = Interval::from(parts).parts();
        assert_eq!(back.cpu_request, parts.cpu_request);
        assert_eq!(back.cpu_usage.avg, Some(0.25));
        assert_eq!(back.cpu_usage.min, None, "absent stays absent, not 0.0");
        assert!(
            back.cpu_usage.max.is_some_and(f64::is_nan),
            "NaN is a value"
        );
        assert_eq!(back.memory_rss, parts.memory_rss);
        assert_eq!(back.pods, Some(3.0));
        assert_eq!(back.memory_limit, Agg::default());
        assert_eq!(Interval::from(Parts::default()), Interval::default());
        assert!(std::mem::size_of::<Interval>() <= 272);
    }
}
