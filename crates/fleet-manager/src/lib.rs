//! `fleet-manager`: Kafka instances as a service. A kas-fleet-manager-compatible REST API
//! (`/api/kafkas_mgmt/v1`) takes requests; PostgreSQL holds them; leader-elected workers place
//! each on a data-plane cluster and make it there with Strimzi (`Kafka` + `KafkaNodePool`),
//! then delete it again.
//!
//! # Layout
//! - [`catalog`]: instance types, providers, regions and clusters (configuration files);
//!   [`quota`]: the quota-management list.
//! - [`auth`]: RS256 bearer tokens against a JWKS file; dev keys and tokens.
//! - [`api`]: the REST API; [`errors`]: the error catalogue and shape; [`search`]: `search`
//!   and `orderBy`, parsed into bound SQL; [`openapi`]: the document.
//! - [`model`]: states and rows; [`store`]: PostgreSQL (compare-and-set transitions, atomic
//!   quota, leases).
//! - [`workers`]: the lease-holding reconcilers; [`strimzi`]: the objects an instance is made
//!   of and what their status means (pure); [`dataplane`]: the clusters' API servers.
//! - [`metrics`]: the reference's metric names.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod dataplane;
pub mod errors;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod quota;
pub mod search;
pub mod store;
pub mod strimzi;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use rivulet_common::Health;
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Command, Config};

/// What stops the fleet manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file is wrong.
    #[error(transparent)]
    Config(#[from] catalog::ConfigError),
    /// The JWKS file cannot be used.
    #[error("token keys: {0}")]
    Keys(#[from] auth::KeyError),
    /// The database URL is not a URL.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Neither --database-url nor --database-url-file.
    #[error("no database: give --database-url or --database-url-file")]
    NoDatabase,
    /// The listener could not be bound.
    #[error("listener on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// Serving HTTP failed.
    #[error("http: {0}")]
    Serve(std::io::Error),
    /// A file could not be written (dev-keys).
    #[error("{0}: {1}")]
    Write(String, std::io::Error),
}

/// Runs the API and the workers until `token` is cancelled.
pub async fn run(config: Config, token: CancellationToken) -> Result<(), Error> {
    let catalog = Arc::new(catalog::Catalog::load(
        &config.instance_types,
        &config.providers,
        &config.clusters,
    )?);
    let quotas = quota::QuotaList::load(&config.quota_list)?;
    let verifier = auth::TokenVerifier::from_file(&config.jwks, config.jwt_issuer.clone())?;
    let url = config.database_url().ok_or(Error::NoDatabase)?;
    let store = store::Store::lazy(
        url.expose(),
        config.database_connections,
        Duration::from_secs(config.database_timeout_secs),
    )?;
    let health = Health::unprefixed();
    let metrics = metrics::Metrics::register(&health, &store.metrics());
    let app = Arc::new(api::App {
        store: store.clone(),
        catalog: catalog.clone(),
        quotas,
        defaults: quota::Defaults {
            max_allowed_instances: config.max_allowed_instances,
            max_allowed_developer_instances: config.max_allowed_developer_instances,
        },
        verifier,
        admins: config.admins.clone(),
        metrics: metrics.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Listen(config.listen, e))?;
    tracing::info!(address = %listener.local_addr().map_err(Error::Serve)?, clusters = catalog.clusters.len(), "Serving the fleet manager API.");
    let router = api::router(app, health.clone(), rivulet_common::http::Limits::default());
    let server = tokio::spawn(api::serve(listener, router, token.clone()));
    // Migrations, then readiness, follow the database: the API answers 503 meanwhile.
    let (migrated_tx, mut migrated) = tokio::sync::watch::channel(false);
    let ready = tokio::spawn(readiness(store.clone(), health, migrated_tx, token.clone()));
    // The workers start once the schema is there.
    tokio::select! {
        _ = migrated.wait_for(|m| *m) => {}
        () = token.cancelled() => {}
    }
    let workers = if config.workers && !token.is_cancelled() {
        let ctx = Arc::new(workers::Context {
            store,
            catalog,
            plane: dataplane::DataPlane::default(),
            metrics,
            settings: config.worker_settings(),
        });
        Some(tokio::spawn(workers::run(ctx, token.clone())))
    } else {
        None
    };
    let served = server.await;
    token.cancel();
    let _ = ready.await;
    if let Some(w) = workers {
        let _ = w.await;
    }
    match served {
        Ok(r) => r.map_err(Error::Serve),
        Err(e) => Err(Error::Serve(std::io::Error::other(e))),
    }
}

/// Applies the migrations once the database answers, then keeps `/readyz` in step with it.
async fn readiness(
    store: store::Store,
    health: Health,
    done: tokio::sync::watch::Sender<bool>,
    token: CancellationToken,
) {
    let mut migrated = false;
    loop {
        if !migrated {
            match store.migrate().await {
                Ok(()) => {
                    migrated = true;
                    done.send_replace(true);
                    tracing::info!("Database schema up to date.");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Database not ready for migrations; retrying.")
                }
            }
        }
        health.set_ready(migrated && store.ping().await);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = token.cancelled() => return,
        }
    }
}

/// `fleet-manager dev-keys --out DIR`: writes `key.pem` and `jwks.json`.
pub fn dev_keys(out: &std::path::Path) -> Result<(), Error> {
    let keys = auth::DevKeys::generate("rivulet-dev")?;
    std::fs::create_dir_all(out).map_err(|e| Error::Write(out.display().to_string(), e))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = out.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::Write(p.display().to_string(), e))
    };
    write("key.pem", &keys.private_pem()?)?;
    write("jwks.json", keys.jwks()?.to_string().as_bytes())?;
    Ok(())
}

/// `fleet-manager dev-token`: a token signed with a `dev-keys` key.
pub fn dev_token(args: &config::TokenArgs) -> Result<String, Error> {
    let pem =
        std::fs::read(&args.key).map_err(|e| Error::Write(args.key.display().to_string(), e))?;
    let keys = auth::DevKeys::from_pem(&pem, "rivulet-dev")?;
    Ok(keys.token(
        &args.username,
        args.org_id.as_deref(),
        args.org_admin,
        chrono::Utc::now().timestamp(),
        args.ttl_secs,
    )?)
}
