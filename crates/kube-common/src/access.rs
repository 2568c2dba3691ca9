//! What the binary's account may do, asked of the API server before the binary relies on it.
//!
//! A list that fails with 403 names one verb on one resource; a binary that needs many rules
//! asks for each with a `SelfSubjectAccessReview` (allowed for every authenticated user by the
//! default `system:basic-user` role) and reports every missing one at once, with the Role rule
//! that would grant it.

use std::fmt::Write as _;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;

use crate::{Error, Result};

/// One verb on one resource, in a namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// `get`, `list`, `watch`, `create`, `update`, ...
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// The namespace, or `None` for every namespace (or a cluster-scoped resource).
    pub namespace: Option<String>,
}

impl Permission {
    /// `verb` on `group`/`resource` in `namespace` (`None`: all namespaces).
    pub fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Self {
        Self {
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {} ({group})", self.verb, self.resource)?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " in all namespaces"),
        }
    }
}

/// The message of [`Error::Forbidden`]: who we are, what is missing, and the rules to add.
pub(crate) fn describe_missing(user: &str, missing: &[Permission]) -> String {
    let mut out = format!(
        "the Kubernetes account {user} lacks {} permission(s) this binary needs:",
        missing.len()
    );
    for permission in missing {
        let _ = write!(out, "\n  - {permission}");
    }
    out.push_str(
        "\ngrant them with a (Cluster)Role rule such as `apiGroups: [<group>], resources: [<resource>], verbs: [<verb>]` bound to this account",
    );
    out
}

/// Which of `wanted` the client's account may not do; an empty list means all are allowed.
pub async fn missing_permissions(
    client: &kube::Client,
    wanted: &[Permission],
) -> Result<Vec<Permission>> {
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    let mut missing = Vec::new();
    for permission in wanted {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.clone()),
                    group: Some(permission.group.clone()),
                    resource: Some(permission.resource.clone()),
                    namespace: permission.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(Error::api(format!("asking whether we may {permission}")))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(permission.clone());
        }
    }
    Ok(missing)
}

/// Fails with [`Error::Forbidden`] (naming every missing permission) unless the account may do
/// all of `wanted`.
pub async fn require(client: &kube::Client, wanted: &[Permission]) -> Result<()> {
    let missing = missing_permissions(client, wanted).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Forbidden {
        user: whoami(client).await,
        missing,
    })
}

/// The account's user name as the API server sees it (`SelfSubjectReview`, Kubernetes 1.27+);
/// older servers do not have it, and "this account" stands in.
async fn whoami(client: &kube::Client) -> String {
    let api: kube::Api<SelfSubjectReview> = kube::Api::all(client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .map_or_else(|| "(unknown)".to_owned(), |name| format!("'{name}'")),
        Err(_) => "(this account)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_every_missing_permission_and_how_to_grant_it() {
        let text = describe_missing(
            "'rivulet-nobody'",
            &[
                Permission::new("list", "", "configmaps", Some("default")),
                Permission::new("watch", "apps", "deployments", None),
            ],
        );
        assert!(
            text.contains("'rivulet-nobody' lacks 2 permission(s)"),
            "{text}"
        );
        assert!(
            text.contains("list configmaps (core) in namespace default"),
            "{text}"
        );
        assert!(
            text.contains("watch deployments (apps) in all namespaces"),
            "{text}"
        );
        assert!(text.contains("verbs: [<verb>]"), "{text}");
    }
}
