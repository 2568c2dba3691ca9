//! The operator against the test stack's real kube-apiserver (no controller-manager: Deployments
//! make no pods and nothing is garbage-collected, so owner references are asserted, not waited
//! for): one Deployment per partition group, kept as the Consumer says.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use rivulet_consumer_autoscaler::crd::Consumer;
use support::{
    condition, create_consumer, deployments, env, image, patch_spec, setup, start, template, until,
};

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver"]
async fn deployments_follow_the_consumer() {
    let (client, ns) = setup("csm-deploy").await;
    let op = start(&ns, "autoscaler", &[]);
    op.leading().await;
    let consumer = create_consumer(
        &client,
        &ns,
        "orders-consumer",
        serde_json::json!({
            "numPartitions": 6, "numPartitionsPerInstance": 2, "name": "orders", "namespace": &ns,
            "deploymentTemplate": template("orders:1"),
        }),
    )
    .await;
    let uid = consumer.metadata.uid.clone().unwrap();

    // 6 partitions, 2 per instance: orders-0..2 with the reference's env, labels, annotations.
    until(&op, WITHIN, || async {
        let d = deployments(&client, &ns).await;
        let names: Vec<_> = d.iter().filter_map(|d| d.metadata.name.clone()).collect();
        if names != ["orders-0", "orders-1", "orders-2"] {
            return Err(format!("deployments {names:?}"));
        }
        Ok(())
    })
    .await;
    for (i, d) in deployments(&client, &ns).await.iter().enumerate() {
        let e = env(d);
        let partitions = format!("{},{}", 2 * i, 2 * i + 1);
        assert_eq!(e["KONSUMERATOR_PARTITION"], partitions);
        assert_eq!(e["KONSUMERATOR_INSTANCE"], i.to_string());
        assert_eq!(e["KONSUMERATOR_NUM_PARTITIONS"], "6");
        assert_eq!(e["KONSUMERATOR_NUM_INSTANCES"], "3");
        assert_eq!(e["GOMAXPROCS"], "1");
        let labels = d.metadata.labels.clone().unwrap();
        assert_eq!(labels["controller"], "orders-consumer");
        assert_eq!(labels["partitions"], format!("{}-{}", 2 * i, 2 * i + 1));
        let a = d.metadata.annotations.clone().unwrap();
        assert_eq!(a["konsumerator.lwolf.org/partition"], partitions);
        assert_eq!(a["konsumerator.lwolf.org/consumer-id"], i.to_string());
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Consumer", uid.as_str(), Some(true))
        );
        let spec = &d.spec;
        assert_eq!(
            spec.strategy.as_ref().unwrap().type_.as_deref(),
            Some("Recreate")
        );
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap()["rivulet.io/consumer-instance"],
            format!("orders-{i}")
        );
    }
    // The status counts, as the printer columns show them.
    let consumers: Api<Consumer> = Api::namespaced(client.clone(), &ns);
    until(&op, WITHIN, || async {
        let s = consumers
            .get("orders-consumer")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        match (s.expected, s.running, s.missing) {
            (Some(3), Some(3), Some(0)) => Ok(()),
            other => Err(format!("status (expected, running, missing) {other:?}")),
        }
    })
    .await;

    // A new template: every instance rebuilt from it.
    patch_spec(
        &client,
        &ns,
        "orders-consumer",
        serde_json::json!({"deploymentTemplate": template("orders:2")}),
    )
    .await;
    until(&op, WITHIN, || async {
        let images: Vec<String> = deployments(&client, &ns).await.iter().map(image).collect();
        if images == ["orders:2"; 3] {
            Ok(())
        } else {
            Err(format!("images {images:?}"))
        }
    })
    .await;

    // A deleted instance comes back.
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let old = api.get("orders-1").await.unwrap().metadata.uid;
    api.delete("orders-1", &DeleteParams::default())
        .await
        .unwrap();
    until(&op, WITHIN, || async {
        match api.get_opt("orders-1").await.unwrap() {
            Some(d) if d.metadata.uid != old => Ok(()),
            _ => Err("orders-1 not recreated".into()),
        }
    })
    .await;

    // Other groups (8 partitions by 3: [0,1,2] [3,4,5] [6,7]): every drifted instance replaced.
    patch_spec(
        &client,
        &ns,
        "orders-consumer",
        serde_json::json!({"numPartitions": 8, "numPartitionsPerInstance": 3}),
    )
    .await;
    until(&op, WITHIN, || async {
        let d = deployments(&client, &ns).await;
        let got: Vec<String> = d
            .iter()
            .map(|d| env(d)["KONSUMERATOR_PARTITION"].clone())
            .collect();
        if got == ["0,1,2", "3,4,5", "6,7"] {
            Ok(())
        } else {
            Err(format!("partitions {got:?}"))
        }
    })
    .await;

    // Stopping a consumer: replicas 0 in the template.
    let mut stopped = template("orders:2");
    stopped["replicas"] = 0.into();
    patch_spec(
        &client,
        &ns,
        "orders-consumer",
        serde_json::json!({"deploymentTemplate": stopped}),
    )
    .await;
    until(&op, WITHIN, || async {
        let r: Vec<_> = deployments(&client, &ns)
            .await
            .iter()
            .map(|d| d.spec.replicas)
            .collect();
        if r == [Some(0); 3] {
            Ok(())
        } else {
            Err(format!("replicas {r:?}"))
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver"]
async fn a_bad_template_is_refused_by_dry_run_and_reported() {
    let (client, ns) = setup("csm-dryrun").await;
    let op = start(&ns, "autoscaler", &[]);
    op.leading().await;
    // Structurally a DeploymentSpec, but the selector does not match the pod labels.
    let mut bad = template("orders:1");
    bad["selector"]["matchLabels"]["app"] = "other".into();
    create_consumer(
        &client,
        &ns,
        "bad",
        serde_json::json!({
            "numPartitions": 2, "name": "bad", "namespace": &ns, "deploymentTemplate": bad,
        }),
    )
    .await;
    let consumers: Api<Consumer> = Api::namespaced(client.clone(), &ns);
    until(&op, WITHIN, || async {
        match condition(&consumers, "bad", "TemplateValid").await {
            Some(c) if c.status == "False" && c.message.contains("selector") => Ok(()),
            other => Err(format!("TemplateValid {other:?}")),
        }
    })
    .await;
    assert!(
        deployments(&client, &ns).await.is_empty(),
        "nothing written for a refused template"
    );
    // A spec the operator cannot act on says why.
    create_consumer(&client, &ns, "elsewhere", serde_json::json!({
        "numPartitions": 2, "name": "x", "namespace": "kube-system", "deploymentTemplate": template("x:1"),
    }))
    .await;
    until(&op, WITHIN, || async {
        match condition(&consumers, "elsewhere", "Ready").await {
            Some(c) if c.reason == "InvalidSpec" && c.message.contains("cross namespaces") => {
                Ok(())
            }
            other => Err(format!("Ready {other:?}")),
        }
    })
    .await;
}

/// A manifest written for Konsumerator (`konsumerator.lwolf.org/v1`, every field its README's
/// example uses, values of this test's own) works with only `apiVersion` changed.
#[tokio::test]
#[ignore = "needs the test stack (scripts/test): a real kube-apiserver"]
async fn a_konsumerator_manifest_works_with_the_api_version_changed() {
    let (client, ns) = setup("csm-compat").await;
    let op = start(&ns, "autoscaler", &[]);
    op.leading().await;
    let mut manifest = serde_json::json!({
        "apiVersion": "konsumerator.lwolf.org/v1",
        "kind": "Consumer",
        "metadata": {"name": "clicks", "namespace": &ns},
        "spec": {
            "numPartitions": 4,
            "numPartitionsPerInstance": 1,
            "name": "clicks-consumer",
            "namespace": &ns,
            "autoscaler": {
                "mode": "prometheus",
                "prometheus": {
                    "minSyncPeriod": "30s",
                    "tolerableLag": "2m",
                    "ratePerCore": 5000,
                    "ramPerCore": "256M",
                    "criticalLag": "20m",
                    "recoveryTime": "10m",
                    "address": ["http://127.0.0.1:1"],
                    "offset": {"query": "sum(clicks_lag) by (partition)", "partitionLabel": "partition"},
                    "production": {"query": "sum(rate(clicks_in[2m])) by (partition)", "partitionLabel": "partition"},
                    "consumption": {"query": "sum(rate(clicks_out[2m])) by (partition)", "partitionLabel": "partition"}
                }
            },
            "partitionEnvKey": "CLICK_PARTITIONS",
            "deploymentTemplate": {
                "replicas": 1,
                "strategy": {"type": "RollingUpdate"},
                "selector": {"matchLabels": {"app": "clicks"}},
                "template": {
                    "metadata": {"labels": {"app": "clicks"}},
                    "spec": {"containers": [
                        {"image": "clicks:3", "name": "logger", "command": ["/bin/sh", "-c", "sleep 100"]},
                        {"image": "clicks:3", "name": "clicks"}
                    ]}
                }
            },
            "resourcePolicy": {"containerPolicies": [
                {"containerName": "clicks", "minAllowed": {"cpu": "200m", "memory": "128M"},
                 "maxAllowed": {"cpu": 2, "memory": "1G"}},
                {"containerName": "logger", "minAllowed": {"cpu": "50m", "memory": "32M"},
                 "maxAllowed": {"cpu": "50m", "memory": "32M"}}
            ]}
        }
    });
    manifest["apiVersion"] = "rivulet.io/v1alpha1".into();
    let resource = ApiResource::erase::<Consumer>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let object: DynamicObject = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .expect("the API server accepts it");
    until(&op, WITHIN, || async {
        let d = deployments(&client, &ns).await;
        if d.len() != 4 {
            return Err(format!("{} deployments", d.len()));
        }
        // No metrics (that Prometheus does not answer): each container at its policy's minimum.
        let pod = d[2].spec.template.spec.clone().unwrap();
        let clicks = pod.containers.iter().find(|c| c.name == "clicks").unwrap();
        let requests = clicks.resources.clone().unwrap().requests.unwrap();
        let env: Vec<_> = clicks
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap()))
            .collect();
        let strategy = d[2].spec.strategy.clone().unwrap().type_;
        match (requests["cpu"].0.as_str(), strategy.as_deref()) {
            ("200m", Some("Recreate"))
                if env.contains(&("CLICK_PARTITIONS".into(), "2".into())) =>
            {
                Ok(())
            }
            other => Err(format!("clicks-consumer-2: {other:?} {env:?}")),
        }
    })
    .await;
    let consumers: Api<Consumer> = Api::namespaced(client.clone(), &ns);
    until(&op, WITHIN, || async {
        match condition(&consumers, "clicks", "MetricsAvailable").await {
            Some(c) if c.status == "False" && c.message.contains("127.0.0.1:1") => Ok(()),
            other => Err(format!("MetricsAvailable {other:?}")),
        }
    })
    .await;
}
