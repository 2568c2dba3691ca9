//! The recommender's three topics: `recommendations-topic` and `error-topic` (one message per
//! experiment, one schema) and `summary-topic` (one per job).
//!
//! Two wire formats carry the same content: `json`, exactly the reference's documents, and
//! `avro`, whose records mirror the JSON field by field (maps where the JSON keys by name, code
//! or time; `null` where the JSON leaves a field out). [`Converter`] turns a JSON document into
//! the Avro value of a schema, strictly: a field the schema does not know is an error with its
//! path, never dropped. [`model`] reads either format back into one typed model.

pub mod model;

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamespaceRef};
use apache_avro::types::Value as Avro;
use serde_json::Value;

pub use model::{ExperimentMessage, SummaryMessage};

/// The value schema of `recommendations-topic` and `error-topic`.
pub const EXPERIMENT_SCHEMA: &str = include_str!("../../../schemas/recommendations-topic/v1.avsc");
/// The value schema of `summary-topic`.
pub const SUMMARY_SCHEMA: &str = include_str!("../../../schemas/summary-topic/v1.avsc");

/// How messages are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// Confluent-framed Avro through the schema registry.
    #[default]
    Avro,
    /// The reference's JSON.
    Json,
}

/// Why a document could not be converted, or a message read.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
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
    /// Avro encoding or decoding failed.
    #[error("avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
    /// The JSON does not read as the model.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A schema ready to convert JSON documents: the schema and its named types.
#[derive(Clone, Debug)]
pub struct Converter {
    schema: Schema,
    names: HashMap<Name, Schema>,
}

impl Converter {
    /// A converter for `schema`.
    pub fn new(schema: Schema) -> Result<Converter, ContractError> {
        let names = apache_avro::schema::ResolvedSchema::try_from(&schema)
            .map_err(|e| ContractError::Schema(e.to_string()))?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(Converter { schema, names })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// `document` as an Avro value of the schema.
    pub fn to_avro(&self, document: &Value) -> Result<Avro, ContractError> {
        convert(document, &self.schema, &self.names, None).map_err(|(mut path, reason)| {
            path.reverse();
            ContractError::Mismatch {
                path: if path.is_empty() {
                    "the top".into()
                } else {
                    path.join(".")
                },
                reason,
            }
        })
    }

    /// `document` as an unframed Avro body.
    pub fn to_bytes(&self, document: &Value) -> Result<Vec<u8>, ContractError> {
        Ok(crate::to_bytes(&self.schema, self.to_avro(document)?)?)
    }
}

/// Reads a JSON message into its model.
pub fn read_json<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, ContractError> {
    Ok(serde_json::from_slice(payload)?)
}

/// Reads an unframed Avro body written with `writer` into its model.
pub fn read_avro<T: serde::de::DeserializeOwned>(
    writer: &Schema,
    body: &[u8],
) -> Result<T, ContractError> {
    let value = crate::from_bytes(writer, None, body)?;
    Ok(apache_avro::from_value(&value).map_err(Box::new)?)
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
