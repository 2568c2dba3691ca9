//! From Confluent-framed bytes to a [`RawRecord`], for any writer schema the registry knows.
//!
//! Writer schemas are fetched by id once (over HTTP, through `schema_registry_converter`) and
//! kept with a reader prepared to resolve them to the newest raw schema (v3), so fields an older
//! writer lacked arrive as `null`.

use std::collections::HashMap;
use std::error::Error as _;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, get_schema_by_id};
use schema_registry_converter::schema_registry_common::RawError;
use tokio::runtime::Handle;

use crate::record::RawRecord;

/// Why a message was not turned into a record.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    /// The message itself is bad: it goes to the dead-letter topic.
    #[error("{0}")]
    Invalid(String),
    /// The registry could not be asked: retry later, do not dead-letter.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

impl Reject {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Reject::Invalid(reason) if reason.starts_with("unknown schema id") => "unknown_schema",
            Reject::Invalid(reason) if reason.starts_with("not framed") => "not_framed",
            Reject::Invalid(reason) if reason.starts_with("undecodable") => "undecodable",
            Reject::Invalid(_) => "invalid_value",
            Reject::Unavailable(_) => "registry_unavailable",
        }
    }
}

/// Decodes raw-data-in messages. Blocking (it may call the registry): use it on the pipeline
/// thread, never inside async code.
pub struct Decoder {
    settings: SrSettings,
    runtime: Handle,
    reader: &'static Schema,
    readers: HashMap<u32, GenericDatumReader<'static>>,
}

impl Decoder {
    /// A decoder resolving every writer schema to `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        // Leaked on purpose, like the writer schemas: a handful of schemas that live as long as
        // the process, so prepared readers can borrow them.
        Self {
            settings,
            runtime,
            reader: Box::leak(Box::new(reader)),
            readers: HashMap::new(),
        }
    }

    /// The record in `payload`.
    pub fn decode(&mut self, payload: Option<&[u8]>) -> Result<RawRecord, Reject> {
        let bytes = payload.ok_or_else(|| Reject::Invalid("not framed: empty payload".into()))?;
        let (id, mut body) = rivulet_common::avro::unframe(bytes)
            .map_err(|e| Reject::Invalid(format!("not framed: {e}")))?;
        let reader = self.reader_for(id)?;
        let value = reader
            .read_value(&mut body)
            .map_err(|e| Reject::Invalid(format!("undecodable with schema id {id}: {e}")))?;
        RawRecord::from_value(&value).map_err(|e| Reject::Invalid(format!("invalid value: {e}")))
    }

    fn reader_for(&mut self, id: u32) -> Result<&GenericDatumReader<'static>, Reject> {
        if !self.readers.contains_key(&id) {
            let fetched = self.runtime.block_on(get_schema_by_id(id, &self.settings));
            let registered = match fetched {
                Ok(registered) => registered,
                Err(e) => {
                    let code = e
                        .source()
                        .and_then(|s| s.downcast_ref::<RawError>())
                        .map(|r| r.error_code);
                    return Err(match code {
                        Some(40403) => Reject::Invalid(format!("unknown schema id {id}")),
                        _ => Reject::Unavailable(e.to_string()),
                    });
                }
            };
            let writer = Schema::parse_str(&registered.schema).map_err(|e| {
                Reject::Invalid(format!("undecodable: schema id {id} does not parse: {e}"))
            })?;
            let writer: &'static Schema = Box::leak(Box::new(writer));
            let reader = GenericDatumReader::builder(writer)
                .reader_schema(self.reader)
                .build()
                .map_err(|e| {
                    Reject::Invalid(format!(
                        "undecodable: schema id {id} cannot be read as the raw record: {e}"
                    ))
                })?;
            self.readers.insert(id, reader);
        }
        self.readers
            .get(&id)
            .ok_or_else(|| Reject::Unavailable("reader cache".into()))
    }
}
