//! 410 Gone: the monitor paused while its API server restarts (the watch is cut) and etcd is
//! compacted past the monitor's resourceVersion, on a private kube-apiserver without a watch
//! cache. Resumed, the monitor's watch gets 410, it lists again and publishes exactly what
//! changed: nothing lost, nothing for the unchanged object, the deletion it never saw as
//! DELETED plus tombstone.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::HashMap;
use std::time::Duration;

use rivulet_testkit::kube::PrivateApiServer;
use support::{Options, wait_for};

const TOPIC: &str = "k8s-configmaps";
const FLAGS: &str = "--watch-cache=false";

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn a_watch_expired_by_compaction_is_relisted_without_loss() {
    let server = PrivateApiServer::start(FLAGS);
    let client = rivulet_testkit::kube::client_for(&server.kubeconfig()).await;
    let ns = rivulet_testkit::kube::namespace(&client, "gone").await;
    let mut options = Options::new(&ns, "configmaps");
    options.kubeconfig = server.kubeconfig();
    // A renew deadline longer than the pause: woken, the monitor still leads, so its watch
    // (not a new term) meets the compaction.
    options.lease_ms = [120_000, 100_000, 2_000];
    for name in ["keep", "change", "remove"] {
        support::create_config_map(&client, &ns, name, "v1").await;
    }
    let monitor = support::start(&options);
    monitor.leading().await;
    wait_for(TOPIC, &ns, "three ADDED", |m| m.len() == 3).await;

    monitor.process.signal("STOP");
    server.restart(FLAGS);
    support::update_config_map(&client, &ns, "change", "v2").await;
    let changed = support::update_config_map(&client, &ns, "change", "v3").await;
    support::delete_config_map(&client, &ns, "remove").await;
    let added = support::create_config_map(&client, &ns, "new", "v1").await;
    server.compact();
    monitor.process.signal("CONT");

    monitor
        .until(
            "rivulet_k8s_monitor_watch_gone_total",
            "a 410",
            Duration::from_secs(60),
            |v| v >= 1.0,
        )
        .await;
    let cluster = support::config_maps(&client, &ns).await;
    let got = wait_for(TOPIC, &ns, "the state after the re-list", |m| {
        support::latest(m) == cluster
    })
    .await;
    let mut after: Vec<(String, String)> = Vec::new();
    let mut first: HashMap<&str, bool> = HashMap::new();
    for m in &got {
        // The first message of each original key is its ADDED from before the pause.
        let original = ["keep", "change", "remove"]
            .iter()
            .any(|n| m.key == format!("{ns}/{n}"));
        if original && !first.contains_key(m.key.as_str()) {
            first.insert(m.key.as_str(), true);
            continue;
        }
        let (event, rv) = m.change();
        after.push((m.key.clone(), format!("{event} {rv}")));
    }
    after.sort();
    assert_eq!(
        after,
        [
            (format!("{ns}/change"), format!("MODIFIED {changed}")),
            (format!("{ns}/new"), format!("ADDED {added}")),
            (format!("{ns}/remove"), "DELETED ".to_owned()),
            (format!("{ns}/remove"), "TOMBSTONE ".to_owned()),
        ],
        "exactly the changes made while the watch was gone, in their final state"
    );
}
