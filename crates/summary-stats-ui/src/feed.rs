//! The feeds: one consumer per topic (`summary-stats`, `base-costs`), each on a blocking
//! thread, reading every partition from the beginning (`read_committed`, no consumer group: each
//! replica keeps everything) and applying the latest value per key to the shared index.
//!
//! A feed is caught up once it has met the end of every partition (librdkafka's partition-EOF
//! event, which also covers transaction markers and Tansu's high watermark). Lag is measured
//! every few seconds as high watermark minus position, 0 for a partition at its end. A message
//! that does not decode is counted and skipped (the UI owns no data: the backend dead-letters
//! bad input); while the registry is unreachable the feed waits and retries the same message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rivulet_common::KafkaArgs;
use rivulet_common::avro::{Reject, Resolver};
use rivulet_common::kafka::{ConsumerSettings, Ends, ReaderContext};
use rivulet_contracts::base_cost;
use rivulet_contracts::summary::{self, MonthKey};
use tokio_util::sync::CancellationToken;

use crate::changes::At;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::state::{FeedKind, Target};

/// How often lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// A feed failed for good.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The consumer could not be built or assigned.
    #[error(transparent)]
    Kafka(#[from] rivulet_common::Error),
}

/// One topic to follow.
pub struct Feed {
    /// Which one.
    pub kind: FeedKind,
    /// Topic name.
    pub topic: String,
    /// Decodes its values.
    pub resolver: Resolver,
}

/// Follows `feed` until `token` is cancelled. Blocking.
pub fn run(
    kafka: &KafkaArgs,
    mut feed: Feed,
    target: Arc<Target>,
    metrics: Metrics,
    token: CancellationToken,
) -> Result<(), Failure> {
    let mut settings =
        ConsumerSettings::new(format!("summary-stats-ui-{}", feed.kind.label()), None);
    settings.partition_eof = true;
    let consumer = kafka.base_consumer(&settings, ReaderContext)?;

    let Some(partitions) = discover(&consumer, &feed.topic, &token) else {
        return Ok(());
    };
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(&feed.topic, p, Offset::Beginning)
            .map_err(rivulet_common::Error::kafka("assigning partitions"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(rivulet_common::Error::kafka("assigning partitions"))?;
    tracing::info!(
        topic = feed.topic,
        partitions = partitions.len(),
        "Following a topic."
    );

    let mut ends = Ends::new(partitions.iter().copied());
    let mut caught_up = false;
    let mut next_lag = Instant::now();
    let labels = vec![("feed".to_owned(), feed.kind.label().to_owned())];
    // The feed's own counter, looked up once (not a label set allocated per record).
    let records = metrics.records.get_or_create(&labels).clone();
    while !token.is_cancelled() {
        if Instant::now() >= next_lag {
            let lag = measure_lag(&consumer, &feed.topic, &ends);
            target.with(|s| s.set_lag(feed.kind, lag));
            metrics.lag.get_or_create(&labels).set(lag);
            next_lag = Instant::now() + LAG_EVERY;
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                let every_partition = ends.reached(p);
                if every_partition && !caught_up {
                    caught_up = true;
                    let all = target.with(|s| {
                        s.set_lag(feed.kind, 0);
                        s.set_caught_up(feed.kind)
                    });
                    if all {
                        tracing::info!("Caught up with every topic: ready.");
                    }
                }
            }
            Some(Err(error)) => {
                tracing::warn!(topic = feed.topic, %error, "Consumer error; librdkafka retries.");
            }
            Some(Ok(message)) => {
                ends.left(message.partition());
                apply(&mut feed, &message, &target, &metrics, &records, &token);
            }
        }
    }
    Ok(())
}

/// The topic's partitions, waiting while the topic or the broker is missing; `None` when
/// cancelled first.
fn discover(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    token: &CancellationToken,
) -> Option<Vec<i32>> {
    let mut warned = false;
    while !token.is_cancelled() {
        let found = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                let t = m.topics().iter().find(|t| t.name() == topic)?;
                let ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                (t.error().is_none() && !ps.is_empty()).then_some(ps)
            });
        if let Some(partitions) = found {
            return Some(partitions);
        }
        if !warned {
            tracing::warn!(
                topic,
                "Topic not found (or broker unreachable); waiting for it."
            );
            warned = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

/// Σ over partitions of high watermark − position (0 at the end, never negative).
fn measure_lag(consumer: &BaseConsumer<ReaderContext>, topic: &str, ends: &Ends) -> i64 {
    let positions = consumer.position().unwrap_or_default();
    ends.pending()
        .map(|p| {
            let high = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(2))
                .map(|(_, high)| high)
                .unwrap_or(0);
            let position = match positions.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            (high - position).max(0)
        })
        .sum()
}

/// Applies one message, retrying while the registry is unreachable.
fn apply(
    feed: &mut Feed,
    message: &BorrowedMessage<'_>,
    target: &Target,
    metrics: &Metrics,
    records: &Counter,
    token: &CancellationToken,
) {
    let key = message.key().map(String::from_utf8_lossy);
    let at = At {
        partition: message.partition(),
        offset: message.offset(),
    };
    let Some(payload) = message.payload() else {
        // A tombstone: the key is gone.
        let removed = key.as_deref().and_then(|k| tombstone(feed.kind, k, at));
        match removed {
            Some(change) => target.with(|s| s.update(change)),
            None => reject(
                feed,
                message,
                metrics,
                "bad_key",
                "tombstone with an unusable key",
            ),
        }
        return;
    };
    let value = loop {
        match feed.resolver.decode(Some(payload)) {
            Ok(value) => break value,
            Err(Reject::Unavailable(reason)) => {
                metrics.registry_errors.inc();
                tracing::warn!(%reason, "Schema registry unavailable; retrying in 1 s.");
                std::thread::sleep(Duration::from_secs(1));
                if token.is_cancelled() {
                    return;
                }
            }
            Err(reject_reason) => {
                let reason = reject_reason.to_string();
                return reject(feed, message, metrics, reject_reason.label(), &reason);
            }
        }
    };
    let change = match feed.kind {
        FeedKind::Summary => summary::from_value(&value).map(|(key, totals)| {
            Box::new(move |i: &mut Index| i.upsert_at(key, totals, at)) as Change
        }),
        FeedKind::BaseCosts => base_cost::from_value(&value).map(|(year, cost)| {
            Box::new(move |i: &mut Index| i.set_base_cost_at(year, cost, at)) as Change
        }),
    };
    match change {
        Some(change) => {
            target.with(|s| s.update(change));
            records.inc();
        }
        None => reject(
            feed,
            message,
            metrics,
            "invalid_value",
            "value out of range",
        ),
    }
}

type Change = Box<dyn FnOnce(&mut Index)>;

fn tombstone(kind: FeedKind, key: &str, at: At) -> Option<Change> {
    match kind {
        FeedKind::Summary => {
            let key = MonthKey::parse(key)?;
            Some(Box::new(move |i: &mut Index| i.remove_at(&key, at)))
        }
        FeedKind::BaseCosts => {
            let year = base_cost::parse_key(key)?;
            Some(Box::new(move |i: &mut Index| {
                i.remove_base_cost_at(year, at)
            }))
        }
    }
}

fn reject(feed: &Feed, message: &BorrowedMessage<'_>, metrics: &Metrics, label: &str, why: &str) {
    metrics
        .rejected
        .get_or_create(&vec![
            ("feed".to_owned(), feed.kind.label().to_owned()),
            ("reason".to_owned(), label.to_owned()),
        ])
        .inc();
    tracing::warn!(
        topic = feed.topic,
        partition = message.partition(),
        offset = message.offset(),
        reason = why,
        "Skipped a message that is not a valid record."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_need_a_usable_key() {
        let at = At {
            partition: 0,
            offset: 0,
        };
        assert!(tombstone(FeedKind::Summary, "2020-03|SKU_1", at).is_some());
        assert!(tombstone(FeedKind::Summary, "garbage", at).is_none());
        assert!(tombstone(FeedKind::BaseCosts, "2020", at).is_some());
        assert!(tombstone(FeedKind::BaseCosts, "x", at).is_none());
    }
}
