//! Reading partitions to their end: librdkafka's partition-EOF event, never a watermark
//! compared by hand (transaction markers take offsets and are never delivered, and Tansu
//! reports the base offset of its last record batch + 1 as the high watermark).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::{Error, Result};

/// Context of [`KafkaArgs::reader`] consumers: partition EOF is how a reader knows it is done,
/// so it is not logged as an error (librdkafka also reports it through the error callback).
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::KafkaError;
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!(%error, reason, "librdkafka error.");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// Reads `topic`/`partition` from offset `start`, calling `each` for every message, up to `end`
/// (exclusive) or, with `end = None`, to the end of the partition; returns the next offset.
/// `consumer` must come from [`KafkaArgs::reader`].
///
/// "The end" is librdkafka's partition-EOF event, not a high watermark compared by hand: the
/// event comes after transaction markers (which take offsets but are never delivered) and after
/// the whole last record batch (Tansu reports the base offset of its last batch + 1 as the high
/// watermark, though every record keeps its right offset). Blocking: call it from a blocking
/// thread.
pub fn read_range(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    partition: i32,
    start: i64,
    end: Option<i64>,
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<i64> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(Error::kafka("assigning a partition"))?;
    consumer
        .assign(&assignment)
        .map_err(Error::kafka("assigning a partition"))?;
    let deadline = Instant::now() + timeout;
    let mut next = start;
    loop {
        if end.is_some_and(|end| next >= end) {
            return Ok(next);
        }
        if Instant::now() > deadline {
            return Err(Error::ReadTimeout {
                topic: topic.to_owned(),
                partition,
                offset: next,
            });
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if p == partition => {
                return Ok(next);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => return Err(Error::kafka("reading a partition")(e)),
            Some(Ok(message)) => message,
        };
        // Messages fetched for a previous assignment may still arrive: skip them.
        if message.partition() != partition || message.topic() != topic {
            continue;
        }
        if end.is_some_and(|end| message.offset() >= end) {
            return Ok(next);
        }
        next = message.offset() + 1;
        each(&message);
    }
}

/// Which partitions of an assignment are at their end, from librdkafka's partition-EOF events
/// (see [`read_range`] for why the event, and not a watermark compared by hand). A message
/// from a partition puts it back to "not at its end".
#[derive(Clone, Debug, Default)]
pub struct Ends {
    at_end: HashMap<i32, bool>,
}

impl Ends {
    /// Every partition in `partitions`, none at its end yet.
    pub fn new(partitions: impl IntoIterator<Item = i32>) -> Self {
        Self {
            at_end: partitions.into_iter().map(|p| (p, false)).collect(),
        }
    }

    /// Partition `p` reached its end; returns whether every partition now has.
    pub fn reached(&mut self, p: i32) -> bool {
        if let Some(end) = self.at_end.get_mut(&p) {
            *end = true;
        }
        self.all()
    }

    /// A message from partition `p` arrived: it is not at its end.
    pub fn left(&mut self, p: i32) {
        if let Some(end) = self.at_end.get_mut(&p) {
            *end = false;
        }
    }

    /// Whether every partition is at its end.
    pub fn all(&self) -> bool {
        self.at_end.values().all(|end| *end)
    }

    /// The partitions not at their end.
    pub fn pending(&self) -> impl Iterator<Item = i32> + '_ {
        self.at_end
            .iter()
            .filter(|(_, end)| !**end)
            .map(|(p, _)| *p)
    }
}

/// The partition ids of `topic` from the broker's metadata; [`Error::NoTopic`] when the broker
/// does not have it. Blocking.
pub fn partition_ids<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(Error::kafka("reading metadata"))?;
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        .filter(|ps| !ps.is_empty())
        .ok_or_else(|| Error::NoTopic(topic.to_owned()))
}

/// What [`read_to_end`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Every partition reported its end.
    Complete,
    /// The time ran out first.
    TimedOut,
}

/// Polls `consumer`, already assigned `partitions` of `topic` (from wherever it starts), calling
/// `each` for every message until each partition has reported its end (partition-EOF events
/// must be on: [`ConsumerSettings::partition_eof`]) or `timeout` passes. An error from `each`
/// stops the read and is returned. Blocking: call it from a blocking thread.
pub fn read_to_end<C: ConsumerContext, E: From<Error>>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<ReadEnd, E> {
    let mut ends = Ends::new(partitions.iter().copied());
    let deadline = Instant::now() + timeout;
    while !ends.all() {
        if Instant::now() >= deadline {
            return Ok(ReadEnd::TimedOut);
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ends.reached(p);
            }
            Some(Err(e)) => return Err(Error::kafka("reading to the end")(e).into()),
            Some(Ok(message)) if message.topic() == topic => each(&message)?,
            Some(Ok(_)) => {}
        }
    }
    Ok(ReadEnd::Complete)
}
