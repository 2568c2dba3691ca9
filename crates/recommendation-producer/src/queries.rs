//! PromQL: the discovery (metadata) queries with the job's filters, and the per-namespace
//! recommendation queries that replace the reference's ~33 queries per container.

use std::collections::BTreeMap;

use crate::remote_read::Matcher;

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

/// One per-series query of a namespace's recommendation data. The reference runs 32 queries
/// per container (8 metrics × avg/min/max/sum, each aggregated `by (container, namespace)` in
/// PromQL); these 5 return every container's per-pod series at once: requests and limits, and
/// the throttling rate, at the 15-minute step, and the raw samples of CPU usage, working set
/// and RSS over the whole window, from which [`crate::collect`] computes each pod's mean, min
/// and max per 15-minute interval `(t − 15m, t]` and then the cross-pod aggregates: what
/// `<fn>_over_time(…[15m])` and `avg by`, `min by`, `max by`, `sum by` would have computed, with
/// Prometheus reading each sample once instead of three times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Raw {
    /// CPU and memory requests and limits (labels `__name__`, `resource` and `unit`), every 15
    /// minutes, in one selector.
    Resources,
    /// CPU throttling rate, every 15 minutes.
    Throttle,
    /// CPU usage samples.
    Cpu,
    /// Working-set samples.
    Memory,
    /// RSS samples.
    Rss,
}

impl Raw {
    /// The queries run at the 15-minute step.
    pub const RANGED: [Raw; 2] = [Raw::Resources, Raw::Throttle];
    /// The queries that return raw samples.
    pub const SAMPLED: [Raw; 3] = [Raw::Cpu, Raw::Memory, Raw::Rss];
}

/// The requests metric of kube-state-metrics.
pub const REQUESTS: &str = "kube_pod_container_resource_requests";
/// The limits metric of kube-state-metrics.
pub const LIMITS: &str = "kube_pod_container_resource_limits";

const CPU_RULE: &str = "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate";

fn selector(namespace: &str) -> String {
    format!(
        "container!=\"\",container!=\"POD\",pod!=\"\",namespace=\"{}\"",
        quote(namespace)
    )
}

/// The query of `raw` for every container of `namespace`: a range query at the 15-minute step
/// for [`Raw::RANGED`], an instant query returning the samples of the last `window_secs` for
/// [`Raw::SAMPLED`].
pub fn per_pod(raw: Raw, namespace: &str, window_secs: i64) -> String {
    let s = selector(namespace);
    match raw {
        // One selector for both metrics and both resources, not `m{cpu} or m{memory}` per
        // metric: Prometheus 2.42 spent 131 ms of CPU on it for a namespace of the benchmark's
        // dataset against 217 ms for the two `or` queries (`scripts/bench-recommender`,
        // 2026-12-04). The regexes also admit pairs such as (memory, core), which
        // kube-state-metrics does not export; `collect` keeps only (cpu, core) and
        // (memory, byte), so the data is what the `or` queries returned.
        Raw::Resources => format!(
            "{{__name__=~\"{REQUESTS}|{LIMITS}\",{s},resource=~\"cpu|memory\",unit=~\"core|byte\"}}"
        ),
        Raw::Throttle => format!("rate(container_cpu_cfs_throttled_seconds_total{{{s}}}[15m])"),
        Raw::Cpu => format!("{CPU_RULE}{{{s}}}[{window_secs}s]"),
        Raw::Memory => format!("container_memory_working_set_bytes{{{s}}}[{window_secs}s]"),
        Raw::Rss => format!("container_memory_rss{{{s}}}[{window_secs}s]"),
    }
}

/// [`per_pod`]'s throttling rates for the containers of `pods` only (the counters that changed;
/// the others' rate is known to be 0).
pub fn throttle_of_pods(namespace: &str, pods: &[&str]) -> String {
    format!(
        "rate(container_cpu_cfs_throttled_seconds_total{{{},pod=~\"{}\"}}[15m])",
        selector(namespace),
        alternatives(pods)
    )
}

/// The series [`per_pod`] selects for `raw` (for [`Raw::Throttle`], the counters it rates), as
/// remote-read matchers.
pub fn per_pod_matchers(raw: Raw, namespace: &str) -> Vec<Matcher> {
    let name = |n: &str| Matcher::Eq("__name__".into(), n.into());
    let mut matchers = match raw {
        Raw::Resources => vec![
            Matcher::Re("__name__".into(), format!("{REQUESTS}|{LIMITS}")),
            Matcher::Re("resource".into(), "cpu|memory".into()),
            Matcher::Re("unit".into(), "core|byte".into()),
        ],
        Raw::Throttle => vec![name("container_cpu_cfs_throttled_seconds_total")],
        Raw::Cpu => vec![name(CPU_RULE)],
        Raw::Memory => vec![name("container_memory_working_set_bytes")],
        Raw::Rss => vec![name("container_memory_rss")],
    };
    matchers.extend([
        Matcher::Neq("container".into(), String::new()),
        Matcher::Neq("container".into(), "POD".into()),
        Matcher::Neq("pod".into(), String::new()),
        Matcher::Eq("namespace".into(), namespace.into()),
    ]);
    matchers
}

/// The last time each of `containers` in `namespace` used CPU, within 15 days (the
/// reference's query: a subquery over 15 days at one-minute resolution, costly for Prometheus;
/// see [`recent_activity`]).
pub fn last_activity(namespace: &str, containers: &[&str]) -> String {
    format!(
        "max by (namespace, container) (last_over_time((timestamp(container_cpu_usage_seconds_total{{namespace=\"{}\",container=~\"{}\"}} > 0))[15d:]))",
        quote(namespace),
        alternatives(containers)
    )
}

/// The same for the containers whose latest sample, within the lookback, shows CPU used: at a
/// whole minute this is what [`last_activity`] gives for them, at the cost of one lookup per
/// series instead of one per minute of 15 days.
pub fn recent_activity(namespace: &str) -> String {
    format!(
        "max by (namespace, container) (timestamp(container_cpu_usage_seconds_total{{namespace=\"{}\",container!=\"\",container!=\"POD\"}} > 0))",
        quote(namespace)
    )
}

/// A namespace-wide sum, one series per namespace, for namespace experiments. Each is read
/// every minute over the window and aggregated per 15-minute interval here (mean, min, max of
/// the sums), which is what the reference's `<fn>_over_time(sum by (namespace) (…)[15m:])`
/// subqueries compute, in five queries for every namespace of a job instead of a dozen per
/// namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sum {
    /// CPU usage, cores.
    Cpu,
    /// CPU throttling, cores.
    Throttle,
    /// Working set, bytes.
    Memory,
    /// RSS, bytes.
    Rss,
    /// Pods.
    Pods,
}

impl Sum {
    /// All of them.
    pub const ALL: [Sum; 5] = [Sum::Cpu, Sum::Throttle, Sum::Memory, Sum::Rss, Sum::Pods];
}

/// A regex matching exactly `names` (regex metacharacters escaped), as a PromQL string body.
fn alternatives(names: &[&str]) -> String {
    let escaped: Vec<String> = names
        .iter()
        .map(|n| {
            n.chars()
                .flat_map(|c| {
                    let meta = "\\.+*?()|[]{}^$".contains(c);
                    meta.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    quote(&escaped.join("|"))
}

/// The query of `sum` for `namespaces`.
pub fn namespace_sum(sum: Sum, namespaces: &[&str]) -> String {
    let ns = format!("namespace=~\"{}\"", alternatives(namespaces));
    let s = format!("container!=\"\",container!=\"POD\",pod!=\"\",{ns}");
    match sum {
        Sum::Cpu => format!("sum by (namespace) ({CPU_RULE}{{{s}}})"),
        Sum::Throttle => format!(
            "sum by (namespace) (rate(container_cpu_cfs_throttled_seconds_total{{{s}}}[5m]))"
        ),
        Sum::Memory => format!("sum by (namespace) (container_memory_working_set_bytes{{{s}}})"),
        Sum::Rss => format!("sum by (namespace) (container_memory_rss{{{s}}})"),
        Sum::Pods => format!("sum by (namespace) (kube_pod_info{{{ns}}})"),
    }
}

/// The hard resource quotas of `namespaces` (a namespace's current requests and limits), by
/// `resource`: `requests.cpu`, `limits.cpu`, `requests.memory`, `limits.memory`.
pub fn namespace_quotas(namespaces: &[&str]) -> String {
    format!(
        "sum by (namespace, resource) (kube_resourcequota{{namespace=~\"{}\",type=\"hard\",resource=~\"requests.cpu|limits.cpu|requests.memory|limits.memory\"}})",
        alternatives(namespaces)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_queries_match_exactly_the_namespaces() {
        let q = namespace_sum(Sum::Cpu, &["shop", "a.b"]);
        assert!(q.contains("namespace=~\"shop|a\\\\.b\""), "{q}");
        assert!(
            q.starts_with("sum by (namespace) (node_namespace_pod_container"),
            "{q}"
        );
        assert!(namespace_quotas(&["x"]).contains("type=\"hard\""));
    }

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
    fn remote_read_matchers_select_what_the_queries_do() {
        for raw in [
            Raw::Resources,
            Raw::Throttle,
            Raw::Cpu,
            Raw::Memory,
            Raw::Rss,
        ] {
            let mut ours: Vec<String> = per_pod_matchers(raw, "shop")
                .iter()
                .map(|m| match m {
                    Matcher::Eq(n, v) => format!("{n}=\"{v}\""),
                    Matcher::Neq(n, v) => format!("{n}!=\"{v}\""),
                    Matcher::Re(n, v) => format!("{n}=~\"{v}\""),
                })
                .collect();
            // The query's selector: the metric name in front (if any) and the braces' matchers.
            let query = per_pod(raw, "shop", 900);
            let query = query.trim_start_matches("rate(");
            let (name, rest) = query.split_once('{').unwrap();
            let inside = rest.split_once('}').unwrap().0;
            let mut theirs: Vec<String> = inside.split(',').map(str::to_owned).collect();
            if !name.is_empty() {
                theirs.push(format!("__name__=\"{name}\""));
            }
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs, "{query}");
        }
    }

    #[test]
    fn per_pod_queries_select_like_the_reference() {
        let q = per_pod(Raw::Cpu, "shop", 900);
        assert_eq!(
            q,
            "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate{container!=\"\",container!=\"POD\",pod!=\"\",namespace=\"shop\"}[900s]"
        );
        let q = per_pod(Raw::Resources, "shop", 900);
        assert_eq!(
            q,
            "{__name__=~\"kube_pod_container_resource_requests|kube_pod_container_resource_limits\",container!=\"\",container!=\"POD\",pod!=\"\",namespace=\"shop\",resource=~\"cpu|memory\",unit=~\"core|byte\"}"
        );
    }
}
