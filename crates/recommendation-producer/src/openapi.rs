//! The served OpenAPI document: the static one, adjusted to this service's configuration, so
//! that what the document accepts is what this server accepts.
//!
//! A webhook is only accepted for a host `--webhook-allow` lists: with none, the document says
//! `webhook` must be absent or null; otherwise its URL must name one of those hosts. A
//! `datasource` must be one of the service's own.

use serde_json::{Value, json};

/// The static document (`assets/openapi.json`).
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

/// The document for a service with these datasources whose webhooks may call the hosts in
/// `webhook_allow`.
pub fn document(datasources: &[&str], webhook_allow: &[String]) -> String {
    let mut doc: Value = serde_json::from_str(OPENAPI).unwrap_or(Value::Null);
    if let Some(datasource) = doc.pointer_mut("/components/schemas/BulkInput/properties/datasource")
    {
        let mut names: Vec<Value> = datasources.iter().map(|n| json!(n)).collect();
        names.sort_by_key(|n| n.to_string());
        let default = datasources.contains(&crate::payload::DEFAULT_DATASOURCE);
        if default {
            names.push(Value::Null);
        }
        datasource["enum"] = Value::Array(names);
        datasource["description"] =
            json!("One of this service's datasources (--datasource); absent or null: prometheus-1");
        if !default {
            // Without a prometheus-1, the default does not exist: the field is required.
            if let Some(body) = doc.pointer_mut("/components/schemas/BulkInput") {
                body["required"] = json!(["datasource"]);
            }
        }
    }
    if let Some(webhook) = doc.pointer_mut("/components/schemas/BulkInput/properties/webhook") {
        *webhook = if webhook_allow.is_empty() {
            json!({
                "type": "null",
                "description": "Webhooks are disabled on this service (its --webhook-allow lists no host): a webhook is refused with 400."
            })
        } else {
            json!({
                "type": ["object", "null"],
                "additionalProperties": false,
                "required": ["url"],
                "properties": {"url": {"type": "string", "pattern": url_pattern(webhook_allow)}},
                "description": format!("Called once when the job ends; only these hosts: {}.", webhook_allow.join(", "))
            })
        };
    }
    doc.to_string()
}

/// A pattern matching URLs whose host (and port, when the entry names one) is in `allow`.
fn url_pattern(allow: &[String]) -> String {
    let hosts: Vec<String> = allow
        .iter()
        .map(|entry| match entry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
                format!("{}:{port}", escape(host))
            }
            _ => format!("{}(:[0-9]{{1,5}})?", escape(entry)),
        })
        .collect();
    format!("^https?://({})([/?#][^\\s]*)?$", hosts.join("|"))
}

/// `text` with the characters a regular expression gives meaning to escaped.
fn escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(allow: &[&str]) -> Value {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let doc: Value = serde_json::from_str(&document(&["prometheus-1"], &allow)).unwrap();
        doc.pointer("/components/schemas/BulkInput/properties/webhook")
            .unwrap()
            .clone()
    }

    #[test]
    fn no_allowed_host_means_no_webhook() {
        assert_eq!(webhook(&[])["type"], "null");
    }

    #[test]
    fn urls_must_name_an_allowed_host() {
        let schema = webhook(&["hooks.example", "127.0.0.1:8080"]);
        let pattern =
            regex::Regex::new(schema["properties"]["url"]["pattern"].as_str().unwrap()).unwrap();
        for ok in [
            "https://hooks.example/done",
            "http://hooks.example:9000",
            "http://127.0.0.1:8080/x?y=1",
        ] {
            assert!(pattern.is_match(ok), "{ok}");
        }
        for refused in [
            "https://hooksXexample/",
            "https://evil.example/",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1/",
            "ftp://hooks.example/",
            "https://hooks.example.evil.example/",
        ] {
            assert!(!pattern.is_match(refused), "{refused}");
        }
        // What the document accepts, the server's own check accepts.
        let allow = ["hooks.example".to_owned(), "127.0.0.1:8080".to_owned()];
        assert!(crate::job::webhook_allowed(&allow, "http://127.0.0.1:8080/x").is_ok());
        assert!(crate::job::webhook_allowed(&allow, "https://hooks.example/done").is_ok());
    }

    #[test]
    fn datasources_are_the_configured_ones() {
        let doc: Value = serde_json::from_str(&document(&["b", "a"], &[])).unwrap();
        let datasource = doc
            .pointer("/components/schemas/BulkInput/properties/datasource")
            .unwrap();
        assert_eq!(datasource["enum"], json!(["a", "b"]));
        assert_eq!(
            doc["components"]["schemas"]["BulkInput"]["required"],
            json!(["datasource"])
        );
        let doc: Value = serde_json::from_str(&document(&["prometheus-1"], &[])).unwrap();
        let body = &doc["components"]["schemas"]["BulkInput"];
        assert_eq!(
            body["properties"]["datasource"]["enum"],
            json!(["prometheus-1", null])
        );
        assert!(body["required"].is_null());
    }

    #[test]
    fn the_static_document_parses() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
