//! From Confluent-framed bytes to a [`RawRecord`], for any writer schema the registry knows:
//! [`rivulet_common::avro::Resolver`] resolves each writer schema to the newest raw schema (v3),
//! so fields an older writer lacked arrive as `null`, then the value is validated.

use apache_avro::Schema;
use rivulet_common::avro::Resolver;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio::runtime::Handle;

pub use rivulet_common::avro::Reject;

use crate::record::RawRecord;

/// Decodes raw-data-in messages. Blocking (it may call the registry): use it on the pipeline
/// thread, never inside async code.
pub struct Decoder {
    resolver: Resolver,
}

impl Decoder {
    /// A decoder resolving every writer schema to `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        Self {
            resolver: Resolver::new(settings, runtime, reader),
        }
    }

    /// The record in `payload`.
    pub fn decode(&mut self, payload: Option<&[u8]>) -> Result<RawRecord, Reject> {
        let value = self.resolver.decode(payload)?;
        RawRecord::from_value(&value).map_err(|e| Reject::Invalid(format!("invalid value: {e}")))
    }
}
