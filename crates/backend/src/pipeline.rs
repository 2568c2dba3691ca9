//! The exactly-once loop: consume `raw-data-in`, aggregate, and in one Kafka transaction per
//! input partition write the changed totals to the same partition of `summary-stats`, the dead
//! letters to `raw-data-in.dlq`, and the consumed offsets.
//!
//! One transactional producer per input partition, with `transactional.id = <group>-<partition>`:
//! whoever owns a partition next calls `init_transactions` with the same id, which fences the
//! previous owner (a zombie paused past its session) by producer epoch and aborts its open
//! transaction. The state of a partition is its keys' latest committed totals, restored from
//! `summary-stats` when the partition is assigned (the partition is paused meanwhile), so what is
//! restored always matches the committed input offset.
//!
//! Runs on one blocking thread: librdkafka calls the rebalance callbacks from `poll`, and the
//! revocation callback finishes the partition's open transaction before the partition moves.
//! The slow parts run beside it so the loop keeps polling: each partition's commit (`txn`) and
//! the fencing and restoring of a newly assigned partition (`Opening`).

mod commit;
mod context;
mod opening;
mod restore;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rivulet_common::kafka::ConsumerSettings;
use rivulet_contracts::topics::headers;
use tokio_util::sync::CancellationToken;

use self::commit::commit_all;
use self::context::Context;
use self::opening::advance_openings;
use self::state::{Owned, Shared, finish, lock};
use crate::decode::{Decoder, Reject};
use crate::metrics::Metrics;
use crate::pending::{self, Admission};
use crate::settings::{Failure, Settings};
use crate::txn::Outgoing;

/// Runs until `token` is cancelled. Blocking.
pub fn run(
    settings: Settings,
    mut decoder: Decoder,
    metrics: Metrics,
    token: CancellationToken,
) -> Result<(), Failure> {
    let settings = Arc::new(settings);
    let shared = Arc::new(Mutex::new(Shared {
        owned: HashMap::new(),
        opening: HashMap::new(),
    }));
    let context = Context {
        settings: settings.clone(),
        shared: shared.clone(),
        metrics: metrics.clone(),
    };
    let mut consumer_settings = ConsumerSettings::new("backend", Some(settings.group.clone()));
    consumer_settings.read_committed = true;
    consumer_settings.manual_offset_store = true;
    // The lag gauge comes from librdkafka's statistics.
    consumer_settings.statistics_interval = Some(Duration::from_secs(5));
    let consumer: BaseConsumer<Context> =
        settings.kafka.base_consumer(&consumer_settings, context)?;
    if settings.partitions.is_empty() {
        consumer.subscribe(&[&settings.input])?;
    } else {
        assign(&consumer, &settings, &shared)?;
    }
    tracing::info!(group = %settings.group, input = %settings.input, output = %settings.output, partitions = ?settings.partitions, "Backend consuming.");

    let mut last_commit = Instant::now();
    let mut turn = Turn::default();
    while !token.is_cancelled() {
        let chores = turn.housekeeping();
        if chores {
            turn.opening = advance_openings(&consumer, &settings, &shared, &metrics);
        }
        match consumer.poll(turn.wait()) {
            Some(Ok(message)) => {
                turn.record();
                handle(
                    &consumer,
                    &settings,
                    &shared,
                    &mut decoder,
                    &metrics,
                    &message,
                );
            }
            Some(Err(error)) => {
                turn.other();
                tracing::warn!(%error, "Consumer error.");
            }
            None => turn.other(),
        }
        if chores && last_commit.elapsed() >= settings.commit_interval {
            if let Err(fatal) = commit_all(&consumer, &settings, &shared, &metrics) {
                tracing::error!(error = %fatal, "Stopping.");
                lock(&shared).owned.clear();
                return Err(fatal);
            }
            last_commit = Instant::now();
        }
    }
    let metadata = consumer.group_metadata();
    let owned: Vec<(i32, Owned)> = lock(&shared).owned.drain().collect();
    for (partition, owned) in owned {
        finish(&settings, partition, owned, metadata.as_ref(), &metrics);
    }
    if settings.partitions.is_empty() {
        consumer.unsubscribe();
    } else {
        let _ = consumer.unassign();
    }
    tracing::info!("Backend stopped.");
    Ok(())
}

/// How the loop spends a turn. While records flow it polls without waiting and does its
/// housekeeping (opening partitions, the commit clock) every [`Turn::EVERY`] records: every
/// clock read and lock is a measurable share of a record's cost (`perf` over
/// `scripts/bench-pipeline`: five clock reads per record were 12 % of the backend's CPU, the
/// commit clock and a 100 ms poll timeout two of them). When a poll finds no record it waits up
/// to 100 ms for one and the next turn does the housekeeping; up to 5 ms while a partition is
/// being opened, which moves one step (fence, restore, resume) per housekeeping: the first of
/// six partitions assigned at once was consuming 0.24-0.30 s after the assignment instead of
/// 0.40 s (four starts each way on the `scripts/bench-pipeline` topic).
#[derive(Debug, Default)]
struct Turn {
    /// Records since the last housekeeping.
    records: u32,
    /// Whether the last poll returned a record.
    flowing: bool,
    /// Whether a partition was on its way to being owned at the last housekeeping.
    opening: bool,
}

impl Turn {
    /// Records between two housekeepings while records flow: about a quarter of a millisecond
    /// at the backend's pace, far below any commit interval.
    const EVERY: u32 = 256;

    /// How long the next poll may wait for a record.
    fn wait(&self) -> Duration {
        if self.flowing {
            Duration::ZERO
        } else if self.opening {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(100)
        }
    }

    /// The poll returned a record.
    fn record(&mut self) {
        self.flowing = true;
        self.records += 1;
    }

    /// The poll returned no record (nothing came, an error, or a rebalance was served).
    fn other(&mut self) {
        self.flowing = false;
    }

    /// Whether this turn does the housekeeping (then the count starts again).
    fn housekeeping(&mut self) -> bool {
        if !self.flowing || self.records >= Self::EVERY {
            self.records = 0;
            true
        } else {
            false
        }
    }
}

/// Static assignment: the partitions assigned directly (no group join), each paused and queued
/// for opening as a rebalance would (fence the previous owner, restore, seek, resume).
fn assign(
    consumer: &BaseConsumer<Context>,
    settings: &Settings,
    shared: &Mutex<Shared>,
) -> Result<(), Failure> {
    let mut list = rdkafka::TopicPartitionList::new();
    for p in &settings.partitions {
        list.add_partition(&settings.input, *p);
    }
    consumer.assign(&list)?;
    consumer.pause(&list)?;
    let mut shared = lock(shared);
    for p in &settings.partitions {
        shared.opening.insert(*p, state::Opening::queued());
    }
    Ok(())
}

fn handle(
    consumer: &BaseConsumer<Context>,
    settings: &Settings,
    shared: &Mutex<Shared>,
    decoder: &mut Decoder,
    metrics: &Metrics,
    message: &BorrowedMessage<'_>,
) {
    let partition = message.partition();
    let mut shared = lock(shared);
    let Some(owned) = shared.owned.get_mut(&partition) else {
        // Not open (restoring, or fenced): it will be read again from the committed offset.
        return;
    };
    let origin = origin(message);
    let admission = pending::admit(partition, origin, &owned.pending);
    if let Admission::Skip(origin_offset) = admission {
        // A copy of a record that was counted already (or never dead-lettered here).
        metrics.replays_skipped.inc();
        tracing::debug!(
            partition,
            offset = message.offset(),
            origin_offset,
            "Skipped a replayed copy already counted."
        );
        owned.next = Some(message.offset() + 1);
        owned.dirty = true;
        return;
    }
    // What a dead letter of this record names: the record's identity.
    let identity = origin.unwrap_or((partition, message.offset()));
    let tracked = matches!(admission, Admission::Original) && origin.is_none();
    let decoded = decoder.decode(message.payload());
    let failure = match &decoded {
        Ok(record) if owned.aggregator.admits(&record.sku, settings.max_skus) => {
            match owned.aggregator.add(record) {
                Ok(()) => {
                    metrics.records.inc();
                    if let Admission::Replay(origin_offset) = admission {
                        owned.pending.remove(origin_offset);
                        owned.pending_changed = true;
                        metrics.replays_counted.inc();
                    }
                    None
                }
                Err(overflow) => Some(("overflow", overflow.to_string())),
            }
        }
        Ok(_) => Some((
            "too_many_skus",
            format!(
                "too many SKUs: this partition already holds {} (--max-skus)",
                settings.max_skus
            ),
        )),
        Err(Reject::Unavailable(error)) => {
            // Registry down: do not move past this record; read it again shortly.
            metrics.registry_errors.inc();
            tracing::warn!(%error, partition, offset = message.offset(), "Schema registry unavailable; retrying.");
            retry_later(consumer, settings, message);
            return;
        }
        Err(reject) => Some((reject.label(), reject.to_string())),
    };
    if let Ok(record) = decoded {
        decoder.recycle(record);
    }
    if let Some((label, reason)) = failure {
        if tracked && owned.pending.runs() >= settings.max_pending_runs {
            // Forgetting a pending dead letter could count its replay twice, or never: wait.
            metrics.pending_full.inc();
            tracing::error!(
                partition,
                offset = message.offset(),
                runs = owned.pending.runs(),
                "Too many dead letters waiting for replay (--max-pending-runs): replay the DLQ or raise the limit; this partition waits."
            );
            retry_later(consumer, settings, message);
            return;
        }
        dead_letter(owned, message, identity, label, &reason, metrics);
        if tracked {
            owned.pending.insert(message.offset());
            owned.pending_changed = true;
        }
    }
    owned.next = Some(message.offset() + 1);
    owned.dirty = true;
}

/// Reads `message` again shortly: seeks back to it and waits a little.
fn retry_later(
    consumer: &BaseConsumer<Context>,
    settings: &Settings,
    message: &BorrowedMessage<'_>,
) {
    let _ = consumer.seek(
        &settings.input,
        message.partition(),
        Offset::Offset(message.offset()),
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(500));
}

/// The identity a replayed copy carries: its original record's partition and offset.
fn origin(message: &BorrowedMessage<'_>) -> Option<(i32, i64)> {
    let headers = message.headers()?;
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| std::str::from_utf8(h.value?).ok())
    };
    Some((
        value(headers::ORIGIN_PARTITION)?.parse().ok()?,
        value(headers::ORIGIN_OFFSET)?.parse().ok()?,
    ))
}

/// Queues `message` for the DLQ with its original key and bytes, the reason and its identity
/// (`pending.rs`: its own partition and offset, or its origin's for a replayed copy), and
/// counts it under `label`.
fn dead_letter(
    owned: &mut Owned,
    message: &BorrowedMessage<'_>,
    identity: (i32, i64),
    label: &str,
    reason: &str,
    metrics: &Metrics,
) {
    metrics
        .dead_letters
        .get_or_create(&vec![("reason".to_owned(), label.to_owned())])
        .inc();
    tracing::debug!(
        partition = message.partition(),
        offset = message.offset(),
        reason,
        "Dead-lettered a record."
    );
    let (p, o) = (identity.0.to_string(), identity.1.to_string());
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: headers::DLQ_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: headers::SOURCE_TOPIC,
            value: Some(message.topic()),
        })
        .insert(Header {
            key: headers::SOURCE_PARTITION,
            value: Some(p.as_str()),
        })
        .insert(Header {
            key: headers::SOURCE_OFFSET,
            value: Some(o.as_str()),
        });
    owned.dead_letters.push(Outgoing {
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn housekeeping_runs_every_so_many_records_and_whenever_records_stop() {
        let mut turn = Turn::default();
        assert!(turn.housekeeping(), "at start");
        assert_eq!(turn.wait(), Duration::from_millis(100));
        let mut chores = 0;
        for _ in 0..(Turn::EVERY * 3) {
            if turn.housekeeping() {
                chores += 1;
            }
            turn.record();
            assert_eq!(turn.wait(), Duration::ZERO, "records flow: no waiting");
        }
        assert_eq!(chores, 3, "once per {} records", Turn::EVERY);
        turn.other();
        assert_eq!(turn.wait(), Duration::from_millis(100));
        assert!(turn.housekeeping(), "nothing came: housekeeping now");
        assert!(turn.housekeeping(), "and on every idle turn");
        turn.opening = true;
        assert_eq!(turn.wait(), Duration::from_millis(5), "a partition opening");
        turn.record();
        assert_eq!(turn.wait(), Duration::ZERO, "records flow: no waiting");
    }
}
