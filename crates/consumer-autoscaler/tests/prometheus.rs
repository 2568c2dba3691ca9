//! The `prometheus` provider with Konsumerator's three queries against a real Prometheus
//! holding known series (backfilled with promtool), so the expected lag and rates are exact;
//! the first of two addresses does not answer (the other's answer wins); then Prometheus goes
//! away and nothing is scaled on missing data.
#![allow(clippy::unwrap_used)]

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use rivulet_consumer_autoscaler::crd::{Consumer, InstanceState};
use rivulet_testkit::prometheus::Server;
use support::{condition, create_consumer, grows, setup, start, template, until, versions};

const WITHIN: Duration = Duration::from_secs(60);

/// Ten minutes of the three series up to now, every 15 s: 20 produced/s on each of 6
/// partitions, 20 consumed/s on 0-3 and none on 4 and 5, which are 600 behind.
fn series() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut out = String::new();
    for (name, value) in [
        ("csm_produced_rate", (|_p: i32| 20) as fn(i32) -> i64),
        ("csm_consumed_rate", |p| if p >= 4 { 0 } else { 20 }),
        ("csm_messages_behind", |p| if p >= 4 { 600 } else { 0 }),
    ] {
        writeln!(out, "# TYPE {name} gauge").unwrap();
        for p in 0..6 {
            for t in (now - 600..now).step_by(15) {
                writeln!(
                    out,
                    "{name}{{topic=\"orders\",partition=\"{p}\"}} {} {t}",
                    value(p)
                )
                .unwrap();
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn cpu(d: &Deployment) -> String {
    let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
    c.resources
        .clone()
        .unwrap_or_default()
        .requests
        .unwrap_or_default()["cpu"]
        .0
        .clone()
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver; and Debian's prometheus"]
async fn the_prometheus_provider_reads_the_three_queries() {
    let prometheus = Server::with_openmetrics(&series()).await;
    let (client, ns) = setup("csm-prom").await;
    let op = start(&ns, "autoscaler", &["--prometheus-timeout-ms", "2000"]);
    op.leading().await;
    let dead = format!("http://127.0.0.1:{}", rivulet_testkit::widgets::free_port());
    let query = |m: &str| serde_json::json!({"query": format!("sum({m}{{topic=\"orders\"}}) by (partition)"), "partitionLabel": "partition"});
    create_consumer(&client, &ns, "orders", serde_json::json!({
        "numPartitions": 6, "numPartitionsPerInstance": 2, "name": "orders", "namespace": &ns,
        "autoscaler": {
            "mode": "prometheus", "pendingScaleUpDuration": "2s",
            "prometheus": {
                "address": [&dead, &prometheus.url], "minSyncPeriod": "2s",
                "offset": query("csm_messages_behind"), "production": query("csm_produced_rate"),
                "consumption": query("csm_consumed_rate"),
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

    // Exactly the series.
    until(&op, WITHIN, || async {
        let s = consumers
            .get("orders")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        let state = s.last_sync_state.unwrap_or_default();
        let want = |p: i32| InstanceState {
            production_rate: 20,
            consumption_rate: if p >= 4 { 0 } else { 20 },
            messages_behind: if p >= 4 { 600 } else { 0 },
        };
        if (0..6).all(|p| state.get(&p.to_string()) == Some(&want(p))) {
            Ok(())
        } else {
            Err(format!("last sync state {state:?}"))
        }
    })
    .await;
    // Created with the first sync's figures at hand, each instance starts at its estimate:
    // orders-0 and -1 at 2 × 20/s = 400m; orders-2, 30 s behind on 4 and 5, at
    // 20 × (1 + 30/60) = 30/s each → 600m.
    until(&op, WITHIN, || async {
        let d = deployments.get("orders-2").await.unwrap();
        if cpu(&d) == "600m" {
            Ok(())
        } else {
            Err(format!("orders-2 at {}", cpu(&d)))
        }
    })
    .await;
    for n in ["orders-0", "orders-1"] {
        assert_eq!(cpu(&deployments.get(n).await.unwrap()), "400m", "{n}");
    }
    // The dead address was asked and counted; the live one answered.
    let exposition = reqwest::get(op.process.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors = rivulet_testkit::metric_value(
        &exposition,
        &format!(
            "konsumerator_prometheus_mp_sub_requests_errors_total{{consumer=\"orders\",addr=\"{dead}\"}}"
        ),
    );
    assert!(
        errors >= 1.0,
        "the dead address's errors: {errors}\n{exposition}"
    );
    let lag = rivulet_testkit::metric_value(
        &exposition,
        "konsumerator_prometheus_mp_lag_observed_seconds{consumer=\"orders\",partition=\"4\"}",
    );
    assert_eq!(lag, 30.0);

    // Prometheus gone: syncs fail, are counted and shown; the Deployments stay as they are.
    let names = ["orders-0", "orders-1", "orders-2"];
    let before = versions(&deployments, &names).await;
    drop(prometheus);
    until(&op, WITHIN, || async {
        match condition(&consumers, "orders", "MetricsAvailable").await {
            Some(c) if c.status == "False" && c.reason == "SyncFailed" => Ok(()),
            other => Err(format!("MetricsAvailable {other:?}")),
        }
    })
    .await;
    grows(&op, "konsumerator_prometheus_mp_requests_errors_total", 2.0).await;
    assert_eq!(versions(&deployments, &names).await, before, "untouched");
}
