//! `k8s-monitor`: watches Kubernetes resources and publishes one JSON message per change to
//! Kafka (`k8s-<plural>` topics, keyed `<namespace>/<name>`), secrets redacted, exactly once
//! across restarts, failover and broker outages.
//!
//! # How it works
//! Replicas elect a leader on a Lease. The leader fences any earlier leader's producer
//! (`init_transactions` with the deployment's one `transactional.id`), reads every topic back
//! to learn what it holds (uid and resourceVersion per key, from headers), lists each watched
//! type and queues what differs, then watches (bookmarks, resume from the last
//! resourceVersion, a re-list on 410 Gone) and publishes each change in a transaction. A
//! failed transaction, a broker away or a lost Lease never lose a change: states wait in
//! memory (one per key, so a key's changes coalesce) and what the topic holds is read back
//! before publishing again.
//!
//! # Layout
//! - [`config`]: the command line ([`Config`]).
//! - [`resources`]: `--resources` and discovery.
//! - [`redact`]: what leaves the cluster (HMAC of secret values, no `managedFields`).
//! - [`state`]: per topic, what it holds and what waits (pure).
//! - `store`: the books shared by watches and the publisher, bounded.
//! - `watch`: list + watch of one type in one namespace (or all).
//! - `publish`: topics, read-back, transactions.
//! - `monitor`: the leader's term: fence, read back, watch, publish.
//! - `snapshot`: `--mode snapshot`, the reference monitor's full lists per interval.
//! - `metrics`: the Prometheus metrics.

pub mod config;
mod metrics;
mod monitor;
mod publish;
pub mod redact;
pub mod resources;
mod snapshot;
pub mod state;
mod store;
mod watch;

use std::time::Duration;

use rivulet_common::Health;
use rivulet_kube_common::{Elector, Leadership, Permission};
use tokio::sync::watch as channel;
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Config, Mode};

/// What stops the monitor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kubernetes plumbing (client, RBAC).
    #[error(transparent)]
    Kube(#[from] rivulet_kube_common::Error),
    /// A `--resources` entry the API server does not serve.
    #[error("the API server has no resource {gvk} (a typo, or a CRD not installed?): {source}")]
    UnknownResource {
        /// `group/version/kind`.
        gvk: String,
        /// The discovery error.
        #[source]
        source: kube::Error,
    },
    /// Secrets (or `--redact` kinds) are watched without a redaction key.
    #[error(
        "{0} is watched and its values are published only as HMACs: give the key with --redaction-key-file (a mounted Secret of at least 16 bytes)"
    )]
    NoRedactionKey(String),
    /// The redaction key file could not be used.
    #[error("redaction key file {path}: {reason}")]
    RedactionKey {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Kafka clients or topics.
    #[error(transparent)]
    Kafka(#[from] rivulet_common::Error),
    /// The health server could not listen.
    #[error("health server: {0}")]
    Listen(#[source] std::io::Error),
}

/// The result type of the monitor.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the monitor until `token` is cancelled.
pub async fn run(config: Config, token: CancellationToken) -> Result<()> {
    let health = Health::new("rivulet_k8s_monitor");
    let metrics = metrics::Metrics::register(&health);
    let server = rivulet_kube_common::serve_health(config.listen, health.clone(), token.clone())
        .await
        .map_err(Error::Listen)?;

    let client = rivulet_kube_common::client(&config.kube).await?;
    let watched = resources::resolve(&client, &config.resources).await?;
    let redactor = config.redactor(&watched)?;
    rivulet_kube_common::access::require(&client, &config.permissions(&client, &watched)).await?;
    tracing::info!(
        resources = %watched.iter().map(|w| w.resource_type.as_str()).collect::<Vec<_>>().join(","),
        namespaces = ?config.namespaces,
        mode = ?config.mode,
        "Monitoring."
    );

    // Without an election this replica leads for its whole life: `_always` keeps the
    // channel's sender alive until the run ends.
    let (leadership, elector, identity, _always) = if config.leader_election {
        let elector = Elector::new(&client, &config.lease, "k8s-monitor");
        let identity = elector.identity().to_owned();
        tracing::info!(%identity, "Joining the leader election.");
        let (rx, task) = elector.spawn(token.clone());
        (rx, Some(task), identity, None)
    } else {
        let (tx, rx) = channel::channel(Leadership {
            leader: true,
            term: 1,
        });
        let identity = config
            .lease
            .identity
            .clone()
            .unwrap_or_else(|| "standalone".to_owned());
        (rx, None, identity, Some(tx))
    };

    let outcome = match config.mode {
        Mode::Watch => {
            monitor::Monitor::new(identity, config, client, watched, redactor, health, metrics)
                .run(leadership, token.clone())
                .await
        }
        Mode::Snapshot => {
            snapshot::run(
                &config, &client, &watched, &redactor, &health, &metrics, leadership, &token,
            )
            .await
        }
    };
    token.cancel();
    if let Some(task) = elector {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    outcome
}

/// The permissions a watch of `watched` needs.
pub(crate) fn watch_permissions(
    watched: &[resources::Watched],
    namespaces: &[String],
) -> Vec<Permission> {
    let mut wanted = Vec::new();
    for w in watched {
        let scopes: Vec<Option<&str>> = if w.namespaced && !namespaces.is_empty() {
            namespaces.iter().map(|n| Some(n.as_str())).collect()
        } else {
            vec![None]
        };
        for ns in scopes {
            for verb in ["list", "watch"] {
                wanted.push(Permission::new(
                    verb,
                    &w.resource.group,
                    &w.resource.plural,
                    ns,
                ));
            }
        }
    }
    wanted
}

/// Sleeps `wait` unless `token` is cancelled first; returns whether to go on.
pub(crate) async fn pause(token: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}
