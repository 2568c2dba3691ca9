//! `search` and `orderBy` over a few hundred instances in PostgreSQL: every page of every query
//! equals the filter and order the test computes itself; injection attempts are 400s and leave
//! the table as it was.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

mod support;

use std::cmp::Ordering;

use serde_json::Value;
use support::{Client, Fleet, setup};

const QUOTA: &str = "registered_users_per_organisation:\n  - id: \"7\"\n    any_user: true\n    max_allowed_instances: 10000\n";

#[derive(Clone, Debug)]
struct Row {
    id: String,
    name: String,
    owner: String,
    cloud_provider: String,
    region: String,
    status: String,
    instance_type: String,
    cluster_id: String,
    created_at: String,
}

/// SQL LIKE: `%` any run, `_` any one character.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    go(
        &text.chars().collect::<Vec<_>>(),
        &pattern.chars().collect::<Vec<_>>(),
    )
}

async fn all_pages(c: &Client, query: &str, size: usize) -> (Vec<String>, i64) {
    let mut ids = Vec::new();
    let mut total = -1;
    for page in 1.. {
        let (status, body) = c
            .get(&format!("/kafkas?size={size}&page={page}&{query}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        total = body["total"].as_i64().unwrap();
        let items = body["items"].as_array().unwrap();
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        if items.len() < size {
            break;
        }
    }
    (ids, total)
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn search_and_order_by_equal_the_filter_computed_here() {
    let s = setup(QUOTA, 100_000).await;
    let fleet = Fleet::ready(
        &s,
        "api",
        &[
            "--workers",
            "false",
            "--max-allowed-developer-instances",
            "1000",
        ],
    )
    .await;
    let owners = ["ann", "Bob-1", "bob-2", "carl", "BOBBY"];
    let mut rows = Vec::new();
    for i in 0..300 {
        let owner = owners[i % owners.len()];
        let c = s.client(&fleet, owner, Some("7"), false);
        let (provider, region) = if i % 4 == 0 {
            ("gcp", "us-east1")
        } else {
            ("aws", "us-east-1")
        };
        let plan = if i % 3 == 0 && provider == "aws" {
            "developer.x1"
        } else {
            "standard.x1"
        };
        let name = format!("team-{}-svc-{i}", i % 7);
        let (status, body) = c
            .send(
                reqwest::Method::POST,
                "/kafkas?async=true",
                Some(serde_json::json!({"name": name, "cloud_provider": provider, "region": region, "plan": plan})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        rows.push(Row {
            id: body["id"].as_str().unwrap().into(),
            name,
            owner: owner.into(),
            cloud_provider: provider.into(),
            region: region.into(),
            status: "accepted".into(),
            instance_type: plan.split('.').next().unwrap().into(),
            cluster_id: String::new(),
            created_at: body["created_at"].as_str().unwrap().into(),
        });
    }
    // Vary status and placement (the workers are off): set them in the table directly.
    let db = s.db().await;
    for (i, r) in rows.iter_mut().enumerate() {
        let (status, cluster) = match i % 5 {
            0 => ("ready", "c1"),
            1 => ("failed", ""),
            2 => ("provisioning", "c2"),
            _ => continue,
        };
        sqlx::query(
            "UPDATE kafka_requests SET status = $2, cluster_id = NULLIF($3, '') WHERE id = $1",
        )
        .bind(&r.id)
        .bind(status)
        .bind(cluster)
        .execute(&db)
        .await
        .unwrap();
        r.status = status.into();
        r.cluster_id = cluster.into();
    }
    // Creation times to the microsecond, as the table orders them.
    let times: std::collections::HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') FROM kafka_requests",
    )
    .fetch_all(&db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for r in &mut rows {
        r.created_at = times[&r.id].clone();
    }
    let c = s.client(&fleet, "ann", Some("7"), false);
    type Pred = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(&str, Pred)> = vec![
        (
            "name = team-3-svc-10",
            Box::new(|r| r.name == "team-3-svc-10"),
        ),
        (
            "owner ILIKE 'bob%'",
            Box::new(|r| r.owner.to_lowercase().starts_with("bob")),
        ),
        (
            "owner LIKE 'bob%'",
            Box::new(|r| r.owner.starts_with("bob")),
        ),
        (
            "name LIKE 'team-1-svc-_5'",
            Box::new(|r| like(&r.name, "team-1-svc-_5")),
        ),
        (
            "cloud_provider = gcp OR status IN (ready, 'failed')",
            Box::new(|r| r.cloud_provider == "gcp" || r.status == "ready" || r.status == "failed"),
        ),
        (
            "status NOT IN (accepted) AND (instance_type = developer OR cluster_id = c2)",
            Box::new(|r| {
                r.status != "accepted" && (r.instance_type == "developer" || r.cluster_id == "c2")
            }),
        ),
        (
            "instance_type <> standard and region = us-east-1",
            Box::new(|r| r.instance_type != "standard" && r.region == "us-east-1"),
        ),
        ("cluster_id = ''", Box::new(|r| r.cluster_id.is_empty())),
        (
            "cluster_id <> c1 AND owner = ann OR name = team-0-svc-7",
            Box::new(|r| (r.cluster_id != "c1" && r.owner == "ann") || r.name == "team-0-svc-7"),
        ),
        ("name = 'x'' OR ''1''=''1'", Box::new(|_| false)),
    ];
    let by_name = |a: &Row, b: &Row| a.name.cmp(&b.name).then(a.id.cmp(&b.id));
    for (search, pred) in &cases {
        let mut want: Vec<Row> = rows.iter().filter(|r| pred(r)).cloned().collect();
        want.sort_by(by_name);
        let want: Vec<String> = want.into_iter().map(|r| r.id).collect();
        let (got, total) = all_pages(&c, &format!("search={}", encode(search)), 37).await;
        assert_eq!(total, i64::try_from(want.len()).unwrap(), "{search}");
        assert_eq!(got, want, "{search}");
    }
    assert!(
        cases.iter().filter(|(_, p)| rows.iter().any(p)).count() >= 8,
        "most cases match something"
    );
    type Order = Box<dyn Fn(&Row, &Row) -> Ordering>;
    let orders: Vec<(&str, Order)> = vec![
        (
            "created_at desc",
            Box::new(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id))),
        ),
        (
            "owner asc, name desc",
            Box::new(|a, b| {
                a.owner
                    .cmp(&b.owner)
                    .then(b.name.cmp(&a.name))
                    .then(a.id.cmp(&b.id))
            }),
        ),
        (
            "status, cloud_provider desc",
            Box::new(|a, b| {
                a.status
                    .cmp(&b.status)
                    .then(b.cloud_provider.cmp(&a.cloud_provider))
                    .then(a.id.cmp(&b.id))
            }),
        ),
    ];
    for (order, cmp) in &orders {
        let mut want = rows.clone();
        want.sort_by(|a, b| cmp(a, b));
        let want: Vec<String> = want.into_iter().map(|r| r.id).collect();
        let (got, _) = all_pages(&c, &format!("orderBy={}", encode(order)), 100).await;
        assert_eq!(got, want, "{order}");
    }
    // Injection attempts: refused before any SQL is built.
    for attack in [
        "name = x; DROP TABLE kafka_requests",
        "name = x) OR (1 = 1",
        "1 = 1",
        "name = x OR 1 = 1",
        "name IN (SELECT id FROM kafka_requests)",
        "name = x UNION SELECT * FROM leader_leases",
        "password = x",
        "name = x -- ",
        "name = x /* */",
        "name = \"x\" OR \"\" = \"\"",
    ] {
        let (status, body): (u16, Value) =
            c.get(&format!("/kafkas?search={}", encode(attack))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("KAFKAS-MGMT-23")),
            "{attack}: {body}"
        );
    }
    for attack in [
        "name; DROP TABLE kafka_requests",
        "(select 1)",
        "name desc nulls first",
    ] {
        let (status, _) = c.get(&format!("/kafkas?orderBy={}", encode(attack))).await;
        assert_eq!(status, 400, "{attack}");
    }
    let (_, total) = all_pages(&c, "", 100).await;
    assert_eq!(total, 300, "the table is as it was");
}
