//! `consumer-autoscaler`: a Konsumerator-compatible operator. For each `Consumer`
//! (`consumers.rivulet.io/v1alpha1`) it runs one Deployment per group of partitions and sizes
//! each one's CPU and memory from its lag, read from Prometheus (the reference's three queries)
//! or from Kafka itself (log-end and committed offsets).
//!
//! # Layout
//! - [`crd`]: the custom resource, field for field Konsumerator's.
//! - [`spec`]: a Consumer's spec validated into numbers.
//! - [`instances`]: partition groups, names, labels, annotations, environment (pure).
//! - [`predict`]: the NaivePredictor and the limiters (pure).
//! - [`scaling`]: the per-instance scaling states (pure).
//! - [`plan`]: one reconcile's decisions (pure).
//! - [`providers`]: the `prometheus` and `kafka` metrics providers.
//! - `controller`: the reconciler that carries plans out, with leader election.
//! - [`metrics`]: Konsumerator's metric names and Rivulet's.

pub mod crd;
pub mod instances;
pub mod metrics;
pub mod plan;
pub mod predict;
pub mod providers;
pub mod scaling;
pub mod spec;

mod controller;

use std::net::SocketAddr;
use std::time::Duration;

use rivulet_common::{Health, LogArgs};
use rivulet_kube_common::{Elector, KubeArgs, LeaseArgs, Permission};
use tokio_util::sync::CancellationToken;

/// What stops the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kubernetes plumbing (client, RBAC).
    #[error(transparent)]
    Kube(#[from] rivulet_kube_common::Error),
    /// The CRD is not installed.
    #[error(
        "the API server does not serve consumers.rivulet.io/v1alpha1: install the CRD (k8s/base/consumer-autoscaler/crd.yaml, or `consumer-autoscaler-crd | kubectl apply -f -`): {0}"
    )]
    NoCrd(#[source] kube::Error),
    /// The health server could not listen.
    #[error("health server: {0}")]
    Listen(#[source] std::io::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `consumer-autoscaler`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "consumer-autoscaler",
    version,
    about = "Runs one Deployment per partition group of each Consumer and sizes it from its lag (Konsumerator-compatible)."
)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// The operator.
    #[command(flatten)]
    pub config: Config,
}

/// How the operator runs.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// The API server.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The Lease the replicas elect a leader on.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Run leader election (off: this replica always acts; for a single replica only).
    #[arg(long, env = "AUTOSCALER_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Watch Consumers in this namespace only (default: all namespaces).
    #[arg(long, env = "AUTOSCALER_NAMESPACE")]
    pub namespace: Option<String>,
    /// `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "AUTOSCALER_LISTEN", default_value = "0.0.0.0:8085")]
    pub listen: SocketAddr,
    /// Longest wait for one Prometheus request, in milliseconds (the reference: 30 s).
    #[arg(
        long,
        env = "AUTOSCALER_PROMETHEUS_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub prometheus_timeout_ms: u64,
    /// Longest wait for the offsets of the `kafka` provider, in milliseconds.
    #[arg(long, env = "AUTOSCALER_KAFKA_TIMEOUT_MS", default_value_t = 10_000)]
    pub kafka_timeout_ms: u64,
    /// Longest time between two reconciles of a Consumer, in seconds (the reference: 60).
    #[arg(long, env = "AUTOSCALER_RESYNC_SECONDS", default_value_t = 60)]
    pub resync_seconds: u64,
}

impl Config {
    /// What the operator's account must be allowed to do.
    pub fn permissions(&self) -> Vec<Permission> {
        let ns = self.namespace.as_deref();
        let mut p = vec![
            Permission::new("list", "rivulet.io", "consumers", ns),
            Permission::new("watch", "rivulet.io", "consumers", ns),
            Permission::new("patch", "rivulet.io", "consumers/status", ns),
        ];
        for verb in ["list", "watch", "create", "update", "delete"] {
            p.push(Permission::new(verb, "apps", "deployments", ns));
        }
        p.push(Permission::new("create", "events.k8s.io", "events", ns));
        p
    }
}

/// Runs the operator until `token` is cancelled.
pub async fn run(config: Config, token: CancellationToken) -> Result<()> {
    let health = Health::unprefixed();
    let metrics = metrics::Metrics::register(&health);
    let server = rivulet_kube_common::serve_health(config.listen, health.clone(), token.clone())
        .await
        .map_err(Error::Listen)?;
    let client = rivulet_kube_common::client(&config.kube).await?;
    rivulet_kube_common::access::require(&client, &config.permissions()).await?;
    let consumers: kube::Api<crd::Consumer> = kube::Api::all(client.clone());
    consumers
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(Error::NoCrd)?;
    let leadership = if config.leader_election {
        let elector = Elector::new(&client, &config.lease, "consumer-autoscaler");
        tracing::info!(
            identity = elector.identity(),
            "Joining the leader election."
        );
        Some(elector.spawn(token.clone()))
    } else {
        None
    };
    // Ready once it can act (a standby is ready too: it takes over when the leader goes).
    health.set_ready(true);
    let context = controller::Context::new(client, config.clone(), metrics);
    match leadership {
        None => controller::run(context, token.clone()).await,
        Some((mut leader, election)) => {
            while !token.is_cancelled() {
                tokio::select! {
                    () = token.cancelled() => break,
                    l = leader.wait_for(|l| l.leader) => if l.is_err() { break },
                }
                let term = token.child_token();
                context.metrics.leader.set(1);
                tracing::info!("Leading: reconciling Consumers.");
                let ctx = context.clone();
                let run = tokio::spawn(controller::run(ctx, term.clone()));
                tokio::select! {
                    () = token.cancelled() => {}
                    _ = leader.wait_for(|l| !l.leader) => {
                        tracing::warn!("No longer the leader: stopped reconciling.");
                    }
                }
                term.cancel();
                let _ = run.await;
                context.metrics.leader.set(0);
            }
            let _ = election.await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(())
}
