//! One job, phase by phase: note where the topics end (so a resume can tell what was
//! published), read and validate the payload, discover and name the experiments (first run
//! only), settle what a dead replica computed but did not record, then fetch, compute, store
//! and publish the rest, and complete the job. Each phase either goes on or stops the job with
//! a [`JobError`] that says how.

use std::collections::BTreeMap;

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Runner, datasource_failure, job_notification};
use crate::collect::{self, Discovered};
use crate::naming::{experiment_name, namespace_experiment_name};
use crate::payload::{BulkInput, Validated as Valid};
use crate::prometheus::Prometheus;
use crate::publish::Topic;
use crate::store::{ExperimentRow, JobRow, Move, status};

/// Why a job stops before its experiments are all published.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job store failed: the job stays claimed and is retried under the next lease.
    #[error("job store: {0}")]
    Store(#[from] sqlx::Error),
    /// The job fails for good with this notification (bad payload, datasource down, too many
    /// experiments).
    #[error("job failed: {0}")]
    Failed(Value),
    /// Nothing to do: the job completes at once with this notification.
    #[error("nothing to do: {0}")]
    Empty(Value),
    /// Stopped for now (cancelled, the lease lost, or the topics unreadable on a resume): the
    /// job's state is as far as it got, and whoever holds its lease next goes on.
    #[error("stopped for now")]
    Paused,
}

impl Runner {
    /// Runs `job` to its end, or as far as it can go under this lease.
    pub(super) async fn run_job(
        &self,
        mut job: JobRow,
        token: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        match self.drive(&mut job, token).await {
            Ok(()) => self.complete(&job, &json!({})).await,
            Err(JobError::Empty(note)) => self.complete(&job, &note).await,
            Err(JobError::Failed(note)) => self.fail(&job, note).await,
            Err(JobError::Paused) => Ok(()),
            Err(JobError::Store(e)) => Err(e),
        }
    }

    async fn drive(&self, job: &mut JobRow, token: &CancellationToken) -> Result<(), JobError> {
        self.note_topic_ends(job).await?;
        let (valid, ds) = self.validate(job)?;
        if job.total_experiments.is_none() {
            self.discover(job, &valid, ds).await?;
        }
        let experiments = self.store.experiments(job.job_id).await?;
        self.settle_pending(job, &experiments).await?;
        let at = valid.range.map_or_else(|| Utc::now().timestamp(), |r| r.1);
        self.fetch_and_record(job, &experiments, ds, at, token)
            .await
    }

    /// Records where the topics end before anything of the job is published, so a resume
    /// reads back only this job's messages.
    async fn note_topic_ends(&self, job: &mut JobRow) -> Result<(), JobError> {
        let (Some(publisher), None) = (&self.publisher, &job.topic_offsets) else {
            return Ok(());
        };
        let id = job.job_id;
        match publisher.end_offsets().await {
            Ok(offsets) => {
                self.store
                    .set_topic_offsets(id, &self.owner, &offsets)
                    .await?;
                job.topic_offsets = Some(offsets);
            }
            Err(error) => {
                tracing::warn!(%id, %error, "Could not note the topics' ends; a resume may publish twice.")
            }
        }
        Ok(())
    }

    /// The stored payload, validated, and its datasource.
    fn validate(&self, job: &JobRow) -> Result<(Valid, &Prometheus), JobError> {
        let input: BulkInput = serde_json::from_value(job.payload.clone()).map_err(|e| {
            JobError::Failed(job_notification(
                "ERROR",
                400,
                format!("unreadable payload: {e}"),
            ))
        })?;
        let valid = input
            .validate()
            .map_err(|message| JobError::Failed(job_notification("ERROR", 400, message)))?;
        let Some(ds) = self.datasources.get(&valid.datasource) else {
            let message = format!(
                "Datasource not registered with Kruize. ({})",
                valid.datasource
            );
            return Err(JobError::Failed(job_notification("ERROR", 400, message)));
        };
        Ok((valid, ds))
    }

    /// Discovers the job's experiments in the datasource, names them and stores them.
    async fn discover(&self, job: &JobRow, valid: &Valid, ds: &Prometheus) -> Result<(), JobError> {
        let discovery = collect::discover(ds, &valid.filters, valid.range)
            .await
            .map_err(|e| JobError::Failed(datasource_failure(&e)))?;
        let mut found = Vec::new();
        if valid.containers {
            found.extend(discovery.containers);
        }
        if valid.namespaces {
            found.extend(
                discovery
                    .namespaces
                    .iter()
                    .map(|ns| Discovered::namespace(ns)),
            );
        }
        if found.is_empty() {
            return Err(JobError::Empty(job_notification(
                "INFO",
                400,
                "Nothing to do.".into(),
            )));
        }
        if found.len() > self.limit {
            return Err(JobError::Failed(job_notification(
                "INFO",
                400,
                "The number of experiments exceeds the defined limit.".into(),
            )));
        }
        let named: BTreeMap<String, Discovered> = found
            .into_iter()
            .map(|d| {
                let name = if d.is_namespace() {
                    namespace_experiment_name(&valid.datasource, &d.namespace)
                } else {
                    experiment_name(
                        &self.name_format,
                        &valid.datasource,
                        &d,
                        &valid.filters.labels,
                    )
                };
                (name, d)
            })
            .collect();
        let named: Vec<(String, Discovered)> = named.into_iter().collect();
        self.store
            .add_experiments(job.job_id, &self.owner, &named)
            .await?;
        Ok(())
    }

    /// Experiments computed but not recorded as published: a replica died in between. What it
    /// did publish is read back from the topics and only recorded; the rest is published.
    async fn settle_pending(
        &self,
        job: &JobRow,
        experiments: &[ExperimentRow],
    ) -> Result<(), JobError> {
        let id = job.job_id;
        let pending: Vec<&ExperimentRow> = experiments
            .iter()
            .filter(|e| e.status == status::PROCESSED || e.status == status::FAILED)
            .collect();
        let Some(publisher) = &self.publisher else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(%id, pending = pending.len(), "Resuming: experiments computed but not recorded as published.");
        let sent = match &job.topic_offsets {
            Some(offsets) => match publisher
                .keys_since(
                    offsets,
                    &[Topic::Recommendations, Topic::Error],
                    &format!("{id}|"),
                )
                .await
            {
                Ok(keys) => keys,
                Err(error) => {
                    tracing::warn!(%id, %error, "Cannot read the job's messages back; retrying later.");
                    return Err(JobError::Paused);
                }
            },
            None => Default::default(),
        };
        let key = |e: &ExperimentRow| format!("{id}|{}", e.name);
        let (done, rest): (Vec<&ExperimentRow>, Vec<&ExperimentRow>) =
            pending.into_iter().partition(|e| sent.contains(&key(e)));
        for e in &done {
            tracing::info!(%id, experiment = e.name, "Published before the resume: recorded, not published again.");
        }
        let done: Vec<Move> = done
            .iter()
            .map(|e| Move::to(&e.name, status::PUBLISHED))
            .collect();
        let ours = (done.is_empty() || self.store.mark_experiments(id, &self.owner, &done).await?)
            && (rest.is_empty() || self.publish(job, &rest).await?);
        if ours { Ok(()) } else { Err(JobError::Paused) }
    }

    /// Fetches the unprocessed experiments' data and computes, stores and publishes them as it
    /// arrives. Container experiments are fetched per namespace, namespace experiments all at
    /// once; either way the data is keyed by what the experiment is about.
    async fn fetch_and_record(
        &self,
        job: &JobRow,
        experiments: &[ExperimentRow],
        ds: &Prometheus,
        at: i64,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let mut by_namespace: BTreeMap<&str, Vec<&ExperimentRow>> = BTreeMap::new();
        let mut namespaces: Vec<&ExperimentRow> = Vec::new();
        for e in experiments
            .iter()
            .filter(|e| e.status == status::UNPROCESSED)
        {
            if e.experiment_type == "namespace" {
                namespaces.push(e);
            } else {
                by_namespace.entry(&e.namespace).or_default().push(e);
            }
        }
        let containers = by_namespace.into_iter().map(|(ns, list)| {
            async move {
                let containers: Vec<&str> = list.iter().map(|e| e.container.as_str()).collect();
                let fetched = collect::fetch_namespace(ds, ns, &containers, Some(at)).await;
                (list, fetched)
            }
            .boxed()
        });
        let whole = (!namespaces.is_empty()).then(|| {
            async move {
                let names: Vec<&str> = namespaces.iter().map(|e| e.namespace.as_str()).collect();
                let fetched = collect::fetch_namespaces(ds, &names, Some(at)).await;
                (namespaces, fetched)
            }
            .boxed()
        });
        let fetches = futures::stream::iter(whole.into_iter().chain(containers))
            .buffer_unordered(self.parallel_namespaces.max(1));
        // Fetching goes on while what arrived is computed, stored and published: the two
        // halves run concurrently (polled by one join), joined by a channel of one: a
        // namespace's fetched data is about 16 MB (20 containers × 1,441 intervals), and each
        // one waiting there raised the peak RSS by that much.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let fetch_all = async move {
            futures::pin_mut!(fetches);
            while let Some(item) = fetches.next().await {
                if tx.send(item).await.is_err() {
                    break; // the recording half stopped
                }
            }
        };
        let record_all = async {
            while let Some((list, fetched)) = rx.recv().await {
                if token.is_cancelled() || !self.record(job, &list, &fetched).await? {
                    return Ok(false);
                }
            }
            Ok::<bool, sqlx::Error>(true)
        };
        let ((), finished) = tokio::join!(fetch_all, record_all);
        if finished? {
            Ok(())
        } else {
            Err(JobError::Paused)
        }
    }

    /// Completes the job with `note` (counted once, if this replica still holds it).
    async fn complete(&self, job: &JobRow, note: &Value) -> Result<(), sqlx::Error> {
        if self
            .store
            .finish(job.job_id, &self.owner, status::COMPLETED, note)
            .await?
        {
            self.metrics
                .jobs
                .get_or_create(&vec![("status".into(), "COMPLETED".into())])
                .inc();
            tracing::info!(id = %job.job_id, "Job completed.");
        }
        Ok(())
    }
}
