//! State in `_schemas`: restarts keep every id, and concurrent replicas never give one id to
//! two schemas, even with one frozen (SIGSTOP) in the middle of a registration.

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Api, Replica, record, unique};
use serde_json::{Value, json};

fn schema(i: usize) -> Value {
    record(
        &format!("S{i}"),
        json!([{ "name": format!("f{i}"), "type": "long" }]),
    )
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn restart_keeps_every_id() {
    let mut registry = Replica::start(&[]).await;
    let subject = unique("keep");
    let mut ids = Vec::new();
    {
        let api = Api {
            base: &registry.url,
        };
        for i in 0..5 {
            ids.push(api.register_ok(&format!("{subject}-{i}"), &schema(i)).await);
        }
        api.put(
            &format!("/config/{subject}-0"),
            &json!({ "compatibility": "FULL_TRANSITIVE" }),
        )
        .await;
        api.delete(&format!("/subjects/{subject}-1")).await;
    }
    for hard in [false, true] {
        let clean = registry.stop(hard);
        assert_eq!(clean, !hard, "SIGTERM exits 0 (graceful), SIGKILL does not");
        registry.restart().await;
        let api = Api {
            base: &registry.url,
        };
        for (i, id) in ids.iter().enumerate() {
            let answer = api.get(&format!("/schemas/ids/{id}")).await;
            assert_eq!(answer.status, 200, "id {id} after restart (hard={hard})");
            let stored: Value =
                serde_json::from_str(answer.body["schema"].as_str().unwrap()).unwrap();
            assert_eq!(stored["name"], format!("S{i}"));
        }
        assert_eq!(
            api.get(&format!("/config/{subject}-0")).await.body["compatibilityLevel"],
            "FULL_TRANSITIVE"
        );
        assert_eq!(
            api.get(&format!("/subjects/{subject}-1/versions"))
                .await
                .code(),
            40401,
            "soft delete survives"
        );
        assert_eq!(
            api.register_ok(&format!("{subject}-0"), &schema(0)).await,
            ids[0],
            "same schema, same id"
        );
    }
    let api = Api {
        base: &registry.url,
    };
    let next = api.register_ok(&unique("keep-next"), &schema(99)).await;
    assert!(
        next > *ids.iter().max().unwrap(),
        "new ids continue after the old ones"
    );
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn frozen_replica_loses_its_claim_and_retries() {
    // Replica A waits 1.5 s between planning a claim and appending it; we freeze it there.
    let a = Replica::start(&["--test-claim-delay-ms", "1500"]).await;
    let b = Replica::start_on(&a.topic, &[]).await;
    let (subject_a, subject_b) = (unique("frozen-a"), unique("frozen-b"));

    let url_a = a.url.clone();
    let (sa, schema_x) = (subject_a.clone(), schema(1));
    let registering =
        tokio::spawn(async move { Api { base: &url_a }.register(&sa, &schema_x).await });
    // Freeze A once it holds a planned claim (inside its 1.5 s window).
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.metric("rivulet_registry_claims_in_flight").await < 1.0 {
        assert!(Instant::now() < deadline, "A never planned its claim");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.pause();
    // While A is frozen holding a planned claim, B registers another schema: it takes the id A
    // planned.
    let id_y = Api { base: &b.url }
        .register_ok(&subject_b, &schema(2))
        .await;
    a.resume();
    let answer = registering.await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let id_x = answer.body["id"].as_u64().unwrap();
    assert_ne!(id_x, id_y, "one id, two schemas");
    assert!(
        a.metric("rivulet_registry_claim_conflicts_total").await >= 1.0,
        "A's first claim lost"
    );

    // Both replicas agree on both ids.
    for replica in [&a, &b] {
        let api = Api { base: &replica.url };
        let x: Value = serde_json::from_str(
            api.get(&format!("/schemas/ids/{id_x}")).await.body["schema"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let y: Value = serde_json::from_str(
            api.get(&format!("/schemas/ids/{id_y}")).await.body["schema"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (x["name"].as_str(), y["name"].as_str()),
            (Some("S1"), Some("S2"))
        );
        assert_eq!(
            api.get(&format!("/subjects/{subject_a}/versions/1"))
                .await
                .body["id"],
            json!(id_x)
        );
    }
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn concurrent_writers_on_two_replicas_agree() {
    let a = Replica::start(&[]).await;
    let b = Replica::start_on(&a.topic, &[]).await;
    let shared = unique("shared");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        // Every schema is registered twice, once on each replica, in its own subject and in one
        // shared subject, all at the same time.
        for (subject, n) in [
            (format!("{shared}-{i}"), i),
            (format!("{shared}-{i}"), i),
            (format!("{shared}-all"), i),
        ] {
            let url = url.clone();
            let s = record(
                "Shared",
                json!([{ "name": "v", "type": "long" }, { "name": format!("f{n}"), "type": ["null", "int"], "default": null }]),
            );
            tasks.push(tokio::spawn(async move {
                let answer = Api { base: &url }.register(&subject, &s).await;
                (n, answer)
            }));
        }
    }
    let mut by_schema: HashMap<usize, HashSet<u64>> = HashMap::new();
    for task in tasks {
        let (n, answer) = task.await.unwrap();
        // Each schema only adds an optional field, so every one is BACKWARD compatible with every
        // other and every registration must succeed.
        assert_eq!(answer.status, 200, "{answer:?}");
        by_schema
            .entry(n)
            .or_default()
            .insert(answer.body["id"].as_u64().unwrap());
    }
    let mut all_ids = HashSet::new();
    for (n, ids) in &by_schema {
        assert_eq!(ids.len(), 1, "schema {n} got one id everywhere: {ids:?}");
        assert!(
            all_ids.insert(*ids.iter().next().unwrap()),
            "no two schemas share an id"
        );
    }
    // Both replicas serve the same mapping.
    for id in &all_ids {
        let from_a = Api { base: &a.url }
            .get(&format!("/schemas/ids/{id}"))
            .await
            .body;
        let from_b = Api { base: &b.url }
            .get(&format!("/schemas/ids/{id}"))
            .await
            .body;
        assert_eq!(from_a, from_b);
    }
    let versions_a = Api { base: &a.url }
        .get(&format!("/subjects/{shared}-all/versions"))
        .await
        .body;
    let versions_b = Api { base: &b.url }
        .get(&format!("/subjects/{shared}-all/versions"))
        .await
        .body;
    assert_eq!(versions_a, versions_b);
    assert_eq!(versions_a.as_array().unwrap().len(), 24);
}
