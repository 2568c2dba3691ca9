//! A `Consumer`'s spec checked and turned into numbers ([`Settings`]) once per reconcile, so the
//! plan works on validated values only; what is wrong is said in one sentence for the status.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DeploymentSpec;
use rivulet_kube_common::units;

use crate::crd::{
    AutoscalerSpec, Consumer, ContainerMode, FallbackStrategy, GoDuration, Mode, PredictorSpec,
    ResourceList,
};
use crate::instances::{self, DEFAULT_PARTITION_ENV, DISABLE_AUTOSCALER, VERBOSE};
use crate::predict::{Bounds, Predictor};

/// Default `pendingScaleUpDuration`.
pub const DEFAULT_PENDING_UP: Duration = Duration::from_secs(5 * 60);
/// Default `pendingScaleDownDuration`.
pub const DEFAULT_PENDING_DOWN: Duration = Duration::from_secs(15 * 60);
/// Default `minSyncPeriod`.
pub const DEFAULT_MIN_SYNC: Duration = Duration::from_secs(60);

/// The predictor's part of the spec, in numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Sizing {
    /// The maths.
    pub predictor: Predictor,
    /// `tolerableLag` (none: never lagging).
    pub tolerable_lag: Option<Duration>,
    /// `criticalLag` (none: never critical).
    pub critical_lag: Option<Duration>,
    /// `fallbackStrategy: max`.
    pub fallback_max: bool,
    /// `minSyncPeriod`.
    pub min_sync: Duration,
}

/// A `Consumer`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `metadata.name` of the Consumer.
    pub consumer: String,
    /// Its uid (owner references).
    pub uid: String,
    /// `spec.name`: the Deployments' base name.
    pub name: String,
    /// Where the Deployments are (the Consumer's namespace).
    pub namespace: String,
    /// Partitions per instance, in instance order.
    pub assignments: Vec<Vec<i32>>,
    /// `numPartitions`.
    pub num_partitions: i32,
    /// The partitions' environment variable.
    pub partition_env: String,
    /// The template.
    pub template: DeploymentSpec,
    /// Its hash, as the generation annotation holds it.
    pub generation: String,
    /// The metrics provider.
    pub mode: Mode,
    /// The predictor (modes `prometheus` and `kafka`).
    pub sizing: Option<Sizing>,
    /// `pendingScaleUpDuration`.
    pub pending_up: Duration,
    /// `pendingScaleDownDuration`.
    pub pending_down: Duration,
    /// Per container, its bounds.
    pub bounds: BTreeMap<String, Bounds>,
    /// Containers of `mode: Off`.
    pub unmanaged: BTreeSet<String>,
    /// `globalPolicy.maxAllowed` (milli-cores, milli-bytes).
    pub global: Option<(i64, i64)>,
    /// Policies whose min exceeded their max (swapped).
    pub swapped: Vec<String>,
    /// The Consumer carries the disable-autoscaler annotation.
    pub paused: bool,
    /// The Consumer carries the verbose annotation.
    pub verbose: bool,
}

fn duration(field: &str, value: Option<&GoDuration>) -> Result<Option<Duration>, String> {
    value
        .map(|d| units::duration(&d.0).map_err(|e| format!("{field}: {e}")))
        .transpose()
}

fn quantity(field: &str, value: &str) -> Result<i64, String> {
    units::milli(value).map_err(|e| format!("{field}: {e}"))
}

fn list(field: &str, list: &ResourceList) -> Result<(Option<i64>, Option<i64>), String> {
    let get = |key: &str| {
        list.get(key)
            .map(|q| quantity(&format!("{field}.{key}"), &q.0))
            .transpose()
    };
    Ok((get("cpu")?, get("memory")?))
}

fn sizing(p: &PredictorSpec, min_sync: Option<&GoDuration>, field: &str) -> Result<Sizing, String> {
    if p.rate_per_core < 1 {
        return Err(format!("{field}.ratePerCore must be at least 1"));
    }
    let recovery =
        duration(&format!("{field}.recoveryTime"), Some(&p.recovery_time))?.unwrap_or_default();
    if recovery < Duration::from_secs(1) {
        return Err(format!(
            "{field}.recoveryTime must be at least 1s (the predictor divides by its whole seconds)"
        ));
    }
    let cpu_increment = match &p.cpu_increment {
        Some(q) => quantity(&format!("{field}.cpuIncrement"), &q.0)?,
        None => 100,
    };
    if cpu_increment < 1 {
        return Err(format!("{field}.cpuIncrement must be at least 1m"));
    }
    Ok(Sizing {
        predictor: Predictor {
            rate_per_core: p.rate_per_core,
            ram_per_core: quantity(&format!("{field}.ramPerCore"), &p.ram_per_core.0)?.max(0),
            cpu_increment,
            recovery_secs: recovery.as_secs() as i64,
        },
        tolerable_lag: duration(&format!("{field}.tolerableLag"), p.tolerable_lag.as_ref())?,
        critical_lag: duration(&format!("{field}.criticalLag"), p.critical_lag.as_ref())?,
        fallback_max: p.fallback_strategy == Some(FallbackStrategy::Max),
        min_sync: duration(&format!("{field}.minSyncPeriod"), min_sync)?
            .unwrap_or(DEFAULT_MIN_SYNC),
    })
}

fn autoscaler(a: Option<&AutoscalerSpec>) -> Result<(Mode, Option<Sizing>), String> {
    let Some(a) = a else {
        return Ok((Mode::None, None));
    };
    let sizing = match a.mode {
        Mode::Prometheus => {
            let p = a.prometheus.as_ref().ok_or(
                "spec.autoscaler.mode is prometheus but spec.autoscaler.prometheus is missing",
            )?;
            if p.address.is_empty() {
                return Err("spec.autoscaler.prometheus.address lists no Prometheus".into());
            }
            Some(sizing(
                &p.predictor,
                p.min_sync_period.as_ref(),
                "spec.autoscaler.prometheus",
            )?)
        }
        Mode::Kafka => {
            let k = a
                .kafka
                .as_ref()
                .ok_or("spec.autoscaler.mode is kafka but spec.autoscaler.kafka is missing")?;
            if k.bootstrap_servers.trim().is_empty() || k.topic.is_empty() || k.group_id.is_empty()
            {
                return Err(
                    "spec.autoscaler.kafka needs bootstrapServers, topic and groupId".into(),
                );
            }
            Some(sizing(
                &k.predictor,
                k.min_sync_period.as_ref(),
                "spec.autoscaler.kafka",
            )?)
        }
        Mode::Vpa | Mode::None => None,
    };
    Ok((a.mode, sizing))
}

impl Settings {
    /// The settings of `consumer`, or why it cannot be acted on.
    pub fn of(consumer: &Consumer) -> Result<Self, String> {
        let spec = &consumer.spec;
        let own = consumer.metadata.namespace.clone().unwrap_or_default();
        let namespace = if spec.namespace.is_empty() {
            own.clone()
        } else {
            spec.namespace.clone()
        };
        if namespace != own {
            return Err(format!(
                "spec.namespace {namespace:?} is not the Consumer's namespace {own:?}: an owner reference cannot cross namespaces (Kubernetes would garbage-collect the Deployments); create the Consumer in {namespace:?}"
            ));
        }
        if spec.num_partitions < 1 {
            return Err("spec.numPartitions must be at least 1".into());
        }
        let per = spec.num_partitions_per_instance.unwrap_or(1);
        if per < 1 {
            return Err("spec.numPartitionsPerInstance must be at least 1".into());
        }
        if spec.name.is_empty() || spec.name.len() > 200 {
            return Err("spec.name must be a name of 1 to 200 characters".into());
        }
        let template: DeploymentSpec = serde_json::from_value(spec.deployment_template.clone())
            .map_err(|e| format!("spec.deploymentTemplate is not a DeploymentSpec: {e}"))?;
        let (mode, sizing) = autoscaler(spec.autoscaler.as_ref())?;
        let pending = |d: Option<&GoDuration>, field: &str, default| {
            duration(field, d).map(|d| d.unwrap_or(default))
        };
        let a = spec.autoscaler.clone().unwrap_or_default();
        let mut bounds = BTreeMap::new();
        let mut unmanaged = BTreeSet::new();
        let mut swapped = Vec::new();
        let mut global = None;
        if let Some(policy) = &spec.resource_policy {
            for (i, c) in policy.container_policies.iter().enumerate() {
                let field = format!("spec.resourcePolicy.containerPolicies[{i}]");
                if c.mode == Some(ContainerMode::Off) {
                    unmanaged.insert(c.container_name.clone());
                    continue;
                }
                let (min_cpu, min_memory) = list(&format!("{field}.minAllowed"), &c.min_allowed)?;
                let (max_cpu, max_memory) = list(&format!("{field}.maxAllowed"), &c.max_allowed)?;
                let (b, was_swapped) = Bounds::new(
                    min_cpu.unwrap_or(0),
                    max_cpu.unwrap_or(i64::MAX),
                    min_memory.unwrap_or(0),
                    max_memory.unwrap_or(i64::MAX),
                );
                if was_swapped {
                    swapped.push(c.container_name.clone());
                }
                bounds.insert(c.container_name.clone(), b);
            }
            if let Some(g) = &policy.global_policy {
                let (cpu, memory) = list(
                    "spec.resourcePolicy.globalPolicy.maxAllowed",
                    &g.max_allowed,
                )?;
                global = Some((cpu.unwrap_or(i64::MAX), memory.unwrap_or(i64::MAX)));
            }
        }
        let annotations = consumer.metadata.annotations.clone().unwrap_or_default();
        Ok(Self {
            consumer: consumer.metadata.name.clone().unwrap_or_default(),
            uid: consumer.metadata.uid.clone().unwrap_or_default(),
            name: spec.name.clone(),
            namespace,
            assignments: instances::buckets(spec.num_partitions, per),
            num_partitions: spec.num_partitions,
            partition_env: spec
                .partition_env_key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| DEFAULT_PARTITION_ENV.to_owned()),
            generation: instances::template_hash(&spec.deployment_template).to_string(),
            template,
            mode,
            sizing,
            pending_up: pending(
                a.pending_scale_up_duration.as_ref(),
                "spec.autoscaler.pendingScaleUpDuration",
                DEFAULT_PENDING_UP,
            )?,
            pending_down: pending(
                a.pending_scale_down_duration.as_ref(),
                "spec.autoscaler.pendingScaleDownDuration",
                DEFAULT_PENDING_DOWN,
            )?,
            bounds,
            unmanaged,
            global,
            swapped,
            paused: annotations.contains_key(DISABLE_AUTOSCALER),
            verbose: annotations.contains_key(VERBOSE),
        })
    }

    /// The Deployment name of instance `i`.
    pub fn deployment_name(&self, i: usize) -> String {
        format!("{}-{i}", self.name)
    }
}
