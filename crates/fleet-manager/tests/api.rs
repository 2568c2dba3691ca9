//! The API's contract against a real PostgreSQL (workers off: nothing moves): tokens, the
//! error shape and catalogue, validation, who sees and changes what, quotas (also under
//! concurrency), the catalogue endpoints and the admins-only cluster list.

#![allow(clippy::unwrap_used)] // a failed unwrap fails the test

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, Fleet, QUOTAS, Setup, setup};

async fn api_only(s: &Setup) -> Fleet {
    Fleet::ready(s, "api", &["--workers", "false"]).await
}

fn assert_error(reply: &(u16, Value), status: u16, code: u32) {
    let (got, body) = reply;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["kind"], "Error", "{body}");
    assert_eq!(body["code"], format!("KAFKAS-MGMT-{code}"), "{body}");
    assert_eq!(body["id"], code.to_string(), "{body}");
    assert_eq!(body["href"], format!("/api/kafkas_mgmt/v1/errors/{code}"));
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        body["operation_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

fn with_token(c: &Client, token: &str) -> Client {
    Client {
        http: c.http.clone(),
        base: c.base.clone(),
        token: token.to_owned(),
    }
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn bad_tokens_are_401_in_the_error_shape() {
    let s = setup(QUOTAS, 10).await;
    let fleet = api_only(&s).await;
    let alice = s.client(&fleet, "alice", None, false);
    assert_eq!(alice.get("/kafkas").await.0, 200);
    let now = chrono::Utc::now().timestamp();
    let expired = s.keys.token("alice", None, false, now - 7200, 60).unwrap();
    let other = rivulet_fleet_manager::auth::DevKeys::generate("test").unwrap();
    let wrong_key = other.token("alice", None, false, now, 3600).unwrap();
    let claims = B64.encode(json!({"username": "alice", "exp": now + 3600}).to_string());
    let none = format!("{}.{claims}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    for (what, token) in [
        ("expired", expired),
        ("wrong key", wrong_key),
        ("alg none", none),
        ("garbage", "not-a-token".into()),
    ] {
        let r = with_token(&alice, &token).get("/kafkas").await;
        assert_error(&r, 401, 15);
        assert!(!r.1["reason"].as_str().unwrap().is_empty(), "{what}");
    }
    let r = alice
        .http
        .get(format!("{}/api/kafkas_mgmt/v1/kafkas", fleet.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // The catalogue, the version and the document need no token.
    let anon = with_token(&alice, "");
    assert_eq!(anon.get("/errors").await.0, 200);
    assert_eq!(anon.get("").await.0, 200);
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn the_error_catalogue_and_refusals_have_the_reference_codes() {
    let s = setup(QUOTAS, 10).await;
    let fleet = api_only(&s).await;
    let alice = s.client(&fleet, "alice", None, false);
    let (status, list) = alice.get("/errors").await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert!(
        items.iter().any(|e| e["code"] == "KAFKAS-MGMT-36"),
        "{list}"
    );
    let (status, one) = alice.get("/errors/7").await;
    assert_eq!((status, one["code"].as_str()), (200, Some("KAFKAS-MGMT-7")));
    assert_error(&alice.get("/errors/999").await, 404, 7);
    assert_error(&alice.get("/kafkas/nope").await, 404, 7);
    assert_error(&alice.get("/no/such/path").await, 404, 7);
    assert_error(&alice.send(Method::PUT, "/kafkas", None).await, 405, 10);
    let post = |body: Value| alice.send(Method::POST, "/kafkas?async=true", Some(body));
    assert_error(&post(json!({"name": "Bad_Name"})).await, 400, 32);
    assert_error(&post(json!({"name": "a".repeat(33)})).await, 400, 34);
    assert_error(
        &post(json!({"name": "ok", "cloud_provider": "mars"})).await,
        400,
        30,
    );
    assert_error(
        &post(json!({"name": "ok", "region": "moon-1"})).await,
        400,
        31,
    );
    assert_error(
        &post(json!({"name": "ok", "plan": "huge.x1"})).await,
        400,
        41,
    );
    assert_error(
        &post(json!({"name": "ok", "plan": "standard.x9"})).await,
        400,
        42,
    );
    assert_error(
        &post(json!({"name": "ok", "plan": "standard"})).await,
        400,
        42,
    );
    assert_error(&post(json!({"name": 7})).await, 400, 17);
    let sync = alice
        .send(Method::POST, "/kafkas", Some(json!({"name": "ok"})))
        .await;
    assert_error(&sync, 400, 103);
    let raw = alice
        .http
        .post(format!(
            "{}/api/kafkas_mgmt/v1/kafkas?async=true",
            fleet.url
        ))
        .bearer_auth(&alice.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["code"], "KAFKAS-MGMT-17");
    for bad in ["page=0", "size=1000", "size=-1", "page=abc"] {
        assert_error(&alice.get(&format!("/kafkas?{bad}")).await, 400, 21);
    }
    assert_error(&alice.get("/kafkas?orderBy=pg_sleep(1)").await, 400, 21);
    assert_error(&alice.get("/kafkas?search=name%20%3D").await, 400, 23);
    // A name is unique among an owner's live instances.
    alice.create_ok("dup", "standard.x1").await;
    assert_error(&alice.create("dup", "standard.x1").await, 409, 36);
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn callers_see_their_organisation_and_change_only_their_own() {
    let s = setup(QUOTAS, 10).await;
    let fleet = api_only(&s).await;
    let carol = s.client(&fleet, "carol", Some("42"), false);
    let dave = s.client(&fleet, "dave", Some("42"), false);
    let erin = s.client(&fleet, "erin", Some("42"), true);
    let alice = s.client(&fleet, "alice", None, false);
    let id = carol.create_ok("shared", "standard.x1").await;
    // Visible to the organisation, not to a user outside it.
    assert_eq!(dave.get(&format!("/kafkas/{id}")).await.0, 200);
    assert_eq!(dave.get("/kafkas").await.1["total"], 1);
    assert_eq!(alice.get(&format!("/kafkas/{id}")).await.0, 404);
    assert_eq!(alice.get("/kafkas").await.1["total"], 0);
    // The same name in another scope is another instance.
    alice.create_ok("shared", "standard.x1").await;
    // Another member may not change or delete it; the owner and an org admin may.
    async fn patch(c: &Client, id: &str, body: Value) -> (u16, Value) {
        c.send(Method::PATCH, &format!("/kafkas/{id}"), Some(body))
            .await
    }
    assert_error(
        &patch(&dave, &id, json!({"reauthentication_enabled": false})).await,
        403,
        4,
    );
    assert_error(
        &dave
            .send(Method::DELETE, &format!("/kafkas/{id}?async=true"), None)
            .await,
        403,
        4,
    );
    let (status, body) = patch(&carol, &id, json!({"reauthentication_enabled": false})).await;
    assert_eq!(
        (status, &body["reauthentication_enabled"]),
        (200, &json!(false)),
        "{body}"
    );
    let (status, body) = patch(&erin, &id, json!({"owner": "dave"})).await;
    assert_eq!((status, &body["owner"]), (200, &json!("dave")), "{body}");
    assert_error(&patch(&erin, &id, json!({"owner": ""})).await, 400, 8);
    assert_error(
        &dave
            .send(Method::DELETE, &format!("/kafkas/{id}"), None)
            .await,
        400,
        103,
    );
    let (status, body) = dave
        .send(Method::DELETE, &format!("/kafkas/{id}?async=true"), None)
        .await;
    assert_eq!(
        (status, &body["status"]),
        (202, &json!("deprovision")),
        "{body}"
    );
    // Again: still accepted, nothing changes.
    assert_eq!(
        dave.send(Method::DELETE, &format!("/kafkas/{id}?async=true"), None)
            .await
            .0,
        202
    );
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn quotas_refuse_the_next_instance_and_only_one_of_two_racing_for_the_last() {
    let s = setup(QUOTAS, 100).await;
    let fleet = api_only(&s).await;
    // alice: 3 standard units (x1 takes 1, x2 takes 2).
    let alice = s.client(&fleet, "alice", None, false);
    alice.create_ok("a1", "standard.x2").await;
    alice.create_ok("a2", "standard.x1").await;
    assert_error(&alice.create("a3", "standard.x1").await, 403, 5);
    // Nobody's quota: developer only, one each.
    let zed = s.client(&fleet, "zed", None, false);
    assert_error(&zed.create("z1", "standard.x1").await, 403, 120);
    let (status, body) = zed
        .send(
            Method::POST,
            "/kafkas?async=true",
            Some(json!({"name": "z1"})),
        )
        .await;
    assert_eq!(
        (status, &body["instance_type"]),
        (202, &json!("developer")),
        "{body}"
    );
    assert_error(&zed.create("z2", "developer.x1").await, 403, 5);
    // A region's own limit (eu-west-1: 2 standard units, for everyone together).
    async fn eu(c: &Client, name: &str) -> (u16, Value) {
        c.send(
            Method::POST,
            "/kafkas?async=true",
            Some(json!({"name": name, "region": "eu-west-1", "plan": "standard.x1"})),
        )
        .await
    }
    let carol = s.client(&fleet, "carol", Some("42"), false);
    assert_eq!(eu(&carol, "e1").await.0, 202);
    assert_eq!(eu(&carol, "e2").await.0, 202);
    assert_error(&eu(&carol, "e3").await, 403, 24);
    // Organisation 42 shares 5 units, 2 used: three more, then two at once for the last.
    let dave = s.client(&fleet, "dave", Some("42"), false);
    dave.create_ok("d1", "standard.x1").await;
    dave.create_ok("d2", "standard.x1").await;
    for round in 0..5 {
        let (c, d) = (format!("race-c{round}"), format!("race-d{round}"));
        let (a, b) = tokio::join!(
            carol.create(&c, "standard.x1"),
            dave.create(&d, "standard.x1")
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        if round == 0 {
            assert_eq!(statuses, [202, 403], "{a:?} {b:?}");
        } else {
            assert_eq!(statuses, [403, 403], "{a:?} {b:?}");
        }
    }
    let (_, list) = dave.get("/kafkas?size=100").await;
    assert_eq!(list["total"], 5, "{list}");
    // Two at once for one name: one 202, one 409.
    let bob = s.client(&fleet, "bob", None, false);
    let (a, b) = tokio::join!(
        bob.create("same", "standard.x1"),
        bob.create("same", "standard.x1")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
}

#[tokio::test]
#[ignore = "needs the test stack (scripts/test)"]
async fn the_catalogue_endpoints_and_the_admins_cluster_list() {
    let s = setup(QUOTAS, 3).await;
    let fleet = api_only(&s).await;
    let alice = s.client(&fleet, "alice", None, false);
    let (status, providers) = alice.get("/cloud_providers").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = providers["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(names, ["aws", "gcp"]);
    let (_, regions) = alice.get("/cloud_providers/aws/regions").await;
    let us = &regions["items"][0];
    assert_eq!(us["id"], "us-east-1");
    let standard = us["capacity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["instance_type"] == "standard")
        .unwrap();
    assert_eq!(standard["available_sizes"], json!(["x1", "x2"]));
    assert_error(&alice.get("/cloud_providers/mars/regions").await, 404, 7);
    let (status, types) = alice.get("/instance_types/aws/us-east-1").await;
    assert_eq!(status, 200);
    let dev = types["instance_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "developer")
        .unwrap();
    assert_eq!(dev["sizes"][0]["lifespan_seconds"], 172_800);
    assert_eq!(dev["sizes"][0]["max_message_size"]["bytes"], 1 << 20);
    assert_error(&alice.get("/instance_types/aws/moon-1").await, 404, 7);
    // Clusters: admins only, capacity used, never a kubeconfig.
    assert_error(&alice.get("/clusters").await, 403, 11);
    alice.create_ok("c1", "standard.x2").await;
    let root = s.client(&fleet, "root", None, false);
    let (status, clusters) = root.get("/clusters").await;
    assert_eq!(status, 200, "{clusters}");
    let text = clusters.to_string();
    assert!(
        !text.contains("kubeconfig")
            && !text.contains(&rivulet_testkit::kube::kubeconfig().display().to_string()),
        "{text}"
    );
    assert_eq!(clusters["items"][0]["id"], "local");
    // Not placed yet (workers off): nothing used.
    assert_eq!(clusters["items"][0]["capacity_used_total"], 0);
    // The OpenAPI document lists every route the API serves.
    let doc: Value = reqwest::get(format!("{}/api/kafkas_mgmt/v1/openapi", fleet.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/kafkas_mgmt/v1/kafkas",
        "/api/kafkas_mgmt/v1/kafkas/{id}",
        "/api/kafkas_mgmt/v1/errors/{id}",
        "/api/kafkas_mgmt/v1/clusters",
        "/api/kafkas_mgmt/v1/instance_types/{cloud_provider}/{cloud_region}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the document"
        );
    }
}
