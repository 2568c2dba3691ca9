//! The broker frozen (SIGSTOP) while a job publishes: publication waits, the job completes,
//! and every experiment is on Kafka exactly once with one summary. Its own test binary:
//! freezing the stack's broker would stall other tests of a binary running beside it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rivulet_testkit::signal_broker;
use serde_json::json;
use support::cluster;
use support::service::{Setup, messages, messages_at_least, post, ready, wait_done};

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_frozen_broker_delays_publication_but_publishes_each_experiment_once() {
    let Setup {
        prometheus: _prometheus,
        topics,
        service: s,
    } = ready(&cluster(), &[]).await;
    let body = json!({
        "time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
        "filter": {"exclude": {"namespace": ["tmp-.*"]}},
    });
    // The fault: the broker answers nothing for 8 s from just before the job starts.
    signal_broker("STOP");
    let frozen = Instant::now();
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    std::thread::sleep(Duration::from_secs(8).saturating_sub(frozen.elapsed()));
    signal_broker("CONT");
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let summary = wait_done(&s, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(
        summary["processed_experiments"].as_u64(),
        Some(7),
        "{summary}"
    );
    let summaries = messages_at_least(&topics[2], 1).await;
    println!(
        "broker frozen 8 s: job COMPLETED and its summary on Kafka {:.1} s after the freeze began",
        frozen.elapsed().as_secs_f64()
    );
    assert_eq!(summaries.len(), 1, "one summary");
    let recs = messages(&topics[0]).await;
    let names: BTreeSet<&str> = recs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(recs.len(), 7, "{names:?}");
    assert_eq!(names.len(), 7, "each experiment once");
    assert!(
        messages(&topics[1]).await.is_empty(),
        "no failed experiment"
    );
}
