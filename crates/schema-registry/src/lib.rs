//! A Confluent-compatible Avro schema registry whose state lives in a Kafka topic.
//!
//! Consumes and produces the single-partition `_schemas` topic; serves Confluent's REST API so
//! Confluent's clients (and `schema_registry_converter`) work unchanged. Any number of replicas
//! can run: each applies the topic in order to an in-memory [`state`], and writers agree through
//! the log (first claim wins), so no id is ever given to two schemas.
//!
//! # Layout
//! - `config`: the `serve` and `apply` command lines.
//! - `schema`: parsing, identity and compatibility of Avro schemas.
//! - `record`: the `_schemas` record layout.
//! - `state`: the state every replica derives from the log.
//! - `journal`: the Kafka side: append, read and catch up.
//! - `registry`: the operations behind the endpoints.
//! - `http`, `auth`, `error`: the REST API.
//! - `apply`: `schemas apply`, registering a directory of schemas.

mod apply;
mod auth;
mod config;
mod error;
mod http;
mod journal;
mod metrics;
mod record;
mod registry;
mod schema;
pub mod state;

use std::sync::Arc;

use crossbeam_utils::sync::ShardedLock;
use std::time::Duration;

use rivulet_common::{Credentials, Health, Secret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use apply::apply;
pub use auth::Scope;
pub use config::{ApplyConfig, Cli, Command, ServeConfig};
pub use error::{ApiError, Error, Result};
pub use schema::Level;

use crate::auth::Auth;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// Environment variables renamed to the `<BINARY>_<FLAG>` scheme: the old names still work,
/// with a warning (`rivulet_common::env`).
pub const RENAMED_ENV: &[rivulet_common::env::Renamed] = &[
    ("SCHEMAS_DIR", "SCHEMA_REGISTRY_APPLY_DIR"),
    (
        "SCHEMAS_COMPATIBILITY",
        "SCHEMA_REGISTRY_APPLY_COMPATIBILITY",
    ),
];

/// Serves the registry until `token` is cancelled.
pub async fn run(config: ServeConfig, token: CancellationToken) -> Result<()> {
    let health = Health::new("rivulet_registry");
    let metrics = Metrics::register(&health);
    let state = Arc::new(ShardedLock::new(state::State::default()));
    let Some((journal, reader)) = open_journal(&config, &state, &metrics, &token).await? else {
        return Ok(()); // cancelled while waiting for Kafka
    };
    let claim_delay = config.test_claim_delay_ms.map(Duration::from_millis);
    // Leaked on purpose: the registry lives until the process exits, and handlers then share
    // it as a plain reference instead of cloning an `Arc` (a contended atomic) per request.
    let registry: &'static Registry = Box::leak(Box::new(Registry::new(
        state,
        journal,
        metrics.clone(),
        claim_delay,
    )));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    tracing::info!(%addr, topic = %config.topic, "Schema registry listening.");
    tokio::spawn(catch_up(registry, health.clone(), token.clone()));

    let auth = Auth {
        credentials: Credentials::new(
            Secret::either(config.auth_token.as_ref(), config.auth_token_file.as_ref()),
            config.auth_user.as_deref(),
            Secret::either(
                config.auth_password.as_ref(),
                config.auth_password_file.as_ref(),
            ),
        ),
        scope: config.auth_scope,
    };
    let app = http::router(
        registry,
        health,
        auth,
        Duration::from_secs(config.request_timeout_secs),
    );
    // Requests in flight may finish for 10 s after SIGTERM (below a pod's 30 s grace period).
    rivulet_common::http::serve(listener, app, token.clone(), Duration::from_secs(10))
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    tracing::info!("Schema registry stopped.");
    Ok(())
}

/// Opens the schema log, waiting with a growing back-off while Kafka is not there yet (a fresh
/// cluster, a rolling restart); `None` when cancelled first. A topic whose layout would lose
/// state is not waited for: that is an error.
async fn open_journal(
    config: &ServeConfig,
    state: &Arc<ShardedLock<state::State>>,
    metrics: &Metrics,
    token: &CancellationToken,
) -> Result<Option<(Journal, tokio::task::JoinHandle<()>)>> {
    let timeout = Duration::from_secs(config.store_timeout_secs);
    let mut backoff = Duration::from_secs(1);
    loop {
        let opening = Journal::open(
            &config.kafka,
            &config.topic,
            timeout,
            Duration::from_millis(config.log_fetch_wait_ms),
            state.clone(),
            metrics.clone(),
            token.child_token(),
        );
        let opened = tokio::select! {
            () = token.cancelled() => return Ok(None),
            opened = opening => opened,
        };
        match opened {
            Ok(opened) => return Ok(Some(opened)),
            Err(error @ (Error::TopicLayout { .. } | Error::TopicConfig { .. })) => {
                return Err(error);
            }
            Err(error) => {
                tracing::warn!(%error, bootstrap = %config.kafka.bootstrap_servers, retry_in = ?backoff, "Cannot open the schema log yet.");
                tokio::select! {
                    () = token.cancelled() => return Ok(None),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Marks the registry ready once the log written before start-up has been applied.
async fn catch_up(registry: &'static Registry, health: Health, token: CancellationToken) {
    loop {
        match registry.sync().await {
            Ok(()) => {
                health.set_ready(true);
                tracing::info!(
                    offset = registry.position(),
                    "Caught up with the schema log."
                );
                break;
            }
            Err(_) if token.is_cancelled() => break,
            Err(error) => {
                tracing::warn!(?error, "Still catching up with the schema log.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
