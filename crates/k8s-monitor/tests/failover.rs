//! Two replicas of one monitor deployment (one Lease, one transactional id) against the test
//! stack's kube-apiserver and broker: the leader killed with SIGKILL in the middle of a stream
//! of changes is replaced and nothing is lost or doubled; a leader paused past its Lease that
//! wakes up still believing it leads is fenced and publishes nothing.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::{Message, Monitor, Options, wait_for};

const TOPIC: &str = "k8s-configmaps";
const MINUTE: Duration = Duration::from_secs(60);

/// A replica of `options`' deployment named `identity`.
fn replica(options: &Options, identity: &str, extra: &[&str]) -> Monitor {
    let mut options = options.clone();
    options
        .extra
        .extend(["--identity", identity].map(String::from));
    options.extra.extend(extra.iter().map(|s| (*s).to_owned()));
    support::start(&options)
}

fn publisher(m: &Message) -> &str {
    m.headers
        .get("rivulet-k8s-publisher")
        .map_or("", String::as_str)
}

/// Every message as `(key, event, resourceVersion)`, counted: a duplicate shows as 2.
fn counted(messages: &[Message]) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for m in messages {
        let (event, rv) = m.change();
        *out.entry((m.key.clone(), event, rv)).or_default() += 1;
    }
    out
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn the_leader_killed_mid_stream_is_replaced_and_nothing_is_lost_or_doubled() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "failover").await;
    let options = Options::new(&ns, "configmaps");
    let mut a = replica(&options, "a", &[]);
    a.leading().await;
    let b = replica(&options, "b", &[]);
    b.ready().await;
    assert!(!b.leads().await, "b leads while a holds the Lease");

    // A stream of creates; the leader dies in the middle of it.
    let mut expected: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for i in 0..40 {
        let name = format!("cm-{i:02}");
        let rv = support::create_config_map(&client, &ns, &name, "v1").await;
        expected.insert((format!("{ns}/{name}"), "ADDED".into(), rv), 1);
        if i == 14 {
            // Mid-stream: once a has published some of what it was given (under load its
            // first transaction can still be pending here), not at a fixed point in time.
            a.until(
                "rivulet_k8s_monitor_changes_published_total",
                "a publishes before it is killed",
                MINUTE,
                |n| n >= 1.0,
            )
            .await;
            a.process.kill();
        }
    }
    b.leading().await;
    // Then changes the new leader sees live.
    for i in 0..5 {
        let name = format!("cm-{i:02}");
        let rv = support::update_config_map(&client, &ns, &name, "v2").await;
        expected.insert((format!("{ns}/{name}"), "MODIFIED".into(), rv), 1);
    }
    support::delete_config_map(&client, &ns, "cm-05").await;
    for event in ["DELETED", "TOMBSTONE"] {
        expected.insert((format!("{ns}/cm-05"), event.into(), String::new()), 1);
    }
    let total: usize = expected.values().sum();

    wait_for(TOPIC, &ns, "every change", |m| m.len() >= total).await;
    b.drained(MINUTE).await;
    let got = support::messages(TOPIC, &ns).await;
    assert_eq!(
        counted(&got),
        expected,
        "the messages are the changes, each once"
    );
    assert_eq!(
        support::latest(&got),
        support::config_maps(&client, &ns).await
    );
    let by_a = got.iter().filter(|m| publisher(m) == "a").count();
    assert!(by_a >= 1, "a published before it was killed");
    for m in &got {
        // Tombstones carry no headers.
        if m.event() != "ADDED" && m.value.is_some() {
            assert_eq!(publisher(m), "b", "a change made after the takeover: {m:?}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn a_paused_leader_that_lost_its_lease_is_fenced_and_publishes_nothing() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "fenced").await;
    let options = Options::new(&ns, "configmaps");
    // `a` keeps publishing after losing the Lease, as a leader whose view of it is stale
    // would: only the transactional fencing can stop it.
    let a = replica(&options, "a", &["--fault-ignore-lease-loss"]);
    a.leading().await;
    let b = replica(&options, "b", &[]);
    b.ready().await;
    let before = support::create_config_map(&client, &ns, "before", "v1").await;
    wait_for(TOPIC, &ns, "the first change", |m| m.len() == 1).await;

    a.process.signal("STOP");
    b.leading().await;
    let mut expected = BTreeMap::from([((format!("{ns}/before"), "ADDED".into(), before), 1)]);
    for i in 0..5 {
        let name = format!("paused-{i}");
        let rv = support::create_config_map(&client, &ns, &name, "v1").await;
        expected.insert((format!("{ns}/{name}"), "ADDED".into(), rv), 1);
    }
    wait_for(TOPIC, &ns, "the changes made while a was paused", |m| {
        m.len() == 6
    })
    .await;

    // Woken, `a`'s watches hand it those five changes: its transaction is refused.
    a.process.signal("CONT");
    a.until(
        "rivulet_k8s_monitor_publish_errors_total{reason=\"fenced\"}",
        "a fenced",
        MINUTE,
        |v| v >= 1.0,
    )
    .await;
    for i in 0..3 {
        let name = format!("after-{i}");
        let rv = support::create_config_map(&client, &ns, &name, "v1").await;
        expected.insert((format!("{ns}/{name}"), "ADDED".into(), rv), 1);
    }
    wait_for(TOPIC, &ns, "the changes after a woke", |m| m.len() >= 9).await;
    b.drained(MINUTE).await;
    assert!(b.leads().await, "b lost the lead to the fenced replica");
    let got = support::messages(TOPIC, &ns).await;
    assert_eq!(counted(&got), expected, "each change once");
    let first = format!("{ns}/before");
    for m in &got {
        let want = if m.key == first { "a" } else { "b" };
        assert_eq!(publisher(m), want, "who published {m:?}");
    }
}
