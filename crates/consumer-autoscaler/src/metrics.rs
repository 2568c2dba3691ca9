//! The operator's metrics: Konsumerator's names, labels and meanings (so its Grafana
//! dashboards work), and `rivulet_autoscaler_*` for what is new.
//!
//! Exposition differs from the Go client's in two ways, names kept: counters the reference
//! names without `_total` (`konsumerator_consumer_deployments_*_errors`) are exported as
//! monotonic gauges (OpenMetrics counters must end in `_total`; `rate()` works on both); and
//! the reference's summaries (`*_duration_seconds`) are exported as the same series a Go summary
//! has (`{quantile="0.5|0.9|0.99"}`, `_sum`, `_count`), the quantiles over the last 128
//! observations per label set rather than a 10-minute window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rivulet_common::Health;

/// Label set.
pub type Labels = Vec<(&'static str, String)>;

/// `consumer` only.
pub fn consumer(name: &str) -> Labels {
    vec![("consumer", name.to_owned())]
}

/// `consumer` and one more.
pub fn with(name: &str, key: &'static str, value: impl Into<String>) -> Labels {
    vec![("consumer", name.to_owned()), (key, value.into())]
}

const WINDOW: usize = 128;
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// A Go-summary-shaped metric: `name{quantile}`, `name_sum`, `name_count`.
#[derive(Clone, Default)]
pub struct Summary {
    quantiles: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    sum: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    count: Family<Labels, Gauge>,
    window: Arc<Mutex<HashMap<Labels, VecDeque<f64>>>>,
}

impl Summary {
    fn register(&self, r: &mut Registry, name: &str, help: &str) {
        r.register(name, help, self.quantiles.clone());
        r.register(
            format!("{name}_sum"),
            format!("{help} (sum)"),
            self.sum.clone(),
        );
        r.register(
            format!("{name}_count"),
            format!("{help} (count)"),
            self.count.clone(),
        );
    }

    /// Records one observation.
    pub fn observe(&self, labels: &Labels, value: f64) {
        self.sum.get_or_create(labels).inc_by(value);
        self.count.get_or_create(labels).inc();
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let w = window.entry(labels.clone()).or_default();
        if w.len() == WINDOW {
            w.pop_front();
        }
        w.push_back(value);
        let mut sorted: Vec<f64> = w.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        for (q, label) in QUANTILES {
            let i = ((sorted.len() - 1) as f64 * q).round() as usize;
            let mut l = labels.clone();
            l.push(("quantile", label.to_owned()));
            self.quantiles.get_or_create(&l).set(sorted[i]);
        }
    }
}

/// Every metric the operator exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Reconciles, per Consumer.
    pub reconcile: Family<Labels, Counter>,
    /// Reconciles that failed.
    pub reconcile_errors: Family<Labels, Counter>,
    /// Seconds per reconcile.
    pub reconcile_duration: Summary,
    /// Deployments created.
    pub create: Family<Labels, Counter>,
    /// Deployments that could not be created (monotonic).
    pub create_errors: Family<Labels, Gauge>,
    /// Deployments deleted.
    pub delete: Family<Labels, Counter>,
    /// Deployments that could not be deleted (monotonic).
    pub delete_errors: Family<Labels, Gauge>,
    /// Deployments updated.
    pub update: Family<Labels, Counter>,
    /// Deployments that could not be updated (monotonic).
    pub update_errors: Family<Labels, Gauge>,
    /// Seconds per status update.
    pub status_update_duration: Summary,
    /// Status counts by `type` (running, paused, lagging, outdated, expected, missing,
    /// redundant).
    pub status: Family<Labels, Gauge>,
    /// The global pool's CPU (milli-cores).
    pub global_cpu_limit: Family<Labels, Gauge>,
    /// The global pool's memory (bytes).
    pub global_memory_limit: Family<Labels, Gauge>,
    /// CPU requested by all instances (milli-cores).
    pub global_cpu_allocated: Family<Labels, Gauge>,
    /// Memory requested by all instances (bytes).
    pub global_memory_allocated: Family<Labels, Gauge>,
    /// Per Deployment: 1 RUNNING, 2 SATURATED, 3 PENDING_SCALE_UP, 4 PENDING_SCALE_DOWN,
    /// 0 unknown.
    pub deployment_status: Family<Labels, Gauge>,
    /// Per Deployment, milli-cores withheld by the limits.
    pub deployment_saturation: Family<Labels, Gauge>,
    /// Prometheus provider: queries by `type` (offset, production_rate, consumption_rate).
    pub prom_requests: Family<Labels, Counter>,
    /// Prometheus provider: queries no address answered.
    pub prom_request_errors: Family<Labels, Counter>,
    /// Prometheus provider: seconds per query (all addresses).
    pub prom_request_duration: Summary,
    /// Prometheus provider: HTTP requests by `addr`.
    pub prom_sub_requests: Family<Labels, Counter>,
    /// Prometheus provider: failed HTTP requests by `addr`.
    pub prom_sub_request_errors: Family<Labels, Counter>,
    /// Prometheus provider: seconds per successful HTTP request by `addr`.
    pub prom_sub_request_duration: Summary,
    /// Lag in seconds per partition, as the predictor sees it (both providers).
    pub lag_observed: Family<Labels, Gauge>,
    /// Prometheus provider: series received by `type`.
    pub samples_received: Family<Labels, Gauge>,
    /// Lookups of a partition without a value, by `partition` and `type`.
    pub zero_values: Family<Labels, Counter>,
    /// `binary_version`.
    pub meta_info: Family<Labels, Gauge>,
    /// Rivulet: `kafka` provider syncs.
    pub kafka_syncs: Family<Labels, Counter>,
    /// Rivulet: `kafka` provider syncs that failed.
    pub kafka_sync_errors: Family<Labels, Counter>,
    /// Rivulet: seconds per `kafka` provider sync.
    pub kafka_sync_seconds: Summary,
    /// Rivulet: messages behind per partition (`kafka` provider).
    pub messages_behind: Family<Labels, Gauge>,
    /// Rivulet: production rate per partition, messages/s (`kafka` provider).
    pub production_rate: Family<Labels, Gauge>,
    /// Rivulet: API requests made, by `verb` (get, list, create, replace, delete, patch,
    /// dry_run).
    pub api_requests: Family<Labels, Counter>,
    /// Rivulet: Deployments left untouched because nothing changed.
    pub unchanged: Family<Labels, Counter>,
    /// Rivulet: Consumers whose spec is refused (1) or accepted (0).
    pub invalid: Family<Labels, Gauge>,
    /// Rivulet: 1 while this replica leads.
    pub leader: Gauge,
}

impl Metrics {
    /// The metrics, registered with `health` (an unprefixed registry).
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|root| {
            let r = root.sub_registry_with_prefix("konsumerator_consumer");
            r.register("reconcile", "Total number of processed reconcile events", m.reconcile.clone());
            r.register("reconcile_errors", "Total number of errors while processing reconcile events", m.reconcile_errors.clone());
            m.reconcile_duration.register(r, "reconcile_duration_seconds", "Reconcile event duration");
            r.register("deployments_create", "Total number of created deployments", m.create.clone());
            r.register("deployments_create_errors", "Total number of errors while creating deployment", m.create_errors.clone());
            r.register("deployments_delete", "Total number of deleted deployments", m.delete.clone());
            r.register("deployments_delete_errors", "Total number of errors while deleting deployment", m.delete_errors.clone());
            r.register("deployments_update", "Total number of updated deployments", m.update.clone());
            r.register("deployments_update_errors", "Total number of errors while updating deployments", m.update_errors.clone());
            m.status_update_duration.register(r, "status_update_duration_seconds", "Status update duration");
            r.register("status", "Consumer deployments status", m.status.clone());
            r.register("global_cpu_limit_mcores", "Milli-cores of the global limiter", m.global_cpu_limit.clone());
            r.register("global_memory_limit_bytes", "Bytes of the global limiter", m.global_memory_limit.clone());
            r.register("global_cpu_allocated_mcores", "Milli-cores allocated from the global limiter pool", m.global_cpu_allocated.clone());
            r.register("global_memory_allocated_bytes", "Bytes allocated from the global limiter pool", m.global_memory_allocated.clone());
            let r = root.sub_registry_with_prefix("konsumerator_deployment");
            r.register("status", "Current deployment status. 1 - RUNNING, 2 - SATURATED, 3 - PENDING_SCALE_UP, 4 - PENDING_SCALE_DOWN, 0 - UNKNOWN", m.deployment_status.clone());
            r.register("saturation", "Current cpu saturation for deployment", m.deployment_saturation.clone());
            let r = root.sub_registry_with_prefix("konsumerator_prometheus_mp");
            r.register("requests", "Total number of Prometheus provider requests", m.prom_requests.clone());
            r.register("requests_errors", "Total number of error requests to Prometheus provider", m.prom_request_errors.clone());
            m.prom_request_duration.register(r, "request_duration_seconds", "Prometheus provider request duration");
            r.register("sub_requests", "Total number of HTTP requests to Prometheus", m.prom_sub_requests.clone());
            r.register("sub_requests_errors", "Total number of HTTP request errors to Prometheus", m.prom_sub_request_errors.clone());
            m.prom_sub_request_duration.register(r, "sub_request_duration_seconds", "Prometheus HTTP request duration");
            r.register("lag_observed_seconds", "Lag in seconds as seen by the operator (messages behind / production rate)", m.lag_observed.clone());
            r.register("samples_received_total", "Number of timeseries samples received from the provider", m.samples_received.clone());
            r.register("zero_values", "Estimation lookups that found no value (metrics missing)", m.zero_values.clone());
            root.register("konsumerator_meta_info", "Binary version", m.meta_info.clone());
            let r = root.sub_registry_with_prefix("rivulet_autoscaler");
            r.register("kafka_syncs", "Syncs of the kafka metrics provider", m.kafka_syncs.clone());
            r.register("kafka_sync_errors", "Syncs of the kafka metrics provider that failed", m.kafka_sync_errors.clone());
            m.kafka_sync_seconds.register(r, "kafka_sync_seconds", "Seconds per kafka provider sync");
            r.register("messages_behind", "Messages behind per partition (kafka provider)", m.messages_behind.clone());
            r.register("production_rate", "Messages produced per second per partition (kafka provider)", m.production_rate.clone());
            r.register("api_requests", "Kubernetes API requests by verb", m.api_requests.clone());
            r.register("deployments_unchanged", "Deployments not written because nothing changed", m.unchanged.clone());
            r.register("consumer_invalid", "1 while a Consumer's spec is refused", m.invalid.clone());
            r.register("leader", "1 while this replica leads", m.leader.clone());
        });
        m.meta_info
            .get_or_create(&vec![
                ("binary_version", env!("CARGO_PKG_VERSION").to_owned()),
                ("go_version", "none (Rust)".to_owned()),
            ])
            .set(1);
        m
    }

    /// Counts an API request.
    pub fn api(&self, verb: &'static str) {
        self.api_requests
            .get_or_create(&vec![("verb", verb.to_owned())])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_names_are_exported() {
        let health = Health::unprefixed();
        let m = Metrics::register(&health);
        m.reconcile.get_or_create(&consumer("c")).inc();
        m.create_errors.get_or_create(&consumer("c")).inc();
        m.reconcile_duration.observe(&consumer("c"), 0.25);
        m.deployment_status
            .get_or_create(&with("c", "deployment", "c-0"))
            .set(3);
        m.prom_requests
            .get_or_create(&with("c", "type", "offset"))
            .inc();
        let text = health.render_text();
        for line in [
            "konsumerator_consumer_reconcile_total{consumer=\"c\"} 1",
            "konsumerator_consumer_deployments_create_errors{consumer=\"c\"} 1",
            "konsumerator_consumer_reconcile_duration_seconds{consumer=\"c\",quantile=\"0.5\"} 0.25",
            "konsumerator_consumer_reconcile_duration_seconds_count{consumer=\"c\"} 1",
            "konsumerator_deployment_status{consumer=\"c\",deployment=\"c-0\"} 3",
            "konsumerator_prometheus_mp_requests_total{consumer=\"c\",type=\"offset\"} 1",
            "konsumerator_meta_info{binary_version=",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
