//! The broker frozen (SIGSTOP) under the generator for longer than its requests take: the
//! generator waits, then finishes with every record written once (idempotent producer), and
//! says so. Its own test binary: freezing the stack's broker would stall other tests of a
//! binary running beside it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rivulet_common::kafka::ConsumerSettings;
use rivulet_contracts::{Version, raw};
use rivulet_testkit::signal_broker;
use support::{generator, kafka, read_all, registry, sweep_positions, text, topic_with_schemas};

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_frozen_broker_delays_the_generator_but_loses_and_doubles_nothing() {
    let topic = topic_with_schemas("raw-frozen", 2, &[raw::text(Version::V3)]).await;
    let (url, bootstrap) = (registry().urls[0].clone(), kafka().bootstrap_servers);
    let args = [
        "run",
        "--topic",
        &topic,
        "--seed",
        "9",
        "--skus",
        "2",
        "--from",
        "2000-01-01",
        "--to",
        "2000-01-31",
        "--schema-version",
        "v3",
        "--rate",
        "1000",
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--schema-registry-url",
        &url,
    ];
    let expected = 31 * 12 * 2;
    let mut running = generator(&args).spawn().unwrap();
    let watcher: BaseConsumer = kafka()
        .consumer_config(&ConsumerSettings::new("test-watch", None))
        .create()
        .unwrap();
    let written = || -> i64 {
        (0..2)
            .map(|p| {
                watcher
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .sum()
    };
    while written() < 100 {
        assert!(
            running.try_wait().unwrap().is_none(),
            "it ended before the freeze"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The fault: the broker answers nothing for 8 s (longer than the test profile's 6 s
    // session and any single request's patience), then comes back.
    signal_broker("STOP");
    let frozen = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    signal_broker("CONT");
    let status = tokio::task::spawn_blocking(move || running.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the generator failed after the freeze");
    println!(
        "broker frozen 8 s: the generator finished {:.1} s after the freeze began",
        frozen.elapsed().as_secs_f64()
    );
    let records = read_all(&topic);
    let model = rivulet_raw_data_generator::model::Model::new(9, 2);
    let seqs: HashSet<u64> = sweep_positions(&records, &model)
        .await
        .into_iter()
        .collect();
    assert_eq!(records.len(), expected, "every record once");
    assert_eq!(seqs.len(), expected, "no position twice");
    // A second run finds them all and writes nothing more.
    let again = generator(&args).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(read_all(&topic).len(), expected);
}
