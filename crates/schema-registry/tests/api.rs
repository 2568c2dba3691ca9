//! The REST API against a real registry process on the real broker.

#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

mod common;

use apache_avro::types::Value as Avro;
use common::{Api, Replica, record, supplied, unique, widget_v1, widget_v2};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_all_subjects, get_all_versions, get_schema_by_id, get_schema_by_subject,
    post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{Value, json};

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn confluent_client_round_trips() {
    let registry = Replica::start(&[]).await;
    let sr = SrSettings::new(registry.url.clone());
    let topic = unique("widgets");
    let subject = format!("{topic}-value");

    let v1 = post_schema(&sr, subject.clone(), supplied(&widget_v1()))
        .await
        .unwrap();
    let again = post_schema(&sr, subject.clone(), supplied(&widget_v1()))
        .await
        .unwrap();
    assert_eq!(v1.id, again.id, "registering twice gives the same id");
    // Layout does not matter: same schema, same id, in any subject.
    let pretty = serde_json::to_string_pretty(&widget_v1()).unwrap();
    let elsewhere = post_schema(
        &sr,
        unique("other"),
        SuppliedSchema::new(None, SchemaType::Avro, pretty),
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.id, v1.id);
    let v2 = post_schema(&sr, subject.clone(), supplied(&widget_v2()))
        .await
        .unwrap();
    assert_ne!(v2.id, v1.id);

    let by_id = get_schema_by_id(v1.id, &sr).await.unwrap();
    let stored: Value = serde_json::from_str(&by_id.schema).unwrap();
    assert_eq!(stored["name"], "Widget");
    assert_eq!(stored["fields"].as_array().unwrap().len(), 2);

    let latest = get_schema_by_subject(
        &sr,
        &SubjectNameStrategy::TopicNameStrategy(topic.clone(), false),
    )
    .await
    .unwrap();
    assert_eq!(latest.id, v2.id);
    assert!(get_all_subjects(&sr).await.unwrap().contains(&subject));
    assert_eq!(
        get_all_versions(&sr, subject.clone()).await.unwrap(),
        vec![1, 2]
    );

    // Confluent framing end to end: encode with the latest schema, decode by the id in the frame.
    let encoder = AvroEncoder::new(SrSettings::new(registry.url.clone()));
    let bytes = encoder
        .encode(
            vec![
                ("sku", Avro::String("SKU_000001".into())),
                ("qty", Avro::Int(70)),
                ("defects", Avro::Union(1, Box::new(Avro::Int(3)))),
            ],
            SubjectNameStrategy::TopicNameStrategy(topic.clone(), false),
        )
        .await
        .unwrap();
    assert_eq!(bytes[0], 0);
    assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), v2.id);
    let decoded = AvroDecoder::new(SrSettings::new(registry.url.clone()))
        .decode(Some(&bytes))
        .await
        .unwrap();
    let Avro::Record(fields) = decoded.value else {
        panic!("not a record")
    };
    assert_eq!(fields[1], ("qty".into(), Avro::Int(70)));

    // The common crate's look-up (what production producers use: no registration).
    let schema = apache_avro::Schema::parse_str(&widget_v1().to_string()).unwrap();
    let found = rivulet_common::avro::lookup(&sr, &subject, &schema)
        .await
        .unwrap();
    assert_eq!((found.id, found.version), (v1.id, 1));
    let missing = apache_avro::Schema::parse_str(
        &record("Nope", json!([{"name":"x","type":"int"}])).to_string(),
    )
    .unwrap();
    assert!(
        rivulet_common::avro::lookup(&sr, &subject, &missing)
            .await
            .is_err()
    );

    // A different default is a different schema.
    let other_default = record(
        "Widget",
        json!([{ "name": "sku", "type": "string" }, { "name": "qty", "type": "int", "default": 0 }]),
    );
    let api = Api {
        base: &registry.url,
    };
    let other = api.register_ok(&unique("defaults"), &other_default).await;
    assert_ne!(other, u64::from(v1.id));
}

/// Registers `history` under a fresh subject at `level`, then submits `candidate`.
async fn verdict(api: &Api<'_>, level: &str, history: &[Value], candidate: &Value) -> bool {
    let subject = unique(&format!("compat-{}", level.to_lowercase()));
    let set = api
        .put(
            &format!("/config/{subject}"),
            &json!({ "compatibility": level }),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    for schema in history {
        api.register_ok(&subject, schema).await;
    }
    let check = api
        .post(
            &format!("/compatibility/subjects/{subject}/versions?verbose=true"),
            &json!({ "schema": candidate.to_string() }),
        )
        .await;
    assert_eq!(check.status, 200, "{check:?}");
    let answer = api.register(&subject, candidate).await;
    let accepted = match answer.status {
        200 => true,
        409 => {
            assert_eq!(answer.code(), 409);
            assert!(!check.body["messages"].as_array().unwrap().is_empty());
            false
        }
        other => panic!("unexpected {other}: {answer:?}"),
    };
    assert_eq!(
        check.body["is_compatible"].as_bool(),
        Some(accepted),
        "the check endpoint agrees with registration"
    );
    accepted
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn every_compatibility_level() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };
    let f = |fields: Value| record("W", fields);
    let qty = json!({ "name": "qty", "type": "int" });
    let base = f(json!([qty]));
    let optional = f(json!([qty, { "name": "d", "type": ["null", "int"], "default": null }]));
    let required = f(json!([qty, { "name": "d", "type": "int" }]));
    let with_default = f(json!([qty, { "name": "d", "type": "int", "default": 0 }]));
    let with_e = f(json!([qty, { "name": "e", "type": "int" }]));

    // Adding an optional field: fine everywhere.
    for level in [
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ] {
        assert!(
            verdict(&api, level, std::slice::from_ref(&base), &optional).await,
            "{level}"
        );
    }
    // Adding a required field: new readers cannot read old data.
    let expect = [
        ("NONE", true),
        ("BACKWARD", false),
        ("FORWARD", true),
        ("FULL", false),
    ];
    for (level, ok) in expect {
        assert_eq!(
            verdict(&api, level, std::slice::from_ref(&base), &required).await,
            ok,
            "{level} adding a required field"
        );
    }
    // Removing a field without default: old readers cannot read new data.
    let expect = [
        ("NONE", true),
        ("BACKWARD", true),
        ("FORWARD", false),
        ("FULL", false),
    ];
    for (level, ok) in expect {
        assert_eq!(
            verdict(&api, level, std::slice::from_ref(&with_e), &base).await,
            ok,
            "{level} removing a field"
        );
    }
    // Transitive levels look past the latest version.
    let history = [base.clone(), with_default.clone()];
    assert!(verdict(&api, "BACKWARD", &history, &required).await);
    assert!(!verdict(&api, "BACKWARD_TRANSITIVE", &history, &required).await);
    let history = [required.clone(), with_default.clone()];
    assert!(verdict(&api, "FORWARD", &history, &base).await);
    assert!(!verdict(&api, "FORWARD_TRANSITIVE", &history, &base).await);
    let history = [base.clone(), with_default.clone()];
    assert!(verdict(&api, "FULL", &history, &required).await);
    assert!(!verdict(&api, "FULL_TRANSITIVE", &history, &required).await);

    // Checking against one version, and against a subject that does not exist yet.
    let subject = unique("one-version");
    api.register_ok(&subject, &base).await;
    let one = api
        .post(
            &format!("/compatibility/subjects/{subject}/versions/latest"),
            &json!({ "schema": required.to_string() }),
        )
        .await;
    assert_eq!(one.body["is_compatible"], false);
    let fresh = api
        .post(
            &format!("/compatibility/subjects/{}/versions", unique("nobody")),
            &json!({ "schema": required.to_string() }),
        )
        .await;
    assert_eq!(fresh.body["is_compatible"], true);
    let missing = api
        .post(
            &format!("/compatibility/subjects/{subject}/versions/9"),
            &json!({ "schema": base.to_string() }),
        )
        .await;
    assert_eq!((missing.status, missing.code()), (404, 40402));

    // Global config and its reset.
    assert_eq!(
        api.get("/config").await.body["compatibilityLevel"],
        "BACKWARD"
    );
    assert_eq!(
        api.put("/config", &json!({ "compatibility": "full" }))
            .await
            .body["compatibility"],
        "FULL"
    );
    assert_eq!(
        api.get(&format!("/config/{}?defaultToGlobal=true", unique("x")))
            .await
            .body["compatibilityLevel"],
        "FULL"
    );
    assert_eq!(
        api.delete("/config").await.body["compatibilityLevel"],
        "FULL"
    );
    assert_eq!(
        api.get("/config").await.body["compatibilityLevel"],
        "BACKWARD"
    );
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn import_mode_keeps_ids_across_registries() {
    // A source registry with some history, then an empty target imported from it.
    let source = Replica::start(&[]).await;
    let src = Api { base: &source.url };
    let topic = unique("moving");
    let subject = format!("{topic}-value");
    src.register_ok(
        &unique("padding"),
        &record("Pad", json!([{ "name": "p", "type": "long" }])),
    )
    .await;
    let id1 = src.register_ok(&subject, &widget_v1()).await;
    let id2 = src.register_ok(&subject, &widget_v2()).await;

    // A message framed by the source registry.
    let encoder = AvroEncoder::new(SrSettings::new(source.url.clone()));
    let bytes = encoder
        .encode(
            vec![
                ("sku", Avro::String("SKU_1".into())),
                ("qty", Avro::Int(5)),
                ("defects", Avro::Union(0, Box::new(Avro::Null))),
            ],
            SubjectNameStrategy::TopicNameStrategy(topic.clone(), false),
        )
        .await
        .unwrap();

    let target = Replica::start(&[]).await;
    let dst = Api { base: &target.url };
    // Explicit ids are refused outside IMPORT mode.
    let early = dst
        .post(
            &format!("/subjects/{subject}/versions"),
            &json!({ "schema": widget_v1().to_string(), "id": id1 }),
        )
        .await;
    assert_eq!((early.status, early.code()), (422, 42205));
    assert_eq!(
        dst.put("/mode", &json!({ "mode": "IMPORT" })).await.status,
        200
    );
    assert_eq!(dst.get("/mode").await.body["mode"], "IMPORT");
    let exported = src.get(&format!("/schemas?subjectPrefix={subject}")).await;
    for entry in exported.body.as_array().unwrap() {
        let answer = dst
            .post(
                &format!("/subjects/{}/versions", entry["subject"].as_str().unwrap()),
                &json!({ "schema": entry["schema"], "id": entry["id"], "version": entry["version"] }),
            )
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body["id"], entry["id"]);
    }
    // An id already taken by another schema is refused.
    let clash = dst.post(&format!("/subjects/{}/versions", unique("clash")), &json!({ "schema": record("C", json!([{"name":"c","type":"int"}])).to_string(), "id": id1 })).await;
    assert_eq!((clash.status, clash.code()), (422, 42205));
    // Switching a registry that has subjects to IMPORT needs force.
    let refused = dst.put("/mode", &json!({ "mode": "IMPORT" })).await;
    assert_eq!((refused.status, refused.code()), (422, 42205));
    assert_eq!(
        dst.put("/mode?force=true", &json!({ "mode": "READWRITE" }))
            .await
            .status,
        200
    );

    // The target decodes the source's message: same id, same schema.
    let decoded = AvroDecoder::new(SrSettings::new(target.url.clone()))
        .decode(Some(&bytes))
        .await
        .unwrap();
    let Avro::Record(fields) = decoded.value else {
        panic!("not a record")
    };
    assert_eq!(fields[0], ("sku".into(), Avro::String("SKU_1".into())));
    assert_eq!(
        dst.get(&format!("/subjects/{subject}/versions/2"))
            .await
            .body["id"],
        json!(id2)
    );
    // New registrations continue after the imported ids.
    let next = dst
        .register_ok(
            &unique("after"),
            &record("After", json!([{ "name": "a", "type": "int" }])),
        )
        .await;
    assert!(next > id2);

    // READONLY refuses writes but still answers reads.
    let s = unique("ro");
    dst.register_ok(&s, &widget_v1()).await;
    assert_eq!(
        dst.put(&format!("/mode/{s}"), &json!({ "mode": "READONLY" }))
            .await
            .status,
        200
    );
    let ro = dst.register(&s, &widget_v2()).await;
    assert_eq!((ro.status, ro.code()), (422, 42205));
    assert_eq!(
        dst.get(&format!("/subjects/{s}/versions/1")).await.status,
        200
    );
    assert_eq!(
        dst.delete(&format!("/mode/{s}")).await.body["mode"],
        "READONLY"
    );
    assert_eq!(dst.register(&s, &widget_v2()).await.status, 200);
}

#[tokio::test]
#[ignore = "needs Kafka and the test stack: run scripts/test"]
async fn unknown_query_parameters_are_accepted() {
    let registry = Replica::start(&[]).await;
    let api = Api {
        base: &registry.url,
    };
    let subject = unique("params");
    let body = json!({ "schema": widget_v1().to_string() });
    let register = api
        .post(
            &format!("/subjects/{subject}/versions?normalize=true&format=x&whatever=1"),
            &body,
        )
        .await;
    assert_eq!(register.status, 200, "{register:?}");
    let id = register.body["id"].as_u64().unwrap();
    for path in [
        "/subjects?deleted=maybe&subjectPrefix=params&lookupDeletedSubjects=x".to_string(),
        format!(
            "/schemas/ids/{id}?fetchMaxId=false&subject={subject}&format=resolved&deleted=true"
        ),
        format!("/schemas/ids/{id}/versions?deleted=true&x=1"),
        format!("/subjects/{subject}/versions?deleted=true&deletedOnly=false"),
        format!("/subjects/{subject}/versions/latest?deleted=true&format=&verbose=nope"),
        format!("/subjects/{subject}/versions/1/schema?format=serialized"),
        format!("/config/{subject}?defaultToGlobal=true&x=%zz"),
        format!("/mode/{subject}?defaultToGlobal=true"),
        format!("/schemas?latestOnly=true&subjectPrefix={subject}&offset=0&limit=-1"),
        "/schemas/types?%%%&&==".to_string(),
    ] {
        let answer = api.get(&path).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    let lookup = api
        .post(
            &format!("/subjects/{subject}?normalize=true&deleted=false&unknown=1"),
            &body,
        )
        .await;
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.body["version"], 1);
}
