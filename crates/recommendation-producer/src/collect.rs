//! From a datasource to the engine's input: discovery of the containers, then per namespace
//! one query per metric and aggregation for all its containers, split by container.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use futures::future::try_join_all;
use futures::stream::FuturesUnordered;

use crate::engine::data::{Agg, Interval, Parts, Series};
use crate::engine::terms::STEP_SECS;
use crate::prometheus::{Prometheus, QueryError};
use crate::queries::{self, Filters, Raw, Sum};
use crate::remote_read;

mod grid;

use grid::{Channel, Grid};

/// A discovered container.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Discovered {
    /// Namespace.
    pub namespace: String,
    /// Owning workload.
    pub workload: String,
    /// Its kind.
    pub workload_type: String,
    /// Container name.
    pub container: String,
    /// Image.
    pub image: String,
}

/// What discovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Containers (whose namespace and workload were found too).
    pub containers: Vec<Discovered>,
    /// Namespaces.
    pub namespaces: Vec<String>,
}

impl Discovered {
    /// The target of a namespace experiment: the namespace alone.
    pub fn namespace(namespace: &str) -> Discovered {
        Discovered {
            namespace: namespace.to_owned(),
            workload: String::new(),
            workload_type: String::new(),
            container: String::new(),
            image: String::new(),
        }
    }

    /// Whether this is a namespace experiment's target.
    pub fn is_namespace(&self) -> bool {
        self.container.is_empty()
    }
}

/// The containers and namespaces matching `filters`, seen over `range` (Unix seconds, queried
/// every 15 minutes) or now. Containers are keyed by namespace, workload and container (the reference
/// keys them by workload name only, mixing same-named workloads of different namespaces).
pub async fn discover(
    ds: &Prometheus,
    filters: &Filters,
    range: Option<(i64, i64)>,
) -> Result<Discovery, QueryError> {
    let [ns_query, wl_query, c_query] = queries::discovery(filters);
    let run = |q: String| async move {
        match range {
            Some((start, end)) => ds.range(&q, start, end, STEP_SECS).await,
            None => ds.instant(&q, None).await,
        }
    };
    let (namespaces, workloads, containers) =
        tokio::try_join!(run(ns_query), run(wl_query), run(c_query))?;
    let namespaces: BTreeSet<&str> = namespaces.iter().map(|s| s.label("namespace")).collect();
    let workloads: BTreeSet<(&str, &str)> = workloads
        .iter()
        .map(|s| (s.label("namespace"), s.label("workload")))
        .collect();
    let mut found = BTreeSet::new();
    for s in &containers {
        let (ns, wl) = (s.label("namespace"), s.label("workload"));
        if namespaces.contains(ns) && workloads.contains(&(ns, wl)) {
            found.insert(Discovered {
                namespace: ns.to_owned(),
                workload: wl.to_owned(),
                workload_type: s.label("workload_type").to_owned(),
                container: s.label("container").to_owned(),
                image: s.label("image").to_owned(),
            });
        }
    }
    Ok(Discovery {
        containers: found.into_iter().collect(),
        namespaces: namespaces.into_iter().map(str::to_owned).collect(),
    })
}

/// A container's data: the end of its window and its intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// End of the window: the last CPU activity, rounded up to the 15-minute step (so the
    /// containers of a namespace share one window and one set of queries).
    pub end: i64,
    /// Intervals.
    pub series: Series,
}

/// The data of `containers` in `namespace`, as of `at` (Unix seconds) or now: their last
/// activity (one cheap query for those running at `at`, the reference's 15-day subquery only
/// for the others), then 5 queries per distinct window end (usually one).
pub async fn fetch_namespace(
    ds: &Prometheus,
    namespace: &str,
    containers: &[&str],
    at: Option<i64>,
) -> Result<HashMap<String, Fetched>, QueryError> {
    // Whole minutes, as the subquery's steps are.
    let at = at
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
        .div_euclid(60)
        * 60;
    let mut last = ds
        .instant(&queries::recent_activity(namespace), Some(at))
        .await?;
    let seen: BTreeSet<&str> = last.iter().map(|s| s.label("container")).collect();
    let stale: Vec<&str> = containers
        .iter()
        .copied()
        .filter(|c| !seen.contains(c))
        .collect();
    drop(seen);
    if !stale.is_empty() {
        let older = ds
            .instant(&queries::last_activity(namespace, &stale), Some(at))
            .await?;
        last.extend(older);
    }
    let mut by_end: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for s in &last {
        let Some(&(_, ts)) = s.samples.first() else {
            continue;
        };
        if !ts.is_finite() {
            continue;
        }
        let end = (ts as i64 + STEP_SECS - 1).div_euclid(STEP_SECS) * STEP_SECS;
        by_end
            .entry(end)
            .or_default()
            .push(s.label("container").to_owned());
    }
    let closed = ds.closed_windows().await;
    let mut out = HashMap::new();
    for (end, containers) in by_end {
        let start = end - 15 * 86_400;
        // Per container, a grid of accumulators: one per 15-minute slot and channel, filled
        // series by series without an allocation per sample. The queries run at once; each
        // result goes into the grids as it arrives and is dropped there (the five held together
        // were several MB of a fetch's peak), and the grids are made when the first arrives.
        let mut results: FuturesUnordered<_> = Raw::RANGED
            .iter()
            .chain(&Raw::SAMPLED)
            .map(|&raw| async move {
                per_pod(ds, raw, namespace, (start, end), closed)
                    .await
                    .map(|r| (raw, r))
            })
            .collect();
        let mut grids: Option<HashMap<&str, Grid>> = None;
        while let Some(result) = results.next().await {
            let (raw, result) = result?;
            let grids = grids.get_or_insert_with(|| {
                containers
                    .iter()
                    .map(|c| (c.as_str(), Grid::new()))
                    .collect()
            });
            add(grids, raw, &result, start, closed);
        }
        for (container, grid) in grids.unwrap_or_default() {
            let series = grid.series(start);
            out.insert(container.to_owned(), Fetched { end, series });
        }
    }
    Ok(out)
}

/// The per-pod series of `raw` in `namespace` for the window `(start, end)`: through the
/// remote-read API where the datasource answers it ([`Prometheus::remote_reads`]), given the
/// meaning the query API's answer has (the instant vector at each 15-minute step for the
/// requests and limits, the raw samples within the range for usage, and for throttling the
/// rate of counters that did not change, which is 0, and the datasource's rate of the pods
/// whose counters changed, [`queries::throttle_of_pods`]); else [`queries::per_pod`].
async fn per_pod(
    ds: &Prometheus,
    raw: Raw,
    namespace: &str,
    (start, end): (i64, i64),
    closed: bool,
) -> Result<Vec<crate::prometheus::Series>, QueryError> {
    // The window's first interval starts 15 minutes before `start`.
    let window = end - start + STEP_SECS;
    let ranged = Raw::RANGED.contains(&raw);
    if ds.remote_reads()
        && let Some(read) = remote_per_pod(ds, raw, namespace, (start, end), closed).await?
    {
        return Ok(read);
    }
    let q = queries::per_pod(raw, namespace, window);
    if ranged {
        ds.range(&q, start, end, STEP_SECS).await
    } else {
        ds.instant(&q, Some(end)).await
    }
}

/// [`per_pod`] through the remote-read API; `None` when the query API is to answer.
async fn remote_per_pod(
    ds: &Prometheus,
    raw: Raw,
    namespace: &str,
    (start, end): (i64, i64),
    closed: bool,
) -> Result<Option<Vec<crate::prometheus::Series>>, QueryError> {
    let window = end - start + STEP_SECS;
    let steps = (start * 1000, end * 1000, STEP_SECS * 1000);
    let lookback = if raw == Raw::Resources {
        ds.lookback_ms().await
    } else {
        0
    };
    let from = match raw {
        Raw::Resources => start * 1000 - lookback,
        Raw::Throttle => (start - STEP_SECS) * 1000,
        Raw::Cpu | Raw::Memory | Raw::Rss => (end - window) * 1000,
    };
    let query = remote_read::Query {
        start_ms: from,
        end_ms: end * 1000,
        matchers: queries::per_pod_matchers(raw, namespace),
    };
    let Some(read) = ds.read(&[query]).await? else {
        return Ok(None);
    };
    let seconds = |(t, v): (i64, f64)| (t as f64 / 1000.0, v);
    let mut out = Vec::with_capacity(read.len());
    // Throttling counters that changed: rated by the datasource, those pods only.
    let mut changed = Vec::new();
    for mut s in read {
        let samples: Vec<(f64, f64)> = match raw {
            Raw::Resources => remote_read::at_steps(&s.samples, steps, lookback, closed)
                .into_iter()
                .map(seconds)
                .collect(),
            Raw::Throttle => {
                s.labels.remove("__name__");
                let Some(rates) =
                    remote_read::unchanged_rate(&s.samples, steps, STEP_SECS * 1000, closed)
                else {
                    changed.push(s.labels);
                    continue;
                };
                rates.into_iter().map(seconds).collect()
            }
            // A range selector: staleness markers dropped, the start in only for closed
            // windows (Prometheus 2.x).
            Raw::Cpu | Raw::Memory | Raw::Rss => s
                .samples
                .iter()
                .filter(|&&(t, v)| !remote_read::is_stale(v) && (closed || t > from))
                .map(|&p| seconds(p))
                .collect(),
        };
        if !samples.is_empty() {
            out.push(crate::prometheus::Series {
                labels: s.labels,
                samples,
            });
        }
    }
    if !changed.is_empty() {
        let mut pods: Vec<&str> = changed
            .iter()
            .filter_map(|l| l.get("pod").map(String::as_str))
            .collect();
        pods.sort_unstable();
        pods.dedup();
        let q = queries::throttle_of_pods(namespace, &pods);
        let rated = ds.range(&q, start, end, STEP_SECS).await?;
        // The pods' other counters are in `out` already. In label order, as the datasource
        // returns series (sums over pods then add in the same order either way).
        out.extend(rated.into_iter().filter(|s| changed.contains(&s.labels)));
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    Ok(Some(out))
}

/// Adds one per-pod query's result to the containers' grids.
fn add(
    grids: &mut HashMap<&str, Grid>,
    raw: Raw,
    result: &[crate::prometheus::Series],
    start: i64,
    closed: bool,
) {
    if let Some(channel) = Channel::windowed(raw) {
        for s in result {
            if let Some(grid) = grids.get_mut(s.label("container")) {
                grid.add_samples(start, &s.samples, channel, closed);
            }
        }
        return;
    }
    for s in result {
        let Some(grid) = grids.get_mut(s.label("container")) else {
            continue;
        };
        let Some(channel) = Channel::of(
            raw,
            s.label("__name__"),
            s.label("resource"),
            s.label("unit"),
        ) else {
            continue;
        };
        for &(t, v) in s.samples.iter().filter(|(_, v)| v.is_finite()) {
            grid.add(start, t.round() as i64, channel, v);
        }
    }
}

/// Largest number of points Prometheus returns per series and query (its limit is 11,000).
const MAX_POINTS: i64 = 7_200;

/// The data of namespace experiments for `namespaces`, as of `at` (Unix seconds) or now.
/// Each namespace-wide sum ([`queries::Sum`]) is read every minute over the 15 days before
/// (in chunks Prometheus accepts) and aggregated per 15-minute interval `(t − 15m, t]`; the
/// quotas are read every 15 minutes. A namespace's window ends at its last CPU use, rounded
/// up to 15 minutes. Five sums and the quotas: a handful of queries for every namespace of a
/// job.
pub async fn fetch_namespaces(
    ds: &Prometheus,
    namespaces: &[&str],
    at: Option<i64>,
) -> Result<HashMap<String, Fetched>, QueryError> {
    if namespaces.is_empty() {
        return Ok(HashMap::new());
    }
    let at = at.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let start = at.div_euclid(STEP_SECS) * STEP_SECS - 15 * 86_400 - STEP_SECS;
    let chunks: Vec<(i64, i64)> = (start..=at)
        .step_by((MAX_POINTS * 60) as usize)
        .map(|from| (from, (from + (MAX_POINTS - 1) * 60).min(at)))
        .collect();
    let sums = try_join_all(Sum::ALL.iter().flat_map(|&sum| {
        let q = queries::namespace_sum(sum, namespaces);
        chunks.iter().map(move |&(from, to)| {
            let q = q.clone();
            async move { ds.range(&q, from, to, 60).await.map(|r| (sum, r)) }
        })
    }));
    let closed = ds.closed_windows().await;
    let quota_query = queries::namespace_quotas(namespaces);
    let quotas = ds.range(&quota_query, start, at, STEP_SECS);
    let (sums, quotas) = tokio::try_join!(sums, quotas)?;

    // Per namespace: each sum by minute, and each quota by 15-minute time.
    let mut minutes: HashMap<&str, HashMap<Sum, BTreeMap<i64, f64>>> = HashMap::new();
    for (sum, result) in &sums {
        for s in result {
            let by_time = minutes
                .entry(s.label("namespace"))
                .or_default()
                .entry(*sum)
                .or_default();
            for &(t, v) in s.samples.iter().filter(|(_, v)| v.is_finite()) {
                by_time.insert(t.round() as i64, v);
            }
        }
    }
    let mut quota: HashMap<(&str, &str), BTreeMap<i64, f64>> = HashMap::new();
    for s in &quotas {
        let slot = quota
            .entry((s.label("namespace"), s.label("resource")))
            .or_default();
        for &(t, v) in s.samples.iter().filter(|(_, v)| v.is_finite()) {
            slot.insert(t.round() as i64, v);
        }
    }

    let mut out = HashMap::new();
    for (&ns, sums) in &minutes {
        let get = |sum: Sum| sums.get(&sum);
        let Some(end) = get(Sum::Cpu)
            .and_then(|cpu| cpu.iter().rev().find(|(_, v)| **v > 0.0))
            .map(|(&t, _)| (t + STEP_SECS - 1).div_euclid(STEP_SECS) * STEP_SECS)
        else {
            continue; // never used CPU: no data, as for an idle container
        };
        let in_window = |sum: Sum, t: i64| -> Vec<f64> {
            get(sum)
                .map(|m| {
                    // `[t − 15m, t]` or `(t − 15m, t]` (`prometheus::Windows`).
                    let from = if closed {
                        t - STEP_SECS
                    } else {
                        t - STEP_SECS + 1
                    };
                    m.range(from..=t).map(|(_, v)| *v).collect()
                })
                .unwrap_or_default()
        };
        let quota_at = |resource: &str, t: i64| {
            quota
                .get(&(ns, resource))
                .and_then(|q| q.get(&t))
                .map_or_else(Agg::default, |v| Agg::flat(*v))
        };
        // Collected: full B-tree nodes (`Grid::series`).
        let series: Series = (0..=(15 * 86_400 / STEP_SECS))
            .filter_map(|k| {
                let t = end - k * STEP_SECS;
                let pods = in_window(Sum::Pods, t);
                let interval = Interval::from(Parts {
                    cpu_request: quota_at("requests.cpu", t),
                    cpu_limit: quota_at("limits.cpu", t),
                    cpu_usage: Agg::window(&in_window(Sum::Cpu, t)),
                    cpu_throttle: Agg::window(&in_window(Sum::Throttle, t)),
                    memory_request: quota_at("requests.memory", t),
                    memory_limit: quota_at("limits.memory", t),
                    memory_usage: Agg::window(&in_window(Sum::Memory, t)),
                    memory_rss: Agg::window(&in_window(Sum::Rss, t)),
                    pods: Agg::window(&pods).avg,
                });
                (interval != Interval::default()).then_some((t, interval))
            })
            .collect();
        out.insert(ns.to_owned(), Fetched { end, series });
    }
    Ok(out)
}
