//! The `_schemas` topic: appending records and applying them, in log order, to the state.
//!
//! One partition, so the log is totally ordered. Every replica runs a reader task that applies
//! each record and publishes the next offset to apply; a writer appends a record, learns its
//! offset from the delivery report and waits until its own reader has applied it.

use std::sync::Arc;

use crossbeam_utils::sync::ShardedLock;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ConsumerSettings, ProducerSettings, ensure_topic, topic_config};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::record::Record;
use crate::state::{Applied, State};
use crate::{Error, Result};

/// The only configuration under which the log keeps every record: delete policy with
/// infinite retention, not compaction (a claim that lost shares its key with the claim that
/// won, and compaction could keep the loser), and no time or size limit (a schema registered
/// once must be readable for as long as a message carries its id).
pub const SAFE_CONFIG: [(&str, &str); 3] = [
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// The first setting of an existing log's configuration under which the registry could lose
/// or misread state: the key, and what the broker reported (`None`: not reported, which is
/// unsafe because a default may apply, e.g. Kafka's 7-day `retention.ms`). Only called for a
/// topic this registry did not just create: Tansu reports no defaults, so a topic it created
/// with [`SAFE_CONFIG`] reports exactly those keys.
pub fn unsafe_config(
    found: &std::collections::HashMap<String, Option<String>>,
) -> Option<(&'static str, Option<String>)> {
    SAFE_CONFIG.iter().find_map(|(key, want)| {
        let value = found.get(*key).cloned().flatten();
        let safe = match (*key, value.as_deref()) {
            // Several policies may be listed ("compact,delete"): compaction anywhere is unsafe.
            ("cleanup.policy", Some(v)) => v.split(',').map(str::trim).all(|p| p == "delete"),
            (_, Some(v)) => v.trim() == *want,
            (_, None) => false,
        };
        (!safe).then_some((*key, value))
    })
}

/// Handle for appending to and waiting on the log.
pub struct Journal {
    producer: FutureProducer,
    topic: String,
    applied: watch::Receiver<i64>,
    timeout: Duration,
}

impl Journal {
    /// Creates the topic if needed, starts the reader task and returns the handle and the task.
    pub async fn open(
        kafka: &KafkaArgs,
        topic: &str,
        timeout: Duration,
        fetch_wait: Duration,
        state: Arc<ShardedLock<State>>,
        metrics: Metrics,
        token: CancellationToken,
    ) -> Result<(Journal, JoinHandle<()>)> {
        let admin = kafka.admin("schema-registry-admin")?;
        let created = ensure_topic(&admin, topic, 1, &SAFE_CONFIG).await?;
        if !created {
            let found = topic_config(&admin, topic).await?;
            if let Some((key, value)) = unsafe_config(&found) {
                return Err(Error::TopicConfig {
                    topic: topic.to_owned(),
                    key,
                    found: value,
                });
            }
        }
        let mut settings = ProducerSettings::new("schema-registry");
        settings.linger = Duration::ZERO;
        let producer = kafka.producer(&settings)?;
        let partitions = partition_count(&producer, topic, timeout).await?;
        if partitions != 1 {
            return Err(Error::TopicLayout {
                topic: topic.to_owned(),
                partitions,
            });
        }
        let mut reader = ConsumerSettings::new("schema-registry-reader", None);
        // A writer waits for its own record to come back: keep that wait short.
        reader.fetch_wait_max = Some(fetch_wait);
        let consumer = kafka.consumer(&reader)?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(rivulet_common::Error::kafka("assigning _schemas"))?;
        consumer
            .assign(&assignment)
            .map_err(rivulet_common::Error::kafka("assigning _schemas"))?;
        let (tx, rx) = watch::channel(0i64);
        let task = tokio::spawn(read_log(consumer, state, metrics, tx, token));
        Ok((
            Journal {
                producer,
                topic: topic.to_owned(),
                applied: rx,
                timeout,
            },
            task,
        ))
    }

    /// Appends `record` and returns its offset.
    pub async fn append(&self, record: &Record) -> Result<i64> {
        let (key, value) = record.encode();
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .partition(0)
            .key(&key);
        if let Some(value) = &value {
            message = message.payload(value);
        }
        match self.producer.send(message, self.timeout).await {
            Ok(delivery) => Ok(delivery.offset),
            Err((source, _)) => {
                Err(rivulet_common::Error::kafka("appending to _schemas")(source).into())
            }
        }
    }

    /// Waits until the record at `offset` has been applied.
    pub async fn wait_applied(&self, offset: i64) -> Result<()> {
        self.wait_until(offset + 1).await
    }

    async fn wait_until(&self, next: i64) -> Result<()> {
        let mut rx = self.applied.clone();
        match tokio::time::timeout(self.timeout, rx.wait_for(|&n| n >= next)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::ReaderStopped),
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    /// Waits until everything written to the log so far (by any replica) has been applied.
    pub async fn sync(&self) -> Result<()> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let timeout = self.timeout;
        let (_, high) = tokio::task::spawn_blocking(move || {
            producer.client().fetch_watermarks(&topic, 0, timeout)
        })
        .await
        .map_err(|_| Error::ReaderStopped)?
        .map_err(rivulet_common::Error::kafka(
            "reading the _schemas high watermark",
        ))?;
        self.wait_until(high).await
    }

    /// Next offset to apply (how far this replica has read).
    pub fn position(&self) -> i64 {
        *self.applied.borrow()
    }
}

async fn partition_count(
    producer: &FutureProducer,
    topic: &str,
    timeout: Duration,
) -> Result<usize> {
    let producer = producer.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let metadata = producer
            .client()
            .fetch_metadata(Some(&topic), timeout)
            .map_err(rivulet_common::Error::kafka("reading _schemas metadata"))?;
        Ok(metadata
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0))
    })
    .await
    .map_err(|_| Error::ReaderStopped)?
}

/// The reader task: applies every record of the log, in order, and publishes the next offset
/// to apply (what a writer waits on).
async fn read_log(
    consumer: StreamConsumer,
    state: Arc<ShardedLock<State>>,
    metrics: Metrics,
    applied: watch::Sender<i64>,
    token: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = token.cancelled() => break,
            m = consumer.recv() => m,
        };
        match message {
            Ok(message) => {
                let offset = message.offset();
                apply(&state, &metrics, offset, message.key(), message.payload());
                metrics.log_offset.set(offset + 1);
                applied.send_replace(offset + 1);
            }
            Err(error) => {
                tracing::warn!(%error, "Error reading _schemas; retrying.");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Applies one log record at `offset` to the state (a conflicting claim is rejected by the
/// state's rules, an undecodable record skipped), counting what happened.
fn apply(
    state: &ShardedLock<State>,
    metrics: &Metrics,
    offset: i64,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
) {
    match Record::decode(key.unwrap_or_default(), payload) {
        Ok(record) => {
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            match state.apply(record) {
                Applied::Accepted => {
                    metrics.records_applied.inc();
                }
                Applied::Rejected(reason) => {
                    metrics.records_rejected.inc();
                    tracing::debug!(offset, reason, "Rejected a conflicting claim.");
                }
            }
            metrics.schemas.set(state.schema_count() as i64);
        }
        Err(error) => {
            metrics.records_malformed.inc();
            tracing::warn!(offset, %error, "Skipped an undecodable _schemas record.");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> HashMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect()
    }

    #[test]
    fn only_a_whole_log_is_safe() {
        let safe = config(&SAFE_CONFIG);
        assert_eq!(unsafe_config(&safe), None);
        let compacted = config(&[
            ("cleanup.policy", "compact"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
        ]);
        assert_eq!(
            unsafe_config(&compacted),
            Some(("cleanup.policy", Some("compact".into())))
        );
        let both = config(&[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
        ]);
        assert_eq!(unsafe_config(&both).map(|(k, _)| k), Some("cleanup.policy"));
        // Kafka's default retention is a week: that loses schemas.
        let week = config(&[
            ("cleanup.policy", "delete"),
            ("retention.ms", "604800000"),
            ("retention.bytes", "-1"),
        ]);
        assert_eq!(
            unsafe_config(&week),
            Some(("retention.ms", Some("604800000".into())))
        );
        // A key the broker does not report may have any default.
        let silent = config(&[("cleanup.policy", "delete"), ("retention.ms", "-1")]);
        assert_eq!(unsafe_config(&silent), Some(("retention.bytes", None)));
    }
}
