//! The Kafkas of one cluster as a watch keeps them, so the provisioning worker reads a local
//! copy instead of listing every instance's Kafka on each reconcile (a list of thousands, five
//! times a second, was the API server's largest load after the writes themselves).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

/// What `strimzi::progress` reads of a Kafka: its generation and status.
pub fn compact(o: &DynamicObject) -> Value {
    let status = o.data.get("status").cloned().unwrap_or(Value::Null);
    json!({"metadata": {"generation": o.metadata.generation}, "status": status})
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Value>,
    /// A full list has arrived.
    listed: bool,
    /// No watch error since the last event.
    healthy: bool,
}

/// A watched copy of the fleet manager's Kafkas on one cluster, by namespace.
#[derive(Clone, Default)]
pub struct KafkaCache {
    state: Arc<RwLock<State>>,
}

impl KafkaCache {
    /// Starts watching `api` (the fleet manager's Kafkas of every namespace, `selector`) for
    /// the rest of the process.
    pub fn spawn(api: Api<DynamicObject>, selector: String, cluster: String) -> KafkaCache {
        let cache = KafkaCache::default();
        let state = cache.state.clone();
        tokio::spawn(async move {
            let config = watcher::Config::default().labels(&selector);
            let stream = watcher(api, config).default_backoff();
            let mut stream = std::pin::pin!(stream);
            let mut staging = HashMap::new();
            while let Some(event) = stream.next().await {
                let mut s = state.write().unwrap_or_else(|e| e.into_inner());
                match event {
                    Ok(watcher::Event::Init) => staging = HashMap::new(),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some(ns) = o.metadata.namespace.clone() {
                            staging.insert(ns, compact(&o));
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        s.objects = std::mem::take(&mut staging);
                        s.listed = true;
                        s.healthy = true;
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Some(ns) = o.metadata.namespace.clone() {
                            s.objects.insert(ns, compact(&o));
                        }
                        // The watch resumed from where it was: in step again.
                        s.healthy = true;
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some(ns) = &o.metadata.namespace {
                            s.objects.remove(ns);
                        }
                        s.healthy = true;
                    }
                    Err(e) => {
                        if s.healthy {
                            tracing::warn!(%cluster, error = %e, "Watch of the Kafkas failed; listing them until it resumes.");
                        }
                        s.healthy = false;
                    }
                }
            }
        });
        cache
    }

    /// A copy of what the watch holds, if it is in step with the API server.
    pub fn snapshot(&self) -> Option<HashMap<String, Value>> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        (s.listed && s.healthy).then(|| s.objects.clone())
    }
}
