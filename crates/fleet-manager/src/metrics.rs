//! The fleet manager's metrics, with the reference's names and labels so its dashboards and
//! SLO rules apply: `api_inbound_request_count`/`_duration` and `kas_fleet_manager_*`.
//!
//! The reference's counters have no `_total` suffix; OpenMetrics counters must have one, so
//! they are exported as monotonic gauges under the reference's names (`rate()` works on both).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use rivulet_common::Health;

use crate::store::QueryMetrics;

/// Label set.
pub type Labels = Vec<(&'static str, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn api_buckets() -> Histogram {
    // 0.1 s and 1 s are the latency SLO's thresholds.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
    ])
}

fn creation_buckets() -> Histogram {
    // 270 s and 360 s are the provisioning SLO's thresholds.
    Histogram::new([
        1.0, 30.0, 60.0, 120.0, 180.0, 240.0, 270.0, 300.0, 360.0, 420.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0,
    ])
}

fn reconcile_buckets() -> Histogram {
    Histogram::new([0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0])
}

/// Every metric.
#[derive(Clone)]
pub struct Metrics {
    pub api_count: Family<Labels, Gauge>,
    pub api_duration: Histograms,
    pub creation_duration: Histograms,
    pub operations_success: Family<Labels, Gauge>,
    pub operations_total: Family<Labels, Gauge>,
    pub status_count: Family<Labels, Gauge>,
    pub leader: Family<Labels, Gauge>,
    pub reconcile_duration: Histograms,
    pub reconcile_success: Family<Labels, Gauge>,
    pub reconcile_failure: Family<Labels, Gauge>,
    pub reconcile_errors: Family<Labels, Gauge>,
    pub transitions_lost: Family<Labels, Gauge>,
}

impl Metrics {
    /// Registers every metric (and the store's) with `health`.
    pub fn register(health: &Health, queries: &Arc<QueryMetrics>) -> Metrics {
        let m = Metrics {
            api_count: Family::default(),
            api_duration: Family::new_with_constructor(api_buckets),
            creation_duration: Family::new_with_constructor(creation_buckets),
            operations_success: Family::default(),
            operations_total: Family::default(),
            status_count: Family::default(),
            leader: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_buckets),
            reconcile_success: Family::default(),
            reconcile_failure: Family::default(),
            reconcile_errors: Family::default(),
            transitions_lost: Family::default(),
        };
        health.with_registry(|r| {
            r.register(
                "api_inbound_request_count",
                "Requests served, by method, path template and status code",
                m.api_count.clone(),
            );
            r.register(
                "api_inbound_request_duration",
                "Seconds to serve a request, by method, path template and status code",
                m.api_duration.clone(),
            );
            let k = "kas_fleet_manager";
            r.register(
                format!("{k}_worker_kafka_duration"),
                "Seconds from a Kafka request's creation to ready (jobType kafka_create)",
                m.creation_duration.clone(),
            );
            r.register(
                format!("{k}_kafka_operations_success_count"),
                "Kafka operations (create, delete) that completed",
                m.operations_success.clone(),
            );
            r.register(
                format!("{k}_kafka_operations_total_count"),
                "Kafka operations (create, delete) that completed or failed",
                m.operations_total.clone(),
            );
            r.register(
                format!("{k}_kafka_requests_status_count"),
                "Live Kafka requests per status",
                m.status_count.clone(),
            );
            r.register(
                format!("{k}_leader_worker"),
                "1 while this replica holds the worker type's lease",
                m.leader.clone(),
            );
            r.register(
                format!("{k}_reconciler_duration_in_seconds"),
                "Seconds one reconcile of a worker type took",
                m.reconcile_duration.clone(),
            );
            r.register(
                format!("{k}_reconciler_success_count"),
                "Reconciles that completed without error",
                m.reconcile_success.clone(),
            );
            r.register(
                format!("{k}_reconciler_failure_count"),
                "Reconciles that had at least one error",
                m.reconcile_failure.clone(),
            );
            r.register(
                format!("{k}_reconciler_errors_count"),
                "Errors met while reconciling",
                m.reconcile_errors.clone(),
            );
            r.register(
                "rivulet_fleet_transitions_lost",
                "State changes a worker attempted whose compare-and-set found the row moved on (by a DELETE, or a replica that held the lease before)",
                m.transitions_lost.clone(),
            );
            r.register(
                "database_query_count",
                "Database queries, by operation and outcome",
                queries.count.clone(),
            );
            r.register(
                "database_query_duration",
                "Seconds per database query, by operation and outcome",
                queries.duration.clone(),
            );
        });
        m
    }

    /// One served request.
    pub fn request(&self, method: &str, path: &str, code: u16, took: Duration) {
        let labels: Labels = vec![
            ("code", code.to_string()),
            ("method", method.to_owned()),
            ("path", path.to_owned()),
        ];
        self.api_count.get_or_create(&labels).inc();
        self.api_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One finished operation (`create`, `delete`).
    pub fn operation(&self, operation: &str, success: bool) {
        let labels: Labels = vec![("operation", operation.to_owned())];
        self.operations_total.get_or_create(&labels).inc();
        if success {
            self.operations_success.get_or_create(&labels).inc();
        }
    }

    /// One reconcile of `worker`, with its error count.
    pub fn reconciled(&self, worker: &'static str, took: Duration, errors: u64) {
        let labels: Labels = vec![("worker_type", worker.to_owned())];
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if errors == 0 {
            self.reconcile_success.get_or_create(&labels).inc();
        } else {
            self.reconcile_failure.get_or_create(&labels).inc();
            self.reconcile_errors
                .get_or_create(&labels)
                .inc_by(i64::try_from(errors).unwrap_or(i64::MAX));
        }
    }

    /// Whether this replica leads `worker`.
    pub fn leading(&self, worker: &'static str, leader: bool) {
        self.leader
            .get_or_create(&vec![("worker_type", worker.to_owned())])
            .set(i64::from(leader));
    }

    /// A lost compare-and-set.
    pub fn lost(&self, worker: &'static str) {
        self.transitions_lost
            .get_or_create(&vec![("worker_type", worker.to_owned())])
            .inc();
    }
}
