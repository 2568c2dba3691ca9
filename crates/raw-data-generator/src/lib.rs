//! Reproducible widget-production records for the Rivulet pipeline.
//!
//! Emits Confluent-framed Avro records (schema v1, v2 or v3) keyed by SKU to `raw-data-in`, and
//! the yearly hourly base costs to the compacted `base-costs` topic. Everything derives from one
//! seed (see [`model`]), so tests compute the exact ground truth the pipeline must reach.
//!
//! # Layout
//! - [`model`]: the pure production model (catalogue, costs, sweep and random records).
//! - [`resume`]: where an interrupted sweep stopped, per partition.
//! - [`run`] and [`costs`]: the two commands.

pub mod config;
pub mod costs;
pub mod model;
pub mod resume;
pub mod run;

pub use config::{Cli, Command};

/// Environment variables renamed to the `<BINARY>_<FLAG>` scheme: the old names still work,
/// with a warning (`rivulet_common::env`).
pub const RENAMED_ENV: &[rivulet_common::env::Renamed] =
    &[("COSTS_TOPIC", "GENERATOR_COSTS_TOPIC")];

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a client or a registry call failed.
    #[error(transparent)]
    Common(#[from] rivulet_common::Error),
    /// A registry call failed.
    #[error("schema registry: {0}")]
    Registry(#[from] schema_registry_converter::error::SRCError),
    /// An embedded schema does not parse (a build defect).
    #[error(transparent)]
    Schema(#[from] rivulet_contracts::SchemaError),
    /// The raw schema this run writes could not be looked up.
    #[error("raw schema {version:?}: {source}")]
    NotRegistered {
        /// Version.
        version: rivulet_contracts::Version,
        /// Not registered, or the registry unavailable.
        #[source]
        source: rivulet_common::avro::LookupError,
    },
    /// The base-cost schema could not be looked up.
    #[error("base-cost schema: {0}")]
    CostsNotRegistered(#[source] rivulet_common::avro::LookupError),
    /// The topic does not exist.
    #[error("topic {0} does not exist (scripts/up and the Kubernetes KafkaTopics create it)")]
    NoTopic(String),
    /// Stored base costs differ from the model's.
    #[error("base-costs already holds other costs for {0}; use --force to overwrite")]
    CostConflict(String),
    /// A record of the topic could not be read back while looking for where a sweep stopped.
    #[error(
        "cannot tell where the sweep stopped: a record could not be decoded ({0}); retry when the schema registry answers"
    )]
    ResumeUnreadable(String),
    /// A task was cancelled or panicked.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub(crate) fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        move |source| Error::Common(rivulet_common::Error::kafka(context)(source))
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
