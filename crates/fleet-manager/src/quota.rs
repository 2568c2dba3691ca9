//! Quotas from the reference's quota-management list: who may create instances of which type,
//! and how many quota units of it. The decision here is pure; the count against it is taken
//! in the same transaction as the insert, under a lock on the quota's scope
//! (`store::Store::create`), so two concurrent requests cannot both take the last unit.

use std::path::Path;

use serde::Deserialize;

use crate::auth::Caller;
use crate::catalog::ConfigError;
use crate::errors::{ApiError, Code};

/// The instance type everybody may use without a grant.
pub const DEVELOPER: &str = "developer";

/// The only billing model here (billing is out of scope).
pub const STANDARD_BILLING: &str = "standard";

/// `quota-management-list-configuration.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct QuotaList {
    /// Users with quota of their own.
    #[serde(default)]
    pub registered_service_accounts: Vec<Account>,
    /// Organisations whose members share a quota.
    #[serde(default)]
    pub registered_users_per_organisation: Vec<Organisation>,
}

/// A user with a quota.
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    /// The token's `username`.
    pub username: String,
    /// Units per instance type and billing model, unless a billing model says otherwise.
    #[serde(default)]
    pub max_allowed_instances: Option<u32>,
    /// Instance types granted (none: `standard`).
    #[serde(default)]
    pub granted_quota: Vec<Grant>,
}

/// An organisation with a quota.
#[derive(Clone, Debug, Deserialize)]
pub struct Organisation {
    /// The token's `org_id`.
    pub id: String,
    /// Every member may create instances (else only `registered_users`).
    #[serde(default)]
    pub any_user: bool,
    /// Members who may.
    #[serde(default)]
    pub registered_users: Vec<RegisteredUser>,
    /// Units per instance type and billing model, unless a billing model says otherwise.
    #[serde(default)]
    pub max_allowed_instances: Option<u32>,
    /// Instance types granted (none: `standard`).
    #[serde(default)]
    pub granted_quota: Vec<Grant>,
}

/// A member of an organisation.
#[derive(Clone, Debug, Deserialize)]
pub struct RegisteredUser {
    /// The token's `username`.
    pub username: String,
}

/// Quota of one instance type.
#[derive(Clone, Debug, Deserialize)]
pub struct Grant {
    /// `standard`, …
    pub instance_type_id: String,
    /// Its billing models (none: `standard`).
    #[serde(default)]
    pub kafka_billing_models: Vec<GrantedBillingModel>,
}

/// Quota of one billing model of an instance type.
#[derive(Clone, Debug, Deserialize)]
pub struct GrantedBillingModel {
    /// `standard`, …
    pub id: String,
    /// Units allowed (none or 0: the account's or organisation's value).
    #[serde(default)]
    pub max_allowed_instances: Option<u32>,
}

/// What a caller may create of one instance type: at most `max` quota units counted over
/// `scope` (the organisation's or the user's instances).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// `org:<id>` or `user:<name>`: whose instances count.
    pub scope: String,
    /// Units allowed in that scope.
    pub max: u32,
}

/// Defaults from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `--max-allowed-instances`.
    pub max_allowed_instances: u32,
    /// `--max-allowed-developer-instances` (per user).
    pub max_allowed_developer_instances: u32,
}

impl QuotaList {
    /// Loads the file.
    pub fn load(path: &Path) -> Result<QuotaList, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
        serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse(path.into(), e))
    }

    /// Whether `caller` may create instances of `instance_type`, and how many units.
    pub fn allowance(
        &self,
        caller: &Caller,
        instance_type: &str,
        defaults: Defaults,
    ) -> Result<Allowance, ApiError> {
        if let Some(org) = caller.org_id.as_deref().and_then(|id| {
            self.registered_users_per_organisation
                .iter()
                .find(|o| o.id == id)
        }) {
            let member = org.any_user
                || org
                    .registered_users
                    .iter()
                    .any(|u| u.username == caller.username);
            if member
                && let Some(max) = granted(
                    &org.granted_quota,
                    org.max_allowed_instances,
                    instance_type,
                    defaults,
                )
            {
                return Ok(Allowance {
                    scope: format!("org:{}", org.id),
                    max,
                });
            }
        }
        if let Some(account) = self
            .registered_service_accounts
            .iter()
            .find(|a| a.username == caller.username)
            && let Some(max) = granted(
                &account.granted_quota,
                account.max_allowed_instances,
                instance_type,
                defaults,
            )
        {
            return Ok(Allowance {
                scope: format!("user:{}", caller.username),
                max,
            });
        }
        if instance_type == DEVELOPER {
            return Ok(Allowance {
                scope: format!("user:{}", caller.username),
                max: defaults.max_allowed_developer_instances,
            });
        }
        Err(ApiError::new(
            Code::InsufficientQuota,
            format!(
                "user {} has no quota for {instance_type} instances",
                caller.username
            ),
        ))
    }
}

/// The units `grants` allow for `instance_type` (standard billing), if granted at all.
fn granted(
    grants: &[Grant],
    owner_max: Option<u32>,
    instance_type: &str,
    defaults: Defaults,
) -> Option<u32> {
    let fallback = owner_max
        .filter(|m| *m > 0)
        .unwrap_or(defaults.max_allowed_instances);
    if grants.is_empty() {
        return (instance_type == "standard").then_some(fallback);
    }
    let grant = grants
        .iter()
        .find(|g| g.instance_type_id == instance_type)?;
    if grant.kafka_billing_models.is_empty() {
        return Some(fallback);
    }
    let model = grant
        .kafka_billing_models
        .iter()
        .find(|b| b.id == STANDARD_BILLING)?;
    Some(
        model
            .max_allowed_instances
            .filter(|m| *m > 0)
            .unwrap_or(fallback),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    const LIST: &str = r#"
registered_service_accounts:
  - username: alice
    max_allowed_instances: 3
  - username: bob
    granted_quota:
      - instance_type_id: standard
        kafka_billing_models:
          - id: standard
            max_allowed_instances: 7
registered_users_per_organisation:
  - id: "42"
    registered_users: [{username: carol}]
    max_allowed_instances: 5
    granted_quota:
      - instance_type_id: standard
"#;

    const DEFAULTS: Defaults = Defaults {
        max_allowed_instances: 1,
        max_allowed_developer_instances: 1,
    };

    fn caller(user: &str, org: Option<&str>) -> Caller {
        Caller {
            username: user.into(),
            org_id: org.map(Into::into),
            is_org_admin: false,
            is_admin: false,
        }
    }

    #[test]
    fn precedence_is_organisation_then_user_then_developer() {
        let list: QuotaList = serde_yaml_ng::from_str(LIST).unwrap();
        let a = |c: &Caller, t: &str| list.allowance(c, t, DEFAULTS);
        assert_eq!(
            a(&caller("carol", Some("42")), "standard").unwrap(),
            Allowance {
                scope: "org:42".into(),
                max: 5
            }
        );
        // Not a registered member: the organisation's quota is not hers.
        let dave = a(&caller("dave", Some("42")), "standard").unwrap_err();
        assert_eq!(dave.code, Code::InsufficientQuota);
        assert_eq!(
            a(&caller("alice", Some("42")), "standard").unwrap(),
            Allowance {
                scope: "user:alice".into(),
                max: 3
            }
        );
        assert_eq!(a(&caller("bob", None), "standard").unwrap().max, 7);
        assert_eq!(
            a(&caller("dave", None), "developer").unwrap(),
            Allowance {
                scope: "user:dave".into(),
                max: 1
            }
        );
        // A grant for standard only: developer falls back to the per-user developer quota.
        assert_eq!(
            a(&caller("carol", Some("42")), "developer").unwrap().scope,
            "user:carol"
        );
    }
}
