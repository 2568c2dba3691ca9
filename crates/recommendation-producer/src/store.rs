//! Jobs and experiments in PostgreSQL (migrations in `migrations/`).
//!
//! A job runs under a lease: [`Store::claim`] takes an `IN_PROGRESS` job whose lease is free or
//! expired (`FOR UPDATE SKIP LOCKED`), [`Store::renew`] extends it, and every write a runner
//! makes checks it still holds the lease, so a replica that lost its job (paused, partitioned)
//! cannot overwrite the one that took it over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use crate::collect::Discovered;

/// Job states.
pub mod status {
    /// Running or waiting for a replica.
    pub const IN_PROGRESS: &str = "IN_PROGRESS";
    /// Every experiment was attempted.
    pub const COMPLETED: &str = "COMPLETED";
    /// The job could not run.
    pub const FAILED: &str = "FAILED";
    /// Cancelled by `DELETE /bulk`.
    pub const CANCELLED: &str = "CANCELLED";
    /// Experiment: not done yet.
    pub const UNPROCESSED: &str = "UNPROCESSED";
    /// Experiment: recommendations computed.
    pub const PROCESSED: &str = "PROCESSED";
    /// Experiment: published to Kafka.
    pub const PUBLISHED: &str = "PUBLISHED";
    /// Experiment: publishing failed.
    pub const PUBLISH_FAILED: &str = "PUBLISH_FAILED";
}

/// A job row.
#[derive(Clone, Debug, FromRow)]
pub struct JobRow {
    /// Id.
    pub job_id: Uuid,
    /// Status.
    pub status: String,
    /// The request.
    pub payload: Value,
    /// Experiments found (after discovery).
    pub total_experiments: Option<i32>,
    /// Experiments attempted.
    pub processed_experiments: i32,
    /// Job-level notifications.
    pub notifications: Value,
    /// Webhook outcome.
    pub webhook: Option<Value>,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: Option<DateTime<Utc>>,
    /// Whether the summary went to Kafka.
    pub summary_published: bool,
    /// Ends of the output topics when the job first ran: `{topic: {partition: offset}}`.
    pub topic_offsets: Option<Value>,
}

/// An experiment row.
#[derive(Clone, Debug, FromRow)]
pub struct ExperimentRow {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Workload.
    pub workload: String,
    /// Workload kind.
    pub workload_type: String,
    /// Container.
    pub container: String,
    /// Image.
    pub image: String,
    /// Status.
    pub status: String,
    /// `[{status, timestamp}]`.
    pub status_history: Value,
    /// Notifications.
    pub notifications: Option<Value>,
    /// The recommendation document.
    pub recommendations: Option<Value>,
    /// `container` or `namespace`.
    pub experiment_type: String,
}

/// The reference's timestamp form.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

const JOB_COLUMNS: &str = "job_id, status, payload, total_experiments, processed_experiments, notifications, webhook, start_time, end_time, summary_published, topic_offsets";

impl Store {
    /// Connects and applies the migrations.
    pub async fn connect(url: &str, connections: u32) -> Result<Store, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Stores a new job, `IN_PROGRESS`, free for any replica to claim.
    pub async fn create_job(&self, id: Uuid, payload: &Value) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO bulk_jobs (job_id, status, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(status::IN_PROGRESS)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the oldest job with work left for `owner` for `lease`: running, or ended with its
    /// summary not published yet (when `publishing`).
    pub async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        publishing: bool,
    ) -> Result<Option<JobRow>, sqlx::Error> {
        let sql = format!(
            "UPDATE bulk_jobs SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
             WHERE job_id = (SELECT job_id FROM bulk_jobs
                             WHERE (status = $3 OR ($4 AND status <> 'CANCELLED' AND NOT summary_published))
                               AND (lease_until IS NULL OR lease_until < now())
                             ORDER BY start_time LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(owner)
            .bind(lease.as_millis() as f64)
            .bind(status::IN_PROGRESS)
            .bind(publishing)
            .fetch_optional(&self.pool)
            .await
    }

    /// Records where the output topics ended, once per job.
    pub async fn set_topic_offsets(
        &self,
        id: Uuid,
        owner: &str,
        offsets: &Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE bulk_jobs SET topic_offsets = $3 WHERE job_id = $1 AND lease_owner = $2 AND topic_offsets IS NULL")
            .bind(id)
            .bind(owner)
            .bind(offsets)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Extends `owner`'s lease of a running job; false when it is no longer theirs (or ended).
    pub async fn renew(&self, id: Uuid, owner: &str, lease: Duration) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE bulk_jobs SET lease_until = now() + $3 * interval '1 millisecond'
             WHERE job_id = $1 AND lease_owner = $2 AND status = $4",
        )
        .bind(id)
        .bind(owner)
        .bind(lease.as_millis() as f64)
        .bind(status::IN_PROGRESS)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the discovered experiments (once: a resumed job keeps its list) and the total.
    pub async fn add_experiments(
        &self,
        id: Uuid,
        owner: &str,
        experiments: &[(String, Discovered)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query("SELECT total_experiments FROM bulk_jobs WHERE job_id = $1 AND lease_owner = $2 FOR UPDATE")
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = held else { return Ok(()) };
        if row.try_get::<Option<i32>, _>(0)?.is_some() {
            return Ok(()); // recorded by an earlier run of this job
        }
        let now = stamp(Utc::now());
        for (name, d) in experiments {
            sqlx::query(
                "INSERT INTO bulk_experiments (job_id, name, namespace, workload, workload_type, container, image, status, status_history, experiment_type)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, jsonb_build_array(jsonb_build_object('status', $8::text, 'timestamp', $9::text)), $10)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(name)
            .bind(&d.namespace)
            .bind(&d.workload)
            .bind(&d.workload_type)
            .bind(&d.container)
            .bind(&d.image)
            .bind(status::UNPROCESSED)
            .bind(&now)
            .bind(if d.is_namespace() {
                "namespace"
            } else {
                "container"
            })
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE bulk_jobs SET total_experiments = $2 WHERE job_id = $1")
            .bind(id)
            .bind(experiments.len() as i32)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// A job's experiments, by name.
    pub async fn experiments(&self, id: Uuid) -> Result<Vec<ExperimentRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT name, namespace, workload, workload_type, container, image, status, status_history, notifications, recommendations, experiment_type
             FROM bulk_experiments WHERE job_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
    }

    /// Moves an experiment to `new_status` (appending to its history), with its result, and
    /// counts it processed the first time it leaves `UNPROCESSED`. Returns the updated row, or
    /// `None` when `owner` lost the job.
    pub async fn set_experiment(
        &self,
        id: Uuid,
        owner: &str,
        name: &str,
        new_status: &str,
        recommendations: Option<&Value>,
        notifications: Option<&Value>,
    ) -> Result<Option<ExperimentRow>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let old: Option<String> = sqlx::query_scalar(
            "SELECT e.status FROM bulk_experiments e JOIN bulk_jobs j USING (job_id)
             WHERE e.job_id = $1 AND e.name = $3 AND j.lease_owner = $2 AND j.status = 'IN_PROGRESS'
             FOR UPDATE OF e",
        )
        .bind(id)
        .bind(owner)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = old else { return Ok(None) };
        let row: ExperimentRow = sqlx::query_as(
            "UPDATE bulk_experiments SET status = $3,
                 status_history = status_history || jsonb_build_array(jsonb_build_object('status', $3::text, 'timestamp', $4::text)),
                 recommendations = COALESCE($5, recommendations),
                 notifications = COALESCE($6, notifications),
                 updated = now()
             WHERE job_id = $1 AND name = $2
             RETURNING name, namespace, workload, workload_type, container, image, status, status_history, notifications, recommendations, experiment_type",
        )
        .bind(id)
        .bind(name)
        .bind(new_status)
        .bind(stamp(Utc::now()))
        .bind(recommendations)
        .bind(notifications)
        .fetch_one(&mut *tx)
        .await?;
        if old == status::UNPROCESSED {
            sqlx::query("UPDATE bulk_jobs SET processed_experiments = processed_experiments + 1 WHERE job_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Ends a job held by `owner` with `final_status` and its notifications.
    pub async fn finish(
        &self,
        id: Uuid,
        owner: &str,
        final_status: &str,
        notifications: &Value,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE bulk_jobs SET status = $3, notifications = $4, end_time = now(), lease_until = NULL
             WHERE job_id = $1 AND lease_owner = $2 AND status = 'IN_PROGRESS'",
        )
        .bind(id)
        .bind(owner)
        .bind(final_status)
        .bind(notifications)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes that the job's summary was published, and the webhook's outcome.
    pub async fn after_end(
        &self,
        id: Uuid,
        summary_published: bool,
        webhook: Option<&Value>,
    ) -> Result<(), sqlx::Error> {
        // A summary not published yet is tried again, by any replica, in 10 seconds.
        sqlx::query(
            "UPDATE bulk_jobs SET summary_published = $2, webhook = COALESCE($3, webhook),
                 lease_until = CASE WHEN $2 THEN NULL ELSE now() + interval '10 seconds' END
             WHERE job_id = $1",
        )
        .bind(id)
        .bind(summary_published)
        .bind(webhook)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A job.
    pub async fn job(&self, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE job_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Jobs, newest first, optionally with one status.
    pub async fn list(
        &self,
        with_status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE ($1::text IS NULL OR status = $1) ORDER BY start_time DESC LIMIT $2"
        ))
        .bind(with_status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Cancels a running job; false when it is unknown or already ended.
    pub async fn cancel(&self, id: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE bulk_jobs SET status = $2, end_time = now(), lease_until = NULL WHERE job_id = $1 AND status = $3")
            .bind(id)
            .bind(status::CANCELLED)
            .bind(status::IN_PROGRESS)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes ended jobs older than `retention`; returns how many.
    pub async fn expire(&self, retention: Duration) -> Result<u64, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM bulk_jobs WHERE end_time < now() - $1 * interval '1 second'")
                .bind(retention.as_secs() as f64)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// The latest recommendation document of an experiment, from any job.
    pub async fn latest_recommendation(&self, name: &str) -> Result<Option<Value>, sqlx::Error> {
        let row = sqlx::query("SELECT recommendations FROM bulk_experiments WHERE name = $1 AND recommendations IS NOT NULL ORDER BY updated DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get(0)).transpose()
    }
}
