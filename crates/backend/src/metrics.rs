//! The backend's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rivulet_common::Health;

/// Every metric the backend exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Raw records aggregated.
    pub records: Counter,
    /// Records sent to the dead-letter topic, by reason.
    pub dead_letters: Family<Vec<(String, String)>, Counter>,
    /// Summary records written.
    pub summaries: Counter,
    /// Transactions committed.
    pub commits: Counter,
    /// Transactions that failed and were replayed.
    pub commit_failures: Counter,
    /// Keys restored from summary-stats on assignment.
    pub restored_keys: Counter,
    /// Restores that failed on a summary that cannot be read (the partition stays closed).
    pub restore_failures: Counter,
    /// Registry calls that failed (records retried).
    pub registry_errors: Counter,
    /// Replayed copies counted (their origin was pending).
    pub replays_counted: Counter,
    /// Replayed copies skipped: their origin was counted already (`pending.rs`).
    pub replays_skipped: Counter,
    /// Records held back because a partition tracks `--max-pending-runs` dead-letter runs.
    pub pending_full: Counter,
    /// Records of the assigned input partitions not consumed yet (librdkafka's statistics).
    /// Absent until the first statistics arrive: an analysis must not read a backend that has
    /// not measured its lag yet as one that has caught up (`set_lag`).
    pub lag: Family<Vec<(String, String)>, Gauge>,
}

impl Metrics {
    /// Sets the lag gauge, which exists from its first measurement on.
    pub fn set_lag(&self, lag: i64) {
        self.lag.get_or_create(&Vec::new()).set(lag);
    }

    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self::default();
        health.with_registry(|r| {
            r.register("records", "Raw records aggregated", m.records.clone());
            r.register(
                "dead_letters",
                "Records sent to the dead-letter topic",
                m.dead_letters.clone(),
            );
            r.register("summaries", "Summary records written", m.summaries.clone());
            r.register("commits", "Transactions committed", m.commits.clone());
            r.register(
                "commit_failures",
                "Transactions that failed and were replayed",
                m.commit_failures.clone(),
            );
            r.register(
                "restore_failures",
                "Restores that failed on an unreadable summary (the partition stays closed)",
                m.restore_failures.clone(),
            );
            r.register(
                "restored_keys",
                "Keys restored from summary-stats on assignment",
                m.restored_keys.clone(),
            );
            r.register(
                "replays_counted",
                "Replayed copies counted (their origin was dead-lettered)",
                m.replays_counted.clone(),
            );
            r.register(
                "replays_skipped",
                "Replayed copies skipped as already counted",
                m.replays_skipped.clone(),
            );
            r.register(
                "pending_full",
                "Records held back: too many dead letters waiting for replay",
                m.pending_full.clone(),
            );
            r.register(
                "lag",
                "Records of the assigned input partitions not consumed yet",
                m.lag.clone(),
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
