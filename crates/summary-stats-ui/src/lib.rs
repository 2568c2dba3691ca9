//! The summary service: follows `summary-stats` and `base-costs`, keeps the latest totals per
//! (year, month, SKU) in an index by month, and serves them as a REST API and a dashboard.
//!
//! # Layout
//! - [`index`]: the pure index and the month totals computed where every SKU is visible.
//! - [`feed`]: the two consumers that keep the index current.
//! - [`state`]: the index and its freshness, shared by the feeds and the handlers.
//! - [`api`] and [`query`]: the REST API and its parameter parsing.
//! - [`changes`] and [`stream`]: what changed since an event id, and the pushed summary
//!   (`/api/v1/summary/stream`, Server-Sent Events).
//! - [`dashboard`]: the web page, served from the binary.

pub mod api;
pub mod changes;
pub mod config;
pub mod dashboard;
pub mod feed;
pub mod index;
mod metrics;
pub mod query;
pub mod source;
pub mod state;
pub mod stream;

use std::sync::Arc;

use rivulet_common::Health;
use rivulet_common::avro::Resolver;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::feed::Feed;
use crate::state::{FeedKind, Shared, Target};

/// Environment variables renamed to the `<BINARY>_<FLAG>` scheme: the old names still work,
/// with a warning (`rivulet_common::env`).
pub const RENAMED_ENV: &[rivulet_common::env::Renamed] = &[("SCHEMA_VERSION", "UI_SCHEMA_VERSION")];

/// Start-up and run errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a client failed.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// An embedded schema does not parse (a build defect).
    #[error(transparent)]
    Schema(#[from] rivulet_contracts::SchemaError),
    /// A feed failed.
    #[error("feed: {0}")]
    Feed(#[from] feed::Failure),
    /// The listener could not be bound.
    #[error("listener on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// Serving HTTP failed.
    #[error("http: {0}")]
    Serve(std::io::Error),
    /// A feed thread panicked.
    #[error("a feed thread stopped unexpectedly")]
    Crashed,
}

/// How long requests in flight may finish after SIGTERM (below a pod's 30 s grace period).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The whole HTTP surface over `shared`; `token` ends the summary streams.
pub fn app(
    shared: Arc<Shared>,
    config: &Config,
    health: Health,
    token: CancellationToken,
) -> axum::Router {
    let streams = stream::Streams::new(
        config.stream_limit,
        std::time::Duration::from_millis(config.stream_interval_ms),
        std::time::Duration::from_secs(config.stream_heartbeat_secs.max(1)),
        token,
    );
    metrics::Metrics::register_streams(&health, &streams);
    let api = api::Api {
        shared,
        version: config.schema_version,
        cache: Arc::default(),
        streams: Arc::new(streams),
    };
    let app = api::router(api)
        .merge(dashboard::router())
        .merge(rivulet_common::health::router(health.clone()));
    let app = rivulet_common::http::harden(app, rivulet_common::http::Limits::default());
    rivulet_common::health::count_responses(app, &health)
}

/// Runs the service until `token` is cancelled or a feed fails.
pub async fn run(config: Config, token: CancellationToken) -> Result<()> {
    let health = Health::new("rivulet_ui");
    let metrics = metrics::Metrics::register(&health);
    let shared = Arc::new(Shared::default());
    let settings = config.registry.settings()?;
    let runtime = tokio::runtime::Handle::current();
    let follow = source::Follow {
        kafka: config.kafka.clone(),
        registry: settings.clone(),
        runtime: runtime.clone(),
        reader: rivulet_contracts::summary::schema(config.schema_version)?,
        topic: config.summary_topic.clone(),
        url: config.source_url.clone(),
        every: std::time::Duration::from_millis(config.source_poll_ms.max(100)),
        metrics: metrics.clone(),
    };
    let costs = Feed {
        kind: FeedKind::BaseCosts,
        topic: config.base_costs_topic.clone(),
        resolver: Resolver::new(settings, runtime, rivulet_contracts::base_cost::schema()?),
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Listen(config.listen, e))?;
    tracing::info!(listen = %config.listen, schema_version = ?config.schema_version, "Serving.");
    let app = app(shared.clone(), &config, health.clone(), token.clone());
    let server_token = token.clone();
    let server = tokio::spawn(rivulet_common::http::serve(
        listener,
        app,
        server_token,
        SHUTDOWN_GRACE,
    ));

    // Ready once both feeds have caught up.
    let ready_token = token.clone();
    let (ready_shared, ready_health) = (shared.clone(), health.clone());
    tokio::spawn(async move {
        while !ready_token.is_cancelled() && !ready_shared.snapshot().caught_up {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        ready_health.set_ready(true);
    });

    // The summary feed (following the active colour) and the base-cost feed; either ending
    // ends the service.
    let summary = {
        let (shared, token) = (shared.clone(), token.clone());
        tokio::spawn(async move {
            let result = source::follow(follow, shared, token.clone()).await;
            token.cancel();
            result
        })
    };
    let base_costs = {
        let (kafka, target, metrics, token) = (
            config.kafka.clone(),
            Target::new(shared.clone()),
            metrics.clone(),
            token.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let result = feed::run(&kafka, costs, target, metrics, token.clone());
            token.cancel();
            result
        })
    };
    let mut outcome = Ok(());
    for thread in [summary, base_costs] {
        match thread.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => outcome = outcome.and(Err(Error::Feed(e))),
            Err(_) => outcome = outcome.and(Err(Error::Crashed)),
        }
    }
    token.cancel();
    match server.await {
        Ok(Err(e)) => outcome.and(Err(Error::Serve(e))),
        _ => outcome,
    }
}
