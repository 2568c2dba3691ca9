//! One input partition's transactional output, committed in the background.
//!
//! The loop never touches a partition's producer between commits: summaries and dead letters
//! are collected into a [`Batch`] together with the input offset they cover, and a thread sends
//! the batch, adds the offset to the transaction and commits it while the loop goes on
//! consuming into the next batch. One commit per partition runs at a time; a failed one is
//! reported when it is reaped and the partition starts over from its last commit.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::metrics::Metrics;
use crate::settings::{Failure, Settings};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A record for the output topic or the dead-letter topic.
pub struct Outgoing {
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Option<Vec<u8>>,
    /// Headers.
    pub headers: OwnedHeaders,
}

/// What one transaction holds.
#[derive(Default)]
pub struct Batch {
    /// Summaries for the output partition with the input's number.
    pub summaries: Vec<Outgoing>,
    /// Dead letters.
    pub dead_letters: Vec<Outgoing>,
    /// The partition's state record, when its pending set changed (state topic, partition 0).
    pub state: Option<Outgoing>,
    /// The input offset to commit (next to read), when something was consumed.
    pub next: Option<i64>,
}

/// A partition's transactional producer and its running commit.
pub struct Writer {
    producer: Arc<BaseProducer>,
    running: Option<JoinHandle<Result<(), Failure>>>,
}

impl Writer {
    /// A producer with `transactional.id = <group>-<partition>`, fencing any previous owner,
    /// with a transaction begun.
    pub fn open(settings: &Settings, partition: i32) -> Result<Writer, Failure> {
        let producer_settings = rivulet_common::kafka::ProducerSettings::transactional(
            format!("backend-{partition}"),
            format!("{}-{partition}", settings.group),
        );
        let producer = settings.kafka.base_producer(&producer_settings)?;
        producer.init_transactions(TXN_TIMEOUT)?;
        producer.begin_transaction()?;
        Ok(Writer {
            producer: Arc::new(producer),
            running: None,
        })
    }

    /// Whether a commit is still running.
    pub fn busy(&self) -> bool {
        self.running.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The outcome of a finished commit, if one finished since the last call.
    pub fn reap(&mut self) -> Option<Result<(), Failure>> {
        if self.busy() {
            return None;
        }
        self.wait()
    }

    /// Waits for the running commit, if any, and returns its outcome.
    pub fn wait(&mut self) -> Option<Result<(), Failure>> {
        let thread = self.running.take()?;
        Some(thread.join().unwrap_or(Err(Failure::Panicked)))
    }

    /// Commits `batch` in the background. Call only when not [`busy`](Writer::busy) and after
    /// reaping the previous outcome.
    pub fn start(
        &mut self,
        settings: Arc<Settings>,
        partition: i32,
        batch: Batch,
        metadata: ConsumerGroupMetadata,
        metrics: Metrics,
    ) {
        let producer = self.producer.clone();
        self.running = Some(std::thread::spawn(move || {
            write(&producer, &settings, partition, batch, &metadata, &metrics)
        }));
    }

    /// Commits `batch` now (revocation, shutdown), after the running commit.
    pub fn commit_now(
        &mut self,
        settings: &Settings,
        partition: i32,
        batch: Batch,
        metadata: &ConsumerGroupMetadata,
        metrics: &Metrics,
    ) -> Result<(), Failure> {
        if let Some(outcome) = self.wait() {
            outcome?;
        }
        write(
            &self.producer,
            settings,
            partition,
            batch,
            metadata,
            metrics,
        )
    }

    /// Aborts the open transaction (after a failure), waiting for a running commit first.
    pub fn abort(&mut self) {
        let _ = self.wait();
        let _ = self.producer.abort_transaction(TXN_TIMEOUT);
    }
}

fn write(
    producer: &BaseProducer,
    settings: &Settings,
    partition: i32,
    batch: Batch,
    metadata: &ConsumerGroupMetadata,
    metrics: &Metrics,
) -> Result<(), Failure> {
    for record in &batch.dead_letters {
        send(producer, outgoing(&settings.dlq, None, record))?;
    }
    for record in &batch.summaries {
        send(
            producer,
            outgoing(&settings.output, Some(partition), record),
        )?;
        metrics.summaries.inc();
    }
    if let Some(state) = &batch.state {
        send(producer, outgoing(&settings.state, Some(0), state))?;
    }
    if let Some(next) = batch.next {
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&settings.input, partition, Offset::Offset(next))?;
        producer.send_offsets_to_transaction(&offsets, metadata, TXN_TIMEOUT)?;
    }
    rivulet_common::kafka::commit_transaction(producer, TXN_TIMEOUT)?;
    producer.begin_transaction()?;
    tracing::debug!(partition, next = ?batch.next, "Committed a transaction.");
    metrics.commits.inc();
    Ok(())
}

fn outgoing<'a>(
    topic: &'a str,
    partition: Option<i32>,
    record: &'a Outgoing,
) -> BaseRecord<'a, [u8], [u8]> {
    let mut out = BaseRecord::to(topic).headers(record.headers.clone());
    if let Some(p) = partition {
        out = out.partition(p);
    }
    if let Some(key) = &record.key {
        out = out.key(key.as_slice());
    }
    if let Some(payload) = &record.payload {
        out = out.payload(payload.as_slice());
    }
    out
}

/// Sends, waiting while the local queue is full. Any other error fails the transaction: a
/// record left out must not be committed without it.
fn send<'a>(
    producer: &BaseProducer,
    mut record: BaseRecord<'a, [u8], [u8]>,
) -> Result<(), Failure> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                producer.poll(Duration::from_millis(50));
                record = returned;
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}
