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
use rivulet_contracts::raw::{Fields, RawRecord};

/// Decodes raw-data-in messages. Blocking (it may call the registry): use it on the pipeline
/// thread, never inside async code.
pub struct Decoder {
    resolver: Resolver,
    /// Plans by writer schema id: a handful, so a list beats a hash map.
    plans: Vec<(u32, Option<Plan>)>,
    /// What a plan decodes into; its SKU buffer comes back through [`Decoder::recycle`].
    scratch: Fields,
}

impl Decoder {
    /// A decoder resolving every writer schema to `reader`.
    pub fn new(settings: SrSettings, runtime: Handle, reader: Schema) -> Self {
        Self {
            resolver: Resolver::new(settings, runtime, reader),
            plans: Vec::new(),
            scratch: Fields::default(),
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
            if let Some(plan) = self.plans[at].1.as_ref()
                && plan.decode_into(body, &mut self.scratch).is_some()
            {
                let fields = std::mem::take(&mut self.scratch);
                return RawRecord::checked(fields).map_err(Reject::Invalid);
            }
        }
        let value = self.resolver.decode(payload)?;
        RawRecord::from_value(&value).map_err(Reject::Invalid)
    }

    /// Takes a decoded record back so that the next one reuses its SKU's buffer: one
    /// allocation and one free less per record on the hot path.
    pub fn recycle(&mut self, record: RawRecord) {
        self.scratch.sku = record.sku;
    }
}
