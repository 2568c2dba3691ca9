//! Bounds on what input can cost the backend, against the real broker and registry.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};
use rivulet_common::kafka::read_range;
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::widgets::{backend_with, by_day, expected, kafka, produce, setup, wait_for};

/// With `--max-skus 2`, a partition holds the first two SKUs it meets; every record of a third
/// goes to the DLQ with reason `too_many_skus`, counted, and the two SKUs' totals stay exact.
#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn skus_beyond_the_cap_are_dead_lettered_and_counted() {
    let t = setup(1).await;
    // Three SKUs, one day, all in one partition: the first two SKUs in it are held.
    let model = Model::new(33, 3);
    let day: Vec<Record> = model.sweep().take_while(|r| r.day == 1).collect();
    let mut first_two: Vec<String> = Vec::new();
    for r in &day {
        if first_two.len() < 2 && !first_two.contains(&r.sku) {
            first_two.push(r.sku.clone());
        }
    }
    let third = day
        .iter()
        .find(|r| !first_two.contains(&r.sku))
        .unwrap()
        .sku
        .clone();
    produce(&t.raw, &day, by_day).await;
    let backend = backend_with(&t, "v3", "blue", &t.group, &t.summary, &["--max-skus", "2"]);

    let admitted: Vec<Record> = day
        .iter()
        .filter(|r| first_two.contains(&r.sku))
        .cloned()
        .collect();
    let want = expected(&admitted, by_day);
    let got = wait_for(&t, &want).await;
    assert_eq!(got, want, "the first two SKUs' totals are exact");

    let refused = day.len() - admitted.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend
        .metric("rivulet_backend_dead_letters_total{reason=\"too_many_skus\"}")
        .await
        < refused as f64
    {
        assert!(
            Instant::now() < deadline,
            "the refused records were not counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dlq = t.dlq.clone();
    let reasons = tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-dlq").unwrap();
        let mut reasons = Vec::new();
        read_range(&reader, &dlq, 0, 0, None, Duration::from_secs(30), |m| {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "rivulet-dlq-reason"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            reasons.push((m.key().map(<[u8]>::to_vec), reason));
        })
        .unwrap();
        reasons
    })
    .await
    .unwrap();
    assert_eq!(reasons.len(), refused, "{reasons:?}");
    for (key, reason) in reasons {
        assert_eq!(key.as_deref(), Some(third.as_bytes()));
        assert!(reason.unwrap().starts_with("too many SKUs"));
    }
}
