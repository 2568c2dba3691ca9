//! The REST API against a real registry process on the real broker: bad input, deletes,
//! references and authentication.

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

mod common;

use common::{Api, Replica, http, record, supplied, unique, widget_v1, widget_v2};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use serde_json::json;

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn bad_input_gets_confluent_errors() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };
    let subject = unique("bad");
    api.register_ok(&subject, &widget_v1()).await;
    let cases: Vec<(&str, common::Answer, u16, u64)> = vec![
        (
            "invalid Avro",
            api.post(
                &format!("/subjects/{subject}/versions"),
                &json!({ "schema": "{\"type\":\"record\"}" }),
            )
            .await,
            422,
            42201,
        ),
        (
            "not JSON schema text",
            api.post(
                &format!("/subjects/{subject}/versions"),
                &json!({ "schema": "{oops" }),
            )
            .await,
            422,
            42201,
        ),
        (
            "empty schema",
            api.post(&format!("/subjects/{subject}/versions"), &json!({}))
                .await,
            422,
            42201,
        ),
        (
            "protobuf",
            api.post(
                &format!("/subjects/{subject}/versions"),
                &json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" }),
            )
            .await,
            422,
            42201,
        ),
        (
            "malformed JSON",
            api.post_raw(&format!("/subjects/{subject}/versions"), "{\"schema\": ")
                .await,
            400,
            400,
        ),
        (
            "wrong shape",
            api.post_raw(&format!("/subjects/{subject}/versions"), "{\"schema\": 5}")
                .await,
            422,
            422,
        ),
        (
            "incompatible",
            api.register(
                &subject,
                &record("Widget", json!([{ "name": "sku", "type": "int" }])),
            )
            .await,
            409,
            409,
        ),
        (
            "unknown subject",
            api.get(&format!("/subjects/{}/versions", unique("none")))
                .await,
            404,
            40401,
        ),
        (
            "unknown subject version",
            api.get(&format!("/subjects/{}/versions/1", unique("none")))
                .await,
            404,
            40401,
        ),
        (
            "unknown version",
            api.get(&format!("/subjects/{subject}/versions/42")).await,
            404,
            40402,
        ),
        (
            "non-numeric version",
            api.get(&format!("/subjects/{subject}/versions/one")).await,
            422,
            42202,
        ),
        (
            "zero version",
            api.get(&format!("/subjects/{subject}/versions/0")).await,
            422,
            42202,
        ),
        (
            "unknown id",
            api.get("/schemas/ids/999999").await,
            404,
            40403,
        ),
        (
            "non-numeric id",
            api.get("/schemas/ids/abc").await,
            404,
            40403,
        ),
        (
            "lookup of an unknown schema",
            api.post(
                &format!("/subjects/{subject}"),
                &json!({ "schema": widget_v2().to_string() }),
            )
            .await,
            404,
            40403,
        ),
        (
            "lookup in an unknown subject",
            api.post(
                &format!("/subjects/{}", unique("none")),
                &json!({ "schema": widget_v2().to_string() }),
            )
            .await,
            404,
            40401,
        ),
        (
            "bad level",
            api.put("/config", &json!({ "compatibility": "SOMETIMES" }))
                .await,
            422,
            42203,
        ),
        (
            "missing level",
            api.put("/config", &json!({})).await,
            422,
            42203,
        ),
        (
            "bad mode",
            api.put("/mode", &json!({ "mode": "WRITEONLY" })).await,
            422,
            42204,
        ),
        (
            "no subject config",
            api.get(&format!("/config/{subject}")).await,
            404,
            40408,
        ),
        (
            "no subject mode",
            api.get(&format!("/mode/{subject}")).await,
            404,
            40409,
        ),
        ("unknown route", api.get("/nowhere").await, 404, 404),
        (
            "path that is not UTF-8",
            api.get("/subjects/%FF%FE/versions").await,
            400,
            400,
        ),
        ("wrong method", api.delete("/schemas/types").await, 405, 405),
    ];
    for (what, answer, status, code) in cases {
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{what}: {answer:?}"
        );
        assert_eq!(
            answer.content_type, "application/vnd.schemaregistry.v1+json",
            "{what}"
        );
        assert!(
            !answer.body["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what} has a message"
        );
    }
    assert_eq!(registry.metric("rivulet_registry_http_requests_total{method=\"POST\",route=\"/subjects/{subject}/versions\",status=\"500\"}").await, 0.0);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn soft_and_permanent_deletes() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };
    let subject = unique("del");
    let id1 = api.register_ok(&subject, &widget_v1()).await;
    api.register_ok(&subject, &widget_v2()).await;

    let not_soft = api
        .delete(&format!("/subjects/{subject}/versions/1?permanent=true"))
        .await;
    assert_eq!((not_soft.status, not_soft.code()), (404, 40407));
    assert_eq!(
        api.delete(&format!("/subjects/{subject}/versions/1"))
            .await
            .body,
        json!(1)
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions")).await.body,
        json!([2])
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions?deleted=true"))
            .await
            .body,
        json!([1, 2])
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions/1"))
            .await
            .code(),
        40402
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions/1?deleted=true"))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}")).await.status,
        200,
        "old messages stay decodable"
    );
    let twice = api.delete(&format!("/subjects/{subject}/versions/1")).await;
    assert_eq!((twice.status, twice.code()), (404, 40402));
    assert_eq!(
        api.delete(&format!("/subjects/{subject}/versions/1?permanent=true"))
            .await
            .body,
        json!(1)
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions?deleted=true"))
            .await
            .body,
        json!([2])
    );

    let subject_not_soft = api
        .delete(&format!("/subjects/{subject}?permanent=true"))
        .await;
    assert_eq!(subject_not_soft.code(), 40405);
    assert_eq!(
        api.delete(&format!("/subjects/{subject}")).await.body,
        json!([2])
    );
    assert!(
        !api.get("/subjects")
            .await
            .body
            .as_array()
            .unwrap()
            .contains(&json!(subject))
    );
    assert!(
        api.get("/subjects?deleted=true")
            .await
            .body
            .as_array()
            .unwrap()
            .contains(&json!(subject))
    );
    assert_eq!(
        api.delete(&format!("/subjects/{subject}")).await.code(),
        40404
    );
    assert_eq!(
        api.delete(&format!("/subjects/{subject}?permanent=true"))
            .await
            .body,
        json!([2])
    );
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions?deleted=true"))
            .await
            .code(),
        40401
    );
    assert_eq!(api.get(&format!("/schemas/ids/{id1}")).await.code(), 40403);
    // Registering the same schema again brings back its id: ids are never reused for others.
    assert_eq!(api.register_ok(&subject, &widget_v1()).await, id1);
    assert_eq!(
        api.get(&format!("/subjects/{subject}/versions")).await.body,
        json!([1])
    );
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn references_resolve_and_block_deletion() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };
    let (money, order) = (unique("money"), unique("order"));
    let money_schema = json!({ "type": "record", "name": "Money", "namespace": "test.rivulet", "fields": [{ "name": "cents", "type": "long" }] });
    api.register_ok(&money, &money_schema).await;
    let order_schema = record(
        "Order",
        json!([{ "name": "total", "type": "test.rivulet.Money" }]),
    );
    let refs = json!([{ "name": "test.rivulet.Money", "subject": money, "version": 1 }]);
    let without = api
        .post(
            &format!("/subjects/{order}/versions"),
            &json!({ "schema": order_schema.to_string() }),
        )
        .await;
    assert_eq!(
        without.code(),
        42201,
        "an unknown named type is an invalid schema"
    );
    let with = api
        .post(
            &format!("/subjects/{order}/versions"),
            &json!({ "schema": order_schema.to_string(), "references": refs }),
        )
        .await;
    assert_eq!(with.status, 200, "{with:?}");
    let id = with.body["id"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!("/schemas/ids/{id}")).await.body["references"],
        refs
    );
    assert_eq!(
        api.get(&format!("/subjects/{money}/versions/1/referencedby"))
            .await
            .body,
        json!([id])
    );
    let blocked = api.delete(&format!("/subjects/{money}/versions/1")).await;
    assert_eq!((blocked.status, blocked.code()), (422, 42206));
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn authentication_guards_writes() {
    let registry = Replica::start(&[
        "--auth-token",
        "s3cret",
        "--auth-user",
        "ops",
        "--auth-password",
        "pw",
    ])
    .await;
    let subject = unique("auth");
    let url = format!("{}/subjects/{subject}/versions", registry.url);
    let body = json!({ "schema": widget_v1().to_string() }).to_string();
    assert_eq!(http::call("POST", &url, Some(&body), &[]).await.code(), 401);
    assert_eq!(
        http::call(
            "POST",
            &url,
            Some(&body),
            &[("authorization", "Bearer wrong")]
        )
        .await
        .status,
        401
    );
    assert_eq!(
        http::call(
            "POST",
            &url,
            Some(&body),
            &[("authorization", "Bearer s3cret")]
        )
        .await
        .status,
        200
    );
    // Basic auth: "ops:pw".
    let put = http::call(
        "PUT",
        &format!("{}/config", registry.url),
        Some(r#"{"compatibility":"FULL"}"#),
        &[("authorization", "Basic b3BzOnB3")],
    )
    .await;
    assert_eq!(put.status, 200);
    assert_eq!(
        http::call(
            "DELETE",
            &format!("{}/subjects/{subject}", registry.url),
            None,
            &[]
        )
        .await
        .status,
        401
    );
    // Reads, look-ups and health stay open.
    assert_eq!(
        http::call("GET", &format!("{}/subjects", registry.url), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        http::call(
            "POST",
            &format!("{}/subjects/{subject}", registry.url),
            Some(&body),
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        http::call("GET", &format!("{}/readyz", registry.url), None, &[])
            .await
            .status,
        200
    );
    // Confluent's client with a token.
    let sr = SrSettings::new_builder(registry.url.clone())
        .set_token_authorization("s3cret")
        .build()
        .unwrap();
    assert!(
        post_schema(&sr, unique("auth2"), supplied(&widget_v2()))
            .await
            .is_ok()
    );
}
