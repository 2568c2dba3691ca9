//! Registry operations: what each endpoint decides, independent of HTTP.
//!
//! Reads are answered from the local [`State`]; a "not found" first catches up with the log, so
//! a schema registered on another replica a moment ago is found. Writes are serialised per
//! replica, planned against a caught-up state, appended to `_schemas` and confirmed by reading
//! the log back: a registration whose claim lost to another replica's is planned again.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

mod plan;
mod planned;
mod request;

pub use request::{Found, Submission, VersionSpec};

use self::plan::{Plan, found, parse, plan_registration, resolve, won, writable};
use self::planned::Planned;
use crate::error::ApiError;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::record::{Record, SchemaValue, SubjectValue};
use crate::schema::{self, Level};
use crate::state::{Mode, State};

/// How many times a registration is planned again after losing a claim.
const MAX_CLAIMS: usize = 16;

/// Least time between two log syncs caused by look-ups that found nothing.
pub const MISS_SYNC_GAP: Duration = Duration::from_millis(20);

/// The registry service.
pub struct Registry {
    state: Arc<ShardedLock<State>>,
    journal: Journal,
    /// Serialises deletions and config and mode changes.
    write_lock: Mutex<()>,
    /// One lock per subject: registrations to one subject wait for each other (each must be
    /// checked against the one before), registrations to different subjects run concurrently.
    subject_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Highest id planned by this replica's in-flight claims, so concurrent local claims never
    /// plan the same id.
    reserved_id: std::sync::Mutex<u32>,
    /// New ids planned per schema identity: one schema registered under two subjects at once
    /// on this replica is planned with one id, not two. Only claims in flight are kept.
    planned_ids: std::sync::Mutex<Planned>,
    /// When the last log sync caused by a miss started: misses wait for one sync that started
    /// after they arrived, shared by all of them, and such syncs are spaced by [`MISS_SYNC_GAP`].
    miss_sync: Mutex<Option<Instant>>,
    claim_delay: Option<Duration>,
    metrics: Metrics,
}

impl Registry {
    /// Wraps a state kept current by `journal`'s reader. `claim_delay` is a fault-injection hook
    /// for tests: it widens the window between planning a claim and appending it.
    pub fn new(
        state: Arc<ShardedLock<State>>,
        journal: Journal,
        metrics: Metrics,
        claim_delay: Option<Duration>,
    ) -> Self {
        Self {
            state,
            journal,
            write_lock: Mutex::new(()),
            subject_locks: Default::default(),
            reserved_id: Default::default(),
            planned_ids: Default::default(),
            miss_sync: Mutex::new(None),
            claim_delay,
            metrics,
        }
    }

    /// The current state, for reads. A sharded lock: readers on different threads touch
    /// different cache lines, so the hot read path does not contend.
    pub fn read(&self) -> ShardedLockReadGuard<'_, State> {
        // A poisoned lock means a panic while applying a record; the state is still the last
        // consistent one, so keep serving it.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every record written so far has been applied.
    pub async fn sync(&self) -> Result<(), ApiError> {
        Ok(self.journal.sync().await?)
    }

    /// The registry's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// How far this replica has read `_schemas`.
    pub fn position(&self) -> i64 {
        self.journal.position()
    }

    /// Runs a read; if it finds nothing, catches up with the log and runs it again.
    pub async fn fresh<T>(&self, f: impl Fn(&State) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let arrived = Instant::now();
        let first = f(&self.read());
        match first {
            Err(e) if e.is_not_found() => {
                self.sync_after(arrived).await?;
                f(&self.read())
            }
            other => other,
        }
    }

    /// Catches up with the log as of some moment after `arrived`: a sync that started after
    /// it serves every miss waiting for it (a flood of misses costs a couple of broker round
    /// trips, not one each), and syncs for misses are at least [`MISS_SYNC_GAP`] apart. A
    /// schema registered before a request arrived is still found by it.
    async fn sync_after(&self, arrived: Instant) -> Result<(), ApiError> {
        let mut last = self.miss_sync.lock().await;
        if last.is_some_and(|started| started >= arrived) {
            return Ok(());
        }
        if let Some(started) = *last {
            tokio::time::sleep_until((started + MISS_SYNC_GAP).into()).await;
        }
        *last = Some(Instant::now());
        self.metrics.miss_syncs.inc();
        self.sync().await
    }

    async fn write(&self, record: Record) -> Result<(), ApiError> {
        let offset = self.journal.append(&record).await?;
        self.journal.wait_applied(offset).await?;
        Ok(())
    }

    /// Registers `submission` under `subject` and returns its id (the existing one if the
    /// subject already has this schema).
    ///
    /// The first plan uses the local state as it is (the reader tails the log within
    /// milliseconds); a stale plan is safe because its claim then loses, and every retry
    /// first catches up with the log.
    pub async fn register(&self, subject: &str, submission: &Submission) -> Result<u32, ApiError> {
        let subject_lock = self.subject_lock(subject);
        let _guard = subject_lock.lock().await;
        for attempt in 0..MAX_CLAIMS {
            if attempt > 0 {
                self.sync().await?;
            }
            // The identity whose planned id this attempt holds, released when it is settled.
            let mut planning = None;
            let claim = {
                let state = self.read();
                let reserved = self.reserved_id.lock().unwrap_or_else(|e| e.into_inner());
                match plan_registration(&state, subject, submission, *reserved + 1)? {
                    Plan::Existing(id) => return Ok(id),
                    Plan::Claim(mut claim) => {
                        if submission.id.is_none() && state.any_schema(claim.id).is_none() {
                            let identity = schema::identity(&claim.schema, &claim.references);
                            let mut planned =
                                self.planned_ids.lock().unwrap_or_else(|e| e.into_inner());
                            claim.id = planned.plan(identity.clone(), claim.id, |id| {
                                state.any_schema(id).map(|s| s.parsed.identity())
                            });
                            planning = Some(identity);
                        }
                        claim
                    }
                }
            };
            self.reserve(claim.id);
            self.metrics.claims_in_flight.inc();
            if let Some(delay) = self.claim_delay {
                tokio::time::sleep(delay).await;
            }
            let (version, id) = (claim.version, claim.id);
            let written = self.write(Record::Schema(claim.clone())).await;
            self.metrics.claims_in_flight.dec();
            if let Some(identity) = planning {
                self.planned_ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .done(&identity);
            }
            written?;
            if won(&self.read(), &claim) {
                self.metrics.registrations.inc();
                tracing::info!(subject, version, id, "Registered a schema.");
                return Ok(id);
            }
            self.metrics.claim_conflicts.inc();
            tracing::debug!(
                subject,
                version,
                id,
                "Another writer claimed first; planning again."
            );
        }
        Err(ApiError::store(
            "Too many concurrent registrations; try again.",
        ))
    }

    fn subject_lock(&self, subject: &str) -> Arc<Mutex<()>> {
        let mut locks = self.subject_locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget locks nobody holds, so the map does not grow with every subject ever seen.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(subject.to_owned()).or_default().clone()
    }

    fn reserve(&self, id: u32) {
        let mut reserved = self.reserved_id.lock().unwrap_or_else(|e| e.into_inner());
        *reserved = (*reserved).max(id);
    }

    /// Finds `submission` among `subject`'s versions (`POST /subjects/{subject}`).
    pub async fn lookup(
        &self,
        subject: &str,
        submission: &Submission,
        deleted: bool,
    ) -> Result<Found, ApiError> {
        self.fresh(|state| {
            let versions = state
                .versions(subject)
                .ok_or_else(|| ApiError::subject_not_found(subject))?;
            let parsed = parse(state, submission)?;
            let id = state.id_of(&parsed.identity());
            versions
                .iter()
                .rev()
                .find(|(_, v)| Some(v.id) == id && (deleted || !v.deleted))
                .map(|(n, v)| found(state, subject, *n, *v))
                .ok_or_else(|| ApiError::schema_not_found("with this content"))
        })
        .await
    }

    /// Resolves one version of a subject.
    pub async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<Found, ApiError> {
        self.fresh(|state| {
            let (n, v) = resolve(state, subject, spec, deleted)?;
            Ok(found(state, subject, n, v))
        })
        .await
    }

    /// Checks `submission` against one version (`Some`) or against the versions the subject's
    /// level names (`None`). Returns the reasons it is incompatible.
    pub async fn check(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        submission: &Submission,
    ) -> Result<Vec<String>, ApiError> {
        let run = |state: &State| {
            let parsed = parse(state, submission)?;
            let level = state.level(subject);
            let existing = state.live_schemas(subject);
            match spec {
                None => Ok(schema::check(level, &parsed.schema, &existing)),
                Some(spec) => {
                    let (n, _) = resolve(state, subject, spec, false)?;
                    let one: Vec<_> = existing.into_iter().filter(|(v, _)| *v == n).collect();
                    Ok(schema::check(level, &parsed.schema, &one))
                }
            }
        };
        match spec {
            Some(_) => self.fresh(run).await,
            None => {
                self.sync().await?;
                run(&self.read())
            }
        }
    }

    /// Soft- or permanently deletes a subject; returns the versions deleted.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.sync().await?;
        let record = {
            let state = self.read();
            let versions = state
                .versions(subject)
                .ok_or_else(|| ApiError::subject_not_found(subject))?;
            writable(&state, subject)?;
            let max = versions.keys().next_back().copied().unwrap_or(0);
            let live: Vec<u32> = versions
                .iter()
                .filter(|(_, v)| !v.deleted)
                .map(|(n, _)| *n)
                .collect();
            if permanent {
                if !live.is_empty() {
                    return Err(ApiError::subject_not_soft_deleted(subject));
                }
                (
                    Record::ClearSubject(SubjectValue {
                        subject: subject.to_owned(),
                        version: max,
                    }),
                    versions.keys().copied().collect(),
                )
            } else {
                if live.is_empty() {
                    return Err(ApiError::subject_soft_deleted(subject));
                }
                if let Some(&n) = live
                    .iter()
                    .find(|&&n| state.is_referenced_by_others(subject, n))
                {
                    return Err(ApiError::referenced(subject, n));
                }
                (
                    Record::DeleteSubject(SubjectValue {
                        subject: subject.to_owned(),
                        version: max,
                    }),
                    live,
                )
            }
        };
        self.write(record.0).await?;
        Ok(record.1)
    }

    /// Soft- or permanently deletes one version; returns its number.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.sync().await?;
        let record = {
            let state = self.read();
            writable(&state, subject)?;
            let (n, v) = resolve(&state, subject, spec, permanent)?;
            if permanent {
                if !v.deleted {
                    return Err(ApiError::version_not_soft_deleted(subject, n));
                }
                Record::RemoveVersion {
                    subject: subject.to_owned(),
                    version: n,
                }
            } else {
                if v.deleted {
                    return Err(ApiError::version_soft_deleted(subject, n));
                }
                if state.is_referenced_by_others(subject, n) {
                    return Err(ApiError::referenced(subject, n));
                }
                let f = found(&state, subject, n, v);
                Record::Schema(SchemaValue {
                    subject: f.subject,
                    version: n,
                    id: f.id,
                    schema: f.schema,
                    schema_type: None,
                    references: f.references,
                    deleted: true,
                })
            }
        };
        let version = match &record {
            Record::Schema(v) => v.version,
            Record::RemoveVersion { version, .. } => *version,
            _ => 0,
        };
        self.write(record).await?;
        Ok(version)
    }

    /// Sets a compatibility level (`subject` `None`: global).
    pub async fn set_level(&self, subject: Option<&str>, level: Level) -> Result<(), ApiError> {
        let _guard = self.write_lock.lock().await;
        self.write(Record::Config {
            subject: subject.map(str::to_owned),
            level: Some(level),
        })
        .await
    }

    /// Clears a compatibility level; returns the one that was in force.
    pub async fn clear_level(&self, subject: Option<&str>) -> Result<Level, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.sync().await?;
        let previous = {
            let state = self.read();
            match subject {
                None => state.global_level().unwrap_or_default(),
                Some(s) => state
                    .subject_level(s)
                    .ok_or_else(|| ApiError::subject_level_not_configured(s))?,
            }
        };
        self.write(Record::Config {
            subject: subject.map(str::to_owned),
            level: None,
        })
        .await?;
        Ok(previous)
    }

    /// Sets a mode. IMPORT needs an empty registry (or subject) unless `force`.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Mode,
        force: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.write_lock.lock().await;
        self.sync().await?;
        if mode == Mode::Import && !force {
            let state = self.read();
            let occupied = match subject {
                None => !state.subjects(true).is_empty(),
                Some(s) => state.versions(s).is_some(),
            };
            if occupied {
                return Err(ApiError::not_permitted(
                    "Cannot import since found existing subjects; set force=true to switch to IMPORT anyway.",
                ));
            }
        }
        self.write(Record::Mode {
            subject: subject.map(str::to_owned),
            mode: Some(mode),
        })
        .await
    }

    /// Clears a subject's mode; returns the one that was set.
    pub async fn clear_mode(&self, subject: &str) -> Result<Mode, ApiError> {
        let _guard = self.write_lock.lock().await;
        self.sync().await?;
        let previous = self
            .read()
            .subject_mode(subject)
            .ok_or_else(|| ApiError::subject_mode_not_configured(subject))?;
        self.write(Record::Mode {
            subject: Some(subject.to_owned()),
            mode: None,
        })
        .await?;
        Ok(previous)
    }
}
