//! The demo's recommendation job (`scripts/up`) on the demo's data: the fleet of
//! `rivulet_testkit::fleet::DEMO` in a real Prometheus, the request body of
//! `scripts/demo/bulk-job.json`, and every published recommendation equal to the one the
//! model's samples imply (the ground truth the other tests use). JSON on the wire here; that
//! Avro carries the same content is `formats.rs`'s test.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;

use rivulet_recommendation_producer::engine::{Settings, recommend};
use rivulet_testkit::fleet::DEMO;
use serde_json::Value;
use support::same_json;
use support::service::{database, messages, post, service, topics, wait_done, wait_ready};

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn the_demo_job_publishes_what_the_model_implies() {
    let cluster = DEMO.cluster();
    let prometheus = support::serve_sliced(&cluster).await;
    let topics = topics().await;
    let s = service(&prometheus.url, &database().await, &topics);
    wait_ready(&s).await;

    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/demo/bulk-job.json"
    ))
    .unwrap();
    let (status, answer) = post(format!("{}/bulk", s.url), &body).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let summary = wait_done(&s, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["processed_experiments"], DEMO.containers);

    let recs = messages(&topics[0]).await;
    let by_key: BTreeMap<&str, &Value> = recs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(by_key.len(), DEMO.containers, "one message per container");
    for c in &cluster.containers {
        let name = support::experiment_of(c);
        let message = by_key[format!("{job}|{name}").as_str()];
        let response = &message["experiments"][&name]["apis"]["recommendations"]["response"][0];
        let got = &response["kubernetes_objects"][0]["containers"][0]["recommendations"];
        let want =
            serde_json::to_value(recommend(&cluster.expected(c), &Settings::default())).unwrap();
        same_json(&want, got, &name);
    }
}
