//! Which resource types are watched: `--resources` names them by plural (from a table of the
//! common built-in types) or as `group/version/kind` (any built-in or custom resource; the
//! core group as `v1/Kind`), and discovery on the API server resolves each to its plural and
//! scope.

use kube::api::{Api, DynamicObject, ListParams, WatchParams};
use kube::core::{ApiResource, GroupVersionKind, TypeMeta};
use kube::discovery::Scope;
use rivulet_contracts::kubernetes;

use crate::redact::Redactor;

/// What the monitor watches by default (the reference's list, plus events and namespaces).
pub const DEFAULT_RESOURCES: &str =
    "pods,deployments,statefulsets,daemonsets,services,configmaps,secrets,events,namespaces";

/// Plural → (group, version, kind) for the built-in types `--resources` may name by plural.
const BUILT_IN: &[(&str, &str, &str, &str)] = &[
    ("pods", "", "v1", "Pod"),
    ("services", "", "v1", "Service"),
    ("configmaps", "", "v1", "ConfigMap"),
    ("secrets", "", "v1", "Secret"),
    ("events", "", "v1", "Event"),
    ("namespaces", "", "v1", "Namespace"),
    ("nodes", "", "v1", "Node"),
    ("serviceaccounts", "", "v1", "ServiceAccount"),
    ("persistentvolumes", "", "v1", "PersistentVolume"),
    ("persistentvolumeclaims", "", "v1", "PersistentVolumeClaim"),
    ("deployments", "apps", "v1", "Deployment"),
    ("statefulsets", "apps", "v1", "StatefulSet"),
    ("daemonsets", "apps", "v1", "DaemonSet"),
    ("replicasets", "apps", "v1", "ReplicaSet"),
    ("jobs", "batch", "v1", "Job"),
    ("cronjobs", "batch", "v1", "CronJob"),
    ("ingresses", "networking.k8s.io", "v1", "Ingress"),
];

/// One `--resources` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec(pub GroupVersionKind);

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parts: Vec<&str> = s.split('/').collect();
        let gvk = match parts.as_slice() {
            [plural] => {
                let (_, group, version, kind) =
                    BUILT_IN.iter().find(|(p, ..)| p == plural).ok_or_else(|| {
                        let known: Vec<&str> = BUILT_IN.iter().map(|(p, ..)| *p).collect();
                        format!(
                            "unknown resource {s:?}: name one of {} or give group/version/kind",
                            known.join(", ")
                        )
                    })?;
                GroupVersionKind::gvk(group, version, kind)
            }
            [version, kind] => GroupVersionKind::gvk("", version, kind),
            [group, version, kind] => GroupVersionKind::gvk(group, version, kind),
            _ => {
                return Err(format!(
                    "expected a plural or group/version/kind, got {s:?}"
                ));
            }
        };
        if gvk.kind.is_empty() || gvk.version.is_empty() {
            return Err(format!(
                "expected a plural or group/version/kind, got {s:?}"
            ));
        }
        Ok(Spec(gvk))
    }
}

/// A resource type the API server has, ready to watch.
#[derive(Clone, Debug)]
pub struct Watched {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The topic its changes go to.
    pub topic: String,
    /// Its `resource_type` in messages and metric labels.
    pub resource_type: String,
    /// core/v1 Events: delete policy, no tombstones, `--max-event-age` on lists.
    pub events: bool,
}

impl Watched {
    /// Builds the description of a resolved type.
    pub fn new(resource: ApiResource, scope: &Scope) -> Self {
        let topic = kubernetes::topic(&resource.group, &resource.plural);
        let resource_type = kubernetes::resource_type(&resource.group, &resource.plural);
        let events = resource.group.is_empty() && resource.kind == "Event";
        Self {
            namespaced: matches!(scope, Scope::Namespaced),
            resource,
            topic,
            resource_type,
            events,
        }
    }
}

impl Watched {
    /// The API of this type in `namespace` (`None`, or a cluster-scoped type: everywhere).
    pub fn api(&self, client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &self.resource),
            _ => Api::all_with(client.clone(), &self.resource),
        }
    }

    /// `object` as it is published: with apiVersion and kind (list items come without
    /// them), redacted. Returns the value and how many values were redacted.
    pub fn clean(
        &self,
        redactor: &Redactor,
        mut object: DynamicObject,
    ) -> (serde_json::Value, usize) {
        object.types = Some(TypeMeta {
            api_version: self.resource.api_version.clone(),
            kind: self.resource.kind.clone(),
        });
        let mut value = serde_json::to_value(&object).unwrap_or(serde_json::Value::Null);
        let redacted = redactor.apply(&self.resource.group, &self.resource.kind, &mut value);
        (value, redacted)
    }
}

/// `--label-selector` and `--field-selector`, applied to lists and watches alike.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    /// Label selector.
    pub label: Option<String>,
    /// Field selector.
    pub field: Option<String>,
}

impl Selectors {
    /// List parameters with the selectors, `limit` objects per page.
    pub fn list(&self, limit: u32) -> ListParams {
        let mut params = ListParams::default().limit(limit);
        if let Some(s) = &self.label {
            params = params.labels(s);
        }
        if let Some(s) = &self.field {
            params = params.fields(s);
        }
        params
    }

    /// Watch parameters with the selectors and a server-side timeout (bookmarks on).
    pub fn watch(&self, timeout_secs: u32) -> WatchParams {
        let mut params = WatchParams::default().timeout(timeout_secs);
        if let Some(s) = &self.label {
            params = params.labels(s);
        }
        if let Some(s) = &self.field {
            params = params.fields(s);
        }
        params
    }
}

/// Resolves `specs` on the API server (one discovery request per type).
pub async fn resolve(client: &kube::Client, specs: &[Spec]) -> crate::Result<Vec<Watched>> {
    let mut out: Vec<Watched> = Vec::new();
    for Spec(gvk) in specs {
        let (resource, capabilities) =
            kube::discovery::pinned_kind(client, gvk)
                .await
                .map_err(|source| crate::Error::UnknownResource {
                    gvk: format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind),
                    source,
                })?;
        if out.iter().any(|w| w.resource == resource) {
            continue;
        }
        out.push(Watched::new(resource, &capabilities.scope));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[test]
    fn plurals_and_group_version_kinds_parse() {
        let d: Spec = "deployments".parse().unwrap();
        assert_eq!(d.0, GroupVersionKind::gvk("apps", "v1", "Deployment"));
        let cm: Spec = "v1/ConfigMap".parse().unwrap();
        assert_eq!(cm.0, GroupVersionKind::gvk("", "v1", "ConfigMap"));
        let crd: Spec = "example.com/v1/Widget".parse().unwrap();
        assert_eq!(crd.0.group, "example.com");
        let e = "widgets".parse::<Spec>().unwrap_err();
        assert!(
            e.contains("unknown resource") && e.contains("configmaps"),
            "{e}"
        );
        assert!("a/b/c/d".parse::<Spec>().is_err());
        for plural in DEFAULT_RESOURCES.split(',') {
            plural.parse::<Spec>().unwrap();
        }
    }
}
