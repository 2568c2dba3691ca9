//! What a hostile client cannot do to a running registry.

#![allow(clippy::unwrap_used)] // tests

mod common;

use common::{Replica, http};

/// Every request with a made-up method is counted under `method="other"`: 300 distinct
/// methods (and unmatched paths) add no series beyond a handful.
#[tokio::test]
#[ignore = "needs Kafka"]
async fn made_up_methods_and_paths_do_not_create_series() {
    let replica = Replica::start(&[]).await;
    let before = series(&replica).await;
    for i in 0..300 {
        let answer = http::call(
            &format!("MADEUP{i}"),
            &format!("{}/schemas/ids/1", replica.url),
            None,
            &[],
        )
        .await;
        assert!(answer.status >= 400, "{answer:?}");
        http::call(
            "GET",
            &format!("{}/no/such/path/{i}", replica.url),
            None,
            &[],
        )
        .await;
    }
    let text = metrics(&replica).await;
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(!text.contains("/no/such/path"), "a raw path became a label");
    assert!(text.contains("method=\"other\""), "{text}");
    let after = series(&replica).await;
    assert!(
        after <= before + 4,
        "{before} series before, {after} after 600 hostile requests"
    );
}

async fn metrics(replica: &Replica) -> String {
    reqwest::get(format!("{}/metrics", replica.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn series(replica: &Replica) -> usize {
    metrics(replica)
        .await
        .lines()
        .filter(|l| l.starts_with("rivulet_registry_http_requests_total{"))
        .count()
}

/// A `_schemas` topic that compaction could rewrite (created compacted beforehand, as an old
/// manifest did) makes the registry refuse to start, naming the setting, and exit 1.
#[tokio::test]
#[ignore = "needs Kafka"]
async fn a_compacted_log_is_refused_at_start() {
    let topic = common::unique("_schemas-compacted");
    let kafka = rivulet_common::KafkaArgs::plaintext(rivulet_testkit::bootstrap());
    let admin = kafka.admin("test-admin").unwrap();
    rivulet_common::kafka::ensure_topic(&admin, &topic, 1, &[("cleanup.policy", "compact")])
        .await
        .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_schema-registry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--topic", &topic])
        .env("KAFKA_BOOTSTRAP_SERVERS", rivulet_testkit::bootstrap())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), output)
        .await
        .expect("the registry exits instead of serving")
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cleanup.policy=compact"), "{text}");
    assert!(
        text.contains("retention.ms=-1"),
        "names what it needs: {text}"
    );
}

/// A flood of look-ups of unknown ids shares a few log syncs instead of one each, and a schema
/// registered after the flood is still found by the next request.
#[tokio::test]
#[ignore = "needs Kafka"]
async fn unknown_id_floods_share_log_syncs() {
    let replica = Replica::start(&[]).await;
    let before = replica.metric("rivulet_registry_miss_syncs_total").await;
    let misses = 300;
    let calls = (0..misses).map(|i| {
        let url = format!("{}/schemas/ids/{}", replica.url, 1_000_000 + i);
        async move { http::call("GET", &url, None, &[]).await }
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.status, 404, "{answer:?}");
        assert_eq!(answer.code(), 40403, "{answer:?}");
    }
    let syncs = replica.metric("rivulet_registry_miss_syncs_total").await - before;
    assert!(syncs >= 1.0, "the misses caught up with the log");
    assert!(
        syncs <= f64::from(misses) / 4.0,
        "{syncs} syncs for {misses} concurrent misses"
    );
    // Registered through another replica after the flood: the next look-up here finds it.
    let other = Replica::start_on(&replica.topic, &[]).await;
    let subject = common::unique("after-flood");
    let schema = common::record(
        "AfterFlood",
        serde_json::json!([{"name": "n", "type": "int"}]),
    );
    let id = common::Api { base: &other.url }
        .register_ok(&subject, &schema)
        .await;
    let found = http::call(
        "GET",
        &format!("{}/schemas/ids/{id}", replica.url),
        None,
        &[],
    )
    .await;
    assert_eq!(found.status, 200, "{found:?}");
}

/// Oversized request heads and bodies are refused in Confluent's error shape before any work.
#[tokio::test]
#[ignore = "needs Kafka"]
async fn oversized_requests_are_refused() {
    let replica = Replica::start(&[]).await;
    let long = format!("{}/subjects/{}/versions", replica.url, "s".repeat(10_000));
    let answer = http::call("GET", &long, None, &[]).await;
    assert_eq!(answer.status, 414, "{answer:?}");
    assert_eq!(answer.body["error_code"], 41400, "{answer:?}");
    let big = "v".repeat(8_000);
    let headers: Vec<(String, String)> = (0..5)
        .map(|i| (format!("x-pad-{i}"), big.clone()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = http::call("GET", &format!("{}/subjects", replica.url), None, &headers).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(answer.body["error_code"], 43100, "{answer:?}");
    // A 3 MB registration: 413, and the registry still serves.
    let schema = format!(r#"{{"schema": "\"{}\""}}"#, "x".repeat(3 << 20));
    let url = format!("{}/subjects/big/versions", replica.url);
    let answer = http::call("POST", &url, Some(&schema), &[]).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let answer = http::call("GET", &format!("{}/subjects", replica.url), None, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
