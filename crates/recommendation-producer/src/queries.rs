//! PromQL: the discovery (metadata) queries with the job's filters, and the per-namespace
//! recommendation queries that replace the reference's ~33 queries per container.

use std::collections::BTreeMap;

use crate::engine::data::{Agg, Interval};

/// Include and exclude regexes of one label. Include wins: when both are given, what the
/// include matches is kept (the reference ANDs them, so `include ["openshift-tuning"]` with
/// `exclude ["openshift-.*"]` found nothing, against its own documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Regexes to keep.
    pub include: Vec<String>,
    /// Regexes to drop.
    pub exclude: Vec<String>,
}

/// A job's filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// On `namespace`.
    pub namespace: Filter,
    /// On `workload`.
    pub workload: Filter,
    /// On `container`.
    pub container: Filter,
    /// Exact label matches added to every discovery query.
    pub labels: BTreeMap<String, String>,
}

/// A PromQL string literal body: backslashes and quotes escaped.
pub fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn joined(regexes: &[String]) -> String {
    let parts: Vec<&str> = regexes
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .collect();
    quote(&parts.join("|"))
}

/// The matcher of `label` for `filter`.
pub fn matcher(label: &str, filter: &Filter) -> String {
    if !joined(&filter.include).is_empty() {
        format!("{label}=~\"{}\"", joined(&filter.include))
    } else if !joined(&filter.exclude).is_empty() {
        format!("{label}!=\"\",{label}!~\"{}\"", joined(&filter.exclude))
    } else {
        format!("{label}!=\"\"")
    }
}

fn labels(filters: &Filters) -> String {
    filters
        .labels
        .iter()
        .map(|(k, v)| format!(",{k}=\"{}\"", quote(v)))
        .collect()
}

/// The three discovery queries: namespaces, workloads, containers (with their workloads).
pub fn discovery(filters: &Filters) -> [String; 3] {
    let extra = labels(filters);
    let ns = matcher("namespace", &filters.namespace);
    let wl = matcher("workload", &filters.workload);
    let c = matcher("container", &filters.container);
    let owner = format!(
        "avg_over_time(namespace_workload_pod:kube_pod_owner:relabel{{{ns},{wl}{extra}}}[15m])"
    );
    [
        format!(
            "sum by (namespace) (avg_over_time(kube_namespace_status_phase{{{ns}{extra}}}[15m]))"
        ),
        format!("sum by (namespace, workload, workload_type) ({owner})"),
        format!(
            "sum by (container, image, workload, workload_type, namespace) (avg_over_time(kube_pod_container_info{{{ns},{c}{extra}}}[15m]) * on (pod, namespace) group_left(workload, workload_type) {owner})"
        ),
    ]
}

/// A metric of the engine's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// CPU request.
    CpuRequest,
    /// CPU limit.
    CpuLimit,
    /// CPU usage.
    CpuUsage,
    /// CPU throttling.
    CpuThrottle,
    /// Memory request.
    MemoryRequest,
    /// Memory limit.
    MemoryLimit,
    /// Memory working set.
    MemoryUsage,
    /// Memory RSS.
    MemoryRss,
}

/// An aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum.
    Sum,
}

impl Metric {
    /// All of them.
    pub const ALL: [Metric; 8] = [
        Metric::CpuRequest,
        Metric::CpuLimit,
        Metric::CpuUsage,
        Metric::CpuThrottle,
        Metric::MemoryRequest,
        Metric::MemoryLimit,
        Metric::MemoryUsage,
        Metric::MemoryRss,
    ];

    /// Its aggregates in an interval.
    pub fn of(self, i: &mut Interval) -> &mut Agg {
        match self {
            Metric::CpuRequest => &mut i.cpu_request,
            Metric::CpuLimit => &mut i.cpu_limit,
            Metric::CpuUsage => &mut i.cpu_usage,
            Metric::CpuThrottle => &mut i.cpu_throttle,
            Metric::MemoryRequest => &mut i.memory_request,
            Metric::MemoryLimit => &mut i.memory_limit,
            Metric::MemoryUsage => &mut i.memory_usage,
            Metric::MemoryRss => &mut i.memory_rss,
        }
    }
}

impl Func {
    /// All of them.
    pub const ALL: [Func; 4] = [Func::Avg, Func::Min, Func::Max, Func::Sum];

    /// Its PromQL name.
    pub fn name(self) -> &'static str {
        match self {
            Func::Avg => "avg",
            Func::Min => "min",
            Func::Max => "max",
            Func::Sum => "sum",
        }
    }

    /// The slot it fills.
    pub fn of(self, a: &mut Agg) -> &mut Option<f64> {
        match self {
            Func::Avg => &mut a.avg,
            Func::Min => &mut a.min,
            Func::Max => &mut a.max,
            Func::Sum => &mut a.sum,
        }
    }
}

const CPU_RULE: &str = "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate";

/// The query of `metric`'s `func` for every container of `namespace`, by (namespace,
/// container): the reference's per-container query with the container matcher dropped.
pub fn recommendation(metric: Metric, func: Func, namespace: &str) -> String {
    let s = format!(
        "container!=\"\",container!=\"POD\",pod!=\"\",namespace=\"{}\"",
        quote(namespace)
    );
    let f = func.name();
    let by = "by (namespace, container)";
    // The windowed metrics: sum takes the mean over time, then sums over pods.
    let over = if func == Func::Sum { "avg" } else { f };
    match metric {
        Metric::CpuRequest | Metric::MemoryRequest | Metric::CpuLimit | Metric::MemoryLimit => {
            let name = match metric {
                Metric::CpuRequest | Metric::MemoryRequest => {
                    "kube_pod_container_resource_requests"
                }
                _ => "kube_pod_container_resource_limits",
            };
            let resource = match metric {
                Metric::CpuRequest | Metric::CpuLimit => "resource=\"cpu\",unit=\"core\"",
                _ => "resource=\"memory\",unit=\"byte\"",
            };
            format!("{f} {by} ({name}{{{s},{resource}}})")
        }
        Metric::CpuUsage => format!("{f} {by} ({over}_over_time({CPU_RULE}{{{s}}}[15m]))"),
        Metric::CpuThrottle => {
            format!("{f} {by} (rate(container_cpu_cfs_throttled_seconds_total{{{s}}}[15m]))")
        }
        Metric::MemoryUsage => {
            format!("{f} {by} ({over}_over_time(container_memory_working_set_bytes{{{s}}}[15m]))")
        }
        Metric::MemoryRss => {
            format!("{f} {by} ({over}_over_time(container_memory_rss{{{s}}}[15m]))")
        }
    }
}

/// The last time each container of `namespace` used CPU, within 15 days.
pub fn last_activity(namespace: &str) -> String {
    format!(
        "max by (namespace, container) (last_over_time((timestamp(container_cpu_usage_seconds_total{{namespace=\"{}\",container!=\"\",container!=\"POD\"}} > 0))[15d:]))",
        quote(namespace)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_wins_and_values_are_escaped() {
        let f = Filter {
            include: vec![" openshift-tuning ".into()],
            exclude: vec!["openshift-.*".into()],
        };
        assert_eq!(matcher("namespace", &f), "namespace=~\"openshift-tuning\"");
        let f = Filter {
            include: vec![],
            exclude: vec!["kube-.*".into(), "a\"b".into()],
        };
        assert_eq!(
            matcher("namespace", &f),
            "namespace!=\"\",namespace!~\"kube-.*|a\\\"b\""
        );
        assert_eq!(matcher("container", &Filter::default()), "container!=\"\"");
        let mut filters = Filters::default();
        filters.labels.insert("org_id".into(), "x".into());
        let [ns, _, containers] = discovery(&filters);
        assert!(ns.contains("{namespace!=\"\",org_id=\"x\"}"), "{ns}");
        assert!(
            containers.contains("group_left(workload, workload_type)"),
            "{containers}"
        );
    }

    #[test]
    fn recommendation_queries_follow_the_reference() {
        let q = recommendation(Metric::CpuUsage, Func::Sum, "shop");
        assert_eq!(
            q,
            "sum by (namespace, container) (avg_over_time(node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate{container!=\"\",container!=\"POD\",pod!=\"\",namespace=\"shop\"}[15m]))"
        );
        let q = recommendation(Metric::MemoryLimit, Func::Max, "shop");
        assert!(
            q.starts_with("max by (namespace, container) (kube_pod_container_resource_limits{"),
            "{q}"
        );
        assert!(q.contains("resource=\"memory\",unit=\"byte\""), "{q}");
    }
}
