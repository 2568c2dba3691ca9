//! Reading and editing the parts of a Deployment the plan works on: container resources, the
//! scaling-state annotations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rivulet_kube_common::units;

use crate::instances;
use crate::predict::Resources;
use crate::scaling::{Saturation, State};

/// A container's CPU and memory requests and limits (absent or unreadable: 0).
pub fn resources_of(container: &Container) -> Resources {
    let get = |list: Option<&BTreeMap<String, Quantity>>, key: &str| {
        list.and_then(|l| l.get(key))
            .and_then(|q| units::milli(&q.0).ok())
            .unwrap_or(0)
    };
    let r = container.resources.as_ref();
    let requests = r.and_then(|r| r.requests.as_ref());
    let limits = r.and_then(|r| r.limits.as_ref());
    Resources {
        cpu_request: get(requests, "cpu"),
        memory_request: get(requests, "memory"),
        cpu_limit: get(limits, "cpu"),
        memory_limit: get(limits, "memory"),
    }
}

/// Gives `container` the resources `r` (other resource names kept); `false` if it had them.
pub(super) fn set_resources(container: &mut Container, r: &Resources) -> bool {
    if resources_of(container) == *r {
        return false;
    }
    let resources = container
        .resources
        .get_or_insert_with(ResourceRequirements::default);
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    requests.insert("cpu".into(), Quantity(units::cpu(r.cpu_request)));
    requests.insert("memory".into(), Quantity(units::bytes(r.memory_request)));
    let limits = resources.limits.get_or_insert_with(BTreeMap::new);
    limits.insert("cpu".into(), Quantity(units::cpu(r.cpu_limit)));
    limits.insert("memory".into(), Quantity(units::bytes(r.memory_limit)));
    true
}

pub(super) fn annotation<'a>(d: &'a Deployment, key: &str) -> Option<&'a str> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Sets the state annotations; `true` if anything changed.
pub(super) fn set_state(
    d: &mut Deployment,
    state: State,
    saturation: Saturation,
    now: DateTime<Utc>,
) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    if a.get(instances::SCALING_STATUS).map(String::as_str) != Some(state.as_str()) {
        a.insert(instances::SCALING_STATUS.into(), state.as_str().into());
        a.insert(
            instances::SCALING_STATUS_CHANGE.into(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        changed = true;
    }
    match saturation {
        Saturation::Set(m) => {
            changed |= a
                .insert(instances::CPU_SATURATION.into(), m.to_string())
                .as_deref()
                != Some(m.to_string().as_str());
        }
        Saturation::Clear => changed |= a.remove(instances::CPU_SATURATION).is_some(),
        Saturation::Keep => {}
    }
    changed
}

pub(super) fn requests(d: &Deployment) -> Vec<(String, Resources)> {
    d.spec
        .template
        .spec
        .as_ref()
        .map(|p| {
            p.containers
                .iter()
                .map(|c| (c.name.clone(), resources_of(c)))
                .collect()
        })
        .unwrap_or_default()
}
