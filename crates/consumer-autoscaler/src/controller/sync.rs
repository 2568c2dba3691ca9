//! Reading a Consumer's metrics from its provider, when due.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::{Context, Failed, condition, set_condition};
use crate::crd::{Consumer, ConsumerStatus, InstanceState, Mode};
use crate::metrics;
use crate::predict::Metrics;
use crate::providers::kafka;
use crate::spec::Settings;

/// The metrics: read now if `minSyncPeriod` passed since the last sync (`fresh`), else the
/// status's last ones. A failed read keeps the last ones, counted and shown in the status.
pub(super) async fn sync_metrics(
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
            Failed::new("MetricsAvailable", "SyncFailed", "MetricsUnavailable")
                .report(ctx, consumer, status, old, stamp, why)
                .await;
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
