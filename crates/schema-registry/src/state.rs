//! The registry's state: subjects, versions, ids, compatibility levels and modes.
//!
//! Every replica rebuilds it by applying the `_schemas` records in log order with
//! [`State::apply`], a pure function of the state and the record. Because all replicas apply the
//! same log with the same rules they agree on every decision, which is what makes concurrent
//! writers safe: a registration is a *claim* appended to the log, and a claim that conflicts with
//! an earlier record (an id already given to another schema, a version already taken) is
//! rejected by everyone. The writer reads the log up to its claim and sees whether it won.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use apache_avro::Schema;

pub use crate::record::Mode;
use crate::record::{Record, SchemaValue, SubjectValue};
use crate::schema::{Level, ParsedSchema, Reference};

/// A schema known by id.
#[derive(Debug)]
pub struct Stored {
    /// Global id.
    pub id: u32,
    /// The schema.
    pub parsed: ParsedSchema,
    /// The ready-made body of `GET /schemas/ids/{id}`. Leaked on purpose: a schema id is
    /// never given to another schema, so its body is kept for the life of the process anyway,
    /// and a `&'static str` is served without touching a shared reference count.
    pub body: &'static str,
}

/// One version of a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// The schema id it points at.
    pub id: u32,
    /// Soft-deleted.
    pub deleted: bool,
}

/// What applying a record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The state changed (or already matched).
    Accepted,
    /// The record lost to an earlier one and changed nothing.
    Rejected(&'static str),
}

/// The whole registry state.
#[derive(Default)]
pub struct State {
    schemas: HashMap<u32, Arc<Stored>>,
    ids: HashMap<String, u32>,
    subjects: BTreeMap<String, BTreeMap<u32, Version>>,
    global_level: Option<Level>,
    levels: HashMap<String, Level>,
    global_mode: Option<Mode>,
    modes: HashMap<String, Mode>,
    max_id: u32,
    /// Ids some version (soft-deleted or not) points at: kept so `GET /schemas/ids/{id}`,
    /// the hot path, is two hash look-ups.
    referenced: HashSet<u32>,
}

impl State {
    /// Applies one record. Deterministic: the same log gives the same state on every replica.
    pub fn apply(&mut self, record: Record) -> Applied {
        match record {
            Record::Schema(value) => self.apply_schema(value),
            Record::RemoveVersion { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.remove(&version);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
                self.recount_references();
                Applied::Accepted
            }
            Record::Config {
                subject: None,
                level,
            } => {
                self.global_level = level;
                Applied::Accepted
            }
            Record::Config {
                subject: Some(s),
                level,
            } => {
                match level {
                    Some(l) => self.levels.insert(s, l),
                    None => self.levels.remove(&s),
                };
                Applied::Accepted
            }
            Record::Mode {
                subject: None,
                mode,
            } => {
                self.global_mode = mode;
                Applied::Accepted
            }
            Record::Mode {
                subject: Some(s),
                mode,
            } => {
                match mode {
                    Some(m) => self.modes.insert(s, m),
                    None => self.modes.remove(&s),
                };
                Applied::Accepted
            }
            Record::DeleteSubject(SubjectValue { subject, version }) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    for (_, v) in versions.range_mut(..=version) {
                        v.deleted = true;
                    }
                }
                Applied::Accepted
            }
            Record::ClearSubject(SubjectValue { subject, version }) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.retain(|&n, v| n > version || !v.deleted);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                        self.levels.remove(&subject);
                        self.modes.remove(&subject);
                    }
                }
                self.recount_references();
                Applied::Accepted
            }
        }
    }

    fn apply_schema(&mut self, value: SchemaValue) -> Applied {
        let Ok(referenced) = self.referenced_texts(&value.references) else {
            return Applied::Rejected("a reference does not exist");
        };
        let refs: Vec<&str> = referenced.iter().map(|s| s.as_str()).collect();
        let Ok(parsed) = ParsedSchema::parse(&value.schema, value.references.clone(), &refs) else {
            return Applied::Rejected("the schema does not parse");
        };
        let identity = parsed.identity();
        if self
            .schemas
            .get(&value.id)
            .is_some_and(|existing| existing.parsed.identity() != identity)
        {
            return Applied::Rejected("the id belongs to another schema");
        }
        if self.ids.get(&identity).is_some_and(|&id| id != value.id) {
            return Applied::Rejected("the schema already has another id");
        }
        let versions = self.subjects.entry(value.subject.clone()).or_default();
        match versions.get_mut(&value.version) {
            Some(existing) if existing.id != value.id => {
                return Applied::Rejected("the version is taken by another schema");
            }
            Some(existing) => existing.deleted = value.deleted,
            None => {
                let duplicate = versions.values().any(|v| v.id == value.id && !v.deleted);
                if duplicate && !value.deleted {
                    return Applied::Rejected("the schema is already registered in the subject");
                }
                versions.insert(
                    value.version,
                    Version {
                        id: value.id,
                        deleted: value.deleted,
                    },
                );
            }
        }
        self.ids.insert(identity, value.id);
        self.referenced.insert(value.id);
        self.max_id = self.max_id.max(value.id);
        self.schemas.entry(value.id).or_insert_with(|| {
            let mut body = serde_json::json!({ "schema": parsed.canonical });
            if !parsed.references.is_empty() {
                body["references"] = serde_json::json!(parsed.references);
            }
            let body: &'static str = Box::leak(body.to_string().into_boxed_str());
            Arc::new(Stored {
                id: value.id,
                body,
                parsed,
            })
        });
        Applied::Accepted
    }

    /// The stored texts of `references`, in order; fails when one does not exist.
    pub fn referenced_texts(&self, references: &[Reference]) -> Result<Vec<String>, String> {
        references
            .iter()
            .map(|r| {
                self.subjects
                    .get(&r.subject)
                    .and_then(|vs| vs.get(&r.version))
                    .and_then(|v| self.schemas.get(&v.id))
                    .map(|s| s.parsed.canonical.clone())
                    .ok_or_else(|| {
                        format!(
                            "reference {} to {} version {} does not exist",
                            r.name, r.subject, r.version
                        )
                    })
            })
            .collect()
    }

    /// The schema with `id`, while some version (soft-deleted or not) points at it.
    pub fn schema(&self, id: u32) -> Option<&Arc<Stored>> {
        self.schemas.get(&id).filter(|_| self.is_referenced(id))
    }

    fn is_referenced(&self, id: u32) -> bool {
        self.referenced.contains(&id)
    }

    fn recount_references(&mut self) {
        self.referenced = self
            .subjects
            .values()
            .flat_map(|vs| vs.values().map(|v| v.id))
            .collect();
    }

    /// The id already given to a schema with this identity, in any subject.
    pub fn id_of(&self, identity: &str) -> Option<u32> {
        self.ids.get(identity).copied()
    }

    /// The schema stored under `id`, referenced or not (to check an imported id).
    pub fn any_schema(&self, id: u32) -> Option<&Arc<Stored>> {
        self.schemas.get(&id)
    }

    /// The next free id.
    pub fn next_id(&self) -> u32 {
        self.max_id + 1
    }

    /// Subject names; soft-deleted ones only with `deleted`.
    pub fn subjects(&self, deleted: bool) -> Vec<&str> {
        self.subjects
            .iter()
            .filter(|(_, vs)| deleted || vs.values().any(|v| !v.deleted))
            .map(|(s, _)| s.as_str())
            .collect()
    }

    /// Every version of a subject (soft-deleted ones included) or `None` if it has none.
    pub fn versions(&self, subject: &str) -> Option<&BTreeMap<u32, Version>> {
        self.subjects.get(subject).filter(|vs| !vs.is_empty())
    }

    /// The live versions of a subject with their schemas, oldest first (for compatibility).
    pub fn live_schemas(&self, subject: &str) -> Vec<(u32, &Schema)> {
        self.versions(subject)
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.deleted)
            .filter_map(|(n, v)| self.schemas.get(&v.id).map(|s| (*n, &s.parsed.schema)))
            .collect()
    }

    /// Where `id` is used: `(subject, version)` pairs; soft-deleted ones only with `deleted`.
    pub fn usages(&self, id: u32, deleted: bool) -> Vec<(&str, u32)> {
        self.subjects
            .iter()
            .flat_map(|(s, vs)| vs.iter().map(move |(n, v)| (s.as_str(), *n, *v)))
            .filter(|(_, _, v)| v.id == id && (deleted || !v.deleted))
            .map(|(s, n, _)| (s, n))
            .collect()
    }

    /// Whether a live version anywhere references `subject` version `version`.
    pub fn is_referenced_by_others(&self, subject: &str, version: u32) -> bool {
        !self.referencing_ids(subject, version).is_empty()
    }

    /// Ids of the live schemas that reference `subject` version `version`.
    pub fn referencing_ids(&self, subject: &str, version: u32) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .subjects
            .values()
            .flat_map(|vs| vs.values())
            .filter(|v| !v.deleted)
            .filter(|v| {
                self.schemas.get(&v.id).is_some_and(|s| {
                    s.parsed
                        .references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
                })
            })
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The compatibility level set on the subject itself.
    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.levels.get(subject).copied()
    }

    /// The global level as set (`None` means the default, BACKWARD).
    pub fn global_level(&self) -> Option<Level> {
        self.global_level
    }

    /// The level in force for a subject.
    pub fn level(&self, subject: &str) -> Level {
        self.subject_level(subject)
            .or(self.global_level)
            .unwrap_or_default()
    }

    /// The mode set on the subject itself.
    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.modes.get(subject).copied()
    }

    /// The global mode as set.
    pub fn global_mode(&self) -> Option<Mode> {
        self.global_mode
    }

    /// The mode in force for a subject.
    pub fn mode(&self, subject: &str) -> Mode {
        self.subject_mode(subject)
            .or(self.global_mode)
            .unwrap_or_default()
    }

    /// Number of distinct schema ids.
    pub fn schema_count(&self) -> usize {
        self.schemas.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(subject: &str, version: u32, id: u32, schema: &str) -> Record {
        Record::Schema(SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema: schema.into(),
            schema_type: None,
            references: vec![],
            deleted: false,
        })
    }

    #[test]
    fn first_claim_in_log_order_wins() {
        let mut state = State::default();
        assert_eq!(state.apply(claim("a", 1, 1, "\"int\"")), Applied::Accepted);
        // Another replica planned id 1 for a different schema at the same time: it loses.
        assert!(matches!(
            state.apply(claim("b", 1, 1, "\"long\"")),
            Applied::Rejected(_)
        ));
        // And version 1 of `a` is taken.
        assert!(matches!(
            state.apply(claim("a", 1, 2, "\"long\"")),
            Applied::Rejected(_)
        ));
        // The same schema keeps its id in every subject.
        assert!(matches!(
            state.apply(claim("b", 1, 5, "\"int\"")),
            Applied::Rejected(_)
        ));
        assert_eq!(state.apply(claim("b", 1, 1, "\"int\"")), Applied::Accepted);
        assert_eq!(state.usages(1, false), vec![("a", 1), ("b", 1)]);
        assert!(state.schema(2).is_none());
        assert_eq!(state.next_id(), 2);
    }

    #[test]
    fn soft_delete_then_permanent_delete() {
        let mut state = State::default();
        state.apply(claim("a", 1, 1, "\"int\""));
        state.apply(claim("a", 2, 2, "\"long\""));
        state.apply(Record::DeleteSubject(SubjectValue {
            subject: "a".into(),
            version: 2,
        }));
        assert!(state.subjects(false).is_empty());
        assert_eq!(state.subjects(true), vec!["a"]);
        assert!(
            state.schema(1).is_some(),
            "soft-deleted schemas stay readable by id"
        );
        state.apply(Record::ClearSubject(SubjectValue {
            subject: "a".into(),
            version: 2,
        }));
        assert!(state.versions("a").is_none());
        assert!(state.schema(1).is_none());
        // Re-registering the same schema later reuses its id; ids are never handed out twice.
        assert_eq!(state.id_of("\"int\""), Some(1));
        assert_eq!(state.next_id(), 3);
    }

    #[test]
    fn levels_and_modes_fall_back_to_global_then_default() {
        let mut state = State::default();
        assert_eq!(state.level("s"), Level::Backward);
        state.apply(Record::Config {
            subject: None,
            level: Some(Level::Full),
        });
        assert_eq!(state.level("s"), Level::Full);
        state.apply(Record::Config {
            subject: Some("s".into()),
            level: Some(Level::None),
        });
        assert_eq!(state.level("s"), Level::None);
        state.apply(Record::Mode {
            subject: None,
            mode: Some(Mode::ReadOnly),
        });
        assert_eq!(state.mode("s"), Mode::ReadOnly);
        state.apply(Record::Mode {
            subject: None,
            mode: None,
        });
        assert_eq!(state.mode("s"), Mode::ReadWrite);
        assert_eq!("import".parse::<Mode>().unwrap(), Mode::Import);
    }

    #[test]
    fn garbage_schema_in_the_log_is_rejected_not_fatal() {
        let mut state = State::default();
        assert!(matches!(
            state.apply(claim("a", 1, 1, "{not json")),
            Applied::Rejected(_)
        ));
        assert!(state.versions("a").is_none());
    }
}
