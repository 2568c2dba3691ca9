//! Real lag through the `kafka` provider: a producer at a known rate into a 6-partition topic on
//! the real broker, a group that stays a known number of records behind on two partitions, and
//! the operator on the real API server sizing the instances from what it measures.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, WatchEvent, WatchParams};
use rivulet_consumer_autoscaler::crd::Consumer;
use support::load::Load;
use support::{
    condition, create_consumer, grows, patch_spec, setup, start, template, until, versions,
};

const WITHIN: Duration = Duration::from_secs(60);

fn annotation(d: &Deployment, key: &str) -> String {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

/// Follows `name`'s (scaling-status, CPU request) through every write, from a watch.
fn states(api: Api<Deployment>, name: &str) -> Arc<Mutex<Vec<(String, String)>>> {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (out, name) = (seen.clone(), name.to_owned());
    tokio::spawn(async move {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let stream = api.watch(&params, "0").await.unwrap();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(WatchEvent::Added(d) | WatchEvent::Modified(d))) = stream.next().await {
            let state = annotation(&d, "konsumerator.lwolf.org/scaling-status");
            let entry = (state, requests(&d).0);
            let mut out = out.lock().unwrap();
            if out.last() != Some(&entry) {
                out.push(entry);
            }
        }
    });
    seen
}

fn requests(d: &Deployment) -> (String, String) {
    let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
    let r = c
        .resources
        .clone()
        .unwrap_or_default()
        .requests
        .unwrap_or_default();
    let get = |k: &str| r.get(k).map(|q| q.0.clone()).unwrap_or_default();
    (get("cpu"), get("memory"))
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver and broker"]
async fn the_kafka_provider_measures_lag_and_the_operator_scales_the_laggards() {
    let (client, ns) = setup("csm-lag").await;
    // 20 records/s into each of 6 partitions; the group 600 records (30 s) behind on 4 and 5.
    let load = Load::start(6, 20, vec![0, 0, 0, 0, 600, 600]).await;
    let op = start(&ns, "autoscaler", &["--kafka-timeout-ms", "3000"]);
    op.leading().await;
    create_consumer(&client, &ns, "orders", serde_json::json!({
        "numPartitions": 6, "numPartitionsPerInstance": 2, "name": "orders", "namespace": &ns,
        "autoscaler": {
            "mode": "kafka", "pendingScaleUpDuration": "3s", "pendingScaleDownDuration": "1h",
            "kafka": {
                "bootstrapServers": rivulet_testkit::bootstrap(), "topic": &load.topic,
                "groupId": &load.group, "minSyncPeriod": "2s",
                "ratePerCore": 100, "ramPerCore": "100M", "tolerableLag": "10s",
                "criticalLag": "1h", "recoveryTime": "60s"
            }
        },
        "deploymentTemplate": template("orders:1"),
        "resourcePolicy": {"containerPolicies": [{"containerName": "app",
            "minAllowed": {"cpu": "100m", "memory": "100M"}, "maxAllowed": {"cpu": 4, "memory": "4G"}}]}
    }))
    .await;
    let consumers: Api<Consumer> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);

    // Every state orders-2 goes through, from the API server's watch.
    let history = states(deployments.clone(), "orders-2");
    // The truth: the rate the load reaches (records sent per partition over 5 s).
    let count = || load.produced[0].load(std::sync::atomic::Ordering::Relaxed);
    let (c0, t0) = (count(), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let truth = (count() - c0) as f64 / t0.elapsed().as_secs_f64();
    assert!(
        (truth - 20.0).abs() < 2.0,
        "the load reaches its rate: {truth}/s"
    );
    let near = |measured: i64, want: f64| (measured as f64 - want).abs() <= 0.1 * want;
    // What the operator measures, within 10 % of that: the rate everywhere, 600 behind on 4
    // and 5, (next to) nothing on the others.
    until(&op, WITHIN, || async {
        let s = consumers
            .get("orders")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        let state = s.last_sync_state.unwrap_or_default();
        let ok = (0..6).all(|p| {
            let Some(x) = state.get(&p.to_string()) else {
                return false;
            };
            let behind_ok = if p >= 4 {
                near(x.messages_behind, 600.0)
            } else {
                x.messages_behind <= 10
            };
            near(x.production_rate, truth) && behind_ok
        });
        if ok {
            Ok(())
        } else {
            Err(format!("last sync state {state:?}"))
        }
    })
    .await;

    // orders-2 (partitions 4, 5) lags: PENDING_SCALE_UP, then after 3 s the predicted requests:
    // each partition 20/s × (1 + 30 s / 60 s) = 30/s, 60/s at 100 per core → 600m, limit 1
    // core → 100M. The others do not lag and stay at the minimum.
    until(&op, WITHIN, || async {
        let d = deployments.get("orders-2").await.unwrap();
        let state = annotation(&d, "konsumerator.lwolf.org/scaling-status");
        if requests(&d) == ("600m".into(), "100M".into()) && state == "RUNNING" {
            Ok(())
        } else {
            Err(format!("orders-2: {:?} {state}", requests(&d)))
        }
    })
    .await;
    let seen = history.lock().unwrap().clone();
    let pending = seen.iter().position(|(s, _)| s == "PENDING_SCALE_UP");
    let scaled = seen.iter().position(|(_, cpu)| cpu == "600m");
    assert!(
        matches!((pending, scaled), (Some(p), Some(s)) if p < s),
        "orders-2 went through PENDING_SCALE_UP before it was scaled: {seen:?}"
    );
    for name in ["orders-0", "orders-1"] {
        let d = deployments.get(name).await.unwrap();
        assert_eq!(
            requests(&d),
            ("100m".into(), "100M".into()),
            "{name} does not lag"
        );
    }
    let s = consumers.get("orders").await.unwrap().status.unwrap();
    assert_eq!(s.lagging, Some(1));

    // Critical lag (30 s ≥ 20 s): the policy's maximum.
    patch_spec(
        &client,
        &ns,
        "orders",
        serde_json::json!({"autoscaler": {"kafka": {"criticalLag": "20s"}}}),
    )
    .await;
    until(&op, WITHIN, || async {
        let d = deployments.get("orders-2").await.unwrap();
        if requests(&d) == ("4".into(), "4G".into()) {
            Ok(())
        } else {
            Err(format!("orders-2: {:?}", requests(&d)))
        }
    })
    .await;

    // A global pool of 5 cores, and now partitions 0 and 1 lag too: orders-0 wants 4 cores, the
    // pool has 5 - (0.1 + 0.1 + 4) = 0.8 more: it gets 900m and is SATURATED, 3,100m short.
    patch_spec(
        &client,
        &ns,
        "orders",
        serde_json::json!({"resourcePolicy": {
        "globalPolicy": {"maxAllowed": {"cpu": 5, "memory": "100G"}}}}),
    )
    .await;
    *load.behind.lock().unwrap() = vec![600, 600, 0, 0, 600, 600];
    until(&op, WITHIN, || async {
        let d = deployments.get("orders-0").await.unwrap();
        let state = annotation(&d, "konsumerator.lwolf.org/scaling-status");
        let short = annotation(&d, "konsumerator.lwolf.org/cpu-saturation-level");
        if state == "SATURATED" && short == "3100" && requests(&d).0 == "900m" {
            Ok(())
        } else {
            Err(format!(
                "orders-0: {state} short {short:?} {:?}",
                requests(&d)
            ))
        }
    })
    .await;

    // Kafka unreachable: the sync fails, is counted and shown; nothing is scaled on it.
    let names = ["orders-0", "orders-1", "orders-2"];
    let before = versions(&deployments, &names).await;
    patch_spec(
        &client,
        &ns,
        "orders",
        serde_json::json!({"autoscaler": {"kafka": {
        "bootstrapServers": format!("127.0.0.1:{}", rivulet_testkit::widgets::free_port())}}}),
    )
    .await;
    until(&op, WITHIN, || async {
        match condition(&consumers, "orders", "MetricsAvailable").await {
            Some(c) if c.status == "False" => Ok(()),
            other => Err(format!("MetricsAvailable {other:?}")),
        }
    })
    .await;
    let errors = op
        .process
        .metric_sum("rivulet_autoscaler_kafka_sync_errors_total")
        .await;
    assert!(errors >= 1.0, "sync errors counted: {errors}");
    // Two more failed syncs later, the Deployments are as they were.
    grows(&op, "rivulet_autoscaler_kafka_sync_errors_total", 2.0).await;
    assert_eq!(
        versions(&deployments, &names).await,
        before,
        "untouched while Kafka is away"
    );
    drop(load);
}
