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
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    let topic = match &follow.url {
        Some(url) => initial_topic(&http, url, &follow.topic).await,
        None => follow.topic.clone(),
    };
    shared.set_source(&topic);
    tracing::info!(topic, "Serving summary topic.");
    let served = Running::start(&follow, &topic, Target::new(shared.clone()), &token);
    let Some(url) = follow.url.clone() else {
        return served.handle.await.unwrap_or(Ok(()));
    };
    let mut sources = Sources {
        follow: &follow,
        shared,
        token: &token,
        served,
        candidate: None,
    };
    let mut complained = false;
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            result = &mut sources.served.handle => return result.unwrap_or(Ok(())),
            () = tokio::time::sleep(follow.every) => {}
        }
        match ask(&http, &url).await {
            Ok(wanted) => {
                complained = false;
                sources.want(wanted).await?;
            }
            Err(error) => {
                if !complained {
                    tracing::warn!(url, %error, "Summary source not answering: serving what was served.");
                    complained = true;
                }
            }
        }
    }
    sources.stop().await
}

/// The active colour's topic at start: a few tries, then `default`.
async fn initial_topic(http: &reqwest::Client, url: &str, default: &str) -> String {
    for _ in 0..10 {
        match ask(http, url).await {
            Ok(topic) => return topic,
            Err(error) => tracing::warn!(url, %error, "Summary source not answering yet."),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    default.to_owned()
}

/// The served summary feed and, during a change of colour, the candidate read beside it.
struct Sources<'a> {
    follow: &'a Follow,
    shared: Arc<Shared>,
    token: &'a CancellationToken,
    served: Running,
    candidate: Option<Candidate>,
}

impl Sources<'_> {
    /// The active colour writes `wanted`: drop a candidate the colour went back from, read
    /// the new topic beside the served one, and switch once it dominates what is served.
    async fn want(&mut self, wanted: String) -> Result<(), Failure> {
        if wanted == self.served.topic {
            if let Some(c) = self.candidate.take() {
                tracing::info!(
                    topic = c.running.topic,
                    "The active colour went back: dropping the candidate."
                );
                c.running.stop().await?;
            }
            return Ok(());
        }
        if self
            .candidate
            .as_ref()
            .is_some_and(|c| c.running.topic != wanted)
            && let Some(c) = self.candidate.take()
        {
            c.running.stop().await?;
        }
        let (follow, token, served) = (self.follow, self.token, &self.served.topic);
        let c = self.candidate.get_or_insert_with(|| {
            tracing::info!(
                from = served,
                to = wanted,
                "The active colour changed: reading its topic."
            );
            let own = Arc::new(Shared::default());
            let target = Target::new(own.clone());
            Candidate {
                running: Running::start(follow, &wanted, target.clone(), token),
                shared: own,
                target,
            }
        });
        if c.running.handle.is_finished() {
            if let Some(c) = self.candidate.take() {
                c.running.handle.await.unwrap_or(Ok(()))?;
            }
            return Ok(());
        }
        if !c.shared.is_caught_up(FeedKind::Summary)
            || !self.shared.index().dominated_by(&c.shared.index())
        {
            return Ok(());
        }
        self.switch().await
    }

    /// Switches to the candidate: stops the old feed, then carries the candidate's rows over
    /// and points its feed at the served state, under the candidate's switch lock.
    async fn switch(&mut self) -> Result<(), Failure> {
        let Some(c) = self.candidate.take() else {
            return Ok(());
        };
        let old = std::mem::replace(&mut self.served, c.running);
        let from = old.topic.clone();
        old.stop().await?;
        c.target.redirect(self.shared.clone(), |from, to| {
            to.replace(|index| index.replace_summaries(&from.index()));
        });
        self.shared.set_source(&self.served.topic);
        self.follow.metrics.source_switches.inc();
        tracing::info!(from, to = self.served.topic, "Switched summary source.");
        Ok(())
    }

    async fn stop(self) -> Result<(), Failure> {
        if let Some(c) = self.candidate {
            c.running.stop().await?;
        }
        self.served.stop().await
    }
}

async fn ask(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let output: Output = response.json().await.map_err(|e| e.to_string())?;
    Ok(output.topic)
}
