//! The watch mode: a replica waits for the Lease, and each term as leader goes
//!
//! 1. fence: a transactional producer with the deployment's id (`init_transactions` bumps its
//!    epoch, so an earlier leader's producer can no longer commit);
//! 2. read back: what every topic holds, key → uid and resourceVersion;
//! 3. list and watch every type, queueing what differs from the topics;
//! 4. publish: batches of waiting states, one transaction each.
//!
//! A failed transaction puts its states back and goes through 1 and 2 again (a commit that
//! timed out may have committed: the read-back tells). A fenced producer or a lost Lease ends
//! the term: watches stop and the books are dropped. `/readyz` is 200 for a follower (a
//! healthy standby) and for a leader once its first lists are done; 503 while a leader
//! catches up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::producer::BaseProducer;
use rivulet_common::Health;
use rivulet_kube_common::Leadership;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::{self, Metrics};
use crate::publish::{self, Envelope, Failure, Topic};
use crate::redact::Redactor;
use crate::resources::Watched;
use crate::state::Outgoing;
use crate::store::Store;
use crate::watch::Watch;

/// How a term ended.
enum TermEnd {
    /// Shutdown.
    Stop,
    /// The Lease went to another replica.
    Lost,
    /// Our producer was fenced by a newer one with the same transactional id.
    Fenced,
}

/// The watch mode's state.
pub struct Monitor {
    config: Config,
    client: kube::Client,
    watched: Vec<Arc<Watched>>,
    redactor: Arc<Redactor>,
    health: Health,
    metrics: Metrics,
    store: Arc<Store>,
    topics: Vec<Topic>,
    identity: String,
}

impl Monitor {
    /// A monitor of `watched`.
    pub fn new(
        identity: String,
        config: Config,
        client: kube::Client,
        watched: Vec<Watched>,
        redactor: Redactor,
        health: Health,
        metrics: Metrics,
    ) -> Self {
        let topics: Vec<Topic> = watched
            .iter()
            .map(|w| Topic {
                name: w.topic.clone(),
                resource_type: w.resource_type.clone(),
                tombstones: !w.events,
                max_bytes: config.max_message_bytes,
            })
            .collect();
        let store = Arc::new(Store::new(
            topics.iter().map(|t| (t.name.clone(), t.tombstones)),
            config.max_pending,
            metrics.clone(),
        ));
        Self {
            config,
            client,
            watched: watched.into_iter().map(Arc::new).collect(),
            redactor: Arc::new(redactor),
            health,
            metrics,
            store,
            topics,
            identity,
        }
    }

    /// Leads whenever this replica holds the Lease, until `token` is cancelled.
    pub async fn run(
        mut self,
        mut leadership: watch::Receiver<Leadership>,
        token: CancellationToken,
    ) -> crate::Result<()> {
        loop {
            let ready = tokio::select! {
                () = token.cancelled() => return Ok(()),
                r = publish::prepare(&self.config.kafka, &mut self.topics, self.config.create_topics, self.config.partitions) => r,
            };
            match ready {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, "Could not prepare the topics: retrying.");
                    if !crate::pause(&token, Duration::from_secs(2)).await {
                        return Ok(());
                    }
                }
            }
        }
        self.health.set_ready(true);
        loop {
            let term = tokio::select! {
                () = token.cancelled() => return Ok(()),
                l = leadership.wait_for(|l| l.leader) => match l {
                    Ok(l) => l.term,
                    Err(_) => return Ok(()),
                },
            };
            self.health.set_ready(false);
            self.metrics.leader.set(1);
            let term_token = token.child_token();
            let end = self.term(&term_token, &mut leadership).await;
            term_token.cancel();
            self.metrics.leader.set(0);
            self.store.with(|books| {
                books
                    .by_topic
                    .values_mut()
                    .for_each(crate::state::Book::clear)
            });
            self.health.set_ready(true);
            match end {
                TermEnd::Stop => return Ok(()),
                TermEnd::Lost => tracing::warn!(term, "No longer the leader: stopped publishing."),
                TermEnd::Fenced => {
                    tracing::error!(
                        transactional_id = %self.config.transactional_id(),
                        "Fenced by a newer producer with our transactional id: another replica leads now (this one was paused?), \
                         or another deployment uses the same --transactional-id. Waiting for the Lease to tell."
                    );
                    let wait = Duration::from_millis(self.config.lease.lease_duration_ms * 2);
                    let _ = tokio::time::timeout(
                        wait,
                        leadership.wait_for(|l| !l.leader || l.term != term),
                    )
                    .await;
                }
            }
        }
    }

    async fn term(
        &self,
        token: &CancellationToken,
        leadership: &mut watch::Receiver<Leadership>,
    ) -> TermEnd {
        let mut producer = match self.start(token, leadership).await {
            Ok(p) => p,
            Err(end) => return end,
        };
        let mut watches = self.spawn_watches(token);
        let envelope_cluster = self.config.cluster_name.clone();
        let end = loop {
            tokio::select! {
                () = token.cancelled() => break TermEnd::Stop,
                changed = leadership.changed() => {
                    if changed.is_err() {
                        break TermEnd::Lost;
                    }
                    if !leadership.borrow().leader && self.config.heeds_lease_loss() {
                        break TermEnd::Lost;
                    }
                }
                () = self.store.work() => {
                    let linger = Duration::from_millis(self.config.linger_ms);
                    if !linger.is_zero() && !crate::pause(token, linger).await {
                        break TermEnd::Stop;
                    }
                }
                // A state put back by a failed transaction raises no new wake-up.
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            match self.drain(&producer, &envelope_cluster).await {
                Ok(()) => {}
                Err(Failure::Fenced(error)) => {
                    self.metrics
                        .publish_errors
                        .get_or_create(&vec![("reason", "fenced".to_owned())])
                        .inc();
                    tracing::warn!(%error, "Transaction fenced.");
                    break TermEnd::Fenced;
                }
                Err(error) => {
                    self.metrics
                        .publish_errors
                        .get_or_create(&vec![("reason", error.label().to_owned())])
                        .inc();
                    tracing::warn!(%error, "Transaction failed: fencing again and reading the topics back.");
                    drop(producer);
                    producer = match self.start(token, leadership).await {
                        Ok(p) => p,
                        Err(end) => break end,
                    };
                }
            }
        };
        token.cancel();
        while watches.join_next().await.is_some() {}
        end
    }

    /// Fences earlier producers and reads the topics back (retrying while we lead).
    async fn start(
        &self,
        token: &CancellationToken,
        leadership: &watch::Receiver<Leadership>,
    ) -> Result<Arc<BaseProducer>, TermEnd> {
        let mut wait = Duration::from_millis(500);
        loop {
            if token.is_cancelled() {
                return Err(TermEnd::Stop);
            }
            if !leadership.borrow().leader {
                return Err(TermEnd::Lost);
            }
            let kafka = self.config.kafka.clone();
            let id = self.config.transactional_id();
            let topics = self.topics.clone();
            let max = self
                .topics
                .iter()
                .map(|t| t.max_bytes)
                .max()
                .unwrap_or(self.config.max_message_bytes);
            let attempt = tokio::task::spawn_blocking(move || {
                let producer = publish::fence(&kafka, &id, max)?;
                let mut held = Vec::new();
                for topic in &topics {
                    let back =
                        publish::read_back(&kafka, &topic.name).map_err(Failure::ReadBack)?;
                    held.push((topic.name.clone(), back));
                }
                Ok::<_, Failure>((producer, held))
            })
            .await;
            match attempt {
                Ok(Ok((producer, held))) => {
                    let keys: usize = held.iter().map(|(_, h)| h.len()).sum();
                    self.store.with(|books| {
                        for (topic, back) in held {
                            if let Some(book) = books.by_topic.get_mut(&topic) {
                                book.reset(back);
                            }
                        }
                    });
                    tracing::info!(keys, "Fenced earlier leaders and read the topics back.");
                    return Ok(Arc::new(producer));
                }
                Ok(Err(Failure::Fenced(error))) => {
                    tracing::warn!(%error, "Fenced while starting.");
                    return Err(TermEnd::Fenced);
                }
                Ok(Err(error)) => {
                    self.metrics
                        .publish_errors
                        .get_or_create(&vec![("reason", "start".to_owned())])
                        .inc();
                    tracing::warn!(%error, "Could not start publishing: retrying.");
                }
                Err(join) => tracing::error!(error = %join, "The start-up task failed."),
            }
            if !crate::pause(token, wait).await {
                return Err(TermEnd::Stop);
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    fn spawn_watches(&self, token: &CancellationToken) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let scopes: Vec<Option<String>> = if self.config.namespaces.is_empty() {
            vec![None]
        } else {
            self.config.namespaces.iter().cloned().map(Some).collect()
        };
        let mut count = 0;
        let mut plans = Vec::new();
        for watched in &self.watched {
            let spaces: Vec<Option<String>> = if watched.namespaced {
                scopes.clone()
            } else {
                vec![None]
            };
            for namespace in spaces {
                count += 1;
                plans.push((watched.clone(), namespace));
            }
        }
        let left = Arc::new(AtomicUsize::new(count));
        for (watched, namespace) in plans {
            let watch = Watch {
                client: self.client.clone(),
                watched,
                namespace,
                selectors: self.config.selectors(),
                store: self.store.clone(),
                redactor: self.redactor.clone(),
                metrics: self.metrics.clone(),
                max_event_age: self.config.max_event_age(),
            };
            let left = left.clone();
            let health = self.health.clone();
            let token = token.clone();
            set.spawn(async move {
                watch
                    .run(token, move || {
                        if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            tracing::info!("Every watched type listed: ready.");
                            health.set_ready(true);
                        }
                    })
                    .await;
            });
        }
        set
    }

    /// Publishes everything waiting, a transaction per batch.
    async fn drain(&self, producer: &Arc<BaseProducer>, cluster: &str) -> Result<(), Failure> {
        loop {
            let budget = self.config.batch_size.max(1);
            let batch: Vec<(usize, Vec<Outgoing>)> = self.store.with(|books| {
                let mut left = budget;
                let mut batch = Vec::new();
                for (i, topic) in self.topics.iter().enumerate() {
                    if left == 0 {
                        break;
                    }
                    if let Some(book) = books.by_topic.get_mut(&topic.name) {
                        let items = book.take(left);
                        left -= items.len();
                        if !items.is_empty() {
                            batch.push((i, items));
                        }
                    }
                }
                batch
            });
            if batch.is_empty() {
                return Ok(());
            }
            // A full batch: more may wait, go on; otherwise what arrives next waits for the
            // next wake-up and its linger, so that transactions are not one per change.
            let full = batch.iter().map(|(_, items)| items.len()).sum::<usize>() >= budget;
            let topics = self.topics.clone();
            let cluster = cluster.to_owned();
            let publisher = self.identity.clone();
            let producer = producer.clone();
            let began = std::time::Instant::now();
            let (batch, outcome) = tokio::task::spawn_blocking(move || {
                let refs: Vec<(&Topic, Vec<Outgoing>)> = batch
                    .iter()
                    .map(|(i, items)| (&topics[*i], items.clone()))
                    .collect();
                let outcome = publish::send(
                    &producer,
                    &Envelope {
                        cluster: &cluster,
                        publisher: &publisher,
                    },
                    &refs,
                );
                (batch, outcome)
            })
            .await
            .map_err(|_| Failure::Other(rdkafka::error::KafkaError::Canceled))?;
            match outcome {
                Ok(truncated) => {
                    self.metrics
                        .transaction_seconds
                        .observe(began.elapsed().as_secs_f64());
                    self.store.with(|books| {
                        for (i, items) in &batch {
                            if let Some(book) = books.by_topic.get_mut(&self.topics[*i].name) {
                                book.committed(items);
                            }
                        }
                    });
                    self.store.set_degraded(false);
                    self.metrics.transactions.inc();
                    for (i, items) in &batch {
                        let resource = &self.topics[*i].resource_type;
                        for out in items {
                            self.metrics
                                .published
                                .get_or_create(&metrics::resource_event(
                                    resource,
                                    out.event_type.as_str(),
                                ))
                                .inc();
                            self.metrics
                                .change_to_publish
                                .observe(out.item.seen.elapsed().as_secs_f64());
                        }
                        if truncated > 0 {
                            self.metrics
                                .truncated
                                .get_or_create(&metrics::resource(resource))
                                .inc_by(truncated as u64);
                        }
                    }
                    if !full {
                        return Ok(());
                    }
                }
                Err(failure) => {
                    self.store.set_degraded(true);
                    self.store.with(|books| {
                        for (i, items) in batch {
                            if let Some(book) = books.by_topic.get_mut(&self.topics[i].name) {
                                book.failed(items);
                            }
                        }
                    });
                    return Err(failure);
                }
            }
        }
    }
}
