//! The generator against the real broker and registry of the test stack.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use apache_avro::types::Value;
use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rivulet_common::kafka::ConsumerSettings;
use rivulet_contracts::{Version, raw};
use rivulet_raw_data_generator::model::Model;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use support::{generator, kafka, read_all, registry, sweep_positions, text, topic_with_schemas};

fn fields(value: Value) -> BTreeMap<String, Value> {
    let Value::Record(fields) = value else {
        panic!("not a record")
    };
    fields.into_iter().collect()
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_sweep_killed_with_sigkill_resumes_without_duplicates_or_gaps() {
    let schemas = [raw::text(Version::V1), raw::text(Version::V2)];
    let topic = topic_with_schemas("raw", 4, &schemas).await;
    let url = registry().urls[0].clone();
    let bootstrap = kafka().bootstrap_servers;
    let args = [
        "run",
        "--topic",
        &topic,
        "--seed",
        "5",
        "--skus",
        "3",
        "--from",
        "2000-01-01",
        "--to",
        "2000-03-31",
        "--schema-version",
        "v2",
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--schema-registry-url",
        &url,
    ];

    // First run, throttled, killed with SIGKILL part-way.
    let mut first = generator(&args).args(["--rate", "1500"]).spawn().unwrap();
    let watcher: BaseConsumer = kafka()
        .consumer_config(&ConsumerSettings::new("test-watch", None))
        .create()
        .unwrap();
    let written = || {
        (0..4)
            .map(|p| {
                watcher
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .sum::<i64>()
    };
    while written() < 300 {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let partial = read_all(&topic).len();

    let second = generator(&args).output().unwrap();
    assert!(second.status.success(), "{}", text(&second));

    let model = Model::new(5, 3);
    let (from, to) = (
        NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2000, 3, 31).unwrap(),
    );
    let expected: HashMap<u64, _> = model
        .sweep()
        .take_while(|r| NaiveDate::from_ymd_opt(r.year, r.month, r.day).unwrap() <= to)
        .filter(|r| NaiveDate::from_ymd_opt(r.year, r.month, r.day).unwrap() >= from)
        .map(|r| (r.seq, r))
        .collect();
    assert_eq!(expected.len(), 91 * 12 * 3);
    let records = read_all(&topic);
    assert!(
        partial > 0 && partial < expected.len(),
        "the first run was cut part-way ({partial} of {})",
        expected.len()
    );
    assert_eq!(records.len(), expected.len(), "no duplicates, no gaps");

    let decoder = AvroDecoder::new(registry().settings().unwrap());
    let positions = sweep_positions(&records, &model).await;
    let mut seen = HashMap::new();
    for ((partition, payload), seq) in records.into_iter().zip(positions) {
        assert!(
            seen.insert(seq, partition).is_none(),
            "seq {seq} written twice"
        );
        let want = &expected[&seq];
        assert_eq!(
            partition,
            rivulet_common::kafka::partition_for_key(want.sku.as_bytes(), 4),
            "keyed by SKU"
        );
        let got = fields(decoder.decode(Some(&payload)).await.unwrap().value);
        assert_eq!(got["sku"], Value::String(want.sku.clone()));
        assert_eq!(got["manufactured_qty"], Value::Int(want.manufactured_qty));
        assert_eq!(
            (
                got["year"].clone(),
                got["month"].clone(),
                got["day"].clone(),
                got["hour"].clone()
            ),
            (
                Value::Int(want.year),
                Value::Int(want.month as i32),
                Value::Int(want.day as i32),
                Value::Int(want.hour as i32)
            )
        );
        assert_eq!(
            got["defect_qty"],
            Value::Union(1, Box::new(Value::Int(want.defect_qty)))
        );
        assert!(
            !got.contains_key("sku_manufacturing_cost"),
            "a v2 producer writes no cost"
        );
    }

    // A third run finds everything written and writes nothing.
    let third = generator(&args).output().unwrap();
    assert!(third.status.success(), "{}", text(&third));
    assert_eq!(read_all(&topic).len(), expected.len());
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn base_costs_are_written_once_and_never_silently_changed() {
    let schema = include_str!("../../../schemas/base-costs/v1.avsc");
    let topic = topic_with_schemas("costs", 1, &[schema]).await;
    let url = registry().urls[0].clone();
    let bootstrap = kafka().bootstrap_servers;
    let costs = |seed: &str, force: bool| {
        let mut args = vec![
            "costs",
            "--topic",
            &topic,
            "--seed",
            seed,
            "--kafka-bootstrap-servers",
            &bootstrap,
            "--schema-registry-url",
            &url,
        ];
        if force {
            args.push("--force");
        }
        generator(&args).output().unwrap()
    };
    let first = costs("1", false);
    assert!(first.status.success(), "{}", text(&first));
    let model = Model::new(1, 20);
    let decoder = AvroDecoder::new(registry().settings().unwrap());
    let stored = read_all(&topic);
    assert_eq!(stored.len(), 25, "one record per year 2000..=2024");
    for (_, payload) in &stored {
        let f = fields(decoder.decode(Some(payload)).await.unwrap().value);
        let Value::Int(year) = f["year"] else {
            panic!()
        };
        assert_eq!(
            f["hourly_base_cost"],
            Value::Long(model.base_cost(year).unwrap())
        );
    }
    assert_eq!(model.base_cost(2000), Some(280));

    let again = costs("1", false);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(read_all(&topic).len(), 25, "same costs: nothing rewritten");

    let other = costs("2", false);
    assert!(!other.status.success());
    assert!(text(&other).contains("--force"), "{}", text(&other));
    assert_eq!(read_all(&topic).len(), 25);

    let forced = costs("2", true);
    assert!(forced.status.success(), "{}", text(&forced));
    let changed = Model::new(2, 20)
        .base_costs
        .iter()
        .zip(&model.base_costs)
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > 0);
    assert_eq!(read_all(&topic).len(), 25 + changed);
}

/// A `run` to `topic` with `registry` and no broker: it fails at the schema look-up. Its
/// output.
fn run_without_broker(topic: &str, registry: &str) -> String {
    let out = generator(&[
        "run",
        "--topic",
        topic,
        "--schema-registry-url",
        registry,
        "--kafka-bootstrap-servers",
        "127.0.0.1:9",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    text(&out)
}

/// An unreachable registry is reported as such, not as a missing schema.
#[test]
fn an_unreachable_registry_is_a_clear_error() {
    let text = run_without_broker("nowhere", "http://127.0.0.1:9");
    assert!(
        text.contains("the schema registry could not be asked about nowhere-value"),
        "{text}"
    );
    assert!(!text.contains("not registered"), "{text}");
}

/// A registry that answers but does not have the schema: "not registered", and the fix.
#[test]
#[ignore = "needs the test stack's registry: run scripts/test"]
fn a_missing_schema_is_a_clear_error() {
    let topic = rivulet_testkit::unique("unregistered");
    let text = run_without_broker(&topic, &rivulet_testkit::registry_url());
    assert!(
        text.contains(&format!("not registered under {topic}-value")),
        "{text}"
    );
    assert!(text.contains("schema-registry apply"), "{text}");
}
