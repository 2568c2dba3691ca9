//! The monitor's Prometheus metrics (labels: `resource` is the resource type, `event_type`
//! ADDED/MODIFIED/DELETED). No metric carries an object's name or content.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use rivulet_common::Health;

/// Label set of a per-resource metric.
pub type Labels = Vec<(&'static str, String)>;

/// Every metric the monitor exports.
#[derive(Clone)]
pub struct Metrics {
    /// Changes seen on watches and lists, by resource and event type.
    pub seen: Family<Labels, Counter>,
    /// Messages published (committed), by resource and event type.
    pub published: Family<Labels, Counter>,
    /// States not published because the topic already holds them (same uid and
    /// resourceVersion), by resource.
    pub unchanged: Family<Labels, Counter>,
    /// Watches started again (after a timeout, an error or a 410), by resource.
    pub watch_restarts: Family<Labels, Counter>,
    /// 410 Gone answers (the resourceVersion was compacted away): a re-list follows.
    pub gone: Family<Labels, Counter>,
    /// Full lists done, by resource.
    pub lists: Family<Labels, Counter>,
    /// Requests the API server refused with 403, by resource.
    pub forbidden: Family<Labels, Counter>,
    /// Transactions that failed, by reason.
    pub publish_errors: Family<Labels, Counter>,
    /// Objects published without `object` because they exceed the topic's size limit.
    pub truncated: Family<Labels, Counter>,
    /// Values replaced by their HMAC.
    pub redacted: Counter,
    /// 1 while this replica leads and publishes.
    pub leader: Gauge,
    /// States waiting to be published.
    pub pending: Gauge,
    /// Times a watch paused because `--max-pending` states were waiting.
    pub pending_full: Counter,
    /// Seconds from the monitor learning of a change to its transaction committing.
    pub change_to_publish: Histogram,
    /// Transactions committed.
    pub transactions: Counter,
    /// Seconds of one transaction, begin to commit.
    pub transaction_seconds: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them with `health`'s registry.
    pub fn register(health: &Health) -> Self {
        let m = Self {
            seen: Family::default(),
            published: Family::default(),
            unchanged: Family::default(),
            watch_restarts: Family::default(),
            gone: Family::default(),
            lists: Family::default(),
            forbidden: Family::default(),
            publish_errors: Family::default(),
            truncated: Family::default(),
            redacted: Counter::default(),
            leader: Gauge::default(),
            pending: Gauge::default(),
            pending_full: Counter::default(),
            change_to_publish: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0,
            ]),
            transactions: Counter::default(),
            transaction_seconds: Histogram::new([
                0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 30.0,
            ]),
        };
        health.with_registry(|r| {
            r.register(
                "changes_seen",
                "Changes seen on watches and lists",
                m.seen.clone(),
            );
            r.register(
                "changes_published",
                "Changes published (committed)",
                m.published.clone(),
            );
            r.register(
                "changes_unchanged",
                "States the topic already held, not published",
                m.unchanged.clone(),
            );
            r.register(
                "watch_restarts",
                "Watches started again",
                m.watch_restarts.clone(),
            );
            r.register(
                "watch_gone",
                "410 Gone answers (a re-list follows)",
                m.gone.clone(),
            );
            r.register("lists", "Full lists", m.lists.clone());
            r.register(
                "forbidden",
                "Requests refused with 403",
                m.forbidden.clone(),
            );
            r.register(
                "publish_errors",
                "Transactions that failed",
                m.publish_errors.clone(),
            );
            r.register(
                "truncated",
                "Objects published without their body (too big)",
                m.truncated.clone(),
            );
            r.register(
                "redacted_values",
                "Values replaced by their HMAC",
                m.redacted.clone(),
            );
            r.register("leader", "1 while this replica leads", m.leader.clone());
            r.register(
                "pending",
                "States waiting to be published",
                m.pending.clone(),
            );
            r.register(
                "pending_full",
                "Times a watch paused on --max-pending",
                m.pending_full.clone(),
            );
            r.register(
                "change_to_publish_seconds",
                "From learning of a change to its transaction committing",
                m.change_to_publish.clone(),
            );
            r.register(
                "transactions",
                "Transactions committed",
                m.transactions.clone(),
            );
            r.register(
                "transaction_seconds",
                "One transaction, begin to commit",
                m.transaction_seconds.clone(),
            );
        });
        m
    }
}

/// `resource=<type>`.
pub fn resource(resource: &str) -> Labels {
    vec![("resource", resource.to_owned())]
}

/// `resource=<type>, event_type=<type>`.
pub fn resource_event(resource: &str, event_type: &str) -> Labels {
    vec![
        ("resource", resource.to_owned()),
        ("event_type", event_type.to_owned()),
    ]
}
