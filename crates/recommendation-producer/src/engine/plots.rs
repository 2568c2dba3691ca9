//! Box plots of CPU and memory usage per bucket of a term.

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::{Interval, Series};
use super::model::{cpu_interval, memory_interval};
use super::stats::percentile;
use super::terms::Term;

/// One box.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Box {
    /// Smallest interval minimum (0 when any is 0).
    pub min: f64,
    /// 25th percentile of the interval maxima.
    pub q1: f64,
    /// 50th.
    pub median: f64,
    /// 75th.
    pub q3: f64,
    /// Largest interval maximum.
    pub max: f64,
    /// `cores` or `bytes`.
    pub format: &'static str,
}

/// A bucket: both boxes, or `{}` when the bucket has no data.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// CPU usage.
    #[serde(rename = "cpuUsage", skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<Box>,
    /// Memory usage.
    #[serde(rename = "memoryUsage", skip_serializing_if = "Option::is_none")]
    pub memory_usage: Option<Box>,
}

/// A term's plots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plots {
    /// Number of buckets.
    pub datapoints: usize,
    /// Buckets by their end time.
    pub plots_data: BTreeMap<String, Bucket>,
}

fn boxed(figures: &[(f64, f64)], format: &'static str) -> Option<Box> {
    let maxes: Vec<f64> = figures.iter().map(|f| f.0).collect();
    let mins = figures.iter().map(|f| f.1);
    let min = if mins.clone().any(|m| m == 0.0) {
        0.0
    } else {
        mins.fold(f64::INFINITY, f64::min)
    };
    Some(Box {
        min,
        q1: percentile(25.0, &maxes)?,
        median: percentile(50.0, &maxes)?,
        q3: percentile(75.0, &maxes)?,
        max: maxes.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        format,
    })
}

/// The term's buckets `(start + (k−1)·w, start + k·w]`, keyed by their end formatted with
/// `stamp`.
pub fn plots(term: Term, series: &Series, end: i64, stamp: impl Fn(i64) -> String) -> Plots {
    let (count, width) = term.buckets();
    let start = term.start(end);
    let mut plots_data = BTreeMap::new();
    for k in 1..=count {
        let (low, high) = (start + (k - 1) * width, start + k * width);
        let intervals: Vec<&Interval> = series.range(low + 1..=high).map(|(_, i)| i).collect();
        let cpu: Vec<(f64, f64)> = intervals.iter().map(|i| cpu_interval(i)).collect();
        let memory: Vec<(f64, f64)> = intervals
            .iter()
            .map(|i| {
                let (max, min, _) = memory_interval(i);
                (max, min)
            })
            .collect();
        let bucket = Bucket {
            cpu_usage: boxed(&cpu, "cores"),
            memory_usage: boxed(&memory, "bytes"),
        };
        plots_data.insert(stamp(high), bucket);
    }
    Plots {
        datapoints: count as usize,
        plots_data,
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::{Agg, Parts};
    use super::*;

    #[test]
    fn short_term_has_four_six_hour_buckets() {
        let end = 1_700_006_400; // a multiple of 6 h is not needed: buckets follow the end
        let mut series = Series::new();
        for k in 0..8 {
            // Two points in the last bucket only... and four in the first.
            let t = if k < 4 {
                end - 86_400 + 900 * (k + 1)
            } else {
                end - 900 * (k - 4)
            };
            series.insert(
                t,
                Interval::from(Parts {
                    cpu_usage: Agg::flat(0.1 * (k + 1) as f64),
                    memory_usage: Agg::flat(1000.0),
                    ..Parts::default()
                }),
            );
        }
        let p = plots(Term::Short, &series, end, |t| t.to_string());
        assert_eq!(p.datapoints, 4);
        let keys: Vec<i64> = p
            .plots_data
            .keys()
            .map(|k| k.parse().unwrap_or(0))
            .collect();
        let mut want = vec![end - 3 * 21_600, end - 2 * 21_600, end - 21_600, end];
        want.sort_by_key(|t| t.to_string());
        assert_eq!(keys, want);
        let first = &p.plots_data[&(end - 3 * 21_600).to_string()];
        let cpu = first.cpu_usage.as_ref().map(|b| (b.q1, b.median, b.max));
        assert_eq!(cpu.map(|c| c.2), Some(0.4));
        assert_eq!(
            p.plots_data[&(end - 21_600).to_string()],
            Bucket::default(),
            "empty bucket"
        );
    }
}
