//! What the loop is given at start-up, and how it fails: shared by the loop, the background
//! commits (`txn`) and the operator commands.

use std::sync::Mutex;
use std::time::Duration;

use apache_avro::Schema;
use rdkafka::error::KafkaError;
use rivulet_common::KafkaArgs;
use rivulet_common::avro::Resolver;
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
    /// State topic (`pending.rs`), partition 0, keyed `<group>|<partition>`.
    pub state: String,
    /// Most runs of pending dead letters per partition.
    pub max_pending_runs: usize,
    /// Summary schema version written, its id and schema.
    pub summary: (Version, u32, Schema),
    /// Reads summaries of any version back as v3 for restoring (one for the process: it keeps
    /// each writer schema once, asking the registry for ids it has not met).
    pub summaries: Mutex<Resolver>,
    /// How often transactions are committed.
    pub commit_interval: Duration,
    /// Most distinct SKUs per input partition.
    pub max_skus: usize,
    /// Static assignment: these input partitions, not a subscription (empty: subscribe).
    pub partitions: Vec<i32>,
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
    /// Static assignment: another backend took the partition over (its producer fenced ours).
    #[error(
        "partition {partition} of the input was taken over by another backend, which fenced this one's producer: exiting. With static assignment (--partitions / KONSUMERATOR_PARTITION) no two backends may own a partition; consumer-autoscaler's Deployments use strategy Recreate so that they never do"
    )]
    TakenOver {
        /// The partition.
        partition: i32,
    },
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
    /// A summary of an assigned partition could not be read back: its key's total would restart
    /// from 0 and overwrite a good one, so the partition is not opened (retried, counted in
    /// `rivulet_backend_restore_failures_total`) until the record is readable or removed.
    #[error(
        "summary at {topic} partition {partition} offset {offset} cannot be read ({reason}): the partition stays closed rather than restart its totals from 0; register its schema, or remove the record with a tombstone of its key"
    )]
    UnreadableSummary {
        /// Summary topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// The partition's state record could not be read back (the partition stays closed).
    #[error(
        "state at {topic} offset {offset} for partition {partition} cannot be read ({reason}): the partition stays closed rather than forget which dead letters a replay may count"
    )]
    UnreadableState {
        /// State topic.
        topic: String,
        /// Input partition.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// The registry could not be asked about a summary's writer schema (retried).
    #[error("schema registry unavailable while restoring: {0}")]
    RegistryUnavailable(String),
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
