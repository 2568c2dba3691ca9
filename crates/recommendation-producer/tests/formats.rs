//! The two wire formats end to end: the same bulk job run by a replica writing Avro (schemas
//! registered in the real registry) and by one writing JSON; every message of both, read
//! into one model, carries the same content. An Avro replica whose schemas are not registered
//! refuses to start and says how to fix it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use rivulet_contracts::recommendations::{ExperimentMessage, SummaryMessage};
use rivulet_recommendation_producer::wire::{self, EXPERIMENT_SCHEMA, Format, SUMMARY_SCHEMA};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::service::{
    Service, database, post, raw_messages, service_with, topics, wait_done, wait_ready,
};
use support::{cluster, serve};

/// Registers `text` under `<topic>-value`; returns its id.
async fn register(topic: &str, text: &str) -> u32 {
    let url = format!(
        "{}/subjects/{topic}-value/versions",
        rivulet_testkit::registry_url()
    );
    let answer: Value = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": text }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    u32::try_from(answer["id"].as_u64().unwrap()).unwrap()
}

/// The writer schema of `id`, from the registry.
async fn schema_by_id(id: u32) -> Schema {
    let url = format!("{}/schemas/ids/{id}", rivulet_testkit::registry_url());
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    Schema::parse_str(answer["schema"].as_str().unwrap()).unwrap()
}

/// Every message of `topic` read into its model, by key; for Avro also the schema ids seen.
async fn read<T: DeserializeOwned>(topic: &str, format: Format) -> (BTreeMap<String, T>, Vec<u32>) {
    let raw = raw_messages(topic).await;
    let mut writers = HashMap::new();
    let mut ids = Vec::new();
    for (_, payload) in &raw {
        if format == Format::Avro {
            let (id, _) = rivulet_common::avro::unframe(payload).unwrap();
            ids.push(id);
            if let Entry::Vacant(slot) = writers.entry(id) {
                slot.insert(schema_by_id(id).await);
            }
        }
    }
    let models = raw
        .iter()
        .map(|(key, payload)| {
            let model = wire::read(payload, format, |id| writers.get(&id).cloned())
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            (key.clone(), model)
        })
        .collect();
    (models, ids)
}

/// What differs between two runs of the same job: its id and the clock.
fn normalise_experiments(
    models: BTreeMap<String, ExperimentMessage>,
) -> BTreeMap<String, ExperimentMessage> {
    models
        .into_iter()
        .map(|(key, mut m)| {
            m.summary.job_id.clear();
            for e in m.experiments.values_mut() {
                for change in &mut e.status_history {
                    change.timestamp.clear();
                }
            }
            let name = key.split_once('|').unwrap().1.to_owned();
            (name, m)
        })
        .collect()
}

fn normalise_summary(models: BTreeMap<String, SummaryMessage>) -> Vec<SummaryMessage> {
    models
        .into_values()
        .map(|mut m| {
            m.summary.job_id.clear();
            m.summary.job_start_time.clear();
            m.summary.job_end_time = m.summary.job_end_time.map(|_| String::new());
            m
        })
        .collect()
}

async fn run_job(s: &Service) {
    wait_ready(s).await;
    let body = json!({
        "time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
        "experiment_types": ["container", "namespace"],
    });
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let summary = wait_done(s, answer["job_id"].as_str().unwrap()).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
}

/// Waits for the summary (it follows the job's end).
async fn wait_for_summary(topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while raw_messages(topic).await.is_empty() {
        assert!(Instant::now() < deadline, "no summary on {topic}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL, Kafka and the registry: run scripts/test"]
async fn avro_and_json_messages_carry_the_same_content() {
    let cluster = cluster();
    let prometheus = serve(&cluster).await;
    let registry = rivulet_testkit::registry_url();

    // Not registered: the Avro replica refuses to start, naming the subject and the fix.
    let missing = topics().await;
    let db = database().await;
    let mut s = service_with(
        &prometheus.url,
        &db,
        &missing,
        &["--format", "avro", "--schema-registry-url", &registry],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "started without its schemas");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());

    let json_topics = topics().await;
    let avro_topics = topics().await;
    let mut ids = Vec::new();
    for (topic, text) in [
        (&avro_topics[0], EXPERIMENT_SCHEMA),
        (&avro_topics[1], EXPERIMENT_SCHEMA),
        (&avro_topics[2], SUMMARY_SCHEMA),
    ] {
        ids.push(register(topic, text).await);
    }
    let avro = service_with(
        &prometheus.url,
        &database().await,
        &avro_topics,
        &["--format", "avro", "--schema-registry-url", &registry],
    );
    let json = service_with(&prometheus.url, &database().await, &json_topics, &[]);
    run_job(&avro).await;
    run_job(&json).await;
    wait_for_summary(&avro_topics[2]).await;
    wait_for_summary(&json_topics[2]).await;

    let (from_avro, avro_ids) = read::<ExperimentMessage>(&avro_topics[0], Format::Avro).await;
    let (from_json, _) = read::<ExperimentMessage>(&json_topics[0], Format::Json).await;
    assert_eq!(from_avro.len(), 11, "{:?}", from_avro.keys());
    assert!(
        avro_ids.iter().all(|id| *id == ids[0]),
        "framed with the registered id {}: {avro_ids:?}",
        ids[0]
    );
    let (avro_models, json_models) = (
        normalise_experiments(from_avro),
        normalise_experiments(from_json),
    );
    for (name, want) in &json_models {
        assert_eq!(avro_models.get(name), Some(want), "{name}");
    }
    assert_eq!(avro_models.len(), json_models.len());
    // The models hold real recommendations, not two empty documents.
    let terms = avro_models
        .values()
        .flat_map(|m| m.experiments.values())
        .filter_map(|e| e.apis.recommendations.response.as_ref())
        .flat_map(|r| {
            let object = &r[0].kubernetes_objects[0];
            let recommendations = match (&object.containers, &object.namespaces) {
                (Some(c), _) => &c[0].recommendations,
                (None, Some(n)) => &n.recommendations,
                (None, None) => panic!("neither a container nor a namespace: {object:?}"),
            };
            recommendations.data.values()
        })
        .filter(|at| at.recommendation_terms.short_term.is_some())
        .count();
    assert!(terms >= 8, "{terms} experiments with a short term");

    let (summary_avro, summary_ids) = read::<SummaryMessage>(&avro_topics[2], Format::Avro).await;
    let (summary_json, _) = read::<SummaryMessage>(&json_topics[2], Format::Json).await;
    assert_eq!(summary_ids, vec![ids[2]]);
    let (a, j) = (
        normalise_summary(summary_avro),
        normalise_summary(summary_json),
    );
    assert_eq!(a, j);
    assert_eq!(a[0].summary.total_experiments, Some(11));
    drop(s);
}
