//! Jobs when things go wrong or are asked to stop, against the real Prometheus (behind a proxy
//! that fails on cue), PostgreSQL and Kafka: a datasource going down or hanging at discovery
//! fails the job with the reference's notification; one going down mid-job fails each
//! experiment (error-topic) and completes the job; a running job is cancelled and stays so;
//! the webhook is called once per job with the outcome recorded; finished jobs expire.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post as route_post;
use serde_json::{Value, json};
use support::proxy::{Fault, Proxy};
use support::service::{
    Service, Setup, database, get, messages, messages_at_least, metric, post, ready, service_with,
    topics, wait_done, wait_ready,
};
use support::{cluster, serve};

const DISCOVERY: &str = "kube_pod_container_info";
/// In the recommendation data queries only (discovery uses range queries too).
const DATA: &str = "container_memory_working_set_bytes";

async fn start_job(s: &Service, body: Value) -> String {
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    answer["job_id"].as_str().unwrap().to_owned()
}

fn window() -> Value {
    json!({"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"})
}

/// The job's experiments as `GET /bulk` shows them.
async fn experiments(s: &Service, job: &str) -> serde_json::Map<String, Value> {
    let (_, doc) = get(format!(
        "{}/bulk?job_id={job}&include=experiments&page_size=100",
        s.url
    ))
    .await;
    doc["experiments"].as_object().cloned().unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_failing_datasource_fails_the_job_or_its_experiments_as_the_reference_does() {
    let cluster = cluster();
    let prometheus = serve(&cluster).await;
    let down = Proxy::start(&prometheus.url, DISCOVERY, Fault::Down).await;
    let hung = Proxy::start(&prometheus.url, DISCOVERY, Fault::Hang).await;
    let mid = Proxy::start(&prometheus.url, DATA, Fault::Down).await;
    let topics = topics().await;
    let db = database().await;
    let sources = [
        format!("down={}", down.url),
        format!("hung={}", hung.url),
        format!("mid={}", mid.url),
    ];
    let s = service_with(
        &prometheus.url,
        &db,
        &topics,
        &[
            "--datasource",
            &sources[0],
            "--datasource",
            &sources[1],
            "--datasource",
            &sources[2],
            "--datasource-timeout-secs",
            "2",
        ],
    );
    wait_ready(&s).await;

    // Down at discovery: FAILED, "503" HttpHostConnectException, no experiment published.
    let job = start_job(&s, json!({"datasource": "down", "time_range": window()})).await;
    let summary = wait_done(&s, &job).await;
    assert!(down.tripped());
    assert_eq!(summary["status"], "FAILED", "{summary}");
    let note = &summary["notifications"]["503"];
    assert_eq!(
        (&note["type"], &note["code"]),
        (&json!("ERROR"), &json!(503))
    );
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .starts_with("HttpHostConnectException: Unable to connect to the data source."),
        "{note}"
    );
    assert!(summary["job_end_time"].is_string());

    // Hanging at discovery: FAILED, "503" with code 504, SocketTimeoutException.
    let job_hung = start_job(&s, json!({"datasource": "hung", "time_range": window()})).await;
    let summary = wait_done(&s, &job_hung).await;
    assert_eq!(summary["status"], "FAILED", "{summary}");
    let note = &summary["notifications"]["503"];
    assert_eq!(note["code"], 504, "{summary}");
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .starts_with("SocketTimeoutException"),
        "{note}"
    );

    // Down after discovery: every experiment FAILED with "503", on error-topic; the job
    // COMPLETED (every experiment was attempted), as the reference reports it.
    let job_mid = start_job(&s, json!({"datasource": "mid", "time_range": window()})).await;
    let summary = wait_done(&s, &job_mid).await;
    assert!(mid.tripped());
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(
        (
            &summary["total_experiments"],
            &summary["processed_experiments"]
        ),
        (&json!(8), &json!(8))
    );
    let list = experiments(&s, &job_mid).await;
    assert_eq!(list.len(), 8);
    for (name, e) in &list {
        assert_eq!(e["status"], "PUBLISHED", "{name}: {e}");
        let history: Vec<&str> = e["status_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["UNPROCESSED", "FAILED", "PUBLISHED"], "{name}");
        let note = &e["notifications"]["503"];
        assert!(
            note["message"]
                .as_str()
                .unwrap()
                .starts_with("Not able to proceed due to."),
            "{name}: {note}"
        );
    }

    // Kafka: the mid-job failures on error-topic, nothing on recommendations-topic, one
    // summary per job (FAILED jobs included).
    let errors = messages(&topics[1]).await;
    let mine: Vec<&Value> = errors
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{job_mid}|")))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(mine.len(), 8);
    assert!(mine.iter().all(|m| {
        let e = m["experiments"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        e["status"] == "FAILED" && e["apis"]["recommendations"]["response"].is_null()
    }));
    assert_eq!(
        errors.len(),
        8,
        "no experiment of the failed jobs published"
    );
    assert!(messages(&topics[0]).await.is_empty());
    let summaries = messages_at_least(&topics[2], 3).await;
    let mut got: Vec<(String, String)> = summaries
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["summary"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (job.clone(), "FAILED".to_owned()),
        (job_hung.clone(), "FAILED".to_owned()),
        (job_mid.clone(), "COMPLETED".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_running_job_is_cancelled_and_publishes_nothing_after() {
    let cluster = cluster();
    let prometheus = serve(&cluster).await;
    // The recommendation data hangs: the job stays running until cancelled.
    let stuck = Proxy::start(&prometheus.url, DATA, Fault::Hang).await;
    let topics = topics().await;
    let db = database().await;
    let source = format!("stuck={}", stuck.url);
    let s = service_with(
        &prometheus.url,
        &db,
        &topics,
        &["--datasource", &source, "--datasource-timeout-secs", "3"],
    );
    wait_ready(&s).await;
    let job = start_job(&s, json!({"datasource": "stuck", "time_range": window()})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stuck.tripped() {
        assert!(Instant::now() < deadline, "the job never fetched its data");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, doc) = get(format!("{}/bulk?job_id={job}", s.url)).await;
    assert_eq!(doc["summary"]["status"], "IN_PROGRESS");

    let cancel = |s: &Service| {
        reqwest::Client::new()
            .delete(format!("{}/bulk?job_id={job}", s.url))
            .send()
    };
    let answer = cancel(&s).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "CANCELLED");
    assert_eq!(cancel(&s).await.unwrap().status().as_u16(), 409);

    // The summary is published only once the job's run (its hung queries and their retries)
    // has been dropped: after it, nothing can be computed or published for the job.
    let summaries = messages_at_least(&topics[2], 1).await;
    assert_eq!(summaries.len(), 1, "no summary after the cancel");
    assert_eq!(summaries[0].1["summary"]["status"], "CANCELLED");
    let (_, doc) = get(format!("{}/bulk?job_id={job}", s.url)).await;
    assert_eq!(doc["summary"]["status"], "CANCELLED", "{doc}");
    assert!(doc["summary"]["job_end_time"].is_string());
    let list = experiments(&s, &job).await;
    assert_eq!(list.len(), 8);
    assert!(
        list.values().all(|e| e["status"] == "UNPROCESSED"),
        "{list:?}"
    );
    assert!(messages(&topics[0]).await.is_empty());
    assert!(messages(&topics[1]).await.is_empty());
    assert_eq!(messages(&topics[2]).await.len(), 1);
}

type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver: `/ok` answers 200, `/broken` 500 with a body; every call is kept.
async fn receiver() -> (String, Calls) {
    async fn ok(State(calls): State<Calls>, Json(body): Json<Value>) -> StatusCode {
        calls.lock().unwrap().push(("ok".into(), body));
        StatusCode::OK
    }
    async fn broken(
        State(calls): State<Calls>,
        Json(body): Json<Value>,
    ) -> (StatusCode, &'static str) {
        calls.lock().unwrap().push(("broken".into(), body));
        (StatusCode::INTERNAL_SERVER_ERROR, "receiver broke")
    }
    async fn redirect(State(calls): State<Calls>, Json(body): Json<Value>) -> Response {
        calls.lock().unwrap().push(("redirect".into(), body));
        (StatusCode::FOUND, [("location", "/ok")], "elsewhere").into_response()
    }
    async fn big(State(calls): State<Calls>, Json(body): Json<Value>) -> (StatusCode, String) {
        calls.lock().unwrap().push(("big".into(), body));
        (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(8 << 20))
    }
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/ok", route_post(ok))
        .route("/broken", route_post(broken))
        .route("/redirect", route_post(redirect))
        .route("/big", route_post(big))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn the_webhook_is_called_once_per_job_and_its_outcome_recorded() {
    let cluster = cluster();
    let Setup {
        prometheus: _prometheus,
        topics: _,
        service: s,
    } = ready(&cluster, &["--webhook-allow", "127.0.0.1"]).await;
    let (hook, calls) = receiver().await;
    let good = start_job(
        &s,
        json!({"time_range": window(), "webhook": {"url": format!("{hook}/ok")}}),
    )
    .await;
    let bad = start_job(
        &s,
        json!({"time_range": window(), "webhook": {"url": format!("{hook}/broken")}}),
    )
    .await;
    let redirected = start_job(
        &s,
        json!({"time_range": window(), "webhook": {"url": format!("{hook}/redirect")}}),
    )
    .await;
    let huge = start_job(
        &s,
        json!({"time_range": window(), "webhook": {"url": format!("{hook}/big")}}),
    )
    .await;
    for job in [&good, &bad, &redirected, &huge] {
        assert_eq!(wait_done(&s, job).await["status"], "COMPLETED");
    }
    let webhook = |job: String| {
        let url = format!("{}/bulk?job_id={job}&include=webhook", s.url);
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (_, doc) = get(url.clone()).await;
                if !doc["webhook"].is_null() || Instant::now() > deadline {
                    return doc["webhook"].clone();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(webhook(good.clone()).await, json!({"status": "COMPLETED"}));
    assert_eq!(
        webhook(bad.clone()).await,
        json!({"status": "FAILED", "notifications": {"500": {
            "type": "ERROR", "message": "receiver broke", "code": 500}}})
    );
    // A redirect is a failed call, not a request to wherever it points.
    let answer = webhook(redirected.clone()).await;
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["notifications"]["302"]["code"], 302, "{answer}");
    // An 8 MB reply is kept as its first 4 KiB.
    let answer = webhook(huge.clone()).await;
    assert_eq!(answer["status"], "FAILED");
    let kept = answer["notifications"]["500"]["message"].as_str().unwrap();
    assert!(
        kept.len() <= 4096 + "… (truncated)".len(),
        "kept {} bytes",
        kept.len()
    );
    assert!(kept.ends_with("(truncated)"));
    // Every job's outcome is recorded, and a recorded outcome is never called again: the
    // service's own count and the receiver's agree on one call per job.
    assert_eq!(
        metric(&s, "rivulet_recommender_webhook_calls_total").await,
        4.0
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        4,
        "one call per job, none to a redirect target: {calls:?}"
    );
    for (route, job) in [("ok", &good), ("broken", &bad)] {
        let (_, body) = calls.iter().find(|(r, _)| r == route).unwrap();
        let list = body.as_array().unwrap();
        assert_eq!(list.len(), 1, "an array of one job");
        assert_eq!(list[0]["summary"]["job_id"], job.as_str());
        assert_eq!(list[0]["summary"]["status"], "COMPLETED");
        assert_eq!(list[0]["summary"]["processed_experiments"], 8);
    }
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn finished_jobs_expire_after_the_retention() {
    let cluster = cluster();
    let Setup {
        prometheus: _prometheus,
        topics: _,
        service: s,
    } = ready(&cluster, &["--job-retention", "3s"]).await;
    let job = start_job(&s, json!({"time_range": window()})).await;
    assert_eq!(wait_done(&s, &job).await["status"], "COMPLETED");
    let (_, list) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_eq!(list["jobs"][0]["job_id"], job.as_str());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = get(format!("{}/bulk?job_id={job}", s.url)).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not expire");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, list) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_eq!(list["jobs"], json!([]));
    let (status, _) = get(format!("{}/bulk?job_id={job}&include=experiments", s.url)).await;
    assert_eq!(status, 404);
}
