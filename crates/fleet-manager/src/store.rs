//! PostgreSQL: the requests and the leases. Every state change is a compare-and-set on the
//! status (`WHERE id = $1 AND status = $expected`), so a worker that lost its lease while
//! paused cannot move a request a second time; the quota and region counts are taken under a
//! transaction-scoped advisory lock on their scope, in the same transaction as the insert.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::errors::{ApiError, Code};
use crate::model::{COLUMNS, KafkaRow, Status};

/// Whether a database error means the database cannot be reached (503 rather than 500).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
}

/// The labels of a query metric: operation and outcome.
type QueryLabels = Vec<(&'static str, &'static str)>;

/// The reference's `database_query_count` and `database_query_duration`, per operation.
#[derive(Clone)]
pub struct QueryMetrics {
    /// Queries (monotonic; the reference's name has no `_total`).
    pub count: Family<QueryLabels, Gauge>,
    /// Their durations.
    pub duration: Family<QueryLabels, Histogram, fn() -> Histogram>,
}

impl QueryMetrics {
    /// Empty metrics.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            count: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
            }),
        }
    }
}

/// What a new request stores.
#[derive(Clone, Debug)]
pub struct NewKafka {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub organisation_id: Option<String>,
    pub scope: String,
    pub quota_scope: String,
    pub quota_max: u32,
    pub region_limit: Option<u32>,
    pub cloud_provider: String,
    pub region: String,
    pub multi_az: bool,
    pub instance_type: String,
    pub size_id: String,
    pub billing_model: String,
    pub quota_consumed: u32,
    pub capacity_consumed: u32,
    pub reauthentication_enabled: bool,
    pub now: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    metrics: Arc<QueryMetrics>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The condition a list adds to `scope = $1` for `filter`, and every parameter from `$1` on.
fn scoped(scope: &str, filter: Option<&crate::search::Filter>) -> (String, Vec<String>) {
    let mut params = vec![scope.to_owned()];
    let condition = filter
        .map(|f| format!(" AND {}", f.to_sql(&mut params)))
        .unwrap_or_default();
    (condition, params)
}

fn lock_key(what: &str) -> String {
    format!("rivulet-fleet:{what}")
}

impl Store {
    /// A pool to `url` that connects lazily (the binary starts, and answers 503, while the
    /// database is down); the migrations are applied by [`Store::migrate`].
    pub fn lazy(url: &str, connections: u32, timeout: Duration) -> Result<Store, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(timeout)
            .connect_lazy(url)?;
        Ok(Store {
            pool,
            metrics: Arc::new(QueryMetrics::new()),
        })
    }

    /// Applies the migrations (under PostgreSQL's migration lock: replicas may race).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(&self.pool).await
    }

    /// The query metrics.
    pub fn metrics(&self) -> Arc<QueryMetrics> {
        self.metrics.clone()
    }

    fn observe(&self, op: &'static str, started: std::time::Instant, ok: bool) {
        let labels = vec![
            ("operation", op),
            ("status", if ok { "ok" } else { "error" }),
        ];
        self.metrics.count.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let started = std::time::Instant::now();
        let r = f.await;
        self.observe(op, started, r.is_ok());
        r
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.timed("ping", sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .is_ok()
    }

    /// Stores a new request if the quota and the region's limit allow it.
    pub async fn create(&self, k: &NewKafka) -> Result<KafkaRow, ApiError> {
        let started = std::time::Instant::now();
        let r = self.create_tx(k).await;
        self.observe(
            "create",
            started,
            !matches!(r, Err(ref e) if e.code == Code::Unavailable || e.code == Code::General),
        );
        r
    }

    async fn create_tx(&self, k: &NewKafka) -> Result<KafkaRow, ApiError> {
        let mut tx = self.pool.begin().await?;
        // The quota's lock, then the region's if the region has a limit: one statement, its
        // keys taken in array order, so two requests never wait on each other crosswise. A
        // region without a limit takes no lock: requests of different scopes run in parallel.
        let mut keys = vec![lock_key(&format!(
            "quota:{}:{}",
            k.quota_scope, k.instance_type
        ))];
        if k.region_limit.is_some() {
            keys.push(lock_key(&format!(
                "region:{}:{}:{}",
                k.cloud_provider, k.region, k.instance_type
            )));
        }
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key",
        )
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        let region = k.region_limit.map(|_| (&k.cloud_provider, &k.region));
        let (used_quota, used_region): (i64, i64) = sqlx::query_as(
            "SELECT
                COALESCE(SUM(quota_consumed) FILTER (WHERE quota_scope = $1 AND billing_model = $5), 0)::bigint,
                COALESCE(SUM(capacity_consumed) FILTER (WHERE cloud_provider = $2 AND region = $3), 0)::bigint
             FROM kafka_requests
             WHERE deleted_at IS NULL AND instance_type = $4 AND (quota_scope = $1 OR (cloud_provider = $2 AND region = $3))",
        )
        .bind(&k.quota_scope)
        .bind(region.map(|r| r.0))
        .bind(region.map(|r| r.1))
        .bind(&k.instance_type)
        .bind(&k.billing_model)
        .fetch_one(&mut *tx)
        .await?;
        if used_quota + i64::from(k.quota_consumed) > i64::from(k.quota_max) {
            return Err(ApiError::new(
                Code::MaxAllowedInstanceReached,
                format!(
                    "the {} quota of {} allows {} units of {} instances: {used_quota} in use",
                    k.billing_model, k.quota_scope, k.quota_max, k.instance_type
                ),
            ));
        }
        if let Some(limit) = k.region_limit
            && used_region + i64::from(k.capacity_consumed) > i64::from(limit)
        {
            return Err(ApiError::new(
                Code::TooManyKafkaInstancesReached,
                format!(
                    "region {}/{} has no {} capacity left",
                    k.cloud_provider, k.region, k.instance_type
                ),
            ));
        }
        let insert = format!(
            "INSERT INTO kafka_requests (id, name, owner, organisation_id, scope, quota_scope, cloud_provider, region, multi_az, instance_type, size_id, billing_model, quota_consumed, capacity_consumed, reauthentication_enabled, status, created_at, updated_at, status_changed_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'accepted', $16, $16, $16, $17)
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query_as::<_, KafkaRow>(&insert)
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.owner)
            .bind(&k.organisation_id)
            .bind(&k.scope)
            .bind(&k.quota_scope)
            .bind(&k.cloud_provider)
            .bind(&k.region)
            .bind(k.multi_az)
            .bind(&k.instance_type)
            .bind(&k.size_id)
            .bind(&k.billing_model)
            .bind(i32::try_from(k.quota_consumed).unwrap_or(i32::MAX))
            .bind(i32::try_from(k.capacity_consumed).unwrap_or(i32::MAX))
            .bind(k.reauthentication_enabled)
            .bind(k.now)
            .bind(k.expires_at)
            .fetch_one(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(sqlx::Error::Database(d)) if d.constraint() == Some("kafka_requests_live_name") => {
                return Err(ApiError::new(
                    Code::DuplicateKafkaClusterName,
                    format!("an instance named {} exists already", k.name),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        Ok(row)
    }

    /// A live request of `scope` (any scope: `None`).
    pub async fn get(
        &self,
        id: &str,
        scope: Option<&str>,
    ) -> Result<Option<KafkaRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM kafka_requests WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR scope = $2)"
        );
        self.timed(
            "get",
            sqlx::query_as::<_, KafkaRow>(&sql)
                .bind(id)
                .bind(scope)
                .fetch_optional(&self.pool),
        )
        .await
    }

    /// A page of `scope`'s live requests matching `filter`, and how many match in all.
    pub async fn list(
        &self,
        scope: &str,
        filter: Option<&crate::search::Filter>,
        order: &str,
        page: u32,
        size: u32,
    ) -> Result<(Vec<KafkaRow>, i64), sqlx::Error> {
        let (condition, params) = scoped(scope, filter);
        let offset = i64::from(page.saturating_sub(1)) * i64::from(size);
        let sql = format!(
            "SELECT {COLUMNS}, COUNT(*) OVER () AS total FROM kafka_requests
             WHERE deleted_at IS NULL AND scope = $1{condition}
             ORDER BY {order} LIMIT {size} OFFSET {offset}"
        );
        let mut q = sqlx::query(&sql);
        for p in &params {
            q = q.bind(p);
        }
        let started = std::time::Instant::now();
        let rows = q.fetch_all(&self.pool).await;
        self.observe("list", started, rows.is_ok());
        let rows = rows?;
        let total = match rows.first() {
            Some(r) => sqlx::Row::try_get::<i64, _>(r, "total")?,
            None if page > 1 => self.count(scope, filter).await?,
            None => 0,
        };
        let items = rows
            .iter()
            .map(<KafkaRow as sqlx::FromRow<_>>::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    async fn count(
        &self,
        scope: &str,
        filter: Option<&crate::search::Filter>,
    ) -> Result<i64, sqlx::Error> {
        let (condition, params) = scoped(scope, filter);
        let sql = format!(
            "SELECT COUNT(*) FROM kafka_requests WHERE deleted_at IS NULL AND scope = $1{condition}"
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for p in &params {
            q = q.bind(p);
        }
        self.timed("count", q.fetch_one(&self.pool)).await
    }

    /// PATCH: a new owner and/or reauthentication setting.
    pub async fn update(
        &self,
        id: &str,
        owner: Option<&str>,
        reauthentication: Option<bool>,
    ) -> Result<Option<KafkaRow>, sqlx::Error> {
        let sql = format!(
            "UPDATE kafka_requests SET owner = COALESCE($2, owner),
                reauthentication_enabled = COALESCE($3, reauthentication_enabled), updated_at = now()
             WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
        );
        self.timed(
            "update",
            sqlx::query_as::<_, KafkaRow>(&sql)
                .bind(id)
                .bind(owner)
                .bind(reauthentication)
                .fetch_optional(&self.pool),
        )
        .await
    }

    /// DELETE: `deprovision`, unless deletion is under way already. The row as it became;
    /// None: it was under way (or gone).
    pub async fn request_deletion(&self, id: &str) -> Result<Option<KafkaRow>, sqlx::Error> {
        let sql = format!(
            "UPDATE kafka_requests SET status = 'deprovision', updated_at = now(), status_changed_at = now()
             WHERE id = $1 AND deleted_at IS NULL AND status NOT IN ('deprovision', 'deleting')
             RETURNING {COLUMNS}"
        );
        self.timed(
            "request_deletion",
            sqlx::query_as::<_, KafkaRow>(&sql)
                .bind(id)
                .fetch_optional(&self.pool),
        )
        .await
    }

    /// Up to `limit` live requests in `status`, oldest first.
    pub async fn in_status(
        &self,
        status: Status,
        limit: i64,
    ) -> Result<Vec<KafkaRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM kafka_requests WHERE status = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT $2"
        );
        self.timed(
            "in_status",
            sqlx::query_as::<_, KafkaRow>(&sql)
                .bind(status.as_str())
                .bind(limit)
                .fetch_all(&self.pool),
        )
        .await
    }

    /// Compare-and-set of the status, with the fields the transition sets. False: the row was
    /// not in `from` any more (another worker, or a user's DELETE, moved it first).
    pub async fn transition(
        &self,
        id: &str,
        from: Status,
        to: &Transition,
    ) -> Result<bool, sqlx::Error> {
        debug_assert!(from.may_become(to.status));
        let r = self
            .timed(
                "transition",
                sqlx::query(
                    "UPDATE kafka_requests SET status = $3, updated_at = now(), status_changed_at = now(),
                        cluster_id = COALESCE($4, cluster_id), kafka_version = COALESCE($5, kafka_version),
                        strimzi_version = COALESCE($6, strimzi_version),
                        bootstrap_server_host = COALESCE($7, bootstrap_server_host),
                        failed_reason = COALESCE($8, failed_reason)
                     WHERE id = $1 AND status = $2 AND deleted_at IS NULL",
                )
                .bind(id)
                .bind(from.as_str())
                .bind(to.status.as_str())
                .bind(&to.cluster_id)
                .bind(&to.kafka_version)
                .bind(&to.strimzi_version)
                .bind(&to.bootstrap_server_host)
                .bind(&to.failed_reason)
                .execute(&self.pool),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Soft-deletes a request whose data-plane objects are gone (`deleting` only).
    pub async fn soft_delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let r = self
            .timed(
                "soft_delete",
                sqlx::query(
                    "UPDATE kafka_requests SET deleted_at = now(), updated_at = now()
                     WHERE id = $1 AND status = 'deleting' AND deleted_at IS NULL",
                )
                .bind(id)
                .execute(&self.pool),
            )
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Capacity units in use per cluster and instance type (live, placed requests).
    pub async fn capacity_used(&self) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        self.timed(
            "capacity_used",
            sqlx::query_as(
                "SELECT cluster_id, instance_type, SUM(capacity_consumed)::bigint FROM kafka_requests
                 WHERE deleted_at IS NULL AND cluster_id IS NOT NULL GROUP BY 1, 2",
            )
            .fetch_all(&self.pool),
        )
        .await
    }

    /// Live requests per status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.timed(
            "status_counts",
            sqlx::query_as(
                "SELECT status, COUNT(*)::bigint FROM kafka_requests WHERE deleted_at IS NULL GROUP BY 1",
            )
            .fetch_all(&self.pool),
        )
        .await
    }

    /// Live requests past their lifespan that are not being deleted.
    pub async fn expired(&self, limit: i64) -> Result<Vec<KafkaRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM kafka_requests WHERE deleted_at IS NULL AND expires_at < now()
               AND status NOT IN ('deprovision', 'deleting') ORDER BY expires_at LIMIT $1"
        );
        self.timed(
            "expired",
            sqlx::query_as::<_, KafkaRow>(&sql)
                .bind(limit)
                .fetch_all(&self.pool),
        )
        .await
    }

    /// Makes the row of `lease_type` (free) unless it exists.
    pub async fn seed_lease(&self, lease_type: &str) -> Result<(), sqlx::Error> {
        self.timed(
            "seed_lease",
            sqlx::query(
                "INSERT INTO leader_leases (lease_type) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(lease_type)
            .execute(&self.pool),
        )
        .await
        .map(|_| ())
    }

    /// Takes or renews the lease of `lease_type` for `me` if it is free, expired, or mine and
    /// due for renewal (`renew_within` before its end).
    pub async fn lease(
        &self,
        lease_type: &str,
        me: &str,
        length: Duration,
        renew_within: Duration,
    ) -> Result<Lease, sqlx::Error> {
        let started = std::time::Instant::now();
        let r = self.lease_tx(lease_type, me, length, renew_within).await;
        self.observe("lease", started, r.is_ok());
        r
    }

    async fn lease_tx(
        &self,
        lease_type: &str,
        me: &str,
        length: Duration,
        renew_within: Duration,
    ) -> Result<Lease, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT leader, expires, now() FROM leader_leases
             WHERE lease_type = $1 AND deleted_at IS NULL FOR UPDATE SKIP LOCKED",
        )
        .bind(lease_type)
        .fetch_optional(&mut *tx)
        .await?;
        // Another replica is looking at the row right now (or it was never seeded): nothing
        // is known, the caller keeps what it had.
        let Some((leader, expires, now)) = row else {
            return Ok(Lease::Busy);
        };
        let renew = chrono::Duration::from_std(renew_within).unwrap_or_default();
        let mine = leader == me;
        if mine && expires - renew > now {
            return Ok(Lease::Held(expires));
        }
        if !mine && expires > now {
            return Ok(Lease::Other);
        }
        let length = chrono::Duration::from_std(length).unwrap_or_default();
        let new_end = now + length;
        sqlx::query("UPDATE leader_leases SET leader = $2, expires = $3 WHERE lease_type = $1")
            .bind(lease_type)
            .bind(me)
            .bind(new_end)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Lease::Held(new_end))
    }

    /// Gives up `me`'s leases (a clean shutdown: the next replica need not wait them out).
    pub async fn release(&self, me: &str) -> Result<(), sqlx::Error> {
        self.timed(
            "release",
            sqlx::query("UPDATE leader_leases SET expires = 'epoch' WHERE leader = $1")
                .bind(me)
                .execute(&self.pool),
        )
        .await
        .map(|_| ())
    }
}

/// What a lease attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// This replica holds it until then.
    Held(DateTime<Utc>),
    /// Another replica holds it.
    Other,
    /// The row was locked by another replica's attempt: unknown this time.
    Busy,
}

/// What a transition sets besides the status.
#[derive(Clone, Debug, Default)]
pub struct Transition {
    pub status: Status,
    pub cluster_id: Option<String>,
    pub kafka_version: Option<String>,
    pub strimzi_version: Option<String>,
    pub bootstrap_server_host: Option<String>,
    pub failed_reason: Option<String>,
}

impl Transition {
    /// To `status`, nothing else.
    pub fn to(status: Status) -> Self {
        Transition {
            status,
            ..Default::default()
        }
    }
}
