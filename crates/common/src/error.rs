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
    /// A topic the broker does not have (or has without partitions).
    #[error("topic {0} does not exist")]
    NoTopic(String),
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
    /// A configuration error naming a credential's key has its value replaced (librdkafka's
    /// message quotes the value it refused).
    pub fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        move |source| Error::Kafka {
            context,
            source: redact(source),
        }
    }
}

/// `error` without the value of a credential it quotes (`KafkaError::ClientConfig` carries the
/// key and the value librdkafka refused).
pub fn redact(error: rdkafka::error::KafkaError) -> rdkafka::error::KafkaError {
    match error {
        rdkafka::error::KafkaError::ClientConfig(code, description, key, _)
            if crate::secret::is_sensitive_key(&key) =>
        {
            rdkafka::error::KafkaError::ClientConfig(code, description, key, "******".into())
        }
        other => other,
    }
}

/// Result alias for the common crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaConfRes;

    #[test]
    fn refused_credentials_are_not_quoted() {
        let refused = |key: &str| {
            KafkaError::ClientConfig(
                RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "not supported".into(),
                key.into(),
                "hunter2".into(),
            )
        };
        let error = Error::kafka("creating consumer")(refused("sasl.oauthbearer.client.secret"));
        let shown = format!(
            "{error} {error:?} {}",
            std::error::Error::source(&error).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.oauthbearer.client.secret"), "{shown}");
        let error = Error::kafka("creating consumer")(refused("linger.ms"));
        assert!(
            error.to_string().contains("hunter2"),
            "other values are shown"
        );
    }
}
