//! The job store going away: with PostgreSQL behind a gate that is closed and opened again,
//! the service says it is not ready, answers 503 in its error shape (never a 500, never a
//! job half made), and recovers on its own once the database is back.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use rivulet_testkit::gate::Gate;
use serde_json::Value;
use support::service::{database, get, post, service_with, topics, wait_done, wait_ready};
use support::{cluster, serve};

/// Waits until `/readyz` answers `status`.
async fn readiness(url: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = reqwest::get(format!("{url}/readyz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz {got}, waiting for {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_job_store_that_goes_away_is_reported_and_recovered_from() {
    let cluster = cluster();
    let prometheus = serve(&cluster).await;
    let topics = topics().await;
    let direct = database().await;
    let (server, name) = direct.rsplit_once('/').unwrap();
    let host = server.rsplit_once('@').map_or(server, |(_, h)| h);
    let gate = Gate::start(host).await;
    let through_gate = direct.replace(host, &gate.addr);
    assert_ne!(through_gate, direct, "{direct}");
    let s = service_with(&prometheus.url, &through_gate, &topics, &[]);
    wait_ready(&s).await;

    gate.close();
    readiness(&s.url, 503).await;
    for (status, error) in [
        get(format!("{}/bulk/jobs", s.url)).await,
        post(format!("{}/bulk", s.url), "{}").await,
    ] {
        assert_eq!(status, 503, "{error}");
        assert_eq!(error["status"], "ERROR", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("job store"),
            "{error}"
        );
    }

    gate.open();
    readiness(&s.url, 200).await;
    let (status, created) = post(format!("{}/bulk", s.url), "{}").await;
    assert_eq!(status, 200, "{created}");
    let job = created["job_id"].as_str().unwrap().to_owned();
    let summary: Value = wait_done(&s, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    // The refused POST made no job: only the one after the recovery exists.
    let (_, list) = get(format!("{}/bulk/jobs", s.url)).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list} ({name})");
}
