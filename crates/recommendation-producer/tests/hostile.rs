//! Bad input answered as bad input: against the running service (real Prometheus, PostgreSQL
//! and Kafka), every refusal is a 4xx in the reference's error shape, never an outage, never an
//! unbounded echo of the input, and never a job.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use serde_json::Value;
use support::cluster;
use support::service::{Setup, get, post, ready};

fn assert_error_shape(status: u16, error: &Value, want: u16) {
    assert_eq!(status, want, "{error}");
    assert_eq!(error["httpcode"].as_u64(), Some(u64::from(want)), "{error}");
    assert_eq!(error["status"], "ERROR", "{error}");
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn hostile_requests_get_clear_bounded_4xx_answers() {
    let Setup {
        prometheus: _prometheus,
        topics: _topics,
        service: s,
    } = ready(&cluster(), &[]).await;
    let url = |path: &str| format!("{}{path}", s.url);

    // A NUL byte is bad input, not "the job store is unavailable".
    let (status, error) = get(url(
        "/bulk?job_id=00000000-0000-0000-0000-000000000000&experiment_name=a%00b",
    ))
    .await;
    assert_error_shape(status, &error, 400);
    assert!(
        error["message"].as_str().unwrap().contains("NUL"),
        "{error}"
    );
    let (status, error) = post(
        url("/bulk"),
        r#"{"filter":{"include":{"namespace":["sh\u0000op"]}}}"#,
    )
    .await;
    assert_error_shape(status, &error, 400);
    assert!(
        error["message"].as_str().unwrap().contains("NUL"),
        "{error}"
    );

    // A JSON array is not a payload (serde would read it as the struct's fields in order).
    let (status, error) = post(url("/bulk"), "[null,null]").await;
    assert_error_shape(status, &error, 400);
    assert!(
        error["message"].as_str().unwrap().contains("JSON object"),
        "{error}"
    );

    // A 1.9 MB invalid regex: refused, and the answer quotes only a short prefix.
    let regex = format!("({}", "a".repeat(1_900_000));
    let body = format!(r#"{{"filter":{{"include":{{"namespace":["{regex}"]}}}}}}"#);
    let (status, error) = post(url("/bulk"), &body).await;
    assert_error_shape(status, &error, 400);
    assert!(
        error.to_string().len() < 1_000,
        "echoed {} bytes",
        error.to_string().len()
    );

    // An oversized body: 413 in the same JSON shape, not plain text.
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 << 20));
    let (status, error) = post(url("/bulk"), &huge).await;
    assert_error_shape(status, &error, 413);

    // Webhooks are refused by a service that allows no host (SSRF), before any job exists.
    let (status, error) = post(
        url("/bulk"),
        r#"{"webhook":{"url":"http://169.254.169.254/latest/meta-data"}}"#,
    )
    .await;
    assert_error_shape(status, &error, 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("webhooks are disabled"),
        "{error}"
    );

    // A 10 KB URI and 40 KB of headers: refused before any handler (common::http::harden).
    let (status, _) = get(url(&format!("/bulk/jobs?status={}", "a".repeat(10_000)))).await;
    assert_eq!(status, 414);
    let answer = reqwest::Client::new()
        .get(url("/bulk/jobs"))
        .header("x-pad", "a".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 431);

    // None of these made a job.
    let (status, jobs) = get(url("/bulk/jobs")).await;
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "{jobs}");
}
