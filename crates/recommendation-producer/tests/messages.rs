//! Both formats against the schemas in `schemas/`: real documents of the engine (long data,
//! no limits, idle, too little data, a failed experiment, summaries, from the synthetic cluster
//! of `rivulet_testkit`) written as JSON and as Avro read back into one model, equal, and the
//! model loses nothing of the JSON; and the messages pinned in `schemas/golden/`.

#![allow(clippy::unwrap_used)] // tests

use apache_avro::Schema;
use chrono::{TimeZone, Utc};
use rivulet_common::avro::RegisteredSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use rivulet_contracts::recommendations::{ContractError, ExperimentMessage, SummaryMessage};
use rivulet_recommendation_producer::document;
use rivulet_recommendation_producer::engine::{Settings, recommend};
use rivulet_recommendation_producer::store::{ExperimentRow, JobRow};
use rivulet_recommendation_producer::wire::{
    self, Contract, EXPERIMENT_SCHEMA, Format, SUMMARY_SCHEMA, WireError,
};
use rivulet_testkit::synthetic::{Cluster, Container};

fn contract(text: &str, id: u32) -> Contract {
    Contract::new(RegisteredSchema {
        id,
        version: 1,
        schema: Schema::parse_str(text).unwrap(),
    })
    .unwrap()
}

fn job(end: bool) -> JobRow {
    JobRow {
        job_id: Uuid::from_u128(0x1234),
        status: if end { "COMPLETED" } else { "IN_PROGRESS" }.into(),
        payload: json!({}),
        total_experiments: end.then_some(4),
        processed_experiments: 4,
        notifications: json!({}),
        webhook: None,
        start_time: Utc.timestamp_opt(1_793_491_200, 0).unwrap(),
        end_time: end.then(|| Utc.timestamp_opt(1_793_491_260, 0).unwrap()),
        summary_published: false,
        topic_offsets: None,
    }
}

fn container(name: &str, minutes: i64) -> Container {
    Container {
        namespace: "shop".into(),
        workload: name.into(),
        workload_type: "deployment".into(),
        container: name.into(),
        image: format!("registry.example/{name}:1"),
        pods: 2,
        cpu: (900, 400),
        memory: (200, 100),
        requests: Some((0.5, 268_435_456.0)),
        limits: Some((1.0, 536_870_912.0)),
        minutes,
    }
}

fn row(c: &Container, status: &str) -> ExperimentRow {
    ExperimentRow {
        name: format!(
            "prometheus-1|default|shop|{}(deployment)|{}",
            c.workload, c.container
        ),
        namespace: c.namespace.clone(),
        workload: c.workload.clone(),
        workload_type: c.workload_type.clone(),
        container: c.container.clone(),
        image: c.image.clone(),
        status: status.into(),
        status_history: json!([
            {"status": "UNPROCESSED", "timestamp": "2026-11-01T00:00:00.000Z"},
            {"status": status, "timestamp": "2026-11-01T00:00:01.000Z"},
        ]),
        notifications: None,
        recommendations: None,
        experiment_type: "container".into(),
    }
}

/// Every experiment message the engine can give for a spread of containers.
fn experiment_messages() -> Vec<Value> {
    let day = 1440;
    let mut no_limits = container("worker", 3 * day);
    no_limits.limits = None;
    let mut idle = container("cron", 3 * day);
    idle.cpu = (0, 1);
    let mut unset = container("bare", day);
    unset.requests = None;
    unset.limits = None;
    let containers = vec![
        container("cart", 16 * day),
        no_limits,
        idle,
        unset,
        container("fresh", 40),
    ];
    let cluster = Cluster {
        containers: containers.clone(),
        end: 1_793_491_200,
        ..Cluster::default()
    };
    let mut out = Vec::new();
    for c in &containers {
        let mut e = row(c, "PROCESSED");
        let recs = recommend(&cluster.expected(c), &Settings::default());
        e.recommendations = Some(document::recommendation(&e, &recs));
        out.push(document::experiment_message(&job(false), &e));
    }
    let mut namespace = row(&containers[0], "PROCESSED");
    namespace.name = "prometheus-1|default|shop".into();
    namespace.experiment_type = "namespace".into();
    // The pinned messages were made from left-open windows: the input must not move.
    let recs = recommend(
        &cluster.expected_namespace_with("shop", false),
        &Settings::default(),
    );
    namespace.recommendations = Some(document::recommendation(&namespace, &recs));
    out.push(document::experiment_message(&job(false), &namespace));
    let mut failed = row(&containers[0], "FAILED");
    failed.notifications = Some(json!({"503": {"type": "ERROR", "code": 503,
        "message": "Not able to proceed due to. (datasource prometheus-1 unreachable)"}}));
    out.push(document::experiment_message(&job(false), &failed));
    out
}

/// Writes `doc` both ways, reads both back, and checks they agree and lose nothing.
fn round_trip<T: DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug>(
    contract: &Contract,
    doc: &Value,
) {
    let json_bytes = serde_json::to_vec(doc).unwrap();
    let avro_bytes = contract.encode(doc).unwrap();
    assert_eq!(avro_bytes[0], 0, "Confluent magic byte");
    assert_eq!(&avro_bytes[1..5], &contract.id().to_be_bytes(), "schema id");
    let writer = |id: u32| (id == contract.id()).then(|| contract.schema().clone());
    let from_json: T = wire::read(&json_bytes, Format::Json, writer).unwrap();
    let from_avro: T = wire::read(&avro_bytes, Format::Avro, writer).unwrap();
    assert_eq!(from_json, from_avro);
    assert_eq!(
        &serde_json::to_value(&from_json).unwrap(),
        doc,
        "the model holds all of it"
    );
}

#[test]
fn experiment_messages_carry_the_same_content_in_both_formats() {
    let contract = contract(EXPERIMENT_SCHEMA, 7);
    let docs = experiment_messages();
    // The spread covers what the schema has optional: terms missing, no limits, plots.
    let text = Value::Array(docs.clone()).to_string();
    for needle in [
        "\"plots_data\"",
        "\"long_term\"",
        "\"response\":null",
        "\"503\"",
        "\"namespaces\"",
    ] {
        assert!(text.contains(needle), "the spread lacks {needle}");
    }
    for doc in &docs {
        round_trip::<ExperimentMessage>(&contract, doc);
    }
}

#[test]
fn summary_messages_carry_the_same_content_in_both_formats() {
    let contract = contract(SUMMARY_SCHEMA, 9);
    for end in [true, false] {
        round_trip::<SummaryMessage>(&contract, &document::summary_message(&job(end)));
    }
}

#[test]
fn a_field_the_schema_does_not_know_is_refused_with_its_path() {
    let contract = contract(EXPERIMENT_SCHEMA, 7);
    let mut doc = experiment_messages().remove(0);
    let name = doc["experiments"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    doc["experiments"][&name]["apis"]["surprise"] = json!(1);
    match contract.encode(&doc) {
        Err(WireError::Contract(ContractError::Mismatch { path, reason })) => {
            assert_eq!(path, format!("experiments.{name}.apis"));
            assert!(reason.contains("\"surprise\""), "{reason}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let mut doc = experiment_messages().remove(0);
    doc["summary"]["job_id"] = json!(12);
    let error = contract.encode(&doc).unwrap_err().to_string();
    assert!(
        error.contains("summary.job_id: expected a string, found a number"),
        "{error}"
    );
}

/// The recommender's messages as they go out, pinned in `schemas/golden/` (see
/// `rivulet_testkit::golden`), written by the code before the consumer-side model moved to the
/// contracts crate. JSON byte for byte; Avro by its frame, its length and its decoded value,
/// because apache-avro writes a map's entries in hash order (any order is valid Avro, so the
/// bytes of a message with maps differ from run to run while its content does not).
#[test]
fn messages_are_pinned() {
    use rivulet_testkit::golden::{check_text, pinned};
    let check = |name: &str, contract: &Contract, doc: &Value| {
        let json = String::from_utf8(serde_json::to_vec(doc).unwrap()).unwrap();
        check_text(&format!("{name}.json"), &format!("{json}\n"));
        let now = contract.encode(doc).unwrap();
        let then = pinned(&format!("{name}.hex"), &now);
        assert_eq!(now[..5], then[..5], "{name}: frame");
        assert_eq!(now.len(), then.len(), "{name}: length");
        let read = |bytes: &[u8]| {
            apache_avro::reader::datum::GenericDatumReader::builder(contract.schema())
                .build()
                .unwrap()
                .read_value(&mut &bytes[5..])
                .unwrap()
        };
        assert_eq!(read(&now), read(&then), "{name}: content");
    };
    let experiments = contract(EXPERIMENT_SCHEMA, 7);
    for (i, doc) in experiment_messages().iter().enumerate() {
        check(&format!("recommendations-topic/v1-{i}"), &experiments, doc);
    }
    let summaries = contract(SUMMARY_SCHEMA, 9);
    for (end, name) in [(true, "ended"), (false, "running")] {
        let doc = document::summary_message(&job(end));
        check(&format!("summary-topic/v1-{name}"), &summaries, &doc);
    }
}
