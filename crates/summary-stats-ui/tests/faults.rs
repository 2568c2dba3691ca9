//! Faults under the UI: the registry gone while it meets a summary schema version it has not
//! seen (the record waits, counted as a registry error, never rejected or skipped, and is
//! served once the registry is back), and the UI itself killed with SIGKILL (a restart reads
//! the topics again and serves the same totals).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use rivulet_common::avro;
use rivulet_contracts::Version;
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::registry::Replica;
use rivulet_testkit::widgets::{
    Process, assert_same, backend, by_day, expected, produce, produce_raw, register_contracts,
    setup, ui, ui_with, wait_for,
};
use support::{as_seen_by, get, wait_for_ui};

const WAIT: Duration = Duration::from_secs(60);

/// Waits until the UI's `name` metric reaches `at_least`.
async fn metric_reaches(ui: &Process, name: &str, at_least: f64) {
    let deadline = Instant::now() + WAIT;
    while ui.metric(name).await < at_least {
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_summary_version_met_while_the_registry_is_down_waits_for_it() {
    let t = setup(1).await;
    let mut registry = Replica::start(&[]).await;
    register_contracts(&t, &registry.args()).await;
    let sr = registry.args().settings().unwrap();
    let subject = avro::value_subject(&t.summary);
    let mut ids = Vec::new();
    for version in [Version::V3, Version::V1] {
        let schema = summary::schema(version).unwrap();
        ids.push((version, avro::lookup(&sr, &subject, &schema).await.unwrap()));
    }
    let write = |month: u32, qty: i64, at: usize| {
        let (version, registered) = &ids[at];
        let key = MonthKey {
            year: 2000,
            month,
            sku: "SKU_A".into(),
        };
        let totals = Totals {
            manufactured_qty: qty,
            records: 1,
            ..Totals::default()
        };
        let payload = avro::encode(
            registered.id,
            &registered.schema,
            summary::value(*version, &key, &totals),
        )
        .unwrap();
        let topic = t.summary.clone();
        async move { produce_raw(&topic, &key.kafka_key(), Some(&payload)).await }
    };
    let ui = ui_with(&t, "v3", None, &["--schema-registry-url", &registry.url]);
    ui.wait_ok("/readyz", WAIT).await;
    let applied = r#"rivulet_ui_records_total{feed="summary"}"#;
    write(1, 10, 0).await;
    metric_reaches(&ui, applied, 1.0).await;

    registry.stop(false);
    write(2, 20, 1).await; // v1: a writer id this UI has not resolved yet
    metric_reaches(&ui, "rivulet_ui_registry_errors_total", 1.0).await;
    assert_eq!(ui.metric(applied).await, 1.0, "the record waits");
    assert_eq!(ui.metric_sum("rivulet_ui_rejected_total").await, 0.0);

    registry.restart().await;
    metric_reaches(&ui, applied, 2.0).await;
    let (status, body) = get(&ui, "/api/v1/summary?year=2000&month=2").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_string().contains("SKU_A") && body.to_string().contains("20"),
        "{body}"
    );
    assert_eq!(ui.metric_sum("rivulet_ui_rejected_total").await, 0.0);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_ui_killed_with_sigkill_serves_the_same_totals_after_a_restart() {
    let t = setup(1).await;
    let model = Model::new(43, 2);
    let records: Vec<Record> = model.sweep().take_while(|r| r.month == 1).collect();
    produce(&t.raw, &records, by_day).await;
    let mut backend = backend(&t, "v3");
    let want = expected(&records, by_day);
    assert_same(&want, &wait_for(&t, &want).await, "backend");
    let truth = as_seen_by(&want, "v3");
    let mut first = ui(&t, "v3");
    first.wait_ok("/readyz", WAIT).await;
    assert_same(
        &truth,
        &wait_for_ui(&first, &truth).await.0,
        "before the kill",
    );
    first.kill();
    let second = ui(&t, "v3");
    second.wait_ok("/readyz", WAIT).await;
    assert_same(
        &truth,
        &wait_for_ui(&second, &truth).await.0,
        "after a restart",
    );
    backend.kill();
}
