//! What `k8s-monitor` publishes: one JSON message per change of a Kubernetes object, on one
//! topic per resource type, keyed `<namespace>/<name>` (`<name>` for cluster-scoped objects).
//!
//! A deletion is a `DELETED` [`Change`] followed by a tombstone (a null value) under the same
//! key, so a compacted topic holds the cluster's current state; Events are the exception
//! (their topic uses the delete policy and gets no tombstones). Every message carries the
//! object's uid and resourceVersion as headers too, so a reader can rebuild "what the topic
//! holds" without parsing values.

use serde::{Deserialize, Serialize};

/// Header: the object's `metadata.uid`.
pub const UID_HEADER: &str = "rivulet-k8s-uid";
/// Header: the object's `metadata.resourceVersion`.
pub const RESOURCE_VERSION_HEADER: &str = "rivulet-k8s-resource-version";

/// The topic of a resource type: `k8s-<plural>` for the core and `apps` groups, else
/// `k8s-<plural>.<group>`.
pub fn topic(group: &str, plural: &str) -> String {
    if group.is_empty() || group == "apps" {
        format!("k8s-{plural}")
    } else {
        format!("k8s-{plural}.{group}")
    }
}

/// The `resource_type` of a resource: its plural, with `.<group>` outside core and `apps`
/// (the topic name without `k8s-`).
pub fn resource_type(group: &str, plural: &str) -> String {
    topic(group, plural)["k8s-".len()..].to_owned()
}

/// The message key of an object.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// What happened to the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// It appeared (first seen, or created).
    Added,
    /// It changed.
    Modified,
    /// It is gone.
    Deleted,
}

impl EventType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// When the monitor published it: Unix seconds, millisecond precision.
    pub timestamp: f64,
    /// `--cluster-name` of the monitor that saw it.
    pub cluster: String,
    /// [`resource_type`] of the object.
    pub resource_type: String,
    /// The object's namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// What happened.
    pub event_type: EventType,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion` of the state published.
    pub resource_version: String,
    /// The object (secrets redacted, `managedFields` dropped). `None` when it was too big
    /// for the topic (then `truncated` is true). For a deletion the monitor found by
    /// comparing (after a restart or a re-list) rather than saw, only `apiVersion`, `kind`
    /// and `metadata` name, namespace, uid and resourceVersion are known.
    pub object: Option<serde_json::Value>,
    /// The object was left out because the message would exceed the topic's size limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The reference monitor's snapshot message (`--mode snapshot`): every object of one type in
/// one namespace (or all), per poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the list was taken: Unix seconds.
    pub timestamp: f64,
    /// The resource type, as the reference names it (the plural).
    pub resource_type: String,
    /// The namespace listed (`None`: all namespaces).
    pub namespace: Option<String>,
    /// The objects, redacted like [`Change::object`].
    pub resources: Vec<serde_json::Value>,
    /// When one list did not fit one message: this part's number (from 1) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// ... of this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_apps_topics_have_no_group_suffix() {
        assert_eq!(topic("", "configmaps"), "k8s-configmaps");
        assert_eq!(topic("apps", "deployments"), "k8s-deployments");
        assert_eq!(
            topic("networking.k8s.io", "ingresses"),
            "k8s-ingresses.networking.k8s.io"
        );
        assert_eq!(resource_type("", "events"), "events");
        assert_eq!(key(Some("default"), "a"), "default/a");
        assert_eq!(key(None, "kube-system"), "kube-system");
    }

    #[test]
    fn a_change_is_the_documented_json() {
        let change = Change {
            timestamp: 1.5,
            cluster: "c".into(),
            resource_type: "configmaps".into(),
            namespace: Some("default".into()),
            event_type: EventType::Deleted,
            uid: "u".into(),
            resource_version: "7".into(),
            object: None,
            truncated: true,
        };
        let json = serde_json::to_value(&change).unwrap_or_default();
        assert_eq!(json["event_type"], "DELETED");
        assert_eq!(json["truncated"], true);
        assert!(json["object"].is_null());
        let back: Change = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, change);
    }
}
