//! `--mode snapshot`: the reference monitor's messages, for its consumers. Every
//! `--poll-interval` seconds the leader lists each type in each namespace (or all) and
//! publishes `{timestamp, resource_type, namespace, resources: [...]}` with the same redaction
//! as the watch mode. A list too big for one message is split into parts (`part`, `parts`).
//! Idempotent producer, acks=all; no deduplication (a snapshot is a full list every time).

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use rivulet_common::Health;
use rivulet_common::kafka::ProducerSettings;
use rivulet_contracts::kubernetes::Snapshot;
use rivulet_kube_common::Leadership;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::{self, Metrics};
use crate::publish::{self, Topic};
use crate::redact::Redactor;
use crate::resources::Watched;

/// Publishes snapshots until `token` is cancelled.
#[allow(clippy::too_many_arguments)] // the run's wiring, called once
pub async fn run(
    config: &Config,
    client: &kube::Client,
    watched: &[Watched],
    redactor: &Redactor,
    health: &Health,
    metrics: &Metrics,
    leadership: watch::Receiver<Leadership>,
    token: &CancellationToken,
) -> crate::Result<()> {
    let mut settings = ProducerSettings::new("k8s-monitor-snapshot");
    settings.acks_all = true;
    let producer = config.kafka.producer(&settings)?;
    let mut topics: Vec<Topic> = watched
        .iter()
        .map(|w| Topic {
            name: w.topic.clone(),
            resource_type: w.resource_type.clone(),
            tombstones: false,
            max_bytes: config.max_message_bytes,
        })
        .collect();
    publish::prepare(
        &config.kafka,
        &mut topics,
        config.create_topics,
        config.partitions,
    )
    .await?;
    health.set_ready(true);
    let mut every = tokio::time::interval(Duration::from_secs(config.poll_interval.max(1)));
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        metrics.leader.set(i64::from(leadership.borrow().leader));
        if !leadership.borrow().leader {
            continue;
        }
        for (w, topic) in watched.iter().zip(&topics) {
            let spaces = if w.namespaced {
                scopes.clone()
            } else {
                vec![None]
            };
            for namespace in spaces {
                let resources = match list(
                    client,
                    w,
                    namespace.as_deref(),
                    config,
                    redactor,
                    metrics,
                )
                .await
                {
                    Ok(r) => r,
                    Err(error) => {
                        tracing::warn!(resource = %w.resource_type, ?namespace, %error, "Snapshot list failed.");
                        continue;
                    }
                };
                let parts = split(resources, topic.max_bytes);
                let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
                let timestamp = publish::now();
                for (i, part) in parts.into_iter().enumerate() {
                    let snapshot = Snapshot {
                        timestamp,
                        resource_type: w.resource.plural.clone(),
                        namespace: namespace.clone(),
                        resources: part,
                        part: (count > 1).then(|| u32::try_from(i + 1).unwrap_or(u32::MAX)),
                        parts: (count > 1).then_some(count),
                    };
                    let value = serde_json::to_vec(&snapshot).unwrap_or_default();
                    let key = namespace.clone().unwrap_or_default();
                    let record = FutureRecord::to(&topic.name).key(&key).payload(&value);
                    match producer.send(record, Duration::from_secs(30)).await {
                        Ok(_) => {
                            metrics
                                .published
                                .get_or_create(&metrics::resource_event(
                                    &w.resource_type,
                                    "SNAPSHOT",
                                ))
                                .inc();
                        }
                        Err((error, _)) => {
                            metrics
                                .publish_errors
                                .get_or_create(&vec![("reason", "snapshot".to_owned())])
                                .inc();
                            tracing::warn!(topic = %topic.name, %error, "Could not publish a snapshot.");
                        }
                    }
                }
            }
        }
    }
}

async fn list(
    client: &kube::Client,
    w: &Watched,
    namespace: Option<&str>,
    config: &Config,
    redactor: &Redactor,
    metrics: &Metrics,
) -> Result<Vec<Value>, kube::Error> {
    let api = w.api(client, namespace);
    let mut params = config.selectors().list(500);
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await?;
        for object in page.items {
            let (value, redacted) = w.clean(redactor, object);
            metrics.redacted.inc_by(redacted as u64);
            out.push(value);
        }
        match page.metadata.continue_ {
            Some(next) if !next.is_empty() => params = params.continue_token(&next),
            _ => return Ok(out),
        }
    }
}

/// Splits `resources` into parts whose JSON stays under `max_bytes` (an object bigger than
/// that alone gets a part of its own, which the broker may refuse; it is counted as an error
/// then).
pub fn split(resources: Vec<Value>, max_bytes: usize) -> Vec<Vec<Value>> {
    let budget = max_bytes.saturating_sub(1024);
    let mut parts = vec![Vec::new()];
    let mut size = 0;
    for value in resources {
        let len = value.to_string().len() + 1;
        if size + len > budget && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(part) = parts.last_mut() {
            part.push(value);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_too_big_for_one_message_is_split_in_order() {
        let objects: Vec<Value> = (0..10)
            .map(|i| json!({"i": i, "pad": "x".repeat(400)}))
            .collect();
        let parts = split(objects, 2048);
        assert!(parts.len() >= 4, "{}", parts.len());
        let flat: Vec<i64> = parts
            .iter()
            .flatten()
            .filter_map(|v| v["i"].as_i64())
            .collect();
        assert_eq!(flat, (0..10).collect::<Vec<_>>());
        assert_eq!(split(Vec::new(), 2048), vec![Vec::<Value>::new()]);
    }
}
