//! A container's per-pod query results, accumulated per 15-minute slot and channel into
//! the cross-pod aggregates the engine reads, without an allocation per sample.

use crate::engine::data::{Agg, Interval, Parts, Series};
use crate::engine::terms::STEP_SECS;
use crate::queries::{LIMITS, REQUESTS, Raw};

/// Slots of a 15-day window at the 15-minute step, both ends included.
const SLOTS: usize = (15 * 86_400 / STEP_SECS) as usize + 1;

/// What one per-pod query contributes to an interval (requests and limits split by resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Channel {
    CpuRequest,
    MemoryRequest,
    CpuLimit,
    MemoryLimit,
    Throttle,
    /// Per pod and interval, the mean, min and max of the pod's samples; across pods, their
    /// count and sum of means, least min and greatest max (one accumulator).
    Cpu,
    Memory,
    Rss,
}

const CHANNELS: usize = 8;

impl Channel {
    /// The channel of a ranged query's series: requests and limits by metric (`__name__`),
    /// `resource` and `unit`, only the pairs (cpu, core) and (memory, byte).
    pub(super) fn of(raw: Raw, name: &str, resource: &str, unit: &str) -> Option<Channel> {
        Some(match (raw, name, resource, unit) {
            (Raw::Resources, REQUESTS, "cpu", "core") => Channel::CpuRequest,
            (Raw::Resources, REQUESTS, "memory", "byte") => Channel::MemoryRequest,
            (Raw::Resources, LIMITS, "cpu", "core") => Channel::CpuLimit,
            (Raw::Resources, LIMITS, "memory", "byte") => Channel::MemoryLimit,
            (Raw::Throttle, ..) => Channel::Throttle,
            _ => return None,
        })
    }

    /// The channel of a sampled query.
    pub(super) fn windowed(raw: Raw) -> Option<Channel> {
        Some(match raw {
            Raw::Cpu => Channel::Cpu,
            Raw::Memory => Channel::Memory,
            Raw::Rss => Channel::Rss,
            _ => return None,
        })
    }
}

/// Count, sum, min and max of the pod values of one channel in one slot.
#[derive(Clone, Copy, Debug)]
struct Acc {
    n: u32,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    fn push(&mut self, v: f64) {
        self.push_window(v, v, v);
    }

    /// One pod's window: its mean is summed, its min and max kept if they are the extremes.
    fn push_window(&mut self, mean: f64, least: f64, most: f64) {
        self.n += 1;
        self.sum += mean;
        self.min = self.min.min(least);
        self.max = self.max.max(most);
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
    fn least(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }
    fn most(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
    fn total(&self) -> Option<f64> {
        (self.n > 0).then_some(self.sum)
    }
}

/// A container's accumulators over the window.
pub(super) struct Grid(Vec<[Acc; CHANNELS]>);

impl Grid {
    pub(super) fn new() -> Grid {
        Grid(vec![[Acc::default(); CHANNELS]; SLOTS])
    }

    pub(super) fn add(&mut self, start: i64, t: i64, channel: Channel, v: f64) {
        let offset = t - start;
        if offset < 0 || offset % STEP_SECS != 0 {
            return;
        }
        let Some(slot) = self.0.get_mut((offset / STEP_SECS) as usize) else {
            return;
        };
        slot[channel as usize].push(v);
    }

    /// One pod's raw samples (time order): per 15-minute interval ending at `t`, the pod's
    /// mean, min and max go to `channel`, as `avg_over_time`,
    /// `min_over_time` and `max_over_time` give them per series. Intervals are `(t − 15m, t]`,
    /// or `[t − 15m, t]` when `closed` (Prometheus 2.x: a sample exactly on a boundary is in
    /// both neighbouring intervals; `prometheus::Windows`).
    pub(super) fn add_samples(
        &mut self,
        start: i64,
        samples: &[(f64, f64)],
        channel: Channel,
        closed: bool,
    ) {
        let mut current: Option<(usize, Acc)> = None;
        let step = STEP_SECS as f64;
        for &(t, v) in samples.iter().filter(|(_, v)| v.is_finite()) {
            let position = (t - start as f64) / step;
            let k = position.ceil();
            self.push_sample(&mut current, k, v, channel);
            if closed && k == position {
                // The start of the next interval too.
                self.push_sample(&mut current, k + 1.0, v, channel);
            }
        }
        if let Some((slot, acc)) = current {
            self.add_window(slot, &acc, channel);
        }
    }

    /// Adds `v` to slot `k`'s window in progress (`current`), closing the previous one.
    fn push_sample(
        &mut self,
        current: &mut Option<(usize, Acc)>,
        k: f64,
        v: f64,
        channel: Channel,
    ) {
        if k < 0.0 || k >= SLOTS as f64 {
            return;
        }
        let k = k as usize;
        match current {
            Some((slot, acc)) if *slot == k => acc.push(v),
            _ => {
                if let Some((slot, acc)) = current.take() {
                    self.add_window(slot, &acc, channel);
                }
                let mut acc = Acc::default();
                acc.push(v);
                *current = Some((k, acc));
            }
        }
    }

    fn add_window(&mut self, slot: usize, window: &Acc, channel: Channel) {
        let (Some(m), Some(lo), Some(hi)) = (window.mean(), window.least(), window.most()) else {
            return;
        };
        self.0[slot][channel as usize].push_window(m, lo, hi);
    }

    /// The cross-pod aggregates per interval, as the reference's `<fn> by (container,
    /// namespace)` queries give them; slots without any value are left out.
    ///
    /// Collected, not inserted one by one: `BTreeMap`'s `FromIterator` builds full nodes from
    /// sorted input, where ascending inserts leave every node split half empty. Fetched series
    /// waiting to be recorded were most of the service's peak heap (`heaptrack` over
    /// `scripts/bench-recommender`: 84 of 115 MB before; 15 of 63 MB with collected, packed
    /// intervals).
    pub(super) fn series(&self, start: i64) -> Series {
        let intervals = self.0.iter().enumerate().filter_map(|(k, slot)| {
            if slot.iter().all(|a| a.n == 0) {
                return None;
            }
            let flat = |c: Channel| {
                let a = &slot[c as usize];
                Agg {
                    avg: a.mean(),
                    min: a.least(),
                    max: a.most(),
                    sum: a.total(),
                }
            };
            let interval = Interval::from(Parts {
                cpu_request: flat(Channel::CpuRequest),
                cpu_limit: flat(Channel::CpuLimit),
                cpu_usage: flat(Channel::Cpu),
                cpu_throttle: flat(Channel::Throttle),
                memory_request: flat(Channel::MemoryRequest),
                memory_limit: flat(Channel::MemoryLimit),
                memory_usage: flat(Channel::Memory),
                memory_rss: flat(Channel::Rss),
                pods: None,
            });
            Some((start + k as i64 * STEP_SECS, interval))
        });
        intervals.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_keep_only_what_the_or_queries_selected() {
        let of = |name, resource, unit| Channel::of(Raw::Resources, name, resource, unit);
        assert_eq!(of(REQUESTS, "cpu", "core"), Some(Channel::CpuRequest));
        assert_eq!(of(REQUESTS, "memory", "byte"), Some(Channel::MemoryRequest));
        assert_eq!(of(LIMITS, "cpu", "core"), Some(Channel::CpuLimit));
        assert_eq!(of(LIMITS, "memory", "byte"), Some(Channel::MemoryLimit));
        // Pairs the selector's regexes admit but `m{cpu,core} or m{memory,byte}` did not.
        assert_eq!(of(REQUESTS, "memory", "core"), None);
        assert_eq!(of(LIMITS, "cpu", "byte"), None);
        assert_eq!(of("other", "cpu", "core"), None);
        assert_eq!(
            Channel::of(Raw::Throttle, "", "", ""),
            Some(Channel::Throttle)
        );
    }

    /// Samples at 0, 300, 600 and 900 s after `start` (the last on the boundary), then 1200.
    fn memory(closed: bool) -> Series {
        let start = 1_000_000_200; // a multiple of 900
        let samples: Vec<(f64, f64)> = [(0, 1.0), (300, 2.0), (600, 3.0), (900, 4.0), (1200, 8.0)]
            .iter()
            .map(|&(dt, v)| ((start + dt) as f64, v))
            .collect();
        let mut grid = Grid::new();
        let channel = Channel::windowed(Raw::Memory).unwrap();
        grid.add_samples(start, &samples, channel, closed);
        grid.series(start)
    }

    #[test]
    fn a_boundary_sample_is_in_both_intervals_only_when_closed() {
        let start = 1_000_000_200;
        let open = memory(false);
        // (t − 15m, t]: the sample at `start` ends slot 0; 300, 600, 900 make slot 1.
        assert_eq!(open[&(start + 900)].memory_usage().avg, Some(3.0));
        assert_eq!(open[&(start + 1800)].memory_usage().avg, Some(8.0));
        let closed = memory(true);
        // [t − 15m, t]: slot 1 also holds the sample at `start`; slot 2 the one at 900.
        assert_eq!(closed[&(start + 900)].memory_usage().avg, Some(2.5));
        assert_eq!(closed[&(start + 900)].memory_usage().min, Some(1.0));
        assert_eq!(closed[&(start + 1800)].memory_usage().avg, Some(6.0));
        assert_eq!(closed[&(start + 1800)].memory_usage().min, Some(4.0));
        assert_eq!(closed[&start].memory_usage().max, Some(1.0));
    }
}
