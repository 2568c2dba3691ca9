//! The UI's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rivulet_common::Health;

type Labels = Vec<(String, String)>;

/// Every metric the UI exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Records applied to the index, by feed.
    pub records: Family<Labels, Counter>,
    /// Messages skipped because they were not valid records, by feed and reason.
    pub rejected: Family<Labels, Counter>,
    /// Records not applied yet, by feed.
    pub lag: Family<Labels, Gauge>,
    /// Schema registry calls that failed (the message is retried).
    pub registry_errors: Counter,
    /// Switches of the summary source (the active backend colour changed).
    pub source_switches: Counter,
}

impl Metrics {
    /// Registers the summary streams' metrics with `health`'s registry.
    pub fn register_streams(health: &Health, streams: &crate::stream::Streams) {
        health.with_registry(|r| {
            r.register(
                "streams",
                "Open /api/v1/summary/stream connections",
                streams.open.clone(),
            );
            r.register(
                "stream_events",
                "Events sent on summary streams",
                streams.events.clone(),
            );
            r.register(
                "streams_refused",
                "Summary streams refused at --stream-limit",
                streams.refused.clone(),
            );
        });
    }

    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|r| {
            r.register("records", "Records applied to the index", m.records.clone());
            r.register(
                "rejected",
                "Messages skipped because they were not valid records",
                m.rejected.clone(),
            );
            r.register("lag", "Records not applied yet", m.lag.clone());
            r.register(
                "source_switches",
                "Switches of the summary topic served (backend colour changes)",
                m.source_switches.clone(),
            );
            r.register(
                "registry_errors",
                "Schema registry calls that failed",
                m.registry_errors.clone(),
            );
        });
        m
    }
}
