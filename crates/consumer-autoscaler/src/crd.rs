//! The `Consumer` custom resource (`consumers.rivulet.io/v1alpha1`), field for field
//! Konsumerator's `konsumerator.lwolf.org/v1` `Consumer`, so its manifests work with only the
//! `apiVersion` changed; plus the `kafka` metrics provider and the status Rivulet adds.
//!
//! The CRD served is generated from these types (`consumer-autoscaler-crd`, committed as
//! `k8s/base/consumer-autoscaler/crd.yaml` and checked for drift by `scripts/validate-manifests`).
//!
//! `deploymentTemplate` is kept as JSON (`x-kubernetes-preserve-unknown-fields`): a generated
//! schema of a whole `DeploymentSpec` is not cleanly structural. The operator validates it by a
//! server-side dry-run of the Deployment it would create and reports the outcome in `status`.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A consumer of a partitioned topic, run as one Deployment per group of partitions, each
/// sized from its lag.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "rivulet.io",
    version = "v1alpha1",
    kind = "Consumer",
    namespaced,
    status = "ConsumerStatus",
    printcolumn = r#"{"name":"Expected","type":"integer","jsonPath":".status.expected","description":"Deployments that should run"}"#,
    printcolumn = r#"{"name":"Running","type":"integer","jsonPath":".status.running"}"#,
    printcolumn = r#"{"name":"Paused","type":"integer","jsonPath":".status.paused"}"#,
    printcolumn = r#"{"name":"Missing","type":"integer","jsonPath":".status.missing"}"#,
    printcolumn = r#"{"name":"Lagging","type":"integer","jsonPath":".status.lagging"}"#,
    printcolumn = r#"{"name":"Outdated","type":"integer","jsonPath":".status.outdated"}"#,
    printcolumn = r#"{"name":"Autoscaler","type":"string","jsonPath":".spec.autoscaler.mode","description":"Metrics provider in use"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSpec {
    /// Partitions of the topic.
    #[schemars(range(min = 1))]
    pub num_partitions: i32,
    /// Partitions per Deployment (default 1), split into contiguous, near-equal groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub num_partitions_per_instance: Option<i32>,
    /// Base name of the Deployments (`{name}-{instance}`).
    pub name: String,
    /// Namespace of the Deployments: the Consumer's own (an owner reference cannot cross
    /// namespaces; empty means the Consumer's).
    #[serde(default)]
    pub namespace: String,
    /// How the Deployments are sized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerSpec>,
    /// The environment variable that carries an instance's partitions (default
    /// `KONSUMERATOR_PARTITION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_env_key: Option<String>,
    /// An `apps/v1` `DeploymentSpec`; container resources in it are set by the autoscaler.
    #[schemars(schema_with = "any_object")]
    pub deployment_template: serde_json::Value,
    /// Bounds of what the autoscaler may give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<ResourcePolicy>,
}

/// How the Deployments are sized.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerSpec {
    /// The metrics provider.
    #[serde(default)]
    pub mode: Mode,
    /// How long a wanted scale-up waits before it is applied (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_scale_up_duration: Option<GoDuration>,
    /// How long a wanted scale-down waits before it is applied (default 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_scale_down_duration: Option<GoDuration>,
    /// Lag and rates from Prometheus queries (mode `prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Lag and rates from the Kafka cluster itself (mode `kafka`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSpec>,
}

/// The metrics provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Mode {
    /// Konsumerator's: three Prometheus queries.
    #[serde(rename = "prometheus")]
    Prometheus,
    /// Rivulet's: log-end and committed offsets read from Kafka.
    #[serde(rename = "kafka")]
    Kafka,
    /// Declared by Konsumerator and not implemented there either: reported, nothing scaled.
    #[serde(rename = "vpa")]
    Vpa,
    /// No autoscaling: Deployments are kept, resources stay as the template has them.
    #[default]
    #[serde(rename = "")]
    None,
}

/// What the predictor needs, the same under `prometheus` and `kafka`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictorSpec {
    /// Without metrics: `min` (default) or `max` of what is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_strategy: Option<FallbackStrategy>,
    /// Messages per second one core consumes.
    #[schemars(range(min = 1))]
    pub rate_per_core: i64,
    /// Memory per core of the CPU limit.
    pub ram_per_core: Quantity,
    /// Step of CPU requests (default 100m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_increment: Option<Quantity>,
    /// An instance lags when its partitions are this far behind (in time); scale-ups happen
    /// only while it lags, scale-downs only while it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerable_lag: Option<GoDuration>,
    /// This far behind, an instance gets its container policy's `maxAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_lag: Option<GoDuration>,
    /// The time a lagging instance should take to catch up (at least 1s).
    #[schemars(schema_with = "at_least_a_second")]
    pub recovery_time: GoDuration,
}

/// Without metrics, what an instance gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum FallbackStrategy {
    /// The least allowed.
    #[default]
    #[serde(rename = "min")]
    Min,
    /// The most allowed.
    #[serde(rename = "max")]
    Max,
}

/// Konsumerator's Prometheus provider.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Prometheus base URLs, queried in parallel; the first answer wins.
    pub address: Vec<String>,
    /// Prometheus is asked at most this often (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sync_period: Option<GoDuration>,
    /// Messages behind per partition.
    pub offset: QuerySpec,
    /// Messages produced per second per partition.
    pub production: QuerySpec,
    /// Messages consumed per second per partition.
    pub consumption: QuerySpec,
    /// The predictor.
    #[serde(flatten)]
    pub predictor: PredictorSpec,
}

/// A PromQL query answering one value per partition.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuerySpec {
    /// The instant query.
    pub query: String,
    /// The label carrying the partition number.
    pub partition_label: String,
}

/// Rivulet's Kafka provider: no Prometheus needed.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// `host:port,...` of the cluster.
    pub bootstrap_servers: String,
    /// The topic consumed.
    pub topic: String,
    /// The consumer group whose committed offsets measure progress.
    pub group_id: String,
    /// A Secret (in the Consumer's namespace) of librdkafka settings for SASL/TLS, one
    /// property per key (`security.protocol`, `sasl.mechanism`, `sasl.username`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Kafka is asked at most this often (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sync_period: Option<GoDuration>,
    /// The predictor.
    #[serde(flatten)]
    pub predictor: PredictorSpec,
}

/// A Secret by name.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SecretRef {
    /// Its name.
    pub name: String,
}

/// Bounds of what the autoscaler may give.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicy {
    /// A cap on the sum of all instances' requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_policy: Option<GlobalPolicy>,
    /// Per container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_policies: Vec<ContainerPolicy>,
}

/// A cap on the sum of all instances' requests.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalPolicy {
    /// `cpu` and `memory`.
    #[serde(default)]
    pub max_allowed: ResourceList,
}

/// One container's bounds.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPolicy {
    /// The container.
    #[serde(default)]
    pub container_name: String,
    /// `Auto` (default) or `Off` (the container keeps the template's resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ContainerMode>,
    /// The least it gets.
    #[serde(default)]
    pub min_allowed: ResourceList,
    /// The most it gets.
    #[serde(default)]
    pub max_allowed: ResourceList,
}

/// Whether a container is sized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ContainerMode {
    /// Sized by the autoscaler.
    #[default]
    Auto,
    /// Left as the template has it.
    Off,
}

/// `cpu`, `memory` → quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// A Kubernetes quantity (`100m`, `1`, `512Mi`), written as a string or a number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self(s)),
            serde_json::Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "a quantity is a string or a number, not {other}"
            ))),
        }
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
        })
    }
    fn inline_schema() -> bool {
        true
    }
}

/// A Go duration (`30s`, `5m`, `1h30m`), as Konsumerator's `metav1.Duration` fields take.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GoDuration(pub String);

impl JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": DURATION_PATTERN})
    }
    fn inline_schema() -> bool {
        true
    }
}

/// Kubernetes' quantity syntax (the API server's own regular expression, as a pattern).
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
/// Go's duration syntax.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// Go durations of at least one second: some part in `s`, `m` or `h` with a whole number other
/// than 0 (`1s`, `30m`, `1h30m`; not `0s`, `500ms`, nor `0.5m`). The API server refuses a
/// `recoveryTime` the predictor would divide by zero with (its whole seconds); 1.20 has no CEL
/// for a numeric minimum on a string.
pub const AT_LEAST_A_SECOND_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*[0-9]*[1-9][0-9]*(\.[0-9]+)?(s|m|h)([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*$";

fn at_least_a_second(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": AT_LEAST_A_SECOND_PATTERN})
}

fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// What the operator last observed and decided (Konsumerator's status, plus conditions and
/// the `kafka` provider's offsets).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// A hash of `deploymentTemplate` (Konsumerator's meaning of the field, not the object's
    /// `metadata.generation`): Deployments annotated with another are outdated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Deployments that should exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<i32>,
    /// Deployments running (not paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<i32>,
    /// Deployments paused (`konsumerator.lwolf.org/disable-autoscaler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<i32>,
    /// Instances at least `tolerableLag` behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagging: Option<i32>,
    /// Deployments that had to be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<i32>,
    /// Deployments of an older template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated: Option<i32>,
    /// Deployments that should not exist (partition drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redundant: Option<i32>,
    /// When metrics were last read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// Per partition, what the last sync read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_state: Option<BTreeMap<String, InstanceState>>,
    /// Rivulet: `TemplateValid`, `MetricsAvailable`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Rivulet, `kafka` provider: the log-end offsets of the last sync and when they were
    /// read, so a restarted operator has a production rate at its first sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_offsets: Option<KafkaOffsets>,
}

/// One partition's figures of a sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    /// Messages produced per second.
    pub production_rate: i64,
    /// Messages consumed per second.
    pub consumption_rate: i64,
    /// Messages not yet consumed (Konsumerator's spelling).
    #[serde(rename = "messageBehind")]
    pub messages_behind: i64,
}

/// A condition of the usual Kubernetes shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What it is about.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
}

/// The `kafka` provider's last log-end offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaOffsets {
    /// When they were read (RFC 3339, milliseconds).
    pub time: String,
    /// Partition → log-end offset.
    pub log_end: BTreeMap<String, i64>,
    /// Partition → the group's committed offset.
    #[serde(default)]
    pub committed: BTreeMap<String, i64>,
}

/// The CRD as the API server should serve it.
///
/// Empty-string defaults (from `#[serde(default)]` on strings and on `mode`) are left out of the
/// schema: kube-apiserver 1.20 refuses them ("must be of type string: null"); the operator
/// applies the same defaults when it reads a Consumer.
pub fn definition()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("default").is_some_and(|d| d == "") {
                    map.remove("default");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let crd = Consumer::crd();
    let Ok(mut json) = serde_json::to_value(&crd) else {
        return crd;
    };
    strip(&mut json);
    serde_json::from_value(json).unwrap_or(crd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_from_strings_and_numbers() {
        let list: ResourceList = serde_json::from_str(r#"{"cpu": 1, "memory": "100M"}"#).unwrap();
        assert_eq!(list["cpu"], Quantity("1".into()));
        assert_eq!(list["memory"], Quantity("100M".into()));
        assert!(serde_json::from_str::<Quantity>("true").is_err());
    }

    #[test]
    fn the_schema_is_structural_where_it_matters() {
        let crd = serde_json::to_value(definition()).unwrap();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["deploymentTemplate"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let prometheus = &spec["properties"]["autoscaler"]["properties"]["prometheus"];
        assert_eq!(prometheus["properties"]["ratePerCore"]["minimum"], 1.0);
        assert_eq!(
            prometheus["properties"]["recoveryTime"]["pattern"],
            AT_LEAST_A_SECOND_PATTERN
        );
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "Expected",
                "Running",
                "Paused",
                "Missing",
                "Lagging",
                "Outdated",
                "Autoscaler",
                "Age"
            ]
        );
    }
}
