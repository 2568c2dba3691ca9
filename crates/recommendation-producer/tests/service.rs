//! The service end to end against a real Prometheus, PostgreSQL and Kafka: a bulk job over
//! the synthetic cluster completes, every experiment's recommendations arrive on Kafka equal
//! to the ones computed from the samples, one summary per job, and the API answers the
//! reference's way (paging, filters, errors).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rivulet_recommendation_producer::engine::{Settings, recommend};
use rivulet_testkit::synthetic::Cluster;
use serde_json::{Value, json};
use support::service::{
    Setup, database, get, messages, messages_at_least, post, ready, service, service_with, topics,
    urlencode, wait_done, wait_ready,
};
use support::{END, cluster, container, same_json, serve};

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_bulk_job_publishes_exact_recommendations_once() {
    let cluster = cluster();
    let Setup {
        prometheus: _prometheus,
        topics,
        service: s,
    } = ready(&cluster, &[]).await;

    // Bad requests first: the reference's error shape, a clear message.
    for (body, needle) in [
        ("{\"filter\":", "Invalid request body"),
        (r#"{"datasource":"nope"}"#, "Datasource not registered"),
        (
            r#"{"time_range":{"start":"2026-11-02T00:00:00Z","end":"2026-11-01T00:00:00Z"}}"#,
            "Start time should be before end time",
        ),
    ] {
        let (status, error) = post(format!("{}/bulk", s.url), body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{error}"
        );
        assert_eq!(
            (error["httpcode"].as_u64(), error["status"].as_str()),
            (Some(400), Some("ERROR"))
        );
    }
    let (status, _) = get(format!(
        "{}/bulk?job_id=00000000-0000-0000-0000-000000000000",
        s.url
    ))
    .await;
    assert_eq!(status, 404);
    let (status, error) = get(format!("{}/bulk?job_id=nope", s.url)).await;
    assert_eq!(status, 400, "{error}");

    let body = json!({
        "time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
        "filter": {"exclude": {"namespace": ["tmp-.*"]}},
    });
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let summary = wait_done(&s, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(
        (
            summary["total_experiments"].as_u64(),
            summary["processed_experiments"].as_u64()
        ),
        (Some(7), Some(7))
    );
    assert_eq!(
        summary["input"]["filter"]["exclude"]["namespace"][0],
        "tmp-.*"
    );

    // Paged experiments, filtered by name.
    let (_, page) = get(format!(
        "{}/bulk?job_id={job}&include=summary|status,experiments&page=2&page_size=3",
        s.url
    ))
    .await;
    assert_eq!(page["summary"], json!({"status": "COMPLETED"}));
    assert_eq!(page["experiments"].as_object().unwrap().len(), 3);
    assert_eq!(
        page["experiments_page"],
        json!({"page": 2, "page_size": 3, "total": 7})
    );
    // A page number whose offset overflows is a 400, not a panic or a wrapped offset.
    let (status, error) = get(format!(
        "{}/bulk?job_id={job}&include=experiments&page={}&page_size=1000",
        s.url,
        usize::MAX
    ))
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("too large"),
        "{error}"
    );
    let (_, shop) = get(format!(
        "{}/bulk?job_id={job}&include=experiments&experiment_name=%7Cshop%7C",
        s.url
    ))
    .await;
    assert_eq!(shop["experiments"].as_object().unwrap().len(), 5);
    let history: Vec<&str> = shop["experiments"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["UNPROCESSED", "PROCESSED", "PUBLISHED"]);

    // Kafka: one message per experiment, exactly the recommendations the samples imply.
    let recs = messages(&topics[0]).await;
    assert_eq!(
        recs.len(),
        7,
        "{:?}",
        recs.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let by_key: BTreeMap<&str, &Value> = recs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(by_key.len(), 7, "published once each");
    for c in cluster
        .containers
        .iter()
        .filter(|c| c.namespace != "tmp-build")
    {
        let name = support::experiment_of(c);
        let message = by_key[format!("{job}|{name}").as_str()];
        assert_eq!(message["summary"]["job_id"], job.as_str());
        let response = &message["experiments"][&name]["apis"]["recommendations"]["response"][0];
        assert_eq!(
            response["kubernetes_objects"][0]["type"],
            c.workload_type.as_str()
        );
        let got = &response["kubernetes_objects"][0]["containers"][0]["recommendations"];
        let want =
            serde_json::to_value(recommend(&cluster.expected(c), &Settings::default())).unwrap();
        same_json(&want, got, &name);
        // The same document without Kafka.
        let (status, latest) = get(format!(
            "{}/recommendations?experiment_name={}",
            s.url,
            urlencode(&name)
        ))
        .await;
        assert_eq!(status, 200);
        same_json(
            &want,
            &latest[0]["kubernetes_objects"][0]["containers"][0]["recommendations"],
            &name,
        );
    }
    assert!(messages(&topics[1]).await.is_empty(), "no failures");
    let summaries = messages_at_least(&topics[2], 1).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].1["summary"]["status"], "COMPLETED");
    assert_eq!(summaries[0].1["summary"]["total_experiments"], 7);

    // The OpenAPI document lists every route, and each is served.
    let (status, doc) = get(format!("{}/openapi.json", s.url)).await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    for path in doc["paths"].as_object().unwrap().keys() {
        let status = reqwest::get(format!("{}{path}", s.url))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(
            ![404, 405].contains(&status) || path == "/recommendations",
            "{path}: {status}"
        );
    }

    // Listing and cancelling.
    let (_, list) = get(format!("{}/bulk/jobs?status=COMPLETED", s.url)).await;
    assert_eq!(list["jobs"][0]["job_id"], job.as_str());
    let response = reqwest::Client::new()
        .delete(format!("{}/bulk?job_id={job}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        409,
        "a finished job cannot be cancelled"
    );
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_replica_dying_mid_job_leaves_it_to_another_that_publishes_nothing_twice() {
    // 30 namespaces of 2 containers, one day of data each.
    let containers = (0..30)
        .flat_map(|n| {
            let ns = format!("team-{n:02}");
            [
                container(&ns, "api", "deployment", "api", 1, 1440),
                container(&ns, "db", "statefulset", "db", 1, 1440),
            ]
        })
        .collect();
    let cluster = Cluster {
        containers,
        end: END,
        ..Cluster::default()
    };
    let prometheus = serve(&cluster).await;
    let topics = topics().await;
    let db = database().await;
    // Replica A dies right after its 7th publication, before recording it: the worst moment.
    // The flag exists only in builds with the `testing` feature (scripts/test builds with it).
    let mut a = service_with(
        &prometheus.url,
        &db,
        &topics,
        &[
            "--parallel-namespaces",
            "1",
            "--fault-abort-after-publishes",
            "7",
        ],
    );
    wait_ready(&a).await;
    let body = json!({"time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"}});
    let (status, answer) = post(format!("{}/bulk", a.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "replica A did not die");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = service(&prometheus.url, &db, &topics);
    wait_ready(&b).await;
    let summary = wait_done(&b, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["processed_experiments"], 60);

    let recs = messages(&topics[0]).await;
    let mut keys: Vec<&str> = recs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(
        (before, keys.len()),
        (60, 60),
        "every experiment published exactly once"
    );
    assert_eq!(
        messages_at_least(&topics[2], 1).await.len(),
        1,
        "one summary"
    );
    let (_, doc) = get(format!(
        "{}/bulk?job_id={job}&include=experiments&page_size=100",
        b.url
    ))
    .await;
    let statuses: Vec<&str> = doc["experiments"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "PUBLISHED"), "{statuses:?}");
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn namespace_experiments_publish_each_namespaces_recommendations() {
    let cluster = cluster();
    let Setup {
        prometheus: _prometheus,
        topics,
        service: s,
    } = ready(&cluster, &[]).await;
    let (status, error) = post(format!("{}/bulk", s.url), r#"{"experiment_types":[]}"#).await;
    assert_eq!(status, 400, "{error}");
    let body = json!({
        "time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
        "filter": {"exclude": {"namespace": ["tmp-.*"]}},
        "experiment_types": ["namespace"],
    });
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let summary = wait_done(&s, &job).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    assert_eq!(summary["total_experiments"], 2);

    // Published concurrently: in any order.
    let mut recs = messages(&topics[0]).await;
    recs.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<&str> = recs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("{job}|prometheus-1|default|kube-system"),
            format!("{job}|prometheus-1|default|shop")
        ]
    );
    for (key, message) in &recs {
        let name = key.split_once('|').unwrap().1;
        let ns = name.rsplit('|').next().unwrap();
        let response = &message["experiments"][name]["apis"]["recommendations"]["response"][0];
        assert_eq!(response["experiment_type"], "namespace");
        let object = &response["kubernetes_objects"][0];
        assert_eq!(object["namespace"], ns);
        assert!(object.get("containers").is_none(), "{object}");
        assert_eq!(object["namespaces"]["namespace"], ns);
        let want = serde_json::to_value(recommend(
            &cluster.expected_namespace(ns),
            &Settings::default(),
        ))
        .unwrap();
        same_json(&want, &object["namespaces"]["recommendations"], name);
    }
    // shop's quota is its current configuration.
    let shop = &recs[1].1["experiments"]["prometheus-1|default|shop"]["apis"]["recommendations"]["response"]
        [0]["kubernetes_objects"][0]["namespaces"]["recommendations"]["data"];
    let at = shop.as_object().unwrap().values().next().unwrap();
    assert_eq!(at["current"]["requests"]["cpu"]["amount"], 3.0);
}

/// Waits until the job store records the job's summary as published.
async fn until_summary_published(db: &sqlx::PgPool, job: &str) {
    let id = uuid::Uuid::parse_str(job).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published: bool =
            sqlx::query_scalar("SELECT summary_published FROM bulk_jobs WHERE job_id = $1")
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap();
        if published {
            return;
        }
        assert!(Instant::now() < deadline, "the summary never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Prometheus, PostgreSQL and Kafka: run scripts/test"]
async fn a_summary_sent_but_not_recorded_is_recorded_not_sent_again() {
    let prometheus = serve(&cluster()).await;
    let topics = topics().await;
    let db = database().await;
    let s = service(&prometheus.url, &db, &topics);
    wait_ready(&s).await;
    let body = json!({
        "time_range": {"start": "2026-10-31T23:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
    });
    let (status, answer) = post(format!("{}/bulk", s.url), &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&s, &job).await["status"], "COMPLETED");
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    until_summary_published(&pool, &job).await;
    // As a replica leaves it that dies between sending the summary and recording it: the
    // summary in the topic, the job not marked, its lease free.
    sqlx::query(
        "UPDATE bulk_jobs SET summary_published = false, lease_until = NULL WHERE job_id = $1",
    )
    .bind(uuid::Uuid::parse_str(&job).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    until_summary_published(&pool, &job).await;
    let summaries: Vec<String> = messages(&topics[2])
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(summaries, vec![job], "found in the topic, not sent again");
}
