//! One reconcile of each worker type. Each returns how many errors it met; each transition is
//! safe to repeat after a crash at any point (applies are idempotent, state changes are
//! compare-and-sets, deletion re-checks what is left).

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;

use super::{Context, Worker};
use crate::catalog::Cluster;
use crate::model::{KafkaRow, Status};
use crate::store::Transition;
use crate::strimzi::{self, Progress};

/// Runs one reconcile of `worker`.
pub async fn once(worker: Worker, ctx: &Context) -> u64 {
    let r = match worker {
        Worker::Accepted => accepted(ctx).await,
        Worker::Preparing => per_row(ctx, Status::Preparing, preparing).await,
        Worker::Provisioning => provisioning_all(ctx).await,
        Worker::Deleting => {
            let a = per_row(ctx, Status::Deprovision, deprovision).await;
            let b = per_row(ctx, Status::Deleting, deleting).await;
            a.and_then(|a| b.map(|b| a + b))
        }
        Worker::General => general(ctx).await,
    };
    r.unwrap_or_else(|e| {
        tracing::warn!(worker = worker.lease_type(), error = %e, "Reconcile failed.");
        1
    })
}

/// Capacity units used per (cluster, instance type).
type Used = HashMap<(String, String), i64>;

/// The first cluster, in configuration order, that takes `row`: ready, schedulable, in its
/// provider and region, multi-AZ if it is, supporting its type, with room for its capacity
/// in all and for its type.
pub fn place<'c>(row: &KafkaRow, clusters: &'c [Cluster], used: &Used) -> Option<&'c Cluster> {
    let need = i64::from(row.capacity_consumed);
    clusters.iter().find(|c| {
        let total: i64 = used
            .iter()
            .filter(|((id, _), _)| *id == c.cluster_id)
            .map(|(_, n)| n)
            .sum();
        let of_type = used
            .get(&(c.cluster_id.clone(), row.instance_type.clone()))
            .copied()
            .unwrap_or(0);
        c.status == "ready"
            && c.schedulable
            && c.cloud_provider == row.cloud_provider
            && c.region == row.region
            && (c.multi_az || !row.multi_az)
            && c.supports(&row.instance_type)
            && total + need <= i64::from(c.kafka_instance_limit)
            && c.capacity
                .get(&row.instance_type)
                .is_none_or(|cap| of_type + need <= i64::from(*cap))
    })
}

async fn cas(
    ctx: &Context,
    worker: Worker,
    row: &KafkaRow,
    from: Status,
    to: Transition,
) -> Result<bool, sqlx::Error> {
    let moved = ctx.store.transition(&row.id, from, &to).await?;
    if moved {
        tracing::info!(id = %row.id, from = from.as_str(), to = to.status.as_str(), "Kafka request moved.");
    } else {
        ctx.metrics.lost(worker.lease_type());
        tracing::info!(id = %row.id, from = from.as_str(), "Kafka request moved on before this change.");
    }
    Ok(moved)
}

fn failed(reason: impl Into<String>) -> Transition {
    Transition {
        failed_reason: Some(reason.into()),
        ..Transition::to(Status::Failed)
    }
}

async fn accepted(ctx: &Context) -> Result<u64, sqlx::Error> {
    let rows = ctx
        .store
        .in_status(Status::Accepted, ctx.settings.batch)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut used: Used = ctx
        .store
        .capacity_used()
        .await?
        .into_iter()
        .map(|(c, t, n)| ((c, t), n))
        .collect();
    let now = Utc::now();
    for row in rows {
        // One at a time: each placement counts against the next.
        match place(&row, &ctx.catalog.clusters, &used) {
            Some(c) => {
                let to = Transition {
                    cluster_id: Some(c.cluster_id.clone()),
                    kafka_version: Some(ctx.settings.kafka_version.clone()),
                    strimzi_version: Some(ctx.settings.strimzi_version.clone()),
                    ..Transition::to(Status::Preparing)
                };
                if cas(ctx, Worker::Accepted, &row, Status::Accepted, to).await? {
                    *used
                        .entry((c.cluster_id.clone(), row.instance_type.clone()))
                        .or_default() += i64::from(row.capacity_consumed);
                }
            }
            None if now - row.created_at > ctx.settings.placement_timeout => {
                let why = format!(
                    "no data-plane cluster in {}/{} had capacity for a {} instance within {} minutes",
                    row.cloud_provider,
                    row.region,
                    row.instance_type,
                    ctx.settings.placement_timeout.num_minutes()
                );
                if cas(ctx, Worker::Accepted, &row, Status::Accepted, failed(why)).await? {
                    ctx.metrics.operation("create", false);
                }
            }
            None => {}
        }
    }
    Ok(0)
}

/// Runs `step` for every live row in `status`, `concurrency` at a time; sums their errors.
async fn per_row<'a, F, Fut>(ctx: &'a Context, status: Status, step: F) -> Result<u64, sqlx::Error>
where
    F: Fn(&'a Context, KafkaRow) -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>> + 'a,
{
    let rows = ctx.store.in_status(status, ctx.settings.batch).await?;
    each(ctx, rows, |row| step(ctx, row)).await
}

/// Runs `step` for each of `rows`, `concurrency` at a time; sums their errors.
async fn each<F, Fut>(ctx: &Context, rows: Vec<KafkaRow>, step: F) -> Result<u64, sqlx::Error>
where
    F: Fn(KafkaRow) -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let results: Vec<_> = futures::stream::iter(rows)
        .map(step)
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    let mut errors = 0;
    for r in results {
        errors += r?;
    }
    Ok(errors)
}

fn cluster_of<'c>(ctx: &'c Context, row: &KafkaRow) -> Option<&'c Cluster> {
    row.cluster_id
        .as_deref()
        .and_then(|id| ctx.catalog.cluster(id))
}

async fn preparing(ctx: &Context, row: KafkaRow) -> Result<u64, sqlx::Error> {
    let w = Worker::Preparing;
    let (Some(cluster), Some(size)) = (
        cluster_of(ctx, &row),
        ctx.catalog.size(&row.instance_type, &row.size_id),
    ) else {
        let why = format!(
            "cluster {:?} or size {}.{} is no longer configured",
            row.cluster_id, row.instance_type, row.size_id
        );
        if cas(ctx, w, &row, Status::Preparing, failed(why)).await? {
            ctx.metrics.operation("create", false);
        }
        return Ok(0);
    };
    let version = row
        .kafka_version
        .clone()
        .unwrap_or_else(|| ctx.settings.kafka_version.clone());
    let applied = match ctx.plane.cluster(cluster).await {
        Ok(plane) => {
            plane
                .apply(
                    &strimzi::namespace(&row),
                    &strimzi::node_pool(&row, size),
                    &strimzi::kafka(&row, size, &version),
                )
                .await
        }
        Err(e) => Err(e),
    };
    match applied {
        Ok(()) => {
            cas(
                ctx,
                w,
                &row,
                Status::Preparing,
                Transition::to(Status::Provisioning),
            )
            .await?;
            Ok(0)
        }
        Err(e) => {
            tracing::warn!(id = %row.id, error = %e, "Could not write the instance's objects.");
            give_up_after_timeout(ctx, w, &row, Status::Preparing, &e.to_string()).await?;
            Ok(1)
        }
    }
}

/// A data-plane failure that has lasted past the provisioning timeout fails the instance.
async fn give_up_after_timeout(
    ctx: &Context,
    w: Worker,
    row: &KafkaRow,
    from: Status,
    error: &str,
) -> Result<(), sqlx::Error> {
    if Utc::now() - row.status_changed_at > ctx.settings.patience.timeout {
        let why = format!("the data plane could not be reached: {error}");
        if cas(ctx, w, row, from, failed(why)).await? {
            ctx.metrics.operation("create", false);
        }
    }
    Ok(())
}

/// The Kafkas of each cluster with instances provisioning, by namespace: one list per cluster
/// and reconcile, not one read per instance.
type Listed = HashMap<String, Result<HashMap<String, serde_json::Value>, String>>;

async fn provisioning_all(ctx: &Context) -> Result<u64, sqlx::Error> {
    let rows = ctx
        .store
        .in_status(Status::Provisioning, ctx.settings.batch)
        .await?;
    let clusters: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.cluster_id.as_deref())
        .collect();
    let mut listed = Listed::new();
    for id in clusters {
        let Some(cluster) = ctx.catalog.cluster(id) else {
            continue;
        };
        let kafkas = match ctx.plane.cluster(cluster).await {
            Ok(plane) => plane.all_kafkas().await,
            Err(e) => Err(e),
        };
        listed.insert(id.to_owned(), kafkas.map_err(|e| e.to_string()));
    }
    let listed = &listed;
    each(ctx, rows, |row| provisioning(ctx, row, listed)).await
}

async fn provisioning(ctx: &Context, row: KafkaRow, listed: &Listed) -> Result<u64, sqlx::Error> {
    let w = Worker::Provisioning;
    let found = row.cluster_id.as_deref().and_then(|id| listed.get(id));
    let kafka = match found {
        None => {
            let why = "its cluster is no longer configured";
            if cas(ctx, w, &row, Status::Provisioning, failed(why)).await? {
                ctx.metrics.operation("create", false);
            }
            return Ok(0);
        }
        Some(Err(e)) => {
            tracing::warn!(id = %row.id, error = %e, "Could not read the instance's Kafka.");
            give_up_after_timeout(ctx, w, &row, Status::Provisioning, e).await?;
            return Ok(1);
        }
        Some(Ok(kafkas)) => kafkas.get(&row.resource_name()),
    };
    let now = Utc::now();
    match strimzi::progress(kafka, row.status_changed_at, now, ctx.settings.patience) {
        Progress::Ready(bootstrap) => {
            let to = Transition {
                bootstrap_server_host: Some(bootstrap),
                ..Transition::to(Status::Ready)
            };
            if cas(ctx, w, &row, Status::Provisioning, to).await? {
                let took = (now - row.created_at).to_std().unwrap_or_default();
                ctx.metrics
                    .creation_duration
                    .get_or_create(&vec![("jobType", "kafka_create".to_owned())])
                    .observe(took.as_secs_f64());
                ctx.metrics.operation("create", true);
            }
        }
        Progress::Failed(why) => {
            if cas(ctx, w, &row, Status::Provisioning, failed(why)).await? {
                ctx.metrics.operation("create", false);
            }
        }
        Progress::Waiting(why) => tracing::debug!(id = %row.id, why, "Not ready yet."),
    }
    Ok(0)
}

async fn deprovision(ctx: &Context, row: KafkaRow) -> Result<u64, sqlx::Error> {
    let w = Worker::Deleting;
    if cas(
        ctx,
        w,
        &row,
        Status::Deprovision,
        Transition::to(Status::Deleting),
    )
    .await?
        && row.cluster_id.is_none()
        && ctx.store.soft_delete(&row.id).await?
    {
        // Never placed: nothing on any data plane.
        ctx.metrics.operation("delete", true);
    }
    Ok(0)
}

async fn deleting(ctx: &Context, row: KafkaRow) -> Result<u64, sqlx::Error> {
    let gone = match cluster_of(ctx, &row) {
        None if row.cluster_id.is_none() => Ok(true),
        None => {
            tracing::error!(id = %row.id, cluster = ?row.cluster_id, "The instance's cluster is no longer configured: its objects cannot be deleted. Restore the cluster's entry, or delete them by hand and the row with them.");
            return Ok(1);
        }
        Some(cluster) => match ctx.plane.cluster(cluster).await {
            Ok(plane) => plane.delete(&row.resource_name()).await,
            Err(e) => Err(e),
        },
    };
    match gone {
        Ok(true) => {
            if ctx.store.soft_delete(&row.id).await? {
                tracing::info!(id = %row.id, "Kafka instance deleted.");
                ctx.metrics.operation("delete", true);
            }
            Ok(0)
        }
        Ok(false) => Ok(0),
        Err(e) => {
            tracing::warn!(id = %row.id, error = %e, "Could not delete the instance's objects.");
            Ok(1)
        }
    }
}

async fn general(ctx: &Context) -> Result<u64, sqlx::Error> {
    for row in ctx.store.expired(ctx.settings.batch).await? {
        let from = row.state();
        if from.may_become(Status::Deprovision) {
            cas(
                ctx,
                Worker::General,
                &row,
                from,
                Transition::to(Status::Deprovision),
            )
            .await?;
        }
    }
    let counts: HashMap<String, i64> = ctx.store.status_counts().await?.into_iter().collect();
    for s in Status::ALL {
        ctx.metrics
            .status_count
            .get_or_create(&vec![("status", s.as_str().to_owned())])
            .set(counts.get(s.as_str()).copied().unwrap_or(0));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    fn cluster(id: &str, limit: u32, cap: &[(&str, u32)]) -> Cluster {
        let mut c: Cluster = serde_yaml_ng::from_str(&format!(
            "cluster_id: {id}\ncloud_provider: aws\nregion: us-east-1\nmulti_az: true\nkafka_instance_limit: {limit}\nkubeconfig: k\n"
        ))
        .unwrap();
        c.capacity = cap.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
        c
    }

    #[test]
    fn placement_takes_the_first_cluster_with_room() {
        let size: crate::catalog::Size = serde_yaml_ng::from_str(
            "{id: x1, display_name: '1', ingressThroughputPerSec: 1Mi, egressThroughputPerSec: 1Mi, totalMaxConnections: 1, maxConnectionAttemptsPerSec: 1, maxDataRetentionSize: 1Gi, maxDataRetentionPeriod: P1D, maxPartitions: 1, maxMessageSize: 1Mi, minInSyncReplicas: 1, replicationFactor: 1, supportedAZModes: [multi]}",
        )
        .unwrap();
        let row = KafkaRow::probe("aws", "us-east-1", "standard", &size);
        let clusters = [
            cluster("full", 2, &[]),
            cluster("no-standard", 10, &[("standard", 0)]),
            cluster("ok", 10, &[("standard", 5)]),
        ];
        let mut used = Used::new();
        used.insert(("full".into(), "developer".into()), 2);
        assert_eq!(place(&row, &clusters, &used).unwrap().cluster_id, "ok");
        used.insert(("ok".into(), "standard".into()), 5);
        assert!(place(&row, &clusters, &used).is_none());
        let mut elsewhere = row.clone();
        elsewhere.region = "eu-west-1".into();
        assert!(place(&elsewhere, &clusters, &Used::new()).is_none());
        let mut single = clusters[2].clone();
        single.multi_az = false;
        assert!(place(&row, &[single.clone()], &Used::new()).is_none());
        single.schedulable = false;
        let mut dev = row.clone();
        dev.multi_az = false;
        assert!(place(&dev, &[single], &Used::new()).is_none());
    }
}
