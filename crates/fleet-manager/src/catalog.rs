//! The configuration files, in the reference's shapes (YAML): instance types and sizes
//! (`supported_instance_types`), cloud providers and regions (`supported_providers`) and the
//! data-plane clusters (`clusters`, the standalone provider's entries, plus a `kubeconfig`
//! path and a per-instance-type `capacity`). Loaded once at start-up and checked as a whole:
//! a file that contradicts itself stops the binary with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A configuration file is unreadable or contradicts itself.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not the YAML expected.
    #[error("{0}: {1}")]
    Parse(PathBuf, serde_yaml_ng::Error),
    /// The contents contradict themselves.
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
    serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse(path.into(), e))
}

/// `kafka-instance-types-configuration.yaml`.
#[derive(Clone, Debug, Deserialize)]
pub struct InstanceTypes {
    /// The types.
    pub supported_instance_types: Vec<InstanceType>,
}

/// An instance type (`standard`, `developer`).
#[derive(Clone, Debug, Deserialize)]
pub struct InstanceType {
    /// `standard`, `developer`, …
    pub id: String,
    /// Shown to people (`Trial`).
    pub display_name: String,
    /// Billing models (only their ids are used here: billing is out of scope).
    #[serde(default)]
    pub supported_billing_models: Vec<BillingModel>,
    /// Its sizes.
    pub sizes: Vec<Size>,
}

/// A billing model of an instance type.
#[derive(Clone, Debug, Deserialize)]
pub struct BillingModel {
    /// `standard`, `eval`, …
    pub id: String,
}

/// A size of an instance type, with its limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Size {
    /// `x1`, `x2`.
    pub id: String,
    /// Shown to people.
    #[serde(rename = "display_name")]
    pub display_name: String,
    /// Ingress limit, a Kubernetes quantity (`50Mi`), per second.
    pub ingress_throughput_per_sec: String,
    /// Egress limit, per second.
    pub egress_throughput_per_sec: String,
    /// Client connections.
    pub total_max_connections: u64,
    /// Connection attempts per second.
    pub max_connection_attempts_per_sec: u64,
    /// Storage (`1000Gi`).
    pub max_data_retention_size: String,
    /// Retention (ISO 8601, `P14D`).
    pub max_data_retention_period: String,
    /// Partitions of all topics together.
    pub max_partitions: u64,
    /// Largest message (`1Mi`).
    pub max_message_size: String,
    /// `min.insync.replicas`.
    pub min_in_sync_replicas: u32,
    /// Replication factor, and the number of brokers.
    pub replication_factor: u32,
    /// Quota units an instance of this size takes.
    #[serde(default = "one")]
    pub quota_consumed: u32,
    /// Cluster capacity units an instance of this size takes.
    #[serde(default = "one")]
    pub capacity_consumed: u32,
    /// `single`, `multi`.
    #[serde(rename = "supportedAZModes", default)]
    pub supported_az_modes: Vec<String>,
    /// Seconds an instance lives (developer: 48 h); none: forever.
    #[serde(default)]
    pub lifespan_seconds: Option<u64>,
    /// `stable`, `preview`.
    #[serde(default)]
    pub maturity_status: String,
}

fn one() -> u32 {
    1
}

/// `provider-configuration.yaml`.
#[derive(Clone, Debug, Deserialize)]
pub struct Providers {
    /// The providers.
    pub supported_providers: Vec<Provider>,
}

/// A cloud provider.
#[derive(Clone, Debug, Deserialize)]
pub struct Provider {
    /// `aws`.
    pub name: String,
    /// The one chosen when a request names none.
    #[serde(default)]
    pub default: bool,
    /// Its regions.
    pub regions: Vec<Region>,
}

/// A region of a provider.
#[derive(Clone, Debug, Deserialize)]
pub struct Region {
    /// `us-east-1`.
    pub name: String,
    /// The one chosen when a request names none.
    #[serde(default)]
    pub default: bool,
    /// Instance types offered here, each with an optional limit in capacity units.
    #[serde(default)]
    pub supported_instance_type: BTreeMap<String, RegionLimit>,
}

/// A region's limit for one instance type.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegionLimit {
    /// Capacity units of this type the region takes at most (none: no limit).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `dataplane-cluster-configuration.yaml`.
#[derive(Clone, Debug, Deserialize)]
pub struct Clusters {
    /// The clusters, in placement order.
    pub clusters: Vec<Cluster>,
}

/// A data-plane cluster (the standalone provider's entry).
#[derive(Clone, Debug, Deserialize)]
pub struct Cluster {
    /// Its id (the placement target; shown to admins).
    pub cluster_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Where it runs.
    pub cloud_provider: String,
    /// Where it runs.
    pub region: String,
    /// Whether it spans zones.
    #[serde(default)]
    pub multi_az: bool,
    /// Whether new instances may be placed on it.
    #[serde(default = "yes")]
    pub schedulable: bool,
    /// Capacity units of all types together.
    pub kafka_instance_limit: u32,
    /// `ready` clusters take instances; others do not.
    #[serde(default = "ready")]
    pub status: String,
    /// Only `standalone` is supported here.
    #[serde(default = "standalone")]
    pub provider_type: String,
    /// The DNS suffix of the cluster's routes (informational).
    #[serde(default)]
    pub cluster_dns: String,
    /// `standard,developer`.
    #[serde(default = "both_types")]
    pub supported_instance_type: String,
    /// Capacity units per instance type (Rivulet's addition; none: only the total limit).
    #[serde(default)]
    pub capacity: BTreeMap<String, u32>,
    /// The kubeconfig the fleet manager reaches the cluster with. Never shown by the API.
    pub kubeconfig: PathBuf,
}

fn yes() -> bool {
    true
}
fn ready() -> String {
    "ready".into()
}
fn standalone() -> String {
    "standalone".into()
}
fn both_types() -> String {
    "standard,developer".into()
}

impl Cluster {
    /// Whether the cluster takes instances of `instance_type`.
    pub fn supports(&self, instance_type: &str) -> bool {
        self.supported_instance_type
            .split(',')
            .any(|t| t.trim() == instance_type)
    }
}

/// Everything the configuration files say.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// Instance types.
    pub instance_types: Vec<InstanceType>,
    /// Providers and regions.
    pub providers: Vec<Provider>,
    /// Data-plane clusters.
    pub clusters: Vec<Cluster>,
}

impl Catalog {
    /// Loads and checks the three files. Relative kubeconfig paths are taken relative to the
    /// clusters file.
    pub fn load(
        instance_types: &Path,
        providers: &Path,
        clusters: &Path,
    ) -> Result<Catalog, ConfigError> {
        let types: InstanceTypes = load(instance_types)?;
        let provs: Providers = load(providers)?;
        let mut cl: Clusters = load(clusters)?;
        let base = clusters.parent().unwrap_or(Path::new("."));
        for c in &mut cl.clusters {
            if c.kubeconfig.is_relative() {
                c.kubeconfig = base.join(&c.kubeconfig);
            }
        }
        let catalog = Catalog {
            instance_types: types.supported_instance_types,
            providers: provs.supported_providers,
            clusters: cl.clusters,
        };
        catalog
            .check_types()
            .map_err(|e| ConfigError::Invalid(instance_types.into(), e))?;
        catalog
            .check_providers()
            .map_err(|e| ConfigError::Invalid(providers.into(), e))?;
        catalog
            .check_clusters()
            .map_err(|e| ConfigError::Invalid(clusters.into(), e))?;
        Ok(catalog)
    }

    fn check_types(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for t in &self.instance_types {
            if !ids.insert(&t.id) {
                return Err(format!("instance type {} is listed twice", t.id));
            }
            if t.sizes.is_empty() {
                return Err(format!("instance type {} has no sizes", t.id));
            }
            for s in &t.sizes {
                if s.replication_factor == 0 || s.min_in_sync_replicas > s.replication_factor {
                    return Err(format!(
                        "{}.{}: minInSyncReplicas {} with replicationFactor {}",
                        t.id, s.id, s.min_in_sync_replicas, s.replication_factor
                    ));
                }
                if s.lifespan_seconds == Some(0) {
                    return Err(format!("{}.{}: lifespanSeconds must be ≥ 1", t.id, s.id));
                }
                for q in [
                    &s.ingress_throughput_per_sec,
                    &s.egress_throughput_per_sec,
                    &s.max_data_retention_size,
                    &s.max_message_size,
                ] {
                    rivulet_kube_common::units::milli(q)
                        .map_err(|e| format!("{}.{}: {e}", t.id, s.id))?;
                }
            }
        }
        Ok(())
    }

    fn check_providers(&self) -> Result<(), String> {
        if self.providers.iter().filter(|p| p.default).count() != 1 {
            return Err("exactly one provider must be the default".into());
        }
        for p in &self.providers {
            if self.providers.iter().filter(|q| q.name == p.name).count() > 1 {
                return Err(format!("provider {} is listed twice", p.name));
            }
            if p.regions.iter().filter(|r| r.default).count() != 1 {
                return Err(format!("provider {}: exactly one default region", p.name));
            }
            for r in &p.regions {
                for t in r.supported_instance_type.keys() {
                    if self.instance_type(t).is_none() {
                        return Err(format!("{}/{}: unknown instance type {t}", p.name, r.name));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_clusters(&self) -> Result<(), String> {
        for (i, c) in self.clusters.iter().enumerate() {
            if c.cluster_id.is_empty() {
                return Err(format!("cluster {i}: cluster_id is empty"));
            }
            if self.clusters[..i]
                .iter()
                .any(|d| d.cluster_id == c.cluster_id)
            {
                return Err(format!("cluster {} is listed twice", c.cluster_id));
            }
            if c.provider_type != "standalone" {
                return Err(format!(
                    "cluster {}: provider_type {} (only standalone is supported)",
                    c.cluster_id, c.provider_type
                ));
            }
            if self.region(&c.cloud_provider, &c.region).is_none() {
                return Err(format!(
                    "cluster {}: {}/{} is not a configured region",
                    c.cluster_id, c.cloud_provider, c.region
                ));
            }
        }
        Ok(())
    }

    /// An instance type by id.
    pub fn instance_type(&self, id: &str) -> Option<&InstanceType> {
        self.instance_types.iter().find(|t| t.id == id)
    }

    /// A size by instance type and size id.
    pub fn size(&self, instance_type: &str, size: &str) -> Option<&Size> {
        self.instance_type(instance_type)?
            .sizes
            .iter()
            .find(|s| s.id == size)
    }

    /// A provider by name.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The default provider.
    pub fn default_provider(&self) -> Option<&Provider> {
        self.providers.iter().find(|p| p.default)
    }

    /// A region of a provider.
    pub fn region(&self, provider: &str, region: &str) -> Option<&Region> {
        self.provider(provider)?
            .regions
            .iter()
            .find(|r| r.name == region)
    }

    /// A cluster by id.
    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.cluster_id == id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fleet-catalog-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const CLUSTERS: &str = "clusters:\n  - cluster_id: c1\n    cloud_provider: aws\n    region: us-east-1\n    kafka_instance_limit: 5\n    kubeconfig: kube.yaml\n";

    #[test]
    fn the_shipped_files_load() {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/base/fleet-manager/config");
        let d = dir();
        let clusters = write(&d, "clusters.yaml", CLUSTERS);
        let c = Catalog::load(
            &root.join("kafka-instance-types-configuration.yaml"),
            &root.join("provider-configuration.yaml"),
            &clusters,
        )
        .unwrap();
        let dev = c.size("developer", "x1").unwrap();
        assert_eq!(dev.lifespan_seconds, Some(172_800));
        assert_eq!(dev.replication_factor, 1);
        assert_eq!(c.size("standard", "x2").unwrap().capacity_consumed, 2);
        assert_eq!(c.default_provider().unwrap().name, "aws");
        assert_eq!(c.clusters[0].kubeconfig, d.join("kube.yaml"));
        assert!(c.clusters[0].supports("developer"));
    }

    #[test]
    fn contradictions_are_refused_with_the_file() {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/base/fleet-manager/config");
        let d = dir();
        let clusters = write(
            &d,
            "clusters.yaml",
            &CLUSTERS.replace("us-east-1", "mars-1"),
        );
        let e = Catalog::load(
            &root.join("kafka-instance-types-configuration.yaml"),
            &root.join("provider-configuration.yaml"),
            &clusters,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("clusters.yaml") && e.contains("mars-1"), "{e}");
        let providers = write(
            &d,
            "providers.yaml",
            "supported_providers:\n  - name: aws\n    regions:\n      - name: r\n        default: true\n",
        );
        let e = Catalog::load(
            &root.join("kafka-instance-types-configuration.yaml"),
            &providers,
            &clusters,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("default"), "{e}");
    }
}
