//! Faults under load, against the real broker and registry: the backend killed with SIGKILL at
//! random points while records arrive at a steady rate, and the registry gone for 30 s while
//! the backend meets schema versions it has not seen. Totals end exact, and the records in,
//! the records counted and the dead letters add up. Each run prints its figures.
//!
//! `RIVULET_KILLS` sets the number of kills (3 in the suite; `scripts/chaos` runs 10).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rivulet_contracts::Version;
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::registry::Replica;
use rivulet_testkit::widgets::{
    Feed, Process, Topics, assert_same, backend, backend_with, expected, register_contracts, setup,
    wait_for,
};

/// Records per second the feeder writes, in 10 batches a second.
const RATE: usize = 500;

/// Writes `records` at [`RATE`] in the background.
fn feed_steadily(
    t: &Topics,
    records: Vec<Record>,
    version_of: fn(&Record) -> Version,
) -> tokio::task::JoinHandle<()> {
    let topic = t.raw.clone();
    tokio::spawn(async move {
        let feed = Feed::new(&topic).await;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for batch in records.chunks(RATE / 10) {
            tick.tick().await;
            feed.send(batch, version_of).await;
        }
    })
}

/// Waits until `backend` has counted at least `n` records (this incarnation), or 60 s.
async fn counted_at_least(backend: &Process, n: f64) -> f64 {
    backend.wait_ok("/healthz", Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counted = backend.metric("rivulet_backend_records_total").await;
        if counted >= n {
            return counted;
        }
        assert!(
            Instant::now() < deadline,
            "counted {counted} of {n} in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn kill_9_at_random_points_under_a_steady_rate_keeps_totals_exact() {
    let kills: usize = std::env::var("RIVULET_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let seed = std::process::id().into();
    let t = setup(3).await;
    let model = Model::new(seed, 6);
    // Enough input that every kill lands while records are still arriving.
    let records: Vec<Record> = model.sweep().take(kills.max(3) * 4_000).collect();
    let want = expected(&records, |_| Version::V3);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    println!(
        "seed {seed}: {} records at {RATE}/s, {kills} kills",
        records.len()
    );
    let feeding = feed_steadily(&t, records.clone(), |_| Version::V3);
    let mut running = backend(&t, "v3");
    for kill in 1..=kills {
        // A random point: after this incarnation has counted 100 to 1,500 records (so each
        // one makes progress, and kills land anywhere in the commit cycle).
        let at = rng.random_range(100..1_500) as f64;
        let started = Instant::now();
        let counted = counted_at_least(&running, at).await;
        running.kill();
        println!(
            "kill {kill}: SIGKILL after {counted} records counted, {:.1} s after its start",
            started.elapsed().as_secs_f64()
        );
        running = backend(&t, "v3");
    }
    feeding.await.unwrap();
    let started = Instant::now();
    let got = wait_for(&t, &want).await;
    println!(
        "exact totals {:.1} s after the last record was written",
        started.elapsed().as_secs_f64()
    );
    assert_same(&want, &got, "exact totals after the kills");
    assert_eq!(
        running
            .metric_sum("rivulet_backend_dead_letters_total")
            .await,
        0.0
    );
    running.kill();
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_registry_gone_for_30_s_delays_but_loses_nothing() {
    let t = setup(2).await;
    let mut registry = Replica::start(&[]).await;
    register_contracts(&t, &registry.args()).await;
    let model = Model::new(77, 4);
    let records: Vec<Record> = model.sweep().take(20_000).collect();
    let (before, during) = records.split_at(5_000);
    let url = registry.url.clone();
    let running = backend_with(
        &t,
        "v3",
        "blue",
        &t.group,
        &t.summary,
        &["--schema-registry-url", &url],
    );
    // v1 records while the registry is up: their writer id is now known to the backend.
    Feed::on(&t.raw, &registry.args())
        .await
        .send(before, |_| Version::V1)
        .await;
    counted_at_least(&running, before.len() as f64).await;

    // The registry goes away; v2 records (a writer id the backend has not met) arrive.
    let feed = Feed::on(&t.raw, &registry.args()).await;
    registry.stop(false);
    let stopped = Instant::now();
    feed.send(during, |_| Version::V2).await;
    // The backend waits on them (counted as registry errors), never dead-letters them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while running
        .metric("rivulet_backend_registry_errors_total")
        .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the backend never met the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = running.metric("rivulet_backend_records_total").await;
    // The outage lasts 30 s from its start.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    assert!(
        running.metric("rivulet_backend_records_total").await < records.len() as f64,
        "some v2 records waited for the registry"
    );
    registry.restart().await;
    let back = Instant::now();
    // `before` and `during` are the two halves of `records`: a record's address says which.
    let want = expected(&records, |r| {
        if std::ptr::from_ref(r) < during.as_ptr() {
            Version::V1
        } else {
            Version::V2
        }
    });
    let got = wait_for(&t, &want).await;
    println!(
        "registry down 30 s: {held} of {} records counted during it, exact totals {:.1} s after it came back",
        records.len(),
        back.elapsed().as_secs_f64()
    );
    assert_same(&want, &got, "exact totals after the outage");
    // Records in = records counted + dead letters: nothing lost, nothing dead-lettered.
    assert_eq!(
        running.metric("rivulet_backend_records_total").await,
        records.len() as f64
    );
    assert_eq!(
        running
            .metric_sum("rivulet_backend_dead_letters_total")
            .await,
        0.0
    );
}
