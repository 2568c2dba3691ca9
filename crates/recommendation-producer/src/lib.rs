//! The recommendation producer: bulk right-sizing jobs in the style of Kruize's Bulk API.
//! A job discovers the containers of a Prometheus datasource, computes CPU and memory
//! recommendations for each and publishes them to Kafka (`recommendations-topic`,
//! `error-topic`, `summary-topic`).
//!
//! # Layout
//! - [`engine`]: the recommendation engine, pure: terms, cost and performance models,
//!   current configuration and variation, notifications, box plots, the output document.
//! - [`prometheus`]: the datasource client; [`queries`]: the PromQL; [`collect`]: discovery
//!   and the per-namespace fetch into the engine's input.
//! - [`payload`]: the `POST /bulk` request; [`naming`]: experiment names.
//! - [`store`]: jobs and experiments in PostgreSQL, run under leases; [`job`]: the runner.
//! - [`document`]: the reference's JSON documents; [`wire`]: Avro or JSON on the wire;
//!   [`publish`]: Kafka. The messages as a consumer reads them are a contract:
//!   `rivulet_contracts::recommendations::model`.
//! - [`api`]: the REST API.

pub mod api;
pub mod collect;
pub mod config;
pub mod document;
pub mod engine;
pub mod job;
mod metrics;
pub mod naming;
pub mod openapi;
pub mod payload;
pub mod prometheus;
pub mod publish;
pub mod queries;
pub mod remote_read;
pub mod store;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rivulet_common::{Health, Secret};
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::prometheus::{Auth, Prometheus};

/// Environment variables renamed to the `<BINARY>_<FLAG>` scheme: the old names still work,
/// with a warning (`rivulet_common::env`).
pub const RENAMED_ENV: &[rivulet_common::env::Renamed] = &[
    ("DATASOURCES", "RECOMMENDER_DATASOURCES"),
    ("DATASOURCE_TOKENS", "RECOMMENDER_DATASOURCE_TOKENS"),
    ("DATASOURCE_BASIC", "RECOMMENDER_DATASOURCE_BASIC"),
    ("DATASOURCE_CAS", "RECOMMENDER_DATASOURCE_CAS"),
    (
        "DATASOURCE_CONCURRENCY",
        "RECOMMENDER_DATASOURCE_CONCURRENCY",
    ),
    (
        "DATASOURCE_TIMEOUT_SECS",
        "RECOMMENDER_DATASOURCE_TIMEOUT_SECS",
    ),
    ("KAFKA_ENABLED", "RECOMMENDER_KAFKA_ENABLED"),
    ("MESSAGE_FORMAT", "RECOMMENDER_MESSAGE_FORMAT"),
    (
        "EXPERIMENT_NAME_FORMAT",
        "RECOMMENDER_EXPERIMENT_NAME_FORMAT",
    ),
    ("JOB_RETENTION", "RECOMMENDER_JOB_RETENTION"),
    ("JOB_LEASE_SECS", "RECOMMENDER_JOB_LEASE_SECS"),
    ("PARALLEL_NAMESPACES", "RECOMMENDER_PARALLEL_NAMESPACES"),
    ("REPLICA_NAME", "RECOMMENDER_REPLICA_NAME"),
    ("RECOMMENDATIONS_TOPIC", "RECOMMENDER_RECOMMENDATIONS_TOPIC"),
    ("ERROR_TOPIC", "RECOMMENDER_ERROR_TOPIC"),
    ("SUMMARY_TOPIC", "RECOMMENDER_SUMMARY_TOPIC"),
    ("BULK_API_LIMIT", "RECOMMENDER_EXPERIMENT_LIMIT"),
];

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job store could not be reached or migrated.
    #[error("job store: {0}")]
    Store(#[from] sqlx::Error),
    /// The job store's migrations failed.
    #[error("job store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A Kafka client could not be built.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// The publisher could not start.
    #[error(transparent)]
    Publish(#[from] publish::StartError),
    /// Neither --database-url nor --database-url-file was given.
    #[error("no job store: give --database-url or --database-url-file")]
    NoDatabase,
    /// A datasource is misconfigured.
    #[error("datasource {0}: {1}")]
    Datasource(String, String),
    /// The listener could not be bound.
    #[error("listener on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// Serving HTTP failed.
    #[error("http: {0}")]
    Serve(std::io::Error),
}

fn datasources(
    config: &Config,
    queries: &prometheus_client::metrics::counter::Counter,
) -> Result<HashMap<String, Prometheus>, Error> {
    let lookup = |list: &[(String, String)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    let mut out = HashMap::new();
    for (name, url) in &config.datasources {
        let auth = match config.datasource_secrets(name) {
            (Some(token), _) => Auth::Bearer(token.clone()),
            (None, Some(basic)) => match basic.expose().split_once(':') {
                Some((user, password)) => Auth::Basic(user.into(), Secret::new(password)),
                None => {
                    return Err(Error::Datasource(
                        name.clone(),
                        "basic credentials must be user:password".into(),
                    ));
                }
            },
            (None, None) => Auth::None,
        };
        let ca = match lookup(&config.datasource_cas, name) {
            Some(path) => Some(
                std::fs::read(&path)
                    .map_err(|e| Error::Datasource(name.clone(), format!("CA {path}: {e}")))?,
            ),
            None => None,
        };
        let ds = Prometheus::new(
            url,
            auth,
            ca.as_deref(),
            config.datasource_concurrency,
            Duration::from_secs(config.datasource_timeout_secs),
        )
        .map_err(|e| Error::Datasource(name.clone(), e.to_string()))?
        .counting(queries.clone())
        .with_windows(config.datasource_windows)
        .with_reads(config.datasource_reads);
        out.insert(name.clone(), ds);
    }
    Ok(out)
}

/// Runs the service until `token` is cancelled.
pub async fn run(config: Config, token: CancellationToken) -> Result<(), Error> {
    let health = Health::new("rivulet_recommender");
    let metrics = metrics::Metrics::register(&health);
    let url = config.database_url().ok_or(Error::NoDatabase)?;
    let store = store::Store::connect(url.expose(), 8).await?;
    let publisher = if config.kafka_enabled {
        Some(
            publish::Publisher::new(
                &config.kafka,
                config.topics.clone(),
                config.format,
                &config.registry,
            )
            .await?,
        )
    } else {
        None
    };
    let owner = config.replica_name.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
        format!("{host}-{}", std::process::id())
    });
    let runner = Arc::new(job::Runner {
        store: store.clone(),
        datasources: datasources(&config, &metrics.datasource_queries)?,
        publisher,
        owner,
        lease: Duration::from_secs(config.job_lease_secs.max(3)),
        limit: config.experiment_limit,
        name_format: config.experiment_name_format.clone(),
        parallel_namespaces: config.parallel_namespaces,
        wake: tokio::sync::Notify::new(),
        http: job::webhook_client(),
        webhook_allow: config.webhook_allow.clone(),
        metrics,
        #[cfg(feature = "testing")]
        abort_after_publishes: config.fault_abort_after_publishes,
        #[cfg(feature = "testing")]
        publishes: std::sync::atomic::AtomicU64::new(0),
    });

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Listen(config.listen, e))?;
    tracing::info!(listen = %config.listen, replica = runner.owner, kafka = config.kafka_enabled, "Serving.");
    let app = rivulet_common::http::harden(
        api::router(runner.clone(), config.credentials(), config.auth_scope)
            .merge(rivulet_common::health::router(health.clone())),
        rivulet_common::http::Limits::default(),
    );
    let app = rivulet_common::health::count_responses(app, &health);
    let server_token = token.clone();
    // Requests in flight may finish for 10 s after SIGTERM (below a pod's 30 s grace period).
    let server = tokio::spawn(rivulet_common::http::serve(
        listener,
        app,
        server_token,
        Duration::from_secs(10),
    ));
    health.set_ready(true);

    // Readiness follows the job store; finished jobs expire.
    let (watch_store, watch_token, retention) =
        (store.clone(), token.clone(), config.job_retention);
    // Expiry runs four times per retention period, at least hourly.
    let expiry_every =
        (config.job_retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut last_expiry = None::<tokio::time::Instant>;
        while !watch_token.is_cancelled() {
            health.set_ready(watch_store.ping().await);
            if last_expiry.is_none_or(|t| t.elapsed() >= expiry_every) {
                match watch_store.expire(retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "Expired finished jobs."),
                    Err(error) => tracing::warn!(%error, "Could not expire jobs."),
                }
                last_expiry = Some(tokio::time::Instant::now());
            }
            tokio::select! {
                () = watch_token.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(5).min(expiry_every)) => {}
            }
        }
    });

    job::run(runner, token.clone()).await;
    match server.await {
        Ok(Err(e)) => Err(Error::Serve(e)),
        _ => Ok(()),
    }
}
