//! The registry's Prometheus metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rivulet_common::Health;

/// Labels of an HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/schemas/ids/{id}`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Every metric the registry exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// New schema versions this replica registered.
    pub registrations: Counter,
    /// Claims this replica wrote that lost to another writer's earlier claim.
    pub claim_conflicts: Counter,
    /// `_schemas` records applied.
    pub records_applied: Counter,
    /// `_schemas` records rejected by the first-claim-wins rules.
    pub records_rejected: Counter,
    /// `_schemas` records that could not be decoded and were skipped.
    pub records_malformed: Counter,
    /// Next `_schemas` offset to apply.
    pub log_offset: Gauge,
    /// Distinct schema ids known.
    pub schemas: Gauge,
    /// HTTP requests by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|r| {
            r.register("registrations", "New schema versions registered by this replica", m.registrations.clone());
            r.register("claim_conflicts", "Registration claims that lost to an earlier claim", m.claim_conflicts.clone());
            r.register("log_records_applied", "_schemas records applied", m.records_applied.clone());
            r.register("log_records_rejected", "_schemas records rejected as conflicting", m.records_rejected.clone());
            r.register("log_records_malformed", "_schemas records skipped as undecodable", m.records_malformed.clone());
            r.register("log_offset", "Next _schemas offset to apply", m.log_offset.clone());
            r.register("schemas", "Distinct schema ids", m.schemas.clone());
            r.register("http_requests", "HTTP requests by method, route and status", m.requests.clone());
        });
        m
    }
}
