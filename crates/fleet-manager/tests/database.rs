//! PostgreSQL made unreachable mid-run (a proxy in front of the test stack's server, cut and
//! restored; the server itself is untouched): requests fail with 503 in the error shape,
//! `/readyz` follows, the workers wait, and everything resumes when the database returns.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

mod support;

use std::time::Duration;

use rivulet_testkit::proxy::TcpProxy;
use rivulet_testkit::strimzi::Answer;
use support::{Fleet, QUOTAS, StandIn, eventually, setup};

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn the_database_going_away_is_503_and_the_work_resumes_when_it_returns() {
    let strimzi = StandIn::start().await;
    let s = setup(QUOTAS, 10).await;
    // postgres://user@host:port/db → the same through the proxy.
    let (scheme_user, rest) = s.database.split_once('@').unwrap();
    let (server, db) = rest.split_once('/').unwrap();
    let proxy = TcpProxy::start(server).await;
    let through = format!("{scheme_user}@{}/{db}", proxy.addr);
    let mut fleet = Fleet::start(&s, &through, "a", &[]).await;
    let readyz = format!("{}/readyz", fleet.url);
    let ready = || async {
        reqwest::get(&readyz)
            .await
            .ok()
            .map(|r| r.status().as_u16())
    };
    eventually(&fleet, Duration::from_secs(20), || async {
        (ready().await == Some(200)).then_some(())
    })
    .await;
    let alice = s.client(&fleet, "alice", None, false);
    let id = alice.create_ok("patient", "standard.x1").await;
    alice
        .wait_status(&fleet, &id, "provisioning", Duration::from_secs(60))
        .await;

    proxy.set_down(true);
    strimzi.answer(&id, Answer::Ready);
    for (status, body) in [
        alice.get("/kafkas").await,
        alice.get(&format!("/kafkas/{id}")).await,
        alice.create("another", "standard.x1").await,
    ] {
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "KAFKAS-MGMT-503", "{body}");
        assert_eq!(body["kind"], "Error");
    }
    eventually(&fleet, Duration::from_secs(20), || async {
        (ready().await == Some(503)).then_some(())
    })
    .await;
    // The workers cannot move it meanwhile (read directly, not through the proxy).
    let direct = s.db().await;
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM kafka_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(&direct)
            .await
            .unwrap()
    };
    assert_eq!(status().await, "provisioning");
    let m = fleet.metrics().await;
    let failed_queries: f64 = m
        .lines()
        .filter(|l| l.starts_with("database_query_count{") && l.contains("status=\"error\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failed_queries > 0.0, "the failures are counted:\n{m}");
    assert!(
        fleet.child.try_wait().unwrap().is_none(),
        "the fleet manager exited:\n{}",
        fleet.logs()
    );

    proxy.set_down(false);
    let ready_again = alice
        .wait_status(&fleet, &id, "ready", Duration::from_secs(60))
        .await;
    assert!(ready_again["bootstrap_server_host"].as_str().is_some());
    eventually(&fleet, Duration::from_secs(20), || async {
        (ready().await == Some(200)).then_some(())
    })
    .await;
    alice.create_ok("another", "standard.x1").await;
    let m = fleet.metrics().await;
    assert!(
        rivulet_testkit::metric_value(
            &m,
            "database_query_count{operation=\"transition\",status=\"ok\"}"
        ) >= 3.0,
        "{m}"
    );
    fleet.kill9();
}
