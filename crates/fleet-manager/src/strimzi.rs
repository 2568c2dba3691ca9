//! How an instance is made with Strimzi (pure): its namespace, one `KafkaNodePool` and one
//! `Kafka` (KRaft), all named from the instance id, the size's limits as the broker quotas
//! and configs; and what the `Kafka`'s `status` means for the instance.
//!
//! Limits are per instance, Strimzi's quotas and connection limits per broker: each is divided
//! by the broker count (the size's replication factor). Every broker keeps a full copy of
//! the data (replication factor = brokers), so each one's volume is the size's storage.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::catalog::Size;
use crate::model::{KafkaRow, bytes};

/// `kafka.strimzi.io/v1beta2`.
pub const API_VERSION: &str = "kafka.strimzi.io/v1beta2";
/// The label every object of an instance carries, with its id.
pub const ID_LABEL: &str = "rivulet.io/kafka-id";
/// The field manager of the fleet manager's applies.
pub const MANAGER: &str = "rivulet-fleet-manager";
/// The node pool's name (one per namespace).
pub const POOL: &str = "brokers";

fn labels(row: &KafkaRow) -> Value {
    json!({
        "app.kubernetes.io/managed-by": MANAGER,
        "app.kubernetes.io/part-of": "rivulet",
        ID_LABEL: row.id,
    })
}

/// The instance's namespace.
pub fn namespace(row: &KafkaRow) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": row.resource_name(), "labels": labels(row)},
    })
}

/// Its brokers (and KRaft controllers): one pool of `replicationFactor` nodes.
pub fn node_pool(row: &KafkaRow, size: &Size) -> Value {
    let mut l = labels(row);
    l["strimzi.io/cluster"] = json!(row.resource_name());
    json!({
        "apiVersion": API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": {"name": POOL, "namespace": row.resource_name(), "labels": l},
        "spec": {
            "replicas": size.replication_factor,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [{
                    "id": 0, "type": "persistent-claim", "size": size.max_data_retention_size,
                    "deleteClaim": true, "kraftMetadata": "shared",
                }],
            },
        },
    })
}

/// Days of an ISO 8601 `PnD` period in milliseconds (other forms: 14 days).
fn retention_ms(period: &str) -> i64 {
    let days = period
        .strip_prefix('P')
        .and_then(|p| p.strip_suffix('D'))
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(14);
    days * 24 * 3600 * 1000
}

/// The `Kafka`: KRaft, node pools, a plain internal listener and a TLS SCRAM one for
/// clients, the size's limits.
pub fn kafka(row: &KafkaRow, size: &Size, kafka_version: &str) -> Value {
    let brokers = i64::from(size.replication_factor.max(1));
    let per_broker = |total: i64| (total / brokers).max(1);
    let metadata_version = kafka_version
        .rsplit_once('.')
        .map(|(major_minor, _)| format!("{major_minor}-IV0"))
        .unwrap_or_default();
    let total_connections = i64::try_from(size.total_max_connections).unwrap_or(i64::MAX);
    let attempts = i64::try_from(size.max_connection_attempts_per_sec).unwrap_or(i64::MAX);
    let mut config = json!({
        "min.insync.replicas": size.min_in_sync_replicas,
        "default.replication.factor": size.replication_factor,
        "offsets.topic.replication.factor": size.replication_factor,
        "transaction.state.log.replication.factor": size.replication_factor,
        "transaction.state.log.min.isr": size.min_in_sync_replicas,
        "message.max.bytes": bytes(&size.max_message_size),
        "log.retention.ms": retention_ms(&size.max_data_retention_period),
        "max.connections": per_broker(total_connections),
        "max.connections.creation.rate": per_broker(attempts),
        "auto.create.topics.enable": false,
    });
    if row.reauthentication_enabled {
        config["connections.max.reauth.ms"] = json!(299_000);
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Kafka",
        "metadata": {
            "name": row.resource_name(),
            "namespace": row.resource_name(),
            "labels": labels(row),
            "annotations": {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
        },
        "spec": {
            "kafka": {
                "version": kafka_version,
                "metadataVersion": metadata_version,
                "listeners": [
                    {"name": "plain", "port": 9092, "type": "internal", "tls": false},
                    {"name": "external", "port": 9094, "type": "cluster-ip", "tls": true,
                     "authentication": {"type": "scram-sha-512"}},
                ],
                "config": config,
                "quotas": {
                    "type": "kafka",
                    "producerByteRate": per_broker(bytes(&size.ingress_throughput_per_sec)),
                    "consumerByteRate": per_broker(bytes(&size.egress_throughput_per_sec)),
                },
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    })
}

/// What a `Kafka`'s status means for its instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Ready for the current generation, with clients' bootstrap address.
    Ready(String),
    /// Given up, with the reason.
    Failed(String),
    /// Still being made (why, for the log).
    Waiting(String),
}

/// When to give up.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    /// An error condition is final once it has held this long (Strimzi retries meanwhile).
    pub grace: chrono::Duration,
    /// Not ready this long after provisioning began: failed.
    pub timeout: chrono::Duration,
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Reasons of a `NotReady` condition that mean Strimzi is still at work.
const PROGRESS_REASONS: [&str; 3] = ["", "Creating", "Updating"];

/// Decides from the `Kafka` CR (`None`: not found) whether the instance is ready, failed or
/// still being made; `since` is when provisioning began.
pub fn progress(
    kafka: Option<&Value>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    p: Patience,
) -> Progress {
    let timed_out = now - since > p.timeout;
    let Some(kafka) = kafka else {
        return if timed_out {
            Progress::Failed("the Kafka resource is missing".into())
        } else {
            Progress::Waiting("no Kafka resource".into())
        };
    };
    let generation = kafka["metadata"]["generation"].as_i64();
    let status = &kafka["status"];
    let current = generation.is_some() && status["observedGeneration"].as_i64() == generation;
    let empty = Vec::new();
    let conditions = status["conditions"].as_array().unwrap_or(&empty);
    let ready = conditions
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if ready && current {
        return match bootstrap(status) {
            Some(b) => Progress::Ready(b),
            None => Progress::Waiting("ready, but no listener address yet".into()),
        };
    }
    let error = conditions.iter().find(|c| {
        (c["type"] == "Ready" && c["status"] == "False")
            || (c["type"] == "NotReady"
                && c["status"] == "True"
                && !PROGRESS_REASONS.contains(&c["reason"].as_str().unwrap_or_default()))
    });
    if let Some(c) = error {
        let reason = format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("error"),
            c["message"].as_str().unwrap_or("no message")
        );
        let held = time(&c["lastTransitionTime"]).map_or(chrono::Duration::zero(), |t| now - t);
        if held > p.grace {
            return Progress::Failed(format!("Strimzi reports {reason}"));
        }
        if !timed_out {
            return Progress::Waiting(format!("error for {}s: {reason}", held.num_seconds()));
        }
    }
    if timed_out {
        return Progress::Failed(format!(
            "not ready {} minutes after provisioning began",
            p.timeout.num_minutes()
        ));
    }
    Progress::Waiting(if ready {
        "ready for an older generation".into()
    } else {
        "not ready".into()
    })
}

/// The bootstrap address: the `external` listener's, else the first one reported.
fn bootstrap(status: &Value) -> Option<String> {
    let listeners = status["listeners"].as_array()?;
    let of = |l: &Value| l["bootstrapServers"].as_str().map(str::to_owned);
    listeners
        .iter()
        .find(|l| l["name"] == "external")
        .and_then(of)
        .or_else(|| listeners.iter().find_map(of))
}

#[cfg(test)]
mod tests;
