//! The messages' wire formats. `avro` (the default, like every Rivulet producer):
//! Confluent-framed Avro with the schemas of `schemas/recommendations-topic`,
//! `schemas/error-topic` and `schemas/summary-topic`, looked up in the schema registry under
//! each topic's `-value` subject at start-up (never registered by the service: `schema-registry
//! apply` does that). `json`: exactly the reference's JSON documents.
//!
//! Both carry the same content: the Avro records mirror the JSON documents field by field
//! (maps where the JSON keys by name, code or time; `null` where the JSON leaves a field out),
//! and [`read`] reads either into the model of `rivulet_contracts::recommendations::model`. The JSON documents are converted
//! against the schema strictly: a field the schema does not know is an error, never dropped.

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use rivulet_common::avro::{self, RegisteredSchema};
use rivulet_contracts::recommendations::{self, ContractError, Converter};
use serde_json::Value;

pub use rivulet_contracts::recommendations::{EXPERIMENT_SCHEMA, Format, SUMMARY_SCHEMA};

/// A schema ready to write JSON documents as framed Avro: the contract's converter and the id
/// the registry gave the schema.
#[derive(Clone, Debug)]
pub struct Contract {
    id: u32,
    converter: Converter,
}

/// Why a document could not be written with a schema.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The document does not fit the schema, or the schema is unusable.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The framed message does not read.
    #[error("{0}")]
    Frame(#[from] rivulet_common::Error),
    /// The message names a schema id the caller does not know.
    #[error("unknown schema id {0}")]
    UnknownSchema(u32),
}

impl Contract {
    /// A contract for `registered` (its id and schema).
    pub fn new(registered: RegisteredSchema) -> Result<Contract, WireError> {
        Ok(Contract {
            id: registered.id,
            converter: Converter::new(registered.schema)?,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        self.converter.schema()
    }

    /// The registry's id of the schema (what goes into the frame).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `document` as an Avro value of the schema.
    pub fn to_avro(&self, document: &Value) -> Result<Avro, WireError> {
        Ok(self.converter.to_avro(document)?)
    }

    /// `document` as a Confluent-framed Avro message.
    pub fn encode(&self, document: &Value) -> Result<Vec<u8>, WireError> {
        Ok(avro::frame(self.id, &self.converter.to_bytes(document)?))
    }
}

/// Reads a message of either format into its model; `writer` gives the schema of an Avro
/// message's id.
pub fn read<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    format: Format,
    writer: impl FnOnce(u32) -> Option<Schema>,
) -> Result<T, WireError> {
    match format {
        Format::Json => Ok(recommendations::read_json(payload)?),
        Format::Avro => {
            let (id, body) = avro::unframe(payload)?;
            let schema = writer(id).ok_or(WireError::UnknownSchema(id))?;
            Ok(recommendations::read_avro(&schema, body)?)
        }
    }
}
