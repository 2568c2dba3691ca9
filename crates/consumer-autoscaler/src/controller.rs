//! The reconciler: watches Consumers and the Deployments they own, and for each Consumer
//! validates the template (server-side dry-run), syncs metrics when due, carries out the
//! [`plan`](crate::plan) and writes the status.
//!
//! Every write is conditional (replace carries the resourceVersion read, delete a
//! resourceVersion precondition, create fails if the name exists), so a paused ex-leader that
//! wakes up with a stale view cannot undo its successor's work: its writes conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::crd::{Condition, Consumer, ConsumerStatus};
use crate::metrics::{self, Metrics as Exported};
use crate::plan;
use crate::providers::prometheus;
use crate::spec::Settings;
use crate::{Config, instances};

mod sync;
mod writes;

use sync::sync_metrics;
use writes::{carry_out, export, write_status};

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

/// A failure shown as a condition that is `False`, and recorded as a Warning Event the first
/// time its message appears (not again on every retry of the same failure).
pub(crate) struct Failed {
    condition: &'static str,
    reason: &'static str,
    event: &'static str,
}

impl Failed {
    /// Condition `condition` False with `reason`; Events with reason `event`.
    pub(crate) fn new(condition: &'static str, reason: &'static str, event: &'static str) -> Self {
        Self {
            condition,
            reason,
            event,
        }
    }

    /// Sets the condition on `status` with `why`, and records the Event if `why` is new.
    pub(crate) async fn report(
        &self,
        ctx: &Context,
        consumer: &Consumer,
        status: &mut ConsumerStatus,
        old: &ConsumerStatus,
        stamp: &str,
        why: String,
    ) {
        let c = condition(
            "False",
            self.condition,
            self.reason,
            why.clone(),
            &old.conditions,
            stamp,
        );
        set_condition(status, c);
        if old.conditions.iter().all(|c| c.message != why) {
            ctx.warn(consumer, self.event, why).await;
        }
    }
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
            let failed = Failed::new("Ready", "InvalidSpec", "InvalidSpec");
            failed
                .report(ctx, consumer, &mut status, &old, &stamp, why)
                .await;
            write_status(ctx, consumer, &old, &status).await?;
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
    let mut probe = plan::instance(settings, 0, Utc::now());
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
            Failed::new("Ready", "InvalidTemplate", "InvalidTemplate")
                .report(ctx, consumer, status, old, stamp, why)
                .await;
            Ok(false)
        }
        Err(e) => Err(api("dry-running the Deployment template")(e)),
    }
}
