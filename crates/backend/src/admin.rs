//! Operator commands: `dlq-replay` and `reprocess`. Neither is reachable over HTTP.

use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, DefaultConsumerContext,
};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ConsumerSettings, ProducerSettings, ReaderContext, read_to_end};

use rivulet_contracts::topics::headers as names;

use crate::settings::Failure;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The value of header `name` of `message`.
fn header<'a, M: Message>(message: &'a M, name: &str) -> Option<&'a [u8]> {
    message.headers()?.iter().find(|h| h.key == name)?.value
}

fn partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Vec<i32>, Failure> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    Ok(metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default())
}

/// Re-sends every dead letter not replayed yet to the topic it came from, with its original key
/// and bytes, exactly once: the re-sends and the replay group's DLQ offsets commit in one
/// transaction. Returns how many were re-sent. Run it after fixing the cause (for example
/// registering a missing schema); a letter that still fails comes back to the DLQ.
pub fn dlq_replay(kafka: &KafkaArgs, dlq: &str, group: &str) -> Result<u64, Failure> {
    let mut settings = ConsumerSettings::new("backend-dlq-replay", Some(group.to_owned()));
    settings.read_committed = true;
    settings.partition_eof = true;
    let consumer = kafka.base_consumer(&settings, ReaderContext)?;
    let producer_settings =
        ProducerSettings::transactional("backend-dlq-replay", format!("{group}-replay"));
    let producer = kafka.base_producer(&producer_settings)?;
    producer.init_transactions(TIMEOUT)?;

    let parts = partitions(&consumer, dlq)?;
    let mut assignment = TopicPartitionList::new();
    let committed = {
        let mut list = TopicPartitionList::new();
        for p in &parts {
            list.add_partition(dlq, *p);
        }
        consumer.committed_offsets(list, TIMEOUT)?
    };
    for p in &parts {
        let offset = committed
            .find_partition(dlq, *p)
            .map(|e| e.offset())
            .filter(|o| matches!(o, Offset::Offset(_)));
        assignment.add_partition_offset(dlq, *p, offset.unwrap_or(Offset::Beginning))?;
    }
    consumer.assign(&assignment)?;
    producer.begin_transaction()?;
    let mut next = TopicPartitionList::new();
    let mut replayed = 0u64;
    read_to_end(&consumer, dlq, &parts, TIMEOUT * 4, |message| {
        let source = header(message, names::SOURCE_TOPIC)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);
        if let Some(source) = source {
            // The copy carries its record's identity (`pending.rs`), so the backend counts it
            // only while that record is dead-lettered and not yet counted.
            let mut headers = OwnedHeaders::new().insert(Header {
                key: rivulet_contracts::topics::headers::REPLAYED_FROM,
                value: Some(dlq),
            });
            for (from, to) in [
                (names::SOURCE_PARTITION, names::ORIGIN_PARTITION),
                (names::SOURCE_OFFSET, names::ORIGIN_OFFSET),
            ] {
                if let Some(value) = header(message, from) {
                    headers = headers.insert(Header {
                        key: to,
                        value: Some(value),
                    });
                }
            }
            let mut record = BaseRecord::<[u8], [u8]>::to(&source).headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            producer.send(record).map_err(|(e, _)| e)?;
            replayed += 1;
        } else {
            tracing::warn!(
                partition = message.partition(),
                offset = message.offset(),
                "A dead letter without its source topic was skipped."
            );
        }
        next.add_partition_offset(
            dlq,
            message.partition(),
            Offset::Offset(message.offset() + 1),
        )?;
        producer.poll(Duration::ZERO);
        Ok::<(), Failure>(())
    })?;
    if next.count() > 0 {
        let metadata = consumer.group_metadata().ok_or(Failure::NoGroup)?;
        producer.send_offsets_to_transaction(&next, &metadata, TIMEOUT)?;
    }
    rivulet_common::kafka::commit_transaction(&producer, TIMEOUT)?;
    tracing::info!(replayed, "Dead letters replayed.");
    Ok(replayed)
}

/// Rewinds the backend group to the start of the input topic, so the next backend start rebuilds
/// every total from the raw records (its restore ignores summaries beyond the committed offset).
/// Stop the backends first: this joins the group, waits to be given every partition (which only
/// happens while no backend is a member) and commits the low watermarks as a member.
///
/// Refused when a partition no longer starts at offset 0 (retention deleted records): a
/// rebuild would replace correct totals with totals of part of the input. `force` goes on
/// anyway and logs what is lost.
pub fn reprocess(
    kafka: &KafkaArgs,
    input: &str,
    group: &str,
    force: bool,
) -> Result<usize, Failure> {
    let consumer = kafka.base_consumer(
        &ConsumerSettings::new("backend-reprocess", Some(group.to_owned())),
        DefaultConsumerContext,
    )?;
    reprocess_with(&consumer, input, group, force, |p| {
        Ok(consumer.fetch_watermarks(input, p, TIMEOUT)?.0)
    })
}

/// [`reprocess`] with the low watermark of each partition from `low` (tests inject one).
pub fn reprocess_with<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    input: &str,
    group: &str,
    force: bool,
    low: impl Fn(i32) -> Result<i64, Failure>,
) -> Result<usize, Failure> {
    let all = partitions(consumer, input)?;
    let mut lows = Vec::with_capacity(all.len());
    for &p in &all {
        lows.push((p, low(p)?));
    }
    let starts = rewind_to(&lows, force).map_err(|lost| Failure::PartialInput {
        topic: input.to_owned(),
        lost,
    })?;
    if starts.iter().any(|(_, offset)| *offset > 0) {
        tracing::warn!(
            ?starts,
            "Rebuilding from partial input (--force): the records before these offsets are gone and will not be counted."
        );
    }
    consumer.subscribe(&[input])?;
    let deadline = std::time::Instant::now() + TIMEOUT * 2;
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        let assigned = consumer.assignment()?.count();
        if assigned == all.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure::GroupBusy {
                group: group.to_owned(),
                assigned,
                partitions: all.len(),
            });
        }
    }
    let mut rewind = TopicPartitionList::new();
    for (p, offset) in starts {
        rewind.add_partition_offset(input, p, Offset::Offset(offset))?;
    }
    consumer.commit(&rewind, CommitMode::Sync)?;
    consumer.unsubscribe();
    tracing::info!(
        partitions = rewind.count(),
        group,
        "Rewound the backend group; restart the backends to rebuild."
    );
    Ok(rewind.count())
}

/// (partition, offset) pairs.
pub type Offsets = Vec<(i32, i64)>;

/// Where each partition is rewound to: its low watermark. A low watermark above 0 means records
/// are gone: refused (the partitions and how many records each lost) unless `force`.
pub fn rewind_to(lows: &[(i32, i64)], force: bool) -> Result<Offsets, Offsets> {
    let lost: Vec<(i32, i64)> = lows.iter().copied().filter(|(_, low)| *low > 0).collect();
    if lost.is_empty() || force {
        Ok(lows.to_vec())
    } else {
        Err(lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewind_from_partial_input_is_refused_unless_forced() {
        let whole = [(0, 0), (1, 0), (2, 0)];
        assert_eq!(rewind_to(&whole, false), Ok(whole.to_vec()));
        let partial = [(0, 0), (1, 1200), (2, 7)];
        assert_eq!(rewind_to(&partial, false), Err(vec![(1, 1200), (2, 7)]));
        assert_eq!(rewind_to(&partial, true), Ok(partial.to_vec()));
        assert_eq!(rewind_to(&[], false), Ok(vec![]));
    }
}
