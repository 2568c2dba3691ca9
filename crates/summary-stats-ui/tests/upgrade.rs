//! The pipeline end to end through upgrades and outages, watched through the UI: the v1 -> v3
//! upgrade rehearsal and the broker frozen mid-stream. A sampler reads the served totals all
//! along: a key's totals never go down and never exceed the final truth (no double counting at
//! any moment), and the end result is exact.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use rivulet_contracts::Version;
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::widgets::{assert_same, backend, expected, produce, setup, ui};
use support::{Phases, Sampler, as_seen_by, get, wait_for_ui};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn upgrade_rehearsal_v1_to_v3_never_loses_or_double_counts() {
    let t = setup(3).await;
    let Phases {
        records,
        a,
        b,
        truth,
    } = Phases::new(91);

    // 1. v1 everywhere.
    let mut backend_v1 = backend(&t, "v1");
    let ui_v1 = ui(&t, "v1");
    ui_v1.wait_ok("/readyz", WAIT).await;
    let watch_v1 = Sampler::start(&ui_v1, as_seen_by(&truth, "v1"));
    produce(&t.raw, &records[..a], |_| Version::V1).await;
    let first = as_seen_by(&expected(&records[..a], |_| Version::V1), "v1");
    assert_same(
        &first,
        &wait_for_ui(&ui_v1, &first).await.0,
        "v1 everywhere",
    );

    // 2. Backend and UI v3 while v1 producers still write: the v3 UI joins beside the v1 one
    // (a canary), the v1 backend stops with SIGTERM and a v3 one takes over its group.
    let ui_v3 = ui(&t, "v3");
    ui_v3.wait_ok("/readyz", WAIT).await;
    let watch_v3 = Sampler::start(&ui_v3, truth.clone());
    let writer = {
        let (topic, part) = (t.raw.clone(), records[a..b].to_vec());
        tokio::spawn(async move { produce(&topic, &part, |_| Version::V1).await })
    };
    backend_v1.signal("TERM");
    let exit = backend_v1.child.wait().unwrap();
    assert!(
        exit.success(),
        "the v1 backend stops cleanly on SIGTERM: {exit:?}"
    );
    let backend_v3 = backend(&t, "v3");
    writer.await.unwrap();

    // 3. Producers v3.
    produce(&t.raw, &records[b..], |_| Version::V3).await;
    let (got, body) = wait_for_ui(&ui_v3, &truth).await;
    assert_same(&truth, &got, "after the upgrade the v3 UI is exact");
    let (_, status) = get(&ui_v3, "/api/v1/status").await;
    assert_eq!(status["served_by"]["schema_version"], "v3");
    assert!(body["data"][0]["complete"] == false && body["data"][1]["complete"] == false);
    let seen = as_seen_by(&truth, "v1");
    assert_same(
        &seen,
        &wait_for_ui(&ui_v1, &seen).await.0,
        "the v1 UI still serves",
    );
    watch_v1.finish("v1 UI").await;
    watch_v3.finish("v3 UI").await;
    drop(backend_v3);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_frozen_broker_delays_but_never_loses_or_double_counts() {
    let t = setup(2).await;
    let model = Model::new(93, 2);
    let records: Vec<Record> = model.sweep().take_while(|r| r.month <= 2).collect();
    let v3 = |_: &Record| Version::V3;
    let truth = expected(&records, v3);
    let _backend = backend(&t, "v3");
    let ui = ui(&t, "v3");
    ui.wait_ok("/readyz", WAIT).await;
    let watch = Sampler::start(&ui, truth.clone());

    let half = records.len() / 2;
    produce(&t.raw, &records[..half], v3).await;
    let writer = {
        // Ten chunks a second apart: the stream goes on before, during and after the freeze.
        let (topic, rest) = (t.raw.clone(), records[half..].to_vec());
        tokio::spawn(async move {
            for chunk in rest.chunks(rest.len().div_ceil(10)) {
                produce(&topic, chunk, v3).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    // Freeze the broker mid-stream for longer than the session timeout, then let it go.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    rivulet_testkit::signal_broker("STOP");
    tokio::time::sleep(Duration::from_secs(8)).await;
    rivulet_testkit::signal_broker("CONT");
    writer.await.unwrap();
    let (got, _) = wait_for_ui(&ui, &truth).await;
    assert_same(&truth, &got, "exact after the broker froze and resumed");
    watch.finish("UI during the freeze").await;
}
