//! Planning a registration against the current state, pure: what id and version a schema
//! gets, whether it is already there, and whether a claim read back from the log won.

use super::request::{Found, Submission, VersionSpec};
use crate::error::ApiError;
use crate::record::SchemaValue;
use crate::schema::{self, ParsedSchema, SchemaType};
use crate::state::{Mode, State, Version};

pub(super) enum Plan {
    Existing(u32),
    Claim(SchemaValue),
}

pub(super) fn parse(state: &State, submission: &Submission) -> Result<ParsedSchema, ApiError> {
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

pub(super) fn writable(state: &State, subject: &str) -> Result<(), ApiError> {
    if state.mode(subject) == Mode::ReadOnly {
        return Err(ApiError::not_permitted(format!(
            "Subject {subject} is in read-only mode."
        )));
    }
    Ok(())
}

/// Decides what registering `submission` under `subject` means against `state`; a new id is
/// at least `min_new_id` (ids this replica has in flight are below it).
pub(super) fn plan_registration(
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
pub(super) fn won(state: &State, claim: &SchemaValue) -> bool {
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

pub(super) fn resolve(
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

pub(super) fn found(state: &State, subject: &str, version: u32, v: Version) -> Found {
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
    use crate::record::Record;

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
