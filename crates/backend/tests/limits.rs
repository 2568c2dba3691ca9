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

/// Totals never wrap: a record that would take one past `i64::MAX` is dead-lettered with
/// reason `overflow` and the totals stay those of the records before it.
#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_record_that_would_overflow_a_total_is_dead_lettered() {
    use rivulet_common::avro;
    use rivulet_contracts::Version;
    use rivulet_contracts::raw::{self, RawRecord};
    use rivulet_contracts::summary::{MonthKey, Totals};
    use rivulet_testkit::widgets::{backend, produce_raw, registry};

    let t = setup(1).await;
    let schema = raw::schema(Version::V3).unwrap();
    let id = avro::lookup(
        &registry().settings().unwrap(),
        &avro::value_subject(&t.raw),
        &schema,
    )
    .await
    .unwrap()
    .id;
    let huge = RawRecord {
        sku: "SKU_HUGE".into(),
        manufactured_qty: i32::MAX,
        year: 2020,
        month: 3,
        day: 1,
        hour: 8,
        defect_qty: Some(0),
        unit_cost: Some(i32::MAX),
    };
    let payload = avro::encode(id, &schema, raw::value(Version::V3, &huge)).unwrap();
    for _ in 0..3 {
        produce_raw(&t.raw, "SKU_HUGE", Some(&payload)).await;
    }
    let backend = backend(&t, "v3");
    let per = i64::from(i32::MAX);
    let mut want = rivulet_testkit::widgets::Truth::new();
    want.insert(
        MonthKey {
            year: 2020,
            month: 3,
            sku: "SKU_HUGE".into(),
        },
        Totals {
            manufactured_qty: 2 * per,
            defect_qty: Some(0),
            production_cost: Some(2 * per * per),
            records: 2,
            records_with_defects: 2,
            records_with_cost: 2,
        },
    );
    let got = wait_for(&t, &want).await;
    assert_eq!(got, want, "the totals of the two records that fit");
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend
        .metric("rivulet_backend_dead_letters_total{reason=\"overflow\"}")
        .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the overflowing record was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
