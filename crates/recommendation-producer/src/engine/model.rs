//! The cost and performance models: per-interval CPU and memory figures and the recommended
//! requests (limits are the same values).

use super::data::{Interval, pods};
use super::stats::percentile;

/// A recommendation model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Model {
    /// Cheaper: CPU at the 60th percentile.
    Cost,
    /// Safer: CPU at the 98th percentile.
    Performance,
}

impl Model {
    /// Both, in output order.
    pub const ALL: [Model; 2] = [Model::Cost, Model::Performance];

    /// Its key in the output.
    pub fn key(self) -> &'static str {
        match self {
            Model::Cost => "cost",
            Model::Performance => "performance",
        }
    }

    /// CPU percentile.
    pub fn cpu_percentile(self) -> f64 {
        match self {
            Model::Cost => 60.0,
            Model::Performance => 98.0,
        }
    }

    /// Memory percentile (both take the maximum).
    pub fn memory_percentile(self) -> f64 {
        100.0
    }
}

/// Below this many cores a container is idle: no CPU recommendation.
pub const IDLE_CORES: f64 = 0.001;
/// Memory headroom over the peak.
pub const MEMORY_USAGE_BUFFER: f64 = 0.20;
/// Headroom over the biggest spike.
pub const MEMORY_SPIKE_BUFFER: f64 = 0.05;

/// CPU of one interval: (interval max, interval min).
pub fn cpu_interval(i: &Interval) -> (f64, f64) {
    let pick = |max: Option<f64>, avg: Option<f64>| match max {
        Some(m) if m > 0.0 => m,
        _ => avg.unwrap_or(0.0),
    };
    let usage = pick(i.cpu_usage().max, i.cpu_usage().avg);
    let throttle = pick(i.cpu_throttle().max, i.cpu_throttle().avg);
    let total = usage + throttle;
    let (interval_max, per_pod) = if total < 1.0 {
        (total, 0.0)
    } else {
        let pods = pods(i);
        let sum = i.cpu_usage().sum.unwrap_or(0.0) + i.cpu_throttle().sum.unwrap_or(0.0);
        let per_pod = if pods > 0.0 { sum / pods } else { 0.0 };
        (per_pod.max(total), per_pod)
    };
    let floor = i.cpu_usage().min.unwrap_or(0.0) + i.cpu_throttle().min.unwrap_or(0.0);
    (interval_max, smallest_positive(&[per_pod, total, floor]))
}

/// Memory of one interval: (interval max, interval min, spike).
pub fn memory_interval(i: &Interval) -> (f64, f64, f64) {
    let pods = pods(i);
    let per_pod = match i.memory_usage().sum {
        Some(s) if pods > 0.0 => s / pods,
        _ => 0.0,
    };
    let max = i.memory_usage().max.unwrap_or(0.0);
    let min = i.memory_usage().min.unwrap_or(0.0);
    let spread = |a: Option<f64>, b: Option<f64>| (a.unwrap_or(0.0) - b.unwrap_or(0.0)).ceil();
    let spike = spread(i.memory_usage().max, i.memory_usage().min)
        .max(spread(i.memory_rss().max, i.memory_rss().min));
    (
        per_pod.max(max),
        smallest_positive(&[per_pod, max, min]),
        spike,
    )
}

fn smallest_positive(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .min_by(f64::total_cmp)
        .unwrap_or(0.0)
}

/// Why a resource got no recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCpu {
    /// Usage is zero (323002).
    Zero,
    /// Usage is below a millicore (323001).
    Idle,
}

/// The CPU request of `model` over the window's intervals: the peak when it is below one
/// core (both models agree then), else the model's percentile of the interval maxima.
pub fn cpu_request(model: Model, intervals: &[&Interval]) -> Result<f64, NoCpu> {
    let maxes: Vec<f64> = intervals.iter().map(|i| cpu_interval(i).0).collect();
    let peak = maxes.iter().copied().fold(0.0, f64::max);
    let value = if peak < 1.0 {
        peak
    } else {
        percentile(model.cpu_percentile(), &maxes).unwrap_or(0.0)
    };
    if value == 0.0 {
        Err(NoCpu::Zero)
    } else if value <= IDLE_CORES {
        Err(NoCpu::Idle)
    } else {
        Ok(value)
    }
}

/// The memory request of `model`: min(peak × 1.2, peak + biggest spike × 1.05); `None` when
/// it is zero (324001).
pub fn memory_request(model: Model, intervals: &[&Interval]) -> Option<f64> {
    let figures: Vec<(f64, f64, f64)> = intervals.iter().map(|i| memory_interval(i)).collect();
    let usage: Vec<f64> = figures.iter().map(|f| f.0).collect();
    let spikes: Vec<f64> = figures.iter().map(|f| f.2).collect();
    let u = percentile(model.memory_percentile(), &usage)?;
    let s = percentile(model.memory_percentile(), &spikes)? * (1.0 + MEMORY_SPIKE_BUFFER);
    let value = (u * (1.0 + MEMORY_USAGE_BUFFER)).min(u + s);
    (value != 0.0).then_some(value)
}

/// `ceil(max over the intervals of ceil(cpu usage sum ÷ avg))`.
pub fn pods_count(intervals: &[&Interval]) -> i64 {
    intervals
        .iter()
        .filter_map(|i| match (i.pods(), i.cpu_usage().sum, i.cpu_usage().avg) {
            (Some(pods), _, _) => Some(pods.ceil()),
            (None, Some(s), Some(a)) if a != 0.0 => Some((s / a).ceil()),
            _ => None,
        })
        .fold(0.0, f64::max)
        .ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::super::data::{Agg, Parts};
    use super::*;

    fn cpu(usage_max: f64, usage_avg: f64, throttle: f64) -> Interval {
        Interval::from(Parts {
            cpu_usage: Agg {
                avg: Some(usage_avg),
                min: Some(usage_avg / 2.0),
                max: Some(usage_max),
                sum: Some(usage_avg),
            },
            cpu_throttle: Agg::flat(throttle),
            ..Parts::default()
        })
    }

    #[test]
    fn sub_core_containers_get_their_peak_in_both_models() {
        let a = cpu(0.2, 0.1, 0.0);
        let b = cpu(0.5, 0.3, 0.05);
        let all = [&a, &b];
        assert_eq!(cpu_request(Model::Cost, &all), Ok(0.55));
        assert_eq!(cpu_request(Model::Performance, &all), Ok(0.55));
    }

    #[test]
    fn above_a_core_the_models_take_their_percentiles() {
        let intervals: Vec<Interval> = (1..=10).map(|k| cpu(k as f64, k as f64, 0.0)).collect();
        let refs: Vec<&Interval> = intervals.iter().collect();
        // 60th percentile of 1..=10: rank round(0.6 × 9) = 5 -> 6; 98th: rank 9 -> 10.
        assert_eq!(cpu_request(Model::Cost, &refs), Ok(6.0));
        assert_eq!(cpu_request(Model::Performance, &refs), Ok(10.0));
    }

    #[test]
    fn idle_and_zero_cpu_get_no_recommendation() {
        let zero = Interval::default();
        assert_eq!(cpu_request(Model::Cost, &[&zero]), Err(NoCpu::Zero));
        let idle = cpu(0.0005, 0.0005, 0.0);
        assert_eq!(cpu_request(Model::Cost, &[&idle]), Err(NoCpu::Idle));
    }

    #[test]
    fn several_pods_count_per_pod() {
        // Two pods: usage sum 3 cores, avg 1.5, max 1.6; per pod (3 + 0) / 2 = 1.5 < 1.6.
        let i = Interval::from(Parts {
            cpu_usage: Agg {
                avg: Some(1.5),
                min: Some(1.0),
                max: Some(1.6),
                sum: Some(3.0),
            },
            ..Parts::default()
        });
        assert_eq!(cpu_interval(&i), (1.6, 1.0));
        assert_eq!(pods_count(&[&i]), 2);
    }

    #[test]
    fn memory_takes_the_smaller_of_the_two_buffers() {
        // The reference's KafkaDesign example: peak 123654144, spike 12378112.
        let i = Interval::from(Parts {
            memory_usage: Agg {
                avg: Some(100.0),
                min: Some(123_654_144.0 - 12_378_112.0),
                max: Some(123_654_144.0),
                sum: Some(100.0),
            },
            ..Parts::default()
        });
        let got = memory_request(Model::Cost, &[&i]).unwrap_or_default();
        assert!((got - 136_651_161.6).abs() < 1e-6, "{got}");
        assert_eq!(memory_request(Model::Cost, &[&Interval::default()]), None);
    }
}
