//! The workers, one per lease type: each replica runs every worker's loop, and a loop acts
//! only while its replica holds that type's lease in `leader_leases`. A lease does not fence a
//! replica that was paused past its end, so every state change is a compare-and-set
//! (`Store::transition`) and every data-plane write is an idempotent apply.

mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::dataplane::DataPlane;
use crate::metrics::Metrics;
use crate::store::{Lease, Store};
use crate::strimzi::Patience;

pub use reconcile::place;

/// A worker type: its lease and what it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    /// `accepted` → `preparing`: placement and versions.
    Accepted,
    /// `preparing` → `provisioning`: namespace, node pool, Kafka.
    Preparing,
    /// `provisioning` → `ready` or `failed`: the Kafka's status.
    Provisioning,
    /// `deprovision` → `deleting` → soft-deleted: the objects removed.
    Deleting,
    /// Lifespans and status counts.
    General,
}

impl Worker {
    /// Every worker.
    pub const ALL: [Worker; 5] = [
        Worker::Accepted,
        Worker::Preparing,
        Worker::Provisioning,
        Worker::Deleting,
        Worker::General,
    ];

    /// Its lease type (the reference's names).
    pub fn lease_type(self) -> &'static str {
        match self {
            Worker::Accepted => "accepted_kafka",
            Worker::Preparing => "preparing_kafka",
            Worker::Provisioning => "provisioning_kafka",
            Worker::Deleting => "deleting_kafka",
            Worker::General => "general_kafka_worker",
        }
    }
}

/// How the workers run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This replica's name in `leader_leases`.
    pub replica: String,
    /// Lease length.
    pub lease: Duration,
    /// Renew a held lease once it ends within this.
    pub renew_within: Duration,
    /// How often each loop tries to take or renew its lease.
    pub election_interval: Duration,
    /// How often a leader reconciles.
    pub reconcile_interval: Duration,
    /// `accepted` this long without a cluster: failed.
    pub placement_timeout: chrono::Duration,
    /// When provisioning gives up.
    pub patience: Patience,
    /// Kafka version new instances get.
    pub kafka_version: String,
    /// Strimzi version recorded for new instances.
    pub strimzi_version: String,
    /// Rows one reconcile takes at most.
    pub batch: i64,
    /// Instances one reconcile works on at once.
    pub concurrency: usize,
}

/// What the workers share.
pub struct Context {
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub plane: DataPlane,
    pub metrics: Metrics,
    pub settings: Settings,
}

/// Runs every worker's loop until `token` is cancelled, then gives up the leases held.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let loops: Vec<_> = Worker::ALL
        .into_iter()
        .map(|w| tokio::spawn(run_one(w, ctx.clone(), token.clone())))
        .collect();
    for l in loops {
        let _ = l.await;
    }
    if let Err(e) = ctx.store.release(&ctx.settings.replica).await {
        tracing::warn!(error = %e, "Could not give up the leases: the next leader waits for them to end.");
    }
}

/// One worker: its election runs in a task of its own, so a long reconcile never delays a
/// renewal; the loop reconciles while the lease it last heard of has not ended.
async fn run_one(worker: Worker, ctx: Arc<Context>, token: CancellationToken) {
    let (lease_tx, mut lease) = tokio::sync::watch::channel(None);
    let election = tokio::spawn(elect(worker, ctx.clone(), lease_tx, token.clone()));
    let mut next_reconcile = Instant::now();
    loop {
        let leader = lease.borrow().is_some_and(|end| end > Utc::now());
        if leader && Instant::now() >= next_reconcile {
            let started = std::time::Instant::now();
            let errors = tokio::select! {
                e = reconcile::once(worker, &ctx) => e,
                () = token.cancelled() => break,
            };
            ctx.metrics
                .reconciled(worker.lease_type(), started.elapsed(), errors);
            next_reconcile = Instant::now() + ctx.settings.reconcile_interval;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_reconcile), if leader => {}
            r = lease.changed() => if r.is_err() { break },
            () = token.cancelled() => break,
        }
    }
    let _ = election.await;
}

/// Takes or renews `worker`'s lease every election interval and tells the loop when it ends.
async fn elect(
    worker: Worker,
    ctx: Arc<Context>,
    lease: tokio::sync::watch::Sender<Option<chrono::DateTime<Utc>>>,
    token: CancellationToken,
) {
    let s = &ctx.settings;
    let mut was_leader = false;
    let mut seeded = false;
    loop {
        if !seeded {
            seeded = ctx.store.seed_lease(worker.lease_type()).await.is_ok();
        }
        let found = ctx
            .store
            .lease(worker.lease_type(), &s.replica, s.lease, s.renew_within)
            .await;
        let end = match found {
            Ok(Lease::Held(end)) => Some(Some(end)),
            Ok(Lease::Other) => Some(None),
            // Keep what we had: it ends by itself at its deadline.
            Ok(Lease::Busy) => None,
            Err(e) => {
                tracing::warn!(worker = worker.lease_type(), error = %e, "Lease not renewed.");
                None
            }
        };
        if let Some(end) = end {
            lease.send_if_modified(|held| {
                let changed = *held != end;
                *held = end;
                changed
            });
        }
        let leader = lease.borrow().is_some_and(|end| end > Utc::now());
        if leader != was_leader {
            tracing::info!(
                worker = worker.lease_type(),
                replica = %s.replica,
                "{}",
                if leader { "Leading." } else { "No longer leading." }
            );
            was_leader = leader;
        }
        ctx.metrics.leading(worker.lease_type(), leader);
        tokio::select! {
            () = tokio::time::sleep(s.election_interval) => {}
            () = token.cancelled() => break,
        }
    }
    ctx.metrics.leading(worker.lease_type(), false);
}
