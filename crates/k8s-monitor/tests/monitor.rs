//! The monitor against the test stack's real kube-apiserver and broker: one message per
//! change, secrets never leave with their values, restarts publish only what changed, and a
//! missing RBAC rule is named.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Options, wait_for};

const SECRET_VALUE: &str = "s3cr3t-hunter2-value";
const SECRET_VALUE_2: &str = "second-s3cr3t-after-update";

fn events(messages: &[support::Message], key: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.key == key)
        .map(support::Message::event)
        .collect()
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn each_change_is_one_message_with_its_key_and_envelope_and_secrets_stay_secret() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "mon").await;
    let monitor = support::start(&Options::new(
        &ns,
        "configmaps,secrets,deployments,services,events",
    ));
    monitor.leading().await;

    // ConfigMap: create, update, delete.
    support::create_config_map(&client, &ns, "cm", "one").await;
    support::update_config_map(&client, &ns, "cm", "two").await;
    support::delete_config_map(&client, &ns, "cm").await;

    // Secret: create, update, delete.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"stringData\":{{\"password\":\"{SECRET_VALUE}\"}}}}")}},
        "stringData": {"password": SECRET_VALUE}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let patch = json!({"stringData": {"password": SECRET_VALUE_2}});
    secrets
        .patch("creds", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    secrets.delete("creds", &Default::default()).await.unwrap();

    // Deployment: create, scale, delete (no controller-manager: it makes no Pods).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let patch = json!({"spec": {"replicas": 3}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    deployments
        .delete("web", &Default::default())
        .await
        .unwrap();

    // Service: create, label, delete.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let patch = json!({"metadata": {"labels": {"tier": "front"}}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    services.delete("web", &Default::default()).await.unwrap();

    // Event: create, count again, delete.
    let events_api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "web.1"}, "involvedObject": {"kind": "Deployment", "name": "web", "namespace": ns},
        "reason": "Tested", "message": "a test event", "type": "Normal", "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "test"}
    }))
    .unwrap();
    events_api
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    let patch = json!({"count": 2});
    events_api
        .patch("web.1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    events_api
        .delete("web.1", &Default::default())
        .await
        .unwrap();

    let full = ["ADDED", "MODIFIED", "DELETED", "TOMBSTONE"];
    for (topic, name) in [
        ("k8s-configmaps", "cm"),
        ("k8s-secrets", "creds"),
        ("k8s-deployments", "web"),
        ("k8s-services", "web"),
    ] {
        let key = format!("{ns}/{name}");
        let got = wait_for(topic, &ns, "create, update, delete", |m| {
            events(m, &key).len() >= 4
        })
        .await;
        assert_eq!(events(&got, &key), full, "{topic}");
        let added = got[0].value.as_ref().unwrap();
        assert_eq!(added["cluster"], "test");
        assert_eq!(added["namespace"], ns.as_str());
        assert_eq!(added["resource_type"], &topic["k8s-".len()..]);
        assert_eq!(added["object"]["metadata"]["name"], name);
        assert_eq!(added["uid"], added["object"]["metadata"]["uid"]);
        assert_eq!(
            added["resource_version"],
            added["object"]["metadata"]["resourceVersion"]
        );
        assert!(
            added["object"]["metadata"].get("managedFields").is_none(),
            "managedFields are dropped"
        );
        // Each message is the state of a later resourceVersion.
        let rvs: Vec<u64> = got
            .iter()
            .take(3)
            .map(|m| m.resource_version().parse().unwrap())
            .collect();
        assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{topic}: {rvs:?}");
    }
    // Events: no tombstone after the deletion (the topic uses the delete policy).
    let key = format!("{ns}/web.1");
    let got = wait_for("k8s-events", &ns, "event changes", |m| {
        events(m, &key).len() >= 3
    })
    .await;
    assert_eq!(events(&got, &key), ["ADDED", "MODIFIED", "DELETED"]);
    assert_eq!(got[1].value.as_ref().unwrap()["object"]["count"], 2);

    // The Secret's values appear nowhere: not in values, headers, the log or the metrics.
    let secret_messages = support::messages("k8s-secrets", &ns).await;
    let encoded = [SECRET_VALUE, SECRET_VALUE_2].map(|v| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(v)
    });
    let metrics = reqwest::get(monitor.process.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = monitor.logs();
    for needle in [SECRET_VALUE, SECRET_VALUE_2, &encoded[0], &encoded[1]] {
        for m in &secret_messages {
            let raw = String::from_utf8_lossy(m.raw.as_deref().unwrap_or_default()).into_owned();
            assert!(!raw.contains(needle), "secret value in a message: {raw}");
            assert!(
                m.headers.values().all(|h| !h.contains(needle)),
                "secret value in headers"
            );
        }
        assert!(!logs.contains(needle), "secret value in the log");
        assert!(!metrics.contains(needle), "secret value in the metrics");
    }
    let added = secret_messages[0].value.as_ref().unwrap();
    let password = added["object"]["data"]["password"].as_str().unwrap();
    assert!(password.starts_with("hmac-sha256:"), "{password}");
    let modified = secret_messages[1].value.as_ref().unwrap();
    assert_ne!(
        modified["object"]["data"]["password"], password,
        "a changed value shows as changed"
    );
    assert!(
        added["object"]["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn a_restart_publishes_exactly_what_changed_while_it_was_stopped() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "restart").await;
    let options = Options::new(&ns, "configmaps");
    for name in ["keep", "change", "remove"] {
        support::create_config_map(&client, &ns, name, "v1").await;
    }
    let mut monitor = support::start(&options);
    monitor.leading().await;
    wait_for("k8s-configmaps", &ns, "three ADDED", |m| m.len() == 3).await;
    monitor.process.signal("TERM");
    monitor.process.child.wait().unwrap();

    let changed = support::update_config_map(&client, &ns, "change", "v2").await;
    support::update_config_map(&client, &ns, "change", "v3").await;
    let changed_last = support::update_config_map(&client, &ns, "change", "v4").await;
    support::delete_config_map(&client, &ns, "remove").await;
    let added = support::create_config_map(&client, &ns, "new", "v1").await;
    assert_ne!(changed, changed_last);

    let monitor = support::start(&options);
    monitor.leading().await;
    let got = wait_for(
        "k8s-configmaps",
        &ns,
        "the changes made while stopped",
        |m| m.len() >= 7,
    )
    .await;
    // What came after the restart: per key, the messages past the one it had before.
    let mut seen_before: std::collections::HashMap<String, usize> = ["keep", "change", "remove"]
        .iter()
        .map(|n| (format!("{ns}/{n}"), 1))
        .collect();
    let mut after: Vec<(String, String)> = Vec::new();
    for m in &got {
        match seen_before.get_mut(&m.key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => after.push((
                m.key.clone(),
                format!("{} {}", m.event(), m.resource_version()),
            )),
        }
    }
    after.sort();
    let removed_rv = got
        .iter()
        .find(|m| m.key.ends_with("/remove"))
        .map(support::Message::resource_version)
        .unwrap();
    assert_eq!(
        after,
        [
            (format!("{ns}/change"), format!("MODIFIED {changed_last}")),
            (format!("{ns}/new"), format!("ADDED {added}")),
            (format!("{ns}/remove"), format!("DELETED {removed_rv}")),
            (format!("{ns}/remove"), "TOMBSTONE ".to_owned()),
        ],
        "one message per change made while stopped, in its final state, nothing for the unchanged object"
    );
    assert_eq!(
        support::latest(&got),
        support::config_maps(&client, &ns).await
    );
    // The unchanged object was compared, not republished.
    assert!(
        monitor
            .process
            .metric_sum("rivulet_k8s_monitor_changes_unchanged_total")
            .await
            >= 1.0
    );
    // And a second restart publishes nothing at all.
    drop(monitor);
    let monitor = support::start(&options);
    monitor.leading().await;
    // Ready means listed: anything it found different would wait in `pending` by now.
    assert_eq!(
        monitor
            .process
            .metric_sum("rivulet_k8s_monitor_changes_unchanged_total")
            .await,
        3.0
    );
    assert_eq!(
        monitor.process.metric("rivulet_k8s_monitor_pending").await,
        0.0
    );
    assert_eq!(
        monitor
            .process
            .metric_sum("rivulet_k8s_monitor_changes_published_total")
            .await,
        0.0
    );
    assert_eq!(
        support::messages("k8s-configmaps", &ns).await.len(),
        got.len()
    );
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn without_the_permissions_it_needs_the_monitor_names_each_one() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "rbac").await;
    let mut options = Options::new(&ns, "configmaps,deployments");
    options.kubeconfig = rivulet_testkit::kube::unprivileged_kubeconfig();
    let mut monitor = support::start(&options);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = monitor.process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running without permissions:\n{}",
            monitor.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let logs = monitor.logs();
    for needle in [
        "lacks 7 permission(s)",
        &format!("list configmaps (core) in namespace {ns}"),
        &format!("watch deployments (apps) in namespace {ns}"),
        &format!("update leases (coordination.k8s.io) in namespace {ns}"),
    ] {
        assert!(logs.contains(needle), "{needle:?} not in:\n{logs}");
    }
}
