//! The backend process against the real broker and registry: exact totals for a month written
//! by v1, v2 and v3 producers, bad records dead-lettered, and no double counting after kill -9.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rivulet_backend::aggregate::{MonthKey, Totals};
use rivulet_backend::summary::{self, SummaryVersion};
use rivulet_common::kafka::{ProducerSettings, ensure_topic, read_range};
use rivulet_common::{KafkaArgs, RegistryArgs, avro};
use rivulet_raw_data_generator::model::{Model, Record};
use rivulet_raw_data_generator::wire::SchemaVersion;
use rivulet_testkit::unique;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

fn kafka() -> KafkaArgs {
    KafkaArgs::plaintext(rivulet_testkit::bootstrap())
}

fn registry() -> RegistryArgs {
    RegistryArgs::new(rivulet_testkit::registry_url())
}

struct Topics {
    raw: String,
    summary: String,
    dlq: String,
    group: String,
}

async fn setup(partitions: i32) -> Topics {
    let t = Topics {
        raw: unique("raw"),
        summary: unique("summary"),
        dlq: unique("dlq"),
        group: unique("backend"),
    };
    let admin = kafka().admin("test").unwrap();
    ensure_topic(&admin, &t.raw, partitions, &[]).await.unwrap();
    ensure_topic(&admin, &t.summary, partitions, &[])
        .await
        .unwrap();
    ensure_topic(&admin, &t.dlq, 1, &[]).await.unwrap();
    let sr = registry().settings().unwrap();
    for v in [SchemaVersion::V1, SchemaVersion::V2, SchemaVersion::V3] {
        post_schema(
            &sr,
            format!("{}-value", t.raw),
            SuppliedSchema::new(None, SchemaType::Avro, v.text().into()),
        )
        .await
        .unwrap();
    }
    for v in [SummaryVersion::V1, SummaryVersion::V2, SummaryVersion::V3] {
        post_schema(
            &sr,
            format!("{}-value", t.summary),
            SuppliedSchema::new(None, SchemaType::Avro, v.text().into()),
        )
        .await
        .unwrap();
    }
    t
}

/// A backend process, killed when dropped (also when a test fails).
struct Backend(Child, u16);

impl Backend {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.0.id().to_string())
            .status();
        self.kill();
    }
}

fn backend(t: &Topics) -> Backend {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "run",
            "--input-topic",
            &t.raw,
            "--output-topic",
            &t.summary,
            "--dlq-topic",
            &t.dlq,
            "--group",
            &t.group,
        ])
        .args([
            "--commit-interval-ms",
            "200",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kafka-profile",
            "test",
        ])
        .args([
            "--kafka-bootstrap-servers",
            &kafka().bootstrap_servers,
            "--schema-registry-url",
            &registry().urls[0],
        ])
        .env(
            "RUST_LOG",
            std::env::var("BACKEND_TEST_LOG")
                .unwrap_or_else(|_| "warn,rivulet_backend=info".into()),
        )
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .map(|child| Backend(child, port))
        .unwrap()
}

/// A counter from a backend's `/metrics`.
async fn metric(b: &Backend, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", b.1))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    rivulet_testkit::metric_value(&text, name)
}

/// Writes `records`, each with the schema version `version_of` picks.
async fn produce(topic: &str, records: &[Record], version_of: impl Fn(&Record) -> SchemaVersion) {
    let sr = registry().settings().unwrap();
    let mut ids = HashMap::new();
    for v in [SchemaVersion::V1, SchemaVersion::V2, SchemaVersion::V3] {
        let schema = v.schema().unwrap();
        ids.insert(
            v,
            avro::lookup(&sr, &avro::value_subject(topic), &schema)
                .await
                .unwrap(),
        );
    }
    let producer: FutureProducer = kafka()
        .producer(&ProducerSettings::new("test-producer"))
        .unwrap();
    let mut deliveries = Vec::new();
    for r in records {
        let v = version_of(r);
        let payload = avro::encode(ids[&v].id, &ids[&v].schema, v.value(r)).unwrap();
        deliveries.push(
            producer
                .send_result(FutureRecord::to(topic).key(&r.sku).payload(&payload))
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap().unwrap();
    }
}

async fn produce_raw(topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = kafka()
        .producer(&ProducerSettings::new("test-producer"))
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// The latest summary of every key, decoded.
async fn summaries(t: &Topics, partitions: i32) -> BTreeMap<MonthKey, Totals> {
    let topic = t.summary.clone();
    let payloads = tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-summaries").unwrap();
        let mut latest = HashMap::new();
        for p in 0..partitions {
            read_range(&reader, &topic, p, 0, None, Duration::from_secs(30), |m| {
                latest.insert(m.key().unwrap().to_vec(), m.payload().unwrap().to_vec());
            })
            .unwrap();
        }
        latest
    })
    .await
    .unwrap();
    let decoder = AvroDecoder::new(registry().settings().unwrap());
    let mut out = BTreeMap::new();
    for payload in payloads.values() {
        let (key, totals) =
            summary::from_value(&decoder.decode(Some(payload)).await.unwrap().value).unwrap();
        out.insert(key, totals);
    }
    out
}

fn expected(
    records: &[Record],
    version_of: impl Fn(&Record) -> SchemaVersion,
) -> BTreeMap<MonthKey, Totals> {
    let mut out: BTreeMap<MonthKey, Totals> = BTreeMap::new();
    for r in records {
        let v = version_of(r);
        let t = out
            .entry(MonthKey {
                year: r.year,
                month: r.month,
                sku: r.sku.clone(),
            })
            .or_default();
        t.manufactured_qty += i64::from(r.manufactured_qty);
        t.records += 1;
        if v >= SchemaVersion::V2 {
            t.defect_qty = Some(t.defect_qty.unwrap_or(0) + i64::from(r.defect_qty));
            t.records_with_defects += 1;
        }
        if v == SchemaVersion::V3 {
            t.production_cost =
                Some(t.production_cost.unwrap_or(0) + i64::from(r.manufactured_qty) * r.unit_cost);
            t.records_with_cost += 1;
        }
    }
    out
}

async fn wait_for(
    t: &Topics,
    partitions: i32,
    want: &BTreeMap<MonthKey, Totals>,
) -> BTreeMap<MonthKey, Totals> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = summaries(t, partitions).await;
        if &got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fails with only the keys whose totals differ (the whole maps are too long to read).
fn assert_same(want: &BTreeMap<MonthKey, Totals>, got: &BTreeMap<MonthKey, Totals>, what: &str) {
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| (k, v, got.get(k)))
        .collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        diff.is_empty() && extra.is_empty(),
        "{what}; differing (key, want, got): {diff:#?}; unexpected keys: {extra:?}"
    );
}

fn by_day(r: &Record) -> SchemaVersion {
    match r.day {
        1..=10 => SchemaVersion::V1,
        11..=20 => SchemaVersion::V2,
        _ => SchemaVersion::V3,
    }
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn mixed_versions_bad_records_and_kill_9_give_exact_totals() {
    let partitions = 3;
    let t = setup(partitions).await;
    let model = Model::new(21, 4);
    let january: Vec<Record> = model.sweep().take_while(|r| r.month == 1).collect();
    produce(&t.raw, &january, by_day).await;

    // Three bad records: not framed, an unknown schema id, an impossible month.
    produce_raw(&t.raw, "BAD", b"not avro at all").await;
    produce_raw(&t.raw, "BAD", &[0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await;
    let v3 = SchemaVersion::V3.schema().unwrap();
    let v3_id = avro::lookup(
        &registry().settings().unwrap(),
        &avro::value_subject(&t.raw),
        &v3,
    )
    .await
    .unwrap()
    .id;
    let mut bad = january[0].clone();
    bad.month = 13;
    produce_raw(
        &t.raw,
        "BAD",
        &avro::encode(v3_id, &v3, SchemaVersion::V3.value(&bad)).unwrap(),
    )
    .await;

    let mut first = backend(&t);
    let want = expected(&january, by_day);
    let got = wait_for(&t, partitions, &want).await;
    assert_eq!(got, want, "exact January totals from v1, v2 and v3 records");

    // The dead letters carry the original bytes and the reason.
    let dlq = t.dlq.clone();
    let letters = tokio::task::spawn_blocking(move || {
        let reader = kafka().reader("test-dlq").unwrap();
        let mut letters = Vec::new();
        read_range(&reader, &dlq, 0, 0, None, Duration::from_secs(30), |m| {
            let reason = m
                .headers()
                .unwrap()
                .iter()
                .find(|h| h.key == "rivulet-dlq-reason")
                .unwrap()
                .value
                .unwrap()
                .to_vec();
            letters.push((
                String::from_utf8(reason).unwrap(),
                m.payload().unwrap().to_vec(),
            ));
        })
        .unwrap();
        letters
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert!(
        letters[0].0.contains("not framed") && letters[0].1 == b"not avro at all",
        "{:?}",
        letters[0].0
    );
    assert!(
        letters[1].0.contains("unknown schema id 2147483647"),
        "{:?}",
        letters[1].0
    );
    assert!(letters[2].0.contains("month 13"), "{:?}", letters[2].0);

    // Kill -9 with work in flight, then restart: February adds, January is not counted again.
    let february: Vec<Record> = model
        .sweep()
        .skip_while(|r| r.month == 1)
        .take_while(|r| r.month == 2 && r.day <= 10)
        .collect();
    produce(&t.raw, &february[..february.len() / 2], |_| {
        SchemaVersion::V3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill();
    produce(&t.raw, &february[february.len() / 2..], |_| {
        SchemaVersion::V3
    })
    .await;
    let mut second = backend(&t);
    let mut all = january.clone();
    all.extend(february.iter().cloned());
    let want = expected(&all, |r| {
        if r.month == 1 {
            by_day(r)
        } else {
            SchemaVersion::V3
        }
    });
    let got = wait_for(&t, partitions, &want).await;
    second.kill();
    assert_same(&want, &got, "exact totals after kill -9 and restart");
}

fn signal(child: &Backend, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn two_backends_rebalancing_and_a_zombie_never_double_count() {
    let partitions = 4;
    let t = setup(partitions).await;
    let model = Model::new(33, 6);
    let records: Vec<Record> = model.sweep().take_while(|r| r.month <= 2).collect();
    let (january, february): (Vec<Record>, Vec<Record>) =
        records.iter().cloned().partition(|r| r.month == 1);
    let v3 = |_: &Record| SchemaVersion::V3;

    produce(&t.raw, &january, v3).await;
    let mut a = backend(&t);
    let mut b = backend(&t);
    let want = expected(&january, v3);
    assert_eq!(
        wait_for(&t, partitions, &want).await,
        want,
        "two backends share the work exactly"
    );

    // A freezes past its session timeout: B takes its partitions (fencing A's transactions).
    signal(&a, "STOP");
    let half = february.len() / 2;
    produce(&t.raw, &february[..half], v3).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    // The zombie wakes up with work it can no longer commit, then rejoins and rebalances again.
    signal(&a, "CONT");
    produce(&t.raw, &february[half..], v3).await;
    let want = expected(&records, v3);
    let got = wait_for(&t, partitions, &want).await;
    a.kill();
    b.kill();
    assert_same(
        &want,
        &got,
        "no double counting through rebalances and a zombie",
    );
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn dead_letters_replay_once_the_cause_is_fixed() {
    let partitions = 2;
    let t = setup(partitions).await;
    let model = Model::new(44, 2);
    let january: Vec<Record> = model.sweep().take_while(|r| r.month == 1).collect();
    let late = model.sweep().find(|r| r.month == 2).unwrap();
    produce(&t.raw, &january, |_| SchemaVersion::V3).await;

    // A record written with a schema the registry does not know yet.
    let mut with_note: serde_json::Value = serde_json::from_str(SchemaVersion::V3.text()).unwrap();
    // A doc unique to this run: the schema must be new to the registry to get the chosen id.
    with_note["fields"].as_array_mut().unwrap().push(serde_json::json!({"name": "note", "type": ["null", "string"], "default": null, "doc": unique("note")}));
    let note_schema = apache_avro::Schema::parse_str(&with_note.to_string()).unwrap();
    let missing_id = 500_000 + (std::process::id() % 400_000);
    let apache_avro::types::Value::Record(mut fields) = SchemaVersion::V3.value(&late) else {
        unreachable!()
    };
    fields.push((
        "note".into(),
        apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)),
    ));
    let payload = avro::encode(
        missing_id,
        &note_schema,
        apache_avro::types::Value::Record(fields),
    )
    .unwrap();
    produce_raw(&t.raw, &late.sku, &payload).await;

    let mut running = backend(&t);
    let want = expected(&january, |_| SchemaVersion::V3);
    assert_eq!(wait_for(&t, partitions, &want).await, want);

    // Register the schema under that id (IMPORT mode on a fresh subject), then replay.
    let http = reqwest::Client::new();
    let base = &registry().urls[0];
    let subject = unique("replay");
    let mode = http
        .put(format!("{base}/mode/{subject}"))
        .json(&serde_json::json!({"mode": "IMPORT"}))
        .send()
        .await
        .unwrap();
    assert!(mode.status().is_success());
    let registered = http
        .post(format!("{base}/subjects/{subject}/versions"))
        .json(&serde_json::json!({"schema": with_note.to_string(), "id": missing_id}))
        .send()
        .await
        .unwrap();
    assert!(
        registered.status().is_success(),
        "{}",
        registered.text().await.unwrap()
    );
    let replay_group = unique("replay");
    let replay = || {
        Command::new(env!("CARGO_BIN_EXE_backend"))
            .args([
                "dlq-replay",
                "--dlq-topic",
                &t.dlq,
                "--group",
                &replay_group,
                "--kafka-bootstrap-servers",
                &kafka().bootstrap_servers,
            ])
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    let first = replay();
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("replayed 1 dead letters"),
        "{first:?}"
    );
    let again = replay();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("replayed 0 dead letters"),
        "replayed once: {again:?}"
    );
    let mut all = january.clone();
    all.push(late.clone());
    let want = expected(&all, |_| SchemaVersion::V3);
    assert_eq!(
        wait_for(&t, partitions, &want).await,
        want,
        "the replayed record is counted once"
    );

    running.kill();
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn reprocess_rebuilds_every_total_exactly() {
    let partitions = 2;
    let t = setup(partitions).await;
    let model = Model::new(55, 3);
    let records: Vec<Record> = model
        .sweep()
        .take_while(|r| r.month == 1 && r.day <= 15)
        .collect();
    produce(&t.raw, &records, by_day).await;
    let want = expected(&records, by_day);
    let mut running = backend(&t);
    assert_eq!(wait_for(&t, partitions, &want).await, want);
    running.kill();
    tokio::time::sleep(Duration::from_secs(7)).await; // the killed member's session expires
    let rewind = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "reprocess",
            "--group",
            &t.group,
            "--input-topic",
            &t.raw,
            "--kafka-profile",
            "test",
        ])
        .args(["--kafka-bootstrap-servers", &kafka().bootstrap_servers])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(rewind.status.success(), "{rewind:?}");
    let mut rebuilt = backend(&t);
    // The rebuild starts from nothing: wait until it has written its own summaries again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let got = wait_for(&t, partitions, &want).await;
    let reread = metric(&rebuilt, "rivulet_backend_records_total").await;
    let restored = metric(&rebuilt, "rivulet_backend_restored_keys_total").await;
    rebuilt.kill();
    assert_eq!(
        got, want,
        "a rebuild converges on the same exact totals, nothing doubled"
    );
    assert_eq!(
        reread as usize,
        records.len(),
        "every raw record was read again"
    );
    assert_eq!(restored, 0.0, "nothing was restored from the old summaries");
}
