//! Which summary topic is served: a fixed one, or the one the active backend colour writes
//! (`--source-url`, e.g. `http://backend-active:8082/api/v1/output`, docs/rollouts.md).
//!
//! When the active colour's topic changes, a candidate feed reads the new topic into a state
//! of its own beside the served one. The service switches to it only once it has read the
//! topic to its end and every served total is at most the candidate's for the same key, so no
//! served total ever goes down. Until then the old topic keeps being served (its backend keeps
//! running through the rollout's overlap).

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use rivulet_common::KafkaArgs;
use rivulet_common::avro::Resolver;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::feed::{self, Failure, Feed};
use crate::metrics::Metrics;
use crate::state::{FeedKind, Shared, Target};

/// What the backend's `/api/v1/output` says (only the topic matters here).
#[derive(Debug, serde::Deserialize)]
struct Output {
    topic: String,
}

/// How to follow the summary source.
pub struct Follow {
    /// Kafka.
    pub kafka: KafkaArgs,
    /// The registry, for each feed's decoder.
    pub registry: SrSettings,
    /// The runtime the decoders call the registry on.
    pub runtime: Handle,
    /// The summary schema this UI reads.
    pub reader: Schema,
    /// The topic served when there is no source URL, or before it first answers.
    pub topic: String,
    /// Where the active colour says its topic.
    pub url: Option<String>,
    /// How often to ask.
    pub every: Duration,
    /// Metrics.
    pub metrics: Metrics,
}

/// A running summary feed.
struct Running {
    topic: String,
    token: CancellationToken,
    handle: JoinHandle<Result<(), Failure>>,
}

impl Running {
    fn start(
        follow: &Follow,
        topic: &str,
        target: Arc<Target>,
        parent: &CancellationToken,
    ) -> Running {
        let token = parent.child_token();
        let feed = Feed {
            kind: FeedKind::Summary,
            topic: topic.to_owned(),
            resolver: Resolver::new(
                follow.registry.clone(),
                follow.runtime.clone(),
                follow.reader.clone(),
            ),
        };
        let (kafka, metrics, feed_token) =
            (follow.kafka.clone(), follow.metrics.clone(), token.clone());
        let handle = tokio::task::spawn_blocking(move || {
            feed::run(&kafka, feed, target, metrics, feed_token)
        });
        Running {
            topic: topic.to_owned(),
            token,
            handle,
        }
    }

    async fn stop(self) -> Result<(), Failure> {
        self.token.cancel();
        self.handle.await.unwrap_or(Ok(()))
    }
}

/// A candidate source being read beside the served one.
struct Candidate {
    running: Running,
    shared: Arc<Shared>,
    target: Arc<Target>,
}

/// Serves the summary source into `shared` until `token` is cancelled or a feed fails.
pub async fn follow(
    follow: Follow,
    shared: Arc<Shared>,
    token: CancellationToken,
) -> Result<(), Failure> {
    // A new connection per question: a kept-alive one would stay with the pod it reached
    // first, and never see the Service point at the other colour.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    let mut topic = follow.topic.clone();
    if let Some(url) = &follow.url {
        // The active colour at start: a few tries, then the configured default.
        for _ in 0..10 {
            match ask(&http, url).await {
                Ok(t) => {
                    topic = t;
                    break;
                }
                Err(error) => tracing::warn!(url, %error, "Summary source not answering yet."),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    shared.set_source(&topic);
    tracing::info!(topic, "Serving summary topic.");
    let mut served = Running::start(&follow, &topic, Target::new(shared.clone()), &token);
    let Some(url) = follow.url.clone() else {
        return served.handle.await.unwrap_or(Ok(()));
    };
    let mut candidate: Option<Candidate> = None;
    let mut complained = false;
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            result = &mut served.handle => return result.unwrap_or(Ok(())),
            () = tokio::time::sleep(follow.every) => {}
        }
        let wanted = match ask(&http, &url).await {
            Ok(t) => {
                complained = false;
                t
            }
            Err(error) => {
                if !complained {
                    tracing::warn!(url, %error, "Summary source not answering: serving what was served.");
                    complained = true;
                }
                continue;
            }
        };
        if wanted == served.topic {
            if let Some(c) = candidate.take() {
                tracing::info!(
                    topic = c.running.topic,
                    "The active colour went back: dropping the candidate."
                );
                c.running.stop().await?;
            }
            continue;
        }
        if candidate
            .as_ref()
            .is_some_and(|c| c.running.topic != wanted)
            && let Some(c) = candidate.take()
        {
            c.running.stop().await?;
        }
        let c = candidate.get_or_insert_with(|| {
            tracing::info!(
                from = served.topic,
                to = wanted,
                "The active colour changed: reading its topic."
            );
            let own = Arc::new(Shared::default());
            let target = Target::new(own.clone());
            Candidate {
                running: Running::start(&follow, &wanted, target.clone(), &token),
                shared: own,
                target,
            }
        });
        if c.running.handle.is_finished() {
            let c = candidate.take().expect("a candidate");
            c.running.handle.await.unwrap_or(Ok(()))?;
            continue;
        }
        if !c.shared.is_caught_up(FeedKind::Summary)
            || !shared.index().dominated_by(&c.shared.index())
        {
            continue;
        }
        // Switch: stop the old feed, then carry the candidate's rows over and point its
        // feed at the served state, under the candidate's switch lock.
        let c = candidate.take().expect("a candidate");
        let old = std::mem::replace(&mut served, c.running);
        let from = old.topic.clone();
        old.stop().await?;
        c.target.redirect(shared.clone(), |from, to| {
            to.replace(|index| index.replace_summaries(&from.index()));
        });
        shared.set_source(&served.topic);
        follow.metrics.source_switches.inc();
        tracing::info!(from, to = served.topic, "Switched summary source.");
    }
    if let Some(c) = candidate {
        c.running.stop().await?;
    }
    served.stop().await
}

async fn ask(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let output: Output = response.json().await.map_err(|e| e.to_string())?;
    Ok(output.topic)
}
