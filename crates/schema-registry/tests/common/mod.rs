//! Helpers for the registry's integration tests: registry processes on the shared broker,
//! each with its own `_schemas` topic, and a small JSON client.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests and tools: a failed unwrap is a failed run

use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde_json::{Value, json};

pub use rivulet_testkit::unique;

pub use rivulet_testkit::registry::Replica;

/// The answer of an HTTP call: status, content type and JSON body (or the text as a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// The Confluent `error_code`.
    pub fn code(&self) -> u64 {
        self.body["error_code"].as_u64().unwrap_or(0)
    }
}

/// A raw HTTP call that returns status, content type and body whatever they are.
pub mod http {
    use super::Answer;
    use serde_json::Value;

    /// Sends `method url` with an optional raw body and headers.
    pub async fn call(
        method: &str,
        url: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let client = ::reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(body.to_owned());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            body,
        }
    }
}

/// JSON calls against one registry.
pub struct Api<'a> {
    pub base: &'a str,
}

impl Api<'_> {
    pub async fn get(&self, path: &str) -> Answer {
        http::call("GET", &format!("{}{path}", self.base), None, &[]).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        http::call(
            "POST",
            &format!("{}{path}", self.base),
            Some(&body.to_string()),
            &[],
        )
        .await
    }
    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        http::call("POST", &format!("{}{path}", self.base), Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        http::call(
            "PUT",
            &format!("{}{path}", self.base),
            Some(&body.to_string()),
            &[],
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Answer {
        http::call("DELETE", &format!("{}{path}", self.base), None, &[]).await
    }
    /// Registers `schema` (a JSON value) under `subject`; returns the answer.
    pub async fn register(&self, subject: &str, schema: &Value) -> Answer {
        self.post(
            &format!("/subjects/{subject}/versions"),
            &serde_json::json!({ "schema": schema.to_string() }),
        )
        .await
    }
    /// Registers and returns the id, failing the test otherwise.
    pub async fn register_ok(&self, subject: &str, schema: &Value) -> u64 {
        let answer = self.register(subject, schema).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body["id"].as_u64().unwrap()
    }
}

/// A record schema named `name` with `fields` (JSON values).
pub fn record(name: &str, fields: Value) -> Value {
    serde_json::json!({ "type": "record", "name": name, "namespace": "test.rivulet", "fields": fields })
}

/// A two-field record schema.
pub fn widget_v1() -> Value {
    record(
        "Widget",
        json!([{ "name": "sku", "type": "string" }, { "name": "qty", "type": "int" }]),
    )
}

/// [`widget_v1`] with an optional third field: a compatible change.
pub fn widget_v2() -> Value {
    record(
        "Widget",
        json!([{ "name": "sku", "type": "string" }, { "name": "qty", "type": "int" },
               { "name": "defects", "type": ["null", "int"], "default": null }]),
    )
}

/// `schema` as the Confluent client submits it.
pub fn supplied(schema: &Value) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_string())
}
