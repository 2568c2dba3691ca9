//! A container's per-pod query results, accumulated per 15-minute slot and channel into
//! the cross-pod aggregates the engine reads, without an allocation per sample.

use crate::engine::data::{Agg, Interval, Series};
use crate::engine::terms::STEP_SECS;
use crate::queries::Raw;

/// Slots of a 15-day window at the 15-minute step, both ends included.
const SLOTS: usize = (15 * 86_400 / STEP_SECS) as usize + 1;

/// What one per-pod query contributes to an interval (requests and limits split by resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Channel {
    CpuRequest,
    MemoryRequest,
    CpuLimit,
    MemoryLimit,
    CpuAvg,
    CpuMin,
    CpuMax,
    Throttle,
    MemoryAvg,
    MemoryMin,
    MemoryMax,
    RssAvg,
    RssMin,
    RssMax,
}

const CHANNELS: usize = 14;

impl Channel {
    /// The channel of a ranged query's series (requests and limits by their `resource`).
    pub(super) fn of(raw: Raw, resource: &str) -> Option<Channel> {
        Some(match (raw, resource) {
            (Raw::Requests, "cpu") => Channel::CpuRequest,
            (Raw::Requests, "memory") => Channel::MemoryRequest,
            (Raw::Limits, "cpu") => Channel::CpuLimit,
            (Raw::Limits, "memory") => Channel::MemoryLimit,
            (Raw::Throttle, _) => Channel::Throttle,
            _ => return None,
        })
    }

    /// The mean, min and max channels of a sampled query.
    pub(super) fn windowed(raw: Raw) -> Option<[Channel; 3]> {
        Some(match raw {
            Raw::Cpu => [Channel::CpuAvg, Channel::CpuMin, Channel::CpuMax],
            Raw::Memory => [Channel::MemoryAvg, Channel::MemoryMin, Channel::MemoryMax],
            Raw::Rss => [Channel::RssAvg, Channel::RssMin, Channel::RssMax],
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
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
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

    /// One pod's raw samples (time order): per 15-minute interval `(t − 15m, t]`, the pod's
    /// mean, min and max go to the `[mean, min, max]` channels, as `avg_over_time`,
    /// `min_over_time` and `max_over_time` give them per series.
    pub(super) fn add_samples(
        &mut self,
        start: i64,
        samples: &[(f64, f64)],
        channels: [Channel; 3],
    ) {
        let mut current: Option<(usize, Acc)> = None;
        let step = STEP_SECS as f64;
        for &(t, v) in samples.iter().filter(|(_, v)| v.is_finite()) {
            let k = ((t - start as f64) / step).ceil();
            if k < 0.0 || k >= SLOTS as f64 {
                continue;
            }
            let k = k as usize;
            match &mut current {
                Some((slot, acc)) if *slot == k => acc.push(v),
                _ => {
                    if let Some((slot, acc)) = current.take() {
                        self.add_window(slot, &acc, channels);
                    }
                    let mut acc = Acc::default();
                    acc.push(v);
                    current = Some((k, acc));
                }
            }
        }
        if let Some((slot, acc)) = current {
            self.add_window(slot, &acc, channels);
        }
    }

    fn add_window(&mut self, slot: usize, window: &Acc, [mean, min, max]: [Channel; 3]) {
        let (Some(m), Some(lo), Some(hi)) = (window.mean(), window.least(), window.most()) else {
            return;
        };
        let cells = &mut self.0[slot];
        cells[mean as usize].push(m);
        cells[min as usize].push(lo);
        cells[max as usize].push(hi);
    }

    /// The cross-pod aggregates per interval, as the reference's `<fn> by (container,
    /// namespace)` queries give them; slots without any value are left out.
    pub(super) fn series(&self, start: i64) -> Series {
        let mut out = Series::new();
        for (k, slot) in self.0.iter().enumerate() {
            if slot.iter().all(|a| a.n == 0) {
                continue;
            }
            let get = |c: Channel| &slot[c as usize];
            let flat = |c: Channel| {
                let a = get(c);
                Agg {
                    avg: a.mean(),
                    min: a.least(),
                    max: a.most(),
                    sum: a.total(),
                }
            };
            let windowed = |avg: Channel, min: Channel, max: Channel| Agg {
                avg: get(avg).mean(),
                min: get(min).least(),
                max: get(max).most(),
                sum: get(avg).total(),
            };
            let interval = Interval {
                cpu_request: flat(Channel::CpuRequest),
                cpu_limit: flat(Channel::CpuLimit),
                cpu_usage: windowed(Channel::CpuAvg, Channel::CpuMin, Channel::CpuMax),
                cpu_throttle: flat(Channel::Throttle),
                memory_request: flat(Channel::MemoryRequest),
                memory_limit: flat(Channel::MemoryLimit),
                memory_usage: windowed(Channel::MemoryAvg, Channel::MemoryMin, Channel::MemoryMax),
                memory_rss: windowed(Channel::RssAvg, Channel::RssMin, Channel::RssMax),
                pods: None,
            };
            out.insert(start + k as i64 * STEP_SECS, interval);
        }
        out
    }
}
