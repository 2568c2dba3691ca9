//! Two operator replicas on one Lease: only the leader writes; kill -9 it and the other carries
//! on.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{
    Operator, create_consumer, deployments, image, patch_spec, setup, start, template, until,
};

const WITHIN: Duration = Duration::from_secs(60);

async fn leads(op: &Operator) -> bool {
    op.process.metric("rivulet_autoscaler_leader").await == 1.0
}

async fn writes(op: &Operator) -> f64 {
    let mut n = 0.0;
    for verb in ["create", "replace", "delete", "patch"] {
        n += op
            .process
            .metric(&format!(
                "rivulet_autoscaler_api_requests_total{{verb=\"{verb}\"}}"
            ))
            .await;
    }
    n
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver"]
async fn only_the_leader_writes_and_the_other_takes_over() {
    let (client, ns) = setup("csm-failover").await;
    let mut a = start(&ns, "autoscaler", &[]);
    a.leading().await;
    let b = start(&ns, "autoscaler", &[]);
    b.process.wait_ok("/readyz", WITHIN).await;
    create_consumer(
        &client,
        &ns,
        "orders",
        serde_json::json!({
            "numPartitions": 4, "numPartitionsPerInstance": 2, "name": "orders", "namespace": &ns,
            "deploymentTemplate": template("orders:1"),
        }),
    )
    .await;
    until(&a, WITHIN, || async {
        let n = deployments(&client, &ns).await.len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} deployments"))
        }
    })
    .await;
    assert!(!leads(&b).await, "one leader");
    assert!(writes(&a).await >= 2.0);
    assert_eq!(
        writes(&b).await,
        0.0,
        "the follower writes nothing:\n{}",
        b.logs()
    );

    a.process.signal("KILL");
    a.process.kill();
    let deadline = Instant::now() + WITHIN;
    while !leads(&b).await {
        assert!(
            Instant::now() < deadline,
            "b did not take over:\n{}",
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    patch_spec(
        &client,
        &ns,
        "orders",
        serde_json::json!({"deploymentTemplate": template("orders:2")}),
    )
    .await;
    until(&b, WITHIN, || async {
        let images: Vec<String> = deployments(&client, &ns).await.iter().map(image).collect();
        if images == ["orders:2"; 2] {
            Ok(())
        } else {
            Err(format!("images {images:?}"))
        }
    })
    .await;
    assert!(writes(&b).await >= 2.0, "the new leader wrote them");
}
