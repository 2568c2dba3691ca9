//! Command line and environment.

use std::net::SocketAddr;

use rivulet_common::{KafkaArgs, LogArgs, RegistryArgs};
use rivulet_contracts::Version;

/// Serves the widget totals from summary-stats and base-costs: REST API and dashboard.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "summary-stats-ui", version, about, long_about = None)]
pub struct Config {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// HTTP address of the API, the dashboard, `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "UI_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Topic of the monthly totals (upserts keyed `YYYY-MM|SKU`).
    #[arg(long, env = "UI_SUMMARY_TOPIC", default_value = "summary-stats")]
    pub summary_topic: String,
    /// Where the active backend colour says which summary topic it writes (its
    /// `/api/v1/output`, e.g. `http://backend-active:8082/api/v1/output`); the UI follows it
    /// through blue/green rollouts (docs/rollouts.md). Without it, --summary-topic is served.
    #[arg(long, env = "UI_SOURCE_URL")]
    pub source_url: Option<String>,
    /// How often to ask the source URL, in milliseconds.
    #[arg(long, env = "UI_SOURCE_POLL_MS", default_value_t = 2000)]
    pub source_poll_ms: u64,
    /// Compacted topic of the yearly hourly base costs (keyed by year).
    #[arg(long, env = "UI_BASE_COSTS_TOPIC", default_value = "base-costs")]
    pub base_costs_topic: String,
    /// Summary schema version this UI reads and serves: fields of later versions are left out
    /// of its answers.
    #[arg(long, env = "UI_SCHEMA_VERSION", value_enum, default_value_t = Version::V3)]
    pub schema_version: Version,
    /// Most `/api/v1/summary/stream` connections open at once (503 beyond).
    #[arg(long, env = "UI_STREAM_LIMIT", default_value_t = 512)]
    pub stream_limit: usize,
    /// Least time between two pushed batches of one stream, in milliseconds: a burst of
    /// records becomes one batch.
    #[arg(long, env = "UI_STREAM_INTERVAL_MS", default_value_t = 200)]
    pub stream_interval_ms: u64,
    /// Seconds between heartbeat comments on an idle stream (proxies close silent connections).
    #[arg(long, env = "UI_STREAM_HEARTBEAT_SECS", default_value_t = 15)]
    pub stream_heartbeat_secs: u64,
}
