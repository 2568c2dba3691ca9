//! How far a consumer group is behind on a topic, from the brokers alone (no Prometheus, no
//! exporter): per partition the log-end offset (ListOffsets, latest) and the group's committed
//! offset (OffsetFetch). Reading them does not join the group.
//!
//! On Tansu the log-end offset is the base offset of the partition's last record batch + 1, so
//! it trails the true end by the last batch's other records; real Kafka reports the true end.
//! Producers whose lag Tansu must report exactly send one record per batch.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{ConsumerSettings, KafkaArgs, partition_ids};
use crate::{Error, Result};

/// One partition's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupOffsets {
    /// The partition.
    pub partition: i32,
    /// The offset the next record will get.
    pub log_end: i64,
    /// The group's committed offset (`None`: it has committed none for the partition).
    pub committed: Option<i64>,
}

impl GroupOffsets {
    /// Records the group has not consumed (with nothing committed: all of the partition's
    /// records still in the log count, from `log_start`).
    pub fn behind(&self, log_start: i64) -> i64 {
        (self.log_end - self.committed.unwrap_or(log_start)).max(0)
    }
}

/// A client that reads the offsets of `group` on topics.
pub struct LagReader {
    consumer: BaseConsumer,
}

impl LagReader {
    /// A reader for `group` on the cluster of `args`.
    pub fn new(args: &KafkaArgs, client_id: &str, group: &str) -> Result<Self> {
        let consumer = args
            .consumer_config(&ConsumerSettings::new(client_id, Some(group.to_owned())))
            .create()
            .map_err(Error::kafka("creating lag reader"))?;
        Ok(Self { consumer })
    }

    /// Log-end and committed offsets of every partition of `topic`, in partition order: one
    /// metadata request, one ListOffsets per broker and one OffsetFetch. Blocking.
    pub fn offsets(&self, topic: &str, timeout: Duration) -> Result<Vec<GroupOffsets>> {
        let mut partitions = partition_ids(&self.consumer, topic, timeout)?;
        partitions.sort_unstable();
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            // A timestamp of -1 asks ListOffsets for the latest offset.
            list.add_partition_offset(topic, *p, Offset::End)
                .map_err(Error::kafka("listing partitions"))?;
        }
        let ends = self
            .consumer
            .offsets_for_times(list.clone(), timeout)
            .map_err(Error::kafka("reading log-end offsets"))?;
        let committed = self
            .consumer
            .committed_offsets(list, timeout)
            .map_err(Error::kafka("reading committed offsets"))?;
        partitions
            .iter()
            .map(|p| {
                let end = ends
                    .find_partition(topic, *p)
                    .ok_or_else(|| Error::NoTopic(topic.to_owned()))?;
                let log_end = match end.offset() {
                    Offset::Offset(o) => o,
                    _ => return Err(Error::NoTopic(format!("{topic} [{p}] (no log-end offset)"))),
                };
                let committed =
                    committed
                        .find_partition(topic, *p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                Ok(GroupOffsets {
                    partition: *p,
                    log_end,
                    committed,
                })
            })
            .collect()
    }

    /// The first offset still in `partition`'s log. Blocking.
    pub fn log_start(&self, topic: &str, partition: i32, timeout: Duration) -> Result<i64> {
        self.consumer
            .fetch_watermarks(topic, partition, timeout)
            .map(|(low, _)| low)
            .map_err(Error::kafka("reading the log start"))
    }
}
