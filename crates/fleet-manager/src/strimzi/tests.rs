#![allow(clippy::unwrap_used)] // tests
use super::*;
use crate::model::KafkaRow;

fn row(id: &str) -> KafkaRow {
    let mut r = KafkaRow::probe("aws", "us-east-1", "standard", &size());
    r.id = id.into();
    r.reauthentication_enabled = true;
    r
}

fn size() -> Size {
    serde_yaml_ng::from_str(
        "id: x1\ndisplay_name: '1'\ningressThroughputPerSec: 48Mi\negressThroughputPerSec: 96Mi\ntotalMaxConnections: 9000\nmaxConnectionAttemptsPerSec: 99\nmaxDataRetentionSize: 1000Gi\nmaxDataRetentionPeriod: P7D\nmaxPartitions: 1500\nmaxMessageSize: 1Mi\nminInSyncReplicas: 2\nreplicationFactor: 3\n",
    )
    .unwrap()
}

#[test]
fn objects_are_named_from_the_id_and_carry_the_limits() {
    let r = row("abc");
    let k = kafka(&r, &size(), "3.9.0");
    assert_eq!(k["metadata"]["name"], "kafka-abc");
    assert_eq!(k["metadata"]["namespace"], "kafka-abc");
    assert_eq!(k["metadata"]["labels"][ID_LABEL], "abc");
    let kc = &k["spec"]["kafka"];
    assert_eq!(kc["metadataVersion"], "3.9-IV0");
    assert_eq!(kc["config"]["min.insync.replicas"], 2);
    assert_eq!(kc["config"]["default.replication.factor"], 3);
    assert_eq!(kc["config"]["max.connections"], 3000);
    assert_eq!(kc["config"]["max.connections.creation.rate"], 33);
    assert_eq!(kc["config"]["message.max.bytes"], 1 << 20);
    assert_eq!(kc["config"]["log.retention.ms"], 7 * 24 * 3600 * 1000_i64);
    assert_eq!(kc["quotas"]["producerByteRate"], 16 << 20);
    assert_eq!(kc["quotas"]["consumerByteRate"], 32 << 20);
    assert_eq!(kc["config"]["connections.max.reauth.ms"], 299_000);
    let p = node_pool(&r, &size());
    assert_eq!(p["metadata"]["labels"]["strimzi.io/cluster"], "kafka-abc");
    assert_eq!(p["spec"]["replicas"], 3);
    assert_eq!(namespace(&r)["metadata"]["name"], "kafka-abc");
}

const PATIENCE: Patience = Patience {
    grace: chrono::Duration::minutes(2),
    timeout: chrono::Duration::minutes(30),
};

fn cr(generation: i64, observed: i64, conditions: Value) -> Value {
    json!({
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": conditions,
            "listeners": [
                {"name": "plain", "bootstrapServers": "kafka-abc-kafka-bootstrap.kafka-abc.svc:9092"},
                {"name": "external", "bootstrapServers": "kafka-abc-kafka-bootstrap.kafka-abc.svc:9094"},
            ],
        },
    })
}

#[test]
fn ready_means_ready_for_the_current_generation() {
    let now = Utc::now();
    let since = now - chrono::Duration::minutes(1);
    let ready = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(
        progress(Some(&cr(2, 2, ready.clone())), since, now, PATIENCE),
        Progress::Ready("kafka-abc-kafka-bootstrap.kafka-abc.svc:9094".into())
    );
    assert!(matches!(
        progress(Some(&cr(3, 2, ready)), since, now, PATIENCE),
        Progress::Waiting(_)
    ));
    let mut no_listeners = cr(1, 1, json!([{"type": "Ready", "status": "True"}]));
    no_listeners["status"]["listeners"] = json!([]);
    assert!(matches!(
        progress(Some(&no_listeners), since, now, PATIENCE),
        Progress::Waiting(_)
    ));
}

#[test]
fn not_ready_is_normal_an_error_fails_only_past_the_grace() {
    let now = Utc::now();
    let since = now - chrono::Duration::minutes(10);
    let at = |mins: i64| (now - chrono::Duration::minutes(mins)).to_rfc3339();
    let creating = json!([{"type": "NotReady", "status": "True", "reason": "Creating", "lastTransitionTime": at(9)}]);
    assert!(matches!(
        progress(Some(&cr(1, 1, creating)), since, now, PATIENCE),
        Progress::Waiting(_)
    ));
    let fresh_error = json!([{"type": "Ready", "status": "False", "reason": "InvalidResourceException", "message": "bad", "lastTransitionTime": at(1)}]);
    assert!(matches!(
        progress(Some(&cr(1, 1, fresh_error)), since, now, PATIENCE),
        Progress::Waiting(_)
    ));
    let old_error = json!([{"type": "NotReady", "status": "True", "reason": "KafkaUpgradeException", "message": "no such version", "lastTransitionTime": at(3)}]);
    assert_eq!(
        progress(Some(&cr(1, 1, old_error)), since, now, PATIENCE),
        Progress::Failed("Strimzi reports KafkaUpgradeException: no such version".into())
    );
    assert!(matches!(
        progress(None, since, now, PATIENCE),
        Progress::Waiting(_)
    ));
    let long_ago = now - chrono::Duration::minutes(31);
    assert!(matches!(
        progress(None, long_ago, now, PATIENCE),
        Progress::Failed(_)
    ));
    let creating = json!([{"type": "NotReady", "status": "True", "reason": "Creating"}]);
    assert_eq!(
        progress(Some(&cr(1, 1, creating)), long_ago, now, PATIENCE),
        Progress::Failed("not ready 30 minutes after provisioning began".into())
    );
}
