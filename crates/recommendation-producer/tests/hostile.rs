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

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn writes_need_credentials_once_authentication_is_on() {
    let auth = [
        "--auth-token",
        "the-token",
        "--auth-user",
        "admin",
        "--auth-password",
        "the-password",
    ];
    let Setup {
        prometheus: _prometheus,
        topics: _topics,
        service: s,
    } = ready(&cluster(), &auth).await;
    let client = reqwest::Client::new();
    let bulk = format!("{}/bulk", s.url);
    let submit = |credentials: Option<(&str, &str)>| {
        let mut request = client
            .post(&bulk)
            .header("content-type", "application/json")
            .body("{}");
        request = match credentials {
            Some(("bearer", token)) => request.bearer_auth(token),
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        request.send()
    };
    // Refused without credentials or with wrong ones: 401 in the error shape, with a challenge,
    // and no job is created.
    for credentials in [
        None,
        Some(("bearer", "not-the-token")),
        Some(("admin", "wrong")),
        Some(("root", "the-password")),
    ] {
        let answer = submit(credentials).await.unwrap();
        let challenge = answer.headers().get("www-authenticate").cloned();
        let status = answer.status().as_u16();
        let error: Value = answer.json().await.unwrap();
        assert_error_shape(status, &error, 401);
        assert!(challenge.is_some(), "{credentials:?}: no WWW-Authenticate");
    }
    let (status, list) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_eq!(status, 200, "reads stay open");
    assert_eq!(
        list["jobs"],
        serde_json::json!([]),
        "a refused POST made a job"
    );

    // Accepted with the token and with the user's password.
    let mut jobs = Vec::new();
    for credentials in [("bearer", "the-token"), ("admin", "the-password")] {
        let answer = submit(Some(credentials)).await.unwrap();
        assert!(
            answer.status().is_success(),
            "{credentials:?}: {}",
            answer.status()
        );
        let body: Value = answer.json().await.unwrap();
        jobs.push(body["job_id"].as_str().unwrap().to_owned());
    }
    let (_, list) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");

    // DELETE is a write too.
    let cancel = format!("{bulk}?job_id={}", jobs[0]);
    let answer = client.delete(&cancel).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    let answer = client
        .delete(&cancel)
        .bearer_auth("the-token")
        .send()
        .await
        .unwrap();
    assert_ne!(answer.status().as_u16(), 401);

    // With --auth-scope all, reads need them too; probes and the OpenAPI document stay open.
    let mut all = auth.to_vec();
    all.extend(["--auth-scope", "all"]);
    let Setup {
        prometheus: _p,
        topics: _t,
        service: s,
    } = ready(&cluster(), &all).await;
    let (status, error) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_error_shape(status, &error, 401);
    let answer = client
        .get(format!("{}/bulk/jobs", s.url))
        .bearer_auth("the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    for open in ["/healthz", "/metrics", "/openapi.json"] {
        let status = reqwest::get(format!("{}{open}", s.url))
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{open}");
    }
}

/// The served OpenAPI document matches what the server does, checked by schemathesis.
#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL, Kafka and schemathesis: run scripts/test"]
async fn the_openapi_document_matches_the_server() {
    let Setup {
        prometheus: _prometheus,
        topics: _topics,
        service: s,
    } = ready(&cluster(), &[]).await;
    let url = s.url.clone();
    let examples = rivulet_testkit::schemathesis::examples();
    let (passed, report) =
        tokio::task::spawn_blocking(move || rivulet_testkit::schemathesis::run(&url, examples))
            .await
            .unwrap();
    println!("{report}");
    assert!(passed, "schemathesis found problems:\n{report}");
}
