//! The recommendation producer's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rivulet_common::Health;

type Labels = Vec<(String, String)>;

/// Every metric the service exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Jobs ended, by final status.
    pub jobs: Family<Labels, Counter>,
    /// Experiments computed, by status (PROCESSED, FAILED).
    pub experiments: Family<Labels, Counter>,
    /// Kafka publications, by outcome (PUBLISHED, PUBLISH_FAILED).
    pub published: Family<Labels, Counter>,
    /// Requests refused with 400.
    pub bad_requests: Counter,
    /// Queries sent to datasources (retries included).
    pub datasource_queries: Counter,
    /// Webhook calls made, by outcome (COMPLETED, FAILED).
    pub webhook_calls: Family<Labels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|r| {
            r.register("jobs", "Bulk jobs ended", m.jobs.clone());
            r.register("experiments", "Experiments computed", m.experiments.clone());
            r.register("published", "Kafka publications", m.published.clone());
            r.register(
                "bad_requests",
                "Requests refused with 400",
                m.bad_requests.clone(),
            );
            r.register(
                "datasource_queries",
                "Queries sent to datasources",
                m.datasource_queries.clone(),
            );
            r.register(
                "webhook_calls",
                "Webhook calls made, by outcome",
                m.webhook_calls.clone(),
            );
        });
        m
    }
}
