//! The common crate's error type.

/// Errors raised while building clients or talking to Kafka and the schema registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// librdkafka refused a configuration or an operation.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What we were doing.
        context: &'static str,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The schema registry client could not be built or a call failed.
    #[error("schema registry: {0}")]
    Registry(#[from] schema_registry_converter::error::SRCError),
    /// An Avro value did not fit its schema or bytes did not decode.
    #[error("avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
    /// A schema could not be serialised to JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// No schema registry URL was given.
    #[error("no schema registry URL given (--schema-registry-url)")]
    NoRegistryUrl,
    /// A REST call to the registry could not be made at any of its URLs.
    #[error("schema registry unreachable: {0}")]
    RegistryHttp(String),
    /// Bytes were not a Confluent-framed message (magic byte 0 + 4-byte schema id).
    #[error("not a Confluent-framed message: {0}")]
    Framing(&'static str),
    /// Reading a partition back took too long.
    #[error("timed out reading {topic} partition {partition} at offset {offset}")]
    ReadTimeout {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Next offset that was expected.
        offset: i64,
    },
    /// Creating a topic failed.
    #[error("could not create topic {topic}: {reason}")]
    CreateTopic {
        /// The topic name.
        topic: String,
        /// Why the broker refused.
        reason: String,
    },
    /// Reading a topic's configuration failed.
    #[error("could not read the configuration of topic {topic}: {reason}")]
    DescribeTopic {
        /// The topic name.
        topic: String,
        /// Why.
        reason: String,
    },
    /// Installing the tracing subscriber failed (it was already installed).
    #[error("tracing: {0}")]
    Tracing(String),
    /// Binding or serving an HTTP listener failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Wraps a Kafka error with what we were doing: `.map_err(Error::kafka("reading offsets"))`.
    pub fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        move |source| Error::Kafka { context, source }
    }
}

/// Result alias for the common crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
