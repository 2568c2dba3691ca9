//! Restoring a partition's totals from `summary-stats` never restarts a key from 0: a summary
//! written by a newer backend version is resolved through the registry, and one that cannot be
//! read keeps the partition closed (an error and a metric) instead of being dropped.

#![allow(clippy::unwrap_used)] // tests

use std::collections::HashMap;
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rivulet_common::avro;
use rivulet_common::kafka::{ProducerSettings, read_range};
use rivulet_contracts::Version;
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::widgets::{
    Topics, backend, expected, kafka, produce, registry, setup, wait_for,
};
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

/// Writes a summary record as a backend would: key, payload, and the input-offset header.
async fn write_summary(t: &Topics, key: &str, payload: &[u8], covers: i64) {
    let producer: FutureProducer = kafka()
        .producer(&ProducerSettings::new("test-summary-writer"))
        .unwrap();
    let covers = covers.to_string();
    let headers = OwnedHeaders::new().insert(Header {
        key: "rivulet-input-offset",
        value: Some(covers.as_str()),
    });
    producer
        .send(
            FutureRecord::to(&t.summary)
                .key(key)
                .payload(payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// The latest payload of every key of partition 0 of the summary topic.
async fn latest_payloads(t: &Topics) -> HashMap<Vec<u8>, Vec<u8>> {
    let topic = t.summary.clone();
    tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-latest").unwrap();
        let mut latest = HashMap::new();
        read_range(&reader, &topic, 0, 0, None, Duration::from_secs(30), |m| {
            if let (Some(k), Some(p)) = (m.key(), m.payload()) {
                latest.insert(k.to_vec(), p.to_vec());
            }
        })
        .unwrap();
        latest
    })
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn an_unreadable_summary_keeps_its_partition_closed() {
    let t = setup(1).await;
    let model = Model::new(41, 2);
    let v3 = |_: &Record| Version::V3;
    let january: Vec<Record> = model.sweep().take_while(|r| r.month == 1).collect();
    let (first, later): (Vec<Record>, Vec<Record>) = january.into_iter().partition(|r| r.day <= 10);
    produce(&t.raw, &first, v3).await;
    let mut a = backend(&t, "v3");
    let want = expected(&first, v3);
    assert_eq!(wait_for(&t, &want).await, want);
    a.kill();

    // A garbage summary for a real key, within the committed input, then more input.
    let victim = want.keys().next().unwrap().kafka_key();
    write_summary(&t, &victim, b"not a summary", 0).await;
    produce(&t.raw, &later, v3).await;

    let b = backend(&t, "v3");
    b.wait_ok("/healthz", Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while b.metric("rivulet_backend_restore_failures_total").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the unreadable summary was not reported"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The partition stayed closed: nothing aggregated, nothing written over the good totals.
    assert_eq!(b.metric("rivulet_backend_records_total").await, 0.0);
    let latest = latest_payloads(&t).await;
    assert_eq!(latest[victim.as_bytes()], b"not a summary".to_vec());
    for (key, totals) in &want {
        let k = key.kafka_key();
        if k == victim {
            continue;
        }
        let (_, body) = avro::unframe(&latest[k.as_bytes()]).unwrap();
        let written =
            rivulet_contracts::from_bytes(&summary::schema(Version::V3).unwrap(), None, body)
                .unwrap();
        assert_eq!(
            summary::from_value(&written).unwrap().1,
            *totals,
            "{k} unchanged"
        );
    }
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_summary_of_a_newer_version_is_restored_through_the_registry() {
    let t = setup(1).await;
    // "v4": v3 and a field this backend has never seen, registered like a newer release would.
    let mut v4: serde_json::Value = serde_json::from_str(summary::text(Version::V3)).unwrap();
    v4["fields"].as_array_mut().unwrap().push(serde_json::json!(
        {"name": "note", "type": ["null", "string"], "default": null}
    ));
    let sr = registry().settings().unwrap();
    let v4_text = v4.to_string();
    post_schema(
        &sr,
        avro::value_subject(&t.summary),
        SuppliedSchema::new(None, SchemaType::Avro, v4_text.clone()),
    )
    .await
    .unwrap();
    let v4_schema = apache_avro::Schema::parse_str(&v4_text).unwrap();
    let v4_id = avro::lookup(&sr, &avro::value_subject(&t.summary), &v4_schema)
        .await
        .unwrap()
        .id;

    let model = Model::new(43, 1);
    let v3 = |_: &Record| Version::V3;
    let records: Vec<Record> = model
        .sweep()
        .take_while(|r| r.month == 1 && r.day <= 3)
        .collect();
    let key = MonthKey {
        year: records[0].year,
        month: records[0].month,
        sku: records[0].sku.clone(),
    };
    let before = Totals {
        manufactured_qty: 1000,
        defect_qty: Some(10),
        production_cost: Some(5000),
        records: 5,
        records_with_defects: 5,
        records_with_cost: 5,
    };
    let Value::Record(mut fields) = summary::value(Version::V3, &key, &before) else {
        unreachable!("a record")
    };
    fields.push((
        "note".into(),
        Value::Union(1, Box::new(Value::String("from a newer backend".into()))),
    ));
    let payload = avro::encode(v4_id, &v4_schema, Value::Record(fields)).unwrap();
    write_summary(&t, &key.kafka_key(), &payload, 0).await;
    produce(&t.raw, &records, v3).await;

    let _b = backend(&t, "v3");
    let mut after = before;
    for r in &records {
        after.add(&r.raw()).unwrap();
    }
    assert_eq!(expected(&records, v3).len(), 1, "one key");
    let want = rivulet_testkit::widgets::Truth::from([(key, after)]);
    let got = wait_for(&t, &want).await;
    assert_eq!(
        got, want,
        "the v4 totals were restored and continued, not restarted"
    );
}
