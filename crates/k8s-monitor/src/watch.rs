//! List + watch of one resource type in one namespace (or all of them), feeding the books.
//!
//! A list (paged, 500 per page) gives every object and a resourceVersion; the watch resumes
//! from it with bookmarks on, so a watch that ends (server timeout, dropped connection) resumes
//! from the last resourceVersion seen without a list. A 410 Gone (that version was compacted
//! away) means a re-list: objects the topic holds that the list no longer has were deleted
//! unseen, and are published as deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, WatchEvent};
use rivulet_contracts::kubernetes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};
use crate::redact::Redactor;
use crate::resources::{Selectors, Watched};
use crate::state::{Body, Effect, Item, Version};
use crate::store::Store;

/// How long the API server keeps one watch request open (it closes it then; we resume).
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Objects per list page.
const PAGE: u32 = 500;

/// One list + watch loop.
pub struct Watch {
    /// The client.
    pub client: kube::Client,
    /// The type.
    pub watched: Arc<Watched>,
    /// The namespace (`None`: all, or a cluster-scoped type).
    pub namespace: Option<String>,
    /// `--label-selector`, `--field-selector`.
    pub selectors: Selectors,
    /// The books.
    pub store: Arc<Store>,
    /// Redaction.
    pub redactor: Arc<Redactor>,
    /// Metrics.
    pub metrics: Metrics,
    /// `--max-event-age`.
    pub max_event_age: Duration,
}

enum Ended {
    /// The server closed the watch (timeout): resume from this version.
    Closed(String),
    /// 410 Gone: list again.
    Gone,
    /// A transport or API error: resume from this version after a pause.
    Failed(String, String),
    /// Shutdown or end of the leader's term.
    Cancelled,
}

impl Watch {
    fn api(&self) -> Api<DynamicObject> {
        self.watched.api(&self.client, self.namespace.as_deref())
    }

    fn in_scope(&self, key: &str) -> bool {
        match (&self.namespace, self.watched.namespaced) {
            (Some(ns), true) => key
                .strip_prefix(ns.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
            _ => true,
        }
    }

    /// Lists, then watches, until `token` is cancelled; `listed` is called once, after the
    /// first complete list.
    pub async fn run(self, token: CancellationToken, listed: impl FnOnce()) {
        let resource = self.watched.resource_type.clone();
        let mut listed = Some(listed);
        let mut version: Option<String> = None;
        let mut pause = Duration::from_millis(500);
        loop {
            if token.is_cancelled() {
                return;
            }
            let from = match version.take() {
                Some(v) => v,
                None => match self.relist(&token).await {
                    Ok(Some(v)) => {
                        if let Some(done) = listed.take() {
                            done();
                        }
                        pause = Duration::from_millis(500);
                        v
                    }
                    Ok(None) => return,
                    Err(error) => {
                        self.report(&error, "list");
                        if !crate::pause(&token, pause).await {
                            return;
                        }
                        pause = (pause * 2).min(Duration::from_secs(30));
                        continue;
                    }
                },
            };
            match self.watch(&from, &token).await {
                Ended::Closed(v) => version = Some(v),
                Ended::Gone => {
                    self.metrics
                        .gone
                        .get_or_create(&metrics::resource(&resource))
                        .inc();
                    tracing::info!(%resource, namespace = ?self.namespace, "410 Gone: listing again.");
                }
                Ended::Failed(v, error) => {
                    tracing::warn!(%resource, namespace = ?self.namespace, %error, "Watch failed: resuming.");
                    version = Some(v);
                    if !crate::pause(&token, pause).await {
                        return;
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
                Ended::Cancelled => return,
            }
            self.metrics
                .watch_restarts
                .get_or_create(&metrics::resource(&resource))
                .inc();
        }
    }

    fn report(&self, error: &kube::Error, what: &str) {
        let resource = &self.watched.resource_type;
        if rivulet_kube_common::status_code(error) == Some(403) {
            self.metrics
                .forbidden
                .get_or_create(&metrics::resource(resource))
                .inc();
            tracing::error!(
                %resource, namespace = ?self.namespace, %error,
                "Forbidden to {what} {resource}: grant list and watch on it to the monitor's account."
            );
        } else {
            tracing::warn!(%resource, namespace = ?self.namespace, %error, "Could not {what}: retrying.");
        }
    }

    /// A full list; returns its resourceVersion (`None` when cancelled).
    async fn relist(&self, token: &CancellationToken) -> Result<Option<String>, kube::Error> {
        let api = self.api();
        let mut params = self.selectors.list(PAGE);
        let mut listed = HashSet::new();
        let version = loop {
            let page = tokio::select! {
                () = token.cancelled() => return Ok(None),
                page = api.list(&params) => page?,
            };
            for object in page.items {
                if !self.wait_for_room(token).await {
                    return Ok(None);
                }
                if let Some(key) = self.observe(object, Kind::Listed) {
                    listed.insert(key);
                }
            }
            match page.metadata.continue_ {
                Some(next) if !next.is_empty() => params = params.continue_token(&next),
                _ => break page.metadata.resource_version.unwrap_or_default(),
            }
        };
        let resource = &self.watched.resource;
        let events = self.watched.events;
        let seen = Instant::now();
        let coalesce = self.store.degraded();
        let deleted = self.store.with(|books| {
            let mut deleted = 0;
            let topic = &self.watched.topic;
            let gone = match books.by_topic.get_mut(topic) {
                Some(book) => book.missing_from(&listed, |k| self.in_scope(k)),
                None => return 0,
            };
            for (key, version) in gone {
                let seq = books.next_seq();
                let Some(book) = books.by_topic.get_mut(topic) else { break };
                if events {
                    // An Event that expired while unwatched is not news: forget it.
                    book.forget(&key);
                    continue;
                }
                let (namespace, name) = split_key(&key, self.watched.namespaced);
                let identity = json!({
                    "apiVersion": resource.api_version, "kind": resource.kind,
                    "metadata": {"name": name, "namespace": namespace, "uid": version.uid, "resourceVersion": version.resource_version},
                });
                let item = Item { seq, namespace: namespace.map(str::to_owned), version, body: Body::Gone(identity), seen };
                if book.delete(&key, item, coalesce) == Effect::Queued {
                    deleted += 1;
                }
            }
            deleted
        });
        let labels = metrics::resource_event(&self.watched.resource_type, "DELETED");
        self.metrics.seen.get_or_create(&labels).inc_by(deleted);
        self.metrics
            .lists
            .get_or_create(&metrics::resource(&self.watched.resource_type))
            .inc();
        Ok(Some(version))
    }

    async fn watch(&self, from: &str, token: &CancellationToken) -> Ended {
        let params = self.selectors.watch(WATCH_TIMEOUT_SECS);
        let api = self.api();
        let stream = tokio::select! {
            () = token.cancelled() => return Ended::Cancelled,
            stream = api.watch(&params, from) => stream,
        };
        let mut stream = match stream {
            Ok(stream) => stream.boxed(),
            Err(e) if rivulet_kube_common::status_code(&e) == Some(410) => return Ended::Gone,
            Err(e) => {
                self.report(&e, "watch");
                return Ended::Failed(from.to_owned(), e.to_string());
            }
        };
        let mut version = from.to_owned();
        loop {
            let next = tokio::select! {
                () = token.cancelled() => return Ended::Cancelled,
                next = stream.next() => next,
            };
            let (object, kind) = match next {
                None => return Ended::Closed(version),
                Some(Ok(WatchEvent::Added(o))) => (o, Kind::Added),
                Some(Ok(WatchEvent::Modified(o))) => (o, Kind::Modified),
                Some(Ok(WatchEvent::Deleted(o))) => (o, Kind::Deleted),
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                Some(Ok(WatchEvent::Error(status))) if status.code == 410 => return Ended::Gone,
                Some(Ok(WatchEvent::Error(status))) => {
                    return Ended::Failed(version, status.to_string());
                }
                Some(Err(e)) => return Ended::Failed(version, e.to_string()),
            };
            if !self.wait_for_room(token).await {
                return Ended::Cancelled;
            }
            if let Some(v) = &object.metadata.resource_version {
                version.clone_from(v);
            }
            self.observe(object, kind);
        }
    }

    async fn wait_for_room(&self, token: &CancellationToken) -> bool {
        tokio::select! {
            () = token.cancelled() => false,
            () = self.store.room() => true,
        }
    }

    /// Queues what `object` says; returns its key.
    fn observe(&self, object: DynamicObject, kind: Kind) -> Option<String> {
        let name = object.metadata.name.clone()?;
        let namespace = object.metadata.namespace.clone();
        let key = kubernetes::key(namespace.as_deref(), &name);
        let version = Version {
            uid: object.metadata.uid.clone().unwrap_or_default(),
            resource_version: object.metadata.resource_version.clone().unwrap_or_default(),
        };
        if self.watched.events && kind == Kind::Listed && self.too_old(&object) {
            return Some(key);
        }
        let (value, redacted) = self.watched.clean(&self.redactor, object);
        self.metrics.redacted.inc_by(redacted as u64);
        let seen = Instant::now();
        let coalesce = self.store.degraded();
        let (effect, label) = self.store.with(|books| {
            let seq = books.next_seq();
            let Some(book) = books.by_topic.get_mut(&self.watched.topic) else {
                return (Effect::Unchanged, "ADDED");
            };
            let known = kind != Kind::Deleted;
            let item = Item {
                seq,
                namespace: namespace.clone(),
                version,
                body: if known {
                    Body::Object(value)
                } else {
                    Body::Gone(value)
                },
                seen,
            };
            match kind {
                Kind::Deleted => (book.delete(&key, item, coalesce), "DELETED"),
                Kind::Modified => (book.upsert(&key, item, coalesce), "MODIFIED"),
                Kind::Added | Kind::Listed => (book.upsert(&key, item, coalesce), "ADDED"),
            }
        });
        let resource_type = &self.watched.resource_type;
        self.metrics
            .seen
            .get_or_create(&metrics::resource_event(resource_type, label))
            .inc();
        if effect == Effect::Unchanged {
            self.metrics
                .unchanged
                .get_or_create(&metrics::resource(resource_type))
                .inc();
        }
        tracing::trace!(resource = %resource_type, %key, event = label, ?effect, "Observed.");
        Some(key)
    }

    /// Whether a listed Event is older than `--max-event-age` (its latest timestamp).
    fn too_old(&self, object: &DynamicObject) -> bool {
        let data = &object.data;
        let stamps = [
            data.pointer("/series/lastObservedTime"),
            data.get("lastTimestamp"),
            data.get("eventTime"),
            data.get("firstTimestamp"),
        ];
        let latest = stamps
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .chain(object.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .max();
        let Some(latest) = latest else { return false };
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(latest);
        age.unsigned_abs() > self.max_event_age && age.is_positive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Listed,
    Added,
    Modified,
    Deleted,
}

/// `<namespace>/<name>` (or `<name>`) back into its parts.
fn split_key(key: &str, namespaced: bool) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) if namespaced => (Some(ns), name),
        _ => (None, key),
    }
}
