//! What leaves the cluster: every object loses `metadata.managedFields`; a Secret's `data` and
//! `stringData`, and whatever `--redact group/kind:json-pointer` names, are replaced value by
//! value with `hmac-sha256:<hex>` keyed by the monitor's redaction key.
//!
//! A keyed hash, not a plain one: an unkeyed SHA-256 of a short password falls to a dictionary
//! attack, while without the key a consumer can only see that a value changed (the HMAC of a
//! value is stable, so equal values look equal). A Secret's `data` values are base64 on the
//! wire: the HMAC is of the decoded bytes, so `data` and `stringData` of the same value agree.
//! A redacted kind also loses the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, which carries the object as it was applied, values included. Pure functions,
//! no I/O.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The annotation `kubectl apply` leaves with the applied object in it.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A `--redact` rule: replace what `pointer` names in objects of `group`/`kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for core).
    pub group: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// An RFC 6901 JSON pointer, e.g. `/data/password`.
    pub pointer: String,
}

impl std::str::FromStr for Rule {
    type Err = String;

    /// `group/kind:json-pointer`; the core group is written `core` or left empty
    /// (`core/ConfigMap:/data/token`, `/ConfigMap:/data/token`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage =
            || format!("expected group/kind:/json/pointer (core/ConfigMap:/data/token), got {s:?}");
        let (gk, pointer) = s.split_once(':').ok_or_else(usage)?;
        let (group, kind) = gk.rsplit_once('/').ok_or_else(usage)?;
        if kind.is_empty() || !pointer.starts_with('/') {
            return Err(usage());
        }
        Ok(Rule {
            group: if group == "core" {
                String::new()
            } else {
                group.to_owned()
            },
            kind: kind.to_owned(),
            pointer: pointer.to_owned(),
        })
    }
}

/// How a redacted value is read before it is hashed.
#[derive(Clone, Copy)]
enum Encoding {
    /// A string is hashed as its UTF-8 bytes, anything else as its JSON text.
    Plain,
    /// A base64 string (a Secret's `data`) is hashed as the bytes it encodes.
    Base64,
}

/// Cleans and redacts objects before they are published.
#[derive(Clone)]
pub struct Redactor {
    key: Option<Vec<u8>>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("rules", &self.rules)
            .finish()
    }
}

impl Redactor {
    /// A redactor keyed with `key` (`None` when nothing watched needs redaction) applying
    /// `rules` besides the built-in Secret rule.
    pub fn new(key: Option<Vec<u8>>, rules: Vec<Rule>) -> Self {
        Self { key, rules }
    }

    /// Whether objects of `group`/`kind` have values to redact (Secrets always do).
    pub fn redacts(&self, group: &str, kind: &str) -> bool {
        (group.is_empty() && kind == "Secret")
            || self
                .rules
                .iter()
                .any(|r| r.group == group && r.kind == kind)
    }

    /// Whether a key was given (needed as soon as [`Redactor::redacts`] holds for a watched
    /// kind).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Cleans `object` of `group`/`kind` in place; returns how many values were replaced.
    /// Without a key, values that should be redacted are removed rather than published.
    pub fn apply(&self, group: &str, kind: &str, object: &mut Value) -> usize {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        if !self.redacts(group, kind) {
            return 0;
        }
        if let Some(annotations) = object
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
        let mut count = 0;
        if group.is_empty() && kind == "Secret" {
            count += self.replace(object, "/data", Encoding::Base64);
            count += self.replace(object, "/stringData", Encoding::Plain);
        }
        for rule in self
            .rules
            .iter()
            .filter(|r| r.group == group && r.kind == kind)
        {
            count += self.replace(object, &rule.pointer, Encoding::Plain);
        }
        count
    }

    /// Replaces what `pointer` names: each member of an object or element of an array, or
    /// the value itself.
    fn replace(&self, object: &mut Value, pointer: &str, encoding: Encoding) -> usize {
        let Some(target) = object.pointer_mut(pointer) else {
            return 0;
        };
        match target {
            Value::Object(members) => members
                .values_mut()
                .map(|v| self.hash_in_place(v, encoding))
                .sum(),
            Value::Array(items) => items
                .iter_mut()
                .map(|v| self.hash_in_place(v, encoding))
                .sum(),
            Value::Null => 0,
            other => self.hash_in_place(other, encoding),
        }
    }

    fn hash_in_place(&self, value: &mut Value, encoding: Encoding) -> usize {
        let bytes = match (&*value, encoding) {
            (Value::String(s), Encoding::Base64) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec()),
            (Value::String(s), Encoding::Plain) => s.as_bytes().to_vec(),
            (other, _) => other.to_string().into_bytes(),
        };
        *value = match &self.key {
            Some(key) => Value::String(hmac_hex(key, &bytes)),
            None => Value::Null,
        };
        1
    }
}

/// `hmac-sha256:<hex>` of `bytes` under `key`.
pub fn hmac_hex(key: &[u8], bytes: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return "hmac-sha256:".to_owned();
    };
    mac.update(bytes);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(12 + 64);
    out.push_str("hmac-sha256:");
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;
    use serde_json::json;

    fn redactor() -> Redactor {
        Redactor::new(
            Some(b"0123456789abcdef-test-key".to_vec()),
            vec!["core/ConfigMap:/data/token".parse().unwrap()],
        )
    }

    fn secret() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "team": "a"}},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
            "stringData": {"other": "hunter2"}
        })
    }

    #[test]
    fn a_secret_keeps_its_keys_and_loses_its_values() {
        let mut object = secret();
        assert_eq!(redactor().apply("", "Secret", &mut object), 3);
        let text = object.to_string();
        for leaked in [
            "aHVudGVyMg==",
            "hunter2",
            "YWRtaW4=",
            "admin",
            "managedFields",
        ] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert_eq!(object["metadata"]["annotations"], json!({"team": "a"}));
        let password = object["data"]["password"].as_str().unwrap();
        assert!(password.starts_with("hmac-sha256:") && password.len() == 12 + 64);
        // Base64 data is hashed as the bytes it encodes: the same value as stringData agrees.
        assert_eq!(object["data"]["password"], object["stringData"]["other"]);
        assert_ne!(object["data"]["password"], object["data"]["user"]);
    }

    #[test]
    fn the_hmac_depends_on_the_key() {
        let mut a = secret();
        let mut b = secret();
        redactor().apply("", "Secret", &mut a);
        Redactor::new(Some(b"another key of the same size!".to_vec()), vec![])
            .apply("", "Secret", &mut b);
        assert_ne!(a["data"]["password"], b["data"]["password"]);
        assert_eq!(hmac_hex(b"k", b"v"), hmac_hex(b"k", b"v"));
    }

    #[test]
    fn a_rule_redacts_what_its_pointer_names_and_nothing_else() {
        let mut cm = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"token": "t0ps3cret", "plain": "x"}});
        assert_eq!(redactor().apply("", "ConfigMap", &mut cm), 1);
        assert!(!cm.to_string().contains("t0ps3cret"));
        assert_eq!(cm["data"]["plain"], "x");
        let mut pod = json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": []}, "data": {"token": "t"}});
        assert_eq!(redactor().apply("", "Pod", &mut pod), 0);
        assert_eq!(pod["data"]["token"], "t");
        assert!(pod["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn without_a_key_values_are_removed_not_published() {
        let mut object = secret();
        Redactor::new(None, vec![]).apply("", "Secret", &mut object);
        assert!(object["data"]["password"].is_null());
        assert!(!object.to_string().contains("aHVudGVyMg=="));
    }

    #[test]
    fn rules_parse_with_core_written_either_way() {
        let a: Rule = "core/ConfigMap:/data/token".parse().unwrap();
        let b: Rule = "/ConfigMap:/data/token".parse().unwrap();
        assert_eq!(a, b);
        let c: Rule = "example.com/Widget:/spec/password".parse().unwrap();
        assert_eq!(c.group, "example.com");
        assert!("ConfigMap:/data".parse::<Rule>().is_err());
        assert!("core/ConfigMap:data".parse::<Rule>().is_err());
    }
}
