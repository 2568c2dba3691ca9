//! Parsing, identity and compatibility of Avro schemas.
//!
//! Two submissions are the same schema when their parsed and re-serialised forms are equal
//! (as Confluent decides it): whitespace and key order do not matter, but defaults, docs and
//! aliases do. Avro's Parsing Canonical Form is deliberately not used for identity because it
//! drops defaults, and two schemas that differ in a default resolve data differently.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

/// A reference from one schema to a named type registered under another subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The referenced type's full name.
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// The version within that subject.
    pub version: u32,
}

/// A schema parsed and re-serialised.
#[derive(Clone, Debug)]
pub struct ParsedSchema {
    /// The parsed schema (references resolved as named types).
    pub schema: Schema,
    /// The re-serialised JSON: what is stored, returned and compared.
    pub canonical: String,
    /// References to other subjects' schemas.
    pub references: Vec<Reference>,
}

impl ParsedSchema {
    /// Parses `text`; `referenced` holds the already-registered texts of `references`, in order.
    pub fn parse(
        text: &str,
        references: Vec<Reference>,
        referenced: &[&str],
    ) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("Empty schema".to_owned());
        }
        let schema = if referenced.is_empty() {
            Schema::parse_str(text).map_err(|e| format!("Invalid schema {text}: {e}"))?
        } else {
            Schema::parse_str_with_list(text, referenced)
                .map_err(|e| format!("Invalid schema {text} with references: {e}"))?
                .0
        };
        let canonical =
            serde_json::to_string(&schema).map_err(|e| format!("Invalid schema {text}: {e}"))?;
        Ok(Self {
            schema,
            canonical,
            references,
        })
    }

    /// The identity key of this schema: same key, same id in every subject.
    pub fn identity(&self) -> String {
        identity(&self.canonical, &self.references)
    }
}

/// The identity key of a canonical schema text with its references.
pub fn identity(canonical: &str, references: &[Reference]) -> String {
    if references.is_empty() {
        canonical.to_owned()
    } else {
        // References are part of what a schema means: the same text with other referenced
        // versions is another schema.
        let refs = serde_json::to_string(references).unwrap_or_default();
        format!("{canonical}\u{0}{refs}")
    }
}

/// Schema types this registry accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchemaType {
    /// Apache Avro.
    #[default]
    Avro,
}

impl FromStr for SchemaType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("AVRO") {
            Ok(Self::Avro)
        } else {
            Err(format!(
                "Invalid schema type {s}: this registry stores AVRO schemas only"
            ))
        }
    }
}

/// How a new schema must relate to the subject's existing versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// No check.
    None,
    /// New schema reads data written with the latest version.
    #[default]
    Backward,
    /// New schema reads data written with every version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl Level {
    /// Every level, for listing in messages.
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    fn name(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "Invalid compatibility level {s:?}; valid levels are {:?}",
                    Level::ALL.map(Level::name)
                )
            })
    }
}

/// Whether data written with `writer` can be read with `reader` under Avro's resolution rules.
/// Only full compatibility counts: a reader that would fail on some values (an enum missing
/// symbols, a union missing branches) is incompatible, as in the Java implementation.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => {
            Err("the reader cannot read every value the writer can write".to_owned())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Checks `new` against `existing` (oldest first) under `level`. Returns the reasons it is
/// incompatible; empty means compatible.
pub fn check(level: Level, new: &Schema, existing: &[(u32, &Schema)]) -> Vec<String> {
    let targets: &[(u32, &Schema)] = if level.transitive() {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut messages = Vec::new();
    for (version, old) in targets {
        if level.backward()
            && let Err(e) = can_read(old, new)
        {
            messages.push(format!(
                "{level}: the new schema cannot read data written with version {version}: {e}"
            ));
        }
        if level.forward()
            && let Err(e) = can_read(new, old)
        {
            messages.push(format!(
                "{level}: version {version} cannot read data written with the new schema: {e}"
            ));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Schema {
        ParsedSchema::parse(text, vec![], &[]).unwrap().schema
    }

    const V1: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"}]}"#;
    const V2_DEFAULT: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"},{"name":"d","type":["null","int"],"default":null}]}"#;
    const V2_REQUIRED: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"},{"name":"d","type":"int"}]}"#;
    const V_LONG: &str = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"long"}]}"#;

    #[test]
    fn identity_ignores_layout_but_not_defaults() {
        let a = ParsedSchema::parse(V2_DEFAULT, vec![], &[]).unwrap();
        let reordered = r#"{ "fields": [ {"type": "int", "name": "qty"}, {"default": null, "type": ["null","int"], "name": "d"} ], "name": "W", "type": "record" }"#;
        let b = ParsedSchema::parse(reordered, vec![], &[]).unwrap();
        assert_eq!(a.identity(), b.identity());
        let other_default = r#"{"type":"record","name":"W","fields":[{"name":"qty","type":"int"},{"name":"d","type":["int","null"],"default":0}]}"#;
        let c = ParsedSchema::parse(other_default, vec![], &[]).unwrap();
        assert_ne!(a.identity(), c.identity());
    }

    #[test]
    fn invalid_schemas_are_rejected_with_a_message() {
        assert!(
            ParsedSchema::parse("", vec![], &[])
                .unwrap_err()
                .contains("Empty")
        );
        assert!(ParsedSchema::parse(r#"{"type":"record","name":"R"}"#, vec![], &[]).is_err());
        assert!(ParsedSchema::parse(r#"{"type":"nonsense"}"#, vec![], &[]).is_err());
    }

    #[test]
    fn backward_allows_new_optional_fields_and_promotions() {
        let (v1, v2, req, long) = (
            parse(V1),
            parse(V2_DEFAULT),
            parse(V2_REQUIRED),
            parse(V_LONG),
        );
        assert!(check(Level::Backward, &v2, &[(1, &v1)]).is_empty());
        assert!(!check(Level::Backward, &req, &[(1, &v1)]).is_empty());
        // int -> long promotion: new reader (long) reads old int data, not the other way round.
        assert!(check(Level::Backward, &long, &[(1, &v1)]).is_empty());
        assert!(!check(Level::Forward, &long, &[(1, &v1)]).is_empty());
        assert!(check(Level::Full, &v2, &[(1, &v1)]).is_empty());
        assert!(!check(Level::Full, &long, &[(1, &v1)]).is_empty());
        assert!(check(Level::None, &req, &[(1, &v1)]).is_empty());
    }

    #[test]
    fn transitive_levels_check_every_version() {
        let (v1, long) = (parse(V1), parse(V_LONG));
        let removed = parse(
            r#"{"type":"record","name":"W","fields":[{"name":"other","type":"string","default":""}]}"#,
        );
        // Forward against the latest (long) passes; transitively v1 (int) must also read the
        // new long data, which it cannot.
        assert!(check(Level::Forward, &long, &[(1, &long)]).is_empty());
        assert!(!check(Level::ForwardTransitive, &long, &[(1, &v1), (2, &long)]).is_empty());
        assert!(check(Level::Backward, &removed, &[(1, &v1)]).is_empty());
    }

    #[test]
    fn enums_missing_symbols_are_incompatible() {
        let ab = parse(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#);
        let a = parse(r#"{"type":"enum","name":"E","symbols":["A"]}"#);
        assert!(can_read(&a, &ab).is_ok());
        assert!(can_read(&ab, &a).is_err());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(
            "full_transitive".parse::<Level>().unwrap(),
            Level::FullTransitive
        );
        assert!("SOMETIMES".parse::<Level>().is_err());
        assert_eq!(Level::BackwardTransitive.to_string(), "BACKWARD_TRANSITIVE");
        assert!("protobuf".parse::<SchemaType>().is_err());
    }
}
