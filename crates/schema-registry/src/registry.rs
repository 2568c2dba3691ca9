//! Registry operations: what each endpoint decides, independent of HTTP.
//!
//! Reads are answered from the local [`State`]; a "not found" first catches up with the log, so
//! a schema registered on another replica a moment ago is found. Writes are serialised per
//! replica, planned against a caught-up state, appended to `_schemas` and confirmed by reading
//! the log back: a registration whose claim lost to another replica's is planned again.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::ApiError;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::record::{Record, SchemaValue, SubjectValue};
use crate::schema::{self, Level, ParsedSchema, Reference, SchemaType};
use crate::state::{Mode, State, Version};

/// How many times a registration is planned again after losing a claim.
const MAX_CLAIMS: usize = 16;

/// A schema as submitted for registration, look-up or a compatibility check.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The schema text.
    #[serde(default)]
    pub schema: String,
    /// `AVRO` when absent.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// References to other subjects' schemas.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Explicit id (IMPORT mode only).
    #[serde(default)]
    pub id: Option<u32>,
    /// Explicit version (IMPORT mode only).
    #[serde(default)]
    pub version: Option<u32>,
}

/// A version selector from a URL: a number or `latest` (also `-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest live version.
    Latest,
    /// A version number.
    Number(u32),
}

impl VersionSpec {
    /// Parses a URL segment; anything else is 42202.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Ok(Self::Latest);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(Self::Number(n)),
            _ => Err(ApiError::invalid_version(text)),
        }
    }
}

/// One subject version with its schema, as the read endpoints return it.
#[derive(Clone, Debug)]
pub struct Found {
    /// Subject.
    pub subject: String,
    /// Version.
    pub version: u32,
    /// Schema id.
    pub id: u32,
    /// Schema text.
    pub schema: String,
    /// References.
    pub references: Vec<Reference>,
    /// Soft-deleted.
    pub deleted: bool,
}

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
    /// on this replica is planned with one id, not two.
    planned_ids: std::sync::Mutex<HashMap<String, u32>>,
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
        let first = f(&self.read());
        match first {
            Err(e) if e.is_not_found() => {
                self.sync().await?;
                f(&self.read())
            }
            other => other,
        }
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
                            match planned.get(&identity) {
                                Some(&id)
                                    if state
                                        .any_schema(id)
                                        .is_none_or(|s| s.parsed.identity() == identity) =>
                                {
                                    claim.id = id;
                                }
                                _ => {
                                    planned.insert(identity, claim.id);
                                }
                            }
                        }
                        claim
                    }
                }
            };
            self.reserve(claim.id);
            if let Some(delay) = self.claim_delay {
                tokio::time::sleep(delay).await;
            }
            let (version, id) = (claim.version, claim.id);
            self.write(Record::Schema(claim.clone())).await?;
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

enum Plan {
    Existing(u32),
    Claim(SchemaValue),
}

fn parse(state: &State, submission: &Submission) -> Result<ParsedSchema, ApiError> {
    if let Some(t) = &submission.schema_type {
        t.parse::<SchemaType>().map_err(ApiError::invalid_schema)?;
    }
    let texts = state
        .referenced_texts(&submission.references)
        .map_err(ApiError::invalid_schema)?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    ParsedSchema::parse(&submission.schema, submission.references.clone(), &texts)
        .map_err(ApiError::invalid_schema)
}

fn writable(state: &State, subject: &str) -> Result<(), ApiError> {
    if state.mode(subject) == Mode::ReadOnly {
        return Err(ApiError::not_permitted(format!(
            "Subject {subject} is in read-only mode."
        )));
    }
    Ok(())
}

/// Decides what registering `submission` under `subject` means against `state`; a new id is
/// at least `min_new_id` (ids this replica has in flight are below it).
fn plan_registration(
    state: &State,
    subject: &str,
    submission: &Submission,
    min_new_id: u32,
) -> Result<Plan, ApiError> {
    let parsed = parse(state, submission)?;
    let identity = parsed.identity();
    let known_id = state.id_of(&identity);
    let versions = state.versions(subject);
    if let (Some(id), Some(versions)) = (known_id, versions)
        && versions.values().any(|v| v.id == id && !v.deleted)
    {
        if submission.id.is_some_and(|wanted| wanted != id) {
            return Err(ApiError::not_permitted(format!(
                "Schema already registered with id {id} in subject {subject}."
            )));
        }
        return Ok(Plan::Existing(id));
    }
    let mode = state.mode(subject);
    writable(state, subject)?;
    if mode != Mode::Import && (submission.id.is_some() || submission.version.is_some()) {
        return Err(ApiError::not_permitted(format!(
            "Subject {subject} is not in import mode; an id or version can only be given in IMPORT mode."
        )));
    }
    if mode != Mode::Import {
        let messages = schema::check(
            state.level(subject),
            &parsed.schema,
            &state.live_schemas(subject),
        );
        if !messages.is_empty() {
            return Err(ApiError::incompatible(&messages));
        }
    }
    let id = match (known_id, submission.id) {
        (Some(id), Some(wanted)) if id != wanted => {
            return Err(ApiError::not_permitted(format!(
                "This schema already has id {id}; it cannot be imported as {wanted}."
            )));
        }
        (Some(id), _) => id,
        (None, Some(wanted)) if state.any_schema(wanted).is_some() => {
            return Err(ApiError::not_permitted(format!(
                "Id {wanted} is already used by another schema."
            )));
        }
        (None, Some(wanted)) => wanted,
        (None, None) => state.next_id().max(min_new_id),
    };
    let next_version = versions
        .and_then(|vs| vs.keys().next_back())
        .map_or(1, |n| n + 1);
    let version = match submission.version {
        Some(v) if versions.is_some_and(|vs| vs.contains_key(&v)) => {
            return Err(ApiError::not_permitted(format!(
                "Version {v} of subject {subject} already exists."
            )));
        }
        Some(0) => return Err(ApiError::invalid_version("0")),
        Some(v) => v,
        None => next_version,
    };
    Ok(Plan::Claim(SchemaValue {
        subject: subject.to_owned(),
        version,
        id,
        schema: parsed.canonical,
        schema_type: None,
        references: parsed.references,
        deleted: false,
    }))
}

/// Whether `claim`, once applied, holds: its version points at its id *and* its id means its
/// schema. Checking the version alone is not enough: another replica may have claimed the same
/// version and the same id for a different schema first.
fn won(state: &State, claim: &SchemaValue) -> bool {
    let identity = schema::identity(&claim.schema, &claim.references);
    let at_version = state
        .versions(&claim.subject)
        .and_then(|vs| vs.get(&claim.version))
        .is_some_and(|v| v.id == claim.id);
    at_version
        && state
            .any_schema(claim.id)
            .is_some_and(|s| s.parsed.identity() == identity)
}

fn resolve(
    state: &State,
    subject: &str,
    spec: VersionSpec,
    deleted: bool,
) -> Result<(u32, Version), ApiError> {
    let versions = state
        .versions(subject)
        .ok_or_else(|| ApiError::subject_not_found(subject))?;
    if !deleted && versions.values().all(|v| v.deleted) {
        return Err(ApiError::subject_not_found(subject));
    }
    let hit = match spec {
        VersionSpec::Latest => versions.iter().rev().find(|(_, v)| deleted || !v.deleted),
        VersionSpec::Number(n) => versions
            .get_key_value(&n)
            .filter(|(_, v)| deleted || !v.deleted),
    };
    hit.map(|(n, v)| (*n, *v)).ok_or_else(|| {
        let shown = match spec {
            VersionSpec::Latest => "latest".to_owned(),
            VersionSpec::Number(n) => n.to_string(),
        };
        ApiError::version_not_found(subject, &shown)
    })
}

fn found(state: &State, subject: &str, version: u32, v: Version) -> Found {
    let (schema, references) = state
        .any_schema(v.id)
        .map(|s| (s.parsed.canonical.clone(), s.parsed.references.clone()))
        .unwrap_or_default();
    Found {
        subject: subject.to_owned(),
        version,
        id: v.id,
        schema,
        references,
        deleted: v.deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(schema: &str) -> Submission {
        Submission {
            schema: schema.into(),
            ..Submission::default()
        }
    }

    fn apply_plan(state: &mut State, subject: &str, s: &Submission) -> Result<u32, ApiError> {
        match plan_registration(state, subject, s, 1)? {
            Plan::Existing(id) => Ok(id),
            Plan::Claim(claim) => {
                let id = claim.id;
                state.apply(Record::Schema(claim));
                Ok(id)
            }
        }
    }

    const V1: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"},{"name":"d","type":["null","int"],"default":null}]}"#;
    const BAD: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"string"}]}"#;

    #[test]
    fn registration_plans_ids_versions_and_checks() {
        let mut state = State::default();
        assert_eq!(apply_plan(&mut state, "a", &submission(V1)), Ok(1));
        assert_eq!(
            apply_plan(&mut state, "a", &submission(V1)),
            Ok(1),
            "idempotent"
        );
        assert_eq!(apply_plan(&mut state, "a", &submission(V2)), Ok(2));
        assert_eq!(
            apply_plan(&mut state, "b", &submission(V2)),
            Ok(2),
            "same schema, same id"
        );
        assert_eq!(
            apply_plan(&mut state, "a", &submission(BAD))
                .unwrap_err()
                .code,
            409
        );
        assert_eq!(
            apply_plan(&mut state, "a", &submission("{"))
                .unwrap_err()
                .code,
            42201
        );
        let with_id = Submission {
            id: Some(9),
            ..submission(BAD)
        };
        assert_eq!(
            apply_plan(&mut state, "c", &with_id).unwrap_err().code,
            42205,
            "ids need IMPORT mode"
        );
    }

    #[test]
    fn a_claim_that_lost_to_the_same_version_and_id_is_not_won() {
        // Two replicas plan the next version and id of one subject for different schemas.
        let plan =
            |schema: &str| match plan_registration(&State::default(), "s", &submission(schema), 1)
                .unwrap()
            {
                Plan::Claim(claim) => claim,
                Plan::Existing(_) => unreachable!(),
            };
        let (first, second) = (plan(V1), plan(V2));
        assert_eq!((first.version, first.id), (second.version, second.id));
        let mut state = State::default();
        state.apply(Record::Schema(first.clone()));
        state.apply(Record::Schema(second.clone()));
        assert!(won(&state, &first));
        assert!(
            !won(&state, &second),
            "same version and id, other schema: lost"
        );
    }

    #[test]
    fn import_mode_keeps_given_ids() {
        let mut state = State::default();
        state.apply(Record::Mode {
            subject: None,
            mode: Some(Mode::Import),
        });
        let s = Submission {
            id: Some(100),
            version: Some(3),
            ..submission(V1)
        };
        assert_eq!(apply_plan(&mut state, "a", &s), Ok(100));
        assert_eq!(
            state
                .versions("a")
                .unwrap()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![3]
        );
        let clash = Submission {
            id: Some(100),
            ..submission(V2)
        };
        assert_eq!(apply_plan(&mut state, "b", &clash).unwrap_err().code, 42205);
        state.apply(Record::Mode {
            subject: None,
            mode: Some(Mode::ReadWrite),
        });
        assert_eq!(
            apply_plan(&mut state, "b", &submission(V2)),
            Ok(101),
            "new ids continue after imported ones"
        );
    }

    #[test]
    fn read_only_refuses_new_schemas_but_answers_known_ones() {
        let mut state = State::default();
        apply_plan(&mut state, "a", &submission(V1)).unwrap();
        state.apply(Record::Mode {
            subject: Some("a".into()),
            mode: Some(Mode::ReadOnly),
        });
        assert_eq!(apply_plan(&mut state, "a", &submission(V1)), Ok(1));
        assert_eq!(
            apply_plan(&mut state, "a", &submission(V2))
                .unwrap_err()
                .code,
            42205
        );
    }

    #[test]
    fn version_specs() {
        assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("7").unwrap(), VersionSpec::Number(7));
        for bad in ["0", "abc", "-2", "99999999999", ""] {
            assert_eq!(VersionSpec::parse(bad).unwrap_err().code, 42202, "{bad}");
        }
    }
}
