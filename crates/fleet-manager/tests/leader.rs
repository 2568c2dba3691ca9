//! Two replicas on one database: each worker type runs on exactly one at a time; the leader
//! killed with SIGKILL mid-provisioning hands over within its lease, and the instance still
//! reaches ready once, with one Kafka and one node pool.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rivulet_testkit::strimzi::Answer;
use support::{Fleet, QUOTAS, StandIn, eventually, setup, strimzi_objects};

const WORKERS: [&str; 5] = [
    "accepted_kafka",
    "preparing_kafka",
    "provisioning_kafka",
    "deleting_kafka",
    "general_kafka_worker",
];

/// `kas_fleet_manager_leader_worker` per worker type of one replica (0 if not exported yet).
async fn leading(fleet: &Fleet) -> HashMap<&'static str, f64> {
    let m = fleet.metrics().await;
    WORKERS
        .iter()
        .map(|w| {
            let series = format!("kas_fleet_manager_leader_worker{{worker_type=\"{w}\"}}");
            (*w, rivulet_testkit::metric_value(&m, &series))
        })
        .collect()
}

async fn all_led_by(fleet: &Fleet) -> Option<()> {
    let l = leading(fleet).await;
    l.values().all(|v| *v == 1.0).then_some(())
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn each_worker_type_runs_on_exactly_one_replica() {
    let s = setup(QUOTAS, 10).await;
    let a = Fleet::ready(&s, "a", &[]).await;
    eventually(&a, Duration::from_secs(20), || all_led_by(&a)).await;
    let b = Fleet::ready(&s, "b", &[]).await;
    // Over several lease renewals (3 s leases), sampled: never both, never neither.
    let until = Instant::now() + Duration::from_secs(8);
    let mut samples = 0;
    while Instant::now() < until {
        let (la, lb) = (leading(&a).await, leading(&b).await);
        for w in WORKERS {
            assert_eq!(la[w] + lb[w], 1.0, "{w}: a {} b {}", la[w], lb[w]);
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(samples >= 10, "{samples} samples");
    let db = s.db().await;
    let leases: Vec<(String, String)> = sqlx::query_as(
        "SELECT lease_type, leader FROM leader_leases WHERE expires > now() ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(leases.len(), 5, "{leases:?}");
    assert!(leases.iter().all(|(_, l)| l == "a"), "{leases:?}");
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn the_leader_killed_mid_provisioning_hands_over_and_the_instance_is_ready_once() {
    let strimzi = StandIn::start().await;
    let s = setup(QUOTAS, 10).await;
    let mut a = Fleet::ready(&s, "a", &[]).await;
    eventually(&a, Duration::from_secs(20), || all_led_by(&a)).await;
    let b = Fleet::ready(&s, "b", &[]).await;
    let alice = s.client(&b, "alice", None, false);
    let id = alice.create_ok("survivor", "standard.x1").await;
    alice
        .wait_status(&b, &id, "provisioning", Duration::from_secs(60))
        .await;
    a.kill9();
    let killed = chrono::Utc::now();
    // Read after the kill: a cannot renew it any more.
    let db = s.db().await;
    let (expires,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT MAX(expires) FROM leader_leases WHERE leader = 'a'")
            .fetch_one(&db)
            .await
            .unwrap();
    strimzi.answer(&id, Answer::Ready);
    eventually(&b, Duration::from_secs(30), || all_led_by(&b)).await;
    let took_over = chrono::Utc::now();
    // Within the lease: once it ended, b's next election (every 200 ms) takes it.
    let slack = chrono::Duration::seconds(2);
    assert!(
        took_over <= expires.max(killed) + slack,
        "took over at {took_over}, lease ended {expires}"
    );
    let ready = alice
        .wait_status(&b, &id, "ready", Duration::from_secs(60))
        .await;
    assert!(
        ready["bootstrap_server_host"]
            .as_str()
            .is_some_and(|h| h.contains(&id))
    );
    assert_eq!(
        strimzi_objects(&id).await,
        (vec![format!("kafka-{id}")], vec!["brokers".to_owned()])
    );
    let m = b.metrics().await;
    assert_eq!(
        rivulet_testkit::metric_value(
            &m,
            "kas_fleet_manager_kafka_operations_success_count{operation=\"create\"}"
        ),
        1.0,
        "{m}"
    );
    // Nothing moves it again: it stays ready over further reconciles.
    let before = rivulet_testkit::metric_value(
        &m,
        "kas_fleet_manager_reconciler_success_count{worker_type=\"provisioning_kafka\"}",
    );
    eventually(&b, Duration::from_secs(20), || async {
        let m = b.metrics().await;
        let now = rivulet_testkit::metric_value(
            &m,
            "kas_fleet_manager_reconciler_success_count{worker_type=\"provisioning_kafka\"}",
        );
        (now >= before + 5.0).then_some(())
    })
    .await;
    let (status, updated): (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT status, updated_at FROM kafka_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(status, "ready");
    assert_eq!(
        updated.timestamp_millis(),
        chrono::DateTime::parse_from_rfc3339(ready["updated_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    );
}
