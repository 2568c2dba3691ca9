//! The identity rule (`backend/src/pending.rs`) against the real broker and registry: however
//! `dlq-replay` and `reprocess` are combined, with restarts in between, every raw record counts
//! exactly once.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;
use std::time::{Duration, Instant};

use rivulet_common::avro;
use rivulet_common::kafka::{ConsumerSettings, ReaderContext, read_range};
use rivulet_contracts::{Version, raw};
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::unique;
use rivulet_testkit::widgets::{
    Process, Topics, assert_same, backend, expected, kafka, produce, produce_raw, registry, setup,
    wait_for,
};

/// `record` framed with a v3 schema plus a field, under an id the registry does not know yet:
/// the payload and the schema's text (to register under that id later).
fn unregistered(record: &Record, id: u32) -> (Vec<u8>, String) {
    let mut schema: serde_json::Value = serde_json::from_str(raw::text(Version::V3)).unwrap();
    // A doc unique to this run: the schema must be new to the registry to get the chosen id.
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "note", "type": ["null", "string"], "default": null, "doc": unique("note")
        }));
    let parsed = apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
    let apache_avro::types::Value::Record(mut fields) = raw::value(Version::V3, &record.raw())
    else {
        unreachable!()
    };
    fields.push((
        "note".into(),
        apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)),
    ));
    let payload = avro::encode(id, &parsed, apache_avro::types::Value::Record(fields)).unwrap();
    (payload, schema.to_string())
}

/// Registers `schema` under `id` (IMPORT mode on a fresh subject).
async fn register_with_id(schema: &str, id: u32) {
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
        .json(&serde_json::json!({"schema": schema, "id": id}))
        .send()
        .await
        .unwrap();
    assert!(
        registered.status().is_success(),
        "{}",
        registered.text().await.unwrap()
    );
}

/// `backend dlq-replay`: how many dead letters it re-sent.
fn replay(t: &Topics, group: &str) -> usize {
    let out = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["dlq-replay", "--dlq-topic", &t.dlq, "--group", group])
        .args(["--kafka-bootstrap-servers", &kafka().bootstrap_servers])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    stdout
        .split("replayed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout}"))
}

/// `backend reprocess` of the test's group (its backends stopped).
fn reprocess(t: &Topics) {
    let out = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["reprocess", "--group", &t.group, "--input-topic", &t.raw])
        .args(["--kafka-profile", "test"])
        .args(["--kafka-bootstrap-servers", &kafka().bootstrap_servers])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Waits until the DLQ holds `n` committed dead letters.
async fn wait_for_letters(t: &Topics, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let dlq = t.dlq.clone();
        let count = tokio::task::spawn_blocking(move || {
            let mut settings = ConsumerSettings::reader("test-dlq");
            settings.read_committed = true;
            let reader = kafka().base_consumer(&settings, ReaderContext).unwrap();
            let mut count = 0;
            read_range(&reader, &dlq, 0, 0, None, Duration::from_secs(30), |_| {
                count += 1
            })
            .unwrap();
            count
        })
        .await
        .unwrap();
        assert!(count <= n, "{count} dead letters, expected {n}");
        if count == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} dead letters, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Stops a backend with SIGTERM (it commits what it has and leaves the group) and waits.
fn stop(mut backend: Process) {
    backend.signal("TERM");
    let status = backend.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn replays_and_reprocessing_in_any_order_count_each_record_once() {
    let t = setup(2).await;
    let model = Model::new(44, 2);
    let january: Vec<Record> = model.sweep().take_while(|r| r.month == 1).collect();
    let mut february = model.sweep().filter(|r| r.month == 2);
    let (late, later) = (february.next().unwrap(), february.next().unwrap());
    let base = 500_000 + (std::process::id() % 400_000) * 2;
    let (late_bytes, late_schema) = unregistered(&late, base);
    let (later_bytes, later_schema) = unregistered(&later, base + 1);
    produce(&t.raw, &january, |_| Version::V3).await;
    produce_raw(&t.raw, &late.sku, Some(&late_bytes)).await;
    produce_raw(&t.raw, &later.sku, Some(&later_bytes)).await;
    let only_january = expected(&january, |_| Version::V3);
    let with_late = expected(
        &[&january[..], std::slice::from_ref(&late)].concat(),
        |_| Version::V3,
    );
    let everything = expected(
        &[&january[..], &[late.clone(), later.clone()]].concat(),
        |_| Version::V3,
    );
    let replay_group = unique("replay");

    // Both unknown-schema records are dead-lettered; a restart in between restores which ones
    // are pending (a stopped backend's successor must still count their replays).
    let first = backend(&t, "v3");
    assert_same(
        &only_january,
        &wait_for(&t, &only_january).await,
        "first pass",
    );
    wait_for_letters(&t, 2).await;
    stop(first);
    let second = backend(&t, "v3");

    // Fix one; replay both: `late` counts (its origin is pending), `later` fails again and is
    // dead-lettered again under its origin's identity.
    register_with_id(&late_schema, base).await;
    assert_eq!(replay(&t, &replay_group), 2);
    assert_same(&with_late, &wait_for(&t, &with_late).await, "late replayed");
    wait_for_letters(&t, 3).await;
    assert_eq!(
        second.metric("rivulet_backend_replays_counted_total").await,
        1.0
    );
    stop(second);

    // Reprocess from the start, `later` still broken: `late` itself now counts and its copy is
    // skipped; `later` and its copy are dead-lettered again.
    reprocess(&t);
    let third = backend(&t, "v3");
    assert_same(&with_late, &wait_for(&t, &with_late).await, "reprocessed");
    // (The old summaries already show these totals: wait for the rebuild's own progress.)
    wait_for_letters(&t, 5).await;
    assert_eq!(
        third.metric("rivulet_backend_replays_skipped_total").await,
        1.0
    );

    // Fix the other and replay its three letters (first pass's copy, reprocess's original and
    // copy): exactly one counts.
    register_with_id(&later_schema, base + 1).await;
    assert_eq!(replay(&t, &replay_group), 3);
    assert_same(
        &everything,
        &wait_for(&t, &everything).await,
        "later replayed",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while third.metric("rivulet_backend_replays_skipped_total").await < 3.0 {
        assert!(
            Instant::now() < deadline,
            "later's extra copies were not skipped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        third.metric("rivulet_backend_replays_counted_total").await,
        1.0
    );
    assert_eq!(
        third.metric("rivulet_backend_records_total").await,
        (january.len() + 2) as f64,
        "every record counted once in the rebuild"
    );
    stop(third);
}
