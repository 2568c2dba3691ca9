//! A synthetic cluster for tests and benchmarks: containers with known usage, written as the
//! OpenMetrics series a kube-prometheus stack would hold (kube-state-metrics discovery series,
//! the recording rules the queries expect, cAdvisor usage, requests and limits), for
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Usage samples are taken every minute at `:30` (so a `[15m]` window holds exactly 15 of them
//! whether or not its start is included); the slow-moving series every two minutes. Values are
//! multiples of 1/1024 core and of 4 KiB, so sums are exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;

use rivulet_recommendation_producer::engine::data::{Agg, Interval, Parts, Series};
use rivulet_recommendation_producer::engine::terms::STEP_SECS;

/// One container of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    /// Namespace.
    pub namespace: String,
    /// Owning workload.
    pub workload: String,
    /// Its kind, lower case (`deployment`, `daemonset`, ...).
    pub workload_type: String,
    /// Container name.
    pub container: String,
    /// Image.
    pub image: String,
    /// Pods running it.
    pub pods: u32,
    /// CPU per pod in 1/1024 cores: base, and the span of a swing added to it.
    pub cpu: (u32, u32),
    /// Memory per pod: base MiB, and a swing in 4 KiB pages.
    pub memory: (u32, u32),
    /// Requests (cores, bytes), when set.
    pub requests: Option<(f64, f64)>,
    /// Limits (cores, bytes), when set.
    pub limits: Option<(f64, f64)>,
    /// Minutes of data, ending at the cluster's end.
    pub minutes: i64,
}

impl Container {
    /// CPU of pod `pod` at minute `m` (cores).
    pub fn cpu_at(&self, pod: u32, m: i64) -> f64 {
        let swing = (m * 7 + i64::from(pod) * 13) % i64::from(self.cpu.1.max(1));
        (i64::from(self.cpu.0) + swing) as f64 / 1024.0
    }

    /// Memory working set of pod `pod` at minute `m` (bytes).
    pub fn memory_at(&self, pod: u32, m: i64) -> f64 {
        let swing = (m * 11 + i64::from(pod) * 5) % i64::from(self.memory.1.max(1));
        (i64::from(self.memory.0) * 1_048_576 + swing * 4096) as f64
    }

    /// RSS: three quarters of the working set, rounded down to a page.
    pub fn rss_at(&self, pod: u32, m: i64) -> f64 {
        ((self.memory_at(pod, m) * 0.75 / 4096.0).floor() * 4096.0).max(0.0)
    }

    fn pod(&self, p: u32) -> String {
        format!("{}-{}", self.workload, p)
    }
}

/// A cluster: containers and the end of their data (Unix seconds, a multiple of 15 minutes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// Containers.
    pub containers: Vec<Container>,
    /// Last minute of data.
    pub end: i64,
    /// Hard resource quotas by namespace.
    pub quotas: BTreeMap<String, Quota>,
    /// Samples on whole minutes (a 60 s scrape aligned to the clock), so every fifteenth lands
    /// exactly on a 15-minute boundary, where Prometheus 2.x and 3.x windows differ. The
    /// default (`false`, samples at `:30`) makes every window hold the same 15 samples either
    /// way; the ground truths ([`Cluster::expected`]) assume it.
    pub aligned: bool,
}

/// A namespace's hard resource quota: (cores, bytes) of requests and of limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    /// `requests.cpu`, `requests.memory`.
    pub requests: (f64, f64),
    /// `limits.cpu`, `limits.memory`.
    pub limits: (f64, f64),
}

/// Sample time of minute `m` before the end: `end − m·60 + 30 − 60`, so the last sample is 30 s
/// before `end`.
pub fn minute_time(end: i64, m: i64) -> i64 {
    end - 30 - m * 60
}

impl Cluster {
    /// Sample time of minute `m` before the end: [`minute_time`], or on the whole minute when
    /// [`aligned`](Cluster::aligned).
    pub fn sample_time(&self, m: i64) -> i64 {
        if self.aligned {
            self.end - m * 60
        } else {
            minute_time(self.end, m)
        }
    }

    /// Writes the cluster as OpenMetrics text, usage every minute.
    pub fn write_openmetrics(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.write_openmetrics_every(out, 1)
    }

    /// Writes the cluster as OpenMetrics text with usage every `every` minutes (benchmarks
    /// use 5: a 15-minute window still holds whole samples, at a fifth of the size).
    pub fn write_openmetrics_every(&self, out: &mut impl Write, every: i64) -> std::io::Result<()> {
        self.write_openmetrics_minutes(out, every, 0..i64::MAX)
    }

    /// Writes only the samples of minutes `minutes` (counted back from the end, see
    /// [`minute_time`]): a large dataset goes to promtool in slices, which reads its whole
    /// input once per two-hour block it writes.
    pub fn write_openmetrics_minutes(
        &self,
        out: &mut impl Write,
        every: i64,
        minutes: std::ops::Range<i64>,
    ) -> std::io::Result<()> {
        let every = every.max(1);
        let slow_every = if every == 1 { 2 } else { every };
        let span = |len: i64| minutes.start.max(0)..minutes.end.min(len);
        let mut family = |name: &str, kind: &str, each: &mut dyn FnMut(&mut String)| {
            let mut text = format!("# TYPE {name} {kind}\n");
            each(&mut text);
            out.write_all(text.as_bytes())
        };
        let namespaces: BTreeSet<&str> = self
            .containers
            .iter()
            .map(|c| c.namespace.as_str())
            .collect();
        let longest = self.containers.iter().map(|c| c.minutes).max().unwrap_or(0);
        family("kube_namespace_status_phase", "gauge", &mut |t| {
            for ns in &namespaces {
                for m in span(longest).rev().filter(|m| m % slow_every == 0) {
                    let _ = writeln!(
                        t,
                        "kube_namespace_status_phase{{namespace=\"{ns}\",phase=\"Active\"}} 1 {}",
                        self.sample_time(m)
                    );
                }
            }
        })?;
        let slow = |c: &Container,
                    t: &mut String,
                    name: &str,
                    labels: &dyn Fn(u32) -> String,
                    value: f64| {
            for p in 0..c.pods {
                for m in span(c.minutes).rev().filter(|m| m % slow_every == 0) {
                    let _ = writeln!(t, "{name}{{{}}} {value} {}", labels(p), self.sample_time(m));
                }
            }
        };
        family(
            "namespace_workload_pod:kube_pod_owner:relabel",
            "gauge",
            &mut |t| {
                for c in &self.containers {
                    let labels = |p: u32| {
                        format!(
                            "namespace=\"{}\",pod=\"{}\",workload=\"{}\",workload_type=\"{}\"",
                            c.namespace,
                            c.pod(p),
                            c.workload,
                            c.workload_type
                        )
                    };
                    slow(
                        c,
                        t,
                        "namespace_workload_pod:kube_pod_owner:relabel",
                        &labels,
                        1.0,
                    );
                }
            },
        )?;
        family("kube_pod_container_info", "gauge", &mut |t| {
            for c in &self.containers {
                let labels = |p: u32| {
                    format!(
                        "namespace=\"{}\",pod=\"{}\",container=\"{}\",image=\"{}\"",
                        c.namespace,
                        c.pod(p),
                        c.container,
                        c.image
                    )
                };
                slow(c, t, "kube_pod_container_info", &labels, 1.0);
            }
        })?;
        family("kube_pod_info", "gauge", &mut |t| {
            let mut seen = BTreeSet::new();
            for c in &self.containers {
                for p in 0..c.pods {
                    if !seen.insert((c.namespace.as_str(), c.pod(p))) {
                        continue;
                    }
                    for m in span(c.minutes).rev().filter(|m| m % slow_every == 0) {
                        let _ = writeln!(
                            t,
                            "kube_pod_info{{namespace=\"{}\",pod=\"{}\"}} 1 {}",
                            c.namespace,
                            c.pod(p),
                            self.sample_time(m)
                        );
                    }
                }
            }
        })?;
        family("kube_resourcequota", "gauge", &mut |t| {
            for (ns, q) in &self.quotas {
                let longest = self.namespace_minutes(ns);
                for (resource, value) in [
                    ("requests.cpu", q.requests.0),
                    ("requests.memory", q.requests.1),
                    ("limits.cpu", q.limits.0),
                    ("limits.memory", q.limits.1),
                ] {
                    for m in span(longest).rev().filter(|m| m % slow_every == 0) {
                        let _ = writeln!(
                            t,
                            "kube_resourcequota{{namespace=\"{ns}\",resourcequota=\"quota\",resource=\"{resource}\",type=\"hard\"}} {value} {}",
                            self.sample_time(m)
                        );
                    }
                }
            }
        })?;
        for (name, pick) in [
            ("kube_pod_container_resource_requests", 0),
            ("kube_pod_container_resource_limits", 1),
        ] {
            family(name, "gauge", &mut |t| {
                for c in &self.containers {
                    let Some((cores, bytes)) = (if pick == 0 { c.requests } else { c.limits })
                    else {
                        continue;
                    };
                    for (resource, unit, value) in
                        [("cpu", "core", cores), ("memory", "byte", bytes)]
                    {
                        let labels = |p: u32| {
                            format!(
                                "namespace=\"{}\",pod=\"{}\",container=\"{}\",resource=\"{resource}\",unit=\"{unit}\"",
                                c.namespace,
                                c.pod(p),
                                c.container
                            )
                        };
                        slow(c, t, name, &labels, value);
                    }
                }
            })?;
        }
        let fast = |t: &mut String, name: &str, value: &dyn Fn(&Container, u32, i64) -> f64| {
            for c in &self.containers {
                for p in 0..c.pods {
                    for m in span(c.minutes).rev().filter(|m| m % every == 0) {
                        let _ = writeln!(
                            t,
                            "{name}{{namespace=\"{}\",pod=\"{}\",container=\"{}\"}} {} {}",
                            c.namespace,
                            c.pod(p),
                            c.container,
                            value(c, p, m),
                            self.sample_time(m)
                        );
                    }
                }
            }
        };
        family(
            "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate",
            "gauge",
            &mut |t| {
                fast(
                    t,
                    "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate",
                    &|c, p, m| c.cpu_at(p, m),
                );
            },
        )?;
        family("container_cpu_usage_seconds", "counter", &mut |t| {
            // Cumulative seconds: any increasing value will do, the queries only look for > 0.
            fast(t, "container_cpu_usage_seconds_total", &|c, _, m| {
                (c.minutes - m) as f64 * 60.0
            });
        })?;
        family("container_cpu_cfs_throttled_seconds", "counter", &mut |t| {
            fast(
                t,
                "container_cpu_cfs_throttled_seconds_total",
                &|_, _, _| 0.0,
            );
        })?;
        family("container_memory_working_set_bytes", "gauge", &mut |t| {
            fast(t, "container_memory_working_set_bytes", &|c, p, m| {
                c.memory_at(p, m)
            });
        })?;
        family("container_memory_rss", "gauge", &mut |t| {
            fast(t, "container_memory_rss", &|c, p, m| c.rss_at(p, m));
        })?;
        out.write_all(b"# EOF\n")
    }
}

/// Aggregates across pods of per-pod `[15m]` windows: avg of means, min of mins, max of
/// maxes, sum of means; `None` when no pod has a sample.
fn over_pods(pods: u32, minutes: &[i64], value: impl Fn(u32, i64) -> f64) -> Option<Agg> {
    if minutes.is_empty() || pods == 0 {
        return None;
    }
    let (mut mean_sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
    for p in 0..pods {
        let values: Vec<f64> = minutes.iter().map(|&m| value(p, m)).collect();
        mean_sum += values.iter().sum::<f64>() / values.len() as f64;
        min = values.iter().copied().fold(min, f64::min);
        max = values.iter().copied().fold(max, f64::max);
    }
    Some(Agg {
        avg: Some(mean_sum / f64::from(pods)),
        min: Some(min),
        max: Some(max),
        sum: Some(mean_sum),
    })
}

impl Cluster {
    /// Minutes of data of the namespace's longest-running container.
    pub fn namespace_minutes(&self, ns: &str) -> i64 {
        self.containers
            .iter()
            .filter(|c| c.namespace == ns)
            .map(|c| c.minutes)
            .max()
            .unwrap_or(0)
    }

    /// The ground truth of namespace `ns` as the tests' Prometheus (2.x) computes it:
    /// [`expected_namespace_with`](Cluster::expected_namespace_with) closed windows.
    pub fn expected_namespace(&self, ns: &str) -> Series {
        self.expected_namespace_with(ns, true)
    }

    /// The ground truth of namespace `ns`: per interval, the mean, min and max of the
    /// namespace-wide sums evaluated every minute, the pods counted, and the quotas as current
    /// requests and limits. The sums are evaluated on whole minutes, so an interval's start is
    /// always an evaluation: `closed` (Prometheus 2.x, `[t − 15m, t]`) counts it, 16 minutes;
    /// left-open (3.x) 15.
    pub fn expected_namespace_with(&self, ns: &str, closed: bool) -> Series {
        assert!(!self.aligned, "the ground truths assume samples at :30");
        let span = if closed { 16 } else { 15 };
        let members: Vec<&Container> = self
            .containers
            .iter()
            .filter(|c| c.namespace == ns)
            .collect();
        let quota = self.quotas.get(ns);
        let longest = self.namespace_minutes(ns);
        let mut out = Series::new();
        for k in 0..=(15 * 86_400 / STEP_SECS) {
            let t = self.end - k * STEP_SECS;
            let lo = k * 15;
            // Per minute of the interval, the sum over the running containers' pods.
            let sums = |live: &dyn Fn(&Container, i64) -> bool,
                        value: &dyn Fn(&Container, u32, i64) -> f64| {
                let values: Vec<f64> = (lo..lo + span)
                    .filter(|&m| members.iter().any(|c| live(c, m)))
                    .map(|m| {
                        members
                            .iter()
                            .filter(|c| live(c, m))
                            .map(|c| (0..c.pods).map(|p| value(c, p, m)).sum::<f64>())
                            .sum()
                    })
                    .collect();
                Agg::window(&values)
            };
            let running = |c: &Container, m: i64| m < c.minutes;
            // rate(…[5m]) needs two samples: this minute's and the one before.
            let rated = |c: &Container, m: i64| m + 1 < c.minutes;
            // kube_pod_info every two minutes: the latest at or before, within the lookback.
            let listed = |c: &Container, m: i64| m + m % 2 < c.minutes;
            let pods = sums(&listed, &|_, _, _| 1.0).avg;
            let slow = lo + lo % 2 < longest;
            let flat = |v: Option<f64>| v.filter(|_| slow).map(Agg::flat).unwrap_or_default();
            let interval = Interval::from(Parts {
                cpu_request: flat(quota.map(|q| q.requests.0)),
                cpu_limit: flat(quota.map(|q| q.limits.0)),
                cpu_usage: sums(&running, &|c, p, m| c.cpu_at(p, m)),
                cpu_throttle: sums(&rated, &|_, _, _| 0.0),
                memory_request: flat(quota.map(|q| q.requests.1)),
                memory_limit: flat(quota.map(|q| q.limits.1)),
                memory_usage: sums(&running, &|c, p, m| c.memory_at(p, m)),
                memory_rss: sums(&running, &|c, p, m| c.rss_at(p, m)),
                pods,
            });
            if interval != Interval::default() {
                out.insert(t, interval);
            }
        }
        out
    }

    /// The ground truth: what the recommendation queries must yield for `c`, interval by
    /// interval over the 15 days before the end, computed from the samples as PromQL would.
    pub fn expected(&self, c: &Container) -> Series {
        assert!(!self.aligned, "the ground truths assume samples at :30");
        let mut out = Series::new();
        let step = STEP_SECS;
        for k in 0..=(15 * 86_400 / step) {
            let t = self.end - k * step;
            // Usage samples in (t − 15m, t]: minutes 15k ..= 15k + 14 (see `minute_time`).
            let lo = k * 15;
            let minutes: Vec<i64> = (lo..lo + 15).filter(|m| *m < c.minutes).collect();
            // The latest two-minute sample at or before t: the first even minute ≥ 15k.
            let slow = (lo + lo % 2 < c.minutes).then_some(());
            let flat = |v: Option<(f64, f64)>, pick: fn((f64, f64)) -> f64| {
                slow.and(v).map(|v| {
                    let x = pick(v);
                    Agg {
                        avg: Some(x),
                        min: Some(x),
                        max: Some(x),
                        sum: Some(x * f64::from(c.pods)),
                    }
                })
            };
            let interval = Interval::from(Parts {
                cpu_request: flat(c.requests, |v| v.0).unwrap_or_default(),
                cpu_limit: flat(c.limits, |v| v.0).unwrap_or_default(),
                cpu_usage: over_pods(c.pods, &minutes, |p, m| c.cpu_at(p, m)).unwrap_or_default(),
                cpu_throttle: if minutes.len() >= 2 {
                    Agg::flat(0.0)
                } else {
                    Agg::default()
                },
                memory_request: flat(c.requests, |v| v.1).unwrap_or_default(),
                memory_limit: flat(c.limits, |v| v.1).unwrap_or_default(),
                memory_usage: over_pods(c.pods, &minutes, |p, m| c.memory_at(p, m))
                    .unwrap_or_default(),
                memory_rss: over_pods(c.pods, &minutes, |p, m| c.rss_at(p, m)).unwrap_or_default(),
                pods: None,
            });
            if interval != Interval::default() {
                out.insert(t, interval);
            }
        }
        out
    }
}
