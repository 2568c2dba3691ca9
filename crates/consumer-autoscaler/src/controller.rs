//! The reconciler: watches Consumers and the Deployments they own, and for each Consumer
//! validates the template (server-side dry-run), syncs metrics when due, carries out the
//! [`plan`](crate::plan) and writes the status.
//!
//! Every write is conditional (replace carries the resourceVersion read, delete a
//! resourceVersion precondition, create fails if the name exists), so a paused ex-leader that
//! wakes up with a stale view cannot undo its successor's work: its writes conflict.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::crd::{Condition, Consumer, ConsumerStatus, InstanceState, Mode};
use crate::metrics::{self, Metrics as Exported};
use crate::plan::{self, Plan};
use crate::predict::Metrics;
use crate::providers::{kafka, prometheus};
use crate::spec::Settings;
use crate::{Config, instances};

/// What a reconcile can fail with (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// Shared by all reconciles.
#[derive(Clone)]
pub struct Context {
    client: Client,
    config: Config,
    /// The metrics.
    pub metrics: Exported,
    recorder: Recorder,
    prometheus: prometheus::Provider,
    /// Template hashes that passed the dry-run, per Consumer uid.
    validated: Arc<Mutex<HashMap<String, String>>>,
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, config: Config, metrics: Exported) -> Self {
        let reporter = Reporter {
            controller: "consumer-autoscaler".into(),
            instance: config.lease.identity.clone(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            prometheus: prometheus::Provider::new(Duration::from_millis(
                config.prometheus_timeout_ms,
            )),
            client,
            config,
            metrics,
            validated: Arc::default(),
        }
    }

    async fn warn(&self, consumer: &Consumer, reason: &str, note: String) {
        self.metrics.api("create_event");
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self
            .recorder
            .publish(&event, &consumer.object_ref(&()))
            .await
        {
            tracing::warn!(%error, "Could not record a Kubernetes Event.");
        }
    }
}

/// Runs the controller until `token` is cancelled.
pub async fn run(ctx: Context, token: CancellationToken) {
    let (consumers, deployments): (Api<Consumer>, Api<Deployment>) = match &ctx.config.namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let ctx = Arc::new(ctx);
    Controller::new(consumers, watcher::Config::default())
        .owns(deployments, watcher::Config::default().labels("controller"))
        .graceful_shutdown_on(async move { token.cancelled().await })
        .run(reconcile, on_error, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn on_error(consumer: Arc<Consumer>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(consumer = %consumer.name_any(), %error, "Reconcile failed; retrying.");
    Action::requeue(Duration::from_secs(5))
}

fn condition(
    status: &str,
    type_: &str,
    reason: &str,
    message: String,
    previous: &[Condition],
    now: &str,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.to_owned(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
    }
}

fn set_condition(status: &mut ConsumerStatus, c: Condition) {
    status.conditions.retain(|x| x.type_ != c.type_);
    status.conditions.push(c);
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

async fn reconcile(consumer: Arc<Consumer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = consumer.name_any();
    let labels = metrics::consumer(&name);
    ctx.metrics.reconcile.get_or_create(&labels).inc();
    let started = Instant::now();
    let result = reconcile_one(&consumer, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(&labels, started.elapsed().as_secs_f64());
    if result.is_err() {
        ctx.metrics.reconcile_errors.get_or_create(&labels).inc();
    }
    result
}

async fn reconcile_one(consumer: &Consumer, ctx: &Context) -> Result<Action, Error> {
    let name = consumer.name_any();
    let namespace = consumer.namespace().unwrap_or_default();
    let now = Utc::now();
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let old = consumer.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let resync = Duration::from_secs(ctx.config.resync_seconds.max(1));
    let settings = match Settings::of(consumer) {
        Ok(s) => s,
        Err(why) => {
            ctx.metrics
                .invalid
                .get_or_create(&metrics::consumer(&name))
                .set(1);
            set_condition(
                &mut status,
                condition(
                    "False",
                    "Ready",
                    "InvalidSpec",
                    why.clone(),
                    &old.conditions,
                    &stamp,
                ),
            );
            write_status(ctx, consumer, &old, &status).await?;
            if old.conditions.iter().all(|c| c.message != why) {
                ctx.warn(consumer, "InvalidSpec", why).await;
            }
            return Ok(Action::requeue(resync));
        }
    };
    ctx.metrics
        .invalid
        .get_or_create(&metrics::consumer(&name))
        .set(0);
    for container in &settings.swapped {
        tracing::error!(consumer = %name, container, "Container policy has minAllowed > maxAllowed: swapped. Please fix the policy.");
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    // The template, checked by the API server itself before anything is written.
    if !validated(
        ctx,
        &settings,
        &deployments,
        consumer,
        &mut status,
        &old,
        &stamp,
    )
    .await?
    {
        write_status(ctx, consumer, &old, &status).await?;
        return Ok(Action::requeue(resync));
    }
    ctx.metrics.api("list");
    let selector = format!("controller={}", instances::label_value(&settings.consumer));
    let existing: Vec<Deployment> = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api(format!("listing the Deployments of {name}")))?
        .items
        .into_iter()
        .filter(|d| {
            d.owner_references().iter().all(|o| {
                o.kind != "Consumer" || o.uid == settings.uid || o.name == settings.consumer
            })
        })
        .collect();
    let (metrics, fresh) =
        sync_metrics(ctx, consumer, &settings, &mut status, &old, now, &stamp).await;
    let plan = plan::plan(&settings, &existing, &metrics, fresh, now);
    let failures = carry_out(ctx, &settings, &deployments, &plan, &existing).await;
    export(ctx, &settings, &plan);
    let c = &plan.counts;
    status.observed_generation = settings.generation.parse().ok();
    status.expected = Some(c.expected);
    status.running = Some(c.running);
    status.paused = Some(c.paused);
    status.lagging = Some(c.lagging);
    status.missing = Some(c.missing);
    status.outdated = Some(c.outdated);
    status.redundant = Some(c.redundant);
    let ready = match &failures {
        None => condition(
            "True",
            "Ready",
            "Reconciled",
            format!("{} instances", c.expected),
            &old.conditions,
            &stamp,
        ),
        Some(e) => condition(
            "False",
            "Ready",
            "WriteFailed",
            e.clone(),
            &old.conditions,
            &stamp,
        ),
    };
    set_condition(&mut status, ready);
    write_status(ctx, consumer, &old, &status).await?;
    if let Some(e) = failures {
        ctx.warn(consumer, "DeploymentWriteFailed", e).await;
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let every = settings
        .sizing
        .as_ref()
        .map_or(resync, |z| z.min_sync.clamp(Duration::from_secs(1), resync));
    Ok(Action::requeue(every))
}

/// Whether the template passed the server-side dry-run (cached per template hash).
async fn validated(
    ctx: &Context,
    settings: &Settings,
    deployments: &Api<Deployment>,
    consumer: &Consumer,
    status: &mut ConsumerStatus,
    old: &ConsumerStatus,
    stamp: &str,
) -> Result<bool, Error> {
    let uid = settings.uid.clone();
    let known = ctx
        .validated
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&uid)
        .cloned();
    if known.as_deref() == Some(settings.generation.as_str()) {
        return Ok(true);
    }
    let mut probe = plan::plan(settings, &[], &Metrics::default(), false, Utc::now())
        .create
        .swap_remove(0);
    probe.metadata.name = None;
    probe.metadata.generate_name = Some(format!("{}-validate-", settings.name));
    probe.metadata.owner_references = None;
    ctx.metrics.api("dry_run");
    match deployments
        .create(
            &PostParams {
                dry_run: true,
                field_manager: None,
            },
            &probe,
        )
        .await
    {
        Ok(_) => {
            ctx.validated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(uid, settings.generation.clone());
            set_condition(
                status,
                condition(
                    "True",
                    "TemplateValid",
                    "DryRunPassed",
                    "the API server accepts the Deployments".into(),
                    &old.conditions,
                    stamp,
                ),
            );
            Ok(true)
        }
        Err(kube::Error::Api(s))
            if (400..500).contains(&s.code) && s.code != 403 && s.code != 429 =>
        {
            let why = format!(
                "spec.deploymentTemplate: the API server refuses the Deployment: {}",
                s.message
            );
            set_condition(
                status,
                condition(
                    "False",
                    "TemplateValid",
                    "DryRunFailed",
                    why.clone(),
                    &old.conditions,
                    stamp,
                ),
            );
            set_condition(
                status,
                condition(
                    "False",
                    "Ready",
                    "InvalidTemplate",
                    why.clone(),
                    &old.conditions,
                    stamp,
                ),
            );
            if old.conditions.iter().all(|c| c.message != why) {
                ctx.warn(consumer, "InvalidTemplate", why).await;
            }
            Ok(false)
        }
        Err(e) => Err(api("dry-running the Deployment template")(e)),
    }
}

/// The metrics: read now if `minSyncPeriod` passed since the last sync (`fresh`), else the
/// status's last ones. A failed read keeps the last ones, counted and shown in the status.
async fn sync_metrics(
    ctx: &Context,
    consumer: &Consumer,
    settings: &Settings,
    status: &mut ConsumerStatus,
    old: &ConsumerStatus,
    now: DateTime<Utc>,
    stamp: &str,
) -> (Metrics, bool) {
    let last = last_metrics(old);
    let Some(sizing) = &settings.sizing else {
        if settings.mode == Mode::Vpa {
            set_condition(status, condition("False", "MetricsAvailable", "Unsupported", "autoscaler mode vpa is not implemented (nor is it in Konsumerator): Deployments are kept, not sized".into(), &old.conditions, stamp));
        }
        return (last, false);
    };
    let due = old
        .last_sync_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| {
            (now - t.with_timezone(&Utc)).to_std().unwrap_or_default() >= sizing.min_sync
        });
    if !due || settings.paused {
        return (last, false);
    }
    let name = consumer.name_any();
    let autoscaler = consumer.spec.autoscaler.clone().unwrap_or_default();
    let read = match settings.mode {
        Mode::Prometheus => match &autoscaler.prometheus {
            Some(p) => ctx
                .prometheus
                .sync(&name, p, &ctx.metrics)
                .await
                .map_err(|e| e.to_string()),
            None => Err("no prometheus settings".into()),
        },
        Mode::Kafka => match &autoscaler.kafka {
            Some(k) => read_kafka(ctx, consumer, k, old, status).await,
            None => Err("no kafka settings".into()),
        },
        Mode::Vpa | Mode::None => return (last, false),
    };
    match read {
        Ok(m) => {
            for (p, lag) in settings
                .assignments
                .iter()
                .flatten()
                .map(|p| (*p, m.lag(*p)))
            {
                ctx.metrics
                    .lag_observed
                    .get_or_create(&metrics::with(&name, "partition", p.to_string()))
                    .set(lag.as_secs() as i64);
            }
            status.last_sync_time = Some(stamp.to_owned());
            status.last_sync_state = Some(
                (0..settings.num_partitions)
                    .map(|p| {
                        let get = |x: &BTreeMap<i32, i64>| x.get(&p).copied().unwrap_or(0);
                        (
                            p.to_string(),
                            InstanceState {
                                production_rate: get(&m.production),
                                consumption_rate: get(&m.consumption),
                                messages_behind: get(&m.behind),
                            },
                        )
                    })
                    .collect(),
            );
            set_condition(
                status,
                condition(
                    "True",
                    "MetricsAvailable",
                    "Synced",
                    "metrics read".into(),
                    &old.conditions,
                    stamp,
                ),
            );
            (m, true)
        }
        Err(why) => {
            tracing::warn!(consumer = %name, error = %why, "Could not read metrics: the last decisions stay.");
            set_condition(
                status,
                condition(
                    "False",
                    "MetricsAvailable",
                    "SyncFailed",
                    why.clone(),
                    &old.conditions,
                    stamp,
                ),
            );
            if old.conditions.iter().all(|c| c.message != why) {
                ctx.warn(consumer, "MetricsUnavailable", why).await;
            }
            (last, false)
        }
    }
}

fn last_metrics(status: &ConsumerStatus) -> Metrics {
    let mut m = Metrics::default();
    for (p, s) in status.last_sync_state.iter().flatten() {
        let Ok(p) = p.parse::<i32>() else { continue };
        m.production.insert(p, s.production_rate);
        m.consumption.insert(p, s.consumption_rate);
        m.behind.insert(p, s.messages_behind);
    }
    m
}

async fn read_kafka(
    ctx: &Context,
    consumer: &Consumer,
    spec: &crate::crd::KafkaSpec,
    old: &ConsumerStatus,
    status: &mut ConsumerStatus,
) -> Result<Metrics, String> {
    let name = consumer.name_any();
    let labels = metrics::consumer(&name);
    ctx.metrics.kafka_syncs.get_or_create(&labels).inc();
    let mut secret_values = BTreeMap::new();
    if let Some(r) = &spec.secret_ref {
        let secrets: Api<Secret> = Api::namespaced(
            ctx.client.clone(),
            &consumer.namespace().unwrap_or_default(),
        );
        ctx.metrics.api("get");
        let secret = secrets
            .get(&r.name)
            .await
            .map_err(|e| format!("reading Secret {}: {e}", r.name))?;
        for (k, v) in secret.data.unwrap_or_default() {
            secret_values.insert(k, String::from_utf8_lossy(&v.0).into_owned());
        }
    }
    let args = kafka::args(spec, &secret_values);
    let (spec, timeout) = (
        spec.clone(),
        Duration::from_millis(ctx.config.kafka_timeout_ms),
    );
    let started = Instant::now();
    let reading = tokio::task::spawn_blocking(move || kafka::read(&args, &spec, timeout))
        .await
        .map_err(|e| format!("the Kafka read stopped: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()));
    ctx.metrics
        .kafka_sync_seconds
        .observe(&labels, started.elapsed().as_secs_f64());
    let reading = reading.inspect_err(|_| {
        ctx.metrics.kafka_sync_errors.get_or_create(&labels).inc();
    })?;
    let (m, offsets) = kafka::metrics(&reading, old.kafka_offsets.as_ref());
    for (p, behind) in &m.behind {
        let l = metrics::with(&name, "partition", p.to_string());
        ctx.metrics.messages_behind.get_or_create(&l).set(*behind);
        ctx.metrics
            .production_rate
            .get_or_create(&l)
            .set(m.production.get(p).copied().unwrap_or(0));
    }
    status.kafka_offsets = Some(offsets);
    Ok(m)
}

/// Carries `plan` out; the first failure, if any (the others are counted).
async fn carry_out(
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

fn export(ctx: &Context, settings: &Settings, plan: &Plan) {
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

async fn write_status(
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
