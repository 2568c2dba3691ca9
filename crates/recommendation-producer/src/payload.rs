//! The `POST /bulk` payload (the reference's `BulkInput`) and its validation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::queries::{Filter, Filters};

/// Include or exclude regexes per label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Namespace regexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace: Vec<String>,
    /// Workload regexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workload: Vec<String>,
    /// Container regexes (the reference's plural key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Exact label matches (include only: the reference ignores exclude labels too, and so
    /// are they refused here rather than silently dropped).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `filter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    /// Keep.
    #[serde(default)]
    pub include: Selector,
    /// Drop (include wins where both match).
    #[serde(default)]
    pub exclude: Selector,
}

/// `time_range`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// ISO-8601 start.
    pub start: String,
    /// ISO-8601 end.
    pub end: String,
}

/// `webhook`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST the finished job.
    pub url: String,
}

/// The bulk request. Every field is optional: `{}` is the whole cluster with the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    /// Filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterInput>,
    /// The window of discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Datasource name (default `prometheus-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource: Option<String>,
    /// Metadata profile: only the reference's default exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_profile: Option<String>,
    /// E.g. `15min`: the only measurement duration supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_duration: Option<String>,
    /// Called when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// `container` (default) and/or `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_types: Option<Vec<String>>,
    /// Reserved by the reference.
    #[serde(default, rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl BulkInput {
    /// Reads a `POST /bulk` body: empty (all defaults) or one JSON object of known fields, no
    /// string holding a NUL (PostgreSQL refuses the byte; it is bad input, not an outage).
    pub fn parse(body: &[u8]) -> Result<BulkInput, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(BulkInput::default());
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
        if !value.is_object() {
            return Err("Invalid request body: expected a JSON object".into());
        }
        if has_nul(&value) {
            return Err("Invalid request body: a string holds a NUL character".into());
        }
        serde_json::from_value(value).map_err(|e| format!("Invalid request body: {e}"))
    }
}

fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The default datasource.
pub const DEFAULT_DATASOURCE: &str = "prometheus-1";
/// The only metadata profile.
pub const METADATA_PROFILE: &str = "cluster-metadata-local-monitoring";

/// A validated request.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// Filters as PromQL matchers take them.
    pub filters: Filters,
    /// Discovery window (Unix seconds).
    pub range: Option<(i64, i64)>,
    /// Datasource name.
    pub datasource: String,
    /// Container experiments asked for (the default).
    pub containers: bool,
    /// Namespace experiments asked for.
    pub namespaces: bool,
}

fn parse_time(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).timestamp())
        .map_err(|_| {
            "Invalid date format. Must follow ISO 8601 format (YYYY-MM-DDTHH:mm:ss.sssZ)".to_owned()
        })
}

fn regexes(field: &str, list: &[String]) -> Result<Vec<String>, String> {
    for r in list {
        regex::Regex::new(r.trim())
            .map_err(|e| format!("filter {field}: invalid regex {r:?}: {e}"))?;
    }
    Ok(list.to_vec())
}

impl BulkInput {
    /// Checks the request; the message is what a 400 says.
    pub fn validate(&self) -> Result<Validated, String> {
        let range = match &self.time_range {
            Some(r) => {
                let (start, end) = (parse_time(&r.start)?, parse_time(&r.end)?);
                if start > end {
                    return Err("Start time should be before end time".into());
                }
                Some((start, end))
            }
            None => None,
        };
        if let Some(p) = &self.metadata_profile
            && p != METADATA_PROFILE
        {
            return Err(format!(
                "Metadata profile not found: {p} (only {METADATA_PROFILE})"
            ));
        }
        if let Some(d) = &self.measurement_duration {
            let minutes: String = d.chars().filter(char::is_ascii_digit).collect();
            if minutes != "15" {
                return Err(format!(
                    "measurement_duration {d:?} is not supported: only 15min"
                ));
            }
        }
        let (mut containers, mut namespaces) = (self.experiment_types.is_none(), false);
        if let Some(types) = &self.experiment_types {
            if types.is_empty() {
                return Err("experiment_types is empty: container and/or namespace".into());
            }
            for t in types {
                match t.as_str() {
                    "container" => containers = true,
                    "namespace" => namespaces = true,
                    other => {
                        return Err(format!(
                            "unknown experiment type {other:?}: container or namespace"
                        ));
                    }
                }
            }
        }
        if let Some(w) = &self.webhook
            && !(w.url.starts_with("http://") || w.url.starts_with("https://"))
        {
            return Err(format!("webhook url must be http(s), got {:?}", w.url));
        }
        let f = self.filter.clone().unwrap_or_default();
        if !f.exclude.labels.is_empty() {
            return Err("filter.exclude.labels is not supported (the reference ignores it): use include labels".into());
        }
        for k in f.include.labels.keys() {
            let ok = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!("filter.include.labels: {k:?} is not a label name"));
            }
        }
        let filters = Filters {
            namespace: Filter {
                include: regexes("namespace", &f.include.namespace)?,
                exclude: regexes("namespace", &f.exclude.namespace)?,
            },
            workload: Filter {
                include: regexes("workload", &f.include.workload)?,
                exclude: regexes("workload", &f.exclude.workload)?,
            },
            container: Filter {
                include: regexes("containers", &f.include.containers)?,
                exclude: regexes("containers", &f.exclude.containers)?,
            },
            labels: f.include.labels.clone(),
        };
        Ok(Validated {
            filters,
            range,
            datasource: self
                .datasource
                .clone()
                .unwrap_or_else(|| DEFAULT_DATASOURCE.into()),
            containers,
            namespaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_object_without_nul() {
        assert_eq!(BulkInput::parse(b"  \n").unwrap(), BulkInput::default());
        assert_eq!(BulkInput::parse(b"{}").unwrap(), BulkInput::default());
        assert!(
            BulkInput::parse(b"[null,null]")
                .unwrap_err()
                .contains("JSON object")
        );
        let nul = br#"{"filter":{"include":{"namespace":["sh\u0000op"]}}}"#;
        assert!(BulkInput::parse(nul).unwrap_err().contains("NUL"));
        assert!(has_nul(&serde_json::json!({"k\u{0}": 1})));
        assert!(!has_nul(&serde_json::json!({"a": ["x", 1, null]})));
        assert!(BulkInput::parse(b"{\"nope\": 1}").is_err());
    }

    fn parse(json: &str) -> Result<Validated, String> {
        serde_json::from_str::<BulkInput>(json)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_and_filters() {
        let v = parse("{}").unwrap();
        assert_eq!((v.datasource.as_str(), v.range), ("prometheus-1", None));
        let v = parse(r#"{"filter":{"include":{"namespace":["shop"],"labels":{"org_id":"a"}},"exclude":{"containers":["istio-.*"]}},
                         "time_range":{"start":"2026-10-31T00:00:00.000Z","end":"2026-11-01T00:00:00.000Z"}}"#).unwrap();
        assert_eq!(v.filters.namespace.include, vec!["shop"]);
        assert_eq!(v.filters.container.exclude, vec!["istio-.*"]);
        assert_eq!(v.range, Some((1_793_404_800, 1_793_491_200)));
    }

    #[test]
    fn bad_payloads_say_why() {
        for (json, needle) in [
            (
                r#"{"time_range":{"start":"yesterday","end":"2026-11-01T00:00:00Z"}}"#,
                "Invalid date format",
            ),
            (
                r#"{"time_range":{"start":"2026-11-02T00:00:00Z","end":"2026-11-01T00:00:00Z"}}"#,
                "Start time should be before end time",
            ),
            (
                r#"{"filter":{"include":{"namespace":["(unclosed"]}}}"#,
                "invalid regex",
            ),
            (
                r#"{"filter":{"include":{"labels":{"bad-name":"x"}}}}"#,
                "not a label name",
            ),
            (
                r#"{"filter":{"exclude":{"labels":{"a":"x"}}}}"#,
                "not supported",
            ),
            (r#"{"measurement_duration":"30min"}"#, "only 15min"),
            (r#"{"experiment_types":["pod"]}"#, "unknown experiment type"),
            (r#"{"webhook":{"url":"ftp://x"}}"#, "http(s)"),
            (r#"{"datasourse":"x"}"#, "unknown field"),
            (r#"{"filter":"#, "EOF"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(needle), "{json}: {error}");
        }
    }
}
