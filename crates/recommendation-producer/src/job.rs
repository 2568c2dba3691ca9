//! The job runner: claims jobs under a lease, discovers their containers, computes and
//! publishes each experiment's recommendations, and finishes the job. A job another replica
//! started and abandoned resumes where it stopped: experiments already processed are not
//! computed again and those already published are not published again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::collect;
use crate::document;
use crate::engine::{self, Settings, data::Series};
use crate::metrics::Metrics;
use crate::payload::BulkInput;
use crate::prometheus::{Prometheus, QueryError};
use crate::publish::{Publisher, Topic};
use crate::store::{ExperimentRow, JobRow, Move, Store, status};

mod run;

pub use run::JobError;

/// Most of a webhook's reply kept (in the job's record and `GET /bulk?include=webhook`).
pub const WEBHOOK_REPLY_LIMIT: usize = 4096;

/// The HTTP client webhooks are called with: no redirects (a 3xx is a failed call, never a
/// request to wherever it points), a connect timeout and a total timeout.
pub fn webhook_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// At most [`WEBHOOK_REPLY_LIMIT`] bytes of a reply's body, as text; the rest is not read.
async fn reply_prefix(mut reply: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < WEBHOOK_REPLY_LIMIT {
        match reply.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let truncated = kept.len() > WEBHOOK_REPLY_LIMIT;
    kept.truncate(WEBHOOK_REPLY_LIMIT);
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if truncated {
        text.push_str("… (truncated)");
    }
    text
}

/// Whether `url`'s host is in `allow` (`host` for any port, `host:port` for one).
pub fn webhook_allowed(allow: &[String], url: &str) -> Result<(), String> {
    if allow.is_empty() {
        return Err(
            "webhooks are disabled on this service (its --webhook-allow lists no host)".into(),
        );
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook url: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port_or_known_default().unwrap_or(0);
    let with_port = format!("{host}:{port}");
    if allow.iter().any(|a| a == host || *a == with_port) {
        Ok(())
    } else {
        Err(format!(
            "webhook host {host:?} is not one this service may call (--webhook-allow)"
        ))
    }
}

/// What every job shares.
pub struct Runner {
    /// Database.
    pub store: Store,
    /// Datasources by name.
    pub datasources: HashMap<String, Prometheus>,
    /// Kafka, when publishing is on.
    pub publisher: Option<Publisher>,
    /// This replica's lease owner name.
    pub owner: String,
    /// Lease length.
    pub lease: Duration,
    /// Most experiments per job.
    pub limit: usize,
    /// Experiment name format.
    pub name_format: String,
    /// Namespaces fetched at once per job.
    pub parallel_namespaces: usize,
    /// Woken when a job is posted.
    pub wake: Notify,
    /// Webhook client ([`webhook_client`]).
    pub http: reqwest::Client,
    /// Hosts webhooks may call ([`webhook_allowed`]).
    pub webhook_allow: Vec<String>,
    /// Metrics.
    pub metrics: Metrics,
    /// Fault injection for tests (the `testing` feature): abort the process after this many
    /// publications, before recording the last one (the window a resumed job must not publish
    /// twice).
    #[cfg(feature = "testing")]
    pub abort_after_publishes: Option<u64>,
    /// Publications so far (for the fault injection).
    #[cfg(feature = "testing")]
    pub publishes: std::sync::atomic::AtomicU64,
}

/// A job-level notification (`ERROR`, `INFO`: the bulk API's upper-case types).
fn job_notification(kind: &str, code: u16, message: String) -> Value {
    json!({ code.to_string(): { "type": kind, "message": message, "code": code } })
}

/// The reference's datasource failures: all under the key "503", the timeout with code 504.
fn datasource_failure(e: &QueryError) -> Value {
    match e {
        QueryError::Timeout(d) => json!({ "503": {
            "type": "ERROR",
            "message": format!(
                "SocketTimeoutException: request timed out waiting for a data source response. ({d})"
            ),
            "code": 504,
        }}),
        other => job_notification(
            "ERROR",
            503,
            format!(
                "HttpHostConnectException: Unable to connect to the data source. Please try again later. ({other})"
            ),
        ),
    }
}

/// Runs jobs until `token` is cancelled.
pub async fn run(runner: Arc<Runner>, token: CancellationToken) {
    while !token.is_cancelled() {
        // Listening before the claim: a job created while the claim runs (too late for it)
        // still wakes the wait below (`notify_waiters` reaches only listeners that exist);
        // listening after it, that wake-up would be lost and the job left to the 1 s poll.
        let woken = runner.wake.notified();
        tokio::pin!(woken);
        match runner
            .store
            .claim(&runner.owner, runner.lease, runner.publisher.is_some())
            .await
        {
            Ok(Some(job)) if job.status != status::IN_PROGRESS => {
                // Ended, but its summary never reached Kafka (its replica died first).
                if let Err(error) = runner.after_end(job.job_id).await {
                    tracing::warn!(id = %job.job_id, %error, "Could not finish a job's summary.");
                }
            }
            Ok(Some(job)) => {
                let id = job.job_id;
                tracing::info!(%id, "Running a job.");
                let job_token = token.child_token();
                let heartbeat = tokio::spawn(heartbeat(runner.clone(), id, job_token.clone()));
                tokio::select! {
                    outcome = runner.run_job(job, &job_token) => {
                        if let Err(error) = outcome {
                            tracing::warn!(%id, %error, "A job stopped on a database error; it will be resumed.");
                        }
                    }
                    () = job_token.cancelled() => tracing::info!(%id, "The job ended, was cancelled or lost its lease."),
                }
                job_token.cancel();
                let _ = heartbeat.await;
                // A job that ended (here, or in a race with the heartbeat noticing it) gets its
                // summary and webhook now, outside the job's cancellation.
                match runner.store.job(id).await {
                    Ok(Some(ended))
                        if ended.status != status::IN_PROGRESS && !ended.summary_published =>
                    {
                        if let Err(error) = runner.after_end(id).await {
                            tracing::warn!(%id, %error, "Could not finish a job's summary; it is retried.");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%id, %error, "Could not read a job back."),
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = &mut woken => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = token.cancelled() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot claim jobs: database unavailable; retrying.");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Renews the lease every third of it; cancels the job's token when the lease is lost.
async fn heartbeat(runner: Arc<Runner>, id: Uuid, token: CancellationToken) {
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(runner.lease / 3) => {}
        }
        match runner.store.renew(id, &runner.owner, runner.lease).await {
            Ok(true) => {}
            Ok(false) => {
                token.cancel();
                return;
            }
            Err(error) => tracing::warn!(%id, %error, "Could not renew a lease; trying again."),
        }
    }
}

impl Runner {
    /// The `testing` feature's fault injection: counts a publication and aborts the process
    /// once `abort_after_publishes` is reached, before the publication is recorded.
    #[cfg(feature = "testing")]
    fn fault_after_publication(&self) {
        let n = self
            .publishes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if self.abort_after_publishes.is_some_and(|limit| n >= limit) {
            tracing::error!(
                n,
                "Fault injection: aborting after a publication, before recording it."
            );
            std::process::abort();
        }
    }

    async fn fail(&self, job: &JobRow, notification: Value) -> Result<(), sqlx::Error> {
        tracing::info!(id = %job.job_id, %notification, "Job failed.");
        self.metrics
            .jobs
            .get_or_create(&vec![("status".into(), "FAILED".into())])
            .inc();
        self.store
            .finish(job.job_id, &self.owner, status::FAILED, &notification)
            .await?;
        Ok(())
    }

    /// Computes, stores and publishes the experiments of one fetch; false once the job is no
    /// longer this replica's.
    async fn record(
        &self,
        job: &JobRow,
        list: &[&ExperimentRow],
        fetched: &Result<HashMap<String, collect::Fetched>, QueryError>,
    ) -> Result<bool, sqlx::Error> {
        let outcomes: Vec<(&str, Option<Value>, Option<Value>)> = list
            .iter()
            .map(|e| match fetched {
                Ok(data) => {
                    let key = if e.experiment_type == "namespace" {
                        &e.namespace
                    } else {
                        &e.container
                    };
                    // Borrowed: a container's series is ~400 KB (1,441 intervals).
                    let none = Series::new();
                    let series = data.get(key).map_or(&none, |f| &f.series);
                    let recommendations = engine::recommend(series, &Settings::default());
                    let doc = document::recommendation(e, &recommendations);
                    (status::PROCESSED, Some(doc), None)
                }
                Err(error) => {
                    let note = job_notification(
                        "ERROR",
                        503,
                        format!("Not able to proceed due to. ({error})"),
                    );
                    (status::FAILED, None, Some(note))
                }
            })
            .collect();
        // The fetch's experiments are stored together (one transaction), then published.
        let moves: Vec<Move> = list
            .iter()
            .zip(&outcomes)
            .map(|(e, (status, doc, note))| Move {
                name: &e.name,
                status,
                recommendations: doc.as_ref(),
                notifications: note.as_ref(),
            })
            .collect();
        let Some(rows) = self
            .store
            .set_experiments(job.job_id, &self.owner, &moves)
            .await?
        else {
            return Ok(false); // the job is no longer ours
        };
        for (outcome, _, _) in &outcomes {
            self.metrics
                .experiments
                .get_or_create(&vec![("status".into(), (*outcome).into())])
                .inc();
        }
        let rows: Vec<&ExperimentRow> = rows.iter().collect();
        self.publish(job, &rows).await
    }

    /// Publishes computed experiments (concurrently: the producer's queue bounds them) and
    /// records the outcomes together; false once the job is no longer this replica's.
    async fn publish(&self, job: &JobRow, rows: &[&ExperimentRow]) -> Result<bool, sqlx::Error> {
        let Some(publisher) = &self.publisher else {
            return Ok(true);
        };
        let sends = rows.iter().map(|e| async move {
            let topic = if e.status == status::FAILED {
                Topic::Error
            } else {
                Topic::Recommendations
            };
            let message = document::experiment_message(job, e);
            let key = format!("{}|{}", job.job_id, e.name);
            let outcome = match publisher.send(topic, &key, &message).await {
                Ok(()) => {
                    #[cfg(feature = "testing")]
                    self.fault_after_publication();
                    status::PUBLISHED
                }
                Err(error) => {
                    tracing::warn!(%error, experiment = e.name, "Publishing failed.");
                    status::PUBLISH_FAILED
                }
            };
            self.metrics
                .published
                .get_or_create(&vec![("outcome".into(), outcome.into())])
                .inc();
            Move::to(&e.name, outcome)
        });
        let moves = futures::future::join_all(sends).await;
        self.store
            .mark_experiments(job.job_id, &self.owner, &moves)
            .await
    }

    /// After a job ended: its summary on Kafka (every job, once) and its webhook.
    pub(crate) async fn after_end(&self, id: Uuid) -> Result<(), sqlx::Error> {
        let Some(job) = self.store.job(id).await? else {
            return Ok(());
        };
        let mut published = job.summary_published;
        if let Some(publisher) = &self.publisher
            && !published
        {
            // A replica that died after sending the summary left it in the topic.
            let key = id.to_string();
            let already = match &job.topic_offsets {
                Some(offsets) => publisher
                    .keys_since(offsets, &[Topic::Summary], &key)
                    .await
                    .is_ok_and(|keys| keys.contains(&key)),
                None => false,
            };
            if already {
                published = true;
            } else {
                match publisher
                    .send(Topic::Summary, &key, &document::summary_message(&job))
                    .await
                {
                    Ok(()) => published = true,
                    Err(error) => tracing::warn!(%id, %error, "Could not publish the job summary."),
                }
            }
        }
        // The webhook is called once, not again when the summary is retried.
        let hook = serde_json::from_value::<BulkInput>(job.payload.clone())
            .ok()
            .and_then(|i| i.webhook);
        let webhook = match hook {
            Some(hook) if job.webhook.is_none() => {
                let outcome = self.call_webhook(&hook.url, &job).await;
                let status = outcome["status"].as_str().unwrap_or("FAILED").to_string();
                self.metrics
                    .webhook_calls
                    .get_or_create(&vec![("status".into(), status)])
                    .inc();
                Some(outcome)
            }
            _ => None,
        };
        self.store.after_end(id, published, webhook.as_ref()).await
    }

    async fn call_webhook(&self, url: &str, job: &JobRow) -> Value {
        let body = json!([{ "summary": document::summary(job) }]);
        // The client follows no redirect and has connect and total timeouts (`webhook_client`).
        match self.http.post(url).json(&body).send().await {
            Ok(r) if r.status().as_u16() == 200 => json!({ "status": "COMPLETED" }),
            Ok(r) => {
                let code = r.status().as_u16();
                let text = reply_prefix(r).await;
                json!({ "status": "FAILED", "notifications": job_notification("ERROR", code, text) })
            }
            Err(e) => {
                json!({ "status": "FAILED", "notifications": job_notification("ERROR", 500, e.to_string()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_go_only_to_allowed_hosts() {
        let allow = vec!["hooks.example".to_owned(), "127.0.0.1:9000".to_owned()];
        assert!(webhook_allowed(&allow, "https://hooks.example/x").is_ok());
        assert!(webhook_allowed(&allow, "http://hooks.example:8080/x").is_ok());
        assert!(webhook_allowed(&allow, "http://127.0.0.1:9000/x").is_ok());
        assert!(webhook_allowed(&allow, "http://127.0.0.1:9001/x").is_err());
        assert!(webhook_allowed(&allow, "http://169.254.169.254/latest").is_err());
        assert!(webhook_allowed(&allow, "http://hooks.example.evil/x").is_err());
        let none = webhook_allowed(&[], "https://hooks.example/x").unwrap_err();
        assert!(none.contains("disabled"), "{none}");
    }
}
