//! The leader's Kafka side: topics, reading back what they hold, and transactions.
//!
//! The producer is transactional with the deployment's one `transactional.id`: a new leader's
//! `init_transactions` bumps the id's epoch, so an earlier leader that was paused (not dead)
//! cannot commit anything when it wakes up. Every call here blocks: run them on a blocking
//! thread.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_common::KafkaArgs;
use rivulet_common::kafka::{ProducerSettings, ReadEnd, read_to_end};
use rivulet_contracts::kubernetes::{Change, EventType, RESOURCE_VERSION_HEADER, UID_HEADER};

use crate::state::{Body, Held, Outgoing, Version};

/// Header: the message's event type (a reader of the Events topic, which has no tombstones,
/// learns of deletions from it).
pub const EVENT_TYPE_HEADER: &str = "rivulet-k8s-event-type";
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes a message needs besides its value and key (headers, record overhead), kept free
/// under the size limit.
const OVERHEAD: usize = 512;

/// A topic the leader writes.
#[derive(Clone, Debug)]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// The resource type it carries.
    pub resource_type: String,
    /// Compacted with tombstones (every type but Events).
    pub tombstones: bool,
    /// The largest message it takes.
    pub max_bytes: usize,
}

/// Why a transaction failed.
#[derive(Debug)]
pub enum Failure {
    /// Another producer with our transactional id took over: we are not the leader.
    Fenced(KafkaError),
    /// Anything else (broker away, timeouts): start a new producer and read back.
    Other(KafkaError),
    /// A topic could not be read back.
    ReadBack(rivulet_common::Error),
}

impl Failure {
    /// A label for the error metric.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Fenced(_) => "fenced",
            Failure::Other(_) => "kafka",
            Failure::ReadBack(_) => "read_back",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Fenced(e) => write!(f, "fenced by a newer producer: {e}"),
            Failure::Other(e) => write!(f, "{e}"),
            Failure::ReadBack(e) => write!(f, "reading a topic back: {e}"),
        }
    }
}

fn classify(error: KafkaError) -> Failure {
    if rivulet_common::kafka::is_fenced(&error) {
        Failure::Fenced(error)
    } else {
        Failure::Other(error)
    }
}

/// Creates the missing topics and learns each one's size limit.
pub async fn prepare(
    kafka: &KafkaArgs,
    topics: &mut [Topic],
    create: bool,
    partitions: i32,
) -> rivulet_common::Result<()> {
    let admin = kafka.admin("k8s-monitor-admin")?;
    for topic in topics.iter_mut() {
        if create {
            let policy = if topic.tombstones {
                "compact"
            } else {
                "delete"
            };
            let max = topic.max_bytes.to_string();
            let config = [
                ("cleanup.policy", policy),
                ("max.message.bytes", max.as_str()),
            ];
            if rivulet_common::kafka::ensure_topic(&admin, &topic.name, partitions, &config).await?
            {
                tracing::info!(topic = %topic.name, policy, "Created topic.");
            }
        }
        // Real Kafka reports max.message.bytes for every topic (its default included); Tansu
        // only reports configs given at creation. Without a value the --max-message-bytes cap
        // stands, which is also the producer's own limit.
        let config = rivulet_common::kafka::topic_config(&admin, &topic.name).await?;
        if let Some(limit) = config
            .get("max.message.bytes")
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<usize>().ok())
        {
            topic.max_bytes = topic.max_bytes.min(limit);
        }
    }
    Ok(())
}

/// A transactional producer that has fenced every earlier one with `id`.
pub fn fence(kafka: &KafkaArgs, id: &str, max_bytes: usize) -> Result<BaseProducer, Failure> {
    let mut settings = ProducerSettings::transactional("k8s-monitor", id);
    settings.acks_all = true;
    let mut config = kafka.producer_config(&settings);
    config.set("message.max.bytes", (max_bytes + OVERHEAD).to_string());
    config.set(
        "transaction.timeout.ms",
        TXN_TIMEOUT.as_millis().to_string(),
    );
    let producer: BaseProducer = config.create().map_err(Failure::Other)?;
    producer.init_transactions(TXN_TIMEOUT).map_err(classify)?;
    Ok(producer)
}

/// What `topic` holds: each key's last message (uid, resourceVersion, whether a deletion), from
/// the headers of its committed messages.
pub fn read_back(kafka: &KafkaArgs, topic: &str) -> rivulet_common::Result<HashMap<String, Held>> {
    let consumer = kafka.reader("k8s-monitor-read-back")?;
    let partitions =
        rivulet_common::kafka::partition_ids(&consumer, topic, Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(rivulet_common::Error::kafka("assigning partitions"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(rivulet_common::Error::kafka("assigning partitions"))?;
    let mut held: HashMap<String, Held> = HashMap::new();
    let end = read_to_end(&consumer, topic, &partitions, READ_TIMEOUT, |message| {
        let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return Ok::<(), rivulet_common::Error>(());
        };
        let header = |name: &str| {
            message.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .map(str::to_owned)
            })
        };
        // A tombstone follows its DELETED message: it only confirms the deletion.
        if message.payload().is_none() {
            if let Some(h) = held.get_mut(key) {
                h.deleted = true;
            }
            return Ok(());
        }
        if let (Some(uid), Some(resource_version)) =
            (header(UID_HEADER), header(RESOURCE_VERSION_HEADER))
        {
            let deleted = header(EVENT_TYPE_HEADER).as_deref() == Some(EventType::Deleted.as_str());
            let version = Version {
                uid,
                resource_version,
            };
            held.insert(key.to_owned(), Held { version, deleted });
        }
        Ok(())
    })?;
    if end == ReadEnd::TimedOut {
        return Err(rivulet_common::Error::ReadTimeout {
            topic: topic.to_owned(),
            partition: -1,
            offset: -1,
        });
    }
    Ok(held)
}

/// What one publication carries besides the books' items.
pub struct Envelope<'a> {
    /// `--cluster-name`.
    pub cluster: &'a str,
    /// This replica's identity, sent as a header (which replica published a message).
    pub publisher: &'a str,
}

/// Header: the identity of the replica that published the message.
pub const PUBLISHER_HEADER: &str = "rivulet-k8s-publisher";

/// Sends `batch` (topic, item) in one transaction. Returns how many objects were published
/// without their body (too big).
pub fn send(
    producer: &BaseProducer,
    envelope: &Envelope<'_>,
    batch: &[(&Topic, Vec<Outgoing>)],
) -> Result<usize, Failure> {
    producer.begin_transaction().map_err(classify)?;
    let mut truncated = 0;
    let timestamp = now();
    for (topic, items) in batch {
        for out in items {
            let (value, cut) = encode(envelope, topic, out, timestamp);
            truncated += usize::from(cut);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: UID_HEADER,
                    value: Some(&out.item.version.uid),
                })
                .insert(Header {
                    key: RESOURCE_VERSION_HEADER,
                    value: Some(&out.item.version.resource_version),
                })
                .insert(Header {
                    key: EVENT_TYPE_HEADER,
                    value: Some(out.event_type.as_str()),
                })
                .insert(Header {
                    key: PUBLISHER_HEADER,
                    value: Some(envelope.publisher),
                });
            produce(
                producer,
                BaseRecord::to(topic.name.as_str())
                    .key(out.key.as_str())
                    .payload(value.as_slice())
                    .headers(headers),
            )?;
            if out.event_type == EventType::Deleted && topic.tombstones {
                produce(
                    producer,
                    BaseRecord::<str, [u8]>::to(topic.name.as_str()).key(out.key.as_str()),
                )?;
            }
        }
    }
    if let Err(error) = rivulet_common::kafka::commit_transaction(producer, TXN_TIMEOUT) {
        let failure = classify(error);
        if !matches!(failure, Failure::Fenced(_)) {
            let _ = producer.abort_transaction(TXN_TIMEOUT);
        }
        return Err(failure);
    }
    Ok(truncated)
}

/// Enqueues `record`, serving delivery callbacks while the queue is full.
fn produce(producer: &BaseProducer, mut record: BaseRecord<'_, str, [u8]>) -> Result<(), Failure> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(50));
                record = back;
            }
            Err((error, _)) => return Err(classify(error)),
        }
    }
}

/// The JSON value of `out`; without `object` (and flagged) when it would exceed the topic's
/// limit.
fn encode(
    envelope: &Envelope<'_>,
    topic: &Topic,
    out: &Outgoing,
    timestamp: f64,
) -> (Vec<u8>, bool) {
    let object = match &out.item.body {
        Body::Object(v) | Body::Gone(v) => v,
    };
    let mut change = Change {
        timestamp,
        cluster: envelope.cluster.to_owned(),
        resource_type: topic.resource_type.clone(),
        namespace: out.item.namespace.clone(),
        event_type: out.event_type,
        uid: out.item.version.uid.clone(),
        resource_version: out.item.version.resource_version.clone(),
        object: Some(object.clone()),
        truncated: false,
    };
    let bytes = serde_json::to_vec(&change).unwrap_or_default();
    if bytes.len() + out.key.len() + OVERHEAD <= topic.max_bytes {
        return (bytes, false);
    }
    change.object = None;
    change.truncated = true;
    (serde_json::to_vec(&change).unwrap_or_default(), true)
}

/// Unix seconds with millisecond precision.
pub fn now() -> f64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;
    use crate::state::{Item, Version};
    use serde_json::json;
    use std::time::Instant;

    #[test]
    fn fencing_is_recognised_in_each_form_librdkafka_reports() {
        for code in [
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
        ] {
            assert!(matches!(
                classify(KafkaError::MessageProduction(code)),
                Failure::Fenced(_)
            ));
        }
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
        ] {
            assert!(matches!(
                classify(KafkaError::MessageProduction(code)),
                Failure::Other(_)
            ));
        }
    }

    fn outgoing(size: usize) -> Outgoing {
        Outgoing {
            key: "default/big".into(),
            event_type: EventType::Added,
            item: Item {
                seq: 1,
                namespace: Some("default".into()),
                version: Version {
                    uid: "u".into(),
                    resource_version: "1".into(),
                },
                body: Body::Object(json!({"data": {"blob": "x".repeat(size)}})),
                seen: Instant::now(),
            },
        }
    }

    #[test]
    fn an_object_over_the_limit_goes_without_its_body() {
        let topic = Topic {
            name: "k8s-configmaps".into(),
            resource_type: "configmaps".into(),
            tombstones: true,
            max_bytes: 10_000,
        };
        let envelope = Envelope {
            cluster: "c",
            publisher: "p",
        };
        let (small, cut) = encode(&envelope, &topic, &outgoing(100), 1.0);
        assert!(!cut);
        let change: Change = serde_json::from_slice(&small).unwrap();
        assert!(change.object.is_some() && !change.truncated);
        let (big, cut) = encode(&envelope, &topic, &outgoing(20_000), 1.0);
        assert!(cut && big.len() < 1_000);
        let change: Change = serde_json::from_slice(&big).unwrap();
        assert!(change.object.is_none() && change.truncated);
        assert_eq!(change.uid, "u");
    }
}
