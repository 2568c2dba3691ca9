//! The messages' wire formats. `avro` (the default, like every Rivulet producer):
//! Confluent-framed Avro with the schemas of `schemas/recommendations-topic`,
//! `schemas/error-topic` and `schemas/summary-topic`, looked up in the schema registry under
//! each topic's `-value` subject at start-up (never registered by the service: `schema-registry
//! apply` does that). `json`: exactly the reference's JSON documents.
//!
//! Both carry the same content: the Avro records mirror the JSON documents field by field
//! (maps where the JSON keys by name, code or time; `null` where the JSON leaves a field out),
//! and [`crate::messages`] reads either into one model. The JSON documents are converted
//! against the schema strictly: a field the schema does not know is an error, never dropped.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamespaceRef};
use apache_avro::types::Value as Avro;
use rivulet_common::avro::{self, RegisteredSchema};
use serde_json::Value;

/// The value schema of `recommendations-topic` and `error-topic`.
pub const EXPERIMENT_SCHEMA: &str = include_str!("../../../schemas/recommendations-topic/v1.avsc");
/// The value schema of `summary-topic`.
pub const SUMMARY_SCHEMA: &str = include_str!("../../../schemas/summary-topic/v1.avsc");

/// How messages are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Confluent-framed Avro through the schema registry.
    #[default]
    Avro,
    /// The reference's JSON.
    Json,
}

/// A schema ready to convert JSON documents: the schema, its named types and its id.
#[derive(Clone, Debug)]
pub struct Contract {
    id: u32,
    schema: Schema,
    names: HashMap<Name, Schema>,
}

/// Why a document could not be written with a schema.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The document does not fit the schema (a bug: the schema and the documents disagree).
    #[error("document does not fit the schema at {path}: {reason}")]
    Mismatch {
        /// Where, e.g. `experiments.<name>.apis`.
        path: String,
        /// What.
        reason: String,
    },
    /// The schema itself is unusable.
    #[error("schema: {0}")]
    Schema(String),
    /// Encoding failed.
    #[error(transparent)]
    Encode(#[from] rivulet_common::Error),
}

impl Contract {
    /// A contract for `registered` (its id and schema).
    pub fn new(registered: RegisteredSchema) -> Result<Contract, WireError> {
        let names = apache_avro::schema::ResolvedSchema::try_from(&registered.schema)
            .map_err(|e| WireError::Schema(e.to_string()))?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(Contract {
            id: registered.id,
            schema: registered.schema,
            names,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// `document` as an Avro value of the schema.
    pub fn to_avro(&self, document: &Value) -> Result<Avro, WireError> {
        convert(document, &self.schema, &self.names, None).map_err(|(mut path, reason)| {
            path.reverse();
            WireError::Mismatch {
                path: if path.is_empty() {
                    "the top".into()
                } else {
                    path.join(".")
                },
                reason,
            }
        })
    }

    /// `document` as a Confluent-framed Avro message.
    pub fn encode(&self, document: &Value) -> Result<Vec<u8>, WireError> {
        let value = self.to_avro(document)?;
        Ok(avro::encode(self.id, &self.schema, value)?)
    }
}

/// A conversion failure: the path (innermost first) and the reason.
type Failure = (Vec<String>, String);

fn fail<T>(reason: String) -> Result<T, Failure> {
    Err((Vec::new(), reason))
}

fn at(key: &str) -> impl FnOnce(Failure) -> Failure + '_ {
    move |(mut path, reason)| {
        path.push(key.to_owned());
        (path, reason)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn convert(
    v: &Value,
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    namespace: NamespaceRef,
) -> Result<Avro, Failure> {
    let wrong = |want: &str| fail(format!("expected {want}, found {}", kind(v)));
    match (schema, v) {
        (Schema::Ref { name }, _) => {
            let full = name.fully_qualified_name(namespace);
            match names.get(&full) {
                Some(target) => convert(v, target, names, full.namespace()),
                None => fail(format!("unknown named type {full}")),
            }
        }
        (Schema::Null, Value::Null) => Ok(Avro::Null),
        (Schema::Boolean, Value::Bool(b)) => Ok(Avro::Boolean(*b)),
        (Schema::Long, Value::Number(n)) => n
            .as_i64()
            .map(Avro::Long)
            .map_or_else(|| wrong("an integer"), Ok),
        (Schema::Int, Value::Number(n)) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Avro::Int)
            .map_or_else(|| wrong("a 32-bit integer"), Ok),
        (Schema::Double, Value::Number(n)) => n
            .as_f64()
            .map(Avro::Double)
            .map_or_else(|| wrong("a number"), Ok),
        (Schema::String, Value::String(s)) => Ok(Avro::String(s.clone())),
        (Schema::Array(a), Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| convert(item, &a.items, names, namespace).map_err(at(&i.to_string())))
            .collect::<Result<_, _>>()
            .map(Avro::Array),
        (Schema::Map(m), Value::Object(entries)) => entries
            .iter()
            .map(|(k, item)| {
                convert(item, &m.types, names, namespace)
                    .map(|value| (k.clone(), value))
                    .map_err(at(k))
            })
            .collect::<Result<_, _>>()
            .map(Avro::Map),
        (Schema::Union(u), _) => {
            let mut last = None;
            for (i, variant) in u.variants().iter().enumerate() {
                match convert(v, variant, names, namespace) {
                    Ok(value) => return Ok(Avro::Union(i as u32, Box::new(value))),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| (Vec::new(), "empty union".into())))
        }
        (Schema::Record(r), Value::Object(entries)) => {
            if let Some(unknown) = entries
                .keys()
                .find(|k| !r.fields.iter().any(|f| &f.name == *k))
            {
                return fail(format!("field {unknown:?} is not in record {}", r.name));
            }
            let inner = r.name.namespace();
            r.fields
                .iter()
                .map(|f| {
                    let item = entries.get(&f.name).unwrap_or(&Value::Null);
                    convert(item, &f.schema, names, inner)
                        .map(|value| (f.name.clone(), value))
                        .map_err(at(&f.name))
                })
                .collect::<Result<_, _>>()
                .map(Avro::Record)
        }
        (Schema::Null, _) => wrong("null"),
        (Schema::Boolean, _) => wrong("a boolean"),
        (Schema::Long | Schema::Int | Schema::Double, _) => wrong("a number"),
        (Schema::String, _) => wrong("a string"),
        (Schema::Array(_), _) => wrong("an array"),
        (Schema::Map(_) | Schema::Record(_), _) => wrong("an object"),
        (other, _) => fail(format!(
            "schema type {other:?} is not used by these messages"
        )),
    }
}

#[cfg(test)]
mod tests;
