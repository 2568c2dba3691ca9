//! `rivulet` against the real broker and registry: every version of every contract decodes to
//! the value its writer put in, JSON and other bytes come out as they are, a record that cannot
//! be decoded is printed with the reason, `tail` takes the last records, a key, a limit and
//! follows new ones; `topics` counts and shows a group's lag; `schemas` lists what is
//! registered.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rivulet_cli::decode::to_json;
use rivulet_common::avro::{self, frame};
use rivulet_common::kafka::{ConsumerSettings, ensure_topic};
use rivulet_contracts::summary::{self, MonthKey, Totals};
use rivulet_contracts::{Version, base_cost, raw};
use rivulet_testkit::golden;
use rivulet_testkit::model::Model;
use rivulet_testkit::widgets::{kafka, produce_raw, registry};
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde_json::Value;

fn rivulet(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rivulet"));
    command
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", rivulet_testkit::bootstrap())
        .env("SCHEMA_REGISTRY_URL", rivulet_testkit::registry_url())
        .env("KAFKA_PROFILE", "test");
    command
}

fn run(args: &[&str]) -> Output {
    rivulet(args).output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn register(topic: &str, text: &str) -> u32 {
    let sr = registry().settings().unwrap();
    let subject = avro::value_subject(topic);
    let supplied = SuppliedSchema::new(None, SchemaType::Avro, text.into());
    post_schema(&sr, subject, supplied).await.unwrap().id
}

async fn topic(name: &str) {
    let admin = kafka().admin("test").unwrap();
    ensure_topic(&admin, name, 1, &[]).await.unwrap();
}

/// The value in an unframed Avro `body`, read with `schema` alone.
fn local(schema: &str, body: &[u8]) -> Value {
    let schema = Schema::parse_str(schema).unwrap();
    let mut reader = body;
    let value = GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut reader)
        .unwrap();
    to_json(value)
}

fn schema_text(topic: &str) -> String {
    let path = format!(
        "{}/../../schemas/{topic}/v1.avsc",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
#[ignore = "needs Kafka and the registry: run scripts/test"]
async fn every_contract_decodes_and_nothing_is_skipped() {
    let prefix = rivulet_testkit::unique("cli");
    let widgets = format!("{prefix}-widgets");
    topic(&widgets).await;
    let mut want: Vec<(String, Value)> = Vec::new(); // (format, value) in offset order

    // The widget contracts, every version, each under the widgets topic's subject.
    let record = Model::new(7, 3).sweep().next().unwrap().raw();
    let key = MonthKey {
        year: 2010,
        month: 5,
        sku: "SKU_000042".into(),
    };
    let totals = Totals {
        manufactured_qty: 900,
        defect_qty: Some(40),
        production_cost: Some(123_456),
        records: 12,
        records_with_defects: 12,
        records_with_cost: 6,
    };
    let mut payloads = Vec::new();
    for v in [Version::V1, Version::V2, Version::V3] {
        let id = register(&widgets, raw::text(v)).await;
        let value = raw::value(v, &record);
        payloads.push(avro::encode(id, &raw::schema(v).unwrap(), value.clone()).unwrap());
        want.push(("avro".into(), to_json(value)));
    }
    let summaries = format!("{prefix}-summary");
    topic(&summaries).await;
    for v in [Version::V1, Version::V2, Version::V3] {
        let id = register(&summaries, summary::text(v)).await;
        let value = summary::value(v, &key, &totals);
        let framed = avro::encode(id, &summary::schema(v).unwrap(), value.clone()).unwrap();
        produce_raw(&summaries, &key.kafka_key(), Some(&framed)).await;
        let got = lines(&run(&["tail", &summaries, "--max", "1"]));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["value"], to_json(value), "summary {v}");
        assert_eq!(got[0]["key"], key.kafka_key().as_str());
    }
    let costs = format!("{prefix}-costs");
    topic(&costs).await;
    let id = register(&costs, base_cost::TEXT).await;
    let value = base_cost::value(2003, 311);
    let framed = avro::encode(id, &base_cost::schema().unwrap(), value.clone()).unwrap();
    produce_raw(&costs, &base_cost::key(2003), Some(&framed)).await;
    let got = lines(&run(&["tail", &costs]));
    assert_eq!(got[0]["value"], to_json(value));
    assert_eq!(got[0]["value"]["year"], 2003, "{}", got[0]);

    // The recommender's three contracts: the pinned messages of schemas/golden, re-framed with
    // the ids this registry gave their schemas.
    for (contract, files) in [
        (
            "recommendations-topic",
            (0..7).map(|i| format!("v1-{i}")).collect::<Vec<_>>(),
        ),
        (
            "summary-topic",
            vec!["v1-ended".into(), "v1-running".into()],
        ),
    ] {
        let name = format!("{prefix}-{contract}");
        topic(&name).await;
        let text = schema_text(contract);
        let id = register(&name, &text).await;
        for file in files {
            let hex = std::fs::read_to_string(golden::dir().join(format!("{contract}/{file}.hex")))
                .unwrap();
            let bytes = golden::from_hex(&hex).unwrap();
            produce_raw(&name, &file, Some(&frame(id, &bytes[5..]))).await;
            let got = lines(&run(&["tail", &name, "--key", &file]));
            assert_eq!(got.len(), 1, "{contract}/{file}");
            assert_eq!(got[0]["schema_id"], id);
            assert_eq!(
                got[0]["value"],
                local(&text, &bytes[5..]),
                "{contract}/{file}"
            );
            // The same document the JSON fixture holds, as far as both name a job.
            let json: Value = serde_json::from_str(
                &std::fs::read_to_string(golden::dir().join(format!("{contract}/{file}.json")))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                got[0]["value"]["summary"]["job_id"], json["summary"]["job_id"],
                "{contract}/{file}"
            );
        }
    }
    let errors = format!("{prefix}-error-topic");
    topic(&errors).await;
    register(&errors, &schema_text("error-topic")).await;

    // Then what is not a registered Avro record: JSON, bytes, an unknown id, a broken body, a
    // tombstone.
    payloads.push(br#"{"hello":["world"]}"#.to_vec());
    want.push(("json".into(), serde_json::json!({"hello": ["world"]})));
    payloads.push(b"\x01plain bytes".to_vec());
    want.push((
        "bytes".into(),
        serde_json::json!({"base64": "AXBsYWluIGJ5dGVz"}),
    ));
    payloads.push(frame(2_000_000_000, b"\x02"));
    want.push(("avro".into(), Value::Null));
    let v3 = register(&widgets, raw::text(Version::V3)).await;
    payloads.push(frame(v3, b"\xff"));
    want.push(("avro".into(), Value::Null));
    for (i, p) in payloads.iter().enumerate() {
        produce_raw(&widgets, &format!("k{i}"), Some(p)).await;
    }
    produce_raw(&widgets, "gone", None).await;
    want.push(("tombstone".into(), Value::Null));

    let output = run(&["tail", &widgets, "--from-beginning"]);
    let got = lines(&output);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (i, (line, (format, value))) in got.iter().zip(&want).enumerate() {
        assert_eq!(line["offset"], i, "{line}");
        assert_eq!(line["format"], format.as_str(), "{line}");
        assert_eq!(&line["value"], value, "{line}");
        assert!(
            line["timestamp"].as_i64().unwrap() > 1_700_000_000_000,
            "{line}"
        );
    }
    let unknown = &got[5];
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("schema id 2000000000 is not registered"),
        "{unknown}"
    );
    assert_eq!(unknown["schema_id"], 2_000_000_000u32);
    let broken = &got[6];
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("not a value of schema id")
    );
    use base64::Engine;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(broken["value_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(kept, frame(v3, b"\xff"), "the bytes as they were");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("2 of 8 records could not be decoded"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The last 3, a limit, a key.
    let last: Vec<i64> = lines(&run(&["tail", &widgets, "-n", "3"]))
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(last, vec![5, 6, 7]);
    assert_eq!(
        lines(&run(&["tail", &widgets, "--from-beginning", "--max", "2"])).len(),
        2
    );
    let keyed = lines(&run(&["tail", &widgets, "--key", "k3"]));
    assert_eq!(
        (keyed.len(), &keyed[0]["format"]),
        (1, &Value::from("json"))
    );

    // Following: the last record, then what arrives after the start, as it arrives.
    let mut follower = rivulet(&["tail", &widgets, "--follow", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["offset"], 7, "the last record first");
    produce_raw(&widgets, "late", Some(br#"{"late":true}"#)).await;
    let late: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (late["key"].as_str(), &late["value"]["late"]),
        (Some("late"), &Value::Bool(true))
    );
    follower.kill().unwrap();
    follower.wait().unwrap();

    // A missing topic is a clear error.
    let missing = run(&["tail", &format!("{prefix}-nope"), "--timeout-secs", "5"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    // topics: exact counts, and a group's lag behind the high watermark.
    let group = format!("{prefix}-group");
    let settings = ConsumerSettings::new("test", Some(group.clone()));
    let committer: BaseConsumer = kafka()
        .base_consumer(&settings, rdkafka::consumer::DefaultConsumerContext)
        .unwrap();
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(&widgets, 0, Offset::Offset(3))
        .unwrap();
    committer
        .commit(&at, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    let report: Value = serde_json::from_slice(
        &run(&["topics", &prefix, "--exact", "--json", "--group", &group]).stdout,
    )
    .unwrap();
    let widgets_row = report["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == widgets.as_str())
        .unwrap();
    assert_eq!(widgets_row["records"], 9, "{widgets_row}");
    let high = widgets_row["high_watermark"].as_i64().unwrap();
    assert_eq!(report["topics"].as_array().unwrap().len(), 6, "{report:#}");
    let g = &report["groups"][0];
    assert_eq!(g["group"], group.as_str(), "{report:#}");
    assert_eq!(g["topics"][0]["committed"], 3);
    assert_eq!(g["topics"][0]["lag"], high - 3);
    let table = String::from_utf8(run(&["topics", &prefix, "--group", &group]).stdout).unwrap();
    assert!(table.contains(&widgets) && table.contains("LAG"), "{table}");

    // schemas: every subject with its versions and the ids the registry gave them.
    let report: Value =
        serde_json::from_slice(&run(&["schemas", &prefix, "--json"]).stdout).unwrap();
    let subjects = report["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 6, "{report:#}");
    let widgets_subject = subjects
        .iter()
        .find(|s| s["subject"] == avro::value_subject(&widgets).as_str())
        .unwrap();
    let versions: Vec<(i64, i64)> = widgets_subject["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2], (3, i64::from(v3)));
    assert!(report["global_compatibility"].is_string());
    let table = String::from_utf8(run(&["schemas", &prefix]).stdout).unwrap();
    assert!(
        table.contains("SUBJECT") && table.contains(&widgets),
        "{table}"
    );
}
