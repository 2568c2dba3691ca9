//! Committing: every partition with new work gets a background commit (`txn`) on the commit
//! interval (a revoked partition, or every one at shutdown, commits what it has left at once:
//! `state::finish`).

use std::sync::{Arc, Mutex};

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::context::Context;
use super::state::{Opening, Shared, lock};
use crate::metrics::Metrics;
use crate::settings::{Failure, Settings};

/// Reaps finished commits and starts one for every partition with new work whose previous
/// commit is done. A failed partition (fenced, or an aborted transaction) starts over from
/// what is committed: state restored from summary-stats, input from the committed offset.
/// With static assignment a fenced partition is fatal ([`Failure::TakenOver`]): another backend
/// owns it now, and reopening would fence that one in turn, back and forth.
pub(crate) fn commit_all(
    consumer: &BaseConsumer<Context>,
    settings: &Arc<Settings>,
    shared: &Mutex<Shared>,
    metrics: &Metrics,
) -> Result<(), Failure> {
    let mut shared = lock(shared);
    let mut failed = Vec::new();
    for (&partition, owned) in shared.owned.iter_mut() {
        if let Some(Err(error)) = owned.writer.reap() {
            failed.push((partition, error));
            continue;
        }
        if owned.writer.busy() || !owned.dirty {
            continue;
        }
        let Some(metadata) = consumer.group_metadata() else {
            return Ok(());
        };
        let batch = owned.batch(settings, partition);
        owned.writer.start(
            settings.clone(),
            partition,
            batch,
            metadata,
            metrics.clone(),
        );
    }
    let mut pause = TopicPartitionList::new();
    for (partition, error) in failed {
        metrics.commit_failures.inc();
        if !settings.partitions.is_empty()
            && let Failure::Kafka(e) = &error
            && rivulet_common::kafka::is_fenced(e)
        {
            return Err(Failure::TakenOver { partition });
        }
        tracing::warn!(partition, %error, "Commit failed; the partition is reopened from its last commit.");
        if let Some(mut owned) = shared.owned.remove(&partition) {
            owned.writer.abort();
        }
        shared.opening.insert(partition, Opening::queued());
        pause.add_partition(&settings.input, partition);
    }
    if pause.count() > 0 {
        let _ = consumer.pause(&pause);
    }
    Ok(())
}
