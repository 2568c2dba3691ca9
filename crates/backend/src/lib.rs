//! The backend: raw widget records in, exact monthly totals per SKU out.
//!
//! Consumes `raw-data-in` written with any registered schema version (v1, v2, v3) and emits
//! the *current* totals of each (year, month, SKU) to `summary-stats` as upserts keyed
//! `YYYY-MM|SKU`, never increments, so a re-delivered summary cannot double count. Exactly
//! once: see `pipeline`.
//!
//! # Layout
//! - [`aggregate`]: the per-key state of the totals, pure (the records, totals and summaries
//!   themselves are contracts: `rivulet_contracts::{raw, summary}`).
//! - [`decode`]: framed bytes to records through the registry, with [`fast`] plans per writer
//!   schema and apache-avro's generic resolution behind them.
//! - `pipeline`: the transactional consume-aggregate-produce loop (by role: `state`,
//!   `context` for the rebalance callbacks, `opening`, `restore`, `commit`); `txn` commits each
//!   partition's batches in the background; `settings` is what the loop is given.
//! - [`admin`]: the operator commands (`dlq-replay`, `reprocess`).
//!
//! Public for tests and benchmarks: [`aggregate`], [`decode`], [`fast`]; the binary uses
//! [`run`], [`admin`] and the config types.

pub mod admin;
pub mod aggregate;
mod config;
pub mod decode;
pub mod fast;
mod metrics;
pub mod pending;
mod pipeline;
mod settings;
mod txn;

use std::time::Duration;

use rivulet_common::{Health, avro};
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Command, ReplayConfig, ReprocessConfig, RunConfig};
pub use settings::Failure;

use rivulet_contracts::{Version, raw, summary};

/// Start-up and loop errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a client or a registry call failed.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// The summary schema this backend writes could not be looked up.
    #[error("summary schema {version:?}: {source}")]
    NotRegistered {
        /// Version.
        version: Version,
        /// Not registered, or the registry unavailable.
        #[source]
        source: avro::LookupError,
    },
    /// An embedded schema does not parse (a build defect).
    #[error(transparent)]
    Schema(#[from] rivulet_contracts::SchemaError),
    /// The loop failed.
    #[error("pipeline: {0}")]
    Pipeline(#[from] settings::Failure),
    /// The health listener failed.
    #[error("listener on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// The loop thread panicked.
    #[error("the pipeline thread stopped unexpectedly")]
    Crashed,
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the backend until `token` is cancelled.
pub async fn run(config: RunConfig, token: CancellationToken) -> Result<()> {
    let health = Health::new("rivulet_backend");
    let metrics = metrics::Metrics::register(&health);
    if let Some(partitions) = config.create_topics {
        create_topics(&config, partitions).await?;
    }
    ensure_state_topic(&config).await?;
    let registry = config.registry.settings()?;
    let settings = loop_settings(&config, &registry).await?;
    let decoder = decode::Decoder::new(
        registry,
        tokio::runtime::Handle::current(),
        raw::reader_schema()?,
    );
    serve(&config, health.clone(), token.clone()).await?;
    health.set_ready(true);
    let loop_token = token.clone();
    let result =
        tokio::task::spawn_blocking(move || pipeline::run(settings, decoder, metrics, loop_token))
            .await;
    token.cancel();
    match result {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Crashed),
    }
}

/// Creates the state topic when it is missing (one partition, compacted), as Kafka Streams
/// creates its changelogs: a partition cannot be opened without reading it, so a missing one
/// would keep every partition closed. In Kubernetes its KafkaTopic exists first.
async fn ensure_state_topic(config: &RunConfig) -> Result<()> {
    let admin = config.kafka.admin("backend-state-topic")?;
    let compact = [("cleanup.policy", "compact")];
    match rivulet_common::kafka::ensure_topic(&admin, &config.state_topic, 1, &compact).await {
        Ok(true) => tracing::info!(topic = %config.state_topic, "Created the state topic."),
        Ok(false) => {}
        // A user without the right to create topics: the topic should exist (opening a
        // partition says so plainly if it does not).
        Err(error) => {
            tracing::warn!(topic = %config.state_topic, %error, "Could not ensure the state topic exists.")
        }
    }
    Ok(())
}

/// Creates the input and output topics with `partitions` each, and the DLQ (local stacks
/// only: in Kubernetes the KafkaTopics create them).
async fn create_topics(config: &RunConfig, partitions: i32) -> Result<()> {
    let admin = config.kafka.admin("backend-topics")?;
    let compact: &[(&str, &str)] = &[("cleanup.policy", "compact")];
    for (topic, n, configs) in [
        (&config.input_topic, partitions, &[][..]),
        (&config.output_topic, partitions, compact),
        (&config.dlq_topic, 1, &[][..]),
    ] {
        if rivulet_common::kafka::ensure_topic(&admin, topic, n, configs).await? {
            tracing::info!(topic, partitions = n, "Created a topic.");
        }
    }
    Ok(())
}

/// The loop's settings: the summary schema this backend writes (looked up, never
/// registered) and every registered summary version, so a restore reads what any backend
/// version wrote.
async fn loop_settings(
    config: &RunConfig,
    registry: &schema_registry_converter::async_impl::schema_registry::SrSettings,
) -> Result<settings::Settings> {
    let subject = avro::value_subject(&config.output_topic);
    // Restores read summaries of any version: the ones this build knows are taught to the
    // resolver up front, any other id (a newer backend's) is asked of the registry.
    let mut summaries = avro::Resolver::new(
        registry.clone(),
        tokio::runtime::Handle::current(),
        summary::schema(Version::V3)?,
    );
    for version in Version::ALL {
        let schema = summary::schema(version)?;
        if let Ok(found) = avro::lookup(registry, &subject, &schema).await {
            let _ = summaries.insert(found.id, schema);
        }
    }
    let written = summary::schema(config.schema_version)?;
    let found = avro::lookup_pinned(registry, &subject, &written)
        .await
        .map_err(|source| Error::NotRegistered {
            version: config.schema_version,
            source,
        })?;
    Ok(settings::Settings {
        kafka: config.kafka.clone(),
        group: config.group.clone(),
        input: config.input_topic.clone(),
        output: config.output_topic.clone(),
        dlq: config.dlq_topic.clone(),
        state: config.state_topic.clone(),
        max_pending_runs: config.max_pending_runs,
        summary: (config.schema_version, found.id, written),
        summaries: std::sync::Mutex::new(summaries),
        commit_interval: Duration::from_millis(config.commit_interval_ms),
        max_skus: config.max_skus,
        partitions: config.partitions.clone(),
    })
}

/// Serves `/healthz`, `/readyz`, `/metrics` and `/api/v1/output` (what a UI following the
/// active colour asks) until `token` is cancelled.
async fn serve(config: &RunConfig, health: Health, token: CancellationToken) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Listen(config.listen, e))?;
    let output = serde_json::json!({
        "colour": config.colour,
        "group": config.group,
        "topic": config.output_topic,
        "input_topic": config.input_topic,
        "schema_version": config.schema_version.label(),
    });
    let app = rivulet_common::health::router(health).route(
        "/api/v1/output",
        axum::routing::get(move || {
            let output = output.clone();
            async move { axum::Json(output) }
        }),
    );
    let app = rivulet_common::http::harden(app, rivulet_common::http::Limits::default());
    tokio::spawn(async move {
        let grace = Duration::from_secs(5);
        if let Err(error) = rivulet_common::http::serve(listener, app, token, grace).await {
            tracing::error!(%error, "Health server failed.");
        }
    });
    Ok(())
}
