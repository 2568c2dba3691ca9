//! Konsumerator's NaivePredictor and resource limiters, as pure functions of numbers.
//!
//! All CPU figures are milli-cores and all memory figures milli-bytes (Kubernetes'
//! `MilliValue`), so the integer maths is the reference's, step for step:
//! - lag of a partition, in whole seconds: messages behind ÷ production rate (0 without
//!   production);
//! - expected consumption: production × (1 + lag ÷ recovery time), in integer arithmetic;
//! - an instance with several partitions sums them, a partition without figures counting as the
//!   busiest of its group (partially missing metrics);
//! - CPU request: consumption × 1000 ÷ `ratePerCore` rounded up to `cpuIncrement`; CPU limit:
//!   the request rounded up to whole cores; memory request = limit = limit cores × `ramPerCore`;
//! - nothing measured at all: the fallback (see [`Fallback`]).

use std::collections::BTreeMap;
use std::time::Duration;

/// Per partition, what a metrics provider measured (messages and messages per second).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Messages produced per second.
    pub production: BTreeMap<i32, i64>,
    /// Messages consumed per second.
    pub consumption: BTreeMap<i32, i64>,
    /// Messages not yet consumed.
    pub behind: BTreeMap<i32, i64>,
}

impl Metrics {
    /// How far behind `partition` is, in whole seconds of production (0 without production).
    pub fn lag(&self, partition: i32) -> Duration {
        let production = self.production.get(&partition).copied().unwrap_or(0);
        if production <= 0 {
            return Duration::ZERO;
        }
        let behind = self.behind.get(&partition).copied().unwrap_or(0).max(0);
        Duration::from_secs((behind / production) as u64)
    }

    /// The largest lag of `partitions`.
    pub fn max_lag(&self, partitions: &[i32]) -> Duration {
        partitions
            .iter()
            .map(|p| self.lag(*p))
            .max()
            .unwrap_or_default()
    }
}

/// CPU and memory, requests and limits, in milli-units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Requested milli-cores.
    pub cpu_request: i64,
    /// Requested milli-bytes.
    pub memory_request: i64,
    /// Milli-core limit.
    pub cpu_limit: i64,
    /// Milli-byte limit.
    pub memory_limit: i64,
}

impl Resources {
    /// Requests and limits both `cpu` and `memory`.
    pub fn both(cpu: i64, memory: i64) -> Self {
        Self {
            cpu_request: cpu,
            memory_request: memory,
            cpu_limit: cpu,
            memory_limit: memory,
        }
    }
}

/// How one container's requests compare with another's: CPU first, then memory
/// (Konsumerator's `CmpResourceList`).
pub fn compare(current: &Resources, wanted: &Resources) -> std::cmp::Ordering {
    wanted
        .cpu_request
        .cmp(&current.cpu_request)
        .then(wanted.memory_request.cmp(&current.memory_request))
}

/// The predictor's settings, from `spec.autoscaler.{prometheus,kafka}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Predictor {
    /// Messages per second per core (≥ 1).
    pub rate_per_core: i64,
    /// Milli-bytes of memory per core.
    pub ram_per_core: i64,
    /// Milli-core step of CPU requests (default 100).
    pub cpu_increment: i64,
    /// Whole seconds to catch up in (≥ 1).
    pub recovery_secs: i64,
}

fn ceil_to_multiple(value: i64, step: i64) -> i64 {
    if step <= 0 || value % step == 0 {
        value
    } else {
        value + (step - value % step)
    }
}

impl Predictor {
    /// What `partition` should consume per second to catch up within the recovery time.
    pub fn expected_consumption(&self, metrics: &Metrics, partition: i32) -> i64 {
        let production = metrics.production.get(&partition).copied().unwrap_or(0);
        let lag = metrics.lag(partition).as_secs() as i64;
        if lag > 0 {
            (lag * production + production * self.recovery_secs) / self.recovery_secs
        } else {
            production
        }
    }

    /// CPU request and limit for `consumption` messages per second.
    pub fn cpu(&self, consumption: i64) -> (i64, i64) {
        let request = ceil_to_multiple(
            consumption.saturating_mul(1000) / self.rate_per_core,
            self.cpu_increment,
        );
        (request, ceil_to_multiple(request, 1000))
    }

    /// Memory request and limit for a CPU limit (`ramPerCore` per limit core).
    pub fn memory(&self, cpu_limit: i64) -> (i64, i64) {
        let memory = cpu_limit.saturating_mul(self.ram_per_core / 1000);
        (memory, memory)
    }

    /// What an instance of `partitions` needs; `fallback` when nothing was measured for any of
    /// them (zeros without one).
    pub fn estimate(
        &self,
        metrics: &Metrics,
        partitions: &[i32],
        fallback: Option<Resources>,
    ) -> Resources {
        let each: Vec<i64> = partitions
            .iter()
            .map(|p| self.expected_consumption(metrics, *p))
            .collect();
        let busiest = each.iter().copied().max().unwrap_or(0).max(0);
        let total: i64 = each.iter().map(|c| if *c > 0 { *c } else { busiest }).sum();
        if total == 0
            && let Some(fallback) = fallback
        {
            return fallback;
        }
        let (cpu_request, cpu_limit) = self.cpu(total);
        let (memory_request, memory_limit) = self.memory(cpu_limit);
        Resources {
            cpu_request,
            memory_request,
            cpu_limit,
            memory_limit,
        }
    }
}

/// One container's bounds (`containerPolicies[]`), min and max in milli-units; a policy
/// whose min exceeds its max is swapped (and reported by the caller).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Least CPU (milli-cores).
    pub min_cpu: i64,
    /// Most CPU.
    pub max_cpu: i64,
    /// Least memory (milli-bytes).
    pub min_memory: i64,
    /// Most memory.
    pub max_memory: i64,
}

impl Bounds {
    /// Bounds from min and max, swapped where min > max; `true` when something was swapped.
    pub fn new(min_cpu: i64, max_cpu: i64, min_memory: i64, max_memory: i64) -> (Self, bool) {
        let swapped = min_cpu > max_cpu || min_memory > max_memory;
        (
            Self {
                min_cpu: min_cpu.min(max_cpu),
                max_cpu: min_cpu.max(max_cpu),
                min_memory: min_memory.min(max_memory),
                max_memory: min_memory.max(max_memory),
            },
            swapped,
        )
    }

    /// The least, as requests and limits.
    pub fn min(&self) -> Resources {
        Resources::both(self.min_cpu, self.min_memory)
    }

    /// The most, as requests and limits.
    pub fn max(&self) -> Resources {
        Resources::both(self.max_cpu, self.max_memory)
    }

    /// `wanted` within the bounds: each limit clamped to [min, max], each request to
    /// [min, its limit].
    pub fn apply(&self, wanted: &Resources) -> Resources {
        let clamp = |v: i64, lo: i64, hi: i64| {
            if v > hi {
                hi
            } else if v < lo {
                lo
            } else {
                v
            }
        };
        let cpu_limit = clamp(wanted.cpu_limit, self.min_cpu, self.max_cpu);
        let memory_limit = clamp(wanted.memory_limit, self.min_memory, self.max_memory);
        Resources {
            cpu_request: clamp(wanted.cpu_request, self.min_cpu, cpu_limit),
            memory_request: clamp(wanted.memory_request, self.min_memory, memory_limit),
            cpu_limit,
            memory_limit,
        }
    }
}

/// The global pool (`globalPolicy.maxAllowed`), less what the instances already request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Milli-cores left.
    pub cpu: i64,
    /// Milli-bytes left.
    pub memory: i64,
}

impl Pool {
    /// Takes what it can of `cpu` and `memory` more (negative: gives back) and returns what
    /// it gave.
    pub fn take(&mut self, cpu: i64, memory: i64) -> (i64, i64) {
        let cpu = cpu.min(self.cpu);
        let memory = memory.min(self.memory);
        self.cpu -= cpu;
        self.memory -= memory;
        (cpu, memory)
    }
}

/// CPU and memory missing from what was wanted (positive: a shortage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shortage {
    /// Milli-cores.
    pub cpu: i64,
    /// Milli-bytes.
    pub memory: i64,
}

/// Konsumerator's `applyResourcesLimiters`: the instance bounds (or, at critical lag, the
/// bounds' maximum), then, if `pool` is given, only as much more than `current` as the pool
/// has. Returns what the container gets and what it lacks of the estimate.
pub fn limit(
    estimate: &Resources,
    bounds: Option<&Bounds>,
    critical: bool,
    current: &Resources,
    pool: Option<&mut Pool>,
) -> (Resources, Shortage) {
    let bounded = match bounds {
        Some(b) if critical => b.max(),
        Some(b) => b.apply(estimate),
        None => *estimate,
    };
    // What the bounds withhold; never negative: at critical lag the bounds' maximum exceeds the
    // estimate, and the reference's negative difference there hides a shortage of the pool
    // (an instance starved by the global limit showed as RUNNING).
    let mut shortage = Shortage {
        cpu: (estimate.cpu_request - bounded.cpu_request).max(0),
        memory: (estimate.memory_request - bounded.memory_request).max(0),
    };
    let Some(pool) = pool else {
        return (bounded, shortage);
    };
    let (want_cpu, want_memory) = (
        bounded.cpu_request - current.cpu_request,
        bounded.memory_request - current.memory_request,
    );
    let (got_cpu, got_memory) = pool.take(want_cpu, want_memory);
    shortage.cpu += want_cpu - got_cpu;
    shortage.memory += want_memory - got_memory;
    let cpu_request = current.cpu_request + got_cpu;
    let memory_request = current.memory_request + got_memory;
    (
        Resources {
            cpu_request,
            memory_request,
            cpu_limit: ceil_to_multiple(cpu_request, 1000),
            memory_limit: memory_request,
        },
        shortage,
    )
}

/// Without any measurement for an instance, what a container gets: the policy's least (or,
/// `max` strategy, most); with more than 10 instances of which more than half exist, the
/// least (most) that a same-named container of the existing instances requests instead.
pub fn fallback(
    strategy_max: bool,
    bounds: Option<&Bounds>,
    expected_instances: usize,
    existing: &[Resources],
) -> Option<Resources> {
    if expected_instances > 10 && existing.len() > expected_instances / 2 {
        let pick = existing.iter().copied();
        return if strategy_max {
            pick.max_by_key(|r| r.cpu_request)
        } else {
            pick.min_by_key(|r| r.cpu_request)
        };
    }
    bounds.map(|b| if strategy_max { b.max() } else { b.min() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: i64 = 1_000_000_000_000; // 1G in milli-bytes

    fn predictor(rate_per_core: i64, ram_per_core: i64) -> Predictor {
        Predictor {
            rate_per_core,
            ram_per_core,
            cpu_increment: 100,
            recovery_secs: 30 * 60,
        }
    }

    fn metrics(production: &[(i32, i64)], behind: &[(i32, i64)]) -> Metrics {
        Metrics {
            production: production.iter().copied().collect(),
            consumption: BTreeMap::new(),
            behind: behind.iter().copied().collect(),
        }
    }

    // The reference's TestEstimateCpu cases: (consumption, ratePerCore, increment) → (req, lim).
    #[test]
    fn cpu_is_rounded_as_the_reference_rounds_it() {
        for (consumption, rate, step, request, limit) in [
            (20_000, 10_000, 100, 2000, 2000),
            (18_000, 10_000, 100, 1800, 2000),
            (18_510, 10_000, 100, 1900, 2000),
            (11_510, 10_000, 400, 1200, 2000),
            (11_510, 10_000, 500, 1500, 2000),
            (11_510, 10_000, 1000, 2000, 2000),
        ] {
            let p = Predictor {
                cpu_increment: step,
                ..predictor(rate, G)
            };
            assert_eq!(p.cpu(consumption), (request, limit), "{consumption}/{step}");
        }
    }

    #[test]
    fn memory_follows_the_cpu_limit() {
        let p = predictor(10_000, 1000);
        assert_eq!(p.memory(2000), (2000, 2000));
    }

    #[test]
    fn consumption_accounts_for_lag() {
        let p = predictor(10_000, G);
        assert_eq!(
            p.expected_consumption(&metrics(&[(0, 20_001)], &[(0, 0)]), 0),
            20_001
        );
        // 10 minutes of lag at 20,000/s, 30 minutes to recover: the reference's 26,656.
        let m = metrics(&[(0, 20_001)], &[(0, 10 * 60 * 20_000)]);
        assert_eq!(m.lag(0), Duration::from_secs(599));
        assert_eq!(p.expected_consumption(&m, 0), 26_656);
    }

    // The reference's TestEstimateResources cases.
    #[test]
    fn estimates_as_the_reference() {
        let p = predictor(10_000, G);
        let one = metrics(&[(0, 20_000)], &[(0, 0)]);
        assert_eq!(p.estimate(&one, &[0], None), Resources::both(2000, 2 * G));
        let two = metrics(&[(0, 20_000), (1, 20_000)], &[(0, 0)]);
        assert_eq!(
            p.estimate(&two, &[0, 1], None),
            Resources::both(4000, 4 * G)
        );
        // Partitions 2 and 3 have no figures: each counts as the busiest (20,000).
        let partial = metrics(&[(0, 20_000), (1, 10_000)], &[(0, 0)]);
        assert_eq!(
            p.estimate(&partial, &[0, 1, 2, 3], None),
            Resources::both(7000, 7 * G)
        );
        let low = metrics(&[(0, 200)], &[(0, 0)]);
        assert_eq!(
            p.estimate(&low, &[0], None),
            Resources {
                cpu_request: 100,
                memory_request: G,
                cpu_limit: 1000,
                memory_limit: G
            }
        );
        let none = metrics(&[(0, 0)], &[(0, 0)]);
        assert_eq!(p.estimate(&none, &[0], None), Resources::default());
        let fallback = Resources {
            cpu_request: 1000,
            memory_request: 100_000_000_000,
            cpu_limit: 1100,
            memory_limit: 200_000_000_000,
        };
        assert_eq!(p.estimate(&none, &[0], Some(fallback)), fallback);
    }

    #[test]
    fn lag_without_production_is_none() {
        let m = metrics(&[(0, 0)], &[(0, 1_000_000)]);
        assert_eq!(m.lag(0), Duration::ZERO);
        assert_eq!(m.lag(7), Duration::ZERO, "unknown partition");
        assert_eq!(
            metrics(&[(0, 10), (1, 10)], &[(0, 50), (1, 300)]).max_lag(&[0, 1]),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn bounds_clamp_limits_then_requests() {
        let (b, swapped) = Bounds::new(100, 1000, 100 * 1_000_000_000, G);
        assert!(!swapped);
        let wanted = Resources {
            cpu_request: 1800,
            memory_request: 2 * G,
            cpu_limit: 2000,
            memory_limit: 2 * G,
        };
        assert_eq!(b.apply(&wanted), Resources::both(1000, G));
        let small = Resources::both(50, 1);
        assert_eq!(b.apply(&small), Resources::both(100, 100 * 1_000_000_000));
        let (swapped_bounds, swapped) = Bounds::new(1000, 100, G, 1);
        assert!(swapped);
        assert_eq!(
            (swapped_bounds.min_cpu, swapped_bounds.max_memory),
            (100, G)
        );
    }

    #[test]
    fn critical_lag_takes_the_maximum() {
        let (b, _) = Bounds::new(100, 4000, 1, 4 * G);
        let estimate = Resources::both(2000, 2 * G);
        let (got, shortage) = limit(&estimate, Some(&b), true, &Resources::default(), None);
        assert_eq!(got, Resources::both(4000, 4 * G));
        assert_eq!(shortage, Shortage::default());
        // Critical and short of the pool: the pool's shortage shows.
        let mut pool = Pool {
            cpu: 500,
            memory: 10 * G,
        };
        let current = Resources::both(1000, G);
        let (got, shortage) = limit(&estimate, Some(&b), true, &current, Some(&mut pool));
        assert_eq!((got.cpu_request, shortage.cpu), (1500, 2500));
    }

    #[test]
    fn the_pool_gives_what_it_has_and_the_rest_is_a_shortage() {
        let estimate = Resources::both(3000, 3 * G);
        let current = Resources::both(1000, G);
        let mut pool = Pool {
            cpu: 500,
            memory: 10 * G,
        };
        let (got, shortage) = limit(&estimate, None, false, &current, Some(&mut pool));
        assert_eq!(got.cpu_request, 1500);
        assert_eq!(got.cpu_limit, 2000, "limit in whole cores");
        assert_eq!(got.memory_request, 3 * G);
        assert_eq!(
            shortage,
            Shortage {
                cpu: 1500,
                memory: 0
            }
        );
        assert_eq!(
            pool,
            Pool {
                cpu: 0,
                memory: 8 * G
            }
        );
        // Scaling down gives back.
        let (got, shortage) = limit(
            &Resources::both(500, G),
            None,
            false,
            &current,
            Some(&mut pool),
        );
        assert_eq!((got.cpu_request, shortage.cpu), (500, 0));
        assert_eq!(pool.cpu, 500);
    }

    #[test]
    fn fallback_from_policy_or_from_running_instances() {
        let (b, _) = Bounds::new(100, 2000, G, 2 * G);
        assert_eq!(fallback(false, Some(&b), 3, &[]), Some(b.min()));
        assert_eq!(fallback(true, Some(&b), 3, &[]), Some(b.max()));
        assert_eq!(fallback(false, None, 3, &[]), None);
        let existing: Vec<Resources> = (1..=6).map(|i| Resources::both(i * 100, G)).collect();
        assert_eq!(
            fallback(false, Some(&b), 11, &existing).map(|r| r.cpu_request),
            Some(100)
        );
        assert_eq!(
            fallback(true, Some(&b), 11, &existing).map(|r| r.cpu_request),
            Some(600)
        );
        // Half or fewer exist: the policy.
        assert_eq!(fallback(true, Some(&b), 12, &existing), Some(b.max()));
    }
}
