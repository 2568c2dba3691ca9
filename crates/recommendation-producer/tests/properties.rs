//! Property tests of the `POST /bulk` body parser and its validation: any bytes, and any JSON
//! shaped like a payload, get a job's settings or a message, never a panic; regexes are
//! compiled with bounds, so no input makes validation run away. `PROPTEST_CASES` sets the
//! number of cases (`scripts/fuzz` runs them for minutes).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use rivulet_recommendation_producer::payload::BulkInput;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings a hostile or careless user puts where regexes, names and times go.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[()\\[\\]{}*+?|^$.\\\\a-z0-9]{0,40}",
        Just("(a+)+$".to_owned()),
        Just("2024-01-01T00:00:00Z".to_owned()),
        Just("2024-13-45T99:00:00Z".to_owned()),
    ]
}

/// A payload of the documented shape with arbitrary contents in each field.
fn payload_like() -> impl Strategy<Value = Value> {
    let labels = || {
        proptest::collection::btree_map(
            prop_oneof![
                Just("namespace".to_owned()),
                Just("workload".to_owned()),
                Just("container".to_owned()),
                ".{0,10}"
            ],
            proptest::collection::vec(field_text(), 0..4),
            0..4,
        )
    };
    (
        proptest::option::of(labels()),
        proptest::option::of(labels()),
        proptest::option::of((field_text(), field_text())),
        proptest::option::of(field_text()),
        proptest::option::of(proptest::collection::vec(field_text(), 0..3)),
        proptest::option::of(field_text()),
    )
        .prop_map(|(include, exclude, range, datasource, types, duration)| {
            let mut body = serde_json::Map::new();
            let mut filter = serde_json::Map::new();
            if let Some(i) = include {
                filter.insert("include".into(), json!(i));
            }
            if let Some(e) = exclude {
                filter.insert("exclude".into(), json!(e));
            }
            body.insert("filter".into(), Value::Object(filter));
            if let Some((start, end)) = range {
                body.insert("time_range".into(), json!({"start": start, "end": end}));
            }
            if let Some(d) = datasource {
                body.insert("datasource".into(), json!(d));
            }
            if let Some(t) = types {
                body.insert("experiment_types".into(), json!(t));
            }
            if let Some(d) = duration {
                body.insert("measurement_duration".into(), json!(d));
            }
            Value::Object(body)
        })
}

proptest! {
    #[test]
    fn any_bytes_are_answered(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(input) = BulkInput::parse(&bytes) {
            let _ = input.validate();
        }
    }

    #[test]
    fn any_json_is_answered(value in any_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        match BulkInput::parse(&bytes) {
            Ok(input) => {
                prop_assert!(value.is_object(), "only an object is a payload: {value}");
                let _ = input.validate();
            }
            Err(message) => prop_assert!(message.starts_with("Invalid request body"), "{message}"),
        }
    }

    #[test]
    fn payload_shaped_json_is_validated_or_refused(value in payload_like()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Ok(input) = BulkInput::parse(&bytes)
            && let Err(message) = input.validate()
        {
            prop_assert!(!message.is_empty());
        }
    }
}
