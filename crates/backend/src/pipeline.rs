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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ConsumerSettings, read_range};
use tokio_util::sync::CancellationToken;

use crate::aggregate::Aggregator;
use crate::decode::{Decoder, Reject};
use crate::metrics::Metrics;
use crate::txn::{Batch, Outgoing, Writer};
use rivulet_contracts::Version;
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_contracts::topics::headers;

/// Header with the reason a record was dead-lettered.
pub const REASON_HEADER: &str = headers::DLQ_REASON;
/// Header on every summary: the input offset its totals cover up to (exclusive). A restore
/// ignores summaries past the committed input offset, which a broker that shows records of a
/// dead, never-committed transaction to `read_committed` readers (Tansu) would otherwise leak
/// into the state.
pub const INPUT_OFFSET_HEADER: &str = headers::INPUT_OFFSET;
/// Headers locating the original record.
pub const SOURCE_HEADERS: [&str; 3] = [
    headers::SOURCE_TOPIC,
    headers::SOURCE_PARTITION,
    headers::SOURCE_OFFSET,
];

/// Everything the loop needs, fixed at start-up.
pub struct Settings {
    /// Kafka connection.
    pub kafka: KafkaArgs,
    /// Consumer group (and transactional-id prefix).
    pub group: String,
    /// Raw input topic.
    pub input: String,
    /// Summary output topic (same partition count as the input).
    pub output: String,
    /// Dead-letter topic.
    pub dlq: String,
    /// Summary schema version written, its id and schema.
    pub summary: (Version, u32, Schema),
    /// Summary reader schema (v3) for restoring.
    pub summary_reader: Schema,
    /// The summary schemas by registry id, for restoring what any backend version wrote.
    pub summary_writers: HashMap<u32, Schema>,
    /// How often transactions are committed.
    pub commit_interval: Duration,
}

/// The state of one owned input partition.
struct Owned {
    writer: Writer,
    aggregator: Aggregator,
    /// Next input offset to commit, once something was consumed.
    next: Option<i64>,
    /// Consumed since the last batch was taken.
    dirty: bool,
    /// Dead letters for the next batch.
    dead_letters: Vec<Outgoing>,
}

impl Owned {
    /// Everything consumed since the last batch: the changed totals as summaries, the dead
    /// letters and the input offset they cover.
    fn batch(&mut self, settings: &Settings) -> Batch {
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
                        key: INPUT_OFFSET_HEADER,
                        value: Some(covered.as_str()),
                    }),
                }),
                // Our own record not fitting our own schema is a defect, not bad input.
                Err(error) => tracing::error!(%error, "Could not encode a summary."),
            }
        }
        self.dirty = false;
        Batch {
            summaries,
            dead_letters: std::mem::take(&mut self.dead_letters),
            next: self.next,
        }
    }
}

/// What the rebalance callbacks and the loop share (always on the same thread).
struct Shared {
    owned: HashMap<i32, Owned>,
    /// Assigned partitions being opened (fenced, restored); paused until then.
    opening: HashMap<i32, Opening>,
}

/// The consumer context: finishes transactions on revocation, queues assignments.
struct Context {
    settings: Arc<Settings>,
    shared: Arc<Mutex<Shared>>,
    metrics: Metrics,
}

impl ClientContext for Context {
    /// The lag of the assigned input partitions, from librdkafka's statistics.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag: i64 = statistics
            .topics
            .get(&self.settings.input)
            .map(|topic| {
                topic
                    .partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                    .map(|p| p.consumer_lag)
                    .sum()
            })
            .unwrap_or(0);
        self.metrics.lag.set(lag);
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let metadata = consumer.group_metadata();
            let mut shared = lock(&self.shared);
            for element in list.elements_for_topic(&self.settings.input) {
                let partition = element.partition();
                shared.opening.remove(&partition);
                if let Some(owned) = shared.owned.remove(&partition) {
                    finish(
                        &self.settings,
                        partition,
                        owned,
                        metadata.as_ref(),
                        &self.metrics,
                    );
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut pause = TopicPartitionList::new();
            let mut shared = lock(&self.shared);
            for element in list.elements_for_topic(&self.settings.input) {
                shared
                    .opening
                    .insert(element.partition(), Opening::queued());
                pause.add_partition(&self.settings.input, element.partition());
            }
            if let Err(error) = consumer.pause(&pause) {
                tracing::warn!(%error, "Could not pause newly assigned partitions.");
            }
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Only this thread takes the lock; a poisoned one still holds consistent data.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a partition could not be committed or opened.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Kafka refused.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Building a client failed.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// The consumer has no group metadata (not in a group).
    #[error("the consumer is not in a group")]
    NoGroup,
    /// A commit thread panicked (a defect).
    #[error("a commit thread panicked")]
    Panicked,
    /// Other members hold partitions of the group.
    #[error(
        "group {group} still has other members ({assigned} of {partitions} partitions came to us): stop the backends first"
    )]
    GroupBusy {
        /// Group.
        group: String,
        /// Partitions assigned to us.
        assigned: usize,
        /// Partitions of the topic.
        partitions: usize,
    },
}

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
    consumer.subscribe(&[&settings.input])?;
    tracing::info!(group = %settings.group, input = %settings.input, output = %settings.output, "Backend consuming.");

    let mut last_commit = Instant::now();
    while !token.is_cancelled() {
        advance_openings(&consumer, &settings, &shared, &metrics);
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            match result {
                Ok(message) => handle(
                    &consumer,
                    &settings,
                    &shared,
                    &mut decoder,
                    &metrics,
                    &message,
                ),
                Err(error) => tracing::warn!(%error, "Consumer error."),
            }
        }
        if last_commit.elapsed() >= settings.commit_interval {
            commit_all(&consumer, &settings, &shared, &metrics);
            last_commit = Instant::now();
        }
    }
    let metadata = consumer.group_metadata();
    let owned: Vec<(i32, Owned)> = lock(&shared).owned.drain().collect();
    for (partition, owned) in owned {
        finish(&settings, partition, owned, metadata.as_ref(), &metrics);
    }
    consumer.unsubscribe();
    tracing::info!("Backend stopped.");
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
    match decoder.decode(message.payload()) {
        Ok(record) => {
            owned.aggregator.add(&record);
            metrics.records.inc();
        }
        Err(Reject::Unavailable(error)) => {
            // Registry down: do not move past this record; read it again shortly.
            metrics.registry_errors.inc();
            tracing::warn!(%error, partition, offset = message.offset(), "Schema registry unavailable; retrying.");
            let _ = consumer.seek(
                &settings.input,
                partition,
                Offset::Offset(message.offset()),
                Duration::from_secs(5),
            );
            std::thread::sleep(Duration::from_millis(500));
            return;
        }
        Err(reject) => {
            metrics
                .dead_letters
                .get_or_create(&vec![("reason".to_owned(), reject.label().to_owned())])
                .inc();
            let reason = reject.to_string();
            tracing::debug!(
                partition,
                offset = message.offset(),
                reason,
                "Dead-lettered a record."
            );
            let (p, o) = (partition.to_string(), message.offset().to_string());
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: REASON_HEADER,
                    value: Some(reason.as_str()),
                })
                .insert(Header {
                    key: SOURCE_HEADERS[0],
                    value: Some(message.topic()),
                })
                .insert(Header {
                    key: SOURCE_HEADERS[1],
                    value: Some(p.as_str()),
                })
                .insert(Header {
                    key: SOURCE_HEADERS[2],
                    value: Some(o.as_str()),
                });
            owned.dead_letters.push(Outgoing {
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers,
            });
        }
    }
    owned.next = Some(message.offset() + 1);
    owned.dirty = true;
}

/// Reaps finished commits and starts one for every partition with new work whose previous
/// commit is done. A failed partition (fenced, or an aborted transaction) starts over from
/// what is committed: state restored from summary-stats, input from the committed offset.
fn commit_all(
    consumer: &BaseConsumer<Context>,
    settings: &Arc<Settings>,
    shared: &Mutex<Shared>,
    metrics: &Metrics,
) {
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
            return;
        };
        let batch = owned.batch(settings);
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
}

/// Commits what a partition has left and lets it go (revocation, shutdown).
fn finish(
    settings: &Settings,
    partition: i32,
    mut owned: Owned,
    metadata: Option<&ConsumerGroupMetadata>,
    metrics: &Metrics,
) {
    let batch = owned.batch(settings);
    let result = metadata.ok_or(Failure::NoGroup).and_then(|m| {
        owned
            .writer
            .commit_now(settings, partition, batch, m, metrics)
    });
    match result {
        Ok(()) => tracing::info!(partition, "Committed and released a partition."),
        Err(error) => {
            owned.writer.abort();
            tracing::warn!(partition, %error, "Could not commit a partition; its open work was aborted.");
        }
    }
}

/// Where an assigned partition is on its way to being owned. Fencing and restoring run on
/// their own threads so the loop keeps polling (librdkafka would otherwise see a stalled
/// consumer during a long restore and leave the group); the partition stays paused.
enum Opening {
    /// Waiting to start (again, after a failure, not before the instant).
    Queued(Instant),
    /// The transactional producer is being initialised: this fences the previous owner and
    /// settles its open transaction, so the committed offset read next is final.
    Fencing(JoinHandle<Result<Writer, Failure>>),
    /// The state is being read back from `summary-stats`.
    Restoring(JoinHandle<Result<Restored, Failure>>, Offset),
}

impl Opening {
    fn queued() -> Opening {
        Opening::Queued(Instant::now())
    }
}

/// A partition's writer and state, restored up to the committed input offset.
struct Restored {
    writer: Writer,
    aggregator: Aggregator,
}

/// Moves every opening partition one step on; a partition whose state is back is sought to
/// its committed offset, owned and resumed.
fn advance_openings(
    consumer: &BaseConsumer<Context>,
    settings: &Arc<Settings>,
    shared: &Mutex<Shared>,
    metrics: &Metrics,
) {
    let mut guard = lock(shared);
    if guard.opening.is_empty() {
        return; // the common case, checked on every message
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
                Err(error) => Some(retry(partition, error)),
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
                        },
                    );
                    let mut resume = TopicPartitionList::new();
                    resume.add_partition(&settings.input, partition);
                    let _ = consumer.resume(&resume);
                    None
                }
                Err(error) => Some(retry(partition, error)),
            },
        };
        if let Some(next) = next {
            guard.opening.insert(partition, next);
        }
    }
}

fn joined<T>(thread: JoinHandle<Result<T, Failure>>) -> Result<T, Failure> {
    thread.join().unwrap_or(Err(Failure::Panicked))
}

fn retry(partition: i32, error: Failure) -> Opening {
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

/// Reads the partition's summaries back: the latest of each key among those covering no more
/// than the committed input offset.
fn restore(
    settings: &Settings,
    partition: i32,
    writer: Writer,
    offset: Offset,
) -> Result<Restored, Failure> {
    let covered_limit = match offset {
        Offset::Offset(n) => n,
        _ => 0,
    };
    let mut aggregator = Aggregator::default();
    let reader = settings
        .kafka
        .reader(&format!("backend-restore-{partition}"))?;
    let mut latest = HashMap::new();
    let mut ignored = 0u64;
    read_range(
        &reader,
        &settings.output,
        partition,
        0,
        None,
        Duration::from_secs(120),
        |message| {
            let covers = header(message, INPUT_OFFSET_HEADER)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
            match (covers, message.payload()) {
                (Some(covers), Some(payload)) if covers <= covered_limit => {
                    latest.insert(message.key().map(<[u8]>::to_vec), payload.to_vec());
                }
                _ => ignored += 1,
            }
        },
    )?;
    if ignored > 0 {
        tracing::warn!(
            partition,
            ignored,
            "Ignored summaries beyond the committed input offset (an unfinished transaction)."
        );
    }
    for payload in latest.values() {
        if let Some((key, totals)) = restore_value(settings, payload) {
            aggregator.restore(key, totals);
        }
    }
    Ok(Restored { writer, aggregator })
}

/// A summary payload written by any backend version, as totals.
fn restore_value(settings: &Settings, payload: &[u8]) -> Option<(MonthKey, Totals)> {
    let (id, mut body) = rivulet_common::avro::unframe(payload).ok()?;
    let Some(writer) = settings.summary_writers.get(&id) else {
        tracing::warn!(
            id,
            "A summary with an unknown schema id was ignored while restoring."
        );
        return None;
    };
    let reader = GenericDatumReader::builder(writer)
        .reader_schema(&settings.summary_reader)
        .build()
        .ok()?;
    summary::from_value(&reader.read_value(&mut body).ok()?)
}

/// The value of header `name` of `message`.
fn header<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    message.headers()?.iter().find(|h| h.key == name)?.value
}
