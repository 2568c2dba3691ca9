//! One reconcile of a `Consumer` as a pure function: from its [`Settings`], its existing
//! Deployments, the metrics and the time, the Deployments to create, replace and delete, and
//! the status counts. The reconciler only carries the plan out, so everything here is unit
//! tested without an API server (`plan/tests.rs`).
//!
//! - A missing instance is created from the template; one of another template hash is rebuilt
//!   from it; one with unreadable annotations, an id out of range or other partitions than
//!   assigned is deleted (and recreated as assigned).
//! - A kept instance is sized only when the metrics were just read (as the reference does):
//!   each managed container gets the predictor's estimate through the limiters and the scaling
//!   states of [`crate::scaling`]. An unchanged Deployment is never written.
//! - Every managed Deployment gets `strategy: Recreate` (two pods of one instance would own the
//!   same partitions), the reference's labels, annotations and environment, an owner
//!   reference, and a selector label of its own.
//! - Paused (the Consumer's disable-autoscaler annotation): every managed container at its
//!   policy's `minAllowed`, no scaling. A Deployment with the annotation is left as it is.
//! - An estimate of nothing (no metrics, no fallback) leaves the template's resources.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::instances::{self, Placement, Verdict};
use crate::predict::{self, Metrics, Pool, Resources};
use crate::scaling::{Saturation, Situation, State};
use crate::spec::{Settings, Sizing};

mod objects;
#[cfg(test)]
mod tests;

pub use objects::resources_of;
use objects::{annotation, requests, set_resources, set_state};

/// The status counts (Konsumerator's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Instances that should exist.
    pub expected: i32,
    /// Existing, not paused.
    pub running: i32,
    /// Existing and paused.
    pub paused: i32,
    /// At least `tolerableLag` behind.
    pub lagging: i32,
    /// Had to be created.
    pub missing: i32,
    /// Of an older template.
    pub outdated: i32,
    /// Should not exist.
    pub redundant: i32,
}

/// One instance as the plan leaves it (for the metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The Deployment's name.
    pub deployment: String,
    /// Its scaling state.
    pub state: State,
    /// Milli-cores it lacks.
    pub saturation: i64,
}

/// What to do.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Deployments to create.
    pub create: Vec<Deployment>,
    /// Deployments to write back (they carry the resourceVersion read).
    pub replace: Vec<Deployment>,
    /// Deployments to delete, with why.
    pub delete: Vec<(String, String)>,
    /// The status counts.
    pub counts: Counts,
    /// Each instance's state.
    pub instances: Vec<Instance>,
    /// Requests of all instances after the plan (milli-cores, milli-bytes).
    pub allocated: (i64, i64),
}

struct Planner<'a> {
    s: &'a Settings,
    metrics: &'a Metrics,
    fresh: bool,
    now: DateTime<Utc>,
    pool: Option<Pool>,
    /// Per container name, the requests of the existing instances (fallback).
    existing: BTreeMap<String, Vec<Resources>>,
}

impl<'a> Planner<'a> {
    fn managed(&self, container: &Container) -> bool {
        self.s.sizing.is_some() && !self.s.unmanaged.contains(&container.name)
    }

    /// The largest lag of `partitions` reaches the limit `which` picks (none set: never).
    fn beyond(&self, partitions: &[i32], which: fn(&Sizing) -> Option<Duration>) -> bool {
        self.s
            .sizing
            .as_ref()
            .and_then(which)
            .is_some_and(|limit| self.metrics.max_lag(partitions) >= limit)
    }

    fn lagging(&self, partitions: &[i32]) -> bool {
        self.beyond(partitions, |z| z.tolerable_lag)
    }

    fn critical(&self, partitions: &[i32]) -> bool {
        self.beyond(partitions, |z| z.critical_lag)
    }

    /// The predictor's estimate for `container` of an instance of `partitions` (the fallback
    /// when nothing was measured) and the container's bounds; `None` when there is nothing to
    /// estimate from (the template's resources stay).
    fn raw_estimate(
        &self,
        container: &Container,
        partitions: &[i32],
    ) -> Option<(Resources, Option<&'a predict::Bounds>)> {
        let s: &'a Settings = self.s;
        let sizing = s.sizing.as_ref()?;
        let bounds = s.bounds.get(&container.name);
        let fallback = predict::fallback(
            sizing.fallback_max,
            bounds,
            s.assignments.len(),
            self.existing
                .get(&container.name)
                .map_or(&[][..], Vec::as_slice),
        );
        let estimate = sizing
            .predictor
            .estimate(self.metrics, partitions, fallback);
        (estimate != Resources::default() || bounds.is_some()).then_some((estimate, bounds))
    }

    /// The estimate for `container` of an instance of `partitions`, within its bounds; `None`
    /// when there is nothing to estimate from (the template's resources stay).
    fn estimate(&self, container: &Container, partitions: &[i32]) -> Option<Resources> {
        self.s.sizing.as_ref()?;
        if self.s.paused {
            return self.s.bounds.get(&container.name).map(predict::Bounds::min);
        }
        let (estimate, bounds) = self.raw_estimate(container, partitions)?;
        let (limited, _) = predict::limit(
            &estimate,
            bounds,
            self.critical(partitions),
            &Resources::default(),
            None,
        );
        Some(limited)
    }

    /// Instance `i`'s selector: the template's and the instance label (selectors are
    /// immutable: a Deployment with another one is replaced).
    fn selector(&self, i: usize) -> LabelSelector {
        let mut selector = self.s.template.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(
                instances::INSTANCE_LABEL.into(),
                instances::label_value(&self.s.deployment_name(i)),
            );
        selector
    }

    /// A Deployment of instance `i` built from the template (new, or to replace an outdated
    /// one whose metadata `base` keeps).
    fn build(&mut self, i: usize, base: Option<&Deployment>) -> Deployment {
        let s = self.s;
        let partitions = &s.assignments[i];
        let name = s.deployment_name(i);
        let mut spec = s.template.clone();
        spec.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
        spec.selector = self.selector(i);
        let pod_meta = spec
            .template
            .metadata
            .get_or_insert_with(ObjectMeta::default);
        pod_meta.labels.get_or_insert_with(BTreeMap::new).insert(
            instances::INSTANCE_LABEL.into(),
            instances::label_value(&name),
        );
        let placement = Placement {
            partition_env: &s.partition_env,
            partitions,
            instance: i,
            num_partitions: s.num_partitions,
            num_instances: s.assignments.len(),
        };
        let mut containers = std::mem::take(
            &mut spec
                .template
                .spec
                .get_or_insert_with(Default::default)
                .containers,
        );
        for c in &mut containers {
            if self.managed(c)
                && let Some(r) = self.estimate(c, partitions)
            {
                set_resources(c, &r);
            }
            let r = resources_of(c);
            instances::populate_env(
                c.env.get_or_insert_with(Vec::new),
                &placement,
                r.cpu_limit,
                r.memory_limit,
            );
        }
        if let Some(pod) = spec.template.spec.as_mut() {
            pod.containers = containers;
        }
        let mut metadata = base.map(|d| d.metadata.clone()).unwrap_or_default();
        metadata.name = Some(name);
        metadata.namespace = Some(s.namespace.clone());
        let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("app".into(), instances::label_value(&s.name));
        labels.insert("controller".into(), instances::label_value(&s.consumer));
        labels.insert(
            "partitions".into(),
            instances::label_value(&instances::range_label(partitions)),
        );
        let a = metadata.annotations.get_or_insert_with(BTreeMap::new);
        let ids: Vec<String> = partitions.iter().map(ToString::to_string).collect();
        a.insert(instances::PARTITION.into(), ids.join(","));
        a.insert(instances::CONSUMER_ID.into(), i.to_string());
        a.insert(instances::GENERATION.into(), s.generation.clone());
        metadata.owner_references = Some(vec![self.owner()]);
        let mut d = Deployment {
            metadata,
            spec,
            status: None,
        };
        if base.is_none() || annotation(&d, instances::SCALING_STATUS).is_none() {
            set_state(&mut d, State::Running, Saturation::Clear, self.now);
        }
        d
    }

    fn owner(&self) -> OwnerReference {
        OwnerReference {
            api_version: "rivulet.io/v1alpha1".into(),
            kind: "Consumer".into(),
            name: self.s.consumer.clone(),
            uid: self.s.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Sizes a kept instance; returns its state and whether `d` changed.
    fn size(&mut self, d: &mut Deployment, i: usize) -> (State, i64, bool) {
        let partitions = self.s.assignments[i].clone();
        let mut changed = false;
        let owners = d.metadata.owner_references.get_or_insert_with(Vec::new);
        if !owners
            .iter()
            .any(|o| o.uid == self.s.uid && o.controller == Some(true))
        {
            owners.retain(|o| o.controller != Some(true));
            owners.push(self.owner());
            changed = true;
        }
        let state = State::parse(annotation(d, instances::SCALING_STATUS).unwrap_or(""));
        let saturation = annotation(d, instances::CPU_SATURATION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let estimating = self.fresh && !self.s.paused && self.s.sizing.is_some();
        let paused_here = annotation(d, instances::DISABLE_AUTOSCALER).is_some();
        if paused_here || !(estimating || self.s.paused) {
            return (state, saturation, changed);
        }
        let in_state_for = annotation(d, instances::SCALING_STATUS_CHANGE)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                (self.now - t.with_timezone(&Utc))
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            });
        let lagging = self.lagging(&partitions);
        let critical = self.critical(&partitions);
        let placement = Placement {
            partition_env: &self.s.partition_env,
            partitions: &partitions,
            instance: i,
            num_partitions: self.s.num_partitions,
            num_instances: self.s.assignments.len(),
        };
        let (mut any_up, mut any_down, mut shortage) = (false, false, 0i64);
        let Some(pod) = d.spec.template.spec.as_mut() else {
            return (state, saturation, changed);
        };
        for c in &mut pod.containers {
            if !self.managed(c) {
                continue;
            }
            let current = resources_of(c);
            let mut pending_pool = self.pool;
            let (wanted, lack) = if self.s.paused {
                match self.s.bounds.get(&c.name) {
                    Some(b) => (b.min(), predict::Shortage::default()),
                    None => continue,
                }
            } else {
                let Some((estimate, bounds)) = self.raw_estimate(c, &partitions) else {
                    continue;
                };
                // The pool is drawn on only by changes applied (the reference draws on it
                // for every estimate, so an instance that is not scaled can starve another).
                let mut trial = self.pool;
                let limited = predict::limit(&estimate, bounds, critical, &current, trial.as_mut());
                pending_pool = trial;
                limited
            };
            let outcome = if self.s.paused {
                crate::scaling::Outcome {
                    state: State::Running,
                    apply: true,
                    saturation: Saturation::Clear,
                }
            } else {
                Situation {
                    state,
                    in_state_for,
                    lagging,
                    wanted: predict::compare(&current, &wanted),
                    cpu_shortage: lack.cpu,
                    pending_up: self.s.pending_up,
                    pending_down: self.s.pending_down,
                }
                .decide()
            };
            if outcome.apply {
                self.pool = pending_pool;
            }
            if outcome.apply && set_resources(c, &wanted) {
                let r = resources_of(c);
                instances::populate_env(
                    c.env.get_or_insert_with(Vec::new),
                    &placement,
                    r.cpu_limit,
                    r.memory_limit,
                );
                changed = true;
            }
            match outcome.state {
                State::Saturated => shortage += lack.cpu.max(0),
                State::PendingScaleUp => any_up = true,
                State::PendingScaleDown => any_down = true,
                _ => {}
            }
        }
        // The instance's state over its containers: saturated if any lacks CPU, else pending
        // if any waits (up before down), else running.
        let (next, sat) = if shortage > 0 {
            (State::Saturated, Saturation::Set(shortage))
        } else if any_up {
            (State::PendingScaleUp, Saturation::Keep)
        } else if any_down {
            (State::PendingScaleDown, Saturation::Keep)
        } else {
            (State::Running, Saturation::Clear)
        };
        changed |= set_state(d, next, sat, self.now);
        let saturation = if let Saturation::Set(m) = sat {
            m
        } else if sat == Saturation::Clear {
            0
        } else {
            saturation
        };
        (next, saturation, changed)
    }
}

/// Instance `i`'s Deployment as a first reconcile without metrics would create it (the one
/// the template's dry-run sends).
pub fn instance(s: &Settings, i: usize, now: DateTime<Utc>) -> Deployment {
    let metrics = Metrics::default();
    let mut planner = Planner {
        s,
        metrics: &metrics,
        fresh: false,
        now,
        pool: None,
        existing: BTreeMap::new(),
    };
    planner.build(i, None)
}

/// The plan for `s` with its `existing` Deployments; `metrics` are the last known, `fresh`
/// when they were read in this reconcile (only then are kept instances sized).
pub fn plan(
    s: &Settings,
    existing: &[Deployment],
    metrics: &Metrics,
    fresh: bool,
    now: DateTime<Utc>,
) -> Plan {
    let mut out = Plan {
        counts: Counts {
            expected: s.assignments.len() as i32,
            ..Counts::default()
        },
        ..Plan::default()
    };
    let mut used = (0i64, 0i64);
    let mut existing_requests: BTreeMap<String, Vec<Resources>> = BTreeMap::new();
    for d in existing {
        for (name, r) in requests(d) {
            used.0 += r.cpu_request;
            used.1 += r.memory_request;
            existing_requests.entry(name).or_default().push(r);
        }
    }
    let mut planner = Planner {
        s,
        metrics,
        fresh,
        now,
        pool: s.global.map(|(cpu, memory)| Pool {
            cpu: cpu.saturating_sub(used.0),
            memory: memory.saturating_sub(used.1),
        }),
        existing: existing_requests,
    };
    let mut seen = vec![false; s.assignments.len()];
    let mut states: BTreeMap<usize, Instance> = BTreeMap::new();
    for d in existing {
        let name = d.metadata.name.clone().unwrap_or_default();
        let verdict = match instances::judge(d, &s.assignments, &s.generation) {
            Verdict::Keep(i) | Verdict::Outdated(i) if seen[i] => {
                Verdict::Remove(format!("a second Deployment of instance {i}"))
            }
            Verdict::Keep(i) | Verdict::Outdated(i) if s.deployment_name(i) != name => {
                Verdict::Remove(format!(
                    "instance {i} should be named {}",
                    s.deployment_name(i)
                ))
            }
            v => v,
        };
        let (i, outdated) = match verdict {
            Verdict::Remove(why) => {
                out.counts.redundant += 1;
                out.delete.push((name, why));
                continue;
            }
            Verdict::Keep(i) => (i, false),
            Verdict::Outdated(i) => (i, true),
        };
        if planner.selector(i) != d.spec.selector {
            // The selector is immutable: another one means a new Deployment.
            out.counts.redundant += 1;
            out.delete.push((
                name,
                "its selector is not the one the operator gives instance Deployments".into(),
            ));
            continue;
        }
        seen[i] = true;
        if s.paused || annotation(d, instances::DISABLE_AUTOSCALER).is_some() {
            out.counts.paused += 1;
        } else {
            out.counts.running += 1;
        }
        if planner.lagging(&s.assignments[i]) {
            out.counts.lagging += 1;
        }
        if outdated {
            out.counts.outdated += 1;
            let rebuilt = planner.build(i, Some(d));
            states.insert(
                i,
                Instance {
                    deployment: name,
                    state: State::parse(
                        annotation(&rebuilt, instances::SCALING_STATUS).unwrap_or(""),
                    ),
                    saturation: 0,
                },
            );
            out.replace.push(rebuilt);
            continue;
        }
        let mut copy = d.clone();
        let (state, saturation, changed) = planner.size(&mut copy, i);
        if changed {
            out.replace.push(copy);
        }
        states.insert(
            i,
            Instance {
                deployment: name,
                state,
                saturation,
            },
        );
    }
    for (i, seen) in seen.iter().enumerate() {
        if !seen {
            out.counts.missing += 1;
            let d = planner.build(i, None);
            states.insert(
                i,
                Instance {
                    deployment: s.deployment_name(i),
                    state: State::Running,
                    saturation: 0,
                },
            );
            out.create.push(d);
        }
    }
    let written: Vec<&Deployment> = out.create.iter().chain(out.replace.iter()).collect();
    let mut allocated = (0, 0);
    for d in existing {
        let name = d.metadata.name.as_deref();
        if out.delete.iter().any(|(n, _)| Some(n.as_str()) == name)
            || written.iter().any(|w| w.metadata.name.as_deref() == name)
        {
            continue;
        }
        for (_, r) in requests(d) {
            allocated.0 += r.cpu_request;
            allocated.1 += r.memory_request;
        }
    }
    for d in written {
        for (_, r) in requests(d) {
            allocated.0 += r.cpu_request;
            allocated.1 += r.memory_request;
        }
    }
    out.allocated = allocated;
    out.instances = states.into_values().collect();
    out
}
