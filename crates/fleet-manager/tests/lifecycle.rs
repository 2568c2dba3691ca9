//! An instance's life against the real API server and PostgreSQL, the test playing Strimzi:
//! accepted → … → ready with the listener's address; DELETE → its Kafka, node pool and
//! namespace gone → the row soft-deleted; a Strimzi error → failed with the reason; a
//! developer instance deprovisioned at the end of its lifespan.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use rivulet_testkit::strimzi::Answer;
use support::{Fleet, QUOTAS, StandIn, eventually, setup, setup_with, strimzi_objects};

const MINUTE: Duration = Duration::from_secs(60);

async fn namespace_exists(name: &str) -> bool {
    let api: Api<Namespace> = Api::all(rivulet_testkit::kube::client().await);
    api.get_opt(name).await.unwrap().is_some()
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn an_instance_is_made_ready_then_deleted_with_everything_it_made() {
    let strimzi = StandIn::start().await;
    let s = setup(QUOTAS, 10).await;
    let fleet = Fleet::ready(&s, "a", &[]).await;
    let alice = s.client(&fleet, "alice", None, false);

    let (status, body) = alice.create("orders", "standard.x1").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["kind"], "Kafka");
    assert_eq!(body["owner"], "alice");
    assert_eq!(body["multi_az"], true);
    assert_eq!(body["max_partitions"], 1500);
    assert_eq!(body["max_data_retention_size"]["bytes"], 1000_i64 << 30);
    assert!(
        body.get("expires_at").is_none(),
        "standard instances do not expire"
    );
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["href"], format!("/api/kafkas_mgmt/v1/kafkas/{id}"));

    // Placed and written; Strimzi (the test) has not answered yet.
    let provisioning = alice.wait_status(&fleet, &id, "provisioning", MINUTE).await;
    assert_eq!(provisioning["version"], "3.9.0");
    let (kafkas, pools) = strimzi_objects(&id).await;
    assert_eq!(
        (kafkas, pools),
        (vec![format!("kafka-{id}")], vec!["brokers".to_owned()])
    );
    let client = rivulet_testkit::kube::client().await;
    let k: kube::api::DynamicObject = Api::namespaced_with(
        client.clone(),
        &format!("kafka-{id}"),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "Kafka"),
            "kafkas",
        ),
    )
    .get(&format!("kafka-{id}"))
    .await
    .unwrap();
    // Stored exactly as written: nothing pruned by the CRD's schema (the project's Strimzi
    // subset), so the objects are valid Strimzi resources as far as that subset knows.
    let db = s.db().await;
    let row: rivulet_fleet_manager::model::KafkaRow = sqlx::query_as(&format!(
        "SELECT {} FROM kafka_requests WHERE id = $1",
        rivulet_fleet_manager::model::COLUMNS
    ))
    .bind(&id)
    .fetch_one(&db)
    .await
    .unwrap();
    let catalog = rivulet_fleet_manager::catalog::Catalog::load(
        &s.dir.join("types.yaml"),
        &s.dir.join("providers.yaml"),
        &s.dir.join("clusters.yaml"),
    )
    .unwrap();
    let size = catalog.size("standard", "x1").unwrap();
    assert_eq!(
        k.data["spec"],
        rivulet_fleet_manager::strimzi::kafka(&row, size, "3.9.0")["spec"]
    );
    let pool: kube::api::DynamicObject = Api::namespaced_with(
        client.clone(),
        &format!("kafka-{id}"),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "KafkaNodePool"),
            "kafkanodepools",
        ),
    )
    .get("brokers")
    .await
    .unwrap();
    assert_eq!(
        pool.data["spec"],
        rivulet_fleet_manager::strimzi::node_pool(&row, size)["spec"]
    );
    let config = &k.data["spec"]["kafka"]["config"];
    assert_eq!(config["min.insync.replicas"], 2);
    assert_eq!(config["default.replication.factor"], 3);
    assert_eq!(config["max.connections"], 3000);
    assert_eq!(
        k.data["spec"]["kafka"]["quotas"]["producerByteRate"],
        (50 << 20) / 3
    );

    strimzi.answer(&id, Answer::Ready);
    let ready = alice.wait_status(&fleet, &id, "ready", MINUTE).await;
    assert_eq!(
        ready["bootstrap_server_host"],
        format!("kafka-{id}-kafka-bootstrap.kafka-{id}.svc:9094")
    );
    let m = fleet.metrics().await;
    assert!(
        m.contains("kas_fleet_manager_kafka_operations_success_count{operation=\"create\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("kas_fleet_manager_worker_kafka_duration_count{jobType=\"kafka_create\"} 1"),
        "{m}"
    );

    let (status, body) = alice
        .send(
            reqwest::Method::DELETE,
            &format!("/kafkas/{id}?async=true"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["status"] == "deprovision" || body["status"] == "deleting",
        "{body}"
    );
    let path = format!("/kafkas/{id}");
    eventually(&fleet, MINUTE, || {
        let r = alice.get(&path);
        async move { (r.await.0 == 404).then_some(()) }
    })
    .await;
    assert_eq!(strimzi_objects(&id).await, (vec![], vec![]));
    assert!(
        !namespace_exists(&format!("kafka-{id}")).await,
        "namespace left behind"
    );
    let db = s.db().await;
    let (status, deleted): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, deleted_at FROM kafka_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(status, "deleting");
    assert!(deleted.is_some(), "the row is soft-deleted, not removed");
    // The name is free again.
    alice.create_ok("orders", "standard.x1").await;
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn a_strimzi_error_that_persists_fails_the_instance_with_its_reason() {
    let strimzi = StandIn::start().await;
    let s = setup(QUOTAS, 10).await;
    let fleet = Fleet::ready(&s, "a", &[]).await;
    let bob = s.client(&fleet, "bob", None, false);
    let id = bob.create_ok("broken", "standard.x1").await;
    strimzi.answer(&id, Answer::Fail("KafkaUpgradeException".into()));
    let failed = bob.wait_status(&fleet, &id, "failed", MINUTE).await;
    let reason = failed["failed_reason"].as_str().unwrap();
    assert!(reason.contains("KafkaUpgradeException"), "{reason}");
    let m = fleet.metrics().await;
    assert!(
        m.contains("kas_fleet_manager_kafka_operations_total_count{operation=\"create\"} 1"),
        "{m}"
    );
    assert!(
        !m.contains("kas_fleet_manager_kafka_operations_success_count{operation=\"create\"}"),
        "{m}"
    );
    // A failed instance is deleted like any other.
    let (status, _) = bob
        .send(
            reqwest::Method::DELETE,
            &format!("/kafkas/{id}?async=true"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let path = format!("/kafkas/{id}");
    eventually(&fleet, MINUTE, || {
        let r = bob.get(&path);
        async move { (r.await.0 == 404).then_some(()) }
    })
    .await;
    assert!(!namespace_exists(&format!("kafka-{id}")).await);
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn a_developer_instance_is_deprovisioned_at_the_end_of_its_lifespan() {
    let types = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../k8s/base/fleet-manager/config/kafka-instance-types-configuration.yaml"),
    )
    .unwrap()
    .replace("lifespanSeconds: 172800", "lifespanSeconds: 4");
    let strimzi = StandIn::start().await;
    let s = setup_with(QUOTAS, 10, Some(&types)).await;
    let fleet = Fleet::ready(&s, "a", &[]).await;
    let dave = s.client(&fleet, "dave", None, false);
    let (status, body) = dave.create("trial", "developer.x1").await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let created =
        chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 4);
    assert_eq!(body["multi_az"], false);
    strimzi.answer(&id, Answer::Ready);
    // Ready first (or already past its lifespan on a slow machine), then gone.
    let path = format!("/kafkas/{id}");
    eventually(&fleet, MINUTE, || {
        let r = dave.get(&path);
        async move { (r.await.0 == 404).then_some(()) }
    })
    .await;
    assert!(
        chrono::Utc::now() >= expires,
        "deleted before its lifespan ended"
    );
    assert!(!namespace_exists(&format!("kafka-{id}")).await);
}
