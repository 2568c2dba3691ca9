//! The Kafka messages as a consumer reads them: one model for both wire formats. JSON reads
//! with `serde_json`, Avro with `apache_avro::from_value` (see [`super::read`]); a field the
//! JSON leaves out is `None`, as is the Avro `null` that stands for it. Unknown JSON fields are
//! refused, so the model is known to hold everything a message carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Notifications keyed by their code as a string.
pub type Notes = BTreeMap<String, Note>;

/// A notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// `info`, `notice`, `warning`, `error`, `critical` (`ERROR` for failures).
    #[serde(rename = "type")]
    pub kind: String,
    /// Text.
    pub message: String,
    /// Code.
    pub code: i64,
}

/// A message of `recommendations-topic` or `error-topic`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentMessage {
    /// The job.
    pub summary: JobRef,
    /// One experiment, keyed by its name.
    pub experiments: BTreeMap<String, Experiment>,
}

/// The job an experiment message belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRef {
    /// Job status when the experiment was published.
    pub status: String,
    /// Job id.
    pub job_id: String,
}

/// An experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// `PROCESSED` or `FAILED`.
    pub status: String,
    /// The recommendations answer.
    pub apis: Apis,
    /// Status changes.
    pub status_history: Vec<StatusChange>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notes>,
}

/// `apis`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Apis {
    /// `recommendations`.
    pub recommendations: RecommendationsApi,
}

/// `apis.recommendations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationsApi {
    /// The listRecommendations answer (`null` for a failed experiment).
    pub response: Option<Vec<ListRecommendation>>,
}

/// A status change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// Status.
    pub status: String,
    /// When.
    pub timestamp: String,
}

/// One element of the listRecommendations answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRecommendation {
    /// Cluster.
    pub cluster_name: String,
    /// `container`.
    pub experiment_type: String,
    /// Document version.
    pub version: String,
    /// Experiment.
    pub experiment_name: String,
    /// The workload.
    pub kubernetes_objects: Vec<KubernetesObject>,
}

/// A container experiment's workload, or a namespace experiment's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesObject {
    /// Workload kind (container experiments).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Workload name (container experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace.
    pub namespace: String,
    /// The container (container experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<ContainerRecommendations>>,
    /// The namespace's recommendations (namespace experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceRecommendations>,
}

/// A namespace and its recommendations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRecommendations {
    /// Namespace.
    pub namespace: String,
    /// Recommendations.
    pub recommendations: Recommendations,
}

/// A container and its recommendations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRecommendations {
    /// Image.
    pub container_image_name: String,
    /// Name.
    pub container_name: String,
    /// Recommendations.
    pub recommendations: Recommendations,
}

/// A container's recommendations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recommendations {
    /// `1.0`.
    pub version: String,
    /// Notifications.
    pub notifications: Notes,
    /// By monitoring end time.
    pub data: BTreeMap<String, AtTime>,
}

/// Everything at the monitoring end time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtTime {
    /// Notifications.
    pub notifications: Notes,
    /// End time.
    pub monitoring_end_time: String,
    /// Current requests and limits.
    pub current: Config,
    /// Terms.
    pub recommendation_terms: Terms,
}

/// Amounts by resource (`cpu`, `memory`).
pub type Resources = BTreeMap<String, Amount>;

/// Requests and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Resources>,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
}

/// An amount.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Value.
    pub amount: f64,
    /// `cores` or `bytes`.
    pub format: String,
}

/// The terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_term: Option<Term>,
    /// Medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium_term: Option<Term>,
    /// Long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_term: Option<Term>,
}

/// One term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// Hours of data.
    pub duration_in_hours: f64,
    /// Notifications.
    pub notifications: Notes,
    /// Window start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring_start_time: Option<String>,
    /// Models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_engines: Option<Engines>,
    /// Box plots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plots: Option<Plots>,
}

/// Both models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engines {
    /// Cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Engine>,
    /// Performance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Engine>,
}

/// A model's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// Pods.
    pub pods_count: i64,
    /// Confidence.
    pub confidence_level: f64,
    /// Recommended.
    pub config: Config,
    /// Recommended − current.
    pub variation: Config,
    /// Notifications.
    pub notifications: Notes,
}

/// A term's plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plots {
    /// Buckets.
    pub datapoints: i64,
    /// By bucket end time.
    pub plots_data: BTreeMap<String, Bucket>,
}

/// A bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// CPU.
    #[serde(rename = "cpuUsage", default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<Box>,
    /// Memory.
    #[serde(
        rename = "memoryUsage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_usage: Option<Box>,
}

/// A box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Box {
    /// Min.
    pub min: f64,
    /// Q1.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Q3.
    pub q3: f64,
    /// Max.
    pub max: f64,
    /// Unit.
    pub format: String,
}

/// A message of `summary-topic`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryMessage {
    /// The job.
    pub summary: JobSummary,
}

/// A job's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSummary {
    /// `COMPLETED` or `FAILED`.
    pub status: String,
    /// Experiments found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_experiments: Option<i64>,
    /// Experiments attempted.
    pub processed_experiments: i64,
    /// Job id.
    pub job_id: String,
    /// Start.
    pub job_start_time: String,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_end_time: Option<String>,
}
