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

/// An experiment's next state, for [`Store::set_experiments`].
#[derive(Clone, Copy, Debug)]
pub struct Move<'a> {
    /// The experiment.
    pub name: &'a str,
    /// Its new status.
    pub status: &'a str,
    /// Its recommendation document, when the move gives one.
    pub recommendations: Option<&'a Value>,
    /// Its notifications, when the move gives them.
    pub notifications: Option<&'a Value>,
}

impl<'a> Move<'a> {
    /// A move that only changes the status.
    pub fn to(name: &'a str, status: &'a str) -> Move<'a> {
        Move {
            name,
            status,
            recommendations: None,
            notifications: None,
        }
    }
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
        let column = |f: fn(&(String, Discovered)) -> &str| -> Vec<&str> {
            experiments.iter().map(f).collect()
        };
        sqlx::query(
            "INSERT INTO bulk_experiments (job_id, name, namespace, workload, workload_type, container, image, status, status_history, experiment_type)
             SELECT $1, name, namespace, workload, workload_type, container, image, $8,
                    jsonb_build_array(jsonb_build_object('status', $8::text, 'timestamp', $9::text)), kind
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $10::text[])
                  AS d(name, namespace, workload, workload_type, container, image, kind)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(column(|(name, _)| name))
        .bind(column(|(_, d)| &d.namespace))
        .bind(column(|(_, d)| &d.workload))
        .bind(column(|(_, d)| &d.workload_type))
        .bind(column(|(_, d)| &d.container))
        .bind(column(|(_, d)| &d.image))
        .bind(status::UNPROCESSED)
        .bind(stamp(Utc::now()))
        .bind(column(|(_, d)| {
            if d.is_namespace() {
                "namespace"
            } else {
                "container"
            }
        }))
        .execute(&mut *tx)
        .await?;
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

    /// Moves experiments of a job held by `owner` to their new states (appending to each one's
    /// history, keeping a stored result a move does not replace), in one transaction, and
    /// counts as processed those leaving `UNPROCESSED`. Returns the rows as they now stand, or
    /// `None` when `owner` lost the job (then nothing moved).
    pub async fn set_experiments(
        &self,
        id: Uuid,
        owner: &str,
        moves: &[Move<'_>],
    ) -> Result<Option<Vec<ExperimentRow>>, sqlx::Error> {
        // A row's document comes back only where the move did not carry one: the caller has
        // that one already, and reading several KB of JSON back per experiment is not free.
        let returning = "e.name, e.namespace, e.workload, e.workload_type, e.container, e.image, e.status, e.status_history, e.notifications,
                 CASE WHEN m.doc IS NULL THEN e.recommendations END AS recommendations, e.experiment_type";
        let Some(mut rows) = self
            .apply::<ExperimentRow>(id, owner, moves, returning)
            .await?
        else {
            return Ok(None);
        };
        for row in &mut rows {
            if let Some(doc) = moves
                .iter()
                .find(|m| m.name == row.name)
                .and_then(|m| m.recommendations)
            {
                row.recommendations = Some(doc.clone());
            }
        }
        Ok(Some(rows))
    }

    /// [`Store::set_experiments`] for moves that only change the status (publication
    /// outcomes): false when `owner` lost the job.
    pub async fn mark_experiments(
        &self,
        id: Uuid,
        owner: &str,
        moves: &[Move<'_>],
    ) -> Result<bool, sqlx::Error> {
        let names: Option<Vec<(String,)>> = self.apply(id, owner, moves, "e.name").await?;
        Ok(names.is_some())
    }

    async fn apply<R>(
        &self,
        id: Uuid,
        owner: &str,
        moves: &[Move<'_>],
        returning: &str,
    ) -> Result<Option<Vec<R>>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let names: Vec<&str> = moves.iter().map(|m| m.name).collect();
        let statuses: Vec<&str> = moves.iter().map(|m| m.status).collect();
        let docs: Vec<Option<&Value>> = moves.iter().map(|m| m.recommendations).collect();
        let notes: Vec<Option<&Value>> = moves.iter().map(|m| m.notifications).collect();
        let mut tx = self.pool.begin().await?;
        let held: Vec<String> = sqlx::query_scalar(
            "SELECT e.status FROM bulk_experiments e JOIN bulk_jobs j USING (job_id)
             WHERE e.job_id = $1 AND e.name = ANY($3) AND j.lease_owner = $2 AND j.status = 'IN_PROGRESS'
             FOR UPDATE OF e",
        )
        .bind(id)
        .bind(owner)
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        if held.is_empty() && !moves.is_empty() {
            return Ok(None);
        }
        let newly_processed = held.iter().filter(|s| *s == status::UNPROCESSED).count();
        let rows: Vec<R> = sqlx::query_as(&format!(
            "UPDATE bulk_experiments e SET status = m.status,
                 status_history = e.status_history || jsonb_build_array(jsonb_build_object('status', m.status, 'timestamp', $3::text)),
                 recommendations = COALESCE(m.doc, e.recommendations),
                 notifications = COALESCE(m.note, e.notifications),
                 updated = now()
             FROM unnest($2::text[], $4::text[], $5::jsonb[], $6::jsonb[]) AS m(name, status, doc, note)
             WHERE e.job_id = $1 AND e.name = m.name
             RETURNING {returning}"
        ))
        .bind(id)
        .bind(&names)
        .bind(stamp(Utc::now()))
        .bind(&statuses)
        .bind(&docs)
        .bind(&notes)
        .fetch_all(&mut *tx)
        .await?;
        if newly_processed > 0 {
            sqlx::query("UPDATE bulk_jobs SET processed_experiments = processed_experiments + $2 WHERE job_id = $1")
                .bind(id)
                .bind(newly_processed as i32)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(rows))
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
