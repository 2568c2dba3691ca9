//! From Confluent-framed bytes to a [`RawRecord`], for any writer schema the registry knows.
//!
//! Each writer schema id gets a [`Plan`] (a decoder specialised to it) when it is covered;
//! whatever a plan cannot read goes through [`rivulet_common::avro::Resolver`], apache-avro's
//! generic resolution to the newest raw schema (v3), which also words every error. Fields an
//! older writer lacked arrive as `None`; then the record is validated.

use apache_avro::Schema;
use rivulet_common::avro::Resolver;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio::runtime::Handle;

pub use rivulet_common::avro::Reject;

use crate::fast::Plan;
use rivulet_contracts::raw::RawRecord;

/// Decodes raw-data-in messages. Blocking (it may call the registry): use it on the pipeline
/// thread, never inside async code.
pub struct Decoder {
    resolver: Resolver,
    /// Plans by writer schema id: a handful, so a list beats a hash map.
    plans: Vec<(u32, Option<Plan>)>,
}

impl Decoder {
    /// A decoder resolving every writer schema to `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        Self {
            resolver: Resolver::new(settings, runtime, reader),
            plans: Vec::new(),
        }
    }

    /// Teaches the decoder a writer schema without asking the registry (benchmarks, tests).
    pub fn know(&mut self, id: u32, writer: Schema) -> Result<(), Reject> {
        self.resolver.insert(id, writer)
    }

    /// The record in `payload`.
    pub fn decode(&mut self, payload: Option<&[u8]>) -> Result<RawRecord, Reject> {
        if let Some(Ok((id, body))) = payload.map(rivulet_common::avro::unframe) {
            let at = match self.plans.iter().position(|(known, _)| *known == id) {
                Some(at) => at,
                None => {
                    let writer = self.resolver.writer(id)?;
                    let plan = Plan::compile(writer, self.resolver.reader());
                    self.plans.push((id, plan));
                    self.plans.len() - 1
                }
            };
            if let Some(fields) = self.plans[at].1.as_ref().and_then(|plan| plan.decode(body)) {
                return RawRecord::checked(fields).map_err(Reject::Invalid);
            }
        }
        let value = self.resolver.decode(payload)?;
        RawRecord::from_value(&value).map_err(Reject::Invalid)
    }
}
