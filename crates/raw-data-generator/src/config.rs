//! Command line and environment.

use chrono::NaiveDate;
use rivulet_common::{KafkaArgs, LogArgs, RegistryArgs};

use rivulet_contracts::Version;

/// Writes reproducible widget-production records to Kafka.
#[derive(Debug, clap::Parser)]
#[command(name = "raw-data-generator", version, about, long_about = None)]
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
    /// Produce raw records to `raw-data-in`.
    Run(RunConfig),
    /// Write the yearly hourly base costs to the compacted `base-costs` topic (once, before v3).
    Costs(CostsConfig),
}

/// Which records to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every working hour of every day for every SKU, in time order, exactly once; a restart
    /// resumes after the last record written.
    Sweep,
    /// Random timestamps (any hour; nothing is made outside working hours).
    Random,
}

/// Arguments shared by `run` and `costs`.
#[derive(Clone, Debug, clap::Args)]
pub struct Common {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Seed of the production model: the same seed gives the same records.
    #[arg(long, env = "GENERATOR_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Number of SKUs in the catalogue.
    #[arg(long, env = "GENERATOR_SKUS", default_value_t = 20)]
    pub skus: usize,
}

/// `raw-data-generator run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunConfig {
    /// Kafka, registry and model.
    #[command(flatten)]
    pub common: Common,
    /// Topic to write to.
    #[arg(long, env = "GENERATOR_TOPIC", default_value = "raw-data-in")]
    pub topic: String,
    /// Record selection.
    #[arg(long, env = "GENERATOR_MODE", value_enum, default_value_t = Mode::Sweep)]
    pub mode: Mode,
    /// Schema version to write.
    #[arg(long, env = "GENERATOR_SCHEMA_VERSION", value_enum, default_value_t = Version::V1)]
    pub schema_version: Version,
    /// Records per second; 0 means as fast as possible.
    #[arg(long, env = "GENERATOR_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Stop after this many records (default: the whole sweep; random mode runs until stopped).
    #[arg(long, env = "GENERATOR_COUNT")]
    pub count: Option<u64>,
    /// First day to write (sweep only; earlier days are skipped, not regenerated differently).
    #[arg(long, env = "GENERATOR_FROM")]
    pub from: Option<NaiveDate>,
    /// Last day to write (sweep only).
    #[arg(long, env = "GENERATOR_TO")]
    pub to: Option<NaiveDate>,
    /// Create the topic with this many partitions when it does not exist (local stacks;
    /// production topics come from the platform, e.g. Strimzi `KafkaTopic`s).
    #[arg(long, env = "GENERATOR_CREATE_TOPIC", value_name = "PARTITIONS")]
    pub create_topic: Option<i32>,
}

/// `raw-data-generator costs`.
#[derive(Clone, Debug, clap::Args)]
pub struct CostsConfig {
    /// Kafka, registry and model.
    #[command(flatten)]
    pub common: Common,
    /// Compacted topic of yearly costs (created if missing).
    #[arg(long, env = "GENERATOR_COSTS_TOPIC", default_value = "base-costs")]
    pub topic: String,
    /// Overwrite years whose stored cost differs from the model's.
    #[arg(long)]
    pub force: bool,
}
