//! The records of the `_schemas` topic, in the JSON layout Confluent's registry uses.
//!
//! Key `{"keytype":"SCHEMA","subject":..,"version":..,"magic":1}` with a schema value (or a
//! tombstone for a permanent delete); `CONFIG` and `MODE` keys with an optional subject;
//! `DELETE_SUBJECT` (soft-delete every version up to one) and `CLEAR_SUBJECT` (remove the
//! soft-deleted versions up to one). Malformed records are skipped by every replica alike.

use serde::{Deserialize, Serialize};

use crate::schema::{Level, Reference};

/// Whether a subject accepts writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Normal operation.
    #[default]
    #[serde(rename = "READWRITE")]
    ReadWrite,
    /// No registrations or deletions.
    #[serde(rename = "READONLY")]
    ReadOnly,
    /// Registrations may carry their own id (and version); compatibility is not checked.
    #[serde(rename = "IMPORT")]
    Import,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Mode::ReadWrite),
            "READONLY" => Ok(Mode::ReadOnly),
            "IMPORT" => Ok(Mode::Import),
            _ => Err(format!(
                "Invalid mode {s:?}; valid modes are READWRITE, READONLY and IMPORT"
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        })
    }
}

/// A record key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Key {
    /// One version of a subject.
    Schema {
        /// Subject.
        subject: String,
        /// Version.
        version: u32,
        /// Format version of the key.
        magic: u8,
    },
    /// Compatibility of a subject, or the global one when `subject` is `None`.
    Config {
        /// Subject.
        subject: Option<String>,
        /// Format version of the key.
        magic: u8,
    },
    /// Mode of a subject, or the global one.
    Mode {
        /// Subject.
        subject: Option<String>,
        /// Format version of the key.
        magic: u8,
    },
    /// Soft-delete of a subject.
    DeleteSubject {
        /// Subject.
        subject: String,
        /// Format version of the key.
        magic: u8,
    },
    /// Permanent removal of a subject's soft-deleted versions.
    ClearSubject {
        /// Subject.
        subject: String,
        /// Format version of the key.
        magic: u8,
    },
}

/// The value of a `SCHEMA` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    /// Subject.
    pub subject: String,
    /// Version.
    pub version: u32,
    /// Global id.
    pub id: u32,
    /// The re-serialised schema text.
    pub schema: String,
    /// `AVRO` (omitted when AVRO, as Confluent does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// References to other subjects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// The value of a `CONFIG` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    /// The level.
    pub compatibility_level: Level,
}

/// The value of a `MODE` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// The mode.
    pub mode: Mode,
}

/// The value of a `DELETE_SUBJECT` or `CLEAR_SUBJECT` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectValue {
    /// Subject.
    pub subject: String,
    /// Versions up to and including this one are affected.
    pub version: u32,
}

/// A decoded record: what a replica applies to its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Register, soft-delete or undelete one version.
    Schema(SchemaValue),
    /// Permanently remove one version.
    RemoveVersion {
        /// Subject.
        subject: String,
        /// Version.
        version: u32,
    },
    /// Set (`Some`) or clear (`None`) a compatibility level.
    Config {
        /// Subject, or global.
        subject: Option<String>,
        /// New level.
        level: Option<Level>,
    },
    /// Set or clear a mode.
    Mode {
        /// Subject, or global.
        subject: Option<String>,
        /// New mode.
        mode: Option<Mode>,
    },
    /// Soft-delete versions up to `version`.
    DeleteSubject(SubjectValue),
    /// Remove soft-deleted versions up to `version`, and the subject's config and mode.
    ClearSubject(SubjectValue),
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed _schemas record: {0}")]
pub struct Malformed(String);

impl Record {
    /// Encodes the record as key and value bytes (value `None` is a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        // Serialising these plain structs cannot fail: every map key is a string.
        fn json<T: Serialize>(value: &T) -> Vec<u8> {
            serde_json::to_vec(value).unwrap_or_default()
        }
        match self {
            Record::Schema(value) => (
                json(&Key::Schema {
                    subject: value.subject.clone(),
                    version: value.version,
                    magic: 1,
                }),
                Some(json(value)),
            ),
            Record::RemoveVersion { subject, version } => (
                json(&Key::Schema {
                    subject: subject.clone(),
                    version: *version,
                    magic: 1,
                }),
                None,
            ),
            Record::Config { subject, level } => (
                json(&Key::Config {
                    subject: subject.clone(),
                    magic: 0,
                }),
                level.map(|l| {
                    json(&ConfigValue {
                        compatibility_level: l,
                    })
                }),
            ),
            Record::Mode { subject, mode } => (
                json(&Key::Mode {
                    subject: subject.clone(),
                    magic: 0,
                }),
                mode.map(|m| json(&ModeValue { mode: m })),
            ),
            Record::DeleteSubject(value) => (
                json(&Key::DeleteSubject {
                    subject: value.subject.clone(),
                    magic: 0,
                }),
                Some(json(value)),
            ),
            Record::ClearSubject(value) => (
                json(&Key::ClearSubject {
                    subject: value.subject.clone(),
                    magic: 0,
                }),
                Some(json(value)),
            ),
        }
    }

    /// Decodes a record from its key and value bytes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, Malformed> {
        let key: Key = serde_json::from_slice(key).map_err(|e| Malformed(format!("key: {e}")))?;
        fn parse<'a, T: Deserialize<'a>>(v: &'a [u8]) -> Result<T, Malformed> {
            serde_json::from_slice(v).map_err(|e| Malformed(format!("value: {e}")))
        }
        Ok(match (key, value) {
            (
                Key::Schema {
                    subject, version, ..
                },
                None,
            ) => Record::RemoveVersion { subject, version },
            (
                Key::Schema {
                    subject, version, ..
                },
                Some(v),
            ) => {
                let value: SchemaValue = parse(v)?;
                if value.subject != subject || value.version != version {
                    return Err(Malformed("SCHEMA key and value disagree".into()));
                }
                Record::Schema(value)
            }
            (Key::Config { subject, .. }, v) => Record::Config {
                subject,
                level: v
                    .map(parse::<ConfigValue>)
                    .transpose()?
                    .map(|c| c.compatibility_level),
            },
            (Key::Mode { subject, .. }, v) => Record::Mode {
                subject,
                mode: v.map(parse::<ModeValue>).transpose()?.map(|m| m.mode),
            },
            (Key::DeleteSubject { .. }, Some(v)) => Record::DeleteSubject(parse(v)?),
            (Key::ClearSubject { .. }, Some(v)) => Record::ClearSubject(parse(v)?),
            (Key::DeleteSubject { .. } | Key::ClearSubject { .. }, None) => {
                return Err(Malformed("subject deletion without a value".into()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: Record) {
        let (key, value) = record.encode();
        assert_eq!(Record::decode(&key, value.as_deref()).unwrap(), record);
    }

    #[test]
    fn every_record_round_trips() {
        round_trip(Record::Schema(SchemaValue {
            subject: "s".into(),
            version: 3,
            id: 7,
            schema: "\"int\"".into(),
            schema_type: None,
            references: vec![],
            deleted: true,
        }));
        round_trip(Record::RemoveVersion {
            subject: "s".into(),
            version: 2,
        });
        round_trip(Record::Config {
            subject: None,
            level: Some(Level::FullTransitive),
        });
        round_trip(Record::Config {
            subject: Some("s".into()),
            level: None,
        });
        round_trip(Record::Mode {
            subject: Some("s".into()),
            mode: Some(Mode::Import),
        });
        round_trip(Record::DeleteSubject(SubjectValue {
            subject: "s".into(),
            version: 4,
        }));
        round_trip(Record::ClearSubject(SubjectValue {
            subject: "s".into(),
            version: 4,
        }));
    }

    #[test]
    fn key_layout_matches_confluent() {
        let (key, _) = Record::RemoveVersion {
            subject: "s".into(),
            version: 2,
        }
        .encode();
        assert_eq!(
            String::from_utf8(key).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"#
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(Record::decode(b"not json", None).is_err());
        assert!(
            Record::decode(
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(b"{}")
            )
            .is_err()
        );
        assert!(
            Record::decode(
                br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#,
                None
            )
            .is_err()
        );
    }
}
