//! Carrying a plan out, exporting its figures, writing the status.

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::{Context, Error, api};
use crate::crd::{Consumer, ConsumerStatus};
use crate::metrics;
use crate::plan::Plan;
use crate::spec::Settings;

/// Carries `plan` out; the first failure, if any (the others are counted).
pub(super) async fn carry_out(
    ctx: &Context,
    settings: &Settings,
    deployments: &Api<Deployment>,
    plan: &Plan,
    existing: &[Deployment],
) -> Option<String> {
    let labels = metrics::consumer(&settings.consumer);
    let mut first: Option<String> = None;
    let mut fail = |e: String| {
        tracing::warn!(consumer = %settings.consumer, error = %e, "A Deployment write failed.");
        first.get_or_insert(e);
    };
    for d in &plan.create {
        let n = d.name_any();
        ctx.metrics.api("create");
        match deployments.create(&PostParams::default(), d).await {
            Ok(_) => {
                ctx.metrics.create.get_or_create(&labels).inc();
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                ctx.metrics.create_errors.get_or_create(&labels).inc();
                fail(format!("creating Deployment {n}: {e}"));
            }
        }
    }
    for (n, why) in &plan.delete {
        tracing::info!(consumer = %settings.consumer, deployment = %n, why, "Deleting a Deployment.");
        ctx.metrics.api("delete");
        // Only the Deployment as read: if it changed since, this view is stale.
        let read = existing
            .iter()
            .find(|d| d.metadata.name.as_ref() == Some(n));
        let params = DeleteParams {
            preconditions: read.map(|d| Preconditions {
                resource_version: d.metadata.resource_version.clone(),
                uid: d.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        match deployments.delete(n, &params).await {
            Ok(_) => {
                ctx.metrics.delete.get_or_create(&labels).inc();
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                ctx.metrics.delete_errors.get_or_create(&labels).inc();
                fail(format!("deleting Deployment {n}: {e}"));
            }
        }
    }
    for d in &plan.replace {
        let n = d.name_any();
        ctx.metrics.api("replace");
        match deployments.replace(&n, &PostParams::default(), d).await {
            Ok(_) => {
                ctx.metrics.update.get_or_create(&labels).inc();
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                ctx.metrics.update_errors.get_or_create(&labels).inc();
                fail(format!("updating Deployment {n}: {e}"));
            }
        }
    }
    let untouched = plan.counts.expected as u64
        - (plan.create.len() + plan.replace.len()).min(plan.counts.expected as usize) as u64;
    ctx.metrics
        .unchanged
        .get_or_create(&labels)
        .inc_by(untouched);
    first
}

pub(super) fn export(ctx: &Context, settings: &Settings, plan: &Plan) {
    let m = &ctx.metrics;
    let name = &settings.consumer;
    let c = &plan.counts;
    for (t, v) in [
        ("running", c.running),
        ("paused", c.paused),
        ("lagging", c.lagging),
        ("outdated", c.outdated),
        ("expected", c.expected),
        ("missing", c.missing),
        ("redundant", c.redundant),
    ] {
        m.status
            .get_or_create(&metrics::with(name, "type", t))
            .set(i64::from(v));
    }
    for i in &plan.instances {
        let l = metrics::with(name, "deployment", i.deployment.clone());
        m.deployment_status.get_or_create(&l).set(i.state.metric());
        m.deployment_saturation.get_or_create(&l).set(i.saturation);
    }
    for (n, _) in &plan.delete {
        let l = metrics::with(name, "deployment", n.clone());
        m.deployment_status.remove(&l);
        m.deployment_saturation.remove(&l);
    }
    let l = metrics::consumer(name);
    m.global_cpu_allocated
        .get_or_create(&l)
        .set(plan.allocated.0);
    m.global_memory_allocated
        .get_or_create(&l)
        .set(plan.allocated.1 / 1000);
    if let Some((cpu, memory)) = settings.global {
        m.global_cpu_limit.get_or_create(&l).set(cpu);
        m.global_memory_limit.get_or_create(&l).set(memory / 1000);
    }
}

pub(super) async fn write_status(
    ctx: &Context,
    consumer: &Consumer,
    old: &ConsumerStatus,
    new: &ConsumerStatus,
) -> Result<(), Error> {
    if old == new {
        return Ok(());
    }
    let consumers: Api<Consumer> = Api::namespaced(
        ctx.client.clone(),
        &consumer.namespace().unwrap_or_default(),
    );
    let started = Instant::now();
    ctx.metrics.api("patch");
    let patch = serde_json::json!({"status": new});
    consumers
        .patch_status(
            &consumer.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(api(format!(
            "writing the status of {}",
            consumer.name_any()
        )))?;
    ctx.metrics.status_update_duration.observe(
        &metrics::consumer(&consumer.name_any()),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}
