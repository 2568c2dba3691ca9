//! Kubernetes plumbing shared by Rivulet's Kubernetes-facing binaries (`k8s-monitor`,
//! `consumer-autoscaler`, `fleet-manager`); the Kafka-only binaries never compile it.
//!
//! # Layout
//! - [`KubeArgs`] and [`client`]: a `kube::Client` from a kubeconfig (`--kubeconfig`,
//!   `$KUBECONFIG`) or, in a pod, from the service account.
//! - [`leader`]: leader election on a `coordination.k8s.io/v1` Lease.
//! - [`access`]: what the binary's account may do, asked of the API server
//!   (SelfSubjectAccessReview), so a missing RBAC rule is reported by name at start.
//! - [`units`]: Kubernetes quantities and Go durations as numbers.
//! - [`serve_health`]: `/healthz`, `/readyz` and `/metrics` on their own port, stopped with the
//!   shutdown token.
//!
//! The API subset used is the one Kubernetes 1.20 already has (the tests run against a real
//! v1.20.2 API server); production targets current Kubernetes releases.

pub mod access;
pub mod leader;
pub mod units;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rivulet_common::Health;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use access::{Permission, missing_permissions};
pub use leader::{Elector, Leadership, LeaseArgs};

/// What can go wrong in the Kubernetes plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster service account is available.
    #[error(
        "no Kubernetes configuration: pass --kubeconfig (or set KUBECONFIG), or run in a pod with a service account ({0})"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// A client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API server's answer or the transport error.
        #[source]
        source: kube::Error,
    },
    /// The account lacks permissions the binary needs.
    #[error("{}", access::describe_missing(.user, .missing))]
    Forbidden {
        /// Who the API server says we are.
        user: String,
        /// What is missing.
        missing: Vec<Permission>,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An API error with what was being done.
    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Api { what, source }
    }
}

/// How to reach the API server.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file; without it the in-cluster service account is used (or `~/.kube/config`
    /// outside a pod).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, env = "KUBE_CONTEXT")]
    pub kube_context: Option<String>,
}

/// A client for the API server `args` name.
pub async fn client(args: &KubeArgs) -> Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: args.kube_context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => kube::Config::infer().await.map_err(Error::Infer)?,
    };
    kube::Client::try_from(config).map_err(Error::Client)
}

/// Serves `/healthz`, `/readyz` and `/metrics` for `health` on `listen` until `token` is
/// cancelled.
pub async fn serve_health(
    listen: SocketAddr,
    health: Health,
    token: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "Serving health and metrics.");
    let app = rivulet_common::health::router(health);
    Ok(tokio::spawn(async move {
        if let Err(error) =
            rivulet_common::http::serve(listener, app, token, Duration::from_secs(5)).await
        {
            tracing::error!(%error, "The health server failed.");
        }
    }))
}

/// The HTTP status of an API error, if the API server answered.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
