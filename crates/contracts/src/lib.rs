//! Rivulet's contracts: what the binaries agree on, and nothing else. Binaries meet only
//! through Kafka topics, so everything two of them must read the same way lives here: topic and
//! header names, the Avro schemas (embedded from `schemas/`, the source of truth), the typed
//! records and their versions, and the conversions between records and apache-avro [`Value`]s
//! or unframed Avro bytes. Confluent framing and the registry client are plumbing and stay in
//! `rivulet-common`.
//!
//! # Layout
//! - [`topics`]: default topic names, header names, subjects, the working day and calendar.
//! - [`raw`]: the hourly production record (`raw-data-in`, v1/v2/v3) and its validation.
//! - [`summary`]: the monthly totals per SKU (`summary-stats`, v1/v2/v3) and their key.
//! - [`base_cost`]: the yearly hourly base cost (`base-costs`).
//! - [`kubernetes`]: `k8s-monitor`'s change and snapshot messages, topics and keys.
//! - [`recommendations`]: the recommender's three topics: schemas, the JSON-to-Avro
//!   conversion, and the consumer-side model of their messages.
//!
//! [`Value`]: apache_avro::types::Value

pub mod base_cost;
pub mod kubernetes;
pub mod raw;
pub mod recommendations;
pub mod summary;
pub mod topics;
mod version;

pub use version::Version;

/// An embedded schema that does not parse: a build defect, reported instead of a panic.
#[derive(Debug, thiserror::Error)]
#[error("embedded schema {name} does not parse: {source}")]
pub struct SchemaError {
    /// Which schema (`<topic>/v<N>`).
    pub name: &'static str,
    /// Why.
    #[source]
    pub source: Box<apache_avro::Error>,
}

pub(crate) fn parse(name: &'static str, text: &str) -> Result<apache_avro::Schema, SchemaError> {
    apache_avro::Schema::parse_str(text).map_err(|e| SchemaError {
        name,
        source: Box::new(e),
    })
}

/// Encodes `value` with `schema` as an unframed Avro body (what follows the Confluent frame).
pub fn to_bytes(
    schema: &apache_avro::Schema,
    value: apache_avro::types::Value,
) -> Result<Vec<u8>, Box<apache_avro::Error>> {
    let mut out = Vec::with_capacity(64);
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value(&mut out, value))
        .map_err(Box::new)?;
    Ok(out)
}

/// Decodes an unframed Avro body written with `writer`, resolved to `reader` when given.
pub fn from_bytes(
    writer: &apache_avro::Schema,
    reader: Option<&apache_avro::Schema>,
    mut body: &[u8],
) -> Result<apache_avro::types::Value, Box<apache_avro::Error>> {
    let builder = apache_avro::reader::datum::GenericDatumReader::builder(writer);
    match reader {
        Some(reader) => builder.reader_schema(reader).build(),
        None => builder.build(),
    }
    .and_then(|r| r.read_value(&mut body))
    .map_err(Box::new)
}

pub(crate) mod fields {
    //! Reading fields of a decoded record.
    use apache_avro::types::Value;

    /// The field `name` of a record's fields.
    pub fn get<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
        fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// `v`, or the value inside a union.
    pub fn inner(v: &Value) -> &Value {
        match v {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }

    /// An int or long field as i64 (also inside a union).
    pub fn long(fields: &[(String, Value)], name: &str) -> Option<i64> {
        match inner(get(fields, name)?) {
            Value::Long(v) => Some(*v),
            Value::Int(v) => Some(i64::from(*v)),
            _ => None,
        }
    }

    /// `Some(v)` as `["null", T]`'s branch 1, `None` as branch 0.
    pub fn optional(v: Option<Value>) -> Value {
        match v {
            Some(v) => Value::Union(1, Box::new(v)),
            None => Value::Union(0, Box::new(Value::Null)),
        }
    }
}
