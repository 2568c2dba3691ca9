//! Static assignment (`--partitions`, or `KONSUMERATOR_PARTITION` as consumer-autoscaler sets
//! it): backends that each own given input partitions, without joining the group, keep the
//! totals exact; a second backend on the same partitions fences the first, which exits 1.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use rivulet_contracts::Version;
use rivulet_testkit::model::{Model, Record};
use rivulet_testkit::widgets::{
    Process, Topics, assert_same, backend_with, expected, produce, setup, wait_for,
};

fn v3(_: &Record) -> Version {
    Version::V3
}

/// A static backend of `t` owning `partitions` (`0,1`).
fn owner(t: &Topics, partitions: &str) -> Process {
    backend_with(
        t,
        "v3",
        "blue",
        &t.group,
        &t.summary,
        &["--partitions", partitions],
    )
}

/// The sweep of `model` for January and February, January produced: (all, January,
/// February).
async fn january_produced(t: &Topics, model: &Model) -> (Vec<Record>, Vec<Record>, Vec<Record>) {
    let records: Vec<Record> = model.sweep().take_while(|r| r.month <= 2).collect();
    let (first, later): (Vec<Record>, Vec<Record>) =
        records.iter().cloned().partition(|r| r.month == 1);
    produce(&t.raw, &first, v3).await;
    (records, first, later)
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn disjoint_backends_are_exact_across_a_kill() {
    let t = setup(4).await;
    let (records, first, later) = january_produced(&t, &Model::new(71, 6)).await;
    let mut a = owner(&t, "0,1");
    let b = owner(&t, "2,3");
    let want = expected(&first, v3);
    assert_same(&want, &wait_for(&t, &want).await, "two static backends");

    // kill -9 one mid-stream, restart it: still exact.
    produce(&t.raw, &later, v3).await;
    a.signal("KILL");
    a.kill();
    let _a = owner(&t, "0,1");
    let want = expected(&records, v3);
    assert_same(
        &want,
        &wait_for(&t, &want).await,
        "after kill -9 and restart",
    );
    drop(b);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn a_second_owner_fences_the_first_which_exits() {
    let t = setup(2).await;
    let (records, first, later) = january_produced(&t, &Model::new(72, 4)).await;
    let mut a = owner(&t, "0,1");
    let want = expected(&first, v3);
    assert_same(&want, &wait_for(&t, &want).await, "one static backend");

    // The same partitions again: it opens them by fencing a's producers.
    let c = owner(&t, "0,1");
    c.wait_ok("/readyz", Duration::from_secs(60)).await;
    produce(&t.raw, &later, v3).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = a.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the fenced backend is still running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.code(), Some(1), "a fenced static backend exits 1");
    let want = expected(&records, v3);
    assert_same(&want, &wait_for(&t, &want).await, "the new owner's totals");
    drop(c);
}
