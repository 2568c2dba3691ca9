//! Command line and environment.

use std::net::SocketAddr;

use rivulet_common::{KafkaArgs, LogArgs, RegistryArgs};

use rivulet_contracts::Version;

/// Aggregates raw widget records into exact monthly totals per SKU, exactly once.
#[derive(Debug, clap::Parser)]
#[command(name = "backend", version, about, long_about = None)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Consume raw-data-in and keep summary-stats current.
    Run(Box<RunConfig>),
    /// Re-send the dead letters not replayed yet to their source topic (exactly once).
    DlqReplay(ReplayConfig),
    /// Rewind the backend group to the start of the input: the next start rebuilds every total.
    Reprocess(ReprocessConfig),
}

/// `backend dlq-replay`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReplayConfig {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Dead-letter topic.
    #[arg(long, env = "BACKEND_DLQ_TOPIC", default_value = "raw-data-in.dlq")]
    pub dlq_topic: String,
    /// Consumer group remembering what was replayed.
    #[arg(
        long,
        env = "BACKEND_REPLAY_GROUP",
        default_value = "backend-dlq-replay"
    )]
    pub group: String,
}

/// `backend reprocess`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReprocessConfig {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The backends' consumer group.
    #[arg(long, env = "BACKEND_GROUP", default_value = "backend")]
    pub group: String,
    /// Raw input topic.
    #[arg(long, env = "BACKEND_INPUT_TOPIC", default_value = "raw-data-in")]
    pub input_topic: String,
    /// Rebuild even though the input no longer starts at offset 0 (retention deleted records):
    /// every total then covers only the records still there, and the loss is logged.
    #[arg(long)]
    pub force: bool,
}

/// `backend run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunConfig {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Consumer group; also the prefix of the transactional ids (`<group>-<partition>`).
    #[arg(long, env = "BACKEND_GROUP", default_value = "backend")]
    pub group: String,
    /// Raw input topic.
    #[arg(long, env = "BACKEND_INPUT_TOPIC", default_value = "raw-data-in")]
    pub input_topic: String,
    /// Summary output topic (as many partitions as the input).
    #[arg(long, env = "BACKEND_OUTPUT_TOPIC", default_value = "summary-stats")]
    pub output_topic: String,
    /// Dead-letter topic.
    #[arg(long, env = "BACKEND_DLQ_TOPIC", default_value = "raw-data-in.dlq")]
    pub dlq_topic: String,
    /// The backend's state topic (one partition, compacted): which dead-lettered records a
    /// replay may still count, committed with the summaries (`pending.rs`).
    #[arg(long, env = "BACKEND_STATE_TOPIC", default_value = rivulet_contracts::topics::BACKEND_STATE)]
    pub state_topic: String,
    /// Most separate runs of dead-lettered offsets a partition tracks for replay (a flood of bad
    /// records is one run); beyond it the partition waits, counted in
    /// `rivulet_backend_pending_full_total`, rather than forget one and count it twice.
    #[arg(long, env = "BACKEND_MAX_PENDING_RUNS", default_value_t = 50_000)]
    pub max_pending_runs: usize,
    /// Summary schema version to write.
    #[arg(long, env = "BACKEND_SCHEMA_VERSION", value_enum, default_value_t = Version::V3)]
    pub schema_version: Version,
    /// How often the transactions are committed (milliseconds).
    #[arg(long, env = "BACKEND_COMMIT_INTERVAL_MS", default_value_t = 1000)]
    pub commit_interval_ms: u64,
    /// Most distinct SKUs one input partition may hold (their totals live in memory); the
    /// records of any further SKU go to the DLQ with reason `too_many_skus`. Far above any real
    /// catalogue: a bound on what made-up keys can cost, not a business rule.
    #[arg(long, env = "BACKEND_MAX_SKUS", default_value_t = 100_000)]
    pub max_skus: usize,
    /// Create the input and output topics with this many partitions (and the DLQ with one) when
    /// they do not exist: for local stacks; in Kubernetes the KafkaTopic resources own them.
    #[arg(long, env = "BACKEND_CREATE_TOPICS")]
    pub create_topics: Option<i32>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "BACKEND_LISTEN", default_value = "0.0.0.0:8082")]
    pub listen: SocketAddr,
    /// Static assignment: consume exactly these input partitions (comma-separated) instead of
    /// joining the group by subscription, as consumer-autoscaler runs one Deployment per
    /// partition group (it sets `KONSUMERATOR_PARTITION`). Offsets still go to the group id in
    /// each partition's transaction; two backends must not own the same partition: the later one
    /// fences the earlier, which then exits 1.
    #[arg(long, env = "KONSUMERATOR_PARTITION", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// This deployment's colour in a blue/green rollout (reported by `/api/v1/output`, which
    /// the UI follows; docs/rollouts.md).
    #[arg(long, env = "BACKEND_COLOUR", default_value = "blue")]
    pub colour: String,
}
