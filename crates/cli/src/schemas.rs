//! `rivulet schemas`: the registry's subjects, their versions with ids and types, and each
//! subject's compatibility level (its own or the global one), over the Confluent REST API, so
//! it works against Rivulet's registry, Confluent's or Apicurio's compatibility API.

use reqwest::Method;
use rivulet_common::RegistryClient;
use serde_json::{Value, json};

use crate::Error;

/// `rivulet schemas`.
#[derive(Clone, Debug, clap::Args)]
pub struct SchemasArgs {
    /// Only subjects whose name contains one of these.
    pub filters: Vec<String>,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get(registry: &RegistryClient, path: &str) -> Result<Value, Error> {
    let (status, body) = registry.send(Method::GET, path, None).await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Error::Registry {
            path: path.to_owned(),
            status: status.as_u16(),
            message: body["message"].as_str().unwrap_or("no message").to_owned(),
        })
    }
}

/// Gathers the report.
pub async fn schemas(registry: &RegistryClient, args: &SchemasArgs) -> Result<Value, Error> {
    let global = get(registry, "/config").await?["compatibilityLevel"].clone();
    let subjects = get(registry, "/subjects").await?;
    let mut names: Vec<String> = subjects
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .filter(|s| args.filters.is_empty() || args.filters.iter().any(|f| s.contains(f.as_str())))
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for name in names {
        let subject = segment(&name);
        let versions = get(registry, &format!("/subjects/{subject}/versions")).await?;
        let mut shown = Vec::new();
        for v in versions.as_array().into_iter().flatten() {
            let one = get(registry, &format!("/subjects/{subject}/versions/{v}")).await?;
            shown.push(json!({
                "version": one["version"],
                "id": one["id"],
                // Confluent leaves `schemaType` out for Avro.
                "type": one.get("schemaType").cloned().unwrap_or_else(|| "AVRO".into()),
            }));
        }
        let own = registry
            .send(Method::GET, &format!("/config/{subject}"), None)
            .await?;
        let compatibility = if own.0.is_success() {
            own.1["compatibilityLevel"].clone()
        } else {
            global.clone()
        };
        rows.push(json!({
            "subject": name,
            "compatibility": compatibility,
            "compatibility_is_global": !own.0.is_success(),
            "versions": shown,
        }));
    }
    Ok(json!({"global_compatibility": global, "subjects": rows}))
}

/// The report as a table: one row per version.
pub fn table(report: &Value) -> String {
    let mut rows = vec![vec![
        "SUBJECT".to_owned(),
        "VERSION".into(),
        "ID".into(),
        "TYPE".into(),
        "COMPATIBILITY".into(),
    ]];
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    for s in report["subjects"].as_array().into_iter().flatten() {
        let level = if s["compatibility_is_global"] == true {
            format!("{} (global)", text(&s["compatibility"]))
        } else {
            text(&s["compatibility"])
        };
        for v in s["versions"].as_array().into_iter().flatten() {
            rows.push(vec![
                text(&s["subject"]),
                text(&v["version"]),
                text(&v["id"]),
                text(&v["type"]),
                level.clone(),
            ]);
        }
    }
    let mut out = format!(
        "Global compatibility: {}\n",
        text(&report["global_compatibility"])
    );
    out.push_str(&crate::columns(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(segment("raw-data-in-value"), "raw-data-in-value");
        assert_eq!(segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn a_row_per_version() {
        let r = json!({"global_compatibility": "BACKWARD", "subjects": [
            {"subject": "s", "compatibility": "BACKWARD", "compatibility_is_global": true,
             "versions": [{"version": 1, "id": 4, "type": "AVRO"}, {"version": 2, "id": 9, "type": "AVRO"}]}]});
        let t = table(&r);
        assert!(t.starts_with("Global compatibility: BACKWARD\n"), "{t}");
        assert!(
            t.contains("s        2        9   AVRO  BACKWARD (global)"),
            "{t}"
        );
    }
}
