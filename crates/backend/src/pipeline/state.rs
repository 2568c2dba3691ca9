//! The loop's state: the partitions it owns (each with its writer, totals and batch in
//! progress) and those on their way to being owned.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use rdkafka::Offset;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::message::{Header, OwnedHeaders};
use rivulet_contracts::summary;
use rivulet_contracts::topics::headers;

use super::restore::Restored;
use crate::aggregate::Aggregator;
use crate::metrics::Metrics;
use crate::pending::Pending;
use crate::settings::{Failure, Settings};
use crate::txn::{Batch, Outgoing, Writer};

/// The state of one owned input partition.
pub(crate) struct Owned {
    pub(crate) writer: Writer,
    pub(crate) aggregator: Aggregator,
    /// Next input offset to commit, once something was consumed.
    pub(crate) next: Option<i64>,
    /// Consumed since the last batch was taken.
    pub(crate) dirty: bool,
    /// Dead letters for the next batch.
    pub(crate) dead_letters: Vec<Outgoing>,
    /// Dead-lettered offsets a replayed copy may still count (`pending.rs`).
    pub(crate) pending: Pending,
    /// `pending` changed since the last batch (its state record goes into the next one).
    pub(crate) pending_changed: bool,
}

impl Owned {
    /// Everything consumed since the last batch: the changed totals as summaries, the dead
    /// letters and the input offset they cover.
    pub(crate) fn batch(&mut self, settings: &Settings, partition: i32) -> Batch {
        let (version, id, schema) = &settings.summary;
        let covered = self.next.map(|n| n.to_string()).unwrap_or_default();
        let mut summaries = Vec::new();
        for (key, totals) in self.aggregator.take_changed() {
            match rivulet_common::avro::encode(*id, schema, summary::value(*version, &key, &totals))
            {
                Ok(payload) => summaries.push(Outgoing {
                    key: Some(key.kafka_key().into_bytes()),
                    payload: Some(payload),
                    headers: OwnedHeaders::new().insert(Header {
                        key: headers::INPUT_OFFSET,
                        value: Some(covered.as_str()),
                    }),
                }),
                // Our own record not fitting our own schema is a defect, not bad input.
                Err(error) => tracing::error!(%error, "Could not encode a summary."),
            }
        }
        self.dirty = false;
        let state = std::mem::take(&mut self.pending_changed).then(|| Outgoing {
            key: Some(state_key(&settings.group, partition).into_bytes()),
            payload: Some(self.pending.encode()),
            headers: OwnedHeaders::new().insert(Header {
                key: headers::INPUT_OFFSET,
                value: Some(covered.as_str()),
            }),
        });
        Batch {
            summaries,
            dead_letters: std::mem::take(&mut self.dead_letters),
            state,
            next: self.next,
        }
    }
}

/// The key of a partition's record in the state topic.
pub(crate) fn state_key(group: &str, partition: i32) -> String {
    format!("{group}|{partition}")
}

/// What the rebalance callbacks and the loop share (always on the same thread).
pub(crate) struct Shared {
    pub(crate) owned: HashMap<i32, Owned>,
    /// Assigned partitions being opened (fenced, restored); paused until then.
    pub(crate) opening: HashMap<i32, Opening>,
}

/// Where an assigned partition is on its way to being owned. Fencing and restoring run on
/// their own threads so the loop keeps polling (librdkafka would otherwise see a stalled
/// consumer during a long restore and leave the group); the partition stays paused.
pub(crate) enum Opening {
    /// Waiting to start (again, after a failure, not before the instant).
    Queued(Instant),
    /// The transactional producer is being initialised: this fences the previous owner and
    /// settles its open transaction, so the committed offset read next is final.
    Fencing(JoinHandle<Result<Writer, Failure>>),
    /// The state is being read back from `summary-stats`.
    Restoring(JoinHandle<Result<Restored, Failure>>, Offset),
}

impl Opening {
    pub(crate) fn queued() -> Opening {
        Opening::Queued(Instant::now())
    }
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Only this thread takes the lock; a poisoned one still holds consistent data.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Commits what a partition has left and lets it go (revocation, shutdown).
pub(crate) fn finish(
    settings: &Settings,
    partition: i32,
    mut owned: Owned,
    metadata: Option<&ConsumerGroupMetadata>,
    metrics: &Metrics,
) {
    let batch = owned.batch(settings, partition);
    let result = metadata.ok_or(Failure::NoGroup).and_then(|m| {
        owned
            .writer
            .commit_now(settings, partition, batch, m, metrics)
    });
    match result {
        Ok(()) => tracing::info!(partition, "Committed and released a partition."),
        Err(error) => {
            owned.writer.abort();
            // A zombie's last commit lands here: its producer was fenced by the new owner.
            metrics.commit_failures.inc();
            tracing::warn!(partition, %error, "Could not commit a partition; its open work was aborted.");
        }
    }
}
