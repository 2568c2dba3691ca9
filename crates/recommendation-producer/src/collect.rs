//! From a datasource to the engine's input: discovery of the containers, then per namespace
//! one query per metric and aggregation for all its containers, split by container.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::future::try_join_all;

use crate::engine::data::Series;
use crate::engine::terms::STEP_SECS;
use crate::prometheus::{Prometheus, QueryError};
use crate::queries::{self, Filters, Func, Metric};

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

/// The containers matching `filters`, seen over `range` (Unix seconds, queried every 15
/// minutes) or now. Containers are keyed by namespace, workload and container (the reference
/// keys them by workload name only, mixing same-named workloads of different namespaces).
pub async fn discover(
    ds: &Prometheus,
    filters: &Filters,
    range: Option<(i64, i64)>,
) -> Result<Vec<Discovered>, QueryError> {
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
    Ok(found.into_iter().collect())
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

/// Every container's data in `namespace`, as of `at` (Unix seconds) or now: one query for
/// the last activity, then 32 range queries per distinct window end (usually one).
pub async fn fetch_namespace(
    ds: &Prometheus,
    namespace: &str,
    at: Option<i64>,
) -> Result<HashMap<String, Fetched>, QueryError> {
    let last = ds.instant(&queries::last_activity(namespace), at).await?;
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
    let mut out = HashMap::new();
    for (end, containers) in by_end {
        let start = end - 15 * 86_400;
        let jobs = Metric::ALL
            .iter()
            .flat_map(|&m| Func::ALL.iter().map(move |&f| (m, f)));
        let results = try_join_all(jobs.map(|(metric, func)| async move {
            let q = queries::recommendation(metric, func, namespace);
            ds.range(&q, start, end, STEP_SECS)
                .await
                .map(|r| (metric, func, r))
        }))
        .await?;
        let mut series: HashMap<&str, Series> = containers
            .iter()
            .map(|c| (c.as_str(), Series::new()))
            .collect();
        for (metric, func, result) in &results {
            for s in result {
                let Some(target) = series.get_mut(s.label("container")) else {
                    continue;
                };
                for &(t, v) in &s.samples {
                    if v.is_finite() {
                        let interval = target.entry(t.round() as i64).or_default();
                        *func.of(metric.of(interval)) = Some(v);
                    }
                }
            }
        }
        for (container, s) in series {
            out.insert(container.to_owned(), Fetched { end, series: s });
        }
    }
    Ok(out)
}
