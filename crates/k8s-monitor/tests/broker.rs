//! The broker frozen (SIGSTOP) for 20 s while 100 changes are made: the monitor keeps
//! watching, holds the latest state per key, and once the broker is back the topic's latest
//! state is the cluster's, with no change published twice. Its own test binary: freezing the
//! stack's broker would stall the tests of a binary running beside it.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rivulet_testkit::signal_broker;
use support::{Options, wait_for};

/// Resumes the broker when dropped, also when the test fails while it is frozen.
struct Frozen;

impl Frozen {
    fn new() -> Self {
        signal_broker("STOP");
        Self
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal_broker("CONT");
    }
}

#[tokio::test]
#[ignore = "needs the test stack with Kubernetes: run scripts/test"]
async fn changes_made_while_the_broker_is_frozen_all_reach_the_topic() {
    let client = rivulet_testkit::kube::client().await;
    let ns = rivulet_testkit::kube::namespace(&client, "frozen").await;
    let monitor = support::start(&Options::new(&ns, "configmaps"));
    monitor.leading().await;
    for i in 0..20 {
        support::create_config_map(&client, &ns, &format!("cm-{i:02}"), "v0").await;
    }
    wait_for("k8s-configmaps", &ns, "the first 20", |m| m.len() == 20).await;

    // 100 changes over 20 s: 70 updates, 20 creates, 10 deletes (each delete is of an
    // object made before the freeze, so every key ends in a known state).
    let frozen = Frozen::new();
    let started = Instant::now();
    for step in 0..100_u32 {
        match step % 10 {
            0..=6 => {
                let name = format!("cm-{:02}", (step * 7) % 10 + 10);
                support::update_config_map(&client, &ns, &name, &format!("v{step}")).await;
            }
            7 | 8 => {
                support::create_config_map(&client, &ns, &format!("new-{step}"), "v1").await;
            }
            _ => support::delete_config_map(&client, &ns, &format!("cm-{:02}", step / 10)).await,
        }
        let due = started + Duration::from_millis(200 * u64::from(step + 1));
        tokio::time::sleep_until(due.into()).await;
    }
    drop(frozen);

    let cluster = support::config_maps(&client, &ns).await;
    assert_eq!(cluster.len(), 20 + 20 - 10);
    let got = wait_for(
        "k8s-configmaps",
        &ns,
        "the cluster's state after the freeze",
        |m| support::latest(m) == cluster,
    )
    .await;
    // States may be coalesced while the broker is away; none is published twice.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for m in got.iter().filter(|m| m.value.is_some()) {
        *seen
            .entry((
                m.key.clone(),
                format!("{} {}", m.event(), m.resource_version()),
            ))
            .or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "published twice: {doubled:?}");
    monitor.drained(Duration::from_secs(30)).await;
}
