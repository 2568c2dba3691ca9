//! Opening an assigned partition, one step per loop turn: fence the previous owner
//! (`init_transactions`), read the committed offset, restore the state, then seek, own and
//! resume. Fencing and restoring run on their own threads so the loop keeps polling.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::context::Context;
use super::restore::restore;
use super::state::{Opening, Owned, Shared, lock};
use crate::metrics::Metrics;
use crate::settings::{Failure, Settings};
use crate::txn::Writer;

/// Moves every opening partition one step on; a partition whose state is back is sought to
/// its committed offset, owned and resumed. Returns whether any is still on its way.
pub(crate) fn advance_openings(
    consumer: &BaseConsumer<Context>,
    settings: &Arc<Settings>,
    shared: &Mutex<Shared>,
    metrics: &Metrics,
) -> bool {
    let mut guard = lock(shared);
    if guard.opening.is_empty() {
        return false; // the common case
    }
    let partitions: Vec<i32> = guard.opening.keys().copied().collect();
    for partition in partitions {
        let Some(state) = guard.opening.remove(&partition) else {
            continue;
        };
        let next = match state {
            Opening::Queued(at) if Instant::now() < at => Some(Opening::Queued(at)),
            Opening::Queued(_) => {
                let settings = settings.clone();
                Some(Opening::Fencing(std::thread::spawn(move || {
                    Writer::open(&settings, partition)
                })))
            }
            Opening::Fencing(thread) if !thread.is_finished() => Some(Opening::Fencing(thread)),
            Opening::Fencing(thread) => match joined(thread).and_then(|writer| {
                let offset = committed_offset(consumer, settings, partition)?;
                let settings = settings.clone();
                let restore =
                    std::thread::spawn(move || restore(&settings, partition, writer, offset));
                Ok(Opening::Restoring(restore, offset))
            }) {
                Ok(next) => Some(next),
                Err(error) => Some(retry(partition, error, metrics)),
            },
            Opening::Restoring(thread, offset) if !thread.is_finished() => {
                Some(Opening::Restoring(thread, offset))
            }
            Opening::Restoring(thread, offset) => match joined(thread).and_then(|restored| {
                consumer.seek(&settings.input, partition, offset, Duration::from_secs(10))?;
                Ok(restored)
            }) {
                Ok(restored) => {
                    let keys = restored.aggregator.len();
                    metrics.restored_keys.inc_by(keys as u64);
                    tracing::info!(partition, keys, ?offset, "Opened a partition.");
                    guard.owned.insert(
                        partition,
                        Owned {
                            writer: restored.writer,
                            aggregator: restored.aggregator,
                            next: None,
                            dirty: false,
                            dead_letters: Vec::new(),
                            pending: restored.pending,
                            pending_changed: false,
                        },
                    );
                    let mut resume = TopicPartitionList::new();
                    resume.add_partition(&settings.input, partition);
                    let _ = consumer.resume(&resume);
                    None
                }
                Err(error) => Some(retry(partition, error, metrics)),
            },
        };
        if let Some(next) = next {
            guard.opening.insert(partition, next);
        }
    }
    !guard.opening.is_empty()
}

fn joined<T>(thread: JoinHandle<Result<T, Failure>>) -> Result<T, Failure> {
    thread.join().unwrap_or(Err(Failure::Panicked))
}

fn retry(partition: i32, error: Failure, metrics: &Metrics) -> Opening {
    if let Failure::UnreadableSummary { .. } | Failure::UnreadableState { .. } = error {
        // An operator has to act: say so loudly, count it, and try again less often.
        metrics.restore_failures.inc();
        tracing::error!(partition, %error, "Cannot restore a partition; retrying in 10 s.");
        return Opening::Queued(Instant::now() + Duration::from_secs(10));
    }
    tracing::warn!(partition, %error, "Could not open a partition yet; retrying in 500 ms.");
    Opening::Queued(Instant::now() + Duration::from_millis(500))
}

/// The group's committed offset of an input partition (the beginning when none).
fn committed_offset(
    consumer: &BaseConsumer<Context>,
    settings: &Settings,
    partition: i32,
) -> Result<Offset, Failure> {
    let mut committed = TopicPartitionList::new();
    committed.add_partition(&settings.input, partition);
    let committed = consumer.committed_offsets(committed, Duration::from_secs(10))?;
    Ok(committed
        .find_partition(&settings.input, partition)
        .map(|e| e.offset())
        .filter(|o| matches!(o, Offset::Offset(_)))
        .unwrap_or(Offset::Beginning))
}
