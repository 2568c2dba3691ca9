//! The reference's JSON documents: the recommendation object of an experiment, the job as
//! `GET /bulk` shows it, and the three Kafka messages.

use serde_json::{Map, Value, json};

use crate::engine::output::Recommendations;
use crate::store::{ExperimentRow, JobRow, stamp};

/// The `listRecommendations` object of one experiment (an array of one).
pub fn recommendation(e: &ExperimentRow, recommendations: &Recommendations) -> Value {
    if e.experiment_type == "namespace" {
        return json!([{
            "cluster_name": "default",
            "experiment_type": "namespace",
            "version": "v2.0",
            "experiment_name": e.name,
            "kubernetes_objects": [{
                "namespace": e.namespace,
                "namespaces": {
                    "namespace": e.namespace,
                    "recommendations": recommendations,
                },
            }],
        }]);
    }
    json!([{
        "cluster_name": "default",
        "experiment_type": "container",
        "version": "v2.0",
        "experiment_name": e.name,
        "kubernetes_objects": [{
            "type": e.workload_type,
            "name": e.workload,
            "namespace": e.namespace,
            "containers": [{
                "container_image_name": e.image,
                "container_name": e.container,
                "recommendations": recommendations,
            }],
        }],
    }])
}

/// The job's `summary`.
pub fn summary(job: &JobRow) -> Value {
    let mut s = Map::new();
    s.insert("job_id".into(), json!(job.job_id.to_string()));
    s.insert("status".into(), json!(job.status));
    if let Some(total) = job.total_experiments {
        s.insert("total_experiments".into(), json!(total));
    }
    s.insert(
        "processed_experiments".into(),
        json!(job.processed_experiments),
    );
    s.insert("job_start_time".into(), json!(stamp(job.start_time)));
    if let Some(end) = job.end_time {
        s.insert("job_end_time".into(), json!(stamp(end)));
    }
    if job.notifications.as_object().is_some_and(|n| !n.is_empty()) {
        s.insert("notifications".into(), job.notifications.clone());
    }
    s.insert("input".into(), job.payload.clone());
    Value::Object(s)
}

/// One entry of `experiments`.
pub fn experiment(e: &ExperimentRow) -> Value {
    let mut x = Map::new();
    x.insert("name".into(), json!(e.name));
    x.insert("status".into(), json!(e.status));
    x.insert(
        "apis".into(),
        json!({ "recommendations": { "response": e.recommendations } }),
    );
    x.insert("status_history".into(), e.status_history.clone());
    if let Some(n) = &e.notifications {
        x.insert("notifications".into(), n.clone());
    }
    Value::Object(x)
}

/// Keeps only `fields` of an object (the reference's `summary|f1|f2` include form).
pub fn only(value: Value, fields: &[&str]) -> Value {
    match value {
        Value::Object(map) if !fields.is_empty() => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// The recommendations-topic or error-topic message of one experiment.
pub fn experiment_message(job: &JobRow, e: &ExperimentRow) -> Value {
    let fields = ["name", "status", "apis", "status_history", "notifications"];
    json!({
        "summary": { "status": job.status, "job_id": job.job_id.to_string() },
        "experiments": { e.name.clone(): only(experiment(e), &fields) },
    })
}

/// The summary-topic message.
pub fn summary_message(job: &JobRow) -> Value {
    let fields = [
        "status",
        "total_experiments",
        "processed_experiments",
        "job_id",
        "job_start_time",
        "job_end_time",
    ];
    json!({ "summary": only(summary(job), &fields) })
}
