//! Publishing to Kafka: one message per experiment on `recommendations-topic` (or
//! `error-topic` when it failed) and one per job on `summary-topic`, keyed `job_id|experiment`
//! (the summary: `job_id`), acknowledged by all in-sync replicas before the experiment is
//! marked `PUBLISHED`.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::ProducerSettings;
use serde_json::Value;

/// Topic names.
#[derive(Clone, Debug, clap::Args)]
pub struct Topics {
    /// Recommendations of processed experiments.
    #[arg(
        long,
        env = "RECOMMENDATIONS_TOPIC",
        default_value = "recommendations-topic"
    )]
    pub recommendations_topic: String,
    /// Failed experiments.
    #[arg(long, env = "ERROR_TOPIC", default_value = "error-topic")]
    pub error_topic: String,
    /// One summary per finished job.
    #[arg(long, env = "SUMMARY_TOPIC", default_value = "summary-topic")]
    pub summary_topic: String,
}

/// Which topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `recommendations-topic`.
    Recommendations,
    /// `error-topic`.
    Error,
    /// `summary-topic`.
    Summary,
}

/// A publishing failure.
#[derive(Debug, thiserror::Error)]
#[error("kafka: {0}")]
pub struct PublishError(String);

/// The producer, alive for the whole process (the reference shut its executor down after the
/// first job).
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topics: Topics,
}

impl Publisher {
    /// An idempotent producer with `acks=all`.
    pub fn new(kafka: &KafkaArgs, topics: Topics) -> Result<Publisher, rivulet_common::Error> {
        let mut config = kafka.producer_config(&ProducerSettings::new("recommendation-producer"));
        config.set("acks", "all");
        let producer = config
            .create()
            .map_err(rivulet_common::Error::kafka("creating the producer"))?;
        Ok(Publisher { producer, topics })
    }

    fn name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Recommendations => &self.topics.recommendations_topic,
            Topic::Error => &self.topics.error_topic,
            Topic::Summary => &self.topics.summary_topic,
        }
    }

    /// Sends `message` as JSON and waits for the acknowledgement.
    pub async fn send(&self, topic: Topic, key: &str, message: &Value) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(message).map_err(|e| PublishError(e.to_string()))?;
        let record = FutureRecord::to(self.name(topic))
            .key(key)
            .payload(&payload);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| PublishError(e.to_string()))
    }
}
