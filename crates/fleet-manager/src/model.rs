//! A Kafka instance request: its states, its row and its API form.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::catalog::Catalog;

/// The path of the instances.
pub const KAFKAS_PATH: &str = "/api/kafkas_mgmt/v1/kafkas";

/// The states of a request, with the reference's ordinals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Stored; waiting for a cluster.
    #[default]
    Accepted,
    /// Placed on a cluster; its Kubernetes objects are being written.
    Preparing,
    /// Its objects exist; waiting for Strimzi to report it ready.
    Provisioning,
    /// Serving.
    Ready,
    /// Deletion requested.
    Deprovision,
    /// Its objects are being deleted.
    Deleting,
    /// Gave up (`failed_reason` says why).
    Failed,
}

impl Status {
    /// Every state.
    pub const ALL: [Status; 7] = [
        Status::Accepted,
        Status::Preparing,
        Status::Provisioning,
        Status::Ready,
        Status::Deprovision,
        Status::Deleting,
        Status::Failed,
    ];

    /// The API's and the database's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Preparing => "preparing",
            Status::Provisioning => "provisioning",
            Status::Ready => "ready",
            Status::Deprovision => "deprovision",
            Status::Deleting => "deleting",
            Status::Failed => "failed",
        }
    }

    /// The reference's ordinal.
    pub fn ordinal(self) -> u32 {
        match self {
            Status::Accepted => 0,
            Status::Preparing => 10,
            Status::Provisioning => 20,
            Status::Ready => 30,
            Status::Deprovision => 40,
            Status::Deleting => 50,
            Status::Failed => 500,
        }
    }

    /// A state by name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a worker may move a request from `self` to `next`.
    pub fn may_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Accepted, Preparing)
                | (Preparing, Provisioning)
                | (Provisioning, Ready)
                | (Accepted | Preparing | Provisioning, Failed)
                | (
                    Accepted | Preparing | Provisioning | Ready | Failed,
                    Deprovision
                )
                | (Deprovision, Deleting)
        )
    }
}

/// A row of `kafka_requests`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KafkaRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub organisation_id: Option<String>,
    pub scope: String,
    pub quota_scope: String,
    pub cloud_provider: String,
    pub region: String,
    pub multi_az: bool,
    pub instance_type: String,
    pub size_id: String,
    pub billing_model: String,
    pub quota_consumed: i32,
    pub capacity_consumed: i32,
    pub reauthentication_enabled: bool,
    pub status: String,
    pub failed_reason: Option<String>,
    pub cluster_id: Option<String>,
    pub bootstrap_server_host: Option<String>,
    pub kafka_version: Option<String>,
    pub strimzi_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The columns of [`KafkaRow`], for `SELECT`.
pub const COLUMNS: &str = "id, name, owner, organisation_id, scope, quota_scope, cloud_provider, region, multi_az, instance_type, size_id, billing_model, quota_consumed, capacity_consumed, reauthentication_enabled, status, failed_reason, cluster_id, bootstrap_server_host, kafka_version, strimzi_version, created_at, updated_at, status_changed_at, expires_at, deleted_at";

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl KafkaRow {
    /// A request of one size that is not stored: to ask placement whether it would fit, and
    /// for tests.
    pub fn probe(
        provider: &str,
        region: &str,
        instance_type: &str,
        size: &crate::catalog::Size,
    ) -> KafkaRow {
        let now = Utc::now();
        KafkaRow {
            id: String::new(),
            name: String::new(),
            owner: String::new(),
            organisation_id: None,
            scope: String::new(),
            quota_scope: String::new(),
            cloud_provider: provider.to_owned(),
            region: region.to_owned(),
            multi_az: size.supported_az_modes.iter().any(|m| m == "multi"),
            instance_type: instance_type.to_owned(),
            size_id: size.id.clone(),
            billing_model: String::new(),
            quota_consumed: i32::try_from(size.quota_consumed).unwrap_or(i32::MAX),
            capacity_consumed: i32::try_from(size.capacity_consumed).unwrap_or(i32::MAX),
            reauthentication_enabled: false,
            status: String::new(),
            failed_reason: None,
            cluster_id: None,
            bootstrap_server_host: None,
            kafka_version: None,
            strimzi_version: None,
            created_at: now,
            updated_at: now,
            status_changed_at: now,
            expires_at: None,
            deleted_at: None,
        }
    }

    /// Its state (`failed` for a value no version of this binary writes).
    pub fn state(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Failed)
    }

    /// The name of its namespace and of its Kafka CR on the data plane: derived from the id,
    /// so writing them twice is a no-op.
    pub fn resource_name(&self) -> String {
        resource_name(&self.id)
    }

    /// The API form (`kind: Kafka`), limits from its size.
    pub fn to_json(&self, catalog: &Catalog, with_cluster: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "kind": "Kafka",
            "href": format!("{KAFKAS_PATH}/{}", self.id),
            "status": self.status,
            "cloud_provider": self.cloud_provider,
            "multi_az": self.multi_az,
            "region": self.region,
            "owner": self.owner,
            "name": self.name,
            "created_at": stamp(self.created_at),
            "updated_at": stamp(self.updated_at),
            "instance_type": self.instance_type,
            "size_id": self.size_id,
            "billing_model": self.billing_model,
            "reauthentication_enabled": self.reauthentication_enabled,
        });
        if let Some(h) = &self.bootstrap_server_host {
            v["bootstrap_server_host"] = json!(h);
        }
        if let Some(t) = self.expires_at {
            v["expires_at"] = json!(stamp(t));
        }
        if let Some(r) = &self.failed_reason {
            v["failed_reason"] = json!(r);
        }
        if let Some(k) = &self.kafka_version {
            v["version"] = json!(k);
        }
        if with_cluster && let Some(c) = &self.cluster_id {
            v["cluster_id"] = json!(c);
        }
        if let Some(t) = catalog.instance_type(&self.instance_type) {
            v["instance_type_name"] = json!(t.display_name);
        }
        if let Some(s) = catalog.size(&self.instance_type, &self.size_id) {
            v["ingress_throughput_per_sec"] = json!(s.ingress_throughput_per_sec);
            v["egress_throughput_per_sec"] = json!(s.egress_throughput_per_sec);
            v["total_max_connections"] = json!(s.total_max_connections);
            v["max_partitions"] = json!(s.max_partitions);
            v["max_data_retention_period"] = json!(s.max_data_retention_period);
            v["max_data_retention_size"] = json!({"bytes": bytes(&s.max_data_retention_size)});
            v["kafka_storage_size"] = json!(s.max_data_retention_size);
            v["max_connection_attempts_per_sec"] = json!(s.max_connection_attempts_per_sec);
        }
        v
    }
}

/// The data-plane name of instance `id` (namespace and Kafka CR).
pub fn resource_name(id: &str) -> String {
    format!("kafka-{id}")
}

/// A quantity in bytes (`1000Gi`); the catalogue checked it parses.
pub fn bytes(quantity: &str) -> i64 {
    rivulet_kube_common::units::milli(quantity).unwrap_or(0) / 1000
}

/// A new instance id: 20 characters of base32hex (the reference's id shape), time-ordered in
/// its first 8 so ids sort roughly by creation.
pub fn new_id(now: DateTime<Utc>) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let random = uuid::Uuid::new_v4().as_u128();
    let mut out = String::with_capacity(20);
    for i in (0..8).rev() {
        out.push(ALPHABET[((millis >> (i * 5 + 2)) & 31) as usize] as char);
    }
    for i in 0..12 {
        out.push(ALPHABET[((random >> (i * 5)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_move_forward_only() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert!(!s.may_become(s));
        }
        assert!(Status::Accepted.may_become(Status::Preparing));
        assert!(!Status::Ready.may_become(Status::Provisioning));
        assert!(!Status::Deleting.may_become(Status::Deprovision));
        assert!(!Status::Failed.may_become(Status::Ready));
        assert!(Status::Failed.ordinal() > Status::Deleting.ordinal());
    }

    #[test]
    fn ids_are_dns_labels_and_distinct() {
        let now = Utc::now();
        let a = new_id(now);
        let b = new_id(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert!(resource_name(&a).len() <= 63);
        assert_eq!(bytes("1Mi"), 1 << 20);
    }
}
