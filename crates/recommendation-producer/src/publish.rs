//! Publishing to Kafka: one message per experiment on `recommendations-topic` (or
//! `error-topic` when it failed) and one per job on `summary-topic`, keyed `job_id|experiment`
//! (the summary: `job_id`), acknowledged by all in-sync replicas before the experiment is
//! marked `PUBLISHED`. Messages are Confluent-framed Avro or the reference's JSON
//! ([`crate::wire`]).

use std::collections::HashSet;
use std::time::Duration;

use apache_avro::Schema;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rivulet_common::KafkaArgs;
use rivulet_common::avro::{self, RegistryArgs};
use rivulet_common::kafka::{ProducerSettings, read_range};
use serde_json::{Map, Value, json};

use crate::wire::{Contract, EXPERIMENT_SCHEMA, Format, SUMMARY_SCHEMA};
use rivulet_contracts::recommendations::ContractError;
use rivulet_contracts::topics;

/// Topic names.
#[derive(Clone, Debug, clap::Args)]
pub struct Topics {
    /// Recommendations of processed experiments.
    #[arg(
        long,
        env = "RECOMMENDER_RECOMMENDATIONS_TOPIC",
        default_value = topics::RECOMMENDATIONS
    )]
    pub recommendations_topic: String,
    /// Failed experiments.
    #[arg(long, env = "RECOMMENDER_ERROR_TOPIC", default_value = topics::ERRORS)]
    pub error_topic: String,
    /// One summary per finished job.
    #[arg(long, env = "RECOMMENDER_SUMMARY_TOPIC", default_value = topics::JOB_SUMMARIES)]
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

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The producer could not be built.
    #[error(transparent)]
    Kafka(#[from] rivulet_common::Error),
    /// A topic's schema is not in the registry, or the registry could not be asked.
    #[error("the schemas/{topic}/v1.avsc schema: {source} (or use --format json)")]
    NotRegistered {
        /// Schema folder.
        topic: &'static str,
        /// Not registered, or the registry unavailable.
        #[source]
        source: Box<avro::LookupError>,
    },
    /// A schema could not be used.
    #[error(transparent)]
    Wire(#[from] crate::wire::WireError),
}

/// How each topic's messages are written.
#[derive(Clone)]
enum Encoding {
    Json,
    /// recommendations-topic, error-topic, summary-topic.
    Avro(Box<[Contract; 3]>),
}

/// The producer, alive for the whole process (the reference shut its executor down after the
/// first job).
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topics: Topics,
    kafka: KafkaArgs,
    encoding: Encoding,
}

impl Publisher {
    /// An idempotent producer with `acks=all`, writing `format`; for Avro the three topics'
    /// schemas are looked up in the registry first.
    pub async fn new(
        kafka: &KafkaArgs,
        topics: Topics,
        format: Format,
        registry: &RegistryArgs,
    ) -> Result<Publisher, StartError> {
        let encoding = match format {
            Format::Json => Encoding::Json,
            Format::Avro => {
                let settings = registry.settings()?;
                let find = async |topic: &str, folder: &'static str, text: &str| {
                    let schema = Schema::parse_str(text).map_err(|e| {
                        crate::wire::WireError::Contract(ContractError::Schema(e.to_string()))
                    })?;
                    let subject = avro::value_subject(topic);
                    let registered = avro::lookup_pinned(&settings, &subject, &schema)
                        .await
                        .map_err(|source| StartError::NotRegistered {
                            topic: folder,
                            source: Box::new(source),
                        })?;
                    Ok::<_, StartError>(Contract::new(registered)?)
                };
                Encoding::Avro(Box::new([
                    find(
                        &topics.recommendations_topic,
                        "recommendations-topic",
                        EXPERIMENT_SCHEMA,
                    )
                    .await?,
                    find(&topics.error_topic, "error-topic", EXPERIMENT_SCHEMA).await?,
                    find(&topics.summary_topic, "summary-topic", SUMMARY_SCHEMA).await?,
                ]))
            }
        };
        let mut settings = ProducerSettings::new("recommendation-producer");
        settings.acks_all = true;
        let producer = kafka.producer(&settings)?;
        Ok(Publisher {
            producer,
            topics,
            kafka: kafka.clone(),
            encoding,
        })
    }

    fn all(&self) -> [String; 3] {
        [
            self.topics.recommendations_topic.clone(),
            self.topics.error_topic.clone(),
            self.topics.summary_topic.clone(),
        ]
    }

    /// Where each partition of the three topics ends now: `{topic: {partition: offset}}`.
    pub async fn end_offsets(&self) -> Result<Value, PublishError> {
        let (kafka, topics) = (self.kafka.clone(), self.all());
        let work = move || -> Result<Value, PublishError> {
            let reader = kafka
                .reader("recommender-offsets")
                .map_err(|e| PublishError(e.to_string()))?;
            let mut out = Map::new();
            for topic in topics {
                let metadata = reader
                    .fetch_metadata(Some(&topic), Duration::from_secs(10))
                    .map_err(|e| PublishError(e.to_string()))?;
                let mut partitions = Map::new();
                for t in metadata.topics().iter().filter(|t| t.name() == topic) {
                    for p in t.partitions() {
                        let (_, high) = reader
                            .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                            .map_err(|e| PublishError(e.to_string()))?;
                        partitions.insert(p.id().to_string(), json!(high));
                    }
                }
                out.insert(topic, Value::Object(partitions));
            }
            Ok(Value::Object(out))
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PublishError(e.to_string()))?
    }

    /// The keys starting with `prefix` written to `topics` since `offsets` (a job's messages,
    /// read back when the job is resumed). Only the topics asked for: a job's recommendations
    /// are megabytes, and a reader moved on to another topic waits for its metadata (a job's
    /// summary check read all three and took 0.4-1.2 s).
    pub async fn keys_since(
        &self,
        offsets: &Value,
        topics: &[Topic],
        prefix: &str,
    ) -> Result<HashSet<String>, PublishError> {
        let names: Vec<String> = topics.iter().map(|t| self.name(*t).to_owned()).collect();
        let (kafka, offsets, prefix) = (self.kafka.clone(), offsets.clone(), prefix.to_owned());
        let work = move || -> Result<HashSet<String>, PublishError> {
            let reader = kafka
                .reader("recommender-readback")
                .map_err(|e| PublishError(e.to_string()))?;
            let mut keys = HashSet::new();
            let wanted = offsets
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(topic, _)| names.contains(topic));
            for (topic, partitions) in wanted {
                for (partition, start) in partitions.as_object().into_iter().flatten() {
                    let (Ok(p), Some(start)) = (partition.parse::<i32>(), start.as_i64()) else {
                        continue;
                    };
                    read_range(
                        &reader,
                        topic,
                        p,
                        start,
                        None,
                        Duration::from_secs(60),
                        |m| {
                            let key = String::from_utf8_lossy(m.key().unwrap_or_default());
                            if key.starts_with(&prefix) {
                                keys.insert(key.into_owned());
                            }
                        },
                    )
                    .map_err(|e| PublishError(e.to_string()))?;
                }
            }
            Ok(keys)
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PublishError(e.to_string()))?
    }

    fn name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Recommendations => &self.topics.recommendations_topic,
            Topic::Error => &self.topics.error_topic,
            Topic::Summary => &self.topics.summary_topic,
        }
    }

    /// Sends `message` in the configured format and waits for the acknowledgement.
    pub async fn send(&self, topic: Topic, key: &str, message: &Value) -> Result<(), PublishError> {
        let payload = match &self.encoding {
            Encoding::Json => serde_json::to_vec(message).map_err(|e| PublishError(e.to_string())),
            Encoding::Avro(contracts) => {
                let [recommendations, error, summary] = contracts.as_ref();
                match topic {
                    Topic::Recommendations => recommendations.encode(message),
                    Topic::Error => error.encode(message),
                    Topic::Summary => summary.encode(message),
                }
                .map_err(|e| PublishError(e.to_string()))
            }
        }?;
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
