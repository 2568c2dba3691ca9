//! What the loop is given at start-up, and how it fails: shared by the loop, the background
//! commits (`txn`) and the operator commands.

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::Schema;
use rdkafka::error::KafkaError;
use rivulet_common::KafkaArgs;
use rivulet_contracts::Version;

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
    /// Most distinct SKUs per input partition.
    pub max_skus: usize,
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
    /// The input no longer starts at offset 0: a rebuild would count only part of it.
    #[error(
        "{topic} no longer starts at offset 0 (records were deleted by retention): {} — a rebuild would replace every total with one of part of the input; refusing (pass --force to rebuild from what is left)",
        lost.iter().map(|(p, low)| format!("partition {p} starts at {low}, {low} records gone")).collect::<Vec<_>>().join(", ")
    )]
    PartialInput {
        /// Topic.
        topic: String,
        /// (partition, low watermark) of each partition that lost records.
        lost: Vec<(i32, i64)>,
    },
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
